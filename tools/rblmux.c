/*
 * rblmux: the command-line tool of rblmux.
 *
 *   rblmux check IP [--domain D] [-s SERVER] [-p PORT] [-z ZONE]
 *
 * Asks a running rblmuxd over DNS, the way a mail server does, and prints
 * what each list answered, the weight it added, where the answer came from
 * (cache or list, from rblmuxd's EDNS diagnostics option) and its latency,
 * then the verdict. A CLI may block: plain sockets with a timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zones/dnswire.h"
#include "zones/qname.h"

#define TIMEOUT_MS 3000
#define MAX_SOURCES 64

struct opts {
	const char *server;
	int port;
	const char *zone;
	const char *domain;
	bool json;
};

struct answer {
	int rcode;          /* -1: no answer */
	unsigned n_a;
	uint8_t a[16][4];
	char txt[1024];     /* TXT strings joined by " | " */
	char diag[256];
	uint32_t ttl;
	double ms;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A query with EDNS and an empty diagnostics option appended to the OPT
 * record dnswire_build_query wrote last. */
static int build_query(uint8_t *buf, size_t cap, const uint8_t *name, size_t len,
		       uint16_t qtype, uint16_t id)
{
	int n = dnswire_build_query(buf, cap, name, len, qtype, 1232);
	if (n < 0 || (size_t)n + 4 > cap)
		return -ENOSPC;
	buf[0] = (uint8_t)(id >> 8);
	buf[1] = (uint8_t)id;
	buf[n - 2] = 0;
	buf[n - 1] = 4;
	buf[n] = DNSWIRE_EDNS_OPT_DIAG >> 8;
	buf[n + 1] = DNSWIRE_EDNS_OPT_DIAG & 0xff;
	buf[n + 2] = 0;
	buf[n + 3] = 0;
	return n + 4;
}

/* Every character-string of every TXT record, joined by " | ". */
static void append_txt(struct answer *a, const uint8_t *rd, size_t rdlen)
{
	size_t used = strlen(a->txt);
	for (size_t off = 0; off < rdlen && used < sizeof(a->txt) - 4;) {
		size_t l = rd[off++];
		if (used)
			used += (size_t)snprintf(a->txt + used, sizeof(a->txt) - used, " | ");
		for (size_t i = 0; i < l && off + i < rdlen && used < sizeof(a->txt) - 1; i++)
			a->txt[used++] = (rd[off + i] >= 32 && rd[off + i] < 127) ? (char)rd[off + i] : '?';
		off += l;
	}
	a->txt[used] = '\0';
}

static void parse_opt(struct answer *a, const struct dnswire_rr *rr)
{
	for (size_t off = 0; off + 4 <= rr->rdlen;) {
		uint16_t code = (uint16_t)(rr->rdata[off] << 8 | rr->rdata[off + 1]);
		uint16_t olen = (uint16_t)(rr->rdata[off + 2] << 8 | rr->rdata[off + 3]);
		if (off + 4 + olen > rr->rdlen)
			return;
		if (code == DNSWIRE_EDNS_OPT_DIAG) {
			size_t l = olen < sizeof(a->diag) - 1 ? olen : sizeof(a->diag) - 1;
			memcpy(a->diag, rr->rdata + off + 4, l);
			a->diag[l] = '\0';
		}
		off += 4u + olen;
	}
}

static int parse_answer(const uint8_t *pkt, size_t len, uint16_t id, struct answer *a)
{
	struct dnswire_reader r;
	struct dnswire_rr rr;
	if (dnswire_reader_init(&r, pkt, len) < 0 || r.id != id || !(r.flags & DNS_F_QR))
		return -EBADMSG;
	a->rcode = r.flags & 0x0f;
	int rc;
	while ((rc = dnswire_reader_next(&r, &rr)) == 1) {
		if (rr.section == DNSWIRE_AN && rr.type == DNS_T_A && rr.rdlen == 4 && a->n_a < 16) {
			memcpy(a->a[a->n_a++], rr.rdata, 4);
			a->ttl = rr.ttl;
		} else if (rr.section == DNSWIRE_AN && rr.type == DNS_T_TXT) {
			append_txt(a, rr.rdata, rr.rdlen);
			a->ttl = rr.ttl;
		} else if (rr.section == DNSWIRE_AR && rr.type == DNS_T_OPT) {
			parse_opt(a, &rr);
		}
	}
	return rc < 0 ? -EBADMSG : 0;
}

