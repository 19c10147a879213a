/*
 * Tests for upstream: a small DNS server on 127.0.0.1 runs in a thread and
 * behaves by the first label of the question: "ok" answers A 127.0.0.2,
 * "flip" echoes the question with its case flipped, "drop" never answers,
 * "servfail", "refused" and "nx" answer that rcode, "trunc" claims an answer
 * record it does not carry, and "slow" answers A after a delay while counting
 * how many questions it holds at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "resolver/upstream.h"

/* ---------------------------------------------------------- test server */

#define SRV_MAX_PENDING 2048
#define SRV_IDS 64

struct srv_pending {
	uint64_t due_ms;
	struct sockaddr_in to;
	uint16_t len;
	uint8_t pkt[512];
};

static struct {
	int fd;
	uint16_t port;
	pthread_t thread;
	atomic_bool stop;
	atomic_uint received;
	atomic_uint outstanding_max;
	atomic_uint upper_letters, lower_letters;
	atomic_uint delay_ms;
	atomic_uint nids;
	uint16_t ids[SRV_IDS];
	/* Only the server thread touches the queue of delayed answers. */
	struct srv_pending *pending;
	size_t npending;
} srv;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool is_letter(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Header and question copied from the query (so the ID and the name's case
 * are echoed), flags and counts set for an answer. */
static size_t srv_answer(const uint8_t *q, size_t qend, uint8_t *out,
			 uint8_t rcode, uint16_t ancount, bool flip, bool with_a)
{
	static const uint8_t a_rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4,
					127, 0, 0, 2 };
	size_t len = qend;
	memcpy(out, q, qend);
	out[2] = (uint8_t)(0x80 | (q[2] & 0x01));
	out[3] = (uint8_t)(0x80 | rcode);
	out[4] = 0;
	out[5] = 1;
	out[6] = (uint8_t)(ancount >> 8);
	out[7] = (uint8_t)ancount;
	memset(out + 8, 0, 4);
	if (flip) {
		/* Label length bytes are below 64: never letters. */
		for (size_t i = 12; i < qend - 4; i++)
			if (is_letter(out[i]))
				out[i] ^= 0x20;
	}
	if (with_a) {
		memcpy(out + len, a_rr, sizeof(a_rr));
		len += sizeof(a_rr);
	}
	return len;
}

static void srv_handle(const uint8_t *q, size_t len, const struct sockaddr_in *from)
{
	char label[64] = "";
	size_t i = 12;
	uint8_t out[600];
	size_t out_len = 0;

	if (len < 12)
		return;
	atomic_fetch_add(&srv.received, 1);
	unsigned n = atomic_load(&srv.nids);
	if (n < SRV_IDS) {
		srv.ids[n] = (uint16_t)(q[0] << 8 | q[1]);
		atomic_store(&srv.nids, n + 1);
	}
	if (i < len && q[i] > 0 && q[i] < 64 && i + 1 + q[i] <= len) {
		for (size_t k = 0; k < q[i]; k++)
			label[k] = (char)(q[i + 1 + k] | 0x20);
		label[q[i]] = 0;
	}
	while (i < len && q[i] != 0) {
		if (q[i] > 63)
			return;
		for (size_t k = i + 1; k <= i + q[i] && k < len; k++) {
			if (q[k] >= 'A' && q[k] <= 'Z')
				atomic_fetch_add(&srv.upper_letters, 1);
			else if (q[k] >= 'a' && q[k] <= 'z')
				atomic_fetch_add(&srv.lower_letters, 1);
		}
		i += 1 + (size_t)q[i];
	}
	if (i + 5 > len)
		return;
	size_t qend = i + 5;

	if (strcmp(label, "drop") == 0)
		return;
	if (strcmp(label, "flip") == 0)
		out_len = srv_answer(q, qend, out, 0, 1, true, true);
	else if (strcmp(label, "servfail") == 0)
		out_len = srv_answer(q, qend, out, 2, 0, false, false);
	else if (strcmp(label, "refused") == 0)
		out_len = srv_answer(q, qend, out, 5, 0, false, false);
	else if (strcmp(label, "nx") == 0)
		out_len = srv_answer(q, qend, out, 3, 0, false, false);
	else if (strcmp(label, "trunc") == 0)
		out_len = srv_answer(q, qend, out, 0, 1, false, false);
	else
		out_len = srv_answer(q, qend, out, 0, 1, false, true);

	if (strcmp(label, "slow") == 0 && srv.npending < SRV_MAX_PENDING) {
		struct srv_pending *pd = &srv.pending[srv.npending++];
		pd->due_ms = mono_ms() + atomic_load(&srv.delay_ms);
		pd->to = *from;
		pd->len = (uint16_t)out_len;
		memcpy(pd->pkt, out, out_len);
		if (srv.npending > atomic_load(&srv.outstanding_max))
			atomic_store(&srv.outstanding_max, (unsigned)srv.npending);
		return;
	}
	sendto(srv.fd, out, out_len, 0, (const struct sockaddr *)from, sizeof(*from));
}

