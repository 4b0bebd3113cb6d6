#!/usr/bin/env bash
# live-offline.sh - backups of a shut-off domain (qemu-nbd, persistent
# qcow2 bitmaps "cairn-offline-*"): the first is offline and full; after
# qemu-io writes on the image files the next is incremental and reads only
# the chunks covering them; the domain started again gets correct live
# backups, and a shut-off -> running -> shut-off cycle keeps every restore
# exact. While an offline backup reads, `virsh start` fails on the image
# lock (or waits); afterwards the domain starts and its images are sound
# (qemu-img check).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/libvirt.sh"

DOM=cairn-e2e-$TEST_NAME
BUSY=$DOM-busy
define_domain "$DOM" 2 64M
# one disk: read by a single thread, its backup lasts seconds with 128 MiB
define_domain "$BUSY" 1 136M --no-start
cairn init --json >"$WORKDIR/init.json"
CHUNK=$(json_get "$WORKDIR/init.json" chunk_size)

# assert_restores_now DOM SNAP: every disk of SNAP equals its reference now
assert_restores_now() {
    local d
    for d in vda vdb; do
        assert_restore "$2" "$d" "$(ref_file "$1" "$d")"
    done
}
# image_bitmaps DOM DISK: the persistent bitmaps of the disk's qcow2 file
image_bitmaps() {
    qemu-img info -U --output=json "$(dom_disk "$1" "$2")" |
        json_eval - "' '.join(b['name'] for b in j['format-specific']['data'].get('bitmaps', []))"
}
# qemu_nbd_of DOM: qemu-nbd processes that have DOM's images open
qemu_nbd_of() {
    ps -eo pid=,args= | awk -v d="$IMAGES_BASE/$1/" '$2 ~ /qemu-nbd$/ && index($0, d)'
}
assert_offline_clean() {
    local left d b
    left=$(qemu_nbd_of "$1")
    [ -z "$left" ] || fail "qemu-nbd left running on the images of $1: $left"
    assert_no_job_leftovers "$1"
    for d in vda vdb; do
        b=$(image_bitmaps "$1" "$d")
        info "$d bitmaps: ${b:-none}"
        assert_eq "$(printf '%s\n' $b | grep -c '^cairn-offline-' || true)" 1 \
            "cairn-offline-* bitmaps in $d.qcow2 of $1"
    done
}

offline_full() {
    check "shut-off domain (destroyed after live writes): backup is offline and full"
    ref_write "$DOM" vda random 0 2M
    ref_write "$DOM" vda 0x5a 10M 1M
    ref_write "$DOM" vdb random 20M 3M
    stop_domain "$DOM"
    backup_dom "$WORKDIR/o1" "$DOM"
    assert_eq "$J_offline" true "offline"
    assert_eq "$J_mode" full "mode of the first offline backup"
    assert_ge "$J_bytes_read" $((6 * MIB)) "bytes_read of the offline full backup (all data)"
    assert_offline_clean "$DOM"
    check "the offline full backup restores exactly"
    assert_restores_now "$DOM" "$J_id"
}

offline_incremental() {
    check "qemu-io writes on the image files (domain off): the next backup is an offline incremental"
    ref_write "$DOM" vda random $((5 * MIB + 128 * 1024)) 64k
    ref_write "$DOM" vdb random $((40 * MIB + 512 * 1024)) 1M # two chunks
    local cover
    cover=$(($(covering $((5 * MIB + 128 * 1024)) 64k "$CHUNK") +
        $(covering $((40 * MIB + 512 * 1024)) 1M "$CHUNK")))
    backup_dom "$WORKDIR/o2" "$DOM"
    assert_eq "$J_offline" true "offline"
    assert_eq "$J_mode" incremental "mode after offline writes"
    assert_gt "$J_bytes_read" 0 "bytes_read of the offline incremental"
    assert_le "$J_bytes_read" "$cover" "bytes_read of the offline incremental (chunks written)"
    assert_gt "$J_sum_chunks_reused" 0 "chunks_reused of the offline incremental"
    assert_offline_clean "$DOM"
    check "the offline incremental restores exactly"
    assert_restores_now "$DOM" "$J_id"
}

# no_offline_bitmaps DOM: none of cairn's offline bitmaps is left in its images
no_offline_bitmaps() {
    local d
    for d in vda vdb; do
        assert_eq "$(printf '%s\n' $(image_bitmaps "$1" "$d") | grep -c '^cairn-offline-' || true)" 0 \
            "cairn-offline-* bitmaps in $d.qcow2 of the running $1"
    done
}

started_again() {
    check "started again: the live backup reads only the changes since the offline one (its bitmaps)"
    start_domain "$DOM"
    ref_write "$DOM" vda random $((30 * MIB)) 64k
    backup_dom "$WORKDIR/o3" "$DOM"
    assert_eq "$J_offline" false "offline of the running domain's backup"
    assert_eq "$J_mode" incremental "mode of the live backup after an offline one"
    assert_contains "$WORKDIR/o3.err" "from its bitmap cairn-offline-" "the note"
    assert_le "$J_bytes_read" "$(covering 30M 64k "$CHUNK")" "bytes_read (the one write since)"
    assert_after_live_backup "$DOM"
    no_offline_bitmaps "$DOM"
    assert_restores_now "$DOM" "$J_id"
}

