/* serve.h - an nbdkit running our plugin: a read-only NBD export of one
 * disk of a snapshot, served from the repository (restore/nbdkit-cairn.c).
 *
 * cairn_server_start() returns once the export answers an NBD handshake
 * (so the plugin has opened the repository, loaded the index and holds its
 * repository lock), or fails with nbdkit's exit status when it stopped
 * before. The server listens on a unix socket, or on a TCP port of
 * 127.0.0.1 only. */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>

#include "restore/restore.h"

typedef struct CairnServer CairnServer;

typedef struct {
    const char *repo;         /* repo= for the plugin: path, URL or remote name */
    const char *key_file;     /* NULL: none */
    const char *snapshot;     /* full snapshot id */
    const char *disk;         /* target, also the export name */
    const char *socket;       /* unix socket path; NULL: TCP */
    guint port;               /* with socket NULL: TCP port on 127.0.0.1 */
    const char *pidfile;      /* NULL: a private temporary one */
    const char *log_file;     /* nbdkit's stderr (appended); NULL: inherited */
    const char *socket_owner; /* chown the socket to this user once it listens */
    int64_t lock_wait;        /* seconds the plugin waits for a repository lock */
    /* TRUE: holes are reported as holes only, not as zeros (holes=unknown):
     * a QEMU block pull then skips them instead of reading their zeros */
    gboolean holes_unknown;
    /* TRUE: a session of its own (the terminal's ^C does not reach it) that
     * outlives us; FALSE: dies with us (--exit-with-parent) */
    gboolean detach;
} CairnServeOptions;

/* Where the plugin is: $CAIRN_NBDKIT_PLUGIN, else .libs/ beside our binary
 * (a build tree), else the installed pkglibdir. */
char *cairn_nbdkit_plugin_path(GError **error);

CairnServer *cairn_server_start(const CairnServeOptions *o, GError **error);
const char *cairn_server_uri(CairnServer *s);
pid_t cairn_server_pid(CairnServer *s);
/* a pidfd: readable once nbdkit has exited (for poll / event loops) */
int cairn_server_exit_fd(CairnServer *s);
/* Reap nbdkit if it has exited: TRUE and a description of how
 * ("exited with status 1", "was killed by signal 9") in *ret_how. */
gboolean cairn_server_exited(CairnServer *s, char **ret_how);
/* Stop nbdkit (SIGTERM, SIGKILL after 10 s), remove its socket and pid
 * file. FALSE when it did not exit cleanly. */
gboolean cairn_server_stop(CairnServer *s, GError **error);
/* Forget the server without stopping it (it serves on, detached). */
void cairn_server_abandon(CairnServer *s);
/* Stops it unless abandoned (NULL-safe). */
void cairn_server_free(CairnServer *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnServer, cairn_server_free)