static void *srv_main(void *unused)
{
	(void)unused;
	uint8_t buf[1500];
	while (!atomic_load(&srv.stop)) {
		struct pollfd pfd = { .fd = srv.fd, .events = POLLIN };
		poll(&pfd, 1, 2);
		for (;;) {
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(srv.fd, buf, sizeof(buf), MSG_DONTWAIT,
					     (struct sockaddr *)&from, &fl);
			if (n < 0)
				break;
			srv_handle(buf, (size_t)n, &from);
		}
		uint64_t now = mono_ms();
		size_t keep = 0;
		for (size_t k = 0; k < srv.npending; k++) {
			struct srv_pending *pd = &srv.pending[k];
			if (pd->due_ms <= now)
				sendto(srv.fd, pd->pkt, pd->len, 0,
				       (const struct sockaddr *)&pd->to, sizeof(pd->to));
			else
				srv.pending[keep++] = *pd;
		}
		srv.npending = keep;
	}
	return NULL;
}

static void srv_reset(void)
{
	atomic_store(&srv.received, 0);
	atomic_store(&srv.outstanding_max, 0);
	atomic_store(&srv.upper_letters, 0);
	atomic_store(&srv.lower_letters, 0);
	atomic_store(&srv.nids, 0);
	atomic_store(&srv.delay_ms, 20);
}

static int group_setup(void **state)
{
	(void)state;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.pending = calloc(SRV_MAX_PENDING, sizeof(*srv.pending));
	srv.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!srv.pending || srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(srv.fd, (struct sockaddr *)&sa, &sl) != 0)
		return -1;
	srv.port = ntohs(sa.sin_port);
	srv_reset();
	return pthread_create(&srv.thread, NULL, srv_main, NULL) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	atomic_store(&srv.stop, true);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	free(srv.pending);
	return 0;
}

/* A UDP port on 127.0.0.1 with nothing behind it. */
static uint16_t closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* ---------------------------------------------------------- client side */

struct qrec {
	unsigned calls;
	uint8_t status, rcode, n_a;
	uint8_t a0[4];
	uint64_t latency_us;
};

static bool g_in_query;
static unsigned g_sync_calls;
static unsigned g_calls;
static char g_servers[128];

static void rec_cb(void *arg, const struct listans *ans, uint64_t latency_us)
{
	struct qrec *r = arg;
	if (g_in_query)
		g_sync_calls++;
	g_calls++;
	r->calls++;
	r->status = ans->status;
	r->rcode = ans->rcode;
	r->n_a = ans->n_a;
	memcpy(r->a0, ans->a[0], 4);
	r->latency_us = latency_us;
}

static int to_wire(const char *text, uint8_t *out)
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
	return (int)o;
}

static int ask_at(struct upstream_pool *p, const char *servers, uint32_t timeout_ms,
		  const char *name, upstream_cb cb, void *arg)
{
	uint8_t wire[256];
	int len = to_wire(name, wire);
	g_in_query = true;
	int rc = upstream_query(p, servers, timeout_ms, wire, (size_t)len, 1, cb, arg);
	g_in_query = false;
	return rc;
}

