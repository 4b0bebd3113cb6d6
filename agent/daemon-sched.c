/* daemon-sched.c - what cairnd runs when: policies, one schedule entry per
 * (policy, domain), the persistent state that makes missed runs catch up
 * once, and the libvirt poll that finds domains, their tags and how much
 * they changed since their last backup (the change-driven trigger).
 *
 * Domain tags are read from the domain's metadata element in the namespace
 * CAIRN_TAGS_NS, e.g. set with
 *   virsh metadata web01 --uri https://cairn.dev/xmlns/tags/1 --key cairn \
 *         --set '<tags>prod web</tags>'
 */
#include "config.h"

#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "agent/daemon.h"
#include "agent/virt.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "scheduler/schedule.h"

#define CAIRN_TAGS_NS "https://cairn.dev/xmlns/tags/1"
#define TICK_MAX 10.0 /* seconds: also notices a clock that was set */

typedef struct {
    char **tags;
    gboolean running;
    gboolean dirty_known;
    uint64_t dirty;     /* bytes changed since the newest cairn checkpoint */
    gboolean no_checkpoint;
    int64_t dirty_checked;
} DomainSeen;

static void
domain_seen_free(gpointer p)
{
    DomainSeen *s = p;
    g_strfreev(s->tags);
    g_free(s);
}

/* ---- policies */

const CairnPolicy *
cairn_daemon_find_policy(CairnDaemon *d, const char *name)
{
    for (guint i = 0; d->policies && i < d->policies->len; i++) {
        const CairnPolicy *p = d->policies->pdata[i];
        if (!g_strcmp0(p->name, name))
            return p;
    }
    return NULL;
}

static gboolean
has_policy(GPtrArray *list, const char *name)
{
    for (guint i = 0; i < list->len; i++)
        if (!g_strcmp0(((CairnPolicy *) list->pdata[i])->name, name))
            return TRUE;
    return FALSE;
}

gboolean
cairn_daemon_load_policies(CairnDaemon *d, gboolean initial)
{
    g_autoptr(GPtrArray) errors = NULL;
    g_autoptr(GPtrArray) loaded = cairn_policy_load_all(&errors);
    for (guint i = 0; errors && i < errors->len; i++)
        cairn_daemon_log(G_LOG_LEVEL_WARNING, NULL, NULL, 0, "%s%s",
                         ((GError *) errors->pdata[i])->message,
                         initial ? "" : " (the file is not loaded; its previous version, if "
                                        "any, stays in force)");
    if (!initial && errors && errors->len > 0 && d->policies) {
        /* keep the previous valid version of each broken file, take the
         * valid files as they are now */
        for (guint i = 0; i < errors->len; i++) {
            const char *msg = ((GError *) errors->pdata[i])->message;
            for (guint k = d->policies->len; k-- > 0;) {
                CairnPolicy *old = d->policies->pdata[k];
                if (g_str_has_prefix(msg, old->path) && msg[strlen(old->path)] == ':' &&
                    !has_policy(loaded, old->name))
                    g_ptr_array_add(loaded, g_ptr_array_steal_index(d->policies, k));
            }
        }
    }
    if (d->policies)
        g_ptr_array_unref(d->policies);
    d->policies = g_steal_pointer(&loaded);
    if (d->policy_errors)
        g_ptr_array_unref(d->policy_errors);
    d->policy_errors = g_steal_pointer(&errors);
    d->loaded_at = cairn_now();
    cairn_daemon_log(G_LOG_LEVEL_INFO, NULL, NULL, 0, "%u polic%s loaded, %u refused",
                     d->policies->len, d->policies->len == 1 ? "y" : "ies",
                     d->policy_errors ? d->policy_errors->len : 0);
    return !d->policy_errors || d->policy_errors->len == 0;
}

/* ---- persistent state */

