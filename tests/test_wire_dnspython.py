"""zones/dnswire and zones/listans against an independent implementation.

dnspython builds the queries and upstream answers; tools/wirecheck runs them
through our C code; dnspython parses what comes back. Needs a build:
RBLMUX_BUILD names the build directory (default "build", relative to the
repository root), e.g. RBLMUX_BUILD=build /usr/bin/python3 -m pytest -q tests/test_wire_dnspython.py
"""
import os
import random
import subprocess
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

ROOT = Path(__file__).resolve().parent.parent
WIRECHECK = ROOT / os.environ.get("RBLMUX_BUILD", "build") / "tools" / "wirecheck"
DIAG = 65301
DIAG_TEXT = b"tier=test age=0 lat_us=0"
TXT_PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module", autouse=True)
def wirecheck_built():
    assert WIRECHECK.is_file(), f"{WIRECHECK} missing: build first (ninja -C <builddir>)"


def run(args, lines):
    proc = subprocess.run([str(WIRECHECK), *args], input="".join(l + "\n" for l in lines),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.splitlines()
    assert len(out) == len(lines)
    return out


def respond(wires, *args):
    """Send query packets through wirecheck; dnspython messages (None: dropped)."""
    out = run(list(args), [w.hex() for w in wires])
    return [None if line == "DROP" else bytes.fromhex(line) for line in out]


def respond_one(query, *args):
    return respond([query.to_wire()], *args)[0]


def mixed_case(name, rng):
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


def question_labels(msg):
    return msg.question[0].name.labels


def full_answer_shape(n_a=2):
    """(section, type) of every record wirecheck writes, in order."""
    return ([("an", dns.rdatatype.A)] * n_a + [("an", dns.rdatatype.TXT)] * 2 +
            [("ns", dns.rdatatype.NS), ("ns", dns.rdatatype.SOA), ("ar", dns.rdatatype.A)])


def shape(msg):
    out = []
    for sec, rrsets in (("an", msg.answer), ("ns", msg.authority), ("ar", msg.additional)):
        for rrset in rrsets:
            out += [(sec, rrset.rdtype)] * len(rrset)
    return out


# ------------------------------------------------------------ responses

def test_ids_and_question_case_echoed():
    rng = random.Random(20)
    queries = []
    for i in range(200):
        name = mixed_case(f"{i % 256}.{rng.randrange(256)}.2.192.rblmux.internal", rng)
        qtype = rng.choice(["A", "TXT", "ANY", "SOA", "AAAA"])
        edns = rng.choice([None, 0])
        payload = rng.choice([512, 1232, 4096, 65535])
        q = dns.message.make_query(name, qtype, use_edns=edns, payload=payload)
        if rng.random() < 0.3:
            q.flags &= ~dns.flags.RD
        queries.append(q)
    answers = respond([q.to_wire() for q in queries])
    for q, wire in zip(queries, answers):
        r = dns.message.from_wire(wire)
        assert r.id == q.id
        assert r.flags & dns.flags.QR
        assert r.flags & dns.flags.AA
        assert (r.flags & dns.flags.RD) == (q.flags & dns.flags.RD)
        assert r.rcode() == dns.rcode.NOERROR
        assert question_labels(r) == question_labels(q)  # byte for byte, case kept
        assert r.question[0].rdtype == q.question[0].rdtype
        assert (r.edns >= 0) == (q.edns >= 0)
        limit = q.payload if q.edns >= 0 else 512
        assert len(wire) <= limit


def test_records_content():
    q = dns.message.make_query("4.3.2.1.RbLmUx.Internal", "A", use_edns=0, payload=4096)
    wire = respond_one(q)
    r = dns.message.from_wire(wire)
    assert not r.flags & dns.flags.TC
    assert shape(r) == full_answer_shape()
    a = r.find_rrset(r.answer, q.question[0].name, dns.rdataclass.IN, dns.rdatatype.A)
    assert sorted(rd.address for rd in a) == ["127.0.0.2", "127.0.0.3"]
    assert a.ttl == 300
    txts = r.find_rrset(r.answer, q.question[0].name, dns.rdataclass.IN, dns.rdatatype.TXT)
    strings = sorted((rd.strings for rd in txts), key=lambda ss: len(b"".join(ss)))
    assert strings[0] == (b"alpha", b"beta")
    long_txt = strings[1]
    assert [len(s) for s in long_txt] == [255, 45]
    expected = (TXT_PATTERN * 10)[:300]
    assert b"".join(long_txt) == expected
    zone = dns.name.from_text("Internal")
    ns = r.find_rrset(r.authority, zone, dns.rdataclass.IN, dns.rdatatype.NS)
    assert ns[0].target == dns.name.from_text("ns1.example.net")
    soa = r.find_rrset(r.authority, zone, dns.rdataclass.IN, dns.rdatatype.SOA)
    assert (soa[0].serial, soa[0].minimum) == (2024010101, 300)
    assert soa[0].rname == dns.name.from_text("hostmaster.example.net")
    assert r.additional[0][0].address == "192.0.2.53"
    assert r.edns == 0 and r.payload == 1232
    # answer owners are compression pointers to the question
    assert wire.count(b"\x06RbLmUx") == 1


@pytest.mark.parametrize("txt_len, strings", [(0, [0]), (1, [1]), (255, [255]), (256, [255, 1]),
                                              (600, [255, 255, 90]), (2000, [255] * 7 + [215])])
def test_txt_split(txt_len, strings):
    q = dns.message.make_query("t.example", "TXT", use_edns=0, payload=8192)
    r = dns.message.from_wire(respond_one(q, "--txt", str(txt_len)))
    txts = r.find_rrset(r.answer, q.question[0].name, dns.rdataclass.IN, dns.rdatatype.TXT)
    long_txt = [rd.strings for rd in txts if rd.strings != (b"alpha", b"beta")][0]
    assert [len(s) for s in long_txt] == strings
    assert b"".join(long_txt) == (TXT_PATTERN * 60)[:txt_len]


def test_diag_option():
    with_diag = dns.message.make_query("a.example", "A", use_edns=0, payload=1232,
                                       options=[dns.edns.GenericOption(DIAG, b"")])
    without = dns.message.make_query("a.example", "A", use_edns=0, payload=1232,
                                     options=[dns.edns.GenericOption(10, b"12345678")])
    r1, r2 = (dns.message.from_wire(w) for w in respond([with_diag.to_wire(), without.to_wire()]))
    diag = [o for o in r1.options if o.otype == DIAG]
    assert len(diag) == 1 and diag[0].data == DIAG_TEXT
    assert not [o for o in r2.options if o.otype == DIAG]
    assert r2.edns == 0


def test_do_bit_echoed():
    q = dns.message.make_query("a.example", "A", want_dnssec=True)
    r = dns.message.from_wire(respond_one(q))
    assert r.ednsflags & dns.flags.DO
    q = dns.message.make_query("a.example", "A", use_edns=0)
    r = dns.message.from_wire(respond_one(q))
    assert not r.ednsflags & dns.flags.DO


@pytest.mark.parametrize("edns, payload", [(None, 0), (0, 100), (0, 512), (0, 600), (0, 1232),
                                           (0, 4096)])
@pytest.mark.parametrize("n_a", [2, 40, 300])
@pytest.mark.parametrize("diag", [False, True])
def test_truncation(edns, payload, n_a, diag):
    options = [dns.edns.GenericOption(DIAG, b"")] if diag else []
    if edns is None:
        q = dns.message.make_query("Www.Example.COM", "A")
    else:
        q = dns.message.make_query("Www.Example.COM", "A", use_edns=edns, payload=payload,
                                   options=options)
    wire = respond_one(q, "--a", str(n_a))
    r = dns.message.from_wire(wire)
    limit = max(payload, 512) if edns is not None else 512
    assert len(wire) <= limit
    assert r.id == q.id and question_labels(r) == question_labels(q)
    full = full_answer_shape(n_a)
    got = shape(r)
    if r.flags & dns.flags.TC:
        # whole records only, in order, and nothing after the first gap
        assert len(got) < len(full) - 1
        assert got == full[:len(got)]
    else:
        # the additional-section glue may be left out without TC (RFC 2181 §9)
        assert got in (full, full[:-1])
    if edns is not None:
        assert r.edns == 0  # the OPT always fits
        assert bool([o for o in r.options if o.otype == DIAG]) == diag
    else:
        assert r.edns == -1


def test_truncation_flag_at_the_exact_boundary():
    """Around the UDP size where the full answer just fits: the glue (16 bytes,
    additional section) goes first without TC, then the SOA goes and TC is set."""
    q = dns.message.make_query("b.example", "A", use_edns=0, payload=65535)
    full = respond_one(q, "--txt", "1000")  # well above 512, which smaller sizes become
    size = len(full)
    assert not dns.message.from_wire(full).flags & dns.flags.TC
    sizes = [size, size - 1, size - 16, size - 17]
    queries = [dns.message.make_query("b.example", "A", use_edns=0, payload=s) for s in sizes]
    got = [dns.message.from_wire(w)
           for w in respond([qq.to_wire() for qq in queries], "--txt", "1000")]
    shapes = [shape(r) for r in got]
    tcs = [bool(r.flags & dns.flags.TC) for r in got]
    full_shape = full_answer_shape()
    assert shapes == [full_shape, full_shape[:-1], full_shape[:-1], full_shape[:-2]]
    assert tcs == [False, False, False, True]
    assert [r.edns for r in got] == [0, 0, 0, 0]


def test_tcp_limit():
    q = dns.message.make_query("c.example", "A")
    r = dns.message.from_wire(respond_one(q, "--tcp", "--a", "1000"))
    assert not r.flags & dns.flags.TC
    assert len(r.answer[0]) == 1000


def long_names():
    yield ".".join(["a" * 63] * 3 + ["b" * 61])          # 255 bytes
    yield ".".join(["X"] * 127)                           # 255 bytes, 127 labels
    yield ".".join(["Ab" * 31 + "c"] * 3 + ["dE" * 30])   # 63-byte labels, mixed case
    yield "x"


def test_long_names():
    queries = [dns.message.make_query(n, "TXT", use_edns=0, payload=65535) for n in long_names()]
    answers = respond([q.to_wire() for q in queries])
    for q, wire in zip(queries, answers):
        r = dns.message.from_wire(wire)
        assert question_labels(r) == question_labels(q)
        assert r.answer[0].name.labels == question_labels(q)
        assert r.authority[0].name.labels == question_labels(q)[-2:]


def raw_query(qdcount=1, flags=0x0100, qname=b"\x01a\x00", extra=b"", arcount=0, id_=0xbeef):
    return (id_.to_bytes(2, "big") + flags.to_bytes(2, "big") + qdcount.to_bytes(2, "big") +
            b"\x00\x00\x00\x00" + arcount.to_bytes(2, "big") +
            (qname + b"\x00\x01\x00\x01" if qdcount else b"") + extra)


OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"


def test_malformed_queries():
    long_name = b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00"  # 257 bytes
    cases = {
        "short": (b"\x12\x34\x01\x00\x00\x01", None),
        "response": (raw_query(flags=0x8100), None),
        "qdcount0": (raw_query(qdcount=0), (dns.rcode.FORMERR, False)),
        "qdcount2": (raw_query(qdcount=2) + b"\x01b\x00\x00\x01\x00\x01", (dns.rcode.FORMERR, False)),
        "cut question": (raw_query()[:-2], (dns.rcode.FORMERR, False)),
        "pointer": (raw_query(qname=b"\x01a\xc0\x00"), (dns.rcode.FORMERR, False)),
        "label 64": (raw_query(qname=b"\x40" + b"a" * 64 + b"\x00"), (dns.rcode.FORMERR, False)),
        "name 257": (raw_query(qname=long_name), (dns.rcode.FORMERR, False)),
        "two OPTs": (raw_query(arcount=2, extra=OPT + OPT), (dns.rcode.FORMERR, True)),
        "OPT not root": (raw_query(arcount=1, extra=b"\x01x" + OPT), (dns.rcode.FORMERR, True)),
        "OPT cut": (raw_query(arcount=1, extra=OPT[:-1]), (dns.rcode.FORMERR, True)),
        "missing record": (raw_query(arcount=1), (dns.rcode.FORMERR, True)),
    }
    answers = respond([w for w, _ in cases.values()])
    for (name, (query, want)), wire in zip(cases.items(), answers):
        if want is None:
            assert wire is None, name
            continue
        rcode, has_question = want
        r = dns.message.from_wire(wire)
        assert r.id == 0xbeef, name
        assert r.rcode() == rcode, name
        assert bool(r.question) == has_question, name
        assert r.edns == -1, name  # no OPT in answer to a bad OPT


def test_badvers_and_notimp():
    q = dns.message.make_query("a.example", "A")
    q.use_edns(1)
    r = dns.message.from_wire(respond_one(q))
    assert r.rcode() == dns.rcode.BADVERS
    assert r.edns == 0
    assert not r.answer
    q = dns.message.make_query("a.example", "SOA")
    q.set_opcode(dns.opcode.NOTIFY)
    r = dns.message.from_wire(respond_one(q))
    assert r.rcode() == dns.rcode.NOTIMP
    assert r.opcode() == dns.opcode.NOTIFY


def test_build_query():
    out = subprocess.run([str(WIRECHECK), "--build", "Foo.ExAmple", "TXT", "1232"],
                         capture_output=True, text=True, check=True).stdout
    q = dns.message.from_wire(bytes.fromhex(out.strip()))
    assert q.id == 0
    assert q.flags == dns.flags.RD
    assert [l for l in q.question[0].name.labels] == [b"Foo", b"ExAmple", b""]
    assert q.question[0].rdtype == dns.rdatatype.TXT
    assert q.edns == 0 and q.payload == 1232 and not q.ednsflags & dns.flags.DO
    out = subprocess.run([str(WIRECHECK), "--build", "x", "A", "0"],
                         capture_output=True, text=True, check=True).stdout
    assert dns.message.from_wire(bytes.fromhex(out.strip())).edns == -1


# ------------------------------------------------------------ listans

QNAME = "2.0.0.127.ZeN.SpamHaus.org."


def listans(answers, qname=QNAME, qtype="A"):
    """answers: dnspython messages or wire bytes."""
    wires = [a if isinstance(a, bytes) else a.to_wire() for a in answers]
    out = run(["--listans", qname, qtype], [w.hex() for w in wires])
    return [dict(kv.split("=", 1) for kv in line.split()) for line in out]


def upstream_query(qname=QNAME, qtype="A"):
    return dns.message.make_query(qname, qtype, use_edns=0, payload=1232)


def answer(q, rcode=dns.rcode.NOERROR, an=(), ns=()):
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    for owner, ttl, rdtype, *rdatas in an:
        r.answer.append(dns.rrset.from_text(owner, ttl, "IN", rdtype, *rdatas))
    for owner, ttl, rdtype, *rdatas in ns:
        r.authority.append(dns.rrset.from_text(owner, ttl, "IN", rdtype, *rdatas))
    return r


SOA = ("spamhaus.org.", 3600, "SOA", "ns.spamhaus.org. admin.spamhaus.org. 1 2 3 4 150")


def test_listans_statuses():
    q = upstream_query()
    qn = q.question[0].name
    cases = [
        (answer(q, an=[(qn, 300, "A", "127.0.0.2"), (qn, 200, "A", "127.0.0.10")]),
         dict(status="records", rcode="0", ttl="200", has_ttl="1", a="127.0.0.2,127.0.0.10")),
        (answer(q, dns.rcode.NXDOMAIN, ns=[SOA]),
         dict(status="nxdomain", rcode="3", ttl="150", has_ttl="1", a="-")),
        (answer(q, dns.rcode.NXDOMAIN), dict(status="nxdomain", has_ttl="0")),
        (answer(q, ns=[("spamhaus.org.", 60, "SOA", "a. b. 1 2 3 4 150")]),
         dict(status="nodata", ttl="60", has_ttl="1")),
        (answer(q, dns.rcode.SERVFAIL), dict(status="servfail", rcode="2")),
        (answer(q, dns.rcode.REFUSED), dict(status="servfail", rcode="5")),
        (answer(q, an=[("other.example.", 300, "A", "127.0.0.2")]), dict(status="nodata")),
        # CNAME chain, owners in another case, dnspython compresses the targets
        (answer(q, an=[(str(qn).lower(), 100, "CNAME", "Mid.Example.net."),
                       ("mid.example.NET.", 50, "CNAME", "end.example.net."),
                       ("END.example.net.", 300, "A", "127.0.0.3")]),
         dict(status="records", ttl="50", a="127.0.0.3")),
    ]
    results = listans([c[0] for c in cases])
    for (_, want), got in zip(cases, results):
        for k, v in want.items():
            assert got[k] == v, (k, want, got)


def test_listans_keeps_the_first_16_a_records():
    q = upstream_query()
    r = answer(q, an=[(QNAME, 300, "A", *[f"127.0.0.{i}" for i in range(1, 21)])])
    wire = r.to_wire()  # dnspython shuffles an rdataset as it renders it
    in_wire_order = [rd.address for rd in dns.message.from_wire(wire).answer[0]]
    got = listans([wire])[0]
    assert got["a"].split(",") == in_wire_order[:16]


def test_listans_refuses_other_questions():
    q = upstream_query()
    good = answer(q, an=[(q.question[0].name, 300, "A", "127.0.0.2")])
    other_case = answer(upstream_query(QNAME.lower()),
                        an=[(QNAME.lower(), 300, "A", "127.0.0.2")])
    other_type = answer(upstream_query(qtype="TXT"), an=[(QNAME, 300, "TXT", '"x"')])
    truncated = answer(q, an=[(QNAME, 300, "A", "127.0.0.2")])
    truncated.flags |= dns.flags.TC
    a_query = upstream_query()
    got = listans([good, other_case, other_type, truncated, a_query])
    assert [g["status"] for g in got] == ["records", "bad", "bad", "bad", "bad"]


def test_listans_txt():
    q = upstream_query(qtype="TXT")
    long = "".join(f'"{"x" * 200}" ' for _ in range(3))
    r = answer(q, an=[(QNAME, 900, "TXT", '"Listed: see https://example.org/q?ip=127.0.0.2"', long)])
    got = listans([r], qtype="TXT")[0]
    assert got["status"] == "records" and got["ttl"] == "900"
    stored = bytes.fromhex(got["txt"])
    wanted = b""
    for rd in r.answer[0]:
        rdata = rd.to_digestable()
        wanted += len(rdata).to_bytes(2, "big") + rdata
    assert sorted(split_store(stored)) == sorted(split_store(wanted))
    assert got["enc"] == "0200" + stored.hex()


def split_store(buf):
    out, p = [], 0
    while p < len(buf):
        n = int.from_bytes(buf[p:p + 2], "big")
        out.append(buf[p + 2:p + 2 + n])
        p += 2 + n
    return out


def test_listans_truncated_and_mutated_answers():
    q = upstream_query()
    r = answer(q, an=[(QNAME, 300, "CNAME", "x.spamhaus.org."), ("x.spamhaus.org.", 300, "A",
                                                                "127.0.0.2")], ns=[SOA])
    wire = r.to_wire()
    prefixes = [wire[:n] for n in range(len(wire))]
    got = run(["--listans", QNAME, "A"], [p.hex() for p in prefixes] + [wire.hex()])
    assert all(line.startswith("status=bad ") for line in got[:-1])
    assert got[-1].startswith("status=records ")
    rng = random.Random(5)
    mutants = []
    for _ in range(3000):
        b = bytearray(wire)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        mutants.append(bytes(b).hex())
    got = run(["--listans", QNAME, "A"], mutants)  # exit 0: every encode/decode round-trip held
    assert all(line.startswith("status=") for line in got)
