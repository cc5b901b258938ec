"""The campaign scripts of contrib/campaigns/, run for seconds so that they
do not rot: the slow-client campaign (slow heads, non-reading WebSockets, a
normal client's latency), the soak (HTTP, WebSocket churn, a chat room,
reloads, Redis restarted) and the connection flood at max_connections. The
real campaigns run them for minutes with thousands of connections (fuzz.sh
runs in .ci/run's fuzzing step)."""
import os
import shutil
import subprocess
import sys
import unittest

import ghtest

CAMPAIGNS = os.path.join(ghtest.GH_SRC, "contrib", "campaigns")


def run(script, *args):
    p = subprocess.run([sys.executable, os.path.join(CAMPAIGNS, script),
                        "--gatehouse", ghtest.GH_BIN] + list(args),
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


class CampaignsTest(ghtest.TestCase):

    def test_slowclients_runs_and_reports(self):
        code, out = run("slowclients.py", "--plugins", os.path.join(ghtest.GH_BUILD, "plugins"),
                        "--slow", "20", "--nonreaders", "20", "--duration", "2",
                        "--header-timeout", "1s", "--rate", "20", "--msg-size", "8192",
                        "--send-backlog", "64KiB", "--goal-ms", "0")
        self.assertEqual(code, 0, out)
        self.assertIn("normal client: requests=", out)
        self.assertIn("errors=0", out)
        # the slow heads outlived header_timeout and were opened again
        self.assertNotIn("slow heads dropped and reopened=0,", out)

    @unittest.skipIf(shutil.which("redis-server") is None, "redis-server is not installed")
    def test_soak_runs_and_reports(self):
        code, out = run("soak.py", "--plugins", os.path.join(ghtest.GH_BUILD, "plugins"),
                        "--duration", "8", "--hup", "2", "--warmup", "2", "--sample", "1",
                        "--members", "3", "--memory-report-only")
        # eight seconds (and ASan's quarantine) say nothing about leaks; the
        # 30-minute campaign judges memory
        self.assertEqual(code, 0, out)
        self.assertIn("nothing lost or failed: met", out)
        self.assertIn("redis_restarts=2", out)
        self.assertIn("chat_lost=0", out)

    def test_flood_runs_and_reports(self):
        code, out = run("flood.py", "--max", "50", "--free", "2", "--wait", "0.5")
        self.assertEqual(code, 0, out)
        self.assertIn("new client: at the cap:", out)
        self.assertIn("health check: at the cap:", out)
        self.assertIn("health check on its own listener: at the cap: HTTP/1.1 200", out)


if __name__ == "__main__":
    ghtest.main()
