"""SPEC §2: every query name, against five well-behaved lists on rbldnsd.

Scores (threshold 5): 192.0.2.1 = 8 (alpha 3, beta 3, gamma code .3 = 2),
192.0.2.2 = 6, 192.0.2.6 = 5 (exactly the threshold), 192.0.2.4 = 3,
192.0.2.5 = 1 (gamma code .4 = 1 by range), 192.0.2.3 = 0,
198.51.100.7 = -5 (allowlist), 203.0.113.5 = -2, 2001:db8::1 = 6.
"""

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

import dnsclient as dc
import harness
from harness import APEX

SOURCES = ("alpha", "beta", "gamma", "white", "dbl")


@pytest.fixture(scope="module")
def std(module_stack):
    s = module_stack(harness.standard_sources(), spf={"enabled": True})
    harness.wait_all_ok(s)
    return s


def assert_negative(r, rcode):
    """rcode with no answer, AA, and the apex SOA in authority (RFC 2308)."""
    assert dc.rcode_text(r) == dns.rcode.to_text(rcode), r.to_text()
    assert not r.answer, r.to_text()
    rrset, rd = dc.soa(r)
    assert rrset is not None, f"no SOA in authority:\n{r.to_text()}"
    assert rrset.name.to_text().lower() == APEX + "."
    assert r.flags & dns.flags.AA


@pytest.mark.parametrize("ip,listed", [
    ("192.0.2.1", True), ("192.0.2.2", True), ("192.0.2.6", True),
    ("192.0.2.4", False), ("192.0.2.5", False), ("192.0.2.3", False),
    ("198.51.100.7", False), ("203.0.113.5", False), ("2001:db8::1", True)])
def test_combined_verdict(std, ip, listed):
    r = std.qip(ip)
    if listed:
        assert r.rcode() == dns.rcode.NOERROR, r.to_text()
        assert dc.a_set(r) == {"127.0.0.2"}
        assert r.flags & dns.flags.AA
    else:
        assert_negative(r, dns.rcode.NXDOMAIN)


def test_combined_txt_names_hits_with_codes(std):
    r = std.qip("192.0.2.1", "TXT")
    assert r.rcode() == dns.rcode.NOERROR
    strings = dc.txt_strings(r)
    assert len(strings) == 1 and len(strings[0]) == 1, strings
    line = strings[0][0]
    assert len(line.encode()) < 255
    for part in ("listed", "alpha", "beta", "gamma", "127.0.0.2", "127.0.0.3", "8"):
        assert part in line, line
    assert "white" not in line and "failed" not in line


def test_combined_txt_only_when_listed(std):
    assert_negative(std.qip("192.0.2.4", "TXT"), dns.rcode.NXDOMAIN)
    assert_negative(std.qip("192.0.2.3", "TXT"), dns.rcode.NXDOMAIN)


@pytest.mark.parametrize("ip,code", [
    ("192.0.2.1", "127.0.1.8"), ("192.0.2.2", "127.0.1.6"), ("192.0.2.6", "127.0.1.5"),
    ("192.0.2.4", "127.0.1.3"), ("192.0.2.5", "127.0.1.1"), ("192.0.2.3", None),
    ("198.51.100.7", "127.0.2.5"), ("203.0.113.5", "127.0.2.2"), ("2001:db8::1", "127.0.1.6")])
def test_score_view(std, ip, code):
    r = std.qip(ip, view="score")
    if code is None:
        assert_negative(r, dns.rcode.NXDOMAIN)
    else:
        assert r.rcode() == dns.rcode.NOERROR, r.to_text()
        assert dc.a_set(r) == {code}


def test_score_view_txt_for_allowlisted(std):
    line = dc.txt_text(std.qip("203.0.113.5", "TXT", view="score"))
    assert "alpha" in line and "white" in line, line


@pytest.mark.parametrize("ip,src,code,txt", [
    ("192.0.2.1", "gamma", "127.0.0.3", "gamma lists 192.0.2.1"),
    ("192.0.2.5", "gamma", "127.0.0.4", "gamma lists 192.0.2.5"),
    ("192.0.2.2", "alpha", "127.0.0.2", "alpha lists 192.0.2.2"),
    ("198.51.100.7", "white", "127.0.0.2", "white lists 198.51.100.7"),
    ("2001:db8::1", "beta", "127.0.0.2", "beta lists 2001:db8::1")])
def test_per_source_pass_through(std, ip, src, code, txt):
    r = std.qip(ip, view=src)
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert dc.a_set(r) == {code}
    assert dc.txt_strings(std.qip(ip, "TXT", view=src)) == [(txt,)]


def test_per_source_not_listed(std):
    assert_negative(std.qip("192.0.2.4", view="gamma"), dns.rcode.NXDOMAIN)
    assert_negative(std.qip("192.0.2.4", "TXT", view="gamma"), dns.rcode.NXDOMAIN)


@pytest.mark.parametrize("addr", ["127.0.0.2", "::ffff:7f00:2"])
def test_test_point_listed(std, addr):
    r = std.qip(addr)
    assert dc.a_set(r) == {"127.0.0.2"}
    assert "test point" in dc.txt_text(std.qip(addr, "TXT"))


