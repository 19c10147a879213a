/*
 * rblmux: the command-line tool of rblmux.
 *
 *   rblmux check IP [--domain D] [-s SERVER] [-p PORT] [-z ZONE] [--json]
 *   rblmux watch [-m ADDR:PORT] [-i SECONDS] [-n FRAMES]
 *
 * check asks a running rblmuxd over DNS, the way a mail server does, and
 * prints what each list answered, the weight it added, where the answer came
 * from (cache or list, from rblmuxd's EDNS diagnostics option) and its
 * latency, then the verdict: as a table (in colour on a terminal, unless
 * NO_COLOR is set) or as one JSON object. watch polls rblmuxd's metrics
 * endpoint and shows rates per interval. A CLI may block: plain sockets with
 * a timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
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

/* ------------------------------------------------------------ output */

/* Colour only for a person: stdout a terminal and NO_COLOR unset or empty
 * (no-color.org). */
static bool use_colour(void)
{
	const char *nc = getenv("NO_COLOR");
	return isatty(STDOUT_FILENO) && !(nc && nc[0]);
}

static const char *colour_of_state(const char *state)
{
	if (strcmp(state, "ok") == 0)
		return "\033[32m";
	if (strcmp(state, "degraded") == 0)
		return "\033[33m";
	if (strcmp(state, "down") == 0)
		return "\033[1;31m";
	return "\033[2m";
}

/* s as a JSON string, quotes included. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

struct source_row {
	char name[64], state[32], codes[128], weight[16], tier[32];
	unsigned long long lat_us;
	bool answered;        /* the list's own answer could be read */
};

struct report {
	const char *ip;
	struct source_row rows[MAX_SOURCES];
	size_t nrows;
	struct answer verdict, score, ptr, spf;
	bool with_spf;
	int status;           /* exit status: 0 not listed, 1 listed, 3 undecided */
};

static const char *verdict_word(const struct report *r)
{
	return r->status == 1 ? "listed" : r->status == 0 ? "not listed" : "undecided";
}

static void print_table(const struct opts *o, const struct report *r)
{
	bool c = use_colour();
	const char *bold = c ? "\033[1m" : "", *off = c ? "\033[0m" : "";
	printf("rblmux check %s  (rblmuxd %s port %d, zone %s)\n\n", r->ip, o->server, o->port,
	       o->zone);
	printf("%s%-16s %-22s %-7s %-10s %-10s %s%s\n", bold, "source", "answer", "weight",
	       "latency", "from", "health", off);
	for (size_t i = 0; i < r->nrows; i++) {
		const struct source_row *row = &r->rows[i];
		char lat[32] = "-";
		if (row->lat_us)
			snprintf(lat, sizeof(lat), "%.1f ms", row->lat_us / 1000.0);
		bool hit = row->answered && strcmp(row->codes, "not listed") != 0 &&
			   strncmp(row->codes, "failed", 6) != 0 && strcmp(row->codes, "-") != 0;
		printf("%-16s %s%-22s%s %-7s %-10s %-10s %s%s%s\n", row->name,
		       c && hit ? "\033[1;31m" : "", row->codes, c && hit ? off : "", row->weight,
		       lat, row->tier, c ? colour_of_state(row->state) : "", row->state, off);
	}
	printf("\n");
	const struct answer *v = &r->verdict;
	const char *vc = !c ? "" : r->status == 1 ? "\033[1;31m" : r->status == 0 ? "\033[1;32m"
										 : "\033[1;33m";
	if (r->status == 1)
		printf("verdict: %sLISTED%s (%u.%u.%u.%u)\n", vc, off, v->a[0][0], v->a[0][1],
		       v->a[0][2], v->a[0][3]);
	else if (r->status == 0)
		printf("verdict: %snot listed%s\n", vc, off);
	else
		printf("verdict: %scould not decide%s (%s)\n", vc, off, rcode_name(v->rcode));
	if (r->score.txt[0])
		printf("why:     %s\n", r->score.txt);
	else if (r->score.rcode == 3)
		printf("why:     score 0\n");
	if (r->ptr.rcode == 0 && r->ptr.txt[0])
		printf("ptr:     %s\n", r->ptr.txt);
	else if (r->ptr.rcode == 3)
		printf("ptr:     no flags\n");
	else
		printf("ptr:     not available (%s)\n", rcode_name(r->ptr.rcode));
	if (r->with_spf) {
		if (r->spf.rcode == 0 && r->spf.txt[0])
			printf("spf:     %s\n", r->spf.txt);
		else
			printf("spf:     not available (%s)\n", rcode_name(r->spf.rcode));
	}
}

