#!/usr/bin/env bash
# crash.sh - `cairn backup` killed with SIGKILL at several points never
# leaves a damaged repository, a partial snapshot or a process behind (its
# qemu-nbd must end too): verify --read-data stays clean, a later backup of
# mostly the same data (which reuses whatever the killed runs stored)
# restores identically, and gc removes the leftovers.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

MIB=$((1024 * 1024))
IMG=$WORKDIR/big.raw
make_random_raw "$IMG" $((300 * MIB))
cairn init >/dev/null
info "image: 300 MiB of random data"

# true once the backup's qemu-nbd has started (same process group)
has_qemu_nbd() {
    ps -e -o pgid=,comm= | awk -v g="$1" '$1 == g && $2 == "qemu-nbd" { f = 1 } END { exit !f }'
}

# kill points (not readiness waits): "nbd" = the moment its qemu-nbd has
# started (the NBD handshake may still be running; several tries, as the
# moment is caught only about half of the time), then from "still
# starting" to "well into the backup", and "stored" = once 20 objects are in
for point in nbd nbd nbd 0.05 0.2 0.5 1.0 stored; do
    # fresh data in every tenth MiB: a killed run stores chunks that no
    # later snapshot references, for gc to find
    "$PYTHON" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for mib in range(0, 300, 10):
    os.pwrite(fd, os.urandom(1 << 20), mib << 20)
os.close(fd)' "$IMG"
    # shellcheck disable=SC2034 # read by the "stored" wait_for condition
    objects_before=$(count_objects)
    before=$(count_snapshots)
    bg_cairn "$WORKDIR/out" "$WORKDIR/err" backup --image "$IMG" --name crash --json
    if [ "$point" = nbd ]; then
        WAIT_FOR_INTERVAL=0 wait_for "has_qemu_nbd $BG_PID || ! group_alive $BG_PID" 30 ||
            fail "the backup started no qemu-nbd in 30 s"
        label="as soon as its qemu-nbd started"
    elif [ "$point" = stored ]; then
        wait_for '[ "$(count_objects)" -ge $((objects_before + 20)) ]' 60 ||
            fail "the backup stored no 20 objects in 60 s"
        label="once it had stored 20 objects"
    else
        sleep "$point"
        label="after ${point}s"
    fi
    kill -KILL "$BG_PID" 2>/dev/null || true
    rc=0
    { wait "$BG_PID"; } 2>/dev/null || rc=$?
    check "kill -9 $label: no child process (qemu-nbd) lives on"
    # cairn's qemu-nbd (same process group) must end by itself
    if ! wait_for "! group_alive $BG_PID" 5; then
        defer_fail "killed $label, cairn's child lives on, orphaned:" \
            "$(ps -o pid=,stat=,etime=,args= -g "$BG_PID")"
        kill -TERM -- "-$BG_PID" 2>/dev/null || true
        wait_for "! group_alive $BG_PID" 10 || fail "cannot stop the orphaned qemu-nbd"
    fi
    after=$(count_snapshots)
    info "killed $label: exit $rc, $(count_objects) objects, $(count_temps) temp files," \
        "$(count_locks) lock files, snapshots $before -> $after"

    check "kill -9 $label: no snapshot unless the run had finished"
    if [ "$rc" -eq 0 ]; then
        info "the backup finished before the kill point"
        assert_eq "$after" $((before + 1)) "snapshots after a finished backup"
    else
        assert_eq "$rc" 137 "exit status of the killed backup"
        [ ! -s "$WORKDIR/out" ] || fail "a killed backup printed a result: $(cat "$WORKDIR/out")"
        # killed between publishing and exiting, the snapshot must be whole
        [ "$after" -eq "$before" ] || [ "$after" -eq $((before + 1)) ] ||
            fail "snapshots went from $before to $after"
    fi

    check "kill -9 $label: verify --read-data exits 0"
    cairn verify --read-data >"$WORKDIR/v.out" 2>"$WORKDIR/v.err" || {
        cat "$WORKDIR/v.out" "$WORKDIR/v.err" >&2
        fail "verify --read-data after the kill $label"
    }
done

check "a final backup (the same image, 30 MiB changed) succeeds and restores identically"
# new data once more: what the last killed run stored is not all reused
"$PYTHON" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for mib in range(5, 300, 10):
    os.pwrite(fd, os.urandom(1 << 20), mib << 20)
os.close(fd)' "$IMG"
cp "$IMG" "$WORKDIR/final.raw"
cairn backup --image "$IMG" --name crash --json >"$WORKDIR/final.json"
FINAL=$(json_get "$WORKDIR/final.json" id)
cairn verify --read-data >/dev/null || fail "verify --read-data after the final backup"
cairn restore-disk "$FINAL" vda --to "$WORKDIR/restored.raw" >/dev/null
cmp "$WORKDIR/final.raw" "$WORKDIR/restored.raw" || fail "the final backup restores differently"
rm -f "$WORKDIR/restored.raw"

check "gc --grace 0 removes the leftovers (unreferenced objects, temp files, stale locks)"
temps_before=$(count_temps)
cairn gc --grace 0 --json >"$WORKDIR/gc.json"
deleted=$(json_get "$WORKDIR/gc.json" objects_deleted)
temps_removed=$(json_get "$WORKDIR/gc.json" temp_files_removed)
info "gc: $deleted objects deleted, $temps_removed of $temps_before temp files removed"
# killed runs leave chunks under their names or only as temp files (a
# writer that links its objects in batches): gc must find one or the other
assert_gt $((deleted + temps_removed)) 0 "objects and temp files deleted by gc"
assert_eq "$deleted" $(($(json_get "$WORKDIR/gc.json" objects_total) - $(json_get "$WORKDIR/gc.json" objects_live))) \
    "objects deleted by gc (all unreferenced ones)"
assert_eq "$temps_removed" "$temps_before" "temp files removed by gc"
assert_eq "$(count_temps)" 0 "temp files left after gc"
assert_eq "$(count_objects)" "$(json_get "$WORKDIR/gc.json" objects_live)" "objects after gc"
assert_eq "$(count_locks)" 0 "lock files left after gc (stale ones of killed runs)"

check "after gc: verify --read-data is clean (every chunk of the final snapshot is still there)"
cairn verify --read-data >/dev/null || fail "verify --read-data after gc"
assert_no_leftover_processes
exit 0
