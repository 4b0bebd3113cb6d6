/* s3-config.c - S3 locations, and the request pieces libcurl 7.88 leaves to us.
 *
 * libcurl signs the path and the query string exactly as given, so both
 * must already be in SigV4 canonical form: the path percent-encoded with
 * '/' kept, the query sorted by name with names and values encoded ('/' as
 * %2F) and valueless parameters written "name=". */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/util.h"
#include "repo/backends/s3.h"

void
cairn_s3_config_clear(CairnS3Config *c)
{
    if (!c)
        return;
    g_free(c->endpoint);
    g_free(c->region);
    g_free(c->bucket);
    g_free(c->prefix);
    g_free(c->access_key);
    if (c->secret_key)
        explicit_bzero(c->secret_key, strlen(c->secret_key));
    g_free(c->secret_key);
    if (c->session_token)
        explicit_bzero(c->session_token, strlen(c->session_token));
    g_free(c->session_token);
    g_free(c->ca_file);
    memset(c, 0, sizeof *c);
}

/* ---- encoding */

static gboolean
unreserved(unsigned char c)
{
    return g_ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

char *
cairn_s3_uri_encode(const char *text, gboolean keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    GString *s = g_string_sized_new(strlen(text) + 8);
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            g_string_append_c(s, (char) *p);
        } else {
            g_string_append_c(s, '%');
            g_string_append_c(s, hex[*p >> 4]);
            g_string_append_c(s, hex[*p & 15]);
        }
    }
    return g_string_free(s, FALSE);
}

typedef struct {
    char *name, *value;
} EncodedParam;

static int
param_cmp(gconstpointer a, gconstpointer b)
{
    const EncodedParam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

char *
cairn_s3_query_build(const CairnS3Param *params, size_t n)
{
    g_autofree EncodedParam *enc = g_new0(EncodedParam, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        enc[i].name = cairn_s3_uri_encode(params[i].name, FALSE);
        enc[i].value = cairn_s3_uri_encode(params[i].value ? params[i].value : "", FALSE);
    }
    qsort(enc, n, sizeof *enc, param_cmp);
    GString *s = g_string_new(NULL);
    for (size_t i = 0; i < n; i++) {
        g_string_append_printf(s, "%s%s=%s", i ? "&" : "", enc[i].name, enc[i].value);
        g_free(enc[i].name);
        g_free(enc[i].value);
    }
    return g_string_free(s, FALSE);
}

char *
cairn_s3_object_name(const char *prefix, const char *key)
{
    return prefix && *prefix ? g_strconcat(prefix, "/", key, NULL) : g_strdup(key);
}

char *
cairn_s3_base_url(const CairnS3Config *cfg)
{
    g_autoptr(GUri) uri = g_uri_parse(cfg->endpoint, G_URI_FLAGS_NONE, NULL);
    if (!uri || !g_uri_get_host(uri) || !*g_uri_get_host(uri))
        return NULL;
    g_autofree char *bucket = cairn_s3_uri_encode(cfg->bucket, FALSE);
    if (cfg->path_style) {
        size_t len = strlen(cfg->endpoint);
        while (len > 0 && cfg->endpoint[len - 1] == '/')
            len--;
        return g_strdup_printf("%.*s/%s", (int) len, cfg->endpoint, bucket);
    }
    int port = g_uri_get_port(uri);
    g_autofree char *port_text = port > 0 ? g_strdup_printf(":%d", port) : g_strdup("");
    return g_strdup_printf("%s://%s.%s%s", g_uri_get_scheme(uri), bucket, g_uri_get_host(uri),
                           port_text);
}

char *
cairn_s3_request_url(const char *base, gboolean path_style, const char *object,
                     const char *query)
{
    g_autofree char *path = object ? cairn_s3_uri_encode(object, TRUE) : NULL;
    GString *s = g_string_new(base);
    if (path) {
        g_string_append_c(s, '/');
        g_string_append(s, path);
    } else if (!path_style) {
        g_string_append_c(s, '/');
    }
    if (query && *query) {
        g_string_append_c(s, '?');
        g_string_append(s, query);
    }
    return g_string_free(s, FALSE);
}

void
cairn_s3_sha256_hex(const void *data, size_t len, char ret_hex[65])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        g_error("SHA-256 failed"); /* only without memory: nothing sensible to do */
    cairn_hex_encode(md, sizeof md, ret_hex);
}

