/* workspace.c - per-domain locks and job directories. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <grp.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/virt.h"
#include "agent/workspace.h"
#include "common/cleanup.h"
#include "common/util.h"

const char *
cairn_run_dir(void)
{
    const char *d = g_getenv("CAIRN_RUN_DIR");
    return d && *d ? d : "/run/cairn";
}

struct CairnDomainLock {
    int fd;
    char *path;
};

CairnDomainLock *
cairn_domain_lock(const char *uuid, const char *name, GError **error)
{
    g_autofree char *dir = g_build_filename(cairn_run_dir(), "locks", NULL);
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_FAILED,
                    "cannot create '%s': %s (cairn needs root for live backups)", dir,
                    g_strerror(errno));
        return NULL;
    }
    g_autofree char *path = g_strdup_printf("%s/%s.lock", dir, uuid);
    cairn_autofd fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_FAILED, "cannot open '%s': %s",
                    path, g_strerror(errno));
        return NULL;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        if (n > 0)
            pid[n] = '\0';
        g_strchomp(pid);
        g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_BUSY,
                    "a backup of domain '%s' is already running%s%s%s: wait for it to finish",
                    name, *pid ? " (cairn pid " : "", pid, *pid ? ")" : "");
        return NULL;
    }
    g_autofree char *mine = g_strdup_printf("%d\n", (int) getpid());
    if (ftruncate(fd, 0) == 0)
        (void) !pwrite(fd, mine, strlen(mine), 0);
    CairnDomainLock *l = g_new0(CairnDomainLock, 1);
    l->fd = cairn_steal_fd(&fd);
    l->path = g_steal_pointer(&path);
    return l;
}

void
cairn_domain_unlock(CairnDomainLock *l)
{
    if (!l)
        return;
    if (ftruncate(l->fd, 0) < 0) {
        /* only the pid hint is stale: harmless */
    }
    close(l->fd); /* releases the flock */
    g_free(l->path);
    g_free(l);
}

void
cairn_qemu_user(uid_t *ret_uid, gid_t *ret_gid)
{
    g_autofree char *user = NULL, *group = NULL;
    g_autofree char *conf = NULL;
    if (g_file_get_contents("/etc/libvirt/qemu.conf", &conf, NULL, NULL)) {
        g_auto(GStrv) lines = g_strsplit(conf, "\n", -1);
        for (guint i = 0; lines[i]; i++) {
            char *l = g_strstrip(lines[i]);
            char **slot = g_str_has_prefix(l, "user") ? &user
                        : g_str_has_prefix(l, "group") ? &group : NULL;
            char *q1 = strchr(l, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
            if (slot && q2 && strchr(l, '=') && strchr(l, '=') < q1) {
                g_free(*slot);
                *slot = g_strndup(q1 + 1, q2 - q1 - 1);
            }
        }
    }
    struct passwd *pw = getpwnam(user ? user : "libvirt-qemu");
    *ret_uid = pw ? pw->pw_uid : 0;
    *ret_gid = pw ? pw->pw_gid : 0;
    if (group) {
        struct group *gr = getgrnam(group);
        if (gr)
            *ret_gid = gr->gr_gid;
    }
}

static guint
empty_dir(const char *dir)
{
    guint n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}

const char *
cairn_scratch_base(void)
{
    const char *d = g_getenv("CAIRN_SCRATCH_DIR");
    return d && *d ? d : "/var/lib/cairn/scratch";
}

char *
cairn_job_dir_prepare(const char *base, const char *uuid, guint *ret_leftovers, GError **error)
{
    g_autofree char *dir = g_build_filename(base, uuid, NULL);
    if (g_mkdir_with_parents(dir, 0750) < 0) {
        g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_FAILED,
                    "cannot create job directory '%s': %s (live backups need root)", dir,
                    g_strerror(errno));
        return NULL;
    }
    guint n = empty_dir(dir);
    if (ret_leftovers)
        *ret_leftovers = n;
    uid_t uid;
    gid_t gid;
    cairn_qemu_user(&uid, &gid);
    /* QEMU creates the NBD socket and the scratch files in here */
    if (chown(dir, uid, gid) < 0 || chmod(dir, 0750) < 0) {
        g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_FAILED,
                    "cannot hand job directory '%s' to the QEMU user: %s", dir,
                    g_strerror(errno));
        return NULL;
    }
    /* QEMU must be able to reach it: base and cairn's own directories above
     * it (e.g. /run/cairn, /var/lib/cairn, created 0700 elsewhere) get o+x */
    chmod(base, 0755);
    for (g_autofree char *up = g_path_get_dirname(base); strstr(up, "cairn");) {
        struct stat st;
        if (stat(up, &st) == 0 && (st.st_mode & 0011) != 0011)
            chmod(up, (st.st_mode & 07777) | 0011);
        char *next = g_path_get_dirname(up);
        g_free(up);
        up = next;
    }
    return g_steal_pointer(&dir);
}

void
cairn_job_dir_remove(const char *dir)
{
    if (!dir)
        return;
    empty_dir(dir);
    rmdir(dir);
}
