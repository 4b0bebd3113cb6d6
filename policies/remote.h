/* remote.h - remote repositories: $CAIRN_CONFIG_DIR/remotes.d/NAME.conf
 * (default /etc/cairn), or a URL given directly.
 *
 *   [remote]
 *   url = s3://BUCKET/PREFIX        # or file:///mnt/offsite/repo
 *   endpoint = https://s3.eu-central-1.amazonaws.com
 *   region = eu-central-1
 *   style = virtual                 # or path (default for non-AWS endpoints)
 *   credentials = /etc/cairn/remotes.d/NAME.credentials   # mode 0600
 *   ca_file = /etc/ssl/certs/my-ca.pem
 *   insecure = false                # never skip TLS verification unless told
 *   parallel = 8                    # objects in flight during push/pull
 *   bwlimit = 50M                   # bytes per second during push/pull
 *
 * The credentials file holds
 *   [credentials]
 *   access_key = ...
 *   secret_key = ...
 * and is refused when readable by group or others. Without one, the
 * environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) is used. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "repo/backends/backend.h"

#define CAIRN_POLICY_ERROR (cairn_policy_error_quark())
GQuark cairn_policy_error_quark(void);

typedef enum {
    CAIRN_POLICY_ERROR_NOT_FOUND, /* no such remote/policy */
    CAIRN_POLICY_ERROR_INVALID,   /* malformed file: the message has file:line */
    CAIRN_POLICY_ERROR_INSECURE,  /* credentials readable by others */
} CairnPolicyError;

typedef struct {
    char *name;        /* NULL for a URL given directly */
    char *path;        /* the .conf file */
    char *url;
    char *endpoint, *region, *style, *credentials, *ca_file;
    gboolean insecure;
    guint parallel;
    uint64_t bwlimit;  /* bytes/s, 0 = unlimited */
} CairnRemote;

void cairn_remote_free(CairnRemote *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnRemote, cairn_remote_free)

/* $CAIRN_CONFIG_DIR or /etc/cairn */
const char *cairn_config_dir(void);
/* A configured remote by name, or a URL (file://, s3://) as an ad-hoc remote. */
CairnRemote *cairn_remote_lookup(const char *name_or_url, GError **error);
CairnRemote *cairn_remote_load_file(const char *path, const char *name, GError **error);
/* Names of all configured remotes, sorted. */
GPtrArray *cairn_remote_list(GError **error);
/* Write remotes.d/NAME.conf (refuses to overwrite unless force). */
gboolean cairn_remote_save(const CairnRemote *r, gboolean force, GError **error);
/* TRUE when 'location' names a configured remote rather than a path/URL. */
gboolean cairn_remote_is_name(const char *location);
/* Open the remote's storage backend. */
CairnBackend *cairn_remote_open_backend(const CairnRemote *r, gboolean create, GError **error);
