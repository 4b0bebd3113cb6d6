/* prune.c - retention selection and forgetting snapshot refs. */
#include "config.h"

#include <string.h>
#include <time.h>
#include <jansson.h>

#include "common/util.h"
#include "repo/lock.h"
#include "repo/prune.h"
#include "repo/snapshot.h"

gboolean
cairn_keep_policy_is_empty(const CairnKeepPolicy *p)
{
    return p->last <= 0 && p->hourly <= 0 && p->daily <= 0 && p->weekly <= 0 &&
           p->monthly <= 0 && p->yearly <= 0;
}

typedef enum { B_HOUR, B_DAY, B_WEEK, B_MONTH, B_YEAR } Bucket;

static int64_t
bucket_key(int64_t t, Bucket b)
{
    time_t tt = (time_t) t;
    struct tm tm;
    localtime_r(&tt, &tm);
    int64_t y = tm.tm_year + 1900;
    switch (b) {
    case B_HOUR: return ((y * 1000 + tm.tm_yday) * 100) + tm.tm_hour;
    case B_DAY: return y * 1000 + tm.tm_yday;
    case B_WEEK: {
        char buf[16];
        strftime(buf, sizeof buf, "%G%V", &tm); /* ISO year + week */
        return g_ascii_strtoll(buf, NULL, 10);
    }
    case B_MONTH: return y * 100 + tm.tm_mon;
    case B_YEAR: return y;
    }
    return 0;
}

typedef struct {
    int64_t t;
    size_t idx;
} Item;

static gint
newest_first(gconstpointer a, gconstpointer b)
{
    const Item *x = a, *y = b;
    if (x->t != y->t)
        return x->t > y->t ? -1 : 1;
    /* same second: the later in the input (oldest first) is the newer */
    return x->idx > y->idx ? -1 : (x->idx < y->idx);
}

static void
add_reason(GPtrArray *reasons, size_t idx, const char *r)
{
    char *old = reasons->pdata[idx];
    reasons->pdata[idx] = old ? g_strconcat(old, ", ", r, NULL) : g_strdup(r);
    g_free(old);
}

char **
cairn_prune_select(const int64_t *times, size_t n, const CairnKeepPolicy *policy)
{
    g_autofree Item *items = g_new(Item, n ? n : 1);
    for (size_t i = 0; i < n; i++)
        items[i] = (Item) { times[i], i };
    qsort(items, n, sizeof(Item), (int (*)(const void *, const void *)) newest_first);

    GPtrArray *reasons = g_ptr_array_new();
    for (size_t i = 0; i < n; i++)
        g_ptr_array_add(reasons, NULL);

    for (size_t i = 0; i < n && (int) i < policy->last; i++)
        add_reason(reasons, items[i].idx, "last");

    static const struct {
        Bucket b;
        const char *name;
        size_t off;
    } rules[] = {
        { B_HOUR, "hourly", G_STRUCT_OFFSET(CairnKeepPolicy, hourly) },
        { B_DAY, "daily", G_STRUCT_OFFSET(CairnKeepPolicy, daily) },
        { B_WEEK, "weekly", G_STRUCT_OFFSET(CairnKeepPolicy, weekly) },
        { B_MONTH, "monthly", G_STRUCT_OFFSET(CairnKeepPolicy, monthly) },
        { B_YEAR, "yearly", G_STRUCT_OFFSET(CairnKeepPolicy, yearly) },
    };
    /* Newest first, the first snapshot of each period is its newest. A
     * period can come back after another one began (clocks going back across
     * midnight: 00:00:30 ADT, then 23:30 AST the day before), so remember
     * every period seen, not only the last one. */
    g_autofree int64_t *keys = g_new(int64_t, n ? n : 1);
    for (size_t r = 0; r < G_N_ELEMENTS(rules); r++) {
        int left = G_STRUCT_MEMBER(int, policy, rules[r].off);
        g_autoptr(GHashTable) seen = g_hash_table_new(g_int64_hash, g_int64_equal);
        for (size_t i = 0; i < n && left > 0; i++) {
            keys[i] = bucket_key(items[i].t, rules[r].b);
            if (g_hash_table_contains(seen, &keys[i]))
                continue;
            g_hash_table_add(seen, &keys[i]);
            add_reason(reasons, items[i].idx, rules[r].name);
            left--;
        }
    }
    g_ptr_array_add(reasons, NULL); /* NULL-terminate past n for safety */
    return (char **) g_ptr_array_free(reasons, FALSE);
}

