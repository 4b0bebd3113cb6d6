/* sync.c - copy snapshots between repositories, verified, ref last. */
#include "config.h"

#include <string.h>
#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "repo/index.h"
#include "repo/sync.h"

void
cairn_sync_stats_clear(CairnSyncStats *st)
{
    if (st->problems)
        g_ptr_array_unref(st->problems);
    memset(st, 0, sizeof *st);
}

/* ---- target compatibility ---- */

static char *
encryption_identity(json_t *cfg)
{
    json_t *enc = json_object_get(cfg, "encryption");
    if (!enc || json_is_null(enc))
        return g_strdup("none");
    return g_strdup_printf("%s/%s", json_string_value(json_object_get(json_object_get(enc, "kdf"),
                                                                      "salt")),
                           json_string_value(json_object_get(enc, "key_check")));
}

gboolean
cairn_sync_prepare_target(CairnRepo *src, CairnBackend *target, gboolean check_only,
                          gboolean *ret_empty, GError **error)
{
    if (ret_empty)
        *ret_empty = FALSE;
    const char *mine = cairn_repo_config_text(src);
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GBytes) theirs = cairn_backend_get(target, "config", &gerr);
    if (!theirs) {
        if (!g_error_matches(gerr, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&gerr));
            return FALSE;
        }
        /* an empty target becomes a copy: same chunk size, same encryption
         * identity (it never sees the key), so objects keep their names */
        if (ret_empty)
            *ret_empty = TRUE;
        if (check_only)
            return TRUE;
        return cairn_backend_put(target, "config", mine, strlen(mine), CAIRN_PUT_IF_ABSENT,
                                 NULL, error) &&
               cairn_backend_flush(target, error);
    }
    g_autoptr(CairnJson) a = json_loads(mine, 0, NULL);
    g_autoptr(CairnJson) b = json_loadb(g_bytes_get_data(theirs, NULL), g_bytes_get_size(theirs),
                                        0, NULL);
    if (!b || g_strcmp0(json_string_value(json_object_get(b, "format")), "cairn-repository")) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NOT_A_REPO,
                    "'%s' holds something that is not a cairn repository: nothing was copied",
                    target->location);
        return FALSE;
    }
    json_int_t ca = json_integer_value(json_object_get(a, "chunk_size"));
    json_int_t cb = json_integer_value(json_object_get(b, "chunk_size"));
    g_autofree char *ea = encryption_identity(a);
    g_autofree char *eb = encryption_identity(b);
    if (ca != cb || strcmp(ea, eb) != 0) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_INVALID,
                    "'%s' is a different repository (%s): objects cannot be shared; sync to "
                    "an empty location, or create the other side as a copy of this one",
                    target->location,
                    ca != cb ? "another chunk size" : "another encryption key");
        return FALSE;
    }
    return TRUE;
}

/* ---- bandwidth limit: a token bucket shared by the workers ---- */

typedef struct {
    GMutex lock;
    uint64_t rate;      /* bytes per second, 0 = unlimited */
    double tokens;
    gint64 last_us;
} Bucket;

static void
bucket_take(Bucket *bk, size_t bytes)
{
    if (!bk->rate)
        return;
    g_mutex_lock(&bk->lock);
    gint64 now = g_get_monotonic_time();
    bk->tokens = MIN(bk->tokens + (double) (now - bk->last_us) * (double) bk->rate / 1e6,
                     (double) bk->rate);
    bk->last_us = now;
    bk->tokens -= (double) bytes;
    double debt = -bk->tokens;
    g_mutex_unlock(&bk->lock);
    if (debt > 0)
        g_usleep((gulong) (debt * 1e6 / (double) bk->rate));
}

/* ---- transfer ---- */

/* objects made durable and named on the target together (a local target
 * otherwise commits in batches of up to 4096: an interrupted pull would
 * leave them all as temp files) */
#define SLICE_OBJECTS 64
/* transfers failing in a row (not rejected objects) before giving up: the
 * transfers in flight at once, at least this many */
