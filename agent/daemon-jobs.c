/* daemon-jobs.c - cairnd's job queue. A job is a list of steps, each a
 * `cairn` child process (backup, prune, push, prune on the remote, verify,
 * gc): a step that hangs or crashes never takes the daemon with it, a cancel
 * is a SIGTERM that the command turns into its clean error path, and the
 * command line the daemon runs is the one an operator can run by hand.
 * Children report progress as JSON lines on $CAIRN_PROGRESS_FD and their
 * summary with --json on stdout; their stderr goes to the journal. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <glib-unix.h>

#include "agent/daemon.h"
#include "common/cleanup.h"
#include "common/util.h"

typedef enum {
    STEP_BACKUP,
    STEP_PRUNE,
    STEP_PUSH,
    STEP_REMOTE_PRUNE,
    STEP_VERIFY,
    STEP_GC,
} StepType;

typedef struct {
    StepType type;
    char *label;   /* "backup", "push offsite", ... */
    char *remote;  /* push / remote prune */
    GPtrArray *argv;
} Step;

#define EXIT_BUSY 75 /* cairn backup: another backup of the domain runs */
#define FINISHED_KEPT 64

static void start_step(CairnDaemonJob *job);
static void finish_job(CairnDaemonJob *job, CairnJobState state, const char *error);

static const char *const state_names[] = { "queued", "running", "succeeded", "failed",
                                           "cancelled" };
static const char *const kind_names[] = { "backup", "push", "verify", "gc" };

const char *
cairn_daemon_job_state_name(CairnJobState s)
{
    return state_names[s];
}

const char *
cairn_daemon_job_kind_name(CairnJobKind k)
{
    return kind_names[k];
}

static void
step_free(gpointer p)
{
    Step *s = p;
    g_free(s->label);
    g_free(s->remote);
    g_ptr_array_unref(s->argv);
    g_free(s);
}

void
cairn_daemon_job_free(CairnDaemonJob *job)
{
    if (!job)
        return;
    if (job->progress_watch)
        g_source_remove(job->progress_watch);
    if (job->progress_fd >= 0)
        close(job->progress_fd);
    if (job->timeout_source)
        g_source_remove(job->timeout_source);
    if (job->kill_source)
        g_source_remove(job->kill_source);
    g_clear_object(&job->proc);
    g_free(job->waiting);
    g_ptr_array_unref(job->steps);
    if (job->progress_buf)
        g_string_free(job->progress_buf, TRUE);
    g_free(job->pid);
    g_free(job->policy);
    g_free(job->domain);
    g_free(job->reason);
    g_free(job->error);
    json_decref(job->result);
    g_free(job);
}

/* a step running `cairn --repo REPO ARGS... --json` */
static Step *
add_step(CairnDaemonJob *job, StepType type, const char *label, const char *remote,
         const char *repo, ...)
{
    Step *s = g_new0(Step, 1);
    s->type = type;
    s->label = g_strdup(label);
    s->remote = g_strdup(remote);
    s->argv = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(s->argv, g_strdup(job->daemon->cfg.cairn_bin));
    g_ptr_array_add(s->argv, g_strdup("--quiet"));
    g_ptr_array_add(s->argv, g_strdup("--repo"));
    g_ptr_array_add(s->argv, g_strdup(repo));
    va_list ap;
    va_start(ap, repo);
    for (const char *a; (a = va_arg(ap, const char *));)
        g_ptr_array_add(s->argv, g_strdup(a));
    va_end(ap);
    g_ptr_array_add(job->steps, s);
    return s;
}

static void
add_arg(Step *s, const char *arg)
{
    g_ptr_array_add(s->argv, g_strdup(arg));
}

static void
add_opt(Step *s, const char *opt, const char *value)
{
    add_arg(s, opt);
    add_arg(s, value);
}

static void
add_keep(Step *s, const CairnKeepPolicy *k, const char *domain)
{
    const struct {
        const char *opt;
        int n;
    } keeps[] = { { "--keep-last", k->last },       { "--keep-hourly", k->hourly },
                  { "--keep-daily", k->daily },     { "--keep-weekly", k->weekly },
                  { "--keep-monthly", k->monthly }, { "--keep-yearly", k->yearly } };
    for (size_t i = 0; i < G_N_ELEMENTS(keeps); i++) {
        if (keeps[i].n > 0) {
            g_autofree char *n = g_strdup_printf("%d", keeps[i].n);
            add_opt(s, keeps[i].opt, n);
        }
    }
    add_opt(s, "--name", domain);
}

/* The snapshot ids still waiting to be pushed to 'remote' for this entry. */
static json_t *
pending_pushes(json_t *entry, const char *remote, gboolean create)
{
    json_t *pend = json_object_get(entry, "pending_push");
    if (!pend) {
        if (!create)
            return NULL;
        pend = json_object();
        json_object_set_new(entry, "pending_push", pend);
    }
    json_t *ids = json_object_get(pend, remote);
    if (!ids && create) {
        ids = json_array();
        json_object_set_new(pend, remote, ids);
    }
    return ids;
}

