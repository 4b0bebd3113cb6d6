#!/usr/bin/env bash
# roundtrip.sh - back up mixed-content raw and qcow2 images into repositories
# of three chunk sizes; every restore, to raw and to qcow2, is identical to
# the original; a two-disk backup restores each disk.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

# 37 MiB + 123 KiB: a multiple of none of the chunk sizes
SIZE=$(((37 * 1024 + 123) * 1024))
A=$WORKDIR/disk-a.raw
B=$WORKDIR/disk-b.raw
make_mixed_raw "$A" "$SIZE"
to_qcow2 "$A" "$WORKDIR/disk-a.qcow2"
# a second, different disk of another odd size for vdb
make_mixed_raw "$B" $(((9 * 1024 + 5) * 1024)) $((700 * 1024))
info "images: $A ($SIZE bytes, mixed random/zeros/text/repeated/hole), its qcow2, $B"

for cs in default 64K 4M; do
    REPO=$WORKDIR/repo-$cs
    if [ "$cs" = default ]; then
        cairn init >/dev/null
    else
        cairn init --chunk-size "$cs" >/dev/null
    fi
    check "[$cs] backup of the raw image, restore to raw (cmp) and qcow2 (qemu-img compare)"
    cairn backup --image "$A" --name raw --json >"$WORKDIR/b.json"
    assert_eq "$(json_get "$WORKDIR/b.json" disks.0.virtual_size)" "$SIZE" "[$cs] virtual_size"
    assert_eq "$(json_get "$WORKDIR/b.json" disks.0.format)" raw "[$cs] probed format"
    restore_and_compare raw@latest vda "$A"

    check "[$cs] backup of the qcow2 image restores to the same bytes"
    cairn backup --image "$WORKDIR/disk-a.qcow2" --name qcow --json >"$WORKDIR/b.json"
    assert_eq "$(json_get "$WORKDIR/b.json" disks.0.format)" qcow2 "[$cs] probed format"
    assert_eq "$(json_get "$WORKDIR/b.json" disks.0.virtual_size)" "$SIZE" "[$cs] virtual_size"
    if [ "$cs" = default ]; then
        restore_and_compare qcow@latest vda "$A"
    else
        # the qcow2 writer was exercised above: raw output is enough here
        cairn restore-disk qcow@latest vda --to "$WORKDIR/out.raw" --format raw >/dev/null
        cmp "$A" "$WORKDIR/out.raw" || fail "[$cs] qcow2 backup restored to raw differs"
        rm -f "$WORKDIR/out.raw"
    fi
    if [ "$cs" = default ]; then
        check "[$cs] without --format a qcow2 disk restores as qcow2, a raw disk as raw"
        cairn restore-disk qcow@latest vda --to "$WORKDIR/default-fmt" >/dev/null
        assert_eq "$(image_format "$WORKDIR/default-fmt")" qcow2 "default restore format of a qcow2 disk"
        rm -f "$WORKDIR/default-fmt"
        cairn restore-disk raw@latest vda --to "$WORKDIR/default-fmt" >/dev/null
        cmp "$A" "$WORKDIR/default-fmt" || fail "default-format restore of the raw disk differs"
        rm -f "$WORKDIR/default-fmt"
    fi

    check "[$cs] show reports the repository's chunk size"
    cairn show raw@latest --json >"$WORKDIR/show.json"
    case $cs in
    default) want=1048576 ;; 64K) want=65536 ;; 4M) want=4194304 ;;
    esac
    assert_eq "$(json_get "$WORKDIR/show.json" disks.0.chunk_size)" "$want" "[$cs] chunk_size"

    check "[$cs] verify --read-data is clean"
    cairn verify --read-data >/dev/null || fail "[$cs] verify --read-data reported problems"
done

check "two-image backup (vda = qcow2 of A, vdb = raw B) restores each disk identically"
REPO=$WORKDIR/repo-default
cairn backup --image "$WORKDIR/disk-a.qcow2" --image "$B" --name two --json >"$WORKDIR/two.json"
assert_eq "$(json_eval "$WORKDIR/two.json" '",".join(d["target"] for d in j["disks"])')" "vda,vdb" \
    "disk targets"
assert_eq "$(json_get "$WORKDIR/two.json" disks.1.virtual_size)" "$(file_size "$B")" "vdb virtual_size"
restore_and_compare two@latest vda "$A"
restore_and_compare two@latest vdb "$B"
cairn verify --read-data >/dev/null || fail "verify --read-data after the two-disk backup"

check "no qemu-nbd or other process is left behind"
assert_no_leftover_processes
exit 0
