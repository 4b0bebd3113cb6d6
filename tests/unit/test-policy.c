/* test-policy.c - policies/policy.h: loading policies.d/NAME.conf, every
 * problem reported as "FILE:LINE: ..." (with a did-you-mean for names),
 * defaults, matching domains and tags, and the time window. Each test runs
 * with a fresh temporary directory as $CAIRN_CONFIG_DIR, holding one valid
 * remote "offsite". */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib/gstdio.h>

#include "common/util.h"
#include "policies/policy.h"

typedef struct {
    char *dir; /* $CAIRN_CONFIG_DIR */
} Fx;

static void
write_file(const char *path, const char *text)
{
    g_autoptr(GError) error = NULL;
    if (!g_file_set_contents(path, text, -1, &error))
        fail_msg("cannot write %s: %s", path, error->message);
}

static int
setup(void **state)
{
    Fx *f = g_new0(Fx, 1);
    g_autoptr(GError) error = NULL;
    f->dir = g_dir_make_tmp("cairn-test-policy-XXXXXX", &error);
    assert_non_null(f->dir);
    setenv("CAIRN_CONFIG_DIR", f->dir, 1);
    setenv("TZ", "UTC", 1);
    tzset();
    g_autofree char *pd = g_build_filename(f->dir, "policies.d", NULL);
    g_autofree char *rd = g_build_filename(f->dir, "remotes.d", NULL);
    assert_int_equal(g_mkdir(pd, 0755), 0);
    assert_int_equal(g_mkdir(rd, 0755), 0);
    g_autofree char *remote = g_build_filename(rd, "offsite.conf", NULL);
    write_file(remote, "[remote]\nurl = file:///var/tmp/offsite\n");
    *state = f;
    return 0;
}

