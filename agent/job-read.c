/* job-read.c - read a job's disks in parallel, one thread per disk. */
#include "config.h"

#include <string.h>

#include "agent/job-internal.h"
#include "repo/index.h"
#include "repo/quarantine.h"

typedef struct Progress {
    GMutex lock;
    const CairnBackupOptions *opts;
    uint64_t total;
    uint64_t *done; /* per disk */
} Progress;

typedef struct {
    CairnJob *job;
    guint i;
    CairnNbdSource *src;
    const CairnIndex *parent;
    CairnIndex *index;
    CairnDiskStats st;
    GError *error;
    Progress *progress;
    GHashTable *damaged;
} DiskRead;

static void
disk_progress(uint64_t done, uint64_t total, gpointer data)
{
    DiskRead *dr = data;
    Progress *p = dr->progress;
    if (!p->opts->progress)
        return;
    g_mutex_lock(&p->lock);
    p->done[dr->i] = done;
    uint64_t sum = 0;
    for (guint k = 0; k < dr->job->targets->len; k++)
        sum += p->done[k];
    p->opts->progress(sum, p->total, p->opts->progress_data);
    g_mutex_unlock(&p->lock);
}

static gpointer
read_thread(gpointer data)
{
    DiskRead *dr = data;
    cairn_nbd_backup_disk(dr->job->repo, dr->src, dr->parent, dr->damaged, &dr->index, &dr->st,
                          disk_progress, dr, &dr->error);
    return NULL;
}

static CairnNbdSource *
open_live(CairnJob *job, guint i, const CairnIndex **ret_parent, GError **error)
{
    const char *t = job->targets->pdata[i];
    g_autofree char *ctx = job->base_checkpoint && cairn_job_disk_bitmapped(job, t)
                               ? g_strdup_printf("qemu:dirty-bitmap:backup-%s", t) : NULL;
    *ret_parent = NULL;
    return cairn_nbd_source_connect(job->socket, t, ctx, error);
}

gboolean
cairn_job_read_disks(CairnJob *job, GError **error)
{
    return cairn_job_read_disks_with(job, open_live, error);
}

gboolean
cairn_job_read_disks_with(CairnJob *job, CairnJobOpenFunc open, GError **error)
{
    guint n = job->targets->len;
    g_autofree DiskRead *reads = g_new0(DiskRead, n);
    g_autofree GThread **threads = g_new0(GThread *, n);
    g_autoptr(GPtrArray) parents = g_ptr_array_new_with_free_func((GDestroyNotify) cairn_index_free);
    Progress progress = { .opts = job->opts, .done = g_new0(uint64_t, n) };
    g_mutex_init(&progress.lock);
    gboolean incremental = job->base_checkpoint || job->base_bitmap;
    gboolean ok = TRUE;
    /* objects verify set aside: unchanged chunks that use them are read again */
    g_autoptr(GHashTable) damaged = NULL;
    if (incremental) {
        g_autoptr(GError) derr = NULL;
        if (!(damaged = cairn_repo_damaged(job->repo, &derr)))
            cairn_job_note(job, "cannot list the objects verify set aside (%s): chunks that "
                           "use them are not read again", derr->message);
    }

    for (guint i = 0; ok && i < n; i++) {
        DiskRead *dr = &reads[i];
        dr->job = job;
        dr->i = i;
        dr->progress = &progress;
        dr->damaged = damaged;
        const CairnIndex *given = NULL;
        dr->src = open(job, i, &given, error);
        if (!dr->src) {
            ok = FALSE;
            break;
        }
        progress.total += cairn_nbd_source_size(dr->src);
        dr->parent = given;
        if (incremental && !dr->parent && job->parent) {
            const CairnManifestDisk *pd =
                cairn_manifest_find_disk(job->parent->manifest, job->targets->pdata[i]);
            g_autoptr(GError) perr = NULL;
            CairnIndex *pi = pd ? cairn_index_load(job->repo, &pd->index, &perr) : NULL;
            if (pd && !pi) /* read whole: the new snapshot must not depend on it */
                cairn_job_note(job, "disk %s: the last snapshot's index cannot be read (%s): "
                               "reading the disk whole", (char *) job->targets->pdata[i],
                               perr->message);
            if (pi) {
                g_ptr_array_add(parents, pi);
                dr->parent = pi;
            }
        }
    }
    for (guint i = 0; ok && i < n; i++)
        threads[i] = g_thread_new("cairn-disk", read_thread, &reads[i]);
    for (guint i = 0; i < n; i++)
        if (threads[i])
            g_thread_join(threads[i]);

    uint64_t total_read = 0, total_new = 0, total_size = 0;
    json_t *disks = json_array();
    for (guint i = 0; i < n; i++) {
        DiskRead *dr = &reads[i];
        if (ok && dr->error) {
            g_propagate_prefixed_error(error, g_steal_pointer(&dr->error), "disk %s: ",
                                       (char *) job->targets->pdata[i]);
            ok = FALSE;
        }
        if (ok) {
            const char *t = job->targets->pdata[i];
            const CairnDomainDisk *dd = cairn_domain_info_find_disk(job->info, t);
            CairnManifestDisk *md = cairn_manifest_add_disk(job->manifest, t);
            uint64_t index_new = 0;
            if (!cairn_index_store(job->repo, dr->index, &md->index, &index_new, error)) {
                ok = FALSE;
            } else {
                md->format = g_strdup(dd && dd->format ? dd->format : "raw");
                md->source = g_strdup(dd ? dd->source : NULL);
                md->virtual_size = dr->index->virtual_size;
                md->bytes_read = dr->st.bytes_read;
                md->bytes_new = dr->st.bytes_new + index_new;
                total_read += md->bytes_read;
                total_new += md->bytes_new;
                total_size += md->virtual_size;
                json_array_append_new(disks, json_pack(
                    "{s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "target", t,
                    "source", md->source, "virtual_size", (json_int_t) md->virtual_size,
                    "bytes_read", (json_int_t) md->bytes_read,
                    "bytes_new", (json_int_t) md->bytes_new,
                    "chunks", (json_int_t) dr->st.chunks_total,
                    "chunks_hole", (json_int_t) dr->st.chunks_hole,
                    "chunks_reused", (json_int_t) dr->st.chunks_reused,
                    "chunks_new", (json_int_t) dr->st.chunks_new));
                json_t *jd = json_array_get(disks, json_array_size(disks) - 1);
                json_object_set_new(jd, "chunks_read", json_integer((json_int_t) dr->st.chunks_read));
                json_object_set_new(jd, "chunks_repaired",
                                    json_integer((json_int_t) dr->st.chunks_repaired));
                if (dr->st.chunks_repaired)
                    cairn_job_note(job, "disk %s: %" G_GUINT64_FORMAT " unchanged chunk%s read "
                                   "again: the last snapshot's cop%s had been set aside as "
                                   "damaged by verify", t, dr->st.chunks_repaired,
                                   dr->st.chunks_repaired == 1 ? "" : "s",
                                   dr->st.chunks_repaired == 1 ? "y" : "ies");
            }
        }
        g_clear_error(&dr->error);
        cairn_index_free(dr->index);
        cairn_nbd_source_free(dr->src);
    }
    g_free(progress.done);
    g_mutex_clear(&progress.lock);
    job->result->bytes_read = total_read;
    job->result->bytes_new = total_new;
    job->result->virtual_size = total_size;
    if (job->result->disks)
        json_decref(job->result->disks);
    job->result->disks = disks;
    return ok;
}
