/* cmd-verify.c - `cairn verify [SNAPSHOT...] [--read-data|--read-data-subset N%] [--json]` */
#include "config.h"

#include <stdio.h>

#include "cli/cli.h"
#include "policies/remote.h"
#include "repo/lock.h"
#include "repo/quarantine.h"
#include "repo/verify.h"

/* Set the damaged objects aside (repo/quarantine.h): the next backup of the
 * same data stores them again. Returns how many (an object whole again by
 * now is left), or -1 with *ret_error: the report is printed all the same. */
static int
set_aside(CairnCli *cli, CairnRepo *repo, GArray *damaged, GError **ret_error)
{
    if (!damaged || damaged->len == 0)
        return 0;
    g_autoptr(CairnLock) lock = cairn_lock_acquire(repo, CAIRN_LOCK_SHARED, "verify",
                                                   cli->lock_wait, ret_error);
    if (!lock)
        return -1;
    g_autoptr(GHashTable) seen = g_hash_table_new(cairn_id_hash, cairn_id_equal_func);
    int n = 0;
    for (guint i = 0; i < damaged->len; i++) {
        CairnId *id = &g_array_index(damaged, CairnId, i);
        if (!g_hash_table_add(seen, id))
            continue;
        gboolean moved = FALSE;
        if (!cairn_repo_quarantine(repo, id, &moved, ret_error))
            return -1;
        n += moved;
    }
    return n;
}

/* after the report: what was set aside, or why nothing could be */
static void
say_set_aside(CairnCli *cli, int n, const GError *err)
{
    if (n < 0)
        fprintf(stderr, "cairn verify: the damaged objects were not set aside for repair: %s "
                "(verify --no-repair only reports, e.g. on a read-only repository)\n",
                err->message);
    else if (n > 0)
        fprintf(stderr, "cairn verify: set %d damaged object%s aside (quarantine/ in the "
                "repository): the next backup of the same data stores %s again, which "
                "repairs every snapshot that uses %s; a snapshot whose data is gone for good "
                "can be dropped with 'cairn forget'\n", n, n == 1 ? "" : "s",
                n == 1 ? "it" : "them", n == 1 ? "it" : "them");
}

/* An encrypted repository without its key (a remote that never sees it):
 * every object's stored bytes are checked against their trailing SHA-256. */
static int
verify_without_key(CairnCli *cli, gboolean json, gboolean repair)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnBackend) b = NULL;
    if (cairn_remote_is_name(cli->repo_location)) {
        g_autoptr(CairnRemote) r = cairn_remote_lookup(cli->repo_location, &gerr);
        b = r ? cairn_remote_open_backend(r, FALSE, &gerr) : NULL;
    } else {
        b = cairn_backend_open(cli->repo_location, FALSE, &gerr);
    }
    if (!b)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(CairnRepo) repo = cairn_repo_open_backend_keyless(g_steal_pointer(&b), NULL, TRUE,
                                                                &gerr);
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    CairnVerifyReport r;
    if (!cairn_verify_stored(repo, &r, &gerr))
        return cairn_cli_fail(cli, gerr);
    /* without the key the snapshots' contents are not followed: what an
     * earlier verify set aside and nothing stored again is still missing */
    g_autoptr(GHashTable) waiting = cairn_repo_damaged(repo, NULL);
    GHashTableIter it;
    gpointer id;
    if (waiting)
        g_hash_table_iter_init(&it, waiting);
    while (waiting && g_hash_table_iter_next(&it, &id, NULL)) {
        char hex[CAIRN_ID_HEX_LEN + 1];
        g_ptr_array_add(r.problems, g_strdup_printf("object %s was set aside as damaged and is "
                        "still missing: a push of the snapshots that use it (or a backup of "
                        "the same data) stores it again", cairn_id_to_hex(id, hex)));
    }
    g_autoptr(GError) aerr = NULL;
    int aside = repair ? set_aside(cli, repo, r.damaged, &aerr) : 0;
    if (json) {
        g_autoptr(CairnJson) probs = json_array();
        for (guint i = 0; i < r.problems->len; i++)
            json_array_append_new(probs, json_string(r.problems->pdata[i]));
        g_autoptr(CairnJson) o = json_pack("{s:b, s:b, s:i, s:I, s:O, s:i}", "ok",
                                           r.problems->len == 0, "keyless", TRUE, "snapshots",
                                           (int) r.snapshots, "objects_read",
                                           (json_int_t) r.objects_read, "problems", probs,
                                           "set_aside", MAX(aside, 0));
        cairn_cli_print_json(o);
    } else {
        printf("verified without the key: %u snapshot refs, %" G_GUINT64_FORMAT " objects' "
               "stored checksums: %u problem%s (snapshot contents need the key)\n",
               r.snapshots, r.objects_read, r.problems->len, r.problems->len == 1 ? "" : "s");
    }
    for (guint i = 0; i < r.problems->len; i++)
        fprintf(stderr, "cairn verify: %s\n", (char *) r.problems->pdata[i]);
    say_set_aside(cli, aside, aerr);
    int rc = r.problems->len || aside < 0 ? 1 : 0;
    cairn_verify_report_clear(&r);
    return rc;
}