void
cairn_daemon_load_state(CairnDaemon *d)
{
    json_error_t jerr;
    d->state = NULL;
    if (g_file_test(d->cfg.state_path, G_FILE_TEST_EXISTS)) {
        d->state = json_load_file(d->cfg.state_path, 0, &jerr);
        if (!d->state)
            cairn_daemon_log(G_LOG_LEVEL_WARNING, NULL, NULL, 0,
                             "%s:%d: cannot read the state (%s); starting afresh: missed runs "
                             "are not caught up this once", d->cfg.state_path, jerr.line,
                             jerr.text);
    }
    if (!json_is_object(d->state)) {
        json_decref(d->state);
        d->state = json_pack("{s:i, s:{}}", "version", 1, "entries");
    }
    if (!json_is_object(json_object_get(d->state, "entries")))
        json_object_set_new(d->state, "entries", json_object());
}

void
cairn_daemon_save_state(CairnDaemon *d)
{
    g_autofree char *text = json_dumps(d->state, JSON_INDENT(1) | JSON_SORT_KEYS);
    g_autoptr(GError) gerr = NULL;
    if (!text || !cairn_write_file_durable(d->cfg.state_path, text, strlen(text), 0600, &gerr))
        cairn_daemon_log(G_LOG_LEVEL_WARNING, NULL, NULL, 0, "cannot save the state: %s",
                         gerr ? gerr->message : "out of memory");
}

json_t *
cairn_daemon_entry(CairnDaemon *d, const char *policy, const char *domain)
{
    json_t *entries = json_object_get(d->state, "entries");
    g_autofree char *key = domain ? g_strdup_printf("%s/%s", policy, domain) : g_strdup(policy);
    json_t *e = json_object_get(entries, key);
    if (!e) {
        e = json_pack("{s:s, s:s?}", "policy", policy, "domain", domain);
        json_object_set_new(entries, key, e);
    }
    return e;
}

static int64_t
json_i64(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t) json_integer_value(v) : 0;
}

/* ---- domains */

static gboolean
is_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

GPtrArray *
cairn_daemon_policy_domains(CairnDaemon *d, const CairnPolicy *p)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    if (!d->domains)
        return out;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, d->domains);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        DomainSeen *s = v;
        if (cairn_policy_matches(p, k, (const char *const *) s->tags))
            g_ptr_array_add(out, g_strdup(k));
    }
    g_ptr_array_sort(out, compare_names);
    return out;
}

/* ---- the libvirt poll (a worker thread with its own connection) */

typedef struct {
    char *uri;
    GPtrArray *dirty_wanted;  /* names whose dirty bytes to read */
    GHashTable *domains;      /* result */
    char *error;
} Poll;

static void
poll_free(gpointer p)
{
    Poll *pl = p;
    g_free(pl->uri);
    g_ptr_array_unref(pl->dirty_wanted);
    if (pl->domains)
        g_hash_table_unref(pl->domains);
    g_free(pl->error);
    g_free(pl);
}

static char **
domain_tags(virDomainPtr dom)
{
    g_autofree char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, CAIRN_TAGS_NS,
                                                VIR_DOMAIN_AFFECT_CURRENT);
    if (!xml) {
        virResetLastError();
        return g_new0(char *, 1);
    }
    xmlDocPtr doc = xmlReadMemory(xml, (int) strlen(xml), "metadata.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return g_new0(char *, 1);
    xmlChar *text = xmlNodeGetContent(xmlDocGetRootElement(doc));
    g_autoptr(GPtrArray) tags = g_ptr_array_new();
    g_auto(GStrv) parts = g_regex_split_simple("[\\s,;]+", text ? (char *) text : "", 0, 0);
    for (guint i = 0; parts && parts[i]; i++)
        if (*parts[i])
            g_ptr_array_add(tags, g_strdup(parts[i]));
    g_ptr_array_add(tags, NULL);
    xmlFree(text);
    xmlFreeDoc(doc);
    return (char **) g_ptr_array_free(g_steal_pointer(&tags), FALSE);
}

/* bytes QEMU's bitmaps mark as changed since the newest cairn checkpoint
 * (libvirt's checkpoint XML with sizes); FALSE when there is none */
