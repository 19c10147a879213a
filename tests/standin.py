#!/usr/bin/python3
"""standin: a fault-injecting stand-in DNS server for rblmux's black-box tests.

It serves DNSBL-style zones (entries: an address or a domain -> A codes and
TXT strings) and generic RRsets (PTR, A, AAAA, CNAME, MX, TXT... for reverse
DNS and SPF), over UDP and TCP (RFC 7766 framing, pipelined), and misbehaves
on demand, per zone, while it runs: it drops, delays, SERVFAILs, REFUSEs,
lists the world, echoes the question in the wrong letter case, answers
garbage, truncates, or answers a big TXT.

The question is echoed byte for byte as received (rblmuxd sends names in
random letter case and checks the echo); queries are counted per
(name lowercased, qtype).

Usage:
    standin.py [--address 127.0.0.1] [--port 0] [--control-port 0]
               [--spec FILE.json] [--zone ZONE]... [--entry ZONE/KEY=CODES[/TXT]]...

Once listening it prints one JSON line on stdout:
    {"address": "127.0.0.1", "port": 40211, "control": 40212}
(port: DNS over UDP and TCP; control: JSON lines over TCP, see Control).

Spec (JSON):
    {"zones": {
        "bl.example": {
            "type": "ip",               # "domain": entry keys are names
            "ttl": 300,                 # answers' TTL (default 300)
            "neg_ttl": 300,             # SOA TTL and MINIMUM (default: ttl)
            "mode": "normal",           # see MODES
            "delay_ms": 0,              # delay before every answer
            "bigtxt_size": 1000,        # bytes of TXT in mode bigtxt
            "entries": {                # relative to the zone
                "192.0.2.1": {"a": ["127.0.0.2"], "txt": "listed"},
                "2001:db8::1": ["127.0.0.2", "127.0.0.3"],
                "spam.example": {"a": ["127.0.0.2"], "ttl": 60}
            },
            "records": [                # generic RRsets
                {"name": "1.2.0.192.in-addr.arpa.", "type": "PTR",
                 "ttl": 60, "rdata": ["mail.example."]},
                {"name": "example.", "type": "TXT",
                 "rdata": [["v=spf1 ", "-all"]]},   # a TXT RR's strings
                {"name": "slow.example.", "type": "TIMEOUT"},      # all types
                {"name": "x.example.", "type": "TXT", "timeout": true}
            ]}}}

An entry key that parses as an IPv4 or IPv6 address is written in DNSBL form
(reversed octets, or 32 reversed nibbles); any other key is a domain name
relative to the zone. "txt" is a string (one TXT RR) or a list (one RR per
string). Record names ending in "." are absolute, others relative.

Control (one JSON object per line, one JSON answer per line):
    {"cmd": "ping"}
    {"cmd": "set", "zone": Z, "mode": M, "delay_ms": N, "ttl": N,
     "neg_ttl": N, "bigtxt_size": N}                 (any subset)
    {"cmd": "entries", "zone": Z, "entries": {...}, "replace": false}
    {"cmd": "remove", "zone": Z, "keys": [...]}
    {"cmd": "zone", "zone": Z, "spec": {...}}          (create or replace)
    {"cmd": "counts"} -> {"queries": [[name, type, received, answered], ...],
                          "outstanding": N, "max_outstanding": N,
                          "received": N, "answered": N}
    {"cmd": "reset"}                                    (zero the counters)
    {"cmd": "log", "n": 100} -> {"names": [[qname as received, type], ...]}
"""

import argparse
import asyncio
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import traceback
from collections import defaultdict, deque

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

MODES = ("normal", "drop", "servfail", "refused", "wildcard", "wrongcase",
         "garbage", "truncate", "bigtxt")

LOG_KEEP = 2000
CNAME_CHAIN_MAX = 8