static void
add_push_steps(CairnDaemonJob *job, const CairnPolicy *p, json_t *entry, const char *snapshot)
{
    CairnDaemon *d = job->daemon;
    /* a remote the policy no longer pushes to has nothing pending */
    json_t *pend = json_object_get(entry, "pending_push");
    const char *key;
    json_t *val, *tmp;
    json_object_foreach_safe(pend, tmp, key, val) {
        if (!p->targets || !g_strv_contains((const char *const *) p->targets, key))
            json_object_del(pend, key);
    }
    for (guint i = 0; p->targets && p->targets[i]; i++) {
        const char *remote = p->targets[i];
        json_t *ids = pending_pushes(entry, remote, snapshot != NULL);
        if (snapshot)
            json_array_append_new(ids, json_string(snapshot));
        if (!ids || json_array_size(ids) == 0)
            continue;
        g_autofree char *label = g_strdup_printf("push %s", remote);
        Step *s = add_step(job, STEP_PUSH, label, remote, d->cfg.repo, "push", remote,
                           "--json", "--skip-missing", NULL);
        if (p->bwlimit) {
            g_autofree char *bw = g_strdup_printf("%" G_GUINT64_FORMAT, p->bwlimit);
            add_opt(s, "--bwlimit", bw);
        }
        size_t k;
        json_t *id;
        json_array_foreach(ids, k, id) add_arg(s, json_string_value(id));
        if (!cairn_keep_policy_is_empty(&p->remote_keep)) {
            g_autofree char *plabel = g_strdup_printf("prune %s", remote);
            Step *ps = add_step(job, STEP_REMOTE_PRUNE, plabel, remote, remote, "prune",
                                "--json", NULL);
            add_keep(ps, &p->remote_keep, job->domain);
        }
    }
}

/* the steps a job starts with (a backup grows its push steps once the
 * snapshot exists) */
static gboolean
plan_job(CairnDaemonJob *job)
{
    CairnDaemon *d = job->daemon;
    const CairnPolicy *p = cairn_daemon_find_policy(d, job->policy);
    if (!p) {
        finish_job(job, JOB_CANCELLED, "the policy is gone (configuration reloaded)");
        return FALSE;
    }
    switch (job->kind) {
    case JOB_BACKUP: {
        Step *s = add_step(job, STEP_BACKUP, "backup", NULL, d->cfg.repo, "backup",
                           job->domain, "--json", "--quiesce", p->quiesce ? p->quiesce : "auto",
                           NULL);
        if (d->cfg.uri)
            add_opt(s, "--connect", d->cfg.uri);
        for (guint i = 0; p->disks && p->disks[i]; i++)
            add_opt(s, "--disk", p->disks[i]);
        for (guint i = 0; p->exclude_disks && p->exclude_disks[i]; i++)
            add_opt(s, "--exclude-disk", p->exclude_disks[i]);
        g_autofree char *tag = g_strdup_printf("policy=%s", p->name);
        add_opt(s, "--tag", tag);
        break;
    }
    case JOB_PUSH:
        add_push_steps(job, p, cairn_daemon_entry(d, job->policy, job->domain), NULL);
        break;
    case JOB_VERIFY: {
        Step *s = add_step(job, STEP_VERIFY, "verify", NULL, d->cfg.repo, "verify", "--json",
                           NULL);
        if (p->verify_read_data >= 100) {
            add_arg(s, "--read-data");
        } else if (p->verify_read_data > 0) {
            g_autofree char *pct = g_strdup_printf("%d%%", p->verify_read_data);
            add_opt(s, "--read-data-subset", pct);
        }
        g_autoptr(GPtrArray) doms = cairn_daemon_policy_domains(d, p);
        for (guint i = 0; i < doms->len; i++) {
            g_autofree char *spec = g_strdup_printf("%s@latest", (char *) doms->pdata[i]);
            add_arg(s, spec);
        }
        if (doms->len == 0) {
            finish_job(job, JOB_SUCCEEDED, NULL);
            return FALSE;
        }
        break;
    }
    case JOB_GC: {
        g_autofree char *grace = g_strdup_printf("%" G_GINT64_FORMAT "s", p->gc_grace);
        add_step(job, STEP_GC, "gc", NULL, d->cfg.repo, "gc", "--json", "--grace", grace, NULL);
        break;
    }
    }
    if (job->steps->len == 0) {
        finish_job(job, JOB_SUCCEEDED, NULL);
        return FALSE;
    }
    return TRUE;
}

