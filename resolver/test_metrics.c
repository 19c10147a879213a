/*
 * Unit tests of resolver/metrics: the HTTP request router, and the
 * exposition of counters fed through the hooks, read back line by line with
 * a strict parser of the text format.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resolver/config.h"
#include "resolver/lookup.h"
#include "resolver/metrics.h"
#include "resolver/runtime.h"
#include "resolver/server.h"
#include "zones/listans.h"

/* ------------------------------------------------------------ routing */

static int route(const char *req, bool *head_only)
{
	return metrics_http_route(req, strlen(req), head_only);
}

static void test_route(void **state)
{
	bool head;
	assert_int_equal(route("GET /metrics HTTP/1.0\r\n\r\n", &head), 200);
	assert_false(head);
	assert_int_equal(route("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", &head), 200);
	assert_int_equal(route("GET /metrics?name[]=x HTTP/1.1\n\n", &head), 200);
	assert_int_equal(route("HEAD /metrics HTTP/1.0\r\n\r\n", &head), 200);
	assert_true(head);
	/* Not yet a whole head. */
	assert_int_equal(route("", &head), 0);
	assert_int_equal(route("GET /metrics HTTP/1.0\r\n", &head), 0);
	assert_int_equal(route("GET /metrics HTTP/1.0\r\nHost: x\r\n\r", &head), 0);
	/* Anything else is 404. */
	assert_int_equal(route("GET / HTTP/1.0\r\n\r\n", &head), 404);
	assert_int_equal(route("GET /metricsx HTTP/1.0\r\n\r\n", &head), 404);
	assert_int_equal(route("GET /metric HTTP/1.0\r\n\r\n", &head), 404);
	assert_int_equal(route("POST /metrics HTTP/1.0\r\n\r\n", &head), 404);
	assert_int_equal(route("get /metrics HTTP/1.0\r\n\r\n", &head), 404);
	/* A request line that does not parse. */
	assert_int_equal(route("\r\n\r\n", &head), 400);
	assert_int_equal(route("GET\r\n\r\n", &head), 400);
	assert_int_equal(route("GET /metrics\r\n\r\n", &head), 400);
	assert_int_equal(route("GET  /metrics HTTP/1.0\r\n\r\n", &head), 400);
	assert_int_equal(route("GET /metrics HTTP/2\r\n\r\n", &head), 400);
	assert_int_equal(route("GET /metrics HTTP/1.0 x\r\n\r\n", &head), 400);
	assert_int_equal(route(" /metrics HTTP/1.0\r\n\r\n", &head), 400);
	/* Too long without an end. */
	char big[METRICS_REQUEST_MAX];
	memset(big, 'a', sizeof(big));
	assert_int_equal(metrics_http_route(big, sizeof(big) - 1, &head), 0);
	assert_int_equal(metrics_http_route(big, sizeof(big), &head), 431);
	/* A head that ends inside the limit is answered, whatever follows. */
	memcpy(big, "GET /metrics HTTP/1.0\r\n\r\n", 25);
	assert_int_equal(metrics_http_route(big, sizeof(big), &head), 200);
}

/* ------------------------------------------------ a server to count for */

struct fixture {
	struct server srv;
	struct worker workers[2];
	uint16_t alpha_zone, beta_zone;
};

