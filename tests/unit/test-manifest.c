/* test-manifest.c - repo/manifest.h: snapshot manifests to and from JSON.
 *
 * The "manifest-regressions" group guards defects found and fixed. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo/manifest.h"

static const char *const IDX_A = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
static const char *const IDX_B = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
static const char *const PARENT =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char *const XML = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
static const char *const CPXML = "aaaabbbbccccddddaaaabbbbccccddddaaaabbbbccccddddaaaabbbbccccdddd";

static int
group_setup(void **state)
{
    setenv("TZ", "Europe/Berlin", 1); /* times in manifests are UTC whatever the zone */
    tzset();
    return 0;
}

static void
id_of(const char *hex, CairnId *ret)
{
    assert_true(cairn_id_from_hex(hex, ret));
}

static int64_t
utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = mi, .tm_sec = s };
    return (int64_t) timegm(&tm);
}

static CairnManifest *
full_manifest(void)
{
    CairnManifest *m = cairn_manifest_new();
    m->name = g_strdup("web01");
    m->uuid = g_strdup("5f0c3a52-8d3e-4b8e-9f4a-2a6f1d0e7c11");
    m->host = g_strdup("kvm3");
    m->time = utc(2026, 11, 25, 11, 44, 31);
    m->time_usec = 100919;
    m->has_parent = TRUE;
    id_of(PARENT, &m->parent);
    m->has_domain_xml = TRUE;
    id_of(XML, &m->domain_xml);
    g_ptr_array_add(m->tags, g_strdup("nightly"));
    g_ptr_array_add(m->tags, g_strdup("before upgrade"));
    m->checkpoint = g_strdup("cairn-20261125T114431");
    m->has_checkpoint_xml = TRUE;
    id_of(CPXML, &m->checkpoint_xml);
    g_free(m->consistency);
    m->consistency = g_strdup("application");
    g_free(m->kind);
    m->kind = g_strdup("domain");
    CairnManifestDisk *d = cairn_manifest_add_disk(m, "vda");
    d->format = g_strdup("qcow2");
    d->source = g_strdup("/var/lib/libvirt/images/web01.qcow2");
    d->bitmap = g_strdup("cairn-20261125T114431");
    d->virtual_size = 10737418240ULL;
    id_of(IDX_A, &d->index);
    d->bytes_read = 4194304;
    d->bytes_new = 1048576;
    d = cairn_manifest_add_disk(m, "vdb");
    d->virtual_size = 1;
    id_of(IDX_B, &d->index);
    return m;
}

static CairnManifest *
parse_ok(const char *text)
{
    g_autoptr(GError) error = NULL;
    CairnManifest *m = cairn_manifest_from_json(text, strlen(text), &error);
    if (!m)
        fail_msg("cannot parse %s: %s", text, error->message);
    return m;
}

static void
expect_bad_text(const char *text, int code, const char *in_message)
{
    g_autoptr(GError) error = NULL;
    CairnManifest *m = cairn_manifest_from_json(text, strlen(text), &error);
    if (m) {
        cairn_manifest_free(m);
        fail_msg("accepted: %s", text);
    }
    if (!g_error_matches(error, CAIRN_REPO_ERROR, code))
        fail_msg("%s: expected code %d, got %d: %s", text, code, error->code, error->message);
    if (in_message && !strstr(error->message, in_message))
        fail_msg("message '%s' does not mention '%s'", error->message, in_message);
}

/* a valid manifest as a JSON object, to break one field at a time */
static json_t *
base_json(void)
{
    g_autoptr(CairnManifest) m = full_manifest();
    return cairn_manifest_to_json_value(m);
}

static void
expect_bad(json_t *o, int code, const char *in_message)
{
    g_autofree char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    expect_bad_text(text, code, in_message);
}

static json_t *
disk0(json_t *o)
{
    return json_array_get(json_object_get(o, "disks"), 0);
}

/* ---- round trip */

