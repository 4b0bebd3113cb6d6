/* serve.c - start, watch and stop an nbdkit running the cairn plugin.
 *
 * Readiness is waited for, never slept for: inotify on the pid file's
 * directory (nbdkit writes the pid file once it listens) together with a
 * pidfd (nbdkit exiting early), then one NBD handshake, which nbdkit
 * answers only after the plugin's .after_fork took its repository lock. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libnbd.h>

#include "common/cleanup.h"
#include "common/spawn.h"
#include "common/util.h"
#include "restore/serve.h"

#define PLUGIN_NAME "nbdkit-cairn-plugin.so"
#define STOP_TIMEOUT_MS 10000

struct CairnServer {
    pid_t pid;
    int pidfd;
    gboolean child;     /* our child (not detached): its status can be had */
    gboolean gone;      /* it exited (and was reaped when our child) */
    int status;         /* wait status once reaped, -1 when unknown */
    char *uri;
    char *socket;       /* NULL for TCP */
    char *pidfile;
    char *tmpdir;       /* private dir of a temporary pid file, or NULL */
    gboolean abandoned;
};

char *
cairn_nbdkit_plugin_path(GError **error)
{
    const char *env = g_getenv("CAIRN_NBDKIT_PLUGIN");
    if (env && *env) {
        if (access(env, R_OK) == 0)
            return g_strdup(env);
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "cannot read the nbdkit plugin '%s' named by $CAIRN_NBDKIT_PLUGIN", env);
        return NULL;
    }
    g_autofree char *exe = g_file_read_link("/proc/self/exe", NULL);
    if (exe) {
        g_autofree char *dir = g_path_get_dirname(exe);
        g_autofree char *p = g_build_filename(dir, ".libs", PLUGIN_NAME, NULL);
        if (access(p, R_OK) == 0)
            return g_steal_pointer(&p);
    }
    g_autofree char *inst = g_build_filename(CAIRN_PKGLIBDIR, PLUGIN_NAME, NULL);
    if (access(inst, R_OK) == 0)
        return g_steal_pointer(&inst);
    g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                "cannot find the nbdkit plugin '%s' (looked beside the cairn binary in .libs/ "
                "and in " CAIRN_PKGLIBDIR "): run 'make install', or set $CAIRN_NBDKIT_PLUGIN",
                inst);
    return NULL;
}

#ifdef __SANITIZE_ADDRESS__
/* An instrumented plugin loads into nbdkit only with the ASan runtime
 * preloaded: the one this (instrumented) process uses. Leak checking is
 * off there: it reports nbdkit's own (uninstrumented) allocations. */
static int
find_asan(struct dl_phdr_info *info, size_t size, void *data)
{
    if (info->dlpi_name && strstr(info->dlpi_name, "/libasan.so")) {
        *(char **) data = g_strdup(info->dlpi_name);
        return 1;
    }
    return 0;
}
#endif

static char **
child_environ(void)
{
    char **env = g_get_environ();
#ifdef __SANITIZE_ADDRESS__
    char *asan = NULL;
    dl_iterate_phdr(find_asan, &asan);
    if (asan) {
        const char *opts = g_environ_getenv(env, "ASAN_OPTIONS");
        g_autofree char *nleak = g_strconcat(opts ? opts : "", opts ? ":" : "",
                                             "detect_leaks=0", NULL);
        env = g_environ_setenv(env, "LD_PRELOAD", asan, TRUE);
        env = g_environ_setenv(env, "ASAN_OPTIONS", nleak, TRUE);
    }
    g_free(asan);
#endif
    return env;
}

/* A stale socket of a server that is gone is removed; a live one or another
 * kind of file is an error. */
