"""Health probes (SPEC §2): lists that list the world or lose the 127.0.0.2
test point are marked down and count 0 until they recover."""

import re

import dns.rcode

import dnsclient as dc
import harness
from harness import source


def si(name, weight, entries, **kw):
    return source(name, weight, entries, backend="standin", **kw)


def test_health_strings_carry_latency_and_error_rate(stack):
    s = stack([source("alpha", 1, {}), si("beta", 1, {})])
    assert harness.wait_all_ok(s), harness.health(s)
    for name, rest in harness.health(s).items():
        assert re.search(r"\d+(\.\d+)?\s*(us|µs|ms|s)\b", rest), f"{name}: no latency in {rest!r}"
        assert re.search(r"\d+(\.\d+)?\s*%", rest), f"{name}: no error rate in {rest!r}"


def test_list_that_lists_the_world_is_down_until_it_recovers(stack):
    s = stack([source("alpha", 1, {"192.0.2.121": {}}),
               si("world", 5, {"192.0.2.122": {"txt": "world lists it"}})],
              upstream={"probe_interval": "1s"})
    assert harness.wait_health(s, "world", "ok"), harness.health(s)
    s.standin.set("world.bl.invalid", mode="wildcard")
    assert harness.wait_health(s, "world", "down"), harness.health(s)
    assert harness.health_state(s, "alpha") == "ok"
    # world now says "listed" for everything, with weight 5 >= threshold 5.
    assert s.qip("192.0.2.120").rcode() == dns.rcode.NXDOMAIN
    assert s.qip("192.0.2.120", view="score").rcode() == dns.rcode.NXDOMAIN
    assert s.qip("192.0.2.121", view="score").rcode() == dns.rcode.NOERROR
    assert dc.a_set(s.qip("192.0.2.121", view="score")) == {"127.0.1.1"}
    s.standin.set("world.bl.invalid", mode="normal")
    assert harness.wait_health(s, "world", "ok"), harness.health(s)
    assert dc.a_set(s.qip("192.0.2.122")) == {"127.0.0.2"}


def test_list_without_the_test_point_is_down(stack):
    s = stack([source("alpha", 1, {}),
               si("notp", 5, {"192.0.2.123": {}}, test_points=False)],
              upstream={"probe_interval": "1s"})
    assert harness.wait_health(s, "notp", "down"), harness.health(s)
    assert s.qip("192.0.2.123").rcode() == dns.rcode.NXDOMAIN
    s.standin.entries("notp.bl.invalid", {"127.0.0.2": ["127.0.0.2"]})
    assert harness.wait_health(s, "notp", "ok"), harness.health(s)
    assert dc.a_set(s.qip("192.0.2.123")) == {"127.0.0.2"}


def test_disabled_source(stack):
    s = stack([source("alpha", 1, {"192.0.2.124": {}}),
               source("off", 5, {"192.0.2.124": {}}, enabled=False)])
    assert harness.wait_health(s, "off", "disabled"), harness.health(s)
    assert s.qip("192.0.2.124").rcode() == dns.rcode.NXDOMAIN
    assert dc.a_set(s.qip("192.0.2.124", view="score")) == {"127.0.1.1"}
