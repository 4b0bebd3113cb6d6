/* s3-xml.c - S3 response bodies (libxml2) and what a failed response means.
 *
 * Every parser accepts any bytes: a truncated, empty or foreign document is
 * an INVALID error (or FALSE for error bodies), never a crash. Element names
 * are matched without their namespace (AWS uses the 2006-03-01 namespace,
 * some servers none). */
#include "config.h"

#include <limits.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "repo/backends/s3.h"

typedef xmlDoc CairnXmlDoc;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnXmlDoc, xmlFreeDoc)

static xmlDoc *
parse_doc(const char *xml, size_t len)
{
    if (!xml || len == 0 || len > INT_MAX)
        return NULL;
    return xmlReadMemory(xml, (int) len, "s3-response.xml", NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static gboolean
is_element(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !strcmp((const char *) n->name, name);
}

static xmlNode *
root_named(xmlDoc *doc, const char *name)
{
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    return root && is_element(root, name) ? root : NULL;
}

static xmlNode *
child(const xmlNode *parent, const char *name)
{
    for (xmlNode *n = parent->children; n; n = n->next)
        if (is_element(n, name))
            return n;
    return NULL;
}

/* text of the first child element called name, g_malloc'ed; NULL when absent */
static char *
child_text(const xmlNode *parent, const char *name)
{
    xmlNode *n = child(parent, name);
    if (!n)
        return NULL;
    xmlChar *x = xmlNodeGetContent(n);
    char *s = g_strdup(x ? (const char *) x : "");
    xmlFree(x);
    return s;
}

static gboolean
child_is_true(const xmlNode *parent, const char *name)
{
    g_autofree char *v = child_text(parent, name);
    return v && !g_ascii_strcasecmp(g_strstrip(v), "true");
}

static gboolean
malformed(GError **error, const char *what, const char *detail)
{
    g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID,
                "malformed %s from the S3 server: %s", what, detail);
    return FALSE;
}

/* ---- times */

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned) (y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}

static gboolean
digits(const char **p, int n, int *ret)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!g_ascii_isdigit((*p)[i]))
            return FALSE;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *ret = v;
    return TRUE;
}

static gboolean
expect_char(const char **p, char c)
{
    if (**p != c)
        return FALSE;
    (*p)++;
    return TRUE;
}

gboolean
cairn_s3_parse_time(const char *text, int64_t *ret_unix)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = text;
    int y, mo, d, h, mi, s;
    if (!p || !digits(&p, 4, &y) || !expect_char(&p, '-') || !digits(&p, 2, &mo) ||
        !expect_char(&p, '-') || !digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
        return FALSE;
    p++;
    if (!digits(&p, 2, &h) || !expect_char(&p, ':') || !digits(&p, 2, &mi) ||
        !expect_char(&p, ':') || !digits(&p, 2, &s))
        return FALSE;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 60)
        return FALSE;
    gboolean leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return FALSE;
    if (*p == '.') {
        p++;
        if (!g_ascii_isdigit(*p))
            return FALSE;
        while (g_ascii_isdigit(*p))
            p++;
    }
    int offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!digits(&p, 2, &oh) || (*p == ':' && !expect_char(&p, ':')) || !digits(&p, 2, &om) ||
            oh > 23 || om > 59)
            return FALSE;
        offset = sign * (oh * 3600 + om * 60);
    } else {
        return FALSE; /* S3 always gives a zone; guessing one would shift times */
    }
    if (*p)
        return FALSE;
    int64_t days = days_from_civil(y, (unsigned) mo, (unsigned) d);
    *ret_unix = days * 86400 + h * 3600 + mi * 60 + s - offset;
    return TRUE;
}

/* ---- ListObjectsV2 */

