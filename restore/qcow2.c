/* qcow2.c - a qcow2 version 3 image laid out from a disk index (qcow2.h).
 *
 * Format: QEMU's docs/interop/qcow2.txt. All fields big-endian.
 *
 *   cluster 0                 header (112 bytes, no extensions)
 *   refcount table            rt_clusters clusters
 *   refcount blocks           rb_count clusters (16-bit refcounts)
 *   L1 table                  l1_clusters clusters
 *   L2 tables                 one per 512 MiB region (64 KiB clusters) with data
 *   data                      every data chunk of the index, in order
 *
 * Every cluster of the file is used exactly once, so every refcount is 1
 * and every L1/L2 entry carries the COPIED flag, as qemu writes them. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "restore/qcow2.h"
#include "restore/restore.h"

#define CLUSTER_BITS_MAX 16 /* 64 KiB, qemu-img's default */
#define CLUSTER_BITS_MIN 9
#define REFCOUNT_ORDER 4    /* 16-bit refcounts */
#define HEADER_LENGTH 112   /* the v3 header with its compression type byte, padded */
#define OFLAG_COPIED (UINT64_C(1) << 63)

struct CairnQcow2 {
    const CairnIndex *index;
    uint64_t size; /* virtual, rounded up to 512 bytes as qemu-img create does */
    unsigned cluster_bits;
    uint64_t cs;         /* cluster size */
    uint64_t per_chunk;  /* clusters per full chunk */
    uint64_t l2_entries; /* per L2 table */
    uint64_t l1_size, l1_clusters, l2_count;
    uint64_t rt_clusters, rb_count, data_clusters, total_clusters;
    uint64_t rt_offset, rb_offset, l1_offset, l2_offset, data_offset;
    uint64_t next_data;  /* cairn_qcow2_place(): the next data chunk's offset */
    uint64_t last_placed;
    gboolean placed_any;
};

static uint64_t
div_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* clusters a chunk of len bytes takes */
static uint64_t
chunk_clusters(const CairnQcow2 *q, uint32_t len)
{
    return div_up(len, q->cs);
}

/* Calls fn for every run of virtual clusters of data chunks, in order:
 * first virtual cluster, count, host offset of the first. */
typedef void (*RunFunc)(const CairnQcow2 *q, uint64_t vcluster, uint64_t n, uint64_t host,
                        gpointer data);

static void
for_each_data_chunk(const CairnQcow2 *q, RunFunc fn, gpointer data)
{
    const CairnIndex *index = q->index;
    uint64_t host = q->data_offset;
    for (uint64_t i = 0; i < index->count; i++) {
        if (cairn_id_is_zero(&index->ids[i]))
            continue;
        uint64_t n = chunk_clusters(q, cairn_index_chunk_len(index, i));
        fn(q, i * q->per_chunk, n, host, data);
        host += n * q->cs;
    }
}

typedef struct {
    uint64_t last_region; /* +1, 0 = none yet */
    uint64_t regions;
    uint64_t clusters;
} Count;

static void
count_run(const CairnQcow2 *q, uint64_t v, uint64_t n, uint64_t host, gpointer data)
{
    Count *c = data;
    (void) host;
    c->clusters += n;
    for (uint64_t r = v / q->l2_entries; r <= (v + n - 1) / q->l2_entries; r++)
        if (r + 1 > c->last_region) {
            c->last_region = r + 1;
            c->regions++;
        }
}

