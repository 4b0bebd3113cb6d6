/* s3.c - a repository in an S3 bucket (AWS, Ceph RGW, MinIO ...).
 *
 * Key K is the object "PREFIX/K". put(IF_ABSENT) is a PUT with
 * "If-None-Match: *" (412: someone stored it first); values above 64 MiB go
 * up as a multipart upload. A completed PUT is durable, so flush() has
 * nothing to do; cleanup() aborts multipart uploads left by crashed writers.
 *
 * Connections: each thread has its own CURL easy handle per backend (a
 * GPrivate table keyed by backend id); all handles of a backend share one
 * connection and DNS cache (CURLSH). The backend owns the handles: freeing
 * it cleans them all up; a thread that exits first releases its own.
 *
 * Retries: network failures, 5xx, SlowDown & co and truncated bodies are
 * retried up to max_retries times with full-jitter exponential backoff.
 * Authentication errors are never retried. */
#include "config.h"

#include <stdatomic.h>
#include <string.h>

#include <curl/curl.h>
#include <libxml/parser.h>

#include "common/util.h"
#include "repo/backends/s3.h"

typedef struct {
    gatomicrefcount ref;
    GMutex lock;
    GHashTable *conns; /* S3Conn* set, while the backend lives */
    gboolean closed;
} S3Core;

typedef struct {
    guint64 backend_id; /* key in the thread's table */
    S3Core *core;
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
} S3Conn;

typedef struct {
    CairnBackend base;
    CairnS3Config cfg;
    guint64 id;
    char *base_url;
    char *sigv4;        /* "aws:amz:REGION:s3" */
    char *token_header; /* "x-amz-security-token: ..." or NULL */
    char *strip;        /* "PREFIX/" or "" */
    CURLSH *share;
    GMutex share_locks[CURL_LOCK_DATA_LAST];
    S3Core *core;
    atomic_uint_fast64_t requests;
} CairnS3Backend;

typedef struct {
    const char *method;   /* GET HEAD PUT POST DELETE */
    const char *object;   /* NULL: the bucket */
    const char *query;    /* canonical (cairn_s3_query_build) or NULL */
    const void *body;     /* PUT, POST */
    size_t len;
    const char *content_type;
    gboolean if_none_match;
    gboolean error_in_200; /* CompleteMultipartUpload may fail with 200 + <Error> */
    const char *what;      /* "cannot get 'k' from s3://b/p" */
} S3Request;

typedef struct {
    long status;
    GByteArray *body;
    char *etag;
    char *code, *message; /* from an <Error> body */
    guint attempts;
} S3Response;