/* One question over UDP, retried over TCP when truncated. */
static int ask(const struct opts *o, const uint8_t *name, size_t name_len,
	       uint16_t qtype, struct answer *a)
{
	memset(a, 0, sizeof(*a));
	a->rcode = -1;
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, o->server, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)o->port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, o->server, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)o->port);
		sl = sizeof(*s6);
	} else {
		return -EINVAL;
	}
	uint16_t id;
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint16_t)getpid();
	uint8_t q[600], resp[65536];
	int qlen = build_query(q, sizeof(q), name, name_len, qtype, id);
	if (qlen < 0)
		return qlen;
	double t0 = now_ms();
	int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0)
		return -errno;
	ssize_t n = -1;
	if (sendto(fd, q, (size_t)qlen, 0, (struct sockaddr *)&ss, sl) == qlen) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, TIMEOUT_MS) == 1)
			n = recv(fd, resp, sizeof(resp), 0);
	}
	close(fd);
	if (n >= DNSWIRE_HEADER_LEN && (resp[2] & 0x02)) {
		/* Truncated: the same question over TCP. */
		n = -1;
		fd = socket(ss.ss_family, SOCK_STREAM, 0);
		uint8_t lenbuf[2] = { (uint8_t)(qlen >> 8), (uint8_t)qlen };
		if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, sl) == 0 &&
		    write(fd, lenbuf, 2) == 2 && write(fd, q, (size_t)qlen) == qlen &&
		    recv(fd, lenbuf, 2, MSG_WAITALL) == 2) {
			size_t want = (size_t)lenbuf[0] << 8 | lenbuf[1];
			n = recv(fd, resp, want, MSG_WAITALL);
		}
		if (fd >= 0)
			close(fd);
	}
	a->ms = now_ms() - t0;
	if (n < DNSWIRE_HEADER_LEN)
		return -ETIMEDOUT;
	return parse_answer(resp, (size_t)n, id, a);
}

static int zone_name(const char *prefix, const struct opts *o, uint8_t *out, size_t cap)
{
	char text[600];
	snprintf(text, sizeof(text), "%s%s%s", prefix, prefix[0] ? "." : "", o->zone);
	return dnswire_name_from_text(text, out, cap);
}

static const char *rcode_name(int rc)
{
	static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
					     "NOTIMP", "REFUSED" };
	if (rc < 0)
		return "no answer";
	return rc < 6 ? names[rc] : "rcode?";
}

/* The diagnostics of a verdict: "name=tier:latencyus:ttlN ..." per list. */
static bool diag_for(const char *diag, const char *source, char *tier, size_t tcap,
		     unsigned long long *lat_us)
{
	size_t sl = strlen(source);
	for (const char *p = diag; p && *p;) {
		if (strncmp(p, source, sl) == 0 && p[sl] == '=') {
			const char *v = p + sl + 1;
			size_t i = 0;
			while (v[i] && v[i] != ':' && v[i] != ' ' && i + 1 < tcap) {
				tier[i] = v[i];
				i++;
			}
			tier[i] = '\0';
			*lat_us = v[i] == ':' ? strtoull(v + i + 1, NULL, 10) : 0;
			return true;
		}
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return false;
}

/* The weight a list added, from the verdict TXT ("name 127.0.0.2 +3"). */
static bool weight_for(const char *txt, const char *source, char *out, size_t cap)
{
	size_t sl = strlen(source);
	for (const char *p = strstr(txt, source); p; p = strstr(p + 1, source)) {
		bool start = p == txt || p[-1] == ' ' || p[-1] == ',';
		if (!start || p[sl] != ' ')
			continue;
		const char *w = strchr(p + sl + 1, ' ');
		if (w && (w[1] == '+' || w[1] == '-')) {
			size_t i = 0;
			for (w++; *w && *w != ',' && *w != ';' && *w != ' ' && i + 1 < cap; w++)
				out[i++] = *w;
			out[i] = '\0';
			return true;
		}
	}
	return false;
}

static void format_codes(const struct answer *a, char *out, size_t cap)
{
	if (a->rcode == 3 || (a->rcode == 0 && a->n_a == 0)) {
		snprintf(out, cap, "not listed");
		return;
	}
	if (a->rcode != 0) {
		snprintf(out, cap, "failed (%s)", rcode_name(a->rcode));
		return;
	}
	size_t n = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < a->n_a && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%u.%u.%u.%u", i ? "," : "",
				      a->a[i][0], a->a[i][1], a->a[i][2], a->a[i][3]);
}

static int ip_prefix(const char *ip, char *out, size_t cap)
{
	struct qname_addr addr;
	memset(&addr, 0, sizeof(addr));
	if (inet_pton(AF_INET, ip, addr.addr) == 1)
		addr.family = AF_INET;
	else if (inet_pton(AF_INET6, ip, addr.addr) == 1)
		addr.family = AF_INET6;
	else
		return -EINVAL;
	uint8_t wire[DNSWIRE_NAME_MAX];
	int n = qname_build_ip(&addr, (const uint8_t *)"", 1, wire, sizeof(wire));
	if (n < 0)
		return n;
	return dnswire_name_to_text(wire, (size_t)n, out, cap);
}

