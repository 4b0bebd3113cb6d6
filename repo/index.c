/* index.c - disk indexes: encode, decode, load, store. */
#include "config.h"

#include <string.h>

#include "repo/index.h"

static const uint8_t magic[4] = { 'C', 'R', 'N', 'I' };

static void
put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}
static void
put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}
static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}
static uint64_t
get_le64(const uint8_t *p)
{
    return (uint64_t) get_le32(p) | (uint64_t) get_le32(p + 4) << 32;
}

static uint64_t
chunk_count(uint64_t virtual_size, uint32_t chunk_size)
{
    return virtual_size / chunk_size + (virtual_size % chunk_size != 0);
}

CairnIndex *
cairn_index_new(uint64_t virtual_size, uint32_t chunk_size)
{
    g_assert(chunk_size > 0);
    CairnIndex *index = g_new0(CairnIndex, 1);
    index->virtual_size = virtual_size;
    index->chunk_size = chunk_size;
    index->count = chunk_count(virtual_size, chunk_size);
    index->ids = g_new0(CairnId, index->count ? index->count : 1);
    return index;
}

void
cairn_index_free(CairnIndex *index)
{
    if (!index)
        return;
    g_free(index->ids);
    g_free(index);
}

uint32_t
cairn_index_chunk_len(const CairnIndex *index, uint64_t i)
{
    g_assert(i < index->count);
    uint64_t start = i * index->chunk_size;
    uint64_t left = index->virtual_size - start;
    return left < index->chunk_size ? (uint32_t) left : index->chunk_size;
}

uint64_t
cairn_index_data_chunks(const CairnIndex *index)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < index->count; i++)
        n += !cairn_id_is_zero(&index->ids[i]);
    return n;
}

GBytes *
cairn_index_encode(const CairnIndex *index)
{
    size_t len = CAIRN_INDEX_HEADER_LEN + index->count * CAIRN_ID_LEN;
    uint8_t *p = g_malloc(len);
    memcpy(p, magic, 4);
    put_le32(p + 4, CAIRN_INDEX_VERSION);
    put_le64(p + 8, index->virtual_size);
    put_le32(p + 16, index->chunk_size);
    put_le32(p + 20, 0);
    put_le64(p + 24, index->count);
    memcpy(p + CAIRN_INDEX_HEADER_LEN, index->ids, index->count * CAIRN_ID_LEN);
    return g_bytes_new_take(p, len);
}

static CairnIndex *
bad(GError **error, const char *why)
{
    g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT, "invalid disk index: %s", why);
    return NULL;
}

CairnIndex *
cairn_index_decode(const void *data, size_t len, GError **error)
{
    const uint8_t *p = data;
    if (len < CAIRN_INDEX_HEADER_LEN)
        return bad(error, "truncated header");
    if (memcmp(p, magic, 4) != 0)
        return bad(error, "bad magic");
    uint32_t version = get_le32(p + 4);
    if (version > CAIRN_INDEX_VERSION) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEWER_FORMAT,
                    "disk index has version %u, this cairn reads up to %u: upgrade cairn",
                    version, CAIRN_INDEX_VERSION);
        return NULL;
    }
    uint64_t vsize = get_le64(p + 8);
    uint32_t cs = get_le32(p + 16);
    uint64_t count = get_le64(p + 24);
    if (version == 0 || cs < CAIRN_CHUNK_SIZE_MIN || cs > CAIRN_CHUNK_SIZE_MAX ||
        (cs & (cs - 1)) != 0)
        return bad(error, "bad version or chunk size");
    if (count != chunk_count(vsize, cs))
        return bad(error, "chunk count does not match the virtual size");
    if (count > (len - CAIRN_INDEX_HEADER_LEN) / CAIRN_ID_LEN ||
        len != CAIRN_INDEX_HEADER_LEN + count * CAIRN_ID_LEN)
        return bad(error, "length does not match the chunk count");
    CairnIndex *index = cairn_index_new(vsize, cs);
    memcpy(index->ids, p + CAIRN_INDEX_HEADER_LEN, count * CAIRN_ID_LEN);
    return index;
}

CairnIndex *
cairn_index_load(CairnRepo *repo, const CairnId *id, GError **error)
{
    g_autoptr(GBytes) b = cairn_repo_get(repo, id, NULL, error);
    if (!b)
        return NULL;
    gsize len;
    const void *data = g_bytes_get_data(b, &len);
    g_autoptr(GError) gerr = NULL;
    CairnIndex *index = cairn_index_decode(data, len, &gerr);
    if (!index) {
        char hex[CAIRN_ID_HEX_LEN + 1];
        g_set_error(error, gerr->domain, gerr->code, "object %s: %s", cairn_id_to_hex(id, hex),
                    gerr->message);
    }
    return index;
}

gboolean
cairn_index_store(CairnRepo *repo, const CairnIndex *index, CairnId *ret_id,
                  uint64_t *ret_new_bytes, GError **error)
{
    g_autoptr(GBytes) b = cairn_index_encode(index);
    gsize len;
    const void *data = g_bytes_get_data(b, &len);
    return cairn_repo_put(repo, CAIRN_OBJECT_INDEX, data, len, ret_id, ret_new_bytes, error);
}