/* The same facts as the table, as one JSON object. */
static void print_json(const struct opts *o, const struct report *r)
{
	printf("{\"ip\":");
	json_str(stdout, r->ip);
	printf(",\"server\":");
	json_str(stdout, o->server);
	printf(",\"port\":%d,\"zone\":", o->port);
	json_str(stdout, o->zone);
	printf(",\"sources\":[");
	for (size_t i = 0; i < r->nrows; i++) {
		const struct source_row *row = &r->rows[i];
		printf("%s{\"name\":", i ? "," : "");
		json_str(stdout, row->name);
		printf(",\"health\":");
		json_str(stdout, row->state);
		printf(",\"answer\":");
		json_str(stdout, row->codes);
		printf(",\"weight\":%ld,\"latency_ms\":", strtol(row->weight, NULL, 10));
		if (row->lat_us)
			printf("%.3f", row->lat_us / 1000.0);
		else
			printf("null");
		printf(",\"from\":");
		if (strcmp(row->tier, "-") != 0)
			json_str(stdout, row->tier);
		else
			printf("null");
		printf("}");
	}
	const struct answer *v = &r->verdict;
	printf("],\"verdict\":");
	json_str(stdout, verdict_word(r));
	printf(",\"rcode\":");
	json_str(stdout, rcode_name(v->rcode));
	if (r->status == 1)
		printf(",\"code\":\"%u.%u.%u.%u\"", v->a[0][0], v->a[0][1], v->a[0][2], v->a[0][3]);
	printf(",\"why\":");
	json_str(stdout, r->score.txt);
	printf(",\"ptr\":");
	if (r->ptr.rcode == 0 || r->ptr.rcode == 3)
		json_str(stdout, r->ptr.rcode == 3 ? "no flags" : r->ptr.txt);
	else
		printf("null");
	if (r->with_spf) {
		printf(",\"spf\":");
		if (r->spf.rcode == 0 && r->spf.txt[0])
			json_str(stdout, r->spf.txt);
		else
			printf("null");
	}
	printf("}\n");
}

