#!/usr/bin/python3
"""make_seeds: write the seed corpora of rblmux's fuzz targets.

    /usr/bin/python3 tests/fuzz/make_seeds.py [--out tests/fuzz]

Seeds are small and deterministic: queries a resolver or dig sends (query),
answers a DNSBL sends, well-formed and broken, each behind the selector byte
fuzz_listans reads (listans), reverse-DNS names from tests/data/ptr with
their addresses (ptrclass), and configuration files and snippets (config).
Files are named by the SHA-1 of their content, as libFuzzer names its own,
so re-running only adds what is missing. libFuzzer grows the corpora from
here (tools/fuzz.sh merges what it finds back, minimised).
"""

import argparse
import hashlib
import ipaddress
import socket
import struct
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
APEX = "rblmux.internal."
DIAG = 65301


def rev(addr):
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        return ".".join(str(ip).split(".")[::-1])
    return ".".join(ip.exploded.replace(":", "")[::-1])


def query(name, rdtype="A", edns=None, diag=False, do=False, qid=0x1234,
          opcode=None, rdclass="IN", version=0):
    q = dns.message.make_query(name, rdtype, rdclass=rdclass, use_edns=False)
    q.id = qid
    if edns is not None or diag or do:
        opts = [dns.edns.GenericOption(DIAG, b"")] if diag else []
        q.use_edns(version, dns.flags.DO if do else 0, edns or 1232, options=opts)
    if opcode is not None:
        q.set_opcode(opcode)
    return q.to_wire()


