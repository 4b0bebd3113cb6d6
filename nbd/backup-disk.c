/* backup-disk.c - read one disk over NBD into the repository.
 *
 * The calling thread runs the whole pipeline and is the only one that
 * touches the libnbd handle:
 *
 *   extents (block status, <= 1 GiB windows)
 *     -> classify each chunk: hole | reused from the parent | read
 *     -> nbd_aio_pread into a free buffer, in <= 512 KiB parts, several
 *        in flight on one connection (more connections were not faster)
 *     -> completion callback hands the buffer to a GThreadPool worker
 *     -> worker: zero check, hash, compress+store, index->ids[i] = id
 *     -> the buffer comes back through an async queue + eventfd
 *
 * The calling thread waits in poll() on the NBD socket and the eventfd, so
 * it wakes for either a reply or a returned buffer; it never sleeps.
 * Buffers are allocated once and reused: memory is bounded by the buffer
 * budget whatever the disk size. Workers write distinct index slots and
 * report their results in their buffer, which only the calling thread reads
 * once the buffer is back: no locks. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/util.h"
#include "nbd/nbd.h"

#define WINDOW_MAX (1u << 30)           /* libnbd 1.14: 32-bit block status */
#define BUFFER_BUDGET (32u << 20)       /* chunk buffers, all together */
#define MEMORY_BUDGET (40u << 20)       /* buffers + what workers hold (see nbd.h) */
/* qemu's NBD server allocates a fresh buffer per request: from 1 MiB on
 * that is a new mmap and page faults every time, and 1 MiB reads measured
 * 5x slower than 512 KiB ones here; so chunks are read in parts */
#define READ_REQUEST_MAX (512u << 10)
#define READS_IN_FLIGHT_MAX 16          /* requests; qemu serves 16 at once */
#define PROGRESS_INTERVAL_US (100 * 1000)

enum {
    CHUNK_DATA = 1 << 0,  /* some part is not known to read as zeros */
    CHUNK_DIRTY = 1 << 1, /* changed since the parent (or no parent) */
};

typedef struct Backup Backup;

typedef struct {
    Backup *b;
    uint8_t *data;
    uint64_t chunk;
    uint32_t len;
    guint pending;    /* NBD reads into it in flight */
    int read_errno;   /* the first failed part's errno */
    /* the worker's results, read by the calling thread after the return */
    gboolean zero;
    uint64_t new_bytes;
    GError *error;
} Buffer;

struct Backup {
    CairnRepo *repo;
    struct nbd_handle *h;
    const char *name;
    CairnIndex *index;
    const CairnIndex *parent; /* non-NULL: incremental */
    GHashTable *damaged;      /* ids of the parent's not to keep without reading */
    const char *dirty_context;
    gboolean use_allocation;
    uint32_t chunk_size;

    /* the classified window of chunks [win_first, win_first + win_count) */
    uint64_t win_first, win_count;
    uint8_t *win_flags;
    uint64_t next; /* next chunk to classify */

    Buffer *bufs;
    guint nbufs;
    GPtrArray *free_bufs; /* calling thread only */
    guint in_flight;      /* NBD read requests */
    GAsyncQueue *returned;
    int wake_fd;
    GThreadPool *pool;
    gint failed; /* atomic: workers skip their work once set */
    GError *error;

    CairnDiskStats stats;
    uint64_t done_bytes;
};

/* ---- classification ---- */

typedef struct {
    Backup *b;
    uint64_t start, end; /* window bytes */
    uint64_t alloc_end, dirty_end; /* how far each context reported */
} Extents;

static void
mark(Extents *x, uint64_t from, uint64_t to, uint8_t flag)
{
    Backup *b = x->b;
    if (from < x->start)
        from = x->start;
    if (to > x->end)
        to = x->end;
    if (from >= to)
        return;
    uint64_t first = (from - x->start) / b->chunk_size;
    uint64_t last = (to - 1 - x->start) / b->chunk_size;
    for (uint64_t i = first; i <= last; i++)
        b->win_flags[i] |= flag;
}

