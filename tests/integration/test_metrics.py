"""The metrics action: Prometheus text format, and numbers that move."""
import re
import socket
import subprocess
import urllib.request

import ghtest
from ghtest import raw_request

scrape = ghtest.scrape


class MetricsTest(ghtest.TestCase):

    def test_counters_move(self):
        self.write("www/index.html", "hi\n")
        port, pport = ghtest.free_port(), ghtest.free_port()
        self.start(f"""
access_log: off
listeners:
  - listen: 127.0.0.1:{port}
  - listen: 127.0.0.1:{pport}
    proxy_protocol: v1
routes:
  - match: {{ path: /metrics }}
    metrics: {{}}
  - match: {{ prefix: / }}
    static: {{ root: www }}
""")
        before = scrape(port)
        self.assertGreater(before["gatehouse_process_start_time_seconds"], 1.7e9)
        self.assertEqual(before["gatehouse_draining"], 0)
        for path in ("/", "/", "/missing"):
            raw_request(port, f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
        raw_request(pport, b"PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        raw_request(pport, b"PROXY TCP4 010.0.0.1 127.0.0.1 1 2\r\n")
        after = scrape(port)
        # three pages, and the `before` scrape (counted once it was sent)
        self.assertEqual(after['gatehouse_http_responses_total{class="2xx"}']
                         - before['gatehouse_http_responses_total{class="2xx"}'], 4)
        self.assertEqual(after['gatehouse_http_responses_total{class="4xx"}']
                         - before['gatehouse_http_responses_total{class="4xx"}'], 1)
        self.assertEqual(after["gatehouse_proxy_headers_accepted_total"], 1)
        self.assertEqual(after['gatehouse_proxy_headers_refused_total{reason="v1_address"}'], 1)
        self.assertGreaterEqual(after["gatehouse_connections_accepted_total"]
                                - before["gatehouse_connections_accepted_total"], 6)
        held = socket.create_connection(("127.0.0.1", pport), timeout=5)
        self.addCleanup(held.close)
        gauge = f'gatehouse_connections_open{{listener="127.0.0.1:{pport}",kind="http"}}'
        ghtest.wait_for(lambda: scrape(port)[gauge] == 1, what="the held connection in the gauge")
        held.close()
        ghtest.wait_for(lambda: scrape(port)[gauge] == 0, what="the gauge back at 0")

    def test_header_timeouts_are_counted_and_logged_once_per_10s(self):
        port = ghtest.free_port()
        g = self.start(f"""
access_log: off
error_log: stderr
log_level: info
http:
  header_timeout: 1s
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /metrics }}
    metrics: {{}}
""")
        slow = []
        for _ in range(5):      # heads begun, never ended: a slowloris
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
            slow.append(s)
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)   # sends nothing
        for s in slow + [idle]:
            self.assertEqual(s.recv(4096), b"")        # closed by the server
            s.close()
        m = scrape(port)
        self.assertEqual(m["gatehouse_http_header_timeouts_total"], 5)
        # one line for the five per worker (each worker counts its own
        # until its next line, 10 s on)
        workers = int(re.search(r"ready: listening on .*, (\d+) workers?\)", g.log()).group(1))
        lines = g.log().count("header timeout while reading a request")
        self.assertGreaterEqual(lines, 1, g.log())
        self.assertLessEqual(lines, min(workers, 5), g.log())

class WebSocketMetricsTest(ghtest.TestCase):

    def test_websocket_counters_move(self):
        import asyncio
        import os
        import websockets
        port = ghtest.free_port()
        self.start(f"""
plugins_dir: {os.path.join(ghtest.GH_BUILD, "plugins")}
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /metrics }}
    metrics: {{}}
  - match: {{ path: /ws/echo }}
    websocket: {{ plugin: echo }}
""")
        before = scrape(port)
        self.assertGreaterEqual(before['gatehouse_plugin_loads_total{result="ok"}'], 1)
        gauge = f'gatehouse_connections_open{{listener="127.0.0.1:{port}",kind="websocket"}}'

        async def session():
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/echo") as ws:
                for m in ("a", "bb", "ccc"):
                    await ws.send(m)
                    self.assertEqual(await ws.recv(), m)
                during = await asyncio.get_running_loop().run_in_executor(None, scrape, port)
                self.assertEqual(during[gauge], 1)
                await ws.close(code=1000)
        asyncio.run(session())
        after = ghtest.wait_for(lambda: (lambda v: v[gauge] == 0 and v)(scrape(port)),
                                what="the websocket gauge back at 0")
        self.assertEqual(after['gatehouse_websocket_messages_total{direction="in"}'], 3)
        self.assertEqual(after['gatehouse_websocket_messages_total{direction="out"}'], 3)
        self.assertEqual(after['gatehouse_websocket_bytes_total{direction="in"}'], 6)
        self.assertEqual(after['gatehouse_websocket_bytes_total{direction="out"}'], 6)
        self.assertEqual(after['gatehouse_websocket_closes_total{code="1000"}'], 1)
        self.assertEqual(after['gatehouse_http_responses_total{class="1xx"}'], 1)

    def test_topic_state_counters_move(self):
        """chat's join is a topic-state request (answered locally without a
        bus), and each chat user is a member until the connection closes."""
        import asyncio
        import json
        import os
        import websockets
        port = ghtest.free_port()
        self.start(f"""
plugins_dir: {os.path.join(ghtest.GH_BUILD, "plugins")}
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /metrics }}
    metrics: {{}}
  - match: {{ path: /ws/chat }}
    websocket: {{ plugin: chat }}
""")
        before = scrape(port)
        local = 'gatehouse_topic_state_answers_total{from="local"}'
        self.assertEqual(before[local], 0)
        self.assertEqual(before['gatehouse_topic_state_answers_total{from="redis"}'], 0)
        self.assertEqual(before["gatehouse_topic_state_members"], 0)

        async def session():
            url = f"ws://127.0.0.1:{port}/ws/chat?room=m&nick="
            async with websockets.connect(url + "a") as a, websockets.connect(url + "b") as b:
                for ws in (a, b):
                    self.assertEqual(json.loads(await ws.recv())["type"], "welcome")
                during = await asyncio.get_running_loop().run_in_executor(None, scrape, port)
                self.assertEqual(during[local], 2)
                self.assertEqual(during["gatehouse_topic_state_members"], 2)
        asyncio.run(session())
        ghtest.wait_for(lambda: scrape(port)["gatehouse_topic_state_members"] == 0,
                        what="the members gauge back at 0")


class TlsMetricsTest(ghtest.TestCase):

    def test_handshakes_are_counted(self):
        key, crt = self.path("k.pem"), self.path("c.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
        port, tport = ghtest.free_port(), ghtest.free_port()
        self.start(f"""
listeners:
  - listen: 127.0.0.1:{port}
  - listen: 127.0.0.1:{tport}
    tls: {{ cert: {crt}, key: {key} }}
routes:
  - match: {{ path: /metrics }}
    metrics: {{}}
""")
        subprocess.run(["curl", "-sk", "--max-time", "5", f"https://127.0.0.1:{tport}/metrics"], capture_output=True)
        raw_request(tport, b"GET / HTTP/1.1\r\n\r\n")       # not TLS: a failed handshake
        m = ghtest.wait_for(lambda: (lambda v: v['gatehouse_tls_handshakes_total{result="failed"}'] >= 1 and v)(scrape(port)),
                            what="a failed handshake counted")
        self.assertEqual(m['gatehouse_tls_handshakes_total{result="ok"}'], 1)
        self.assertEqual(m['gatehouse_tls_handshakes_total{result="failed"}'], 1)


if __name__ == "__main__":
    ghtest.main()
