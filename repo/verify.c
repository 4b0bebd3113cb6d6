/* verify.c - structure and data verification of snapshots. */
#include "config.h"

#include <string.h>

#include "common/util.h"
#include "repo/index.h"
#include "repo/object.h"
#include "repo/verify.h"

void
cairn_verify_report_clear(CairnVerifyReport *r)
{
    if (r->problems)
        g_ptr_array_unref(r->problems);
    if (r->damaged)
        g_array_unref(r->damaged);
    memset(r, 0, sizeof *r);
}

GHashTable *
cairn_repo_list_objects(CairnRepo *repo, GPtrArray **ret_entries, GError **error)
{
    g_autoptr(GPtrArray) entries = cairn_backend_list(cairn_repo_backend(repo), "objects/", error);
    if (!entries)
        return NULL;
    GHashTable *set = g_hash_table_new_full(cairn_id_hash, cairn_id_equal_func, g_free, NULL);
    for (guint i = 0; i < entries->len; i++) {
        CairnBackendEntry *e = entries->pdata[i];
        const char *slash = strrchr(e->key, '/');
        CairnId id;
        if (slash && cairn_id_from_hex(slash + 1, &id))
            g_hash_table_add(set, g_memdup2(&id, sizeof id));
    }
    if (ret_entries)
        *ret_entries = g_steal_pointer(&entries);
    return set;
}

typedef struct {
    CairnSnapshot *snap;
    const char *target;
    CairnIndex *index;
} LoadedIndex;

typedef struct {
    CairnRepo *repo;
    GMutex lock;
    GHashTable *bad; /* CairnId* -> char* reason */
    GArray *damaged; /* CairnId: of them, the corrupt or missing ones */
    guint64 read;
} ReadCtx;

/* a failure that says the object itself is bad (not the way to it) */
static gboolean
is_damage(const GError *e)
{
    return g_error_matches(e, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT) ||
           g_error_matches(e, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_MISSING);
}

static void
read_one(gpointer data, gpointer user)
{
    CairnId *id = data;
    ReadCtx *ctx = user;
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GBytes) b = cairn_repo_get(ctx->repo, id, NULL, &gerr);
    g_mutex_lock(&ctx->lock);
    ctx->read++;
    if (!b) {
        g_hash_table_insert(ctx->bad, g_memdup2(id, sizeof *id), g_strdup(gerr->message));
        if (is_damage(gerr))
            g_array_append_val(ctx->damaged, *id);
    }
    g_mutex_unlock(&ctx->lock);
}

static char *
referencing(GArray *loaded, const CairnId *id)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; i < loaded->len; i++) {
        LoadedIndex *li = &g_array_index(loaded, LoadedIndex, i);
        for (uint64_t c = 0; c < li->index->count; c++) {
            if (!cairn_id_equal(&li->index->ids[c], id))
                continue;
            char hex[CAIRN_ID_HEX_LEN + 1];
            g_autofree char *t = cairn_format_time_utc(li->snap->manifest->time);
            g_string_append_printf(s, "%s%.16s (%s %s, disk %s, offset %" G_GUINT64_FORMAT ")",
                                   s->len ? ", " : "", cairn_id_to_hex(&li->snap->id, hex),
                                   li->snap->manifest->name, t, li->target,
                                   c * li->index->chunk_size);
            break;
        }
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* the manifests of the refs that did not load because they are damaged or
 * missing (not for another reason): they are set aside like any object */
static void
damaged_manifests(CairnRepo *repo, GPtrArray *loaded, GArray *damaged)
{
    g_autoptr(GArray) ids = cairn_snapshot_match_ids(repo, "", NULL);
    g_autoptr(GHashTable) ok = g_hash_table_new(cairn_id_hash, cairn_id_equal_func);
    for (guint i = 0; i < loaded->len; i++)
        g_hash_table_add(ok, &((CairnSnapshot *) loaded->pdata[i])->id);
    for (guint i = 0; ids && i < ids->len; i++) {
        const CairnId *id = &g_array_index(ids, CairnId, i);
        if (g_hash_table_contains(ok, id))
            continue;
        g_autoptr(GError) gerr = NULL;
        g_autoptr(CairnSnapshot) s = cairn_snapshot_load(repo, id, &gerr);
        if (!s && is_damage(gerr))
            g_array_append_val(damaged, *id);
    }
}

gboolean
cairn_verify(CairnRepo *repo, GPtrArray *snapshots, gboolean read_data,
             CairnVerifyReport *r, GError **error)
{
    return cairn_verify_sample(repo, snapshots, read_data ? 100.0 : 0.0, r, error);
}

/* how many of n chunks read_percent is (rounded up: a sample is never empty) */
static guint
sample_size(guint n, double read_percent)
{
    if (read_percent >= 100.0)
        return n;
    double x = (double) n * read_percent / 100.0;
    guint k = (guint) x;
    return (double) k < x ? k + 1 : k;
}

/* Read k of the chunks, picked at random (the first k of a partial
 * Fisher-Yates shuffle), in parallel. */
static void
read_chunks(ReadCtx *ctx, GHashTable *chunks, guint k)
{
    g_autoptr(GPtrArray) ids = g_ptr_array_sized_new(g_hash_table_size(chunks));
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, chunks);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_ptr_array_add(ids, key);
    for (guint i = 0; i < k && k < ids->len; i++) {
        guint j = (guint) g_random_int_range((gint32) i, (gint32) ids->len);
        gpointer t = ids->pdata[i];
        ids->pdata[i] = ids->pdata[j];
        ids->pdata[j] = t;
    }
    GThreadPool *pool = g_thread_pool_new(read_one, ctx, (gint) g_get_num_processors() + 1,
                                          FALSE, NULL);
    for (guint i = 0; i < k && i < ids->len; i++)
        g_thread_pool_push(pool, ids->pdata[i], NULL);
    g_thread_pool_free(pool, FALSE, TRUE);
}

