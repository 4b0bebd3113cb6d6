# functions.sh - sourced by every end-to-end test in tests/e2e/.
#
# Gives each test a private work directory under /var/tmp, removed on exit
# together with everything registered with cleanup_fn; a `cairn` wrapper
# bound to "$REPO"; assertions; image builders; and wait_for, which polls a
# condition (tests never sleep a fixed time to wait for something).
#
# Exit codes follow automake: 0 pass, 1 fail, 77 skip. Skip only when a
# component truly cannot exist on this machine (e.g. mounting is not
# permitted), never for a tool that tools/setup installs: those fail.
#
# JSON is read with python3 (json module, as "$PYTHON"), not jq.

set -euo pipefail
export LC_ALL=C
# the tests decide which repository and key each command sees
unset CAIRN_REPO CAIRN_KEY_FILE CAIRN_FAKE_NOW

TEST_NAME=$(basename "$0" .sh)
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ -z "${CAIRN_BIN:-}" ]; then
    if [ -n "${CAIRN_SRCDIR:-}" ] && [ -x "$CAIRN_SRCDIR/cairn" ]; then
        CAIRN_BIN=$CAIRN_SRCDIR/cairn
    elif [ -x "$E2E_DIR/../../cairn" ]; then
        CAIRN_BIN=$E2E_DIR/../../cairn
    else
        CAIRN_BIN=./cairn
    fi
fi
CAIRN_BIN=$(cd "$(dirname "$CAIRN_BIN")" && pwd)/$(basename "$CAIRN_BIN")

# ---- messages and assertions

_t0=$(date +%s.%N)

info() { printf '%s: %s\n' "$TEST_NAME" "$*"; }
# announce a check: every test prints what it checks
check() {
    printf '%s: [%5s s] CHECK %s\n' "$TEST_NAME" \
        "$(awk -v a="$_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" "$*"
}
fail() {
    printf '%s: FAIL: %s\n' "$TEST_NAME" "$*" >&2
    exit 1
}
# defer_fail MSG: record a failure, go on checking; the test fails at exit
_deferred_failures=0
defer_fail() {
    printf '%s: FAIL (going on with the other checks): %s\n' "$TEST_NAME" "$*" >&2
    _deferred_failures=$((_deferred_failures + 1))
}
skip() {
    printf '%s: SKIP: %s\n' "$TEST_NAME" "$*" >&2
    exit 77
}

# requires CMD [WHY]: skip (77) when CMD cannot exist on this machine. Only
# for optional components; a tool that tools/setup installs uses `need`.
requires() {
    command -v "$1" >/dev/null 2>&1 || skip "'$1' is not available${2:+ ($2)}"
}
# need CMD...: fail when a tool that tools/setup installs is missing
need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 ||
            fail "'$c' is missing: install it (tools/setup) and run the test again"
    done
}

