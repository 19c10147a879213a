/*
 * Tests for ptrview: a small DNS server on 127.0.0.1 runs in a thread and
 * answers from a table of records set per test (PTR, A, AAAA, CNAME; an
 * entry can instead drop or SERVFAIL the questions for its name). It follows
 * CNAMEs inside its table like a recursive resolver, or, with chase off,
 * hands back the CNAME alone like an authoritative server that does not
 * serve the target. It counts questions per (name, type).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "resolver/ptrview.h"
#include "resolver/upstream.h"
#include "zones/dnswire.h"

/* ---------------------------------------------------------- test server */

enum fault { FAULT_NONE = 0, FAULT_DROP, FAULT_SERVFAIL };

struct zrec {
	const char *name;   /* lowercase, no trailing dot */
	uint16_t type;      /* with a fault: 0 means every type */
	uint32_t ttl;
	const char *data;   /* address, or target name; "!" writes malformed rdata */
	enum fault fault;
};

#define SRV_COUNTS 64
#define SRV_CNAME_MAX 8

static struct {
	int fd;
	uint16_t port;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t lock;
	const struct zrec *recs;
	size_t nrecs;
	bool chase;
	uint32_t neg_ttl;
	struct {
		char name[256];
		uint16_t type;
		unsigned n;
	} counts[SRV_COUNTS];
	size_t ncounts;
	unsigned received;
} srv = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Presentation to wire form (test names have no escapes). */
static size_t to_wire(const char *text, uint8_t *out)
{
	size_t o = 0;
	while (*text) {
		const char *dot = strchr(text, '.');
		size_t l = dot ? (size_t)(dot - text) : strlen(text);
		out[o++] = (uint8_t)l;
		memcpy(out + o, text, l);
		o += l;
		text += l + (dot ? 1 : 0);
	}
	out[o++] = 0;
	return o;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

struct pkt {
	uint8_t b[4096];
	size_t len;
	uint16_t an, ns;
};

/* Append a record with an uncompressed owner name. */
static void pkt_rr(struct pkt *p, const char *owner, uint16_t type, uint32_t ttl,
		   const uint8_t *rdata, size_t rdlen)
{
	p->len += to_wire(owner, p->b + p->len);
	put16(p->b + p->len, type);
	put16(p->b + p->len + 2, DNS_C_IN);
	put32(p->b + p->len + 4, ttl);
	put16(p->b + p->len + 8, (uint16_t)rdlen);
	memcpy(p->b + p->len + 10, rdata, rdlen);
	p->len += 10 + rdlen;
}

static void pkt_rec(struct pkt *p, const struct zrec *r)
{
	uint8_t rd[300];
	size_t rdlen = 0;

	if (strcmp(r->data, "!") == 0) {
		/* A label running past the rdata; 3 bytes: no A record either. */
		static const uint8_t bad[] = { 9, 'b', 'a' };
		memcpy(rd, bad, sizeof bad);
		rdlen = sizeof bad;
	} else if (r->type == DNS_T_A) {
		inet_pton(AF_INET, r->data, rd);
		rdlen = 4;
	} else if (r->type == DNS_T_AAAA) {
		inet_pton(AF_INET6, r->data, rd);
		rdlen = 16;
	} else {
		rdlen = to_wire(r->data, rd);
	}
	pkt_rr(p, r->name, r->type, r->ttl, rd, rdlen);
	p->an++;
}

static void pkt_soa(struct pkt *p)
{
	uint8_t rd[64];
	size_t o = to_wire("ns.test", rd);
	o += to_wire("hostmaster.test", rd + o);
	put32(rd + o, 1);
	put32(rd + o + 4, 3600);
	put32(rd + o + 8, 600);
	put32(rd + o + 12, 86400);
	put32(rd + o + 16, srv.neg_ttl);
	pkt_rr(p, "test", DNS_T_SOA, srv.neg_ttl, rd, o + 20);
	p->ns++;
}

static void srv_count(const char *name, uint16_t type)
{
	for (size_t i = 0; i < srv.ncounts; i++) {
		if (srv.counts[i].type == type && strcmp(srv.counts[i].name, name) == 0) {
			srv.counts[i].n++;
			return;
		}
	}
	if (srv.ncounts < SRV_COUNTS) {
		snprintf(srv.counts[srv.ncounts].name, sizeof srv.counts[0].name, "%s", name);
		srv.counts[srv.ncounts].type = type;
		srv.counts[srv.ncounts++].n = 1;
	}
}

/* Fill p's sections for (name, type); returns the fault to apply, or NONE. */
static enum fault srv_resolve(struct pkt *p, const char *name, uint16_t type,
			      uint8_t *rcode, int depth)
{
	bool any = false, found = false;
	const struct zrec *cname = NULL;

	for (size_t i = 0; i < srv.nrecs; i++) {
		const struct zrec *r = &srv.recs[i];
		if (strcmp(r->name, name) != 0)
			continue;
		if (r->fault) {
			if (r->type == 0 || r->type == type)
				return r->fault;
			continue;
		}
		any = true;
		if (r->type == type) {
			pkt_rec(p, r);
			found = true;
		} else if (r->type == DNS_T_CNAME) {
			cname = r;
		}
	}
	if (found)
		return FAULT_NONE;
	if (cname && type != DNS_T_CNAME) {
		pkt_rec(p, cname);
		if (!srv.chase || depth == SRV_CNAME_MAX)
			return FAULT_NONE;
		return srv_resolve(p, cname->data, type, rcode, depth + 1);
	}
	if (!any)
		*rcode = DNS_R_NXDOMAIN;
	pkt_soa(p);
	return FAULT_NONE;
}

static void srv_handle(const uint8_t *q, size_t len, const struct sockaddr_in *from)
{
	char name[256];
	size_t i = DNSWIRE_HEADER_LEN, n = 0;
	struct pkt p = { .len = 0 };
	uint8_t rcode = DNS_R_NOERROR;

	if (len < DNSWIRE_HEADER_LEN)
		return;
	while (i < len && q[i] != 0) {
		size_t l = q[i];
		if (l > 63 || i + 1 + l >= len || n + l + 1 >= sizeof name)
			return;
		if (n)
			name[n++] = '.';
		for (size_t k = 0; k < l; k++)
			name[n++] = (char)((q[i + 1 + k] >= 'A' && q[i + 1 + k] <= 'Z')
					   ? q[i + 1 + k] | 0x20 : q[i + 1 + k]);
		i += 1 + l;
	}
	name[n] = '\0';
	if (i + 5 > len)
		return;
	size_t qend = i + 5;
	uint16_t type = (uint16_t)(q[i + 1] << 8 | q[i + 2]);

	/* Header and question echoed: the ID and the name's 0x20 case. */
	memcpy(p.b, q, qend);
	p.len = qend;
	pthread_mutex_lock(&srv.lock);
	srv.received++;
	srv_count(name, type);
	enum fault f = srv_resolve(&p, name, type, &rcode, 0);
	pthread_mutex_unlock(&srv.lock);
	if (f == FAULT_DROP)
		return;
	if (f == FAULT_SERVFAIL) {
		p.len = qend;
		p.an = p.ns = 0;
		rcode = DNS_R_SERVFAIL;
	}
	p.b[2] = (uint8_t)(0x84 | (q[2] & 0x01));
	p.b[3] = (uint8_t)(0x80 | rcode);
	put16(p.b + 4, 1);
	put16(p.b + 6, p.an);
	put16(p.b + 8, p.ns);
	put16(p.b + 10, 0);
	sendto(srv.fd, p.b, p.len, 0, (const struct sockaddr *)from, sizeof(*from));
}

static void *srv_main(void *unused)
{
	(void)unused;
	uint8_t buf[1500];
	while (!atomic_load(&srv.stop)) {
		struct pollfd pfd = { .fd = srv.fd, .events = POLLIN };
		poll(&pfd, 1, 5);
		for (;;) {
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t got = recvfrom(srv.fd, buf, sizeof(buf), MSG_DONTWAIT,
					       (struct sockaddr *)&from, &fl);
			if (got < 0)
				break;
			srv_handle(buf, (size_t)got, &from);
		}
	}
	return NULL;
}

static void srv_set(const struct zrec *recs, size_t n, bool chase)
{
	pthread_mutex_lock(&srv.lock);
	srv.recs = recs;
	srv.nrecs = n;
	srv.chase = chase;
	srv.neg_ttl = 900;
	srv.ncounts = 0;
	srv.received = 0;
	pthread_mutex_unlock(&srv.lock);
}

#define SRV_SET(recs, chase) srv_set(recs, sizeof(recs) / sizeof(recs[0]), chase)

static unsigned srv_asked(const char *name, uint16_t type)
{
	unsigned n = 0;
	pthread_mutex_lock(&srv.lock);
	for (size_t i = 0; i < srv.ncounts; i++)
		if (srv.counts[i].type == type && strcmp(srv.counts[i].name, name) == 0)
			n = srv.counts[i].n;
	pthread_mutex_unlock(&srv.lock);
	return n;
}

static unsigned srv_received(void)
{
	pthread_mutex_lock(&srv.lock);
	unsigned n = srv.received;
	pthread_mutex_unlock(&srv.lock);
	return n;
}

/* Wait until the server has handled every question sent before now: it
 * reads its socket in order, so once a marker question is answered, no
 * straggler of an earlier test (a question sent just before its pool was
 * closed) can land in the next test's counts. */
static void srv_sync(void)
{
	static const uint8_t marker[] = {
		0x53, 0x59, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		4, 's', 'y', 'n', 'c', 7, 'i', 'n', 'v', 'a', 'l', 'i', 'd', 0,
		0, 1, 0, 1,
	};
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(srv.port) };
	uint8_t buf[512];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return;
	for (int tries = 0; tries < 20; tries++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		sendto(fd, marker, sizeof marker, 0, (const struct sockaddr *)&sa, sizeof sa);
		if (poll(&pfd, 1, 100) == 1 && recv(fd, buf, sizeof buf, 0) >= 2 &&
		    buf[0] == marker[0] && buf[1] == marker[1])
			break;
	}
	close(fd);
}