gboolean
cairn_verify_sample(CairnRepo *repo, GPtrArray *snapshots, double read_percent,
                    CairnVerifyReport *r, GError **error)
{
    gboolean read_all = read_percent >= 100.0;
    memset(r, 0, sizeof *r);
    r->problems = g_ptr_array_new_with_free_func(g_free);
    r->damaged = g_array_new(FALSE, FALSE, sizeof(CairnId));
    g_autoptr(GPtrArray) all = NULL;
    if (!snapshots) {
        all = cairn_snapshot_list_full(repo, NULL, r->problems, error);
        if (!all)
            return FALSE;
        snapshots = all;
        damaged_manifests(repo, all, r->damaged);
    }
    g_autoptr(GHashTable) present = NULL;
    if (!read_all && !(present = cairn_repo_list_objects(repo, NULL, error)))
        return FALSE;

    g_autoptr(GArray) loaded = g_array_new(FALSE, FALSE, sizeof(LoadedIndex));
    g_autoptr(GHashTable) chunks = g_hash_table_new(cairn_id_hash, cairn_id_equal_func);
    for (guint i = 0; i < snapshots->len; i++) {
        CairnSnapshot *s = snapshots->pdata[i];
        CairnManifest *m = s->manifest;
        char hex[CAIRN_ID_HEX_LEN + 1], xhex[CAIRN_ID_HEX_LEN + 1];
        cairn_id_to_hex(&s->id, hex);
        r->snapshots++;
        const struct { gboolean has; const CairnId *id; const char *what; } blobs[] = {
            { m->has_domain_xml, &m->domain_xml, "domain XML" },
            { m->has_checkpoint_xml, &m->checkpoint_xml, "checkpoint XML" },
        };
        for (size_t b = 0; b < G_N_ELEMENTS(blobs); b++) {
            if (!blobs[b].has)
                continue;
            g_autoptr(GError) gerr = NULL;
            g_autoptr(GBytes) blob = cairn_repo_get(repo, blobs[b].id, NULL, &gerr);
            r->objects_read++;
            if (!blob)
                g_ptr_array_add(r->problems, g_strdup_printf("snapshot %.16s (%s): %s %s: %s",
                                hex, m->name, blobs[b].what, cairn_id_to_hex(blobs[b].id, xhex),
                                gerr->message));
            if (!blob && is_damage(gerr))
                g_array_append_val(r->damaged, *blobs[b].id);
        }
        for (guint d = 0; d < m->disks->len; d++) {
            CairnManifestDisk *disk = m->disks->pdata[d];
            g_autoptr(GError) gerr = NULL;
            CairnIndex *index = cairn_index_load(repo, &disk->index, &gerr);
            r->objects_read++;
            if (!index) {
                g_ptr_array_add(r->problems, g_strdup_printf("snapshot %.16s (%s) disk %s: %s",
                                hex, m->name, disk->target, gerr->message));
                if (is_damage(gerr))
                    g_array_append_val(r->damaged, disk->index);
                continue;
            }
            r->indexes++;
            if (index->virtual_size != disk->virtual_size)
                g_ptr_array_add(r->problems, g_strdup_printf("snapshot %.16s (%s) disk %s: "
                                "index size %" G_GUINT64_FORMAT " differs from the manifest's %"
                                G_GUINT64_FORMAT, hex, m->name, disk->target,
                                index->virtual_size, disk->virtual_size));
            LoadedIndex li = { s, disk->target, index };
            g_array_append_val(loaded, li);
            for (uint64_t c = 0; c < index->count; c++)
                if (!cairn_id_is_zero(&index->ids[c]))
                    g_hash_table_add(chunks, &index->ids[c]);
        }
    }
    r->chunks = g_hash_table_size(chunks);

    ReadCtx ctx = { .repo = repo, .damaged = r->damaged };
    g_mutex_init(&ctx.lock);
    ctx.bad = g_hash_table_new_full(cairn_id_hash, cairn_id_equal_func, g_free, g_free);
    GHashTableIter it;
    gpointer key;
    if (read_percent > 0) {
        read_chunks(&ctx, chunks, sample_size(r->chunks, read_percent));
        r->objects_read += ctx.read;
        r->chunks_read = ctx.read;
    }
    if (!read_all) {
        g_hash_table_iter_init(&it, chunks);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
            if (!g_hash_table_contains(present, key) && !g_hash_table_contains(ctx.bad, key)) {
                char hex[CAIRN_ID_HEX_LEN + 1];
                g_hash_table_insert(ctx.bad, g_memdup2(key, sizeof(CairnId)),
                                    g_strdup_printf("object %s is missing",
                                                    cairn_id_to_hex(key, hex)));
                g_array_append_val(r->damaged, *(CairnId *) key);
            }
        }
    }
    g_hash_table_iter_init(&it, ctx.bad);
    gpointer reason;
    while (g_hash_table_iter_next(&it, &key, &reason)) {
        g_autofree char *refs = referencing(loaded, key);
        g_ptr_array_add(r->problems, g_strdup_printf("%s; referenced by snapshot %s",
                                                     (char *) reason, refs));
    }
    g_hash_table_unref(ctx.bad);
    g_mutex_clear(&ctx.lock);
    for (guint i = 0; i < loaded->len; i++)
        cairn_index_free(g_array_index(loaded, LoadedIndex, i).index);
    return TRUE;
}

