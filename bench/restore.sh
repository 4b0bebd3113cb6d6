#!/usr/bin/env bash
# bench/restore.sh - restore of a two-disk domain holding 512 MiB of data,
# side by side with Debian's virtnbdrestore (virtnbdbackup 1.9.15) and
# `qemu-img convert` of the original images (the copy limit), in one run;
# and cairn's instant recovery (`restore --instant`): time until the domain
# runs, and until its disks are local.
#
#   bench/restore.sh [--runs N] [--out FILE]
#
# A TCG domain (vda 1 GiB, vdb 512 MiB, qcow2) gets 512 MiB of random data
# (vda: 320 MiB at 0 and 64 MiB at 700 MiB; vdb: 128 MiB at 100 MiB), is
# backed up once by virtnbdbackup (full) and once by cairn (full), then shut
# off. Each tool then writes both disks as qcow2 files into an empty
# directory of the same file system, N times (default 3) in turn; the
# median wall time, the median CPU time (user+sys, steadier than wall time
# on a loaded machine), the slowest peak RSS and the time of a `sync` right
# after (what the tool left unwritten) are reported, and every restored
# disk is compared with the original (qemu-img compare). qemu-img converts
# both disks at once, as cairn and virtnbdrestore restore both. Instant
# recovery is timed from launch to cairn's "running" line, beside a plain
# `virsh start` of the original domain.
# Needs root, libvirtd (started here if not running), tools/setup --bench.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
runs=3 out=""
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "bench/restore.sh: unknown argument '$1' (--runs N, --out FILE)" >&2; exit 2 ;;
    esac
done
for t in virtnbdbackup virtnbdrestore nbdkit virsh qemu-img /usr/bin/time python3; do
    command -v "$t" >/dev/null || { echo "bench: missing $t: run tools/setup --bench" >&2; exit 1; }
done
bin=${CAIRN_BIN:-$("$src/tools/build" release)/cairn}
export LIBVIRT_DEFAULT_URI=qemu:///system
DOM=ct-rst-bench
INST=$DOM-instant
IMG=/var/lib/libvirt/images/$DOM
W=""
remove_domain() {
    virsh -q domjobabort "$1" >/dev/null 2>&1 || true
    virsh -q destroy "$1" >/dev/null 2>&1 || true
    virsh -q undefine "$1" --checkpoints-metadata >/dev/null 2>&1 || true
}
# the nbdkit servers an instant restore left (pid files checked to be nbdkit)
stop_instant_servers() {
    local f pid
    for f in /run/cairn/instant/"$INST"/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nbdkit ] && kill "$pid" 2>/dev/null || true
    done
    rm -rf /run/cairn/instant/"$INST"
}
cleanup() {
    remove_domain "$INST"
    stop_instant_servers
    remove_domain "$DOM"
    rm -rf ${W:+"$W"} "$IMG" "/var/lib/libvirt/images/$INST"
}
trap cleanup EXIT
cleanup
W=$(mktemp -d /var/tmp/cairn-bench-restore.XXXXXX)

# libvirtd as in shared/recipes (no systemd): start when not running
if ! virsh -q version >/dev/null 2>&1; then
    [ -c /dev/kvm ] && chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
    pgrep -F /run/virtlogd.pid >/dev/null 2>&1 || virtlogd -d
    libvirtd -d
    for _ in $(seq 600); do virsh -q version >/dev/null 2>&1 && break; sleep 0.1; done
fi

echo "bench: domain $DOM: vda 1 GiB, vdb 512 MiB, 512 MiB of random data" >&2
mkdir -p "$IMG"
qemu-img create -q -f qcow2 "$IMG/vda.qcow2" 1G
qemu-img create -q -f qcow2 "$IMG/vdb.qcow2" 512M
cat >"$W/$DOM.xml" <<XML
<domain type='qemu'><name>$DOM</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$IMG/vda.qcow2'/><target dev='vda' bus='virtio'/><alias name='ua-vda'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$IMG/vdb.qcow2'/><target dev='vdb' bus='virtio'/><alias name='ua-vdb'/></disk>
<interface type='user'><model type='virtio'/></interface>
<memballoon model='none'/></devices></domain>
XML
virsh -q define "$W/$DOM.xml" >/dev/null
virsh -q start "$DOM" >/dev/null
qio() {
    local f=$IMG/data.bin
    head -c "$4" /dev/urandom >"$f"
    chmod 0644 "$f"
    virsh -q qemu-monitor-command "$DOM" --hmp "qemu-io -d ua-$1/virtio-backend \"write -s $f $2 $3\"" >/dev/null
    rm -f "$f"
}
qio vda 0 320M 320M
qio vda 700M 64M 64M
qio vdb 100M 128M 128M