static void
remove_tree(const char *path)
{
    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
        const char *e;
        while (d && (e = g_dir_read_name(d))) {
            g_autofree char *child = g_build_filename(path, e, NULL);
            remove_tree(child);
        }
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

static int
teardown(void **state)
{
    Fx *f = *state;
    remove_tree(f->dir);
    unsetenv("CAIRN_CONFIG_DIR");
    g_free(f->dir);
    g_free(f);
    return 0;
}

/* policies.d/NAME.conf with text; returns its path */
static char *
put_policy(Fx *f, const char *name, const char *text)
{
    g_autofree char *file = g_strconcat(name, ".conf", NULL);
    char *path = g_build_filename(f->dir, "policies.d", file, NULL);
    write_file(path, text);
    return path;
}

static CairnPolicy *
load_ok(Fx *f, const char *text)
{
    g_autofree char *path = put_policy(f, "web01", text);
    g_autoptr(GError) error = NULL;
    CairnPolicy *p = cairn_policy_load(path, &error);
    if (!p)
        fail_msg("the policy did not load:\n%s\n--- text:\n%s", error->message, text);
    return p;
}

/* The text fails to load with exactly the given problems: pairs of a line
 * number and a fragment of its message, ended by 0. Every line of the
 * message is "PATH:LINE: ...". */
static void
expect_problems(Fx *f, const char *text, ...)
{
    g_autofree char *path = put_policy(f, "web01", text);
    g_autoptr(GError) error = NULL;
    g_autoptr(CairnPolicy) p = cairn_policy_load(path, &error);
    if (p)
        fail_msg("the policy loaded but should not have:\n%s", text);
    assert_true(g_error_matches(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_INVALID));
    g_auto(GStrv) lines = g_strsplit(error->message, "\n", -1);
    g_autofree char *prefix = g_strconcat(path, ":", NULL);
    for (char **l = lines; *l; l++)
        if (!g_str_has_prefix(*l, prefix))
            fail_msg("a problem without 'FILE:' at its start: '%s'", *l);
    va_list ap;
    va_start(ap, text);
    guint want = 0;
    int line;
    while ((line = va_arg(ap, int)) != 0) {
        const char *frag = va_arg(ap, const char *);
        g_autofree char *at = g_strdup_printf("%s:%d: ", path, line);
        gboolean found = FALSE;
        for (char **l = lines; *l && !found; l++)
            found = g_str_has_prefix(*l, at) && strstr(*l, frag);
        if (!found)
            fail_msg("no problem '%s' on line %d; got:\n%s\n--- text:\n%s", frag, line,
                     error->message, text);
        want++;
    }
    va_end(ap);
    if (g_strv_length(lines) != want)
        fail_msg("%u problems expected, got %u:\n%s", want, g_strv_length(lines),
                 error->message);
}

static void
assert_strv(char **got, const char *const *want)
{
    assert_non_null(got);
    assert_int_equal(g_strv_length(got), g_strv_length((char **) want));
    for (guint i = 0; want[i]; i++)
        assert_string_equal(got[i], want[i]);
}

/* ---- valid files */

static void
test_full(void **state)
{
    Fx *f = *state;
    g_autoptr(CairnPolicy) p = load_ok(f,
        "# every key\n"
        "[policy]\n"
        "domains = web01; db-*\n"
        "tags = prod\n"
        "disks = vda;vdb\n"
        "exclude-disks = vdc\n"
        "schedule = daily;*:0/15\n"
        "randomized-delay = 10min\n"
        "dirty-threshold = 1GiB\n"
        "dirty-check-interval = 30s\n"
        "quiesce = always\n"
        "window = 22:00-06:00\n"
        "timeout = 6h\n"
        "max-jobs = 2\n"
        "\n"
        "[retention]\n"
        "keep-last = 7\n"
        "keep-hourly = 24\n"
        "keep-daily = 14\n"
        "keep-weekly = 8\n"
        "keep-monthly = 12\n"
        "keep-yearly = 3\n"
        "[push]\n"
        "targets = offsite\n"
        "bwlimit = 50MiB\n"
        "keep-last = 30\n"
        "keep-monthly = 24\n"
        "[verify]\n"
        "schedule = Sun 04:00\n"
        "read-data = 10%\n"
        "[gc]\n"
        "schedule = Sun 05:00\n"
        "grace = 2h\n");
    assert_string_equal(p->name, "web01");
    assert_true(g_str_has_suffix(p->path, "/policies.d/web01.conf"));
    assert_strv(p->domains, (const char *[]) { "web01", "db-*", NULL });
    assert_strv(p->tags, (const char *[]) { "prod", NULL });
    assert_strv(p->disks, (const char *[]) { "vda", "vdb", NULL });
    assert_strv(p->exclude_disks, (const char *[]) { "vdc", NULL });
    assert_strv(p->schedule_text, (const char *[]) { "daily", "*:0/15", NULL });
    assert_int_equal(p->schedules->len, 2);
    assert_int_equal(p->randomized_delay, 600);
    assert_int_equal(p->dirty_threshold, 1ULL << 30);
    assert_int_equal(p->dirty_check_interval, 30);
    assert_string_equal(p->quiesce, "always");
    assert_int_equal(p->window_start, 22 * 60);
    assert_int_equal(p->window_end, 6 * 60);
    /* the window wraps midnight (TZ=UTC; 2026-12-05 00:00 = 1796428800) */
    const int64_t day = 1796428800;
    assert_true(cairn_policy_in_window(p, day + 23 * 3600));
    assert_true(cairn_policy_in_window(p, day + 5 * 3600 + 59 * 60));
    assert_false(cairn_policy_in_window(p, day + 6 * 3600));
    assert_int_equal(cairn_policy_window_open(p, day + 3 * 3600), day + 3 * 3600);
    assert_int_equal(cairn_policy_window_open(p, day + 6 * 3600), day + 22 * 3600);
    assert_int_equal(cairn_policy_window_open(p, day + 21 * 3600 + 59 * 60 + 59), day + 22 * 3600);
    assert_int_equal(p->timeout, 6 * 3600);
    assert_int_equal(p->max_jobs, 2);
    assert_int_equal(p->keep.last, 7);
    assert_int_equal(p->keep.hourly, 24);
    assert_int_equal(p->keep.daily, 14);
    assert_int_equal(p->keep.weekly, 8);
    assert_int_equal(p->keep.monthly, 12);
    assert_int_equal(p->keep.yearly, 3);
    assert_strv(p->targets, (const char *[]) { "offsite", NULL });
    assert_int_equal(p->bwlimit, 50ULL << 20);
    /* [push] has keep-* of its own: only those apply on the remotes */
    assert_int_equal(p->remote_keep.last, 30);
    assert_int_equal(p->remote_keep.monthly, 24);
    assert_int_equal(p->remote_keep.daily, 0);
    assert_int_equal(p->verify_schedules->len, 1);
    assert_int_equal(p->verify_read_data, 10);
    assert_int_equal(p->gc_schedules->len, 1);
    assert_int_equal(p->gc_grace, 7200);
    /* the schedules are the parsed expressions */
    g_autofree char *daily = cairn_calendar_to_string(p->schedules->pdata[0]);
    assert_string_equal(daily, "*-*-* 00:00:00");
    /* the lines of keys and groups, for later messages */
    assert_int_equal(cairn_policy_line(p, "policy", NULL), 2);
    assert_int_equal(cairn_policy_line(p, "policy", "domains"), 3);
    assert_int_equal(cairn_policy_line(p, "push", "keep-last"), 26);
    assert_int_equal(cairn_policy_line(p, "retention", "keep-last"), 17);
    assert_int_equal(cairn_policy_line(p, "gc", "no-such-key"), 31); /* its group */
    assert_int_equal(cairn_policy_line(p, "nogroup", NULL), 1);
}

static void
test_defaults(void **state)
{
    Fx *f = *state;
    g_autoptr(CairnPolicy) p = load_ok(f, "[policy]\ndomains = web01\nschedule = daily\n"
                                          "[retention]\nkeep-daily = 7\n[push]\ntargets = offsite\n");
    assert_strv(p->tags, (const char *[]) { NULL });
    assert_strv(p->disks, (const char *[]) { NULL });
    assert_strv(p->exclude_disks, (const char *[]) { NULL });
    assert_int_equal(p->randomized_delay, 0);
    assert_int_equal(p->dirty_threshold, 0);
    assert_int_equal(p->dirty_check_interval, 60);
    assert_string_equal(p->quiesce, "auto");
    assert_int_equal(p->window_start, -1);
    assert_int_equal(p->window_end, -1);
    assert_int_equal(p->timeout, 0);
    assert_int_equal(p->max_jobs, 1);
    assert_int_equal(p->bwlimit, 0);
    /* no keep-* in [push]: the remotes keep what the local repository keeps */
    assert_int_equal(p->keep.daily, 7);
    assert_memory_equal(&p->remote_keep, &p->keep, sizeof p->keep);
    assert_int_equal(p->verify_schedules->len, 0);
    assert_int_equal(p->verify_read_data, -1);
    assert_int_equal(p->gc_schedules->len, 0);
    assert_int_equal(p->gc_grace, 3600);
    assert_true(cairn_policy_in_window(p, 0));
    assert_int_equal(cairn_policy_window_open(p, 12345), 12345);
}

/* tags alone, a dirty-threshold alone, comments, empty values, white space */
static void
test_variants(void **state)
{
    Fx *f = *state;
    g_autoptr(CairnPolicy) p = load_ok(f, "  [policy]  \r\n"
                                          "tags = prod ; ; web   # a comment\n"
                                          "\t# an indented comment\n"
                                          "dirty-threshold = 512M\n"
                                          "quiesce =\n"
                                          "schedule = # none\n"
                                          "[verify]\nread-data = all\n");
    assert_strv(p->domains, (const char *[]) { NULL });
    assert_strv(p->tags, (const char *[]) { "prod", "web", NULL });
    assert_int_equal(p->dirty_threshold, 512ULL << 20);
    assert_int_equal(p->schedules->len, 0);
    assert_string_equal(p->quiesce, "auto");
    assert_int_equal(p->verify_read_data, 100);

    g_autoptr(CairnPolicy) p2 = load_ok(f, "[policy]\ndomains=*\nschedule=hourly\n"
                                           "window=09:00-17:30\n[verify]\nread-data=0%\n");
    assert_int_equal(p2->window_start, 9 * 60);
    assert_int_equal(p2->window_end, 17 * 60 + 30);
    /* before it: today's start; after it: tomorrow's */
    const int64_t day = 1796428800;
    assert_int_equal(cairn_policy_window_open(p2, day + 8 * 3600), day + 9 * 3600);
    assert_int_equal(cairn_policy_window_open(p2, day + 12 * 3600), day + 12 * 3600);
    assert_int_equal(cairn_policy_window_open(p2, day + 17 * 3600 + 30 * 60),
                     day + 86400 + 9 * 3600);
    assert_int_equal(p2->verify_read_data, 0);
    g_autoptr(CairnPolicy) p3 = load_ok(f, "\xEF\xBB\xBF[policy]\ndomains=*\nschedule=hourly\n"
                                           "window = 0:00 - 24:00\n");
    assert_int_equal(p3->window_start, 0);
    assert_int_equal(p3->window_end, 24 * 60);
}

/* ---- each problem, with its line */

static void
test_unknown_names(void **state)
{
    Fx *f = *state;
    expect_problems(f, "[policy]\ndomains = web01\nshedule = daily\n",
                    3, "unknown key 'shedule' in [policy] (did you mean 'schedule'?)",
                    1, "never runs", 0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\n[retension]\nkeep-last = 3\n",
                    4, "unknown group [retension] (did you mean [retention]?)", 0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\n[zzz]\n",
                    4, "unknown group [zzz]; the groups are [policy], [retention]", 0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\nkeep-last = 3\n",
                    4, "key 'keep-last' does not belong in [policy]: move it to [retention] or "
                       "[push]", 0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\nfrobnicate = 1\n",
                    4, "unknown key 'frobnicate' in [policy] (its keys are: domains, tags", 0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\n[push]\ntarget = offsite\n",
                    5, "unknown key 'target' in [push] (did you mean 'targets'?)", 0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\nquiesce = alwyas\n",
                    4, "quiesce: 'alwyas' is not auto, always or never (did you mean 'always'?)",
                    0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\n[push]\ntargets = offsit\n",
                    5, "targets: no remote 'offsit' (did you mean 'offsite'?)", 0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\n[push]\ntargets = s3; offsite\n",
                    5, "targets: no remote 's3'", 0);
}

static void
test_bad_values(void **state)
{
    Fx *f = *state;
    const char *head = "[policy]\ndomains = a\nschedule = daily\n";
    static const struct { const char *line, *frag; } cases[] = {
        { "dirty-threshold = 1XB", "dirty-threshold: invalid size '1XB'" },
        { "randomized-delay = soon", "randomized-delay: invalid duration 'soon'" },
        { "timeout = 5y", "timeout: invalid duration '5y'" },
        { "dirty-check-interval = 0", "dirty-check-interval: 0 is too short: at least 1s" },
        { "window = 25:00-06:00", "window: '25:00-06:00' is not HH:MM-HH:MM" },
        { "window = 22-06", "window: '22-06' is not HH:MM-HH:MM" },
        { "window = 22:00", "window: '22:00' is not HH:MM-HH:MM" },
        { "window = 22:60-23:00", "window: '22:60-23:00' is not HH:MM-HH:MM" },
        { "window = 24:00-06:00", "window: '24:00-06:00' is not HH:MM-HH:MM" },
        { "window = 22:00-22:00", "window: '22:00-22:00' is empty" },
        { "max-jobs = 0", "max-jobs: '0' is not a whole number from 1 to 64" },
        { "max-jobs = two", "max-jobs: 'two' is not a whole number" },
        { "disks = vda;vd b", "disks: 'vd b' is not a disk target name" },
        { "schedule = daily;dialy", "schedule: " },
        { "schedule = Mon..Fri 25:00", "schedule: " },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *text = g_strconcat(cases[i].line[0] == 's' ? "[policy]\ndomains = a\n"
                                                                    : head,
                                            cases[i].line, "\n", NULL);
        int line = cases[i].line[0] == 's' ? 3 : 4;
        expect_problems(f, text, line, cases[i].frag, 0);
    }
    static const struct { const char *group, *line, *frag; } more[] = {
        { "retention", "keep-daily = -1", "keep-daily: '-1' is not a whole number from 0" },
        { "retention", "keep-last = 1.5", "keep-last: '1.5' is not a whole number" },
        { "push", "keep-weekly = -2", "keep-weekly: '-2' is not a whole number from 0" },
        { "push", "bwlimit = fast", "bwlimit: invalid size 'fast'" },
        { "verify", "read-data = 10", "read-data: '10' is neither a whole percentage" },
        { "verify", "read-data = 2.5%", "read-data: '2.5%' is neither" },
        { "verify", "read-data = 150%", "read-data: '150%' is neither" },
        { "verify", "schedule = Sun 4 o'clock", "schedule: " },
        { "gc", "grace = 1 hour", "grace: invalid duration '1 hour'" },
        { "gc", "schedule = never", "schedule: " },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(more); i++) {
        g_autofree char *text = g_strdup_printf("%s[%s]\n%s\n", head, more[i].group,
                                                more[i].line);
        expect_problems(f, text, 5, more[i].frag, 0);
    }
}

static void
test_meaning(void **state)
{
    Fx *f = *state;
    /* neither domains nor tags, neither schedule nor dirty-threshold: the
     * line of [policy] */
    expect_problems(f, "# web\n\n[policy]\nschedule = daily\n",
                    3, "[policy] names no domain: give 'domains'", 0);
    expect_problems(f, "# web\n[policy]\ndomains = web01\n[retention]\nkeep-last = 1\n",
                    2, "the policy never runs: give a 'schedule'", 0);
    expect_problems(f, "[policy]\ndomains = web01\ndirty-threshold = 0\n",
                    1, "never runs", 0);
    /* a misspelt schedule is reported once, not also as "never runs" */
    expect_problems(f, "[policy]\ndomains = web01\nschedule = dialy\n", 3, "schedule: ", 0);
    expect_problems(f, "[retention]\nkeep-last = 1\n",
                    1, "no [policy] group", 0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\ndisks = vda;vdb\n"
                       "exclude-disks = vdb\n",
                    5, "exclude-disks: disk 'vdb' is also in 'disks'", 0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\ndomains = b\n",
                    4, "'domains' is set twice in [policy] (first on line 2)", 0);
    /* the same key in two groups is fine */
    g_autoptr(CairnPolicy) p = load_ok(f, "[policy]\ndomains = a\nschedule = daily\n"
                                          "[verify]\nschedule = weekly\n[gc]\nschedule = monthly\n");
    assert_int_equal(p->gc_schedules->len, 1);
}

static void
test_syntax(void **state)
{
    Fx *f = *state;
    expect_problems(f, "domains = a\n[policy]\nschedule = daily\n",
                    1, "'domains' comes before the first group", 0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\nthis is no key\n",
                    4, "'this is no key' is neither a [group], a KEY = VALUE line", 0);
    expect_problems(f, "[policy\ndomains = a\n", 1, "malformed group header '[policy'", 0);
    expect_problems(f, "[policy]\n= a\nschedule = daily\n", 2, "a value without a key", 0);
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\ntags = \xff\xfe\n",
                    4, "invalid UTF-8", 0);
    g_autofree char *path = put_policy(f, "nul", "[policy]\n");
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    fputs("domains = a", fp);
    fputc('\0', fp);
    fputs("\n", fp);
    fclose(fp);
    g_autoptr(GError) error = NULL;
    assert_null(cairn_policy_load(path, &error));
    g_autofree char *want = g_strconcat(path, ":2: the file holds a NUL byte", NULL);
    assert_non_null(strstr(error->message, want));
}

