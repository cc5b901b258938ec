"""SIGHUP reload: new routes and listeners for new connections, established
connections keep theirs, a bad config is refused and the old one kept."""
import http.client
import os
import signal
import socket
import time

import ghtest
from ghtest import raw_request


def config(tmp, ports, root, extra_route=""):
    listeners = "".join(f"  - listen: 127.0.0.1:{p}\n" for p in ports)
    return f"""
access_log: {tmp}/access.log
listeners:
{listeners}
routes:
  - match: {{ path: /healthz }}
    health: {{}}
{extra_route}
  - match: {{ prefix: / }}
    static: {{ root: {root} }}
"""


def get(port, path="/", conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, body


class ReloadTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.write("one/index.html", "one\n")
        self.write("two/index.html", "two\n")

    def test_new_routes_and_listeners_apply_to_new_connections_only(self):
        p1, p2 = ghtest.free_port(), ghtest.free_port()
        g = self.start(config(self.tmp, [p1], "one"))
        kept = http.client.HTTPConnection("127.0.0.1", p1, timeout=5)
        self.assertEqual(get(p1, conn=kept), (200, b"one\n"))
        g.rewrite(config(self.tmp, [p1, p2], "two",
                            extra_route="  - match: { path: /metrics }\n    metrics: {}\n"))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        self.assertEqual(get(p1), (200, b"two\n"))
        self.assertEqual(get(p2), (200, b"two\n"))
        self.assertEqual(get(p1, "/metrics")[0], 200)
        # the connection that was open keeps the routes it started with
        self.assertEqual(get(p1, conn=kept), (200, b"one\n"))
        kept.close()
        # and the listener that goes away stops accepting
        g.rewrite(config(self.tmp, [p2], "two"))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded", count=2)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", p1), timeout=2).recv(1)
        self.assertEqual(get(p2), (200, b"two\n"))
        self.assertEqual(g.stop(), 0)

    def test_a_bad_config_is_refused_and_the_old_one_keeps_serving(self):
        p1 = ghtest.free_port()
        g = self.start(config(self.tmp, [p1], "one"))
        g.rewrite("listeners:\n  - listen: 127.0.0.1:99999\nroutes: []\n")
        g.send_signal(signal.SIGHUP)
        g.wait_log("reload failed")
        self.assertRegex(g.log(), "reload refused: " + g.conf.replace(".", r"\.") + r":2:\d+: .*99999")
        self.assertEqual(get(p1), (200, b"one\n"))
        # a config whose new listener cannot be bound is refused as a whole
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        g.rewrite(config(self.tmp, [p1, busy.getsockname()[1]], "two"))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reload failed", count=2)
        self.assertEqual(get(p1), (200, b"one\n"))
        # and a good one after that works
        g.rewrite(config(self.tmp, [p1], "two"))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        self.assertEqual(get(p1), (200, b"two\n"))

    def test_metrics_tell_the_generation_and_the_last_reload(self):
        p1 = ghtest.free_port()
        metrics = "  - match: { path: /metrics }\n    metrics: {}\n"
        g = self.start(config(self.tmp, [p1], "one", extra_route=metrics))

        def reading():
            m = ghtest.scrape(p1)
            return (m["gatehouse_config_generation"], m["gatehouse_config_last_reload_successful"],
                    m["gatehouse_config_last_reload_timestamp_seconds"])
        self.assertEqual(reading(), (1, 1, 0))
        before = time.time()
        with open(g.conf, "w") as f:
            f.write("listeners:\n  - listen: 127.0.0.1:99999\nroutes: []\n")
        g.send_signal(signal.SIGHUP)
        g.wait_log("reload failed")
        gen, ok, when = reading()
        self.assertEqual((gen, ok), (1, 0))
        self.assertGreaterEqual(when, before - 0.01)
        self.assertLessEqual(when, time.time() + 0.01)
        with open(g.conf, "w") as f:
            f.write(config(self.tmp, [p1], "two", extra_route=metrics))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        gen, ok, later = reading()
        self.assertEqual((gen, ok), (2, 1))
        self.assertGreaterEqual(later, when)

    def test_a_kept_alive_scraper_sees_the_upstreams_serving_after_a_reload(self):
        # Prometheus keeps its connection open between scrapes: after a
        # reload it must read the pools serving now, not the ones its
        # connection started with (whose counters no longer move)
        p1 = ghtest.free_port()

        def conf(name):
            return (config(self.tmp, [p1], "one", extra_route="  - match: { path: /metrics }\n"
                                                               "    metrics: {}\n")
                    + f"upstreams:\n  {name}:\n    servers: [127.0.0.1:9]\n")
        g = self.start(conf("first"))
        scraper = http.client.HTTPConnection("127.0.0.1", p1, timeout=5)
        self.addCleanup(scraper.close)
        self.assertIn(b'upstream="first"', get(p1, "/metrics", conn=scraper)[1])
        with open(g.conf, "w") as f:
            f.write(conf("second"))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        text = get(p1, "/metrics", conn=scraper)[1]
        self.assertIn(b'upstream="second"', text)
        self.assertNotIn(b'upstream="first"', text)

    def test_reload_reads_new_certificates_for_new_connections(self):
        import ssl
        import subprocess
        p1 = ghtest.free_port()
        key, crt = self.path("key.pem"), self.path("cert.pem")

        def make(cn):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                            "-out", crt, "-days", "2", "-subj", "/CN=" + cn],
                           check=True, capture_output=True)

        def served_cn():
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with socket.create_connection(("127.0.0.1", p1), timeout=5) as s:
                with ctx.wrap_socket(s) as t:
                    der = t.getpeercert(binary_form=True)
            pem = ssl.DER_cert_to_PEM_cert(der)
            out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem,
                                 capture_output=True, text=True, check=True)
            return out.stdout.strip()

        make("first.example")
        g = self.start(f"listeners:\n  - listen: 127.0.0.1:{p1}\n"
                       f"    tls: {{ cert: {crt}, key: {key} }}\n"
                       "routes:\n  - match: { path: /healthz }\n    health: {}\n")
        self.assertIn("first.example", served_cn())
        make("second.example")
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        self.assertIn("second.example", served_cn())

    def test_reload_reopens_a_rotated_access_log(self):
        p1 = ghtest.free_port()
        g = self.start(config(self.tmp, [p1], "one"))
        log = self.path("access.log")
        get(p1)
        ghtest.wait_lines(log, 1)
        os.rename(log, log + ".1")
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        get(p1, "/healthz")
        lines = ghtest.wait_lines(log, 1)
        self.assertIn("/healthz", lines[0])


if __name__ == "__main__":
    ghtest.main()
