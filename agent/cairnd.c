/* cairnd.c - the per-host agent: `cairnd [OPTIONS]`, see cairnd(8).
 *
 * Reads $CAIRN_CONFIG_DIR/cairnd.conf (default /etc/cairn), the policies in
 * policies.d/ and its state, then runs scheduled jobs until SIGTERM. SIGHUP
 * re-reads the policies without touching running jobs. Runs in the
 * foreground: systemd's Type=notify gets READY=1 once the control socket
 * listens. */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib-unix.h>

#include "agent/daemon.h"
#include "agent/workspace.h"
#include "common/cleanup.h"
#include "common/util.h"

#ifndef CAIRN_BINDIR
#define CAIRN_BINDIR "/usr/local/bin"
#endif

static gboolean use_journal;

/* ---- sd_notify (the protocol is one datagram; no libsystemd needed) */

void
cairn_daemon_notify(const char *fmt, ...)
{
    const char *path = g_getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path)
        return;
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    cairn_autofd fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len);
    if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *) &sa, salen) < 0)
        g_debug("sd_notify: %s", g_strerror(errno));
}

/* ---- logging: the journal with fields when stderr is the journal,
 * else one line per message on stderr */

void
cairn_daemon_log(GLogLevelFlags level, const char *policy, const char *domain, guint job,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char jobs[16] = "";
    if (job)
        g_snprintf(jobs, sizeof jobs, "%u", job);
    GLogField fields[6] = {
        { "MESSAGE", msg, -1 },
        { "GLIB_DOMAIN", "cairnd", -1 },
        { "PRIORITY", level & G_LOG_LEVEL_WARNING ? "4" : level & G_LOG_LEVEL_CRITICAL ? "3"
                                                                                       : "6", -1 },
    };
    gsize n = 3;
    if (policy)
        fields[n++] = (GLogField) { "CAIRN_POLICY", policy, -1 };
    if (domain)
        fields[n++] = (GLogField) { "CAIRN_DOMAIN", domain, -1 };
    if (job)
        fields[n++] = (GLogField) { "CAIRN_JOB", jobs, -1 };
    if (use_journal && g_log_writer_journald(level, fields, n, NULL) == G_LOG_WRITER_HANDLED)
        return;
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *ts = g_date_time_format(now, "%Y-%m-%d %H:%M:%S");
    fprintf(stderr, "%s cairnd[%d]: %s%s%s%s%s%s%s\n", ts, (int) getpid(),
            level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL) ? "warning: " : "",
            domain || job ? "[" : "", domain ? domain : "", job ? "#" : "", jobs,
            domain || job ? "] " : "", msg);
}

/* ---- configuration: $CAIRN_CONFIG_DIR/cairnd.conf [cairnd] */

/* one line "FILE:LINE: message" more */
static void G_GNUC_PRINTF(4, 5)
add_problem(GString *problems, const char *path, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_string_append_printf(problems, "%s%s:%d: %s", problems->len ? "\n" : "", path, line, msg);
}

