#!/usr/bin/env bash
# bad-input.sh - every mistake a user can make fails with a non-zero exit
# and a message that says what is wrong (a keyword is asserted in stderr),
# and changes nothing; a full repository filesystem (ENOSPC) fails cleanly
# and leaves a repository that verifies, can be gc'ed and used again.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

MIB=$((1024 * 1024))
ERR=$WORKDIR/err

# bad KEYWORD CMD...: CMD fails and its stderr contains KEYWORD
bad() {
    local kw=$1
    shift
    expect_fail "$ERR" "$@"
    assert_contains "$ERR" "$kw" "stderr of '$*'"
}
# unchanged STATE WHAT: the repository is as it was
unchanged() {
    assert_eq "$(repo_state)" "$1" "repository after $2 (it must change nothing)"
}

IMG=$WORKDIR/web01.raw
make_random_raw "$IMG" $((3 * MIB + 4096))

check "--repo pointing at a missing directory: 'init' hint, nothing created"
MISSING=$WORKDIR/no-such-dir/repo
for cmd in snapshots "backup --image $IMG" verify "gc --grace 0"; do
    # shellcheck disable=SC2086
    bad "init" "$CAIRN_BIN" --repo "$MISSING" $cmd
    assert_contains "$ERR" "$MISSING" "stderr (names the location)"
done
[ ! -e "$WORKDIR/no-such-dir" ] || fail "a command on a missing repository created it"

check "--repo pointing at a directory that is no repository: 'not a cairn repository', 'init'"
NOTREPO=$WORKDIR/not-a-repo
mkdir "$NOTREPO"
echo "some file" >"$NOTREPO/file"
for cmd in snapshots "backup --image $IMG" "restore-disk x@latest vda --to $WORKDIR/x.raw" "gc --grace 0"; do
    # shellcheck disable=SC2086
    bad "not a cairn repository" "$CAIRN_BIN" --repo "$NOTREPO" $cmd
    assert_contains "$ERR" "init" "stderr of '$cmd' on a non-repository"
done
assert_eq "$(ls -A "$NOTREPO")" file "contents of the non-repository directory"

# the repository the other cases run against, with one snapshot
cairn init >/dev/null
cairn backup --image "$IMG" --name web01 >/dev/null
STATE=$(repo_state)

check "init over an existing repository: 'already exists', config untouched"
bad "already exists" cairn init
bad "already exists" cairn init --chunk-size 64K
unchanged "$STATE" "init over it"

check "init with an invalid chunk size: 'power of two', nothing created"
bad "power of two" "$CAIRN_BIN" --repo "$WORKDIR/repo-3m" init --chunk-size 3M
[ ! -e "$WORKDIR/repo-3m/config" ] || fail "init --chunk-size 3M created a repository"

check "a repository whose config version is 99: 'upgrade', nothing changed"
FUTURE=$WORKDIR/future-repo
cp -a "$REPO" "$FUTURE"
"$PYTHON" -c '
import json, sys
p = sys.argv[1] + "/config"
c = json.load(open(p))
c["version"] = 99
open(p, "w").write(json.dumps(c, indent=2))' "$FUTURE"
FSTATE=$(repo_state "$FUTURE")
for cmd in snapshots "backup --image $IMG" verify "gc --grace 0" "prune --keep-last 1" \
    "restore-disk web01@latest vda --to $WORKDIR/x.raw"; do
    # shellcheck disable=SC2086
    bad "upgrade" "$CAIRN_BIN" --repo "$FUTURE" $cmd
done
assert_eq "$(repo_state "$FUTURE")" "$FSTATE" "the version-99 repository after the refused commands"
[ ! -e "$WORKDIR/x.raw" ] || fail "restore from a version-99 repository wrote a file"

check "backup --image of a missing file / a directory / an empty file"
bad "No such file" cairn backup --image "$WORKDIR/missing.raw"
bad "directory" cairn backup --image "$WORKDIR"
: >"$WORKDIR/empty.raw"
bad "empty" cairn backup --image "$WORKDIR/empty.raw"
check "backup with an invalid snapshot name ('@' or '/'): 'invalid snapshot name'"
bad "invalid snapshot name" cairn backup --image "$IMG" --name "web@01"
bad "invalid snapshot name" cairn backup --image "$IMG" --name "web/01"
unchanged "$STATE" "the refused backups"
assert_eq "$(count_locks)" 0 "lock files left by the refused backups"

check "unknown snapshot name with a near miss: 'did you mean'"
bad "did you mean 'web01'" cairn show web02@latest
bad "did you mean 'web01'" cairn restore-disk web1@latest vda --to "$WORKDIR/x.raw"
check "NAME@~99 of a name with one snapshot: says how many there are"
bad "web01@~0" cairn show web01@~99
check "a too-short snapshot id: asks for 8 or more hex digits"
bad "8" cairn show abc1
assert_contains "$ERR" "hex" "stderr of 'show abc1'"
check "an id that matches no snapshot: 'no snapshot'"
bad "no snapshot" cairn show 00000000
check "unknown command: 'did you mean'"
bad "did you mean 'snapshots'" cairn snapshot
assert_eq "$LAST_RC" 2 "exit status of an unknown command"
bad "did you mean 'backup'" cairn bakup --image "$IMG"
check "unknown restore format: 'did you mean'"
bad "did you mean 'qcow2'" cairn restore-disk web01@latest vda --to "$WORKDIR/x.img" --format qcow
[ ! -e "$WORKDIR/x.img" ] || fail "restore with an unknown format wrote a file"
assert_eq "$LAST_RC" 2 "exit status of an unknown format (a usage error)"
check "usage errors (missing or extra arguments, options that exclude each other) exit 2"
for args in "restore-disk web01@latest" "restore-disk web01@latest vda" "restore" \
    "show" "backup" "serve web01@latest" "cat" "snapshots a b" "gc extra" \
    "restore-disk web01@latest vda --to $WORKDIR/y.raw --target vdb" "prune" \
    "gc --grace xyz" "gc --wait -5" "remote list extra" "restore-disk web01@latest vda --to $WORKDIR/y.vmdk"; do
    # shellcheck disable=SC2086 # the words of $args are the arguments
    bad "" cairn $args
    assert_eq "$LAST_RC" 2 "exit status of 'cairn $args'"
