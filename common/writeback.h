/* writeback.h - write behind: start writeback of what was just written,
 * and once a window of newer writes follows it, wait for it to reach the
 * disk and drop its pages from the page cache.
 *
 * A backup or restore writes far more than a host wants cached: left to
 * the page cache, it evicts the guests' hot data, then leaves one long
 * flush for the final fsync. Streaming it out keeps the dirty and cached
 * bytes bounded by the window, the final flush short, and the writer
 * reusing the same few pages instead of new ones (which is cheap on bare
 * metal and expensive in a VM that hands its free pages back to the host).
 *
 * Durability is not promised here: sync_file_range() flushes no metadata
 * and no disk cache. Callers still fsync/syncfs before they publish.
 * Thread-safe: several writers may share one CairnWriteback. */
#pragma once

#include <glib.h>
#include <stdint.h>

#define CAIRN_WRITEBACK_WINDOW (32u << 20)
/* and at most this many ranges (each may hold an fd: small objects must
 * not pile up thousands of open files) */
#define CAIRN_WRITEBACK_MAX_RANGES 64

typedef struct CairnWriteback CairnWriteback;

CairnWriteback *cairn_writeback_new(uint64_t window_bytes);
/* Discards what is queued (closes owned fds without waiting). NULL-safe. */
void cairn_writeback_free(CairnWriteback *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnWriteback, cairn_writeback_free)

/* [offset, offset + len) of fd was just written. With take_fd the
 * writeback owns fd from now on (also on failure) and closes it, checking
 * the result, once the range is written back. path names fd in errors. */
gboolean cairn_writeback_add(CairnWriteback *w, int fd, uint64_t offset, uint64_t len,
                             gboolean take_fd, const char *path, GError **error);
/* Wait for every queued range, drop its pages, close owned fds. */
gboolean cairn_writeback_drain(CairnWriteback *w, GError **error);