static gboolean
clear_socket_path(const char *path, GError **error)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return TRUE;
    if (!S_ISSOCK(st.st_mode)) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_EXISTS,
                    "'%s' exists and is not a socket: choose another --socket", path);
        return FALSE;
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "socket path '%s' is too long (at most %zu bytes)", path,
                    sizeof sa.sun_path - 1);
        return FALSE;
    }
    strcpy(sa.sun_path, path);
    cairn_autofd fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_EXISTS,
                    "a server already listens on '%s': stop it or choose another --socket", path);
        return FALSE;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        cairn_set_errno(error, errno, "cannot remove the stale socket", path);
        return FALSE;
    }
    return TRUE;
}

static char *
describe_status(int status)
{
    if (status == -1)
        return g_strdup("exited");
    if (WIFEXITED(status))
        return g_strdup_printf("exited with status %d", WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return g_strdup_printf("was killed by signal %d (%s)", WTERMSIG(status),
                               g_strsignal(WTERMSIG(status)));
    return g_strdup("stopped");
}

static gboolean
pidfd_readable(int pidfd, int timeout_ms)
{
    struct pollfd pf = { .fd = pidfd, .events = POLLIN };
    int r;
    while ((r = poll(&pf, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    return r > 0;
}

gboolean
cairn_server_exited(CairnServer *s, char **ret_how)
{
    if (!s->gone) {
        if (s->child) {
            int st;
            if (waitpid(s->pid, &st, WNOHANG) != s->pid)
                return FALSE;
            s->status = st;
        } else if (!pidfd_readable(s->pidfd, 0)) {
            return FALSE;
        }
        s->gone = TRUE;
    }
    if (ret_how)
        *ret_how = describe_status(s->status);
    return TRUE;
}

static void
remove_files(CairnServer *s)
{
    if (s->socket)
        unlink(s->socket);
    if (s->pidfile)
        unlink(s->pidfile);
    if (s->tmpdir)
        rmdir(s->tmpdir);
}

/* last lines of nbdkit's log, for an error message */
static char *
log_tail(const char *log_file)
{
    g_autofree char *text = NULL;
    if (!log_file || !g_file_get_contents(log_file, &text, NULL, NULL) || !*text)
        return g_strdup("");
    g_strchomp(text);
    const char *p = text + strlen(text);
    for (int lines = 0; p > text && lines < 4; p--)
        if (p[-1] == '\n' && ++lines == 4)
            break;
    g_autofree char *one = g_strdelimit(g_strdup(p), "\n", ' ');
    return g_strdup_printf(": %s", one);
}

/* Start nbdkit; detached, it is a grandchild in a session of its own whose
 * parent has been reaped before it runs: nbdkit 1.32 sets a parent-death
 * signal for itself (even without --exit-with-parent), which must not fire
 * when we exit. *ret_child: it is our child. */
static pid_t
spawn(char **argv, char **env, const char *log_file, gboolean detach, gboolean *ret_child,
      GError **error)
{
    cairn_autofd logfd = -1;
    if (log_file &&
        (logfd = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)) < 0) {
        cairn_set_errno(error, errno, "cannot open the server log", log_file);
        return -1;
    }
    return cairn_spawn(argv, env, logfd, detach, ret_child, error);
}

/* wait until the pid file holds a pid, nbdkit exits, or the timeout */
static gboolean
wait_pidfile(CairnServer *s, int ifd, const char *log_file, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + 120 * G_TIME_SPAN_SECOND;
    for (;;) {
        g_autofree char *text = NULL;
        if (g_file_get_contents(s->pidfile, &text, NULL, NULL) && atoi(text) > 0)
            return TRUE;
        g_autofree char *how = NULL;
        if (cairn_server_exited(s, &how)) {
            g_autofree char *tail = log_tail(log_file);
            g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                        "nbdkit %s before serving%s", how, tail);
            return FALSE;
        }
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0) {
            g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                        "nbdkit (pid %d) did not start listening within 120 s", (int) s->pid);
            return FALSE;
        }
        struct pollfd pf[2] = { { .fd = ifd, .events = POLLIN },
                                { .fd = s->pidfd, .events = POLLIN } };
        if (poll(pf, 2, (int) left) < 0 && errno != EINTR) {
            cairn_set_errno(error, errno, "cannot wait for", "nbdkit");
            return FALSE;
        }
        char buf[4096];
        while (read(ifd, buf, sizeof buf) > 0)
            ;
    }
}