static int ask(struct upstream_pool *p, uint32_t timeout_ms, const char *name,
	       struct qrec *r)
{
	return ask_at(p, g_servers, timeout_ms, name, rec_cb, r);
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

/* Close the pool (NULL: closed already; it may be freed), let it free
 * itself, and check nothing was left open. */
static void finish(uv_loop_t *loop, struct upstream_pool *p)
{
	uv_timer_t guard;
	bool fired = false;
	if (p)
		upstream_pool_close(p);
	uv_update_time(loop);
	uv_timer_init(loop, &guard);
	guard.data = &fired;
	uv_timer_start(&guard, guard_cb, 5000, 0);
	uv_unref((uv_handle_t *)&guard);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_false(fired);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

static int test_setup(void **state)
{
	(void)state;
	g_in_query = false;
	g_sync_calls = 0;
	g_calls = 0;
	snprintf(g_servers, sizeof(g_servers), "127.0.0.1:%u", srv.port);
	srv_reset();
	return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_pool_new_args(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p = NULL;
	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(NULL, 100, &p), -EINVAL);
	assert_int_equal(upstream_pool_new(&loop, 0, &p), -EINVAL);
	assert_int_equal(upstream_pool_new(&loop, 100, NULL), -EINVAL);
	assert_null(p);
	assert_int_equal(upstream_pool_new(&loop, 100, &p), 0);
	assert_non_null(p);
	finish(&loop, p);
}

static void test_query_args(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec r = { 0 };
	uint8_t good[] = { 2, 'o', 'k', 4, 't', 'e', 's', 't', 0 };
	uint8_t long_label[70] = { 64 };
	uint8_t no_root[] = { 2, 'o', 'k' };
	uint8_t early_root[] = { 2, 'o', 'k', 0, 0 };
	uint8_t huge[300];
	memset(huge, 1, sizeof(huge));

	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 10, &p), 0);
	assert_int_equal(upstream_query(p, g_servers, 500, good, sizeof(good), 1, NULL, &r), -EINVAL);
	assert_int_equal(upstream_query(p, g_servers, 500, good, 0, 1, rec_cb, &r), -EINVAL);
	assert_int_equal(upstream_query(p, g_servers, 500, NULL, 9, 1, rec_cb, &r), -EINVAL);
	assert_int_equal(upstream_query(p, g_servers, 500, long_label, sizeof(long_label), 1, rec_cb, &r), -EINVAL);
	assert_int_equal(upstream_query(p, g_servers, 500, no_root, sizeof(no_root), 1, rec_cb, &r), -EINVAL);
	assert_int_equal(upstream_query(p, g_servers, 500, early_root, sizeof(early_root), 1, rec_cb, &r), -EINVAL);
	assert_int_equal(upstream_query(p, g_servers, 500, huge, sizeof(huge), 1, rec_cb, &r), -EINVAL);
	assert_int_equal(upstream_query(p, g_servers, 0, good, sizeof(good), 1, rec_cb, &r), -EINVAL);
	assert_int_equal(upstream_query(p, "", 500, good, sizeof(good), 1, rec_cb, &r), -EINVAL);
	assert_int_equal(upstream_query(p, "not-an-address", 500, good, sizeof(good), 1, rec_cb, &r), -EINVAL);

	struct upstream_stats st;
	upstream_pool_stats(p, &st);
	assert_int_equal(st.sent, 0);
	assert_int_equal(st.queued, 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(r.calls, 0);

	upstream_pool_close(p);
	assert_int_equal(upstream_query(p, g_servers, 500, good, sizeof(good), 1, rec_cb, &r), -ESHUTDOWN);
	finish(&loop, p);
	assert_int_equal(r.calls, 0);
}

static void test_answer_ok(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec r[8];
	char name[64];
	memset(r, 0, sizeof(r));

	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 100, &p), 0);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "ok.abcdefghijklmnopqrst%d.example", i);
		assert_int_equal(ask(p, 1000, name, &r[i]), 0);
	}
	assert_int_equal(g_calls, 0);
	assert_true(run_until(&loop, &g_calls, 8, 3000));
	assert_int_equal(g_sync_calls, 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, LISTANS_RECORDS);
		assert_int_equal(r[i].n_a, 1);
		assert_memory_equal(r[i].a0, ((uint8_t[]){ 127, 0, 0, 2 }), 4);
		assert_true(r[i].latency_us < 3000000);
	}
	/* The names went out in mixed case (DNS 0x20): 8 * 32 letters all of
	 * one case by chance is a 2^-255 event. */
	assert_true(atomic_load(&srv.upper_letters) > 0);
	assert_true(atomic_load(&srv.lower_letters) > 0);
	/* IDs are ours and random, not c-ares' copy of a zero. */
	unsigned nids = atomic_load(&srv.nids);
	assert_int_equal(nids, 8);
	bool differ = false;
	for (unsigned i = 1; i < nids; i++)
		differ |= srv.ids[i] != srv.ids[0];
	assert_true(differ);

	struct upstream_stats st;
	upstream_pool_stats(p, &st);
	assert_int_equal(st.sent, 8);
	assert_int_equal(st.answered, 8);
	assert_int_equal(st.timeouts + st.errors + st.bad, 0);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.queued, 0);
	finish(&loop, p);
	assert_int_equal(g_calls, 8);
}