static int group_setup(void **state)
{
	(void)state;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(srv.fd, (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	srv.port = ntohs(sa.sin_port);
	return pthread_create(&srv.thread, NULL, srv_main, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	atomic_store(&srv.stop, true);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	return 0;
}

/* ---------------------------------------------------------- client side */

static uint32_t g_now = 1000000;

static uint32_t fake_now(void)
{
	return g_now;
}

struct ctx {
	uv_loop_t loop;
	struct upstream_pool *up;
	struct cache_tier *cache;
	struct ptrview_params p;
	char servers[64];
};

static int ctx_setup(void **state)
{
	struct ctx *c = calloc(1, sizeof *c);
	if (!c || uv_loop_init(&c->loop) != 0 || upstream_pool_new(&c->loop, 64, &c->up) != 0)
		return -1;
	c->cache = cache_mem_new(4u << 20);
	if (!c->cache)
		return -1;
	snprintf(c->servers, sizeof c->servers, "127.0.0.1:%u", srv.port);
	srv_sync();
	srv_set(NULL, 0, true);
	g_now = 1000000;
	c->p = (struct ptrview_params){
		.up = c->up, .cache = c->cache, .servers_csv = c->servers,
		.timeout_ms = 400, .min_ttl = 10, .max_ttl = 3600, .error_ttl = 30,
		.level = PTRCLASS_MODERATE, .now = fake_now,
	};
	*state = c;
	return 0;
}

static void guard_cb(uv_timer_t *t)
{
	*(bool *)t->data = true;
	uv_stop(t->loop);
}

/* Run the loop until *counter reaches target or limit_ms pass. */
static bool run_until(uv_loop_t *loop, const unsigned *counter, unsigned target,
		      unsigned limit_ms)
{
	uv_timer_t guard;
	bool fired = false;
	uv_update_time(loop);
	uv_timer_init(loop, &guard);
	guard.data = &fired;
	uv_timer_start(&guard, guard_cb, limit_ms, 0);
	while (*counter < target && !fired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return *counter >= target;
}

static int ctx_teardown(void **state)
{
	struct ctx *c = *state;
	uv_timer_t guard;
	bool fired = false;
	if (c->up)
		upstream_pool_close(c->up);
	uv_update_time(&c->loop);
	uv_timer_init(&c->loop, &guard);
	guard.data = &fired;
	uv_timer_start(&guard, guard_cb, 5000, 0);
	uv_unref((uv_handle_t *)&guard);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&c->loop, UV_RUN_DEFAULT);
	int closed = uv_loop_close(&c->loop);
	c->cache->ops->destroy(c->cache);
	free(c);
	return fired || closed != 0 ? -1 : 0;
}

struct got {
	unsigned calls;
	unsigned sync_calls;
	struct ptrview_result r;
};

static bool g_in_check;

static void got_cb(void *arg, const struct ptrview_result *r)
{
	struct got *g = arg;
	if (g_in_check)
		g->sync_calls++;
	g->calls++;
	g->r = *r;
}

static int parse_ip(const char *ip, uint8_t *addr)
{
	if (inet_pton(AF_INET, ip, addr) == 1)
		return AF_INET;
	assert_int_equal(inet_pton(AF_INET6, ip, addr), 1);
	return AF_INET6;
}

/* Check ip and wait for the result; returns ptrview_check's return. */
static int check_ip(struct ctx *c, const struct ptrview_params *p, const char *ip,
		    struct ptrview_result *out)
{
	uint8_t addr[16];
	struct got g = { 0 };
	int family = parse_ip(ip, addr);

	memset(out, 0xa5, sizeof *out);
	g_in_check = true;
	int rc = ptrview_check(p, family, addr, got_cb, &g, out);
	g_in_check = false;
	assert_int_equal(g.sync_calls, 0);
	if (rc == 1) {
		uv_run(&c->loop, UV_RUN_NOWAIT);
		assert_int_equal(g.calls, 0);
		return rc;
	}
	assert_int_equal(rc, 0);
	assert_true(run_until(&c->loop, &g.calls, 1, 5000));
	/* Exactly once: a second call would come on a later loop turn. */
	uv_run(&c->loop, UV_RUN_NOWAIT);
	assert_int_equal(g.calls, 1);
	*out = g.r;
	assert_true(strlen(out->txt) <= PTRVIEW_TXT_MAX);
	return rc;
}

static void check_fresh(struct ctx *c, const char *ip, struct ptrview_result *out)
{
	assert_int_equal(check_ip(c, &c->p, ip, out), 0);
	assert_false(out->from_cache);
}

/* ---------------------------------------------------------------- tests */

static void test_args(void **state)
{
	struct ctx *c = *state;
	struct ptrview_params p = c->p;
	struct ptrview_result r;
	struct got g = { 0 };
	uint8_t a[16] = { 192, 0, 2, 1 };

	assert_int_equal(ptrview_check(NULL, AF_INET, a, got_cb, &g, &r), -EINVAL);
	assert_int_equal(ptrview_check(&p, AF_UNIX, a, got_cb, &g, &r), -EINVAL);
	assert_int_equal(ptrview_check(&p, AF_INET, NULL, got_cb, &g, &r), -EINVAL);
	assert_int_equal(ptrview_check(&p, AF_INET, a, NULL, &g, &r), -EINVAL);
	assert_int_equal(ptrview_check(&p, AF_INET, a, got_cb, &g, NULL), -EINVAL);
	p.timeout_ms = 0;
	assert_int_equal(ptrview_check(&p, AF_INET, a, got_cb, &g, &r), -EINVAL);
	p = c->p;
	p.level = (enum ptrclass_level)3;
	assert_int_equal(ptrview_check(&p, AF_INET, a, got_cb, &g, &r), -EINVAL);
	p = c->p;
	p.min_ttl = 100;
	p.max_ttl = 50;
	assert_int_equal(ptrview_check(&p, AF_INET, a, got_cb, &g, &r), -EINVAL);
	p = c->p;
	p.up = NULL;
	assert_int_equal(ptrview_check(&p, AF_INET, a, got_cb, &g, &r), -EINVAL);
	/* A server list c-ares refuses: the upstream's error, no callback. */
	p = c->p;
	p.servers_csv = "not-an-address";
	assert_int_equal(ptrview_check(&p, AF_INET, a, got_cb, &g, &r), -EINVAL);
	uv_run(&c->loop, UV_RUN_NOWAIT);
	assert_int_equal(g.calls, 0);
	assert_int_equal(srv_received(), 0);
}

static void test_cache_key_and_weight(void **state)
{
	(void)state;
	uint8_t key[PTRVIEW_KEY_MAX], key2[PTRVIEW_KEY_MAX];
	uint8_t v4[4] = { 192, 0, 2, 1 }, v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };

	assert_int_equal(ptrview_cache_key(PTRCLASS_MODERATE, AF_INET, v4, key), 11);
	assert_memory_equal(key, "ptr:", 4);
	assert_memory_equal(key + 7, v4, 4);
	assert_int_equal(ptrview_cache_key(PTRCLASS_MODERATE, AF_INET6, v6, key), 23);
	assert_memory_equal(key + 7, v6, 16);
	/* The level is part of the key: a reload to another level re-asks. */
	assert_int_equal(ptrview_cache_key(PTRCLASS_AGGRESSIVE, AF_INET6, v6, key2), 23);
	assert_memory_not_equal(key, key2, 23);
	assert_int_equal(ptrview_cache_key(PTRCLASS_MODERATE, AF_UNIX, v4, key), -EINVAL);
	assert_int_equal(ptrview_cache_key(PTRCLASS_MODERATE, AF_INET, NULL, key), -EINVAL);
	assert_int_equal(ptrview_cache_key((enum ptrclass_level)7, AF_INET, v4, key), -EINVAL);

	assert_int_equal(ptrview_weight(0, 2, 1, 1), 0);
	assert_int_equal(ptrview_weight(PTRVIEW_F_NO_PTR, 2, 1, 3), 1);
	assert_int_equal(ptrview_weight(PTRVIEW_F_NO_FCRDNS, 2, 1, 3), 3);
	assert_int_equal(ptrview_weight(PTRVIEW_F_DYNAMIC | PTRVIEW_F_EMBEDS, 2, 1, 3), 2);
	assert_int_equal(ptrview_weight(PTRVIEW_F_NO_FCRDNS | PTRVIEW_F_DYNAMIC, 2, 1, 3), 5);
	assert_int_equal(ptrview_weight(PTRVIEW_F_EMBEDS | PTRVIEW_F_STATIC, 2, 1, 3), 0);
}

static void test_no_ptr_nxdomain(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "other.example", DNS_T_A, 60, "192.0.2.9", 0 },
	};
	SRV_SET(z, true);
	check_fresh(c, "192.0.2.1", &r);
	assert_int_equal(r.flags, PTRVIEW_F_NO_PTR);
	assert_false(r.failed);
	assert_int_equal(r.nnames, 0);
	assert_string_equal(r.txt, "no PTR (NXDOMAIN)");
	/* The negative TTL: min(SOA TTL, SOA minimum) = 900. */
	assert_int_equal(r.ttl, 900);
	assert_int_equal(srv_asked("1.2.0.192.in-addr.arpa", DNS_T_PTR), 1);
	assert_int_equal(srv_received(), 1);
}