def header(qid, flags, qd, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def wire_name(text):
    return dns.name.from_text(text).to_wire()


def query_seeds():
    out = []
    names = [APEX, "health." + APEX, "score." + APEX,
             rev("192.0.2.1") + "." + APEX, rev("192.0.2.2") + ".score." + APEX,
             rev("192.0.2.1") + ".alpha." + APEX, rev("2001:db8::1") + "." + APEX,
             rev("192.0.2.1") + ".ptr." + APEX, "spam.example.rhs." + APEX,
             "spam.example.dbl." + APEX, rev("192.0.2.1") + ".example.com.spf." + APEX,
             rev("192.0.2.1") + ".example.com.us\\.er._l.spf." + APEX,
             "2.0.0.127." + APEX, "1.0.0.127." + APEX, "ExAmPlE.CoM.", "."]
    for i, n in enumerate(names):
        for t in ("A", "TXT", "ANY", "SOA", "NS", "AAAA"):
            out.append(query(n, t, qid=(i * 7 + len(t)) & 0xffff))
        out.append(query(n, "A", edns=4096, diag=True, qid=0x8040 + i))
        out.append(query(n, "TXT", edns=512, do=True, qid=0x0003 + (i << 8)))
    out.append(query(APEX, "SOA", edns=1232, version=1))
    out.append(query(APEX, "AXFR"))
    out.append(query(APEX, "IXFR"))
    out.append(query(APEX, "A", rdclass="CH"))
    out.append(query(APEX, "SOA", opcode=dns.opcode.NOTIFY))
    out.append(query(APEX, "SOA", opcode=dns.opcode.STATUS))
    long_label = "a" * 63
    out.append(query(".".join([long_label] * 3) + "." + "b" * 47 + ".", "A"))
    out.append(query(".".join(["x"] * 127) + ".", "TXT"))
    # Broken: short, qdcount 0 and 2, compressed question, a pointer loop,
    # trailing garbage, a response, answer records in a query, two OPTs.
    good = query(rev("192.0.2.1") + "." + APEX, "A", edns=1232)
    out += [good[:5], good[:12], good[:20], good + b"\0\0\0garbage"]
    out.append(header(1, 0x0100, 0))
    out.append(header(2, 0x0100, 2) + wire_name(APEX) + b"\0\1\0\1" * 2)
    out.append(header(3, 0x0100, 1) + b"\xc0\x0c\0\1\0\1")
    out.append(header(4, 0x0100, 1) + b"\x01a\xc0\x0c\0\1\0\1")
    out.append(header(5, 0x8100, 1) + wire_name(APEX) + b"\0\6\0\1")
    opt = b"\0\0\x29\x04\xd0\0\0\0\0\0\0"
    out.append(header(6, 0x0100, 1, ar=2) + wire_name(APEX) + b"\0\6\0\1" + opt + opt)
    out.append(header(7, 0x0100, 1, an=1) + wire_name(APEX) + b"\0\1\0\1" +
               b"\xc0\x0c\0\1\0\1\0\0\0\x3c\0\4\x7f\0\0\2")
    out.append(header(8, 0x0100, 1, ar=1) + wire_name(APEX) + b"\0\1\0\1" +
               b"\0\0\x29\x04\xd0\0\0\0\0\0\x08\xff\x15\0\x10abc")
    out.append(header(9, 0x0100, 1, ar=1) + wire_name(APEX) + b"\0\1\0\1" +
               b"\x01a\0\0\x29\x04\xd0\0\0\0\0\0\0")
    return out


# -- upstream answers -------------------------------------------------------

def response(qname, rdtype, rcode=0, answers=(), authority=(), tc=False, qid=0x4321,
             edns=None, ext_rcode=0):
    q = dns.message.make_query(qname, rdtype, use_edns=False)
    r = dns.message.make_response(q)
    r.id = qid
    r.set_rcode(rcode)
    if tc:
        r.flags |= dns.flags.TC
    for rr in answers:
        r.answer.append(dns.rrset.from_text(*rr))
    for rr in authority:
        r.authority.append(dns.rrset.from_text(*rr))
    if edns is not None:
        r.use_edns(0, 0, edns)
    wire = bytearray(r.to_wire())
    if ext_rcode:
        # dnspython folds extended rcodes itself; set the OPT TTL's top byte.
        i = wire.rfind(b"\x00\x00\x29")
        wire[i + 5] = ext_rcode
    return bytes(wire)


def listans_seeds():
    zone = "bl.example."
    q4 = rev("192.0.2.1") + "." + zone
    qmix = "2.0.0.127.bL.ExAmPle."
    q6 = rev("2001:db8::1") + "." + zone
    soa = (zone, 300, "IN", "SOA", f"ns.{zone} hostmaster.{zone} 1 3600 600 86400 60")
    out = []
    for qn in (q4, qmix, q6):
        out += [
            (0, response(qn, "A", answers=[(qn, 300, "IN", "A", "127.0.0.2")])),
            (0, response(qn, "A", answers=[(qn, 300, "IN", "A", "127.0.0.2", "127.0.0.4",
                                             "127.0.0.10", "127.255.255.254")])),
            (0, response(qn, "A", rcode=3, authority=[soa])),
            (0, response(qn, "A", rcode=3)),
            (0, response(qn, "A", authority=[soa])),
            (0, response(qn, "A", rcode=2)),
            (0, response(qn, "A", rcode=5)),
            (0, response(qn, "A", answers=[(qn, 300, "IN", "A", "127.0.0.2")], tc=True)),
            (0, response(qn, "A", answers=[(qn, 300, "IN", "A", "10.0.0.1")])),
            (1, response(qn, "TXT", answers=[(qn, 300, "IN", "TXT", '"listed, see https://bl.example/q?ip=192.0.2.1"')])),
            (1, response(qn, "TXT", answers=[(qn, 300, "IN", "TXT", '"a" "b" "c"', '"second"')])),
            (1, response(qn, "TXT", answers=[(qn, 60, "IN", "TXT", '"' + "x" * 255 + '" "' + "y" * 200 + '"')])),
            (1, response(qn, "TXT", rcode=3, authority=[soa])),
            (0, response(qn, "A", answers=[(qn, 300, "IN", "CNAME", "alias." + zone),
                                           ("alias." + zone, 60, "IN", "A", "127.0.0.3")])),
            (0, response(qn, "A", answers=[(qn, 300, "IN", "CNAME", "loop." + zone),
                                           ("loop." + zone, 60, "IN", "CNAME", qn)])),
            (0, response(qn, "A", answers=[(qn, 300, "IN", "A", "127.0.0.2")], edns=1232)),
            (0, response(qn, "A", edns=1232, ext_rcode=1)),
            (4, response(qn, "A", answers=[(qn, 300, "IN", "A", "127.0.0.2")])),
            (2, response(qn, "A", answers=[(qn, 300, "IN", "A", "127.0.0.2")])),
        ]
    # Hand-made breakage: A rdata of 5 bytes, a TXT string overrunning its
    # rdata, a bad SOA, a pointer forward, no question.
    qw = wire_name(q4)
    base = header(0x4321, 0x8180, 1, an=1) + qw + b"\0\1\0\1"
    out.append((0, base + b"\xc0\x0c\0\1\0\1\0\0\1\x2c\0\5\x7f\0\0\2\0"))
    out.append((1, header(0x4321, 0x8180, 1, an=1) + qw + b"\0\x10\0\1" +
                b"\xc0\x0c\0\x10\0\1\0\0\1\x2c\0\4\x09abc"))
    out.append((0, header(0x4321, 0x8183, 1, ns=1) + qw + b"\0\1\0\1" +
                b"\xc0\x0c\0\6\0\1\0\0\1\x2c\0\3\0\0\0"))
    out.append((0, header(0x4321, 0x8180, 1, an=1) + qw + b"\0\1\0\1" +
                b"\xc0\x40\0\1\0\1\0\0\1\x2c\0\4\x7f\0\0\2"))
    out.append((0, header(0x4321, 0x8180, 0, an=1) + b"\0\0\1\0\1\0\0\1\x2c\0\4\x7f\0\0\2"))
    # Cache encodings (what listans_decode reads back from Redis).
    for enc in (b"\0\3", b"\1\0", b"\2\1\x7f\0\0\2", b"\2\2\x7f\0\0\2\x7f\0\0\x0a",
                b"\2\0\0\4\3abc", b"\3\5", b"\5\0", b"\2\x11"):
        out.append((2, enc))
    return [bytes([sel]) + pkt for sel, pkt in out]


# -- PTR names -----------------------------------------------------------------

def ptrclass_seeds():
    out = []
    path = REPO / "tests" / "data" / "ptr" / "dev.tsv"
    rows = [line.split("\t") for line in path.read_text().splitlines()
            if line and not line.startswith("#")]
    for i, row in enumerate(rows[::6]):
        name, ip = row[0], row[1]
        level = i % 3
        addr = bytes(16)
        family_sel = 0
        if ip != "-":
            a = ipaddress.ip_address(ip)
            addr = (a.packed + bytes(16))[:16]
            family_sel = 1 if a.version == 4 else 2
        sel = level | family_sel << 2
        out.append(bytes([sel, (i * 37) % 208]) + addr + name.encode())
    for name in ("", ".", "a..b", "-x.example", "host_1.example.", "x" * 300,
                 "mail.example.com", "out203-205-221-155.mail.qq.com",
                 "2001-db8--1.dyn.example.net", "ABC.DYNAMIC.EXAMPLE"):
        out.append(bytes([1 | 1 << 2, 199]) + socket.inet_aton("203.205.221.155") +
                   bytes(12) + name.encode())
    return out


# -- configuration -------------------------------------------------------------

CONFIG_SNIPPETS = [
    "",
    "[server]\n",
    "[server]\nlisten = 127.0.0.1:5353, [::1]:5353\nzone = rblmux.internal\n"
    "threads = auto\nallow = 127.0.0.0/8, ::1/128\nuser = nobody\n"
    "tcp_idle = 10s\ntcp_max = 256\nudp_max_size = 1232\n"
    "rrl_rate = 100\nrrl_slip = 2\nrrl_exempt = 127.0.0.0/8, ::1/128\n",
    "[upstream]\nservers = 127.0.0.1:53, [::1]:53\ntimeout = 1500ms\ndeadline = 2s\n"
    "probe_interval = 60s\nmax_inflight = 100\n",
    "[scoring]\nthreshold = 5\non_incomplete = servfail\n",
    "[cache]\nredis = unix:/run/redis/redis.sock\nredis_password = x\nredis_db = 3\n"
    "key_prefix = rblmux:\nmemory = 256M\nmin_ttl = 60s\nmax_ttl = 1h\n"
    "error_ttl = 30s\nstale_ttl = 1h\n",
    "[source spamcop]\nzone = bl.spamcop.net\ntype = ip\nweight = 3\n"
    "codes = 127.0.0.2=3, 127.0.0.[4..7]=2\nerrors = 127.255.255.0/24\n"
    "timeout = 1s\nservers =\nenabled = yes\n",
    "[source dbl]\nzone = dbl.spamhaus.org\ntype = domain\nweight = 5\n",
    "[ptr]\nenabled = yes\nlevel = moderate\nweight = 2\nweight_no_ptr = 1\n"
    "weight_no_fcrdns = 1\n[spf]\nenabled = yes\nttl = 5m\n",
    "[server]\nlisten = nowhere\nunknown = 1\n[server]\n[source a]\n[source score]\n",
    "[cache]\nmin_ttl = 2h\nmax_ttl = 1h\nmemory = 99999999999G\n",
    "[source x]\nzone = bl.example\ncodes = 127.0.0.[9..2]=1, 10.0.0.1=3\n",
    "; comment\n# comment\n[server] ; trailing\nzone = a;b ; c\n",
    "[server]\r\nzone = crlf.example\r\n",
    "[server]\nallow = " + ", ".join(f"10.{i}.0.0/16" for i in range(70)) + "\n",
    "[server]\nzone = " + "a" * 5000 + "\n",
]


def config_seeds():
    out = [s.encode() for s in CONFIG_SNIPPETS]
    for path in (REPO / "etc" / "rblmux.conf", REPO / "tools" / "demo" / "rblmuxd.conf"):
        out.append(path.read_bytes())
    return out


def write(dirpath, seeds):
    dirpath.mkdir(parents=True, exist_ok=True)
    added = 0
    for data in seeds:
        path = dirpath / hashlib.sha1(data).hexdigest()
        if not path.exists():
            path.write_bytes(data)
            added += 1
    return added


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE))
    args = ap.parse_args()
    out = Path(args.out)
    for target, seeds in (("query", query_seeds()), ("listans", listans_seeds()),
                          ("ptrclass", ptrclass_seeds()), ("config", config_seeds())):
        n = write(out / target, seeds)
        print(f"{target}: {len(seeds)} seeds, {n} new")


if __name__ == "__main__":
    main()
