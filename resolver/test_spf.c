/*
 * cmocka tests for resolver/spf: the real helper (RBLMUX_SPF_HELPER, set by
 * meson), a real upstream pool, and a small authoritative server on
 * 127.0.0.1 in a thread of this test.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "resolver/spf.h"
#include "resolver/upstream.h"
#include "zones/dnswire.h"

/* ------------------------------------------------------ the DNS server */

#define ZMAX 256
#define PENDING_MAX 256

struct zrec {
	char name[128];      /* lowercase, no final dot */
	uint16_t type;       /* 0: only the name exists */
	uint32_t ttl;
	uint16_t rdlen;
	uint8_t rdata[600];
	unsigned delay_ms;   /* before any answer for this name */
	bool drop;           /* never answer this name */
};

static struct {
	int fd;
	uint16_t port;
	pthread_t thread;
	pthread_mutex_t lock;
	struct zrec z[ZMAX];
	unsigned nz;
	atomic_uint received;
	atomic_bool stop;
	struct {
		uint64_t due_ms;
		struct sockaddr_in to;
		size_t len;
		uint8_t pkt[1500];
	} pending[PENDING_MAX];
	unsigned npending;
} srv = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct zrec *zadd(const char *name, uint16_t type, uint32_t ttl)
{
	pthread_mutex_lock(&srv.lock);
	assert_true(srv.nz < ZMAX);
	struct zrec *r = &srv.z[srv.nz++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->type = type;
	r->ttl = ttl;
	pthread_mutex_unlock(&srv.lock);
	return r;
}

static void z_txt(const char *name, uint32_t ttl, const char *txt)
{
	struct zrec *r = zadd(name, DNS_T_TXT, ttl);
	size_t n = strlen(txt), o = 0;
	for (size_t i = 0; i < n || i == 0; i += 255) {
		size_t l = n - i > 255 ? 255 : n - i;
		r->rdata[o++] = (uint8_t)l;
		memcpy(r->rdata + o, txt + i, l);
		o += l;
		if (n == 0)
			break;
	}
	r->rdlen = (uint16_t)o;
}

static void z_a(const char *name, uint32_t ttl, const char *addr)
{
	struct zrec *r = zadd(name, DNS_T_A, ttl);
	assert_int_equal(inet_pton(AF_INET, addr, r->rdata), 1);
	r->rdlen = 4;
}

static void z_mx(const char *name, uint32_t ttl, uint16_t pref, const char *exch)
{
	struct zrec *r = zadd(name, DNS_T_MX, ttl);
	r->rdata[0] = (uint8_t)(pref >> 8);
	r->rdata[1] = (uint8_t)pref;
	int n = dnswire_name_from_text(exch, r->rdata + 2, sizeof(r->rdata) - 2);
	assert_true(n > 0);
	r->rdlen = (uint16_t)(2 + n);
}

static void wire_lc(const uint8_t *w, size_t wl, char *out)
{
	size_t i = 0, o = 0;
	while (i < wl && w[i]) {
		if (o)
			out[o++] = '.';
		for (int k = 0; k < w[i]; k++)
			out[o++] = (char)tolower(w[i + 1 + k]);
		i += 1u + w[i];
	}
	out[o] = '\0';
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

/* The answer to one query, its question echoed byte for byte. Returns the
 * length, 0 to drop; *delay the wait before sending. */
static size_t srv_answer(const uint8_t *q, size_t qlen, uint8_t *out, unsigned *delay)
{
	struct dnswire_reader r;
	char name[300];
	*delay = 0;
	if (dnswire_reader_init(&r, q, qlen) < 0 || r.counts[DNSWIRE_QD] != 1)
		return 0;
	wire_lc(r.qname, r.qname_len, name);
	size_t qend = DNSWIRE_HEADER_LEN + r.qname_len + 4;
	memcpy(out, q, qend);
	uint16_t flags = DNS_F_QR | DNS_F_AA | (q[2] << 8 & DNS_F_RD);
	uint16_t an = 0;
	bool exists = false;
	size_t o = qend;
	pthread_mutex_lock(&srv.lock);
	for (unsigned i = 0; i < srv.nz; i++) {
		struct zrec *z = &srv.z[i];
		if (strcmp(z->name, name) != 0)
			continue;
		exists = true;
		if (z->drop) {
			pthread_mutex_unlock(&srv.lock);
			return 0;
		}
		if (z->delay_ms > *delay)
			*delay = z->delay_ms;
		if (z->type != r.qtype || o + 12 + z->rdlen > 1400)
			continue;
		out[o] = 0xc0;
		out[o + 1] = DNSWIRE_HEADER_LEN;
		put16(out + o + 2, z->type);
		put16(out + o + 4, DNS_C_IN);
		put32(out + o + 6, z->ttl);
		put16(out + o + 10, z->rdlen);
		memcpy(out + o + 12, z->rdata, z->rdlen);
		o += 12u + z->rdlen;
		an++;
	}
	pthread_mutex_unlock(&srv.lock);
	if (!exists)
		flags |= DNS_R_NXDOMAIN;
	uint16_t ns = 0;
	if (an == 0) {
		/* SOA of the root, TTL and minimum 30. */
		static const uint8_t soa[] = {
			0, 0, 6, 0, 1, 0, 0, 0, 30, 0, 22,
			0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 30,
		};
		memcpy(out + o, soa, sizeof(soa));
		o += sizeof(soa);
		ns = 1;
	}
	put16(out + 2, flags);
	put16(out + 4, 1);
	put16(out + 6, an);
	put16(out + 8, ns);
	put16(out + 10, 0);
	/* An EDNS query carried an OPT; the answer does without. */
	return o;
}

static void *srv_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&srv.stop)) {
		uint64_t now = mono_ms();
		int wait = 20;
		for (unsigned i = 0; i < srv.npending; i++) {
			int left = srv.pending[i].due_ms > now ? (int)(srv.pending[i].due_ms - now) : 0;
			if (left < wait)
				wait = left;
		}
		struct pollfd pfd = { .fd = srv.fd, .events = POLLIN };
		if (poll(&pfd, 1, wait) > 0) {
			uint8_t q[1500], a[1500];
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(srv.fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
			if (n > 0) {
				atomic_fetch_add(&srv.received, 1);
				unsigned delay;
				size_t len = srv_answer(q, (size_t)n, a, &delay);
				if (len && srv.npending < PENDING_MAX) {
					srv.pending[srv.npending].due_ms = mono_ms() + delay;
					srv.pending[srv.npending].to = from;
					srv.pending[srv.npending].len = len;
					memcpy(srv.pending[srv.npending].pkt, a, len);
					srv.npending++;
				}
			}
		}
		now = mono_ms();
		unsigned keep = 0;
		for (unsigned i = 0; i < srv.npending; i++) {
			if (srv.pending[i].due_ms <= now)
				sendto(srv.fd, srv.pending[i].pkt, srv.pending[i].len, 0,
				       (struct sockaddr *)&srv.pending[i].to, sizeof(srv.pending[i].to));
			else
				srv.pending[keep++] = srv.pending[i];
		}
		srv.npending = keep;
	}
	return NULL;
}

