#!/usr/bin/env bash
# s3-push-pull.sh - push and pull against a real S3 service (Ceph radosgw):
# a pushed repository is complete on the bucket (verify, restore there),
# pushes are incremental (a repeat sends nothing, a 1 MiB change sends one
# chunk), file:// remotes work too, repositories chain (local -> bucket1 ->
# repo2 -> bucket2), encrypted repositories leave no plaintext on the bucket,
# and bad credentials, a missing bucket and an open credentials file give
# clear errors.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/s3.sh"

MIB=$((1024 * 1024))
J=$WORKDIR/json

# the image: random data, zeros, random, a tail that is not chunk aligned
IMG=$WORKDIR/vm1.raw
{
    head -c $((20 * MIB)) /dev/urandom
    head -c $((8 * MIB)) /dev/zero
    head -c $((4 * MIB)) /dev/urandom
    head -c $((333 * 1024)) /dev/urandom
} >"$IMG"

start_ceph
make_bucket cairn-one
make_bucket cairn-two
make_bucket cairn-enc
add_remote one cairn-one/kvm
add_remote two cairn-two/kvm

check "cairn remote test one: reach, credentials, probe object"
"$CAIRN_BIN" remote test one >"$WORKDIR/rt.out" 2>&1 || {
    cat "$WORKDIR/rt.out" >&2
    fail "remote test one failed"
}
assert_contains "$WORKDIR/rt.out" "empty: the first push creates the repository" "remote test"

check "backup an image ($(($(file_size "$IMG") / 1024)) KiB: random + zeros) and push it to S3"
cairn init >/dev/null
cairn backup --image "$IMG" --name vm1 --json >"$J.b1"
SNAP1=$(json_get "$J.b1" id)
LOCAL_OBJECTS=$(count_objects)
cairn push one --json >"$J.p1" || { cat "$J.p1"; fail "push to S3 failed"; }
assert_eq "$(json_get "$J.p1" ok)" true "push ok"
assert_eq "$(json_get "$J.p1" snapshots_sent)" 1 "push: snapshots_sent"
assert_eq "$(json_get "$J.p1" objects_sent)" "$LOCAL_OBJECTS" "push: objects_sent (all local objects)"
assert_eq "$(json_get "$J.p1" problems)" "[]" "push: problems"
assert_ge "$(json_get "$J.p1" bytes_sent)" $((24 * MIB)) "push: bytes_sent (24 MiB of random data)"
check "the bucket holds exactly the repository's objects (independent listing)"
assert_eq "$(s3_count cairn-one kvm/objects/)" "$LOCAL_OBJECTS" "objects in the bucket"
assert_eq "$(s3_count cairn-one kvm/snapshots/)" 1 "snapshot refs in the bucket"
assert_eq "$(s3_count cairn-one kvm/config)" 1 "config in the bucket"
assert_eq "$(s3_count cairn-one kvm/locks/)" 0 "locks left in the bucket"

check "cairn --repo one verify --read-data on the bucket"
"$CAIRN_BIN" --repo one verify --read-data >"$WORKDIR/v.out" 2>&1 || {
    cat "$WORKDIR/v.out" >&2
    fail "verify --read-data on the bucket failed"
}
"$CAIRN_BIN" --repo one snapshots >"$WORKDIR/snaps.out"
assert_contains "$WORKDIR/snaps.out" "${SNAP1:0:12}" "snapshots on the bucket"

check "a second push sends nothing (bytes_sent 0, objects_sent 0)"
cairn push one --json >"$J.p2"
assert_eq "$(json_get "$J.p2" ok)" true "second push ok"
assert_eq "$(json_get "$J.p2" bytes_sent)" 0 "second push: bytes_sent"
assert_eq "$(json_get "$J.p2" objects_sent)" 0 "second push: objects_sent"
assert_eq "$(json_get "$J.p2" snapshots_present)" 1 "second push: snapshots_present"
assert_le "$(json_get "$J.p2" requests)" 4 "second push: requests (a listing, not one per object)"