static int check(const struct opts *o, const char *ip)
{
	char rev[128], prefix[400];
	uint8_t name[DNSWIRE_NAME_MAX];
	if (ip_prefix(ip, rev, sizeof(rev)) < 0) {
		fprintf(stderr, "rblmux: %s is not an IPv4 or IPv6 address\n", ip);
		return 2;
	}
	static struct report r;
	memset(&r, 0, sizeof(r));
	r.ip = ip;
	struct answer health;
	int n = zone_name("health", o, name, sizeof(name));
	if (n < 0 || ask(o, name, (size_t)n, DNS_T_TXT, &health) < 0 || health.rcode != 0) {
		fprintf(stderr, "rblmux: no answer from rblmuxd at %s port %d (zone %s)\n",
			o->server, o->port, o->zone);
		return 2;
	}
	n = zone_name(rev, o, name, sizeof(name));
	ask(o, name, (size_t)n, DNS_T_A, &r.verdict);
	snprintf(prefix, sizeof(prefix), "%s.score", rev);
	n = zone_name(prefix, o, name, sizeof(name));
	ask(o, name, (size_t)n, DNS_T_TXT, &r.score);

	/* health TXT: "name state ..." per list (and "redis ..."), joined by " | " */
	char list[sizeof(health.txt)];
	snprintf(list, sizeof(list), "%s", health.txt);
	for (char *save = NULL, *item = strtok_r(list, "|", &save); item && r.nrows < MAX_SOURCES;
	     item = strtok_r(NULL, "|", &save)) {
		while (*item == ' ')
			item++;
		struct source_row *row = &r.rows[r.nrows];
		memset(row, 0, sizeof(*row));
		if (sscanf(item, "%63s %31s", row->name, row->state) != 2 ||
		    strcmp(row->name, "redis") == 0)
			continue;
		snprintf(row->codes, sizeof(row->codes), "-");
		snprintf(row->weight, sizeof(row->weight), "0");
		snprintf(row->tier, sizeof(row->tier), "-");
		if (strcmp(row->state, "disabled") != 0) {
			struct answer per;
			snprintf(prefix, sizeof(prefix), "%s.%s", rev, row->name);
			n = zone_name(prefix, o, name, sizeof(name));
			if (n > 0 && ask(o, name, (size_t)n, DNS_T_A, &per) == 0) {
				format_codes(&per, row->codes, sizeof(row->codes));
				row->answered = true;
			} else {
				snprintf(row->codes, sizeof(row->codes), "no answer");
			}
		}
		diag_for(r.verdict.diag, row->name, row->tier, sizeof(row->tier), &row->lat_us);
		weight_for(r.score.txt, row->name, row->weight, sizeof(row->weight));
		r.nrows++;
	}

	snprintf(prefix, sizeof(prefix), "%s.ptr", rev);
	n = zone_name(prefix, o, name, sizeof(name));
	memset(&r.ptr, 0, sizeof(r.ptr));
	r.ptr.rcode = -1;
	if (n > 0)
		ask(o, name, (size_t)n, DNS_T_TXT, &r.ptr);
	if (o->domain) {
		r.with_spf = true;
		memset(&r.spf, 0, sizeof(r.spf));
		r.spf.rcode = -1;
		snprintf(prefix, sizeof(prefix), "%s.%s.spf", rev, o->domain);
		n = zone_name(prefix, o, name, sizeof(name));
		if (n > 0)
			ask(o, name, (size_t)n, DNS_T_TXT, &r.spf);
	}
	r.status = r.verdict.rcode == 0 && r.verdict.n_a ? 1 : r.verdict.rcode == 3 ? 0 : 3;
	if (o->json)
		print_json(o, &r);
	else
		print_table(o, &r);
	return r.status;
}

/* ------------------------------------------------------------- watch */

/* rblmux watch: a live view of rblmuxd's metrics endpoint, rates over each
 * interval. Kept small: one HTTP/1.0 GET per interval, the exposition read
 * into name{labels} -> value pairs. */

#define WATCH_BODY_MAX (4u << 20)

struct sample {
	char *key;            /* name{labels}, in the buffer it came from */
	double value;
};

struct scrape {
	char *text;
	struct sample *s;
	size_t n;
};

static void scrape_free(struct scrape *sc)
{
	free(sc->text);
	free(sc->s);
	memset(sc, 0, sizeof(*sc));
}

