"""contrib/aws: the balancer set-up scripts and the configs that go with them.

Every script runs with --dry-run (no aws CLI needed) and the printed calls
are parsed with shlex and checked argument by argument; a real run against a
fake `aws` must make exactly those calls and stop at the first failure; bad
arguments exit 2 with usage; shellcheck is clean; conf/nlb.yaml and
conf/alb.yaml pass `gatehouse -t` and behave as their comments say."""
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import unittest

import ghtest

AWS_DIR = os.path.join(ghtest.GH_SRC, "contrib", "aws")
SCRIPTS = ("elb-classic.sh", "nlb.sh", "alb.sh")
ACM = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"
IAM = "arn:aws:iam::123456789012:server-certificate/gatehouse/example-2024"
SUBNETS = "subnet-0123abcd,subnet-0fedcba987654321f"
INSTANCES = "i-0123456789abcdef0,i-89abcdef"
VPC = "vpc-0a1b2c3d"

# the minimal good arguments of each script
GOOD = {
    "elb-classic.sh": ["--name", "gh-elb", "--cert-arn", ACM, "--instance-port", "8080",
                       "--subnets", SUBNETS],
    "nlb.sh": ["--name", "gh-nlb", "--vpc-id", VPC, "--subnets", SUBNETS, "--instance-port", "8080",
               "--cert-arn", ACM],
    "alb.sh": ["--name", "gh-alb", "--vpc-id", VPC, "--subnets", SUBNETS, "--cert-arn", ACM,
               "--instance-port", "8080"],
}


def tool_path():
    """A folder with only what the scripts run besides aws: bash, dirname, cat."""
    d = tempfile.mkdtemp(prefix="gh-aws-bin-")
    for tool in ("bash", "dirname", "cat"):
        os.symlink(shutil.which(tool), os.path.join(d, tool))
    return d


def run(script, *args, path=None, env_extra=None):
    env = {"PATH": path, "LC_ALL": "C"}
    env.update(env_extra or {})
    return subprocess.run([os.path.join(AWS_DIR, script), *args], capture_output=True, text=True,
                          env=env, timeout=60)


def option(argv, name, n=1):
    """The value(s) after --name in argv; fails when absent or repeated."""
    idx = [i for i, a in enumerate(argv) if a == name]
    assert len(idx) == 1, "%s appears %d times in %s" % (name, len(idx), argv)
    i = idx[0]
    if n == "*":
        vals = []
        for a in argv[i + 1:]:
            if a.startswith("--"):
                break
            vals.append(a)
        return vals
    return argv[i + 1] if n == 1 else argv[i + 1:i + 1 + n]


def shorthand(s):
    """AWS CLI shorthand a=b,c=d -> dict."""
    return dict(kv.split("=", 1) for kv in s.split(","))


def attributes(argv):
    """--attributes Key=k,Value=v ... -> {k: v}."""
    return {shorthand(a)["Key"]: shorthand(a)["Value"] for a in option(argv, "--attributes", "*")}


def conf_seconds(name, key):
    """A `key: Ns` top-level duration from a conf/*.yaml, in seconds."""
    with open(os.path.join(ghtest.GH_SRC, "conf", name)) as f:
        m = re.search(r"^%s:\s*(\d+)s\b" % key, f.read(), re.M)
    assert m, "%s: no %s in seconds" % (name, key)
    return int(m.group(1))


class ScriptCase(ghtest.TestCase):

    def setUp(self):
        super().setUp()
        self.bin = tool_path()
        self.addCleanup(shutil.rmtree, self.bin, True)
        self.assertIsNone(shutil.which("aws", path=self.bin))

    def dry(self, script, *args):
        """Runs script --dry-run with no aws on PATH; returns the calls as argv lists."""
        out = run(script, *args, "--dry-run", path=self.bin)
        self.assertEqual(out.returncode, 0, out.stderr)
        calls = [shlex.split(line) for line in out.stdout.splitlines()]
        self.assertTrue(calls)
        for c in calls:
            self.assertEqual(c[0], "aws", c)
        return calls

    def find(self, calls, service, op, nth=0):
        hits = [c for c in calls if c[1:3] == [service, op]]
        self.assertGreater(len(hits), nth, "no %s %s in %s" % (service, op, calls))
        return hits[nth]

    def ops(self, calls):
        return [c[2] for c in calls]


