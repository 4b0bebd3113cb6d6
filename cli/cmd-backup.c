/* cmd-backup.c - `cairn backup DOMAIN [...]` and `cairn backup --image FILE [...]` */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/job.h"
#include "cli/cli.h"
#include "nbd/nbd.h"
#include "repo/index.h"
#include "repo/lock.h"

static char *
default_name(const char *path)
{
    g_autofree char *base = g_path_get_basename(path);
    char *dot = strrchr(base, '.');
    if (dot && dot != base)
        *dot = '\0';
    return g_steal_pointer(&base);
}

static gboolean
valid_name(const char *name)
{
    if (!*name || strlen(name) > 200 || *name == '-')
        return FALSE;
    for (const char *p = name; *p; p++)
        if (*p == '@' || *p == '/' || g_ascii_iscntrl(*p))
            return FALSE;
    return TRUE;
}

static int
backup_images(CairnCli *cli, char **images, char *name, const char *format, char **tags,
              gboolean json)
{
    g_autofree char *name_owned = NULL;
    if (!images || !images[0])
        return cairn_cli_usage(cli, "nothing to back up: give --image FILE");
    guint n_images = g_strv_length(images);
    if (n_images > 26)
        return cairn_cli_usage(cli, "too many images (%u): at most 26 (vda..vdz)", n_images);
    gboolean from_file = !name;
    if (!name)
        name = name_owned = default_name(images[0]);
    if (!valid_name(name))
        return cairn_cli_usage(cli, "invalid snapshot name '%s'%s: use 1-200 characters "
                               "without '@' or '/', not starting with '-'%s", name,
                               from_file ? " (the image's file name)" : "",
                               from_file ? "; give one with --name NAME" : "");

    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnRepo) repo = cairn_cli_open_repo(cli, &gerr);
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    g_autofree char *purpose = g_strdup_printf("backup %s", name);
    g_autoptr(CairnLock) lock = cairn_lock_acquire(repo, CAIRN_LOCK_SHARED, purpose,
                                                   cli->lock_wait, &gerr);
    if (!lock)
        return cairn_cli_fail(cli, gerr);

    gint64 t0 = g_get_monotonic_time();
    g_autoptr(CairnManifest) m = cairn_manifest_new();
    m->name = g_strdup(name);
    m->host = g_strdup(g_get_host_name());
    int64_t now_us = cairn_now_us();
    m->time = now_us / G_USEC_PER_SEC;
    m->time_usec = (int32_t) (now_us % G_USEC_PER_SEC);
    for (guint i = 0; tags && tags[i]; i++)
        g_ptr_array_add(m->tags, g_strdup(tags[i]));
    {
        g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) prev = cairn_snapshot_list_full(repo, name, broken, &gerr);
        cairn_cli_warn_each(cli, broken, "");
        if (!prev)
            return cairn_cli_fail(cli, gerr);
        if (prev->len) {
            m->has_parent = TRUE;
            m->parent = ((CairnSnapshot *) prev->pdata[prev->len - 1])->id;
        }
    }

    CairnDiskStats total = { 0 };
    g_autoptr(CairnJson) jdisks = json_array();
    for (guint i = 0; i < n_images; i++) {
        char target[4] = { 'v', 'd', (char) ('a' + i), 0 };
        g_autoptr(CairnNbdSource) src = cairn_nbd_source_open_image(images[i], format, &gerr);
        if (!src)
            return cairn_cli_fail(cli, gerr);
        struct stat sb;
        if (!g_strcmp0(cairn_nbd_source_format(src), "raw") && stat(images[i], &sb) == 0 &&
            S_ISREG(sb.st_mode) && (uint64_t) sb.st_size != cairn_nbd_source_size(src))
            fprintf(stderr, "cairn backup: note: '%s' is %" G_GUINT64_FORMAT " bytes, not a "
                    "multiple of 512: QEMU reads it as a disk of %" G_GUINT64_FORMAT " bytes "
                    "(zeros at the end), which is what a restore gives back\n", images[i],
                    (uint64_t) sb.st_size, cairn_nbd_source_size(src));
        CairnCliProgress progress;
        cairn_cli_progress_init(&progress, cli, target);
        g_autoptr(CairnIndex) index = NULL;
        CairnDiskStats st = { 0 };
        gboolean ok = cairn_nbd_backup_disk(repo, src, NULL, NULL, &index, &st, cairn_cli_progress_cb,
                                            &progress, &gerr);
        cairn_cli_progress_done(&progress);
        if (!ok) {
            g_prefix_error(&gerr, "backup of '%s' failed, no snapshot was published "
                           "(the repository is still valid): ", images[i]);
            return cairn_cli_fail(cli, gerr);
        }
        CairnManifestDisk *d = cairn_manifest_add_disk(m, target);
        uint64_t index_new = 0;
        if (!cairn_index_store(repo, index, &d->index, &index_new, &gerr))
            return cairn_cli_fail(cli, gerr);
        d->format = g_strdup(cairn_nbd_source_format(src));
        d->source = g_canonicalize_filename(images[i], NULL);
        d->virtual_size = index->virtual_size;
        d->bytes_read = st.bytes_read;
        d->bytes_new = st.bytes_new + index_new;
        total.virtual_size += st.virtual_size;
        total.bytes_read += st.bytes_read;
        total.bytes_new += st.bytes_new + index_new;
        total.chunks_total += st.chunks_total;
        total.chunks_hole += st.chunks_hole;
        total.chunks_read += st.chunks_read;
        total.chunks_new += st.chunks_new;
        json_array_append_new(jdisks,
            json_pack("{s:s, s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:I}", "target", target,
                      "source", d->source, "format", d->format,
                      "virtual_size", (json_int_t) d->virtual_size,
                      "bytes_read", (json_int_t) st.bytes_read,
                      "bytes_new", (json_int_t) d->bytes_new,
                      "chunks", (json_int_t) st.chunks_total,
                      "chunks_hole", (json_int_t) st.chunks_hole,
                      "chunks_new", (json_int_t) st.chunks_new));
    }
    CairnId id;
    if (!cairn_snapshot_publish(repo, m, &id, &gerr))
        return cairn_cli_fail(cli, gerr);
    double secs = (double) (g_get_monotonic_time() - t0) / 1e6;
    char hex[CAIRN_ID_HEX_LEN + 1];
    cairn_id_to_hex(&id, hex);
    if (json) {
        g_autofree char *t = cairn_format_time_utc(m->time);
        g_autoptr(CairnJson) o = json_pack(
            "{s:s, s:s, s:s, s:s, s:O, s:I, s:I, s:I, s:f}", "id", hex, "name", name, "time", t,
            "mode", "full", "disks", jdisks, "virtual_size", (json_int_t) total.virtual_size,
            "bytes_read", (json_int_t) total.bytes_read, "bytes_new",
            (json_int_t) total.bytes_new, "duration_seconds", secs);
        cairn_cli_print_json(o);
    } else {
        g_autofree char *vs = cairn_format_size(total.virtual_size);
        g_autofree char *rd = cairn_format_size(total.bytes_read);
        g_autofree char *nw = cairn_format_size(total.bytes_new);
        printf("snapshot %.12s of %s: %u disk%s, %s virtual, read %s, stored %s new, %.1f s\n",
               hex, name, n_images, n_images == 1 ? "" : "s", vs, rd, nw, secs);
    }
    return 0;
}

