/* cmd-prune.c - `cairn prune --keep-* N ... [--name NAME] [--dry-run] [--json]` */
#include "config.h"

#include <stdio.h>

#include "cli/cli.h"
#include "repo/prune.h"

int
cairn_cmd_prune(CairnCli *cli, int argc, char **argv)
{
    CairnKeepPolicy p = { 0 };
    g_autofree char *name = NULL;
    gboolean json = FALSE, dry_run = FALSE;
    GOptionEntry entries[] = {
        { "keep-last", 0, 0, G_OPTION_ARG_INT, &p.last, "keep the N newest", "N" },
        { "keep-hourly", 0, 0, G_OPTION_ARG_INT, &p.hourly, "newest of each of N hours", "N" },
        { "keep-daily", 0, 0, G_OPTION_ARG_INT, &p.daily, "newest of each of N days", "N" },
        { "keep-weekly", 0, 0, G_OPTION_ARG_INT, &p.weekly, "newest of each of N weeks", "N" },
        { "keep-monthly", 0, 0, G_OPTION_ARG_INT, &p.monthly, "newest of each of N months", "N" },
        { "keep-yearly", 0, 0, G_OPTION_ARG_INT, &p.yearly, "newest of each of N years", "N" },
        { "name", 0, 0, G_OPTION_ARG_STRING, &name, "only snapshots of NAME", "NAME" },
        { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "only show what would go", NULL },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the plan as JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("--keep-... N");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc > 1)
        return cairn_cli_usage(cli, "unexpected argument '%s' (use --name NAME)", argv[1]);
    if (p.last < 0 || p.hourly < 0 || p.daily < 0 || p.weekly < 0 || p.monthly < 0 ||
        p.yearly < 0)
        return cairn_cli_usage(cli, "--keep-* values must not be negative");

    g_autoptr(GError) gerr = NULL;
    if (!cairn_keep_policy_check(&p, &gerr))
        return cairn_cli_usage(cli, "%s", gerr->message);
    g_autoptr(CairnRepo) repo = cairn_cli_open_repo(cli, &gerr);
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(GPtrArray) plan = g_ptr_array_new_with_free_func((GDestroyNotify) json_decref);
    CairnPruneStats st;
    g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
    gboolean ok = cairn_prune(repo, &p, name, dry_run, cli->lock_wait, plan, broken, &st, &gerr);
    cairn_cli_warn_each(cli, broken, "; left alone");
    if (!ok)
        return cairn_cli_fail(cli, gerr);
    if (name && plan->len == 0)
        return cairn_cli_no_snapshot_named(cli, repo, name);
    if (json) {
        g_autoptr(CairnJson) arr = json_array();
        for (guint i = 0; i < plan->len; i++)
            json_array_append(arr, plan->pdata[i]);
        g_autoptr(CairnJson) o = json_pack("{s:b, s:i, s:i, s:O}", "dry_run", dry_run, "kept",
                                           (int) st.kept, "removed", (int) st.removed,
                                           "snapshots", arr);
        cairn_cli_print_json(o);
    } else {
        for (guint i = 0; i < plan->len; i++) {
            json_t *e = plan->pdata[i];
            const char *reasons = json_string_value(json_object_get(e, "reasons"));
            printf("%-6s %.12s  %s  %-24s %s\n", reasons ? "keep" : (dry_run ? "would remove" : "remove"),
                   json_string_value(json_object_get(e, "id")),
                   json_string_value(json_object_get(e, "time")),
                   json_string_value(json_object_get(e, "name")), reasons ? reasons : "");
        }
        printf("%s%u snapshot%s kept, %u %s; run 'cairn gc' to free their space\n",
               dry_run ? "dry run: " : "", st.kept, st.kept == 1 ? "" : "s", st.removed,
               dry_run ? "would be removed" : "removed");
    }
    return broken->len ? 1 : 0; /* the unreadable ones need attention */
}
