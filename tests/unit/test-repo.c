/* test-repo.c - the repository over the in-memory backend: init/open, keys,
 * put/get, snapshots and their resolution, verify, gc, locks. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "repo/crypto.h"
#include "repo/gc.h"
#include "repo/index.h"
#include "repo/lock.h"
#include "repo/repo.h"
#include "repo/snapshot.h"
#include "repo/quarantine.h"
#include "repo/verify.h"

/* test hook in repo/backends/memory.c */
void cairn_backend_memory_poke(CairnBackend *b, const char *key, const void *data, size_t len);

#define CS (64u * 1024)
#define T0 1795140000 /* 2026-11-20T02:00:00Z */

/* cairn_repo_init_backend() and cairn_repo_open_backend() take ownership of
 * the backend and free it. The fixture keeps one memory backend across them
 * (to init, open again, poke) by giving it a copy of its ops whose free does
 * nothing; teardown frees it for real. */
typedef struct {
    CairnBackend *mem;
    CairnBackendOps ops;
    void (*real_free)(CairnBackend *b);
    char *dir; /* key files */
} Fx;

static void
keep(CairnBackend *b)
{
}

static int
setup(void **state)
{
    Fx *f = g_new0(Fx, 1);
    f->mem = cairn_backend_memory_new();
    f->ops = *f->mem->ops;
    f->real_free = f->ops.free;
    f->ops.free = keep;
    f->mem->ops = &f->ops;
    f->dir = g_dir_make_tmp("cairn-test-repo-XXXXXX", NULL);
    *state = f;
    return f->dir ? 0 : -1;
}

static int
teardown(void **state)
{
    Fx *f = *state;
    f->real_free(f->mem);
    g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
    for (const char *name; d && (name = g_dir_read_name(d));) {
        g_autofree char *p = g_build_filename(f->dir, name, NULL);
        unlink(p);
    }
    rmdir(f->dir);
    g_free(f->dir);
    g_free(f);
    return 0;
}

static char *
write_key(Fx *f, const char *name, const char *secret, int mode)
{
    char *path = g_build_filename(f->dir, name, NULL);
    assert_true(g_file_set_contents(path, secret, -1, NULL));
    assert_int_equal(chmod(path, (mode_t) mode), 0);
    return path;
}

static void
init_repo(Fx *f, const char *key_file)
{
    CairnRepoInitOptions o = { .chunk_size = CS, .key_file = key_file };
    g_autoptr(GError) error = NULL;
    if (!cairn_repo_init_backend(f->mem, &o, &error))
        fail_msg("init: %s", error->message);
}

static CairnRepo *
open_repo(Fx *f, const char *key_file)
{
    g_autoptr(GError) error = NULL;
    CairnRepo *r = cairn_repo_open_backend(f->mem, key_file, &error);
    if (!r)
        fail_msg("open: %s", error->message);
    return r;
}

static void
assert_error(const GError *e, int code, const char *in_message)
{
    assert_non_null(e);
    if (!g_error_matches(e, CAIRN_REPO_ERROR, code))
        fail_msg("expected code %d, got %s %d: %s", code, g_quark_to_string(e->domain), e->code,
                 e->message);
    if (in_message && !strstr(e->message, in_message))
        fail_msg("'%s' does not mention '%s'", e->message, in_message);
}

static void
expect_open_error(Fx *f, const char *key_file, int code, const char *in_message)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CairnRepo) r = cairn_repo_open_backend(f->mem, key_file, &error);
    assert_null(r);
    assert_error(error, code, in_message);
}

static void
expect_init_error(CairnBackend *mem, uint32_t cs, const char *key_file, int code,
                  const char *in_message)
{
    CairnRepoInitOptions o = { .chunk_size = cs, .key_file = key_file };
    g_autoptr(GError) error = NULL;
    assert_false(cairn_repo_init_backend(mem, &o, &error));
    assert_error(error, code, in_message);
}

static void
expect_get_error(CairnRepo *r, const CairnId *id, int code)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) b = cairn_repo_get(r, id, NULL, &error);
    assert_null(b);
    char hex[CAIRN_ID_HEX_LEN + 1];
    assert_error(error, code, cairn_id_to_hex(id, hex)); /* naming the object */
}

static guint
count_keys(Fx *f, const char *prefix)
{
    g_autoptr(GPtrArray) l = cairn_backend_list(f->mem, prefix, NULL);
    return l->len;
}

/* corrupt one stored byte of an object */
static void
damage(Fx *f, const CairnId *id, size_t off)
{
    g_autofree char *key = cairn_object_key(id);
    g_autoptr(GBytes) b = cairn_backend_get(f->mem, key, NULL);
    assert_non_null(b);
    gsize len;
    const void *data = g_bytes_get_data(b, &len);
    g_autofree uint8_t *p = g_memdup2(data, len);
    p[off < len ? off : len - 1] ^= 0x20;
    cairn_backend_memory_poke(f->mem, key, p, len);
}