/* one NBD handshake: the plugin is ready and its export has a size */
static gboolean
handshake(CairnServer *s, const char *disk, GError **error)
{
    struct nbd_handle *h = nbd_create();
    gboolean ok = h && nbd_connect_uri(h, s->uri) == 0 && nbd_get_size(h) >= 0;
    if (!ok) {
        g_autofree char *why = g_strdup(nbd_get_error() ? nbd_get_error() : "unknown error");
        g_autofree char *how = NULL;
        if (h)
            nbd_close(h);
        /* most likely nbdkit stopped (say, a repository lock it could not take) */
        struct pollfd pf = { .fd = s->pidfd, .events = POLLIN };
        poll(&pf, 1, 2000);
        cairn_server_exited(s, &how);
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                    "the export of %s at '%s' does not answer: %s%s%s", disk, s->uri, why,
                    how ? "; nbdkit " : "", how ? how : "");
        return FALSE;
    }
    nbd_shutdown(h, 0);
    nbd_close(h);
    return TRUE;
}

static gboolean
chown_socket(const char *path, const char *user, GError **error)
{
    struct passwd pwbuf, *pw = NULL;
    char buf[4096];
    if (getpwnam_r(user, &pwbuf, buf, sizeof buf, &pw) != 0 || !pw) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "no user '%s' to give the socket '%s' to", user, path);
        return FALSE;
    }
    if (chown(path, pw->pw_uid, pw->pw_gid) != 0 || chmod(path, 0660) != 0) {
        cairn_set_errno(error, errno, "cannot give the socket to its user", path);
        return FALSE;
    }
    return TRUE;
}