static void
assert_same(const CairnManifest *a, const CairnManifest *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->uuid, b->uuid);
    assert_string_equal(a->host, b->host);
    assert_int_equal(a->time, b->time);
    assert_int_equal(a->time_usec, b->time_usec);
    assert_int_equal(a->has_parent, b->has_parent);
    assert_true(cairn_id_equal(&a->parent, &b->parent));
    assert_int_equal(a->has_domain_xml, b->has_domain_xml);
    assert_true(cairn_id_equal(&a->domain_xml, &b->domain_xml));
    assert_int_equal(a->tags->len, b->tags->len);
    for (guint i = 0; i < a->tags->len; i++)
        assert_string_equal(a->tags->pdata[i], b->tags->pdata[i]);
    assert_string_equal(a->checkpoint, b->checkpoint);
    assert_int_equal(a->has_checkpoint_xml, b->has_checkpoint_xml);
    assert_true(cairn_id_equal(&a->checkpoint_xml, &b->checkpoint_xml));
    assert_string_equal(a->consistency, b->consistency);
    assert_string_equal(a->kind, b->kind);
    assert_string_equal(a->tool_version, b->tool_version);
    assert_int_equal(a->disks->len, b->disks->len);
    for (guint i = 0; i < a->disks->len; i++) {
        const CairnManifestDisk *x = a->disks->pdata[i], *y = b->disks->pdata[i];
        assert_string_equal(x->target, y->target);
        if (x->format || y->format)
            assert_string_equal(x->format, y->format);
        if (x->source || y->source)
            assert_string_equal(x->source, y->source);
        if (x->bitmap || y->bitmap)
            assert_string_equal(x->bitmap, y->bitmap);
        assert_int_equal(x->virtual_size, y->virtual_size);
        assert_true(cairn_id_equal(&x->index, &y->index));
        assert_int_equal(x->bytes_read, y->bytes_read);
        assert_int_equal(x->bytes_new, y->bytes_new);
    }
}

static void
test_roundtrip_full(void **state)
{
    g_autoptr(CairnManifest) m = full_manifest();
    size_t len = 0;
    g_autofree char *text = cairn_manifest_to_json(m, &len);
    assert_int_equal(len, strlen(text));
    /* compact, sorted keys, UTC time with microseconds */
    assert_null(strchr(text, '\n'));
    assert_null(strstr(text, ", "));
    json_t *o = json_loads(text, 0, NULL);
    assert_non_null(o);
    const char *key, *prev = "";
    json_t *v;
    json_object_foreach(o, key, v) {
        if (strcmp(prev, key) >= 0)
            fail_msg("keys out of order: '%s' before '%s'", prev, key);
        prev = key;
    }
    json_decref(o);
    assert_non_null(strstr(text, "\"time\":\"2026-11-25T11:44:31.100919Z\""));
    assert_non_null(strstr(text, "\"version\":1"));
    g_autofree char *pj = g_strdup_printf("\"parent\":\"%s\"", PARENT);
    assert_non_null(strstr(text, pj));
    assert_non_null(strstr(text, "\"tags\":[\"nightly\",\"before upgrade\"]"));

    g_autoptr(CairnManifest) back = parse_ok(text);
    assert_same(m, back);
    assert_string_equal(cairn_manifest_find_disk(back, "vdb")->target, "vdb");
    assert_null(cairn_manifest_find_disk(back, "vdc"));
    assert_null(((CairnManifestDisk *) back->disks->pdata[1])->format);
    assert_null(((CairnManifestDisk *) back->disks->pdata[1])->bitmap);

    /* canonical: writing what was read gives the same bytes */
    size_t len2 = 0;
    g_autofree char *again = cairn_manifest_to_json(back, &len2);
    assert_string_equal(again, text);
}

static void
test_roundtrip_minimal(void **state)
{
    g_autoptr(CairnManifest) m = cairn_manifest_new();
    m->name = g_strdup("img");
    m->time = utc(2026, 1, 1, 0, 0, 0);
    size_t len;
    g_autofree char *text = cairn_manifest_to_json(m, &len);
    assert_non_null(strstr(text, "\"parent\":null"));
    assert_non_null(strstr(text, "\"domain_xml\":null"));
    assert_non_null(strstr(text, "\"checkpoint_xml\":null"));
    assert_non_null(strstr(text, "\"disks\":[]"));
    assert_non_null(strstr(text, "\"time\":\"2026-01-01T00:00:00.000000Z\""));
    g_autoptr(CairnManifest) back = parse_ok(text);
    assert_false(back->has_parent);
    assert_false(back->has_domain_xml);
    assert_false(back->has_checkpoint_xml);
    assert_null(back->uuid);
    assert_null(back->host);
    assert_null(back->checkpoint);
    assert_int_equal(back->disks->len, 0);
    assert_int_equal(back->tags->len, 0);
    assert_string_equal(back->kind, "image");
    assert_string_equal(back->consistency, "crash");
    assert_int_equal(back->time, m->time);
    assert_int_equal(back->time_usec, 0);
}

