/* job.c - back up one libvirt domain.
 *
 * Running domain: checkpoint + pull-mode backup job (NBD on a unix socket in
 * a private job directory), incremental from the checkpoint recorded in the
 * domain's latest snapshot when it is still usable, full otherwise. Every
 * way a checkpoint can break is detected, explained in a note, cleaned up
 * and answered with a full read (which dedup keeps cheap).
 * Shut-off domain: see offline.c. */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include "agent/checkpoint.h"
#include "agent/job-internal.h"
#include "agent/workspace.h"
#include "common/util.h"
#include "repo/index.h"
#include "repo/lock.h"
#include "repo/snapshot.h"

gboolean
cairn_quiesce_parse(const char *text, CairnQuiesce *ret, GError **error)
{
    if (!strcmp(text, "auto"))
        *ret = CAIRN_QUIESCE_AUTO;
    else if (!strcmp(text, "always"))
        *ret = CAIRN_QUIESCE_ALWAYS;
    else if (!strcmp(text, "never"))
        *ret = CAIRN_QUIESCE_NEVER;
    else {
        g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_INVALID,
                    "invalid --quiesce '%s': use auto, always or never", text);
        return FALSE;
    }
    return TRUE;
}

void
cairn_backup_result_clear(CairnBackupResult *r)
{
    g_free(r->mode);
    g_free(r->reason);
    if (r->notes)
        g_ptr_array_unref(r->notes);
    if (r->disks)
        json_decref(r->disks);
    memset(r, 0, sizeof *r);
}

void
cairn_job_note(CairnJob *job, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(job->result->notes, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

/* ---- disk selection ---- */

static gboolean
select_disks(CairnJob *job, GError **error)
{
    const CairnBackupOptions *o = job->opts;
    job->targets = g_ptr_array_new_with_free_func(g_free);
    job->others = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; o->disks && o->disks[i]; i++) {
        if (!cairn_domain_info_find_disk(job->info, o->disks[i])) {
            g_autoptr(GString) have = g_string_new(NULL);
            for (guint d = 0; d < job->info->disks->len; d++)
                g_string_append_printf(have, "%s%s", d ? ", " : "",
                                       ((CairnDomainDisk *) job->info->disks->pdata[d])->target);
            g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_INVALID,
                        "domain '%s' has no disk '%s' (it has: %s)", job->info->name,
                        o->disks[i], have->str);
            return FALSE;
        }
    }
    for (guint i = 0; i < job->info->disks->len; i++) {
        CairnDomainDisk *d = job->info->disks->pdata[i];
        gboolean wanted = (!o->disks || g_strv_contains((const char *const *) o->disks,
                                                        d->target)) &&
                          !(o->exclude_disks && g_strv_contains(
                                (const char *const *) o->exclude_disks, d->target));
        if (wanted && d->skip_reason) {
            cairn_job_note(job, "disk %s skipped: %s", d->target, d->skip_reason);
            json_array_append_new(job->skipped, json_pack("{s:s, s:s}", "target", d->target,
                                                          "reason", d->skip_reason));
            wanted = FALSE;
        }
        g_ptr_array_add(wanted ? job->targets : job->others, g_strdup(d->target));
    }
    job->bitmapped = g_ptr_array_new();
    job->unbitmapped = g_ptr_array_new();
    for (guint i = 0; i < job->targets->len; i++) {
        char *t = job->targets->pdata[i];
        g_ptr_array_add(cairn_job_disk_bitmapped(job, t) ? job->bitmapped : job->unbitmapped, t);
    }
    if (job->targets->len == 0) {
        g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_NO_DISKS,
                    "domain '%s' has no disk to back up (only disks with a local file or "
                    "block device source are backed up; check --disk/--exclude-disk)",
                    job->info->name);
        return FALSE;
    }
    return TRUE;
}

gboolean
cairn_job_disk_bitmapped(CairnJob *job, const char *target)
{
    const CairnDomainDisk *d = cairn_domain_info_find_disk(job->info, target);
    return d && !g_strcmp0(d->format, "qcow2");
}

