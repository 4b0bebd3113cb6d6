/* cmd-gc.c - `cairn gc [--grace DURATION] [--dry-run] [--json]` */
#include "config.h"

#include <stdio.h>

#include "cli/cli.h"
#include "repo/gc.h"

int
cairn_cmd_gc(CairnCli *cli, int argc, char **argv)
{
    g_autofree char *grace_s = NULL, *wait_s = NULL;
    gboolean json = FALSE, dry_run = FALSE;
    GOptionEntry entries[] = {
        { "grace", 0, 0, G_OPTION_ARG_STRING, &grace_s,
          "keep unreferenced objects younger than this (default 1h)", "DURATION" },
        { "wait", 0, 0, G_OPTION_ARG_STRING, &wait_s,
          "wait this long for running backups to finish (default: do not wait)", "DURATION" },
        { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "only count", NULL },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print a JSON summary", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc > 1)
        return cairn_cli_usage(cli, "unexpected argument '%s'", argv[1]);
    g_autoptr(GError) gerr = NULL;
    int64_t grace = 3600, wait = 0;
    if (grace_s && !cairn_parse_duration(grace_s, &grace, &gerr))
        return cairn_cli_usage(cli, "--grace: %s", gerr->message);
    if (wait_s && !cairn_parse_duration(wait_s, &wait, &gerr))
        return cairn_cli_usage(cli, "--wait: %s", gerr->message);

    g_autoptr(CairnRepo) repo = cairn_cli_open_repo(cli, &gerr);
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    CairnGcStats st;
    if (!cairn_gc(repo, grace, dry_run, wait, &st, &gerr)) {
        if (g_error_matches(gerr, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_LOCKED))
            return cairn_cli_failf(cli, "%s, or let gc wait for it: --wait DURATION",
                                   gerr->message);
        return cairn_cli_fail(cli, gerr);
    }
    if (json) {
        g_autoptr(CairnJson) o = json_pack("{s:b, s:i, s:I, s:I, s:I, s:I, s:I, s:i, s:i}",
                                           "dry_run",
                                           dry_run, "snapshots", (int) st.snapshots,
                                           "objects_total", (json_int_t) st.objects_total,
                                           "objects_live", (json_int_t) st.objects_live,
                                           "objects_deleted", (json_int_t) st.objects_deleted,
                                           "bytes_deleted", (json_int_t) st.bytes_deleted,
                                           "objects_in_grace", (json_int_t) st.objects_young,
                                           "temp_files_removed", (int) st.temps_removed,
                                           "quarantine_cleared", (int) st.quarantine_cleared);
        cairn_cli_print_json(o);
    } else {
        g_autofree char *freed = cairn_format_size(st.bytes_deleted);
        printf("%s%" G_GUINT64_FORMAT " objects, %" G_GUINT64_FORMAT " referenced by %u "
               "snapshots; %s %" G_GUINT64_FORMAT " (%s)",
               dry_run ? "dry run: " : "", st.objects_total, st.objects_live, st.snapshots,
               dry_run ? "would delete" : "deleted", st.objects_deleted, freed);
        if (st.objects_young)
            printf("; kept %" G_GUINT64_FORMAT " unreferenced objects younger than the grace "
                   "period", st.objects_young);
        if (st.quarantine_cleared)
            printf("; cleared %u quarantine entr%s of damaged objects stored whole again",
                   st.quarantine_cleared, st.quarantine_cleared == 1 ? "y" : "ies");
        printf("\n");
    }
    return 0;
}
