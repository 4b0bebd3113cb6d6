/* snapshot.c - list, resolve, publish and forget snapshots. */
#include "config.h"

#include <string.h>

#include "common/util.h"
#include "repo/snapshot.h"

#define REF_PREFIX "snapshots/"

void
cairn_snapshot_free(CairnSnapshot *s)
{
    if (!s)
        return;
    cairn_manifest_free(s->manifest);
    g_free(s);
}

CairnSnapshot *
cairn_snapshot_load(CairnRepo *repo, const CairnId *id, GError **error)
{
    g_autoptr(GError) gerr0 = NULL;
    g_autoptr(GBytes) b = cairn_repo_get(repo, id, NULL, &gerr0);
    if (!b) {
        char hex[CAIRN_ID_HEX_LEN + 1];
        cairn_id_to_hex(id, hex);
        if (g_error_matches(gerr0, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEED_KEY))
            g_propagate_error(error, g_steal_pointer(&gerr0));
        else
            g_set_error(error, gerr0->domain, gerr0->code, "snapshot %.12s cannot be read, its "
                        "manifest is damaged (%s): 'cairn forget %.12s' removes it from the "
                        "repository's list", hex, gerr0->message, hex);
        return NULL;
    }
    gsize len;
    const char *text = g_bytes_get_data(b, &len);
    g_autoptr(GError) gerr = NULL;
    CairnManifest *m = cairn_manifest_from_json(text, len, &gerr);
    if (!m) {
        char hex[CAIRN_ID_HEX_LEN + 1];
        g_set_error(error, gerr->domain, gerr->code, "snapshot %s: %s",
                    cairn_id_to_hex(id, hex), gerr->message);
        return NULL;
    }
    CairnSnapshot *s = g_new0(CairnSnapshot, 1);
    s->id = *id;
    s->manifest = m;
    return s;
}

static gint
by_time(gconstpointer a, gconstpointer b)
{
    const CairnSnapshot *x = *(CairnSnapshot *const *) a, *y = *(CairnSnapshot *const *) b;
    if (x->manifest->time != y->manifest->time)
        return x->manifest->time < y->manifest->time ? -1 : 1;
    if (x->manifest->time_usec != y->manifest->time_usec)
        return x->manifest->time_usec < y->manifest->time_usec ? -1 : 1;
    return memcmp(x->id.b, y->id.b, CAIRN_ID_LEN);
}

/* the ids of all published refs */
static GArray *
list_ref_ids(CairnRepo *repo, GError **error)
{
    g_autoptr(GPtrArray) entries = cairn_backend_list(cairn_repo_backend(repo), REF_PREFIX, error);
    if (!entries)
        return NULL;
    GArray *ids = g_array_sized_new(FALSE, FALSE, sizeof(CairnId), entries->len);
    for (guint i = 0; i < entries->len; i++) {
        CairnBackendEntry *e = entries->pdata[i];
        CairnId id;
        if (cairn_id_from_hex(e->key + strlen(REF_PREFIX), &id))
            g_array_append_val(ids, id);
    }
    return ids;
}

GPtrArray *
cairn_snapshot_list_full(CairnRepo *repo, const char *name, GPtrArray *ret_broken,
                         GError **error)
{
    g_autoptr(GArray) ids = list_ref_ids(repo, error);
    if (!ids)
        return NULL;
    g_autoptr(GPtrArray) out =
        g_ptr_array_new_with_free_func((GDestroyNotify) cairn_snapshot_free);
    for (guint i = 0; i < ids->len; i++) {
        const CairnId *id = &g_array_index(ids, CairnId, i);
        g_autoptr(GError) gerr = NULL;
        CairnSnapshot *s = cairn_snapshot_load(repo, id, &gerr);
        if (!s) {
            if (!ret_broken || g_error_matches(gerr, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEED_KEY)) {
                g_propagate_error(error, g_steal_pointer(&gerr));
                return NULL;
            }
            g_ptr_array_add(ret_broken, g_strdup(gerr->message));
            continue;
        }
        if (name && strcmp(s->manifest->name, name) != 0) {
            cairn_snapshot_free(s);
            continue;
        }
        g_ptr_array_add(out, s);
    }
    g_ptr_array_sort(out, by_time);
    return g_steal_pointer(&out);
}

GPtrArray *
cairn_snapshot_list(CairnRepo *repo, const char *name, GError **error)
{
    return cairn_snapshot_list_full(repo, name, NULL, error);
}

