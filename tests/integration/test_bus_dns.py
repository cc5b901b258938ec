"""The Redis bus by host name (issue: ElastiCache's endpoint moves on
failover). A DNS server of the test's own (dnsstub.py) answers the name
with one Redis (127.0.0.2); that Redis is killed and the name now answers
with another (127.0.0.3): both gatehouse instances follow it, and a room
spread over them works again within the reconnect backoff. A resolver that
stops answering is logged and retried while the loop keeps serving."""
import time
import unittest

import ghtest
from dnsstub import DnsStub
from test_bus import REDIS_SERVER, BusTest, Redis
from wsutil import OP_TEXT, frame


@unittest.skipIf(REDIS_SERVER is None, "redis-server is not installed (Debian: redis-server)")
class BusDnsTest(ghtest.TestCase):
    # BusTest's helpers, without its tests
    instance = BusTest.instance
    stop_clean = BusTest.stop_clean
    member = BusTest.member
    metrics = BusTest.metrics
    try_recv = staticmethod(BusTest.try_recv)
    read_until = BusTest.read_until
    wait_crossing = BusTest.wait_crossing

    def setUp(self):
        super().setUp()
        self.n = 0
        self.redis_port = ghtest.free_port()
        self.dns = DnsStub("redis.test")
        self.addCleanup(self.dns.close)
        self.a = Redis(self.redis_port, host="127.0.0.2")
        self.b = Redis(self.redis_port, host="127.0.0.3")
        self.addCleanup(self.a.kill)
        self.addCleanup(self.b.kill)

    def connected(self, g):
        return self.metrics(g).get("gatehouse_bus_connected") == 1

    def subscribed_on(self, r):
        try:
            return len(r.command("PUBSUB", "CHANNELS")) >= 2     # two instances' reply channels
        except (OSError, EOFError, RuntimeError):
            return False

    def test_a_name_whose_address_moves_is_followed(self):
        self.dns.answer = "127.0.0.2"
        self.a.start()
        url = "redis://redis.test:%d" % self.redis_port
        extra = ', resolver: "127.0.0.1:%d"' % self.dns.port
        g1 = self.instance(url, extra_bus=extra)
        g2 = self.instance(url, extra_bus=extra)
        for g in (g1, g2):
            ghtest.wait_for(lambda g=g: self.connected(g), 15.0, "the bus connected")
            self.assertIn("bus: connecting to redis redis.test:%d (127.0.0.2)" % self.redis_port,
                          g.log())
        self.assertTrue(self.subscribed_on(self.a))
        m1, m2 = self.member(g1), self.member(g2)
        self.wait_crossing(m1, [m2], [m1, m2])

        # failover: the name moves, the old server dies
        self.dns.answer = "127.0.0.3"
        self.b.start()
        self.a.kill()
        for g in (g1, g2):
            g.wait_log("bus: lost redis redis.test:%d" % self.redis_port, timeout=10)
        ghtest.wait_for(lambda: self.subscribed_on(self.b), 15.0,
                        "both instances subscribed on the new address")
        for g in (g1, g2):
            ghtest.wait_for(lambda g=g: self.connected(g), 15.0, "the bus connected again")
            self.assertIn("bus: connecting to redis redis.test:%d (127.0.0.3)" % self.redis_port,
                          g.log())
        # the room spans both instances again: within the backoff (5 s at most)
        self.wait_crossing(m2, [m1], [m1, m2], timeout=10.0)

    def test_a_silent_resolver_is_retried_and_the_loop_keeps_serving(self):
        self.dns.answer = "127.0.0.2"
        self.a.start()
        url = "redis://redis.test:%d" % self.redis_port
        # one worker: the bus's own loop (worker 0) is the one that must
        # keep serving; with several, most requests would land elsewhere
        g = self.instance(url, extra_bus=', resolver: "127.0.0.1:%d"' % self.dns.port,
                          extra_top="workers: 1\n")
        ghtest.wait_for(lambda: self.connected(g), 15.0, "the bus connected")
        self.dns.silent = True
        before = self.dns.queries
        self.a.kill()
        g.wait_log("bus: lost redis", timeout=10)
        # lookups go unanswered; meanwhile every request is served at once
        deadline = time.monotonic() + 4.0
        worst = 0.0
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            body = ghtest.raw_request(g.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                                              b"Connection: close\r\n\r\n")
            worst = max(worst, time.monotonic() - t0)
            self.assertIn(b"200 OK", body.split(b"\r\n", 1)[0])
        self.assertLess(worst, 0.05, "a request waited %.0f ms" % (worst * 1000))
        self.assertGreater(self.dns.queries, before, "no lookup was tried")
        g.wait_log("resolving redis.test:", timeout=10)
        # the resolver answers again, Redis is back: connected again
        self.dns.silent = False
        self.a.start()
        ghtest.wait_for(lambda: self.connected(g), 15.0, "the bus connected again")


if __name__ == "__main__":
    ghtest.main()
