"""Memory of fan-out to slow subscribers: what one queued delivery costs
while it waits, and that the process gives the memory back once the queues
are gone instead of sitting at its high-water mark.

Subscribers that never read (a small receive buffer) make every published
message queue in gatehouse once the kernel's socket buffers are full. Each
test bounds its burst in count and bytes; RSS is read from /proc."""
import os
import socket

import ghtest
import wsutil
from wsutil import OP_TEXT, RawWS, frame

ROUTES = """
  - match: { path: /ws/ps }
    websocket: { plugin: pubsub, send_backlog: 64MiB, compression: off, idle_timeout: 0,
                 ping_interval: 0 }
  - match: { path: /ws/echo }
    websocket: { plugin: echo, idle_timeout: 0, ping_interval: 0 }
  - match: { path: /metrics }
    metrics: {}
"""

SUBS = 10


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class WsMemoryTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        if "TSAN_OPTIONS" in os.environ:
            # ThreadSanitizer keeps shadow memory for every byte: RSS says
            # nothing of the daemon's own (the dev and asan runs test it)
            self.skipTest("ThreadSanitizer's shadow memory: RSS says nothing here")
        self.port = ghtest.free_port()
        # one worker: each worker frames a topic message once for its own
        # subscribers, and what is measured here is one queue's cost
        self.gh = self.start(wsutil.ws_config(self.port, self.tmp, ROUTES, extra="workers: 1"),
                             env=ghtest.rss_env())
        self.pid = self.gh.proc.pid

    def burst(self, msgs, payload):
        """SUBS subscribers that do not read, and a publisher that sends msgs
        messages of payload bytes and reads its own copy of each back (it is
        subscribed too), so that when this returns every delivery has been
        queued."""
        subs = [RawWS(self.port, "/ws/ps?topic=t", rcvbuf=4096) for _ in range(SUBS)]
        pub = RawWS(self.port, "/ws/ps?topic=t")
        for s in subs + [pub]:
            self.assertEqual(s.status, 101)
        before = rss_kib(self.pid)
        out = frame(OP_TEXT, b"m" * payload) * 1000
        each, have = 1000 * ((2 if payload < 126 else 4) + payload), len(pub.buf)
        pub.sock.settimeout(30)
        for i in range(msgs // 1000):
            pub.send(out)
            # its own copies back, batch by batch: gatehouse stops reading a
            # connection whose output is not being read
            while have < (i + 1) * each:
                chunk = pub.sock.recv(1 << 20)
                self.assertTrue(chunk, "the publisher was disconnected")
                have += len(chunk)
        return subs, pub, before

    def test_a_queued_small_delivery_costs_less_than_its_frame(self):
        subs, pub, before = self.burst(100000, 100)     # chat-sized: 102-byte frames
        grown = rss_kib(self.pid) - before
        frame_bytes = SUBS * 100000 * 102 // 1024
        # a subscriber whose socket is full holds 16 bytes per message and
        # its share of the frame, made once: about 30 bytes a delivery here,
        # where a copy per subscriber would be the frames' bytes, and a
        # libevent reference (a 1 KiB chain each) ten times that
        self.assertLess(grown, frame_bytes // 2,
                        f"RSS grew {grown} KiB for {frame_bytes} KiB of queued frames")
        for s in subs + [pub]:
            s.close()

    def test_a_queued_large_delivery_shares_its_frame(self):
        subs, pub, before = self.burst(20000, 1000)     # 1,004-byte frames, 10 subscribers
        grown = rss_kib(self.pid) - before
        one_copy = 20000 * 1004 // 1024
        # the frame is made once and each subscriber's queue points into it
        # (16 bytes a delivery); a copy per subscriber, or a libevent
        # reference (a 1 KiB chain each), would be ten times one copy
        self.assertLess(grown, one_copy * 2,
                        f"RSS grew {grown} KiB for {one_copy} KiB of frames shared by {SUBS}")
        for s in subs + [pub]:
            s.close()

    def test_an_idle_websocket_costs_less_than_a_kib(self):
        if "ASAN_OPTIONS" in os.environ:
            self.skipTest("ASan's allocator pads every allocation: RSS says nothing here")
        # the growth from the 500th connection to the 3,500th: what one more
        # idle connection costs, without the process's fixed costs (code
        # paged in, first arrays) that the first ones pay
        first = [RawWS(self.port, "/ws/echo") for _ in range(500)]
        base = rss_kib(self.pid)
        more = [RawWS(self.port, "/ws/echo") for _ in range(3000)]
        self.assertTrue(all(w.status == 101 for w in first + more))
        per_conn = (rss_kib(self.pid) - base) * 1024 / len(more)
        # a plain-socket WebSocket keeps its connection, one event and its
        # own state; with a bufferevent and two evbuffers it was 1.9 KiB
        self.assertLess(per_conn, 1024, f"{per_conn:.0f} bytes per idle WebSocket")
        for w in first + more:
            w.close()

    def test_rss_comes_back_down_after_the_queues_are_gone(self):
        if "ASAN_OPTIONS" in os.environ:
            # what is tested is glibc malloc keeping freed heap and the
            # daemon's malloc_trim giving it back; under ASan malloc is
            # ASan's allocator, which does neither (the dev build's run of
            # the suite tests it)
            self.skipTest("ASan's allocator, not glibc's: nothing to trim")
        # frames over 128 bytes are queued by reference, the shared frames
        # interleaved with the queues' own arrays and copies: freed, that
        # heap stays with malloc unless the daemon gives it back
        subs, pub, before = self.burst(48000, 1000)
        peak = rss_kib(self.pid)
        self.assertGreater(peak - before, 32 * 1024, "the burst did not queue enough to tell")
        for s in subs:
            s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            s.close()           # a reset: gatehouse drops their queues at once
        # freed memory is given back within the daemon's trim interval (5 s)
        ghtest.wait_for(lambda: rss_kib(self.pid) < before + 16 * 1024, timeout=20,
                        what=f"RSS back near {before} KiB (peak {peak} KiB)")
        pub.close()


if __name__ == "__main__":
    ghtest.main()
