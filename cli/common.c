/* common.c - helpers shared by the subcommands. */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "policies/remote.h"
#include "repo/lock.h"
#include "repo/sync.h"

int
cairn_cli_fail(CairnCli *cli, GError *error)
{
    if (cli->command)
        fprintf(stderr, "cairn %s: %s\n", cli->command, error->message);
    else
        fprintf(stderr, "cairn: %s\n", error->message);
    return 1;
}

static int
report(CairnCli *cli, int status, const char *fmt, va_list ap)
{
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    fprintf(stderr, "cairn %s: %s\n", cli->command ? cli->command : "", msg);
    return status;
}

int
cairn_cli_failf(CairnCli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = report(cli, 1, fmt, ap);
    va_end(ap);
    return status;
}

int
cairn_cli_usage(CairnCli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = report(cli, 2, fmt, ap);
    va_end(ap);
    return status;
}

gboolean
cairn_cli_parse(CairnCli *cli, GOptionContext *ctx, int *argc, char ***argv)
{
    g_autoptr(GError) gerr = NULL;
    g_autofree char *prg = g_strdup_printf("cairn %s", cli->command);
    g_set_prgname(prg);
    if (!g_option_context_parse(ctx, argc, argv, &gerr)) {
        static const char *const global[] = { "--repo", "--key-file", "--lock-wait", "--quiet",
                                              "-q", NULL };
        const char *opt = strstr(gerr->message, "option ");
        g_autofree char *name = opt ? g_strndup(opt + 7, strcspn(opt + 7, "=")) : NULL;
        gboolean is_global = name && g_strv_contains(global, name);
        if (is_global)
            fprintf(stderr, "cairn %s: %s: it is a global option, it goes before the command "
                    "('cairn %s%s %s ...')\n", cli->command, gerr->message, name,
                    strcmp(name, "-q") && strcmp(name, "--quiet") ? " VALUE" : "",
                    cli->command);
        else
            fprintf(stderr, "cairn %s: %s ('cairn %s --help' lists the options)\n", cli->command,
                    gerr->message, cli->command);
        return FALSE;
    }
    return TRUE;
}

CairnRepo *
cairn_cli_open_repo(CairnCli *cli, GError **error)
{
    /* --repo NAME of a configured remote works like its URL */
    if (cairn_remote_is_name(cli->repo_location))
        return cairn_cli_open_remote_repo(cli, cli->repo_location, error);
    return cairn_repo_open(cli->repo_location, cli->key_file, error);
}

CairnRepo *
cairn_cli_open_remote_repo(CairnCli *cli, const char *remote, GError **error)
{
    g_autoptr(CairnRemote) r = cairn_remote_lookup(remote, error);
    if (!r)
        return NULL;
    CairnBackend *b = cairn_remote_open_backend(r, FALSE, error);
    if (!b)
        return NULL;
    return cairn_repo_open_backend(b, cli->key_file, error);
}

/* Copy one snapshot of remote_repo (what the local repository lacks,
 * verified on arrival, as `cairn pull` does) into the local repository, which
 * is created when absent; returns it opened. */
static CairnRepo *
pull_one(CairnCli *cli, CairnRemote *remote, CairnRepo *remote_repo, CairnSnapshot *s,
         GError **error)
{
    g_autoptr(CairnBackend) local = cairn_backend_open(cli->repo_location, TRUE, error);
    if (!local || !cairn_sync_prepare_target(remote_repo, local, FALSE, NULL, error))
        return NULL;
    g_autoptr(CairnRepo) lrepo = cairn_repo_open_backend(g_steal_pointer(&local), cli->key_file,
                                                         error);
    if (!lrepo)
        return NULL;
    g_autoptr(CairnLock) src_lock = cairn_lock_acquire(remote_repo, CAIRN_LOCK_SHARED, "pull",
                                                       cli->lock_wait, error);
    if (!src_lock)
        return NULL;
    g_autoptr(CairnLock) dst_lock = cairn_lock_acquire(lrepo, CAIRN_LOCK_SHARED, "pull",
                                                       cli->lock_wait, error);
    if (!dst_lock)
        return NULL;
    g_autoptr(GPtrArray) one = g_ptr_array_new();
    g_ptr_array_add(one, s);
    /* what the local copy lacks (set aside by verify, say) comes back too */
    CairnSyncOptions o = { .parallel = remote->parallel ? remote->parallel : 8,
                           .bwlimit = remote->bwlimit, .repair_present = TRUE,
                           .index_repo = lrepo };
    CairnCliProgress progress;
    cairn_cli_progress_init(&progress, cli, "pull");
    if (progress.active) {
        o.progress = cairn_cli_progress_cb;
        o.progress_data = &progress;
    }
    CairnSyncStats st;
    gboolean ok = cairn_sync(remote_repo, cairn_repo_backend(lrepo), one, &o, &st, error);
    cairn_cli_progress_done(&progress);
    cairn_sync_stats_clear(&st);
    return ok ? g_steal_pointer(&lrepo) : NULL;
}

