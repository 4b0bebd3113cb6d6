/* sync.h - git-like push and pull (DESIGN.md invariant 6).
 *
 * Copies the closure of each snapshot (manifest, domain and checkpoint XML
 * blobs, disk indexes, chunks) minus the objects the target already has,
 * verifying every object before it is written, then publishes the
 * snapshot's ref on the target last. What the target has is learned from one
 * listing, not a request per object. Objects are made durable on the target
 * every few hundred (not only at the end): an interrupted sync leaves only
 * unreferenced objects, and the next run skips whatever arrived whole.
 * cairn_cancelled() (SIGINT/SIGTERM) stops it after the objects in flight;
 * after many transfers in a row failed (an endpoint down or hung) it gives
 * up as a whole instead of trying every object. */
#pragma once

#include "repo/snapshot.h"

typedef struct {
    guint parallel;     /* objects in flight (default 8) */
    uint64_t bwlimit;   /* bytes per second, 0 = unlimited */
    gboolean dry_run;
    /* snapshots already on the target are checked too: objects they need
     * that the target lacks (lost, or set aside as damaged by verify there)
     * are sent again (push: the source's indexes are local) */
    gboolean repair_present;
    /* where the disk indexes of snapshots already on the target are read
     * from (NULL: the source): the local side (pull: the target) */
    CairnRepo *index_repo;
    void (*progress)(uint64_t done_bytes, uint64_t total_bytes, gpointer data);
    gpointer progress_data;
} CairnSyncOptions;

typedef struct {
    guint snapshots_sent;
    guint snapshots_present;  /* already on the target */
    guint snapshots_repaired; /* of them: objects they lacked there were sent */
    guint64 objects_sent;
    guint64 objects_present;  /* skipped: the target has them */
    guint64 bytes_sent;       /* stored bytes written to the target */
    guint64 objects_rejected; /* failed verification: named in problems */
    GPtrArray *problems;      /* char* */
    double seconds;
} CairnSyncStats;

void cairn_sync_stats_clear(CairnSyncStats *st);

/* Make 'target' a repository compatible with 'src' (same chunk size and
 * encryption identity): an empty target receives src's config (unless
 * check_only: a dry run changes nothing; *ret_empty says it is empty); a
 * different one is refused with an explanation. */
gboolean cairn_sync_prepare_target(CairnRepo *src, CairnBackend *target, gboolean check_only,
                                   gboolean *ret_empty, GError **error);

/* Copy the given snapshots (CairnSnapshot* of src) to target. Returns FALSE
 * when anything failed (including rejected objects, after copying the rest). */
gboolean cairn_sync(CairnRepo *src, CairnBackend *target, GPtrArray *snapshots,
                    const CairnSyncOptions *opts, CairnSyncStats *ret_stats, GError **error);