done
[ ! -e "$WORKDIR/y.raw" ] || fail "a usage error wrote a file"

check "restore-disk to an existing file without --force: '--force', file untouched"
echo "precious data" >"$WORKDIR/existing.raw"
bad "--force" cairn restore-disk web01@latest vda --to "$WORKDIR/existing.raw"
assert_eq "$(cat "$WORKDIR/existing.raw")" "precious data" "the existing file"
assert_eq "$(find "$WORKDIR" -maxdepth 1 -name '*cairn-partial*' | wc -l)" 0 "temp files next to the target"
# with --force it is replaced
cairn restore-disk web01@latest vda --to "$WORKDIR/existing.raw" --force >/dev/null
cmp "$IMG" "$WORKDIR/existing.raw" || fail "restore --force did not write the disk"

check "prune without a --keep-* rule, or with a negative one: refused, nothing removed"
bad "--keep" cairn prune
bad "negative" cairn prune --keep-last -1
check "invalid durations: 'invalid duration'"
bad "invalid duration" cairn gc --grace soon
bad "invalid duration" cairn --lock-wait forever snapshots
check "NAME@TIME before the oldest snapshot: names the oldest"
bad "oldest" cairn show web01@2001-01-01
check "restore-disk to a directory, or into a missing directory"
bad "directory" cairn restore-disk web01@latest vda --to "$WORKDIR"
bad "does not exist (create it first)" cairn restore-disk web01@latest vda --to "$WORKDIR/no-such-dir/x.raw"
[ ! -e "$WORKDIR/no-such-dir" ] || fail "restore created the missing directory"

check "unknown disk name: the message lists the snapshot's disks"
bad "vda" cairn restore-disk web01@latest vdq --to "$WORKDIR/x.raw"
assert_contains "$ERR" "vdq" "stderr of restore-disk of an unknown disk"
[ ! -e "$WORKDIR/x.raw" ] || fail "restore of an unknown disk wrote a file"
unchanged "$STATE" "all the refused commands"

# ---- ENOSPC: the repository on a 24 MiB tmpfs
check "ENOSPC: a 64 MiB backup into a repository on a 24 MiB tmpfs"
SMALLFS=$WORKDIR/smallfs
mkdir "$SMALLFS"
mount -t tmpfs -o size=24M tmpfs "$SMALLFS" 2>"$ERR" ||
    skip "cannot mount a tmpfs here (all other cases passed): $(cat "$ERR")"
cleanup_fn umount "$SMALLFS"
REPO=$SMALLFS/repo
cairn init >/dev/null
make_random_raw "$WORKDIR/small.raw" $((1 * MIB))
cairn backup --image "$WORKDIR/small.raw" --name small >/dev/null
make_random_raw "$WORKDIR/big.raw" $((64 * MIB))
bad "full" cairn backup --image "$WORKDIR/big.raw" --name big
assert_contains "$ERR" "no snapshot was published" "stderr of the backup that ran out of space"
assert_eq "$(count_snapshots)" 1 "snapshots after the failed backup"
assert_eq "$(count_locks)" 0 "lock files after the failed backup"
info "after ENOSPC: $(count_objects) objects, $(count_temps) temp files, $(du_k "$REPO") KiB used"

check "ENOSPC: the repository still verifies, and the earlier snapshot restores"
cairn verify --read-data >/dev/null || fail "verify --read-data after ENOSPC"
cairn restore-disk small@latest vda --to "$WORKDIR/small.out" >/dev/null
cmp "$WORKDIR/small.raw" "$WORKDIR/small.out" || fail "the earlier snapshot restores differently"

check "ENOSPC: gc --grace 0 deletes the failed backup's leftovers; a small backup then succeeds"
cairn gc --grace 0 --json >"$WORKDIR/gc.json" 2>"$ERR" || fail "gc on the full repository: $(cat "$ERR")"
assert_gt "$(json_get "$WORKDIR/gc.json" objects_deleted)" 0 "objects deleted by gc"
assert_eq "$(count_temps)" 0 "temp files after gc"
make_random_raw "$WORKDIR/small2.raw" $((2 * MIB))
cairn backup --image "$WORKDIR/small2.raw" --name small2 >/dev/null ||
    fail "a small backup after gc failed"
cairn restore-disk small2@latest vda --to "$WORKDIR/small2.out" >/dev/null
cmp "$WORKDIR/small2.raw" "$WORKDIR/small2.out" || fail "the new small backup restores differently"
cairn verify --read-data >/dev/null || fail "verify --read-data after gc and the new backup"
assert_no_leftover_processes
exit 0
