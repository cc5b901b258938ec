"""Topics through the pubsub plugin: fan-out delivers each message exactly
once to every subscriber, in order, text as text and binary as binary;
topics do not mix; a slow consumer is closed with 1008 while the others
keep receiving; and SIGTERM closes WebSocket clients with 1001."""
import asyncio
import signal
import threading
import time

import websockets

import ghtest
import wsutil
from wsutil import OP_BINARY, OP_TEXT, RawWS, frame

ROUTES = """
  - match: { path: /ws/ps }
    websocket: { plugin: pubsub, send_backlog: 512KiB, max_message: 1MiB, close_timeout: 3s }
  - match: { path: /ws/echo }
    websocket: { plugin: echo, close_timeout: 2s }
"""


class WsTopicsTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.port = ghtest.free_port()
        # the slow-consumer test wants its "fast" reader (a Python thread)
        # to keep within send_backlog: with one worker the publisher's loop
        # also writes to it, which paces the publisher; a subscriber on
        # another worker does not slow a publisher down (core/cluster/hub.h)
        # and could be dropped as slow too. Cross-worker fan-out is tested
        # in test_workers.py.
        extra = "workers: 1" if self._testMethodName.startswith("test_slow_consumer") else ""
        self.gh = self.start(wsutil.ws_config(self.port, self.tmp, ROUTES, extra))

    def sub(self, topic="room", **kw):
        ws = RawWS(self.port, f"/ws/ps?topic={topic}", **kw)
        self.assertEqual(ws.status, 101)
        self.addCleanup(ws.close)
        return ws

    def test_fan_out_delivers_each_message_once_to_every_subscriber(self):
        subs = [self.sub() for _ in range(30)]
        other = self.sub("elsewhere")
        pub = subs[0]
        msgs = [(OP_TEXT, f"message {i} ✓".encode()) if i % 2 == 0 else
                (OP_BINARY, bytes([i]) * (i * 37)) for i in range(60)]
        for op, data in msgs:
            pub.send(frame(op, data))
        for s in subs:
            got = [s.recv_message() for _ in msgs]
            self.assertEqual(got, msgs)
        # exactly once: nothing more arrives
        pub.send(frame(OP_TEXT, "end"))
        for s in subs:
            self.assertEqual(s.recv_message(), (OP_TEXT, b"end"))
        other.send(frame(OP_TEXT, "only mine"))
        self.assertEqual(other.recv_message(), (OP_TEXT, b"only mine"))

    def test_large_messages_fan_out(self):
        subs = [self.sub("big") for _ in range(5)]
        data = bytes(range(256)) * 1024         # 256 KiB, over send_backlog on its own
        subs[0].send(frame(OP_BINARY, data))
        for s in subs:
            self.assertEqual(s.recv_message(), (OP_BINARY, data))

    def test_slow_consumer_is_closed_with_1008_and_others_keep_receiving(self):
        slow = self.sub("flood", rcvbuf=4096)
        fast = self.sub("flood")
        pub = self.sub("flood")
        payload = b"z" * 16384
        N = 300                                 # 4.8 MB: far past what the kernel buffers hold
        received = []

        def drain(ws):
            while len(received) < N:
                op, data = ws.recv_message()
                received.append(data)
        readers = [threading.Thread(target=drain, args=(fast,), daemon=True)]
        pub_count = [0]

        def drain_pub():
            for _ in range(N):
                pub.recv_message()
                pub_count[0] += 1
        readers.append(threading.Thread(target=drain_pub, daemon=True))
        for t in readers:
            t.start()
        for i in range(N):
            pub.send(frame(OP_BINARY, payload))
        for t in readers:
            t.join(30)
        self.assertEqual(len(received), N)
        self.assertEqual(pub_count[0], N)
        self.gh.wait_log("slow consumer")
        # the slow one now reads: what got queued before, then 1008, then EOF
        code, reason = slow.expect_close()
        self.assertEqual(code, 1008)
        self.assertEqual(reason, b"slow consumer")
        self.assertTrue(slow.at_eof(5))

    def test_sigterm_closes_websocket_clients_with_1001_and_exits_0(self):
        raw = RawWS(self.port, "/ws/echo")
        self.addCleanup(raw.close)

        async def client(ready, result):
            async with websockets.connect(f"ws://127.0.0.1:{self.port}/ws/echo",
                                          ping_interval=None) as ws:
                await ws.send("hi")
                await ws.recv()
                ready.set()
                try:
                    await ws.recv()
                except websockets.exceptions.ConnectionClosed:
                    result.append(ws.close_code)

        ready = threading.Event()
        result = []
        t = threading.Thread(target=lambda: asyncio.run(client(ready, result)), daemon=True)
        t.start()
        self.assertTrue(ready.wait(10))
        start = time.monotonic()
        self.gh.send_signal(signal.SIGTERM)
        code, _ = raw.expect_close()        # the raw client never answers
        self.assertEqual(code, 1001)
        t.join(10)
        self.assertEqual(result, [1001])
        self.assertEqual(self.gh.stop(timeout=10), 0)
        self.assertLess(time.monotonic() - start, 5)    # close_timeout 2s, not drain_timeout


if __name__ == "__main__":
    ghtest.main()