/* chunk content for a tag; tag 0 is a hole */
static void
chunk_content(uint8_t *buf, size_t len, uint32_t tag)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t) (tag * 7 + i / 251);
}

/* Publish a one-disk snapshot whose chunks have the given tags; the last
 * chunk is 100 bytes short. ret_chunks (optional) gets the chunk ids. */
static void
publish(CairnRepo *repo, const char *name, int64_t time, int32_t usec, const uint32_t *tags,
        size_t n, CairnId *ret_snap, CairnId *ret_chunks)
{
    g_autoptr(CairnIndex) index = cairn_index_new(n * CS - 100, CS);
    g_autofree uint8_t *buf = g_malloc(CS);
    for (size_t i = 0; i < n; i++) {
        if (!tags[i])
            continue;
        uint32_t len = cairn_index_chunk_len(index, i);
        chunk_content(buf, len, tags[i]);
        g_autoptr(GError) error = NULL;
        assert_true(cairn_repo_put(repo, CAIRN_OBJECT_CHUNK, buf, len, &index->ids[i], NULL,
                                   &error));
        if (ret_chunks)
            ret_chunks[i] = index->ids[i];
    }
    g_autoptr(CairnManifest) m = cairn_manifest_new();
    m->name = g_strdup(name);
    m->time = time;
    m->time_usec = usec;
    CairnManifestDisk *d = cairn_manifest_add_disk(m, "vda");
    d->virtual_size = index->virtual_size;
    g_autoptr(GError) error = NULL;
    assert_true(cairn_index_store(repo, index, &d->index, NULL, &error));
    assert_true(cairn_snapshot_publish(repo, m, ret_snap, &error));
}

/* ---- init and open */

