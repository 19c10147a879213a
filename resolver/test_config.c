/* Unit tests for config: the INI parser, its values, errors and defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resolver/config.h"

#define MAX_ERRS 128

struct errs {
	int n;
	int line[MAX_ERRS];
	char msg[MAX_ERRS][CONFIG_LINE_MAX];
	char file[256];
};

static void collect(void *arg, const char *file, int line, const char *msg)
{
	struct errs *e = arg;

	if (e->n < MAX_ERRS) {
		e->line[e->n] = line;
		snprintf(e->msg[e->n], sizeof(e->msg[0]), "%s", msg);
	}
	snprintf(e->file, sizeof(e->file), "%s", file);
	e->n++;
}

static struct errs *new_errs(void)
{
	struct errs *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	return e;
}

/* Parse text; the caller checks rc, *out and e. */
static int parse(const char *text, struct errs *e, struct config **out)
{
	return config_parse(text, strlen(text), "test.conf", collect, e, out);
}

/* Parse text that must be valid. */
static struct config *parse_ok(const char *text)
{
	struct errs *e = new_errs();
	struct config *cfg = NULL;
	int rc = parse(text, e, &cfg);

	for (int i = 0; i < e->n && i < MAX_ERRS; i++)
		print_message("unexpected error: line %d: %s\n", e->line[i], e->msg[i]);
	assert_int_equal(rc, 0);
	assert_int_equal(e->n, 0);
	assert_non_null(cfg);
	free(e);
	return cfg;
}

/* Parse text that must give exactly one error, at line, containing what. */
static void expect_one_error(const char *text, int line, const char *what)
{
	struct errs *e = new_errs();
	struct config *cfg = (struct config *)1;
	int rc = parse(text, e, &cfg);

	if (e->n != 1 || e->line[0] != line || strstr(e->msg[0], what) == NULL) {
		print_message("input:\n%s\n", text);
		for (int i = 0; i < e->n && i < MAX_ERRS; i++)
			print_message("got: line %d: %s\n", e->line[i], e->msg[i]);
		print_message("want: line %d: ...%s...\n", line, what);
	}
	assert_int_equal(rc, -EINVAL);
	assert_null(cfg);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->line[0], line);
	assert_non_null(strstr(e->msg[0], what));
	assert_string_equal(e->file, "test.conf");
	free(e);
}

static const char *addr_text(const struct config_addr *a, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;

		assert_int_equal(a->len, sizeof(*sin));
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, cap, "%s:%u", host, ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

		assert_int_equal(a->ss.ss_family, AF_INET6);
		assert_int_equal(a->len, sizeof(*sin6));
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, cap, "[%s]:%u", host, ntohs(sin6->sin6_port));
	}
	return buf;
}

static void assert_addr(const struct config_addr *a, const char *want)
{
	char buf[80];

	assert_string_equal(addr_text(a, buf, sizeof(buf)), want);
}

static void assert_cidr(const struct config_cidr *c, const char *want)
{
	char host[INET6_ADDRSTRLEN], buf[80];

	inet_ntop(c->family, c->addr, host, sizeof(host));
	snprintf(buf, sizeof(buf), "%s/%u", host, c->prefix);
	assert_string_equal(buf, want);
}

static const uint8_t default_zone_wire[] = "\x06rblmux\x08internal";

/* ------------------------------------------------------------- defaults */

static void test_defaults(void **state)
{
	struct config *cfg = parse_ok("");

	assert_int_equal(cfg->nlisten, 2);
	assert_addr(&cfg->listen[0], "127.0.0.1:5353");
	assert_addr(&cfg->listen[1], "[::1]:5353");
	assert_string_equal(cfg->zone_text, "rblmux.internal");
	assert_int_equal(cfg->zone_len, sizeof(default_zone_wire));
	assert_memory_equal(cfg->zone, default_zone_wire, sizeof(default_zone_wire));
	assert_int_equal(cfg->threads, 0);
	assert_int_equal(cfg->nallow, 2);
	assert_cidr(&cfg->allow[0], "127.0.0.0/8");
	assert_cidr(&cfg->allow[1], "::1/128");
	assert_string_equal(cfg->user, "");
	assert_int_equal(cfg->metrics.len, 0);
	assert_int_equal(cfg->tcp_idle_ms, 10000);
	assert_int_equal(cfg->tcp_max, 256);
	assert_int_equal(cfg->udp_max_size, 1232);

	assert_true(cfg->servers.system);
	assert_int_equal(cfg->servers.n, 0);
	assert_int_equal(cfg->timeout_ms, 1500);
	assert_int_equal(cfg->deadline_ms, 2000);
	assert_int_equal(cfg->probe_interval_ms, 60000);
	assert_int_equal(cfg->max_inflight, 100);

	assert_int_equal(cfg->threshold, 5);
	assert_int_equal(cfg->on_incomplete, SCORE_INCOMPLETE_PARTIAL);

	assert_string_equal(cfg->redis, "");
	assert_string_equal(cfg->redis_password, "");
	assert_int_equal(cfg->redis_db, 0);
	assert_string_equal(cfg->key_prefix, "rblmux:");
	assert_int_equal(cfg->memory_bytes, 256ull << 20);
	assert_int_equal(cfg->min_ttl_s, 60);
	assert_int_equal(cfg->max_ttl_s, 3600);
	assert_int_equal(cfg->error_ttl_s, 30);
	assert_int_equal(cfg->stale_ttl_s, 3600);

	assert_true(cfg->ptr.enabled);
	assert_int_equal(cfg->ptr.level, 1);
	assert_int_equal(cfg->ptr.weight, 2);
	assert_int_equal(cfg->ptr.weight_no_ptr, 1);
	assert_int_equal(cfg->ptr.weight_no_fcrdns, 1);
	assert_true(cfg->spf.enabled);
	assert_int_equal(cfg->spf.ttl_s, 300);

	assert_int_equal(cfg->nsources, 0);
	assert_null(cfg->sources);
	config_free(cfg);

	/* Comments and blank lines only: still the defaults. */
	cfg = parse_ok("; a comment\n# another\n\n   \t\n  ; indented\n");
	assert_int_equal(cfg->threshold, 5);
	config_free(cfg);

	/* A source with only a zone gets the source defaults. */
	cfg = parse_ok("[source x1]\nzone = bl.example.org\n");
	assert_int_equal(cfg->nsources, 1);
	assert_string_equal(cfg->sources[0].name, "x1");
	assert_int_equal(cfg->sources[0].type, QSRC_IP);
	assert_int_equal(cfg->sources[0].rules.weight, 1);
	assert_int_equal(cfg->sources[0].rules.ncodes, 0);
	assert_int_equal(cfg->sources[0].rules.nerrors, 0);
	assert_int_equal(cfg->sources[0].timeout_ms, 0);
	assert_false(cfg->sources[0].servers.system);
	assert_int_equal(cfg->sources[0].servers.n, 0);
	assert_true(cfg->sources[0].enabled);
	assert_int_equal(cfg->sources[0].line, 1);
	config_free(cfg);
}

/* ------------------------------------------------------------ full file */

