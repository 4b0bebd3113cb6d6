/* test-prune.c - repo/prune.h: which snapshots a keep policy keeps.
 *
 * restic semantics: keep-last N keeps the N newest; keep-hourly/daily/weekly/
 * monthly/yearly N keeps the newest snapshot of each of the N most recent
 * periods (local time, ISO weeks) that have a snapshot.
 *
 * Local time is what makes it hard: a day can be 23 or 25 hours long, a
 * local month or year can end at any UTC hour, and where the clocks go back
 * across midnight a day (or month) comes back after the next one began. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo/prune.h"

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

static int
setup_berlin(void **state)
{
    set_tz("Europe/Berlin");
    return 0;
}

static int
setup_new_york(void **state)
{
    set_tz("America/New_York");
    return 0;
}

static int
setup_sydney(void **state)
{
    set_tz("Australia/Sydney");
    return 0;
}

static int
setup_goose_bay(void **state)
{
    set_tz("America/Goose_Bay");
    return 0;
}

static int
teardown_tz(void **state)
{
    set_tz("UTC");
    return 0;
}

static int64_t
utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = mi, .tm_sec = s };
    return (int64_t) timegm(&tm);
}

/* Run the selection and compare every reason (NULL = removed) with want[]. */
static void
check(const int64_t *times, size_t n, CairnKeepPolicy policy, const char *const *want)
{
    char **got = cairn_prune_select(times, n, &policy);
    assert_non_null(got);
    guint bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (g_strcmp0(got[i], want[i]) != 0) {
            g_autofree char *t = g_strdup_printf("%" G_GINT64_FORMAT, times[i]);
            print_message("snapshot %zu (t=%s): got %s%s%s, want %s%s%s\n", i, t,
                          got[i] ? "'" : "", got[i] ? got[i] : "remove", got[i] ? "'" : "",
                          want[i] ? "'" : "", want[i] ? want[i] : "remove", want[i] ? "'" : "");
            bad++;
        }
    }
    gboolean terminated = got[n] == NULL;
    for (size_t i = 0; i < n; i++)
        g_free(got[i]);
    g_free(got);
    assert_true(terminated);
    assert_int_equal(bad, 0);
}

#define CHECK(times, policy, ...)                                                       \
    do {                                                                                \
        const char *const want_[] = { __VA_ARGS__ };                                    \
        G_STATIC_ASSERT(G_N_ELEMENTS(want_) == G_N_ELEMENTS(times));                     \
        check(times, G_N_ELEMENTS(times), policy, want_);                              \
    } while (0)

#define P(...) ((CairnKeepPolicy) { __VA_ARGS__ })

/* ---- policy */

static void
test_policy_is_empty(void **state)
{
    CairnKeepPolicy p = { 0 };
    assert_true(cairn_keep_policy_is_empty(&p));
    p = (CairnKeepPolicy) { -1, -1, -1, -1, -1, -1 };
    assert_true(cairn_keep_policy_is_empty(&p));
    for (int f = 0; f < 6; f++) {
        int v[6] = { 0 };
        v[f] = 1;
        p = (CairnKeepPolicy) { v[0], v[1], v[2], v[3], v[4], v[5] };
        if (cairn_keep_policy_is_empty(&p))
            fail_msg("policy with field %d = 1 reported empty", f);
    }
}

static void
test_no_snapshots(void **state)
{
    int64_t dummy = 0;
    CairnKeepPolicy p = { .last = 3, .daily = 7 };
    char **got = cairn_prune_select(&dummy, 0, &p);
    assert_non_null(got);
    assert_null(got[0]);
    g_free(got);
}

/* ---- keep-last */

static void
test_keep_last(void **state)
{
    /* unsorted on purpose */
    const int64_t t[] = { 300, 100, 500, 200, 400 };
    CHECK(t, P(.last = 3), "last", NULL, "last", NULL, "last");
    CHECK(t, P(.last = 1), NULL, NULL, "last", NULL, NULL);
    CHECK(t, P(.last = 5), "last", "last", "last", "last", "last");
    CHECK(t, P(.last = 99), "last", "last", "last", "last", "last");
    CHECK(t, P(.last = 0), NULL, NULL, NULL, NULL, NULL);
    CHECK(t, P(.last = -2), NULL, NULL, NULL, NULL, NULL);
}

