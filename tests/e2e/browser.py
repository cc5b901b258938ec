"""browser: what the browser end-to-end tests share: the tools they need
(a test fails, never skips, when one is missing) and running one of the
playwright scripts here (*.e2e.js) under node."""
import json
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = "/usr/bin/chromium"


def check_tools(test, *more):
    """Fails test unless node, playwright-core (npm ci here), chromium and
    every (path, how to get it) of more are there."""
    for need, how in [(os.path.join(HERE, "node_modules", "playwright-core"),
                       "run `npm ci` in tests/e2e"),
                      (CHROMIUM, "apt-get install chromium"), *more]:
        test.assertTrue(os.path.exists(need), f"{need} is missing: {how}")
    test.assertIsNotNone(shutil.which("node"), "node is missing: apt-get install nodejs")


def run_script(test, script, env, timeout, logs):
    """Runs script (a file here) with env added to ours and chromium named
    in E2E_CHROMIUM, stdin closed; fails test with its output and logs()
    (the other processes' logs) unless it exits 0. Returns its report: the
    JSON on its last stdout line."""
    node = subprocess.Popen(["node", os.path.join(HERE, script)], cwd=HERE,
                            env={**os.environ, "E2E_CHROMIUM": CHROMIUM, **env},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    test.addCleanup(lambda: node.poll() is None and node.kill())
    try:
        out, err = node.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        node.kill()
        out, err = node.communicate()
    test.assertEqual(node.returncode, 0, f"{script} failed:\n{err}\n{out}\n{logs()}")
    return json.loads(out.strip().splitlines()[-1])
