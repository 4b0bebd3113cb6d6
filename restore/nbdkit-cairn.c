/* nbdkit-cairn.c - an nbdkit plugin serving one disk of a cairn snapshot,
 * read-only, straight from the repository.
 *
 *   nbdkit --readonly PATH/nbdkit-cairn-plugin.so repo=LOCATION snapshot=ID disk=vda
 *          [key_file=FILE] [lock_wait=SECONDS] [cache=CHUNKS] [holes=zero|unknown]
 *
 * repo= is a path, a URL or the name of a configured remote (remotes.d).
 * .get_ready opens the repository, resolves the snapshot and loads the
 * disk's index, so a bad argument stops nbdkit before it listens;
 * .after_fork takes a shared repository lock (gc does not delete what is
 * being served) from the process that will serve. Every read fetches the
 * chunks it covers with cairn_repo_get, which re-hashes them: a damaged
 * chunk is an EIO naming the object, never wrong data. Holes read as zeros
 * and are reported as hole+zero extents (holes=unknown: hole only, for a
 * QEMU block pull, which reads and copies every extent known to be zero but
 * leaves alone the ones it knows nothing of). A small LRU cache of decoded
 * chunks (shared by all connections, guarded by one mutex) serves the many
 * small reads a client makes inside one chunk; a chunk being fetched by one
 * thread is waited for, not fetched again, by the others. A reader that
 * goes through the disk in order (a block pull, nbdcopy) gets the next
 * chunks fetched ahead by a small thread pool, so fetching and checking
 * overlap with its reads. */
#define NBDKIT_API_VERSION 2
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <nbdkit-plugin.h>

#include "policies/remote.h"
#include "repo/index.h"
#include "repo/lock.h"
#include "repo/snapshot.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* decoded chunks kept: at most this many, and about CACHE_BUDGET bytes */
#define CACHE_MAX_ENTRIES 16
#define CACHE_BUDGET (64u * 1024 * 1024)
/* chunks fetched ahead of a sequential reader, and threads fetching them */
#define PREFETCH_AHEAD 4
#define PREFETCH_THREADS 4

typedef struct {
    uint64_t chunk;    /* index entry number */
    GBytes *data;      /* NULL while being fetched */
    uint64_t used;     /* LRU clock */
    gboolean valid;
    gboolean ahead;    /* fetched ahead, not read yet */
} CacheEntry;

/* The plugin's state: nbdkit plugins are process-wide by design. */
static struct {
    /* configuration */
    char *repo_location, *snapshot, *disk, *key_file;
    int64_t lock_wait;
    unsigned cache_entries;
    gboolean holes_unknown;
    /* after .get_ready */
    CairnRepo *repo;
    CairnIndex *index;
    char *snapshot_hex;
    CairnLock *lock;
    /* the cache */
    GMutex mutex;
    GCond fetched;
    CacheEntry cache[CACHE_MAX_ENTRIES];
    uint64_t clock;
    uint64_t last;     /* the chunk read last */
    GThreadPool *prefetch;
} P = { .lock_wait = 600, .last = G_MAXUINT64 };

static void
cairn_unload(void)
{
    if (P.prefetch)
        g_thread_pool_free(P.prefetch, TRUE, TRUE);
    cairn_lock_release(P.lock);
    for (unsigned i = 0; i < CACHE_MAX_ENTRIES; i++)
        if (P.cache[i].data)
            g_bytes_unref(P.cache[i].data);
    cairn_index_free(P.index);
    cairn_repo_free(P.repo);
    g_free(P.snapshot_hex);
    g_free(P.repo_location);
    g_free(P.snapshot);
    g_free(P.disk);
    g_free(P.key_file);
}