class ElbClassicTest(ScriptCase):

    def test_dry_run_makes_the_calls_in_order(self):
        calls = self.dry("elb-classic.sh", *GOOD["elb-classic.sh"], "--instances", INSTANCES)
        self.assertEqual(self.ops(calls), [
            "create-load-balancer",
            "create-load-balancer-policy", "set-load-balancer-policies-for-backend-server",
            "create-load-balancer-policy", "set-load-balancer-policies-of-listener",
            "configure-health-check", "modify-load-balancer-attributes",
            "register-instances-with-load-balancer"])
        for c in calls:
            self.assertEqual(c[1], "elb")
            self.assertEqual(option(c, "--load-balancer-name"), "gh-elb")

    def test_listeners_are_tcp_80_and_ssl_443_to_tcp_instance_port(self):
        c = self.find(self.dry("elb-classic.sh", *GOOD["elb-classic.sh"]), "elb", "create-load-balancer")
        self.assertEqual(option(c, "--listeners", "*"), [
            "Protocol=TCP,LoadBalancerPort=80,InstanceProtocol=TCP,InstancePort=8080",
            "Protocol=SSL,LoadBalancerPort=443,InstanceProtocol=TCP,InstancePort=8080,"
            "SSLCertificateId=" + ACM])
        self.assertEqual(option(c, "--subnets", "*"), SUBNETS.split(","))
        self.assertNotIn("--availability-zones", c)
        self.assertNotIn("--scheme", c)

    def test_proxy_protocol_policy_is_attached_to_the_instance_port(self):
        calls = self.dry("elb-classic.sh", *GOOD["elb-classic.sh"])
        pol = self.find(calls, "elb", "create-load-balancer-policy")
        self.assertEqual(option(pol, "--policy-type-name"), "ProxyProtocolPolicyType")
        self.assertEqual(option(pol, "--policy-attributes", "*"),
                         ["AttributeName=ProxyProtocol,AttributeValue=true"])
        att = self.find(calls, "elb", "set-load-balancer-policies-for-backend-server")
        self.assertEqual(option(att, "--instance-port"), "8080")
        self.assertEqual(option(att, "--policy-names", "*"), [option(pol, "--policy-name")])
        self.assertLess(calls.index(pol), calls.index(att))

    def test_ssl_listener_gets_a_tls12_negotiation_policy(self):
        calls = self.dry("elb-classic.sh", *GOOD["elb-classic.sh"])
        pol = self.find(calls, "elb", "create-load-balancer-policy", 1)
        self.assertEqual(option(pol, "--policy-type-name"), "SSLNegotiationPolicyType")
        self.assertEqual(shorthand(option(pol, "--policy-attributes")), {
            "AttributeName": "Reference-Security-Policy",
            "AttributeValue": "ELBSecurityPolicy-TLS-1-2-2017-01"})
        att = self.find(calls, "elb", "set-load-balancer-policies-of-listener")
        self.assertEqual(option(att, "--load-balancer-port"), "443")
        self.assertEqual(option(att, "--policy-names", "*"), [option(pol, "--policy-name")])

    def test_health_check_is_http_healthz_on_the_instance_port_within_drain_delay(self):
        c = self.find(self.dry("elb-classic.sh", *GOOD["elb-classic.sh"]), "elb", "configure-health-check")
        hc = shorthand(option(c, "--health-check"))
        self.assertEqual(hc["Target"], "HTTP:8080/healthz")
        # conf/elb.yaml's drain_delay must cover the time the ELB needs to
        # see two failed checks, or it keeps sending while accepts stop
        out_within = int(hc["Interval"]) * int(hc["UnhealthyThreshold"]) + int(hc["Timeout"])
        self.assertLessEqual(out_within, conf_seconds("elb.yaml", "drain_delay"))

    def test_idle_timeout_and_draining_match_the_gatehouse_config(self):
        c = self.find(self.dry("elb-classic.sh", *GOOD["elb-classic.sh"]),
                      "elb", "modify-load-balancer-attributes")
        attrs = json.loads(option(c, "--load-balancer-attributes"))
        self.assertEqual(attrs["ConnectionSettings"], {"IdleTimeout": 60})
        self.assertEqual(attrs["ConnectionDraining"]["Enabled"], True)
        self.assertGreaterEqual(attrs["ConnectionDraining"]["Timeout"],
                                conf_seconds("elb.yaml", "drain_delay") +
                                conf_seconds("elb.yaml", "drain_timeout"))

    def test_options_reach_the_calls(self):
        calls = self.dry("elb-classic.sh", "--name", "x", "--cert-arn", IAM, "--instance-port", "9000",
                         "--zones", "eu-west-1a,eu-west-1b", "--internal", "--region", "eu-west-1",
                         "--idle-timeout", "120", "--drain-seconds", "90", "--ssl-policy",
                         "ELBSecurityPolicy-TLS-1-1-2017-01", "--instances", INSTANCES)
        for c in calls:
            self.assertEqual(option(c, "--region"), "eu-west-1")
        cr = self.find(calls, "elb", "create-load-balancer")
        self.assertEqual(option(cr, "--availability-zones", "*"), ["eu-west-1a", "eu-west-1b"])
        self.assertEqual(option(cr, "--scheme"), "internal")
        self.assertTrue(option(cr, "--listeners", "*")[1].endswith(",SSLCertificateId=" + IAM))
        hc = shorthand(option(self.find(calls, "elb", "configure-health-check"), "--health-check"))
        self.assertEqual(hc["Target"], "HTTP:9000/healthz")
        attrs = json.loads(option(self.find(calls, "elb", "modify-load-balancer-attributes"),
                                  "--load-balancer-attributes"))
        self.assertEqual(attrs["ConnectionSettings"]["IdleTimeout"], 120)
        self.assertEqual(attrs["ConnectionDraining"]["Timeout"], 90)
        reg = self.find(calls, "elb", "register-instances-with-load-balancer")
        self.assertEqual(option(reg, "--instances", "*"), INSTANCES.split(","))

    def test_no_instances_no_registration(self):
        calls = self.dry("elb-classic.sh", *GOOD["elb-classic.sh"])
        self.assertNotIn("register-instances-with-load-balancer", self.ops(calls))

    def test_short_idle_timeout_warns_about_ping_interval(self):
        out = run("elb-classic.sh", *GOOD["elb-classic.sh"], "--idle-timeout", "20", "--dry-run",
                  path=self.bin)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("ping_interval", out.stderr)


