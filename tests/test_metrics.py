"""Issue 7: the Prometheus endpoint ([server] metrics), scraped over HTTP and
parsed strictly: every line is a comment or `name{labels} value`, every
sample belongs to a family declared once with its TYPE, histograms are
cumulative and end in +Inf == _count. Then the counters must move as the
questions asked say they should; `rblmux check --json` and `rblmux watch`
read the same daemon."""

import json
import math
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import dns.message
import dns.rcode

import dnsclient as dc
import harness
from harness import source

METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({METRIC})(?:\{{({LABEL}(?:,{LABEL})*)?\}})? (\S+)$")
HELP = re.compile(rf"^# HELP ({METRIC}) .+$")
TYPE = re.compile(rf"^# TYPE ({METRIC}) (counter|gauge|histogram|summary|untyped)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def si(name, weight, entries=None, **kw):
    return source(name, weight, entries or {}, backend="standin", **kw)


def scrape(port, path="/metrics", method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def parse(text):
    """{(name, frozenset of (label, value))): value}, checked line by line."""
    assert text.endswith("\n")
    types, helps, samples = {}, set(), {}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            m = TYPE.match(line)
            if m:
                assert m.group(1) not in types, f"line {n}: second TYPE for {m.group(1)}"
                types[m.group(1)] = m.group(2)
                continue
            m = HELP.match(line)
            assert m, f"line {n}: not HELP or TYPE: {line!r}"
            assert m.group(1) not in helps, f"line {n}: second HELP"
            helps.add(m.group(1))
            continue
        m = SAMPLE.match(line)
        assert m, f"line {n}: not a sample: {line!r}"
        name, labels, value = m.groups()
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and types.get(base) == "histogram":
                family = base
        assert family in types, f"line {n}: {name} has no TYPE before it"
        if types[family] == "histogram":
            assert name != family, f"line {n}: bare sample of histogram {family}"
        pairs = frozenset(LABEL_RE.findall(labels or ""))
        assert len(pairs) == len(LABEL_RE.findall(labels or "")), f"line {n}: repeated label"
        v = math.inf if value == "+Inf" else float(value)
        if types[family] == "counter" or name.endswith(("_bucket", "_count")):
            assert v >= 0 and v == int(v), f"line {n}: counter value {value}"
        key = (name, pairs)
        assert key not in samples, f"line {n}: duplicate series {line!r}"
        samples[key] = v
    check_histograms(types, samples)
    return types, samples


def check_histograms(types, samples):
    for family, t in types.items():
        if t != "histogram":
            continue
        series = {}
        for (name, labels), v in samples.items():
            if name == family + "_bucket":
                rest = frozenset(p for p in labels if p[0] != "le")
                le = dict(labels)["le"]
                series.setdefault(rest, []).append((math.inf if le == "+Inf" else float(le), v))
        for rest, buckets in series.items():
            buckets.sort()
            assert buckets[-1][0] == math.inf, f"{family}{dict(rest)}: no +Inf bucket"
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), f"{family}{dict(rest)}: not cumulative {counts}"
            assert samples[(family + "_count", rest)] == counts[-1]
            assert (family + "_sum", rest) in samples


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), None)


