/* job-offline.c - back up a shut-off domain.
 *
 * libvirt refuses backup jobs and checkpoints for inactive domains, so the
 * disks are exported read-only by qemu-nbd. Incrementals use persistent
 * qcow2 bitmaps: the bitmap the parent snapshot recorded (a libvirt
 * checkpoint's, or one cairn added offline) selects the chunks to read, and
 * a new bitmap "cairn-offline-*" added before reading marks this point.
 * A domain started meanwhile cannot corrupt anything: qemu-nbd holds the
 * image open read-only without sharing writes, so QEMU refuses to start
 * until the backup ends, and the bitmap step fails cleanly if QEMU won. */
#include "config.h"

#include <string.h>
#include <jansson.h>

#include "agent/checkpoint.h"
#include "agent/job-internal.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "repo/index.h"


typedef struct {
    char *base;      /* bitmap to read changes from, NULL: full */
} OfflineDisk;

/* bitmap name -> "ok" | "in-use" for one qcow2 image */
GHashTable *
cairn_job_image_bitmaps(const char *path, GError **error)
{
    const char *argv[] = { CAIRN_QEMU_IMG, "info", "--output=json", "-U", path, NULL };
    g_autofree char *out = NULL, *err = NULL;
    int status = 0;
    if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                      &status, error))
        return NULL;
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_FAILED,
                    "qemu-img info '%s' failed: %s", path, g_strstrip(err));
        return NULL;
    }
    GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(CairnJson) o = json_loads(out, 0, NULL);
    json_t *bitmaps = json_object_get(json_object_get(json_object_get(o, "format-specific"),
                                                      "data"), "bitmaps");
    size_t i;
    json_t *b;
    json_array_foreach(bitmaps, i, b) {
        const char *name = json_string_value(json_object_get(b, "name"));
        gboolean in_use = FALSE;
        size_t k;
        json_t *f;
        json_array_foreach(json_object_get(b, "flags"), k, f)
            if (!g_strcmp0(json_string_value(f), "in-use"))
                in_use = TRUE;
        if (name)
            g_hash_table_replace(set, g_strdup(name), g_strdup(in_use ? "in-use" : "ok"));
    }
    return set;
}

static gboolean
qemu_img_bitmap(const char *op, const char *path, const char *name, GError **error)
{
    const char *argv[] = { CAIRN_QEMU_IMG, "bitmap", op, "-f", "qcow2", path, name, NULL };
    g_autofree char *err = NULL;
    int status = 0;
    if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                      &err, &status, error))
        return FALSE;
    if (!g_spawn_check_wait_status(status, NULL)) {
        gboolean locked = strstr(err, "lock") != NULL;
        g_set_error(error, CAIRN_VIRT_ERROR, locked ? CAIRN_VIRT_ERROR_BUSY : CAIRN_VIRT_ERROR_FAILED,
                    "qemu-img bitmap %s '%s' on '%s' failed: %s%s", op, name, path,
                    g_strstrip(err), locked ? " (was the domain started during the backup? "
                    "back it up again: it now runs and gets a live backup)" : "");
        return FALSE;
    }
    return TRUE;
}

static const CairnDomainDisk *
disk_of(CairnJob *job, guint i)
{
    return cairn_domain_info_find_disk(job->info, job->targets->pdata[i]);
}

static gboolean
is_qcow2(const CairnDomainDisk *d)
{
    return d->format && !strcmp(d->format, "qcow2") && d->type && !strcmp(d->type, "file");
}

static CairnNbdSource *
open_offline(CairnJob *job, guint i, const CairnIndex **ret_parent, GError **error)
{
    const CairnDomainDisk *d = disk_of(job, i);
    *ret_parent = NULL;
    return cairn_nbd_source_open_image_bitmap(d->source, d->format ? d->format : "raw",
                                              ((OfflineDisk *) job->open_data)[i].base, error);
}

/* The parent's bitmap of disk i if it can serve as an incremental base. */
static char *
usable_base(CairnJob *job, guint i, GHashTable *bitmaps)
{
    const char *t = job->targets->pdata[i];
    const CairnManifestDisk *pd = cairn_manifest_find_disk(job->parent->manifest, t);
    const CairnDomainDisk *d = disk_of(job, i);
    if (!pd || !pd->bitmap) {
        cairn_job_note(job, "disk %s: the last snapshot recorded no bitmap: reading it whole", t);
        return NULL;
    }
    if (pd->source && d->source && strcmp(pd->source, d->source) != 0) {
        cairn_job_note(job, "disk %s was replaced: reading it whole", t);
        return NULL;
    }
    const char *state = g_hash_table_lookup(bitmaps, pd->bitmap);
    if (!state) {
        cairn_job_note(job, "disk %s: bitmap %s is missing from '%s': reading it whole", t,
                       pd->bitmap, d->source);
        return NULL;
    }
    if (!strcmp(state, "in-use")) {
        cairn_job_note(job, "disk %s: bitmap %s is inconsistent (QEMU did not shut down "
                       "cleanly): reading it whole", t, pd->bitmap);
        return NULL;
    }
    return g_strdup(pd->bitmap);
}

