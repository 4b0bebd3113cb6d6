/* test-calendar.c - scheduler/calendar.h: calendar expressions.
 *
 * The normalized forms and trigger times below were taken from systemd 252
 * (`TZ=... systemd-analyze calendar --base-time=@AFTER --iterations=N EXPR`)
 * and are kept here as data. Where cairn differs from systemd on purpose
 * the test says so: a step after "*" is accepted (systemd wants a start
 * value, "0/20"), fractional seconds are refused, and a wall-clock time
 * shown twice by a DST change fires only at its first instant even when the
 * search starts in the second pass (systemd then fires again). Where
 * systemd 252 is wrong (a step carried into the next month) the expected
 * value was checked against the equivalent list. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "scheduler/calendar.h"

static void
set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static int
setup_utc(void **state)
{
    set_tz("UTC");
    return 0;
}

/* "2026-03-29T01:30:00Z" -> unix seconds */
static int64_t
utc(const char *iso)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(iso, NULL);
    if (!dt)
        fail_msg("bad time literal '%s' in the test", iso);
    return g_date_time_to_unix(dt);
}

static char *
fmt_utc(int64_t t)
{
    if (t < 0)
        return g_strdup("never");
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(t);
    return g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
}

static CairnCalendar *
parse_ok(const char *text)
{
    g_autoptr(GError) error = NULL;
    CairnCalendar *cal = cairn_calendar_parse(text, &error);
    if (!cal)
        fail_msg("cairn_calendar_parse('%s') failed: %s", text, error->message);
    assert_null(error);
    return cal;
}

/* ---- normalized forms */

static const struct {
    const char *text, *normalized;
} norm_cases[] = {
    /* shorthands */
    { "minutely", "*-*-* *:*:00" },
    { "hourly", "*-*-* *:00:00" },
    { "daily", "*-*-* 00:00:00" },
    { "weekly", "Mon *-*-* 00:00:00" },
    { "monthly", "*-*-01 00:00:00" },
    { "yearly", "*-01-01 00:00:00" },
    { "annually", "*-01-01 00:00:00" },
    { "quarterly", "*-01,04,07,10-01 00:00:00" },
    { "semiannually", "*-01,07-01 00:00:00" },
    { "biannually", "*-01,07-01 00:00:00" },
    { "bi-annually", "*-01,07-01 00:00:00" },
    { "semi-annually", "*-01,07-01 00:00:00" },
    { "Daily", "*-*-* 00:00:00" },
    { "hourly UTC", "*-*-* *:00:00 UTC" },
    { "daily Europe/Berlin", "*-*-* 00:00:00 Europe/Berlin" },
    /* the examples of calendar.h */
    { "*-*-* 02:30", "*-*-* 02:30:00" },
    { "Mon..Fri 22:00", "Mon..Fri *-*-* 22:00:00" },
    { "*:0/15", "*-*-* *:00/15:00" },
    { "*:*:0/20", "*-*-* *:*:00/20" },
    { "Sat,Sun 03:00 Europe/Berlin", "Sat,Sun *-*-* 03:00:00 Europe/Berlin" },
    { "*-*~1 23:00", "*-*~01 23:00:00" },
    /* date only, time only, weekday only: the rest defaults */
    { "2020-01-01", "2020-01-01 00:00:00" },
    { "*-02-29 00:00", "*-02-29 00:00:00" },
    { "03-04", "*-03-04 00:00:00" },
    { "1-1", "*-01-01 00:00:00" },
    { "*-1", "*-*-01 00:00:00" },
    { "*-*", "*-*-* 00:00:00" },
    { "*-*-1", "*-*-01 00:00:00" },
    { "12:00", "*-*-* 12:00:00" },
    { "*:*", "*-*-* *:*:00" },
    { "*-*-* *:*:*", "*-*-* *:*:*" },
    { "Mon", "Mon *-*-* 00:00:00" },
    { "Mon  12:00", "Mon *-*-* 12:00:00" },
    { "Mon,Tue 2026-*-*", "Mon,Tue 2026-*-* 00:00:00" },
    /* last days of the month */
    { "*-*~1", "*-*~01 00:00:00" },
    { "*~1", "*-*~01 00:00:00" },
    { "*-02~03", "*-02~03 00:00:00" },
    { "*-*~1..7", "*-*~01..07 00:00:00" },
    { "*-*~7/2", "*-*~07/2 00:00:00" },
    { "*-2~1..3,1..2", "*-02~01..02,01..03 00:00:00" },
    { "Fri *-*~1..7", "Fri *-*~01..07 00:00:00" },
    { "*-*~*", "*-*-* 00:00:00" },
    /* weekdays: any case, long names, sorted, runs of 3+ as ranges */
    { "Mon,Wed..Fri", "Mon,Wed..Fri *-*-* 00:00:00" },
    { "Mon,Tue", "Mon,Tue *-*-* 00:00:00" },
    { "Mon,Tue,Wed", "Mon..Wed *-*-* 00:00:00" },
    { "Tue,Mon", "Mon,Tue *-*-* 00:00:00" },
    { "Mon..Tue", "Mon,Tue *-*-* 00:00:00" },
    { "monday", "Mon *-*-* 00:00:00" },
    { "MON", "Mon *-*-* 00:00:00" },
    { "Monday..Friday", "Mon..Fri *-*-* 00:00:00" },
    { "Sun,Sat", "Sat,Sun *-*-* 00:00:00" },
    { "Mon,Mon", "Mon *-*-* 00:00:00" },
    { "Mon..Wed,Fri..Sun", "Mon..Wed,Fri..Sun *-*-* 00:00:00" },
    { "Mon..Wed,Tue..Thu", "Mon..Thu *-*-* 00:00:00" },
    { "Thu,Fri,Sat,Sun,Mon", "Mon,Thu..Sun *-*-* 00:00:00" },
    { "Mon..Sun", "*-*-* 00:00:00" },
    { "Mon,Tue,Wed,Thu,Fri,Sat,Sun", "*-*-* 00:00:00" },
    /* years: two digits, ranges, steps */
    { "26-01-01", "2026-01-01 00:00:00" },
    { "0026-01-01", "2026-01-01 00:00:00" },
    { "99-01-01", "1999-01-01 00:00:00" },
    { "70-01-01", "1970-01-01 00:00:00" },
    { "69-01-01", "2069-01-01 00:00:00" },
    { "26..28-*-*", "2026..2028-*-* 00:00:00" },
    { "1/1-*-*", "2001/1-*-* 00:00:00" },
    { "2024..2026-*-* 00:00", "2024..2026-*-* 00:00:00" },
    { "2026..2028/2-*-*", "2026..2028/2-*-* 00:00:00" },
    { "2199-12-31", "2199-12-31 00:00:00" },
    /* lists, ranges and steps: sorted, duplicates dropped, ranges end on a value */
    { "*-*-1/3", "*-*-01/3 00:00:00" },
    { "*-*-1..7/2", "*-*-01..07/2 00:00:00" },
    { "*-1,3..5-* 1:2:3", "*-01,03..05-* 01:02:03" },
    { "*-01..12/3-01", "*-01..10/3-01 00:00:00" },
    { "0/2:00", "*-*-* 00/2:00:00" },
    { "00/2:00", "*-*-* 00/2:00:00" },
    { "1..20/3:00", "*-*-* 01..19/3:00:00" },
    { "*:05..05", "*-*-* *:05:00" },
    { "*:5,5", "*-*-* *:05:00" },
    { "*:5,3,4", "*-*-* *:03,04,05:00" },
    { "*:3..5,4..8", "*-*-* *:03..05,04..08:00" },
    { "*:5..9,5", "*-*-* *:05,05..09:00" },
    { "*:5/10,5", "*-*-* *:05,05/10:00" },
    { "*:5..9/2,5/2", "*-*-* *:05/2,05..09/2:00" },
    { "*:7,5/10", "*-*-* *:05/10,07:00" },
    { "*:0..59/15", "*-*-* *:00..45/15:00" },
    { "*:30..40/30", "*-*-* *:30:00" },
    { "*:*:0..59/1", "*-*-* *:*:00..59" },
    { "*:*:1/1", "*-*-* *:*:01/1" },
    { "0/1:*", "*-*-* 00/1:*:00" },
    /* every second is "*" */
    { "*:*:0/1", "*-*-* *:*:*" },
    { "*:*:0/1,5..7", "*-*-* *:*:*" },
    { "*-*-* 00:00:00/1", "*-*-* 00:00:*" },
    /* time zones */
    { "Mon *-*-* 00:00:00 UTC", "Mon *-*-* 00:00:00 UTC" },
    { "10:00 utc", "*-*-* 10:00:00 UTC" },
    { "12:00 CET", "*-*-* 12:00:00 CET" },
    { "12:00 America/New_York", "*-*-* 12:00:00 America/New_York" },
    { "*-*-* 12:00 Etc/UTC", "*-*-* 12:00:00 Etc/UTC" },
    /* cairn only: "*" with a step starts at the smallest value (systemd
     * refuses these) */
    { "*/2:00", "*-*-* 00/2:00:00" },
    { "*:*/20", "*-*-* *:00/20:00" },
    { "*:*:*/10", "*-*-* *:*:00/10" },
    { "*-*-*/2", "*-*-01/2 00:00:00" },
    { "*-*/3-01", "*-01/3-01 00:00:00" },
    /* surrounding blanks and tabs are separators */
    { "  Mon\t12:00 ", "Mon *-*-* 12:00:00" },
};

