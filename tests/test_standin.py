"""The harness itself: the stand-in server and the rbldnsd helper.

These run without rblmuxd: they make sure the tests' lists say what the
daemon tests assume they say.
"""

import socket

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest

import dnsclient as dc
import harness
from standin import big_txt_strings

ZONE = "bl.test.invalid"

SPEC = {"zones": {
    ZONE: {"ttl": 120, "neg_ttl": 45, "entries": {
        "192.0.2.1": {"a": ["127.0.0.2", "127.0.0.10"], "txt": "listed one"},
        "192.0.2.2": {"a": ["127.0.0.3"], "txt": ["first", "second"]},
        "2001:db8::1": ["127.0.0.4"],
        "127.0.0.2": {"a": ["127.0.0.2"], "txt": "test point"}}},
    "dbl.test.invalid": {"type": "domain", "entries": {
        "spam.example": {"a": ["127.0.1.2"], "txt": "spam domain"},
        "2.0.0.127": ["127.0.0.2"]}},
    "example.": {"ttl": 60, "records": [
        {"name": "1.2.0.192.in-addr.arpa.", "type": "PTR", "rdata": ["mail.example."]},
        {"name": "mail", "type": "A", "rdata": ["192.0.2.1"]},
        {"name": "www", "type": "CNAME", "rdata": ["mail.example."]},
        {"name": "loop1", "type": "CNAME", "rdata": ["loop2.example."]},
        {"name": "loop2", "type": "CNAME", "rdata": ["loop1.example."]},
        {"name": "spf", "type": "TXT", "rdata": [["v=spf1 ", "ip4:192.0.2.0/24 -all"]]},
        {"name": "slow", "type": "TIMEOUT"},
        {"name": "halfslow", "type": "TXT", "timeout": True},
        {"name": "halfslow", "type": "A", "rdata": ["192.0.2.9"]},
        {"name": "a.b.deep", "type": "A", "rdata": ["192.0.2.8"]}]},
    "in-addr.arpa.": {"records": [
        {"name": "1.2.0.192.in-addr.arpa.", "type": "PTR", "rdata": ["mail.example."]}]},
}}


@pytest.fixture
def si(standin):
    return standin(SPEC)


def ask(si, name, rdtype="A", **kw):
    kw.setdefault("timeout", 2)
    return dc.query(name, rdtype, port=si.port, host=si.address, **kw)


def test_listed_entry_answers_every_code_and_txt(si):
    r = ask(si, f"1.2.0.192.{ZONE}")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    assert dc.a_set(r) == {"127.0.0.2", "127.0.0.10"}
    assert dc.answer_ttls(r) == [120]
    assert dc.txt_strings(ask(si, f"1.2.0.192.{ZONE}", "TXT")) == [("listed one",)]
    assert sorted(dc.txt_strings(ask(si, f"2.2.0.192.{ZONE}", "TXT"))) == [("first",), ("second",)]


def test_ipv6_entry_in_nibble_form(si):
    r = ask(si, f"{dc.rev('2001:db8::1')}.{ZONE}")
    assert dc.a_set(r) == {"127.0.0.4"}


def test_unlisted_is_nxdomain_with_soa_minimum(si):
    r = ask(si, f"3.2.0.192.{ZONE}")
    assert r.rcode() == dns.rcode.NXDOMAIN
    rrset, rd = dc.soa(r)
    assert rrset is not None and rd.minimum == 45 and rrset.ttl == 45


def test_other_type_on_listed_name_is_nodata(si):
    r = ask(si, f"1.2.0.192.{ZONE}", "AAAA")
    assert dc.is_nodata(r) and dc.soa(r)[0] is not None


def test_apex_soa_and_empty_non_terminal(si):
    assert dc.rrsets(ask(si, ZONE, "SOA"), "SOA")
    r = ask(si, f"2.0.192.{ZONE}")
    assert dc.is_nodata(r)


def test_outside_every_zone_is_refused(si):
    assert ask(si, "example.org.").rcode() == dns.rcode.REFUSED


def test_domain_zone_keys_are_names(si):
    assert dc.a_set(ask(si, "spam.example.dbl.test.invalid")) == {"127.0.1.2"}
    assert dc.a_set(ask(si, "2.0.0.127.dbl.test.invalid")) == {"127.0.0.2"}


def test_question_bytes_echoed_exactly(si):
    q = dc.make_query("1.2.0.192.Bl.TeSt.InVaLiD", "A")
    wire = q.to_wire()
    resp = dc.raw_udp(wire, si.port)
    qlen = len(wire) - 12
    assert resp[12:12 + qlen] == wire[12:]