static void no_errors(void *arg, const char *file, int line, const char *msg)
{
	fail_msg("%s:%d: %s", file, line, msg);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const char *text =
		"[server]\n"
		"listen = 127.0.0.1:5353\n"
		"metrics = 127.0.0.1:9353\n"
		"[source alpha]\n"
		"zone = alpha.example\n"
		"weight = 3\n"
		"[source beta]\n"
		"zone = beta.example\n"
		"weight = 2\n"
		"enabled = no\n";
	struct config *cfg;
	assert_int_equal(config_parse(text, strlen(text), "test", no_errors, NULL, &cfg), 0);
	/* Any free port: the test binds for real. */
	((struct sockaddr_in *)&cfg->metrics.ss)->sin_port = 0;
	pthread_mutex_init(&f->srv.rt_lock, NULL);
	f->srv.health = health_table_new();
	f->srv.cache = cache_mem_new(1 << 20);
	assert_non_null(f->srv.health);
	assert_non_null(f->srv.cache);
	assert_int_equal(runtime_new(cfg, f->srv.health, &f->srv.rt), 0);
	f->srv.workers = f->workers;
	f->srv.nworkers = 2;
	for (unsigned i = 0; i < 2; i++) {
		f->workers[i].srv = &f->srv;
		f->workers[i].idx = i;
		assert_int_equal(uv_loop_init(&f->workers[i].loop), 0);
	}
	f->alpha_zone = f->srv.rt->src[0].health->zone_id;
	f->beta_zone = f->srv.rt->src[1].health->zone_id;
	assert_int_not_equal(f->alpha_zone, f->beta_zone);
	assert_int_equal(metrics_start(&f->srv), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	metrics_stop(&f->srv);
	for (unsigned i = 0; i < 2; i++) {
		uv_run(&f->workers[i].loop, UV_RUN_DEFAULT);
		assert_int_equal(uv_loop_close(&f->workers[i].loop), 0);
	}
	metrics_free();
	runtime_unref(f->srv.rt);
	f->srv.cache->ops->destroy(f->srv.cache);
	health_table_free(f->srv.health);
	pthread_mutex_destroy(&f->srv.rt_lock);
	free(f);
	return 0;
}

/* ------------------------------------------- a strict exposition parser */

#define MAX_SAMPLES 1024

struct sample {
	char key[256];    /* name{labels} exactly as written */
	double value;
};

struct expo {
	struct sample s[MAX_SAMPLES];
	size_t n;
	char types[64][256]; /* "name type" of each # TYPE line */
	size_t ntypes;
};

static bool name_char(char c, bool first)
{
	return isalpha((unsigned char)c) || c == '_' || c == ':' || (!first && isdigit((unsigned char)c));
}

/* Every line: "# HELP name text", "# TYPE name type", or
 * name[{label="value",...}] value. Fails the test on anything else. */
static void parse_expo(const char *text, size_t len, struct expo *e)
{
	e->n = e->ntypes = 0;
	assert_true(len > 0);
	assert_int_equal(text[len - 1], '\n');
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		assert_non_null(eol);
		char line[512];
		size_t ll = (size_t)(eol - p);
		assert_true(ll > 0 && ll < sizeof(line));
		memcpy(line, p, ll);
		line[ll] = '\0';
		p = eol + 1;
		if (line[0] == '#') {
			char name[128], rest[120];
			if (sscanf(line, "# HELP %127s %119[^\n]", name, rest) == 2)
				continue;
			assert_int_equal(sscanf(line, "# TYPE %127s %119s", name, rest), 2);
			assert_true(strcmp(rest, "counter") == 0 || strcmp(rest, "gauge") == 0 ||
				    strcmp(rest, "histogram") == 0);
			assert_true(e->ntypes < 64);
			snprintf(e->types[e->ntypes++], sizeof(e->types[0]), "%s %s", name, rest);
			continue;
		}
		size_t i = 0;
		assert_true(name_char(line[0], true));
		while (name_char(line[i], false))
			i++;
		if (line[i] == '{') {
			i++;
			while (line[i] != '}') {
				assert_true(name_char(line[i], true));
				while (name_char(line[i], false))
					i++;
				assert_int_equal(line[i++], '=');
				assert_int_equal(line[i++], '"');
				while (line[i] != '"') {
					assert_true(line[i] != '\0' && line[i] != '\n');
					if (line[i] == '\\') {
						i++;
						assert_true(line[i] == '\\' || line[i] == '"' || line[i] == 'n');
					}
					i++;
				}
				i++;
				if (line[i] == ',')
					i++;
				else
					assert_int_equal(line[i], '}');
			}
			i++;
		}
		assert_int_equal(line[i], ' ');
		assert_true(e->n < MAX_SAMPLES);
		struct sample *s = &e->s[e->n++];
		assert_true(i < sizeof(s->key));
		memcpy(s->key, line, i);
		s->key[i] = '\0';
		char *num_end;
		const char *num = line + i + 1;
		if (strcmp(num, "+Inf") == 0)
			s->value = INFINITY;
		else {
			s->value = strtod(num, &num_end);
			assert_true(num_end != num && *num_end == '\0');
		}
	}
}

static double value_of(const struct expo *e, const char *fmt, ...)
{
	char key[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->s[i].key, key) == 0)
			return e->s[i].value;
	return -1;
}