/* "vda, vdb" */
static char *
join_targets(GPtrArray *targets)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < targets->len; i++)
        g_string_append_printf(s, "%s%s", i ? ", " : "", (char *) targets->pdata[i]);
    return g_string_free(s, FALSE);
}

/* ---- the parent snapshot ---- */

static void
find_parent(CairnJob *job, GError **error_unused)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) list = cairn_snapshot_list_full(job->repo, job->info->name, broken,
                                                         &gerr);
    for (guint i = 0; i < broken->len; i++)
        cairn_job_note(job, "%s", (char *) broken->pdata[i]);
    if (!list) {
        cairn_job_note(job, "cannot read earlier snapshots (%s): full backup", gerr->message);
        return;
    }
    for (guint i = list->len; i > 0; i--) {
        CairnSnapshot *s = list->pdata[i - 1];
        if (strcmp(s->manifest->kind, "domain") != 0)
            continue;
        if (!job->older_checkpoint && s->manifest->checkpoint &&
            !g_strcmp0(s->manifest->uuid, job->info->uuid))
            job->older_checkpoint = g_strdup(s->manifest->checkpoint);
        if (!job->parent)
            job->parent = g_ptr_array_steal_index(list, i - 1);
        if (job->older_checkpoint)
            return;
    }
}

/* Why the parent cannot serve as the base of an incremental (NULL: it can). */
static char *
geometry_change(CairnJob *job)
{
    CairnManifest *p = job->parent->manifest;
    /* the others are read whole anyway */
    for (guint i = 0; i < job->bitmapped->len; i++) {
        const char *t = job->bitmapped->pdata[i];
        const CairnManifestDisk *pd = cairn_manifest_find_disk(p, t);
        const CairnDomainDisk *dd = cairn_domain_info_find_disk(job->info, t);
        if (!pd)
            return g_strdup_printf("disk %s was not in the last snapshot", t);
        if (pd->source && dd->source && strcmp(pd->source, dd->source) != 0)
            return g_strdup_printf("disk %s was replaced ('%s' instead of '%s')", t, dd->source,
                                   pd->source);
        uint64_t size = cairn_job_disk_capacity(job, t);
        if (size && size != pd->virtual_size)
            return g_strdup_printf("disk %s was resized from %" G_GUINT64_FORMAT " to %"
                                   G_GUINT64_FORMAT " bytes", t, pd->virtual_size, size);
    }
    return NULL;
}

uint64_t
cairn_job_disk_capacity(CairnJob *job, const char *target)
{
    virDomainBlockInfo bi;
    if (virDomainGetBlockInfo(job->dom, target, &bi, 0) < 0) {
        virResetLastError();
        return 0;
    }
    return bi.capacity;
}

