/* repo.c - open/init a repository; put and get verified objects. */
#include "config.h"

#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "repo/object.h"
#include "repo/repo.h"

G_DEFINE_QUARK(cairn-repo-error-quark, cairn_repo_error)

#define CONFIG_KEY "config"
#define CONFIG_FORMAT "cairn-repository"
#define DEFAULT_ZSTD_LEVEL 1 /* as Proxmox Backup Server: ~2x the speed of level 3 for a few % of size */

struct CairnRepo {
    CairnBackend *backend;
    char *uuid;
    uint32_t chunk_size;
    gboolean encrypted;
    CairnKeys keys;
    CairnObjectCodec codec;
    char *config_text;      /* as stored: copied to new push targets */
    /* remote backends: which objects exist, from one listing instead of a
     * request per object (filled on first use, then kept up to date) */
    gboolean use_known;
    GMutex known_lock;
    GHashTable *known;      /* char* object keys */
};

char *
cairn_id_to_hex(const CairnId *id, char *buf)
{
    cairn_hex_encode(id->b, CAIRN_ID_LEN, buf);
    return buf;
}

gboolean
cairn_id_from_hex(const char *hex, CairnId *ret_id)
{
    return cairn_is_hex(hex, CAIRN_ID_HEX_LEN, CAIRN_ID_HEX_LEN) &&
           cairn_hex_decode(hex, ret_id->b, CAIRN_ID_LEN);
}

guint
cairn_id_hash(gconstpointer id)
{
    guint h;
    memcpy(&h, ((const CairnId *) id)->b, sizeof h);
    return h;
}

gboolean
cairn_id_equal_func(gconstpointer a, gconstpointer b)
{
    return cairn_id_equal(a, b);
}

char *
cairn_object_key(const CairnId *id)
{
    char hex[CAIRN_ID_HEX_LEN + 1];
    cairn_id_to_hex(id, hex);
    return g_strdup_printf("objects/%.2s/%s", hex, hex);
}

static gboolean
valid_chunk_size(uint32_t cs)
{
    return cs >= CAIRN_CHUNK_SIZE_MIN && cs <= CAIRN_CHUNK_SIZE_MAX && (cs & (cs - 1)) == 0;
}

static char *
hex_of(const uint8_t *b, size_t n)
{
    char *s = g_malloc(2 * n + 1);
    cairn_hex_encode(b, n, s);
    return s;
}

gboolean
cairn_repo_init_backend(CairnBackend *backend, const CairnRepoInitOptions *opts, GError **error)
{
    uint32_t cs = opts && opts->chunk_size ? opts->chunk_size : CAIRN_CHUNK_SIZE_DEFAULT;
    if (!valid_chunk_size(cs)) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_INVALID,
                    "invalid chunk size %u: must be a power of two from 64K to 16M", cs);
        return FALSE;
    }
    gboolean exists = FALSE;
    if (!cairn_backend_exists(backend, CONFIG_KEY, &exists, error))
        return FALSE;
    if (exists) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_EXISTS,
                    "a repository already exists at '%s': nothing was changed",
                    backend->location);
        return FALSE;
    }
    /* snapshots without a config: a repository that lost its config file.
     * A new config has new keys (and an encrypted one a new salt): every
     * object there would become unreadable */
    g_autoptr(GPtrArray) refs = cairn_backend_list(backend, "snapshots/", error);
    if (!refs)
        return FALSE;
    if (refs->len > 0) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_EXISTS,
                    "'%s' holds %u snapshots of a repository whose config is missing: put its "
                    "config file back (from a copy, or a remote it was pushed to: 'cairn cat "
                    "config' there); a new one cannot read them. Nothing was changed",
                    backend->location, refs->len);
        return FALSE;
    }
    g_autofree char *uuid = g_uuid_string_random();
    g_autofree char *created = cairn_format_time_utc(cairn_now());
    int level = opts && opts->compression_level ? opts->compression_level : DEFAULT_ZSTD_LEVEL;
    g_autoptr(CairnJson) cfg = json_pack("{s:s, s:i, s:s, s:I, s:{s:s, s:i}, s:s, s:n}",
        "format", CONFIG_FORMAT, "version", CAIRN_REPO_FORMAT_VERSION, "uuid", uuid,
        "chunk_size", (json_int_t) cs, "compression", "algorithm", "zstd", "level", level,
        "created", created, "encryption");

    if (opts && opts->key_file) {
        g_autofree uint8_t *secret = NULL;
        size_t secret_len = 0;
        if (!cairn_key_file_read(opts->key_file, &secret, &secret_len, error))
            return FALSE;
        CairnKdfParams kdf;
        cairn_kdf_params_default(&kdf);
        CairnKeys keys;
        gboolean ok = cairn_keys_derive(secret, secret_len, &kdf, &keys, error);
        OPENSSL_cleanse(secret, secret_len);
        if (!ok)
            return FALSE;
        g_autofree char *salt = hex_of(kdf.salt, sizeof kdf.salt);
        g_autofree char *check = hex_of(keys.check, sizeof keys.check);
        OPENSSL_cleanse(&keys, sizeof keys);
        json_object_set_new(cfg, "encryption",
            json_pack("{s:s, s:s, s:{s:s, s:I, s:i, s:i, s:s}, s:s}",
                      "cipher", "aes-256-gcm", "names", "hmac-sha256",
                      "kdf", "algorithm", "scrypt", "n", (json_int_t) kdf.n, "r", (int) kdf.r,
                      "p", (int) kdf.p, "salt", salt, "key_check", check));
    }
    g_autofree char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
    gboolean created_now = FALSE;
    if (!cairn_backend_put(backend, CONFIG_KEY, text, strlen(text), CAIRN_PUT_IF_ABSENT,
                           &created_now, error) ||
        !cairn_backend_flush(backend, error))
        return FALSE;
    if (!created_now) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_EXISTS,
                    "a repository was created at '%s' at the same time: nothing was changed",
                    backend->location);
        return FALSE;
    }
    return TRUE;
}