def total(samples, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def metrics_stack(stack, sources, **kw):
    port = harness.free_port(("127.0.0.1",))
    server = {"metrics": f"127.0.0.1:{port}", **kw.pop("server", {})}
    s = stack(sources, server=server, **kw)
    s.metrics_port = port
    return s


def lists():
    return harness.standard_sources() + [
        si("broken", 1, {"192.0.2.1": {}}),
        si("slow", 1, {"192.0.2.1": {}}, timeout="300ms"),
    ]


def test_exposition_is_strict_and_counters_move(stack):
    s = metrics_stack(stack, lists(), upstream={"deadline": "2s"},
                      server={"allow": "127.0.0.1/32, ::1/128"})
    assert harness.wait_all_ok(s)
    s.standin.set("broken.bl.invalid", mode="servfail")
    s.standin.set("slow.bl.invalid", mode="drop")
    status, headers, text = scrape(s.metrics_port)
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(headers["Content-Length"]) == len(text.encode())
    types, before = parse(text)
    assert types["rblmux_queries_total"] == "counter"
    assert types["rblmux_query_duration_seconds"] == "histogram"
    assert types["rblmux_upstream_duration_seconds"] == "histogram"
    assert types["rblmux_source_state"] == "gauge"
    assert val(before, "rblmux_build_info", version="0.1.0") == 1
    assert val(before, "rblmux_loops") == 2

    # Listed (8 >= 5: decided before broken and slow matter), then from
    # the cache; not listed; outside the zone; a client outside `allow`;
    # a packet without a header.
    assert dc.a_set(s.qip("192.0.2.1")) == {"127.0.0.2"}
    assert dc.a_set(s.qip("192.0.2.1")) == {"127.0.0.2"}
    assert s.qip("192.0.2.3", timeout=5).rcode() == dns.rcode.NXDOMAIN
    assert s.q("example.com.").rcode() == dns.rcode.REFUSED
    reply = dc.raw_udp(dc.make_query(s.ip("192.0.2.1")).to_wire(), s.port,
                       source="127.0.0.2")
    assert reply is not None and dc.rcode(dns.message.from_wire(reply)) == dns.rcode.REFUSED
    assert dc.raw_udp(b"\x12", s.port, timeout=0.3) is None
    assert s.qip("192.0.2.1", "TXT", view="alpha").rcode() == dns.rcode.NOERROR

    # The slow list times out 300 ms after each question: wait for both.
    def settled():
        _, after = parse(scrape(s.metrics_port)[2])
        done = val(after, "rblmux_upstream_queries_total", source="slow", result="timeout")
        return after if done - val(before, "rblmux_upstream_queries_total", source="slow",
                                   result="timeout") >= 2 else None
    after = harness.wait_until(settled, 5, interval=0.2)
    assert after, "the slow list's timeouts were not counted"

    def d(name, **labels):
        return val(after, name, **labels) - (val(before, name, **labels) or 0)

    q = "rblmux_queries_total"
    assert d(q, view="combined", qtype="A", rcode="NOERROR") == 2
    assert d(q, view="combined", qtype="A", rcode="NXDOMAIN") == 1
    assert d(q, view="outside", qtype="A", rcode="REFUSED") == 1
    assert d(q, view="none", qtype="A", rcode="REFUSED") == 1
    assert d(q, view="source", qtype="TXT", rcode="NOERROR") == 1
    assert d("rblmux_queries_dropped_total") == 1

    # Two IPs asked of every list: two upstream questions each, then the
    # cache; alpha's TXT is a question of its own.
    lk = "rblmux_lookups_total"
    assert d(lk, source="beta", tier="upstream") == 2
    # (an early verdict may leave a list in flight for the second question)
    assert d(lk, source="beta", tier="mem") + d(lk, source="beta", tier="coalesced") == 1
    assert d(lk, source="alpha", tier="upstream") == 3
    up = "rblmux_upstream_queries_total"
    assert d(up, source="beta", result="listed") == 1
    assert d(up, source="beta", result="not_listed") == 1
    assert d(up, source="broken", result="servfail") == 2
    assert d(up, source="slow", result="timeout") == 2
    assert d(up, source="alpha", result="listed") == 2   # A and TXT of 192.0.2.1
    # Late answers still reach the queries that asked (they live until every
    # lookup reports). A failure is cached for error_ttl; a question still in
    # flight is joined.
    assert d(lk, source="broken", tier="upstream") == 2
    # (c-ares retries a SERVFAIL: the second question may still find it in flight)
    assert d(lk, source="broken", tier="mem") + d(lk, source="broken", tier="coalesced") == 1
    assert d(lk, source="slow", tier="upstream") == 2
    assert d(lk, source="slow", tier="coalesced") == 1

    h = "rblmux_upstream_duration_seconds"
    assert d(h + "_count", source="slow") == 2
    assert d(h + "_bucket", source="slow", le="0.25") == 0     # 300 ms timeouts
    assert d(h + "_bucket", source="slow", le="0.5") == 2
    assert d(h + "_count", source="beta") == 2
    assert d(h + "_bucket", source="beta", le="0.1") == 2      # loopback
    assert d("rblmux_query_duration_seconds_count", view="combined") == 3

    # One state per source.
    for name in ("alpha", "beta", "gamma", "white", "dbl", "broken", "slow"):
        assert total(after, "rblmux_source_state", source=name) == 1, name
        assert val(after, "rblmux_source_error_ratio", source=name) is not None
    assert val(after, "rblmux_source_state", source="alpha", state="ok") == 1
    assert val(after, "rblmux_cache_entries") >= 13   # 6 lists x 2 IPs + a TXT
    assert total(after, "rblmux_redis_connections") == 0
    assert total(after, "rblmux_spf_checks_total") == 0


def test_other_requests(stack):
    s = metrics_stack(stack, [source("alpha", 1)])
    assert scrape(s.metrics_port, "/")[0] == 404
    assert scrape(s.metrics_port, "/metrics/x")[0] == 404
    assert scrape(s.metrics_port, "/metrics", method="POST")[0] == 404
    status, headers, body = scrape(s.metrics_port, "/metrics?x=1")
    assert status == 200 and "rblmux_loops 2" in body
    status, headers, body = scrape(s.metrics_port, method="HEAD")
    assert status == 200 and body == "" and int(headers["Content-Length"]) > 1000

    def raw(data, timeout=3):
        with socket.create_connection(("127.0.0.1", s.metrics_port), timeout=timeout) as c:
            c.sendall(data)
            out = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    return out
                out += chunk
    assert raw(b"garbage\r\n\r\n").startswith(b"HTTP/1.0 400 ")
    assert raw(b"GET /metrics HTTP/1.0\n\n").startswith(b"HTTP/1.0 200 OK\r\n")
    assert raw(b"GET /" + b"x" * 5000 + b" HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 431 ")


def test_connection_cap_and_timeout_do_not_block_dns(stack):
    s = metrics_stack(stack, [source("alpha", 1, {"192.0.2.9": {}})])
    idle = [socket.create_connection(("127.0.0.1", s.metrics_port), timeout=3)
            for _ in range(8)]
    try:
        # The loop that serves HTTP also answers DNS: idle clients cost nothing.
        assert s.qip("192.0.2.9").rcode() == dns.rcode.NXDOMAIN
        # One more than the cap: closed at once, no answer.
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", s.metrics_port), timeout=3) as extra:
            extra.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            try:
                assert extra.recv(100) == b""
            except ConnectionResetError:
                pass
        # The idle ones are closed by the server within its 5 s timeout.
        start = time.monotonic()
        for c in idle:
            c.settimeout(8)
            assert c.recv(100) == b""
        assert time.monotonic() - start < 7
    finally:
        for c in idle:
            c.close()
    assert scrape(s.metrics_port)[0] == 200


def test_reload_keeps_counts_by_zone(stack):
    s = metrics_stack(stack, [source("alpha", 3, {"192.0.2.1": {}})])
    for _ in range(3):
        s.qip("192.0.2.1")
    _, before = parse(scrape(s.metrics_port)[2])
    assert total(before, "rblmux_lookups_total", source="alpha") == 3
    # The same zone under a new name: its counts follow it.
    s.sources[0]["name"] = "renamed"
    s.daemon.reload(s.config())
    assert harness.wait_until(lambda: "reloaded" in s.daemon.log(), 5)
    _, after = parse(scrape(s.metrics_port)[2])
    assert total(after, "rblmux_lookups_total", source="renamed") == 3
    assert total(after, "rblmux_lookups_total", source="alpha") == 0
    assert val(after, "rblmux_config_load_time_seconds") >= val(
        before, "rblmux_config_load_time_seconds")


def test_metrics_off_and_bind_failure(stack, tmp_path):
    s = stack([source("alpha", 1)])
    assert "metrics on" not in s.daemon.log()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = harness.free_port(("127.0.0.1",))
        text = s.config(server={"listen": f"127.0.0.1:{port}",
                                "metrics": f"127.0.0.1:{busy.getsockname()[1]}"})
        d = harness.Rblmuxd(tmp_path / "busy", text, port, ready=False)
        assert d.proc.wait(10) == 1
        assert "cannot listen for metrics" in d.log()
        d.stop()
    finally:
        busy.close()


def rblmux_tool():
    return harness.build_dir() / "tools" / "rblmux"


def test_check_json_and_watch(stack):
    s = metrics_stack(stack, harness.standard_sources())
    assert harness.wait_all_ok(s)
    r = subprocess.run([rblmux_tool(), "check", "192.0.2.1", "-p", str(s.port), "--json"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "listed" and doc["code"] == "127.0.0.2"
    by_name = {x["name"]: x for x in doc["sources"]}
    assert by_name["alpha"]["answer"] == "127.0.0.2" and by_name["alpha"]["weight"] == 3
    assert by_name["gamma"]["weight"] == 2 and by_name["white"]["weight"] == 0
    assert all(x["health"] == "ok" for x in doc["sources"])
    assert "score 8 >= 5" in doc["why"]
    # Not a terminal: no colour in the table either.
    r = subprocess.run([rblmux_tool(), "check", "192.0.2.3", "-p", str(s.port)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and "\033[" not in r.stdout and "verdict: not listed" in r.stdout

    for _ in range(5):
        s.qip("192.0.2.1")
    r = subprocess.run([rblmux_tool(), "watch", "-m", f"127.0.0.1:{s.metrics_port}",
                        "-i", "0.3", "-n", "2"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("answers/s") == 2
    assert re.search(r"^alpha\s+ok\s", r.stdout, re.M), r.stdout
    r = subprocess.run([rblmux_tool(), "watch", "-m", "127.0.0.1:1", "-n", "1"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "no metrics" in r.stderr


def test_grafana_dashboard_uses_real_metric_names(stack):
    s = metrics_stack(stack, [source("alpha", 1)])
    types, _ = parse(scrape(s.metrics_port)[2])
    dashboard = json.loads((harness.REPO / "etc" / "grafana-dashboard.json").read_text())
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "expr":
                    exprs.append(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(dashboard)
    assert len(exprs) >= 15
    for expr in exprs:
        for name in re.findall(r"\brblmux_[a-z0-9_]+", expr):
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            assert family in types, f"{name} in {expr!r} is not a metric rblmuxd exposes"
