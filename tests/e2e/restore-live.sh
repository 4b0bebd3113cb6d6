#!/usr/bin/env bash
# restore-live.sh - `cairn restore` and `cairn restore-disk --attach` of a
# running two-disk domain (with a NIC) backed up live: a full and two
# incrementals, each with different writes, and a raw reference copy of every
# disk at every backup.
#   lost domain: destroyed, undefined, disks deleted; `restore DOM@~1
#     --define --start` runs it again and each disk equals the reference at
#     the middle backup (cmp), not at the others.
#   new name: `restore DOM@latest --name NEW --define --start` while the
#     original runs: both run, UUIDs, MACs and disk paths differ, NEW's disks
#     equal the latest backup.
#   restore-disk DOM@~2 vdb --attach DOM: hot-plugged into the running
#     domain (virsh domblklist, live and persistent), QEMU reads the old data
#     through the new device, the file equals vdb at the full backup.
#   refusals that keep everything: a domain of that name (running or shut
#     off) without --force; existing disk files. With --force over the
#     shut-off domain: replaced, said so, runs at the older point.
#   not enough free space in --dir (a tmpfs that holds each disk but not
#     both): the error names the size needed, nothing is written.
#   a corrupt chunk: the error names the object; no disk file, temp file,
#     directory or domain is left, for restore and restore-disk.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/libvirt.sh"
need mount umount cmp

DOM=ct-rst-live
NEW=$DOM-new
NOSPACE=$DOM-nospace
CORRUPT=$DOM-corrupt
CLONE=$DOM-clone
BACKED=$DOM-backed
for n in "$NEW" "$NOSPACE" "$CORRUPT" "$CLONE"; do
    _remove_domain "$n"
    cleanup_fn _remove_domain "$n"
done
# a NIC (user networking: no host network needed) so that MACs can be
# compared; ACPI for PCI hot-plug
DOMAIN_EXTRA_DEVICES="<interface type='user'><model type='virtio'/></interface>"
DOMAIN_FEATURES="<acpi/>"
define_domain "$DOM" 2 128M
cairn init >/dev/null

backup_three_points "$DOM"

# ---- a lost domain comes back at the middle backup

check "the domain is lost: destroyed, undefined, its disks deleted"
OLD_UUID=$(dom_uuid "$DOM")
OLD_MACS=$(macs "$DOM")
lose_domain "$DOM"

check "cairn restore $DOM@~1 --define --start: the domain runs again"
expect_ok "$WORKDIR/r1.json" cairn restore "$DOM@~1" --define --start --json
info "cairn restore: $(json_get "$WORKDIR/r1.json" duration_seconds) s"
track_uuid "$DOM"
assert_eq "$(json_get "$WORKDIR/r1.json" snapshot)" "$(json_get "$WORKDIR/b2.json" id)" \
    "the snapshot restored for $DOM@~1"
assert_eq "$(json_get "$WORKDIR/r1.json" started)" true "started"
wait_for "dom_running $DOM" 30 || fail "$DOM does not run after the restore"
blk_sources "$DOM" >"$WORKDIR/r1.blk"
info "disks of the restored $DOM: $(tr '\n' ' ' <"$WORKDIR/r1.blk")"
assert_eq "$(awk '{ print $1 }' "$WORKDIR/r1.blk" | tr '\n' ' ')" "vda vdb " "disks of $DOM"

check "each disk of the restored domain equals its reference at the middle backup"
for d in vda vdb; do
    f=$(blk_source "$DOM" $d)
    assert_eq "$(qemu-img info -U --output=json "$f" | json_get - format)" qcow2 "format of $f"
done
assert_disks_at "$DOM" "$DOM" b2
# what QEMU reads: patterns written before the middle backup, not the one
# written after it
guest_read "$DOM" ua-vda 0x12 60M 2M || fail "QEMU does not read 0x12 at vda 60M in $DOM"
guest_read "$DOM" ua-vdb 0x22 4M 1M || fail "QEMU does not read 0x22 at vdb 4M in $DOM"
guest_read "$DOM" ua-vdb 0x00 20M 64k || fail "QEMU does not read zeros at vdb 20M in $DOM"
! guest_read "$DOM" ua-vdb 0x23 20M 64k || fail "control: QEMU reads 0x23 at vdb 20M in $DOM"

# ---- under a new name while the original runs

