/* lock.c - shared/exclusive repository locks with stale-lock detection. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "repo/lock.h"

#define LOCK_PREFIX "locks/"
#define REFRESH_SECONDS (5 * 60)
#define STALE_SECONDS (30 * 60)

struct CairnLock {
    CairnRepo *repo;
    char *key;
    char *body_template_purpose;
    CairnLockMode mode;
    GThread *refresher;
    GMutex mutex;
    GCond cond;
    gboolean stopping;
};

static const char *
mode_name(CairnLockMode m)
{
    return m == CAIRN_LOCK_EXCLUSIVE ? "exclusive" : "shared";
}

static char *
lock_body(CairnLockMode mode, const char *purpose)
{
    g_autoptr(CairnJson) o = json_pack("{s:s, s:s, s:i, s:I, s:s}", "mode", mode_name(mode),
                                       "host", g_get_host_name(), "pid", (int) getpid(),
                                       "time", (json_int_t) cairn_now(), "purpose",
                                       purpose ? purpose : "");
    return json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
}

static gboolean
write_lock(CairnLock *l, CairnPutMode pm, GError **error)
{
    g_autofree char *body = lock_body(l->mode, l->body_template_purpose);
    CairnBackend *b = cairn_repo_backend(l->repo);
    return cairn_backend_put(b, l->key, body, strlen(body), pm, NULL, error) &&
           cairn_backend_flush(b, error);
}

static gpointer
refresh_thread(gpointer data)
{
    CairnLock *l = data;
    g_mutex_lock(&l->mutex);
    while (!l->stopping) {
        gint64 deadline = g_get_monotonic_time() + REFRESH_SECONDS * G_TIME_SPAN_SECOND;
        while (!l->stopping && g_cond_wait_until(&l->cond, &l->mutex, deadline))
            ;
        if (l->stopping)
            break;
        g_mutex_unlock(&l->mutex);
        g_autoptr(GError) gerr = NULL;
        if (!write_lock(l, CAIRN_PUT_REPLACE, &gerr))
            g_warning("cannot refresh repository lock '%s': %s", l->key, gerr->message);
        g_mutex_lock(&l->mutex);
    }
    g_mutex_unlock(&l->mutex);
    return NULL;
}

typedef struct {
    char *mode, *host, *purpose;
    int pid;
    int64_t time;
} LockInfo;

static void
lock_info_clear(LockInfo *i)
{
    g_free(i->mode);
    g_free(i->host);
    g_free(i->purpose);
}

static gboolean
read_lock(CairnBackend *b, const char *key, LockInfo *ret)
{
    g_autoptr(GBytes) body = cairn_backend_get(b, key, NULL);
    if (!body)
        return FALSE;
    gsize len;
    const char *text = g_bytes_get_data(body, &len);
    g_autoptr(CairnJson) o = json_loadb(text, len, 0, NULL);
    if (!o)
        return FALSE;
    ret->mode = g_strdup(json_string_value(json_object_get(o, "mode")));
    ret->host = g_strdup(json_string_value(json_object_get(o, "host")));
    ret->purpose = g_strdup(json_string_value(json_object_get(o, "purpose")));
    ret->pid = (int) json_integer_value(json_object_get(o, "pid"));
    ret->time = (int64_t) json_integer_value(json_object_get(o, "time"));
    return ret->mode != NULL;
}

static gboolean
is_stale(const LockInfo *i, int64_t mtime)
{
    int64_t t = MAX(i->time, mtime);
    if (cairn_now() - t > STALE_SECONDS)
        return TRUE;
    if (i->host && !strcmp(i->host, g_get_host_name()) && i->pid > 0 &&
        kill(i->pid, 0) < 0 && errno == ESRCH)
        return TRUE;
    return FALSE;
}

/* TRUE when no conflicting live lock exists; else describe it in ret_conflict */
static gboolean
check_others(CairnLock *l, char **ret_conflict, GError **error)
{
    CairnBackend *b = cairn_repo_backend(l->repo);
    g_autoptr(GPtrArray) entries = cairn_backend_list(b, LOCK_PREFIX, error);
    if (!entries)
        return FALSE;
    *ret_conflict = NULL;
    for (guint i = 0; i < entries->len; i++) {
        CairnBackendEntry *e = entries->pdata[i];
        if (!strcmp(e->key, l->key))
            continue;
        LockInfo info = { 0 };
        if (!read_lock(b, e->key, &info)) {
            /* unreadable: removed meanwhile, or garbage older than the stale age */
            if (cairn_now() - e->mtime > STALE_SECONDS)
                cairn_backend_remove(b, e->key, NULL);
            lock_info_clear(&info);
            continue;
        }
        if (is_stale(&info, e->mtime)) {
            cairn_backend_remove(b, e->key, NULL);
            lock_info_clear(&info);
            continue;
        }
        gboolean conflict = l->mode == CAIRN_LOCK_EXCLUSIVE || !strcmp(info.mode, "exclusive");
        if (conflict && !*ret_conflict) {
            g_autofree char *since = cairn_format_time_utc(info.time);
            *ret_conflict = g_strdup_printf("%s lock held by %s (pid %d on host %s, since %s)",
                                            info.mode, *info.purpose ? info.purpose : "?",
                                            info.pid, info.host ? info.host : "?", since);
        }
        lock_info_clear(&info);
    }
    return TRUE;
}

