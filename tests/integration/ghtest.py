"""ghtest: start the real gatehouse daemon for integration tests.

Each test gets its own temporary folder, a config written there, free ports
on 127.0.0.0/8, and a daemon whose error log is a file we can read. Readiness
is the daemon's own "ready:" log line, never a sleep.
"""
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

GH_BIN = os.environ.get("GH_BIN", "build/dev/gatehouse")
GH_SRC = os.environ.get("GH_SRC", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
GH_BUILD = os.environ.get("GH_BUILD", os.path.join(GH_SRC, "build", "dev"))


def abi_version():
    """(major, minor) of the plugin ABI, read from the header the build uses."""
    with open(os.path.join(GH_SRC, "plugins", "include", "gatehouse", "plugin.h")) as f:
        text = f.read()
    return tuple(int(re.search(rf"#define GH_PLUGIN_ABI_{k} (\d+)", text).group(1))
                 for k in ("MAJOR", "MINOR"))


ABI_MAJOR, ABI_MINOR = abi_version()
ABI = f"{ABI_MAJOR}.{ABI_MINOR}"


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host="127.0.0.1"):
    """A port nobody listens on now, chosen at random BELOW the kernel's
    ephemeral range: a port from bind(0) lies inside that range, where any
    client socket of a test running in parallel may take it as its source
    port before the server under test binds it ("Address already in use").
    Falls back to bind(0) when no such range is left."""
    lo, _ = _ephemeral_range()
    if lo > 12000:
        rng = random.Random()             # seeded from the OS: differs per process
        for _ in range(200):
            port = rng.randrange(10000, lo)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_cert(tmp):
    """A self-signed certificate for localhost made with the openssl CLI.
    Returns (cert, key, both): both is cert and key in one PEM, as HAProxy's
    `crt` wants."""
    key, crt = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    both = os.path.join(tmp, "both.pem")
    with open(both, "w") as f, open(crt) as c, open(key) as k:
        f.write(c.read() + k.read())
    return crt, key, both


def wait_port(port, host="127.0.0.1", timeout=10):
    """Waits until something accepts connections on host:port."""
    def up():
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            return False
    wait_for(up, timeout, "port %d" % port)


def read_text(path):
    """The file's text, or "" when it does not exist yet."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_lines(path, n, timeout=10.0):
    """Waits until path has at least n lines; returns them."""
    return wait_for(lambda: len(read_text(path).splitlines()) >= n and read_text(path).splitlines(),
                    timeout, "%d lines in %s" % (n, path))


def wait_for(pred, timeout=10.0, what="condition"):
    """Polls pred() until it returns a true value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def with_workers(config):
    """config, run with GH_TEST_WORKERS workers when that is set (the tsan
    preset: 4) and the config does not say workers: itself."""
    n = os.environ.get("GH_TEST_WORKERS")
    if not n or re.search(r"^\s*workers:", config, re.M):
        return config
    return config + f"\nworkers: {n}\n"       # last: the lines above keep their numbers


class Gatehouse:
    """A running daemon. Use as a context manager or call stop()."""

    def __init__(self, config, tmp, name="gateway.yaml", extra_args=(), env=None):
        self.tmp = tmp
        self.conf = os.path.join(tmp, name)
        self.rewrite(config)
        self.errlog = os.path.join(tmp, "error.log")
        self._err = open(self.errlog, "ab")
        self.proc = subprocess.Popen([GH_BIN, "-c", self.conf, *extra_args],
                                     stdout=subprocess.DEVNULL, stderr=self._err,
                                     env=env)
        self._ready_mark = 0

    def rewrite(self, config):
        """Writes config as the daemon's file (for a reload)."""
        with open(self.conf, "w") as f:
            f.write(with_workers(config))

    def wait_ready(self, timeout=10.0, after=0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("gatehouse exited with %s:\n%s" % (self.proc.returncode, self.log()))
            return self.log().count("ready: listening") > after
        wait_for(ready, timeout, "gatehouse to be ready")
        return self

    def log(self):
        with open(self.errlog, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, text, timeout=10.0, count=1):
        wait_for(lambda: self.log().count(text) >= count, timeout, "log line %r" % text)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def check_sanitizers(self):
        """A ThreadSanitizer report in the log fails the test, whether or
        not it stopped the process."""
        if "WARNING: ThreadSanitizer" in self.log():
            raise AssertionError("ThreadSanitizer report:\n" + self.log()[-8000:])

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("gatehouse did not exit within %ss after %s" % (timeout, sig))
        self._err.close()
        self.check_sanitizers()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err.close()
        self.check_sanitizers()


class TestCase(unittest.TestCase):
    """A unittest case with a private temporary folder."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gh-it-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start(self, config, **kw):
        g = Gatehouse(config, self.tmp, **kw)
        self.addCleanup(g.__exit__)
        return g.wait_ready()

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, rel, data, mode=0o644):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    def http_app(self, body=b"app", delay=0.0):
        """A plain upstream for the test's life: every GET is answered 200
        with body after delay seconds (HTTP/1.1, kept alive). Returns its
        port."""
        import http.server
        import threading

        class App(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
        threading.Thread(target=app.serve_forever, daemon=True).start()
        self.addCleanup(app.server_close)
        self.addCleanup(app.shutdown)
        return app.server_address[1]


def rss_env():
    """The environment for a gatehouse whose RSS is measured: under ASan,
    freed memory waits in its quarantine (256 MiB) before reuse, and RSS
    would measure that, not what gatehouse holds."""
    env = dict(os.environ)
    if "ASAN_OPTIONS" in env:
        env["ASAN_OPTIONS"] += ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
    return env


METRIC_LINE = re.compile(r'^(gatehouse_[a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+)$')


def scrape(port, host="127.0.0.1"):
    """gatehouse's /metrics on port as {name{labels}: value}; asserts the
    Prometheus text format on every line."""
    import urllib.request
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = METRIC_LINE.match(line)
        assert m, "not exposition format: %r" % line
        values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return values


def raw_request(port, data, host="127.0.0.1", timeout=5.0, read_until_close=True, source=None):
    """Sends bytes, returns everything received until the server closes
    (a reset counts as a close: a server that refuses a connection with
    unread input in it resets)."""
    s = socket.create_connection((host, port), timeout=timeout, source_address=source)
    with contextlib.closing(s):
        if data:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                if read_until_close:
                    raise
                break
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


def main():
    unittest.main(verbosity=2)
