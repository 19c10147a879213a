"""The Redis tier (issue 3): a fleet of rblmuxd sharing one Redis.

Black-box: a real redis-server that each test starts on a free loopback port
(or a unix socket) and stops by its PID, the stand-in lists (which count the
questions they get), and two or more rblmuxd on the same lists and Redis.
"Zero upstream queries" is read at the stand-in, never from the clock; every
wait is bounded.

The members wait up to 250 ms for Redis (redis_timeout; the default is 5 ms):
on a loaded test machine a 5 ms wait turns some Redis hits into correct but
upstream-counted misses. What the default costs is bench/redis.sh's part.
"""

import itertools
import os
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

import dnsclient as dc
import harness
from harness import source

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
THREADS = 2       # the harness's default: one Redis connection per loop
UP_TIMEOUT = 20.0  # reconnects back off up to 5 s
REDIS_TIMEOUT = "250ms"
# time(2) reads a coarse clock that may lag Python's time.time() by a few
# ms: waits for a second to turn go this far past it.
CLOCK_SLACK = 0.2


# -- redis-server ---------------------------------------------------------

class RedisServer:
    """redis-server in the foreground, no persistence, on 127.0.0.1:<free
    port> or on a unix socket only; stopped by its PID."""

    def __init__(self, password=None, unix=False, replica_of=None):
        # A short private path: a unix socket's path has a 107-byte limit.
        self.dir = Path(tempfile.mkdtemp(prefix="rblmux-redis-"))
        self.password = password
        self.replica_of = replica_of
        self.sock = str(self.dir / "redis.sock") if unix else None
        self.port = None
        self.proc = None
        self.start()

    @property
    def address(self):
        return f"unix:{self.sock}" if self.sock else f"127.0.0.1:{self.port}"

    def _argv(self, port):
        argv = [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port),
                "--save", "", "--appendonly", "no", "--dir", str(self.dir),
                "--daemonize", "no", "--logfile", ""]
        if self.sock:
            argv += ["--unixsocket", self.sock, "--unixsocketperm", "700"]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.replica_of:
            argv += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
        return argv

    def start(self):
        """Start (or start again, on the same port)."""
        if not Path(REDIS_SERVER).exists():
            raise FileNotFoundError("redis-server is not installed (tools/deps.sh installs it)")
        fixed = self.port is not None or self.sock is not None
        last = ""
        for _ in range(3):
            if self.sock:
                self.port = 0
            elif not fixed:
                self.port = harness.free_port(("127.0.0.1",))
            self.proc = harness.Proc("redis", self._argv(self.port), self.dir)
            if harness.wait_until(self._pong, harness.START_TIMEOUT):
                return
            last = self.proc.log()
            self.proc.stop()
            if fixed:
                break
        raise RuntimeError(f"redis-server did not start on {self.address}:\n{last}")

    def _pong(self):
        if not self.proc.alive():
            return False
        try:
            return self.cli("PING") == "PONG"
        except (subprocess.TimeoutExpired, OSError):
            return False

    def cli(self, *args, db=None, raw=False, timeout=5):
        """redis-cli's output (text, stripped), or bytes with raw=True."""
        where = ["-s", self.sock] if self.sock else ["-h", "127.0.0.1", "-p", str(self.port)]
        if db is not None:
            where += ["-n", str(db)]
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        res = subprocess.run([REDIS_CLI, *where, *(["--raw"] if raw else []), *args],
                             capture_output=True, timeout=timeout, env=env,
                             stdin=subprocess.DEVNULL)
        return res.stdout if raw else res.stdout.decode(errors="replace").strip()

    def keys(self, pattern="*", db=None):
        return sorted(self.cli("--scan", "--pattern", pattern, db=db).split())

    def value(self, key, db=None):
        """(expire, stale_until, stored, value bytes) of an rblmux entry."""
        raw = self.cli("GET", key, db=db, raw=True)
        m = re.fullmatch(rb"(\d+) (\d+) (\d+)\n(.*)\n", raw, re.S)
        assert m, f"{key}: not an rblmux value: {raw!r}"
        return int(m[1]), int(m[2]), int(m[3]), m[4]

    def rblmux_clients(self):
        """Connections that finished rblmux's handshake (AUTH, SELECT, PING)
        or use the cache; redis-cli's own and refused ones do not count."""
        lines = self.cli("CLIENT", "LIST").splitlines()
        return sum(1 for ln in lines
                   if re.search(r"\bcmd=(ping|get|set|del)\b", ln))

    def signal(self, sig):
        self.proc.signal(sig)

    def kill(self):
        """SIGKILL, and wait for it to be gone (the port is then free)."""
        self.proc.signal(signal.SIGKILL)
        self.proc.wait(harness.STOP_TIMEOUT)
        self.proc.log_file.close()

    def log(self):
        return self.proc.log() if self.proc else ""

    def stop(self):
        if self.proc:
            self.proc.signal(signal.SIGCONT)
            self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- fleet members ----------------------------------------------------------