uint64_t
cairn_s3_part_size(uint64_t len)
{
    const uint64_t mib = 1 << 20, max = CAIRN_S3_MULTIPART_THRESHOLD;
    uint64_t parts = (len + max - 1) / max;
    if (parts == 0)
        parts = 1;
    uint64_t size = (len + parts - 1) / parts;
    size = (size + mib - 1) / mib * mib;
    if (size < CAIRN_S3_MIN_PART)
        size = CAIRN_S3_MIN_PART;
    if ((len + size - 1) / size > CAIRN_S3_MAX_PARTS) /* beyond 640 GiB: larger parts */
        size = ((len + CAIRN_S3_MAX_PARTS - 1) / CAIRN_S3_MAX_PARTS + mib - 1) / mib * mib;
    return size;
}

guint64
cairn_s3_backoff_cap_us(guint attempt)
{
    const guint64 base = 100000, cap = 5000000;
    return attempt >= 6 ? cap : MIN(cap, base << attempt);
}

/* ---- s3:// URLs */

static gboolean
invalid(GError **error, const char *url, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static gboolean
invalid(GError **error, const char *url, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID,
                "invalid S3 location '%s': %s", url, why);
    return FALSE;
}

static char *
env_default(const char *param, const char *const *vars)
{
    if (param && *param)
        return g_strdup(param);
    for (size_t i = 0; vars[i]; i++) {
        const char *v = g_getenv(vars[i]);
        if (v && *v)
            return g_strdup(v);
    }
    return NULL;
}

static gboolean
bucket_name_ok(const char *b, gboolean dns)
{
    size_t len = strlen(b);
    if (len == 0 || len > (dns ? 63u : 255u) || (dns && len < 3))
        return FALSE;
    for (const char *p = b; *p; p++) {
        gboolean ok = g_ascii_isdigit(*p) || g_ascii_islower(*p) || *p == '-' || *p == '.' ||
                      (!dns && (g_ascii_isupper(*p) || *p == '_'));
        if (!ok)
            return FALSE;
    }
    return !dns || (g_ascii_isalnum(b[0]) && g_ascii_isalnum(b[len - 1]));
}

/* decoded prefix without surrounding slashes; NULL (error set) when unusable */
static char *
parse_prefix(const char *url, const char *raw, GError **error)
{
    g_autofree char *dec = g_uri_unescape_string(raw, NULL);
    if (!dec) {
        invalid(error, url, "the prefix '%s' has a bad %%-escape", raw);
        return NULL;
    }
    char *start = dec;
    while (*start == '/')
        start++;
    size_t len = strlen(start);
    while (len > 0 && start[len - 1] == '/')
        start[--len] = '\0';
    g_auto(GStrv) parts = g_strsplit(start, "/", -1);
    for (size_t i = 0; len > 0 && parts[i]; i++) {
        if (!*parts[i] || !strcmp(parts[i], ".") || !strcmp(parts[i], "..")) {
            invalid(error, url, "the prefix '%s' has an empty, '.' or '..' part", start);
            return NULL;
        }
    }
    return g_strdup(start);
}

static gboolean
parse_endpoint(const char *url, char **endpoint, gboolean *ret_aws, gboolean *ret_ip,
               GError **error)
{
    g_autoptr(GUri) uri = g_uri_parse(*endpoint, G_URI_FLAGS_NONE, NULL);
    const char *scheme = uri ? g_uri_get_scheme(uri) : NULL;
    const char *host = uri ? g_uri_get_host(uri) : NULL;
    const char *path = uri ? g_uri_get_path(uri) : NULL;
    if (!uri || !scheme || (strcmp(scheme, "http") && strcmp(scheme, "https")) || !host ||
        !*host)
        return invalid(error, url, "the endpoint '%s' is not an http:// or https:// URL",
                       *endpoint);
    if ((path && *path && strcmp(path, "/")) || g_uri_get_query(uri) ||
        g_uri_get_fragment(uri) || g_uri_get_userinfo(uri))
        return invalid(error, url, "the endpoint '%s' must be only scheme://host[:port]",
                       *endpoint);
    size_t len = strlen(*endpoint);
    while (len > 0 && (*endpoint)[len - 1] == '/')
        (*endpoint)[--len] = '\0';
    *ret_aws = !g_ascii_strcasecmp(host, "amazonaws.com") ||
               g_str_has_suffix(host, ".amazonaws.com");
    *ret_ip = g_hostname_is_ip_address(host);
    return TRUE;
}

