#!/usr/bin/env bash
# policy-check.sh - `cairn policy check` on good and broken policy files:
# "ok" with each schedule's normalized form and next three trigger times;
# every problem as FILE:LINE (with a did-you-mean for misspelt names) and
# exit status 1; domain globs that match no libvirt domain as warnings (the
# libvirt test driver); `policy list` and `show`. Then `cairn verify
# --read-data-subset` reads the share of the chunks it is told, a new sample
# each run, and finds a corrupt chunk at 100% (and, sooner or later, at 10%).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

SRC=${CAIRN_SRCDIR:-$E2E_DIR/../..}
export CAIRN_CONFIG_DIR=$WORKDIR/etc
PD=$CAIRN_CONFIG_DIR/policies.d
CASES=$WORKDIR/cases
mkdir -p "$PD" "$CAIRN_CONFIG_DIR/remotes.d" "$CASES"
printf '[remote]\nurl = file://%s/offsite\n' "$WORKDIR" >"$CAIRN_CONFIG_DIR/remotes.d/offsite.conf"
# a fixed clock (Friday 2026-11-20 10:00 UTC) and zone: the next triggers are known
export TZ=UTC
CAIRN_FAKE_NOW=$(date -u -d 2026-11-20T10:00:00 +%s)
export CAIRN_FAKE_NOW
# libvirt is out of reach unless a check names the test driver
export LIBVIRT_DEFAULT_URI="qemu+unix:///system?socket=$WORKDIR/no-libvirt.sock"
OUT=$WORKDIR/out
ERR=$WORKDIR/err

# policy ARGS...: `cairn policy ARGS`, stdout in $OUT, stderr in $ERR; sets RC
policy() {
    RC=0
    "$CAIRN_BIN" policy "$@" >"$OUT" 2>"$ERR" || RC=$?
}

check "the example of etc/ passes, with its schedules' next triggers"
policy check "$SRC/etc/policies.d/example.conf"
assert_eq "$RC" 0 "exit status of policy check on the example (stderr: $(cat "$ERR"))"
assert_contains "$OUT" "example.conf: ok (policy example)"
assert_contains "$OUT" "normalized: *-*-* 01:30:00"
assert_contains "$OUT" "next:       Sat 2026-11-21 01:30:00 UTC"
assert_contains "$ERR" "domain names not checked" "stderr (libvirt is out of reach)"

check "a valid policy in policies.d: ok, normalized forms, next 3 triggers in local time"
cat >"$PD/web.conf" <<'EOF'
# the web tier
[policy]
domains = web01; web-*
schedule = daily; Mon..Fri 22:00; *:0/15
dirty-threshold = 1GiB
window = 22:00-06:00
[retention]
keep-daily = 7
[push]
targets = offsite
[verify]
schedule = Sun 04:00
read-data = 10%
EOF
policy check
assert_eq "$RC" 0 "exit status of policy check (stderr: $(cat "$ERR"))"
assert_contains "$OUT" "$PD/web.conf: ok (policy web)"
for line in "schedule 'daily'" "normalized: *-*-* 00:00:00" \
    "next:       Sat 2026-11-21 00:00:00 UTC" "Sun 2026-11-22 00:00:00 UTC" \
    "Mon 2026-11-23 00:00:00 UTC" \
    "normalized: Mon..Fri *-*-* 22:00:00" "next:       Fri 2026-11-20 22:00:00 UTC" \
    "Mon 2026-11-23 22:00:00 UTC" "Tue 2026-11-24 22:00:00 UTC" \
    "normalized: *-*-* *:00/15:00" "next:       Fri 2026-11-20 10:15:00 UTC" \
    "Fri 2026-11-20 10:30:00 UTC" "Fri 2026-11-20 10:45:00 UTC" \
    "verify schedule" "next:       Sun 2026-11-22 04:00:00 UTC"; do
    assert_contains "$OUT" "$line" "stdout of policy check"
done
check "the same in JSON; other time zones shift the local times"
RC=0
TZ=Europe/Berlin "$CAIRN_BIN" policy check --json >"$OUT" 2>"$ERR" || RC=$?
assert_eq "$RC" 0 "exit status of policy check --json"
assert_eq "$(json_get "$OUT" ok)" true "ok"
assert_eq "$(json_get "$OUT" files.0.policy)" web "files.0.policy"
assert_eq "$(json_get "$OUT" files.0.schedules.0.normalized)" "*-*-* 00:00:00" "normalized"
assert_eq "$(json_eval "$OUT" "j['files'][0]['schedules'][0]['next']")" \
    "$(printf '%s\n' 2026-11-21T00:00:00+01:00 2026-11-22T00:00:00+01:00 2026-11-23T00:00:00+01:00)" \
    "next triggers of 'daily' in Berlin"
