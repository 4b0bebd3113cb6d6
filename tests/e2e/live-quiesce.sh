#!/usr/bin/env bash
# live-quiesce.sh - `cairn backup --quiesce always` of a running guest with
# qemu-ga: the guest's filesystems are frozen for the consistent point and
# thawed afterwards; the snapshot says "application" (in the backup's
# --json and in `cairn show --json`); data a guest program wrote without
# syncing is in the snapshot (the freeze flushed it) and the restored
# filesystem is clean (e2fsck -fn).
#
# The guest: Debian's kernel booted directly under TCG with a busybox
# initramfs that mounts an ext4 disk on /mnt and runs Debian's qemu-ga
# (as the `ga` part of /work/shared/recipes/libvirt-qemu.sh). The .debs,
# kernel and initramfs are cached in /var/cache/cairn-tests/ga.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/libvirt.sh"
need apt-get apt-cache dpkg-deb mkfs.ext4 e2fsck debugfs gzip ldd

GA_CACHE=/var/cache/cairn-tests/ga
# bump when the initramfs below changes: the cached one is then rebuilt
GA_INITRD=$GA_CACHE/initrd-v2.gz
DOM=cairn-e2e-$TEST_NAME
BOOT_TIMEOUT=60

# ---- the guest kit (kernel + initramfs with busybox and qemu-ga), cached

