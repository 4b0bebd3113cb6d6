/* domain.c - restore a whole domain: every disk (in parallel), then the XML. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "common/util.h"
#include "repo/index.h"
#include "restore/domain.h"
#include "restore/in-use.h"

void
cairn_restore_result_clear(CairnRestoreResult *r)
{
    g_free(r->name);
    g_free(r->xml_path);
    if (r->notes)
        g_ptr_array_unref(r->notes);
    if (r->disks)
        json_decref(r->disks);
    memset(r, 0, sizeof *r);
}

static void
note(GPtrArray *notes, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void
note(GPtrArray *notes, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (notes)
        g_ptr_array_add(notes, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

/* libvirt prints every error by default: ours are reported once, by the CLI */
static void
quiet_errors(void *data, virErrorPtr err)
{
}

static xmlXPathObjectPtr
xpath(xmlDocPtr doc, const char *expr)
{
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *) expr, ctx);
    xmlXPathFreeContext(ctx);
    return o;
}

static void
remove_all(xmlDocPtr doc, const char *expr)
{
    xmlXPathObjectPtr o = xpath(doc, expr);
    for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
        xmlNodePtr n = o->nodesetval->nodeTab[i];
        xmlUnlinkNode(n);
        xmlFreeNode(n);
    }
    xmlXPathFreeObject(o);
}

/* report element contents / attributes naming host paths that do not exist */
static void
check_paths(xmlDocPtr doc, const char *expr, const char *what, GPtrArray *notes)
{
    xmlXPathObjectPtr o = xpath(doc, expr);
    for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
        xmlChar *v = xmlNodeGetContent(o->nodesetval->nodeTab[i]);
        if (v && *v == '/' && access((const char *) v, F_OK) != 0)
            note(notes, "%s '%s' does not exist on this host: provide it or edit the XML", what,
                 (const char *) v);
        xmlFree(v);
    }
    xmlXPathFreeObject(o);
}

/* a disk two domains may use at once: read-only, shareable, removable media */
static gboolean
disk_may_be_shared(xmlNodePtr disk)
{
    xmlChar *device = xmlGetProp(disk, (const xmlChar *) "device");
    gboolean media = device && (!strcmp((const char *) device, "cdrom") ||
                                !strcmp((const char *) device, "floppy"));
    xmlFree(device);
    if (media)
        return TRUE;
    for (xmlNodePtr c = disk->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && (!strcmp((const char *) c->name, "readonly") ||
                                            !strcmp((const char *) c->name, "shareable")))
            return TRUE;
    return FALSE;
}

/* the value of the first of attrs (NULL-terminated) that node has */
static char *
first_prop(xmlNodePtr node, const char *const *attrs)
{
    for (; node && *attrs; attrs++) {
        xmlChar *v = xmlGetProp(node, (const xmlChar *) *attrs);
        if (v) {
            char *copy = g_strdup((const char *) v);
            xmlFree(v);
            return copy;
        }
    }
    return NULL;
}

char *
cairn_xml_source_path(xmlNodePtr source)
{
    static const char *const attrs[] = { "file", "dev", NULL };
    return first_prop(source, attrs);
}

/* the domain that 'taken' (path -> domain) says uses the source's file */
static const char *
taken_by(GHashTable *taken, xmlNodePtr source)
{
    g_autofree char *path = taken ? cairn_xml_source_path(source) : NULL;
    return path ? g_hash_table_lookup(taken, path) : NULL;
}

/* what a disk's <source> names: a file, a device, a network volume */
static char *
describe_source(xmlNodePtr source)
{
    static const char *const attrs[] = { "file", "dev", "name", "volume", "dir", NULL };
    char *what = first_prop(source, attrs);
    return what ? what : g_strdup("its source");
}

char *
cairn_domain_xml_nvram(const char *xml)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return NULL;
    xmlXPathObjectPtr o = xpath(doc, "/domain/os/nvram");
    char *path = NULL;
    if (o && o->nodesetval && o->nodesetval->nodeNr == 1) {
        xmlChar *v = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
        if (v && *v)
            path = g_strdup((const char *) v);
        xmlFree(v);
    }
    xmlXPathFreeObject(o);
    xmlFreeDoc(doc);
    return path;
}