gboolean
cairn_s3_parse_list(const char *xml, size_t len, const char *strip, GPtrArray *out,
                    gboolean *ret_truncated, char **ret_next_token, GError **error)
{
    const char *what = "object listing";
    g_autoptr(CairnXmlDoc) doc = parse_doc(xml, len);
    if (!doc)
        return malformed(error, what, len ? "not XML" : "empty body");
    xmlNode *root = root_named(doc, "ListBucketResult");
    if (!root)
        return malformed(error, what, "no <ListBucketResult>");
    size_t strip_len = strlen(strip);
    g_autoptr(GPtrArray) got =
        g_ptr_array_new_with_free_func((GDestroyNotify) cairn_backend_entry_free);
    for (xmlNode *n = root->children; n; n = n->next) {
        if (!is_element(n, "Contents"))
            continue;
        g_autofree char *key = child_text(n, "Key");
        g_autofree char *size = child_text(n, "Size");
        g_autofree char *mtime = child_text(n, "LastModified");
        guint64 sz;
        int64_t t;
        if (!key || !*key)
            return malformed(error, what, "an entry without <Key>");
        if (!size || !g_ascii_string_to_unsigned(g_strstrip(size), 10, 0, G_MAXUINT64, &sz, NULL)) {
            g_autofree char *d = g_strdup_printf("bad <Size> of '%s'", key);
            return malformed(error, what, d);
        }
        if (!mtime || !cairn_s3_parse_time(g_strstrip(mtime), &t)) {
            g_autofree char *d = g_strdup_printf("bad <LastModified> of '%s'", key);
            return malformed(error, what, d);
        }
        if (strncmp(key, strip, strip_len) != 0)
            continue;
        CairnBackendEntry *e = g_new0(CairnBackendEntry, 1);
        e->key = g_strdup(key + strip_len);
        e->size = sz;
        e->mtime = t;
        g_ptr_array_add(got, e);
    }
    gboolean truncated = child_is_true(root, "IsTruncated");
    g_autofree char *token = child_text(root, "NextContinuationToken");
    if (truncated && (!token || !*token))
        return malformed(error, what, "truncated without <NextContinuationToken>");
    for (guint i = 0; i < got->len; i++)
        g_ptr_array_add(out, g_steal_pointer(&got->pdata[i]));
    *ret_truncated = truncated;
    *ret_next_token = truncated ? g_steal_pointer(&token) : NULL;
    return TRUE;
}

/* ---- error bodies, multipart */

gboolean
cairn_s3_parse_error(const char *xml, size_t len, char **ret_code, char **ret_message)
{
    g_autoptr(CairnXmlDoc) doc = parse_doc(xml, len);
    xmlNode *root = root_named(doc, "Error");
    if (!root)
        return FALSE;
    g_autofree char *code = child_text(root, "Code");
    if (!code || !*g_strstrip(code))
        return FALSE;
    char *message = child_text(root, "Message");
    if (message && !*g_strstrip(message))
        g_clear_pointer(&message, g_free);
    *ret_code = g_steal_pointer(&code);
    *ret_message = message;
    return TRUE;
}

char *
cairn_s3_parse_upload_id(const char *xml, size_t len)
{
    g_autoptr(CairnXmlDoc) doc = parse_doc(xml, len);
    xmlNode *root = root_named(doc, "InitiateMultipartUploadResult");
    char *id = root ? child_text(root, "UploadId") : NULL;
    if (id && !*g_strstrip(id))
        g_clear_pointer(&id, g_free);
    return id;
}

void
cairn_s3_upload_free(CairnS3Upload *u)
{
    if (!u)
        return;
    g_free(u->key);
    g_free(u->upload_id);
    g_free(u);
}

gboolean
cairn_s3_parse_uploads(const char *xml, size_t len, GPtrArray *out, gboolean *ret_truncated,
                       char **ret_next_key, char **ret_next_upload_id, GError **error)
{
    const char *what = "multipart upload listing";
    g_autoptr(CairnXmlDoc) doc = parse_doc(xml, len);
    xmlNode *root = root_named(doc, "ListMultipartUploadsResult");
    if (!root)
        return malformed(error, what, "no <ListMultipartUploadsResult>");
    g_autoptr(GPtrArray) got =
        g_ptr_array_new_with_free_func((GDestroyNotify) cairn_s3_upload_free);
    for (xmlNode *n = root->children; n; n = n->next) {
        if (!is_element(n, "Upload"))
            continue;
        CairnS3Upload *u = g_new0(CairnS3Upload, 1);
        g_ptr_array_add(got, u);
        u->key = child_text(n, "Key");
        u->upload_id = child_text(n, "UploadId");
        g_autofree char *init = child_text(n, "Initiated");
        if (!u->key || !*u->key || !u->upload_id || !*u->upload_id || !init ||
            !cairn_s3_parse_time(g_strstrip(init), &u->initiated))
            return malformed(error, what, "an <Upload> without Key, UploadId or Initiated");
    }
    gboolean truncated = child_is_true(root, "IsTruncated");
    g_autofree char *next_key = child_text(root, "NextKeyMarker");
    g_autofree char *next_id = child_text(root, "NextUploadIdMarker");
    if (truncated && (!next_key || !*next_key))
        return malformed(error, what, "truncated without <NextKeyMarker>");
    for (guint i = 0; i < got->len; i++)
        g_ptr_array_add(out, g_steal_pointer(&got->pdata[i]));
    *ret_truncated = truncated;
    *ret_next_key = truncated ? g_steal_pointer(&next_key) : NULL;
    *ret_next_upload_id = truncated ? g_strdup(next_id ? next_id : "") : NULL;
    return TRUE;
}

char *
cairn_s3_complete_xml(const GPtrArray *etags)
{
    GString *s = g_string_new("<CompleteMultipartUpload "
                              "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (guint i = 0; i < etags->len; i++) {
        g_autofree char *etag = g_markup_escape_text(etags->pdata[i], -1);
        g_string_append_printf(s, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>",
                               i + 1, etag);
    }
    g_string_append(s, "</CompleteMultipartUpload>");
    return g_string_free(s, FALSE);
}

