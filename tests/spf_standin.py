"""spf_standin: the openspf RFC 7208 suite as data for tests/standin.py.

Reads tests/data/spf/rfc7208-tests.yml (format: FORMAT.md beside it) and
turns each scenario's zone data into stand-in zones (one per top-level
label), the way pyspf's test driver serves them:

- an `SPF` entry is type 99 and is also served as `TXT` unless the name has
  an explicit `TXT` entry (`TXT: NONE` included, which serves nothing);
- a bare `TIMEOUT` makes every type that has no record listed before it
  time out (the stand-in drops those questions), and ends the name's list;
  `TYPE: TIMEOUT` times out that type (for `SPF`, the TXT copy too);
- TXT strings are UTF-8 encoded; an RR given as `[]` is served as one empty
  string (the same record for SPF: nothing).

Everything is served from one root zone, so that any name the data does not
list is NXDOMAIN (as in pyspf's driver), whatever its top-level label: run as
a program, this file is tests/standin.py with a SOA that suits the root
(`SpfStandin` starts it like harness.Standin).

It also builds the question rblmuxd is asked for a suite test, the SPEC's
`<ip>.<domain>.<local-part>._l.spf.<apex>` (or `<ip>.<domain>.spf.<apex>` for
an empty local part), and reads the Received-SPF TXT answer.
"""

import ipaddress
import json
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dns.name
import dns.rrset
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dnsclient  # noqa: E402
import harness  # noqa: E402

SUITE = Path(__file__).resolve().parent / "data" / "spf" / "rfc7208-tests.yml"
KNOWN_FAILURES = SUITE.parent / "KNOWN-FAILURES.md"
TYPES = ("A", "AAAA", "MX", "PTR", "TXT", "SPF")
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror", "temperror")
TTL = 300


@dataclass
class Case:
    name: str
    scenario: int
    host: str
    local_part: str        # "" for "@domain"
    domain: str
    helo: str
    results: list          # acceptable results, preferred first
    explanation: str = None
    spec: str = ""
    extra: dict = field(default_factory=dict)


def load(path=SUITE):
    """The scenarios, as yaml.safe_load_all reads them (from bytes)."""
    with open(path, "rb") as f:
        return list(yaml.safe_load_all(f))


def cases(scenarios):
    out = []
    for i, sc in enumerate(scenarios):
        for name, t in sc["tests"].items():
            mailfrom = t["mailfrom"]
            if mailfrom == "":
                local, domain = "postmaster", t["helo"]
            else:
                local, _, domain = mailfrom.rpartition("@")
            results = t["result"] if isinstance(t["result"], list) else [t["result"]]
            out.append(Case(name, i, t["host"], local, domain, t["helo"], results,
                            t.get("explanation"), str(t.get("spec", ""))))
    return out


def _fqdn(name):
    return name if name.endswith(".") else name + "."


def _txt_strings(value):
    """One RR's character-strings, each at most 255 bytes of UTF-8."""
    if value is None or value == []:
        return [""]
    if isinstance(value, str):
        value = [value]
    out = []
    for s in value:
        while len(s.encode()) > 255:
            cut = 255
            while len(s[:cut].encode()) > 255:
                cut -= 1
            out.append(s[:cut])
            s = s[cut:]
        out.append(s)
    return out


def _rdata(rtype, value):
    if rtype in ("TXT", "SPF"):
        return _txt_strings(value)
    if rtype == "MX":
        pref, exchange = value
        return f"{int(pref)} {_fqdn(exchange) if exchange else '.'}"
    if rtype in ("PTR", "CNAME"):
        return _fqdn(str(value))
    return str(value)


def records_for(name, entries):
    """Stand-in records for one zonedata name."""
    fq = _fqdn(name)
    explicit_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
    recs, seen, copies = [], set(), []
    ended = False
    for e in entries:
        if e == "TIMEOUT":
            for t in TYPES:
                if t not in seen:
                    recs.append({"name": fq, "type": t, "timeout": True})
            ended = True
            break
        ((rtype, value),) = e.items()
        if value == "TIMEOUT":
            recs.append({"name": fq, "type": rtype, "timeout": True})
            if rtype == "SPF" and not explicit_txt:
                recs.append({"name": fq, "type": "TXT", "timeout": True})
            continue
        if rtype == "TXT" and value == "NONE":
            continue
        recs.append({"name": fq, "type": rtype, "ttl": TTL, "rdata": [_rdata(rtype, value)]})
        seen.add(rtype)
        if rtype == "SPF" and not explicit_txt:
            copies.append({"name": fq, "type": "TXT", "ttl": TTL,
                           "rdata": [_rdata("TXT", value)]})
    if not ended:
        recs += copies
    if not recs:
        # Listed without records: the name exists (NODATA for what SPF asks).
        recs.append({"name": fq, "type": "HINFO", "ttl": TTL,
                     "rdata": ['"rblmux" "exists"']})
    return recs


