#!/usr/bin/env bash
# bench/live-backup.sh - live backup of a running domain, side by side with
# Debian's virtnbdbackup and a raw nbdcopy of the backup export, in one run.
#
#   bench/live-backup.sh [--runs N] [--out FILE]
#
# Two identical TCG domains (vda 2 GiB, vdb 1 GiB, qcow2) get identical
# writes: cairn backs up one, virtnbdbackup the other (it refuses checkpoints
# it did not create, so they cannot share a domain). Phases: full with
# 512 MiB of random data written, incremental after 64 MiB more, incremental
# after 64 KiB more. Reported: wall time, cairn's own time (wall minus time
# spent waiting for libvirt's job start/end), bytes read, bytes stored, peak
# RSS. The full phase is run --runs times (default 3; cairn into a fresh
# repository each time, nbdcopy with and without a final sync, as cairn's
# data is durable when it returns) and reported as medians. Needs root,
# libvirtd (started here if not running), tools/setup --bench.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out="" runs=3
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "bench/live-backup.sh: unknown argument '$1' (--runs N, --out FILE)" >&2; exit 2 ;;
    esac
done
for t in virtnbdbackup nbdcopy virsh /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "bench: missing $t: run tools/setup --bench" >&2; exit 1; }
done
bin=${CAIRN_BIN:-$("$src/tools/build" release)/cairn}
export LIBVIRT_DEFAULT_URI=qemu:///system
W=$(mktemp -d /var/tmp/cairn-bench-live.XXXXXX)
IMG=/var/lib/libvirt/images/cairn-bench
DOMS=(cairn-bench-a cairn-bench-b)
cleanup() {
    for d in "${DOMS[@]}"; do
        virsh -q domjobabort "$d" >/dev/null 2>&1 || true
        virsh -q destroy "$d" >/dev/null 2>&1 || true
        virsh -q undefine "$d" --checkpoints-metadata >/dev/null 2>&1 || true
    done
    rm -rf "$W" "$IMG"
}
trap cleanup EXIT

# libvirtd as in shared/recipes (no systemd): start when not running
if ! virsh -q version >/dev/null 2>&1; then
    [ -c /dev/kvm ] && chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
    pgrep -F /run/virtlogd.pid >/dev/null 2>&1 || virtlogd -d
    libvirtd -d
    for _ in $(seq 600); do virsh -q version >/dev/null 2>&1 && break; sleep 0.1; done
fi
rm -rf "$IMG"; mkdir -p "$IMG"
for d in "${DOMS[@]}"; do
    qemu-img create -q -f qcow2 "$IMG/$d-vda.qcow2" 2G
    qemu-img create -q -f qcow2 "$IMG/$d-vdb.qcow2" 1G
    cat >"$W/$d.xml" <<XML
<domain type='qemu'><name>$d</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$IMG/$d-vda.qcow2'/><target dev='vda' bus='virtio'/><alias name='ua-vda'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$IMG/$d-vdb.qcow2'/><target dev='vdb' bus='virtio'/><alias name='ua-vdb'/></disk>
<memballoon model='none'/></devices></domain>
XML
    virsh -q define "$W/$d.xml" >/dev/null
    virsh -q start "$d" >/dev/null
done
head -c 512M /dev/urandom >"$IMG/rand512"; head -c 64M /dev/urandom >"$IMG/rand64"
chmod 0644 "$IMG"/rand*; chown libvirt-qemu: "$IMG"/rand* 2>/dev/null || true
qio() { for d in "${DOMS[@]}"; do
    virsh -q qemu-monitor-command "$d" --hmp "qemu-io -d ua-$1/virtio-backend \"$2\"" >/dev/null; done; }

: >"$W/results"
# row PHASE TOOL SECONDS OWN_SECONDS BYTES_READ BYTES_STORED RSS_KIB
row() { echo "$*" >>"$W/results"; echo "bench: $*" >&2; }
timed() { /usr/bin/time -f '%e %M' -o "$W/time" "$@"; read -r T_WALL T_RSS <"$W/time"; }

cairn_phase() {
    local before after
    before=$(du -sb "$W/repo" | cut -f1)
    timed "$bin" -q --repo "$W/repo" backup cairn-bench-a --quiesce never --json >"$W/c.json"
    after=$(du -sb "$W/repo" | cut -f1)
    python3 - "$W/c.json" "$1" "$T_WALL" "$T_RSS" "$((after - before))" >>"$W/results" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); phase, wall, rss, stored = sys.argv[2:6]
