"""contrib/systemd/gatehouse.service: the settings it must have,
`systemd-analyze verify`, and, under strace, that the daemon (start, plugin
loading, requests, SIGHUP, SIGTERM) makes no system call the unit's
SystemCallFilter, MemoryDenyWriteExecute or RestrictAddressFamilies would
refuse."""
import glob
import os
import re
import shutil
import signal
import subprocess
import unittest

import ghtest

UNIT = os.path.join(ghtest.GH_SRC, "contrib", "systemd", "gatehouse.service")
HARDENING_YES = ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
                 "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups",
                 "LockPersonality", "MemoryDenyWriteExecute")


def parse_unit(text):
    """{section: [(key, value), ...]}, keeping repeated keys; comments and
    blank lines dropped, backslash continuations joined."""
    out, section, pending = {}, None, ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"\[(.+)\]", line)
        if m:
            section = m.group(1)
            out.setdefault(section, [])
            continue
        key, _, value = line.partition("=")
        out[section].append((key.strip(), value.strip()))
    return out


def values(unit, section, key):
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit, section, key):
    vs = values(unit, section, key)
    assert len(vs) == 1, "%s= in [%s]: %r" % (key, section, vs)
    return vs[0]


def conf_drain_seconds():
    """The largest drain_delay + drain_timeout among conf/*.yaml (defaults 0s, 30s)."""
    def seconds(text, key, default):
        m = re.search(r"^%s:\s*(\d+)(ms|s|m)\b" % key, text, re.M)
        if not m:
            return default
        n, unit = int(m.group(1)), m.group(2)
        return {"ms": n / 1000, "s": n, "m": n * 60}[unit]
    worst = 0
    for path in glob.glob(os.path.join(ghtest.GH_SRC, "conf", "*.yaml")):
        with open(path) as f:
            text = f.read()
        worst = max(worst, seconds(text, "drain_delay", 0) + seconds(text, "drain_timeout", 30))
    return worst


def timespan_seconds(s):
    """systemd time span: 90, 90s, 1min 30s, 2m."""
    total = 0
    for n, unit in re.findall(r"(\d+)\s*(min|ms|s|m|h)?", s):
        total += int(n) * {"": 1, "s": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}[unit]
    return total


class UnitSettingsTest(unittest.TestCase):

    def setUp(self):
        with open(UNIT) as f:
            self.unit = parse_unit(f.read())

    def test_type_notify_with_exec_reload_sending_sighup(self):
        self.assertEqual(one(self.unit, "Service", "Type"), "notify")
        self.assertIn(one(self.unit, "Service", "NotifyAccess"), ("main",))
        self.assertEqual(one(self.unit, "Service", "ExecReload"), "/bin/kill -HUP $MAINPID")
        self.assertEqual(one(self.unit, "Service", "ExecStart"),
                         "/usr/local/bin/gatehouse -c /usr/local/etc/gatehouse/gateway.yaml")
        self.assertEqual(one(self.unit, "Service", "KillSignal"), "SIGTERM")
        self.assertEqual(one(self.unit, "Service", "Restart"), "on-failure")
        self.assertEqual(values(self.unit, "Install", "WantedBy"), ["multi-user.target"])

    def test_stop_timeout_outlasts_every_shipped_drain(self):
        stop = timespan_seconds(one(self.unit, "Service", "TimeoutStopSec"))
        self.assertGreater(stop, conf_drain_seconds())

    def test_dedicated_user_and_hardening(self):
        self.assertEqual(one(self.unit, "Service", "User"), "gatehouse")
        self.assertEqual(one(self.unit, "Service", "Group"), "gatehouse")
        self.assertEqual(values(self.unit, "Service", "DynamicUser"), [])
        for key in HARDENING_YES:
            with self.subTest(key=key):
                self.assertEqual(one(self.unit, "Service", key), "yes")
        self.assertEqual(one(self.unit, "Service", "ProtectSystem"), "strict")
        self.assertEqual(set(one(self.unit, "Service", "RestrictAddressFamilies").split()),
                         {"AF_INET", "AF_INET6", "AF_UNIX"})
        self.assertEqual(values(self.unit, "Service", "SystemCallFilter"), ["@system-service"])

    def test_capabilities_are_exactly_net_bind_service(self):
        for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
            with self.subTest(key=key):
                self.assertEqual(values(self.unit, "Service", key), ["CAP_NET_BIND_SERVICE"])

    def test_open_files_limit_allows_100k_connections(self):
        self.assertGreaterEqual(int(one(self.unit, "Service", "LimitNOFILE")), 200000)


def verify(path):
    out = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                         timeout=120)
    return out.returncode, (out.stdout + out.stderr).strip()


@unittest.skipUnless(shutil.which("systemd-analyze"),
                     "systemd-analyze is not installed (Debian package systemd)")