static void test_no_ptr_nodata(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "1.2.0.192.in-addr.arpa", DNS_T_TXT, 60, "x", 0 },
	};
	SRV_SET(z, true);
	c->p.max_ttl = 120;
	check_fresh(c, "192.0.2.1", &r);
	assert_int_equal(r.flags, PTRVIEW_F_NO_PTR);
	assert_false(r.failed);
	assert_string_equal(r.txt, "no PTR (NODATA)");
	assert_int_equal(r.ttl, 120);
}

static void test_seed_dynamic_confirmed(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "11.170.6.31.in-addr.arpa", DNS_T_PTR, 3600, "host-31-6-170-11.dynamic.mm.pl", 0 },
		{ "host-31-6-170-11.dynamic.mm.pl", DNS_T_A, 600, "31.6.170.11", 0 },
	};
	SRV_SET(z, true);
	check_fresh(c, "31.6.170.11", &r);
	assert_int_equal(r.flags, PTRVIEW_F_DYNAMIC | PTRVIEW_F_EMBEDS);
	assert_false(r.failed);
	assert_int_equal(r.nnames, 1);
	assert_string_equal(r.txt, "dynamic: host-31-6-170-11.dynamic.mm.pl "
			    "(embeds address; keyword \"dynamic\")");
	assert_int_equal(r.ttl, 600);
	assert_int_equal(srv_asked("host-31-6-170-11.dynamic.mm.pl", DNS_T_A), 1);
}

