#!/usr/bin/env bash
# restore-serve.sh - `cairn serve` and `cairn restore --instant` on a live
# backup of a running two-disk domain.
#   serve: the NBD export of a disk (unix socket and TCP on 127.0.0.1) has
#     the disk's size, reports holes, and equals what restore-disk writes
#     (qemu-img compare, nbdcopy + cmp); SIGTERM stops it and removes the
#     socket. From a repository copy with one damaged chunk, reading the
#     export fails (EIO: nbdcopy exits non-zero) and the error names the
#     object.
#   instant: the new domain runs within seconds, before its disks are
#     copied (vda holds 256 MiB of random data); after the pull its disks
#     are plain local qcow2 files without NBD backing, no server is left,
#     and their content equals the snapshot; the holes were not copied.
#   instant from the damaged copy: the report names the damaged object;
#   a server killed during the pull is reported, and the domain keeps
#     running; ^C during the pull leaves the domain its servers, and the
#     pull completes without cairn.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/libvirt.sh"
need nbdkit nbdinfo nbdcopy

DOM=cairn-e2e-$TEST_NAME
NEW=$DOM-new
DIE=$DOM-die
INT=$DOM-int
BAD=$DOM-bad
for n in "$NEW" "$DIE" "$INT" "$BAD"; do
    stop_instant_servers "$n"
    _remove_domain "$n"
    cleanup_fn _remove_domain "$n"
    cleanup_fn stop_instant_servers "$n"
done

define_domain "$DOM" 2 320M
cairn init >/dev/null
info "writing 256 MiB of random data into vda, 8 MiB into vdb"
ref_write "$DOM" vda random 0 256M
ref_write "$DOM" vda 0x5a 300M 1M
ref_write "$DOM" vdb random 16M 8M
ref_write "$DOM" vdb 0x11 200M 64k
backup_dom "$WORKDIR/b1" "$DOM"
SNAP=$J_id
for d in vda vdb; do
    cairn restore-disk "$SNAP" $d --to "$WORKDIR/$d.raw" --format raw >/dev/null ||
        fail "restore-disk $d failed"
    cmp "$(ref_file "$DOM" $d)" "$WORKDIR/$d.raw" || fail "restore-disk $d differs from the reference"
done
SIZE=$(file_size "$WORKDIR/vdb.raw")

# serve_bg OUT SNAPSHOT DISK ARGS...: `cairn serve` in the background; waits
# for its URI line (sets URI, SERVE_PID)
serve_bg() {
    local out=$1
    shift
    bg_cairn "$out" "$out.err" serve "$@"
    SERVE_PID=$BG_PID
    wait_for "[ -s '$out' ] || ! kill -0 $SERVE_PID 2>/dev/null" 60 || fail "serve $* is not ready"
    [ -s "$out" ] || { sed 's/^/    /' "$out.err" >&2; fail "cairn serve $* exited before serving"; }
    URI=$(head -n1 "$out")
    SERVE_ERR=$out.err
}
# stop_serve: SIGTERM, it exits 0
stop_serve() {
    local rc=0
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID" || rc=$?
    [ "$rc" -eq 0 ] || { sed 's/^/    /' "$SERVE_ERR" >&2; fail "cairn serve exited $rc after SIGTERM"; }
}

check "serve on a unix socket: size, holes, and the same bytes as restore-disk"
SOCK=$WORKDIR/vdb.sock
serve_bg "$WORKDIR/serve1" "$DOM@latest" vdb --socket "$SOCK"
assert_eq "$URI" "nbd+unix:///vdb?socket=$SOCK" "the URI line"
assert_eq "$(nbdinfo --size "$URI")" "$SIZE" "size of the export"
nbdinfo --map "$URI" >"$WORKDIR/map"
grep -q 'hole,zero' "$WORKDIR/map" || fail "no hole reported: $(cat "$WORKDIR/map")"
grep -q 'data' "$WORKDIR/map" || fail "no data reported: $(cat "$WORKDIR/map")"
qemu-img compare -f raw -F raw "$URI" "$WORKDIR/vdb.raw" >/dev/null ||
    fail "qemu-img compare: the export differs from restore-disk's output"
nbdcopy "$URI" "$WORKDIR/copy.raw" || fail "nbdcopy of the export failed"
cmp "$WORKDIR/copy.raw" "$WORKDIR/vdb.raw" || fail "nbdcopy of the export differs"
rm -f "$WORKDIR/copy.raw"

check "SIGTERM stops serve cleanly: exit 0, socket removed, no nbdkit left"
stop_serve
[ ! -e "$SOCK" ] || fail "the socket $SOCK is left"
assert_no_leftover_processes

check "serve on TCP 127.0.0.1 (vda, 256 MiB random): qemu-img compare identical"
PORT=$((20000 + RANDOM % 20000))
serve_bg "$WORKDIR/serve2" "$SNAP" vda --port "$PORT"
assert_eq "$URI" "nbd://127.0.0.1:$PORT/vda" "the URI line"
ss -Hltn "sport = :$PORT" | grep -q '127.0.0.1:' || fail "not listening on 127.0.0.1:$PORT only"
qemu-img compare -f raw -F raw "$URI" "$WORKDIR/vda.raw" >/dev/null ||
    fail "qemu-img compare: the vda export differs from restore-disk's output"