static void
check_one(gpointer data, gpointer user)
{
    CairnId *id = data;
    ReadCtx *ctx = user;
    g_autofree char *key = cairn_object_key(id);
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GBytes) b = cairn_backend_get(cairn_repo_backend(ctx->repo), key, &gerr);
    gboolean ok = b && cairn_object_check_stored(id, g_bytes_get_data(b, NULL),
                                                 g_bytes_get_size(b),
                                                 cairn_repo_is_encrypted(ctx->repo), &gerr);
    g_mutex_lock(&ctx->lock);
    ctx->read++;
    if (!ok)
        g_hash_table_insert(ctx->bad, g_memdup2(id, sizeof *id), g_strdup(gerr->message));
    if (b && !ok)
        g_array_append_val(ctx->damaged, *id); /* read, and its bytes are wrong */
    g_mutex_unlock(&ctx->lock);
}

gboolean
cairn_verify_stored(CairnRepo *repo, CairnVerifyReport *r, GError **error)
{
    memset(r, 0, sizeof *r);
    r->problems = g_ptr_array_new_with_free_func(g_free);
    r->damaged = g_array_new(FALSE, FALSE, sizeof(CairnId));
    g_autoptr(GHashTable) present = cairn_repo_list_objects(repo, NULL, error);
    if (!present)
        return FALSE;
    g_autoptr(GPtrArray) refs = cairn_backend_list(cairn_repo_backend(repo), "snapshots/", error);
    if (!refs)
        return FALSE;
    for (guint i = 0; i < refs->len; i++) {
        CairnBackendEntry *e = refs->pdata[i];
        CairnId id;
        if (!cairn_id_from_hex(e->key + strlen("snapshots/"), &id))
            continue;
        r->snapshots++;
        if (!g_hash_table_contains(present, &id))
            g_ptr_array_add(r->problems, g_strdup_printf("snapshot %s: its manifest object "
                                                         "is missing", e->key + 10));
    }
    ReadCtx ctx = { .repo = repo, .damaged = r->damaged };
    g_mutex_init(&ctx.lock);
    ctx.bad = g_hash_table_new_full(cairn_id_hash, cairn_id_equal_func, g_free, g_free);
    GThreadPool *pool = g_thread_pool_new(check_one, &ctx, (gint) g_get_num_processors() + 2,
                                          FALSE, NULL);
    GHashTableIter it;
    gpointer key, reason;
    g_hash_table_iter_init(&it, present);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_thread_pool_push(pool, key, NULL);
    g_thread_pool_free(pool, FALSE, TRUE);
    r->objects_read = ctx.read;
    g_hash_table_iter_init(&it, ctx.bad);
    while (g_hash_table_iter_next(&it, &key, &reason))
        g_ptr_array_add(r->problems, g_strdup(reason));
    g_hash_table_unref(ctx.bad);
    g_mutex_clear(&ctx.lock);
    return TRUE;
}