static gboolean
prune_group(CairnRepo *repo, GPtrArray *group, const CairnKeepPolicy *policy,
            gboolean dry_run, GPtrArray *ret_plan, CairnPruneStats *stats, GError **error)
{
    g_autofree int64_t *times = g_new(int64_t, group->len ? group->len : 1);
    for (guint i = 0; i < group->len; i++)
        times[i] = ((CairnSnapshot *) group->pdata[i])->manifest->time;
    char **reasons = cairn_prune_select(times, group->len, policy);
    gboolean ok = TRUE;
    for (guint i = 0; i < group->len; i++) {
        CairnSnapshot *s = group->pdata[i];
        char hex[CAIRN_ID_HEX_LEN + 1];
        cairn_id_to_hex(&s->id, hex);
        if (ret_plan) {
            g_autofree char *t = cairn_format_time_utc(s->manifest->time);
            g_ptr_array_add(ret_plan, json_pack("{s:s, s:s, s:s, s:b, s:s?}", "id", hex, "name",
                                                s->manifest->name, "time", t, "keep",
                                                reasons[i] != NULL, "reasons", reasons[i]));
        }
        if (reasons[i]) {
            stats->kept++;
        } else {
            stats->removed++;
            if (ok && !dry_run)
                ok = cairn_snapshot_forget(repo, &s->id, error);
        }
    }
    for (guint i = 0; i < group->len; i++)
        g_free(reasons[i]);
    g_free(reasons);
    return ok;
}

gboolean
cairn_keep_policy_check(const CairnKeepPolicy *p, GError **error)
{
    if (!cairn_keep_policy_is_empty(p))
        return TRUE;
    g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_INVALID,
                "no --keep-* option keeps anything (none given, or all 0): pruning would "
                "remove every snapshot; give at least one above 0, e.g. --keep-last 7");
    return FALSE;
}

gboolean
cairn_prune(CairnRepo *repo, const CairnKeepPolicy *policy, const char *name,
            gboolean dry_run, int64_t lock_wait, GPtrArray *ret_plan, GPtrArray *ret_broken,
            CairnPruneStats *ret_stats, GError **error)
{
    *ret_stats = (CairnPruneStats) { 0 };
    if (!cairn_keep_policy_check(policy, error))
        return FALSE;
    g_autoptr(CairnLock) lock = NULL;
    if (!dry_run && !(lock = cairn_lock_acquire(repo, CAIRN_LOCK_SHARED, "prune", lock_wait,
                                                 error)))
        return FALSE;
    g_autoptr(GPtrArray) broken = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) all = cairn_snapshot_list_full(repo, name, broken, error);
    for (guint i = 0; ret_broken && i < broken->len; i++)
        g_ptr_array_add(ret_broken, g_strdup(broken->pdata[i]));
    if (!all)
        return FALSE;
    /* group by name, keeping the list order (oldest first) */
    g_autoptr(GHashTable) groups = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                                         (GDestroyNotify) g_ptr_array_unref);
    g_autoptr(GPtrArray) order = g_ptr_array_new();
    for (guint i = 0; i < all->len; i++) {
        CairnSnapshot *s = all->pdata[i];
        GPtrArray *g = g_hash_table_lookup(groups, s->manifest->name);
        if (!g) {
            g = g_ptr_array_new();
            g_hash_table_insert(groups, s->manifest->name, g);
            g_ptr_array_add(order, s->manifest->name);
        }
        g_ptr_array_add(g, s);
    }
    for (guint i = 0; i < order->len; i++)
        if (!prune_group(repo, g_hash_table_lookup(groups, order->pdata[i]), policy, dry_run,
                         ret_plan, ret_stats, error))
            return FALSE;
    return TRUE;
}