static void test_rcodes(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec nx = { 0 }, sf = { 0 }, rf = { 0 }, tr = { 0 };

	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 100, &p), 0);
	assert_int_equal(ask(p, 1000, "nx.example", &nx), 0);
	assert_int_equal(ask(p, 1000, "servfail.example", &sf), 0);
	assert_int_equal(ask(p, 1000, "refused.example", &rf), 0);
	assert_int_equal(ask(p, 1000, "trunc.example", &tr), 0);
	assert_true(run_until(&loop, &g_calls, 4, 3000));
	assert_int_equal(g_sync_calls, 0);
	assert_int_equal(nx.calls, 1);
	assert_int_equal(nx.status, LISTANS_NXDOMAIN);
	assert_int_equal(sf.calls, 1);
	assert_int_equal(sf.status, LISTANS_SERVFAIL);
	assert_int_equal(sf.rcode, 2);
	assert_int_equal(rf.calls, 1);
	assert_int_equal(rf.status, LISTANS_SERVFAIL);
	assert_int_equal(rf.rcode, 5);
	assert_int_equal(tr.calls, 1);
	assert_int_equal(tr.status, LISTANS_BAD);
	/* One server: a SERVFAIL is the answer, not a reason to ask again. */
	assert_int_equal(atomic_load(&srv.received), 4);

	struct upstream_stats st;
	upstream_pool_stats(p, &st);
	assert_int_equal(st.sent, 4);
	assert_int_equal(st.answered, 3);
	assert_int_equal(st.bad, 1);
	finish(&loop, p);
}

static void test_case_flipped(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec r = { 0 };

	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 100, &p), 0);
	assert_int_equal(ask(p, 600, "flip.abcdefghijklmnop.example", &r), 0);
	assert_true(run_until(&loop, &g_calls, 1, 3000));
	assert_int_equal(r.calls, 1);
	assert_true(r.status == LISTANS_BAD || r.status == LISTANS_TIMEOUT);
	assert_int_equal(g_sync_calls, 0);
	finish(&loop, p);
	assert_int_equal(r.calls, 1);
}

static void test_drop_timeout(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec r = { 0 };

	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 100, &p), 0);
	assert_int_equal(ask(p, 300, "drop.example", &r), 0);
	/* 300 ms asked; ten times that is a loose upper bound. */
	assert_true(run_until(&loop, &g_calls, 1, 3000));
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, LISTANS_TIMEOUT);
	assert_true(r.latency_us < 3000000);
	unsigned got = atomic_load(&srv.received);
	assert_true(got >= 1 && got <= 2);

	struct upstream_stats st;
	upstream_pool_stats(p, &st);
	assert_int_equal(st.timeouts, 1);
	assert_int_equal(st.answered, 0);
	finish(&loop, p);
	assert_int_equal(r.calls, 1);
}

static void test_closed_port(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec r = { 0 };
	char servers[64];

	snprintf(servers, sizeof(servers), "127.0.0.1:%u", closed_port());
	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 100, &p), 0);
	assert_int_equal(ask_at(p, servers, 500, "ok.example", rec_cb, &r), 0);
	assert_true(run_until(&loop, &g_calls, 1, 3000));
	assert_int_equal(r.calls, 1);
	assert_true(r.status == LISTANS_SERVFAIL || r.status == LISTANS_TIMEOUT);
	assert_int_equal(g_sync_calls, 0);
	finish(&loop, p);
	assert_int_equal(r.calls, 1);
}

static void test_two_servers(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec ok = { 0 }, sf = { 0 };
	char failover[96], twice[96];

	snprintf(failover, sizeof(failover), "127.0.0.1:%u,127.0.0.1:%u",
		 closed_port(), srv.port);
	snprintf(twice, sizeof(twice), "127.0.0.1:%u,127.0.0.1:%u", srv.port, srv.port);
	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 100, &p), 0);
	/* The first server refuses the connection: c-ares moves to the second. */
	assert_int_equal(ask_at(p, failover, 2000, "ok.example", rec_cb, &ok), 0);
	assert_true(run_until(&loop, &g_calls, 1, 3000));
	assert_int_equal(ok.status, LISTANS_RECORDS);

	/* With several servers a SERVFAIL sends c-ares to the next one. */
	srv_reset();
	assert_int_equal(ask_at(p, twice, 2000, "servfail.example", rec_cb, &sf), 0);
	assert_true(run_until(&loop, &g_calls, 2, 3000));
	assert_int_equal(sf.calls, 1);
	assert_int_equal(sf.status, LISTANS_SERVFAIL);
	assert_true(atomic_load(&srv.received) >= 2);
	finish(&loop, p);
	assert_int_equal(ok.calls, 1);
	assert_int_equal(sf.calls, 1);
}

