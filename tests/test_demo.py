"""The offline demo (SPEC §4): tools/demo's own data and configuration, on
free ports instead of 5301/5353, must show the promised verdicts."""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import dns.exception
import dns.rcode
import pytest

import dnsclient as dc
import harness

DEMO = harness.REPO / "tools" / "demo"


class Demo:
    def __init__(self, workdir):
        self.data = Path(tempfile.mkdtemp(prefix="rblmux-demo-"))
        os.chmod(self.data, 0o755)
        for f in DEMO.iterdir():
            if f.suffix in (".ip4", ".ip6", ".dom"):
                shutil.copy(f, self.data / f.name)
                os.chmod(self.data / f.name, 0o644)
        zones = [l for l in (DEMO / "zones").read_text().splitlines()
                 if l.strip() and not l.startswith("#")]
        user = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("rbldns")
                user = ["-u", "rbldns"]
            except KeyError:
                user = ["-u", "nobody"]
        self.rbldnsd = self.daemon = None
        try:
            self._start(workdir, zones, user)
        except BaseException:
            self.stop()
            raise

    def _start(self, workdir, zones, user):
        self.list_port = harness.free_port(("127.0.0.1",))
        self.rbldnsd = harness.Proc("rbldnsd", [harness.RBLDNSD, "-n", "-b",
                                                f"127.0.0.1/{self.list_port}", "-w", self.data,
                                                *user, *zones], self.data)
        if not harness.wait_until(self._lists_ready, harness.START_TIMEOUT):
            raise RuntimeError("demo rbldnsd did not start:\n" + self.rbldnsd.log())
        self.port = harness.free_port()
        conf = (DEMO / "rblmuxd.conf").read_text()
        assert "127.0.0.1:5353" in conf and "127.0.0.1:5301" in conf
        conf = conf.replace(":5353", f":{self.port}").replace(":5301", f":{self.list_port}")
        self.daemon = harness.Rblmuxd(workdir, conf, self.port)

    def _lists_ready(self):
        try:
            dc.query("a.demo.invalid.", "SOA", port=self.list_port, timeout=0.3)
            return True
        except (dns.exception.Timeout, OSError):
            return False

    def q(self, name, rdtype="A", **kw):
        return dc.query(name, rdtype, port=self.port, **kw)

    def stop(self):
        for p in (self.daemon, self.rbldnsd):
            if p is not None:
                p.stop()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = Demo(tmp_path_factory.mktemp("demo"))
    yield d
    d.stop()


def ip(addr, view=None):
    return dc.rev(addr) + (f".{view}" if view else "") + ".rblmux.internal."


def test_demo_configuration_is_the_documented_one():
    conf = (DEMO / "rblmuxd.conf").read_text()
    assert "listen = 127.0.0.1:5353" in conf
    assert "zone = rblmux.internal" in conf
    assert "threshold = 5" in conf


def test_listed_by_every_stand_in(demo):
    assert dc.a_set(demo.q(ip("192.0.2.1"))) == {"127.0.0.2"}
    line = dc.txt_text(demo.q(ip("192.0.2.1"), "TXT"))
    for name in ("demo-a", "demo-b", "demo-c"):
        assert name in line, line
    assert dc.a_set(demo.q(ip("192.0.2.1", "score"))) == {"127.0.1.8"}


def test_listed_by_one_stand_in_only(demo):
    assert demo.q(ip("192.0.2.2")).rcode() == dns.rcode.NXDOMAIN
    assert dc.a_set(demo.q(ip("192.0.2.2", "score"))) == {"127.0.1.2"}


def test_allowlisted(demo):
    assert demo.q(ip("198.51.100.7")).rcode() == dns.rcode.NXDOMAIN
    assert dc.a_set(demo.q(ip("198.51.100.7", "score"))) == {"127.0.2.5"}


def test_on_no_list(demo):
    assert demo.q(ip("192.0.2.3")).rcode() == dns.rcode.NXDOMAIN
    assert demo.q(ip("192.0.2.3", "score")).rcode() == dns.rcode.NXDOMAIN


def test_ipv6_listed_by_two(demo):
    assert dc.a_set(demo.q(ip("2001:db8::1"))) == {"127.0.0.2"}
    assert dc.a_set(demo.q(ip("2001:db8::1", "score"))) == {"127.0.1.6"}


def test_per_source_code_and_domain_list(demo):
    assert dc.a_set(demo.q(ip("192.0.2.1", "demo-c"))) == {"127.0.0.3"}
    assert "known spam source" in dc.txt_text(demo.q(ip("192.0.2.1", "demo-c"), "TXT"))
    assert dc.a_set(demo.q("spam.example.rhs.rblmux.internal.")) == {"127.0.0.2"}


def test_every_demo_list_is_healthy(demo):
    def all_ok():
        try:
            strings = [s for rr in dc.txt_strings(demo.q("health.rblmux.internal.", "TXT"))
                       for s in rr]
        except dns.exception.Timeout:
            return False
        return len(strings) == 5 and all(s.split()[1] == "ok" for s in strings)
    assert harness.wait_until(all_ok, 10)


def test_dig_alone_shows_the_verdict(demo):
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(demo.port), "+short", "+time=2",
                          "+tries=1", "1.2.0.192.rblmux.internal", "A"],
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.split() == ["127.0.0.2"], out
