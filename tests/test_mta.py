"""rblmux in the mail path, with the real programs (issue 7).

A private network namespace holds the whole path: the demo lists (Debian's
rbldnsd serving tools/demo/ on 127.0.0.1:5301), rblmuxd with the demo
configuration (127.0.0.1:5353), Debian's unbound on 127.0.0.1:53 with the stub
zone of tests/mta/unbound.conf (validating with the root trust anchor, as
Debian's does by default), and a private Postfix instance (smtpd on port 25
with reject_rbl_client, postscreen on 2525 with the score view) configured by
tests/mta/main.cf. `ip netns exec` gives Postfix the namespace's own
/etc/netns/NAME/resolv.conf ("nameserver 127.0.0.1"), so Postfix resolves
through unbound the way a deployment does, and the machine's resolver
configuration is never touched.

The SMTP clients are swaks runs bound to the demo addresses, which the
namespace puts on its lo: smtpd and postscreen see the real client address
over a real TCP connection. (XCLIENT would fake it for smtpd alone; postscreen
ignores XCLIENT.) Nothing leaves the namespace, which is deleted at teardown.

The sendmail tests build sendmail.cf with m4 from Debian's stock sendmail.mc
and the README's FEATURE lines: Debian's sendmail-bin conflicts with postfix
(both provide mail-transport-agent), so sendmail itself is not run.
"""

import ctypes
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import dns.exception
import dns.rcode
import pytest

import dnsclient
import harness

MTA = harness.TESTS / "mta"
DEMO = harness.REPO / "tools" / "demo"
LIST_PORT = 5301
RBLMUX_PORT = 5353
SMTPD_PORT = 25
POSTSCREEN_PORT = 2525
# The demo's verdicts (tools/demo/README).
LISTED = "192.0.2.1"          # 3 + 3 + 2 = 8
LISTED_TXT = ("listed: score 8 >= 5; demo-a 127.0.0.2 +3, demo-b 127.0.0.2 +3, "
              "demo-c 127.0.0.3 +2")
LISTED6 = "2001:db8::1"       # 3 + 3 = 6
BELOW = "192.0.2.2"           # 2
UNLISTED = "192.0.2.3"        # 0
ALLOWED = "198.51.100.7"      # -5
CLIENTS = (LISTED, BELOW, UNLISTED, ALLOWED, LISTED6)
STEP_TIMEOUT = 30

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
IP = shutil.which("ip") or "/usr/sbin/ip"
SWAKS = shutil.which("swaks") or "/usr/bin/swaks"
M4 = shutil.which("m4") or "/usr/bin/m4"
# Debian's unbound validates with the root trust anchor (dns-root-data); the
# test's does too, so that domain-insecure is put to the test.
ROOT_KEY = Path("/usr/share/dns/root.key")
SENDMAIL_CF = Path("/usr/share/sendmail/cf")
DEBIAN_MC = SENDMAIL_CF / "debian" / "sendmail.mc"

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _missing(paths):
    return [p for p in paths if not os.access(p, os.X_OK)]


def _require_mail_path():
    missing = _missing([POSTFIX, UNBOUND, IP, SWAKS, harness.RBLDNSD])
    if not ROOT_KEY.exists():
        missing.append(str(ROOT_KEY))
    if missing:
        pytest.skip("not installed (tools/deps.sh installs them): " + ", ".join(missing))
    if os.geteuid() != 0:
        pytest.skip("needs root: a network namespace, Postfix and unbound as root")
    if not harness.rblmuxd_path().exists():
        pytest.skip(f"rblmuxd is not built: {harness.rblmuxd_path()}")


def _run(argv, timeout=STEP_TIMEOUT, check=True):
    res = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                         timeout=timeout, stdin=subprocess.DEVNULL)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {res.returncode}:\n"
                           f"{res.stdout}{res.stderr}")
    return res


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _kill_pid(pid, timeout=harness.STOP_TIMEOUT):
    """SIGTERM, then SIGKILL; for processes that are not our children."""
    if not _pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    if harness.wait_until(lambda: not _pid_alive(pid), timeout):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    harness.wait_until(lambda: not _pid_alive(pid), timeout)


