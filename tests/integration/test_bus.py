"""The Redis bus: topics across gatehouse instances through a real
redis-server started here on a free port. Two and three instances with
clients of the pubsub plugin on each: a message reaches every member on
every instance exactly once, in the same order everywhere, and no one
outside the topic; Redis killed mid-test and restarted on the same port:
instances publish locally meanwhile (counted as not broadcast), then
recover; an instance killed: the others keep serving; Redis down at start:
gatehouse starts and connects later; AUTH and SELECT."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import unittest
import urllib.request

import ghtest
import wsutil
from wsutil import OP_BINARY, OP_TEXT, RawWS, frame

REDIS_SERVER = shutil.which("redis-server")

ROUTES = """
  - match: { path: /ws/ps }
    websocket: { plugin: pubsub, ping_interval: 0s }
  - match: { path: /ws/chat }
    websocket: { plugin: chat, ping_interval: 0s, config: { rate: 0 } }
  - match: { path: /metrics }
    metrics: {}
"""


class Redis:
    """A redis-server on host:port (127.0.0.1 unless told), no persistence."""

    def __init__(self, port, password=None, host="127.0.0.1"):
        self.port = port
        self.password = password
        self.host = host
        self.proc = None

    def start(self):
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", self.host, "--save", "",
                "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ghtest.wait_for(self.ping, 10.0, "redis-server to answer PING")
        return self

    def command(self, *args, timeout=2.0):
        """One command over RESP; returns the decoded reply (bytes, int,
        list) or raises."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            out = b""
            if self.password:
                out += self._encode(["AUTH", self.password])
            out += self._encode(list(args))
            s.sendall(out)
            f = s.makefile("rb")
            if self.password:
                self._read(f)
            return self._read(f)

    @staticmethod
    def _encode(args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(parts)

    def _read(self, f):
        line = f.readline()
        if not line:
            raise EOFError("redis closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2]
        if kind == b"*":
            return [self._read(f) for _ in range(int(rest))]
        raise RuntimeError("bad reply %r" % line)

    def ping(self):
        try:
            return self.command("PING", timeout=0.5) == b"PONG"
        except (OSError, EOFError, RuntimeError):
            return False

    def numsub(self, channel):
        reply = self.command("PUBSUB", "NUMSUB", channel)
        return reply[1]

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@unittest.skipIf(REDIS_SERVER is None, "redis-server is not installed (Debian: redis-server)")
class BusTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.redis_port = ghtest.free_port()
        self.redis = Redis(self.redis_port)
        self.addCleanup(self.redis.kill)
        self.n = 0

    def instance(self, redis_url=None, extra_bus="", extra_top=""):
        """Starts one gatehouse on its own port and folder, with a bus."""
        self.n += 1
        d = self.path("g%d" % self.n)
        os.makedirs(d)
        port = ghtest.free_port()
        url = redis_url or "redis://127.0.0.1:%d" % self.redis_port
        bus = 'bus: { redis: "%s", channel_prefix: "t:"%s }\n%s' % (url, extra_bus, extra_top)
        g = ghtest.Gatehouse(wsutil.ws_config(port, d, ROUTES, extra=bus), d)
        self.addCleanup(g.__exit__)
        self.addCleanup(self.stop_clean, g)
        g.wait_ready()
        g.port = port
        return g

    def stop_clean(self, g):
        """SIGTERM: exits 0 (under ASan: without a leak or an error report)."""
        if g.proc.poll() is not None and g.proc.returncode == -signal.SIGKILL:
            return                              # killed on purpose
        self.assertEqual(g.stop(), 0, g.log()[-3000:])
        self.assertNotIn("Sanitizer", g.log())

    def wait_connected(self, g, count=1, timeout=15.0):
        g.wait_log("bus: connected to redis", timeout=timeout, count=count)

    def member(self, g, topic="room"):
        ws = RawWS(g.port, "/ws/ps?topic=" + topic)
        self.assertEqual(ws.status, 101)
        self.addCleanup(ws.close)
        return ws

    def wait_subscribed_plugin(self, plugin, topic, instances):
        ghtest.wait_for(lambda: self.redis.numsub("t:%s:%s" % (plugin, topic)) == instances,
                        10.0, "%d instances subscribed to %s" % (instances, topic))

    def wait_subscribed(self, topic, instances):
        ghtest.wait_for(lambda: self.redis.numsub("t:pubsub:" + topic) == instances, 10.0,
                        "%d instances subscribed to %s" % (instances, topic))

    def metrics(self, g):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % g.port, timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    @staticmethod
    def try_recv(ws, timeout):
        """The next message, or None when none arrives within timeout."""
        ws.sock.settimeout(timeout)
        try:
            return ws.recv_message()
        except socket.timeout:
            return None
        finally:
            ws.sock.settimeout(5.0)

    def read_until(self, ws, payload, timeout=5.0):
        """Reads and drops messages until payload (text); False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            m = self.try_recv(ws, left)
            if m is None:
                return False
            if m == (OP_TEXT, payload.encode()):
                return True

    def wait_crossing(self, sender, receivers, everyone, timeout=30.0):
        """Sends probes from sender until one reaches every receiver (the
        bus works end to end), then a sync mark every member reads up to,
        so that what follows starts clean."""
        deadline = time.monotonic() + timeout
        i = 0
        while True:
            i += 1
            tag = "probe %d" % i
            sender.send(frame(OP_TEXT, tag))
            if all(self.read_until(r, tag, 0.5) for r in receivers):
                break
            if time.monotonic() > deadline:
                raise AssertionError("no message crossed the bus within %ss" % timeout)
        sender.send(frame(OP_TEXT, "sync"))
        for ws in everyone:
            self.assertTrue(self.read_until(ws, "sync"), "sync mark lost")

    def assert_exactly_once(self, members, publishers, outsiders, count=20):
        """Every publisher sends count messages (text and binary); every
        member gets all of them once, in one order shared by all; then an
        end mark proves nothing more came. Outsiders get nothing."""
        sent = []
        for p_i, pub in enumerate(publishers):
            for k in range(count):
                if k % 2:
                    msg = (OP_BINARY, bytes([p_i, k]) * (k + 1))
                else:
                    msg = (OP_TEXT, ("from %d #%d ✓" % (p_i, k)).encode())
                sent.append(msg)
                pub.send(frame(*msg))
        orders = []
        for ws in members:
            got = [ws.recv_message() for _ in sent]
            self.assertEqual(sorted(got), sorted(sent))
            orders.append(got)
        for o in orders[1:]:
            self.assertEqual(o, orders[0], "members saw different orders")
        publishers[0].send(frame(OP_TEXT, "end"))
        for ws in members:
            self.assertEqual(ws.recv_message(), (OP_TEXT, b"end"))
        for ws in outsiders:
            ws.send(frame(OP_TEXT, "outside"))
            self.assertEqual(ws.recv_message(), (OP_TEXT, b"outside"))

    # ---- tests ----

    def test_two_instances_deliver_each_message_once_to_every_member(self):
        self.redis.start()
        g1, g2 = self.instance(), self.instance()
        self.wait_connected(g1)
        self.wait_connected(g2)
        a1, a2 = self.member(g1), self.member(g1)
        b1 = self.member(g2)
        out1, out2 = self.member(g1, "other"), self.member(g2, "other2")
        self.wait_subscribed("room", 2)
        self.assert_exactly_once([a1, a2, b1], [a1, b1], [out1, out2])
        big = bytes(range(256)) * 230                  # 58,880 bytes, under max_message
        b1.send(frame(OP_BINARY, big))
        for ws in (a1, a2, b1):
            self.assertEqual(ws.recv_message(), (OP_BINARY, big))
        m1, m2 = self.metrics(g1), self.metrics(g2)
        self.assertEqual(m1["gatehouse_bus_connected"], 1)
        self.assertGreaterEqual(m1['gatehouse_bus_messages_total{direction="published"}'], 20)
        # every instance received everything said in the room: 40 + "end"
        self.assertGreaterEqual(m2['gatehouse_bus_messages_total{direction="received"}'], 41)
        self.assertEqual(m1["gatehouse_bus_not_broadcast_total"], 0)

    def test_a_message_sent_with_the_handshake_reaches_its_own_new_topic(self):
        """The first subscriber makes the instance SUBSCRIBE; a publish in
        the same breath must wait for Redis to confirm it, or it would not
        come back to the members here."""
        self.redis.start()
        g = self.instance()
        self.wait_connected(g)
        for i in range(40):
            s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
            self.addCleanup(s.close)
            req = ("GET /ws/ps?topic=fresh%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n" % (i, g.port)).encode()
            s.sendall(req + frame(OP_TEXT, "first %d" % i))
            ws = RawWS.__new__(RawWS)
            ws.sock, ws.buf = s, b""
            self.assertIn(b" 101 ", ws._read_until(b"\r\n\r\n"))
            self.assertEqual(ws.recv_message(), (OP_TEXT, b"first %d" % i))

    def test_chat_rooms_span_instances_with_the_same_plugin(self):
        """chat.so, unchanged, on two instances: said / joined / left reach
        the room on both, once, and not another room."""
        self.redis.start()
        g1, g2 = self.instance(), self.instance()
        self.wait_connected(g1)
        self.wait_connected(g2)

        def join(g, nick, room="r1"):
            ws = RawWS(g.port, "/ws/chat?room=%s&nick=%s" % (room, nick))
            self.addCleanup(ws.close)
            self.assertEqual(ws.status, 101)
            welcome = json.loads(ws.recv_message()[1])
            self.assertEqual(welcome["type"], "welcome")
            return ws

        def said(ws, text):
            ws.send(frame(OP_TEXT, json.dumps({"type": "say", "text": text})))

        def next_json(ws):
            op, data = ws.recv_message()
            self.assertEqual(op, OP_TEXT)
            return json.loads(data)

        ann = join(g1, "ann")
        self.wait_subscribed_plugin("chat", "r1", 1)
        # ann is registered in the room (Redis) once her own say has come
        # back through Redis: her registration went there before it. A
        # joiner before that point rightly gets "joined ann" after its
        # welcome instead (seen under load), which this test does not expect.
        said(ann, "registered")
        self.assertEqual(next_json(ann)["text"], "registered")
        bob = join(g2, "bob")
        self.assertEqual(next_json(ann), {"type": "joined", "nick": "bob"})
        eve = join(g2, "eve", room="r2")
        self.wait_subscribed_plugin("chat", "r1", 2)
        said(ann, "hello from 1")
        said(bob, "hello from 2")
        for ws in (ann, bob):
            got = [next_json(ws) for _ in range(2)]
            self.assertEqual(sorted((m.get("type"), m.get("from"), m.get("text")) for m in got),
                             [("said", "ann", "hello from 1"), ("said", "bob", "hello from 2")],
                             "got %r" % got)
        cat = join(g2, "cat")
        for ws in (ann, bob):
            self.assertEqual(next_json(ws), {"type": "joined", "nick": "cat"})
        bob.close()
        for ws in (ann, cat):
            self.assertEqual(next_json(ws), {"type": "left", "nick": "bob"})
        said(eve, "r2 only")
        m = next_json(eve)
        self.assertEqual((m["from"], m["text"]), ("eve", "r2 only"))
        said(ann, "last")
        self.assertEqual(next_json(ann)["text"], "last")     # nothing in between

    def test_users_of_a_stopped_instance_are_announced_left_at_once(self):
        """A second SIGTERM during drain_delay exits at once, closing the
        chat users on the way out, after the event loop has stopped; their
        removal still reaches Redis before the process goes, so the other
        instances announce them left at once, not after presence_ttl (60 s
        here)."""
        self.redis.start()
        g1 = self.instance(extra_bus=", presence_ttl: 60s")
        g2 = self.instance(extra_bus=", presence_ttl: 60s", extra_top="drain_delay: 30s")
        self.wait_connected(g1)
        self.wait_connected(g2)

        def recv_json(ws):
            op, data = ws.recv_message()
            self.assertEqual(op, OP_TEXT)
            return json.loads(data)

        ann = RawWS(g1.port, "/ws/chat?room=s&nick=ann")
        self.addCleanup(ann.close)
        self.assertEqual(recv_json(ann)["type"], "welcome")
        bob = RawWS(g2.port, "/ws/chat?room=s&nick=bob")
        self.addCleanup(bob.close)
        self.assertEqual(recv_json(bob)["type"], "welcome")
        self.assertEqual(recv_json(ann), {"type": "joined", "nick": "bob"})
        g2.send_signal(signal.SIGTERM)
        g2.wait_log("SIGTERM: draining")
        g2.send_signal(signal.SIGTERM)
        g2.wait_log("second SIGTERM: exiting now")
        self.assertEqual(g2.proc.wait(timeout=15), 0)
        ann.sock.settimeout(5.0)          # well under presence_ttl
        self.assertEqual(recv_json(ann), {"type": "left", "nick": "bob"})

    def test_three_instances_and_a_killed_one_does_not_stop_the_others(self):
        self.redis.start()
        gs = [self.instance() for _ in range(3)]
        for g in gs:
            self.wait_connected(g)
        members = [self.member(g) for g in gs for _ in range(2)]
        outsider = self.member(gs[2], "elsewhere")
        self.wait_subscribed("room", 3)
        self.assert_exactly_once(members, [members[0], members[2], members[4]], [outsider])

        gs[2].proc.kill()                       # SIGKILL: no goodbye to Redis
        gs[2].proc.wait()
        alive = members[:4]
        self.wait_subscribed("room", 2)
        self.assert_exactly_once(alive, [alive[0], alive[3]], [])

    def test_redis_killed_and_restarted_instances_recover(self):
        self.redis.start()
        g1, g2 = self.instance(), self.instance()
        self.wait_connected(g1)
        self.wait_connected(g2)
        a, b = self.member(g1), self.member(g2)
        a2 = self.member(g1)
        self.wait_subscribed("room", 2)
        self.assert_exactly_once([a, a2, b], [a, b], [], count=4)

        self.redis.kill()
        g1.wait_log("bus: lost redis")
        g2.wait_log("bus: lost redis")
        # down: local delivery goes on, once, and nothing crosses
        a.send(frame(OP_TEXT, "while down"))
        self.assertEqual(a.recv_message(), (OP_TEXT, b"while down"))
        self.assertEqual(a2.recv_message(), (OP_TEXT, b"while down"))
        b.send(frame(OP_TEXT, "b local"))
        self.assertEqual(b.recv_message(), (OP_TEXT, b"b local"))
        m = self.metrics(g1)
        self.assertEqual(m["gatehouse_bus_connected"], 0)
        self.assertGreaterEqual(m["gatehouse_bus_not_broadcast_total"], 1)
        self.assertGreaterEqual(m["gatehouse_bus_disconnects_total"], 1)

        self.redis.start()
        self.wait_connected(g1, count=2)
        self.wait_connected(g2, count=2)
        self.wait_crossing(a, [b], [a, a2, b])
        self.wait_crossing(b, [a, a2], [a, a2, b])
        self.assert_exactly_once([a, a2, b], [a2, b], [])
        m = self.metrics(g2)
        self.assertEqual(m["gatehouse_bus_connected"], 1)
        self.assertGreaterEqual(m["gatehouse_bus_reconnects_total"], 1)

    def test_redis_down_at_start_connects_later(self):
        g1 = self.instance()
        g1.wait_log("bus: redis 127.0.0.1:%d" % self.redis_port)
        a = self.member(g1)
        a.send(frame(OP_TEXT, "alone"))
        self.assertEqual(a.recv_message(), (OP_TEXT, b"alone"))
        self.assertEqual(self.metrics(g1)["gatehouse_bus_connected"], 0)

        self.redis.start()
        g2 = self.instance()
        self.wait_connected(g1)
        self.wait_connected(g2)
        b = self.member(g2)
        self.wait_crossing(b, [a], [a, b])
        self.assert_exactly_once([a, b], [a, b], [])

    def test_auth_and_db_from_the_url(self):
        self.redis = Redis(self.redis_port, password="s3cret pw")
        self.addCleanup(self.redis.kill)
        self.redis.start()
        url = "redis://:s3cret pw@127.0.0.1:%d/3" % self.redis_port
        g1, g2 = self.instance(url), self.instance(url)
        self.wait_connected(g1)
        self.wait_connected(g2)
        a, b = self.member(g1), self.member(g2)
        self.wait_subscribed("room", 2)
        self.assert_exactly_once([a, b], [a, b], [], count=4)

    def test_wrong_password_is_logged_and_topics_stay_local(self):
        self.redis = Redis(self.redis_port, password="right")
        self.addCleanup(self.redis.kill)
        self.redis.start()
        g = self.instance("redis://127.0.0.1:%d" % self.redis_port, ', password: "wrong"')
        g.wait_log("AUTH refused")
        a, a2 = self.member(g), self.member(g)
        # with several workers a2 may be on another one, whose plugin
        # subscribes it just after its 101 went out: probes until one
        # arrives, then every message reaches both, in one order
        self.wait_crossing(a, [a2], [a, a2], timeout=10.0)
        self.assert_exactly_once([a, a2], [a, a2], [], count=6)
        self.assertEqual(self.metrics(g)["gatehouse_bus_connected"], 0)

    def test_sighup_with_a_new_prefix_resubscribes_live_topics(self):
        self.redis.start()
        g1, g2 = self.instance(), self.instance()
        self.wait_connected(g1)
        self.wait_connected(g2)
        a, b = self.member(g1), self.member(g2)
        self.wait_subscribed("room", 2)
        for g in (g1, g2):
            with open(g.conf) as f:
                text = f.read()
            with open(g.conf, "w") as f:
                f.write(text.replace('channel_prefix: "t:"', 'channel_prefix: "u:"'))
            g.send_signal(signal.SIGHUP)
            g.wait_log("reload: bus changed")
            self.wait_connected(g, count=2)
        ghtest.wait_for(lambda: self.redis.numsub("u:pubsub:room") == 2, 10.0,
                        "both instances on the new prefix")
        self.assertEqual(self.redis.numsub("t:pubsub:room"), 0)
        self.assert_exactly_once([a, b], [a, b], [], count=4)

    def test_sighup_without_a_bus_makes_topics_local_again(self):
        self.redis.start()
        g1, g2 = self.instance(), self.instance()
        self.wait_connected(g1)
        self.wait_connected(g2)
        a, a2, b = self.member(g1), self.member(g1), self.member(g2)
        self.wait_subscribed("room", 2)
        with open(g1.conf) as f:
            text = f.read()
        with open(g1.conf, "w") as f:
            f.write("\n".join(l for l in text.splitlines() if not l.startswith("bus:")))
        g1.send_signal(signal.SIGHUP)
        g1.wait_log("topics are local only now")
        self.wait_subscribed("room", 1)
        a.send(frame(OP_TEXT, "g1 only"))
        for ws in (a, a2):
            self.assertEqual(ws.recv_message(), (OP_TEXT, b"g1 only"))
        b.send(frame(OP_TEXT, "g2 only"))
        self.assertEqual(b.recv_message(), (OP_TEXT, b"g2 only"))
        self.assertFalse(any(k.startswith("gatehouse_bus_") for k in self.metrics(g1)))

    def test_foreign_messages_on_the_channel_are_dropped(self):
        """Something else publishing under the prefix: not an envelope, or
        text that is not UTF-8 — members get nothing, the bus stays up."""
        self.redis.start()
        g = self.instance()
        self.wait_connected(g)
        a = self.member(g)
        self.wait_subscribed("room", 1)
        ch = "t:pubsub:room"
        head = b"gh\x02t" + bytes(28)      # envelope version 2, origin 0 (see core/bus.h)
        v1 = b"gh\x01t" + bytes(16)        # the version before: dropped, not misread
        for junk in (b"", b"hello", b"gh\x02", b"gh\x09t" + bytes(28), head[:-1],
                     head + b"\xff\xfe", v1 + b"old"):
            self.assertEqual(self.redis.command("PUBLISH", ch, junk), 1)
        self.assertEqual(self.redis.command("PUBLISH", ch, head + "ok ✓".encode()), 1)
        self.assertEqual(a.recv_message(), (OP_TEXT, "ok ✓".encode()))
        a.send(frame(OP_TEXT, "still up"))
        self.assertEqual(a.recv_message(), (OP_TEXT, b"still up"))
        g.wait_log("not a gatehouse envelope")


if __name__ == "__main__":
    ghtest.main()
