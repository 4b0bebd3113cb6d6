/* test-domain-xml.c - restore/domain.h: the rewrite of a saved domain XML
 * for a restore (name, UUID, MACs, disk sources, disks left out of a clone). */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "restore/domain.h"

/* a domain as `virsh dumpxml --inactive` gives it: a qcow2 disk with a
 * backing chain, a second data disk, a network disk, a CD-ROM, a shared
 * disk and a NIC */
static const char *const XML =
    "<domain type='kvm'>\n"
    "  <name>web01</name>\n"
    "  <uuid>0f4b2c1e-4bb8-4c52-9f8e-5a3c2b1d0e9f</uuid>\n"
    "  <os>\n"
    "    <type arch='x86_64' machine='q35'>hvm</type>\n"
    "    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>\n"
    "    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/srv/vm/web01_VARS.fd</nvram>\n"
    "  </os>\n"
    "  <devices>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source file='/srv/vm/web01-vda.qcow2'/>\n"
    "      <backingStore type='file'><format type='qcow2'/>"
    "<source file='/srv/vm/base.qcow2'/></backingStore>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/srv/vm/web01-vdb.raw'/>\n"
    "      <target dev='vdb' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='network' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source protocol='rbd' name='pool/web01-data'/>\n"
    "      <target dev='vdc' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <source file='/srv/iso/install.iso'/>\n"
    "      <target dev='sda' bus='sata'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/srv/vm/cluster-quorum.raw'/>\n"
    "      <target dev='vdd' bus='virtio'/>\n"
    "      <shareable/>\n"
    "    </disk>\n"
    "    <interface type='network'>\n"
    "      <mac address='52:54:00:12:34:56'/>\n"
    "      <source network='default'/>\n"
    "    </interface>\n"
    "  </devices>\n"
    "</domain>\n";

typedef struct {
    GHashTable *files;
    GPtrArray *notes;
} Fixture;

static int
setup(void **state)
{
    Fixture *f = g_new0(Fixture, 1);
    f->files = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(f->files, "vda", "/var/lib/libvirt/images/new/new-vda.qcow2");
    f->notes = g_ptr_array_new_with_free_func(g_free);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    Fixture *f = *state;
    g_hash_table_unref(f->files);
    g_ptr_array_unref(f->notes);
    g_free(f);
    return 0;
}

/* XML restored as 'name' (the snapshot's domain is web01) */
static char *
rewrite_as(Fixture *f, const char *name, gboolean keep, GHashTable *taken, const char *nvram)
{
    g_autoptr(GError) error = NULL;
    char *out = cairn_domain_xml_rewrite(XML, name, "web01", keep, keep, f->files, taken,
                                         "qcow2", nvram, f->notes, &error);
    if (!out)
        fail_msg("rewrite failed: %s", error->message);
    return out;
}

static char *
rewrite(Fixture *f, const char *name, gboolean keep)
{
    return rewrite_as(f, name, keep, NULL, NULL);
}

static const char *
note_with(Fixture *f, const char *part)
{
    for (guint i = 0; i < f->notes->len; i++)
        if (strstr(f->notes->pdata[i], part))
            return f->notes->pdata[i];
    return NULL;
}

static void
test_restored_disk_points_at_the_new_file(void **state)
{
    Fixture *f = *state;
    g_autofree char *out = rewrite(f, "new", FALSE);
    assert_non_null(strstr(out, "<name>new</name>"));
    assert_non_null(strstr(out, "<source file=\"/var/lib/libvirt/images/new/new-vda.qcow2\"/>"));
    assert_null(strstr(out, "web01-vda.qcow2"));
    assert_null(strstr(out, "backingStore")); /* the copy is flat */
    assert_null(strstr(out, "base.qcow2"));
    assert_null(strstr(out, "<uuid>"));
    assert_null(strstr(out, "52:54:00:12:34:56"));
    assert_non_null(strstr(out, "<source network=\"default\"/>")); /* the NIC stays */
}

static void
test_keep_uuid_and_mac(void **state)
{
    Fixture *f = *state;
    g_autofree char *out = rewrite(f, "web01", TRUE);
    assert_non_null(strstr(out, "<uuid>0f4b2c1e-4bb8-4c52-9f8e-5a3c2b1d0e9f</uuid>"));
    assert_non_null(strstr(out, "52:54:00:12:34:56"));
}

