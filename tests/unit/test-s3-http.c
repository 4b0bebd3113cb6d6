/* test-s3-http.c - the S3 backend's transport against a scripted HTTP/1.1
 * server on 127.0.0.1: request lines and signed headers, retries and their
 * limits, truncated bodies, conditional puts, listing pages, error mapping at
 * open, per-thread handles. The server does not verify signatures (Ceph RGW
 * does, in the manual driver). */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "repo/backends/s3.h"

static const char list_empty[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazon"
    "aws.com/doc/2006-03-01/\"><Name>bkt</Name><KeyCount>0</KeyCount><IsTruncated>false"
    "</IsTruncated></ListBucketResult>";

static const char list_page1[] =
    "<ListBucketResult><IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>tok/1+=</NextContinuationToken>"
    "<Contents><Key>pre/objects/ab/ab12</Key><LastModified>2024-02-29T12:34:56.789Z"
    "</LastModified><Size>4096</Size></Contents>"
    "<Contents><Key>pre/objects/a&amp;b</Key><LastModified>1970-01-01T00:00:01Z</LastModified>"
    "<Size>0</Size></Contents></ListBucketResult>";

static const char list_page2[] =
    "<ListBucketResult><IsTruncated>false</IsTruncated>"
    "<Contents><Key>pre/objects/cd/cd34</Key><LastModified>2006-02-03T16:45:09.000Z"
    "</LastModified><Size>7</Size></Contents></ListBucketResult>";

/* ---- the scripted server */

typedef struct {
    int fd, port;
    GThread *thread;
    GMutex lock;
    GQueue script;       /* char* raw responses, one per connection */
    GPtrArray *requests; /* char* raw requests */
    gint stop;
} Fake;

static char *
http(int status, const char *body)
{
    return g_strdup_printf("HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n"
                           "Content-Type: application/xml\r\n\r\n%s",
                           status, strlen(body), body);
}

static char *
s3err(int status, const char *code)
{
    g_autofree char *body = g_strdup_printf("<Error><Code>%s</Code><Message>m</Message></Error>",
                                            code);
    return http(status, body);
}

static void
write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t) n;
    }
}

static void
serve_one(Fake *f, int c)
{
    GString *req = g_string_new(NULL);
    char buf[16384];
    ssize_t n = 0;
    while (!strstr(req->str, "\r\n\r\n") && (n = read(c, buf, sizeof buf)) > 0)
        g_string_append_len(req, buf, n);
    const char *end = strstr(req->str, "\r\n\r\n");
    g_autofree char *head = g_ascii_strdown(req->str, end ? end - req->str : (gssize) req->len);
    const char *cl = strstr(head, "\r\ncontent-length:");
    size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
    size_t have = end ? req->len - (size_t) (end + 4 - req->str) : 0;
    if (strstr(head, "\r\nexpect: 100-continue"))
        write_all(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    while (have < want && (n = read(c, buf, sizeof buf)) > 0) {
        g_string_append_len(req, buf, n);
        have += (size_t) n;
    }
    g_mutex_lock(&f->lock);
    g_ptr_array_add(f->requests, g_string_free(req, FALSE));
    char *resp = g_queue_pop_head(&f->script);
    g_mutex_unlock(&f->lock);
    if (!resp)
        resp = http(500, "<Error><Code>TestScriptEmpty</Code></Error>");
    write_all(c, resp, strlen(resp));
    g_free(resp);
    shutdown(c, SHUT_WR);
    close(c);
}

static gpointer
fake_main(gpointer data)
{
    Fake *f = data;
    while (!g_atomic_int_get(&f->stop)) {
        struct pollfd pfd = {f->fd, POLLIN, 0};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        int c = accept(f->fd, NULL, NULL);
        if (c >= 0)
            serve_one(f, c);
    }
    return NULL;
}

/* responses: NULL-terminated, owned */
static Fake *
fake_new(char *first, ...)
{
    Fake *f = g_new0(Fake, 1);
    g_mutex_init(&f->lock);
    g_queue_init(&f->script);
    f->requests = g_ptr_array_new_with_free_func(g_free);
    va_list ap;
    va_start(ap, first);
    for (char *r = first; r; r = va_arg(ap, char *))
        g_queue_push_tail(&f->script, r);
    va_end(ap);
    f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(f->fd, (struct sockaddr *) &a, sizeof a), 0);
    assert_int_equal(listen(f->fd, 64), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *) &a, &len), 0);
    f->port = ntohs(a.sin_port);
    f->thread = g_thread_new("fake-s3", fake_main, f);
    return f;
}

