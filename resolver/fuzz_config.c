/*
 * fuzz_config: libFuzzer target for resolver/config, the INI parser.
 *
 * Feeds arbitrary text to config_parse. Checks: it either succeeds with no
 * error reported, or fails (-EINVAL) having reported at least one error, each
 * with a line number inside the text and a printable message; a parsed
 * configuration holds its bounds (listen, allow, sources, zone, TTLs). The
 * value parsers (durations, sizes, addresses, networks) get the first line
 * too.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/config.h"

#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,     \
				__LINE__, #cond);                                  \
			abort();                                                   \
		}                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct errors {
	unsigned n;
	int max_line;
};

static void on_error(void *arg, const char *file, int line, const char *msg)
{
	struct errors *e = arg;
	CHECK(file && strcmp(file, "fuzz.conf") == 0);
	CHECK(msg && msg[0]);
	CHECK(line >= 0 && line <= e->max_line);
	CHECK(strlen(msg) < 1024);
	e->n++;
}

static void check_config(const struct config *c)
{
	CHECK(c->nlisten >= 1 && c->nlisten <= CONFIG_MAX_LISTEN);
	CHECK(c->nallow >= 1 && c->nallow <= CONFIG_MAX_ACL);
	CHECK(c->zone_len > 1 && c->zone_len <= DNSWIRE_NAME_MAX);
	CHECK(strlen(c->zone_text) > 0 && strlen(c->zone_text) <= DNSWIRE_NAME_MAX);
	CHECK(c->udp_max_size >= DNSWIRE_UDP_MIN && c->udp_max_size <= 65535);
	CHECK(c->tcp_max >= 1);
	CHECK(c->min_ttl_s <= c->max_ttl_s);
	CHECK(c->timeout_ms >= 1 && c->deadline_ms >= 1);
	CHECK(c->nsources == 0 || c->sources != NULL);
	CHECK(c->servers.system || c->servers.n <= CONFIG_MAX_SERVERS);
	CHECK(memchr(c->user, '\0', sizeof c->user) != NULL);
	for (size_t i = 0; i < c->nallow; i++) {
		const struct config_cidr *a = &c->allow[i];
		CHECK(a->family == AF_INET || a->family == AF_INET6);
		CHECK(a->prefix <= (a->family == AF_INET ? 32 : 128));
	}
	for (size_t i = 0; i < c->nsources; i++) {
		const struct config_source *s = &c->sources[i];
		CHECK(s->name[0] != '\0' && memchr(s->name, '\0', sizeof s->name));
		CHECK(s->zone_len > 1 && s->zone_len <= DNSWIRE_NAME_MAX);
		CHECK(s->line >= 1);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(s->name, c->sources[j].name) != 0);
	}
}

/* The value parsers on one line of the text. */
static void check_values(const uint8_t *data, size_t size)
{
	char line[256];
	size_t n = 0;
	while (n < size && n < sizeof line - 1 && data[n] != '\n')
		n++;
	memcpy(line, data, n);
	line[n] = '\0';
	uint64_t v;
	if (config_parse_duration_ms(line, &v) == 0)
		CHECK(v <= UINT64_MAX);
	(void)config_parse_size(line, &v);
	struct config_addr addr;
	if (config_parse_addr_port(line, &addr) == 0)
		CHECK(addr.ss.ss_family == AF_INET || addr.ss.ss_family == AF_INET6);
	struct config_cidr cidr;
	if (config_parse_cidr(line, &cidr) == 0) {
		CHECK(cidr.prefix <= (cidr.family == AF_INET ? 32 : 128));
		/* The network contains its own (host-bits-cleared) address. */
		CHECK(config_cidr_match(&cidr, cidr.family, cidr.addr));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errors e = { 0, 1 };
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n')
			e.max_line++;
	struct config *cfg = (struct config *)(uintptr_t)1;
	int rc = config_parse((const char *)data, size, "fuzz.conf", on_error, &e, &cfg);
	if (rc == 0) {
		CHECK(cfg != NULL && e.n == 0);
		check_config(cfg);
		config_free(cfg);
	} else {
		CHECK(rc == -EINVAL && cfg == NULL && e.n > 0);
	}
	check_values(data, size);
	return 0;
}