static void test_seed_mail_host_confirmed(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "25.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "smtp.nostrodominio.com", 0 },
		{ "smtp.nostrodominio.com", DNS_T_A, 300, "192.0.2.7", 0 },
		{ "smtp.nostrodominio.com", DNS_T_A, 300, "192.0.2.25", 0 },
	};
	SRV_SET(z, true);
	check_fresh(c, "192.0.2.25", &r);
	assert_int_equal(r.flags, 0);
	assert_false(r.failed);
	assert_string_equal(r.txt, "mail host: smtp.nostrodominio.com (mail marker \"smtp\")");
	assert_int_equal(r.ttl, 300);
}

static void test_not_forward_confirmed(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "25.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "mail.example.com", 0 },
		{ "mail.example.com", DNS_T_A, 60, "198.51.100.1", 0 },
		{ "26.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "gone.example.com", 0 },
		{ "27.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "host-192-0-2-27.dyn.example.net", 0 },
	};
	SRV_SET(z, true);
	check_fresh(c, "192.0.2.25", &r);
	assert_int_equal(r.flags, PTRVIEW_F_NO_FCRDNS);
	assert_false(r.failed);
	assert_string_equal(r.txt, "mail host: mail.example.com (mail marker \"mail\"); "
			    "not forward-confirmed");
	assert_int_equal(r.ttl, 60);

	/* The forward name does not exist: not confirmed either. */
	check_fresh(c, "192.0.2.26", &r);
	assert_int_equal(r.flags, PTRVIEW_F_NO_FCRDNS);
	assert_false(r.failed);
	assert_non_null(strstr(r.txt, "gone.example.com"));
	assert_non_null(strstr(r.txt, "not forward-confirmed"));

	/* An unconfirmed dynamic name: every flag that applies. */
	check_fresh(c, "192.0.2.27", &r);
	assert_int_equal(r.flags, PTRVIEW_F_NO_FCRDNS | PTRVIEW_F_DYNAMIC | PTRVIEW_F_EMBEDS);
	assert_false(r.failed);
}

static void test_several_ptrs_one_confirmed(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "host-192-0-2-10.dyn.example.net", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "mail.example.com", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "static-192-0-2-10.isp.example.net", 0 },
		{ "host-192-0-2-10.dyn.example.net", DNS_T_A, 300, "192.0.2.10", 0 },
		{ "static-192-0-2-10.isp.example.net", DNS_T_A, 300, "192.0.2.10", 0 },
		{ "mail.example.com", DNS_T_A, 300, "203.0.113.1", 0 },
	};
	SRV_SET(z, true);
	check_fresh(c, "192.0.2.10", &r);
	/* Two confirmed names: the static one flags less than the dynamic one;
	 * the unconfirmed mail name does not count. */
	assert_int_equal(r.flags, PTRVIEW_F_STATIC | PTRVIEW_F_EMBEDS);
	assert_false(r.failed);
	assert_int_equal(r.nnames, 3);
	assert_true(strncmp(r.txt, "generic static: static-192-0-2-10.isp.example.net", 49) == 0);
	assert_non_null(strstr(r.txt, "; also host-192-0-2-10.dyn.example.net (confirmed)"));
	assert_non_null(strstr(r.txt, "mail.example.com (not confirmed)"));
	assert_int_equal(srv_asked("host-192-0-2-10.dyn.example.net", DNS_T_A), 1);
	assert_int_equal(srv_asked("mail.example.com", DNS_T_A), 1);
	assert_int_equal(srv_asked("static-192-0-2-10.isp.example.net", DNS_T_A), 1);
}