#define GIVE_UP_AFTER_MIN 4

typedef struct {
    CairnRepo *src;
    CairnBackend *target;
    Bucket bucket;
    GMutex lock;
    GCond done_cond;
    guint outstanding;
    gboolean snapshot_failed;
    guint failures_in_row;    /* transfers that failed for another reason than the object */
    guint give_up_after;
    char *give_up;            /* set: stop, this is why */
    GPtrArray *transport;     /* char*: those failures (one line in all when it gives up) */
    GHashTable *failed;       /* object keys that did not arrive (char*) */
    GHashTable *counted;      /* object keys already counted as present (char*) */
    GHashTable *sizes;        /* source object key -> stored size, for progress */
    CairnSyncStats *st;
    uint64_t done_bytes, total_bytes;
    const CairnSyncOptions *opts;
} Sync;

typedef struct {
    CairnId id;
} Task;

static gboolean
transfer(Sync *sy, const CairnId *id, GError **error)
{
    g_autofree char *key = cairn_object_key(id);
    g_autoptr(GBytes) stored = cairn_backend_get(cairn_repo_backend(sy->src), key, error);
    if (!stored)
        return FALSE;
    gsize len;
    const void *data = g_bytes_get_data(stored, &len);
    /* trust nothing: the object must decode and match its name before it
     * is written anywhere */
    if (!cairn_repo_verify_stored(sy->src, id, data, len, error))
        return FALSE;
    bucket_take(&sy->bucket, len);
    gboolean created = FALSE;
    if (!cairn_backend_put(sy->target, key, data, len, CAIRN_PUT_IF_ABSENT, &created, error))
        return FALSE;
    g_mutex_lock(&sy->lock);
    if (created) {
        sy->st->objects_sent++;
        sy->st->bytes_sent += len;
    } else {
        sy->st->objects_present++;
    }
    sy->done_bytes += len;
    g_mutex_unlock(&sy->lock);
    return TRUE;
}

static void
worker(gpointer data, gpointer user)
{
    Task *t = data;
    Sync *sy = user;
    g_autoptr(GError) gerr = NULL;
    g_mutex_lock(&sy->lock);
    gboolean skip = sy->give_up != NULL || cairn_cancelled(); /* stop soon: the rest waits */
    g_mutex_unlock(&sy->lock);
    gboolean ok = !skip && transfer(sy, &t->id, &gerr);
    g_mutex_lock(&sy->lock);
    if (!ok) {
        sy->snapshot_failed = TRUE;
        g_hash_table_add(sy->failed, cairn_object_key(&t->id));
    }
    if (!ok && !skip) {
        gboolean rejected = g_error_matches(gerr, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT);
        if (rejected)
            sy->st->objects_rejected++;
        else if (++sy->failures_in_row >= sy->give_up_after && !sy->give_up)
            sy->give_up = g_strdup_printf("the last %u transfers failed, giving up (the last: "
                                          "%s)", sy->failures_in_row, gerr->message);
        g_ptr_array_add(rejected ? sy->st->problems : sy->transport, g_strdup(gerr->message));
    } else if (ok) {
        sy->failures_in_row = 0;
    }
    sy->outstanding--;
    g_cond_signal(&sy->done_cond);
    g_mutex_unlock(&sy->lock);
    g_free(t);
}

