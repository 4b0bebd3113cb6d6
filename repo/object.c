/* object.c - the stored form of an object: header, zstd, AES-256-GCM. */
#include "config.h"

#include <string.h>
#include <zstd.h>

#include "common/cleanup.h"
#include "repo/object.h"

static const uint8_t magic[4] = { 'C', 'R', 'N', 'O' };

enum { COMP_NONE = 0, COMP_ZSTD = 1 };
enum { ENC_NONE = 0, ENC_AES256GCM = 1 };

/* per-thread zstd contexts: created on first use, freed at thread exit */
static void free_cctx(gpointer c) { ZSTD_freeCCtx(c); }
static void free_dctx(gpointer d) { ZSTD_freeDCtx(d); }
static GPrivate cctx_key = G_PRIVATE_INIT(free_cctx);
static GPrivate dctx_key = G_PRIVATE_INIT(free_dctx);

static ZSTD_CCtx *
thread_cctx(void)
{
    ZSTD_CCtx *c = g_private_get(&cctx_key);
    if (!c) {
        c = ZSTD_createCCtx();
        g_private_set(&cctx_key, c);
    }
    return c;
}

static ZSTD_DCtx *
thread_dctx(void)
{
    ZSTD_DCtx *d = g_private_get(&dctx_key);
    if (!d) {
        d = ZSTD_createDCtx();
        g_private_set(&dctx_key, d);
    }
    return d;
}

static void
put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t) (v >> (8 * i));
}

static uint64_t
get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

const char *
cairn_object_type_name(CairnObjectType t)
{
    switch (t) {
    case CAIRN_OBJECT_CHUNK: return "chunk";
    case CAIRN_OBJECT_INDEX: return "index";
    case CAIRN_OBJECT_BLOB: return "blob";
    case CAIRN_OBJECT_MANIFEST: return "manifest";
    }
    return "unknown";
}

static void
corrupt(GError **error, const CairnId *id, const char *why)
{
    char hex[CAIRN_ID_HEX_LEN + 1];
    g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT, "object %s is corrupt: %s",
                cairn_id_to_hex(id, hex), why);
}

/* Per-thread buffers the stored form is built in: reused from one object
 * to the next, so the per-chunk path allocates nothing (a fresh 1 MiB
 * buffer is a fresh mapping and a page fault per 4 KiB, every time). */
typedef struct {
    uint8_t *data;
    size_t cap;
} Scratch;

static void
scratch_free(gpointer p)
{
    Scratch *s = p;
    g_free(s->data);
    g_free(s);
}

static GPrivate plain_scratch_key = G_PRIVATE_INIT(scratch_free);  /* header + payload */
static GPrivate sealed_scratch_key = G_PRIVATE_INIT(scratch_free); /* encrypted form */

static uint8_t *
scratch(GPrivate *key, size_t need)
{
    Scratch *s = g_private_get(key);
    if (!s) {
        s = g_new0(Scratch, 1);
        g_private_set(key, s);
    }
    if (s->cap < need) {
        g_free(s->data);
        s->data = g_malloc(need);
        s->cap = need;
    }
    return s->data;
}