static gboolean
domain_dirty(virDomainPtr dom, uint64_t *ret)
{
    virDomainCheckpointPtr *cps = NULL;
    int n = virDomainListAllCheckpoints(dom, &cps, VIR_DOMAIN_CHECKPOINT_LIST_LEAVES);
    if (n < 0) {
        virResetLastError();
        return FALSE;
    }
    gboolean found = FALSE;
    uint64_t best = 0;
    for (int i = 0; i < n; i++) {
        const char *name = virDomainCheckpointGetName(cps[i]);
        if (name && g_str_has_prefix(name, "cairn-")) {
            g_autofree char *xml = virDomainCheckpointGetXMLDesc(cps[i],
                                                                 VIR_DOMAIN_CHECKPOINT_XML_SIZE);
            xmlDocPtr doc = xml ? xmlReadMemory(xml, (int) strlen(xml), "checkpoint.xml", NULL,
                                                XML_PARSE_NONET | XML_PARSE_NOERROR |
                                                    XML_PARSE_NOWARNING)
                                : NULL;
            if (!xml)
                virResetLastError();
            if (doc) {
                xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
                xmlXPathObjectPtr r = xmlXPathEvalExpression(
                    (const xmlChar *) "/domaincheckpoint/disks/disk/@size", ctx);
                uint64_t sum = 0;
                for (int k = 0; r && r->nodesetval && k < r->nodesetval->nodeNr; k++) {
                    xmlChar *v = xmlNodeGetContent(r->nodesetval->nodeTab[k]);
                    sum += g_ascii_strtoull((const char *) v, NULL, 10);
                    xmlFree(v);
                }
                if (r && r->nodesetval && r->nodesetval->nodeNr > 0) {
                    found = TRUE;
                    best = MAX(best, sum);
                }
                xmlXPathFreeObject(r);
                xmlXPathFreeContext(ctx);
                xmlFreeDoc(doc);
            }
        }
        virDomainCheckpointFree(cps[i]);
    }
    free(cps);
    *ret = best;
    return found;
}

static void
poll_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
    Poll *pl = data;
    g_autoptr(GError) gerr = NULL;
    g_autoptr(virConnect) conn = cairn_virt_connect(pl->uri, &gerr);
    if (!conn) {
        pl->error = g_strdup(gerr->message);
        g_task_return_boolean(task, FALSE);
        return;
    }
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);
    if (n < 0) {
        pl->error = g_strdup_printf("cannot list domains: %s", virGetLastErrorMessage());
        g_task_return_boolean(task, FALSE);
        return;
    }
    pl->domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, domain_seen_free);
    for (int i = 0; i < n; i++) {
        const char *name = virDomainGetName(doms[i]);
        DomainSeen *s = g_new0(DomainSeen, 1);
        s->tags = domain_tags(doms[i]);
        s->running = virDomainIsActive(doms[i]) == 1;
        for (guint k = 0; s->running && k < pl->dirty_wanted->len; k++) {
            if (!strcmp(pl->dirty_wanted->pdata[k], name)) {
                s->dirty_known = domain_dirty(doms[i], &s->dirty);
                s->no_checkpoint = !s->dirty_known;
                s->dirty_checked = cairn_now();
            }
        }
        g_hash_table_replace(pl->domains, g_strdup(name), s);
        virDomainFree(doms[i]);
    }
    free(doms);
    (void) source;
    (void) cancel;
    g_task_return_boolean(task, TRUE);
}

