/* test-s3.c - repo/backends/s3.h pure helpers: query and path encoding, s3://
 * URLs, ISO 8601 times, response parsing and error mapping. The transport is
 * in test-s3-http.c; signatures are libcurl's, verified by a real server. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "repo/backends/s3.h"

/* ---- encoding */

static void
assert_encoded(const char *in, gboolean keep_slash, const char *want)
{
    g_autofree char *got = cairn_s3_uri_encode(in, keep_slash);
    assert_string_equal(got, want);
}

static void
test_uri_encode(void **state)
{
    /* AWS SigV4 test suite "get-vanilla-query-unreserved": all kept */
    const char *unres = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    assert_encoded(unres, FALSE, unres);
    assert_encoded("", FALSE, "");
    assert_encoded("a b/c", FALSE, "a%20b%2Fc");
    assert_encoded("a b/c", TRUE, "a%20b/c");
    assert_encoded("+=&?#%", TRUE, "%2B%3D%26%3F%23%25");
    assert_encoded("!*'()$,;:@", FALSE, "%21%2A%27%28%29%24%2C%3B%3A%40");
    assert_encoded("\xe1\x88\xb4", TRUE, "%E1%88%B4"); /* test suite "get-utf8": /ሴ */
    assert_encoded("\x7f\x01", FALSE, "%7F%01");
}

static char *
query(const CairnS3Param *p, size_t n)
{
    return cairn_s3_query_build(p, n);
}

static void
test_query_build(void **state)
{
    /* test suite "get-vanilla-query-order-key-case" and "-order-value" */
    CairnS3Param a[] = {{"Param2", "value2"}, {"Param1", "value1"}};
    g_autofree char *qa = query(a, 2);
    assert_string_equal(qa, "Param1=value1&Param2=value2");
    CairnS3Param b[] = {{"Param1", "value2"}, {"Param1", "Value1"}};
    g_autofree char *qb = query(b, 2);
    assert_string_equal(qb, "Param1=Value1&Param1=value2");
    /* uppercase sorts before lowercase (byte order), '-' before letters */
    CairnS3Param c[] = {{"prefix", "objects/ab"}, {"max-keys", "1000"}, {"list-type", "2"},
                        {"continuation-token", "1/a+b= c"}};
    g_autofree char *qc = query(c, 4);
    assert_string_equal(qc, "continuation-token=1%2Fa%2Bb%3D%20c&list-type=2&max-keys=1000&"
                            "prefix=objects%2Fab");
    /* valueless parameters become "name=" */
    CairnS3Param d[] = {{"uploads", NULL}, {"prefix", "p/"}, {"upload-id-marker", "x"},
                        {"key-marker", "k"}};
    g_autofree char *qd = query(d, 4);
    assert_string_equal(qd, "key-marker=k&prefix=p%2F&upload-id-marker=x&uploads=");
    CairnS3Param e[] = {{"uploads", NULL}};
    g_autofree char *qe = query(e, 1);
    assert_string_equal(qe, "uploads=");
    g_autofree char *qf = query(NULL, 0);
    assert_string_equal(qf, "");
    /* names are encoded and compared encoded */
    CairnS3Param g[] = {{"b c", "1"}, {"b", "2"}, {"A", "3"}};
    g_autofree char *qg = query(g, 3);
    assert_string_equal(qg, "A=3&b=2&b%20c=1");
}

