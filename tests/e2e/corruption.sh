#!/usr/bin/env bash
# corruption.sh - damaged objects are found and named: a flipped byte by
# verify --read-data and by restore (which then leaves no file behind), a
# deleted object by plain verify, a truncated one by verify --read-data.
# verify sets a damaged chunk aside; the next backup of the same data stores
# it again, which repairs the old snapshots; gc clears the entry.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

MIB=$((1024 * 1024))
cairn init >/dev/null
IMG=$WORKDIR/disk.raw
OTHER=$WORKDIR/other.raw
make_random_raw "$IMG" $((8 * MIB + 100 * 1024))
make_random_raw "$OTHER" $((2 * MIB))
SNAP=$(cairn backup --image "$IMG" --name disk --json | json_get - id)
OTHER_SNAP=$(cairn backup --image "$OTHER" --name other --json | json_get - id)

# chunk_id N: id of chunk N of disk vda of $SNAP, read from its index
INDEX=$(cairn show "$SNAP" --json | json_get - disks.0.index)
cairn cat "$INDEX" >"$WORKDIR/index.bin"
chunk_id() {
    dd if="$WORKDIR/index.bin" bs=32 skip=$(($1 + 1)) count=1 status=none | od -An -tx1 | tr -d ' \n'
}
obj_path() { echo "$REPO/objects/${1:0:2}/$1"; }

# flip_byte FILE: invert the byte in the middle of FILE, in place
flip_byte() {
    "$PYTHON" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
off = os.fstat(fd).st_size // 2
b = os.pread(fd, 1, off)
os.pwrite(fd, bytes([b[0] ^ 0xFF]), off)
os.close(fd)' "$1"
}

# restore_must_fail OBJECT FORMAT: restore of $SNAP fails naming OBJECT and
# leaves nothing in the (fresh) target directory
restore_must_fail() {
    local obj=$1 fmt=$2 dir=$WORKDIR/target-$2
    mkdir -p "$dir"
    expect_fail "$WORKDIR/err" cairn restore-disk "$SNAP" vda --to "$dir/out.img" --format "$fmt"
    assert_contains "$WORKDIR/err" "$obj" "stderr of restore-disk ($fmt)"
    [ -z "$(ls -A "$dir")" ] || fail "restore-disk ($fmt) left files behind: $(ls -A "$dir")"
    rmdir "$dir"
}

check "a healthy repository verifies (structure and data)"
cairn verify >/dev/null || fail "verify of a healthy repository"
cairn verify --read-data >/dev/null || fail "verify --read-data of a healthy repository"

# --- one flipped byte
C3=$(chunk_id 3)
P3=$(obj_path "$C3")
[ -f "$P3" ] || fail "chunk 3 ($C3) is not stored"
cp "$P3" "$WORKDIR/saved-c3"
flip_byte "$P3"
cmp -s "$P3" "$WORKDIR/saved-c3" && fail "the byte flip did not change $P3"
info "flipped one byte in the middle of chunk object $C3"

check "after a flipped byte, plain verify (structure only) still passes"
cairn verify >/dev/null || fail "plain verify failed on a data-only corruption"

check "verify --read-data exits 1 and names the object and the snapshot"
rc=0
cairn verify --read-data >"$WORKDIR/out" 2>"$WORKDIR/err" || rc=$?
assert_eq "$rc" 1 "exit status of verify --read-data"
assert_contains "$WORKDIR/err" "$C3" "stderr of verify --read-data"
assert_contains "$WORKDIR/err" "${SNAP:0:16}" "stderr of verify --read-data"
assert_not_contains "$WORKDIR/err" "${OTHER_SNAP:0:16}" "stderr of verify --read-data (healthy snapshot)"
rc=0
cairn verify --read-data --json >"$WORKDIR/v.json" 2>/dev/null || rc=$?
assert_eq "$rc" 1 "exit status of verify --read-data --json"
assert_eq "$(json_get "$WORKDIR/v.json" ok)" false "verify --json ok"
assert_eq "$(json_eval "$WORKDIR/v.json" "sum('$C3' in p for p in j['problems'])")" 1 \
    "problems naming the object in verify --json"

check "verify --read-data of the healthy snapshot alone passes"
cairn verify --read-data "$OTHER_SNAP" >/dev/null || fail "verify of the untouched snapshot"

check "restore-disk exits non-zero, names the object, leaves no output or temp file (raw, qcow2)"
restore_must_fail "$C3" raw
restore_must_fail "$C3" qcow2

check "the other snapshot still restores"
cairn restore-disk other@latest vda --to "$WORKDIR/other.out" >/dev/null
cmp "$OTHER" "$WORKDIR/other.out" || fail "the untouched snapshot restores differently"

cp "$WORKDIR/saved-c3" "$P3"
cairn verify --read-data >/dev/null || fail "verify --read-data after repairing chunk 3"

