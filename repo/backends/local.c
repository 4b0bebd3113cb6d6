/* local.c - a repository in a local directory (the embedded default).
 *
 * Each key is a file under the root. A put writes a temp file (".tmp-*")
 * in the target directory, makes it durable, then link()s it into place
 * (put-if-absent: EEXIST means someone else stored it) or rename()s it
 * (replace). Objects ("objects/...", put-if-absent) are batched like git's
 * batch fsync mode: their temp files are written without an fsync each,
 * then one syncfs() makes a whole batch durable before any of them gets its
 * name — an object is never visible before it is whole and durable. Pending
 * objects answer exists() and get() already. Meanwhile their data streams
 * to the disk behind the writers (common/writeback.h), so the syncfs finds
 * little left to write and the page cache is not flooded; a full batch is
 * committed by the put that filled it, outside the lock, while the other
 * writers fill the next one. Directory fsyncs are batched too: flush()
 * commits the pending batch, waits for batches still being committed, and
 * syncs every directory that received a name since the last flush. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "common/writeback.h"
#include "repo/backends/backend.h"

#define BATCH_OBJECTS 4096
#define BATCH_BYTES (1024u << 20)

typedef struct {
    char *tmp;
    char *path;
} Pending;

typedef struct {
    CairnBackend base;
    char *root;
    int root_fd;
    GMutex lock;
    GHashTable *dirty_dirs; /* char* set */
    GHashTable *pending;    /* key -> Pending*: written, not yet durable and named */
    uint64_t pending_bytes;
    GPtrArray *committing;  /* earlier pending tables, being committed without the lock */
    GCond committed;        /* signalled when one of them is done */
    char *commit_failure;   /* the first failed commit's message: later flushes fail too */
    CairnWriteback *writeback; /* pending objects' files, streamed to the disk */
} CairnLocalBackend;

static void
pending_free(Pending *p)
{
    g_free(p->tmp);
    g_free(p->path);
    g_free(p);
}

static CairnLocalBackend *
as_local(CairnBackend *b)
{
    g_assert(b->ops->kind && !strcmp(b->ops->kind, "local"));
    return (CairnLocalBackend *) b;
}

static void
set_error_errno(GError **error, int errsv, const char *what, const char *path)
{
    CairnBackendError code;
    const char *hint = "";
    switch (errsv) {
    case ENOENT: code = CAIRN_BACKEND_ERROR_NOT_FOUND; break;
    case ENOSPC:
    case EDQUOT:
        code = CAIRN_BACKEND_ERROR_NOSPACE;
        hint = " (the repository's filesystem is full: free space, then retry; "
               "nothing already stored was lost)";
        break;
    case EACCES:
    case EPERM:
    case EROFS:
        code = CAIRN_BACKEND_ERROR_PERMISSION;
        hint = " (check ownership and mount options, or run as root)";
        break;
    default: code = CAIRN_BACKEND_ERROR_IO; break;
    }
    g_set_error(error, CAIRN_BACKEND_ERROR, code, "%s '%s': %s%s", what, path,
                g_strerror(errsv), hint);
}

/* A failure of the write-behind (util domain) as a backend error. */
static void
error_from_util(GError **error, GError *err)
{
    if (g_error_matches(err, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_NOSPACE))
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NOSPACE,
                    "%s (the repository's filesystem is full: free space, then retry; "
                    "nothing already stored was lost)", err->message);
    else
        g_set_error_literal(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO, err->message);
    g_error_free(err);
}

static char *
key_path(CairnLocalBackend *l, const char *key)
{
    return g_build_filename(l->root, key, NULL);
}

/* Lock held. */
static Pending *
lookup_pending(CairnLocalBackend *l, const char *key)
{
    Pending *p = g_hash_table_lookup(l->pending, key);
    for (guint i = 0; !p && i < l->committing->len; i++)
        p = g_hash_table_lookup(l->committing->pdata[i], key);
    return p;
}

static gboolean
is_pending(CairnLocalBackend *l, const char *key, char **ret_tmp)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&l->lock);
    Pending *p = lookup_pending(l, key);
    if (p && ret_tmp)
        *ret_tmp = g_strdup(p->tmp);
    return p != NULL;
}

