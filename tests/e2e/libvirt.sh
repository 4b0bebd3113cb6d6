# libvirt.sh - sourced by the live-*.sh tests, after functions.sh.
#
# Runs libvirtd + virtlogd by hand when they are not running (no systemd on
# the test machines; they are left running for the next test), defines
# TCG domains with no guest OS whose disks get data through HMP qemu-io,
# and keeps a raw reference copy of every disk that receives the same
# writes, so that a restored disk is compared with cmp against what the
# disk held at the time of the backup.
# See /work/shared/recipes/libvirt-qemu.sh for the proven commands.

export LIBVIRT_DEFAULT_URI=qemu:///system
need virsh libvirtd virtlogd qemu-io qemu-system-x86_64

IMAGES_BASE=/var/lib/libvirt/images
CAIRN_JOBS_BASE=/run/cairn/jobs
CAIRN_SCRATCH_BASE=/var/lib/cairn/scratch
CAIRN_LOCKS_BASE=/run/cairn/locks

MIB=$((1024 * 1024))
_LETTERS=abcdefghijklmnopqrstuvwxyz

# ---- daemons

# _daemon_alive PIDFILE NAME: the pid in PIDFILE is a running NAME
_daemon_alive() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# _spawn_daemon CMD...: run a self-daemonizing command with stdio on
# /dev/null and none of our other descriptors (the test log, make's
# jobserver, the start lock): the daemon outlives this test
_spawn_daemon() {
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
        done
        exec "$@"
    ) </dev/null >/dev/null 2>&1 || true
}

# ensure_libvirtd: virtlogd and libvirtd run and answer (they are never
# stopped by the tests: later tests reuse them)
ensure_libvirtd() {
    # the usual udev permissions: without them libvirt re-probes QEMU at
    # every domain start (+4 s); the domains use TCG either way
    if [ -c /dev/kvm ]; then chgrp kvm /dev/kvm && chmod 0660 /dev/kvm; fi
    if _daemon_alive /run/virtlogd.pid virtlogd && _daemon_alive /run/libvirtd.pid libvirtd &&
        virsh -q version >/dev/null 2>&1; then
        return 0
    fi
    # two tests may start at once (make -j2): one starts, the other waits
    local lockfd
    exec {lockfd}</var/lib/libvirt
    flock -w 120 "$lockfd" || fail "cannot take the libvirtd start lock on /var/lib/libvirt"
    mkdir -p /var/log/libvirt
    if ! _daemon_alive /run/virtlogd.pid virtlogd; then
        info "starting virtlogd"
        _spawn_daemon virtlogd -d
    fi
    if ! _daemon_alive /run/libvirtd.pid libvirtd; then
        info "starting libvirtd (the first start probes QEMU: ~10 s)"
        _spawn_daemon env LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/libvirtd.log" libvirtd -d
    fi
    exec {lockfd}<&-
    wait_for "virsh -q version >/dev/null 2>&1" 60 ||
        fail "libvirtd does not answer after 60 s: see /var/log/libvirt/libvirtd.log"
    wait_for "_daemon_alive /run/virtlogd.pid virtlogd" 10 || fail "virtlogd is not running"
    info "libvirtd $(cat /run/libvirtd.pid) and virtlogd $(cat /run/virtlogd.pid) are up"
}

# ---- domains

# UUIDs every domain of this test had (a domain redefined gets a new one),
# "NAME UUID" lines (a file: scenarios run in subshells): their cairn job,
# scratch and lock files are removed at exit
_UUID_LOG=$WORKDIR/domain-uuids
: >"$_UUID_LOG"

# dom_uuid DOM: DOM's current UUID (as of its last define_domain/track_uuid)
dom_uuid() {
    local u
    u=$(awk -v n="$1" '$1 == n { u = $2 } END { print u }' "$_UUID_LOG")
    [ -n "$u" ] || u=$(virsh domuuid "$1" | tr -d '[:space:]')
    echo "$u"
}
dom_images() { echo "$IMAGES_BASE/$1"; }
# dom_disk DOM DISK: its image (raw when listed in $DOMAIN_RAW_DISKS at definition)
dom_disk() {
    if [ -f "$IMAGES_BASE/$1/$2.raw" ]; then echo "$IMAGES_BASE/$1/$2.raw"; else echo "$IMAGES_BASE/$1/$2.qcow2"; fi
}
# _disk_format DISK: raw when DISK is in $DOMAIN_RAW_DISKS, else qcow2
_disk_format() {
    case " ${DOMAIN_RAW_DISKS:-} " in *" $1 "*) echo raw ;; *) echo qcow2 ;; esac
}
dom_running() { [[ $(virsh domstate "$1" 2>/dev/null) == running* ]]; }
dom_exists() { virsh -q dominfo "$1" >/dev/null 2>&1; }
qemu_pid() { cat "/run/libvirt/qemu/$1.pid"; }