# --- a deleted object
C5=$(chunk_id 5)
P5=$(obj_path "$C5")
mv "$P5" "$WORKDIR/saved-c5"
check "a deleted chunk object: plain verify fails and names it"
rc=0
cairn verify >/dev/null 2>"$WORKDIR/err" || rc=$?
assert_eq "$rc" 1 "exit status of verify with a missing object"
assert_contains "$WORKDIR/err" "$C5" "stderr of verify"
assert_contains "$WORKDIR/err" "missing" "stderr of verify"
assert_contains "$WORKDIR/err" "${SNAP:0:16}" "stderr of verify"
check "restore-disk of a snapshot with a missing chunk fails cleanly"
restore_must_fail "$C5" raw
mv "$WORKDIR/saved-c5" "$P5"

# --- a truncated object
C7=$(chunk_id 7)
P7=$(obj_path "$C7")
cp "$P7" "$WORKDIR/saved-c7"
truncate -s $(($(file_size "$P7") / 2)) "$P7"
check "a truncated chunk object: verify --read-data fails and names it"
rc=0
cairn verify --read-data >/dev/null 2>"$WORKDIR/err" || rc=$?
assert_eq "$rc" 1 "exit status of verify --read-data with a truncated object"
assert_contains "$WORKDIR/err" "$C7" "stderr of verify --read-data"
restore_must_fail "$C7" raw
cp "$WORKDIR/saved-c7" "$P7"

# --- a damaged disk index and a damaged manifest: found by plain verify;
# gc refuses to run (it cannot tell what is referenced) and deletes nothing
for what in index manifest; do
    if [ "$what" = index ]; then obj=$INDEX; else obj=$SNAP; fi
    P=$(obj_path "$obj")
    cp "$P" "$WORKDIR/saved-$what"
    flip_byte "$P"
    check "a flipped byte in the $what: plain verify fails and names it; gc deletes nothing"
    rc=0
    cairn verify >/dev/null 2>"$WORKDIR/err" || rc=$?
    assert_eq "$rc" 1 "exit status of verify with a damaged $what"
    assert_contains "$WORKDIR/err" "$obj" "stderr of verify with a damaged $what"
    STATE=$(repo_state)
    expect_fail "$WORKDIR/err" cairn gc --grace 0
    assert_contains "$WORKDIR/err" "nothing deleted" "stderr of gc with a damaged $what"
    assert_eq "$(repo_state)" "$STATE" "repository after gc refused to run"
    cp "$WORKDIR/saved-$what" "$P"
done

check "once repaired, the repository verifies and restores again"
cairn verify --read-data >/dev/null || fail "verify --read-data after the repairs"
cairn restore-disk disk@latest vda --to "$WORKDIR/disk.out" >/dev/null
cmp "$IMG" "$WORKDIR/disk.out" || fail "restore after the repairs differs"
rm -f "$WORKDIR/disk.out"

# --- repair by a backup: verify sets a damaged object aside, the next backup
# of the same data stores it again, and the old snapshot restores again
C2=$(chunk_id 2)
P2=$(obj_path "$C2")
flip_byte "$P2"
check "a damaged chunk: a backup of the same data does not see it (dedup), verify does"
cairn backup --image "$IMG" --name disk-again >/dev/null
rc=0
cairn verify --read-data --json >"$WORKDIR/v.json" 2>"$WORKDIR/err" || rc=$?
assert_eq "$rc" 1 "exit status of verify --read-data with a damaged chunk"
assert_contains "$WORKDIR/err" "$C2" "stderr of verify"
assert_contains "$WORKDIR/err" "set 1 damaged object aside" "stderr of verify"
assert_eq "$(json_get "$WORKDIR/v.json" set_aside)" 1 "set_aside in verify --json"
[ ! -e "$P2" ] || fail "the damaged object is still in objects/"
[ -s "$REPO/quarantine/$C2" ] || fail "the damaged object is not in quarantine/"
check "the next backup of the same data stores the chunk again; every snapshot restores"
cairn backup --image "$IMG" --name disk-repair --json >"$WORKDIR/repair.json"
assert_gt "$(json_get "$WORKDIR/repair.json" bytes_new)" 0 "bytes_new of the repairing backup"
[ -f "$P2" ] || fail "the chunk was not stored again"
for s in "$SNAP" disk-again@latest disk-repair@latest; do
    cairn restore-disk "$s" vda --to "$WORKDIR/disk.out" --format raw >/dev/null ||
        fail "restore of $s after the repair"
    cmp "$IMG" "$WORKDIR/disk.out" || fail "restore of $s after the repair differs"
    rm -f "$WORKDIR/disk.out"
done
cairn verify --read-data >/dev/null || fail "verify --read-data after the repairing backup"
check "gc clears the quarantine entry of the repaired object"
cairn gc --grace 0 --json >"$WORKDIR/gc.json" || fail "gc after the repair"
# every object set aside in this test is whole again by now (put back by
# hand above, or stored again): every entry goes
assert_ge "$(json_get "$WORKDIR/gc.json" quarantine_cleared)" 1 "quarantine_cleared of gc"
assert_eq "$(ls -A "$REPO/quarantine")" "" "quarantine entries left after gc"
assert_no_leftover_processes
exit 0