static void
s3_response_clear(S3Response *r)
{
    if (r->body)
        g_byte_array_unref(r->body);
    g_free(r->etag);
    g_free(r->code);
    g_free(r->message);
    memset(r, 0, sizeof *r);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(S3Response, s3_response_clear)

static CairnS3Backend *
as_s3(CairnBackend *b)
{
    g_assert(b->ops->kind && !strcmp(b->ops->kind, "s3"));
    return (CairnS3Backend *) b;
}

static gboolean
status_ok(const S3Response *r)
{
    return r->status >= 200 && r->status < 300 && !r->code;
}

static GError *
response_error(CairnS3Backend *s, const S3Request *req, const S3Response *r)
{
    CairnS3ErrorContext ctx = {req->what, s->cfg.endpoint, s->cfg.bucket, s->cfg.access_key,
                               r->attempts};
    return cairn_s3_error_new(&ctx, r->status, r->code, r->message);
}

/* ---- per-thread handles */

static S3Core *
core_ref(S3Core *c)
{
    g_atomic_ref_count_inc(&c->ref);
    return c;
}

static void
core_unref(S3Core *c)
{
    if (!g_atomic_ref_count_dec(&c->ref))
        return;
    g_hash_table_unref(c->conns);
    g_mutex_clear(&c->lock);
    g_free(c);
}

/* value destructor of the thread tables */
static void
conn_release(gpointer data)
{
    S3Conn *c = data;
    g_mutex_lock(&c->core->lock);
    if (!c->core->closed) { /* else the backend cleaned the handle up already */
        g_hash_table_remove(c->core->conns, c);
        curl_easy_cleanup(c->curl);
    }
    g_mutex_unlock(&c->core->lock);
    core_unref(c->core);
    g_free(c);
}

static GPrivate s3_thread_conns = G_PRIVATE_INIT((GDestroyNotify) g_hash_table_unref);

static S3Conn *
get_conn(CairnS3Backend *s, GError **error)
{
    GHashTable *t = g_private_get(&s3_thread_conns);
    if (!t) {
        t = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, conn_release);
        g_private_set(&s3_thread_conns, t);
    }
    S3Conn *c = g_hash_table_lookup(t, &s->id);
    if (c)
        return c;
    CURL *h = curl_easy_init();
    if (!h) {
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO,
                    "cannot create a libcurl handle (out of memory?)");
        return NULL;
    }
    curl_easy_setopt(h, CURLOPT_SHARE, s->share);
    c = g_new0(S3Conn, 1);
    c->backend_id = s->id;
    c->core = core_ref(s->core);
    c->curl = h;
    g_mutex_lock(&s->core->lock);
    g_hash_table_add(s->core->conns, c);
    g_mutex_unlock(&s->core->lock);
    g_hash_table_insert(t, &c->backend_id, c);
    return c;
}

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
    CairnS3Backend *s = user;
    g_mutex_lock(&s->share_locks[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *user)
{
    CairnS3Backend *s = user;
    g_mutex_unlock(&s->share_locks[data]);
}

/* ---- one request, with retries */

typedef struct {
    S3Response *resp;
    CURL *curl;
} S3Sink;

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    S3Sink *k = user;
    size_t n = size * nmemb;
    if (k->resp->body->len == 0 && n > 0) {
        curl_off_t cl = -1;
        curl_easy_getinfo(k->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (cl > 0 && cl <= (1 << 30)) /* reserve once; a lying length only costs memory */
            k->resp->body = (g_byte_array_unref(k->resp->body),
                             g_byte_array_sized_new((guint) cl));
    }
    g_byte_array_append(k->resp->body, (const guint8 *) ptr, (guint) n);
    return n;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *user)
{
    S3Sink *k = user;
    size_t n = size * nmemb;
    if (n > 5 && !g_ascii_strncasecmp(ptr, "etag:", 5)) {
        g_free(k->resp->etag);
        k->resp->etag = g_strstrip(g_strndup(ptr + 5, n - 5));
    }
    return n;
}

static gboolean
curl_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return TRUE;
    default:
        return FALSE;
    }
}

static void
setup(CairnS3Backend *s, S3Conn *c, const S3Request *req, const char *url,
      struct curl_slist *headers, S3Sink *sink)
{
    CURL *h = c->curl;
    curl_easy_reset(h); /* keeps the share, live connections and caches */
    c->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, s->cfg.access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, s->cfg.secret_key);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, sink);
    if (s->cfg.ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, s->cfg.ca_file);
    if (s->cfg.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!strcmp(req->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(req->method, "PUT") || !strcmp(req->method, "POST")) {
        /* a memory body (no Expect: 100-continue below 1 MiB, rewindable) */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->len);
        if (!strcmp(req->method, "PUT"))
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    } else if (strcmp(req->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }
}

static struct curl_slist *
make_headers(CairnS3Backend *s, const S3Request *req)
{
    char sha[65];
    if (req->len)
        cairn_s3_sha256_hex(req->body, req->len, sha);
    else
        memcpy(sha, CAIRN_S3_EMPTY_SHA256, sizeof sha);
    /* every header here is signed by libcurl; never add "Name:" removals */
    g_autofree char *hash = g_strdup_printf("x-amz-content-sha256: %s", sha);
    struct curl_slist *l = curl_slist_append(NULL, hash);
    if (s->token_header)
        l = curl_slist_append(l, s->token_header);
    if (req->if_none_match)
        l = curl_slist_append(l, "If-None-Match: *");
    if (req->content_type) {
        g_autofree char *ct = g_strdup_printf("Content-Type: %s", req->content_type);
        l = curl_slist_append(l, ct);
    }
    return l;
}

/* TRUE with resp filled when the server answered (any status: the caller
 * decides); FALSE when retries ran out on network errors, retryable statuses
 * or truncated bodies. */
