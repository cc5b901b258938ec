"""wsutil: a raw-socket WebSocket client for tests that must send what no
real client would (unmasked frames, RSV bits, bad UTF-8, bad close codes),
and config snippets for WebSocket routes."""
import base64
import os
import socket
import struct
import subprocess
import time
import zlib

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

    def recv_frame_ex(self):
        """(fin, rsv, opcode, payload) of the next server frame; rsv is the
        three RSV bits as frame() takes them (RSV1 = 4)."""
        b0, b1 = self._read_n(2)
        assert b1 & 0x80 == 0, "server frames must not be masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_n(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_n(8))[0]
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, self._read_n(n)

    def recv_frame(self):
        """(fin, opcode, payload) of the next server frame; asserts it is
        unmasked and has no RSV bit."""
        fin, rsv, op, data = self.recv_frame_ex()
        assert rsv == 0, "server set an RSV bit"
        return fin, op, data

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


# -- permessage-deflate (RFC 7692) -------------------------------------------------

PMD_TAIL = b"\x00\x00\xff\xff"
RSV1, RSV2, RSV3 = 4, 2, 1      # the `rsv` argument of frame(): bits 6, 5 and 4 of byte 0


def deflate_message(data, wbits=15, level=6, compressor=None):
    """One whole message compressed as RFC 7692 §7.2.1 says: raw DEFLATE,
    a sync flush, and the flush's trailing 00 00 ff ff removed. A fresh
    compressor unless one is passed (context takeover)."""
    if isinstance(data, str):
        data = data.encode()
    c = compressor or zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(PMD_TAIL), out[-8:]
    return out[:-len(PMD_TAIL)]


def inflate_message(data, wbits=15, decompressor=None):
    """A whole compressed message inflated (§7.2.2: the tail appended); a
    fresh decompressor with a wbits window unless one is passed (the
    server's context takeover). Raises zlib.error on bad data, and on data
    left after the stream's end."""
    d = decompressor or zlib.decompressobj(-wbits)
    out = d.decompress(data + PMD_TAIL)
    if d.unused_data:
        raise zlib.error("%d bytes after the end of the DEFLATE stream" % len(d.unused_data))
    return out


class PmdWS(RawWS):
    """A raw connection that may offer extensions: `extensions` is a list of
    Sec-WebSocket-Extensions field values, each sent as a header line of its
    own. Frames are read with their RSV bits (recv_frame_ex), so compressed
    frames can be seen for what they are on the wire."""

    def __init__(self, port, path="/ws/echo", extensions=(), host="127.0.0.1", timeout=5.0,
                 rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"Sec-WebSocket-Extensions: {v}" for v in extensions]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n")
        rows = head.decode("latin-1").split("\r\n")
        self.status = int(rows[0].split()[1])
        self.headers = {}
        self.extension_lines = []       # every Sec-WebSocket-Extensions line of the answer
        for line in rows[1:]:
            if line:
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()
                if k.strip().lower() == "sec-websocket-extensions":
                    self.extension_lines.append(v.strip())

    def extensions(self):
        """The answer's extensions, all lines joined; None when there is none."""
        return ", ".join(self.extension_lines) if self.extension_lines else None

    def recv_wire_message(self):
        """The next data message as sent: (opcode, rsv1, payload of its frames
        joined). Skips pings and pongs; asserts what RFC 7692 §6.1 asks of a
        sender: RSV1 on a message's first frame only, never on control
        frames or continuations, and never RSV2 or RSV3. A close frame
        raises AssertionError with its code."""
        first = None
        parts = []
        while True:
            fin, rsv, op, data = self.recv_frame_ex()
            assert rsv & (RSV2 | RSV3) == 0, "server set RSV2/RSV3: %d" % rsv
            if op >= 8:
                assert rsv == 0, "server set RSV1 on control frame %d" % op
                if op == OP_CLOSE:
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                    raise AssertionError("closed with %s %r instead of a message" % (code, data[2:]))
                continue
            if first is None:
                assert op in (OP_TEXT, OP_BINARY), "continuation without a message"
                first = (op, bool(rsv & RSV1))
            else:
                assert op == OP_CONT, "new message inside a message"
                assert rsv == 0, "server set RSV1 on a continuation"
            parts.append(data)
            if fin:
                return first[0], first[1], b"".join(parts)

    def recv_plain(self, wbits=15, decompressor=None):
        """The next data message (opcode, rsv1, payload), inflated when it
        came compressed."""
        op, rsv1, data = self.recv_wire_message()
        if rsv1:
            data = inflate_message(data, wbits, decompressor)
        return op, rsv1, data

    def expect_close_ex(self):
        """Reads until a close frame, through any data (compressed or not);
        returns (code or None, reason). The close frame must have no RSV bit."""
        while True:
            fin, rsv, op, data = self.recv_frame_ex()
            if op == OP_CLOSE:
                assert rsv == 0, "RSV bits on the server's close frame: %d" % rsv
                if len(data) >= 2:
                    return struct.unpack("!H", data[:2])[0], data[2:]
                return None, b""