assert_eq "$(json_get "$OUT" libvirt.checked)" false "libvirt.checked"

# ---- broken files: one problem each, with its line

# broken NAME LINE FRAGMENT <<TEXT: the file fails with "FILE:LINE: ...FRAGMENT"
broken() {
    local f=$CASES/$1.conf
    cat >"$f"
    policy check "$f"
    assert_eq "$RC" 1 "exit status of policy check on $1.conf"
    assert_contains "$OUT" "$f: invalid (1 problem)" "stdout of policy check on $1.conf"
    assert_contains "$ERR" "$f:$2: $3" "stderr of policy check on $1.conf"
    assert_eq "$(wc -l <"$ERR")" 1 "lines of stderr of policy check on $1.conf"
}

check "unknown keys and groups: FILE:LINE and a did-you-mean"
broken typo 3 "unknown key 'shedule' in [policy] (did you mean 'schedule'?)" <<'EOF'
[policy]
domains = web01
shedule = daily
schedule = hourly
EOF
broken group 4 "unknown group [retension] (did you mean [retention]?)" <<'EOF'
[policy]
domains = web01
schedule = daily
[retension]
keep-last = 3
EOF
broken misplaced 3 "key 'keep-daily' does not belong in [policy]: move it to [retention] or [push]" <<'EOF'
[policy]
domains = web01
keep-daily = 7
schedule = daily
EOF
broken quiesce 4 "quiesce: 'alwyas' is not auto, always or never (did you mean 'always'?)" <<'EOF'
[policy]
domains = web01
schedule = daily
quiesce = alwyas
EOF
broken remote 6 "targets: no remote 'ofsite' (did you mean 'offsite'?)" <<'EOF'
[policy]
domains = web01
schedule = daily

[push]
targets = ofsite
EOF

check "bad values: calendar, size, duration, window, counts, percentage"
broken calendar 3 "schedule: " <<'EOF'
[policy]
domains = web01
schedule = daily; Mon..Fri 25:00
EOF
broken size 4 "dirty-threshold: invalid size '1XB'" <<'EOF'
[policy]
domains = web01
schedule = daily
dirty-threshold = 1XB
EOF
broken duration 4 "timeout: invalid duration '6 hours'" <<'EOF'
[policy]
domains = web01
schedule = daily
timeout = 6 hours
EOF
broken window 4 "window: '22:00-30:00' is not HH:MM-HH:MM" <<'EOF'
[policy]
domains = web01
schedule = daily
window = 22:00-30:00
EOF
broken keep 5 "keep-last: '-1' is not a whole number from 0" <<'EOF'
[policy]
domains = web01
schedule = daily
[retention]
keep-last = -1
EOF
broken percent 5 "read-data: '10' is neither a whole percentage" <<'EOF'
[policy]
domains = web01
schedule = daily
[verify]
read-data = 10
EOF
check "a policy that names no domain, or never runs: the line of [policy]"
broken nodomain 2 "[policy] names no domain" <<'EOF'
# nothing to back up
[policy]
schedule = daily
EOF
broken never 2 "the policy never runs: give a 'schedule' (e.g. daily) and/or a 'dirty-threshold'" <<'EOF'
# no trigger
[policy]
domains = web01
[retention]
keep-last = 3
EOF
broken syntax 3 "'this is no key' is neither a [group], a KEY = VALUE line nor a # comment" <<'EOF'
[policy]
domains = web01
this is no key
schedule = daily
EOF

check "several problems in one file: all reported, in line order"
cat >"$CASES/many.conf" <<'EOF'
[policy]
domain = web01
schedule = dialy
[retention]
keep-weekly = many
[push]
targets = s3
EOF
policy check "$CASES/many.conf"
assert_eq "$RC" 1 "exit status of policy check on many.conf"
assert_contains "$OUT" "many.conf: invalid (5 problems)"
assert_eq "$(cut -d: -f2 "$ERR" | tr '\n' ' ')" "1 2 3 5 7 " "lines of the problems, in order"
assert_contains "$ERR" "many.conf:2: unknown key 'domain' in [policy] (did you mean 'domains'?)"

check "a missing file: exit status 1, 'cannot read'"
policy check "$CASES/none.conf"
assert_eq "$RC" 1 "exit status of policy check on a missing file"
assert_contains "$ERR" "$CASES/none.conf: cannot read"