static void
test_normalized(void **state)
{
    guint bad = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(norm_cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(CairnCalendar) cal = cairn_calendar_parse(norm_cases[i].text, &error);
        if (!cal) {
            print_message("'%s': %s\n", norm_cases[i].text, error->message);
            bad++;
            continue;
        }
        g_autofree char *s = cairn_calendar_to_string(cal);
        if (strcmp(s, norm_cases[i].normalized) != 0) {
            print_message("'%s': got '%s', want '%s'\n", norm_cases[i].text, s,
                          norm_cases[i].normalized);
            bad++;
            continue;
        }
        /* the normalized form parses to itself */
        g_autoptr(CairnCalendar) again = parse_ok(s);
        g_autofree char *s2 = cairn_calendar_to_string(again);
        if (strcmp(s2, s) != 0) {
            print_message("'%s' normalizes to '%s', which normalizes to '%s'\n",
                          norm_cases[i].text, s, s2);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* ---- bad expressions: the whole message, so it names the bad part */

static const struct {
    const char *text, *detail;
} bad_cases[] = {
    { "Mon..Fry 22:00", "unknown weekday \"Fry\"" },
    { "foo", "unknown weekday \"foo\"" },
    { "dayly", "unknown weekday \"dayly\" (did you mean \"daily\"?)" },
    { "Fri..Mon", "weekday range \"Fri..Mon\" goes backwards (weeks run Mon..Sun: write "
                  "\"Mon,Fri..Sun\")" },
    { "Sun..Sat", "weekday range \"Sun..Sat\" goes backwards (weeks run Mon..Sun; for every "
                  "day leave the weekdays out)" },
    { "Mon.. Fri", "weekday range \"Mon..\" is missing an end" },
    { "Mon...Fri", "unknown weekday \".Fri\"" },
    { "Mon..Fri..Sat", "weekday range \"Mon..Fri..Sat\" has more than two ends" },
    { "Mon/2", "weekdays \"Mon/2\" cannot have a step" },
    { "Mon, Tue", "weekdays \"Mon,\" have an empty list item" },
    { "Mon,,Tue", "weekdays \"Mon,,Tue\" have an empty list item" },
    { "12:00 Mon", "weekdays \"Mon\" must come first" },
    { "2026-01-01 Mon", "weekdays \"Mon\" must come first" },
    { "Mon..Fri Sat 12:00", "weekdays \"Sat\" must come first" },
    { "", "it is empty (e.g. \"daily\" or \"Mon..Fri 22:00\")" },
    { " \t ", "it is empty (e.g. \"daily\" or \"Mon..Fri 22:00\")" },
    { "12", "\"12\" is neither a date (YEAR-MONTH-DAY) nor a time (HOUR:MINUTE[:SECOND])" },
    { "2030", "\"2030\" is neither a date (YEAR-MONTH-DAY) nor a time (HOUR:MINUTE[:SECOND])" },
    { "*", "\"*\" is neither a date (YEAR-MONTH-DAY) nor a time (HOUR:MINUTE[:SECOND])" },
    { "12:", "the minute is missing in \"12:\"" },
    { ":12", "the hour is missing in \":12\"" },
    { "12::00", "the minute is missing in \"12::00\"" },
    { "12:00:00:00", "time \"12:00:00:00\": expected HOUR:MINUTE or HOUR:MINUTE:SECOND" },
    { "12:00:00.5", "time \"12:00:00.5\": fractional seconds are not supported" },
    { "2026-01-01T12:00", "\"2026-01-01T12:00\": separate the date and the time with a space" },
    { "2026-01", "date \"2026-01\": expected YEAR-MONTH-DAY or MONTH-DAY (the day is missing)" },
    { "2026-01-01-01", "date \"2026-01-01-01\": expected YEAR-MONTH-DAY or MONTH-DAY" },
    { "2026--01", "the month is missing in \"2026--01\"" },
    { "*-*-01~1", "date \"*-*-01~1\": expected YEAR-MONTH~DAY or MONTH~DAY" },
    { "~1", "date \"~1\": expected YEAR-MONTH~DAY or MONTH~DAY" },
    { "*-*~", "the day is missing in \"*-*~\"" },
    { "-1-1", "the year is missing in \"-1-1\"" },
    { "*-13-01", "month \"13\" is out of range (1..12)" },
    { "*-00-01", "month \"00\" is out of range (1..12)" },
    { "*-*-0", "day \"0\" is out of range (1..31)" },
    { "*-*-32", "day \"32\" is out of range (1..31)" },
    { "1969-01-01", "year \"1969\" is out of range (1970..2199)" },
    { "100-01-01", "year \"100\" is out of range (1970..2199)" },
    { "2200-01-01", "year \"2200\" is out of range (1970..2199)" },
    { "9999999999-01-01", "year \"9999999999\" is out of range (1970..2199)" },
    { "69..71-*-*", "year range \"69..71\" goes backwards" },
    { "2026..2024-*-*", "year range \"2026..2024\" goes backwards" },
    { "*-*~0", "day from the end of the month \"0\" is out of range (1..28)" },
    { "*-*~29", "day from the end of the month \"29\" is out of range (1..28)" },
    { "*-02~30", "day from the end of the month \"30\" is out of range (1..28)" },
    { "*-*~03..01", "day from the end of the month range \"03..01\" goes backwards" },
    { "*-*~1/2", "day from the end of the month \"1/2\" repeats below 1, so it fires only at 1: "
                 "write \"1\" or a smaller step" },
    { "25:00", "hour \"25\" is out of range (0..23)" },
    { "24:00", "hour \"24\" is out of range (0..23)" },
    { "23:60", "minute \"60\" is out of range (0..59)" },
    { "23:59:60", "second \"60\" is out of range (0..59)" },
    { "*:99999999999999999", "minute \"99999999999999999\" is out of range (0..59)" },
    { "*:1..0", "minute range \"1..0\" goes backwards" },
    { "1..:00", "hour range \"1..\" is missing an end" },
    { "*..5:00", "hour range \"*..5\": \"*\" cannot end a range" },
    { "*:0/0", "minute \"0/0\": the step must be at least 1" },
    { "*/0:00", "hour \"*/0\": the step must be at least 1" },
    { "*:05/+1", "minute \"05/+1\": the step \"+1\" is not a number" },
    { "*:5/60", "minute \"5/60\" repeats past 59, so it fires only at 5: write \"5\" or a smaller "
                "step" },
    { "*:45/15", "minute \"45/15\" repeats past 59, so it fires only at 45: write \"45\" or a "
                 "smaller step" },
    { "23/1:00", "hour \"23/1\" repeats past 23, so it fires only at 23: write \"23\" or a "
                 "smaller step" },
    { "0x10:00", "hour \"0x10\": \"0x10\" is not a number" },
    { "+5:00", "hour \"+5\": \"+5\" is not a number" },
    { "*:-1", "minute \"-1\": \"-1\" is not a number" },
    { "*:*,5", "minute \"*\": \"*\" cannot be part of a list" },
    { "*:1,,2", "minute \"1,,2\" has an empty list item" },
    { "*-*-1..2..3", "day \"1..2..3\": \"2..3\" is not a number" },
    { "12:00 Foo/Bar", "unknown time zone \"Foo/Bar\" (a zoneinfo name such as \"UTC\" or "
                       "\"Europe/Berlin\")" },
    { "12:00 Europe/berlin", "unknown time zone \"Europe/berlin\" (a zoneinfo name such as "
                             "\"UTC\" or \"Europe/Berlin\")" },
    /* GLib would read these as a POSIX rule and a file path */
    { "12:00 UTC+1", "unknown time zone \"UTC+1\" (a zoneinfo name such as \"UTC\" or "
                     "\"Europe/Berlin\")" },
    { "12:00 /etc/localtime", "\"/etc/localtime\" is neither a date (YEAR-MONTH-DAY) nor a time "
                              "(HOUR:MINUTE[:SECOND])" },
    { "12:00 UTC UTC", "unexpected \"UTC\" (a time zone must come last)" },
    { "Europe/Berlin", "a time zone alone is no schedule: add a time, e.g. \"00:00 "
                       "Europe/Berlin\"" },
    { "Europe/Berlin 12:00", "the time zone \"Europe/Berlin\" must come last" },
    { "hourly 12:00", "\"hourly\" cannot be combined with \"12:00\" (only a time zone may "
                      "follow)" },
    { "Mon hourly", "\"hourly\" cannot be combined with other parts" },
    { "12:00 13:00", "two times \"12:00\" and \"13:00\"" },
    { "2026-01-01 2026-02-01", "two dates \"2026-01-01\" and \"2026-02-01\"" },
    { "12:00 2026-01-01", "the date \"2026-01-01\" must come before the time" },
};

static void
test_bad_expressions(void **state)
{
    guint bad = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(CairnCalendar) cal = cairn_calendar_parse(bad_cases[i].text, &error);
        g_autofree char *want = g_strdup_printf("invalid calendar expression \"%s\": %s",
                                                bad_cases[i].text, bad_cases[i].detail);
        if (cal) {
            g_autofree char *s = cairn_calendar_to_string(cal);
            print_message("'%s' was accepted as '%s'\n", bad_cases[i].text, s);
            bad++;
        } else if (!g_error_matches(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE) ||
                   strcmp(error->message, want) != 0) {
            print_message("'%s':\n  got  %s\n  want %s\n", bad_cases[i].text, error->message,
                          want);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* ---- trigger times */

typedef struct {
    const char *tz;       /* $TZ while evaluating */
    const char *text;
    const char *after;    /* the first next() is strictly after this (UTC) */
    gboolean ends;        /* after the listed triggers there are none */
    const char *want[6];  /* the following triggers (UTC) */
} NextCase;

static guint
check_next(const NextCase *cases, size_t n)
{
    guint bad = 0;
    for (size_t i = 0; i < n; i++) {
        const NextCase *k = &cases[i];
        set_tz(k->tz);
        g_autoptr(CairnCalendar) cal = parse_ok(k->text);
        int64_t t = utc(k->after);
        gboolean ok = TRUE;
        for (size_t j = 0; ok && j < G_N_ELEMENTS(k->want) && k->want[j]; j++) {
            int64_t got = cairn_calendar_next(cal, t);
            if (got != utc(k->want[j])) {
                g_autofree char *g = fmt_utc(got), *a = fmt_utc(t);
                print_message("TZ=%s '%s' after %s: got %s, want %s\n", k->tz, k->text, a, g,
                              k->want[j]);
                ok = FALSE;
            }
            t = got;
        }
        if (ok && k->ends) {
            int64_t got = cairn_calendar_next(cal, t);
            if (got != -1) {
                g_autofree char *g = fmt_utc(got), *a = fmt_utc(t);
                print_message("TZ=%s '%s' after %s: got %s, want never\n", k->tz, k->text, a,
                              g);
                ok = FALSE;
            }
        }
        bad += !ok;
    }
    set_tz("UTC");
    return bad;
}

#define CHECK_NEXT(cases) assert_int_equal(check_next(cases, G_N_ELEMENTS(cases)), 0)

static void
test_syntax_forms(void **state)
{
    static const NextCase cases[] = {
        { "UTC", "minutely", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z", "2026-01-01T00:03:00Z" } },
        { "UTC", "hourly", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z", "2026-01-01T03:00:00Z" } },
        { "UTC", "daily", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z" } },
        { "UTC", "weekly", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z" } },
        { "UTC", "monthly", "2026-01-01T00:00:00Z", FALSE,
          { "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z" } },
        { "UTC", "yearly", "2026-01-01T00:00:00Z", FALSE,
          { "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z" } },
        { "UTC", "quarterly", "2026-01-01T00:00:00Z", FALSE,
          { "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z", "2026-10-01T00:00:00Z" } },
        { "UTC", "semiannually", "2026-01-01T00:00:00Z", FALSE,
          { "2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z" } },
        { "UTC", "*:0/15", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z",
            "2026-01-01T01:00:00Z" } },
        { "UTC", "*-*-* 02:30", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T02:30:00Z", "2026-01-02T02:30:00Z", "2026-01-03T02:30:00Z" } },
        { "UTC", "12:00", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T12:00:00Z", "2026-01-02T12:00:00Z", "2026-01-03T12:00:00Z" } },
        { "UTC", "03-04", "2026-01-01T00:00:00Z", FALSE,
          { "2026-03-04T00:00:00Z", "2027-03-04T00:00:00Z", "2028-03-04T00:00:00Z" } },
        { "UTC", "Mon", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z" } },
        { "UTC", "*-*-1/3", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-04T00:00:00Z", "2026-01-07T00:00:00Z", "2026-01-10T00:00:00Z",
            "2026-01-13T00:00:00Z" } },
        { "UTC", "*-*-1..7/2", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-03T00:00:00Z", "2026-01-05T00:00:00Z", "2026-01-07T00:00:00Z",
            "2026-02-01T00:00:00Z" } },
        { "UTC", "*-1,3..5-* 1:2:3", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T01:02:03Z", "2026-01-02T01:02:03Z", "2026-01-03T01:02:03Z",
            "2026-01-04T01:02:03Z" } },
        { "UTC", "1..20/3:00", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T01:00:00Z", "2026-01-01T04:00:00Z", "2026-01-01T07:00:00Z",
            "2026-01-01T10:00:00Z" } },
        { "UTC", "*-*-* 0/10:00/30:5..6", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T00:00:05Z", "2026-01-01T00:00:06Z", "2026-01-01T00:30:05Z",
            "2026-01-01T00:30:06Z" } },
        { "UTC", "*:5,3,4", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T00:03:00Z", "2026-01-01T00:04:00Z", "2026-01-01T00:05:00Z",
            "2026-01-01T01:03:00Z" } },
        { "UTC", "*-1/3-01", "2026-01-01T00:00:00Z", FALSE,
          { "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z", "2026-10-01T00:00:00Z" } },
        { "UTC", "2026..2028/2-12-31", "2026-01-01T00:00:00Z", TRUE,
          { "2026-12-31T00:00:00Z", "2028-12-31T00:00:00Z" } },
        /* a zone named in the expression beats $TZ */
        { "UTC", "12:00 UTC", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T12:00:00Z", "2026-01-02T12:00:00Z", "2026-01-03T12:00:00Z" } },
        { "Europe/Berlin", "12:00 UTC", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T12:00:00Z", "2026-01-02T12:00:00Z", "2026-01-03T12:00:00Z" } },
        { "UTC", "12:00 America/New_York", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T17:00:00Z", "2026-01-02T17:00:00Z", "2026-01-03T17:00:00Z" } },
        { "UTC", "Mon..Fri 00:00:00 CET", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T23:00:00Z", "2026-01-04T23:00:00Z", "2026-01-05T23:00:00Z" } },
        /* systemd 252 skips 2030-01-01 here (the step is carried into the
         * next month wrongly); "*-*-01,08,15,22,29" gives 2030-01-01 there too */
        { "UTC", "*-*-01/7", "2029-12-31T12:00:00Z", FALSE,
          { "2030-01-01T00:00:00Z", "2030-01-08T00:00:00Z", "2030-01-15T00:00:00Z",
            "2030-01-22T00:00:00Z", "2030-01-29T00:00:00Z", "2030-02-01T00:00:00Z" } },
        /* cairn only: a step after "*" */
        { "UTC", "*:*/20", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T00:20:00Z", "2026-01-01T00:40:00Z", "2026-01-01T01:00:00Z" } },
        { "UTC", "*-*-*/10 06:00", "2026-01-01T12:00:00Z", FALSE,
          { "2026-01-11T06:00:00Z", "2026-01-21T06:00:00Z", "2026-01-31T06:00:00Z",
            "2026-02-01T06:00:00Z" } },
    };
    CHECK_NEXT(cases);
}

static void
test_every_20_seconds(void **state)
{
    static const NextCase cases[] = {
        { "UTC", "*:*:0/20", "2026-01-01T00:59:30Z", FALSE,
          { "2026-01-01T00:59:40Z", "2026-01-01T01:00:00Z", "2026-01-01T01:00:20Z",
            "2026-01-01T01:00:40Z" } },
        /* across a year end */
        { "UTC", "*:*:0/20", "2026-12-31T23:59:39Z", FALSE,
          { "2026-12-31T23:59:40Z", "2027-01-01T00:00:00Z", "2027-01-01T00:00:20Z" } },
        /* from an exact trigger: strictly after it */
        { "UTC", "*:*:0/20", "2026-06-01T12:00:20Z", FALSE,
          { "2026-06-01T12:00:40Z", "2026-06-01T12:01:00Z" } },
    };
    CHECK_NEXT(cases);
}

static void
test_weekday_ranges(void **state)
{
    static const NextCase cases[] = {
        /* 2026-01-01 is a Thursday */
        { "UTC", "Mon..Fri 22:00", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-01T22:00:00Z", "2026-01-02T22:00:00Z", "2026-01-05T22:00:00Z",
            "2026-01-06T22:00:00Z" } },
        { "UTC", "Mon,Wed..Fri", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-02T00:00:00Z", "2026-01-05T00:00:00Z", "2026-01-07T00:00:00Z",
            "2026-01-08T00:00:00Z" } },
        { "UTC", "Sat,Sun 03:00", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-03T03:00:00Z", "2026-01-04T03:00:00Z", "2026-01-10T03:00:00Z",
            "2026-01-11T03:00:00Z" } },
        { "UTC", "Mon,Fri", "2026-12-28T00:00:00Z", FALSE,
          { "2027-01-01T00:00:00Z", "2027-01-04T00:00:00Z", "2027-01-08T00:00:00Z",
            "2027-01-11T00:00:00Z" } },
        { "UTC", "Thu,Fri,Sat,Sun,Mon 12:00", "2026-01-05T12:00:00Z", FALSE,
          { "2026-01-08T12:00:00Z", "2026-01-09T12:00:00Z", "2026-01-10T12:00:00Z",
            "2026-01-11T12:00:00Z", "2026-01-12T12:00:00Z", "2026-01-15T12:00:00Z" } },
        /* a weekday in the time zone of the expression, not in UTC: Monday
         * 00:00 in Berlin is Sunday 23:00 UTC */
        { "UTC", "Mon Europe/Berlin", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-04T23:00:00Z", "2026-01-11T23:00:00Z", "2026-01-18T23:00:00Z" } },
    };
    CHECK_NEXT(cases);
}

static void
test_month_ends(void **state)
{
    static const NextCase cases[] = {
        /* the 31st skips the months without one */
        { "UTC", "*-*-31", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z",
            "2026-07-31T00:00:00Z" } },
        { "UTC", "*-*-30,31 12:00", "2026-01-30T12:00:00Z", FALSE,
          { "2026-01-31T12:00:00Z", "2026-03-30T12:00:00Z", "2026-03-31T12:00:00Z",
            "2026-04-30T12:00:00Z" } },
        /* Feb 29 only in leap years */
        { "UTC", "*-02-29 00:00", "2027-01-01T00:00:00Z", FALSE,
          { "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z" } },
        { "UTC", "*-02-29 00:00", "2028-02-28T23:59:59Z", FALSE,
          { "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z" } },
        /* 2100 is no leap year */
        { "UTC", "*-02-29 00:00", "2096-03-01T00:00:00Z", FALSE,
          { "2104-02-29T00:00:00Z" } },
        /* the last day: 31, 28, 31, 30; 29 in a leap year */
        { "UTC", "*-*~1", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z",
            "2026-04-30T00:00:00Z" } },
        { "UTC", "*-*~1 23:00", "2027-12-31T00:00:00Z", FALSE,
          { "2027-12-31T23:00:00Z", "2028-01-31T23:00:00Z", "2028-02-29T23:00:00Z",
            "2028-03-31T23:00:00Z" } },
        /* the third day from the end of February */
        { "UTC", "*-02~03", "2026-01-01T00:00:00Z", FALSE,
          { "2026-02-26T00:00:00Z", "2027-02-26T00:00:00Z", "2028-02-27T00:00:00Z" } },
        { "UTC", "*-02~01,02", "2028-02-01T00:00:00Z", FALSE,
          { "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z", "2029-02-27T00:00:00Z" } },
        /* the last Friday of the month */
        { "UTC", "Fri *-*~1..7", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-30T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-27T00:00:00Z",
            "2026-04-24T00:00:00Z" } },
        /* from the end, a step counts down: 7, 5, 3, 1 days from the end */
        { "UTC", "*-*~7/2", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-25T00:00:00Z", "2026-01-27T00:00:00Z", "2026-01-29T00:00:00Z",
            "2026-01-31T00:00:00Z", "2026-02-22T00:00:00Z" } },
        { "UTC", "*-*~1..7/2", "2026-01-01T00:00:00Z", FALSE,
          { "2026-01-25T00:00:00Z", "2026-01-27T00:00:00Z", "2026-01-29T00:00:00Z",
            "2026-01-31T00:00:00Z" } },
        /* the last day of the month in Berlin, across the spring change */
        { "Europe/Berlin", "*-*~1 23:30", "2026-02-01T00:00:00Z", FALSE,
          { "2026-02-28T22:30:00Z", "2026-03-31T21:30:00Z", "2026-04-30T21:30:00Z" } },
    };
    CHECK_NEXT(cases);
}

static void
test_year_ends(void **state)
{
    static const NextCase cases[] = {
        { "UTC", "*-*-* *:*:*", "2026-12-31T23:59:58Z", FALSE,
          { "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z", "2027-01-01T00:00:01Z" } },
        { "UTC", "hourly", "2026-12-31T23:00:00Z", FALSE,
          { "2027-01-01T00:00:00Z", "2027-01-01T01:00:00Z", "2027-01-01T02:00:00Z" } },
        { "UTC", "*-12-31 23:59:59", "2026-12-30T00:00:00Z", FALSE,
          { "2026-12-31T23:59:59Z", "2027-12-31T23:59:59Z", "2028-12-31T23:59:59Z" } },
        { "UTC", "*-01-01 00:00:00", "2026-12-31T23:59:59Z", FALSE,
          { "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z" } },
        { "UTC", "2026..2027-12-31 23:59:59", "2026-12-31T23:59:59Z", TRUE,
          { "2027-12-31T23:59:59Z" } },
        /* local New Year in New York is 05:00 UTC */
        { "America/New_York", "yearly", "2026-06-01T00:00:00Z", FALSE,
          { "2027-01-01T05:00:00Z", "2028-01-01T05:00:00Z" } },
        /* a year alone: the search jumps there */
        { "UTC", "2150-*-*", "2026-01-01T00:00:00Z", FALSE,
          { "2150-01-01T00:00:00Z", "2150-01-02T00:00:00Z" } },
        { "UTC", "2199-12-31 23:59:59", "2026-01-01T00:00:00Z", TRUE,
          { "2199-12-31T23:59:59Z" } },
    };
    CHECK_NEXT(cases);
}

static void
test_never(void **state)
{
    static const NextCase cases[] = {
        { "UTC", "2020-01-01", "2026-01-01T00:00:00Z", TRUE, { NULL } },
        { "UTC", "*-02-30", "2026-01-01T00:00:00Z", TRUE, { NULL } },
        { "UTC", "*-04-31 12:00", "2026-01-01T00:00:00Z", TRUE, { NULL } },
        { "UTC", "Mon 2026-01-01", "2026-01-01T00:00:00Z", TRUE, { NULL } },
        { "UTC", "Sat 2028-02-29", "2026-01-01T00:00:00Z", TRUE, { NULL } },
        { "UTC", "2027-02-29", "2026-01-01T00:00:00Z", TRUE, { NULL } },
        /* strictly after */
        { "UTC", "2026-01-01 00:00:00", "2026-01-01T00:00:00Z", TRUE, { NULL } },
        { "UTC", "daily", "2199-12-31T00:00:00Z", TRUE, { NULL } },
        /* 02:30 on the spring-forward day does not exist in Berlin */
        { "UTC", "2026-03-29 02:30 Europe/Berlin", "2026-01-01T00:00:00Z", TRUE, { NULL } },
    };
    CHECK_NEXT(cases);

    g_autoptr(CairnCalendar) cal = parse_ok("daily");
    assert_int_equal(cairn_calendar_next(cal, G_MAXINT64), -1);
    assert_int_equal(cairn_calendar_next(cal, G_MAXINT64 - 1), -1);
    /* from long before 1970: the first trigger is 1970-01-01 00:00:00 */
    assert_int_equal(cairn_calendar_next(cal, G_MININT64), 0);
}

/* ---- DST: Europe/Berlin changes 2026-03-29 01:00Z (02:00 CET -> 03:00
 * CEST) and 2026-10-25 01:00Z (03:00 CEST -> 02:00 CET); America/New_York
 * 2026-03-08 07:00Z (02:00 EST -> 03:00 EDT) and 2026-11-01 06:00Z (02:00
 * EDT -> 01:00 EST). A skipped wall time is no trigger; one shown twice
 * fires at its first instant only. */

static const NextCase berlin_cases[] = {
    /* spring: 02:30 does not exist on 03-29 */
    { "", "*-*-* 02:30", "2026-03-28T12:00:00Z", FALSE,
      { "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z", "2026-04-01T00:30:00Z" } },
    /* 01:30 CET, (02:30 skipped), 03:30 CEST, ... */
    { "", "*:30", "2026-03-28T23:50:00Z", FALSE,
      { "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z",
        "2026-03-29T03:30:00Z" } },
    /* 01:45 CET, 03:00 CEST, 03:15, 03:30 */
    { "", "*:0/15", "2026-03-29T00:40:00Z", FALSE,
      { "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z",
        "2026-03-29T01:30:00Z" } },
    /* 01:59:20 CET, 01:59:40 CET, 03:00:00 CEST, 03:00:20 CEST */
    { "", "*:*:0/20", "2026-03-29T00:59:00Z", FALSE,
      { "2026-03-29T00:59:20Z", "2026-03-29T00:59:40Z", "2026-03-29T01:00:00Z",
        "2026-03-29T01:00:20Z" } },
    /* a 23-hour day */
    { "", "daily", "2026-03-28T00:00:00Z", FALSE,
      { "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z" } },
    { "", "*-*-* 02:00:00", "2026-03-28T00:00:00Z", FALSE,
      { "2026-03-28T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-31T00:00:00Z" } },
    { "", "*-*-* 03:00:00", "2026-03-28T00:00:00Z", FALSE,
      { "2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z" } },
    /* autumn: 02:30 happens twice on 10-25, fires at 02:30 CEST */
    { "", "*-*-* 02:30", "2026-10-24T12:00:00Z", FALSE,
      { "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z" } },
    /* 02:30 CEST, (02:30 CET again: no), 03:30 CET */
    { "", "*:30", "2026-10-24T23:50:00Z", FALSE,
      { "2026-10-25T00:30:00Z", "2026-10-25T02:30:00Z", "2026-10-25T03:30:00Z",
        "2026-10-25T04:30:00Z" } },
    { "", "*:0/15", "2026-10-25T00:40:00Z", FALSE,
      { "2026-10-25T00:45:00Z", "2026-10-25T02:00:00Z", "2026-10-25T02:15:00Z",
        "2026-10-25T02:30:00Z" } },
    { "", "*:*:0/20", "2026-10-25T00:59:00Z", FALSE,
      { "2026-10-25T00:59:20Z", "2026-10-25T00:59:40Z", "2026-10-25T02:00:00Z",
        "2026-10-25T02:00:20Z" } },
    /* a 25-hour day */
    { "", "daily", "2026-10-24T00:00:00Z", FALSE,
      { "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", "2026-10-26T23:00:00Z" } },
    { "", "hourly", "2026-10-25T00:30:00Z", FALSE,
      { "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z", "2026-10-25T04:00:00Z" } },
    { "", "Sun *-*-* 02:00:00", "2026-10-24T00:00:00Z", FALSE,
      { "2026-10-25T00:00:00Z", "2026-11-01T01:00:00Z", "2026-11-08T01:00:00Z" } },
    /* cairn only: from inside the second pass (02:00 CET = 01:00Z) the
     * repeated wall times have fired already (systemd fires 02:30 CET) */
    { "", "*:30", "2026-10-25T01:00:00Z", FALSE,
      { "2026-10-25T02:30:00Z", "2026-10-25T03:30:00Z" } },
    { "", "*:*:0/20", "2026-10-25T01:59:50Z", FALSE,
      { "2026-10-25T02:00:00Z", "2026-10-25T02:00:20Z" } },
    { "", "*-*-* 02:30", "2026-10-25T00:30:00Z", FALSE,
      { "2026-10-26T01:30:00Z" } },
};

static const NextCase new_york_cases[] = {
    { "", "*-*-* 02:30", "2026-03-07T12:00:00Z", FALSE,
      { "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z", "2026-03-11T06:30:00Z" } },
    /* 01:30 EST, (02:30 skipped), 03:30 EDT */
    { "", "*:30", "2026-03-08T06:20:00Z", FALSE,
      { "2026-03-08T06:30:00Z", "2026-03-08T07:30:00Z", "2026-03-08T08:30:00Z" } },
    { "", "*:*:0/20", "2026-03-08T06:59:00Z", FALSE,
      { "2026-03-08T06:59:20Z", "2026-03-08T06:59:40Z", "2026-03-08T07:00:00Z",
        "2026-03-08T07:00:20Z" } },
    /* 01:30 happens twice on 11-01: at 01:30 EDT only */
    { "", "*-*-* 01:30", "2026-10-31T12:00:00Z", FALSE,
      { "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "2026-11-03T06:30:00Z" } },
    { "", "*:30", "2026-11-01T04:50:00Z", FALSE,
      { "2026-11-01T05:30:00Z", "2026-11-01T07:30:00Z", "2026-11-01T08:30:00Z",
        "2026-11-01T09:30:00Z" } },
    { "", "*:0/15", "2026-11-01T05:40:00Z", FALSE,
      { "2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z", "2026-11-01T07:15:00Z",
        "2026-11-01T07:30:00Z" } },
    { "", "daily", "2026-10-31T00:00:00Z", FALSE,
      { "2026-10-31T04:00:00Z", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z" } },
    { "", "hourly", "2026-11-01T04:00:00Z", FALSE,
      { "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z" } },
    /* cairn only: from 01:00 EST (second pass) */
    { "", "*:30", "2026-11-01T06:00:00Z", FALSE,
      { "2026-11-01T07:30:00Z" } },
};

/* Run a table in one zone: via $TZ, and via a trailing zone name with
 * $TZ set to something else. */
static guint
check_zone(const NextCase *cases, size_t n, const char *zone)
{
    g_autofree NextCase *via_env = g_new(NextCase, n);
    g_autofree NextCase *via_name = g_new(NextCase, n);
    g_autoptr(GPtrArray) texts = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < n; i++) {
        via_env[i] = via_name[i] = cases[i];
        via_env[i].tz = zone;
        char *text = g_strdup_printf("%s %s", cases[i].text, zone);
        g_ptr_array_add(texts, text);
        via_name[i].text = text;
        via_name[i].tz = strcmp(zone, "Asia/Tokyo") ? "Asia/Tokyo" : "UTC";
    }
    return check_next(via_env, n) + check_next(via_name, n);
}

static void
test_dst_berlin(void **state)
{
    assert_int_equal(check_zone(berlin_cases, G_N_ELEMENTS(berlin_cases), "Europe/Berlin"), 0);
}

static void
test_dst_new_york(void **state)
{
    assert_int_equal(
        check_zone(new_york_cases, G_N_ELEMENTS(new_york_cases), "America/New_York"), 0);
}

static void
test_local_zone_follows_tz(void **state)
{
    /* without a zone in the expression, $TZ counts at each next() */
    g_autoptr(CairnCalendar) cal = parse_ok("*-*-* 02:30");
    int64_t after = utc("2026-07-01T00:00:00Z");
    set_tz("UTC");
    assert_int_equal(cairn_calendar_next(cal, after), utc("2026-07-01T02:30:00Z"));
    set_tz("Europe/Berlin");
    assert_int_equal(cairn_calendar_next(cal, after), utc("2026-07-01T00:30:00Z"));
    set_tz("America/New_York");
    assert_int_equal(cairn_calendar_next(cal, after), utc("2026-07-01T06:30:00Z"));
    set_tz("UTC");
}

/* ---- speed: the search goes field by field, not second by second */

static void
test_fast(void **state)
{
    static const char *const texts[] = { "*-02-29 00:00", "2150-*-*", "2199-12-31 23:59:59",
                                         "Sat 2028-02-29", "*-*~1 23:59:59",
                                         "Fri *-02-29 12:00", "*-02-30" };
    g_autoptr(GTimer) timer = g_timer_new();
    guint calls = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
        g_autoptr(CairnCalendar) cal = parse_ok(texts[i]);
        for (int k = 0; k < 200; k++, calls++)
            (void) cairn_calendar_next(cal, utc("2029-03-01T00:00:00Z") + k * 3601);
    }
    /* Fri Feb 29 is 2036-02-29 */
    g_autoptr(CairnCalendar) fri = parse_ok("Fri *-02-29 12:00");
    assert_int_equal(cairn_calendar_next(fri, utc("2029-03-01T00:00:00Z")),
                     utc("2036-02-29T12:00:00Z"));
    double per_call = g_timer_elapsed(timer, NULL) / calls;
    print_message("%.1f microseconds per next()\n", per_call * 1e6);
    /* a second-by-second loop would take seconds per call; even under
     * sanitizers a field-by-field search stays far below a millisecond */
    assert_true(per_call < 1e-3);
}

/* ---- the object */

static void
test_free_null(void **state)
{
    cairn_calendar_free(NULL);
    g_autoptr(CairnCalendar) cal = NULL;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_normalized, setup_utc),
        cmocka_unit_test_setup(test_bad_expressions, setup_utc),
        cmocka_unit_test_setup(test_syntax_forms, setup_utc),
        cmocka_unit_test_setup(test_every_20_seconds, setup_utc),
        cmocka_unit_test_setup(test_weekday_ranges, setup_utc),
        cmocka_unit_test_setup(test_month_ends, setup_utc),
        cmocka_unit_test_setup(test_year_ends, setup_utc),
        cmocka_unit_test_setup(test_never, setup_utc),
        cmocka_unit_test_setup(test_dst_berlin, setup_utc),
        cmocka_unit_test_setup(test_dst_new_york, setup_utc),
        cmocka_unit_test_setup(test_local_zone_follows_tz, setup_utc),
        cmocka_unit_test_setup(test_fast, setup_utc),
        cmocka_unit_test_setup(test_free_null, setup_utc),
    };
    return cmocka_run_group_tests_name("calendar", tests, NULL, NULL);
}