/* several problems in one file: all of them, each with its line */
static void
test_all_problems(void **state)
{
    Fx *f = *state;
    expect_problems(f, "[policy]\n"
                       "domians = web01\n"
                       "schedule = daily\n"
                       "timeout = forever\n"
                       "[retention]\n"
                       "keep-daily = -7\n"
                       "[push]\n"
                       "targets = ofsite\n",
                    2, "unknown key 'domians' in [policy] (did you mean 'domains'?)",
                    4, "timeout: invalid duration 'forever'",
                    6, "keep-daily: '-7'",
                    8, "targets: no remote 'ofsite' (did you mean 'offsite'?)",
                    1, "[policy] names no domain", 0);
}

static void
test_files(void **state)
{
    Fx *f = *state;
    /* a broken remote named as a target */
    g_autofree char *broken = g_build_filename(f->dir, "remotes.d", "broken.conf", NULL);
    write_file(broken, "[remote]\nurl = ftp://x\n");
    expect_problems(f, "[policy]\ndomains = a\nschedule = daily\n[push]\ntargets = broken\n",
                    5, "targets: remote 'broken' is invalid: ", 0);
    /* a file that cannot be read */
    g_autoptr(GError) error = NULL;
    g_autofree char *missing = g_build_filename(f->dir, "policies.d", "none.conf", NULL);
    assert_null(cairn_policy_load(missing, &error));
    assert_true(g_error_matches(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_NOT_FOUND));
    assert_true(g_str_has_prefix(error->message, missing));
    /* a file name that is no policy name */
    g_autofree char *odd = put_policy(f, "web 01", "[policy]\ndomains = a\nschedule = daily\n");
    g_autoptr(GError) e2 = NULL;
    assert_null(cairn_policy_load(odd, &e2));
    assert_non_null(strstr(e2->message, ":1: 'web 01' is no valid policy name"));
    g_unlink(odd);
}