static void
test_keep_last_equal_times(void **state)
{
    /* two snapshots in the same second: exactly one of them is "the newest" */
    const int64_t t[] = { 1000, 2000, 2000 };
    char **got = cairn_prune_select(t, 3, &P(.last = 1));
    int kept = (got[0] != NULL) + (got[1] != NULL) + (got[2] != NULL);
    gboolean oldest_removed = got[0] == NULL;
    for (int i = 0; i < 3; i++)
        g_free(got[i]);
    g_free(got);
    assert_int_equal(kept, 1);
    assert_true(oldest_removed);
}

/* ---- periods */

static void
test_hourly(void **state)
{
    const int64_t t[] = {
        utc(2026, 5, 4, 10, 5, 0), utc(2026, 5, 4, 10, 40, 0), utc(2026, 5, 4, 11, 10, 0),
        utc(2026, 5, 4, 11, 59, 59), utc(2026, 5, 4, 13, 0, 0), /* no snapshot at 12 */
        utc(2026, 5, 3, 10, 30, 0), /* same hour, another day */
    };
    CHECK(t, P(.hourly = 3), NULL, "hourly", NULL, "hourly", "hourly", NULL);
    CHECK(t, P(.hourly = 4), NULL, "hourly", NULL, "hourly", "hourly", "hourly");
    CHECK(t, P(.hourly = 1), NULL, NULL, NULL, NULL, "hourly", NULL);
    CHECK(t, P(.hourly = 0), NULL, NULL, NULL, NULL, NULL, NULL);
}

static void
test_daily(void **state)
{
    const int64_t t[] = {
        utc(2026, 1, 1, 1, 0, 0), utc(2026, 1, 1, 23, 59, 59), utc(2026, 1, 2, 0, 0, 0),
        utc(2026, 1, 5, 8, 0, 0), utc(2026, 1, 5, 20, 0, 0), /* Jan 3 and 4 are empty */
    };
    /* the 3 most recent days that have a snapshot: Jan 5, 2, 1 */
    CHECK(t, P(.daily = 3), NULL, "daily", "daily", NULL, "daily");
    CHECK(t, P(.daily = 2), NULL, NULL, "daily", NULL, "daily");
    CHECK(t, P(.daily = 30), NULL, "daily", "daily", NULL, "daily");
}

static void
test_weekly_iso_year_boundary(void **state)
{
    const int64_t t[] = {
        utc(2024, 12, 22, 12, 0, 0), /* Sun, 2024-W51 */
        utc(2024, 12, 29, 12, 0, 0), /* Sun, 2024-W52 */
        utc(2024, 12, 30, 12, 0, 0), /* Mon, 2025-W01 (ISO year 2025) */
        utc(2025, 1, 1, 12, 0, 0),   /* Wed, 2025-W01 */
        utc(2025, 1, 5, 23, 0, 0),   /* Sun, 2025-W01: newest of that week */
        utc(2025, 1, 6, 0, 30, 0),   /* Mon, 2025-W02 */
    };
    CHECK(t, P(.weekly = 3), NULL, "weekly", NULL, NULL, "weekly", "weekly");
    CHECK(t, P(.weekly = 4), "weekly", "weekly", NULL, NULL, "weekly", "weekly");
}

static void
test_weekly_week_53(void **state)
{
    /* 2026 has 53 ISO weeks: Mon 2026-12-28 to Sun 2027-01-03 is 2026-W53 */
    const int64_t t[] = {
        utc(2026, 12, 27, 12, 0, 0), /* Sun, 2026-W52 */
        utc(2026, 12, 28, 12, 0, 0), /* Mon, 2026-W53 */
        utc(2027, 1, 1, 12, 0, 0),   /* Fri, 2026-W53 */
        utc(2027, 1, 3, 12, 0, 0),   /* Sun, 2026-W53 */
        utc(2027, 1, 4, 12, 0, 0),   /* Mon, 2027-W01 */
    };
    CHECK(t, P(.weekly = 2), NULL, NULL, NULL, "weekly", "weekly");
    CHECK(t, P(.weekly = 3), "weekly", NULL, NULL, "weekly", "weekly");
    /* and yearly is by calendar year, not ISO year */
    CHECK(t, P(.yearly = 2), NULL, "yearly", NULL, NULL, "yearly");
}