class Netns:
    """A network namespace of our own with lo up, the client addresses on lo
    and /etc/netns/NAME/resolv.conf pointing at its 127.0.0.1."""

    def __init__(self, addresses):
        self.name = f"rblmux-mta-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        self.etc = Path("/etc/netns") / self.name
        self.made_etc_netns = False
        _run([IP, "netns", "add", self.name])
        try:
            _run([IP, "-n", self.name, "link", "set", "lo", "up"])
            for addr in addresses:
                if ":" in addr:
                    _run([IP, "-n", self.name, "addr", "add", f"{addr}/128", "dev", "lo",
                          "nodad"])
                else:
                    _run([IP, "-n", self.name, "addr", "add", f"{addr}/32", "dev", "lo"])
            try:
                self.etc.parent.mkdir(mode=0o755)
                self.made_etc_netns = True
            except FileExistsError:
                pass
            self.etc.mkdir(mode=0o755)
            (self.etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        except BaseException:
            self.delete()
            raise

    def exec_argv(self, argv):
        """argv run inside the namespace with its resolv.conf (ip netns exec
        execs in place: the PID stays the program's)."""
        return [IP, "netns", "exec", self.name, *[str(a) for a in argv]]

    class _Inside:
        def __init__(self, name):
            self.path = f"/run/netns/{name}"

        def __enter__(self):
            self.own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open(self.path, os.O_RDONLY)
            try:
                _setns(target)
            except BaseException:
                os.close(self.own)
                raise
            finally:
                os.close(target)
            return self

        def __exit__(self, *exc):
            try:
                _setns(self.own)
            finally:
                os.close(self.own)

    def inside(self):
        """This thread's sockets and children in the namespace, for a while."""
        return self._Inside(self.name)

    def pids(self):
        res = _run([IP, "netns", "pids", self.name], check=False)
        return [int(p) for p in res.stdout.split()]

    def delete(self):
        # Everything in the namespace was started by this test: stop what is
        # left (a Postfix child that outlived its master), one PID at a time.
        for pid in self.pids():
            _kill_pid(pid)
        _run([IP, "netns", "delete", self.name], check=False)
        shutil.rmtree(self.etc, ignore_errors=True)
        if self.made_etc_netns:
            try:
                self.etc.parent.rmdir()
            except OSError:
                pass


def _render(template, **values):
    text = template.read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    return text


class Postfix:
    """A private Postfix instance: config, queue and data directories in a
    temporary folder, started with `postfix -c DIR start` in the namespace and
    stopped by its master's PID."""

    def __init__(self, netns):
        self.netns = netns
        # Postfix's daemons drop to the postfix user: a world-searchable
        # folder outside pytest's private (0700) tree.
        self.dir = Path(tempfile.mkdtemp(prefix="rblmux-postfix-"))
        os.chmod(self.dir, 0o755)
        self.etc = self.dir / "etc"
        self.maillog = self.dir / "maillog"
        self.master_pid = None
        for sub in ("etc", "spool", "data"):
            (self.dir / sub).mkdir()
        user = pwd.getpwnam("postfix")
        os.chown(self.dir / "data", user.pw_uid, user.pw_gid)
        (self.etc / "main.cf").write_text(
            _render(MTA / "instance.cf.in", DIR=self.dir) + "\n" + (MTA / "main.cf").read_text())
        shutil.copy(MTA / "master.cf", self.etc / "master.cf")
        shutil.copy(MTA / "rbl_reply", self.etc / "rbl_reply")
        res = _run(netns.exec_argv([POSTFIX, "-c", self.etc, "start"]), check=False)
        pid_file = self.dir / "spool" / "pid" / "master.pid"
        if res.returncode == 0:
            self.master_pid = harness.wait_until(lambda: _read_pid(pid_file), harness.START_TIMEOUT)
        if not self.master_pid:
            log = self.log()
            self.stop()
            raise RuntimeError(f"postfix did not start ({res.returncode}):\n"
                               f"{res.stdout}{res.stderr}\n{log}")

    def log(self):
        try:
            return self.maillog.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=10.0):
        """The first maillog line matching pattern (postlogd writes a moment
        after the SMTP reply), or None."""
        regex = re.compile(pattern)

        def find():
            return next((line for line in self.log().splitlines() if regex.search(line)), None)
        return harness.wait_until(find, timeout, interval=0.1)

    def stop(self):
        if self.master_pid:
            _kill_pid(self.master_pid)
        shutil.rmtree(self.dir, ignore_errors=True)


