/* cmd-sync.c - `cairn push|pull REMOTE [SNAPSHOT|DOMAIN ...] [--all] [--bwlimit RATE]` */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "policies/remote.h"
#include "repo/backends/s3.h"
#include "repo/lock.h"
#include "repo/sync.h"

static guint64
requests_of(CairnBackend *b)
{
    return b && !strcmp(b->ops->kind, "s3") ? cairn_backend_s3_requests(b) : 0;
}

/* the snapshots named on the command line (all when none) */
static GPtrArray *
select_snapshots(GPtrArray *all, int argc, char **argv, gboolean skip_missing, GError **error)
{
    GPtrArray *out = g_ptr_array_new();
    if (argc <= 2) {
        for (guint i = 0; i < all->len; i++)
            g_ptr_array_add(out, all->pdata[i]);
        return out;
    }
    for (int a = 2; a < argc; a++) {
        const char *spec = argv[a];
        if (strchr(spec, '@') || cairn_is_hex(spec, 8, CAIRN_ID_HEX_LEN)) {
            g_autoptr(GError) e = NULL;
            CairnSnapshot *s = cairn_snapshot_resolve_in(all, spec, &e);
            if (!s && skip_missing && g_error_matches(e, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NOT_FOUND)) {
                fprintf(stderr, "cairn: skipping '%s': no longer in the repository\n", spec);
                continue;
            }
            if (!s) {
                g_propagate_error(error, g_steal_pointer(&e));
                g_ptr_array_unref(out);
                return NULL;
            }
            g_ptr_array_add(out, s);
            continue;
        }
        guint n = 0;
        for (guint i = 0; i < all->len; i++) {
            CairnSnapshot *s = all->pdata[i];
            if (!strcmp(s->manifest->name, spec)) {
                g_ptr_array_add(out, s);
                n++;
            }
        }
        if (!n) {
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NOT_FOUND,
                        "no snapshot or domain '%s' in the source repository", spec);
            g_ptr_array_unref(out);
            return NULL;
        }
    }
    return out;
}

