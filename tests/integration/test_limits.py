"""Per-client limits (limits:): open connections per client, requests and
upgrades per client as token buckets answered with 429 and Retry-After,
clients told apart by their PROXY source behind a trusted balancer, and
the balancer's own health checks never limited. Counted in
gatehouse_client_limited_total{limit}."""
import socket
import time

import ghtest
import wsutil
from wsutil import RawWS


def get(port, path="/", source=None, extra=""):
    return ghtest.raw_request(port, (f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}"
                                     "Connection: close\r\n\r\n").encode(), source=source)


def status(resp):
    return int(resp.split(b" ", 2)[1])


def proxy_v1(src):
    return f"PROXY TCP4 {src} 127.0.0.1 40000 80\r\n".encode()


class LimitsTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.port = ghtest.free_port()
        self.pport = ghtest.free_port()
        while self.pport == self.port:
            self.pport = ghtest.free_port()
        self.write("www/index.html", "hello\n")
        self.gh = self.start(wsutil.ws_config(self.port, self.tmp, f"""
  - match: {{ path: /ws/echo }}
    websocket: {{ plugin: echo }}
  - match: {{ path: /metrics }}
    metrics: {{}}
  - match: {{ prefix: / }}
    static: {{ root: {self.tmp}/www }}
""", extra=f"""
limits:
  connections_per_client: 2
  requests_per_client: {{ rate: 2/s, burst: 4 }}
  upgrades_per_client: {{ rate: 1/m, burst: 1 }}
""").replace(f"""listeners:
  - listen: 127.0.0.1:{self.port}
""", f"""listeners:
  - listen: 127.0.0.1:{self.port}
    trusted_proxies: []
  - listen: 127.0.0.1:{self.pport}
    proxy_protocol: optional
    trusted_proxies: [127.0.0.1/32]
"""))

    def limited(self, kind):
        # scraped through the balancer's listener: the balancer is never limited
        return ghtest.scrape(self.pport)[f'gatehouse_client_limited_total{{limit="{kind}"}}']

    def keepalive(self, source):
        """A connection that has been served one request and stays open."""
        s = socket.create_connection(("127.0.0.1", self.port), source_address=(source, 0))
        self.addCleanup(s.close)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while not got.endswith(b"hello\n"):
            chunk = s.recv(4096)
            self.assertTrue(chunk, "closed before its answer")
            got += chunk
        self.assertEqual(status(got), 200)
        return s

    def test_a_third_connection_of_one_client_is_closed_unread(self):
        a = self.keepalive("127.0.0.2")
        self.keepalive("127.0.0.2")
        # another client is not affected
        self.assertEqual(status(get(self.port, source=("127.0.0.3", 0))), 200)
        self.assertEqual(get(self.port, source=("127.0.0.2", 0)), b"")   # closed, no answer
        self.gh.wait_log("over limits.connections_per_client: connection closed")
        self.assertEqual(self.limited("connections"), 1)
        a.close()
        ghtest.wait_for(lambda: get(self.port, source=("127.0.0.2", 0)).startswith(b"HTTP/1.1 200"),
                        what="a connection once one closed")

    def test_requests_past_the_burst_get_429_with_retry_after(self):
        src = ("127.0.0.4", 0)
        got = [get(self.port, source=src) for _ in range(6)]
        codes = [status(r) for r in got]
        self.assertEqual(codes[:4], [200] * 4, codes)
        self.assertIn(429, codes[4:])
        refused = got[codes.index(429)]
        self.assertIn(b"\r\nRetry-After: 1\r\n", refused)
        self.assertGreaterEqual(self.limited("requests"), 1)
        # 2/s: a token is back within half a second (a 429 takes none)
        start = time.monotonic()
        ghtest.wait_for(lambda: get(self.port, source=src).startswith(b"HTTP/1.1 200"),
                        timeout=3, what="a token back")
        self.assertLess(time.monotonic() - start, 1.5)

    def test_upgrades_have_their_own_bucket(self):
        first = RawWS(self.port, "/ws/echo", source="127.0.0.5")
        self.addCleanup(first.close)
        self.assertEqual(first.status, 101)
        second = RawWS(self.port, "/ws/echo", source="127.0.0.5")
        self.addCleanup(second.close)
        self.assertEqual(second.status, 429)
        self.assertEqual(second.headers["retry-after"], "60")
        self.assertEqual(self.limited("upgrades"), 1)
        second.close()          # (two connections are all this client may hold)
        # plain requests of that client still go through (once the server
        # has seen the second connection go)
        ghtest.wait_for(lambda: get(self.port, source=("127.0.0.5", 0)).startswith(b"HTTP/1.1 200"),
                        what="a plain request of the same client")

    def test_clients_behind_a_balancer_are_told_apart_and_its_checks_pass(self):
        def via(src):
            return ghtest.raw_request(self.pport, proxy_v1(src) +
                                      b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        a = [status(via("198.51.100.1")) for _ in range(6)]
        self.assertIn(429, a)
        self.assertEqual(status(via("198.51.100.2")), 200)      # another client
        # the balancer's own health checks: no PROXY header, never limited
        checks = [status(get(self.pport)) for _ in range(12)]
        self.assertEqual(checks, [200] * 12)


if __name__ == "__main__":
    ghtest.main()
