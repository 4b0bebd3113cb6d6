#!/usr/bin/env bash
# restore-s3.sh - the restores of restore-live.sh, from an S3 remote (a
# throw-away Ceph radosgw) into an empty local repository: a running
# two-disk domain with a NIC is backed up live three times (full + two
# incrementals, references kept) into a "source host" repository, which is
# pushed to a bucket; then, with `--from REMOTE`:
#   cached (the local repository does not exist at first): the lost domain
#     (destroyed, undefined, disks deleted) restored at ~1 with --define
#     --start runs with the disks of that backup; a restore under a new name
#     runs beside it (other UUID, MACs, files) with the latest disks;
#     restore-disk ~2 vdb --attach hot-plugs vdb of the full backup. The
#     local repository then holds exactly the three snapshots, verified, and
#     a repeated restore pulls nothing.
#   --no-cache (another local repository that must stay absent): the same
#     three restores at other points, read straight from the bucket; and an
#     instant restore (--instant), running within seconds from NBD exports
#     of the bucket, then on local disks equal to the snapshot.
# The bucket is unchanged by the restores (no lock or object left).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/libvirt.sh"
. "$(dirname "$0")/s3.sh"

DOM=ct-rst-s3
NEW=$DOM-new
NEW2=$DOM-nocache
INST=$DOM-instant
for n in "$NEW" "$NEW2" "$INST"; do
    stop_instant_servers "$n"
    _remove_domain "$n"
    cleanup_fn _remove_domain "$n"
    cleanup_fn stop_instant_servers "$n"
done
DOMAIN_EXTRA_DEVICES="<interface type='user'><model type='virtio'/></interface>"
DOMAIN_FEATURES="<acpi/>"

start_ceph
make_bucket ct-rst
add_remote offsite ct-rst/kvm

define_domain "$DOM" 2 128M
SRC=$WORKDIR/source-repo
REPO=$SRC
cairn init >/dev/null
backup_three_points "$DOM"
expect_ok "$WORKDIR/push.json" cairn push offsite --json
assert_eq "$(json_get "$WORKDIR/push.json" snapshots_sent)" 3 "snapshots pushed"
BUCKET_OBJECTS=$(s3_count ct-rst kvm/objects/)
BUCKET_STATE=$(s3_ls ct-rst kvm/ | sha256sum)
info "bucket: $BUCKET_OBJECTS objects"

# ---- --from offsite, into an empty local repository

LOCAL=$WORKDIR/local-repo
REPO=$LOCAL
[ ! -e "$LOCAL" ] || fail "control: $LOCAL exists"

check "the domain is lost; restore $DOM@~1 --from offsite --define --start into an empty repository"
lose_domain "$DOM"
expect_ok "$WORKDIR/r1.json" cairn restore "$DOM@~1" --from offsite --define --start --json
info "cairn restore: $(json_get "$WORKDIR/r1.json" duration_seconds) s"
track_uuid "$DOM"
assert_eq "$(json_get "$WORKDIR/r1.json" snapshot)" "$(json_get "$WORKDIR/b2.json" id)" \
    "the snapshot restored for $DOM@~1"
wait_for "dom_running $DOM" 30 || fail "$DOM does not run after the restore"
assert_disks_at "$DOM" "$DOM" b2
guest_read "$DOM" ua-vda 0x12 60M 2M || fail "QEMU does not read 0x12 at vda 60M in $DOM"
assert_eq "$(count_snapshots "$LOCAL")" 1 "snapshots pulled into the local repository"
# only what ~1 references: fewer objects than the bucket holds
assert_lt "$(count_objects "$LOCAL")" "$BUCKET_OBJECTS" "objects pulled for one snapshot"

check "restore $DOM@latest --from offsite --name $NEW --define --start beside the running $DOM"
expect_ok "$WORKDIR/r2.json" cairn restore "$DOM@latest" --from offsite --name "$NEW" --define \
    --start --json
info "cairn restore: $(json_get "$WORKDIR/r2.json" duration_seconds) s"
track_uuid "$NEW"
wait_for "dom_running $NEW" 30 || fail "$NEW does not run"
assert_apart "$DOM" "$NEW"
assert_disks_at "$NEW" "$DOM" b3

check "restore-disk $DOM@~2 vdb --from offsite --attach $DOM: hot-plugged, vdb of the full backup"
expect_ok "$WORKDIR/rd.json" cairn restore-disk "$DOM@~2" vdb --from offsite --attach "$DOM" --json
info "cairn restore-disk: $(json_get "$WORKDIR/rd.json" duration_seconds) s"
ATT=$(json_get "$WORKDIR/rd.json" file)
cleanup_fn rm -f "$ATT"
assert_eq "$(json_get "$WORKDIR/rd.json" target)" vdc "the target"
assert_eq "$(blk_source "$DOM" vdc)" "$ATT" "vdc in virsh domblklist $DOM"
assert_image_eq "$ATT" "$(ref_at "$DOM" vdb b1)" "vdc of $DOM"

check "the local repository holds the three snapshots, verified; a repeat pulls nothing"
assert_eq "$(count_snapshots "$LOCAL")" 3 "snapshots in the local repository"
assert_eq "$(count_objects "$LOCAL")" "$BUCKET_OBJECTS" "objects in the local repository"
expect_ok "$WORKDIR/verify.out" cairn verify --read-data
BEFORE=$(repo_state "$LOCAL")
expect_ok "$WORKDIR/rd2.json" cairn restore-disk "$DOM@~2" vdb --from offsite \
    --to "$WORKDIR/again.raw" --format raw --json
