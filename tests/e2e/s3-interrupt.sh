#!/usr/bin/env bash
# s3-interrupt.sh - a push to S3 killed with SIGKILL at different points
# resumes: the next push sends only what is missing (objects sent + objects
# already on the bucket == all objects), no killed run published a snapshot
# ref whose objects were not all there, stale locks go away, and the bucket
# restores byte-identically.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

MIB=$((1024 * 1024))
J=$WORKDIR/json
BUCKET=cairn-intr
URL=$(s3_url $BUCKET/kvm)

start_ceph
make_bucket $BUCKET
add_remote off $BUCKET/kvm

check "three snapshots: a 150 MiB random image and two small ones"
make_random_raw "$WORKDIR/big.raw" $((150 * MIB))
make_random_raw "$WORKDIR/s1.raw" $((6 * MIB + 4096))
make_random_raw "$WORKDIR/s2.raw" $((5 * MIB))
cairn init >/dev/null
cairn backup --image "$WORKDIR/s1.raw" --name small1 >/dev/null
cairn backup --image "$WORKDIR/big.raw" --name big >/dev/null
cairn backup --image "$WORKDIR/s2.raw" --name small2 >/dev/null
TOTAL=$(count_objects)
info "$TOTAL objects in the local repository"

objects_on_bucket() { s3_count $BUCKET kvm/objects/; }
refs_on_bucket() { s3_count $BUCKET kvm/snapshots/; }

# kill_push_at N: start a push, SIGKILL it once N objects are on the bucket
kill_push_at() {
    local n=$1 rc=0
    bg_cairn "$WORKDIR/push.out" "$WORKDIR/push.err" push off --bwlimit 15M --parallel 4
    local pid=$BG_PID
    wait_for "[ \$(objects_on_bucket) -ge $n ] || ! group_alive $pid" 90 ||
        fail "push did not get $n objects onto the bucket"
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || rc=$?
    if [ "$rc" -ne 137 ]; then
        cat "$WORKDIR/push.out" "$WORKDIR/push.err" >&2
        fail "the push ended (exit $rc) before it could be killed at $n objects"
    fi
    wait_for "! group_alive $pid" 10 || fail "the killed push is still running"
    KILLED_AT=$(objects_on_bucket)
    info "killed the push at $KILLED_AT objects on the bucket, $(refs_on_bucket) snapshot refs"
}

# every ref on the bucket must be complete: verify checks that each
# published snapshot's manifest, indexes and chunks are there
check_published_complete() {
    "$CAIRN_BIN" --repo "$URL" verify >"$WORKDIR/verify.out" 2>&1 || {
        sed 's/^/    /' "$WORKDIR/verify.out" >&2
        fail "after a killed push, a snapshot ref on the bucket is incomplete ($1)"
    }
    # the bucket lists exactly the published refs
    local listed
    listed=$("$CAIRN_BIN" --repo "$URL" snapshots --json | json_eval - 'len(j)')
    assert_eq "$listed" "$(refs_on_bucket)" "snapshots listed on the bucket ($1)"
}

# kill points: as soon as objects arrive, then each time 25 more are there
PREV=0
for round in 1 2 3; do
    point=$((round == 1 ? 1 : PREV + 25))
    check "kill -9 push #$round once >= $point objects are on the bucket; published refs are complete"
    kill_push_at "$point"
    assert_ge "$KILLED_AT" "$point" "objects on the bucket after kill #$round"
    assert_lt "$KILLED_AT" "$TOTAL" "objects on the bucket after kill #$round (not all)"
    check_published_complete "killed at $KILLED_AT objects"
    PREV=$KILLED_AT
done
LOCKS_LEFT=$(s3_count $BUCKET kvm/locks/)
info "$LOCKS_LEFT lock objects left by the killed pushes"

check "push to completion: objects_sent + objects already there == all $TOTAL objects"
BEFORE=$(objects_on_bucket)
REFS_BEFORE=$(refs_on_bucket)
# objects of the snapshots not yet published (their images are random: no
# object is shared): what this push has to account for
PUBLISHED=$(s3_ls $BUCKET kvm/snapshots/ | awk '{ sub(".*/", "", $1); print $1 }')
HANDLED=0
for id in $(cairn snapshots --json | json_eval - '[s["id"] for s in j]'); do
    grep -qxF "$id" <<<"$PUBLISHED" && continue
    HANDLED=$((HANDLED + $(cairn show "$id" --json | json_get - disks.0.chunks_data) + 2))