static void
fake_push(Fake *f, char *resp)
{
    g_mutex_lock(&f->lock);
    g_queue_push_tail(&f->script, resp);
    g_mutex_unlock(&f->lock);
}

static const char *
fake_request(Fake *f, guint i)
{
    if (i >= f->requests->len)
        fail_msg("request %u never came (%u seen)", i, f->requests->len);
    return f->requests->pdata[i];
}

static void
fake_free(Fake *f)
{
    g_atomic_int_set(&f->stop, 1);
    g_thread_join(f->thread);
    close(f->fd);
    g_queue_clear_full(&f->script, g_free);
    g_ptr_array_unref(f->requests);
    g_mutex_clear(&f->lock);
    g_free(f);
}

static CairnBackend *
fake_backend(int port, const char *prefix, guint retries, GError **error)
{
    g_autofree char *ep = g_strdup_printf("http://127.0.0.1:%d", port);
    CairnS3Config cfg = {.endpoint = ep, .region = "zg1", .bucket = "bkt",
                         .prefix = (char *) prefix, .path_style = TRUE, .access_key = "AKTEST",
                         .secret_key = "sktest", .session_token = "tok",
                         .max_retries = retries};
    return cairn_backend_s3_new(&cfg, error);
}

static CairnBackend *
fake_open(Fake *f, const char *prefix, guint retries)
{
    g_autoptr(GError) error = NULL;
    CairnBackend *b = fake_backend(f->port, prefix, retries, &error);
    if (!b)
        fail_msg("cannot open the fake bucket: %s", error->message);
    return b;
}

#define EMPTY http(200, list_empty)

static void
test_transport_get(void **state)
{
    Fake *f = fake_new(EMPTY, http(200, "hello"), NULL);
    g_autoptr(CairnBackend) b = fake_open(f, "pre/fix", 0);
    assert_string_equal(b->location, "s3://bkt/pre/fix");
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) v = cairn_backend_get(b, "a b", &error);
    assert_non_null(v);
    assert_int_equal(g_bytes_get_size(v), 5);
    assert_memory_equal(g_bytes_get_data(v, NULL), "hello", 5);
    assert_int_equal(cairn_backend_s3_requests(b), 2);
    const char *probe = fake_request(f, 0), *get = fake_request(f, 1);
    assert_true(g_str_has_prefix(probe, "GET /bkt?list-type=2&max-keys=1&prefix=pre%2Ffix%2F "));
    assert_true(g_str_has_prefix(get, "GET /bkt/pre/fix/a%20b HTTP/1.1\r\n"));
    assert_non_null(strstr(get, "\r\nx-amz-content-sha256: " CAIRN_S3_EMPTY_SHA256 "\r\n"));
    assert_non_null(strstr(get, "\r\nx-amz-security-token: tok\r\n"));
    assert_non_null(strstr(get, "Authorization: AWS4-HMAC-SHA256 Credential=AKTEST/"));
    assert_non_null(strstr(get, "/zg1/s3/aws4_request, SignedHeaders=host;"
                                "x-amz-content-sha256;x-amz-date;x-amz-security-token, "));
    fake_free(f);
}

static void
test_transport_retries(void **state)
{
    Fake *f = fake_new(EMPTY, s3err(503, "SlowDown"), http(500, ""), s3err(400, "RequestTimeout"),
                       http(200, "x"), NULL);
    g_autoptr(CairnBackend) b = fake_open(f, "", 3);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) v = cairn_backend_get(b, "k", &error);
    assert_non_null(v);
    assert_int_equal(cairn_backend_s3_requests(b), 5);
    /* authentication errors are final */
    fake_push(f, s3err(403, "SignatureDoesNotMatch"));
    assert_null(cairn_backend_get(b, "k", &error));
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_PERMISSION));
    assert_non_null(strstr(error->message, "secret key does not match for access key 'AKTEST'"));
    assert_int_equal(cairn_backend_s3_requests(b), 6);
    g_clear_error(&error);
    /* truncated bodies are retried, then an IO error */
    const char trunc[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nshort";
    for (int i = 0; i < 4; i++)
        fake_push(f, g_strdup(trunc));
    assert_null(cairn_backend_get(b, "k", &error));
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO));
    assert_non_null(strstr(error->message, "truncated"));
    assert_int_equal(cairn_backend_s3_requests(b), 10);
    g_clear_error(&error);
    /* 5xx after all retries: NETWORK, malformed error bodies included */
    for (int i = 0; i < 4; i++)
        fake_push(f, http(503, i % 2 ? "<Error><Code>Slow" : "<html>busy</html>"));
    assert_null(cairn_backend_get(b, "k", &error));
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NETWORK));
    assert_non_null(strstr(error->message, "after 4 attempts"));
    fake_free(f);
}

