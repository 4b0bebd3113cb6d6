/* writeback.c - write behind with a bounded window (see writeback.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/util.h"
#include "common/writeback.h"

typedef struct {
    int fd;
    gboolean owned;
    uint64_t offset, len;
    char *path;
} Range;

struct CairnWriteback {
    GMutex lock;
    GQueue ranges; /* Range*, oldest first */
    uint64_t queued_bytes;
    uint64_t window;
};

static void
range_free(Range *r)
{
    g_free(r->path);
    g_free(r);
}

CairnWriteback *
cairn_writeback_new(uint64_t window_bytes)
{
    CairnWriteback *w = g_new0(CairnWriteback, 1);
    g_mutex_init(&w->lock);
    g_queue_init(&w->ranges);
    w->window = window_bytes;
    return w;
}

/* Wait until the range is on its way to the disk, drop its pages, close
 * an owned fd. Always closes; the first failure is reported. */
static gboolean
retire(Range *r, GError **error)
{
    gboolean ok = TRUE;
    if (r->len > 0 &&
        sync_file_range(r->fd, (off_t) r->offset, (off_t) r->len,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER) < 0 &&
        errno != ESPIPE && errno != EINVAL && errno != ENOSYS) {
        cairn_set_errno(error, errno, "cannot write", r->path);
        ok = FALSE;
    }
    /* only clean pages go; a failure here costs cache, not data */
    if (ok && r->len > 0)
        (void) posix_fadvise(r->fd, (off_t) r->offset, (off_t) r->len, POSIX_FADV_DONTNEED);
    if (r->owned && close(r->fd) < 0 && ok) {
        cairn_set_errno(error, errno, "cannot close", r->path);
        ok = FALSE;
    }
    range_free(r);
    return ok;
}

static gboolean
retire_all(GQueue *q, GError **error)
{
    gboolean ok = TRUE;
    Range *r;
    while ((r = g_queue_pop_head(q)))
        ok = retire(r, ok ? error : NULL) && ok;
    return ok;
}

gboolean
cairn_writeback_add(CairnWriteback *w, int fd, uint64_t offset, uint64_t len,
                    gboolean take_fd, const char *path, GError **error)
{
    Range *r = g_new0(Range, 1);
    r->fd = fd;
    r->owned = take_fd;
    r->offset = offset;
    r->len = len;
    r->path = g_strdup(path);
    /* start the writeback now; retire() waits for it later */
    if (len > 0 && sync_file_range(fd, (off_t) offset, (off_t) len, SYNC_FILE_RANGE_WRITE) < 0 &&
        errno != ESPIPE && errno != EINVAL && errno != ENOSYS) {
        cairn_set_errno(error, errno, "cannot write", path);
        if (take_fd)
            close(fd);
        range_free(r);
        return FALSE;
    }

    GQueue old = G_QUEUE_INIT;
    g_mutex_lock(&w->lock);
    g_queue_push_tail(&w->ranges, r);
    w->queued_bytes += len;
    while ((w->queued_bytes > w->window && w->ranges.length > 1) ||
           w->ranges.length > CAIRN_WRITEBACK_MAX_RANGES) {
        Range *o = g_queue_pop_head(&w->ranges);
        w->queued_bytes -= o->len;
        g_queue_push_tail(&old, o);
    }
    g_mutex_unlock(&w->lock);
    return retire_all(&old, error);
}

gboolean
cairn_writeback_drain(CairnWriteback *w, GError **error)
{
    g_mutex_lock(&w->lock);
    GQueue all = w->ranges;
    g_queue_init(&w->ranges);
    w->queued_bytes = 0;
    g_mutex_unlock(&w->lock);
    return retire_all(&all, error);
}

void
cairn_writeback_free(CairnWriteback *w)
{
    if (!w)
        return;
    Range *r;
    while ((r = g_queue_pop_head(&w->ranges))) {
        if (r->owned)
            close(r->fd);
        range_free(r);
    }
    g_mutex_clear(&w->lock);
    g_free(w);
}
