"""The plugin loader: what it refuses (another ABI major, a newer minor, no
descriptor, a descriptor too small, a duplicate name, a file or folder
others can write, a file owned by someone else) with a warning naming the
file and both versions; a route naming a plugin that is not loaded is an
error at FILE:LINE:COL under -t; a plugin whose init fails takes only its
route down (503)."""
import os
import re
import signal
import subprocess

import ghtest
import wsutil


def check(conf):
    return subprocess.run([ghtest.GH_BIN, "-t", "-c", conf], capture_output=True, text=True,
                          timeout=30)


class WsLoaderTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.plugins = self.path("plugins")
        os.makedirs(self.plugins)
        os.chmod(self.plugins, 0o755)

    def plugin(self, file, mode=0o755, **defines):
        return wsutil.build_plugin(os.path.join(self.plugins, file),
                                   defines={k: v for k, v in defines.items()}, mode=mode)

    def conf(self, routes="", plugins_dir=None):
        routes = routes or "  - match: { path: /healthz }\n    health: {}\n"
        text = f"""plugins_dir: {plugins_dir or self.plugins}
listeners:
  - listen: 127.0.0.1:{ghtest.free_port()}
routes:
{routes}"""
        return self.write("gw.yaml", text)

    def route(self, plugin, path="/ws"):
        return f"  - match: {{ path: {path} }}\n    websocket:\n      plugin: {plugin}\n"

    def assert_refused(self, out, file, *fragments):
        line = [l for l in out.stderr.splitlines() if "refused" in l and file in l]
        self.assertTrue(line, out.stderr)
        self.assertIn("[warn]", line[0])
        for f in fragments:
            self.assertIn(f, line[0])

    # -- refusals ------------------------------------------------------------

    def test_good_plugin_loads(self):
        self.plugin("probe.so")
        out = check(self.conf(self.route("probe")))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("loaded probe", out.stderr)

    def test_other_abi_major_is_refused_naming_both_versions(self):
        self.plugin("old.so", PROBE_NAME='"old"', PROBE_MAJOR=2, PROBE_MINOR=3)
        out = check(self.conf())
        self.assertEqual(out.returncode, 0, out.stderr)     # nobody needs it
        self.assert_refused(out, "old.so", "plugin ABI 2.3", f"speaks {ghtest.ABI}")

    def test_newer_minor_is_refused_naming_both_versions(self):
        self.plugin("new.so", PROBE_NAME='"new"', PROBE_MINOR=7)
        out = check(self.conf())
        self.assert_refused(out, "new.so", "plugin ABI 1.7",
                            f"newer than this gatehouse's {ghtest.ABI}")

    def test_missing_descriptor_is_refused(self):
        self.plugin("lib.so", PROBE_NO_DESC=None)
        out = check(self.conf())
        self.assert_refused(out, "lib.so", "no gatehouse_plugin descriptor")

    def test_descriptor_too_small_is_refused(self):
        self.plugin("tiny.so", PROBE_NAME='"tiny"', PROBE_SIZE=16)
        out = check(self.conf())
        self.assert_refused(out, "tiny.so", "descriptor size 16")

    def test_group_writable_plugin_is_refused(self):
        self.plugin("gw.so", mode=0o775, PROBE_NAME='"gw"')
        out = check(self.conf())
        self.assert_refused(out, "gw.so", "writable by group or others", "0775")

    def test_world_writable_plugins_folder_is_refused(self):
        self.plugin("probe.so")
        os.chmod(self.plugins, 0o777)
        out = check(self.conf(self.route("probe")))
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertRegex(out.stderr, r"plugins_dir .*: refused: writable by group or others")

    def test_plugin_owned_by_someone_else_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to chown")
        p = self.plugin("theirs.so", PROBE_NAME='"theirs"')
        os.chown(p, 65534, 65534)
        out = check(self.conf())
        self.assert_refused(out, "theirs.so", "owned by uid 65534")

    def test_duplicate_name_is_refused(self):
        self.plugin("a.so", PROBE_NAME='"twin"')
        self.plugin("b.so", PROBE_NAME='"twin"')
        out = check(self.conf(self.route("twin")))
        self.assertEqual(out.returncode, 0, out.stderr)     # a.so serves the route
        self.assert_refused(out, "b.so", 'duplicate plugin name "twin"', "a.so")

    # -- routes and init -------------------------------------------------------

    def test_route_naming_a_missing_plugin_is_an_error_at_its_location(self):
        conf = self.conf(self.route("nosuch"))
        out = check(conf)
        self.assertEqual(out.returncode, 1)
        self.assertRegex(out.stderr, re.escape(conf) + r":\d+:\d+: websocket: plugin nosuch is not loaded")
        # the plugin: key is on line 7, column 15
        self.assertIn(f"{conf}:7:15:", out.stderr)

    def test_route_naming_a_refused_plugin_says_why(self):
        self.plugin("old.so", PROBE_NAME='"old"', PROBE_MAJOR=2)
        conf = self.conf(self.route("old"))
        out = check(conf)
        self.assertEqual(out.returncode, 1)
        self.assertRegex(out.stderr, re.escape(conf) + r":7:15: websocket: plugin old is not loaded: "
                         r".*old\.so was refused: built for plugin ABI 2\." + str(ghtest.ABI_MINOR))

    def test_missing_plugins_dir_is_a_warning_without_websocket_routes(self):
        out = check(self.conf(plugins_dir=self.path("nope")))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("no plugin loaded", out.stderr)

    def test_missing_plugins_dir_is_an_error_with_a_websocket_route(self):
        conf = self.conf(self.route("echo"), plugins_dir=self.path("nope"))
        out = check(conf)
        self.assertEqual(out.returncode, 1)
        self.assertRegex(out.stderr, re.escape(conf) + r":7:15: websocket: plugin echo is not loaded: "
                         r"plugins_dir .*nope: No such file")

    def test_plugin_config_errors_are_reported_with_their_location(self):
        self.plugin("probe.so")
        conf = self.conf("  - match: { path: /ws }\n    websocket:\n      plugin: probe\n"
                         "      config:\n        count: ten\n        bogus: 1\n")
        out = check(conf)
        self.assertIn(f"{conf}:9:16: websocket: config: count: expected an integer", out.stderr)
        self.assertIn(f"{conf}:10:16: websocket: config: unknown key bogus", out.stderr)
        self.assertIn("init failed", out.stderr)

    def test_plugin_built_for_abi_1_0_is_loaded_and_served(self):
        """ABI 1.1 only appended host functions: a 1.0 plugin (minor 0, the 1.0
        descriptor size) keeps loading and serving without a rebuild."""
        self.plugin("probe.so", PROBE_MINOR=0, PROBE_SIZE="GH_PLUGIN_DESC_SIZE_1_0")
        port = ghtest.free_port()
        text = f"""plugins_dir: {self.plugins}
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /ws/probe }}
    websocket: {{ plugin: probe }}
"""
        out = check(self.write("gw.yaml", text))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("(ABI 1.0)", out.stderr)
        self.start(text)
        ok = wsutil.RawWS(port, "/ws/probe")
        self.assertEqual(ok.status, 101)
        ok.close()

    def test_plugin_built_for_abi_1_1_keeps_an_instance_per_worker(self):
        """ABI 1.2 appended flags to the descriptor: a 1.1 plugin (its size
        ends before them) loads and gets an instance per worker as before,
        whatever lies past its size (here the flags field of the newer header,
        set to single instance)."""
        self.plugin("probe.so", PROBE_MINOR=1, PROBE_SIZE="GH_PLUGIN_DESC_SIZE_1_1",
                    PROBE_FLAGS="GH_PLUGIN_SINGLE_INSTANCE")
        port = ghtest.free_port()
        text = f"""workers: 2
plugins_dir: {self.plugins}
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /ws/probe }}
    websocket: {{ plugin: probe }}
"""
        out = check(self.write("gw.yaml", text))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("(ABI 1.1)", out.stderr)
        gh = self.start(text)
        ws = wsutil.RawWS(port, "/ws/probe")
        self.addCleanup(ws.close)
        self.assertEqual(ws.status, 101)
        ws.recv_message()                       # its open's greeting
        ws.send(wsutil.frame(wsutil.OP_TEXT, "whoami"))
        self.assertRegex(ws.recv_message()[1].decode(), r" inits=2 ")
        self.assertNotIn("single instance", gh.log())

    def test_unknown_descriptor_flags_are_refused(self):
        self.plugin("odd.so", PROBE_NAME='"odd"', PROBE_FLAGS="0x80u")
        conf = self.conf(self.route("odd"))
        out = check(conf)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assert_refused(out, "odd.so", "descriptor flags 0x80",
                            f"(plugin ABI {ghtest.ABI}) does not know (0x80)")
        self.assertRegex(out.stderr, re.escape(conf) + r":7:15: websocket: plugin odd is not "
                         r"loaded: .*odd\.so was refused: descriptor flags 0x80")

    def test_init_failure_takes_only_its_route_down(self):
        self.plugin("probe.so")
        self.plugin("sick.so", PROBE_NAME='"sick"', PROBE_FAIL_INIT=None)
        port = ghtest.free_port()
        text = f"""plugins_dir: {self.plugins}
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /ws/sick }}
    websocket: {{ plugin: sick }}
  - match: {{ path: /ws/probe }}
    websocket: {{ plugin: probe }}
"""
        conf = self.write("gw.yaml", text)
        out = check(conf)
        self.assertIn(f"{conf}:6:26: websocket: plugin sick", out.stderr)
        self.assertIn("init failed", out.stderr)
        gh = self.start(text)
        self.assertIn("probe refuses to start", gh.log())
        self.assertIn("route /ws/sick is down", gh.log())
        sick = wsutil.RawWS(port, "/ws/sick")
        self.assertEqual(sick.status, 503)
        sick.close()
        ok = wsutil.RawWS(port, "/ws/probe")
        self.assertEqual(ok.status, 101)
        ok.close()

    def test_sighup_loads_a_replaced_plugin_while_old_connections_keep_theirs(self):
        self.plugin("probe.so", PROBE_TAG='"v1"')
        port = ghtest.free_port()
        gh = self.start(f"""plugins_dir: {self.plugins}
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /ws }}
    websocket: {{ plugin: probe }}
""")
        old = wsutil.RawWS(port, "/ws")
        self.addCleanup(old.close)
        old.recv_message()
        old.send(wsutil.frame(wsutil.OP_TEXT, "tag"))
        self.assertEqual(old.recv_message(), (wsutil.OP_TEXT, b"v1"))
        # a new build, renamed over the old file: a new inode at the same path
        wsutil.build_plugin(self.path("probe-new.so"), defines={"PROBE_TAG": '"v2"'})
        os.rename(self.path("probe-new.so"), os.path.join(self.plugins, "probe.so"))
        gh.send_signal(signal.SIGHUP)
        gh.wait_log("reloaded")
        new = wsutil.RawWS(port, "/ws")
        self.addCleanup(new.close)
        new.recv_message()
        new.send(wsutil.frame(wsutil.OP_TEXT, "tag"))
        self.assertEqual(new.recv_message(), (wsutil.OP_TEXT, b"v2"))
        old.send(wsutil.frame(wsutil.OP_TEXT, "tag"))
        self.assertEqual(old.recv_message(), (wsutil.OP_TEXT, b"v1"))


if __name__ == "__main__":
    ghtest.main()