static void
test_object_paths(void **state)
{
    g_autofree char *o1 = cairn_s3_object_name("some/dir", "objects/ab/ab12");
    assert_string_equal(o1, "some/dir/objects/ab/ab12");
    g_autofree char *o2 = cairn_s3_object_name("", "config");
    assert_string_equal(o2, "config");
    g_autofree char *o3 = cairn_s3_object_name(NULL, "config");
    assert_string_equal(o3, "config");

    g_autofree char *u1 = cairn_s3_request_url("http://h:7480/bkt", TRUE, "p/a b+c/ü", NULL);
    assert_string_equal(u1, "http://h:7480/bkt/p/a%20b%2Bc/%C3%BC");
    g_autofree char *u2 = cairn_s3_request_url("http://h:7480/bkt", TRUE, NULL, "list-type=2");
    assert_string_equal(u2, "http://h:7480/bkt?list-type=2");
    g_autofree char *u3 = cairn_s3_request_url("https://b.s3.amazonaws.com", FALSE, NULL, "");
    assert_string_equal(u3, "https://b.s3.amazonaws.com/");
    g_autofree char *u4 =
        cairn_s3_request_url("https://b.s3.amazonaws.com", FALSE, "k/../x", "uploads=");
    assert_string_equal(u4, "https://b.s3.amazonaws.com/k/../x?uploads=");

    CairnS3Config cfg = {.endpoint = "http://127.0.0.1:7480/", .bucket = "bkt",
                         .path_style = TRUE};
    g_autofree char *b1 = cairn_s3_base_url(&cfg);
    assert_string_equal(b1, "http://127.0.0.1:7480/bkt");
    cfg.endpoint = "https://s3.eu-west-1.amazonaws.com";
    cfg.path_style = FALSE;
    g_autofree char *b2 = cairn_s3_base_url(&cfg);
    assert_string_equal(b2, "https://bkt.s3.eu-west-1.amazonaws.com");
    cfg.endpoint = "http://minio.lan:9000";
    g_autofree char *b3 = cairn_s3_base_url(&cfg);
    assert_string_equal(b3, "http://bkt.minio.lan:9000");
    cfg.endpoint = "not a url";
    assert_null(cairn_s3_base_url(&cfg));
}

static void
test_sha256_parts_backoff(void **state)
{
    char hex[65];
    cairn_s3_sha256_hex("", 0, hex);
    assert_string_equal(hex, CAIRN_S3_EMPTY_SHA256);
    cairn_s3_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    const uint64_t mib = 1 << 20;
    assert_int_equal(cairn_s3_part_size(100 * mib), 50 * mib);
    assert_int_equal(cairn_s3_part_size(64 * mib + 1), 33 * mib);
    assert_int_equal(cairn_s3_part_size(128 * mib), 64 * mib);
    assert_int_equal(cairn_s3_part_size(129 * mib), 43 * mib);
    uint64_t sizes[] = {64 * mib + 1, 100 * mib, 1000 * mib + 7, 640ull << 30, 1ull << 40};
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        uint64_t p = cairn_s3_part_size(sizes[i]);
        assert_true(p >= CAIRN_S3_MIN_PART);
        assert_true(p <= CAIRN_S3_MULTIPART_THRESHOLD ||
                    sizes[i] > (uint64_t) CAIRN_S3_MAX_PARTS * CAIRN_S3_MULTIPART_THRESHOLD);
        assert_true((sizes[i] + p - 1) / p <= CAIRN_S3_MAX_PARTS);
        assert_int_equal(p % mib, 0);
    }

    assert_int_equal(cairn_s3_backoff_cap_us(0), 100000);
    assert_int_equal(cairn_s3_backoff_cap_us(1), 200000);
    assert_int_equal(cairn_s3_backoff_cap_us(5), 3200000);
    assert_int_equal(cairn_s3_backoff_cap_us(6), 5000000);
    assert_int_equal(cairn_s3_backoff_cap_us(1000), 5000000);
}

/* ---- s3:// URLs */

static void
clean_env(void)
{
    const char *vars[] = {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION",
                          "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE", NULL};
    for (size_t i = 0; vars[i]; i++)
        g_unsetenv(vars[i]);
    g_setenv("AWS_ACCESS_KEY_ID", "AKTEST", TRUE);
    g_setenv("AWS_SECRET_ACCESS_KEY", "sktest", TRUE);
}

static void
url_ok(const char *url, CairnS3Config *c)
{
    g_autoptr(GError) error = NULL;
    if (!cairn_s3_config_from_url(url, c, &error))
        fail_msg("'%s' refused: %s", url, error->message);
}

