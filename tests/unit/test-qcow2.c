/* test-qcow2.c - the qcow2 layout and metadata written for a disk index,
 * checked by qemu itself: `qemu-img check` finds the image clean and
 * `qemu-img map` maps every data chunk to the offset cairn_qcow2_place()
 * gave it, and every hole to nothing. Data clusters are not written (the
 * file stays sparse): qemu reads only the metadata. Sizes up to 3 GiB of
 * data take several refcount blocks and L2 tables. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "restore/qcow2.h"
#include "restore/restore.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

typedef gboolean (*IsData)(uint64_t chunk);

static gboolean all_data(uint64_t i) { (void) i; return TRUE; }
static gboolean every_third(uint64_t i) { return i % 3 == 1; }
static gboolean first_and_last_only(uint64_t i) { return i == 0 || i == 40959; }
static gboolean no_data(uint64_t i) { (void) i; return FALSE; }

static char *
run(const char *cmd)
{
    g_autofree char *out = NULL, *err = NULL;
    int status = 0;
    g_auto(GStrv) argv = NULL;
    assert_true(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                             &status, NULL));
    if (!g_spawn_check_wait_status(status, NULL))
        fail_msg("'%s' failed: %s%s", cmd, out, err);
    return g_steal_pointer(&out);
}

/* Write the metadata for (size, chunk size, data chunks), then compare
 * qemu's view with the layout. */
static void
check_layout(uint64_t size, uint32_t chunk_size, IsData is_data)
{
    g_autoptr(CairnIndex) index = cairn_index_new(size, chunk_size);
    g_autofree uint64_t *host = g_new0(uint64_t, index->count);
    for (uint64_t i = 0; i < index->count; i++)
        if (is_data(i))
            memset(&index->ids[i], 0x5a, sizeof index->ids[i]);

    g_autoptr(GError) error = NULL;
    g_autoptr(CairnQcow2) q = cairn_qcow2_new(index, &error);
    assert_non_null(q);
    for (uint64_t i = 0; i < index->count; i++)
        if (is_data(i))
            host[i] = cairn_qcow2_place(q, i);

    char path[] = "/var/tmp/cairn-test-qcow2-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_true(cairn_qcow2_write_metadata(q, fd, path, &error));
    assert_int_equal(close(fd), 0);

    g_autofree char *check = g_strdup_printf("qemu-img check -f qcow2 %s", path);
    g_autofree char *check_out = run(check);
    assert_non_null(strstr(check_out, "No errors were found"));
    assert_null(strstr(check_out, "leaked"));

    g_autofree char *info = g_strdup_printf("qemu-img info --output=json -f qcow2 %s", path);
    g_autofree char *info_out = run(info);
    json_error_t jerr;
    g_autoptr(CairnJson) ij = json_loads(info_out, 0, &jerr);
    assert_non_null(ij);
    uint64_t want_size = (size + 511) / 512 * 512;
    assert_int_equal(json_integer_value(json_object_get(ij, "virtual-size")), want_size);
    assert_int_equal(json_integer_value(json_object_get(ij, "cluster-size")),
                     MIN(chunk_size, 64 * KIB));

    /* qemu-img map: runs of virtual bytes, with the host offset of data */
    g_autofree char *map = g_strdup_printf("qemu-img map --output=json -f qcow2 %s", path);
    g_autofree char *map_out = run(map);
    g_autoptr(CairnJson) mj = json_loads(map_out, 0, &jerr);
    assert_non_null(mj);
    uint64_t checked = 0;
    size_t k;
    json_t *run_j;
    json_array_foreach(mj, k, run_j) {
        uint64_t start = json_integer_value(json_object_get(run_j, "start"));
        uint64_t len = json_integer_value(json_object_get(run_j, "length"));
        gboolean data = json_is_true(json_object_get(run_j, "data"));
        uint64_t off = json_integer_value(json_object_get(run_j, "offset"));
        assert_int_equal(start, checked);
        /* every chunk of the run: data where the index has data, at its place */
        for (uint64_t v = start; v < start + len; v += chunk_size - v % chunk_size) {
            uint64_t i = v / chunk_size;
            assert_int_equal(data, is_data(i) ? 1 : 0);
            if (data)
                assert_int_equal(off + (v - start), host[i] + v % chunk_size);
        }
        checked = start + len;
    }
    assert_int_equal(checked, want_size);
    assert_int_equal(unlink(path), 0);
}

static void
test_small_odd_size(void **state)
{
    (void) state;
    /* not a multiple of the chunk size, nor of 512: rounded up as qemu-img does */
    check_layout(37 * MIB + 123 * KIB + 7, 1 * MIB, every_third);
}

static void
test_several_l2_tables(void **state)
{
    (void) state;
    /* 2.5 GiB virtual, data every third MiB: five L2 tables, one refcount block */
    check_layout(2 * GIB + 512 * MIB, 1 * MIB, every_third);
}

static void
test_several_refcount_blocks(void **state)
{
    (void) state;
    /* 3 GiB of data: 49152 data clusters need two refcount blocks */
    check_layout(3 * GIB, 1 * MIB, all_data);
}

static void
test_sparse_and_large(void **state)
{
    (void) state;
    /* 40 GiB virtual with data in the first and the last chunk only */
    check_layout(40 * GIB, 1 * MIB, first_and_last_only);
}

static void
test_chunk_sizes(void **state)
{
    (void) state;
    check_layout(100 * MIB + 64 * KIB, 64 * KIB, every_third);
    check_layout(100 * MIB + 3 * KIB, 16 * MIB, every_third);
}

static void
test_no_data(void **state)
{
    (void) state;
    check_layout(8 * GIB, 1 * MIB, no_data);
    g_autoptr(CairnIndex) index = cairn_index_new(8 * GIB, 1 * MIB); /* all holes */
    g_autoptr(GError) error = NULL;
    g_autoptr(CairnQcow2) q = cairn_qcow2_new(index, &error);
    assert_non_null(q);
    /* header, refcount table, one refcount block, L1: nothing else */
    assert_int_equal(cairn_qcow2_file_size(q), 4 * 64 * KIB);
}

static void
test_bad_chunk_size(void **state)
{
    (void) state;
    g_autoptr(CairnIndex) index = cairn_index_new(1 * MIB, 1000);
    g_autoptr(GError) error = NULL;
    assert_null(cairn_qcow2_new(index, &error));
    assert_true(g_error_matches(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID));
    assert_non_null(strstr(error->message, "--format raw"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_odd_size),
        cmocka_unit_test(test_several_l2_tables),
        cmocka_unit_test(test_several_refcount_blocks),
        cmocka_unit_test(test_sparse_and_large),
        cmocka_unit_test(test_chunk_sizes),
        cmocka_unit_test(test_no_data),
        cmocka_unit_test(test_bad_chunk_size),
    };
    return cmocka_run_group_tests_name("qcow2", tests, NULL, NULL);
}