static const char full_file[] =
	"; every key, none at its default\n"
	"[server]\n"
	"listen = 127.0.0.2:53, [::1]:5300 ,0.0.0.0:10053\n"
	"zone = DNSBL.Example.NET.\n"
	"threads = 4\n"
	"allow = 10.0.0.0/8, 2001:db8::/32, 192.0.2.7\n"
	"user = rblmux\n"
	"metrics = 127.0.0.1:9353\n"
	"tcp_idle = 2500ms\n"
	"tcp_max = 1000\n"
	"udp_max_size = 4096\n"
	"[upstream]\n"
	"servers = 127.0.0.1:5301, ::1\n"
	"timeout = 800ms\n"
	"deadline = 3s\n"
	"probe_interval = 5m\n"
	"max_inflight = 500\n"
	"[scoring]\n"
	"threshold = 7\n"
	"on_incomplete = servfail\n"
	"[cache]\n"
	"redis = 127.0.0.1:6379\n"
	"redis_password = s3cr#t;pass\n"
	"redis_db = 3\n"
	"key_prefix = rbl:x:\n"
	"memory = 64M\n"
	"min_ttl = 30\n"
	"max_ttl = 2h\n"
	"error_ttl = 1m\n"
	"stale_ttl = 6h\n"
	"[ptr]\n"
	"enabled = no\n"
	"level = aggressive\n"
	"weight = 3\n"
	"weight_no_ptr = -2\n"
	"weight_no_fcrdns = 0\n"
	"[spf]\n"
	"enabled = off\n"
	"ttl = 10m\n"
	"[source zen]\n"
	"zone = zen.spamhaus.org\n"
	"type = ip4\n"
	"weight = 4\n"
	"codes = 127.0.0.2=5, 127.0.0.[4..7]=6, 127.0.1.0/24=2\n"
	"errors = 127.255.255.254, 127.255.255.[250..255]\n"
	"timeout = 1s\n"
	"servers = [::1]:5302\n"
	"enabled = false\n"
	"[source Allow-List]\n"
	"zone = list.dnswl.org\n"
	"type = ip6\n"
	"weight = -3\n"
	"codes =\n"
	"errors =\n"
	"timeout =\n"
	"servers = system\n"
	"enabled = 1\n"
	"[source dbl]\n"
	"zone = dbl.spamhaus.org\n"
	"type = domain\n";

static void test_full_file(void **state)
{
	struct config *cfg = parse_ok(full_file);
	const struct config_source *s;

	assert_int_equal(cfg->nlisten, 3);
	assert_addr(&cfg->listen[0], "127.0.0.2:53");
	assert_addr(&cfg->listen[1], "[::1]:5300");
	assert_addr(&cfg->listen[2], "0.0.0.0:10053");
	assert_string_equal(cfg->zone_text, "dnsbl.example.net");
	assert_int_equal(cfg->zone_len, 19);
	assert_memory_equal(cfg->zone, "\x05" "dnsbl\x07" "example\x03" "net", 19);
	assert_int_equal(cfg->threads, 4);
	assert_int_equal(cfg->nallow, 3);
	assert_cidr(&cfg->allow[0], "10.0.0.0/8");
	assert_cidr(&cfg->allow[1], "2001:db8::/32");
	assert_cidr(&cfg->allow[2], "192.0.2.7/32");
	assert_string_equal(cfg->user, "rblmux");
	assert_addr(&cfg->metrics, "127.0.0.1:9353");
	assert_int_equal(cfg->tcp_idle_ms, 2500);
	assert_int_equal(cfg->tcp_max, 1000);
	assert_int_equal(cfg->udp_max_size, 4096);

	assert_false(cfg->servers.system);
	assert_int_equal(cfg->servers.n, 2);
	assert_string_equal(cfg->servers.csv, "127.0.0.1:5301,[::1]:53");
	assert_int_equal(cfg->timeout_ms, 800);
	assert_int_equal(cfg->deadline_ms, 3000);
	assert_int_equal(cfg->probe_interval_ms, 300000);
	assert_int_equal(cfg->max_inflight, 500);

	assert_int_equal(cfg->threshold, 7);
	assert_int_equal(cfg->on_incomplete, SCORE_INCOMPLETE_SERVFAIL);

	assert_string_equal(cfg->redis, "127.0.0.1:6379");
	/* ';' and '#' inside a word are not comments. */
	assert_string_equal(cfg->redis_password, "s3cr#t;pass");
	assert_int_equal(cfg->redis_db, 3);
	assert_string_equal(cfg->key_prefix, "rbl:x:");
	assert_int_equal(cfg->memory_bytes, 64ull << 20);
	assert_int_equal(cfg->min_ttl_s, 30);
	assert_int_equal(cfg->max_ttl_s, 7200);
	assert_int_equal(cfg->error_ttl_s, 60);
	assert_int_equal(cfg->stale_ttl_s, 21600);

	assert_false(cfg->ptr.enabled);
	assert_int_equal(cfg->ptr.level, 2);
	assert_int_equal(cfg->ptr.weight, 3);
	assert_int_equal(cfg->ptr.weight_no_ptr, -2);
	assert_int_equal(cfg->ptr.weight_no_fcrdns, 0);
	assert_false(cfg->spf.enabled);
	assert_int_equal(cfg->spf.ttl_s, 600);

	assert_int_equal(cfg->nsources, 3);
	s = &cfg->sources[0];
	assert_string_equal(s->name, "zen");
	assert_string_equal(s->zone_text, "zen.spamhaus.org");
	assert_int_equal(s->zone_len, 18);
	assert_memory_equal(s->zone, "\x03zen\x08spamhaus\x03org", 18);
	assert_int_equal(s->type, QSRC_IP4);
	assert_int_equal(s->rules.weight, 4);
	assert_int_equal(s->rules.ncodes, 3);
	assert_int_equal(s->rules.codes[0].range.lo, 0x7f000002);
	assert_int_equal(s->rules.codes[0].range.hi, 0x7f000002);
	assert_int_equal(s->rules.codes[0].weight, 5);
	assert_int_equal(s->rules.codes[1].range.lo, 0x7f000004);
	assert_int_equal(s->rules.codes[1].range.hi, 0x7f000007);
	assert_int_equal(s->rules.codes[1].weight, 6);
	assert_int_equal(s->rules.codes[2].range.lo, 0x7f000100);
	assert_int_equal(s->rules.codes[2].range.hi, 0x7f0001ff);
	assert_int_equal(s->rules.codes[2].weight, 2);
	assert_int_equal(s->rules.nerrors, 2);
	assert_int_equal(s->rules.errors[0].lo, 0x7ffffffe);
	assert_int_equal(s->rules.errors[0].hi, 0x7ffffffe);
	assert_int_equal(s->rules.errors[1].lo, 0x7ffffffa);
	assert_int_equal(s->rules.errors[1].hi, 0x7fffffff);
	assert_int_equal(s->timeout_ms, 1000);
	assert_false(s->servers.system);
	assert_int_equal(s->servers.n, 1);
	assert_string_equal(s->servers.csv, "[::1]:5302");
	assert_false(s->enabled);
	assert_int_equal(s->line, 40);

	s = &cfg->sources[1];
	assert_string_equal(s->name, "allow-list"); /* lowercased */
	assert_string_equal(s->zone_text, "list.dnswl.org");
	assert_int_equal(s->type, QSRC_IP6);
	assert_int_equal(s->rules.weight, -3);
	assert_int_equal(s->rules.ncodes, 0);
	assert_int_equal(s->rules.nerrors, 0);
	assert_int_equal(s->timeout_ms, 0);
	assert_true(s->servers.system);
	assert_true(s->enabled);
	assert_int_equal(s->line, 49);

	s = &cfg->sources[2];
	assert_string_equal(s->name, "dbl");
	assert_int_equal(s->type, QSRC_DOMAIN);
	assert_int_equal(s->line, 58);
	config_free(cfg);
}

/* --------------------------------------------------------------- units */

