/* daemon.h - cairnd, the per-host agent: shared state of its parts.
 *
 *   cairnd.c          main loop, configuration, signals, sd_notify, logging
 *   daemon-sched.c    policies, schedule entries, due times, persistent state,
 *                     the libvirt poll (domains, tags, dirty bytes)
 *   daemon-jobs.c     the job queue, concurrency limits, job steps run as
 *                     `cairn` child processes, retries, cancel, timeouts
 *   daemon-control.c  the control socket (JSON lines, root only)
 *   daemon-metrics.c  the Prometheus textfile
 *
 * Everything runs in the main thread except the libvirt poll (a GTask
 * thread with its own connection). */
#pragma once

#include <gio/gio.h>
#include <jansson.h>
#include <stdint.h>

#include "policies/policy.h"

typedef struct {
    char *repo;          /* local repository path */
    char *uri;           /* libvirt URI, NULL = default */
    char *socket_path;   /* control socket */
    char *state_path;    /* persistent state (JSON) */
    char *metrics_path;  /* Prometheus textfile, NULL = none */
    char *cairn_bin;     /* the `cairn` command run for each step */
    guint max_jobs;      /* host-wide */
    uint64_t min_free;   /* no backup starts with less free on the repository */
    guint retries;       /* retries of a failed job before the next schedule */
    int64_t retry_delay; /* first retry delay, doubled each time */
    int64_t kill_grace;  /* SIGTERM -> SIGKILL */
    int64_t poll_interval; /* libvirt domain list refresh */
} CairnDaemonConfig;

typedef enum {
    JOB_QUEUED,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB_CANCELLED,
} CairnJobState;

typedef enum {
    JOB_BACKUP, /* backup, prune, push to each target, prune each target */
    JOB_PUSH,   /* retry of pushes that failed */
    JOB_VERIFY,
    JOB_GC,
} CairnJobKind;

typedef struct CairnDaemonJob CairnDaemonJob;

typedef struct {
    CairnDaemonConfig cfg;
    GMainLoop *loop;
    int64_t started;
    gboolean stopping;
    /* policies */
    GPtrArray *policies;      /* CairnPolicy*, the running configuration */
    GPtrArray *policy_errors; /* GError*, files refused at the last (re)load */
    int64_t loaded_at;
    /* schedule entries and persistent state: {"entries": {KEY: {...}}} with
     * KEY "POLICY/DOMAIN" for backups and "POLICY" for verify/gc */
    json_t *state;
    /* the libvirt poll: domain name -> tags (char**) and running flag */
    GHashTable *domains;      /* char* -> DomainSeen* (daemon-sched.c) */
    gboolean domains_known;
    char *libvirt_error;      /* the last poll's error, NULL when fine */
    gboolean poll_running;
    int64_t last_poll;
    guint tick_source;
    /* jobs: queued and running first-come first-served, then the finished */
    GPtrArray *jobs;          /* CairnDaemonJob* */
    guint next_job_id;
    char *space_problem;      /* set while the repository is too full */
    GSocketService *control;
} CairnDaemon;

struct CairnDaemonJob {
    guint id;
    CairnJobKind kind;
    char *policy;
    char *domain;             /* NULL for gc/verify of a policy */
    char *reason;             /* "schedule", "catch-up", "dirty", "manual", "retry", ... */
    CairnJobState state;
    gboolean ignore_window;   /* manual runs start outside the window */
    int64_t queued_at, not_before, started_at, finished_at;
    /* steps: argv arrays run one after the other */
    GPtrArray *steps;         /* Step* (daemon-jobs.c) */
    guint step;
    GSubprocess *proc;
    char *pid;
    int progress_fd;
    guint progress_watch;
    GString *progress_buf;
    uint64_t done, total;
    guint timeout_source, kill_source;
    gboolean cancel_requested, timed_out;
    char *waiting;            /* queued: why it does not start yet (NULL: it may) */
    char *error;
    json_t *result;           /* summary: snapshot, bytes, pushes */
    CairnDaemon *daemon;
};

/* cairnd.c */
void cairn_daemon_notify(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* structured log line with CAIRN_POLICY / CAIRN_DOMAIN / CAIRN_JOB fields */
void cairn_daemon_log(GLogLevelFlags level, const char *policy, const char *domain, guint job,
                      const char *fmt, ...) G_GNUC_PRINTF(5, 6);

/* daemon-sched.c */
gboolean cairn_daemon_load_policies(CairnDaemon *d, gboolean initial);
void cairn_daemon_load_state(CairnDaemon *d);
void cairn_daemon_save_state(CairnDaemon *d);
json_t *cairn_daemon_entry(CairnDaemon *d, const char *policy, const char *domain);
const CairnPolicy *cairn_daemon_find_policy(CairnDaemon *d, const char *name);
/* the domains a policy covers now (names; empty when libvirt is unknown) */
GPtrArray *cairn_daemon_policy_domains(CairnDaemon *d, const CairnPolicy *p);
void cairn_daemon_schedule_tick(CairnDaemon *d);
/* List libvirt's domains before the control socket opens (so that a 'run'
 * right after the start knows them), waiting at most max_seconds. */
void cairn_daemon_first_poll(CairnDaemon *d, guint max_seconds);
/* schedule the next tick at least this soon (seconds) */
void cairn_daemon_wake(CairnDaemon *d, double seconds);
json_t *cairn_daemon_policies_json(CairnDaemon *d);
/* After a backup was killed: abort the libvirt backup job it left running
 * (in a thread); the finish gives one line saying what was done. */
void cairn_daemon_end_libvirt_job(CairnDaemon *d, const char *domain, GAsyncReadyCallback cb,
                                  gpointer data);
char *cairn_daemon_end_libvirt_job_finish(GAsyncResult *res);

/* daemon-jobs.c */
CairnDaemonJob *cairn_daemon_queue(CairnDaemon *d, CairnJobKind kind, const char *policy,
                                   const char *domain, const char *reason, int64_t not_before);
/* a backup job whose snapshot is taken (running its push or prune steps):
 * a new request for the domain needs a new job */
gboolean cairn_daemon_job_snapshot_taken(CairnDaemonJob *j);
/* a queued or running job of this kind/policy/domain */
CairnDaemonJob *cairn_daemon_find_active(CairnDaemon *d, CairnJobKind kind, const char *policy,
                                         const char *domain);
CairnDaemonJob *cairn_daemon_find_job(CairnDaemon *d, guint id);
void cairn_daemon_dispatch(CairnDaemon *d);
gboolean cairn_daemon_cancel(CairnDaemon *d, CairnDaemonJob *job, const char *why);
guint cairn_daemon_running(CairnDaemon *d);
json_t *cairn_daemon_job_json(const CairnDaemonJob *job);
void cairn_daemon_job_free(CairnDaemonJob *job);
const char *cairn_daemon_job_state_name(CairnJobState s);
const char *cairn_daemon_job_kind_name(CairnJobKind k);

/* daemon-control.c */
gboolean cairn_daemon_control_start(CairnDaemon *d, GError **error);
void cairn_daemon_control_stop(CairnDaemon *d);
json_t *cairn_daemon_status_json(CairnDaemon *d);

/* daemon-metrics.c */
void cairn_daemon_write_metrics(CairnDaemon *d);
