/* test-index.c - repo/index.h: chunk counts, the short last chunk, the byte format. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "repo/index.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static uint32_t
rd32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t
rd64(const uint8_t *p)
{
    return (uint64_t) rd32(p) | (uint64_t) rd32(p + 4) << 32;
}

static void
wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}

static void
wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}

/* a distinct, non-zero id per chunk */
static void
fill_ids(CairnIndex *index)
{
    for (uint64_t i = 0; i < index->count; i++)
        for (int b = 0; b < CAIRN_ID_LEN; b++)
            index->ids[i].b[b] = (uint8_t) (i * 31 + (uint64_t) b + 1);
}

/* a hand-written index in the documented layout */
static uint8_t *
raw_index(uint32_t version, uint64_t vsize, uint32_t cs, uint64_t count, size_t nids,
          size_t *ret_len)
{
    size_t len = CAIRN_INDEX_HEADER_LEN + nids * CAIRN_ID_LEN;
    uint8_t *p = g_malloc0(len);
    memcpy(p, "CRNI", 4);
    wr32(p + 4, version);
    wr64(p + 8, vsize);
    wr32(p + 16, cs);
    wr32(p + 20, 0);
    wr64(p + 24, count);
    for (size_t i = 0; i < nids; i++)
        memset(p + CAIRN_INDEX_HEADER_LEN + i * CAIRN_ID_LEN, (int) (i + 1), CAIRN_ID_LEN);
    *ret_len = len;
    return p;
}

static void
expect_bad(const void *data, size_t len, int code, const char *what)
{
    g_autoptr(GError) error = NULL;
    CairnIndex *index = cairn_index_decode(data, len, &error);
    if (index) {
        cairn_index_free(index);
        fail_msg("%s: decoded, expected an error", what);
    }
    if (!g_error_matches(error, CAIRN_REPO_ERROR, code))
        fail_msg("%s: expected code %d, got %d: %s", what, code, error->code, error->message);
}

/* ---- geometry */

