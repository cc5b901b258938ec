"""workers: N: several event loops in one process, against the real daemon:
connections spread over the workers and stay on one, /metrics adds the
workers up, reload and drain reach every worker, upstream health is one
for the process, and the config rules for workers: are checked."""
import http.client
import os
import re
import signal
import socket
import subprocess
import time

import asyncio
import json
import urllib.parse

import websockets

import ghtest
import wsutil


def raw_request(port, data):
    """(status, response bytes) of one request on its own connection."""
    resp = ghtest.raw_request(port, data)
    return int(resp.split(b" ", 2)[1]), resp

PAGE = b"<!doctype html><title>t</title><p>workers</p>\n"


def config(port, tmp, workers="2", extra="", routes=""):
    return f"""
workers: {workers}
access_log: {tmp}/access.log
error_log: stderr
log_level: info
{extra}
http:
  keepalive_timeout: 30s
listeners:
  - listen: 127.0.0.1:{port}
routes:
{routes}
  - match: {{ path: /healthz }}
    health: {{}}
  - match: {{ path: /metrics }}
    metrics: {{}}
  - match: {{ prefix: / }}
    static: {{ root: www, index: index.html }}
"""


def metrics(port):
    return ghtest.scrape(port)


def per_worker(m):
    return {int(re.search(r'worker="(\d+)"', k).group(1)): v for k, v in m.items()
            if k.startswith("gatehouse_worker_connections_accepted_total{")}


def spread_connections(port, n=64):
    """Opens n connections, each making one request, and returns them open."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        socks.append(s)
    for s in socks:
        buf = b""
        while b"ok\n" not in buf:
            b = s.recv(4096)
            if not b:
                raise AssertionError("closed before the answer")
            buf += b
    return socks


class WorkersTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.write("www/index.html", PAGE)
        self.port = ghtest.free_port()

    def test_connections_spread_over_the_workers_and_metrics_add_them_up(self):
        g = self.start(config(self.port, self.tmp, workers="3"))
        self.assertIn("3 workers", g.log())
        socks = spread_connections(self.port, 64)
        m = metrics(self.port)
        by_worker = per_worker(m)
        self.assertEqual(sorted(by_worker), [0, 1, 2])
        # the kernel hashes each connection to one worker's socket: with 64
        # connections every worker has some (each misses all 64 with
        # probability (2/3)^64)
        for w, n in by_worker.items():
            self.assertGreater(n, 0, f"worker {w} accepted nothing: {by_worker}")
        # the sum over the workers is the process's figure, and each
        # connection is counted on one worker only
        self.assertEqual(sum(by_worker.values()), m["gatehouse_connections_accepted_total"])
        self.assertEqual(m["gatehouse_connections_accepted_total"], 65)   # and the scrape's
        self.assertEqual(m['gatehouse_connections_open{listener="127.0.0.1:%d",kind="http"}'
                           % self.port], 65)
        # a response is counted when it is done, just after a small one went
        # out in one writev: the last of the 64 may be counted a moment
        # after another worker answered this scrape. Each scrape's own
        # response counts too, so the k-th scrape (from 0) shows exactly
        # 64 + k once every one before it is counted.
        scrapes = [m]
        ghtest.wait_for(lambda: scrapes[-1]['gatehouse_http_responses_total{class="2xx"}'] ==
                        64 + len(scrapes) - 1 or scrapes.append(metrics(self.port)), 10,
                        "the 64 responses (and the scrapes before) counted")
        for s in socks:
            s.close()
        ghtest.wait_for(lambda: metrics(self.port)[
            'gatehouse_connections_open{listener="127.0.0.1:%d",kind="http"}' % self.port] == 1,
            10, "the closed connections to leave the gauge")

    def test_a_connection_stays_on_one_worker_for_its_requests(self):
        self.start(config(self.port, self.tmp))
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        before = None
        for _ in range(20):
            c.request("GET", "/metrics")
            r = c.getresponse()
            body = r.read().decode()
            accepted = re.findall(r'^gatehouse_worker_connections_accepted_total\{worker="(\d+)"\} (\d+)$',
                                  body, re.M)
            if before is None:
                before = accepted
            self.assertEqual(accepted, before)    # no new connection was made
        c.close()

    def test_auto_is_the_cpus_of_the_affinity_mask(self):
        g = self.start(config(self.port, self.tmp, workers="auto"))
        n = len(os.sched_getaffinity(0))
        self.assertIn(f"{n} worker{'s' if n > 1 else ''})", g.log())
        g.stop()
        # taskset narrows the mask: one CPU, one worker
        port = ghtest.free_port()
        conf = os.path.join(self.tmp, "one.yaml")
        with open(conf, "w") as f:
            f.write(config(port, self.tmp, workers="auto"))
        cpu = str(sorted(os.sched_getaffinity(0))[0])
        p = subprocess.Popen(["taskset", "-c", cpu, ghtest.GH_BIN, "-c", conf],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            line = b""
            while b"ready:" not in line:
                line = p.stderr.readline()
                self.assertTrue(line, "gatehouse exited before it was ready")
            self.assertIn(b"1 worker)", line)
        finally:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=15)

    def test_reload_reaches_every_worker(self):
        g = self.start(config(self.port, self.tmp))
        port2 = ghtest.free_port()
        with open(g.conf, "w") as f:
            f.write(config(self.port, self.tmp, routes="""
  - match: { path: /new }
    redirect_https: { status: 308 }
