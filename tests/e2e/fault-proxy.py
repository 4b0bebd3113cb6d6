#!/usr/bin/env python3
"""fault-proxy.py - an HTTP/1.1 forwarding proxy that injects S3 faults.

Used by tests/e2e/s3-faults.sh in front of radosgw: the client (cairn) is
given the proxy's address as its S3 endpoint. Requests are forwarded byte
for byte (request line, headers including Host, body), so SigV4 signatures
made for the proxy's address stay valid: RGW checks them with the Host
header it receives. Responses are forwarded as they come, except that:

  * every Nth request (--slowdown-every) is answered by the proxy itself
    with "503 SlowDown" and an S3 XML error body (not forwarded);
  * every Mth request (--drop-every) is forwarded, the server's answer is
    read, then the connection is reset after half of the response head
    (the server did act on the request: a PUT did store its object);
  * every Kth GET (--truncate-every) whose answer is a 2xx with a body
    gets its full head (Content-Length included) but only half of the
    body, then the connection is closed.

A request (method + target) never gets more than --max-faults faults in a
row, so a client that retries a few times always gets through. Counters go
to --stats-file (JSON, rewritten atomically after every request); the
listening port goes to --ready-file once the proxy accepts connections.
Standard library only.
"""
import argparse
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading

STATS = {"connections": 0, "requests": 0, "forwarded": 0, "slowdown": 0, "drop": 0,
         "truncate": 0, "upstream_errors": 0}
LOCK = threading.Lock()
ARGS = None
COUNT = {"all": 0, "get": 0}
RUN = {}  # (method, target) -> faults in a row


class Closed(Exception):
    pass


def write_stats():
    tmp = ARGS.stats_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(STATS, f, sort_keys=True)
    os.replace(tmp, ARGS.stats_file)


def bump(name):
    with LOCK:
        STATS[name] += 1
        if ARGS.stats_file:
            write_stats()


def read_head(rfile):
    """Raw bytes of a message head (start line + headers + empty line)."""
    lines = []
    while True:
        line = rfile.readline(65537)
        if not line:
            if lines:
                raise Closed("connection closed inside a message head")
            raise Closed("connection closed")
        if not lines and line in (b"\r\n", b"\n"):
            continue  # tolerate stray empty lines between messages
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def parse_head(raw):
    text = raw.decode("latin-1")
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    start = lines[0]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.setdefault(k.strip().lower(), v.strip())
    return start, headers


def read_exact(rfile, n):
    data = rfile.read(n)
    if len(data) != n:
        raise Closed("connection closed inside a body")
    return data