CairnDaemonJob *
cairn_daemon_queue(CairnDaemon *d, CairnJobKind kind, const char *policy, const char *domain,
                   const char *reason, int64_t not_before)
{
    CairnDaemonJob *job = g_new0(CairnDaemonJob, 1);
    job->daemon = d;
    job->id = ++d->next_job_id;
    job->kind = kind;
    job->policy = g_strdup(policy);
    job->domain = g_strdup(domain);
    job->reason = g_strdup(reason);
    job->state = JOB_QUEUED;
    job->queued_at = cairn_now();
    job->not_before = not_before;
    job->progress_fd = -1;
    job->steps = g_ptr_array_new_with_free_func(step_free);
    job->result = json_object();
    g_ptr_array_add(d->jobs, job);
    cairn_daemon_log(G_LOG_LEVEL_INFO, policy, domain, job->id, "%s job %u queued (%s)",
                     kind_names[kind], job->id, reason);
    return job;
}

static gboolean
is_active(const CairnDaemonJob *j)
{
    return j->state == JOB_QUEUED || j->state == JOB_RUNNING;
}

CairnDaemonJob *
cairn_daemon_find_active(CairnDaemon *d, CairnJobKind kind, const char *policy,
                         const char *domain)
{
    for (guint i = 0; i < d->jobs->len; i++) {
        CairnDaemonJob *j = d->jobs->pdata[i];
        if (is_active(j) && j->kind == kind && !g_strcmp0(j->policy, policy) &&
            !g_strcmp0(j->domain, domain))
            return j;
    }
    return NULL;
}

gboolean
cairn_daemon_job_snapshot_taken(CairnDaemonJob *j)
{
    return j->state == JOB_RUNNING && j->kind == JOB_BACKUP && j->step < j->steps->len &&
           ((Step *) j->steps->pdata[j->step])->type != STEP_BACKUP;
}

CairnDaemonJob *
cairn_daemon_find_job(CairnDaemon *d, guint id)
{
    for (guint i = 0; i < d->jobs->len; i++)
        if (((CairnDaemonJob *) d->jobs->pdata[i])->id == id)
            return d->jobs->pdata[i];
    return NULL;
}

guint
cairn_daemon_running(CairnDaemon *d)
{
    guint n = 0;
    for (guint i = 0; i < d->jobs->len; i++)
        n += ((CairnDaemonJob *) d->jobs->pdata[i])->state == JOB_RUNNING;
    return n;
}

/* keep the last FINISHED_KEPT finished jobs for `cairn jobs` */
static void
trim_finished(CairnDaemon *d)
{
    guint finished = 0;
    for (guint i = d->jobs->len; i-- > 0;) {
        CairnDaemonJob *j = d->jobs->pdata[i];
        if (is_active(j))
            continue;
        if (++finished > FINISHED_KEPT) {
            g_ptr_array_remove_index(d->jobs, i);
            cairn_daemon_job_free(j);
        }
    }
}

static uint64_t
json_u64(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (uint64_t) json_integer_value(v) : 0;
}

/* ---- finishing */

