/* Unit tests for rrl: token buckets per client network, slip, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/config.h"
#include "resolver/rrl.h"

static struct rrl_table *table(size_t entries)
{
	struct rrl_table *t = NULL;
	assert_int_equal(rrl_new(entries, &t), 0);
	assert_non_null(t);
	return t;
}

static const uint8_t *v4(const char *text, uint8_t buf[16])
{
	assert_int_equal(inet_pton(AF_INET, text, buf), 1);
	return buf;
}

static const uint8_t *v6(const char *text, uint8_t buf[16])
{
	assert_int_equal(inet_pton(AF_INET6, text, buf), 1);
	return buf;
}

/* n answers at one instant: how many of each verdict. */
static void burst(struct rrl_table *t, int family, const uint8_t *addr, uint64_t now,
		  uint32_t rate, uint32_t slip, int n, int got[3])
{
	got[0] = got[1] = got[2] = 0;
	for (int i = 0; i < n; i++)
		got[rrl_check(t, family, addr, now, rate, slip)]++;
}

static void test_burst_then_slip_and_drop(void **state)
{
	struct rrl_table *t = table(64);
	uint8_t a[16];
	int got[3];
	(void)state;

	/* A fresh network may have `rate` answers at once. */
	burst(t, AF_INET, v4("192.0.2.1", a), 1000, 10, 2, 10, got);
	assert_int_equal(got[RRL_SEND], 10);
	/* Then every 2nd is slipped, the rest dropped. */
	assert_int_equal(rrl_check(t, AF_INET, a, 1000, 10, 2), RRL_DROP);
	assert_int_equal(rrl_check(t, AF_INET, a, 1000, 10, 2), RRL_SLIP);
	assert_int_equal(rrl_check(t, AF_INET, a, 1000, 10, 2), RRL_DROP);
	assert_int_equal(rrl_check(t, AF_INET, a, 1000, 10, 2), RRL_SLIP);
	burst(t, AF_INET, a, 1000, 10, 2, 100, got);
	assert_int_equal(got[RRL_SEND], 0);
	assert_int_equal(got[RRL_SLIP], 50);
	assert_int_equal(got[RRL_DROP], 50);

	struct rrl_stats st;
	rrl_get_stats(t, &st);
	assert_int_equal(st.sent, 10);
	assert_int_equal(st.slipped, 52);
	assert_int_equal(st.dropped, 52);
	rrl_free(t);
}

static void test_refill(void **state)
{
	struct rrl_table *t = table(64);
	uint8_t a[16];
	int got[3];
	(void)state;

	v4("198.51.100.9", a);
	burst(t, AF_INET, a, 5000, 100, 2, 100, got);
	assert_int_equal(got[RRL_SEND], 100);
	assert_int_not_equal(rrl_check(t, AF_INET, a, 5000, 100, 2), RRL_SEND);
	/* 100 per second: one more every 10 ms, not before. */
	assert_int_not_equal(rrl_check(t, AF_INET, a, 5009, 100, 2), RRL_SEND);
	assert_int_equal(rrl_check(t, AF_INET, a, 5010, 100, 2), RRL_SEND);
	assert_int_not_equal(rrl_check(t, AF_INET, a, 5010, 100, 2), RRL_SEND);
	/* Half a second: 50. */
	burst(t, AF_INET, a, 5510, 100, 2, 60, got);
	assert_int_equal(got[RRL_SEND], 50);
	/* An idle hour refills the bucket, no more. */
	burst(t, AF_INET, a, 5510 + 3600000, 100, 2, 150, got);
	assert_int_equal(got[RRL_SEND], 100);
	/* A steady 100/s stream is never limited. */
	for (uint64_t ms = 10000000; ms < 10000000 + 5000; ms += 10)
		assert_int_equal(rrl_check(t, AF_INET, a, ms + 3600000, 100, 2), RRL_SEND);
	rrl_free(t);
}

