/* gc.h - mark and sweep: delete objects no published snapshot references. */
#pragma once

#include "repo/repo.h"

typedef struct {
    guint snapshots;
    guint64 objects_total;
    guint64 objects_live;
    guint64 objects_deleted;
    guint64 bytes_deleted;
    guint64 objects_young;   /* unreferenced but within the grace period: kept */
    guint temps_removed;
    guint quarantine_cleared; /* entries of damaged objects stored whole again since */
} CairnGcStats;

/* Takes the exclusive lock (waiting up to lock_wait seconds for running
 * backups), marks every object reachable from a published snapshot and
 * deletes the others that are older than grace seconds. Refuses to run when
 * any snapshot cannot be read (its objects would look unreferenced). */
gboolean cairn_gc(CairnRepo *repo, int64_t grace, gboolean dry_run, int64_t lock_wait,
                  CairnGcStats *ret_stats, GError **error);