static int check(const struct opts *o, const char *ip)
{
	char rev[128], prefix[400];
	uint8_t name[DNSWIRE_NAME_MAX];
	if (ip_prefix(ip, rev, sizeof(rev)) < 0) {
		fprintf(stderr, "rblmux: %s is not an IPv4 or IPv6 address\n", ip);
		return 2;
	}
	struct answer health, verdict, score, ptr;
	int n = zone_name("health", o, name, sizeof(name));
	if (n < 0 || ask(o, name, (size_t)n, DNS_T_TXT, &health) < 0 || health.rcode != 0) {
		fprintf(stderr, "rblmux: no answer from rblmuxd at %s port %d (zone %s)\n",
			o->server, o->port, o->zone);
		return 2;
	}
	n = zone_name(rev, o, name, sizeof(name));
	ask(o, name, (size_t)n, DNS_T_A, &verdict);
	snprintf(prefix, sizeof(prefix), "%s.score", rev);
	n = zone_name(prefix, o, name, sizeof(name));
	ask(o, name, (size_t)n, DNS_T_TXT, &score);

	printf("rblmux check %s  (rblmuxd %s port %d, zone %s)\n\n", ip, o->server, o->port, o->zone);
	printf("%-16s %-22s %-7s %-10s %-10s %s\n", "source", "answer", "weight", "latency",
	       "from", "health");
	/* health TXT: "name state ..." per list, joined by " | " */
	char list[sizeof(health.txt)];
	snprintf(list, sizeof(list), "%s", health.txt);
	for (char *save = NULL, *item = strtok_r(list, "|", &save); item;
	     item = strtok_r(NULL, "|", &save)) {
		while (*item == ' ')
			item++;
		char src[64], state[32];
		if (sscanf(item, "%63s %31s", src, state) != 2)
			continue;
		char codes[128] = "-", weight[16] = "0", tier[32] = "-", lat[32] = "-";
		unsigned long long lat_us = 0;
		if (strcmp(state, "disabled") != 0) {
			struct answer per;
			snprintf(prefix, sizeof(prefix), "%s.%s", rev, src);
			n = zone_name(prefix, o, name, sizeof(name));
			if (n > 0 && ask(o, name, (size_t)n, DNS_T_A, &per) == 0)
				format_codes(&per, codes, sizeof(codes));
			else
				snprintf(codes, sizeof(codes), "no answer");
		}
		if (diag_for(verdict.diag, src, tier, sizeof(tier), &lat_us) && lat_us)
			snprintf(lat, sizeof(lat), "%.1f ms", lat_us / 1000.0);
		weight_for(score.txt, src, weight, sizeof(weight));
		printf("%-16s %-22s %-7s %-10s %-10s %s\n", src, codes, weight, lat, tier, state);
	}
	printf("\n");
	if (verdict.rcode == 0 && verdict.n_a)
		printf("verdict: LISTED (%u.%u.%u.%u)\n", verdict.a[0][0], verdict.a[0][1],
		       verdict.a[0][2], verdict.a[0][3]);
	else if (verdict.rcode == 3)
		printf("verdict: not listed\n");
	else
		printf("verdict: could not decide (%s)\n", rcode_name(verdict.rcode));
	if (score.txt[0])
		printf("why:     %s\n", score.txt);
	else if (score.rcode == 3)
		printf("why:     score 0\n");

	snprintf(prefix, sizeof(prefix), "%s.ptr", rev);
	n = zone_name(prefix, o, name, sizeof(name));
	memset(&ptr, 0, sizeof(ptr));
	ptr.rcode = -1;
	if (n > 0 && ask(o, name, (size_t)n, DNS_T_TXT, &ptr) == 0 && ptr.rcode == 0)
		printf("ptr:     %s\n", ptr.txt);
	else if (ptr.rcode == 3)
		printf("ptr:     no flags\n");
	else
		printf("ptr:     not available (%s)\n", rcode_name(ptr.rcode));
	if (o->domain) {
		snprintf(prefix, sizeof(prefix), "%s.%s.spf", rev, o->domain);
		n = zone_name(prefix, o, name, sizeof(name));
		struct answer spf;
		if (n > 0 && ask(o, name, (size_t)n, DNS_T_TXT, &spf) == 0 && spf.rcode == 0)
			printf("spf:     %s\n", spf.txt);
		else
			printf("spf:     not available (%s)\n", n > 0 ? rcode_name(spf.rcode) : "bad domain");
	}
	return verdict.rcode == 0 && verdict.n_a ? 1 : verdict.rcode == 3 ? 0 : 3;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: rblmux check IP [--domain D] [-s SERVER] [-p PORT] [-z ZONE]\n"
		"  -s, --server   rblmuxd's address (default 127.0.0.1)\n"
		"  -p, --port     its port (default 5353)\n"
		"  -z, --zone     its zone (default rblmux.internal)\n"
		"  -d, --domain   also check SPF for MAIL FROM postmaster@D\n"
		"exit status: 0 not listed, 1 listed, 2 usage or no rblmuxd, 3 undecided\n");
}

int main(int argc, char **argv)
{
	struct opts o = { .server = "127.0.0.1", .port = 5353, .zone = "rblmux.internal" };
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "port", required_argument, NULL, 'p' },
		{ "zone", required_argument, NULL, 'z' },
		{ "domain", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		usage(argc < 2 ? stderr : (strcmp(argv[1], "--help") == 0 ? stdout : stderr));
		return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	int opt;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "s:p:z:d:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': o.server = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 'z': o.zone = optarg; break;
		case 'd': o.domain = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind + 1 != argc || o.port <= 0 || o.port > 65535) {
		usage(stderr);
		return 2;
	}
	return check(&o, argv[optind]);
}
