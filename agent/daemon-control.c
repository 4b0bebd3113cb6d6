/* daemon-control.c - cairnd's control socket: a unix stream socket
 * ($CAIRN_RUN_DIR/cairnd.sock) where a client sends one JSON object on one
 * line and reads one JSON object back:
 *
 *   {"command": "status"}                  policies, entries, jobs
 *   {"command": "jobs"}                    queued, running and recent jobs
 *   {"command": "run", "target": NAME}     back up a policy's domains, or a domain, now
 *   {"command": "cancel", "job": ID}
 *   {"command": "reload"}                  as SIGHUP
 *
 * Replies carry "ok": true, or "ok": false and "error". The socket is
 * connectable by anyone so that a non-root user gets a clear refusal; the
 * peer's uid (SO_PEERCRED) must be 0 or cairnd's own. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gio/gunixsocketaddress.h>

#include "agent/daemon.h"
#include "common/cleanup.h"
#include "common/util.h"

#define REQUEST_MAX 65536

typedef struct {
    CairnDaemon *d;
    GSocketConnection *conn;
    GDataInputStream *in;
    char *refusal; /* set: answer the request with this error */
} Client;

static void
client_free(Client *c)
{
    g_object_unref(c->in);
    g_object_unref(c->conn);
    g_free(c->refusal);
    g_free(c);
}

static json_t *
error_reply(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static json_t *
error_reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return json_pack("{s:b, s:s}", "ok", FALSE, "error", msg);
}

json_t *
cairn_daemon_status_json(CairnDaemon *d)
{
    json_t *errors = json_array();
    for (guint i = 0; d->policy_errors && i < d->policy_errors->len; i++)
        json_array_append_new(errors, json_string(((GError *) d->policy_errors->pdata[i])->message));
    json_t *jobs = json_array();
    for (guint i = 0; i < d->jobs->len; i++)
        json_array_append_new(jobs, cairn_daemon_job_json(d->jobs->pdata[i]));
    json_t *daemon = json_pack(
        "{s:i, s:s, s:I, s:s, s:s, s:i, s:i, s:I, s:o}", "pid", (int) getpid(), "version",
        PACKAGE_VERSION, "started", (json_int_t) d->started, "repository", d->cfg.repo,
        "socket", d->cfg.socket_path, "max_jobs", (int) d->cfg.max_jobs, "running",
        (int) cairn_daemon_running(d), "policies_loaded", (json_int_t) d->loaded_at,
        "policy_errors", errors);
    if (d->libvirt_error)
        json_object_set_new(daemon, "libvirt_error", json_string(d->libvirt_error));
    if (d->space_problem)
        json_object_set_new(daemon, "space_problem", json_string(d->space_problem));
    if (d->cfg.metrics_path)
        json_object_set_new(daemon, "metrics", json_string(d->cfg.metrics_path));
    return json_pack("{s:b, s:o, s:o, s:o}", "ok", TRUE, "daemon", daemon, "policies",
                     cairn_daemon_policies_json(d), "jobs", jobs);
}

/* a manual backup of a domain under a policy: the job queued or running
 * for it, unless that one took its snapshot already; its id goes to ids */
static void
run_backup(CairnDaemon *d, const char *policy, const char *domain, json_t *ids)
{
    CairnDaemonJob *j = cairn_daemon_find_active(d, JOB_BACKUP, policy, domain);
    if (!j || cairn_daemon_job_snapshot_taken(j))
        j = cairn_daemon_queue(d, JOB_BACKUP, policy, domain, "manual", cairn_now());
    j->ignore_window = TRUE;
    json_array_append_new(ids, json_integer(j->id));
}

