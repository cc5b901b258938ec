"""systemd's notify protocol: READY=1 once listeners are up, STOPPING=1 when
the drain starts, read from a datagram socket of our own."""
import os
import signal
import socket

import ghtest

CONFIG = """
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /healthz }}
    health: {{}}
"""


class NotifyTest(ghtest.TestCase):

    def run_with(self, address, bind_to):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(bind_to)
        sock.settimeout(10)
        env = dict(os.environ, NOTIFY_SOCKET=address)
        port = ghtest.free_port()
        g = ghtest.Gatehouse(CONFIG.format(port=port), self.tmp, env=env)
        self.addCleanup(g.__exit__)
        msg = sock.recv(4096).decode()
        self.assertIn("READY=1", msg.split("\n"))
        # ready means the listener accepts
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        g.send_signal(signal.SIGTERM)
        msg = sock.recv(4096).decode()
        self.assertIn("STOPPING=1", msg.split("\n"))
        self.assertEqual(g.proc.wait(10), 0)

    def test_ready_and_stopping_on_a_path_socket(self):
        path = self.path("notify.sock")
        self.run_with(path, path)

    def test_ready_and_stopping_on_an_abstract_socket(self):
        name = "gh-notify-%d-%d" % (os.getpid(), ghtest.free_port())
        self.run_with("@" + name, "\0" + name)

    def test_without_notify_socket_nothing_breaks(self):
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        port = ghtest.free_port()
        g = ghtest.Gatehouse(CONFIG.format(port=port), self.tmp, env=env)
        self.addCleanup(g.__exit__)
        g.wait_ready()
        self.assertEqual(g.stop(), 0)


if __name__ == "__main__":
    ghtest.main()
