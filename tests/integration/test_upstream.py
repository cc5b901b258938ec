"""proxy routes against real upstream servers: a small HTTP/1.1 server of
our own on a socket (it records exactly what it received and answers as
each test scripts it), Python's http.server, and a python3-websockets echo
server for the tunnel. Driven by http.client, curl and raw sockets."""
import asyncio
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import websockets

import ghtest
from ghtest import raw_request


# ---- an upstream that records what it got ------------------------------------

def read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None, buf
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def header(head, name):
    vals = []
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            if k.strip().lower() == name.lower().encode():
                vals.append(v.strip().decode("latin-1"))
    return vals


def read_body(sock, head, buf):
    """The request body by its framing, and what follows it."""
    te = header(head, "transfer-encoding")
    cl = header(head, "content-length")
    if te and te[-1].lower().endswith("chunked"):
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += sock.recv(65536)
            line, buf = buf.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            while len(buf) < size + 2:
                data = sock.recv(65536)
                if not data:
                    raise EOFError
                buf += data
            body += buf[:size]
            buf = buf[size + 2:]
            if size == 0:
                return body, buf
    n = int(cl[0]) if cl else 0
    while len(buf) < n:
        data = sock.recv(65536)
        if not data:
            raise EOFError
        buf += data
    return buf[:n], buf[n:]


class Upstream:
    """Answers with handler(head, body) -> bytes | callable(sock); records
    (head, body) of every request and counts connections."""

    def __init__(self, handler, tls=None):
        self.handler = handler
        self.tls = tls          # an ssl.SSLContext: speak TLS
        self.requests = []
        self.connections = 0
        self.open = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open.append(s)
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def serve(self, s):
        buf = b""
        try:
            if self.tls is not None:
                s = self.tls.wrap_socket(s, server_side=True)
            while True:
                head, buf = read_head(s, buf)
                if head is None:
                    return
                body, buf = read_body(s, head, buf)
                with self.lock:
                    self.requests.append((head, body))
                out = self.handler(head, body)
                if callable(out):
                    if out(s) == "close":
                        return
                else:
                    s.sendall(out)
        except (OSError, EOFError, ValueError, ssl.SSLError):
            pass
        finally:
            s.close()

    def close(self):
        """Stops listening and closes every connection: the server is gone."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)    # wakes the accept(); close alone does not
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for s in self.open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def ok(body=b"hello", extra=b""):
    return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra)) + body


rss_env = ghtest.rss_env


class RssPeak:
    """Samples a process's VmRSS every 20 ms while in the with block: .growth
    is the peak minus the value at entry, in KiB."""

    def __init__(self, pid):
        self.pid = pid

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def __enter__(self):
        self.before = self.peak = self.rss_kib()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while not self.done.is_set():
            self.peak = max(self.peak, self.rss_kib())
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        self.growth = self.peak - self.before


def config(tmp, port, servers, route_extra="", up_extra="", listen_extra="", http_extra="",
           routes_before="", workers=1):
    # one worker unless a test says otherwise: keep-alive pools, round robin
    # and failure counts are each worker's own (as nginx's per worker), and
    # these tests count them exactly; WorkersTest covers several
    srv = "\n".join(f"      - {s}" for s in servers)
    return f"""