static gboolean
s3_send(CairnS3Backend *s, const S3Request *req, S3Response *resp, GError **error)
{
    S3Conn *c = get_conn(s, error);
    if (!c)
        return FALSE;
    g_autofree char *url = cairn_s3_request_url(s->base_url, s->cfg.path_style, req->object,
                                                req->query);
    struct curl_slist *headers = make_headers(s, req);
    gboolean head = !strcmp(req->method, "HEAD");
    gboolean ok = FALSE;
    for (guint attempt = 0;; attempt++) {
        if (attempt > 0)
            g_usleep(g_random_int_range(0, (gint32) cairn_s3_backoff_cap_us(attempt - 1) + 1));
        s3_response_clear(resp);
        resp->body = g_byte_array_new();
        resp->attempts = attempt + 1;
        gboolean last = attempt >= s->cfg.max_retries;
        S3Sink sink = {resp, c->curl};
        setup(s, c, req, url, headers, &sink);
        atomic_fetch_add(&s->requests, 1);
        CURLcode rc = curl_easy_perform(c->curl);
        if (rc != CURLE_OK) {
            if (curl_retryable(rc) && !last)
                continue;
            if (rc == CURLE_PARTIAL_FILE) {
                g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO,
                            "%s: the body from %s was truncated: %s (%u attempts): check the "
                            "network or proxy", req->what, s->cfg.endpoint,
                            g_strchomp(c->errbuf), attempt + 1);
                break;
            }
            const char *hint = rc == CURLE_PEER_FAILED_VERIFICATION
                                   ? "check the certificate, or give ca_file="
                                   : "check that the endpoint is reachable";
            g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NETWORK,
                        "%s: %s: %s (%u attempt%s): %s", req->what, s->cfg.endpoint,
                        c->errbuf[0] ? g_strchomp(c->errbuf) : curl_easy_strerror(rc),
                        attempt + 1, attempt ? "s" : "", hint);
            break;
        }
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
        gboolean success = resp->status >= 200 && resp->status < 300;
        if (!success || req->error_in_200)
            cairn_s3_parse_error((const char *) resp->body->data, resp->body->len, &resp->code,
                                 &resp->message);
        if (!success || resp->code) {
            if (cairn_s3_retryable(resp->status, resp->code) && !last)
                continue;
            ok = TRUE; /* an answer: the caller turns it into an error or not */
            break;
        }
        curl_off_t cl = -1;
        curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (!head && cl >= 0 && (curl_off_t) resp->body->len != cl) {
            if (!last)
                continue;
            g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO,
                        "%s: the body from %s was truncated: %u of %" G_GINT64_FORMAT
                        " bytes (%u attempts): check the network or proxy", req->what,
                        s->cfg.endpoint, resp->body->len, (gint64) cl, attempt + 1);
            break;
        }
        ok = TRUE;
        break;
    }
    curl_slist_free_all(headers);
    return ok;
}

/* s3_send + a 2xx check */
static gboolean
s3_call(CairnS3Backend *s, const S3Request *req, S3Response *resp, GError **error)
{
    if (!s3_send(s, req, resp, error))
        return FALSE;
    if (status_ok(resp))
        return TRUE;
    g_propagate_error(error, response_error(s, req, resp));
    return FALSE;
}

/* ---- operations */

static GBytes *
s3_get(CairnBackend *b, const char *key, GError **error)
{
    CairnS3Backend *s = as_s3(b);
    g_autofree char *object = cairn_s3_object_name(s->cfg.prefix, key);
    g_autofree char *what = g_strdup_printf("cannot get '%s' from %s", key, b->location);
    S3Request req = {.method = "GET", .object = object, .what = what};
    g_auto(S3Response) resp = {0};
    if (!s3_call(s, &req, &resp, error))
        return NULL;
    return g_byte_array_free_to_bytes(g_steal_pointer(&resp.body));
}