/* a local directory that holds anything but a repository's own folders */
static gboolean
check_local_dir(const char *location, GError **error)
{
    const char *path = g_str_has_prefix(location, "file://") ? location + 7 : location;
    if (strstr(location, "://") && !g_str_has_prefix(location, "file://"))
        return TRUE;
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;
    static const char *const ours[] = { "config", "objects", "snapshots", "locks", "quarantine",
                                        NULL };
    while (d && (name = g_dir_read_name(d))) {
        if (g_strv_contains(ours, name) || g_str_has_prefix(name, ".tmp"))
            continue;
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_EXISTS,
                    "'%s' is not empty (it holds '%s'): create the repository in a new or empty "
                    "directory", path, name);
        return FALSE;
    }
    return TRUE;
}

gboolean
cairn_repo_init(const char *location, const CairnRepoInitOptions *opts, GError **error)
{
    if (!check_local_dir(location, error))
        return FALSE;
    g_autoptr(CairnBackend) b = cairn_backend_open(location, TRUE, error);
    return b && cairn_repo_init_backend(b, opts, error);
}

static gboolean
parse_hex_field(json_t *obj, const char *key, uint8_t *out, size_t len, const char *where,
                GError **error)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s || !cairn_hex_decode(s, out, len)) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                    "repository config at '%s': invalid or missing '%s'", where, key);
        return FALSE;
    }
    return TRUE;
}

static gboolean
setup_encryption(CairnRepo *repo, json_t *enc, const char *key_file, gboolean keyless_ok,
                 GError **error)
{
    const char *loc = repo->backend->location;
    if (!key_file && keyless_ok) {
        /* integrity checks of stored bytes only; every decode needs the key */
        repo->encrypted = TRUE;
        return TRUE;
    }
    if (!key_file) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEED_KEY,
                    "repository '%s' is encrypted: give --key-file FILE or set CAIRN_KEY_FILE",
                    loc);
        return FALSE;
    }
    const char *cipher = json_string_value(json_object_get(enc, "cipher"));
    json_t *kdfj = json_object_get(enc, "kdf");
    const char *alg = json_string_value(json_object_get(kdfj, "algorithm"));
    if (!cipher || strcmp(cipher, "aes-256-gcm") || !alg || strcmp(alg, "scrypt")) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEWER_FORMAT,
                    "repository '%s' uses encryption '%s' / kdf '%s' that this cairn does "
                    "not know: upgrade cairn", loc, cipher ? cipher : "?", alg ? alg : "?");
        return FALSE;
    }
    CairnKdfParams kdf = {
        .n = (uint64_t) json_integer_value(json_object_get(kdfj, "n")),
        .r = (uint32_t) json_integer_value(json_object_get(kdfj, "r")),
        .p = (uint32_t) json_integer_value(json_object_get(kdfj, "p")),
    };
    uint8_t check[32];
    if (!parse_hex_field(kdfj, "salt", kdf.salt, sizeof kdf.salt, loc, error) ||
        !parse_hex_field(enc, "key_check", check, sizeof check, loc, error))
        return FALSE;
    g_autofree uint8_t *secret = NULL;
    size_t secret_len = 0;
    if (!cairn_key_file_read(key_file, &secret, &secret_len, error))
        return FALSE;
    gboolean ok = cairn_keys_derive(secret, secret_len, &kdf, &repo->keys, error);
    OPENSSL_cleanse(secret, secret_len);
    if (!ok)
        return FALSE;
    if (CRYPTO_memcmp(check, repo->keys.check, sizeof check) != 0) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_WRONG_KEY,
                    "wrong key for repository '%s': key file '%s' is not the key the "
                    "repository was created with", loc, key_file);
        return FALSE;
    }
    repo->encrypted = TRUE;
    repo->codec.keys = &repo->keys;
    return TRUE;
}

