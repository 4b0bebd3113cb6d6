#!/usr/bin/env bash
# bench/s3-push.sh - push and pull of a snapshot to a loopback Ceph radosgw,
# side by side with `rclone copy` of the same repository directory, in one run.
#
#   bench/s3-push.sh [--size-mib N] [--out FILE]
#
# Reported: seconds, MB/s, requests (cairn's --json) for: push of a full
# snapshot, the same push again (no-op), push of an incremental that changed
# 1% of the disk, pull into an empty repository, and rclone copy of the local
# repository directory to another bucket as the upload reference.
# Needs root, tools/setup --bench (ceph, rclone).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
size_mib=1024
out=""
while [ $# -gt 0 ]; do
    case $1 in
        --size-mib) size_mib=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--size-mib N] [--out FILE]" >&2; exit 2 ;;
    esac
done
for t in rclone radosgw curl; do
    command -v "$t" >/dev/null || { echo "bench: missing $t: run tools/setup --bench" >&2; exit 1; }
done
bin=${CAIRN_BIN:-$("$src/tools/build" release)/cairn}
W=$(mktemp -d /var/tmp/cairn-bench-s3.XXXXXX)
export CEPH_S3_DIR=$W/ceph CEPH_S3_MON_PORT=3399 CEPH_S3_RGW_PORT=7799
trap '"$src/tests/e2e/ceph/ceph-rgw-down.sh" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
eval "$(CEPH_S3_OBJECTSTORE=memstore CEPH_S3_NO_MGR=1 CEPH_S3_BLOCK_GB=8 "$src/tests/e2e/ceph/ceph-rgw-up.sh" 2>/dev/null)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION AWS_ENDPOINT_URL=$S3_ENDPOINT
for b in bench-cairn bench-rclone; do
    curl -sf -o /dev/null --aws-sigv4 "aws:amz:$AWS_DEFAULT_REGION:s3" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X PUT "$S3_ENDPOINT/$b"
done

echo "bench: ${size_mib} MiB image (random data, incompressible: the worst case for the wire)" >&2
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$W/disk.raw"
"$bin" --repo "$W/repo" init >/dev/null
"$bin" -q --repo "$W/repo" backup --image "$W/disk.raw" --name bench >/dev/null

: >"$W/results"
push() { # LABEL ARGS...
    local label=$1; shift
    local t0=$(date +%s.%N)
    "$@" --json >"$W/j.json"
    local t1=$(date +%s.%N)
    python3 - "$W/j.json" "$label" "$t0" "$t1" "$size_mib" >>"$W/results" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); label = sys.argv[2]
secs = float(sys.argv[4]) - float(sys.argv[3]); mib = d["bytes_sent"] / 1048576
print("%s|%.2f|%.0f|%.1f|%d|%d" % (label, secs, mib / secs if secs else 0, mib, d["objects_sent"], d["requests"]))
PY
    tail -n1 "$W/results" >&2
}
push "cairn push (full snapshot)" "$bin" --repo "$W/repo" push "s3://bench-cairn/repo"
push "cairn push again (no-op)" "$bin" --repo "$W/repo" push "s3://bench-cairn/repo"
# 1% of the disk changes
dd if=/dev/urandom of="$W/disk.raw" bs=1M count=$((size_mib / 100)) seek=$((size_mib / 3)) \
    conv=notrunc status=none
"$bin" -q --repo "$W/repo" backup --image "$W/disk.raw" --name bench >/dev/null
push "cairn push (1% changed)" "$bin" --repo "$W/repo" push "s3://bench-cairn/repo"
push "cairn pull (into an empty repository)" "$bin" --repo "$W/pulled" pull "s3://bench-cairn/repo"
# the upload reference: rclone copy of the repository directory (first snapshot's size)
cat >"$W/rclone.conf" <<CONF
[ceph]
type = s3
provider = Ceph
access_key_id = $AWS_ACCESS_KEY_ID
secret_access_key = $AWS_SECRET_ACCESS_KEY
endpoint = $S3_ENDPOINT
region = $AWS_DEFAULT_REGION
CONF
rbytes=$(du -sb "$W/repo" | cut -f1)
t0=$(date +%s.%N)
env -u AWS_CA_BUNDLE rclone --config "$W/rclone.conf" copy "$W/repo" ceph:bench-rclone/repo --transfers 8 2>"$W/rclone.err" || { cat "$W/rclone.err" >&2; exit 1; }
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v by="$rbytes" 'BEGIN { s = b - a; m = by / 1048576;
    printf "rclone copy (repository dir, 8 transfers)|%.2f|%.0f|%.1f|-|-\n", s, m / s, m }' >>"$W/results"
tail -n1 "$W/results" >&2
{
    echo "### Push and pull to a loopback Ceph radosgw, ${size_mib} MiB snapshot ($(date -u +%Y-%m-%d), $(nproc) cores)"
    echo
    echo "Command: \`bench/s3-push.sh --size-mib $size_mib\`"
    echo
    echo "| run | seconds | MB/s | MiB sent | objects sent | requests |"
    echo "|---|---:|---:|---:|---:|---:|"
    awk -F'|' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$W/results"
} | tee "${out:-/dev/null}"