CairnQcow2 *
cairn_qcow2_new(const CairnIndex *index, GError **error)
{
    unsigned bits = (unsigned) g_bit_nth_lsf(index->chunk_size, -1);
    if (index->chunk_size == 0 || bits < CLUSTER_BITS_MIN ||
        (index->chunk_size & (index->chunk_size - 1)) != 0) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "cannot write a qcow2 image for chunks of %u bytes (a power of two of "
                    "at least 512 is needed): restore with --format raw",
                    index->chunk_size);
        return NULL;
    }
    g_autoptr(CairnQcow2) q = g_new0(CairnQcow2, 1);
    q->index = index;
    q->size = div_up(index->virtual_size, 512) * 512;
    q->cluster_bits = MIN(bits, CLUSTER_BITS_MAX);
    q->cs = UINT64_C(1) << q->cluster_bits;
    q->per_chunk = index->chunk_size / q->cs;
    q->l2_entries = q->cs / 8;
    q->l1_size = MAX(1, div_up(q->size, q->cs * q->l2_entries));
    q->l1_clusters = div_up(q->l1_size * 8, q->cs);

    Count c = { 0 };
    for_each_data_chunk(q, count_run, &c);
    q->l2_count = c.regions;
    q->data_clusters = c.clusters;

    /* refcount blocks cover every cluster, themselves included */
    uint64_t per_block = q->cs * 8 / (1u << REFCOUNT_ORDER);
    uint64_t fixed = 1 + q->l1_clusters + q->l2_count + q->data_clusters;
    q->rb_count = 1;
    q->rt_clusters = 1;
    for (;;) {
        uint64_t total = fixed + q->rt_clusters + q->rb_count;
        uint64_t rb = div_up(total, per_block);
        uint64_t rt = div_up(rb * 8, q->cs);
        if (rb == q->rb_count && rt == q->rt_clusters)
            break;
        q->rb_count = MAX(rb, q->rb_count); /* grows only: ends */
        q->rt_clusters = MAX(rt, q->rt_clusters);
    }
    q->total_clusters = fixed + q->rt_clusters + q->rb_count;
    q->rt_offset = q->cs;
    q->rb_offset = q->rt_offset + q->rt_clusters * q->cs;
    q->l1_offset = q->rb_offset + q->rb_count * q->cs;
    q->l2_offset = q->l1_offset + q->l1_clusters * q->cs;
    q->data_offset = q->l2_offset + q->l2_count * q->cs;
    q->next_data = q->data_offset;
    return g_steal_pointer(&q);
}

void
cairn_qcow2_free(CairnQcow2 *q)
{
    g_free(q);
}

uint64_t
cairn_qcow2_place(CairnQcow2 *q, uint64_t chunk)
{
    g_assert(chunk < q->index->count && !cairn_id_is_zero(&q->index->ids[chunk]));
    g_assert(!q->placed_any || chunk > q->last_placed);
    q->placed_any = TRUE;
    q->last_placed = chunk;
    uint64_t at = q->next_data;
    q->next_data += chunk_clusters(q, cairn_index_chunk_len(q->index, chunk)) * q->cs;
    return at;
}

uint64_t
cairn_qcow2_file_size(const CairnQcow2 *q)
{
    return q->total_clusters * q->cs;
}

/* ---- metadata ---- */

typedef struct {
    int fd;
    const char *path;
    uint64_t *l1;      /* host order until written */
    uint64_t *l2;      /* the table being filled, big-endian entries */
    uint64_t region;   /* of l2, +1; 0 = none */
    uint64_t l2_slots; /* L2 tables started */
    gboolean ok;
    GError **error;
} Meta;

static void
flush_l2(Meta *m, const CairnQcow2 *q)
{
    if (!m->region || !m->ok)
        return;
    uint64_t at = m->l1[m->region - 1] & ~OFLAG_COPIED;
    m->ok = cairn_pwrite_all(m->fd, m->l2, q->cs, at, m->path, m->error);
}

static void
map_run(const CairnQcow2 *q, uint64_t v, uint64_t n, uint64_t host, gpointer data)
{
    Meta *m = data;
    for (uint64_t k = 0; k < n && m->ok; k++) {
        uint64_t vc = v + k;
        uint64_t region = vc / q->l2_entries;
        if (region + 1 != m->region) {
            flush_l2(m, q);
            g_assert(m->l2_slots < q->l2_count);
            m->l1[region] = (q->l2_offset + m->l2_slots * q->cs) | OFLAG_COPIED;
            m->l2_slots++;
            m->region = region + 1;
            memset(m->l2, 0, q->cs);
        }
        m->l2[vc % q->l2_entries] = GUINT64_TO_BE((host + k * q->cs) | OFLAG_COPIED);
    }
}