# track_uuid DOM: after DOM was (re)defined: remember its UUID
track_uuid() {
    local u
    u=$(virsh domuuid "$1" | tr -d '[:space:]')
    [ -n "$u" ] || fail "no UUID for domain $1"
    echo "$1 $u" >>"$_UUID_LOG"
}

# _remove_domain NAME: destroy and undefine NAME, remove its images, logs
# and cairn's per-UUID files (also for a leftover of an interrupted run)
_remove_domain() {
    local name=$1 u
    if dom_exists "$name"; then
        echo "$name $(virsh domuuid "$name" | tr -d '[:space:]')" >>"$_UUID_LOG"
        virsh -q domjobabort "$name" >/dev/null 2>&1 || true
        virsh -q destroy "$name" >/dev/null 2>&1 || true
        virsh -q undefine "$name" --checkpoints-metadata --nvram >/dev/null 2>&1 ||
            virsh -q undefine "$name" --checkpoints-metadata >/dev/null 2>&1 ||
            echo "$TEST_NAME: cannot undefine $name" >&2
    fi
    for u in $(awk -v n="$name" '$1 == n && $2 != "" { print $2 }' "$_UUID_LOG"); do
        rm -rf "${CAIRN_JOBS_BASE:?}/$u" "${CAIRN_SCRATCH_BASE:?}/$u" "$CAIRN_LOCKS_BASE/$u.lock"
    done
    rm -rf "${IMAGES_BASE:?}/${name:?}"
    rm -f "/var/log/libvirt/qemu/$name.log" "/var/log/libvirt/qemu/$name-console.log"
}

