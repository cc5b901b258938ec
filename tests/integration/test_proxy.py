"""Listeners behind load balancers: PROXY v1/v2 through a real HAProxy (the
ELB and NLB stand-ins in contrib/haproxy), TLS termination, scheme detection
and the https redirect, optional mode, malformed and untrusted headers."""
import os
import re
import socket
import ssl
import struct
import subprocess
import time

import ghtest
from ghtest import raw_request

HAPROXY = "/usr/sbin/haproxy"


make_cert = ghtest.make_cert
wait_port = ghtest.wait_port


class Haproxy:
    def __init__(self, cfg, env, tmp):
        self.log = open(os.path.join(tmp, "haproxy.log"), "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", cfg], env={**os.environ, **env},
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "5", *args], capture_output=True)


ROUTES = """
routes:
  - match: { path: /healthz }
    health: {}
  - match: { scheme: http }
    redirect_https: { status: 301 }
  - match: { prefix: / }
    static: { root: www }
"""


class ProxyTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.write("www/index.html", "<p>behind the balancer</p>\n")
        self.crt, self.key, self.both = make_cert(self.tmp)

    def gatehouse(self, listeners, routes=ROUTES):
        cfg = f"access_log: {self.tmp}/access.log\nerror_log: stderr\nlog_level: debug\n" \
              f"listeners:\n{listeners}\n{routes}"
        return self.start(cfg)

    def haproxy(self, name, **ports):
        env = {"ELB_BIND": "127.0.0.1", "ELB_CERT": self.both}
        env.update({k: str(v) for k, v in ports.items()})
        h = Haproxy(os.path.join(ghtest.GH_SRC, "contrib", "haproxy", name), env, self.tmp)
        self.addCleanup(h.stop)
        for k, v in ports.items():
            if k.endswith("_PORT"):
                wait_port(v)
        return h

    def access_lines(self, n):
        return ghtest.wait_lines(os.path.join(self.tmp, "access.log"), n)

    # -- through the ELB stand-in (PROXY v1) -------------------------------

    def test_classic_elb_https_serves_the_page_with_the_real_client_address(self):
        gp, http_p, https_p = ghtest.free_port(), ghtest.free_port(), ghtest.free_port()
        self.gatehouse(f"  - listen: 127.0.0.1:{gp}\n    proxy_protocol: v1\n"
                       f"    https_ports: [{https_p}]\n")
        self.haproxy("elb-classic.cfg", ELB_HTTP_PORT=http_p, ELB_HTTPS_PORT=https_p,
                     GH_BACKEND=f"127.0.0.1:{gp}")
        out = curl("--cacert", self.crt, "--interface", "127.0.0.2",
                   f"https://localhost:{https_p}/")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, b"<p>behind the balancer</p>\n")
        line = self.access_lines(1)[0]
        # the socket peer is HAProxy at 127.0.0.1; the client bound 127.0.0.2
        self.assertTrue(line.startswith("127.0.0.2 - - ["), line)
        self.assertIn('"GET / HTTP/1.1" 200', line)

    def test_classic_elb_plain_http_is_redirected_to_https(self):
        gp, http_p, https_p = ghtest.free_port(), ghtest.free_port(), ghtest.free_port()
        self.gatehouse(f"  - listen: 127.0.0.1:{gp}\n    proxy_protocol: v1\n"
                       f"    https_ports: [{https_p}]\n")
        self.haproxy("elb-classic.cfg", ELB_HTTP_PORT=http_p, ELB_HTTPS_PORT=https_p,
                     GH_BACKEND=f"127.0.0.1:{gp}")
        out = curl("-D", "-", "-o", "/dev/null", "--interface", "127.0.0.3",
                   f"http://localhost:{http_p}/a/b?x=1&y=2")
        head = out.stdout.decode()
        self.assertIn("HTTP/1.1 301", head)
        self.assertIn("Location: https://localhost/a/b?x=1&y=2\r\n", head)
        # health is never redirected
        out = curl(f"http://127.0.0.1:{http_p}/healthz")
        self.assertEqual(out.stdout, b"ok\n")
        # a client-written X-Forwarded-Proto changes nothing behind a TCP listener
        out = curl("-D", "-", "-o", "/dev/null", "-H", "X-Forwarded-Proto: https",
                   f"http://localhost:{http_p}/")
        self.assertIn("HTTP/1.1 301", out.stdout.decode())
        self.assertTrue(self.access_lines(1)[0].startswith("127.0.0.3 "))

    # -- through the NLB stand-in (PROXY v2) ---------------------------------

    def test_nlb_v2_with_tls_tlv_tcp_and_passthrough(self):
        gp, tp = ghtest.free_port(), ghtest.free_port()
        http_p, https_p, pass_p = ghtest.free_port(), ghtest.free_port(), ghtest.free_port()
        self.gatehouse(f"  - listen: 127.0.0.1:{gp}\n    proxy_protocol: v2\n    https_ports: []\n"
                       f"  - listen: 127.0.0.1:{tp}\n    proxy_protocol: v2\n"
                       f"    tls: {{ cert: {self.crt}, key: {self.key} }}\n")
        self.haproxy("nlb.cfg", ELB_HTTP_PORT=http_p, ELB_HTTPS_PORT=https_p, ELB_PASS_PORT=pass_p,
                     GH_BACKEND=f"127.0.0.1:{gp}", GH_TLS_BACKEND=f"127.0.0.1:{tp}")
        # TLS at the NLB: https is known from the SSL TLV, not from a port
        out = curl("--cacert", self.crt, "--interface", "127.0.0.4", f"https://localhost:{https_p}/")
        self.assertEqual(out.stdout, b"<p>behind the balancer</p>\n", out.stderr)
        # plain TCP: redirected
        out = curl("-D", "-", "-o", "/dev/null", f"http://localhost:{http_p}/x")
        self.assertIn("Location: https://localhost/x", out.stdout.decode())
        # TLS passes through: gatehouse reads the cleartext header, then terminates TLS
        out = curl("--cacert", self.crt, "--interface", "127.0.0.5", "-v", f"https://localhost:{pass_p}/")
        self.assertEqual(out.stdout, b"<p>behind the balancer</p>\n", out.stderr)
        self.assertIn(b"ALPN: server accepted http/1.1", out.stderr)
        lines = self.access_lines(3)
        self.assertTrue(lines[0].startswith("127.0.0.4 "), lines[0])
        self.assertTrue(lines[2].startswith("127.0.0.5 "), lines[2])

    def test_nlb_health_check_local_header_is_served(self):
        gp = ghtest.free_port()
        self.gatehouse(f"  - listen: 127.0.0.1:{gp}\n    proxy_protocol: v2\n")
        nlb = bytes.fromhex("0d0a0d0a000d0a515549540a" "20" "11" "0054" "03" "0004" "bce5951f" "04" "004a") \
            + bytes(74)
        resp = raw_request(gp, nlb + b"GET /healthz HTTP/1.1\r\nHost: 10.0.0.1\r\nConnection: close\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 200"), resp[:60])
        self.assertTrue(resp.endswith(b"ok\n"))
        flipped = bytearray(nlb)
        flipped[50] ^= 1
        resp = raw_request(gp, bytes(flipped) + b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(resp, b"")

    # -- modes, refusals -------------------------------------------------------

    def test_optional_mode_serves_plain_requests_and_headers(self):
        gp = ghtest.free_port()
        self.gatehouse(f"  - listen: 127.0.0.1:{gp}\n    proxy_protocol: optional\n")
        resp = raw_request(gp, b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 200"))
        # a method that starts like the signature is still plain HTTP
        resp = raw_request(gp, b"PROPFIND / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 "), resp)
        resp = raw_request(gp, b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 443\r\n"
                               b"GET /index.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 200"))
        lines = self.access_lines(3)
        self.assertTrue(lines[2].startswith("192.0.2.7 "), lines[2])

    def test_optional_mode_plain_request_split_inside_the_signature(self):
        """Bytes that could still begin a header are taken from the socket
        while the rest is awaited; when the rest shows plain traffic they
        go back in front of the request. (They were refused by the frozen
        input of the new bufferevent, and the connection closed.)"""
        gp = ghtest.free_port()
        self.gatehouse(f"  - listen: 127.0.0.1:{gp}\n    proxy_protocol: optional\n")
        for first, rest in ((b"P", b"UT /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
                            (b"\r\n", b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")):
            with socket.create_connection(("127.0.0.1", gp), timeout=5) as s:
                s.sendall(first)
                # the scenario, not a wait: a client this slow sends the
                # rest after the first bytes were read and kept
                time.sleep(0.2)
                s.sendall(rest)
                resp = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    resp += chunk
            self.assertTrue(resp.startswith(b"HTTP/1.1 "), (first, resp))

    def test_malformed_headers_get_no_response_and_a_warning(self):
        gp = ghtest.free_port()
        g = self.gatehouse(f"  - listen: 127.0.0.1:{gp}\n    proxy_protocol: any\n")
        bad = [b"PROXY TCP4 ::1 ::1 1 2\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",      # family mismatch
               b"PROXY TCP4 010.0.0.1 10.0.0.2 1 2\r\nGET / HTTP/1.1\r\n\r\n",     # leading zero
               b"PROXY TCP4 " + b"1" * 100 + b"\r\n",                               # no CRLF in 107
               b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",                                # no header at all
               b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04" + b"\x01" * 4]             # v2, length < address block
        for b in bad:
            self.assertEqual(raw_request(gp, b), b"", b)
        g.wait_log("refused while reading PROXY header: v1_address")
        g.wait_log("refused while reading PROXY header: bad_signature")
        g.wait_log("refused while reading PROXY header: v2_length")
        self.assertIn("127.0.0.1: refused while reading PROXY header", g.log())

    def test_header_timeout_closes_the_connection(self):
        gp = ghtest.free_port()
        g = self.gatehouse(f"  - listen: 127.0.0.1:{gp}\n    proxy_protocol: v1\n    proxy_timeout: 300ms\n")
        t0 = time.monotonic()
        self.assertEqual(raw_request(gp, b"PROXY TCP4 1.2.3.4"), b"")
        self.assertLess(time.monotonic() - t0, 3)
        g.wait_log("refused while reading PROXY header: timeout")

    def test_untrusted_peer_header_is_refused_in_every_mode(self):
        ports = [ghtest.free_port() for _ in range(3)]
        g = self.gatehouse("".join(f"  - listen: 127.0.0.1:{p}\n    proxy_protocol: {m}\n"
                                   f"    trusted_proxies: [10.0.0.0/8]\n"
                                   for p, m in zip(ports, ("v1", "any", "optional"))))
        hdr = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 443\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
        for p in ports:
            self.assertEqual(raw_request(p, hdr), b"", p)
        g.wait_log("untrusted_peer", count=3)
        # optional still serves the untrusted peer's plain requests
        resp = raw_request(ports[2], b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 200"))

    # -- TLS at gatehouse, forwarded headers -----------------------------------

    def test_tls_termination_serves_https_and_never_redirects(self):
        tp = ghtest.free_port()
        self.gatehouse(f"  - listen: 127.0.0.1:{tp}\n"
                       f"    tls: {{ cert: {self.crt}, key: {self.key}, min_version: TLSv1.2 }}\n")
        out = curl("--cacert", self.crt, "-v", f"https://localhost:{tp}/")
        self.assertEqual(out.stdout, b"<p>behind the balancer</p>\n", out.stderr)
        self.assertIn(b"ALPN: server accepted http/1.1", out.stderr)
        out = curl("--cacert", self.crt, "--tls-max", "1.1", f"https://localhost:{tp}/")
        self.assertNotEqual(out.returncode, 0)          # below min_version
        # plain bytes on a TLS listener: no HTTP answer
        self.assertFalse(raw_request(tp, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").startswith(b"HTTP"))

    def test_forwarded_proto_and_for_believed_only_from_trusted_peers(self):
        trusted, untrusted = ghtest.free_port(), ghtest.free_port()
        self.gatehouse(f"  - listen: 127.0.0.1:{trusted}\n"
                       f"  - listen: 127.0.0.1:{untrusted}\n    trusted_proxies: [10.0.0.0/8]\n")
        req = b"GET / HTTP/1.1\r\nHost: app\r\nX-Forwarded-Proto: https\r\n" \
              b"X-Forwarded-For: 203.0.113.9, 198.51.100.4\r\nConnection: close\r\n\r\n"
        self.assertTrue(raw_request(trusted, req).startswith(b"HTTP/1.1 200"))
        self.assertTrue(raw_request(untrusted, req).startswith(b"HTTP/1.1 301"))
        lines = self.access_lines(2)
        self.assertTrue(lines[0].startswith("198.51.100.4 "), lines[0])
        self.assertTrue(lines[1].startswith("127.0.0.1 "), lines[1])

    def test_redirect_needs_a_host_and_keeps_a_configured_port(self):
        gp = ghtest.free_port()
        self.gatehouse(f"  - listen: 127.0.0.1:{gp}\n",
                       routes="routes:\n  - match: { prefix: / }\n    redirect_https: { status: 308, port: 8443 }\n")
        resp = raw_request(gp, b"GET /p?q HTTP/1.1\r\nHost: example.com:80\r\nConnection: close\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 308"))
        self.assertIn(b"Location: https://example.com:8443/p?q\r\n", resp)
        resp = raw_request(gp, b"GET / HTTP/1.0\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 400"))
        resp = raw_request(gp, b"GET / HTTP/1.1\r\nHost: evil.com/x\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 400"))


class TlsConfigTest(ghtest.TestCase):

    def test_unreadable_or_mismatched_key_is_a_config_error(self):
        crt, key, _ = make_cert(self.tmp)
        os.makedirs(self.path("other"))
        _, key2, _ = make_cert(self.path("other"))
        for k, msg in ((self.path("missing.pem"), "tls: key"), (key2, "does not match")):
            conf = self.write("gw.yaml", "listeners:\n  - listen: 127.0.0.1:18443\n"
                                         f"    tls: {{ cert: {crt}, key: {k} }}\n")
            out = subprocess.run([ghtest.GH_BIN, "-t", "-c", conf], capture_output=True, text=True)
            self.assertEqual(out.returncode, 1)
            self.assertRegex(out.stderr, re.escape(conf) + r":3:\d+: .*" + msg)


if __name__ == "__main__":
    ghtest.main()
