"""Caching: merged lookups, TTLs, negative SOA, serve-stale, pass-through."""

import random
import select
import socket
import time

import dns.message
import dns.rcode

import dnsclient as dc
import harness
from harness import source


def si(name, weight, entries, **kw):
    return source(name, weight, entries, backend="standin", **kw)


def blast(port, questions, sockets=10, rounds=3, wait=4.0):
    """Send every (id, wire) question from several UDP sockets at once; resend
    the unanswered ones up to rounds times. {id: response message}."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(sockets)]
    try:
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        answers = {}
        pending = dict(questions)
        for _ in range(rounds):
            for i, (qid, wire) in enumerate(pending.items()):
                try:
                    socks[i % sockets].sendto(wire, ("127.0.0.1", port))
                except BlockingIOError:
                    pass
            end = time.monotonic() + wait
            while pending and time.monotonic() < end:
                ready, _, _ = select.select(socks, [], [], 0.2)
                for s in ready:
                    while True:
                        try:
                            data = s.recv(4096)
                        except BlockingIOError:
                            break
                        m = dns.message.from_wire(data)
                        if m.id in pending:
                            answers[m.id] = m
                            del pending[m.id]
            if not pending:
                break
        return answers
    finally:
        for s in socks:
            s.close()


def test_identical_lookups_are_merged(stack):
    ip = "192.0.2.60"
    names = ("c1", "c2", "c3")
    s = stack([si(n, 2, {ip: {"txt": f"{n} lists it"}}) for n in names])
    harness.wait_all_ok(s)
    for n in names:
        s.standin.set(f"{n}.bl.invalid", delay_ms=300)
    ids = random.sample(range(1, 65536), 1000)
    qname = s.ip(ip)
    questions = {qid: dc.make_query(qname, "A", qid=qid).to_wire() for qid in ids}
    answers = blast(s.port, questions)
    assert len(answers) == 1000, f"{1000 - len(answers)} questions unanswered"
    assert all(dc.a_set(m) == {"127.0.0.2"} for m in answers.values())
    for n in names:
        assert s.standin.received(s.upstream_name(n, ip)) == 1, n


def test_ttl_is_the_smallest_clamped(stack):
    ip = "192.0.2.70"
    # Weights 2: the verdict needs every list, so every list's TTL is used.
    s = stack([source("short", 2, {ip: {}}, ttl=5, neg_ttl=5),
               source("long", 2, {ip: {}}, ttl=7200, neg_ttl=7200),
               source("mid", 2, {ip: {}}, ttl=300, neg_ttl=120)],
              cache={"min_ttl": "30s", "max_ttl": "10m"})
    assert dc.answer_ttls(s.qip(ip, view="short")) == [30]
    assert dc.answer_ttls(s.qip(ip, view="long")) == [600]
    ttl = dc.answer_ttls(s.qip(ip, view="mid"))[0]
    assert 295 <= ttl <= 300
    assert dc.a_set(s.qip(ip, view="score")) == {"127.0.1.6"}
    assert dc.answer_ttls(s.qip(ip)) == [30]
    assert dc.answer_ttls(s.qip(ip, view="score")) == [30]


def test_negative_answers_carry_the_negative_ttl_in_the_soa(stack):
    clean = "192.0.2.73"
    # Weights 5: not decided until every list said no, so every TTL is used.
    s = stack([source("short", 5, {}, ttl=5, neg_ttl=5),
               source("long", 5, {}, ttl=7200, neg_ttl=7200),
               source("mid", 5, {}, ttl=300, neg_ttl=120)],
              cache={"min_ttl": "30s", "max_ttl": "10m"})

    def neg(view=None):
        r = s.qip(clean, view=view)
        assert r.rcode() == dns.rcode.NXDOMAIN, r.to_text()
        rrset, rd = dc.soa(r)
        assert rrset is not None, r.to_text()
        assert rrset.ttl == rd.minimum, r.to_text()
        return rd.minimum

    assert neg("short") == 30
    assert neg("long") == 600
    assert 115 <= neg("mid") <= 120
    assert neg() == 30
    assert neg("score") == 30


def test_apex_negative_soa_minimum_matches_its_ttl(stack):
    s = stack([source("alpha", 1, {})])
    for rel, rdtype in (("nosuchname", "A"), ("", "TXT"), ("score", "A")):
        rrset, rd = dc.soa(s.q(rel, rdtype))
        assert rrset is not None and rrset.ttl == rd.minimum


def test_serve_stale_when_the_list_fails(stack):
    ip = "192.0.2.80"
    s = stack([si("flaky", 5, {ip: {"txt": "flaky lists it"}}, ttl=1, neg_ttl=1, timeout="1s"),
               source("other", 1, {}, ttl=1, neg_ttl=1)],
              cache={"min_ttl": "1s", "max_ttl": "1s", "error_ttl": "1s", "stale_ttl": "1h"})
    harness.wait_all_ok(s)
    name = s.upstream_name("flaky", ip)
    assert dc.a_set(s.qip(ip)) == {"127.0.0.2"}
    assert "stale" not in dc.txt_text(s.qip(ip, "TXT"))
    assert s.standin.received(name) == 1
    time.sleep(2.5)   # let the 1 s entry expire (no timing is asserted)
    s.standin.set("flaky.bl.invalid", mode="servfail")
    r = s.qip(ip, timeout=5)
    assert dc.a_set(r) == {"127.0.0.2"}, r.to_text()
    line = dc.txt_text(s.qip(ip, "TXT", timeout=5))
    assert "stale" in line and "flaky" in line, line
    # The expired entry was refreshed (and that failed): the list was asked.
    assert harness.wait_until(lambda: s.standin.received(name) >= 2, 5)


def test_expired_entry_is_fetched_again(stack):
    ip = "192.0.2.81"
    s = stack([si("st", 5, {ip: {}}, ttl=1, neg_ttl=1)],
              cache={"min_ttl": "1s", "max_ttl": "1s"})
    name = s.upstream_name("st", ip)
    assert dc.a_set(s.qip(ip)) == {"127.0.0.2"}
    assert dc.a_set(s.qip(ip)) == {"127.0.0.2"}
    assert s.standin.received(name) == 1
    time.sleep(2.5)
    s.standin.command(cmd="remove", zone="st.bl.invalid", keys=[ip])
    assert harness.wait_until(lambda: s.qip(ip).rcode() == dns.rcode.NXDOMAIN, 5)
    assert s.standin.received(name) >= 2


def test_per_source_passes_every_a_and_txt_record(stack):
    ip = "192.0.2.90"
    s = stack([si("multi", 1, {ip: {"a": ["127.0.0.2", "127.0.0.10", "127.0.0.11"],
                                    "txt": ["first reason", "second reason"]}})])
    r = s.qip(ip, view="multi")
    assert dc.a_set(r) == {"127.0.0.2", "127.0.0.10", "127.0.0.11"}
    assert sorted(dc.txt_strings(s.qip(ip, "TXT", view="multi"))) == [
        ("first reason",), ("second reason",)]


def test_questions_go_upstream_in_mixed_case(stack):
    """DNS 0x20: the names rblmuxd sends carry randomised letter case."""
    s = stack([si("cased", 1, {})])
    for i in range(1, 9):
        s.qip(f"192.0.2.{100 + i}", view="cased")
    sent = [n for n, t in s.standin.log(500) if n.lower().startswith(tuple(
        f"{100 + i}.2.0.192." for i in range(1, 9)))]
    assert len(sent) >= 8
    assert any(n != n.lower() for n in sent), sent


def test_no_stale_answer_beyond_stale_ttl(stack):
    ip = "192.0.2.82"
    s = stack([si("flaky", 5, {ip: {}}, ttl=1, neg_ttl=1, timeout="1s"),
               source("other", 1, {ip: {}}, ttl=1, neg_ttl=1)],
              cache={"min_ttl": "1s", "max_ttl": "1s", "error_ttl": "1s", "stale_ttl": "1s"})
    harness.wait_all_ok(s)
    assert dc.a_set(s.qip(ip)) == {"127.0.0.2"}
    time.sleep(3.5)   # past the TTL and the stale window (no timing is asserted)
    s.standin.set("flaky.bl.invalid", mode="servfail")
    # Without the stale entry only other's 1 counts: below the threshold.
    r = s.qip(ip, timeout=5)
    assert r.rcode() == dns.rcode.NXDOMAIN, r.to_text()
    assert dc.a_set(s.qip(ip, view="score", timeout=5)) == {"127.0.1.1"}
