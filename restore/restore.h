/* restore.h - rebuild disks from snapshot indexes. */
#pragma once

#include "nbd/nbd.h"

#define CAIRN_RESTORE_ERROR (cairn_restore_error_quark())
GQuark cairn_restore_error_quark(void);

typedef enum {
    CAIRN_RESTORE_ERROR_EXISTS,  /* target exists and --force not given */
    CAIRN_RESTORE_ERROR_NOSPACE, /* not enough free space (checked first) */
    CAIRN_RESTORE_ERROR_FAILED,  /* writing failed */
    CAIRN_RESTORE_ERROR_INVALID, /* bad format name etc. */
} CairnRestoreError;

typedef enum {
    CAIRN_DISK_FORMAT_RAW,
    CAIRN_DISK_FORMAT_QCOW2,
} CairnDiskFormat;

gboolean cairn_disk_format_parse(const char *text, CairnDiskFormat *ret_format, GError **error);

typedef struct {
    uint64_t chunks_written;
    uint64_t bytes_written;
    uint64_t chunks_hole;
} CairnRestoreStats;

/* Write a disk from an index: sparse (holes are never written), every chunk
 * re-verified, into a temp file beside 'path' that is renamed over it only
 * when complete and flushed. Refuses an existing 'path' unless force.
 * Checks free space first. Nothing is left behind on failure. */
gboolean cairn_restore_disk_to_file(CairnRepo *repo, const CairnIndex *index, const char *path,
                                    CairnDiskFormat format, gboolean force,
                                    CairnRestoreStats *ret_stats, CairnProgressFunc progress,
                                    gpointer progress_data, GError **error);
