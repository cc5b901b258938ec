"""user: and group: started as root, gatehouse binds, opens its logs, then
serves as the user; reloads keep working as that user, a reload needing a
new port below 1024 is refused, and without user: root logs a warning.

Needs root (skipped otherwise) and the nobody user and nogroup group."""
import grp
import http.client
import os
import pwd
import signal
import socket
import subprocess
import unittest

import ghtest

IS_ROOT = os.geteuid() == 0


def account():
    """(uid, gid) of nobody:nogroup, or None."""
    try:
        return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    except KeyError:
        return None


def status_ids(pid):
    """Uid, Gid and Groups of /proc/PID/status as lists of ints."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(x) for x in rest.split()]
    return out


def get(port, host="127.0.0.1", path="/"):
    c = http.client.HTTPConnection(host, port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def free_privileged_port():
    """(host, port): a port in 900..1000 on some 127.0.0.x that nobody
    listens on now (we are root: we may bind it to see)."""
    for last in range(2, 40):
        host = f"127.0.0.{last}"
        for port in range(900, 1001):
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
                return host, port
    raise unittest.SkipTest("no free port below 1024 on 127.0.0.0/8")


def config(tmp, listens, user="user: nobody\ngroup: nogroup\n", access_log="access.log",
           error_log=None):
    lines = "".join(f"  - listen: {a}\n" for a in listens)
    err = f"error_log: {error_log}\n" if error_log else ""
    return f"""{user}{err}access_log: {access_log}
listeners:
{lines}routes:
  - match: {{ path: /healthz }}
    health: {{}}
  - match: {{ prefix: / }}
    static: {{ root: www }}