/* GET /metrics from host:port; the body, or NULL (the reason on stderr). */
static char *http_get_metrics(const struct sockaddr_storage *ss, socklen_t sl)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	static const char req[] = "GET /metrics HTTP/1.0\r\nUser-Agent: rblmux-watch\r\n\r\n";
	if (connect(fd, (const struct sockaddr *)ss, sl) < 0 ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
		goto fail;
	for (;;) {
		if (poll(&p, 1, TIMEOUT_MS) != 1)
			goto fail;
		if (len + 65536 + 1 > cap) {
			if (cap >= WATCH_BODY_MAX)
				goto fail;
			cap = cap ? cap * 2 : 131072;
			char *nb = realloc(buf, cap);
			if (!nb)
				goto fail;
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	char *body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.0 200 ", 13) != 0 || !body) {
		free(buf);
		return NULL;
	}
	memmove(buf, body + 4, len - (size_t)(body + 4 - buf) + 1);
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

static int scrape_parse(char *text, struct scrape *sc)
{
	sc->text = text;
	size_t cap = 0;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *sp = strrchr(line, ' ');
		if (line[0] == '#' || !sp)
			continue;
		*sp = '\0';
		if (sc->n == cap) {
			cap = cap ? cap * 2 : 256;
			struct sample *ns = realloc(sc->s, cap * sizeof(*ns));
			if (!ns)
				return -ENOMEM;
			sc->s = ns;
		}
		sc->s[sc->n].key = line;
		sc->s[sc->n].value = strtod(sp + 1, NULL);
		sc->n++;
	}
	return 0;
}

/* Sum of the samples of family name whose labels contain every one of the
 * label="value" strings given (NULL-terminated). */
static double sum_of(const struct scrape *sc, const char *name, ...)
{
	size_t nl = strlen(name);
	double total = 0;
	for (size_t i = 0; i < sc->n; i++) {
		const char *k = sc->s[i].key;
		if (strncmp(k, name, nl) != 0 || (k[nl] != '{' && k[nl] != '\0'))
			continue;
		va_list ap;
		va_start(ap, name);
		bool match = true;
		for (const char *l = va_arg(ap, const char *); l && match; l = va_arg(ap, const char *))
			match = strstr(k + nl, l) != NULL;
		va_end(ap);
		if (match)
			total += sc->s[i].value;
	}
	return total;
}

/* A quantile of what a histogram family (with the label filter) observed
 * between two scrapes, interpolated inside its bucket as Prometheus'
 * histogram_quantile does; -1 when nothing was observed. */
static double quantile(const struct scrape *a, const struct scrape *b, const char *bucket_name,
		       const char *filter, double q)
{
	static const char *const les[] = { "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
					   "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5" };
	double counts[15], bounds[15];
	for (size_t i = 0; i < 15; i++) {
		char le[32];
		snprintf(le, sizeof(le), "le=\"%s\"", i < 14 ? les[i] : "+Inf");
		counts[i] = sum_of(b, bucket_name, filter, le, (char *)NULL) -
			    sum_of(a, bucket_name, filter, le, (char *)NULL);
		bounds[i] = i < 14 ? strtod(les[i], NULL) : INFINITY;
	}
	double total = counts[14];
	if (total <= 0)
		return -1;
	double rank = q * total, prev_count = 0, prev_bound = 0;
	for (size_t i = 0; i < 15; i++) {
		if (counts[i] >= rank) {
			if (i == 14)
				return bounds[13];
			double in = counts[i] - prev_count;
			return prev_bound + (bounds[i] - prev_bound) * (in > 0 ? (rank - prev_count) / in : 1);
		}
		prev_count = counts[i];
		prev_bound = bounds[i];
	}
	return bounds[13];
}

static void fmt_ms(char *out, size_t cap, double seconds)
{
	if (seconds < 0)
		snprintf(out, cap, "-");
	else
		snprintf(out, cap, "%.1fms", seconds * 1000);
}

static void watch_frame(const struct scrape *a, const struct scrape *b, double dt, bool colour)
{
	const char *bold = colour ? "\033[1m" : "", *off = colour ? "\033[0m" : "";
	char p50[16], p99[16];
#define RATE(...) ((sum_of(b, __VA_ARGS__, (char *)NULL) - sum_of(a, __VA_ARGS__, (char *)NULL)) / dt)
	double answers = RATE("rblmux_queries_total");
	fmt_ms(p50, sizeof(p50), quantile(a, b, "rblmux_query_duration_seconds_bucket", "le=", 0.5));
	fmt_ms(p99, sizeof(p99), quantile(a, b, "rblmux_query_duration_seconds_bucket", "le=", 0.99));
	printf("%sanswers/s %.1f%s  NOERROR %.1f  NXDOMAIN %.1f  SERVFAIL %.1f  REFUSED %.1f"
	       "  p50 %s  p99 %s\n", bold, answers, off,
	       RATE("rblmux_queries_total", "rcode=\"NOERROR\""),
	       RATE("rblmux_queries_total", "rcode=\"NXDOMAIN\""),
	       RATE("rblmux_queries_total", "rcode=\"SERVFAIL\""),
	       RATE("rblmux_queries_total", "rcode=\"REFUSED\""), p50, p99);
	double up = sum_of(b, "rblmux_redis_connections", "state=\"up\"", (char *)NULL);
	double redis = sum_of(b, "rblmux_redis_connections", (char *)NULL);
	printf("cache %.0f entries, %.1f of %.0f MiB", sum_of(b, "rblmux_cache_entries", (char *)NULL),
	       sum_of(b, "rblmux_cache_bytes", (char *)NULL) / 1048576.0,
	       sum_of(b, "rblmux_cache_limit_bytes", (char *)NULL) / 1048576.0);
	if (redis > 0)
		printf(", redis up on %.0f of %.0f loops", up, redis);
	printf("\n\n%s%-16s %-9s %10s %6s %11s %10s %9s %8s%s\n", bold, "source", "state",
	       "lookups/s", "cache%", "upstream/s", "timeouts/s", "errors/s", "p50", off);
	for (size_t i = 0; i < b->n; i++) {
		const char *k = b->s[i].key;
		static const char prefix[] = "rblmux_source_state{source=\"";
		if (strncmp(k, prefix, sizeof(prefix) - 1) != 0 || b->s[i].value != 1)
			continue;
		char src[80], state[32], filter[100];
		if (sscanf(k + sizeof(prefix) - 1, "%79[^\"]\",state=\"%31[^\"]", src, state) != 2)
			continue;
		snprintf(filter, sizeof(filter), "source=\"%s\"", src);
		double lookups = RATE("rblmux_lookups_total", filter);
		double cached = RATE("rblmux_lookups_total", filter, "tier=\"mem\"") +
				RATE("rblmux_lookups_total", filter, "tier=\"redis\"");
		double asked = RATE("rblmux_upstream_queries_total", filter);
		double timeouts = RATE("rblmux_upstream_queries_total", filter, "result=\"timeout\"");
		double errors = RATE("rblmux_upstream_queries_total", filter, "result=\"servfail\"") +
				RATE("rblmux_upstream_queries_total", filter, "result=\"bad\"") +
				RATE("rblmux_upstream_queries_total", filter, "result=\"error_code\"");
		char pct[16] = "-";
		if (lookups > 0)
			snprintf(pct, sizeof(pct), "%.1f", 100.0 * cached / lookups);
		fmt_ms(p50, sizeof(p50),
		       quantile(a, b, "rblmux_upstream_duration_seconds_bucket", filter, 0.5));
		printf("%-16s %s%-9s%s %10.1f %6s %11.1f %10.1f %9.1f %8s\n", src,
		       colour ? colour_of_state(state) : "", state, off, lookups, pct, asked,
		       timeouts, errors, p50);
	}
#undef RATE
}

static int parse_hostport(const char *text, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(text, ':');
	if (!colon || (size_t)(colon - text) >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	char *h = host;
	if (h[0] == '[' && h[strlen(h) - 1] == ']') {
		h[strlen(h) - 1] = '\0';
		h++;
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port <= 0 || port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*s6);
	} else {
		return -EINVAL;
	}
	return 0;
}

static int watch(const char *metrics, double interval, long frames)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (parse_hostport(metrics, &ss, &sl) < 0) {
		fprintf(stderr, "rblmux: %s is not an address:port\n", metrics);
		return 2;
	}
	bool tty = use_colour();
	struct scrape prev = { 0 }, cur = { 0 };
	char *text = http_get_metrics(&ss, sl);
	if (!text || scrape_parse(text, &prev) < 0) {
		fprintf(stderr, "rblmux: no metrics at http://%s/metrics\n", metrics);
		scrape_free(&prev);
		return 2;
	}
	double t_prev = now_ms();
	for (long frame = 0; frames <= 0 || frame < frames; frame++) {
		struct timespec ts = { (time_t)interval,
				       (long)((interval - (time_t)interval) * 1e9) };
		nanosleep(&ts, NULL);
		text = http_get_metrics(&ss, sl);
		if (!text || scrape_parse(text, &cur) < 0) {
			scrape_free(&cur);
			scrape_free(&prev);
			fprintf(stderr, "rblmux: no metrics at http://%s/metrics\n", metrics);
			return 2;
		}
		double t = now_ms();
		if (isatty(STDOUT_FILENO))
			printf("\033[H\033[2J");
		else if (frame)
			printf("\n");
		time_t wall = time(NULL);
		char when[32];
		strftime(when, sizeof(when), "%H:%M:%S", localtime(&wall));
		printf("rblmux watch http://%s/metrics  %s  (rates over %.1fs)\n", metrics, when,
		       (t - t_prev) / 1000.0);
		watch_frame(&prev, &cur, (t - t_prev) / 1000.0, tty);
		fflush(stdout);
		scrape_free(&prev);
		prev = cur;
		memset(&cur, 0, sizeof(cur));
		t_prev = t;
	}
	scrape_free(&prev);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: rblmux check IP [--domain D] [-s SERVER] [-p PORT] [-z ZONE] [--json]\n"
		"       rblmux watch [-m ADDR:PORT] [-i SECONDS] [-n FRAMES]\n"
		"check: what every list says about IP, and the verdict\n"
		"  -s, --server   rblmuxd's address (default 127.0.0.1)\n"
		"  -p, --port     its port (default 5353)\n"
		"  -z, --zone     its zone (default rblmux.internal)\n"
		"  -d, --domain   also check SPF for MAIL FROM postmaster@D\n"
		"  -j, --json     print one JSON object instead of the table\n"
		"  exit status: 0 not listed, 1 listed, 2 usage or no rblmuxd, 3 undecided\n"
		"watch: rates from rblmuxd's metrics endpoint, refreshed every interval\n"
		"  -m, --metrics  the endpoint's address (default 127.0.0.1:9353)\n"
		"  -i, --interval seconds between refreshes (default 1)\n"
		"  -n, --frames   stop after this many refreshes (default: until interrupted)\n");
}

static int main_watch(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "metrics", required_argument, NULL, 'm' },
		{ "interval", required_argument, NULL, 'i' },
		{ "frames", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *metrics = "127.0.0.1:9353";
	double interval = 1;
	long frames = 0;
	int opt;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "m:i:n:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm': metrics = optarg; break;
		case 'i': interval = strtod(optarg, NULL); break;
		case 'n': frames = strtol(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !(interval >= 0.1 && interval <= 3600) || frames < 0) {
		usage(stderr);
		return 2;
	}
	return watch(metrics, interval, frames);
}

int main(int argc, char **argv)
{
	struct opts o = { .server = "127.0.0.1", .port = 5353, .zone = "rblmux.internal" };
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "port", required_argument, NULL, 'p' },
		{ "zone", required_argument, NULL, 'z' },
		{ "domain", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	if (argc >= 2 && strcmp(argv[1], "watch") == 0)
		return main_watch(argc, argv);
	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		usage(argc < 2 ? stderr : (strcmp(argv[1], "--help") == 0 ? stdout : stderr));
		return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	int opt;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "s:p:z:d:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': o.server = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 'z': o.zone = optarg; break;
		case 'd': o.domain = optarg; break;
		case 'j': o.json = true; break;
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
