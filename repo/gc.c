/* gc.c - garbage collection under the exclusive lock, with a grace period. */
#include "config.h"

#include <string.h>

#include "common/util.h"
#include "repo/gc.h"
#include "repo/quarantine.h"
#include "repo/index.h"
#include "repo/lock.h"
#include "repo/snapshot.h"
#include "repo/verify.h"

static void
mark(GHashTable *live, const CairnId *id)
{
    if (!g_hash_table_contains(live, id))
        g_hash_table_add(live, g_memdup2(id, sizeof *id));
}

static gboolean
mark_snapshot(CairnRepo *repo, CairnSnapshot *s, GHashTable *live, GError **error)
{
    CairnManifest *m = s->manifest;
    mark(live, &s->id);
    if (m->has_domain_xml)
        mark(live, &m->domain_xml);
    if (m->has_checkpoint_xml)
        mark(live, &m->checkpoint_xml);
    for (guint d = 0; d < m->disks->len; d++) {
        CairnManifestDisk *disk = m->disks->pdata[d];
        mark(live, &disk->index);
        g_autoptr(GError) gerr = NULL;
        g_autoptr(CairnIndex) index = cairn_index_load(repo, &disk->index, &gerr);
        g_autoptr(GHashTable) aside = index ? NULL : cairn_repo_damaged(repo, NULL);
        if (aside && g_hash_table_contains(aside, &disk->index)) {
            char hex[CAIRN_ID_HEX_LEN + 1];
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                        "gc stopped, nothing deleted: the index of disk %s of snapshot %.12s "
                        "(%s) was set aside as damaged by verify; the next backup of that disk "
                        "stores it again and repairs every snapshot that uses it (if the disk "
                        "has changed since, 'cairn forget %.12s' drops the snapshot)",
                        disk->target, cairn_id_to_hex(&s->id, hex), m->name, hex);
            return FALSE;
        }
        if (!index) {
            char hex[CAIRN_ID_HEX_LEN + 1];
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                        "gc stopped, nothing deleted (without the disk's index gc cannot "
                        "know what it keeps alive): snapshot %.12s (%s) disk %s cannot be "
                        "read: %s; 'cairn forget %.12s' drops that snapshot (the next backup "
                        "of the same disk stores a new index)", cairn_id_to_hex(&s->id, hex),
                        m->name, disk->target, gerr->message, hex);
            return FALSE;
        }
        for (uint64_t c = 0; c < index->count; c++)
            if (!cairn_id_is_zero(&index->ids[c]))
                mark(live, &index->ids[c]);
    }
    return TRUE;
}

gboolean
cairn_gc(CairnRepo *repo, int64_t grace, gboolean dry_run, int64_t lock_wait,
         CairnGcStats *st, GError **error)
{
    memset(st, 0, sizeof *st);
    g_autoptr(CairnLock) lock = cairn_lock_acquire(repo, CAIRN_LOCK_EXCLUSIVE, "gc", lock_wait,
                                                   error);
    if (!lock)
        return FALSE;
    g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) snaps = cairn_snapshot_list_full(repo, NULL, broken, error);
    if (!snaps)
        return FALSE;
    if (broken->len) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                    "gc stopped, nothing deleted (without a snapshot's manifest gc cannot "
                    "know what it keeps alive): %s%s", (char *) broken->pdata[0],
                    broken->len > 1 ? "; 'cairn verify' lists the others" : "");
        return FALSE;
    }
    g_autoptr(GHashTable) live = g_hash_table_new_full(cairn_id_hash, cairn_id_equal_func,
                                                       g_free, NULL);
    for (guint i = 0; i < snaps->len; i++)
        if (!mark_snapshot(repo, snaps->pdata[i], live, error))
            return FALSE;
    st->snapshots = snaps->len;

    g_autoptr(GPtrArray) entries = NULL;
    g_autoptr(GHashTable) present = cairn_repo_list_objects(repo, &entries, error);
    if (!present)
        return FALSE;
    int64_t cutoff = cairn_now() - grace;
    CairnBackend *b = cairn_repo_backend(repo);
    for (guint i = 0; i < entries->len; i++) {
        CairnBackendEntry *e = entries->pdata[i];
        const char *slash = strrchr(e->key, '/');
        CairnId id;
        if (!slash || !cairn_id_from_hex(slash + 1, &id))
            continue;
        st->objects_total++;
        if (g_hash_table_contains(live, &id)) {
            st->objects_live++;
            continue;
        }
        if (e->mtime > cutoff) {
            st->objects_young++;
            continue;
        }
        st->objects_deleted++;
        st->bytes_deleted += e->size;
        if (!dry_run && !cairn_backend_remove(b, e->key, error))
            return FALSE;
    }
    if (!dry_run && !cairn_backend_cleanup(b, grace, &st->temps_removed, error))
        return FALSE;
    if (!dry_run && !cairn_repo_quarantine_clear(repo, live, &st->quarantine_cleared, error))
        return FALSE;
    return cairn_backend_flush(b, error);
}
