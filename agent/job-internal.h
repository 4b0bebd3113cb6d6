/* job-internal.h - state shared by job.c, job-read.c and job-offline.c. */
#pragma once

#include <stdarg.h>

#include "agent/job.h"
#include "repo/snapshot.h"

typedef struct {
    CairnRepo *repo;
    const CairnBackupOptions *opts;
    CairnBackupResult *result;
    virConnectPtr conn;
    virDomainPtr dom;
    CairnDomainInfo *info;   /* live definition: disks, sources */
    char *inactive_xml;      /* saved with the snapshot */
    GPtrArray *targets;      /* char*: disks to back up */
    GPtrArray *others;       /* char*: disks left out */
    GPtrArray *bitmapped;    /* char*: targets that keep a dirty bitmap (qcow2) */
    GPtrArray *unbitmapped;  /* char*: targets that cannot (raw): always read whole */
    json_t *skipped;         /* [{target, reason}] */
    CairnSnapshot *parent;   /* latest earlier snapshot of the domain, or NULL */
    char *older_checkpoint;  /* the newest checkpoint an earlier snapshot recorded */
    CairnManifest *manifest; /* being built */
    char *reason;            /* why full */
    /* live */
    char *job_dir, *scratch_dir, *socket;
    char *checkpoint;        /* created by this job (NULL: no disk keeps a bitmap) */
    char *base_checkpoint;   /* incremental from, or NULL */
    char *adopted;           /* a checkpoint over the offline parent's bitmaps, usable */
    gboolean job_running, frozen, frozen_ok, freeze_noted;
    /* offline */
    gboolean base_bitmap;    /* incremental through the parent's qcow2 bitmaps */
    char *new_bitmap;
    gpointer open_data;      /* for the open function of cairn_job_read_disks_with() */
} CairnJob;

void cairn_job_note(CairnJob *job, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
uint64_t cairn_job_disk_capacity(CairnJob *job, const char *target);
/* target keeps a dirty bitmap in a live backup (its image is qcow2) */
gboolean cairn_job_disk_bitmapped(CairnJob *job, const char *target);
void cairn_job_thaw(CairnJob *job);
void cairn_job_end(CairnJob *job);

/* One reader per disk, in parallel. open(job, i) gives disk i's source and
 * parent index (NULL: read everything). Fills the manifest's disks. */
typedef CairnNbdSource *(*CairnJobOpenFunc)(CairnJob *job, guint i, const CairnIndex **ret_parent,
                                            GError **error);
gboolean cairn_job_read_disks_with(CairnJob *job, CairnJobOpenFunc open, GError **error);
gboolean cairn_job_read_disks(CairnJob *job, GError **error);

gboolean cairn_job_backup_offline(CairnJob *job, GError **error);
/* bitmap name -> "ok" | "in-use" of a qcow2 image (qemu-img info -U) */
GHashTable *cairn_job_image_bitmaps(const char *path, GError **error);
void cairn_job_offline_cleanup(CairnJob *job);