/* Decide full or incremental; sets job->base_checkpoint or job->reason. */
static void
choose_mode(CairnJob *job)
{
    CairnSnapshot *parent = job->parent;
    if (job->opts->full) {
        job->reason = g_strdup("--full was given");
        return;
    }
    if (job->bitmapped->len == 0) {
        g_autofree char *raw = join_targets(job->unbitmapped);
        job->reason = g_strdup_printf("no disk keeps a dirty bitmap (%s: not qcow2), so every "
                                      "backup reads them whole; only changed chunks are stored",
                                      raw);
        return;
    }
    if (!parent) {
        job->reason = g_strdup("no earlier snapshot of this domain");
        return;
    }
    CairnManifest *p = parent->manifest;
    if (p->uuid && strcmp(p->uuid, job->info->uuid) != 0) {
        job->reason = g_strdup_printf("the domain was undefined and redefined (UUID %s, was %s)",
                                      job->info->uuid, p->uuid);
        return;
    }
    if (!p->checkpoint) {
        g_autofree char *change = geometry_change(job);
        if (change) {
            job->reason = g_steal_pointer(&change);
            return;
        }
        /* taken offline: its own bitmaps saw every write since it */
        if (job->adopted) {
            cairn_job_note(job, "the last snapshot was taken offline: reading the changes "
                           "since, from its bitmap %s", job->adopted);
            job->base_checkpoint = g_strdup(job->adopted);
            return;
        }
        /* the bitmap of an earlier live snapshot's checkpoint also saw
         * every write since, offline ones included */
        if (job->older_checkpoint && cairn_checkpoint_exists(job->dom, job->older_checkpoint)) {
            cairn_job_note(job, "the last snapshot was taken offline: reading the changes "
                           "since checkpoint %s of an earlier one", job->older_checkpoint);
            job->base_checkpoint = g_strdup(job->older_checkpoint);
            return;
        }
        job->reason = g_strdup("the last snapshot was taken offline and its bitmaps cannot be "
                               "used");
        return;
    }
    g_autofree char *change = geometry_change(job);
    if (change) {
        job->reason = g_steal_pointer(&change);
        return;
    }
    if (!cairn_checkpoint_exists(job->dom, p->checkpoint)) {
        /* libvirt lost its metadata (undefine/define, host rebuilt): the
         * bitmaps may still be in the qcow2 files; the ledger has the XML */
        g_autoptr(GError) gerr = NULL;
        g_autoptr(GBytes) xml = p->has_checkpoint_xml
                                    ? cairn_repo_get(job->repo, &p->checkpoint_xml, NULL, &gerr)
                                    : NULL;
        if (xml) {
            g_autofree char *text = g_strndup(g_bytes_get_data(xml, NULL), g_bytes_get_size(xml));
            if (cairn_checkpoint_redefine(job->dom, text, &gerr)) {
                cairn_job_note(job, "checkpoint %s was missing in libvirt: redefined it from "
                               "the repository's ledger", p->checkpoint);
                job->base_checkpoint = g_strdup(p->checkpoint);
                return;
            }
        }
        job->reason = g_strdup_printf("checkpoint %s is missing in libvirt%s%s", p->checkpoint,
                                      gerr ? " and cannot be redefined: " : "",
                                      gerr ? gerr->message : "");
        return;
    }
    job->base_checkpoint = g_strdup(p->checkpoint);
}

/* The last snapshot was taken offline and added bitmaps to the qcow2
 * disks, which QEMU loaded and kept up to date since the domain started:
 * define a libvirt checkpoint over them. Usable (validated): the base of
 * this incremental. Broken (QEMU crashed: a bitmap inconsistent, which
 * also blocks a resize): defined anyway, metadata only, so that deleting
 * it after this backup removes the bitmaps from QEMU. */
static void
adopt_offline_bitmaps(CairnJob *job)
{
    if (!job->parent || job->parent->manifest->checkpoint || job->opts->full)
        return;
    CairnManifest *p = job->parent->manifest;
    const char *bitmap = NULL;
    g_autoptr(GPtrArray) with = g_ptr_array_new();
    g_autoptr(GPtrArray) without = g_ptr_array_new();
    for (guint i = 0; i < job->bitmapped->len; i++) {
        char *t = job->bitmapped->pdata[i];
        const CairnManifestDisk *pd = cairn_manifest_find_disk(p, t);
        if (pd && pd->bitmap && g_str_has_prefix(pd->bitmap, CAIRN_OFFLINE_BITMAP_PREFIX) &&
            (!bitmap || !strcmp(bitmap, pd->bitmap))) {
            bitmap = pd->bitmap;
            g_ptr_array_add(with, t);
        } else {
            g_ptr_array_add(without, t);
        }
    }
    if (!bitmap)
        return;
    for (guint i = 0; i < job->unbitmapped->len; i++)
        g_ptr_array_add(without, job->unbitmapped->pdata[i]);
    if (cairn_checkpoint_exists(job->dom, bitmap)) { /* adopted by an earlier, failed run */
        job->adopted = g_strdup(bitmap);
        return;
    }
    g_autofree char *xml = cairn_checkpoint_adopt_xml(bitmap, p->time, with, without);
    g_autoptr(GError) gerr = NULL;
    if (cairn_checkpoint_adopt(job->dom, xml, TRUE, &gerr)) {
        job->adopted = g_strdup(bitmap);
        return;
    }
    cairn_job_note(job, "bitmap %s of the offline snapshot cannot be used (%s): it is removed "
                   "after this backup", bitmap, gerr->message);
    g_clear_error(&gerr);
    if (!cairn_checkpoint_adopt(job->dom, xml, FALSE, &gerr))
        cairn_job_note(job, "cannot remove bitmap %s from the running domain (%s): a shut-off "
                       "backup removes it", bitmap, gerr->message);
}