cycle() {
    check "shut off again, image writes: offline backup (incremental from the live checkpoint)"
    ref_write "$DOM" vdb random $((45 * MIB)) 64k # live, before the shutdown
    stop_domain "$DOM"
    ref_write "$DOM" vdb 0x77 $((50 * MIB)) 64k # offline, on the image
    backup_dom "$WORKDIR/o4" "$DOM"
    assert_eq "$J_offline" true "offline"
    assert_eq "$J_mode" incremental "mode of the offline backup after a live one"
    assert_le "$J_bytes_read" $((2 * CHUNK)) "bytes_read (the live and the offline write)"
    assert_offline_clean "$DOM"
    assert_restores_now "$DOM" "$J_id"

    check "running again: live backup after the offline one restores exactly"
    start_domain "$DOM"
    ref_write "$DOM" vda 0x78 $((60 * MIB)) 64k
    backup_dom "$WORKDIR/o5" "$DOM"
    assert_eq "$J_offline" false "offline of the running domain's backup"
    assert_after_live_backup "$DOM"
    assert_restores_now "$DOM" "$J_id"

    check "shut off again: offline backup restores exactly"
    stop_domain "$DOM"
    ref_write "$DOM" vda random $((62 * MIB)) 64k
    backup_dom "$WORKDIR/o6" "$DOM"
    assert_eq "$J_offline" true "offline"
    assert_offline_clean "$DOM"
    assert_restores_now "$DOM" "$J_id"
}

start_during_backup() {
    check "virsh start while an offline backup reads: fails on the image lock (or waits)"
    # 128 MiB of random data on the image file: the backup takes seconds
    fill_random "$BUSY" vda 8M 128M
    bg_cairn "$WORKDIR/busy.json" "$WORKDIR/busy.err" backup "$BUSY" --json
    local first=$BG_PID rc=0 running_after
    wait_for "[ -n \"\$(qemu_nbd_of $BUSY)\" ]" 30 ||
        fail "the offline backup did not start qemu-nbd: $(cat "$WORKDIR/busy.err")"
    virsh -q start "$BUSY" >"$WORKDIR/start.out" 2>"$WORKDIR/start.err" || rc=$?
    running_after=false
    group_alive "$first" && running_after=true
    if [ "$rc" -ne 0 ]; then
        info "virsh start failed: $(tr '\n' ' ' <"$WORKDIR/start.err")"
        # libvirt says why QEMU did not start, or (when QEMU exits before its
        # monitor answers) only that the monitor is gone: QEMU's log says why
        tail -n 5 "/var/log/libvirt/qemu/$BUSY.log" >>"$WORKDIR/start.err" 2>/dev/null || true
        assert_contains "$WORKDIR/start.err" lock "virsh start's error (or QEMU's log) during the offline backup"
    else
        info "virsh start succeeded (the backup still running: $running_after)"
        [ "$running_after" = false ] ||
            fail "the domain started while the offline backup still had its images open"
    fi
    rc=0
    wait "$first" || rc=$?
    [ "$rc" -eq 0 ] || { sed 's/^/    /' "$WORKDIR/busy.err" >&2; fail "the offline backup exited $rc"; }
    json_load "$WORKDIR/busy.json"
    info "the offline backup: $J_summary"
    assert_eq "$J_offline" true "offline"

    check "after the offline backup the domain starts; its images pass qemu-img check"
    dom_running "$BUSY" || start_domain "$BUSY"
    stop_domain "$BUSY"
    qemu-img check -q "$(dom_disk "$BUSY" vda)" ||
        fail "qemu-img check of $(dom_disk "$BUSY" vda) found problems"
}

scenario "offline full" offline_full
scenario "offline incremental" offline_incremental
scenario "started again" started_again
scenario "off-on-off cycle" cycle
scenario "start during offline backup" start_during_backup

crash_after_offline() {
    check "offline backup, start, QEMU killed: the broken offline bitmap is removed, resize works"
    dom_running "$DOM" && stop_domain "$DOM"
    backup_dom "$WORKDIR/k1" "$DOM"
    assert_eq "$J_offline" true "offline"
    start_domain "$DOM"
    kill -KILL "$(qemu_pid "$DOM")"
    wait_for "! dom_running $DOM" 30 || fail "$DOM still runs after kill -9 of its QEMU"
    start_domain "$DOM"
    ref_write "$DOM" vdb random $((12 * MIB)) 64k
    backup_dom "$WORKDIR/k2" "$DOM"
    assert_contains "$WORKDIR/k2.err" "of the offline snapshot cannot be used" "the note"
    assert_after_live_backup "$DOM"
    no_offline_bitmaps "$DOM"
    assert_restores_now "$DOM" "$J_id"
    virsh -q blockresize "$DOM" vda 80M >"$WORKDIR/resize.out" 2>&1 ||
        fail "virsh blockresize after the backup: $(cat "$WORKDIR/resize.out")"
}
scenario "QEMU killed after an offline backup" crash_after_offline

full_after_offline() {
    check "a --full live backup after an offline one leaves no offline bitmap in the running images"
    dom_running "$DOM" && stop_domain "$DOM"
    backup_dom "$WORKDIR/ff1" "$DOM"
    assert_eq "$J_offline" true "offline"
    start_domain "$DOM"
    backup_dom "$WORKDIR/ff2" "$DOM" --full
    assert_contains "$WORKDIR/ff2.err" "removed the stale bitmap cairn-offline-" "the note"
    no_offline_bitmaps "$DOM"
    assert_after_live_backup "$DOM"
}
scenario "--full after an offline backup" full_after_offline
finish_checks
exit 0