static void test_durations(void **state)
{
	static const struct {
		const char *text;
		uint64_t ms;
	} ok[] = {
		{ "0", 0 }, { "1500ms", 1500 }, { "2s", 2000 }, { "5m", 300000 },
		{ "1h", 3600000 }, { "45", 45000 }, { "0ms", 0 },
		{ "18446744073709551615ms", UINT64_MAX },
	};
	static const char *const bad[] = {
		"", "s", "ms", "1.5s", "-1s", "+1s", "1 s", " 1s", "1s ", "1d", "1S",
		"1M", "1H", "1sec", "1mss", "0x10", "18446744073709551616ms",
		"18446744073709551615s", "99999999999999999999",
	};
	uint64_t ms;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ms = 12345;
		assert_int_equal(config_parse_duration_ms(ok[i].text, &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 12345;
		if (config_parse_duration_ms(bad[i], &ms) != -EINVAL)
			fail_msg("duration \"%s\" accepted", bad[i]);
		assert_int_equal(ms, 12345);
	}
}

static void test_sizes(void **state)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} ok[] = {
		{ "0", 0 }, { "100", 100 }, { "64k", 65536 }, { "64K", 65536 },
		{ "256M", 256ull << 20 }, { "2G", 2ull << 30 },
		{ "17179869183G", 17179869183ull << 30 },
	};
	static const char *const bad[] = {
		"", "k", "1m", "1g", "1T", "1.5M", "-1M", "1 M", "1MB", "1KiB",
		"17179869184G", "18446744073709551616",
	};
	uint64_t b;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(config_parse_size(ok[i].text, &b), 0);
		assert_int_equal(b, ok[i].bytes);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_parse_size(bad[i], &b) != -EINVAL)
			fail_msg("size \"%s\" accepted", bad[i]);
}

static void test_units_in_keys(void **state)
{
	struct config *cfg = parse_ok("[upstream]\ntimeout = 2s\ndeadline = 1ms\n"
				      "probe_interval = 1h\n"
				      "[cache]\nmemory = 1048576\nmin_ttl = 0\nmax_ttl = 90m\n"
				      "error_ttl = 0s\nstale_ttl = 168h\n"
				      "[server]\ntcp_idle = 1h\n[spf]\nttl = 3600\n");

	assert_int_equal(cfg->timeout_ms, 2000);
	assert_int_equal(cfg->deadline_ms, 1);
	assert_int_equal(cfg->probe_interval_ms, 3600000);
	assert_int_equal(cfg->memory_bytes, 1048576);
	assert_int_equal(cfg->min_ttl_s, 0);
	assert_int_equal(cfg->max_ttl_s, 5400);
	assert_int_equal(cfg->error_ttl_s, 0);
	assert_int_equal(cfg->stale_ttl_s, 168 * 3600);
	assert_int_equal(cfg->tcp_idle_ms, 3600000);
	assert_int_equal(cfg->spf.ttl_s, 3600);
	config_free(cfg);

	/* Booleans and keywords in any case. */
	cfg = parse_ok("[ptr]\nenabled = OFF\nlevel = Conservative\n"
		       "[spf]\nenabled = True\n[scoring]\non_incomplete = PARTIAL\n"
		       "[server]\nthreads = AUTO\n[upstream]\nservers = System\n");
	assert_false(cfg->ptr.enabled);
	assert_int_equal(cfg->ptr.level, 0);
	assert_true(cfg->spf.enabled);
	assert_int_equal(cfg->on_incomplete, SCORE_INCOMPLETE_PARTIAL);
	assert_int_equal(cfg->threads, 0);
	assert_true(cfg->servers.system);
	config_free(cfg);

	cfg = parse_ok("[server]\nthreads = 64\n[scoring]\nthreshold = 1\n");
	assert_int_equal(cfg->threads, 64);
	assert_int_equal(cfg->threshold, 1);
	config_free(cfg);
}

/* ----------------------------------------------------- addresses, CIDRs */

static void test_addr_port(void **state)
{
	static const char *const ok[][2] = {
		{ "127.0.0.1:5353", "127.0.0.1:5353" },
		{ "[::1]:53", "[::1]:53" },
		{ "[2001:DB8::1]:65535", "[2001:db8::1]:65535" },
		{ "0.0.0.0:1", "0.0.0.0:1" },
		{ "[::ffff:127.0.0.1]:53", "[::ffff:127.0.0.1]:53" },
	};
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:-1", "127.0.0.1:+53", "127.0.0.1:53x", "::1:53", "::1",
		"[::1]", "[::1]53", "[::1]:", "[]:53", "[127.0.0.1]:53", "127.1:53",
		"localhost:53", "256.0.0.1:53", " 127.0.0.1:53", "127.0.0.1 :53",
		"[fe80::1%lo]:53", "[::1:53",
	};
	struct config_addr a;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(config_parse_addr_port(ok[i][0], &a), 0);
		assert_addr(&a, ok[i][1]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_parse_addr_port(bad[i], &a) != -EINVAL)
			fail_msg("address \"%s\" accepted", bad[i]);
}

static void test_cidr(void **state)
{
	static const char *const ok[][2] = {
		{ "127.0.0.0/8", "127.0.0.0/8" },
		{ "::1/128", "::1/128" },
		{ "::1", "::1/128" },
		{ "192.0.2.1", "192.0.2.1/32" },
		{ "0.0.0.0/0", "0.0.0.0/0" },
		{ "::/0", "::/0" },
		/* Host bits are masked. */
		{ "10.1.2.3/8", "10.0.0.0/8" },
		{ "2001:db8::1/32", "2001:db8::/32" },
		{ "192.0.2.255/25", "192.0.2.128/25" },
		/* IPv4-mapped networks are IPv4 networks. */
		{ "::ffff:10.0.0.0/104", "10.0.0.0/8" },
		{ "::ffff:192.0.2.1", "192.0.2.1/32" },
		{ "::ffff:0:0/96", "0.0.0.0/0" },
		{ "::ffff:0:0/95", "::fffe:0:0/95" },
	};
	static const char *const bad[] = {
		"", "/8", "127.0.0.0/", "127.0.0.0/33", "::/129", "127.0.0.0/8/8",
		"127.0.0.0/-1", "127.0.0.0/+8", "127.0.0.0/ 8", "127.0.0/8", "x/8",
		"127.0.0.0/8x", "::1/1a",
	};
	struct config_cidr c;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(config_parse_cidr(ok[i][0], &c), 0);
		assert_cidr(&c, ok[i][1]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_parse_cidr(bad[i], &c) != -EINVAL)
			fail_msg("CIDR \"%s\" accepted", bad[i]);
}

