/* instant.c - instant recovery: NBD-backed overlays, start, block pull.
 *
 * The pull is waited for on libvirt's event loop, never by sleeping: the
 * block-job events say when each disk is complete, a pidfd per nbdkit says
 * when a server dies, the caller's signalfd says when to give up waiting;
 * a one-second timer reports progress and, should an event be lost, finds a
 * job that is gone. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "repo/index.h"
#include "restore/in-use.h"
#include "restore/instant.h"
#include "restore/serve.h"

#define RUN_BASE "/run/cairn/instant"
#define DEFAULT_QEMU_USER "libvirt-qemu"

typedef enum { PULL_WAITING, PULL_RUNNING, PULL_DONE, PULL_FAILED } PullState;

typedef struct {
    const CairnManifestDisk *md;
    char *overlay, *socket, *pidfile, *log;
    CairnServer *server;
    int exit_watch;         /* libvirt event handle on the server's pidfd, or -1 */
    char *server_died;      /* how, once it died */
    PullState state;
    char *why;              /* of PULL_FAILED */
    CairnServeOptions start;  /* how its server starts (in a thread) */
    GThread *starter;
    GError *start_error;
    gboolean overlay_created;
    unsigned long long cur, end;
} InstantDisk;

typedef struct {
    const CairnInstantOptions *o;
    virDomainPtr dom;
    InstantDisk *disks;
    guint n, pending;
    gboolean interrupted;
    gboolean stopped; /* the domain is gone: no pull is started any more */
} Pull;

void
cairn_instant_result_clear(CairnInstantResult *r)
{
    g_free(r->name);
    g_free(r->xml_path);
    g_free(r->run_dir);
    if (r->notes)
        g_ptr_array_unref(r->notes);
    if (r->disks)
        json_decref(r->disks);
    memset(r, 0, sizeof *r);
}

static double
since(gint64 t0)
{
    return (double) (g_get_monotonic_time() - t0) / 1e6;
}

static gboolean
interrupted(const CairnInstantOptions *o, GError **error)
{
    struct signalfd_siginfo si;
    if (o->signal_fd < 0 || read(o->signal_fd, &si, sizeof si) != sizeof si)
        return FALSE;
    g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                "interrupted (%s) before the domain started; nothing was left behind",
                g_strsignal((int) si.ssi_signo));
    return TRUE;
}

/* the run directory, private to root and QEMU's group; a leftover of a
 * finished or failed run is cleared, a live one refused */
static gboolean
prepare_run_dir(const char *dir, const struct passwd *qemu, GError **error)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *text = NULL;
        if (g_str_has_suffix(name, ".pid") && g_file_get_contents(path, &text, NULL, NULL)) {
            int pid = atoi(text);
            g_autofree char *comm_path = g_strdup_printf("/proc/%d/comm", pid);
            g_autofree char *comm = NULL;
            if (pid > 0 && g_file_get_contents(comm_path, &comm, NULL, NULL) &&
                g_str_has_prefix(comm, "nbdkit")) {
                g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_EXISTS,
                            "an NBD server of an earlier instant restore still serves from '%s' "
                            "(nbdkit pid %d): if its domain no longer needs it (virsh "
                            "domblklist, virsh blockjob), stop it with 'kill %d'", dir, pid, pid);
                return FALSE;
            }
        }
        unlink(path);
    }
    /* parents: QEMU may pass through, not list */
    g_autofree char *parent = g_path_get_dirname(dir);
    if (!cairn_mkdir_p(parent, 0711, error) || !cairn_mkdir_p(dir, 0750, error))
        return FALSE;
    if (chmod(parent, 0711) != 0 || chmod(dir, 0750) != 0 ||
        (qemu && chown(dir, 0, qemu->pw_gid) != 0)) {
        cairn_set_errno(error, errno, "cannot set the owner of", dir);
        return FALSE;
    }
    return TRUE;
}

static gboolean
run_tool(char **argv, char **ret_out, GError **error)
{
    g_autofree char *out = NULL, *err = NULL;
    int status = 0;
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, error))
        return FALSE;
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_autofree char *msg = cairn_tool_message("qemu-img", err);
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED, "qemu-img %s: %s",
                    argv[1], msg);
        return FALSE;
    }
    if (ret_out)
        *ret_out = g_steal_pointer(&out);
    return TRUE;
}