static gboolean
s3_exists(CairnBackend *b, const char *key, gboolean *ret_exists, GError **error)
{
    CairnS3Backend *s = as_s3(b);
    g_autofree char *object = cairn_s3_object_name(s->cfg.prefix, key);
    g_autofree char *what = g_strdup_printf("cannot check '%s' in %s", key, b->location);
    S3Request req = {.method = "HEAD", .object = object, .what = what};
    g_auto(S3Response) resp = {0};
    if (!s3_send(s, &req, &resp, error))
        return FALSE;
    if (resp.status == 404 || status_ok(&resp)) {
        *ret_exists = resp.status != 404;
        return TRUE;
    }
    g_propagate_error(error, response_error(s, &req, &resp));
    return FALSE;
}

static gboolean
s3_abort_upload(CairnS3Backend *s, const char *object, const char *upload_id, GError **error)
{
    CairnS3Param p[] = {{"uploadId", upload_id}};
    g_autofree char *query = cairn_s3_query_build(p, G_N_ELEMENTS(p));
    g_autofree char *what = g_strdup_printf("cannot abort the upload of '%s' to %s", object,
                                            s->base.location);
    S3Request req = {.method = "DELETE", .object = object, .query = query, .what = what};
    g_auto(S3Response) resp = {0};
    if (!s3_send(s, &req, &resp, error))
        return FALSE;
    if (resp.status == 404 || status_ok(&resp))
        return TRUE;
    g_propagate_error(error, response_error(s, &req, &resp));
    return FALSE;
}

static gboolean
s3_put_parts(CairnS3Backend *s, const char *object, const char *upload_id, const uint8_t *data,
             size_t len, const char *what, GPtrArray *etags, GError **error)
{
    uint64_t part = cairn_s3_part_size(len);
    for (size_t off = 0, n = 1; off < len; off += part, n++) {
        g_autofree char *num = g_strdup_printf("%zu", n);
        CairnS3Param p[] = {{"partNumber", num}, {"uploadId", upload_id}};
        g_autofree char *query = cairn_s3_query_build(p, G_N_ELEMENTS(p));
        S3Request req = {.method = "PUT", .object = object, .query = query, .body = data + off,
                         .len = MIN(part, len - off),
                         .content_type = "application/octet-stream", .what = what};
        g_auto(S3Response) resp = {0};
        if (!s3_call(s, &req, &resp, error))
            return FALSE;
        if (!resp.etag || !*resp.etag) {
            g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO,
                        "%s: %s sent no ETag for part %zu", what, s->cfg.endpoint, n);
            return FALSE;
        }
        g_ptr_array_add(etags, g_steal_pointer(&resp.etag));
    }
    return TRUE;
}

static gboolean
s3_put_multipart(CairnS3Backend *s, const char *key, const char *object, const uint8_t *data,
                 size_t len, CairnPutMode mode, gboolean *ret_created, GError **error)
{
    g_autofree char *what = g_strdup_printf("cannot store '%s' in %s", key, s->base.location);
    if (mode == CAIRN_PUT_IF_ABSENT) {
        /* the early answer; If-None-Match on the completion closes the race where
         * the server honours it (AWS does; Ceph RGW 16 ignores it and overwrites,
         * harmless for content-addressed objects, which are the large ones) */
        gboolean exists = FALSE;
        if (!s3_exists(&s->base, key, &exists, error))
            return FALSE;
        if (exists) {
            *ret_created = FALSE;
            return TRUE;
        }
    }
    S3Request init = {.method = "POST", .object = object, .query = "uploads=",
                      .content_type = "application/octet-stream", .what = what};
    g_auto(S3Response) resp = {0};
    if (!s3_call(s, &init, &resp, error))
        return FALSE;
    g_autofree char *upload_id =
        cairn_s3_parse_upload_id((const char *) resp.body->data, resp.body->len);
    if (!upload_id) {
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO,
                    "%s: %s sent no UploadId for the multipart upload", what, s->cfg.endpoint);
        return FALSE;
    }
    g_autoptr(GPtrArray) etags = g_ptr_array_new_with_free_func(g_free);
    gboolean ok = s3_put_parts(s, object, upload_id, data, len, what, etags, error);
    if (ok) {
        g_autofree char *body = cairn_s3_complete_xml(etags);
        CairnS3Param p[] = {{"uploadId", upload_id}};
        g_autofree char *query = cairn_s3_query_build(p, G_N_ELEMENTS(p));
        S3Request done = {.method = "POST", .object = object, .query = query, .body = body,
                          .len = strlen(body), .content_type = "application/xml",
                          .if_none_match = mode == CAIRN_PUT_IF_ABSENT, .error_in_200 = TRUE,
                          .what = what};
        s3_response_clear(&resp);
        ok = s3_send(s, &done, &resp, error);
        if (ok && resp.status == 412 && mode == CAIRN_PUT_IF_ABSENT) {
            *ret_created = FALSE;
        } else if (ok && status_ok(&resp)) {
            *ret_created = TRUE;
            return TRUE;
        } else if (ok) {
            g_propagate_error(error, response_error(s, &done, &resp));
            ok = FALSE;
        }
    }
    s3_abort_upload(s, object, upload_id, NULL); /* best effort; cleanup() retries later */
    return ok;
}