stop_serve

check "a damaged chunk: reading the export fails with EIO, the error names the object"
cp -a "$REPO" "$WORKDIR/repo-bad"
INDEX=$(cairn show "$SNAP" --json | json_eval - "[d['index'] for d in j['disks'] if d['target'] == 'vdb'][0]")
cairn cat "$INDEX" >"$WORKDIR/index.bin"
# first data entry of vdb's index (zero = hole)
CHUNK=$("$PYTHON" -c '
import sys
b = open(sys.argv[1], "rb").read()[32:]
print(next(b[i:i + 32].hex() for i in range(0, len(b), 32) if any(b[i:i + 32])))' "$WORKDIR/index.bin")
OBJ=$WORKDIR/repo-bad/objects/${CHUNK:0:2}/$CHUNK
[ -f "$OBJ" ] || fail "chunk $CHUNK is not stored"
printf '\x00\xff\x00\xff' | dd of="$OBJ" bs=1 seek=$(($(file_size "$OBJ") / 2)) conv=notrunc status=none
SOCK=$WORKDIR/bad.sock
REPO_SAVED=$REPO
REPO=$WORKDIR/repo-bad
serve_bg "$WORKDIR/serve3" "$SNAP" vdb --socket "$SOCK"
REPO=$REPO_SAVED
rc=0
# one request in flight: nbdkit 1.32 aborts (assertion in raw_send_socket)
# when a client hangs up while several replies of one connection are being
# sent, which nbdcopy does on the first error
nbdcopy --connections=1 --requests=1 "$URI" "$WORKDIR/bad.raw" 2>"$WORKDIR/nbdcopy.err" || rc=$?
assert_gt "$rc" 0 "exit status of nbdcopy over a damaged chunk"
assert_contains "$WORKDIR/nbdcopy.err" "Input/output error" "nbdcopy's error"
assert_contains "$WORKDIR/serve3.err" "$CHUNK" "the server's error (names the object)"
assert_contains "$WORKDIR/serve3.err" "corrupt" "the server's error"
stop_serve

check "instant restore of that damaged snapshot: the report names the damaged object"
REPO=$WORKDIR/repo-bad
expect_fail "$WORKDIR/ibad.err" cairn restore "$SNAP" --instant --name "$BAD"
REPO=$REPO_SAVED
sed 's/^/    stderr: /' "$WORKDIR/ibad.err"
assert_contains "$WORKDIR/ibad.err" "the snapshot is damaged" "the report"
assert_contains "$WORKDIR/ibad.err" "$CHUNK" "the report (names the object)"
_remove_domain "$BAD" # first: nbdkit serves its client before it stops
stop_instant_servers "$BAD"
rm -rf "$WORKDIR/repo-bad" "$WORKDIR/bad.raw"

check "restore --instant: the domain runs within seconds, before its disks are copied"
bg_cairn "$WORKDIR/inst.json" "$WORKDIR/inst.err" restore "$SNAP" --instant --name "$NEW" --json
INST_PID=$BG_PID
WAIT_FOR_INTERVAL=0.01 wait_for "grep -q 'running after' '$WORKDIR/inst.err' || ! kill -0 $INST_PID" 60 ||
    fail "no 'running after' line"
state=$(virsh domstate "$NEW" 2>&1 | head -n1) || true
# the overlay still reads from the NBD export: the pull is not finished
backing=$(qemu-img info -U --output=json "$IMAGES_BASE/$NEW/$NEW-vda.qcow2" |
    json_eval - "j.get('backing-filename', '')")
pulling=$(kill -0 "$INST_PID" 2>/dev/null && echo yes || echo no)
sed 's/^/    stderr: /' "$WORKDIR/inst.err"
assert_eq "$state" running "domain state once cairn printed 'running after'"
assert_eq "$pulling" yes "cairn still copying when the domain runs"
case $backing in nbd*) ;; *) fail "the overlay of vda has no NBD backing while running: '$backing'" ;; esac
rc=0
wait "$INST_PID" || rc=$?
[ "$rc" -eq 0 ] || { sed 's/^/    /' "$WORKDIR/inst.err" >&2; fail "restore --instant exited $rc"; }
run_s=$(json_get "$WORKDIR/inst.json" running_seconds)
pull_s=$(json_get "$WORKDIR/inst.json" pull_seconds)
info "TIMING: $NEW running after $run_s s (vda 320 MiB with 256 MiB random data, vdb 320 MiB)," \
    "disks copied in $pull_s s"
assert_eq "$(json_get "$WORKDIR/inst.json" pulled)" true "pulled"
assert_lt "$(printf '%.0f' "$run_s")" 10 "seconds until the domain runs"

