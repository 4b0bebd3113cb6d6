#!/usr/bin/env bash
# restore-interrupt.sh - a restore stopped midway leaves no partial file:
# SIGINT or SIGTERM make restore-disk stop, remove its hidden partial file,
# say so and exit non-zero; a restore killed with SIGKILL (which nothing can
# clean up after) has its partial file removed by the next restore to the
# same target, which says so and restores exactly. The restore is frozen
# (SIGSTOP) while its partial file exists, so each signal lands midway.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

MIB=$((1024 * 1024))
IMG=$WORKDIR/disk.raw
make_random_raw "$IMG" $((256 * MIB))
cairn init >/dev/null
cairn backup --image "$IMG" --name disk >/dev/null
OUT=$WORKDIR/out
mkdir -p "$OUT"

partials() { find "$OUT" -name '.*.cairn-partial-*' | wc -l; }

# start_frozen: restore-disk in the background, frozen once its partial
# file exists (BG_PID)
start_frozen() {
    bg_cairn "$WORKDIR/r.out" "$WORKDIR/r.err" restore-disk disk@latest vda --to "$OUT/vda.raw"
    WAIT_FOR_INTERVAL=0 wait_for '[ "$(partials)" -gt 0 ] || ! kill -0 $BG_PID 2>/dev/null' 30 ||
        fail "no partial file appeared"
    kill -STOP "$BG_PID" 2>/dev/null || true
    [ "$(partials)" -gt 0 ] && [ ! -e "$OUT/vda.raw" ] ||
        fail "the restore finished before it could be frozen midway (make the image larger)"
}

for sig in INT TERM; do
    check "SIG$sig midway: the restore stops, removes its partial file, exits non-zero"
    start_frozen
    kill -"$sig" "$BG_PID"
    kill -CONT "$BG_PID"
    rc=0
    wait "$BG_PID" || rc=$?
    sed 's/^/    stderr: /' "$WORKDIR/r.err"
    assert_gt "$rc" 0 "exit status after SIG$sig"
    assert_contains "$WORKDIR/r.err" "interrupted by SIG$sig" "the error"
    assert_eq "$(partials)" 0 "partial files left after SIG$sig"
    [ ! -e "$OUT/vda.raw" ] || fail "an interrupted restore left the target file"
done

check "SIGKILL midway leaves a partial file; the next restore removes it and says so"
start_frozen
kill -KILL "$BG_PID"
wait "$BG_PID" 2>/dev/null || true
assert_eq "$(partials)" 1 "partial files after SIGKILL"
expect_ok "$WORKDIR/again" cairn restore-disk disk@latest vda --to "$OUT/vda.raw"
assert_contains "$WORKDIR/again.err" "removed 1 partial file of an interrupted restore" "the note"
assert_eq "$(partials)" 0 "partial files after the next restore"
cmp "$IMG" "$OUT/vda.raw" || fail "the restore after the killed one differs from the image"

check "a partial file a running restore is writing is not removed by another restore"
rm -f "$OUT/vda.raw"
start_frozen
expect_ok "$WORKDIR/other" cairn restore-disk disk@latest vda --to "$OUT/vda.raw" --force
assert_not_contains "$WORKDIR/other.err" "removed" "the second restore's notes"
assert_eq "$(partials)" 1 "partial files (the frozen restore's own)"
kill -CONT "$BG_PID"
wait "$BG_PID" || fail "the frozen restore failed once it went on"
assert_eq "$(partials)" 0 "partial files after both"
cmp "$IMG" "$OUT/vda.raw" || fail "the restored file differs from the image"

