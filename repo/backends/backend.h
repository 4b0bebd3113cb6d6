/* backend.h - the storage plug-in interface (DESIGN.md invariant 5).
 *
 * A backend stores opaque values under '/'-separated keys, object-store
 * style: "config", "objects/ab/ab12...", "snapshots/<id>", "locks/<id>".
 * Implementations embed CairnBackend as their first member 'base'.
 * Every operation is safe to call from several threads at once. */
#pragma once

#include <glib.h>
#include <stdint.h>

#define CAIRN_BACKEND_ERROR (cairn_backend_error_quark())
GQuark cairn_backend_error_quark(void);

typedef enum {
    CAIRN_BACKEND_ERROR_NOT_FOUND,  /* key or repository does not exist */
    CAIRN_BACKEND_ERROR_IO,         /* local I/O failure */
    CAIRN_BACKEND_ERROR_NOSPACE,    /* storage full */
    CAIRN_BACKEND_ERROR_PERMISSION, /* access denied, bad credentials */
    CAIRN_BACKEND_ERROR_NETWORK,    /* remote unreachable, timeouts after retries */
    CAIRN_BACKEND_ERROR_INVALID,    /* bad location/URL or configuration */
} CairnBackendError;

typedef enum {
    CAIRN_PUT_IF_ABSENT, /* keep an existing value; report it as not created */
    CAIRN_PUT_REPLACE,   /* atomically replace */
} CairnPutMode;

typedef struct {
    char *key;      /* full key, e.g. "objects/ab/ab12..." */
    uint64_t size;  /* stored bytes */
    int64_t mtime;  /* unix seconds of the last write */
} CairnBackendEntry;

void cairn_backend_entry_free(CairnBackendEntry *e);

typedef struct CairnBackend CairnBackend;

typedef struct {
    const char *kind; /* "local", "memory", "s3" */
    /* NOT_FOUND when the key does not exist */
    GBytes *(*get)(CairnBackend *b, const char *key, GError **error);
    /* whole value visible atomically, durable once flush() returns */
    gboolean (*put)(CairnBackend *b, const char *key, const void *data, size_t len,
                    CairnPutMode mode, gboolean *ret_created, GError **error);
    gboolean (*exists)(CairnBackend *b, const char *key, gboolean *ret_exists, GError **error);
    /* entries whose key starts with prefix, in no particular order */
    GPtrArray *(*list)(CairnBackend *b, const char *prefix, GError **error);
    /* removing a missing key is not an error */
    gboolean (*remove)(CairnBackend *b, const char *key, GError **error);
    /* make every put that returned so far durable */
    gboolean (*flush)(CairnBackend *b, GError **error);
    /* remove leftovers of interrupted writes older than max_age seconds */
    gboolean (*cleanup)(CairnBackend *b, int64_t max_age, guint *ret_removed, GError **error);
    void (*free)(CairnBackend *b);
} CairnBackendOps;

struct CairnBackend {
    const CairnBackendOps *ops;
    char *location; /* for messages: a path or URL */
};

/* Open the backend for a location: a path or file:// URL. */
CairnBackend *cairn_backend_open(const char *location, gboolean create, GError **error);
CairnBackend *cairn_backend_local_new(const char *path, gboolean create, GError **error);
CairnBackend *cairn_backend_memory_new(void);

/* Thin wrappers over ops, NULL-safe free. */
GBytes *cairn_backend_get(CairnBackend *b, const char *key, GError **error);
gboolean cairn_backend_put(CairnBackend *b, const char *key, const void *data, size_t len,
                           CairnPutMode mode, gboolean *ret_created, GError **error);
gboolean cairn_backend_exists(CairnBackend *b, const char *key, gboolean *ret_exists,
                              GError **error);
GPtrArray *cairn_backend_list(CairnBackend *b, const char *prefix, GError **error);
gboolean cairn_backend_remove(CairnBackend *b, const char *key, GError **error);
gboolean cairn_backend_flush(CairnBackend *b, GError **error);
gboolean cairn_backend_cleanup(CairnBackend *b, int64_t max_age, guint *ret_removed,
                               GError **error);
void cairn_backend_free(CairnBackend *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnBackend, cairn_backend_free)
