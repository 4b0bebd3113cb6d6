/* job.h - the backup job of one libvirt domain (DESIGN.md "flow of one backup"). */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "agent/virt.h"
#include "nbd/nbd.h"
#include "repo/repo.h"

typedef enum {
    CAIRN_QUIESCE_AUTO,   /* freeze when a guest agent answers */
    CAIRN_QUIESCE_ALWAYS, /* fail without a guest agent */
    CAIRN_QUIESCE_NEVER,
} CairnQuiesce;

gboolean cairn_quiesce_parse(const char *text, CairnQuiesce *ret, GError **error);

typedef struct {
    const char *uri;             /* libvirt URI, NULL = default */
    const char *domain;
    char **disks;                /* only these targets (NULL = all) */
    char **exclude_disks;
    gboolean full;               /* force a full backup */
    CairnQuiesce quiesce;
    gboolean take_over_checkpoints;
    char **tags;
    int64_t lock_wait;           /* seconds to wait for a running gc */
    CairnProgressFunc progress;  /* aggregated over all disks */
    gpointer progress_data;
} CairnBackupOptions;

typedef struct {
    CairnId id;
    char *mode;          /* "full" or "incremental" */
    char *reason;        /* why full, NULL for incremental */
    gboolean offline;    /* the domain was shut off: read through qemu-nbd */
    gboolean app_consistent;
    /* "application" (frozen by the guest agent), "shutdown" (shut off after
     * the guest shut itself down), else "crash" */
    const char *consistency;
    uint64_t virtual_size, bytes_read, bytes_new;
    double seconds;
    double libvirt_seconds; /* of seconds: waiting for libvirt (job start/end, checkpoints) */
    GPtrArray *notes;    /* char*: one line each (self-healing, skipped disks) */
    json_t *disks;       /* per-disk summary array */
} CairnBackupResult;

void cairn_backup_result_clear(CairnBackupResult *r);

/* Back up a domain (running: libvirt pull-mode job; shut off: qemu-nbd). */
gboolean cairn_backup_domain(CairnRepo *repo, const CairnBackupOptions *opts,
                             CairnBackupResult *ret, GError **error);
