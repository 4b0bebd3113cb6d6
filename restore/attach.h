/* attach.h - attach a restored disk file to a domain (restore-disk
 * --attach): everything that can refuse is checked before the disk is
 * written, the attach itself after. */
#pragma once

#include <glib.h>

typedef struct CairnAttach CairnAttach;

/* Connect (uri NULL: $LIBVIRT_DEFAULT_URI, else qemu:///system), find the
 * domain and choose its new disk's target: 'target', or the first free vdX.
 * The bus follows the target's prefix: vd virtio, sd scsi, hd ide. Fails
 * when the domain does not exist, the target is taken or has no known
 * prefix, or 'path' is a disk of the domain already. */
CairnAttach *cairn_attach_prepare(const char *uri, const char *domain, const char *target,
                                  const char *path, GError **error);
const char *cairn_attach_target(const CairnAttach *a);
/* Attach path (hot-plug when the domain runs, and to its persistent
 * definition; without hot-plug, the definition alone gets it and the error
 * says it appears at the next start). */
gboolean cairn_attach_commit(CairnAttach *a, const char *path, const char *format,
                             GError **error);
void cairn_attach_free(CairnAttach *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnAttach, cairn_attach_free)