/* replaces an existing file (checked by the caller) */
static gboolean
create_overlay(InstantDisk *d, const char *uri, GError **error)
{
    unlink(d->overlay);
    g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, d->md->virtual_size);
    /* -u: do not open the backing now; -F raw: the export is the raw disk */
    char *argv[] = { (char *) CAIRN_QEMU_IMG, (char *) "create", (char *) "-q", (char *) "-f",
                     (char *) "qcow2", (char *) "-F", (char *) "raw", (char *) "-b",
                     (char *) uri, (char *) "-u", d->overlay, size, NULL };
    return run_tool(argv, NULL, error);
}

/* the overlay's header names no backing file any more */
static gboolean
overlay_is_standalone(const char *path, GError **error)
{
    char *argv[] = { (char *) CAIRN_QEMU_IMG, (char *) "info", (char *) "-U",
                     (char *) "--output=json", (char *) path, NULL };
    g_autofree char *out = NULL;
    if (!run_tool(argv, &out, error))
        return FALSE;
    g_autoptr(CairnJson) j = json_loads(out, 0, NULL);
    if (j && !json_object_get(j, "backing-filename"))
        return TRUE;
    g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                "the overlay '%s' still has a backing file after the pull", path);
    return FALSE;
}

/* the live definition still references an NBD (network) backing store */
static gboolean
references_network(virDomainPtr dom, const char *target, gboolean *ret_refs, GError **error)
{
    char *xml = virDomainGetXMLDesc(dom, 0);
    xmlDocPtr doc = xml ? xmlReadMemory(xml, (int) strlen(xml), "d.xml", NULL,
                                        XML_PARSE_NONET | XML_PARSE_NOERROR) : NULL;
    free(xml);
    if (!doc) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                    "cannot read the domain's XML: %s", virGetLastErrorMessage());
        return FALSE;
    }
    g_autofree char *expr = g_strdup_printf(
        "/domain/devices/disk[target/@dev='%s']//backingStore[@type='network']", target);
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *) expr, ctx);
    *ret_refs = o && o->nodesetval && o->nodesetval->nodeNr > 0;
    xmlXPathFreeObject(o);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return TRUE;
}

static void start_next_pull(Pull *p);

static void
pull_finish(Pull *p, InstantDisk *d, PullState state, const char *why)
{
    if (d->state != PULL_RUNNING && d->state != PULL_WAITING)
        return;
    gboolean was_running = d->state == PULL_RUNNING;
    d->state = state;
    d->why = g_strdup(why);
    if (state == PULL_DONE)
        d->cur = d->end;
    p->pending--;
    if (was_running)
        start_next_pull(p);
}

/* One pull at a time: QEMU 7.2 changes the block graph when a stream job
 * completes, and with a second job running it crashed now and then
 * (segfault in bdrv_refresh_filename, seen in ~1 of 15 two-disk instant
 * restores). The next disk starts at the completion event of the last. */
static void
start_next_pull(Pull *p)
{
    if (p->stopped)
        return;
    for (guint i = 0; i < p->n; i++) {
        InstantDisk *d = &p->disks[i];
        if (d->state != PULL_WAITING)
            continue;
        d->state = PULL_RUNNING;
        if (virDomainBlockPull(p->dom, d->md->target, 0, 0) < 0)
            pull_finish(p, d, PULL_FAILED, virGetLastErrorMessage()); /* starts the next */
        return;
    }
}

static void
on_block_job(virConnectPtr conn, virDomainPtr dom, const char *disk, int type, int status,
             void *opaque)
{
    Pull *p = opaque;
    if (type != VIR_DOMAIN_BLOCK_JOB_TYPE_PULL)
        return;
    for (guint i = 0; i < p->n; i++) {
        if (strcmp(p->disks[i].md->target, disk) != 0)
            continue;
        if (status == VIR_DOMAIN_BLOCK_JOB_COMPLETED)
            pull_finish(p, &p->disks[i], PULL_DONE, NULL);
        else if (status == VIR_DOMAIN_BLOCK_JOB_FAILED)
            pull_finish(p, &p->disks[i], PULL_FAILED, "the block pull failed");
        else if (status == VIR_DOMAIN_BLOCK_JOB_CANCELED)
            pull_finish(p, &p->disks[i], PULL_FAILED, "the block pull was cancelled");
    }
}

