#!/usr/bin/env python3
"""soak.py: the soak campaign (issue 16). A gatehouse of its own with a
Redis bus (a redis-server of its own), for --duration seconds:

  HTTP      requests for a small page, kept-alive and fresh connections
  churn     WebSockets to /ws/echo opened, three messages echoed, closed
  chat      --members users in one chat room; each second one of them says
            something and every member must receive it (counted as lost if
            one does not within 5 s)
  reloads   SIGHUP every --hup seconds
  Redis     killed and started again at a third and two thirds of the run

gatehouse's RSS and open descriptors are sampled every few seconds; the
level after warm-up (a tenth of the run, at least --warmup seconds) is
compared with the level at the end of the run, under the same load: the
goal is both within 5 %. Also reported: requests and echoes done, chat
messages lost, reloads, errors. Exit 0 when the goal is met and nothing
was lost or failed.

  python3 contrib/campaigns/soak.py --gatehouse build/gatehouse \\
      --plugins build/plugins --duration 1800"""
import argparse
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from campaign import free_port, get_page, rss_kib, start_gatehouse, stop_gatehouse


class WS:
    """A minimal blocking WebSocket client (text messages only)."""

    def __init__(self, port, path, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket"
                        f"\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            b = self.s.recv(4096)
            if not b:
                raise ConnectionError("closed during the upgrade")
            self.buf += b
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError("upgrade refused: %r" % head[:40])

    def send(self, text, op=1):
        data = text.encode() if isinstance(text, str) else text
        mask = os.urandom(4)
        n = len(data)
        head = (struct.pack("!BB", 0x80 | op, 0x80 | n) if n < 126 else
                struct.pack("!BBH", 0x80 | op, 0x80 | 126, n))
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n):
        while len(self.buf) < n:
            b = self.s.recv(65536)
            if not b:
                raise ConnectionError("closed")
            self.buf += b

    def recv(self):
        """The next text message (pings answered, other frames skipped)."""
        while True:
            self._need(2)
            op, n = self.buf[0] & 0x0f, self.buf[1] & 0x7f
            off = 2
            if n == 126:
                self._need(4)
                n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                self._need(10)
                n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            self._need(off + n)
            data, self.buf = self.buf[off:off + n], self.buf[off + n:]
            if op == 9:
                self.send(data, op=10)
            elif op == 8:
                raise ConnectionError("closed by the server")
            elif op == 1:
                return data.decode()

    def close(self):
        try:
            self.s.sendall(struct.pack("!BB", 0x88, 0x80) + os.urandom(4))
        except OSError:
            pass
        self.s.close()


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Soak:

    def __init__(self, port, args):
        self.port, self.args = port, args
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "http_errors": 0, "echoes": 0, "ws_errors": 0,
                       "said": 0, "lost": 0, "chat_errors": 0}

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] += n

    def http(self):
        keep = None
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                if keep is None:
                    keep = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                s = keep if i % 2 else socket.create_connection(("127.0.0.1", self.port),
                                                                 timeout=5)
                get_page(s)
                if s is not keep:
                    s.close()
                self.count("requests")
            except OSError:
                self.count("http_errors")
                keep = None
            time.sleep(0.01)

    def churn(self):
        while not self.stop.is_set():
            try:
                ws = WS(self.port, "/ws/echo")
                for k in range(3):
                    ws.send("echo %d" % k)
                    if ws.recv() != "echo %d" % k:
                        raise ConnectionError("a wrong echo")
                ws.close()
                self.count("echoes", 3)
            except OSError:
                self.count("ws_errors")
            time.sleep(0.05)

    def chat(self):
        members = []
        for i in range(self.args.members):
            ws = WS(self.port, "/ws/chat?room=soak&nick=u%d" % i)
            members.append(ws)
            if json.loads(ws.recv())["type"] != "welcome":
                raise RuntimeError("no welcome")
        seq = 0
        while not self.stop.is_set():
            seq += 1
            text = "m%d" % seq
            try:
                members[seq % len(members)].send(json.dumps({"type": "say", "text": text}))
                self.count("said")
                for ws in members:
                    deadline = time.monotonic() + 5
                    while True:
                        ws.s.settimeout(max(0.1, deadline - time.monotonic()))
                        m = json.loads(ws.recv())
                        if m.get("type") == "said" and m.get("text") == text:
                            break
                        if time.monotonic() > deadline:
                            raise socket.timeout()
            except socket.timeout:
                self.count("lost")
            except OSError:
                self.count("chat_errors")
                return
            self.stop.wait(1.0)
        for ws in members:
            ws.close()


