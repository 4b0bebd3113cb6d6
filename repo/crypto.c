/* crypto.c - key derivation (scrypt + HKDF), naming hashes, AES-256-GCM. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "repo/crypto.h"
#include "repo/repo.h"

static void
set_openssl_error(GError **error, const char *what)
{
    char buf[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_INVALID, "%s: %s", what, buf);
}

void
cairn_kdf_params_default(CairnKdfParams *ret_params)
{
    ret_params->n = 1u << 15; /* 32 MiB of memory, ~0.1 s */
    ret_params->r = 8;
    ret_params->p = 1;
    if (RAND_bytes(ret_params->salt, CAIRN_SALT_LEN) != 1)
        g_error("RAND_bytes failed: no entropy");
}

static gboolean
hkdf(const uint8_t *master, size_t master_len, const char *info, uint8_t *out, size_t out_len,
     GError **error)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    gboolean ok = pctx && EVP_PKEY_derive_init(pctx) > 0 &&
                  EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) > 0 &&
                  EVP_PKEY_CTX_set1_hkdf_key(pctx, master, (int) master_len) > 0 &&
                  EVP_PKEY_CTX_add1_hkdf_info(pctx, (const unsigned char *) info,
                                              (int) strlen(info)) > 0 &&
                  EVP_PKEY_derive(pctx, out, &out_len) > 0;
    EVP_PKEY_CTX_free(pctx);
    if (!ok)
        set_openssl_error(error, "key derivation (HKDF) failed");
    return ok;
}

gboolean
cairn_keys_derive(const uint8_t *secret, size_t secret_len, const CairnKdfParams *params,
                  CairnKeys *ret_keys, GError **error)
{
    uint8_t master[32];
    if (EVP_PBE_scrypt((const char *) secret, secret_len, params->salt, CAIRN_SALT_LEN,
                       params->n, params->r, params->p, 64ull * 1024 * 1024, master,
                       sizeof master) != 1) {
        set_openssl_error(error, "key derivation (scrypt) failed");
        return FALSE;
    }
    gboolean ok = hkdf(master, sizeof master, "cairn v1 encryption", ret_keys->enc,
                       CAIRN_KEY_LEN, error) &&
                  hkdf(master, sizeof master, "cairn v1 object names", ret_keys->id,
                       CAIRN_KEY_LEN, error) &&
                  hkdf(master, sizeof master, "cairn v1 key check", ret_keys->check,
                       sizeof ret_keys->check, error);
    OPENSSL_cleanse(master, sizeof master);
    return ok;
}

gboolean
cairn_key_file_read(const char *path, uint8_t **ret_secret, size_t *ret_len, GError **error)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEED_KEY,
                    "cannot read key file '%s': %s", path, g_strerror(errno));
        return FALSE;
    }
    if (st.st_mode & 0077) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_INVALID,
                    "key file '%s' is readable by group or others (mode %04o): "
                    "run 'chmod 600 %s'", path, (unsigned) (st.st_mode & 07777), path);
        return FALSE;
    }
    uint8_t *data;
    size_t len;
    if (!cairn_read_file(path, &data, &len, error))
        return FALSE;
    /* a trailing newline from `echo secret > file` is not part of the secret */
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (len < 8) {
        OPENSSL_cleanse(data, len);
        g_free(data);
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_INVALID,
                    "key file '%s' holds %zu bytes: a key needs at least 8 "
                    "(e.g. 'head -c 32 /dev/urandom | base64 > %s')", path, len, path);
        return FALSE;
    }
    *ret_secret = data;
    *ret_len = len;
    return TRUE;
}

void
cairn_sha256(const void *data, size_t len, uint8_t ret_md[32])
{
    unsigned int mdlen = 32;
    if (EVP_Digest(data, len, ret_md, &mdlen, EVP_sha256(), NULL) != 1)
        g_error("EVP_Digest(sha256) failed");
}

void
cairn_hmac_sha256(const uint8_t key[CAIRN_KEY_LEN], const void *data, size_t len,
                  uint8_t ret_md[32])
{
    unsigned int mdlen = 32;
    if (!HMAC(EVP_sha256(), key, CAIRN_KEY_LEN, data, len, ret_md, &mdlen))
        g_error("HMAC-SHA256 failed");
}

gboolean
cairn_aead_seal(const uint8_t key[CAIRN_KEY_LEN], const void *aad, size_t aad_len,
                const void *plain, size_t len, uint8_t *out, GError **error)
{
    uint8_t *nonce = out, *ct = out + CAIRN_NONCE_LEN, *tag = ct + len;
    if (RAND_bytes(nonce, CAIRN_NONCE_LEN) != 1) {
        set_openssl_error(error, "cannot draw a nonce");
        return FALSE;
    }
    g_autoptr(EVP_CIPHER_CTX) ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &n, aad, (int) aad_len) != 1 ||
        EVP_EncryptUpdate(ctx, ct, &n, plain, (int) len) != 1 ||
        EVP_EncryptFinal_ex(ctx, ct + n, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CAIRN_TAG_LEN, tag) != 1) {
        set_openssl_error(error, "encryption failed");
        return FALSE;
    }
    return TRUE;
}

gboolean
cairn_aead_open(const uint8_t key[CAIRN_KEY_LEN], const void *aad, size_t aad_len,
                const uint8_t *in, size_t in_len, uint8_t *out, GError **error)
{
    if (in_len < CAIRN_NONCE_LEN + CAIRN_TAG_LEN) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT, "ciphertext truncated");
        return FALSE;
    }
    size_t len = in_len - CAIRN_NONCE_LEN - CAIRN_TAG_LEN;
    const uint8_t *ct = in + CAIRN_NONCE_LEN;
    g_autoptr(EVP_CIPHER_CTX) ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, in) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &n, aad, (int) aad_len) != 1 ||
        EVP_DecryptUpdate(ctx, out, &n, ct, (int) len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CAIRN_TAG_LEN,
                            (void *) (ct + len)) != 1 ||
        EVP_DecryptFinal_ex(ctx, out + n, &n) != 1) {
        ERR_clear_error();
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                    "authentication failed (tampered or corrupt data, or a wrong key)");
        return FALSE;
    }
    return TRUE;
}