def _read_pid(path):
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Smtp:
    """One swaks session: its transcript, exit status and the server's replies."""

    def __init__(self, res):
        self.status = res.returncode
        self.transcript = res.stdout + res.stderr
        # "<-  250 ..." is a reply, "<** 554 ..." a reply swaks takes as an error.
        self.replies = [line[4:] for line in self.transcript.splitlines()
                        if line.startswith(("<-  ", "<** "))]

    @property
    def queued(self):
        """The queue ID of the 250 after DATA, or None."""
        for reply in self.replies:
            m = re.match(r"250 .*queued as ([0-9A-Za-z]+)", reply)
            if m:
                return m.group(1)
        return None

    @property
    def rejection(self):
        return next((r for r in self.replies if r[:1] == "5"), None)


class MailPath:
    """The whole path in one namespace; lists_up=False leaves the lists out
    and keeps rblmuxd from marking them down, so it answers SERVFAIL."""

    def __init__(self, workdir, lists_up=True):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.procs = []
        self.postfix = None
        self.lists_dir = None
        self.netns = Netns(CLIENTS)
        try:
            with self.netns.inside():
                if lists_up:
                    self._start_lists()
                self._start_rblmuxd(lists_up)
                self._start_unbound()
            self.postfix = Postfix(self.netns)
        except BaseException:
            self.stop()
            raise

    def _start_lists(self):
        # rbldnsd rereads its files as its own user: a world-readable copy.
        self.lists_dir = Path(tempfile.mkdtemp(prefix="rblmux-mta-lists-"))
        os.chmod(self.lists_dir, 0o755)
        for f in DEMO.iterdir():
            if f.suffix in (".ip4", ".ip6", ".dom"):
                shutil.copy(f, self.lists_dir / f.name)
                os.chmod(self.lists_dir / f.name, 0o644)
        zones = [z for z in (DEMO / "zones").read_text().split()
                 if z and not z.startswith("#")]
        user = []
        for candidate in ("rbldns", "nobody"):
            try:
                pwd.getpwnam(candidate)
                user = ["-u", candidate]
                break
            except KeyError:
                continue
        proc = harness.Proc("rbldnsd", [harness.RBLDNSD, "-n", "-b", f"127.0.0.1/{LIST_PORT}",
                                        "-w", self.lists_dir, *user, *zones], self.workdir)
        self.procs.append(proc)

        def ready():
            try:
                dnsclient.query("a.demo.invalid.", "SOA", port=LIST_PORT, timeout=0.3)
                return proc.alive()
            except (dns.exception.Timeout, OSError):
                return False
        if not harness.wait_until(ready, harness.START_TIMEOUT):
            raise RuntimeError("rbldnsd did not start:\n" + proc.log())

    def _start_rblmuxd(self, lists_up):
        text = (DEMO / "rblmuxd.conf").read_text()
        if not lists_up:
            # Three missed probes would mark every list down, and rblmuxd would
            # answer NXDOMAIN (plainly "not listed"); without probes it keeps
            # answering SERVFAIL ("could not decide"), the case to prove.
            text, n = re.subn(r"(?m)^probe_interval = .*$", "probe_interval = 1h", text)
            assert n == 1, "tools/demo/rblmuxd.conf has no probe_interval line"
        daemon = harness.Rblmuxd(self.workdir / "rblmuxd", text, RBLMUX_PORT)
        self.procs.append(daemon.proc)

    def _start_unbound(self):
        proc = self.start_unbound("unbound", MTA / "unbound.conf", 53)

        # Through the stub zone to rblmuxd: the apex SOA.
        def ready():
            try:
                r = dnsclient.query(harness.APEX + ".", "SOA", port=53, timeout=0.5)
                return proc.alive() and r.rcode() == dns.rcode.NOERROR
            except (dns.exception.Timeout, OSError):
                return False
        if not harness.wait_until(ready, harness.START_TIMEOUT, interval=0.1):
            raise RuntimeError("unbound did not answer the apex through its stub zone:\n"
                               + proc.log())

    def start_unbound(self, name, snippet, port):
        """An unbound on 127.0.0.1:port in the namespace, including snippet;
        stopped with the rest. The caller must be inside the namespace."""
        udir = self.workdir / name
        udir.mkdir()
        conf = udir / "unbound.conf"
        conf.write_text(_render(MTA / "unbound-instance.conf.in", DIR=udir, PORT=port,
                                SNIPPET=snippet, ROOT_KEY=ROOT_KEY))
        proc = harness.Proc(name, [UNBOUND, "-d", "-c", conf], udir)
        self.procs.append(proc)
        return proc

    def resolve(self, name, rdtype="A"):
        """name asked of unbound in the namespace, as Postfix asks it."""
        with self.netns.inside():
            return dnsclient.query(name, rdtype, port=53, timeout=5)

    def smtp(self, client, port=SMTPD_PORT):
        server = "::1" if ":" in client else "127.0.0.1"
        argv = [SWAKS, "--server", server, "--port", port, "--local-interface", client,
                "--helo", "client.example.org", "--from", "sender@example.org",
                "--to", "rcpt@example.com", "--timeout", "20"]
        return Smtp(_run(self.netns.exec_argv(argv), timeout=60, check=False))

    def logs(self):
        parts = [f"--- {p.name} (pid {p.pid}) ---\n{p.log()[-4000:]}" for p in self.procs]
        if self.postfix:
            parts.append(f"--- maillog ---\n{self.postfix.log()[-6000:]}")
        return "\n".join(parts)

    def stop(self):
        if self.postfix:
            self.postfix.stop()
        for proc in reversed(self.procs):
            try:
                proc.stop()
            except Exception:
                pass
        self.netns.delete()
        if self.lists_dir:
            shutil.rmtree(self.lists_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def mail(tmp_path_factory):
    _require_mail_path()
    path = MailPath(tmp_path_factory.mktemp("mail"))
    yield path
    path.stop()


@pytest.fixture
def mail_down(tmp_path, request):
    _require_mail_path()
    path = MailPath(tmp_path / "down", lists_up=False)
    yield path
    failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False)
                 for w in ("setup", "call"))
    if failed:
        print(path.logs())
    path.stop()


