/* nbd.h - reading and writing disks over NBD with libnbd.
 *
 * A source is one NBD export: an image file exported read-only by a
 * qemu-nbd that libnbd starts (systemd socket activation) and stops, or an
 * existing export on a unix socket (libvirt's pull-mode backup). */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <libnbd.h>

#include "repo/repo.h"
#include "repo/index.h"

#define CAIRN_NBD_ERROR (cairn_nbd_error_quark())
GQuark cairn_nbd_error_quark(void);

typedef enum {
    CAIRN_NBD_ERROR_NOT_A_DISK, /* qemu-img cannot read the file as a disk image */
    CAIRN_NBD_ERROR_CONNECT,    /* cannot start/connect to the NBD server */
    CAIRN_NBD_ERROR_IO,         /* an NBD command failed */
    CAIRN_NBD_ERROR_SIZE,       /* size mismatch / unsupported size */
} CairnNbdError;

typedef struct CairnNbdSource CairnNbdSource;

/* Image file facts from `qemu-img info --output=json`. */
typedef struct {
    char *format;          /* "qcow2", "raw", ... */
    uint64_t virtual_size;
} CairnImageInfo;
gboolean cairn_image_info(const char *path, CairnImageInfo *ret_info, GError **error);
void cairn_image_info_clear(CairnImageInfo *info);

/* Export an image file read-only through qemu-nbd and connect to it.
 * format NULL: probe with qemu-img info (a file that is no disk image fails). */
CairnNbdSource *cairn_nbd_source_open_image(const char *path, const char *format,
                                            GError **error);
/* Same, also exporting the qcow2 persistent bitmap 'bitmap' (NULL: none) as the
 * dirty context "qemu:dirty-bitmap:BITMAP". */
CairnNbdSource *cairn_nbd_source_open_image_bitmap(const char *path, const char *format,
                                                   const char *bitmap, GError **error);
/* Connect to an existing export; dirty_context (e.g. "qemu:dirty-bitmap:backup-vda")
 * may be NULL. */
CairnNbdSource *cairn_nbd_source_connect(const char *socket_path, const char *export_name,
                                         const char *dirty_context, GError **error);
uint64_t cairn_nbd_source_size(CairnNbdSource *src);
const char *cairn_nbd_source_format(CairnNbdSource *src); /* NULL for sockets */
void cairn_nbd_source_free(CairnNbdSource *src);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnNbdSource, cairn_nbd_source_free)

typedef struct {
    uint64_t virtual_size;
    uint64_t chunks_total;
    uint64_t chunks_hole;    /* unallocated/zero: nothing read or stored */
    uint64_t chunks_reused;  /* clean per dirty bitmap: parent's entry kept */
    uint64_t chunks_repaired; /* clean, but the parent's entry was damaged: read again */
    uint64_t chunks_read;    /* read from the export */
    uint64_t chunks_new;     /* written to the repository */
    uint64_t bytes_read;
    uint64_t bytes_new;      /* stored bytes of new objects */
} CairnDiskStats;

typedef void (*CairnProgressFunc)(uint64_t done, uint64_t total, gpointer user_data);

/* Back up one disk into the repository and return its complete index.
 * Chunks that base:allocation reports as hole/zero are never read; with a
 * dirty context and a parent index of the same geometry, chunks outside the
 * dirty extents keep the parent's entry, unless that entry is in damaged
 * (CairnId set, may be NULL: objects verify set aside, see
 * repo/quarantine.h): such a chunk is read and stored again. Reads are
 * pipelined (several in flight) and hashing/compression run on worker
 * threads. */
gboolean cairn_nbd_backup_disk(CairnRepo *repo, CairnNbdSource *src, const CairnIndex *parent,
                               GHashTable *damaged, CairnIndex **ret_index,
                               CairnDiskStats *ret_stats,
                               CairnProgressFunc progress, gpointer progress_data,
                               GError **error);

/* ---- for nbd/ and restore/ only (not part of the CLI's interface) ---- */

/* libnbd handle cleanup (common/cleanup.h does not include libnbd.h) */
typedef struct nbd_handle CairnNbdHandle;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnNbdHandle, nbd_close)

/* dirty-bitmap context flag (libnbd 1.14 has no LIBNBD_STATE_DIRTY) */
#define CAIRN_NBD_STATE_DIRTY 1u

struct nbd_handle *cairn_nbd_source_handle(CairnNbdSource *src);
/* what messages call the source: the image path or an nbd+unix:// URI */
const char *cairn_nbd_source_name(CairnNbdSource *src);
/* the negotiated dirty-bitmap context, or NULL */
const char *cairn_nbd_source_dirty_context(CairnNbdSource *src);
/* the server reports base:allocation */
gboolean cairn_nbd_source_has_allocation(CairnNbdSource *src);

/* How many chunk buffers and worker threads a pipeline over chunks of
 * chunk_size may use. Memory is budgeted in chunk-sized units: every buffer
 * is one, and every worker holds about two more while it works (compressed
 * and stored copies when writing, stored and decoded ones when reading).
 * Up to 32 MiB of buffers, 2 * workers + 2 of them when the budget allows,
 * fewer workers (never fewer than one) rather than more memory: 16 MiB
 * chunks get one buffer and one worker, and peak RSS stays under 64 MiB. */
void cairn_pipeline_size(uint32_t chunk_size, guint *ret_buffers, guint *ret_workers);

/* Set *error to "<formatted message>: <libnbd's last error in this thread>". */
void cairn_nbd_set_error(GError **error, CairnNbdError code, const char *format, ...)
    G_GNUC_PRINTF(3, 4);
/* a path qemu tools cannot mistake for a protocol ("./x:y", not "x:y") */
char *cairn_image_path_arg(const char *path);
/* a qemu tool's stderr on one line, without "TOOL: " prefixes */
char *cairn_tool_message(const char *tool, const char *text);

/* The command prefix that runs a helper (qemu-nbd) so that it dies with this
 * process: setpriv sets a parent-death signal, then a shell checks that the
 * parent is still this process (closing the window in which it could have
 * died before the signal was armed) and execs the helper in place (the pid
 * stays, as socket activation needs). Returns a NULL-terminated prefix of
 * CAIRN_PDEATH_ARGC strings to put before the helper's own argv; free with
 * g_strfreev. */
#define CAIRN_PDEATH_ARGC 6
char **cairn_pdeath_prefix(void);
