"""SPEC §2 "TTLs and failure": failed lists count 0, early answers, deadline.

Timing is checked causally, never by the clock: the stand-in says whether a
slow list had answered when rblmuxd's answer arrived, and a client timeout
shorter than a list's own timeout shows that rblmuxd did not wait for it.
"""


import dns.rcode
import pytest

import dnsclient as dc
import harness
from harness import source


def si(name, weight, entries, **kw):
    return source(name, weight, entries, backend="standin", **kw)


def score_line(stack, ip):
    return dc.txt_text(stack.qip(ip, "TXT", view="score", timeout=5))


def test_error_answers_are_failures_not_listings(stack):
    ip = "192.0.2.20"
    s = stack([
        source("alpha", 1, {ip: {"txt": "alpha lists it"}}),
        si("errs", 5, {ip: ["127.255.255.254"]}, errors="127.255.255.0/24"),
        si("karma", 5, {ip: ["127.0.0.1"]}, errors="127.0.0.1"),
        si("outside", 5, {ip: ["10.0.0.1"]}),
    ], cache={"min_ttl": "1s", "error_ttl": "7s", "max_ttl": "1h"})
    # Had any error answer counted as a listing, the score would be 6 or more.
    assert s.qip(ip).rcode() == dns.rcode.NXDOMAIN
    r = s.qip(ip, view="score")
    assert dc.a_set(r) == {"127.0.1.1"}
    # The score needs every list, so the failures are known: error_ttl.
    assert 6 <= min(dc.answer_ttls(r)) <= 7, r.to_text()
    line = score_line(s, ip)
    assert "failed" in line, line
    for name in ("errs", "karma", "outside", "alpha"):
        assert name in line, line


def test_early_answer_does_not_wait_for_a_slow_list(stack):
    ip = "192.0.2.30"
    s = stack([source("fast", 5, {ip: {"txt": "fast"}}),
               si("slow", 3, {ip: {"txt": "slow lists it"}}, timeout="8s")],
              upstream={"deadline": "9s"})
    harness.wait_all_ok(s)
    s.standin.set("slow.bl.invalid", delay_ms=4000)
    slow_name = s.upstream_name("slow", ip)
    r = s.qip(ip, timeout=3)
    # The verdict was sent while the slow list's answer was still pending.
    assert dc.a_set(r) == {"127.0.0.2"}
    assert s.standin.received(slow_name) >= 1
    assert s.standin.answered(slow_name) == 0
    # ...and that lookup finishes into the cache: the per-source view is
    # answered without asking the list again.
    assert harness.wait_until(lambda: s.standin.answered(slow_name) >= 1, 10)
    asked = s.standin.received(slow_name)
    s.standin.set("slow.bl.invalid", delay_ms=0)
    assert dc.a_set(s.qip(ip, view="slow")) == {"127.0.0.2"}
    assert s.standin.received(slow_name) == asked


def test_deadline_bounds_the_answer(stack):
    ip = "192.0.2.31"
    s = stack([source("fast", 1, {ip: {"txt": "fast"}}),
               si("never", 5, {ip: {"txt": "never"}}, timeout="20s")],
              upstream={"deadline": "1s"})
    harness.wait_all_ok(s)
    s.standin.set("never.bl.invalid", mode="drop")
    never_name = s.upstream_name("never", ip)
    # The list's timeout (20 s) is far beyond the client's (5 s): an answer
    # proves the deadline, not the list, ended the wait.
    r = s.qip(ip, timeout=5)
    assert r.rcode() == dns.rcode.NXDOMAIN, r.to_text()
    assert s.standin.received(never_name) >= 1
    assert s.standin.answered(never_name) == 0
    r = s.qip(ip, view="score", timeout=5)
    assert dc.a_set(r) == {"127.0.1.1"}
    line = score_line(s, ip)
    assert "never" in line and "failed" in line, line