/* cairn's bitmaps in the running images that no libvirt checkpoint holds
 * (an offline backup's, left by a --full or partial live backup; one whose
 * checkpoint was pruned while its disk was detached): QEMU keeps them up to
 * date for nothing, and once inconsistent (QEMU killed) they block
 * 'virsh blockresize'. Each is defined as a checkpoint (metadata only) and
 * deleted, which removes it from QEMU. Not on the plain incremental path. */
static void
sweep_stale_bitmaps(CairnJob *job)
{
    g_autoptr(GHashTable) stale = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                        (GDestroyNotify) g_ptr_array_unref);
    for (guint i = 0; i < job->bitmapped->len; i++) {
        char *t = job->bitmapped->pdata[i];
        const CairnDomainDisk *d = cairn_domain_info_find_disk(job->info, t);
        g_autoptr(GHashTable) bitmaps = d && d->source
                                            ? cairn_job_image_bitmaps(d->source, NULL) : NULL;
        GHashTableIter it;
        gpointer name;
        if (bitmaps)
            g_hash_table_iter_init(&it, bitmaps);
        while (bitmaps && g_hash_table_iter_next(&it, &name, NULL)) {
            if (!cairn_checkpoint_is_ours(name) || !g_strcmp0(name, job->checkpoint) ||
                cairn_checkpoint_exists(job->dom, name))
                continue;
            GPtrArray *disks = g_hash_table_lookup(stale, name);
            if (!disks) {
                disks = g_ptr_array_new();
                g_hash_table_insert(stale, g_strdup(name), disks);
            }
            g_ptr_array_add(disks, t);
        }
    }
    GHashTableIter it;
    gpointer name, disks;
    g_hash_table_iter_init(&it, stale);
    while (g_hash_table_iter_next(&it, &name, &disks)) {
        g_autofree char *xml = cairn_checkpoint_adopt_xml(name, cairn_now(), disks, NULL);
        g_autoptr(GError) gerr = NULL;
        if (!cairn_checkpoint_adopt(job->dom, xml, FALSE, &gerr) ||
            !cairn_checkpoint_delete(job->dom, name, &gerr))
            cairn_job_note(job, "cannot remove the stale bitmap %s from the running domain "
                           "(%s)", (char *) name, gerr ? gerr->message : "?");
        else
            cairn_job_note(job, "removed the stale bitmap %s from the running domain",
                           (char *) name);
    }
}

/* ---- freeze / thaw ---- */

static gboolean
freeze(CairnJob *job, GError **error)
{
    if (job->opts->quiesce == CAIRN_QUIESCE_NEVER)
        return TRUE;
    int n = virDomainFSFreeze(job->dom, NULL, 0, 0);
    if (n >= 0) {
        job->frozen = TRUE;
        return TRUE;
    }
    virErrorPtr e = virGetLastError();
    gboolean no_channel = e && e->code == VIR_ERR_ARGUMENT_UNSUPPORTED;
    g_autoptr(GError) gerr = NULL;
    cairn_virt_set_error(&gerr, CAIRN_VIRT_ERROR_FAILED, "cannot freeze the guest's filesystems");
    if (job->opts->quiesce == CAIRN_QUIESCE_ALWAYS) {
        g_propagate_prefixed_error(error, g_steal_pointer(&gerr), "--quiesce always: ");
        return FALSE;
    }
    if (!job->freeze_noted && no_channel)
        cairn_job_note(job, "the domain has no guest agent channel: the snapshot is "
                       "crash-consistent (with qemu-guest-agent in the guest and its channel "
                       "in the domain, cairn freezes the filesystems: application-consistent)");
    else if (!job->freeze_noted)
        cairn_job_note(job, "no guest agent answered (%s): the snapshot is crash-consistent",
                       gerr->message);
    job->freeze_noted = TRUE;
    return TRUE;
}