static void test_cidr_match(void **state)
{
	struct config_cidr c;
	uint8_t v4[4], v6[16];

	assert_int_equal(config_parse_cidr("127.0.0.0/8", &c), 0);
	inet_pton(AF_INET, "127.1.2.3", v4);
	assert_true(config_cidr_match(&c, AF_INET, v4));
	inet_pton(AF_INET, "128.0.0.1", v4);
	assert_false(config_cidr_match(&c, AF_INET, v4));
	/* A dual-stack socket reports IPv4 clients as mapped addresses. */
	inet_pton(AF_INET6, "::ffff:127.0.0.1", v6);
	assert_true(config_cidr_match(&c, AF_INET6, v6));
	inet_pton(AF_INET6, "::ffff:10.0.0.1", v6);
	assert_false(config_cidr_match(&c, AF_INET6, v6));
	inet_pton(AF_INET6, "::1", v6);
	assert_false(config_cidr_match(&c, AF_INET6, v6));

	/* A prefix not on a byte boundary. */
	assert_int_equal(config_parse_cidr("192.0.2.128/25", &c), 0);
	inet_pton(AF_INET, "192.0.2.200", v4);
	assert_true(config_cidr_match(&c, AF_INET, v4));
	inet_pton(AF_INET, "192.0.2.127", v4);
	assert_false(config_cidr_match(&c, AF_INET, v4));

	assert_int_equal(config_parse_cidr("2001:db8::/33", &c), 0);
	inet_pton(AF_INET6, "2001:db8:7fff::1", v6);
	assert_true(config_cidr_match(&c, AF_INET6, v6));
	inet_pton(AF_INET6, "2001:db8:8000::1", v6);
	assert_false(config_cidr_match(&c, AF_INET6, v6));
	inet_pton(AF_INET, "32.1.13.184", v4);
	assert_false(config_cidr_match(&c, AF_INET, v4));

	/* ::/0 is every IPv6 client, not the IPv4 ones. */
	assert_int_equal(config_parse_cidr("::/0", &c), 0);
	inet_pton(AF_INET6, "::ffff:192.0.2.1", v6);
	assert_false(config_cidr_match(&c, AF_INET6, v6));
	inet_pton(AF_INET, "192.0.2.1", v4);
	assert_false(config_cidr_match(&c, AF_INET, v4));
	inet_pton(AF_INET6, "2001:db8::1", v6);
	assert_true(config_cidr_match(&c, AF_INET6, v6));

	assert_int_equal(config_parse_cidr("0.0.0.0/0", &c), 0);
	assert_true(config_cidr_match(&c, AF_INET, v4));
	assert_false(config_cidr_match(&c, AF_INET6, v6));
	assert_false(config_cidr_match(NULL, AF_INET, v4));
}

static void test_servers(void **state)
{
	struct config *cfg = parse_ok(
		"[upstream]\nservers = 127.0.0.1, 127.0.0.1:5301 , ::1,[::1]:5302, 2001:db8::53\n"
		"[source la]\nzone = a.example\nservers =\n"
		"[source lb]\nzone = b.example\nservers = system\n"
		"[source lc]\nzone = c.example\nservers = 192.0.2.53:5353\n");

	assert_false(cfg->servers.system);
	assert_int_equal(cfg->servers.n, 5);
	assert_string_equal(cfg->servers.csv,
			    "127.0.0.1:53,127.0.0.1:5301,[::1]:53,[::1]:5302,[2001:db8::53]:53");
	assert_int_equal(cfg->nsources, 3);
	assert_false(cfg->sources[0].servers.system);
	assert_int_equal(cfg->sources[0].servers.n, 0);
	assert_string_equal(cfg->sources[0].servers.csv, "");
	assert_true(cfg->sources[1].servers.system);
	assert_int_equal(cfg->sources[1].servers.n, 0);
	assert_string_equal(cfg->sources[2].servers.csv, "192.0.2.53:5353");
	config_free(cfg);

	/* An empty [upstream] servers is the default: the system's. */
	cfg = parse_ok("[upstream]\nservers =\n");
	assert_true(cfg->servers.system);
	config_free(cfg);

	/* Eight is the limit; the longest CSV still fits. */
	cfg = parse_ok("[upstream]\nservers = "
		       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff1]:65535,"
		       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff2]:65535,"
		       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff3]:65535,"
		       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff4]:65535,"
		       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff5]:65535,"
		       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff6]:65535,"
		       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff7]:65535,"
		       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff8]:65535\n");
	assert_int_equal(cfg->servers.n, 8);
	assert_int_equal(strlen(cfg->servers.csv), 8 * 48 - 1); /* 47 bytes and a comma each */
	config_free(cfg);
	expect_one_error("[upstream]\nservers = 1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,"
			 "1.1.1.5,1.1.1.6,1.1.1.7,1.1.1.8,1.1.1.9\n", 2, "more than 8");
}

