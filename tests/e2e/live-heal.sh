#!/usr/bin/env bash
# live-heal.sh - live backups survive what breaks checkpoints and jobs:
#  (a) QEMU killed with SIGKILL (its bitmaps are lost): the next backup is
#      full with a note, stores almost nothing new, restores exactly, and
#      the one after is incremental again;
#  (b) cairn killed with SIGKILL mid-backup: the next run ends the leftover
#      libvirt job, removes the socket and scratch files, and restores;
#  (c) libvirt lost a checkpoint's metadata (the bitmaps stay): cairn
#      redefines it from the repository and stays incremental;
#  (d) a checkpoint another tool made is left alone (with a note), and is
#      deleted with --take-over-checkpoints;
#  (e) a disk was resized: full, the reason says so;
#  (f) the domain was undefined and defined again with a new UUID: full,
#      the reason says so;
#  (g) a stale scratch file in cairn's scratch directory does not block
#      the backup;
#  (h) a chunk of the latest snapshot damaged: verify sets it aside, and the
#      next incremental reads that unchanged chunk again, which repairs the
#      older snapshot too.
# Every restore is compared with cmp against a reference with the same
# writes; after every backup exactly one cairn checkpoint is left.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/libvirt.sh"

DOM=cairn-e2e-$TEST_NAME
BUSY=$DOM-busy
define_domain "$DOM" 2 64M
# for (b); defined here: a scenario runs in a subshell, its cleanup_fn would be lost
define_domain "$BUSY" 2 160M --no-start
cairn init >/dev/null

# assert_restores_now DOM SNAP: every disk of SNAP equals its reference now
assert_restores_now() {
    local d
    for d in vda vdb; do
        assert_restore "$2" "$d" "$(ref_file "$1" "$d")"
    done
}
# assert_note OUT TEXT WHAT: a note on stderr and in --json contains TEXT
# (case-insensitive, extended regex)
assert_note() {
    grep -Eiq -- "^cairn backup: note: .*($2)" "$1.err" || {
        sed 's/^/    /' "$1.err" >&2
        fail "$3: no note on stderr matching '$2'"
    }
    # a here-string, not a pipe: grep -q may exit before the writer is done
    # and pipefail would turn its SIGPIPE into a failure
    grep -Ei -- "$2" >/dev/null <<<"$J_notes" || fail "$3: no note in --json matching '$2'"
}

info "setup: data on both disks, a first full backup"
ref_write "$DOM" vda random 0 2M
ref_write "$DOM" vda 0x5a 10M 1M
ref_write "$DOM" vdb random 20M 3M
backup_dom "$WORKDIR/b0" "$DOM"
assert_eq "$J_mode" full "mode of the first backup"
assert_after_live_backup "$DOM"
DATA=$((2 * MIB + MIB + 3 * MIB))

# ---- (a)
heal_qemu_killed() {
    check "(a) QEMU killed (SIGKILL) after writes: the next backup exits 0, full, with a note"
    ref_write "$DOM" vda random $((30 * MIB)) 64k
    ref_write "$DOM" vdb random $((40 * MIB + 64 * 1024)) 64k
    # a guest flushes what it wants to keep: unflushed qcow2 metadata (new
    # clusters) may die with QEMU, which is no concern of a backup tool
    qio "$DOM" vda flush
    qio "$DOM" vdb flush
    QPID=$(qemu_pid "$DOM")
    kill -KILL "$QPID"
    wait_for "! dom_running $DOM" 30 || fail "libvirt does not notice that QEMU ($QPID) died"
    start_domain "$DOM"
    backup_dom "$WORKDIR/a1" "$DOM"
    assert_eq "$J_mode" full "mode after QEMU was killed"
    assert_note "$WORKDIR/a1" "checkpoint|bitmap" "backup after QEMU was killed"
    assert_ge "$J_bytes_read" $((DATA + 2 * 64 * 1024)) "bytes_read after QEMU was killed (all data)"
    assert_lt "$J_bytes_new" $((2 * MIB + 64 * 1024)) \
        "bytes_new after QEMU was killed (two new chunks at most + indexes)"
    assert_after_live_backup "$DOM"
    check "(a) the backup after the QEMU kill restores exactly"
    assert_restores_now "$DOM" "$J_id"
    check "(a) the next backup is incremental again and restores exactly"
    ref_write "$DOM" vdb 0x44 $((50 * MIB)) 64k
    backup_dom "$WORKDIR/a2" "$DOM"
    assert_eq "$J_mode" incremental "mode of the backup after the healing one"
    assert_le "$J_bytes_read" "$MIB" "bytes_read of the backup after the healing one"
    assert_restores_now "$DOM" "$J_id"
    assert_after_live_backup "$DOM"
}
scenario "(a) QEMU killed" heal_qemu_killed