int
cairn_cli_no_snapshot_named(CairnCli *cli, CairnRepo *repo, const char *name)
{
    g_autoptr(GPtrArray) all = cairn_snapshot_list_full(repo, NULL, NULL, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    for (guint i = 0; all && i < all->len; i++) {
        const char *n = ((CairnSnapshot *) all->pdata[i])->manifest->name;
        if (!g_ptr_array_find_with_equal_func(names, n, g_str_equal, NULL))
            g_ptr_array_add(names, (gpointer) n);
    }
    g_ptr_array_add(names, NULL);
    const char *close = cairn_closest(name, (const char *const *) names->pdata);
    g_autofree char *known = g_strjoinv(", ", (char **) names->pdata);
    return cairn_cli_failf(cli, "no snapshot named '%s'%s%s%s (names: %s)", name,
                           close ? " (did you mean '" : "", close ? close : "",
                           close ? "'?)" : "", *known ? known : "none");
}

void
cairn_cli_warn_each(CairnCli *cli, GPtrArray *lines, const char *suffix)
{
    for (guint i = 0; lines && i < lines->len; i++)
        fprintf(stderr, "cairn %s: warning: %s%s\n", cli->command, (char *) lines->pdata[i],
                suffix);
}

CairnSnapshot *
cairn_cli_resolve(CairnCli *cli, CairnRepo *repo, const char *spec, GError **error)
{
    g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
    CairnSnapshot *s = cairn_snapshot_resolve(repo, spec, broken, error);
    cairn_cli_warn_each(cli, broken, "");
    return s;
}

CairnSnapshot *
cairn_cli_open_snapshot(CairnCli *cli, const char *from, gboolean no_cache, const char *spec,
                        CairnRepo **ret_repo, GError **error)
{
    g_autoptr(CairnRepo) repo = NULL;
    g_autoptr(CairnSnapshot) s = NULL;
    if (!from) {
        if (!(repo = cairn_cli_open_repo(cli, error)) ||
            !(s = cairn_cli_resolve(cli, repo, spec, error)))
            return NULL;
        *ret_repo = g_steal_pointer(&repo);
        return g_steal_pointer(&s);
    }
    g_autoptr(CairnRemote) remote = cairn_remote_lookup(from, error);
    if (!remote)
        return NULL;
    CairnBackend *b = cairn_remote_open_backend(remote, FALSE, error);
    if (!b || !(repo = cairn_repo_open_backend(b, cli->key_file, error)) ||
        !(s = cairn_cli_resolve(cli, repo, spec, error)))
        return NULL;
    if (no_cache) {
        *ret_repo = g_steal_pointer(&repo);
        return g_steal_pointer(&s);
    }
    g_autoptr(CairnRepo) local = pull_one(cli, remote, repo, s, error);
    if (!local)
        return NULL;
    CairnSnapshot *ls = cairn_snapshot_load(local, &s->id, error);
    if (ls)
        *ret_repo = g_steal_pointer(&local);
    return ls;
}

int
cairn_cli_signalfd(void)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -1;
    /* a shell starts background jobs with SIGINT ignored: we handle it */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

void
cairn_cli_print_json(json_t *value)
{
    /* 9 significant digits: 0.095042, not 0.095042000000000001 */
    g_autofree char *s = json_dumps(value, JSON_INDENT(2) | JSON_SORT_KEYS |
                                           JSON_REAL_PRECISION(9));
    fputs(s, stdout);
    fputc('\n', stdout);
}

char *
cairn_cli_short_id(const CairnId *id)
{
    char hex[CAIRN_ID_HEX_LEN + 1];
    cairn_id_to_hex(id, hex);
    return g_strndup(hex, 12);
}

json_t *
cairn_cli_snapshot_json(CairnSnapshot *s)
{
    json_t *o = cairn_manifest_to_json_value(s->manifest);
    char hex[CAIRN_ID_HEX_LEN + 1];
    json_object_set_new(o, "id", json_string(cairn_id_to_hex(&s->id, hex)));
    return o;
}

void
cairn_cli_progress_init(CairnCliProgress *p, CairnCli *cli, const char *label)
{
    memset(p, 0, sizeof *p);
    p->cli = cli;
    p->label = label;
    p->start_us = g_get_monotonic_time();
    p->active = !cli->quiet && isatty(STDERR_FILENO);
    /* cairnd runs commands with $CAIRN_PROGRESS_FD: one JSON line per update */
    const char *fd = g_getenv("CAIRN_PROGRESS_FD");
    p->fd = fd && *fd ? (int) g_ascii_strtoll(fd, NULL, 10) : -1;
    if (p->fd <= STDERR_FILENO || fcntl(p->fd, F_GETFD) < 0)
        p->fd = -1;
}

static void
progress_line(CairnCliProgress *p, uint64_t done, uint64_t total)
{
    g_autoptr(CairnJson) o = json_pack("{s:s, s:I, s:I}", "label", p->label ? p->label : "",
                                    "done", (json_int_t) done, "total", (json_int_t) total);
    g_autofree char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (!text)
        return;
    g_autofree char *line = g_strconcat(text, "\n", NULL);
    if (write(p->fd, line, strlen(line)) < 0)
        p->fd = -1; /* the reader went away: no more updates */
}

void
cairn_cli_progress_cb(uint64_t done, uint64_t total, gpointer user_data)
{
    CairnCliProgress *p = user_data;
    if (!p->active && p->fd < 0)
        return;
    gint64 now = g_get_monotonic_time();
    if (now - p->last_us < (p->active ? 200000 : 500000) && done < total)
        return;
    p->last_us = now;
    if (p->fd >= 0)
        progress_line(p, done, total);
    if (!p->active)
        return;
    double secs = (double) (now - p->start_us) / 1e6;
    double rate = secs > 0 ? (double) done / secs : 0;
    g_autofree char *d = cairn_format_size(done);
    g_autofree char *t = cairn_format_size(total);
    g_autofree char *r = cairn_format_size((uint64_t) rate);
    double eta = rate > 0 ? (double) (total - done) / rate : 0;
    fprintf(stderr, "\r%-6s %3d%%  %s / %s  %s/s  ETA %.0fs   ", p->label,
            total ? (int) (100.0 * (double) done / (double) total) : 100, d, t, r, eta);
}

void
cairn_cli_progress_done(CairnCliProgress *p)
{
    if (p->active && p->last_us)
        fprintf(stderr, "\r\033[K");
}

const CairnManifestDisk *
cairn_cli_find_disk(CairnCli *cli, CairnSnapshot *s, const char *spec, const char *target)
{
    const CairnManifestDisk *disk = cairn_manifest_find_disk(s->manifest, target);
    if (disk)
        return disk;
    g_autoptr(GString) have = g_string_new(NULL);
    for (guint i = 0; i < s->manifest->disks->len; i++)
        g_string_append_printf(have, "%s%s", i ? ", " : "",
                               ((CairnManifestDisk *) s->manifest->disks->pdata[i])->target);
    cairn_cli_failf(cli, "snapshot '%s' has no disk '%s' (it has: %s)", spec, target, have->str);
    return NULL;
}
