/* attach.c - attach a restored disk file to a domain (see attach.h). */
#include "config.h"

#include <string.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "restore/attach.h"
#include "restore/domain.h"
#include "restore/in-use.h"

struct CairnAttach {
    virConnectPtr conn;
    virDomainPtr dom;
    char *domain;
    char *target;
    const char *bus;
};

void
cairn_attach_free(CairnAttach *a)
{
    if (!a)
        return;
    if (a->dom)
        virDomainFree(a->dom);
    if (a->conn)
        virConnectClose(a->conn);
    g_free(a->domain);
    g_free(a->target);
    g_free(a);
}

const char *
cairn_attach_target(const CairnAttach *a)
{
    return a->target;
}

static const char *
bus_of(const char *target)
{
    static const struct { const char *prefix, *bus; } buses[] = {
        { "vd", "virtio" }, { "sd", "scsi" }, { "hd", "ide" },
    };
    for (guint i = 0; i < G_N_ELEMENTS(buses); i++)
        if (g_str_has_prefix(target, buses[i].prefix) && target[2] >= 'a' && target[2] <= 'z')
            return buses[i].bus;
    return NULL;
}

/* the targets the domain's (live) definition uses, NULL-terminated */
static GPtrArray *
used_targets(virDomainPtr dom)
{
    GPtrArray *used = g_ptr_array_new_with_free_func(g_free);
    char *xml = virDomainGetXMLDesc(dom, 0);
    xmlDocPtr doc = xml ? xmlReadMemory(xml, (int) strlen(xml), "d.xml", NULL,
                                        XML_PARSE_NONET | XML_PARSE_NOERROR) : NULL;
    xmlXPathContextPtr ctx = doc ? xmlXPathNewContext(doc) : NULL;
    xmlXPathObjectPtr o = ctx ? xmlXPathEvalExpression(
                                    (const xmlChar *) "/domain/devices/disk/target/@dev", ctx)
                              : NULL;
    for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
        xmlChar *v = xmlNodeGetContent(o->nodesetval->nodeTab[i]);
        g_ptr_array_add(used, g_strdup((const char *) v));
        xmlFree(v);
    }
    xmlXPathFreeObject(o);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    free(xml);
    g_ptr_array_add(used, NULL);
    return used;
}

CairnAttach *
cairn_attach_prepare(const char *uri, const char *domain, const char *target, const char *path,
                     GError **error)
{
    g_autoptr(CairnAttach) a = g_new0(CairnAttach, 1);
    a->domain = g_strdup(domain);
    if (!(a->conn = cairn_restore_connect(uri, error)))
        return NULL;
    if (!(a->dom = virDomainLookupByName(a->conn, domain))) {
        virResetLastError();
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "no domain '%s' to attach the disk to ('virsh list --all' shows them)",
                    domain);
        return NULL;
    }
    g_autoptr(GPtrArray) used = used_targets(a->dom);
    const char *const *u = (const char *const *) used->pdata;
    if (target) {
        if (!bus_of(target)) {
            g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                        "--target '%s': use vdX (virtio), sdX (scsi) or hdX (ide)", target);
            return NULL;
        }
        if (g_strv_contains(u, target)) {
            g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_EXISTS,
                        "domain '%s' already has a disk %s: give another --target", domain,
                        target);
            return NULL;
        }
        a->target = g_strdup(target);
    } else {
        for (char c = 'b'; c <= 'z' && !a->target; c++) {
            char t[4] = { 'v', 'd', c, 0 };
            if (!g_strv_contains(u, t))
                a->target = g_strdup(t);
        }
        if (!a->target) {
            g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_EXISTS,
                        "domain '%s' has no free vdX target: give --target", domain);
            return NULL;
        }
    }
    a->bus = bus_of(a->target);
    g_autoptr(GPtrArray) users = cairn_disk_users(a->conn, path);
    for (guint i = 0; i < users->len; i++) {
        CairnDiskUser *du = users->pdata[i];
        if (!strcmp(du->domain, domain)) {
            g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_EXISTS,
                        "'%s' is disk %s of '%s' already: restore to another file with --to",
                        path, du->target, domain);
            return NULL;
        }
    }
    return g_steal_pointer(&a);
}

gboolean
cairn_attach_commit(CairnAttach *a, const char *path, const char *format, GError **error)
{
    g_autofree char *epath = g_markup_escape_text(path, -1);
    g_autofree char *dxml = g_strdup_printf(
        "<disk type='file' device='disk'><driver name='qemu' type='%s'/>"
        "<source file='%s'/><target dev='%s' bus='%s'/></disk>", format, epath, a->target,
        a->bus);
    unsigned flags = VIR_DOMAIN_AFFECT_CURRENT;
    if (virDomainIsPersistent(a->dom) == 1)
        flags = VIR_DOMAIN_AFFECT_CONFIG |
                (virDomainIsActive(a->dom) == 1 ? VIR_DOMAIN_AFFECT_LIVE : 0);
    if (virDomainAttachDeviceFlags(a->dom, dxml, flags) == 0)
        return TRUE;
    g_autofree char *why = g_strdup(virGetLastErrorMessage());
    virResetLastError();
    /* no hot-plug (no ACPI, a full bus): the persistent definition still gets it */
    if ((flags & VIR_DOMAIN_AFFECT_LIVE) &&
        virDomainAttachDeviceFlags(a->dom, dxml, VIR_DOMAIN_AFFECT_CONFIG) == 0) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                    "'%s' was added to the definition of '%s' as %s, but hot-plug failed "
                    "(%s): it appears at the next start of the domain", path, a->domain,
                    a->target, why);
        return FALSE;
    }
    virResetLastError();
    g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                "cannot attach '%s' to '%s' as %s: %s (the restored disk stays there: attach "
                "it with 'virsh attach-disk %s %s %s', or remove it)", path, a->domain,
                a->target, why, a->domain, path, a->target);
    return FALSE;
}