class Member:
    """One rblmuxd on the stack's lists: the stack's own daemon, or another
    with the stack's configuration on its own port."""

    def __init__(self, stack, name, override=None, own=False):
        self.stack = stack
        self.name = name
        self.override = override or {}
        if own:
            self.daemon, self.port = stack.daemon, stack.port
            self.workdir = stack.daemon.workdir
            return
        self.workdir = stack.workdir / name
        for _ in range(3):
            self.port = harness.free_port(("127.0.0.1",))
            try:
                self.daemon = harness.Rblmuxd(self.workdir, self.config(), self.port)
                return
            except RuntimeError as e:
                if "Address already in use" not in str(e):
                    raise
        raise RuntimeError(f"{name}: no free port")

    def config(self, **override):
        merged = {k: dict(v) for k, v in self.override.items()}
        for section, keys in override.items():
            merged[section] = {**merged.get(section, {}), **keys}
        server = {**merged.pop("server", {}), "listen": f"127.0.0.1:{self.port}"}
        return self.stack.config(server=server, **merged)

    def restart(self):
        """Stop (SIGTERM) and start again on the same port, same file."""
        text = self.daemon.config_path.read_text()
        self.daemon.stop()
        self.daemon = harness.Rblmuxd(self.workdir, text, self.port)
        if self.stack.daemon is not None and self.stack.port == self.port:
            self.stack.daemon = self.daemon

    def q(self, rel, rdtype="A", **kw):
        kw.setdefault("port", self.port)
        return dc.query(self.stack.name(rel), rdtype, **kw)

    def qip(self, addr, rdtype="A", view=None, **kw):
        kw.setdefault("port", self.port)
        return dc.query(self.stack.ip(addr, view), rdtype, **kw)

    def redis_health(self):
        """The health TXT's Redis string, less "redis ", or None."""
        try:
            return harness.health(self, timeout=1.0).get("redis")
        except (dns.exception.Timeout, OSError):
            return None

    def log(self):
        return self.daemon.log()

    def stop(self):
        return self.daemon.stop()


@pytest.fixture
def redis():
    """redis(password=None, unix=False) -> a started RedisServer."""
    made = []

    def make(**kw):
        r = RedisServer(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def fleet(stack, redis, request):
    """fleet(sources, redis_kw={}, cache={}, **stack_kw) -> (redis, a), a
    being the stack's own rblmuxd on that Redis; fleet.member(name, **override)
    adds one more on the same lists and Redis."""
    members = []
    state = {}

    def make(sources, redis_kw=None, cache=None, **kw):
        r = redis(**(redis_kw or {}))
        cache = {"redis": r.address, "redis_password": r.password or None,
                 "redis_timeout": REDIS_TIMEOUT, **(cache or {})}
        s = stack(sources, cache=cache, v6=False, **kw)
        state["stack"] = s
        a = Member(s, "a", own=True)
        return r, a

    def member(name, **override):
        m = Member(state["stack"], name, override)
        members.append(m)
        return m

    make.member = member
    yield make
    failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False)
                 for w in ("setup", "call"))
    for m in members:
        if failed:
            print(f"--- rblmuxd {m.name} (port {m.port}) ---\n{m.log()[-6000:]}")
        m.stop()


# -- data and checks -----------------------------------------------------------