void
cairn_job_thaw(CairnJob *job)
{
    if (!job->frozen)
        return;
    if (virDomainFSThaw(job->dom, NULL, 0, 0) < 0) {
        g_autoptr(GError) gerr = NULL;
        cairn_virt_set_error(&gerr, CAIRN_VIRT_ERROR_FAILED, "cannot thaw");
        cairn_job_note(job, "WARNING: %s; run 'virsh domfsthaw %s'", gerr->message,
                       job->info->name);
    }
    job->frozen = FALSE;
}

/* ---- stale state of killed runs ---- */

static gboolean
clean_stale_job(CairnJob *job, GError **error)
{
    virDomainJobInfo ji;
    if (virDomainGetJobInfo(job->dom, &ji) < 0 || ji.type == VIR_DOMAIN_JOB_NONE) {
        virResetLastError();
        return TRUE;
    }
    char *xml = virDomainBackupGetXMLDesc(job->dom, 0);
    if (!xml) {
        virResetLastError();
        g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_BUSY,
                    "domain '%s' is busy with another job (migration, save, ...): retry when "
                    "it is done", job->info->name);
        return FALSE;
    }
    gboolean ours = strstr(xml, job->job_dir) != NULL;
    free(xml);
    if (!ours) {
        g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_BUSY,
                    "domain '%s' has a backup job that cairn did not start: let the other tool "
                    "finish, or end it with 'virsh domjobabort %s'", job->info->name,
                    job->info->name);
        return FALSE;
    }
    if (virDomainAbortJob(job->dom) < 0) {
        cairn_virt_set_error(error, CAIRN_VIRT_ERROR_FAILED,
                             "cannot end the backup job an interrupted cairn left running");
        return FALSE;
    }
    cairn_job_note(job, "ended a backup job left running by an interrupted cairn");
    return TRUE;
}

static gboolean
is_bitmap_error(const GError *e)
{
    return strstr(e->message, "bitmap") || strstr(e->message, "checkpoint");
}

static gboolean
begin_job(CairnJob *job, GError **error)
{
    g_autofree char *sock = g_build_filename(job->job_dir, "nbd.sock", NULL);
    /* a checkpoint holds bitmaps: none without a disk to keep one */
    if (job->bitmapped->len > 0)
        job->checkpoint = cairn_checkpoint_new_name();
    for (int attempt = 0; attempt < 2; attempt++) {
        g_autofree char *bxml = cairn_backup_xml(sock, job->scratch_dir, job->base_checkpoint,
                                                 job->targets, job->unbitmapped, job->others);
        g_autofree char *cxml = job->checkpoint
                                    ? cairn_checkpoint_xml(job->checkpoint, job->bitmapped,
                                                           job->unbitmapped, job->others)
                                    : NULL;
        if (!freeze(job, error))
            return FALSE;
        gint64 tb = g_get_monotonic_time();
        int rc = virDomainBackupBegin(job->dom, bxml, cxml, 0);
        job->result->libvirt_seconds += (double) (g_get_monotonic_time() - tb) / 1e6;
        g_autoptr(GError) gerr = NULL;
        if (rc < 0)
            cairn_virt_set_error(&gerr, CAIRN_VIRT_ERROR_FAILED,
                                 "cannot start the backup job of '%s'", job->info->name);
        gboolean was_frozen = job->frozen;
        cairn_job_thaw(job);
        if (rc >= 0) {
            job->frozen_ok = was_frozen;
            job->job_running = TRUE;
            job->socket = g_steal_pointer(&sock);
            return TRUE;
        }
        if (!job->base_checkpoint || !is_bitmap_error(gerr)) {
            g_propagate_error(error, g_steal_pointer(&gerr));
            return FALSE;
        }
        /* a QEMU crash, a replaced disk: the bitmap is gone or inconsistent */
        cairn_job_note(job, "checkpoint %s cannot be used (%s): deleting it, reading the whole "
                       "disks", job->base_checkpoint, gerr->message);
        job->reason = g_strdup_printf("checkpoint %s was broken", job->base_checkpoint);
        if (cairn_checkpoint_is_ours(job->base_checkpoint))
            cairn_checkpoint_delete(job->dom, job->base_checkpoint, NULL);
        g_clear_pointer(&job->base_checkpoint, g_free);
        /* scratch files of the failed attempt block the next one */
        cairn_job_dir_remove(job->scratch_dir);
        g_autofree char *again = cairn_job_dir_prepare(cairn_scratch_base(), job->info->uuid,
                                                       NULL, error);
        if (!again)
            return FALSE;
    }
    g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_FAILED,
                "cannot start the backup job of '%s'", job->info->name);
    return FALSE;
}

