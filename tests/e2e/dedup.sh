#!/usr/bin/env bash
# dedup.sh - content-addressed chunks are stored once: the same image
# backed up again stores no chunk, and an image sharing 90% of its chunks
# with one already stored adds only the other 10%.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

cairn init >/dev/null
CS=$(cairn cat config | json_get - chunk_size)

# list of object files as "id size", sorted
list_objects() {
    find "$REPO/objects" -type f ! -name '.*' -printf '%f %s\n' | sort
}

IMG=$WORKDIR/mixed.raw
make_mixed_raw "$IMG" $(((23 * 1024 + 77) * 1024))

check "first backup of a mixed 23 MiB image stores chunks"
cairn backup --image "$IMG" --name mixed --json >"$WORKDIR/b1.json"
assert_gt "$(json_get "$WORKDIR/b1.json" disks.0.chunks_new)" 0 "chunks_new of the first backup"
list_objects >"$WORKDIR/objs1"

check "the same image again: chunks_new == 0, at most 2 new object files (manifest, index)"
cairn backup --image "$IMG" --name mixed --json >"$WORKDIR/b2.json"
assert_eq "$(json_get "$WORKDIR/b2.json" disks.0.chunks_new)" 0 "chunks_new of the second backup"
list_objects >"$WORKDIR/objs2"
comm -13 "$WORKDIR/objs1" "$WORKDIR/objs2" >"$WORKDIR/new-objs"
n_new=$(wc -l <"$WORKDIR/new-objs")
info "new object files: $n_new, bytes_new: $(json_get "$WORKDIR/b2.json" bytes_new)"
assert_le "$n_new" 2 "new object files after backing up the same image"
assert_ge "$n_new" 1 "new object files (the manifest at least)"
snap2=$(json_get "$WORKDIR/b2.json" id)
index2=$(cairn show "$snap2" --json | json_get - disks.0.index)
# every new object is the manifest or the disk index, and bytes_new counts
# exactly the new index object (the manifest is not counted)
expect_new=0
while read -r id size; do
    case $id in
    "$snap2") ;;
    "$index2") expect_new=$((expect_new + size)) ;;
    *) fail "object $id ($size bytes) is new but is neither the manifest nor the index" ;;
    esac
done <"$WORKDIR/new-objs"
assert_eq "$(json_get "$WORKDIR/b2.json" bytes_new)" "$expect_new" \
    "bytes_new of the second backup (only a new index may count)"
assert_eq "$(json_get "$WORKDIR/b2.json" disks.0.bytes_new)" "$expect_new" "disks.0.bytes_new"

check "the same content as qcow2 under another name stores no chunk either"
to_qcow2 "$IMG" "$WORKDIR/mixed.qcow2"
cairn backup --image "$WORKDIR/mixed.qcow2" --name mixed-qcow2 --json >"$WORKDIR/b3.json"
assert_eq "$(json_get "$WORKDIR/b3.json" disks.0.chunks_new)" 0 "chunks_new of the qcow2 twin"

check "two random images sharing 90% of their chunks: the second stores ~10% (5%..20%)"
A=$WORKDIR/a.raw
B=$WORKDIR/b.raw
NCHUNKS=40
make_random_raw "$A" $((NCHUNKS * CS))
cp "$A" "$B"
# replace 4 of the 40 chunks (10%), chunk aligned
for c in 3 10 25 33; do
    overwrite_random "$B" $((c * CS)) "$CS"
done
cairn backup --image "$A" --name a --json >"$WORKDIR/ba.json"
assert_eq "$(json_get "$WORKDIR/ba.json" disks.0.chunks_new)" "$NCHUNKS" "chunks_new of image a"
cairn backup --image "$B" --name b --json >"$WORKDIR/bb.json"
size_b=$(file_size "$B")
new_b=$(json_get "$WORKDIR/bb.json" bytes_new)
info "image b: $size_b bytes, bytes_new $new_b ($((100 * new_b / size_b))%)"
assert_eq "$(json_get "$WORKDIR/bb.json" disks.0.chunks_new)" 4 "chunks_new of image b"
assert_ge "$new_b" $((size_b * 5 / 100)) "bytes_new of image b (>= 5%)"
assert_le "$new_b" $((size_b * 20 / 100)) "bytes_new of image b (<= 20%)"

check "both images restore identically; verify --read-data is clean"
cairn restore-disk a@latest vda --to "$WORKDIR/a.out" >/dev/null
cmp "$A" "$WORKDIR/a.out" || fail "a restores differently"
cairn restore-disk b@latest vda --to "$WORKDIR/b.out" >/dev/null
cmp "$B" "$WORKDIR/b.out" || fail "b restores differently"
cairn restore-disk mixed@~1 vda --to "$WORKDIR/m.out" >/dev/null
cmp "$IMG" "$WORKDIR/m.out" || fail "mixed@~1 restores differently"
cairn verify --read-data >/dev/null || fail "verify --read-data reported problems"
assert_no_leftover_processes
exit 0