/* Objects of the snapshot the target lacks, manifest excluded (it goes last). */
static gboolean
missing_objects(Sync *sy, CairnSnapshot *s, GHashTable *present, gboolean published,
                GArray *out, guint64 *ret_present, GError **error)
{
    CairnManifest *m = s->manifest;
    g_autoptr(GHashTable) seen = g_hash_table_new(cairn_id_hash, cairn_id_equal_func);
    g_autoptr(GPtrArray) indexes = g_ptr_array_new_with_free_func((GDestroyNotify) cairn_index_free);
    const CairnId *blobs[2] = { m->has_domain_xml ? &m->domain_xml : NULL,
                                m->has_checkpoint_xml ? &m->checkpoint_xml : NULL };
    for (int i = 0; i < 2; i++)
        if (blobs[i])
            g_hash_table_add(seen, (gpointer) blobs[i]);
    for (guint d = 0; d < m->disks->len; d++) {
        CairnManifestDisk *disk = m->disks->pdata[d];
        g_hash_table_add(seen, &disk->index);
        /* a snapshot already there: its index from the local side if it has
         * a whole one (a pull reads no remote index for nothing) */
        CairnIndex *index = published && sy->opts->index_repo
                                ? cairn_index_load(sy->opts->index_repo, &disk->index, NULL)
                                : NULL;
        if (!index && !(index = cairn_index_load(sy->src, &disk->index, error)))
            return FALSE;
        g_ptr_array_add(indexes, index);
        for (uint64_t c = 0; c < index->count; c++)
            if (!cairn_id_is_zero(&index->ids[c]))
                g_hash_table_add(seen, &index->ids[c]);
    }
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, seen);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        g_autofree char *okey = cairn_object_key(key);
        if (!g_hash_table_contains(present, okey))
            g_array_append_vals(out, key, 1);
        else if (!g_hash_table_contains(sy->counted, okey)) {
            /* each distinct object once, however many snapshots share it */
            g_hash_table_add(sy->counted, g_steal_pointer(&okey));
            (*ret_present)++;
        }
    }
    return TRUE;
}

static GHashTable *
key_set(CairnBackend *b, const char *prefix, GError **error)
{
    g_autoptr(GPtrArray) entries = cairn_backend_list(b, prefix, error);
    if (!entries)
        return NULL;
    GHashTable *set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < entries->len; i++) {
        CairnBackendEntry *e = entries->pdata[i];
        g_hash_table_add(set, g_steal_pointer(&e->key));
    }
    return set;
}

/* the target's copy of an object (key: its object key) decodes and matches
 * its id (the target is a copy of the source: the same keys) */
static gboolean
target_object_whole(Sync *sy, const CairnId *id, const char *key)
{
    g_autoptr(GBytes) b = cairn_backend_get(sy->target, key, NULL);
    return b && cairn_repo_verify_stored(sy->src, id, g_bytes_get_data(b, NULL),
                                         g_bytes_get_size(b), NULL);
}

/* an object's stored size in the source (0 when its listing lacked it) */
static guint64
source_size(Sync *sy, const CairnId *id)
{
    g_autofree char *key = cairn_object_key(id);
    return sy->sizes ? GPOINTER_TO_SIZE(g_hash_table_lookup(sy->sizes, key)) : 0;
}

/* a snapshot moved: sent, or (its ref was there) repaired */
static void
count_moved(Sync *sy, gboolean published)
{
    if (published) {
        sy->st->snapshots_present++;
        sy->st->snapshots_repaired++;
    } else {
        sy->st->snapshots_sent++;
    }
}

/* Send the objects in slices, each made durable before the next: what
 * arrived survives an interruption. FALSE: stopped (signal, give-up). */

