"""SPEC §3/§4: the configuration check, SIGHUP reloads, clean exits."""

import re
import signal
import subprocess
import threading
import time

import dns.rcode
import pytest

import dnsclient as dc
import harness
from harness import source

GOOD = """\
; every key of SPEC §3, with units
[server]
listen = 127.0.0.1:5353, [::1]:5353
zone = rblmux.internal
threads = auto
allow = 127.0.0.0/8, ::1/128
metrics = 127.0.0.1:9353
tcp_idle = 10s
tcp_max = 256
udp_max_size = 1232

[upstream]
servers = 127.0.0.1:53, [::1]:53
timeout = 1500ms
deadline = 2s
probe_interval = 1m
max_inflight = 100

[scoring]
threshold = 5
on_incomplete = servfail

[cache]
redis = none
redis_password =
redis_db = 0
key_prefix = rblmux:
memory = 64M
min_ttl = 60s
max_ttl = 1h
error_ttl = 30s
stale_ttl = 1h

[source spamcop]
zone = bl.spamcop.net
type = ip
weight = 3
codes = 127.0.0.2=3, 127.0.0.[4..7]=2
errors = 127.255.255.0/24
timeout = 1s
servers =
enabled = yes

[source dbl-test]   # a domain list with its own resolver
zone = dbl.example.invalid
type = domain
weight = 5
servers = 127.0.0.1:5301

[source allow4]
zone = allow.example.invalid
type = ip4
weight = -5
enabled = no

[ptr]
enabled = yes
level = moderate
weight = 2
weight_no_ptr = 1
weight_no_fcrdns = 1

[spf]
enabled = yes
ttl = 5m
"""

# (line, error?) — the bad file, and which of its lines are errors.
BAD = [
    ("[server]", False),
    ("listen = 127.0.0.1:5353", False),
    ("frobnicate = yes", True),                    # unknown key
    ("zone = rblmux.internal", False),
    ("listen = 127.0.0.1:5354", True),             # duplicate key
    ("[upstream]", False),
    ("timeout = 15parsecs", True),                 # bad duration
    ("deadline = 2s", False),
    ("[scoring]", False),
    ("threshold = many", True),                    # not an integer
    ("on_incomplete = maybe", True),               # not partial/servfail
    ("[cache]", False),
    ("memory = lots", True),                       # bad size
    ("[bogus]", True),                             # unknown section
    ("[source score]", True),                      # a view name
    ("zone = x.invalid", False),
    ("weight = 1", False),
    ("[source 9lives]", True),                     # starts with a digit
    ("zone = y.invalid", False),
    ("weight = 1", False),
    ("[source ok]", False),
    ("zone = z.invalid", False),
    ("weight = heavy", True),                      # not an integer
    ("type = ipx", True),                          # unknown type
    ("codes = 127.0.0.[9..2]=1", True),            # empty range
    ("errors = 300.1.1.1/24", True),               # not an address
    ("[source ok]", True),                         # duplicate section
    ("zone = w.invalid", False),
    ("weight = 1", False),
]


def test_check_accepts_a_good_file(tmp_path):
    rc, err, _ = harness.check_config(tmp_path, GOOD)
    assert rc == 0, err


def test_check_lists_every_error_with_its_line(tmp_path):
    text = "\n".join(line for line, _ in BAD) + "\n"
    rc, err, path = harness.check_config(tmp_path, text, name="bad.conf")
    assert rc == 1, err
    want = {i + 1 for i, (_, bad) in enumerate(BAD) if bad}
    # One "FILE:LINE: message" per error (a summary line may follow).
    got = {int(m.group(1)) for m in re.finditer(r"^.*bad\.conf:(\d+): \S", err, re.M)}
    missing = want - got
    assert not missing, f"errors not reported for lines {sorted(missing)}:\n{err}"
    assert got <= set(range(1, len(BAD) + 1)), err


def test_check_missing_file(tmp_path):
    binary = harness.rblmuxd_path()
    res = subprocess.run([str(binary), "-t", "-c", str(tmp_path / "nope.conf")],
                         capture_output=True, timeout=10)
    assert res.returncode != 0
    assert b"nope.conf" in res.stderr


