/* disk.c - restore one disk from its index into a raw or qcow2 file.
 *
 * The target is built as a hidden temp file beside it
 * (".NAME.cairn-partial-XXXXXXXX") and renamed over it only once complete
 * and durable; any failure unlinks the temp file. Holes are never written,
 * so the result stays sparse (raw: ftruncate + pwrite of data chunks;
 * qcow2: unwritten clusters stay unallocated).
 *
 * Pipeline: the calling thread hands chunk numbers to a GThreadPool whose
 * workers fetch, decompress and re-verify each chunk (cairn_repo_get) and,
 * for raw, pwrite it themselves. For qcow2 the chunk comes back to the
 * calling thread, which writes it through a private qemu-nbd with
 * nbd_aio_pwrite (several writes in flight) while the workers decode the
 * next ones. The number of jobs bounds the chunks held in memory. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "restore/restore.h"

#define PROGRESS_INTERVAL_US (100 * 1000)
/* qemu-nbd allocates a buffer per write request; 64 KiB writes measured
 * 2-3x faster than 512 KiB or 1 MiB ones here (page faults on fresh maps) */
#define WRITE_REQUEST_MAX (64u << 10)
/* decoded chunks waiting for (or in) their NBD writes: enough to keep
 * qemu-nbd busy, no more */
#define WRITE_QUEUE_BYTES (8u << 20)

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
    uint32_t len;
    GBytes *data;     /* qcow2: the decoded chunk, until its write completes */
    guint pending;    /* qcow2: NBD writes from it in flight */
    int write_errno;  /* qcow2: the first failed part's errno */
    GError *error;
} Job;

struct Restore {
    CairnRepo *repo;
    const CairnIndex *index;
    const char *path;
    const char *tmp;
    CairnDiskFormat format;
    const gint *cancel;   /* set by the caller: stop */
    int fd;               /* raw: the temp file */
    struct nbd_handle *h; /* qcow2: qemu-nbd on the temp file */

    Job *jobs;
    guint njobs;
    GPtrArray *free_jobs; /* calling thread only */
    guint in_flight;      /* NBD write requests */
    GAsyncQueue *returned;
    int wake_fd;
    GThreadPool *pool;
    gint failed; /* atomic */
    GError *error;

    uint64_t next;
    uint64_t done_bytes;
    CairnRestoreStats stats;
};

/* ---- workers: fetch, verify, (raw) write ---- */

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
        gboolean ok = fetch_chunk(r, job, &bytes, &job->error);
        if (ok && r->format == CAIRN_DISK_FORMAT_RAW)
            ok = cairn_pwrite_all(r->fd, g_bytes_get_data(bytes, NULL), job->len,
                                  job->chunk * r->index->chunk_size, r->tmp, &job->error);
        else if (ok)
            job->data = g_steal_pointer(&bytes);
        if (!ok)
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
job_done(Restore *r, Job *job)
{
    if (!r->error) {
        r->stats.chunks_written++;
        r->stats.bytes_written += job->len;
        r->done_bytes += job->len;
    }
    g_clear_pointer(&job->data, g_bytes_unref);
    g_ptr_array_add(r->free_jobs, job);
}

static int
write_done(void *user_data, int *error)
{
    Job *job = user_data;
    Restore *r = job->r;
    job->pending--;
    r->in_flight--;
    if (*error && !job->write_errno)
        job->write_errno = *error;
    if (job->pending > 0)
        return 1;
    if (job->write_errno && !r->error)
        fail(r, g_error_new(CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                            "cannot write '%s' at offset %" G_GUINT64_FORMAT ": %s", r->tmp,
                            job->chunk * r->index->chunk_size, g_strerror(job->write_errno)));
    job_done(r, job);
    return 1;
}

static void
start_write(Restore *r, Job *job)
{
    gsize len;
    const uint8_t *p = g_bytes_get_data(job->data, &len);
    uint64_t offset = job->chunk * r->index->chunk_size;
    job->write_errno = 0;
    for (gsize part = 0; part < len; part += WRITE_REQUEST_MAX) {
        gsize n = MIN(WRITE_REQUEST_MAX, len - part);
        if (nbd_aio_pwrite(r->h, p + part, n, offset + part,
                           (nbd_completion_callback) { .callback = write_done, .user_data = job },
                           0) < 0) {
            GError *e = NULL;
            cairn_nbd_set_error(&e, CAIRN_NBD_ERROR_IO,
                                "cannot write '%s' at offset %" G_GUINT64_FORMAT, r->tmp,
                                offset + part);
            fail(r, e);
            if (job->pending == 0) /* else the last part's write_done ends it */
                job_done(r, job);
            return;
        }
        job->pending++;
        r->in_flight++;
    }
}

