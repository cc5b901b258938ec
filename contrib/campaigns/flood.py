#!/usr/bin/env python3
"""flood.py: the connection-flood campaign (issue 16). A gatehouse of its
own with max_connections: --max gets --max idle connections from clients
(127.0.0.2 and up), and then:

  - a new client sends a request: does it get an answer, and when?
  - the balancer (127.0.0.1, a trusted peer) sends its health check: the same
  - the balancer sends its health check to a listener of its own (with a
    max_connections of its own, 64): is it answered, and when?
  - --free of the idle connections close: when are the first two answered?

It prints what each got and how long it waited, and gatehouse's own
figures (connections open, accepted, its RSS). gatehouse stops accepting at
max_connections, so the kernel holds new connections in the listen queue
until a place frees: nothing is refused, and nothing is answered until
then, except on a listener with a limit of its own. Exit status 0 when the
health check on its own listener was answered at the cap and the other two
after the places freed.

  python3 contrib/campaigns/flood.py --gatehouse build/gatehouse --max 5000"""
import argparse
import os
import shutil
import socket
import sys
import tempfile
import time

from campaign import free_port, raise_nofile, rss_kib, start_gatehouse, stop_gatehouse


class Waiter:
    """A request sent on a fresh connection; polled for its answer."""

    def __init__(self, port, path, source):
        self.t0 = time.monotonic()
        self.s = socket.socket()
        self.s.bind((source, 0))
        self.s.settimeout(5)
        self.s.connect(("127.0.0.1", port))     # completed by the kernel's queue
        self.s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        self.s.setblocking(False)
        self.answer, self.at = b"", None

    def poll(self):
        if self.at is not None:
            return True
        try:
            b = self.s.recv(4096)
        except BlockingIOError:
            return False
        except OSError:
            b = b""
        self.answer += b
        if b"\r\n" in self.answer or not b:
            self.at = time.monotonic() - self.t0
            return True
        return False

    def status(self):
        return self.answer.split(b"\r\n", 1)[0].decode("latin-1") or "(closed, no answer)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gatehouse", default="build/gatehouse")
    ap.add_argument("--max", type=int, default=5000)
    ap.add_argument("--free", type=int, default=10)
    ap.add_argument("--wait", type=float, default=3.0,
                    help="seconds to watch the waiting requests at the cap")
    args = ap.parse_args()

    if raise_nofile() < args.max + 100:
        sys.exit("flood: the open-files limit is too low for --max")
    tmp = tempfile.mkdtemp(prefix="gh-flood-")
    port = free_port()
    hport = free_port()
    while hport == port:
        hport = free_port()
    os.makedirs(os.path.join(tmp, "www"))
    with open(os.path.join(tmp, "www", "index.html"), "w") as f:
        f.write("hello\n")
    gh = start_gatehouse(args.gatehouse, tmp, f"""access_log: off
error_log: {tmp}/error.log
log_level: info
max_connections: {args.max}
listeners:
  - listen: 127.0.0.1:{port}
    trusted_proxies: [127.0.0.1/32]
  - listen: 127.0.0.1:{hport}
    trusted_proxies: [127.0.0.1/32]
    max_connections: 64
routes:
  - match: {{ path: /healthz }}
    health: {{}}
  - match: {{ prefix: / }}
    static: {{ root: {tmp}/www }}
""")
    code = 1
    idle = []
    try:
        rss0 = rss_kib(gh.pid)
        t0 = time.monotonic()
        for i in range(args.max):
            s = socket.socket()
            s.bind(("127.0.0.%d" % (2 + i % 40), 0))
            s.connect(("127.0.0.1", port))
            idle.append(s)
        # every one of them accepted: a request on the last one is answered
        last = idle[-1]
        last.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        last.settimeout(10)
        if not last.recv(4096).startswith(b"HTTP/1.1 200"):
            sys.exit("flood: the last idle connection was not served")
        fill_s = time.monotonic() - t0
        rss1 = rss_kib(gh.pid)
        client = Waiter(port, "/", "127.0.0.200")
        check = Waiter(port, "/healthz", "127.0.0.1")
        own = Waiter(hport, "/healthz", "127.0.0.1")
        end = time.monotonic() + args.wait
        while time.monotonic() < end and not all([w.poll() for w in (client, check, own)]):
            time.sleep(0.001)
        at_cap = [(w.at, w.status()) for w in (client, check, own)]
        freed_at = time.monotonic()
        for s in idle[:args.free]:
            s.close()
        end = time.monotonic() + 10
        while time.monotonic() < end and not all([w.poll() for w in (client, check, own)]):
            time.sleep(0.005)
        print(f"flood max_connections={args.max}: filled in {fill_s:.1f} s, gatehouse RSS "
              f"{rss0} -> {rss1} KiB")
        for name, w, (at, st) in (("new client", client, at_cap[0]),
                                  ("health check", check, at_cap[1]),
                                  ("health check on its own listener", own, at_cap[2])):
            if at is not None:
                print(f"{name}: at the cap: {st} after {at * 1000:.0f} ms")
            else:
                print(f"{name}: at the cap: nothing within {args.wait:g} s; after {args.free} "
                      f"closed: " + (f"{w.status()} {(w.at - (freed_at - w.t0)) * 1000:.0f} ms "
                                     f"later" if w.at is not None else "still nothing"))
        code = 0 if all(w.at is not None and w.status().startswith("HTTP/1.1 200")
                        for w in (client, check)) and at_cap[2][0] is not None and \
            at_cap[2][1].startswith("HTTP/1.1 200") else 1
    finally:
        for s in idle:
            s.close()
        stop_gatehouse(gh)
        shutil.rmtree(tmp, True)
    sys.exit(code)


if __name__ == "__main__":
    main()
