/* crypto.h - keys, naming hashes and authenticated encryption. */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <stddef.h>


#define CAIRN_KEY_LEN 32
#define CAIRN_SALT_LEN 16
#define CAIRN_NONCE_LEN 12
#define CAIRN_TAG_LEN 16

typedef struct {
    uint8_t enc[CAIRN_KEY_LEN]; /* AES-256-GCM key */
    uint8_t id[CAIRN_KEY_LEN];  /* HMAC-SHA-256 key for object names */
    uint8_t check[32];          /* stored in config to detect a wrong key */
} CairnKeys;

typedef struct {
    uint64_t n;  /* scrypt parameters */
    uint32_t r, p;
    uint8_t salt[CAIRN_SALT_LEN];
} CairnKdfParams;

void cairn_kdf_params_default(CairnKdfParams *ret_params);
/* Derive keys from the secret (contents of a key file). */
gboolean cairn_keys_derive(const uint8_t *secret, size_t secret_len, const CairnKdfParams *params,
                           CairnKeys *ret_keys, GError **error);
/* Read a key file: refuse group/world-readable files and empty secrets. */
gboolean cairn_key_file_read(const char *path, uint8_t **ret_secret, size_t *ret_len,
                             GError **error);

void cairn_sha256(const void *data, size_t len, uint8_t ret_md[32]);
void cairn_hmac_sha256(const uint8_t key[CAIRN_KEY_LEN], const void *data, size_t len,
                       uint8_t ret_md[32]);
/* out must hold len + CAIRN_NONCE_LEN + CAIRN_TAG_LEN bytes */
gboolean cairn_aead_seal(const uint8_t key[CAIRN_KEY_LEN], const void *aad, size_t aad_len,
                         const void *plain, size_t len, uint8_t *out, GError **error);
/* in: nonce | ciphertext | tag; out holds in_len - NONCE - TAG bytes */
gboolean cairn_aead_open(const uint8_t key[CAIRN_KEY_LEN], const void *aad, size_t aad_len,
                         const uint8_t *in, size_t in_len, uint8_t *out, GError **error);