static void
on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    Pull *p = opaque;
    if (event != VIR_DOMAIN_EVENT_STOPPED && event != VIR_DOMAIN_EVENT_CRASHED)
        return;
    const char *why = event == VIR_DOMAIN_EVENT_CRASHED ||
                              detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED
                          ? "the domain crashed during the pull (see its QEMU log)"
                          : "the domain stopped during the pull";
    p->stopped = TRUE;
    for (guint i = 0; i < p->n; i++)
        pull_finish(p, &p->disks[i], PULL_FAILED, why);
}

static void
on_server_exit(int watch, int fd, int events, void *opaque)
{
    InstantDisk *d = opaque;
    g_autofree char *how = NULL;
    if (!cairn_server_exited(d->server, &how))
        return;
    d->server_died = g_steal_pointer(&how);
    virEventRemoveHandle(watch);
    d->exit_watch = -1;
}

static void
on_signal(int watch, int fd, int events, void *opaque)
{
    Pull *p = opaque;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) == sizeof si)
        p->interrupted = TRUE;
}

/* progress, and a job gone without its event */
static void
on_tick(int timer, void *opaque)
{
    Pull *p = opaque;
    uint64_t cur = 0, end = 0;
    if (p->pending > 0 && virDomainIsActive(p->dom) == 0)
        on_lifecycle(NULL, p->dom, VIR_DOMAIN_EVENT_STOPPED, -1, p);
    for (guint i = 0; i < p->n; i++) {
        InstantDisk *d = &p->disks[i];
        if (d->state == PULL_RUNNING) {
            virDomainBlockJobInfo info;
            int r = virDomainGetBlockJobInfo(p->dom, d->md->target, &info, 0);
            if (r == 1) {
                d->cur = info.cur;
                d->end = info.end;
            } else if (r == 0) {
                gboolean refs = TRUE;
                if (references_network(p->dom, d->md->target, &refs, NULL))
                    pull_finish(p, d, refs ? PULL_FAILED : PULL_DONE,
                                refs ? "the block pull ended without completing" : NULL);
            }
            virResetLastError();
        }
        cur += d->cur;
        end += d->end ? d->end : d->md->virtual_size;
    }
    if (p->o->base.progress)
        p->o->base.progress(cur, end, p->o->data);
}

static gboolean
pull_all(Pull *p, virConnectPtr conn, GError **error)
{
    int cb = virConnectDomainEventRegisterAny(conn, p->dom, VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
                                              VIR_DOMAIN_EVENT_CALLBACK(on_block_job), p, NULL);
    if (cb < 0) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                    "cannot watch the domain's block jobs: %s", virGetLastErrorMessage());
        return FALSE;
    }
    int life = virConnectDomainEventRegisterAny(conn, p->dom, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), p, NULL);
    int sig_watch = p->o->signal_fd >= 0
                        ? virEventAddHandle(p->o->signal_fd, VIR_EVENT_HANDLE_READABLE,
                                            on_signal, p, NULL)
                        : -1;
    int timer = virEventAddTimeout(1000, on_tick, p, NULL);
    for (guint i = 0; i < p->n; i++) {
        InstantDisk *d = &p->disks[i];
        d->exit_watch = virEventAddHandle(cairn_server_exit_fd(d->server),
                                          VIR_EVENT_HANDLE_READABLE, on_server_exit, d, NULL);
        d->state = PULL_WAITING;
        p->pending++;
    }
    start_next_pull(p);
    while (p->pending > 0 && !p->interrupted)
        if (virEventRunDefaultImpl() < 0)
            break;
    /* interrupted: libvirt copies the rest without cairn, all at once */
    for (guint i = 0; p->interrupted && !p->stopped && i < p->n; i++) {
        InstantDisk *d = &p->disks[i];
        if (d->state != PULL_WAITING)
            continue;
        d->state = PULL_RUNNING;
        if (virDomainBlockPull(p->dom, d->md->target, 0, 0) < 0)
            pull_finish(p, d, PULL_FAILED, virGetLastErrorMessage());
    }
    virEventRemoveTimeout(timer);
    if (sig_watch >= 0)
        virEventRemoveHandle(sig_watch);
    for (guint i = 0; i < p->n; i++)
        if (p->disks[i].exit_watch >= 0) {
            virEventRemoveHandle(p->disks[i].exit_watch);
            p->disks[i].exit_watch = -1;
        }
    virConnectDomainEventDeregisterAny(conn, cb);
    if (life >= 0)
        virConnectDomainEventDeregisterAny(conn, life);
    on_tick(-1, p); /* the final progress */
    return TRUE;
}

