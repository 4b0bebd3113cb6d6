#!/usr/bin/env bash
# live-bad-input.sh - `cairn backup DOMAIN` refuses bad input with a clear
# message and leaves nothing behind: an unknown domain (with "did you mean"
# for a near miss), a domain with only a cdrom and a network disk, a
# libvirt URI nobody listens on, --disk naming a missing disk, a bogus
# --quiesce (a usage error: exit 2), and --quiesce always without a guest
# agent (no job, no checkpoint, no scratch file, no snapshot).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/libvirt.sh"

DOM=cairn-e2e-$TEST_NAME
NODISK=$DOM-nodisk
AGENTLESS=$DOM-agentless
define_domain "$DOM" 2 16M
# a guest agent channel but no agent behind it (no OS): freezing fails
DOMAIN_EXTRA_DEVICES="<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>" \
    define_domain "$AGENTLESS" 1 16M
# a cdrom and a network disk: nothing cairn can back up
_remove_domain "$NODISK"
cleanup_fn _remove_domain "$NODISK"
cat >"$WORKDIR/nodisk.xml" <<EOF
<domain type='qemu'>
  <name>$NODISK</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/><target dev='sda' bus='sata'/><readonly/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='nbd' name='export'><host name='127.0.0.1' port='10809'/></source>
      <target dev='vdc' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF
virsh -q define "$WORKDIR/nodisk.xml" >/dev/null || fail "virsh define $NODISK failed"
track_uuid "$NODISK"
cairn init >/dev/null

# assert_nothing_left DOM...: no snapshot in the repository, no cairn
# checkpoint, no job, socket or scratch file
assert_nothing_left() {
    local d
    assert_eq "$(count_snapshots)" 0 "snapshots in the repository"
    for d in "$@"; do
        [ -z "$(cairn_checkpoints "$d")" ] || fail "cairn checkpoints of $d: $(cairn_checkpoints "$d")"
        assert_no_job_leftovers "$d"
    done
}

unknown_domain() {
    check "unknown domain, a near miss: exit != 0, 'did you mean' the right one"
    expect_fail "$WORKDIR/e1" cairn backup "${DOM}x"
    info "exit $LAST_RC: $(cat "$WORKDIR/e1")"
    assert_contains "$WORKDIR/e1" "did you mean '$DOM'" "error for a near miss"
    expect_fail "$WORKDIR/e1b" cairn backup "cairn-e2e-live-bad-inptu"
    assert_contains "$WORKDIR/e1b" "did you mean '$DOM'" "error for a transposition"
    check "unknown domain, nothing like it: exit != 0, no suggestion"
    expect_fail "$WORKDIR/e2" cairn backup no-such-domain-anywhere-42
    info "exit $LAST_RC: $(cat "$WORKDIR/e2")"
    assert_contains "$WORKDIR/e2" "no-such-domain-anywhere-42" "error for an unknown domain"
    assert_not_contains "$WORKDIR/e2" "did you mean" "error for a name like no other"
    assert_nothing_left "$DOM"
}

no_disk() {
    check "a domain with only a cdrom and a network disk: 'no disk to back up'"
    expect_fail "$WORKDIR/e3" cairn backup "$NODISK"
    info "exit $LAST_RC: $(tr '\n' ' ' <"$WORKDIR/e3")"
    assert_contains "$WORKDIR/e3" "no disk to back up" "error for a domain without a local disk"
    assert_contains "$WORKDIR/e3" "sda" "notes on the skipped cdrom"
    assert_contains "$WORKDIR/e3" "vdc" "notes on the skipped network disk"
    assert_nothing_left "$NODISK"
}

no_libvirtd() {
    check "--connect to a socket nobody listens on: an error mentioning libvirtd"
    expect_fail "$WORKDIR/e4" cairn backup "$DOM" --connect 'qemu+unix:///system?socket=/nonexistent'
    info "exit $LAST_RC: $(cat "$WORKDIR/e4")"
    assert_contains "$WORKDIR/e4" "libvirtd" "error for an unreachable libvirt"
    assert_nothing_left "$DOM"
}

missing_disk() {
    check "--disk vdz: an error listing the domain's disks"
    expect_fail "$WORKDIR/e5" cairn backup "$DOM" --disk vdz
    info "exit $LAST_RC: $(cat "$WORKDIR/e5")"
    assert_contains "$WORKDIR/e5" "vdz" "error for --disk vdz"
    assert_contains "$WORKDIR/e5" "vda" "error for --disk vdz (lists vda)"
    assert_contains "$WORKDIR/e5" "vdb" "error for --disk vdz (lists vdb)"
    assert_nothing_left "$DOM"
}

quiesce_always() {
    local d ms t0
    for d in "$DOM" "$AGENTLESS"; do
        check "--quiesce always on $d (no guest agent): fails, no job, checkpoint, scratch"
        t0=$(date +%s%N)
        expect_fail "$WORKDIR/e6" cairn backup "$d" --quiesce always
        ms=$((($(date +%s%N) - t0) / 1000000))
        info "exit $LAST_RC after $ms ms: $(cat "$WORKDIR/e6")"
        assert_contains "$WORKDIR/e6" "quiesce" "error of --quiesce always without an agent"
        assert_le "$ms" 30000 "milliseconds --quiesce always took to fail"
        assert_nothing_left "$d"
    done
    check "the same domain backs up with the default --quiesce auto (crash-consistent, a note)"
    backup_dom "$WORKDIR/ok" "$AGENTLESS"
    assert_eq "$J_consistency" crash "consistency without a working agent"
    assert_contains "$WORKDIR/ok.err" "agent" "note without a working agent"
    assert_after_live_backup "$AGENTLESS"
}

usage_errors() {
    check "--quiesce bogus: a usage error (exit 2) naming the valid modes"
    expect_fail "$WORKDIR/e7" cairn backup "$DOM" --quiesce bogus
    info "exit $LAST_RC: $(cat "$WORKDIR/e7")"
    assert_contains "$WORKDIR/e7" "bogus" "error for --quiesce bogus"
    assert_contains "$WORKDIR/e7" "always" "error for --quiesce bogus (valid modes)"
    assert_eq "$LAST_RC" 2 "exit status of a usage error (cairn(1): 2 on a usage error)"
}

scenario "unknown domain" unknown_domain
scenario "no disk" no_disk
scenario "no libvirtd" no_libvirtd
scenario "missing disk" missing_disk
scenario "usage errors" usage_errors
scenario "quiesce always" quiesce_always
finish_checks
exit 0