done
cairn push off --json >"$J.final" || { cat "$J.final"; fail "the resumed push failed"; }
assert_eq "$(json_get "$J.final" ok)" true "resumed push ok"
SENT=$(json_get "$J.final" objects_sent)
PRESENT=$(json_get "$J.final" objects_present)
info "resumed push: $BEFORE objects were there, $SENT sent, $PRESENT reported already there"
# nothing already on the bucket was sent again
assert_eq $((SENT + BEFORE)) "$TOTAL" "objects sent + objects already on the bucket"
# --json: every object of the snapshots pushed was either sent or already there
soft assert_eq $((SENT + PRESENT)) "$HANDLED" \
    "objects_sent + objects_present (--json) for the $((3 - REFS_BEFORE)) unpublished snapshots ($BEFORE objects were on the bucket)"
assert_eq "$(json_get "$J.final" snapshots_present)" "$REFS_BEFORE" "resumed push: snapshots_present"
assert_eq "$(json_get "$J.final" snapshots_sent)" $((3 - REFS_BEFORE)) "resumed push: snapshots_sent"
assert_eq "$(objects_on_bucket)" "$TOTAL" "objects on the bucket after the resumed push"
assert_eq "$(refs_on_bucket)" 3 "snapshot refs on the bucket"

check "stale locks of the killed pushes are gone"
assert_eq "$(s3_count $BUCKET kvm/locks/)" 0 "locks on the bucket after the resumed push"

check "verify --read-data on the bucket; restore from the bucket == originals"
"$CAIRN_BIN" --repo "$URL" verify --read-data >"$WORKDIR/verify.out" 2>&1 || {
    cat "$WORKDIR/verify.out" >&2
    fail "verify --read-data on the bucket failed"
}
for s in big:big small1:s1 small2:s2; do
    "$CAIRN_BIN" --repo "$URL" restore-disk "${s%%:*}@latest" vda --to "$WORKDIR/out.raw" \
        --format raw >/dev/null || fail "restore of ${s%%:*} from the bucket failed"
    cmp "$WORKDIR/${s#*:}.raw" "$WORKDIR/out.raw" || fail "${s%%:*} restored from the bucket differs"
    rm -f "$WORKDIR/out.raw"
done

check "SIGTERM mid-pull into a directory: it stops, says so, leaves no lock; the next pull resumes"
PULLED=$WORKDIR/pulled
REPO_SAVED=$REPO
REPO=$PULLED
bg_cairn "$WORKDIR/pull.out" "$WORKDIR/pull.err" pull off --bwlimit 15M --parallel 4
PID=$BG_PID
# the objects of the first slices are named once their slice is durable
wait_for "[ \$(count_objects '$PULLED' 2>/dev/null || echo 0) -ge 40 ] || ! group_alive $PID" 90 ||
    fail "the pull did not store 40 objects"
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
sed 's/^/    stderr: /' "$WORKDIR/pull.err"
assert_gt "$rc" 0 "exit status of the pull stopped by SIGTERM"
assert_contains "$WORKDIR/pull.err" "interrupted by SIGTERM" "the pull's error"
assert_eq "$(find "$PULLED/locks" -type f 2>/dev/null | wc -l)" 0 "locks left in the pulled repository"
assert_eq "$(s3_count $BUCKET kvm/locks/)" 0 "locks left on the bucket"
HAD=$(count_objects "$PULLED")
info "stopped with $HAD objects in the pulled repository"
cairn pull off --json >"$J.repull" || { cat "$J.repull"; fail "the resumed pull failed"; }
assert_eq "$(json_get "$J.repull" objects_sent)" $((TOTAL - HAD)) \
    "objects the resumed pull sent (what the stopped one stored is kept)"
cairn verify --read-data >/dev/null || fail "verify --read-data of the resumed pull"
REPO=$REPO_SAVED

check "cluster down, no process left behind"
finish_s3
