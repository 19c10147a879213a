"""Which lists are asked: source types, and the bound on questions in flight."""

import socket
import time

import dns.message
import dns.rcode

import dnsclient as dc
import harness
from harness import source


def si(name, weight, entries, **kw):
    return source(name, weight, entries, backend="standin", **kw)


def test_source_types_choose_the_questions(stack):
    s = stack([source("base", 1, {}),
               si("v4only", 5, {"192.0.2.130": {}, "2001:db8::130": {}}, type="ip4"),
               si("v6only", 5, {"192.0.2.131": {}, "2001:db8::131": {}}, type="ip6"),
               si("dom", 5, {"spam.example": {}}, type="domain")])
    assert dc.a_set(s.qip("192.0.2.130")) == {"127.0.0.2"}
    assert dc.a_set(s.qip("2001:db8::131")) == {"127.0.0.2"}
    # Each would be listed (5 >= 5) if the wrong kind of list were asked.
    assert s.qip("2001:db8::130").rcode() == dns.rcode.NXDOMAIN
    assert s.qip("192.0.2.131").rcode() == dns.rcode.NXDOMAIN
    assert dc.a_set(s.q("spam.example.rhs")) == {"127.0.0.2"}
    st = s.standin
    assert st.received(s.upstream_name("v4only", "2001:db8::130")) == 0
    assert st.received(s.upstream_name("v6only", "192.0.2.131")) == 0
    assert st.received(s.upstream_name("dom", "192.0.2.130")) == 0
    for name in ("v4only", "v6only"):
        assert st.received(f"spam.example.{name}.bl.invalid") == 0
    assert st.received(s.upstream_name("v4only", "192.0.2.130")) == 1
    assert st.received(s.upstream_name("v6only", "2001:db8::131")) == 1
    assert st.received(s.upstream_name("dom", "spam.example")) == 1


def test_questions_in_flight_are_bounded(stack):
    ips = [f"192.0.2.{140 + i}" for i in range(20)]
    s = stack([si("slow", 1, {ip: {} for ip in ips}, timeout="5s")],
              server={"threads": 1},
              upstream={"max_inflight": 5, "deadline": "10s"})
    harness.wait_all_ok(s)
    s.standin.set("slow.bl.invalid", delay_ms=300)
    s.standin.reset()
    answers = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(12)
        for i, ip in enumerate(ips):
            sock.sendto(dc.make_query(s.ip(ip, "slow"), qid=1000 + i).to_wire(),
                        ("127.0.0.1", s.port))
        end = time.monotonic() + 12
        while len(answers) < len(ips) and time.monotonic() < end:
            try:
                m = dns.message.from_wire(sock.recv(4096))
            except socket.timeout:
                break
            answers[m.id] = m
    assert len(answers) == len(ips)
    assert all(dc.a_set(m) == {"127.0.0.2"} for m in answers.values())
    _, totals = s.standin.counts()
    assert totals["received"] == len(ips), totals
    assert 1 <= totals["max_outstanding"] <= 5, totals