/* ---- what a failure means */

gboolean
cairn_s3_retryable(long status, const char *code)
{
    static const char *const codes[] = {"SlowDown", "RequestTimeout", "InternalError",
                                        "ServiceUnavailable", "ConditionalRequestConflict",
                                        "OperationAborted", NULL};
    if (code && g_strv_contains(codes, code))
        return TRUE;
    return status == 500 || status == 502 || status == 503 || status == 504;
}

static gboolean
code_is(const char *code, const char *name)
{
    return code && !strcmp(code, name);
}

GError *
cairn_s3_error_new(const CairnS3ErrorContext *ctx, long status, const char *code,
                   const char *message)
{
    const char *what = ctx->what, *ep = ctx->endpoint, *ak = ctx->access_key;
    g_autofree char *detail =
        g_strdup_printf("HTTP %ld%s%s%s%s", status, code ? " " : "", code ? code : "",
                        message ? ": " : "", message ? message : "");
    GQuark q = CAIRN_BACKEND_ERROR;

    if (code_is(code, "SignatureDoesNotMatch"))
        return g_error_new(q, CAIRN_BACKEND_ERROR_PERMISSION,
                           "%s: secret key does not match for access key '%s' at %s "
                           "(check secret_access_key in the remote's credentials file, or "
                           "$AWS_SECRET_ACCESS_KEY)", what, ak, ep);
    if (code_is(code, "InvalidAccessKeyId"))
        return g_error_new(q, CAIRN_BACKEND_ERROR_PERMISSION,
                           "%s: access key '%s' is not known at %s (check access_key_id in the "
                           "remote's credentials file, or $AWS_ACCESS_KEY_ID)", what, ak, ep);
    if (code_is(code, "RequestTimeTooSkewed"))
        return g_error_new(q, CAIRN_BACKEND_ERROR_PERMISSION,
                           "%s: the clock of this host is off by more than 15 minutes from "
                           "%s's: fix the time (NTP)", what, ep);
    if (code_is(code, "ExpiredToken") || code_is(code, "InvalidToken") ||
        code_is(code, "TokenRefreshRequired"))
        return g_error_new(q, CAIRN_BACKEND_ERROR_PERMISSION,
                           "%s: the session token was refused by %s (%s): renew it "
                           "(AWS_SESSION_TOKEN)", what, ep, detail);
    if (code_is(code, "NoSuchBucket"))
        return g_error_new(q, CAIRN_BACKEND_ERROR_INVALID,
                           "%s: bucket '%s' does not exist at %s (create it, or fix the "
                           "repository URL)", what, ctx->bucket, ep);
    if (code_is(code, "AuthorizationHeaderMalformed") || code_is(code, "PermanentRedirect") ||
        code_is(code, "IllegalLocationConstraintException"))
        return g_error_new(q, CAIRN_BACKEND_ERROR_INVALID,
                           "%s: %s refused the region or address of bucket '%s' (%s): set "
                           "region= (or the endpoint) to the bucket's", what, ep, ctx->bucket,
                           detail);
    if (code_is(code, "InvalidBucketName"))
        return g_error_new(q, CAIRN_BACKEND_ERROR_INVALID,
                           "%s: %s refuses the bucket name '%s' (%s)", what, ep, ctx->bucket,
                           detail);
    if (code_is(code, "QuotaExceeded") || code_is(code, "EntityTooLarge") ||
        code_is(code, "InsufficientStorage") || status == 507)
        return g_error_new(q, CAIRN_BACKEND_ERROR_NOSPACE,
                           "%s: no space left at %s (%s): free space or raise the quota, then "
                           "retry; nothing already stored was lost", what, ep, detail);
    if (code_is(code, "AccessDenied") || code_is(code, "AllAccessDisabled") ||
        status == 401 || status == 403)
        return g_error_new(q, CAIRN_BACKEND_ERROR_PERMISSION,
                           "%s: access denied by %s (%s): check that access key '%s' and its "
                           "secret are right and may use bucket '%s'", what, ep, detail, ak,
                           ctx->bucket);
    if (code_is(code, "NoSuchKey") || (status == 404 && !code))
        return g_error_new(q, CAIRN_BACKEND_ERROR_NOT_FOUND, "%s: no such key", what);
    if (status >= 500)
        return g_error_new(q, CAIRN_BACKEND_ERROR_NETWORK,
                           "%s: %s kept failing (%s) after %u attempts: retry later", what, ep,
                           detail, ctx->attempts);
    if (status == 400)
        return g_error_new(q, CAIRN_BACKEND_ERROR_INVALID, "%s: %s rejected the request (%s)",
                           what, ep, detail);
    return g_error_new(q, CAIRN_BACKEND_ERROR_IO, "%s: unexpected answer from %s (%s)", what,
                       ep, detail);
}