# domain_xml NAME NDISKS: the XML of a TCG domain without a guest OS whose
# disks vda, vdb, ... are $IMAGES_BASE/NAME/vdX.qcow2 (vdX.raw for the
# targets in $DOMAIN_RAW_DISKS) with user aliases
# ua-vdX (HMP qemu-io needs a stable qdev id); $DOMAIN_EXTRA_DEVICES (XML)
# is added to its devices, $DOMAIN_FEATURES (XML, e.g. <acpi/>: PCI hot-plug
# on the pc machine needs it) to its <features>
domain_xml() {
    local name=$1 n=$2 i t f
    cat <<EOF
<domain type='qemu'>
  <name>$name</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features>${DOMAIN_FEATURES:-}</features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
EOF
    for ((i = 0; i < n; i++)); do
        t=vd${_LETTERS:i:1}
        f=$(_disk_format "$t")
        cat <<EOF
    <disk type='file' device='disk'>
      <driver name='qemu' type='$f'/>
      <source file='$IMAGES_BASE/$name/$t.$f'/>
      <target dev='$t' bus='virtio'/>
      <alias name='ua-$t'/>
    </disk>
EOF
    done
    cat <<EOF
    ${DOMAIN_EXTRA_DEVICES:-}
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

# define_domain NAME NDISKS SIZE [--no-start]: a TCG domain without an OS
# with NDISKS empty qcow2 disks (raw: $DOMAIN_RAW_DISKS) of SIZE (vda, vdb, ...), started unless
# --no-start; removed at exit. A reference file per disk starts as zeros.
define_domain() {
    local name=$1 n=$2 size=$3 start=${4:-} i t
    _remove_domain "$name" # a leftover of an interrupted run
    cleanup_fn _remove_domain "$name"
    mkdir -p "$IMAGES_BASE/$name"
    for ((i = 0; i < n; i++)); do
        t=vd${_LETTERS:i:1}
        qemu-img create -q -f "$(_disk_format "$t")" "$IMAGES_BASE/$name/$t.$(_disk_format "$t")" "$size"
        ref_init "$name" "$t" "$size"
    done
    domain_xml "$name" "$n" >"$WORKDIR/$name.xml"
    virsh -q define "$WORKDIR/$name.xml" >/dev/null || fail "virsh define $name failed"
    track_uuid "$name"
    if [ "$start" != --no-start ]; then
        virsh -q start "$name" >/dev/null || fail "virsh start $name failed"
    fi
    info "domain $name: $n disk(s) of $size (raw: ${DOMAIN_RAW_DISKS:-none}), $(virsh domstate "$name" | sed -n 1p)," \
        "uuid $(dom_uuid "$name")"
}

# start_domain NAME / stop_domain NAME (virsh destroy: the disks are
# closed cleanly, persistent bitmaps are stored)
start_domain() {
    virsh -q start "$1" >/dev/null || fail "virsh start $1 failed"
}
stop_domain() {
    virsh -q destroy "$1" >/dev/null || fail "virsh destroy $1 failed"
    wait_for "! dom_running $1" 30 || fail "$1 does not stop"
}

# ---- writing into disks

# qio DOM DISK 'qemu-io command': run a qemu-io command on a running
# domain's disk (HMP qemu-io on the virtio device's backend)
qio() {
    local out
    out=$(virsh qemu-monitor-command "$1" --hmp "qemu-io -d ua-$2/virtio-backend \"$3\"") ||
        fail "qemu-io on $1 $2 '$3' failed"
    [ -z "$(printf '%s' "$out" | tr -d '[:space:]')" ] || fail "qemu-io on $1 $2 '$3': $out"
}

# guest_read DOM DEVICE PATTERN OFFSET LEN: true when QEMU reads LEN bytes of
# PATTERN (0x5a) at OFFSET through the device DEVICE of the running DOM (its
# qdev id: ua-vda, or libvirt's alias, e.g. virtio-disk2, of a hot-plugged
# disk). HMP qemu-io prints its verdict on QEMU's stdout (the domain's log),
# not on the monitor: it is read from the log.
guest_read() {
    local dom=$1 dev=$2 pat=$3 off len log n out
    off=$(to_bytes "$4") len=$(to_bytes "$5")
    log=/var/log/libvirt/qemu/$dom.log
    n=$(stat -c %s "$log")
    out=$(virsh qemu-monitor-command "$dom" --hmp "qemu-io -d $dev/virtio-backend \"read -P $pat $off $len\"") ||
        fail "qemu-io read on $dom $dev failed"
    [ -z "$(printf '%s' "$out" | tr -d '[:space:]')" ] || fail "qemu-io read on $dom $dev: $out"
    wait_for "tail -c +$((n + 1)) '$log' | grep -qF 'read $len/$len bytes at offset $off'" 10 ||
        fail "no qemu-io verdict in $log"
    ! tail -c +$((n + 1)) "$log" | grep -qF "Pattern verification failed at offset $off,"
}

# qio_offline DOM DISK 'qemu-io command': the same on the image file of a
# shut-off domain (qemu-io -f qcow2 updates the image's persistent bitmaps)
qio_offline() {
    local out
    out=$(qemu-io -f qcow2 -t unsafe -c "$3" "$(dom_disk "$1" "$2")" 2>&1) ||
        fail "qemu-io -f qcow2 on $(dom_disk "$1" "$2") '$3' failed: $out"
}

# to_bytes SIZE: 64k, 1M, 300M, 1G or plain bytes -> bytes
to_bytes() {
    local v=$1 n m=1
    case $v in
    *[kK]) n=${v%?} m=1024 ;;
    *M) n=${v%?} m=$MIB ;;
    *G) n=${v%?} m=$((1024 * MIB)) ;;
    *) n=$v ;;
    esac
    echo $((n * m))
}

# ---- the reference model: a raw file per disk with the same writes

ref_file() { echo "$WORKDIR/ref-$1-$2.raw"; }

# ref_init DOM DISK SIZE: the reference of an empty disk (all zeros)
ref_init() {
    local f
    f=$(ref_file "$1" "$2")
    rm -f "$f"
    truncate -s "$(to_bytes "$3")" "$f"
}