static void render(struct fixture *f, struct expo *e)
{
	char *text;
	size_t len;
	assert_int_equal(metrics_render(&f->srv, &text, &len), 0);
	parse_expo(text, len, e);
	free(text);
}

/* ---------------------------------------------------------------- tests */

static void test_render_is_strict_and_complete(void **state)
{
	struct fixture *f = *state;
	static struct expo e;
	render(f, &e);
	assert_true(e.n > 20);
	/* Every family has its TYPE; sources appear even before any count. */
	assert_true(value_of(&e, "rblmux_build_info{version=\"%s\"}", RBLMUX_VERSION) == 1);
	assert_true(value_of(&e, "rblmux_loops") == 2);
	assert_true(value_of(&e, "rblmux_sources") == 2);
	assert_true(value_of(&e, "rblmux_lookups_total{source=\"alpha\",tier=\"mem\"}") == 0);
	assert_true(value_of(&e, "rblmux_upstream_queries_total{source=\"beta\",result=\"timeout\"}") == 0);
	assert_true(value_of(&e, "rblmux_source_state{source=\"beta\",state=\"disabled\"}") == 1);
	assert_true(value_of(&e, "rblmux_source_state{source=\"beta\",state=\"ok\"}") == 0);
	assert_true(value_of(&e, "rblmux_source_state{source=\"alpha\",state=\"ok\"}") == 1);
	assert_true(value_of(&e, "rblmux_redis_connections{state=\"up\"}") == 0);
	assert_true(value_of(&e, "rblmux_spf_checks_total{result=\"temperror\"}") == 0);
	assert_true(value_of(&e, "rblmux_cache_limit_bytes") == 256.0 * 1024 * 1024);
	/* No answer yet: no query series. */
	for (size_t i = 0; i < e.n; i++)
		assert_null(strstr(e.s[i].key, "rblmux_queries_total{"));
	bool typed = false;
	for (size_t i = 0; i < e.ntypes; i++)
		typed |= strcmp(e.types[i], "rblmux_upstream_duration_seconds histogram") == 0;
	assert_true(typed);
}

static void test_answers_by_view_qtype_rcode(void **state)
{
	struct fixture *f = *state;
	struct worker *w0 = &f->workers[0], *w1 = &f->workers[1];
	uv_update_time(&w1->loop);
	uint64_t now1 = uv_now(&w1->loop);
	for (int i = 0; i < 3; i++)
		metrics_answer(w0, QV_COMBINED, DNS_T_A, DNS_R_NXDOMAIN, 0);
	metrics_answer(w1, QV_COMBINED, DNS_T_A, DNS_R_NXDOMAIN, 0);
	metrics_answer(w1, QV_COMBINED, DNS_T_TXT, DNS_R_NOERROR, now1 - 30);
	metrics_answer(w0, METRICS_VIEW_NONE, DNS_T_A, DNS_R_REFUSED, 0);
	metrics_answer(w0, 99, 999, DNS_R_BADVERS, 0);     /* out of range: none, other */
	metrics_answer(w0, -7, DNS_T_AAAA, 9, 0);          /* rcode 9: other */
	metrics_answer(w0, QV_HEALTH, DNS_T_ANY, DNS_R_NOERROR, 0);
	static struct expo e;
	render(f, &e);
	assert_true(value_of(&e, "rblmux_queries_total{view=\"combined\",qtype=\"A\",rcode=\"NXDOMAIN\"}") == 4);
	assert_true(value_of(&e, "rblmux_queries_total{view=\"combined\",qtype=\"TXT\",rcode=\"NOERROR\"}") == 1);
	assert_true(value_of(&e, "rblmux_queries_total{view=\"none\",qtype=\"A\",rcode=\"REFUSED\"}") == 1);
	assert_true(value_of(&e, "rblmux_queries_total{view=\"none\",qtype=\"other\",rcode=\"BADVERS\"}") == 1);
	assert_true(value_of(&e, "rblmux_queries_total{view=\"none\",qtype=\"AAAA\",rcode=\"other\"}") == 1);
	assert_true(value_of(&e, "rblmux_queries_total{view=\"health\",qtype=\"ANY\",rcode=\"NOERROR\"}") == 1);
	assert_true(value_of(&e, "rblmux_queries_total{view=\"combined\",qtype=\"A\",rcode=\"NOERROR\"}") == -1);

	/* 5 combined answers: 4 at once (0 s), one after 30 ms. */
	const char *h = "rblmux_query_duration_seconds";
	assert_true(value_of(&e, "%s_count{view=\"combined\"}", h) == 5);
	assert_true(value_of(&e, "%s_bucket{view=\"combined\",le=\"0.00025\"}", h) == 4);
	assert_true(value_of(&e, "%s_bucket{view=\"combined\",le=\"0.025\"}", h) == 4);
	assert_true(value_of(&e, "%s_bucket{view=\"combined\",le=\"0.05\"}", h) == 5);
	assert_true(value_of(&e, "%s_bucket{view=\"combined\",le=\"+Inf\"}", h) == 5);
	assert_true(fabs(value_of(&e, "%s_sum{view=\"combined\"}", h) - 0.030) < 1e-9);
	/* Views without answers have no histogram. */
	assert_true(value_of(&e, "%s_count{view=\"score\"}", h) == -1);
}

