"""SIGHUP reload with live WebSockets (issue 6, item 1): 200 connections
open on a plugin's route keep exchanging messages across a reload whose
config changes the routes and whose plugin .so was swapped for another
build (mv over the old file, as an operator would). None is dropped, the
old ones keep the old build's behaviour, new connections get the new one,
the changed routes serve, and the old build is unmapped once its last
connection has closed."""
import asyncio
import os
import signal
import urllib.error
import urllib.request

import websockets

import ghtest
import wsutil

N = 200
ROUNDS_AFTER = 3          # round trips each old connection makes after "reloaded"
MAX_ROUNDS = 10000        # bound on any pump loop, whatever the timing
TIMEOUT = 60.0            # bound on each phase


def config(port, tmp, plugins, www, new_route=""):
    return f"""plugins_dir: {plugins}
access_log: {tmp}/access.log
error_log: stderr
log_level: info
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /ws }}
    websocket: {{ plugin: probe, idle_timeout: 300s }}
{new_route}  - match: {{ prefix: / }}
    static: {{ root: {www} }}
"""


NEW_ROUTE = """  - match: { path: /new }
    websocket:
      plugin: probe
      config: { greeting: fresh }
"""


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def mapped(pid, name):
    """Lines of /proc/PID/maps naming a file called name."""
    with open(f"/proc/{pid}/maps") as f:
        return [l for l in f if l.rstrip().split("/")[-1].startswith(name)]


class ReloadWsTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.plugins = self.path("plugins")
        os.makedirs(self.plugins)
        os.chmod(self.plugins, 0o755)
        for v in ("v1", "v2"):
            self.write(f"www-{v}/index.html", f"page {v}\n")

    def test_200_websockets_survive_a_reload_that_changes_routes_and_swaps_the_plugin(self):
        wsutil.build_plugin(os.path.join(self.plugins, "probe.so"), defines={"PROBE_TAG": '"v1"'})
        port = ghtest.free_port()
        gh = self.start(config(port, self.tmp, self.plugins, self.path("www-v1")))
        url = f"ws://127.0.0.1:{port}"
        self.assertEqual(get(port, "/"), (200, b"page v1\n"))
        self.assertEqual(get(port, "/new")[0], 404)

        async def rt(ws, msg):
            await ws.send(msg)
            return await ws.recv()

        async def open_one(path, sem):
            async with sem:
                ws = await websockets.connect(url + path, ping_interval=None, max_queue=None)
                first = await ws.recv()
                self.assertTrue(first.startswith("open path=" + path), first)
                return ws

        async def pump(i, ws, reloaded, counts):
            """Round trips on one old connection until ROUNDS_AFTER of them
            started after the daemon logged "reloaded"."""
            after = 0
            for n in range(MAX_ROUNDS):
                seen = reloaded.is_set()
                msg = f"c{i}-{n}"
                self.assertEqual(await rt(ws, msg), msg)
                counts[i] += 1
                if seen:
                    after += 1
                    if after >= ROUNDS_AFTER:
                        return
            raise AssertionError("connection %d: no reload seen after %d rounds" % (i, MAX_ROUNDS))

        async def go():
            loop = asyncio.get_running_loop()
            sem = asyncio.Semaphore(50)
            old = await asyncio.wait_for(
                asyncio.gather(*(open_one("/ws", sem) for _ in range(N))), TIMEOUT)
            try:
                tags = await asyncio.wait_for(asyncio.gather(*(rt(ws, "tag") for ws in old)), TIMEOUT)
                self.assertEqual(set(tags), {"v1"})

                # the new build, renamed over the old file; the new config
                wsutil.build_plugin(self.path("probe-v2.so"), defines={"PROBE_TAG": '"v2"'})
                os.rename(self.path("probe-v2.so"), os.path.join(self.plugins, "probe.so"))
                with open(gh.conf, "w") as f:
                    f.write(config(port, self.tmp, self.plugins, self.path("www-v2"), NEW_ROUTE))

                # traffic on all 200 while the daemon reloads
                reloaded = asyncio.Event()
                counts = [0] * N
                pumps = asyncio.gather(*(pump(i, ws, reloaded, counts) for i, ws in enumerate(old)))
                gh.send_signal(signal.SIGHUP)
                await loop.run_in_executor(None, gh.wait_log, "reloaded", TIMEOUT)
                reloaded.set()
                await asyncio.wait_for(pumps, TIMEOUT)
                self.assertTrue(all(c >= ROUNDS_AFTER for c in counts), counts)

                # new connections: the new build, on the old and the new route
                sem = asyncio.Semaphore(50)
                fresh = [await open_one("/ws", sem), await open_one("/new", sem)]
                try:
                    self.assertEqual(await rt(fresh[0], "tag"), "v2")
                    self.assertEqual(await rt(fresh[1], "tag"), "v2")
                    self.assertIn("greeting=fresh", await rt(fresh[1], "config"))
                    self.assertIn("greeting=hello", await rt(fresh[0], "config"))
                finally:
                    for ws in fresh:
                        await ws.close()

                # the old ones: still open, still the old build
                tags = await asyncio.wait_for(asyncio.gather(*(rt(ws, "tag") for ws in old)), TIMEOUT)
                self.assertEqual(set(tags), {"v1"})
                self.assertTrue(all(ws.open for ws in old))
                # only the two fresh ones have closed
                self.assertEqual(gh.log().count("probe closed"), 2)
                # the old build is still mapped, the file it came from is gone
                self.assertTrue([l for l in mapped(gh.proc.pid, "probe.so") if "(deleted)" in l])
            finally:
                await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in old)), TIMEOUT)

        asyncio.run(asyncio.wait_for(go(), 4 * TIMEOUT))
        self.assertEqual(get(port, "/"), (200, b"page v2\n"))
        # every old connection was closed by us (1000), none by the daemon
        gh.wait_log("probe closed", TIMEOUT, count=N + 2)
        closes = [l for l in gh.log().splitlines() if "probe closed" in l]
        self.assertTrue(all("code=1000" in l for l in closes), closes[:5])
        # the last old connection gone, the old build is unloaded
        ghtest.wait_for(lambda: not [l for l in mapped(gh.proc.pid, "probe.so") if "(deleted)" in l],
                        TIMEOUT, "the old probe.so to be unmapped")
        self.assertEqual(gh.stop(), 0, gh.log())


if __name__ == "__main__":
    ghtest.main()