check "good and bad files together: each judged, exit status 1, JSON lists the errors"
cp "$CASES/typo.conf" "$PD/typo.conf"
policy check
assert_eq "$RC" 1 "exit status of policy check with one invalid file"
assert_contains "$OUT" "$PD/typo.conf: invalid (1 problem)"
assert_contains "$OUT" "$PD/web.conf: ok (policy web)"
assert_contains "$OUT" "2 policy files: 1 ok, 1 invalid"
assert_contains "$ERR" "$PD/typo.conf:3: unknown key 'shedule'"
policy check --json
assert_eq "$RC" 1 "exit status of policy check --json with one invalid file"
assert_eq "$(json_get "$OUT" ok)" false "ok"
assert_eq "$(json_get "$OUT" files.0.ok)" false "files.0.ok (typo.conf)"
assert_eq "$(json_eval "$OUT" "j['files'][0]['errors'][0].startswith('$PD/typo.conf:3: ')")" \
    true "files.0.errors.0 starts with FILE:LINE"
assert_eq "$(json_get "$OUT" files.1.ok)" true "files.1.ok (web.conf)"

check "policy list / show: the valid policies, with defaults; an invalid one is reported"
policy list
assert_eq "$RC" 1 "exit status of policy list with an invalid file"
assert_contains "$OUT" "web"
assert_not_contains "$OUT" "typo"
assert_contains "$ERR" "$PD/typo.conf:3:"
rm "$PD/typo.conf"
policy list --json
assert_eq "$RC" 0 "exit status of policy list --json"
assert_eq "$(json_eval "$OUT" "[p['name'] for p in j]")" web "names in policy list --json"
policy show web --json
assert_eq "$RC" 0 "exit status of policy show web"
assert_eq "$(json_eval "$OUT" "j['push']['targets']")" offsite "push.targets"
assert_eq "$(json_get "$OUT" push.keep.daily)" 7 "push.keep.daily (defaults to [retention])"
assert_eq "$(json_get "$OUT" quiesce)" auto "quiesce (default)"
assert_eq "$(json_get "$OUT" dirty_threshold)" $((1 << 30)) "dirty_threshold"
assert_eq "$(json_get "$OUT" window)" "22:00-06:00" "window"
assert_eq "$(json_get "$OUT" verify.read_data_percent)" 10 "verify.read_data_percent"
assert_eq "$(json_get "$OUT" gc.grace)" 3600 "gc.grace (default)"
policy show web
assert_contains "$OUT" "dirty-check-interval  1min"
policy show webb
assert_eq "$RC" 1 "exit status of policy show of an unknown policy"
assert_contains "$ERR" "no policy 'webb'"
assert_contains "$ERR" "(did you mean 'web'?)"

check "libvirt reachable (test driver): globs that match no domain are warnings"
cat >"$PD/web.conf" <<'EOF'
[policy]
domains = test; tset; nosuch-*
schedule = daily
EOF
policy check --connect test:///default
assert_eq "$RC" 0 "exit status of policy check with warnings only"
assert_contains "$ERR" "$PD/web.conf:2: warning: domain 'tset' matches no domain on test:///default (did you mean 'test'?)"
assert_contains "$ERR" "$PD/web.conf:2: warning: domain 'nosuch-*' matches no domain"
assert_not_contains "$ERR" "domain 'test' matches"
assert_not_contains "$ERR" "not checked"
policy check --connect test:///default --json
assert_eq "$(json_get "$OUT" libvirt.checked)" true "libvirt.checked"
assert_eq "$(json_eval "$OUT" "len(j['files'][0]['warnings'])")" 2 "warnings in JSON"

check "unknown subcommand: did you mean"
policy chek
assert_eq "$RC" 2 "exit status of an unknown policy subcommand"
assert_contains "$ERR" "did you mean 'check'"

# ---- verify --read-data-subset

check "verify --read-data-subset: the share read rounds up; 100% reads every chunk"
unset CAIRN_FAKE_NOW
cairn init --chunk-size 64K >/dev/null
IMG=$WORKDIR/disk.raw
make_random_raw "$IMG" $((2 * 1024 * 1024)) # 32 chunks of 64 KiB
SNAP=$(cairn backup --image "$IMG" --name disk --json | json_get - id)
for share in 10%:4 1%:1 2.5%:1 50%:16 100%:32; do
    cairn verify --read-data-subset "${share%:*}" --json >"$OUT"
    assert_eq "$(json_get "$OUT" chunks)" 32 "chunks of verify --read-data-subset ${share%:*}"
    assert_eq "$(json_get "$OUT" chunks_read)" "${share#*:}" \
        "chunks read by verify --read-data-subset ${share%:*}"
    assert_eq "$(json_get "$OUT" ok)" true "ok of verify --read-data-subset ${share%:*}"
