/* disk.c - restore one disk from its index into a raw or qcow2 file.
 *
 * The target is built as a hidden temp file beside it
 * (".NAME.cairn-partial-XXXXXXXX") and renamed over it only once complete
 * and durable; any failure unlinks the temp file. Holes are never written,
 * so the result stays sparse (raw: ftruncate + pwrite of data chunks;
 * qcow2: unallocated clusters, see qcow2.h).
 *
 * Pipeline: the calling thread hands chunk numbers, with the offset each
 * goes to in the file (raw: its virtual offset; qcow2: its place in the
 * layout), to a GThreadPool whose workers fetch, decompress and re-verify
 * each chunk (cairn_repo_get) and pwrite it. The written ranges stream to
 * the disk behind them (common/writeback.h), so the final fsync is short
 * and the page cache is not flooded. The number of jobs bounds the chunks
 * held in memory. qcow2 metadata is written once all data is in place. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "common/writeback.h"
#include "restore/qcow2.h"
#include "restore/restore.h"

#define PROGRESS_INTERVAL_US (100 * 1000)
/* chunks fetched ahead of the workers: enough to keep them busy, no more */
#define JOB_QUEUE_BYTES (8u << 20)

G_DEFINE_QUARK(cairn-restore-error-quark, cairn_restore_error)

static const char *const format_names[] = { "raw", "qcow2", NULL };

gboolean
cairn_disk_format_parse(const char *text, CairnDiskFormat *ret_format, GError **error)
{
    if (text && strcmp(text, "raw") == 0) {
        *ret_format = CAIRN_DISK_FORMAT_RAW;
        return TRUE;
    }
    if (text && strcmp(text, "qcow2") == 0) {
        *ret_format = CAIRN_DISK_FORMAT_QCOW2;
        return TRUE;
    }
    const char *hint = text ? cairn_closest(text, format_names) : NULL;
    g_autofree char *dym = hint ? g_strdup_printf(" (did you mean '%s'?)", hint) : NULL;
    g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                "unknown disk format '%s': valid formats are raw, qcow2%s", text ? text : "",
                dym ? dym : "");
    return FALSE;
}

typedef struct Restore Restore;

typedef struct {
    Restore *r;
    uint64_t chunk;
    uint64_t offset; /* in the file */
    uint32_t len;
    GError *error;
} Job;

struct Restore {
    CairnRepo *repo;
    const CairnIndex *index;
    const char *path;
    const char *tmp;
    const gint *cancel;   /* set by the caller: stop */
    int fd;               /* the temp file */
    CairnQcow2 *qcow2;    /* NULL: raw */
    CairnWriteback *writeback;

    Job *jobs;
    guint njobs;
    GPtrArray *free_jobs; /* calling thread only */
    GAsyncQueue *returned;
    int wake_fd;
    GThreadPool *pool;
    gint failed; /* atomic */
    GError *error;

    uint64_t next;
    uint64_t done_bytes;
    CairnRestoreStats stats;
};

/* ---- workers: fetch, verify, write ---- */

static void
wake(Restore *r)
{
    uint64_t one = 1;
    while (write(r->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static gboolean
fetch_chunk(Restore *r, Job *job, GBytes **ret_data, GError **error)
{
    const CairnId *id = &r->index->ids[job->chunk];
    char hex[CAIRN_ID_HEX_LEN + 1];
    CairnObjectType type = 0;
    g_autoptr(GBytes) data = cairn_repo_get(r->repo, id, &type, error);
    if (!data)
        return FALSE;
    if (type != CAIRN_OBJECT_CHUNK) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                    "object %s is a %s, not a chunk (the index is corrupt: run cairn verify)",
                    cairn_id_to_hex(id, hex), cairn_object_type_name(type));
        return FALSE;
    }
    if (g_bytes_get_size(data) != job->len) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                    "chunk %s has %" G_GSIZE_FORMAT " bytes where the index expects %u "
                    "(the repository is corrupt: run cairn verify)",
                    cairn_id_to_hex(id, hex), g_bytes_get_size(data), job->len);
        return FALSE;
    }
    *ret_data = g_steal_pointer(&data);
    return TRUE;
}

static void
worker(gpointer data, gpointer user_data)
{
    Job *job = data;
    Restore *r = job->r;
    if (!g_atomic_int_get(&r->failed)) {
        g_autoptr(GBytes) bytes = NULL;
        if (!fetch_chunk(r, job, &bytes, &job->error) ||
            !cairn_pwrite_all(r->fd, g_bytes_get_data(bytes, NULL), job->len, job->offset,
                              r->tmp, &job->error) ||
            !cairn_writeback_add(r->writeback, r->fd, job->offset, job->len, FALSE, r->tmp,
                                 &job->error))
            g_atomic_int_set(&r->failed, 1);
    }
    g_async_queue_push(r->returned, job);
    wake(r);
}