#define CONC_N 1000
#define CONC_MAX 100

static struct upstream_pool *g_conc_pool;
static unsigned g_conc_inflight_max;

static void conc_cb(void *arg, const struct listans *ans, uint64_t latency_us)
{
	struct upstream_stats st;
	upstream_pool_stats(g_conc_pool, &st);
	if (st.inflight > g_conc_inflight_max)
		g_conc_inflight_max = st.inflight;
	rec_cb(arg, ans, latency_us);
}

static void test_concurrency_cap(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec *r = calloc(CONC_N, sizeof(*r));
	char name[64];

	assert_non_null(r);
	g_conc_inflight_max = 0;
	atomic_store(&srv.delay_ms, 20);
	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, CONC_MAX, &p), 0);
	g_conc_pool = p;
	for (int i = 0; i < CONC_N; i++) {
		snprintf(name, sizeof(name), "slow.q%d.example", i);
		assert_int_equal(ask_at(p, g_servers, 8000, name, conc_cb, &r[i]), 0);
	}
	struct upstream_stats st;
	upstream_pool_stats(p, &st);
	assert_int_equal(st.inflight, CONC_MAX);
	assert_int_equal(st.queued, CONC_N - CONC_MAX);
	assert_int_equal(g_calls, 0);

	assert_true(run_until(&loop, &g_calls, CONC_N, 10000));
	assert_int_equal(g_sync_calls, 0);
	for (int i = 0; i < CONC_N; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, LISTANS_RECORDS);
	}
	unsigned seen = atomic_load(&srv.outstanding_max);
	assert_true(seen <= CONC_MAX);
	assert_true(seen > 1);
	assert_true(g_conc_inflight_max <= CONC_MAX);
	upstream_pool_stats(p, &st);
	assert_int_equal(st.sent, CONC_N);
	assert_int_equal(st.answered, CONC_N);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.queued, 0);
	finish(&loop, p);
	assert_int_equal(g_calls, CONC_N);
	free(r);
}

static void stop_cb(uv_timer_t *t)
{
	uv_stop(t->loop);
}

static void test_close_with_queries(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec r[20];
	uv_timer_t t;
	char name[64];
	memset(r, 0, sizeof(r));

	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 5, &p), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "drop.c%d.example", i);
		assert_int_equal(ask(p, 5000, name, &r[i]), 0);
	}
	/* Let the first five reach the server. */
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, stop_cb, 50, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	assert_int_equal(g_calls, 0);
	struct upstream_stats st;
	upstream_pool_stats(p, &st);
	assert_int_equal(st.inflight, 5);
	assert_int_equal(st.queued, 15);

	finish(&loop, p);
	assert_int_equal(g_calls, 20);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, LISTANS_TIMEOUT);
	}
	assert_int_equal(g_sync_calls, 0);
}

static struct upstream_pool *g_close_pool;
static int g_after_close_rc;

static void close_from_cb(void *arg, const struct listans *ans, uint64_t latency_us)
{
	struct qrec dummy = { 0 };
	rec_cb(arg, ans, latency_us);
	upstream_pool_close(g_close_pool);
	g_after_close_rc = ask(g_close_pool, 1000, "ok.late.example", &dummy);
}

static void test_close_in_callback(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec ok = { 0 }, drops[10];
	char name[64];
	memset(drops, 0, sizeof(drops));

	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 100, &p), 0);
	g_close_pool = p;
	g_after_close_rc = 0;
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "drop.k%d.example", i);
		assert_int_equal(ask(p, 5000, name, &drops[i]), 0);
	}
	/* Closed from inside c-ares' answer processing. */
	assert_int_equal(ask_at(p, g_servers, 5000, "ok.example", close_from_cb, &ok), 0);
	assert_true(run_until(&loop, &ok.calls, 1, 3000));
	finish(&loop, NULL);
	assert_int_equal(g_after_close_rc, -ESHUTDOWN);
	assert_int_equal(ok.calls, 1);
	assert_int_equal(ok.status, LISTANS_RECORDS);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(drops[i].calls, 1);
		assert_int_equal(drops[i].status, LISTANS_TIMEOUT);
	}
	assert_int_equal(g_calls, 11);
}

