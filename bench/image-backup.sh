#!/usr/bin/env bash
# bench/image-backup.sh - backup and restore of a disk image with realistic
# content, side by side with restic and qemu-img convert, in one run.
#
#   bench/image-backup.sh [--size-mib N] [--chunk-sizes "256K 1M 4M"] [--out FILE]
#
# The image (qcow2) holds real OS files (a tar of /usr), random data and
# zeros/holes. Every tool reads the same image from the page cache (one warm-up
# read first). Reported: wall seconds, MB/s of virtual data, peak RSS
# (/usr/bin/time), repository size. Ratios are against qemu-img convert.
# Needs: tools/setup --bench (restic, time), a release build (tools/build).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
size_mib=1024
chunk_sizes="256K 1M 4M"
out=""
while [ $# -gt 0 ]; do
    case $1 in
        --size-mib) size_mib=$2; shift 2 ;;
        --chunk-sizes) chunk_sizes=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--size-mib N] [--chunk-sizes LIST] [--out FILE]" >&2; exit 2 ;;
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

: >"$W/results"
run "qemu-img convert (copy limit)" qemu-img convert -f qcow2 -O raw "$img" "$W/copy.raw"
rm -f "$W/copy.raw"; sync
# cairn's data is durable when it returns: the fair limit includes the flush
run "qemu-img convert + sync (durable copy limit)" bash -c "qemu-img convert -f qcow2 -O raw '$img' '$W/copy.raw' && sync"
rm -f "$W/copy.raw"; sync
declare -A repo_mib
for cs in $chunk_sizes; do
    r=$W/repo-$cs
    "$bin" --repo "$r" init --chunk-size "$cs" >/dev/null
    run "cairn backup, chunk $cs" "$bin" -q --repo "$r" backup --image "$img" --name bench
    repo_mib[$cs]=$(du_mib "$r")
    run "cairn backup again (no change), chunk $cs" "$bin" -q --repo "$r" backup --image "$img" --name bench
    run "cairn restore-disk raw, chunk $cs" "$bin" -q --repo "$r" restore-disk bench@latest vda --to "$W/restored.raw" --format raw
    qemu-img compare -q -f raw -F qcow2 "$W/restored.raw" "$img" || { echo "bench: restore differs!" >&2; exit 1; }
    rm -f "$W/restored.raw"
    if [ "$cs" != "${chunk_sizes##* }" ]; then rm -rf "$r"; fi
done
# encrypted cairn vs restic (always encrypted) on the same bytes
printf 'bench-secret-key-0123456789\n' >"$W/key"; chmod 600 "$W/key"
"$bin" --repo "$W/repo-enc" init --encrypt --key-file "$W/key" >/dev/null
run "cairn backup, encrypted, chunk 1M" "$bin" -q --repo "$W/repo-enc" --key-file "$W/key" backup --image "$img" --name bench
repo_mib[enc]=$(du_mib "$W/repo-enc")
qemu-img convert -f qcow2 -O raw "$img" "$W/src.raw"   # restic reads files: give it the raw disk
export RESTIC_PASSWORD=bench-secret-key-0123456789 RESTIC_CACHE_DIR=$W/restic-cache
restic init -q -r "$W/restic" >/dev/null
run "restic backup (raw file)" restic -q -r "$W/restic" backup "$W/src.raw"
repo_mib[restic]=$(du_mib "$W/restic")
run "restic backup again (no change)" restic -q -r "$W/restic" backup "$W/src.raw"
sync
run "restic restore + sync (durable)" bash -c "restic -q -r '$W/restic' restore latest --target '$W/restic-out' && sync"
cmp "$W/src.raw" "$W/restic-out$W/src.raw"

# ---- report
limit=$(awk 'NR==1{print $(NF-1)}' "$W/results")
{
    echo "### Image backup and restore, ${size_mib} MiB virtual ($(date -u +%Y-%m-%d), $(nproc) cores)"
    echo
    echo "Command: \`bench/image-backup.sh --size-mib $size_mib --chunk-sizes \"$chunk_sizes\"\`"
    echo
    echo "| run | seconds | MB/s (virtual) | × qemu-img convert time | peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|"
    while read -r line; do
        rss=${line##* }; rest=${line% *}; secs=${rest##* }; label=${rest% *}
        awk -v l="$label" -v s="$secs" -v r="$rss" -v lim="$limit" -v mib="$size_mib" 'BEGIN{
            mbps = s > 0 ? mib * 1.048576 / s : 0;
            printf "| %s | %.2f | %.0f | %.2f | %.0f |\n", l, s, mbps, (lim > 0 ? s / lim : 0), r / 1024 }'
    done <"$W/results"
    echo
    echo "| repository | size MiB |"
    echo "|---|---:|"
    for k in "${!repo_mib[@]}"; do echo "| $k | ${repo_mib[$k]} |"; done | sort
} | tee "${out:-/dev/null}"
