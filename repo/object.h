/* object.h - encode and decode the stored form of one object (pure, no I/O).
 *
 *   header (16 bytes): "CRNO" | version u8 | type u8 | compression u8 |
 *                      encryption u8 | plaintext length u64 LE
 *   body, plain:       payload (zstd frame, or the plaintext)
 *   body, encrypted:   nonce[12] | AES-256-GCM(payload) | tag[16] | sha256[32]
 *                      (AAD = header | id; sha256 covers every preceding
 *                      byte so integrity is checkable without the key)
 */
#pragma once

#include "repo/repo.h"
#include "repo/crypto.h"

#define CAIRN_OBJECT_HEADER_LEN 16
#define CAIRN_OBJECT_VERSION 1
#define CAIRN_OBJECT_MAX_PLAIN (256u * 1024 * 1024)

typedef struct {
    int compression_level; /* zstd level; <= 0 disables compression */
    const CairnKeys *keys; /* NULL: no encryption */
} CairnObjectCodec;

/* Encode content (already named 'id') into its stored form. */
GBytes *cairn_object_encode(const CairnObjectCodec *codec, CairnObjectType type,
                            const CairnId *id, const void *data, size_t len, GError **error);
/* The same, built in a buffer of the calling thread: valid until its next
 * encode, not to be freed. */
const uint8_t *cairn_object_encode_scratch(const CairnObjectCodec *codec, CairnObjectType type,
                                           const CairnId *id, const void *data, size_t len,
                                           size_t *ret_len, GError **error);
/* Decode and fully verify a stored object against the id it was stored under. */
GBytes *cairn_object_decode(const CairnObjectCodec *codec, const CairnId *id,
                            const void *stored, size_t stored_len, CairnObjectType *ret_type,
                            GError **error);
/* Integrity check without the key: header sanity + (encrypted) trailing sha256.
 * For plain objects this decompresses and re-hashes with SHA-256. */
gboolean cairn_object_check_stored(const CairnId *id, const void *stored, size_t stored_len,
                                   gboolean keyed_names, GError **error);
