"""The HTTP/1.1 core and the static and health routes, against the real daemon,
driven by curl, http.client and raw sockets."""
import http.client
import os
import re
import signal
import socket
import subprocess
import time

import ghtest
from ghtest import raw_request

PAGE = b"<!doctype html><title>t</title><p>hello</p>\n" * 100   # 4.6 KB


def config(port, tmp, extra="", keepalive="2s"):
    return f"""
access_log: {tmp}/access.log
error_log: stderr
log_level: info
{extra}
http:
  header_timeout: 1s
  keepalive_timeout: {keepalive}
  max_head: 4KiB
  max_body: 1KiB
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /healthz }}
    health: {{}}
  - match: {{ prefix: / }}
    static: {{ root: www, index: index.html }}
"""


class HttpTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.write("www/index.html", PAGE)
        self.write("www/app.js", "console.log(1)\n")
        self.write("www/style.css", "body{}\n")
        self.write("www/data.json", "{}\n")
        self.write("www/sub/page.html", "<p>sub</p>\n")
        os.makedirs(self.path("www/empty"))
        self.write("secret.txt", "TOP SECRET\n")
        os.symlink(self.path("secret.txt"), self.path("www/leak.txt"))
        os.symlink("sub/page.html", self.path("www/inside.html"))
        self.port = ghtest.free_port()
        self.gh = self.start(config(self.port, self.tmp))

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)

    def get(self, path, headers=None, method="GET"):
        c = self.conn()
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r, body

    def curl(self, *args):
        out = subprocess.run(["curl", "-sS", "--max-time", "5", *args],
                             capture_output=True, check=False)
        return out

    # -- static ----------------------------------------------------------

    def test_get_index_serves_the_file_with_validators(self):
        r, body = self.get("/")
        self.assertEqual(r.status, 200)
        self.assertEqual(body, PAGE)
        self.assertEqual(r.getheader("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(int(r.getheader("Content-Length")), len(PAGE))
        self.assertTrue(r.getheader("ETag").startswith('"'))
        self.assertRegex(r.getheader("Last-Modified"), r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
        self.assertRegex(r.getheader("Date"), r"GMT$")
        self.assertEqual(r.getheader("Server"), "gatehouse")

    def test_curl_gets_the_page_and_mime_types(self):
        for path, ctype in [("/app.js", "text/javascript; charset=utf-8"),
                            ("/style.css", "text/css; charset=utf-8"),
                            ("/data.json", "application/json; charset=utf-8")]:
            out = self.curl("-D", "-", "-o", "/dev/null", f"http://127.0.0.1:{self.port}{path}")
            self.assertEqual(out.returncode, 0, out.stderr)
            head = out.stdout.decode()
            self.assertIn("HTTP/1.1 200", head)
            self.assertIn(f"Content-Type: {ctype}", head)

    def test_if_none_match_and_if_modified_since_give_304(self):
        r, _ = self.get("/")
        etag, lm = r.getheader("ETag"), r.getheader("Last-Modified")
        r2, body = self.get("/", {"If-None-Match": etag})
        self.assertEqual(r2.status, 304)
        self.assertEqual(body, b"")
        self.assertEqual(r2.getheader("ETag"), etag)
        r3, _ = self.get("/", {"If-None-Match": '"other"'})
        self.assertEqual(r3.status, 200)
        r4, _ = self.get("/", {"If-Modified-Since": lm})
        self.assertEqual(r4.status, 304)
        r5, _ = self.get("/", {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"})
        self.assertEqual(r5.status, 200)

    def test_single_range_gives_206_and_unsatisfiable_gives_416(self):
        r, body = self.get("/", {"Range": "bytes=10-19"})
        self.assertEqual(r.status, 206)
        self.assertEqual(body, PAGE[10:20])
        self.assertEqual(r.getheader("Content-Range"), f"bytes 10-19/{len(PAGE)}")
        r, body = self.get("/", {"Range": "bytes=-5"})
        self.assertEqual(r.status, 206)
        self.assertEqual(body, PAGE[-5:])
        r, body = self.get("/", {"Range": f"bytes={len(PAGE)}-"})
        self.assertEqual(r.status, 416)
        self.assertEqual(r.getheader("Content-Range"), f"bytes */{len(PAGE)}")
        # curl's own range option
        out = self.curl("-r", "0-4", f"http://127.0.0.1:{self.port}/")
        self.assertEqual(out.stdout, PAGE[:5])

    def test_a_changed_file_is_served_new_within_two_seconds(self):
        r, body = self.get("/app.js")
        self.assertEqual(body, b"console.log(1)\n")
        old_etag = r.getheader("ETag")
        self.write("www/app.js", "console.log(2); // changed\n")
        def served_new():
            r2, b2 = self.get("/app.js")
            return b2 == b"console.log(2); // changed\n" and r2.getheader("ETag") != old_etag
        ghtest.wait_for(served_new, timeout=3.0, what="the changed file")
        os.unlink(self.path("www/app.js"))
        ghtest.wait_for(lambda: self.get("/app.js")[0].status == 404, timeout=3.0, what="404 after delete")

    def test_large_file_is_sent_whole(self):
        data = os.urandom(3 << 20)
        self.write("www/big.bin", data)
        r, body = self.get("/big.bin")
        self.assertEqual((r.status, len(body)), (200, len(data)))
        self.assertEqual(body, data)
        r, body = self.get("/big.bin", {"Range": "bytes=1000000-1000009"})
        self.assertEqual(body, data[1000000:1000010])

    def test_head_sends_headers_only(self):
        r, body = self.get("/", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(int(r.getheader("Content-Length")), len(PAGE))
        self.assertEqual(body, b"")

    def test_missing_file_and_directory_without_index_are_404(self):
        self.assertEqual(self.get("/nope.html")[0].status, 404)
        self.assertEqual(self.get("/empty/")[0].status, 404)

    def test_directory_without_slash_redirects(self):
        r, _ = self.get("/sub?x=1")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.getheader("Location"), "/sub/?x=1")

    def test_other_methods_on_static_get_405_with_allow(self):
        r, _ = self.get("/", method="DELETE")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.getheader("Allow"), "GET, HEAD")

    def test_traversal_attempts_are_refused(self):
        for target in [b"/../secret.txt", b"/%2e%2e/secret.txt", b"/%2E%2e%2fsecret.txt",
                       b"/sub/../../secret.txt", b"/index.html%00.txt", b"//secret.txt",
                       b"/leak.txt", b"/sub/%2e%2e/%2e%2e/secret.txt"]:
            resp = raw_request(self.port, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            status = int(resp.split(b" ", 2)[1])
            self.assertIn(status, (400, 404), target)
            self.assertNotIn(b"TOP SECRET", resp, target)
        # curl without its own path normalisation
        out = self.curl("--path-as-is", f"http://127.0.0.1:{self.port}/../secret.txt")
        self.assertNotIn(b"TOP SECRET", out.stdout)
        # a symlink that stays inside the root still works
        r, body = self.get("/inside.html")
        self.assertEqual((r.status, body), (200, b"<p>sub</p>\n"))

    # -- connection management -------------------------------------------

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        c = self.conn()
        names = set()
        for _ in range(3):
            c.request("GET", "/app.js")
            r = c.getresponse()
            self.assertEqual(r.read(), b"console.log(1)\n")
            self.assertIsNone(r.getheader("Connection"))
            names.add(c.sock.getsockname())
        c.close()
        self.assertEqual(len(names), 1)      # one TCP connection for all three

    def test_http10_closes_unless_keep_alive(self):
        resp = raw_request(self.port, b"GET /app.js HTTP/1.0\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 200"))
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(b"GET /app.js HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = b""
        while b"console.log(1)\n" not in data:
            data += s.recv(4096)
        self.assertIn(b"Connection: keep-alive", data)
        s.sendall(b"GET /style.css HTTP/1.0\r\n\r\n")
        rest = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            rest += b
        self.assertIn(b"body{}", rest)
        s.close()

    def test_pipelined_requests_are_answered_in_order(self):
        reqs = b"".join(b"GET /%s HTTP/1.1\r\nHost: a\r\n\r\n" % p for p in
                        (b"app.js", b"style.css", b"data.json", b"nope"))
        reqs += b"GET /app.js HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        resp = raw_request(self.port, reqs)
        statuses = re.findall(rb"HTTP/1.1 (\d+)", resp)
        self.assertEqual(statuses, [b"200", b"200", b"200", b"404", b"200"])
        self.assertLess(resp.index(b"console.log"), resp.index(b"body{}"))
        self.assertLess(resp.index(b"body{}"), resp.index(b"{}\n", resp.index(b"body{}") + 6))

    def test_header_read_timeout_closes_a_slow_client(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        t0 = time.monotonic()
        for _ in range(5):     # keep trickling bytes: the timeout is for the whole head
            try:
                s.sendall(b"X-A: b\r\n")
            except OSError:
                break
            time.sleep(0.3)
        data = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
        except ConnectionResetError:
            pass
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 5.0)
        self.assertNotIn(b"200 OK", data)
        s.close()

    def test_keep_alive_idle_timeout_closes_the_connection(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"GET /app.js HTTP/1.1\r\nHost: a\r\n\r\n")
        data = b""
        while b"console.log(1)\n" not in data:
            data += s.recv(4096)
        t0 = time.monotonic()
        self.assertEqual(s.recv(4096), b"")        # closed by the server
        self.assertGreater(time.monotonic() - t0, 1.0)
        s.close()

    def test_oversized_head_and_too_many_fields_get_431(self):
        resp = raw_request(self.port, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 431"), resp[:40])
        fields = b"".join(b"X-%d: v\r\n" % i for i in range(101))
        resp = raw_request(self.port, b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 431"), resp[:40])

    def test_malformed_heads_get_400_and_close(self):
        for req in [b"GET / HTTP/1.1\r\n\r\n",                                   # no Host
                    b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",             # obs-fold
                    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",                       # space before colon
                    b"GET / HTTP/1.1\nHost: a\n\n",                              # bare LF
                    b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",                  # bare CR
                    b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",                        # bad token
                    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"]:            # two Hosts
            resp = raw_request(self.port, req)
            self.assertTrue(resp.startswith(b"HTTP/1.1 400"), req)
            self.assertIn(b"Connection: close", resp)

    def test_request_smuggling_shapes_get_400_and_close(self):
        tail = b"GET /app.js HTTP/1.1\r\nHost: a\r\n\r\n"
        for head in [b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                     b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                     b"Content-Length: 5\r\nContent-Length: 6\r\n",
                     b"Content-Length: 5, 6\r\n",
                     b"Content-Length: +5\r\n",
                     b"Transfer-Encoding: chunked, identity\r\n",
                     b"Transfer-Encoding: identity\r\n",
                     b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"]:
            req = b"GET / HTTP/1.1\r\nHost: a\r\n" + head + b"\r\n0\r\n\r\n" + tail
            resp = raw_request(self.port, req)
            self.assertEqual(re.findall(rb"HTTP/1.1 (\d+)", resp), [b"400"], head)
        resp = raw_request(self.port, b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 400"))

    def test_body_on_get_is_discarded_and_the_next_request_served(self):
        req = (b"GET /app.js HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nGET /"
               b"GET /style.css HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n0\r\n\r\n"
               b"GET /data.json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        resp = raw_request(self.port, req)
        self.assertEqual(re.findall(rb"HTTP/1.1 (\d+)", resp), [b"200", b"200", b"200"])
        resp = raw_request(self.port, b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 413"))
        chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
        resp = raw_request(self.port, b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                           + chunk * 2 + b"0\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 413"))

    def test_absolute_form_target_is_served(self):
        resp = raw_request(self.port, b"GET http://example.com/app.js HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n")
        self.assertTrue(resp.startswith(b"HTTP/1.1 200"))
        self.assertTrue(resp.endswith(b"console.log(1)\n"))

    # -- health and logs ---------------------------------------------------

    def test_health_says_ok(self):
        r, body = self.get("/healthz")
        self.assertEqual((r.status, body), (200, b"ok\n"))
        self.assertTrue(r.getheader("Content-Type").startswith("text/plain"))

    def test_access_log_has_one_combined_line_per_request(self):
        raw_request(self.port, b'GET /app.js HTTP/1.1\r\nHost: a\r\nReferer: http://r/\r\n'
                               b'User-Agent: evil"\xff agent\r\nConnection: close\r\n\r\n')
        self.get("/nope")
        path = os.path.join(self.tmp, "access.log")
        lines = ghtest.wait_lines(path, 2)
        pat = re.compile(r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                         r'"(\S+) (\S+) HTTP/1\.1" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"$')
        m1, m2 = pat.match(lines[0]), pat.match(lines[1])
        self.assertIsNotNone(m1, lines[0])
        self.assertIsNotNone(m2, lines[1])
        self.assertEqual(m1.group(1, 2, 3, 4), ("GET", "/app.js", "200", "15"))
        self.assertEqual(m1.group(5), "http://r/")
        self.assertEqual(m1.group(6), r"evil\x22\xff agent")
        self.assertEqual(m2.group(3), "404")


class DrainTest(ghtest.TestCase):

    def test_sigterm_finishes_in_flight_responses_and_exits_0(self):
        self.write("www/index.html", PAGE)
        size = 32 << 20        # more than loopback socket buffers hold: still in flight at SIGTERM
        with open(self.path("www/big.bin"), "wb") as f:
            f.truncate(size)
        port = ghtest.free_port()
        g = self.start(config(port, self.tmp, extra="drain_timeout: 10s"))
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        first = s.recv(4096)                  # response is in flight
        self.assertTrue(first.startswith(b"HTTP/1.1 200"))
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)   # idle keep-alive
        time.sleep(0.1)
        g.send_signal(signal.SIGTERM)
        g.wait_log("draining")
        self.assertEqual(idle.recv(10), b"")  # idle connection closed at once
        got = len(first)
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            got += len(b)
        head_len = first.index(b"\r\n\r\n") + 4
        self.assertEqual(got - head_len, size)   # the whole file arrived
        self.assertEqual(g.proc.wait(15), 0)
        # no new connections after the drain
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).recv(1)

    def test_health_is_503_during_drain_delay(self):
        self.write("www/index.html", PAGE)
        port = ghtest.free_port()
        g = self.start(config(port, self.tmp, extra="drain_delay: 1s"))
        g.send_signal(signal.SIGTERM)
        g.wait_log("draining")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/healthz")
        r = c.getresponse()
        self.assertEqual(r.status, 503)
        r.read()
        c.close()
        self.assertEqual(g.proc.wait(10), 0)

    def test_second_sigterm_exits_at_once(self):
        self.write("www/index.html", PAGE)
        port = ghtest.free_port()
        g = self.start(config(port, self.tmp, extra="drain_delay: 30s"))
        g.send_signal(signal.SIGTERM)
        g.wait_log("draining")
        t0 = time.monotonic()
        g.send_signal(signal.SIGTERM)
        self.assertEqual(g.proc.wait(5), 0)
        self.assertLess(time.monotonic() - t0, 3)


class LimitTest(ghtest.TestCase):

    def test_max_connections_stops_accepting_until_one_closes(self):
        self.write("www/index.html", PAGE)
        port = ghtest.free_port()
        self.start(config(port, self.tmp, extra="max_connections: 2", keepalive="30s"))
        a = socket.create_connection(("127.0.0.1", port), timeout=5)
        b = socket.create_connection(("127.0.0.1", port), timeout=5)
        for s in (a, b):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            self.assertIn(b"ok\n", s.recv(4096))
        c = socket.create_connection(("127.0.0.1", port), timeout=1)   # sits in the backlog
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        with self.assertRaises(socket.timeout):
            c.recv(4096)
        a.close()
        c.settimeout(5)
        self.assertIn(b"ok\n", c.recv(4096))
        b.close()
        c.close()

    def test_a_listener_with_its_own_limit_answers_when_the_process_is_full(self):
        # the balancer's health checks on a listener of their own: counted
        # against its max_connections, not the process's
        self.write("www/index.html", PAGE)
        port, hport = ghtest.free_port(), ghtest.free_port()
        own = f"listeners:\n  - listen: 127.0.0.1:{hport}\n    max_connections: 2\n"
        base = config(port, self.tmp, extra="max_connections: 2", keepalive="30s")
        g = self.start(base.replace("listeners:\n", own))

        def open_on(p, timeout=5):
            s = socket.create_connection(("127.0.0.1", p), timeout=timeout)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            return s

        def waits(s):
            s.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                s.recv(4096)

        def answered(s):
            s.settimeout(5)
            self.assertIn(b"ok\n", s.recv(4096))

        full = [open_on(port), open_on(port)]
        for s in full:
            answered(s)
        waiting = open_on(port)
        waits(waiting)                      # the process is full
        t0 = time.monotonic()
        h1 = open_on(hport)
        answered(h1)                        # the health listener is not
        self.assertLess(time.monotonic() - t0, 0.5)
        h2 = open_on(hport)
        answered(h2)
        h3 = open_on(hport)
        waits(h3)                           # but has its own limit
        g.wait_log(f"listener 127.0.0.1:{hport}: 2 connections open: its limit")
        h1.close()
        answered(h3)                        # a place of its own freed
        waits(waiting)                      # and none of the process's
        full[0].close()
        answered(waiting)

        # a reload that takes the own limit away: the listener's new
        # connections count in the process's (full again), its old ones
        # leave its own count
        g.rewrite(base.replace("listeners:\n", f"listeners:\n  - listen: 127.0.0.1:{hport}\n"))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        h4 = open_on(hport)
        waits(h4)
        full[1].close()
        answered(h4)
        for s in (h2, h3, h4, waiting):
            s.close()


if __name__ == "__main__":
    ghtest.main()
