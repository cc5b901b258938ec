"""The install layout: the source tree configured with a temporary
CMAKE_INSTALL_PREFIX (the example etc/gatehouse/gateway.yaml bakes the
configure-time prefix, so installing GH_BUILD elsewhere would not do), built
once, installed, and run from the install: bin/gatehouse,
lib/gatehouse/plugins/*.so, share/gatehouse/www/, etc/gatehouse/gateway.yaml
and the plugin SDK are where they belong, `gatehouse -t` accepts the
installed config, and the installed daemon serves the page and /ws/echo."""
import asyncio
import filecmp
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from unittest import mock

import websockets

import ghtest


def sh(*args, **kw):
    out = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    if out.returncode != 0:
        raise AssertionError("%s failed:\n%s\n%s" % (" ".join(args), out.stdout, out.stderr))
    return out.stdout


def put(path, text):
    with open(path, "w") as f:
        f.write(text)


def cache_value(build, name):
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split("=", 1)[1].strip()
    raise AssertionError("%s not in the cache of %s" % (name, build))


class InstallTest(ghtest.TestCase):

    @classmethod
    def setUpClass(cls):
        # one configure, build and install for the whole run (about a minute)
        cls.top = tempfile.mkdtemp(prefix="gh-install-")
        cls.prefix = os.path.join(cls.top, "prefix with space")
        build = os.path.join(cls.top, "build")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CMAKE_", "GH_", "DESTDIR"))}
        try:
            sh("cmake", "-S", ghtest.GH_SRC, "-B", build, f"-DCMAKE_INSTALL_PREFIX={cls.prefix}",
               "-DGH_TESTS=OFF", "-DGH_FUZZ=OFF", "-DCMAKE_BUILD_TYPE=RelWithDebInfo", env=env)
            sh("cmake", "--build", build, "-j", str(max(2, os.cpu_count() or 2)), env=env)
            cls.install_log = sh("cmake", "--install", build, env=env)
            cls.libdir = cache_value(build, "CMAKE_INSTALL_LIBDIR")
            cls.build = build
        except BaseException:
            shutil.rmtree(cls.top, True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.top, True)

    def installed(self, *rel):
        return os.path.join(self.prefix, *rel)

    def etc_yaml(self):
        return self.installed("etc", "gatehouse", "gateway.yaml")

    # -- the files -----------------------------------------------------------

    def test_binary_plugins_page_config_and_sdk_are_in_the_layout(self):
        gh = self.installed("bin", "gatehouse")
        self.assertTrue(os.path.isfile(gh) and os.access(gh, os.X_OK), gh)
        for so in ("echo.so", "chat.so", "pubsub.so"):
            self.assertTrue(os.path.isfile(self.installed(self.libdir, "gatehouse", "plugins", so)), so)
        for f in ("index.html", "chat.js", "chat.css"):
            inst = self.installed("share", "gatehouse", "www", f)
            self.assertTrue(filecmp.cmp(inst, os.path.join(ghtest.GH_SRC, "www", f), shallow=False), f)
        self.assertTrue(os.path.isfile(self.etc_yaml()))
        self.assertTrue(os.path.isfile(self.installed("include", "gatehouse", "plugin.h")))
        self.assertTrue(os.path.isfile(self.installed(self.libdir, "cmake", "gatehouse",
                                                      "gatehouseConfig.cmake")))
        self.assertTrue(os.path.isfile(self.installed(self.libdir, "pkgconfig", "gatehouse-plugin.pc")))

    def test_installed_config_names_the_installed_folders_and_nothing_of_the_tree(self):
        with open(self.etc_yaml()) as f:
            text = f.read()
        plugins = self.installed(self.libdir, "gatehouse", "plugins")
        www = self.installed("share", "gatehouse", "www")
        self.assertIn(f"plugins_dir: '{plugins}'", text)
        self.assertIn(f"root: '{www}'", text)
        self.assertNotIn(ghtest.GH_SRC, text)
        self.assertNotIn(self.build, text)
        self.assertNotIn("../", text)

    def test_a_second_install_keeps_an_edited_config(self):
        with open(self.etc_yaml()) as f:
            original = f.read()
        self.addCleanup(put, self.etc_yaml(), original)
        with open(self.etc_yaml(), "a") as f:
            f.write("# edited by the operator\n")
        log = sh("cmake", "--install", self.build)
        self.assertIn("Keeping: " + self.etc_yaml(), log)
        with open(self.etc_yaml()) as f:
            self.assertTrue(f.read().endswith("# edited by the operator\n"))

    # -- running from the install -------------------------------------------

    def test_check_mode_accepts_the_installed_config(self):
        out = subprocess.run([self.installed("bin", "gatehouse"), "-t", "-c", self.etc_yaml()],
                             capture_output=True, text=True, timeout=30, cwd=self.tmp)
        self.assertEqual(out.returncode, 0, out.stderr)
        for name in ("echo", "chat", "pubsub"):
            self.assertIn("loaded " + name, out.stderr)

    def test_without_c_outside_a_source_tree_the_installed_config_is_read(self):
        out = subprocess.run([self.installed("bin", "gatehouse"), "-t"],
                             capture_output=True, text=True, timeout=30, cwd=self.tmp)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(self.etc_yaml() + ": ok", out.stdout)

    def test_installed_daemon_serves_the_page_and_echoes_then_stops_on_sigterm(self):
        port = ghtest.free_port()
        with open(self.etc_yaml()) as f:
            text, n = re.subn(r"listen: 127\.0\.0\.1:8080\b", f"listen: 127.0.0.1:{port}", f.read())
        self.assertEqual(n, 1, "the example config should have one listener on 127.0.0.1:8080")
        with mock.patch.object(ghtest, "GH_BIN", self.installed("bin", "gatehouse")):
            gh = self.start(text)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            self.assertEqual(r.status, 200)
            with open(self.installed("share", "gatehouse", "www", "index.html"), "rb") as f:
                self.assertEqual(r.read(), f.read())

        async def echo():
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/echo",
                                          origin=f"http://127.0.0.1:{port}") as ws:
                await ws.send("from the install")
                return await ws.recv()
        self.assertEqual(asyncio.run(asyncio.wait_for(echo(), 20)), "from the install")
        self.assertEqual(gh.stop(signal.SIGTERM), 0, gh.log())


if __name__ == "__main__":
    ghtest.main()