static void test_zone_names(void **state)
{
	struct config *cfg = parse_ok("[server]\nzone = A-1.Ex_ample.\n"
				      "[source s]\nzone = BL.SPAMCOP.NET\n");

	assert_string_equal(cfg->zone_text, "a-1.ex_ample");
	assert_int_equal(cfg->zone_len, 14);
	assert_memory_equal(cfg->zone, "\x03" "a-1\x08" "ex_ample", 14);
	assert_string_equal(cfg->sources[0].zone_text, "bl.spamcop.net");
	assert_memory_equal(cfg->sources[0].zone, "\x02" "bl\x07" "spamcop\x03" "net", 16);
	config_free(cfg);

	/* A single label, and the longest name (253 characters). */
	cfg = parse_ok("[server]\nzone = localhost\n");
	assert_int_equal(cfg->zone_len, 11);
	config_free(cfg);
	{
		char text[400];
		char name[260] = "";

		for (int i = 0; i < 4; i++)
			strcat(name, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
		strcat(name, "b"); /* 4 * 64 + 1 = 257: too long */
		snprintf(text, sizeof(text), "[server]\nzone = %s\n", name);
		expect_one_error(text, 2, "longer than 253");
		name[4 * 64 - 6] = '\0'; /* 250 characters, ending in a label */
		snprintf(text, sizeof(text), "[server]\nzone = %s\n", name);
		cfg = parse_ok(text);
		assert_int_equal(strlen(cfg->zone_text), 250);
		assert_int_equal(cfg->zone_len, 252);
		config_free(cfg);
	}

	expect_one_error("[server]\nzone =\n", 2, "empty");
	expect_one_error("[server]\nzone = .\n", 2, "empty");
	expect_one_error("[server]\nzone = a..b\n", 2, "empty label");
	expect_one_error("[server]\nzone = .a\n", 2, "empty label");
	expect_one_error("[server]\nzone = a b\n", 2, "only letters");
	expect_one_error("[server]\nzone = a\\.b\n", 2, "only letters");
	expect_one_error("[server]\nzone = -a.b\n", 2, "'-'");
	expect_one_error("[server]\nzone = a.b-\n", 2, "'-'");
	expect_one_error("[server]\nzone = "
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b\n",
			 2, "longer than 63");
}

/* ----------------------------------------------------------- error kinds */

static void test_error_kinds(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *what;
	} cases[] = {
		/* structure */
		{ "[server]\n[nosuch]\nzone = x\n", 2, "unknown section [nosuch]" },
		{ "zone = a.b\n", 1, "outside any section" },
		{ "\n\n[server\nzone = x.y\n", 3, "malformed section header" },
		{ "[]\n", 1, "unknown section" },
		{ "[server]\nlisten 127.0.0.1:53\n", 2, "expected \"key = value\"" },
		{ "[server]\n= 1\n", 2, "missing key" },
		{ "[server]\nnosuch = 1\n", 2, "unknown key \"nosuch\" in [server]" },
		{ "[server]\nthreshold = 1\n", 2, "(it belongs in [scoring])" },
		{ "[server]\nZone = a.b\n", 2, "unknown key \"Zone\"" },
		{ "[server]\n[server]\n", 2, "duplicate section [server] (first at line 1)" },
		{ "[scoring]\nthreshold = 1\n\nthreshold = 2\n", 4,
		  "duplicate key \"threshold\" in [scoring] (first at line 2)" },
		{ "[source la]\nzone = a.b\n[source LA]\nzone = c.d\n", 3,
		  "duplicate section [source la] (first at line 1)" },
		{ "[source la]\nzone = a.b\nzone = a.b\n", 3, "duplicate key \"zone\"" },
		{ "[server x]\n", 1, "takes no name" },
		{ "[source]\nzone = a.b\n", 1, "needs a name" },
		{ "[source la]\n", 1, "[source la] has no zone" },
		{ "[source la]\nweight = 1\n[server]\n", 1, "has no zone" },
		{ "[source la]\nzone = a.b\nfoo = 1\n", 3, "unknown key \"foo\" in [source la]" },
		{ "[source la]\nzone = a.b\nlisten = 1\n", 3, "(it belongs in [server])" },
		/* [server] values */
		{ "[server]\nlisten =\n", 2, "at least one address" },
		{ "[server]\nlisten = 127.0.0.1\n", 2, "not an address with a port" },
		{ "[server]\nlisten = 127.0.0.1:53,\n", 2, "empty item" },
		{ "[server]\nlisten = 127.0.0.1:53, 127.0.0.1:53\n", 2, "given twice" },
		{ "[server]\nthreads = 0\n", 2, "not auto or 1..64" },
		{ "[server]\nthreads = 65\n", 2, "not auto or 1..64" },
		{ "[server]\nthreads = two\n", 2, "not auto or 1..64" },
		{ "[server]\nallow =\n", 2, "at least one network" },
		{ "[server]\nallow = 10.0.0.0/33\n", 2, "not an address or network" },
		{ "[server]\nuser = bad user\n", 2, "not a user name" },
		{ "[server]\nuser = -x\n", 2, "not a user name" },
		{ "[server]\nmetrics = 9353\n", 2, "not an address with a port" },
		{ "[server]\ntcp_idle = 0\n", 2, "out of range (1ms..1h)" },
		{ "[server]\ntcp_max = 0\n", 2, "out of range" },
		{ "[server]\ntcp_max = -5\n", 2, "out of range (1..65535)" },
		{ "[server]\nudp_max_size = 511\n", 2, "out of range (512..65535)" },
		{ "[server]\nudp_max_size = 1232 bytes\n", 2, "not an integer" },
		/* [upstream] */
		{ "[upstream]\nservers = resolver.example\n", 2, "not \"system\" or an address" },
		{ "[upstream]\nservers = 127.0.0.1:0\n", 2, "not \"system\" or an address" },
		{ "[upstream]\nservers = ::1, [::1]:53\n", 2, "given twice" },
		{ "[upstream]\ntimeout = 1500\n", 2, "out of range (1ms..1m)" },
		{ "[upstream]\ntimeout = 1.5s\n", 2, "not a duration" },
		{ "[upstream]\ndeadline = 0ms\n", 2, "out of range (1ms..1m)" },
		{ "[upstream]\nprobe_interval = 500ms\n", 2, "out of range (1s..24h)" },
		{ "[upstream]\nmax_inflight = 0\n", 2, "out of range" },
		/* [scoring] */
		{ "[scoring]\nthreshold = 0\n", 2, "out of range (1..100000)" },
		{ "[scoring]\nthreshold = -3\n", 2, "out of range" },
		{ "[scoring]\nthreshold = 99999999999999999999\n", 2, "out of range" },
		{ "[scoring]\non_incomplete = maybe\n", 2, "not one of partial or servfail" },
		/* [cache] */
		{ "[cache]\nredis = localhost\n", 2, "not none, host:port" },
		{ "[cache]\nredis = 127.0.0.1:99999\n", 2, "not none, host:port" },
		{ "[cache]\nredis = 999.0.0.1:6379\n", 2, "not none, host:port" },
		{ "[cache]\nredis = unix:run/redis.sock\n", 2, "absolute socket path" },
		{ "[cache]\nredis_db = -1\n", 2, "out of range" },
		{ "[cache]\nkey_prefix = a b\n", 2, "without blanks" },
		{ "[cache]\nmemory = 256MB\n", 2, "not a size" },
		{ "[cache]\nmemory = 1k\n", 2, "at least 1M" },
		{ "[cache]\nmin_ttl = 1500ms\n", 2, "whole number of seconds" },
		{ "[cache]\nmax_ttl = 8d\n", 2, "not a duration" },
		{ "[cache]\nstale_ttl = 169h\n", 2, "out of range (0s..168h)" },
		{ "[cache]\nmin_ttl = 2h\n", 2, "min_ttl (2h) is greater than max_ttl (1h)" },
		{ "[cache]\nmax_ttl = 10s\n", 2, "min_ttl (1m) is greater than max_ttl (10s)" },
		{ "[cache]\nmax_ttl = 10s\nmin_ttl = 20s\n", 3, "is greater than max_ttl" },
		/* [ptr], [spf] */
		{ "[ptr]\nenabled = maybe\n", 2, "not a boolean" },
		{ "[ptr]\nlevel = high\n", 2, "not one of conservative, moderate or aggressive" },
		{ "[ptr]\nweight = 1001\n", 2, "out of range (-1000..1000)" },
		{ "[ptr]\nweight_no_ptr = x\n", 2, "not an integer" },
		{ "[ptr]\nweight_no_fcrdns = -1001\n", 2, "out of range" },
		{ "[spf]\nttl = forever\n", 2, "not a duration" },
		{ "[spf]\nenabled =\n", 2, "not a boolean" },
		/* [source] */
		{ "[source la]\nzone = a.b\ntype = ipv4\n", 3, "not one of ip, ip4, ip6 or domain" },
		{ "[source la]\nzone = a.b\nweight = 2.5\n", 3, "not an integer" },
		{ "[source la]\nzone = a.b\nweight = -1001\n", 3, "out of range" },
		{ "[source la]\nzone = a.b\ncodes = 127.0.0.2\n", 3, "not a code rule" },
		{ "[source la]\nzone = a.b\ncodes = 127.0.0.2=1,,127.0.0.3=1\n", 3, "empty item" },
		{ "[source la]\nzone = a.b\ncodes = 127.0.0.2=1001\n", 3, "weight is out of range" },
		{ "[source la]\nzone = a.b\ncodes = 10.0.0.2=1\n", 3, "10.0.0.2 is outside 127.0.0.0/8" },
		{ "[source la]\nzone = a.b\ncodes = 126.0.0.0/7=1\n", 3,
		  "126.0.0.0-127.255.255.255 is outside" },
		{ "[source la]\nzone = a.b\ncodes = 127.255.255.254=1\n", 3,
		  "127.255.255.254 lies inside the default errors range" },
		{ "[source la]\ncodes = 127.0.0.[4..7]=1\nerrors = 127.0.0.0/24\nzone = a.b\n", 2,
		  "127.0.0.4-127.0.0.7 lies inside the errors range 127.0.0.0-127.0.0.255" },
		{ "[source la]\nzone = a.b\nerrors = 127.0.0.1/24\n", 3, "not an address or range" },
		{ "[source la]\nzone = a.b\nerrors = x\n", 3, "not an address or range" },
		{ "[source la]\nzone = a.b\ntimeout = 61s\n", 3, "out of range (0s..1m)" },
		{ "[source la]\nzone = a.b\nservers = 127.0.0.1:5301:1\n", 3, "not \"system\"" },
		{ "[source la]\nzone = a.b\nenabled = 2\n", 3, "not a boolean" },
		/* source names */
		{ "[source score]\nzone = a.b\n", 1, "invalid source name \"score\"" },
		{ "[source 1abc]\nzone = a.b\n", 1, "invalid source name \"1abc\"" },
		{ "[source a_b]\nzone = a.b\n", 1, "invalid source name \"a_b\"" },
		{ "[source PTR]\nzone = a.b\n", 1, "invalid source name \"ptr\"" },
		{ "[source spf]\nzone = a.b\n", 1, "invalid source name" },
		{ "[source rhs]\nzone = a.b\n", 1, "invalid source name" },
		{ "[source health]\nzone = a.b\n", 1, "invalid source name" },
		{ "[source a.b]\nzone = a.b\n", 1, "invalid source name" },
		{ "[source a b]\nzone = a.b\n", 1, "invalid source name" },
		{ "[source -a]\nzone = a.b\n", 1, "invalid source name" },
		{ "[source f]\nzone = a.b\n", 1, "lone hex digit" },
		{ "[source "
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "]\nzone = a.b\n", 1, "invalid source name" },
	};
	static const char nul[] = "[server]\nzone = a.b\0\nthreads = 2\n";
	struct errs *e = new_errs();
	struct config *cfg = (struct config *)1;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_one_error(cases[i].text, cases[i].line, cases[i].what);

	/* A NUL byte: the line is refused, the next one is still read. */
	assert_int_equal(config_parse(nul, sizeof(nul) - 1, "nul", collect, e, &cfg), -EINVAL);
	assert_null(cfg);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->line[0], 2);
	assert_string_equal(e->msg[0], "NUL byte in the line");
	free(e);
}