static void
print_notes(CairnCli *cli, GPtrArray *notes)
{
    for (guint i = 0; i < notes->len; i++)
        fprintf(stderr, "cairn backup: note: %s\n", (char *) notes->pdata[i]);
}

static int
backup_domain(CairnCli *cli, CairnBackupOptions *o, gboolean json)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(CairnRepo) repo = cairn_cli_open_repo(cli, &gerr);
    if (!repo)
        return cairn_cli_fail(cli, gerr);
    CairnCliProgress progress;
    cairn_cli_progress_init(&progress, cli, o->domain);
    o->progress = cairn_cli_progress_cb;
    o->progress_data = &progress;
    o->lock_wait = cli->lock_wait;
    CairnBackupResult r;
    gboolean ok = cairn_backup_domain(repo, o, &r, &gerr);
    cairn_cli_progress_done(&progress);
    print_notes(cli, r.notes);
    if (!ok) {
        cairn_backup_result_clear(&r);
        /* 75 (EX_TEMPFAIL): another backup of the domain runs; try later */
        gboolean busy = g_error_matches(gerr, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_BUSY);
        cairn_cli_fail(cli, gerr);
        return busy ? 75 : 1;
    }
    char hex[CAIRN_ID_HEX_LEN + 1];
    cairn_id_to_hex(&r.id, hex);
    if (json) {
        g_autoptr(CairnJson) notes = json_array();
        for (guint i = 0; i < r.notes->len; i++)
            json_array_append_new(notes, json_string(r.notes->pdata[i]));
        g_autoptr(CairnJson) out = json_pack(
            "{s:s, s:s, s:s, s:s?, s:b, s:s, s:I, s:I, s:I, s:f, s:f, s:O, s:O}", "id", hex, "name",
            o->domain, "mode", r.mode, "reason", r.reason, "offline", r.offline, "consistency",
            r.consistency, "virtual_size",
            (json_int_t) r.virtual_size, "bytes_read", (json_int_t) r.bytes_read, "bytes_new",
            (json_int_t) r.bytes_new, "duration_seconds", r.seconds, "libvirt_seconds",
            r.libvirt_seconds, "disks", r.disks, "notes",
            notes);
        cairn_cli_print_json(out);
    } else {
        g_autofree char *vs = cairn_format_size(r.virtual_size);
        g_autofree char *rd = cairn_format_size(r.bytes_read);
        g_autofree char *nw = cairn_format_size(r.bytes_new);
        printf("snapshot %.12s of %s: %s%s%s%s, %s virtual, read %s, stored %s new, %.1f s\n",
               hex, o->domain, r.mode, r.reason ? " (" : "", r.reason ? r.reason : "",
               r.reason ? ")" : "", vs, rd, nw, r.seconds);
    }
    cairn_backup_result_clear(&r);
    return 0;
}