static void
test_counts(void **state)
{
    static const struct {
        uint64_t vsize;
        uint32_t cs;
        uint64_t count;
        uint32_t last;
    } cases[] = {
        { 1 * MIB, 64 * KIB, 16, 64 * KIB },             /* exact multiple */
        { 10ULL * 1024 * MIB, MIB, 10240, MIB },
        { 1 * MIB + 1, 64 * KIB, 17, 1 },                /* one byte over */
        { 1 * MIB - 1, 64 * KIB, 16, 64 * KIB - 1 },
        { 100 * KIB, 64 * KIB, 2, 36 * KIB },
        { 1, MIB, 1, 1 },
        { 512, 64 * KIB, 1, 512 },
        { 16 * MIB, 16 * MIB, 1, 16 * MIB },
        { 64ULL << 30, MIB, 65536, MIB },                /* 64 GiB */
        { (64ULL << 30) + 4096, MIB, 65537, 4096 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(CairnIndex) index = cairn_index_new(cases[i].vsize, cases[i].cs);
        assert_int_equal(index->virtual_size, cases[i].vsize);
        assert_int_equal(index->chunk_size, cases[i].cs);
        assert_int_equal(index->count, cases[i].count);
        assert_int_equal(cairn_index_chunk_len(index, index->count - 1), cases[i].last);
        assert_int_equal(cairn_index_chunk_len(index, 0),
                         MIN((uint64_t) cases[i].cs, cases[i].vsize));
        /* the lengths add up to the disk */
        uint64_t sum = 0;
        for (uint64_t c = 0; c < index->count; c++)
            sum += cairn_index_chunk_len(index, c);
        assert_int_equal(sum, cases[i].vsize);
        /* a new index is all holes */
        assert_int_equal(cairn_index_data_chunks(index), 0);
    }
}

static void
test_zero_size(void **state)
{
    g_autoptr(CairnIndex) index = cairn_index_new(0, MIB);
    assert_int_equal(index->count, 0);
    assert_int_equal(cairn_index_data_chunks(index), 0);
    g_autoptr(GBytes) b = cairn_index_encode(index);
    assert_int_equal(g_bytes_get_size(b), CAIRN_INDEX_HEADER_LEN);
    g_autoptr(GError) error = NULL;
    g_autoptr(CairnIndex) back = cairn_index_decode(g_bytes_get_data(b, NULL),
                                                    g_bytes_get_size(b), &error);
    assert_non_null(back);
    assert_int_equal(back->virtual_size, 0);
    assert_int_equal(back->count, 0);
    assert_int_equal(back->chunk_size, MIB);
}

static void
test_data_chunks(void **state)
{
    g_autoptr(CairnIndex) index = cairn_index_new(10 * MIB, MIB);
    index->ids[0].b[0] = 1;
    index->ids[5].b[31] = 1;
    index->ids[9].b[17] = 0x80;
    assert_int_equal(cairn_index_data_chunks(index), 3);
}

/* ---- format */

static void
test_encode_layout(void **state)
{
    g_autoptr(CairnIndex) index = cairn_index_new(3 * 64 * KIB + 5, 64 * KIB);
    fill_ids(index);
    memset(&index->ids[2], 0, sizeof(CairnId)); /* a hole */
    g_autoptr(GBytes) b = cairn_index_encode(index);
    gsize len;
    const uint8_t *p = g_bytes_get_data(b, &len);
    assert_int_equal(len, CAIRN_INDEX_HEADER_LEN + 4 * CAIRN_ID_LEN);
    assert_memory_equal(p, "CRNI", 4);
    assert_int_equal(rd32(p + 4), CAIRN_INDEX_VERSION);
    assert_int_equal(rd64(p + 8), 3 * 64 * KIB + 5);
    assert_int_equal(rd32(p + 16), 64 * KIB);
    assert_int_equal(rd32(p + 20), 0);
    assert_int_equal(rd64(p + 24), 4);
    for (uint64_t i = 0; i < 4; i++)
        assert_memory_equal(p + CAIRN_INDEX_HEADER_LEN + i * CAIRN_ID_LEN, index->ids[i].b,
                            CAIRN_ID_LEN);
}

static void
test_roundtrip(void **state)
{
    static const struct {
        uint64_t vsize;
        uint32_t cs;
    } cases[] = {
        { 1 * MIB, 64 * KIB }, { 1 * MIB + 1, 64 * KIB }, { 7, 64 * KIB },
        { 100 * MIB + 12345, 4 * MIB }, { 16 * MIB, 16 * MIB },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(CairnIndex) index = cairn_index_new(cases[i].vsize, cases[i].cs);
        fill_ids(index);
        if (index->count > 1)
            memset(&index->ids[1], 0, sizeof(CairnId));
        g_autoptr(GBytes) b = cairn_index_encode(index);
        g_autoptr(GError) error = NULL;
        g_autoptr(CairnIndex) back = cairn_index_decode(g_bytes_get_data(b, NULL),
                                                        g_bytes_get_size(b), &error);
        if (!back)
            fail_msg("decode: %s", error->message);
        assert_int_equal(back->virtual_size, index->virtual_size);
        assert_int_equal(back->chunk_size, index->chunk_size);
        assert_int_equal(back->count, index->count);
        assert_memory_equal(back->ids, index->ids, index->count * CAIRN_ID_LEN);
        assert_int_equal(cairn_index_data_chunks(back), cairn_index_data_chunks(index));
        assert_int_equal(cairn_index_chunk_len(back, back->count - 1),
                         cairn_index_chunk_len(index, index->count - 1));
        /* re-encoding gives the same bytes */
        g_autoptr(GBytes) again = cairn_index_encode(back);
        assert_true(g_bytes_equal(b, again));
    }
}

static void
test_hand_written(void **state)
{
    /* a decoder follows the documented layout, not just its own encoder */
    size_t len;
    g_autofree uint8_t *p = raw_index(1, 200 * KIB, 64 * KIB, 4, 4, &len);
    g_autoptr(GError) error = NULL;
    g_autoptr(CairnIndex) index = cairn_index_decode(p, len, &error);
    assert_non_null(index);
    assert_int_equal(index->count, 4);
    assert_int_equal(cairn_index_chunk_len(index, 3), 8 * KIB);
    for (int i = 0; i < 4; i++)
        assert_int_equal(index->ids[i].b[0], i + 1);
}

/* ---- malformed */

static void
test_truncated(void **state)
{
    g_autoptr(CairnIndex) index = cairn_index_new(3 * MIB, MIB);
    fill_ids(index);
    g_autoptr(GBytes) b = cairn_index_encode(index);
    gsize len;
    const uint8_t *p = g_bytes_get_data(b, &len);
    for (size_t n = 0; n < len; n++)
        expect_bad(p, n, CAIRN_REPO_ERROR_CORRUPT, "truncated");
    /* and one byte too many */
    g_autofree uint8_t *longer = g_malloc0(len + 1);
    memcpy(longer, p, len);
    expect_bad(longer, len + 1, CAIRN_REPO_ERROR_CORRUPT, "trailing byte");
    g_autofree uint8_t *extra_id = g_malloc0(len + CAIRN_ID_LEN);
    memcpy(extra_id, p, len);
    expect_bad(extra_id, len + CAIRN_ID_LEN, CAIRN_REPO_ERROR_CORRUPT, "extra id");
}

static void
test_count_mismatch(void **state)
{
    size_t len;
    /* 200 KiB at 64 KiB is 4 chunks */
    g_autofree uint8_t *a = raw_index(1, 200 * KIB, 64 * KIB, 3, 3, &len);
    expect_bad(a, len, CAIRN_REPO_ERROR_CORRUPT, "count 3 for 4 chunks");
    g_autofree uint8_t *b = raw_index(1, 200 * KIB, 64 * KIB, 5, 5, &len);
    expect_bad(b, len, CAIRN_REPO_ERROR_CORRUPT, "count 5 for 4 chunks");
    g_autofree uint8_t *c = raw_index(1, 200 * KIB, 64 * KIB, 4, 3, &len);
    expect_bad(c, len, CAIRN_REPO_ERROR_CORRUPT, "count 4, 3 ids");
    g_autofree uint8_t *d = raw_index(1, 0, 64 * KIB, 1, 1, &len);
    expect_bad(d, len, CAIRN_REPO_ERROR_CORRUPT, "zero size with one chunk");
    /* a count that would overflow count * 32 */
    g_autofree uint8_t *e = raw_index(1, UINT64_MAX, 64 * KIB, (UINT64_MAX >> 16) + 1, 2, &len);
    expect_bad(e, len, CAIRN_REPO_ERROR_CORRUPT, "huge count");
}

static void
test_bad_chunk_size(void **state)
{
    static const uint32_t sizes[] = { 0, 1, 4096, 32 * KIB, 64 * KIB - 1, 64 * KIB + 1,
                                      96 * KIB, 3 * MIB, 32 * MIB, 0x80000000u, UINT32_MAX };
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        size_t len;
        uint32_t cs = sizes[i];
        uint64_t count = cs ? (MIB + cs - 1) / cs : 1;
        g_autofree uint8_t *p = raw_index(1, MIB, cs, count, count < 300 ? count : 1, &len);
        g_autofree char *what = g_strdup_printf("chunk size %u", cs);
        expect_bad(p, len, CAIRN_REPO_ERROR_CORRUPT, what);
    }
}