/* ---- the calling thread ---- */

static void
fail(Restore *r, GError *err)
{
    g_atomic_int_set(&r->failed, 1);
    if (!r->error)
        r->error = err;
    else
        g_error_free(err);
}

static void
collect_returned(Restore *r)
{
    Job *job;
    while ((job = g_async_queue_try_pop(r->returned))) {
        if (job->error) {
            g_prefix_error(&job->error, "chunk %" G_GUINT64_FORMAT ": ", job->chunk);
            fail(r, g_steal_pointer(&job->error));
        } else if (!r->error) {
            r->stats.chunks_written++;
            r->stats.bytes_written += job->len;
            r->done_bytes += job->len;
        }
        g_ptr_array_add(r->free_jobs, job);
    }
}

static void
dispatch(Restore *r)
{
    const CairnIndex *index = r->index;
    if (!r->error && r->cancel && g_atomic_int_get(r->cancel))
        fail(r, g_error_new(CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_CANCELLED,
                            "cancelled"));
    if (!r->error && cairn_cancelled()) {
        GError *e = NULL;
        cairn_set_cancelled(&e, "stopped");
        fail(r, e);
    }
    while (!r->error && r->free_jobs->len > 0 && r->next < index->count) {
        uint64_t i = r->next++;
        uint32_t len = cairn_index_chunk_len(index, i);
        if (cairn_id_is_zero(&index->ids[i])) {
            r->stats.chunks_hole++;
            r->done_bytes += len;
            continue;
        }
        Job *job = g_ptr_array_steal_index_fast(r->free_jobs, r->free_jobs->len - 1);
        job->chunk = i;
        job->len = len;
        job->offset = r->qcow2 ? cairn_qcow2_place(r->qcow2, i) : i * index->chunk_size;
        g_thread_pool_push(r->pool, job, NULL);
    }
}

/* Wait for a job to come back. */
static void
wait_for_job(Restore *r)
{
    struct pollfd pfd = { .fd = r->wake_fd, .events = POLLIN };
    int rc;
    do
        rc = poll(&pfd, 1, -1);
    while (rc < 0 && errno == EINTR && !cairn_cancelled());
    if (rc < 0 && errno == EINTR)
        return; /* dispatch() takes the cancellation */
    uint64_t v;
    if (rc < 0 || (read(r->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN && errno != EINTR)) {
        GError *e = NULL;
        cairn_set_errno(&e, errno, "cannot wait while restoring", r->path);
        fail(r, e);
    }
}

static void
report_progress(Restore *r, CairnProgressFunc progress, gpointer data, gint64 *last,
                gboolean force)
{
    if (!progress)
        return;
    gint64 now = g_get_monotonic_time();
    if (!force && now - *last < PROGRESS_INTERVAL_US)
        return;
    *last = now;
    progress(r->done_bytes, r->index->virtual_size, data);
}

static void
restore_clear(Restore *r)
{
    if (r->pool)
        g_thread_pool_free(r->pool, FALSE, TRUE);
    if (r->returned)
        g_async_queue_unref(r->returned);
    for (guint i = 0; r->jobs && i < r->njobs; i++)
        g_clear_error(&r->jobs[i].error);
    g_free(r->jobs);
    if (r->free_jobs)
        g_ptr_array_free(r->free_jobs, TRUE);
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    g_clear_error(&r->error);
}

/* Write every data chunk of the index into the temp file (r->fd). */
static gboolean
write_chunks(Restore *r, CairnProgressFunc progress, gpointer progress_data, GError **error)
{
    uint32_t chunk_size = r->index->chunk_size;
    guint njobs, workers;
    cairn_pipeline_size(chunk_size, &njobs, &workers);
    njobs = MIN(njobs, MAX(2 * workers + 2, JOB_QUEUE_BYTES / chunk_size));
    njobs = MAX(njobs, workers + 1);

    r->njobs = njobs;
    r->jobs = g_new0(Job, njobs);
    r->free_jobs = g_ptr_array_sized_new(njobs);
    for (guint i = 0; i < njobs; i++) {
        r->jobs[i].r = r;
        g_ptr_array_add(r->free_jobs, &r->jobs[i]);
    }
    r->returned = g_async_queue_new();
    r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->wake_fd < 0) {
        cairn_set_errno(error, errno, "cannot create an eventfd to restore", r->path);
        restore_clear(r);
        return FALSE;
    }
    r->pool = g_thread_pool_new(worker, r, (gint) workers, FALSE, error);
    if (!r->pool) {
        restore_clear(r);
        return FALSE;
    }

    gint64 last = g_get_monotonic_time();
    for (;;) {
        collect_returned(r);
        dispatch(r);
        report_progress(r, progress, progress_data, &last, FALSE);
        gboolean more = !r->error && r->next < r->index->count;
        if (!more && r->free_jobs->len == r->njobs)
            break;
        wait_for_job(r);
    }
    if (r->error) {
        g_propagate_error(error, g_steal_pointer(&r->error));
        restore_clear(r);
        return FALSE;
    }
    report_progress(r, progress, progress_data, &last, TRUE);
    restore_clear(r);
    return TRUE;
}

