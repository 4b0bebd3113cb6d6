/* local.c - a repository in a local directory (the embedded default).
 *
 * Each key is a file under the root. A put writes a temp file (".tmp-*")
 * in the target directory, makes it durable, then link()s it into place
 * (put-if-absent: EEXIST means someone else stored it) or rename()s it
 * (replace). Objects ("objects/...", put-if-absent) are batched like git's
 * batch fsync mode: their temp files are written without an fsync each,
 * then one syncfs() makes a whole batch durable before any of them gets its
 * name — an object is never visible before it is whole and durable. Pending
 * objects answer exists() and get() already. Directory fsyncs are batched
 * too: flush() commits the pending batch and syncs every directory that
 * received a name since the last flush. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "repo/backends/backend.h"

#define BATCH_OBJECTS 512
#define BATCH_BYTES (256u << 20)

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

static char *
key_path(CairnLocalBackend *l, const char *key)
{
    return g_build_filename(l->root, key, NULL);
}

static gboolean
is_pending(CairnLocalBackend *l, const char *key, char **ret_tmp)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&l->lock);
    Pending *p = g_hash_table_lookup(l->pending, key);
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

/* Make every pending object durable (one syncfs), then name it. Lock held. */
static gboolean
commit_pending_locked(CairnLocalBackend *l, GError **error)
{
    if (g_hash_table_size(l->pending) == 0)
        return TRUE;
    if (syncfs(l->root_fd) < 0) {
        set_error_errno(error, errno, "cannot sync the filesystem of", l->root);
        return FALSE;
    }
    GHashTableIter it;
    gpointer key, val;
    gboolean ok = TRUE;
    g_hash_table_iter_init(&it, l->pending);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        Pending *p = val;
        if (ok && link(p->tmp, p->path) < 0 && errno != EEXIST) {
            set_error_errno(error, errno, "cannot store", p->path);
            ok = FALSE;
        }
        unlink(p->tmp);
        g_autofree char *dir = g_path_get_dirname(p->path);
        if (!g_hash_table_contains(l->dirty_dirs, dir))
            g_hash_table_add(l->dirty_dirs, g_steal_pointer(&dir));
    }
    g_hash_table_remove_all(l->pending);
    l->pending_bytes = 0;
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
    if (!batch && fdatasync(fd) < 0) {
        set_error_errno(error, errno, "cannot fsync", tmp);
        unlink(tmp);
        return FALSE;
    }
    if (close(cairn_steal_fd(&fd)) < 0) {
        set_error_errno(error, errno, "cannot close", tmp);
        unlink(tmp);
        return FALSE;
    }
    if (batch) {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&l->lock);
        struct stat st;
        if (g_hash_table_contains(l->pending, key) || stat(path, &st) == 0) {
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
        if (g_hash_table_size(l->pending) >= BATCH_OBJECTS || l->pending_bytes >= BATCH_BYTES)
            return commit_pending_locked(l, error);
        return TRUE;
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
    g_mutex_lock(&l->lock);
    if (!commit_pending_locked(l, error)) {
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
    g_hash_table_unref(l->pending);
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
    l->root_fd = open(l->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return &l->base;
}