static void
url_bad(const char *url, const char *needle)
{
    CairnS3Config c;
    g_autoptr(GError) error = NULL;
    if (cairn_s3_config_from_url(url, &c, &error))
        fail_msg("'%s' accepted (bucket '%s')", url, c.bucket);
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID));
    if (!strstr(error->message, needle))
        fail_msg("'%s': message '%s' lacks '%s'", url, error->message, needle);
    assert_null(c.bucket);
}

static void
test_url_parse(void **state)
{
    CairnS3Config c;
    clean_env();
    url_ok("s3://bkt/some/dir?endpoint=http://127.0.0.1:7480&region=zg1", &c);
    assert_string_equal(c.bucket, "bkt");
    assert_string_equal(c.prefix, "some/dir");
    assert_string_equal(c.endpoint, "http://127.0.0.1:7480");
    assert_string_equal(c.region, "zg1");
    assert_true(c.path_style);
    assert_string_equal(c.access_key, "AKTEST");
    assert_string_equal(c.secret_key, "sktest");
    assert_null(c.session_token);
    assert_null(c.ca_file);
    assert_false(c.insecure);
    assert_int_equal(c.max_retries, 5);
    cairn_s3_config_clear(&c);
    assert_null(c.bucket);

    /* AWS by default: virtual style, regional endpoint, empty prefix */
    url_ok("s3://my-bucket", &c);
    assert_string_equal(c.endpoint, "https://s3.us-east-1.amazonaws.com");
    assert_string_equal(c.region, "us-east-1");
    assert_string_equal(c.prefix, "");
    assert_false(c.path_style);
    cairn_s3_config_clear(&c);
    url_ok("s3://my-bucket/", &c);
    assert_string_equal(c.prefix, "");
    cairn_s3_config_clear(&c);
    /* dotted buckets break the wildcard certificate: path style */
    url_ok("s3://my.bucket/x", &c);
    assert_true(c.path_style);
    cairn_s3_config_clear(&c);
    /* slashes trimmed, escapes decoded, explicit style wins */
    url_ok("s3://bkt//a%20b/c//?style=path&ca_file=/etc/ca.pem", &c);
    assert_string_equal(c.prefix, "a b/c");
    assert_true(c.path_style);
    assert_string_equal(c.ca_file, "/etc/ca.pem");
    cairn_s3_config_clear(&c);
    url_ok("s3://bkt?endpoint=https://minio.lan:9000/&style=virtual", &c);
    assert_false(c.path_style);
    assert_string_equal(c.endpoint, "https://minio.lan:9000");
    cairn_s3_config_clear(&c);
    url_ok("s3://bkt?endpoint=https%3A%2F%2Fs3.eu-west-1.amazonaws.com", &c);
    assert_false(c.path_style);
    cairn_s3_config_clear(&c);

    /* environment defaults; URL parameters win over them */
    g_setenv("AWS_ENDPOINT_URL", "http://rgw.lan:7480", TRUE);
    g_setenv("AWS_DEFAULT_REGION", "default-r", TRUE);
    g_setenv("AWS_SESSION_TOKEN", "tok", TRUE);
    g_setenv("AWS_CA_BUNDLE", "/ca.pem", TRUE);
    url_ok("s3://bkt/p", &c);
    assert_string_equal(c.endpoint, "http://rgw.lan:7480");
    assert_string_equal(c.region, "default-r");
    assert_string_equal(c.session_token, "tok");
    assert_string_equal(c.ca_file, "/ca.pem");
    assert_true(c.path_style);
    cairn_s3_config_clear(&c);
    g_setenv("AWS_REGION", "r2", TRUE);
    g_setenv("AWS_ENDPOINT_URL_S3", "http://s3only.lan", TRUE);
    url_ok("s3://bkt/p", &c);
    assert_string_equal(c.region, "r2");
    assert_string_equal(c.endpoint, "http://s3only.lan");
    cairn_s3_config_clear(&c);
    url_ok("s3://bkt/p?region=r3&endpoint=http://x.lan", &c);
    assert_string_equal(c.region, "r3");
    assert_string_equal(c.endpoint, "http://x.lan");
    cairn_s3_config_clear(&c);
    /* keys may come from elsewhere (a remote's credentials file) */
    g_unsetenv("AWS_ACCESS_KEY_ID");
    g_unsetenv("AWS_SECRET_ACCESS_KEY");
    url_ok("s3://bkt", &c);
    assert_null(c.access_key);
    assert_null(c.secret_key);
    cairn_s3_config_clear(&c);
    clean_env();
}

