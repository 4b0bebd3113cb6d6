#!/usr/bin/env bash
# daemon-faults.sh - cairnd when things go wrong (real libvirtd, QEMU, S3):
#   restart: SIGTERM while a backup runs -> cairnd exits within the grace,
#     the backup either completed or was aborted cleanly (no libvirt job, no
#     scratch, no snapshot half-published, the repository verifies), and at
#     start the interrupted job runs again and succeeds, byte-identical.
#   status: `cairn status --json` and `cairn jobs --json` show the running
#     job with its step and then the finished one; a non-root client is
#     refused with a clear message; cairn cancel stops a running job cleanly.
#   hang: a backup that hangs (its process stopped) past the policy's timeout
#     is killed, the libvirt job it left is ended, the job is reported failed
#     with the reason, and the next run succeeds.
#   remote down: the local backup succeeds, the push is reported and kept
#     pending; once the remote is reachable the retry pushes it.
#   full: with less free space than min-free no backup starts; status says why.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/libvirt.sh"
. "$(dirname "$0")/s3.sh"
. "$(dirname "$0")/daemon-lib.sh"

start_ceph
make_bucket cairn-dmf
cairn init >/dev/null
DOM=cairn-e2e-dmf-a
define_domain "$DOM" 2 512M
# enough data that a full backup lasts a few seconds (TCG, NBD)
fill_random "$DOM" vda 0 320M
ref_write "$DOM" vdb random 1M 2M

write_policy slow <<EOF
[policy]
domains = $DOM
schedule = *-*-* 03:17:00
quiesce = never
timeout = 5min
EOF

# job_field JOBS.json ID KEY
job_field() {
    json_eval "$1" "[x.get('$3', '') for x in j if x['id'] == $2][0]"
}

