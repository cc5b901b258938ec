"""A plugin that misbehaves (tests/integration/plugins/misbehave.c): a
callback that blocks the loop past plugin_warn_after is logged with the
plugin, its route and the callback, and counted; one within it is not; and
a crash inside a callback leaves one line naming plugin, route and callback
before the process dies of the same signal (so that systemd restarts it)."""
import os
import signal

import ghtest
import wsutil
from wsutil import OP_TEXT, RawWS, frame


class WsMisbehaveTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.plugins = self.path("plugins")
        os.makedirs(self.plugins)
        os.chmod(self.plugins, 0o755)
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins", "misbehave.c")
        wsutil.build_plugin(os.path.join(self.plugins, "misbehave.so"), source=src)
        self.port = ghtest.free_port()

    def start_gh(self, warn_after="100ms"):
        self.gh = self.start(f"""
plugins_dir: {self.plugins}
plugin_warn_after: {warn_after}
listeners:
  - listen: 127.0.0.1:{self.port}
routes:
  - match: {{ path: /ws/bad }}
    websocket: {{ plugin: misbehave, idle_timeout: 0, ping_interval: 0 }}
  - match: {{ path: /metrics }}
    metrics: {{}}
""")

    def ws(self):
        ws = RawWS(self.port, "/ws/bad")
        self.addCleanup(ws.close)
        self.assertEqual(ws.status, 101)
        return ws

    def say(self, ws, msg):
        ws.send(frame(OP_TEXT, msg.encode()))
        op, data = ws.recv_message()
        return data.decode()

    def slow_count(self, callback):
        return ghtest.scrape(self.port)[f'gatehouse_plugin_slow_callbacks_total{{callback="{callback}"}}']

    def test_a_slow_message_callback_is_named_and_counted(self):
        self.start_gh()
        ws = self.ws()
        self.assertEqual(self.say(ws, "sleep 10"), "slept")     # within the limit
        self.assertEqual(self.say(ws, "sleep 300"), "slept")
        self.gh.wait_log("plugin misbehave (route /ws/bad): callback message ran")
        self.assertEqual(self.gh.log().count("callback message ran"), 1, self.gh.log())
        self.assertEqual(self.slow_count("message"), 1)
        self.assertEqual(self.slow_count("timer"), 0)

    def test_a_slow_timer_callback_is_named(self):
        self.start_gh()
        ws = self.ws()
        ws.send(frame(OP_TEXT, b"timer 300"))
        op, data = ws.recv_message()
        self.assertEqual(data, b"ticked")
        self.gh.wait_log("plugin misbehave (route /ws/bad): callback timer ran")
        self.assertEqual(self.slow_count("timer"), 1)

    def test_zero_turns_the_warning_off(self):
        self.start_gh("0")
        ws = self.ws()
        self.assertEqual(self.say(ws, "sleep 300"), "slept")
        self.assertEqual(self.say(ws, "ping"), "ping")
        self.assertNotIn("ran", self.gh.log())
        self.assertEqual(self.slow_count("message"), 0)

    def crash(self, trigger, close_after, sig, callback):
        self.start_gh()
        ws = self.ws()
        if close_after:
            self.assertEqual(self.say(ws, trigger), "armed")
            ws.close()
        else:
            ws.send(frame(OP_TEXT, trigger.encode()))
        self.gh.proc.wait(10)
        self.assertEqual(self.gh.proc.returncode, -sig, self.gh.log())
        line = (f"gatehouse: fatal {signal.Signals(sig).name} in plugin misbehave "
                f"(route /ws/bad), callback {callback}\n")
        self.assertEqual(self.gh.log().count(line), 1, self.gh.log())

    def test_a_crash_in_a_message_callback_names_it_and_dies_of_sigsegv(self):
        self.crash("segv", False, signal.SIGSEGV, "message")

    def test_a_division_by_zero_dies_of_sigfpe(self):
        self.crash("fpe", False, signal.SIGFPE, "message")

    def test_an_abort_in_a_close_callback_names_it_and_dies_of_sigabrt(self):
        self.crash("abort-on-close", True, signal.SIGABRT, "close")


if __name__ == "__main__":
    ghtest.main()
