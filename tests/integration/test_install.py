"""The README's build by hand and the install layout, from one build.

A copy of the source tree (the files git knows, untracked ones included,
ignored ones such as build/ and node_modules/ left out) is built with the
README's literal `cmake -S . -B build && cmake --build build`, so with the
default CMAKE_INSTALL_PREFIX. That one build is then:

- run in place: `build/gatehouse -c conf/gateway.yaml` (only its listen port
  changed) serves the chat page at / and the chat at /ws/chat, and
  `build/gatehouse -t -c conf/gateway.yaml` accepts it;
- installed with `cmake --install build --prefix P2`, P2 (with a space) other
  than the configured prefix: bin/gatehouse, lib/gatehouse/plugins/*.so,
  share/gatehouse/www/, etc/gatehouse/gateway.yaml and the plugin SDK are
  where they belong, the example config names P2's folders (written at
  install time, not at configure time), `gatehouse -t` accepts it and the
  installed daemon serves the page and /ws/echo;
- installed with `DESTDIR=STAGE cmake --install build --prefix P3` and the
  staged STAGE/P3 moved to P3, as a package would be: everything landed
  under STAGE/P3, and the config names P3's folders, not STAGE's."""
import asyncio
import filecmp
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from unittest import mock

import websockets

import ghtest

LISTEN_RE = r"listen: 127\.0\.0\.1:8080\b"     # the example config's one listener
TOP = None                                      # the module's temporary folder


def sh(*args, **kw):
    out = subprocess.run(args, capture_output=True, text=True, timeout=240, **kw)
    if out.returncode != 0:
        raise AssertionError("%s failed:\n%s\n%s" % (" ".join(args), out.stdout, out.stderr))
    return out.stdout


def put(path, text):
    with open(path, "w") as f:
        f.write(text)


def get(path):
    with open(path) as f:
        return f.read()


def cache_value(build, name):
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split("=", 1)[1].strip()
    raise AssertionError("%s not in the cache of %s" % (name, build))


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CMAKE_", "GH_", "DESTDIR"))}
    env.update(extra)
    return env


