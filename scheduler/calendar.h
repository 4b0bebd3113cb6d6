/* calendar.h - calendar expressions in the systemd.time(7) style:
 *
 *   daily, hourly, weekly, monthly, yearly, minutely, quarterly, ...
 *   [DOW[..DOW][,DOW]] [YYYY-MM-DD] [HH:MM[:SS]] [TIMEZONE]
 *   e.g. "*-*-* 02:30", "Mon..Fri 22:00", "*:0/15", "*:*:0/20",
 *        "Sat,Sun 03:00 Europe/Berlin", "*-*~1 23:00" (last day of month)
 *
 * Times are evaluated in the local time zone ($TZ) unless the expression
 * names one. A wall-clock time that does not exist (skipped by a DST change)
 * is not a trigger; one that occurs twice triggers once (the first). */
/* The grammar, as systemd 252 reads it unless said otherwise:
 *
 *   shorthand [ZONE]  minutely hourly daily weekly monthly yearly annually
 *                     quarterly semiannually (also biannually, bi-annually,
 *                     semi-annually); any case
 *   WEEKDAYS          Mon..Sun or monday..sunday, any case; lists "Sat,Sun",
 *                     ranges "Mon..Fri" (not wrapping past Sunday)
 *   DATE              [YEAR-]MONTH-DAY or [YEAR-]MONTH~DAY; '~' counts days
 *                     from the end of the month, 1 = the last (1..28); a
 *                     step there counts down ("~7/2": 7, 5, 3, 1 from the end)
 *   TIME              HOUR:MINUTE[:SECOND]; whole seconds only
 *   ZONE              "UTC" or a zoneinfo name ("Europe/Berlin"), last
 *
 * Each number field is "*" or a list "a,b" of values, ranges "a..b" and
 * steps "a/n", "a..b/n", "*" + "/n" (cairn only: it starts at the smallest
 * value). Years are 1970..2199; 0..69 mean 2000..2069 and 70..99 1970..1999.
 * A missing date is *-*-*, a missing time 00:00:00, a missing second :00.
 * Unlike systemd, a search starting inside the second pass of a repeated
 * hour does not fire those wall times again. */
#pragma once

#include <glib.h>
#include <stdint.h>

typedef struct CairnCalendar CairnCalendar;

/* NULL and a message naming the bad part of 'text' on error
 * (CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE). */
CairnCalendar *cairn_calendar_parse(const char *text, GError **error);
void cairn_calendar_free(CairnCalendar *cal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnCalendar, cairn_calendar_free)

/* the normalized form, as `systemd-analyze calendar` prints it
 * ("*-*-* 02:30:00") */
char *cairn_calendar_to_string(const CairnCalendar *cal);

/* The first trigger time strictly after after_unix (unix seconds), or -1
 * when there is none (e.g. "2020-01-01" in 2026). */
int64_t cairn_calendar_next(const CairnCalendar *cal, int64_t after_unix);