class NlbTest(ScriptCase):

    def test_tls_listener_with_cert_and_proxy_v2_target_group(self):
        calls = self.dry("nlb.sh", *GOOD["nlb.sh"], "--instances", INSTANCES)
        self.assertEqual(self.ops(calls), [
            "create-load-balancer", "create-target-group", "modify-target-group-attributes",
            "create-listener", "create-listener", "register-targets"])
        lb = self.find(calls, "elbv2", "create-load-balancer")
        self.assertEqual(option(lb, "--type"), "network")
        self.assertEqual(option(lb, "--name"), "gh-nlb")
        self.assertEqual(option(lb, "--subnets", "*"), SUBNETS.split(","))
        tg = self.find(calls, "elbv2", "create-target-group")
        self.assertEqual([option(tg, k) for k in ("--protocol", "--port", "--vpc-id", "--target-type")],
                         ["TCP", "8080", VPC, "instance"])
        self.assertEqual([option(tg, k) for k in ("--health-check-protocol", "--health-check-port",
                                                  "--health-check-path", "--matcher")],
                         ["HTTP", "traffic-port", "/healthz", "HttpCode=200"])
        interval, timeout, fails = (int(option(tg, k)) for k in (
            "--health-check-interval-seconds", "--health-check-timeout-seconds",
            "--unhealthy-threshold-count"))
        self.assertLessEqual(interval * fails + timeout, conf_seconds("nlb.yaml", "drain_delay"))
        attrs = attributes(self.find(calls, "elbv2", "modify-target-group-attributes"))
        drain = conf_seconds("nlb.yaml", "drain_delay") + conf_seconds("nlb.yaml", "drain_timeout")
        self.assertEqual(attrs["proxy_protocol_v2.enabled"], "true")
        self.assertEqual(attrs["preserve_client_ip.enabled"], "false")
        self.assertEqual(attrs["target_health_state.unhealthy.connection_termination.enabled"], "false")
        self.assertGreaterEqual(int(attrs["target_health_state.unhealthy.draining_interval_seconds"]), drain)
        self.assertGreaterEqual(int(attrs["deregistration_delay.timeout_seconds"]), drain)
        self.assertEqual(option(self.find(calls, "elbv2", "modify-target-group-attributes"),
                                "--target-group-arn"), "TARGET_GROUP_ARN")
        l80, l443 = self.find(calls, "elbv2", "create-listener"), self.find(calls, "elbv2", "create-listener", 1)
        for li in (l80, l443):
            self.assertEqual(option(li, "--load-balancer-arn"), "LOAD_BALANCER_ARN")
            self.assertEqual(shorthand(option(li, "--default-actions")),
                             {"Type": "forward", "TargetGroupArn": "TARGET_GROUP_ARN"})
        self.assertEqual((option(l80, "--protocol"), option(l80, "--port")), ("TCP", "80"))
        self.assertEqual((option(l443, "--protocol"), option(l443, "--port")), ("TLS", "443"))
        self.assertEqual(option(l443, "--certificates"), "CertificateArn=" + ACM)
        self.assertEqual(option(l443, "--ssl-policy"), "ELBSecurityPolicy-TLS13-1-2-2021-06")
        reg = self.find(calls, "elbv2", "register-targets")
        self.assertEqual(option(reg, "--targets", "*"), ["Id=" + i for i in INSTANCES.split(",")])

    def test_without_cert_tcp_443_passes_tls_through_to_a_second_group(self):
        args = [a for a in GOOD["nlb.sh"] if a not in ("--cert-arn", ACM)]
        calls = self.dry("nlb.sh", *args, "--instances", INSTANCES)
        plain, tls = (self.find(calls, "elbv2", "create-target-group", n) for n in (0, 1))
        self.assertEqual((option(tls, "--name"), option(tls, "--port"), option(tls, "--protocol")),
                         ("gh-nlb-tls", "8443", "TCP"))
        # the TLS port cannot answer plain HTTP: its health is the plain port's
        self.assertEqual(option(tls, "--health-check-port"), "8080")
        self.assertEqual(option(tls, "--health-check-path"), "/healthz")
        mods = [c for c in calls if c[2] == "modify-target-group-attributes"]
        self.assertEqual([option(m, "--target-group-arn") for m in mods],
                         ["TARGET_GROUP_ARN", "TLS_TARGET_GROUP_ARN"])
        for m in mods:
            self.assertEqual(attributes(m)["proxy_protocol_v2.enabled"], "true")
            self.assertEqual(attributes(m)["preserve_client_ip.enabled"], "false")
        l443 = self.find(calls, "elbv2", "create-listener", 1)
        self.assertEqual((option(l443, "--protocol"), option(l443, "--port")), ("TCP", "443"))
        self.assertNotIn("--certificates", l443)
        self.assertEqual(shorthand(option(l443, "--default-actions"))["TargetGroupArn"],
                         "TLS_TARGET_GROUP_ARN")
        regs = [option(c, "--target-group-arn") for c in calls if c[2] == "register-targets"]
        self.assertEqual(regs, ["TARGET_GROUP_ARN", "TLS_TARGET_GROUP_ARN"])
        self.assertEqual(plain[plain.index("--port") + 1], "8080")

    def test_listeners_come_after_the_target_group_attributes(self):
        ops = self.ops(self.dry("nlb.sh", *GOOD["nlb.sh"]))
        self.assertLess(ops.index("modify-target-group-attributes"), ops.index("create-listener"))

    def test_tls_instance_port_is_refused_with_a_cert_or_equal_to_the_plain_port(self):
        out = run("nlb.sh", *GOOD["nlb.sh"], "--tls-instance-port", "8443", "--dry-run", path=self.bin)
        self.assertEqual(out.returncode, 2, out.stderr)
        args = [a for a in GOOD["nlb.sh"] if a not in ("--cert-arn", ACM)]
        out = run("nlb.sh", *args, "--tls-instance-port", "8080", "--dry-run", path=self.bin)
        self.assertEqual(out.returncode, 2, out.stderr)


