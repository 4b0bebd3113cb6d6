/* cli.h - shared state and helpers of the `cairn` command. */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "repo/repo.h"
#include "repo/snapshot.h"

#define CAIRN_DEFAULT_REPO "/var/lib/cairn/repo"

typedef struct {
    const char *repo_location; /* --repo, $CAIRN_REPO, default */
    const char *key_file;      /* --key-file, $CAIRN_KEY_FILE */
    int64_t lock_wait;         /* --lock-wait (seconds) */
    gboolean quiet;
    const char *command;
} CairnCli;

typedef int (*CairnCommandFunc)(CairnCli *cli, int argc, char **argv);

/* Print "cairn COMMAND: message" to stderr; returns 1 (the exit status). */
int cairn_cli_fail(CairnCli *cli, GError *error);
int cairn_cli_failf(CairnCli *cli, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* a usage error (wrong arguments or options): the message, exit status 2 */
int cairn_cli_usage(CairnCli *cli, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* "no snapshot named NAME (did you mean ...)": exit status 1 */
int cairn_cli_no_snapshot_named(CairnCli *cli, CairnRepo *repo, const char *name);
/* "cairn COMMAND: warning: LINE SUFFIX" for each of lines (char*), such as
 * the snapshots a listing left out as unreadable; suffix may be "" */
void cairn_cli_warn_each(CairnCli *cli, GPtrArray *lines, const char *suffix);
/* cairn_snapshot_resolve(), damaged snapshots it left out printed as warnings */
CairnSnapshot *cairn_cli_resolve(CairnCli *cli, CairnRepo *repo, const char *spec,
                                 GError **error);
/* Parse a command's options; prints the error/usage itself. */
gboolean cairn_cli_parse(CairnCli *cli, GOptionContext *ctx, int *argc, char ***argv);
CairnRepo *cairn_cli_open_repo(CairnCli *cli, GError **error);
/* a configured remote (name) or URL, opened as a repository */
CairnRepo *cairn_cli_open_remote_repo(CairnCli *cli, const char *remote, GError **error);
/* The snapshot 'spec' and the repository to restore it from: the local
 * repository; or with 'from' (a remote's name or URL) the remote's snapshot,
 * pulled first into the local repository (created when absent; only what
 * it lacks is copied, verified) and read there, or with 'no_cache' read
 * straight from the remote. */
CairnSnapshot *cairn_cli_open_snapshot(CairnCli *cli, const char *from, gboolean no_cache,
                                       const char *spec, CairnRepo **ret_repo, GError **error);
/* Block SIGINT, SIGTERM and SIGHUP in this (still single) thread, so in every
 * thread started later, and return a non-blocking signalfd for them (-1 and
 * errno on failure). They are handled even when inherited as ignored. */
int cairn_cli_signalfd(void);
/* Print a JSON value on stdout, followed by a newline. */
void cairn_cli_print_json(json_t *value);
/* "1a2b3c4d5e6f" short id */
char *cairn_cli_short_id(const CairnId *id);
json_t *cairn_cli_snapshot_json(CairnSnapshot *s);
/* The disk TARGET of a snapshot; NULL after reporting the disks it has. */
const CairnManifestDisk *cairn_cli_find_disk(CairnCli *cli, CairnSnapshot *s, const char *spec,
                                             const char *target);
/* terminal progress on stderr (no-op when stderr is no tty or --quiet) */
typedef struct {
    CairnCli *cli;
    const char *label;
    gint64 start_us, last_us;
    gboolean active;
    int fd; /* $CAIRN_PROGRESS_FD (JSON lines for cairnd), -1 = none */
} CairnCliProgress;
void cairn_cli_progress_init(CairnCliProgress *p, CairnCli *cli, const char *label);
void cairn_cli_progress_cb(uint64_t done, uint64_t total, gpointer user_data);
void cairn_cli_progress_done(CairnCliProgress *p);

int cairn_cmd_init(CairnCli *cli, int argc, char **argv);
int cairn_cmd_backup(CairnCli *cli, int argc, char **argv);
int cairn_cmd_snapshots(CairnCli *cli, int argc, char **argv);
int cairn_cmd_show(CairnCli *cli, int argc, char **argv);
int cairn_cmd_verify(CairnCli *cli, int argc, char **argv);
int cairn_cmd_prune(CairnCli *cli, int argc, char **argv);
int cairn_cmd_forget(CairnCli *cli, int argc, char **argv);
int cairn_cmd_gc(CairnCli *cli, int argc, char **argv);
int cairn_cmd_cat(CairnCli *cli, int argc, char **argv);
int cairn_cmd_restore_disk(CairnCli *cli, int argc, char **argv);
int cairn_cmd_push(CairnCli *cli, int argc, char **argv);
int cairn_cmd_restore(CairnCli *cli, int argc, char **argv);
int cairn_cmd_serve(CairnCli *cli, int argc, char **argv);
int cairn_cmd_pull(CairnCli *cli, int argc, char **argv);
int cairn_cmd_remote(CairnCli *cli, int argc, char **argv);
int cairn_cmd_status(CairnCli *cli, int argc, char **argv);
int cairn_cmd_jobs(CairnCli *cli, int argc, char **argv);
int cairn_cmd_run(CairnCli *cli, int argc, char **argv);
int cairn_cmd_cancel(CairnCli *cli, int argc, char **argv);
int cairn_cmd_policy(CairnCli *cli, int argc, char **argv);
