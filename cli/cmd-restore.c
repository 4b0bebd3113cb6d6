/* cmd-restore.c - `cairn restore SNAPSHOT [--from REMOTE] [--name NEW] [--define] [--start]
 * [--instant] ...` */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "policies/remote.h"
#include "repo/lock.h"
#include "restore/domain.h"
#include "restore/instant.h"

/* what the instant restore callbacks see: progress first (its callback's data) */
typedef struct {
    CairnCliProgress progress;
    gboolean json;
} InstantUi;

static void
instant_running(const char *name, double seconds, gpointer data)
{
    InstantUi *ui = data;
    if (ui->progress.cli->quiet)
        return;
    /* a result line on stdout, unless --json (stdout holds only the summary) */
    FILE *out = ui->json ? stderr : stdout;
    fprintf(out, "domain '%s' running after %.1f s; copying its disks from the repository\n",
            name, seconds);
    fflush(out);
}

/* --instant: the domain runs from NBD exports of the repository at once,
 * its disks are copied while it runs */
static int
restore_instant(CairnCli *cli, CairnRepo *repo, CairnSnapshot *snap, const char *from,
                const CairnRestoreOptions *base, gboolean json, int sfd)
{
    g_autoptr(GError) gerr = NULL;
    g_autofree char *location = NULL, *key_file = NULL;
    const char *loc = from ? from : cli->repo_location;
    location = strstr(loc, "://") || cairn_remote_is_name(loc) ? g_strdup(loc)
                                                               : g_canonicalize_filename(loc, NULL);
    if (cli->key_file)
        key_file = g_canonicalize_filename(cli->key_file, NULL);
    InstantUi ui = { .json = json };
    cairn_cli_progress_init(&ui.progress, cli, "pull");
    CairnInstantOptions o = { .base = *base, .repo_arg = location, .key_file = key_file,
                              .lock_wait = cli->lock_wait, .signal_fd = sfd,
                              .running = instant_running, .data = &ui };
    o.base.progress = cairn_cli_progress_cb;
    CairnInstantResult r;
    gboolean ok = cairn_restore_instant(repo, snap, &o, &r, &gerr);
    cairn_cli_progress_done(&ui.progress);
    for (guint i = 0; i < r.notes->len; i++)
        fprintf(stderr, "cairn restore: note: %s\n", (char *) r.notes->pdata[i]);
    if (ok && json) {
        char hex[CAIRN_ID_HEX_LEN + 1];
        g_autoptr(CairnJson) out = json_pack(
            "{s:s, s:s, s:s?, s:b, s:b, s:b, s:b, s:O, s:f, s:f, s:f}", "snapshot",
            cairn_id_to_hex(&snap->id, hex), "name", r.name, "xml", r.xml_path, "instant", 1,
            "defined", 1, "started", r.started, "pulled", r.pulled, "disks", r.disks,
            "running_seconds", r.running_seconds, "pull_seconds", r.pull_seconds,
            "duration_seconds", r.seconds);
        cairn_cli_print_json(out);
    } else if (ok) {
        printf("restored %s as '%s' (%zu disk%s): running after %.1f s, disks copied in %.1f s "
               "(%.1f s in all); it runs from local qcow2 files; XML: %s\n",
               snap->manifest->name, r.name, json_array_size(r.disks), json_array_size(r.disks) == 1 ? "" : "s",
               r.running_seconds, r.pull_seconds, r.seconds, r.xml_path);
    }
    cairn_instant_result_clear(&r);
    return ok ? 0 : cairn_cli_fail(cli, gerr);
}