static char *
known_names(GPtrArray *list)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    for (guint i = 0; i < list->len; i++) {
        const char *n = ((CairnSnapshot *) list->pdata[i])->manifest->name;
        if (!g_ptr_array_find_with_equal_func(names, n, g_str_equal, NULL))
            g_ptr_array_add(names, (gpointer) n);
    }
    g_ptr_array_add(names, NULL);
    return g_strjoinv(", ", (char **) names->pdata);
}

static CairnSnapshot *
resolve_named(GPtrArray *list, const char *spec, const char *at, GError **error)
{
    g_autofree char *name = g_strndup(spec, at - spec);
    const char *sel = at + 1;
    g_autoptr(GPtrArray) mine = g_ptr_array_new();
    for (guint i = 0; i < list->len; i++) {
        CairnSnapshot *s = list->pdata[i];
        if (!strcmp(s->manifest->name, name))
            g_ptr_array_add(mine, s);
    }
    if (mine->len == 0) {
        g_autofree char *names = known_names(list);
        g_autoptr(GPtrArray) cands = g_ptr_array_new();
        for (guint i = 0; i < list->len; i++)
            g_ptr_array_add(cands, ((CairnSnapshot *) list->pdata[i])->manifest->name);
        g_ptr_array_add(cands, NULL);
        const char *close = cairn_closest(name, (const char *const *) cands->pdata);
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NOT_FOUND,
                    "no snapshot of '%s' in this repository%s%s%s (known: %s)", name,
                    close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "",
                    *names ? names : "none");
        return NULL;
    }
    if (!strcmp(sel, "latest"))
        return mine->pdata[mine->len - 1];
    if (sel[0] == '~') {
        char *end;
        guint64 n = g_ascii_strtoull(sel + 1, &end, 10);
        if (!g_ascii_isdigit(sel[1]) || end == sel + 1 || *end) {
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_INVALID,
                        "invalid snapshot '%s': after '~' comes a number, e.g. %s@~1", spec, name);
            return NULL;
        }
        if (n >= mine->len) {
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NOT_FOUND,
                        "no snapshot '%s': '%s' has %u snapshots (%s@~0 to %s@~%u)", spec, name,
                        mine->len, name, name, mine->len - 1);
            return NULL;
        }
        return mine->pdata[mine->len - 1 - n];
    }
    int64_t t;
    g_autoptr(GError) terr = NULL;
    if (!cairn_parse_time(sel, &t, &terr)) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_INVALID,
                    "invalid snapshot '%s': after '@' comes latest, ~N or a time "
                    "(YYYY-MM-DD[THH:MM[:SS]][Z])", spec);
        return NULL;
    }
    for (guint i = mine->len; i > 0; i--) {
        CairnSnapshot *s = mine->pdata[i - 1];
        if (s->manifest->time <= t)
            return s;
    }
    g_autofree char *first = cairn_format_time_utc(((CairnSnapshot *) mine->pdata[0])->manifest->time);
    g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NOT_FOUND,
                "no snapshot of '%s' at or before %s: the oldest is from %s", name, sel, first);
    return NULL;
}

CairnSnapshot *
cairn_snapshot_resolve_in(GPtrArray *list, const char *spec, GError **error)
{
    const char *at = strrchr(spec, '@');
    if (at && at != spec)
        return resolve_named(list, spec, at, error);
    if (!cairn_is_hex(spec, 8, CAIRN_ID_HEX_LEN)) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_INVALID,
                    "invalid snapshot '%s': give an id (8 or more hex digits), NAME@latest, "
                    "NAME@~N or NAME@TIME", spec);
        return NULL;
    }
    CairnSnapshot *match = NULL;
    g_autoptr(GString) cands = g_string_new(NULL);
    guint n = 0;
    for (guint i = 0; i < list->len; i++) {
        CairnSnapshot *s = list->pdata[i];
        char hex[CAIRN_ID_HEX_LEN + 1];
        cairn_id_to_hex(&s->id, hex);
        if (!g_str_has_prefix(hex, spec))
            continue;
        g_autofree char *t = cairn_format_time_utc(s->manifest->time);
        g_string_append_printf(cands, "\n  %.16s  %s  %s", hex, s->manifest->name, t);
        match = s;
        n++;
    }
    if (n == 1)
        return match;
    if (n == 0)
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NOT_FOUND,
                    "no snapshot with id '%s' (list them with 'cairn snapshots')", spec);
    else
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_AMBIGUOUS,
                    "snapshot id '%s' is ambiguous, it matches %u snapshots: give more "
                    "digits%s", spec, n, cands->str);
    return NULL;
}

