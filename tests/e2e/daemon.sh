#!/usr/bin/env bash
# daemon.sh - cairnd with real libvirtd, QEMU and S3 (Ceph radosgw):
#   schedule: a policy with a 20 s schedule backs up two domains (three
#     disks) and pushes to S3 again and again while the disks get new writes
#     between runs; retention keeps exactly the newest 2 locally and 3 on the
#     bucket, and every kept snapshot restores byte-identical (locally and
#     from the bucket); the Prometheus textfile has the figures.
#   catch-up: cairnd stopped across three scheduled times runs exactly one
#     catch-up when it starts again, and nothing after.
#   window: a run scheduled outside the policy's window is shown (status
#     --json backup_starts, the text's NEXT RUN) at the window's start, and
#     its job waits for it.
#   reload: SIGHUP with a broken policy logs FILE:LINE and keeps the old
#     policy running; with a valid change the new schedule applies.
#   dirty: the change-driven trigger (for a domain chosen by a libvirt
#     metadata tag) backs up a domain without a backup, then
#     not after 4 MiB of writes (threshold 8 MiB; the status text shows
#     them as CHANGED), and does after 10 MiB.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/libvirt.sh"
. "$(dirname "$0")/s3.sh"
. "$(dirname "$0")/daemon-lib.sh"

start_ceph
make_bucket cairn-daemon
add_remote s3 cairn-daemon/fleet
cairn init >/dev/null

# domains are defined here, not in the scenarios (subshells): their
# removal at exit is registered in this shell
DA=cairn-e2e-dmn-fleet-a
DB=cairn-e2e-dmn-fleet-b
DC=cairn-e2e-dmn-c
DD=cairn-e2e-dmn-d
define_domain "$DA" 2 32M
define_domain "$DB" 1 32M
define_domain "$DC" 1 64M
define_domain "$DD" 1 16M