static void
record_result(CairnDaemonJob *job)
{
    CairnDaemon *d = job->daemon;
    if (job->kind != JOB_BACKUP && job->kind != JOB_PUSH) {
        json_t *e = cairn_daemon_entry(d, job->policy, NULL);
        const char *k = job->kind == JOB_VERIFY ? "verify" : "gc";
        g_autofree char *kr = g_strdup_printf("last_%s_result", k);
        g_autofree char *kt = g_strdup_printf("last_%s_time", k);
        json_object_set_new(e, kr, json_string(state_names[job->state]));
        json_object_set_new(e, kt, json_integer(job->finished_at));
        cairn_daemon_save_state(d);
        return;
    }
    json_t *e = cairn_daemon_entry(d, job->policy, job->domain);
    if (job->kind == JOB_BACKUP) {
        json_object_set_new(e, "last_start", json_integer(job->started_at));
        json_object_set_new(e, "last_end", json_integer(job->finished_at));
        json_object_set_new(e, "last_result", json_string(state_names[job->state]));
        json_object_set_new(e, "last_job", json_integer(job->id));
        if (job->error)
            json_object_set_new(e, "last_error", json_string(job->error));
        else
            json_object_del(e, "last_error");
        json_object_set_new(e, "last_duration",
                            json_integer(job->finished_at - job->started_at));
        if (job->state == JOB_SUCCEEDED) {
            json_object_set_new(e, "last_success", json_integer(job->finished_at));
            json_object_set(e, "last_snapshot", json_object_get(job->result, "snapshot"));
            json_object_set_new(e, "bytes_read",
                                json_integer((json_int_t) json_u64(job->result, "bytes_read")));
            json_object_set_new(e, "bytes_new",
                                json_integer((json_int_t) json_u64(job->result, "bytes_new")));
            json_object_set_new(e, "failures", json_integer(0));
            json_object_del(e, "retry_at");
        } else if (job->state == JOB_CANCELLED && d->stopping) {
            /* interrupted by a stop or restart of cairnd: run again at start */
            json_object_set_new(e, "retry_at", json_integer(cairn_now()));
        } else if (job->state == JOB_FAILED) {
            json_int_t f = json_integer_value(json_object_get(e, "failures")) + 1;
            json_object_set_new(e, "failures", json_integer(f));
            json_object_set_new(e, "failures_total",
                                json_integer(json_integer_value(
                                                 json_object_get(e, "failures_total")) + 1));
            if ((guint) f <= d->cfg.retries) {
                int64_t delay = d->cfg.retry_delay << (f - 1);
                json_object_set_new(e, "retry_at", json_integer(cairn_now() + delay));
                cairn_daemon_log(G_LOG_LEVEL_WARNING, job->policy, job->domain, job->id,
                                 "backup of %s failed (%s); retry %d of %u in %" G_GINT64_FORMAT
                                 " s", job->domain, job->error, (int) f, d->cfg.retries, delay);
            } else {
                json_object_del(e, "retry_at");
                cairn_daemon_log(G_LOG_LEVEL_WARNING, job->policy, job->domain, job->id,
                                 "backup of %s failed %d times (%s); next try at the next "
                                 "scheduled time", job->domain, (int) f, job->error);
            }
        }
    }
    /* pushes that failed are retried on their own, with backoff */
    json_t *pushes = json_object_get(job->result, "pushes");
    gboolean push_failed = FALSE;
    const char *remote;
    json_t *pr;
    json_object_foreach(pushes, remote, pr) {
        if (json_is_true(json_object_get(pr, "ok"))) {
            json_t *ids = pending_pushes(e, remote, FALSE);
            if (ids)
                json_array_clear(ids);
            json_object_set_new(e, "last_push_bytes",
                                json_integer((json_int_t) json_u64(pr, "bytes_sent")));
        } else {
            push_failed = TRUE;
        }
    }
    if (push_failed) {
        json_int_t f = json_integer_value(json_object_get(e, "push_failures")) + 1;
        json_object_set_new(e, "push_failures", json_integer(f));
        int64_t delay = d->cfg.retry_delay << MIN(f - 1, 6);
        json_object_set_new(e, "push_retry_at", json_integer(cairn_now() + delay));
    } else if (pushes) {
        json_object_set_new(e, "push_failures", json_integer(0));
        json_object_del(e, "push_retry_at");
    }
    cairn_daemon_save_state(d);
}

static void
finish_job(CairnDaemonJob *job, CairnJobState state, const char *error)
{
    CairnDaemon *d = job->daemon;
    gboolean was_running = job->state == JOB_RUNNING;
    job->state = state;
    job->finished_at = cairn_now();
    if (!job->started_at)
        job->started_at = job->finished_at;
    g_free(job->error);
    job->error = g_strdup(error);
    if (job->timeout_source) {
        g_source_remove(job->timeout_source);
        job->timeout_source = 0;
    }
    if (job->kill_source) {
        g_source_remove(job->kill_source);
        job->kill_source = 0;
    }
    if (state == JOB_SUCCEEDED)
        cairn_daemon_log(G_LOG_LEVEL_INFO, job->policy, job->domain, job->id,
                         "%s job %u succeeded in %" G_GINT64_FORMAT " s", kind_names[job->kind],
                         job->id, job->finished_at - job->started_at);
    else
        cairn_daemon_log(state == JOB_FAILED ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_INFO,
                         job->policy, job->domain, job->id, "%s job %u %s: %s",
                         kind_names[job->kind], job->id, state_names[state],
                         error ? error : "no reason given");
    if (was_running || state != JOB_CANCELLED)
        record_result(job);
    cairn_daemon_write_metrics(d);
    trim_finished(d);
    if (!d->stopping)
        cairn_daemon_wake(d, 0);
    else if (cairn_daemon_running(d) == 0)
        g_main_loop_quit(d->loop);
}

/* ---- running steps */

static gboolean
progress_ready(gint fd, GIOCondition cond, gpointer data)
{
    CairnDaemonJob *job = data;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return G_SOURCE_CONTINUE;
        job->progress_watch = 0;
        close(job->progress_fd);
        job->progress_fd = -1;
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(job->progress_buf, buf, n);
    char *nl;
    while ((nl = strchr(job->progress_buf->str, '\n'))) {
        *nl = '\0';
        g_autoptr(CairnJson) o = json_loads(job->progress_buf->str, 0, NULL);
        if (o) {
            job->done = json_u64(o, "done");
            job->total = json_u64(o, "total");
        }
        g_string_erase(job->progress_buf, 0, nl - job->progress_buf->str + 1);
    }
    (void) cond;
    return G_SOURCE_CONTINUE;
}

/* the last line of a command's stderr: its error message */
static char *
last_line(const char *text)
{
    g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
    for (guint i = g_strv_length(lines); i-- > 0;) {
        g_strstrip(lines[i]);
        if (*lines[i])
            return g_strdup(lines[i]);
    }
    return NULL;
}

