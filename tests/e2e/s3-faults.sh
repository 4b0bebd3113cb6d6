#!/usr/bin/env bash
# s3-faults.sh - push, pull and verify through a proxy that injects S3
# faults (503 SlowDown, connections dropped mid-response, truncated GET
# bodies) all succeed and restore byte-identically, and the proxy's counters
# show every kind of fault was injected. Tampering on the bucket: a chunk
# shared by two snapshots is named by pull (which publishes neither of them
# but still moves the other snapshots) and by verify --read-data on the
# bucket; a damaged disk index is named by pull, which still moves the rest.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

MIB=$((1024 * 1024))
J=$WORKDIR/json
BUCKET=cairn-faults
URL=$(s3_url $BUCKET/kvm)

start_ceph
make_bucket $BUCKET
# every 7th request: 503 SlowDown; every 11th: dropped after the server
# acted; every 3rd GET: body cut in half. At most 2 faults in a row for one
# request (cairn retries 5 times).
start_fault_proxy "$CEPH_RGW_PORT" --slowdown-every 7 --drop-every 11 --truncate-every 3 \
    --max-faults 2
info "fault proxy on 127.0.0.1:$PROXY_PORT in front of $S3_ENDPOINT"
add_remote flaky $BUCKET/kvm "http://127.0.0.1:$PROXY_PORT"
add_remote direct $BUCKET/kvm
stat_of() { json_get "$PROXY_STATS" "$1"; }

# vm-c first (so a pull handles it first), two snapshots of vm-a that share
# their first chunk, vm-b
make_random_raw "$WORKDIR/c.raw" $((3 * MIB))
make_mixed_raw "$WORKDIR/a.raw" $((14 * MIB + 512))
cp "$WORKDIR/a.raw" "$WORKDIR/a2.raw"
overwrite_random "$WORKDIR/a2.raw" $((8 * MIB)) "$MIB"
{ head -c $((9 * MIB)) /dev/urandom; head -c $((2 * MIB)) /dev/zero; } >"$WORKDIR/b.raw"
cairn init >/dev/null
cairn backup --image "$WORKDIR/c.raw" --name vm-c --json >"$J.bc"
cairn backup --image "$WORKDIR/a.raw" --name vm-a --json >"$J.ba"
cairn backup --image "$WORKDIR/a2.raw" --name vm-a --json >"$J.ba2"
cairn backup --image "$WORKDIR/b.raw" --name vm-b --json >"$J.bb"
SNAP_A=$(json_get "$J.ba" id)
SNAP_A2=$(json_get "$J.ba2" id)
SNAP_B=$(json_get "$J.bb" id)
SNAP_C=$(json_get "$J.bc" id)
INDEX_C=$(cairn show "$SNAP_C" --json | json_get - disks.0.index)
TOTAL=$(count_objects)
# snapshot_names REPO: the names of its snapshots, sorted, on one line
snapshot_names() {
    "$CAIRN_BIN" --repo "$1" snapshots --json | json_eval - 'sorted(s["name"] for s in j)' |
        tr '\n' ' '
}

check "push through the faulty proxy (--json): ok, every object arrives exactly once"
cairn push flaky --json --parallel 4 >"$J.push" 2>"$WORKDIR/push.err" || {
    cat "$J.push" "$WORKDIR/push.err" >&2
    fail "push through the fault proxy failed"
}
assert_eq "$(json_get "$J.push" ok)" true "push ok"
assert_eq "$(json_get "$J.push" snapshots_sent)" 4 "push: snapshots_sent"
# a PUT whose answer was dropped stored its object: the retry finds it there
assert_eq $(($(json_get "$J.push" objects_sent) + $(json_get "$J.push" objects_present))) \
    "$TOTAL" "push: objects_sent + objects_present"
assert_eq "$(s3_count $BUCKET kvm/objects/)" "$TOTAL" "objects on the bucket"
info "proxy after push: $(cat "$PROXY_STATS")"
assert_gt "$(stat_of slowdown)" 0 "503 SlowDown answers during push"
assert_gt "$(stat_of drop)" 0 "dropped connections during push"

check "verify --read-data through the faulty proxy finds no problem"
"$CAIRN_BIN" --repo flaky verify --read-data >"$WORKDIR/v.out" 2>&1 || {
    cat "$WORKDIR/v.out" >&2
    fail "verify --read-data through the proxy failed"
}

check "pull through the faulty proxy into an empty repository; restores are byte-identical"
REPO=$WORKDIR/pulled
cairn pull flaky --json --parallel 4 >"$J.pull" 2>"$WORKDIR/pull.err" || {
    cat "$J.pull" "$WORKDIR/pull.err" >&2
    fail "pull through the fault proxy failed"
}
assert_eq "$(json_get "$J.pull" ok)" true "pull ok"
assert_eq "$(json_get "$J.pull" snapshots_sent)" 4 "pull: snapshots_sent"
assert_eq "$(json_get "$J.pull" objects_rejected)" 0 "pull: objects_rejected"
assert_eq "$(count_objects)" "$TOTAL" "objects in the pulled repository"
restore_cmp "$REPO" "$SNAP_A" "$WORKDIR/a.raw"
restore_cmp "$REPO" "$SNAP_A2" "$WORKDIR/a2.raw"
restore_cmp "$REPO" "$SNAP_B" "$WORKDIR/b.raw"
restore_cmp "$REPO" "$SNAP_C" "$WORKDIR/c.raw"
REPO=$WORKDIR/repo