print(phase, "cairn", wall, "%.2f" % (float(wall) - d["libvirt_seconds"]), d["bytes_read"], stored, rss)
PY
    tail -n1 "$W/results" >&2
}
vnb_phase() {
    local before after level=$2
    before=$(du -sb "$W/vnb" 2>/dev/null | cut -f1 || echo 0); before=${before:-0}
    timed virtnbdbackup -d cairn-bench-b -l "$level" -o "$W/vnb" -n >"$W/vnb.log" 2>&1 ||
        { cat "$W/vnb.log" >&2; exit 1; }
    after=$(du -sb "$W/vnb" | cut -f1)
    local rd
    rd=$(grep -ho 'Backed up [0-9]* bytes\|[0-9]* bytes of data extents' "$W/vnb.log" |
         grep -o '[0-9]*' | paste -sd+ | bc 2>/dev/null || echo "?")
    row "$1" virtnbdbackup "$T_WALL" "$T_WALL" "${rd:-?}" "$((after - before))" "$T_RSS"
}
nbdcopy_phase() { # raw copy of a full pull-mode export of domain a (no checkpoint)
    local sock=$W/raw.sock label=$2 sync_cmd=${3:-true}
    cat >"$W/raw.xml" <<XML
<domainbackup mode='pull'><server transport='unix' socket='$sock'/><disks>
<disk name='vda' backup='yes' type='file'><scratch file='$W/scratch-vda.qcow2'/></disk>
<disk name='vdb' backup='yes' type='file'><scratch file='$W/scratch-vdb.qcow2'/></disk>
</disks></domainbackup>
XML
    chmod 0777 "$W"
    virsh -q backup-begin cairn-bench-a "$W/raw.xml" >/dev/null
    sync
    timed bash -c "nbdcopy 'nbd+unix:///vda?socket=$sock' '$W/raw-vda' && nbdcopy 'nbd+unix:///vdb?socket=$sock' '$W/raw-vdb' && $sync_cmd"
    # allocated bytes: what nbdcopy actually read and wrote (it skips holes)
    local rd; rd=$(du -sB1 "$W/raw-vda" "$W/raw-vdb" | awk '{s+=$1} END {printf "%d", s}')
    row "$1" "$label" "$T_WALL" "$T_WALL" "$rd" "$rd" "$T_RSS"
    virsh -q domjobabort cairn-bench-a >/dev/null; rm -f "$W"/raw-vd* "$W"/scratch-*; sync
}

echo "bench: full (512 MiB random in vda)" >&2
qio vda "write -s $IMG/rand512 0 512M"
for n in $(seq "$runs"); do
    echo "bench: full, run $n of $runs" >&2
    nbdcopy_phase full "nbdcopy (raw copy)"
    nbdcopy_phase full "nbdcopy + sync (durable raw copy)" sync
    # a new repository each run; the old ones are removed only after the
    # phase (ext4 skips the inodes of files deleted seconds ago: creating
    # thousands of files right after deleting thousands is slower)
    [ -d "$W/repo" ] && mv "$W/repo" "$W/old-repo-$n"
    "$bin" --repo "$W/repo" init >/dev/null; sync
    cairn_phase full
done
rm -rf "$W"/old-repo-*
vnb_phase full full
echo "bench: incremental after 64 MiB" >&2
qio vda "write -s $IMG/rand64 600M 64M"
cairn_phase inc-64MiB
vnb_phase inc-64MiB inc
echo "bench: incremental after 64 KiB" >&2
qio vdb "write -P 0x5c 300M 64k"
cairn_phase inc-64KiB
vnb_phase inc-64KiB inc

{
    echo "### Live backup of a running domain ($(date -u +%Y-%m-%d), $(nproc) cores, TCG, load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "Command: \`bench/live-backup.sh --runs $runs\`"
    echo
    python3 - "$W/results" <<'PY'
import statistics, sys
rows, order = {}, []
for line in open(sys.argv[1]):
    f = line.split()
    # phase tool... wall own read stored rss (the tool's name may have spaces)
    phase, tool, nums = f[0], " ".join(f[1:-5]), f[-5:]
    key = (phase, tool)
    if key not in rows:
        rows[key] = []
        order.append(key)
    rows[key].append(nums)
def med(key, i):
    return statistics.median(float(n[i]) for n in rows[key])
print("| phase | tool | runs | wall s | own s (excl. libvirt job start/end) | MiB read | MiB stored | peak RSS MiB |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for key in order:
    n = rows[key]
    rd = n[-1][2]
    rd = "%.1f" % (float(rd) / 1048576) if rd.isdigit() else rd
    print("| %s | %s | %d | %.2f | %.2f | %s | %.1f | %.0f |" % (
        key[0], key[1], len(n), med(key, 0), med(key, 1), rd, med(key, 3) / 1048576,
        max(float(x[4]) for x in n) / 1024))
print()
c = med(("full", "cairn"), 1)
cw = med(("full", "cairn"), 0)
v = med(("full", "virtnbdbackup"), 0)
raw = med(("full", "nbdcopy (raw copy)"), 0)
dur = med(("full", "nbdcopy + sync (durable raw copy)"), 0)
print("Full (medians): virtnbdbackup / cairn (wall) = %.2fx; cairn own / raw nbdcopy = %.2fx; "
      "cairn own / nbdcopy + sync = %.2fx" % (v / cw, c / raw, c / dur))
PY
} | tee "${out:-/dev/null}"