static void
collect_returned(Restore *r)
{
    Job *job;
    while ((job = g_async_queue_try_pop(r->returned))) {
        if (job->error) {
            g_prefix_error(&job->error, "chunk %" G_GUINT64_FORMAT ": ", job->chunk);
            fail(r, g_steal_pointer(&job->error));
            job_done(r, job);
        } else if (job->data && !r->error) {
            start_write(r, job);
        } else {
            job_done(r, job);
        }
    }
}

static void
dispatch(Restore *r)
{
    const CairnIndex *index = r->index;
    if (!r->error && r->cancel && g_atomic_int_get(r->cancel))
        fail(r, g_error_new(CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_CANCELLED,
                            "cancelled"));
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
        g_thread_pool_push(r->pool, job, NULL);
    }
}

static void
reclaim_writes(Restore *r)
{
    for (guint i = 0; i < r->njobs; i++)
        if (r->jobs[i].pending > 0) {
            r->jobs[i].pending = 0;
            g_clear_pointer(&r->jobs[i].data, g_bytes_unref);
            g_ptr_array_add(r->free_jobs, &r->jobs[i]);
        }
    r->in_flight = 0;
    if (!r->error) {
        GError *e = NULL;
        cairn_nbd_set_error(&e, CAIRN_NBD_ERROR_IO, "cannot write '%s': qemu-nbd is gone", r->tmp);
        fail(r, e);
    }
}

static void
wait_for_event(Restore *r)
{
    struct pollfd fds[2] = { { .fd = r->wake_fd, .events = POLLIN } };
    nfds_t n = 1;
    int fd = r->h ? nbd_aio_get_fd(r->h) : -1;
    unsigned dir = fd >= 0 ? nbd_aio_get_direction(r->h) : 0;
    if (fd >= 0 && (r->in_flight > 0 || (dir & LIBNBD_AIO_DIRECTION_WRITE))) {
        fds[1].fd = fd;
        fds[1].events = (short) (((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                                 ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0));
        n = 2;
    }
    if (n == 1 && r->in_flight > 0) {
        reclaim_writes(r);
        return;
    }
    int rc;
    do
        rc = poll(fds, n, -1);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        GError *e = NULL;
        cairn_set_errno(&e, errno, "cannot wait while restoring", r->path);
        fail(r, e);
        return;
    }
    if (fds[0].revents & POLLIN) {
        uint64_t v;
        if (read(r->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN && errno != EINTR) {
            GError *e = NULL;
            cairn_set_errno(&e, errno, "cannot wait while restoring", r->path);
            fail(r, e);
        }
    }
    if (n == 2 && fds[1].revents) {
        int rr = 0;
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR))
            rr = nbd_aio_notify_read(r->h);
        else if (fds[1].revents & POLLOUT)
            rr = nbd_aio_notify_write(r->h);
        if (rr < 0) {
            GError *e = NULL;
            cairn_nbd_set_error(&e, CAIRN_NBD_ERROR_IO, "cannot write '%s'", r->tmp);
            fail(r, e);
        }
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
    for (guint i = 0; r->jobs && i < r->njobs; i++) {
        g_clear_pointer(&r->jobs[i].data, g_bytes_unref);
        g_clear_error(&r->jobs[i].error);
    }
    g_free(r->jobs);
    if (r->free_jobs)
        g_ptr_array_free(r->free_jobs, TRUE);
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    g_clear_error(&r->error);
}

/* Write every data chunk of the index into the open temp file (r->fd) or
 * through r->h. */
static gboolean
write_chunks(Restore *r, CairnProgressFunc progress, gpointer progress_data, GError **error)
{
    uint32_t chunk_size = r->index->chunk_size;
    guint njobs, workers;
    cairn_pipeline_size(chunk_size, &njobs, &workers);
    njobs = MIN(njobs, MAX(2 * workers + 2, WRITE_QUEUE_BYTES / chunk_size));
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
        if (!more && r->in_flight == 0 && r->free_jobs->len == r->njobs)
            break;
        wait_for_event(r);
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

static gboolean
run_tool(const char *const *argv, const char *what, GError **error)
{
    g_autofree char *out = NULL, *err = NULL;
    int status = 0;
    g_autoptr(GError) local = NULL;
    if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_CLOEXEC_PIPES, NULL, NULL, &out, &err,
                      &status, &local)) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                    "%s: cannot run '%s': %s (install qemu-utils)", what, argv[0], local->message);
        return FALSE;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_autofree char *tool = g_path_get_basename(argv[0]);
        g_autofree char *msg = cairn_tool_message(tool, err);
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED, "%s: %s", what, msg);
        return FALSE;
    }
    return TRUE;
}