def _explain(mail, session):
    return f"swaks exited {session.status}:\n{session.transcript}\n{mail.logs()}"


# -- the path itself -----------------------------------------------------------

def test_unbound_stub_zone_reaches_rblmuxd(mail):
    r = mail.resolve(f"{dnsclient.rev(LISTED)}.{harness.APEX}.", "TXT")
    assert r.rcode() == dns.rcode.NOERROR
    assert dnsclient.txt_strings(r) == [(LISTED_TXT,)]
    assert dnsclient.a_set(mail.resolve(f"{dnsclient.rev(LISTED)}.{harness.APEX}.")) == {"127.0.0.2"}
    assert mail.resolve(f"{dnsclient.rev(BELOW)}.{harness.APEX}.").rcode() == dns.rcode.NXDOMAIN
    score = mail.resolve(f"{dnsclient.rev(BELOW)}.score.{harness.APEX}.")
    assert dnsclient.a_set(score) == {"127.0.1.2"}


def test_without_domain_insecure_the_validator_refuses_the_apex(mail, tmp_path):
    """Why the README's stub zone says domain-insecure: with the root trust
    anchor, unbound wants a chain of trust for the apex and finds none."""
    text = (MTA / "unbound.conf").read_text()
    snippet = tmp_path / "no-domain-insecure.conf"
    snippet.write_text("".join(line for line in text.splitlines(keepends=True)
                               if "domain-insecure" not in line))
    assert snippet.read_text() != text
    port = 5354
    name = f"{dnsclient.rev(LISTED)}.{harness.APEX}."
    with mail.netns.inside():
        proc = mail.start_unbound("unbound-validating", snippet, port)

        def answer():
            try:
                return dnsclient.query(name, "A", port=port, timeout=3)
            except (dns.exception.Timeout, OSError):
                return None
        r = harness.wait_until(answer, 15, interval=0.2)
    assert r is not None, proc.log()
    assert r.rcode() == dns.rcode.SERVFAIL
    # The same question through the README's configuration is answered.
    assert dnsclient.a_set(mail.resolve(name)) == {"127.0.0.2"}


