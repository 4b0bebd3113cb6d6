/* checkpoint.h - libvirt checkpoints cairn creates ("cairn-*") and the XML
 * of pull-mode backup jobs. */
#pragma once

#include "agent/virt.h"

#define CAIRN_CHECKPOINT_PREFIX "cairn-"
/* bitmaps an offline backup adds to qcow2 images (also "cairn-": a
 * checkpoint adopting them is cairn's to delete) */
#define CAIRN_OFFLINE_BITMAP_PREFIX "cairn-offline-"

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

/* A libvirt checkpoint over bitmaps an offline backup added to qcow2
 * images (named like them): once the domain runs, an incremental can read
 * the changes since through it, and deleting it removes the bitmaps from
 * the running QEMU. With validate, libvirt checks that every bitmap is
 * there and consistent; without, only the metadata is defined (to delete
 * a broken bitmap through it). */
char *cairn_checkpoint_adopt_xml(const char *bitmap, int64_t created, GPtrArray *bitmap_targets,
                                 GPtrArray *no_bitmap_targets);
gboolean cairn_checkpoint_adopt(virDomainPtr dom, const char *xml, gboolean validate,
                                GError **error);
