/* cmd-show.c - `cairn show SNAPSHOT [--json]` */
#include "config.h"

#include <stdio.h>

#include "cli/cli.h"
#include "repo/index.h"

int
cairn_cmd_show(CairnCli *cli, int argc, char **argv)
{
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print as JSON", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("SNAPSHOT");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc != 2)
        return cairn_cli_usage(cli, "give one snapshot: an id, NAME@latest, NAME@~N or NAME@TIME");

    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnRepo) repo = cairn_cli_open_repo(cli, &gerr);
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(CairnSnapshot) s = cairn_cli_resolve(cli, repo, argv[1], &gerr);
    if (!s)
        return cairn_cli_fail(cli, gerr);
    CairnManifest *m = s->manifest;
    g_autoptr(CairnJson) o = cairn_cli_snapshot_json(s);
    json_t *jdisks = json_object_get(o, "disks");
    char hex[CAIRN_ID_HEX_LEN + 1], phex[CAIRN_ID_HEX_LEN + 1];
    g_autofree char *t = cairn_format_time_utc(m->time);
    if (!json) {
        printf("snapshot     %s\nname         %s\ntime         %s\nhost         %s\n"
               "kind         %s\nconsistency  %s\nparent       %s\n",
               cairn_id_to_hex(&s->id, hex), m->name, t, m->host ? m->host : "-", m->kind,
               m->consistency, m->has_parent ? cairn_id_to_hex(&m->parent, phex) : "-");
        if (m->uuid)
            printf("uuid         %s\n", m->uuid);
        if (m->checkpoint)
            printf("checkpoint   %s\n", m->checkpoint);
        for (guint i = 0; i < m->tags->len; i++)
            printf("tag          %s\n", (char *) m->tags->pdata[i]);
    }
    for (guint d = 0; d < m->disks->len; d++) {
        CairnManifestDisk *disk = m->disks->pdata[d];
        g_autoptr(CairnIndex) index = cairn_index_load(repo, &disk->index, &gerr);
        if (!index)
            return cairn_cli_fail(cli, gerr);
        uint64_t data = cairn_index_data_chunks(index);
        json_t *jd = json_array_get(jdisks, d);
        json_object_set_new(jd, "chunks", json_integer((json_int_t) index->count));
        json_object_set_new(jd, "chunks_data", json_integer((json_int_t) data));
        json_object_set_new(jd, "chunk_size", json_integer(index->chunk_size));
        if (!json) {
            g_autofree char *vs = cairn_format_size(disk->virtual_size);
            g_autofree char *ds = cairn_format_size(data * index->chunk_size);
            printf("disk %-7s %s virtual, ~%s data in %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                   " chunks, format %s, from %s\n", disk->target, vs, ds, data, index->count,
                   disk->format ? disk->format : "?", disk->source ? disk->source : "?");
        }
    }
    if (json)
        cairn_cli_print_json(o);
    return 0;
}