class AlbTest(ScriptCase):

    def test_http_and_https_listeners_forward_to_an_http_target_group(self):
        calls = self.dry("alb.sh", *GOOD["alb.sh"], "--instances", INSTANCES)
        self.assertEqual(self.ops(calls), [
            "create-load-balancer", "modify-load-balancer-attributes", "create-target-group",
            "modify-target-group-attributes", "create-listener", "create-listener", "register-targets"])
        self.assertEqual(option(self.find(calls, "elbv2", "create-load-balancer"), "--type"), "application")
        tg = self.find(calls, "elbv2", "create-target-group")
        self.assertEqual([option(tg, k) for k in ("--protocol", "--protocol-version", "--port",
                                                  "--health-check-path", "--matcher")],
                         ["HTTP", "HTTP1", "8080", "/healthz", "HttpCode=200"])
        l80, l443 = self.find(calls, "elbv2", "create-listener"), self.find(calls, "elbv2", "create-listener", 1)
        self.assertEqual((option(l80, "--protocol"), option(l80, "--port")), ("HTTP", "80"))
        self.assertEqual((option(l443, "--protocol"), option(l443, "--port")), ("HTTPS", "443"))
        self.assertEqual(option(l443, "--certificates"), "CertificateArn=" + ACM)
        # port 80 forwards (gatehouse redirects from X-Forwarded-Proto), no ALB redirect action
        for li in (l80, l443):
            self.assertEqual(shorthand(option(li, "--default-actions")),
                             {"Type": "forward", "TargetGroupArn": "TARGET_GROUP_ARN"})

    def test_idle_timeout_and_deregistration_delay(self):
        calls = self.dry("alb.sh", *GOOD["alb.sh"])
        lb_attrs = attributes(self.find(calls, "elbv2", "modify-load-balancer-attributes"))
        self.assertEqual(lb_attrs["idle_timeout.timeout_seconds"], "60")
        self.assertEqual(lb_attrs["routing.http.xff_header_processing.mode"], "append")
        tg_attrs = attributes(self.find(calls, "elbv2", "modify-target-group-attributes"))
        self.assertGreaterEqual(int(tg_attrs["deregistration_delay.timeout_seconds"]),
                                conf_seconds("alb.yaml", "drain_delay") +
                                conf_seconds("alb.yaml", "drain_timeout"))
        calls = self.dry("alb.sh", *GOOD["alb.sh"], "--idle-timeout", "45", "--drain-seconds", "70")
        self.assertEqual(attributes(self.find(calls, "elbv2", "modify-load-balancer-attributes"))
                         ["idle_timeout.timeout_seconds"], "45")
        self.assertEqual(attributes(self.find(calls, "elbv2", "modify-target-group-attributes"))
                         ["deregistration_delay.timeout_seconds"], "70")

    def test_one_subnet_is_refused(self):
        args = list(GOOD["alb.sh"])
        args[args.index(SUBNETS)] = "subnet-0123abcd"
        self.assertEqual(run("alb.sh", *args, "--dry-run", path=self.bin).returncode, 2)

    def test_long_idle_timeout_warns_about_keepalive(self):
        out = run("alb.sh", *GOOD["alb.sh"], "--idle-timeout", "120", "--dry-run", path=self.bin)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("keepalive_timeout", out.stderr)