def copy_source_tree(src, dst):
    """Copies what git tracks, and untracked files not ignored (a colleague's
    new file is part of the tree), skipping files removed meanwhile. Without
    git: the top-level folders, minus build/ and node_modules/."""
    try:
        out = subprocess.run(["git", "-C", src, "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True, check=True, timeout=60)
        files = [f for f in out.stdout.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = None
    if not files:
        ignore = shutil.ignore_patterns("build", "node_modules", ".git")
        for name in ("CMakeLists.txt", "CMakePresets.json", "README.md"):
            shutil.copy2(os.path.join(src, name), dst)
        for name in ("core", "plugins", "conf", "www", "tests", "contrib"):
            shutil.copytree(os.path.join(src, name), os.path.join(dst, name), symlinks=True,
                            ignore=ignore)
        return
    for rel in files:
        s, d = os.path.join(src, rel), os.path.join(dst, rel)
        if not os.path.lexists(s) or os.path.isdir(s):
            continue
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copy2(s, d, follow_symlinks=False)


def setUpModule():
    # one copy, one configure and build, three uses (a few seconds to a minute)
    global TOP
    TOP = tempfile.mkdtemp(prefix="gh-install-")
    try:
        tree = os.path.join(TOP, "tree")
        os.mkdir(tree)
        copy_source_tree(ghtest.GH_SRC, tree)
        env = clean_env()
        start = time.monotonic()
        sh("cmake", "-S", ".", "-B", "build", cwd=tree, env=env)
        sh("cmake", "--build", "build", "-j2", cwd=tree, env=env)
        print("configure + build by hand: %.1f s" % (time.monotonic() - start),
              file=sys.stderr, flush=True)
        build = os.path.join(tree, "build")
        # the installs come before any test edits the tree's conf/gateway.yaml
        p2 = os.path.join(TOP, "prefix with space")
        sh("cmake", "--install", "build", "--prefix", p2, cwd=tree, env=env)
        stage, p3 = os.path.join(TOP, "destdir"), os.path.join(TOP, "staged prefix")
        sh("cmake", "--install", "build", "--prefix", p3, cwd=tree,
           env=clean_env(DESTDIR=stage))
        os.rename(stage + p3, p3)
    except BaseException:
        shutil.rmtree(TOP, True)
        raise
    ByHandBuildTest.tree, ByHandBuildTest.build = tree, build
    InstallTest.prefix, InstallTest.build = p2, build
    StagedInstallTest.prefix, StagedInstallTest.stage = p3, stage
    for cls in (InstallTest, StagedInstallTest):
        cls.libdir = cache_value(build, "CMAKE_INSTALL_LIBDIR")
        cls.configured_prefix = cache_value(build, "CMAKE_INSTALL_PREFIX")


def tearDownModule():
    if TOP:
        shutil.rmtree(TOP, True)


def check_config(gh, conf, cwd):
    """`gh -t -c conf`: (returncode, stdout, stderr)."""
    out = subprocess.run([gh, "-t", "-c", conf], capture_output=True, text=True, timeout=30,
                         cwd=cwd)
    return out.returncode, out.stdout, out.stderr


# -- the README's build by hand, run in place ---------------------------------


class ByHandBuildTest(ghtest.TestCase):
    tree = build = None

    def test_readme_gives_the_commands_run_here(self):
        readme = get(os.path.join(ghtest.GH_SRC, "README.md"))
        for text in ("cmake -S . -B build && cmake --build build",
                     "build/gatehouse -c conf/gateway.yaml", "cmake --install build --prefix DIR"):
            self.assertTrue(text in readme, "README.md should say " + text)
        self.assertFalse("build/release" in readme, "README.md names build/release")

    def test_the_build_has_the_daemon_and_every_plugin_where_the_config_looks(self):
        self.assertTrue(os.access(os.path.join(self.build, "gatehouse"), os.X_OK))
        self.assertIn("plugins_dir: ../build/plugins\n",
                      get(os.path.join(self.tree, "conf", "gateway.yaml")))
        for so in ("echo.so", "chat.so", "pubsub.so"):
            self.assertTrue(os.path.isfile(os.path.join(self.build, "plugins", so)), so)

    def test_check_mode_accepts_conf_gateway_yaml(self):
        rc, out, err = check_config("build/gatehouse", "conf/gateway.yaml", self.tree)
        self.assertEqual(rc, 0, err)
        self.assertIn("conf/gateway.yaml: ok", out)
        for name in ("echo", "chat", "pubsub"):
            self.assertIn("loaded " + name, err)

    def test_without_c_in_the_tree_conf_gateway_yaml_is_read(self):
        out = subprocess.run(["build/gatehouse", "-t"], capture_output=True, text=True,
                             timeout=30, cwd=self.tree)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("conf/gateway.yaml: ok", out.stdout)

    def test_build_gatehouse_serves_the_chat_page_and_the_chat(self):
        conf = os.path.join(self.tree, "conf", "gateway.yaml")
        original = get(conf)
        self.addCleanup(put, conf, original)
        port = ghtest.free_port()
        text, n = re.subn(LISTEN_RE, f"listen: 127.0.0.1:{port}", original)
        self.assertEqual(n, 1, "conf/gateway.yaml should have one listener on 127.0.0.1:8080")
        put(conf, text)

        errlog = self.path("error.log")
        with open(errlog, "wb") as err:
            proc = subprocess.Popen(["build/gatehouse", "-c", "conf/gateway.yaml"],
                                    cwd=self.tree, stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))

        def ready():
            if proc.poll() is not None:
                raise AssertionError("gatehouse exited with %s:\n%s"
                                     % (proc.returncode, ghtest.read_text(errlog)))
            return "ready: listening" in ghtest.read_text(errlog)
        ghtest.wait_for(ready, 10, "build/gatehouse to be ready")

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["Content-Type"].startswith("text/html"), r.headers)
            with open(os.path.join(self.tree, "www", "index.html"), "rb") as f:
                self.assertEqual(r.read(), f.read())

        origin = f"http://127.0.0.1:{port}"
        url = f"ws://127.0.0.1:{port}/ws/chat"

        async def recv(ws):
            return json.loads(await asyncio.wait_for(ws.recv(), 5))

        async def chat():
            async with websockets.connect(f"{url}?room=byhand&nick=ann", origin=origin) as ann:
                w = await recv(ann)
                self.assertEqual(w, {"type": "welcome", "nick": "ann", "room": "byhand",
                                     "users": ["ann"], "history": []})
                await ann.send(json.dumps({"type": "say", "text": "built by hand"}))
                said = await recv(ann)
                self.assertEqual((said["type"], said["from"], said["text"]),
                                 ("said", "ann", "built by hand"))
                async with websockets.connect(f"{url}?room=byhand&nick=bob",
                                              origin=origin) as bob:
                    w = await recv(bob)
                    self.assertEqual((w["type"], w["users"]), ("welcome", ["ann", "bob"]))
                    self.assertEqual([m["text"] for m in w["history"]], ["built by hand"])
                    j = await recv(ann)
                    self.assertEqual((j["type"], j["nick"]), ("joined", "bob"))
        asyncio.run(asyncio.wait_for(chat(), 20))

        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(15), 0, ghtest.read_text(errlog))