# -- smtpd: reject_rbl_client --------------------------------------------------

def test_smtpd_rejects_listed_client_with_rblmux_txt(mail):
    s = mail.smtp(LISTED)
    expected = (f"554 5.7.1 Service unavailable; Client host [{LISTED}] blocked using "
                f"rblmux: {LISTED_TXT}")
    assert s.rejection == expected, _explain(mail, s)
    assert s.queued is None
    # Rejected at RCPT (smtpd_delay_reject): MAIL FROM was accepted first.
    assert s.replies[-2:] == [expected, "221 2.0.0 Bye"], _explain(mail, s)
    line = mail.postfix.wait_log(rf"NOQUEUE: reject: RCPT from unknown\[{re.escape(LISTED)}\]")
    assert line and LISTED_TXT in line, mail.logs()


def test_smtpd_rejects_listed_ipv6_client(mail):
    s = mail.smtp(LISTED6)
    assert s.rejection is not None, _explain(mail, s)
    assert s.rejection.startswith(f"554 5.7.1 Service unavailable; Client host [{LISTED6}] "
                                  "blocked using rblmux: listed: score 6 >= 5; demo-a"), \
        _explain(mail, s)
    assert s.queued is None


@pytest.mark.parametrize("client", [BELOW, UNLISTED, ALLOWED])
def test_smtpd_accepts_client_below_threshold(mail, client):
    s = mail.smtp(client)
    assert s.status == 0 and s.rejection is None, _explain(mail, s)
    queue_id = s.queued
    assert queue_id, _explain(mail, s)
    assert mail.postfix.wait_log(rf"{queue_id}: client=unknown\[{re.escape(client)}\]"), mail.logs()
    # Queued and then delivered (to the discard transport).
    assert mail.postfix.wait_log(rf"{queue_id}: to=<rcpt@example.com>.*status=sent"), mail.logs()


# -- postscreen: the score view ------------------------------------------------

def test_postscreen_rejects_listed_client(mail):
    s = mail.smtp(LISTED, port=POSTSCREEN_PORT)
    assert s.rejection == (f"550 5.7.1 Service unavailable; client [{LISTED}] blocked using "
                           "score.rblmux.internal"), _explain(mail, s)
    assert s.queued is None
    # Score 8 counts one point per postscreen_dnsbl_sites entry it reaches: 5.
    assert mail.postfix.wait_log(rf"postscreen.*DNSBL rank 5 for \[{re.escape(LISTED)}\]"), \
        mail.logs()


@pytest.mark.parametrize("client", [BELOW, ALLOWED])
def test_postscreen_passes_client_below_threshold(mail, client):
    s = mail.smtp(client, port=POSTSCREEN_PORT)
    assert s.rejection is None and s.queued, _explain(mail, s)
    assert mail.postfix.wait_log(rf"postscreen.*PASS NEW \[{re.escape(client)}\]"), mail.logs()
    assert not re.search(rf"DNSBL rank \d+ for \[{re.escape(client)}\]", mail.postfix.log())


# -- every list down -----------------------------------------------------------

