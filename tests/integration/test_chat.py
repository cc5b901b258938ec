"""The chat plugin (plugins/chat) against the real daemon, driven by Debian's
python3-websockets: join and welcome, history replayed on join, broadcast to
the room and only the room, joined/left, nick collisions and renames, every
limit of the route's config (max_text, rate/burst, max_users), bad JSON and
unknown types, garbage closed with 1008, bad query values, config errors.
Messages sent with the handshake or right behind a rename (raw sockets, one
write) wait for the room's state and are handled in order after it; a
flood meanwhile is answered "busy" beyond the queue's bound. Rooms across
several gatehouses are tested in test_chat_cluster.py."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse

import websockets
import websockets.exceptions

import ghtest
import wsutil
from wsutil import OP_BINARY, OP_TEXT, RawWS, frame


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def route(path, **config):
    cfg = ", ".join(f"{k}: {v}" for k, v in config.items())
    return f"""
  - match: {{ path: {path} }}
    websocket: {{ plugin: chat, config: {{ {cfg} }} }}
"""


ROUTES = (route("/ws/chat") + route("/ws/hist3", history=3) + route("/ws/nohist", history=0)
          + route("/ws/short", max_text=10) + route("/ws/slow", rate=1, burst=3)
          + route("/ws/free", rate=0) + route("/ws/small", max_users=2)
          + route("/ws/big", rate=0, history=500, max_text=8000))


class ChatTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.port = ghtest.free_port()
        self.gh = self.start(wsutil.ws_config(self.port, self.tmp, ROUTES))

    def tearDown(self):
        # a clean exit after every test: no crash, and under ASan no leak
        # (LeakSanitizer turns a leak into a non-zero exit)
        rc = self.gh.stop()
        self.assertEqual(rc, 0, self.gh.log()[-4000:])
        self.assertNotIn("Sanitizer", self.gh.log())
        super().tearDown()

    def connect(self, room=None, nick=None, path="/ws/chat"):
        q = {}
        if room is not None:
            q["room"] = room
        if nick is not None:
            q["nick"] = nick
        qs = ("?" + urllib.parse.urlencode(q)) if q else ""
        return websockets.connect(f"ws://127.0.0.1:{self.port}{path}{qs}",
                                  ping_interval=None, max_size=None, close_timeout=2)

    async def recv(self, ws, timeout=5):
        return json.loads(await asyncio.wait_for(ws.recv(), timeout))

    async def expect(self, ws, type_, **fields):
        m = await self.recv(ws)
        self.assertEqual(m["type"], type_, m)
        for k, v in fields.items():
            self.assertEqual(m[k], v, m)
        return m

    async def join(self, room=None, nick=None, path="/ws/chat"):
        """Connects and reads the welcome; returns (ws, welcome)."""
        ws = await self.connect(room, nick, path)
        return ws, await self.expect(ws, "welcome")

    async def say(self, ws, text):
        await ws.send(json.dumps({"type": "say", "text": text}))

    async def nothing_more(self, ws, wait=0.3):
        """Asserts nothing arrives for a while (the exactly-once checks)."""
        with self.assertRaises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), wait)

    async def closed_with(self, ws, code):
        with self.assertRaises(websockets.exceptions.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        self.assertEqual(ws.close_code, code)
        return ws.close_reason

    # -- joining -------------------------------------------------------------

    def test_join_gets_a_welcome_with_nick_room_users_and_history(self):
        async def go():
            ws, w = await self.join("r1", "ann")
            self.assertEqual(w, {"type": "welcome", "nick": "ann", "room": "r1",
                                 "users": ["ann"], "history": []})
            ws2, w2 = await self.join("r1", "bob")
            self.assertEqual(w2["users"], ["ann", "bob"])
            await self.expect(ws, "joined", nick="bob")
            await self.nothing_more(ws2)        # no "joined" for oneself
            await ws.close()
            await ws2.close()
        run(go())

    def test_defaults_are_room_lobby_and_nick_guest(self):
        async def go():
            ws, w = await self.join()
            self.assertEqual((w["room"], w["nick"]), ("lobby", "guest"))
            ws2, w2 = await self.join("", "")
            self.assertEqual((w2["room"], w2["nick"]), ("lobby", "guest2"))
            await ws.close()
            await ws2.close()
        run(go())

    def test_nick_from_the_query_is_percent_decoded_and_trimmed(self):
        async def go():
            ws, w = await self.join("r", "  Köln Ann <b>&amp;  ")
            self.assertEqual(w["nick"], "Köln Ann <b>&amp;")
            await ws.close()
        run(go())

    def test_bad_room_or_nick_in_the_query_is_refused_with_1008(self):
        async def go():
            for room, nick, why in [("a.b", "x", "bad room"), ("a" * 65, "x", "bad room"),
                                    ("ok", "\x01ann", "bad nick"), ("ok", "n" * 33, "bad nick"),
                                    ("ok", "   ", "bad nick")]:
                ws = await self.connect(room, nick)
                await self.expect(ws, "error", reason=why)
                self.assertEqual(await self.closed_with(ws, 1008), why)
            # a broken percent escape
            ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/ws/chat?nick=%zz",
                                          ping_interval=None)
            await self.expect(ws, "error", reason="bad nick")
            await self.closed_with(ws, 1008)
        run(go())

    # -- history -------------------------------------------------------------

    def test_history_is_replayed_on_join_oldest_first_up_to_the_limit(self):
        async def go():
            ws, _ = await self.join("h", "ann", "/ws/hist3")
            before = int(time.time() * 1000)
            for i in range(5):
                await self.say(ws, f"m{i}")
                await self.expect(ws, "said", text=f"m{i}")
            after = int(time.time() * 1000)
            ws2, w = await self.join("h", "bob", "/ws/hist3")
            self.assertEqual([(m["type"], m["from"], m["text"]) for m in w["history"]],
                             [("said", "ann", "m2"), ("said", "ann", "m3"), ("said", "ann", "m4")])
            for m in w["history"]:
                self.assertTrue(before - 1000 <= m["ts"] <= after + 1000, m)
            # another room's history is its own
            ws3, w3 = await self.join("other", "cy", "/ws/hist3")
            self.assertEqual(w3["history"], [])
            for s in (ws, ws2, ws3):
                await s.close()
        run(go())

    def test_default_history_keeps_fifty(self):
        async def go():
            ws, _ = await self.join("h50", "ann", "/ws/free")     # default history, no rate
            for i in range(60):
                await self.say(ws, str(i))
            for i in range(60):
                await self.expect(ws, "said", text=str(i))
            ws2, w = await self.join("h50", "bob", "/ws/free")
            self.assertEqual([m["text"] for m in w["history"]], [str(i) for i in range(10, 60)])
            await ws.close()
            await ws2.close()
        run(go())

    def test_a_big_history_is_cut_to_keep_the_welcome_under_512kib(self):
        async def go():
            ws, _ = await self.join("big", "ann", "/ws/big")
            for i in range(100):                 # 800 KB of text
                await self.say(ws, f"{i:04d}" + "é" * 3998)
            for i in range(100):
                await self.expect(ws, "said")
            ws2, w = await self.join("big", "bob", "/ws/big")
            texts = [m["text"][:4] for m in w["history"]]
            self.assertLess(len(texts), 100)
            self.assertGreater(len(texts), 50)
            # the newest, oldest first
            self.assertEqual(texts, [f"{i:04d}" for i in range(100 - len(texts), 100)])
            self.assertLess(len(json.dumps(w, ensure_ascii=False).encode()), 512 * 1024 + 1024)
            await ws.close()
            await ws2.close()
        run(go())

    def test_history_zero_replays_nothing(self):
        async def go():
            ws, _ = await self.join("z", "ann", "/ws/nohist")
            await self.say(ws, "gone")
            await self.expect(ws, "said")
            ws2, w = await self.join("z", "bob", "/ws/nohist")
            self.assertEqual(w["history"], [])
            await ws.close()
            await ws2.close()
        run(go())

    def test_history_goes_with_the_last_user(self):
        async def go():
            ws, _ = await self.join("gone", "ann")
            await self.say(ws, "hello")
            await self.expect(ws, "said")
            await ws.close()
            ws2, w = await self.join("gone", "bob")
            self.assertEqual((w["users"], w["history"]), (["bob"], []))
            await ws2.close()
        run(go())

    # -- broadcast -------------------------------------------------------------

    def test_said_reaches_the_room_sender_included_and_only_the_room(self):
        async def go():
            a, _ = await self.join("one", "ann")
            b, _ = await self.join("one", "bob")
            await self.expect(a, "joined", nick="bob")
            c, _ = await self.join("two", "cy")
            before = int(time.time() * 1000)
            await self.say(a, "hi <b>all</b> ✓ \"q\"\n")
            for ws in (a, b):
                m = await self.expect(ws, "said", **{"from": "ann", "text": "hi <b>all</b> ✓ \"q\"\n"})
                self.assertEqual(set(m), {"type", "from", "text", "ts"})
                self.assertIsInstance(m["ts"], int)
                self.assertTrue(before - 1000 <= m["ts"] <= time.time() * 1000 + 1000)
            await self.nothing_more(c)
            await self.say(c, "elsewhere")
            await self.expect(c, "said", text="elsewhere")
            await self.nothing_more(a, 0.2)
            await self.nothing_more(b, 0.2)
            for ws in (a, b, c):
                await ws.close()
        run(go())

    def test_many_messages_arrive_in_order_exactly_once(self):
        async def go():
            socks = [(await self.join("bulk", f"u{i}"))[0] for i in range(8)]
            for i, ws in enumerate(socks):
                for _ in range(i + 1, len(socks)):
                    await self.expect(ws, "joined")
            for i in range(30):
                await self.say(socks[i % 8], f"n{i}")
            seen = []
            for ws in socks:
                got = [(await self.expect(ws, "said")) for _ in range(30)]
                seen.append([(m["from"], m["text"]) for m in got])
                await self.nothing_more(ws, 0.05)
            # everyone sees the same order, which keeps each sender's order
            for s in seen[1:]:
                self.assertEqual(s, seen[0])
            self.assertEqual(sorted(t for _, t in seen[0]), sorted(f"n{i}" for i in range(30)))
            for k in range(8):
                mine = [t for f, t in seen[0] if f == f"u{k}"]
                self.assertEqual(mine, [f"n{i}" for i in range(k, 30, 8)])
            for ws in socks:
                await ws.close()
        run(go())

    def test_leaving_tells_the_room(self):
        async def go():
            a, _ = await self.join("lv", "ann")
            b, _ = await self.join("lv", "bob")
            await self.expect(a, "joined", nick="bob")
            await b.close()
            await self.expect(a, "left", nick="bob")
            # a dropped TCP connection (no close frame) too
            c, _ = await self.join("lv", "cy")
            await self.expect(a, "joined", nick="cy")
            c.transport.abort()
            await self.expect(a, "left", nick="cy")
            _, w = await self.join("lv", "dee")
            self.assertEqual(w["users"], ["ann", "dee"])
            await a.close()
        run(go())

    # -- nicks ---------------------------------------------------------------

    def test_nick_collisions_get_numeric_suffixes(self):
        async def go():
            socks = []
            nicks = []
            for n in ["ann", "ann", "Ann", "bob", "ann"]:
                ws, w = await self.join("nc", n)
                socks.append(ws)
                nicks.append(w["nick"])
            self.assertEqual(nicks, ["ann", "ann2", "Ann3", "bob", "ann4"])
            self.assertEqual(w["users"], nicks)
            # the same nick in another room is free
            ws, w = await self.join("nc2", "ann")
            self.assertEqual(w["nick"], "ann")
            long = "é" * 32
            a, wa = await self.join("nc3", long)
            b, wb = await self.join("nc3", long)
            self.assertEqual((wa["nick"], wb["nick"]), (long, "é" * 31 + "2"))
            for s in socks + [ws, a, b]:
                await s.close()
        run(go())

    def test_rename_tells_the_room_and_stays_unique(self):
        async def go():
            a, _ = await self.join("rn", "ann")
            b, _ = await self.join("rn", "bob")
            await self.expect(a, "joined")
            await a.send(json.dumps({"type": "nick", "nick": "  carol "}))
            for ws in (a, b):
                await self.expect(ws, "renamed", **{"from": "ann", "to": "carol"})
            await b.send(json.dumps({"type": "nick", "nick": "CAROL"}))
            for ws in (a, b):
                await self.expect(ws, "renamed", **{"from": "bob", "to": "CAROL2"})
            # a rename to one's own nick changes nothing; to another case does
            await a.send(json.dumps({"type": "nick", "nick": "carol"}))
            await self.nothing_more(a, 0.2)
            await a.send(json.dumps({"type": "nick", "nick": "Carol"}))
            await self.expect(a, "renamed", **{"from": "carol", "to": "Carol"})
            await self.expect(b, "renamed")
            # says carry the new nick, and joiners see it
            await self.say(b, "x")
            await self.expect(a, "said", **{"from": "CAROL2"})
            await self.expect(b, "said", **{"from": "CAROL2"})
            c, w = await self.join("rn", "carol")
            await self.expect(a, "joined", nick="carol3")
            # "carol2" is "CAROL2" with ASCII case folded: taken
            self.assertEqual((w["nick"], w["users"]), ("carol3", ["Carol", "CAROL2", "carol3"]))
            # the old nick is free again
            d, w = await self.join("rn", "ann")
            self.assertEqual(w["nick"], "ann")
            await self.expect(a, "joined", nick="ann")
            for bad in ["", "   ", "a\u0001b", "\u202eevil", "x" * 33]:
                await a.send(json.dumps({"type": "nick", "nick": bad}))
                await self.expect(a, "error", reason="bad nick")
            for s in (a, b, c, d):
                await s.close()
        run(go())

    # -- limits ----------------------------------------------------------------

    def test_max_text_counts_bytes(self):
        async def go():
            ws, _ = await self.join("mt", "ann", "/ws/short")
            await self.say(ws, "0123456789")
            await self.expect(ws, "said", text="0123456789")
            await self.say(ws, "é" * 5)                  # 10 bytes
            await self.expect(ws, "said", text="é" * 5)
            for text in ["0123456789a", "é" * 5 + "a", "x" * 5000]:
                await self.say(ws, text)
                await self.expect(ws, "error", reason="too long")
            await self.say(ws, "")
            await self.expect(ws, "error", reason="empty text")
            # default: 4096
            d, _ = await self.join("mt", "bob")
            await self.say(d, "y" * 4096)
            await self.expect(d, "said")
            await self.say(d, "y" * 4097)
            await self.expect(d, "error", reason="too long")
            await ws.close()
            await d.close()
        run(go())

    def test_rate_limit_allows_the_burst_then_the_rate(self):
        async def go():
            ws, _ = await self.join("rl", "ann", "/ws/slow")     # rate 1, burst 3
            for i in range(6):
                await self.say(ws, str(i))
            got = [await self.recv(ws) for _ in range(6)]
            said = [m["text"] for m in got if m["type"] == "said"]
            errors = [m["reason"] for m in got if m["type"] == "error"]
            self.assertEqual(said, ["0", "1", "2"])
            self.assertEqual(errors, ["rate limited"] * 3)
            # a second later one more token (1/s)
            await asyncio.sleep(1.1)
            await self.say(ws, "later")
            await self.expect(ws, "said", text="later")
            await self.say(ws, "too soon")
            await self.expect(ws, "error", reason="rate limited")
            # the limit is per connection
            other, _ = await self.join("rl", "bob", "/ws/slow")
            await self.say(other, "mine")
            await self.expect(other, "said", text="mine")
            await ws.close()
            await other.close()
        run(go())

    def test_default_rate_limit_is_a_burst_of_40(self):
        async def go():
            ws, _ = await self.join("rl40", "ann")
            for i in range(60):
                await self.say(ws, str(i))
            got = [await self.recv(ws) for _ in range(60)]
            n_said = sum(m["type"] == "said" for m in got)
            # 40 of burst plus what 20/s refills while they are sent
            self.assertGreaterEqual(n_said, 40)
            self.assertLess(n_said, 60)
            self.assertTrue(any(m.get("reason") == "rate limited" for m in got))
            await ws.close()
        run(go())

    def test_rate_zero_turns_the_limit_off(self):
        async def go():
            ws, _ = await self.join("free", "ann", "/ws/free")
            for i in range(300):
                await self.say(ws, str(i))
            for i in range(300):
                await self.expect(ws, "said", text=str(i))
            await ws.close()
        run(go())

    def test_a_full_room_refuses_with_1008(self):
        async def go():
            a, _ = await self.join("full", "a", "/ws/small")
            b, _ = await self.join("full", "b", "/ws/small")
            c = await self.connect("full", "c", "/ws/small")
            await self.expect(c, "error", reason="room full")
            self.assertEqual(await self.closed_with(c, 1008), "room full")
            # nobody was told about c
            await self.expect(a, "joined", nick="b")
            await self.nothing_more(a, 0.2)
            # another room has its own limit; a leaver frees a place
            d, _ = await self.join("full2", "d", "/ws/small")
            await b.close()
            await self.expect(a, "left", nick="b")
            e, w = await self.join("full", "e", "/ws/small")
            self.assertEqual(w["users"], ["a", "e"])
            for s in (a, d, e):
                await s.close()
        run(go())

    # -- bad input -----------------------------------------------------------------

    def test_bad_json_and_unknown_types_get_errors(self):
        async def go():
            ws, _ = await self.join("bad", "ann")
            cases = [("nope", "bad JSON"), ("{\"type\":\"say\",", "bad JSON"),
                     ('{"type":"say","text":"a","type":"say"}', "bad JSON"),
                     ('{"type":"say","text":"\\u0000"}', "bad JSON"),
                     ("[1,2]", "bad message"), ("{}", "bad message"), ('{"type":7}', "bad message"),
                     ('{"type":"say"}', "bad message"), ('{"type":"say","text":5}', "bad message"),
                     ('{"type":"nick","nick":null}', "bad message"),
                     ('{"type":"shout","text":"x"}', "unknown type"), ("[" * 30000, "too long")]
            for i, (raw, why) in enumerate(cases):
                await ws.send(raw)
                await self.expect(ws, "error", reason=why)
                if i % 5 == 4:          # stay under the garbage limit
                    await self.say(ws, "reset")
                    await self.expect(ws, "said", text="reset")
            await ws.send(b"\x00\x01binary")
            await self.expect(ws, "error", reason="not text")
            # still in the room: extra fields are ignored
            await ws.send('{"type":"say","text":"fine","extra":[1]}')
            await self.expect(ws, "said", text="fine")
            await ws.close()
        run(go())

    def test_a_client_that_keeps_sending_garbage_is_closed_with_1008(self):
        async def go():
            a, _ = await self.join("g", "ann")
            b, _ = await self.join("g", "bob")
            await self.expect(a, "joined")
            # nine in a row, then a good one: the count starts again
            for _ in range(9):
                await b.send("garbage")
                await self.expect(b, "error", reason="bad JSON")
            await self.say(b, "ok")
            await self.expect(b, "said")
            await self.expect(a, "said")
            for i in range(10):
                await b.send("{\"type\":\"what\"}")
                await self.expect(b, "error", reason="unknown type")
            self.assertEqual(await self.closed_with(b, 1008), "too many bad messages")
            await self.expect(a, "left", nick="bob")
            await a.close()
        run(go())

    # -- config ------------------------------------------------------------------

    def test_config_errors_are_reported_with_their_place(self):
        for cfg, text in [("{ bogus: 1 }", "bogus"), ("{ history: -1 }", "history"),
                          ("{ rate: lots }", "rate"), ("{ max_users: 0 }", "max_users")]:
            conf = self.write("bad.yaml", wsutil.ws_config(
                ghtest.free_port(), self.tmp,
                f"  - match: {{ path: /ws/chat }}\n    websocket: {{ plugin: chat, config: {cfg} }}\n"))
            out = subprocess.run([ghtest.GH_BIN, "-t", "-c", conf], capture_output=True, text=True)
            # (gatehouse -t exits 0 when a plugin's init fails: the route
            # answers 503 and the rest serves; the error is still printed)
            self.assertRegex(out.stderr, r"bad\.yaml:\d+:\d+: .*" + text, out.stderr)
            self.assertIn("plugin chat", out.stderr)
            self.assertIn("init failed", out.stderr)

    def test_the_checked_in_config_serves_the_page_and_the_chat(self):
        """conf/gateway.yaml with only its paths and port changed."""
        with open(os.path.join(ghtest.GH_SRC, "conf", "gateway.yaml")) as f:
            text = f.read()
        port = ghtest.free_port()
        www = os.path.join(ghtest.GH_SRC, "www")
        for a, b in [("../build/plugins", wsutil.plugins_dir()),
                     ("127.0.0.1:8080", f"127.0.0.1:{port}"), ("../www", www),
                     ("access_log: stderr", f"access_log: {self.tmp}/gw-access.log")]:
            self.assertIn(a, text)
            text = text.replace(a, b)
        own = self.path("gw")                   # its own error log: ready is its own
        os.makedirs(own)
        g = ghtest.Gatehouse(text, own, name="gw.yaml")
        self.addCleanup(g.__exit__)
        g.wait_ready()
        page = ghtest.raw_request(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertIn(b"200 OK", page.split(b"\r\n")[0])
        self.assertIn(b"chat.js", page)

        async def go():
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/chat?room=conf&nick=ann",
                                          ping_interval=None)
            await self.expect(ws, "welcome", nick="ann", room="conf")
            await self.say(ws, "hello")
            await self.expect(ws, "said", text="hello")
            await ws.close()
        run(go())

    # -- messages that wait for the room's state --------------------------------------

    def raw_join(self, query, path="/ws/chat", after=b""):
        """Sends the upgrade request and `after` (client frames) in one
        write, so the frames are there before the room's state is; returns
        the RawWS after the 101."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(s.close)
        req = (f"GET {path}?{query} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        s.sendall(req + after)
        ws = RawWS.__new__(RawWS)
        ws.sock, ws.buf = s, b""
        self.assertIn(b" 101 ", ws._read_until(b"\r\n\r\n").split(b"\r\n")[0])
        return ws

    @staticmethod
    def next_json(ws):
        op, data = ws.recv_message()
        assert op == OP_TEXT, (op, data[:100])
        return json.loads(data)

    @staticmethod
    def said(text):
        return frame(OP_TEXT, json.dumps({"type": "say", "text": text}))

    def test_messages_sent_with_the_handshake_are_handled_after_the_welcome_in_order(self):
        msgs = (self.said("one") + frame(OP_TEXT, json.dumps({"type": "nick", "nick": "bob"}))
                + self.said("two") + frame(OP_TEXT, "not json") + frame(OP_BINARY, b"\x01")
                + self.said("x" * 5000) + self.said("") + self.said("three"))
        ws = self.raw_join("room=early&nick=ann", after=msgs)
        w = self.next_json(ws)
        self.assertEqual((w["type"], w["nick"], w["users"], w["history"]),
                         ("welcome", "ann", ["ann"], []))
        got = [self.next_json(ws) for _ in range(8)]
        self.assertEqual(got[0], {"type": "said", "from": "ann", "text": "one", "ts": got[0]["ts"]})
        self.assertEqual(got[1], {"type": "renamed", "from": "ann", "to": "bob"})
        self.assertEqual((got[2]["type"], got[2]["from"], got[2]["text"]), ("said", "bob", "two"))
        self.assertEqual([m.get("reason") for m in got[3:7]],
                         ["bad JSON", "not text", "too long", "empty text"])
        self.assertEqual((got[7]["type"], got[7]["from"], got[7]["text"]),
                         ("said", "bob", "three"))
        # the room knows bob, not ann, and kept what was said
        async def go():
            ws2, w2 = await self.join("early", "ann")
            self.assertEqual((w2["nick"], w2["users"]), ("ann", ["bob", "ann"]))
            self.assertEqual([m["text"] for m in w2["history"]], ["one", "two", "three"])
            await ws2.close()
        run(go())
        ws.send(wsutil.close_frame(1000))
        self.assertEqual(ws.expect_close()[0], 1000)

    def test_messages_right_behind_a_rename_wait_for_it(self):
        async def go():
            a, _ = await self.join("behind", "ann")
            b, _ = await self.join("behind", "bob")
            await self.expect(a, "joined", nick="bob")
            # one write: the says are read while the rename's fetch is out
            await b.send(json.dumps({"type": "nick", "nick": "ANN"}))
            for i in range(5):
                await self.say(b, f"s{i}")
            await b.send(json.dumps({"type": "nick", "nick": "cy"}))
            await self.say(b, "last")
            for ws in (a, b):
                await self.expect(ws, "renamed", **{"from": "bob", "to": "ANN2"})
                for i in range(5):
                    await self.expect(ws, "said", **{"from": "ANN2", "text": f"s{i}"})
                await self.expect(ws, "renamed", **{"from": "ANN2", "to": "cy"})
                await self.expect(ws, "said", **{"from": "cy", "text": "last"})
            await self.nothing_more(a, 0.2)
            await a.close()
            await b.close()
        run(go())

    def test_a_flood_while_the_room_is_fetched_is_answered_busy_beyond_the_bound(self):
        n = 40
        ws = self.raw_join("room=flood&nick=ann", "/ws/free",
                           after=b"".join(self.said(str(i)) for i in range(n)))
        self.assertEqual(self.next_json(ws)["type"], "welcome")
        got = [self.next_json(ws) for _ in range(n)]
        said = [m["text"] for m in got if m["type"] == "said"]
        busy = [m for m in got if m["type"] == "error"]
        # every message answered once: the first ones said, in order, the
        # rest refused "busy" (at least the 16 queued ones get through)
        self.assertEqual(said, [str(i) for i in range(len(said))])
        self.assertGreaterEqual(len(said), 16)
        self.assertEqual(len(said) + len(busy), n)
        self.assertTrue(all(m == {"type": "error", "reason": "busy"} for m in busy), busy)
        # still in the room and talking
        ws.send(self.said("after"))
        m = self.next_json(ws)
        self.assertEqual((m["type"], m["text"]), ("said", "after"))
        ws.send(wsutil.close_frame(1000))
        self.assertEqual(ws.expect_close()[0], 1000)

    def test_rate_limit_applies_on_arrival_and_its_errors_come_after_the_welcome(self):
        # rate 1, burst 3: of 6 messages sent with the handshake, 3 pass
        ws = self.raw_join("room=rlw&nick=ann", "/ws/slow",
                           after=b"".join(self.said(str(i)) for i in range(6)))
        self.assertEqual(self.next_json(ws)["type"], "welcome")
        got = [self.next_json(ws) for _ in range(6)]
        self.assertEqual([m.get("text", m.get("reason")) for m in got],
                         ["0", "1", "2", "rate limited", "rate limited", "rate limited"])
        ws.send(wsutil.close_frame(1000))
        self.assertEqual(ws.expect_close()[0], 1000)

    def test_a_refused_joiner_sends_nothing_to_the_room(self):
        # room full while messages wait: they are dropped with the client
        async def go():
            a, _ = await self.join("fullq", "a", "/ws/small")
            b, _ = await self.join("fullq", "b", "/ws/small")
            await self.expect(a, "joined", nick="b")
            ws = self.raw_join("room=fullq&nick=c", "/ws/small", after=self.said("sneak"))
            self.assertEqual(self.next_json(ws), {"type": "error", "reason": "room full"})
            self.assertEqual(ws.expect_close(skip_data=False), (1008, b"room full"))
            await self.nothing_more(a, 0.3)
            await self.nothing_more(b, 0.05)
            await a.close()
            await b.close()
        run(go())

    def test_welcome_history_is_the_routes_own_cut_of_a_shared_room(self):
        """Routes share rooms (topics belong to the plugin); history: 3 shows
        the newest 3 of what another route kept, history: 0 shows none."""
        async def go():
            a, _ = await self.join("shared", "ann", "/ws/free")      # history 50
            for i in range(6):
                await self.say(a, f"m{i}")
            for i in range(6):
                await self.expect(a, "said", text=f"m{i}")
            b, w = await self.join("shared", "bob", "/ws/hist3")
            self.assertEqual([m["text"] for m in w["history"]], ["m3", "m4", "m5"])
            c, w = await self.join("shared", "cy", "/ws/nohist")
            self.assertEqual((w["users"], w["history"]), (["ann", "bob", "cy"], []))
            d, w = await self.join("shared", "dee", "/ws/chat")
            self.assertEqual([m["text"] for m in w["history"]], [f"m{i}" for i in range(6)])
            for s in (a, b, c, d):
                await s.close()
        run(go())

    def test_users_and_history_survive_a_reload(self):
        """SIGHUP starts new plugin instances; the rooms' state is the host's."""
        async def go():
            a, _ = await self.join("reload", "ann")
            await self.say(a, "before")
            await self.expect(a, "said", text="before")
            n = self.gh.log().count("reloaded")
            self.gh.send_signal(signal.SIGHUP)
            ghtest.wait_for(lambda: self.gh.log().count("reloaded") > n, 10, "the reload")
            b, w = await self.join("reload", "ann")
            self.assertEqual((w["nick"], w["users"]), ("ann2", ["ann", "ann2"]))
            self.assertEqual([m["text"] for m in w["history"]], ["before"])
            await self.expect(a, "joined", nick="ann2")
            await self.say(b, "after")
            for ws in (a, b):
                await self.expect(ws, "said", **{"from": "ann2", "text": "after"})
            await a.close()
            await self.expect(b, "left", nick="ann")
            await b.close()
        run(go())


if __name__ == "__main__":
    ghtest.main()
