/* memory.c - an in-memory backend for unit tests. */
#include "config.h"

#include <string.h>

#include "common/util.h"
#include "repo/backends/backend.h"

typedef struct {
    GBytes *value;
    int64_t mtime;
} MemValue;

typedef struct {
    CairnBackend base;
    GMutex lock;
    GHashTable *values; /* char* -> MemValue* */
    char *fail_prefix;  /* test hook: puts of these keys fail */
    guint failed_puts;
} CairnMemoryBackend;

static void
mem_value_free(MemValue *v)
{
    g_bytes_unref(v->value);
    g_free(v);
}

static CairnMemoryBackend *
as_memory(CairnBackend *b)
{
    g_assert(b->ops->kind && !strcmp(b->ops->kind, "memory"));
    return (CairnMemoryBackend *) b;
}

static GBytes *
mem_get(CairnBackend *b, const char *key, GError **error)
{
    CairnMemoryBackend *m = as_memory(b);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&m->lock);
    MemValue *v = g_hash_table_lookup(m->values, key);
    if (!v) {
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NOT_FOUND,
                    "'%s' does not exist in memory backend", key);
        return NULL;
    }
    return g_bytes_ref(v->value);
}

static gboolean
mem_put(CairnBackend *b, const char *key, const void *data, size_t len, CairnPutMode mode,
        gboolean *ret_created, GError **error)
{
    CairnMemoryBackend *m = as_memory(b);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&m->lock);
    if (m->fail_prefix && g_str_has_prefix(key, m->fail_prefix)) {
        m->failed_puts++;
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO,
                    "cannot put '%s': connection refused (test)", key);
        return FALSE;
    }
    if (mode == CAIRN_PUT_IF_ABSENT && g_hash_table_contains(m->values, key)) {
        *ret_created = FALSE;
        return TRUE;
    }
    MemValue *v = g_new0(MemValue, 1);
    v->value = g_bytes_new(data, len);
    v->mtime = cairn_now();
    g_hash_table_replace(m->values, g_strdup(key), v);
    *ret_created = TRUE;
    return TRUE;
}

static gboolean
mem_exists(CairnBackend *b, const char *key, gboolean *ret_exists, GError **error)
{
    CairnMemoryBackend *m = as_memory(b);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&m->lock);
    *ret_exists = g_hash_table_contains(m->values, key);
    return TRUE;
}

static GPtrArray *
mem_list(CairnBackend *b, const char *prefix, GError **error)
{
    CairnMemoryBackend *m = as_memory(b);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&m->lock);
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify) cairn_backend_entry_free);
    GHashTableIter it;
    gpointer k, val;
    g_hash_table_iter_init(&it, m->values);
    while (g_hash_table_iter_next(&it, &k, &val)) {
        if (!g_str_has_prefix(k, prefix))
            continue;
        MemValue *v = val;
        CairnBackendEntry *e = g_new0(CairnBackendEntry, 1);
        e->key = g_strdup(k);
        e->size = g_bytes_get_size(v->value);
        e->mtime = v->mtime;
        g_ptr_array_add(out, e);
    }
    return out;
}

static gboolean
mem_remove(CairnBackend *b, const char *key, GError **error)
{
    CairnMemoryBackend *m = as_memory(b);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&m->lock);
    g_hash_table_remove(m->values, key);
    return TRUE;
}

static void
mem_free(CairnBackend *b)
{
    CairnMemoryBackend *m = as_memory(b);
    g_hash_table_unref(m->values);
    g_free(m->fail_prefix);
    g_mutex_clear(&m->lock);
    g_free(b->location);
    g_free(m);
}

static const CairnBackendOps memory_ops = {
    .kind = "memory",
    .get = mem_get,
    .put = mem_put,
    .exists = mem_exists,
    .list = mem_list,
    .remove = mem_remove,
    .free = mem_free,
};

CairnBackend *
cairn_backend_memory_new(void)
{
    CairnMemoryBackend *m = g_new0(CairnMemoryBackend, 1);
    m->base.ops = &memory_ops;
    m->base.location = g_strdup("memory:");
    g_mutex_init(&m->lock);
    m->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) mem_value_free);
    return &m->base;
}

/* test hook: puts of keys starting with prefix fail (NULL: none); returns
 * how many failed so far */
guint cairn_backend_memory_fail_puts(CairnBackend *b, const char *prefix);
guint
cairn_backend_memory_fail_puts(CairnBackend *b, const char *prefix)
{
    CairnMemoryBackend *m = as_memory(b);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&m->lock);
    g_free(m->fail_prefix);
    m->fail_prefix = g_strdup(prefix);
    return m->failed_puts;
}

/* test hook: overwrite a stored value (corruption tests) */
void cairn_backend_memory_poke(CairnBackend *b, const char *key, const void *data, size_t len);
void
cairn_backend_memory_poke(CairnBackend *b, const char *key, const void *data, size_t len)
{
    gboolean created;
    mem_put(b, key, data, len, CAIRN_PUT_REPLACE, &created, NULL);
}