void
cairn_job_end(CairnJob *job)
{
    if (!job->job_running)
        return;
    gint64 t0 = g_get_monotonic_time();
    int rc = virDomainAbortJob(job->dom);
    /* the abort only cancels the block jobs: libvirt tears the backup job
     * down (and deletes the scratch files) a moment later; the next backup
     * must not find it running */
    for (int i = 0; rc == 0 && i < 1500; i++) {
        virDomainJobInfo ji;
        if (virDomainGetJobInfo(job->dom, &ji) < 0) {
            virResetLastError();
            break;
        }
        if (ji.type == VIR_DOMAIN_JOB_NONE)
            break;
        g_usleep(20 * 1000);
    }
    job->result->libvirt_seconds += (double) (g_get_monotonic_time() - t0) / 1e6;
    if (rc < 0) {
        g_autoptr(GError) gerr = NULL;
        cairn_virt_set_error(&gerr, CAIRN_VIRT_ERROR_FAILED, "cannot end the backup job");
        cairn_job_note(job, "WARNING: %s; the next backup ends it", gerr->message);
    }
    job->job_running = FALSE;
}

/* After the snapshot is published: keep only the checkpoint it records. */
static void
prune_checkpoints(CairnJob *job)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GPtrArray) names = cairn_checkpoint_list(job->dom, &gerr);
    if (!names) {
        cairn_job_note(job, "cannot list checkpoints: %s", gerr->message);
        return;
    }
    guint foreign = 0;
    for (guint i = 0; i < names->len; i++) {
        const char *n = names->pdata[i];
        if (!g_strcmp0(n, job->checkpoint))
            continue;
        if (!cairn_checkpoint_is_ours(n) && !job->opts->take_over_checkpoints) {
            foreign++;
            continue;
        }
        g_autoptr(GError) derr = NULL;
        if (!cairn_checkpoint_delete(job->dom, n, &derr))
            cairn_job_note(job, "%s", derr->message);
    }
    if (foreign)
        cairn_job_note(job, "left %u checkpoint%s that cairn did not create (use "
                       "--take-over-checkpoints to let cairn delete them)", foreign,
                       foreign == 1 ? "" : "s");
}