static gboolean
s3_put(CairnBackend *b, const char *key, const void *data, size_t len, CairnPutMode mode,
       gboolean *ret_created, GError **error)
{
    CairnS3Backend *s = as_s3(b);
    g_autofree char *object = cairn_s3_object_name(s->cfg.prefix, key);
    if (len > CAIRN_S3_MULTIPART_THRESHOLD)
        return s3_put_multipart(s, key, object, data, len, mode, ret_created, error);
    g_autofree char *what = g_strdup_printf("cannot store '%s' in %s", key, b->location);
    S3Request req = {.method = "PUT", .object = object, .body = data, .len = len,
                     .content_type = "application/octet-stream",
                     .if_none_match = mode == CAIRN_PUT_IF_ABSENT, .what = what};
    g_auto(S3Response) resp = {0};
    if (!s3_send(s, &req, &resp, error))
        return FALSE;
    if (resp.status == 412 && mode == CAIRN_PUT_IF_ABSENT) {
        *ret_created = FALSE;
        return TRUE;
    }
    if (!status_ok(&resp)) {
        g_propagate_error(error, response_error(s, &req, &resp));
        return FALSE;
    }
    *ret_created = TRUE;
    return TRUE;
}

/* all pages of ListObjectsV2 under the object prefix full (max_keys: per page) */
static gboolean
s3_list_objects(CairnS3Backend *s, const char *full, guint max_keys, gboolean one_page,
                const char *what, GPtrArray *out, GError **error)
{
    g_autofree char *token = NULL;
    g_autofree char *max = g_strdup_printf("%u", max_keys);
    do {
        CairnS3Param p[] = {{"list-type", "2"}, {"max-keys", max}, {"prefix", full},
                            {"continuation-token", token}};
        g_autofree char *query = cairn_s3_query_build(p, token ? 4 : 3);
        S3Request req = {.method = "GET", .query = query, .what = what};
        g_auto(S3Response) resp = {0};
        if (!s3_call(s, &req, &resp, error))
            return FALSE;
        gboolean truncated = FALSE;
        g_autofree char *next = NULL;
        g_autoptr(GError) perr = NULL;
        if (!cairn_s3_parse_list((const char *) resp.body->data, resp.body->len, s->strip, out,
                                 &truncated, &next, &perr)) {
            g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO, "%s: %s", what,
                        perr->message);
            return FALSE;
        }
        if (truncated && token && !strcmp(next, token)) {
            g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO,
                        "%s: %s repeats the continuation token", what, s->cfg.endpoint);
            return FALSE;
        }
        g_free(token);
        token = truncated && !one_page ? g_steal_pointer(&next) : NULL;
    } while (token);
    return TRUE;
}

static GPtrArray *
s3_list(CairnBackend *b, const char *prefix, GError **error)
{
    CairnS3Backend *s = as_s3(b);
    g_autofree char *full = g_strconcat(s->strip, prefix, NULL);
    g_autofree char *what = g_strdup_printf("cannot list '%s' in %s", prefix, b->location);
    g_autoptr(GPtrArray) out =
        g_ptr_array_new_with_free_func((GDestroyNotify) cairn_backend_entry_free);
    if (!s3_list_objects(s, full, 1000, FALSE, what, out, error))
        return NULL;
    return g_steal_pointer(&out);
}