@pytest.mark.parametrize("mode", ["drop", "servfail", "refused", "wrongcase", "garbage"])
def test_misbehaving_list_counts_zero_and_is_named_failed(stack, mode):
    ip = "192.0.2.32"
    s = stack([source("alpha", 3, {ip: {"txt": "alpha"}}),
               si("bad", 3, {ip: {"txt": "bad lists it"}}, timeout="1s")],
              cache={"min_ttl": "1s", "error_ttl": "9s", "max_ttl": "1h"})
    harness.wait_all_ok(s)
    s.standin.set("bad.bl.invalid", mode=mode)
    r = s.qip(ip, timeout=5)
    # partial: alpha's 3 alone is below the threshold.
    assert r.rcode() == dns.rcode.NXDOMAIN, r.to_text()
    r = s.qip(ip, view="score", timeout=5)
    assert dc.a_set(r) == {"127.0.1.3"}
    assert 8 <= min(dc.answer_ttls(r)) <= 9, r.to_text()
    line = score_line(s, ip)
    assert "bad" in line and "failed" in line, line
    assert s.standin.received(s.upstream_name("bad", ip)) >= 1


def test_every_source_failed_is_servfail(stack):
    ip = "192.0.2.40"
    s = stack([si("one", 3, {ip: ["127.0.0.2"]}, timeout="1s"),
               si("two", 3, {}, timeout="1s")])
    harness.wait_all_ok(s)
    for z in ("one.bl.invalid", "two.bl.invalid"):
        s.standin.set(z, mode="servfail")
    assert s.qip(ip, timeout=5).rcode() == dns.rcode.SERVFAIL
    assert s.qip(ip, view="score", timeout=5).rcode() == dns.rcode.SERVFAIL
    assert s.standin.received(s.upstream_name("one", ip)) >= 1
    assert s.standin.received(s.upstream_name("two", ip)) >= 1


@pytest.mark.parametrize("policy", ["partial", "servfail"])
def test_on_incomplete(stack, policy):
    s = stack([source("three", 3, {"192.0.2.50": {}, "192.0.2.52": {}}),
               source("five", 5, {"192.0.2.52": {}}),
               si("bad", 3, {"192.0.2.50": {}, "192.0.2.52": {}, "192.0.2.53": {}},
                  timeout="1s")],
              scoring={"on_incomplete": policy})
    harness.wait_all_ok(s)
    s.standin.set("bad.bl.invalid", mode="servfail")
    # 3 answered + 3 failed could reach 5: the failure could change the verdict.
    r = s.qip("192.0.2.50", timeout=5)
    if policy == "servfail":
        assert r.rcode() == dns.rcode.SERVFAIL, r.to_text()
    else:
        assert r.rcode() == dns.rcode.NXDOMAIN, r.to_text()
    # Already 8 >= 5 and the failed list can only add: listed either way.
    assert dc.a_set(s.qip("192.0.2.52", timeout=5)) == {"127.0.0.2"}
    # 0 + 3 < 5: the failed list could not have listed it.
    assert s.qip("192.0.2.53", timeout=5).rcode() == dns.rcode.NXDOMAIN


def test_allowlist_failure_can_change_a_listed_verdict(stack):
    """A failed negative-weight list could have pulled a listing below the
    threshold: with on_incomplete = servfail that is SERVFAIL."""
    ip = "192.0.2.54"
    s = stack([source("five", 5, {ip: {}}),
               si("allow", -5, {ip: {}}, timeout="1s")],
              scoring={"on_incomplete": "servfail"})
    harness.wait_all_ok(s)
    s.standin.set("allow.bl.invalid", mode="servfail")
    assert s.qip(ip, timeout=5).rcode() == dns.rcode.SERVFAIL


def test_early_answer_waits_for_a_pending_allowlist(stack):
    """5 >= 5 is not decided while an allowlist (-5) is pending."""
    ip = "192.0.2.55"
    s = stack([source("five", 5, {ip: {}}),
               si("allow", -5, {ip: {"txt": "allowed"}}, timeout="8s")],
              upstream={"deadline": "9s"})
    harness.wait_all_ok(s)
    s.standin.set("allow.bl.invalid", delay_ms=1000)
    r = s.qip(ip, timeout=6)
    assert r.rcode() == dns.rcode.NXDOMAIN, r.to_text()
    assert s.standin.answered(s.upstream_name("allow", ip)) >= 1


def test_list_answering_after_its_timeout_is_ignored(stack):
    ip = "192.0.2.56"
    s = stack([source("alpha", 1, {ip: {}}),
               si("late", 5, {ip: {}}, timeout="500ms")],
              upstream={"deadline": "5s"})
    harness.wait_all_ok(s)
    s.standin.set("late.bl.invalid", delay_ms=2000)
    r = s.qip(ip, timeout=4)
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert s.standin.answered(s.upstream_name("late", ip)) == 0
