/* cmd-restore-disk.c - `cairn restore-disk SNAPSHOT DISK (--to FILE [--format raw|qcow2] |
 * --attach DOMAIN [--target vdX]) [--from REMOTE [--no-cache]]` */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "repo/index.h"
#include "repo/lock.h"
#include "restore/attach.h"
#include "restore/domain.h"
#include "restore/in-use.h"

/* the file name ends with ext, in any case */
static gboolean
has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && !g_ascii_strcasecmp(path + n - e, ext);
}

int
cairn_cmd_restore_disk(CairnCli *cli, int argc, char **argv)
{
    g_autofree char *to = NULL, *format_s = NULL, *attach = NULL, *target = NULL, *uri = NULL,
                    *from = NULL;
    gboolean json = FALSE, force = FALSE, no_cache = FALSE;
    GOptionEntry entries[] = {
        { "from", 0, 0, G_OPTION_ARG_STRING, &from,
          "restore from this remote (name or URL): what the repository lacks of the snapshot is "
          "pulled into it first", "REMOTE" },
        { "no-cache", 0, 0, G_OPTION_ARG_NONE, &no_cache,
          "with --from: read the remote directly, keep no local copy", NULL },
        { "to", 0, 0, G_OPTION_ARG_FILENAME, &to, "write the disk to FILE", "FILE" },
        { "format", 0, 0, G_OPTION_ARG_STRING, &format_s,
          "raw or qcow2 (default: FILE's extension, .raw/.img or .qcow2, else the format it "
          "was backed up from)", "FMT" },
        { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "replace an existing FILE", NULL },
        { "attach", 0, 0, G_OPTION_ARG_STRING, &attach,
          "attach the restored disk to this domain (hot-plug when running)", "DOMAIN" },
        { "target", 0, 0, G_OPTION_ARG_STRING, &target,
          "with --attach: the target (default: the first free vdX)", "vdX" },
        { "connect", 'c', 0, G_OPTION_ARG_STRING, &uri, "libvirt URI", "URI" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print a JSON summary", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("SNAPSHOT DISK --to FILE");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    if (argc != 3)
        return cairn_cli_usage(cli, "give a snapshot and a disk, e.g. 'restore-disk web01@latest "
                               "vda --to /var/tmp/vda.qcow2'");
    if (!to && !attach)
        return cairn_cli_usage(cli, "give the output file with --to FILE, or --attach DOMAIN");
    if (to && !*to)
        return cairn_cli_usage(cli, "--to: give a file name");
    if (target && !attach)
        return cairn_cli_usage(cli, "--target goes with --attach DOMAIN");

    if (no_cache && !from)
        return cairn_cli_usage(cli, "--no-cache goes with --from REMOTE");
    cairn_cancel_on_signals(); /* ^C, SIGTERM: stop, remove the partial file */

    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnRepo) repo = NULL;
    g_autoptr(CairnSnapshot) s = cairn_cli_open_snapshot(cli, from, no_cache, argv[1], &repo,
                                                         &gerr);
    if (!s)
        return cairn_cli_fail(cli, gerr);
    g_autoptr(CairnLock) lock = cairn_lock_acquire(repo, CAIRN_LOCK_SHARED, "restore",
                                                   cli->lock_wait, &gerr);
    if (!lock)
        return cairn_cli_fail(cli, gerr);
    const CairnManifestDisk *disk = cairn_cli_find_disk(cli, s, argv[1], argv[2]);
    if (!disk)
        return 1;
    CairnDiskFormat fmt = CAIRN_DISK_FORMAT_QCOW2;
    if (format_s) {
        if (!cairn_disk_format_parse(format_s, &fmt, &gerr))
            return cairn_cli_usage(cli, "%s", gerr->message);
    } else if (to && (has_ext(to, ".raw") || has_ext(to, ".img"))) {
        fmt = CAIRN_DISK_FORMAT_RAW; /* what the file's name says */
    } else if (to && has_ext(to, ".qcow2")) {
        fmt = CAIRN_DISK_FORMAT_QCOW2;
    } else if (to && (has_ext(to, ".vmdk") || has_ext(to, ".vdi") || has_ext(to, ".vhd") ||
                      has_ext(to, ".vhdx"))) {
        return cairn_cli_usage(cli, "'%s': cairn writes raw or qcow2 disks; give --format raw "
                               "or --format qcow2 (and convert it with qemu-img if you must)",
                               to);
    } else if (disk->format && !strcmp(disk->format, "raw")) {
        fmt = CAIRN_DISK_FORMAT_RAW;
    }
    g_autoptr(CairnIndex) index = cairn_index_load(repo, &disk->index, &gerr);
    if (!index)
        return cairn_cli_fail(cli, gerr);
    if (!to) {
        g_autofree char *sid = cairn_cli_short_id(&s->id);
        to = g_strdup_printf("/var/lib/libvirt/images/%s-%s-restored-%s.%s", attach, argv[2],
                             sid, fmt == CAIRN_DISK_FORMAT_RAW ? "raw" : "qcow2");
    }
    /* what can refuse is asked before the disk is written */
    g_autoptr(CairnAttach) att = NULL;
    if (attach && !(att = cairn_attach_prepare(uri, attach, target, to, &gerr)))
        return cairn_cli_fail(cli, gerr);
    g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func(g_free);
    if (!cairn_restore_check_replace(NULL, uri, to, force, notes, &gerr))
        return cairn_cli_fail(cli, gerr);
    for (guint i = 0; i < notes->len; i++)
        fprintf(stderr, "cairn restore-disk: note: %s\n", (char *) notes->pdata[i]);
    gint64 t0 = g_get_monotonic_time();
    CairnCliProgress progress;
    cairn_cli_progress_init(&progress, cli, disk->target);
    CairnRestoreStats st = { 0 };
    gboolean ok = cairn_restore_disk_to_file(repo, index, to, fmt, force, NULL, &st,
                                             cairn_cli_progress_cb, &progress, &gerr);
    cairn_cli_progress_done(&progress);
    if (!ok)
        return cairn_cli_fail(cli, gerr);
    if (st.stale_partials_removed)
        fprintf(stderr, "cairn restore-disk: note: removed %" G_GUINT64_FORMAT " partial file%s "
                "of an interrupted restore to '%s'\n", st.stale_partials_removed,
                st.stale_partials_removed == 1 ? "" : "s", to);
    double secs = (double) (g_get_monotonic_time() - t0) / 1e6;
    const char *fname = fmt == CAIRN_DISK_FORMAT_RAW ? "raw" : "qcow2";
    const char *attached_as = att ? cairn_attach_target(att) : NULL;
    if (att && !cairn_attach_commit(att, to, fname, &gerr))
        return cairn_cli_fail(cli, gerr);
    if (json) {
        char hex[CAIRN_ID_HEX_LEN + 1];
        g_autoptr(CairnJson) o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:f, s:s?, s:s?}", "snapshot",
                                           cairn_id_to_hex(&s->id, hex), "disk", disk->target,
                                           "file", to, "format", fname, "virtual_size",
                                           (json_int_t) index->virtual_size, "bytes_written",
                                           (json_int_t) st.bytes_written, "chunks_hole",
                                           (json_int_t) st.chunks_hole, "duration_seconds", secs,
                                           "attached_to", attach, "target", attached_as);
        cairn_cli_print_json(o);
    } else {
        g_autofree char *vs = cairn_format_size(index->virtual_size);
        g_autofree char *wr = cairn_format_size(st.bytes_written);
        printf("restored %s of %s to %s (%s, %s virtual, %s written, every chunk verified) "
               "in %.1f s\n", disk->target, argv[1], to, fname, vs, wr, secs);
        if (attached_as)
            printf("attached to %s as %s\n", attach, attached_as);
    }
    return 0;
}
