"""harness: processes and data for rblmux's black-box tests.

Starts Debian's rbldnsd (well-behaved lists), the stand-in (tests/standin.py:
lists that misbehave on demand) and rblmuxd on free loopback ports with
files in temporary directories, waits (bounded) until each answers, and stops
each by its PID. Every wait is bounded; nothing outside loopback is used.
"""

import ipaddress
import json
import os
import pwd
import select
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import dns.exception
import dns.rcode

import dnsclient

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"
# /usr/sbin is not on a Debian user's PATH.
RBLDNSD = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
APEX = "rblmux.internal"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
# RBLMUX_WRAPPER prefixes rblmuxd's command line (tools/sanitize.sh --valgrind:
# "valgrind --leak-check=full ..."); a wrapped daemon gets longer to start and
# to stop, so that its report at exit is written.
WRAPPER = shlex.split(os.environ.get("RBLMUX_WRAPPER", ""))
WRAPPER_SLOWDOWN = 10.0 if WRAPPER else 1.0


def build_dir():
    path = Path(os.environ.get("RBLMUX_BUILD", "build"))
    return path if path.is_absolute() else REPO / path


def rblmuxd_path():
    return build_dir() / "resolver" / "rblmuxd"


def free_port(hosts=("127.0.0.1", "::1")):
    """A port that is free for UDP and TCP on every host (closed again: racy,
    so starters retry on a bind failure)."""
    for _ in range(100):
        socks = []
        try:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(probe)
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
            for host in hosts:
                fam = socket.AF_INET6 if ":" in host else socket.AF_INET
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    if host == hosts[0] and kind == socket.SOCK_DGRAM:
                        continue
                    s = socket.socket(fam, kind)
                    socks.append(s)
                    s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise OSError("no free port")


def wait_until(pred, timeout, interval=0.05):
    """Poll pred until it returns something true; that value, or None."""
    end = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


class Proc:
    """A child process with its output in a log file, stopped by PID."""

    def __init__(self, name, argv, workdir, stdout=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(workdir) / f"{name}.log"
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else self.log_file,
            stderr=self.log_file, cwd=str(workdir))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after timeout; the exit status."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            if self.wait(timeout) is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.wait(timeout)
        self.log_file.close()
        return self.proc.returncode

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


# -- the stand-in -----------------------------------------------------------

