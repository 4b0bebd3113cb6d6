#!/usr/bin/env bash
# sparse-64g.sh - a 64 GiB disk with a few MiB of data: the backup reads
# only the data, the repository stays tiny, and restores to raw and qcow2
# are sparse and identical, the last MiB included.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

GIB=$((1024 * 1024 * 1024))
MIB=$((1024 * 1024))
VSIZE=$((64 * GIB))
RAW=$WORKDIR/sparse.raw
QCOW=$WORKDIR/sparse.qcow2

# data at the start, at unaligned offsets in the middle, and in the last MiB
truncate -s "$VSIZE" "$RAW"
overwrite_random "$RAW" 0 $((2 * MIB))
overwrite_random "$RAW" $((1 * GIB + 123 * 1024)) $((1 * MIB))
overwrite_random "$RAW" $((17 * GIB)) $((3 * MIB / 2))
overwrite_random "$RAW" $((40 * GIB + 4096)) 4096
overwrite_random "$RAW" $((VSIZE - MIB)) "$MIB"
# a text marker in the very last bytes, to make a lost tail obvious
printf 'CAIRN-LAST-SECTOR' | dd of="$RAW" bs=1 seek=$((VSIZE - 17)) conv=notrunc status=none
to_qcow2 "$RAW" "$QCOW"
info "images: 64 GiB raw (sparse, $(du_k "$RAW") KiB used) and its qcow2 ($(du_k "$QCOW") KiB)"
cairn init >/dev/null

check "backup of the 64 GiB qcow2 reads only the data (bytes_read < 16 MiB) and is fast"
t0=$(date +%s)
cairn backup --image "$QCOW" --name sparse --json >"$WORKDIR/b.json"
t1=$(date +%s)
read_bytes=$(json_get "$WORKDIR/b.json" bytes_read)
info "bytes_read=$read_bytes bytes_new=$(json_get "$WORKDIR/b.json" bytes_new) in $((t1 - t0)) s"
assert_lt "$read_bytes" $((16 * MIB)) "bytes_read of the sparse qcow2 backup"
assert_gt "$read_bytes" 0 "bytes_read of the sparse qcow2 backup"
assert_eq "$(json_get "$WORKDIR/b.json" virtual_size)" "$VSIZE" "virtual_size"
assert_ge "$(json_get "$WORKDIR/b.json" disks.0.chunks_hole)" $((65536 - 12)) "chunks_hole"
assert_le $((t1 - t0)) 20 "seconds to back up a 64 GiB disk with 6 MiB of data"

check "the repository is tiny (du -s < 16 MiB)"
repo_k=$(du_k "$REPO")
info "repository: $repo_k KiB"
assert_lt "$repo_k" $((16 * 1024)) "KiB used by the repository"

check "restore-disk to raw: 64 GiB, sparse, identical (qemu-img compare -f raw -F qcow2)"
cairn restore-disk sparse@latest vda --to "$WORKDIR/out.raw" --format raw >/dev/null
assert_eq "$(file_size "$WORKDIR/out.raw")" "$VSIZE" "size of the raw restore"
out_k=$(du_k "$WORKDIR/out.raw")
info "raw restore uses $out_k KiB"
assert_lt "$out_k" $((32 * 1024)) "KiB used by the raw restore"
qemu-img compare -q -f raw -F qcow2 "$WORKDIR/out.raw" "$QCOW" || fail "raw restore differs"
assert_eq "$(tail -c 17 "$WORKDIR/out.raw")" CAIRN-LAST-SECTOR "last bytes of the raw restore"

check "restore-disk to qcow2: 64 GiB virtual, small, identical"
cairn restore-disk sparse@latest vda --to "$WORKDIR/out.qcow2" --format qcow2 >/dev/null
assert_eq "$(image_vsize "$WORKDIR/out.qcow2")" "$VSIZE" "virtual size of the qcow2 restore"
out_k=$(du_k "$WORKDIR/out.qcow2")
info "qcow2 restore uses $out_k KiB"
assert_lt "$out_k" $((32 * 1024)) "KiB used by the qcow2 restore"
qemu-img compare -q -f qcow2 -F qcow2 "$WORKDIR/out.qcow2" "$QCOW" || fail "qcow2 restore differs"
rm -f "$WORKDIR/out.raw" "$WORKDIR/out.qcow2"

check "a sparse 64 GiB raw file backs up just as cheaply and restores identically"
cairn backup --image "$RAW" --name sparse-raw --json >"$WORKDIR/b2.json"
read_bytes=$(json_get "$WORKDIR/b2.json" bytes_read)
assert_lt "$read_bytes" $((16 * MIB)) "bytes_read of the sparse raw backup"
# same data: no new chunk
assert_eq "$(json_get "$WORKDIR/b2.json" disks.0.chunks_new)" 0 "chunks_new of the raw twin"
cairn restore-disk sparse-raw@latest vda --to "$WORKDIR/out.raw" >/dev/null
assert_lt "$(du_k "$WORKDIR/out.raw")" $((32 * 1024)) "KiB used by the raw restore"
qemu-img compare -q -f raw -F raw "$WORKDIR/out.raw" "$RAW" || fail "raw restore of the raw backup differs"

check "verify --read-data is clean"
cairn verify --read-data >/dev/null || fail "verify --read-data reported problems"
assert_no_leftover_processes
exit 0
