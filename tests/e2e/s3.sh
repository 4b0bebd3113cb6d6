# s3.sh - S3 (Ceph radosgw) helpers for the tests/e2e/s3-*.sh tests.
#
# Sourced after functions.sh. Gives:
#   start_ceph [OSDS [RGWS]]   a throw-away Ceph cluster with radosgw on
#                              127.0.0.1 (tests/e2e/ceph/ceph-rgw-up.sh), state
#                              in $WORKDIR/ceph, ports derived from the test's
#                              name (so tests can run in parallel), stopped at
#                              exit. Exports S3_ENDPOINT, S3_ENDPOINTS,
#                              AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
#                              AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION.
#   make_bucket NAME           create a bucket (curl --aws-sigv4)
#   add_remote NAME BUCKET/PREFIX [ENDPOINT [SECRET_KEY]]
#                              a 0600 credentials file + `cairn remote add`
#   s3_url BUCKET/PREFIX       s3://BUCKET/PREFIX (cairn reads AWS_* for it)
#   s3_ls BUCKET PREFIX        "KEY SIZE" lines, every page of ListObjectsV2
#   s3_count BUCKET PREFIX     number of keys under PREFIX
#   s3_get BUCKET KEY          the object's bytes on stdout
#   s3_get_all BUCKET PREFIX DIR   every object under PREFIX into DIR
#   s3_put BUCKET KEY FILE     overwrite/create an object (curl --aws-sigv4)
#   restore_cmp REPO SNAPSHOT ORIGINAL   restore vda to raw, cmp
#   soft ASSERTION...          a check whose failure does not stop the test
#   finish_s3                  stop proxy + cluster, no process left behind
#   start_fault_proxy UPSTREAM_PORT ARGS...   tests/e2e/fault-proxy.py in
#                              front of a gateway; sets PROXY_PORT and
#                              PROXY_STATS (its counters, JSON)
# $CAIRN_CONFIG_DIR is $WORKDIR/etc: remotes live in $WORKDIR/etc/remotes.d.

need ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl bc

CEPH_UP=$E2E_DIR/ceph/ceph-rgw-up.sh
CEPH_DOWN=$E2E_DIR/ceph/ceph-rgw-down.sh
export CAIRN_CONFIG_DIR=$WORKDIR/etc
mkdir -p "$CAIRN_CONFIG_DIR/remotes.d"
# the S3 settings come from start_ceph, nothing inherited
unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY \
    AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_CA_BUNDLE AWS_PROFILE \
    CEPH_S3_DIR CEPH_CONF
CEPH_S3_DIR=

# true when nothing listens on 127.0.0.1:PORT
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

stop_ceph() {
    [ -n "$CEPH_S3_DIR" ] || return 0
    CEPH_S3_DIR=$CEPH_S3_DIR "$CEPH_DOWN" >>"$WORKDIR/ceph-down.log" 2>&1
}

# start_ceph [OSDS [RGWS]]: mon on 3300+N, gateways on 7480+10*N (+1, +2 ...),
# N from a hash of the test's name, moved on while a port is taken
start_ceph() {
    local osds=${1:-1} rgws=${2:-1} n try p free t0
    n=$(($(printf %s "$TEST_NAME" | cksum | cut -d' ' -f1) % 97 + 1))
    CEPH_S3_DIR=$WORKDIR/ceph
    cleanup_fn stop_ceph
    t0=$(date +%s.%N)
    for try in $(seq 1 30); do
        CEPH_MON_PORT=$((3300 + n))
        CEPH_RGW_PORT=$((7480 + 10 * n))
        free=1
        for p in "$CEPH_MON_PORT" $(seq "$CEPH_RGW_PORT" $((CEPH_RGW_PORT + rgws - 1))); do
            port_free "$p" || { free=0; break; }
        done
        if [ "$free" = 1 ]; then
            if CEPH_S3_DIR=$CEPH_S3_DIR CEPH_S3_MON_PORT=$CEPH_MON_PORT \
                CEPH_S3_RGW_PORT=$CEPH_RGW_PORT CEPH_S3_OBJECTSTORE=memstore CEPH_S3_NO_MGR=1 \
                CEPH_S3_OSDS=$osds CEPH_S3_RGWS=$rgws CEPH_S3_BLOCK_GB=4 \
                "$CEPH_UP" >"$WORKDIR/ceph.env" 2>"$WORKDIR/ceph-up.log"; then
                break
            fi
            # a port taken between our check and its bind: next ports
            if ! grep -qE "already in use|did not answer" "$WORKDIR/ceph-up.log"; then
                sed 's/^/    /' "$WORKDIR/ceph-up.log" >&2
                fail "the Ceph cluster did not start (tests/e2e/ceph/ceph-rgw-up.sh)"
            fi
            stop_ceph
        fi
        [ "$try" -lt 30 ] || fail "no free ports for Ceph (tried 30 sets around 3300/7480)"
        n=$((n % 97 + 1))
    done
    set -a
    # shellcheck disable=SC1091
    . "$WORKDIR/ceph.env"
    set +a
    export AWS_ENDPOINT_URL=$S3_ENDPOINT
    info "Ceph ($osds OSD, $rgws radosgw) up in $(awk -v a="$t0" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%.1f", b - a }') s: $S3_ENDPOINTS (mon :$CEPH_MON_PORT)"
}