static GBytes *
local_get(CairnBackend *b, const char *key, GError **error)
{
    g_autofree char *path = NULL;
    if (!is_pending(as_local(b), key, &path))
        path = key_path(as_local(b), key);
    cairn_autofd fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && g_str_has_prefix(key, "objects/")) {
        /* committed meanwhile: the temp file is gone, the object is named */
        g_free(path);
        path = key_path(as_local(b), key);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        set_error_errno(error, errno, "cannot open", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        set_error_errno(error, errno, "cannot stat", path);
        return NULL;
    }
    size_t len = (size_t) st.st_size, got = 0;
    g_autofree uint8_t *data = g_malloc(len ? len : 1);
    while (got < len) {
        ssize_t n = pread(fd, data + got, len - got, (off_t) got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_error_errno(error, errno, "cannot read", path);
            return NULL;
        }
        if (n == 0)
            break; /* truncated under us: the decoder reports it */
        got += (size_t) n;
    }
    return g_bytes_new_take(g_steal_pointer(&data), got);
}

static void
mark_dirty(CairnLocalBackend *l, const char *dir)
{
    g_mutex_lock(&l->lock);
    if (!g_hash_table_contains(l->dirty_dirs, dir))
        g_hash_table_add(l->dirty_dirs, g_strdup(dir));
    g_mutex_unlock(&l->lock);
}

/* Make the pending batch durable (one syncfs), then name its objects.
 * Called without the lock: the batch is set aside (still found by
 * lookup_pending) and other threads go on writing the next one. */
static gboolean
commit_pending(CairnLocalBackend *l, GError **error)
{
    g_mutex_lock(&l->lock);
    GHashTable *batch = l->pending;
    if (g_hash_table_size(batch) == 0) {
        g_mutex_unlock(&l->lock);
        return TRUE;
    }
    l->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) pending_free);
    l->pending_bytes = 0;
    g_ptr_array_add(l->committing, batch);
    g_mutex_unlock(&l->lock);

    GError *err = NULL;
    gboolean ok = cairn_writeback_drain(l->writeback, &err);
    if (!ok) {
        GError *wb_error = err;
        err = NULL;
        error_from_util(&err, wb_error);
    } else if (syncfs(l->root_fd) < 0) {
        set_error_errno(&err, errno, "cannot sync the filesystem of", l->root);
        ok = FALSE;
    }
    g_autoptr(GHashTable) dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter it;
    gpointer val;
    g_hash_table_iter_init(&it, batch);
    while (g_hash_table_iter_next(&it, NULL, &val)) {
        Pending *p = val;
        if (ok && link(p->tmp, p->path) < 0 && errno != EEXIST) {
            set_error_errno(&err, errno, "cannot store", p->path);
            ok = FALSE;
        }
        unlink(p->tmp);
        g_hash_table_add(dirs, g_path_get_dirname(p->path));
    }

    g_mutex_lock(&l->lock);
    g_hash_table_iter_init(&it, dirs);
    gpointer dir;
    while (g_hash_table_iter_next(&it, &dir, NULL))
        if (!g_hash_table_contains(l->dirty_dirs, dir))
            g_hash_table_add(l->dirty_dirs, g_strdup(dir));
    g_ptr_array_remove_fast(l->committing, batch);
    if (!ok && !l->commit_failure)
        l->commit_failure = g_strdup(err->message);
    g_cond_broadcast(&l->committed);
    g_mutex_unlock(&l->lock);
    g_hash_table_unref(batch);
    if (!ok)
        g_propagate_error(error, err);
    return ok;
}