echo "bench: backups: virtnbdbackup (full), then cairn (full)" >&2
# virtnbdbackup refuses checkpoints it did not create: it goes first, and
# its checkpoint is deleted before cairn's backup (its backup set stays)
virtnbdbackup -d "$DOM" -l full -o "$W/vnb" -n >"$W/vnb.log" 2>&1 || { cat "$W/vnb.log" >&2; exit 1; }
for c in $(virsh checkpoint-list "$DOM" --name --topological | tac); do
    virsh -q checkpoint-delete "$DOM" "$c" >/dev/null
done
"$bin" -q --repo "$W/repo" init >/dev/null
"$bin" -q --repo "$W/repo" backup "$DOM" --quiesce never --json >"$W/backup.json"
SNAP=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$W/backup.json")
# shut off: the originals are flushed and closed for qemu-img
virsh -q destroy "$DOM" >/dev/null
du -sh "$W/vnb" "$W/repo" | sed 's/^/bench: backup set /' >&2

: >"$W/results"
OUT=$W/out
# timed NAME CMD...: one run into an empty $OUT; appends "NAME wall rss sync ok"
timed() {
    local name=$1 ok=yes d f
    shift
    rm -rf "$OUT"
    mkdir -p "$OUT"
    sync
    /usr/bin/time -f '%e %M %U %S' -o "$W/time" "$@" >"$W/cmd.out" 2>"$W/cmd.err" ||
        { cat "$W/cmd.err" >&2; echo "bench: $name failed" >&2; exit 1; }
    local t0 t1
    t0=$(date +%s.%N)
    sync
    t1=$(date +%s.%N)
    for d in vda vdb; do
        f=$(find "$OUT" -name "*$d*" -type f | head -n1)
        if [ -z "$f" ] || ! qemu-img compare -q -f qcow2 "$IMG/$d.qcow2" "$f" >/dev/null 2>&1; then
            ok=no
            echo "bench: $name: $d differs from the original (${f:-missing})" >&2
        fi
    done
    read -r wall rss user sys <"$W/time"
    echo "$name $wall $rss $(awk -v a="$t0" -v b="$t1" -v u="$user" -v s="$sys" \
        'BEGIN { printf "%.2f %.2f", b - a, u + s }') $ok" |
        tee -a "$W/results" | sed 's/^/bench: /' >&2
}
# both disks at once (cairn and virtnbdrestore restore both); $3 is the
# output cache mode: qemu-img's default "unsafe" never flushes (the copy
# stays in the page cache), "writeback" flushes when the copy is done:
# qemu-img's own durable copy, like for like with cairn, which fsyncs
CONVERT_BOTH='qemu-img convert -t "$3" -O qcow2 "$1/vda.qcow2" "$2/vda.qcow2" & a=$!
qemu-img convert -t "$3" -O qcow2 "$1/vdb.qcow2" "$2/vdb.qcow2" & b=$!
wait $a && wait $b'
# instant: launch to the 'running after' line (stderr with --json), then to
# the end of the copy; the domain is removed afterwards
instant() {
    local t0 pid
    rm -f "$W/inst.err"
    sync
    t0=$(date +%s%N)
    /usr/bin/time -f '%e %M' -o "$W/itime" "$bin" --repo "$W/repo" restore "$SNAP" --instant \
        --name "$INST" --json >"$W/inst.json" 2>"$W/inst.err" &
    pid=$!
    until grep -q 'running after' "$W/inst.err" 2>/dev/null || ! kill -0 "$pid" 2>/dev/null; do
        sleep 0.005
    done
    local t_run=$(( $(date +%s%N) - t0 ))
    local state
    state=$(virsh domstate "$INST" 2>/dev/null | head -n1 || true)
    wait "$pid" || { cat "$W/inst.err" >&2; echo "bench: instant restore failed" >&2; exit 1; }
    read -r wall rss <"$W/itime"
    python3 - "$W/inst.json" "$t_run" "$wall" "$rss" "$state" >>"$W/instant" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("%.2f %.2f %.2f %s %s %s" % (int(sys.argv[2]) / 1e9, j["running_seconds"], j["pull_seconds"],
                                   sys.argv[3], sys.argv[4], sys.argv[5]))
PY
    tail -n1 "$W/instant" | sed 's/^/bench: instant (to running, cairn says, pull, wall, rss, state): /' >&2
    virsh -q destroy "$INST" >/dev/null
    for d in vda vdb; do
        qemu-img compare -q -f qcow2 -F qcow2 "$IMG/$d.qcow2" "/var/lib/libvirt/images/$INST/$INST-$d.qcow2" ||
            echo "bench: instant: $d differs from the original" >&2
    done
    remove_domain "$INST"
    rm -rf "/var/lib/libvirt/images/$INST"
}

