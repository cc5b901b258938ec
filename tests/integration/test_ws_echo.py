"""The WebSocket engine against the echo plugin, driven by Debian's
python3-websockets (a real, independent client): the handshake and its
refusals, messages of every length class, fragmentation, ping/pong, the
close handshake, max_message, and the access-log line of an upgrade."""
import asyncio
import base64
import os
import socket

import websockets
import websockets.exceptions

import ghtest
import wsutil

SIZES = [0, 125, 126, 65535, 65536, 1 << 20]

ROUTES = """
  - match: { path: /ws/echo }
    websocket: { plugin: echo, max_message: 2MiB, send_backlog: 8MiB }
  - match: { path: /ws/small }
    websocket: { plugin: echo, max_message: 1000 }
  - match: { path: /ws/any }
    websocket: { plugin: echo, origins: "*" }
  - match: { path: /ws/list }
    websocket: { plugin: echo, origins: ["https://app.example", "http://localhost:3000"] }
  - match: { path: /healthz }
    health: {}
"""


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


class WsEchoTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.port = ghtest.free_port()
        self.gh = self.start(wsutil.ws_config(self.port, self.tmp, ROUTES))

    def url(self, path="/ws/echo"):
        return f"ws://127.0.0.1:{self.port}{path}"

    def connect(self, path="/ws/echo", **kw):
        kw.setdefault("max_size", None)
        kw.setdefault("ping_interval", None)
        return websockets.connect(self.url(path), **kw)

    # -- messages ----------------------------------------------------------

    def test_text_and_binary_of_every_length_class_come_back_unchanged(self):
        async def go():
            async with self.connect() as ws:
                for n in SIZES:
                    text = ("é" * (n // 2) + "a" * (n % 2))
                    await ws.send(text)
                    self.assertEqual(await ws.recv(), text, n)
                    data = os.urandom(n)
                    await ws.send(data)
                    self.assertEqual(await ws.recv(), data, n)
        run(go())

    def test_fragmented_messages_arrive_whole(self):
        async def go():
            async with self.connect() as ws:
                await ws.send(["frag", "ment", "ed ", "✓"])
                self.assertEqual(await ws.recv(), "fragmented ✓")
                parts = [os.urandom(70000), b"", os.urandom(3), os.urandom(126)]
                await ws.send(parts)
                self.assertEqual(await ws.recv(), b"".join(parts))
        run(go())

    def test_many_messages_in_flight_keep_their_order(self):
        async def go():
            async with self.connect() as ws:
                for i in range(500):
                    await ws.send(f"m{i}")
                for i in range(500):
                    self.assertEqual(await ws.recv(), f"m{i}")
        run(go())

    def test_ping_is_answered_with_the_same_payload(self):
        async def go():
            async with self.connect() as ws:
                waiter = await ws.ping(b"\x00payload\xff")
                await asyncio.wait_for(waiter, 5)
                await ws.send("after ping")
                self.assertEqual(await ws.recv(), "after ping")
        run(go())

    # -- close -------------------------------------------------------------

    def test_close_codes_are_echoed(self):
        async def go(code, reason):
            ws = await self.connect()
            await ws.close(code, reason)
            return ws.close_code
        for code in (1000, 1001, 3000, 4000, 4999):
            self.assertEqual(run(go(code, "bye")), code)

    def test_message_over_max_message_closes_with_1009(self):
        async def go():
            async with self.connect("/ws/small") as ws:
                await ws.send("x" * 1000)
                self.assertEqual(len(await ws.recv()), 1000)
                await ws.send("x" * 1001)
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await ws.recv()
                return ws.close_code
        self.assertEqual(run(go()), 1009)

    def test_fragments_summing_over_max_message_close_with_1009(self):
        async def go():
            async with self.connect("/ws/small") as ws:
                await ws.send(["y" * 600, "y" * 600])
                with self.assertRaises(websockets.exceptions.ConnectionClosed):
                    await ws.recv()
                return ws.close_code
        self.assertEqual(run(go()), 1009)

    # -- handshake ----------------------------------------------------------

    def raw_upgrade(self, path="/ws/echo", **override):
        hdrs = {"Host": f"127.0.0.1:{self.port}", "Upgrade": "websocket",
                "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
        hdrs.update(override)
        req = f"GET {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in hdrs.items() if v is not None) + "\r\n"
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(req.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            b = s.recv(4096)
            if not b:
                break
            data += b
        s.close()
        head = data.split(b"\r\n\r\n")[0].decode("latin-1")
        return int(head.split()[1]), head

    def test_upgrade_answers_101_with_the_accept_key(self):
        ws = wsutil.RawWS(self.port, headers={"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        self.assertEqual(ws.status, 101)
        self.assertEqual(ws.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertEqual(ws.headers["upgrade"].lower(), "websocket")
        self.assertEqual(ws.headers["connection"].lower(), "upgrade")
        self.assertNotIn("sec-websocket-protocol", ws.headers)
        ws.close()

    def test_wrong_version_gets_426_naming_version_13(self):
        for v in ("8", "14", None):
            status, head = self.raw_upgrade(**{"Sec-WebSocket-Version": v})
            self.assertEqual(status, 426, head)
            self.assertIn("Sec-WebSocket-Version: 13", head)

    def test_bad_key_gets_400(self):
        for key in ("short", base64.b64encode(os.urandom(15)).decode(),
                    base64.b64encode(os.urandom(17)).decode(), None):
            status, head = self.raw_upgrade(**{"Sec-WebSocket-Key": key})
            self.assertEqual(status, 400, (key, head))

    def test_plain_get_on_a_websocket_route_gets_426(self):
        status, head = self.raw_upgrade(Upgrade=None, Connection=None)
        self.assertEqual(status, 426)
        self.assertIn("Upgrade: websocket", head)

    def test_upgrade_without_connection_upgrade_gets_400(self):
        status, _ = self.raw_upgrade(Connection="keep-alive")
        self.assertEqual(status, 400)

    def test_token_lists_are_matched_case_insensitively(self):
        status, head = self.raw_upgrade(Upgrade="foo/1, WebSocket", Connection="keep-alive, UPGRADE")
        self.assertEqual(status, 101, head)

    def test_foreign_origin_is_refused_with_403_by_default(self):
        async def go(origin, path="/ws/echo"):
            try:
                async with self.connect(path, origin=origin) as ws:
                    await ws.send("hi")
                    return await ws.recv()
            except websockets.exceptions.InvalidStatusCode as e:
                return e.status_code
        self.assertEqual(run(go("http://evil.example")), 403)
        self.assertEqual(run(go(f"http://127.0.0.1:{self.port + 1}")), 403)
        self.assertEqual(run(go(f"http://127.0.0.1:{self.port}")), "hi")
        self.assertEqual(run(go("http://evil.example", "/ws/any")), "hi")
        self.assertEqual(run(go("https://app.example", "/ws/list")), "hi")
        self.assertEqual(run(go("http://localhost:3000", "/ws/list")), "hi")
        self.assertEqual(run(go("https://evil.example", "/ws/list")), 403)

    def test_upgrade_is_one_access_log_line_with_101(self):
        async def go():
            async with self.connect() as ws:
                await ws.send("x")
                await ws.recv()
        run(go())
        def log():
            with open(self.path("access.log")) as f:
                return f.read()
        ghtest.wait_for(lambda: " 101 " in log(), 5, "101 line")
        lines = [l for l in log().splitlines() if "/ws/echo" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn('"GET /ws/echo HTTP/1.1" 101', lines[0])

    def test_other_routes_still_work_beside_websocket(self):
        status, head = self.raw_upgrade(path="/healthz", Upgrade=None, Connection=None)
        self.assertEqual(status, 200)


if __name__ == "__main__":
    ghtest.main()