static void
test_monthly_month_ends(void **state)
{
    const int64_t t[] = {
        utc(2025, 12, 31, 23, 59, 59), utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 31, 23, 59, 59),
        utc(2026, 2, 1, 0, 0, 0), utc(2026, 2, 28, 23, 59, 59), utc(2026, 3, 1, 0, 0, 0),
        utc(2026, 3, 31, 12, 0, 0), utc(2026, 5, 1, 0, 0, 0), /* April is empty */
    };
    CHECK(t, P(.monthly = 3), NULL, NULL, NULL, NULL, "monthly", NULL, "monthly", "monthly");
    CHECK(t, P(.monthly = 4), NULL, NULL, "monthly", NULL, "monthly", NULL, "monthly", "monthly");
    CHECK(t, P(.monthly = 10), "monthly", NULL, "monthly", NULL, "monthly", NULL, "monthly",
          "monthly");
}

static void
test_monthly_leap_february(void **state)
{
    const int64_t t[] = { utc(2028, 2, 28, 12, 0, 0), utc(2028, 2, 29, 23, 0, 0),
                          utc(2028, 3, 1, 0, 0, 1) };
    CHECK(t, P(.monthly = 2), NULL, "monthly", "monthly");
    CHECK(t, P(.daily = 3), "daily", "daily", "daily");
}

static void
test_yearly(void **state)
{
    const int64_t t[] = {
        utc(2023, 6, 1, 0, 0, 0), utc(2024, 12, 31, 23, 59, 59), utc(2025, 1, 1, 0, 0, 0),
        utc(2025, 12, 31, 23, 59, 59), utc(2026, 3, 1, 0, 0, 0),
    };
    CHECK(t, P(.yearly = 2), NULL, NULL, NULL, "yearly", "yearly");
    CHECK(t, P(.yearly = 3), NULL, "yearly", NULL, "yearly", "yearly");
    CHECK(t, P(.yearly = 9), "yearly", "yearly", NULL, "yearly", "yearly");
}

static void
test_combined(void **state)
{
    /* two snapshots a day, 10 days, in reverse order */
    int64_t t[20];
    for (int i = 0; i < 20; i++)
        t[i] = utc(2026, 6, 10 - i / 2, i % 2 ? 3 : 15, 0, 0); /* t[0] newest */
    CairnKeepPolicy p = { .last = 3, .daily = 4, .weekly = 2, .monthly = 1 };
    /* 2026-06-10 is Wednesday: W24 is 8-10, W23 is 1-7 */
    const char *const want[20] = {
        [0] = "last, daily, weekly, monthly", /* 06-10 15:00 */
        [1] = "last",                         /* 06-10 03:00 */
        [2] = "last, daily",                  /* 06-09 15:00 */
        [4] = "daily",                        /* 06-08 15:00 */
        [6] = "daily, weekly",                /* 06-07 15:00, newest of W23 */
    };
    check(t, 20, p, want);

    /* a rule only adds: each rule alone keeps a subset of the combination */
    CairnKeepPolicy parts[] = { { .last = 3 }, { .daily = 4 }, { .weekly = 2 }, { .monthly = 1 } };
    char **all = cairn_prune_select(t, 20, &p);
    guint bad = 0;
    for (size_t k = 0; k < G_N_ELEMENTS(parts); k++) {
        char **one = cairn_prune_select(t, 20, &parts[k]);
        for (int i = 0; i < 20; i++) {
            bad += one[i] && !all[i];
            g_free(one[i]);
        }
        g_free(one);
    }
    for (int i = 0; i < 20; i++)
        g_free(all[i]);
    g_free(all);
    assert_int_equal(bad, 0);
}

static void
test_unsorted_matches_sorted(void **state)
{
    /* the answer follows the snapshots, whatever order they come in */
    int64_t sorted[40];
    for (int i = 0; i < 40; i++)
        sorted[i] = utc(2026, 1, 1, 0, 0, 0) + (int64_t) i * 7 * 3600 + i * 13;
    CairnKeepPolicy p = { .last = 2, .hourly = 3, .daily = 5, .weekly = 2, .monthly = 1,
                          .yearly = 1 };
    char **ref = cairn_prune_select(sorted, 40, &p);
    int perm[40];
    for (int i = 0; i < 40; i++)
        perm[i] = (i * 17 + 5) % 40; /* 17 is prime to 40: a permutation */
    int64_t shuffled[40];
    for (int i = 0; i < 40; i++)
        shuffled[i] = sorted[perm[i]];
    char **got = cairn_prune_select(shuffled, 40, &p);
    guint bad = 0, kept = 0;
    for (int i = 0; i < 40; i++) {
        bad += g_strcmp0(got[i], ref[perm[i]]) != 0;
        kept += ref[i] != NULL;
    }
    for (int i = 0; i < 40; i++) {
        g_free(got[i]);
        g_free(ref[i]);
    }
    g_free(got);
    g_free(ref);
    assert_int_equal(bad, 0);
    assert_in_range(kept, 5, 13);
}