/* a clone's own UEFI variables: clone_nvram, or (NULL) a fresh file libvirt
 * makes from the firmware's template */
static void
clone_nvram_element(xmlDocPtr doc, const char *name, const char *clone_nvram, GPtrArray *notes)
{
    xmlXPathObjectPtr o = xpath(doc, "/domain/os/nvram");
    if (o && o->nodesetval && o->nodesetval->nodeNr == 1) {
        xmlNodePtr n = o->nodesetval->nodeTab[0];
        xmlChar *old = xmlNodeGetContent(n);
        if (old && *old) {
            xmlNodeSetContent(n, (const xmlChar *) (clone_nvram ? clone_nvram : ""));
            if (clone_nvram)
                note(notes, "'%s' has its own copy of the UEFI variables, '%s' (not the "
                     "original's '%s')", name, clone_nvram, (const char *) old);
            else
                note(notes, "'%s' gets new UEFI variables from the firmware's template (the "
                     "original's '%s' is not here to copy)", name, (const char *) old);
        }
        xmlFree(old);
    }
    xmlXPathFreeObject(o);
}

GHashTable *
cairn_domain_xml_disk_sources(const char *xml)
{
    GHashTable *out = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    xmlDocPtr doc = xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlXPathObjectPtr o = doc ? xpath(doc, "/domain/devices/disk") : NULL;
    for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
        xmlChar *dev = NULL;
        char *path = NULL;
        for (xmlNodePtr c = o->nodesetval->nodeTab[i]->children; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE)
                continue;
            if (!strcmp((const char *) c->name, "target") && !dev)
                dev = xmlGetProp(c, (const xmlChar *) "dev");
            else if (!strcmp((const char *) c->name, "source") && !path)
                path = cairn_xml_source_path(c);
        }
        if (dev && path)
            g_hash_table_insert(out, g_strdup((const char *) dev), g_steal_pointer(&path));
        xmlFree(dev);
        g_free(path);
    }
    xmlXPathFreeObject(o);
    xmlFreeDoc(doc);
    return out;
}

