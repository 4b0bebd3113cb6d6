/* virt.c - libvirt connections and domain XML (libxml2). */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "agent/virt.h"
#include "common/util.h"

G_DEFINE_QUARK(cairn-virt-error-quark, cairn_virt_error)

/* libvirt prints every error to stderr by default: errors are ours to report */
static void
quiet_handler(void *data, virErrorPtr err)
{
}

void
cairn_virt_set_error(GError **error, CairnVirtError code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    const char *msg = virGetLastErrorMessage();
    g_set_error(error, CAIRN_VIRT_ERROR, code, "%s: %s", what, msg ? msg : "unknown error");
    virResetLastError();
}

virConnectPtr
cairn_virt_connect(const char *uri, GError **error)
{
    virSetErrorFunc(NULL, quiet_handler);
    if (!uri || !*uri)
        uri = g_getenv("LIBVIRT_DEFAULT_URI");
    if (!uri || !*uri)
        uri = "qemu:///system";
    virConnectPtr conn = virConnectOpen(uri);
    if (!conn) {
        virErrorPtr e = virGetLastError();
        /* not for a URI no driver knows: that one is mistyped */
        gboolean down = e && (e->code == VIR_ERR_NO_CONNECT || e->code == VIR_ERR_SYSTEM_ERROR ||
                              e->code == VIR_ERR_AUTH_FAILED) &&
                        !(e->message && strstr(e->message, "no connection driver"));
        cairn_virt_set_error(error, CAIRN_VIRT_ERROR_CONNECT, "cannot connect to libvirt at '%s'",
                             uri);
        if (down && error && *error) {
            char *old = (*error)->message;
            (*error)->message = g_strdup_printf("%s (is libvirtd running? start it with "
                                                "'systemctl start libvirtd' (or 'libvirtd -d' "
                                                "without systemd), and run cairn as root)", old);
            g_free(old);
        }
        return NULL;
    }
    return conn;
}

virDomainPtr
cairn_virt_lookup(virConnectPtr conn, const char *name, GError **error)
{
    virDomainPtr dom = virDomainLookupByName(conn, name);
    /* as virsh: a name, else a UUID, else the id of a running domain */
    if (!dom && g_uuid_string_is_valid(name)) {
        virResetLastError();
        dom = virDomainLookupByUUIDString(conn, name);
    }
    if (!dom && *name && strspn(name, "0123456789") == strlen(name) && strlen(name) < 9) {
        virResetLastError();
        dom = virDomainLookupByID(conn, atoi(name));
    }
    if (dom)
        return dom;
    virResetLastError();
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < n; i++) {
        g_ptr_array_add(names, g_strdup(virDomainGetName(doms[i])));
        virDomainFree(doms[i]);
    }
    free(doms);
    g_ptr_array_add(names, NULL);
    const char *close = cairn_closest(name, (const char *const *) names->pdata);
    g_autofree char *all = g_strjoinv(", ", (char **) names->pdata);
    g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_NO_DOMAIN,
                "no domain '%s' on this host%s%s%s (domains: %s)", name,
                close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "",
                *all ? all : "none");
    return NULL;
}

gboolean
cairn_virt_is_active(virDomainPtr dom)
{
    return virDomainIsActive(dom) == 1;
}

static char *
prop(xmlNodePtr n, const char *name)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *) name);
    char *s = v ? g_strdup((const char *) v) : NULL;
    xmlFree(v);
    return s;
}

static xmlNodePtr
child(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *) c->name, name))
            return c;
    return NULL;
}

static void
disk_free(CairnDomainDisk *d)
{
    if (!d)
        return;
    g_free(d->target);
    g_free(d->device);
    g_free(d->type);
    g_free(d->format);
    g_free(d->source);
    g_free(d->skip_reason);
    g_free(d);
}

void
cairn_domain_info_free(CairnDomainInfo *info)
{
    if (!info)
        return;
    g_free(info->name);
    g_free(info->uuid);
    g_ptr_array_unref(info->disks);
    g_free(info);
}

static CairnDomainDisk *
parse_disk(xmlNodePtr n)
{
    CairnDomainDisk *d = g_new0(CairnDomainDisk, 1);
    d->type = prop(n, "type");
    d->device = prop(n, "device");
    if (!d->device)
        d->device = g_strdup("disk");
    d->target = prop(child(n, "target"), "dev");
    d->format = prop(child(n, "driver"), "type");
    xmlNodePtr src = child(n, "source");
    if (d->type && !strcmp(d->type, "file"))
        d->source = prop(src, "file");
    else if (d->type && !strcmp(d->type, "block"))
        d->source = prop(src, "dev");
    if (strcmp(d->device, "disk") != 0)
        d->skip_reason = g_strdup_printf("%s device", d->device);
    else if (!d->type || (strcmp(d->type, "file") && strcmp(d->type, "block")))
        d->skip_reason = g_strdup_printf("%s disk without a local file source",
                                         d->type ? d->type : "untyped");
    else if (!d->source)
        d->skip_reason = g_strdup("no source (empty drive)");
    else if (child(n, "readonly"))
        d->skip_reason = g_strdup("read-only disk");
    return d;
}

CairnDomainInfo *
cairn_domain_info_parse(const char *xml, GError **error)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root || strcmp((const char *) root->name, "domain") != 0) {
        g_set_error(error, CAIRN_VIRT_ERROR, CAIRN_VIRT_ERROR_INVALID,
                    "invalid domain XML: %s", doc ? "no <domain> root" : "not well-formed");
        xmlFreeDoc(doc);
        return NULL;
    }
    CairnDomainInfo *info = g_new0(CairnDomainInfo, 1);
    info->disks = g_ptr_array_new_with_free_func((GDestroyNotify) disk_free);
    xmlNodePtr name = child(root, "name"), uuid = child(root, "uuid");
    if (name) {
        xmlChar *c = xmlNodeGetContent(name);
        info->name = g_strdup((const char *) c);
        xmlFree(c);
    }
    if (uuid) {
        xmlChar *c = xmlNodeGetContent(uuid);
        info->uuid = g_strdup((const char *) c);
        xmlFree(c);
    }
    for (xmlNodePtr c = child(root, "devices") ? child(root, "devices")->children : NULL; c;
         c = c->next) {
        if (c->type != XML_ELEMENT_NODE || strcmp((const char *) c->name, "disk") != 0)
            continue;
        CairnDomainDisk *d = parse_disk(c);
        if (!d->target) {
            disk_free(d);
            continue;
        }
        g_ptr_array_add(info->disks, d);
    }
    xmlFreeDoc(doc);
    return info;
}

const CairnDomainDisk *
cairn_domain_info_find_disk(const CairnDomainInfo *info, const char *target)
{
    for (guint i = 0; i < info->disks->len; i++) {
        const CairnDomainDisk *d = info->disks->pdata[i];
        if (!strcmp(d->target, target))
            return d;
    }
    return NULL;
}