/* ---- the target file ---- */

#define PARTIAL_INFIX ".cairn-partial-"

/* Remove the partial files ".BASE.cairn-partial-*" in dir that a killed
 * restore left (no process holds their lock); returns how many. */
static uint64_t
remove_stale_partials(const char *dir, const char *base)
{
    g_autofree char *prefix = g_strdup_printf(".%s" PARTIAL_INFIX, base);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    uint64_t removed = 0;
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        if (!g_str_has_prefix(name, prefix))
            continue;
        g_autofree char *path = g_build_filename(dir, name, NULL);
        cairn_autofd fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && unlink(path) == 0)
            removed++;
    }
    return removed;
}

gboolean
cairn_restore_check_target(const char *path, gboolean force, GError **error)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return TRUE;
        cairn_set_errno(error, errno, "cannot check the restore target", path);
        return FALSE;
    }
    if (S_ISDIR(st.st_mode)) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "cannot restore to '%s': it is a directory (give a file name)", path);
        return FALSE;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "cannot restore to '%s': it exists and is not a regular file", path);
        return FALSE;
    }
    if (!force) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_EXISTS,
                    "cannot restore to '%s': the file exists (use --force to replace it)", path);
        return FALSE;
    }
    return TRUE;
}

uint64_t
cairn_restore_space_needed(const CairnIndex *index, CairnDiskFormat format)
{
    uint64_t need = 0;
    for (uint64_t i = 0; i < index->count; i++)
        if (!cairn_id_is_zero(&index->ids[i]))
            need += cairn_index_chunk_len(index, i);
    if (format == CAIRN_DISK_FORMAT_QCOW2)
        need += need / 4096 + (1u << 20); /* L1/L2/refcount tables, header */
    return need;
}

gboolean
cairn_restore_check_space(const char *dir, uint64_t need, const char *what, GError **error)
{
    struct statvfs vfs;
    if (statvfs(dir, &vfs) < 0) {
        int errsv = errno;
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                    "cannot restore %s: cannot check free space in '%s': %s", what, dir,
                    g_strerror(errsv));
        return FALSE;
    }
    uint64_t avail = (uint64_t) vfs.f_bavail * vfs.f_frsize;
    if (need > avail) {
        g_autofree char *need_s = cairn_format_size(need);
        g_autofree char *avail_s = cairn_format_size(avail);
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_NOSPACE,
                    "cannot restore %s: not enough free space in '%s': %s needed, %s "
                    "available (free space there or restore elsewhere)",
                    what, dir, need_s, avail_s);
        return FALSE;
    }
    return TRUE;
}

/* everything after the temp file exists; the caller unlinks it on failure */
static gboolean
restore_into(Restore *r, CairnProgressFunc progress, gpointer progress_data, GError **error)
{
    const CairnIndex *index = r->index;
    if (!r->qcow2 && ftruncate(r->fd, (off_t) index->virtual_size) < 0) {
        cairn_set_errno(error, errno, "cannot set the size of", r->tmp);
        return FALSE;
    }
    GError *wb_error = NULL;
    if (!write_chunks(r, progress, progress_data, error) ||
        (r->qcow2 && !cairn_qcow2_write_metadata(r->qcow2, r->fd, r->tmp, error)))
        return FALSE;
    if (!cairn_writeback_drain(r->writeback, &wb_error)) {
        g_propagate_error(error, wb_error);
        return FALSE;
    }
    if (fsync(r->fd) < 0) {
        cairn_set_errno(error, errno, "cannot fsync", r->tmp);
        return FALSE;
    }
    return TRUE;
}