static void
put_be32(uint8_t *p, uint32_t v)
{
    v = GUINT32_TO_BE(v);
    memcpy(p, &v, 4);
}

static void
put_be64(uint8_t *p, uint64_t v)
{
    v = GUINT64_TO_BE(v);
    memcpy(p, &v, 8);
}

static gboolean
write_refcounts(const CairnQcow2 *q, int fd, const char *path, GError **error)
{
    uint64_t per_block = q->cs * 8 / (1u << REFCOUNT_ORDER);
    g_autofree uint16_t *block = g_malloc(q->cs);
    g_autofree uint64_t *table = g_malloc0(q->rt_clusters * q->cs);
    for (uint64_t b = 0; b < q->rb_count; b++) {
        uint64_t first = b * per_block;
        uint64_t used = MIN(per_block, q->total_clusters - first);
        memset(block, 0, q->cs);
        for (uint64_t i = 0; i < used; i++)
            block[i] = GUINT16_TO_BE(1);
        uint64_t at = q->rb_offset + b * q->cs;
        if (!cairn_pwrite_all(fd, block, q->cs, at, path, error))
            return FALSE;
        table[b] = GUINT64_TO_BE(at);
    }
    return cairn_pwrite_all(fd, table, q->rt_clusters * q->cs, q->rt_offset, path, error);
}

static gboolean
write_header(const CairnQcow2 *q, int fd, const char *path, GError **error)
{
    g_autofree uint8_t *h = g_malloc0(q->cs);
    memcpy(h, "QFI\xfb", 4);
    put_be32(h + 4, 3);                /* version */
    /* 8: backing file offset, 16: its size: none */
    put_be32(h + 20, q->cluster_bits);
    put_be64(h + 24, q->size);
    /* 32: no encryption */
    put_be32(h + 36, (uint32_t) q->l1_size);
    put_be64(h + 40, q->l1_offset);
    put_be64(h + 48, q->rt_offset);
    put_be32(h + 56, (uint32_t) q->rt_clusters);
    /* 60: no snapshots; 72/80/88: no incompatible, compatible, autoclear features */
    put_be32(h + 96, REFCOUNT_ORDER);
    put_be32(h + 100, HEADER_LENGTH);
    /* 104: compression type zlib (0); then the end of the (empty) extension list */
    return cairn_pwrite_all(fd, h, q->cs, 0, path, error);
}

gboolean
cairn_qcow2_write_metadata(const CairnQcow2 *q, int fd, const char *path, GError **error)
{
    if (q->l1_size > G_MAXUINT32 || q->rt_clusters > G_MAXUINT32) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "cannot write '%s': the disk is too large for a qcow2 image "
                    "(restore with --format raw)", path);
        return FALSE;
    }
    if (ftruncate(fd, (off_t) cairn_qcow2_file_size(q)) < 0) {
        cairn_set_errno(error, errno, "cannot set the size of", path);
        return FALSE;
    }
    g_autofree uint64_t *l1 = g_malloc0(q->l1_clusters * q->cs);
    g_autofree uint64_t *l2 = g_malloc0(q->cs);
    Meta m = { .fd = fd, .path = path, .l1 = l1, .l2 = l2, .ok = TRUE, .error = error };
    for_each_data_chunk(q, map_run, &m);
    flush_l2(&m, q);
    if (!m.ok)
        return FALSE;
    g_assert(m.l2_slots == q->l2_count);
    for (uint64_t i = 0; i < q->l1_size; i++)
        l1[i] = GUINT64_TO_BE(l1[i]);
    return cairn_pwrite_all(fd, l1, q->l1_clusters * q->cs, q->l1_offset, path, error) &&
           write_refcounts(q, fd, path, error) && write_header(q, fd, path, error);
}