static int
cairn_config(const char *key, const char *value)
{
    if (!strcmp(key, "repo")) {
        g_free(P.repo_location);
        P.repo_location = g_strdup(value);
    } else if (!strcmp(key, "snapshot")) {
        g_free(P.snapshot);
        P.snapshot = g_strdup(value);
    } else if (!strcmp(key, "disk")) {
        g_free(P.disk);
        P.disk = g_strdup(value);
    } else if (!strcmp(key, "key_file")) {
        g_free(P.key_file);
        P.key_file = g_strdup(value);
    } else if (!strcmp(key, "lock_wait")) {
        if (nbdkit_parse_int64_t("lock_wait", value, &P.lock_wait) == -1)
            return -1;
        if (P.lock_wait < 0) {
            nbdkit_error("lock_wait must be 0 or more seconds, not '%s'", value);
            return -1;
        }
    } else if (!strcmp(key, "cache")) {
        if (nbdkit_parse_unsigned("cache", value, &P.cache_entries) == -1)
            return -1;
        if (P.cache_entries > CACHE_MAX_ENTRIES) {
            nbdkit_error("cache is at most %u chunks, not '%s'", CACHE_MAX_ENTRIES, value);
            return -1;
        }
    } else if (!strcmp(key, "holes")) {
        if (strcmp(value, "zero") != 0 && strcmp(value, "unknown") != 0) {
            nbdkit_error("holes is 'zero' or 'unknown', not '%s'", value);
            return -1;
        }
        P.holes_unknown = !strcmp(value, "unknown");
    } else {
        nbdkit_error("unknown parameter '%s' (known: repo, snapshot, disk, key_file, "
                     "lock_wait, cache, holes)", key);
        return -1;
    }
    return 0;
}

static int
cairn_config_complete(void)
{
    if (!P.repo_location || !P.snapshot || !P.disk) {
        nbdkit_error("give repo=LOCATION snapshot=ID disk=TARGET (missing: %s%s%s)",
                     P.repo_location ? "" : "repo ", P.snapshot ? "" : "snapshot ",
                     P.disk ? "" : "disk");
        return -1;
    }
    return 0;
}

#define cairn_config_help \
    "repo=LOCATION    (required) repository path, URL or configured remote name\n" \
    "snapshot=ID      (required) snapshot id (or DOMAIN@latest, an abbreviation...)\n" \
    "disk=TARGET      (required) the disk to serve, e.g. vda\n" \
    "key_file=FILE    key of an encrypted repository\n" \
    "lock_wait=SECS   how long to wait for a conflicting repository lock (600)\n" \
    "cache=N          decoded chunks kept in memory (at most 16)\n" \
    "holes=zero       holes are reported as hole+zero extents (default); unknown:\n" \
    "                 as hole only (a QEMU block pull then skips them)"

/* a configured remote's name, else a path or URL (as the CLI's --repo) */
static CairnRepo *
open_repo(GError **error)
{
    if (!cairn_remote_is_name(P.repo_location))
        return cairn_repo_open(P.repo_location, P.key_file, error);
    g_autoptr(CairnRemote) r = cairn_remote_lookup(P.repo_location, error);
    if (!r)
        return NULL;
    CairnBackend *b = cairn_remote_open_backend(r, FALSE, error);
    return b ? cairn_repo_open_backend(b, P.key_file, error) : NULL;
}

static CairnSnapshot *
find_snapshot(GError **error)
{
    CairnId id;
    if (strlen(P.snapshot) == CAIRN_ID_HEX_LEN && cairn_id_from_hex(P.snapshot, &id))
        return cairn_snapshot_load(P.repo, &id, error);
    return cairn_snapshot_resolve(P.repo, P.snapshot, NULL, error);
}

static int
cairn_get_ready(void)
{
    g_autoptr(GError) gerr = NULL;
    if (!(P.repo = open_repo(&gerr))) {
        nbdkit_error("%s", gerr->message);
        return -1;
    }
    g_autoptr(CairnSnapshot) s = find_snapshot(&gerr);
    if (!s) {
        nbdkit_error("%s", gerr->message);
        return -1;
    }
    const CairnManifestDisk *d = cairn_manifest_find_disk(s->manifest, P.disk);
    if (!d) {
        nbdkit_error("snapshot '%s' has no disk '%s'", P.snapshot, P.disk);
        return -1;
    }
    if (!(P.index = cairn_index_load(P.repo, &d->index, &gerr))) {
        nbdkit_error("disk %s: %s", P.disk, gerr->message);
        return -1;
    }
    char hex[CAIRN_ID_HEX_LEN + 1];
    P.snapshot_hex = g_strdup(cairn_id_to_hex(&s->id, hex));
    if (!P.cache_entries)
        P.cache_entries = CLAMP(CACHE_BUDGET / P.index->chunk_size, 2, CACHE_MAX_ENTRIES);
    nbdkit_debug("serving %s of snapshot %s: %" PRIu64 " bytes in %" PRIu64 " chunks of %u, "
                 "%" PRIu64 " with data, cache of %u chunks", P.disk, P.snapshot_hex,
                 P.index->virtual_size, P.index->count, P.index->chunk_size,
                 cairn_index_data_chunks(P.index), P.cache_entries);
    return 0;
}

