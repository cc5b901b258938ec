"""A plugin with GH_PLUGIN_SINGLE_INSTANCE (plugin ABI 1.2) under
workers: 4: one init, and every connection routed to it, whichever worker
accepted it, is moved to worker 0 at the upgrade, so that its open,
messages, timers and close all run on one thread (the main thread: its tid
is the process id). Checked with the probe test plugin
(tests/integration/plugins/probe.c) on a plain and a TLS listener, with
the first frames sent in the same write as the upgrade request, and the
metrics after: every connection counted once, on worker 0, and gone when
closed. Then a reload and a drain with such connections open, and new
ones being moved while they happen."""
import base64
import os
import re
import signal
import socket
import ssl
import threading

import ghtest
import wsutil
from wsutil import OP_TEXT, RawWS, close_frame, frame

TIMEOUT = 20


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class PipelinedWS(RawWS):
    """A WebSocket whose upgrade request and first frames go in one write,
    over plain TCP or TLS."""

    def __init__(self, port, path, frames, tls=False, timeout=TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        try:
            if tls:
                self.sock = tls_context().wrap_socket(self.sock, server_hostname="localhost")
            key = base64.b64encode(os.urandom(16)).decode()
            req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\n\r\n").encode()
            self.sock.sendall(req + b"".join(frame(OP_TEXT, f) for f in frames))
            head = self._read_until(b"\r\n\r\n")
        except BaseException:
            self.sock.close()
            raise
        self.status = int(head.split(b" ", 2)[1])

    def text(self):
        op, data = self.recv_message()
        assert op == OP_TEXT, op
        return data.decode()


def whoami(text):
    m = re.fullmatch(r"tid=(\d+) open_tid=(\d+) inits=(\d+) inst=(\d+)", text)
    assert m, text
    return tuple(int(g) for g in m.groups())


class WsSingleTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.plugins = self.path("plugins")
        os.makedirs(self.plugins)
        os.chmod(self.plugins, 0o755)
        # the same source twice: one instance, and one per worker to compare
        wsutil.build_plugin(os.path.join(self.plugins, "single.so"),
                            defines={"PROBE_NAME": '"single"',
                                     "PROBE_FLAGS": "GH_PLUGIN_SINGLE_INSTANCE"})
        wsutil.build_plugin(os.path.join(self.plugins, "multi.so"),
                            defines={"PROBE_NAME": '"multi"'})
        self.cert, self.key, _ = ghtest.make_cert(self.tmp)
        self.port, self.tport = ghtest.free_port(), ghtest.free_port()
        self.text = f"""workers: 4
plugins_dir: {self.plugins}
log_level: info
drain_timeout: 10s
listeners:
  - listen: 127.0.0.1:{self.port}
  - listen: 127.0.0.1:{self.tport}
    tls: {{ cert: {self.cert}, key: {self.key} }}
routes:
  - match: {{ path: /metrics }}
    metrics: {{}}
  - match: {{ path: /single }}
    websocket: {{ plugin: single }}
  - match: {{ path: /multi }}
    websocket: {{ plugin: multi }}
"""

    def open(self, n, path="/single", frames=("whoami",), tls_every=2):
        out = []
        for i in range(n):
            tls = i % tls_every == 1
            ws = PipelinedWS(self.tport if tls else self.port, path, [*frames, f"echo {i}"],
                             tls=tls)
            self.addCleanup(ws.close)
            self.assertEqual(ws.status, 101)
            self.assertTrue(ws.text().startswith(f"open path={path} "))
            out.append(ws)
        return out

    def metrics(self):
        return ghtest.scrape(self.port)

    def ws_open(self, m, worker=None):
        if worker is None:
            return sum(v for k, v in m.items() if k.startswith("gatehouse_connections_open{")
                       and k.endswith('kind="websocket"}'))
        return m[f'gatehouse_worker_connections_open{{worker="{worker}",kind="websocket"}}']

    def close_all(self, socks):
        for ws in socks:
            ws.send(close_frame(1000))
            self.assertEqual(ws.expect_close()[0], 1000)

    def test_one_instance_serves_every_connection_on_one_thread(self):
        gh = self.start(self.text)
        self.assertIn("single test (ABI 1.2, single instance)", gh.log())
        n = 40
        socks = self.open(n)
        tids = set()
        for i, ws in enumerate(socks):
            tid, open_tid, inits, inst = whoami(ws.text())
            self.assertEqual(ws.text(), f"echo {i}")   # the second pipelined frame
            tids.update((tid, open_tid))
            self.assertEqual((inits, inst), (1, 1))
            ws.send(frame(OP_TEXT, "ttid"))
            tids.add(int(ws.text().split("=")[1]))
        # worker 0 is the main thread, whose tid is the process id
        self.assertEqual(tids, {gh.proc.pid})
        m = self.metrics()
        accepted = [m[f'gatehouse_worker_connections_accepted_total{{worker="{w}"}}']
                    for w in range(4)]
        # the kernel spreads the accepts (all n on worker 0: 1 in 4^40), and
        # every one of them moved to worker 0 and was counted once
        self.assertGreater(sum(1 for a in accepted if a > 0), 1, accepted)
        self.assertEqual(sum(accepted), m["gatehouse_connections_accepted_total"])
        self.assertEqual(self.ws_open(m), n)
        self.assertEqual(self.ws_open(m, 0), n)
        for w in (1, 2, 3):
            self.assertEqual(self.ws_open(m, w), 0)
        self.assertEqual(m['gatehouse_connections_open{listener="127.0.0.1:%d",kind="websocket"}'
                           % self.tport], n / 2)
        self.assertEqual(m['gatehouse_http_responses_total{class="1xx"}'], n)
        # the per-worker plugin beside it: an instance on each worker
        multi = self.open(8, "/multi", tls_every=4)
        self.assertEqual(whoami(multi[0].text())[2], 4)
        self.close_all(socks + multi)
        gh.wait_log("probe closed", TIMEOUT, count=n + 8)
        closes = [l for l in gh.log().splitlines() if "probe closed" in l and "single" in l]
        self.assertEqual(len(closes), n, closes[:3])
        self.assertTrue(all(l.endswith(f"tid={gh.proc.pid}") for l in closes), closes[:3])

        def settled():
            m = self.metrics()
            return (self.ws_open(m) == 0 and
                    m['gatehouse_connections_open{listener="127.0.0.1:%d",kind="http"}'
                      % self.port] == 1 and
                    m['gatehouse_connections_open{listener="127.0.0.1:%d",kind="http"}'
                      % self.tport] == 0)
        ghtest.wait_for(settled, TIMEOUT, "every connection to leave the gauges")
        self.assertEqual(gh.stop(), 0, gh.log())
        gh.check_sanitizers()

    def test_a_client_with_its_101_is_subscribed_to_what_open_subscribed(self):
        """The 101 leaves with what the plugin's open sends, not before open
        runs: B's open sleeps 150 ms and then subscribes B, and A publishes
        the moment B has its 101; B, on another worker, must get it. (With
        the 101 written at once, A's publish reached B's worker before B
        was subscribed.) Several connections, until three landed on a
        worker other than A's."""
        def text(ws):
            op, data = ws.recv_message()
            self.assertEqual(op, OP_TEXT)
            return data.decode()

        gh = self.start(self.text)
        a = RawWS(self.port, "/multi")
        self.addCleanup(a.close)
        self.assertTrue(text(a).startswith("open "))
        a.send(frame(OP_TEXT, "sub room"))
        self.assertEqual(text(a), "sub=0")
        a.send(frame(OP_TEXT, "whoami"))
        a_tid = whoami(text(a))[0]
        cross = 0
        for i in range(40):
            b = RawWS(self.port, "/multi?openwait=150&opensub=room")
            self.assertEqual(b.status, 101)
            a.send(frame(OP_TEXT, f"pub room m{i}"))
            self.assertEqual(text(a), f"m{i}")
            self.assertTrue(text(b).startswith("open "))
            self.assertEqual(text(b), f"m{i}")
            b.send(frame(OP_TEXT, "whoami"))
            cross += whoami(text(b))[0] != a_tid
            b.send(close_frame(1000))
            b.expect_close()
            b.close()
            if cross == 3:
                break
        self.assertEqual(cross, 3, "fewer than 3 of 40 connections on another worker")
        self.assertEqual(gh.stop(), 0)

    def test_upgrade_after_a_keep_alive_request_moves_too(self):
        gh = self.start(self.text)
        for tls in (False, True):
            sock = socket.create_connection(("127.0.0.1", self.tport if tls else self.port),
                                            timeout=TIMEOUT)
            if tls:
                sock = tls_context().wrap_socket(sock, server_hostname="localhost")
            self.addCleanup(sock.close)
            sock.sendall(b"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf or not buf.endswith(b"</html>\n"):
                buf += sock.recv(65536)
            self.assertTrue(buf.startswith(b"HTTP/1.1 404"), buf[:40])
            ws = PipelinedWS.__new__(PipelinedWS)
            ws.sock, ws.buf = sock, b""
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(f"GET /single HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         f"Sec-WebSocket-Version: 13\r\n\r\n".encode() + frame(OP_TEXT, "whoami"))
            self.assertTrue(ws._read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 101"))
            self.assertTrue(ws.text().startswith("open path=/single "))
            self.assertEqual(whoami(ws.text())[:2], (gh.proc.pid, gh.proc.pid))
        self.assertEqual(gh.stop(), 0, gh.log())
        gh.check_sanitizers()

    def test_limits_keep_their_counts_across_the_move(self):
        """A moved connection keeps its place in max_connections and in
        limits.connections_per_client: counted once while open, given back
        once when closed (a leak would refuse the later rounds, a double
        release would let a fourth client in)."""
        text = self.text.replace("drain_timeout: 10s", "drain_timeout: 10s\n"
                                 "max_connections: 3\n"
                                 "limits: { connections_per_client: 2 }")
        for port in (self.port, self.tport):    # no trusted peer: loopback is limited too
            text = text.replace(f"  - listen: 127.0.0.1:{port}\n",
                                f"  - listen: 127.0.0.1:{port}\n    trusted_proxies: []\n")
        gh = self.start(text)

        def refused(tls):
            try:
                ws = PipelinedWS(self.tport if tls else self.port, "/single", ["x"], tls=tls,
                                 timeout=1.5)
            except (OSError, EOFError):
                return True
            ws.close()
            return False

        for _ in range(3):
            socks = self.open(2)                    # one plain, one TLS
            self.assertTrue(refused(False))         # connections_per_client
            gh.wait_log("over limits.connections_per_client")
            for ws in socks:
                ws.send(close_frame(1000))
                self.assertEqual(ws.expect_close()[0], 1000)
                ws.close()
            ghtest.wait_for(lambda: self.metrics()[
                'gatehouse_connections_open{listener="127.0.0.1:%d",kind="websocket"}'
                % self.tport] == 0, TIMEOUT, "the closes")
        # max_connections: 3 from three addresses of the loopback net
        socks = []
        for i, src in enumerate(("127.0.0.2", "127.0.0.3", "127.0.0.4")):
            ws = RawWS(self.port, "/single", source=src, timeout=TIMEOUT)
            self.addCleanup(ws.close)
            self.assertEqual(ws.status, 101)
            socks.append(ws)
        with self.assertRaises(OSError):            # held unread at the limit
            RawWS(self.port, "/single", source="127.0.0.5", timeout=1.5)
        socks[0].close()
        late = RawWS(self.port, "/single", source="127.0.0.5", timeout=TIMEOUT)
        self.addCleanup(late.close)
        self.assertEqual(late.status, 101)
        self.assertEqual(gh.stop(), 0, gh.log())
        gh.check_sanitizers()

    def churn(self, stop, errors):
        """Opens and closes connections to the plugin until stop is set;
        anything but a 101 that echoes, or a 503 (draining), is an error."""
        i = 0
        while not stop.is_set():
            i += 1
            try:
                ws = PipelinedWS(self.tport if i % 2 else self.port, "/single", ["x"],
                                 tls=bool(i % 2), timeout=5)
            except (OSError, EOFError):
                continue        # refused once the listeners closed
            try:
                if ws.status == 101:
                    ws.text()
                    if ws.text() != "x":
                        errors.append("no echo")
                elif ws.status != 503:
                    errors.append(f"status {ws.status}")
            except (OSError, EOFError, AssertionError):
                pass            # closed by the drain
            finally:
                ws.close()

    def test_reload_and_drain_with_connections_open_and_moving(self):
        gh = self.start(self.text)
        old = self.open(12)
        self.assertTrue(all(whoami(ws.text())[3] == 1 for ws in old))
        for ws in old:
            ws.text()           # the echo
        stop, errors = threading.Event(), []
        t = threading.Thread(target=self.churn, args=(stop, errors))
        t.start()
        try:
            for k in range(3):
                gh.send_signal(signal.SIGHUP)
                gh.wait_log("reloaded", TIMEOUT, count=k + 1)
            new = self.open(6)
        finally:
            stop.set()
            t.join(TIMEOUT)
        self.assertEqual(errors, [])
        for ws in new:
            tid, open_tid, inits, inst = whoami(ws.text())
            self.assertEqual((tid, open_tid, inst), (gh.proc.pid, gh.proc.pid, 4))
        # the old connections keep their instance, on the same thread
        for ws in old:
            ws.send(frame(OP_TEXT, "whoami"))
            tid, _, _, inst = whoami(ws.text())
            self.assertEqual((tid, inst), (gh.proc.pid, 1))
        # the churn's last connection may still be closing on the server
        # (the client only closed its socket): the gauges settle on the 18
        def eighteen_open():
            m = self.metrics()
            return self.ws_open(m) == 18 and self.ws_open(m, 0) == 18
        ghtest.wait_for(eighteen_open, TIMEOUT, "18 open WebSockets, all on worker 0")
        # drain with them open, and more being moved meanwhile: each open
        # one is closed with 1001, and the daemon exits 0
        stop.clear()
        t = threading.Thread(target=self.churn, args=(stop, errors))
        t.start()
        try:
            gh.send_signal(signal.SIGTERM)
            for ws in old + new:
                self.assertEqual(ws.expect_close()[0], 1001)
                ws.send(close_frame(1001))
            self.assertEqual(gh.proc.wait(TIMEOUT), 0, gh.log())
        finally:
            stop.set()
            t.join(TIMEOUT)
        self.assertEqual(errors, [])
        self.assertNotIn("cannot move", gh.log())
        gh.check_sanitizers()


if __name__ == "__main__":
    ghtest.main()
