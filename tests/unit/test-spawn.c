/* test-spawn.c - common/spawn.h: children and detached programs. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/spawn.h"

/* a detached start, repeated: the race it guards against showed in 1-3% of
 * starts on a loaded 2-core machine */
#define DETACHED_ROUNDS 300

static char *tmp_dir;

static int
setup(void **state)
{
    tmp_dir = g_dir_make_tmp("cairn-test-spawn-XXXXXX", NULL);
    return tmp_dir ? 0 : -1;
}

static int
teardown(void **state)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp_dir);
    int r = system(cmd);
    g_clear_pointer(&tmp_dir, g_free);
    return r == 0 ? 0 : -1;
}

static pid_t
spawn_sh(const char *script, int log_fd, gboolean detach, gboolean *ret_child)
{
    char *argv[] = { "/bin/sh", "-c", (char *) script, NULL };
    g_auto(GStrv) env = g_get_environ();
    g_autoptr(GError) error = NULL;
    pid_t pid = cairn_spawn(argv, env, log_fd, detach, ret_child, &error);
    if (pid < 0)
        fail_msg("cairn_spawn: %s", error->message);
    return pid;
}

static int
wait_exit_status(pid_t pid)
{
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void
test_child_status_and_log(void **state)
{
    g_autofree char *log = g_build_filename(tmp_dir, "log", NULL);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    gboolean child = FALSE;
    pid_t pid = spawn_sh("echo 'to the log' >&2; echo 'not to the log'; exit 3", fd, FALSE,
                         &child);
    close(fd);
    assert_true(child);
    assert_int_equal(wait_exit_status(pid), 3);
    g_autofree char *text = NULL;
    assert_true(g_file_get_contents(log, &text, NULL, NULL));
    assert_string_equal(text, "to the log\n");
}

static void
test_no_descriptor_leaks(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0); /* no O_CLOEXEC: exec alone would pass them on */
    g_autofree char *script =
        g_strdup_printf("[ -e /proc/self/fd/%d ] && exit 1; [ -e /proc/self/fd/%d ] && exit 1; "
                        "exit 0", p[0], p[1]);
    gboolean child = FALSE;
    pid_t pid = spawn_sh(script, -1, FALSE, &child);
    close(p[0]);
    close(p[1]);
    assert_int_equal(wait_exit_status(pid), 0);
}

static void
test_missing_program(void **state)
{
    char *argv[] = { "/nonexistent/program", NULL };
    gboolean child = FALSE;
    g_autoptr(GError) error = NULL;
    pid_t pid = cairn_spawn(argv, NULL, -1, FALSE, &child, &error);
    assert_true(pid > 0); /* the exec fails in the child: status 127 */
    assert_int_equal(wait_exit_status(pid), 127);
}

/* A detached program starts only once its parent, the intermediate
 * process, is gone and reaped: it never sees that process as its parent
 * (a parent-death signal it sets, as nbdkit does, would kill it when the
 * intermediate's exit completes). We are the subreaper here, so its parent
 * must be us. */
static void
test_detached_parent_is_gone(void **state)
{
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    g_autofree char *file = g_build_filename(tmp_dir, "ppid", NULL);
    g_autofree char *script = g_strdup_printf("echo $PPID >'%s'", file);
    int early = 0;
    long early_ppid = 0;
    for (int i = 0; i < DETACHED_ROUNDS; i++) {
        unlink(file);
        gboolean child = TRUE;
        pid_t pid = spawn_sh(script, -1, TRUE, &child);
        assert_false(child);
        assert_int_equal(wait_exit_status(pid), 0); /* ours to reap: we are its subreaper */
        g_autofree char *text = NULL;
        assert_true(g_file_get_contents(file, &text, NULL, NULL));
        long ppid = strtol(text, NULL, 10);
        if (ppid != (long) getpid()) {
            early++;
            early_ppid = ppid;
        }
    }
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
    if (early)
        fail_msg("%d of %d detached programs ran while their parent was still the "
                 "intermediate process (e.g. pid %ld, not us, %ld)", early, DETACHED_ROUNDS,
                 early_ppid, (long) getpid());
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_status_and_log),
        cmocka_unit_test(test_no_descriptor_leaks),
        cmocka_unit_test(test_missing_program),
        cmocka_unit_test(test_detached_parent_is_gone),
    };
    return cmocka_run_group_tests_name("spawn", tests, setup, teardown);
}