static void test_several_ptrs_order_does_not_matter(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r1, r2;
	static const struct zrec z1[] = {
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "b.example.com", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "a.example.com", 0 },
		{ "a.example.com", DNS_T_A, 300, "192.0.2.10", 0 },
		{ "b.example.com", DNS_T_A, 300, "192.0.2.10", 0 },
	};
	static const struct zrec z2[] = {
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "a.example.com", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "b.example.com", 0 },
		{ "a.example.com", DNS_T_A, 300, "192.0.2.10", 0 },
		{ "b.example.com", DNS_T_A, 300, "192.0.2.10", 0 },
	};
	c->p.cache = NULL;
	SRV_SET(z1, true);
	check_fresh(c, "192.0.2.10", &r1);
	SRV_SET(z2, true);
	check_fresh(c, "192.0.2.10", &r2);
	assert_int_equal(r1.flags, 0);
	assert_string_equal(r1.txt, r2.txt);
	assert_true(strncmp(r1.txt, "named host: a.example.com", 25) == 0);
}

static void test_max_names_bound(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "n1.example.com", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "N1.example.com", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "n2.example.com", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "n3.example.com", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "n4.example.com", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "n5.example.com", 0 },
		{ "n1.example.com", DNS_T_A, 300, "192.0.2.99", 0 },
		{ "n2.example.com", DNS_T_A, 300, "192.0.2.99", 0 },
	};
	SRV_SET(z, true);
	c->p.max_names = 2;
	check_fresh(c, "192.0.2.10", &r);
	/* Duplicates (any case) count once: 5 names, 2 checked. */
	assert_int_equal(r.nnames, 5);
	assert_int_equal(r.flags, PTRVIEW_F_NO_FCRDNS);
	assert_non_null(strstr(r.txt, "; 3 more PTR names not checked"));
	assert_int_equal(srv_asked("n1.example.com", DNS_T_A), 1);
	assert_int_equal(srv_asked("n2.example.com", DNS_T_A), 1);
	assert_int_equal(srv_asked("n3.example.com", DNS_T_A), 0);
	assert_int_equal(srv_received(), 3);
}

static void test_cname_ptr_chased(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "11.170.6.31.in-addr.arpa", DNS_T_CNAME, 200, "11.0-25.170.6.31.in-addr.arpa", 0 },
		{ "11.0-25.170.6.31.in-addr.arpa", DNS_T_PTR, 3600, "host-31-6-170-11.dynamic.mm.pl", 0 },
		{ "host-31-6-170-11.dynamic.mm.pl", DNS_T_A, 600, "31.6.170.11", 0 },
	};
	SRV_SET(z, true);
	check_fresh(c, "31.6.170.11", &r);
	assert_int_equal(r.flags, PTRVIEW_F_DYNAMIC | PTRVIEW_F_EMBEDS);
	assert_false(r.failed);
	/* The CNAME's TTL is one of the records used. */
	assert_int_equal(r.ttl, 200);
	assert_int_equal(srv_asked("11.170.6.31.in-addr.arpa", DNS_T_PTR), 1);
	assert_int_equal(srv_asked("11.0-25.170.6.31.in-addr.arpa", DNS_T_PTR), 0);
}

static void test_cname_ptr_reasked(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "11.170.6.31.in-addr.arpa", DNS_T_CNAME, 200, "11.0-25.170.6.31.in-addr.arpa", 0 },
		{ "11.0-25.170.6.31.in-addr.arpa", DNS_T_PTR, 3600, "mx.mm.pl", 0 },
		{ "mx.mm.pl", DNS_T_A, 600, "31.6.170.11", 0 },
		{ "12.170.6.31.in-addr.arpa", DNS_T_CNAME, 200, "12.0-25.170.6.31.in-addr.arpa", 0 },
		{ "12.0-25.170.6.31.in-addr.arpa", DNS_T_TXT, 200, "x", 0 },
		{ "13.170.6.31.in-addr.arpa", DNS_T_CNAME, 200, "loop.example", 0 },
		{ "loop.example", DNS_T_CNAME, 200, "13.170.6.31.in-addr.arpa", 0 },
	};
	/* An authoritative server answers with the CNAME alone. */
	SRV_SET(z, false);
	check_fresh(c, "31.6.170.11", &r);
	assert_int_equal(r.flags, 0);
	assert_false(r.failed);
	assert_string_equal(r.txt, "mail host: mx.mm.pl (mail marker \"mx\")");
	assert_int_equal(r.ttl, 200);
	assert_int_equal(srv_asked("11.170.6.31.in-addr.arpa", DNS_T_PTR), 1);
	assert_int_equal(srv_asked("11.0-25.170.6.31.in-addr.arpa", DNS_T_PTR), 1);

	/* The target has no PTR: no PTR, after one more question. */
	check_fresh(c, "31.6.170.12", &r);
	assert_int_equal(r.flags, PTRVIEW_F_NO_PTR);
	assert_false(r.failed);
	assert_int_equal(srv_asked("12.0-25.170.6.31.in-addr.arpa", DNS_T_PTR), 1);

	/* A CNAME loop across questions ends, bounded, as a failure. */
	check_fresh(c, "31.6.170.13", &r);
	assert_int_equal(r.flags, 0);
	assert_true(r.failed);
	assert_string_equal(r.txt, "PTR lookup failed (CNAME chain too long)");
	assert_true(srv_asked("13.170.6.31.in-addr.arpa", DNS_T_PTR) +
		    srv_asked("loop.example", DNS_T_PTR) <= 4);
}