static void test_per_source_counters(void **state)
{
	struct fixture *f = *state;
	struct worker *w0 = &f->workers[0], *w1 = &f->workers[1];
	metrics_lookup(w0, f->alpha_zone, TIER_MEM);
	metrics_lookup(w0, f->alpha_zone, TIER_MEM);
	metrics_lookup(w1, f->alpha_zone, TIER_MEM);
	metrics_lookup(w1, f->alpha_zone, TIER_REDIS);
	metrics_lookup(w1, f->beta_zone, TIER_STALE);
	metrics_lookup(w1, f->beta_zone, 5);               /* no such tier: ignored */
	metrics_lookup(w1, HEALTH_MAX_ZONES + 1, TIER_MEM); /* no such zone: ignored */

	/* Bucket bounds are inclusive: 1000 µs is in le="0.001". */
	metrics_upstream(w0, f->alpha_zone, LISTANS_RECORDS, false, 1000);
	metrics_upstream(w1, f->alpha_zone, LISTANS_RECORDS, true, 1001);
	metrics_upstream(w1, f->alpha_zone, LISTANS_NXDOMAIN, false, 200);
	metrics_upstream(w0, f->alpha_zone, LISTANS_NODATA, false, 400);
	metrics_upstream(w0, f->alpha_zone, LISTANS_TIMEOUT, false, 1500000);
	metrics_upstream(w0, f->alpha_zone, LISTANS_SERVFAIL, false, 0); /* never went out */
	metrics_upstream(w0, f->beta_zone, LISTANS_BAD, false, 7000000);
	metrics_upstream(w0, f->beta_zone, 42, false, 1);   /* unknown status: bad */

	static struct expo e;
	render(f, &e);
	assert_true(value_of(&e, "rblmux_lookups_total{source=\"alpha\",tier=\"mem\"}") == 3);
	assert_true(value_of(&e, "rblmux_lookups_total{source=\"alpha\",tier=\"redis\"}") == 1);
	assert_true(value_of(&e, "rblmux_lookups_total{source=\"alpha\",tier=\"upstream\"}") == 0);
	assert_true(value_of(&e, "rblmux_lookups_total{source=\"beta\",tier=\"stale\"}") == 1);
	assert_true(value_of(&e, "rblmux_lookups_total{source=\"beta\",tier=\"mem\"}") == 0);

	const char *u = "rblmux_upstream_queries_total";
	assert_true(value_of(&e, "%s{source=\"alpha\",result=\"listed\"}", u) == 1);
	assert_true(value_of(&e, "%s{source=\"alpha\",result=\"error_code\"}", u) == 1);
	assert_true(value_of(&e, "%s{source=\"alpha\",result=\"not_listed\"}", u) == 2);
	assert_true(value_of(&e, "%s{source=\"alpha\",result=\"timeout\"}", u) == 1);
	assert_true(value_of(&e, "%s{source=\"alpha\",result=\"servfail\"}", u) == 1);
	assert_true(value_of(&e, "%s{source=\"alpha\",result=\"bad\"}", u) == 0);
	assert_true(value_of(&e, "%s{source=\"beta\",result=\"bad\"}", u) == 2);

	const char *h = "rblmux_upstream_duration_seconds";
	assert_true(value_of(&e, "%s_count{source=\"alpha\"}", h) == 5);
	assert_true(value_of(&e, "%s_bucket{source=\"alpha\",le=\"0.00025\"}", h) == 1);
	assert_true(value_of(&e, "%s_bucket{source=\"alpha\",le=\"0.0005\"}", h) == 2);
	assert_true(value_of(&e, "%s_bucket{source=\"alpha\",le=\"0.001\"}", h) == 3);
	assert_true(value_of(&e, "%s_bucket{source=\"alpha\",le=\"0.0025\"}", h) == 4);
	assert_true(value_of(&e, "%s_bucket{source=\"alpha\",le=\"1\"}", h) == 4);
	assert_true(value_of(&e, "%s_bucket{source=\"alpha\",le=\"2.5\"}", h) == 5);
	assert_true(fabs(value_of(&e, "%s_sum{source=\"alpha\"}", h) - 1.502601) < 1e-9);
	/* Over the last bound: only +Inf. */
	assert_true(value_of(&e, "%s_bucket{source=\"beta\",le=\"5\"}", h) == 1);
	assert_true(value_of(&e, "%s_bucket{source=\"beta\",le=\"+Inf\"}", h) == 2);
	assert_true(value_of(&e, "%s_count{source=\"beta\"}", h) == 2);
}

