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
    CAIRN_RESTORE_ERROR_CANCELLED, /* stopped because *cancel was set */
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
    uint64_t stale_partials_removed; /* partial files a killed restore left */
} CairnRestoreStats;

/* Bytes the restored file of 'index' takes at most on disk: its data chunks
 * (holes take none), plus qcow2 metadata. */
uint64_t cairn_restore_space_needed(const CairnIndex *index, CairnDiskFormat format);
/* Fail (CAIRN_RESTORE_ERROR_NOSPACE, naming both sizes) when the file system
 * of 'dir' has less than 'need' bytes free; 'what' names what is restored. */
gboolean cairn_restore_check_space(const char *dir, uint64_t need, const char *what,
                                   GError **error);
/* 'path' may be written: absent, or a regular file and force. */
gboolean cairn_restore_check_target(const char *path, gboolean force, GError **error);

/* Write a disk from an index: sparse (holes are never written), every chunk
 * re-verified, into a temp file beside 'path' that is renamed over it only
 * when complete and flushed. Refuses an existing 'path' unless force.
 * Checks free space first. Nothing is left behind on failure. 'cancel'
 * (NULL: none), read atomically, stops the restore with
 * CAIRN_RESTORE_ERROR_CANCELLED once non-zero. */
gboolean cairn_restore_disk_to_file(CairnRepo *repo, const CairnIndex *index, const char *path,
                                    CairnDiskFormat format, gboolean force, const gint *cancel,
                                    CairnRestoreStats *ret_stats, CairnProgressFunc progress,
                                    gpointer progress_data, GError **error);

/* A disk written and durable under its temp name, not yet renamed: a
 * domain's disks replace the old ones together, or none does. */
typedef struct {
    char *tmp;
    char *path;
    int fd;   /* open: its lock keeps another restore from taking it as stale */
} CairnRestorePending;

/* The same as cairn_restore_disk_to_file(), leaving the complete disk under
 * its temp name in *ret_pending. */
gboolean cairn_restore_disk_to_pending(CairnRepo *repo, const CairnIndex *index,
                                       const char *path, CairnDiskFormat format, gboolean force,
                                       const gint *cancel, CairnRestoreStats *ret_stats,
                                       CairnRestorePending *ret_pending, GError **error);
/* Rename it into place (and sync its directory) / remove it; both free it. */
gboolean cairn_restore_pending_commit(CairnRestorePending *p, GError **error);
void cairn_restore_pending_abort(CairnRestorePending *p);
