#!/usr/bin/env bash
# live-backup.sh - live backups of a running two-disk domain (libvirt
# pull-mode backup jobs): a full backup, an incremental that reads only the
# chunks covering the writes since, one without writes that reads nothing;
# every disk of every snapshot restores (by id and by DOM@~N) to exactly
# what the disk held at that backup; --disk and --exclude-disk; a second
# backup of a domain while one runs fails fast with "already running".
# After every backup exactly one cairn checkpoint is left and no job,
# socket or scratch file.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/libvirt.sh"

DOM=cairn-e2e-$TEST_NAME
# small disks: every restore is compared whole with cmp
define_domain "$DOM" 2 64M
cairn init --json >"$WORKDIR/init.json"
CHUNK=$(json_get "$WORKDIR/init.json" chunk_size)
info "repository chunk size: $CHUNK"

check "backup 1: full, of data on both disks"
ref_write "$DOM" vda random 0 3M
ref_write "$DOM" vda 0x5a 10M 1M
ref_write "$DOM" vdb random 20M 2M
ref_write "$DOM" vdb 0x11 60M 64k
backup_dom "$WORKDIR/b1" "$DOM"
ref_save "$DOM" b1
SNAP1=$J_id
assert_eq "$J_mode" full "mode of the first backup"
assert_eq "$J_offline" false "offline of a running domain's backup"
assert_eq "$J_consistency" crash "consistency without a guest agent"
assert_eq "$J_targets" "vda vdb" "disks of the first backup"
data1=$((3 * MIB + MIB + 2 * MIB + 64 * 1024))
cover1=$(($(covering 0 3M "$CHUNK") + $(covering 10M 1M "$CHUNK") +
    $(covering 20M 2M "$CHUNK") + $(covering 60M 64k "$CHUNK")))
assert_ge "$J_bytes_read" "$data1" "bytes_read of the full backup (all data)"
assert_le "$J_bytes_read" "$cover1" "bytes_read of the full backup (only chunks holding data)"
assert_eq "$J_virtual_size" $((128 * MIB)) "virtual_size"
assert_after_live_backup "$DOM"

check "backup 2: incremental after a 64 KiB and a 1 MiB write reads only their chunks"
ref_write "$DOM" vda random $((5 * MIB + 128 * 1024)) 64k
# not chunk aligned: it touches two chunks
ref_write "$DOM" vdb random $((40 * MIB + 512 * 1024)) 1M
backup_dom "$WORKDIR/b2" "$DOM"
ref_save "$DOM" b2
SNAP2=$J_id
cover_a=$(covering $((5 * MIB + 128 * 1024)) 64k "$CHUNK")
cover_b=$(covering $((40 * MIB + 512 * 1024)) 1M "$CHUNK")
info "chunks covering the writes: vda $cover_a bytes, vdb $cover_b bytes"
assert_eq "$J_mode" incremental "mode of the second backup"
assert_gt "$J_bytes_read" 0 "bytes_read of the incremental"
assert_le "$J_bytes_read" $((cover_a + cover_b)) \
    "bytes_read of the incremental (the chunks covering the writes)"
assert_le "$J_vda_bytes_read" "$cover_a" "vda bytes_read"
assert_le "$J_vdb_bytes_read" "$cover_b" "vdb bytes_read"
assert_le "$J_bytes_new" $((cover_a + cover_b + 64 * 1024)) \
    "bytes_new of the incremental (new chunks + indexes)"
assert_gt "$J_vda_chunks_reused" 0 "vda chunks_reused"
assert_gt "$J_vdb_chunks_reused" 0 "vdb chunks_reused"
assert_after_live_backup "$DOM"

check "backup 3: no writes since: reads 0 bytes, stores no new chunk"
backup_dom "$WORKDIR/b3" "$DOM"
ref_save "$DOM" b3
SNAP3=$J_id
assert_eq "$J_mode" incremental "mode of the third backup"
assert_eq "$J_bytes_read" 0 "bytes_read without writes"
assert_eq "$J_sum_chunks_new" 0 "chunks_new without writes"
assert_gt "$J_sum_chunks_reused" 0 "chunks_reused without writes"
assert_after_live_backup "$DOM"