static void test_ptr_timeout_is_not_no_ptr(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "1.2.0.192.in-addr.arpa", 0, 0, "", FAULT_DROP },
		{ "2.2.0.192.in-addr.arpa", DNS_T_PTR, 0, "", FAULT_SERVFAIL },
	};
	SRV_SET(z, true);
	check_fresh(c, "192.0.2.1", &r);
	assert_int_equal(r.flags, 0);
	assert_true(r.failed);
	assert_int_equal(r.nnames, 0);
	assert_string_equal(r.txt, "PTR lookup failed (timeout)");
	assert_int_equal(r.ttl, 10); /* min_ttl (no record used), under error_ttl */

	c->p.min_ttl = 60;
	check_fresh(c, "192.0.2.2", &r);
	assert_int_equal(r.flags, 0);
	assert_true(r.failed);
	assert_string_equal(r.txt, "PTR lookup failed (servfail)");
	assert_int_equal(r.ttl, 30); /* error_ttl */
}

static void test_forward_timeout(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "11.170.6.31.in-addr.arpa", DNS_T_PTR, 3600, "host-31-6-170-11.dynamic.mm.pl", 0 },
		{ "host-31-6-170-11.dynamic.mm.pl", DNS_T_A, 0, "", FAULT_DROP },
		{ "12.170.6.31.in-addr.arpa", DNS_T_PTR, 3600, "slow.mm.pl", 0 },
		{ "12.170.6.31.in-addr.arpa", DNS_T_PTR, 3600, "mail.mm.pl", 0 },
		{ "slow.mm.pl", 0, 0, "", FAULT_DROP },
		{ "mail.mm.pl", DNS_T_A, 3600, "31.6.170.12", 0 },
	};
	SRV_SET(z, true);
	check_fresh(c, "31.6.170.11", &r);
	/* What the name says is known; whether it is confirmed is not. */
	assert_int_equal(r.flags, PTRVIEW_F_DYNAMIC | PTRVIEW_F_EMBEDS);
	assert_true(r.failed);
	assert_int_equal(r.ttl, 30);
	assert_string_equal(r.txt, "dynamic: host-31-6-170-11.dynamic.mm.pl "
			    "(embeds address; keyword \"dynamic\"); forward lookup failed (timeout)");

	/* Another name is confirmed: the timeout does not matter. */
	check_fresh(c, "31.6.170.12", &r);
	assert_int_equal(r.flags, 0);
	assert_false(r.failed);
	assert_int_equal(r.ttl, 3600);
	assert_non_null(strstr(r.txt, "also slow.mm.pl (timeout)"));
}

static void test_budget_bounds_the_check(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "11.170.6.31.in-addr.arpa", DNS_T_PTR, 3600, "never.mm.pl", 0 },
		{ "never.mm.pl", 0, 0, "", FAULT_DROP },
	};
	SRV_SET(z, true);
	c->p.timeout_ms = 4000;
	c->p.budget_ms = 300;
	uint64_t t0 = uv_hrtime();
	check_fresh(c, "31.6.170.11", &r);
	uint64_t ms = (uv_hrtime() - t0) / 1000000;
	assert_true(ms < 1500);
	assert_true(r.failed);
	assert_int_equal(r.flags, 0);
	assert_non_null(strstr(r.txt, "forward lookup failed (timeout)"));
}

static void test_malformed_answers(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "1.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "!", 0 },
		{ "2.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "mail.example.com", 0 },
		{ "mail.example.com", DNS_T_A, 300, "!", 0 },
		{ "3.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "weird!name.example.com", 0 },
		{ "weird!name.example.com", DNS_T_A, 300, "192.0.2.3", 0 },
	};
	SRV_SET(z, true);
	check_fresh(c, "192.0.2.1", &r);
	assert_true(r.failed);
	assert_int_equal(r.flags, 0);
	assert_string_equal(r.txt, "PTR lookup failed (bad answer)");

	/* A malformed A record: the upstream refuses the packet. */
	check_fresh(c, "192.0.2.2", &r);
	assert_true(r.failed);
	assert_int_equal(r.flags, 0);
	assert_non_null(strstr(r.txt, "forward lookup failed (bad answer)"));

	/* Not a hostname: confirmed, never classified, echoed as text. */
	check_fresh(c, "192.0.2.3", &r);
	assert_false(r.failed);
	assert_int_equal(r.flags, 0);
	assert_string_equal(r.txt, "not a hostname: weird\\033name.example.com");
}

static void test_cache_hit(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r, hit;
	static const struct zrec z[] = {
		{ "11.170.6.31.in-addr.arpa", DNS_T_PTR, 3600, "host-31-6-170-11.dynamic.mm.pl", 0 },
		{ "host-31-6-170-11.dynamic.mm.pl", DNS_T_A, 600, "31.6.170.11", 0 },
	};
	SRV_SET(z, true);
	check_fresh(c, "31.6.170.11", &r);
	unsigned asked = srv_received();
	assert_int_equal(asked, 2);

	g_now += 100;
	assert_int_equal(check_ip(c, &c->p, "31.6.170.11", &hit), 1);
	assert_true(hit.from_cache);
	assert_int_equal(hit.flags, r.flags);
	assert_false(hit.failed);
	assert_int_equal(hit.nnames, 1);
	assert_string_equal(hit.txt, r.txt);
	assert_int_equal(hit.ttl, 500);
	assert_int_equal(srv_received(), asked);

	/* The same address IPv4-mapped is the same client. */
	assert_int_equal(check_ip(c, &c->p, "::ffff:31.6.170.11", &hit), 1);
	assert_int_equal(hit.flags, r.flags);

	/* Another level is another entry. */
	struct ptrview_params p = c->p;
	p.level = PTRCLASS_CONSERVATIVE;
	assert_int_equal(check_ip(c, &p, "31.6.170.11", &hit), 0);
	assert_int_equal(srv_received(), asked + 2);

	/* Expired: asked again. */
	g_now += 600;
	check_fresh(c, "31.6.170.11", &hit);
	assert_int_equal(srv_received(), asked + 4);
}

static void test_cached_failure_short(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "1.2.0.192.in-addr.arpa", 0, 0, "", FAULT_SERVFAIL },
	};
	SRV_SET(z, true);
	c->p.min_ttl = 60;
	check_fresh(c, "192.0.2.1", &r);
	assert_true(r.failed);
	g_now += 10;
	assert_int_equal(check_ip(c, &c->p, "192.0.2.1", &r), 1);
	assert_true(r.failed);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.ttl, 20);
	assert_string_equal(r.txt, "PTR lookup failed (servfail)");
	g_now += 25;
	check_fresh(c, "192.0.2.1", &r);
	assert_int_equal(srv_received(), 2);
}