static gboolean
s3_remove(CairnBackend *b, const char *key, GError **error)
{
    CairnS3Backend *s = as_s3(b);
    g_autofree char *object = cairn_s3_object_name(s->cfg.prefix, key);
    g_autofree char *what = g_strdup_printf("cannot remove '%s' from %s", key, b->location);
    S3Request req = {.method = "DELETE", .object = object, .what = what};
    g_auto(S3Response) resp = {0};
    if (!s3_send(s, &req, &resp, error))
        return FALSE;
    if (status_ok(&resp) || (resp.status == 404 && g_strcmp0(resp.code, "NoSuchBucket")))
        return TRUE;
    g_propagate_error(error, response_error(s, &req, &resp));
    return FALSE;
}

static gboolean
s3_flush(CairnBackend *b, GError **error)
{
    return TRUE; /* a PUT is durable once it returned 200 */
}

/* abort multipart uploads under the prefix started more than max_age ago */
static gboolean
s3_cleanup(CairnBackend *b, int64_t max_age, guint *ret_removed, GError **error)
{
    CairnS3Backend *s = as_s3(b);
    g_autofree char *what = g_strdup_printf("cannot list unfinished uploads in %s", b->location);
    g_autoptr(GPtrArray) uploads =
        g_ptr_array_new_with_free_func((GDestroyNotify) cairn_s3_upload_free);
    g_autofree char *key_marker = NULL, *id_marker = NULL;
    gboolean truncated;
    do {
        CairnS3Param p[] = {{"uploads", NULL}, {"prefix", s->strip},
                            {"key-marker", key_marker}, {"upload-id-marker", id_marker}};
        g_autofree char *query = cairn_s3_query_build(p, key_marker ? 4 : 2);
        S3Request req = {.method = "GET", .query = query, .what = what};
        g_auto(S3Response) resp = {0};
        if (!s3_call(s, &req, &resp, error))
            return FALSE;
        g_autofree char *next_key = NULL, *next_id = NULL;
        g_autoptr(GError) perr = NULL;
        if (!cairn_s3_parse_uploads((const char *) resp.body->data, resp.body->len, uploads,
                                    &truncated, &next_key, &next_id, &perr)) {
            g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO, "%s: %s", what,
                        perr->message);
            return FALSE;
        }
        if (truncated && key_marker && !strcmp(next_key, key_marker) &&
            !g_strcmp0(next_id, id_marker))
            truncated = FALSE; /* no progress: stop rather than loop */
        g_free(key_marker);
        g_free(id_marker);
        key_marker = g_steal_pointer(&next_key);
        id_marker = g_steal_pointer(&next_id);
    } while (truncated);
    int64_t now = cairn_now();
    guint removed = 0;
    for (guint i = 0; i < uploads->len; i++) {
        CairnS3Upload *u = uploads->pdata[i];
        if (now - u->initiated < max_age || !g_str_has_prefix(u->key, s->strip))
            continue;
        if (!s3_abort_upload(s, u->key, u->upload_id, error))
            return FALSE;
        removed++;
    }
    *ret_removed = removed;
    return TRUE;
}

static void
s3_free(CairnBackend *b)
{
    CairnS3Backend *s = as_s3(b);
    GHashTable *t = g_private_get(&s3_thread_conns);
    if (t)
        g_hash_table_remove(t, &s->id); /* this thread's handle, at once */
    g_mutex_lock(&s->core->lock);
    GHashTableIter it;
    gpointer c;
    g_hash_table_iter_init(&it, s->core->conns);
    while (g_hash_table_iter_next(&it, &c, NULL))
        curl_easy_cleanup(((S3Conn *) c)->curl); /* other threads' tables drop theirs later */
    g_hash_table_remove_all(s->core->conns);
    s->core->closed = TRUE;
    g_mutex_unlock(&s->core->lock);
    core_unref(s->core);
    if (s->share)
        curl_share_cleanup(s->share);
    for (guint i = 0; i < G_N_ELEMENTS(s->share_locks); i++)
        g_mutex_clear(&s->share_locks[i]);
    cairn_s3_config_clear(&s->cfg);
    g_free(s->base_url);
    g_free(s->sigv4);
    if (s->token_header)
        explicit_bzero(s->token_header, strlen(s->token_header));
    g_free(s->token_header);
    g_free(s->strip);
    g_free(b->location);
    g_free(s);
}