static void test_networks(void **state)
{
	struct rrl_table *t = table(256);
	uint8_t a[16], b[16];
	int got[3];
	(void)state;

	/* One /24: 192.0.2.1 and 192.0.2.254 share the bucket. */
	burst(t, AF_INET, v4("192.0.2.1", a), 0, 5, 1, 3, got);
	assert_int_equal(got[RRL_SEND], 3);
	burst(t, AF_INET, v4("192.0.2.254", a), 0, 5, 1, 3, got);
	assert_int_equal(got[RRL_SEND], 2);
	assert_int_equal(got[RRL_SLIP], 1);
	/* The next /24 has its own. */
	burst(t, AF_INET, v4("192.0.3.1", a), 0, 5, 1, 5, got);
	assert_int_equal(got[RRL_SEND], 5);
	/* IPv4-mapped IPv6 is the IPv4 network. */
	assert_int_equal(rrl_check(t, AF_INET6, v6("::ffff:192.0.3.77", a), 0, 5, 1), RRL_SLIP);

	/* IPv6: one /56. */
	burst(t, AF_INET6, v6("2001:db8:0:100::1", a), 0, 4, 0, 4, got);
	assert_int_equal(got[RRL_SEND], 4);
	assert_int_equal(rrl_check(t, AF_INET6, v6("2001:db8:0:1ff:ffff::9", b), 0, 4, 0),
			 RRL_DROP);
	assert_int_equal(rrl_check(t, AF_INET6, v6("2001:db8:0:200::1", b), 0, 4, 0),
			 RRL_SEND);
	/* An IPv4 network and an IPv6 one with the same leading bytes differ. */
	burst(t, AF_INET6, v6("c000:0200::", a), 0, 5, 1, 5, got);
	assert_int_equal(got[RRL_SEND], 5);

	/* Other families and rate 0 are not limited. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(rrl_check(t, AF_UNIX, a, 0, 1, 1), RRL_SEND);
		assert_int_equal(rrl_check(t, AF_INET, v4("192.0.2.1", a), 0, 0, 1), RRL_SEND);
	}
	rrl_free(t);
}

static void test_slip_settings(void **state)
{
	struct rrl_table *t = table(16);
	uint8_t a[16];
	int got[3];
	(void)state;

	burst(t, AF_INET, v4("203.0.113.1", a), 0, 1, 0, 11, got);
	assert_int_equal(got[RRL_SEND], 1);
	assert_int_equal(got[RRL_DROP], 10);
	burst(t, AF_INET, v4("203.0.114.1", a), 0, 1, 1, 11, got);
	assert_int_equal(got[RRL_SLIP], 10);
	burst(t, AF_INET, v4("203.0.115.1", a), 0, 1, 3, 31, got);
	assert_int_equal(got[RRL_SLIP], 10);
	assert_int_equal(got[RRL_DROP], 20);
	rrl_free(t);
}

static void test_bounded_table(void **state)
{
	struct rrl_table *t = table(64);
	uint8_t hot[16], a[16];
	int got[3];
	(void)state;

	/* A hot network, limited, stays limited while 100,000 other networks
	 * pass through the 64 entries: the least recently seen go first. */
	v4("192.0.2.1", hot);
	burst(t, AF_INET, hot, 0, 10, 0, 10, got);
	assert_int_equal(got[RRL_SEND], 10);
	for (uint32_t i = 0; i < 100000; i++) {
		a[0] = 10;
		a[1] = (uint8_t)(i >> 16);
		a[2] = (uint8_t)(i >> 8);
		a[3] = (uint8_t)i;
		/* Same instant: no refill for the hot network. */
		rrl_check(t, AF_INET, a, 0, 10, 0);
		if (i % 2 == 0)
			assert_int_equal(rrl_check(t, AF_INET, hot, 0, 10, 0), RRL_DROP);
	}
	/* Entries are rounded up to a whole number of sets. */
	struct rrl_table *one = table(1);
	burst(one, AF_INET, v4("192.0.2.1", a), 0, 2, 0, 3, got);
	assert_int_equal(got[RRL_SEND], 2);
	rrl_free(one);
	rrl_free(t);
}

