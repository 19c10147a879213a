"""SPEC §2 `<ip>.ptr.<apex>`: reverse-DNS flags, through rblmuxd.

The stand-in is the only upstream: it serves in-addr.arpa and ip6.arpa (PTR,
an RFC 2317 CNAME, questions it never answers) and the forward zones the PTR
names live in (A, AAAA, questions it never answers). Flags are SPEC's:
1 no PTR, 2 not forward-confirmed, 4 dynamic-looking, 8 embeds the address,
16 generic but static; A 127.0.3.<bits>, NXDOMAIN when no flag is set.

Until rblmuxd routes the view (it answered SERVFAIL for every ptr name while
the view was not built), every test here skips, saying so.
"""

import dns.flags
import dns.rcode
import pytest

import dnsclient as dc
import harness
from harness import APEX, source

ERROR_TTL = 7
UPSTREAM_TIMEOUT = "800ms"
PTR_SETTINGS = {"enabled": True, "level": "moderate", "weight": 3,
                "weight_no_ptr": 2, "weight_no_fcrdns": 1}

NO_PTR, NO_FCRDNS, DYNAMIC, EMBEDS, STATIC = 1, 2, 4, 8, 16


def rev4(ip):
    return dc.rev(ip) + ".in-addr.arpa."


def rev6(ip):
    return dc.rev(ip) + ".ip6.arpa."


def ptr(owner, *names, ttl=3600):
    return {"name": owner, "type": "PTR", "ttl": ttl, "rdata": [n + "." for n in names]}


def addr(name, *ips, rdtype="A", ttl=600):
    return {"name": name + ".", "type": rdtype, "ttl": ttl, "rdata": list(ips)}


def never(name, rdtype):
    return {"name": name, "type": rdtype, "timeout": True}


# What the stand-in serves, case by case.
DYN = "host-31-6-170-11.dynamic.mm.pl"
MAILHOST = "smtp.nostrodominio.com"
MANY = [f"mx{i}.example.com" for i in range(1, 7)]

REVERSE = [
    # the SPEC's example: dynamic, embeds its address, forward-confirmed
    ptr(rev4("31.6.170.11"), DYN),
    # a mail host, forward-confirmed: no flag
    ptr(rev4("192.0.2.25"), MAILHOST),
    # 192.0.2.1: no PTR at all
    # a PTR whose name does not point back (FCrDNS fails)
    ptr(rev4("192.0.2.2"), "mail.example.com"),
    # two PTRs: only the dynamic one points back
    ptr(rev4("192.0.2.3"), "mail3.example.com", "host-192-0-2-3.dyn.example.net"),
    # RFC 2317: the PTR lives under a CNAME
    {"name": rev4("192.0.2.4"), "type": "CNAME", "ttl": 3600,
     "rdata": ["4.0-26.2.0.192.in-addr.arpa."]},
    ptr("4.0-26.2.0.192.in-addr.arpa.", "host-192-0-2-4.dyn.example.net"),
    # the PTR question is never answered
    never(rev4("192.0.2.5"), "PTR"),
    # the PTR answers, its name's A question is never answered
    ptr(rev4("192.0.2.6"), "host-192-0-2-6.dyn.example.net"),
    # a generic static name
    ptr(rev4("192.0.2.7"), "static-192-0-2-7.isp.example.net"),
    # for the cache test: FCrDNS fails
    ptr(rev4("192.0.2.8"), "mx8.example.com"),
    # more PTR names than rblmuxd checks
    ptr(rev4("192.0.2.9"), *MANY),
    # the address in the name, nothing else: dynamic at moderate only
    ptr(rev4("192.0.2.10"), "host-192-0-2-10.example.net"),
    # IPv6
    ptr(rev6("2001:db8::25"), "dyn-2001-db8-0-0-0-0-0-25.pool.example.net"),
]

FORWARD = {
    "mm.pl": [addr(DYN, "31.6.170.11")],
    "nostrodominio.com": [addr(MAILHOST, "192.0.2.25")],
    "example.com": [addr("mail.example.com", "198.51.100.1"),
                    addr("mail3.example.com", "198.51.100.3"),
                    addr("mx8.example.com", "198.51.100.8")]
                   + [addr(n, "198.51.100.9") for n in MANY],
    "example.net": [addr("host-192-0-2-3.dyn.example.net", "192.0.2.3"),
                    addr("host-192-0-2-4.dyn.example.net", "192.0.2.4", ttl=300),
                    never("host-192-0-2-6.dyn.example.net.", "A"),
                    addr("static-192-0-2-7.isp.example.net", "192.0.2.7"),
                    addr("host-192-0-2-10.example.net", "192.0.2.10"),
                    addr("dyn-2001-db8-0-0-0-0-0-25.pool.example.net", "2001:db8::25",
                         rdtype="AAAA")],
}