static void
test_init_open(void **state)
{
    Fx *f = *state;
    init_repo(f, NULL);
    g_autoptr(GBytes) cfg = cairn_backend_get(f->mem, "config", NULL);
    assert_non_null(cfg);
    g_autoptr(CairnRepo) r = open_repo(f, NULL);
    assert_int_equal(cairn_repo_chunk_size(r), CS);
    assert_false(cairn_repo_is_encrypted(r));
    assert_true(g_uuid_string_is_valid(cairn_repo_uuid(r)));
    assert_string_equal(cairn_repo_location(r), "memory:");
    /* a plain repository names content by SHA-256 */
    CairnId id;
    cairn_repo_hash(r, "abc", 3, &id);
    char hex[CAIRN_ID_HEX_LEN + 1];
    assert_string_equal(cairn_id_to_hex(&id, hex),
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_init_twice(void **state)
{
    Fx *f = *state;
    /* a bad chunk size is refused before anything is written */
    expect_init_error(f->mem, 100000, NULL, CAIRN_REPO_ERROR_INVALID, "100000");
    assert_int_equal(count_keys(f, ""), 0);
    init_repo(f, NULL);
    g_autoptr(GBytes) before = cairn_backend_get(f->mem, "config", NULL);
    expect_init_error(f->mem, 1024 * 1024, NULL, CAIRN_REPO_ERROR_EXISTS, "memory:");
    g_autoptr(GBytes) after = cairn_backend_get(f->mem, "config", NULL);
    assert_true(g_bytes_equal(before, after));
}

static void
test_open_errors(void **state)
{
    Fx *f = *state;
    expect_open_error(f, NULL, CAIRN_REPO_ERROR_NOT_A_REPO, "init");
    cairn_backend_memory_poke(f->mem, "config", "hello", 5);
    expect_open_error(f, NULL, CAIRN_REPO_ERROR_NOT_A_REPO, NULL);
    const char *other = "{\"format\":\"restic\",\"version\":1}";
    cairn_backend_memory_poke(f->mem, "config", other, strlen(other));
    expect_open_error(f, NULL, CAIRN_REPO_ERROR_NOT_A_REPO, NULL);
    const char *newer = "{\"format\":\"cairn-repository\",\"version\":99,\"chunk_size\":65536,"
                        "\"future\":{\"cipher\":\"something-new\"}}";
    cairn_backend_memory_poke(f->mem, "config", newer, strlen(newer));
    expect_open_error(f, NULL, CAIRN_REPO_ERROR_NEWER_FORMAT, "upgrade");
}

/* ---- encryption */

static void
test_encrypted(void **state)
{
    Fx *f = *state;
    g_autofree char *key = write_key(f, "key", "correct horse battery staple\n", 0600);
    g_autofree char *wrong = write_key(f, "wrong", "incorrect horse battery", 0600);
    g_autofree char *loose = write_key(f, "loose", "correct horse battery staple\n", 0644);
    g_autofree char *shortk = write_key(f, "short", "1234567\n", 0600);
    g_autofree char *absent = g_build_filename(f->dir, "absent", NULL);

    /* a group/world-readable or too short key is refused, nothing is created */
    expect_init_error(f->mem, CS, loose, CAIRN_REPO_ERROR_INVALID, "chmod 600");
    expect_init_error(f->mem, CS, shortk, CAIRN_REPO_ERROR_INVALID, "at least 8");
    assert_int_equal(count_keys(f, ""), 0);

    init_repo(f, key);
    expect_open_error(f, NULL, CAIRN_REPO_ERROR_NEED_KEY, NULL);
    expect_open_error(f, absent, CAIRN_REPO_ERROR_NEED_KEY, NULL);
    expect_open_error(f, wrong, CAIRN_REPO_ERROR_WRONG_KEY, "wrong key");
    expect_open_error(f, loose, CAIRN_REPO_ERROR_INVALID, "chmod 600");

    g_autoptr(CairnRepo) r = open_repo(f, key);
    assert_true(cairn_repo_is_encrypted(r));
    const char secret[] = "attack at dawn attack at dawn attack at dawn";
    CairnId id, plain_id;
    g_autoptr(GError) error = NULL;
    assert_true(cairn_repo_put(r, CAIRN_OBJECT_BLOB, secret, sizeof secret, &id, NULL, &error));
    cairn_sha256(secret, sizeof secret, plain_id.b);
    assert_false(cairn_id_equal(&id, &plain_id)); /* names reveal nothing */
    g_autofree char *okey = cairn_object_key(&id);
    g_autoptr(GBytes) stored = cairn_backend_get(f->mem, okey, NULL);
    gsize slen;
    const uint8_t *s = g_bytes_get_data(stored, &slen);
    assert_int_equal(s[7], 1);
    for (size_t i = 0; i + 6 <= slen; i++)
        assert_memory_not_equal(s + i, "attack", 6);
    CairnObjectType type = 0;
    g_autoptr(GBytes) back = cairn_repo_get(r, &id, &type, &error);
    assert_non_null(back);
    assert_int_equal(type, CAIRN_OBJECT_BLOB);
    assert_memory_equal(g_bytes_get_data(back, NULL), secret, sizeof secret);
    /* damage is seen */
    damage(f, &id, slen - 40);
    expect_get_error(r, &id, CAIRN_REPO_ERROR_CORRUPT);
}

/* ---- objects */

static void
test_put_get(void **state)
{
    Fx *f = *state;
    init_repo(f, NULL);
    g_autoptr(CairnRepo) r = open_repo(f, NULL);
    g_autofree uint8_t *data = g_malloc(5000);
    chunk_content(data, 5000, 9);
    CairnId id, id2;
    uint64_t n1 = 99, n2 = 99;
    g_autoptr(GError) error = NULL;
    assert_true(cairn_repo_put(r, CAIRN_OBJECT_CHUNK, data, 5000, &id, &n1, &error));
    g_autofree char *key = cairn_object_key(&id);
    g_autoptr(GBytes) stored = cairn_backend_get(f->mem, key, NULL);
    assert_non_null(stored);
    assert_int_equal(n1, g_bytes_get_size(stored));
    assert_true(n1 > 16 && n1 < 5000); /* compressed */
    assert_true(cairn_repo_put(r, CAIRN_OBJECT_CHUNK, data, 5000, &id2, &n2, &error));
    assert_int_equal(n2, 0);
    assert_true(cairn_id_equal(&id, &id2));
    assert_int_equal(count_keys(f, "objects/"), 1);
    char hex[CAIRN_ID_HEX_LEN + 1];
    assert_true(g_str_has_suffix(key, cairn_id_to_hex(&id, hex)));
    gboolean exists = FALSE;
    assert_true(cairn_repo_has(r, &id, &exists, &error));
    assert_true(exists);
    CairnObjectType type = 0;
    g_autoptr(GBytes) back = cairn_repo_get(r, &id, &type, &error);
    assert_non_null(back);
    assert_int_equal(type, CAIRN_OBJECT_CHUNK);
    assert_int_equal(g_bytes_get_size(back), 5000);
    assert_memory_equal(g_bytes_get_data(back, NULL), data, 5000);

    /* corrupt: CORRUPT, naming the object */
    damage(f, &id, 30);
    expect_get_error(r, &id, CAIRN_REPO_ERROR_CORRUPT);

    /* missing: MISSING, naming the object */
    CairnId other = id;
    other.b[31] ^= 1;
    expect_get_error(r, &other, CAIRN_REPO_ERROR_MISSING);
    assert_true(cairn_repo_has(r, &other, &exists, &error));
    assert_false(exists);
}

/* ---- snapshots */

/* resolve spec: to want, or (want NULL) to an error with code and message part */
static void
resolves(CairnRepo *r, const char *spec, const CairnId *want, int code, const char *in_message)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(CairnSnapshot) s = cairn_snapshot_resolve(r, spec, NULL, &e);
    if (want && !s)
        fail_msg("resolve '%s': %s", spec, e->message);
    if (want && !cairn_id_equal(&s->id, want))
        fail_msg("resolve '%s' gave the wrong snapshot", spec);
    if (!want && s)
        fail_msg("'%s' resolved", spec);
    if (!want)
        assert_error(e, code, in_message);
}
#define OK(spec, want) resolves(r, spec, want, 0, NULL)
#define BAD(spec, code, msg) resolves(r, spec, NULL, CAIRN_REPO_ERROR_##code, msg)

static void
test_snapshots_resolve(void **state)
{
    Fx *f = *state;
    init_repo(f, NULL);
    g_autoptr(CairnRepo) r = open_repo(f, NULL);
    const uint32_t tags[] = { 1, 2 };
    CairnId w[3], db;
    publish(r, "web01", T0 + 120, 5, tags, 2, &w[2], NULL); /* published out of order */
    publish(r, "web01", T0, 0, tags, 2, &w[0], NULL);
    publish(r, "db1", T0 + 60, 0, tags, 2, &db, NULL);
    publish(r, "web01", T0 + 60, 999999, tags, 2, &w[1], NULL);
    assert_int_equal(count_keys(f, "snapshots/"), 4);

    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) all = cairn_snapshot_list(r, NULL, &error);
    assert_int_equal(all->len, 4);
    const CairnId *order[] = { &w[0], &db, &w[1], &w[2] }; /* by time, then usec */
    for (guint i = 0; i < 4; i++)
        assert_true(cairn_id_equal(&((CairnSnapshot *) all->pdata[i])->id, order[i]));
    g_autoptr(GPtrArray) web = cairn_snapshot_list(r, "web01", &error);
    assert_int_equal(web->len, 3);
    /* within one second the fraction orders them (5! orders: no luck involved) */
    CairnId same[5];
    for (int i = 0; i < 5; i++)
        publish(r, "same", T0, 900000 - i * 1000, tags, 2, &same[4 - i], NULL);
    g_autoptr(GPtrArray) l5 = cairn_snapshot_list(r, "same", &error);
    assert_int_equal(l5->len, 5);
    for (guint i = 0; i < 5; i++)
        assert_true(cairn_id_equal(&((CairnSnapshot *) l5->pdata[i])->id, &same[i]));

    char hex[CAIRN_ID_HEX_LEN + 1];
    OK(cairn_id_to_hex(&w[1], hex), &w[1]);
    cairn_id_to_hex(&db, hex)[8] = '\0';
    OK(hex, &db);
    cairn_id_to_hex(&w[0], hex)[12] = '\0';
    OK(hex, &w[0]);
    OK("web01@latest", &w[2]);
    OK("web01@~0", &w[2]);
    OK("web01@~2", &w[0]);
    OK("db1@latest", &db);
    OK("web01@2026-11-20T02:01:59Z", &w[1]); /* the newest at or before */
    OK("web01@2026-11-20T02:01Z", &w[1]);
    OK("web01@2026-11-20T02:00:59Z", &w[0]);
    OK("web01@2026-12-01", &w[2]);
    BAD("web01@~3", NOT_FOUND, "has 3 snapshots");
    BAD("web01@~x", INVALID, NULL);
    BAD("web01@~", INVALID, NULL);
    BAD("web01@2026-11-20T01:59:59Z", NOT_FOUND, "oldest");
    BAD("web01@soon", INVALID, NULL);
    BAD("web1@latest", NOT_FOUND, "did you mean 'web01'");
    BAD("mail@latest", NOT_FOUND, "known: ");
    BAD("0000000000", NOT_FOUND, NULL);
    BAD("abc", INVALID, NULL);
    BAD("web01", INVALID, NULL);
    BAD("@latest", INVALID, NULL);
    g_autoptr(GError) e = NULL;
    g_autoptr(CairnSnapshot) none = cairn_snapshot_resolve(r, "mail@latest", NULL, &e);
    assert_null(strstr(e->message, "did you mean"));
}