static void
test_url_bad(void **state)
{
    clean_env();
    url_bad("http://bkt/p", "must start with s3://");
    url_bad("s3:/bkt", "must start with s3://");
    url_bad("s3://", "no bucket");
    url_bad("s3:///p", "no bucket");
    url_bad("s3://?region=x", "no bucket");
    url_bad("s3://b!x/p", "not a valid bucket name");
    url_bad("s3://bkt?regoin=x", "did you mean 'region'");
    url_bad("s3://bkt?bogus=1", "unknown parameter 'bogus'");
    url_bad("s3://bkt?style=sideways", "style must be");
    url_bad("s3://bkt?endpoint=ftp://h", "not an http:// or https:// URL");
    url_bad("s3://bkt?endpoint=localhost", "not an http:// or https:// URL");
    url_bad("s3://bkt?endpoint=http://h/path", "only scheme://host[:port]");
    url_bad("s3://bkt?endpoint=http://u:p@h", "only scheme://host[:port]");
    url_bad("s3://bkt/a//b", "empty, '.' or '..' part");
    url_bad("s3://bkt/a/../b", "empty, '.' or '..' part");
    url_bad("s3://bkt/a%zz", "bad %-escape");
    url_bad("s3://bkt?region=eu/west", "not a valid region");
    url_bad("s3://bkt?endpoint=http://127.0.0.1:7480&style=virtual", "style=path");
    url_bad("s3://Bkt_1?style=virtual", "style=path");
    clean_env();
}

/* ---- times and bodies */

static void
test_parse_time(void **state)
{
    int64_t t = 42;
    assert_true(cairn_s3_parse_time("1970-01-01T00:00:00Z", &t));
    assert_int_equal(t, 0);
    assert_true(cairn_s3_parse_time("2024-02-29T12:34:56.789Z", &t));
    assert_int_equal(t, 1709210096);
    assert_true(cairn_s3_parse_time("2006-02-03T16:45:09.000Z", &t));
    assert_int_equal(t, 1138985109);
    assert_true(cairn_s3_parse_time("2100-03-01T00:00:00Z", &t));
    assert_int_equal(t, 4107542400);
    assert_true(cairn_s3_parse_time("1969-12-31T23:59:59Z", &t));
    assert_int_equal(t, -1);
    assert_true(cairn_s3_parse_time("2024-02-29T14:34:56+02:00", &t));
    assert_int_equal(t, 1709210096);
    assert_true(cairn_s3_parse_time("2024-02-29T11:04:56-0130", &t));
    assert_int_equal(t, 1709210096);
    const char *bad[] = {"", "2024", "2023-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
                         "2024-13-01T00:00:00Z", "2024-04-31T00:00:00Z",
                         "2024-01-01T24:00:00Z", "2024-01-01T00:00:00", "2024-01-01 00:00:00Z",
                         "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00Zjunk",
                         "2024-1-01T00:00:00Z", "2024-01-01T00:00:00+2:00", NULL};
    for (size_t i = 0; bad[i]; i++) {
        t = 42;
        if (cairn_s3_parse_time(bad[i], &t))
            fail_msg("'%s' accepted as %" G_GINT64_FORMAT, bad[i], t);
    }
    assert_false(cairn_s3_parse_time(NULL, &t));
}

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