static int
extent_cb(void *user_data, const char *metacontext, uint64_t offset, uint32_t *entries,
          size_t nr_entries, int *error)
{
    Extents *x = user_data;
    gboolean alloc = strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0;
    gboolean dirty = x->b->dirty_context && strcmp(metacontext, x->b->dirty_context) == 0;
    if (!alloc && !dirty)
        return 0;
    uint64_t pos = offset;
    for (size_t i = 0; i + 1 < nr_entries && pos < x->end; i += 2) {
        uint64_t len = entries[i];
        uint32_t flags = entries[i + 1];
        /* ZERO is what matters: HOLE alone does not promise zeros */
        if (alloc && !(flags & LIBNBD_STATE_ZERO))
            mark(x, pos, pos + len, CHUNK_DATA);
        if (dirty && (flags & CAIRN_NBD_STATE_DIRTY))
            mark(x, pos, pos + len, CHUNK_DIRTY);
        pos += len;
    }
    pos = MIN(pos, x->end);
    if (alloc)
        x->alloc_end = MAX(x->alloc_end, pos);
    else
        x->dirty_end = MAX(x->dirty_end, pos);
    return 0;
}

/* Classify the window starting at b->next with as many block status calls
 * as the server needs (it may answer for less than asked). */
static gboolean
classify_window(Backup *b, GError **error)
{
    const CairnIndex *index = b->index;
    uint64_t per_window = WINDOW_MAX / b->chunk_size;
    b->win_first = b->next;
    b->win_count = MIN(per_window, index->count - b->next);
    uint8_t initial = (b->use_allocation ? 0 : CHUNK_DATA) | (b->dirty_context ? 0 : CHUNK_DIRTY);
    memset(b->win_flags, initial, b->win_count);
    if (!b->use_allocation && !b->dirty_context)
        return TRUE;

    Extents x = { .b = b, .start = b->win_first * b->chunk_size };
    x.end = MIN(x.start + b->win_count * b->chunk_size, index->virtual_size);
    uint64_t off = x.start;
    while (off < x.end) {
        x.alloc_end = b->use_allocation ? off : x.end;
        x.dirty_end = b->dirty_context ? off : x.end;
        /* replies to reads in flight are handled meanwhile (read_done) */
        if (nbd_block_status(b->h, x.end - off, off,
                             (nbd_extent_callback) { .callback = extent_cb, .user_data = &x },
                             0) < 0) {
            cairn_nbd_set_error(error, CAIRN_NBD_ERROR_IO,
                                "cannot get the allocation map of '%s' at offset "
                                "%" G_GUINT64_FORMAT, b->name, off);
            return FALSE;
        }
        uint64_t reached = MIN(x.alloc_end, x.dirty_end);
        if (reached <= off) {
            g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_IO,
                        "cannot get the allocation map of '%s' at offset %" G_GUINT64_FORMAT
                        ": the server reported no extents", b->name, off);
            return FALSE;
        }
        off = reached;
    }
    return TRUE;
}

/* Find the next chunk that must be read, settling holes and reused chunks
 * on the way. 1: *ret_chunk is set; 0: no chunk left; -1: error. */
static int
next_chunk_to_read(Backup *b, uint64_t *ret_chunk, GError **error)
{
    CairnIndex *index = b->index;
    while (b->next < index->count) {
        if (b->next >= b->win_first + b->win_count && !classify_window(b, error))
            return -1;
        uint64_t i = b->next++;
        uint8_t flags = b->win_flags[i - b->win_first];
        uint32_t len = cairn_index_chunk_len(index, i);
        if (!(flags & CHUNK_DATA)) {
            memset(&index->ids[i], 0, sizeof index->ids[i]);
            b->stats.chunks_hole++;
            b->done_bytes += len;
        } else if (!(flags & CHUNK_DIRTY) &&
                   !(b->damaged && g_hash_table_contains(b->damaged, &b->parent->ids[i]))) {
            index->ids[i] = b->parent->ids[i];
            b->stats.chunks_reused++;
            b->done_bytes += len;
        } else {
            if (!(flags & CHUNK_DIRTY))
                b->stats.chunks_repaired++;
            *ret_chunk = i;
            return 1;
        }
    }
    return 0;
}