_ref_seq=0
# ref_write DOM DISK PATTERN|random OFFSET LEN: write LEN bytes at OFFSET
# into the disk (live through HMP qemu-io when DOM runs, else with qemu-io
# on its qcow2 file) and into its reference file. PATTERN is a byte
# (0x5a); random writes fresh random data.
ref_write() {
    local dom=$1 disk=$2 what=$3 off=$4 len=$5 ref cmd data=
    ref=$(ref_file "$dom" "$disk")
    if ! dom_running "$dom"; then
        if [ "$what" = random ]; then
            # no data file: random data into the reference, then that
            # range of it (in the page cache now) into the image
            head -c "$(to_bytes "$len")" /dev/urandom |
                dd of="$ref" bs=1M iflag=fullblock seek="$(to_bytes "$off")" \
                    oflag=seek_bytes conv=notrunc status=none
            dd if="$ref" bs=1M skip="$(to_bytes "$off")" count="$(to_bytes "$len")" \
                iflag=skip_bytes,count_bytes status=none |
                qio_offline "$dom" "$disk" "write -s /dev/stdin $off $len"
        else
            qio_offline "$dom" "$disk" "write -P $what $off $len"
            qemu-io -f raw -t unsafe -c "write -P $what $off $len" "$ref" >/dev/null ||
                fail "qemu-io on the reference of $dom $disk failed"
        fi
        return 0
    fi
    case $what in
    random)
        _ref_seq=$((_ref_seq + 1))
        # QEMU (user libvirt-qemu) reads it: next to the domain's images
        data=$IMAGES_BASE/$dom/data-$_ref_seq.bin
        head -c "$(to_bytes "$len")" /dev/urandom >"$data"
        chmod 0644 "$data"
        cmd="write -s $data $off $len"
        ;;
    *) cmd="write -P $what $off $len" ;;
    esac
    qio "$dom" "$disk" "$cmd"
    # -t unsafe: no fsync (qemu-io writes through by default: seconds per 100 MiB)
    qemu-io -f raw -t unsafe -c "$cmd" "$ref" >/dev/null ||
        fail "qemu-io on the reference of $dom $disk: '$cmd' failed"
    [ -z "$data" ] || rm -f "$data"
}

# fill_random DOM DISK OFFSET LEN: random data only to make a backup last
# (no reference kept: the disk is not restored and compared afterwards)
fill_random() {
    local data cmd
    if ! dom_running "$1"; then
        head -c "$(to_bytes "$4")" /dev/urandom | qio_offline "$1" "$2" "write -s /dev/stdin $3 $4"
        return 0
    fi
    data=$IMAGES_BASE/$1/fill.bin
    head -c "$(to_bytes "$4")" /dev/urandom >"$data"
    chmod 0644 "$data"
    qio "$1" "$2" "write -s $data $3 $4"
    rm -f "$data"
}

# ref_save DOM TAG: keep a copy of DOM's references as they are now
# (TAG names a backup: the restore of that backup must equal it)
ref_save() {
    local f
    for f in "$WORKDIR/ref-$1-"*.raw; do
        case $f in *.at-*) continue ;; esac
        cp --sparse=always "$f" "${f%.raw}.at-$2.raw"
    done
}
# ref_at DOM DISK TAG: the saved reference of DISK at TAG
ref_at() { echo "$WORKDIR/ref-$1-$2.at-$3.raw"; }

# assert_restore SNAP DISK REFERENCE: restore-disk SNAP DISK to raw equals
# REFERENCE byte for byte
assert_restore() {
    local snap=$1 disk=$2 ref=$3 out=$WORKDIR/restored.raw
    rm -f "$out"
    cairn restore-disk "$snap" "$disk" --to "$out" --format raw >"$WORKDIR/restore.out" \
        2>"$WORKDIR/restore.err" || {
        sed 's/^/    /' "$WORKDIR/restore.err" >&2
        fail "cairn restore-disk $snap $disk --to $out --format raw failed"
    }
    cmp "$ref" "$out" >&2 || fail "$snap $disk restored differs from the reference ${ref##*/}"
    rm -f "$out"
}

# ---- restored domains