/* -------------------------------------------------------------- harness */

static uv_loop_t loop;
static struct upstream_pool *pool;
static struct cache_tier *cache;
static char servers[64];
static const char *helper;

struct rec {
	int calls;
	struct spf_verdict v;
};

static void rec_cb(void *arg, const struct spf_verdict *v)
{
	struct rec *r = arg;
	r->calls++;
	r->v = *v;
}

static void tick_cb(uv_timer_t *t)
{
	(void)t;
}

/* Run the loop until *flag is true or ms pass. */
static bool run_until(const int *counter, int want, unsigned ms)
{
	uv_timer_t t;
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, tick_cb, 10, 10);
	uint64_t end = mono_ms() + ms;
	while (*counter < want && mono_ms() < end)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return *counter >= want;
}

static void run_ms(unsigned ms)
{
	int never = 0;
	run_until(&never, 1, ms);
}

/* RBLMUX_SPF_HELPER_ARG: one more argument for the helper (a sanitizer
 * build runs it with --no-sandbox). */
static const char *helper_args[2];

static struct spf_service *start(uint32_t time_limit_ms, const char *path)
{
	struct spf_options o = {
		.helper_path = path ? path : helper,
		.helper_args = path ? NULL : helper_args,
		.helper_threads = 4,
		.up = pool,
		.servers_csv = servers,
		.dns_timeout_ms = 300,
		.time_limit_ms = time_limit_ms,
		.ttl_max_s = 3600,
		.error_ttl_s = 15,
		.cache = cache,
		.receiver = "rblmux.test",
	};
	struct spf_service *s;
	assert_int_equal(spf_service_start(&loop, &o, &s), 0);
	return s;
}

