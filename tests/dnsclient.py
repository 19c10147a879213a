"""dnsclient: the black-box tests' DNS client (dnspython, bounded waits)."""

import ipaddress
import socket
import struct

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype

TIMEOUT = 3.0


def rev(addr):
    """An address in DNSBL form: reversed octets, or 32 reversed nibbles."""
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        return ".".join(str(ip).split(".")[::-1])
    return ".".join(ip.exploded.replace(":", "")[::-1])


def make_query(name, rdtype="A", edns=None, rd=True, qid=None):
    """A query; edns None sends no OPT record, an int is the UDP payload size."""
    if edns is None:
        q = dns.message.make_query(name, rdtype, use_edns=False)
    else:
        q = dns.message.make_query(name, rdtype, use_edns=0, payload=edns)
    if not rd:
        q.flags &= ~dns.flags.RD
    if qid is not None:
        q.id = qid
    return q


def query(name, rdtype="A", port=53, host="127.0.0.1", tcp=False, timeout=TIMEOUT,
          source=None, edns=None, q=None):
    """Ask one question over UDP (no retry, no TCP fallback) or TCP."""
    if q is None:
        q = make_query(name, rdtype, edns=edns)
    if tcp:
        return dns.query.tcp(q, host, timeout=timeout, port=port, source=source)
    return dns.query.udp(q, host, timeout=timeout, port=port, source=source,
                         ignore_unexpected=True, raise_on_truncation=False)


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def raw_udp(data, port, host="127.0.0.1", timeout=1.0, source=None):
    """Send raw bytes; the first datagram back, or None when none came in time."""
    with socket.socket(_family(host), socket.SOCK_DGRAM) as s:
        if source:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.sendto(data, (host, port))
        try:
            return s.recvfrom(65535)[0]
        except socket.timeout:
            return None


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def tcp_connect(port, host="127.0.0.1", timeout=TIMEOUT):
    s = socket.create_connection((host, port), timeout=timeout)
    s.settimeout(timeout)
    return s


def tcp_send(sock, wire):
    sock.sendall(struct.pack("!H", len(wire)) + wire)


def tcp_recv(sock):
    """One length-prefixed message, or None when the peer closed."""
    head = recv_exact(sock, 2)
    if head is None:
        return None
    (length,) = struct.unpack("!H", head)
    return recv_exact(sock, length)


def wait_closed(sock, timeout):
    """True when the peer closes sock within timeout (reads and drops data)."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


# -- reading answers ------------------------------------------------------

def rcode(msg):
    return msg.rcode()


def rcode_text(msg):
    return dns.rcode.to_text(msg.rcode())


def rrsets(msg, rdtype, section="answer"):
    t = dns.rdatatype.from_text(rdtype) if isinstance(rdtype, str) else rdtype
    return [r for r in getattr(msg, section) if r.rdtype == t]


def a_set(msg):
    return {rd.address for r in rrsets(msg, "A") for rd in r}


def txt_strings(msg):
    """Each TXT RR in the answer as the tuple of its character-strings (text)."""
    return [tuple(s.decode("utf-8", "replace") for s in rd.strings)
            for r in rrsets(msg, "TXT") for rd in r]


def txt_text(msg):
    """All TXT strings of the answer joined with spaces (for substring checks)."""
    return " ".join("".join(t) for t in txt_strings(msg))


def soa(msg):
    """The SOA in the authority section: (rrset, rdata), or (None, None)."""
    found = rrsets(msg, "SOA", "authority")
    if not found:
        return None, None
    return found[0], found[0][0]


def is_nodata(msg):
    return msg.rcode() == dns.rcode.NOERROR and not msg.answer


def answer_ttls(msg):
    return [r.ttl for r in msg.answer]


def status_query(qid=0x4242):
    """A STATUS (opcode 2) message with one question."""
    q = make_query("rblmux.internal.", "SOA", qid=qid)
    q.set_opcode(dns.opcode.STATUS)
    return q