check "an object lost on the bucket: the next push sends it again (snapshots_repaired)"
LOST=$(head -c "$MIB" "$IMG" | sha256sum | cut -d' ' -f1)
code=$(s3_curl -o /dev/null -w '%{http_code}' -X DELETE "$S3_ENDPOINT/cairn-one/kvm/objects/${LOST:0:2}/$LOST")
[ "$code" = 204 ] || fail "cannot delete the chunk from the bucket (HTTP $code)"
assert_eq "$(s3_count cairn-one "kvm/objects/${LOST:0:2}/$LOST")" 0 "the lost chunk on the bucket"
cairn push one --json >"$J.prep"
assert_eq "$(json_get "$J.prep" ok)" true "repairing push ok"
assert_eq "$(json_get "$J.prep" objects_sent)" 1 "repairing push: objects_sent"
assert_eq "$(json_get "$J.prep" snapshots_repaired)" 1 "repairing push: snapshots_repaired"
assert_eq "$(json_get "$J.prep" snapshots_sent)" 0 "repairing push: snapshots_sent"
"$CAIRN_BIN" --repo one verify --read-data >"$WORKDIR/v2.out" 2>&1 || {
    cat "$WORKDIR/v2.out" >&2
    fail "verify --read-data on the bucket after the repairing push"
}

check "change 1 MiB (one chunk), backup, push: about one chunk goes up"
cp "$IMG" "$WORKDIR/vm1-v1.raw"
overwrite_random "$IMG" $((5 * MIB)) "$MIB"
cairn backup --image "$IMG" --name vm1 --json >"$J.b2"
SNAP2=$(json_get "$J.b2" id)
cairn push one --json >"$J.p3"
assert_eq "$(json_get "$J.p3" ok)" true "incremental push ok"
assert_eq "$(json_get "$J.p3" snapshots_sent)" 1 "incremental push: snapshots_sent"
assert_eq "$(json_get "$J.p3" snapshots_present)" 1 "incremental push: snapshots_present"
# one chunk + the new disk index + the new manifest
assert_eq "$(json_get "$J.p3" objects_sent)" 3 "incremental push: objects_sent (chunk, index, manifest)"
BYTES3=$(json_get "$J.p3" bytes_sent)
assert_ge "$BYTES3" "$MIB" "incremental push: bytes_sent (one random chunk)"
assert_lt "$BYTES3" $((2 * MIB)) "incremental push: bytes_sent (one chunk + index + manifest)"
info "incremental push: $BYTES3 bytes in $(json_get "$J.p3" objects_sent) objects"

check "push to a file:// remote too; restore from it"
"$CAIRN_BIN" remote add offsite "file://$WORKDIR/offsite" >/dev/null
cairn push offsite --json >"$J.pf"
assert_eq "$(json_get "$J.pf" ok)" true "push to file:// ok"
assert_eq "$(json_get "$J.pf" snapshots_sent)" 2 "push to file://: snapshots_sent"
assert_eq "$(count_objects "$WORKDIR/offsite")" "$(count_objects)" "objects in the file:// remote"
"$CAIRN_BIN" --repo "$WORKDIR/offsite" restore-disk vm1@latest vda --to "$WORKDIR/f.raw" \
    --format raw >/dev/null
cmp "$IMG" "$WORKDIR/f.raw" || fail "restore from the file:// remote differs"
rm -f "$WORKDIR/f.raw"

check "wipe the local repository, pull both snapshots into an empty one, restore == original"
rm -rf "$REPO"
cairn pull one --json >"$J.l1" || { cat "$J.l1"; fail "pull from S3 failed"; }
assert_eq "$(json_get "$J.l1" ok)" true "pull ok"
assert_eq "$(json_get "$J.l1" snapshots_sent)" 2 "pull: snapshots_sent"
assert_eq "$(count_snapshots)" 2 "snapshots in the pulled repository"
assert_eq "$(count_objects)" "$(s3_count cairn-one kvm/objects/)" "objects in the pulled repository"
restore_cmp "$REPO" "$SNAP1" "$WORKDIR/vm1-v1.raw"
restore_cmp "$REPO" "$SNAP2" "$IMG"
cairn verify --read-data >/dev/null || fail "verify --read-data of the pulled repository"

