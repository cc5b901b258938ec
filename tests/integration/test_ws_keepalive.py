"""Keep-alive and timeouts: server pings keep an idle connection open past
idle_timeout when the client answers them; a peer that never answers is
dropped after ping_interval + pong_timeout; without pings idle_timeout
closes with 1001; an unanswered close is ended by close_timeout; and a
client that stops reading is dropped once its socket has been full for
http.send_timeout."""
import asyncio
import time

import websockets

import ghtest
import wsutil
from wsutil import OP_CLOSE, OP_PING, OP_TEXT, RawWS, close_frame, frame

ROUTES = """
  - match: { path: /ws/ping }
    websocket: { plugin: echo, ping_interval: 300ms, pong_timeout: 500ms, idle_timeout: 1s }
  - match: { path: /ws/idle }
    websocket: { plugin: echo, ping_interval: 0, idle_timeout: 500ms, close_timeout: 1s }
  - match: { path: /ws/ps }
    websocket: { plugin: pubsub, ping_interval: 0, idle_timeout: 0, send_backlog: 64MiB,
                 compression: off }
"""
HTTP = """
http:
  send_timeout: 1s
"""


class WsKeepaliveTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.port = ghtest.free_port()
        self.gh = self.start(wsutil.ws_config(self.port, self.tmp, ROUTES, HTTP))

    def test_a_subscriber_that_stops_reading_is_dropped_after_send_timeout(self):
        # a full socket (the subscriber never reads) and a backlog far from
        # its limit: only the send timeout can end it, and only it
        sub = RawWS(self.port, "/ws/ps?topic=t", rcvbuf=4096)
        self.addCleanup(sub.close)
        pub = RawWS(self.port, "/ws/ps?topic=t")
        self.addCleanup(pub.close)
        self.assertEqual((sub.status, pub.status), (101, 101))
        # 10 MB to each subscriber: more than the kernel's socket buffers
        # hold; the publisher reads its own copies back as they come
        out = frame(OP_TEXT, b"x" * 60000) * 170
        # from before the send: the subscriber's socket may fill (and its
        # timer start) while the publisher is still writing, above all
        # when they are on different workers
        start = time.monotonic()
        pub.send(out)
        want, have = 170 * (4 + 60000), len(pub.buf)     # unmasked server frames
        pub.sock.settimeout(10)
        while have < want:
            chunk = pub.sock.recv(1 << 20)
            self.assertTrue(chunk, "the publisher was disconnected")
            have += len(chunk)
        self.gh.wait_log("websocket send timeout", timeout=10)
        elapsed = time.monotonic() - start
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 5.0)
        self.assertEqual(self.gh.log().count("websocket send timeout"), 1,
                         "the publisher, which reads, was dropped too")
        self.assertIsNotNone(wsutil.wait_eof(sub.sock, 10), "the subscriber was not closed")

    def test_answered_pings_keep_a_connection_alive_past_idle_timeout(self):
        async def go():
            # the client's own pings are off; it answers the server's
            async with websockets.connect(f"ws://127.0.0.1:{self.port}/ws/ping",
                                          ping_interval=None) as ws:
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.recv(), 2.5)     # 2.5 x idle_timeout, silent
                await ws.send("still open")
                return await ws.recv()
        self.assertEqual(asyncio.run(go()), "still open")

    def test_server_pings_every_ping_interval(self):
        ws = RawWS(self.port, "/ws/ping")
        self.addCleanup(ws.close)
        start = time.monotonic()
        for _ in range(3):
            fin, op, data = ws.recv_frame()
            self.assertEqual(op, OP_PING)
            ws.send(frame(10, data))        # pong
        elapsed = time.monotonic() - start
        self.assertGreater(elapsed, 0.7)
        self.assertLess(elapsed, 2.0)

    def test_peer_that_never_answers_pings_is_dropped(self):
        ws = RawWS(self.port, "/ws/ping")
        self.addCleanup(ws.close)
        t = wsutil.wait_eof(ws.sock, 5)     # reads (and drops) pings, never pongs
        self.assertIsNotNone(t, "a dead peer was not dropped")
        self.assertGreater(t, 0.6)          # ping at 300ms + pong_timeout 500ms
        self.assertLess(t, 2.5)
        self.gh.wait_log("no pong within 500ms")

    def test_idle_connection_without_pings_is_closed_with_1001(self):
        ws = RawWS(self.port, "/ws/idle")
        self.addCleanup(ws.close)
        start = time.monotonic()
        code, reason = ws.expect_close()
        self.assertEqual(code, 1001)
        self.assertGreater(time.monotonic() - start, 0.4)
        ws.send(close_frame(1001))          # answer: the server then closes TCP
        self.assertTrue(ws.at_eof(1.0))

    def test_traffic_resets_the_idle_timeout(self):
        ws = RawWS(self.port, "/ws/idle")
        self.addCleanup(ws.close)
        for i in range(6):                  # 6 x 200ms = 1.2s > idle_timeout
            time.sleep(0.2)
            ws.send(frame(OP_TEXT, f"m{i}"))
            self.assertEqual(ws.recv_message(), (OP_TEXT, f"m{i}".encode()))

    def test_unanswered_close_is_ended_by_close_timeout(self):
        ws = RawWS(self.port, "/ws/idle")
        self.addCleanup(ws.close)
        fin, op, data = ws.recv_frame()
        self.assertEqual(op, OP_CLOSE)
        t = wsutil.wait_eof(ws.sock, 5)     # never answer the close
        self.assertIsNotNone(t)
        self.assertGreater(t, 0.8)          # close_timeout 1s
        self.assertLess(t, 2.5)


if __name__ == "__main__":
    ghtest.main()