def zones():
    z = {"in-addr.arpa": {"ttl": 3600, "neg_ttl": 900, "records": [
             r for r in REVERSE if r["name"].endswith(".in-addr.arpa.")]},
         "ip6.arpa": {"ttl": 3600, "neg_ttl": 900, "records": [
             r for r in REVERSE if r["name"].endswith(".ip6.arpa.")]}}
    for origin, records in FORWARD.items():
        z[origin] = {"ttl": 600, "neg_ttl": 600, "records": records}
    return z


def list_source():
    """One ordinary list (the stand-in's), listing none of the addresses."""
    return source("alpha", 3, {"203.0.113.99": {"txt": "alpha lists it"}},
                  backend="standin")


def start(make, ptr=None, **kw):
    return make([list_source()], extra_zones=zones(),
                ptr=ptr or PTR_SETTINGS,
                upstream={"timeout": UPSTREAM_TIMEOUT, "deadline": "3s"},
                cache={"min_ttl": "1s", "max_ttl": "1h", "error_ttl": f"{ERROR_TTL}s"},
                **kw)


def require_view(s):
    """Skip unless rblmuxd answers the ptr view (a case that cannot fail)."""
    r = s.qip("31.6.170.11", view="ptr", timeout=5)
    if r.rcode() == dns.rcode.SERVFAIL:
        pytest.skip("rblmuxd does not route <ip>.ptr.<apex> yet (SERVFAIL for a PTR "
                    "the stand-in serves): the ptr view is not wired")


@pytest.fixture(scope="module")
def ptrs(module_stack):
    s = start(module_stack)
    require_view(s)
    return s


def ptr_a(s, ip, **kw):
    return s.qip(ip, view="ptr", timeout=kw.pop("timeout", 5), **kw)


def flags_of(r):
    """The flag bits of a 127.0.3.<bits> answer."""
    addrs = dc.a_set(r)
    assert len(addrs) == 1, r.to_text()
    (a,) = addrs
    assert a.startswith("127.0.3."), r.to_text()
    bits = int(a.rsplit(".", 1)[1])
    assert 1 <= bits <= 31, r.to_text()
    return bits


def assert_flags(s, ip, bits):
    r = ptr_a(s, ip)
    assert r.rcode() == dns.rcode.NOERROR, r.to_text()
    assert r.flags & dns.flags.AA
    assert flags_of(r) == bits, r.to_text()
    return r


def ptr_txt(s, ip):
    r = s.qip(ip, "TXT", view="ptr", timeout=5)
    assert r.rcode() == dns.rcode.NOERROR, r.to_text()
    strings = dc.txt_strings(r)
    assert len(strings) == 1, strings
    text = "".join(strings[0])
    assert 0 < len(text.encode()) < 255
    return text


def assert_nxdomain(r):
    assert r.rcode() == dns.rcode.NXDOMAIN, r.to_text()
    assert not r.answer
    rrset, _ = dc.soa(r)
    assert rrset is not None and rrset.name.to_text().lower() == APEX + "."


# -- flags -----------------------------------------------------------------------

def test_spec_example_dynamic_confirmed(ptrs):
    r = assert_flags(ptrs, "31.6.170.11", DYNAMIC | EMBEDS)
    # The smallest TTL of what was used: the A record's 600 s.
    assert 0 < min(dc.answer_ttls(r)) <= 600
    assert ptr_txt(ptrs, "31.6.170.11") == (
        'dynamic: host-31-6-170-11.dynamic.mm.pl (embeds address; keyword "dynamic")')
    # Forward-confirmed: the A question was asked.
    assert ptrs.standin.received(DYN, "A") >= 1


def test_confirmed_mail_host_has_no_flag(ptrs):
    assert_nxdomain(ptr_a(ptrs, "192.0.2.25"))
    assert_nxdomain(ptrs.qip("192.0.2.25", "TXT", view="ptr", timeout=5))
    assert ptrs.standin.received(MAILHOST, "A") >= 1


def test_no_ptr(ptrs):
    assert_flags(ptrs, "192.0.2.1", NO_PTR)
    assert "no PTR" in ptr_txt(ptrs, "192.0.2.1")


def test_ptr_without_matching_a_fails_fcrdns(ptrs):
    assert_flags(ptrs, "192.0.2.2", NO_FCRDNS)
    text = ptr_txt(ptrs, "192.0.2.2")
    assert "mail.example.com" in text and "not forward-confirmed" in text, text


def test_several_ptrs_all_checked_confirmed_one_counts(ptrs):
    assert_flags(ptrs, "192.0.2.3", DYNAMIC | EMBEDS)
    text = ptr_txt(ptrs, "192.0.2.3")
    assert "host-192-0-2-3.dyn.example.net" in text and "mail3.example.com" in text, text
    assert ptrs.standin.received("mail3.example.com", "A") >= 1
    assert ptrs.standin.received("host-192-0-2-3.dyn.example.net", "A") >= 1