# ---------------------------------------------------------------- schedule
schedule_scenario() {
    no_policies
    write_policy fleet <<EOF
[policy]
domains = cairn-e2e-dmn-fleet-*
schedule = *:*:0/20
quiesce = never
[retention]
keep-last = 2
[push]
targets = s3
keep-last = 3
EOF
    start_cairnd
    local round=0 want=4 dom snap
    declare -A seen=() count=()
    count[$DA]=0 count[$DB]=0
    local deadline=$(($(date +%s) + 200))
    while [ "${count[$DA]}" -lt $want ] || [ "${count[$DB]}" -lt $want ]; do
        [ "$(date +%s)" -lt $deadline ] || fail "fewer than $want scheduled backups in 200 s: ${count[*]}"
        cairn_status >"$WORKDIR/st.json" || fail "cairn status failed"
        for dom in "$DA" "$DB"; do
            snap=$(status_entry "$WORKDIR/st.json" fleet "$dom" last_snapshot)
            [ -n "$snap" ] && [ "$snap" != "${seen[$dom]:-}" ] || continue
            # a finished job (backup, prune, push, prune on s3): the disk
            # held what its references hold now
            seen[$dom]=$snap
            count[$dom]=$((count[$dom] + 1))
            ref_save "$dom" "$snap"
            echo "$snap" >>"$WORKDIR/snaps-$dom"
            info "$dom: scheduled backup ${count[$dom]}: ${snap:0:12}" \
                "($(status_entry "$WORKDIR/st.json" fleet "$dom" bytes_new) bytes new)"
            if [ "${count[$dom]}" -lt $want ]; then
                # new data before the next run (20 s away at most, a run takes ~3 s)
                ref_write "$dom" vda random $((count[$dom] * MIB)) 512k
                [ "$dom" != "$DA" ] || ref_write "$dom" vdb 0x$((count[$dom] + 40)) $((count[$dom] * 3 * MIB)) 1M
            fi
        done
        sleep 0.5
    done
    # no more triggers (same policy otherwise: a run still going ends with
    # its prune and push); the disks get no more writes, so a run after the
    # last one seen holds what the references hold now
    sed -i 's/^schedule = .*/schedule = *-*-* 03:17:00/' "$POLICY_DIR/fleet.conf"
    kill -HUP "$CAIRND_PID"
    wait_for "cairn_jobs >'$WORKDIR/jobs.json' && [ \"\$(json_eval '$WORKDIR/jobs.json' \"len([x for x in j if x['state'] in ('queued', 'running')])\")\" = 0 ]" 60 ||
        fail "jobs still run after the schedule was turned off"
    for dom in "$DA" "$DB"; do
        for snap in $(json_eval "$WORKDIR/jobs.json" "[x['result']['snapshot'] for x in j if x['domain'] == '$dom' and x['state'] == 'succeeded']"); do
            grep -qx "$snap" "$WORKDIR/snaps-$dom" && continue
            info "$dom: one more scheduled run before the schedule was turned off: ${snap:0:12}"
            ref_save "$dom" "$snap"
            echo "$snap" >>"$WORKDIR/snaps-$dom"
        done
    done
    check "every run was scheduled (no manual run), and succeeded"
    json_eval "$WORKDIR/jobs.json" "[ (x['domain'], x['reason'], x['state']) for x in j if x['kind'] == 'backup']" |
        sed 's/^/    /'
    assert_eq "$(json_eval "$WORKDIR/jobs.json" "len([x for x in j if x['kind'] == 'backup' and x['state'] != 'succeeded'])")" 0 \
        "backup jobs that did not succeed"
    assert_eq "$(json_eval "$WORKDIR/jobs.json" "len([x for x in j if x['kind'] == 'backup' and x['reason'] != 'schedule'])")" 0 \
        "backup jobs not started by the schedule"
    stop_cairnd

    check "local retention keep-last 2, remote keep-last 3: exactly the newest"
    for dom in "$DA" "$DB"; do
        assert_eq "$(snapshot_ids "$REPO" "$dom")" "$(tail -n 2 "$WORKDIR/snaps-$dom" | sort | xargs)" \
            "local snapshots of $dom"
        assert_eq "$(snapshot_ids s3 "$dom")" "$(tail -n 3 "$WORKDIR/snaps-$dom" | sort | xargs)" \
            "snapshots of $dom on the bucket"
    done

    check "every kept snapshot restores byte-identical, locally and from the bucket"
    for dom in "$DA" "$DB"; do
        for snap in $(snapshot_ids "$REPO" "$dom"); do
            for disk in $( [ "$dom" = "$DA" ] && echo vda vdb || echo vda); do
                assert_restore "$snap" "$disk" "$(ref_at "$dom" "$disk" "$snap")"
            done
        done
        for snap in $(snapshot_ids s3 "$dom"); do
            rm -f "$WORKDIR/r.raw"
            "$CAIRN_BIN" --repo s3 restore-disk "$snap" vda --to "$WORKDIR/r.raw" --format raw \
                >/dev/null 2>"$WORKDIR/r.err" || { cat "$WORKDIR/r.err" >&2; fail "restore of $snap from s3"; }
            cmp "$WORKDIR/r.raw" "$(ref_at "$dom" vda "$snap")" || fail "$dom $snap from s3 differs"
        done
    done

    check "the Prometheus textfile has each domain's last success and bytes"
    for dom in "$DA" "$DB"; do
        grep -q "^cairn_backup_last_success_timestamp_seconds{domain=\"$dom\",policy=\"fleet\"} [0-9]" \
            "$WORKDIR/cairn.prom" || fail "no last success metric for $dom"
        grep -q "^cairn_backup_last_status{domain=\"$dom\",policy=\"fleet\"} 1$" "$WORKDIR/cairn.prom" ||
            fail "no last status 1 for $dom"
        grep -q "^cairn_push_last_bytes_sent{domain=\"$dom\",policy=\"fleet\"} [0-9]" \
            "$WORKDIR/cairn.prom" || fail "no push bytes metric for $dom"
    done
    rm -f "$POLICY_DIR/fleet.conf"
}
scenario schedule schedule_scenario

# ---------------------------------------------------------------- catch-up
catchup_scenario() {
    no_policies
    local t0 t1 t2 t3
    t0=$(date +%s)
    t1=$((t0 + 10)) t2=$((t0 + 18)) t3=$((t0 + 26))
    write_policy catchup <<EOF
[policy]
domains = $DD
schedule = $(date -d "@$t1" '+%Y-%m-%d %H:%M:%S');$(date -d "@$t2" '+%Y-%m-%d %H:%M:%S');$(date -d "@$t3" '+%Y-%m-%d %H:%M:%S')
quiesce = never
EOF
    start_cairnd
    wait_for "cairn_status >'$WORKDIR/st.json' && [ -n \"\$(status_entry '$WORKDIR/st.json' catchup $DD backup_next)\" ]" 20 ||
        fail "cairnd does not schedule $DD"
    assert_eq "$(status_entry "$WORKDIR/st.json" catchup "$DD" backup_next)" "$t1" "next run of $DD"
    check "cairnd stopped across the three scheduled times, then started: one catch-up run"
    stop_cairnd
    sleep $((t3 + 2 - $(date +%s)))
    start_cairnd
    wait_for "cairn_status >'$WORKDIR/st.json' && [ \"\$(status_entry '$WORKDIR/st.json' catchup $DD last_result)\" = succeeded ]" 60 ||
        fail "no catch-up backup of $DD"
    sleep 5 # time for a second run, were there one
    cairn_jobs >"$WORKDIR/jobs.json"
    assert_eq "$(json_eval "$WORKDIR/jobs.json" "len([x for x in j if x['domain'] == '$DD'])")" 1 "jobs of $DD"
    assert_eq "$(json_eval "$WORKDIR/jobs.json" "[x['reason'] for x in j if x['domain'] == '$DD'][0]")" \
        "catch-up of a missed run" "reason of the run"
    assert_eq "$(snapshot_ids "$REPO" "$DD" | wc -w)" 1 "snapshots of $DD"
    stop_cairnd
    rm -f "$POLICY_DIR/catchup.conf"
}
scenario catch-up catchup_scenario

