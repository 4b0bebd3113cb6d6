/* image.c - what an image file is, as qemu-img sees it.
 *
 * `qemu-img info --output=json` is the authority on image formats: cairn
 * never parses qcow2 headers itself. Anything qemu-img rejects, and the
 * cases it accepts but that make no sense as a disk (a directory, an empty
 * file), fail with CAIRN_NBD_ERROR_NOT_A_DISK. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "nbd/nbd.h"

G_DEFINE_QUARK(cairn-nbd-error-quark, cairn_nbd_error)

/* qemu parses "proto:..." and "json:{...}" as protocols; "./x" is always a file */
char *
cairn_image_path_arg(const char *path)
{
    if (path[0] == '/' || g_str_has_prefix(path, "./"))
        return g_strdup(path);
    return g_strconcat("./", path, NULL);
}

/* qemu's stderr as one line without the "qemu-img: " prefixes */
char *
cairn_tool_message(const char *tool, const char *text)
{
    g_autofree char *prefix = g_strconcat(tool, ": ", NULL);
    g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
    g_autoptr(GString) out = g_string_new(NULL);
    for (size_t i = 0; lines[i]; i++) {
        const char *line = g_strstrip(lines[i]);
        if (g_str_has_prefix(line, prefix))
            line += strlen(prefix);
        if (!*line)
            continue;
        if (out->len)
            g_string_append(out, ": ");
        g_string_append(out, line);
    }
    if (!out->len)
        g_string_append(out, "no error message");
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static gboolean
check_file(const char *path, GError **error)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int errsv = errno;
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_NOT_A_DISK,
                    "cannot open disk image '%s': %s%s", path, g_strerror(errsv),
                    errsv == ENOENT ? " (check the path)" : "");
        return FALSE;
    }
    if (S_ISDIR(st.st_mode)) {
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_NOT_A_DISK,
                    "cannot use '%s' as a disk image: it is a directory (give the image file)",
                    path);
        return FALSE;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_NOT_A_DISK,
                    "cannot use '%s' as a disk image: not a regular file or block device",
                    path);
        return FALSE;
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_NOT_A_DISK,
                    "cannot use '%s' as a disk image: the file is empty", path);
        return FALSE;
    }
    return TRUE;
}

gboolean
cairn_image_info(const char *path, CairnImageInfo *ret_info, GError **error)
{
    g_return_val_if_fail(path != NULL && ret_info != NULL, FALSE);

    if (!check_file(path, error))
        return FALSE;

    g_autofree char *arg = cairn_image_path_arg(path);
    const char *argv[] = { CAIRN_QEMU_IMG, "info", "--output=json", arg, NULL };
    g_autofree char *out = NULL, *err = NULL;
    int status = 0;
    g_autoptr(GError) local = NULL;
    if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_CLOEXEC_PIPES, NULL, NULL, &out,
                      &err, &status, &local)) {
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_NOT_A_DISK,
                    "cannot inspect disk image '%s': cannot run '%s': %s (install qemu-utils)",
                    path, CAIRN_QEMU_IMG, local->message);
        return FALSE;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_autofree char *msg = cairn_tool_message("qemu-img", err);
        if (strstr(msg, "lock")) {
            /* qemu's image locking: a running VM (or another tool) writes it */
            g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_CONNECT,
                        "cannot open disk image '%s': it is in use by another process: %s "
                        "(back up a running VM through libvirt, or shut it down)", path, msg);
            return FALSE;
        }
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_NOT_A_DISK,
                    "cannot read '%s' as a disk image: %s", path, msg);
        return FALSE;
    }

    json_error_t jerr;
    g_autoptr(CairnJson) root = json_loads(out, 0, &jerr);
    if (!root || !json_is_object(root)) {
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_NOT_A_DISK,
                    "cannot read '%s' as a disk image: unexpected output from qemu-img info: %s",
                    path, root ? "not a JSON object" : jerr.text);
        return FALSE;
    }
    json_t *fmt = json_object_get(root, "format");
    json_t *size = json_object_get(root, "virtual-size");
    if (!json_is_string(fmt) || !json_is_integer(size) || json_integer_value(size) < 0) {
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_NOT_A_DISK,
                    "cannot read '%s' as a disk image: qemu-img info reports no format "
                    "or virtual size", path);
        return FALSE;
    }
    if (json_integer_value(size) == 0) {
        g_set_error(error, CAIRN_NBD_ERROR, CAIRN_NBD_ERROR_NOT_A_DISK,
                    "cannot use '%s' as a disk image: its virtual size is 0", path);
        return FALSE;
    }
    ret_info->format = g_strdup(json_string_value(fmt));
    ret_info->virtual_size = (uint64_t) json_integer_value(size);
    return TRUE;
}

void
cairn_image_info_clear(CairnImageInfo *info)
{
    if (!info)
        return;
    g_clear_pointer(&info->format, g_free);
    info->virtual_size = 0;
}
