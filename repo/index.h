/* index.h - a disk index: one entry per chunk of the virtual disk.
 *
 * Every snapshot's index is complete (DESIGN.md invariant 3): an all-zero
 * entry is a hole (the chunk reads as zeros), any other entry names the
 * chunk object. The last chunk may be short: its length is
 * virtual_size - (count - 1) * chunk_size.
 *
 *   "CRNI" | version u32 LE | virtual size u64 | chunk size u32 | flags u32 |
 *   chunk count u64 | count x 32-byte ids
 */
#pragma once

#include "repo/repo.h"

#define CAIRN_INDEX_VERSION 1
#define CAIRN_INDEX_HEADER_LEN 32

typedef struct {
    uint64_t virtual_size;
    uint32_t chunk_size;
    uint64_t count;
    CairnId *ids; /* count entries; zero = hole */
} CairnIndex;

CairnIndex *cairn_index_new(uint64_t virtual_size, uint32_t chunk_size);
void cairn_index_free(CairnIndex *index);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnIndex, cairn_index_free)

/* length of chunk i (the last one may be short) */
uint32_t cairn_index_chunk_len(const CairnIndex *index, uint64_t i);
/* number of non-hole entries */
uint64_t cairn_index_data_chunks(const CairnIndex *index);

GBytes *cairn_index_encode(const CairnIndex *index);
CairnIndex *cairn_index_decode(const void *data, size_t len, GError **error);

/* load and store through the repository */
CairnIndex *cairn_index_load(CairnRepo *repo, const CairnId *id, GError **error);
gboolean cairn_index_store(CairnRepo *repo, const CairnIndex *index, CairnId *ret_id,
                           uint64_t *ret_new_bytes, GError **error);