# curl signing with SigV4 for the S3 user of the cluster
s3_curl() {
    curl -sS --aws-sigv4 "aws:amz:$AWS_DEFAULT_REGION:s3" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

make_bucket() {
    local code
    code=$(s3_curl -o "$WORKDIR/make_bucket.out" -w '%{http_code}' -X PUT "$S3_ENDPOINT/$1") ||
        true
    [ "$code" = 200 ] || {
        cat "$WORKDIR/make_bucket.out" >&2 2>/dev/null || true
        fail "cannot create bucket '$1' at $S3_ENDPOINT (HTTP $code)"
    }
}

s3_put() {
    local code
    code=$(s3_curl -o "$WORKDIR/s3_put.out" -w '%{http_code}' -T "$3" "$S3_ENDPOINT/$1/$2") ||
        true
    [ "$code" = 200 ] || fail "cannot put '$2' into bucket '$1' (HTTP $code)"
}

s3_url() { echo "s3://$1"; }

# add_remote NAME BUCKET/PREFIX [ENDPOINT [SECRET_KEY]]
add_remote() {
    local name=$1 path=$2 endpoint=${3:-$S3_ENDPOINT} secret=${4:-$AWS_SECRET_ACCESS_KEY}
    local cred=$CAIRN_CONFIG_DIR/remotes.d/$name.credentials
    (umask 077 && printf '[credentials]\naccess_key = %s\nsecret_key = %s\n' \
        "$AWS_ACCESS_KEY_ID" "$secret" >"$cred")
    chmod 600 "$cred"
    "$CAIRN_BIN" remote add "$name" "s3://$path" --endpoint "$endpoint" \
        --region "$AWS_DEFAULT_REGION" --style path --credentials "$cred" >/dev/null ||
        fail "cairn remote add $name s3://$path failed"
}

# a small S3 client (SigV4, paging) for checks that must not trust cairn
_S3PY='
import datetime, hashlib, hmac, http.client, os, sys, urllib.parse
import xml.etree.ElementTree as ET
ep = urllib.parse.urlsplit(os.environ["S3_ENDPOINT"])
ak, sk = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
conn = http.client.HTTPConnection(ep.hostname, ep.port, timeout=60)
NS = {"s": "http://s3.amazonaws.com/doc/2006-03-01/"}

def q(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)

def req(method, bucket, key="", params=None, body=b""):
    path = "/" + bucket + ("/" + q(key, "-_.~/") if key else "")
    qs = "&".join("%s=%s" % (q(k), q(v)) for k, v in sorted((params or {}).items()))
    amz = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    ph = hashlib.sha256(body).hexdigest()
    h = {"host": ep.netloc, "x-amz-content-sha256": ph, "x-amz-date": amz}
    signed = ";".join(sorted(h))
    creq = "\n".join([method, path, qs, "".join("%s:%s\n" % (k, h[k]) for k in sorted(h)),
                      signed, ph])
    scope = "%s/%s/s3/aws4_request" % (amz[:8], region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + sk).encode()
    for part in (amz[:8], region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    h["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                          % (ak, scope, signed, sig))
    conn.request(method, path + ("?" + qs if qs else ""), body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit("s3 %s %s?%s: HTTP %d %r" % (method, path, qs, r.status, data[:300]))
    return data

def keys(bucket, prefix):
    token = None
    while True:
        p = {"list-type": "2", "prefix": prefix}
        if token:
            p["continuation-token"] = token
        root = ET.fromstring(req("GET", bucket, params=p))
        for c in root.findall("s:Contents", NS):
            yield c.find("s:Key", NS).text, int(c.find("s:Size", NS).text)
        if root.findtext("s:IsTruncated", namespaces=NS) != "true":
            return
        token = root.findtext("s:NextContinuationToken", namespaces=NS)

cmd, bucket = sys.argv[1], sys.argv[2]
if cmd == "ls":
    for k, n in keys(bucket, sys.argv[3]):
        print(k, n)
elif cmd == "count":
    print(sum(1 for _ in keys(bucket, sys.argv[3])))
elif cmd == "get":
    sys.stdout.buffer.write(req("GET", bucket, sys.argv[3]))
elif cmd == "getall":
    for k, n in list(keys(bucket, sys.argv[3])):
        dest = os.path.join(sys.argv[4], k)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(req("GET", bucket, k))
'
s3_ls() { "$PYTHON" -c "$_S3PY" ls "$1" "$2"; }
# one curl request when the listing fits in a page (fast enough to poll)
s3_count() {
    local out
    out=$(s3_curl "$S3_ENDPOINT/$1?list-type=2&prefix=$(printf %s "$2" | sed 's|/|%2F|g')") ||
        fail "cannot list bucket '$1'"
    if grep -qF '<IsTruncated>false</IsTruncated>' <<<"$out"; then
        { grep -oF '<Key>' <<<"$out" || true; } | wc -l
    else
        "$PYTHON" -c "$_S3PY" count "$1" "$2"
    fi
}
s3_get() { "$PYTHON" -c "$_S3PY" get "$1" "$2"; }
s3_get_all() { "$PYTHON" -c "$_S3PY" getall "$1" "$2" "$3"; }

# start_fault_proxy UPSTREAM_PORT [fault-proxy.py options]: in the
# background, stopped at exit; waits until it listens
start_fault_proxy() {
    local up=$1
    shift
    PROXY_STATS=$WORKDIR/proxy-stats.json
    local ready=$WORKDIR/proxy.port
    rm -f "$ready"
    setsid "$PYTHON" "$E2E_DIR/fault-proxy.py" --upstream "127.0.0.1:$up" \
        --ready-file "$ready" --stats-file "$PROXY_STATS" "$@" \
        >"$WORKDIR/proxy.log" 2>&1 &
    PROXY_PID=$!
    _tracked_pgids+=("$PROXY_PID")
    wait_for "[ -s '$ready' ] || ! kill -0 $PROXY_PID 2>/dev/null" 20 ||
        fail "the fault proxy did not start"
    [ -s "$ready" ] || { cat "$WORKDIR/proxy.log" >&2; fail "the fault proxy exited"; }
    # shellcheck disable=SC2034 # for the tests
    PROXY_PORT=$(cat "$ready")
}

# finish_s3: stop the proxy and the cluster now and check that no process of
# the test is left (cleanup would do the stopping too, unchecked)
finish_s3() {
    if [ -n "${PROXY_PID:-}" ] && group_alive "$PROXY_PID"; then
        kill -TERM -- "-$PROXY_PID" 2>/dev/null || true
        wait_for "! group_alive $PROXY_PID" 10 || kill -KILL -- "-$PROXY_PID" 2>/dev/null || true
    fi
    [ -z "${PROXY_PID:-}" ] || wait "$PROXY_PID" 2>/dev/null || true
    stop_ceph
    assert_no_leftover_processes
}

# soft ASSERTION...: run an assert_* (or any command that fails) in a
# subshell; a failure is recorded (the test fails at exit) and the test goes
# on, so one run reports every broken behaviour
soft() { ("$@") || defer_fail "(the check above)"; }

# restore_cmp REPO SNAPSHOT ORIGINAL: restore disk vda to raw and cmp
restore_cmp() {
    local out=$WORKDIR/restore-cmp.$$.raw
    "$CAIRN_BIN" --repo "$1" restore-disk "$2" vda --to "$out" --format raw >/dev/null ||
        fail "restore-disk $2 vda from $1 failed"
    cmp "$3" "$out" || fail "$2 vda restored from $1 differs from $3"
    rm -f "$out"
}
