# daemon-lib.sh - running cairnd in the daemon-*.sh tests (sourced after
# functions.sh and libvirt.sh).
#   write_policy NAME          stdin -> $CAIRN_CONFIG_DIR/policies.d/NAME.conf
#   start_cairnd [ARGS...]     cairnd in the background (its own process
#                              group, stopped at exit), waits until it answers
#   stop_cairnd                SIGTERM, waits for a clean exit (status 0)
#   cairn_status / cairn_jobs  JSON on stdout
#   status_entry FILE POLICY DOMAIN KEY   a domain entry's value in a status
#   snapshot_ids REPO DOMAIN   the domain's snapshot ids, sorted, one line

CAIRND_BIN=${CAIRND_BIN:-$(dirname "$CAIRN_BIN")/cairnd}
[ -x "$CAIRND_BIN" ] || fail "no cairnd binary at $CAIRND_BIN"
export CAIRN_CONFIG_DIR=${CAIRN_CONFIG_DIR:-$WORKDIR/etc}
export CAIRN_SOCKET=$WORKDIR/cairnd.sock
export CAIRN_STATE_DIR=$WORKDIR/state
export CAIRN_BIN
POLICY_DIR=$CAIRN_CONFIG_DIR/policies.d
mkdir -p "$POLICY_DIR" "$CAIRN_CONFIG_DIR/remotes.d"
# short delays: retries, kills and the domain list come quickly in tests
cat >"$CAIRN_CONFIG_DIR/cairnd.conf" <<CONF
[cairnd]
retry-delay = 2s
kill-grace = 3s
poll-interval = 2s
min-free = 1MiB
CONF

write_policy() {
    cat >"$POLICY_DIR/$1.conf"
}

# no_policies: remove every policy (a scenario starts from none, whatever
# the previous one left after a failure)
no_policies() {
    rm -f "$POLICY_DIR"/*.conf
}

CAIRND_PID=
start_cairnd() {
    setsid "$CAIRND_BIN" --repo "$REPO" --socket "$CAIRN_SOCKET" \
        --metrics "$WORKDIR/cairn.prom" "$@" >>"$WORKDIR/cairnd.log" 2>&1 &
    CAIRND_PID=$!
    _tracked_pgids+=("$CAIRND_PID")
    wait_for "\"$CAIRN_BIN\" jobs >/dev/null 2>&1 || ! kill -0 $CAIRND_PID 2>/dev/null" 20 ||
        fail "cairnd does not answer on $CAIRN_SOCKET"
    kill -0 "$CAIRND_PID" 2>/dev/null || {
        sed 's/^/    cairnd: /' "$WORKDIR/cairnd.log" >&2
        fail "cairnd exited at start"
    }
}

stop_cairnd() {
    kill -TERM "$CAIRND_PID"
    wait_cairnd_exit
}

# wait_cairnd_exit: after a SIGTERM, cairnd exits 0 and removes its socket
wait_cairnd_exit() {
    local rc=0
    wait "$CAIRND_PID" || rc=$?
    [ "$rc" -eq 0 ] || {
        tail -n 20 "$WORKDIR/cairnd.log" | sed 's/^/    cairnd: /' >&2
        fail "cairnd exited $rc after SIGTERM"
    }
    [ ! -e "$CAIRN_SOCKET" ] || fail "cairnd left its socket $CAIRN_SOCKET"
}

cairn_status() { "$CAIRN_BIN" status --json; }
cairn_jobs() { "$CAIRN_BIN" jobs --json; }

status_entry() {
    "$PYTHON" -c '
import json, sys
j = json.load(open(sys.argv[1]))
for p in j["policies"]:
    if p["name"] != sys.argv[2]:
        continue
    for e in p["domains"]:
        if e.get("domain") == sys.argv[3] and sys.argv[4] in e:
            v = e[sys.argv[4]]
            print(v if not isinstance(v, (list, dict)) else json.dumps(v))
' "$@"
}

snapshot_ids() {
    "$CAIRN_BIN" --repo "$1" snapshots --json | "$PYTHON" -c '
import json, sys
print(" ".join(sorted(s["id"] for s in json.load(sys.stdin) if s["name"] == sys.argv[1])))
' "$2"
}
