/* qcow2.h - write a restored disk as a qcow2 (version 3) image directly.
 *
 * The whole host layout follows from the disk index before any data is
 * written: header, refcount table and blocks, L1, the L2 tables of the
 * regions that hold data, then each data chunk of the index, in index
 * order, in consecutive clusters. Workers can therefore pwrite chunks at
 * their final place in parallel, as for a raw file, and the metadata is
 * written once at the end. Holes of the index are unallocated clusters;
 * nothing is preallocated. The result is what `qemu-img create` + writes
 * would give (64 KiB clusters, 16-bit refcounts, zlib compression type,
 * no extensions); `qemu-img check` finds it clean. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "repo/index.h"

typedef struct CairnQcow2 CairnQcow2;

/* The layout for index (not copied: it must outlive the CairnQcow2). */
CairnQcow2 *cairn_qcow2_new(const CairnIndex *index, GError **error);
void cairn_qcow2_free(CairnQcow2 *q);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnQcow2, cairn_qcow2_free)

/* Host offset of data chunk 'chunk' (not a hole). Call for the data chunks
 * in increasing order, each once. */
uint64_t cairn_qcow2_place(CairnQcow2 *q, uint64_t chunk);
/* Bytes of the finished file (data and metadata). */
uint64_t cairn_qcow2_file_size(const CairnQcow2 *q);
/* Write the metadata and set the file size; the data chunks may be
 * written before or after, at the offsets cairn_qcow2_place() gave. */
gboolean cairn_qcow2_write_metadata(const CairnQcow2 *q, int fd, const char *path,
                                    GError **error);