build_guest_kit() {
    mkdir -p "$GA_CACHE/debs"
    local lockfd
    exec {lockfd}<"$GA_CACHE"
    flock -w 600 "$lockfd" || fail "cannot lock $GA_CACHE"
    if [ -s "$GA_CACHE/vmlinuz" ] && [ -s "$GA_INITRD" ]; then
        info "guest kit: cached in $GA_CACHE"
        exec {lockfd}<&-
        return 0
    fi
    local k b
    k=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
    if [ -z "$k" ]; then
        apt-get -o DPkg::Lock::Timeout=300 update -qq || fail "apt-get update failed"
        k=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
    fi
    [ -n "$k" ] || fail "cannot tell Debian's kernel package (apt-cache depends linux-image-amd64)"
    info "guest kit: building from $k, busybox-static and qemu-guest-agent (.debs in $GA_CACHE/debs)"
    local p missing=()
    for p in "$k" busybox-static qemu-guest-agent; do
        ls "$GA_CACHE/debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        # apt downloads as _apt when it may write there (else a warning)
        chown _apt "$GA_CACHE/debs" 2>/dev/null || true
        (cd "$GA_CACHE/debs" && apt-get download -qq "${missing[@]}") ||
            fail "apt-get download ${missing[*]} failed (network? apt sources?)"
    fi
    b=$(mktemp -d "$GA_CACHE/build.XXXXXX")
    mkdir -p "$b/root"
    local debs
    for p in "$k" busybox-static qemu-guest-agent; do
        debs=("$GA_CACHE/debs/${p}_"*.deb)
        dpkg-deb -x "${debs[0]}" "$b/root"
    done
    local i=10 m f r=$b/initrd
    mkdir -p "$r"/{bin,proc,sys,dev,mnt,tmp,var/run,mods,lib64,lib/x86_64-linux-gnu,usr/sbin}
    cp "$b/root/bin/busybox" "$r/bin/"
    cp "$b/root/usr/sbin/qemu-ga" "$r/usr/sbin/"
    for f in $(ldd "$b/root/usr/sbin/qemu-ga" | awk '/=>/ { print $3 }'); do
        cp -L "$f" "$r/lib/x86_64-linux-gnu/"
    done
    cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
    # dependency order: virtio drivers and ext4 are modules in Debian's kernel
    for m in virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_pci \
        virtio_console virtio_blk crc32c_generic jbd2 mbcache crc16 ext4; do
        f=$(find "$b/root/lib/modules" -name "$m.ko" -print -quit)
        [ -n "$f" ] || fail "module $m not found in $k"
        cp "$f" "$r/mods/$i-$m.ko"
        i=$((i + 1))
    done
    cat >"$r/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in /mods/*.ko; do insmod "$m" || echo "insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 /dev/vda /mnt && echo "mounted /dev/vda on /mnt"
for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/${p##*/}
done
echo "guest agent port: $port"
while true; do qemu-ga -m virtio-serial -p "$port" -t /var/run; sleep 1; done
EOF
    chmod +x "$r/init"
    (cd "$r" && find . | "$b/root/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1 >"$b/initrd.gz")
    cp "$b"/root/boot/vmlinuz-* "$b/vmlinuz"
    mv "$b/vmlinuz" "$GA_CACHE/vmlinuz"
    mv "$b/initrd.gz" "$GA_INITRD"
    rm -rf "$b" # ~420 MB of extracted modules
    exec {lockfd}<&-
    info "guest kit: $(du -sh "$GA_CACHE" | cut -f1) in $GA_CACHE"
}

# ---- the guest agent

agent() { virsh qemu-agent-command "$DOM" "$1" --timeout 10; }

# guest_sh 'shell command': run it in the guest (guest-exec), print its
# output; returns its exit code
guest_sh() {
    local req pid
    req=$("$PYTHON" -c 'import json, sys
print(json.dumps({"execute": "guest-exec", "arguments": {"path": "/bin/sh",
      "arg": ["-c", sys.argv[1]], "capture-output": True}}))' "$1")
    pid=$(agent "$req" | json_get - return.pid) || fail "guest-exec '$1' failed"
    wait_for "agent '{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}' \
        >'$WORKDIR/exec.json' && grep -q '\"exited\": *true' '$WORKDIR/exec.json'" 60 ||
        fail "'$1' did not end in the guest within 60 s"
    "$PYTHON" -c 'import base64, json, sys
r = json.load(open(sys.argv[1]))["return"]
sys.stdout.write(base64.b64decode(r.get("out-data", "")).decode())
sys.stderr.write(base64.b64decode(r.get("err-data", "")).decode())
sys.exit(r.get("exitcode", 1))' "$WORKDIR/exec.json"
}

fsfreeze_status() {
    agent '{"execute":"guest-fsfreeze-status"}' | json_get - return
}

# ---- the guest

build_guest_kit

check "the tiny guest boots and its qemu-ga answers within $BOOT_TIMEOUT s"
_remove_domain "$DOM"
cleanup_fn _remove_domain "$DOM"
IMG=$(dom_images "$DOM")
mkdir -p "$IMG"
# private copies: libvirt relabels kernel and initrd while the domain runs
cp "$GA_CACHE/vmlinuz" "$IMG/vmlinuz"
cp "$GA_INITRD" "$IMG/initrd.gz"
truncate -s 128M "$WORKDIR/fs.raw"
mkfs.ext4 -q -F "$WORKDIR/fs.raw"
qemu-img convert -q -f raw -O qcow2 "$WORKDIR/fs.raw" "$IMG/vda.qcow2"
rm -f "$WORKDIR/fs.raw"
CONSOLE=/var/log/libvirt/qemu/$DOM-console.log
cat >"$WORKDIR/guest.xml" <<EOF
<domain type='qemu'>
  <name>$DOM</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$IMG/vmlinuz</kernel><initrd>$IMG/initrd.gz</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/><source file='$IMG/vda.qcow2'/>
      <target dev='vda' bus='virtio'/><alias name='ua-vda'/>
    </disk>
    <controller type='virtio-serial' index='0'/>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <serial type='file'><source path='$CONSOLE'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
virsh -q define "$WORKDIR/guest.xml" >/dev/null || fail "virsh define $DOM failed"
track_uuid "$DOM"
t_boot=$(date +%s%N)
start_domain "$DOM"
# polled every 0.25 s, not every 20 ms: virsh calls would slow the TCG boot
guest_ping() { agent '{"execute":"guest-ping"}' >/dev/null 2>&1 || { sleep 0.25; false; }; }
if ! wait_for guest_ping "$BOOT_TIMEOUT"; then
    echo "--- last lines of the guest console ($CONSOLE):" >&2
    tail -n 30 "$CONSOLE" 2>/dev/null | sed 's/^/    /' >&2 || true
    fail "the tiny guest did not boot to a working qemu-ga within $BOOT_TIMEOUT s" \
        "(kernel $GA_CACHE/vmlinuz, TCG): cannot test --quiesce"
fi
info "guest agent answers $((($(date +%s%N) - t_boot) / 1000000)) ms after virsh start"

check "the guest has its ext4 disk mounted on /mnt (there is something to freeze)"
guest_sh "grep ' /mnt ' /proc/mounts" >"$WORKDIR/mounts" || {
    tail -n 30 "$CONSOLE" | sed 's/^/    /' >&2
    fail "/dev/vda is not mounted on /mnt in the guest"
}
assert_contains "$WORKDIR/mounts" "/dev/vda /mnt ext4" "the guest's /proc/mounts"
assert_eq "$(fsfreeze_status)" thawed "guest-fsfreeze-status before the backup"

# data a guest program wrote and did not sync: only a freeze flushes it
# to the disk before the consistent point
guest_sh 'dd if=/dev/urandom of=/mnt/data bs=64k count=64 2>/dev/null && md5sum /mnt/data' \
    >"$WORKDIR/md5" || fail "writing /mnt/data in the guest failed"
GUEST_MD5=$(cut -d' ' -f1 "$WORKDIR/md5")
info "guest wrote /mnt/data (4 MiB, not synced), md5 $GUEST_MD5"

cairn init >/dev/null

check "backup --quiesce always: exit 0, consistency application in --json"
backup_dom "$WORKDIR/b1" "$DOM" --quiesce always
assert_eq "$(json_get "$WORKDIR/b1.json" consistency)" application "consistency (backup --json)"
assert_eq "$(json_get "$WORKDIR/b1.json" offline)" false "offline (backup --json)"
SNAP1=$(json_get "$WORKDIR/b1.json" id)

check "cairn show --json of that snapshot: consistency application"
cairn show "$SNAP1" --json >"$WORKDIR/show.json"
assert_eq "$(json_get "$WORKDIR/show.json" consistency)" application "consistency (cairn show --json)"

check "after the backup the guest's filesystems are thawed (guest-fsfreeze-status)"
assert_eq "$(fsfreeze_status)" thawed "guest-fsfreeze-status after the backup"
guest_sh 'echo still-writable >/mnt/after && cat /mnt/after' >"$WORKDIR/after" ||
    fail "the guest cannot write to /mnt after the backup"
assert_contains "$WORKDIR/after" still-writable "a write in the guest after the backup"

check "the snapshot holds the unsynced file, and its filesystem is clean (e2fsck -fn)"
cairn restore-disk "$SNAP1" vda --to "$WORKDIR/vda.raw" --format raw >/dev/null ||
    fail "restore-disk $SNAP1 vda failed"
e2fsck -fn "$WORKDIR/vda.raw" >"$WORKDIR/fsck.out" 2>&1 || {
    sed 's/^/    /' "$WORKDIR/fsck.out" >&2
    fail "the restored filesystem of an application-consistent snapshot is not clean"
}
debugfs -R 'cat /data' "$WORKDIR/vda.raw" 2>/dev/null >"$WORKDIR/data" ||
    fail "debugfs cannot read /data from the restored disk"
assert_eq "$(md5sum <"$WORKDIR/data" | cut -d' ' -f1)" "$GUEST_MD5" \
    "md5 of /data in the restored snapshot vs in the guest"
rm -f "$WORKDIR/vda.raw" "$WORKDIR/data"

check "a second backup (--quiesce auto, incremental) is application-consistent too, guest thawed"
backup_dom "$WORKDIR/b2" "$DOM"
assert_eq "$(json_get "$WORKDIR/b2.json" mode)" incremental "mode of the second backup"
assert_eq "$(json_get "$WORKDIR/b2.json" consistency)" application "consistency with --quiesce auto"
assert_eq "$(fsfreeze_status)" thawed "guest-fsfreeze-status after the second backup"
assert_after_live_backup "$DOM"
finish_checks
exit 0