check "every disk of every snapshot restores (by id and by $DOM@~N) as it was at its backup"
n=2
for b in 1 2 3; do
    snap_var=SNAP$b
    for disk in vda vdb; do
        assert_restore "${!snap_var}" "$disk" "$(ref_at "$DOM" "$disk" "b$b")"
        assert_restore "$DOM@~$n" "$disk" "$(ref_at "$DOM" "$disk" "b$b")"
    done
    n=$((n - 1))
done
# each restore was compared against its own time
! cmp -s "$(ref_at "$DOM" vdb b1)" "$(ref_at "$DOM" vdb b2)" || fail "references b1 and b2 are equal"

check "--disk vdb backs up only vdb"
ref_write "$DOM" vda 0x21 30M 64k
ref_write "$DOM" vdb 0x22 30M 64k
backup_dom "$WORKDIR/b4" "$DOM" --disk vdb
SNAP4=$J_id
assert_eq "$J_targets" vdb "disks of the --disk vdb backup"
cairn show "$SNAP4" --json >"$WORKDIR/show4.json"
assert_eq "$(disk_targets "$WORKDIR/show4.json")" vdb "disks of the --disk vdb snapshot (cairn show)"
assert_restore "$SNAP4" vdb "$(ref_file "$DOM" vdb)"
expect_fail "$WORKDIR/r4.err" cairn restore-disk "$SNAP4" vda --to "$WORKDIR/none.raw" --format raw
assert_contains "$WORKDIR/r4.err" "no disk 'vda'" "restore-disk of the disk left out"
assert_after_live_backup "$DOM"

check "--exclude-disk vda backs up only vdb"
ref_write "$DOM" vda 0x31 50M 64k
ref_write "$DOM" vdb 0x32 50M 64k
backup_dom "$WORKDIR/b5" "$DOM" --exclude-disk vda
assert_eq "$J_targets" vdb "disks of the --exclude-disk vda backup"
assert_restore "$J_id" vdb "$(ref_file "$DOM" vdb)"
assert_after_live_backup "$DOM"

check "both disks again after the partial backups: they restore as they are now"
backup_dom "$WORKDIR/b6" "$DOM"
assert_eq "$J_targets" "vda vdb" "disks of the backup after partial ones"
assert_restore "$J_id" vda "$(ref_file "$DOM" vda)"
assert_restore "$J_id" vdb "$(ref_file "$DOM" vdb)"
assert_after_live_backup "$DOM"

check "a second backup of a domain while one runs fails fast with 'already running'"
BUSY=$DOM-busy
define_domain "$BUSY" 2 160M --no-start
# 300 MiB of random data (written on the image files before the start:
# cheaper than through the monitor): its first backup takes seconds
fill_random "$BUSY" vda 0 150M
fill_random "$BUSY" vdb 8M 150M
start_domain "$BUSY"
bg_cairn "$WORKDIR/bg.json" "$WORKDIR/bg.err" backup "$BUSY" --json
FIRST=$BG_PID
wait_for_job_socket "$BUSY" 60 ||
    fail "the first backup's NBD socket did not appear: $(cat "$WORKDIR/bg.err")"
t0=$(date +%s%N)
expect_fail "$WORKDIR/second.err" cairn backup "$BUSY" --json
ms=$((($(date +%s%N) - t0) / 1000000))
still=false
group_alive "$FIRST" && still=true
info "the second backup failed in $ms ms (exit $LAST_RC): $(cat "$WORKDIR/second.err")"
assert_contains "$WORKDIR/second.err" "already running" "the second backup's error"
assert_eq "$still" true "the first backup still runs when the second fails (no waiting for it)"
assert_le "$ms" 10000 "milliseconds the second backup took to fail"
[ ! -s "$WORKDIR/second.err.out" ] || fail "the failed backup printed: $(cat "$WORKDIR/second.err.out")"
rc=0
wait "$FIRST" || rc=$?
[ "$rc" -eq 0 ] || { sed 's/^/    /' "$WORKDIR/bg.err" >&2; fail "the first backup exited $rc"; }
json_load "$WORKDIR/bg.json"
info "the first backup: $J_summary"
assert_ge "$J_bytes_read" $((300 * MIB)) "bytes_read of the first backup"
assert_after_live_backup "$BUSY"
assert_eq "$(count_snapshots)" 7 "snapshots in the repository (the refused backup published none)"
finish_checks
exit 0
