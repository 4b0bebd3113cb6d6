/* instant.h - instant recovery: run a domain from its snapshot at once.
 *
 * Every disk is served read-only from the repository by an nbdkit with our
 * plugin (restore/serve.h) on a unix socket in a private run directory, and
 * becomes the backing file of a local qcow2 overlay. The domain is defined
 * and started on the overlays (it runs within seconds whatever the disk
 * sizes), then libvirt pulls every disk into its overlay (block pull, as
 * `virsh blockpull --wait`) while the guest runs. Once the overlays no
 * longer reference the NBD exports, the servers stop: the domain runs from
 * plain local qcow2 files. */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "restore/domain.h"

typedef struct {
    CairnRestoreOptions base;  /* uri, name, dir, disks, keep_uuid, keep_mac, force */
    const char *repo_arg;      /* what the servers open: path, URL or remote name */
    const char *key_file;
    int64_t lock_wait;         /* seconds the servers wait for a repository lock */
    const char *run_dir;       /* NULL: /run/cairn/instant/NAME */
    const char *qemu_user;     /* who QEMU runs as (socket owner); NULL: libvirt-qemu */
    int signal_fd;             /* readable on SIGINT/SIGTERM (a signalfd), or -1 */
    /* the domain runs (after `seconds`) */
    void (*running)(const char *name, double seconds, gpointer data);
    gpointer data;             /* for running and base.progress (bytes pulled / total) */
} CairnInstantOptions;

typedef struct {
    char *name;
    char *xml_path;
    char *run_dir;
    GPtrArray *notes;          /* char* */
    json_t *disks;             /* [{target, file, socket, virtual_size, pulled}] */
    gboolean started, pulled;
    double running_seconds;    /* from the start until the domain ran */
    double pull_seconds;       /* from the start of the pulls until all were complete */
    double seconds;            /* everything */
} CairnInstantResult;

void cairn_instant_result_clear(CairnInstantResult *r);

/* Instant restore of snap as o->base.name. On failure after the domain
 * started, the domain is left running and the error says what still
 * depends on which server and how to finish by hand. */
gboolean cairn_restore_instant(CairnRepo *repo, CairnSnapshot *snap,
                               const CairnInstantOptions *o, CairnInstantResult *r,
                               GError **error);