check "a chunk set aside locally by verify: the next pull fetches it again (snapshots_repaired)"
LOCAL_LOST=$REPO/objects/${LOST:0:2}/$LOST
printf '\x00\xff' | dd of="$LOCAL_LOST" bs=1 seek=100 conv=notrunc status=none
expect_fail "$WORKDIR/vl.err" cairn verify --read-data
assert_contains "$WORKDIR/vl.err" "set 1 damaged object aside" "verify of the local repository"
cairn pull one --json >"$J.lrep" || { cat "$J.lrep"; fail "the repairing pull failed"; }
assert_eq "$(json_get "$J.lrep" objects_sent)" 1 "repairing pull: objects_sent"
assert_ge "$(json_get "$J.lrep" snapshots_repaired)" 1 "repairing pull: snapshots_repaired"
restore_cmp "$REPO" "$SNAP1" "$WORKDIR/vm1-v1.raw"
cairn verify --read-data >/dev/null || fail "verify --read-data after the repairing pull"

check "chain: pull one -> repo2 -> push two; restore from bucket two with --repo s3://..."
REPO2=$WORKDIR/repo2
"$CAIRN_BIN" --repo "$REPO2" pull one --json >"$J.l2"
assert_eq "$(json_get "$J.l2" snapshots_sent)" 2 "pull into repo2: snapshots_sent"
"$CAIRN_BIN" --repo "$REPO2" push two --json >"$J.p4"
assert_eq "$(json_get "$J.p4" ok)" true "push repo2 -> two ok"
assert_eq "$(json_get "$J.p4" snapshots_sent)" 2 "push repo2 -> two: snapshots_sent"
assert_eq "$(s3_count cairn-two kvm/objects/)" "$(s3_count cairn-one kvm/objects/)" \
    "objects in bucket two vs bucket one"
"$CAIRN_BIN" --repo "$(s3_url cairn-two/kvm)" restore-disk "vm1@latest" vda \
    --to "$WORKDIR/two.raw" --format raw >/dev/null || fail "restore from s3://cairn-two/kvm failed"
cmp "$IMG" "$WORKDIR/two.raw" || fail "restore from bucket two differs"
"$CAIRN_BIN" --repo "$(s3_url cairn-two/kvm)" restore-disk "${SNAP1:0:12}" vda \
    --to "$WORKDIR/two1.raw" --format raw >/dev/null
cmp "$WORKDIR/vm1-v1.raw" "$WORKDIR/two1.raw" || fail "restore of the first snapshot from bucket two differs"
rm -f "$WORKDIR/two.raw" "$WORKDIR/two1.raw"

check "encrypted repository: push leaves no plaintext on the bucket; pull + restore with the key"
MARKER=CAIRN-S3-PLAINTEXT-MARKER-k9Tq2
KEY=$WORKDIR/key
(umask 077 && head -c 32 /dev/urandom | base64 >"$KEY")
EIMG=$WORKDIR/secret.raw
{
    { yes "$MARKER secret line" || true; } | head -c $((2 * MIB))
    head -c $((3 * MIB)) /dev/urandom
    { yes "$MARKER more" || true; } | head -c $((MIB + 4096))
} >"$EIMG"
EREPO=$WORKDIR/enc
"$CAIRN_BIN" --repo "$EREPO" init --encrypt --key-file "$KEY" >/dev/null
"$CAIRN_BIN" --repo "$EREPO" --key-file "$KEY" backup --image "$EIMG" --name secret >/dev/null
add_remote enc cairn-enc/vault
"$CAIRN_BIN" --repo "$EREPO" --key-file "$KEY" push enc --json >"$J.pe"
assert_eq "$(json_get "$J.pe" ok)" true "encrypted push ok"
mkdir "$WORKDIR/bucket-enc"
s3_get_all cairn-enc vault/ "$WORKDIR/bucket-enc"
assert_eq "$(count_objects "$WORKDIR/bucket-enc/vault")" "$(count_objects "$EREPO")" \
    "objects downloaded from the encrypted bucket"