/* a snapshot whose manifest is damaged blocks none of the others: by id
 * (full, abbreviated, upper case) and by name they resolve, the damaged one
 * is reported; asked for by its own id, it fails naming forget */
static void
test_resolve_beside_damaged(void **state)
{
    Fx *f = *state;
    init_repo(f, NULL);
    g_autoptr(CairnRepo) r = open_repo(f, NULL);
    const uint32_t tags[] = { 1, 2 };
    CairnId bad, good, newer;
    publish(r, "web01", T0, 0, tags, 2, &good, NULL);
    publish(r, "db1", T0 + 60, 0, tags, 2, &bad, NULL);
    publish(r, "web01", T0 + 120, 0, tags, 2, &newer, NULL);
    damage(f, &bad, 20);

    char hex[CAIRN_ID_HEX_LEN + 1];
    OK(cairn_id_to_hex(&good, hex), &good);
    hex[10] = '\0';
    OK(hex, &good);
    g_autofree char *upper = g_ascii_strup(cairn_id_to_hex(&good, hex), -1);
    OK(upper, &good);

    g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) e = NULL;
    g_autoptr(CairnSnapshot) latest = cairn_snapshot_resolve(r, "web01@latest", broken, &e);
    assert_non_null(latest);
    assert_true(cairn_id_equal(&latest->id, &newer));
    assert_int_equal(broken->len, 1);
    assert_non_null(strstr(broken->pdata[0], "cairn forget"));

    BAD(cairn_id_to_hex(&bad, hex), CORRUPT, "cairn forget");
    g_autoptr(GArray) ids = cairn_snapshot_match_ids(r, hex, &e);
    assert_int_equal(ids->len, 1);
    assert_true(cairn_id_equal(&g_array_index(ids, CairnId, 0), &bad));

    /* verify names the damaged manifest among the objects to set aside */
    CairnVerifyReport rep;
    assert_true(cairn_verify(r, NULL, FALSE, &rep, &e));
    gboolean listed = FALSE;
    for (guint i = 0; i < rep.damaged->len; i++)
        listed |= cairn_id_equal(&g_array_index(rep.damaged, CairnId, i), &bad);
    assert_true(listed);
    cairn_verify_report_clear(&rep);
}