static void
poll_done(GObject *source, GAsyncResult *res, gpointer data)
{
    CairnDaemon *d = data;
    Poll *pl = g_task_get_task_data(G_TASK(res));
    d->poll_running = FALSE;
    d->last_poll = cairn_now();
    if (pl->error) {
        if (g_strcmp0(d->libvirt_error, pl->error))
            cairn_daemon_log(G_LOG_LEVEL_WARNING, NULL, NULL, 0, "libvirt: %s", pl->error);
        g_free(d->libvirt_error);
        d->libvirt_error = g_strdup(pl->error);
    } else {
        if (d->libvirt_error)
            cairn_daemon_log(G_LOG_LEVEL_INFO, NULL, NULL, 0, "libvirt answers again");
        g_clear_pointer(&d->libvirt_error, g_free);
        /* keep dirty figures of domains not measured this time */
        if (d->domains) {
            GHashTableIter it;
            gpointer k, v;
            g_hash_table_iter_init(&it, pl->domains);
            while (g_hash_table_iter_next(&it, &k, &v)) {
                DomainSeen *now = v, *old = g_hash_table_lookup(d->domains, k);
                if (old && !now->dirty_checked) {
                    now->dirty_known = old->dirty_known;
                    now->dirty = old->dirty;
                    now->no_checkpoint = old->no_checkpoint;
                    now->dirty_checked = old->dirty_checked;
                }
            }
            g_hash_table_unref(d->domains);
        }
        d->domains = g_steal_pointer(&pl->domains);
        d->domains_known = TRUE;
    }
    (void) source;
    cairn_daemon_wake(d, 0);
}

static void
start_poll(CairnDaemon *d, GPtrArray *dirty_wanted)
{
    Poll *pl = g_new0(Poll, 1);
    pl->uri = g_strdup(d->cfg.uri);
    pl->dirty_wanted = g_ptr_array_ref(dirty_wanted);
    g_autoptr(GTask) task = g_task_new(NULL, NULL, poll_done, d);
    g_task_set_task_data(task, pl, poll_free);
    d->poll_running = TRUE;
    g_task_run_in_thread(task, poll_thread);
}

static gboolean
first_poll_timeout(gpointer data)
{
    *(gboolean *) data = TRUE;
    return G_SOURCE_REMOVE;
}

void
cairn_daemon_first_poll(CairnDaemon *d, guint max_seconds)
{
    g_autoptr(GPtrArray) none = g_ptr_array_new_with_free_func(g_free);
    start_poll(d, none);
    gboolean late = FALSE;
    guint t = g_timeout_add_seconds(max_seconds, first_poll_timeout, &late);
    while (d->poll_running && !late)
        g_main_context_iteration(NULL, TRUE);
    if (!late)
        g_source_remove(t);
}

/* ---- after a killed backup: end the libvirt job it left behind */

typedef struct {
    char *uri, *domain;
    char *outcome; /* what was done, for the job's error */
} EndJob;

static void
end_job_free(gpointer p)
{
    EndJob *e = p;
    g_free(e->uri);
    g_free(e->domain);
    g_free(e->outcome);
    g_free(e);
}

static void
end_job_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
    EndJob *e = data;
    g_autoptr(GError) gerr = NULL;
    g_autoptr(virConnect) conn = cairn_virt_connect(e->uri, &gerr);
    g_autoptr(virDomain) dom = conn ? cairn_virt_lookup(conn, e->domain, &gerr) : NULL;
    if (!dom) {
        e->outcome = g_strdup_printf("cannot check for a libvirt job left running: %s",
                                     gerr->message);
        g_task_return_boolean(task, FALSE);
        return;
    }
    virTypedParameterPtr params = NULL;
    int nparams = 0, type = VIR_DOMAIN_JOB_NONE;
    if (virDomainGetJobStats(dom, &type, &params, &nparams, 0) < 0) {
        e->outcome = g_strdup_printf("cannot read the domain's job: %s",
                                     virGetLastErrorMessage());
        g_task_return_boolean(task, FALSE);
        return;
    }
    int op = 0;
    virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &op);
    virTypedParamsFree(params, nparams);
    if (type == VIR_DOMAIN_JOB_NONE || op != VIR_DOMAIN_JOB_OPERATION_BACKUP) {
        e->outcome = g_strdup("no libvirt backup job was left running");
    } else if (virDomainAbortJob(dom) < 0) {
        e->outcome = g_strdup_printf("the libvirt backup job it left could not be ended: %s "
                                     "(the next backup ends it)", virGetLastErrorMessage());
    } else {
        e->outcome = g_strdup("the libvirt backup job it left was ended");
    }
    (void) source;
    (void) cancel;
    g_task_return_boolean(task, TRUE);
}