/* a done disk: verified free of its NBD backing, and its server stopped */
static void
finish_disk(Pull *p, InstantDisk *d)
{
    g_autoptr(GError) gerr = NULL;
    gboolean refs = TRUE;
    if (!references_network(p->dom, d->md->target, &refs, &gerr) ||
        (refs && (gerr = g_error_new(CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                                     "the domain still references its NBD backing"))) ||
        !overlay_is_standalone(d->overlay, &gerr)) {
        d->state = PULL_FAILED;
        d->why = g_strdup(gerr->message);
        return;
    }
    if (d->server && !cairn_server_stop(d->server, &gerr)) {
        /* the copy is complete: a server that did not stop cleanly is a note */
        d->why = g_strdup(gerr->message);
    } else {
        unlink(d->log);
    }
}

static void
instant_disk_clear(InstantDisk *d)
{
    cairn_server_free(d->server);
    g_free(d->overlay);
    g_free(d->socket);
    g_free(d->pidfile);
    g_free(d->log);
    g_free(d->server_died);
    g_free(d->why);
    g_clear_error(&d->start_error);
}

/* the plugin's message about a corrupt or missing object in a server log
 * (the first), without nbdkit's prefix; NULL when there is none */
static char *
damaged_object(const char *log)
{
    g_autofree char *text = NULL;
    if (!log || !g_file_get_contents(log, &text, NULL, NULL))
        return NULL;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
        const char *obj = strstr(lines[i], "object ");
        if (obj && (strstr(obj, " is corrupt") || strstr(obj, " is missing")))
            return g_strdup(obj);
    }
    return NULL;
}