char *
cairn_domain_xml_rewrite(const char *xml, const char *name, const char *original,
                         gboolean keep_uuid, gboolean keep_mac, GHashTable *files,
                         GHashTable *taken, const char *format, const char *clone_nvram,
                         GPtrArray *notes, GError **error)
{
    gboolean clone = original && strcmp(name, original) != 0;
    xmlDocPtr doc = xmlReadMemory(xml, (int) strlen(xml), "domain.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root || strcmp((const char *) root->name, "domain") != 0) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "the snapshot's domain XML is not valid");
        xmlFreeDoc(doc);
        return NULL;
    }
    xmlXPathObjectPtr o = xpath(doc, "/domain/name");
    if (o && o->nodesetval && o->nodesetval->nodeNr == 1)
        xmlNodeSetContent(o->nodesetval->nodeTab[0], (const xmlChar *) name);
    xmlXPathFreeObject(o);
    if (!keep_uuid)
        remove_all(doc, "/domain/uuid");
    if (!keep_mac)
        remove_all(doc, "/domain/devices/interface/mac");
    /* device aliases and the like are runtime state */
    o = xpath(doc, "/domain/devices/disk");
    for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
        xmlNodePtr disk = o->nodesetval->nodeTab[i];
        xmlNodePtr target = NULL, source = NULL, driver = NULL;
        for (xmlNodePtr c = disk->children; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE)
                continue;
            if (!strcmp((const char *) c->name, "target"))
                target = c;
            else if (!strcmp((const char *) c->name, "source"))
                source = c;
            else if (!strcmp((const char *) c->name, "driver"))
                driver = c;
        }
        xmlChar *dev = target ? xmlGetProp(target, (const xmlChar *) "dev") : NULL;
        const char *owner = NULL; /* another domain's disk */
        const char *file = dev ? g_hash_table_lookup(files, dev) : NULL;
        if (file) {
            xmlSetProp(disk, (const xmlChar *) "type", (const xmlChar *) "file");
            if (source) {
                xmlUnlinkNode(source);
                xmlFreeNode(source);
            }
            source = xmlNewNode(NULL, (const xmlChar *) "source");
            xmlSetProp(source, (const xmlChar *) "file", (const xmlChar *) file);
            if (target)
                xmlAddPrevSibling(target, source);
            else
                xmlAddChild(disk, source);
            if (!driver) {
                driver = xmlNewNode(NULL, (const xmlChar *) "driver");
                xmlSetProp(driver, (const xmlChar *) "name", (const xmlChar *) "qemu");
                xmlAddPrevSibling(source, driver);
            }
            xmlSetProp(driver, (const xmlChar *) "type", (const xmlChar *) format);
            /* a backing chain of the original does not apply to the flat copy */
            for (xmlNodePtr c = disk->children; c;) {
                xmlNodePtr next = c->next;
                if (c->type == XML_ELEMENT_NODE && !strcmp((const char *) c->name, "backingStore")) {
                    xmlUnlinkNode(c);
                    xmlFreeNode(c);
                }
                c = next;
            }
        } else if (dev && !disk_may_be_shared(disk) &&
                   (owner = clone ? original : taken_by(taken, source))) {
            /* another domain's disk: two domains writing one disk corrupt it */
            g_autofree char *what = describe_source(source);
            note(notes, "disk %s was not restored: left out of '%s', as its source '%s' is "
                 "the disk of '%s' (restore it too, or attach another disk to '%s')",
                 (const char *) dev, name, what, owner, name);
            xmlUnlinkNode(disk);
            xmlFreeNode(disk);
        } else if (dev && source) {
            g_autofree char *f = cairn_xml_source_path(source);
            if (f && access(f, F_OK) != 0)
                note(notes, "disk %s was not in the snapshot and its source '%s' does not exist "
                     "here: edit the XML or remove the disk", (const char *) dev, f);
        }
        xmlFree(dev);
    }
    xmlXPathFreeObject(o);
    check_paths(doc, "/domain/os/loader", "firmware", notes);
    if (clone)
        clone_nvram_element(doc, name, clone_nvram, notes);
    else
        check_paths(doc, "/domain/os/nvram", "NVRAM file", notes);
    check_paths(doc, "/domain/os/kernel", "kernel", notes);
    check_paths(doc, "/domain/os/initrd", "initrd", notes);
    check_paths(doc, "/domain/devices/emulator", "emulator", notes);
    xmlChar *out = NULL;
    int len = 0;
    xmlDocDumpFormatMemory(doc, &out, &len, 1);
    char *copy = g_strndup((const char *) out, (gsize) len);
    xmlFree(out);
    xmlFreeDoc(doc);
    return copy;
}

virConnectPtr
cairn_restore_connect(const char *uri, GError **error)
{
    virSetErrorFunc(NULL, quiet_errors);
    const char *u = uri ? uri : g_getenv("LIBVIRT_DEFAULT_URI");
    virConnectPtr conn = virConnectOpen(u ? u : "qemu:///system");
    if (!conn)
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                    "cannot connect to libvirt: %s (is libvirtd running?)",
                    virGetLastErrorMessage());
    return conn;
}

gboolean
cairn_restore_check_name(virConnectPtr conn, const char *name, gboolean force,
                         const char *const *files, GError **error)
{
    virDomainPtr old = virDomainLookupByName(conn, name);
    virResetLastError();
    if (!old)
        return TRUE;
    gboolean active = virDomainIsActive(old) == 1;
    virDomainFree(old);
    if (force && !active)
        return TRUE;
    /* what --force would overwrite, said before it is given */
    g_autoptr(GString) over = g_string_new(NULL);
    for (guint i = 0; files && files[i]; i++)
        if (g_file_test(files[i], G_FILE_TEST_EXISTS))
            g_string_append_printf(over, "%s'%s'", over->len ? ", " : "", files[i]);
    g_autofree char *what = over->len
        ? g_strdup_printf("its definition and overwrite %s with the snapshot's disks (other "
                          "disk files are kept)", over->str)
        : g_strdup("its definition (its disk files are kept)");
    g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_EXISTS,
                "a domain named '%s' exists%s: restore under another name with "
                "--name NEW%s%s", name, active ? " and is running" : "",
                active ? ", or shut it down first and give --force to replace " :
                         ", or give --force to replace ", what);
    return FALSE;
}