/* ---- local time and DST (TZ=Europe/Berlin) */

static void
test_dst_spring(void **state)
{
    /* 2026-03-29: 02:00 CET -> 03:00 CEST. Days and hours are local. */
    const int64_t t[] = {
        utc(2026, 3, 28, 22, 30, 0), /* 03-28 23:30 CET */
        utc(2026, 3, 28, 23, 30, 0), /* 03-29 00:30 CET */
        utc(2026, 3, 29, 0, 30, 0),  /* 03-29 01:30 CET */
        utc(2026, 3, 29, 1, 30, 0),  /* 03-29 03:30 CEST (02:xx does not exist) */
        utc(2026, 3, 29, 21, 30, 0), /* 03-29 23:30 CEST */
        utc(2026, 3, 29, 22, 30, 0), /* 03-30 00:30 CEST */
    };
    CHECK(t, P(.daily = 3), "daily", NULL, NULL, NULL, "daily", "daily");
    CHECK(t, P(.hourly = 6), "hourly", "hourly", "hourly", "hourly", "hourly", "hourly");
    /* 23:30 CET on the 28th and 00:30 CET on the 29th are one UTC day, two local days */
    const int64_t u[] = { utc(2026, 3, 28, 22, 30, 0), utc(2026, 3, 28, 23, 30, 0) };
    CHECK(u, P(.daily = 2), "daily", "daily");
}

static void
test_dst_autumn(void **state)
{
    /* 2026-10-25: 03:00 CEST -> 02:00 CET, 02:xx happens twice */
    const int64_t t[] = {
        utc(2026, 10, 24, 22, 30, 0), /* 10-25 00:30 CEST */
        utc(2026, 10, 25, 0, 30, 0),  /* 10-25 02:30 CEST */
        utc(2026, 10, 25, 1, 30, 0),  /* 10-25 02:30 CET: the same local hour */
        utc(2026, 10, 25, 2, 30, 0),  /* 10-25 03:30 CET */
        utc(2026, 10, 25, 22, 30, 0), /* 10-25 23:30 CET */
        utc(2026, 10, 25, 23, 30, 0), /* 10-26 00:30 CET */
    };
    /* one local day 10-25 holds five of them (25 hours long) */
    CHECK(t, P(.daily = 2), NULL, NULL, NULL, NULL, "daily", "daily");
    /* local hours, as restic: the repeated 02:xx is one period */
    CHECK(t, P(.hourly = 6), "hourly", NULL, "hourly", "hourly", "hourly", "hourly");
    CHECK(t, P(.weekly = 2), NULL, NULL, NULL, NULL, "weekly", "weekly"); /* Sun W43, Mon W44 */
    CHECK(t, P(.monthly = 1, .yearly = 1), NULL, NULL, NULL, NULL, NULL, "monthly, yearly");
}

static void
test_local_month_and_year(void **state)
{
    /* 2026-01-31 23:30 UTC is already February 1st in Berlin; 2025-12-31 23:30
     * UTC is 2026 there */
    const int64_t t[] = { utc(2026, 1, 31, 22, 30, 0), utc(2026, 1, 31, 23, 30, 0),
                          utc(2025, 12, 31, 22, 59, 0), utc(2025, 12, 31, 23, 30, 0) };
    /* local months: Feb (t1), Jan (t0, newer than t3), Dec 2025 (t2) */
    CHECK(t, P(.monthly = 4), "monthly", "monthly", "monthly", NULL);
    CHECK(t, P(.monthly = 2), "monthly", "monthly", NULL, NULL);
    CHECK(t, P(.yearly = 2), NULL, "yearly", "yearly", NULL);
}

