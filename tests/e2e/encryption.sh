#!/usr/bin/env bash
# encryption.sh - an encrypted repository leaks neither content nor content
# hashes, needs the right key (from a private key file) for everything, and
# restores byte-identically with it.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

MIB=$((1024 * 1024))
MARKER=CAIRN-PLAINTEXT-MARKER-q7Zx3
KEY=$WORKDIR/key
WRONG=$WORKDIR/wrong-key
(umask 077 && head -c 32 /dev/urandom | base64 >"$KEY" && head -c 32 /dev/urandom | base64 >"$WRONG")

# the image: the marker repeated (text) and random data; its first MiB is
# half text, half random, so it is the first chunk of a 1 MiB-chunk repo
IMG=$WORKDIR/secret.raw
text() { { yes "$MARKER line of secret text" || true; } | head -c "$1"; }
{
    text $((MIB / 2))
    head -c $((MIB / 2)) /dev/urandom
    head -c $((3 * MIB)) /dev/urandom
    text "$MIB"
    head -c $((2 * MIB + 333 * 1024)) /dev/urandom
} >"$IMG"
FIRST_SHA=$(head -c "$MIB" "$IMG" | sha256sum | cut -d' ' -f1)

check "init --encrypt with a key file of mode 0644 is refused with a chmod hint"
cp "$KEY" "$WORKDIR/open-key"
chmod 644 "$WORKDIR/open-key"
expect_fail "$WORKDIR/err" cairn init --encrypt --key-file "$WORKDIR/open-key"
assert_contains "$WORKDIR/err" "chmod" "stderr of init with a 0644 key"
[ ! -e "$REPO/config" ] || fail "init with a 0644 key file created a repository"

check "init --encrypt with a 0600 key file"
cairn init --encrypt --key-file "$KEY" --json >"$WORKDIR/init.json"
assert_eq "$(json_get "$WORKDIR/init.json" encrypted)" true "init --json encrypted"
assert_contains "$REPO/config" aes-256-gcm "config"

check "backup with the key"
cairn --key-file "$KEY" backup --image "$IMG" --name secret --json >"$WORKDIR/b.json"
SNAP=$(json_get "$WORKDIR/b.json" id)

check "the marker text is nowhere in the repository (grep -r)"
if grep -rqaF "$MARKER" "$REPO"; then
    fail "the plaintext marker is in $(grep -rlaF "$MARKER" "$REPO" | head -3 | tr '\n' ' ')"
fi
# nor are the image's path or name (manifests are encrypted too)
if grep -rqaF "secret.raw" "$REPO"; then
    fail "the image file name is readable in $(grep -rlaF secret.raw "$REPO" | head -1)"
fi

check "object names are not the plain sha256 of a chunk (first MiB: $FIRST_SHA)"
[ ! -e "$REPO/objects/${FIRST_SHA:0:2}/$FIRST_SHA" ] ||
    fail "the first chunk is stored under its plain sha256"
if find "$REPO/objects" -type f -name "$FIRST_SHA*" | grep -q .; then
    fail "an object is named after the plain sha256 of the first chunk"
fi

check "control: in a plain repository the same checks do find the marker and the sha256 name"
PLAIN=$WORKDIR/plain-repo
"$CAIRN_BIN" --repo "$PLAIN" init >/dev/null
"$CAIRN_BIN" --repo "$PLAIN" backup --image "$IMG" --name secret >/dev/null
grep -rqaF "$MARKER" "$PLAIN" || fail "control: marker not found in the plain repository"
[ -e "$PLAIN/objects/${FIRST_SHA:0:2}/$FIRST_SHA" ] || fail "control: no plain sha256 object name"

check "restore with the key is byte-identical"
cairn --key-file "$KEY" restore-disk secret@latest vda --to "$WORKDIR/out.raw" >/dev/null
cmp "$IMG" "$WORKDIR/out.raw" || fail "restore with the key differs"
rm -f "$WORKDIR/out.raw"
cairn --key-file "$KEY" verify --read-data >/dev/null || fail "verify --read-data with the key"