CairnRepo *
cairn_repo_open_backend(CairnBackend *b, const char *key_file, GError **error)
{
    return cairn_repo_open_backend_keyless(b, key_file, FALSE, error);
}

gboolean
cairn_repo_has_key(CairnRepo *repo)
{
    return !repo->encrypted || repo->codec.keys != NULL;
}

CairnRepo *
cairn_repo_open_backend_keyless(CairnBackend *b, const char *key_file, gboolean keyless_ok,
                                GError **error)
{
    g_autoptr(CairnRepo) repo = g_new0(CairnRepo, 1);
    repo->backend = b;
    g_mutex_init(&repo->known_lock);
    const char *loc = b->location;
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GBytes) cfgb = cairn_backend_get(b, CONFIG_KEY, &gerr);
    if (!cfgb) {
        if (g_error_matches(gerr, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NOT_FOUND))
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NOT_A_REPO,
                        "'%s' is not a cairn repository (no config): create one with "
                        "'cairn --repo %s init', or point --repo/CAIRN_REPO at an existing one",
                        loc, loc);
        else
            g_propagate_error(error, g_steal_pointer(&gerr));
        return NULL;
    }
    gsize len;
    const char *text = g_bytes_get_data(cfgb, &len);
    json_error_t jerr;
    g_autoptr(CairnJson) cfg = json_loadb(text, len, 0, &jerr);
    const char *format = json_string_value(json_object_get(cfg, "format"));
    if (!cfg || !format || strcmp(format, CONFIG_FORMAT) != 0) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NOT_A_REPO,
                    "'%s' is not a cairn repository: its config is not valid (%s)", loc,
                    cfg ? "wrong format tag" : jerr.text);
        return NULL;
    }
    json_int_t version = json_integer_value(json_object_get(cfg, "version"));
    if (version > CAIRN_REPO_FORMAT_VERSION) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEWER_FORMAT,
                    "repository '%s' has format version %" JSON_INTEGER_FORMAT
                    ", this cairn (" PACKAGE_VERSION ") reads up to %d: upgrade cairn",
                    loc, version, CAIRN_REPO_FORMAT_VERSION);
        return NULL;
    }
    json_int_t cs = json_integer_value(json_object_get(cfg, "chunk_size"));
    if (version < 1 || cs <= 0 || !valid_chunk_size((uint32_t) cs)) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                    "repository config at '%s' is damaged: bad version or chunk_size", loc);
        return NULL;
    }
    repo->chunk_size = (uint32_t) cs;
    repo->uuid = g_strdup(json_string_value(json_object_get(cfg, "uuid")));
    repo->config_text = g_strndup(text, len);
    repo->use_known = strcmp(b->ops->kind, "local") != 0 && strcmp(b->ops->kind, "memory") != 0;
    json_t *comp = json_object_get(cfg, "compression");
    repo->codec.compression_level = comp ? (int) json_integer_value(json_object_get(comp, "level"))
                                         : DEFAULT_ZSTD_LEVEL;
    json_t *enc = json_object_get(cfg, "encryption");
    if (enc && json_is_object(enc) && !setup_encryption(repo, enc, key_file, keyless_ok, error))
        return NULL;
    return g_steal_pointer(&repo);
}

CairnRepo *
cairn_repo_open(const char *location, const char *key_file, GError **error)
{
    g_autoptr(GError) gerr = NULL;
    CairnBackend *b = cairn_backend_open(location, FALSE, &gerr);
    if (!b) {
        if (g_error_matches(gerr, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NOT_FOUND))
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NOT_A_REPO,
                        "no repository at '%s': create one with 'cairn --repo %s init', or "
                        "point --repo/CAIRN_REPO at an existing one", location, location);
        else
            g_propagate_error(error, g_steal_pointer(&gerr));
        return NULL;
    }
    CairnRepo *repo = cairn_repo_open_backend(b, key_file, error);
    return repo;
}

void
cairn_repo_free(CairnRepo *repo)
{
    if (!repo)
        return;
    cairn_backend_free(repo->backend);
    OPENSSL_cleanse(&repo->keys, sizeof repo->keys);
    g_free(repo->uuid);
    g_free(repo->config_text);
    if (repo->known)
        g_hash_table_unref(repo->known);
    g_mutex_clear(&repo->known_lock);
    g_free(repo);
}