class Redis:

    def __init__(self, port):
        self.port, self.proc = port, None

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind",
                                      "127.0.0.1", "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        sys.exit("soak: redis-server did not start")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gatehouse", default="build/gatehouse")
    ap.add_argument("--plugins", default="build/plugins")
    ap.add_argument("--duration", type=float, default=1800)
    ap.add_argument("--hup", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=60)
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--sample", type=float, default=5)
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--memory-report-only", action="store_true",
                    help="report RSS and descriptors without judging them (seconds-long "
                         "runs, sanitizer builds); losses and errors still fail")
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("soak: redis-server is needed (Debian: redis-server)")

    tmp = tempfile.mkdtemp(prefix="gh-soak-")
    port, rport = free_port(), free_port()
    redis = Redis(rport)
    redis.start()
    os.makedirs(os.path.join(tmp, "www"))
    with open(os.path.join(tmp, "www", "index.html"), "w") as f:
        f.write("hello\n")
    gh = start_gatehouse(args.gatehouse, tmp, f"""plugins_dir: {os.path.abspath(args.plugins)}
access_log: off
error_log: {tmp}/error.log
log_level: info
bus: {{ redis: "redis://127.0.0.1:{rport}" }}
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /ws/echo }}
    websocket: {{ plugin: echo }}
  - match: {{ path: /ws/chat }}
    websocket: {{ plugin: chat, config: {{ rate: 0 }} }}
  - match: {{ path: /metrics }}
    metrics: {{}}
  - match: {{ prefix: / }}
    static: {{ root: {tmp}/www }}
""")
    code = 1
    soak = Soak(port, args)
    threads = [threading.Thread(target=t, daemon=True)
               for t in (soak.http, soak.churn, soak.chat)]
    try:
        for t in threads:
            t.start()
        t0 = time.monotonic()
        warm_at = max(args.warmup, args.duration / 10)
        restarts = [args.duration / 3, 2 * args.duration / 3]
        next_hup, next_sample = t0 + args.hup, t0
        samples, warm, hups = [], None, 0
        while True:
            now = time.monotonic() - t0
            if now >= args.duration:
                break
            if restarts and now >= restarts[0]:
                restarts.pop(0)
                redis.kill()
                time.sleep(1.0)         # a second without Redis
                redis.start()
            if time.monotonic() >= next_hup:
                gh.send_signal(signal.SIGHUP)
                hups += 1
                next_hup += args.hup
            if time.monotonic() >= next_sample:
                samples.append((now, rss_kib(gh.pid), fds(gh.pid)))
                if warm is None and now >= warm_at:
                    warm = samples[-1]
                next_sample += args.sample
            if gh.poll() is not None:
                sys.exit("soak: gatehouse exited with %s" % gh.returncode)
            time.sleep(0.1)
        end = (time.monotonic() - t0, rss_kib(gh.pid), fds(gh.pid))
        soak.stop.set()
        for t in threads:
            t.join(15)
        if warm is None:
            warm = samples[-1]
        c = soak.counts
        peak_rss = max(s[1] for s in samples)
        rss_ok = end[1] <= warm[1] * (1 + args.tolerance)
        fds_ok = end[2] <= warm[2] * (1 + args.tolerance) + 2
        print(f"soak duration_s={args.duration:g} hups={hups} redis_restarts=2 "
              f"requests={c['requests']} http_errors={c['http_errors']} echoes={c['echoes']} "
              f"ws_errors={c['ws_errors']} chat_said={c['said']} chat_lost={c['lost']} "
              f"chat_errors={c['chat_errors']}")
        print(f"after warm-up (t={warm[0]:.0f}s): rss_kib={warm[1]} fds={warm[2]}; "
              f"at the end (t={end[0]:.0f}s): rss_kib={end[1]} fds={end[2]}; "
              f"peak rss_kib={peak_rss}")
        clean = (c["http_errors"] == 0 and c["ws_errors"] == 0 and c["lost"] == 0 and
                 c["chat_errors"] == 0 and c["requests"] > 0)
        memory = "not judged" if args.memory_report_only else \
            "met" if rss_ok and fds_ok else "MISSED"
        ok = clean and (args.memory_report_only or (rss_ok and fds_ok))
        print("goal: RSS and descriptors within %d %% of their level after warm-up: %s; "
              "nothing lost or failed: %s" % (args.tolerance * 100, memory,
                                              "met" if clean else "MISSED"))
        code = 0 if ok else 1
    finally:
        soak.stop.set()
        stop_gatehouse(gh)
        redis.kill()
        shutil.rmtree(tmp, True)
    sys.exit(code)


if __name__ == "__main__":
    main()