static int
sync_command(CairnCli *cli, int argc, char **argv, gboolean push)
{
    gboolean all = FALSE, dry_run = FALSE, json = FALSE, skip_missing = FALSE;
    g_autofree char *bw = NULL;
    int parallel = -1;
    GOptionEntry entries[] = {
        { "all", 0, 0, G_OPTION_ARG_NONE, &all, "every snapshot (the default)", NULL },
        { "bwlimit", 0, 0, G_OPTION_ARG_STRING, &bw, "at most RATE bytes per second "
          "(e.g. 20M)", "RATE" },
        { "parallel", 0, 0, G_OPTION_ARG_INT, &parallel, "objects in flight (default 8)", "N" },
        { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "only count what would move", NULL },
        { "skip-missing", 0, 0, G_OPTION_ARG_NONE, &skip_missing,
          "skip snapshot ids that are no longer in the source (pruned)", NULL },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print a JSON summary", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("REMOTE [SNAPSHOT|DOMAIN ...]");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc < 2)
        return cairn_cli_usage(cli, "give a remote (a name from 'cairn remote list', or a URL "
                               "s3://BUCKET/PREFIX or file:///PATH)");
    if (all && argc > 2)
        return cairn_cli_usage(cli, "--all and a list of snapshots exclude each other");
    if (parallel != -1 && (parallel < 1 || parallel > 64))
        return cairn_cli_usage(cli, "--parallel must be from 1 to 64");
    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnRemote) remote = cairn_remote_lookup(argv[1], &gerr);
    if (!remote)
        return cairn_cli_fail(cli, gerr);
    /* what the target's snapshots need is checked against the local
     * indexes: an object lost or set aside there is sent again */
    CairnSyncOptions o = { .parallel = parallel > 0 ? (guint) parallel : remote->parallel,
                           .bwlimit = remote->bwlimit, .dry_run = dry_run,
                           .repair_present = TRUE };
    cairn_cancel_on_signals(); /* SIGINT/SIGTERM: stop after the objects in flight, unlock */
    if (bw && !cairn_parse_size(bw, &o.bwlimit, &gerr))
        return cairn_cli_usage(cli, "--bwlimit: %s", gerr->message);

    /* src: where snapshots come from; dst: where they go */
    g_autoptr(CairnRepo) src = NULL, dst = NULL;
    CairnBackend *dst_backend;
    if (push) {
        if (!(src = cairn_cli_open_repo(cli, &gerr)))
            return cairn_cli_fail(cli, gerr);
        dst_backend = cairn_remote_open_backend(remote, !dry_run, &gerr);
    } else {
        CairnBackend *rb = cairn_remote_open_backend(remote, FALSE, &gerr);
        if (!rb || !(src = cairn_repo_open_backend(rb, cli->key_file, &gerr)))
            return cairn_cli_fail(cli, gerr);
        dst_backend = cairn_backend_open(cli->repo_location, !dry_run, &gerr);
    }
    if (!dst_backend && dry_run &&
        g_error_matches(gerr, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NOT_FOUND)) {
        g_clear_error(&gerr); /* a dry run into nothing yet: everything would move */
        dst_backend = cairn_backend_memory_new();
    }
    if (!dst_backend)
        return cairn_cli_fail(cli, gerr);
    gboolean empty = FALSE;
    if (!cairn_sync_prepare_target(src, dst_backend, dry_run, &empty, &gerr)) {
        cairn_backend_free(dst_backend);
        return cairn_cli_fail(cli, gerr);
    }
    /* a dry run against an empty target: its backend alone (no config to open) */
    g_autoptr(CairnBackend) bare = dry_run && empty ? dst_backend : NULL;
    if (!bare && !(dst = cairn_repo_open_backend(dst_backend, cli->key_file, &gerr)))
        return cairn_cli_fail(cli, gerr);
    CairnBackend *dstb = bare ? bare : cairn_repo_backend(dst);
    g_autoptr(CairnLock) src_lock = NULL, dst_lock = NULL;
    if (!dry_run &&
        (!(src_lock = cairn_lock_acquire(src, CAIRN_LOCK_SHARED, push ? "push" : "pull",
                                         cli->lock_wait, &gerr)) ||
         !(dst_lock = cairn_lock_acquire(dst, CAIRN_LOCK_SHARED, push ? "push" : "pull",
                                         cli->lock_wait, &gerr))))
        return cairn_cli_fail(cli, gerr);
    if (!push)
        o.index_repo = dst; /* the local side (NULL in a dry run into nothing) */
    /* a snapshot whose manifest cannot be read cannot move; the others do */
    g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) list = cairn_snapshot_list_full(src, NULL, broken, &gerr);
    if (!list)
        return cairn_cli_fail(cli, gerr);
    cairn_cli_warn_each(cli, broken, "; not copied");
    g_autoptr(GPtrArray) chosen = select_snapshots(list, argc, argv, skip_missing, &gerr);
    if (!chosen)
        return cairn_cli_fail(cli, gerr);

    guint64 req0 = requests_of(cairn_repo_backend(src)) + requests_of(dstb);
    CairnCliProgress progress;
    cairn_cli_progress_init(&progress, cli, cli->command);
    if (progress.active || progress.fd >= 0) {
        o.progress = cairn_cli_progress_cb;
        o.progress_data = &progress;
    }
    CairnSyncStats st;
    gboolean ok = cairn_sync(src, dstb, chosen, &o, &st, &gerr);
    cairn_cli_progress_done(&progress);
    guint64 requests = requests_of(cairn_repo_backend(src)) +
                       requests_of(dstb) - req0;
    for (guint i = 0; i < st.problems->len; i++)
        fprintf(stderr, "cairn %s: %s\n", cli->command, (char *) st.problems->pdata[i]);
    if (json) {
        g_autoptr(CairnJson) probs = json_array();
        for (guint i = 0; i < st.problems->len; i++)
            json_array_append_new(probs, json_string(st.problems->pdata[i]));
        g_autoptr(CairnJson) out = json_pack(
            "{s:b, s:b, s:s, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:f, s:O}", "ok", ok,
            "dry_run", dry_run, "remote", argv[1], "snapshots", (int) chosen->len,
            "snapshots_sent", (int) st.snapshots_sent, "snapshots_present",
            (int) st.snapshots_present, "snapshots_repaired", (int) st.snapshots_repaired,
            "objects_sent", (json_int_t) st.objects_sent,
            "objects_present", (json_int_t) st.objects_present, "objects_rejected",
            (json_int_t) st.objects_rejected, "bytes_sent", (json_int_t) st.bytes_sent,
            "requests", (json_int_t) requests, "duration_seconds", st.seconds, "problems", probs);
        cairn_cli_print_json(out);
    } else {
        g_autofree char *sent = cairn_format_size(st.bytes_sent);
        const char *verb = dry_run ? "to send" : "sent";
        printf("%s%s %s: %u snapshot%s %s, %u already there; %" G_GUINT64_FORMAT
               " objects (%s) %s, %" G_GUINT64_FORMAT " already there; %" G_GUINT64_FORMAT
               " requests; %.1f s\n", dry_run ? "dry run: " : "", cli->command, argv[1],
               st.snapshots_sent, st.snapshots_sent == 1 ? "" : "s", verb, st.snapshots_present,
               st.objects_sent, sent, verb, st.objects_present, requests, st.seconds);
        if (st.snapshots_repaired)
            printf("%u snapshot%s already there lacked objects there: they were sent again\n",
                   st.snapshots_repaired, st.snapshots_repaired == 1 ? "" : "s");
    }
    cairn_sync_stats_clear(&st);
    if (!ok)
        return cairn_cli_fail(cli, gerr);
    return broken->len ? 1 : 0; /* full success only when every snapshot moved */
}

int
cairn_cmd_push(CairnCli *cli, int argc, char **argv)
{
    return sync_command(cli, argc, argv, TRUE);
}

int
cairn_cmd_pull(CairnCli *cli, int argc, char **argv)
{
    return sync_command(cli, argc, argv, FALSE);
}
