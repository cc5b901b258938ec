"""The echo route driven by node's `ws` 8 (pinned in tests/package.json;
`npm ci` in tests/ installs it), a second independent client: lengths,
fragments, ping/pong, close codes, 1009, the origin check and answering
the server's pings."""
import json
import os
import shutil
import subprocess

import ghtest
import wsutil

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.join(HERE, "..", "node_modules", "ws")

ROUTES = """
  - match: { path: /ws/echo }
    websocket: { plugin: echo, max_message: 2MiB, send_backlog: 8MiB }
  - match: { path: /ws/small }
    websocket: { plugin: echo, max_message: 1000 }
  - match: { path: /ws/ping }
    websocket: { plugin: echo, ping_interval: 300ms, pong_timeout: 500ms, idle_timeout: 1s }
"""


class WsNodeTest(ghtest.TestCase):

    @classmethod
    def setUpClass(cls):
        # a missing client is a failure, not a skip: the suite must test it
        if shutil.which("node") is None:
            raise AssertionError("node is not installed (bash contrib/quickstart.sh test installs it)")
        if not os.path.isdir(NODE_MODULES):
            raise AssertionError("node ws is not installed: run `npm ci` in tests/")

    def setUp(self):
        super().setUp()
        self.port = ghtest.free_port()
        self.gh = self.start(wsutil.ws_config(self.port, self.tmp, ROUTES))

    def node(self, scenario):
        out = subprocess.run(["node", os.path.join(HERE, "ws_node_client.js"), str(self.port),
                              scenario], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def test_text_and_binary_of_every_length_class(self):
        self.assertEqual(self.node("sizes"), {"sizes": 6, "close": 1000})

    def test_fragmented_sends(self):
        self.assertEqual(self.node("fragments"), {"fragments": "ok"})

    def test_ping_pong(self):
        self.assertEqual(self.node("ping"), {"pong": "node-ping"})

    def test_close_codes_are_echoed(self):
        self.assertEqual(self.node("closecodes"), {"codes": [1000, 1001, 3001, 4321]})

    def test_message_over_max_message_closes_with_1009(self):
        self.assertEqual(self.node("toobig"), {"code": 1009})

    def test_origin_refusal(self):
        self.assertEqual(self.node("origin"), {"evil": "status 403", "same": "open"})

    def test_client_answers_server_pings_and_stays_open(self):
        r = self.node("servers_ping")
        self.assertGreaterEqual(r["pings"], 3)
        self.assertEqual(r["echo"], "alive")


if __name__ == "__main__":
    ghtest.main()