# raw_of IMAGE OUT: the guest-visible bytes of a (possibly in use) image
raw_of() {
    qemu-img convert -U -O raw "$1" "$2" || fail "qemu-img convert -U $1 failed"
}
# assert_image_eq IMAGE REFERENCE WHAT: cmp of IMAGE's bytes with REFERENCE
assert_image_eq() {
    local out=$WORKDIR/image-eq.raw
    raw_of "$1" "$out"
    cmp "$2" "$out" >&2 || fail "$3: $1 differs from ${2##*/}"
    rm -f "$out"
}
# blk_sources DOM [--inactive]: "target path" lines of virsh domblklist
blk_sources() {
    virsh -q domblklist "$@" | awk 'NF == 2 { print $1, $2 }'
}
# macs DOM: the MAC addresses of DOM's NICs, sorted, one a line
macs() {
    virsh -q domiflist "$1" | awk 'NF { print $NF }' | sort
}
# files under DIR (recursively), one a line; "" when DIR does not exist
files_under() {
    { find "$1" -mindepth 1 2>/dev/null || true; } | sort
}
# blk_source DOM TARGET: the file of DOM's disk TARGET
blk_source() {
    blk_sources "$1" | awk -v t="$2" '$1 == t { print $2 }'
}

# lose_domain DOM: destroy and undefine DOM and delete its disk files
lose_domain() {
    local files
    files=$(blk_sources "$1" | awk '{ print $2 }')
    [ -n "$files" ] || fail "control: $1 has no disk"
    if dom_running "$1"; then stop_domain "$1"; fi
    virsh -q undefine "$1" --checkpoints-metadata >/dev/null || fail "virsh undefine $1 failed"
    # shellcheck disable=SC2086
    rm -f $files
    ! dom_exists "$1" || fail "$1 still exists"
}

# assert_disks_at DOM REFDOM TAG [DISKS]: each disk (default vda vdb) of
# the domain DOM equals REFDOM's reference of it at TAG
assert_disks_at() {
    local d f
    for d in ${4:-vda vdb}; do
        f=$(blk_source "$1" "$d")
        [ -f "$f" ] || fail "the disk $d of $1 is not a file: '$f'"
        assert_image_eq "$f" "$(ref_at "$2" "$d" "$3")" "$d of $1 (expected as at $3)"
    done
}

# assert_apart A B: two running domains with different UUIDs, no MAC in
# common, and no disk file in common
assert_apart() {
    local a=$1 b=$2 ua ub ma mb fa fb
    dom_running "$a" || fail "$a does not run"
    dom_running "$b" || fail "$b does not run"
    ua=$(virsh domuuid "$a" | tr -d '[:space:]')
    ub=$(virsh domuuid "$b" | tr -d '[:space:]')
    [ "$ua" != "$ub" ] || fail "$a and $b have the same UUID $ua"
    ma=$(macs "$a")
    mb=$(macs "$b")
    [ -n "$ma" ] && [ -n "$mb" ] || fail "control: no NIC on $a or $b"
    [ -z "$(comm -12 <(echo "$ma") <(echo "$mb"))" ] ||
        fail "$a and $b share a MAC: $(echo $ma) / $(echo $mb)"
    fa=$(blk_sources "$a" | awk '{ print $2 }' | sort)
    fb=$(blk_sources "$b" | awk '{ print $2 }' | sort)
    [ -z "$(comm -12 <(echo "$fa") <(echo "$fb"))" ] ||
        fail "$a and $b share disk files: $(comm -12 <(echo "$fa") <(echo "$fb") | tr '\n' ' ')"
    info "$a and $b: UUIDs $ua / $ub, MACs $(echo $ma) / $(echo $mb)," \
        "disks $(echo $fa) / $(echo $fb)"
}

# ---- backing up

# json_load OUT.json: one python run sets J_id, J_mode, J_reason, J_offline,
# J_consistency, J_bytes_read, J_bytes_new, J_virtual_size, J_targets
# ("vda vdb"), J_notes (one a line), and J_<disk>_<key> for each disk's
# bytes_read, bytes_new, chunks, chunks_hole, chunks_reused, chunks_new;
# J_summary is a one-line description
json_load() {
    eval "$("$PYTHON" -c '
import json, shlex, sys
j = json.load(open(sys.argv[1]))
v = {}
for k in ("id", "mode", "reason", "offline", "consistency", "bytes_read", "bytes_new",
          "virtual_size"):
    x = j.get(k)
    v[k] = "" if x is None else ("true" if x is True else "false" if x is False else x)
v["targets"] = " ".join(d["target"] for d in j.get("disks", []))
v["notes"] = "\n".join(j.get("notes", []))
for d in j.get("disks", []):
    for k in ("bytes_read", "bytes_new", "chunks", "chunks_hole", "chunks_reused", "chunks_new"):
        v["%s_%s" % (d["target"], k)] = d.get(k, "")
for k in ("chunks_new", "chunks_reused"):
    v["sum_" + k] = sum(d.get(k, 0) for d in j.get("disks", []))
v["summary"] = "%s%s, %s, read %d, new %d" % (j.get("mode"),
    " (%s)" % j["reason"] if j.get("reason") else "",
    "offline" if j.get("offline") else "live", j.get("bytes_read", -1), j.get("bytes_new", -1))
for k, x in v.items():
    print("J_%s=%s" % (k, shlex.quote(str(x))))
' "$1")" || fail "cannot read the JSON summary $1"
}