class Standin:
    """tests/standin.py as a child process, with its control channel."""

    def __init__(self, workdir, spec, address="127.0.0.1"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        spec_path = self.workdir / "standin.json"
        spec_path.write_text(json.dumps(spec, indent=1))
        self.proc = Proc("standin", [PYTHON, TESTS / "standin.py", "--address", address,
                                     "--spec", spec_path], self.workdir,
                         stdout=subprocess.PIPE)
        self.address = address
        line = self._read_line(START_TIMEOUT)
        if not line:
            self.proc.stop()
            raise RuntimeError("stand-in did not start:\n" + self.proc.log())
        info = json.loads(line)
        self.port = info["port"]
        self.control_port = info["control"]
        self.ctl = socket.create_connection((address, self.control_port), timeout=5)
        self.ctl_file = self.ctl.makefile("rwb")

    def _read_line(self, timeout):
        out = self.proc.proc.stdout
        ready, _, _ = select.select([out], [], [], timeout)
        if not ready:
            return None
        return out.readline().decode()

    @property
    def server(self):
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    def command(self, **req):
        self.ctl_file.write((json.dumps(req) + "\n").encode())
        self.ctl_file.flush()
        reply = json.loads(self.ctl_file.readline())
        if not reply.get("ok"):
            raise RuntimeError(f"stand-in refused {req}: {reply}")
        return reply

    def set(self, zone, **kw):
        return self.command(cmd="set", zone=zone, **kw)

    def entries(self, zone, entries, replace=False):
        return self.command(cmd="entries", zone=zone, entries=entries, replace=replace)

    def reset(self):
        return self.command(cmd="reset")

    def counts(self):
        """{(name lowercased with final dot, qtype): (received, answered)} and totals."""
        reply = self.command(cmd="counts")
        table = {(n, t): (r, a) for n, t, r, a in reply["queries"]}
        return table, reply

    def received(self, name, qtype="A"):
        return self.counts()[0].get((_fqdn(name), qtype), (0, 0))[0]

    def answered(self, name, qtype="A"):
        return self.counts()[0].get((_fqdn(name), qtype), (0, 0))[1]

    def log(self, n=100):
        return self.command(cmd="log", n=n)["names"]

    def stop(self):
        try:
            self.ctl.close()
        except OSError:
            pass
        rc = self.proc.stop()
        self.proc.proc.stdout.close()
        return rc


def _fqdn(name):
    name = name.lower()
    return name if name.endswith(".") else name + "."


# -- rbldnsd ---------------------------------------------------------------

def _is_ip(key):
    try:
        return ipaddress.ip_address(key).version
    except ValueError:
        return 0


def _rbldnsd_value(entry):
    codes = entry.get("a", ["127.0.0.2"])
    if len(codes) != 1:
        raise ValueError("rbldnsd lists carry one A code per entry; use the stand-in")
    txt = entry.get("txt")
    if txt is None:
        return f":{codes[0]}:"
    if not isinstance(txt, str):
        raise ValueError("rbldnsd lists carry one TXT string per entry")
    return f":{codes[0]}:" + txt.replace("$", "$$")


class Rbldnsd:
    """One rbldnsd serving every rbldnsd-backed list, on 127.0.0.1."""

    def __init__(self, lists):
        # rbldnsd rereads its files as its own user: a world-readable
        # directory outside pytest's private (0700) tmp tree.
        self.dir = Path(tempfile.mkdtemp(prefix="rblmux-rbldnsd-"))
        os.chmod(self.dir, 0o755)
        self.lists = lists
        zonespecs = []
        for lst in lists:
            zonespecs += self._write(lst)
        user = []
        if os.geteuid() == 0:
            for candidate in ("rbldns", "nobody"):
                try:
                    pwd.getpwnam(candidate)
                    user = ["-u", candidate]
                    break
                except KeyError:
                    continue
        last_log = ""
        for _ in range(3):
            self.port = free_port(("127.0.0.1",))
            self.proc = Proc("rbldnsd", [RBLDNSD, "-n", "-b", f"127.0.0.1/{self.port}",
                                         "-w", self.dir, *user, "-t", "300", *zonespecs],
                             self.dir)
            if wait_until(self._ready, START_TIMEOUT):
                return
            last_log = self.proc.log()
            self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        raise RuntimeError("rbldnsd did not start:\n" + last_log)

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    def _write(self, lst):
        zone = lst["zone"]
        base = lst["name"]
        ttl = lst.get("ttl", 300)
        neg = lst.get("neg_ttl", ttl)
        header = (f"$SOA {neg} ns.{zone} hostmaster.{zone} 1 3600 600 86400 {neg}\n"
                  f"$NS {ttl} ns.{zone}\n")
        groups = {"ip4set": [], "ip6trie": [], "dnset": []}
        domain = lst.get("type", "ip") == "domain"
        for key, entry in _with_test_points(lst).items():
            version = 0 if domain else _is_ip(key)
            kind = {4: "ip4set", 6: "ip6trie", 0: "dnset"}[version]
            groups[kind].append(f"{key} {_rbldnsd_value(_entry(entry))}")
        specs = []
        first = True
        for kind, lines in groups.items():
            # Every zone needs one dataset, if only to carry its SOA.
            if not lines and not (first and kind == "dnset"):
                continue
            path = self.dir / f"{base}.{kind}"
            text = (header if first else "") + f"$TTL {ttl}\n" + "\n".join(lines) + "\n"
            path.write_text(text)
            os.chmod(path, 0o644)
            specs.append(f"{zone}:{kind}:{path.name}")
            first = False
        return specs

    def _ready(self):
        if not self.proc.alive():
            return False
        try:
            dnsclient.query(self.lists[0]["zone"] + ".", "SOA", port=self.port, timeout=0.3)
            return True
        except (dns.exception.Timeout, OSError):
            return False

    def stop(self):
        rc = self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def _entry(value):
    if isinstance(value, str):
        return {"a": [value]}
    if isinstance(value, list):
        return {"a": value}
    return value


def _with_test_points(lst):
    """The list's entries plus RFC 5782 test points (unless test_points=False)."""
    entries = dict(lst.get("entries", {}))
    if lst.get("test_points", True):
        if lst.get("type", "ip") == "domain":
            entries.setdefault("test", {"a": ["127.0.0.2"], "txt": "test point"})
            entries.setdefault("2.0.0.127", {"a": ["127.0.0.2"], "txt": "test point"})
        else:
            entries.setdefault("127.0.0.2", {"a": ["127.0.0.2"], "txt": "test point"})
            if lst.get("type", "ip") != "ip4":
                entries.setdefault("::ffff:7f00:2", {"a": ["127.0.0.2"], "txt": "test point"})
    return entries


# -- rblmuxd ---------------------------------------------------------------

def render_config(sections):
    """INI text from [(section header, {key: value}), ...]."""
    out = []
    for header, keys in sections:
        out.append(f"[{header}]")
        for k, v in keys.items():
            if v is None:
                continue
            if isinstance(v, bool):
                v = "yes" if v else "no"
            out.append(f"{k} = {v}")
        out.append("")
    return "\n".join(out)


class Rblmuxd:
    """rblmuxd -c FILE in the foreground, stderr to a log file."""

    def __init__(self, workdir, config_text, port, v6=False, ready=True):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "rblmuxd.conf"
        self.config_path.write_text(config_text)
        self.port = port
        self.v6 = v6
        binary = rblmuxd_path()
        if not binary.exists():
            raise FileNotFoundError(f"rblmuxd is not built: {binary} "
                                    "(set RBLMUX_BUILD to the build directory)")
        self.proc = Proc("rblmuxd", [*WRAPPER, binary, "-c", self.config_path], self.workdir)
        if ready and not wait_until(self.ready, START_TIMEOUT * WRAPPER_SLOWDOWN, interval=0.1):
            log = self.proc.log()
            self.proc.stop()
            raise RuntimeError(f"rblmuxd did not answer the apex SOA on port {port}:\n{log}")

    def ready(self):
        if not self.proc.alive():
            return False
        try:
            r = dnsclient.query(APEX + ".", "SOA", port=self.port, timeout=0.3)
            return r.rcode() == dns.rcode.NOERROR
        except (dns.exception.Timeout, OSError):
            return False

    def reload(self, config_text):
        self.config_path.write_text(config_text)
        self.proc.signal(signal.SIGHUP)

    def log(self):
        return self.proc.log()

    def stop(self):
        return self.proc.stop(STOP_TIMEOUT * WRAPPER_SLOWDOWN)


def check_config(workdir, config_text, name="check.conf"):
    """rblmuxd -t -c FILE: (exit status, stderr, path)."""
    path = Path(workdir) / name
    path.write_text(config_text)
    binary = rblmuxd_path()
    if not binary.exists():
        raise FileNotFoundError(f"rblmuxd is not built: {binary}")
    res = subprocess.run([str(binary), "-t", "-c", str(path)], capture_output=True,
                         timeout=10, stdin=subprocess.DEVNULL)
    return res.returncode, res.stderr.decode(errors="replace"), path


# -- a whole stack ------------------------------------------------------------

def source(name, weight, entries=None, backend="rbldnsd", zone=None, type="ip",
           ttl=300, neg_ttl=None, test_points=True, **options):
    """A list: its data (for rbldnsd or the stand-in) and its [source] keys."""
    return {"name": name, "zone": zone or f"{name}.bl.invalid", "type": type,
            "weight": weight, "entries": entries or {}, "backend": backend,
            "ttl": ttl, "neg_ttl": neg_ttl if neg_ttl is not None else ttl,
            "test_points": test_points, "options": options}


def standin_spec(sources):
    zones = {}
    for s in sources:
        zones[s["zone"]] = {"ttl": s["ttl"], "neg_ttl": s["neg_ttl"], "type": s["type"],
                            "entries": _with_test_points(s)}
    return {"zones": zones}


class Stack:
    """rbldnsd + stand-in lists + rblmuxd configured to ask them."""

    def __init__(self, workdir, sources, server=None, upstream=None, scoring=None,
                 cache=None, ptr=None, spf=None, extra_zones=None, v6=True,
                 raw_config=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sources = sources
        self.rbldnsd = self.standin = self.daemon = None
        self.settings = dict(server=server or {}, upstream=upstream or {},
                             scoring=scoring or {}, cache=cache or {},
                             ptr=ptr, spf=spf)
        self.v6 = v6
        try:
            rb = [s for s in sources if s["backend"] == "rbldnsd"]
            si = [s for s in sources if s["backend"] == "standin"]
            if rb:
                self.rbldnsd = Rbldnsd(rb)
            if si or extra_zones:
                spec = standin_spec(si)
                spec["zones"].update(extra_zones or {})
                self.standin = Standin(self.workdir / "standin", spec)
            self._start_daemon(raw_config)
        except BaseException:
            self.stop()
            raise

    def _start_daemon(self, raw_config):
        last = None
        for _ in range(3):
            self.port = free_port(("127.0.0.1", "::1") if self.v6 else ("127.0.0.1",))
            text = raw_config(self) if raw_config else self.config()
            try:
                self.daemon = Rblmuxd(self.workdir / "rblmuxd", text, self.port, v6=self.v6)
                return
            except RuntimeError as e:
                last = e
                if "Address already in use" not in str(e):
                    raise
        raise last

    def config(self, **override):
        """The rblmuxd configuration; override maps section -> {key: value}."""
        s = {k: dict(v) if v is not None else None for k, v in self.settings.items()}
        for section, keys in override.items():
            s[section] = {**(s.get(section) or {}), **keys}
        listen = f"127.0.0.1:{self.port}" + (f", [::1]:{self.port}" if self.v6 else "")
        server = {"listen": listen, "zone": APEX, "threads": 2,
                  "allow": "127.0.0.0/8, ::1/128", **s["server"]}
        default_servers = (self.rbldnsd.server if self.rbldnsd
                           else self.standin.server if self.standin else "system")
        upstream = {"servers": default_servers, "timeout": "1500ms", "deadline": "2s",
                    **s["upstream"]}
        scoring = {"threshold": 5, **s["scoring"]}
        cache = {"redis": "none", **s["cache"]}
        sections = [("server", server), ("upstream", upstream), ("scoring", scoring),
                    ("cache", cache)]
        for src in self.sources:
            keys = {"zone": src["zone"], "type": src["type"], "weight": src["weight"]}
            if src["backend"] == "standin":
                keys["servers"] = self.standin.server
            keys.update(src["options"])
            sections.append((f"source {src['name']}", keys))
        sections.append(("ptr", s["ptr"] if s["ptr"] is not None else {"enabled": False}))
        sections.append(("spf", s["spf"] if s["spf"] is not None else {"enabled": False}))
        return render_config(sections)

    # -- asking ----------------------------------------------------------

    def name(self, rel):
        """An absolute name inside the apex ('' is the apex itself)."""
        if rel.endswith("."):
            return rel
        return f"{rel}.{APEX}." if rel else f"{APEX}."

    def ip(self, addr, view=None):
        """The question name for addr: combined, or a view/source ('score', 'alpha')."""
        return self.name(dnsclient.rev(addr) + (f".{view}" if view else ""))

    def q(self, rel, rdtype="A", **kw):
        kw.setdefault("port", self.port)
        return dnsclient.query(self.name(rel), rdtype, **kw)

    def qip(self, addr, rdtype="A", view=None, **kw):
        kw.setdefault("port", self.port)
        return dnsclient.query(self.ip(addr, view), rdtype, **kw)

    def upstream_name(self, src_name, key):
        """The name rblmuxd asks a list for key (address or domain)."""
        src = next(s for s in self.sources if s["name"] == src_name)
        if src["type"] != "domain" and _is_ip(key):
            return f"{dnsclient.rev(key)}.{src['zone']}."
        return f"{key}.{src['zone']}."

    def logs(self):
        parts = []
        for what in (self.daemon, self.standin, self.rbldnsd):
            if what is not None:
                proc = what.proc
                parts.append(f"--- {proc.name} (pid {proc.pid}) ---\n{proc.log()[-6000:]}")
        return "\n".join(parts)

    def stop(self):
        for what in (self.daemon, self.standin, self.rbldnsd):
            if what is not None:
                try:
                    what.stop()
                except Exception:
                    pass


# -- health ------------------------------------------------------------------

def health(stack, timeout=2.0):
    """{source name: the rest of its health string} from health.<apex> TXT."""
    r = stack.q("health", "TXT", timeout=timeout)
    out = {}
    for rr in dnsclient.txt_strings(r):
        for s in rr:
            name, _, rest = s.partition(" ")
            out[name] = rest
    return out


def health_state(stack, name):
    """The state word (first word after the name) of one source, or None."""
    try:
        rest = health(stack).get(name)
    except (dns.exception.Timeout, OSError):
        return None
    return rest.split()[0] if rest else None


def wait_health(stack, name, state, timeout=15.0):
    return wait_until(lambda: health_state(stack, name) == state, timeout, interval=0.2)


def wait_all_ok(stack, timeout=10.0):
    """Wait until every enabled source reports ok (the first probes are done)."""
    names = [s["name"] for s in stack.sources
             if s["options"].get("enabled", True) not in (False, "no")]

    def all_ok():
        try:
            h = health(stack)
        except (dns.exception.Timeout, OSError):
            return False
        return all((h.get(n) or "").split()[:1] == ["ok"] for n in names)
    return wait_until(all_ok, timeout, interval=0.2)


# -- the lists most tests use --------------------------------------------------

def standard_sources():
    """Five well-behaved lists on rbldnsd. Scores with threshold 5:
    192.0.2.1 = 8, .2 = 6, .6 = 5 (listed); .4 = 3, .5 = 1, .3 = 0,
    198.51.100.7 = -5, 203.0.113.5 = -2, 2001:db8::1 = 6; spam.example rhs = 5."""
    def e(who, ip, code="127.0.0.2"):
        return {"a": [code], "txt": f"{who} lists {ip}"}
    return [
        source("alpha", 3, {ip: e("alpha", ip) for ip in
                            ("192.0.2.1", "192.0.2.2", "192.0.2.4", "203.0.113.5", "2001:db8::1")}),
        source("beta", 3, {ip: e("beta", ip) for ip in
                           ("192.0.2.1", "192.0.2.2", "192.0.2.6", "2001:db8::1")}),
        source("gamma", 2, {"192.0.2.1": e("gamma", "192.0.2.1", "127.0.0.3"),
                            "192.0.2.5": e("gamma", "192.0.2.5", "127.0.0.4"),
                            "192.0.2.6": e("gamma", "192.0.2.6", "127.0.0.3")},
               codes="127.0.0.3=2, 127.0.0.[4..7]=1"),
        source("white", -5, {ip: e("white", ip) for ip in ("198.51.100.7", "203.0.113.5")}),
        source("dbl", 5, {"spam.example": e("dbl", "spam.example")}, type="domain"),
    ]