def test_lists_down_mail_still_flows(mail_down):
    mail = mail_down
    name = f"{dnsclient.rev(LISTED)}.{harness.APEX}."
    # rblmuxd cannot decide: SERVFAIL, passed on by unbound.
    with mail.netns.inside():
        direct = dnsclient.query(name, "A", port=RBLMUX_PORT, timeout=5)
    assert direct.rcode() == dns.rcode.SERVFAIL
    assert mail.resolve(name).rcode() == dns.rcode.SERVFAIL

    s = mail.smtp(LISTED)
    assert s.status == 0 and s.rejection is None and s.queued, _explain(mail, s)
    # Postfix takes the failed lookup as "not listed" and says so.
    assert mail.postfix.wait_log(
        rf"smtpd.*warning: {re.escape(name[:-1])}: RBL lookup error"), mail.logs()

    s = mail.smtp(LISTED, port=POSTSCREEN_PORT)
    assert s.status == 0 and s.rejection is None and s.queued, _explain(mail, s)
    assert mail.postfix.wait_log(rf"postscreen.*PASS NEW \[{re.escape(LISTED)}\]"), mail.logs()


# -- sendmail: the m4 recipe ---------------------------------------------------

def _require_sendmail_cf():
    if _missing([M4]) or not DEBIAN_MC.exists():
        pytest.skip("m4 or sendmail-cf not installed (tools/deps.sh installs them)")


def _sendmail_cf(tmp_path, feature_line):
    """sendmail.cf from Debian's stock sendmail.mc with feature_line added
    before MAILER_DEFINITIONS, the way the README says; whitespace-normalised
    lines."""
    lines = []
    for line in DEBIAN_MC.read_text().splitlines():
        # Generated by sendmail-base (not installed: it conflicts with postfix).
        if "/etc/mail/m4/" in line:
            continue
        if line.startswith("MAILER_DEFINITIONS"):
            lines.append(feature_line.rstrip("\n"))
        lines.append(line)
    mc = tmp_path / "sendmail.mc"
    mc.write_text("\n".join(lines) + "\n")
    res = _run([M4, mc], check=False)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    return [" ".join(line.split()) for line in res.stdout.splitlines()]


def test_sendmail_dnsbl_line_builds_rules(tmp_path):
    _require_sendmail_cf()
    cf = _sendmail_cf(tmp_path, (MTA / "sendmail-dnsbl.m4").read_text())
    assert "Kdnsbl dns -R A -T<TMP>" in cf
    assert "R$-.$-.$-.$- $: <?> $(dnsbl $4.$3.$2.$1.rblmux.internal. $: OK $)" in cf
    # t: a failed lookup (SERVFAIL) is a temporary failure, not an acceptance.
    assert ('R<?>$+<TMP> $#error $@ 4.4.3 $: "451 Temporary lookup failure of " '
            '$&{client_addr} " at rblmux.internal"') in cf
    assert 'R<?>$+ $#error $@ 5.7.1 $: "550 Rejected: " $&{client_addr} " listed by rblmux"' in cf


def test_sendmail_dnsbl_without_t_accepts_on_failure(tmp_path):
    _require_sendmail_cf()
    line = (MTA / "sendmail-dnsbl.m4").read_text().replace(", `t')", ")")
    assert "`t'" not in line
    cf = _sendmail_cf(tmp_path, line)
    assert "R<?>$+<TMP> $: TMPOK" in cf
    assert not any("4.4.3" in rule for rule in cf)


def test_sendmail_enhdnsbl_line_builds_rules(tmp_path):
    _require_sendmail_cf()
    cf = _sendmail_cf(tmp_path, (MTA / "sendmail-enhdnsbl.m4").read_text())
    assert "Kednsbl dns -R A -a. -T<TMP> -r5" in cf
    assert "R$-.$-.$-.$- $: <?> $(ednsbl $4.$3.$2.$1.rblmux.internal. $: OK $)" in cf
    assert ('R<?>$+<TMP> $#error $@ 4.4.3 $: "451 Temporary lookup failure of " '
            '$&{client_addr} " at rblmux.internal"') in cf
    # Only the answer 127.0.0.2 rejects.
    assert ('R<?>127.0.0.2. $#error $@ 5.7.1 $: "550 Rejected: " $&{client_addr} '
            '" listed by rblmux"') in cf
    assert not any(rule.startswith("R<?>$+ $#error $@ 5.7.1") for rule in cf)