/* set once at program start, read-only afterwards */
static CairnLockWaitFunc wait_hook;

void
cairn_lock_on_wait(CairnLockWaitFunc fn)
{
    wait_hook = fn;
}

CairnLock *
cairn_lock_acquire(CairnRepo *repo, CairnLockMode mode, const char *purpose,
                   int64_t wait_seconds, GError **error)
{
    gboolean told = FALSE;
    CairnLock *l = g_new0(CairnLock, 1);
    l->repo = repo;
    l->mode = mode;
    /* an encrypted repository's names are secret: keep only the verb */
    l->body_template_purpose = cairn_repo_is_encrypted(repo) && purpose
                                   ? g_strndup(purpose, strcspn(purpose, " "))
                                   : g_strdup(purpose);
    g_autofree char *rnd = cairn_random_hex(16);
    l->key = g_strconcat(LOCK_PREFIX, rnd, NULL);
    g_mutex_init(&l->mutex);
    g_cond_init(&l->cond);

    gint64 deadline = g_get_monotonic_time() + wait_seconds * G_TIME_SPAN_SECOND;
    gulong delay_ms = 100;
    for (;;) {
        g_autofree char *conflict = NULL;
        if (!write_lock(l, CAIRN_PUT_REPLACE, error) || !check_others(l, &conflict, error)) {
            cairn_backend_remove(cairn_repo_backend(repo), l->key, NULL);
            l->repo = NULL;
            cairn_lock_release(l);
            return NULL;
        }
        if (!conflict)
            break;
        cairn_backend_remove(cairn_repo_backend(repo), l->key, NULL);
        if (g_get_monotonic_time() >= deadline) {
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_LOCKED,
                        "repository '%s' is locked: %s; retry when it is done",
                        cairn_repo_location(repo), conflict);
            l->repo = NULL;
            cairn_lock_release(l);
            return NULL;
        }
        if (!told && wait_hook)
            wait_hook(conflict, wait_seconds);
        told = TRUE;
        /* back off with jitter so two racing lockers do not collide forever */
        g_usleep((delay_ms + g_random_int_range(0, (gint32) delay_ms)) * 1000);
        delay_ms = MIN(delay_ms * 2, 2000);
    }
    l->refresher = g_thread_new("cairn-lock", refresh_thread, l);
    return l;
}

void
cairn_lock_release(CairnLock *l)
{
    if (!l)
        return;
    if (l->refresher) {
        g_mutex_lock(&l->mutex);
        l->stopping = TRUE;
        g_cond_signal(&l->cond);
        g_mutex_unlock(&l->mutex);
        g_thread_join(l->refresher);
    }
    if (l->repo) {
        CairnBackend *b = cairn_repo_backend(l->repo);
        cairn_backend_remove(b, l->key, NULL);
        cairn_backend_flush(b, NULL);
    }
    g_mutex_clear(&l->mutex);
    g_cond_clear(&l->cond);
    g_free(l->key);
    g_free(l->body_template_purpose);
    g_free(l);
}