# s1 lists 192.0.2.x for odd x, s2 for x % 3 == 1; weights 3 and 3 against
# threshold 5: listed exactly when both list it (x = 1, 7, 13, ...).
def on_s1(x):
    return x % 2 == 1


def on_s2(x):
    return x % 3 == 1


V6 = "2001:db8::7"   # on both


def fleet_sources(**kw):
    s1 = {f"192.0.2.{x}": {"txt": f"s1 lists .{x}"} for x in range(1, 250) if on_s1(x)}
    s2 = {f"192.0.2.{x}": {"txt": f"s2 lists .{x}"} for x in range(1, 250) if on_s2(x)}
    s1[V6] = {"txt": "s1 lists v6"}
    s2[V6] = {"txt": "s2 lists v6"}
    return [source("s1", 3, s1, backend="standin", **kw),
            source("s2", 3, s2, backend="standin", **kw)]


def listed(ip):
    if ip == V6:
        return True
    x = int(ip.rsplit(".", 1)[1])
    return on_s1(x) and on_s2(x)


def check_verdict(resp, ip):
    if listed(ip):
        assert resp.rcode() == dns.rcode.NOERROR and dc.a_set(resp) == {"127.0.0.2"}, \
            f"{ip} should be listed:\n{resp.to_text()}"
    else:
        assert resp.rcode() == dns.rcode.NXDOMAIN, f"{ip} should not be listed:\n{resp.to_text()}"


def ask(member, ip, timeout=3.0):
    """The combined verdict for ip from member, checked against the data."""
    r = member.qip(ip, timeout=timeout)
    check_verdict(r, ip)
    return r


def upstream(stack, ip):
    """Questions about ip that the stand-in lists received (any list, type)."""
    prefix = dc.rev(ip) + "."
    table, _ = stack.standin.counts()
    return sum(rec for (name, _t), (rec, _a) in table.items() if name.startswith(prefix))


def wait_keys(r, ip, n, db=None, timeout=5.0):
    """Wait until Redis holds n keys about ip (the puts are fire-and-forget)."""
    keys = harness.wait_until(lambda: len(k := r.keys(f"*:{ip}", db=db)) >= n and k,
                              timeout)
    assert keys, f"Redis has {r.keys(f'*:{ip}', db=db)} for {ip}, wanted {n} keys"
    return keys


def wait_state(member, word, timeout=UP_TIMEOUT, samples=1):
    """Wait until `samples` health answers in a row show Redis in state word
    (each question comes from a new port, so it may reach either loop)."""
    def seen():
        return all((member.redis_health() or "").split()[:1] == [word]
                   for _ in range(samples))
    return harness.wait_until(seen, timeout, interval=0.1)


def wait_up(r, members, timeout=UP_TIMEOUT):
    """Every loop of every member connected and up, from both sides."""
    want = THREADS * len(members)
    assert harness.wait_until(lambda: r.rblmux_clients() >= want, timeout), \
        f"Redis sees {r.rblmux_clients()} rblmux connections, wanted {want}"
    for m in members:
        assert wait_state(m, "up", timeout, samples=8), \
            f"{m.name}: health says redis {m.redis_health()}\n{m.log()}"


# -- tests -------------------------------------------------------------------

def test_two_members_share_one_redis(fleet):
    r, a = fleet(fleet_sources())
    b = fleet.member("b")
    wait_up(r, [a, b])
    for ip in ("192.0.2.1", "192.0.2.3", "192.0.2.2", V6):
        ask(a, ip)
        wait_keys(r, ip, 2)
        assert upstream(a.stack, ip) == 2, ip   # one question per list
        ask(b, ip)
        assert upstream(a.stack, ip) == 2, f"{ip}: b asked the lists"
        assert dc.txt_text(b.qip(ip, "TXT")) == dc.txt_text(a.qip(ip, "TXT"))
    assert upstream(a.stack, "192.0.2.1") == 2