static void
log_stderr(CairnDaemonJob *job, const char *text)
{
    g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
    for (guint i = 0; lines[i]; i++)
        if (*lines[i])
            cairn_daemon_log(G_LOG_LEVEL_INFO, job->policy, job->domain, job->id, "%s",
                             lines[i]);
}

static void
killed_backup_cleaned(GObject *source, GAsyncResult *res, gpointer data)
{
    CairnDaemonJob *job = data;
    g_autofree char *outcome = cairn_daemon_end_libvirt_job_finish(res);
    g_autofree char *why = g_strdup_printf("%s; %s", job->error, outcome);
    (void) source;
    finish_job(job, job->timed_out ? JOB_FAILED : job->cancel_requested ? JOB_CANCELLED
                                                                         : JOB_FAILED, why);
}

static void
step_done(GObject *source, GAsyncResult *res, gpointer data)
{
    CairnDaemonJob *job = data;
    CairnDaemon *d = job->daemon;
    Step *step = job->steps->pdata[job->step];
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(GError) gerr = NULL;
    g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), res, &out, &err, &gerr);
    g_autoptr(GSubprocess) proc = g_steal_pointer(&job->proc);
    log_stderr(job, err);
    g_clear_pointer(&job->pid, g_free);
    int status = -1;
    gboolean exited = g_subprocess_get_if_exited(proc);
    if (exited)
        status = g_subprocess_get_exit_status(proc);
    g_autoptr(CairnJson) summary = out ? json_loads(out, 0, NULL) : NULL;
    g_autofree char *why = NULL;
    if (!exited)
        why = g_strdup_printf("%s: cairn was killed by signal %d", step->label,
                              g_subprocess_get_term_sig(proc));
    else if (status != 0) {
        g_autofree char *msg = last_line(err);
        why = g_strdup_printf("%s: %s", step->label, msg ? msg : "failed");
    }
    if (job->timed_out) {
        g_free(why);
        why = g_strdup_printf("%s: timed out after %s; the job was aborted", step->label,
                              json_string_value(json_object_get(job->result, "timeout")));
    }

    if (step->type == STEP_BACKUP && !exited) {
        /* killed (SIGKILL after the grace, or from outside): its error path
         * did not run, so end the libvirt job it may have left */
        g_free(job->error);
        job->error = g_steal_pointer(&why);
        cairn_daemon_end_libvirt_job(d, job->domain, killed_backup_cleaned, job);
        return;
    }
    if (why && (job->cancel_requested || job->timed_out)) {
        if (job->kind != JOB_BACKUP || step->type == STEP_BACKUP) {
            finish_job(job, job->timed_out ? JOB_FAILED : JOB_CANCELLED,
                       job->timed_out ? why : json_string_value(json_object_get(job->result,
                                                                                "cancelled")));
            return;
        }
        /* the snapshot is published: a push or prune stopped by the timeout
         * or a cancel fails as that step would (a push stays queued), and
         * the steps after it are left to the next run */
        if (job->cancel_requested && !job->timed_out) {
            g_free(why);
            why = g_strdup_printf("%s: cancelled", step->label);
        }
        g_ptr_array_set_size(job->steps, job->step + 1);
    }
    const CairnPolicy *p = cairn_daemon_find_policy(d, job->policy);
    switch (step->type) {
    case STEP_BACKUP:
        if (why) {
            if (exited && status == EXIT_BUSY) {
                /* a backup started by hand holds the domain: not a failure */
                job->state = JOB_QUEUED;
                job->not_before = cairn_now() + 30;
                g_ptr_array_set_size(job->steps, 0);
                job->step = 0;
                cairn_daemon_log(G_LOG_LEVEL_INFO, job->policy, job->domain, job->id,
                                 "%s is being backed up by another cairn; trying again in 30 s",
                                 job->domain);
                cairn_daemon_wake(d, 30);
                return;
            }
            finish_job(job, JOB_FAILED, why);
            return;
        }
        if (summary) {
            json_object_set(job->result, "snapshot", json_object_get(summary, "id"));
            json_object_set(job->result, "mode", json_object_get(summary, "mode"));
            json_object_set(job->result, "bytes_read", json_object_get(summary, "bytes_read"));
            json_object_set(job->result, "bytes_new", json_object_get(summary, "bytes_new"));
        }
        if (p && !cairn_keep_policy_is_empty(&p->keep)) {
            Step *s = add_step(job, STEP_PRUNE, "prune", NULL, d->cfg.repo, "prune", "--json",
                               NULL);
            add_keep(s, &p->keep, job->domain);
        }
        if (p)
            add_push_steps(job, p, cairn_daemon_entry(d, job->policy, job->domain),
                           json_string_value(json_object_get(job->result, "snapshot")));
        break;
    case STEP_PUSH: {
        json_t *pushes = json_object_get(job->result, "pushes");
        if (!pushes) {
            pushes = json_object();
            json_object_set_new(job->result, "pushes", pushes);
        }
        json_t *pr = json_pack("{s:b}", "ok", why == NULL);
        if (summary)
            json_object_set(pr, "bytes_sent", json_object_get(summary, "bytes_sent"));
        if (why) {
            json_object_set_new(pr, "error", json_string(why));
            cairn_daemon_log(G_LOG_LEVEL_WARNING, job->policy, job->domain, job->id,
                             "%s; the snapshot stays queued for %s and is pushed later", why,
                             step->remote);
            /* no prune of a remote the push did not reach */
            for (guint i = job->step + 1; i < job->steps->len; i++) {
                Step *s = job->steps->pdata[i];
                if (s->type == STEP_REMOTE_PRUNE && !g_strcmp0(s->remote, step->remote)) {
                    g_ptr_array_remove_index(job->steps, i);
                    break;
                }
            }
        }
        json_object_set_new(pushes, step->remote, pr);
        break;
    }
    case STEP_PRUNE:
    case STEP_REMOTE_PRUNE:
    case STEP_VERIFY:
    case STEP_GC:
        if (why) {
            /* the snapshot is safe; a failed prune is reported and retried
             * with the next run */
            json_t *errs = json_object_get(job->result, "errors");
            if (!errs) {
                errs = json_array();
                json_object_set_new(job->result, "errors", errs);
            }
            json_array_append_new(errs, json_string(why));
            if (step->type == STEP_VERIFY || step->type == STEP_GC) {
                finish_job(job, JOB_FAILED, why);
                return;
            }
        }
        if (summary && step->type == STEP_VERIFY)
            json_object_set(job->result, "verify", summary);
        break;
    }
    job->step++;
    job->done = job->total = 0;
    if (job->step < job->steps->len && !d->stopping) {
        start_step(job);
        return;
    }
    /* the job succeeded when its main step did; failed pushes are retried */
    json_t *errs = json_object_get(job->result, "errors");
    json_t *pushes = json_object_get(job->result, "pushes");
    const char *remote;
    json_t *pr;
    g_autoptr(GString) warn = g_string_new(NULL);
    json_object_foreach(pushes, remote, pr) if (!json_is_true(json_object_get(pr, "ok")))
        g_string_append_printf(warn, "%s%s", warn->len ? "; " : "",
                               json_string_value(json_object_get(pr, "error")));
    size_t k;
    json_t *e;
    json_array_foreach(errs, k, e) g_string_append_printf(warn, "%s%s", warn->len ? "; " : "",
                                                          json_string_value(e));
    if (warn->len)
        json_object_set_new(job->result, "warnings", json_string(warn->str));
    if (job->kind == JOB_PUSH && pushes && warn->len)
        finish_job(job, JOB_FAILED, warn->str);
    else
        finish_job(job, JOB_SUCCEEDED, NULL);
}