# backup_dom OUT DOM [ARGS...]: `cairn backup DOM --json ARGS` must succeed;
# stdout in OUT.json, stderr in OUT.err; loads the summary (json_load) and
# prints it with cairn's notes
backup_dom() {
    local out=$1
    shift
    local rc=0
    cairn backup "$@" --json >"$out.json" 2>"$out.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        sed 's/^/    /' "$out.err" >&2
        fail "'cairn backup $*' exited $rc"
    fi
    json_load "$out.json"
    info "backup $*: $J_summary"
    sed 's/^/    stderr: /' "$out.err"
}

# disk_targets OUT.json: the targets of a backup's (or show's) disks[], one line
disk_targets() {
    json_eval "$1" "' '.join(d['target'] for d in j['disks'])"
}

# covering OFFSET LEN CHUNK: bytes of the CHUNK-aligned chunks that a
# write of LEN bytes at OFFSET touches (what an incremental reads again)
covering() {
    local off len c
    off=$(to_bytes "$1") len=$(to_bytes "$2") c=$3
    echo $((((off + len + c - 1) / c - off / c) * c))
}

# cairn_checkpoints DOM: the names of DOM's checkpoints cairn created
cairn_checkpoints() {
    { virsh checkpoint-list "$1" --name || fail "virsh checkpoint-list $1 failed"; } |
        { grep '^cairn-' || true; }
}

# assert_no_job_leftovers DOM: no backup job runs on DOM, and its cairn job
# directory (socket) and scratch directory hold no file
assert_no_job_leftovers() {
    local u left
    u=$(dom_uuid "$1")
    if dom_running "$1"; then
        local ji
        ji=$(virsh domjobinfo "$1") || fail "virsh domjobinfo $1 failed"
        if ! [[ $ji =~ Job\ type:\ *None ]]; then
            # cairn has exited: its job must be over. Recorded, then waited
            # for, so that the remaining checks still run
            defer_fail "cairn exited while a job still ran on $1 ($(printf '%s' "$ji" |
                awk -F': *' '/Job type|Operation|Time elapsed/ { printf "%s: %s; ", $1, $2 }' |
                tr -s ' '))"
            wait_for "[[ \$(virsh domjobinfo $1) =~ Job\ type:\ *None ]]" 30 ||
                fail "the job on $1 does not end"
        fi
    fi
    left=$(find "$CAIRN_SCRATCH_BASE/$u" "$CAIRN_JOBS_BASE/$u" -mindepth 1 2>/dev/null || true)
    [ -z "$left" ] || fail "files left after the backup: $left"
}

# assert_after_live_backup DOM: exactly one cairn checkpoint, no job, no
# socket, no scratch file
assert_after_live_backup() {
    local cps
    cps=$(cairn_checkpoints "$1")
    assert_eq "$(printf '%s' "$cps" | grep -c . || true)" 1 \
        "cairn checkpoints of $1 ($(echo $cps))"
    assert_no_job_leftovers "$1"
}

# wait_for_job_socket DOM: the NBD socket of a running cairn backup job
# appears (sets JOB_SOCKET)
wait_for_job_socket() {
    JOB_SOCKET=$CAIRN_JOBS_BASE/$(dom_uuid "$1")/nbd.sock
    wait_for "[ -S '$JOB_SOCKET' ]" "${2:-30}"
}

# ---- independent scenarios