workers: {workers}
access_log: stderr
error_log: stderr
log_level: info
http:
  max_body: 512MiB
{http_extra}
upstreams:
  app:
    servers:
{srv}
    connect_timeout: 1s
    read_timeout: 1s
    max_fails: 1
    fail_timeout: 2s
{up_extra}
listeners:
  - listen: 127.0.0.1:{port}
{listen_extra}
routes:
{routes_before}
  - match: {{ prefix: / }}
    proxy:
      upstream: app
{route_extra}
"""


def get(port, path="/", headers=None, method="GET", body=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r, data


class ProxyTest(ghtest.TestCase):

    def upstream(self, handler):
        u = Upstream(handler)
        self.addCleanup(u.close)
        return u

    def proxy(self, servers, env=None, **kw):
        """A gatehouse of its own folder (and error log), so that a test may
        start several."""
        port = ghtest.free_port()
        tmp = tempfile.mkdtemp(dir=self.tmp)
        gh = ghtest.Gatehouse(config(tmp, port, servers, **kw), tmp, env=env)
        self.addCleanup(gh.__exit__)
        return port, gh.wait_ready()

    # -- requests and responses -------------------------------------------------

    def test_get_is_proxied_with_forwarding_headers_and_no_hop_by_hop(self):
        up = self.upstream(lambda h, b: ok(b"from the app", b"X-App: 1\r\nKeep-Alive: x\r\n"))
        # the client (127.0.0.1) is not a trusted proxy here
        port, _ = self.proxy([f"127.0.0.1:{up.port}"],
                             listen_extra="    trusted_proxies: [10.0.0.0/8]")
        r, data = get(port, "/a/b?q=1", headers={
            "X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6",
            "Connection": "X-Secret", "X-Secret": "s", "Keep-Alive": "timeout=5",
            "TE": "trailers", "Proxy-Authorization": "x", "X-Kept": "k"})
        self.assertEqual((r.status, data), (200, b"from the app"))
        self.assertEqual(r.getheader("X-App"), "1")
        self.assertIsNone(r.getheader("Keep-Alive"))
        head, _ = up.requests[0]
        self.assertTrue(head.startswith(b"GET /a/b?q=1 HTTP/1.1\r\n"), head)
        # an untrusted client's X-Forwarded-For never survives
        self.assertEqual(header(head, "x-forwarded-for"), ["127.0.0.1"])
        self.assertEqual(header(head, "x-real-ip"), ["127.0.0.1"])
        self.assertEqual(header(head, "x-forwarded-proto"), ["http"])
        self.assertEqual(header(head, "host"), [f"127.0.0.1:{port}"])
        self.assertEqual(header(head, "x-kept"), ["k"])
        for gone in ("x-secret", "keep-alive", "te", "proxy-authorization", "connection"):
            self.assertEqual(header(head, gone), [], gone)

    def test_a_trusted_balancer_chain_is_appended_to(self):
        up = self.upstream(lambda h, b: ok())
        port, _ = self.proxy([f"127.0.0.1:{up.port}"],
                             listen_extra="    trusted_proxies: [127.0.0.0/8]")
        get(port, headers={"X-Forwarded-For": "203.0.113.9"})
        head, _ = up.requests[0]
        # the peer (an ALB) is trusted: the real client is the last element it added
        self.assertEqual(header(head, "x-forwarded-for"), ["203.0.113.9, 203.0.113.9"])
        self.assertEqual(header(head, "x-real-ip"), ["203.0.113.9"])

    def test_bodies_go_up_sized_and_chunked_and_the_framing_is_gatehouses(self):
        up = self.upstream(lambda h, b: ok(b"got %d" % len(b)))
        port, _ = self.proxy([f"127.0.0.1:{up.port}"])
        r, data = get(port, "/up", method="POST", body=b"x" * 100000)
        self.assertEqual(data, b"got 100000")
        head, body = up.requests[0]
        self.assertEqual(header(head, "content-length"), ["100000"])
        self.assertEqual(body, b"x" * 100000)
        # chunked, with Expect: 100-continue answered by gatehouse
        req = (f"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
               f"Expect: 100-continue\r\nConnection: close\r\n\r\n"
               f"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n").encode()
        out = raw_request(port, req)
        self.assertIn(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", out)
        self.assertTrue(out.endswith(b"got 11"), out)
        head, body = up.requests[1]
        self.assertEqual(body, b"hello world")
        self.assertEqual(header(head, "transfer-encoding"), ["chunked"])
        self.assertEqual(header(head, "expect"), [])

    def test_smuggling_shapes_are_refused_before_any_upstream_sees_them(self):
        up = self.upstream(lambda h, b: ok())
        port, _ = self.proxy([f"127.0.0.1:{up.port}"])
        for req in (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
        ):
            out = raw_request(port, req)
            self.assertTrue(out.startswith(b"HTTP/1.1 400 "), (req, out))
        self.assertEqual(up.requests, [])

    def test_upstream_connections_are_kept_and_reused(self):
        up = self.upstream(lambda h, b: ok(b"k"))
        port, _ = self.proxy([f"127.0.0.1:{up.port}"])
        for _ in range(5):
            r, data = get(port)             # a new client connection each time
            self.assertEqual(data, b"k")
        self.assertEqual(len(up.requests), 5)
        self.assertEqual(up.connections, 1)

    def test_an_idle_kept_connection_is_closed_after_keepalive_timeout(self):
        up = self.upstream(lambda h, b: ok(b"k"))
        port, _ = self.proxy([f"127.0.0.1:{up.port}"], up_extra="    keepalive_timeout: 400ms")
        self.assertEqual(get(port)[1], b"k")
        time.sleep(0.1)
        self.assertEqual(get(port)[1], b"k")
        self.assertEqual(up.connections, 1)         # kept while younger than the timeout
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not self.upstream_saw_close(up):
            time.sleep(0.05)
        self.assertTrue(self.upstream_saw_close(up), "gatehouse kept the idle connection open")
        self.assertEqual(get(port)[1], b"k")
        self.assertEqual(up.connections, 2)         # the old one was closed, not reused

    @staticmethod
    def upstream_saw_close(up, i=0):
        """Whether the upstream's connection i was closed by gatehouse."""
        with up.lock:
            s = up.open[i]
        try:
            return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def test_no_more_idle_connections_than_keepalive_are_kept(self):
        def slow(head, body):
            time.sleep(0.3)         # all five requests in flight at once
            return ok(b"s")
        up = self.upstream(slow)
        port, _ = self.proxy([f"127.0.0.1:{up.port}"], up_extra="    keepalive: 2")
        got = []
        threads = [threading.Thread(target=lambda: got.append(get(port)[1])) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(got, [b"s"] * 5)
        self.assertEqual(up.connections, 5)
        deadline = time.monotonic() + 3
        closed = 0
        while time.monotonic() < deadline:
            closed = sum(self.upstream_saw_close(up, i) for i in range(5))
            if closed >= 3:
                break
            time.sleep(0.05)
        time.sleep(0.2)             # and no more than the three over the bound
        self.assertEqual(sum(self.upstream_saw_close(up, i) for i in range(5)), 3)
        for _ in range(2):
            self.assertEqual(get(port)[1], b"s")
        self.assertEqual(up.connections, 5)     # the two kept ones were reused

    def test_chunked_and_close_delimited_responses_reach_the_client_whole(self):
        def answer(head, body):
            if head.startswith(b"GET /chunked"):
                return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")

            def close_delimited(s):
                s.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
                return "close"
            return close_delimited
        up = self.upstream(answer)
        port, _ = self.proxy([f"127.0.0.1:{up.port}"])
        r, data = get(port, "/chunked")
        self.assertEqual((r.status, data), (200, b"abcdef"))
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        r, data = get(port, "/close")
        self.assertEqual((r.status, data), (200, b"until the end"))

    def test_head_204_and_304_have_no_body(self):
        def answer(head, body):
            if head.startswith(b"HEAD"):
                return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
            if head.startswith(b"GET /204"):
                return b"HTTP/1.1 204 No Content\r\n\r\n"
            return b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n"
        up = self.upstream(answer)
        port, _ = self.proxy([f"127.0.0.1:{up.port}"])
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        r, data = get(port, method="HEAD", conn=c)
        self.assertEqual((r.status, r.getheader("Content-Length"), data), (200, "1000", b""))
        r, data = get(port, "/204", conn=c)
        self.assertEqual((r.status, data), (204, b""))
        r, data = get(port, "/304", conn=c)
        self.assertEqual((r.status, data), (304, b""))
        r, data = get(port, "/204", conn=c)   # the connection is still in step
        self.assertEqual(r.status, 204)

    # -- failures ----------------------------------------------------------------

    def test_connect_refused_goes_to_the_next_server_then_502_or_503(self):
        up = self.upstream(lambda h, b: ok(b"alive"))
        dead = ghtest.free_port()
        port, gh = self.proxy([f"127.0.0.1:{dead}", f"127.0.0.1:{up.port}"])
        for _ in range(4):
            r, data = get(port)
            self.assertEqual((r.status, data), (200, b"alive"))
        gh.wait_log(f"server 127.0.0.1:{dead}")

    def test_every_server_down_is_503(self):
        dead = ghtest.free_port()
        port, gh = self.proxy([f"127.0.0.1:{dead}"])
        r, _ = get(port)
        self.assertEqual(r.status, 502)         # tried and refused
        r, _ = get(port)
        self.assertEqual(r.status, 503)         # now marked down for fail_timeout
        gh.wait_log("marked down")

    def test_a_slow_upstream_is_504(self):
        def slow(s):
            time.sleep(3)
            return "close"
        up = self.upstream(lambda h, b: slow)
        port, gh = self.proxy([f"127.0.0.1:{up.port}"])
        t0 = time.monotonic()
        r, _ = get(port)
        self.assertEqual(r.status, 504)
        self.assertLess(time.monotonic() - t0, 2.5)
        gh.wait_log("timed out before answering")

    def test_a_response_cut_short_is_cut_short_for_the_client(self):
        def cut(s):
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"y" * 1000)
            time.sleep(0.2)
            return "close"
        up = self.upstream(lambda h, b: cut)
        port, gh = self.proxy([f"127.0.0.1:{up.port}"])
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/")
        r = c.getresponse()
        with self.assertRaises(http.client.IncompleteRead):
            r.read()
        gh.wait_log("in the middle of a response")

    def test_a_kept_connection_closed_by_the_upstream_is_retried_on_a_new_one(self):
        def once_then_close(head, body):
            def answer(s):
                s.sendall(ok(b"fresh"))
                time.sleep(0.1)
                s.shutdown(socket.SHUT_WR)       # keep-alive by headers, closed in fact
                return "close"
            return answer
        up = self.upstream(once_then_close)
        port, _ = self.proxy([f"127.0.0.1:{up.port}"])
        self.assertEqual(get(port)[1], b"fresh")
        time.sleep(0.3)     # the pooled connection is closed now; gatehouse may not know yet
        r, data = get(port)
        self.assertEqual((r.status, data), (200, b"fresh"))
        self.assertEqual(len(up.requests), 2)

    # -- streaming -----------------------------------------------------------------

    def test_a_large_download_streams_with_rss_flat_for_a_slow_client(self):
        size = 64 * 1024 * 1024

        def big(head, body):
            if head.startswith(b"GET"):
                def send(s):
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                    chunk = b"z" * (1 << 20)
                    for _ in range(size >> 20):
                        s.sendall(chunk)
                return send
            return ok(b"%d" % len(body))
        up = self.upstream(big)
        port, gh = self.proxy([f"127.0.0.1:{up.port}"], env=rss_env())
        with RssPeak(gh.proc.pid) as rss:
            out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}",
                                  "--limit-rate", "50M", f"http://127.0.0.1:{port}/big"],
                                 capture_output=True, text=True, timeout=120)
        self.assertEqual(out.stdout, str(size), out.stderr)
        self.assertLess(rss.growth, 24 * 1024, "RSS grew %d KiB" % rss.growth)

    # -- WebSocket ---------------------------------------------------------------

    def test_a_websocket_is_tunnelled_to_the_upstream_with_no_configuration(self):
        ws_port = ghtest.free_port()
        ready = threading.Event()
        stop = None

        def run():
            nonlocal stop

            async def echo(ws, path=None):
                async for m in ws:
                    await ws.send(m)

            async def main():
                nonlocal stop
                stop = asyncio.get_running_loop().create_future()
                async with websockets.serve(echo, "127.0.0.1", ws_port):
                    ready.set()
                    await stop
            loop = asyncio.new_event_loop()
            self.ws_loop = loop
            loop.run_until_complete(main())
        t = threading.Thread(target=run, daemon=True)
        t.start()
        ready.wait(10)
        self.addCleanup(lambda: self.ws_loop.call_soon_threadsafe(stop.set_result, None))
        port, gh = self.proxy([f"127.0.0.1:{ws_port}"])

        async def client():
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/") as ws:
                out = []
                for m in ("one", b"\x00\x01two", "three" * 10000):
                    await ws.send(m)
                    out.append(await ws.recv())
                return out
        got = asyncio.run(asyncio.wait_for(client(), 20))
        self.assertEqual(got, ["one", b"\x00\x01two", "three" * 10000])
        gh.wait_log('"GET /ws/ HTTP/1.1" 101')

    # -- gatehouse's pings into a silent tunnel ---------------------------------

    def ws_upstream(self, frames):
        """An upstream that answers the upgrade and then writes frames, a
        list of bytes or float (seconds to wait), then stays open."""
        def answer(head, body):
            def run(s):
                s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
                for f in frames:
                    if isinstance(f, float):
                        time.sleep(f)
                    else:
                        s.sendall(f)
                time.sleep(5)
                return "close"
            return run
        return self.upstream(answer)

    def upgrade(self, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /ws/ HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        head, rest = buf.split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
        return s, rest

    def read_for(self, s, seconds, have=b""):
        end = time.monotonic() + seconds
        s.settimeout(0.1)
        while time.monotonic() < end:
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            have += data
        return have

    def test_a_silent_tunnel_gets_pings_from_gatehouse(self):
        up = self.ws_upstream([b"\x81\x02hi"])
        port, _ = self.proxy([f"127.0.0.1:{up.port}"], route_extra="      ping_interval: 500ms")
        s, rest = self.upgrade(port)
        got = self.read_for(s, 1.6, rest)
        # the upstream's frame, then gatehouse's empty pings while silent
        self.assertTrue(got.startswith(b"\x81\x02hi"), got)
        self.assertGreaterEqual(got[4:].count(b"\x89\x00"), 2, got)
        self.assertEqual(got[4:].replace(b"\x89\x00", b""), b"", got)
        s.close()

    def test_a_ping_never_goes_inside_a_frame_the_upstream_is_still_sending(self):
        frame = b"\x82\x7e\x01\x00" + b"b" * 256
        up = self.ws_upstream([frame[:100], 1.5, frame[100:]])
        port, _ = self.proxy([f"127.0.0.1:{up.port}"], route_extra="      ping_interval: 300ms")
        s, rest = self.upgrade(port)
        got = self.read_for(s, 2.2, rest)
        self.assertTrue(got.startswith(frame), got[:120])
        self.assertEqual(got[len(frame):].replace(b"\x89\x00", b""), b"", got[len(frame):])

    def test_ping_interval_0_sends_no_ping(self):
        up = self.ws_upstream([b"\x81\x02hi"])
        port, _ = self.proxy([f"127.0.0.1:{up.port}"], route_extra="      ping_interval: 0s")
        s, rest = self.upgrade(port)
        self.assertEqual(self.read_for(s, 1.0, rest), b"\x81\x02hi")

    # -- metrics and the access log ------------------------------------------------

    def test_metrics_count_requests_failures_pool_and_time_per_server(self):
        up = self.upstream(lambda h, b: ok(b"m"))
        dead = ghtest.free_port()
        port, gh = self.proxy([f"127.0.0.1:{dead}", f"127.0.0.1:{up.port}"],
                              routes_before="  - match: { path: /metrics }\n    metrics: {}")
        for _ in range(3):
            self.assertEqual(get(port, "/x")[1], b"m")
        _, text = get(port, "/metrics")
        text = text.decode()
        live = f'upstream="app",server="127.0.0.1:{up.port}"'
        gone = f'upstream="app",server="127.0.0.1:{dead}"'

        def value(line):
            m = re.search("^" + re.escape(line) + r" (\S+)$", text, re.M)
            self.assertIsNotNone(m, line + "\n" + text)
            return float(m.group(1))
        self.assertEqual(value(f"gatehouse_upstream_requests_total{{{live}}}"), 3)
        self.assertEqual(value(f'gatehouse_upstream_responses_total{{{live},class="2xx"}}'), 3)
        self.assertEqual(value(f'gatehouse_upstream_failures_total{{{gone},reason="connect"}}'), 1)
        self.assertEqual(value(f"gatehouse_upstream_up{{{gone}}}"), 0)
        self.assertEqual(value(f"gatehouse_upstream_up{{{live}}}"), 1)
        self.assertEqual(value(f'gatehouse_upstream_connections{{{live},state="idle"}}'), 1)
        self.assertEqual(value('gatehouse_upstream_response_seconds_count{upstream="app"}'), 3)
        self.assertEqual(value('gatehouse_upstream_response_seconds_bucket{upstream="app",le="+Inf"}'), 3)
        # the access log names the upstream, the server and its time
        lines = [l for l in gh.log().splitlines() if '"GET /x HTTP/1.1" 200' in l]
        self.assertEqual(len(lines), 3, gh.log())
        self.assertRegex(lines[0], r'upstream="app" server="127\.0\.0\.1:%d" '
                                   r'upstream_time=\d+\.\d{3}$' % up.port)

    def test_each_server_has_a_moving_average_of_its_response_time(self):
        delays = [0.08, 0.0]

        def timed(head, body):
            time.sleep(delays.pop(0) if delays else 0)
            return ok(b"t")
        up = self.upstream(timed)
        dead = ghtest.free_port()
        port, _ = self.proxy([f"127.0.0.1:{dead}", f"127.0.0.1:{up.port}"],
                             routes_before="  - match: { path: /metrics }\n    metrics: {}")
        live = f'gatehouse_upstream_latency_seconds{{upstream="app",server="127.0.0.1:{up.port}"}}'

        def latency():
            text = get(port, "/metrics")[1].decode()
            # a server that never answered has no figure, not a 0 that would
            # pull an average down
            self.assertNotIn(f'server="127.0.0.1:{dead}"}} ', text.split("upstream_latency")[-1])
            m = re.search("^" + re.escape(live) + r" (\S+)$", text, re.M)
            return float(m.group(1)) if m else None
        self.assertIsNone(latency())
        self.assertEqual(get(port, "/x")[1], b"t")          # 80 ms: the first sets it
        first = latency()
        self.assertGreaterEqual(first, 0.08)
        self.assertLess(first, 2.0)
        self.assertEqual(get(port, "/x")[1], b"t")          # fast: weighs 1/8
        second = latency()
        self.assertLess(second, first)
        self.assertGreaterEqual(second, first * 7 / 8 - 1e-6)      # printed to the microsecond
        self.assertLess(second, first * 7 / 8 + 0.05)

    def test_a_tunnel_is_counted_as_one(self):
        up = self.ws_upstream([b"\x81\x02hi"])
        port, gh = self.proxy([f"127.0.0.1:{up.port}"],
                              routes_before="  - match: { path: /metrics }\n    metrics: {}")
        s, _ = self.upgrade(port)
        _, text = get(port, "/metrics")
        self.assertIn(f'gatehouse_connections_open{{listener="127.0.0.1:{port}",kind="tunnel"}} 1',
                      text.decode())
        # the upgrade is in the access log while the tunnel is still open
        gh.wait_log('"GET /ws/ HTTP/1.1" 101 - "-" "-" upstream="app"')
        s.close()

    # -- balancing, backups, unix sockets, reload -----------------------------------

    def test_weights_are_honoured_and_backups_wait_for_every_primary_to_be_down(self):
        a = self.upstream(lambda h, b: ok(b"a"))
        b = self.upstream(lambda h, b: ok(b"b"))
        c = self.upstream(lambda h, b: ok(b"c"))
        dead = ghtest.free_port()
        port, _ = self.proxy([f"{{ address: 127.0.0.1:{a.port}, weight: 3 }}",
                              f"127.0.0.1:{b.port}",
                              f"{{ address: 127.0.0.1:{c.port}, backup: true }}"])
        got = [get(port)[1] for _ in range(8)]
        self.assertEqual(sorted(got), [b"a"] * 6 + [b"b"] * 2, got)
        # primaries down (refusing): the backup answers
        a.close()
        b.close()
        got = [get(port)[1] for _ in range(3)]
        self.assertEqual(got, [b"c"] * 3)
        del dead

    def test_client_ip_sends_one_client_to_one_server(self):
        ups = [self.upstream(lambda h, b, n=n: ok(b"%d" % n)) for n in range(3)]
        port, _ = self.proxy([f"127.0.0.1:{u.port}" for u in ups],
                             up_extra="    balance: client_ip")
        got = {get(port)[1] for _ in range(6)}
        self.assertEqual(len(got), 1, got)

    def test_a_unix_socket_upstream(self):
        path = self.path("app.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(path)
        srv.listen(8)
        self.addCleanup(srv.close)

        def serve():
            while True:
                try:
                    s, _ = srv.accept()
                except OSError:
                    return
                head, rest = read_head(s, b"")
                if head is not None:
                    s.sendall(ok(b"over unix"))
                s.close()
        threading.Thread(target=serve, daemon=True).start()
        port, _ = self.proxy([f"unix:{path}"])
        self.assertEqual(get(port)[1], b"over unix")

    def test_sighup_sends_new_requests_to_new_upstreams_and_finishes_the_old(self):
        def slow(head, body):
            def answer(s):
                time.sleep(0.5)
                s.sendall(ok(b"old"))
            return answer
        old = self.upstream(slow)
        new = self.upstream(lambda h, b: ok(b"new"))
        port = ghtest.free_port()
        gh = self.start(config(self.tmp, port, [f"127.0.0.1:{old.port}"]))
        result = {}

        def in_flight():
            result["r"] = get(port)
        t = threading.Thread(target=in_flight)
        t.start()
        ghtest.wait_for(lambda: len(old.requests) == 1, 5, "the request upstream")
        with open(gh.conf, "w") as f:
            f.write(config(self.tmp, port, [f"127.0.0.1:{new.port}"]))
        gh.send_signal(signal.SIGHUP)
        gh.wait_log("reload")
        t.join(10)
        self.assertEqual((result["r"][0].status, result["r"][1]), (200, b"old"))
        self.assertEqual(get(port)[1], b"new")

    def test_health_checks_take_a_server_out_and_bring_it_back(self):
        state = {"healthy": True}

        def a(head, body):
            if head.startswith(b"GET /hc "):
                return ok(b"", b"Connection: close\r\n") if state["healthy"] else \
                    b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"
            return ok(b"a")
        ua = self.upstream(a)
        ub = self.upstream(lambda h, b: ok(b"", b"Connection: close\r\n") if h.startswith(b"GET /hc ")
                           else ok(b"b"))
        port, gh = self.proxy([f"127.0.0.1:{ua.port}", f"127.0.0.1:{ub.port}"],
                              up_extra="    health: { path: /hc, interval: 100ms, timeout: 1s, "
                                       "expect: 2xx, fails: 2, passes: 2 }")
        self.assertEqual(sorted(get(port)[1] for _ in range(4)), [b"a", b"a", b"b", b"b"])
        state["healthy"] = False
        gh.wait_log(f"server 127.0.0.1:{ua.port} marked down by health checks: status 500")
        self.assertEqual([get(port)[1] for _ in range(4)], [b"b"] * 4)
        state["healthy"] = True
        gh.wait_log(f"server 127.0.0.1:{ua.port} is up (health checks pass)")
        self.assertEqual(sorted(get(port)[1] for _ in range(4)), [b"a", b"a", b"b", b"b"])
        hc = [h for h, _ in ua.requests if h.startswith(b"GET /hc ")]
        self.assertIn(b"User-Agent: gatehouse-health", hc[0])

    # -- PROXY headers to upstreams --------------------------------------------------

    def test_proxy_protocol_v1_names_the_real_client_and_connections_are_not_shared(self):
        up = self.upstream(lambda h, b: ok(b"pp"))
        port, _ = self.proxy([f"127.0.0.1:{up.port}"], up_extra="    proxy_protocol: v1",
                             listen_extra="    proxy_protocol: v1\n"
                                          "    trusted_proxies: [127.0.0.0/8]")
        for src in ("203.0.113.5", "198.51.100.9"):
            out = raw_request(port, f"PROXY TCP4 {src} 10.0.0.1 40000 443\r\n"
                                    f"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
            self.assertTrue(out.endswith(b"pp"), out)
        heads = [h for h, _ in up.requests]
        self.assertTrue(heads[0].startswith(b"PROXY TCP4 203.0.113.5 10.0.0.1 40000 443\r\nGET / "),
                        heads[0])
        self.assertTrue(heads[1].startswith(b"PROXY TCP4 198.51.100.9 10.0.0.1 40000 443\r\nGET / "),
                        heads[1])
        self.assertEqual(up.connections, 2)     # one client's connection is not another's

    def test_proxy_protocol_v2_is_binary_with_the_client_and_the_listener(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        self.addCleanup(srv.close)
        got = {}

        def serve():
            s, _ = srv.accept()
            buf = b""
            while len(buf) < 16:
                buf += s.recv(4096)
            n = 16 + int.from_bytes(buf[14:16], "big")
            while len(buf) < n:
                buf += s.recv(4096)
            got["pp"] = buf[:n]
            head, _ = read_head(s, buf[n:])
            got["head"] = head
            s.sendall(ok(b"v2"))
            s.close()
        threading.Thread(target=serve, daemon=True).start()
        port, _ = self.proxy([f"127.0.0.1:{srv.getsockname()[1]}"], up_extra="    proxy_protocol: v2")
        c = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(c.close)
        c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        self.assertTrue(self.read_for(c, 2.0).endswith(b"v2"))
        pp = got["pp"]
        self.assertEqual(pp[:12], b"\r\n\r\n\x00\r\nQUIT\n")
        self.assertEqual(pp[12:14], b"\x21\x11")                   # v2 PROXY, TCP over IPv4
        self.assertEqual(socket.inet_ntoa(pp[16:20]), "127.0.0.1")
        self.assertEqual(int.from_bytes(pp[24:26], "big"), c.getsockname()[1])
        self.assertEqual(int.from_bytes(pp[26:28], "big"), port)
        self.assertTrue(got["head"].startswith(b"GET / HTTP/1.1\r\n"))

    # -- https upstreams ---------------------------------------------------------------

    def tls_upstream(self):
        crt, key, _ = ghtest.make_cert(self.tmp)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        names = []
        ctx.sni_callback = lambda sock, name, c: names.append(name)
        up = self.upstream(lambda h, b: ok(b"over tls"))
        up.tls = ctx
        return up, crt, names

    def test_an_https_upstream_is_verified_by_name_or_address(self):
        up, crt, names = self.tls_upstream()
        port, _ = self.proxy([f"127.0.0.1:{up.port}"],
                             up_extra=f"    tls: {{ ca: {crt}, sni: localhost }}")
        r, data = get(port)
        self.assertEqual((r.status, data), (200, b"over tls"))
        self.assertEqual(names, ["localhost"])
        # without sni: the certificate must name the address (it does: IP:127.0.0.1)
        port2, _ = self.proxy([f"127.0.0.1:{up.port}"], up_extra=f"    tls: {{ ca: {crt} }}")
        self.assertEqual(get(port2)[1], b"over tls")
        # a name the certificate does not carry is refused
        port3, gh3 = self.proxy([f"127.0.0.1:{up.port}"],
                                up_extra=f"    tls: {{ ca: {crt}, sni: other.example }}")
        self.assertEqual(get(port3)[0].status, 502)
        gh3.wait_log("certificate verify failed")

    def test_an_untrusted_certificate_is_refused_unless_verify_is_off(self):
        up, _, _ = self.tls_upstream()
        port, gh = self.proxy([f"127.0.0.1:{up.port}"], up_extra="    tls: {}")
        self.assertEqual(get(port)[0].status, 502)
        gh.wait_log("certificate verify failed")
        port2, _ = self.proxy([f"127.0.0.1:{up.port}"], up_extra="    tls: { verify: false }")
        self.assertEqual(get(port2)[1], b"over tls")

    def test_a_tunnel_lasts_through_the_drain_and_is_closed_at_drain_timeout(self):
        up = self.ws_upstream([b"\x81\x02hi"])
        port, gh = self.proxy([f"127.0.0.1:{up.port}"],
                              http_extra="drain_timeout: 1s")
        s, rest = self.upgrade(port)
        t0 = time.monotonic()
        gh.send_signal(signal.SIGTERM)
        got = self.read_for(s, 5.0, rest)      # until gatehouse closes it
        self.assertGreater(time.monotonic() - t0, 0.8)
        self.assertLess(time.monotonic() - t0, 4.0)
        self.assertTrue(got.startswith(b"\x81\x02hi"), got)
        self.assertEqual(gh.proc.wait(5), 0)

    def test_a_large_upload_to_a_slow_upstream_streams_with_rss_flat(self):
        size = 64 * 1024 * 1024
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        self.addCleanup(srv.close)
        got = {}

        def serve():            # reads the body at about 64 MiB/s
            s, _ = srv.accept()
            head, buf = read_head(s, b"")
            n = len(buf)
            while n < size:
                data = s.recv(256 * 1024)
                if not data:
                    break
                n += len(data)
                time.sleep(0.004)
            got["n"] = n
            s.sendall(ok(b"%d" % n))
            s.close()
        threading.Thread(target=serve, daemon=True).start()
        port, gh = self.proxy([f"127.0.0.1:{srv.getsockname()[1]}"], env=rss_env())
        body = self.path("upload.bin")
        with open(body, "wb") as f:
            f.truncate(size)
        with RssPeak(gh.proc.pid) as rss:
            out = subprocess.run(["curl", "-sS", "-T", body, f"http://127.0.0.1:{port}/up"],
                                 capture_output=True, text=True, timeout=120)
        self.assertEqual(out.stdout, str(size), out.stderr)
        self.assertLess(rss.growth, 24 * 1024, "RSS grew %d KiB" % rss.growth)

    def test_an_http_1_0_client_is_asked_for_in_1_0_so_no_chunked_answer_reaches_it(self):
        def answer(head, body):
            if b" HTTP/1.0\r\n" in head.split(b"\r\n")[0] + b"\r\n":
                return b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nplain"
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n0\r\n\r\n"
        up = self.upstream(answer)
        port, _ = self.proxy([f"127.0.0.1:{up.port}"])
        out = raw_request(port, b"GET / HTTP/1.0\r\nHost: a\r\n\r\n")
        self.assertTrue(out.endswith(b"\r\n\r\nplain"), out)
        self.assertNotIn(b"chunked", out.lower())
        self.assertTrue(up.requests[0][0].startswith(b"GET / HTTP/1.0\r\n"))

    def test_a_node_ws_upstream_through_the_tunnel_with_gatehouse_pinging(self):
        here = os.path.dirname(os.path.abspath(__file__))
        if not os.path.isdir(os.path.join(here, "..", "node_modules", "ws")):
            raise AssertionError("node ws is not installed: run `npm ci` in tests/")
        node_port = ghtest.free_port()
        node = subprocess.Popen(["node", os.path.join(here, "ws_node_echo_server.js"), str(node_port)],
                                stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (node.kill(), node.wait()))
        self.assertEqual(node.stdout.readline().strip(), "listening")
        port, gh = self.proxy([f"127.0.0.1:{node_port}"], route_extra="      ping_interval: 300ms")

        async def client():
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/", max_size=None,
                                          ping_interval=None) as ws:
                out = []
                for m in ("hello", b"\x00" * (1 << 20), "x" * 70000):
                    await ws.send(m)
                    out.append(await ws.recv())
                await asyncio.sleep(1.0)    # silent: gatehouse pings, the client pongs to node
                await ws.send("after the pings")
                out.append(await ws.recv())
                return out
        got = asyncio.run(asyncio.wait_for(client(), 20))
        self.assertEqual(got, ["hello", b"\x00" * (1 << 20), "x" * 70000, "after the pings"])


if __name__ == "__main__":
    ghtest.main()