/* ---- workers ---- */

static void
wake(Backup *b)
{
    uint64_t one = 1;
    /* cannot fail short of a bug: the counter never nears its maximum */
    while (write(b->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static void
worker(gpointer data, gpointer user_data)
{
    Buffer *buf = data;
    Backup *b = buf->b;
    if (!g_atomic_int_get(&b->failed)) {
        if (cairn_is_all_zero(buf->data, buf->len)) {
            buf->zero = TRUE;
        } else {
            CairnId id;
            cairn_repo_hash(b->repo, buf->data, buf->len, &id);
            if (cairn_repo_put_with_id(b->repo, CAIRN_OBJECT_CHUNK, &id, buf->data, buf->len,
                                       &buf->new_bytes, &buf->error))
                b->index->ids[buf->chunk] = id;
            else
                g_atomic_int_set(&b->failed, 1);
        }
    }
    g_async_queue_push(b->returned, buf);
    wake(b);
}

/* ---- the calling thread ---- */

static void
fail(Backup *b, GError *err)
{
    g_atomic_int_set(&b->failed, 1);
    if (!b->error)
        b->error = err;
    else
        g_error_free(err);
}

static int
read_done(void *user_data, int *error)
{
    Buffer *buf = user_data;
    Backup *b = buf->b;
    buf->pending--;
    b->in_flight--;
    if (*error && !buf->read_errno)
        buf->read_errno = *error;
    if (buf->pending > 0)
        return 1; /* retire the command; the other parts are still coming */
    if (buf->read_errno || b->error) {
        if (buf->read_errno && !b->error)
            fail(b, g_error_new(CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_IO,
                                "cannot read '%s' at offset %" G_GUINT64_FORMAT ": %s", b->name,
                                buf->chunk * b->chunk_size, g_strerror(buf->read_errno)));
        g_ptr_array_add(b->free_bufs, buf);
        return 1;
    }
    b->stats.chunks_read++;
    b->stats.bytes_read += buf->len;
    g_thread_pool_push(b->pool, buf, NULL);
    return 1;
}

static void
collect_returned(Backup *b)
{
    Buffer *buf;
    while ((buf = g_async_queue_try_pop(b->returned))) {
        if (buf->error) {
            g_prefix_error(&buf->error, "cannot store chunk %" G_GUINT64_FORMAT " of '%s': ",
                           buf->chunk, b->name);
            fail(b, g_steal_pointer(&buf->error));
        } else if (!b->error) {
            if (buf->zero)
                b->stats.chunks_hole++;
            if (buf->new_bytes) {
                b->stats.chunks_new++;
                b->stats.bytes_new += buf->new_bytes;
            }
            b->done_bytes += buf->len;
        }
        g_ptr_array_add(b->free_bufs, buf);
    }
}

/* Start reads while there are free buffers and chunks to read. */
static void
dispatch(Backup *b)
{
    while (!b->error && b->free_bufs->len > 0 && b->in_flight < READS_IN_FLIGHT_MAX) {
        uint64_t i;
        GError *err = NULL;
        int r = next_chunk_to_read(b, &i, &err);
        if (r < 0)
            fail(b, err);
        if (r <= 0 || b->error) /* b->error: a read failed while block status ran */
            return;
        Buffer *buf = g_ptr_array_steal_index_fast(b->free_bufs, b->free_bufs->len - 1);
        buf->chunk = i;
        buf->len = cairn_index_chunk_len(b->index, i);
        buf->zero = FALSE;
        buf->new_bytes = 0;
        buf->read_errno = 0;
        uint64_t offset = i * b->chunk_size;
        for (uint32_t part = 0; part < buf->len; part += READ_REQUEST_MAX) {
            uint32_t n = MIN(READ_REQUEST_MAX, buf->len - part);
            if (nbd_aio_pread(b->h, buf->data + part, n, offset + part,
                              (nbd_completion_callback) { .callback = read_done, .user_data = buf },
                              0) < 0) {
                GError *e = NULL;
                cairn_nbd_set_error(&e, CAIRN_NBD_ERROR_IO,
                                    "cannot read '%s' at offset %" G_GUINT64_FORMAT, b->name,
                                    offset + part);
                fail(b, e);
                if (buf->pending == 0) /* else the last part's read_done frees it */
                    g_ptr_array_add(b->free_bufs, buf);
                return;
            }
            buf->pending++;
            b->in_flight++;
        }
    }
}

/* The connection is gone and libnbd did not fail the reads in flight (it
 * does, through read_done; this is only a safety net): take the buffers
 * back, libnbd will not write into them any more. */
static void
reclaim_reads(Backup *b)
{
    for (guint i = 0; i < b->nbufs; i++)
        if (b->bufs[i].pending > 0) {
            b->bufs[i].pending = 0;
            g_ptr_array_add(b->free_bufs, &b->bufs[i]);
        }
    b->in_flight = 0;
    if (!b->error) {
        GError *e = NULL;
        cairn_nbd_set_error(&e, CAIRN_NBD_ERROR_IO, "cannot read '%s': the connection is lost",
                            b->name);
        fail(b, e);
    }
}

/* Wait for an NBD reply or a returned buffer. */
static void
wait_for_event(Backup *b)
{
    struct pollfd fds[2] = { { .fd = b->wake_fd, .events = POLLIN } };
    nfds_t n = 1;
    int fd = nbd_aio_get_fd(b->h);
    unsigned dir = fd >= 0 ? nbd_aio_get_direction(b->h) : 0;
    if (fd >= 0 && (b->in_flight > 0 || (dir & LIBNBD_AIO_DIRECTION_WRITE))) {
        fds[1].fd = fd;
        fds[1].events = (short) (((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
                                 ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0));
        n = 2;
    }
    if (n == 1 && b->in_flight > 0) {
        reclaim_reads(b);
        return;
    }
    int r;
    do
        r = poll(fds, n, 500); /* wakes for cairn_cancelled() */
    while (r < 0 && errno == EINTR && !cairn_cancelled());
    if (r <= 0 && (r == 0 || errno == EINTR))
        return;
    if (r < 0) {
        GError *e = NULL;
        cairn_set_errno(&e, errno, "cannot wait for reads from", b->name);
        fail(b, e);
        return;
    }
    if (fds[0].revents & POLLIN) {
        uint64_t v;
        if (read(b->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN && errno != EINTR) {
            GError *e = NULL;
            cairn_set_errno(&e, errno, "cannot wait for the workers backing up", b->name);
            fail(b, e);
        }
    }
    if (n == 2 && fds[1].revents) {
        int rr = 0;
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR))
            rr = nbd_aio_notify_read(b->h);
        else if (fds[1].revents & POLLOUT)
            rr = nbd_aio_notify_write(b->h);
        if (rr < 0) {
            GError *e = NULL;
            cairn_nbd_set_error(&e, CAIRN_NBD_ERROR_IO, "cannot read '%s'", b->name);
            fail(b, e);
        }
    }
}

static void
report_progress(Backup *b, CairnProgressFunc progress, gpointer data, gint64 *last, gboolean force)
{
    if (!progress)
        return;
    gint64 now = g_get_monotonic_time();
    if (!force && now - *last < PROGRESS_INTERVAL_US)
        return;
    *last = now;
    progress(b->done_bytes, b->index->virtual_size, data);
}

void
cairn_pipeline_size(uint32_t chunk_size, guint *ret_buffers, guint *ret_workers)
{
    guint units = MAX(1u, MEMORY_BUDGET / chunk_size); /* chunk-sized pieces of memory */
    guint workers = (guint) MAX(1, g_get_num_processors());
    /* each worker: two units of its own, and two buffers to keep it busy */
    while (workers > 1 && 4 * workers + 2 > units)
        workers--;
    guint buffers = MIN(BUFFER_BUDGET / chunk_size, units > 2 * workers ? units - 2 * workers : 0);
    *ret_buffers = MAX(1u, buffers);
    *ret_workers = workers;
}

static void
backup_clear(Backup *b)
{
    if (b->pool)
        g_thread_pool_free(b->pool, FALSE, TRUE);
    if (b->returned) {
        Buffer *buf;
        while ((buf = g_async_queue_try_pop(b->returned)))
            g_clear_error(&buf->error);
        g_async_queue_unref(b->returned);
    }
    for (guint i = 0; b->bufs && i < b->nbufs; i++) {
        g_clear_error(&b->bufs[i].error);
        g_free(b->bufs[i].data);
    }
    g_free(b->bufs);
    if (b->free_bufs)
        g_ptr_array_free(b->free_bufs, TRUE);
    if (b->wake_fd >= 0)
        close(b->wake_fd);
    g_free(b->win_flags);
    g_clear_error(&b->error);
}

gboolean
cairn_nbd_backup_disk(CairnRepo *repo, CairnNbdSource *src, const CairnIndex *parent,
                      GHashTable *damaged, CairnIndex **ret_index, CairnDiskStats *ret_stats,
                      CairnProgressFunc progress, gpointer progress_data, GError **error)
{
    g_return_val_if_fail(repo && src && ret_index, FALSE);

    uint64_t size = cairn_nbd_source_size(src);
    uint32_t chunk_size = cairn_repo_chunk_size(repo);
    g_autoptr(CairnIndex) index = cairn_index_new(size, chunk_size);

    Backup b = {
        .repo = repo,
        .h = cairn_nbd_source_handle(src),
        .name = cairn_nbd_source_name(src),
        .index = index,
        .use_allocation = cairn_nbd_source_has_allocation(src),
        .chunk_size = chunk_size,
        .wake_fd = -1,
    };
    /* dirty extents only count against a parent of the same geometry */
    const char *dirty = cairn_nbd_source_dirty_context(src);
    if (dirty && parent && parent->virtual_size == size && parent->chunk_size == chunk_size) {
        b.parent = parent;
        b.dirty_context = dirty;
        b.damaged = damaged && g_hash_table_size(damaged) ? damaged : NULL;
    }
    b.stats.virtual_size = size;
    b.stats.chunks_total = index->count;
    b.win_flags = g_malloc(WINDOW_MAX / chunk_size);

    guint workers;
    cairn_pipeline_size(chunk_size, &b.nbufs, &workers);
    b.bufs = g_new0(Buffer, b.nbufs);
    b.free_bufs = g_ptr_array_sized_new(b.nbufs);
    for (guint i = 0; i < b.nbufs; i++) {
        b.bufs[i].b = &b;
        b.bufs[i].data = g_malloc(chunk_size);
        g_ptr_array_add(b.free_bufs, &b.bufs[i]);
    }
    b.returned = g_async_queue_new();
    b.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b.wake_fd < 0) {
        cairn_set_errno(error, errno, "cannot create an eventfd to back up", b.name);
        backup_clear(&b);
        return FALSE;
    }
    b.pool = g_thread_pool_new(worker, &b, (gint) workers, FALSE, error);
    if (!b.pool) {
        backup_clear(&b);
        return FALSE;
    }

    gint64 last_progress = g_get_monotonic_time();
    for (;;) {
        if (cairn_cancelled() && !b.error) {
            GError *e = NULL;
            cairn_set_cancelled(&e, b.name);
            fail(&b, e);
        }
        collect_returned(&b);
        dispatch(&b);
        report_progress(&b, progress, progress_data, &last_progress, FALSE);
        gboolean more = !b.error && b.next < index->count;
        if (!more && b.in_flight == 0 && b.free_bufs->len == b.nbufs)
            break; /* done, or failed and drained */
        wait_for_event(&b);
    }

    if (b.error) {
        g_propagate_error(error, g_steal_pointer(&b.error));
        backup_clear(&b);
        return FALSE;
    }
    report_progress(&b, progress, progress_data, &last_progress, TRUE);
    if (ret_stats)
        *ret_stats = b.stats;
    backup_clear(&b);
    *ret_index = g_steal_pointer(&index);
    return TRUE;
}