if grep -rqaF "$MARKER" "$WORKDIR/bucket-enc"; then
    fail "the plaintext marker is on the bucket: $(grep -rlaF "$MARKER" "$WORKDIR/bucket-enc" | head -3)"
fi
if grep -rqaF "secret.raw" "$WORKDIR/bucket-enc"; then
    fail "the image file name is readable on the bucket"
fi
# control: the same search finds the marker in the image itself
grep -qaF "$MARKER" "$EIMG" || fail "control: marker not found in the image"
assert_contains "$WORKDIR/bucket-enc/vault/config" aes-256-gcm "config on the bucket"
assert_not_contains "$WORKDIR/bucket-enc/vault/config" "$(cat "$KEY")" "config on the bucket"
EREPO2=$WORKDIR/enc2
"$CAIRN_BIN" --repo "$EREPO2" --key-file "$KEY" pull enc --json >"$J.le"
assert_eq "$(json_get "$J.le" ok)" true "encrypted pull ok"
"$CAIRN_BIN" --repo "$EREPO2" --key-file "$KEY" restore-disk secret@latest vda \
    --to "$WORKDIR/secret.out" --format raw >/dev/null
cmp "$EIMG" "$WORKDIR/secret.out" || fail "restore of the pulled encrypted repository differs"
"$CAIRN_BIN" --repo enc --key-file "$KEY" restore-disk secret@latest vda \
    --to "$WORKDIR/secret2.out" --format raw >/dev/null
cmp "$EIMG" "$WORKDIR/secret2.out" || fail "restore from the encrypted bucket differs"
rm -f "$WORKDIR/secret.out" "$WORKDIR/secret2.out"

check "a bucket holding another repository (other encryption) is refused, nothing copied"
BEFORE=$(s3_ls cairn-one kvm/ | sha256sum)
expect_fail "$WORKDIR/err" "$CAIRN_BIN" --repo "$EREPO" --key-file "$KEY" push one
assert_contains "$WORKDIR/err" "different repository" "stderr of push to another repository"
assert_eq "$(s3_ls cairn-one kvm/ | sha256sum)" "$BEFORE" "bucket one after the refused push"

check "wrong secret key: push fails with 'secret key does not match'"
add_remote wrongkey cairn-one/kvm "$S3_ENDPOINT" "not-the-secret-key-0000000000000000000000"
expect_fail "$WORKDIR/err" cairn push wrongkey
assert_contains "$WORKDIR/err" "secret key does not match" "stderr of push with a wrong secret"
expect_fail "$WORKDIR/err" "$CAIRN_BIN" remote test wrongkey
assert_contains "$WORKDIR/err.out" "secret key does not match" "remote test with a wrong secret"
assert_eq "$(s3_ls cairn-one kvm/ | sha256sum)" "$BEFORE" "bucket after the refused push"

check "a missing bucket: push fails with 'does not exist'"
add_remote nobucket cairn-no-such-bucket/kvm
expect_fail "$WORKDIR/err" cairn push nobucket
assert_contains "$WORKDIR/err" "does not exist" "stderr of push to a missing bucket"
assert_contains "$WORKDIR/err" "cairn-no-such-bucket" "stderr of push to a missing bucket"

check "a credentials file of mode 0644 is refused with 'chmod 600'"
add_remote openkey cairn-one/kvm
chmod 644 "$CAIRN_CONFIG_DIR/remotes.d/openkey.credentials"
expect_fail "$WORKDIR/err" cairn push openkey
assert_contains "$WORKDIR/err" "chmod 600" "stderr of push with a 0644 credentials file"
expect_fail "$WORKDIR/err" "$CAIRN_BIN" --repo openkey snapshots
assert_contains "$WORKDIR/err" "chmod 600" "stderr of snapshots with a 0644 credentials file"
assert_eq "$(s3_ls cairn-one kvm/ | sha256sum)" "$BEFORE" "bucket after the refused commands"

check "cluster down, no process left behind"
finish_s3