/* a clone must never write the original's disks */
static void
test_clone_leaves_out_the_originals_disks(void **state)
{
    Fixture *f = *state;
    g_autofree char *out = rewrite(f, "web01-copy", FALSE);
    assert_null(strstr(out, "/srv/vm/web01-vdb.raw"));
    assert_null(strstr(out, "pool/web01-data"));
    assert_null(strstr(out, "dev=\"vdb\""));
    assert_null(strstr(out, "dev=\"vdc\""));
    const char *n = note_with(f, "disk vdb was not restored");
    assert_non_null(n);
    assert_non_null(strstr(n, "'/srv/vm/web01-vdb.raw'"));
    assert_non_null(strstr(n, "'web01'"));
    assert_non_null(note_with(f, "disk vdc was not restored"));
    assert_non_null(strstr(note_with(f, "disk vdc"), "pool/web01-data"));
    /* what two domains may share stays: the CD-ROM, the shareable disk */
    assert_non_null(strstr(out, "/srv/iso/install.iso"));
    assert_non_null(strstr(out, "/srv/vm/cluster-quorum.raw"));
    assert_null(note_with(f, "disk sda was not restored"));
    assert_null(note_with(f, "disk vdd was not restored"));
}

/* the domain itself (same name): its disks that were not restored over are
 * kept where they are; one whose source is gone is reported */
static void
test_same_name_keeps_the_other_disks(void **state)
{
    Fixture *f = *state;
    g_autofree char *out = rewrite(f, "web01", FALSE);
    assert_non_null(strstr(out, "/srv/vm/web01-vdb.raw"));
    assert_non_null(strstr(out, "pool/web01-data"));
    assert_null(note_with(f, "was not restored: left out"));
    const char *n = note_with(f, "disk vdb was not in the snapshot");
    assert_non_null(n); /* /srv/vm/web01-vdb.raw does not exist here */
    assert_non_null(strstr(n, "does not exist"));
}

static void
test_not_a_domain(void **state)
{
    Fixture *f = *state;
    g_autoptr(GError) error = NULL;
    char *out = cairn_domain_xml_rewrite("<network><name>x</name></network>", "a", "b", FALSE,
                                         FALSE, f->files, NULL, "qcow2", NULL, f->notes, &error);
    assert_null(out);
    assert_non_null(error);
    g_clear_error(&error);
    out = cairn_domain_xml_rewrite("<domain><name>", "a", "b", FALSE, FALSE, f->files, NULL, "qcow2",
                                   NULL, f->notes, &error);
    assert_null(out);
    assert_non_null(error);
}

/* the domain itself, but its old disk is another domain's now (it was
 * renamed): left out all the same */
static void
test_same_name_disk_of_another_domain(void **state)
{
    Fixture *f = *state;
    g_autoptr(GHashTable) taken = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(taken, "/srv/vm/web01-vdb.raw", "web01-old");
    g_autofree char *out = rewrite_as(f, "web01", FALSE, taken, NULL);
    assert_null(strstr(out, "/srv/vm/web01-vdb.raw"));
    const char *n = note_with(f, "disk vdb was not restored");
    assert_non_null(n);
    assert_non_null(strstr(n, "'web01-old'"));
    assert_non_null(strstr(out, "pool/web01-data")); /* not taken: kept */
}

/* a clone never shares the original's UEFI variables */
static void
test_clone_nvram(void **state)
{
    Fixture *f = *state;
    g_autofree char *orig = cairn_domain_xml_nvram(XML);
    assert_string_equal(orig, "/srv/vm/web01_VARS.fd");
    g_autofree char *copy = rewrite_as(f, "web01-copy", FALSE, NULL, "/new/web01-copy_VARS.fd");
    assert_non_null(strstr(copy, ">/new/web01-copy_VARS.fd</nvram>"));
    assert_null(strstr(copy, "/srv/vm/web01_VARS.fd"));
    assert_non_null(note_with(f, "own copy of the UEFI variables"));
    g_autofree char *fresh = rewrite(f, "web01-copy", FALSE);
    assert_null(strstr(fresh, "web01_VARS.fd<"));
    assert_non_null(strstr(fresh, "template=\"/usr/share/OVMF/OVMF_VARS_4M.fd\""));
    assert_non_null(note_with(f, "new UEFI variables from the firmware's template"));
    g_autofree char *same = rewrite(f, "web01", FALSE);
    assert_non_null(strstr(same, ">/srv/vm/web01_VARS.fd</nvram>"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restored_disk_points_at_the_new_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_keep_uuid_and_mac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_leaves_out_the_originals_disks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_same_name_keeps_the_other_disks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_nvram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_name_disk_of_another_domain, setup, teardown),
    };
    return cmocka_run_group_tests_name("domain-xml", tests, NULL, NULL);
}
