/* s3.h - the S3 backend (s3.c) and its pure helpers (s3.c, s3-xml.c).
 *
 * A repository lives in BUCKET under PREFIX: key K is the object "PREFIX/K"
 * ("K" with an empty prefix). Requests are signed with SigV4 by libcurl
 * (CURLOPT_AWS_SIGV4); everything libcurl 7.88 does not do for us (payload
 * hash, query canonicalisation, path encoding) is done by the helpers below,
 * which the unit tests cover. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "repo/backends/backend.h"

typedef struct {
    char *endpoint;      /* "http://127.0.0.1:7480" or "https://s3.eu-west-1.amazonaws.com" */
    char *region;        /* "us-east-1" */
    char *bucket;
    char *prefix;        /* "" or "some/dir" (no leading/trailing slash) */
    gboolean path_style; /* TRUE: ENDPOINT/BUCKET/KEY, FALSE: BUCKET.HOST/KEY */
    char *access_key, *secret_key, *session_token; /* session_token may be NULL */
    char *ca_file;       /* NULL: system CAs */
    gboolean insecure;   /* skip TLS verification (off by default) */
    guint max_retries;   /* default 5 */
} CairnS3Config;

void cairn_s3_config_clear(CairnS3Config *c);

/* Parse "s3://BUCKET[/PREFIX][?endpoint=URL&region=R&style=path|virtual&ca_file=F]".
 * Defaults come from the environment: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL,
 * AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN, AWS_CA_BUNDLE (keys may stay NULL: the caller may fill
 * them in; cairn_backend_s3_new refuses a config without). Path style when an
 * endpoint other than *.amazonaws.com is given. On failure *ret is left
 * cleared (INVALID). */
gboolean cairn_s3_config_from_url(const char *url, CairnS3Config *ret, GError **error);

/* Checks the bucket and credentials with one listing request, so that a
 * missing bucket or a bad key fails here with a clear message. */
CairnBackend *cairn_backend_s3_new(const CairnS3Config *cfg, GError **error);
/* HTTP requests sent so far, retries included */
guint64 cairn_backend_s3_requests(CairnBackend *b);

/* ---- pure helpers (s3.c) */

#define CAIRN_S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define CAIRN_S3_MULTIPART_THRESHOLD (64u << 20) /* larger values go in parts */
#define CAIRN_S3_MIN_PART (5u << 20)
#define CAIRN_S3_MAX_PARTS 10000

typedef struct {
    const char *name;
    const char *value; /* NULL: a valueless parameter, written "name=" */
} CairnS3Param;

/* RFC 3986 percent-encoding: A-Z a-z 0-9 - . _ ~ kept, '/' too when keep_slash */
char *cairn_s3_uri_encode(const char *text, gboolean keep_slash);
/* SigV4 canonical query string: encoded, sorted by name then value, "a=1&b=&c=x%2Fy";
 * "" for none */
char *cairn_s3_query_build(const CairnS3Param *params, size_t n);
/* object name of a key: "prefix/key" or "key" */
char *cairn_s3_object_name(const char *prefix, const char *key);
/* "https://BUCKET.HOST[:PORT]" (virtual) or "ENDPOINT/BUCKET" (path); NULL when the
 * endpoint does not parse */
char *cairn_s3_base_url(const CairnS3Config *cfg);
/* base + "/" + encoded object ('/' kept) [+ "?" + query]; object NULL: the bucket */
char *cairn_s3_request_url(const char *base, gboolean path_style, const char *object,
                           const char *query);
/* lowercase hex SHA-256, 64 characters */
void cairn_s3_sha256_hex(const void *data, size_t len, char ret_hex[65]);
/* part size for a multipart upload of len bytes (len > threshold): at most 64 MiB,
 * at least 5 MiB, equal parts rounded up to 1 MiB */
uint64_t cairn_s3_part_size(uint64_t len);
/* upper bound of the full-jitter backoff before retry number attempt (0-based):
 * 100 ms doubling, capped at 5 s */
guint64 cairn_s3_backoff_cap_us(guint attempt);

/* ---- response parsing (s3-xml.c) */

/* ISO 8601 "2024-03-01T12:34:56[.789]Z" or with a "+HH:MM" offset -> unix seconds */
gboolean cairn_s3_parse_time(const char *text, int64_t *ret_unix);

/* One ListObjectsV2 page: appends CairnBackendEntry with keys relative to strip
 * (entries not under strip are skipped). INVALID error on a malformed document. */
gboolean cairn_s3_parse_list(const char *xml, size_t len, const char *strip, GPtrArray *out,
                             gboolean *ret_truncated, char **ret_next_token, GError **error);

/* An <Error> body: FALSE when the body is empty or not such a document. */
gboolean cairn_s3_parse_error(const char *xml, size_t len, char **ret_code, char **ret_message);

/* <InitiateMultipartUploadResult><UploadId> */
char *cairn_s3_parse_upload_id(const char *xml, size_t len);

typedef struct {
    char *key, *upload_id;
    int64_t initiated;
} CairnS3Upload;
void cairn_s3_upload_free(CairnS3Upload *u);
/* One ListMultipartUploads page: appends CairnS3Upload */
gboolean cairn_s3_parse_uploads(const char *xml, size_t len, GPtrArray *out,
                                gboolean *ret_truncated, char **ret_next_key,
                                char **ret_next_upload_id, GError **error);

/* <CompleteMultipartUpload> body from the parts' ETags (part i+1 = etags[i]) */
char *cairn_s3_complete_xml(const GPtrArray *etags);

typedef struct {
    const char *what;       /* "cannot get 'config' from s3://b/p" */
    const char *endpoint, *bucket, *access_key;
    guint attempts;         /* requests made, for the message */
} CairnS3ErrorContext;

/* worth retrying: 500 502 503 504, SlowDown, RequestTimeout, InternalError,
 * ConditionalRequestConflict */
gboolean cairn_s3_retryable(long status, const char *code);
/* a CAIRN_BACKEND_ERROR for a failed response; code and message may be NULL */
GError *cairn_s3_error_new(const CairnS3ErrorContext *ctx, long status, const char *code,
                           const char *message);