check "after the pull: plain local qcow2 disks, no NBD backing, no server left"
assert_eq "$(virsh domstate "$NEW" | head -n1)" running "domain state after the pull"
virsh dumpxml "$NEW" >"$WORKDIR/new.xml"
assert_not_contains "$WORKDIR/new.xml" "protocol='nbd'" "the live XML"
assert_not_contains "$WORKDIR/new.xml" "backingStore type='network'" "the live XML"
for d in vda vdb; do
    f=$IMAGES_BASE/$NEW/$NEW-$d.qcow2
    grep -qF "file='$f'" "$WORKDIR/new.xml" || fail "$d is not the local overlay $f"
    qemu-img info -U --output=json "$f" >"$WORKDIR/info-$d.json"
    assert_eq "$(json_get "$WORKDIR/info-$d.json" format)" qcow2 "format of $d"
    assert_eq "$(json_eval "$WORKDIR/info-$d.json" "'backing-filename' in j")" false \
        "$d has a backing file"
done
[ ! -e "$INSTANT_RUN/$NEW" ] || fail "run directory left: $(ls -la "$INSTANT_RUN/$NEW")"
left=$(ps -e -ww -o comm=,args= | awk '$1 == "nbdkit"' | grep -F "$INSTANT_RUN/$NEW/" || true)
[ -z "$left" ] || fail "an nbdkit of $NEW is left: $left"

check "the copied disks equal the snapshot"
stop_domain "$NEW"
for d in vda vdb; do
    qemu-img compare -f qcow2 -F raw "$IMAGES_BASE/$NEW/$NEW-$d.qcow2" "$WORKDIR/$d.raw" >/dev/null ||
        fail "$d of $NEW differs from the snapshot"
done
check "the pull copied vdb's data, not its holes (9 MiB of 320 MiB allocated in the snapshot)"
alloc=$(qemu-img map --output=json "$IMAGES_BASE/$NEW/$NEW-vdb.qcow2" |
    json_eval - "sum(e['length'] for e in j if e['present'])")
info "vdb of $NEW: $alloc bytes allocated"
assert_le "$alloc" $((16 * MIB)) "bytes allocated in the pulled vdb"

check "a server killed during the pull is reported; the domain keeps running"
bg_cairn "$WORKDIR/die.out" "$WORKDIR/die.err" restore "$SNAP" --instant --name "$DIE"
DIE_PID=$BG_PID
WAIT_FOR_INTERVAL=0.01 wait_for "grep -q 'running after' '$WORKDIR/die.out' || ! kill -0 $DIE_PID" 60 ||
    fail "no 'running after' line"
pid=$(cat "$INSTANT_RUN/$DIE/vda.pid")
assert_eq "$(cat "/proc/$pid/comm")" nbdkit "process of $INSTANT_RUN/$DIE/vda.pid"
kill -KILL "$pid"
rc=0
wait "$DIE_PID" || rc=$?
sed 's/^/    stderr: /' "$WORKDIR/die.err"
if [ "$rc" -eq 0 ]; then
    # the pull won the race against the kill: nothing to report then
    info "the pull of $DIE completed before the server was killed; not checked"
else
    assert_contains "$WORKDIR/die.err" "disk vda" "the report"
    assert_contains "$WORKDIR/die.err" "its NBD server (nbdkit) exited" "the report"
    assert_contains "$WORKDIR/die.err" "virsh blockpull $DIE vda" "the report"
    assert_eq "$(virsh domstate "$DIE" | head -n1)" running "domain state after its server died"
fi

check "^C during the pull: the servers keep serving, the pull completes without cairn"
bg_cairn "$WORKDIR/int.out" "$WORKDIR/int.err" restore "$SNAP" --instant --name "$INT"
INT_PID=$BG_PID
WAIT_FOR_INTERVAL=0.01 wait_for "grep -q 'running after' '$WORKDIR/int.out' || ! kill -0 $INT_PID" 60 ||
    fail "no 'running after' line"
kill -INT "$INT_PID"
rc=0
wait "$INT_PID" || rc=$?
sed 's/^/    stderr: /' "$WORKDIR/int.err"
if [ "$rc" -eq 0 ]; then
    info "the pull of $INT completed before ^C arrived; not checked"
else
    assert_contains "$WORKDIR/int.err" "interrupted" "the report"
    for d in vda vdb; do
        pid=$(cat "$INSTANT_RUN/$INT/$d.pid")
        assert_eq "$(cat "/proc/$pid/comm" 2>/dev/null)" nbdkit "the server of $d after ^C"
    done
    assert_eq "$(virsh domstate "$INT" | head -n1)" running "domain state after ^C"
    for d in vda vdb; do
        wait_for "virsh blockjob '$INT' $d --info 2>&1 | grep -q 'No current block job'" 120 ||
            fail "the pull of $d does not end"
    done
    stop_instant_servers "$INT"
    stop_domain "$INT"
    for d in vda vdb; do
        qemu-img compare -f qcow2 -F raw "$IMAGES_BASE/$INT/$INT-$d.qcow2" "$WORKDIR/$d.raw" \
            >/dev/null || fail "$d of $INT differs from the snapshot"
    done
fi