# -- cmake --install build --prefix P2 ----------------------------------------


class InstallTest(ghtest.TestCase):
    prefix = build = libdir = configured_prefix = None

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
        self.assertNotEqual(os.path.realpath(self.configured_prefix), os.path.realpath(self.prefix))
        text = get(self.etc_yaml())
        plugins = self.installed(self.libdir, "gatehouse", "plugins")
        www = self.installed("share", "gatehouse", "www")
        self.assertIn(f"plugins_dir: '{plugins}'", text)
        self.assertIn(f"root: '{www}'", text)
        self.assertNotIn(self.configured_prefix + "/", text)
        self.assertNotIn(ghtest.GH_SRC, text)
        self.assertNotIn(self.build, text)
        self.assertNotIn("../", text)

    def test_a_second_install_keeps_an_edited_config(self):
        original = get(self.etc_yaml())
        self.addCleanup(put, self.etc_yaml(), original)
        with open(self.etc_yaml(), "a") as f:
            f.write("# edited by the operator\n")
        log = sh("cmake", "--install", self.build, "--prefix", self.prefix, env=clean_env())
        self.assertIn("Keeping: " + self.etc_yaml(), log)
        self.assertTrue(get(self.etc_yaml()).endswith("# edited by the operator\n"))

    # -- running from the install -------------------------------------------

    def test_check_mode_accepts_the_installed_config(self):
        rc, out, err = check_config(self.installed("bin", "gatehouse"), self.etc_yaml(), self.tmp)
        self.assertEqual(rc, 0, err)
        self.assertIn(self.etc_yaml() + ": ok", out)
        for name in ("echo", "chat", "pubsub"):
            self.assertIn("loaded " + name, err)

    def test_without_c_outside_a_source_tree_the_installed_prefix_config_is_read(self):
        # installed into another prefix than the configured one: the binary
        # finds the example config of the prefix it sits in, not the
        # configure-time SYSCONFDIR's
        out = subprocess.run([self.installed("bin", "gatehouse"), "-t"],
                             capture_output=True, text=True, timeout=30, cwd=self.tmp)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(os.path.join(self.installed("bin"), "..", "etc", "gatehouse", "gateway.yaml")
                      + ": ok", out.stdout)

    def test_installed_daemon_serves_the_page_and_echoes_then_stops_on_sigterm(self):
        port = ghtest.free_port()
        text, n = re.subn(LISTEN_RE, f"listen: 127.0.0.1:{port}", get(self.etc_yaml()))
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


# -- DESTDIR=STAGE cmake --install build --prefix P3, then STAGE/P3 -> P3 ------


class StagedInstallTest(ghtest.TestCase):
    prefix = stage = libdir = configured_prefix = None

    def installed(self, *rel):
        return os.path.join(self.prefix, *rel)

    def etc_yaml(self):
        return self.installed("etc", "gatehouse", "gateway.yaml")

    def test_everything_was_staged_under_stage_slash_prefix(self):
        # after the move only the empty folders leading to it are left
        left = [os.path.join(d, f) for d, _, files in os.walk(self.stage) for f in files]
        self.assertEqual(left, [])
        self.assertTrue(os.access(self.installed("bin", "gatehouse"), os.X_OK))
        for so in ("echo.so", "chat.so", "pubsub.so"):
            self.assertTrue(os.path.isfile(self.installed(self.libdir, "gatehouse", "plugins", so)), so)
        self.assertTrue(os.path.isfile(self.installed("share", "gatehouse", "www", "index.html")))

    def test_config_names_the_prefix_not_the_stage(self):
        text = get(self.etc_yaml())
        self.assertIn(f"plugins_dir: '{self.installed(self.libdir, 'gatehouse', 'plugins')}'", text)
        self.assertIn(f"root: '{self.installed('share', 'gatehouse', 'www')}'", text)
        self.assertNotIn(self.stage, text)
        self.assertNotIn(self.configured_prefix + "/", text)

    def test_check_mode_accepts_the_moved_config(self):
        rc, out, err = check_config(self.installed("bin", "gatehouse"), self.etc_yaml(), self.tmp)
        self.assertEqual(rc, 0, err)
        self.assertIn(self.etc_yaml() + ": ok", out)
        for name in ("echo", "chat", "pubsub"):
            self.assertIn("loaded " + name, err)


if __name__ == "__main__":
    ghtest.main()