static gboolean
kill_now(gpointer data)
{
    CairnDaemonJob *job = data;
    job->kill_source = 0;
    if (job->proc) {
        cairn_daemon_log(G_LOG_LEVEL_WARNING, job->policy, job->domain, job->id,
                         "job %u did not stop within %" G_GINT64_FORMAT " s of SIGTERM: killed",
                         job->id, job->daemon->cfg.kill_grace);
        g_subprocess_force_exit(job->proc);
    }
    return G_SOURCE_REMOVE;
}

static void
terminate(CairnDaemonJob *job)
{
    if (!job->proc)
        return;
    g_subprocess_send_signal(job->proc, SIGTERM);
    if (!job->kill_source)
        job->kill_source = g_timeout_add_seconds((guint) job->daemon->cfg.kill_grace, kill_now,
                                                 job);
}

static gboolean
job_timed_out(gpointer data)
{
    CairnDaemonJob *job = data;
    job->timeout_source = 0;
    job->timed_out = TRUE;
    cairn_daemon_log(G_LOG_LEVEL_WARNING, job->policy, job->domain, job->id,
                     "job %u exceeded its timeout of %s: aborting it", job->id,
                     json_string_value(json_object_get(job->result, "timeout")));
    terminate(job);
    return G_SOURCE_REMOVE;
}