static void
test_load_all_and_lookup(void **state)
{
    Fx *f = *state;
    g_autofree char *a = put_policy(f, "web", "[policy]\ndomains = web*\nschedule = daily\n");
    g_autofree char *b = put_policy(f, "db", "[policy]\ntags = db\nschedule = hourly\n");
    g_autofree char *c = put_policy(f, "bad", "[policy]\ndomains = x\n");
    g_autofree char *other = g_build_filename(f->dir, "policies.d", "web.conf.bak", NULL);
    g_autofree char *hidden = g_build_filename(f->dir, "policies.d", ".tmp.conf", NULL);
    write_file(other, "junk");
    write_file(hidden, "junk");
    g_autoptr(GPtrArray) errors = NULL;
    g_autoptr(GPtrArray) all = cairn_policy_load_all(&errors);
    assert_int_equal(all->len, 2);
    assert_string_equal(((CairnPolicy *) all->pdata[0])->name, "db");
    assert_string_equal(((CairnPolicy *) all->pdata[1])->name, "web");
    assert_int_equal(errors->len, 1);
    g_autofree char *want = g_strconcat(c, ":1: the policy never runs", NULL);
    assert_non_null(strstr(((GError *) errors->pdata[0])->message, want));

    g_autoptr(GPtrArray) files = cairn_policy_list_files(NULL);
    assert_int_equal(files->len, 3);
    assert_string_equal(files->pdata[0], c);

    g_autoptr(GError) error = NULL;
    g_autoptr(CairnPolicy) w = cairn_policy_lookup("web", &error);
    assert_non_null(w);
    assert_null(cairn_policy_lookup("webb", &error));
    assert_true(g_error_matches(error, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_NOT_FOUND));
    assert_non_null(strstr(error->message, "no policy 'webb'"));
    assert_non_null(strstr(error->message, "(did you mean 'web'?)"));
    assert_non_null(strstr(error->message, "policies: bad, db, web"));
    g_autoptr(GError) e2 = NULL;
    assert_null(cairn_policy_lookup("../remotes.d/offsite", &e2));
    assert_true(g_error_matches(e2, CAIRN_POLICY_ERROR, CAIRN_POLICY_ERROR_NOT_FOUND));

    /* no policies.d at all: nothing, and no error */
    g_autofree char *empty = g_build_filename(f->dir, "nothing-here", NULL);
    setenv("CAIRN_CONFIG_DIR", empty, 1);
    g_autoptr(GPtrArray) e3 = NULL;
    g_autoptr(GPtrArray) none = cairn_policy_load_all(&e3);
    assert_int_equal(none->len, 0);
    assert_int_equal(e3->len, 0);
    setenv("CAIRN_CONFIG_DIR", f->dir, 1);
}