static void
test_new_york_short_and_long_days(void **state)
{
    /* 2026-03-08 has 23 hours in New York (02:00 EST -> 03:00 EDT),
     * 2026-11-01 has 25 (02:00 EDT -> 01:00 EST) */
    const int64_t t[] = {
        utc(2026, 3, 8, 5, 0, 0),    /* 03-08 00:00:00 EST */
        utc(2026, 3, 9, 3, 59, 59),  /* 03-08 23:59:59 EDT, 23 hours later */
        utc(2026, 3, 9, 4, 0, 0),    /* 03-09 00:00:00 EDT */
        utc(2026, 11, 1, 4, 0, 0),   /* 11-01 00:00:00 EDT */
        utc(2026, 11, 2, 4, 59, 59), /* 11-01 23:59:59 EST, 25 hours later */
        utc(2026, 11, 2, 5, 0, 0),   /* 11-02 00:00:00 EST */
    };
    CHECK(t, P(.daily = 4), NULL, "daily", "daily", NULL, "daily", "daily");
    CHECK(t, P(.daily = 2), NULL, NULL, NULL, NULL, "daily", "daily");
    /* the long day's hours: 01:xx twice, one period */
    const int64_t h[] = {
        utc(2026, 11, 1, 5, 10, 0), /* 01:10 EDT */
        utc(2026, 11, 1, 5, 50, 0), /* 01:50 EDT */
        utc(2026, 11, 1, 6, 10, 0), /* 01:10 EST */
        utc(2026, 11, 1, 6, 50, 0), /* 01:50 EST */
        utc(2026, 11, 1, 7, 10, 0), /* 02:10 EST */
    };
    CHECK(h, P(.hourly = 2), NULL, NULL, NULL, "hourly", "hourly");
    CHECK(h, P(.hourly = 9), NULL, NULL, NULL, "hourly", "hourly");
}

static void
test_new_york_month_week_year_ends(void **state)
{
    const int64_t m[] = {
        utc(2026, 2, 1, 4, 30, 0),  /* 01-31 23:30 EST: January here, February in UTC */
        utc(2026, 2, 1, 5, 30, 0),  /* 02-01 00:30 EST */
        utc(2026, 3, 1, 4, 59, 59), /* 02-28 23:59:59 EST */
        utc(2026, 4, 1, 3, 59, 59), /* 03-31 23:59:59 EDT, the month of the change */
        utc(2026, 4, 1, 4, 0, 0),   /* 04-01 00:00:00 EDT */
    };
    CHECK(m, P(.monthly = 5), "monthly", NULL, "monthly", "monthly", "monthly");
    CHECK(m, P(.monthly = 3), NULL, NULL, "monthly", "monthly", "monthly");
    /* Sunday night is Monday in UTC; the ISO week is the local one */
    const int64_t w[] = {
        utc(2026, 3, 8, 6, 0, 0),  /* Sun 03-08 01:00 EST, W10 */
        utc(2026, 3, 9, 3, 30, 0), /* Sun 03-08 23:30 EDT, W10 */
        utc(2026, 3, 9, 4, 30, 0), /* Mon 03-09 00:30 EDT, W11 */
    };
    CHECK(w, P(.weekly = 2), NULL, "weekly", "weekly");
    CHECK(w, P(.weekly = 1), NULL, NULL, "weekly");
    /* New Year's Eve ends at 05:00 UTC */
    const int64_t y[] = {
        utc(2026, 12, 31, 12, 0, 0), /* 2026-12-31 07:00 EST */
        utc(2027, 1, 1, 4, 59, 59),  /* 2026-12-31 23:59:59 EST */
        utc(2027, 1, 1, 5, 0, 0),    /* 2027-01-01 00:00:00 EST */
    };
    CHECK(y, P(.yearly = 2), NULL, "yearly", "yearly");
    CHECK(y, P(.monthly = 2), NULL, "monthly", "monthly");
    CHECK(y, P(.daily = 1), NULL, NULL, "daily");
}

static void
test_berlin_month_ends_after_changes(void **state)
{
    /* the first month ends after the spring and the autumn change */
    const int64_t t[] = {
        utc(2026, 3, 29, 0, 30, 0),   /* 03-29 01:30 CET */
        utc(2026, 3, 29, 1, 30, 0),   /* 03-29 03:30 CEST */
        utc(2026, 3, 31, 21, 30, 0),  /* 03-31 23:30 CEST */
        utc(2026, 3, 31, 22, 30, 0),  /* 04-01 00:30 CEST, still March in UTC */
        utc(2026, 10, 31, 22, 30, 0), /* 10-31 23:30 CET */
        utc(2026, 10, 31, 23, 30, 0), /* 11-01 00:30 CET, still October in UTC */
    };
    CHECK(t, P(.monthly = 4), NULL, NULL, "monthly", "monthly", "monthly", "monthly");
    CHECK(t, P(.daily = 9), NULL, "daily", "daily", "daily", "daily", "daily");
    /* 03-29 is a Sunday (W13); 10-31 and 11-01 are Saturday and Sunday of W44 */
    CHECK(t, P(.weekly = 9), NULL, "weekly", NULL, "weekly", NULL, "weekly");
}

