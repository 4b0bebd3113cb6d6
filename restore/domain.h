/* domain.h - recreate a libvirt domain from a snapshot: disks + rewritten XML. */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <libvirt/libvirt.h>
#include <libxml/tree.h>

#include "repo/snapshot.h"
#include "restore/restore.h"

typedef struct {
    const char *uri;        /* libvirt URI, NULL = default */
    const char *name;       /* new domain name, NULL = the snapshot's */
    const char *dir;        /* where disks go, NULL = /var/lib/libvirt/images/NAME */
    CairnDiskFormat format;
    char **disks;           /* only these targets, NULL = all */
    gboolean keep_uuid, keep_mac, define, start, force;
    CairnProgressFunc progress;
    gpointer progress_data;
} CairnRestoreOptions;

typedef struct {
    char *name;
    char *xml_path;         /* the rewritten XML, kept for editing */
    GPtrArray *notes;       /* char* */
    json_t *disks;          /* [{target, file, format, bytes_written}] */
    gboolean defined, started;
    double seconds;
} CairnRestoreResult;

void cairn_restore_result_clear(CairnRestoreResult *r);

/* Rewrite a saved domain XML: name, UUID and MACs (unless kept), disk
 * sources -> files (target -> path), driver types; notes for paths that do
 * not exist on this host. When name differs from original (the snapshot's
 * domain: a clone), a writable disk not in files is left out, with a note:
 * it is the original's disk; so is one whose source is in 'taken' (path ->
 * the domain that uses it; may be NULL); a clone's <nvram> becomes clone_nvram (NULL:
 * empty, libvirt makes one from the template). Pure apart from the
 * existence checks. */
char *cairn_domain_xml_rewrite(const char *xml, const char *name, const char *original,
                               gboolean keep_uuid, gboolean keep_mac, GHashTable *files,
                               GHashTable *taken, const char *format, const char *clone_nvram,
                               GPtrArray *notes, GError **error);
/* target -> the file or device of each disk of a domain XML */
GHashTable *cairn_domain_xml_disk_sources(const char *xml);
/* The file or device a disk's <source> names (a copy), or NULL. */
char *cairn_xml_source_path(xmlNodePtr source);
/* The per-domain UEFI variables file of a domain XML (<os><nvram>), or NULL. */
char *cairn_domain_xml_nvram(const char *xml);
/* The XML of a restored domain, also written to DIR/NAME.xml (*ret_xml_path,
 * set even on failure): cairn_domain_xml_rewrite() of the saved one, where a
 * clone (name differs from original) gets its own copy of the original's
 * UEFI variables (DIR/NAME_VARS.fd) when that file is here, and a disk not
 * restored that another domain uses is left out. conn NULL: one is opened
 * (uri) if needed. */
char *cairn_restore_write_xml(virConnectPtr conn, const char *uri, const char *xml,
                              const char *name, const char *original, gboolean keep_uuid,
                              gboolean keep_mac, GHashTable *files, const char *format,
                              const char *dir, GPtrArray *notes, char **ret_xml_path,
                              GError **error);

/* libvirt (uri NULL: $LIBVIRT_DEFAULT_URI, else qemu:///system); errors are
 * reported through GError only */
virConnectPtr cairn_restore_connect(const char *uri, GError **error);
/* A domain 'name' may be defined: none exists, or force and it is shut off.
 * files (NULL-terminated, may be NULL): the paths the restore writes; the
 * refusal names those that exist, as --force overwrites them. */
gboolean cairn_restore_check_name(virConnectPtr conn, const char *name, gboolean force,
                                  const char *const *files, GError **error);
/* --keep-uuid: fails when a domain other than 'name' has 'uuid'. */
gboolean cairn_restore_check_uuid(virConnectPtr conn, const char *uuid, const char *name,
                                  GError **error);
/* Define xml, replacing the definition of a shut-off domain of that name
 * (checked with cairn_restore_check_name); xml_path is named in errors. */
virDomainPtr cairn_restore_define(virConnectPtr conn, const char *name, const char *xml,
                                  const char *xml_path, GPtrArray *notes, GError **error);

gboolean cairn_restore_domain(CairnRepo *repo, CairnSnapshot *snap,
                              const CairnRestoreOptions *opts, CairnRestoreResult *ret,
                              GError **error);