static const char list_page1[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult " NS "><Name>bkt</Name><Prefix>pre/objects/</Prefix>"
    "<KeyCount>3</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>tok/1+=</NextContinuationToken>"
    "<Contents><Key>pre/objects/ab/ab12</Key><LastModified>2024-02-29T12:34:56.789Z"
    "</LastModified><ETag>&quot;x&quot;</ETag><Size>4096</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>pre/objects/a&amp;b</Key><LastModified>1970-01-01T00:00:01Z</LastModified>"
    "<Size>0</Size></Contents>"
    "<Contents><Key>elsewhere/x</Key><LastModified>1970-01-01T00:00:01Z</LastModified>"
    "<Size>1</Size></Contents>"
    "</ListBucketResult>";

static const char list_page2[] =
    "<ListBucketResult><IsTruncated>false</IsTruncated>"
    "<Contents><Key>pre/objects/cd/cd34</Key><LastModified>2006-02-03T16:45:09.000Z"
    "</LastModified><Size>18446744073709551615</Size></Contents></ListBucketResult>";

static const char list_empty[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult " NS "><Name>bkt</Name>"
    "<Prefix>nothing/</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
    "<IsTruncated>false</IsTruncated></ListBucketResult>";

static GPtrArray *
entries(void)
{
    return g_ptr_array_new_with_free_func((GDestroyNotify) cairn_backend_entry_free);
}

static void
test_parse_list(void **state)
{
    g_autoptr(GPtrArray) out = entries();
    gboolean truncated = FALSE;
    g_autofree char *token = NULL;
    g_autoptr(GError) error = NULL;
    assert_true(cairn_s3_parse_list(list_page1, strlen(list_page1), "pre/", out, &truncated,
                                    &token, &error));
    assert_true(truncated);
    assert_string_equal(token, "tok/1+=");
    assert_int_equal(out->len, 2); /* elsewhere/x is not under the prefix */
    CairnBackendEntry *e = out->pdata[0];
    assert_string_equal(e->key, "objects/ab/ab12");
    assert_int_equal(e->size, 4096);
    assert_int_equal(e->mtime, 1709210096);
    e = out->pdata[1];
    assert_string_equal(e->key, "objects/a&b");
    assert_int_equal(e->size, 0);
    assert_int_equal(e->mtime, 1);

    g_clear_pointer(&token, g_free);
    assert_true(cairn_s3_parse_list(list_page2, strlen(list_page2), "pre/", out, &truncated,
                                    &token, &error));
    assert_false(truncated);
    assert_null(token);
    assert_int_equal(out->len, 3);
    e = out->pdata[2];
    assert_string_equal(e->key, "objects/cd/cd34");
    assert_true(e->size == G_MAXUINT64);

    g_autoptr(GPtrArray) none = entries();
    assert_true(cairn_s3_parse_list(list_empty, strlen(list_empty), "", none, &truncated,
                                    &token, &error));
    assert_int_equal(none->len, 0);
    assert_false(truncated);
}

static void
test_parse_list_malformed(void **state)
{
    const char *bad[] = {
        "", "not xml at all", "<ListBucketResult><Contents><Key>a</Key>", /* cut short */
        "<Error><Code>NoSuchBucket</Code></Error>",
        "<ListBucketResult><Contents><LastModified>2024-01-01T00:00:00Z</LastModified>"
        "<Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size><LastModified>"
        "2024-01-01T00:00:00Z</LastModified></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a</Key><Size>1</Size><LastModified>yesterday"
        "</LastModified></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
        "<ListBucketResult><Contents><Key>&e;</Key></Contents></ListBucketResult>",
        NULL};
    for (size_t i = 0; bad[i]; i++) {
        g_autoptr(GPtrArray) out = entries();
        gboolean truncated = 7;
        char *token = NULL;
        g_autoptr(GError) error = NULL;
        if (cairn_s3_parse_list(bad[i], strlen(bad[i]), "", out, &truncated, &token, &error))
            fail_msg("listing %zu accepted: %s", i, bad[i]);
        assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID));
        assert_non_null(strstr(error->message, "malformed object listing"));
        assert_int_equal(out->len, 0); /* nothing half-appended */
        assert_null(token);
    }
}