def test_restarted_member_answers_warm_from_redis(fleet):
    r, a = fleet(fleet_sources())
    wait_up(r, [a])
    ips = ["192.0.2.7", "192.0.2.9", "192.0.2.10"]
    for ip in ips:
        ask(a, ip)
        wait_keys(r, ip, 2)
    before = {ip: upstream(a.stack, ip) for ip in ips}
    assert all(n == 2 for n in before.values()), before
    a.restart()
    wait_up(r, [a])
    for ip in ips:
        ask(a, ip)
    assert {ip: upstream(a.stack, ip) for ip in ips} == before
    assert "is up: the shared cache is in use" in a.log()


def test_ttl_from_redis_is_the_lists_not_later(fleet):
    ip = "192.0.2.13"
    list_ttl = 4
    r, a = fleet(fleet_sources(ttl=list_ttl),
                 cache={"min_ttl": "1s", "stale_ttl": "10s"})
    b = fleet.member("b")
    wait_up(r, [a, b])

    # a asks s1, and stores the answer with an absolute expiry.
    ra = a.qip(ip, view="s1")
    t_a = int(time.time())
    assert dc.a_set(ra) == {"127.0.0.2"} and dc.answer_ttls(ra) == [list_ttl]
    (key,) = wait_keys(r, ip, 1)
    assert key == f"rblmux:v1:s1.bl.invalid:A:{ip}"
    expire, stale_until, stored, _ = r.value(key)
    assert expire - stored == list_ttl and stale_until - expire == 10
    assert 0 < int(r.cli("TTL", key)) <= stale_until - t_a + 1

    # b, a whole second later, gets it from Redis with what is left of it.
    harness.wait_until(lambda: time.time() >= t_a + 1 + CLOCK_SLACK, 3)
    t_b = int(time.time())
    rb = b.qip(ip, view="s1")
    assert upstream(a.stack, ip) == 1, "b asked the list instead of Redis"
    (ttl_b,) = dc.answer_ttls(rb)
    assert 1 <= ttl_b <= expire - t_b < list_ttl, (ttl_b, expire, t_b)

    # At the expiry a had from the list, b's copy (filled from Redis) and
    # Redis's are stale: b asks the list again, not list_ttl after its fetch.
    assert harness.wait_until(lambda: time.time() >= expire + CLOCK_SLACK, list_ttl + 2)
    rb = b.qip(ip, view="s1")
    assert dc.a_set(rb) == {"127.0.0.2"} and dc.answer_ttls(rb) == [list_ttl]
    assert upstream(a.stack, ip) == 2

    # b's fresh answer reaches Redis, and a (whose own copy expired) takes it
    # from there instead of asking the list.
    assert harness.wait_until(lambda: r.value(key)[0] > expire, 5)
    ra = a.qip(ip, view="s1")
    assert dc.a_set(ra) == {"127.0.0.2"} and 1 <= dc.answer_ttls(ra)[0] <= list_ttl
    assert upstream(a.stack, ip) == 2


def test_redis_killed_mid_run_loses_no_query(fleet):
    r, a = fleet(fleet_sources())
    b = fleet.member("b")
    wait_up(r, [a, b])
    warm = "192.0.2.1"
    ask(a, warm)
    wait_keys(r, warm, 2)
    # Known and new addresses; once through, known to the members' own caches.
    pool = itertools.cycle(f"192.0.2.{x}" for x in range(20, 200))
    asked = 0

    def traffic(until, timeout, at_least=1.0):
        """Ask both members, new and known addresses, for at_least seconds
        and until until(), within timeout; every answer must match the data."""
        nonlocal asked
        start = time.monotonic()
        while time.monotonic() < start + timeout:
            ip = next(pool)
            for m in (a, b):
                ask(m, ip)
                ask(m, warm)
                asked += 2
            if time.monotonic() >= start + at_least and until():
                return True
        return False

    r.kill()
    assert traffic(lambda: wait_state(a, "down", 0) and wait_state(b, "down", 0), 10), \
        f"health never said redis down: {a.redis_health()}, {b.redis_health()}"
    assert a.redis_health() == f"down {r.address}"
    # During the outage every member asks the lists itself.
    ip = "192.0.2.201"
    ask(a, ip)
    ask(b, ip)
    assert harness.wait_until(lambda: upstream(a.stack, ip) == 4, 2), upstream(a.stack, ip)

    r.start()   # same port, empty
    assert traffic(lambda: r.rblmux_clients() >= 2 * THREADS, UP_TIMEOUT)
    wait_up(r, [a, b])
    for m in (a, b):
        assert m.daemon.proc.alive()
    assert asked >= 40
    log = a.log()
    assert f"redis {r.address} is down" in log, log
    assert log.count(f"redis {r.address} is up") >= 2, log

    # The shared cache is in use again.
    ip = "192.0.2.203"
    ask(a, ip)
    wait_keys(r, ip, 2)
    ask(b, ip)
    assert upstream(a.stack, ip) == 2


