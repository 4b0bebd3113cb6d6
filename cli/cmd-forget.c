/* cmd-forget.c - `cairn forget SNAPSHOT... [--dry-run] [--json]`: remove
 * snapshots from the repository's list (their objects stay until gc).
 * An id or an abbreviation works even when the snapshot's manifest is
 * damaged (nothing of it is read): the way out gc and verify point to. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "repo/lock.h"

/* "NAME, TIME" of a snapshot */
static char *
describe(const CairnSnapshot *s)
{
    g_autofree char *t = cairn_format_time_utc(s->manifest->time);
    return g_strdup_printf("%s, %s", s->manifest->name, t);
}

/* the id SPEC names: from the refs alone for an id, resolved for a name */
static gboolean
id_of(CairnRepo *repo, const char *spec, CairnId *ret_id, char **ret_what, GError **error)
{
    if (!cairn_snapshot_spec_is_id(spec)) {
        g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(CairnSnapshot) s = cairn_snapshot_resolve(repo, spec, broken, error);
        if (s && broken->len) {
            /* NAME@latest of the readable ones may not be the one meant */
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_INVALID,
                        "%u snapshot%s cannot be read (%s), so '%s' may not name the one you "
                        "mean: give its id", broken->len, broken->len == 1 ? "" : "s",
                        (char *) broken->pdata[0], spec);
            return FALSE;
        }
        if (!s)
            return FALSE;
        *ret_id = s->id;
        *ret_what = describe(s);
        return TRUE;
    }
    g_autoptr(GArray) ids = cairn_snapshot_match_ids(repo, spec, error);
    if (!ids)
        return FALSE;
    if (ids->len != 1) {
        g_autoptr(GString) c = g_string_new(NULL);
        for (guint i = 0; i < ids->len; i++) {
            char hex[CAIRN_ID_HEX_LEN + 1];
            g_string_append_printf(c, " %.16s", cairn_id_to_hex(&g_array_index(ids, CairnId, i),
                                                               hex));
        }
        g_set_error(error, CAIRN_REPO_ERROR, ids->len ? CAIRN_REPO_ERROR_AMBIGUOUS
                                                      : CAIRN_REPO_ERROR_NOT_FOUND,
                    ids->len ? "snapshot id '%s' is ambiguous, it matches:%s: give more digits"
                             : "no snapshot with id '%s'%s (list them with 'cairn snapshots')",
                    spec, c->str);
        return FALSE;
    }
    *ret_id = g_array_index(ids, CairnId, 0);
    g_autoptr(GError) lerr = NULL;
    g_autoptr(CairnSnapshot) s = cairn_snapshot_load(repo, ret_id, &lerr);
    *ret_what = s ? describe(s) : g_strdup("its manifest cannot be read");
    return TRUE;
}

int
cairn_cmd_forget(CairnCli *cli, int argc, char **argv)
{
    gboolean json = FALSE, dry_run = FALSE;
    GOptionEntry entries[] = {
        { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "only say what would be forgotten",
          NULL },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print a JSON summary", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("SNAPSHOT...");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc < 2)
        return cairn_cli_usage(cli, "give the snapshots to forget: ids, NAME@latest, NAME@~N or "
                               "NAME@TIME");
    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnRepo) repo = cairn_cli_open_repo(cli, &gerr);
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(CairnLock) lock = NULL;
    if (!dry_run &&
        !(lock = cairn_lock_acquire(repo, CAIRN_LOCK_SHARED, "forget", cli->lock_wait, &gerr)))
        return cairn_cli_fail(cli, gerr);
    /* every one is found before any is forgotten: a typo forgets nothing */
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(CairnId));
    g_autoptr(GPtrArray) whats = g_ptr_array_new_with_free_func(g_free);
    for (int i = 1; i < argc; i++) {
        CairnId id;
        char *what = NULL;
        if (!id_of(repo, argv[i], &id, &what, &gerr))
            return cairn_cli_fail(cli, gerr);
        gboolean dup = FALSE;
        for (guint k = 0; k < ids->len; k++)
            dup |= cairn_id_equal(&g_array_index(ids, CairnId, k), &id);
        if (dup) { /* named twice: forgotten once */
            g_free(what);
            continue;
        }
        g_array_append_val(ids, id);
        g_ptr_array_add(whats, what);
    }
    g_autoptr(CairnJson) arr = json_array();
    for (guint i = 0; i < ids->len; i++) {
        const CairnId *id = &g_array_index(ids, CairnId, i);
        char hex[CAIRN_ID_HEX_LEN + 1];
        cairn_id_to_hex(id, hex);
        if (!dry_run && !cairn_snapshot_forget(repo, id, &gerr))
            return cairn_cli_fail(cli, gerr);
        if (json)
            json_array_append_new(arr, json_pack("{s:s, s:s}", "id", hex, "about",
                                                 (char *) whats->pdata[i]));
        else
            printf("%s %.12s (%s)\n", dry_run ? "would forget" : "forgot", hex,
                   (char *) whats->pdata[i]);
    }
    if (json) {
        g_autoptr(CairnJson) o = json_pack("{s:b, s:O}", "dry_run", dry_run, "forgotten", arr);
        cairn_cli_print_json(o);
    } else if (!dry_run) {
        fprintf(stderr, "cairn forget: the space they alone use is freed by 'cairn gc'\n");
    }
    return 0;
}