# ---- (c)
heal_checkpoint_metadata_lost() {
    check "(c) checkpoint metadata deleted in libvirt (bitmaps kept): redefined, incremental"
    CKPT=$(cairn_checkpoints "$DOM")
    virsh -q checkpoint-delete "$DOM" "$CKPT" --metadata >/dev/null ||
        fail "virsh checkpoint-delete $DOM $CKPT --metadata failed"
    [ -z "$(cairn_checkpoints "$DOM")" ] || fail "checkpoint $CKPT is still listed"
    ref_write "$DOM" vda random $((12 * MIB)) 64k
    backup_dom "$WORKDIR/c1" "$DOM"
    assert_note "$WORKDIR/c1" "redefined" "backup after the checkpoint metadata was deleted"
    assert_eq "$J_mode" incremental "mode after the checkpoint was redefined"
    assert_le "$J_bytes_read" "$MIB" "bytes_read after the checkpoint was redefined"
    assert_restores_now "$DOM" "$J_id"
    assert_after_live_backup "$DOM"
}
scenario "(c) checkpoint metadata lost" heal_checkpoint_metadata_lost

# ---- (d)
heal_foreign_checkpoint() {
    check "(d) a foreign checkpoint is left alone, with a note"
    virsh -q checkpoint-create-as "$DOM" foreign >/dev/null || fail "checkpoint-create-as foreign failed"
    backup_dom "$WORKDIR/d1" "$DOM"
    assert_note "$WORKDIR/d1" "did not create|foreign|take-over" "backup with a foreign checkpoint"
    virsh checkpoint-list "$DOM" --name >"$WORKDIR/cps"
    assert_contains "$WORKDIR/cps" foreign "checkpoints after a backup without --take-over-checkpoints"
    assert_after_live_backup "$DOM"
    check "(d) --take-over-checkpoints deletes it"
    backup_dom "$WORKDIR/d2" "$DOM" --take-over-checkpoints
    virsh checkpoint-list "$DOM" --name >"$WORKDIR/cps"
    assert_not_contains "$WORKDIR/cps" foreign "checkpoints after --take-over-checkpoints"
    assert_eq "$J_mode" incremental "mode with --take-over-checkpoints"
    assert_after_live_backup "$DOM"
}
scenario "(d) foreign checkpoint" heal_foreign_checkpoint

# ---- (e)
heal_resized() {
    check "(e) vdb resized (blockresize 64M -> 96M): full, the reason says 'resized'"
    virsh -q blockresize "$DOM" vdb 96M >/dev/null || fail "virsh blockresize failed"
    truncate -s 96M "$(ref_file "$DOM" vdb)"
    ref_write "$DOM" vdb random $((90 * MIB)) 64k
    backup_dom "$WORKDIR/e1" "$DOM"
    assert_eq "$J_mode" full "mode after a resize"
    [[ $J_reason == *resized* ]] || fail "reason after a resize: '$J_reason' does not mention 'resized'"
    assert_eq "$J_virtual_size" $((160 * MIB)) "virtual_size after the resize"
    assert_restores_now "$DOM" "$J_id"
    assert_after_live_backup "$DOM"
}
scenario "(e) disk resized" heal_resized

# ---- (g)
heal_stale_scratch() {
    check "(g) a stale scratch file in cairn's scratch directory does not block the backup"
    SCRATCH=$CAIRN_SCRATCH_BASE/$(dom_uuid "$DOM")
    mkdir -p "$SCRATCH"
    echo "stale scratch of a killed run" >"$SCRATCH/scratch-vda.qcow2"
    ref_write "$DOM" vda 0x66 $((14 * MIB)) 64k
    backup_dom "$WORKDIR/g1" "$DOM"
    assert_eq "$J_mode" incremental "mode with a stale scratch file"
    assert_restores_now "$DOM" "$J_id"
    assert_after_live_backup "$DOM"
}
scenario "(g) stale scratch file" heal_stale_scratch

# ---- (f)
heal_new_uuid() {
    check "(f) undefined and defined again with a new UUID: full, the reason says so"
    OLD_UUID=$(dom_uuid "$DOM")
    virsh dumpxml "$DOM" --inactive | grep -v '<uuid>' >"$WORKDIR/redefine.xml"
    stop_domain "$DOM"
    virsh -q undefine "$DOM" --checkpoints-metadata >/dev/null || fail "virsh undefine failed"
    virsh -q define "$WORKDIR/redefine.xml" >/dev/null || fail "virsh define (new UUID) failed"
    track_uuid "$DOM"
    [ "$(dom_uuid "$DOM")" != "$OLD_UUID" ] || fail "the domain kept its UUID"
    start_domain "$DOM"
    ref_write "$DOM" vda random $((16 * MIB)) 64k
    backup_dom "$WORKDIR/f1" "$DOM"
    assert_eq "$J_mode" full "mode after the domain was redefined"
    [[ $J_reason == *redefined* || $J_reason == *UUID* ]] ||
        fail "reason after a redefinition: '$J_reason' mentions neither 'redefined' nor 'UUID'"
    assert_restores_now "$DOM" "$J_id"
    assert_after_live_backup "$DOM"
    orphans=$(qemu-img info -U --output=json "$(dom_disk "$DOM" vda)" | json_eval - \
        "' '.join(b['name'] for b in j['format-specific']['data'].get('bitmaps', []))")
    info "(f) bitmaps in vda.qcow2 that libvirt no longer knows (left by the old definition): ${orphans:-none}"
}
scenario "(f) new UUID" heal_new_uuid