static void test_truncate(void **state)
{
	/* An answer: header (id 0xbeef, QR AA RD, 1 question, 1 answer, 1
	 * additional), question 1.2.0.192.rblmux.internal A IN, an A record,
	 * an OPT record. */
	static const uint8_t answer[] = {
		0xbe, 0xef, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 1,
		1, '1', 1, '2', 1, '0', 3, '1', '9', '2',
		6, 'r', 'b', 'l', 'm', 'u', 'x', 8, 'i', 'n', 't', 'e', 'r', 'n', 'a', 'l', 0,
		0, 1, 0, 1,
		0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 2,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0,
	};
	const size_t qend = 12 + 27 + 4;
	uint8_t out[RRL_SLIP_MAX];
	(void)state;

	int n = rrl_truncate(answer, sizeof answer, out, sizeof out);
	assert_int_equal(n, qend);
	assert_true(out[2] & (DNS_F_TC >> 8));
	assert_int_equal(out[0], 0xbe);
	assert_int_equal(out[1], 0xef);
	assert_int_equal(out[2], 0x85 | 0x02);
	assert_int_equal(out[3], 0x00);
	assert_memory_equal(out + 4, "\0\1\0\0\0\0\0\0", 8);
	assert_memory_equal(out + 12, answer + 12, qend - 12);

	assert_int_equal(rrl_truncate(answer, sizeof answer, out, qend - 1), -ENOSPC);
	assert_int_equal(rrl_truncate(answer, 11, out, sizeof out), -EINVAL);
	assert_int_equal(rrl_truncate(answer, qend - 1, out, sizeof out), -EINVAL);
	assert_int_equal(rrl_truncate(answer, 20, out, sizeof out), -EINVAL);

	/* No question (a FORMERR to an unreadable one): the header alone. */
	uint8_t bare[12] = { 1, 2, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(rrl_truncate(bare, sizeof bare, out, sizeof out), 12);
	assert_int_equal(out[2], 0x83);
	/* A compressed or doubled question is not ours. */
	uint8_t two[sizeof answer];
	memcpy(two, answer, sizeof answer);
	two[5] = 2;
	assert_int_equal(rrl_truncate(two, sizeof two, out, sizeof out), -EINVAL);
	uint8_t ptr[] = { 1, 2, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1 };
	assert_int_equal(rrl_truncate(ptr, sizeof ptr, out, sizeof out), -EINVAL);
}

static struct config *config_from(const char *text)
{
	struct config *cfg = NULL;
	assert_int_equal(config_parse(text, strlen(text), "test.conf", NULL, NULL, &cfg), 0);
	return cfg;
}

static void test_peer_and_exemption(void **state)
{
	struct rrl_table *t = table(64);
	struct sockaddr_in lo = { .sin_family = AF_INET }, far = { .sin_family = AF_INET };
	struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6 };
	(void)state;

	inet_pton(AF_INET, "127.0.0.2", &lo.sin_addr);
	inet_pton(AF_INET, "192.0.2.1", &far.sin_addr);
	inet_pton(AF_INET6, "::1", &lo6.sin6_addr);

	/* Defaults: loopback exempt, others 100/s with slip 2. */
	struct config *cfg = config_from("");
	int sent = 0;
	for (int i = 0; i < 500; i++) {
		assert_int_equal(rrl_check_peer(t, cfg, (struct sockaddr *)&lo, 0), RRL_SEND);
		assert_int_equal(rrl_check_peer(t, cfg, (struct sockaddr *)&lo6, 0), RRL_SEND);
		sent += rrl_check_peer(t, cfg, (struct sockaddr *)&far, 0) == RRL_SEND;
	}
	assert_int_equal(sent, 100);
	config_free(cfg);

	/* No exemption: loopback is limited like anyone. */
	cfg = config_from("[server]\nrrl_rate = 3\nrrl_slip = 1\nrrl_exempt = none\n");
	sent = 0;
	for (int i = 0; i < 10; i++)
		sent += rrl_check_peer(t, cfg, (struct sockaddr *)&lo, 0) == RRL_SEND;
	assert_int_equal(sent, 3);
	config_free(cfg);

	/* Off. */
	cfg = config_from("[server]\nrrl_rate = 0\nrrl_exempt = none\n");
	for (int i = 0; i < 1000; i++)
		assert_int_equal(rrl_check_peer(t, cfg, (struct sockaddr *)&far, 0), RRL_SEND);
	config_free(cfg);
	rrl_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_slip_and_drop),
		cmocka_unit_test(test_refill),
		cmocka_unit_test(test_networks),
		cmocka_unit_test(test_slip_settings),
		cmocka_unit_test(test_bounded_table),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_peer_and_exemption),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