static const CairnBackendOps s3_ops = {
    .kind = "s3",
    .get = s3_get,
    .put = s3_put,
    .exists = s3_exists,
    .list = s3_list,
    .remove = s3_remove,
    .flush = s3_flush,
    .cleanup = s3_cleanup,
    .free = s3_free,
};

guint64
cairn_backend_s3_requests(CairnBackend *b)
{
    return atomic_load(&as_s3(b)->requests);
}

static gpointer
global_init(gpointer unused)
{
    xmlInitParser();
    return GINT_TO_POINTER(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
}

CairnBackend *
cairn_backend_s3_new(const CairnS3Config *cfg, GError **error)
{
    static GOnce once = G_ONCE_INIT;
    static guint64 next_id; /* ids are never reused: stale thread-table entries stay inert */
    const char *bucket = cfg->bucket ? cfg->bucket : "";
    g_autofree char *base_url = *bucket && cfg->endpoint ? cairn_s3_base_url(cfg) : NULL;
    const char *why = !*bucket ? "no bucket"
                      : !base_url ? "the endpoint is not an http:// or https:// URL"
                      : !cfg->access_key || !cfg->secret_key
                          ? "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                          : NULL;
    if (why) {
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID,
                    "cannot open S3 repository 's3://%s': %s", bucket, why);
        return NULL;
    }
    if (!GPOINTER_TO_INT(g_once(&once, global_init, NULL))) {
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO,
                    "cannot open S3 repository: libcurl failed to initialise");
        return NULL;
    }
    CairnS3Backend *s = g_new0(CairnS3Backend, 1);
    s->base.ops = &s3_ops;
    s->cfg = (CairnS3Config){
        .endpoint = g_strdup(cfg->endpoint),
        .region = g_strdup(cfg->region && *cfg->region ? cfg->region : "us-east-1"),
        .bucket = g_strdup(cfg->bucket), .prefix = g_strdup(cfg->prefix ? cfg->prefix : ""),
        .path_style = cfg->path_style, .access_key = g_strdup(cfg->access_key),
        .secret_key = g_strdup(cfg->secret_key), .session_token = g_strdup(cfg->session_token),
        .ca_file = g_strdup(cfg->ca_file), .insecure = cfg->insecure,
        .max_retries = cfg->max_retries};
    s->base.location = *s->cfg.prefix
                           ? g_strdup_printf("s3://%s/%s", s->cfg.bucket, s->cfg.prefix)
                           : g_strdup_printf("s3://%s", s->cfg.bucket);
    s->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    s->base_url = g_steal_pointer(&base_url);
    s->sigv4 = g_strdup_printf("aws:amz:%s:s3", s->cfg.region);
    if (s->cfg.session_token)
        s->token_header = g_strdup_printf("x-amz-security-token: %s", s->cfg.session_token);
    s->strip = *s->cfg.prefix ? g_strconcat(s->cfg.prefix, "/", NULL) : g_strdup("");
    for (guint i = 0; i < G_N_ELEMENTS(s->share_locks); i++)
        g_mutex_init(&s->share_locks[i]);
    s->core = g_new0(S3Core, 1);
    g_atomic_ref_count_init(&s->core->ref);
    g_mutex_init(&s->core->lock);
    s->core->conns = g_hash_table_new(g_direct_hash, g_direct_equal);
    atomic_init(&s->requests, 0);
    s->share = curl_share_init();
    if (!s->share) {
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO,
                    "cannot open S3 repository: libcurl share failed (out of memory?)");
        s3_free(&s->base);
        return NULL;
    }
    curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

    /* one listing: a missing bucket or a bad key fails now, not as "key not found"
     * (a HEAD on a missing bucket looks like a missing key) */
    g_autofree char *what = g_strdup_printf("cannot open repository '%s'", s->base.location);
    g_autoptr(GPtrArray) probe =
        g_ptr_array_new_with_free_func((GDestroyNotify) cairn_backend_entry_free);
    if (!s3_list_objects(s, s->strip, 1, TRUE, what, probe, error)) {
        s3_free(&s->base);
        return NULL;
    }
    return &s->base;
}
