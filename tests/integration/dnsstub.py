"""A DNS server of the tests' own on 127.0.0.1 (UDP): it answers A queries
for one name with the address it is told, AAAA queries with no record,
and can be told to go silent. Enough for a resolver to follow a name from
one address to another."""
import socket
import struct
import threading


class DnsStub:

    def __init__(self, name):
        self.name = name.lower().rstrip(".")
        self.answer = None          # an IPv4 address as text, or None: NXDOMAIN
        self.silent = False         # drop every query
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self):
        self._stop = True
        self.sock.close()

    def _serve(self):
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(2048)
            except OSError:
                return
            try:
                reply = self._reply(data)
            except (ValueError, IndexError, struct.error):
                continue
            if reply is not None and not self.silent:
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    return

    def _reply(self, q):
        qid, flags, qd = struct.unpack("!HHH", q[:6])
        if qd != 1 or flags & 0x8000:
            return None
        self.queries += 1
        labels, i = [], 12
        while q[i] != 0:
            labels.append(q[i + 1:i + 1 + q[i]].decode("ascii"))
            i += 1 + q[i]
        qtype, qclass = struct.unpack("!HH", q[i + 1:i + 5])
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        rcode, answers = 0, b""
        if name != self.name or self.answer is None:
            rcode = 3                                   # NXDOMAIN
        elif qtype == 1 and qclass == 1:                # A IN
            answers = (struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) +
                       socket.inet_aton(self.answer))
        ancount = 1 if answers else 0
        head = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, ancount, 0, 0)
        return head + question + answers