def zone(zonedata):
    """The stand-in spec of the root zone serving one scenario."""
    records = []
    for name, entries in (zonedata or {}).items():
        records += records_for(name, entries)
    return {"ttl": TTL, "neg_ttl": TTL, "records": records}


ROOT = "."


class SpfStandin(harness.Standin):
    """This file run as the stand-in, with one (root) zone; control as
    harness.Standin. load() serves a scenario's zone data."""

    def __init__(self, workdir, zonedata=None, address="127.0.0.1"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        spec_path = self.workdir / "standin.json"
        spec_path.write_text(json.dumps({"zones": {ROOT: zone(zonedata)}}))
        self.proc = harness.Proc("spf-standin", [harness.PYTHON, Path(__file__).resolve(),
                                                 "--address", address, "--spec", spec_path],
                                 self.workdir, stdout=subprocess.PIPE)
        self.address = address
        line = self._read_line(harness.START_TIMEOUT)
        if not line:
            self.proc.stop()
            raise RuntimeError("SPF stand-in did not start:\n" + self.proc.log())
        info = json.loads(line)
        self.port = info["port"]
        self.control_port = info["control"]
        self.ctl = socket.create_connection((address, self.control_port), timeout=5)
        self.ctl_file = self.ctl.makefile("rwb")

    def load(self, zonedata):
        """Serve zonedata (and nothing else) from now on."""
        self.command(cmd="zone", zone=ROOT, spec=zone(zonedata))


# -- asking ------------------------------------------------------------------

def client_ip(host):
    """The address as rblmuxd will show it: IPv4-mapped IPv6 as IPv4."""
    ip = ipaddress.ip_address(host)
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


def question(case, apex, rev_host=None):
    """The spf. view's question for a case, or None when the SPEC's name form
    cannot carry it (an empty label, a label over 63 bytes, a name over 255
    bytes). rev_host: the address to put in the name (default the case's)."""
    host = rev_host or case.host
    labels = [s.encode() for s in dnsclient.rev(host).split(".")]
    domain = case.domain[:-1] if case.domain.endswith(".") else case.domain
    dlabels = domain.split(".")
    if any(not label or len(label.encode()) > 63 for label in dlabels):
        return None
    labels += [label.encode() for label in dlabels]
    if case.local_part:
        lp = case.local_part.encode()
        if len(lp) > 63:
            return None
        labels += [lp, b"_l"]
    labels += [b"spf"] + [label.encode() for label in apex.split(".")] + [b""]
    try:
        return dns.name.Name(labels)
    except dns.name.NameTooLong:
        return None


_TXT = re.compile(r"^([a-z]+) \((.*)\)$", re.S)


def parse_txt(text):
    """(result, comment) of a Received-SPF value 'result (comment)', the
    comment's quoted-pairs undone; (None, None) when it is not one."""
    m = _TXT.match(text)
    if not m or m.group(1) not in RESULTS:
        return None, None
    return m.group(1), re.sub(r"\\(.)", r"\1", m.group(2))


def default_explanation(case):
    """rblmux's comment for a fail without the domain's own explanation."""
    domain = case.domain.rstrip(".").lower()
    return f"{domain}: {client_ip(case.host)} is not a permitted sender"


def known_failures(path=KNOWN_FAILURES):
    """{test name: reason} from KNOWN-FAILURES.md's '- `name`: reason' lines."""
    out = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for m in re.finditer(r"^- `([^`]+)`: (.+)$", text, re.M):
        out[m.group(1)] = m.group(2)
    return out


def serve():
    """tests/standin.py, with a SOA record that a root zone can carry."""
    import standin
    plain = standin.Zone.soa_rrset

    def soa_rrset(self, owner=None):
        if self.origin != dns.name.root:
            return plain(self, owner)
        return dns.rrset.from_text(owner or self.origin, self.neg_ttl, "IN", "SOA",
                                   "ns.invalid. hostmaster.invalid. 1 3600 600 86400 "
                                   f"{self.neg_ttl}")
    standin.Zone.soa_rrset = soa_rrset
    return standin.main()


if __name__ == "__main__":
    sys.exit(serve())
