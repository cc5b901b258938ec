"""The plugin ABI's host functions, seen through the probe test plugin
(tests/integration/plugins/probe.c, compiled here against the SDK header):
request data, subprotocols, open refusal, close from the plugin, the
close callback's codes, timers, typed config, user data and topics with
their per-plugin namespaces."""
import os
import re

import ghtest
import wsutil
from wsutil import OP_TEXT, RawWS, close_frame, frame


class WsAbiTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.plugins = self.path("plugins")
        os.makedirs(self.plugins)
        os.chmod(self.plugins, 0o755)
        wsutil.build_plugin(os.path.join(self.plugins, "probe.so"))
        os.symlink(os.path.join(wsutil.plugins_dir(), "pubsub.so"),
                   os.path.join(self.plugins, "pubsub.so"))
        self.port = ghtest.free_port()
        self.gh = self.start(f"""
plugins_dir: {self.plugins}
log_level: debug
listeners:
  - listen: 127.0.0.1:{self.port}
routes:
  - match: {{ prefix: /probe/ }}
    websocket:
      plugin: probe
      config:
        greeting: hi there
        count: 42
        loud: yes
        limit: 64KiB
        every: 2m
        names: [ann, bob, cy]
        nested: {{ deep: 1 }}
  - match: {{ path: /ps }}
    websocket: {{ plugin: pubsub }}
""")

    def ws(self, path="/probe/x", **kw):
        ws = RawWS(self.port, path, **kw)
        self.addCleanup(ws.close)
        return ws

    def text(self, ws):
        op, data = ws.recv_message()
        self.assertEqual(op, OP_TEXT)
        return data.decode()

    def say(self, ws, msg):
        ws.send(frame(OP_TEXT, msg))
        return self.text(ws)

    def test_open_sees_path_query_header_client_and_subprotocol(self):
        ws = self.ws("/probe/room?a=1&b=%20", headers={
            "X-Probe": "  value 1  ", "Sec-WebSocket-Protocol": "other, probe.v1, probe.v2"})
        self.assertEqual(ws.status, 101)
        self.assertEqual(ws.headers["sec-websocket-protocol"], "probe.v2")   # server's order
        port = ws.sock.getsockname()[1]
        hello = self.text(ws)
        self.assertRegex(hello, rf"^open path=/probe/room query=a=1&b=%20 proto=probe\.v2 "
                                rf"addr=127\.0\.0\.1 port={port} hdr=value 1 id=\d+$")

    def test_no_common_subprotocol_means_none(self):
        ws = self.ws(headers={"Sec-WebSocket-Protocol": "chat"})
        self.assertNotIn("sec-websocket-protocol", ws.headers)
        self.assertIn("proto=- ", self.text(ws))

    def test_open_may_refuse_with_a_close_code(self):
        ws = self.ws("/probe/x?refuse")
        self.assertEqual(ws.status, 101)
        self.assertEqual(ws.expect_close(), (4001, b""))
        ws.send(close_frame(4001))
        self.assertTrue(ws.at_eof(5))
        self.assertNotIn("probe closed", self.gh.log())      # no close callback

    def test_plugin_close_sends_its_code_and_calls_close_once(self):
        ws = self.ws()
        self.text(ws)
        ws.send(frame(OP_TEXT, "close"))
        self.assertEqual(ws.expect_close(), (4002, b"asked"))
        ws.send(close_frame(4002))
        self.assertTrue(ws.at_eof(5))
        self.gh.wait_log("probe closed code=4002")
        log = self.gh.log()
        self.assertIn("close rc=0 again=-107 send-after=-107", log)
        self.assertEqual(log.count("probe closed"), 1)

    def test_close_callback_gets_the_peer_code_and_reason(self):
        ws = self.ws()
        self.text(ws)
        ws.send(close_frame(4100, "see you".encode()))
        self.assertEqual(ws.expect_close()[0], 4100)
        self.gh.wait_log("probe closed code=4100 reason=see you")

    def test_close_callback_gets_1006_when_tcp_drops(self):
        ws = self.ws()
        self.text(ws)
        ws.close()
        self.gh.wait_log("probe closed code=1006")

    def test_timer_runs_on_the_loop(self):
        ws = self.ws()
        self.text(ws)
        ws.send(frame(OP_TEXT, "timer"))
        self.assertEqual(self.text(ws), "tick")

    def test_typed_config_lookups(self):
        ws = self.ws()
        self.text(ws)
        self.assertEqual(self.say(ws, "config"),
                         "greeting=hi there count=42 loud=1 limit=65536 every=120000 "
                         "names=3:ann,bob nested=yes")

    def test_user_data_buffered_and_bad_text(self):
        ws = self.ws()
        self.text(ws)
        self.assertRegex(self.say(ws, "buffered"), r"^buffered=\d+$")
        self.assertEqual(self.say(ws, "badtext"), "badtext=-22")
        self.assertEqual(self.say(ws, "plain"), "plain")

    def test_topics_subscribe_publish_unsubscribe(self):
        a, b, c = self.ws(), self.ws(), self.ws()
        for w in (a, b, c):
            self.text(w)
        self.assertEqual(self.say(a, "sub news"), "sub=0")
        self.assertEqual(self.say(a, "sub news"), "sub=0")     # twice is a no-op
        self.assertEqual(self.say(b, "sub news"), "sub=0")
        c.send(frame(OP_TEXT, "pub news extra extra"))
        self.assertEqual(self.text(a), "extra extra")
        self.assertEqual(self.text(b), "extra extra")
        self.assertEqual(self.say(b, "unsub news"), "unsub=0")
        self.assertEqual(self.say(b, "unsub news"), "unsub=-2")
        c.send(frame(OP_TEXT, "pub news second"))
        self.assertEqual(self.text(a), "second")
        self.assertEqual(self.say(b, "still quiet?"), "still quiet?")

    def test_topics_of_two_plugins_never_mix(self):
        probe = self.ws()
        self.text(probe)
        self.assertEqual(self.say(probe, "sub shared"), "sub=0")
        ps = self.ws("/ps?topic=shared")
        ps.send(frame(OP_TEXT, "from pubsub"))
        self.assertEqual(self.text(ps), "from pubsub")          # pubsub's own topic
        probe.send(frame(OP_TEXT, "pub shared from probe"))
        self.assertEqual(self.text(probe), "from probe")
        ps.send(frame(OP_TEXT, "again"))
        self.assertEqual(self.text(ps), "again")                # not "from probe"
        self.assertEqual(self.say(probe, "ping?"), "ping?")      # not "from pubsub"

    def test_connections_closing_drop_their_subscriptions(self):
        a = self.ws()
        self.text(a)
        self.assertEqual(self.say(a, "sub gone"), "sub=0")
        a.send(close_frame(1000))
        a.expect_close()
        self.gh.wait_log("probe closed code=1000")
        b = self.ws()
        self.text(b)
        b.send(frame(OP_TEXT, "pub gone nobody"))
        self.assertEqual(self.say(b, "ok"), "ok")


if __name__ == "__main__":
    ghtest.main()