/* ---- matching and the window */

static void
test_matches(void **state)
{
    Fx *f = *state;
    g_autoptr(CairnPolicy) p = load_ok(f, "[policy]\ndomains = web01;db-*\ntags = prod-?\n"
                                          "schedule = daily\n");
    const char *const prod[] = { "test", "prod-1", NULL };
    const char *const other[] = { "prod", "production", NULL };
    assert_true(cairn_policy_matches(p, "web01", NULL));
    assert_true(cairn_policy_matches(p, "db-main", NULL));
    assert_true(cairn_policy_matches(p, "db-", other));
    assert_false(cairn_policy_matches(p, "web02", NULL));
    assert_false(cairn_policy_matches(p, "mydb-1", other));
    assert_true(cairn_policy_matches(p, "mail", prod));
    assert_false(cairn_policy_matches(p, "mail", other));
    g_autoptr(CairnPolicy) t = load_ok(f, "[policy]\ntags = backup\nschedule = daily\n");
    const char *const backup[] = { "backup", NULL };
    assert_true(cairn_policy_matches(t, "anything", backup));
    assert_false(cairn_policy_matches(t, "backup", NULL)); /* tags are not names */
}

static int64_t
utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                     .tm_min = mi };
    return (int64_t) timegm(&tm);
}