static gboolean
send_objects(Sync *sy, GThreadPool *pool, GArray *missing, GError **error)
{
    for (guint i = 0; i < missing->len;) {
        guint end = MIN(missing->len, i + SLICE_OBJECTS);
        for (; i < end; i++) {
            Task *t = g_new(Task, 1);
            t->id = g_array_index(missing, CairnId, i);
            sy->total_bytes += source_size(sy, &t->id);
            g_mutex_lock(&sy->lock);
            sy->outstanding++;
            g_mutex_unlock(&sy->lock);
            g_thread_pool_push(pool, t, NULL);
        }
        g_mutex_lock(&sy->lock);
        while (sy->outstanding > 0) {
            g_cond_wait(&sy->done_cond, &sy->lock);
            if (sy->opts->progress)
                sy->opts->progress(sy->done_bytes, sy->total_bytes, sy->opts->progress_data);
        }
        g_autofree char *give_up = g_strdup(sy->give_up);
        g_mutex_unlock(&sy->lock);
        if (!cairn_backend_flush(sy->target, error))
            return FALSE;
        if (give_up) {
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_FAILED,
                        "%s; what arrived is kept: run it again to resume", give_up);
            return FALSE;
        }
        if (cairn_cancelled()) {
            cairn_set_cancelled(error, "stopped (what arrived is kept: run it again to resume)");
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
sync_one(Sync *sy, GThreadPool *pool, CairnSnapshot *s, GHashTable *present,
         gboolean published, GError **error)
{
    g_autoptr(GArray) missing = g_array_new(FALSE, FALSE, sizeof(CairnId));
    guint64 already = 0;
    g_autoptr(GError) ierr = NULL;
    if (!missing_objects(sy, s, present, published, missing, &already, &ierr)) {
        /* an unreadable index or manifest part: this snapshot cannot move,
         * the others still do */
        char hex[CAIRN_ID_HEX_LEN + 1];
        g_ptr_array_add(sy->st->problems, g_strdup_printf("snapshot %.16s (%s): %s",
                        cairn_id_to_hex(&s->id, hex), s->manifest->name, ierr->message));
        if (g_error_matches(ierr, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT))
            sy->st->objects_rejected++;
        return TRUE;
    }
    g_autofree char *mkey = cairn_object_key(&s->id);
    if (published && missing->len == 0 && g_hash_table_contains(present, mkey)) {
        sy->st->snapshots_present++;
        return TRUE;
    }
    sy->st->objects_present += already;
    sy->snapshot_failed = FALSE;
    gboolean sent = TRUE, failed = FALSE;
    if (sy->opts->dry_run) {
        sy->st->objects_sent += missing->len;
        for (guint i = 0; i < missing->len; i++)
            sy->st->bytes_sent += source_size(sy, &g_array_index(missing, CairnId, i));
        if (!g_hash_table_contains(present, mkey)) {
            sy->st->objects_sent++; /* the manifest */
            sy->st->bytes_sent += source_size(sy, &s->id);
        }
    } else {
        sent = send_objects(sy, pool, missing, error);
        g_mutex_lock(&sy->lock);
        failed = sy->snapshot_failed;
        g_mutex_unlock(&sy->lock);
    }
    for (guint i = 0; i < missing->len; i++) {
        g_autofree char *k = cairn_object_key(&g_array_index(missing, CairnId, i));
        /* only what arrived: a later snapshot sharing a failed object must
         * try it again, and stay unpublished if it fails again */
        if (!g_hash_table_contains(sy->failed, k)) {
            g_hash_table_add(sy->counted, g_strdup(k)); /* counted as sent */
            g_hash_table_add(present, g_steal_pointer(&k));
        }
    }
    if (!sent)
        return FALSE;
    if (failed)
        return TRUE; /* reported in problems; this snapshot stays unpublished */
    if (sy->opts->dry_run) {
        count_moved(sy, published);
        return TRUE;
    }
    /* everything it references is there and durable: manifest, then ref */
    char hex[CAIRN_ID_HEX_LEN + 1];
    cairn_id_to_hex(&s->id, hex);
    g_autofree char *ref = g_strconcat("snapshots/", hex, NULL);
    g_autofree char *body = g_strconcat(hex, "\n", NULL);
    g_autoptr(GError) gerr = NULL;
    if (!cairn_backend_flush(sy->target, error) || !transfer(sy, &s->id, &gerr)) {
        if (gerr) {
            g_ptr_array_add(sy->st->problems, g_strdup(gerr->message));
            return TRUE;
        }
        return FALSE;
    }
    /* the ref goes over a manifest checked on the target: one that was there
     * already (put-if-absent kept it) may be damaged */
    if (!target_object_whole(sy, &s->id, mkey)) {
        g_autoptr(GBytes) good = cairn_backend_get(cairn_repo_backend(sy->src), mkey, error);
        if (!good || !cairn_backend_put(sy->target, mkey, g_bytes_get_data(good, NULL),
                                        g_bytes_get_size(good), CAIRN_PUT_REPLACE, NULL, error))
            return FALSE;
    }
    /* a ref that was there stays: what its snapshot lacked is back */
    if (!cairn_backend_flush(sy->target, error) ||
        (!published && (!cairn_backend_put(sy->target, ref, body, strlen(body),
                                           CAIRN_PUT_REPLACE, NULL, error) ||
                        !cairn_backend_flush(sy->target, error))))
        return FALSE;
    count_moved(sy, published);
    return TRUE;
}

gboolean
cairn_sync(CairnRepo *src, CairnBackend *target, GPtrArray *snapshots,
           const CairnSyncOptions *opts, CairnSyncStats *st, GError **error)
{
    memset(st, 0, sizeof *st);
    st->problems = g_ptr_array_new_with_free_func(g_free);
    gint64 t0 = g_get_monotonic_time();
    Sync sy = { .src = src, .target = target, .st = st, .opts = opts };
    guint parallel = opts->parallel ? opts->parallel : 8;
    sy.give_up_after = MAX(GIVE_UP_AFTER_MIN, parallel);
    sy.transport = g_ptr_array_new_with_free_func(g_free);
    sy.failed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    sy.counted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_mutex_init(&sy.lock);
    g_cond_init(&sy.done_cond);
    g_mutex_init(&sy.bucket.lock);
    sy.bucket.rate = opts->bwlimit;
    sy.bucket.last_us = g_get_monotonic_time();

    gboolean ok = FALSE;
    GThreadPool *pool = NULL;
    if (opts->progress || opts->dry_run) {
        /* one listing of the source gives the sizes: progress in bytes, and
         * what a dry run would send */
        g_autoptr(GPtrArray) entries = cairn_backend_list(cairn_repo_backend(src), "objects/", NULL);
        sy.sizes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (guint i = 0; entries && i < entries->len; i++) {
            CairnBackendEntry *e = entries->pdata[i];
            g_hash_table_insert(sy.sizes, g_steal_pointer(&e->key), GSIZE_TO_POINTER(e->size));
        }
    }
    g_autoptr(GHashTable) present = key_set(target, "objects/", error);
    g_autoptr(GHashTable) refs = present ? key_set(target, "snapshots/", error) : NULL;
    if (!refs)
        goto out;
    pool = g_thread_pool_new(worker, &sy, (gint) parallel, FALSE, NULL);
    ok = TRUE;
    for (guint i = 0; ok && i < snapshots->len; i++) {
        CairnSnapshot *s = snapshots->pdata[i];
        char hex[CAIRN_ID_HEX_LEN + 1];
        g_autofree char *ref = g_strconcat("snapshots/", cairn_id_to_hex(&s->id, hex), NULL);
        gboolean published = g_hash_table_contains(refs, ref);
        if (published && !opts->repair_present) {
            st->snapshots_present++;
            continue;
        }
        ok = sync_one(&sy, pool, s, present, published, error);
    }
out:
    if (pool)
        g_thread_pool_free(pool, FALSE, TRUE);
    g_mutex_clear(&sy.lock);
    g_cond_clear(&sy.done_cond);
    g_mutex_clear(&sy.bucket.lock);
    g_hash_table_unref(sy.failed);
    g_hash_table_unref(sy.counted);
    /* given up: the error says it with the last failure, not each one */
    for (guint i = 0; !sy.give_up && i < sy.transport->len; i++)
        g_ptr_array_add(st->problems, g_strdup(sy.transport->pdata[i]));
    g_ptr_array_unref(sy.transport);
    g_free(sy.give_up);
    if (sy.sizes)
        g_hash_table_unref(sy.sizes);
    st->seconds = (double) (g_get_monotonic_time() - t0) / 1e6;
    if (ok && st->problems->len) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                    "%u problem%s; snapshots with a missing or rejected object were not "
                    "published on '%s' (first: %s)", st->problems->len,
                    st->problems->len == 1 ? "" : "s", target->location,
                    (char *) st->problems->pdata[0]);
        return FALSE;
    }
    return ok;
}
