#!/usr/bin/env bash
# s3-multihost.sh - the scale-out case: Ceph with 3 OSDs and 2 radosgw
# gateways; two hosts (two local repositories that are copies of one S3
# repository) back up VMs cloned from one base image and push at the same
# time through different gateways while a third process runs gc on the
# bucket. Afterwards every snapshot restores from the bucket byte-identically,
# gc deleted only the garbage, and the base image is stored once.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

MIB=$((1024 * 1024))
J=$WORKDIR/json
BUCKET=cairn-shared
URL=$(s3_url $BUCKET/fleet)
REPO_A=$WORKDIR/host-a
REPO_B=$WORKDIR/host-b
BASE_CHUNKS=60

start_ceph 3 2
GW1=http://127.0.0.1:$CEPH_RGW_PORT
GW2=http://127.0.0.1:$((CEPH_RGW_PORT + 1))
make_bucket $BUCKET
add_remote gw1 $BUCKET/fleet "$GW1"
add_remote gw2 $BUCKET/fleet "$GW2"
# requests served by gateway I (0 or 1), from its admin socket
rgw_requests() {
    local sock=$CEPH_S3_DIR/run/ceph-client.rgw.s3.asok
    [ "$1" = 0 ] || sock=$CEPH_S3_DIR/run/ceph-client.rgw.s3-$1.asok
    ceph --admin-daemon "$sock" perf dump 2>/dev/null | json_get - rgw.req
}

# the images: one random base, two clones with a few MiB of their own
make_random_raw "$WORKDIR/base.raw" $((BASE_CHUNKS * MIB))
cp "$WORKDIR/base.raw" "$WORKDIR/a.raw"
overwrite_random "$WORKDIR/a.raw" $((20 * MIB)) $((2 * MIB))
head -c $((2 * MIB)) /dev/urandom >>"$WORKDIR/a.raw"
cp "$WORKDIR/base.raw" "$WORKDIR/b.raw"
overwrite_random "$WORKDIR/b.raw" $((40 * MIB)) $((3 * MIB))
head -c "$MIB" /dev/urandom >>"$WORKDIR/b.raw"
OWN_A=4
OWN_B=4

check "host A: init, back up a scratch VM twice, push through gateway 1"
"$CAIRN_BIN" --repo "$REPO_A" init >/dev/null
make_random_raw "$WORKDIR/scratch1.raw" $((4 * MIB))
make_random_raw "$WORKDIR/scratch2.raw" $((4 * MIB))
"$CAIRN_BIN" --repo "$REPO_A" backup --image "$WORKDIR/scratch1.raw" --name scratch >/dev/null
"$CAIRN_BIN" --repo "$REPO_A" backup --image "$WORKDIR/scratch2.raw" --name scratch >/dev/null
"$CAIRN_BIN" --repo "$REPO_A" push gw1 --json >"$J.a0"
assert_eq "$(json_get "$J.a0" snapshots_sent)" 2 "host A first push: snapshots_sent"

check "prune the first scratch snapshot on the bucket (its 6 objects become garbage)"
"$CAIRN_BIN" --repo gw1 prune --name scratch --keep-last 1 >/dev/null
assert_eq "$(s3_count $BUCKET fleet/snapshots/)" 1 "snapshot refs on the bucket after prune"
GARBAGE=6

check "host B: an empty repository becomes a copy by pulling through gateway 2"
"$CAIRN_BIN" --repo "$REPO_B" pull gw2 --json >"$J.b0"
assert_eq "$(json_get "$J.b0" snapshots_sent)" 1 "host B pull: snapshots_sent"
assert_eq "$(json_get "$REPO_B/config" uuid)" "$(json_get "$REPO_A/config" uuid)" \
    "repository uuid of host B vs host A"

check "both hosts back up their clone of the base image"
"$CAIRN_BIN" --repo "$REPO_A" backup --image "$WORKDIR/a.raw" --name vm-a --json >"$J.ba"
"$CAIRN_BIN" --repo "$REPO_B" backup --image "$WORKDIR/b.raw" --name vm-b --json >"$J.bb"
SNAP_A=$(json_get "$J.ba" id)
SNAP_B=$(json_get "$J.bb" id)