# term_pending PID: a SIGTERM waits for PID (stopped) to take it
term_pending() {
    local mask
    mask=$(awk '/^(ShdPnd|SigPnd):/ { printf "%s ", $2 }' "/proc/$1/status" 2>/dev/null) || return 1
    for m in $mask; do
        (( (16#$m >> 14) & 1 )) && return 0
    done
    return 1
}

# hold_job ID: stop (SIGSTOP) the backup step of job ID once its libvirt
# backup job runs, before it has read much: backups of the test's data end
# in well under a second, too soon to be stopped or cancelled reliably
# while they run. Sets HELD_PID.
hold_job() {
    wait_for "cairn_jobs >'$WORKDIR/jobs.json' && [ -n \"\$(job_field '$WORKDIR/jobs.json' $1 pid)\" ] && [[ \$(virsh domjobinfo $DOM 2>/dev/null) =~ Backup ]]" 60 ||
        fail "job $1 does not start its libvirt backup job: $(cat "$WORKDIR/jobs.json")"
    HELD_PID=$(job_field "$WORKDIR/jobs.json" "$1" pid)
    kill -STOP "$HELD_PID"
}

run_job() { # prints the job id of `cairn run TARGET`
    "$CAIRN_BIN" run "$1" --json | json_eval - "j[0]"
}

# ---------------------------------------------------------------- restart
restart_scenario() {
    start_cairnd
    check "SIGTERM while a backup runs: a clean stop"
    local id t0 snaps_before
    snaps_before=$(snapshot_ids "$REPO" "$DOM" | wc -w)
    id=$(run_job "$DOM")
    # held, so that the stop interrupts it however fast it reads: it
    # resumes once cairnd's SIGTERM is pending for it
    hold_job "$id"
    local pid=$HELD_PID
    check "status --json shows the running job with its step"
    cairn_status >"$WORKDIR/st.json"
    assert_eq "$(json_eval "$WORKDIR/st.json" "[x['state'] for x in j['jobs'] if x['id'] == $id][0]")" running "state"
    assert_eq "$(json_eval "$WORKDIR/st.json" "[x['step'] for x in j['jobs'] if x['id'] == $id][0]")" backup "step"
    t0=$(date +%s)
    kill -TERM "$CAIRND_PID"
    wait_for "term_pending $pid" 10 || fail "cairnd did not pass SIGTERM on to the backup (pid $pid)"
    kill -CONT "$pid"
    wait_cairnd_exit
    info "cairnd stopped in $(($(date +%s) - t0)) s"
    assert_le $(($(date +%s) - t0)) 10 "seconds to stop"
    assert_no_job_leftovers "$DOM"
    cairn verify >/dev/null 2>"$WORKDIR/verify.err" || { cat "$WORKDIR/verify.err" >&2; fail "verify after the stop"; }
    local after
    after=$(snapshot_ids "$REPO" "$DOM" | wc -w)
    info "snapshots of $DOM: $snaps_before before, $after after the interrupted job"
    grep -E "job $id (cancelled|succeeded)" "$WORKDIR/cairnd.log" | sed 's/^/    log: /' ||
        fail "no outcome of job $id in the log"
    grep -qE "job $id succeeded" "$WORKDIR/cairnd.log" &&
        fail "job $id completed although it was held until cairnd's SIGTERM reached it"
    check "at start the interrupted job runs again and succeeds"
    start_cairnd
    wait_for "cairn_status >'$WORKDIR/st.json' && [ \"\$(status_entry '$WORKDIR/st.json' slow $DOM last_result)\" = succeeded ]" 120 ||
        fail "the interrupted backup did not run again: $(tail -n 5 "$WORKDIR/cairnd.log")"
    cairn_jobs >"$WORKDIR/jobs.json"
    json_eval "$WORKDIR/jobs.json" "[(x['id'], x['reason'], x['state']) for x in j]" | sed 's/^/    /'
    check "status --json shows the finished job"
    assert_eq "$(json_eval "$WORKDIR/jobs.json" "j[-1]['state']")" succeeded "state of the job after restart"
    assert_eq "$(json_eval "$WORKDIR/jobs.json" "j[-1]['reason']")" retry "reason of the job after restart"
    ref_save "$DOM" r1
    assert_restore "$DOM@latest" vdb "$(ref_at "$DOM" vdb r1)"
    check "a non-root client is refused"
    chmod 0755 "$WORKDIR"
    expect_fail "$WORKDIR/nonroot.err" setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$CAIRN_BIN" status
    assert_contains "$WORKDIR/nonroot.err" "permission denied: cairnd answers root only" "non-root"
    check "cairn cancel stops a running job cleanly"
    # 320 MiB changed: the incremental lasts long enough to be cancelled
    fill_random "$DOM" vda 0 320M
    id=$(run_job "$DOM")
    # held as in the restart check: the cancel must reach a running backup
    hold_job "$id"
    pid=$HELD_PID
    "$CAIRN_BIN" cancel "$id" >/dev/null || fail "cairn cancel $id"
    wait_for "term_pending $pid" 10 || fail "cairn cancel did not signal the backup (pid $pid)"
    kill -CONT "$pid"
    wait_for "cairn_jobs >'$WORKDIR/jobs.json' && [ \"\$(job_field '$WORKDIR/jobs.json' $id state)\" != running ]" 30 ||
        fail "job $id still runs after cancel"
    info "job $id: $(job_field "$WORKDIR/jobs.json" "$id" state): $(job_field "$WORKDIR/jobs.json" "$id" error)"
    assert_eq "$(job_field "$WORKDIR/jobs.json" "$id" state)" cancelled "state of the cancelled job"
    assert_no_job_leftovers "$DOM"
    expect_fail "$WORKDIR/cancel2.err" "$CAIRN_BIN" cancel 9999
    assert_contains "$WORKDIR/cancel2.err" "no job 9999" "cancel of an unknown job"
    stop_cairnd
}
scenario restart restart_scenario

# ---------------------------------------------------------------- hang
hang_scenario() {
    start_cairnd
    check "a backup that hangs past its timeout is killed and its libvirt job ended"
    local id pid
    sed -i 's/^timeout = .*/timeout = 6s/' "$POLICY_DIR/slow.conf"
    kill -HUP "$CAIRND_PID"
    sleep 1 # SIGHUP is handled at once
    # an incremental that reads 320 MiB lasts long enough, mostly: on a fast
    # machine the backup may be done before it is stopped; then again
    local attempt
    for attempt in 1 2 3 4; do
        fill_random "$DOM" vda 0 320M
        id=$(run_job "$DOM")
        wait_for "[[ \$(virsh domjobinfo $DOM 2>/dev/null) =~ Backup ]]" 30 ||
            fail "no libvirt backup job started"
        cairn_jobs >"$WORKDIR/jobs.json"
        pid=$(job_field "$WORKDIR/jobs.json" "$id" pid)
        [ -n "$pid" ] || fail "no pid for job $id"
        kill -STOP "$pid"
        [[ $(virsh domjobinfo "$DOM" 2>/dev/null) =~ Backup ]] && break
        info "attempt $attempt: the backup (pid $pid) ended its libvirt job before it was stopped"
        kill -CONT "$pid"
        wait_for "cairn_jobs >'$WORKDIR/jobs.json' && [ \"\$(job_field '$WORKDIR/jobs.json' $id state)\" != running ]" 60 ||
            fail "job $id does not end"
        [ "$attempt" -lt 4 ] || fail "the backup ended before it could be stopped, 4 times"
    done
    info "stopped cairn backup (pid $pid) while its libvirt job runs"
    wait_for "cairn_jobs >'$WORKDIR/jobs.json' && [ \"\$(job_field '$WORKDIR/jobs.json' $id state)\" = failed ]" 30 ||
        fail "the hung job was not ended"
    local err
    err=$(job_field "$WORKDIR/jobs.json" "$id" error)
    info "job $id: $err"
    [[ $err == *"timed out after 6 s"* ]] || fail "the error does not say the job timed out: $err"
    [[ $err == *"libvirt backup job it left was ended"* ]] || fail "the error does not say the libvirt job was ended: $err"
    wait_for "[[ \$(virsh domjobinfo $DOM) =~ Job\ type:\ *None ]]" 20 || fail "the libvirt job still runs"
    check "the next run succeeds"
    sed -i 's/^timeout = .*/timeout = 5min/' "$POLICY_DIR/slow.conf"
    kill -HUP "$CAIRND_PID"
    # the failed job is retried (retry-delay 2 s), maybe still with the old
    # timeout: let that settle first
    wait_for "cairn_jobs >'$WORKDIR/jobs.json' && [ \"\$(json_eval '$WORKDIR/jobs.json' \"len([x for x in j if x['state'] in ('queued', 'running')])\")\" = 0 ]" 120 ||
        fail "jobs still active after the hang"
    "$CAIRN_BIN" run "$DOM" --wait >"$WORKDIR/run.out" || { cat "$WORKDIR/run.out"; fail "the run after the hang failed"; }
    assert_after_live_backup "$DOM"
    stop_cairnd
}
scenario hang hang_scenario

# ---------------------------------------------------------------- remote down
remote_scenario() {
    # the remote first points at a port where nothing listens
    add_remote away cairn-dmf/r "http://127.0.0.1:9"
    write_policy slow <<EOF
[policy]
domains = $DOM
schedule = *-*-* 03:17:00
quiesce = never
[push]
targets = away
EOF
    start_cairnd
    check "remote down: the local backup succeeds and the push stays pending"
    ref_write "$DOM" vdb random 8M 1M
    "$CAIRN_BIN" run "$DOM" --wait --json >"$WORKDIR/run.json" || fail "the backup failed with the remote down"
    json_eval "$WORKDIR/run.json" "j[0]['result'].get('warnings', '')" | sed 's/^/    warning: /'
    assert_contains <(json_eval "$WORKDIR/run.json" "j[0]['result'].get('warnings', '')") "push away" "warning"
    cairn_status >"$WORKDIR/st.json"
    local snap
    snap=$(status_entry "$WORKDIR/st.json" slow "$DOM" last_snapshot)
    assert_contains <(status_entry "$WORKDIR/st.json" slow "$DOM" pending_push) "$snap" "pending pushes"
    "$CAIRN_BIN" status | grep 'waiting to be pushed' | sed 's/^/    /' || fail "status does not show the pending push"
    check "the remote is back: the retry pushes the snapshot"
    rm -f "$CAIRN_CONFIG_DIR/remotes.d/away.conf"
    add_remote away cairn-dmf/r
    wait_for "cairn_status >'$WORKDIR/st.json' && [ \"\$(status_entry '$WORKDIR/st.json' slow $DOM pending_push)\" = '{\"away\": []}' ]" 60 ||
        fail "the pending push was not retried: $(status_entry "$WORKDIR/st.json" slow "$DOM" pending_push)"
    assert_eq "$(snapshot_ids away "$DOM")" "$snap" "snapshots on the remote"
    stop_cairnd
}
scenario remote-down remote_scenario

# ---------------------------------------------------------------- full
full_scenario() {
    check "less free space than min-free: no backup starts, status says why"
    sed -i 's/^min-free = .*/min-free = 1000000GiB/' "$CAIRN_CONFIG_DIR/cairnd.conf"
    start_cairnd
    local id
    snapshot_ids "$REPO" "$DOM" >"$WORKDIR/ids-before-full"
    id=$(run_job "$DOM")
    sleep 3
    cairn_status >"$WORKDIR/st.json" || true
    assert_eq "$(json_eval "$WORKDIR/st.json" "[x['state'] for x in j['jobs'] if x['id'] == $id][0]")" queued "state of the job"
    assert_contains <(json_eval "$WORKDIR/st.json" "j['daemon'].get('space_problem', '')") "less than min-free" "status"
    "$CAIRN_BIN" status | grep 'min-free' | sed 's/^/    /'
    grep -q '^cairn_repository_space_low 1$' "$WORKDIR/cairn.prom" || defer_fail "metrics do not show the low space"
    "$CAIRN_BIN" cancel "$id" >/dev/null
    assert_eq "$(snapshot_ids "$REPO" "$DOM")" "$(cat "$WORKDIR/ids-before-full")" "snapshots"
    stop_cairnd
    sed -i 's/^min-free = .*/min-free = 1MiB/' "$CAIRN_CONFIG_DIR/cairnd.conf"
}
scenario full full_scenario

finish_s3
finish_checks
