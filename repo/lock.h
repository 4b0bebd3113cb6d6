/* lock.h - repository locks (DESIGN.md invariant 7).
 *
 * A lock is an object "locks/<random>" holding JSON {mode, host, pid, time,
 * purpose}. Writers (backup, prune) hold shared locks; gc holds the only
 * exclusive one. Acquiring writes the lock first and then lists the others,
 * so of two racing lockers at least one sees the other and backs off.
 * A holder refreshes its lock every 5 minutes from a helper thread; a lock
 * is stale when its process is gone (same host) or it was not refreshed
 * for 30 minutes. Stale locks are removed by whoever finds them. */
#pragma once

#include "repo/repo.h"

typedef enum {
    CAIRN_LOCK_SHARED,
    CAIRN_LOCK_EXCLUSIVE,
} CairnLockMode;

typedef struct CairnLock CairnLock;

/* wait_seconds: how long to keep retrying while a conflicting lock is held */
CairnLock *cairn_lock_acquire(CairnRepo *repo, CairnLockMode mode, const char *purpose,
                              int64_t wait_seconds, GError **error);

/* Told once per acquire when it starts waiting for a conflicting lock (which
 * it describes), so that a program can say why it seems to hang. Set once
 * at start (the CLI's main); NULL: silent. */
typedef void (*CairnLockWaitFunc)(const char *conflict, int64_t wait_seconds);
void cairn_lock_on_wait(CairnLockWaitFunc fn);
/* Remove the lock (NULL-safe). */
void cairn_lock_release(CairnLock *lock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnLock, cairn_lock_release)