static gboolean
restore_disk(CairnRepo *repo, const CairnIndex *index, const char *path, CairnDiskFormat format,
             gboolean force, const gint *cancel, CairnRestoreStats *ret_stats,
             CairnProgressFunc progress, gpointer progress_data,
             CairnRestorePending *ret_pending, GError **error)
{
    g_return_val_if_fail(repo && index && path, FALSE);

    if (index->count == 0 || index->chunk_size == 0) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "cannot restore to '%s': the disk index is empty", path);
        return FALSE;
    }
    if (!cairn_restore_check_target(path, force, error))
        return FALSE;
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *what = g_strdup_printf("to '%s'", path);
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "cannot restore to '%s': the directory '%s' does not exist (create it "
                    "first)", path, dir);
        return FALSE;
    }
    uint64_t stale = remove_stale_partials(dir, base); /* their space counts */
    if (!cairn_restore_check_space(dir, cairn_restore_space_needed(index, format), what, error))
        return FALSE;

    g_autofree char *rnd = cairn_random_hex(4);
    g_autofree char *tmp = g_strdup_printf("%s/.%s" PARTIAL_INFIX "%s", dir, base, rnd);
    cairn_autofd fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        cairn_set_errno(error, errno, "cannot create", tmp);
        return FALSE;
    }
    /* held while it is written: a later restore to the same target tells a
     * partial file of a killed run from one being written */
    flock(fd, LOCK_EX | LOCK_NB);

    g_autoptr(CairnQcow2) qcow2 = NULL;
    if (format == CAIRN_DISK_FORMAT_QCOW2 && !(qcow2 = cairn_qcow2_new(index, error))) {
        unlink(tmp);
        return FALSE;
    }
    g_autoptr(CairnWriteback) writeback = cairn_writeback_new(CAIRN_WRITEBACK_WINDOW);
    Restore r = {
        .repo = repo,
        .index = index,
        .path = path,
        .tmp = tmp,
        .cancel = cancel,
        .fd = fd,
        .qcow2 = qcow2,
        .writeback = writeback,
        .wake_fd = -1,
    };
    gboolean ok = restore_into(&r, progress, progress_data, error);
    if (!ok)
        g_prefix_error(error, "cannot restore to '%s': ", path);
    if (ok && ret_pending) { /* complete and durable (restore_into fsynced it) */
        ret_pending->tmp = g_steal_pointer(&tmp);
        ret_pending->path = g_strdup(path);
        ret_pending->fd = cairn_steal_fd(&fd);
    } else {
        if (ok && close(cairn_steal_fd(&fd)) < 0) {
            cairn_set_errno(error, errno, "cannot close", tmp);
            ok = FALSE;
        }
        if (ok && rename(tmp, path) < 0) {
            cairn_set_errno(error, errno, "cannot rename the restored disk to", path);
            ok = FALSE;
        }
        if (!ok) {
            unlink(tmp);
            return FALSE;
        }
        if (!cairn_fsync_dir(dir, error))
            return FALSE;
    }
    if (ret_stats) {
        *ret_stats = r.stats;
        ret_stats->stale_partials_removed = stale;
    }
    return TRUE;
}

gboolean
cairn_restore_disk_to_file(CairnRepo *repo, const CairnIndex *index, const char *path,
                           CairnDiskFormat format, gboolean force, const gint *cancel,
                           CairnRestoreStats *ret_stats,
                           CairnProgressFunc progress, gpointer progress_data, GError **error)
{
    return restore_disk(repo, index, path, format, force, cancel, ret_stats, progress,
                        progress_data, NULL, error);
}

gboolean
cairn_restore_disk_to_pending(CairnRepo *repo, const CairnIndex *index, const char *path,
                              CairnDiskFormat format, gboolean force, const gint *cancel,
                              CairnRestoreStats *ret_stats, CairnRestorePending *ret_pending,
                              GError **error)
{
    memset(ret_pending, 0, sizeof *ret_pending);
    ret_pending->fd = -1;
    return restore_disk(repo, index, path, format, force, cancel, ret_stats, NULL, NULL,
                        ret_pending, error);
}

static void
pending_clear(CairnRestorePending *p)
{
    if (p->fd >= 0)
        close(p->fd);
    g_free(p->tmp);
    g_free(p->path);
    memset(p, 0, sizeof *p);
    p->fd = -1;
}

gboolean
cairn_restore_pending_commit(CairnRestorePending *p, GError **error)
{
    gboolean ok = TRUE;
    if (rename(p->tmp, p->path) < 0) {
        cairn_set_errno(error, errno, "cannot rename the restored disk to", p->path);
        unlink(p->tmp);
        ok = FALSE;
    }
    g_autofree char *dir = g_path_get_dirname(p->path);
    ok = ok && cairn_fsync_dir(dir, error);
    pending_clear(p);
    return ok;
}

void
cairn_restore_pending_abort(CairnRestorePending *p)
{
    if (p->tmp)
        unlink(p->tmp);
    pending_clear(p);
}