check "cairn restore $DOM@latest --name $NEW --define --start while $DOM runs"
expect_ok "$WORKDIR/r2.json" cairn restore "$DOM@latest" --name "$NEW" --define --start --json
info "cairn restore: $(json_get "$WORKDIR/r2.json" duration_seconds) s"
track_uuid "$NEW"
wait_for "dom_running $NEW" 30 || fail "$NEW does not run"
dom_running "$DOM" || fail "$DOM stopped running when $NEW was restored"

check "both run with different UUIDs, MACs and disk paths; $NEW holds the latest backup"
assert_apart "$DOM" "$NEW"
[ "$(dom_uuid "$NEW")" != "$OLD_UUID" ] || fail "$NEW has the UUID of the original $DOM"
[ -z "$(comm -12 <(echo "$OLD_MACS") <(macs "$NEW"))" ] || fail "$NEW has the original's MAC"
assert_eq "$(macs "$NEW" | wc -l)" "$(echo "$OLD_MACS" | wc -l)" "NICs of $NEW"
assert_eq "$(blk_sources "$NEW" | awk '{ print $1 }' | tr '\n' ' ')" "vda vdb " "disks of $NEW"
virsh dumpxml "$NEW" >"$WORKDIR/new.xml"
assert_not_contains "$WORKDIR/new.xml" "$IMAGES_BASE/$DOM/" "the XML of $NEW"
assert_disks_at "$NEW" "$DOM" b3
guest_read "$NEW" ua-vdb 0x23 20M 64k || fail "QEMU does not read 0x23 at vdb 20M in $NEW"

# ---- one disk of an older point, hot-plugged into the running domain

check "cairn restore-disk $DOM@~2 vdb --attach $DOM (running): hot-plugged"
expect_ok "$WORKDIR/rd.json" cairn restore-disk "$DOM@~2" vdb --attach "$DOM" --json
info "cairn restore-disk: $(json_get "$WORKDIR/rd.json" duration_seconds) s"
ATT_FILE=$(json_get "$WORKDIR/rd.json" file)
cleanup_fn rm -f "$ATT_FILE"
ATT_TARGET=$(json_get "$WORKDIR/rd.json" target)
info "attached $ATT_FILE as $ATT_TARGET"
assert_eq "$(json_get "$WORKDIR/rd.json" snapshot)" "$(json_get "$WORKDIR/b1.json" id)" \
    "the snapshot restored for $DOM@~2"
assert_eq "$ATT_TARGET" vdc "the target (the first free one)"
blk_sources "$DOM" >"$WORKDIR/rd.blk"
assert_eq "$(awk -v t=vdc '$1 == t { print $2 }' "$WORKDIR/rd.blk")" "$ATT_FILE" \
    "vdc in virsh domblklist $DOM"
blk_sources "$DOM" --inactive >"$WORKDIR/rd-inactive.blk"
assert_eq "$(awk -v t=vdc '$1 == t { print $2 }' "$WORKDIR/rd-inactive.blk")" "$ATT_FILE" \
    "vdc in the persistent definition of $DOM"

