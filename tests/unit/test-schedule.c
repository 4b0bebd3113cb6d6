/* test-schedule.c - scheduler/schedule.h: when a job is due, with
 * systemd Persistent=true semantics (missed triggers collapse into one run,
 * a clock set back never repeats a consumed trigger). Times are UTC. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <time.h>

#include "scheduler/calendar.h"
#include "scheduler/schedule.h"

/* 2026-11-25 00:00:00 UTC */
#define DAY0 INT64_C(1795564800)
#define H(h) (DAY0 + (int64_t) (h) * 3600)

static GPtrArray *
cals(const char *first, ...)
{
    GPtrArray *a = g_ptr_array_new_with_free_func((GDestroyNotify) cairn_calendar_free);
    va_list ap;
    va_start(ap, first);
    for (const char *t = first; t; t = va_arg(ap, const char *)) {
        GError *err = NULL;
        CairnCalendar *c = cairn_calendar_parse(t, &err);
        if (!c)
            fail_msg("%s: %s", t, err->message);
        g_ptr_array_add(a, c);
    }
    va_end(ap);
    return a;
}

static int
setup_utc(void **state)
{
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static void
test_not_yet(void **state)
{
    g_autoptr(GPtrArray) c = cals("*-*-* 02:00:00", NULL);
    int64_t next;
    assert_int_equal(cairn_schedule_due(c, H(0), H(1), &next), -1);
    assert_int_equal(next, H(2));
}

static void
test_due_on_time(void **state)
{
    g_autoptr(GPtrArray) c = cals("*-*-* 02:00:00", NULL);
    int64_t next;
    assert_int_equal(cairn_schedule_due(c, H(0), H(2) + 1, &next), H(2));
    assert_int_equal(next, H(26));
    /* exactly at the trigger second counts */
    assert_int_equal(cairn_schedule_due(c, H(0), H(2), NULL), H(2));
    /* the anchor is the trigger itself: consumed */
    assert_int_equal(cairn_schedule_due(c, H(2), H(2), NULL), -1);
}

/* three triggers missed while down: due once; after the caller moves the
 * anchor to now, nothing until the next trigger */
static void
test_missed_collapse(void **state)
{
    g_autoptr(GPtrArray) c = cals("hourly", NULL);
    int64_t now = H(3) + 600, next;
    assert_int_equal(cairn_schedule_due(c, H(0) + 10, now, &next), H(1));
    assert_int_equal(next, H(4));
    assert_int_equal(cairn_schedule_due(c, now, now + 1, &next), -1);
    assert_int_equal(next, H(4));
}

/* the clock set back an hour after the 02:00 run: 02:00 does not run again */
static void
test_clock_back(void **state)
{
    g_autoptr(GPtrArray) c = cals("*-*-* 02:00:00", NULL);
    int64_t anchor = H(2) + 5; /* consumed at 02:00:05 */
    int64_t next;
    assert_int_equal(cairn_schedule_due(c, anchor, H(1) + 5, &next), -1);
    assert_int_equal(cairn_schedule_due(c, anchor, H(2) + 5, &next), -1);
    assert_int_equal(next, H(26));
    assert_int_equal(cairn_schedule_due(c, anchor, H(26), NULL), H(26));
}

/* the clock set forward across a trigger: it runs once, not zero times */
static void
test_clock_forward(void **state)
{
    g_autoptr(GPtrArray) c = cals("*-*-* 02:00:00", "*-*-* 03:00:00", NULL);
    assert_int_equal(cairn_schedule_due(c, H(1), H(5), NULL), H(2));
    int64_t next;
    assert_int_equal(cairn_schedule_due(c, H(5), H(5), &next), -1);
    assert_int_equal(next, H(26));
}

/* several calendars: the earliest trigger after the anchor */
static void
test_several(void **state)
{
    g_autoptr(GPtrArray) c = cals("*-*-* 22:00:00", "*-*-* 06:30:00", NULL);
    int64_t next;
    assert_int_equal(cairn_schedule_due(c, H(0), H(5), &next), -1);
    assert_int_equal(next, H(6) + 1800);
    assert_int_equal(cairn_schedule_next(c, H(7)), H(22));
}

static void
test_never(void **state)
{
    g_autoptr(GPtrArray) c = cals("2020-01-01 00:00:00", NULL);
    int64_t next = 0;
    assert_int_equal(cairn_schedule_due(c, H(0), H(100), &next), -1);
    assert_int_equal(next, -1);
    assert_int_equal(cairn_schedule_next(NULL, H(0)), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_not_yet, setup_utc),
        cmocka_unit_test_setup(test_due_on_time, setup_utc),
        cmocka_unit_test_setup(test_missed_collapse, setup_utc),
        cmocka_unit_test_setup(test_clock_back, setup_utc),
        cmocka_unit_test_setup(test_clock_forward, setup_utc),
        cmocka_unit_test_setup(test_several, setup_utc),
        cmocka_unit_test_setup(test_never, setup_utc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