struct chain {
	struct upstream_pool *p;
	unsigned done, target;
	int last_rc;
	struct qrec r;
};

static void chain_cb(void *arg, const struct listans *ans, uint64_t latency_us)
{
	struct chain *c = arg;
	rec_cb(&c->r, ans, latency_us);
	if (ans->status != LISTANS_RECORDS)
		return;
	if (++c->done < c->target)
		c->last_rc = ask_at(c->p, g_servers, 1000, "ok.chain.example", chain_cb, c);
}

static void test_query_from_callback(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct chain c = { .target = 20 };

	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 1, &c.p), 0);
	assert_int_equal(ask_at(c.p, g_servers, 1000, "ok.chain.example", chain_cb, &c), 0);
	assert_true(run_until(&loop, &c.done, 20, 5000));
	assert_int_equal(c.last_rc, 0);
	assert_int_equal(g_calls, 20);
	assert_int_equal(g_sync_calls, 0);
	finish(&loop, c.p);
	assert_int_equal(g_calls, 20);
}

static void test_queued_past_deadline(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec r[3];
	char name[64];
	memset(r, 0, sizeof(r));

	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 1, &p), 0);
	/* One slot: the first holds it until about the shared deadline, the
	 * second may get it just then, the third never does and must time out
	 * in the queue instead of going out late. */
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "drop.w%d.example", i);
		assert_int_equal(ask(p, 300, name, &r[i]), 0);
	}
	assert_true(run_until(&loop, &g_calls, 3, 3000));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, LISTANS_TIMEOUT);
	}
	struct upstream_stats st;
	upstream_pool_stats(p, &st);
	assert_true(st.sent >= 1 && st.sent <= 2);
	assert_int_equal(st.timeouts, 3);
	assert_int_equal(st.queued, 0);
	finish(&loop, p);
	assert_int_equal(g_calls, 3);
}

static void test_sync_failure_deferred(void **state)
{
	(void)state;
	uv_loop_t loop;
	struct upstream_pool *p;
	struct qrec first = { 0 }, r = { 0 };
	struct rlimit old, low;

	uv_loop_init(&loop);
	assert_int_equal(upstream_pool_new(&loop, 100, &p), 0);
	/* Create the channel; c-ares closes its socket once idle. */
	assert_int_equal(ask(p, 1000, "ok.example", &first), 0);
	assert_true(run_until(&loop, &g_calls, 1, 3000));
	assert_int_equal(first.status, LISTANS_RECORDS);

	/* No descriptor left: c-ares fails inside ares_send and calls back at
	 * once; the caller must still hear of it only from the loop. */
	int lowest = open("/dev/null", O_RDONLY);
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	int rc = ask(p, 1000, "ok.example", &r);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(r.calls, 0);
	assert_true(run_until(&loop, &g_calls, 2, 3000));
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, LISTANS_SERVFAIL);
	assert_int_equal(g_sync_calls, 0);

	struct upstream_stats st;
	upstream_pool_stats(p, &st);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.inflight, 0);
	finish(&loop, p);
	assert_int_equal(r.calls, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_pool_new_args, test_setup),
		cmocka_unit_test_setup(test_query_args, test_setup),
		cmocka_unit_test_setup(test_answer_ok, test_setup),
		cmocka_unit_test_setup(test_rcodes, test_setup),
		cmocka_unit_test_setup(test_case_flipped, test_setup),
		cmocka_unit_test_setup(test_drop_timeout, test_setup),
		cmocka_unit_test_setup(test_closed_port, test_setup),
		cmocka_unit_test_setup(test_two_servers, test_setup),
		cmocka_unit_test_setup(test_concurrency_cap, test_setup),
		cmocka_unit_test_setup(test_close_with_queries, test_setup),
		cmocka_unit_test_setup(test_close_in_callback, test_setup),
		cmocka_unit_test_setup(test_query_from_callback, test_setup),
		cmocka_unit_test_setup(test_queued_past_deadline, test_setup),
		cmocka_unit_test_setup(test_sync_failure_deferred, test_setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