int
cairn_cmd_backup(CairnCli *cli, int argc, char **argv)
{
    g_auto(GStrv) images = NULL, tags = NULL, disks = NULL, excludes = NULL;
    g_autofree char *name = NULL, *format = NULL, *uri = NULL, *quiesce = NULL;
    gboolean json = FALSE, full = FALSE, take_over = FALSE;
    GOptionEntry entries[] = {
        { "connect", 'c', 0, G_OPTION_ARG_STRING, &uri,
          "libvirt URI (default $LIBVIRT_DEFAULT_URI, else qemu:///system)", "URI" },
        { "full", 0, 0, G_OPTION_ARG_NONE, &full, "read every disk whole", NULL },
        { "disk", 0, 0, G_OPTION_ARG_STRING_ARRAY, &disks, "only this disk (repeatable)", "vdX" },
        { "exclude-disk", 0, 0, G_OPTION_ARG_STRING_ARRAY, &excludes,
          "leave this disk out (repeatable)", "vdX" },
        { "quiesce", 0, 0, G_OPTION_ARG_STRING, &quiesce,
          "freeze guest filesystems: auto (default), always, never", "MODE" },
        { "take-over-checkpoints", 0, 0, G_OPTION_ARG_NONE, &take_over,
          "also delete checkpoints other tools created", NULL },
        { "image", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &images,
          "back up this disk image instead of a domain (repeat for vda, vdb, ...)", "FILE" },
        { "name", 0, 0, G_OPTION_ARG_STRING, &name,
          "snapshot name for --image (default: the first image's file name without its "
          "extension)", "NAME" },
        { "format", 0, 0, G_OPTION_ARG_STRING, &format,
          "image format for --image (default: probed by qemu-img)", "FMT" },
        { "tag", 0, 0, G_OPTION_ARG_STRING_ARRAY, &tags, "add a tag (repeatable)", "TAG" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print a JSON summary", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("DOMAIN | --image FILE");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!cairn_cli_parse(cli, ctx, &argc, &argv))
        return 2;
    /* ^C, SIGTERM (cairnd's cancel, a timeout): stop at the next read and
     * take the error path, which ends the libvirt job and removes scratch */
    cairn_cancel_on_signals();
    if (images && images[0]) {
        if (argc > 1)
            return cairn_cli_usage(cli, "give either a DOMAIN or --image FILE, not both");
        const char *domain_only = disks ? "--disk" : excludes ? "--exclude-disk"
                                  : full ? "--full" : quiesce ? "--quiesce"
                                  : take_over ? "--take-over-checkpoints" : uri ? "--connect"
                                  : NULL;
        if (domain_only)
            return cairn_cli_usage(cli, "%s is for the backup of a domain, not of --image files",
                                   domain_only);
        return backup_images(cli, images, name, format, tags, json);
    }
    if (argc != 2)
        return cairn_cli_usage(cli, argc < 2 ? "give a domain (as in 'virsh list --all') or "
                               "--image FILE" : "give one domain per backup (got '%s' too)",
                               argc > 2 ? argv[2] : "");
    CairnBackupOptions o = { .uri = uri, .domain = argv[1], .disks = disks,
                             .exclude_disks = excludes, .full = full,
                             .take_over_checkpoints = take_over, .tags = tags };
    g_autoptr(GError) gerr = NULL;
    if (quiesce && !cairn_quiesce_parse(quiesce, &o.quiesce, &gerr)) {
        cairn_cli_fail(cli, gerr);
        return 2; /* a usage error */
    }
    return backup_domain(cli, &o, json);
}