static void
start_step(CairnDaemonJob *job)
{
    CairnDaemon *d = job->daemon;
    Step *step = job->steps->pdata[job->step];
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        g_autofree char *m = g_strdup_printf("cannot create a pipe: %s", g_strerror(errno));
        finish_job(job, JOB_FAILED, m);
        return;
    }
    g_autoptr(GSubprocessLauncher) l =
        g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                  G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDIN_INHERIT);
    g_subprocess_launcher_take_fd(l, pfd[1], 3);
    g_subprocess_launcher_setenv(l, "CAIRN_PROGRESS_FD", "3", TRUE);
    g_subprocess_launcher_unsetenv(l, "NOTIFY_SOCKET");
    g_ptr_array_add(step->argv, NULL);
    g_autoptr(GError) gerr = NULL;
    job->proc = g_subprocess_launcher_spawnv(l, (const char *const *) step->argv->pdata, &gerr);
    g_ptr_array_remove_index(step->argv, step->argv->len - 1);
    if (!job->proc) {
        close(pfd[0]);
        g_autofree char *m = g_strdup_printf("%s: cannot run %s: %s", step->label,
                                             d->cfg.cairn_bin, gerr->message);
        finish_job(job, JOB_FAILED, m);
        return;
    }
    job->pid = g_strdup(g_subprocess_get_identifier(job->proc));
    if (job->progress_watch)
        g_source_remove(job->progress_watch);
    if (job->progress_fd >= 0)
        close(job->progress_fd);
    job->progress_fd = pfd[0];
    g_unix_set_fd_nonblocking(pfd[0], TRUE, NULL);
    if (!job->progress_buf)
        job->progress_buf = g_string_new(NULL);
    g_string_truncate(job->progress_buf, 0);
    job->progress_watch = g_unix_fd_add(pfd[0], G_IO_IN | G_IO_HUP | G_IO_ERR, progress_ready,
                                        job);
    g_autofree char *cmd = g_strjoinv(" ", (char **) step->argv->pdata + 1);
    cairn_daemon_log(G_LOG_LEVEL_INFO, job->policy, job->domain, job->id,
                     "job %u: %s (pid %s): cairn %s", job->id, step->label, job->pid, cmd);
    g_subprocess_communicate_utf8_async(job->proc, NULL, NULL, step_done, job);
}

static gboolean
repo_space_ok(CairnDaemon *d)
{
    struct statvfs v;
    gboolean was_low = d->space_problem != NULL;
    g_clear_pointer(&d->space_problem, g_free);
    uint64_t avail = 0;
    if (d->cfg.min_free == 0 || statvfs(d->cfg.repo, &v) < 0 ||
        (avail = (uint64_t) v.f_bavail * v.f_frsize) >= d->cfg.min_free) {
        /* a missing repository is the backup's error to report */
        if (was_low) {
            cairn_daemon_log(G_LOG_LEVEL_INFO, NULL, NULL, 0,
                             "the repository has enough free space again");
            cairn_daemon_write_metrics(d);
        }
        return TRUE;
    }
    g_autofree char *a = cairn_format_size(avail), *m = cairn_format_size(d->cfg.min_free);
    d->space_problem = g_strdup_printf("the repository %s has %s free, less than min-free %s: "
                                       "no backup starts until space is freed (cairn prune, "
                                       "cairn gc) or min-free is lowered in cairnd.conf",
                                       d->cfg.repo, a, m);
    if (!was_low) {
        cairn_daemon_log(G_LOG_LEVEL_WARNING, NULL, NULL, 0, "%s", d->space_problem);
        cairn_daemon_write_metrics(d);
    }
    return FALSE;
}

/* why (a copy; NULL: nothing) */
static void
set_waiting(CairnDaemonJob *j, const char *why)
{
    if (g_strcmp0(j->waiting, why)) {
        g_free(j->waiting);
        j->waiting = g_strdup(why);
    }
}

static void
start_job(CairnDaemonJob *job)
{
    CairnDaemon *d = job->daemon;
    if (job->steps->len == 0 && !plan_job(job))
        return;
    job->state = JOB_RUNNING;
    job->started_at = cairn_now();
    job->step = 0;
    const CairnPolicy *p = cairn_daemon_find_policy(d, job->policy);
    if (p && p->timeout > 0 && !job->timeout_source) {
        g_autofree char *t = g_strdup_printf("%" G_GINT64_FORMAT " s", p->timeout);
        json_object_set_new(job->result, "timeout", json_string(t));
        job->timeout_source = g_timeout_add_seconds((guint) p->timeout, job_timed_out, job);
    }
    cairn_daemon_log(G_LOG_LEVEL_INFO, job->policy, job->domain, job->id,
                     "%s job %u started (%s)", kind_names[job->kind], job->id, job->reason);
    start_step(job);
}