static json_t *
do_run(CairnDaemon *d, const char *target)
{
    if (!target || !*target)
        return error_reply("run: give a policy or a domain");
    json_t *ids = json_array();
    const CairnPolicy *p = cairn_daemon_find_policy(d, target);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < d->policies->len; i++)
        g_ptr_array_add(names, g_strdup(((CairnPolicy *) d->policies->pdata[i])->name));
    if (p) {
        g_autoptr(GPtrArray) doms = cairn_daemon_policy_domains(d, p);
        if (doms->len == 0) {
            json_decref(ids);
            return error_reply("policy '%s' covers no domain %s", target,
                               d->domains_known ? "on this host"
                                                : "yet: libvirt has not been listed");
        }
        for (guint i = 0; i < doms->len; i++)
            run_backup(d, p->name, doms->pdata[i], ids);
    } else {
        /* a domain: the first policy (by file name) that covers it */
        for (guint i = 0; i < d->policies->len && !json_array_size(ids); i++) {
            const CairnPolicy *q = d->policies->pdata[i];
            g_autoptr(GPtrArray) doms = cairn_daemon_policy_domains(d, q);
            for (guint k = 0; k < doms->len; k++) {
                if (strcmp(doms->pdata[k], target))
                    continue;
                run_backup(d, q->name, target, ids);
                break;
            }
        }
        if (!json_array_size(ids)) {
            json_decref(ids);
            g_ptr_array_add(names, NULL);
            const char *dym = cairn_closest(target, (const char *const *) names->pdata);
            return error_reply("'%s' is neither a policy nor a domain that a policy covers%s%s%s "
                               "(cairn status lists both)", target,
                               dym ? " (did you mean '" : "", dym ? dym : "", dym ? "'?)" : "");
        }
    }
    cairn_daemon_dispatch(d);
    return json_pack("{s:b, s:o}", "ok", TRUE, "jobs", ids);
}

static json_t *
handle(CairnDaemon *d, json_t *req)
{
    const char *cmd = json_string_value(json_object_get(req, "command"));
    if (!cmd)
        return error_reply("the request has no \"command\"");
    if (!strcmp(cmd, "status"))
        return cairn_daemon_status_json(d);
    if (!strcmp(cmd, "jobs")) {
        json_t *jobs = json_array();
        for (guint i = 0; i < d->jobs->len; i++)
            json_array_append_new(jobs, cairn_daemon_job_json(d->jobs->pdata[i]));
        return json_pack("{s:b, s:o}", "ok", TRUE, "jobs", jobs);
    }
    if (!strcmp(cmd, "run"))
        return do_run(d, json_string_value(json_object_get(req, "target")));
    if (!strcmp(cmd, "cancel")) {
        json_t *id = json_object_get(req, "job");
        CairnDaemonJob *j = json_is_integer(id)
                                ? cairn_daemon_find_job(d, (guint) json_integer_value(id))
                                : NULL;
        if (!j)
            return error_reply("no job %" JSON_INTEGER_FORMAT " (cairn jobs lists them)",
                               json_is_integer(id) ? json_integer_value(id) : -1);
        if (!cairn_daemon_cancel(d, j, "cancelled by cairn cancel"))
            return error_reply("job %u is already %s", j->id,
                               cairn_daemon_job_state_name(j->state));
        return json_pack("{s:b, s:i}", "ok", TRUE, "job", (int) j->id);
    }
    if (!strcmp(cmd, "reload")) {
        gboolean ok = cairn_daemon_load_policies(d, FALSE);
        cairn_daemon_wake(d, 0);
        json_t *r = cairn_daemon_status_json(d);
        json_object_set_new(r, "reloaded", json_boolean(ok));
        return r;
    }
    return error_reply("unknown command '%s' (status, jobs, run, cancel, reload)", cmd);
}

static void
reply(Client *c, json_t *r)
{
    g_autofree char *text = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    g_autofree char *line = g_strconcat(text ? text : "{\"ok\":false}", "\n", NULL);
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(c->conn));
    /* replies are small and the client waits for them: a blocking write
     * with the socket's timeout */
    g_output_stream_write_all(out, line, strlen(line), NULL, NULL, NULL);
    g_io_stream_close(G_IO_STREAM(c->conn), NULL, NULL);
    client_free(c);
}