/* create the qcow2 in tmp and connect to a qemu-nbd serving it */
static struct nbd_handle *
open_qcow2(const char *tmp, uint64_t virtual_size, GError **error)
{
    g_autofree char *arg = cairn_image_path_arg(tmp);
    g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, virtual_size);
    g_autofree char *what = g_strdup_printf("cannot create qcow2 image '%s'", tmp);
    const char *create[] = { CAIRN_QEMU_IMG, "create", "-q", "-f", "qcow2", arg, size, NULL };
    if (!run_tool(create, what, error))
        return NULL;

    g_autoptr(CairnNbdHandle) h = nbd_create();
    /* parent-death signal: a killed cairn takes qemu-nbd along (see nbd/source.c) */
    g_auto(GStrv) pd = cairn_pdeath_prefix();
    char *argv[] = { pd[0], pd[1], pd[2], pd[3], pd[4], pd[5],
                     (char *) CAIRN_QEMU_NBD, (char *) "--format=qcow2",
                     (char *) "--cache=writeback", (char *) "--aio=threads",
                     (char *) "--detect-zeroes=off", arg, NULL };
    if (!h || nbd_set_handle_name(h, "cairn-restore") < 0 ||
        nbd_connect_systemd_socket_activation(h, argv) < 0) {
        cairn_nbd_set_error(error, CAIRN_NBD_ERROR_CONNECT, "cannot open '%s' with qemu-nbd", tmp);
        return NULL;
    }
    int64_t got = nbd_get_size(h);
    if (got < 0 || (uint64_t) got < virtual_size || nbd_is_read_only(h) != 0) {
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_SIZE,
                    "cannot write '%s' through qemu-nbd: it exports %" G_GINT64_FORMAT
                    " bytes%s, %" G_GUINT64_FORMAT " needed", tmp, got,
                    nbd_is_read_only(h) == 1 ? " read-only" : "", virtual_size);
        return NULL;
    }
    return g_steal_pointer(&h);
}

/* flush qemu-nbd, disconnect, and stop it (nbd_close waits for it) */
static gboolean
close_qcow2(struct nbd_handle *h, const char *tmp, GError **error)
{
    if (nbd_flush(h, 0) < 0) {
        cairn_nbd_set_error(error, CAIRN_NBD_ERROR_IO, "cannot flush '%s'", tmp);
        nbd_close(h);
        return FALSE;
    }
    if (nbd_shutdown(h, 0) < 0) {
        cairn_nbd_set_error(error, CAIRN_NBD_ERROR_IO, "cannot close '%s'", tmp);
        nbd_close(h);
        return FALSE;
    }
    nbd_close(h);
    return TRUE;
}

static gboolean
fsync_path(const char *path, GError **error)
{
    cairn_autofd fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cairn_set_errno(error, errno, "cannot open", path);
        return FALSE;
    }
    if (fsync(fd) < 0) {
        cairn_set_errno(error, errno, "cannot fsync", path);
        return FALSE;
    }
    return TRUE;
}

/* everything after the temp file exists; the caller unlinks it on failure */
static gboolean
restore_into(Restore *r, CairnProgressFunc progress, gpointer progress_data, GError **error)
{
    const CairnIndex *index = r->index;
    if (r->format == CAIRN_DISK_FORMAT_RAW) {
        if (ftruncate(r->fd, (off_t) index->virtual_size) < 0) {
            cairn_set_errno(error, errno, "cannot set the size of", r->tmp);
            return FALSE;
        }
        if (!write_chunks(r, progress, progress_data, error))
            return FALSE;
        if (fsync(r->fd) < 0) {
            cairn_set_errno(error, errno, "cannot fsync", r->tmp);
            return FALSE;
        }
        return TRUE;
    }

    r->h = open_qcow2(r->tmp, index->virtual_size, error);
    if (!r->h)
        return FALSE;
    gboolean ok = write_chunks(r, progress, progress_data, error);
    struct nbd_handle *h = g_steal_pointer(&r->h);
    if (!ok) {
        nbd_close(h);
        return FALSE;
    }
    return close_qcow2(h, r->tmp, error) && fsync_path(r->tmp, error);
}

gboolean
cairn_restore_disk_to_file(CairnRepo *repo, const CairnIndex *index, const char *path,
                           CairnDiskFormat format, gboolean force, const gint *cancel,
                           CairnRestoreStats *ret_stats,
                           CairnProgressFunc progress, gpointer progress_data, GError **error)
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
    if (!cairn_restore_check_space(dir, cairn_restore_space_needed(index, format), what, error))
        return FALSE;

    g_autofree char *rnd = cairn_random_hex(4);
    g_autofree char *tmp = g_strdup_printf("%s/.%s.cairn-partial-%s", dir, base, rnd);
    cairn_autofd fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        cairn_set_errno(error, errno, "cannot create", tmp);
        return FALSE;
    }

    Restore r = {
        .repo = repo,
        .index = index,
        .path = path,
        .tmp = tmp,
        .format = format,
        .cancel = cancel,
        .fd = fd,
        .wake_fd = -1,
    };
    gboolean ok = restore_into(&r, progress, progress_data, error);
    if (!ok)
        g_prefix_error(error, "cannot restore to '%s': ", path);
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
    if (ret_stats)
        *ret_stats = r.stats;
    return TRUE;
}