info "cairn restore-disk: $(json_get "$WORKDIR/rd2.json" duration_seconds) s"
cmp "$(ref_at "$DOM" vdb b1)" "$WORKDIR/again.raw" || fail "the repeated restore-disk differs"
rm -f "$WORKDIR/again.raw"
assert_eq "$(repo_state "$LOCAL")" "$BEFORE" "the local repository after a repeated restore"

# ---- --no-cache: straight from the bucket, no local copy

NOCACHE=$WORKDIR/nocache-repo
REPO=$NOCACHE

check "the domain is lost again; restore $DOM@~2 --from offsite --no-cache --define --start"
lose_domain "$DOM"
rm -f "$ATT"
expect_ok "$WORKDIR/n1.json" cairn restore "$DOM@~2" --from offsite --no-cache --define --start \
    --json
info "cairn restore: $(json_get "$WORKDIR/n1.json" duration_seconds) s"
track_uuid "$DOM"
assert_eq "$(json_get "$WORKDIR/n1.json" snapshot)" "$(json_get "$WORKDIR/b1.json" id)" \
    "the snapshot restored for $DOM@~2"
wait_for "dom_running $DOM" 30 || fail "$DOM does not run after the restore"
assert_disks_at "$DOM" "$DOM" b1

check "restore $DOM@~1 --from offsite --no-cache --name $NEW2 --define --start beside $DOM"
expect_ok "$WORKDIR/n2.json" cairn restore "$DOM@~1" --from offsite --no-cache --name "$NEW2" \
    --define --start --json
info "cairn restore: $(json_get "$WORKDIR/n2.json" duration_seconds) s"
track_uuid "$NEW2"
wait_for "dom_running $NEW2" 30 || fail "$NEW2 does not run"
assert_apart "$DOM" "$NEW2"
assert_apart "$NEW" "$NEW2"
assert_disks_at "$NEW2" "$DOM" b2

check "restore-disk $DOM@latest vda --from offsite --no-cache --attach $DOM"
expect_ok "$WORKDIR/nd.json" cairn restore-disk "$DOM@latest" vda --from offsite --no-cache \
    --attach "$DOM" --json
info "cairn restore-disk: $(json_get "$WORKDIR/nd.json" duration_seconds) s"
ATT2=$(json_get "$WORKDIR/nd.json" file)
cleanup_fn rm -f "$ATT2"
assert_eq "$(blk_source "$DOM" vdc)" "$ATT2" "vdc in virsh domblklist $DOM"
assert_image_eq "$ATT2" "$(ref_at "$DOM" vda b3)" "vdc of $DOM"
guest_read "$DOM" "$(virsh dumpxml "$DOM" | "$PYTHON" -c '
import sys, xml.etree.ElementTree as ET
for d in ET.parse(sys.stdin).getroot().iter("disk"):
    if d.find("target").get("dev") == "vdc":
        print(d.find("alias").get("name"))')" 0x13 0 1M || fail "QEMU does not read 0x13 at 0 of vdc"

check "--no-cache kept no local copy; the bucket is as it was"
[ ! -e "$NOCACHE" ] || fail "--no-cache created $NOCACHE: $(find "$NOCACHE" | head -5 | tr '\n' ' ')"
assert_eq "$(s3_ls ct-rst kvm/ | sha256sum)" "$BUCKET_STATE" "the bucket's keys and sizes"

# ---- --instant straight from the bucket

check "restore $DOM@~1 --from offsite --instant --name $INST: runs at once, then local disks"
expect_ok "$WORKDIR/in.json" cairn restore "$DOM@~1" --from offsite --instant --name "$INST" --json
track_uuid "$INST"
run_s=$(json_get "$WORKDIR/in.json" running_seconds)
info "$INST running after $run_s s, disks copied in $(json_get "$WORKDIR/in.json" pull_seconds) s"
assert_eq "$(json_get "$WORKDIR/in.json" pulled)" true "pulled"
assert_lt "$(printf '%.0f' "$run_s")" 10 "seconds until $INST runs"
dom_running "$INST" || fail "$INST does not run"
virsh dumpxml "$INST" >"$WORKDIR/inst.xml"
assert_not_contains "$WORKDIR/inst.xml" "protocol='nbd'" "the live XML of $INST after the copy"
[ ! -e "$INSTANT_RUN/$INST" ] || fail "run directory left: $(ls "$INSTANT_RUN/$INST")"
assert_apart "$INST" "$NEW2"
# QEMU keeps the copied clusters' qcow2 metadata in its cache until a flush:
# the files are compared once it has closed them
blk_sources "$INST" >"$WORKDIR/inst.blk"
stop_domain "$INST"
for d in vda vdb; do
    assert_image_eq "$(awk -v t=$d '$1 == t { print $2 }' "$WORKDIR/inst.blk")" \
        "$(ref_at "$DOM" $d b2)" "$d of $INST"
done
[ ! -e "$NOCACHE" ] || fail "--instant created $NOCACHE"
assert_eq "$(s3_ls ct-rst kvm/ | sha256sum)" "$BUCKET_STATE" "the bucket's keys and sizes"

finish_s3
finish_checks
