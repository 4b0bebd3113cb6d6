/* backend.c - backend dispatch and location parsing. */
#include "config.h"

#include <string.h>

#include "repo/backends/backend.h"
#include "repo/backends/s3.h"

G_DEFINE_QUARK(cairn-backend-error-quark, cairn_backend_error)

void
cairn_backend_entry_free(CairnBackendEntry *e)
{
    if (!e)
        return;
    g_free(e->key);
    g_free(e);
}

CairnBackend *
cairn_backend_open(const char *location, gboolean create, GError **error)
{
    if (g_str_has_prefix(location, "file://"))
        return cairn_backend_local_new(location + strlen("file://"), create, error);
    if (g_str_has_prefix(location, "s3://")) {
        CairnS3Config cfg = { 0 };
        if (!cairn_s3_config_from_url(location, &cfg, error))
            return NULL;
        CairnBackend *b = cairn_backend_s3_new(&cfg, error);
        cairn_s3_config_clear(&cfg);
        return b;
    }
    if (strstr(location, "://")) {
        g_autofree char *scheme = g_strndup(location, strstr(location, "://") - location);
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID,
                    "unsupported repository location '%s': scheme '%s' is not known "
                    "(use a path, file:///path or s3://bucket/prefix)", location, scheme);
        return NULL;
    }
    return cairn_backend_local_new(location, create, error);
}

GBytes *
cairn_backend_get(CairnBackend *b, const char *key, GError **error)
{
    return b->ops->get(b, key, error);
}

gboolean
cairn_backend_put(CairnBackend *b, const char *key, const void *data, size_t len,
                  CairnPutMode mode, gboolean *ret_created, GError **error)
{
    gboolean created = FALSE;
    gboolean ok = b->ops->put(b, key, data, len, mode, &created, error);
    if (ret_created)
        *ret_created = created;
    return ok;
}

gboolean
cairn_backend_exists(CairnBackend *b, const char *key, gboolean *ret_exists, GError **error)
{
    return b->ops->exists(b, key, ret_exists, error);
}

GPtrArray *
cairn_backend_list(CairnBackend *b, const char *prefix, GError **error)
{
    return b->ops->list(b, prefix, error);
}

gboolean
cairn_backend_remove(CairnBackend *b, const char *key, GError **error)
{
    return b->ops->remove(b, key, error);
}

gboolean
cairn_backend_flush(CairnBackend *b, GError **error)
{
    return b->ops->flush ? b->ops->flush(b, error) : TRUE;
}

gboolean
cairn_backend_cleanup(CairnBackend *b, int64_t max_age, guint *ret_removed, GError **error)
{
    if (ret_removed)
        *ret_removed = 0;
    return b->ops->cleanup ? b->ops->cleanup(b, max_age, ret_removed, error) : TRUE;
}

void
cairn_backend_free(CairnBackend *b)
{
    if (!b)
        return;
    b->ops->free(b);
}
