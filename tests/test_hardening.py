"""Hardening: response rate limiting, privilege drop, UDP answer sizes,
cheap refusals, minimal ANY, and a flood of malformed packets."""

import os
import pwd
import random
import socket
import struct
import time
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

import dnsclient as dc
from harness import APEX, source

BIG_IP = "192.0.2.100"
LISTED = "192.0.2.1"


def lists():
    return [source("alpha", 5, {LISTED: {"txt": "alpha lists 192.0.2.1"}}),
            source("big", 1, {BIG_IP: {"txt": "replaced by the big TXT"}}, backend="standin")]


def settle():
    """Let the budget of 127.0.0.0/24 refill after the harness's readiness
    queries (from 127.0.0.1, the same network)."""
    time.sleep(1.1)


def burst(port, wire, n, src="127.0.0.1", wait=1.0, host="127.0.0.1"):
    """Send n copies of wire from one socket (one source port, so one loop
    thread), as fast as possible; every datagram that comes back in time."""
    got = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((src, 0))
        for _ in range(n):
            s.sendto(wire, (host, port))
        s.settimeout(wait)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            try:
                got.append(s.recv(65535))
            except socket.timeout:
                break
    return got


def classify(datagrams):
    """(full answers, slipped answers): slipped = TC with no records."""
    full = slipped = 0
    for d in datagrams:
        m = dns.message.from_wire(d, ignore_trailing=True)
        if m.flags & dns.flags.TC and not m.answer and not m.authority:
            slipped += 1
        else:
            full += 1
    return full, slipped


# -- response rate limiting ----------------------------------------------------

def test_rrl_slips_then_drops_a_burst(stack):
    s = stack(lists(), server={"rrl_rate": 10, "rrl_slip": 2, "rrl_exempt": "none"})
    wire = dc.make_query(s.name(""), "SOA", qid=4242).to_wire()
    settle()
    got = burst(s.port, wire, 200, src="127.0.0.2")
    full, slipped = classify(got)
    # 10 per second with a burst of 10; the burst takes well under a second.
    assert 10 <= full <= 15, (full, slipped)
    # Of the ~190 limited answers, every 2nd is slipped, the rest dropped.
    assert 80 <= slipped <= 100, (full, slipped)
    assert len(got) < 120
    for d in got:
        m = dns.message.from_wire(d, ignore_trailing=True)
        assert m.id == 4242 and m.rcode() == dns.rcode.NOERROR
        if m.flags & dns.flags.TC:
            assert len(d) <= len(wire), "a slipped answer is never larger than the query"
            assert m.question[0].name.to_text().lower() == s.name("").lower()

    # A slipped client retries over TCP, which is never limited.
    for _ in range(20):
        r = s.q("", "SOA", tcp=True, source="127.0.0.2")
        assert dc.rrsets(r, "SOA")
    # Another /24 has its own budget.
    full2, _ = classify(burst(s.port, wire, 10, src="127.0.1.1", wait=0.5))
    assert full2 == 10
    # The budget refills: 10 per second.
    time.sleep(1.2)
    full3, _ = classify(burst(s.port, wire, 10, src="127.0.0.2", wait=0.5))
    assert full3 == 10


def test_rrl_drops_all_with_slip_zero(stack):
    s = stack(lists(), server={"rrl_rate": 5, "rrl_slip": 0, "rrl_exempt": "none"})
    wire = dc.make_query(s.ip(LISTED), "A").to_wire()
    settle()
    got = burst(s.port, wire, 100, src="127.0.0.3")
    full, slipped = classify(got)
    assert slipped == 0
    assert 1 <= full <= 8


def test_rrl_exempts_loopback_by_default(stack):
    s = stack(lists(), server={"rrl_rate": 5})
    wire = dc.make_query(s.name(""), "SOA").to_wire()
    got = burst(s.port, wire, 300, src="127.0.0.2", wait=2.0)
    full, slipped = classify(got)
    assert slipped == 0
    assert full == 300


def test_rrl_limits_refused_answers_too(stack):
    # A spoofer may aim REFUSED answers at a victim as well.
    s = stack(lists(), server={"rrl_rate": 5, "rrl_slip": 0, "rrl_exempt": "none",
                               "allow": "127.0.0.1/32, ::1/128"})
    wire = dc.make_query(s.name(""), "SOA").to_wire()
    got = burst(s.port, wire, 100, src="127.0.0.9")
    assert 1 <= len(got) <= 8
    assert all(dns.message.from_wire(d).rcode() == dns.rcode.REFUSED for d in got)


