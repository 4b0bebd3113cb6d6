/* in-use.h - which libvirt domains use a file as a disk, so that a restore
 * never replaces a disk under a running QEMU (which keeps writing to the
 * replaced file's inode: every guest write after it is lost), and says
 * whose disk it replaces. */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

typedef struct {
    char *domain;
    char *target;
    gboolean running;
} CairnDiskUser;

/* The disks of every domain (live and persistent definitions) that use
 * 'path' (same device and inode): as their image, as an image of their
 * backing chain, or as the file of a storage pool's volume. Empty when path
 * does not exist or conn is NULL. */
GPtrArray *cairn_disk_users(virConnectPtr conn, const char *path);

/* Before writing over 'path' (which may be absent): a directory or another
 * kind of file is refused; an existing file needs force; a disk of a
 * running domain is refused even with force. conn NULL: one is opened
 * (uri) when path exists; libvirtd unreachable means no running domain.
 * A replaced disk of a shut-off domain gets a note. */
gboolean cairn_restore_check_replace(virConnectPtr conn, const char *uri, const char *path,
                                     gboolean force, GPtrArray *notes, GError **error);