CairnServer *
cairn_server_start(const CairnServeOptions *o, GError **error)
{
    g_autofree char *plugin = cairn_nbdkit_plugin_path(error);
    if (!plugin)
        return NULL;
    if (o->socket && !clear_socket_path(o->socket, error))
        return NULL;
    g_autoptr(CairnServer) s = g_new0(CairnServer, 1);
    s->pidfd = -1;
    s->status = -1;
    if (o->pidfile) {
        s->pidfile = g_strdup(o->pidfile);
    } else {
        if (!(s->tmpdir = g_dir_make_tmp("cairn-serve-XXXXXX", NULL))) {
            cairn_set_errno(error, errno, "cannot create a directory in", g_get_tmp_dir());
            return NULL;
        }
        s->pidfile = g_build_filename(s->tmpdir, "nbdkit.pid", NULL);
    }
    unlink(s->pidfile);
    g_autofree char *pdir = g_path_get_dirname(s->pidfile);
    cairn_autofd ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd < 0 || inotify_add_watch(ifd, pdir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
        cairn_set_errno(error, errno, "cannot watch", pdir);
        return NULL;
    }

    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(argv, g_strdup(CAIRN_NBDKIT));
    g_ptr_array_add(argv, g_strdup("--foreground"));
    g_ptr_array_add(argv, g_strdup("--readonly"));
    if (!o->detach)
        g_ptr_array_add(argv, g_strdup("--exit-with-parent"));
    g_ptr_array_add(argv, g_strdup_printf("--exportname=%s", o->disk));
    g_ptr_array_add(argv, g_strdup_printf("--pidfile=%s", s->pidfile));
    if (o->socket) {
        g_ptr_array_add(argv, g_strdup_printf("--unix=%s", o->socket));
        s->socket = g_strdup(o->socket);
        g_autofree char *esc = g_uri_escape_string(o->socket, "/", FALSE);
        s->uri = g_strdup_printf("nbd+unix:///%s?socket=%s", o->disk, esc);
    } else {
        g_ptr_array_add(argv, g_strdup_printf("--port=%u", o->port));
        g_ptr_array_add(argv, g_strdup("--ipaddr=127.0.0.1"));
        s->uri = g_strdup_printf("nbd://127.0.0.1:%u/%s", o->port, o->disk);
    }
    g_ptr_array_add(argv, g_strdup(plugin));
    g_ptr_array_add(argv, g_strdup_printf("repo=%s", o->repo));
    g_ptr_array_add(argv, g_strdup_printf("snapshot=%s", o->snapshot));
    g_ptr_array_add(argv, g_strdup_printf("disk=%s", o->disk));
    if (o->key_file)
        g_ptr_array_add(argv, g_strdup_printf("key_file=%s", o->key_file));
    g_ptr_array_add(argv, g_strdup_printf("lock_wait=%" G_GINT64_FORMAT, o->lock_wait));
    if (o->holes_unknown)
        g_ptr_array_add(argv, g_strdup("holes=unknown"));
    g_ptr_array_add(argv, NULL);
    g_auto(GStrv) env = child_environ();

    s->pid = spawn((char **) argv->pdata, env, o->log_file, o->detach, &s->child, error);
    if (s->pid < 0) {
        s->gone = TRUE;
        return NULL;
    }
    /* a detached grandchild may in theory be gone (and its pid reused)
     * already: then it never writes its pid file and the timeout says so */
    if ((s->pidfd = (int) syscall(SYS_pidfd_open, s->pid, 0)) < 0) {
        if (errno != ESRCH) {
            cairn_set_errno(error, errno, "cannot watch", "nbdkit");
            return NULL;
        }
        s->gone = TRUE;
    }
    if (!wait_pidfile(s, ifd, o->log_file, error) || !handshake(s, o->disk, error))
        return NULL;
    if (o->socket && o->socket_owner && !chown_socket(o->socket, o->socket_owner, error))
        return NULL;
    return g_steal_pointer(&s);
}

const char *
cairn_server_uri(CairnServer *s)
{
    return s->uri;
}

pid_t
cairn_server_pid(CairnServer *s)
{
    return s->pid;
}

int
cairn_server_exit_fd(CairnServer *s)
{
    return s->pidfd;
}

gboolean
cairn_server_stop(CairnServer *s, GError **error)
{
    gboolean signalled = FALSE;
    if (!cairn_server_exited(s, NULL)) {
        syscall(SYS_pidfd_send_signal, s->pidfd, SIGTERM, NULL, 0);
        signalled = TRUE;
        if (!pidfd_readable(s->pidfd, STOP_TIMEOUT_MS))
            syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
        if (s->child)
            while (waitpid(s->pid, &s->status, 0) < 0 && errno == EINTR)
                ;
        else
            pidfd_readable(s->pidfd, -1);
        s->gone = TRUE;
    }
    remove_files(s);
    /* stopped by our SIGTERM: a clean exit or death by that signal */
    if (s->status == -1 || (WIFEXITED(s->status) && WEXITSTATUS(s->status) == 0) ||
        (signalled && WIFSIGNALED(s->status) && WTERMSIG(s->status) == SIGTERM))
        return TRUE;
    g_autofree char *how = describe_status(s->status);
    g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                "nbdkit serving '%s' %s", s->uri, how);
    return FALSE;
}

void
cairn_server_abandon(CairnServer *s)
{
    s->abandoned = TRUE;
}

void
cairn_server_free(CairnServer *s)
{
    if (!s)
        return;
    if (!s->abandoned)
        cairn_server_stop(s, NULL);
    if (s->pidfd >= 0)
        close(s->pidfd);
    g_free(s->uri);
    g_free(s->socket);
    g_free(s->pidfile);
    g_free(s->tmpdir);
    g_free(s);
}
