/* remote.c - remote definitions (GKeyFile) and opening their backends. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "policies/remote.h"
#include "repo/backends/s3.h"

G_DEFINE_QUARK(cairn-policy-error-quark, cairn_policy_error)

static const char *const remote_keys[] = {
    "url", "endpoint", "region", "style", "credentials", "ca_file", "insecure", "parallel",
    "bwlimit", NULL,
};

const char *
cairn_config_dir(void)
{
    const char *d = g_getenv("CAIRN_CONFIG_DIR");
    return d && *d ? d : "/etc/cairn";
}

void
cairn_remote_free(CairnRemote *r)
{
    if (!r)
        return;
    g_free(r->name);
    g_free(r->path);
    g_free(r->url);
    g_free(r->endpoint);
    g_free(r->region);
    g_free(r->style);
    g_free(r->credentials);
    g_free(r->ca_file);
    g_free(r);
}

static gboolean
valid_name(const char *name)
{
    if (!*name || strlen(name) > 64)
        return FALSE;
    for (const char *p = name; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
            return FALSE;
    return name[0] != '.';
}

gboolean
cairn_remote_is_name(const char *location)
{
    if (!valid_name(location) || strchr(location, '/'))
        return FALSE;
    g_autofree char *path = g_strdup_printf("%s/remotes.d/%s.conf", cairn_config_dir(), location);
    return g_file_test(path, G_FILE_TEST_EXISTS) && !g_file_test(location, G_FILE_TEST_EXISTS);
}

static gboolean
invalid(GError **error, const char *path, const char *text, const char *key, const char *fmt, ...)
    G_GNUC_PRINTF(5, 6);
static gboolean
invalid(GError **error, const char *path, const char *text, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    int line = key ? cairn_key_file_line(text, key) : 0;
    if (line)
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_INVALID, "%s:%d: %s", path,
                    line, msg);
    else
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_INVALID, "%s: %s", path, msg);
    return FALSE;
}

CairnRemote *
cairn_remote_load_file(const char *path, const char *name, GError **error)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) gerr = NULL;
    if (!g_file_get_contents(path, &text, NULL, &gerr)) {
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_NOT_FOUND,
                    "cannot read remote '%s': %s", path, gerr->message);
        return NULL;
    }
    g_autoptr(GKeyFile) kf = g_key_file_new();
    if (!g_key_file_load_from_data(kf, text, (gsize) -1, G_KEY_FILE_NONE, &gerr)) {
        invalid(error, path, text, NULL, "%s", gerr->message);
        return NULL;
    }
    if (!g_key_file_has_group(kf, "remote")) {
        invalid(error, path, text, NULL, "no [remote] section");
        return NULL;
    }
    g_auto(GStrv) keys = g_key_file_get_keys(kf, "remote", NULL, NULL);
    for (guint i = 0; keys && keys[i]; i++) {
        if (g_strv_contains(remote_keys, keys[i]))
            continue;
        const char *close = cairn_closest(keys[i], remote_keys);
        invalid(error, path, text, keys[i], "unknown key '%s'%s%s%s", keys[i],
                close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "");
        return NULL;
    }
    g_autoptr(CairnRemote) r = g_new0(CairnRemote, 1);
    r->name = g_strdup(name);
    r->path = g_strdup(path);
    r->url = g_key_file_get_string(kf, "remote", "url", NULL);
    if (!r->url || !*r->url) {
        invalid(error, path, text, NULL, "missing 'url' (e.g. url = s3://BUCKET/PREFIX)");
        return NULL;
    }
    if (!g_str_has_prefix(r->url, "s3://") && !g_str_has_prefix(r->url, "file://")) {
        invalid(error, path, text, "url", "url '%s' must start with s3:// or file://", r->url);
        return NULL;
    }
    r->endpoint = g_key_file_get_string(kf, "remote", "endpoint", NULL);
    r->region = g_key_file_get_string(kf, "remote", "region", NULL);
    r->style = g_key_file_get_string(kf, "remote", "style", NULL);
    r->credentials = g_key_file_get_string(kf, "remote", "credentials", NULL);
    r->ca_file = g_key_file_get_string(kf, "remote", "ca_file", NULL);
    if (r->style && strcmp(r->style, "path") && strcmp(r->style, "virtual")) {
        invalid(error, path, text, "style", "style '%s' must be 'path' or 'virtual'", r->style);
        return NULL;
    }
    if (g_key_file_has_key(kf, "remote", "insecure", NULL)) {
        r->insecure = g_key_file_get_boolean(kf, "remote", "insecure", &gerr);
        if (gerr) {
            invalid(error, path, text, "insecure", "insecure must be true or false");
            return NULL;
        }
    }
    r->parallel = 8;
    if (g_key_file_has_key(kf, "remote", "parallel", NULL)) {
        int n = g_key_file_get_integer(kf, "remote", "parallel", &gerr);
        if (gerr || n < 1 || n > 64) {
            invalid(error, path, text, "parallel", "parallel must be a number from 1 to 64");
            return NULL;
        }
        r->parallel = (guint) n;
    }
    g_autofree char *bw = g_key_file_get_string(kf, "remote", "bwlimit", NULL);
    if (bw && !cairn_parse_size(bw, &r->bwlimit, &gerr)) {
        invalid(error, path, text, "bwlimit", "%s", gerr->message);
        return NULL;
    }
    return g_steal_pointer(&r);
}

CairnRemote *
cairn_remote_lookup(const char *name_or_url, GError **error)
{
    if (strstr(name_or_url, "://")) {
        CairnRemote *r = g_new0(CairnRemote, 1);
        r->url = g_strdup(name_or_url);
        r->parallel = 8;
        return r;
    }
    if (!valid_name(name_or_url)) {
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_NOT_FOUND,
                    "invalid remote '%s': give a remote name (letters, digits, - _ .) or a "
                    "URL (s3://BUCKET/PREFIX, file:///PATH)", name_or_url);
        return NULL;
    }
    g_autofree char *path = g_strdup_printf("%s/remotes.d/%s.conf", cairn_config_dir(),
                                            name_or_url);
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_autoptr(GPtrArray) names = cairn_remote_list(NULL);
        g_autofree char *all = NULL;
        const char *close = NULL;
        if (names) {
            g_ptr_array_add(names, NULL);
            all = g_strjoinv(", ", (char **) names->pdata);
            close = cairn_closest(name_or_url, (const char *const *) names->pdata);
        }
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_NOT_FOUND,
                    "no remote '%s' (no %s)%s%s%s; known remotes: %s; add one with 'cairn "
                    "remote add NAME URL'", name_or_url, path, close ? " (did you mean '" : "",
                    close ? close : "", close ? "'?)" : "", all && *all ? all : "none");
        return NULL;
    }
    return cairn_remote_load_file(path, name_or_url, error);
}

static gint
by_name(gconstpointer a, gconstpointer b)
{
    return g_ascii_strcasecmp(*(const char *const *) a, *(const char *const *) b);
}

GPtrArray *
cairn_remote_list(GError **error)
{
    g_autofree char *dir = g_strdup_printf("%s/remotes.d", cairn_config_dir());
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *e;
    while (d && (e = g_dir_read_name(d)))
        if (g_str_has_suffix(e, ".conf"))
            g_ptr_array_add(names, g_strndup(e, strlen(e) - 5));
    g_ptr_array_sort(names, by_name);
    return names;
}

gboolean
cairn_remote_save(const CairnRemote *r, gboolean force, GError **error)
{
    if (!r->name || !valid_name(r->name)) {
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_INVALID,
                    "invalid remote name '%s': use letters, digits, '-', '_' and '.'",
                    r->name ? r->name : "");
        return FALSE;
    }
    g_autofree char *dir = g_strdup_printf("%s/remotes.d", cairn_config_dir());
    g_autofree char *path = g_strdup_printf("%s/%s.conf", dir, r->name);
    if (!force && g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_INVALID,
                    "remote '%s' exists (%s): remove the file or give --force", r->name, path);
        return FALSE;
    }
    if (!cairn_mkdir_p(dir, 0755, error))
        return FALSE;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_key_file_set_string(kf, "remote", "url", r->url);
    const struct { const char *k, *v; } opt[] = {
        { "endpoint", r->endpoint }, { "region", r->region }, { "style", r->style },
        { "credentials", r->credentials }, { "ca_file", r->ca_file },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(opt); i++)
        if (opt[i].v)
            g_key_file_set_string(kf, "remote", opt[i].k, opt[i].v);
    if (r->insecure)
        g_key_file_set_boolean(kf, "remote", "insecure", TRUE);
    gsize len;
    g_autofree char *data = g_key_file_to_data(kf, &len, NULL);
    return cairn_write_file_durable(path, data, len, 0644, error);
}

static gboolean
read_credentials(const char *path, char **ret_ak, char **ret_sk, GError **error)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_NOT_FOUND,
                    "cannot read credentials '%s': %s", path, g_strerror(errno));
        return FALSE;
    }
    if (st.st_mode & 0077) {
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_INSECURE,
                    "credentials file '%s' is readable by group or others (mode %04o): run "
                    "'chmod 600 %s'", path, (unsigned) (st.st_mode & 07777), path);
        return FALSE;
    }
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) gerr = NULL;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &gerr)) {
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_INVALID, "%s: %s", path,
                    gerr->message);
        return FALSE;
    }
    *ret_ak = g_key_file_get_string(kf, "credentials", "access_key", NULL);
    *ret_sk = g_key_file_get_string(kf, "credentials", "secret_key", NULL);
    if (!*ret_ak || !*ret_sk) {
        g_set_error(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_INVALID,
                    "%s: needs [credentials] with access_key and secret_key", path);
        return FALSE;
    }
    return TRUE;
}

CairnBackend *
cairn_remote_open_backend(const CairnRemote *r, gboolean create, GError **error)
{
    if (!g_str_has_prefix(r->url, "s3://"))
        return cairn_backend_open(r->url, create, error);
    CairnS3Config cfg = { 0 };
    if (!cairn_s3_config_from_url(r->url, &cfg, error))
        return NULL;
    if (r->endpoint) {
        g_free(cfg.endpoint);
        cfg.endpoint = g_strdup(r->endpoint);
        if (!r->style)
            cfg.path_style = !strstr(r->endpoint, "amazonaws.com");
    }
    if (r->region) {
        g_free(cfg.region);
        cfg.region = g_strdup(r->region);
    }
    if (r->style)
        cfg.path_style = !strcmp(r->style, "path");
    if (r->ca_file) {
        g_free(cfg.ca_file);
        cfg.ca_file = g_strdup(r->ca_file);
    }
    cfg.insecure = r->insecure;
    if (r->credentials) {
        g_free(cfg.access_key);
        g_free(cfg.secret_key);
        cfg.access_key = cfg.secret_key = NULL;
        if (!read_credentials(r->credentials, &cfg.access_key, &cfg.secret_key, error)) {
            cairn_s3_config_clear(&cfg);
            return NULL;
        }
    }
    CairnBackend *b = cairn_backend_s3_new(&cfg, error);
    cairn_s3_config_clear(&cfg);
    return b;
}