/* setting aside re-checks the object first: one whole again by then (a
 * backup stored it after verify saw it damaged) stays where it is */
static void
test_quarantine_rechecks(void **state)
{
    Fx *f = *state;
    init_repo(f, NULL);
    g_autoptr(CairnRepo) r = open_repo(f, NULL);
    g_autofree uint8_t *data = g_malloc(5000);
    chunk_content(data, 5000, 3);
    CairnId id;
    g_autoptr(GError) error = NULL;
    assert_true(cairn_repo_put(r, CAIRN_OBJECT_CHUNK, data, 5000, &id, NULL, &error));
    gboolean moved = TRUE;
    assert_true(cairn_repo_quarantine(r, &id, &moved, &error));
    assert_false(moved);
    gboolean exists = FALSE;
    assert_true(cairn_repo_has(r, &id, &exists, &error));
    assert_true(exists);
    damage(f, &id, 30);
    assert_true(cairn_repo_quarantine(r, &id, &moved, &error));
    assert_true(moved);
    assert_true(cairn_repo_has(r, &id, &exists, &error));
    assert_false(exists);
    g_autoptr(GHashTable) damaged = cairn_repo_damaged(r, &error);
    assert_true(g_hash_table_contains(damaged, &id));
    /* stored whole again: no longer damaged */
    CairnId again;
    assert_true(cairn_repo_put(r, CAIRN_OBJECT_CHUNK, data, 5000, &again, NULL, &error));
    g_autoptr(GHashTable) after = cairn_repo_damaged(r, &error);
    assert_false(g_hash_table_contains(after, &id));
}

static CairnSnapshot *
fake_snapshot(const char *prefix, const char *name, int64_t time)
{
    CairnSnapshot *s = g_new0(CairnSnapshot, 1);
    char hex[CAIRN_ID_HEX_LEN + 1];
    memset(hex, prefix[strlen(prefix) - 1], CAIRN_ID_HEX_LEN); /* padded with its last digit */
    memcpy(hex, prefix, strlen(prefix));
    hex[CAIRN_ID_HEX_LEN] = '\0';
    assert_true(cairn_id_from_hex(hex, &s->id));
    s->manifest = cairn_manifest_new();
    s->manifest->name = g_strdup(name);
    s->manifest->time = time;
    return s;
}