void
cairn_daemon_dispatch(CairnDaemon *d)
{
    if (d->stopping)
        return;
    int64_t now = cairn_now();
    guint running = cairn_daemon_running(d);
    gboolean gc_running = FALSE, gc_waiting = FALSE;
    for (guint i = 0; i < d->jobs->len; i++) {
        CairnDaemonJob *j = d->jobs->pdata[i];
        gc_running |= j->state == JOB_RUNNING && j->kind == JOB_GC;
        gc_waiting |= j->state == JOB_QUEUED && j->kind == JOB_GC && j->not_before <= now;
    }
    gboolean space_checked = FALSE, space_ok = TRUE;
    double wake = -1;
    /* what keeps each queued job waiting, for cairn jobs and run --wait */
    for (guint i = 0; i < d->jobs->len; i++) {
        CairnDaemonJob *j = d->jobs->pdata[i];
        if (j->state == JOB_QUEUED)
            set_waiting(j, gc_running ? "gc runs: nothing else starts meanwhile"
                           : running >= d->cfg.max_jobs
                               ? "max-jobs of cairnd.conf: that many jobs run" : NULL);
    }
    for (guint i = 0; i < d->jobs->len && running < d->cfg.max_jobs && !gc_running; i++) {
        CairnDaemonJob *j = d->jobs->pdata[i];
        if (j->state != JOB_QUEUED)
            continue;
        if (j->not_before > now) {
            g_autofree char *when = cairn_format_time_utc(j->not_before);
            g_autofree char *why = g_strdup_printf("not before %s", when);
            set_waiting(j, why);
            double w = (double) (j->not_before - now);
            wake = wake < 0 || w < wake ? w : wake;
            continue;
        }
        const CairnPolicy *p = cairn_daemon_find_policy(d, j->policy);
        if (!p) {
            finish_job(j, JOB_CANCELLED, "the policy is gone (configuration reloaded)");
            i--; /* the list may have been trimmed */
            continue;
        }
        /* gc takes the repository's exclusive lock: it waits until nothing
         * else runs, and nothing new starts while it waits */
        if (j->kind == JOB_GC) {
            if (running > 0) {
                set_waiting(j, "gc waits until no other job runs");
                continue;
            }
        } else if (gc_waiting) {
            set_waiting(j, "a gc waits to run: nothing new starts before it");
            continue;
        }
        if (!j->ignore_window && !cairn_policy_in_window(p, now)) {
            set_waiting(j, "outside the policy's window");
            continue;
        }
        guint same_policy = 0;
        gboolean same_domain = FALSE;
        for (guint k = 0; k < d->jobs->len; k++) {
            CairnDaemonJob *o = d->jobs->pdata[k];
            if (o->state != JOB_RUNNING)
                continue;
            same_policy += !g_strcmp0(o->policy, j->policy);
            same_domain |= j->domain && !g_strcmp0(o->domain, j->domain);
        }
        if (same_domain || same_policy >= MAX(p->max_jobs, 1)) {
            set_waiting(j, same_domain ? "another job of the domain runs"
                                       : "max-jobs of the policy: that many of its jobs run");
            continue;
        }
        if (j->kind == JOB_BACKUP) {
            if (!space_checked) {
                space_ok = repo_space_ok(d);
                space_checked = TRUE;
            }
            if (!space_ok) {
                set_waiting(j, d->space_problem);
                continue;
            }
        }
        set_waiting(j, NULL);
        start_job(j);
        running = cairn_daemon_running(d);
        gc_running |= j->kind == JOB_GC && j->state == JOB_RUNNING;
    }
    if (wake >= 0)
        cairn_daemon_wake(d, wake);
    if (space_checked && !space_ok)
        cairn_daemon_wake(d, 30);
}

gboolean
cairn_daemon_cancel(CairnDaemon *d, CairnDaemonJob *job, const char *why)
{
    if (!is_active(job))
        return FALSE;
    json_object_set_new(job->result, "cancelled", json_string(why));
    if (job->state == JOB_QUEUED) {
        finish_job(job, JOB_CANCELLED, why);
        return TRUE;
    }
    job->cancel_requested = TRUE;
    cairn_daemon_log(G_LOG_LEVEL_INFO, job->policy, job->domain, job->id,
                     "cancelling job %u (%s)", job->id, why);
    terminate(job);
    (void) d;
    return TRUE;
}

json_t *
cairn_daemon_job_json(const CairnDaemonJob *j)
{
    json_t *o = json_pack("{s:i, s:s, s:s, s:s?, s:s, s:s, s:I, s:I}", "id", (int) j->id, "kind",
                          kind_names[j->kind], "policy", j->policy, "domain", j->domain,
                          "reason", j->reason, "state", state_names[j->state], "queued",
                          (json_int_t) j->queued_at, "not_before", (json_int_t) j->not_before);
    if (j->state == JOB_QUEUED && j->waiting)
        json_object_set_new(o, "waiting", json_string(j->waiting));
    if (j->started_at)
        json_object_set_new(o, "started", json_integer(j->started_at));
    if (j->finished_at)
        json_object_set_new(o, "finished", json_integer(j->finished_at));
    if (j->state == JOB_RUNNING && j->step < j->steps->len) {
        const Step *s = j->steps->pdata[j->step];
        json_object_set_new(o, "step", json_string(s->label));
        json_object_set_new(o, "steps", json_integer(j->steps->len));
        json_object_set_new(o, "progress", json_pack("{s:I, s:I}", "done", (json_int_t) j->done,
                                                      "total", (json_int_t) j->total));
        if (j->pid)
            json_object_set_new(o, "pid", json_integer(g_ascii_strtoll(j->pid, NULL, 10)));
    }
    if (j->error)
        json_object_set_new(o, "error", json_string(j->error));
    json_object_set(o, "result", j->result);
    return o;
}