char *
cairn_daemon_end_libvirt_job_finish(GAsyncResult *res)
{
    EndJob *e = g_task_get_task_data(G_TASK(res));
    return g_strdup(e->outcome);
}

void
cairn_daemon_end_libvirt_job(CairnDaemon *d, const char *domain, GAsyncReadyCallback cb,
                             gpointer data)
{
    EndJob *e = g_new0(EndJob, 1);
    e->uri = g_strdup(d->cfg.uri);
    e->domain = g_strdup(domain);
    g_autoptr(GTask) task = g_task_new(NULL, NULL, cb, data);
    g_task_set_task_data(task, e, end_job_free);
    g_task_run_in_thread(task, end_job_thread);
}

/* ---- the tick */

static gboolean
tick_cb(gpointer data)
{
    CairnDaemon *d = data;
    d->tick_source = 0;
    cairn_daemon_schedule_tick(d);
    return G_SOURCE_REMOVE;
}

static gint64 tick_at; /* monotonic time the pending tick fires */

void
cairn_daemon_wake(CairnDaemon *d, double seconds)
{
    if (d->stopping)
        return;
    if (seconds < 0)
        seconds = 0;
    gint64 at = g_get_monotonic_time() + (gint64) (seconds * 1e6);
    if (d->tick_source && tick_at <= at)
        return;
    if (d->tick_source)
        g_source_remove(d->tick_source);
    tick_at = at;
    d->tick_source = g_timeout_add((guint) (seconds * 1000) + (seconds > 0 ? 1 : 0), tick_cb, d);
}

/* A due trigger of one schedule; anchors are per entry and kind. */
static gboolean
check_due(CairnDaemon *d, json_t *e, const char *kind, GPtrArray *cals, const char *cal_text,
          int64_t now, double *wake, const char **ret_reason)
{
    if (!cals || cals->len == 0)
        return FALSE;
    g_autofree char *ak = g_strdup_printf("%s_anchor", kind);
    g_autofree char *sk = g_strdup_printf("%s_schedule", kind);
    g_autofree char *nk = g_strdup_printf("%s_next", kind);
    int64_t anchor = json_i64(e, ak);
    if (!anchor || g_strcmp0(json_string_value(json_object_get(e, sk)), cal_text)) {
        /* a new entry or a changed schedule starts counting now */
        anchor = now;
        json_object_set_new(e, ak, json_integer(anchor));
        json_object_set_new(e, sk, json_string(cal_text));
        cairn_daemon_save_state(d);
    }
    int64_t next;
    int64_t due = cairn_schedule_due(cals, anchor, now, &next);
    json_object_set_new(e, nk, json_integer(next));
    if (next > 0) {
        double w = (double) (next - now);
        if (*wake < 0 || w < *wake)
            *wake = w;
    }
    if (due < 0)
        return FALSE;
    json_object_set_new(e, ak, json_integer(now));
    /* a trigger that passed while cairnd was not running (or asleep with
     * the host) is caught up once, however many passed */
    gboolean missed = due < d->started || now - due > 60;
    *ret_reason = missed ? "catch-up of a missed run" : "schedule";
    if (missed) {
        guint n = 0;
        for (int64_t t = due; t >= 0 && t <= now && n < 1000; t = cairn_schedule_next(cals, t))
            n++;
        g_autofree char *when = cairn_format_time_utc(due);
        cairn_daemon_log(G_LOG_LEVEL_INFO, json_string_value(json_object_get(e, "policy")),
                         json_string_value(json_object_get(e, "domain")), 0,
                         "%s: %u%s scheduled %s run%s missed since %s: one catch-up run",
                         json_string_value(json_object_get(e, "domain")) ?: "", n,
                         n >= 1000 ? " or more" : "", kind, n == 1 ? "" : "s", when);
    }
    return TRUE;
}

