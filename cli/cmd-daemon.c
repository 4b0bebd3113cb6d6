/* cmd-daemon.c - the commands that talk to cairnd over its control socket:
 * `cairn status`, `cairn jobs`, `cairn run POLICY|DOMAIN [--wait]`,
 * `cairn cancel JOB`. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/workspace.h"
#include "cli/cli.h"

static char *
socket_path(const char *given)
{
    if (given)
        return g_strdup(given);
    const char *env = g_getenv("CAIRN_SOCKET");
    if (env && *env)
        return g_strdup(env);
    return g_build_filename(cairn_run_dir(), "cairnd.sock", NULL);
}

/* one request, one reply; NULL after reporting */
static json_t *
request(CairnCli *cli, const char *path, json_t *req)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        cairn_cli_failf(cli, "socket path too long: %s", path);
        return NULL;
    }
    strcpy(sa.sun_path, path);
    cairn_autofd fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        int e = errno;
        if (e == ENOENT || e == ECONNREFUSED)
            cairn_cli_failf(cli, "cairnd is not running (no one listens on %s); start it with "
                            "'systemctl start cairnd'. Commands such as backup, restore and "
                            "push work without it.", path);
        else
            cairn_cli_failf(cli, "cannot reach cairnd at %s: %s", path, g_strerror(e));
        return NULL;
    }
    g_autofree char *text = json_dumps(req, JSON_COMPACT);
    g_autofree char *line = g_strconcat(text, "\n", NULL);
    g_autoptr(GError) gerr = NULL;
    if (!cairn_write_all(fd, line, strlen(line), path, &gerr)) {
        cairn_cli_fail(cli, gerr);
        return NULL;
    }
    shutdown(fd, SHUT_WR);
    g_autoptr(GString) buf = g_string_new(NULL);
    char chunk[65536];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cairn_cli_failf(cli, "cannot read cairnd's reply: %s", g_strerror(errno));
            return NULL;
        }
        g_string_append_len(buf, chunk, n);
    }
    json_error_t jerr;
    json_t *r = json_loads(buf->str, 0, &jerr);
    if (!r) {
        cairn_cli_failf(cli, "cairnd sent no valid reply (%s)", buf->len ? jerr.text : "empty");
        return NULL;
    }
    if (!json_is_true(json_object_get(r, "ok"))) {
        cairn_cli_failf(cli, "%s", json_string_value(json_object_get(r, "error")) ?: "failed");
        json_decref(r);
        return NULL;
    }
    return r;
}

static char *
fmt_time(json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return g_strdup("-");
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_local(json_integer_value(v));
    return t ? g_date_time_format(t, "%Y-%m-%d %H:%M:%S") : g_strdup("-");
}

static void
print_job(json_t *j)
{
    const char *state = json_string_value(json_object_get(j, "state"));
    const char *dom = json_string_value(json_object_get(j, "domain"));
    g_autofree char *t = fmt_time(json_object_get(j, json_object_get(j, "started") ? "started"
                                                                                    : "queued"));
    printf("%-5" JSON_INTEGER_FORMAT " %-7s %-10s %-16s %-14s %s", json_integer_value(json_object_get(j, "id")),
           json_string_value(json_object_get(j, "kind")), state, dom ? dom : "-",
           json_string_value(json_object_get(j, "policy")), t);
    json_t *step = json_object_get(j, "step");
    if (step) {
        json_t *pr = json_object_get(j, "progress");
        json_int_t done = json_integer_value(json_object_get(pr, "done"));
        json_int_t total = json_integer_value(json_object_get(pr, "total"));
        g_autofree char *d = cairn_format_size((uint64_t) done);
        g_autofree char *tt = cairn_format_size((uint64_t) total);
        printf("  %s %s/%s", json_string_value(step), d, tt);
    }
    const char *err = json_string_value(json_object_get(j, "error"));
    if (err)
        printf("  %s", err);
    const char *why = json_string_value(json_object_get(j, "waiting"));
    if (why)
        printf("  waits: %s", why);
    const char *warn = json_string_value(json_object_get(json_object_get(j, "result"),
                                                         "warnings"));
    if (warn)
        printf("  (warning: %s)", warn);
    printf("  [%s]\n", json_string_value(json_object_get(j, "reason")));
}

static void
print_jobs(json_t *jobs)
{
    printf("%-5s %-7s %-10s %-16s %-14s %s\n", "JOB", "KIND", "STATE", "DOMAIN", "POLICY",
           "STARTED");
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j) print_job(j);
}