""").replace("listeners:\n", f"listeners:\n  - listen: 127.0.0.1:{port2}\n"))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        # every new connection, whichever worker takes it, sees the new
        # generation once "reloaded" is logged, on the old and the new port
        for port in (self.port, port2):
            for _ in range(32):
                st, resp = raw_request(port, b"GET /new HTTP/1.1\r\nHost: h\r\n"
                                             b"Connection: close\r\n\r\n")
                self.assertEqual(st, 308, resp)
            m = metrics(port)
            seen = {w for w, n in per_worker(m).items() if n > 0}
            self.assertEqual(seen, {0, 1})
        self.assertEqual(metrics(self.port)['gatehouse_reloads_total{result="ok"}'], 1)

    def test_a_changed_worker_count_is_refused_on_reload(self):
        g = self.start(config(self.port, self.tmp))
        with open(g.conf, "w") as f:
            f.write(config(self.port, self.tmp, workers="3"))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reload failed")
        self.assertRegex(g.log(), r"reload refused: .*gateway\.yaml:2:10: workers: 3, and 2 run: "
                                  r"the count takes effect at start only")
        self.assertEqual(raw_request(self.port, b"GET / HTTP/1.1\r\nHost: h\r\n"
                                                b"Connection: close\r\n\r\n")[0], 200)

    def test_drain_finishes_every_workers_responses_and_closes_idle_ones(self):
        size = 16 << 20
        with open(self.path("www/big.bin"), "wb") as f:
            f.truncate(size)
        g = self.start(config(self.port, self.tmp, extra="drain_timeout: 10s"))
        busy, idle = [], spread_connections(self.port, 16)
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
            busy.append((s, s.recv(4096)))
        m = metrics(self.port)
        self.assertTrue(all(n > 0 for n in per_worker(m).values()), per_worker(m))
        g.send_signal(signal.SIGTERM)
        g.wait_log("draining")
        for s in idle:
            s.settimeout(10)
            self.assertEqual(s.recv(10), b"")      # idle keep-alive: closed at once
        for s, first in busy:
            got = len(first)
            while True:
                b = s.recv(1 << 16)
                if not b:
                    break
                got += len(b)
            self.assertEqual(got - first.index(b"\r\n\r\n") - 4, size)
        self.assertEqual(g.proc.wait(15), 0)

    def test_max_connections_counts_every_worker(self):
        self.start(config(self.port, self.tmp, extra="max_connections: 6"))
        # six open, on whichever workers: the process is at its limit, so a
        # seventh waits in the backlog whichever worker's socket it reaches
        # (a limit per worker would have served it)
        socks = spread_connections(self.port, 6)
        extra = socket.create_connection(("127.0.0.1", self.port), timeout=1)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        with self.assertRaises(socket.timeout):
            extra.recv(4096)
        socks[0].close()
        extra.settimeout(10)
        self.assertIn(b"ok\n", extra.recv(4096))


class WorkersUpstreamTest(ghtest.TestCase):

    def test_a_server_marked_down_on_one_worker_is_down_on_all(self):
        self.write("www/index.html", PAGE)
        port, dead = ghtest.free_port(), ghtest.free_port()
        routes = f"""
  - match: {{ prefix: /app }}
    proxy: {{ url: "http://127.0.0.1:{dead}" }}