@pytest.mark.parametrize("addr", ["127.0.0.1", "::ffff:7f00:1"])
def test_test_point_not_listed(std, addr):
    assert_negative(std.qip(addr), dns.rcode.NXDOMAIN)


def test_apex_soa(std):
    r = std.q("", "SOA")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    soas = dc.rrsets(r, "SOA")
    assert len(soas) == 1 and len(soas[0]) == 1
    rd = soas[0][0]
    assert rd.mname.to_text() == "localhost."
    assert rd.rname.to_text().lower() == f"hostmaster.{APEX}."


def test_apex_ns(std):
    r = std.q("", "NS")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert {rd.target.to_text() for rr in dc.rrsets(r, "NS") for rd in rr} == {"localhost."}


@pytest.mark.parametrize("rdtype", ["A", "TXT", "AAAA", "MX"])
def test_apex_other_types_nodata(std, rdtype):
    assert_negative(std.q("", rdtype), dns.rcode.NOERROR)


def test_health_one_string_per_source(std):
    r = std.q("health", "TXT")
    assert r.rcode() == dns.rcode.NOERROR
    strings = [s for rr in dc.txt_strings(r) for s in rr]
    names = [s.split(" ", 1)[0] for s in strings]
    assert sorted(names) == sorted(SOURCES), strings
    for s in strings:
        assert s.split()[1] in ("ok", "degraded", "down", "disabled"), s
    assert all(s.split()[1] == "ok" for s in strings), strings


def test_health_a_is_nodata(std):
    assert_negative(std.q("health", "A"), dns.rcode.NOERROR)


def test_rhs_combined_domain_verdict(std):
    r = std.q("spam.example.rhs")
    assert dc.a_set(r) == {"127.0.0.2"}
    line = dc.txt_text(std.q("spam.example.rhs", "TXT"))
    assert "dbl" in line and "listed" in line, line
    assert_negative(std.q("clean.example.rhs"), dns.rcode.NXDOMAIN)


def test_domain_source_pass_through(std):
    assert dc.a_set(std.q("spam.example.dbl")) == {"127.0.0.2"}
    assert dc.txt_strings(std.q("spam.example.dbl", "TXT")) == [("dbl lists spam.example",)]
    assert_negative(std.q("clean.example.dbl"), dns.rcode.NXDOMAIN)


@pytest.mark.parametrize("rel", ["score", "rhs", "spf", "alpha", "3.2.1", "2.1",
                                 "3.2.1.score", "3.2.1.alpha", "8.b.d.0.1.0.0.2"])
def test_empty_non_terminals_are_nodata(std, rel):
    assert_negative(std.q(rel), dns.rcode.NOERROR)


@pytest.mark.parametrize("rel", ["foo", "12.4.3.2.1", "256.2.0.192", "x.2.0.192",
                                 "1.2.0.192.nosuch", "1.2.0.192.health", "x.health",
                                 "0." + dc.rev("2001:db8::1")])
def test_unknown_names_nxdomain(std, rel):
    assert_negative(std.q(rel), dns.rcode.NXDOMAIN)


@pytest.mark.parametrize("name", ["example.com.", "internal.", "xrblmux.internal.",
                                  "1.2.0.192.rblmux.internal.example."])
def test_outside_apex_refused(std, name):
    r = dc.query(name, "A", port=std.port)
    assert r.rcode() == dns.rcode.REFUSED, r.to_text()
    assert not r.answer


def test_case_is_echoed(std):
    name = "1.2.0.192.RbLmUx.InTeRnAl."
    r = dc.query(name, "A", port=std.port)
    assert r.question[0].name.to_text() == name
    assert dc.a_set(r) == {"127.0.0.2"}
    for rr in r.answer:
        assert rr.name.to_text().lower() == name.lower()
    r = dc.query("1.2.0.192.GaMmA.rblmux.internal.", "A", port=std.port)
    assert r.question[0].name.to_text() == "1.2.0.192.GaMmA.rblmux.internal."
    assert dc.a_set(r) == {"127.0.0.3"}


def test_any_is_the_a_set_only(std):
    r = std.qip("192.0.2.1", "ANY")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.answer and all(rr.rdtype == dns.rdatatype.A for rr in r.answer), r.to_text()
    assert dc.a_set(r) == {"127.0.0.2"}


def test_other_qtypes(std):
    assert_negative(std.qip("192.0.2.1", "AAAA"), dns.rcode.NOERROR)
    assert_negative(std.qip("192.0.2.1", "MX"), dns.rcode.NOERROR)
    assert_negative(std.qip("192.0.2.3", "AAAA"), dns.rcode.NXDOMAIN)
    assert_negative(std.qip("192.0.2.2", "AAAA", view="alpha"), dns.rcode.NOERROR)


def test_same_answers_over_tcp(std):
    r = std.qip("192.0.2.1", tcp=True)
    assert dc.a_set(r) == {"127.0.0.2"}
    assert_negative(std.qip("192.0.2.3", tcp=True), dns.rcode.NXDOMAIN)