def read_chunked(rfile):
    """Raw bytes of a chunked body, trailers included, as received."""
    out = []
    while True:
        line = rfile.readline(65537)
        if not line:
            raise Closed("connection closed inside a chunked body")
        out.append(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers up to the empty line
                t = rfile.readline(65537)
                if not t:
                    raise Closed("connection closed inside chunk trailers")
                out.append(t)
                if t in (b"\r\n", b"\n"):
                    return b"".join(out)
        out.append(read_exact(rfile, size + 2))


def read_body(rfile, headers):
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return read_chunked(rfile), True
    n = int(headers.get("content-length", "0") or "0")
    return (read_exact(rfile, n) if n else b""), False


def reset(sock):
    """Close with RST: the peer sees the connection dropped."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def slowdown_response(method, target, n):
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
            "<Message>Please reduce your request rate. (fault-proxy)</Message>"
            "<Resource>%s</Resource><RequestId>fault-proxy-%d</RequestId></Error>"
            % (target.split("?", 1)[0], n)).encode()
    head = ("HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
            "Content-Length: %d\r\nRetry-After: 0\r\nx-amz-request-id: fault-proxy-%d\r\n\r\n"
            % (len(body), n)).encode()
    return head + (b"" if method == "HEAD" else body)


def choose_fault(method, target):
    """The fault planned for this request: None, slowdown, drop or truncate."""
    with LOCK:
        COUNT["all"] += 1
        n = COUNT["all"]
        g = 0
        if method == "GET":
            COUNT["get"] += 1
            g = COUNT["get"]
        key = (method, target)
        fault = None
        if RUN.get(key, 0) < ARGS.max_faults:
            if ARGS.slowdown_every and n % ARGS.slowdown_every == 0:
                fault = "slowdown"
            elif ARGS.drop_every and n % ARGS.drop_every == 0:
                fault = "drop"
            elif ARGS.truncate_every and g and g % ARGS.truncate_every == 0:
                fault = "truncate"
        return fault, n


def note_fault(method, target, happened):
    with LOCK:
        key = (method, target)
        if happened:
            RUN[key] = RUN.get(key, 0) + 1
        else:
            RUN.pop(key, None)


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.up = None
        self.up_r = None
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.request.makefile("rb")
        bump("connections")

    def upstream(self):
        if self.up is None:
            host, port = ARGS.upstream.rsplit(":", 1)
            self.up = socket.create_connection((host, int(port)), timeout=120)
            self.up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.up_r = self.up.makefile("rb")
        return self.up

    def close_upstream(self):
        if self.up is not None:
            try:
                self.up_r.close()
                self.up.close()
            except OSError:
                pass
        self.up = self.up_r = None

    def finish(self):
        self.close_upstream()
        try:
            self.rfile.close()
        except OSError:
            pass

    def handle(self):
        try:
            while self.one_request():
                pass
        except (Closed, ConnectionError, socket.timeout, OSError):
            pass

    def forward(self, raw):
        """Send the request upstream, return (head, body, close_after)."""
        for attempt in (1, 2):
            try:
                self.upstream().sendall(raw)
                while True:
                    head = read_head(self.up_r)
                    start, headers = parse_head(head)
                    status = int(start.split()[1])
                    if 100 <= status < 200:
                        continue  # the client already got its 100 Continue from us
                    break
                return head, start, headers, status
            except (Closed, ConnectionError, OSError):
                # a kept-alive upstream connection that the server closed
                self.close_upstream()
                if attempt == 2:
                    raise

    def one_request(self):
        c = self.request
        try:
            head = read_head(self.rfile)
        except Closed:
            return False
        start, headers = parse_head(head)
        parts = start.split()
        if len(parts) != 3:
            return False
        method, target = parts[0], parts[1]
        if headers.get("expect", "").lower() == "100-continue":
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body, _ = read_body(self.rfile, headers)
        client_close = headers.get("connection", "").lower() == "close"
        bump("requests")
        fault, n = choose_fault(method, target)

        if fault == "slowdown":
            note_fault(method, target, True)
            c.sendall(slowdown_response(method, target, n))
            bump("slowdown")
            return not client_close

        try:
            rhead, rstart, rheaders, status = self.forward(head + body)
            no_body = method == "HEAD" or status in (204, 304)
            chunked = False
            until_eof = False
            if no_body:
                rbody = b""
            elif "chunked" in rheaders.get("transfer-encoding", "").lower():
                rbody, chunked = read_chunked(self.up_r), True
            elif "content-length" in rheaders:
                rbody = read_exact(self.up_r, int(rheaders["content-length"]))
            else:
                rbody, until_eof = self.up_r.read(), True
        except (Closed, ConnectionError, OSError):
            bump("upstream_errors")
            note_fault(method, target, False)
            reset(c)
            return False
        if until_eof or rheaders.get("connection", "").lower() == "close":
            self.close_upstream()

        if fault == "drop":
            note_fault(method, target, True)
            c.sendall(rhead[: max(1, len(rhead) // 2)])
            bump("drop")
            reset(c)
            return False
        if (fault == "truncate" and 200 <= status < 300 and not chunked and not until_eof
                and not no_body and len(rbody) >= 2):
            note_fault(method, target, True)
            c.sendall(rhead + rbody[: len(rbody) // 2])
            bump("truncate")
            c.shutdown(socket.SHUT_RDWR)
            c.close()
            return False
        note_fault(method, target, False)
        c.sendall(rhead + rbody)
        bump("forwarded")
        if until_eof or client_close:
            c.shutdown(socket.SHUT_RDWR)
            return False
        return True


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", required=True, help="HOST:PORT of the S3 server")
    p.add_argument("--listen", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--ready-file", required=True, help="gets the port once listening")
    p.add_argument("--stats-file", help="fault counters (JSON)")
    p.add_argument("--slowdown-every", type=int, default=0, metavar="N")
    p.add_argument("--drop-every", type=int, default=0, metavar="M")
    p.add_argument("--truncate-every", type=int, default=0, metavar="K")
    p.add_argument("--max-faults", type=int, default=2,
                   help="at most this many faults in a row for one request")
    ARGS = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = Server((ARGS.listen, ARGS.port), Handler)
    if ARGS.stats_file:
        write_stats()
    tmp = ARGS.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.replace(tmp, ARGS.ready_file)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