/* The keys under a section in error are still checked, into a scratch copy. */
static void test_errors_in_bad_sections(void **state)
{
	struct errs *e = new_errs();
	struct config *cfg = NULL;
	const char *text =
		"[server]\n"                    /* 1 */
		"zone = a.b\n"                  /* 2 */
		"[server]\n"                    /* 3: duplicate */
		"zone = c.d\n"                  /* 4: fine, not a duplicate key */
		"threads = none\n"              /* 5: bad value still found */
		"[source score]\n"              /* 6: invalid name */
		"zone = x.y\n"                  /* 7 */
		"weight = heavy\n"              /* 8: bad value still found */
		"[nosuch]\n"                    /* 9: unknown: keys skipped */
		"whatever = 1\n"                /* 10 */
		"[source ok]\n"                 /* 11 */
		"zone = ok.example\n";          /* 12 */

	assert_int_equal(parse(text, e, &cfg), -EINVAL);
	assert_null(cfg);
	assert_int_equal(e->n, 5);
	assert_int_equal(e->line[0], 3);
	assert_non_null(strstr(e->msg[0], "duplicate section [server]"));
	assert_int_equal(e->line[1], 5);
	assert_non_null(strstr(e->msg[1], "threads"));
	assert_int_equal(e->line[2], 6);
	assert_non_null(strstr(e->msg[2], "invalid source name"));
	assert_int_equal(e->line[3], 8);
	assert_non_null(strstr(e->msg[3], "weight"));
	assert_int_equal(e->line[4], 9);
	assert_non_null(strstr(e->msg[4], "unknown section [nosuch]"));
	free(e);

	/* A duplicate source's body is checked too, against its own keys. */
	e = new_errs();
	assert_int_equal(parse("[source la]\nzone = a.b\n[source la]\nzone = a.b\nzone = c.d\n",
			       e, &cfg), -EINVAL);
	assert_int_equal(e->n, 2);
	assert_int_equal(e->line[0], 3);
	assert_int_equal(e->line[1], 5);
	assert_non_null(strstr(e->msg[1], "duplicate key \"zone\" in [source la] (first at line 4)"));
	free(e);
}

static void test_many_errors(void **state)
{
	static const char text[] =
		"threshold = 3\n"               /* 1: outside any section */
		"[server]\n"                    /* 2 */
		"listen = 127.0.0.1\n"          /* 3: no port */
		"zone = ok.example\n"           /* 4 */
		"bogus = 1\n"                   /* 5: unknown key */
		"\n"                            /* 6 */
		"[upstream]\n"                  /* 7 */
		"timeout = soon\n"              /* 8: bad duration */
		"timeout = 1s\n"                /* 9: duplicate key */
		"just some words\n"             /* 10: no '=' */
		"[scoring]\n"                   /* 11 */
		"threshold = 0\n"               /* 12: out of range */
		"[source 1abc]\n"               /* 13: invalid name */
		"zone = a.b\n"                  /* 14 */
		"[source good]\n"               /* 15: no zone (reported at 15) */
		"weight = 3\n"                  /* 16 */
		"[cache]\n"                     /* 17 */
		"min_ttl = 2h ; more than max\n" /* 18: cross-check */
		"[server]\n";                   /* 19: duplicate section */
	static const int want[] = { 1, 3, 5, 8, 9, 10, 12, 13, 15, 18, 19 };
	struct errs *e = new_errs();
	struct config *cfg = (struct config *)1;

	assert_int_equal(parse(text, e, &cfg), -EINVAL);
	assert_null(cfg);
	if (e->n != (int)(sizeof(want) / sizeof(want[0])))
		for (int i = 0; i < e->n && i < MAX_ERRS; i++)
			print_message("line %d: %s\n", e->line[i], e->msg[i]);
	assert_int_equal(e->n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(e->line[i], want[i]);
	free(e);
}

/* ----------------------------------------------------------------- lines */

static void test_long_lines(void **state)
{
	size_t cap = 3 * CONFIG_LINE_MAX;
	char *text = malloc(cap);
	struct config *cfg;
	struct errs *e;
	size_t n;

	assert_non_null(text);
	/* Exactly CONFIG_LINE_MAX bytes (plus CRLF) is fine. */
	n = (size_t)snprintf(text, cap, "[cache]\nkey_prefix = x\n;");
	memset(text + n, 'c', CONFIG_LINE_MAX - 1);
	n += CONFIG_LINE_MAX - 1;
	memcpy(text + n, "\r\n", 3);
	cfg = parse_ok(text);
	config_free(cfg);

	/* One more byte is an error, and the line is not read. */
	n = (size_t)snprintf(text, cap, "[cache]\nkey_prefix = ");
	memset(text + n, 'k', CONFIG_LINE_MAX - 13 + 1);
	n += CONFIG_LINE_MAX - 13 + 1;
	snprintf(text + n, cap - n, "\nredis_db = x\n");
	e = new_errs();
	cfg = (struct config *)1;
	assert_int_equal(parse(text, e, &cfg), -EINVAL);
	assert_null(cfg);
	assert_int_equal(e->n, 2);
	assert_int_equal(e->line[0], 2);
	assert_string_equal(e->msg[0], "line longer than 4096 bytes");
	assert_int_equal(e->line[1], 3);
	free(e);

	/* A lost section header: the keys below it are not taken for the
	 * section above it. */
	n = (size_t)snprintf(text, cap, "[server]\n[source ");
	memset(text + n, 'x', CONFIG_LINE_MAX);
	n += CONFIG_LINE_MAX;
	snprintf(text + n, cap - n, "]\nzone = a.b\nweight = 3\n");
	e = new_errs();
	assert_int_equal(parse(text, e, &cfg), -EINVAL);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->line[0], 2);
	free(e);
	free(text);
}

static void test_line_endings(void **state)
{
	/* CRLF, no final newline, a byte order mark, blanks everywhere. */
	struct config *cfg = parse_ok("\xef\xbb\xbf[server]\r\nzone = crlf.example\r\n"
				      "\r\n  [ scoring ]  \r\n\tthreshold\t=\t9\t\r\n"
				      "[source  s1 ]\r\nzone = s.example");

	assert_string_equal(cfg->zone_text, "crlf.example");
	assert_int_equal(cfg->threshold, 9);
	assert_int_equal(cfg->nsources, 1);
	assert_string_equal(cfg->sources[0].name, "s1");
	assert_string_equal(cfg->sources[0].zone_text, "s.example");
	assert_int_equal(cfg->sources[0].line, 6);
	config_free(cfg);

	/* Line numbers count CRLF lines, and a last line without newline. */
	expect_one_error("[server]\r\n\r\nzone = ok.example\r\nthreads = x", 4, "threads");
	/* A lone CR inside a line is not a line end. */
	expect_one_error("[scoring]\nthreshold = 1\r2\n", 2, "not an integer");
}