gboolean
cairn_s3_config_from_url(const char *url, CairnS3Config *ret, GError **error)
{
    static const char *const known[] = {"endpoint", "region", "style", "ca_file", NULL};
    static const char *const env_endpoint[] = {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", NULL};
    static const char *const env_region[] = {"AWS_REGION", "AWS_DEFAULT_REGION", NULL};
    static const char *const env_ak[] = {"AWS_ACCESS_KEY_ID", NULL};
    static const char *const env_sk[] = {"AWS_SECRET_ACCESS_KEY", NULL};
    static const char *const env_token[] = {"AWS_SESSION_TOKEN", NULL};
    static const char *const env_ca[] = {"AWS_CA_BUNDLE", NULL};
    CairnS3Config c = {0};
    memset(ret, 0, sizeof *ret);

    if (!url || !g_str_has_prefix(url, "s3://"))
        return invalid(error, url ? url : "", "it must start with s3://");
    const char *rest = url + strlen("s3://");
    const char *q = strchr(rest, '?');
    g_autofree char *path = q ? g_strndup(rest, q - rest) : g_strdup(rest);
    char *slash = strchr(path, '/');
    if (slash)
        *slash = '\0';
    if (!*path)
        return invalid(error, url, "no bucket (use s3://BUCKET[/PREFIX])");
    g_autoptr(GHashTable) params = NULL;
    if (q && q[1]) {
        g_autoptr(GError) perr = NULL;
        params = g_uri_parse_params(q + 1, -1, "&", G_URI_PARAMS_NONE, &perr);
        if (!params)
            return invalid(error, url, "bad parameters: %s", perr->message);
        GHashTableIter it;
        gpointer name;
        g_hash_table_iter_init(&it, params);
        while (g_hash_table_iter_next(&it, &name, NULL)) {
            if (g_strv_contains(known, name))
                continue;
            const char *guess = cairn_closest(name, known);
            return invalid(error, url, "unknown parameter '%s'%s%s%s (known: endpoint, region, "
                           "style, ca_file)", (char *) name, guess ? " (did you mean '" : "",
                           guess ? guess : "", guess ? "'?)" : "");
        }
    }
#define PARAM(n) (params ? (const char *) g_hash_table_lookup(params, n) : NULL)
    c.bucket = g_strdup(path);
    if (!bucket_name_ok(c.bucket, FALSE)) {
        invalid(error, url, "'%s' is not a valid bucket name (letters, digits, '.', '-', '_')",
                c.bucket);
        goto fail;
    }
    c.prefix = parse_prefix(url, slash ? slash + 1 : "", error);
    if (!c.prefix)
        goto fail;

    c.region = env_default(PARAM("region"), env_region);
    if (!c.region)
        c.region = g_strdup("us-east-1");
    for (const char *p = c.region; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_') {
            invalid(error, url, "'%s' is not a valid region name", c.region);
            goto fail;
        }
    }
    gboolean aws = TRUE, ip = FALSE;
    c.endpoint = env_default(PARAM("endpoint"), env_endpoint);
    if (!c.endpoint)
        c.endpoint = g_strdup_printf("https://s3.%s.amazonaws.com", c.region);
    else if (!parse_endpoint(url, &c.endpoint, &aws, &ip, error))
        goto fail;

    const char *style = PARAM("style");
    if (style && !strcmp(style, "path")) {
        c.path_style = TRUE;
    } else if (style && !strcmp(style, "virtual")) {
        c.path_style = FALSE;
        if (ip || !bucket_name_ok(c.bucket, TRUE)) {
            invalid(error, url, "style=virtual needs a host name endpoint and a DNS-style "
                    "bucket name (3-63 of a-z 0-9 . -): use style=path");
            goto fail;
        }
    } else if (style) {
        invalid(error, url, "style must be 'path' or 'virtual', not '%s'", style);
        goto fail;
    } else {
        /* dotted names do not match the wildcard certificate of BUCKET.HOST */
        c.path_style = !aws || ip || !bucket_name_ok(c.bucket, TRUE) || strchr(c.bucket, '.');
    }
    c.ca_file = env_default(PARAM("ca_file"), env_ca);
#undef PARAM
    c.access_key = env_default(NULL, env_ak);
    c.secret_key = env_default(NULL, env_sk);
    c.session_token = env_default(NULL, env_token); /* missing keys: cairn_backend_s3_new says so */
    c.max_retries = 5;
    *ret = c;
    return TRUE;
fail:
    cairn_s3_config_clear(&c);
    return FALSE;
}