static void
test_sydney(void **state)
{
    /* southern summer: 2026-04-05 has 25 hours (03:00 AEDT -> 02:00 AEST),
     * 2026-10-04 has 23 (02:00 AEST -> 03:00 AEDT); the year ends at 13:00 UTC */
    const int64_t t[] = {
        utc(2026, 4, 4, 13, 0, 0),    /* 04-05 00:00:00 AEDT */
        utc(2026, 4, 5, 13, 59, 59),  /* 04-05 23:59:59 AEST, 25 hours later */
        utc(2026, 10, 3, 14, 0, 0),   /* 10-04 00:00:00 AEST */
        utc(2026, 10, 4, 12, 59, 59), /* 10-04 23:59:59 AEDT, 23 hours later */
        utc(2026, 12, 31, 12, 30, 0), /* 12-31 23:30 AEDT */
        utc(2026, 12, 31, 13, 30, 0), /* 2027-01-01 00:30 AEDT */
    };
    CHECK(t, P(.daily = 6), NULL, "daily", NULL, "daily", "daily", "daily");
    CHECK(t, P(.yearly = 2), NULL, NULL, NULL, NULL, "yearly", "yearly");
    CHECK(t, P(.monthly = 9), NULL, "monthly", NULL, "monthly", "monthly", "monthly");
}

static void
test_clock_back_across_midnight(void **state)
{
    /* America/Goose_Bay, 2009-11-01: at 00:01 ADT the clocks went back to
     * 23:01 AST on 10-31, so November began, October came back for an hour
     * and November began again. Each period counts once, with its newest
     * snapshot. */
    const int64_t t[] = {
        utc(2009, 11, 1, 2, 30, 0), /* 10-31 23:30 ADT */
        utc(2009, 11, 1, 3, 0, 30), /* 11-01 00:00:30 ADT */
        utc(2009, 11, 1, 3, 30, 0), /* 10-31 23:30 AST, October again */
        utc(2009, 11, 1, 4, 30, 0), /* 11-01 00:30 AST */
    };
    CHECK(t, P(.daily = 3), NULL, NULL, "daily", "daily");
    CHECK(t, P(.monthly = 4), NULL, NULL, "monthly", "monthly");
    CHECK(t, P(.hourly = 4), NULL, NULL, "hourly", "hourly");
    CHECK(t, P(.daily = 1, .monthly = 1), NULL, NULL, NULL, "daily, monthly");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_is_empty),
        cmocka_unit_test(test_no_snapshots),
        cmocka_unit_test(test_keep_last),
        cmocka_unit_test(test_keep_last_equal_times),
        cmocka_unit_test_setup_teardown(test_hourly, setup_utc, teardown_tz),
        cmocka_unit_test_setup_teardown(test_daily, setup_utc, teardown_tz),
        cmocka_unit_test_setup_teardown(test_weekly_iso_year_boundary, setup_utc, teardown_tz),
        cmocka_unit_test_setup_teardown(test_weekly_week_53, setup_utc, teardown_tz),
        cmocka_unit_test_setup_teardown(test_monthly_month_ends, setup_utc, teardown_tz),
        cmocka_unit_test_setup_teardown(test_monthly_leap_february, setup_utc, teardown_tz),
        cmocka_unit_test_setup_teardown(test_yearly, setup_utc, teardown_tz),
        cmocka_unit_test_setup_teardown(test_combined, setup_utc, teardown_tz),
        cmocka_unit_test_setup_teardown(test_unsorted_matches_sorted, setup_utc, teardown_tz),
        cmocka_unit_test_setup_teardown(test_dst_spring, setup_berlin, teardown_tz),
        cmocka_unit_test_setup_teardown(test_dst_autumn, setup_berlin, teardown_tz),
        cmocka_unit_test_setup_teardown(test_local_month_and_year, setup_berlin, teardown_tz),
        cmocka_unit_test_setup_teardown(test_new_york_short_and_long_days, setup_new_york,
                                        teardown_tz),
        cmocka_unit_test_setup_teardown(test_new_york_month_week_year_ends, setup_new_york,
                                        teardown_tz),
        cmocka_unit_test_setup_teardown(test_berlin_month_ends_after_changes, setup_berlin,
                                        teardown_tz),
        cmocka_unit_test_setup_teardown(test_sydney, setup_sydney, teardown_tz),
        cmocka_unit_test_setup_teardown(test_clock_back_across_midnight, setup_goose_bay,
                                        teardown_tz),
    };
    return cmocka_run_group_tests_name("prune", tests, setup_utc, teardown_tz);
}
