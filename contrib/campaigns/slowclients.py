#!/usr/bin/env python3
"""slowclients.py: the slow-client campaign (issue 16). A gatehouse of its
own (a temporary folder, a free port on 127.0.0.1) is put under

  --slow N        connections that send a request head one byte a second
                  (slowloris); each one gatehouse drops at header_timeout is
                  opened again, so N stay open all the time
  --nonreaders N  WebSockets subscribed to a topic that never read a byte
                  (SO_RCVBUF 4 KiB), while a publisher sends --msg-size
                  bytes to that topic --rate times a second: their queues
                  fill to send_backlog and they are closed as slow consumers

while one normal client makes requests for a small page, over one kept-alive
connection and over a new connection each, one at a time, for --duration
seconds after the load is in place. It reports that client's latency
(p50 / p99 / max), what gatehouse did with the others (its metrics), its
RSS, and passes when the p99 is under --goal-ms (0: report only).

  python3 contrib/campaigns/slowclients.py --gatehouse build/gatehouse \\
      --plugins build/plugins --slow 10000 --nonreaders 10000 --duration 30

Only 127.0.0.0/8 is used (sources 127.0.0.2-127.0.0.41 for the load). The
load generator is one process with non-blocking sockets; the normal client
is another, so that the load's bookkeeping does not delay its requests.
With --server-cpu/--load-cpu (taskset) they are pinned apart."""
import argparse
import base64
import multiprocessing as mp
import os
import selectors
import shutil
import socket
import struct
import sys
import tempfile
import time

from campaign import (free_port, get_page, raise_nofile, rss_kib, start_gatehouse,
                      stop_gatehouse)

SOURCES = ["127.0.0.%d" % i for i in range(2, 42)]


def ws_frame(payload, op=1):
    """A masked client frame (RFC 6455 §5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | op, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | op, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | op, 0x80 | 127, n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def upgrade_request(port, path):
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n").encode()


def scrape(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    out = {}
    for line in data.split(b"\r\n\r\n", 1)[-1].decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


class Load:
    """Slow heads, non-reading WebSockets and a publisher, on one selector."""

    def __init__(self, port, args):
        self.port, self.args = port, args
        self.sel = selectors.DefaultSelector()
        self.slow = {}          # socket -> bytes sent so far
        self.slow_reopened = 0
        self.nonreaders = []
        self.pub = None
        self.src = 0

    def source(self):
        self.src = (self.src + 1) % len(SOURCES)
        return (SOURCES[self.src], 0)

    def open_slow(self):
        s = socket.socket()
        s.setblocking(False)
        s.bind(self.source())
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        self.slow[s] = 0
        self.sel.register(s, selectors.EVENT_READ, "slow")

    def open_ws(self, rcvbuf=None, timeout=30.0):
        s = socket.socket()
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind(self.source())
        s.settimeout(timeout)
        s.connect(("127.0.0.1", self.port))
        s.sendall(upgrade_request(self.port, "/ws/ps?topic=slow"))
        head = b""
        while b"\r\n\r\n" not in head:
            b = s.recv(4096)
            if not b:
                raise RuntimeError("closed during the upgrade")
            head += b
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError("upgrade refused: %r" % head[:40])
        s.setblocking(False)
        return s

    def setup(self):
        for _ in range(self.args.nonreaders):
            self.nonreaders.append(self.open_ws(rcvbuf=4096))
        self.pub = self.open_ws()
        self.sel.register(self.pub, selectors.EVENT_READ, "pub")
        for _ in range(self.args.slow):
            self.open_slow()

    def tick(self):
        """Once a second: one more header byte on every slow connection."""
        for s in list(self.slow):
            n = self.slow[s]
            byte = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "[n:n + 1] or b"a"
            try:
                s.send(byte)
                self.slow[s] = n + 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.drop_slow(s)

    def drop_slow(self, s):
        self.sel.unregister(s)
        del self.slow[s]
        s.close()
        self.slow_reopened += 1
        self.open_slow()

    def run(self, ready, stop):
        self.setup()
        ready.set()
        msg = ws_frame(os.urandom(self.args.msg_size // 2).hex().encode()[:self.args.msg_size])
        next_tick = next_pub = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_tick:
                self.tick()
                next_tick += 1.0
            if now >= next_pub:
                try:
                    self.pub.send(msg)
                except (BlockingIOError, InterruptedError):
                    pass
                next_pub += 1.0 / self.args.rate
            wait = max(0.0, min(next_tick, next_pub) - time.monotonic())
            for key, _ in self.sel.select(timeout=wait):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if key.data == "slow" and not data:
                    self.drop_slow(s)
                elif key.data == "slow":
                    pass            # an answer (408?): read and ignored
                elif key.data == "pub" and not data:
                    raise RuntimeError("the publisher was closed")
        return self


def load_main(port, args, ready, stop, result):
    try:
        load = Load(port, args).run(ready, stop)
        result.put({"slow_reopened": load.slow_reopened})
    except Exception as e:      # reported by the parent
        result.put({"error": repr(e)})
        ready.set()


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def normal_client(port, duration):
    """Requests one at a time: kept-alive and fresh connections in turn."""
    keep = socket.create_connection(("127.0.0.1", port), timeout=5)
    lat, errors = [], 0
    deadline = time.monotonic() + duration
    i = 0
    while time.monotonic() < deadline and i < 1000000:
        i += 1
        fresh = i % 2 == 0
        t0 = time.monotonic()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5) if fresh else keep
            get_page(s)
            lat.append(time.monotonic() - t0)
            if fresh:
                s.close()
        except OSError:
            errors += 1
            if not fresh:
                keep = socket.create_connection(("127.0.0.1", port), timeout=5)
        time.sleep(0.005)
    keep.close()
    return lat, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gatehouse", default="build/gatehouse")
    ap.add_argument("--plugins", default="build/plugins")
    ap.add_argument("--slow", type=int, default=10000)
    ap.add_argument("--nonreaders", type=int, default=10000)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=10.0, help="publishes per second")
    ap.add_argument("--msg-size", type=int, default=1024)
    ap.add_argument("--header-timeout", default="10s")
    ap.add_argument("--send-backlog", default="256KiB")
    ap.add_argument("--goal-ms", type=float, default=10.0)
    ap.add_argument("--server-cpu", default=None)
    ap.add_argument("--load-cpu", default=None)
    ap.add_argument("--client-rt", action=argparse.BooleanOptionalAction, default=True,
                    help="run the normal client under SCHED_FIFO when allowed (root), so "
                         "that the load's own work on a shared core does not delay it")
    args = ap.parse_args()

    limit = raise_nofile()
    need = args.slow + args.nonreaders + 200
    if limit < need:
        sys.exit(f"slowclients: open-files limit {limit} is below the {need} needed")
    tmp = tempfile.mkdtemp(prefix="gh-slow-")
    port = free_port()
    os.makedirs(os.path.join(tmp, "www"))
    with open(os.path.join(tmp, "www", "index.html"), "w") as f:
        f.write("hello\n")
    gh = start_gatehouse(args.gatehouse, tmp, f"""plugins_dir: {os.path.abspath(args.plugins)}
