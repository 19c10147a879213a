/* cmocka tests for resolver/spfipc: round trips, every malformed frame. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "resolver/spfipc.h"

static uint8_t buf[SPFIPC_FRAME_MAX];

static void test_check_roundtrip(void **state)
{
	struct spfipc_check c, d;
	(void)state;
	memset(&c, 0, sizeof(c));
	c.id = 0xdeadbeef;
	c.family = AF_INET6;
	for (int i = 0; i < 16; i++)
		c.ip[i] = (uint8_t)i;
	c.now = 1700000000;
	c.time_limit_ms = 1999;
	strcpy(c.domain, "example.com");
	strcpy(c.local_part, "Macro Error.x");
	strcpy(c.helo, "example.com");
	strcpy(c.receiver, "rblmux.internal");
	int n = spfipc_encode_check(buf, sizeof(buf), &c);
	assert_true(n > SPFIPC_HEADER_LEN);
	assert_int_equal(spfipc_frame_len(buf, (size_t)n), n);
	assert_int_equal(spfipc_frame_type(buf), SPFIPC_CHECK);
	assert_int_equal(spfipc_decode_check(buf, (size_t)n, &d), 0);
	assert_memory_equal(&c, &d, sizeof(c));
	/* Any truncation is incomplete, one byte more is trailing garbage. */
	for (int cut = 0; cut < n; cut++)
		assert_int_equal(spfipc_frame_len(buf, (size_t)cut), 0);
	assert_int_equal(spfipc_decode_check(buf, (size_t)n - 1, &d), -EBADMSG);
	/* Wrong type. */
	assert_int_equal(spfipc_decode_result(buf, (size_t)n, &(struct spfipc_result){ 0 }),
			 -EBADMSG);
	/* Bad family on both sides. */
	c.family = 7;
	assert_int_equal(spfipc_encode_check(buf, sizeof(buf), &c), -EINVAL);
	c.family = AF_INET;
	n = spfipc_encode_check(buf, sizeof(buf), &c);
	buf[9] = 9;
	assert_int_equal(spfipc_decode_check(buf, (size_t)n, &d), -EBADMSG);
	/* No room. */
	assert_int_equal(spfipc_encode_check(buf, 20, &c), -ENOSPC);
}

static void test_check_strings(void **state)
{
	struct spfipc_check c, d;
	(void)state;
	memset(&c, 0, sizeof(c));
	c.family = AF_INET;
	memset(c.domain, 'a', SPFIPC_TEXT_MAX);
	int n = spfipc_encode_check(buf, sizeof(buf), &c);
	assert_true(n > 0);
	assert_int_equal(spfipc_decode_check(buf, (size_t)n, &d), 0);
	assert_int_equal(strlen(d.domain), SPFIPC_TEXT_MAX);
	/* A NUL inside a string is refused by the decoder. */
	memset(c.domain, 0, sizeof(c.domain));
	strcpy(c.domain, "ab");
	n = spfipc_encode_check(buf, sizeof(buf), &c);
	size_t off = SPFIPC_HEADER_LEN + 4 + 1 + 16 + 4 + 4 + 2;
	assert_memory_equal(buf + off, "ab", 2);
	buf[off + 1] = 0;
	assert_int_equal(spfipc_decode_check(buf, (size_t)n, &d), -EBADMSG);
	/* A length running past the frame. */
	n = spfipc_encode_check(buf, sizeof(buf), &c);
	buf[off - 1] = 200;
	assert_int_equal(spfipc_decode_check(buf, (size_t)n, &d), -EBADMSG);
}