virDomainPtr
cairn_restore_define(virConnectPtr conn, const char *name, const char *xml,
                     const char *xml_path, GPtrArray *notes, GError **error)
{
    virDomainPtr old = virDomainLookupByName(conn, name);
    virResetLastError();
    if (old) { /* --force, checked before: replace the definition, keep its disks */
        if (virDomainUndefineFlags(old, VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA |
                                            VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                            VIR_DOMAIN_UNDEFINE_KEEP_NVRAM) < 0)
            virResetLastError();
        else
            note(notes, "replaced the definition of '%s'; its disks that were not restored "
                 "over were kept where they were", name);
        virDomainFree(old);
    }
    virDomainPtr dom = virDomainDefineXML(conn, xml);
    if (!dom)
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                    "libvirt refused the domain: %s (the disks are restored; edit %s "
                    "and run 'virsh define %s')", virGetLastErrorMessage(), xml_path, xml_path);
    return dom;
}

/* A clone (name differs from original) must not share the original's UEFI
 * variables: when that file is here, it is copied to DIR/NAME_VARS.fd
 * (*ret_path); else *ret_path stays NULL (not a clone, or no such file: the
 * clone gets a fresh one from the template). */
static gboolean
clone_nvram(const char *xml, const char *name, const char *original, const char *dir,
            char **ret_path, GError **error)
{
    *ret_path = NULL;
    if (!original || !strcmp(name, original))
        return TRUE;
    g_autofree char *old = cairn_domain_xml_nvram(xml);
    if (!old || !g_file_test(old, G_FILE_TEST_IS_REGULAR))
        return TRUE;
    g_autofree char *data = NULL;
    gsize len = 0;
    GError *gerr = NULL;
    if (!g_file_get_contents(old, &data, &len, &gerr)) {
        g_propagate_prefixed_error(error, gerr, "cannot copy the UEFI variables of '%s': ",
                                   original);
        return FALSE;
    }
    g_autofree char *copy = g_strdup_printf("%s/%s_VARS.fd", dir, name);
    if (!cairn_write_file_durable(copy, data, len, 0600, error))
        return FALSE;
    *ret_path = g_steal_pointer(&copy);
    return TRUE;
}

/* the sources of the disks not restored (not in files) that a domain other
 * than 'name' uses: path -> that domain (restore/in-use.c); conn NULL: one
 * is opened (uri) if needed */
static GHashTable *
disks_of_others(virConnectPtr conn, const char *uri, const char *xml, GHashTable *files,
                const char *name)
{
    GHashTable *taken = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GHashTable) sources = cairn_domain_xml_disk_sources(xml);
    virConnectPtr own = NULL;
    GHashTableIter it;
    gpointer dev, path;
    g_hash_table_iter_init(&it, sources);
    while (g_hash_table_iter_next(&it, &dev, &path)) {
        if (g_hash_table_contains(files, dev) || !g_file_test(path, G_FILE_TEST_EXISTS))
            continue;
        if (!conn && !own && !(own = cairn_restore_connect(uri, NULL)))
            break; /* libvirt unreachable: no domain to share with */
        g_autoptr(GPtrArray) users = cairn_disk_users(conn ? conn : own, path);
        for (guint i = 0; i < users->len; i++) {
            CairnDiskUser *u = users->pdata[i];
            if (strcmp(u->domain, name) != 0) {
                g_hash_table_insert(taken, g_strdup(path), g_strdup(u->domain));
                break;
            }
        }
    }
    if (own)
        virConnectClose(own);
    return taken;
}