"""


@unittest.skipUnless(IS_ROOT, "needs root: gatehouse drops privileges only when started as root")
@unittest.skipUnless(account(), "needs the nobody user and the nogroup group")
class PrivDropTest(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        # the user reads the config and the static root again on SIGHUP
        os.chmod(self.tmp, 0o755)
        self.write("www/index.html", "hi\n")
        self.uid, self.gid = account()

    def rewrite(self, g, text):
        g.rewrite(text)
        os.chmod(g.conf, 0o644)

    def test_serves_as_nobody_and_reloads_with_its_listeners_and_logs(self):
        port = ghtest.free_port()
        access = self.path("access.log")
        errlog = self.path("error.log")    # the harness made it: root's, mode 0644
        g = self.start(config(self.tmp, [f"127.0.0.1:{port}"], error_log=errlog))
        self.assertIn("dropped privileges: now user nobody (uid %d), group nogroup (gid %d)"
                      % (self.uid, self.gid), g.log())
        ids = status_ids(g.proc.pid)
        self.assertEqual(ids["Uid"], [self.uid] * 4)
        self.assertEqual(ids["Gid"], [self.gid] * 4)
        self.assertEqual(ids["Groups"], [self.gid])
        self.assertEqual(get(port), (200, b"hi\n"))
        # the access log did not exist: it was made for the user
        ghtest.wait_lines(access, 1)
        st = os.stat(access)
        self.assertEqual((st.st_uid, st.st_gid), (self.uid, self.gid))

        # same listeners: the reload goes through and reopens both logs; the
        # error log, root's, cannot be reopened by nobody: said, and the
        # file opened as root keeps being written to
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        self.assertRegex(g.log(), r"reload: error log .*error\.log: cannot open as uid %d: "
                         r"Permission denied; keeping the file opened before" % self.uid)
        self.assertEqual(get(port), (200, b"hi\n"))
        ghtest.wait_lines(access, 2)
        self.assertEqual(status_ids(g.proc.pid)["Uid"], [self.uid] * 4)
        self.assertEqual(g.stop(), 0)
        self.assertIn("exiting", g.log())

    def test_an_access_log_the_user_cannot_reopen_keeps_being_written(self):
        port = ghtest.free_port()
        access = self.write("access.log", "", mode=0o600)   # root's, not nobody's
        g = self.start(config(self.tmp, [f"127.0.0.1:{port}"]))
        self.assertEqual(get(port), (200, b"hi\n"))
        ghtest.wait_lines(access, 1)
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        self.assertRegex(g.log(), r"access log .*access\.log: cannot open as uid %d; keeping "
                         r"the file opened before" % self.uid)
        self.assertEqual(get(port), (200, b"hi\n"))
        ghtest.wait_lines(access, 2)
        self.assertEqual(os.stat(access).st_uid, 0)
        self.assertEqual(g.stop(), 0)

    def test_a_reload_adding_a_privileged_port_is_refused_and_the_old_one_serves(self):
        port = ghtest.free_port()
        host, low = free_privileged_port()
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            if int(f.read()) <= low:
                self.skipTest("this host lets any user bind port %d" % low)
        g = self.start(config(self.tmp, [f"127.0.0.1:{port}"]))
        self.rewrite(g, config(self.tmp, [f"127.0.0.1:{port}", f"{host}:{low}"]))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reload failed")
        self.assertIn(f"reload refused: cannot listen on {host}:{low}: port {low} is privileged",
                      g.log())
        self.assertNotIn("reloaded", g.log())
        self.assertEqual(get(port), (200, b"hi\n"))
        with self.assertRaises(OSError):
            socket.create_connection((host, low), timeout=2).close()
        self.assertEqual(g.stop(), 0)

    def test_a_kept_privileged_listener_survives_a_reload(self):
        host, low = free_privileged_port()
        g = self.start(config(self.tmp, [f"{host}:{low}"]))
        self.assertEqual(status_ids(g.proc.pid)["Uid"], [self.uid] * 4)
        g.send_signal(signal.SIGHUP)
        g.wait_log("reloaded")
        self.assertEqual(get(low, host), (200, b"hi\n"))
        self.assertEqual(g.stop(), 0)

    def test_changing_user_on_reload_is_refused(self):
        port = ghtest.free_port()
        g = self.start(config(self.tmp, [f"127.0.0.1:{port}"]))
        self.rewrite(g, config(self.tmp, [f"127.0.0.1:{port}"], user="user: root\n"))
        g.send_signal(signal.SIGHUP)
        g.wait_log("reload failed")
        self.assertRegex(g.log(), r"reload refused: .*:1:7: user:/group: changed")
        self.assertEqual(get(port), (200, b"hi\n"))
        self.assertEqual(g.stop(), 0)

    def test_without_user_root_logs_one_warning(self):
        port = ghtest.free_port()
        g = self.start(config(self.tmp, [f"127.0.0.1:{port}"], user=""))
        self.assertEqual(g.log().count("running as root: no user:"), 1)
        self.assertEqual(status_ids(g.proc.pid)["Uid"], [0] * 4)
        self.assertEqual(get(port), (200, b"hi\n"))
        self.assertEqual(g.stop(), 0)

    def run_as_nobody(self, conf_text):
        conf = self.write("nobody.yaml", conf_text)
        return subprocess.run([ghtest.GH_BIN, "-c", conf], capture_output=True, text=True,
                              timeout=20, user=self.uid, group=self.gid, extra_groups=[])

    def test_started_as_another_user_it_refuses_to_switch(self):
        port = ghtest.free_port()
        r = self.run_as_nobody(config(self.tmp, [f"127.0.0.1:{port}"], user="user: root\n",
                                      access_log="off"))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, r"nobody\.yaml:1:7: user: gatehouse was started as uid %d "
                         r"gid %d, not root, so it cannot switch to root" % (self.uid, self.gid))

    def test_started_as_the_user_itself_it_serves(self):
        port = ghtest.free_port()
        g = self.start(config(self.tmp, [f"127.0.0.1:{port}"], access_log="off"))
        self.assertEqual(g.stop(), 0)
        # the same config, started as nobody: nothing to switch, it serves
        conf = self.write("self.yaml", config(self.tmp, [f"127.0.0.1:{port}"],
                                              access_log="off"))
        log = open(self.path("self.log"), "wb")
        self.addCleanup(log.close)
        p = subprocess.Popen([ghtest.GH_BIN, "-c", conf], stdout=subprocess.DEVNULL,
                             stderr=log, user=self.uid, group=self.gid, extra_groups=[])
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        ghtest.wait_for(lambda: p.poll() is not None or
                        "ready: listening" in ghtest.read_text(self.path("self.log")),
                        10, "gatehouse started as nobody to be ready")
        self.assertIsNone(p.poll(), ghtest.read_text(self.path("self.log")))
        self.assertEqual(get(port), (200, b"hi\n"))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(15), 0)


@unittest.skipUnless(account(), "needs the nobody user and the nogroup group")
class CheckTest(ghtest.TestCase):

    def check(self, name, text):
        conf = self.write(name, text + "listeners:\n  - listen: 127.0.0.1:1\n")
        r = subprocess.run([ghtest.GH_BIN, "-t", "-c", conf], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(r.returncode, 1)
        return conf, r.stderr

    def test_t_reports_an_unknown_user_and_group_at_their_values(self):
        conf, err = self.check("gw.yaml", "user: gh-no-such-user\ngroup: gh-no-such-group\n")
        self.assertIn(conf + ':1:7: user: no such user "gh-no-such-user" on this system', err)
        conf, err = self.check("gw2.yaml", "user: nobody\ngroup: gh-no-such-group\n")
        self.assertIn(conf + ':2:8: group: no such group "gh-no-such-group" on this system',
                      err)


if __name__ == "__main__":
    ghtest.main()