# the reference for instant recovery: a plain start of the original domain
vstart() {
    local t0 t1
    t0=$(date +%s%N)
    virsh -q start "$DOM" >/dev/null
    t1=$(date +%s%N)
    virsh -q destroy "$DOM" >/dev/null
    echo "$(( (t1 - t0) / 1000000 ))" >>"$W/vstart"
}

: >"$W/instant"
: >"$W/vstart"
for r in $(seq "$runs"); do
    echo "bench: run $r of $runs" >&2
    timed "qemu-img-convert" bash -c "$CONVERT_BOTH" convert "$IMG" "$OUT" unsafe
    timed "qemu-img-convert-wb" bash -c "$CONVERT_BOTH" convert "$IMG" "$OUT" writeback
    timed "virtnbdrestore" virtnbdrestore -i "$W/vnb" -o "$OUT" -n -L "$W/vnbr.log"
    timed "cairn-restore" "$bin" -q --repo "$W/repo" restore "$SNAP" --name "$DOM-r" --dir "$OUT"
    timed "cairn-restore-raw" "$bin" -q --repo "$W/repo" restore "$SNAP" --name "$DOM-r" \
        --dir "$OUT" --format raw
    instant
    vstart
done
rm -rf "$OUT"

{
    echo "### Restore of a two-disk domain, 512 MiB of data ($(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "Command: \`bench/restore.sh --runs $runs\`"
    echo
    python3 - "$W/results" "$W/instant" "$W/vstart" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, wall, rss, sync, cpu, ok = line.split()
    r = rows.setdefault(name, {"wall": [], "rss": [], "sync": [], "cpu": [], "ok": True})
    r["wall"].append(float(wall)); r["rss"].append(int(rss)); r["sync"].append(float(sync))
    r["cpu"].append(float(cpu))
    r["ok"] = r["ok"] and ok == "yes"
labels = {"qemu-img-convert": "qemu-img convert (copy limit)",
          "qemu-img-convert-wb": "qemu-img convert -t writeback (durable copy limit)",
          "virtnbdrestore": "virtnbdrestore",
          "cairn-restore": "cairn restore (qcow2)", "cairn-restore-raw": "cairn restore --format raw"}
med = {k: statistics.median(v["wall"]) for k, v in rows.items()}
# durable: the tool's wall time plus the sync right after it (what it left unwritten)
dur = {k: statistics.median([w + s for w, s in zip(v["wall"], v["sync"])]) for k, v in rows.items()}
wb = med.get("qemu-img-convert-wb", float("nan"))
print("| tool | wall s (median) | min–max s | sync after s | durable s (wall + sync) | CPU s (user+sys) | peak RSS MiB | × qemu-img convert | × convert -t writeback | × convert, durable | virtnbdrestore ÷ tool | disks identical |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for k in ("qemu-img-convert", "qemu-img-convert-wb", "virtnbdrestore", "cairn-restore", "cairn-restore-raw"):
    if k not in rows:
        continue
    r = rows[k]
    print("| %s | %.2f | %.2f–%.2f | %.2f | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f | %.2f | %s |" % (
        labels[k], med[k], min(r["wall"]), max(r["wall"]), statistics.median(r["sync"]), dur[k],
        statistics.median(r["cpu"]), max(r["rss"]) / 1024, med[k] / med["qemu-img-convert"],
        med[k] / wb, dur[k] / dur["qemu-img-convert"], med["virtnbdrestore"] / med[k],
        "yes" if r["ok"] else "NO"))
inst = [l.split() for l in open(sys.argv[2]) if l.strip()]
if inst:
    print()
    print("| instant recovery (cairn restore --instant) | median | min–max |")
    print("|---|---:|---:|")
    for i, what in ((0, "launch → 'running' line, s"), (1, "running_seconds (cairn's own), s"),
                    (2, "copy of the disks while running, s"), (3, "whole command, s")):
        v = [float(x[i]) for x in inst]
        print("| %s | %.2f | %.2f–%.2f |" % (what, statistics.median(v), min(v), max(v)))
    v = [int(l) / 1000 for l in open(sys.argv[3]) if l.strip()]
    print("| for reference: `virsh start` of the original domain, s | %.2f | %.2f–%.2f |" % (
        statistics.median(v), min(v), max(v)))
    print("| peak RSS, MiB | %.0f | |" % (max(int(x[4]) for x in inst) / 1024))
    print("| domain state at the 'running' line | %s | |" % ", ".join(sorted(set(x[5] for x in inst))))
PY
} | tee "${out:-/dev/null}"
