"""The plugin SDK: `cmake --install` of this build into a temporary prefix,
then tests/sdk/hello (its own CMake project) is built against that prefix
with find_package(gatehouse 1) and gatehouse::plugin_sdk, and also with
pkg-config; the .so goes into a temporary plugins folder and the
already-built gatehouse loads and serves it: a ws app added without
rebuilding gatehouse."""
import asyncio
import os
import shutil
import subprocess

import websockets

import ghtest


def sh(*args, **kw):
    out = subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)
    if out.returncode != 0:
        raise AssertionError("%s failed:\n%s\n%s" % (" ".join(args), out.stdout, out.stderr))
    return out.stdout


class WsSdkTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.prefix = self.path("prefix")
        sh("cmake", "--install", ghtest.GH_BUILD, "--prefix", self.prefix)
        self.plugins = self.path("plugins")
        os.makedirs(self.plugins)
        os.chmod(self.plugins, 0o755)
        # a clean environment for the plugin build: nothing of the gatehouse tree
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("CMAKE_", "GH_", "CFLAGS", "LDFLAGS"))}

    def installed(self, *rel):
        return os.path.join(self.prefix, *rel)

    def test_install_has_header_cmake_package_and_pc(self):
        self.assertTrue(os.path.isfile(self.installed("include", "gatehouse", "plugin.h")))
        found = []
        for root, _, files in os.walk(self.prefix):
            found += [f for f in files if f.startswith(("gatehouseConfig", "gatehouse-plugin.pc",
                                                        "echo.so", "pubsub.so"))]
        for f in ("gatehouseConfig.cmake", "gatehouseConfigVersion.cmake", "gatehouse-plugin.pc",
                  "echo.so", "pubsub.so"):
            self.assertIn(f, found)

    def serve_and_greet(self, so, greeting):
        shutil.copy(so, os.path.join(self.plugins, "hello.so"))
        os.chmod(os.path.join(self.plugins, "hello.so"), 0o755)
        port = ghtest.free_port()
        self.start(f"""
plugins_dir: {self.plugins}
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /hello }}
    websocket:
      plugin: hello
      config: {{ greeting: {greeting} }}
""")

        async def go():
            async with websockets.connect(f"ws://127.0.0.1:{port}/hello",
                                          subprotocols=["hello.v1"]) as ws:
                first = await ws.recv()
                await ws.send("world")
                return ws.subprotocol, first, await ws.recv()
        return asyncio.run(asyncio.wait_for(go(), 20))

    def test_plugin_built_with_find_package_is_loaded_and_served(self):
        build = self.path("hello-build")
        sh("cmake", "-S", os.path.join(ghtest.GH_SRC, "tests", "sdk", "hello"), "-B", build,
           f"-DCMAKE_PREFIX_PATH={self.prefix}", env=self.env)
        sh("cmake", "--build", build, env=self.env)
        so = os.path.join(build, "hello.so")
        self.assertTrue(os.path.isfile(so))
        self.assertEqual(self.serve_and_greet(so, "howdy"),
                         ("hello.v1", "howdy from an SDK plugin", "howdy, world"))

    def test_plugin_built_with_pkg_config_is_loaded_and_served(self):
        pcdirs = [os.path.dirname(os.path.join(r, f)) for r, _, fs in os.walk(self.prefix)
                  for f in fs if f == "gatehouse-plugin.pc"]
        env = dict(self.env, PKG_CONFIG_PATH=pcdirs[0])
        cflags = sh("pkg-config", "--cflags", "gatehouse-plugin", env=env).split()
        plugindir = sh("pkg-config", "--variable=plugindir", "gatehouse-plugin", env=env).strip()
        self.assertTrue(os.path.isfile(os.path.join(plugindir, "echo.so")), plugindir)
        self.assertEqual(sh("pkg-config", "--modversion", "gatehouse-plugin", env=env).strip(),
                         ghtest.ABI)
        so = self.path("hello-pc.so")
        sh(os.environ.get("CC", "cc"), "-shared", "-fPIC", "-Wall", "-Werror",
           "-Wl,--no-undefined", *cflags, "-o", so,
           os.path.join(ghtest.GH_SRC, "tests", "sdk", "hello", "hello.c"), env=env)
        self.assertEqual(self.serve_and_greet(so, "hi"),
                         ("hello.v1", "hi from an SDK plugin", "hi, world"))

    def test_find_package_refuses_another_abi_major(self):
        proj = self.path("want2")
        os.makedirs(proj)
        with open(os.path.join(proj, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.25)\nproject(w LANGUAGES C)\n"
                    "find_package(gatehouse 2 REQUIRED CONFIG)\n")
        out = subprocess.run(["cmake", "-S", proj, "-B", self.path("want2-build"),
                              f"-DCMAKE_PREFIX_PATH={self.prefix}"], capture_output=True,
                             text=True, env=self.env, timeout=120)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(ghtest.ABI, out.stderr)


if __name__ == "__main__":
    ghtest.main()
