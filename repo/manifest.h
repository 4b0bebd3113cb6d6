/* manifest.h - a snapshot manifest (JSON), see docs/repository-format.md. */
#pragma once

#include <jansson.h>

#include "repo/repo.h"

#define CAIRN_MANIFEST_VERSION 1

typedef struct {
    char *target;          /* "vda" */
    char *format;          /* source format: "qcow2", "raw" */
    char *source;          /* path the disk was read from (informational) */
    char *bitmap;          /* persistent dirty bitmap marking this point, may be NULL */
    uint64_t virtual_size;
    CairnId index;
    uint64_t bytes_read;   /* statistics of the backup that wrote it */
    uint64_t bytes_new;
    json_t *extra;         /* keys this version does not know, kept as is */
} CairnManifestDisk;

typedef struct {
    char *name;            /* domain name (or --name for images) */
    char *uuid;            /* domain UUID, may be NULL */
    char *host;
    int64_t time;          /* unix seconds */
    int32_t time_usec;     /* sub-second part: orders snapshots taken in one second */
    gboolean has_parent;
    CairnId parent;
    GPtrArray *disks;      /* CairnManifestDisk* */
    gboolean has_domain_xml;
    CairnId domain_xml;    /* blob object */
    GPtrArray *tags;       /* char* */
    char *checkpoint;      /* libvirt checkpoint name, may be NULL */
    gboolean has_checkpoint_xml;
    CairnId checkpoint_xml; /* blob: the checkpoint's XML, to --redefine it */
    char *consistency;     /* "crash" or "application" */
    char *kind;            /* "image" or "domain" */
    char *tool_version;
    json_t *extra;         /* keys this version does not know, kept as is */
} CairnManifest;

CairnManifest *cairn_manifest_new(void);
void cairn_manifest_free(CairnManifest *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnManifest, cairn_manifest_free)
CairnManifestDisk *cairn_manifest_add_disk(CairnManifest *m, const char *target);
const CairnManifestDisk *cairn_manifest_find_disk(const CairnManifest *m, const char *target);

/* canonical compact JSON (sorted keys) */
char *cairn_manifest_to_json(const CairnManifest *m, size_t *ret_len);
CairnManifest *cairn_manifest_from_json(const char *json, size_t len, GError **error);
/* JSON object for `show --json` / `snapshots --json` (caller owns) */
json_t *cairn_manifest_to_json_value(const CairnManifest *m);