static void stop(struct spf_service *s)
{
	spf_service_stop(s);
	run_ms(200);
}

static bool wait_ready(struct spf_service *s)
{
	uint64_t end = mono_ms() + 5000;
	while (!spf_service_ready(s) && mono_ms() < end)
		run_ms(10);
	return spf_service_ready(s);
}

static struct spf_request req(const char *ip, const char *domain, const char *lp,
			      uint8_t *wire_buf)
{
	struct spf_request r = { 0 };
	if (inet_pton(AF_INET, ip, r.ip) == 1) {
		r.family = AF_INET;
	} else {
		r.family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, r.ip), 1);
	}
	int n = dnswire_name_from_text(domain, wire_buf, DNSWIRE_NAME_MAX);
	assert_true(n > 0);
	r.domain = wire_buf;
	r.domain_len = (size_t)n;
	r.local_part = (const uint8_t *)lp;
	r.local_part_len = lp ? strlen(lp) : 0;
	return r;
}

/* One check to its verdict. */
static struct spf_verdict check(struct spf_service *s, const char *ip, const char *domain,
				const char *lp, int *ret)
{
	uint8_t w[DNSWIRE_NAME_MAX];
	struct spf_request r = req(ip, domain, lp, w);
	struct rec rc = { 0 };
	struct spf_verdict now;
	int rv = spf_check(s, &r, rec_cb, &rc, &now);
	if (ret)
		*ret = rv;
	assert_true(rv >= 0);
	if (rv == 1) {
		assert_int_equal(rc.calls, 0);
		return now;
	}
	assert_int_equal(rc.calls, 0); /* never from inside spf_check */
	assert_true(run_until(&rc.calls, 1, 5000));
	run_ms(5);
	assert_int_equal(rc.calls, 1);
	return rc.v;
}