static void
test_time_is_utc(void **state)
{
    /* the zone of the reader does not matter (TZ=Europe/Berlin here) */
    json_t *o = base_json();
    json_object_set_new(o, "time", json_string("2026-07-01T12:00:00.5Z"));
    g_autofree char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    g_autoptr(CairnManifest) m = parse_ok(text);
    assert_int_equal(m->time, utc(2026, 7, 1, 12, 0, 0));
    assert_int_equal(m->time_usec, 500000);
}

static void
test_unknown_keys_kept(void **state)
{
    json_t *o = base_json();
    json_object_set_new(o, "retention_hint", json_pack("{s:i, s:[s,s]}", "days", 30, "why",
                                                       "a", "b"));
    json_object_set_new(o, "zz_last", json_true());
    g_autofree char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    g_autoptr(CairnManifest) m = parse_ok(text);
    assert_non_null(m->extra);
    assert_int_equal(json_object_size(m->extra), 2);

    /* a rewrite (after a change this version understands) keeps them */
    g_ptr_array_add(m->tags, g_strdup("kept"));
    size_t len;
    g_autofree char *rewritten = cairn_manifest_to_json(m, &len);
    assert_non_null(strstr(rewritten, "\"retention_hint\":{\"days\":30,\"why\":[\"a\",\"b\"]}"));
    assert_non_null(strstr(rewritten, "\"zz_last\":true"));
    assert_non_null(strstr(rewritten, "\"kept\""));
    /* known keys are not duplicated into extra */
    assert_null(json_object_get(m->extra, "name"));
    g_autoptr(CairnManifest) back = parse_ok(rewritten);
    assert_int_equal(json_object_size(back->extra), 2);
    assert_true(json_equal(back->extra, m->extra));
}

/* ---- malformed */

static void
test_malformed_json(void **state)
{
    expect_bad_text("", CAIRN_REPO_ERROR_CORRUPT, NULL);
    expect_bad_text("{", CAIRN_REPO_ERROR_CORRUPT, NULL);
    expect_bad_text("null", CAIRN_REPO_ERROR_CORRUPT, NULL);
    expect_bad_text("[]", CAIRN_REPO_ERROR_CORRUPT, NULL);
    expect_bad_text("\"manifest\"", CAIRN_REPO_ERROR_CORRUPT, NULL);
    expect_bad_text("{}", CAIRN_REPO_ERROR_CORRUPT, "version");
    /* a valid manifest with garbage after it, or cut short */
    json_t *o = base_json();
    g_autofree char *good = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    g_autofree char *trailing = g_strconcat(good, "x", NULL);
    expect_bad_text(trailing, CAIRN_REPO_ERROR_CORRUPT, NULL);
    g_autofree char *cut = g_strndup(good, strlen(good) - 1);
    expect_bad_text(cut, CAIRN_REPO_ERROR_CORRUPT, NULL);
    /* a duplicated key */
    g_autofree char *dup = g_strdup_printf("{\"name\":\"x\",%s", good + 1);
    expect_bad_text(dup, CAIRN_REPO_ERROR_CORRUPT, NULL);
}

static void
test_missing_fields(void **state)
{
    static const char *const required[] = { "name", "time", "disks", "kind", "consistency",
                                            "tool_version", "version" };
    for (size_t i = 0; i < G_N_ELEMENTS(required); i++) {
        json_t *o = base_json();
        json_object_del(o, required[i]);
        expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, required[i]);
        if (!strcmp(required[i], "version"))
            continue; /* an integer version is valid: see test_versions */
        o = base_json();
        json_object_set_new(o, required[i], json_integer(7));
        expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, required[i]);
    }
    json_t *o = base_json();
    json_object_set_new(o, "name", json_string(""));
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "name");
    o = base_json();
    json_object_set_new(o, "time", json_string("yesterday"));
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "time");
    o = base_json();
    json_object_set_new(o, "disks", json_object());
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "disks");
    o = base_json();
    json_array_append_new(json_object_get(o, "disks"), json_string("vdc"));
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "disks");
    o = base_json();
    json_object_del(disk0(o), "target");
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "target");
    o = base_json();
    json_object_del(disk0(o), "virtual_size");
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "virtual_size");
    o = base_json();
    json_object_set_new(disk0(o), "virtual_size", json_integer(-1));
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "virtual_size");
    o = base_json();
    json_object_set_new(o, "tags", json_string("nightly"));
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "tags");
    o = base_json();
    json_array_append_new(json_object_get(o, "tags"), json_integer(1));
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "tags");
}