# -- privilege drop --------------------------------------------------------------

def _status_ids(pid):
    ids = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            ids[key] = value.split()
    return ids


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_privilege_drop_after_binding(stack):
    nobody = pwd.getpwnam("nobody")
    s = stack(lists(), server={"user": "nobody"})
    ids = _status_ids(s.daemon.proc.pid)
    assert ids["Uid"] == [str(nobody.pw_uid)] * 4, ids
    assert ids["Gid"] == [str(nobody.pw_gid)] * 4, ids
    assert ids["Groups"] in ([], [str(nobody.pw_gid)]), ids
    # Threads started after the drop run as nobody too.
    for task in Path(f"/proc/{s.daemon.proc.pid}/task").iterdir():
        assert _status_ids(task.name)["Uid"] == [str(nobody.pw_uid)] * 4
    # The sockets were bound before: it answers, over UDP and TCP.
    assert dc.a_set(s.qip(LISTED)) == {"127.0.0.2"}
    assert dc.a_set(s.qip(LISTED, tcp=True)) == {"127.0.0.2"}
    assert "cannot become" not in s.daemon.log()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_unknown_user_is_fatal(tmp_path):
    import harness
    port = harness.free_port(("127.0.0.1",))
    text = harness.render_config([("server", {"listen": f"127.0.0.1:{port}",
                                              "user": "no-such-user-rblmux"})])
    d = harness.Rblmuxd(tmp_path, text, port, ready=False)
    try:
        assert d.proc.wait(5) not in (None, 0)
        assert "no-such-user-rblmux" in d.log()
    finally:
        d.stop()


# -- answer sizes ---------------------------------------------------------------

def _raw(port, q, tcp=False):
    wire = q.to_wire()
    if tcp:
        with dc.tcp_connect(port) as sock:
            dc.tcp_send(sock, wire)
            return dc.tcp_recv(sock)
    return dc.raw_udp(wire, port, timeout=5)


@pytest.mark.parametrize("udp_max", [512, 600, 1232])
def test_udp_answers_never_exceed_udp_max_size(stack, udp_max):
    s = stack(lists(), server={"udp_max_size": udp_max})
    # 1000 bytes: under the 1 KiB rblmuxd keeps of a list's TXT.
    s.standin.set("big.bl.invalid", mode="bigtxt", bigtxt_size=1000)
    names = [(s.ip(BIG_IP, "big"), "TXT"), (s.ip(BIG_IP, "big"), "ANY"),
             (s.ip(LISTED), "TXT"), (s.ip(LISTED), "ANY"), (s.name("health"), "TXT"),
             (s.name(""), "ANY"), (s.name("x" * 60 + "." + "y" * 60), "TXT")]
    for name, rdtype in names:
        for payload in (None, 512, 1232, 4096, 65535):
            for diag in (False, True):
                q = dc.make_query(name, rdtype, edns=payload)
                if diag and payload is not None:
                    q.use_edns(0, 0, payload, options=[dns.edns.GenericOption(65301, b"")])
                wire = _raw(s.port, q)
                assert wire is not None, (name, rdtype, payload)
                limit = 512 if payload is None else min(max(payload, 512), udp_max)
                assert len(wire) <= limit, (name, rdtype, payload, diag, len(wire))
                m = dns.message.from_wire(wire)
                assert m.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN), m.to_text()
    # The big TXT is cut (TC) over UDP when it does not fit, whole over TCP.
    r = dns.message.from_wire(_raw(s.port, dc.make_query(s.ip(BIG_IP, "big"), "TXT",
                                                        edns=65535)))
    assert bool(r.flags & dns.flags.TC) == (udp_max < 1100), r.to_text()
    r = dns.message.from_wire(_raw(s.port, dc.make_query(s.ip(BIG_IP, "big"), "TXT"),
                                   tcp=True))
    assert not r.flags & dns.flags.TC and len(r.to_wire()) > 1000


