"""permessage-deflate (RFC 7692) end to end, against the real daemon:

  - python3-websockets (compression on by default in its client) and node's
    `ws` with every combination of its parameters echo text and binary of
    every size class through compressing routes, and see the answer the
    spec says;
  - a raw socket offers what no client library sends (several offers, several
    header lines, quoted values, bad parameters) and misuses RSV1, sends
    corrupt and hostile DEFLATE data (a bomb: the server's memory must not
    follow the inflated size), invalid UTF-8 inside compressed text,
    fragmented and byte-by-byte compressed messages, and reads the exact
    close codes and the RSV1 bit of each frame that comes back;
  - a topic publish is compressed once for every subscriber that keeps no
    server context (and once per subscriber that does), read from the
    metrics.

The answer gatehouse gives (conf/README.md, core/codec/wsext.h):
"permessage-deflate" + "; server_no_context_takeover" (offered, or the route
keeps no context) + "; client_no_context_takeover" (always) +
"; server_max_window_bits=N" (only when offered: the smaller of the offer
and the route's server_window_bits); never client_max_window_bits."""
import asyncio
import base64
import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import urllib.request
import zlib

import websockets

import ghtest
import wsutil
from wsutil import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RSV1, RSV2, RSV3,
                    PmdWS, deflate_message, frame, inflate_message)

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_WS = os.path.join(HERE, "..", "node_modules", "ws")

BIG = "max_message: 2MiB, send_backlog: 8MiB, close_timeout: 2s"
ROUTES = f"""
  - match: {{ path: /metrics }}
    metrics: {{}}
  - match: {{ path: /ws/echo }}
    websocket: {{ plugin: echo, {BIG} }}
  - match: {{ path: /ws/t0 }}
    websocket: {{ plugin: echo, compression_threshold: 0, {BIG} }}
  - match: {{ path: /ws/off }}
    websocket: {{ plugin: echo, compression: off, {BIG} }}
  - match: {{ path: /ws/w10 }}
    websocket: {{ plugin: echo, server_window_bits: 10, {BIG} }}
  - match: {{ path: /ws/takeover }}
    websocket: {{ plugin: echo, context_takeover: true, {BIG} }}
  - match: {{ path: /ws/level9 }}
    websocket: {{ plugin: echo, compression_level: 9, {BIG} }}
  - match: {{ path: /ws/small }}
    websocket: {{ plugin: echo, max_message: 1000, close_timeout: 2s }}
  - match: {{ path: /ws/bomb }}
    websocket: {{ plugin: echo, max_message: 1MiB, close_timeout: 2s }}
"""

PMD = "permessage-deflate"
WORDS = ["gateway", "frame", "deflate", "wörld", "topic", "message", "héllo", "✓", "window",
         "context", "takeover", "socket", "zlib", "rsv1", "échelle"]


def answer(server_no_context_takeover=True, server_max_window_bits=None):
    """The Sec-WebSocket-Extensions answer the spec prescribes."""
    a = PMD
    if server_no_context_takeover:
        a += "; server_no_context_takeover"
    a += "; client_no_context_takeover"
    if server_max_window_bits is not None:
        a += f"; server_max_window_bits={server_max_window_bits}"
    return a


def wordy(n, seed=1):
    """n bytes of valid UTF-8 text that deflate shrinks (words of a small
    vocabulary, some non-ASCII) but that is not one repeated byte."""
    rng = random.Random(seed)
    out, size = [], 0
    while size < n:
        w = (rng.choice(WORDS) + " ").encode()
        out.append(w)
        size += len(w)
    if size > n:                # without its last word it is shorter: pad
        size -= len(out.pop())
    return b"".join(out) + b"x" * (n - size)


scrape = ghtest.scrape


COMPRESSIONS = "gatehouse_ws_compressions_total"
C_IN = 'gatehouse_ws_compression_bytes_total{stage="uncompressed"}'
C_OUT = 'gatehouse_ws_compression_bytes_total{stage="compressed"}'
DECOMPRESSIONS = "gatehouse_ws_decompressions_total"
D_IN = 'gatehouse_ws_decompression_bytes_total{stage="compressed"}'
D_OUT = 'gatehouse_ws_decompression_bytes_total{stage="uncompressed"}'
DEFLATE_METRICS = (COMPRESSIONS, C_IN, C_OUT, DECOMPRESSIONS, D_IN, D_OUT)


def moved(before, after):
    """How much each compression counter moved."""
    for k in DEFLATE_METRICS:
        assert k in after, "metric %s is missing" % k
    return {k: after[k] - before[k] for k in DEFLATE_METRICS}


class DeflateCase(ghtest.TestCase):
    routes = ROUTES
    extra = ""

    def setUp(self):
        super().setUp()
        self.port = ghtest.free_port()
        self.gh = self.start(wsutil.ws_config(self.port, self.tmp, self.routes, self.extra))
        # after the test's own cleanups (its sockets closed): a clean exit,
        # so that under ASan a zlib stream or frame left behind is a failure
        self.addCleanup(self.stop_cleanly)

    def stop_cleanly(self):
        rc = self.gh.stop()
        self.assertEqual(rc, 0, "gatehouse exited with %s:\n%s" % (rc, self.gh.log()[-4000:]))

    def pmd(self, path="/ws/echo", extensions=(PMD,), **kw):
        ws = PmdWS(self.port, path, extensions, **kw)
        self.addCleanup(ws.close)
        self.assertEqual(ws.status, 101)
        return ws

    def metrics(self):
        return scrape(self.port)


# -- a. python3-websockets ----------------------------------------------------------

