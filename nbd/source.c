/* source.c - one NBD export to read a disk from.
 *
 * An image file is exported by a private qemu-nbd that libnbd starts with
 * systemd socket activation and stops (SIGTERM + waitpid) in nbd_close():
 * no socket path, port or pid file to manage. A libvirt backup job's export
 * is reached over its unix socket. Both ask for base:allocation so that
 * holes are never read; a dirty-bitmap context is added when given. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "nbd/nbd.h"

/* qemu-nbd's own limit on parallel clients; one connection is used today,
 * the rest leave room for parallel readers. */
#define SOURCE_SHARED "--shared=8"

struct CairnNbdSource {
    struct nbd_handle *h;
    char *name;          /* image path or nbd+unix:// URI, for messages */
    char *format;        /* NULL for sockets */
    char *dirty_context; /* NULL: none */
    uint64_t size;
    gboolean has_allocation;
};

void
cairn_nbd_set_error(GError **error, CairnNbdError code, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *what = g_strdup_vprintf(format, ap);
    va_end(ap);
    const char *msg = nbd_get_error();
    int errsv = nbd_get_errno();
    if (msg && *msg)
        g_set_error(error, CAIRN_NBD_ERROR, code, "%s: %s", what, msg);
    else if (errsv)
        g_set_error(error, CAIRN_NBD_ERROR, code, "%s: %s", what, g_strerror(errsv));
    else
        g_set_error(error, CAIRN_NBD_ERROR, code, "%s: unknown libnbd error", what);
}

static CairnNbdSource *
source_new(const char *name, GError **error)
{
    struct nbd_handle *h = nbd_create();
    if (!h) {
        cairn_nbd_set_error(error, CAIRN_NBD_ERROR_CONNECT, "cannot create an NBD handle for '%s'",
                            name);
        return NULL;
    }
    CairnNbdSource *src = g_new0(CairnNbdSource, 1);
    src->name = g_strdup(name);
    src->h = h;
    /* libnbd checks that every reply covers the whole buffer (strict mode),
     * so zeroing each read buffer first would only cost time */
    nbd_set_pread_initialize(src->h, false);
    return src;
}

/* after connecting: size and the contexts the server agreed to */
static gboolean
source_finish(CairnNbdSource *src, GError **error)
{
    int64_t size = nbd_get_size(src->h);
    if (size < 0) {
        cairn_nbd_set_error(error, CAIRN_NBD_ERROR_CONNECT, "cannot get the size of '%s'",
                            src->name);
        return FALSE;
    }
    if (size == 0) {
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_SIZE,
                    "cannot back up '%s': the disk is empty (size 0)", src->name);
        return FALSE;
    }
    src->size = (uint64_t) size;

    int r = nbd_can_meta_context(src->h, LIBNBD_CONTEXT_BASE_ALLOCATION);
    if (r < 0) {
        cairn_nbd_set_error(error, CAIRN_NBD_ERROR_CONNECT,
                            "cannot query the meta contexts of '%s'", src->name);
        return FALSE;
    }
    src->has_allocation = r == 1;

    if (src->dirty_context) {
        r = nbd_can_meta_context(src->h, src->dirty_context);
        if (r < 0) {
            cairn_nbd_set_error(error, CAIRN_NBD_ERROR_CONNECT,
                                "cannot query the meta contexts of '%s'", src->name);
            return FALSE;
        }
        if (r == 0) {
            g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_CONNECT,
                        "export '%s' does not offer the dirty bitmap '%s' "
                        "(was the backup job started with an incremental checkpoint?)",
                        src->name, src->dirty_context);
            return FALSE;
        }
    }
    return TRUE;
}

char **
cairn_pdeath_prefix(void)
{
    char **v = g_new0(char *, CAIRN_PDEATH_ARGC + 1);
    v[0] = g_strdup(CAIRN_SETPRIV);
    v[1] = g_strdup("--pdeathsig");
    v[2] = g_strdup("TERM");
    v[3] = g_strdup("/bin/sh");
    v[4] = g_strdup("-c");
    v[5] = g_strdup_printf("[ \"$PPID\" = %d ] && exec \"$0\" \"$@\"", (int) getpid());
    return v;
}

CairnNbdSource *
cairn_nbd_source_open_image(const char *path, const char *format, GError **error)
{
    return cairn_nbd_source_open_image_bitmap(path, format, NULL, error);
}

