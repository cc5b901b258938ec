"""status_viewers.py PORT N READY_FILE [PATH]: N status pages' worth of feed
requests (PATH: /status?format=json; another path for a baseline).

Each viewer keeps one HTTP connection to 127.0.0.1:PORT and fetches
/status?format=json once a second on a fixed schedule (as the page does:
never two at once), checking that every answer is a 200 holding JSON. The
viewers start a tenth of a second apart, as pages opened by hand would.
READY_FILE is created once every viewer has had its first document. On
SIGTERM prints one line:

    viewers=N docs=D failed=F avg_bytes=B avg_ms=T
"""
import http.client
import json
import signal
import sys
import threading
import time

port, n, ready_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
path = sys.argv[4] if len(sys.argv) > 4 else "/status?format=json"
stop = threading.Event()
lock = threading.Lock()
totals = {"docs": 0, "failed": 0, "bytes": 0, "secs": 0.0}
first = threading.Barrier(n + 1)


def viewer(i):
    time.sleep(i / 10)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    due = time.monotonic()
    started = False
    while not stop.is_set():
        t0 = time.monotonic()
        ok, size = False, 0
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            size = len(body)
            ok = r.status == 200 and (path != "/status?format=json" or
                                      isinstance(json.loads(body), dict))
        except (OSError, ValueError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with lock:
            totals["docs"] += 1
            totals["failed"] += 0 if ok else 1
            totals["bytes"] += size
            totals["secs"] += time.monotonic() - t0
        if not started:
            started = True
            first.wait()
        due += 1.0
        stop.wait(max(0.0, due - time.monotonic()))


def on_term(*_):
    stop.set()


signal.signal(signal.SIGTERM, on_term)
threads = [threading.Thread(target=viewer, args=(i,), daemon=True) for i in range(n)]
for t in threads:
    t.start()
first.wait()
open(ready_file, "w").close()
while not stop.is_set():
    stop.wait(0.5)
for t in threads:
    t.join(5)
d = max(totals["docs"], 1)
print(f"viewers={n} docs={totals['docs']} failed={totals['failed']} "
      f"avg_bytes={totals['bytes'] // d} avg_ms={1000 * totals['secs'] / d:.2f}")