class PythonWebsocketsTest(DeflateCase):
    SIZES = [0, 1, 127, 128, 129, 1000, 70000, 1 << 20]

    def echo_all(self, path, compression="deflate"):
        """Echoes wordy text, wordy binary and random binary of every size;
        returns (response extensions header, negotiated extensions)."""
        async def session():
            async with websockets.connect(f"ws://127.0.0.1:{self.port}{path}", max_size=4 << 20,
                                          compression=compression, ping_interval=None) as ws:
                for n in self.SIZES:
                    for data in (wordy(n, n).decode(), wordy(n, n + 1), os.urandom(n)):
                        await ws.send(data)
                        got = await ws.recv()
                        self.assertEqual(type(got), type(data), (path, n))
                        self.assertEqual(got, data, (path, n))
                hdr = ws.response_headers.get_all("Sec-WebSocket-Extensions")
                exts = list(ws.extensions)
                await ws.close(1000)
                self.assertEqual(ws.close_code, 1000)
                return hdr, exts
        return asyncio.run(session())

    def test_echo_of_every_size_with_compression_negotiated(self):
        before = self.metrics()
        hdr, exts = self.echo_all("/ws/echo")
        # websockets offers "permessage-deflate; client_max_window_bits"
        self.assertEqual(hdr, [answer()])
        self.assertEqual(len(exts), 1)
        self.assertEqual(exts[0].name, PMD)
        self.assertTrue(exts[0].remote_no_context_takeover)   # the server's
        self.assertTrue(exts[0].local_no_context_takeover)    # ours: asked of us
        d = moved(before, self.metrics())
        sent = 3 * len(self.SIZES)
        # websockets compresses every message it sends, the empty ones too
        self.assertEqual(d[DECOMPRESSIONS], sent)
        self.assertEqual(d[D_OUT], 3 * sum(self.SIZES))
        # gatehouse compresses the echoes from 128 bytes on: at least the
        # 10 wordy ones (the random ones may go out plain: they do not shrink)
        wordy_big = 2 * len([n for n in self.SIZES if n >= 128])
        self.assertGreaterEqual(d[COMPRESSIONS], wordy_big)
        self.assertLessEqual(d[COMPRESSIONS], 3 * len([n for n in self.SIZES if n >= 128]))
        self.assertLess(d[C_OUT], d[C_IN])

    def test_compression_off_on_the_route_answers_no_extension_and_echoes(self):
        before = self.metrics()
        hdr, exts = self.echo_all("/ws/off")
        self.assertEqual(hdr, [])
        self.assertEqual(exts, [])
        self.assertEqual(moved(before, self.metrics()),
                         {k: 0 for k in DEFLATE_METRICS})

    def test_a_client_that_offers_nothing_gets_plain_frames(self):
        # websockets fails the connection on an RSV1 it did not negotiate
        before = self.metrics()
        hdr, exts = self.echo_all("/ws/echo", compression=None)
        self.assertEqual(hdr, [])
        self.assertEqual(exts, [])
        self.assertEqual(moved(before, self.metrics()), {k: 0 for k in DEFLATE_METRICS})


# -- b. node ws ------------------------------------------------------------------------