static void
test_transport_put(void **state)
{
    Fake *f = fake_new(EMPTY, http(200, ""), s3err(412, "PreconditionFailed"),
                       s3err(409, "ConditionalRequestConflict"), http(200, ""), http(200, ""),
                       s3err(507, "InsufficientStorage"), NULL);
    g_autoptr(CairnBackend) b = fake_open(f, "p", 1);
    g_autoptr(GError) error = NULL;
    gboolean created = 7;
    assert_true(cairn_backend_put(b, "k", "abc", 3, CAIRN_PUT_IF_ABSENT, &created, &error));
    assert_true(created);
    assert_true(cairn_backend_put(b, "k", "abc", 3, CAIRN_PUT_IF_ABSENT, &created, &error));
    assert_false(created);
    assert_true(cairn_backend_put(b, "k", "abc", 3, CAIRN_PUT_IF_ABSENT, &created, &error));
    assert_true(created); /* 409 conflict retried */
    assert_true(cairn_backend_put(b, "k", "", 0, CAIRN_PUT_REPLACE, &created, &error));
    assert_true(created);
    assert_false(cairn_backend_put(b, "k", "abc", 3, CAIRN_PUT_REPLACE, &created, &error));
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NOSPACE));
    const char *put = fake_request(f, 1);
    assert_true(g_str_has_prefix(put, "PUT /bkt/p/k HTTP/1.1\r\n"));
    assert_non_null(strstr(put, "\r\nIf-None-Match: *\r\n"));
    assert_non_null(strstr(put, "\r\nx-amz-content-sha256: ba7816bf8f01cfea414140de5dae2223b00"
                                "361a396177a9cb410ff61f20015ad\r\n"));
    assert_non_null(strstr(put, "SignedHeaders=content-type;host;if-none-match;"));
    assert_true(g_str_has_suffix(put, "\r\n\r\nabc"));
    assert_non_null(strstr(fake_request(f, 4), "\r\nIf-None-Match: *\r\n")); /* the retry */
    const char *replace = fake_request(f, 5);
    assert_null(strstr(replace, "If-None-Match"));
    assert_non_null(strstr(replace, "\r\nContent-Length: 0\r\n"));
    assert_non_null(strstr(replace, "x-amz-content-sha256: " CAIRN_S3_EMPTY_SHA256));
    fake_free(f);
}

static void
test_transport_exists_remove(void **state)
{
    Fake *f = fake_new(EMPTY, http(200, ""), http(404, ""), http(204, ""), http(404, ""),
                       s3err(404, "NoSuchBucket"), s3err(404, "NoSuchKey"), NULL);
    g_autoptr(CairnBackend) b = fake_open(f, "", 0);
    g_autoptr(GError) error = NULL;
    gboolean ex = 7;
    assert_true(cairn_backend_exists(b, "k", &ex, &error));
    assert_true(ex);
    assert_true(g_str_has_prefix(fake_request(f, 1), "HEAD /bkt/k HTTP/1.1\r\n"));
    assert_true(cairn_backend_exists(b, "k", &ex, &error));
    assert_false(ex);
    assert_true(cairn_backend_remove(b, "k", &error));
    assert_true(g_str_has_prefix(fake_request(f, 3), "DELETE /bkt/k HTTP/1.1\r\n"));
    assert_true(cairn_backend_remove(b, "k", &error)); /* missing: fine */
    assert_false(cairn_backend_remove(b, "k", &error));
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID));
    g_clear_error(&error);
    assert_null(cairn_backend_get(b, "k", &error));
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NOT_FOUND));
    assert_true(cairn_backend_flush(b, NULL));
    fake_free(f);
}

static void
test_transport_list(void **state)
{
    Fake *f = fake_new(EMPTY, http(200, list_page1), http(200, list_page2), http(200, "junk"),
                       NULL);
    g_autoptr(CairnBackend) b = fake_open(f, "pre", 0);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) l = cairn_backend_list(b, "objects/", &error);
    assert_non_null(l);
    assert_int_equal(l->len, 3);
    assert_string_equal(((CairnBackendEntry *) l->pdata[2])->key, "objects/cd/cd34");
    assert_true(g_str_has_prefix(fake_request(f, 1), "GET /bkt?list-type=2&max-keys=1000&"
                                                     "prefix=pre%2Fobjects%2F HTTP/1.1\r\n"));
    assert_true(g_str_has_prefix(fake_request(f, 2), "GET /bkt?continuation-token=tok%2F1%2B%3D&"
                                                     "list-type=2&max-keys=1000&prefix=pre%2F"
                                                     "objects%2F HTTP/1.1\r\n"));
    assert_null(cairn_backend_list(b, "", &error));
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO));
    assert_non_null(strstr(error->message, "malformed object listing"));
    fake_free(f);
}