static gboolean
local_put(CairnBackend *b, const char *key, const void *data, size_t len, CairnPutMode mode,
          gboolean *ret_created, GError **error)
{
    CairnLocalBackend *l = as_local(b);
    gboolean batch = mode == CAIRN_PUT_IF_ABSENT && g_str_has_prefix(key, "objects/");
    g_autofree char *path = key_path(l, key);
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *rnd = cairn_random_hex(8);
    g_autofree char *tmp = g_strdup_printf("%s/.tmp-%s", dir, rnd);

    cairn_autofd fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT) {
        if (g_mkdir_with_parents(dir, 0755) < 0) {
            set_error_errno(error, errno, "cannot create directory", dir);
            return FALSE;
        }
        g_autofree char *parent = g_path_get_dirname(dir);
        mark_dirty(l, parent);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    }
    if (fd < 0) {
        set_error_errno(error, errno, "cannot create", tmp);
        return FALSE;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_error_errno(error, errno, "cannot write", tmp);
            unlink(tmp);
            return FALSE;
        }
        p += n;
        left -= (size_t) n;
    }
    if (batch) {
        /* durable at the batch's syncfs; meanwhile on its way to the disk */
        GError *wb_error = NULL;
        if (!cairn_writeback_add(l->writeback, cairn_steal_fd(&fd), 0, len, TRUE, tmp,
                                 &wb_error)) {
            error_from_util(error, wb_error);
            unlink(tmp);
            return FALSE;
        }
    } else if (fdatasync(fd) < 0) {
        set_error_errno(error, errno, "cannot fsync", tmp);
        unlink(tmp);
        return FALSE;
    }
    if (!batch && close(cairn_steal_fd(&fd)) < 0) {
        set_error_errno(error, errno, "cannot close", tmp);
        unlink(tmp);
        return FALSE;
    }
    if (batch) {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&l->lock);
        struct stat st;
        if (lookup_pending(l, key) || stat(path, &st) == 0) {
            unlink(tmp);
            *ret_created = FALSE;
            return TRUE;
        }
        Pending *pend = g_new0(Pending, 1);
        pend->tmp = g_steal_pointer(&tmp);
        pend->path = g_steal_pointer(&path);
        g_hash_table_insert(l->pending, g_strdup(key), pend);
        l->pending_bytes += len;
        *ret_created = TRUE;
        gboolean full =
            g_hash_table_size(l->pending) >= BATCH_OBJECTS || l->pending_bytes >= BATCH_BYTES;
        g_clear_pointer(&locker, g_mutex_locker_free);
        return full ? commit_pending(l, error) : TRUE;
    }
    if (mode == CAIRN_PUT_IF_ABSENT) {
        if (link(tmp, path) < 0) {
            int errsv = errno;
            unlink(tmp);
            if (errsv == EEXIST) {
                *ret_created = FALSE;
                return TRUE;
            }
            set_error_errno(error, errsv, "cannot store", path);
            return FALSE;
        }
        unlink(tmp);
    } else if (rename(tmp, path) < 0) {
        set_error_errno(error, errno, "cannot store", path);
        unlink(tmp);
        return FALSE;
    }
    mark_dirty(l, dir);
    *ret_created = TRUE;
    return TRUE;
}

static gboolean
local_exists(CairnBackend *b, const char *key, gboolean *ret_exists, GError **error)
{
    if (is_pending(as_local(b), key, NULL)) {
        *ret_exists = TRUE;
        return TRUE;
    }
    g_autofree char *path = key_path(as_local(b), key);
    struct stat st;
    if (stat(path, &st) == 0) {
        *ret_exists = TRUE;
        return TRUE;
    }
    if (errno == ENOENT) {
        *ret_exists = FALSE;
        return TRUE;
    }
    set_error_errno(error, errno, "cannot stat", path);
    return FALSE;
}

/* Walk dir (relative key rel) recursively. temps: collect ".tmp-*" instead. */
static gboolean
walk(const char *root, const char *rel, const char *prefix, gboolean temps, GPtrArray *out,
     GError **error)
{
    g_autofree char *dirpath = rel[0] ? g_build_filename(root, rel, NULL) : g_strdup(root);
    DIR *d = opendir(dirpath);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)
            return TRUE;
        set_error_errno(error, errno, "cannot list", dirpath);
        return FALSE;
    }
    struct dirent *de;
    gboolean ok = TRUE;
    while (ok && (de = readdir(d))) {
        const char *name = de->d_name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        g_autofree char *key = rel[0] ? g_strdup_printf("%s/%s", rel, name) : g_strdup(name);
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue; /* removed meanwhile */
            set_error_errno(error, errno, "cannot stat", key);
            ok = FALSE;
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            /* descend only where the prefix can still match */
            size_t kl = strlen(key), pl = strlen(prefix);
            if (temps || (pl <= kl ? g_str_has_prefix(key, prefix)
                                   : strncmp(prefix, key, kl) == 0 && prefix[kl] == '/'))
                ok = walk(root, key, prefix, temps, out, error);
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        gboolean is_temp = name[0] == '.';
        if (is_temp != temps || (!temps && !g_str_has_prefix(key, prefix)))
            continue;
        CairnBackendEntry *e = g_new0(CairnBackendEntry, 1);
        e->key = g_steal_pointer(&key);
        e->size = (uint64_t) st.st_size;
        e->mtime = st.st_mtime;
        g_ptr_array_add(out, e);
    }
    closedir(d);
    return ok;
}

static GPtrArray *
local_list(CairnBackend *b, const char *prefix, GError **error)
{
    CairnLocalBackend *l = as_local(b);
    g_autoptr(GPtrArray) out =
        g_ptr_array_new_with_free_func((GDestroyNotify) cairn_backend_entry_free);
    /* start at the deepest directory named by the prefix */
    const char *slash = strrchr(prefix, '/');
    g_autofree char *start = slash ? g_strndup(prefix, slash - prefix) : g_strdup("");
    if (!walk(l->root, start, prefix, FALSE, out, error))
        return NULL;
    return g_steal_pointer(&out);
}

