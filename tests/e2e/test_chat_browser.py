"""The chat end to end, in a real browser, behind the ELB stand-in.

    chromium ──https──▶ HAProxy (contrib/haproxy/elb-classic.cfg: TLS ends
                        here) ──PROXY v1 + http──▶ gatehouse ─┬─ www/ (static)
                                                              └─ /ws/chat (chat.so)

Headless Debian chromium, driven by playwright-core (chat.e2e.js), opens two
pages over https, joins one room with two nicks, and they talk; the
screenshots land in the build folder. HAProxy connects to gatehouse from
127.0.0.3 (a test-local copy of the checked-in cfg with `source` added), the
only address gatehouse trusts to send PROXY headers, while the browser
connects from 127.0.0.1: so the 127.0.0.1 at the head of the access-log lines
can only have come from the PROXY header.

Fails, never skips, when something it needs is missing (node_modules: run
`npm ci` in tests/e2e, as contrib/quickstart.sh test does)."""
import json
import os
import re
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import browser  # noqa: E402
import ghtest  # noqa: E402
import urllib.request  # noqa: E402

HAPROXY = "/usr/sbin/haproxy"
HAPROXY_SOURCE = "127.0.0.3"


def make_cert(tmp):
    """cert and key in one PEM, as HAProxy's crt wants"""
    return ghtest.make_cert(tmp)[2]


wait_port = ghtest.wait_port

scrape = ghtest.scrape


def shipped_chat_route():
    """The /ws/chat route's lines in the shipped conf/gateway.yaml."""
    with open(os.path.join(ghtest.GH_SRC, "conf", "gateway.yaml")) as f:
        lines = f.read().splitlines()
    start = next(i for i, ln in enumerate(lines) if re.search(r"path: /ws/chat\b", ln))
    end = next((i for i in range(start + 1, len(lines)) if "- match:" in lines[i]), len(lines))
    return lines[start:end]


class ChatBrowserTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        browser.check_tools(self, (HAPROXY, "apt-get install haproxy"),
                            (os.path.join(ghtest.GH_BUILD, "plugins", "chat.so"),
                             "build chat.so"))

    def haproxy_cfg(self):
        """The checked-in ELB stand-in, connecting from HAPROXY_SOURCE."""
        with open(os.path.join(ghtest.GH_SRC, "contrib", "haproxy", "elb-classic.cfg")) as f:
            text = f.read()
        server = 'server gh "${GH_BACKEND}" send-proxy'
        self.assertEqual(text.count(server), 1, "elb-classic.cfg changed: update this test")
        text = text.replace(server, server + f" source {HAPROXY_SOURCE}")
        return self.write("elb-classic-e2e.cfg", text)

    def start_haproxy(self, env):
        log = open(self.path("haproxy.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([HAPROXY, "-db", "-f", self.haproxy_cfg()],
                                env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)

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

    def test_two_people_chat_through_the_page_behind_the_elb_stand_in(self):
        gp, http_p, https_p = ghtest.free_port(), ghtest.free_port(), ghtest.free_port()
        mp = ghtest.free_port()     # metrics, read by this runner only
        access = self.path("access.log")
        www = os.path.join(ghtest.GH_SRC, "www")
        gh_config = f"""
plugins_dir: {os.path.join(ghtest.GH_BUILD, "plugins")}
access_log: {access}
error_log: stderr
log_level: info
listeners:
  - listen: 127.0.0.1:{gp}
    proxy_protocol: v1
    trusted_proxies: [{HAPROXY_SOURCE}/32]
    https_ports: [{https_p}]
  - listen: 127.0.0.1:{mp}
routes:
  - match: {{ path: /metrics, host: 127.0.0.1 }}
    metrics: {{}}
  - match: {{ path: /healthz }}
    health: {{}}
  - match: {{ scheme: http }}
    redirect_https: {{ status: 301 }}
  - match: {{ path: /ws/chat }}
    websocket:
      plugin: chat
      config: {{ history: 50 }}
  - match: {{ prefix: / }}
    static: {{ root: {www}, index: index.html }}
"""
        gh = self.start(gh_config)
        both = make_cert(self.tmp)
        hp = self.start_haproxy({"ELB_BIND": "127.0.0.1", "ELB_HTTP_PORT": str(http_p),
                                 "ELB_HTTPS_PORT": str(https_p), "ELB_CERT": both,
                                 "GH_BACKEND": f"127.0.0.1:{gp}"})
        wait_port(https_p)
        wait_port(http_p)
        self.assertIsNone(hp.poll(), ghtest.read_text(self.path("haproxy.log")))

        shots = ghtest.GH_BUILD
        env = {**os.environ, "E2E_URL": f"https://localhost:{https_p}/", "E2E_ROOM": "e2e-room",
               "E2E_SHOTS": shots, "E2E_CHROMIUM": browser.CHROMIUM}
        node = subprocess.Popen(["node", os.path.join(HERE, "chat.e2e.js")], cwd=HERE, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: node.poll() is None and node.kill())
        first = node.stdout.readline()            # "RESTART", or "" when it failed
        metrics = None
        if first.strip() == "RESTART":
            # ann and bob have talked (a long message among the short ones):
            # what gatehouse compressed and inflated, before the restart
            # starts the counters again
            metrics = scrape(mp)
            # drain closes the pages' WebSockets with 1001; the new daemon
            # listens on the same port
            self.assertEqual(gh.stop(), 0, self.start_log()[-4000:])
            gh = ghtest.Gatehouse(gh_config, self.tmp)
            self.addCleanup(gh.__exit__)
            gh.wait_ready(after=1)
            node.stdin.write("go\n")
            node.stdin.flush()
        try:
            rest, err = node.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            node.kill()
            rest, err = node.communicate()
        out = first + rest
        self.assertEqual(node.returncode, 0,
                         f"chat.e2e.js failed:\n{err}\n{out}\n--- gatehouse:\n"
                         f"{self.start_log()}\n--- haproxy:\n{ghtest.read_text(self.path('haproxy.log'))}")
        report = json.loads(out.strip().splitlines()[-1])
        self.assertTrue(report["ok"])
        self.assertEqual(report["protocol"], "https:")
        self.assertGreaterEqual(len(report["sockets"]), 3, report)     # ann, bob, ann again
        for url in report["sockets"]:
            self.assertTrue(url.startswith(f"wss://localhost:{https_p}/ws/chat?room=e2e-room&nick="), url)
        # permessage-deflate, end to end through HAProxy: every chat socket's
        # 101 (as the browser's network stack saw it, over CDP) agreed on it
        chat = [h for h in report["handshakes"] if (h["url"] or "").startswith(
            f"wss://localhost:{https_p}/ws/chat?")]
        self.assertGreaterEqual(len(chat), 3, report["handshakes"])
        for h in chat:
            self.assertEqual(h["status"], 101, h)
            self.assertIsNotNone(h["extensions"], h)
            self.assertIn("permessage-deflate", h["extensions"], h)
            self.assertIn("client_no_context_takeover", h["extensions"], h)
        self.assertGreater(report["framesReceived"], 0)
        # and the frames were compressed on the wire (CDP shows them
        # inflated): gatehouse compressed what it sent and got less out than
        # in, and inflated what chromium compressed
        self.assertIsNotNone(metrics, "no metrics read before the restart")
        self.assertGreater(metrics["gatehouse_ws_compressions_total"], 0, metrics)
        self.assertLess(metrics['gatehouse_ws_compression_bytes_total{stage="compressed"}'],
                        metrics['gatehouse_ws_compression_bytes_total{stage="uncompressed"}'])
        self.assertGreater(metrics["gatehouse_ws_decompressions_total"], 0, metrics)
        self.assertLess(metrics['gatehouse_ws_decompression_bytes_total{stage="compressed"}'],
                        metrics['gatehouse_ws_decompression_bytes_total{stage="uncompressed"}'])
        # the shipped config compresses the chat too: it does not turn it off
        route = shipped_chat_route()
        self.assertFalse([ln for ln in route if re.match(r"\s*compression:\s*(off|false)\b", ln)
                          or re.search(r"[{,]\s*compression:\s*(off|false)\b", ln)], route)

        for shot in report["screenshots"]:
            with open(shot, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", shot)
            print(f"screenshot: {shot}", file=sys.stderr)

        # The access log: the page, its script and style, and two upgrades,
        # every line headed by the browser's 127.0.0.1, which gatehouse can
        # only know from the PROXY header: its socket peer was HAProxy at
        # 127.0.0.3 (the only peer it takes PROXY headers from)
        ghtest.wait_for(lambda: ghtest.read_text(access).count("/ws/chat") >= 3, 10,
                        "the upgrades in the access log")
        lines = ghtest.read_text(access).splitlines()
        want = [r'"GET / HTTP/1\.1" 200 ', r'"GET /chat\.js HTTP/1\.1" 200 ',
                r'"GET /chat\.css HTTP/1\.1" 200 ', r'"GET /ws/chat\?room=e2e-room&nick=ann HTTP/1\.1" 101 ',
                r'"GET /ws/chat\?room=e2e-room&nick=bob HTTP/1\.1" 101 ']
        for w in want:
            hits = [ln for ln in lines if re.search(w, ln)]
            self.assertTrue(hits, f"no access-log line like {w}:\n" + "\n".join(lines))
        for ln in lines:
            self.assertTrue(ln.startswith("127.0.0.1 - - ["), ln)
            self.assertNotIn(HAPROXY_SOURCE, ln)

        # and the counter-proof: a PROXY header from 127.0.0.1 itself is refused
        got = ghtest.raw_request(gp, b"PROXY TCP4 198.51.100.7 127.0.0.1 5555 443\r\n"
                                     b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", source=("127.0.0.1", 0))
        self.assertEqual(got, b"")
        ghtest.wait_for(lambda: "untrusted_peer" in self.start_log(), 5, "the refusal in the log")

        # a clean exit: no crash, and under ASan no leak
        self.assertEqual(gh.stop(), 0, self.start_log()[-4000:])

    def start_log(self):
        return ghtest.read_text(self.path("error.log"))


if __name__ == "__main__":
    ghtest.main()