static void test_corrupt_cache_entry_is_a_miss(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	uint8_t key[PTRVIEW_KEY_MAX], addr[4] = { 192, 0, 2, 1 };
	static const struct zrec z[] = {
		{ "other.example", DNS_T_A, 60, "192.0.2.9", 0 },
	};
	static const uint8_t bad[][8] = {
		{ 2, 0, 0, 0 },                 /* unknown format */
		{ 1, 64, 0, 0 },                /* flag bit out of range */
		{ 1, 1, 2, 0 },                 /* unknown status bit */
		{ 1, 1, 0, 0, 'a', 0x07, 'b' }, /* control byte in the TXT */
		{ 1, 1, 0 },                    /* short */
	};
	static const size_t bad_len[] = { 4, 4, 4, 7, 3 };
	int klen = ptrview_cache_key(PTRCLASS_MODERATE, AF_INET, addr, key);
	assert_true(klen > 0);
	SRV_SET(z, true);
	for (size_t i = 0; i < sizeof bad_len / sizeof bad_len[0]; i++) {
		c->cache->ops->put(c->cache, key, (size_t)klen, bad[i], bad_len[i], g_now,
				   g_now + 100, g_now + 100);
		check_fresh(c, "192.0.2.1", &r);
		assert_int_equal(r.flags, PTRVIEW_F_NO_PTR);
		assert_int_equal(srv_received(), i + 1);
	}
}

static void test_ipv6(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
		  DNS_T_PTR, 300, "dyn-2001-db8-0-0-0-0-0-25.pool.example.net", 0 },
		{ "dyn-2001-db8-0-0-0-0-0-25.pool.example.net", DNS_T_AAAA, 300, "2001:db8::25", 0 },
		{ "dyn-2001-db8-0-0-0-0-0-25.pool.example.net", DNS_T_A, 300, "192.0.2.25", 0 },
		{ "6.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
		  DNS_T_PTR, 300, "mail6.example.com", 0 },
		{ "mail6.example.com", DNS_T_A, 300, "192.0.2.26", 0 },
		{ "77.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "mail.example.com", 0 },
		{ "mail.example.com", DNS_T_A, 300, "192.0.2.77", 0 },
	};
	SRV_SET(z, true);
	check_fresh(c, "2001:db8::25", &r);
	assert_int_equal(r.flags, PTRVIEW_F_DYNAMIC | PTRVIEW_F_EMBEDS);
	assert_false(r.failed);
	assert_int_equal(srv_asked("dyn-2001-db8-0-0-0-0-0-25.pool.example.net", DNS_T_AAAA), 1);
	assert_int_equal(srv_asked("dyn-2001-db8-0-0-0-0-0-25.pool.example.net", DNS_T_A), 0);

	/* An IPv6 client is confirmed by AAAA only. */
	check_fresh(c, "2001:db8::26", &r);
	assert_int_equal(r.flags, PTRVIEW_F_NO_FCRDNS);

	/* IPv4-mapped: the in-addr.arpa name and A records. */
	check_fresh(c, "::ffff:192.0.2.77", &r);
	assert_int_equal(r.flags, 0);
	assert_false(r.failed);
	assert_int_equal(srv_asked("77.2.0.192.in-addr.arpa", DNS_T_PTR), 1);
	assert_int_equal(srv_asked("mail.example.com", DNS_T_A), 1);
}

static void test_ttl_clamped(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 5, "mail.example.com", 0 },
		{ "mail.example.com", DNS_T_A, 7200, "192.0.2.10", 0 },
		{ "11.2.0.192.in-addr.arpa", DNS_T_PTR, 7200, "mx.example.com", 0 },
		{ "mx.example.com", DNS_T_A, 0x80000010u, "192.0.2.11", 0 },
	};
	SRV_SET(z, true);
	c->p.cache = NULL;
	c->p.min_ttl = 60;
	check_fresh(c, "192.0.2.10", &r);
	assert_int_equal(r.ttl, 60);
	/* A TTL with the top bit set counts as 0 (RFC 2181 §8). */
	check_fresh(c, "192.0.2.11", &r);
	assert_int_equal(r.ttl, 60);
	c->p.min_ttl = 1;
	c->p.max_ttl = 100;
	check_fresh(c, "192.0.2.10", &r);
	assert_int_equal(r.ttl, 5);
	c->p.min_ttl = 10;
	check_fresh(c, "192.0.2.11", &r);
	assert_int_equal(r.ttl, 10);
}