static void
test_bad_magic_and_version(void **state)
{
    size_t len;
    g_autofree uint8_t *p = raw_index(1, 128 * KIB, 64 * KIB, 2, 2, &len);
    g_autoptr(GError) e0 = NULL;
    g_autoptr(CairnIndex) ok = cairn_index_decode(p, len, &e0);
    assert_non_null(ok);

    p[0] = 'c';
    expect_bad(p, len, CAIRN_REPO_ERROR_CORRUPT, "lowercase magic");
    memcpy(p, "CRNO", 4);
    expect_bad(p, len, CAIRN_REPO_ERROR_CORRUPT, "object magic");
    memcpy(p, "CRNI", 4);

    wr32(p + 4, 0);
    expect_bad(p, len, CAIRN_REPO_ERROR_CORRUPT, "version 0");
    wr32(p + 4, 2);
    expect_bad(p, len, CAIRN_REPO_ERROR_NEWER_FORMAT, "version 2");
    wr32(p + 4, 0x01000001); /* a version that only the low byte calls 1 */
    expect_bad(p, len, CAIRN_REPO_ERROR_NEWER_FORMAT, "version 0x01000001");
    g_autoptr(GError) error = NULL;
    wr32(p + 4, UINT32_MAX);
    CairnIndex *none = cairn_index_decode(p, len, &error);
    assert_null(none);
    assert_true(g_error_matches(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEWER_FORMAT));
    assert_non_null(strstr(error->message, "upgrade"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_zero_size),
        cmocka_unit_test(test_data_chunks),
        cmocka_unit_test(test_encode_layout),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_hand_written),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_count_mismatch),
        cmocka_unit_test(test_bad_chunk_size),
        cmocka_unit_test(test_bad_magic_and_version),
    };
    return cmocka_run_group_tests_name("index", tests, NULL, NULL);
}
