/* cmd-serve.c - `cairn serve SNAPSHOT DISK [--socket PATH | --port N] [--from REMOTE]`
 *
 * A read-only NBD export of one disk of a snapshot, served from the
 * repository by nbdkit with our plugin, in the foreground: one line with the
 * NBD URI on stdout once it serves, until SIGINT/SIGTERM/SIGHUP. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>

#include "cli/cli.h"
#include "policies/remote.h"
#include "restore/serve.h"

#define SERVE_RUN_DIR "/run/cairn/serve"

/* what nbdkit (another working directory, maybe) is told to open: a remote
 * name or URL as is, a path made absolute */
static char *
absolute_location(const char *location)
{
    if (strstr(location, "://") || cairn_remote_is_name(location))
        return g_strdup(location);
    return g_canonicalize_filename(location, NULL);
}

int
cairn_cmd_serve(CairnCli *cli, int argc, char **argv)
{
    g_autofree char *socket_path = NULL, *from = NULL, *owner = NULL;
    gint port = 0;
    GOptionEntry entries[] = {
        { "socket", 0, 0, G_OPTION_ARG_FILENAME, &socket_path,
          "listen on this unix socket (default " SERVE_RUN_DIR "/ID-DISK.sock)", "PATH" },
        { "port", 0, 0, G_OPTION_ARG_INT, &port, "listen on this TCP port of 127.0.0.1", "N" },
        { "from", 0, 0, G_OPTION_ARG_STRING, &from,
          "serve from this remote (name or URL) instead of the repository", "REMOTE" },
        { "socket-owner", 0, 0, G_OPTION_ARG_STRING, &owner,
          "give the socket to this user (e.g. libvirt-qemu, for QEMU to connect)", "USER" },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("SNAPSHOT DISK");
    g_option_context_set_summary(ctx, "Serve one disk of a snapshot as a read-only NBD export, "
                                 "read from the repository, until interrupted.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc != 3)
        return cairn_cli_usage(cli, "give a snapshot and a disk, e.g. 'serve web01@latest vda "
                               "--socket /run/web01-vda.sock'");
    if (socket_path && port)
        return cairn_cli_usage(cli, "give --socket PATH or --port N, not both");
    if (port < 0 || port > 65535)
        return cairn_cli_usage(cli, "--port must be between 1 and 65535, not %d", port);
    if (owner && port)
        return cairn_cli_usage(cli, "--socket-owner goes with a unix socket, not --port");

    /* signals arrive through a signalfd (blocked before any thread starts);
     * nbdkit gets them unblocked */
    cairn_autofd sfd = cairn_cli_signalfd();
    if (sfd < 0)
        return cairn_cli_failf(cli, "cannot watch signals: %s", g_strerror(errno));

    /* check what we are asked for here: clear messages before nbdkit starts */
    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnRepo) repo = from ? cairn_cli_open_remote_repo(cli, from, &gerr)
                                     : cairn_cli_open_repo(cli, &gerr);
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(CairnSnapshot) s = cairn_cli_resolve(cli, repo, argv[1], &gerr);
    if (!s)
        return cairn_cli_fail(cli, gerr);
    const CairnManifestDisk *disk = cairn_cli_find_disk(cli, s, argv[1], argv[2]);
    if (!disk)
        return 1;
    char hex[CAIRN_ID_HEX_LEN + 1];
    cairn_id_to_hex(&s->id, hex);
    if (!socket_path && !port) {
        if (!cairn_mkdir_p(SERVE_RUN_DIR, 0755, &gerr))
            return cairn_cli_fail(cli, gerr);
        g_autofree char *sid = cairn_cli_short_id(&s->id);
        socket_path = g_strdup_printf(SERVE_RUN_DIR "/%s-%s.sock", sid, disk->target);
    }
    g_autofree char *abs_socket = socket_path ? g_canonicalize_filename(socket_path, NULL) : NULL;
    g_autofree char *location = absolute_location(from ? from : cli->repo_location);
    g_autofree char *key_file = cli->key_file ? g_canonicalize_filename(cli->key_file, NULL)
                                              : NULL;


    CairnServeOptions o = { .repo = location, .key_file = key_file, .snapshot = hex,
                            .disk = disk->target, .socket = abs_socket, .port = (guint) port,
                            .socket_owner = owner, .lock_wait = cli->lock_wait };
    g_autoptr(CairnServer) server = cairn_server_start(&o, &gerr);
    if (!server)
        return cairn_cli_fail(cli, gerr);
    printf("%s\n", cairn_server_uri(server));
    fflush(stdout);
    if (!cli->quiet) {
        g_autofree char *size = cairn_format_size(disk->virtual_size);
        fprintf(stderr, "cairn serve: serving %s of %s (%s, read-only) at %s (nbdkit pid %d); "
                "stop with ^C\n", disk->target, argv[1], size, cairn_server_uri(server),
                (int) cairn_server_pid(server));
    }

    struct pollfd pf[2] = { { .fd = sfd, .events = POLLIN },
                            { .fd = cairn_server_exit_fd(server), .events = POLLIN } };
    for (;;) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return cairn_cli_failf(cli, "cannot wait: %s", g_strerror(errno));
        }
        if (pf[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) != sizeof si)
                continue;
            if (!cairn_server_stop(server, &gerr))
                return cairn_cli_fail(cli, gerr);
            if (!cli->quiet)
                fprintf(stderr, "cairn serve: stopped (%s)\n", g_strsignal((int) si.ssi_signo));
            return 0;
        }
        g_autofree char *how = NULL;
        if ((pf[1].revents & POLLIN) && cairn_server_exited(server, &how)) {
            cairn_server_stop(server, NULL); /* removes the socket */
            return cairn_cli_failf(cli, "nbdkit serving %s %s: the export is gone", disk->target,
                                   how);
        }
    }
}