access_log: off
error_log: {tmp}/error.log
log_level: info
http:
  header_timeout: {args.header_timeout}
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /ws/ps }}
    websocket: {{ plugin: pubsub, send_backlog: {args.send_backlog}, ping_interval: 0,
                 idle_timeout: 0, compression: off }}
  - match: {{ path: /metrics }}
    metrics: {{}}
  - match: {{ prefix: / }}
    static: {{ root: {tmp}/www }}
""", args.server_cpu)
    code = 1
    try:
        pid = gh.pid
        rss0 = rss_kib(pid)
        ready, stop, result = mp.Event(), mp.Event(), mp.Queue()
        loader = mp.Process(target=load_main, args=(port, args, ready, stop, result))
        loader.start()
        if args.load_cpu is not None:
            os.sched_setaffinity(loader.pid, {int(args.load_cpu)})
            os.sched_setaffinity(0, {int(args.load_cpu)})
        client_sched = "normal"
        if args.client_rt:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
                client_sched = "SCHED_FIFO"
            except (PermissionError, AttributeError, OSError):
                pass
        t0 = time.monotonic()
        ready.wait(600)
        setup_s = time.monotonic() - t0
        lat, errors = normal_client(port, args.duration)
        m = scrape(port)
        rss1 = rss_kib(pid)
        stop.set()
        res = result.get(timeout=60)
        loader.join(30)
        if "error" in res:
            sys.exit("slowclients: the load failed: " + res["error"])
        ms = [x * 1000 for x in lat]
        p50, p99 = percentile(ms, 0.50), percentile(ms, 0.99)
        slow_closed = m.get('gatehouse_ws_slow_consumers_total', 0)
        print(f"slowclients slow={args.slow} nonreaders={args.nonreaders} "
              f"rate={args.rate:g}/s msg={args.msg_size} setup_s={setup_s:.1f} "
              f"duration_s={args.duration:g} client={client_sched}")
        print(f"normal client: requests={len(ms)} errors={errors} p50_ms={p50:.2f} "
              f"p99_ms={p99:.2f} max_ms={max(ms) if ms else float('nan'):.2f}")
        print(f"gatehouse: rss_kib {rss0} -> {rss1}, slow heads dropped and reopened="
              f"{res['slow_reopened']}, websockets closed as slow consumers={slow_closed:.0f}")
        ok = errors == 0 and len(ms) > 0 and (args.goal_ms <= 0 or p99 < args.goal_ms)
        print(f"goal: p99 < {args.goal_ms:g} ms: " +
              ("not checked" if args.goal_ms <= 0 else "met" if ok else "MISSED"))
        code = 0 if ok else 1
    finally:
        stop_gatehouse(gh)
        shutil.rmtree(tmp, True)
    sys.exit(code)


if __name__ == "__main__":
    main()