class VerifyTest(ghtest.TestCase):
    """`systemd-analyze verify` checks keys, values and that ExecStart's and
    ExecReload's programs exist. /usr/local/bin/gatehouse need not exist
    here, so the unit is verified as a copy whose ExecStart names the binary
    under test. User=gatehouse need not exist either: verify does not look
    users up (systemd resolves them when the service starts)."""

    def copy(self, edit=lambda text: text):
        with open(UNIT) as f:
            text = f.read()
        exe = os.path.abspath(ghtest.GH_BIN)
        text, n = re.subn(r"^ExecStart=/usr/local/bin/gatehouse ", "ExecStart=%s " % exe, text, flags=re.M)
        self.assertEqual(n, 1)
        path = self.write("gatehouse.service", edit(text))
        return path

    def test_unit_verifies_without_a_message(self):
        rc, text = verify(self.copy())
        self.assertEqual(rc, 0, text)
        self.assertEqual(text, "", "systemd-analyze verify said something about the unit")

    def test_verify_reads_our_unit(self):
        # the empty output above means something only if verify does look
        rc, text = verify(self.copy(lambda t: t.replace("[Service]\n", "[Service]\nNoSuchKey=1\n")))
        self.assertIn("NoSuchKey", text)


def expand_filter(groups, names):
    """Set of system call names for @group / name items."""
    out = set()
    for name in names:
        if name.startswith("@"):
            out |= expand_filter(groups, groups[name])
        else:
            out.add(name)
    return out


def syscall_groups():
    out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = line.split()[0]
            groups[cur] = []
        elif cur and line.strip() and not line.strip().startswith("#"):
            groups[cur].append(line.split()[0])
    return groups


def strace_works():
    if not shutil.which("strace"):
        return False
    return subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "true"],
                          capture_output=True, timeout=30).returncode == 0


@unittest.skipUnless(shutil.which("systemd-analyze") and strace_works(),
                     "needs systemd-analyze (package systemd) and a working strace (package strace)")
class SandboxTest(ghtest.TestCase):

    def test_daemon_stays_inside_the_units_sandbox(self):
        with open(UNIT) as f:
            unit = parse_unit(f.read())
        allowed = expand_filter(syscall_groups(), values(unit, "Service", "SystemCallFilter"))
        families = set(one(unit, "Service", "RestrictAddressFamilies").split())

        plugins = os.path.join(ghtest.GH_BUILD, "plugins")
        has_plugins = bool(glob.glob(os.path.join(plugins, "*.so")))
        os.makedirs(self.path("www"))
        self.write("www/index.html", "<!doctype html><title>x</title>\n")
        port = ghtest.free_port()
        conf = self.write("gw.yaml",
                          "plugins_dir: %s\n"
                          "listeners:\n"
                          "  - listen: 127.0.0.1:%d\n"
                          "routes:\n"
                          "  - match: { path: /healthz }\n"
                          "    health: {}\n"
                          "  - match: { prefix: / }\n"
                          "    static: { root: www }\n" % (plugins if has_plugins else "plugins", port))
        trace = self.path("trace")
        errlog = self.path("err.log")
        with open(errlog, "wb") as err:
            # LeakSanitizer cannot run under ptrace: in a sanitizer build
            # the traced daemon runs without leak checking (ASan stays on)
            env = dict(os.environ)
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
            proc = subprocess.Popen(["strace", "-f", "-qq", "-o", trace, ghtest.GH_BIN, "-c", conf],
                                    stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            log = lambda: ghtest.read_text(errlog)
            ghtest.wait_for(lambda: "ready: listening" in log(), 20, "gatehouse under strace to be ready")
            for path in ("/healthz", "/", "/index.html"):
                resp = ghtest.raw_request(port, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                          % path.encode())
                self.assertTrue(resp.startswith(b"HTTP/1.1 200"), resp[:200])
            # signals go to gatehouse itself, not to strace (which would detach)
            with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
                daemon = int(f.read().split()[0])
            os.kill(daemon, signal.SIGHUP)
            ghtest.wait_for(lambda: "reloaded" in log(), 20, "the reload")
            os.kill(daemon, signal.SIGTERM)
            self.assertEqual(proc.wait(30), 0, log())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

        used, bad_mem, bad_family = set(), [], []
        with open(trace) as f:
            for line in f:
                m = re.match(r"\d+\s+([a-z0-9_]+)\((.*)", line)
                if not m:
                    continue
                name, args = m.groups()
                used.add(name)
                # MemoryDenyWriteExecute: no W+X mapping, no making memory executable
                if name == "mmap" and "PROT_WRITE" in args and "PROT_EXEC" in args:
                    bad_mem.append(line)
                if name in ("mprotect", "pkey_mprotect") and "PROT_EXEC" in args:
                    bad_mem.append(line)
                if name == "socket":
                    fam = args.split(",", 1)[0].strip()
                    if fam not in families:
                        bad_family.append(line)
        if has_plugins:
            self.assertIn("plugin", log())
        self.assertIn("accept4", used)
        self.assertEqual(sorted(used - allowed), [], "system calls outside SystemCallFilter")
        self.assertEqual(bad_mem, [], "refused by MemoryDenyWriteExecute")
        self.assertEqual(bad_family, [], "refused by RestrictAddressFamilies")


if __name__ == "__main__":
    ghtest.main()