static gboolean
local_remove(CairnBackend *b, const char *key, GError **error)
{
    CairnLocalBackend *l = as_local(b);
    g_autofree char *path = key_path(l, key);
    if (unlink(path) < 0 && errno != ENOENT) {
        set_error_errno(error, errno, "cannot remove", path);
        return FALSE;
    }
    g_autofree char *dir = g_path_get_dirname(path);
    mark_dirty(l, dir);
    return TRUE;
}

static gboolean
local_flush(CairnBackend *b, GError **error)
{
    CairnLocalBackend *l = as_local(b);
    if (!commit_pending(l, error))
        return FALSE;
    g_mutex_lock(&l->lock);
    /* every put that returned is in a batch committed or being committed */
    while (l->committing->len > 0)
        g_cond_wait(&l->committed, &l->lock);
    if (l->commit_failure) {
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_IO, "%s",
                    l->commit_failure);
        g_mutex_unlock(&l->lock);
        return FALSE;
    }
    GHashTable *dirs = l->dirty_dirs;
    l->dirty_dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_mutex_unlock(&l->lock);

    GHashTableIter it;
    gpointer dir;
    gboolean ok = TRUE;
    g_hash_table_iter_init(&it, dirs);
    while (ok && g_hash_table_iter_next(&it, &dir, NULL)) {
        cairn_autofd fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0) {
            set_error_errno(error, errno, "cannot fsync directory", dir);
            ok = FALSE;
        }
    }
    g_hash_table_unref(dirs);
    return ok;
}

static gboolean
local_cleanup(CairnBackend *b, int64_t max_age, guint *ret_removed, GError **error)
{
    CairnLocalBackend *l = as_local(b);
    g_autoptr(GPtrArray) temps =
        g_ptr_array_new_with_free_func((GDestroyNotify) cairn_backend_entry_free);
    if (!walk(l->root, "", "", TRUE, temps, error))
        return FALSE;
    int64_t now = cairn_now();
    guint removed = 0;
    for (guint i = 0; i < temps->len; i++) {
        CairnBackendEntry *e = temps->pdata[i];
        if (now - e->mtime < max_age)
            continue;
        if (!local_remove(b, e->key, error))
            return FALSE;
        removed++;
    }
    *ret_removed = removed;
    return TRUE;
}

static void
local_free(CairnBackend *b)
{
    CairnLocalBackend *l = as_local(b);
    /* never flushed (an error path): the batch is dropped, temps removed */
    GHashTableIter it;
    gpointer val;
    g_hash_table_iter_init(&it, l->pending);
    while (g_hash_table_iter_next(&it, NULL, &val))
        unlink(((Pending *) val)->tmp);
    cairn_writeback_free(l->writeback);
    g_hash_table_unref(l->pending);
    g_ptr_array_unref(l->committing);
    g_cond_clear(&l->committed);
    g_free(l->commit_failure);
    g_hash_table_unref(l->dirty_dirs);
    if (l->root_fd >= 0)
        close(l->root_fd);
    g_mutex_clear(&l->lock);
    g_free(l->root);
    g_free(b->location);
    g_free(l);
}

static const CairnBackendOps local_ops = {
    .kind = "local",
    .get = local_get,
    .put = local_put,
    .exists = local_exists,
    .list = local_list,
    .remove = local_remove,
    .flush = local_flush,
    .cleanup = local_cleanup,
    .free = local_free,
};

CairnBackend *
cairn_backend_local_new(const char *path, gboolean create, GError **error)
{
    if (!path || !*path) {
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID,
                    "empty repository path");
        return NULL;
    }
    if (create && g_mkdir_with_parents(path, 0700) < 0) {
        set_error_errno(error, errno, "cannot create repository directory", path);
        return NULL;
    }
    struct stat st;
    if (stat(path, &st) < 0) {
        set_error_errno(error, errno, "cannot open repository", path);
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        g_set_error(error, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_INVALID,
                    "cannot open repository '%s': not a directory", path);
        return NULL;
    }
    CairnLocalBackend *l = g_new0(CairnLocalBackend, 1);
    l->base.ops = &local_ops;
    l->base.location = g_strdup(path);
    l->root = g_canonicalize_filename(path, NULL);
    g_mutex_init(&l->lock);
    l->dirty_dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    l->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) pending_free);
    l->committing = g_ptr_array_new();
    g_cond_init(&l->committed);
    l->root_fd = open(l->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    l->writeback = cairn_writeback_new(CAIRN_WRITEBACK_WINDOW);
    return &l->base;
}
