/* test-sync.c - repo/sync.h over in-memory backends: a push repairs what a
 * snapshot already on the target lacks there, and a target that refuses
 * every write is given up on as a whole, not object by object. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "repo/backends/backend.h"
#include "repo/index.h"
#include "repo/sync.h"

#define CS (64u * 1024)
#define CHUNKS 60

guint cairn_backend_memory_fail_puts(CairnBackend *b, const char *prefix);

typedef struct {
    CairnRepo *src;
    CairnBackend *target;
    CairnId snap;
    CairnId chunk0;
} Fx;

static int
setup(void **state)
{
    Fx *f = g_new0(Fx, 1);
    CairnBackend *mem = cairn_backend_memory_new();
    CairnRepoInitOptions o = { .chunk_size = CS };
    g_autoptr(GError) error = NULL;
    assert_true(cairn_repo_init_backend(mem, &o, &error));
    f->src = cairn_repo_open_backend(mem, NULL, &error);
    assert_non_null(f->src);
    /* one snapshot of CHUNKS distinct chunks */
    g_autoptr(CairnIndex) index = cairn_index_new((uint64_t) CHUNKS * CS, CS);
    g_autofree uint8_t *buf = g_malloc(CS);
    for (guint i = 0; i < CHUNKS; i++) {
        for (guint k = 0; k < CS; k++)
            buf[k] = (uint8_t) (i * 131 + k * 7 + (k >> 9));
        assert_true(cairn_repo_put(f->src, CAIRN_OBJECT_CHUNK, buf, CS, &index->ids[i], NULL,
                                   &error));
    }
    f->chunk0 = index->ids[0];
    g_autoptr(CairnManifest) m = cairn_manifest_new();
    m->name = g_strdup("web01");
    m->time = 1800000000;
    CairnManifestDisk *d = cairn_manifest_add_disk(m, "vda");
    d->virtual_size = index->virtual_size;
    assert_true(cairn_index_store(f->src, index, &d->index, NULL, &error));
    assert_true(cairn_snapshot_publish(f->src, m, &f->snap, &error));
    f->target = cairn_backend_memory_new();
    assert_true(cairn_sync_prepare_target(f->src, f->target, FALSE, NULL, &error));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fx *f = *state;
    cairn_repo_free(f->src);
    cairn_backend_free(f->target);
    g_free(f);
    return 0;
}

static gboolean
push(Fx *f, gboolean repair, CairnSyncStats *st, GError **error)
{
    g_autoptr(GPtrArray) list = cairn_snapshot_list(f->src, NULL, error);
    assert_non_null(list);
    CairnSyncOptions o = { .parallel = 4, .repair_present = repair };
    return cairn_sync(f->src, f->target, list, &o, st, error);
}

static void
test_push_repairs_a_lost_object(void **state)
{
    Fx *f = *state;
    CairnSyncStats st;
    g_autoptr(GError) error = NULL;
    assert_true(push(f, TRUE, &st, &error));
    assert_int_equal(st.snapshots_sent, 1);
    assert_int_equal(st.objects_sent, CHUNKS + 2); /* chunks, index, manifest */
    cairn_sync_stats_clear(&st);

    /* the target loses a chunk: without the check nothing moves */
    g_autofree char *key = cairn_object_key(&f->chunk0);
    assert_true(cairn_backend_remove(f->target, key, &error));
    assert_true(push(f, FALSE, &st, &error));
    assert_int_equal(st.objects_sent, 0);
    assert_int_equal(st.snapshots_present, 1);
    cairn_sync_stats_clear(&st);

    /* with it, exactly that chunk is sent again */
    assert_true(push(f, TRUE, &st, &error));
    assert_int_equal(st.objects_sent, 1);
    assert_int_equal(st.snapshots_repaired, 1);
    assert_int_equal(st.snapshots_sent, 0);
    gboolean exists = FALSE;
    assert_true(cairn_backend_exists(f->target, key, &exists, &error));
    assert_true(exists);
    cairn_sync_stats_clear(&st);

    /* and then nothing again */
    assert_true(push(f, TRUE, &st, &error));
    assert_int_equal(st.objects_sent, 0);
    assert_int_equal(st.snapshots_repaired, 0);
    cairn_sync_stats_clear(&st);
}

static void
test_push_gives_up_on_a_dead_target(void **state)
{
    Fx *f = *state;
    cairn_backend_memory_fail_puts(f->target, "objects/");
    CairnSyncStats st;
    g_autoptr(GError) error = NULL;
    assert_false(push(f, TRUE, &st, &error));
    assert_non_null(error);
    assert_non_null(strstr(error->message, "giving up"));
    guint attempts = cairn_backend_memory_fail_puts(f->target, NULL);
    /* the objects in flight when it gave up, not all of them */
    assert_true(attempts < CHUNKS);
    assert_true(st.problems->len < CHUNKS);
    assert_int_equal(st.snapshots_sent, 0);
    cairn_sync_stats_clear(&st);
}

/* a dry run writes nothing, not even the config, and counts what a push
 * sends: objects and bytes */
static void
test_dry_run_changes_nothing(void **state)
{
    Fx *f = *state;
    g_autoptr(CairnBackend) fresh = cairn_backend_memory_new();
    g_autoptr(GError) error = NULL;
    gboolean empty = FALSE;
    assert_true(cairn_sync_prepare_target(f->src, fresh, TRUE, &empty, &error));
    assert_true(empty);
    g_autoptr(GPtrArray) list = cairn_snapshot_list(f->src, NULL, &error);
    CairnSyncOptions o = { .parallel = 4, .dry_run = TRUE, .repair_present = TRUE };
    CairnSyncStats st;
    assert_true(cairn_sync(f->src, fresh, list, &o, &st, &error));
    assert_int_equal(st.snapshots_sent, 1);
    assert_int_equal(st.objects_sent, CHUNKS + 2);
    guint64 would_send = st.bytes_sent;
    cairn_sync_stats_clear(&st);
    g_autoptr(GPtrArray) keys = cairn_backend_list(fresh, "", &error);
    assert_int_equal(keys->len, 0);

    /* the real push sends exactly that */
    assert_true(cairn_sync_prepare_target(f->src, fresh, FALSE, &empty, &error));
    o.dry_run = FALSE;
    assert_true(cairn_sync(f->src, fresh, list, &o, &st, &error));
    assert_int_equal(st.objects_sent, CHUNKS + 2);
    assert_true(st.bytes_sent > 0);
    assert_int_equal(st.bytes_sent, would_send);
    cairn_sync_stats_clear(&st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_repairs_a_lost_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_gives_up_on_a_dead_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_changes_nothing, setup, teardown),
    };
    return cmocka_run_group_tests_name("sync", tests, NULL, NULL);
}