gboolean
cairn_job_backup_offline(CairnJob *job, GError **error)
{
    guint n = job->targets->len;
    g_autofree OfflineDisk *disks = g_new0(OfflineDisk, n);
    g_autofree char *rnd = cairn_random_hex(3);
    job->new_bitmap = g_strdup_printf(CAIRN_OFFLINE_BITMAP_PREFIX "%" G_GINT64_FORMAT "-%s", cairn_now(), rnd);

    gboolean try_incremental = TRUE;
    if (job->opts->full) {
        job->reason = g_strdup("--full was given");
        try_incremental = FALSE;
    } else if (!job->parent) {
        job->reason = g_strdup("no earlier snapshot of this domain");
        try_incremental = FALSE;
    } else if (job->parent->manifest->uuid &&
               strcmp(job->parent->manifest->uuid, job->info->uuid) != 0) {
        job->reason = g_strdup("the domain was undefined and redefined (UUID changed)");
        try_incremental = FALSE;
    }
    gboolean ok = TRUE;
    guint added = 0;
    for (guint i = 0; i < n && ok; i++) {
        const CairnDomainDisk *d = disk_of(job, i);
        if (!is_qcow2(d))
            continue; /* raw files have no bitmaps: read whole, dedup keeps it cheap */
        g_autoptr(GHashTable) bitmaps = cairn_job_image_bitmaps(d->source, error);
        if (!bitmaps) {
            ok = FALSE;
            break;
        }
        if (try_incremental)
            disks[i].base = usable_base(job, i, bitmaps);
        /* mark this point before reading: nothing writes while the domain is off */
        ok = qemu_img_bitmap("--add", d->source, job->new_bitmap, error);
        added = i + 1;
    }
    for (guint i = 0; i < n && ok; i++)
        if (disks[i].base)
            job->base_bitmap = TRUE;
    if (ok && !job->base_bitmap && !job->reason)
        job->reason = g_strdup("no usable bitmap on any disk");
    if (ok) {
        job->open_data = disks;
        ok = cairn_job_read_disks_with(job, open_offline, error);
        job->open_data = NULL;
    }
    for (guint i = 0; i < n; i++) {
        const CairnDomainDisk *d = disk_of(job, i);
        if (ok && is_qcow2(d)) {
            CairnManifestDisk *md = (CairnManifestDisk *) cairn_manifest_find_disk(
                job->manifest, job->targets->pdata[i]);
            if (md)
                md->bitmap = g_strdup(job->new_bitmap);
        }
        if (!ok && i < added && is_qcow2(d))
            qemu_img_bitmap("--remove", d->source, job->new_bitmap, NULL);
        g_free(disks[i].base);
    }
    if (ok)
        cairn_job_note(job, "the domain is shut off: disks read through qemu-nbd%s",
                       job->base_bitmap ? ", changes since the last snapshot from its bitmaps"
                                        : "");
    return ok;
}

void
cairn_job_offline_cleanup(CairnJob *job)
{
    /* keep only the bitmap the new snapshot records among cairn's offline ones */
    for (guint i = 0; i < job->targets->len; i++) {
        const CairnDomainDisk *d = disk_of(job, i);
        if (!is_qcow2(d))
            continue;
        g_autoptr(GHashTable) bitmaps = cairn_job_image_bitmaps(d->source, NULL);
        if (!bitmaps)
            continue;
        GHashTableIter it;
        gpointer name;
        g_hash_table_iter_init(&it, bitmaps);
        while (g_hash_table_iter_next(&it, &name, NULL)) {
            if (!g_str_has_prefix(name, CAIRN_OFFLINE_BITMAP_PREFIX) || !strcmp(name, job->new_bitmap))
                continue;
            g_autoptr(GError) gerr = NULL;
            if (!qemu_img_bitmap("--remove", d->source, name, &gerr))
                cairn_job_note(job, "%s", gerr->message);
        }
    }
}
