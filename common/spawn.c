/* spawn.c - start a program as a child or detached (see spawn.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/spawn.h"
#include "common/util.h"

/* In a forked child (only async-signal-safe calls): stdio set up, every
 * other descriptor closed (so that no pipe end of a parallel start is held
 * here), then, when gate >= 0, wait for EOF on it. */
static void
exec_child(char **argv, char **env, int null, int log_fd, int gate)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    if (log_fd >= 0)
        dup2(log_fd, 2);
    dup2(null, 0);
    dup2(null, 1); /* stdout is the caller's */
    if (gate >= 0) {
        dup2(gate, 3);
        close_range(4, ~0U, 0);
        char c;
        while (read(3, &c, 1) < 0 && errno == EINTR)
            ;
        close(3);
    } else {
        close_range(3, ~0U, 0);
    }
    execve(argv[0], argv, env);
    _exit(127);
}

static void
close_pipes(int p[2], int gate[2])
{
    for (int i = 0; i < 2; i++) {
        if (p[i] >= 0)
            close(p[i]);
        if (gate[i] >= 0)
            close(gate[i]);
    }
}

pid_t
cairn_spawn(char **argv, char **env, int log_fd, gboolean detach, gboolean *ret_child,
            GError **error)
{
    g_return_val_if_fail(argv && argv[0] && ret_child, -1);
    cairn_autofd null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) {
        cairn_set_errno(error, errno, "cannot open", "/dev/null");
        return -1;
    }
    int p[2] = { -1, -1 };    /* the grandchild's pid, from the intermediate */
    int gate[2] = { -1, -1 }; /* EOF once the intermediate has been reaped */
    if (detach && (pipe2(p, O_CLOEXEC) < 0 || pipe2(gate, O_CLOEXEC) < 0)) {
        cairn_set_errno(error, errno, "cannot start", argv[0]);
        close_pipes(p, gate);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        cairn_set_errno(error, errno, "cannot start", argv[0]);
        close_pipes(p, gate);
        return -1;
    }
    if (pid == 0 && !detach)
        exec_child(argv, env, null, log_fd, -1);
    if (pid == 0) {
        setsid();
        pid_t g = fork();
        if (g == 0)
            exec_child(argv, env, null, log_fd, gate[0]);
        if (write(p[1], &g, sizeof g) != sizeof g)
            _exit(1);
        _exit(g > 0 ? 0 : 1);
    }
    *ret_child = !detach;
    if (!detach)
        return pid;
    close(p[1]);
    close(gate[0]);
    pid_t g = -1;
    ssize_t n;
    while ((n = read(p[0], &g, sizeof g)) < 0 && errno == EINTR)
        ;
    close(p[0]);
    /* The gate opens only once the intermediate is reaped. Its exit closes
     * its descriptors before its children are handed to a new parent: a
     * grandchild let go by the EOF alone could run the program, which may
     * set a parent-death signal while the dying intermediate is still its
     * parent, and be killed by it a moment later. */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    close(gate[1]);
    if (n != sizeof g || g <= 0) {
        g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_IO,
                    "cannot start '%s' in a session of its own", argv[0]);
        return -1;
    }
    return g;
}