"""
        self.start(config(port, self.tmp, routes=routes))
        # the first request finds the server refusing: 502, and marks it
        # down (max_fails 1, fail_timeout 10s by default)
        st, _ = raw_request(port, b"GET /app HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        self.assertEqual(st, 502)
        statuses = []
        for _ in range(32):
            st, _ = raw_request(port, b"GET /app HTTP/1.1\r\nHost: h\r\n"
                                         b"Connection: close\r\n\r\n")
            statuses.append(st)
        m = metrics(port)
        self.assertEqual({w for w, n in per_worker(m).items() if n > 0}, {0, 1})
        # every later request, on either worker, knows it is down: no
        # second connect was tried
        self.assertEqual(statuses, [503] * 32)
        fails = [v for k, v in m.items()
                 if k.startswith("gatehouse_upstream_failures_total{") and 'reason="connect"' in k]
        self.assertEqual(sum(fails), 1)

    def test_a_servers_latency_average_is_every_workers_not_their_sum(self):
        app = self.http_app(b"s", delay=0.03)
        self.write("www/index.html", PAGE)
        port = ghtest.free_port()
        routes = f"""
  - match: {{ prefix: /app }}
    proxy: {{ url: "http://127.0.0.1:{app}" }}
"""
        self.start(config(port, self.tmp, workers="4", routes=routes))
        slowest = 0
        for _ in range(24):
            t0 = time.monotonic()
            st, _ = raw_request(port, b"GET /app HTTP/1.1\r\nHost: h\r\n"
                                         b"Connection: close\r\n\r\n")
            slowest = max(slowest, time.monotonic() - t0)
            self.assertEqual(st, 200)
        m = metrics(port)
        self.assertGreater(len([n for n in per_worker(m).values() if n > 0]), 1)
        # each worker averages its own responses and the figure weighs those
        # averages by the responses each took: an average of response times,
        # so no more than the slowest whole request took (a sum over the
        # workers would be twice 30 ms or more)
        [latency] = [v for k, v in m.items() if k.startswith("gatehouse_upstream_latency_seconds{")]
        self.assertGreaterEqual(latency, 0.03)
        self.assertLessEqual(latency, slowest)


def chat_route(path, **config):
    cfg = ", ".join(f"{k}: {v}" for k, v in config.items())
    return f"""
  - match: {{ path: {path} }}
    websocket: {{ plugin: chat, config: {{ {cfg} }} }}
"""


class PublisherBackpressureTest(ghtest.TestCase):
    """worker_backlog: a client flooding a topic is paced by the worker that
    is behind, and nothing is lost or reordered."""

    def test_a_flooding_publisher_is_paused_until_the_other_worker_catches_up(self):
        port = ghtest.free_port()
        routes = """  - match: { path: /ws/ps }
    websocket: { plugin: pubsub, send_backlog: 16MiB, compression: off, idle_timeout: 0,
                 ping_interval: 0 }
  - match: { path: /metrics }
    metrics: {}