static void
test_resolve_ambiguous(void **state)
{
    g_autoptr(GPtrArray) l = g_ptr_array_new_with_free_func((GDestroyNotify) cairn_snapshot_free);
    g_ptr_array_add(l, fake_snapshot("aaaaaaaa1111", "a", T0));
    g_ptr_array_add(l, fake_snapshot("aaaaaaaa2222", "b", T0 + 1));
    g_ptr_array_add(l, fake_snapshot("bbbbbbbb1111", "a", T0 + 2));
    g_autoptr(GError) e = NULL;
    assert_null(cairn_snapshot_resolve_in(l, "aaaaaaaa", &e));
    assert_error(e, CAIRN_REPO_ERROR_AMBIGUOUS, "matches 2 snapshots");
    assert_non_null(strstr(e->message, "aaaaaaaa11111111"));
    assert_non_null(strstr(e->message, "aaaaaaaa22222222"));
    g_autoptr(GError) e2 = NULL;
    CairnSnapshot *s = cairn_snapshot_resolve_in(l, "aaaaaaaa2", &e2);
    assert_ptr_equal(s, l->pdata[1]);
    s = cairn_snapshot_resolve_in(l, "bbbbbbbb", &e2);
    assert_ptr_equal(s, l->pdata[2]);
    s = cairn_snapshot_resolve_in(l, "a@latest", &e2);
    assert_ptr_equal(s, l->pdata[2]);
    g_autoptr(GError) e3 = NULL;
    assert_null(cairn_snapshot_resolve_in(l, "AAAAAAAA", &e3)); /* ids are lowercase */
    assert_error(e3, CAIRN_REPO_ERROR_INVALID, NULL);
}

/* ---- verify and gc */

static gboolean
problems_mention(const CairnVerifyReport *rep, const char *a, const char *b, const char *c)
{
    for (guint i = 0; i < rep->problems->len; i++) {
        const char *p = rep->problems->pdata[i];
        if (strstr(p, a) && (!b || strstr(p, b)) && (!c || strstr(p, c)))
            return TRUE;
    }
    return FALSE;
}

static void
test_verify(void **state)
{
    Fx *f = *state;
    init_repo(f, NULL);
    g_autoptr(CairnRepo) r = open_repo(f, NULL);
    /* chunk 3 is shared (full length in both); the last chunks are short */
    const uint32_t t1[] = { 1, 2, 0, 3, 5 }, t2[] = { 3, 4 };
    CairnId s1, s2, c1[5], c2[2];
    publish(r, "web01", T0, 0, t1, 5, &s1, c1);
    publish(r, "db1", T0 + 10, 0, t2, 2, &s2, c2);
    CairnVerifyReport rep;
    g_autoptr(GError) error = NULL;
    for (int read_data = 0; read_data < 2; read_data++) {
        assert_true(cairn_verify(r, NULL, read_data, &rep, &error));
        assert_int_equal(rep.problems->len, 0);
        assert_int_equal(rep.snapshots, 2);
        assert_int_equal(rep.indexes, 2);
        assert_int_equal(rep.chunks, 5); /* 1 2 3 4 5; the hole is no chunk */
        cairn_verify_report_clear(&rep);
    }
    char h1[CAIRN_ID_HEX_LEN + 1], h2[CAIRN_ID_HEX_LEN + 1], hc[CAIRN_ID_HEX_LEN + 1];
    g_autofree char *p1 = g_strndup(cairn_id_to_hex(&s1, h1), 16);
    g_autofree char *p2 = g_strndup(cairn_id_to_hex(&s2, h2), 16);

    /* a missing chunk: found by the structure check, naming the snapshot */
    g_autofree char *k = cairn_object_key(&c1[1]);
    assert_true(cairn_backend_remove(f->mem, k, &error));
    assert_true(cairn_verify(r, NULL, FALSE, &rep, &error));
    assert_int_equal(rep.problems->len, 1);
    assert_true(problems_mention(&rep, cairn_id_to_hex(&c1[1], hc), "missing", p1));
    assert_true(problems_mention(&rep, "web01", "offset 65536", NULL));
    cairn_verify_report_clear(&rep);

    /* a corrupt chunk shared by both: only reading the data finds it */
    damage(f, &c2[0], 40);
    assert_true(cairn_verify(r, NULL, FALSE, &rep, &error));
    assert_int_equal(rep.problems->len, 1);
    cairn_verify_report_clear(&rep);
    assert_true(cairn_verify(r, NULL, TRUE, &rep, &error));
    assert_int_equal(rep.problems->len, 2);
    assert_true(problems_mention(&rep, cairn_id_to_hex(&c2[0], hc), "corrupt", p1));
    assert_true(problems_mention(&rep, hc, "corrupt", p2));
    assert_true(problems_mention(&rep, cairn_id_to_hex(&c1[1], hc), "missing", p1));
    assert_true(cairn_id_equal(&c1[3], &c2[0]));
    assert_true(rep.objects_read >= 5);
    cairn_verify_report_clear(&rep);
}

/* verify --read-data-subset: the share read rounds up, each run draws its
 * own sample, and presence is still checked for every chunk */
