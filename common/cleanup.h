/* cleanup.h - g_autoptr cleanups for third-party handles and file descriptors.
 * GLib 2.74 has no g_autofd: CairnFd closes on scope exit. */
#pragma once

#include <glib.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <zstd.h>

static inline void
cairn_fd_close(int fd)
{
    if (fd >= 0)
        close(fd);
}
typedef int CairnFd;
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(CairnFd, cairn_fd_close, -1)
#define cairn_autofd g_auto(CairnFd)

typedef json_t CairnJson;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnJson, json_decref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZSTD_CCtx, ZSTD_freeCCtx)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ZSTD_DCtx, ZSTD_freeDCtx)

/* steal an fd out of a cairn_autofd variable */
static inline int
cairn_steal_fd(int *fdp)
{
    int fd = *fdp;
    *fdp = -1;
    return fd;
}