def dnsbl_key(key, origin, domain=False):
    """The absolute name of an entry key (address or relative domain)."""
    try:
        if domain:
            raise ValueError("a domain list's keys are names")
        addr = ipaddress.ip_address(key)
    except ValueError:
        if key.endswith("."):
            raise ValueError(f"entry key {key!r} must be relative to the zone")
        return dns.name.from_text(key, origin=origin)
    if addr.version == 4:
        labels = str(addr).split(".")[::-1]
    else:
        labels = list(addr.exploded.replace(":", ""))[::-1]
    return dns.name.from_text(".".join(labels), origin=origin)


def big_txt_strings(size):
    """The character-strings of the TXT that mode bigtxt answers (size bytes)."""
    out, i = [], 0
    while size > 0:
        chunk = min(size, 250)
        out.append((f"part{i:02d}-" + "x" * 250)[:chunk])
        size -= chunk
        i += 1
    return out


def _txt_rdata(strings):
    data = [s.encode() if isinstance(s, str) else bytes(s) for s in strings]
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, data)


def _parse_entry(value):
    """(a codes, [txt RR strings lists], ttl or None) from an entry's spec."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value = {"a": value}
    codes = value.get("a", ["127.0.0.2"])
    if isinstance(codes, str):
        codes = [codes]
    for c in codes:
        ipaddress.IPv4Address(c)
    txt = value.get("txt")
    if txt is None:
        txts = []
    elif isinstance(txt, str):
        txts = [[txt]]
    else:
        txts = [[t] if isinstance(t, str) else list(t) for t in txt]
    return {"a": list(codes), "txt": txts, "ttl": value.get("ttl")}


class Zone:
    def __init__(self, name, spec):
        self.origin = dns.name.from_text(name)
        self.domain = spec.get("type", "ip") == "domain"
        self.ttl = int(spec.get("ttl", 300))
        self.neg_ttl = int(spec.get("neg_ttl", self.ttl))
        self.mode = "normal"
        self.delay_ms = 0
        self.bigtxt_size = 1000
        self.entries = {}
        self.records = defaultdict(dict)   # name -> rdtype -> (ttl, [rdata])
        self.timeouts = set()              # (name, rdtype or None)
        self.names = set()                 # every name with data, for ENTs
        self.configure(spec)
        self.set_entries(spec.get("entries", {}))
        for rec in spec.get("records", []):
            self.add_record(rec)

    def configure(self, spec):
        if "mode" in spec:
            if spec["mode"] not in MODES:
                raise ValueError(f"unknown mode {spec['mode']!r}")
            self.mode = spec["mode"]
        for key in ("ttl", "neg_ttl", "delay_ms", "bigtxt_size"):
            if key in spec and spec[key] is not None:
                setattr(self, key, int(spec[key]))

    def set_entries(self, entries, replace=False):
        if replace:
            self.entries = {}
        for key, value in entries.items():
            name = dnsbl_key(key, self.origin, self.domain)
            self.entries[name] = _parse_entry(value)
            self.names.add(name)

    def remove_entries(self, keys):
        for key in keys:
            name = dnsbl_key(key, self.origin, self.domain)
            self.entries.pop(name, None)
            self.names.discard(name)

    def add_record(self, rec):
        name = dns.name.from_text(rec["name"], origin=self.origin)
        self.names.add(name)
        if rec["type"].upper() == "TIMEOUT":
            self.timeouts.add((name, None))
            return
        rdtype = dns.rdatatype.from_text(rec["type"])
        if rec.get("timeout"):
            self.timeouts.add((name, rdtype))
            return
        rdatas = []
        for item in rec.get("rdata", []):
            if rdtype in (dns.rdatatype.TXT, dns.rdatatype.SPF) and not isinstance(item, str):
                rd = _txt_rdata(item)
                if rdtype == dns.rdatatype.SPF:
                    rd = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, rd.to_wire(), 0,
                                             len(rd.to_wire()))
                rdatas.append(rd)
            else:
                rdatas.append(dns.rdata.from_text(dns.rdataclass.IN, rdtype, item,
                                                  origin=self.origin, relativize=False))
        ttl = int(rec.get("ttl", self.ttl))
        old = self.records[name].get(rdtype)
        if old:
            rdatas = old[1] + rdatas
        self.records[name][rdtype] = (ttl, rdatas)

    def soa_rrset(self, owner=None):
        rr = dns.rrset.from_text(
            owner or self.origin, self.neg_ttl, "IN", "SOA",
            f"ns.{self.origin} hostmaster.{self.origin} 1 3600 600 86400 {self.neg_ttl}")
        return rr

    def is_ent(self, qname):
        return any(n != qname and n.is_subdomain(qname) for n in self.names)


class Standin:
    def __init__(self):
        self.zones = {}
        self.reset()

    def reset(self):
        self.received = defaultdict(int)
        self.answered = defaultdict(int)
        self.outstanding = 0
        self.max_outstanding = 0
        self.total_received = 0
        self.total_answered = 0
        self.log = deque(maxlen=LOG_KEEP)

    # -- zones and data --------------------------------------------------

    def load_spec(self, spec):
        for name, zspec in spec.get("zones", {}).items():
            self.zones[dns.name.from_text(name)] = Zone(name, zspec)

    def zone_of(self, qname):
        best = None
        for origin, zone in self.zones.items():
            if qname.is_subdomain(origin):
                if best is None or len(origin) > len(best.origin):
                    best = zone
        return best

    def zone_named(self, name):
        zone = self.zones.get(dns.name.from_text(name))
        if zone is None:
            raise KeyError(f"no zone {name}")
        return zone

    # -- answering -------------------------------------------------------

    def count_key(self, qname, qtype):
        return (qname.to_text().lower(), dns.rdatatype.to_text(qtype))

    def lookup(self, zone, qname, qtype, response, depth=0):
        """Fill response for qname/qtype from zone's data; returns False to drop."""
        owner = qname
        if zone.mode == "wildcard" and qname != zone.origin:
            if qtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                response.answer.append(dns.rrset.from_text(owner, zone.ttl, "IN", "A", "127.0.0.2"))
            elif qtype == dns.rdatatype.TXT:
                response.answer.append(dns.rrset.from_text(
                    owner, zone.ttl, "IN", "TXT", '"wildcard: lists the world"'))
            else:
                response.authority.append(zone.soa_rrset())
            return True
        if (qname, None) in zone.timeouts or (qname, qtype) in zone.timeouts:
            return False

        recs = zone.records.get(qname)
        if recs:
            if qtype in recs:
                ttl, rdatas = recs[qtype]
                response.answer.append(dns.rrset.from_rdata_list(owner, ttl, rdatas))
                return True
            if dns.rdatatype.CNAME in recs:
                ttl, rdatas = recs[dns.rdatatype.CNAME]
                response.answer.append(dns.rrset.from_rdata_list(owner, ttl, rdatas))
                target = rdatas[0].target
                target_zone = self.zone_of(target)
                if target_zone is None:
                    return True
                if depth >= CNAME_CHAIN_MAX:
                    response.set_rcode(dns.rcode.SERVFAIL)
                    response.answer.clear()
                    return True
                return self.lookup(target_zone, target, qtype, response, depth + 1)
            if qtype == dns.rdatatype.ANY:
                for rdtype, (ttl, rdatas) in recs.items():
                    response.answer.append(dns.rrset.from_rdata_list(owner, ttl, rdatas))
                return True

        entry = zone.entries.get(qname)
        if entry is not None:
            ttl = entry["ttl"] if entry["ttl"] is not None else zone.ttl
            if qtype in (dns.rdatatype.A, dns.rdatatype.ANY) and entry["a"]:
                response.answer.append(dns.rrset.from_text_list(owner, ttl, "IN", "A", entry["a"]))
            if qtype in (dns.rdatatype.TXT, dns.rdatatype.ANY):
                if zone.mode == "bigtxt":
                    txts = [big_txt_strings(zone.bigtxt_size)]
                else:
                    txts = entry["txt"]
                if txts:
                    response.answer.append(dns.rrset.from_rdata_list(
                        owner, ttl, [_txt_rdata(t) for t in txts]))
            if not response.answer:
                response.authority.append(zone.soa_rrset())
            return True

        if qname == zone.origin:
            if qtype in (dns.rdatatype.SOA, dns.rdatatype.ANY):
                response.answer.append(zone.soa_rrset(owner))
            elif qtype == dns.rdatatype.NS:
                response.answer.append(dns.rrset.from_text(owner, zone.ttl, "IN", "NS",
                                                           f"ns.{zone.origin}"))
            else:
                response.authority.append(zone.soa_rrset())
            return True
        if recs or zone.is_ent(qname):
            response.authority.append(zone.soa_rrset())
            return True
        if depth == 0:
            response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(zone.soa_rrset())
        return True

    def answer(self, wire, udp):
        """((count key, response bytes) or None, delay seconds) for one query."""
        try:
            return self._answer(wire, udp)
        except Exception:
            # A bug here must show in the log, and must not stop the server.
            traceback.print_exc()
            if len(wire) < 12:
                return None, 0
            flags = 0x8000 | dns.rcode.SERVFAIL
            return (None, wire[:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0)), 0

    def _answer(self, wire, udp):
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            if len(wire) < 12:
                return None, 0
            # Echo the ID; FORMERR, no sections.
            flags = 0x8000 | (wire[2] & 0x78) << 8 | dns.rcode.FORMERR
            return (None, wire[:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0)), 0
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY
                               else dns.rcode.FORMERR)
            return (None, response.to_wire()), 0
        q = query.question[0]
        qname, qtype = q.name, q.rdtype
        key = self.count_key(qname, qtype)
        self.received[key] += 1
        self.total_received += 1
        self.log.append((qname.to_text(), key[1]))
        zone = self.zone_of(qname)
        response = dns.message.make_response(query)
        response.flags &= ~dns.flags.RA
        delay = (zone.delay_ms / 1000.0) if zone else 0
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return self.finish(key, response, query, udp), delay
        if zone.mode == "drop":
            return None, 0
        if zone.mode == "garbage":
            junk = wire[:2] + b"\x81\x80\x00\x01\x00\x05\x00\x00\x00\x00" + os.urandom(24)
            return (key, junk), delay
        response.flags |= dns.flags.AA
        if zone.mode == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
            response.flags &= ~dns.flags.AA
            return self.finish(key, response, query, udp), delay
        if zone.mode == "refused":
            response.set_rcode(dns.rcode.REFUSED)
            response.flags &= ~dns.flags.AA
            return self.finish(key, response, query, udp), delay
        if zone.mode == "truncate" and udp:
            response.flags |= dns.flags.TC
            return self.finish(key, response, query, udp), delay
        if zone.mode == "wrongcase":
            swapped = dns.name.from_text(qname.to_text().swapcase())
            response.question = [dns.rrset.RRset(swapped, q.rdclass, qtype)]
            qname = swapped
        if not self.lookup(zone, qname, qtype, response):
            return None, 0
        return self.finish(key, response, query, udp), delay

    def finish(self, key, response, query, udp):
        limit = 65535
        if udp:
            limit = max(512, query.payload) if query.edns >= 0 else 512
        try:
            wire = response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.authority.clear()
            response.additional.clear()
            response.flags |= dns.flags.TC
            wire = response.to_wire(max_size=limit)
        return key, wire

    def sent(self, key):
        if key is None:
            return
        self.answered[key] += 1
        self.total_answered += 1

    # -- control ---------------------------------------------------------

    def control(self, req):
        cmd = req.get("cmd")
        if cmd == "ping":
            return {"ok": True}
        if cmd == "set":
            self.zone_named(req["zone"]).configure(req)
            return {"ok": True}
        if cmd == "entries":
            self.zone_named(req["zone"]).set_entries(req.get("entries", {}),
                                                     bool(req.get("replace")))
            return {"ok": True}
        if cmd == "remove":
            self.zone_named(req["zone"]).remove_entries(req.get("keys", []))
            return {"ok": True}
        if cmd == "zone":
            self.zones[dns.name.from_text(req["zone"])] = Zone(req["zone"], req.get("spec", {}))
            return {"ok": True}
        if cmd == "counts":
            keys = sorted(set(self.received) | set(self.answered))
            return {"ok": True,
                    "queries": [[n, t, self.received[(n, t)], self.answered[(n, t)]]
                                for n, t in keys],
                    "outstanding": self.outstanding,
                    "max_outstanding": self.max_outstanding,
                    "received": self.total_received,
                    "answered": self.total_answered}
        if cmd == "reset":
            self.reset()
            return {"ok": True}
        if cmd == "log":
            n = int(req.get("n", 100))
            return {"ok": True, "names": list(self.log)[-n:]}
        return {"ok": False, "error": f"unknown command {cmd!r}"}


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, standin):
        self.standin = standin
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        result, delay = self.standin.answer(data, udp=True)
        if result is None:
            return
        send = lambda: self.transport.sendto(result[1], addr)
        schedule(self.standin, result[0], send, delay)


