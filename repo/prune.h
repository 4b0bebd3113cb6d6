/* prune.h - retention: which snapshots to keep (restic/PBS semantics).
 *
 * Snapshots are grouped by name and ordered newest first. keep-last N keeps
 * the N newest. keep-hourly/daily/weekly/monthly/yearly N keeps, for each of
 * the N most recent periods (local time, ISO weeks) that have a snapshot,
 * the newest snapshot in that period. A snapshot kept by any rule stays. */
#pragma once

#include "repo/repo.h"

typedef struct {
    int last, hourly, daily, weekly, monthly, yearly;
} CairnKeepPolicy;

gboolean cairn_keep_policy_is_empty(const CairnKeepPolicy *p);
/* An empty policy (it would remove every snapshot) is refused, saying so. */
gboolean cairn_keep_policy_check(const CairnKeepPolicy *p, GError **error);

/* times[n] (any order; of equal times the later entry counts as newer, so
 * pass them oldest first). Returns n reasons: NULL = remove, else e.g.
 * "last, daily" (free with g_strfreev-like loop: g_free each). */
char **cairn_prune_select(const int64_t *times, size_t n, const CairnKeepPolicy *policy);

typedef struct {
    guint kept;
    guint removed;
} CairnPruneStats;

/* Apply a policy to every name group (or only 'name'). plan (optional) gets
 * one JSON object per snapshot {id, name, time, keep, reasons}. Snapshots
 * whose manifest cannot be read are left alone and described (char*) in
 * ret_broken (optional). */
gboolean cairn_prune(CairnRepo *repo, const CairnKeepPolicy *policy, const char *name,
                     gboolean dry_run, int64_t lock_wait, GPtrArray *ret_plan,
                     GPtrArray *ret_broken,
                     CairnPruneStats *ret_stats, GError **error);