static void
line_read(GObject *source, GAsyncResult *res, gpointer data)
{
    Client *c = data;
    gsize len = 0;
    g_autoptr(GError) gerr = NULL;
    g_autofree char *line = g_data_input_stream_read_line_finish_utf8(
        G_DATA_INPUT_STREAM(source), res, &len, &gerr);
    if (!line) {
        client_free(c);
        return;
    }
    if (c->refusal) {
        /* the request is read first: closing on unread data would reset
         * the connection before the client reads why */
        reply(c, error_reply("%s", c->refusal));
        return;
    }
    json_error_t jerr;
    g_autoptr(CairnJson) req = json_loads(line, 0, &jerr);
    if (!json_is_object(req)) {
        reply(c, error_reply("the request is not a JSON object: %s", jerr.text));
        return;
    }
    reply(c, handle(c->d, req));
}

static gboolean
on_incoming(GSocketService *service, GSocketConnection *conn, GObject *source, gpointer data)
{
    CairnDaemon *d = data;
    GSocket *sock = g_socket_connection_get_socket(conn);
    struct ucred cred;
    socklen_t len = sizeof cred;
    Client *c = g_new0(Client, 1);
    c->d = d;
    c->conn = g_object_ref(conn);
    c->in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
    g_socket_set_timeout(sock, 10);
    if (getsockopt(g_socket_get_fd(sock), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        reply(c, error_reply("cannot identify the client: %s", g_strerror(errno)));
        return TRUE;
    }
    if (cred.uid != 0 && cred.uid != geteuid()) {
        cairn_daemon_log(G_LOG_LEVEL_WARNING, NULL, NULL, 0,
                         "control socket: refused uid %u (pid %d): root only", cred.uid,
                         (int) cred.pid);
        c->refusal = g_strdup_printf("permission denied: cairnd answers root only (you are "
                                     "uid %u); run the command with sudo", cred.uid);
    }
    g_buffered_input_stream_set_buffer_size(G_BUFFERED_INPUT_STREAM(c->in), REQUEST_MAX);
    g_data_input_stream_read_line_async(c->in, G_PRIORITY_DEFAULT, NULL, line_read, c);
    (void) service;
    (void) source;
    return TRUE;
}

gboolean
cairn_daemon_control_start(CairnDaemon *d, GError **error)
{
    const char *path = d->cfg.socket_path;
    g_autofree char *dir = g_path_get_dirname(path);
    if (!cairn_mkdir_p(dir, 0755, error))
        return FALSE;
    /* a socket left by a killed cairnd is replaced; a live one is not */
    if (g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_autoptr(GSocketClient) cl = g_socket_client_new();
        g_autoptr(GSocketAddress) a = g_unix_socket_address_new(path);
        g_autoptr(GSocketConnection) probe =
            g_socket_client_connect(cl, G_SOCKET_CONNECTABLE(a), NULL, NULL);
        if (probe) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                        "another cairnd is running: %s answers (stop it first, e.g. "
                        "'systemctl stop cairnd')", path);
            return FALSE;
        }
        unlink(path);
    }
    d->control = g_socket_service_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    mode_t old = umask(0);
    gboolean ok = g_socket_listener_add_address(G_SOCKET_LISTENER(d->control), addr,
                                                G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                                                NULL, NULL, error);
    umask(old);
    if (!ok) {
        g_prefix_error(error, "cannot listen on %s: ", path);
        g_clear_object(&d->control);
        return FALSE;
    }
    g_signal_connect(d->control, "incoming", G_CALLBACK(on_incoming), d);
    g_socket_service_start(d->control);
    return TRUE;
}

void
cairn_daemon_control_stop(CairnDaemon *d)
{
    if (!d->control)
        return;
    g_socket_service_stop(d->control);
    g_socket_listener_close(G_SOCKET_LISTENER(d->control));
    g_clear_object(&d->control);
    unlink(d->cfg.socket_path);
}