check "the attached disk holds vdb as of the full backup (file and guest view)"
assert_image_eq "$ATT_FILE" "$(ref_at "$DOM" vdb b1)" "the attached vdb of $DOM@~2"
# QEMU reads it through the hot-plugged device (libvirt's alias virtio-disk2)
ALIAS=$(virsh dumpxml "$DOM" | "$PYTHON" -c '
import sys, xml.etree.ElementTree as ET
for d in ET.parse(sys.stdin).getroot().iter("disk"):
    if d.find("target").get("dev") == "vdc":
        print(d.find("alias").get("name"))')
guest_read "$DOM" "$ALIAS" 0x21 40M 64k || fail "QEMU does not read 0x21 at 40M of vdc"
! guest_read "$DOM" "$ALIAS" 0x22 4M 1M ||
    fail "control: vdc of $DOM holds a pattern written after the full backup"

# ---- refusals that keep everything as it was

# state_of DOM: its definition, state and the checksums of its disk files
state_of() {
    virsh dumpxml --inactive "$1" | sha256sum
    virsh domstate "$1" | sed -n 1p
    blk_sources "$1" | awk '{ print $2 }' | xargs -r sha256sum
}

refuse_existing() {
    check "restore over the running $DOM without --force: refused, nothing touched"
    state_of "$DOM" >"$WORKDIR/state-before"
    files_under "$IMAGES_BASE/$DOM" >"$WORKDIR/files-before"
    expect_fail "$WORKDIR/ex.err" cairn restore "$DOM@latest" --define
    assert_contains "$WORKDIR/ex.err" "a domain named '$DOM' exists and is running" "the refusal"
    expect_fail "$WORKDIR/ex2.err" cairn restore "$DOM@latest" --define --force
    assert_contains "$WORKDIR/ex2.err" "shut it down first" "the refusal with --force"
    check "restore over the running domain's disk files (no --define): refused, even with --force"
    expect_fail "$WORKDIR/ex3.err" cairn restore "$DOM@latest"
    assert_contains "$WORKDIR/ex3.err" "of the running domain '$DOM'" "the refusal"
    expect_fail "$WORKDIR/ex3f.err" cairn restore "$DOM@latest" --force
    assert_contains "$WORKDIR/ex3f.err" "of the running domain '$DOM'" "the refusal with --force"
    check "restore-disk --force over a disk the running domain has open: refused"
    expect_fail "$WORKDIR/ex5.err" cairn restore-disk "$DOM@~1" vda \
        --to "$(blk_source "$DOM" vda)" --force
    assert_contains "$WORKDIR/ex5.err" "disk vda of the running domain '$DOM'" "the refusal"
    check "restore-disk --attach: a file the domain has already, a bad target, no such domain"
    expect_fail "$WORKDIR/ex6.err" cairn restore-disk "$DOM@~2" vdb --attach "$DOM" --force
    assert_contains "$WORKDIR/ex6.err" "is disk vdc of '$DOM' already" "the refusal"
    expect_fail "$WORKDIR/ex7.err" cairn restore-disk "$DOM@~2" vdb --attach "$DOM" \
        --to "$WORKDIR/x.qcow2" --target xyz
    assert_contains "$WORKDIR/ex7.err" "use vdX (virtio), sdX (scsi) or hdX (ide)" "the refusal"
    expect_fail "$WORKDIR/ex8.err" cairn restore-disk "$DOM@~2" vdb --attach "$DOM-nosuch" \
        --to "$WORKDIR/x.qcow2"
    assert_contains "$WORKDIR/ex8.err" "no domain '$DOM-nosuch'" "the refusal"
    [ ! -e "$WORKDIR/x.qcow2" ] || fail "a refused --attach wrote the disk first"
    state_of "$DOM" >"$WORKDIR/state-after"
    files_under "$IMAGES_BASE/$DOM" >"$WORKDIR/files-after"
    cmp "$WORKDIR/state-before" "$WORKDIR/state-after" || fail "$DOM changed"
    cmp "$WORKDIR/files-before" "$WORKDIR/files-after" || fail "files changed in $IMAGES_BASE/$DOM"

    check "restore over the shut-off $DOM without --force: refused, nothing touched"
    stop_domain "$DOM"
    state_of "$DOM" >"$WORKDIR/state-before"
    expect_fail "$WORKDIR/ex4.err" cairn restore "$DOM@latest" --define --start
    assert_contains "$WORKDIR/ex4.err" "a domain named '$DOM' exists" "the refusal"
    assert_contains "$WORKDIR/ex4.err" "--force" "the refusal"
    assert_contains "$WORKDIR/ex4.err" "overwrite '$IMAGES_BASE/$DOM/$DOM-vda.qcow2'" \
        "the refusal (names the files --force overwrites)"
    state_of "$DOM" >"$WORKDIR/state-after"
    cmp "$WORKDIR/state-before" "$WORKDIR/state-after" || fail "$DOM changed"
    files_under "$IMAGES_BASE/$DOM" >"$WORKDIR/files-after"
    cmp "$WORKDIR/files-before" "$WORKDIR/files-after" || fail "files changed in $IMAGES_BASE/$DOM"
}
scenario refuse-existing refuse_existing

# bad_repo_of SNAP DISK: a copy of the repository with the last data chunk of
# DISK of SNAP damaged (prints the copy's path; BAD_CHUNK is the chunk id)
bad_repo_of() {
    local bad=$WORKDIR/repo-bad-$RANDOM index
    cp -a "$REPO" "$bad"
    index=$(cairn show "$1" --json | json_eval - "[d['index'] for d in j['disks'] if d['target'] == '$2'][0]")
    cairn cat "$index" >"$WORKDIR/index.bin"
    BAD_CHUNK=$("$PYTHON" -c '
import sys
b = open(sys.argv[1], "rb").read()[32:]
print([b[i:i + 32].hex() for i in range(0, len(b), 32) if any(b[i:i + 32])][-1])' "$WORKDIR/index.bin")
    local obj=$bad/objects/${BAD_CHUNK:0:2}/$BAD_CHUNK
    printf '\x00\xff\x00\xff' | dd of="$obj" bs=1 seek=$(($(file_size "$obj") / 2)) conv=notrunc \
        status=none
    BAD_REPO=$bad
}

force_replace() {
    check "--force over the shut-off $DOM that fails midway (a damaged chunk of vdb): no disk replaced"
    dom_running "$DOM" && stop_domain "$DOM"
    bad_repo_of "$DOM@~2" vdb
    local before
    before=$(sha256sum "$IMAGES_BASE/$DOM/$DOM-vda.qcow2" "$IMAGES_BASE/$DOM/$DOM-vdb.qcow2")
    expect_fail "$WORKDIR/fb.err" "$CAIRN_BIN" --repo "$BAD_REPO" restore "$DOM@~2" --define --force
    sed 's/^/    stderr: /' "$WORKDIR/fb.err"
    assert_contains "$WORKDIR/fb.err" "$BAD_CHUNK" "the error (names the damaged object)"
    assert_not_contains "$WORKDIR/fb.err" "now holds" "the notes of a failed restore"
    assert_eq "$(sha256sum "$IMAGES_BASE/$DOM/$DOM-vda.qcow2" "$IMAGES_BASE/$DOM/$DOM-vdb.qcow2")" \
        "$before" "the disk files after the failed --force restore (vda finished first)"
    assert_eq "$(files_under "$IMAGES_BASE/$DOM" | grep -c cairn-partial || true)" 0 \
        "partial files left"
    rm -rf "$BAD_REPO"

    check "--force over the shut-off $DOM: its files are replaced (said so), it runs at ~2"
    expect_ok "$WORKDIR/fo" cairn restore "$DOM@~2" --define --start --force
    track_uuid "$DOM"
    assert_contains "$WORKDIR/fo.err" "replaced the existing file '$IMAGES_BASE/$DOM/$DOM-vda.qcow2'" \
        "the notes"
    assert_contains "$WORKDIR/fo.err" "replaced the definition of '$DOM'" "the notes"
    wait_for "dom_running $DOM" 30 || fail "$DOM does not run"
    assert_disks_at "$DOM" "$DOM" b1
}
scenario force-replace force_replace

# 30 MiB: each disk of the latest backup fits alone, both do not. Mounted
# here: a scenario's subshell cannot register cleanups
SMALL=$WORKDIR/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=30m cairn-e2e-tmpfs "$SMALL" || fail "cannot mount a tmpfs on $SMALL"
cleanup_fn umount "$SMALL"
no_space() {
    check "not enough free space in --dir: refused before writing, the size needed named"
    local small=$SMALL
    expect_fail "$WORKDIR/ns.err" cairn restore "$DOM@latest" --name "$NOSPACE" --dir "$small" \
        --define
    sed 's/^/    stderr: /' "$WORKDIR/ns.err"
    assert_contains "$WORKDIR/ns.err" "not enough free space" "the error"
    assert_contains "$WORKDIR/ns.err" "$small" "the error (names the directory)"
    # the size needed: at least the data of both disks (MiB, as printed)
    local need data
    need=$(grep -o '[0-9.]* MiB needed' "$WORKDIR/ns.err" | head -n1 | cut -d' ' -f1)
    [ -n "$need" ] || fail "the error does not say how many MiB are needed"
    data=$(($(du -B1M -c "$(ref_at "$DOM" vda b3)" "$(ref_at "$DOM" vdb b3)" | tail -n1 | cut -f1)))
    assert_ge "${need%.*}" "$data" "MiB said to be needed (the data of both disks: $data MiB)"
    assert_gt "${need%.*}" 30 "MiB said to be needed (more than the tmpfs holds)"
    assert_eq "$(files_under "$small")" "" "files left in $small"
    ! dom_exists "$NOSPACE" || fail "$NOSPACE was defined"

    check "restore-disk into the full tmpfs: the same refusal, nothing left"
    head -c 20M /dev/zero >"$small/filler"
    expect_fail "$WORKDIR/ns2.err" cairn restore-disk "$DOM@latest" vda --to "$small/vda.qcow2"
    assert_contains "$WORKDIR/ns2.err" "not enough free space" "the error"
    assert_contains "$WORKDIR/ns2.err" "needed" "the error"
    rm -f "$small/filler"
    assert_eq "$(files_under "$small")" "" "files left in $small"
}
scenario no-space no_space

corrupt_chunk() {
    check "a corrupt chunk: restore fails naming the object; no disk, temp file or domain left"
    # the last data entry of vdb's index: written late
    bad_repo_of "$DOM@latest" vdb
    local bad=$BAD_REPO chunk=$BAD_CHUNK
    expect_fail "$WORKDIR/cc.err" "$CAIRN_BIN" --repo "$bad" restore "$DOM@latest" \
        --name "$CORRUPT" --define --start
    sed 's/^/    stderr: /' "$WORKDIR/cc.err"
    assert_contains "$WORKDIR/cc.err" "$chunk" "the error (names the object)"
    assert_contains "$WORKDIR/cc.err" "corrupt" "the error"
    assert_contains "$WORKDIR/cc.err" "vdb" "the error (names the disk)"
    ! dom_exists "$CORRUPT" || fail "$CORRUPT was defined"
    [ ! -e "$IMAGES_BASE/$CORRUPT" ] ||
        fail "left in $IMAGES_BASE/$CORRUPT: $(files_under "$IMAGES_BASE/$CORRUPT" | tr '\n' ' ')"

    check "the same with --dir: the directory stays empty"
    mkdir -p "$WORKDIR/cdir"
    expect_fail "$WORKDIR/cc2.err" "$CAIRN_BIN" --repo "$bad" restore "$DOM@latest" \
        --name "$CORRUPT" --dir "$WORKDIR/cdir" --format raw
    assert_contains "$WORKDIR/cc2.err" "$chunk" "the error (names the object)"
    assert_eq "$(files_under "$WORKDIR/cdir")" "" "files left in --dir"

    check "restore-disk of the corrupt disk: fails naming the object, no target or temp file"
    for fmt in raw qcow2; do
        expect_fail "$WORKDIR/cc3.err" "$CAIRN_BIN" --repo "$bad" restore-disk "$DOM@latest" vdb \
            --to "$WORKDIR/cdir/vdb.$fmt" --format $fmt
        assert_contains "$WORKDIR/cc3.err" "$chunk" "the error of restore-disk --format $fmt"
        assert_eq "$(files_under "$WORKDIR/cdir")" "" "files left in $WORKDIR/cdir ($fmt)"
    done
    rm -rf "$bad"
}
scenario corrupt-chunk corrupt_chunk

# a clone of a snapshot that lacks a disk never gets the original's disk
partial_clone() {
    check "a snapshot of vdb only, restored as $CLONE: vda is left out, with a note"
    dom_running "$DOM" || start_domain "$DOM"
    expect_ok "$WORKDIR/pb.json" cairn backup "$DOM" --disk vdb --json
    expect_ok "$WORKDIR/pc" cairn restore "$DOM@latest" --name "$CLONE" --define
    assert_contains "$WORKDIR/pc.err" "disk vda was not restored: left out of '$CLONE'" "the note"
    blk_sources "$CLONE" --inactive >"$WORKDIR/pc.blk"
    info "disks of $CLONE: $(tr '\n' ' ' <"$WORKDIR/pc.blk")"
    assert_eq "$(awk '{ print $1 }' "$WORKDIR/pc.blk" | tr '\n' ' ')" "vdb " "disks of $CLONE"
    assert_eq "$(awk '{ print $2 }' "$WORKDIR/pc.blk")" "$IMAGES_BASE/$CLONE/$CLONE-vdb.qcow2" \
        "the source of $CLONE's vdb"
}
scenario partial-clone partial_clone

# a domain whose disk is an overlay: its backing file is in use too
define_domain "$BACKED" 1 16M --no-start
BASE=$IMAGES_BASE/$BACKED/base.qcow2
qemu-img create -q -f qcow2 "$BASE" 16M
qemu-img create -q -f qcow2 -F qcow2 -b "$BASE" "$(dom_disk "$BACKED" vda)"
start_domain "$BACKED"
in_use_backing() {
    check "restore-disk --force over the backing file of a running domain's disk: refused"
    local before
    before=$(sha256sum "$BASE")
    expect_fail "$WORKDIR/bk.err" cairn restore-disk "$DOM@~1" vda --to "$BASE" --force
    assert_contains "$WORKDIR/bk.err" "disk vda of the running domain '$BACKED'" "the refusal"
    assert_eq "$(sha256sum "$BASE")" "$before" "the backing file"
}
scenario in-use-backing in_use_backing

finish_checks