_FAILED_SCENARIOS=()
# scenario NAME CMD...: run CMD (a function of checks) in a subshell with
# errexit: a failure is recorded and the test goes on with the next
# scenario; finish_checks fails the test at the end. Background
# commands CMD started are killed when it ends.
scenario() {
    local name=$1 rc
    shift
    set +e
    (
        set -e
        _scenario_first_pg=${#_tracked_pgids[@]}
        trap _scenario_exit EXIT
        "$@"
    )
    rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
        _FAILED_SCENARIOS+=("$name")
        info "scenario $name FAILED (exit $rc); going on with the next one"
    fi
}
_scenario_exit() {
    local i pg
    for ((i = _scenario_first_pg; i < ${#_tracked_pgids[@]}; i++)); do
        pg=${_tracked_pgids[$i]}
        if group_alive "$pg"; then kill -KILL -- "-$pg" 2>/dev/null || true; fi
        wait "$pg" 2>/dev/null || true
    done
}
# defer_fail MESSAGE: a failure that does not stop the test (the checks
# after it stay meaningful); finish_checks fails the test at the end
_DEFERRED=$WORKDIR/deferred-failures
: >"$_DEFERRED"
defer_fail() {
    printf '%s: DEFERRED FAIL: %s\n' "$TEST_NAME" "$*" >&2
    printf '%s\n' "$*" >>"$_DEFERRED"
}

# finish_checks: at the end of a test: fail when a scenario failed, a
# deferred failure was recorded, or a process of the test lives on
finish_checks() {
    assert_no_leftover_processes
    if [ -s "$_DEFERRED" ]; then
        printf '%s: deferred failures:\n' "$TEST_NAME" >&2
        sed 's/^/    /' "$_DEFERRED" >&2
    fi
    [ "${#_FAILED_SCENARIOS[@]}" -eq 0 ] || fail "failed scenarios: ${_FAILED_SCENARIOS[*]}"
    [ ! -s "$_DEFERRED" ] || fail "$(wc -l <"$_DEFERRED") deferred failure(s), listed above"
}

# ---- instant restores

INSTANT_RUN=/run/cairn/instant

# stop_instant_servers NAME: the nbdkit servers an instant restore of NAME
# left (by their pid files, checked to be nbdkit), then its run directory
stop_instant_servers() {
    local f pid
    for f in "$INSTANT_RUN/$1"/*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nbdkit ]; then
            kill -TERM "$pid" 2>/dev/null || true
            wait_for "[ ! -e /proc/$pid ]" 10 || kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "${INSTANT_RUN:?}/$1"
}

# backup_three_points DOM: writes into vda and vdb (of 128M at least) of the
# running DOM, each followed by a backup, kept as references b1 (full), b2
# and b3 (incrementals; $WORKDIR/bN.json hold their summaries): every disk
# differs between any two points
backup_three_points() {
    info "full backup: random data and patterns in vda and vdb"
    ref_write "$1" vda random 0 16M
    ref_write "$1" vda 0x11 100M 1M
    ref_write "$1" vdb random 4M 8M
    ref_write "$1" vdb 0x21 40M 64k
    backup_dom "$WORKDIR/b1" "$1"
    assert_eq "$J_mode" full "mode of the first backup"
    ref_save "$1" b1

    info "incremental 1: overwrite parts of both disks"
    ref_write "$1" vda random 8M 4M
    ref_write "$1" vda 0x12 60M 2M
    ref_write "$1" vdb 0x22 4M 1M
    ref_write "$1" vdb random 50M 2M
    backup_dom "$WORKDIR/b2" "$1"
    assert_eq "$J_mode" incremental "mode of the second backup"
    ref_save "$1" b2

    info "incremental 2: more writes"
    ref_write "$1" vda 0x13 0 1M
    ref_write "$1" vda random 110M 3M
    ref_write "$1" vdb random 0 1M
    ref_write "$1" vdb 0x23 20M 64k
    backup_dom "$WORKDIR/b3" "$1"
    assert_eq "$J_mode" incremental "mode of the third backup"
    ref_save "$1" b3

    # the three points differ on both disks: restoring the wrong one is seen
    local d p q
    for d in vda vdb; do
        for p in b1:b2 b2:b3 b1:b3; do
            q=${p#*:} p=${p%:*}
            ! cmp -s "$(ref_at "$1" $d $p)" "$(ref_at "$1" $d $q)" ||
                fail "control: the references of $d at $p and $q are equal"
        done
    done
}

ensure_libvirtd