static gboolean
backup_live(CairnJob *job, GError **error)
{
    guint left_a = 0, left_b = 0;
    g_autofree char *jobs_base = g_build_filename(cairn_run_dir(), "jobs", NULL);
    job->job_dir = g_build_filename(jobs_base, job->info->uuid, NULL);
    if (!clean_stale_job(job, error))
        return FALSE;
    g_free(job->job_dir);
    if (!(job->job_dir = cairn_job_dir_prepare(jobs_base, job->info->uuid, &left_a, error)) ||
        !(job->scratch_dir = cairn_job_dir_prepare(cairn_scratch_base(), job->info->uuid,
                                                   &left_b, error)))
        return FALSE;
    if (left_a + left_b)
        cairn_job_note(job, "removed %u file%s (socket, scratch) left by an interrupted backup",
                       left_a + left_b, left_a + left_b == 1 ? "" : "s");
    adopt_offline_bitmaps(job);
    choose_mode(job);
    if (job->base_checkpoint && job->unbitmapped->len > 0) {
        g_autofree char *raw = join_targets(job->unbitmapped);
        cairn_job_note(job, "disk%s %s: not qcow2, QEMU keeps no dirty bitmap for %s: read "
                       "whole (only changed chunks are stored)",
                       job->unbitmapped->len == 1 ? "" : "s", raw,
                       job->unbitmapped->len == 1 ? "it" : "them");
    }
    if (!begin_job(job, error))
        return FALSE;
    job->result->app_consistent = job->frozen_ok;
    gboolean ok = cairn_job_read_disks(job, error);
    if (!ok && !cairn_virt_is_active(job->dom)) {
        /* QEMU went away (shut down, crashed, killed): its job went with it */
        job->job_running = FALSE;
        g_prefix_error(error, "domain '%s' stopped during the backup (its QEMU exited), "
                       "nothing was published; back it up again (now shut off, it is read "
                       "offline): ", job->info->name);
    }
    cairn_job_end(job);
    if (!ok) {
        if (job->checkpoint)
            cairn_checkpoint_delete(job->dom, job->checkpoint, NULL);
        return FALSE;
    }
    if (!job->checkpoint)
        return TRUE;
    g_autoptr(GError) gerr = NULL;
    g_autofree char *cxml = cairn_checkpoint_get_xml(job->dom, job->checkpoint, &gerr);
    if (cxml) {
        if (!cairn_repo_put(job->repo, CAIRN_OBJECT_BLOB, cxml, strlen(cxml),
                            &job->manifest->checkpoint_xml, NULL, error))
            return FALSE;
        job->manifest->has_checkpoint_xml = TRUE;
    } else {
        cairn_job_note(job, "%s (the ledger will lack it)", gerr->message);
    }
    job->manifest->checkpoint = g_strdup(job->checkpoint);
    for (guint i = 0; i < job->manifest->disks->len; i++) {
        CairnManifestDisk *d = job->manifest->disks->pdata[i];
        if (cairn_job_disk_bitmapped(job, d->target))
            d->bitmap = g_strdup(job->checkpoint);
    }
    return TRUE;
}

/* ---- the job ---- */

static void
job_clear(CairnJob *job)
{
    cairn_job_thaw(job);
    cairn_job_end(job);
    cairn_job_dir_remove(job->job_dir);
    cairn_job_dir_remove(job->scratch_dir);
    g_free(job->job_dir);
    g_free(job->scratch_dir);
    g_free(job->socket);
    g_free(job->checkpoint);
    g_free(job->base_checkpoint);
    g_free(job->older_checkpoint);
    g_free(job->adopted);
    g_free(job->new_bitmap);
    g_free(job->reason);
    if (job->targets)
        g_ptr_array_unref(job->targets);
    if (job->others)
        g_ptr_array_unref(job->others);
    if (job->bitmapped)
        g_ptr_array_unref(job->bitmapped);
    if (job->unbitmapped)
        g_ptr_array_unref(job->unbitmapped);
    if (job->skipped)
        json_decref(job->skipped);
    cairn_snapshot_free(job->parent);
    cairn_manifest_free(job->manifest);
    cairn_domain_info_free(job->info);
    if (job->dom)
        virDomainFree(job->dom);
    if (job->conn)
        virConnectClose(job->conn);
}

static gboolean
load_domain(CairnJob *job, GError **error)
{
    if (!(job->conn = cairn_virt_connect(job->opts->uri, error)) ||
        !(job->dom = cairn_virt_lookup(job->conn, job->opts->domain, error)))
        return FALSE;
    char *live = virDomainGetXMLDesc(job->dom, 0);
    char *inactive = virDomainGetXMLDesc(job->dom, VIR_DOMAIN_XML_INACTIVE);
    if (!live || !inactive) {
        free(live);
        free(inactive);
        cairn_virt_set_error(error, CAIRN_VIRT_ERROR_FAILED, "cannot read the XML of '%s'",
                             job->opts->domain);
        return FALSE;
    }
    job->info = cairn_domain_info_parse(live, error);
    job->inactive_xml = g_strdup(inactive);
    free(live);
    free(inactive);
    return job->info != NULL;
}