void
cairn_daemon_schedule_tick(CairnDaemon *d)
{
    if (d->stopping)
        return;
    int64_t now = cairn_now();
    double wake = -1;
    gboolean changed = FALSE;
    g_autoptr(GPtrArray) dirty_wanted = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < d->policies->len; i++) {
        const CairnPolicy *p = d->policies->pdata[i];
        g_autoptr(GPtrArray) doms = cairn_daemon_policy_domains(d, p);
        g_autofree char *sched_text = p->schedule_text ? g_strjoinv(";", p->schedule_text)
                                                       : g_strdup("");
        for (guint k = 0; k < doms->len; k++) {
            const char *dom = doms->pdata[k];
            json_t *e = cairn_daemon_entry(d, p->name, dom);
            const char *reason = NULL;
            gboolean active = cairn_daemon_find_active(d, JOB_BACKUP, p->name, dom) != NULL;
            if (check_due(d, e, "backup", p->schedules, sched_text, now, &wake, &reason)) {
                changed = TRUE;
                if (active) {
                    cairn_daemon_log(G_LOG_LEVEL_INFO, p->name, dom, 0,
                                     "%s: the previous backup is still queued or running; "
                                     "this trigger is merged into it", dom);
                } else {
                    int64_t delay = p->randomized_delay > 0
                                        ? g_random_int_range(0, (gint32) p->randomized_delay + 1)
                                        : 0;
                    cairn_daemon_queue(d, JOB_BACKUP, p->name, dom, reason, now + delay);
                    active = TRUE;
                }
            }
            int64_t retry = json_i64(e, "retry_at");
            if (retry && retry <= now && !active) {
                json_object_del(e, "retry_at");
                changed = TRUE;
                cairn_daemon_queue(d, JOB_BACKUP, p->name, dom, "retry", now);
                active = TRUE;
            } else if (retry > now) {
                wake = wake < 0 ? (double) (retry - now) : MIN(wake, (double) (retry - now));
            }
            int64_t pretry = json_i64(e, "push_retry_at");
            if (pretry && pretry <= now && !active &&
                !cairn_daemon_find_active(d, JOB_PUSH, p->name, dom)) {
                json_object_del(e, "push_retry_at");
                changed = TRUE;
                cairn_daemon_queue(d, JOB_PUSH, p->name, dom, "retry of a failed push", now);
            } else if (pretry > now) {
                wake = wake < 0 ? (double) (pretry - now) : MIN(wake, (double) (pretry - now));
            }
            /* the change-driven trigger */
            if (p->dirty_threshold > 0) {
                DomainSeen *s = g_hash_table_lookup(d->domains, dom);
                if (s && s->running && !active) {
                    if (s->dirty_checked && now - s->dirty_checked < p->dirty_check_interval) {
                        if (s->dirty_known && s->dirty >= p->dirty_threshold) {
                            g_autofree char *a = cairn_format_size(s->dirty);
                            g_autofree char *t = cairn_format_size(p->dirty_threshold);
                            g_autofree char *why = g_strdup_printf(
                                "dirty: %s changed since the last backup (threshold %s)", a, t);
                            cairn_daemon_queue(d, JOB_BACKUP, p->name, dom, why, now);
                            s->dirty_known = FALSE; /* measure again after the backup */
                            s->dirty_checked = 0;
                        } else if (s->no_checkpoint && !json_object_get(e, "last_success") &&
                                   !json_object_get(e, "last_result")) {
                            cairn_daemon_queue(d, JOB_BACKUP, p->name, dom,
                                               "dirty: no backup yet", now);
                            s->no_checkpoint = FALSE;
                            s->dirty_checked = 0;
                        }
                    } else {
                        g_ptr_array_add(dirty_wanted, g_strdup(dom));
                    }
                    double w = (double) p->dirty_check_interval;
                    wake = wake < 0 ? w : MIN(wake, w);
                }
            }
        }
        /* verify and gc: per policy */
        json_t *pe = cairn_daemon_entry(d, p->name, NULL);
        const char *reason = NULL;
        if (check_due(d, pe, "verify", p->verify_schedules, "verify", now, &wake, &reason)) {
            changed = TRUE;
            if (!cairn_daemon_find_active(d, JOB_VERIFY, p->name, NULL))
                cairn_daemon_queue(d, JOB_VERIFY, p->name, NULL, reason, now);
        }
        if (check_due(d, pe, "gc", p->gc_schedules, "gc", now, &wake, &reason)) {
            changed = TRUE;
            gboolean any = FALSE;
            for (guint k = 0; k < d->jobs->len; k++) {
                CairnDaemonJob *j = d->jobs->pdata[k];
                any |= j->kind == JOB_GC &&
                       (j->state == JOB_QUEUED || j->state == JOB_RUNNING);
            }
            if (!any)
                cairn_daemon_queue(d, JOB_GC, p->name, NULL, reason, now);
        }
    }
    if (changed)
        cairn_daemon_save_state(d);
    gboolean want_poll = !d->domains_known || now - d->last_poll >= d->cfg.poll_interval ||
                         dirty_wanted->len > 0;
    if (want_poll && !d->poll_running)
        start_poll(d, dirty_wanted);
    cairn_daemon_dispatch(d);
    double until_poll = (double) (d->last_poll + d->cfg.poll_interval - now);
    if (wake < 0 || wake > TICK_MAX)
        wake = TICK_MAX;
    if (until_poll >= 0 && until_poll < wake)
        wake = until_poll;
    cairn_daemon_wake(d, wake);
}