/* `cairn status|jobs [--socket PATH] [--json]`: the reply to COMMAND; NULL
 * with *ret_status set after a usage error or a failed request */
static json_t *
query(CairnCli *cli, int argc, char **argv, const char *command, gboolean *ret_json,
      int *ret_status)
{
    g_autofree char *sock = NULL;
    GOptionEntry entries[] = {
        { "socket", 0, 0, G_OPTION_ARG_FILENAME, &sock, "cairnd's control socket", "PATH" },
        { "json", 0, 0, G_OPTION_ARG_NONE, ret_json, "print the reply as JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("");
    g_option_context_add_main_entries(ctx, entries, NULL);
    *ret_status = 2;
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return NULL;
    *ret_status = 1;
    g_autofree char *path = socket_path(sock);
    g_autoptr(CairnJson) req = json_pack("{s:s}", "command", command);
    return request(cli, path, req);
}

int
cairn_cmd_status(CairnCli *cli, int argc, char **argv)
{
    gboolean json = FALSE;
    int status;
    g_autoptr(CairnJson) r = query(cli, argc, argv, "status", &json, &status);
    if (!r)
        return status;
    if (json) {
        cairn_cli_print_json(r);
        /* as the text form: a refused policy file is a problem to act on */
        return json_array_size(json_object_get(json_object_get(r, "daemon"),
                                               "policy_errors")) ? 1 : 0;
    }
    json_t *d = json_object_get(r, "daemon");
    g_autofree char *started = fmt_time(json_object_get(d, "started"));
    printf("cairnd %s (pid %" JSON_INTEGER_FORMAT "), up since %s; repository %s; %"
           JSON_INTEGER_FORMAT " of at most %" JSON_INTEGER_FORMAT " jobs running\n",
           json_string_value(json_object_get(d, "version")),
           json_integer_value(json_object_get(d, "pid")), started,
           json_string_value(json_object_get(d, "repository")),
           json_integer_value(json_object_get(d, "running")),
           json_integer_value(json_object_get(d, "max_jobs")));
    int problems = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(d, "policy_errors"), i, v) {
        printf("  refused policy: %s\n", json_string_value(v));
        problems++;
    }
    if (json_object_get(d, "libvirt_error"))
        printf("  libvirt: %s\n", json_string_value(json_object_get(d, "libvirt_error")));
    if (json_object_get(d, "space_problem"))
        printf("  %s\n", json_string_value(json_object_get(d, "space_problem")));
    json_t *p;
    json_array_foreach(json_object_get(r, "policies"), i, p) {
        printf("\npolicy %s (%s)\n", json_string_value(json_object_get(p, "name")),
               json_string_value(json_object_get(p, "path")));
        printf("  %-16s %-20s %-10s %-20s %-9s %s\n", "DOMAIN", "LAST SUCCESS", "LAST",
               "NEXT RUN", "CHANGED", "SNAPSHOT");
        size_t k;
        json_t *e;
        json_array_foreach(json_object_get(p, "domains"), k, e) {
            g_autofree char *ls = fmt_time(json_object_get(e, "last_success"));
            /* when it starts: the schedule's next run, moved to the window */
            json_t *starts = json_object_get(e, "backup_starts");
            g_autofree char *nx = fmt_time(starts ? starts : json_object_get(e, "backup_next"));
            json_t *dirty = json_object_get(e, "dirty_bytes");
            g_autofree char *changed = dirty ? cairn_format_size((guint64) json_integer_value(dirty))
                                             : g_strdup("-");
            const char *snap = json_string_value(json_object_get(e, "last_snapshot"));
            const char *res = json_string_value(json_object_get(e, "last_result"));
            printf("  %-16s %-20s %-10s %-20s %-9s %.12s\n",
                   json_string_value(json_object_get(e, "domain")), ls, res ? res : "-", nx,
                   changed, snap ? snap : "-");
            const char *err = json_string_value(json_object_get(e, "last_error"));
            if (err && res && strcmp(res, "succeeded"))
                printf("    last error: %s\n", err);
            json_t *pend = json_object_get(e, "pending_push");
            const char *remote;
            json_t *ids;
            json_object_foreach(pend, remote, ids) if (json_array_size(ids))
                printf("    %zu snapshot%s waiting to be pushed to %s\n", json_array_size(ids),
                       json_array_size(ids) == 1 ? "" : "s", remote);
        }
        json_array_foreach(json_object_get(p, "missing_domains"), k, e)
            printf("  %-16s not defined on this host\n", json_string_value(e));
    }
    json_t *jobs = json_object_get(r, "jobs");
    if (json_array_size(jobs)) {
        printf("\n");
        print_jobs(jobs);
    }
    return problems ? 1 : 0;
}

int
cairn_cmd_jobs(CairnCli *cli, int argc, char **argv)
{
    gboolean json = FALSE;
    int status;
    g_autoptr(CairnJson) r = query(cli, argc, argv, "jobs", &json, &status);
    if (!r)
        return status;
    if (json)
        cairn_cli_print_json(json_object_get(r, "jobs"));
    else
        print_jobs(json_object_get(r, "jobs"));
    return 0;
}

/* wait until every job in ids has finished; 0 when all succeeded */
static int
wait_jobs(CairnCli *cli, const char *path, json_t *ids, gboolean json)
{
    g_autofree char *said = NULL;
    for (;;) {
        g_autoptr(CairnJson) req = json_pack("{s:s}", "command", "jobs");
        g_autoptr(CairnJson) r = request(cli, path, req);
        if (!r)
            return 1;
        guint pending = 0, failed = 0;
        g_autoptr(CairnJson) mine = json_array();
        size_t i;
        json_t *j;
        json_array_foreach(json_object_get(r, "jobs"), i, j) {
            size_t k;
            json_t *id;
            json_array_foreach(ids, k, id) {
                if (json_integer_value(id) != json_integer_value(json_object_get(j, "id")))
                    continue;
                const char *st = json_string_value(json_object_get(j, "state"));
                if (!strcmp(st, "queued") || !strcmp(st, "running"))
                    pending++;
                else if (strcmp(st, "succeeded"))
                    failed++;
                const char *why = json_string_value(json_object_get(j, "waiting"));
                if (why && g_strcmp0(why, said) && !cli->quiet) {
                    fprintf(stderr, "cairn run: job %" JSON_INTEGER_FORMAT " waits: %s\n",
                            json_integer_value(json_object_get(j, "id")), why);
                    g_free(said);
                    said = g_strdup(why);
                }
                json_array_append(mine, j);
            }
        }
        if (!pending) {
            if (json)
                cairn_cli_print_json(mine);
            else
                json_array_foreach(mine, i, j) print_job(j);
            return failed ? 1 : 0;
        }
        g_usleep(300 * 1000);
    }
}

int
cairn_cmd_run(CairnCli *cli, int argc, char **argv)
{
    gboolean json = FALSE, wait = FALSE;
    g_autofree char *sock = NULL;
    GOptionEntry entries[] = {
        { "socket", 0, 0, G_OPTION_ARG_FILENAME, &sock, "cairnd's control socket", "PATH" },
        { "wait", 'w', 0, G_OPTION_ARG_NONE, &wait,
          "wait for the jobs to finish; the exit status is theirs", NULL },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the jobs as JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("POLICY|DOMAIN");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc != 2)
        return cairn_cli_usage(cli, "give one policy (a file name in policies.d without .conf) "
                               "or one domain");
    g_autofree char *path = socket_path(sock);
    g_autoptr(CairnJson) req = json_pack("{s:s, s:s}", "command", "run", "target", argv[1]);
    g_autoptr(CairnJson) r = request(cli, path, req);
    if (!r)
        return 1;
    json_t *ids = json_object_get(r, "jobs");
    if (wait)
        return wait_jobs(cli, path, ids, json);
    if (json) {
        cairn_cli_print_json(ids);
    } else {
        size_t i;
        json_t *id;
        json_array_foreach(ids, i, id) printf("job %" JSON_INTEGER_FORMAT " queued\n",
                                              json_integer_value(id));
    }
    return 0;
}

int
cairn_cmd_cancel(CairnCli *cli, int argc, char **argv)
{
    g_autofree char *sock = NULL;
    GOptionEntry entries[] = {
        { "socket", 0, 0, G_OPTION_ARG_FILENAME, &sock, "cairnd's control socket", "PATH" },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("JOB");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    char *end = NULL;
    gint64 id = argc == 2 ? g_ascii_strtoll(argv[1], &end, 10) : 0;
    if (argc != 2 || !end || *end || id <= 0)
        return cairn_cli_usage(cli, "give one job number (cairn jobs lists them)");
    g_autofree char *path = socket_path(sock);
    g_autoptr(CairnJson) req = json_pack("{s:s, s:I}", "command", "cancel", "job",
                                         (json_int_t) id);
    g_autoptr(CairnJson) r = request(cli, path, req);
    if (!r)
        return 1;
    printf("job %" G_GINT64_FORMAT ": cancel requested\n", id);
    return 0;
}
