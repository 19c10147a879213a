"""Transport: UDP truncation and EDNS, TCP framing/pipelining/idle timeout,
the allow ACL, opcodes, malformed packets, IPv6."""

import random
import socket
import struct

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import pytest

import dnsclient as dc
from harness import APEX, source
from standin import big_txt_strings

BIG = 900
BIG_IP = "192.0.2.100"


@pytest.fixture(scope="module")
def tstack(module_stack):
    s = module_stack(
        [source("alpha", 5, {"192.0.2.1": {"txt": "alpha lists 192.0.2.1"},
                             "2001:db8::1": {"txt": "alpha lists 2001:db8::1"}}),
         source("big", 1, {BIG_IP: {"txt": "replaced by the big TXT"}}, backend="standin")],
        server={"allow": "127.0.0.1/32, ::1/128", "tcp_idle": "1s"})
    s.standin.set("big.bl.invalid", mode="bigtxt", bigtxt_size=BIG)
    return s


def test_big_txt_over_udp_without_edns_is_truncated(tstack):
    r = tstack.qip(BIG_IP, "TXT", view="big", timeout=5)
    assert r.flags & dns.flags.TC, r.to_text()
    assert r.rcode() == dns.rcode.NOERROR


def test_big_txt_over_tcp_is_complete(tstack):
    r = tstack.qip(BIG_IP, "TXT", view="big", tcp=True, timeout=5)
    assert not r.flags & dns.flags.TC
    assert dc.txt_strings(r) == [tuple(big_txt_strings(BIG))]


def test_edns_size_is_honoured(tstack):
    r = tstack.qip(BIG_IP, "TXT", view="big", edns=1232, timeout=5)
    assert not r.flags & dns.flags.TC
    assert r.edns >= 0, "an EDNS query gets an OPT record back"
    assert dc.txt_strings(r) == [tuple(big_txt_strings(BIG))]
    r = tstack.qip(BIG_IP, "TXT", view="big", edns=512, timeout=5)
    assert r.flags & dns.flags.TC


def test_small_answer_fits_without_edns(tstack):
    r = tstack.qip("192.0.2.1")
    assert not r.flags & dns.flags.TC and dc.a_set(r) == {"127.0.0.2"}
    assert r.edns < 0, "no OPT record in the answer to a query without one"


def test_udp_max_size_caps_the_client_size(stack):
    s = stack([source("big", 1, {BIG_IP: {}}, backend="standin")],
              server={"udp_max_size": 600})
    s.standin.set("big.bl.invalid", mode="bigtxt", bigtxt_size=BIG)
    r = s.qip(BIG_IP, "TXT", view="big", edns=4096, timeout=5)
    assert r.flags & dns.flags.TC
    r = s.qip(BIG_IP, "TXT", view="big", tcp=True, timeout=5)
    assert dc.txt_strings(r) == [tuple(big_txt_strings(BIG))]


def test_tcp_pipelining(tstack):
    names = {10: (tstack.ip("192.0.2.1"), "A"), 11: (tstack.ip("192.0.2.3"), "A"),
             12: (tstack.name(""), "SOA"), 13: (tstack.ip("192.0.2.1", "alpha"), "TXT"),
             14: ("example.com.", "A")}
    with dc.tcp_connect(tstack.port) as sock:
        sock.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (
            dc.make_query(n, t, qid=i).to_wire() for i, (n, t) in names.items())))
        got = {}
        for _ in names:
            wire = dc.tcp_recv(sock)
            assert wire is not None, "connection closed before every answer came"
            m = dns.message.from_wire(wire)
            got[m.id] = m
    assert set(got) == set(names)
    assert dc.a_set(got[10]) == {"127.0.0.2"}
    assert got[11].rcode() == dns.rcode.NXDOMAIN
    assert dc.rrsets(got[12], "SOA")
    assert dc.txt_strings(got[13]) == [("alpha lists 192.0.2.1",)]
    assert got[14].rcode() == dns.rcode.REFUSED


def test_tcp_idle_connection_is_closed(tstack):
    with dc.tcp_connect(tstack.port) as sock:
        assert dc.wait_closed(sock, 8), "idle connection still open (tcp_idle = 1s)"
    with dc.tcp_connect(tstack.port) as sock:
        dc.tcp_send(sock, dc.make_query(tstack.ip("192.0.2.1")).to_wire())
        assert dns.message.from_wire(dc.tcp_recv(sock)).id is not None
        assert dc.wait_closed(sock, 8)


def test_disallowed_source_is_refused(tstack):
    r = tstack.qip("192.0.2.1", source="127.0.0.2")
    assert r.rcode() == dns.rcode.REFUSED, r.to_text()
    assert not r.answer
    assert dc.a_set(tstack.qip("192.0.2.1", source="127.0.0.1")) == {"127.0.0.2"}


def test_disallowed_source_over_tcp(tstack):
    with socket.create_connection(("127.0.0.1", tstack.port), timeout=3,
                                  source_address=("127.0.0.2", 0)) as sock:
        dc.tcp_send(sock, dc.make_query(tstack.ip("192.0.2.1"), qid=77).to_wire())
        try:
            wire = dc.tcp_recv(sock)
        except ConnectionResetError:
            wire = None
    if wire is not None:   # closing the connection is also a refusal
        m = dns.message.from_wire(wire)
        assert m.rcode() == dns.rcode.REFUSED and not m.answer