static void test_histograms_are_cumulative(void **state)
{
	struct fixture *f = *state;
	for (uint64_t us = 1; us < 8000000; us = us * 3 + 7)
		metrics_upstream(&f->workers[us % 2], f->alpha_zone, LISTANS_NXDOMAIN, false, us);
	static struct expo e;
	render(f, &e);
	double last = -1;
	size_t buckets = 0;
	for (size_t i = 0; i < e.n; i++) {
		if (strncmp(e.s[i].key, "rblmux_upstream_duration_seconds_bucket{source=\"alpha\"", 54) != 0)
			continue;
		assert_true(e.s[i].value >= last);
		last = e.s[i].value;
		buckets++;
	}
	assert_int_equal(buckets, 15);
	assert_true(last == value_of(&e, "rblmux_upstream_duration_seconds_count{source=\"alpha\"}"));
	assert_true(last > 10);
}

static void test_spf_counts(void **state)
{
	struct fixture *f = *state;
	metrics_spf(&f->workers[0], 1);
	metrics_spf(&f->workers[1], 1);
	metrics_spf(&f->workers[1], 7);
	metrics_spf(&f->workers[1], 0);
	metrics_spf(&f->workers[1], 8);
	static struct expo e;
	render(f, &e);
	assert_true(value_of(&e, "rblmux_spf_checks_total{result=\"pass\"}") == 2);
	assert_true(value_of(&e, "rblmux_spf_checks_total{result=\"temperror\"}") == 1);
	assert_true(value_of(&e, "rblmux_spf_checks_total{result=\"fail\"}") == 0);
}

static void test_counts_from_worker_stats(void **state)
{
	struct fixture *f = *state;
	f->workers[0].stats.dropped = 5;
	f->workers[1].stats.dropped = 2;
	f->workers[1].stats.tcp_conns = 9;
	static struct expo e;
	render(f, &e);
	assert_true(value_of(&e, "rblmux_queries_dropped_total") == 7);
	assert_true(value_of(&e, "rblmux_tcp_connections_total") == 9);
}

/* Without a started registry, hooks do nothing and nothing renders. */
static void test_off(void **state)
{
	struct server srv;
	memset(&srv, 0, sizeof(srv));
	struct worker w;
	memset(&w, 0, sizeof(w));
	w.srv = &srv;
	metrics_answer(&w, QV_COMBINED, DNS_T_A, 0, 0);
	metrics_lookup(&w, 1, TIER_MEM);
	metrics_upstream(&w, 1, LISTANS_RECORDS, false, 10);
	metrics_spf(&w, 1);
	char *text;
	size_t len;
	assert_int_equal(metrics_render(&srv, &text, &len), -ENODEV);
	metrics_stop(&srv);
	metrics_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_off),
		cmocka_unit_test_setup_teardown(test_render_is_strict_and_complete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answers_by_view_qtype_rcode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_per_source_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histograms_are_cumulative, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spf_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counts_from_worker_stats, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
