"""contrib/examples/flask-chat end to end, in a real browser, behind the ELB stand-in.

    chromium ──https──▶ HAProxy (contrib/haproxy/elb-classic.cfg: TLS ends
                        here) ──PROXY v1 + http──▶ gatehouse ─┬─ /ws/ ─▶ server.py (websockets)
                                                              └─ /    ─▶ gunicorn app:app (Flask)

gatehouse runs conf/flask-chat.yaml with only its ports, upstream ports,
trusted_proxies and logs changed (every replaced text must be found exactly
once, so a changed file fails here instead of being tested half). Headless
Debian chromium, driven by playwright-core (flask-chat.e2e.js), loads the
page over https, two tabs chat through the WebSocket tunnel, /whoami
fetched from the page shows what Flask was told, and plain http through
HAProxy's http listener is redirected (301) to https.

HAProxy connects to gatehouse from 127.0.0.3 (a test-local copy of the
checked-in cfg with `source` added), the only address gatehouse trusts to
send PROXY headers, while the browser connects from 127.0.0.1: so a
127.0.0.1 in X-Forwarded-For and X-Real-IP can only have come from the PROXY
header. Fails, never skips, when something it needs is missing."""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import browser  # noqa: E402
import ghtest  # noqa: E402

HAPROXY = "/usr/sbin/haproxy"
GUNICORN = "/usr/bin/gunicorn"
HAPROXY_SOURCE = "127.0.0.3"
WORKERS = 2


class FlaskChatBrowserTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.app_dir = os.path.join(ghtest.GH_SRC, "contrib", "examples", "flask-chat")
        browser.check_tools(self, (HAPROXY, "apt-get install haproxy"),
                            (GUNICORN, "apt-get install gunicorn"),
                            (os.path.join(self.app_dir, "app.py"), "contrib/examples/flask-chat"),
                            (os.path.join(self.app_dir, "server.py"),
                             "contrib/examples/flask-chat"))
        for mod, pkg in (("flask", "python3-flask"), ("websockets", "python3-websockets")):
            got = subprocess.run([sys.executable, "-c", "import " + mod], capture_output=True)
            self.assertEqual(got.returncode, 0, f"{mod} is missing: apt-get install {pkg}")

    # -- processes ---------------------------------------------------------

    def spawn(self, name, args, env=None, cwd=None):
        """A process whose stdout and stderr go to TMP/NAME.log; stopped at cleanup."""
        log = open(self.path(name + ".log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen(args, env={**os.environ, **(env or {})}, cwd=cwd,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def stop():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.addCleanup(stop)
        return proc

    def log(self, name):
        return ghtest.read_text(self.path(name + ".log"))

    def wait_up(self, proc, name, port, line, count=1):
        """Waits for `line` in the log (count times) and the port to accept."""
        def up():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")
            return self.log(name).count(line) >= count
        ghtest.wait_for(up, 15, f"{name}: {line!r}")
        ghtest.wait_port(port)

    def haproxy_cfg(self):
        """The checked-in ELB stand-in, connecting from HAPROXY_SOURCE."""
        with open(os.path.join(ghtest.GH_SRC, "contrib", "haproxy", "elb-classic.cfg")) as f:
            text = f.read()
        server = 'server gh "${GH_BACKEND}" send-proxy'
        self.assertEqual(text.count(server), 1, "elb-classic.cfg changed: update this test")
        text = text.replace(server, server + f" source {HAPROXY_SOURCE}")
        return self.write("elb-classic-e2e.cfg", text)

    def gatehouse_config(self, gp, https_p, flask_p, ws_p):
        """conf/flask-chat.yaml with its ports, trust and logs made local."""
        with open(os.path.join(ghtest.GH_SRC, "conf", "flask-chat.yaml")) as f:
            text = f.read()
        for old, new in [
                ("plugins_dir: ../build/plugins\n",
                 f"plugins_dir: {os.path.join(ghtest.GH_BUILD, 'plugins')}\n"),
                ("access_log: stderr\n", f"access_log: {self.path('access.log')}\n"),
                ("servers: [127.0.0.1:8000]", f"servers: [127.0.0.1:{flask_p}]"),
                ("servers: [127.0.0.1:9000]", f"servers: [127.0.0.1:{ws_p}]"),
                ("listen: 0.0.0.0:8080", f"listen: 127.0.0.1:{gp}"),
                ("trusted_proxies: [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]",
                 f"trusted_proxies: [{HAPROXY_SOURCE}/32]"),
                ("https_ports: [443]", f"https_ports: [{https_p}]"),
                # the browser follows the redirect to HAProxy's https port
                ("redirect_https: { status: 301 }", f"redirect_https: {{ status: 301, port: {https_p} }}"),
                ("drain_delay: 25s", "drain_delay: 0s"),
                ("drain_timeout: 30s", "drain_timeout: 5s")]:
            self.assertEqual(text.count(old), 1, f"conf/flask-chat.yaml changed ({old!r}): update this test")
            text = text.replace(old, new)
        return text

    # -- the test ----------------------------------------------------------

    def test_page_chat_whoami_and_redirect_through_the_elb_stand_in(self):
        ports = set()
        while len(ports) < 5:
            ports.add(ghtest.free_port())
        gp, http_p, https_p, flask_p, ws_p = list(ports)

        flask = self.spawn("gunicorn", [GUNICORN, "--bind", f"127.0.0.1:{flask_p}",
                                        "--workers", str(WORKERS), "--chdir", self.app_dir,
                                        "--access-logfile", "-", "app:app"],
                           env={"PYTHONDONTWRITEBYTECODE": "1"})
        ws = self.spawn("server", [sys.executable, "-u", os.path.join(self.app_dir, "server.py"),
                                   str(ws_p)])
        self.wait_up(flask, "gunicorn", flask_p, "Booting worker with pid", WORKERS)
        self.wait_up(ws, "server", ws_p, f"listening on 127.0.0.1:{ws_p}")

        gh = self.start(self.gatehouse_config(gp, https_p, flask_p, ws_p))
        both = ghtest.make_cert(self.tmp)[2]
        hp = self.spawn("haproxy", [HAPROXY, "-db", "-f", self.haproxy_cfg()],
                        env={"ELB_BIND": "127.0.0.1", "ELB_HTTP_PORT": str(http_p),
                             "ELB_HTTPS_PORT": str(https_p), "ELB_CERT": both,
                             "GH_BACKEND": f"127.0.0.1:{gp}"})
        ghtest.wait_port(https_p)
        ghtest.wait_port(http_p)
        self.assertIsNone(hp.poll(), self.log("haproxy"))

        # plain http through HAProxy's http listener: 301 to https, the same
        # path and query, the balancer's https port
        got = ghtest.raw_request(http_p, f"GET /whoami?x=1 HTTP/1.1\r\nHost: localhost:{http_p}\r\n"
                                         "Connection: close\r\n\r\n".encode())
        head = got.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        self.assertRegex(head, r"^HTTP/1\.1 301 ", head)
        self.assertRegex(head, rf"(?im)^location: https://localhost:{https_p}/whoami\?x=1\r?$", head)

        report = browser.run_script(
            self, "flask-chat.e2e.js",
            {"E2E_URL": f"https://localhost:{https_p}/",
             "E2E_HTTP_URL": f"http://localhost:{http_p}/", "E2E_SHOTS": ghtest.GH_BUILD},
            120, lambda: f"--- gatehouse:\n{gh.log()[-6000:]}\n"
                         f"--- access log:\n{ghtest.read_text(self.path('access.log'))}\n"
                         f"--- gunicorn:\n{self.log('gunicorn')[-3000:]}\n"
                         f"--- server.py:\n{self.log('server')}\n"
                         f"--- haproxy:\n{self.log('haproxy')}")
        self.assertTrue(report["ok"])
        self.assertEqual(report["protocol"], "https:")

        # the tunnel: both tabs' sockets went to wss:// through HAProxy
        self.assertEqual(len(report["sockets"]), 2, report)
        for url in report["sockets"]:
            self.assertEqual(url, f"wss://localhost:{https_p}/ws/")

        # what Flask was told: the browser's address, which only the PROXY
        # line carried (gatehouse's peer was HAProxy at 127.0.0.3), and the
        # scheme from the balancer's https port; a client's own
        # X-Forwarded-For / X-Real-IP never get through
        for key in ("whoami", "whoami_spoofed"):
            w = report[key]
            self.assertEqual(w["x_forwarded_for"], "127.0.0.1", (key, w))
            self.assertEqual(w["x_real_ip"], "127.0.0.1", (key, w))
            self.assertEqual(w["x_forwarded_proto"], "https", (key, w))
            self.assertEqual(w["remote_addr"], "127.0.0.1", (key, w))     # gatehouse
        self.assertEqual(report["page_whoami"], "127.0.0.1 over https")

        # the browser's http visit: 301 to https, then the page
        self.assertEqual(report["redirect"]["status"], 301, report["redirect"])
        self.assertEqual(report["redirect"]["location"], f"https://localhost:{https_p}/")
        self.assertEqual(report["redirect"]["final"], f"https://localhost:{https_p}/")

        for shot in report["screenshots"]:
            with open(shot, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", shot)
            print(f"screenshot: {shot}", file=sys.stderr)

        # gatehouse's access log: the upgrades were tunnelled (101) and every
        # line is headed by the browser's address from the PROXY line
        access = self.path("access.log")
        ghtest.wait_for(lambda: ghtest.read_text(access).count('"GET /ws/ HTTP/1.1" 101 ') >= 2, 10,
                        "the two upgrades in the access log")
        lines = ghtest.read_text(access).splitlines()
        for w in (r'"GET / HTTP/1\.1" 200 ', r'"GET /static/chat\.js HTTP/1\.1" 200 ',
                  r'"GET /whoami HTTP/1\.1" 200 ', r'"GET /whoami\?x=1 HTTP/1\.1" 301 ',
                  r'"GET / HTTP/1\.1" 301 '):
            self.assertTrue([ln for ln in lines if re.search(w, ln)],
                            f"no access-log line like {w}:\n" + "\n".join(lines))
        for ln in lines:
            self.assertTrue(ln.startswith("127.0.0.1 - - ["), ln)
            self.assertNotIn(HAPROXY_SOURCE, ln)
        # and the apps saw them: Flask the page, server.py the two sockets
        self.assertIn('"GET /whoami HTTP/1.1" 200', self.log("gunicorn"))
        self.assertGreaterEqual(self.log("server").count("open /ws/"), 2, self.log("server"))

        # a clean exit: no crash, and under ASan no leak
        self.assertEqual(gh.stop(), 0, gh.log()[-4000:])


if __name__ == "__main__":
    ghtest.main()