static void test_comments(void **state)
{
	struct config *cfg = parse_ok(
		"[cache] ; trailing comment on a header\n"
		"key_prefix = a;b#c ; comment\n"
		"redis_password = p;w\t# comment after a tab\n"
		"; [server]\n"
		"# threshold = 1\n"
		"  ;[scoring]\n"
		"[server]\n"
		"user =         ; empty value, then a comment\n");

	assert_string_equal(cfg->key_prefix, "a;b#c");
	assert_string_equal(cfg->redis_password, "p;w");
	assert_string_equal(cfg->user, "");
	assert_int_equal(cfg->threshold, 5);
	config_free(cfg);

	/* "x.example;" keeps its ';', which no zone name may hold. */
	expect_one_error("[server]\nzone = x.example;\n", 2, "only letters");
	expect_one_error("[server]\nzone = x.example ;\nthreads = 0\n", 3, "threads");
}

static void test_source_rules(void **state)
{
	char text[8192];
	size_t n;
	struct config *cfg;

	/* Same zone and type twice: allowed. */
	cfg = parse_ok("[source la]\nzone = bl.example\n[source lb]\nzone = BL.example.\n"
		       "[source g]\nzone = g.example\n");
	assert_int_equal(cfg->nsources, 3);
	assert_string_equal(cfg->sources[2].name, "g");
	assert_string_equal(cfg->sources[1].zone_text, "bl.example");
	config_free(cfg);

	/* 32 code rules fit, 33 don't. */
	n = (size_t)snprintf(text, sizeof(text), "[source la]\nzone = a.b\ncodes = ");
	for (int i = 1; i <= 32; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s127.0.0.%d=%d",
				      i > 1 ? ", " : "", i, i - 16);
	snprintf(text + n, sizeof(text) - n, "\n");
	cfg = parse_ok(text);
	assert_int_equal(cfg->sources[0].rules.ncodes, 32);
	assert_int_equal(cfg->sources[0].rules.codes[0].weight, -15);
	assert_int_equal(cfg->sources[0].rules.codes[31].weight, 16);
	config_free(cfg);
	snprintf(text + n, sizeof(text) - n, ",127.0.0.33=1\n");
	expect_one_error(text, 3, "more than 32 rules");

	/* 16 error ranges fit, 17 don't. */
	n = (size_t)snprintf(text, sizeof(text), "[source la]\nzone = a.b\nerrors = ");
	for (int i = 0; i < 16; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s127.255.255.%d",
				      i ? "," : "", 240 + i);
	snprintf(text + n, sizeof(text) - n, "\n");
	cfg = parse_ok(text);
	assert_int_equal(cfg->sources[0].rules.nerrors, 16);
	config_free(cfg);
	snprintf(text + n, sizeof(text) - n, ",127.0.0.1\n");
	expect_one_error(text, 3, "more than 16 ranges");

	/* Codes of the default error range are fine once errors are replaced. */
	cfg = parse_ok("[source la]\nzone = a.b\ncodes = 127.255.255.2=1\nerrors = 127.0.0.255\n");
	assert_int_equal(cfg->sources[0].rules.ncodes, 1);
	config_free(cfg);

	/* A source timeout of 0 is the [upstream] timeout. */
	cfg = parse_ok("[source la]\nzone = a.b\ntimeout = 0\n[source lb]\nzone = c.d\ntimeout = 250ms\n");
	assert_int_equal(cfg->sources[0].timeout_ms, 0);
	assert_int_equal(cfg->sources[1].timeout_ms, 250);
	config_free(cfg);
}

static void test_too_many_sources(void **state)
{
	char *text = malloc(64 * 1024);
	size_t n = 0, cap = 64 * 1024;
	struct config *cfg;

	assert_non_null(text);
	for (int i = 0; i < SCORE_MAX_SOURCES; i++)
		n += (size_t)snprintf(text + n, cap - n, "[source s%d]\nzone = s%d.example\n", i, i);
	cfg = parse_ok(text);
	assert_int_equal(cfg->nsources, SCORE_MAX_SOURCES);
	assert_string_equal(cfg->sources[63].name, "s63");
	assert_string_equal(cfg->sources[63].zone_text, "s63.example");
	assert_int_equal(cfg->sources[63].line, 127);
	config_free(cfg);

	snprintf(text + n, cap - n, "[source s64]\nzone = s64.example\n");
	expect_one_error(text, 129, "too many sources: at most 64");
	free(text);
}

static void test_redis_forms(void **state)
{
	static const char *const ok[] = {
		"127.0.0.1:6379", "[::1]:6379", "redis.example.org:6380",
		"unix:/run/redis/redis.sock", "redis:1",
	};
	char text[256];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct config *cfg;

		snprintf(text, sizeof(text), "[cache]\nredis = %s\n", ok[i]);
		cfg = parse_ok(text);
		assert_string_equal(cfg->redis, ok[i]);
		config_free(cfg);
	}
	{
		struct config *cfg = parse_ok("[cache]\nredis = NONE\n");

		assert_string_equal(cfg->redis, "");
		config_free(cfg);
	}
	expect_one_error("[cache]\nredis = ::1:6379\n", 2, "not none");
	expect_one_error("[cache]\nredis = :6379\n", 2, "not none");
	expect_one_error("[cache]\nredis = red_is:6379\n", 2, "not none");
	expect_one_error("[cache]\nredis = unix:\n", 2, "absolute socket path");
	expect_one_error("[cache]\nredis = unix:/"
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 2, "shorter than 108 bytes");
}

/* ------------------------------------------------------------ loading */

static void test_load_errors(void **state)
{
	struct errs *e = new_errs();
	struct config *cfg = (struct config *)1;
	char path[] = "/tmp/rblmux-test-config-XXXXXX";
	int fd;
	char *big;

	assert_int_equal(config_load("/nonexistent/rblmux.conf", collect, e, &cfg), -ENOENT);
	assert_null(cfg);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->line[0], 0);
	assert_string_equal(e->file, "/nonexistent/rblmux.conf");
	assert_non_null(strstr(e->msg[0], "No such file"));
	free(e);

	e = new_errs();
	assert_int_equal(config_load("/", collect, e, &cfg), -EISDIR);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->line[0], 0);
	free(e);

	/* A file with an error: reported with the file's name. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "[server]\nthreads = 100\n", 23), 23);
	e = new_errs();
	assert_int_equal(config_load(path, collect, e, &cfg), -EINVAL);
	assert_null(cfg);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->line[0], 2);
	assert_string_equal(e->file, path);
	free(e);

	/* Exactly 1 MiB is read; one byte more is refused. */
	big = malloc(1024 * 1024 + 1);
	assert_non_null(big);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	memset(big, '\n', 1024 * 1024 + 1);
	memcpy(big, "[scoring]\nthreshold = 8\n", 24);
	assert_int_equal(write(fd, big, 1024 * 1024), 1024 * 1024);
	e = new_errs();
	assert_int_equal(config_load(path, collect, e, &cfg), 0);
	assert_int_equal(e->n, 0);
	assert_int_equal(cfg->threshold, 8);
	config_free(cfg);
	assert_int_equal(write(fd, "\n", 1), 1);
	assert_int_equal(config_load(path, collect, e, &cfg), -EFBIG);
	assert_null(cfg);
	assert_int_equal(e->n, 1);
	assert_int_equal(e->line[0], 0);
	assert_non_null(strstr(e->msg[0], "larger than 1 MiB"));
	free(e);
	free(big);
	close(fd);
	unlink(path);

	/* No callback: errors still fail the parse. */
	cfg = (struct config *)1;
	assert_int_equal(config_parse("[x]\n", 4, "n", NULL, NULL, &cfg), -EINVAL);
	assert_null(cfg);
	config_free(NULL);
}