def test_shipped_configuration_checks_clean(tmp_path):
    confs = sorted((harness.REPO / "etc").glob("*.conf"))
    if not confs:
        pytest.skip("no configuration shipped in etc/ yet")
    for conf in confs:
        rc, err, _ = harness.check_config(tmp_path, conf.read_text(), name=conf.name)
        assert rc == 0, f"{conf}: {err}"


def test_daemon_refuses_to_start_on_a_bad_file(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("[server]\nfrobnicate = 1\n")
    res = subprocess.run([str(harness.rblmuxd_path()), "-c", str(path)],
                         capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    assert res.returncode != 0
    assert re.search(rb"bad\.conf:2: ", res.stderr), res.stderr


def reload_stack(stack):
    return stack([source("alpha", 3, {"192.0.2.110": {}, "192.0.2.111": {}}),
                  source("beta", 1, {"192.0.2.110": {}})])


def test_sighup_reload_changes_the_threshold(stack):
    s = reload_stack(stack)
    assert s.qip("192.0.2.110").rcode() == dns.rcode.NXDOMAIN      # 4 < 5
    s.daemon.reload(s.config(scoring={"threshold": 4}))
    assert harness.wait_until(lambda: dc.a_set(s.qip("192.0.2.110")) == {"127.0.0.2"}, 10), \
        s.daemon.log()
    assert s.qip("192.0.2.111").rcode() == dns.rcode.NXDOMAIN      # 3 < 4
    assert s.daemon.proc.alive()


def test_bad_reload_keeps_the_old_configuration(stack):
    s = reload_stack(stack)
    assert s.qip("192.0.2.110").rcode() == dns.rcode.NXDOMAIN
    before = len(s.daemon.log())
    # threshold 1 would list both, but the file has an error: nothing of it applies.
    bad = s.config(scoring={"threshold": 1}) + "\n[server]\nfrobnicate = yes\n"
    s.daemon.reload(bad)
    def said_why():
        new = s.daemon.log()[before:]
        return "rblmuxd.conf" in new or "frobnicate" in new
    assert harness.wait_until(said_why, 5), f"the bad reload was not logged:\n{s.daemon.log()}"
    assert s.daemon.proc.alive()
    assert s.qip("192.0.2.110").rcode() == dns.rcode.NXDOMAIN
    assert s.qip("192.0.2.111").rcode() == dns.rcode.NXDOMAIN
    # and a good file afterwards still applies
    s.daemon.reload(s.config(scoring={"threshold": 4}))
    assert harness.wait_until(lambda: dc.a_set(s.qip("192.0.2.110")) == {"127.0.0.2"}, 10)


def test_reload_adds_a_source(stack):
    s = stack([source("alpha", 3, {"192.0.2.112": {}}),
               source("beta", 3, {"192.0.2.112": {}})])
    only_alpha = s.sources[:1]
    full = s.config()
    s.sources = only_alpha
    s.daemon.reload(s.config())
    assert harness.wait_until(lambda: s.qip("192.0.2.112").rcode() == dns.rcode.NXDOMAIN, 10)
    s.daemon.reload(full)
    assert harness.wait_until(lambda: dc.a_set(s.qip("192.0.2.112")) == {"127.0.0.2"}, 10)


def test_reload_does_not_drop_queries(stack):
    s = reload_stack(stack)
    stop = threading.Event()
    outcomes = []

    def ask_continuously():
        i = 0
        while not stop.is_set() and i < 2000:
            ip = f"192.0.2.{110 + i % 3}"
            try:
                outcomes.append(s.qip(ip, timeout=2, tcp=(i % 5 == 0)).rcode())
            except Exception as e:  # a timeout or a reset is what this test looks for
                outcomes.append(repr(e))
            i += 1

    worker = threading.Thread(target=ask_continuously)
    worker.start()
    try:
        for threshold in (4, 5, 4, 5, 4):
            s.daemon.reload(s.config(scoring={"threshold": threshold}))
            time.sleep(0.2)
    finally:
        time.sleep(0.3)
        stop.set()
        worker.join(10)
    assert len(outcomes) > 10
    bad = [o for o in outcomes if o not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)]
    assert not bad, bad[:5]
    assert s.daemon.proc.alive()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_exit_on_signal(stack, sig):
    s = stack([source("alpha", 3, {})])
    s.daemon.proc.signal(sig)
    assert s.daemon.proc.wait(10) == 0, s.daemon.log()