static void prefetch_worker(gpointer data, gpointer unused);

/* after nbdkit forked (if it does): the lock's refresher thread and pid
 * belong to the serving process */
static int
cairn_after_fork(void)
{
    g_autoptr(GError) gerr = NULL;
    if (!(P.lock = cairn_lock_acquire(P.repo, CAIRN_LOCK_SHARED, "serve", P.lock_wait, &gerr))) {
        nbdkit_error("%s", gerr->message);
        return -1;
    }
    if (P.cache_entries > PREFETCH_AHEAD + 2 &&
        !(P.prefetch = g_thread_pool_new(prefetch_worker, NULL, PREFETCH_THREADS, FALSE, &gerr))) {
        nbdkit_error("cannot start the prefetch threads: %s", gerr->message);
        return -1;
    }
    return 0;
}

static void *
cairn_open(int readonly)
{
    return &P; /* every connection reads the same disk */
}

static int64_t
cairn_get_size(void *handle)
{
    return (int64_t) P.index->virtual_size;
}

static int
cairn_can_write(void *handle)
{
    return 0;
}

static int
cairn_can_multi_conn(void *handle)
{
    return 1; /* read-only: every connection sees the same bytes */
}

static int
cairn_can_cache(void *handle)
{
    return NBDKIT_CACHE_EMULATE;
}

/* fetch and check one chunk (no lock held) */
static GBytes *
fetch_chunk(uint64_t i, GError **error)
{
    const CairnId *id = &P.index->ids[i];
    char hex[CAIRN_ID_HEX_LEN + 1];
    CairnObjectType type = 0;
    g_autoptr(GBytes) data = cairn_repo_get(P.repo, id, &type, error);
    if (!data)
        return NULL;
    if (type != CAIRN_OBJECT_CHUNK) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                    "object %s is a %s, not a chunk (the index is corrupt: run cairn verify)",
                    cairn_id_to_hex(id, hex), cairn_object_type_name(type));
        return NULL;
    }
    uint32_t want = cairn_index_chunk_len(P.index, i);
    if (g_bytes_get_size(data) != want) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                    "chunk %s has %" G_GSIZE_FORMAT " bytes where the index expects %u "
                    "(the repository is corrupt: run cairn verify)",
                    cairn_id_to_hex(id, hex), g_bytes_get_size(data), want);
        return NULL;
    }
    return g_steal_pointer(&data);
}

static CacheEntry *
cache_find(uint64_t chunk)
{
    for (unsigned k = 0; k < P.cache_entries; k++)
        if (P.cache[k].valid && P.cache[k].chunk == chunk)
            return &P.cache[k];
    return NULL;
}

/* a free slot, else the least recently used finished one; NULL when every
 * slot is being fetched */
static CacheEntry *
cache_victim(void)
{
    CacheEntry *v = NULL;
    for (unsigned k = 0; k < P.cache_entries; k++) {
        CacheEntry *e = &P.cache[k];
        if (!e->valid)
            return e;
        if (e->data && (!v || e->used < v->used))
            v = e;
    }
    return v;
}

/* store a fetched chunk in its claimed slot, or free the slot (mutex held) */
static void
cache_fill(CacheEntry *e, GBytes *b)
{
    if (b) {
        e->data = g_bytes_ref(b);
        e->used = ++P.clock;
    } else {
        e->valid = FALSE; /* a reader fetches it itself and sees the error */
    }
    g_cond_broadcast(&P.fetched);
}

static void
prefetch_worker(gpointer data, gpointer unused)
{
    CacheEntry *e = data;
    GBytes *b = fetch_chunk(e->chunk, NULL);
    g_mutex_lock(&P.mutex);
    cache_fill(e, b);
    g_mutex_unlock(&P.mutex);
    if (b)
        g_bytes_unref(b);
}

/* a sequential reader at chunk i: claim slots for the next chunks and have
 * them fetched (mutex held) */
