/* quarantine.c - damaged objects set aside (see quarantine.h). */
#include "config.h"

#include <string.h>

#include "repo/object.h"
#include "repo/quarantine.h"
#include "repo/verify.h"

#define PREFIX "quarantine/"

static char *
quarantine_key(const CairnId *id)
{
    char hex[CAIRN_ID_HEX_LEN + 1];
    return g_strconcat(PREFIX, cairn_id_to_hex(id, hex), NULL);
}

/* the stored bytes pass the check the repository can make: decode and
 * hash with the key, the stored checksum without */
static gboolean
whole_now(CairnRepo *repo, const CairnId *id, GBytes *stored)
{
    gsize len;
    const void *data = g_bytes_get_data(stored, &len);
    if (cairn_repo_has_key(repo))
        return cairn_repo_verify_stored(repo, id, data, len, NULL);
    return cairn_object_check_stored(id, data, len, cairn_repo_is_encrypted(repo), NULL);
}

gboolean
cairn_repo_quarantine(CairnRepo *repo, const CairnId *id, gboolean *ret_moved, GError **error)
{
    CairnBackend *b = cairn_repo_backend(repo);
    g_autofree char *key = cairn_object_key(id);
    g_autofree char *qkey = quarantine_key(id);
    g_autoptr(GError) gerr = NULL;
    *ret_moved = FALSE;
    g_autoptr(GBytes) stored = cairn_backend_get(b, key, &gerr);
    if (!stored && !g_error_matches(gerr, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&gerr));
        return FALSE;
    }
    /* checked again now: since verify found it damaged or missing, a backup
     * or a push may have stored it whole (put-if-absent keeps a damaged one,
     * so one that passes now stays whole) */
    if (stored && whole_now(repo, id, stored))
        return TRUE;
    *ret_moved = TRUE;
    gsize len = 0;
    const void *data = stored ? g_bytes_get_data(stored, &len) : "";
    /* the copy first: a damaged object is never just dropped (and a marker
     * of a missing one never replaces a copy set aside before) */
    if (!cairn_backend_put(b, qkey, data, len, stored ? CAIRN_PUT_REPLACE : CAIRN_PUT_IF_ABSENT,
                           NULL, error) ||
        !cairn_backend_flush(b, error))
        return FALSE;
    if (stored && !cairn_backend_remove(b, key, error))
        return FALSE;
    return cairn_backend_flush(b, error);
}

/* ids of the quarantine entries */
static GPtrArray *
entries(CairnRepo *repo, GError **error)
{
    g_autoptr(GPtrArray) list = cairn_backend_list(cairn_repo_backend(repo), PREFIX, error);
    if (!list)
        return NULL;
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < list->len; i++) {
        CairnBackendEntry *e = list->pdata[i];
        CairnId id;
        if (cairn_id_from_hex(e->key + strlen(PREFIX), &id))
            g_ptr_array_add(ids, g_memdup2(&id, sizeof id));
    }
    return ids;
}

GHashTable *
cairn_repo_damaged(CairnRepo *repo, GError **error)
{
    g_autoptr(GPtrArray) ids = entries(repo, error);
    if (!ids)
        return NULL;
    GHashTable *set = g_hash_table_new_full(cairn_id_hash, cairn_id_equal_func, g_free, NULL);
    if (ids->len == 0)
        return set; /* the usual case: one listing, nothing more */
    g_autoptr(GHashTable) present = cairn_repo_list_objects(repo, NULL, error);
    if (!present) {
        g_hash_table_unref(set);
        return NULL;
    }
    for (guint i = 0; i < ids->len; i++)
        if (!g_hash_table_contains(present, ids->pdata[i]))
            g_hash_table_add(set, g_memdup2(ids->pdata[i], sizeof(CairnId)));
    return set;
}

gboolean
cairn_repo_quarantine_clear(CairnRepo *repo, GHashTable *live, guint *ret_removed,
                            GError **error)
{
    *ret_removed = 0;
    g_autoptr(GPtrArray) ids = entries(repo, error);
    if (!ids)
        return FALSE;
    if (ids->len == 0)
        return TRUE;
    g_autoptr(GHashTable) present = cairn_repo_list_objects(repo, NULL, error);
    if (!present)
        return FALSE;
    for (guint i = 0; i < ids->len; i++) {
        if (!g_hash_table_contains(present, ids->pdata[i]) &&
            !(live && !g_hash_table_contains(live, ids->pdata[i])))
            continue;
        g_autofree char *qkey = quarantine_key(ids->pdata[i]);
        if (!cairn_backend_remove(cairn_repo_backend(repo), qkey, error))
            return FALSE;
        (*ret_removed)++;
    }
    return cairn_backend_flush(cairn_repo_backend(repo), error);
}
