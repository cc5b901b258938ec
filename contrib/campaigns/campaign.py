"""campaign.py: what the campaign scripts of this folder share: free ports,
the open-files limit, a gatehouse of their own started and stopped, its
RSS."""
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raise_nofile():
    """Raises the soft open-files limit to the hard one; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


PAGE_REQUEST = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"


def get_page(s):
    """Asks for the campaigns' page (index.html holding "hello\\n") on the
    connected socket s and reads the answer; raises OSError when s closes."""
    s.sendall(PAGE_REQUEST)
    got = b""
    while not got.endswith(b"hello\n"):
        b = s.recv(4096)
        if not b:
            raise ConnectionError("closed")
        got += b
    return got


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_gatehouse(binary, tmp, config, cpu=None):
    """Writes config (its error_log must be TMP/error.log at level info)
    to tmp/gateway.yaml and starts binary on it (pinned to cpu with taskset
    when given); returns the process once it logged that it is ready."""
    path = os.path.join(tmp, "gateway.yaml")
    with open(path, "w") as f:
        f.write(config)
    cmd = [os.path.abspath(binary), "-c", path]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + cmd     # taskset execs: the same pid
    gh = subprocess.Popen(cmd, preexec_fn=raise_nofile)
    deadline = time.monotonic() + 10
    while True:
        try:
            with open(os.path.join(tmp, "error.log")) as f:
                if "ready: listening" in f.read():
                    return gh
        except FileNotFoundError:
            pass
        if gh.poll() is not None or time.monotonic() > deadline:
            stop_gatehouse(gh)
            sys.exit("campaign: gatehouse did not start")
        time.sleep(0.05)


def stop_gatehouse(gh):
    if gh.poll() is None:
        gh.send_signal(signal.SIGTERM)
    try:
        gh.wait(30)
    except subprocess.TimeoutExpired:
        gh.kill()
        gh.wait()
