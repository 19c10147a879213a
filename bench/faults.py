#!/usr/bin/python3
"""faults: rblmuxd under a steady stream of mixed queries while things break.

    /usr/bin/python3 bench/faults.py [--full | --short] [--rate QPS] [--json FILE]

Everything runs on loopback, bounded in time, and is stopped by PID at the
end: rbldnsd serves three stable lists, tests/standin.py a fourth ("flaky")
that misbehaves on command, redis-server the shared cache, and a load
generator of our own (asyncio UDP, paced, 8 source sockets so that every
loop thread gets traffic) asks rblmuxd about a fixed population of addresses
whose right verdict is known. The timeline: a warm-up (every address
asked at least once, caches filled), then twice this cycle (--full: about
5 minutes in all; --short: about one minute):

    silent       flaky drops every question
    slow         flaky answers after 300 ms
    servfail     flaky answers SERVFAIL
    recovered    flaky normal again (and marked up by its probe)
    world        flaky "lists the world" (every name, test points included)
    redis        flaky normal; redis-server killed (SIGKILL), restarted
    reload       ten SIGHUP reloads of the configuration
    slowloris    TCP connections opened and never written to
    tail         nothing broken

Addresses: listed (on alpha and beta, 3 + 3 >= threshold 5, and on flaky),
clean (on no list) and borderline (on alpha only: 3, one list short of the
threshold). Verdicts:
    wrong       a clean address answered listed, or a listed address
                answered not listed while nothing it depends on is broken
                (alpha and beta never are)
    flip        a borderline address answered listed: flaky's false listing
                pushed it over, which only the health probe can stop (it
                marks a list that lists 127.0.0.1 down); counted per phase
    degraded    SERVFAIL, or TC
An answer counts when it arrives within the deadline ([upstream] deadline)
plus 500 ms for the client side.

Measured: queries sent and answered in time, verdict counts per phase, the
daemon's VmRSS every second (the bar: at the end of the second cycle no
more than 10% above the end of the first: the first cycle reaches every
high-water mark, such as the queries that pile up while a list is silent,
so growth in the second is what a leak would show), the time from the start of the world phase to flaky being
marked down in health.<apex> TXT (bar: one probe interval plus the probe's
own timeout), whether the daemon is alive at the end, and TCP probe queries
(one per second; slowloris may hold every TCP slot until tcp_idle).
Prints a summary and, with --json, writes the figures.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

import dnsclient  # noqa: E402
import harness  # noqa: E402
from harness import APEX, source  # noqa: E402

THRESHOLD = 5
LIST_TTL = 10
FULL = dict(warmup=30, silent=15, slow=15, servfail=15, recovered=10, world=5,
            redis=15, reload=15, slowloris=15, tail=10, cycles=2, probe_interval=5,
            rate=300, population=1500, redis_down=6)
SHORT = dict(warmup=6, silent=4, slow=3, servfail=3, recovered=3, world=1,
             redis=4, reload=5, slowloris=3, tail=1, cycles=2, probe_interval=2,
             rate=250, population=600, redis_down=2)
CYCLE = ("silent", "slow", "servfail", "recovered", "world", "redis", "reload",
         "slowloris", "tail")
PHASES = ("warmup",) + CYCLE
FLAKY_MODE = {"silent": dict(mode="drop", delay_ms=0), "slow": dict(mode="normal", delay_ms=300),
              "servfail": dict(mode="servfail", delay_ms=0),
              "recovered": dict(mode="normal", delay_ms=0),
              "world": dict(mode="wildcard", delay_ms=0),
              "redis": dict(mode="normal", delay_ms=0)}


# -- the population ------------------------------------------------------------

def population(n, seed=7):
    """{address: kind} with kind listed / clean / borderline, n in all."""
    rng = random.Random(seed)
    out = {}
    kinds = ("listed", "clean", "borderline")
    while len(out) < n:
        a = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        out.setdefault(a, kinds[len(out) % 3])
    return out


def lists(pop):
    listed = [a for a, k in pop.items() if k == "listed"]
    border = [a for a, k in pop.items() if k == "borderline"]
    e = {"a": ["127.0.0.2"]}
    return [
        source("alpha", 3, {a: e for a in listed + border}, ttl=LIST_TTL),
        source("beta", 3, {a: e for a in listed}, ttl=LIST_TTL),
        source("gamma", 2, {}, ttl=LIST_TTL),
        source("flaky", 3, {a: e for a in listed}, backend="standin", ttl=LIST_TTL),
    ]


# -- processes -------------------------------------------------------------------

class Redis:
    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = harness.free_port(("127.0.0.1",))
        self.proc = None
        self.start()

    def start(self):
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = harness.Proc("redis", [binary, "--port", self.port, "--bind", "127.0.0.1",
                                           "--save", "", "--appendonly", "no",
                                           "--dir", self.workdir], self.workdir)
        ok = harness.wait_until(self._ready, 10)
        if not ok:
            raise RuntimeError("redis-server did not start:\n" + self.proc.log())

    def _ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.3) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self):
        self.proc.signal(signal.SIGKILL)
        self.proc.wait(5)
        self.proc.stop()

    def stop(self):
        if self.proc:
            self.proc.stop()


def vm_rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


# -- load ---------------------------------------------------------------------------

class Load(asyncio.DatagramProtocol):
    """Paced mixed queries over a few UDP sockets; answers matched by id."""

    def __init__(self, stack, pop, rate, deadline_s, rng):
        self.stack = stack
        self.pop = pop
        self.addrs = list(pop)
        self.rate = rate
        self.deadline_s = deadline_s
        self.rng = rng
        self.phase = "warmup"
        self.pending = {}          # (sock index, id) -> (sent, addr, kind, what, phase)
        self.next_id = {}
        self.transports = []
        self.stats = {p: dict(sent=0, answered=0, late=0, lost=0, wrong=0, flip=0,
                              degraded=0, servfail=0) for p in PHASES}
        self.wrong_examples = []
        self.flip_times = []       # when each flipped question was sent (monotonic)
        self.flip_examples = []
        self.late_times = []       # (sent, seconds to the answer) of late answers
        self.warm_cursor = 0

    def pick(self):
        # Warm-up walks the whole population once, then picks at random.
        if self.warm_cursor < len(self.addrs):
            a = self.addrs[self.warm_cursor]
            self.warm_cursor += 1
        else:
            a = self.rng.choice(self.addrs)
        r = self.rng.random()
        if r < 0.70:
            what = ("combined", "A")
        elif r < 0.80:
            what = ("combined", "TXT")
        elif r < 0.90:
            what = ("score", "A")
        elif r < 0.95:
            what = ("alpha", "A")
        elif r < 0.975:
            what = ("health", "TXT")
        else:
            what = ("apex", "SOA")
        return a, what

    def qname(self, addr, what):
        view, _ = what
        if view == "combined":
            return self.stack.ip(addr)
        if view in ("score", "alpha"):
            return self.stack.ip(addr, view)
        if view == "health":
            return self.stack.name("health")
        return self.stack.name("")

    def send_one(self, idx):
        t = self.transports[idx]
        addr, what = self.pick()
        qid = self.next_id.get(idx, 0)
        for _ in range(65536):
            qid = (qid + 1) & 0xffff
            if (idx, qid) not in self.pending:
                break
        self.next_id[idx] = qid
        qname = self.qname(addr, what)
        wire = dnsclient.make_query(qname, what[1], qid=qid).to_wire()
        self.pending[(idx, qid)] = (time.monotonic(), addr, self.pop[addr], what, self.phase,
                                    qname.lower())
        self.stats[self.phase]["sent"] += 1
        t.sendto(wire)

    def answer(self, idx, data):
        try:
            m = dns.message.from_wire(data)
        except Exception:
            return
        key = (idx, m.id)
        entry = self.pending.pop(key, None)
        if entry is None:
            return
        sent, addr, kind, what, phase, qname = entry
        st = self.stats[phase]
        if not m.question or m.question[0].name.to_text().lower() != qname:
            # An answer to another question: as wrong as it gets.
            st["wrong"] += 1
            self.wrong_examples.append((phase, addr, kind, "answer to another question"))
            return
        if time.monotonic() - sent > self.deadline_s:
            st["late"] += 1
            self.late_times.append((round(sent, 2), round(time.monotonic() - sent, 2)))
            return
        st["answered"] += 1
        rcode = m.rcode()
        if rcode == dns.rcode.SERVFAIL:
            st["servfail"] += 1
            st["degraded"] += 1
            return
        if m.flags & 0x0200:
            st["degraded"] += 1
            return
        if what != ("combined", "A"):
            return
        listed = "127.0.0.2" in dnsclient.a_set(m)
        if kind == "clean" and listed:
            st["wrong"] += 1
            self.wrong_examples.append((phase, addr, kind, "listed"))
        elif kind == "listed" and not listed:
            st["wrong"] += 1
            self.wrong_examples.append((phase, addr, kind, dns.rcode.to_text(rcode)))
        elif kind == "borderline" and listed:
            st["flip"] += 1
            self.flip_times.append(sent)
            self.flip_examples.append((phase, round(sent, 2), addr,
                                       dnsclient.txt_text(m) or m.to_text()[-300:]))

    def expire(self):
        now = time.monotonic()
        for key, (sent, _, _, _, phase, _) in list(self.pending.items()):
            if now - sent > self.deadline_s + 1.0:
                del self.pending[key]
                self.stats[phase]["lost"] += 1

    async def open(self, nsock=8):
        loop = asyncio.get_running_loop()
        for i in range(nsock):
            t, _ = await loop.create_datagram_endpoint(
                lambda i=i: _Endpoint(self, i), local_addr=("127.0.0.1", 0),
                remote_addr=("127.0.0.1", self.stack.port))
            sock = t.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.transports.append(t)

    async def run(self, until):
        """Send at self.rate until the monotonic time `until`."""
        tick = 0.01
        credit = 0.0
        i = 0
        next_t = time.monotonic()
        last_expire = next_t
        while time.monotonic() < until:
            credit += self.rate * tick
            while credit >= 1:
                self.send_one(i % len(self.transports))
                i += 1
                credit -= 1
            if time.monotonic() - last_expire > 0.5:
                self.expire()
                last_expire = time.monotonic()
            next_t += tick
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))

    async def drain(self):
        end = time.monotonic() + self.deadline_s + 1.2
        while self.pending and time.monotonic() < end:
            await asyncio.sleep(0.05)
        self.expire()
        for key, (_, _, _, _, phase, _) in list(self.pending.items()):
            del self.pending[key]
            self.stats[phase]["lost"] += 1

    def close(self):
        for t in self.transports:
            t.close()


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, load, idx):
        self.load = load
        self.idx = idx

    def datagram_received(self, data, addr):
        self.load.answer(self.idx, data)


# -- the run ---------------------------------------------------------------------------

class Run:
    def __init__(self, plan, workdir, log=print):
        self.plan = plan
        self.workdir = Path(workdir)
        self.log = log
        self.events = []
        self.rss = []              # (seconds since start, KiB, phase)
        self.tcp = {"asked": 0, "answered": 0}
        self.tcp_by_phase = {p: [0, 0] for p in PHASES}
        self.down_after = []
        self.windows = []          # (world-listing start, marked down) per cycle
        self.reloads = 0
        self.slowloris_socks = []

    def event(self, what):
        t = time.monotonic() - self.t0
        self.events.append((round(t, 2), what))
        self.log(f"[{t:6.1f}s] {what}")

    async def phase_actions(self, load, phase, until):
        p = self.plan
        st = self.stack.standin
        if phase == "world":
            # Detection is timed from a list that is up (ok, or degraded by
            # the errors of the phases before).
            def up():
                return harness.health_state(self.stack, "flaky") in ("ok", "degraded")
            ok = await asyncio.to_thread(harness.wait_until, up, p["probe_interval"] + 2, 0.1)
            self.event("flaky up before the world phase" if ok else "flaky NOT up")
        # Everything that blocks runs off the loop: a stalled loop would
        # read answers late and blame rblmuxd.
        if phase in FLAKY_MODE:
            await asyncio.to_thread(st.set, "flaky.bl.invalid", **FLAKY_MODE[phase])
            self.event(f"flaky: {FLAKY_MODE[phase]}")
        if phase == "world":
            # The world phase lasts until the probe marks flaky down (or
            # well past the bar), however long the phase was planned.
            await self.watch_down(time.monotonic(), p["probe_interval"] + 4)
        if phase == "redis":
            await asyncio.to_thread(self.redis.kill)
            self.event("redis killed")
            await asyncio.sleep(p["redis_down"])
            await asyncio.to_thread(self.redis.start)
            self.event("redis restarted")
        if phase == "reload":
            gap = p["reload"] * 0.8 / 10
            for i in range(10):
                text = self.stack.config() + f"\n; reload {i}\n"
                await asyncio.to_thread(self.stack.daemon.reload, text)
                self.reloads += 1
                await asyncio.sleep(gap)
            self.event("10 reloads sent")
        if phase == "slowloris":
            n = 3 * self.tcp_max + 50
            for _ in range(n):
                try:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setblocking(False)
                    s.connect_ex(("127.0.0.1", self.stack.port))
                    self.slowloris_socks.append(s)
                except OSError:
                    break
            self.event(f"slowloris: {len(self.slowloris_socks)} idle connections")
        if phase == "tail":
            for s in self.slowloris_socks:
                s.close()
            self.slowloris_socks = []

    async def watch_down(self, start, bound):
        while time.monotonic() < start + bound:
            state = await asyncio.to_thread(harness.health_state, self.stack, "flaky")
            if state == "down":
                took = time.monotonic() - start
                self.down_after.append(round(took, 2))
                self.windows.append((start, time.monotonic()))
                self.event(f"flaky marked down after {took:.2f}s")
                return
            await asyncio.sleep(0.1)
        self.down_after.append(None)
        self.windows.append((start, time.monotonic()))

    async def sampler(self, load, stop):
        while not stop.is_set():
            kib = vm_rss_kib(self.stack.daemon.proc.pid)
            if kib:
                self.rss.append((round(time.monotonic() - self.t0, 1), kib, load.phase))
            ok = await asyncio.to_thread(self.tcp_probe)
            self.tcp["asked"] += 1
            self.tcp["answered"] += ok
            self.tcp_by_phase[load.phase][0] += 1
            self.tcp_by_phase[load.phase][1] += ok
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    def tcp_probe(self):
        try:
            r = dnsclient.query(self.stack.name(""), "SOA", port=self.stack.port, tcp=True,
                                timeout=1.0)
            return int(r.rcode() == dns.rcode.NOERROR)
        except Exception:
            return 0

    async def main(self):
        p = self.plan
        pop = population(p["population"])
        self.redis = Redis(self.workdir / "redis")
        self.tcp_max = 64
        self.stack = harness.Stack(
            self.workdir / "stack", lists(pop),
            server={"threads": 2, "tcp_max": self.tcp_max, "tcp_idle": "5s"},
            upstream={"timeout": "1500ms", "deadline": "2s",
                      "probe_interval": f"{p['probe_interval']}s"},
            scoring={"threshold": THRESHOLD},
            cache={"redis": f"127.0.0.1:{self.redis.port}", "memory": "32M",
                   "min_ttl": "5s", "max_ttl": "30s", "error_ttl": "5s", "stale_ttl": "60s"},
            v6=False)
        harness.wait_all_ok(self.stack, timeout=20)
        maps = Path(f"/proc/{self.stack.daemon.proc.pid}/maps")
        self.sanitized = "libasan" in maps.read_text()
        deadline_s = 2.0 + 0.5
        rng = random.Random(11)
        load = Load(self.stack, pop, p["rate"], deadline_s, rng)
        await load.open()
        self.t0 = time.monotonic()
        stop = asyncio.Event()
        sampler = asyncio.get_running_loop().create_task(self.sampler(load, stop))
        marks = {}
        try:
            timeline = [("warmup", 0)] + [(ph, c + 1) for c in range(p["cycles"])
                                            for ph in CYCLE]
            for phase, cycle in timeline:
                load.phase = phase
                until = time.monotonic() + p[phase]
                self.event(f"cycle {cycle} phase {phase} ({p[phase]}s)")
                actions = asyncio.get_running_loop().create_task(
                    self.phase_actions(load, phase, until))
                await load.run(until)
                while not actions.done():
                    await load.run(time.monotonic() + 0.2)
                await actions
                marks[f"{phase}{cycle}"] = vm_rss_kib(self.stack.daemon.proc.pid)
            await load.drain()
        finally:
            stop.set()
            await sampler
            load.close()
            for s in self.slowloris_socks:
                s.close()
        alive = self.stack.daemon.proc.alive()
        final_ok = False
        try:
            r = self.stack.q("", "SOA", timeout=2)
            final_ok = r.rcode() == dns.rcode.NOERROR
        except Exception:
            pass
        return self.figures(load, marks, alive and final_ok)

    def figures(self, load, marks, alive):
        tot = {k: sum(s[k] for s in load.stats.values()) for k in load.stats["warmup"]}
        after_warm = [kib for t, kib, ph in self.rss if ph != "warmup"]
        rss_warm = marks.get("warmup0")
        rss_cycle1 = marks.get("tail1")
        rss_end = marks.get(f"tail{self.plan['cycles']}")
        downs = self.down_after
        first_world = self.windows[0][0] if self.windows else float("inf")
        in_window = before = after = 0
        for t in load.flip_times:
            if t < first_world:
                before += 1
            elif any(a <= t <= b for a, b in self.windows):
                in_window += 1
            else:
                after += 1
        return {
            "plan": self.plan,
            "sent": tot["sent"], "answered": tot["answered"], "late": tot["late"],
            "lost": tot["lost"], "wrong": tot["wrong"], "flips": tot["flip"],
            "flips_before_world": before, "flips_detection_window": in_window,
            "flips_after_down": after,
            "degraded": tot["degraded"], "servfail": tot["servfail"],
            "answered_fraction": tot["answered"] / tot["sent"] if tot["sent"] else 0.0,
            "by_phase": load.stats,
            "wrong_examples": load.wrong_examples[:20],
            "flip_examples": load.flip_examples[:40],
            "late_examples": [(round(t - self.t0, 2), d) for t, d in load.late_times[:200]],
            "rss_kib_after_warmup": rss_warm, "rss_kib_after_cycle1": rss_cycle1,
            "rss_kib_end": rss_end,
            "rss_kib_max_after_warmup": max(after_warm) if after_warm else None,
            "rss_growth": (rss_end / rss_cycle1 - 1.0) if rss_cycle1 and rss_end else None,
            "down_after_s": (None if not downs or None in downs else max(downs)),
            "down_after_each_s": downs,
            "down_bar_s": self.plan["probe_interval"] + 1.5 + 0.5,
            "tcp_probes": self.tcp, "tcp_by_phase": self.tcp_by_phase,
            "reloads": self.reloads, "alive": alive, "events": self.events,
            "sanitized": self.sanitized,
            "rss_samples": self.rss,
        }

    def stop(self):
        for what in (getattr(self, "stack", None), getattr(self, "redis", None)):
            if what is not None:
                try:
                    what.stop()
                except Exception:
                    pass


def run(plan, workdir=None, log=print):
    """Run the timeline; the figures (dict). Stops every process it started."""
    own = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="rblmux-faults-"))
    r = Run(plan, workdir, log=log)
    try:
        return asyncio.run(r.main())
    finally:
        r.stop()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


def summary(f):
    lines = [
        f"queries sent {f['sent']}, answered in time {f['answered']} "
        f"({100 * f['answered_fraction']:.3f}%), late {f['late']}, lost {f['lost']}",
        f"wrong verdicts {f['wrong']}, borderline flips {f['flips']} (before any world-listing "
        f"{f['flips_before_world']}, while listing the world until marked down "
        f"{f['flips_detection_window']}, after {f['flips_after_down']}), "
        f"degraded {f['degraded']} (SERVFAIL {f['servfail']})",
        f"RSS (KiB) after warm-up {f['rss_kib_after_warmup']}, after cycle 1 "
        f"{f['rss_kib_after_cycle1']}, at the end {f['rss_kib_end']} "
        f"({100 * (f['rss_growth'] or 0):+.1f}% over cycle 2), max {f['rss_kib_max_after_warmup']}",
        f"world-listing list marked down after {f['down_after_each_s']} s "
        f"(bar {f['down_bar_s']} s: probe interval {f['plan']['probe_interval']} s)",
        f"TCP probes answered {f['tcp_probes']['answered']}/{f['tcp_probes']['asked']}; "
        f"reloads {f['reloads']}; alive at the end: {f['alive']}",
        "per phase: sent/answered/late/lost wrong flips degraded tcp",
    ]
    for p in PHASES:
        s = f["by_phase"][p]
        tcp = f["tcp_by_phase"][p]
        lines.append(f"  {p:10s} {s['sent']:6d}/{s['answered']:6d}/{s['late']:4d}/{s['lost']:4d} "
                     f"{s['wrong']:5d} {s['flip']:5d} {s['degraded']:5d}  {tcp[1]}/{tcp[0]}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--full", action="store_true", help="about 5 minutes (default)")
    g.add_argument("--short", action="store_true", help="about one minute (CI)")
    ap.add_argument("--rate", type=int, help="queries per second")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    plan = dict(SHORT if args.short else FULL)
    if args.rate:
        plan["rate"] = args.rate
    f = run(plan)
    print(summary(f))
    if args.json:
        Path(args.json).write_text(json.dumps(f, indent=1))
    bars = [f["answered_fraction"] >= 0.999, f["wrong"] == 0, f["alive"],
            f["rss_growth"] is not None and f["rss_growth"] <= 0.10,
            f["down_after_s"] is not None and f["down_after_s"] <= f["down_bar_s"]]
    print("bars:", "met" if all(bars) else "NOT met")
    return 0 if all(bars) else 1


if __name__ == "__main__":
    sys.exit(main())
