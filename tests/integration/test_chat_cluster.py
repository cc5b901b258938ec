"""Chat rooms spanning several gatehouse instances through a Redis bus (a
real redis-server started here on a free port): the welcome's users and
history and nick uniqueness are the whole room's on every instance; a
joiner's history and the live messages after its welcome neither miss
nor double a message said during its join; max_users counts the whole
room; a user of a SIGKILLed instance is announced as left by the others
within the bus's presence_ttl, and a normal close at once; with Redis
down the welcome lists what this instance knows, and after Redis comes
back members are registered again. Without a bus the welcome still works.

Clients are raw-socket WebSocket clients (wsutil.RawWS), one blocking
read at a time, so every expectation is about the next message on one
connection. Cross-instance steps wait on a message that can only have
crossed Redis (a "joined", "left" or "said" seen on the other instance),
never on a sleep."""
import json
import os
import signal
import socket
import time
import unittest
import urllib.parse
import urllib.request

import ghtest
import wsutil
from test_bus import REDIS_SERVER, Redis
from wsutil import OP_TEXT, RawWS, close_frame, frame

# presence_ttl of every instance here: a member of a SIGKILLed instance is
# announced as left within TTL plus one heartbeat (TTL / 3).
TTL = 2.0
# how long a test waits for that: generous, still bounded
LEFT_DEADLINE = 4 * TTL

ROUTES = """
  - match: { path: /ws/chat }
    websocket: { plugin: chat, ping_interval: 0s, config: { history: 50 } }
  - match: { path: /ws/burst }
    websocket: { plugin: chat, ping_interval: 0s, config: { history: 1000, rate: 0 } }
  - match: { path: /ws/small }
    websocket: { plugin: chat, ping_interval: 0s, config: { max_users: 2 } }
  - match: { path: /healthz }
    health: {}
  - match: { path: /metrics }
    metrics: {}
"""


