"""allow: on a route: only clients in its CIDR ranges get through, others
get 403 (counted in gatehouse_route_denied_total); the client is the real
one, so behind a trusted balancer the PROXY source decides, not the
balancer's address; [] refuses everyone; routes without allow: are open."""
import ghtest
import wsutil


def get(port, path, source=None, proxy_src=None):
    pre = b""
    if proxy_src is not None:
        pre = f"PROXY TCP4 {proxy_src} 127.0.0.1 40000 80\r\n".encode()
    resp = ghtest.raw_request(port, pre + f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                          "Connection: close\r\n\r\n".encode(), source=source)
    return int(resp.split(b" ", 2)[1])


class AllowTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.port = ghtest.free_port()
        self.pport = ghtest.free_port()
        while self.pport == self.port:
            self.pport = ghtest.free_port()
        self.gh = self.start(wsutil.ws_config(self.port, self.tmp, """
  - match: { path: /metrics }
    allow: [127.0.0.1, 127.0.0.8/30]
    metrics: {}
  - match: { path: /closed }
    allow: []
    health: {}
  - match: { path: /healthz }
    health: {}
""").replace(f"""listeners:
  - listen: 127.0.0.1:{self.port}
""", f"""listeners:
  - listen: 127.0.0.1:{self.port}
  - listen: 127.0.0.1:{self.pport}
    proxy_protocol: v1
    trusted_proxies: [127.0.0.1/32]
"""))

    def denied(self):
        return ghtest.scrape(self.port)["gatehouse_route_denied_total"]

    def test_only_listed_clients_reach_the_route(self):
        self.assertEqual(get(self.port, "/metrics"), 200)                         # 127.0.0.1
        self.assertEqual(get(self.port, "/metrics", source=("127.0.0.9", 0)), 200)
        self.assertEqual(get(self.port, "/metrics", source=("127.0.0.12", 0)), 403)
        self.assertEqual(get(self.port, "/metrics", source=("127.0.0.2", 0)), 403)
        self.assertEqual(get(self.port, "/healthz", source=("127.0.0.2", 0)), 200)  # open
        self.assertEqual(get(self.port, "/closed"), 403)                          # []
        self.assertEqual(self.denied(), 3)

    def test_behind_a_balancer_the_proxy_source_decides(self):
        # the balancer (127.0.0.1) is listed, but the client it speaks for is not
        self.assertEqual(get(self.pport, "/metrics", proxy_src="198.51.100.7"), 403)
        self.assertEqual(get(self.pport, "/metrics", proxy_src="127.0.0.10"), 200)
        self.assertEqual(self.denied(), 1)


if __name__ == "__main__":
    ghtest.main()