class ArgumentTest(ScriptCase):

    def refused(self, script, args):
        out = run(script, *args, "--dry-run", path=self.bin)
        self.assertEqual(out.returncode, 2, "%s %s: %s" % (script, args, out.stderr))
        self.assertIn("usage:", out.stderr)
        self.assertEqual(out.stdout, "")

    def replaced(self, script, opt, value):
        args = list(GOOD[script])
        args[args.index(opt) + 1] = value
        return args

    def without(self, script, opt):
        args = list(GOOD[script])
        i = args.index(opt)
        return args[:i] + args[i + 2:]

    def test_missing_required_options_exit_2(self):
        for script in SCRIPTS:
            for opt in ("--name", "--instance-port"):
                with self.subTest(script=script, opt=opt):
                    self.refused(script, self.without(script, opt))
        self.refused("elb-classic.sh", self.without("elb-classic.sh", "--cert-arn"))
        self.refused("elb-classic.sh", self.without("elb-classic.sh", "--subnets"))
        self.refused("alb.sh", self.without("alb.sh", "--cert-arn"))
        for script in ("nlb.sh", "alb.sh"):
            self.refused(script, self.without(script, "--vpc-id"))
            self.refused(script, self.without(script, "--subnets"))

    def test_bad_port_exits_2(self):
        for script in SCRIPTS:
            for port in ("0", "65536", "-1", "80a", "08080", "", "99999999999999999999"):
                with self.subTest(script=script, port=port):
                    self.refused(script, self.replaced(script, "--instance-port", port))

    def test_bad_cert_arn_exits_2(self):
        bad = ("arn:aws:s3:::bucket", "arn:aws:acm:us-east-1:1234:certificate/abc",
               "arn:aws:iam::123456789012:role/x", "certificate/abc", ACM + " ", "")
        for script in SCRIPTS:
            for arn in bad:
                with self.subTest(script=script, arn=arn):
                    self.refused(script, self.replaced(script, "--cert-arn", arn))

    def test_good_port_edges_and_iam_certificates_pass(self):
        for script in SCRIPTS:
            for port in ("1", "65535"):
                self.dry(script, *self.replaced(script, "--instance-port", port))
            self.dry(script, *self.replaced(script, "--cert-arn", IAM))

    def test_bad_names_ids_and_unknown_options_exit_2(self):
        for script in SCRIPTS:
            with self.subTest(script=script):
                self.refused(script, self.replaced(script, "--name", "-gh"))
                self.refused(script, self.replaced(script, "--name", "a" * 33))
                self.refused(script, self.replaced(script, "--name", "gh_elb"))
                self.refused(script, self.replaced(script, "--subnets", "subnet-0123abcd,,subnet-0123abce"))
                self.refused(script, self.replaced(script, "--subnets", "sg-0123abcd"))
                self.refused(script, GOOD[script] + ["--instances", "i-xyz"])
                self.refused(script, GOOD[script] + ["--region", "Mars"])
                self.refused(script, GOOD[script] + ["--bogus"])
                self.refused(script, GOOD[script] + ["--region"])   # no value

    def test_help_exits_0_with_usage_on_stdout(self):
        for script in SCRIPTS:
            out = run(script, "--help", path=self.bin)
            self.assertEqual(out.returncode, 0)
            self.assertIn("usage:", out.stdout)


