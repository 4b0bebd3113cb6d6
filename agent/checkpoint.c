/* checkpoint.c - checkpoints and backup job XML. */
#include "config.h"

#include <string.h>
#include <time.h>

#include "agent/checkpoint.h"
#include "common/util.h"

char *
cairn_checkpoint_new_name(void)
{
    time_t t = (time_t) cairn_now();
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    g_autofree char *rnd = cairn_random_hex(3);
    return g_strdup_printf(CAIRN_CHECKPOINT_PREFIX "%s-%s", buf, rnd);
}

gboolean
cairn_checkpoint_is_ours(const char *name)
{
    return g_str_has_prefix(name, CAIRN_CHECKPOINT_PREFIX);
}

GPtrArray *
cairn_checkpoint_list(virDomainPtr dom, GError **error)
{
    virDomainCheckpointPtr *cps = NULL;
    int n = virDomainListAllCheckpoints(dom, &cps, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL);
    if (n < 0) {
        cairn_virt_set_error(error, CAIRN_VIRT_ERROR_FAILED, "cannot list checkpoints of '%s'",
                             virDomainGetName(dom));
        return NULL;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < n; i++) {
        g_ptr_array_add(names, g_strdup(virDomainCheckpointGetName(cps[i])));
        virDomainCheckpointFree(cps[i]);
    }
    free(cps);
    return names;
}

gboolean
cairn_checkpoint_exists(virDomainPtr dom, const char *name)
{
    virDomainCheckpointPtr cp = virDomainCheckpointLookupByName(dom, name, 0);
    if (!cp) {
        virResetLastError();
        return FALSE;
    }
    virDomainCheckpointFree(cp);
    return TRUE;
}

gboolean
cairn_checkpoint_delete(virDomainPtr dom, const char *name, GError **error)
{
    g_autoptr(virDomainCheckpoint) cp = virDomainCheckpointLookupByName(dom, name, 0);
    if (!cp) {
        virResetLastError();
        return TRUE; /* already gone */
    }
    if (virDomainCheckpointDelete(cp, 0) == 0)
        return TRUE;
    g_autofree char *first = g_strdup(virGetLastErrorMessage());
    virResetLastError();
    /* bitmaps lost with a crashed QEMU: drop what libvirt still remembers */
    if (virDomainCheckpointDelete(cp, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY) == 0)
        return TRUE;
    cairn_virt_set_error(error, CAIRN_VIRT_ERROR_FAILED, "cannot delete checkpoint '%s' of '%s' "
                         "(%s)", name, virDomainGetName(dom), first);
    return FALSE;
}

char *
cairn_checkpoint_get_xml(virDomainPtr dom, const char *name, GError **error)
{
    g_autoptr(virDomainCheckpoint) cp = virDomainCheckpointLookupByName(dom, name, 0);
    char *xml = cp ? virDomainCheckpointGetXMLDesc(cp, 0) : NULL;
    if (!xml) {
        cairn_virt_set_error(error, CAIRN_VIRT_ERROR_FAILED, "cannot read checkpoint '%s'", name);
        return NULL;
    }
    char *copy = g_strdup(xml);
    free(xml);
    return copy;
}

gboolean
cairn_checkpoint_redefine(virDomainPtr dom, const char *xml, GError **error)
{
    /* its parent was an older checkpoint cairn has deleted since: the
     * checkpoint stands alone (its bitmaps are independent of the parent's) */
    g_autoptr(GRegex) re = g_regex_new("<parent>\\s*<name>[^<]*</name>\\s*</parent>\\s*", 0, 0, NULL);
    g_autofree char *alone = g_regex_replace_literal(re, xml, -1, 0, "", 0, NULL);
    g_autoptr(virDomainCheckpoint) cp =
        virDomainCheckpointCreateXML(dom, alone ? alone : xml,
                                     VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE |
                                               VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE);
    if (!cp) {
        cairn_virt_set_error(error, CAIRN_VIRT_ERROR_BITMAP, "cannot redefine checkpoint");
        return FALSE;
    }
    return TRUE;
}

static void
append_escaped(GString *s, const char *attr, const char *value)
{
    g_autofree char *esc = g_markup_escape_text(value, -1);
    g_string_append_printf(s, " %s='%s'", attr, esc);
}