def test_counts_are_case_insensitive_and_reset(si):
    si.reset()
    ask(si, "1.2.0.192.BL.test.invalid")
    ask(si, "1.2.0.192.bl.TEST.invalid")
    assert si.received(f"1.2.0.192.{ZONE}") == 2
    assert si.answered(f"1.2.0.192.{ZONE}") == 2
    assert [n for n, _ in si.log(2)] == ["1.2.0.192.BL.test.invalid.", "1.2.0.192.bl.TEST.invalid."]
    si.reset()
    assert si.received(f"1.2.0.192.{ZONE}") == 0


def test_drop_mode_counts_but_never_answers(si):
    si.set(ZONE, mode="drop")
    with pytest.raises(dns.exception.Timeout):
        ask(si, f"1.2.0.192.{ZONE}", timeout=0.5)
    assert si.received(f"1.2.0.192.{ZONE}") == 1
    assert si.answered(f"1.2.0.192.{ZONE}") == 0
    si.set(ZONE, mode="normal")
    assert dc.a_set(ask(si, f"1.2.0.192.{ZONE}"))


def test_delay_mode_is_outstanding_until_answered(si):
    si.set(ZONE, delay_ms=1500)
    name = f"1.2.0.192.{ZONE}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(dc.make_query(name).to_wire(), ("127.0.0.1", si.port))
        assert harness.wait_until(lambda: si.received(name) == 1, 3)
        table, totals = si.counts()
        assert table[(name + ".", "A")] == (1, 0)
        assert totals["outstanding"] == 1
        reply = dns.message.from_wire(s.recvfrom(4096)[0])
    assert dc.a_set(reply) == {"127.0.0.2", "127.0.0.10"}
    table, totals = si.counts()
    assert table[(name + ".", "A")] == (1, 1)
    assert totals["outstanding"] == 0 and totals["max_outstanding"] == 1


@pytest.mark.parametrize("mode,rcode", [("servfail", dns.rcode.SERVFAIL),
                                        ("refused", dns.rcode.REFUSED)])
def test_error_modes(si, mode, rcode):
    si.set(ZONE, mode=mode)
    assert ask(si, f"1.2.0.192.{ZONE}").rcode() == rcode


def test_wildcard_mode_lists_the_world(si):
    si.set(ZONE, mode="wildcard")
    assert dc.a_set(ask(si, f"1.0.0.127.{ZONE}")) == {"127.0.0.2"}
    assert dc.a_set(ask(si, f"9.9.9.9.{ZONE}")) == {"127.0.0.2"}
    assert dc.rrsets(ask(si, ZONE, "SOA"), "SOA")


def test_wrongcase_mode_swaps_the_question_case(si):
    si.set(ZONE, mode="wrongcase")
    q = dc.make_query("1.2.0.192.Bl.TeSt.InVaLiD", "A")
    resp = dns.message.from_wire(dc.raw_udp(q.to_wire(), si.port))
    assert resp.question[0].name.to_text() == "1.2.0.192.bL.tEsT.iNvAlId."
    assert dc.a_set(resp) == {"127.0.0.2", "127.0.0.10"}


def test_garbage_mode_keeps_the_id_and_cannot_be_parsed(si):
    si.set(ZONE, mode="garbage")
    q = dc.make_query(f"1.2.0.192.{ZONE}", "A", qid=0x1234)
    resp = dc.raw_udp(q.to_wire(), si.port)
    assert resp[:2] == b"\x12\x34"
    with pytest.raises(Exception):
        dns.message.from_wire(resp)


def test_truncate_mode_sets_tc_over_udp_only(si):
    si.set(ZONE, mode="truncate")
    r = ask(si, f"1.2.0.192.{ZONE}")
    assert r.flags & dns.flags.TC and not r.answer
    r = ask(si, f"1.2.0.192.{ZONE}", tcp=True)
    assert not r.flags & dns.flags.TC and dc.a_set(r)


def test_bigtxt_truncates_without_edns_and_fits_tcp_or_edns(si):
    si.set(ZONE, mode="bigtxt", bigtxt_size=1000)
    name = f"1.2.0.192.{ZONE}"
    r = ask(si, name, "TXT")
    assert r.flags & dns.flags.TC and not r.answer
    want = [tuple(big_txt_strings(1000))]
    assert dc.txt_strings(ask(si, name, "TXT", tcp=True)) == want
    r = ask(si, name, "TXT", edns=1232)
    assert not r.flags & dns.flags.TC and dc.txt_strings(r) == want


def test_tcp_pipelining(si):
    names = [f"1.2.0.192.{ZONE}", f"2.2.0.192.{ZONE}", f"3.2.0.192.{ZONE}"]
    with dc.tcp_connect(si.port) as s:
        for i, n in enumerate(names):
            dc.tcp_send(s, dc.make_query(n, qid=100 + i).to_wire())
        got = {}
        for _ in names:
            m = dns.message.from_wire(dc.tcp_recv(s))
            got[m.id] = m
    assert set(got) == {100, 101, 102}
    assert got[102].rcode() == dns.rcode.NXDOMAIN