static void test_query(void **state)
{
	struct spfipc_query q, r;
	(void)state;
	memset(&q, 0, sizeof(q));
	q.check_id = 7;
	q.seq = 3;
	q.qtype = 15;
	memcpy(q.name, "\7example\3com\0", 13);
	q.name_len = 13;
	int n = spfipc_encode_query(buf, sizeof(buf), &q);
	assert_true(n > 0);
	assert_int_equal(spfipc_decode_query(buf, (size_t)n, &r), 0);
	assert_int_equal(r.check_id, 7);
	assert_int_equal(r.seq, 3);
	assert_int_equal(r.qtype, 15);
	assert_int_equal(r.name_len, 13);
	assert_memory_equal(r.name, q.name, 13);
	/* Malformed names: label running past the end, missing root, 64-byte label. */
	buf[SPFIPC_HEADER_LEN + 11] = 9;
	assert_int_equal(spfipc_decode_query(buf, (size_t)n, &r), -EBADMSG);
	q.name_len = 12;
	assert_int_equal(spfipc_encode_query(buf, sizeof(buf), &q), -EINVAL);
	q.name[0] = 64;
	q.name_len = 13;
	assert_int_equal(spfipc_encode_query(buf, sizeof(buf), &q), -EINVAL);
}

static void test_answer(void **state)
{
	static struct spf_answer a, b;
	uint32_t id, seq;
	(void)state;
	memset(&a, 0, sizeof(a));
	a.status = SPF_ANS_RECORDS;
	assert_int_equal(spf_answer_add(&a, "v=spf1 -all", 11, 0), 0);
	assert_int_equal(spf_answer_add(&a, "", 0, 0), 0);
	assert_int_equal(spf_answer_add(&a, "\3mx1\0", 5, 10), 0);
	a.n_total = 9;
	int n = spfipc_encode_answer(buf, sizeof(buf), 11, 12, &a);
	assert_true(n > 0);
	assert_int_equal(spfipc_decode_answer(buf, (size_t)n, &id, &seq, &b), 0);
	assert_int_equal(id, 11);
	assert_int_equal(seq, 12);
	assert_int_equal(b.status, SPF_ANS_RECORDS);
	assert_int_equal(b.n, 3);
	assert_int_equal(b.n_total, 9);
	assert_int_equal(b.rr[2].pref, 10);
	assert_memory_equal(b.data + b.rr[0].off, "v=spf1 -all", 11);
	assert_int_equal(b.rr[1].len, 0);
	/* Out of range status, n_total below n, too many records. */
	buf[SPFIPC_HEADER_LEN + 8] = 4;
	assert_int_equal(spfipc_decode_answer(buf, (size_t)n, &id, &seq, &b), -EBADMSG);
	n = spfipc_encode_answer(buf, sizeof(buf), 11, 12, &a);
	buf[SPFIPC_HEADER_LEN + 12] = 2;
	buf[SPFIPC_HEADER_LEN + 11] = 0;
	assert_int_equal(spfipc_decode_answer(buf, (size_t)n, &id, &seq, &b), -EBADMSG);
	a.rr[0].off = a.data_len;
	assert_int_equal(spfipc_encode_answer(buf, sizeof(buf), 1, 1, &a), -EINVAL);

	/* The largest answer fits a frame. */
	memset(&a, 0, sizeof(a));
	static uint8_t big[SPF_ANS_DATA_MAX];
	for (int i = 0; i < SPF_ANS_MAX_RR; i++)
		assert_int_equal(spf_answer_add(&a, big, SPF_ANS_DATA_MAX / SPF_ANS_MAX_RR, 1), 0);
	n = spfipc_encode_answer(buf, sizeof(buf), 1, 1, &a);
	assert_true(n > 0 && n <= SPFIPC_FRAME_MAX);
	assert_int_equal(spfipc_decode_answer(buf, (size_t)n, &id, &seq, &b), 0);
	assert_int_equal(b.data_len, SPF_ANS_DATA_MAX);
}