static gboolean
load_config(CairnDaemonConfig *c, GError **error)
{
    const char *dir = g_getenv("CAIRN_CONFIG_DIR");
    g_autofree char *path = g_build_filename(dir && *dir ? dir : "/etc/cairn", "cairnd.conf",
                                             NULL);
    g_autofree char *text = NULL;
    g_autoptr(GError) gerr = NULL;
    if (!g_file_get_contents(path, &text, NULL, &gerr)) {
        if (g_error_matches(gerr, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return TRUE;
        g_set_error(error, gerr->domain, gerr->code, "%s", gerr->message);
        return FALSE;
    }
    g_autoptr(GKeyFile) kf = g_key_file_new();
    if (!g_key_file_load_from_data(kf, text, (gsize) -1, G_KEY_FILE_NONE, &gerr)) {
        g_set_error(error, gerr->domain, gerr->code, "%s: %s", path, gerr->message);
        return FALSE;
    }
    /* every problem at once, each with its line */
    g_autoptr(GString) problems = g_string_new(NULL);
    static const char *const groups[] = { "cairnd", NULL };
    g_auto(GStrv) found = g_key_file_get_groups(kf, NULL);
    for (guint i = 0; found && found[i]; i++) {
        if (g_strv_contains(groups, found[i]))
            continue;
        g_autofree char *header = g_strdup_printf("[%s]", found[i]);
        add_problem(problems, path, cairn_key_file_line(text, header), "unknown group [%s]: the "
                    "settings go in [cairnd] (nothing of this group is used)", found[i]);
    }
    static const char *const known[] = { "repo",    "connect",    "max-jobs",    "min-free",
                                         "metrics", "retries",    "retry-delay", "kill-grace",
                                         "poll-interval", "state-dir", NULL };
    g_auto(GStrv) keys = g_key_file_get_keys(kf, "cairnd", NULL, NULL);
    for (guint i = 0; keys && keys[i]; i++) {
        int line = cairn_key_file_line(text, keys[i]);
        if (!g_strv_contains(known, keys[i])) {
            const char *dym = cairn_closest(keys[i], known);
            add_problem(problems, path, line, "unknown key '%s' in [cairnd]%s%s%s", keys[i],
                        dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
            continue;
        }
        g_autofree char *v = g_key_file_get_string(kf, "cairnd", keys[i], NULL);
        g_strstrip(v);
        gboolean ok = TRUE;
        int64_t secs;
        uint64_t bytes;
        if (!strcmp(keys[i], "repo")) {
            g_free(c->repo);
            c->repo = g_strdup(v);
        } else if (!strcmp(keys[i], "connect")) {
            g_free(c->uri);
            c->uri = g_strdup(v);
        } else if (!strcmp(keys[i], "metrics")) {
            g_free(c->metrics_path);
            c->metrics_path = *v ? g_strdup(v) : NULL;
        } else if (!strcmp(keys[i], "state-dir")) {
            g_free(c->state_path);
            c->state_path = g_build_filename(v, "cairnd.json", NULL);
        } else if (!strcmp(keys[i], "max-jobs") || !strcmp(keys[i], "retries")) {
            char *end;
            guint64 n = g_ascii_strtoull(v, &end, 10);
            ok = *v && !*end && n <= 64 && (n > 0 || !strcmp(keys[i], "retries"));
            if (ok)
                *(!strcmp(keys[i], "max-jobs") ? &c->max_jobs : &c->retries) = (guint) n;
        } else if (!strcmp(keys[i], "min-free")) {
            ok = cairn_parse_size(v, &bytes, NULL);
            c->min_free = bytes;
        } else {
            ok = cairn_parse_duration(v, &secs, NULL) && secs >= 0;
            if (!strcmp(keys[i], "retry-delay"))
                c->retry_delay = MAX(secs, 1);
            else if (!strcmp(keys[i], "kill-grace"))
                c->kill_grace = MAX(secs, 1);
            else
                c->poll_interval = MAX(secs, 1);
        }
        if (!ok)
            add_problem(problems, path, line, "invalid value '%s' for %s", v, keys[i]);
    }
    if (problems->len) {
        g_set_error_literal(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                            problems->str);
        return FALSE;
    }
    return TRUE;
}

/* ---- signals */

static gboolean
on_hup(gpointer data)
{
    CairnDaemon *d = data;
    cairn_daemon_notify("RELOADING=1");
    cairn_daemon_log(G_LOG_LEVEL_INFO, NULL, NULL, 0, "SIGHUP: reloading the policies");
    cairn_daemon_load_policies(d, FALSE);
    cairn_daemon_notify("READY=1\nSTATUS=%u policies", d->policies->len);
    cairn_daemon_wake(d, 0);
    return G_SOURCE_CONTINUE;
}

static gboolean
on_term(gpointer data)
{
    CairnDaemon *d = data;
    if (d->stopping) {
        cairn_daemon_log(G_LOG_LEVEL_INFO, NULL, NULL, 0, "still stopping: %u job%s running",
                         cairn_daemon_running(d), cairn_daemon_running(d) == 1 ? "" : "s");
        return G_SOURCE_CONTINUE;
    }
    cairn_daemon_notify("STOPPING=1");
    guint running = cairn_daemon_running(d);
    cairn_daemon_log(G_LOG_LEVEL_INFO, NULL, NULL, 0,
                     "stopping: %u running job%s asked to stop at a safe point", running,
                     running == 1 ? "" : "s");
    d->stopping = TRUE;
    for (guint i = 0; i < d->jobs->len; i++) {
        CairnDaemonJob *j = d->jobs->pdata[i];
        if (j->state == JOB_RUNNING)
            cairn_daemon_cancel(d, j, "cairnd is stopping");
    }
    if (running == 0)
        g_main_loop_quit(d->loop);
    return G_SOURCE_CONTINUE;
}

static int
run(CairnDaemon *d, int argc, char **argv)
{
    CairnDaemonConfig *c = &d->cfg;
    c->max_jobs = 2;
    c->min_free = 1024ull * 1024 * 1024;
    c->retries = 3;
    c->retry_delay = 300;
    c->kill_grace = 60;
    c->poll_interval = 30;
    const char *env_repo = g_getenv("CAIRN_REPO");
    c->repo = g_strdup(env_repo && *env_repo ? env_repo : "/var/lib/cairn/repo");
    const char *state_dir = g_getenv("CAIRN_STATE_DIR");
    c->state_path = g_build_filename(state_dir && *state_dir ? state_dir : "/var/lib/cairn/state",
                                     "cairnd.json", NULL);
    const char *bin = g_getenv("CAIRN_BIN");
    c->cairn_bin = g_strdup(bin && *bin ? bin : CAIRN_BINDIR "/cairn");
    if (g_file_test("/var/lib/prometheus/node-exporter", G_FILE_TEST_IS_DIR))
        c->metrics_path = g_strdup("/var/lib/prometheus/node-exporter/cairn.prom");

    g_autoptr(GError) gerr = NULL;
    if (!load_config(c, &gerr)) {
        fprintf(stderr, "cairnd: %s\n", gerr->message);
        return 1;
    }
    g_autofree char *repo = NULL, *uri = NULL, *sock = NULL, *metrics = NULL, *state = NULL;
    gboolean check = FALSE, version = FALSE;
    GOptionEntry entries[] = {
        { "repo", 'r', 0, G_OPTION_ARG_FILENAME, &repo, "the local repository", "PATH" },
        { "connect", 'c', 0, G_OPTION_ARG_STRING, &uri, "libvirt URI", "URI" },
        { "socket", 0, 0, G_OPTION_ARG_FILENAME, &sock,
          "control socket (default $CAIRN_RUN_DIR/cairnd.sock)", "PATH" },
        { "metrics", 0, 0, G_OPTION_ARG_FILENAME, &metrics,
          "Prometheus textfile to write (\"\" for none)", "FILE" },
        { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state, "persistent state directory", "DIR" },
        { "check", 0, 0, G_OPTION_ARG_NONE, &check,
          "load the configuration and policies, report, exit", NULL },
        { "version", 0, 0, G_OPTION_ARG_NONE, &version, "print the version", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- the cairn backup agent");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
        fprintf(stderr, "cairnd: %s\n", gerr->message);
        return 2;
    }
    if (version) {
        printf("cairnd %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (repo) {
        g_free(c->repo);
        c->repo = g_steal_pointer(&repo);
    }
    if (uri) {
        g_free(c->uri);
        c->uri = g_steal_pointer(&uri);
    }
    if (metrics) {
        g_free(c->metrics_path);
        c->metrics_path = *metrics ? g_steal_pointer(&metrics) : NULL;
    }
    if (state) {
        g_free(c->state_path);
        c->state_path = g_build_filename(state, "cairnd.json", NULL);
    }
    c->socket_path = sock ? g_steal_pointer(&sock)
                          : g_build_filename(cairn_run_dir(), "cairnd.sock", NULL);
    use_journal = g_log_writer_is_journald(fileno(stderr));

    /* every job step runs it: a daemon that cannot is refused at once */
    if (!g_file_test(c->cairn_bin, G_FILE_TEST_IS_EXECUTABLE)) {
        fprintf(stderr, "cairnd: the cairn command its jobs run, '%s', is not an executable "
                "file: install cairn ('make install'), or name it with $CAIRN_BIN\n",
                c->cairn_bin);
        return 1;
    }
    d->jobs = g_ptr_array_new_with_free_func((GDestroyNotify) cairn_daemon_job_free);
    gboolean policies_ok = cairn_daemon_load_policies(d, TRUE);
    if (check)
        return policies_ok ? 0 : 1;

    g_autofree char *state_dir_path = g_path_get_dirname(c->state_path);
    if (!cairn_mkdir_p(state_dir_path, 0700, &gerr)) {
        fprintf(stderr, "cairnd: cannot create the state directory: %s\n", gerr->message);
        return 1;
    }
    cairn_daemon_load_state(d);
    d->started = cairn_now();
    d->loop = g_main_loop_new(NULL, FALSE);
    cairn_daemon_first_poll(d, 10);
    if (!cairn_daemon_control_start(d, &gerr)) {
        cairn_daemon_log(G_LOG_LEVEL_CRITICAL, NULL, NULL, 0, "%s", gerr->message);
        return 1;
    }
    g_unix_signal_add(SIGHUP, on_hup, d);
    g_unix_signal_add(SIGTERM, on_term, d);
    g_unix_signal_add(SIGINT, on_term, d);
    signal(SIGPIPE, SIG_IGN);
    cairn_daemon_log(G_LOG_LEVEL_INFO, NULL, NULL, 0,
                     "cairnd %s started: repository %s, %u polic%s, at most %u jobs at once, "
                     "control socket %s", PACKAGE_VERSION, c->repo, d->policies->len,
                     d->policies->len == 1 ? "y" : "ies", c->max_jobs, c->socket_path);
    cairn_daemon_write_metrics(d);
    cairn_daemon_notify("READY=1\nSTATUS=%u policies\nMAINPID=%d", d->policies->len,
                        (int) getpid());
    cairn_daemon_wake(d, 0);
    g_main_loop_run(d->loop);

    cairn_daemon_save_state(d);
    cairn_daemon_write_metrics(d);
    cairn_daemon_control_stop(d);
    cairn_daemon_log(G_LOG_LEVEL_INFO, NULL, NULL, 0, "stopped");
    if (d->tick_source)
        g_source_remove(d->tick_source);
    /* a libvirt poll still running finishes in its thread; its result is
     * dropped with the process */
    g_ptr_array_unref(d->jobs);
    g_ptr_array_unref(d->policies);
    if (d->policy_errors)
        g_ptr_array_unref(d->policy_errors);
    if (d->domains)
        g_hash_table_unref(d->domains);
    json_decref(d->state);
    g_main_loop_unref(d->loop);
    g_free(d->libvirt_error);
    g_free(d->space_problem);
    return 0;
}

static void
config_clear(CairnDaemonConfig *c)
{
    g_free(c->repo);
    g_free(c->uri);
    g_free(c->socket_path);
    g_free(c->state_path);
    g_free(c->metrics_path);
    g_free(c->cairn_bin);
}

int
main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    CairnDaemon d = { 0 };
    /* the configuration is freed on every way out of the daemon */
    int rc = run(&d, argc, argv);
    config_clear(&d.cfg);
    return rc;
}