CairnNbdSource *
cairn_nbd_source_open_image_bitmap(const char *path, const char *format, const char *bitmap,
                                   GError **error)
{
    g_return_val_if_fail(path != NULL, NULL);

    /* qemu-img first: clear messages for missing files, directories, empty
     * files, non-images and images locked by a running VM; qemu-nbd would
     * only print to stderr and drop the connection */
    CairnImageInfo info = { 0 };
    if (!cairn_image_info(path, &info, error))
        return NULL;
    g_autofree char *probed = g_steal_pointer(&info.format);
    cairn_image_info_clear(&info);
    if (format && strcmp(format, probed) != 0 && strcmp(format, "raw") != 0) {
        /* any file reads as raw; other formats must be what the file is */
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_NOT_A_DISK,
                    "cannot open '%s' as %s: qemu-img reads it as %s (give the format '%s' "
                    "or leave the format out)", path, format, probed, probed);
        return NULL;
    }

    g_autoptr(CairnNbdSource) src = source_new(path, error);
    if (!src)
        return NULL;
    src->format = g_strdup(format ? format : probed);
    g_autofree char *fmt_arg = g_strconcat("--format=", src->format, NULL);
    g_autofree char *file_arg = cairn_image_path_arg(path);
    g_autofree char *bitmap_arg = bitmap ? g_strconcat("--bitmap=", bitmap, NULL) : NULL;
    /* read-only, several clients allowed, host page cache (writeback):
     * O_DIRECT (--cache=none) is not supported by every filesystem and
     * measured no faster here */
    /* setpriv execs qemu-nbd in place (socket activation needs the pid to
     * stay) with a parent-death signal: a killed cairn takes it along */
    g_auto(GStrv) pd = cairn_pdeath_prefix();
    char *argv[] = { pd[0], pd[1], pd[2], pd[3], pd[4], pd[5],
                     (char *) CAIRN_QEMU_NBD, (char *) "--read-only", (char *) SOURCE_SHARED,
                     fmt_arg, (char *) "--cache=writeback", (char *) "--aio=threads",
                     bitmap_arg ? bitmap_arg : file_arg, bitmap_arg ? file_arg : NULL, NULL };
    if (bitmap)
        src->dirty_context = g_strconcat("qemu:dirty-bitmap:", bitmap, NULL);

    if (nbd_set_handle_name(src->h, "cairn-image") < 0 ||
        nbd_add_meta_context(src->h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
        (src->dirty_context && nbd_add_meta_context(src->h, src->dirty_context) < 0)) {
        cairn_nbd_set_error(error, CAIRN_NBD_ERROR_CONNECT, "cannot set up NBD for '%s'", path);
        return NULL;
    }
    if (nbd_connect_systemd_socket_activation(src->h, argv) < 0) {
        cairn_nbd_set_error(error, CAIRN_NBD_ERROR_CONNECT,
                            "cannot export '%s' with qemu-nbd", path);
        return NULL;
    }
    if (!source_finish(src, error))
        return NULL;
    return g_steal_pointer(&src);
}

CairnNbdSource *
cairn_nbd_source_connect(const char *socket_path, const char *export_name,
                         const char *dirty_context, GError **error)
{
    g_return_val_if_fail(socket_path != NULL, NULL);
    if (!export_name)
        export_name = "";

    g_autofree char *uri = g_strdup_printf("nbd+unix:///%s?socket=%s", export_name, socket_path);
    g_autoptr(CairnNbdSource) src = source_new(uri, error);
    if (!src)
        return NULL;
    if (dirty_context && *dirty_context)
        src->dirty_context = g_strdup(dirty_context);

    if (nbd_set_handle_name(src->h, "cairn-export") < 0 ||
        nbd_set_export_name(src->h, export_name) < 0 ||
        nbd_add_meta_context(src->h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
        (src->dirty_context && nbd_add_meta_context(src->h, src->dirty_context) < 0)) {
        cairn_nbd_set_error(error, CAIRN_NBD_ERROR_CONNECT, "cannot set up NBD for '%s'", uri);
        return NULL;
    }
    if (nbd_connect_unix(src->h, socket_path) < 0) {
        cairn_nbd_set_error(error, CAIRN_NBD_ERROR_CONNECT,
                            "cannot connect to export '%s' on '%s'", export_name, socket_path);
        return NULL;
    }
    if (!source_finish(src, error))
        return NULL;
    return g_steal_pointer(&src);
}

uint64_t
cairn_nbd_source_size(CairnNbdSource *src)
{
    return src->size;
}

const char *
cairn_nbd_source_format(CairnNbdSource *src)
{
    return src->format;
}

struct nbd_handle *
cairn_nbd_source_handle(CairnNbdSource *src)
{
    return src->h;
}

const char *
cairn_nbd_source_name(CairnNbdSource *src)
{
    return src->name;
}

const char *
cairn_nbd_source_dirty_context(CairnNbdSource *src)
{
    return src->dirty_context;
}

gboolean
cairn_nbd_source_has_allocation(CairnNbdSource *src)
{
    return src->has_allocation;
}

void
cairn_nbd_source_free(CairnNbdSource *src)
{
    if (!src)
        return;
    if (src->h) {
        /* a polite disconnect; nbd_close() then stops our qemu-nbd */
        if (nbd_aio_is_ready(src->h) == 1)
            nbd_shutdown(src->h, 0);
        nbd_close(src->h);
    }
    g_free(src->name);
    g_free(src->format);
    g_free(src->dirty_context);
    g_free(src);
}