static void
test_parse_other_bodies(void **state)
{
    const char init[] = "<?xml version=\"1.0\"?><InitiateMultipartUploadResult " NS
                        "><Bucket>b</Bucket><Key>k</Key><UploadId>2~abc</UploadId>"
                        "</InitiateMultipartUploadResult>";
    g_autofree char *id = cairn_s3_parse_upload_id(init, strlen(init));
    assert_string_equal(id, "2~abc");
    assert_null(cairn_s3_parse_upload_id("<x/>", 4));
    assert_null(cairn_s3_parse_upload_id("<Init", 5));

    const char ups[] =
        "<ListMultipartUploadsResult " NS "><IsTruncated>true</IsTruncated>"
        "<NextKeyMarker>p/k2</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>"
        "<Upload><Key>p/k1</Key><UploadId>u1</UploadId><Initiated>1970-01-01T00:01:00.000Z"
        "</Initiated></Upload></ListMultipartUploadsResult>";
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify) cairn_s3_upload_free);
    gboolean truncated = FALSE;
    g_autofree char *nk = NULL, *nu = NULL;
    g_autoptr(GError) error = NULL;
    assert_true(cairn_s3_parse_uploads(ups, strlen(ups), out, &truncated, &nk, &nu, &error));
    assert_true(truncated);
    assert_string_equal(nk, "p/k2");
    assert_string_equal(nu, "u2");
    assert_int_equal(out->len, 1);
    CairnS3Upload *u = out->pdata[0];
    assert_string_equal(u->key, "p/k1");
    assert_string_equal(u->upload_id, "u1");
    assert_int_equal(u->initiated, 60);
    assert_false(cairn_s3_parse_uploads("junk", 4, out, &truncated, &nk, &nu, &error));

    g_autoptr(GPtrArray) etags = g_ptr_array_new();
    g_ptr_array_add(etags, "\"e1\"");
    g_ptr_array_add(etags, "\"e<2\"");
    g_autofree char *xml = cairn_s3_complete_xml(etags);
    assert_non_null(strstr(xml, "<Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag>"));
    assert_non_null(strstr(xml, "<PartNumber>2</PartNumber><ETag>&quot;e&lt;2&quot;</ETag>"));
}

/* ---- error bodies and what they mean */

static GError *
error_for(long status, const char *body)
{
    CairnS3ErrorContext ctx = {"cannot get 'k' from s3://bkt/p", "http://127.0.0.1:7480", "bkt",
                               "AK1", 6};
    g_autofree char *code = NULL, *message = NULL;
    cairn_s3_parse_error(body, body ? strlen(body) : 0, &code, &message);
    return cairn_s3_error_new(&ctx, status, code, message);
}

static void
expect_error(long status, const char *code, int want, const char *needle)
{
    g_autofree char *body =
        code ? g_strdup_printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
                               "<Message>some text</Message><RequestId>tx1</RequestId></Error>",
                               code)
             : NULL;
    g_autoptr(GError) e = error_for(status, body);
    if (!g_error_matches(e, CAIRN_BACKEND_ERROR, want))
        fail_msg("HTTP %ld %s: code %d, want %d (%s)", status, code, e->code, want, e->message);
    if (!strstr(e->message, needle))
        fail_msg("HTTP %ld %s: '%s' lacks '%s'", status, code, e->message, needle);
    assert_true(g_str_has_prefix(e->message, "cannot get 'k' from s3://bkt/p: "));
}