FAKE_AWS = r'''#!/usr/bin/env python3
# a stand-in aws CLI: logs its argv, answers the --query calls, fails on call N
import json, os, sys
log = os.environ["FAKE_AWS_LOG"]
with open(log, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
n = sum(1 for _ in open(log))
if n == int(os.environ.get("FAKE_AWS_FAIL_AT", "0")):
    sys.stderr.write("An error occurred (ValidationError)\n")
    sys.exit(254)
op = sys.argv[1:3]
if op == ["elb", "create-load-balancer"]:
    print("gh.us-east-1.elb.amazonaws.com")
elif op == ["elbv2", "create-load-balancer"]:
    print("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/x/gh/1\tgh.elb.amazonaws.com")
elif op == ["elbv2", "create-target-group"]:
    name = sys.argv[sys.argv.index("--name") + 1]
    print("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/%s/2" % name)
else:
    print("{}")
'''


class RealRunTest(ScriptCase):
    """Without --dry-run: the same calls, run; the first failure stops it."""

    def setUp(self):
        super().setUp()
        fake = os.path.join(self.bin, "aws")
        with open(fake, "w") as f:
            f.write(FAKE_AWS.replace("/usr/bin/env python3", sys.executable))
        os.chmod(fake, 0o755)
        self.log = self.path("aws.log")

    def real(self, script, args, fail_at=0):
        if os.path.exists(self.log):
            os.unlink(self.log)
        out = run(script, *args, path=self.bin,
                  env_extra={"FAKE_AWS_LOG": self.log, "FAKE_AWS_FAIL_AT": str(fail_at)})
        self.assertTrue(os.path.exists(self.log), "aws never ran: " + out.stderr)
        with open(self.log) as f:
            return out, [["aws"] + json.loads(line) for line in f]

    def test_a_real_run_makes_the_dry_run_calls(self):
        lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/x/gh/1"
        cases = [("elb-classic.sh", GOOD["elb-classic.sh"] + ["--instances", INSTANCES]),
                 ("nlb.sh", GOOD["nlb.sh"] + ["--instances", INSTANCES]),
                 ("nlb.sh", [a for a in GOOD["nlb.sh"] if a not in ("--cert-arn", ACM)] +
                  ["--instances", INSTANCES]),
                 ("alb.sh", GOOD["alb.sh"] + ["--instances", INSTANCES, "--region", "us-east-1"])]
        for script, args in cases:
            with self.subTest(script=script, args=args):
                expected = self.dry(script, *args)
                name = args[args.index("--name") + 1]
                tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/%s/2" % name
                subst = {"LOAD_BALANCER_ARN": lb, "TARGET_GROUP_ARN": tg,
                         "TLS_TARGET_GROUP_ARN": tg.replace("/%s/" % name, "/%s-tls/" % name)}
                expected = [[re.sub(r"\b(TLS_TARGET_GROUP_ARN|TARGET_GROUP_ARN|LOAD_BALANCER_ARN)\b",
                                    lambda m: subst[m.group(1)], w) for w in c] for c in expected]
                out, calls = self.real(script, args)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(calls, expected)
                self.assertIn("done:", out.stderr)

    def test_the_first_failed_call_stops_the_script(self):
        for script in SCRIPTS:
            with self.subTest(script=script):
                out, calls = self.real(script, GOOD[script], fail_at=2)
                self.assertEqual(out.returncode, 254, out.stderr)
                self.assertEqual(len(calls), 2)
                self.assertIn("stopping here", out.stderr)

    def test_without_aws_on_path_a_real_run_exits_1(self):
        os.unlink(os.path.join(self.bin, "aws"))
        for script in SCRIPTS:
            out = run(script, *GOOD[script], path=self.bin)
            self.assertEqual(out.returncode, 1)
            self.assertIn("aws CLI is not on PATH", out.stderr)