gboolean
cairn_backup_domain(CairnRepo *repo, const CairnBackupOptions *opts, CairnBackupResult *r,
                    GError **error)
{
    memset(r, 0, sizeof *r);
    r->notes = g_ptr_array_new_with_free_func(g_free);
    gint64 t0 = g_get_monotonic_time();
    CairnJob job = { .repo = repo, .opts = opts, .result = r, .skipped = json_array() };
    gboolean ok = FALSE;
    g_autoptr(CairnDomainLock) dlock = NULL;
    g_autoptr(CairnLock) rlock = NULL;
    g_autofree char *purpose = NULL;

    if (!load_domain(&job, error) || !select_disks(&job, error) ||
        !(dlock = cairn_domain_lock(job.info->uuid, job.info->name, error)))
        goto out;
    purpose = g_strdup_printf("backup %s", job.info->name);
    if (!(rlock = cairn_lock_acquire(repo, CAIRN_LOCK_SHARED, purpose, opts->lock_wait, error)))
        goto out;
    find_parent(&job, NULL);

    job.manifest = cairn_manifest_new();
    CairnManifest *m = job.manifest;
    g_free(m->kind);
    m->kind = g_strdup("domain");
    m->name = g_strdup(job.info->name);
    m->uuid = g_strdup(job.info->uuid);
    m->host = g_strdup(g_get_host_name());
    int64_t now_us = cairn_now_us();
    m->time = now_us / G_USEC_PER_SEC;
    m->time_usec = (int32_t) (now_us % G_USEC_PER_SEC);
    for (guint i = 0; opts->tags && opts->tags[i]; i++)
        g_ptr_array_add(m->tags, g_strdup(opts->tags[i]));
    if (job.parent) {
        m->has_parent = TRUE;
        m->parent = job.parent->id;
    }

    r->offline = !cairn_virt_is_active(job.dom);
    int state = 0, reason = 0;
    gboolean clean_off = r->offline && virDomainGetState(job.dom, &state, &reason, 0) == 0 &&
                         state == VIR_DOMAIN_SHUTOFF && reason == VIR_DOMAIN_SHUTOFF_SHUTDOWN;
    if (!(r->offline ? cairn_job_backup_offline(&job, error) : backup_live(&job, error)))
        goto out;
    r->consistency = r->app_consistent ? "application" : clean_off ? "shutdown" : "crash";

    if (!cairn_repo_put(repo, CAIRN_OBJECT_BLOB, job.inactive_xml, strlen(job.inactive_xml),
                        &m->domain_xml, NULL, error))
        goto out;
    m->has_domain_xml = TRUE;
    g_free(m->consistency);
    m->consistency = g_strdup(r->consistency);
    if (!m->extra)
        m->extra = json_object();
    json_object_set_new(m->extra, "mode", json_string(job.base_checkpoint || job.base_bitmap
                                                          ? "incremental" : "full"));
    json_object_set(m->extra, "skipped_disks", job.skipped);
    json_object_set_new(m->extra, "offline", json_boolean(r->offline));
    if (!cairn_snapshot_publish(repo, m, &r->id, error))
        goto out;
    if (!r->offline) {
        gint64 tp = g_get_monotonic_time();
        prune_checkpoints(&job);
        r->libvirt_seconds += (double) (g_get_monotonic_time() - tp) / 1e6;
        /* cairn's own time (qemu-img info), not libvirt's. Not after a plain
         * incremental (from a live parent, every disk): nothing to leave */
        if (!job.base_checkpoint || job.others->len > 0 ||
            (job.parent && !job.parent->manifest->checkpoint))
            sweep_stale_bitmaps(&job);
    }
    else
        cairn_job_offline_cleanup(&job);

    r->mode = g_strdup(job.base_checkpoint || job.base_bitmap ? "incremental" : "full");
    r->reason = g_strdup(job.reason);
    ok = TRUE;
out:
    r->seconds = (double) (g_get_monotonic_time() - t0) / 1e6;
    g_free(job.inactive_xml);
    job_clear(&job);
    return ok;
}