char *
cairn_restore_write_xml(virConnectPtr conn, const char *uri, const char *xml, const char *name,
                        const char *original, gboolean keep_uuid, gboolean keep_mac,
                        GHashTable *files, const char *format, const char *dir,
                        GPtrArray *notes, char **ret_xml_path, GError **error)
{
    *ret_xml_path = g_strdup_printf("%s/%s.xml", dir, name);
    g_autofree char *nvram = NULL;
    if (!clone_nvram(xml, name, original, dir, &nvram, error))
        return NULL;
    g_autoptr(GHashTable) taken = disks_of_others(conn, uri, xml, files, name);
    g_autofree char *newxml = cairn_domain_xml_rewrite(xml, name, original, keep_uuid, keep_mac,
                                                       files, taken, format, nvram, notes,
                                                       error);
    if (!newxml ||
        !cairn_write_file_durable(*ret_xml_path, newxml, strlen(newxml), 0644, error))
        return NULL;
    return g_steal_pointer(&newxml);
}

/* --keep-uuid: no other domain may have the UUID (libvirt would refuse the
 * definition, after every disk was written) */
gboolean
cairn_restore_check_uuid(virConnectPtr conn, const char *uuid, const char *name, GError **error)
{
    virDomainPtr other = uuid ? virDomainLookupByUUIDString(conn, uuid) : NULL;
    virResetLastError();
    if (!other)
        return TRUE;
    g_autofree char *oname = g_strdup(virDomainGetName(other));
    virDomainFree(other);
    if (!strcmp(oname, name))
        return TRUE; /* the domain replaced (--force) */
    g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_EXISTS,
                "--keep-uuid: domain '%s' has the UUID %s: leave out --keep-uuid (a new UUID "
                "is made), or undefine '%s' first", oname, uuid, oname);
    return FALSE;
}

typedef struct {
    CairnRepo *repo;
    CairnIndex *index;
    char *path;
    CairnDiskFormat format;
    gboolean force;
    gboolean existed; /* replaced (--force): kept even when the restore fails */
    gint *cancel;     /* shared: set by the first disk that fails */
    CairnRestoreStats st;
    CairnRestorePending pending; /* complete under its temp name */
    GError *error;
} DiskJob;

static gpointer
disk_thread(gpointer data)
{
    DiskJob *j = data;
    if (!cairn_restore_disk_to_pending(j->repo, j->index, j->path, j->format, j->force,
                                       j->cancel, &j->st, &j->pending, &j->error))
        g_atomic_int_set(j->cancel, 1); /* the other disks stop: the restore failed */
    return NULL;
}

static gboolean
want_disk(const CairnRestoreOptions *o, const char *target)
{
    return !o->disks || g_strv_contains((const char *const *) o->disks, target);
}

/* Before anything is written: every target may be written, and the file
 * system of dir holds all the disks at once (they are written in parallel,
 * so each one fitting alone is not enough). */
static gboolean
check_targets(virConnectPtr conn, const char *uri, const char *name, const char *dir,
              DiskJob *jobs, guint n, GPtrArray *notes, GError **error)
{
    uint64_t need = 0;
    guint count = 0;
    for (guint i = 0; i < n; i++) {
        if (!jobs[i].index)
            continue;
        if (!cairn_restore_check_replace(conn, uri, jobs[i].path, jobs[i].force, notes, error))
            return FALSE;
        jobs[i].existed = g_file_test(jobs[i].path, G_FILE_TEST_EXISTS);
        need += cairn_restore_space_needed(jobs[i].index, jobs[i].format);
        count++;
    }
    g_autofree char *what = g_strdup_printf("'%s' (%u disk%s)", name, count,
                                            count == 1 ? "" : "s");
    return cairn_restore_check_space(dir, need, what, error);
}

/* the first error of the disks, one that caused the others' cancellation
 * rather than a cancellation */