char *
cairn_backup_xml(const char *socket, const char *scratch_dir, const char *incremental,
                 GPtrArray *backup_targets, GPtrArray *full_targets, GPtrArray *other_targets)
{
    GString *s = g_string_new("<domainbackup mode='pull'>\n");
    if (incremental) {
        g_autofree char *esc = g_markup_escape_text(incremental, -1);
        g_string_append_printf(s, "  <incremental>%s</incremental>\n", esc);
    }
    g_string_append(s, "  <server transport='unix'");
    append_escaped(s, "socket", socket);
    g_string_append(s, "/>\n  <disks>\n");
    for (guint i = 0; i < backup_targets->len; i++) {
        const char *t = backup_targets->pdata[i];
        g_autofree char *scratch = g_strdup_printf("%s/scratch-%s.qcow2", scratch_dir, t);
        g_string_append(s, "    <disk");
        append_escaped(s, "name", t);
        /* a disk without a bitmap of the checkpoint is exported whole */
        if (incremental && full_targets &&
            g_ptr_array_find_with_equal_func(full_targets, t, g_str_equal, NULL))
            g_string_append(s, " backupmode='full'");
        g_string_append(s, " backup='yes' type='file'><scratch");
        append_escaped(s, "file", scratch);
        g_string_append(s, "/></disk>\n");
    }
    for (guint i = 0; other_targets && i < other_targets->len; i++) {
        g_string_append(s, "    <disk");
        append_escaped(s, "name", other_targets->pdata[i]);
        g_string_append(s, " backup='no'/>\n");
    }
    g_string_append(s, "  </disks>\n</domainbackup>\n");
    return g_string_free(s, FALSE);
}

/* <disks> of a checkpoint: a bitmap (named 'bitmap', NULL: as the
 * checkpoint) for each of 'with', none for the others; closes the document */
static char *
checkpoint_disks(GString *s, const char *bitmap, GPtrArray *with, GPtrArray *without,
                 GPtrArray *others)
{
    g_string_append(s, "  <disks>\n");
    for (guint i = 0; i < with->len; i++) {
        g_string_append(s, "    <disk");
        append_escaped(s, "name", with->pdata[i]);
        g_string_append(s, " checkpoint='bitmap'");
        if (bitmap)
            append_escaped(s, "bitmap", bitmap);
        g_string_append(s, "/>\n");
    }
    GPtrArray *none[] = { without, others };
    for (guint k = 0; k < G_N_ELEMENTS(none); k++)
        for (guint i = 0; none[k] && i < none[k]->len; i++) {
            g_string_append(s, "    <disk");
            append_escaped(s, "name", none[k]->pdata[i]);
            g_string_append(s, " checkpoint='no'/>\n");
        }
    g_string_append(s, "  </disks>\n</domaincheckpoint>\n");
    return g_string_free(s, FALSE);
}

char *
cairn_checkpoint_xml(const char *name, GPtrArray *bitmap_targets, GPtrArray *no_bitmap_targets,
                     GPtrArray *other_targets)
{
    GString *s = g_string_new("<domaincheckpoint>\n");
    g_autofree char *esc = g_markup_escape_text(name, -1);
    g_string_append_printf(s, "  <name>%s</name>\n  <description>created by cairn for its "
                           "next incremental backup</description>\n", esc);
    return checkpoint_disks(s, NULL, bitmap_targets, no_bitmap_targets, other_targets);
}

char *
cairn_checkpoint_adopt_xml(const char *bitmap, int64_t created, GPtrArray *bitmap_targets,
                           GPtrArray *no_bitmap_targets)
{
    GString *s = g_string_new("<domaincheckpoint>\n");
    g_autofree char *esc = g_markup_escape_text(bitmap, -1);
    g_string_append_printf(s, "  <name>%s</name>\n  <description>bitmaps of an offline backup "
                           "by cairn</description>\n  <creationTime>%" G_GINT64_FORMAT
                           "</creationTime>\n", esc, created);
    return checkpoint_disks(s, bitmap, bitmap_targets, no_bitmap_targets, NULL);
}

gboolean
cairn_checkpoint_adopt(virDomainPtr dom, const char *xml, gboolean validate, GError **error)
{
    unsigned flags = VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE |
                     (validate ? VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE : 0);
    g_autoptr(virDomainCheckpoint) cp = virDomainCheckpointCreateXML(dom, xml, flags);
    if (!cp) {
        cairn_virt_set_error(error, CAIRN_VIRT_ERROR_BITMAP, "cannot adopt the bitmap");
        return FALSE;
    }
    return TRUE;
}
