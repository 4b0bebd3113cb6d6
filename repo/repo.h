/* repo.h - the content-addressed image store.
 *
 * A repository holds immutable objects named by the SHA-256 of their
 * content (HMAC-SHA-256 under the repository's id key when encrypted), plus
 * mutable refs: one small file per published snapshot, locks, the config.
 * The byte layouts are in docs/repository-format.md. */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#include "repo/backends/backend.h"

#define CAIRN_REPO_ERROR (cairn_repo_error_quark())
GQuark cairn_repo_error_quark(void);

typedef enum {
    CAIRN_REPO_ERROR_NOT_A_REPO,   /* no config at the location */
    CAIRN_REPO_ERROR_EXISTS,       /* init over an existing repository */
    CAIRN_REPO_ERROR_NEWER_FORMAT, /* written by a newer cairn */
    CAIRN_REPO_ERROR_NEED_KEY,     /* encrypted, no key given */
    CAIRN_REPO_ERROR_WRONG_KEY,    /* key check failed */
    CAIRN_REPO_ERROR_CORRUPT,      /* an object fails its hash, tag or format */
    CAIRN_REPO_ERROR_MISSING,      /* a referenced object does not exist */
    CAIRN_REPO_ERROR_LOCKED,       /* a conflicting lock is held */
    CAIRN_REPO_ERROR_NOT_FOUND,    /* no snapshot matches */
    CAIRN_REPO_ERROR_AMBIGUOUS,    /* an abbreviated id matches several */
    CAIRN_REPO_ERROR_INVALID,      /* bad argument or malformed input */
    CAIRN_REPO_ERROR_FAILED,       /* an operation gave up (e.g. a sync whose target is down) */
} CairnRepoError;

#define CAIRN_REPO_FORMAT_VERSION 1
#define CAIRN_ID_LEN 32
#define CAIRN_ID_HEX_LEN 64
#define CAIRN_CHUNK_SIZE_MIN (64u * 1024)
#define CAIRN_CHUNK_SIZE_MAX (16u * 1024 * 1024)
#define CAIRN_CHUNK_SIZE_DEFAULT (1u * 1024 * 1024)

typedef struct {
    uint8_t b[CAIRN_ID_LEN];
} CairnId;

typedef enum {
    CAIRN_OBJECT_CHUNK = 1,
    CAIRN_OBJECT_INDEX = 2,
    CAIRN_OBJECT_BLOB = 3,
    CAIRN_OBJECT_MANIFEST = 4,
} CairnObjectType;

const char *cairn_object_type_name(CairnObjectType t);

static inline bool
cairn_id_is_zero(const CairnId *id)
{
    for (int i = 0; i < CAIRN_ID_LEN; i++)
        if (id->b[i])
            return false;
    return true;
}
static inline bool
cairn_id_equal(const CairnId *a, const CairnId *b)
{
    return memcmp(a->b, b->b, CAIRN_ID_LEN) == 0;
}
/* hex into buf[CAIRN_ID_HEX_LEN + 1]; returns buf */
char *cairn_id_to_hex(const CairnId *id, char *buf);
gboolean cairn_id_from_hex(const char *hex, CairnId *ret_id);
guint cairn_id_hash(gconstpointer id);           /* for GHashTable of CairnId* */
gboolean cairn_id_equal_func(gconstpointer a, gconstpointer b);
/* backend key of an object: "objects/ab/ab12..." */
char *cairn_object_key(const CairnId *id);

typedef struct CairnRepo CairnRepo;

typedef struct {
    uint32_t chunk_size;    /* 0 = default */
    const char *key_file;   /* non-NULL: encrypt with the secret in this file */
    int compression_level;  /* 0 = default */
} CairnRepoInitOptions;

/* Create a repository. The location is a path or a URL. */
gboolean cairn_repo_init(const char *location, const CairnRepoInitOptions *opts, GError **error);
/* Open an existing repository; key_file is needed when encrypted. */
CairnRepo *cairn_repo_open(const char *location, const char *key_file, GError **error);
/* Same over an already opened backend: init borrows it, open takes it over. */
gboolean cairn_repo_init_backend(CairnBackend *b, const CairnRepoInitOptions *opts, GError **error);
CairnRepo *cairn_repo_open_backend(CairnBackend *b, const char *key_file, GError **error);
/* keyless_ok: an encrypted repository opens without a key for checks of
 * stored bytes only (cairn_repo_has_key() is then FALSE). */
CairnRepo *cairn_repo_open_backend_keyless(CairnBackend *b, const char *key_file,
                                           gboolean keyless_ok, GError **error);
gboolean cairn_repo_has_key(CairnRepo *repo);
void cairn_repo_free(CairnRepo *repo);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnRepo, cairn_repo_free)

CairnBackend *cairn_repo_backend(CairnRepo *repo);
const char *cairn_repo_location(CairnRepo *repo);
uint32_t cairn_repo_chunk_size(CairnRepo *repo);
gboolean cairn_repo_is_encrypted(CairnRepo *repo);
const char *cairn_repo_uuid(CairnRepo *repo);

/* Name for content: SHA-256, or HMAC-SHA-256 with the id key. */
void cairn_repo_hash(CairnRepo *repo, const void *data, size_t len, CairnId *ret_id);

/* Store content as an object unless present. *ret_new_bytes (optional) is the
 * stored size when written, 0 when it existed. Thread-safe. */
gboolean cairn_repo_put(CairnRepo *repo, CairnObjectType type, const void *data, size_t len,
                        CairnId *ret_id, uint64_t *ret_new_bytes, GError **error);
/* Same with an id computed by cairn_repo_hash() on data. */
gboolean cairn_repo_put_with_id(CairnRepo *repo, CairnObjectType type, const CairnId *id,
                                const void *data, size_t len, uint64_t *ret_new_bytes,
                                GError **error);
gboolean cairn_repo_has(CairnRepo *repo, const CairnId *id, gboolean *ret_exists, GError **error);
/* Read, authenticate, decompress and re-hash an object: CORRUPT on any mismatch,
 * MISSING when absent. ret_type optional. */
GBytes *cairn_repo_get(CairnRepo *repo, const CairnId *id, CairnObjectType *ret_type,
                       GError **error);
/* Fully decode and re-hash an object's stored bytes (with the key when
 * encrypted): what a receiving side checks before accepting an object. */
gboolean cairn_repo_verify_stored(CairnRepo *repo, const CairnId *id, const void *stored,
                                  size_t len, GError **error);
/* The config as stored (JSON text). */
const char *cairn_repo_config_text(CairnRepo *repo);
/* Make every object written so far durable (call before publishing a ref). */
gboolean cairn_repo_flush(CairnRepo *repo, GError **error);