CairnBackend *cairn_repo_backend(CairnRepo *repo) { return repo->backend; }
const char *cairn_repo_location(CairnRepo *repo) { return repo->backend->location; }
uint32_t cairn_repo_chunk_size(CairnRepo *repo) { return repo->chunk_size; }
gboolean cairn_repo_is_encrypted(CairnRepo *repo) { return repo->encrypted; }
const char *cairn_repo_uuid(CairnRepo *repo) { return repo->uuid; }

void
cairn_repo_hash(CairnRepo *repo, const void *data, size_t len, CairnId *ret_id)
{
    if (repo->encrypted)
        cairn_hmac_sha256(repo->keys.id, data, len, ret_id->b);
    else
        cairn_sha256(data, len, ret_id->b);
}

/* exists, from the listing cache on remote backends */
static gboolean
object_exists(CairnRepo *repo, const char *key, gboolean *ret_exists, GError **error)
{
    if (!repo->use_known)
        return cairn_backend_exists(repo->backend, key, ret_exists, error);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&repo->known_lock);
    if (!repo->known) {
        g_autoptr(GPtrArray) entries = cairn_backend_list(repo->backend, "objects/", error);
        if (!entries)
            return FALSE;
        repo->known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        for (guint i = 0; i < entries->len; i++) {
            CairnBackendEntry *e = entries->pdata[i];
            g_hash_table_add(repo->known, g_steal_pointer(&e->key));
        }
    }
    *ret_exists = g_hash_table_contains(repo->known, key);
    return TRUE;
}

static void
object_known(CairnRepo *repo, const char *key)
{
    if (!repo->use_known)
        return;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&repo->known_lock);
    if (repo->known && !g_hash_table_contains(repo->known, key))
        g_hash_table_add(repo->known, g_strdup(key));
}

gboolean
cairn_repo_has(CairnRepo *repo, const CairnId *id, gboolean *ret_exists, GError **error)
{
    g_autofree char *key = cairn_object_key(id);
    return object_exists(repo, key, ret_exists, error);
}

const char *
cairn_repo_config_text(CairnRepo *repo)
{
    return repo->config_text;
}

gboolean
cairn_repo_verify_stored(CairnRepo *repo, const CairnId *id, const void *stored, size_t len,
                         GError **error)
{
    g_autoptr(GBytes) plain = cairn_object_decode(&repo->codec, id, stored, len, NULL, error);
    return plain != NULL;
}

gboolean
cairn_repo_put_with_id(CairnRepo *repo, CairnObjectType type, const CairnId *id,
                       const void *data, size_t len, uint64_t *ret_new_bytes, GError **error)
{
    g_autofree char *key = cairn_object_key(id);
    gboolean exists = FALSE;
    if (ret_new_bytes)
        *ret_new_bytes = 0;
    if (!object_exists(repo, key, &exists, error))
        return FALSE;
    if (exists)
        return TRUE;
    size_t slen;
    const uint8_t *sdata =
        cairn_object_encode_scratch(&repo->codec, type, id, data, len, &slen, error);
    if (!sdata)
        return FALSE;
    gboolean created = FALSE;
    if (!cairn_backend_put(repo->backend, key, sdata, slen, CAIRN_PUT_IF_ABSENT, &created,
                           error))
        return FALSE;
    if (created && ret_new_bytes)
        *ret_new_bytes = slen;
    object_known(repo, key);
    return TRUE;
}

gboolean
cairn_repo_put(CairnRepo *repo, CairnObjectType type, const void *data, size_t len,
               CairnId *ret_id, uint64_t *ret_new_bytes, GError **error)
{
    cairn_repo_hash(repo, data, len, ret_id);
    return cairn_repo_put_with_id(repo, type, ret_id, data, len, ret_new_bytes, error);
}

GBytes *
cairn_repo_get(CairnRepo *repo, const CairnId *id, CairnObjectType *ret_type, GError **error)
{
    g_autofree char *key = cairn_object_key(id);
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GBytes) stored = cairn_backend_get(repo->backend, key, &gerr);
    if (!stored) {
        char hex[CAIRN_ID_HEX_LEN + 1];
        if (g_error_matches(gerr, CAIRN_BACKEND_ERROR, CAIRN_BACKEND_ERROR_NOT_FOUND))
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_MISSING,
                        "object %s is missing from repository '%s'", cairn_id_to_hex(id, hex),
                        repo->backend->location);
        else
            g_propagate_error(error, g_steal_pointer(&gerr));
        return NULL;
    }
    gsize slen;
    const void *s = g_bytes_get_data(stored, &slen);
    return cairn_object_decode(&repo->codec, id, s, slen, ret_type, error);
}

gboolean
cairn_repo_flush(CairnRepo *repo, GError **error)
{
    return cairn_backend_flush(repo->backend, error);
}
