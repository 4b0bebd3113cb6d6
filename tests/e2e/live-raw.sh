#!/usr/bin/env bash
# live-raw.sh - live backups of running domains with raw disks (files here;
# LVM volumes are raw too), where QEMU keeps no persistent dirty bitmap:
# libvirt refuses a checkpoint bitmap for them, so cairn's checkpoint covers
# only the qcow2 disks and each backup exports a raw disk whole
# (backupmode='full'). A qcow2 + raw domain: the incremental reads only the
# qcow2 disk's changed chunks and all of the raw disk's data, stores only
# the raw disk's changed chunks, and every snapshot restores byte for byte.
# An all-raw domain is backed up without any checkpoint, with a reason.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/libvirt.sh"

cairn init --json >"$WORKDIR/init.json"
CHUNK=$(json_get "$WORKDIR/init.json" chunk_size)
# defined here: a scenario runs in a subshell, its cleanup_fn would be lost
MIX=cairn-e2e-$TEST_NAME-mix
RAW=cairn-e2e-$TEST_NAME-raw
DOMAIN_RAW_DISKS=vdb define_domain "$MIX" 2 32M
DOMAIN_RAW_DISKS=vda define_domain "$RAW" 1 16M

# assert_text_has TEXT PART WHAT
assert_text_has() {
    case $1 in *"$2"*) ;; *) fail "$3: '$1' does not contain '$2'" ;; esac
}

mixed() {
    local DOM=$MIX
    check "qcow2 vda + raw vdb: the full backup"
    ref_write "$DOM" vda random 0 2M
    ref_write "$DOM" vdb random 4M 3M
    backup_dom "$WORKDIR/m1" "$DOM"
    ref_save "$DOM" m1
    local snap1=$J_id
    assert_eq "$J_mode" full "mode of the first backup"
    assert_eq "$J_targets" "vda vdb" "disks of the first backup"
    assert_after_live_backup "$DOM"
    assert_eq "$(virsh checkpoint-dumpxml "$DOM" "$(cairn_checkpoints "$DOM")" |
        grep -c "checkpoint='bitmap'")" 1 "disks with a bitmap in the checkpoint (vda only)"

    check "the incremental: vda's changed chunks, all of vdb's data read; vdb's changed chunks stored"
    ref_write "$DOM" vda random $((8 * MIB)) 64k
    ref_write "$DOM" vdb random $((20 * MIB)) 1M
    backup_dom "$WORKDIR/m2" "$DOM"
    ref_save "$DOM" m2
    local snap2=$J_id
    assert_eq "$J_mode" incremental "mode of the second backup"
    assert_text_has "$J_notes" "disk vdb: not qcow2" "note on the raw disk"
    assert_le "$J_vda_bytes_read" "$(covering 8M 64k "$CHUNK")" "vda bytes_read (its changed chunk)"
    assert_ge "$J_vdb_bytes_read" $((4 * MIB)) "vdb bytes_read (the whole disk's data, read again)"
    assert_le "$J_vdb_bytes_new" $(($(covering 20M 1M "$CHUNK") + 64 * 1024)) \
        "vdb bytes_new (its changed chunk + the index)"
    assert_after_live_backup "$DOM"

    check "both snapshots restore byte for byte"
    for d in vda vdb; do
        assert_restore "$snap1" "$d" "$(ref_at "$DOM" "$d" m1)"
        assert_restore "$snap2" "$d" "$(ref_at "$DOM" "$d" m2)"
    done
}

all_raw() {
    local DOM=$RAW
    check "an all-raw domain: backed up live without a checkpoint"
    ref_write "$DOM" vda random 1M 2M
    backup_dom "$WORKDIR/r1" "$DOM"
    ref_save "$DOM" r1
    assert_eq "$J_mode" full "mode"
    assert_text_has "$J_reason" "no disk keeps a dirty bitmap" "reason"
    ref_write "$DOM" vda random 9M 64k
    backup_dom "$WORKDIR/r2" "$DOM"
    ref_save "$DOM" r2
    assert_eq "$J_mode" full "mode of the second backup"
    assert_le "$J_vda_bytes_new" $(($(covering 9M 64k "$CHUNK") + 64 * 1024)) \
        "bytes_new of the second backup (the changed chunk + the index)"
    assert_eq "$(cairn_checkpoints "$DOM" | grep -c . || true)" 0 "cairn checkpoints"
    assert_no_job_leftovers "$DOM"
    assert_restore "$DOM@~1" vda "$(ref_at "$DOM" vda r1)"
    assert_restore "$DOM@latest" vda "$(ref_at "$DOM" vda r2)"
}

scenario "qcow2 + raw" mixed
scenario "all raw" all_raw
finish_checks