static void
test_window(void **state)
{
    Fx *f = *state;
    g_autoptr(CairnPolicy) night = load_ok(f, "[policy]\ndomains = a\nschedule = daily\n"
                                              "window = 22:00-06:00\n");
    static const struct { int h, m; gboolean in; } wrap[] = {
        { 21, 59, FALSE }, { 22, 0, TRUE }, { 23, 59, TRUE }, { 0, 0, TRUE },
        { 5, 59, TRUE }, { 6, 0, FALSE }, { 12, 0, FALSE },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(wrap); i++)
        if (cairn_policy_in_window(night, utc(2026, 11, 20, wrap[i].h, wrap[i].m)) != wrap[i].in)
            fail_msg("22:00-06:00 at %02d:%02d: want %s", wrap[i].h, wrap[i].m,
                     wrap[i].in ? "inside" : "outside");
    g_autoptr(CairnPolicy) day = load_ok(f, "[policy]\ndomains = a\nschedule = daily\n"
                                            "window = 09:00-17:30\n");
    assert_false(cairn_policy_in_window(day, utc(2026, 11, 20, 8, 59)));
    assert_true(cairn_policy_in_window(day, utc(2026, 11, 20, 9, 0)));
    assert_true(cairn_policy_in_window(day, utc(2026, 11, 20, 17, 29)));
    assert_false(cairn_policy_in_window(day, utc(2026, 11, 20, 17, 30)));
    assert_false(cairn_policy_in_window(day, utc(2026, 11, 20, 23, 0)));
    g_autoptr(CairnPolicy) all = load_ok(f, "[policy]\ndomains = a\nschedule = daily\n"
                                            "window = 00:00-24:00\n");
    assert_true(cairn_policy_in_window(all, utc(2026, 11, 20, 23, 59)));
    assert_true(cairn_policy_in_window(all, utc(2026, 11, 20, 0, 0)));

    /* local time: 21:30 UTC is 23:30 in Berlin in summer, 22:30 in winter */
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    assert_true(cairn_policy_in_window(night, utc(2026, 7, 1, 21, 30)));
    assert_true(cairn_policy_in_window(night, utc(2026, 1, 15, 21, 30)));
    assert_false(cairn_policy_in_window(night, utc(2026, 7, 1, 19, 30))); /* 21:30 CEST */
    assert_true(cairn_policy_in_window(night, utc(2026, 1, 15, 4, 30)));  /* 05:30 CET */
    assert_false(cairn_policy_in_window(night, utc(2026, 7, 1, 4, 30)));  /* 06:30 CEST */
    /* the night of the change to summer time (02:00 -> 03:00 on 29 March) */
    assert_true(cairn_policy_in_window(night, utc(2026, 3, 29, 1, 30)));  /* 03:30 CEST */
    assert_false(cairn_policy_in_window(night, utc(2026, 3, 29, 4, 0)));  /* 06:00 CEST */
    setenv("TZ", "UTC", 1);
    tzset();
    assert_false(cairn_policy_in_window(night, utc(2026, 7, 1, 21, 30)));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meaning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_problems, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_all_and_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