/* an id or an abbreviation: only the refs whose id matches are loaded, so a
 * damaged manifest of another snapshot does not matter */
static CairnSnapshot *
resolve_id(CairnRepo *repo, const char *spec, GError **error)
{
    g_autoptr(GArray) ids = cairn_snapshot_match_ids(repo, spec, error);
    if (!ids)
        return NULL;
    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func((GDestroyNotify) cairn_snapshot_free);
    for (guint i = 0; i < ids->len; i++) {
        CairnSnapshot *s = cairn_snapshot_load(repo, &g_array_index(ids, CairnId, i), error);
        if (!s)
            return NULL;
        g_ptr_array_add(list, s);
    }
    g_autofree char *lower = g_ascii_strdown(spec, -1);
    CairnSnapshot *s = cairn_snapshot_resolve_in(list, lower, error);
    if (!s)
        return NULL;
    guint idx;
    g_ptr_array_find(list, s, &idx);
    return g_ptr_array_steal_index(list, idx);
}

gboolean
cairn_snapshot_spec_is_id(const char *spec)
{
    const char *at = strrchr(spec, '@');
    g_autofree char *lower = g_ascii_strdown(spec, -1);
    return !(at && at != spec) && cairn_is_hex(lower, 8, CAIRN_ID_HEX_LEN);
}

CairnSnapshot *
cairn_snapshot_resolve(CairnRepo *repo, const char *spec, GPtrArray *ret_broken, GError **error)
{
    if (cairn_snapshot_spec_is_id(spec))
        return resolve_id(repo, spec, error);
    g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) list = cairn_snapshot_list_full(repo, NULL, broken, error);
    if (!list)
        return NULL;
    for (guint i = 0; ret_broken && i < broken->len; i++)
        g_ptr_array_add(ret_broken, g_strdup(broken->pdata[i]));
    CairnSnapshot *s = cairn_snapshot_resolve_in(list, spec, error);
    if (!s)
        return NULL;
    /* detach the entry from the list */
    guint idx;
    g_ptr_array_find(list, s, &idx);
    return g_ptr_array_steal_index(list, idx);
}

GArray *
cairn_snapshot_match_ids(CairnRepo *repo, const char *prefix, GError **error)
{
    g_autoptr(GArray) ids = list_ref_ids(repo, error);
    if (!ids)
        return NULL;
    g_autofree char *lower = g_ascii_strdown(prefix, -1);
    GArray *out = g_array_new(FALSE, FALSE, sizeof(CairnId));
    for (guint i = 0; i < ids->len; i++) {
        char hex[CAIRN_ID_HEX_LEN + 1];
        if (g_str_has_prefix(cairn_id_to_hex(&g_array_index(ids, CairnId, i), hex), lower))
            g_array_append_val(out, g_array_index(ids, CairnId, i));
    }
    return out;
}

gboolean
cairn_snapshot_publish(CairnRepo *repo, const CairnManifest *m, CairnId *ret_id, GError **error)
{
    size_t len;
    g_autofree char *json = cairn_manifest_to_json(m, &len);
    CairnId id;
    if (!cairn_repo_put(repo, CAIRN_OBJECT_MANIFEST, json, len, &id, NULL, error) ||
        !cairn_repo_flush(repo, error))
        return FALSE;
    char hex[CAIRN_ID_HEX_LEN + 1];
    cairn_id_to_hex(&id, hex);
    g_autofree char *key = g_strconcat(REF_PREFIX, hex, NULL);
    g_autofree char *body = g_strconcat(hex, "\n", NULL);
    if (!cairn_backend_put(cairn_repo_backend(repo), key, body, strlen(body), CAIRN_PUT_REPLACE,
                           NULL, error) ||
        !cairn_repo_flush(repo, error))
        return FALSE;
    if (ret_id)
        *ret_id = id;
    return TRUE;
}

gboolean
cairn_snapshot_forget(CairnRepo *repo, const CairnId *id, GError **error)
{
    char hex[CAIRN_ID_HEX_LEN + 1];
    g_autofree char *key = g_strconcat(REF_PREFIX, cairn_id_to_hex(id, hex), NULL);
    return cairn_backend_remove(cairn_repo_backend(repo), key, error) &&
           cairn_repo_flush(repo, error);
}