def test_generic_records_cname_chase_and_timeouts(si):
    assert {rd.target.to_text() for r in dc.rrsets(
        ask(si, "1.2.0.192.in-addr.arpa.", "PTR"), "PTR") for rd in r} == {"mail.example."}
    r = ask(si, "www.example.")
    assert dc.rrsets(r, "CNAME") and dc.a_set(r) == {"192.0.2.1"}
    assert ask(si, "loop1.example.").rcode() == dns.rcode.SERVFAIL
    assert dc.txt_strings(ask(si, "spf.example.", "TXT")) == [("v=spf1 ", "ip4:192.0.2.0/24 -all")]
    with pytest.raises(dns.exception.Timeout):
        ask(si, "slow.example.", "MX", timeout=0.4)
    with pytest.raises(dns.exception.Timeout):
        ask(si, "halfslow.example.", "TXT", timeout=0.4)
    assert dc.a_set(ask(si, "halfslow.example.")) == {"192.0.2.9"}
    assert dc.is_nodata(ask(si, "deep.example."))
    assert ask(si, "nothing.example.").rcode() == dns.rcode.NXDOMAIN


def test_control_updates_entries_and_rejects_nonsense(si):
    si.entries(ZONE, {"192.0.2.77": {"a": ["127.0.0.5"], "txt": "new"}})
    assert dc.a_set(ask(si, f"77.2.0.192.{ZONE}")) == {"127.0.0.5"}
    si.command(cmd="remove", zone=ZONE, keys=["192.0.2.77"])
    assert ask(si, f"77.2.0.192.{ZONE}").rcode() == dns.rcode.NXDOMAIN
    with pytest.raises(RuntimeError):
        si.command(cmd="frobnicate")
    with pytest.raises(RuntimeError):
        si.set(ZONE, mode="nonsense")


def test_malformed_queries_get_formerr_or_nothing(si):
    assert dc.raw_udp(b"\x01\x02\x03", si.port, timeout=0.4) is None
    resp = dc.raw_udp(b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff", si.port)
    assert resp[:2] == b"\xab\xcd" and resp[3] & 0x0f == dns.rcode.FORMERR
    assert dc.a_set(ask(si, f"1.2.0.192.{ZONE}"))


def test_listens_on_ipv6(standin):
    s = standin(SPEC, address="::1")
    assert s.server == f"[::1]:{s.port}"
    r = dc.query(f"1.2.0.192.{ZONE}", port=s.port, host="::1", timeout=2)
    assert dc.a_set(r) == {"127.0.0.2", "127.0.0.10"}


def test_rbldnsd_helper_serves_lists_with_test_points(rbldnsd):
    lists = [harness.source("alpha", 3, {"192.0.2.1": {"a": ["127.0.0.3"], "txt": "costs $5"},
                                         "2001:db8::1": {"txt": "v6"}}, ttl=200, neg_ttl=30),
             harness.source("dom", 5, {"spam.example": {"txt": "bad domain"}}, type="domain")]
    r = rbldnsd(lists)
    port = r.port
    a = dc.query("1.2.0.192.alpha.bl.invalid", port=port, timeout=2)
    assert dc.a_set(a) == {"127.0.0.3"} and dc.answer_ttls(a) == [200]
    assert dc.txt_strings(dc.query("1.2.0.192.alpha.bl.invalid", "TXT", port=port,
                                   timeout=2)) == [("costs $5",)]
    assert dc.a_set(dc.query(f"{dc.rev('2001:db8::1')}.alpha.bl.invalid", port=port,
                             timeout=2)) == {"127.0.0.2"}
    assert dc.a_set(dc.query("2.0.0.127.alpha.bl.invalid", port=port, timeout=2)) == {"127.0.0.2"}
    assert dc.a_set(dc.query(f"{dc.rev('::ffff:7f00:2')}.alpha.bl.invalid", port=port,
                             timeout=2)) == {"127.0.0.2"}
    neg = dc.query("1.0.0.127.alpha.bl.invalid", port=port, timeout=2)
    assert neg.rcode() == dns.rcode.NXDOMAIN and dc.soa(neg)[1].minimum == 30
    assert dc.a_set(dc.query("spam.example.dom.bl.invalid", port=port, timeout=2)) == {"127.0.0.2"}
    assert dc.a_set(dc.query("test.dom.bl.invalid", port=port, timeout=2)) == {"127.0.0.2"}
    assert dc.query("invalid.dom.bl.invalid", port=port, timeout=2).rcode() == dns.rcode.NXDOMAIN
    case = dc.query("1.2.0.192.AlPhA.bl.invalid", port=port, timeout=2)
    assert case.question[0].name.to_text() == "1.2.0.192.AlPhA.bl.invalid."