int
cairn_cmd_verify(CairnCli *cli, int argc, char **argv)
{
    gboolean json = FALSE, read_data = FALSE, no_repair = FALSE, keyless = FALSE;
    g_autofree char *subset = NULL;
    GOptionEntry entries[] = {
        { "no-repair", 0, 0, G_OPTION_ARG_NONE, &no_repair,
          "only report damaged objects; do not set them aside for backups to repair", NULL },
        { "keyless", 0, 0, G_OPTION_ARG_NONE, &keyless,
          "an encrypted repository without its key: check every object's stored checksum "
          "(not its authenticity)", NULL },
        { "read-data", 0, 0, G_OPTION_ARG_NONE, &read_data,
          "read and re-hash every referenced chunk", NULL },
        { "read-data-subset", 0, 0, G_OPTION_ARG_STRING, &subset,
          "read and re-hash a random sample of this share of the chunks", "PERCENT" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the report as JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("[SNAPSHOT...]");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    g_autoptr(GError) gerr = NULL;
    double percent = read_data ? 100.0 : 0.0;
    if (subset && read_data)
        return cairn_cli_usage(cli, "give --read-data (every chunk) or --read-data-subset "
                               "(a share), not both");
    if (subset && !cairn_parse_percent(subset, &percent, &gerr))
        return cairn_cli_usage(cli, "--read-data-subset: %s", gerr->message);
    if (subset && percent <= 0.0)
        return cairn_cli_usage(cli, "--read-data-subset: give more than 0%% (without the "
                               "option, verify checks the structure and reads no chunk)");

    if (keyless && (argc > 1 || percent > 0))
        return cairn_cli_usage(cli, "--keyless checks every object's stored checksum: it "
                               "reads no data and takes no snapshot names");
    g_autoptr(CairnRepo) repo = cairn_cli_open_repo(cli, &gerr);
    if (!repo && g_error_matches(gerr, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEED_KEY) && argc == 1) {
        /* never by accident: a job that lost its key must not pass unnoticed */
        if (!keyless)
            return cairn_cli_failf(cli, "%s; or give --keyless to check only every object's "
                                   "stored checksum (damage, not authenticity)", gerr->message);
        return verify_without_key(cli, json, !no_repair);
    }
    if (keyless && repo)
        return cairn_cli_usage(cli, "--keyless is for an encrypted repository without its key: "
                               "this one opened");
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(GPtrArray) selected = NULL;
    g_autoptr(GPtrArray) all = NULL;
    if (argc > 1) {
        g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
        all = cairn_snapshot_list_full(repo, NULL, broken, &gerr);
        if (!all)
            return cairn_cli_fail(cli, gerr);
        cairn_cli_warn_each(cli, broken, "");
        selected = g_ptr_array_new();
        for (int i = 1; i < argc; i++) {
            CairnSnapshot *s = cairn_snapshot_resolve_in(all, argv[i], &gerr);
            if (!s)
                return cairn_cli_fail(cli, gerr);
            g_ptr_array_add(selected, s);
        }
    }
    gint64 t0 = g_get_monotonic_time();
    CairnVerifyReport r;
    if (!cairn_verify_sample(repo, selected, percent, &r, &gerr))
        return cairn_cli_fail(cli, gerr);
    double secs = (double) (g_get_monotonic_time() - t0) / 1e6;
    g_autoptr(GError) aerr = NULL;
    int aside = no_repair ? 0 : set_aside(cli, repo, r.damaged, &aerr);
    if (json) {
        g_autoptr(CairnJson) probs = json_array();
        for (guint i = 0; i < r.problems->len; i++)
            json_array_append_new(probs, json_string(r.problems->pdata[i]));
        g_autoptr(CairnJson) o = json_pack("{s:b, s:b, s:f, s:i, s:I, s:I, s:I, s:I, s:O, s:f, "
                                           "s:i}",
                                           "ok", r.problems->len == 0, "read_data",
                                           percent >= 100.0, "read_data_percent", percent,
                                           "snapshots", (int) r.snapshots, "indexes",
                                           (json_int_t) r.indexes, "chunks", (json_int_t) r.chunks,
                                           "chunks_read", (json_int_t) r.chunks_read,
                                           "objects_read", (json_int_t) r.objects_read,
                                           "problems", probs, "duration_seconds", secs,
                                           "set_aside", MAX(aside, 0));
        cairn_cli_print_json(o);
    } else {
        g_autofree char *how = percent >= 100.0 ? g_strdup("data read and re-hashed")
                               : percent > 0.0
                                   ? g_strdup_printf("a sample of %g%%: %" G_GUINT64_FORMAT
                                                     " chunks read and re-hashed", percent,
                                                     r.chunks_read)
                                   : g_strdup("structure only");
        printf("verified %u snapshot%s, %" G_GUINT64_FORMAT " disk indexes, %" G_GUINT64_FORMAT
               " chunks (%s): %u problem%s\n", r.snapshots, r.snapshots == 1 ? "" : "s",
               r.indexes, r.chunks, how, r.problems->len, r.problems->len == 1 ? "" : "s");
    }
    for (guint i = 0; i < r.problems->len; i++)
        fprintf(stderr, "cairn verify: %s\n", (char *) r.problems->pdata[i]);
    say_set_aside(cli, aside, aerr);
    int rc = r.problems->len || aside < 0 ? 1 : 0;
    cairn_verify_report_clear(&r);
    return rc;
}