static void test_result_and_hello(void **state)
{
	struct spfipc_result r, s;
	uint32_t v;
	(void)state;
	memset(&r, 0, sizeof(r));
	r.check_id = 5;
	r.result = SPF_FAIL;
	r.has_explanation = true;
	r.dns_terms = 3;
	r.void_lookups = 1;
	r.questions = 9;
	strcpy(r.explanation, "See http://example.com/why");
	strcpy(r.reason, "example.com matched -all");
	int n = spfipc_encode_result(buf, sizeof(buf), &r);
	assert_true(n > 0);
	assert_int_equal(spfipc_decode_result(buf, (size_t)n, &s), 0);
	assert_memory_equal(&r, &s, sizeof(r));
	buf[SPFIPC_HEADER_LEN + 4] = 8;
	assert_int_equal(spfipc_decode_result(buf, (size_t)n, &s), -EBADMSG);
	buf[SPFIPC_HEADER_LEN + 4] = SPF_FAIL;
	buf[SPFIPC_HEADER_LEN + 5] = 2;
	assert_int_equal(spfipc_decode_result(buf, (size_t)n, &s), -EBADMSG);
	r.result = 0;
	assert_int_equal(spfipc_encode_result(buf, sizeof(buf), &r), -EINVAL);

	n = spfipc_encode_hello(buf, sizeof(buf), SPFIPC_VERSION);
	assert_int_equal(n, SPFIPC_HEADER_LEN + 4);
	assert_int_equal(spfipc_decode_hello(buf, (size_t)n, &v), 0);
	assert_int_equal(v, SPFIPC_VERSION);
}

static void test_frame_len(void **state)
{
	uint8_t b[8] = { 0 };
	(void)state;
	assert_int_equal(spfipc_frame_len(b, 3), 0);
	/* A zero-length body has no type byte. */
	assert_int_equal(spfipc_frame_len(b, 8), -EBADMSG);
	b[0] = 0x7f;
	assert_int_equal(spfipc_frame_len(b, 8), -EBADMSG);
	b[0] = 0;
	b[3] = 4;
	assert_int_equal(spfipc_frame_len(b, 8), 8);
	assert_int_equal(spfipc_frame_len(b, 7), 0);
}

/* The stream reader: frames split anywhere, several per read. */
static void test_rbuf(void **state)
{
	static struct spfipc_rbuf rb;
	static uint8_t stream[4 * SPFIPC_FRAME_MAX];
	size_t total = 0;
	unsigned sent = 0, got = 0;
	(void)state;
	memset(&rb, 0, sizeof(rb));
	static struct spf_answer a;
	memset(&a, 0, sizeof(a));
	static uint8_t big[8000];
	spf_answer_add(&a, big, sizeof(big), 0);
	while (total + SPFIPC_FRAME_MAX < sizeof(stream)) {
		int n = sent % 3 == 0 ? spfipc_encode_answer(stream + total, SPFIPC_FRAME_MAX, sent, 0, &a)
				      : spfipc_encode_hello(stream + total, SPFIPC_FRAME_MAX, sent);
		assert_true(n > 0);
		total += (size_t)n;
		sent++;
	}
	size_t off = 0, step = 1;
	while (off < total) {
		size_t space;
		uint8_t *p = spfipc_rbuf_space(&rb, &space);
		assert_true(space >= SPFIPC_FRAME_MAX);
		size_t n = step < total - off ? step : total - off;
		if (n > space)
			n = space;
		memcpy(p, stream + off, n);
		spfipc_rbuf_commit(&rb, n);
		off += n;
		step = step * 7 % 9001 + 1;
		const uint8_t *frame;
		int len;
		while ((len = spfipc_rbuf_next(&rb, &frame)) > 0) {
			uint32_t id = 0, seq, v = 0;
			static struct spf_answer b;
			if (spfipc_frame_type(frame) == SPFIPC_DNS_ANSWER) {
				assert_int_equal(spfipc_decode_answer(frame, (size_t)len, &id, &seq, &b), 0);
				assert_int_equal(id, got);
				assert_int_equal(b.data_len, sizeof(big));
			} else {
				assert_int_equal(spfipc_decode_hello(frame, (size_t)len, &v), 0);
				assert_int_equal(v, got);
			}
			got++;
		}
		assert_int_equal(len, 0);
	}
	assert_int_equal(got, sent);
	/* A broken length is reported. */
	size_t space;
	uint8_t *p = spfipc_rbuf_space(&rb, &space);
	memcpy(p, "\xff\xff\xff\xff\x01", 5);
	spfipc_rbuf_commit(&rb, 5);
	const uint8_t *frame;
	assert_int_equal(spfipc_rbuf_next(&rb, &frame), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_roundtrip),
		cmocka_unit_test(test_check_strings),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_answer),
		cmocka_unit_test(test_result_and_hello),
		cmocka_unit_test(test_frame_len),
		cmocka_unit_test(test_rbuf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
