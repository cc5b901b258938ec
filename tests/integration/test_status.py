"""status: {}: the page and its files, built into the daemon from www/status/;
its JSON feed (?format=json), which says what /metrics says at the same
moment; allow: on the route deciding by the PROXY source; the busiest rooms
with their members, the plugins with their versions (and refused files),
the upstream servers with their health and latency, the last reload."""
import http.client
import json
import os
import re
import shutil
import signal

import ghtest
import wsutil
from wsutil import RawWS, frame, OP_TEXT


def request(port, path, method="GET", conn=None):
    """(status, headers, body); on conn when given (kept open)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def parse_metrics(text):
    out = {}
    for line in text.decode().splitlines():
        if line and not line.startswith("#"):
            m = ghtest.METRIC_LINE.match(line)
            assert m, line
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def feed_samples(d):
    """The feed's numbers under the names /metrics gives them."""
    s = {
        "gatehouse_connections_accepted_total": d["connections"]["accepted"],
        "gatehouse_proxy_headers_accepted_total": d["proxy_headers"]["accepted"],
        'gatehouse_tls_handshakes_total{result="ok"}': d["tls_handshakes"]["ok"],
        'gatehouse_tls_handshakes_total{result="failed"}': d["tls_handshakes"]["failed"],
        "gatehouse_route_denied_total": d["route_denied"],
        'gatehouse_websocket_messages_total{direction="in"}': d["websocket"]["messages_in"],
        'gatehouse_websocket_messages_total{direction="out"}': d["websocket"]["messages_out"],
        'gatehouse_websocket_bytes_total{direction="in"}': d["websocket"]["bytes_in"],
        'gatehouse_websocket_bytes_total{direction="out"}': d["websocket"]["bytes_out"],
        "gatehouse_websocket_slow_consumers_total": d["websocket"]["slow_consumers"],
        "gatehouse_config_generation": d["config"]["generation"],
        'gatehouse_reloads_total{result="ok"}': d["config"]["reloads_ok"],
        'gatehouse_reloads_total{result="failed"}': d["config"]["reloads_failed"],
        "gatehouse_process_start_time_seconds": d["start_time"],
        "gatehouse_draining": 1 if d["draining"] else 0,
    }
    for reason, n in d["proxy_headers"]["refused_by_reason"].items():
        s[f'gatehouse_proxy_headers_refused_total{{reason="{reason}"}}'] = n
    for cls, n in d["http_responses"].items():
        s[f'gatehouse_http_responses_total{{class="{cls}"}}'] = n
    for k, n in d["client_limited"].items():
        s[f'gatehouse_client_limited_total{{limit="{k}"}}'] = n
    for code, n in d["websocket"]["closes"].items():
        s[f'gatehouse_websocket_closes_total{{code="{code}"}}'] = n
    for w, wk in enumerate(d["connections"]["workers"]):
        s[f'gatehouse_worker_connections_accepted_total{{worker="{w}"}}'] = wk["accepted"]
        for kind, n in wk["open"].items():
            s[f'gatehouse_worker_connections_open{{worker="{w}",kind="{kind}"}}'] = n
    last = d["config"]["last_reload"]
    s["gatehouse_config_last_reload_successful"] = 0 if last and not last["ok"] else 1
    s["gatehouse_config_last_reload_timestamp_seconds"] = last["time"] if last else 0
    for l in d["connections"]["listeners"]:
        for kind, n in l["open"].items():
            s[f'gatehouse_connections_open{{listener="{l["listen"]}",kind="{kind}"}}'] = n
    for u in d["upstreams"]:
        for sv in u["servers"]:
            lab = f'upstream="{u["name"]}",server="{sv["address"]}"'
            s[f"gatehouse_upstream_requests_total{{{lab}}}"] = sv["requests"]
            s[f"gatehouse_upstream_up{{{lab}}}"] = 1 if sv["up"] else 0
            s[f'gatehouse_upstream_connections{{{lab},state="active"}}'] = sv["active"]
            s[f'gatehouse_upstream_connections{{{lab},state="idle"}}'] = sv["idle"]
            for cls, n in sv["responses"].items():
                s[f'gatehouse_upstream_responses_total{{{lab},class="{cls}"}}'] = n
            if sv["latency_seconds"] is not None:
                s[f"gatehouse_upstream_latency_seconds{{{lab}}}"] = sv["latency_seconds"]
    return s