static void
test_duplicate_disk(void **state)
{
    json_t *o = base_json();
    json_t *copy = json_deep_copy(disk0(o));
    json_array_append_new(json_object_get(o, "disks"), copy);
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "vda");
    /* same target, other content */
    o = base_json();
    json_object_set_new(json_array_get(json_object_get(o, "disks"), 1), "target",
                        json_string("vda"));
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "duplicate");
}

static void
test_malformed_ids(void **state)
{
    static const char *const bad[] = {
        "xyz",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",   /* 63 */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", /* 65 */
        "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",  /* uppercase */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        "",
    };
    static const char *const where[] = { "parent", "domain_xml", "checkpoint_xml", "index" };
    for (size_t w = 0; w < G_N_ELEMENTS(where); w++) {
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
            json_t *o = base_json();
            json_t *parent = strcmp(where[w], "index") ? o : disk0(o);
            json_object_set_new(parent, where[w], json_string(bad[i]));
            expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, where[w]);
        }
        json_t *o = base_json();
        json_object_set_new(strcmp(where[w], "index") ? o : disk0(o), where[w], json_integer(5));
        expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, where[w]);
    }
    /* parent and domain_xml may be null, a disk's index may not */
    json_t *o = base_json();
    json_object_set_new(disk0(o), "index", json_null());
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "index");
}

static void
test_versions(void **state)
{
    json_t *o = base_json();
    json_object_set_new(o, "version", json_integer(2));
    expect_bad(o, CAIRN_REPO_ERROR_NEWER_FORMAT, "upgrade");
    o = base_json();
    json_object_set_new(o, "version", json_integer(1000));
    expect_bad(o, CAIRN_REPO_ERROR_NEWER_FORMAT, NULL);
    /* a newer manifest is refused before its other fields are looked at */
    expect_bad_text("{\"version\":2,\"something\":\"else\"}", CAIRN_REPO_ERROR_NEWER_FORMAT, NULL);
    o = base_json();
    json_object_set_new(o, "version", json_integer(0));
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "version");
    o = base_json();
    json_object_set_new(o, "version", json_string("1"));
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "version");
    o = base_json();
    json_object_set_new(o, "version", json_real(1.0));
    expect_bad(o, CAIRN_REPO_ERROR_CORRUPT, "version");
}

/* ---- defects in the code under test */

static void
regress_unknown_disk_keys_dropped(void **state)
{
    /* docs/repository-format.md: "Unknown keys are kept when a manifest is
     * rewritten" (and additive JSON changes do not bump the version). Unknown
     * keys inside a disk entry are dropped: repo/manifest.c parse_disks()
     * reads only the known fields and cairn_manifest_to_json_value() rebuilds
     * each disk from them.
     * Expected: the rewrite keeps "zz_future_key"; actual: it is gone. */
    json_t *o = base_json();
    json_object_set_new(disk0(o), "zz_future_key", json_string("cairn-0001"));
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    CairnManifest *m = parse_ok(text);
    free(text);
    size_t len;
    char *rewritten = cairn_manifest_to_json(m, &len);
    gboolean kept = strstr(rewritten, "\"zz_future_key\":\"cairn-0001\"") != NULL;
    free(rewritten);
    cairn_manifest_free(m); /* all freed before the verdict: a failing test longjmps */
    if (!kept)
        fail_msg("disk key 'zz_future_key' was lost in a rewrite");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_full),
        cmocka_unit_test(test_roundtrip_minimal),
        cmocka_unit_test(test_time_is_utc),
        cmocka_unit_test(test_unknown_keys_kept),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_duplicate_disk),
        cmocka_unit_test(test_malformed_ids),
        cmocka_unit_test(test_versions),
    };
    const struct CMUnitTest bugs[] = {
        cmocka_unit_test(regress_unknown_disk_keys_dropped),
    };
    int failed = cmocka_run_group_tests_name("manifest", tests, group_setup, NULL);
    failed += cmocka_run_group_tests_name("manifest-regressions", bugs,
                                          group_setup, NULL);
    return failed;
}