int
cairn_cmd_restore(CairnCli *cli, int argc, char **argv)
{
    g_autofree char *from = NULL, *name = NULL, *dir = NULL, *format_s = NULL, *uri = NULL;
    g_auto(GStrv) disks = NULL;
    gboolean define = FALSE, start = FALSE, keep_uuid = FALSE, keep_mac = FALSE, force = FALSE,
             no_cache = FALSE, json = FALSE, instant = FALSE;
    GOptionEntry entries[] = {
        { "from", 0, 0, G_OPTION_ARG_STRING, &from, "restore from this remote", "REMOTE" },
        { "no-cache", 0, 0, G_OPTION_ARG_NONE, &no_cache,
          "with --from: read the remote directly, keep no local copy", NULL },
        { "name", 0, 0, G_OPTION_ARG_STRING, &name, "name of the restored domain", "NAME" },
        { "dir", 0, 0, G_OPTION_ARG_FILENAME, &dir,
          "directory for the disks (default /var/lib/libvirt/images/NAME)", "DIR" },
        { "format", 0, 0, G_OPTION_ARG_STRING, &format_s, "qcow2 (default) or raw", "FMT" },
        { "disk", 0, 0, G_OPTION_ARG_STRING_ARRAY, &disks, "only this disk (repeatable)", "vdX" },
        { "define", 0, 0, G_OPTION_ARG_NONE, &define, "define the domain in libvirt", NULL },
        { "start", 0, 0, G_OPTION_ARG_NONE, &start, "define and start it", NULL },
        { "keep-uuid", 0, 0, G_OPTION_ARG_NONE, &keep_uuid, "keep the original UUID", NULL },
        { "keep-mac", 0, 0, G_OPTION_ARG_NONE, &keep_mac, "keep the original MAC addresses",
          NULL },
        { "force", 'f', 0, G_OPTION_ARG_NONE, &force,
          "replace existing files and a shut-off domain of the same name", NULL },
        { "instant", 0, 0, G_OPTION_ARG_NONE, &instant,
          "start the domain at once on overlays of NBD exports of the snapshot, and copy its "
          "disks while it runs (with --from: straight from the remote)", NULL },
        { "connect", 'c', 0, G_OPTION_ARG_STRING, &uri, "libvirt URI", "URI" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print a JSON summary", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("SNAPSHOT");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc != 2)
        return cairn_cli_usage(cli, "give one snapshot: an id, DOMAIN@latest, DOMAIN@~N or "
                               "DOMAIN@TIME");
    if (no_cache && !from)
        return cairn_cli_usage(cli, "--no-cache goes with --from REMOTE");
    if (name && (!*name || *name == '-' || strchr(name, '/') || strlen(name) > 200))
        return cairn_cli_usage(cli, "invalid domain name '%s' for --name: 1-200 characters "
                               "without '/', not starting with '-'", name);
    if (instant && format_s && strcmp(format_s, "qcow2") != 0)
        return cairn_cli_usage(cli, "--instant restores to qcow2 overlays: leave out --format");
    cairn_autofd sfd = -1;
    if (!instant)
        cairn_cancel_on_signals(); /* ^C, SIGTERM: stop, remove the partial disks */
    if (instant) {
        no_cache = TRUE; /* served straight from the remote: nothing to copy first */
        /* ^C and kill stop the waiting, but leave the running domain its
         * servers: blocked before any thread starts, read from a signalfd */
        if ((sfd = cairn_cli_signalfd()) < 0)
            return cairn_cli_failf(cli, "cannot watch signals: %s", g_strerror(errno));
    }
    CairnRestoreOptions o = { .uri = uri, .name = name, .dir = dir, .disks = disks,
                              .keep_uuid = keep_uuid, .keep_mac = keep_mac,
                              .define = define || start, .start = start, .force = force,
                              .format = CAIRN_DISK_FORMAT_QCOW2 };
    g_autoptr(GError) gerr = NULL;
    if (format_s && !cairn_disk_format_parse(format_s, &o.format, &gerr))
        return cairn_cli_usage(cli, "%s", gerr->message);

    g_autoptr(CairnRepo) repo = NULL;
    g_autoptr(CairnSnapshot) snap = cairn_cli_open_snapshot(cli, from, no_cache, argv[1], &repo,
                                                            &gerr);
    if (!snap)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(CairnLock) lock = cairn_lock_acquire(repo, CAIRN_LOCK_SHARED, "restore",
                                                   cli->lock_wait, &gerr);
    if (!lock)
        return cairn_cli_fail(cli, gerr);
    if (instant)
        return restore_instant(cli, repo, snap, from, &o, json, sfd);
    CairnRestoreResult r;
    gboolean ok = cairn_restore_domain(repo, snap, &o, &r, &gerr);
    for (guint i = 0; i < r.notes->len; i++)
        fprintf(stderr, "cairn restore: note: %s\n", (char *) r.notes->pdata[i]);
    if (ok && json) {
        char hex[CAIRN_ID_HEX_LEN + 1];
        g_autoptr(CairnJson) out = json_pack("{s:s, s:s, s:s?, s:b, s:b, s:O, s:f}", "snapshot",
                                             cairn_id_to_hex(&snap->id, hex), "name", r.name,
                                             "xml", r.xml_path, "defined", r.defined,
                                             "started", r.started, "disks", r.disks,
                                             "duration_seconds", r.seconds);
        cairn_cli_print_json(out);
    } else if (ok) {
        printf("restored %s as '%s' (%zu disk%s, %.1f s); XML: %s%s\n", argv[1], r.name,
               json_array_size(r.disks), json_array_size(r.disks) == 1 ? "" : "s", r.seconds,
               r.xml_path, r.started ? "; defined and started" : r.defined ? "; defined" : "");
    }
    cairn_restore_result_clear(&r);
    return ok ? 0 : cairn_cli_fail(cli, gerr);
}