class AwsCliParsesTheCallsTest(ScriptCase):
    """Every dry-run call goes through the installed aws CLI's own argument
    and parameter validation, against a closed local port with fake
    credentials: a typo in an option, a shorthand key or an attribute
    structure fails there, before any connection."""

    @unittest.skipUnless(shutil.which("aws"), "the aws CLI is not installed (optional check)")
    def test_the_aws_cli_accepts_every_call(self):
        variants = [("elb-classic.sh", GOOD["elb-classic.sh"] + ["--instances", INSTANCES,
                                                                 "--security-groups", "sg-01234567"]),
                    ("elb-classic.sh", self_replace(GOOD["elb-classic.sh"], "--subnets", "--zones",
                                                    "us-east-1a,us-east-1b") + ["--internal"]),
                    ("nlb.sh", GOOD["nlb.sh"] + ["--instances", INSTANCES]),
                    ("nlb.sh", [a for a in GOOD["nlb.sh"] if a not in ("--cert-arn", ACM)] +
                     ["--instances", INSTANCES, "--internal"]),
                    ("alb.sh", GOOD["alb.sh"] + ["--instances", INSTANCES, "--security-groups", "sg-01234567"])]
        calls = []
        for script, args in variants:
            calls += self.dry(script, *args)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
        s.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE", AWS_SECRET_ACCESS_KEY="x",
                   AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_MAX_ATTEMPTS="1",
                   AWS_RETRY_MODE="standard", AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="",
                   HOME=self.tmp)

        def one(call):
            out = subprocess.run([shutil.which("aws"), *call[1:], "--endpoint-url",
                                  "http://127.0.0.1:%d" % closed], capture_output=True, text=True,
                                 env=env, timeout=120)
            return call, out.stdout + out.stderr

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for call, text in pool.map(one, calls):
                with self.subTest(call=" ".join(call[:3])):
                    self.assertIn("Could not connect to the endpoint URL", text,
                                  "%s\n%s" % (shlex.join(call), text))


def self_replace(args, old_opt, new_opt, value):
    args = list(args)
    i = args.index(old_opt)
    args[i:i + 2] = [new_opt, value]
    return args