class NodeWsTest(DeflateCase):

    @classmethod
    def setUpClass(cls):
        # a missing client is a failure, not a skip
        if shutil.which("node") is None:
            raise AssertionError("node is not installed (bash contrib/quickstart.sh test installs it)")
        if not os.path.isdir(NODE_WS):
            raise AssertionError("node ws is not installed: run `npm ci` in tests/")

    def node(self, scenario, arg):
        out = subprocess.run(["node", os.path.join(HERE, "ws_node_deflate_client.js"),
                              str(self.port), scenario, json.dumps(arg)],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout + "\n--- gatehouse:\n" +
                         self.gh.log()[-3000:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    def matrix(self, path, combos, expect, big=False):
        """Runs the combos on path; expect(combo) is the header the spec
        prescribes for it (None: no extension)."""
        got = self.node("matrix", {"path": path, "combos": combos, "big": big})["results"]
        self.assertEqual(len(got), len(combos))
        for r in got:
            want = expect(r["combo"])
            self.assertEqual(r["header"], want, r["combo"])
            self.assertEqual(r["extensions"], PMD if want else "", r["combo"])
            self.assertEqual(r["close"], 1000, r["combo"])

    def test_every_parameter_combination_on_the_default_route(self):
        combos = []
        for snct in (True, False):
            for cnct in (True, None):       # false: ws refuses our client_no_context_takeover
                for smwb in (9, 10, 15, None):
                    for cmwb in (True, 10, None):
                        c = {"serverNoContextTakeover": snct}
                        if cnct is not None:
                            c["clientNoContextTakeover"] = cnct
                        if smwb is not None:
                            c["serverMaxWindowBits"] = smwb
                        if cmwb is not None:
                            c["clientMaxWindowBits"] = cmwb
                        combos.append(c)
        # the route keeps no context: server_no_context_takeover whatever
        # was offered; a window only when asked for, at most 15
        self.matrix("/ws/echo", combos + [False],
                    lambda c: None if c is False else answer(True, c.get("serverMaxWindowBits")),
                    big=True)

    def test_the_route_window_caps_the_offered_one(self):
        combos = [{"serverMaxWindowBits": b} for b in (9, 10, 12, 15)] + [{}]
        self.matrix("/ws/w10", combos,
                    lambda c: answer(True, None if "serverMaxWindowBits" not in c
                                     else min(10, c["serverMaxWindowBits"])), big=True)

    def test_a_route_with_context_takeover_keeps_the_server_context_unless_offered_not_to(self):
        combos = [{"serverNoContextTakeover": s, **w} for s in (True, False)
                  for w in ({}, {"serverMaxWindowBits": 12}, {"clientMaxWindowBits": 10})]
        self.matrix("/ws/takeover", combos,
                    lambda c: answer(c["serverNoContextTakeover"], c.get("serverMaxWindowBits")),
                    big=True)

    def test_compression_off_answers_nothing_and_echoes(self):
        self.matrix("/ws/off", [{}, {"serverNoContextTakeover": True, "serverMaxWindowBits": 10},
                                False], lambda c: None)

    def test_level_9_route_echoes(self):
        self.matrix("/ws/level9", [{}, {"serverMaxWindowBits": 9}],
                    lambda c: answer(True, c.get("serverMaxWindowBits")), big=True)

    def lengths(self, path, lengths):
        before = self.metrics()
        r = self.node("lengths", {"path": path, "lengths": lengths})
        self.assertEqual(r["header"], answer())
        self.assertEqual(r["close"], 1000)
        return r, moved(before, self.metrics())

    # Every one of these shrinks when deflated (no message here would be sent
    # plain for not shrinking), so the counters follow the threshold alone.
    LENGTHS = [100, 127, 128, 129, 500, 4096, 70000]

    def test_threshold_0_compresses_every_message(self):
        r, d = self.lengths("/ws/t0", self.LENGTHS)
        self.assertEqual(r["sent"], 2 * len(self.LENGTHS))
        self.assertEqual(d[COMPRESSIONS], 2 * len(self.LENGTHS))
        self.assertEqual(d[C_IN], 2 * sum(self.LENGTHS))
        self.assertEqual(d[DECOMPRESSIONS], 2 * len(self.LENGTHS))   # ws threshold 0 too
        self.assertEqual(d[D_OUT], 2 * sum(self.LENGTHS))

    def test_default_threshold_compresses_from_128_bytes(self):
        r, d = self.lengths("/ws/echo", self.LENGTHS)
        over = [n for n in self.LENGTHS if n >= 128]
        self.assertEqual(d[COMPRESSIONS], 2 * len(over))
        self.assertEqual(d[C_IN], 2 * sum(over))
        self.assertLess(d[C_OUT], d[C_IN])
        self.assertEqual(d[DECOMPRESSIONS], 2 * len(self.LENGTHS))


# -- c. raw socket: the handshake ---------------------------------------------------

class NegotiationTest(DeflateCase):

    def offer(self, extensions, path="/ws/echo"):
        """The answer to these Sec-WebSocket-Extensions lines (None: no
        extension); the handshake must succeed either way, and a compressed
        message must work exactly when one was agreed."""
        ws = self.pmd(path, extensions)
        self.assertEqual(len(ws.extension_lines), 0 if ws.extensions() is None else 1,
                         ws.extension_lines)
        got = ws.extensions()
        text = wordy(300, 5)
        if got is None:
            ws.send(frame(OP_TEXT, text))
            self.assertEqual(ws.recv_plain(), (OP_TEXT, False, text))
        else:
            m = re.search(r"server_max_window_bits=(\d+)", got)
            ws.send(frame(OP_TEXT, deflate_message(text), rsv=RSV1))
            op, rsv1, data = ws.recv_plain(wbits=int(m.group(1)) if m else 15)
            self.assertEqual((op, rsv1, data), (OP_TEXT, True, text))
        ws.close()
        return got

    def test_accepted_offers(self):
        cases = [
            ([PMD], answer()),
            (["permessage-deflate; client_max_window_bits"], answer()),
            (["permessage-deflate; client_max_window_bits=10"], answer()),
            (["permessage-deflate; client_max_window_bits=8"], answer()),
            (["permessage-deflate; client_max_window_bits=15"], answer()),
            (["permessage-deflate; server_no_context_takeover"], answer()),
            (["permessage-deflate; client_no_context_takeover"], answer()),
            (["permessage-deflate; server_max_window_bits=9"], answer(True, 9)),
            (["permessage-deflate; server_max_window_bits=15"], answer(True, 15)),
            (["permessage-deflate; server_max_window_bits=12; client_max_window_bits; "
              "server_no_context_takeover; client_no_context_takeover"], answer(True, 12)),
            (["permessage-deflate;server_max_window_bits=11;client_no_context_takeover"],
             answer(True, 11)),
            (["permessage-deflate ; server_max_window_bits=13 ;client_max_window_bits"],
             answer(True, 13)),
            # quoted values (RFC 6455 §9.1: a quoted-string must hold a token)
            (['permessage-deflate; server_max_window_bits="10"'], answer(True, 10)),
            (['permessage-deflate; client_max_window_bits="12"'], answer()),
        ]
        for lines, want in cases:
            with self.subTest(offer=lines):
                self.assertEqual(self.offer(lines), want)

    def test_the_first_offer_that_can_be_honoured_wins(self):
        cases = [
            # several offers in one line
            (["permessage-deflate; server_max_window_bits=8, permessage-deflate; "
              "server_max_window_bits=10, permessage-deflate"], answer(True, 10)),
            (["permessage-deflate; server_max_window_bits=11, permessage-deflate; "
              "server_max_window_bits=10"], answer(True, 11)),
            (["x-webkit-deflate-frame, permessage-deflate; client_max_window_bits"], answer()),
            (["foo; bar=baz, permessage-deflate; server_max_window_bits=9"], answer(True, 9)),
            # several header lines are one list, in order
            (["x-webkit-deflate-frame", "permessage-deflate; foo=1",
              "permessage-deflate; server_max_window_bits=12"], answer(True, 12)),
            (["permessage-deflate; server_max_window_bits=8",
              "permessage-deflate; server_max_window_bits=14, permessage-deflate"],
             answer(True, 14)),
            (["permessage-deflate; server_max_window_bits=9", "permessage-deflate"],
             answer(True, 9)),
        ]
        for lines, want in cases:
            with self.subTest(offer=lines):
                self.assertEqual(self.offer(lines), want)

    BAD = [
        "permessage-deflate; foo",
        "permessage-deflate; foo=bar",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        'permessage-deflate; server_no_context_takeover="true"',
        "permessage-deflate; client_no_context_takeover=true",
        "permessage-deflate; server_max_window_bits",
        'permessage-deflate; server_max_window_bits=""',
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=0",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; server_max_window_bits=abc",
        "permessage-deflate; server_max_window_bits=-10",
        "permessage-deflate; server_max_window_bits=1e1",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=abc",
    ]

    def test_offers_with_bad_parameters_are_declined_and_the_handshake_succeeds(self):
        for bad in self.BAD:
            with self.subTest(offer=bad):
                self.assertIsNone(self.offer([bad]))

    def test_a_declined_offer_does_not_stop_the_next_one(self):
        for bad in self.BAD:
            with self.subTest(offer=bad):
                self.assertEqual(self.offer([bad + ", permessage-deflate; server_max_window_bits=12"]),
                                 answer(True, 12))
                self.assertEqual(self.offer([bad, "permessage-deflate"]), answer())

    def test_other_extensions_alone_get_no_answer(self):
        for lines in (["x-webkit-deflate-frame"], ["foo, bar; baz=1"], ["deflate-frame"]):
            with self.subTest(offer=lines):
                self.assertIsNone(self.offer(lines))

    def test_the_route_window_caps_the_offered_one(self):
        for offered, want in ((15, 10), (12, 10), (10, 10), (9, 9)):
            with self.subTest(offered=offered):
                self.assertEqual(self.offer([f"permessage-deflate; server_max_window_bits={offered}"],
                                            "/ws/w10"), answer(True, want))
        self.assertEqual(self.offer([PMD], "/ws/w10"), answer())

    def test_a_context_takeover_route_says_server_no_context_takeover_only_when_offered(self):
        self.assertEqual(self.offer([PMD], "/ws/takeover"), answer(False))
        self.assertEqual(self.offer(["permessage-deflate; server_no_context_takeover"],
                                    "/ws/takeover"), answer(True))
        self.assertEqual(self.offer(["permessage-deflate; server_max_window_bits=11"],
                                    "/ws/takeover"), answer(False, 11))

    def test_compression_off_answers_nothing(self):
        for lines in ([PMD], ["permessage-deflate; server_no_context_takeover"]):
            with self.subTest(offer=lines):
                self.assertIsNone(self.offer(lines, "/ws/off"))


# -- c. raw socket: frames ------------------------------------------------------------

class RawDeflateTest(DeflateCase):

    def assert_closed_with(self, ws, data, code):
        """Sends data (from a thread: the server may close before it has read
        it all) and reads the close it answers with."""
        def send():
            try:
                ws.send(data)
            except OSError:         # the server closed first: what we test for
                pass
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        got, reason = ws.expect_close_ex()
        self.assertEqual(got, code, "sent %r; close reason %r" % (data[:40], reason))
        self.assertTrue(ws.at_eof(5), "server did not close the TCP connection")
        sender.join(10)
        self.assertFalse(sender.is_alive())

    # -- RSV bits -------------------------------------------------------------------

    def test_rsv1_on_control_frames_closes_with_1002(self):
        for op, payload in ((OP_PING, b"p"), (OP_PONG, b"p"), (OP_CLOSE, b"\x03\xe8")):
            with self.subTest(opcode=op):
                self.assert_closed_with(self.pmd(), frame(op, payload, rsv=RSV1), 1002)

    def test_rsv1_on_a_continuation_closes_with_1002(self):
        z = deflate_message(wordy(1000))
        with self.subTest("after a compressed first frame"):
            self.assert_closed_with(self.pmd(), frame(OP_TEXT, z[:10], fin=False, rsv=RSV1) +
                                    frame(OP_CONT, z[10:], rsv=RSV1), 1002)
        with self.subTest("after a plain first frame"):
            self.assert_closed_with(self.pmd(), frame(OP_BINARY, b"abc", fin=False) +
                                    frame(OP_CONT, z, rsv=RSV1), 1002)

    def test_rsv1_without_negotiation_closes_with_1002(self):
        z = frame(OP_TEXT, deflate_message(wordy(300)), rsv=RSV1)
        with self.subTest("nothing offered"):
            self.assert_closed_with(self.pmd(extensions=()), z, 1002)
        with self.subTest("offer declined"):
            ws = self.pmd(extensions=["permessage-deflate; server_max_window_bits=8"])
            self.assertIsNone(ws.extensions())
            self.assert_closed_with(ws, z, 1002)
        with self.subTest("compression: off"):
            ws = self.pmd("/ws/off")
            self.assertIsNone(ws.extensions())
            self.assert_closed_with(ws, z, 1002)

    def test_rsv2_and_rsv3_close_with_1002_even_when_compression_is_negotiated(self):
        for rsv in (RSV2, RSV3, RSV1 | RSV2, RSV1 | RSV3):
            with self.subTest(rsv=rsv):
                self.assert_closed_with(self.pmd(), frame(OP_TEXT, deflate_message("hello"), rsv=rsv),
                                        1002)

    # -- bad DEFLATE data -----------------------------------------------------------

    def test_corrupt_deflate_data_closes_with_1007(self):
        bfinal = zlib.compressobj(6, zlib.DEFLATED, -15)
        finished = bfinal.compress(wordy(500)) + bfinal.flush(zlib.Z_FINISH)
        # compressed against a preset dictionary the receiver does not have:
        # its matches reach back before the message's first byte
        dictionary = wordy(300, 12)
        far = deflate_message(dictionary, compressor=zlib.compressobj(
            6, zlib.DEFLATED, -15, zdict=dictionary))
        cases = {
            "reserved block type 11": (OP_TEXT, b"\xff\xff\xff\xff"),
            "reserved block type, binary": (OP_BINARY, b"\x07" + os.urandom(64)),
            "stored block with a wrong NLEN": (OP_BINARY, b"\x00\x05\x00\x00\x00hello"),
            "garbage after a final block": (OP_TEXT, finished + b"trailing garbage"),
            "a distance before the first byte": (OP_TEXT, far),
        }
        # zlib itself refuses each of them
        for name, (_, data) in cases.items():
            with self.assertRaises(zlib.error, msg=name):
                inflate_message(data)
        for name, (op, data) in cases.items():
            with self.subTest(name):
                self.assert_closed_with(self.pmd(), frame(op, data, rsv=RSV1), 1007)

    def test_a_message_that_uses_the_previous_ones_window_closes_with_1007(self):
        # gatehouse asked for client_no_context_takeover: the second message,
        # compressed with the first one's window, refers to bytes it never
        # had (or, kept by mistake, must not have)
        text = wordy(2000, 9)
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        first, second = deflate_message(text, compressor=c), deflate_message(text, compressor=c)
        with self.assertRaises(zlib.error):
            inflate_message(second)
        ws = self.pmd()
        ws.send(frame(OP_TEXT, first, rsv=RSV1))
        self.assertEqual(ws.recv_plain(), (OP_TEXT, True, text))
        self.assert_closed_with(ws, frame(OP_TEXT, second, rsv=RSV1), 1007)

    def test_a_final_block_message_is_accepted(self):
        # RFC 7692 §7.2.3.3: a sender may end a message with BFINAL set; then
        # no 00 00 ff ff tail was there to strip
        text = wordy(3000, 4)
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = c.compress(text) + c.flush(zlib.Z_FINISH)
        ws = self.pmd()
        ws.send(frame(OP_TEXT, data, rsv=RSV1) + frame(OP_TEXT, deflate_message(text), rsv=RSV1))
        self.assertEqual(ws.recv_plain(), (OP_TEXT, True, text))
        self.assertEqual(ws.recv_plain(), (OP_TEXT, True, text))

    def test_an_empty_compressed_message_is_a_single_zero_byte(self):
        # RFC 7692 §7.2.3.6
        ws = self.pmd("/ws/t0")
        ws.send(frame(OP_TEXT, b"\x00", rsv=RSV1) + frame(OP_BINARY, deflate_message(b""), rsv=RSV1))
        self.assertEqual(ws.recv_plain(), (OP_TEXT, False, b""))   # empty: never compressed
        self.assertEqual(ws.recv_plain(), (OP_BINARY, False, b""))

    # -- UTF-8 ----------------------------------------------------------------------

    def test_invalid_utf8_inside_compressed_text_closes_with_1007(self):
        cases = {
            "a bad byte": wordy(400) + b"\xff" + wordy(400, 2),
            "a surrogate": b"abc \xed\xa0\x80 def" * 20,
            "an overlong slash": b"\xc0\xaf" + wordy(200),
            "ends inside a code point": wordy(300) + b"\xe2\x82",
        }
        for name, text in cases.items():
            with self.subTest(name):
                self.assert_closed_with(self.pmd(), frame(OP_TEXT, deflate_message(text), rsv=RSV1),
                                        1007)
        with self.subTest("split across compressed fragments"):
            z = deflate_message(wordy(500) + b"\xff")
            self.assert_closed_with(self.pmd(), frame(OP_TEXT, z[:20], fin=False, rsv=RSV1) +
                                    frame(OP_CONT, z[20:]), 1007)

    def test_the_same_bytes_in_a_binary_message_are_echoed(self):
        data = wordy(400) + b"\xff\xed\xa0\x80" + wordy(400, 2)
        ws = self.pmd()
        ws.send(frame(OP_BINARY, deflate_message(data), rsv=RSV1))
        self.assertEqual(ws.recv_plain(), (OP_BINARY, True, data))

    def test_multibyte_text_is_echoed(self):
        text = ("€ ✓ wörld 𝄞 " * 300).encode()
        ws = self.pmd()
        ws.send(frame(OP_TEXT, deflate_message(text), rsv=RSV1))
        self.assertEqual(ws.recv_plain(), (OP_TEXT, True, text))

    # -- max_message on the inflated size ---------------------------------------------

    def test_max_message_bounds_the_inflated_size(self):
        with self.subTest("exactly max_message"):
            ws = self.pmd("/ws/small")
            ws.send(frame(OP_TEXT, deflate_message(wordy(1000)), rsv=RSV1))
            self.assertEqual(ws.recv_plain(), (OP_TEXT, True, wordy(1000)))
        with self.subTest("one byte more"):
            z = deflate_message(wordy(1001))
            self.assertLess(len(z), 1000)
            self.assert_closed_with(self.pmd("/ws/small"), frame(OP_TEXT, z, rsv=RSV1), 1009)
        with self.subTest("one byte more, in fragments"):
            z = deflate_message(bytes(1001))
            self.assert_closed_with(self.pmd("/ws/small"),
                                    frame(OP_BINARY, z[:3], fin=False, rsv=RSV1) +
                                    frame(OP_CONT, z[3:6], fin=False) + frame(OP_CONT, z[6:]), 1009)

    def test_a_small_message_inflating_past_max_message_closes_with_1009(self):
        z = deflate_message(bytes(8 << 20), level=9)       # 8 MiB of zeros
        self.assertLess(len(z), 10000)
        self.assert_closed_with(self.pmd("/ws/bomb"), frame(OP_BINARY, z, rsv=RSV1), 1009)

    def test_a_bomb_closes_with_1009_and_the_server_does_not_allocate_its_inflated_size(self):
        # 1 GiB of zeros in about 530 KiB: one block of 1 MiB of zeros, then
        # the same block again and again (each compresses to the same bytes
        # once the window is full of zeros)
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        mib = bytes(1 << 20)
        head = c.compress(mib) + c.flush(zlib.Z_SYNC_FLUSH)
        block = c.compress(mib) + c.flush(zlib.Z_SYNC_FLUSH)
        self.assertEqual(block, c.compress(mib) + c.flush(zlib.Z_SYNC_FLUSH))
        inflated_mib = 512
        bomb = (head + block * (inflated_mib - 1))[:-4]
        self.assertLess(len(bomb), 1 << 20)         # under max_message on the wire
        # the bomb is what it claims to be: check its first 64 MiB
        d = zlib.decompressobj(-15)
        self.assertEqual(len(d.decompress(bomb, 64 << 20)), 64 << 20)

        pid = self.gh.proc.pid
        ws = self.pmd("/ws/bomb")
        ws.send(frame(OP_TEXT, b"warm up " * 40))   # whatever a first message allocates
        self.assertEqual(ws.recv_plain()[2], b"warm up " * 40)
        try:                                        # peak RSS from now on (Linux >= 4.0)
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        before = proc_kib(pid, "VmRSS")
        self.assert_closed_with(ws, frame(OP_BINARY, bomb, rsv=RSV1), 1009)
        peak = proc_kib(pid, "VmHWM")
        growth = peak - before
        # max_message (1 MiB) of output, the ~530 KiB frame, a zlib stream:
        # a few MiB; the bomb is 512 MiB
        self.assertLess(growth, 16 * 1024, "peak RSS grew %d KiB for a %d MiB bomb" %
                        (growth, inflated_mib))
        # and the server is fine
        ws2 = self.pmd("/ws/bomb")
        ws2.send(frame(OP_TEXT, deflate_message(wordy(500)), rsv=RSV1))
        self.assertEqual(ws2.recv_plain(), (OP_TEXT, True, wordy(500)))

    # -- fragments and splits ----------------------------------------------------------

    def test_a_fragmented_compressed_message_is_echoed(self):
        text = wordy(20000, 3)
        z = deflate_message(text)
        ws = self.pmd()
        ws.send(frame(OP_TEXT, z[:1], fin=False, rsv=RSV1) + frame(OP_CONT, b"", fin=False) +
                frame(OP_PING, b"mid") + frame(OP_CONT, z[1:100], fin=False) +
                frame(OP_CONT, z[100:], fin=True))
        self.assertEqual(ws.recv_frame_ex(), (True, 0, OP_PONG, b"mid"))
        self.assertEqual(ws.recv_plain(), (OP_TEXT, True, text))
        # and a plain message after it
        ws.send(frame(OP_BINARY, b"plain", fin=False) + frame(OP_CONT, b" after"))
        self.assertEqual(ws.recv_plain(), (OP_BINARY, False, b"plain after"))

    def test_a_compressed_frame_split_at_every_byte_is_reassembled(self):
        ws = self.pmd()
        ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        text, data = wordy(3000, 8), os.urandom(200) * 3
        wire = (frame(OP_TEXT, deflate_message(text), rsv=RSV1) +
                frame(OP_BINARY, deflate_message(data)[:7], fin=False, rsv=RSV1) +
                frame(OP_CONT, deflate_message(data)[7:]))
        for i in range(len(wire)):
            ws.send(wire[i:i + 1])
        self.assertEqual(ws.recv_plain(), (OP_TEXT, True, text))
        self.assertEqual(ws.recv_plain(), (OP_BINARY, True, data))

    def test_connections_mid_message_at_once_each_inflate_their_own(self):
        # more connections inside a compressed message at once than the pool
        # keeps idle inflaters: each must have its own stream
        conns = [self.pmd() for _ in range(12)]
        texts = [wordy(3000 + i, 100 + i) for i in range(len(conns))]
        zs = [deflate_message(t) for t in texts]
        for ws, z in zip(conns, zs):
            ws.send(frame(OP_TEXT, z[:len(z) // 2], fin=False, rsv=RSV1))
        # each first half is in before any second half: a pong answers
        # only after the frames before it were taken in
        for ws in conns:
            ws.send(frame(OP_PING, b"sync"))
            self.assertEqual(ws.recv_frame_ex(), (True, 0, OP_PONG, b"sync"))
        for ws, z in reversed(list(zip(conns, zs))):
            ws.send(frame(OP_CONT, z[len(z) // 2:]))
        for ws, t in zip(conns, texts):
            self.assertEqual(ws.recv_plain(), (OP_TEXT, True, t))

    def test_an_inflater_given_back_mid_message_is_clean_for_the_next(self):
        text = wordy(5000, 21)
        z = deflate_message(text)
        # failed mid-stream (1007), dropped mid-message, closed mid-message
        bad = self.pmd()
        self.assert_closed_with(bad, frame(OP_TEXT, z[:len(z) // 2], fin=False, rsv=RSV1) +
                                frame(OP_CONT, b"\xff\xff\xff\xff"), 1007)
        for _ in range(10):
            gone = self.pmd()
            gone.send(frame(OP_TEXT, z[:len(z) // 2], fin=False, rsv=RSV1))
            gone.send(frame(OP_PING, b"in"))
            self.assertEqual(gone.recv_frame_ex(), (True, 0, OP_PONG, b"in"))
            gone.close()
        closing = self.pmd()
        closing.send(frame(OP_TEXT, z[:len(z) // 3], fin=False, rsv=RSV1) +
                     wsutil.close_frame(1000))
        self.assertEqual(closing.expect_close_ex()[0], 1000)
        for _ in range(10):
            ws = self.pmd()
            ws.send(frame(OP_TEXT, z, rsv=RSV1))
            self.assertEqual(ws.recv_plain(), (OP_TEXT, True, text))
            ws.close()

    def test_many_compressed_messages_in_one_write(self):
        texts = [wordy(50 + 37 * i, i) for i in range(40)]
        ws = self.pmd()
        ws.send(b"".join(frame(OP_TEXT, deflate_message(t), rsv=RSV1) for t in texts))
        for t in texts:
            op, rsv1, data = ws.recv_plain()
            self.assertEqual((op, data), (OP_TEXT, t))
            self.assertEqual(rsv1, len(t) >= 128, len(t))

    # -- what the server sends -----------------------------------------------------------

    def test_the_threshold_decides_rsv1(self):
        ws = self.pmd()
        for n, compressed in ((1, False), (100, False), (127, False), (128, True), (129, True),
                              (5000, True)):
            text = wordy(n, n)
            for wire in (frame(OP_TEXT, deflate_message(text), rsv=RSV1), frame(OP_TEXT, text)):
                with self.subTest(n=n, client_compressed=wire[0] & 0x40 != 0):
                    ws.send(wire)
                    self.assertEqual(ws.recv_plain(), (OP_TEXT, compressed, text))
        ws0 = self.pmd("/ws/t0")
        for n in (10, 50, 127, 128):
            with self.subTest(route="t0", n=n):
                text = b"a" * n
                ws0.send(frame(OP_TEXT, text))
                self.assertEqual(ws0.recv_plain(), (OP_TEXT, True, text))

    def test_the_counters_match_the_bytes_on_the_wire(self):
        before = self.metrics()
        ws = self.pmd()
        sent_z, sent_plain, got_z, got_plain = 0, 0, 0, 0
        for i in range(20):
            text = wordy(64 * (i + 1), i)
            z = deflate_message(text)
            ws.send(frame(OP_TEXT, z, rsv=RSV1))
            op, rsv1, data = ws.recv_wire_message()
            sent_z, sent_plain = sent_z + len(z), sent_plain + len(text)
            self.assertEqual(rsv1, len(text) >= 128)
            if rsv1:
                self.assertEqual(inflate_message(data), text)
                got_z, got_plain = got_z + len(data), got_plain + len(text)
        d = moved(before, self.metrics())
        self.assertEqual(d, {DECOMPRESSIONS: 20, D_IN: sent_z, D_OUT: sent_plain,
                             COMPRESSIONS: 19, C_IN: got_plain, C_OUT: got_z})

    def test_without_context_takeover_each_message_inflates_alone(self):
        text = wordy(4000, 6)
        ws = self.pmd()
        sizes = set()
        for _ in range(3):
            ws.send(frame(OP_TEXT, text))
            op, rsv1, data = ws.recv_wire_message()
            self.assertTrue(rsv1)
            self.assertEqual(inflate_message(data), text)     # a fresh window each time
            sizes.add(data)
        self.assertEqual(len(sizes), 1, "the same message compressed differently")

    def test_with_context_takeover_the_server_keeps_its_window(self):
        # base64 of random bytes: deflate shrinks it (6 bits a byte), but its
        # 3-byte strings hardly repeat within a message, so only a
        # compressor that kept the previous message finds long matches (at
        # level 1 it takes the nearest match it sees, often a short local one)
        text = base64.b64encode(random.Random(6).randbytes(3000))
        ws = self.pmd("/ws/takeover")
        self.assertEqual(ws.extensions(), answer(False))
        d = zlib.decompressobj(-15)
        sizes = []
        for _ in range(3):
            ws.send(frame(OP_TEXT, text))
            op, rsv1, data = ws.recv_wire_message()
            self.assertTrue(rsv1)
            self.assertEqual(inflate_message(data, decompressor=d), text)
            sizes.append(len(data))
        # the second and third refer to the first: a few bytes each
        self.assertLess(sizes[1], sizes[0] / 10, sizes)
        self.assertLess(sizes[2], sizes[0] / 10, sizes)

    def test_server_windows_are_honoured(self):
        # a 4 KiB block of words, 16 times: a compressor with a window of
        # more than 4 KiB refers back across blocks, which a decompressor
        # with a 512- or 1024-byte window rejects ("distance too far back")
        data = wordy(4096, 11) * 16
        for path, ext, bits in (("/ws/echo", "permessage-deflate; server_max_window_bits=9", 9),
                                ("/ws/echo", "permessage-deflate; server_max_window_bits=10", 10),
                                ("/ws/w10", PMD, 10)):
            with self.subTest(path=path, offer=ext):
                ws = self.pmd(path, [ext])
                ws.send(frame(OP_BINARY, data))
                op, rsv1, z = ws.recv_wire_message()
                self.assertTrue(rsv1)
                self.assertEqual(inflate_message(z, wbits=bits), data)
        # the counter-proof: at 15 bits the same data does need the big window
        ws = self.pmd()
        ws.send(frame(OP_BINARY, data))
        op, rsv1, z = ws.recv_wire_message()
        self.assertEqual(inflate_message(z), data)
        with self.assertRaises(zlib.error):
            inflate_message(z, wbits=9)

    def test_control_frames_go_out_plain_on_a_compressing_connection(self):
        ws = self.pmd("/ws/t0")
        ws.send(frame(OP_PING, b"x" * 125))
        self.assertEqual(ws.recv_frame_ex(), (True, 0, OP_PONG, b"x" * 125))
        ws.send(wsutil.close_frame(4000, b"r" * 100))
        self.assertEqual(ws.recv_frame_ex()[:3], (True, 0, OP_CLOSE))
        self.assertTrue(ws.at_eof(5))


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(field + r":\s+(\d+)", f.read()).group(1))


# -- d. topics: one compression for many subscribers ---------------------------------

class FanOutTest(DeflateCase):
    # one worker here; FanOutWorkersTest runs the same with four, where the
    # counts are the same: the workers share the frames
    extra = "workers: 1"
    routes = """
  - match: { path: /metrics }
    metrics: {}
  - match: { path: /ws/ps }
    websocket: { plugin: pubsub, max_message: 1MiB, send_backlog: 4MiB }
  - match: { path: /ws/ps-takeover }
    websocket: { plugin: pubsub, context_takeover: true, max_message: 1MiB, send_backlog: 4MiB }
"""

    def subs(self, n, path, extensions, topic):
        return [self.pmd(f"{path}?topic={topic}", extensions) for _ in range(n)]

    def test_one_publish_is_compressed_once_for_all_subscribers_without_context(self):
        shared = self.subs(50, "/ws/ps", [PMD], "room")
        plain = self.subs(5, "/ws/ps", [], "room")
        takeover = self.subs(5, "/ws/ps-takeover", [PMD], "room")
        for ws in shared:
            self.assertEqual(ws.extensions(), answer(True))
        for ws in plain:
            self.assertIsNone(ws.extensions())
        for ws in takeover:
            self.assertEqual(ws.extensions(), answer(False))
        # compressible (base64), yet only a compressor that kept the previous
        # message finds long matches in it (see the takeover test above)
        payload = json.dumps({"type": "msg", "n": 1, "text": base64.b64encode(
            random.Random(2).randbytes(3000)).decode()}).encode()
        before = self.metrics()
        plain[0].send(frame(OP_TEXT, payload))     # the publisher: a plain subscriber
        frames = set()
        for ws in shared:
            op, rsv1, z = ws.recv_wire_message()
            self.assertEqual((op, rsv1), (OP_TEXT, True))
            self.assertEqual(inflate_message(z), payload)
            frames.add(z)
        self.assertEqual(len(frames), 1, "subscribers without context got different frames")
        for ws in plain:
            self.assertEqual(ws.recv_wire_message(), (OP_TEXT, False, payload))
        for ws in takeover:
            op, rsv1, z = ws.recv_wire_message()
            self.assertEqual((op, rsv1), (OP_TEXT, True))
            self.assertEqual(inflate_message(z), payload)     # their first: empty window
        d = moved(before, self.metrics())
        self.assertEqual(d[COMPRESSIONS], 1 + len(takeover))
        self.assertEqual(d[C_IN], (1 + len(takeover)) * len(payload))
        self.assertEqual(d[DECOMPRESSIONS], 0)

        # a second publish, compressed by the publisher this time: the takeover
        # subscribers now refer back to the first message
        before = self.metrics()
        z_sent = deflate_message(payload)
        shared[0].send(frame(OP_TEXT, z_sent, rsv=RSV1))
        for ws in shared:
            self.assertEqual(ws.recv_plain(), (OP_TEXT, True, payload))
        for ws in plain:
            self.assertEqual(ws.recv_wire_message(), (OP_TEXT, False, payload))
        sizes = []
        for ws in takeover:
            op, rsv1, z = ws.recv_wire_message()
            self.assertTrue(rsv1)
            sizes.append(len(z))
            self.assertEqual(len(z), sizes[0])
        d = moved(before, self.metrics())
        self.assertEqual(d[COMPRESSIONS], 1 + len(takeover))
        self.assertEqual(d[DECOMPRESSIONS], 1)
        self.assertEqual(d[D_IN], len(z_sent))
        self.assertLess(sizes[0], len(frames.pop()) / 10)

    def test_one_compression_per_window_setting(self):
        w15 = self.subs(20, "/ws/ps", [PMD], "w")
        w10 = self.subs(20, "/ws/ps", ["permessage-deflate; server_max_window_bits=10"], "w")
        w9 = self.subs(3, "/ws/ps", ["permessage-deflate; server_max_window_bits=9"], "w")
        payload = wordy(4096, 3) * 4
        before = self.metrics()
        w15[0].send(frame(OP_BINARY, payload))
        for group, bits in ((w15, 15), (w10, 10), (w9, 9)):
            frames = set()
            for ws in group:
                op, rsv1, z = ws.recv_wire_message()
                self.assertEqual((op, rsv1), (OP_BINARY, True))
                self.assertEqual(inflate_message(z, wbits=bits), payload)
                frames.add(z)
            self.assertEqual(len(frames), 1, bits)
        self.assertEqual(moved(before, self.metrics())[COMPRESSIONS], 3)

    def test_small_messages_fan_out_plain(self):
        subs = self.subs(10, "/ws/ps", [PMD], "tiny")
        before = self.metrics()
        subs[0].send(frame(OP_TEXT, wordy(127)))
        for ws in subs:
            self.assertEqual(ws.recv_wire_message(), (OP_TEXT, False, wordy(127)))
        self.assertEqual(moved(before, self.metrics())[COMPRESSIONS], 0)


class FanOutWorkersTest(FanOutTest):
    """The same with the subscribers spread over four workers: a publish is
    still compressed once per setting for the whole process (the workers
    share one set of frames per message), and every subscriber with the
    same setting gets the same bytes."""
    extra = "workers: 4"

    def subs(self, n, path, extensions, topic):
        subs = super().subs(n, path, extensions, topic)
        if n >= 20:
            # the kernel spreads connections over the workers' sockets: with
            # 20 or more, several workers have some (all on one: 4^-19)
            on = [k for k, v in self.metrics().items()
                  if k.startswith("gatehouse_worker_connections_open{") and
                  'kind="websocket"' in k and v > 0]
            self.assertGreater(len(on), 1, "every subscriber on one worker")
        return subs


if __name__ == "__main__":
    ghtest.main()