def test_redis_password(fleet):
    r, a = fleet(fleet_sources(), redis_kw={"password": "fleet pass#1"})
    b = fleet.member("b")
    wait_up(r, [a, b])
    ip = "192.0.2.19"
    ask(a, ip)
    wait_keys(r, ip, 2)
    ask(b, ip)
    assert upstream(a.stack, ip) == 2

    wrong = fleet.member("wrong", cache={"redis_password": "not it"})
    none = fleet.member("none", cache={"redis_password": None})
    for m in (wrong, none):
        assert wait_state(m, "auth-failed", 10, samples=4), \
            f"{m.name}: health says redis {m.redis_health()}\n{m.log()}"
        assert m.redis_health() == f"auth-failed {r.address}"
        assert harness.wait_until(lambda: "refused the password" in m.log(), 5), m.log()
        # Still answering, from the lists.
        before = upstream(a.stack, ip)
        ask(m, ip)
        assert harness.wait_until(lambda: upstream(a.stack, ip) == before + 2, 2)
        ask(m, "192.0.2.25")
        assert m.daemon.proc.alive()
    assert "refused the password" not in a.log()
    # The password is never logged.
    assert "not it" not in wrong.log() and "fleet pass" not in a.log()


def test_redis_paused_queries_still_answered(fleet):
    r, a = fleet(fleet_sources())
    b = fleet.member("b")
    wait_up(r, [a, b])
    r.signal(signal.SIGSTOP)
    try:
        ips = [f"192.0.2.{x}" for x in range(30, 60)]
        for ip in ips:
            ask(a, ip)
            ask(b, ip)
        # Answered from the lists: each member asked them (no Redis to share).
        assert harness.wait_until(
            lambda: all(upstream(a.stack, ip) == 4 for ip in ips), 2), \
            [upstream(a.stack, ip) for ip in ips]
        # The stalled connection is given up (its PING is not answered).
        more = itertools.cycle(f"192.0.2.{x}" for x in range(60, 200))

        def down_while_asking():
            ip = next(more)
            ask(a, ip)
            ask(b, ip)
            return wait_state(a, "up", 0) is None
        assert harness.wait_until(down_while_asking, 10, interval=0.05), a.redis_health()
    finally:
        r.signal(signal.SIGCONT)
    wait_up(r, [a, b])
    ip = "192.0.2.211"
    ask(a, ip)
    wait_keys(r, ip, 2)
    ask(b, ip)
    assert upstream(a.stack, ip) == 2


def test_read_only_replica_reads_but_does_not_share(fleet, redis):
    """A member on a (read-only) replica of the fleet's Redis takes what the
    others stored; what it asks the lists itself is refused (READONLY) and
    stays its own. It keeps answering either way."""
    r, a = fleet(fleet_sources())
    replica = redis(replica_of=r)
    assert harness.wait_until(lambda: "connected" in replica.cli("ROLE").split(), 15), \
        replica.cli("ROLE")
    b = fleet.member("b", cache={"redis": replica.address})
    wait_up(r, [a])
    wait_up(replica, [b])
    ip = "192.0.2.43"
    ask(a, ip)
    wait_keys(replica, ip, 2)
    ask(b, ip)
    assert upstream(a.stack, ip) == 2
    mine = "192.0.2.45"
    ask(b, mine)
    assert harness.wait_until(lambda: upstream(a.stack, mine) == 2, 2)
    time.sleep(0.5)
    assert r.keys(f"*:{mine}") == [] and replica.keys(f"*:{mine}") == []
    assert b.redis_health() == f"up {replica.address}"