/*
 * The shipped configuration, found from this source file's name. A relative
 * __FILE__ is relative to the directory the compiler ran in: meson's build
 * directory, the parent of this executable's directory (build/resolver/), or
 * the current directory for a build by hand.
 */
static void shipped_config_path(char *out, size_t cap)
{
	char here[PATH_MAX] = __FILE__;
	char exe[PATH_MAX];
	const char *dir = dirname(here);
	ssize_t n;

	if (dir[0] == '/') {
		snprintf(out, cap, "%s/../etc/rblmux.conf", dir);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	snprintf(out, cap, "%s/../%s/../etc/rblmux.conf", dirname(exe), dir);
	if (access(out, R_OK) != 0)
		snprintf(out, cap, "%s/../etc/rblmux.conf", dir);
}

static void test_shipped_config(void **state)
{
	char path[2 * PATH_MAX + 64];
	struct errs *e = new_errs();
	struct config *cfg = NULL;
	int score_max = 0;
	const struct config_source *zen = NULL, *sorbs = NULL, *dnswl = NULL;

	shipped_config_path(path, sizeof(path));
	print_message("loading %s\n", path);
	assert_int_equal(config_load(path, collect, e, &cfg), 0);
	for (int i = 0; i < e->n && i < MAX_ERRS; i++)
		print_message("%s:%d: %s\n", e->file, e->line[i], e->msg[i]);
	assert_int_equal(e->n, 0);
	assert_non_null(cfg);

	/* What the SPEC §3 example says, and the lists of the mission. */
	assert_string_equal(cfg->zone_text, "rblmux.internal");
	assert_int_equal(cfg->threshold, 5);
	assert_int_equal(cfg->nsources, 7);
	for (size_t i = 0; i < cfg->nsources; i++) {
		const struct config_source *s = &cfg->sources[i];

		if (strcmp(s->zone_text, "zen.spamhaus.org") == 0)
			zen = s;
		if (strcmp(s->zone_text, "dnsbl.sorbs.net") == 0)
			sorbs = s;
		if (strcmp(s->zone_text, "list.dnswl.org") == 0)
			dnswl = s;
		if (s->enabled && s->rules.weight > 0)
			score_max += s->rules.weight;
	}
	assert_string_equal(cfg->sources[1].zone_text, "b.barracudacentral.org");
	assert_string_equal(cfg->sources[2].zone_text, "bl.spamcop.net");
	assert_string_equal(cfg->sources[4].zone_text, "all.rbl.jp");
	assert_string_equal(cfg->sources[5].zone_text, "ips.backscatterer.org");
	assert_non_null(zen);
	assert_non_null(sorbs);
	assert_false(sorbs->enabled);     /* shut down in June 2024 */
	assert_non_null(dnswl);
	assert_true(dnswl->rules.weight < 0);
	for (size_t i = 0; i < dnswl->rules.ncodes; i++)
		assert_true(dnswl->rules.codes[i].weight < 0);
	/* 127.0.0.255 from dnswl means "refused", never a listing. */
	assert_true(dnswl->rules.nerrors >= 1);
	assert_int_equal(dnswl->rules.errors[0].lo, 0x7f0000ff);
	/* One strong Spamhaus listing alone reaches the threshold. */
	assert_int_equal(zen->rules.codes[0].range.lo, 0x7f000002);
	assert_true(zen->rules.codes[0].weight >= cfg->threshold);
	assert_true(score_max > cfg->threshold);
	config_free(cfg);
	free(e);
}

/* Mutated copies of a valid file never crash and give 0 or -EINVAL. */
static void test_mutations(void **state)
{
	size_t len = sizeof(full_file) - 1;
	char *text = malloc(len);
	uint32_t rnd = 12345;
	static const char alphabet[] = "[]=;#,.: \t\r\n\0az09-_/";

	assert_non_null(text);
	for (int round = 0; round < 2000; round++) {
		struct config *cfg = NULL;
		int rc;

		memcpy(text, full_file, len);
		for (int k = 0; k < 1 + round % 8; k++) {
			rnd = rnd * 1103515245u + 12345u;
			text[(rnd >> 8) % len] = alphabet[(rnd >> 20) % (sizeof(alphabet) - 1)];
		}
		rnd = rnd * 1103515245u + 12345u;
		rc = config_parse(text, len - (rnd >> 16) % 64, "fuzz", NULL, NULL, &cfg);
		assert_true(rc == 0 || rc == -EINVAL);
		assert_true((rc == 0) == (cfg != NULL));
		config_free(cfg);
	}
	free(text);
}

/* ----------------------------------------------------------------- RRL */

static void test_rrl_keys(void **state)
{
	struct config *cfg = parse_ok("");

	(void)state;
	assert_int_equal(cfg->rrl_rate, 100);
	assert_int_equal(cfg->rrl_slip, 2);
	assert_int_equal(cfg->nrrl_exempt, 2);
	assert_cidr(&cfg->rrl_exempt[0], "127.0.0.0/8");
	assert_cidr(&cfg->rrl_exempt[1], "::1/128");
	config_free(cfg);

	cfg = parse_ok("[server]\nrrl_rate = 0\nrrl_slip = 0\n"
		       "rrl_exempt = 192.0.2.0/24, 2001:db8::/32, 198.51.100.7\n");
	assert_int_equal(cfg->rrl_rate, 0);
	assert_int_equal(cfg->rrl_slip, 0);
	assert_int_equal(cfg->nrrl_exempt, 3);
	assert_cidr(&cfg->rrl_exempt[0], "192.0.2.0/24");
	assert_cidr(&cfg->rrl_exempt[1], "2001:db8::/32");
	assert_cidr(&cfg->rrl_exempt[2], "198.51.100.7/32");
	config_free(cfg);

	cfg = parse_ok("[server]\nrrl_rate = 1000000\nrrl_slip = 10\nrrl_exempt = none\n");
	assert_int_equal(cfg->rrl_rate, 1000000);
	assert_int_equal(cfg->rrl_slip, 10);
	assert_int_equal(cfg->nrrl_exempt, 0);
	config_free(cfg);

	cfg = parse_ok("[server]\nrrl_exempt =\n");
	assert_int_equal(cfg->nrrl_exempt, 0);
	config_free(cfg);

	expect_one_error("[server]\nrrl_rate = 1000001\n", 2, "rrl_rate");
	expect_one_error("[server]\nrrl_rate = -1\n", 2, "rrl_rate");
	expect_one_error("[server]\nrrl_rate = fast\n", 2, "rrl_rate");
	expect_one_error("[server]\nrrl_slip = 11\n", 2, "rrl_slip");
	expect_one_error("\n[server]\nrrl_exempt = 127.0.0.0/8, nowhere\n", 3, "nowhere");
	expect_one_error("[server]\nrrl_exempt = 127.0.0.0/8,\n", 2, "empty item");
	expect_one_error("[upstream]\nrrl_rate = 5\n", 2, "rrl_rate");
	expect_one_error("[server]\nrrl_rate = 5\nrrl_rate = 6\n", 3, "rrl_rate");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_units_in_keys),
		cmocka_unit_test(test_addr_port),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_cidr_match),
		cmocka_unit_test(test_servers),
		cmocka_unit_test(test_zone_names),
		cmocka_unit_test(test_error_kinds),
		cmocka_unit_test(test_errors_in_bad_sections),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_line_endings),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_source_rules),
		cmocka_unit_test(test_too_many_sources),
		cmocka_unit_test(test_redis_forms),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_shipped_config),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_rrl_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