def test_cname_ptr(ptrs):
    r = assert_flags(ptrs, "192.0.2.4", DYNAMIC | EMBEDS)
    assert 0 < min(dc.answer_ttls(r)) <= 300
    assert "host-192-0-2-4.dyn.example.net" in ptr_txt(ptrs, "192.0.2.4")


def test_generic_static(ptrs):
    assert_flags(ptrs, "192.0.2.7", STATIC | EMBEDS)
    assert "static" in ptr_txt(ptrs, "192.0.2.7")


def test_ipv6(ptrs):
    assert_flags(ptrs, "2001:db8::25", DYNAMIC | EMBEDS)
    assert ptrs.standin.received("dyn-2001-db8-0-0-0-0-0-25.pool.example.net", "AAAA") >= 1


def test_names_checked_are_bounded(ptrs):
    assert_flags(ptrs, "192.0.2.9", NO_FCRDNS)
    asked = sum(1 for n in MANY if ptrs.standin.received(n, "A") >= 1)
    assert 1 <= asked < len(MANY), asked
    assert "not checked" in ptr_txt(ptrs, "192.0.2.9")


def test_other_qtypes_nodata(ptrs):
    r = ptrs.qip("31.6.170.11", "AAAA", view="ptr", timeout=5)
    assert dc.is_nodata(r), r.to_text()


# -- failures ----------------------------------------------------------------------

def short_negative_or_servfail(r):
    """A failure answer: SERVFAIL, or a negative answer with a short TTL."""
    if r.rcode() == dns.rcode.SERVFAIL:
        return True
    assert r.rcode() == dns.rcode.NXDOMAIN, r.to_text()
    rrset, rd = dc.soa(r)
    assert rrset is not None
    assert min(rrset.ttl, rd.minimum) <= ERROR_TTL, r.to_text()
    return True


def test_ptr_timeout_is_never_no_ptr(ptrs):
    ip = "192.0.2.5"
    r = ptr_a(ptrs, ip)
    assert ptrs.standin.received(rev4(ip), "PTR") >= 1
    if r.rcode() == dns.rcode.NOERROR:
        bits = flags_of(r)
        assert not bits & NO_PTR, r.to_text()
        assert min(dc.answer_ttls(r)) <= ERROR_TTL
    else:
        short_negative_or_servfail(r)


def test_forward_timeout_answers_what_is_known(ptrs):
    ip = "192.0.2.6"
    r = ptr_a(ptrs, ip)
    assert ptrs.standin.received("host-192-0-2-6.dyn.example.net", "A") >= 1
    # The name is known (dynamic, embeds the address); whether it points
    # back is not: no flag 2, and a short TTL.
    assert r.rcode() == dns.rcode.NOERROR, r.to_text()
    assert flags_of(r) == DYNAMIC | EMBEDS
    assert min(dc.answer_ttls(r)) <= ERROR_TTL
    text = ptr_txt(ptrs, ip)
    assert "forward lookup failed" in text, text


# -- cache -------------------------------------------------------------------------

def test_second_question_comes_from_the_cache(ptrs):
    ip = "192.0.2.8"
    assert_flags(ptrs, ip, NO_FCRDNS)
    assert_flags(ptrs, ip, NO_FCRDNS)
    ptr_txt(ptrs, ip)
    assert ptrs.standin.received(rev4(ip), "PTR") == 1
    assert ptrs.standin.received("mx8.example.com", "A") == 1


# -- configuration -------------------------------------------------------------------

def test_level_changes_with_a_reload(stack):
    s = start(stack)
    require_view(s)
    ip = "192.0.2.10"
    assert_flags(s, ip, DYNAMIC | EMBEDS)
    s.daemon.reload(s.config(ptr={"level": "conservative"}))

    def flags_now():
        r = ptr_a(s, ip)
        return r.rcode() == dns.rcode.NOERROR and flags_of(r) == EMBEDS
    assert harness.wait_until(flags_now, 10, interval=0.2), s.daemon.log()[-2000:]


def score_of(s, ip):
    r = s.qip(ip, view="score", timeout=5)
    if r.rcode() == dns.rcode.NXDOMAIN:
        return 0
    (a,) = dc.a_set(r)
    assert a.startswith("127.0.1."), r.to_text()
    return int(a.rsplit(".", 1)[1])


def test_weights_add_to_the_combined_score(stack):
    s = start(stack, scoring={"threshold": 3})
    require_view(s)
    # weight 3 (dynamic), weight_no_ptr 2, weight_no_fcrdns 1; no list hit.
    assert score_of(s, "31.6.170.11") == 3
    assert score_of(s, "192.0.2.1") == 2
    assert score_of(s, "192.0.2.2") == 1
    assert score_of(s, "192.0.2.25") == 0
    assert dc.a_set(s.qip("31.6.170.11", timeout=5)) == {"127.0.0.2"}
    assert s.qip("192.0.2.2", timeout=5).rcode() == dns.rcode.NXDOMAIN