def test_unix_socket_and_db(fleet):
    r, a = fleet(fleet_sources(), redis_kw={"unix": True}, cache={"redis_db": 3})
    b = fleet.member("b")
    wait_up(r, [a, b])
    assert a.redis_health() == f"up unix:{r.sock}"
    ip = "192.0.2.31"
    ask(a, ip)
    keys = wait_keys(r, ip, 2, db=3)
    assert keys == [f"rblmux:v1:s1.bl.invalid:A:{ip}", f"rblmux:v1:s2.bl.invalid:A:{ip}"]
    assert r.keys(db=0) == []
    ask(b, ip)
    assert upstream(a.stack, ip) == 2


def test_key_schema(fleet):
    prefix = "fleet-test:"
    dbl = source("dbl", 5, {"spam.example": {"txt": "dbl lists spam.example"}},
                 backend="standin", type="domain")
    r, a = fleet(fleet_sources() + [dbl], cache={"key_prefix": prefix})
    wait_up(r, [a])
    ask(a, "192.0.2.1")
    ask(a, V6)
    assert dc.a_set(a.q("spam.example.rhs")) == {"127.0.0.2"}
    assert "s1 lists .1" in dc.txt_text(a.qip("192.0.2.1", "TXT", view="s1"))
    want = sorted([f"{prefix}v1:s1.bl.invalid:A:192.0.2.1",
                   f"{prefix}v1:s2.bl.invalid:A:192.0.2.1",
                   f"{prefix}v1:s1.bl.invalid:TXT:192.0.2.1",
                   f"{prefix}v1:s1.bl.invalid:A:2001:db8::7",
                   f"{prefix}v1:s2.bl.invalid:A:2001:db8::7",
                   f"{prefix}v1:dbl.bl.invalid:A:spam.example"])
    assert harness.wait_until(lambda: r.keys() == want, 5), r.keys()
    expire, stale_until, stored, value = r.value(f"{prefix}v1:s1.bl.invalid:A:192.0.2.1")
    assert expire - stored == 300 and stale_until - expire == 3600
    assert value   # the list's answer, opaque
    ttl = int(r.cli("TTL", f"{prefix}v1:s1.bl.invalid:A:192.0.2.1"))
    assert stale_until - stored - 10 <= ttl <= stale_until - stored


def test_zone_change_does_not_serve_the_old_zones_answers(fleet):
    ip = "192.0.2.41"
    old = source("s1", 5, {ip: {"txt": "old zone lists it"}}, backend="standin",
                 zone="old.bl.invalid")
    new_zone = harness.standin_spec([source("x", 5, {"192.0.2.42": {}},
                                            zone="new.bl.invalid")])["zones"]
    r, a = fleet([old], extra_zones=new_zone)
    wait_up(r, [a])
    assert dc.a_set(ask_raw(a, ip)) == {"127.0.0.2"}
    wait_keys(r, ip, 1)

    # The same source name, now on another zone.
    a.stack.sources[0]["zone"] = "new.bl.invalid"
    a.daemon.reload(a.stack.config())
    assert harness.wait_until(lambda: "reloaded" in a.log(), 5), a.log()
    assert ask_raw(a, ip).rcode() == dns.rcode.NXDOMAIN
    assert a.stack.standin.received(f"{dc.rev(ip)}.new.bl.invalid") == 1
    both = [f"rblmux:v1:new.bl.invalid:A:{ip}", f"rblmux:v1:old.bl.invalid:A:{ip}"]
    assert harness.wait_until(lambda: r.keys(f"*:{ip}") == both, 5), r.keys()

    # A member that starts on the new zone takes the new zone's entry only.
    b = fleet.member("b")
    wait_up(r, [a, b])
    assert ask_raw(b, ip).rcode() == dns.rcode.NXDOMAIN
    assert dc.a_set(ask_raw(b, "192.0.2.42")) == {"127.0.0.2"}
    assert a.stack.standin.received(f"{dc.rev(ip)}.new.bl.invalid") == 1
    assert a.stack.standin.received(f"{dc.rev(ip)}.old.bl.invalid") == 1


def ask_raw(member, ip):
    return member.qip(ip, timeout=3.0)