const uint8_t *
cairn_object_encode_scratch(const CairnObjectCodec *codec, CairnObjectType type,
                            const CairnId *id, const void *data, size_t len, size_t *ret_len,
                            GError **error)
{
    g_assert(len <= CAIRN_OBJECT_MAX_PLAIN);
    gboolean try_zstd = codec->compression_level > 0 && len >= 128;
    size_t room = try_zstd ? MAX(ZSTD_compressBound(len), len) : len;
    uint8_t *out = scratch(&plain_scratch_key, CAIRN_OBJECT_HEADER_LEN + room);
    uint8_t *header = out;
    memcpy(header, magic, 4);
    header[4] = CAIRN_OBJECT_VERSION;
    header[5] = (uint8_t) type;
    header[6] = COMP_NONE;
    header[7] = codec->keys ? ENC_AES256GCM : ENC_NONE;
    put_le64(header + 8, len);

    /* compress when it pays: at least 1/32 smaller */
    uint8_t *payload = out + CAIRN_OBJECT_HEADER_LEN;
    size_t payload_len = len;
    if (try_zstd) {
        size_t z = ZSTD_compressCCtx(thread_cctx(), payload, room, data, len,
                                     codec->compression_level);
        if (!ZSTD_isError(z) && z < len - len / 32) {
            header[6] = COMP_ZSTD;
            payload_len = z;
        }
    }
    if (header[6] == COMP_NONE)
        memcpy(payload, data, len);

    if (!codec->keys) {
        *ret_len = CAIRN_OBJECT_HEADER_LEN + payload_len;
        return out;
    }

    size_t sealed_len = CAIRN_NONCE_LEN + payload_len + CAIRN_TAG_LEN;
    size_t total = CAIRN_OBJECT_HEADER_LEN + sealed_len + 32;
    uint8_t *sealed = scratch(&sealed_scratch_key, total);
    memcpy(sealed, header, CAIRN_OBJECT_HEADER_LEN);
    uint8_t aad[CAIRN_OBJECT_HEADER_LEN + CAIRN_ID_LEN];
    memcpy(aad, header, CAIRN_OBJECT_HEADER_LEN);
    memcpy(aad + CAIRN_OBJECT_HEADER_LEN, id->b, CAIRN_ID_LEN);
    if (!cairn_aead_seal(codec->keys->enc, aad, sizeof aad, payload, payload_len,
                         sealed + CAIRN_OBJECT_HEADER_LEN, error))
        return NULL;
    cairn_sha256(sealed, total - 32, sealed + total - 32);
    *ret_len = total;
    return sealed;
}

GBytes *
cairn_object_encode(const CairnObjectCodec *codec, CairnObjectType type, const CairnId *id,
                    const void *data, size_t len, GError **error)
{
    size_t n;
    const uint8_t *stored = cairn_object_encode_scratch(codec, type, id, data, len, &n, error);
    return stored ? g_bytes_new(stored, n) : NULL;
}

/* Parse and check the header; fills type/comp/enc/plain_len. */
static gboolean
parse_header(const CairnId *id, const uint8_t *s, size_t len, uint8_t *ret_comp,
             uint8_t *ret_enc, CairnObjectType *ret_type, uint64_t *ret_plain, GError **error)
{
    if (len < CAIRN_OBJECT_HEADER_LEN) {
        corrupt(error, id, "truncated header");
        return FALSE;
    }
    if (memcmp(s, magic, 4) != 0) {
        corrupt(error, id, "bad magic (not a cairn object)");
        return FALSE;
    }
    if (s[4] > CAIRN_OBJECT_VERSION) {
        char hex[CAIRN_ID_HEX_LEN + 1];
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEWER_FORMAT,
                    "object %s has format version %u, this cairn reads up to %u: "
                    "upgrade cairn", cairn_id_to_hex(id, hex), s[4], CAIRN_OBJECT_VERSION);
        return FALSE;
    }
    if (s[4] == 0 || s[5] < CAIRN_OBJECT_CHUNK || s[5] > CAIRN_OBJECT_MANIFEST ||
        s[6] > COMP_ZSTD || s[7] > ENC_AES256GCM) {
        corrupt(error, id, "invalid header fields");
        return FALSE;
    }
    *ret_type = (CairnObjectType) s[5];
    *ret_comp = s[6];
    *ret_enc = s[7];
    *ret_plain = get_le64(s + 8);
    if (*ret_plain > CAIRN_OBJECT_MAX_PLAIN) {
        corrupt(error, id, "implausible length");
        return FALSE;
    }
    return TRUE;
}

static gboolean
check_trailer(const CairnId *id, const uint8_t *s, size_t len, GError **error)
{
    if (len < CAIRN_OBJECT_HEADER_LEN + CAIRN_NONCE_LEN + CAIRN_TAG_LEN + 32) {
        corrupt(error, id, "truncated");
        return FALSE;
    }
    uint8_t md[32];
    cairn_sha256(s, len - 32, md);
    if (memcmp(md, s + len - 32, 32) != 0) {
        corrupt(error, id, "stored checksum does not match (damaged or truncated)");
        return FALSE;
    }
    return TRUE;
}