check "A pushes via gateway 1 and B via gateway 2 at the same time, gc --grace 0 on the bucket"
REQ1=$(rgw_requests 0)
REQ2=$(rgw_requests 1)
OBJ0=$(s3_count $BUCKET fleet/objects/)
REPO=$REPO_A bg_cairn "$J.pa" "$WORKDIR/pa.err" push gw1 vm-a --json --bwlimit 40M
PID_A=$BG_PID
REPO=$REPO_B bg_cairn "$J.pb" "$WORKDIR/pb.err" push gw2 vm-b --json --bwlimit 40M
PID_B=$BG_PID
# gc starts once the pushes are moving data (it must wait for their locks)
wait_for "[ \$(s3_count $BUCKET fleet/objects/) -gt $((OBJ0 + 4)) ] ||
    ! { group_alive $PID_A || group_alive $PID_B; }" 60 || fail "the pushes did not start"
group_alive "$PID_A" || group_alive "$PID_B" ||
    info "note: both pushes ended before gc started (slow polling)"
REPO=$URL bg_cairn "$J.gc" "$WORKDIR/gc.err" gc --grace 0 --wait 2m --json
PID_GC=$BG_PID
RC_A=0 RC_B=0 RC_GC=0
wait "$PID_A" || RC_A=$?
wait "$PID_B" || RC_B=$?
wait "$PID_GC" || RC_GC=$?
for x in A:$RC_A:pa B:$RC_B:pb gc:$RC_GC:gc; do
    IFS=: read -r who rc f <<<"$x"
    [ "$rc" = 0 ] || {
        cat "$J.$f" "$WORKDIR/$f.err" >&2
        fail "$who exited with $rc"
    }
done
assert_eq "$(json_get "$J.pa" ok)" true "push A ok"
assert_eq "$(json_get "$J.pb" ok)" true "push B ok"
info "push A: $(json_get "$J.pa" objects_sent) objects sent, $(json_get "$J.pa" objects_present) found there;" \
    "push B: $(json_get "$J.pb" objects_sent) sent, $(json_get "$J.pb" objects_present) found there"
info "gc: $(tr -d ' \n' <"$J.gc")"
assert_eq "$(json_get "$J.gc" objects_deleted)" "$GARBAGE" "gc: objects deleted (only the pruned scratch snapshot)"
check "both gateways served requests"
assert_gt $(($(rgw_requests 0) - REQ1)) 0 "requests served by gateway 1"
assert_gt $(($(rgw_requests 1) - REQ2)) 0 "requests served by gateway 2"

check "every snapshot restores byte-identically from the bucket; verify --read-data"
"$CAIRN_BIN" --repo "$URL" snapshots --json >"$J.snaps"
assert_eq "$(json_eval "$J.snaps" 'len(j)')" 3 "snapshots on the bucket"
restore_cmp "$URL" "$SNAP_A" "$WORKDIR/a.raw"
restore_cmp "$URL" "$SNAP_B" "$WORKDIR/b.raw"
restore_cmp "$URL" scratch@latest "$WORKDIR/scratch2.raw"
# and through the other gateway
restore_cmp gw2 "$SNAP_A" "$WORKDIR/a.raw"
"$CAIRN_BIN" --repo "$URL" verify --read-data >"$WORKDIR/v.out" 2>&1 || {
    cat "$WORKDIR/v.out" >&2
    fail "verify --read-data on the bucket failed"
}
assert_eq "$(s3_count $BUCKET fleet/locks/)" 0 "locks left on the bucket"

check "the base is stored once: objects on the bucket << twice the base"
STORED=$(s3_count $BUCKET fleet/objects/)
# chunks: base + own of A + own of B + scratch (4); an index and a manifest
# per snapshot (3)
EXPECTED=$((BASE_CHUNKS + OWN_A + OWN_B + 4 + 2 * 3))
info "$STORED objects on the bucket (base $BASE_CHUNKS chunks, own $OWN_A + $OWN_B, expected $EXPECTED)"
assert_le "$STORED" "$EXPECTED" "objects on the bucket"
assert_lt "$STORED" $((2 * BASE_CHUNKS)) "objects on the bucket vs twice the base"

check "cluster down, no process left behind"
finish_s3
