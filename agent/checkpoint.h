/* checkpoint.h - libvirt checkpoints cairn creates ("cairn-*") and the XML
 * of pull-mode backup jobs. */
#pragma once

#include "agent/virt.h"

#define CAIRN_CHECKPOINT_PREFIX "cairn-"

char *cairn_checkpoint_new_name(void);
gboolean cairn_checkpoint_is_ours(const char *name);
/* Names of all checkpoints of the domain, oldest first. */
GPtrArray *cairn_checkpoint_list(virDomainPtr dom, GError **error);
gboolean cairn_checkpoint_exists(virDomainPtr dom, const char *name);
/* Delete a checkpoint and its bitmaps; metadata only when the bitmaps are
 * already gone (after a QEMU crash). */
gboolean cairn_checkpoint_delete(virDomainPtr dom, const char *name, GError **error);
/* XML for redefining the checkpoint later (includes the domain). */
char *cairn_checkpoint_get_xml(virDomainPtr dom, const char *name, GError **error);
gboolean cairn_checkpoint_redefine(virDomainPtr dom, const char *xml, GError **error);

/* <domainbackup mode='pull'> for the given targets (others backup='no');
 * in an incremental, the targets also in full_targets (disks without a
 * bitmap: raw ones) are exported whole. */
char *cairn_backup_xml(const char *socket, const char *scratch_dir, const char *incremental,
                       GPtrArray *backup_targets, GPtrArray *full_targets,
                       GPtrArray *other_targets);
/* <domaincheckpoint> with a bitmap for each of bitmap_targets (qcow2 disks:
 * QEMU keeps no persistent bitmap in a raw one), none for the others. */
char *cairn_checkpoint_xml(const char *name, GPtrArray *bitmap_targets,
                           GPtrArray *no_bitmap_targets, GPtrArray *other_targets);