static void
test_transport_open_errors(void **state)
{
    Fake *f = fake_new(s3err(404, "NoSuchBucket"), s3err(403, "InvalidAccessKeyId"), NULL);
    g_autoptr(GError) error = NULL;
    assert_null(fake_backend(f->port, "", 3, &error));
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID));
    assert_non_null(strstr(error->message, "cannot open repository 's3://bkt': bucket 'bkt' "
                                           "does not exist at http://127.0.0.1:"));
    g_clear_error(&error);
    assert_null(fake_backend(f->port, "", 3, &error));
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_PERMISSION));
    assert_int_equal(f->requests->len, 2); /* neither retried */
    g_clear_error(&error);
    int port = f->port;
    fake_free(f);
    assert_null(fake_backend(port, "", 1, &error)); /* nothing listens there now */
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NETWORK));
    assert_non_null(strstr(error->message, "(2 attempts): check that the endpoint"));
    g_clear_error(&error);
    CairnS3Config bad = {.endpoint = "ftp:", .bucket = "b", .access_key = "a", .secret_key = "s"};
    assert_null(cairn_backend_s3_new(&bad, &error));
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID));
    assert_non_null(strstr(error->message, "'s3://b': the endpoint is not an http://"));
    g_clear_error(&error);
    CairnS3Config nokey = {.endpoint = "http://127.0.0.1:1", .bucket = "b"};
    assert_null(cairn_backend_s3_new(&nokey, &error));
    assert_true(g_error_matches(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID));
    assert_non_null(strstr(error->message, "no credentials: set AWS_ACCESS_KEY_ID"));
}

typedef struct {
    CairnBackend *b;
    GMutex *lock;
    GCond *cond;
    int *done;
    gboolean *freed; /* NULL: exit at once */
    gboolean ok;
} Worker;

static gpointer
worker(gpointer data)
{
    Worker *w = data;
    for (int i = 0; i < 5; i++) {
        g_autoptr(GBytes) v = cairn_backend_get(w->b, "k", NULL);
        w->ok = w->ok && v && g_bytes_get_size(v) == 1;
    }
    g_mutex_lock(w->lock);
    (*w->done)++;
    g_cond_broadcast(w->cond);
    while (w->freed && !*w->freed) /* exit only after the backend is gone */
        g_cond_wait(w->cond, w->lock);
    g_mutex_unlock(w->lock);
    return NULL;
}

static void
test_transport_threads(void **state)
{
    Fake *f = fake_new(EMPTY, NULL);
    for (int i = 0; i < 40; i++)
        fake_push(f, http(200, "x"));
    CairnBackend *b = fake_open(f, "", 0);
    GMutex lock;
    GCond cond;
    gboolean freed = FALSE;
    int done = 0;
    g_mutex_init(&lock);
    g_cond_init(&cond);
    Worker w[8];
    GThread *t[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (Worker){b, &lock, &cond, &done, i < 4 ? NULL : &freed, TRUE};
        t[i] = g_thread_new("s3-worker", worker, &w[i]);
    }
    for (int i = 0; i < 4; i++) /* these release their handles while the backend lives */
        g_thread_join(t[i]);
    g_mutex_lock(&lock);
    while (done < 8)
        g_cond_wait(&cond, &lock);
    g_mutex_unlock(&lock);
    assert_int_equal(cairn_backend_s3_requests(b), 41);
    cairn_backend_free(b);
    g_mutex_lock(&lock);
    freed = TRUE;
    g_cond_broadcast(&cond);
    g_mutex_unlock(&lock);
    for (int i = 4; i < 8; i++)
        g_thread_join(t[i]);
    for (int i = 0; i < 8; i++)
        assert_true(w[i].ok);
    g_mutex_clear(&lock);
    g_cond_clear(&cond);
    fake_free(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transport_get),
        cmocka_unit_test(test_transport_retries),
        cmocka_unit_test(test_transport_put),
        cmocka_unit_test(test_transport_exists_remove),
        cmocka_unit_test(test_transport_list),
        cmocka_unit_test(test_transport_open_errors),
        cmocka_unit_test(test_transport_threads),
    };
    return cmocka_run_group_tests_name("s3-http", tests, NULL, NULL);
}
