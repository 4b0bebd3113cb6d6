/* cmd-snapshots.c - `cairn snapshots [NAME] [--json]` */
#include "config.h"

#include <stdio.h>

#include "cli/cli.h"

int
cairn_cmd_snapshots(CairnCli *cli, int argc, char **argv)
{
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print as JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("[NAME]");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc > 2)
        return cairn_cli_usage(cli, "unexpected argument '%s'", argv[2]);
    const char *name = argc > 1 ? argv[1] : NULL;

    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnRepo) repo = cairn_cli_open_repo(cli, &gerr);
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) list = cairn_snapshot_list_full(repo, name, broken, &gerr);
    if (!list)
        return cairn_cli_fail(cli, gerr);
    if (json) {
        g_autoptr(CairnJson) arr = json_array();
        for (guint i = 0; i < list->len; i++)
            json_array_append_new(arr, cairn_cli_snapshot_json(list->pdata[i]));
        cairn_cli_print_json(arr);
    } else {
        printf("%-12s  %-20s  %-24s  %5s  %10s  %s\n", "ID", "TIME", "NAME", "DISKS", "SIZE",
               "TAGS");
        for (guint i = 0; i < list->len; i++) {
            CairnSnapshot *s = list->pdata[i];
            CairnManifest *m = s->manifest;
            uint64_t size = 0;
            for (guint d = 0; d < m->disks->len; d++)
                size += ((CairnManifestDisk *) m->disks->pdata[d])->virtual_size;
            g_autofree char *id = cairn_cli_short_id(&s->id);
            g_autofree char *t = cairn_format_time_utc(m->time);
            g_autofree char *sz = cairn_format_size(size);
            g_ptr_array_add(m->tags, NULL);
            g_autofree char *tags = g_strjoinv(",", (char **) m->tags->pdata);
            g_ptr_array_remove_index(m->tags, m->tags->len - 1);
            printf("%-12s  %-20s  %-24s  %5u  %10s  %s\n", id, t, m->name, m->disks->len, sz,
                   tags);
        }
    }
    for (guint i = 0; i < broken->len; i++)
        fprintf(stderr, "cairn snapshots: %s\n", (char *) broken->pdata[i]);
    if (name && list->len == 0)
        return cairn_cli_no_snapshot_named(cli, repo, name);
    return broken->len ? 1 : 0;
}
