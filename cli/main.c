/* main.c - `cairn [GLOBAL OPTIONS] COMMAND [ARGS]`: dispatch to cmd-*.c. */
#include "config.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "repo/lock.h"

static const struct {
    const char *name;
    CairnCommandFunc fn;
    const char *summary;
} commands[] = {
    { "init", cairn_cmd_init, "create a repository" },
    { "backup", cairn_cmd_backup, "back up a libvirt domain, or disk images (--image)" },
    { "snapshots", cairn_cmd_snapshots, "list snapshots" },
    { "show", cairn_cmd_show, "show one snapshot" },
    { "verify", cairn_cmd_verify, "check snapshots (--read-data[-subset]: re-hash the data)" },
    { "prune", cairn_cmd_prune, "forget snapshots by retention rules" },
    { "forget", cairn_cmd_forget, "forget the given snapshots (also damaged ones)" },
    { "gc", cairn_cmd_gc, "delete objects no snapshot references" },
    { "push", cairn_cmd_push, "copy snapshots to a remote repository" },
    { "pull", cairn_cmd_pull, "copy snapshots from a remote repository" },
    { "remote", cairn_cmd_remote, "add, list, show and test remotes" },
    { "policy", cairn_cmd_policy, "check, list and show backup policies" },
    { "cat", cairn_cmd_cat, "print an object's decoded content" },
    { "restore", cairn_cmd_restore, "recreate a domain from a snapshot" },
    { "restore-disk", cairn_cmd_restore_disk, "write one disk of a snapshot to a file" },
    { "serve", cairn_cmd_serve, "serve a disk of a snapshot as a read-only NBD export" },
    { "status", cairn_cmd_status, "cairnd: policies, next runs, jobs, last results" },
    { "jobs", cairn_cmd_jobs, "cairnd: queued, running and recent jobs" },
    { "run", cairn_cmd_run, "cairnd: back up a policy's domains or a domain now" },
    { "cancel", cairn_cmd_cancel, "cairnd: cancel a job" },
};

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: cairn [--repo PATH|URL] [--key-file FILE] [--lock-wait DURATION] [-q]\n"
            "             COMMAND [ARGS...]\n\n"
            "The repository is --repo, else $CAIRN_REPO, else " CAIRN_DEFAULT_REPO ".\n"
            "Encrypted repositories need --key-file or $CAIRN_KEY_FILE.\n\ncommands:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
        fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'cairn COMMAND --help' describes a command; see cairn(1).\n");
}

/* value of "--opt VALUE" or "--opt=VALUE" at argv[*i], advancing *i */
static const char *
opt_value(int argc, char **argv, int *i, const char *opt)
{
    size_t n = strlen(opt);
    if (!strncmp(argv[*i], opt, n) && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (!strcmp(argv[*i], opt)) {
        if (*i + 1 >= argc)
            return NULL;
        return argv[++*i];
    }
    return NULL;
}

/* GLib keeps idle thread-pool threads for reuse; let them exit before the
 * process does, so their thread-local state (OpenSSL's, zstd contexts) is
 * released by its destructors instead of being cut off at exit. */
static guint
count_threads(void)
{
    g_autoptr(GDir) d = g_dir_open("/proc/self/task", 0, NULL);
    guint n = 0;
    while (d && g_dir_read_name(d))
        n++;
    return n;
}

static void
reap_idle_threads(void)
{
    guint idle = g_thread_pool_get_num_unused_threads();
    guint before = count_threads();
    g_thread_pool_set_max_unused_threads(0);
    g_thread_pool_stop_unused_threads();
    /* a thread leaves the idle count before its thread-local destructors
     * have run: wait until the threads themselves are gone (bounded) */
    for (int i = 0; i < 2000; i++) {
        if (g_thread_pool_get_num_unused_threads() == 0 &&
            (idle == 0 || before == 0 || count_threads() + idle <= before))
            break;
        g_usleep(5000);
    }
}

static gboolean quiet;

/* GLib messages (a warning of a background thread, such as the lock's
 * refresher) in cairn's own format: "cairn: warning: ..." */
static GLogWriterOutput
log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
    const char *msg = NULL;
    for (gsize i = 0; i < n_fields; i++)
        if (!strcmp(fields[i].key, "MESSAGE"))
            msg = fields[i].value;
    if (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO))
        return g_log_writer_default(level, fields, n_fields, data); /* G_MESSAGES_DEBUG */
    const char *what = level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL) ? "error"
                       : level & G_LOG_LEVEL_WARNING                   ? "warning"
                                                                        : "note";
    fprintf(stderr, "cairn: %s: %s\n", what, msg ? msg : "(no message)");
    return G_LOG_WRITER_HANDLED;
}

static void
say_waiting(const char *conflict, int64_t wait_seconds)
{
    if (quiet)
        return;
    fprintf(stderr, "cairn: waiting up to %" G_GINT64_FORMAT " s for the repository: %s "
            "('cairn --lock-wait DURATION COMMAND', or gc's own --wait, sets how long)\n",
            wait_seconds, conflict);
}

int
main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    g_log_set_writer_func(log_writer, NULL, NULL);
    /* as virsh: a peer that closed its socket (libvirtd, an NBD server, an
     * S3 endpoint) is an error to report, never a silent death (status 141) */
    signal(SIGPIPE, SIG_IGN);
    CairnCli cli = { .lock_wait = 600 };
    cli.repo_location = g_getenv("CAIRN_REPO");
    cli.key_file = g_getenv("CAIRN_KEY_FILE");
    if (cli.key_file && !*cli.key_file)
        cli.key_file = NULL;
    if (!cli.repo_location || !*cli.repo_location)
        cli.repo_location = CAIRN_DEFAULT_REPO;

    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("cairn %s\n", PACKAGE_VERSION);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            cli.quiet = TRUE;
        } else if (!strncmp(a, "--repo", 6) && (v = opt_value(argc, argv, &i, "--repo"))) {
            cli.repo_location = v;
        } else if (!strncmp(a, "--key-file", 10) &&
                   (v = opt_value(argc, argv, &i, "--key-file"))) {
            cli.key_file = v;
        } else if (!strncmp(a, "--lock-wait", 11) &&
                   (v = opt_value(argc, argv, &i, "--lock-wait"))) {
            g_autoptr(GError) gerr = NULL;
            if (!cairn_parse_duration(v, &cli.lock_wait, &gerr)) {
                fprintf(stderr, "cairn: --lock-wait: %s\n", gerr->message);
                return 2;
            }
        } else {
            fprintf(stderr, "cairn: unknown or incomplete global option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    quiet = cli.quiet;
    cairn_lock_on_wait(say_waiting);
    const char *name = argv[i];
    for (size_t c = 0; c < G_N_ELEMENTS(commands); c++) {
        if (!strcmp(commands[c].name, name)) {
            cli.command = name;
            int rc = commands[c].fn(&cli, argc - i, argv + i);
            reap_idle_threads();
            return rc;
        }
    }
    const char *names[G_N_ELEMENTS(commands) + 1];
    for (size_t c = 0; c < G_N_ELEMENTS(commands); c++)
        names[c] = commands[c].name;
    names[G_N_ELEMENTS(commands)] = NULL;
    const char *close = cairn_closest(name, names);
    fprintf(stderr, "cairn: unknown command '%s'%s%s%s; 'cairn --help' lists them\n", name,
            close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "");
    return 2;
}