static void
test_verify_sample(void **state)
{
    Fx *f = *state;
    init_repo(f, NULL);
    g_autoptr(CairnRepo) r = open_repo(f, NULL);
    uint32_t t[20];
    CairnId s, c[20];
    for (uint32_t i = 0; i < 20; i++)
        t[i] = i + 1;
    publish(r, "web01", T0, 0, t, 20, &s, c);
    CairnVerifyReport rep;
    g_autoptr(GError) error = NULL;
    static const struct { double pct; guint64 want; } shares[] = {
        { 0, 0 }, { 0.1, 1 }, { 1, 1 }, { 10, 2 }, { 12.5, 3 }, { 50, 10 }, { 99.9, 20 },
        { 100, 20 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(shares); i++) {
        assert_true(cairn_verify_sample(r, NULL, shares[i].pct, &rep, &error));
        if (rep.chunks_read != shares[i].want)
            fail_msg("%g%% of 20 chunks: read %" G_GUINT64_FORMAT ", want %" G_GUINT64_FORMAT,
                     shares[i].pct, rep.chunks_read, shares[i].want);
        assert_int_equal(rep.chunks, 20);
        assert_int_equal(rep.problems->len, 0);
        cairn_verify_report_clear(&rep);
    }
    assert_true(cairn_verify(r, NULL, TRUE, &rep, &error));
    assert_int_equal(rep.chunks_read, 20);
    cairn_verify_report_clear(&rep);

    char hc[CAIRN_ID_HEX_LEN + 1];
    damage(f, &c[7], 40);
    assert_true(cairn_verify_sample(r, NULL, 100, &rep, &error));
    assert_int_equal(rep.problems->len, 1);
    assert_true(problems_mention(&rep, cairn_id_to_hex(&c[7], hc), "corrupt", "web01"));
    cairn_verify_report_clear(&rep);
    /* a 10% sample (2 of 20) finds it in some runs and not in others: the
     * chance to see only one outcome in 400 runs is below 1e-18 */
    guint found = 0, runs = 400;
    for (guint i = 0; i < runs; i++) {
        assert_true(cairn_verify_sample(r, NULL, 10, &rep, &error));
        assert_int_equal(rep.chunks_read, 2);
        found += rep.problems->len;
        cairn_verify_report_clear(&rep);
    }
    if (found == 0 || found == runs)
        fail_msg("the corrupt chunk was found in %u of %u samples of 10%%", found, runs);

    /* a missing chunk is found by any share: every chunk's presence is listed */
    g_autofree char *k = cairn_object_key(&c[3]);
    assert_true(cairn_backend_remove(f->mem, k, &error));
    assert_true(cairn_verify_sample(r, NULL, 1, &rep, &error));
    assert_true(problems_mention(&rep, cairn_id_to_hex(&c[3], hc), "missing", "web01"));
    assert_true(rep.problems->len == 1 || rep.problems->len == 2); /* + c[7] if drawn */
    cairn_verify_report_clear(&rep);
}

static void
test_gc(void **state)
{
    Fx *f = *state;
    init_repo(f, NULL);
    g_autoptr(CairnRepo) r = open_repo(f, NULL);
    const uint32_t t1[] = { 1, 3, 2 }, t2[] = { 3, 4 }; /* chunk 3 shared */
    CairnId s1, s2, c1[3], c2[2];
    publish(r, "web01", T0, 0, t1, 3, &s1, c1);
    publish(r, "web01", T0 + 10, 0, t2, 2, &s2, c2);
    assert_int_equal(count_keys(f, "objects/"), 8); /* 4 chunks, 2 indexes, 2 manifests */

    CairnGcStats st;
    g_autoptr(GError) error = NULL;
    assert_true(cairn_snapshot_forget(r, &s1, &error));
    assert_int_equal(count_keys(f, "snapshots/"), 1);
    /* within the grace period nothing goes */
    assert_true(cairn_gc(r, 3600, FALSE, 0, &st, &error));
    assert_int_equal(st.objects_young, 4);
    assert_int_equal(st.objects_deleted, 0);
    /* a dry run counts but keeps */
    assert_true(cairn_gc(r, 0, TRUE, 0, &st, &error));
    assert_int_equal(st.objects_deleted, 4);
    assert_int_equal(count_keys(f, "objects/"), 8);
    assert_true(cairn_gc(r, 0, FALSE, 0, &st, &error));
    assert_int_equal(st.snapshots, 1);
    assert_int_equal(st.objects_total, 8);
    assert_int_equal(st.objects_live, 4);
    assert_int_equal(st.objects_deleted, 4); /* s1's manifest and index, chunks 1 and 2 */
    assert_true(st.bytes_deleted > 0);
    assert_int_equal(count_keys(f, "objects/"), 4);
    assert_true(cairn_id_equal(&c1[1], &c2[0]));
    const CairnId *gone[] = { &s1, &c1[0], &c1[2] }, *kept[] = { &s2, &c2[0], &c2[1] };
    for (size_t i = 0; i < 3; i++) {
        gboolean exists;
        assert_true(cairn_repo_has(r, gone[i], &exists, &error));
        assert_false(exists);
        assert_true(cairn_repo_has(r, kept[i], &exists, &error));
        assert_true(exists);
    }
    CairnVerifyReport rep;
    assert_true(cairn_verify(r, NULL, TRUE, &rep, &error));
    assert_int_equal(rep.problems->len, 0);
    cairn_verify_report_clear(&rep);

    /* an unreadable snapshot stops gc before it deletes anything */
    const uint8_t junk[] = { 1, 2, 3 };
    CairnId orphan;
    assert_true(cairn_repo_put(r, CAIRN_OBJECT_BLOB, junk, 3, &orphan, NULL, &error));
    damage(f, &s2, 20);
    g_autoptr(GError) e2 = NULL;
    assert_false(cairn_gc(r, 0, FALSE, 0, &st, &e2));
    assert_error(e2, CAIRN_REPO_ERROR_CORRUPT, "nothing deleted");
    assert_int_equal(count_keys(f, "objects/"), 5);
}

/* ---- locks */

static void
expect_locked(CairnRepo *r, CairnLockMode mode, const char *in_message)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CairnLock) l = cairn_lock_acquire(r, mode, "test", 0, &error);
    assert_null(l);
    assert_error(error, CAIRN_REPO_ERROR_LOCKED, in_message);
}