check "the proxy did inject every kind of fault"
info "proxy counters: $(cat "$PROXY_STATS")"
assert_gt "$(stat_of slowdown)" 0 "503 SlowDown answers"
assert_gt "$(stat_of drop)" 0 "connections dropped mid-response"
assert_gt "$(stat_of truncate)" 0 "truncated GET bodies"
assert_eq "$(stat_of upstream_errors)" 0 "proxy: errors talking to radosgw"

check "tamper: overwrite vm-a's first chunk (shared by both vm-a snapshots) on the bucket"
CHUNK_A=$(head -c "$MIB" "$WORKDIR/a.raw" | sha256sum | cut -d' ' -f1)
CHUNK_B=$(head -c "$MIB" "$WORKDIR/b.raw" | sha256sum | cut -d' ' -f1)
KEY_A=kvm/objects/${CHUNK_A:0:2}/$CHUNK_A
KEY_B=kvm/objects/${CHUNK_B:0:2}/$CHUNK_B
assert_eq "$(s3_count $BUCKET "$KEY_A")" 1 "vm-a's first chunk on the bucket"
s3_get $BUCKET "$KEY_A" >"$WORKDIR/original-object"
# a valid object of another chunk: it decodes, only its content hash is wrong
s3_get $BUCKET "$KEY_B" >"$WORKDIR/other-object"
s3_put $BUCKET "$KEY_A" "$WORKDIR/other-object"
cmp -s <(s3_get $BUCKET "$KEY_A") "$WORKDIR/other-object" || fail "the tampered object was not replaced"

check "pull from the tampered bucket: exit != 0, names ${CHUNK_A:0:16}..., still pulls vm-b and vm-c"
REPO=$WORKDIR/pulled-tampered
LAST_RC=0
cairn pull direct --json >"$J.tamper" 2>"$WORKDIR/tamper.err" || LAST_RC=$?
[ "$LAST_RC" -ne 0 ] || { cat "$J.tamper" >&2; fail "pull of a tampered bucket succeeded"; }
assert_eq "$(json_get "$J.tamper" ok)" false "tampered pull: ok"
json_eval "$J.tamper" 'j["problems"]' >"$WORKDIR/problems"
assert_contains "$WORKDIR/problems" "$CHUNK_A" "problems of the tampered pull"
assert_contains "$WORKDIR/tamper.err" "$CHUNK_A" "stderr of the tampered pull"
assert_ge "$(json_get "$J.tamper" objects_rejected)" 1 "tampered pull: objects_rejected"
[ ! -e "$REPO/objects/${CHUNK_A:0:2}/$CHUNK_A" ] || fail "the tampered object was stored locally"
restore_cmp "$REPO" "$SNAP_B" "$WORKDIR/b.raw"
restore_cmp "$REPO" "$SNAP_C" "$WORKDIR/c.raw"
check "neither vm-a snapshot (both reference the bad chunk) was published by the pull"
soft assert_eq "$(snapshot_names "$REPO")" "vm-b vm-c " "snapshots in the pulled repository"
soft assert_eq "$(json_get "$J.tamper" snapshots_sent)" 2 "tampered pull: snapshots_sent (vm-b, vm-c)"
# everything but the bad chunk and the two vm-a manifests (they go last)
soft assert_eq "$(count_objects)" $((TOTAL - 3)) "objects pulled from the tampered bucket"
cairn verify --read-data >"$WORKDIR/vp.out" 2>&1 || {
    sed 's/^/    /' "$WORKDIR/vp.out" >&2
    defer_fail "the partly pulled repository has a published snapshot with a missing object"
}

check "verify --read-data on the bucket names the tampered object"
LAST_RC=0
"$CAIRN_BIN" --repo "$URL" verify --read-data >"$WORKDIR/vt.out" 2>&1 || LAST_RC=$?
[ "$LAST_RC" -ne 0 ] || { cat "$WORKDIR/vt.out" >&2; fail "verify --read-data of the tampered bucket passed"; }
assert_contains "$WORKDIR/vt.out" "$CHUNK_A" "verify --read-data of the tampered bucket"

check "put the chunk back, tamper vm-c's disk index: pull names it and still pulls the others"
s3_put $BUCKET "$KEY_A" "$WORKDIR/original-object"
"$CAIRN_BIN" --repo "$URL" verify >/dev/null || fail "verify of the repaired bucket"
KEY_IC=kvm/objects/${INDEX_C:0:2}/$INDEX_C
s3_put $BUCKET "$KEY_IC" "$WORKDIR/other-object"
REPO=$WORKDIR/pulled-tampered-index
LAST_RC=0
cairn pull direct --json >"$J.tamper2" 2>"$WORKDIR/tamper2.err" || LAST_RC=$?
[ "$LAST_RC" -ne 0 ] || { cat "$J.tamper2" >&2; fail "pull of a bucket with a tampered index succeeded"; }
assert_contains "$WORKDIR/tamper2.err" "$INDEX_C" "stderr of the pull with a tampered index"
json_eval "$J.tamper2" 'j["problems"]' >"$WORKDIR/problems2"
soft assert_contains "$WORKDIR/problems2" "$INDEX_C" "problems (--json) of the pull with a tampered index"
soft assert_eq "$(snapshot_names "$REPO")" "vm-a vm-a vm-b " "snapshots pulled besides vm-c"
[ ! -e "$REPO/objects/${INDEX_C:0:2}/$INDEX_C" ] || fail "the tampered index was stored locally"
cairn verify --read-data >/dev/null 2>&1 || defer_fail "verify of the repository pulled past a bad index"
REPO=$WORKDIR/repo

check "cluster and proxy down, no process left behind"
finish_s3
