#!/usr/bin/env bash
# prune-gc.sh - retention: snapshots taken over several days (CAIRN_FAKE_NOW,
# TZ=UTC); prune --dry-run only reports the plan, the real prune keeps
# exactly the expected snapshots, gc frees the rest, and every kept
# snapshot still restores to the data it was taken from.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"

export TZ=UTC
MIB=$((1024 * 1024))
cairn init >/dev/null
IMG=$WORKDIR/vm.raw
make_random_raw "$IMG" $((16 * MIB + 64 * 1024))

# snapshot times: two on day 1, two on day 2, one on day 3, two on day 4
TIMES=(2026-03-02T10:00:00 2026-03-02T15:30:00 2026-03-03T09:00:00 2026-03-03T20:45:00
    2026-03-04T08:00:00 2026-03-05T06:00:00 2026-03-05T07:10:00)
# --keep-last 1 --keep-daily 3 keeps the newest (#7), and the newest of the
# last 3 days: #7 (day 4), #5 (day 3), #4 (day 2)
KEEP_IDX=(4 5 7)
IDS=()
for i in "${!TIMES[@]}"; do
    n=$((i + 1))
    # change a few MiB (unaligned) between snapshots
    overwrite_random "$IMG" $((i * 2 * MIB + 123 * 1024)) $((2 * MIB))
    cp "$IMG" "$WORKDIR/vm.$n.raw"
    t=$(date -u -d "${TIMES[$i]}Z" +%s)
    CAIRN_FAKE_NOW=$t cairn backup --image "$IMG" --name vm --json >"$WORKDIR/b.json"
    IDS[n]=$(json_get "$WORKDIR/b.json" id)
    assert_eq "$(json_get "$WORKDIR/b.json" time)" "${TIMES[$i]}Z" "time of snapshot #$n"
done
# another name, left alone by rules that apply per name
make_random_raw "$WORKDIR/other.raw" $((1 * MIB))
CAIRN_FAKE_NOW=$(date -u -d 2026-03-01T00:00:00Z +%s) \
    cairn backup --image "$WORKDIR/other.raw" --name other --json >"$WORKDIR/b.json"
OTHER=$(json_get "$WORKDIR/b.json" id)
info "snapshots: ${IDS[*]:1} and $OTHER (other)"

expected_keep() {
    local k
    for k in "${KEEP_IDX[@]}"; do echo "${IDS[k]}"; done
    echo "$OTHER"
}
expected_keep | sort >"$WORKDIR/expected"

check "snapshots are listed oldest first with their fake times; NAME@TIME resolves"
cairn snapshots vm --json >"$WORKDIR/list.json"
assert_eq "$(json_eval "$WORKDIR/list.json" '" ".join(s["id"] for s in j)')" "${IDS[*]:1}" "order of vm's snapshots"
assert_eq "$(cairn show vm@2026-03-03T23:59 --json | json_get - id)" "${IDS[4]}" "vm@2026-03-03T23:59"
assert_eq "$(cairn show vm@~6 --json | json_get - id)" "${IDS[1]}" "vm@~6"

check "prune --keep-last 1 --keep-daily 3 --dry-run --json reports the plan and removes nothing"
STATE=$(repo_state)
cairn prune --keep-last 1 --keep-daily 3 --dry-run --json >"$WORKDIR/dry.json"
assert_eq "$(json_get "$WORKDIR/dry.json" dry_run)" true "dry_run"
assert_eq "$(json_get "$WORKDIR/dry.json" kept)" 4 "kept in the plan"
assert_eq "$(json_get "$WORKDIR/dry.json" removed)" 4 "removed in the plan"
json_eval "$WORKDIR/dry.json" '[s["id"] for s in j["snapshots"] if s["keep"]]' | sort >"$WORKDIR/plan-keep"
diff "$WORKDIR/expected" "$WORKDIR/plan-keep" >&2 || fail "the dry run plans to keep other snapshots"
assert_eq "$(json_eval "$WORKDIR/dry.json" 'len(j["snapshots"])')" 8 "snapshots in the plan"
assert_eq "$(json_eval "$WORKDIR/dry.json" \
    '[s["reasons"] for s in j["snapshots"] if s["id"] == "'"${IDS[7]}"'"][0]')" "last, daily" \
    "reasons to keep the newest snapshot"
assert_eq "$(repo_state)" "$STATE" "repository after the dry run"
assert_eq "$(count_snapshots)" 8 "snapshots after the dry run"

check "the real prune keeps exactly snapshots #4, #5, #7 of vm (and other)"
cairn prune --keep-last 1 --keep-daily 3 --json >"$WORKDIR/prune.json"
assert_eq "$(json_get "$WORKDIR/prune.json" dry_run)" false "dry_run"
assert_eq "$(json_get "$WORKDIR/prune.json" removed)" 4 "removed"
cairn snapshots --json | json_eval - '[s["id"] for s in j]' | sort >"$WORKDIR/left"
diff "$WORKDIR/expected" "$WORKDIR/left" >&2 || fail "prune kept other snapshots than expected"
for n in 1 2 3 6; do
    expect_fail "$WORKDIR/err" cairn show "${IDS[n]:0:12}"
    assert_contains "$WORKDIR/err" "no snapshot" "show of pruned snapshot #$n"
done
objects_before=$(count_objects)

check "gc --grace 0 --json deletes the pruned snapshots' objects (> 0)"
cairn gc --grace 0 --json >"$WORKDIR/gc.json"
deleted=$(json_get "$WORKDIR/gc.json" objects_deleted)
info "gc: $deleted of $objects_before objects deleted, $(json_get "$WORKDIR/gc.json" bytes_deleted) bytes"
assert_gt "$deleted" 0 "objects_deleted"
assert_eq "$(json_get "$WORKDIR/gc.json" snapshots)" 4 "snapshots seen by gc"
assert_eq "$(count_objects)" "$(json_get "$WORKDIR/gc.json" objects_live)" "object files after gc"
assert_eq "$((objects_before - deleted))" "$(count_objects)" "object files after gc"
check "a second gc finds nothing more to delete"
assert_eq "$(cairn gc --grace 0 --json | json_get - objects_deleted)" 0 "objects deleted by a second gc"

check "verify --read-data is clean"
cairn verify --read-data >/dev/null || fail "verify --read-data after prune and gc"

check "every kept snapshot restores to the data it was taken from"
for n in "${KEEP_IDX[@]}"; do
    cairn restore-disk "${IDS[n]}" vda --to "$WORKDIR/out.raw" >/dev/null
    cmp "$WORKDIR/vm.$n.raw" "$WORKDIR/out.raw" || fail "snapshot #$n restores differently"
    rm -f "$WORKDIR/out.raw"
done
cairn restore-disk other@latest vda --to "$WORKDIR/out.raw" >/dev/null
cmp "$WORKDIR/other.raw" "$WORKDIR/out.raw" || fail "other restores differently"
assert_no_leftover_processes
exit 0