STATE=$(repo_state)
check "without the key: a clear error mentioning --key-file"
for cmd in "snapshots" "restore-disk secret@latest vda --to $WORKDIR/out.raw" "verify secret@latest"; do
    # shellcheck disable=SC2086
    expect_fail "$WORKDIR/err" cairn $cmd
    assert_contains "$WORKDIR/err" "--key-file" "stderr of '$cmd' without a key"
done
[ ! -e "$WORKDIR/out.raw" ] || fail "restore without the key left an output file"
check "verify without the key fails unless asked for --keyless (a job that lost its key is noticed)"
expect_fail "$WORKDIR/err" cairn verify --read-data
assert_contains "$WORKDIR/err" "--keyless" "stderr of verify without the key"
check "verify --keyless of the whole repository checks the stored checksums"
cairn verify --keyless >"$WORKDIR/out" 2>"$WORKDIR/err" ||
    fail "keyless verify of a healthy repository failed"
assert_contains "$WORKDIR/out" "without the key" "keyless verify output"
check "\$CAIRN_KEY_FILE works as well as --key-file"
CAIRN_KEY_FILE=$KEY cairn snapshots >/dev/null || fail "snapshots with CAIRN_KEY_FILE"

check "a wrong key: an error mentioning 'wrong key'"
expect_fail "$WORKDIR/err" cairn --key-file "$WRONG" snapshots
assert_contains "$WORKDIR/err" "wrong key" "stderr with the wrong key"
expect_fail "$WORKDIR/err" cairn --key-file "$WRONG" restore-disk "$SNAP" vda --to "$WORKDIR/out.raw"
assert_contains "$WORKDIR/err" "wrong key" "stderr of restore with the wrong key"
[ ! -e "$WORKDIR/out.raw" ] || fail "restore with the wrong key left an output file"

check "the right key in a 0644 file is refused with a chmod hint"
expect_fail "$WORKDIR/err" cairn --key-file "$WORKDIR/open-key" snapshots
assert_contains "$WORKDIR/err" "chmod" "stderr with a 0644 key file"
assert_eq "$(repo_state)" "$STATE" "repository state after the refused commands"

check "cat of a chunk with the key prints its plaintext"
INDEX=$(cairn --key-file "$KEY" show "$SNAP" --json | json_get - disks.0.index)
cairn --key-file "$KEY" cat "$INDEX" >"$WORKDIR/index.bin"
# index: 32-byte header, then 32-byte chunk ids
CHUNK0=$(dd if="$WORKDIR/index.bin" bs=32 skip=1 count=1 status=none | od -An -tx1 | tr -d ' \n')
[ ${#CHUNK0} -eq 64 ] || fail "cannot read the first chunk id from the index"
[ "$CHUNK0" != "$FIRST_SHA" ] || fail "the first chunk's id is its plain sha256"
[ -e "$REPO/objects/${CHUNK0:0:2}/$CHUNK0" ] || fail "chunk $CHUNK0 named by the index is not stored"
cairn --key-file "$KEY" cat "$CHUNK0" >"$WORKDIR/chunk0"
head -c "$MIB" "$IMG" | cmp - "$WORKDIR/chunk0" || fail "cat of chunk $CHUNK0 is not the image's first MiB"
assert_contains "$WORKDIR/chunk0" "$MARKER" "decrypted chunk"
check "cat of a chunk with a short id prefix works; without the key it fails"
cairn --key-file "$KEY" cat "${CHUNK0:0:12}" | cmp - "$WORKDIR/chunk0" || fail "cat by prefix"
expect_fail "$WORKDIR/err" cairn cat "$CHUNK0"
assert_contains "$WORKDIR/err" "--key-file" "stderr of cat without the key"
assert_not_contains "$WORKDIR/err.out" "$MARKER" "stdout of cat without the key"

assert_no_leftover_processes
exit 0