static gboolean
take_disk_error(CairnManifest *m, DiskJob *jobs, guint n, GError **error)
{
    int first = -1;
    for (guint i = 0; i < n; i++) {
        if (!jobs[i].error)
            continue;
        if (first < 0 || (g_error_matches(jobs[first].error, CAIRN_RESTORE_ERROR,
                                          CAIRN_RESTORE_ERROR_CANCELLED) &&
                          !g_error_matches(jobs[i].error, CAIRN_RESTORE_ERROR,
                                           CAIRN_RESTORE_ERROR_CANCELLED)))
            first = (int) i;
    }
    if (first < 0)
        return TRUE;
    g_propagate_prefixed_error(error, g_steal_pointer(&jobs[first].error), "disk %s: ",
                               ((CairnManifestDisk *) m->disks->pdata[first])->target);
    return FALSE;
}

/* a failed restore leaves no disk of its own behind (nor the directory it
 * made), and the files it was to replace as they were: the disks wait
 * under their temp names until all are complete */
static void
remove_restored(DiskJob *jobs, guint n, const char *dir, gboolean made_dir)
{
    for (guint i = 0; i < n; i++)
        cairn_restore_pending_abort(&jobs[i].pending);
    if (made_dir)
        rmdir(dir); /* only when empty */
}

/* every disk complete: put them all in place */
static gboolean
commit_restored(DiskJob *jobs, guint n, GError **error)
{
    for (guint i = 0; i < n; i++) {
        if (!jobs[i].pending.tmp)
            continue;
        if (!cairn_restore_pending_commit(&jobs[i].pending, error)) {
            for (guint k = i + 1; k < n; k++)
                cairn_restore_pending_abort(&jobs[k].pending);
            return FALSE; /* only a rename failed: rare, and the error says which */
        }
    }
    return TRUE;
}

