/* in-use.c - the libvirt domains that use a file as a disk (see in-use.h). */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "restore/domain.h"
#include "restore/in-use.h"

static void
user_free(gpointer p)
{
    CairnDiskUser *u = p;
    g_free(u->domain);
    g_free(u->target);
    g_free(u);
}

static gboolean
same_file(const struct stat *st, const char *path)
{
    struct stat o;
    return path && stat(path, &o) == 0 && o.st_dev == st->st_dev && o.st_ino == st->st_ino;
}

/* the local path a <source> names: file, dev, or a storage pool's volume */
static char *
source_path(virConnectPtr conn, xmlNodePtr source)
{
    char *path = cairn_xml_source_path(source);
    if (path)
        return path;
    xmlChar *pool = xmlGetProp(source, (const xmlChar *) "pool");
    xmlChar *vol = xmlGetProp(source, (const xmlChar *) "volume");
    if (pool && vol) {
        virStoragePoolPtr p = virStoragePoolLookupByName(conn, (const char *) pool);
        virStorageVolPtr v = p ? virStorageVolLookupByName(p, (const char *) vol) : NULL;
        char *vp = v ? virStorageVolGetPath(v) : NULL;
        path = g_strdup(vp);
        free(vp);
        if (v)
            virStorageVolFree(v);
        if (p)
            virStoragePoolFree(p);
        virResetLastError();
    }
    xmlFree(pool);
    xmlFree(vol);
    return path;
}

/* add the disks of one definition that use the file st: as their image, as
 * an image of their backing chain, or through a storage pool's volume */
static void
scan_xml(virConnectPtr conn, const char *xml, const char *domain, gboolean running,
         const struct stat *st, GPtrArray *users)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return;
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *) "/domain/devices/disk", ctx);
    for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
        xmlNodePtr disk = o->nodesetval->nodeTab[i];
        xmlChar *dev = NULL;
        for (xmlNodePtr c = disk->children; c && !dev; c = c->next)
            if (c->type == XML_ELEMENT_NODE && !strcmp((const char *) c->name, "target"))
                dev = xmlGetProp(c, (const xmlChar *) "dev");
        gboolean seen = FALSE;
        for (guint k = 0; k < users->len && dev; k++) {
            CairnDiskUser *u = users->pdata[k];
            seen = seen || (!strcmp(u->domain, domain) && !strcmp(u->target, (char *) dev));
        }
        ctx->node = disk;
        xmlXPathObjectPtr srcs = seen ? NULL
                                      : xmlXPathEvalExpression((const xmlChar *) ".//source", ctx);
        gboolean uses = FALSE;
        for (int k = 0; srcs && srcs->nodesetval && k < srcs->nodesetval->nodeNr && !uses;
             k++) {
            g_autofree char *path = source_path(conn, srcs->nodesetval->nodeTab[k]);
            uses = same_file(st, path);
        }
        xmlXPathFreeObject(srcs);
        if (uses) {
            CairnDiskUser *u = g_new0(CairnDiskUser, 1);
            u->domain = g_strdup(domain);
            u->target = g_strdup(dev ? (const char *) dev : "?");
            u->running = running;
            g_ptr_array_add(users, u);
        }
        xmlFree(dev);
    }
    xmlXPathFreeObject(o);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
}

GPtrArray *
cairn_disk_users(virConnectPtr conn, const char *path)
{
    GPtrArray *users = g_ptr_array_new_with_free_func(user_free);
    struct stat st;
    if (!conn || stat(path, &st) != 0)
        return users;
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);
    if (n < 0)
        virResetLastError();
    for (int i = 0; i < n; i++) {
        const char *name = virDomainGetName(doms[i]);
        gboolean running = virDomainIsActive(doms[i]) == 1;
        unsigned int flags[] = { 0, VIR_DOMAIN_XML_INACTIVE };
        for (guint f = 0; f < G_N_ELEMENTS(flags); f++) {
            if (flags[f] && virDomainIsPersistent(doms[i]) != 1)
                continue;
            char *xml = virDomainGetXMLDesc(doms[i], flags[f]);
            if (!xml) {
                virResetLastError();
                continue;
            }
            /* a disk only in the persistent definition is not open yet */
            scan_xml(conn, xml, name, running && flags[f] == 0, &st, users);
            free(xml);
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    return users;
}

gboolean
cairn_restore_check_replace(virConnectPtr conn, const char *uri, const char *path,
                            gboolean force, GPtrArray *notes, GError **error)
{
    struct stat st;
    if (lstat(path, &st) != 0 && errno == ENOENT)
        return TRUE;
    if (!cairn_restore_check_target(path, TRUE, error)) /* a directory, a device, ... */
        return FALSE;
    virConnectPtr own = NULL;
    if (!conn)
        conn = own = cairn_restore_connect(uri, NULL); /* unreachable: nothing runs */
    g_autoptr(GPtrArray) users = cairn_disk_users(conn, path);
    if (own)
        virConnectClose(own);
    for (guint i = 0; i < users->len; i++) {
        CairnDiskUser *u = users->pdata[i];
        if (u->running) {
            g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_EXISTS,
                        "cannot restore to '%s': it is disk %s of the running domain '%s', "
                        "and QEMU would keep writing to the replaced file (the guest's "
                        "writes would be lost): shut '%s' down first, or restore to another "
                        "file", path, u->target, u->domain, u->domain);
            return FALSE;
        }
    }
    g_autoptr(GString) whose = g_string_new(NULL);
    for (guint i = 0; i < users->len; i++) {
        CairnDiskUser *u = users->pdata[i];
        g_string_append_printf(whose, "%s disk %s of domain '%s'", i ? " and" : "", u->target,
                               u->domain);
    }
    if (!force) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_EXISTS,
                    "cannot restore to '%s': the file exists%s%s (use --force to replace it)",
                    path, whose->len ? " and is" : "", whose->str);
        return FALSE;
    }
    if (whose->len && notes)
        g_ptr_array_add(notes, g_strdup_printf("'%s' is%s (shut off): it now holds the "
                                               "snapshot's data", path, whose->str));
    return TRUE;
}
