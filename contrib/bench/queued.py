#!/usr/bin/env python3
"""queued.py: what one queued delivery costs gatehouse (issue 14, item 2).

A gatehouse of its own (one worker, a free port on 127.0.0.1) gets --subs
WebSocket subscribers of a topic that never read (SO_RCVBUF 4 KiB) and a
publisher that sends messages of each of --sizes bytes, one at a time,
reading its own copy of each back (it is subscribed too), so that every
delivery has been queued when it goes on. The kernel's socket buffers take
the first part of each subscriber's queue (a MiB or so on loopback, which
RSS does not show), so first --warm MiB per subscriber are sent to fill
them; then the same number of messages again, all of which gatehouse holds:

  bytes per queued delivery = (RSS growth - those frames once) / deliveries

where "those frames once" is what the messages cost framed, a single time
(what a shared frame costs, whatever the number of subscribers). Then the
subscribers are reset and RSS is read again after the daemon's trim
interval: does the process give the burst back?

  python3 contrib/bench/queued.py --gatehouse build/gatehouse --plugins build/plugins
"""
import argparse
import base64
import os
import shutil
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "campaigns"))
from campaign import free_port, raise_nofile, rss_kib, start_gatehouse, stop_gatehouse  # noqa: E402


def frame(payload):
    """A masked client text frame (RFC 6455 §5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0xFE, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def server_frame_len(n):
    return n + (2 if n < 126 else 4)


def ws(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws/ps?topic=q HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(4096)
        if not b:
            sys.exit("queued: closed during the upgrade")
        head += b
    if not head.startswith(b"HTTP/1.1 101"):
        sys.exit(f"queued: upgrade refused: {head[:40]!r}")
    return s, head.split(b"\r\n\r\n", 1)[1]


def one_size(args, size):
    tmp = tempfile.mkdtemp(prefix="gh-queued-")
    port = free_port()
    gh = start_gatehouse(args.gatehouse, tmp, f"""plugins_dir: {os.path.abspath(args.plugins)}
workers: 1
access_log: off
error_log: {tmp}/error.log
log_level: info
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /ws/ps }}
    websocket: {{ plugin: pubsub, send_backlog: 64MiB, compression: off, idle_timeout: 0,
                 ping_interval: 0 }}
""", args.server_cpu)
    try:
        subs = [ws(port, rcvbuf=4096)[0] for _ in range(args.subs)]
        pub, left = ws(port)
        msg = frame(b"m" * size)
        each = server_frame_len(size)
        n = int(args.warm * 1048576) // each
        have, sent = len(left), 0
        rss0 = rss_kib(gh.pid)
        for phase in (0, 1):
            if phase == 1:
                before = rss_kib(gh.pid)
            for _ in range(n):
                pub.sendall(msg)
                sent += 1
                while have < sent * each:
                    b = pub.recv(1 << 20)
                    if not b:
                        sys.exit("queued: the publisher was closed")
                    have += len(b)
        peak = rss_kib(gh.pid)
        deliveries = args.subs * n
        once = n * each
        per = ((peak - before) * 1024 - once) / deliveries
        for s in subs:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        time.sleep(args.settle)
        after = rss_kib(gh.pid)
        print(f"queued size={size} frame={each} subs={args.subs} msgs={n}+{n}: RSS "
              f"{rss0} -> {before} -> {peak} KiB (+{peak - before} for the second {n}, "
              f"{once // 1024} KiB of them framed once): {per:.1f} bytes per queued "
              f"delivery (a copy each would be {each}); {args.settle:g} s after the "
              f"subscribers went: {after} KiB")
        pub.close()
    finally:
        stop_gatehouse(gh)
        shutil.rmtree(tmp, True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gatehouse", default="build/gatehouse")
    ap.add_argument("--plugins", default="build/plugins")
    ap.add_argument("--subs", type=int, default=1000)
    ap.add_argument("--warm", type=float, default=2.0,
                    help="MiB of frames per subscriber sent first, for the kernel's buffers")
    ap.add_argument("--sizes", default="100,1000")
    ap.add_argument("--settle", type=float, default=6.0,
                    help="seconds to wait for the daemon's trim (every 5 s)")
    ap.add_argument("--server-cpu", default=None)
    args = ap.parse_args()
    if raise_nofile() < args.subs + 100:
        sys.exit("queued: the open-files limit is too low for --subs")
    for size in (int(x) for x in args.sizes.split(",")):
        one_size(args, size)


if __name__ == "__main__":
    main()