@pytest.mark.parametrize("opcode", [dns.opcode.STATUS, dns.opcode.NOTIFY, dns.opcode.UPDATE])
def test_other_opcodes_notimp(tstack, opcode):
    q = dc.make_query(tstack.name(""), "SOA", qid=0x4242)
    q.set_opcode(opcode)
    wire = dc.raw_udp(q.to_wire(), tstack.port, timeout=3)
    assert wire is not None, "no answer to an unknown opcode"
    assert wire[:2] == b"\x42\x42"
    flags = struct.unpack("!H", wire[2:4])[0]
    assert flags & 0x8000, "QR not set"
    assert flags & 0x000f == dns.rcode.NOTIMP
    assert (flags >> 11) & 0xf == opcode


def _header(qid=0xbeef, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def _question(name=f"1.2.0.192.{APEX}.", qtype=1):
    return dns.name.from_text(name).to_wire() + struct.pack("!HH", qtype, 1)


_OPT = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)

# name -> (packet, what may come back: "formerr" = FORMERR or nothing,
# "silent" = nothing, "any" = anything, as long as the server lives on).
MALFORMED = {
    "short header": (_header()[:7], "silent"),
    "header only": (_header(qd=0), "formerr"),
    "truncated name": (_header() + _question()[:9], "formerr"),
    "no qtype": (_header() + dns.name.from_text(f"x.{APEX}.").to_wire(), "formerr"),
    "two questions": (_header(qd=2) + _question() + _question(f"2.2.0.192.{APEX}."), "formerr"),
    "pointer loop": (_header() + b"\xc0\x0c" + struct.pack("!HH", 1, 1), "formerr"),
    "pointer forward": (_header() + b"\xc0\x20" + struct.pack("!HH", 1, 1) + b"\x00" * 20,
                        "formerr"),
    "label type 01": (_header() + b"\x40" + b"a" * 64 + b"\x00" + struct.pack("!HH", 1, 1),
                      "formerr"),
    "label type 10": (_header() + b"\x80abc\x00" + struct.pack("!HH", 1, 1), "formerr"),
    "name too long": (_header() + b"".join(b"\x3f" + b"a" * 63 for _ in range(5)) + b"\x00"
                      + struct.pack("!HH", 1, 1), "formerr"),
    "two OPT records": (_header(ar=2) + _question() + _OPT + _OPT, "formerr"),
    "counts beyond the data": (_header(an=5, ar=3) + _question(), "any"),
    "a response": (_header(flags=0x8180) + _question(), "silent"),
}


def _alive(stack):
    return dc.a_set(stack.qip("192.0.2.1", timeout=2)) == {"127.0.0.2"}


@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_malformed_udp_does_not_kill_the_server(tstack, what):
    packet, expect = MALFORMED[what]
    reply = dc.raw_udp(packet, tstack.port, timeout=0.5)
    if expect == "silent":
        assert reply is None, f"answered: {reply!r}"
    elif expect == "formerr" and reply is not None:
        assert reply[:2] == b"\xbe\xef", "answer to a different ID"
        flags = struct.unpack("!H", reply[2:4])[0]
        assert flags & 0x8000
        assert flags & 0x000f == dns.rcode.FORMERR, f"rcode {flags & 0xf}"
    assert tstack.daemon.proc.alive()
    assert _alive(tstack)


def test_edns_version_1_is_badvers(tstack):
    q = dc.make_query(tstack.ip("192.0.2.1"), "A", edns=1232)
    q.use_edns(1, 0, 1232)
    r = dc.query(None, q=q, port=tstack.port)
    assert r.rcode() == dns.rcode.BADVERS, r.to_text()
    assert not r.answer


def test_random_garbage_does_not_kill_the_server(tstack):
    rnd = random.Random(5782)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(500):
            s.sendto(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 120))),
                     ("127.0.0.1", tstack.port))
    assert tstack.daemon.proc.alive()
    assert _alive(tstack)


def test_malformed_tcp_does_not_kill_the_server(tstack):
    rnd = random.Random(7766)
    for payload in [p for p, _ in MALFORMED.values()] + [bytes(rnd.getrandbits(8) for _ in range(60))]:
        with dc.tcp_connect(tstack.port) as sock:
            try:
                dc.tcp_send(sock, payload)
                sock.settimeout(0.5)
                sock.recv(4096)
            except (socket.timeout, ConnectionError):
                pass
    with dc.tcp_connect(tstack.port) as sock:   # a length prefix and nothing else
        sock.sendall(b"\x01")
    with dc.tcp_connect(tstack.port) as sock:   # a length beyond what follows
        sock.sendall(b"\x40\x00" + _header())
    assert tstack.daemon.proc.alive()
    assert dc.a_set(tstack.qip("192.0.2.1", tcp=True)) == {"127.0.0.2"}


def test_ipv6_listener_and_client(tstack):
    r = dc.query(tstack.ip("192.0.2.1"), "A", port=tstack.port, host="::1")
    assert dc.a_set(r) == {"127.0.0.2"}
    r = dc.query(tstack.ip("2001:db8::1"), "A", port=tstack.port, host="::1", tcp=True)
    assert dc.a_set(r) == {"127.0.0.2"}
    r = dc.query(tstack.ip("192.0.2.3"), "A", port=tstack.port, host="::1")
    assert r.rcode() == dns.rcode.NXDOMAIN


def test_ipv6_client_outside_allow_is_refused(stack):
    s = stack([source("alpha", 5, {"192.0.2.1": {}})], server={"allow": "127.0.0.0/8"})
    r = dc.query(s.ip("192.0.2.1"), "A", port=s.port, host="::1")
    assert r.rcode() == dns.rcode.REFUSED and not r.answer
    assert dc.a_set(s.qip("192.0.2.1")) == {"127.0.0.2"}