/* the message of a pull that did not complete: what is left and what to do */
static char *
describe_failures(Pull *p, CairnInstantResult *r, const char *snap_hex)
{
    g_autoptr(GString) s = g_string_new(NULL);
    if (virDomainIsActive(p->dom) == 0)
        g_string_append_printf(s, "domain '%s' stopped before its disks were copied: its "
                               "overlays still need their NBD servers;", r->name);
    else if (p->interrupted)
        g_string_append_printf(s, "interrupted while the disks were being copied: domain "
                               "'%s' runs on, and libvirt goes on copying;", r->name);
    else
        g_string_append_printf(s, "domain '%s' runs, but not every disk was copied:", r->name);
    for (guint i = 0; i < p->n; i++) {
        InstantDisk *d = &p->disks[i];
        g_autofree char *damage = NULL;
        if (d->state == PULL_DONE)
            continue;
        g_string_append_printf(s, " disk %s%s%s", d->md->target, d->why ? ": " : "",
                               d->why ? d->why : "");
        g_string_append(s, d->why ? "; " : ": ");
        if (d->server_died)
            g_string_append_printf(s, "its NBD server (nbdkit) %s, so its unread parts fail "
                                   "with I/O errors until a server listens on '%s' again ('cairn "
                                   "serve %s %s --socket %s --socket-owner %s', QEMU reconnects), "
                                   "then run 'virsh blockpull %s %s --wait'", d->server_died,
                                   d->socket, snap_hex, d->md->target, d->socket,
                                   p->o->qemu_user ? p->o->qemu_user : DEFAULT_QEMU_USER,
                                   r->name, d->md->target);
        else if ((damage = damaged_object(d->log)))
            g_string_append_printf(s, "the snapshot is damaged (%s), so no pull of this disk "
                                   "can complete: restore it from another snapshot (cairn "
                                   "verify --read-data lists the damaged objects and the "
                                   "snapshots they affect); its NBD server keeps serving the "
                                   "rest (nbdkit pid %d, log %s)", damage,
                                   (int) cairn_server_pid(d->server), d->log);
        else
            g_string_append_printf(s, "its NBD server keeps serving (nbdkit pid %d, log %s): "
                                   "run 'virsh blockpull %s %s --wait' if no job runs ('virsh "
                                   "blockjob %s %s --info'), then 'kill %d'",
                                   (int) cairn_server_pid(d->server), d->log, r->name,
                                   d->md->target, r->name, d->md->target,
                                   (int) cairn_server_pid(d->server));
        g_string_append_c(s, ';');
    }
    if (s->len && s->str[s->len - 1] == ';')
        g_string_truncate(s, s->len - 1);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static gpointer
start_thread(gpointer data)
{
    InstantDisk *d = data;
    d->server = cairn_server_start(&d->start, &d->start_error);
    return NULL;
}

gboolean
cairn_restore_instant(CairnRepo *repo, CairnSnapshot *snap, const CairnInstantOptions *o,
                      CairnInstantResult *r, GError **error)
{
    memset(r, 0, sizeof *r);
    r->notes = g_ptr_array_new_with_free_func(g_free);
    r->disks = json_array();
    gint64 t0 = g_get_monotonic_time();
    const CairnRestoreOptions *b = &o->base;
    CairnManifest *m = snap->manifest;
    r->name = g_strdup(b->name ? b->name : m->name);
    char hex[CAIRN_ID_HEX_LEN + 1];
    cairn_id_to_hex(&snap->id, hex);
    if (!m->has_domain_xml) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "snapshot of '%s' has no domain XML (it was backed up from image files): "
                    "serve its disks with 'cairn serve'", m->name);
        return FALSE;
    }
    for (guint i = 0; b->disks && b->disks[i]; i++)
        if (!cairn_manifest_find_disk(m, b->disks[i])) {
            g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                        "the snapshot has no disk '%s'", b->disks[i]);
            return FALSE;
        }
    g_autoptr(GBytes) xmlb = cairn_repo_get(repo, &m->domain_xml, NULL, error);
    if (!xmlb)
        return FALSE;
    g_autofree char *xml = g_strndup(g_bytes_get_data(xmlb, NULL), g_bytes_get_size(xmlb));
    const char *quser = o->qemu_user ? o->qemu_user : DEFAULT_QEMU_USER;
    struct passwd *qemu = geteuid() == 0 ? getpwnam(quser) : NULL;

    /* block-job events need the event loop registered before connecting */
    virEventRegisterDefaultImpl();
    virConnectPtr conn = cairn_restore_connect(b->uri, error);
    if (!conn)
        return FALSE;
    gboolean ok = FALSE, started = FALSE, made_dir = FALSE;
    g_autofree char *newxml = NULL;
    gint64 t1 = 0;
    Pull p = { .o = o };
    g_autofree InstantDisk *disks = g_new0(InstantDisk, m->disks->len);
    g_autoptr(GHashTable) files = g_hash_table_new(g_str_hash, g_str_equal);
    g_autofree char *dir = b->dir ? g_strdup(b->dir)
                                  : g_build_filename("/var/lib/libvirt/images", r->name, NULL);
    r->run_dir = o->run_dir ? g_strdup(o->run_dir) : g_build_filename(RUN_BASE, r->name, NULL);
    /* a server and an overlay per disk; the servers start in parallel */
    for (guint i = 0; i < m->disks->len; i++) {
        CairnManifestDisk *md = m->disks->pdata[i];
        if (b->disks && !g_strv_contains((const char *const *) b->disks, md->target))
            continue;
        InstantDisk *d = &disks[p.n++];
        d->md = md;
        d->exit_watch = -1;
        d->overlay = g_strdup_printf("%s/%s-%s.qcow2", dir, r->name, md->target);
        d->socket = g_strdup_printf("%s/%s.sock", r->run_dir, md->target);
        d->pidfile = g_strdup_printf("%s/%s.pid", r->run_dir, md->target);
        d->log = g_strdup_printf("%s/%s.log", r->run_dir, md->target);
        d->start = (CairnServeOptions) { .repo = o->repo_arg, .key_file = o->key_file,
                                         .snapshot = hex, .disk = md->target,
                                         .socket = d->socket, .pidfile = d->pidfile,
                                         .log_file = d->log,
                                         .socket_owner = qemu ? quser : NULL,
                                         .lock_wait = o->lock_wait, .detach = TRUE,
                                         /* QEMU's stream job copies every extent it
                                          * knows to be zero (reading it over NBD):
                                          * holes it knows nothing of stay
                                          * unallocated, and read as zeros once the
                                          * overlay has no backing */
                                         .holes_unknown = TRUE };
    }
    g_autoptr(GPtrArray) paths = g_ptr_array_new();
    for (guint i = 0; i < p.n; i++)
        g_ptr_array_add(paths, disks[i].overlay);
    g_ptr_array_add(paths, NULL);
    if (!cairn_restore_check_name(conn, r->name, b->force, (const char *const *) paths->pdata,
                                  error) ||
        (b->keep_uuid && !cairn_restore_check_uuid(conn, m->uuid, r->name, error)))
        goto out;
    for (guint i = 0; i < p.n; i++)
        if (!cairn_restore_check_replace(conn, b->uri, disks[i].overlay, b->force, r->notes,
                                         error))
            goto out;
    made_dir = !g_file_test(dir, G_FILE_TEST_IS_DIR);
    if (!cairn_mkdir_p(dir, 0755, error) || !prepare_run_dir(r->run_dir, qemu, error) ||
        interrupted(o, error))
        goto out;
    for (guint i = 0; i < p.n; i++)
        disks[i].starter = g_thread_new("cairn-serve-start", start_thread, &disks[i]);
    for (guint i = 0; i < p.n; i++) {
        g_thread_join(g_steal_pointer(&disks[i].starter));
        if (!disks[i].server && error && !*error)
            g_propagate_prefixed_error(error, g_steal_pointer(&disks[i].start_error),
                                       "disk %s: ", disks[i].md->target);
    }
    for (guint i = 0; i < p.n; i++) {
        InstantDisk *d = &disks[i];
        if (!d->server || interrupted(o, error))
            goto out;
        d->overlay_created = TRUE;
        if (!create_overlay(d, cairn_server_uri(d->server), error))
            goto out;
        g_hash_table_insert(files, d->md->target, d->overlay);
    }
    if (p.n == 0) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "the snapshot has no disk to restore");
        goto out;
    }

    newxml = cairn_restore_write_xml(conn, b->uri, xml, r->name, m->name, b->keep_uuid,
                                     b->keep_mac, files, "qcow2", dir, r->notes, &r->xml_path,
                                     error);
    if (!newxml || interrupted(o, error))
        goto out;
    if (!(p.dom = cairn_restore_define(conn, r->name, newxml, r->xml_path, r->notes, error)))
        goto out;
    if (virDomainCreate(p.dom) < 0) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                    "domain '%s' did not start on its overlays: %s (its definition was removed)",
                    r->name, virGetLastErrorMessage());
        virDomainUndefine(p.dom);
        goto out;
    }
    started = r->started = TRUE;
    r->running_seconds = since(t0);
    if (o->running)
        o->running(r->name, r->running_seconds, o->data);

    t1 = g_get_monotonic_time();
    p.disks = disks;
    if (!pull_all(&p, conn, error))
        goto out;
    gboolean all = !p.interrupted;
    for (guint i = 0; i < p.n; i++) {
        InstantDisk *d = &disks[i];
        if (d->state == PULL_DONE)
            finish_disk(&p, d);
        if (d->state == PULL_DONE && d->why)
            g_ptr_array_add(r->notes, g_strdup_printf("disk %s: %s", d->md->target, d->why));
        all = all && d->state == PULL_DONE;
    }
    r->pull_seconds = since(t1);
    r->pulled = all;
    if (!all) {
        g_autofree char *msg = describe_failures(&p, r, hex);
        g_set_error_literal(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED, msg);
        goto out;
    }
    ok = TRUE;
out:
    for (guint i = 0; i < p.n; i++) {
        InstantDisk *d = &disks[i];
        json_array_append_new(r->disks, json_pack("{s:s, s:s, s:s, s:I, s:b}", "target",
            d->md->target, "file", d->overlay, "socket", d->socket, "virtual_size",
            (json_int_t) d->md->virtual_size, "pulled", d->state == PULL_DONE));
        if (started && d->server && d->state != PULL_DONE)
            cairn_server_abandon(d->server); /* the running domain still reads from it */
        else if (!started && d->overlay_created)
            unlink(d->overlay);
        cairn_server_free(g_steal_pointer(&d->server)); /* stopped: its log is complete */
        struct stat st;
        if (!started && d->log && stat(d->log, &st) == 0 && st.st_size == 0)
            unlink(d->log); /* a log with nothing to say */
        instant_disk_clear(d);
    }
    if (ok || !started)
        rmdir(r->run_dir); /* only when empty: logs of failures stay */
    if (!ok && !started && made_dir)
        rmdir(dir); /* only when empty */
    if (p.dom)
        virDomainFree(p.dom);
    virConnectClose(conn);
    r->seconds = since(t0);
    return ok;
}
