/* policy.h - backup policies: $CAIRN_CONFIG_DIR/policies.d/NAME.conf
 * (default /etc/cairn), one file per VM or group of VMs. See
 * cairn-policy(5) and etc/policies.d/example.conf.
 *
 *   [policy]
 *   domains = web01;db-*            # names or globs (virsh names)
 *   tags = prod                     # and/or libvirt metadata tags
 *   disks = vda;vdb                 # only these disks (default: all)
 *   exclude-disks = vdc
 *   schedule = daily;*:0/15         # calendar expressions (systemd.time)
 *   randomized-delay = 10min        # spread start times over a fleet
 *   dirty-threshold = 1GiB          # also back up when this much changed
 *   dirty-check-interval = 1min
 *   quiesce = auto                  # auto|always|never
 *   window = 22:00-06:00            # no job starts outside it
 *   timeout = 6h                    # a job running longer is aborted
 *   max-jobs = 1                    # of this policy at once
 *   [retention]
 *   keep-last = 7
 *   keep-daily = 14 ... (hourly, weekly, monthly, yearly)
 *   [push]
 *   targets = offsite;s3            # remotes.d names
 *   bwlimit = 50MiB                 # bytes per second
 *   keep-last = 30 ...              # retention on the remotes (default: as local)
 *   [verify]
 *   schedule = Sun 04:00
 *   read-data = 10%                 # or "all"; empty = structure only
 *   [gc]
 *   schedule = Sun 05:00
 *   grace = 1h
 *
 * Lists are separated by ';'. A '#' at the start of a value or after white
 * space starts a comment; an empty value is the same as no value.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "policies/remote.h"
#include "repo/prune.h"
#include "scheduler/calendar.h"

typedef struct {
    char *name;          /* file name without .conf */
    char *path;
    char **domains;      /* globs, NULL-terminated (may be empty) */
    char **tags;
    char **disks, **exclude_disks;
    char **schedule_text;          /* as written */
    GPtrArray *schedules;          /* CairnCalendar* */
    int64_t randomized_delay;      /* seconds, 0 = none */
    uint64_t dirty_threshold;      /* bytes, 0 = no change-driven trigger */
    int64_t dirty_check_interval;  /* seconds */
    char *quiesce;                 /* "auto" (default), "always", "never" */
    int window_start, window_end;  /* minutes after midnight; -1 = always */
    int64_t timeout;               /* seconds, 0 = none */
    guint max_jobs;                /* default 1 */
    CairnKeepPolicy keep;          /* local retention, all 0 = keep all */
    char **targets;                /* remote names */
    uint64_t bwlimit;              /* bytes/s for pushes, 0 = unlimited */
    CairnKeepPolicy remote_keep;   /* retention on the targets */
    GPtrArray *verify_schedules;   /* CairnCalendar*, empty = never */
    int verify_read_data;          /* percent of chunks read, 0..100; -1 = structure only */
    GPtrArray *gc_schedules;       /* CairnCalendar*, empty = never */
    int64_t gc_grace;              /* seconds */
    GHashTable *lines;             /* "group" or "group/key" -> line (GINT_TO_POINTER) */
} CairnPolicy;

void cairn_policy_free(CairnPolicy *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnPolicy, cairn_policy_free)

/* One file. Every error message starts with "FILE:LINE: " (unknown keys get
 * a did-you-mean). Remote names are checked against remotes.d. All the
 * problems of a file are reported at once: one per line of the message
 * (CAIRN_POLICY_ERROR_INVALID; _NOT_FOUND when the file cannot be read).
 * The string lists of the struct are never NULL (empty instead). */
CairnPolicy *cairn_policy_load(const char *path, GError **error);

/* By name: policies.d/NAME.conf; an unknown name gets a did-you-mean. */
CairnPolicy *cairn_policy_lookup(const char *name, GError **error);

/* $CAIRN_CONFIG_DIR/policies.d */
char *cairn_policy_dir(void);

/* Paths of every *.conf in policies.d, sorted by name; empty when the
 * directory does not exist, NULL when it cannot be read. */
GPtrArray *cairn_policy_list_files(GError **error);

/* The line of a key (key NULL: of the group header) in the policy's file,
 * else of its group, else 1: for messages about a loaded policy. */
int cairn_policy_line(const CairnPolicy *p, const char *group, const char *key);

/* Every *.conf of $CAIRN_CONFIG_DIR/policies.d (sorted by name). Files that
 * fail are reported in ret_errors (one GError per file) and left out. */
GPtrArray *cairn_policy_load_all(GPtrArray **ret_errors);

/* Does a domain (name, metadata tags) fall under the policy? */
gboolean cairn_policy_matches(const CairnPolicy *p, const char *domain, const char *const *tags);

/* Is the wall-clock time (unix seconds, local time) inside the window? */
gboolean cairn_policy_in_window(const CairnPolicy *p, int64_t unix_time);

/* The first time at or after unix_time inside the window: unix_time itself
 * inside it (or without a window), else the window's next start. */
int64_t cairn_policy_window_open(const CairnPolicy *p, int64_t unix_time);
