/* schedule.h - when a policy's job is due (systemd Persistent=true
 * semantics): each job keeps an anchor, the time its last scheduled trigger
 * was consumed. The job is due when any calendar has a trigger after the
 * anchor that is not in the future; every trigger missed while the daemon
 * or the host was down collapses into one run. A clock set back never
 * repeats a trigger already consumed (the anchor is then in the future). */
#pragma once

#include <glib.h>
#include <stdint.h>

/* the first trigger of any CairnCalendar* in cals strictly after 'after',
 * or -1 when none will come */
int64_t cairn_schedule_next(GPtrArray *cals, int64_t after);

/* The first trigger after 'anchor' when it is not after 'now' (the job is
 * due; a trigger well before now means runs were missed), or -1. *ret_next (may be NULL) gets the next
 * trigger after max(now, anchor), -1 for none. */
int64_t cairn_schedule_due(GPtrArray *cals, int64_t anchor, int64_t now, int64_t *ret_next);