class ChatClient:
    """One chat connection: a RawWS read one JSON message at a time.

    With start_only the upgrade request is sent and nothing is read, so
    the caller can do something else while the server handles it; then
    call finish()."""

    def __init__(self, test, port, room, nick, path="/ws/chat", start_only=False):
        self.test = test
        self.nick_asked = nick
        q = urllib.parse.urlencode({"room": room, "nick": nick})
        self.ws = RawWS.__new__(RawWS)
        self.ws.buf = b""
        self.ws.sock = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        test.addCleanup(self.ws.sock.close)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        req = ("GET %s?%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (path, q, port, key))
        self.ws.sock.sendall(req.encode())
        self.nick = None
        if not start_only:
            self.finish()

    def finish(self):
        head = self.ws._read_until(b"\r\n\r\n")
        self.test.assertIn(b" 101 ", head.split(b"\r\n")[0], head)
        return self

    def recv(self, timeout=5.0):
        """The next message as a dict; fails when none comes within timeout."""
        self.ws.sock.settimeout(timeout)
        try:
            op, data = self.ws.recv_message()
        except socket.timeout:
            raise AssertionError("%s: no message within %ss" % (self.nick or self.nick_asked,
                                                                 timeout)) from None
        finally:
            self.ws.sock.settimeout(5.0)
        self.test.assertEqual(op, OP_TEXT, data[:200])
        return json.loads(data)

    def try_recv(self, timeout):
        """The next message, or None when none comes within timeout."""
        self.ws.sock.settimeout(timeout)
        try:
            op, data = self.ws.recv_message()
        except socket.timeout:
            return None
        finally:
            self.ws.sock.settimeout(5.0)
        self.test.assertEqual(op, OP_TEXT, data[:200])
        return json.loads(data)

    def expect(self, type_, timeout=5.0, **fields):
        m = self.recv(timeout)
        self.test.assertEqual(m.get("type"), type_, "%s got %r" % (self.nick, m))
        for k, v in fields.items():
            self.test.assertEqual(m.get(k), v, "%s got %r" % (self.nick, m))
        return m

    def welcome(self):
        """Reads the first message, which must be the welcome."""
        w = self.expect("welcome")
        self.test.assertEqual(set(w), {"type", "nick", "room", "users", "history"}, w)
        self.nick = w["nick"]
        self.test.assertEqual(w["users"][-1], self.nick, "own nick last: %r" % w)
        for m in w["history"]:
            self.test.assertEqual(m["type"], "said", w)
            self.test.assertEqual(set(m), {"type", "from", "text", "ts"}, m)
        return w

    def say(self, text):
        self.ws.send(frame(OP_TEXT, json.dumps({"type": "say", "text": text})))

    def rename(self, nick):
        self.ws.send(frame(OP_TEXT, json.dumps({"type": "nick", "nick": nick})))

    def said_until(self, text, timeout=5.0):
        """Reads until a said with text; returns everything read before it."""
        before = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.try_recv(max(0.01, deadline - time.monotonic()))
            if m is None:
                raise AssertionError("%s: no said %r within %ss (got %r)"
                                     % (self.nick, text, timeout, before[-5:]))
            if m.get("type") == "said" and m.get("text") == text:
                return before
            before.append(m)

    def settle(self, text):
        """Says text and reads it back. The plugin registers a member right
        after the welcome and handles what the client says after that, so
        once the echo is back (it went through Redis) the member is in
        Redis too: the next join anywhere sees it."""
        self.say(text)
        self.expect("said", text=text, **{"from": self.nick})

    def close_normally(self):
        """A close handshake with 1000; reads the server's close."""
        self.ws.send(close_frame(1000))
        code, _ = self.ws.expect_close()
        self.test.assertEqual(code, 1000)
        self.ws.sock.close()


@unittest.skipIf(REDIS_SERVER is None, "redis-server is not installed (Debian: redis-server)")
class ChatClusterTest(ghtest.TestCase):
    WORKERS = None      # each instance's workers: (None: the config's default)

    def setUp(self):
        super().setUp()
        self.redis_port = ghtest.free_port()
        self.redis = Redis(self.redis_port)
        self.addCleanup(self.redis.kill)
        self.n = 0

    # ---- helpers ----

    def instance(self, bus=True):
        """Starts one gatehouse on its own port and folder; with a bus, waits
        until it is connected to Redis (redis must be running)."""
        self.n += 1
        d = self.path("g%d" % self.n)
        os.makedirs(d)
        port = ghtest.free_port()
        extra = "workers: %d\n" % self.WORKERS if self.WORKERS else ""
        if bus:
            extra += ('bus: { redis: "redis://127.0.0.1:%d", channel_prefix: "t:", '
                      'presence_ttl: %ds }' % (self.redis_port, TTL))
        g = ghtest.Gatehouse(wsutil.ws_config(port, d, ROUTES, extra=extra), d)
        self.addCleanup(g.__exit__)
        self.addCleanup(self.stop_clean, g)
        g.wait_ready()
        g.port = port
        if bus:
            g.wait_log("bus: connected to redis", timeout=15.0)
        return g

    def stop_clean(self, g):
        """SIGTERM: exits 0 (under ASan: without a leak or an error report)."""
        if g.proc.poll() is not None and g.proc.returncode == -signal.SIGKILL:
            return                              # killed on purpose
        self.assertEqual(g.stop(), 0, g.log()[-3000:])
        self.assertNotIn("Sanitizer", g.log())

    def join(self, g, room, nick, path="/ws/chat", others=()):
        """Joins and reads the welcome; then every client in others (already
        in the room, on any instance) must get "joined" for the new nick,
        which also means the new member is in Redis."""
        c = ChatClient(self, g.port, room, nick, path)
        w = c.welcome()
        self.assertEqual(w["room"], room)
        for o in others:
            o.expect("joined", nick=c.nick)
        return c, w

    def refused(self, g, room, nick, reason, path="/ws/chat"):
        c = ChatClient(self, g.port, room, nick, path)
        c.expect("error", reason=reason)
        code, why = c.ws.expect_close(skip_data=False)
        self.assertEqual((code, why), (1008, reason.encode()))

    def cross(self, sender, receivers, everyone, timeout=30.0):
        """After Redis came back: says probes until one reaches every
        receiver (the bus works end to end again), then a sync mark every
        client reads up to, so what follows starts clean."""
        deadline = time.monotonic() + timeout
        i = 0
        while True:
            i += 1
            tag = "probe %s %d" % (sender.nick, i)
            sender.say(tag)
            ok = True
            for r in receivers:
                try:
                    r.said_until(tag, 0.5)
                except AssertionError:
                    ok = False
            if ok:
                break
            if time.monotonic() > deadline:
                raise AssertionError("no message crossed the bus within %ss" % timeout)
        tag = "sync %s" % sender.nick
        sender.say(tag)
        for c in everyone:
            c.said_until(tag)

    def kill(self, g):
        g.proc.kill()                           # SIGKILL: no goodbye to Redis
        g.proc.wait()

    # ---- tests ----

    def test_welcome_lists_users_and_history_of_every_instance(self):
        self.redis.start()
        a, b = self.instance(), self.instance()
        dave, w = self.join(b, "r2", "dave")             # another room
        self.assertEqual((w["users"], w["history"]), (["dave"], []))

        alice, w = self.join(a, "r", "alice")
        self.assertEqual((w["nick"], w["users"], w["history"]), ("alice", ["alice"], []))
        said = ["one", "two ✓", 'three "q" <b>']
        for t in said:
            alice.say(t)
        for t in said:
            alice.expect("said", text=t, **{"from": "alice"})

        bob, w = self.join(b, "r", "bob", others=[alice])
        self.assertEqual(w["users"], ["alice", "bob"])
        self.assertEqual([(m["from"], m["text"]) for m in w["history"]],
                         [("alice", t) for t in said])

        carol, w = self.join(a, "r", "carol", others=[alice, bob])
        self.assertEqual(w["users"], ["alice", "bob", "carol"])
        self.assertEqual([m["text"] for m in w["history"]], said)

        bob.say("from b")
        for c in (alice, bob, carol):
            c.expect("said", text="from b", **{"from": "bob"})

        # the other room saw nothing of r: its next message is its own
        dave.say("mark")
        dave.expect("said", text="mark", **{"from": "dave"})
        erin, w = self.join(a, "r2", "erin", others=[dave])
        self.assertEqual(w["users"], ["dave", "erin"])
        self.assertEqual([m["text"] for m in w["history"]], ["mark"])

    def test_nicks_are_unique_across_instances(self):
        self.redis.start()
        a, b, c = self.instance(), self.instance(), self.instance()
        watch, _ = self.join(c, "nk", "watch")
        watch.settle("hello")
        ann, w = self.join(a, "nk", "ann", others=[watch])
        self.assertEqual((w["nick"], w["users"]), ("ann", ["watch", "ann"]))
        ann2, w = self.join(b, "nk", "ann", others=[watch, ann])
        self.assertEqual((w["nick"], w["users"]), ("ann2", ["watch", "ann", "ann2"]))
        # README: ASCII letters compare case-folded; the suffix goes on the
        # nick as asked
        ann3, w = self.join(c, "nk", "ANN", others=[watch, ann, ann2])
        self.assertEqual((w["nick"], w["users"]), ("ANN3", ["watch", "ann", "ann2", "ANN3"]))
        everyone = [watch, ann, ann2, ann3]
        bob, w = self.join(b, "nk", "bob", others=everyone)
        everyone.append(bob)
        self.assertEqual(w["users"], ["watch", "ann", "ann2", "ANN3", "bob"])

        # the same nick in another room is free
        other, w = self.join(b, "nk-other", "ann")
        self.assertEqual(w["nick"], "ann")

        # rename on B to a nick held on A (and, case-folded, on B and C)
        bob.rename("Ann")
        for x in everyone:
            x.expect("renamed", **{"from": "bob", "to": "Ann4"})
        # renamed in place; the old nick is free again
        bob2, w = self.join(a, "nk", "bob", others=everyone)
        self.assertEqual((w["nick"], w["users"]),
                         ("bob", ["watch", "ann", "ann2", "ANN3", "Ann4", "bob"]))
        everyone.append(bob2)
        # a rename on A to a nick held on C
        bob2.rename("Watch")
        for x in everyone:
            x.expect("renamed", **{"from": "bob", "to": "Watch2"})

    def test_joiners_during_a_burst_get_no_gap_and_no_overlap(self):
        self.redis.start()
        a, b = self.instance(), self.instance()
        N, JOINERS = 200, 10
        writer, _ = self.join(a, "burst", "writer", path="/ws/burst")
        writer.settle("0")
        sent = 0

        def say(k):
            nonlocal sent
            for _ in range(k):
                sent += 1
                writer.say(str(sent))

        # each joiner's upgrade is sent in the middle of a run of messages,
        # and the next run starts only after its welcome: the joins are one
        # after another, spread over the burst, each racing messages in flight
        joiners = []
        per = N // JOINERS
        for k in range(JOINERS):
            say(per // 2)
            j = ChatClient(self, b.port, "burst", "j%d" % k, "/ws/burst", start_only=True)
            say(per - per // 2)
            j.finish()
            w = j.welcome()                     # the first message it gets
            joiners.append((j, w))
        self.assertEqual(sent, N)

        # the writer itself: all of it, in order, once
        got = []
        while len(got) < N:
            m = writer.recv()
            if m["type"] == "said":
                got.append(m["text"])
            else:
                self.assertEqual(m["type"], "joined", m)
        self.assertEqual(got, [str(i) for i in range(1, N + 1)])

        # an end mark, said after the last joiner's welcome: what a joiner
        # gets live is everything up to it (a late joiner may have all N in
        # its history and nothing live but the mark)
        writer.say("end")
        for m in writer.said_until("end"):
            self.assertEqual(m["type"], "joined", m)
        split = []
        for j, w in joiners:
            hist = [m["text"] for m in w["history"]]
            self.assertEqual(hist[:1], ["0"], "%s: history starts with the writer's first" % j.nick)
            hist = hist[1:]
            live = []
            while True:
                m = j.recv()
                self.assertIn(m["type"], ("said", "joined"), m)
                if m["type"] == "said":
                    self.assertEqual(m["from"], "writer")
                    if m["text"] == "end":
                        break
                    live.append(m["text"])
            texts = hist + live
            first = N - len(texts) + 1
            self.assertEqual(texts, [str(i) for i in range(first, N + 1)],
                             "%s: history %s.. + live %s.. is not one run ending at %d"
                             % (j.nick, hist[-3:], live[:3], N))
            # history keeps 1000 and the writer was in the room throughout:
            # nothing was cut, so the run is all of it
            self.assertEqual(first, 1, "%s: messages 1..%d missing" % (j.nick, first - 1))
            split.append(len(hist))
        self.assertTrue(any(0 < s < N for s in split),
                        "no joiner joined during the burst (history sizes %s)" % split)

    def test_users_of_a_killed_instance_are_announced_left(self):
        self.redis.start()
        a, b, c = self.instance(), self.instance(), self.instance()
        alice, _ = self.join(a, "kr", "alice")
        alice.settle("hi")
        cy, _ = self.join(c, "kr", "cy", others=[alice])
        bob, _ = self.join(b, "kr", "bob", others=[alice, cy])
        bea, _ = self.join(b, "kr", "bea", others=[alice, cy, bob])
        bob.say("bob here")
        for x in (alice, cy, bob, bea):
            x.expect("said", text="bob here")

        self.kill(b)
        t0 = time.monotonic()
        for x in (alice, cy):
            lefts = [x.expect("left", timeout=max(0.01, t0 + LEFT_DEADLINE - time.monotonic()))
                     for _ in range(2)]
            self.assertEqual(sorted(m["nick"] for m in lefts), ["bea", "bob"])
        took = time.monotonic() - t0
        self.assertLess(took, LEFT_DEADLINE)

        # once each: the next thing both get is this
        alice.say("after")
        for x in (alice, cy):
            x.expect("said", text="after")
        dan, w = self.join(a, "kr", "dan", others=[alice, cy])
        self.assertEqual(w["users"], ["alice", "cy", "dan"])
        # the room's history outlives the instance that said it
        self.assertEqual([m["text"] for m in w["history"]], ["hi", "bob here", "after"])
        self.assertIn(b"200", ghtest.raw_request(
            a.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))

    def test_a_closed_connection_is_announced_left_at_once(self):
        self.redis.start()
        a, b = self.instance(), self.instance()
        alice, _ = self.join(a, "cl", "alice")
        alice.settle("hi")
        bob, _ = self.join(b, "cl", "bob", others=[alice])
        cy, _ = self.join(b, "cl", "cy", others=[alice, bob])

        t0 = time.monotonic()
        bob.close_normally()
        for x in (alice, cy):
            x.expect("left", timeout=2.0, nick="bob")
        self.assertLess(time.monotonic() - t0, 2.0)

        # the last one on B, gone without a close frame
        t0 = time.monotonic()
        cy.ws.sock.close()
        alice.expect("left", timeout=2.0, nick="cy")
        self.assertLess(time.monotonic() - t0, 2.0)

        dan, w = self.join(b, "cl", "dan", others=[alice])
        self.assertEqual(w["users"], ["alice", "dan"])

    def test_redis_down_welcome_is_local_and_members_return_after(self):
        self.redis.start()
        a, b = self.instance(), self.instance()
        alice, _ = self.join(a, "rd", "alice")
        alice.settle("a before")
        bob, _ = self.join(b, "rd", "bob", others=[alice])
        bob.settle("b before")
        alice.expect("said", text="b before")

        self.redis.kill()
        a.wait_log("bus: lost redis")
        b.wait_log("bus: lost redis")
        # the welcome holds what A knows: its own users, the history it saw
        carol, w = self.join(a, "rd", "carol", others=[alice])
        self.assertEqual(w["users"], ["alice", "carol"])
        self.assertEqual([m["text"] for m in w["history"]], ["a before", "b before"])
        # chat on A goes on locally; nothing reaches B
        carol.say("down a")
        for x in (alice, carol):
            x.expect("said", text="down a", **{"from": "carol"})
        bob.say("down b")
        bob.expect("said", text="down b")

        self.redis.start()
        a.wait_log("bus: connected to redis", timeout=15.0, count=2)
        b.wait_log("bus: connected to redis", timeout=15.0, count=2)
        self.cross(alice, [bob], [alice, bob, carol])
        self.cross(bob, [alice, carol], [alice, bob, carol])
        dan, w = self.join(b, "rd", "dan", others=[alice, bob, carol])
        # registered again on reconnect, in whatever order the instances did
        self.assertEqual(sorted(w["users"][:-1]), ["alice", "bob", "carol"])
        self.assertEqual(len(w["users"]), 4)

    def test_max_users_counts_the_whole_room(self):
        self.redis.start()
        a, b = self.instance(), self.instance()
        alice, _ = self.join(a, "full", "alice", path="/ws/small")
        alice.settle("hi")
        bob, w = self.join(b, "full", "bob", path="/ws/small", others=[alice])
        self.assertEqual(w["users"], ["alice", "bob"])
        self.refused(a, "full", "carl", "room full", path="/ws/small")
        self.refused(b, "full", "cy", "room full", path="/ws/small")
        # nobody was told
        alice.say("mark")
        for x in (alice, bob):
            x.expect("said", text="mark")
        # a leaver frees a place, on either instance
        bob.close_normally()
        alice.expect("left", nick="bob")
        eve, w = self.join(b, "full", "eve", path="/ws/small", others=[alice])
        self.assertEqual(w["users"], ["alice", "eve"])

    def test_a_nick_and_a_place_asked_at_once_on_both_instances_are_given_once(self):
        """Checked and taken in one step in Redis (member_claim): eight
        joiners asking for one nick at the same moment on two instances
        get eight nicks; six asking for a room of two at once, two places."""
        self.redis.start()
        a, b = self.instance(), self.instance()
        for rnd in range(4):
            cs = [ChatClient(self, (a, b)[i % 2].port, "race%d" % rnd,
                             "ann" if i % 2 else "Ann", start_only=True) for i in range(8)]
            nicks = []
            for c in cs:
                c.finish()
                nicks.append(c.welcome()["nick"])
            self.assertEqual(len({n.lower() for n in nicks}), 8, nicks)
        cs = [ChatClient(self, (a, b)[i % 2].port, "full", "p%d" % i, path="/ws/small",
                         start_only=True) for i in range(6)]
        welcomed = refused = 0
        for c in cs:
            c.finish()
            m = c.recv()
            if m["type"] == "welcome":
                welcomed += 1
            else:
                self.assertEqual(m, {"type": "error", "reason": "room full"})
                refused += 1
        self.assertEqual((welcomed, refused), (2, 4))

    def test_without_a_bus_the_welcome_still_works(self):
        g = self.instance(bus=False)
        ann, w = self.join(g, "solo", "ann")
        self.assertEqual((w["nick"], w["users"], w["history"]), ("ann", ["ann"], []))
        ann.settle("hi")
        bob, w = self.join(g, "solo", "ann", others=[ann])
        self.assertEqual((w["nick"], w["users"]), ("ann2", ["ann", "ann2"]))
        self.assertEqual([(m["from"], m["text"]) for m in w["history"]], [("ann", "hi")])
        bob.close_normally()
        ann.expect("left", nick="ann2")


def ws_per_worker(port):
    """The open WebSockets of each worker, from /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("gatehouse_worker_connections_open{") and 'kind="websocket"' in line:
            labels, value = line.rsplit(" ", 1)
            out[labels] = int(float(value))
    return out


class ChatClusterWorkersTest(ChatClusterTest):
    """Every test above again with each instance on four workers: a room
    spans the workers (the hub) and the instances (one bus per process,
    on worker 0), and the two below besides."""
    WORKERS = 4

    def test_one_order_for_every_member_on_every_worker_of_every_instance(self):
        self.redis.start()
        a, b = self.instance(), self.instance()
        members = []
        for i in range(12):
            g = (a, b)[i % 2]
            c, _ = self.join(g, "big", "u%d" % i, others=members)
            members.append(c)
        # spread: on each instance the room's members are on several workers
        for g in (a, b):
            busy = [v for v in ws_per_worker(g.port).values() if v > 0]
            self.assertGreaterEqual(len(busy), 2, ws_per_worker(g.port))
        # one connection set to Redis per process (publish + subscribe), not
        # one per worker: four clients, and this test's own
        clients = self.redis.command("CLIENT", "LIST").decode().strip().splitlines()
        self.assertEqual(len(clients), 2 * 2 + 1, clients)
        # everyone says five things at once; every member, whatever its
        # worker and instance, reads the same sixty in the same order
        for k in range(5):
            for c in members:
                c.say("%s-%d" % (c.nick, k))
        last = "%s-4" % members[-1].nick
        seen = []
        for c in members:
            got = []
            deadline = time.monotonic() + 15.0
            while len(got) < 60:
                m = c.try_recv(max(0.01, deadline - time.monotonic()))
                if m is None:
                    raise AssertionError("%s: %d of 60 messages" % (c.nick, len(got)))
                if m.get("type") == "said":
                    got.append((m["from"], m["text"]))
            seen.append(got)
        self.assertIn((members[-1].nick, last), seen[0])
        self.assertEqual(len(set(seen[0])), 60)
        for c, got in zip(members, seen):
            self.assertEqual(got, seen[0], c.nick)
            mine = [t for f, t in got if f == c.nick]
            self.assertEqual(mine, ["%s-%d" % (c.nick, k) for k in range(5)])

    def test_redis_sees_the_members_of_every_worker(self):
        self.redis.start()
        a, b = self.instance(), self.instance()
        members = []
        for i in range(8):
            c, _ = self.join(a, "r", "m%d" % i, others=members)
            members.append(c)
        busy = [v for v in ws_per_worker(a.port).values() if v > 0]
        self.assertGreaterEqual(len(busy), 2, ws_per_worker(a.port))
        # a joiner on the other instance is welcomed with all of them, in
        # join order: Redis has every worker's members
        z, w = self.join(b, "r", "z", others=members)
        self.assertEqual(w["users"], ["m%d" % i for i in range(8)] + ["z"])
        # a member closing on any worker is announced on the other instance
        members[3].close_normally()
        z.expect("left", nick="m3")


if __name__ == "__main__":
    ghtest.main()