gboolean
cairn_restore_domain(CairnRepo *repo, CairnSnapshot *snap, const CairnRestoreOptions *o,
                     CairnRestoreResult *r, GError **error)
{
    memset(r, 0, sizeof *r);
    r->notes = g_ptr_array_new_with_free_func(g_free);
    r->disks = json_array();
    gint64 t0 = g_get_monotonic_time();
    CairnManifest *m = snap->manifest;
    r->name = g_strdup(o->name ? o->name : m->name);
    if (!m->has_domain_xml) {
        g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                    "snapshot of '%s' has no domain XML (it was backed up from image files): "
                    "restore its disks with 'cairn restore-disk'", m->name);
        return FALSE;
    }
    for (guint i = 0; o->disks && o->disks[i]; i++)
        if (!cairn_manifest_find_disk(m, o->disks[i])) {
            g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_INVALID,
                        "the snapshot has no disk '%s'", o->disks[i]);
            return FALSE;
        }
    g_autoptr(GBytes) xmlb = cairn_repo_get(repo, &m->domain_xml, NULL, error);
    if (!xmlb)
        return FALSE;
    g_autofree char *xml = g_strndup(g_bytes_get_data(xmlb, NULL), g_bytes_get_size(xmlb));

    g_autofree char *dir = o->dir ? g_strdup(o->dir)
                                  : g_build_filename("/var/lib/libvirt/images", r->name, NULL);
    const char *ext = o->format == CAIRN_DISK_FORMAT_RAW ? "raw" : "qcow2";
    guint n = m->disks->len;
    g_autofree DiskJob *jobs = g_new0(DiskJob, n);
    g_autofree GThread **threads = g_new0(GThread *, n);
    g_autoptr(GPtrArray) paths = g_ptr_array_new();
    for (guint i = 0; i < n; i++) {
        CairnManifestDisk *d = m->disks->pdata[i];
        if (!want_disk(o, d->target))
            continue;
        jobs[i].path = g_strdup_printf("%s/%s-%s.%s", dir, r->name, d->target, ext);
        g_ptr_array_add(paths, jobs[i].path);
    }
    g_ptr_array_add(paths, NULL);

    /* libvirt first: a name clash is found before gigabytes are written */
    virConnectPtr conn = NULL;
    if (o->define || o->start) {
        if (!(conn = cairn_restore_connect(o->uri, error)) ||
            !cairn_restore_check_name(conn, r->name, o->force, (const char *const *) paths->pdata,
                                      error) ||
            (o->keep_uuid && !cairn_restore_check_uuid(conn, m->uuid, r->name, error))) {
            if (conn)
                virConnectClose(conn);
            for (guint i = 0; i < n; i++)
                g_free(jobs[i].path);
            return FALSE;
        }
    }

    gboolean made_dir = !g_file_test(dir, G_FILE_TEST_IS_DIR);
    gboolean ok = cairn_mkdir_p(dir, 0755, error);
    g_autoptr(GHashTable) files = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    gint cancel = 0;
    for (guint i = 0; i < n && ok; i++) {
        CairnManifestDisk *d = m->disks->pdata[i];
        if (!jobs[i].path)
            continue;
        jobs[i].repo = repo;
        jobs[i].format = o->format;
        jobs[i].force = o->force;
        jobs[i].cancel = &cancel;
        if (!(jobs[i].index = cairn_index_load(repo, &d->index, error)))
            ok = FALSE;
        else
            g_hash_table_insert(files, d->target, g_strdup(jobs[i].path));
    }
    /* said once the disks are in place, not before */
    g_autoptr(GPtrArray) replace_notes = g_ptr_array_new_with_free_func(g_free);
    ok = ok && check_targets(conn, o->uri, r->name, dir, jobs, n, replace_notes, error);
    for (guint i = 0; i < n && ok; i++)
        if (jobs[i].index)
            threads[i] = g_thread_new("cairn-restore", disk_thread, &jobs[i]);
    for (guint i = 0; i < n; i++)
        if (threads[i])
            g_thread_join(threads[i]);
    if (ok && !take_disk_error(m, jobs, n, error)) {
        remove_restored(jobs, n, dir, made_dir);
        ok = FALSE;
    } else if (!ok) {
        remove_restored(jobs, n, dir, made_dir);
    } else if (!commit_restored(jobs, n, error)) {
        ok = FALSE;
    }
    for (guint i = 0; ok && i < replace_notes->len; i++)
        g_ptr_array_add(r->notes, g_strdup(replace_notes->pdata[i]));
    for (guint i = 0; i < n; i++) {
        g_clear_error(&jobs[i].error);
        if (jobs[i].index && ok && jobs[i].existed)
            note(r->notes, "replaced the existing file '%s' (--force)", jobs[i].path);
        if (jobs[i].st.stale_partials_removed)
            note(r->notes, "removed %" G_GUINT64_FORMAT " partial file%s of an interrupted "
                 "restore to '%s'", jobs[i].st.stale_partials_removed,
                 jobs[i].st.stale_partials_removed == 1 ? "" : "s", jobs[i].path);
        if (jobs[i].index && ok)
            json_array_append_new(r->disks, json_pack("{s:s, s:s, s:s, s:I}", "target",
                ((CairnManifestDisk *) m->disks->pdata[i])->target, "file", jobs[i].path,
                "format", ext, "bytes_written", (json_int_t) jobs[i].st.bytes_written));
        cairn_index_free(jobs[i].index);
        g_free(jobs[i].path);
    }
    if (ok) {
        g_autofree char *newxml = cairn_restore_write_xml(conn, o->uri, xml, r->name, m->name,
                                                          o->keep_uuid, o->keep_mac, files, ext,
                                                          dir, r->notes, &r->xml_path, error);
        ok = newxml != NULL;
        if (ok && o->define) {
            virDomainPtr dom = cairn_restore_define(conn, r->name, newxml, r->xml_path, r->notes,
                                                    error);
            if (!dom) {
                ok = FALSE;
            } else {
                r->defined = TRUE;
                if (o->start && virDomainCreate(dom) < 0) {
                    g_set_error(error, CAIRN_RESTORE_ERROR, CAIRN_RESTORE_ERROR_FAILED,
                                "domain '%s' is defined but did not start: %s", r->name,
                                virGetLastErrorMessage());
                    ok = FALSE;
                } else if (o->start) {
                    r->started = TRUE;
                }
                virDomainFree(dom);
            }
        }
    }
    if (conn)
        virConnectClose(conn);
    r->seconds = (double) (g_get_monotonic_time() - t0) / 1e6;
    return ok;
}