static GBytes *
decompress(const CairnId *id, uint8_t comp, const uint8_t *p, size_t plen, uint64_t plain_len,
           GError **error)
{
    if (comp == COMP_NONE) {
        if (plen != plain_len) {
            corrupt(error, id, "length does not match its header (truncated?)");
            return NULL;
        }
        return g_bytes_new(p, plen);
    }
    g_autofree uint8_t *out = g_malloc(plain_len ? plain_len : 1);
    size_t n = ZSTD_decompressDCtx(thread_dctx(), out, plain_len, p, plen);
    if (ZSTD_isError(n) || n != plain_len) {
        g_autofree char *why = g_strdup_printf("its compressed content does not decode (zstd: "
                                               "%s)", ZSTD_isError(n) ? ZSTD_getErrorName(n)
                                                                      : "short frame");
        corrupt(error, id, why);
        return NULL;
    }
    return g_bytes_new_take(g_steal_pointer(&out), plain_len);
}

GBytes *
cairn_object_decode(const CairnObjectCodec *codec, const CairnId *id, const void *stored,
                    size_t stored_len, CairnObjectType *ret_type, GError **error)
{
    const uint8_t *s = stored;
    uint8_t comp, enc;
    CairnObjectType type;
    uint64_t plain_len;
    if (!parse_header(id, s, stored_len, &comp, &enc, &type, &plain_len, error))
        return NULL;
    g_autoptr(GBytes) plain = NULL;
    if (enc == ENC_AES256GCM) {
        if (!codec->keys) {
            /* a damaged flag of a plain object must read as damage, not as "need a key" */
            if (!check_trailer(id, s, stored_len, error))
                return NULL;
            char hex[CAIRN_ID_HEX_LEN + 1];
            g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEED_KEY,
                        "object %s is encrypted: a key is needed", cairn_id_to_hex(id, hex));
            return NULL;
        }
        if (!check_trailer(id, s, stored_len, error))
            return NULL;
        size_t sealed = stored_len - CAIRN_OBJECT_HEADER_LEN - 32;
        uint8_t aad[CAIRN_OBJECT_HEADER_LEN + CAIRN_ID_LEN];
        memcpy(aad, s, CAIRN_OBJECT_HEADER_LEN);
        memcpy(aad + CAIRN_OBJECT_HEADER_LEN, id->b, CAIRN_ID_LEN);
        size_t plen = sealed - CAIRN_NONCE_LEN - CAIRN_TAG_LEN;
        g_autofree uint8_t *payload = g_malloc(plen ? plen : 1);
        g_autoptr(GError) aerr = NULL;
        if (!cairn_aead_open(codec->keys->enc, aad, sizeof aad, s + CAIRN_OBJECT_HEADER_LEN,
                             sealed, payload, &aerr)) {
            corrupt(error, id, aerr->message);
            return NULL;
        }
        plain = decompress(id, comp, payload, plen, plain_len, error);
    } else {
        if (codec->keys) {
            corrupt(error, id, "stored unencrypted in an encrypted repository (forged?)");
            return NULL;
        }
        plain = decompress(id, comp, s + CAIRN_OBJECT_HEADER_LEN,
                           stored_len - CAIRN_OBJECT_HEADER_LEN, plain_len, error);
    }
    if (!plain)
        return NULL;

    /* re-hash: the content must match the name it was stored under */
    gsize n;
    const uint8_t *p = g_bytes_get_data(plain, &n);
    uint8_t md[32];
    if (codec->keys)
        cairn_hmac_sha256(codec->keys->id, p, n, md);
    else
        cairn_sha256(p, n, md);
    if (memcmp(md, id->b, CAIRN_ID_LEN) != 0) {
        corrupt(error, id, "content does not match its name (hash mismatch)");
        return NULL;
    }
    if (ret_type)
        *ret_type = type;
    return g_steal_pointer(&plain);
}

gboolean
cairn_object_check_stored(const CairnId *id, const void *stored, size_t stored_len,
                          gboolean keyed_names, GError **error)
{
    const uint8_t *s = stored;
    uint8_t comp, enc;
    CairnObjectType type;
    uint64_t plain_len;
    if (!parse_header(id, s, stored_len, &comp, &enc, &type, &plain_len, error))
        return FALSE;
    if (enc == ENC_AES256GCM)
        return check_trailer(id, s, stored_len, error);
    if (keyed_names) {
        corrupt(error, id, "stored unencrypted in an encrypted repository (forged?)");
        return FALSE;
    }
    CairnObjectCodec plain_codec = { 0 };
    g_autoptr(GBytes) b = cairn_object_decode(&plain_codec, id, stored, stored_len, NULL, error);
    return b != NULL;
}
