/* virt.h - libvirt glue: connections, domains, their disks, errors. */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#define CAIRN_VIRT_ERROR (cairn_virt_error_quark())
GQuark cairn_virt_error_quark(void);

typedef enum {
    CAIRN_VIRT_ERROR_CONNECT,   /* cannot reach libvirtd */
    CAIRN_VIRT_ERROR_NO_DOMAIN, /* unknown domain */
    CAIRN_VIRT_ERROR_NO_DISKS,  /* nothing to back up */
    CAIRN_VIRT_ERROR_BUSY,      /* another cairn backs up this domain */
    CAIRN_VIRT_ERROR_BITMAP,    /* checkpoint/bitmap broken: fall back to full */
    CAIRN_VIRT_ERROR_FAILED,    /* a libvirt call failed */
    CAIRN_VIRT_ERROR_INVALID,   /* bad XML or argument */
} CairnVirtError;

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virConnect, virConnectClose)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, virDomainFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomainCheckpoint, virDomainCheckpointFree)

/* Set *error from libvirt's last error: "what: libvirt's message". */
void cairn_virt_set_error(GError **error, CairnVirtError code, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* uri NULL: $LIBVIRT_DEFAULT_URI, else qemu:///system. */
virConnectPtr cairn_virt_connect(const char *uri, GError **error);
/* Unknown name: the error lists close names. */
virDomainPtr cairn_virt_lookup(virConnectPtr conn, const char *name, GError **error);
gboolean cairn_virt_is_active(virDomainPtr dom);

typedef struct {
    char *target;      /* "vda" */
    char *device;      /* "disk", "cdrom", "floppy", "lun" */
    char *type;        /* "file", "block", "network", "volume" */
    char *format;      /* driver type: "qcow2", "raw" */
    char *source;      /* file or block device path, NULL if none */
    char *skip_reason; /* non-NULL: not backed up, and why */
} CairnDomainDisk;

typedef struct {
    char *name;
    char *uuid;
    GPtrArray *disks; /* CairnDomainDisk*, in XML order */
} CairnDomainInfo;

CairnDomainInfo *cairn_domain_info_parse(const char *xml, GError **error);
void cairn_domain_info_free(CairnDomainInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnDomainInfo, cairn_domain_info_free)
const CairnDomainDisk *cairn_domain_info_find_disk(const CairnDomainInfo *info,
                                                   const char *target);