json_t *
cairn_daemon_policies_json(CairnDaemon *d)
{
    json_t *arr = json_array();
    for (guint i = 0; i < d->policies->len; i++) {
        const CairnPolicy *p = d->policies->pdata[i];
        json_t *o = json_pack("{s:s, s:s}", "name", p->name, "path", p->path);
        json_t *sched = json_array();
        for (guint k = 0; p->schedule_text && p->schedule_text[k]; k++)
            json_array_append_new(sched, json_string(p->schedule_text[k]));
        json_object_set_new(o, "schedule", sched);
        if (p->dirty_threshold)
            json_object_set_new(o, "dirty_threshold", json_integer((json_int_t) p->dirty_threshold));
        json_t *targets = json_array();
        for (guint k = 0; p->targets && p->targets[k]; k++)
            json_array_append_new(targets, json_string(p->targets[k]));
        json_object_set_new(o, "targets", targets);
        json_t *doms = json_array();
        g_autoptr(GPtrArray) names = cairn_daemon_policy_domains(d, p);
        for (guint k = 0; k < names->len; k++) {
            json_t *e = json_deep_copy(cairn_daemon_entry(d, p->name, names->pdata[k]));
            /* a scheduled run outside the window waits for it to open */
            int64_t next = json_i64(e, "backup_next");
            if (next > 0)
                json_object_set_new(e, "backup_starts",
                                    json_integer(cairn_policy_window_open(p, next)));
            DomainSeen *s = d->domains ? g_hash_table_lookup(d->domains, names->pdata[k]) : NULL;
            if (s) {
                json_object_set_new(e, "running", json_boolean(s->running));
                if (s->dirty_known)
                    json_object_set_new(e, "dirty_bytes", json_integer((json_int_t) s->dirty));
            }
            json_array_append_new(doms, e);
        }
        /* names that are no glob and match no domain: report them */
        json_t *missing = json_array();
        for (guint k = 0; d->domains_known && p->domains && p->domains[k]; k++)
            if (!is_glob(p->domains[k]) && !g_hash_table_contains(d->domains, p->domains[k]))
                json_array_append_new(missing, json_string(p->domains[k]));
        json_object_set_new(o, "domains", doms);
        json_object_set_new(o, "missing_domains", missing);
        json_t *pe = cairn_daemon_entry(d, p->name, NULL);
        json_object_set(o, "verify", pe);
        json_array_append_new(arr, o);
    }
    return arr;
}