def schedule(standin, key, send, delay):
    """Send now, or after delay while counting the query as outstanding."""
    def fire():
        standin.outstanding -= 1
        send()
        standin.sent(key)
    if delay <= 0:
        send()
        standin.sent(key)
        return
    standin.outstanding += 1
    standin.max_outstanding = max(standin.max_outstanding, standin.outstanding)
    asyncio.get_running_loop().call_later(delay, fire)


async def serve_tcp(standin, reader, writer):
    def send_framed(wire):
        if not writer.is_closing():
            writer.write(struct.pack("!H", len(wire)) + wire)
    try:
        while True:
            head = await reader.readexactly(2)
            (length,) = struct.unpack("!H", head)
            data = await reader.readexactly(length)
            result, delay = standin.answer(data, udp=False)
            if result is None:
                continue
            wire = result[1]
            schedule(standin, result[0], lambda w=wire: send_framed(w), delay)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve_control(standin, reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            try:
                reply = standin.control(json.loads(line))
            except Exception as e:  # a bad request must not stop the server
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def bind_pair(address, port):
    """A UDP and a TCP socket bound to the same port (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for _ in range(50):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((address, port))
        chosen = udp.getsockname()[1]
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((address, chosen))
        except OSError:
            udp.close()
            tcp.close()
            if port:
                raise
            continue
        tcp.listen(128)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        return udp, tcp, chosen
    raise OSError("no free port for UDP and TCP")


def parse_cli_entry(text):
    """ZONE/KEY=CODE[,CODE][/TXT] -> (zone, key, entry spec)."""
    zone, rest = text.split("/", 1)
    key, value = rest.split("=", 1)
    codes, _, txt = value.partition("/")
    entry = {"a": codes.split(",")}
    if txt:
        entry["txt"] = txt
    return zone, key, entry


async def main_async(args):
    standin = Standin()
    spec = {"zones": {}}
    if args.spec:
        with open(args.spec) as f:
            spec = json.load(f)
    for z in args.zone or []:
        spec["zones"].setdefault(z, {})
    for e in args.entry or []:
        zone, key, entry = parse_cli_entry(e)
        spec["zones"].setdefault(zone, {}).setdefault("entries", {})[key] = entry
    standin.load_spec(spec)

    loop = asyncio.get_running_loop()
    udp_sock, tcp_sock, port = bind_pair(args.address, args.port)
    await loop.create_datagram_endpoint(lambda: UdpProtocol(standin), sock=udp_sock)
    await asyncio.start_server(lambda r, w: serve_tcp(standin, r, w), sock=tcp_sock)
    ctl = await asyncio.start_server(lambda r, w: serve_control(standin, r, w),
                                     host=args.address, port=args.control_port)
    cport = ctl.sockets[0].getsockname()[1]
    print(json.dumps({"address": args.address, "port": port, "control": cport}), flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--spec", help="JSON spec file")
    ap.add_argument("--zone", action="append", help="an empty zone")
    ap.add_argument("--entry", action="append", help="ZONE/KEY=CODE[,CODE][/TXT]")
    args = ap.parse_args()
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