def test_any_is_minimal(stack):
    s = stack(lists())
    for name in (s.ip(LISTED), s.ip(LISTED, "score"), s.name("2.0.0.127")):
        q = dc.make_query(name, "ANY", edns=4096)
        wire = q.to_wire()
        r = dns.message.from_wire(_raw(s.port, q))
        assert len(r.answer) == 1, r.to_text()   # one RRset (RFC 8482)
        assert dc.rrsets(r, "A") and not dc.rrsets(r, "TXT")
        assert len(_raw(s.port, q)) < len(wire) + 40
    r = dns.message.from_wire(_raw(s.port, dc.make_query(s.name(""), "ANY", edns=4096)))
    assert len(r.answer) == 1


# -- refusals cost nothing -------------------------------------------------------

def test_refused_is_tiny_and_asks_nobody(stack):
    s = stack(lists(), server={"allow": "127.0.0.1/32, ::1/128"})
    before = s.standin.counts()[1]["received"]
    for name, src in (("www.example.com.", "127.0.0.1"), (s.ip(BIG_IP, "big"), "127.0.0.2"),
                      (s.ip("192.0.2.77", "big"), "127.0.0.2"), ("com.", "127.0.0.1")):
        for payload in (None, 1232):
            q = dc.make_query(name, "TXT", edns=payload)
            if payload:
                # A cookie the answer need not carry back.
                q.use_edns(0, 0, payload, options=[dns.edns.GenericOption(10, b"c" * 8)])
            wire = q.to_wire()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind((src, 0))
                sock.settimeout(3)
                sock.sendto(wire, ("127.0.0.1", s.port))
                answer = sock.recv(65535)
            m = dns.message.from_wire(answer)
            assert m.rcode() == dns.rcode.REFUSED
            assert not m.answer and not m.authority
            assert len(answer) <= len(wire), (name, src, len(answer), len(wire))
    time.sleep(0.3)
    # Refusals never reach a list.
    assert s.standin.counts()[1]["received"] == before


# -- malformed flood --------------------------------------------------------------

def _mutations(rng, seeds, n):
    for i in range(n):
        kind = i % 5
        if kind == 0:
            yield rng.randbytes(rng.randrange(0, 600))
        else:
            base = bytearray(rng.choice(seeds))
            if kind == 1 and len(base) > 1:
                yield bytes(base[:rng.randrange(1, len(base))])
            elif kind == 2:
                for _ in range(rng.randrange(1, 8)):
                    if base:
                        base[rng.randrange(len(base))] = rng.randrange(256)
                yield bytes(base)
            elif kind == 3:
                # Counts and flags in the header.
                if len(base) >= 12:
                    struct.pack_into("!H", base, 4 + 2 * rng.randrange(4), rng.randrange(65536))
                    base[2] = rng.randrange(256) & 0x7f
                yield bytes(base)
            else:
                yield bytes(base) + rng.randbytes(rng.randrange(1, 64))


def test_malformed_flood_does_not_crash(stack):
    s = stack(lists())
    rng = random.Random(20240601)
    corpus = Path(__file__).resolve().parent / "fuzz" / "query"
    seeds = [p.read_bytes() for p in sorted(corpus.iterdir())[:200]] if corpus.is_dir() else []
    seeds.append(dc.make_query(s.ip(LISTED), "A", edns=1232).to_wire())
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setblocking(False)
        for i, pkt in enumerate(_mutations(rng, seeds, 20000)):
            try:
                sock.sendto(pkt, ("127.0.0.1", s.port))
                sent += 1
            except BlockingIOError:
                time.sleep(0.01)
            if i % 500 == 0:
                # Drain answers so that our own buffer never fills.
                try:
                    while sock.recv(65535):
                        pass
                except BlockingIOError:
                    pass
    # Over TCP: garbage frames, a frame too long, a frame cut short.
    for pkt in list(_mutations(rng, seeds, 60)):
        try:
            with dc.tcp_connect(s.port, timeout=2) as c:
                c.sendall(struct.pack("!H", len(pkt)) + pkt)
                c.settimeout(0.1)
                try:
                    c.recv(65535)
                except (socket.timeout, ConnectionResetError):
                    pass
        except OSError:
            pass
    assert sent > 15000
    assert s.daemon.proc.alive(), s.log()[-3000:]
    assert dc.a_set(s.qip(LISTED)) == {"127.0.0.2"}
    assert s.qip("192.0.2.3").rcode() == dns.rcode.NXDOMAIN
    assert dc.a_set(s.qip(LISTED, tcp=True)) == {"127.0.0.2"}
    assert s.q("", "SOA").rcode() == dns.rcode.NOERROR
    assert APEX in s.name("")