# ---------------------------------------------------------------- window
window_scenario() {
    no_policies
    local t1 open before
    t1=$(($(date +%s) + 8))
    open=$((($(date +%s) + 7200) / 60 * 60)) # opens in about 2 hours
    before=$(snapshot_ids "$REPO" "$DD" | wc -w)
    write_policy night <<EOF
[policy]
domains = $DD
schedule = $(date -d "@$t1" '+%Y-%m-%d %H:%M:%S')
window = $(date -d "@$open" +%H:%M)-$(date -d "@$((open + 3600))" +%H:%M)
quiesce = never
EOF
    start_cairnd
    check "a run scheduled outside the window: status says when it starts"
    wait_for "cairn_status >'$WORKDIR/st.json' && [ -n \"\$(status_entry '$WORKDIR/st.json' night $DD backup_next)\" ]" 20 ||
        fail "cairnd does not schedule $DD"
    assert_eq "$(status_entry "$WORKDIR/st.json" night "$DD" backup_next)" "$t1" "scheduled run of $DD"
    assert_eq "$(status_entry "$WORKDIR/st.json" night "$DD" backup_starts)" "$open" "start of $DD's run"
    "$CAIRN_BIN" status >"$WORKDIR/st.txt" || fail "cairn status failed"
    grep "^  $DD " "$WORKDIR/st.txt" | sed 's/^/    /'
    grep "^  $DD " "$WORKDIR/st.txt" | grep -q "$(date -d "@$open" '+%Y-%m-%d %H:%M:%S')" ||
        fail "the status text does not show the window's start as the next run"
    check "at the scheduled time the job waits for the window, nothing is backed up"
    wait_for "cairn_jobs >'$WORKDIR/jobs.json' && json_eval '$WORKDIR/jobs.json' \"[x.get('waiting') or '' for x in j if x['domain'] == '$DD']\" | grep -q window" 30 ||
        fail "no job of $DD waiting for the window"
    assert_eq "$(snapshot_ids "$REPO" "$DD" | wc -w)" "$before" "snapshots of $DD"
    stop_cairnd
    rm -f "$POLICY_DIR/night.conf"
}
scenario window window_scenario