def chat(port, room, nick):
    ws = RawWS(port, f"/ws/chat?room={room}&nick={nick}")
    assert ws.status == 101, ws.status
    op, data = ws.recv_message()
    assert json.loads(data)["type"] == "welcome", data
    return ws


def say(ws, text):
    ws.send(frame(OP_TEXT, json.dumps({"type": "say", "text": text}).encode()))


class StatusTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.app_port = self.http_app(b"app")
        self.port = ghtest.free_port()
        self.pport = ghtest.free_port()
        while self.pport == self.port:
            self.pport = ghtest.free_port()
        # a plugins folder of our own: chat, pubsub, and a file that is no plugin
        self.plugins = self.path("plugins")
        os.mkdir(self.plugins, 0o755)
        for name in ("chat.so", "pubsub.so"):
            shutil.copy(os.path.join(wsutil.plugins_dir(), name), self.plugins)
        self.write("plugins/junk.so", b"not an ELF file\n", mode=0o644)
        self.gh = self.start(self.config())

    def config(self, status_allow="[127.0.0.1, 10.1.0.0/16]"):
        return f"""
plugins_dir: {self.plugins}
access_log: {self.tmp}/access.log
error_log: stderr
upstreams:
  app:
    servers: [127.0.0.1:{self.app_port}]
listeners:
  - listen: 127.0.0.1:{self.port}
  - listen: 127.0.0.1:{self.pport}
    proxy_protocol: v1
    trusted_proxies: [127.0.0.1/32]
routes:
  - match: {{ path: /status }}
    allow: {status_allow}
    status: {{}}
  - match: {{ path: /metrics }}
    metrics: {{}}
  - match: {{ path: /ws/chat }}
    websocket: {{ plugin: chat }}
  - match: {{ path: /ws/pubsub }}
    websocket: {{ plugin: pubsub }}
  - match: {{ prefix: /app/ }}
    proxy: {{ upstream: app }}
"""

    def feed(self, port=None, conn=None):
        status, headers, body = request(port or self.port, "/status?format=json", conn=conn)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["content-type"], "application/json; charset=utf-8")
        return json.loads(body)

    def test_the_page_and_its_files_are_the_ones_in_www_status(self):
        www = os.path.join(ghtest.GH_SRC, "www", "status")
        status, h, page = request(self.port, "/status")
        self.assertEqual(status, 200)
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        with open(os.path.join(www, "index.html"), "rb") as f:
            self.assertEqual(page, f.read())
        # the page may load and fetch from its own origin only
        csp = h["content-security-policy"]
        for part in ("default-src 'none'", "script-src 'self'", "connect-src 'self'",
                     "frame-ancestors 'none'"):
            self.assertIn(part, csp)
        for name, ctype in (("status.js", "text/javascript; charset=utf-8"),
                            ("status.css", "text/css; charset=utf-8")):
            self.assertIn(f'"?asset={name}"'.encode(), page)
            status, h, body = request(self.port, f"/status?asset={name}")
            self.assertEqual((status, h["content-type"]), (200, ctype))
            with open(os.path.join(www, name), "rb") as f:
                self.assertEqual(body, f.read(), f"{name} is not the one built in")
        for bad in ("index.html", "../status.js", "status.js%00", "", "nope.js"):
            self.assertEqual(request(self.port, f"/status?asset={bad}")[0], 404, bad)
        # other parameters are ignored; HEAD has no body; nothing but GET and HEAD
        self.assertEqual(request(self.port, "/status?x=1&format=html")[2], page)
        self.assertEqual(request(self.port, "/status?x=1&format=json")[1]["content-type"],
                         "application/json; charset=utf-8")
        status, h, body = request(self.port, "/status?format=json", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(request(self.port, "/status", method="POST")[0], 405)

    def test_the_feed_equals_metrics_at_the_same_moment(self):
        ann, bob = chat(self.port, "it-room", "ann"), chat(self.port, "it-room", "bob")
        self.addCleanup(ann.close)
        self.addCleanup(bob.close)
        for i in range(5):
            say(ann, f"hello {i}")
        for i in range(5):       # bob sees ann's joining and her five messages
            op, data = bob.recv_message()
            self.assertEqual(json.loads(data)["type"], "said", data)
        self.assertEqual(request(self.port, "/app/x")[2], b"app")
        self.assertEqual(request(self.port, "/nowhere")[0], 404)
        self.assertEqual(ghtest.raw_request(self.pport, b"PROXY nonsense\r\n"), b"")
        ghtest.wait_for(lambda: self.feed()["proxy_headers"]["refused"] == 1, 5, "the refusal")

        # metrics, feed, metrics on one connection: nothing else happens in
        # between but the answers themselves (each a 2xx, counted after it
        # is sent), so every number of the feed lies between the two scrapes
        # and equals them where they agree
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        self.addCleanup(conn.close)
        # the connections of the requests above are closed by the time
        # only this one is open
        ghtest.wait_for(lambda: self.feed(conn=conn)["connections"]["open"]["http"] == 1, 5,
                        "the other HTTP connections to close")
        before = parse_metrics(request(self.port, "/metrics", conn=conn)[2])
        d = self.feed(conn=conn)
        after = parse_metrics(request(self.port, "/metrics", conn=conn)[2])
        got = feed_samples(d)
        equal = []
        for name, v in got.items():
            self.assertIn(name, before, f"the feed has {name}, /metrics does not")
            lo, hi = sorted((before[name], after[name]))
            self.assertTrue(lo <= v <= hi, f"{name}: feed {v}, metrics {before[name]}..{after[name]}")
            if before[name] == after[name]:
                self.assertEqual(v, before[name], name)
                equal.append(name)
        moved = sorted(set(got) - set(equal))
        self.assertEqual(moved, ['gatehouse_http_responses_total{class="2xx"}'], moved)
        # and the traffic is in what was compared
        self.assertEqual(d["websocket"]["messages_in"], 5)
        self.assertGreaterEqual(d["websocket"]["messages_out"], 5 * 2 + 1)   # said x2, joined
        self.assertEqual(d["connections"]["open"], {"http": 1, "websocket": 2, "tunnel": 0})
        self.assertEqual(d["proxy_headers"]["refused"], 1)
        self.assertEqual(d["http_responses"]["4xx"], 1)
        self.assertEqual(d["upstreams"][0]["servers"][0]["requests"], 1)
        self.assertEqual(d["upstreams"][0]["servers"][0]["state"], "up")
        # a figure once it has answered (0.0 when within a millisecond)
        self.assertGreaterEqual(d["upstreams"][0]["servers"][0]["latency_seconds"], 0)
        self.assertEqual(d["rooms"]["busiest"],
                         [{"plugin": "chat", "room": "it-room", "subscribers": 2, "members": 2,
                           "messages": 7}])        # two joined, five said
        self.assertAlmostEqual(d["uptime_seconds"], d["now"] - d["start_time"], delta=0.002)

    def test_allow_decides_by_the_proxy_source(self):
        def via_balancer(client):
            pre = f"PROXY TCP4 {client} 127.0.0.1 40000 443\r\n".encode()
            resp = ghtest.raw_request(self.pport, pre + b"GET /status?format=json HTTP/1.1\r\n"
                                                        b"Host: x\r\nConnection: close\r\n\r\n")
            return int(resp.split(b" ", 2)[1]), resp.split(b"\r\n\r\n", 1)[1]
        denied = self.feed()["route_denied"]
        # the balancer (127.0.0.1) is in the list, but speaks for a client
        # who is not: refused; for one who is: admitted
        status, _ = via_balancer("198.51.100.7")
        self.assertEqual(status, 403)
        status, body = via_balancer("10.1.2.3")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["proxy_headers"]["accepted"], 2)
        self.assertEqual(self.feed()["route_denied"], denied + 1)
        # the page and its files are behind the same list
        pre = b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n"
        for path in (b"/status", b"/status?asset=status.js"):
            resp = ghtest.raw_request(self.pport, pre + b"GET " + path + b" HTTP/1.1\r\n"
                                                    b"Host: x\r\nConnection: close\r\n\r\n")
            self.assertTrue(resp.startswith(b"HTTP/1.1 403 "), resp[:80])

    def test_rooms_are_the_busiest_first_and_names_are_escaped(self):
        subs = [RawWS(self.port, "/ws/pubsub?topic=quiet")]
        subs += [RawWS(self.port, "/ws/pubsub?topic=a\\b<c>") for _ in range(3)]
        subs += [RawWS(self.port, f"/ws/pubsub?topic=t{i}") for i in range(30)]
        for s in subs:
            self.addCleanup(s.close)
            self.assertEqual(s.status, 101)
        subs[0].send(frame(OP_TEXT, b"x"))
        self.assertEqual(subs[0].recv_message(), (OP_TEXT, b"x"))
        # a plugin's open (here: subscribe) runs just after its 101 is
        # written: the last ones may be a moment behind on another worker
        ghtest.wait_for(lambda: self.feed()["rooms"]["count"] == 32, 5, "every room")
        d = self.feed()
        if len(d["connections"]["workers"]) > 1:
            # with several workers the subscribers are spread over them (the
            # kernel's choice: 34 connections all on one is ~1e-10), and the
            # rooms are still every worker's
            on = [w for w in d["connections"]["workers"] if w["open"]["websocket"] > 0]
            self.assertGreater(len(on), 1, d["connections"]["workers"])
        rooms = d["rooms"]
        self.assertEqual(rooms["count"], 32)
        self.assertEqual(len(rooms["busiest"]), 20)
        first, second = rooms["busiest"][:2]
        self.assertEqual((first["room"], first["subscribers"]), ("a\\b<c>", 3))
        self.assertEqual((second["room"], second["messages"]), ("quiet", 1))
        self.assertEqual(first["members"], 0)       # pubsub keeps no members
        # then by name, so equal rooms keep their places
        rest = [r["room"] for r in rooms["busiest"][2:]]
        self.assertEqual(rest, sorted(rest))

    def test_plugins_with_their_versions_and_the_files_refused(self):
        plugins = self.feed()["plugins"]
        loaded = {p["name"]: p for p in plugins["loaded"]}
        self.assertEqual(sorted(loaded), ["chat", "pubsub"])
        self.assertEqual(loaded["chat"]["version"], "1.1")
        self.assertEqual(loaded["chat"]["abi"], [ghtest.ABI_MAJOR, ghtest.ABI_MINOR])
        self.assertEqual((loaded["chat"]["routes"], loaded["chat"]["routes_failed"]), (1, 0))
        self.assertEqual(loaded["pubsub"]["file"], os.path.join(self.plugins, "pubsub.so"))
        self.assertEqual([r["file"] for r in plugins["refused"]], ["junk.so"])
        self.assertTrue(plugins["refused"][0]["reason"])
        self.assertIsNone(self.feed()["bus"])

    def test_the_last_reload_its_time_result_and_first_error(self):
        d = self.feed()
        self.assertEqual((d["config"]["generation"], d["config"]["last_reload"]), (1, None))
        self.assertEqual(d["config"]["path"], self.gh.conf)
        with open(self.gh.conf, "w") as f:
            f.write(self.config().replace("status: {}", "status: { root: www }"))
        self.gh.send_signal(signal.SIGHUP)
        self.gh.wait_log("reload failed")
        d = self.feed()
        r = d["config"]["last_reload"]
        self.assertEqual((d["config"]["generation"], r["ok"]), (1, False))
        self.assertRegex(r["error"], "^" + re.escape(self.gh.conf) + r":\d+:\d+: .*root")
        self.assertLessEqual(r["time"], d["now"])
        with open(self.gh.conf, "w") as f:
            f.write(self.config(status_allow="[127.0.0.0/8]"))
        self.gh.send_signal(signal.SIGHUP)
        self.gh.wait_log("reloaded")
        d = self.feed()
        self.assertEqual(d["config"]["generation"], 2)
        self.assertEqual(d["config"]["last_reload"]["ok"], True)
        self.assertIsNone(d["config"]["last_reload"]["error"])
        self.assertEqual(self.gh.stop(), 0, self.gh.log()[-3000:])


class StatusOneWorkerTest(StatusTest):
    """The same with one worker: no hub, the rooms are the worker's own
    topics table and topic state."""

    def config(self, status_allow="[127.0.0.1, 10.1.0.0/16]"):
        return super().config(status_allow) + "workers: 1\n"


class StatusFourWorkersTest(StatusTest):
    """The same with four workers, whichever of them answers: the counters
    and open connections are every worker's (as /metrics), the rooms the
    hub's (subscribers on every worker, the room's members), the upstream
    servers every worker's pool's, the last reload the daemon's."""

    def config(self, status_allow="[127.0.0.1, 10.1.0.0/16]"):
        return super().config(status_allow) + "workers: 4\n"


if __name__ == "__main__":
    ghtest.main()