# assert_contains FILE TEXT [WHAT]: FILE (usually a captured stderr) holds TEXT
assert_contains() {
    grep -qF -- "$2" "$1" || {
        printf '%s: --- %s:\n' "$TEST_NAME" "$1" >&2
        sed 's/^/    /' "$1" >&2
        fail "${3:-output} does not contain '$2'"
    }
}
assert_not_contains() {
    if grep -qF -- "$2" "$1"; then
        sed 's/^/    /' "$1" >&2
        fail "${3:-output} contains '$2'"
    fi
}
assert_eq() { # ACTUAL EXPECTED WHAT
    [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}
# assert_le A B WHAT / assert_ge / assert_lt / assert_gt (integers)
assert_le() { [ "$1" -le "$2" ] || fail "$3: $1 is not <= $2"; }
assert_lt() { [ "$1" -lt "$2" ] || fail "$3: $1 is not < $2"; }
assert_ge() { [ "$1" -ge "$2" ] || fail "$3: $1 is not >= $2"; }
assert_gt() { [ "$1" -gt "$2" ] || fail "$3: $1 is not > $2"; }

# ---- the private work directory and cleanup

WORKDIR=$(mktemp -d "/var/tmp/cairn-e2e-$TEST_NAME.XXXXXX")
REPO=$WORKDIR/repo
_cleanup_fns=()
_tracked_pgids=()

# cleanup_fn CMD [ARGS...]: run at exit, last registered first
cleanup_fn() {
    local q
    q=$(printf '%q ' "$@")
    _cleanup_fns+=("$q")
}

# true while a process of process group PGID is alive (zombies do not count)
group_alive() {
    ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}

# libnbd's socket-activation directories (/tmp/libnbdXXXXXX) that exist
# before the test: a cairn killed with SIGKILL cannot remove its own
_libnbd_dirs_before=$(ls -d /tmp/libnbd* 2>/dev/null || true)
_remove_dead_libnbd_dirs() {
    local d
    for d in /tmp/libnbd*; do
        [ -d "$d" ] || continue
        grep -qxF "$d" <<<"$_libnbd_dirs_before" && continue
        # still bound by a live socket: someone's, leave it
        grep -qF "$d/" /proc/net/unix && continue
        rm -rf "$d"
    done
}

_on_exit() {
    local rc=$?
    set +e
    [ "$rc" -ne 0 ] || [ "$_deferred_failures" -eq 0 ] || rc=1
    local i pg
    # background commands first: they may hold files or mounts below
    for pg in "${_tracked_pgids[@]}"; do
        if group_alive "$pg"; then
            kill -TERM -- "-$pg" 2>/dev/null
            wait_for "! group_alive $pg" 10 2>/dev/null || kill -KILL -- "-$pg" 2>/dev/null
        fi
        wait "$pg" 2>/dev/null
    done
    for ((i = ${#_cleanup_fns[@]} - 1; i >= 0; i--)); do
        eval "${_cleanup_fns[$i]}"
    done
    rm -rf "$WORKDIR"
    _remove_dead_libnbd_dirs
    local t1
    t1=$(date +%s.%N)
    printf '%s: %s in %.1f s\n' "$TEST_NAME" \
        "$(case $rc in 0) echo PASS ;; 77) echo SKIP ;; *) echo "FAIL (exit $rc)" ;; esac)" \
        "$(awk -v a="$_t0" -v b="$t1" 'BEGIN { print b - a }')"
    exit "$rc"
}
trap _on_exit EXIT
trap 'exit 130' INT TERM

# ---- polling

# wait_for COND TIMEOUT_SECONDS: poll the shell condition COND until it
# holds; fails (returns 1) after the timeout. Polls every 20 ms
# ($WAIT_FOR_INTERVAL seconds: 0 polls as fast as it can).
wait_for() {
    local cond=$1 timeout=$2
    local deadline=$(($(date +%s%N) + timeout * 1000000000))
    until eval "$cond"; do
        if [ "$(date +%s%N)" -ge "$deadline" ]; then
            echo "$TEST_NAME: timed out after ${timeout}s waiting for: $cond" >&2
            return 1
        fi
        sleep "${WAIT_FOR_INTERVAL:-0.02}"
    done
}

# ---- running cairn

# cairn ARGS...: the binary under test on "$REPO"
cairn() {
    "$CAIRN_BIN" --repo "$REPO" "$@"
}

# bg_cairn OUT ERR ARGS...: start cairn in the background, in a process
# group of its own (its qemu-nbd children included) that cleanup stops if
# still running. Sets BG_PID (== its process group).
bg_cairn() {
    local out=$1 err=$2
    shift 2
    setsid "$CAIRN_BIN" --repo "$REPO" "$@" >"$out" 2>"$err" &
    BG_PID=$!
    _tracked_pgids+=("$BG_PID")
}

# expect_fail STDERR_FILE CMD...: CMD must exit non-zero; its stderr goes to
# STDERR_FILE and stdout to STDERR_FILE.out. Sets LAST_RC.
expect_fail() {
    local errf=$1
    shift
    LAST_RC=0
    "$@" >"$errf.out" 2>"$errf" || LAST_RC=$?
    [ "$LAST_RC" -ne 0 ] || {
        sed 's/^/    /' "$errf.out" "$errf" >&2
        fail "'$*' succeeded but should have failed"
    }
}

# expect_ok OUT CMD...: CMD must succeed; its stdout goes to OUT and its
# stderr to OUT.err, which is shown (indented) either way
expect_ok() {
    local out=$1 rc=0
    shift
    "$@" >"$out" 2>"$out.err" || rc=$?
    sed 's/^/    stderr: /' "$out.err"
    [ "$rc" -eq 0 ] || fail "'$*' exited $rc"
}

# ---- JSON (python3)

# json_get FILE KEY: value at a dotted path ("disks.0.chunks_new"); strings
# bare, booleans as true/false, objects and arrays as JSON. FILE - is stdin.
json_get() {
    "$PYTHON" -c '
import json, sys
v = json.load(sys.stdin if sys.argv[1] == "-" else open(sys.argv[1]))
for k in [p for p in sys.argv[2].split(".") if p]:
    v = v[int(k)] if isinstance(v, list) else v[k]
if isinstance(v, bool):
    print("true" if v else "false")
elif isinstance(v, (dict, list)) or v is None:
    print(json.dumps(v))
else:
    print(v)
' "$1" "$2"
}

# json_eval FILE EXPR: print the Python expression EXPR, with the parsed
# document as `j` (lists print one item per line)
json_eval() {
    "$PYTHON" -c '
import json, sys
j = json.load(sys.stdin if sys.argv[1] == "-" else open(sys.argv[1]))
v = eval(sys.argv[2])
if isinstance(v, (list, tuple)):
    for x in v:
        print(x)
elif isinstance(v, bool):
    print("true" if v else "false")
else:
    print(v)
' "$1" "$2"
}

# ---- repository inspection

# object files (not temp files) in the repository
count_objects() {
    { find "${1:-$REPO}/objects" -type f ! -name '.*' 2>/dev/null || true; } | wc -l
}
count_snapshots() {
    { find "${1:-$REPO}/snapshots" -type f ! -name '.*' 2>/dev/null || true; } | wc -l
}
# temp files left anywhere in the repository
count_temps() {
    { find "${1:-$REPO}" -type f -name '.*' 2>/dev/null || true; } | wc -l
}
count_locks() {
    { find "${1:-$REPO}/locks" -type f 2>/dev/null || true; } | wc -l
}
# a fingerprint of the repository's files (names, sizes, contents)
repo_state() {
    local r=${1:-$REPO}
    [ -e "$r" ] || { echo absent; return; }
    (cd "$r" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum; find . -type d | sort) |
        sha256sum | cut -d' ' -f1
}
# fail if a process (other than a zombie) mentions the work directory
assert_no_leftover_processes() {
    local left
    left=$(ps -e -ww -o pid=,stat=,args= | W="$WORKDIR" awk 'index($0, ENVIRON["W"]) && $2 !~ /^Z/')
    [ -z "$left" ] || fail "processes left behind: $left"
}

# kilobytes used on disk
du_k() { du -sk "$1" | cut -f1; }
file_size() { stat -c %s "$1"; }

# ---- test images

# make_mixed_raw FILE SIZE [SEGMENT]: a raw image of SIZE bytes (a multiple
# of 512; give one that is not a multiple of the chunk size) made of
# segments, in turn: random data, written zeros, text lines, a repeated
# 64 KiB random block, and a hole. SEGMENT (default 1 MiB + 333 KiB) is
# deliberately not chunk aligned.
make_mixed_raw() {
    "$PYTHON" - "$1" "$2" "${3:-$(((1024 + 333) * 1024))}" <<'EOF'
import sys
path, size, seg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open("/dev/urandom", "rb") as rnd, open(path, "wb") as f:
    block = rnd.read(65536)
    pos = kind = 0
    while pos < size:
        n = min(seg, size - pos)
        k = kind % 5
        if k == 0:
            f.write(rnd.read(n))
        elif k == 1:
            f.write(bytes(n))
        elif k == 2:
            line = b"cairn e2e text line at segment %d of %s\n" % (kind, path.encode())
            f.write((line * (n // len(line) + 1))[:n])
        elif k == 3:
            f.write((block * (n // len(block) + 1))[:n])
        else:
            f.seek(n, 1)  # a hole
        pos += n
        kind += 1
    f.truncate(size)
EOF
    [ "$(file_size "$1")" -eq "$2" ] || fail "make_mixed_raw: $1 has the wrong size"
}

# make_random_raw FILE SIZE: SIZE bytes from /dev/urandom
make_random_raw() {
    head -c "$2" /dev/urandom >"$1"
}

# to_qcow2 RAW QCOW2
to_qcow2() {
    qemu-img convert -q -f raw -O qcow2 "$1" "$2"
}

# overwrite FILE OFFSET SIZE: SIZE random bytes at OFFSET (bytes), in place
overwrite_random() {
    head -c "$3" /dev/urandom | dd of="$1" bs=64K seek="$2" oflag=seek_bytes conv=notrunc status=none
}

# image_vsize IMAGE: virtual size as qemu-img sees it
image_vsize() {
    qemu-img info --output=json "$1" | json_get - virtual-size
}
image_format() {
    qemu-img info --output=json "$1" | json_get - format
}

# restore_and_compare SNAP DISK ORIGINAL_RAW: restore to raw (cmp) and to
# qcow2 (qemu-img compare, same virtual size)
restore_and_compare() {
    local snap=$1 disk=$2 orig=$3
    local out="$WORKDIR/restored.$$.$RANDOM"
    cairn restore-disk "$snap" "$disk" --to "$out.raw" --format raw >/dev/null ||
        fail "restore-disk $snap $disk to raw failed"
    cmp "$orig" "$out.raw" || fail "$snap $disk restored to raw differs from $orig"
    cairn restore-disk "$snap" "$disk" --to "$out.qcow2" --format qcow2 >/dev/null ||
        fail "restore-disk $snap $disk to qcow2 failed"
    assert_eq "$(image_format "$out.qcow2")" qcow2 "format of the qcow2 restore"
    assert_eq "$(image_vsize "$out.qcow2")" "$(file_size "$orig")" \
        "virtual size of $snap $disk restored to qcow2"
    qemu-img compare -q -f qcow2 -F raw "$out.qcow2" "$orig" ||
        fail "$snap $disk restored to qcow2 differs from $orig"
    # cairn writes the qcow2 itself: qemu must find its metadata clean
    qemu-img check -q -f qcow2 "$out.qcow2" ||
        fail "qemu-img check finds errors in $snap $disk restored to qcow2"
    rm -f "$out.raw" "$out.qcow2"
}

need python3 qemu-img qemu-nbd setsid
# the interpreter itself: a version manager's shim costs ~0.5 s a call
PYTHON=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
[ -x "$CAIRN_BIN" ] || fail "no cairn binary at '$CAIRN_BIN': build it with 'make' (or set CAIRN_BIN)"
info "cairn: $CAIRN_BIN, work dir: $WORKDIR"