static void test_long_txt_is_cut(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	static const struct zrec z[] = {
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300,
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1.example.com", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300,
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2.example.com", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300,
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3.example.com", 0 },
		{ "10.2.0.192.in-addr.arpa", DNS_T_PTR, 300,
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4.example.com", 0 },
	};
	SRV_SET(z, true);
	check_fresh(c, "192.0.2.10", &r);
	assert_int_equal(strlen(r.txt), PTRVIEW_TXT_MAX);
	assert_string_equal(r.txt + PTRVIEW_TXT_MAX - 3, "...");
	assert_int_equal(r.flags & PTRVIEW_F_NO_FCRDNS, PTRVIEW_F_NO_FCRDNS);
}

static unsigned g_close_calls;
static struct ptrview_result g_close_r;

static void close_cb(void *arg, const struct ptrview_result *r)
{
	(void)arg;
	g_close_calls++;
	g_close_r = *r;
}

static void test_pool_close_completes(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r;
	uint8_t addr[4] = { 192, 0, 2, 1 };
	static const struct zrec z[] = {
		{ "1.2.0.192.in-addr.arpa", 0, 0, "", FAULT_DROP },
	};
	SRV_SET(z, true);
	g_close_calls = 0;
	c->p.timeout_ms = 5000;
	assert_int_equal(ptrview_check(&c->p, AF_INET, addr, close_cb, NULL, &r), 0);
	uv_run(&c->loop, UV_RUN_NOWAIT);
	assert_int_equal(g_close_calls, 0);
	upstream_pool_close(c->up);
	assert_int_equal(ptrview_check(&c->p, AF_INET, addr, close_cb, NULL, &r), -ESHUTDOWN);
	c->up = NULL;
	assert_true(run_until(&c->loop, &g_close_calls, 1, 3000));
	assert_true(g_close_r.failed);
	assert_int_equal(g_close_r.flags, 0);
}

/* An asynchronous tier (as Redis will be): get answers on a later turn. */
struct slow_tier {
	struct cache_tier base;
	struct cache_tier *inner;
	uv_loop_t *loop;
	unsigned gets;
};

struct slow_get {
	uv_timer_t t;
	enum cache_status st;
	struct cache_item item;
	cache_get_cb cb;
	void *arg;
};

static void slow_closed(uv_handle_t *h)
{
	free(h->data);
}

static void slow_fire(uv_timer_t *t)
{
	struct slow_get *g = t->data;
	g->cb(g->arg, g->st, g->st == CACHE_MISS ? NULL : &g->item);
	uv_close((uv_handle_t *)&g->t, slow_closed);
}

static int slow_get(struct cache_tier *t, const uint8_t *key, size_t key_len, uint32_t now,
		    struct cache_item *item, cache_get_cb cb, void *arg)
{
	struct slow_tier *s = (struct slow_tier *)t;
	struct slow_get *g = calloc(1, sizeof *g);
	(void)item;
	if (!g)
		return -ENOMEM;
	s->gets++;
	int st = s->inner->ops->get(s->inner, key, key_len, now, &g->item, NULL, NULL);
	g->st = st < 0 ? CACHE_MISS : (enum cache_status)st;
	g->cb = cb;
	g->arg = arg;
	uv_timer_init(s->loop, &g->t);
	g->t.data = g;
	uv_timer_start(&g->t, slow_fire, 1, 0);
	return -EINPROGRESS;
}

static void slow_put(struct cache_tier *t, const uint8_t *key, size_t key_len,
		     const uint8_t *value, size_t len, uint32_t now, uint32_t expire,
		     uint32_t stale_until)
{
	struct slow_tier *s = (struct slow_tier *)t;
	s->inner->ops->put(s->inner, key, key_len, value, len, now, expire, stale_until);
}

static void slow_destroy(struct cache_tier *t)
{
	(void)t;
}

static const struct cache_tier_ops slow_ops = { "slow", slow_get, slow_put, slow_destroy };

static void test_async_cache_tier(void **state)
{
	struct ctx *c = *state;
	struct ptrview_result r, hit;
	struct slow_tier tier = { { &slow_ops }, c->cache, &c->loop, 0 };
	static const struct zrec z[] = {
		{ "25.2.0.192.in-addr.arpa", DNS_T_PTR, 300, "smtp.nostrodominio.com", 0 },
		{ "smtp.nostrodominio.com", DNS_T_A, 300, "192.0.2.25", 0 },
	};
	SRV_SET(z, true);
	c->p.cache = &tier.base;
	check_fresh(c, "192.0.2.25", &r);
	assert_int_equal(r.flags, 0);
	assert_int_equal(srv_received(), 2);
	/* The hit comes through the callback, from the cache. */
	assert_int_equal(check_ip(c, &c->p, "192.0.2.25", &hit), 0);
	assert_true(hit.from_cache);
	assert_string_equal(hit.txt, r.txt);
	assert_int_equal(srv_received(), 2);
	assert_int_equal(tier.gets, 2);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, ctx_setup, ctx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_args),
		T(test_cache_key_and_weight),
		T(test_no_ptr_nxdomain),
		T(test_no_ptr_nodata),
		T(test_seed_dynamic_confirmed),
		T(test_seed_mail_host_confirmed),
		T(test_not_forward_confirmed),
		T(test_several_ptrs_one_confirmed),
		T(test_several_ptrs_order_does_not_matter),
		T(test_max_names_bound),
		T(test_cname_ptr_chased),
		T(test_cname_ptr_reasked),
		T(test_ptr_timeout_is_not_no_ptr),
		T(test_forward_timeout),
		T(test_budget_bounds_the_check),
		T(test_malformed_answers),
		T(test_cache_hit),
		T(test_cached_failure_short),
		T(test_corrupt_cache_entry_is_a_miss),
		T(test_ipv6),
		T(test_ttl_clamped),
		T(test_long_txt_is_cut),
		T(test_pool_close_completes),
		T(test_async_cache_tier),
	};
#undef T
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