static void
prefetch_after(uint64_t i)
{
    for (uint64_t j = i + 1; P.prefetch && j <= i + PREFETCH_AHEAD && j < P.index->count; j++) {
        if (cairn_id_is_zero(&P.index->ids[j]) || cache_find(j))
            continue;
        CacheEntry *e = cache_victim();
        if (!e)
            return;
        if (e->data)
            g_bytes_unref(e->data);
        *e = (CacheEntry) { .chunk = j, .valid = TRUE, .ahead = TRUE, .used = ++P.clock };
        g_thread_pool_push(P.prefetch, e, NULL);
    }
}

/* chunk i decoded, from the cache or the repository (a new reference) */
static GBytes *
get_chunk(uint64_t i, GError **error)
{
    g_mutex_lock(&P.mutex);
    CacheEntry *e = cache_find(i);
    gboolean sequential = i == P.last + 1 || (e && e->ahead);
    if (i != P.last) {
        P.last = i;
        if (sequential)
            prefetch_after(i);
    }
    while ((e = cache_find(i)) && !e->data)
        g_cond_wait(&P.fetched, &P.mutex); /* another thread fetches it */
    if (e) {
        e->used = ++P.clock;
        e->ahead = FALSE;
        GBytes *b = g_bytes_ref(e->data);
        g_mutex_unlock(&P.mutex);
        return b;
    }
    e = cache_victim();
    if (e) {
        if (e->data)
            g_bytes_unref(e->data);
        *e = (CacheEntry) { .chunk = i, .valid = TRUE };
    }
    g_mutex_unlock(&P.mutex);

    GBytes *b = fetch_chunk(i, error);

    g_mutex_lock(&P.mutex);
    if (e)
        cache_fill(e, b);
    g_mutex_unlock(&P.mutex);
    return b;
}

static int
cairn_pread(void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
    uint8_t *out = buf;
    const uint64_t cs = P.index->chunk_size;
    while (count > 0) {
        uint64_t i = offset / cs;
        uint64_t in = offset - i * cs;
        uint32_t n = (uint32_t) MIN((uint64_t) count, cs - in);
        if (cairn_id_is_zero(&P.index->ids[i])) {
            memset(out, 0, n);
        } else {
            g_autoptr(GError) gerr = NULL;
            g_autoptr(GBytes) b = get_chunk(i, &gerr);
            if (!b) {
                nbdkit_error("cannot read %s of snapshot %s at offset %" PRIu64 " (chunk %"
                             PRIu64 "): %s", P.disk, P.snapshot_hex, offset, i, gerr->message);
                nbdkit_set_error(EIO);
                return -1;
            }
            memcpy(out, (const uint8_t *) g_bytes_get_data(b, NULL) + in, n);
        }
        out += n;
        offset += n;
        count -= n;
    }
    return 0;
}

static int
cairn_extents(void *handle, uint32_t count, uint64_t offset, uint32_t flags,
              struct nbdkit_extents *extents)
{
    const uint64_t cs = P.index->chunk_size;
    uint64_t end = MIN(offset + count, P.index->virtual_size);
    for (uint64_t i = offset / cs; i * cs < end; i++) {
        uint64_t start = i * cs, len = cairn_index_chunk_len(P.index, i);
        /* a hole reads as zeros either way; whether clients are told so */
        uint32_t hole = P.holes_unknown ? NBDKIT_EXTENT_HOLE
                                        : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
        uint32_t type = cairn_id_is_zero(&P.index->ids[i]) ? hole : 0;
        if (nbdkit_add_extent(extents, start, len, type) == -1)
            return -1;
        if (flags & NBDKIT_FLAG_REQ_ONE)
            break;
    }
    return 0;
}

static struct nbdkit_plugin plugin = {
    .name = "cairn",
    .longname = "cairn snapshot disk (read-only)",
    .version = PACKAGE_VERSION,
    .description = "Serve one disk of a cairn backup snapshot from the repository",
    .unload = cairn_unload,
    .config = cairn_config,
    .config_complete = cairn_config_complete,
    .config_help = cairn_config_help,
    .get_ready = cairn_get_ready,
    .after_fork = cairn_after_fork,
    .open = cairn_open,
    .get_size = cairn_get_size,
    .can_write = cairn_can_write,
    .can_multi_conn = cairn_can_multi_conn,
    .can_cache = cairn_can_cache,
    .pread = cairn_pread,
    .extents = cairn_extents,
    .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