# ---- (h)
heal_damaged_chunk() {
    check "(h) a chunk of the latest snapshot damaged; verify sets it aside"
    backup_dom "$WORKDIR/h0" "$DOM"
    local snap=$J_id index chunk obj
    index=$(cairn show "$snap" --json | json_eval - "[d['index'] for d in j['disks'] if d['target'] == 'vdb'][0]")
    cairn cat "$index" >"$WORKDIR/h-index.bin"
    chunk=$("$PYTHON" -c '
import sys
b = open(sys.argv[1], "rb").read()[32:]
print(next(b[i:i + 32].hex() for i in range(0, len(b), 32) if any(b[i:i + 32])))' "$WORKDIR/h-index.bin")
    obj=$REPO/objects/${chunk:0:2}/$chunk
    printf '\x00\xff' | dd of="$obj" bs=1 seek=$(($(file_size "$obj") / 2)) conv=notrunc status=none
    expect_fail "$WORKDIR/h-verify.err" cairn verify --read-data
    assert_contains "$WORKDIR/h-verify.err" "set 1 damaged object aside" "verify"
    check "(h) the next incremental reads that unchanged chunk again and repairs every snapshot"
    ref_write "$DOM" vda random $((14 * MIB)) 64k
    backup_dom "$WORKDIR/h1" "$DOM"
    assert_eq "$J_mode" incremental "mode of the repairing backup"
    assert_note "$WORKDIR/h1" "read again" "the repairing backup"
    assert_le "$J_bytes_read" $((2 * MIB)) "bytes_read (the written chunk and the damaged one)"
    [ -f "$obj" ] || fail "the damaged chunk was not stored again"
    assert_restores_now "$DOM" "$J_id"
    assert_restore "$snap" vdb "$(ref_file "$DOM" vdb)"
    cairn verify --read-data >/dev/null || fail "verify after the repairing backup"
    assert_after_live_backup "$DOM"
}
scenario "(h) damaged chunk" heal_damaged_chunk

# ---- (b)
heal_cairn_killed() {
    check "(b) cairn killed (SIGKILL) mid-backup: the next run ends the job, removes leftovers"
    # 300 MiB of random data (written on the image files before the start:
    # cheaper than through the monitor): the backup takes seconds
    ref_write "$BUSY" vda random 0 150M
    ref_write "$BUSY" vdb random 8M 150M
    start_domain "$BUSY"
    local before rc ji
    before=$(count_snapshots)
    bg_cairn "$WORKDIR/killed.json" "$WORKDIR/killed.err" backup "$BUSY" --json
    wait_for_job_socket "$BUSY" 60 || fail "no NBD socket of the backup to kill: $(cat "$WORKDIR/killed.err")"
    kill -KILL "$BG_PID"
    rc=0
    wait "$BG_PID" 2>/dev/null || rc=$?
    assert_eq "$rc" 137 "exit status of the killed backup (it must not have finished)"
    ji=$(virsh domjobinfo "$BUSY")
    info "after the kill: libvirt $(printf '%s' "$ji" | awk -F': *' '/Job type|Operation/ { printf "%s: %s; ", $1, $2 }')" \
        "checkpoints: $(echo $(cairn_checkpoints "$BUSY")); files: $(echo $(find "$CAIRN_JOBS_BASE/$(dom_uuid "$BUSY")" "$CAIRN_SCRATCH_BASE/$(dom_uuid "$BUSY")" -mindepth 1 -printf '%f\n' 2>/dev/null))"
    backup_dom "$WORKDIR/b1" "$BUSY"
    assert_note "$WORKDIR/b1" "ended .*job" "backup after cairn was killed"
    assert_note "$WORKDIR/b1" "removed .*(left|leftover|interrupted)" "backup after cairn was killed"
    assert_ge "$J_bytes_read" $((300 * MIB)) "bytes_read after the killed backup (the 300 MiB written)"
    assert_after_live_backup "$BUSY"
    assert_eq "$(count_snapshots)" $((before + 1)) "snapshots (the killed backup published none)"
    check "(b) the backup after the kill restores exactly"
    assert_restores_now "$BUSY" "$J_id"
}
scenario "(b) cairn killed" heal_cairn_killed

finish_checks
exit 0