static void
test_error_mapping(void **state)
{
    expect_error(403, "SignatureDoesNotMatch", CAIRN_BACKEND_ERROR_PERMISSION,
                 "secret key does not match for access key 'AK1' at http://127.0.0.1:7480");
    expect_error(403, "InvalidAccessKeyId", CAIRN_BACKEND_ERROR_PERMISSION,
                 "access key 'AK1' is not known at http://127.0.0.1:7480");
    expect_error(403, "AccessDenied", CAIRN_BACKEND_ERROR_PERMISSION, "access denied by");
    expect_error(404, "NoSuchBucket", CAIRN_BACKEND_ERROR_INVALID,
                 "bucket 'bkt' does not exist at http://127.0.0.1:7480");
    expect_error(403, "RequestTimeTooSkewed", CAIRN_BACKEND_ERROR_PERMISSION,
                 "the clock of this host is off by more than 15 minutes from "
                 "http://127.0.0.1:7480's: fix the time (NTP)");
    expect_error(403, "QuotaExceeded", CAIRN_BACKEND_ERROR_NOSPACE, "no space left");
    expect_error(400, "EntityTooLarge", CAIRN_BACKEND_ERROR_NOSPACE, "no space left");
    expect_error(507, NULL, CAIRN_BACKEND_ERROR_NOSPACE, "HTTP 507");
    expect_error(404, "NoSuchKey", CAIRN_BACKEND_ERROR_NOT_FOUND, "no such key");
    expect_error(400, "ExpiredToken", CAIRN_BACKEND_ERROR_PERMISSION, "AWS_SESSION_TOKEN");
    expect_error(400, "AuthorizationHeaderMalformed", CAIRN_BACKEND_ERROR_INVALID, "region=");
    expect_error(503, "SlowDown", CAIRN_BACKEND_ERROR_NETWORK,
                 "(HTTP 503 SlowDown: some text) after 6 attempts");
    expect_error(400, "InvalidArgument", CAIRN_BACKEND_ERROR_INVALID,
                 "rejected the request (HTTP 400 InvalidArgument: some text)");
    expect_error(409, "BucketNotEmpty", CAIRN_BACKEND_ERROR_IO, "HTTP 409 BucketNotEmpty");
    /* no usable body: the status decides */
    expect_error(404, NULL, CAIRN_BACKEND_ERROR_NOT_FOUND, "no such key");
    expect_error(403, NULL, CAIRN_BACKEND_ERROR_PERMISSION, "(HTTP 403)");
    expect_error(500, NULL, CAIRN_BACKEND_ERROR_NETWORK, "(HTTP 500)");
    const char *junk[] = {"", "<Error>", "<Error><Code></Code></Error>", "<html>502</html>",
                          "\x01\x02\xff", "<Error><Message>m</Message></Error>", NULL};
    for (size_t i = 0; junk[i]; i++) {
        char *code = (char *) "unset", *message = (char *) "unset";
        assert_false(cairn_s3_parse_error(junk[i], strlen(junk[i]), &code, &message));
        assert_string_equal(code, "unset");
        g_autoptr(GError) e = error_for(502, junk[i]);
        assert_true(g_error_matches(e, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NETWORK));
        assert_non_null(strstr(e->message, "(HTTP 502)"));
    }
    assert_false(cairn_s3_parse_error(NULL, 0, NULL, NULL));
    /* RGW sends empty messages */
    g_autofree char *code = NULL, *message = NULL;
    const char rgw[] = "<Error><Code>InvalidBucketName</Code><Message></Message></Error>";
    assert_true(cairn_s3_parse_error(rgw, strlen(rgw), &code, &message));
    assert_string_equal(code, "InvalidBucketName");
    assert_null(message);
}

static void
test_retryable(void **state)
{
    long yes_status[] = {500, 502, 503, 504};
    for (size_t i = 0; i < G_N_ELEMENTS(yes_status); i++)
        assert_true(cairn_s3_retryable(yes_status[i], NULL));
    assert_true(cairn_s3_retryable(503, "SlowDown"));
    assert_true(cairn_s3_retryable(400, "RequestTimeout"));
    assert_true(cairn_s3_retryable(200, "InternalError"));
    assert_true(cairn_s3_retryable(409, "ConditionalRequestConflict"));
    const char *no[] = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied",
                        "NoSuchKey", "NoSuchBucket", "RequestTimeTooSkewed", NULL};
    for (size_t i = 0; no[i]; i++)
        assert_false(cairn_s3_retryable(403, no[i]));
    assert_false(cairn_s3_retryable(404, NULL));
    assert_false(cairn_s3_retryable(412, NULL));
    assert_false(cairn_s3_retryable(409, "BucketNotEmpty"));
    assert_false(cairn_s3_retryable(507, NULL));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_query_build),
        cmocka_unit_test(test_object_paths),
        cmocka_unit_test(test_sha256_parts_backoff),
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_url_bad),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_parse_list),
        cmocka_unit_test(test_parse_list_malformed),
        cmocka_unit_test(test_parse_other_bodies),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_retryable),
    };
    return cmocka_run_group_tests_name("s3", tests, NULL, NULL);
}
