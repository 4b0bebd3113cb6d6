#!/usr/bin/env bash
# bench/image-backup.sh - backup and restore of a disk image with realistic
# content, side by side with restic and qemu-img convert, in one run.
#
#   bench/image-backup.sh [--size-mib N] [--chunk-sizes "256K 1M 4M"] [--runs N] [--out FILE]
#
# The image (qcow2) holds real OS files (a tar of /usr), random data and
# zeros/holes. Every tool reads the same image from the page cache (one warm-up
# read first). Reported: wall seconds (median of --runs, default 3, with the
# range), MB/s of virtual data, peak RSS (/usr/bin/time), repository size.
# Ratios are against qemu-img convert into the page cache, and against
# qemu-img convert + sync (a durable copy, as cairn's objects are durable
# when it returns).
# Needs: tools/setup --bench (restic, time), a release build (tools/build).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
size_mib=1024
chunk_sizes="256K 1M 4M"
runs=3
out=""
while [ $# -gt 0 ]; do
    case $1 in
        --size-mib) size_mib=$2; shift 2 ;;
        --chunk-sizes) chunk_sizes=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--size-mib N] [--chunk-sizes LIST] [--runs N] [--out FILE]" >&2; exit 2 ;;
    esac
done
for t in restic qemu-img /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "bench: missing $t: run tools/setup --bench" >&2; exit 1; }
done
bin=${CAIRN_BIN:-$("$src/tools/build" release)/cairn}
W=$(mktemp -d /var/tmp/cairn-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT

# ---- the image: 55% OS files, 25% random, 20% zeros (holes in qcow2)
os_mib=$((size_mib * 55 / 100)); rnd_mib=$((size_mib * 25 / 100))
echo "bench: building a ${size_mib} MiB image (${os_mib} MiB of /usr files, ${rnd_mib} MiB random, rest zeros)" >&2
raw=$W/src.raw
truncate -s "${size_mib}M" "$raw"
{ tar -cf - /usr 2>/dev/null || true; } | head -c "$((os_mib * 1024 * 1024))" |
    dd of="$raw" conv=notrunc bs=1M iflag=fullblock status=none
head -c "$((rnd_mib * 1024 * 1024))" /dev/urandom |
    dd of="$raw" conv=notrunc bs=1M seek="$os_mib" iflag=fullblock status=none
img=$W/src.qcow2
qemu-img convert -f raw -O qcow2 "$raw" "$img"
rm -f "$raw"
cat "$img" >/dev/null   # warm the page cache for every tool alike

# run LABEL CMD... : appends "label seconds rss_kib" to $W/results
run() {
    local label=$1; shift
    sync   # no dirty data of an earlier step is flushed on this one's time
    /usr/bin/time -f '%e %M' -o "$W/time" "$@" >"$W/out" 2>"$W/err" || {
        echo "bench: '$label' failed:" >&2; cat "$W/err" >&2; exit 1; }
    read -r secs rss <"$W/time"
    echo "$label $secs $rss" >>"$W/results"
    echo "bench: $label: ${secs}s, peak RSS $((rss / 1024)) MiB" >&2
}
du_mib() { du -sm "$1" | cut -f1; }

declare -A repo_mib
printf 'bench-secret-key-0123456789\n' >"$W/key"; chmod 600 "$W/key"
qemu-img convert -f qcow2 -O raw "$img" "$W/src.raw"   # restic reads files: give it the raw disk
export RESTIC_PASSWORD=bench-secret-key-0123456789 RESTIC_CACHE_DIR=$W/restic-cache

: >"$W/results"
for n in $(seq "$runs"); do
    echo "bench: run $n of $runs" >&2
    # an untimed copy first: the timed one reuses its freed pages (the
    # fastest convert this machine does, see docs/benchmarks.md)
    qemu-img convert -f qcow2 -O raw "$img" "$W/copy.raw"; rm -f "$W/copy.raw"
    run "qemu-img convert (copy limit)" qemu-img convert -f qcow2 -O raw "$img" "$W/copy.raw"
    rm -f "$W/copy.raw"; sync
    # cairn's data is durable when it returns: the fair limit includes the flush
    run "qemu-img convert + sync (durable copy limit)" bash -c "qemu-img convert -f qcow2 -O raw '$img' '$W/copy.raw' && sync"
    rm -f "$W/copy.raw"; sync
    # qemu-img's own durable mode: the output is flushed when the copy is done
    run "qemu-img convert -t writeback (durable)" qemu-img convert -t writeback -f qcow2 -O raw "$img" "$W/copy.raw"
    rm -f "$W/copy.raw"; sync
    for cs in $chunk_sizes; do
        rp=$W/repo-$cs
        "$bin" --repo "$rp" init --chunk-size "$cs" >/dev/null
        run "cairn backup, chunk $cs" "$bin" -q --repo "$rp" backup --image "$img" --name bench
        repo_mib[$cs]=$(du_mib "$rp")
        run "cairn backup again (no change), chunk $cs" "$bin" -q --repo "$rp" backup --image "$img" --name bench
        run "cairn restore-disk raw, chunk $cs" "$bin" -q --repo "$rp" restore-disk bench@latest vda --to "$W/restored.raw" --format raw
        qemu-img compare -q -f raw -F qcow2 "$W/restored.raw" "$img" || { echo "bench: restore differs!" >&2; exit 1; }
        rm -f "$W/restored.raw"
        mv "$rp" "$W/old-$n-repo-$cs"   # removed at the end: see set_aside
    done
    # encrypted cairn vs restic (always encrypted) on the same bytes
    [ -d "$W/repo-enc" ] && mv "$W/repo-enc" "$W/old-$n-repo-enc"
    "$bin" --repo "$W/repo-enc" init --encrypt --key-file "$W/key" >/dev/null
    run "cairn backup, encrypted, chunk 1M" "$bin" -q --repo "$W/repo-enc" --key-file "$W/key" backup --image "$img" --name bench
    repo_mib[enc]=$(du_mib "$W/repo-enc")
    for d in restic restic-out restic-cache; do [ -d "$W/$d" ] && mv "$W/$d" "$W/old-$n-$d"; done
    restic init -q -r "$W/restic" >/dev/null
    run "restic backup (raw file)" restic -q -r "$W/restic" backup "$W/src.raw"
    repo_mib[restic]=$(du_mib "$W/restic")
    run "restic backup again (no change)" restic -q -r "$W/restic" backup "$W/src.raw"
    sync
    run "restic restore + sync (durable)" bash -c "restic -q -r '$W/restic' restore latest --target '$W/restic-out' && sync"
    cmp "$W/src.raw" "$W/restic-out$W/src.raw"
done
# set_aside: every repository of a run is kept until all runs are done
# (ext4 skips the inodes of files deleted seconds ago: creating thousands of
# objects right after deleting thousands is slower, for every tool alike)
rm -rf "$W"/old-*

# ---- report: medians over the runs
{
    echo "### Image backup and restore, ${size_mib} MiB virtual ($(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "Command: \`bench/image-backup.sh --size-mib $size_mib --chunk-sizes \"$chunk_sizes\" --runs $runs\`"
    echo
    python3 - "$W/results" "$size_mib" <<'PY'
import statistics, sys
rows, order = {}, []
for line in open(sys.argv[1]):
    label, secs, rss = line.rsplit(" ", 2)
    if label not in rows:
        rows[label] = {"s": [], "rss": []}
        order.append(label)
    rows[label]["s"].append(float(secs)); rows[label]["rss"].append(int(rss))
mib = int(sys.argv[2])
med = {k: statistics.median(v["s"]) for k, v in rows.items()}
lim = med["qemu-img convert (copy limit)"]
dur = med["qemu-img convert + sync (durable copy limit)"]
wb = med["qemu-img convert -t writeback (durable)"]
print("| run | seconds (median) | min–max | MB/s (virtual) | × qemu-img convert | × convert + sync | × convert -t writeback | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for k in order:
    r = rows[k]
    print("| %s | %.2f | %.2f–%.2f | %.0f | %.2f | %.2f | %.2f | %.0f |" % (
        k, med[k], min(r["s"]), max(r["s"]), mib * 1.048576 / med[k] if med[k] else 0,
        med[k] / lim, med[k] / dur, med[k] / wb, max(r["rss"]) / 1024))
PY
    echo
    echo "| repository | size MiB |"
    echo "|---|---:|"
    for k in "${!repo_mib[@]}"; do echo "| $k | ${repo_mib[$k]} |"; done | sort
} | tee "${out:-/dev/null}"