static void
test_locks(void **state)
{
    Fx *f = *state;
    init_repo(f, NULL);
    g_autoptr(CairnRepo) r = open_repo(f, NULL);
    g_autoptr(GError) error = NULL;
    CairnLock *a = cairn_lock_acquire(r, CAIRN_LOCK_SHARED, "backup web01", 0, &error);
    assert_non_null(a);
    CairnLock *b = cairn_lock_acquire(r, CAIRN_LOCK_SHARED, "prune", 0, &error);
    assert_non_null(b); /* shared locks do not conflict */
    assert_int_equal(count_keys(f, "locks/"), 2);

    expect_locked(r, CAIRN_LOCK_EXCLUSIVE, "shared lock held by");
    assert_int_equal(count_keys(f, "locks/"), 2); /* the loser removed its own */
    CairnGcStats st;
    g_autoptr(GError) e2 = NULL;
    assert_false(cairn_gc(r, 0, FALSE, 0, &st, &e2));
    assert_error(e2, CAIRN_REPO_ERROR_LOCKED, NULL);

    cairn_lock_release(a);
    expect_locked(r, CAIRN_LOCK_EXCLUSIVE, "shared lock held by prune");
    cairn_lock_release(b);
    assert_int_equal(count_keys(f, "locks/"), 0);

    CairnLock *x = cairn_lock_acquire(r, CAIRN_LOCK_EXCLUSIVE, "gc", 0, &error);
    assert_non_null(x);
    expect_locked(r, CAIRN_LOCK_SHARED, "exclusive lock held by gc");
    cairn_lock_release(x);
    cairn_lock_release(NULL);
    assert_int_equal(count_keys(f, "locks/"), 0);
}

static void
poke_lock(Fx *f, const char *key, const char *host, int pid)
{
    g_autofree char *body = g_strdup_printf("{\"host\":\"%s\",\"mode\":\"exclusive\",\"pid\":%d,"
                                            "\"purpose\":\"gc\",\"time\":%" G_GINT64_FORMAT "}",
                                            host, pid, cairn_now());
    cairn_backend_memory_poke(f->mem, key, body, strlen(body));
}

static void
test_stale_locks(void **state)
{
    Fx *f = *state;
    init_repo(f, NULL);
    g_autoptr(CairnRepo) r = open_repo(f, NULL);
    poke_lock(f, "locks/dead", g_get_host_name(), 999999999); /* no such process here */
    poke_lock(f, "locks/live", "elsewhere.invalid", 1);
    expect_locked(r, CAIRN_LOCK_SHARED, "elsewhere.invalid");
    assert_int_equal(count_keys(f, "locks/dead"), 0); /* removed by whoever finds it */
    cairn_backend_remove(f->mem, "locks/live", NULL);
    g_autoptr(GError) error = NULL;
    CairnLock *l = cairn_lock_acquire(r, CAIRN_LOCK_EXCLUSIVE, "gc", 0, &error);
    assert_non_null(l);
    cairn_lock_release(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encrypted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshots_resolve, setup, teardown),
        cmocka_unit_test(test_resolve_ambiguous),
        cmocka_unit_test_setup_teardown(test_resolve_beside_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine_rechecks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_sample, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_locks, setup, teardown),
    };
    return cmocka_run_group_tests_name("repo", tests, NULL, NULL);
}