done
cairn verify --read-data-subset 10% >"$OUT"
assert_contains "$OUT" "a sample of 10%: 4 chunks read and re-hashed"

check "verify --read-data-subset: bad shares are refused"
for bad in 10 150% -5% abc; do
    expect_fail "$ERR" cairn verify --read-data-subset "$bad"
    assert_contains "$ERR" "invalid percentage" "stderr of verify --read-data-subset $bad"
done
expect_fail "$ERR" cairn verify --read-data --read-data-subset 10%
assert_contains "$ERR" "not both"

INDEX=$(cairn show "$SNAP" --json | json_get - disks.0.index)
cairn cat "$INDEX" >"$WORKDIR/index.bin"
chunk_id() {
    dd if="$WORKDIR/index.bin" bs=32 skip=$(($1 + 1)) count=1 status=none | od -An -tx1 | tr -d ' \n'
}
obj_path() { echo "$REPO/objects/${1:0:2}/$1"; }
C9=$(chunk_id 9)
P9=$(obj_path "$C9")
[ -f "$P9" ] || fail "chunk 9 ($C9) is not stored"
"$PYTHON" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
off = os.fstat(fd).st_size // 2
b = os.pread(fd, 1, off)
os.pwrite(fd, bytes([b[0] ^ 0xFF]), off)
os.close(fd)' "$P9"
info "flipped one byte of chunk $C9"

# --no-repair: the damaged chunk stays in place for the sampling check below
check "a corrupt chunk: found by --read-data-subset 100%, named, exit status 1"
rc=0
cairn verify --read-data-subset 100% --no-repair >"$OUT" 2>"$ERR" || rc=$?
assert_eq "$rc" 1 "exit status of verify --read-data-subset 100%"
assert_contains "$ERR" "$C9" "stderr of verify --read-data-subset 100%"
assert_contains "$ERR" "${SNAP:0:16}" "stderr of verify --read-data-subset 100%"
cairn verify >/dev/null || fail "plain verify (structure) failed on a data-only corruption"

check "a 10% sample draws other chunks each run: it finds the corrupt one within 200 runs"
runs=0 found=0
while [ "$runs" -lt 200 ] && [ "$found" -eq 0 ]; do
    runs=$((runs + 1))
    rc=0
    cairn verify --read-data-subset 10% --no-repair >/dev/null 2>"$ERR" || rc=$?
    case $rc in
        0) ;;
        1) assert_contains "$ERR" "$C9" "stderr of verify --read-data-subset 10%"; found=1 ;;
        *) fail "verify --read-data-subset 10% exited with $rc" ;;
    esac
done
[ "$found" -eq 1 ] || fail "200 samples of 10% never read the corrupt chunk"
info "found after $runs runs"

check "a missing chunk: found by any share (every chunk's presence is checked)"
C20=$(chunk_id 20)
rm "$(obj_path "$C20")"
rc=0
cairn verify --read-data-subset 0.1% >/dev/null 2>"$ERR" || rc=$?
assert_eq "$rc" 1 "exit status of verify --read-data-subset 0.1% with a missing chunk"
assert_contains "$ERR" "$C20" "stderr of verify --read-data-subset 0.1%"
assert_contains "$ERR" "missing" "stderr of verify --read-data-subset 0.1%"

check "cairnd.conf: every problem at once, each with FILE:LINE (a misspelled group too)"
CONFD=$WORKDIR/cairnd-conf
mkdir -p "$CONFD"
printf '[cairn]\nrepo = /srv/x\n\n[cairnd]\nmax-jobz = 2\nretries = many\n' >"$CONFD/cairnd.conf"
rc=0
CAIRN_CONFIG_DIR=$CONFD "$(dirname "$CAIRN_BIN")/cairnd" --check >"$OUT" 2>"$ERR" || rc=$?
assert_eq "$rc" 1 "exit status of cairnd --check with a broken cairnd.conf"
assert_contains "$ERR" "cairnd.conf:1: unknown group [cairn]" "stderr of cairnd --check"
assert_contains "$ERR" "cairnd.conf:5: unknown key 'max-jobz' in [cairnd] (did you mean 'max-jobs'?)" \
    "stderr of cairnd --check"
assert_contains "$ERR" "cairnd.conf:6: invalid value 'many' for retries" "stderr of cairnd --check"