# ---------------------------------------------------------------- reload
reload_scenario() {
    no_policies
    write_policy hup <<EOF
[policy]
domains = $DB
schedule = *-*-* 03:17:00
quiesce = never
EOF
    # systemd's notification socket (Type=notify): a datagram listener
    local nsock=$WORKDIR/notify.sock
    setsid "$PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
        out.flush()
' "$nsock" "$WORKDIR/notify.log" &
    _tracked_pgids+=("$!")
    wait_for "[ -S '$nsock' ]" 10
    NOTIFY_SOCKET=$nsock start_cairnd
    check "sd_notify: READY=1 once the control socket answers"
    wait_for "grep -q '^READY=1' '$WORKDIR/notify.log'" 5 || fail "no READY=1: $(cat "$WORKDIR/notify.log")"
    check "SIGHUP with a broken policy: FILE:LINE logged, the old policy keeps running"
    write_policy hup <<EOF
[policy]
domains = $DB
schedule = *:*:0/5
scheduel = daily
EOF
    local logn
    logn=$(wc -l <"$WORKDIR/cairnd.log")
    kill -HUP "$CAIRND_PID"
    wait_for "tail -n +$((logn + 1)) '$WORKDIR/cairnd.log' | grep -q 'hup.conf:4:'" 10 ||
        fail "no FILE:LINE error for the broken policy in the log: $(tail -n 5 "$WORKDIR/cairnd.log")"
    tail -n +$((logn + 1)) "$WORKDIR/cairnd.log" | grep 'hup.conf:4:' | sed 's/^/    log: /'
    local strc=0
    cairn_status >"$WORKDIR/st.json" || strc=$?
    assert_eq "$strc" 1 "exit status of status --json with a refused policy file"
    assert_eq "$(json_eval "$WORKDIR/st.json" "[p['schedule'] for p in j['policies'] if p['name'] == 'hup'][0]")" \
        "*-*-* 03:17:00" "schedule in force"
    assert_eq "$(json_eval "$WORKDIR/st.json" "len(j['daemon']['policy_errors'])")" 1 "policy errors shown"
    sleep 6
    cairn_jobs >"$WORKDIR/jobs.json"
    assert_eq "$(json_eval "$WORKDIR/jobs.json" "len([x for x in j if x['policy'] == 'hup'])")" 0 \
        "jobs of the broken version"
    check "SIGHUP with a valid change: the new schedule applies"
    write_policy hup <<EOF
[policy]
domains = $DB
schedule = *:*:0/5
quiesce = never
EOF
    kill -HUP "$CAIRND_PID"
    wait_for "cairn_jobs >'$WORKDIR/jobs.json' && [ \"\$(json_eval '$WORKDIR/jobs.json' \"len([x for x in j if x['policy'] == 'hup' and x['state'] == 'succeeded'])\")\" -ge 1 ]" 30 ||
        fail "the new schedule did not run a backup"
    cairn_status >"$WORKDIR/st.json" || fail "status --json after the fix exited non-zero"
    assert_eq "$(json_eval "$WORKDIR/st.json" "len(j['daemon']['policy_errors'])")" 0 "policy errors after the fix"
    stop_cairnd
    check "sd_notify: RELOADING=1 and READY=1 at each reload, STOPPING=1 at the stop"
    sed 's/^/    notify: /' "$WORKDIR/notify.log"
    assert_eq "$(grep -c '^RELOADING=1' "$WORKDIR/notify.log")" 2 "RELOADING=1 messages"
    assert_eq "$(grep -c '^READY=1' "$WORKDIR/notify.log")" 3 "READY=1 messages"
    assert_eq "$(grep -c '^STOPPING=1' "$WORKDIR/notify.log")" 1 "STOPPING=1 messages"
    rm -f "$POLICY_DIR/hup.conf"
}
scenario reload reload_scenario

# ---------------------------------------------------------------- dirty
dirty_scenario() {
    no_policies
    # chosen by a tag of its libvirt metadata, not by name
    virsh -q metadata "$DC" --uri https://cairn.dev/xmlns/tags/1 --key cairn \
        --set '<tags>prod busy-db</tags>' >/dev/null || fail "virsh metadata $DC failed"
    write_policy busy <<EOF
[policy]
tags = busy-*
dirty-threshold = 8MiB
dirty-check-interval = 1s
quiesce = never
EOF
    start_cairnd
    check "a domain without a backup is backed up by the change-driven trigger"
    wait_for "cairn_status >'$WORKDIR/st.json' && [ \"\$(status_entry '$WORKDIR/st.json' busy $DC last_result)\" = succeeded ]" 60 ||
        fail "no first backup of $DC"
    check "4 MiB of writes (threshold 8 MiB): no backup"
    ref_write "$DC" vda random 0 4M
    sleep 6
    cairn_jobs >"$WORKDIR/jobs.json"
    assert_eq "$(json_eval "$WORKDIR/jobs.json" "len([x for x in j if x['domain'] == '$DC'])")" 1 \
        "jobs of $DC after 4 MiB"
    cairn_status >"$WORKDIR/st.json"
    local dirty
    dirty=$(status_entry "$WORKDIR/st.json" busy "$DC" dirty_bytes)
    info "dirty bytes cairnd reads for $DC: $dirty"
    assert_ge "${dirty:-0}" $((4 * MIB)) "dirty bytes after 4 MiB of writes"
    "$CAIRN_BIN" status | grep "^  $DC " | grep -q " MiB " ||
        fail "the status text has no changed bytes for $DC: $("$CAIRN_BIN" status | grep "^  $DC ")"
    check "6 MiB more: the trigger fires"
    ref_write "$DC" vda random 16M 6M
    wait_for "cairn_jobs >'$WORKDIR/jobs.json' && [ \"\$(json_eval '$WORKDIR/jobs.json' \"len([x for x in j if x['domain'] == '$DC' and x['state'] == 'succeeded'])\")\" -ge 2 ]" 40 ||
        fail "no backup after 10 MiB of writes"
    json_eval "$WORKDIR/jobs.json" "[x['reason'] for x in j if x['domain'] == '$DC']" | sed 's/^/    reason: /'
    assert_contains <(json_eval "$WORKDIR/jobs.json" "[x['reason'] for x in j if x['domain'] == '$DC'][1]") \
        "dirty: 10" "reason of the second backup"
    ref_save "$DC" b2
    assert_restore "$DC@latest" vda "$(ref_at "$DC" vda b2)"
    stop_cairnd
    rm -f "$POLICY_DIR/busy.conf"
}
scenario dirty dirty_scenario

finish_s3
finish_checks