class ShellcheckTest(unittest.TestCase):

    @unittest.skipUnless(shutil.which("shellcheck"), "shellcheck is not installed "
                         "(apt-get install shellcheck; contrib/quickstart.sh test installs it)")
    def test_scripts_are_shellcheck_clean(self):
        files = sorted(os.path.join(AWS_DIR, f) for f in os.listdir(AWS_DIR) if f.endswith(".sh"))
        self.assertEqual({os.path.basename(f) for f in files} & set(SCRIPTS), set(SCRIPTS))
        out = subprocess.run(["shellcheck", "-x", *files], capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


def proxy_v2(src, sport, dst, dport):
    """A PROXY v2 PROXY TCP4 header."""
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + struct.pack("!H", len(addrs)) + addrs


PROXY_V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n" + b"\x20\x00\x00\x00"


def status(resp):
    return resp.split(b"\r\n", 1)[0]


class ConfTest(ghtest.TestCase):
    """conf/nlb.yaml and conf/alb.yaml: valid, and they behave as they say."""

    # `gatehouse -t` on every conf/*.yaml: test_cli.py
    def local(self, name, trusted="127.0.0.1/32"):
        """The conf file on a free loopback port, trusting `trusted`, with
        absolute paths; returns (daemon, port)."""
        with open(os.path.join(ghtest.GH_SRC, "conf", name)) as f:
            text = f.read()
        port = ghtest.free_port()
        vpc = "[10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]"
        self.assertIn("listen: 0.0.0.0:8080", text)
        self.assertIn("trusted_proxies: " + vpc, text)
        text = text.replace("listen: 0.0.0.0:8080", "listen: 127.0.0.1:%d" % port)
        text = text.replace("trusted_proxies: " + vpc, "trusted_proxies: [%s]" % trusted)
        text = text.replace("root: ../www", "root: " + os.path.join(ghtest.GH_SRC, "www"))
        text = re.sub(r"^plugins_dir: .*$", "plugins_dir: " + os.path.join(ghtest.GH_BUILD, "plugins"), text, flags=re.M)
        return self.start(text), port

    def get(self, port, path="/", headers="", prefix=b"", source=None):
        req = ("GET %s HTTP/1.1\r\nHost: gh.example\r\n%sConnection: close\r\n\r\n" % (path, headers))
        return ghtest.raw_request(port, prefix + req.encode(), source=source)

    def test_nlb_conf_schemes_from_the_proxy_v2_destination_port(self):
        g, port = self.local("nlb.yaml")
        self.assertEqual(status(self.get(port, "/healthz", prefix=PROXY_V2_LOCAL)), b"HTTP/1.1 200 OK")
        r = self.get(port, prefix=proxy_v2("203.0.113.7", 40000, "10.0.1.5", 80))
        self.assertEqual(status(r), b"HTTP/1.1 301 Moved Permanently")
        self.assertIn(b"\r\nLocation: https://gh.example/", r)
        self.assertEqual(status(self.get(port, prefix=proxy_v2("203.0.113.7", 40001, "10.0.1.5", 443))),
                         b"HTTP/1.1 200 OK")
        # the health check is never redirected, whatever the port
        self.assertEqual(status(self.get(port, "/healthz", prefix=proxy_v2("203.0.113.7", 40002,
                                                                           "10.0.1.5", 80))),
                         b"HTTP/1.1 200 OK")
        # no header at all: refused without a byte (v2 is required)
        self.assertEqual(self.get(port, "/healthz"), b"")
        ghtest.wait_for(lambda: "203.0.113.7" in g.log(), what="the PROXY source in the access log")

    def test_alb_conf_schemes_from_x_forwarded_proto_of_trusted_peers_only(self):
        g, port = self.local("alb.yaml", trusted="127.0.0.1/32")
        self.assertEqual(status(self.get(port, "/healthz")), b"HTTP/1.1 200 OK")
        xff = "X-Forwarded-For: 198.51.100.9\r\n"
        r = self.get(port, headers=xff + "X-Forwarded-Proto: http\r\n")
        self.assertEqual(status(r), b"HTTP/1.1 301 Moved Permanently")
        self.assertEqual(status(self.get(port, headers=xff + "X-Forwarded-Proto: https\r\n")),
                         b"HTTP/1.1 200 OK")
        # a peer outside trusted_proxies cannot claim https
        self.assertEqual(status(self.get(port, headers="X-Forwarded-Proto: https\r\n",
                                         source=("127.0.0.2", 0))),
                         b"HTTP/1.1 301 Moved Permanently")
        ghtest.wait_for(lambda: "198.51.100.9" in g.log(), what="the X-Forwarded-For client in the access log")


if __name__ == "__main__":
    ghtest.main()