static int group_setup(void **state)
{
	(void)state;
	helper = getenv("RBLMUX_SPF_HELPER");
	helper_args[0] = getenv("RBLMUX_SPF_HELPER_ARG");
	if (!helper || access(helper, X_OK) != 0) {
		fprintf(stderr, "RBLMUX_SPF_HELPER must name the built rblmux-spf\n");
		return -1;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(srv.fd, (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	srv.port = ntohs(sa.sin_port);
	snprintf(servers, sizeof(servers), "127.0.0.1:%u", srv.port);
	if (pthread_create(&srv.thread, NULL, srv_main, NULL) != 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&loop) != 0 || upstream_pool_new(&loop, 200, &pool) != 0)
		return -1;
	cache = cache_mem_new(1 << 20);
	return cache ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	upstream_pool_close(pool);
	run_ms(100);
	uv_loop_close(&loop);
	cache->ops->destroy(cache);
	atomic_store(&srv.stop, true);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	return 0;
}

static int zone_setup(void **state)
{
	(void)state;
	pthread_mutex_lock(&srv.lock);
	srv.nz = 0;
	pthread_mutex_unlock(&srv.lock);
	atomic_store(&srv.received, 0);
	cache_mem_clear(cache);
	z_txt("pass.test", 300, "v=spf1 ip4:192.0.2.0/24 -all exp=exp.pass.test");
	z_txt("exp.pass.test", 60, "%{i} is not one of %{d}'s (see %{l})");
	z_txt("mx.test", 600, "v=spf1 mx -all");
	z_mx("mx.test", 100, 10, "mail.mx.test");
	z_a("mail.mx.test", 50, "198.51.100.1");
	return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_verdicts_and_cache(void **state)
{
	(void)state;
	struct spf_service *s = start(2000, NULL);
	int rv;
	struct spf_verdict v = check(s, "192.0.2.9", "pass.test", NULL, &rv);
	assert_int_equal(rv, 0);
	assert_int_equal(v.result, SPF_PASS);
	assert_int_equal(v.source, SPF_SRC_HELPER);
	assert_string_equal(v.txt, "pass (pass.test: 192.0.2.9 is a permitted sender)");
	assert_int_equal(v.ttl, 300);

	/* The explanation uses the local part, case kept. */
	v = check(s, "203.0.113.5", "pass.test", "Jane.Doe", &rv);
	assert_int_equal(v.result, SPF_FAIL);
	assert_string_equal(v.txt, "fail (203.0.113.5 is not one of pass.test's \\(see Jane.Doe\\))");
	assert_int_equal(v.ttl, 60);

	/* TTL: the smallest of TXT 600, MX 100, A 50. */
	v = check(s, "198.51.100.1", "mx.test", NULL, &rv);
	assert_int_equal(v.result, SPF_PASS);
	assert_int_equal(v.ttl, 50);

	/* Again: from the cache, no question asked, at once. */
	unsigned before = atomic_load(&srv.received);
	v = check(s, "198.51.100.1", "MX.test", NULL, &rv);
	assert_int_equal(rv, 1);
	assert_int_equal(v.source, SPF_SRC_CACHE);
	assert_int_equal(v.result, SPF_PASS);
	assert_true(v.ttl <= 50 && v.ttl >= 48);
	/* An IPv4-mapped client is the same client. */
	v = check(s, "::ffff:198.51.100.1", "mx.test", NULL, &rv);
	assert_int_equal(rv, 1);
	assert_int_equal(v.source, SPF_SRC_CACHE);
	assert_int_equal(atomic_load(&srv.received), before);

	/* none, and a name that is no domain: decided here. */
	v = check(s, "192.0.2.1", "nothing.test", NULL, &rv);
	assert_int_equal(v.result, SPF_NONE);
	assert_string_equal(v.txt, "none (nothing.test: no SPF record)");
	uint8_t w[] = "\3a.b\4test";
	struct spf_request r = { .family = AF_INET, .domain = w, .domain_len = sizeof(w) };
	struct rec rc = { 0 };
	assert_int_equal(spf_check(s, &r, rec_cb, &rc, &v), 1);
	assert_int_equal(v.result, SPF_NONE);
	assert_int_equal(v.source, SPF_SRC_LOCAL);
	assert_string_equal(v.txt, "none (a\\\\.b.test: not a valid domain name)");
	r.domain = (const uint8_t *)"\4pass\4test";
	r.domain_len = 11;
	r.local_part = (const uint8_t *)"a\0b";
	r.local_part_len = 3;
	assert_int_equal(spf_check(s, &r, rec_cb, &rc, &v), 1);
	assert_int_equal(v.result, SPF_NONE);
	r.family = 3;
	assert_int_equal(spf_check(s, &r, rec_cb, &rc, &v), -EINVAL);
	assert_int_equal(rc.calls, 0);

	struct spf_stats st;
	spf_service_stats(s, &st);
	assert_int_equal(st.cache_hits, 2);
	assert_int_equal(st.evaluations, 4);
	assert_int_equal(st.pending, 0);
	stop(s);
}

static void test_coalescing(void **state)
{
	(void)state;
	struct spf_service *s = start(2000, NULL);
	uint8_t w[DNSWIRE_NAME_MAX];
	struct spf_request r = req("192.0.2.7", "pass.test", NULL, w);
	struct rec a = { 0 }, b = { 0 };
	struct spf_verdict now;
	assert_int_equal(spf_check(s, &r, rec_cb, &a, &now), 0);
	assert_int_equal(spf_check(s, &r, rec_cb, &b, &now), 0);
	assert_true(run_until(&b.calls, 1, 3000));
	assert_true(run_until(&a.calls, 1, 100));
	assert_int_equal(a.v.result, SPF_PASS);
	assert_int_equal(b.v.result, SPF_PASS);
	assert_int_equal(a.v.source, SPF_SRC_HELPER);
	assert_int_equal(b.v.source, SPF_SRC_COALESCED);
	struct spf_stats st;
	spf_service_stats(s, &st);
	assert_int_equal(st.evaluations, 1);
	assert_int_equal(st.coalesced, 1);
	stop(s);
}

static void test_time_limit(void **state)
{
	(void)state;
	zadd("drop.test", DNS_T_TXT, 1)->drop = true;
	struct spf_service *s = start(700, NULL);
	assert_true(wait_ready(s));
	uint64_t t0 = mono_ms();
	int rv;
	struct spf_verdict v = check(s, "192.0.2.1", "drop.test", NULL, &rv);
	uint64_t took = mono_ms() - t0;
	assert_int_equal(v.result, SPF_TEMPERROR);
	assert_int_equal(v.ttl, 15);
	assert_true(took >= 250 && took < 1500);
	/* A temperror is not cached: asked again. */
	unsigned before = atomic_load(&srv.received);
	v = check(s, "192.0.2.1", "drop.test", NULL, &rv);
	assert_int_equal(rv, 0);
	assert_int_equal(v.result, SPF_TEMPERROR);
	assert_true(atomic_load(&srv.received) > before);
	stop(s);
}

/* The amplifier: 5 levels of 10 includes. Few questions, permerror. */
static void test_include_tree(void **state)
{
	char name[64], rec[600];
	(void)state;
	for (int level = 0; level <= 5; level++) {
		size_t o = (size_t)snprintf(rec, sizeof(rec), "v=spf1");
		for (int k = 0; k < 10 && level < 5; k++)
			o += (size_t)snprintf(rec + o, sizeof(rec) - o, " include:l%d-%d.tree.test",
					      level + 1, k);
		snprintf(rec + o, sizeof(rec) - o, level < 5 ? " -all" : " ?all");
		for (int k = 0; k < 10; k++) {
			snprintf(name, sizeof(name), level ? "l%d-%d.tree.test" : "tree.test", level, k);
			z_txt(name, 300, rec);
			if (!level)
				break;
		}
	}
	struct spf_service *s = start(3000, NULL);
	assert_true(wait_ready(s));
	unsigned before = atomic_load(&srv.received);
	int rv;
	struct spf_verdict v = check(s, "192.0.2.1", "tree.test", NULL, &rv);
	assert_int_equal(v.result, SPF_PERMERROR);
	assert_string_equal(v.txt, "permerror (tree.test: more than 10 DNS-querying terms)");
	unsigned asked = atomic_load(&srv.received) - before;
	assert_true(asked >= 11 && asked <= 11 + 2);
	stop(s);
}

/* Killing the helper mid-run: every check is answered, and it comes back. */
static void test_helper_killed(void **state)
{
	enum { N = 20 };
	(void)state;
	z_txt("slow.test", 300, "v=spf1 ip4:192.0.2.0/24 -all");
	/* Slow, but within the 300 ms each question may take. */
	srv.z[srv.nz - 1].delay_ms = 200;
	struct spf_service *s = start(3000, NULL);
	assert_true(wait_ready(s));
	int pid = spf_service_helper_pid(s);
	assert_true(pid > 0);
	struct rec r[N];
	uint8_t w[N][DNSWIRE_NAME_MAX];
	char ip[32];
	memset(r, 0, sizeof(r));
	for (int i = 0; i < N; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
		struct spf_request q = req(ip, "slow.test", NULL, w[i]);
		struct spf_verdict now;
		assert_int_equal(spf_check(s, &q, rec_cb, &r[i], &now), 0);
	}
	run_ms(100);
	assert_int_equal(kill(pid, SIGKILL), 0);
	int total = 0;
	uint64_t end = mono_ms() + 3000;
	while (mono_ms() < end) {
		total = 0;
		for (int i = 0; i < N; i++)
			total += r[i].calls;
		if (total == N)
			break;
		run_ms(10);
	}
	assert_int_equal(total, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].v.result, SPF_TEMPERROR);
		assert_string_equal(r[i].v.txt, "temperror (slow.test: the SPF helper stopped)");
	}
	assert_true(wait_ready(s));
	assert_true(spf_service_helper_pid(s) != pid);
	int rv;
	struct spf_verdict v = check(s, "192.0.2.200", "slow.test", NULL, &rv);
	assert_string_equal(v.txt, "pass (slow.test: 192.0.2.200 is a permitted sender)");
	struct spf_stats st;
	spf_service_stats(s, &st);
	assert_int_equal(st.helper_deaths, 1);
	assert_int_equal(st.helper_starts, 2);
	stop(s);
}

/* A helper that speaks garbage is killed; one that cannot start leaves
 * checks to time out; stopping answers what is pending. */
static void test_bad_helpers_and_stop(void **state)
{
	char path[] = "/tmp/rblmux-test-spf-XXXXXX";
	(void)state;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char script[] = "#!/bin/sh\nprintf '\\000\\000\\000\\001\\377' >&0\nexec sleep 5\n";
	assert_int_equal(write(fd, script, sizeof(script) - 1), (ssize_t)sizeof(script) - 1);
	close(fd);
	chmod(path, 0700);
	struct spf_service *s = start(600, path);
	run_ms(300);
	struct spf_stats st;
	spf_service_stats(s, &st);
	assert_true(st.helper_deaths >= 1);
	assert_false(spf_service_ready(s));
	int rv;
	struct spf_verdict v = check(s, "192.0.2.1", "pass.test", NULL, &rv);
	assert_int_equal(v.result, SPF_TEMPERROR);
	assert_string_equal(v.txt, "temperror (pass.test: the SPF helper is not running)");
	stop(s);

	/* A helper that says hello, then never answers: killed as stuck once
	 * 16 checks in a row ran out of time. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0700);
	assert_true(fd >= 0);
	const char mute[] = "#!/bin/sh\nprintf '\\000\\000\\000\\005\\001\\000\\000\\000\\001' >&0\n"
			    "exec sleep 30\n";
	assert_int_equal(write(fd, mute, sizeof(mute) - 1), (ssize_t)sizeof(mute) - 1);
	close(fd);
	s = start(300, path);
	assert_true(wait_ready(s));
	struct rec many[16];
	uint8_t names[16][DNSWIRE_NAME_MAX];
	memset(many, 0, sizeof(many));
	for (int i = 0; i < 16; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
		struct spf_request q = req(ip, "pass.test", NULL, names[i]);
		assert_int_equal(spf_check(s, &q, rec_cb, &many[i], &v), 0);
	}
	assert_true(run_until(&many[15].calls, 1, 2000));
	run_ms(100);
	spf_service_stats(s, &st);
	assert_int_equal(st.timeouts, 16);
	assert_int_equal(st.helper_deaths, 1);
	stop(s);
	unlink(path);

	s = start(600, "/nonexistent/rblmux-spf");
	v = check(s, "192.0.2.1", "pass.test", NULL, &rv);
	assert_int_equal(v.result, SPF_TEMPERROR);
	stop(s);

	/* Stop with checks in flight: each is answered inside the stop. */
	z_txt("slow.test", 300, "v=spf1 -all");
	srv.z[srv.nz - 1].delay_ms = 500;
	s = start(3000, NULL);
	assert_true(wait_ready(s));
	uint8_t w[DNSWIRE_NAME_MAX];
	struct spf_request q = req("192.0.2.3", "slow.test", NULL, w);
	struct rec rc = { 0 };
	assert_int_equal(spf_check(s, &q, rec_cb, &rc, &v), 0);
	run_ms(50);
	spf_service_stop(s);
	assert_int_equal(rc.calls, 1);
	assert_int_equal(rc.v.result, SPF_TEMPERROR);
	assert_int_equal(spf_check(s, &q, rec_cb, &rc, &v), -ESHUTDOWN);
	run_ms(700);
}

/* A shared tier that answers on a later loop turn, as Redis does. */
struct async_tier {
	struct cache_tier base;
	struct cache_tier *inner;
	unsigned gets, puts;
	char last_key[CACHE_KEY_MAX + 1];
};

struct async_get {
	uv_timer_t t;
	struct async_tier *at;
	cache_get_cb cb;
	void *arg;
	size_t len;
	uint8_t key[CACHE_KEY_MAX];
};

static void async_get_closed(uv_handle_t *h)
{
	free(h->data);
}

static void async_get_fire(uv_timer_t *t)
{
	struct async_get *g = t->data;
	struct cache_item item;
	int st = g->at->inner->ops->get(g->at->inner, g->key, g->len, (uint32_t)time(NULL),
					&item, NULL, NULL);
	g->cb(g->arg, st < 0 ? CACHE_MISS : (enum cache_status)st, st > 0 ? &item : NULL);
	uv_close((uv_handle_t *)t, async_get_closed);
}

static int async_get(struct cache_tier *t, const uint8_t *key, size_t len, uint32_t now,
		     struct cache_item *item, cache_get_cb cb, void *arg)
{
	struct async_tier *at = (struct async_tier *)t;
	struct async_get *g = calloc(1, sizeof(*g));
	(void)now;
	(void)item;
	assert_non_null(g);
	at->gets++;
	g->at = at;
	g->cb = cb;
	g->arg = arg;
	g->len = len;
	memcpy(g->key, key, len);
	uv_timer_init(&loop, &g->t);
	g->t.data = g;
	uv_timer_start(&g->t, async_get_fire, 1, 0);
	return -EINPROGRESS;
}

static void async_put(struct cache_tier *t, const uint8_t *key, size_t len,
		      const uint8_t *value, size_t vlen, uint32_t now, uint32_t expire,
		      uint32_t stale_until)
{
	struct async_tier *at = (struct async_tier *)t;
	at->puts++;
	snprintf(at->last_key, sizeof(at->last_key), "%.*s", (int)len, (const char *)key);
	at->inner->ops->put(at->inner, key, len, value, vlen, now, expire, stale_until);
}

static void async_destroy(struct cache_tier *t)
{
	struct async_tier *at = (struct async_tier *)t;
	at->inner->ops->destroy(at->inner);
}

static const struct cache_tier_ops async_ops = {
	.name = "async", .get = async_get, .put = async_put, .destroy = async_destroy,
};

/* Verdicts go to the shared tier too, and a loop that has not evaluated a
 * check finds it there (then keeps it in its own tier). */
static void test_shared_tier(void **state)
{
	(void)state;
	struct async_tier at = { .base = { .ops = &async_ops }, .inner = cache_mem_new(1 << 20) };
	assert_non_null(at.inner);
	struct spf_options o = {
		.helper_path = helper, .helper_args = helper_args, .helper_threads = 2,
		.up = pool, .servers_csv = servers, .dns_timeout_ms = 300,
		.time_limit_ms = 2000, .ttl_max_s = 3600, .cache = cache,
		.shared = &at.base,
	};
	struct spf_service *a, *b;
	assert_int_equal(spf_service_start(&loop, &o, &a), 0);
	int rv;
	struct spf_verdict v = check(a, "192.0.2.9", "pass.test", "J\\x", &rv);
	assert_int_equal(rv, 0);
	assert_int_equal(v.source, SPF_SRC_HELPER);
	assert_int_equal(at.gets, 1);
	assert_int_equal(at.puts, 1);
	assert_string_equal(at.last_key, "spf:192.0.2.9:J\\x5cx@pass.test");
	stop(a);

	struct cache_tier *own = cache_mem_new(1 << 20);
	o.cache = own;
	assert_int_equal(spf_service_start(&loop, &o, &b), 0);
	v = check(b, "192.0.2.9", "pass.test", "J\\x", &rv);
	assert_int_equal(rv, 0);
	assert_int_equal(v.source, SPF_SRC_CACHE);
	assert_int_equal(v.result, SPF_PASS);
	assert_true(v.ttl > 290 && v.ttl <= 300);
	v = check(b, "192.0.2.9", "pass.test", "J\\x", &rv);
	assert_int_equal(rv, 1);
	assert_int_equal(at.gets, 2);
	struct spf_stats st;
	spf_service_stats(b, &st);
	assert_int_equal(st.evaluations, 0);
	assert_int_equal(st.cache_hits, 2);
	stop(b);
	own->ops->destroy(own);
	async_destroy(&at.base);
}

static void test_default_helper_path(void **state)
{
	char out[8];
	char big[4096];
	(void)state;
	assert_int_equal(spf_default_helper_path(out, sizeof(out)), -ENOSPC);
	int rc = spf_default_helper_path(big, sizeof(big));
	/* This test binary sits beside rblmux-spf in the build tree. */
	assert_int_equal(rc, 0);
	assert_non_null(strstr(big, "rblmux-spf"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_verdicts_and_cache, zone_setup),
		cmocka_unit_test_setup(test_coalescing, zone_setup),
		cmocka_unit_test_setup(test_time_limit, zone_setup),
		cmocka_unit_test_setup(test_include_tree, zone_setup),
		cmocka_unit_test_setup(test_helper_killed, zone_setup),
		cmocka_unit_test_setup(test_bad_helpers_and_stop, zone_setup),
		cmocka_unit_test_setup(test_shared_tier, zone_setup),
		cmocka_unit_test(test_default_helper_path),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