"""
        g = self.start(wsutil.ws_config(port, self.tmp, routes, "workers: 2\nworker_backlog: 4KiB"))
        subs = [wsutil.RawWS(port, "/ws/ps?topic=flood") for _ in range(16)]
        pub = wsutil.RawWS(port, "/ws/ps?topic=flood")
        for s in subs + [pub]:
            self.assertEqual(s.status, 101)
        m = ghtest.scrape(port)
        on = [v for k, v in m.items()
              if k.startswith("gatehouse_worker_connections_open{") and 'kind="websocket"' in k]
        self.assertEqual(len(on), 2)
        self.assertTrue(all(v > 0 for v in on), m)      # both workers have subscribers
        n = 2000
        pub.send(b"".join(wsutil.frame(wsutil.OP_TEXT, b"%06d" % i + b"x" * 1018)
                          for i in range(n)))
        for s in subs:
            for i in range(n):
                op, data = s.recv_message()
                self.assertEqual(data[:6], b"%06d" % i)
        m = ghtest.scrape(port)
        # 2 MB published in 64 KiB reads on one worker while the other frames
        # and queues each message for its subscribers: it falls behind by
        # more than 4 KiB, and the publisher waits for it
        self.assertGreater(m["gatehouse_websocket_publishers_paused_total"], 0)
        self.assertEqual(m["gatehouse_websocket_slow_consumers_total"], 0)
        for s in subs + [pub]:
            s.sock.close()
        self.assertEqual(g.stop(), 0)


class ChatAcrossWorkersTest(ghtest.TestCase):
    """A room whose members are on four workers is one room."""

    def setUp(self):
        super().setUp()
        self.port = ghtest.free_port()
        routes = ("  - match: { path: /metrics }\n    metrics: {}\n" + chat_route("/ws/chat", rate=0)
                  + chat_route("/ws/small", max_users=5, rate=0))
        self.gh = self.start(wsutil.ws_config(self.port, self.tmp, routes, "workers: 4"))

    def tearDown(self):
        self.assertEqual(self.gh.stop(), 0, self.gh.log()[-4000:])
        super().tearDown()

    def websockets_by_worker(self):
        m = ghtest.scrape(self.port)
        return {int(re.search(r'worker="(\d+)"', k).group(1)): v for k, v in m.items()
                if k.startswith("gatehouse_worker_connections_open{") and 'kind="websocket"' in k}

    async def join(self, room, nick, path="/ws/chat"):
        """Joins; returns (ws, welcome, the worker it landed on)."""
        before = self.websockets_by_worker()
        ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}{path}?" + urllib.parse.urlencode({"room": room, "nick": nick}),
            ping_interval=None, close_timeout=2)
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        after = self.websockets_by_worker()
        moved = [w for w in after if after[w] == before.get(w, 0) + 1]
        self.assertEqual(len(moved), 1, (before, after))
        return ws, welcome, moved[0]

    async def members_on_every_worker(self, room, path="/ws/chat", most=40):
        """Joins members (nicks u0, u1, ...) until each of the 4 workers has
        one, then closes the extra ones; returns [(ws, nick, worker)]."""
        kept, seen = [], set()
        for i in range(most):
            ws, welcome, w = await self.join(room, f"u{i}", path)
            if w in seen:
                await ws.close()
                # gone from the gauges before the next join counts them
                ghtest.wait_for(lambda: sum(self.websockets_by_worker().values()) == len(kept),
                                10, "the closed WebSocket to leave the gauge")
                continue
            seen.add(w)
            kept.append((ws, welcome["nick"], w))
            if len(seen) == 4:
                return kept
        self.fail(f"{most} connections reached only workers {sorted(seen)}")

    async def recv(self, ws):
        return json.loads(await asyncio.wait_for(ws.recv(), 5))

    async def recv_until(self, ws, type_):
        while True:
            m = await self.recv(ws)
            if m["type"] == type_:
                return m

    def test_one_room_one_order_welcome_nicks_and_leaving_across_four_workers(self):
        async def go():
            members = await self.members_on_every_worker("lobby")
            nicks = [n for _, n, _ in members]
            self.assertEqual(sorted(w for _, _, w in members), [0, 1, 2, 3])
            # the welcome of one more lists everyone, in join order
            late, welcome, _ = await self.join("lobby", "late")
            self.assertEqual(welcome["users"], nicks + ["late"])
            # a nick taken on another worker is not given twice
            dup, welcome2, _ = await self.join("lobby", nicks[0])
            self.assertNotEqual(welcome2["nick"], nicks[0])
            everyone = [ws for ws, _, _ in members] + [late, dup]
            for ws in everyone[:-2]:
                await self.recv_until(ws, "joined")        # late
                await self.recv_until(ws, "joined")        # dup
            await self.recv_until(late, "joined")
            # every member says three things at once, from four workers:
            # everyone gets all of them, in one and the same order
            for k in range(3):
                for ws, n, _ in members:
                    await ws.send(json.dumps({"type": "say", "text": f"{n}-{k}"}))
            orders = []
            for ws in everyone:
                got = []
                while len(got) < 3 * len(members):
                    m = await self.recv(ws)
                    if m["type"] == "said":
                        got.append(m["text"])
                orders.append(got)
            self.assertEqual(sorted(orders[0]), sorted(f"{n}-{k}" for n in nicks for k in range(3)))
            for o in orders[1:]:
                self.assertEqual(o, orders[0])
            # a member leaving on one worker is announced on the others
            gone_ws, gone_nick, gone_worker = members[1]
            await gone_ws.close()
            for ws, _, w in members[:1] + members[2:]:
                m = await self.recv_until(ws, "left")
                self.assertEqual(m["nick"], gone_nick)
            # and the room's state knows: a new welcome lists the rest (once
            # the closed one left the gauges: join() finds the new one's
            # worker by them)
            ghtest.wait_for(lambda: sum(self.websockets_by_worker().values()) == len(everyone) - 1,
                            10, "the closed WebSocket to leave the gauge")
            again, welcome3, _ = await self.join("lobby", "again")
            self.assertNotIn(gone_nick, welcome3["users"])
            self.assertEqual(len(welcome3["users"]), len(members) - 1 + 2 + 1)
            for ws in everyone + [again]:
                if ws is not gone_ws:
                    await ws.close()
        asyncio.run(asyncio.wait_for(go(), 60))

    def test_max_users_holds_across_workers(self):
        async def go():
            members = await self.members_on_every_worker("tiny", "/ws/small")
            # four on four workers: one more fits, the next is refused
            fifth, _, _ = await self.join("tiny", "fifth", "/ws/small")
            ws = await websockets.connect(
                f"ws://127.0.0.1:{self.port}/ws/small?room=tiny&nick=sixth",
                ping_interval=None, close_timeout=2)
            with self.assertRaises(websockets.exceptions.ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            self.assertEqual(ws.close_code, 1008)
            for w, _, _ in members:
                await w.close()
            await fifth.close()
        asyncio.run(asyncio.wait_for(go(), 60))


    def test_nicks_and_places_asked_at_the_same_moment_are_given_once(self):
        """Eight clients ask for one nick (in two spellings: nicks compare
        case-folded) at once, spread over the workers: each gets another
        one. Eight ask for a room of five at once: five get in. The claim
        is checked and taken in one step (member_claim); checking a
        snapshot and then setting would give "ann" twice."""
        async def ask(room, nick, path):
            ws = await websockets.connect(
                f"ws://127.0.0.1:{self.port}{path}?"
                + urllib.parse.urlencode({"room": room, "nick": nick}),
                ping_interval=None, close_timeout=2)
            try:
                return ws, json.loads(await asyncio.wait_for(ws.recv(), 5))
            except websockets.exceptions.ConnectionClosed:
                return ws, {"type": "closed", "code": ws.close_code}

        async def go():
            for rnd in range(5):
                got = await asyncio.gather(*(ask(f"race{rnd}", "ann" if i % 2 else "ANN",
                                                 "/ws/chat") for i in range(8)))
                nicks = [w["nick"] for _, w in got]
                self.assertEqual(len({n.lower() for n in nicks}), 8, nicks)
                for ws, _ in got:
                    await ws.close()
            got = await asyncio.gather(*(ask("full", f"p{i}", "/ws/small") for i in range(8)))
            kinds = sorted(w["type"] for _, w in got)
            self.assertEqual(kinds.count("welcome"), 5, [w for _, w in got])
            self.assertEqual(len(kinds) - kinds.count("welcome"), 3, kinds)
            for _, w in got:
                if w["type"] != "welcome":
                    self.assertIn(w, ({"type": "error", "reason": "room full"},
                                      {"type": "closed", "code": 1008}))
            for ws, _ in got:
                await ws.close()
        asyncio.run(asyncio.wait_for(go(), 60))


class WorkersWebSocketTest(ghtest.TestCase):
    """Reload and drain with four workers and 200 open WebSockets."""

    def test_200_websockets_on_four_workers_survive_a_reload_and_drain_with_1001(self):
        port = ghtest.free_port()
        routes = ("  - match: { path: /metrics }\n    metrics: {}\n"
                  "  - match: { path: /ws/echo }\n    websocket: { plugin: echo }\n")
        g = self.start(wsutil.ws_config(port, self.tmp, routes, "workers: 4"))
        socks = [wsutil.RawWS(port, "/ws/echo") for _ in range(200)]
        self.assertTrue(all(w.status == 101 for w in socks))
        m = ghtest.scrape(port)
        by_worker = {int(re.search(r'worker="(\d+)"', k).group(1)): v for k, v in m.items()
                     if k.startswith("gatehouse_worker_connections_open{") and 'kind="websocket"' in k}
        self.assertEqual(sum(by_worker.values()), 200)
        self.assertTrue(all(n > 0 for n in by_worker.values()), by_worker)
        # a reload: every worker takes the new generation, no WebSocket is cut
        g.rewrite(wsutil.ws_config(port, self.tmp, routes + "  - match: { path: /new }\n"
                                   "    health: {}\n", "workers: 4"))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        for i, w in enumerate(socks):
            w.send(wsutil.frame(wsutil.OP_TEXT, f"after reload {i}"))
        for i, w in enumerate(socks):
            self.assertEqual(w.recv_message(), (wsutil.OP_TEXT, f"after reload {i}".encode()))
        self.assertEqual(ghtest.raw_request(port, b"GET /new HTTP/1.1\r\nHost: h\r\n"
                                                  b"Connection: close\r\n\r\n").split(b" ")[1], b"200")
        # the drain: every worker closes its WebSockets with 1001, then exits 0
        g.send_signal(signal.SIGTERM)
        for w in socks:
            code, _ = w.expect_close()
            self.assertEqual(code, 1001)
            w.send(wsutil.close_frame(1001))
        self.assertEqual(g.proc.wait(15), 0)


class WorkersConfigTest(ghtest.TestCase):

    def check(self, text):
        path = self.write("gw.yaml", text)
        p = subprocess.run([ghtest.GH_BIN, "-t", "-c", path], capture_output=True, text=True)
        return p.returncode, p.stderr

    def test_bad_values_are_errors_at_their_place(self):
        base = "listeners:\n  - listen: 127.0.0.1:1\n"
        for value, msg in (("0", "expected auto or a whole number in 1..256, got \"0\""),
                           ("257", "expected auto or a whole number in 1..256, got \"257\""),
                           ("many", 'expected auto or a whole number in 1..256, got "many"')):
            rc, err = self.check(f"workers: {value}\n" + base)
            self.assertEqual(rc, 1)
            self.assertIn(f"gw.yaml:1:10: workers: {msg}", err)
        # a bus serves any number of workers (test_chat_cluster's workers tests)
        rc, err = self.check("workers: 2\nbus: { redis: \"redis://127.0.0.1:6379\" }\n" + base)
        self.assertEqual(rc, 0, err)
        rc, err = self.check("workers: 1\n" + base)
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    ghtest.main()
