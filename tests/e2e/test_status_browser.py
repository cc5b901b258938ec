"""The status page in a real browser (status.e2e.js): it loads, reads its
feed once a second, draws every plot, and follows traffic a second page
makes meanwhile (a chat room with two people talking): the WebSocket lines
rise and the room is listed with its members. Screenshots of the light and
dark themes are kept in the build folder (e2e-status.png,
e2e-status-dark.png).

Fails, never skips, when something it needs is missing (node_modules: run
`npm ci` in tests/e2e, as contrib/quickstart.sh test does)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import browser  # noqa: E402
import ghtest  # noqa: E402


class StatusBrowserTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        browser.check_tools(self, (os.path.join(ghtest.GH_BUILD, "plugins", "chat.so"),
                                   "build chat.so"))

    def test_the_page_draws_its_plots_and_follows_traffic(self):
        port = ghtest.free_port()
        gh = self.start(f"""
plugins_dir: {os.path.join(ghtest.GH_BUILD, "plugins")}
access_log: {self.tmp}/access.log
error_log: stderr
listeners:
  - listen: 127.0.0.1:{port}
routes:
  - match: {{ path: /status }}
    allow: [127.0.0.1]
    status: {{}}
  - match: {{ path: /ws/chat }}
    websocket: {{ plugin: chat }}
""")
        report = browser.run_script(
            self, "status.e2e.js",
            {"E2E_URL": f"http://127.0.0.1:{port}/status",
             "E2E_CHAT": f"ws://127.0.0.1:{port}/ws/chat", "E2E_ROOM": "e2e-status",
             "E2E_SHOTS": ghtest.GH_BUILD},
            180, lambda: f"--- gatehouse:\n{gh.log()[-4000:]}")
        self.assertTrue(report["ok"])
        self.assertEqual(report["said"], 60)
        for shot in report["screenshots"]:
            with open(shot, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", shot)
            print(f"screenshot: {shot}", file=sys.stderr)
        # what the page was sent: the page, its two files and its feed, all
        # from 127.0.0.1, which allow: let through
        log = ghtest.read_text(self.path("access.log"))
        for want in ('"GET /status HTTP/1.1" 200 ', '"GET /status?asset=status.js HTTP/1.1" 200 ',
                     '"GET /status?asset=status.css HTTP/1.1" 200 ',
                     '"GET /status?format=json HTTP/1.1" 200 '):
            self.assertIn(want, log)
        self.assertNotIn('" 403 ', log)
        self.assertEqual(gh.stop(), 0, gh.log()[-4000:])


if __name__ == "__main__":
    ghtest.main()
