"""wsutil: a raw-socket WebSocket client for tests that must send what no
real client would (unmasked frames, RSV bits, bad UTF-8, bad close codes),
and config snippets for WebSocket routes."""
import base64
import os
import socket
import struct
import subprocess
import time

import ghtest

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def plugins_dir():
    return os.path.join(ghtest.GH_BUILD, "plugins")


def ws_config(port, tmp, routes, extra=""):
    """A config with one listener and the given routes (YAML text)."""
    return f"""
plugins_dir: {plugins_dir()}
access_log: {tmp}/access.log
error_log: stderr
log_level: debug
{extra}
listeners:
  - listen: 127.0.0.1:{port}
routes:
{routes}
"""


def build_plugin(out_path, source=None, defines=None, mode=0o755):
    """Compiles a plugin (default: plugins/probe.c) against the SDK header
    in the source tree, as a plugin author would, into out_path."""
    source = source or os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins", "probe.c")
    cc = os.environ.get("CC", "cc")
    args = [cc, "-std=gnu11", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra",
            "-Werror", "-Wl,--no-undefined",
            "-I", os.path.join(ghtest.GH_SRC, "plugins", "include"), "-o", out_path, source]
    for k, v in (defines or {}).items():
        args.insert(1, f"-D{k}" if v is None else f"-D{k}={v}")
    subprocess.run(args, check=True, capture_output=True, text=True)
    os.chmod(out_path, mode)
    return out_path


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """One client frame; length overrides the encoded payload length."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


def close_frame(code=None, reason=b"", **kw):
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return frame(OP_CLOSE, payload, **kw)


class RawWS:
    """A handshaken connection read frame by frame."""

    def __init__(self, port, path="/ws/echo", headers=None, host="127.0.0.1", timeout=5.0,
                 rcvbuf=None, source=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
        hdrs.update(headers or {})
        req = f"GET {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in hdrs.items() if v is not None) + "\r\n"
        self.sock.sendall(req.encode())
        head = self._read_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            if line:
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()

    def _read_until(self, mark):
        while mark not in self.buf:
            b = self.sock.recv(65536)
            if not b:
                raise EOFError("closed before %r" % mark)
            self.buf += b
        i = self.buf.index(mark) + len(mark)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_n(self, n):
        while len(self.buf) < n:
            b = self.sock.recv(max(65536, n - len(self.buf)))
            if not b:
                raise EOFError("closed mid-frame")
            self.buf += b
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        self.sock.sendall(data)

    def recv_frame(self):
        """(fin, opcode, payload) of the next server frame; asserts it is unmasked."""
        b0, b1 = self._read_n(2)
        assert b1 & 0x80 == 0, "server frames must not be masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_n(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_n(8))[0]
        assert b0 & 0x70 == 0, "server set an RSV bit"
        return bool(b0 & 0x80), b0 & 0x0F, self._read_n(n)

    def recv_message(self):
        """The next data message (opcode, payload), skipping pings."""
        while True:
            fin, op, data = self.recv_frame()
            if op in (OP_PING, OP_PONG):
                continue
            return op, data

    def expect_close(self, skip_data=True):
        """Reads until a close frame; returns (code or None, reason)."""
        while True:
            fin, op, data = self.recv_frame()
            if op == OP_CLOSE:
                if len(data) >= 2:
                    return struct.unpack("!H", data[:2])[0], data[2:]
                return None, b""
            if not skip_data and op in (OP_TEXT, OP_BINARY):
                raise AssertionError("data frame before the close: %r" % data[:50])

    def at_eof(self, timeout=5.0):
        """True when the server closes the TCP connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                b = self.sock.recv(65536)
                if not b:
                    return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def wait_eof(sock, timeout):
    """Seconds until the peer closes sock (reading and dropping data), or None."""
    start = time.monotonic()
    sock.settimeout(timeout)
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                return time.monotonic() - start
    except socket.timeout:
        return None
    except ConnectionResetError:
        return time.monotonic() - start
