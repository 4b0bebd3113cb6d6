#!/usr/bin/env bash
# concurrency.sh - backups run side by side in one repository; gc does not
# run under a backup: without --wait it refuses ("locked"), with --wait it
# runs once the backup is done; everything restores identically after.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

MIB=$((1024 * 1024))
cairn init >/dev/null
A=$WORKDIR/a.raw
B=$WORKDIR/b.raw
C=$WORKDIR/c.raw
make_mixed_raw "$A" $((24 * MIB + 512 * 1024))
make_random_raw "$B" $((32 * MIB))
make_random_raw "$C" $((300 * MIB))

# run_bg NAME ARGS...: a background cairn whose output goes to $WORKDIR/NAME.*
declare -A PIDS
run_bg() {
    local name=$1
    shift
    bg_cairn "$WORKDIR/$name.out" "$WORKDIR/$name.err" "$@"
    PIDS[$name]=$BG_PID
}
# wait_ok NAME: wait for it; it must have exited 0
wait_ok() {
    local rc=0
    wait "${PIDS[$1]}" || rc=$?
    [ "$rc" -eq 0 ] || fail "$1 exited $rc: $(cat "$WORKDIR/$1.err")"
}

check "two backups of different images at the same time both succeed"
run_bg backup-a backup --image "$A" --name a --json
run_bg backup-b backup --image "$B" --name b --json
wait_ok backup-a
wait_ok backup-b
check "two backups of the same image at the same time both succeed (racing on every chunk)"
run_bg backup-a2 backup --image "$B" --name b-twin-1 --json
run_bg backup-b2 backup --image "$B" --name b-twin-2 --json
wait_ok backup-a2
wait_ok backup-b2
for s in a b b-twin-1 b-twin-2; do
    [ "$(cairn snapshots "$s" --json | json_eval - 'len(j)')" -eq 1 ] || fail "no single snapshot of $s"
done

check "gc during a backup: without --wait it fails with 'locked' and deletes nothing"
objects_before=$(count_objects)
run_bg backup-c backup --image "$C" --name c --json
wait_for '[ "$(count_locks)" -gt 0 ]' 30 || fail "the backup took no lock in 30 s"
rc=0
cairn gc --grace 0 >"$WORKDIR/gc1.out" 2>"$WORKDIR/gc1.err" || rc=$?
[ "$rc" -ne 0 ] || fail "gc without --wait succeeded during a backup: $(cat "$WORKDIR/gc1.out")"
assert_contains "$WORKDIR/gc1.err" "locked" "stderr of gc during a backup"
assert_ge "$(count_objects)" "$objects_before" "object files after the refused gc"

check "gc --grace 0 --wait 5m started during the backup completes after it"
[ ! -s "$WORKDIR/backup-c.out" ] && group_alive "${PIDS[backup-c]}" ||
    fail "the 300 MiB backup ended before gc --wait could start (machine too fast for this test?)"
run_bg gc-wait gc --grace 0 --wait 5m --json
wait_ok gc-wait
# the backup prints its result after publishing, before releasing its lock
[ -s "$WORKDIR/backup-c.out" ] || fail "gc --wait finished before the backup had published"
wait_ok backup-c
assert_eq "$(json_get "$WORKDIR/gc-wait.out" snapshots)" 5 "snapshots seen by gc --wait"
assert_eq "$(json_get "$WORKDIR/gc-wait.out" objects_deleted)" 0 "objects deleted by gc (all are referenced)"
assert_eq "$(count_locks)" 0 "lock files left"

check "every snapshot restores identically (b-twin-2 is b-twin-1's twin: verify reads it)"
for pair in a:"$A" b:"$B" b-twin-1:"$B" c:"$C"; do
    name=${pair%%:*}
    img=${pair#*:}
    cairn restore-disk "$name@latest" vda --to "$WORKDIR/out.raw" --format raw >/dev/null
    cmp "$img" "$WORKDIR/out.raw" || fail "$name restores differently"
    rm -f "$WORKDIR/out.raw"
done

check "verify --read-data is clean"
cairn verify --read-data >/dev/null || fail "verify --read-data reported problems"
assert_no_leftover_processes
exit 0
