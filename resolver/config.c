/*
 * config: rblmuxd's INI file (syntax in config.h, keys in SPEC §3).
 *
 * Decisions the header leaves open:
 * - A comment starts at ';' or '#' at the start of a line or after a space or
 *   tab, so "a;b" is one value. There is no quoting: a value cannot contain
 *   " ;" or " #".
 * - A line holds at most CONFIG_LINE_MAX bytes, not counting its LF or CRLF.
 *   A UTF-8 byte order mark at the start of the file is skipped.
 * - Keys and section names are lowercase and matched exactly; keyword values
 *   (yes/no, auto, system, none, partial...) in any case. Source names are
 *   lowercased (DNS names match case-insensitively).
 * - A duplicate section, a section name that is not valid and a source past
 *   SCORE_MAX_SOURCES are errors, and the keys under them are still checked
 *   (into a scratch copy) so that one run shows every error. Keys under an
 *   unknown or malformed header are skipped: there is nothing to check them
 *   against.
 * - Two sources may name the same zone and type (e.g. to weigh a list twice
 *   under different names): allowed, no warning.
 * - A bare number is seconds for every duration key, so "timeout = 1500" is
 *   out of range rather than a 25-minute timeout.
 * - An `allow` CIDR with host bits set is masked ("10.1.2.3/8" is 10/8);
 *   an IPv4-mapped IPv6 CIDR or client is taken as the IPv4 one, as a
 *   dual-stack socket reports IPv4 clients that way.
 */
#include "resolver/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

/* Far above any sane configuration, small enough to read in one go. */
#define CONFIG_FILE_MAX (1024 * 1024)
/* Bounds the combined score well inside an int: 64 sources of 33 rules. */
#define CONFIG_WEIGHT_MAX 1000
#define CONFIG_THRESHOLD_MAX 100000
#define CONFIG_THREADS_MAX 64
#define CONFIG_MSG_MAX 512

#define MS_PER_S 1000ull
#define MS_PER_M (60 * MS_PER_S)
#define MS_PER_H (60 * MS_PER_M)
#define TTL_MAX_S (7 * 24 * 3600u)  /* a week; RFC 8767 suggests 1-3 days of stale */
#define SUN_PATH_MAX sizeof(((struct sockaddr_un){ 0 }).sun_path)

enum section_kind {
	SEC_NONE = 0,   /* before the first header: keys are errors */
	SEC_SKIP,       /* under an unknown or malformed header: keys ignored */
	SEC_SERVER,
	SEC_UPSTREAM,
	SEC_SCORING,
	SEC_CACHE,
	SEC_PTR,
	SEC_SPF,
	SEC_SOURCE,
	SEC_COUNT
};

static const char *const section_names[SEC_COUNT] = {
	[SEC_SERVER] = "server", [SEC_UPSTREAM] = "upstream",
	[SEC_SCORING] = "scoring", [SEC_CACHE] = "cache", [SEC_PTR] = "ptr",
	[SEC_SPF] = "spf", [SEC_SOURCE] = "source",
};

enum key_id {
	K_LISTEN, K_ZONE, K_THREADS, K_ALLOW, K_USER, K_METRICS, K_TCP_IDLE,
	K_TCP_MAX, K_UDP_MAX_SIZE, K_RRL_RATE, K_RRL_SLIP, K_RRL_EXEMPT,
	K_SERVERS, K_TIMEOUT, K_DEADLINE, K_PROBE_INTERVAL, K_MAX_INFLIGHT,
	K_THRESHOLD, K_ON_INCOMPLETE,
	K_REDIS, K_REDIS_PASSWORD, K_REDIS_DB, K_REDIS_TIMEOUT, K_KEY_PREFIX, K_MEMORY, K_MIN_TTL,
	K_MAX_TTL, K_ERROR_TTL, K_STALE_TTL,
	K_PTR_ENABLED, K_PTR_LEVEL, K_PTR_WEIGHT, K_PTR_WEIGHT_NO_PTR,
	K_PTR_WEIGHT_NO_FCRDNS,
	K_SPF_ENABLED, K_SPF_TTL,
	K_SRC_ZONE, K_SRC_TYPE, K_SRC_WEIGHT, K_SRC_CODES, K_SRC_ERRORS,
	K_SRC_TIMEOUT, K_SRC_SERVERS, K_SRC_ENABLED,
	K_COUNT
};

static const struct {
	enum section_kind sec;
	const char *name;
} key_defs[K_COUNT] = {
	[K_LISTEN] = { SEC_SERVER, "listen" },
	[K_ZONE] = { SEC_SERVER, "zone" },
	[K_THREADS] = { SEC_SERVER, "threads" },
	[K_ALLOW] = { SEC_SERVER, "allow" },
	[K_USER] = { SEC_SERVER, "user" },
	[K_METRICS] = { SEC_SERVER, "metrics" },
	[K_TCP_IDLE] = { SEC_SERVER, "tcp_idle" },
	[K_TCP_MAX] = { SEC_SERVER, "tcp_max" },
	[K_UDP_MAX_SIZE] = { SEC_SERVER, "udp_max_size" },
	[K_RRL_RATE] = { SEC_SERVER, "rrl_rate" },
	[K_RRL_SLIP] = { SEC_SERVER, "rrl_slip" },
	[K_RRL_EXEMPT] = { SEC_SERVER, "rrl_exempt" },
	[K_SERVERS] = { SEC_UPSTREAM, "servers" },
	[K_TIMEOUT] = { SEC_UPSTREAM, "timeout" },
	[K_DEADLINE] = { SEC_UPSTREAM, "deadline" },
	[K_PROBE_INTERVAL] = { SEC_UPSTREAM, "probe_interval" },
	[K_MAX_INFLIGHT] = { SEC_UPSTREAM, "max_inflight" },
	[K_THRESHOLD] = { SEC_SCORING, "threshold" },
	[K_ON_INCOMPLETE] = { SEC_SCORING, "on_incomplete" },
	[K_REDIS] = { SEC_CACHE, "redis" },
	[K_REDIS_PASSWORD] = { SEC_CACHE, "redis_password" },
	[K_REDIS_DB] = { SEC_CACHE, "redis_db" },
	[K_REDIS_TIMEOUT] = { SEC_CACHE, "redis_timeout" },
	[K_KEY_PREFIX] = { SEC_CACHE, "key_prefix" },
	[K_MEMORY] = { SEC_CACHE, "memory" },
	[K_MIN_TTL] = { SEC_CACHE, "min_ttl" },
	[K_MAX_TTL] = { SEC_CACHE, "max_ttl" },
	[K_ERROR_TTL] = { SEC_CACHE, "error_ttl" },
	[K_STALE_TTL] = { SEC_CACHE, "stale_ttl" },
	[K_PTR_ENABLED] = { SEC_PTR, "enabled" },
	[K_PTR_LEVEL] = { SEC_PTR, "level" },
	[K_PTR_WEIGHT] = { SEC_PTR, "weight" },
	[K_PTR_WEIGHT_NO_PTR] = { SEC_PTR, "weight_no_ptr" },
	[K_PTR_WEIGHT_NO_FCRDNS] = { SEC_PTR, "weight_no_fcrdns" },
	[K_SPF_ENABLED] = { SEC_SPF, "enabled" },
	[K_SPF_TTL] = { SEC_SPF, "ttl" },
	[K_SRC_ZONE] = { SEC_SOURCE, "zone" },
	[K_SRC_TYPE] = { SEC_SOURCE, "type" },
	[K_SRC_WEIGHT] = { SEC_SOURCE, "weight" },
	[K_SRC_CODES] = { SEC_SOURCE, "codes" },
	[K_SRC_ERRORS] = { SEC_SOURCE, "errors" },
	[K_SRC_TIMEOUT] = { SEC_SOURCE, "timeout" },
	[K_SRC_SERVERS] = { SEC_SOURCE, "servers" },
	[K_SRC_ENABLED] = { SEC_SOURCE, "enabled" },
};

/* The section being read. Values go to cfg (fixed sections) or src
 * (sources): the real ones, or scratch copies when the section is in error. */
struct section {
	enum section_kind kind;
	int line;
	char title[96];            /* "[server]", "[source spamcop]" */
	struct config *cfg;
	struct config_source *src;
	int key_line[K_COUNT];     /* where each key was set; 0: not set */
};

struct parser {
	const char *name;
	config_error_fn err;
	void *err_arg;
	unsigned nerrors;
	struct config *cfg;
	struct config *scratch_cfg;
	struct config_source scratch_src;
	size_t sources_cap;
	int section_line[SEC_COUNT];   /* first header of each fixed section */
	struct section sec;
};

__attribute__((format(printf, 3, 4)))
static void report(struct parser *p, int line, const char *fmt, ...)
{
	char msg[CONFIG_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->nerrors++;
	if (p->err != NULL)
		p->err(p->err_arg, p->name, line, msg);
}

/* ------------------------------------------------------------ text helpers */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static char *trim(char *s)
{
	char *end;

	while (is_blank(*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_blank(end[-1]))
		end--;
	*end = '\0';
	return s;
}

static void lowercase(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

/*
 * The next comma-separated item at *cursor, trimmed (possibly empty), or
 * NULL after the last one. An empty value has no items.
 */
static char *list_next(char **cursor)
{
	char *start = *cursor, *comma;

	if (start == NULL)
		return NULL;
	comma = strchr(start, ',');
	if (comma != NULL) {
		*comma = '\0';
		*cursor = comma + 1;
	} else {
		*cursor = NULL;
	}
	return trim(start);
}

static char *list_begin(char *value)
{
	return *value == '\0' ? NULL : value;
}

/* Decimal digits at s: the count read (0: none), -ERANGE past UINT64_MAX. */
static int read_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	while (s[n] >= '0' && s[n] <= '9') {
		unsigned d = (unsigned)(s[n] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
		n++;
	}
	*out = v;
	return n;
}

/* A whole string of decimal digits, optionally signed, in [lo, hi]. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
	bool neg = false;
	uint64_t v;
	int n;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	n = read_u64(s, &v);
	if (n < 0)
		return -ERANGE;
	if (n == 0 || s[n] != '\0')
		return -EINVAL;
	if (v > (uint64_t)LONG_MAX)
		return -ERANGE;
	*out = neg ? -(long)v : (long)v;
	if (*out < lo || *out > hi)
		return -ERANGE;
	return 0;
}

/* "1h", "90s", "1500ms": the largest unit that divides ms. */
static const char *fmt_duration(uint64_t ms, char *buf, size_t cap)
{
	if (ms != 0 && ms % MS_PER_H == 0)
		snprintf(buf, cap, "%lluh", (unsigned long long)(ms / MS_PER_H));
	else if (ms != 0 && ms % MS_PER_M == 0)
		snprintf(buf, cap, "%llum", (unsigned long long)(ms / MS_PER_M));
	else if (ms % MS_PER_S == 0)
		snprintf(buf, cap, "%llus", (unsigned long long)(ms / MS_PER_S));
	else
		snprintf(buf, cap, "%llums", (unsigned long long)ms);
	return buf;
}

/* "127.0.0.2" or "127.0.0.4-127.0.0.7". */
static const char *fmt_range(const struct score_range *r, char *buf, size_t cap)
{
	uint32_t a = r->lo, b = r->hi;

	if (a == b)
		snprintf(buf, cap, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff,
			 (a >> 8) & 0xff, a & 0xff);
	else
		snprintf(buf, cap, "%u.%u.%u.%u-%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff,
			 (a >> 8) & 0xff, a & 0xff, b >> 24, (b >> 16) & 0xff,
			 (b >> 8) & 0xff, b & 0xff);
	return buf;
}

/* --------------------------------------------------------- public parsers */

int config_parse_duration_ms(const char *text, uint64_t *ms)
{
	uint64_t n, mult;
	const char *unit;
	int digits;

	if (text == NULL || ms == NULL)
		return -EINVAL;
	digits = read_u64(text, &n);
	if (digits <= 0)
		return -EINVAL;
	unit = text + digits;
	if (*unit == '\0' || strcmp(unit, "s") == 0)
		mult = MS_PER_S;
	else if (strcmp(unit, "ms") == 0)
		mult = 1;
	else if (strcmp(unit, "m") == 0)
		mult = MS_PER_M;
	else if (strcmp(unit, "h") == 0)
		mult = MS_PER_H;
	else
		return -EINVAL;
	if (n > UINT64_MAX / mult)
		return -EINVAL;
	*ms = n * mult;
	return 0;
}

int config_parse_size(const char *text, uint64_t *bytes)
{
	uint64_t n, mult;
	const char *unit;
	int digits;

	if (text == NULL || bytes == NULL)
		return -EINVAL;
	digits = read_u64(text, &n);
	if (digits <= 0)
		return -EINVAL;
	unit = text + digits;
	if (*unit == '\0')
		mult = 1;
	else if (strcmp(unit, "k") == 0 || strcmp(unit, "K") == 0)
		mult = 1024;
	else if (strcmp(unit, "M") == 0)
		mult = 1024 * 1024;
	else if (strcmp(unit, "G") == 0)
		mult = 1024 * 1024 * 1024;
	else
		return -EINVAL;
	if (n > UINT64_MAX / mult)
		return -EINVAL;
	*bytes = n * mult;
	return 0;
}

/* A port: decimal, 1..65535. */
static int parse_port(const char *s, uint16_t *out)
{
	long v;

	if (*s == '+' || *s == '-' || parse_long(s, 1, 65535, &v) != 0)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/*
 * "1.2.3.4", "1.2.3.4:53", "[::1]:53", and (port not required) bare "::1".
 * Only numeric addresses: inet_pton, so "127.1" and scope ids are refused.
 */
static int parse_ip_port(const char *text, bool port_required,
			 uint16_t default_port, struct config_addr *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *port_text = NULL;
	size_t host_len;
	uint16_t port = default_port;
	int family;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL)
			return -EINVAL;
		host_len = (size_t)(close - text - 1);
		if (host_len == 0 || host_len >= sizeof(host))
			return -EINVAL;
		memcpy(host, text + 1, host_len);
		if (close[1] == ':')
			port_text = close + 2;
		else if (close[1] != '\0')
			return -EINVAL;
		family = AF_INET6;
	} else {
		const char *colon = strchr(text, ':');

		if (colon != NULL && strchr(colon + 1, ':') != NULL) {
			/* Unbracketed IPv6: no room for a port. */
			host_len = strlen(text);
			family = AF_INET6;
		} else {
			host_len = colon != NULL ? (size_t)(colon - text) : strlen(text);
			if (colon != NULL)
				port_text = colon + 1;
			family = AF_INET;
		}
		if (host_len == 0 || host_len >= sizeof(host))
			return -EINVAL;
		memcpy(host, text, host_len);
	}
	host[host_len] = '\0';
	if (port_text == NULL && port_required)
		return -EINVAL;
	if (port_text != NULL && parse_port(port_text, &port) != 0)
		return -EINVAL;

	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		out->len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		out->len = sizeof(*sin6);
	}
	return 0;
}

int config_parse_addr_port(const char *text, struct config_addr *out)
{
	if (text == NULL || out == NULL)
		return -EINVAL;
	return parse_ip_port(text, true, 0, out);
}

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int config_parse_cidr(const char *text, struct config_cidr *out)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash;
	size_t addr_len;
	unsigned max_prefix;
	uint64_t prefix;

	if (text == NULL || out == NULL)
		return -EINVAL;
	slash = strchr(text, '/');
	addr_len = slash != NULL ? (size_t)(slash - text) : strlen(text);
	if (addr_len == 0 || addr_len >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, text, addr_len);
	addr[addr_len] = '\0';

	memset(out, 0, sizeof(*out));
	out->family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(out->family, addr, out->addr) != 1)
		return -EINVAL;
	max_prefix = out->family == AF_INET ? 32 : 128;
	prefix = max_prefix;
	if (slash != NULL) {
		int n = read_u64(slash + 1, &prefix);

		if (n <= 0 || slash[1 + n] != '\0' || prefix > max_prefix)
			return -EINVAL;
	}
	out->prefix = (uint8_t)prefix;

	for (unsigned bit = out->prefix; bit < max_prefix; bit++)
		out->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));

	if (out->family == AF_INET6 && out->prefix >= 96 &&
	    memcmp(out->addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		memmove(out->addr, out->addr + 12, 4);
		memset(out->addr + 4, 0, 12);
		out->family = AF_INET;
		out->prefix = (uint8_t)(out->prefix - 96);
	}
	return 0;
}

bool config_cidr_match(const struct config_cidr *c, int family, const uint8_t *addr)
{
	unsigned full, rest;

	if (c == NULL || addr == NULL)
		return false;
	if (family == AF_INET6 && memcmp(addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		addr += 12;
		family = AF_INET;
	}
	if (family != c->family)
		return false;
	full = c->prefix / 8;
	rest = c->prefix % 8;
	if (memcmp(addr, c->addr, full) != 0)
		return false;
	if (rest != 0) {
		uint8_t mask = (uint8_t)(0xff00u >> rest);

		if ((addr[full] & mask) != (c->addr[full] & mask))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------- defaults */

static const char default_zone[] = "rblmux.internal";

static int set_zone(const char *text, char *text_out, uint8_t *wire, size_t *wire_len)
{
	int n = dnswire_name_from_text(text, wire, DNSWIRE_NAME_MAX);

	if (n <= 1) /* the root alone is no zone */
		return -EINVAL;
	dnswire_name_lower(wire, (size_t)n);
	*wire_len = (size_t)n;
	snprintf(text_out, DNSWIRE_NAME_MAX + 1, "%s", text);
	return 0;
}

static int config_defaults(struct config *c)
{
	static const char *const listen[] = { "127.0.0.1:5353", "[::1]:5353" };
	static const char *const allow[] = { "127.0.0.0/8", "::1/128" };
	/* The MTA on the same host: it cannot be spoofed from outside. */
	static const char *const rrl_exempt[] = { "127.0.0.0/8", "::1/128" };
	int rc;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < sizeof(listen) / sizeof(listen[0]); i++) {
		rc = config_parse_addr_port(listen[i], &c->listen[c->nlisten++]);
		if (rc < 0)
			return rc;
	}
	rc = set_zone(default_zone, c->zone_text, c->zone, &c->zone_len);
	if (rc < 0)
		return rc;
	c->threads = 0;
	for (size_t i = 0; i < sizeof(allow) / sizeof(allow[0]); i++) {
		rc = config_parse_cidr(allow[i], &c->allow[c->nallow++]);
		if (rc < 0)
			return rc;
	}
	c->tcp_idle_ms = 10 * MS_PER_S;
	c->tcp_max = 256;
	c->udp_max_size = 1232;
	c->rrl_rate = 100;
	c->rrl_slip = 2;
	for (size_t i = 0; i < sizeof(rrl_exempt) / sizeof(rrl_exempt[0]); i++) {
		rc = config_parse_cidr(rrl_exempt[i], &c->rrl_exempt[c->nrrl_exempt++]);
		if (rc < 0)
			return rc;
	}

	c->servers.system = true;
	c->timeout_ms = 1500;
	c->deadline_ms = 2 * MS_PER_S;
	c->probe_interval_ms = 60 * MS_PER_S;
	c->max_inflight = 100;

	c->threshold = 5;
	c->on_incomplete = SCORE_INCOMPLETE_PARTIAL;

	snprintf(c->key_prefix, sizeof(c->key_prefix), "rblmux:");
	c->redis_timeout_ms = 5;
	c->memory_bytes = 256ull * 1024 * 1024;
	c->min_ttl_s = 60;
	c->max_ttl_s = 3600;
	c->error_ttl_s = 30;
	c->stale_ttl_s = 3600;

	c->ptr.enabled = true;
	c->ptr.level = 1;
	c->ptr.weight = 2;
	c->ptr.weight_no_ptr = 1;
	c->ptr.weight_no_fcrdns = 1;

	c->spf.enabled = true;
	c->spf.ttl_s = 300;
	return 0;
}

static void source_defaults(struct config_source *s, const char *name, int line)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->type = QSRC_IP;
	s->rules.weight = 1;
	s->enabled = true;
	s->line = line;
}

/* --------------------------------------------------------- value setters */

/* Each reports its own error (with the key's line) and returns false. */

static bool get_bool(struct parser *p, int line, const char *key, const char *v,
		     bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	report(p, line, "%s: \"%.80s\" is not a boolean (use yes or no)", key, v);
	return false;
}

/* One of words (NULL-terminated), in any case; *out is its index. */
static bool get_keyword(struct parser *p, int line, const char *key, const char *v,
			const char *const *words, int *out)
{
	char choices[160] = "";
	size_t used = 0;

	for (int i = 0; words[i] != NULL; i++) {
		if (strcasecmp(v, words[i]) == 0) {
			*out = i;
			return true;
		}
		used += (size_t)snprintf(choices + used, sizeof(choices) - used, "%s%s",
					 i == 0 ? "" : words[i + 1] == NULL ? " or " : ", ",
					 words[i]);
		if (used >= sizeof(choices))
			break;
	}
	report(p, line, "%s: \"%.80s\" is not one of %s", key, v, choices);
	return false;
}

static bool get_long(struct parser *p, int line, const char *key, const char *v,
		     long lo, long hi, long *out)
{
	int rc = parse_long(v, lo, hi, out);

	if (rc == -EINVAL)
		report(p, line, "%s: \"%.80s\" is not an integer", key, v);
	else if (rc < 0)
		report(p, line, "%s: %.80s is out of range (%ld..%ld)", key, v, lo, hi);
	return rc == 0;
}

static bool get_int(struct parser *p, int line, const char *key, const char *v,
		    int lo, int hi, int *out)
{
	long n;

	if (!get_long(p, line, key, v, lo, hi, &n))
		return false;
	*out = (int)n;
	return true;
}

static bool get_u32(struct parser *p, int line, const char *key, const char *v,
		    uint32_t lo, uint32_t hi, uint32_t *out)
{
	long n;

	if (!get_long(p, line, key, v, (long)lo, (long)hi, &n))
		return false;
	*out = (uint32_t)n;
	return true;
}

static bool get_duration(struct parser *p, int line, const char *key, const char *v,
			 uint64_t lo_ms, uint64_t hi_ms, uint32_t *out_ms)
{
	char lo[24], hi[24];
	uint64_t ms;

	if (config_parse_duration_ms(v, &ms) != 0) {
		report(p, line, "%s: \"%.80s\" is not a duration (a number with ms, s, m or h; "
		       "a bare number is seconds)", key, v);
		return false;
	}
	if (ms < lo_ms || ms > hi_ms) {
		report(p, line, "%s: %.80s is out of range (%s..%s)", key, v,
		       fmt_duration(lo_ms, lo, sizeof(lo)), fmt_duration(hi_ms, hi, sizeof(hi)));
		return false;
	}
	*out_ms = (uint32_t)ms;
	return true;
}

/* A TTL: a duration in whole seconds, 0..TTL_MAX_S. */
static bool get_ttl(struct parser *p, int line, const char *key, const char *v,
		    uint32_t *out_s)
{
	uint32_t ms;

	/* Checked in ms first: the largest TTL in ms still fits 32 bits. */
	if (!get_duration(p, line, key, v, 0, TTL_MAX_S * MS_PER_S, &ms))
		return false;
	if (ms % MS_PER_S != 0) {
		report(p, line, "%s: %.80s is not a whole number of seconds", key, v);
		return false;
	}
	*out_s = (uint32_t)(ms / MS_PER_S);
	return true;
}

static bool addr_in(const struct config_addr *list, size_t n, const struct config_addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].len == a->len && memcmp(&list[i].ss, &a->ss, a->len) == 0)
			return true;
	return false;
}

static void set_listen(struct parser *p, int line, char *v, struct config *c)
{
	struct config_addr addrs[CONFIG_MAX_LISTEN];
	char *cur = list_begin(v), *item;
	size_t n = 0;
	bool ok = true;

	while ((item = list_next(&cur)) != NULL) {
		if (*item == '\0') {
			report(p, line, "listen: empty item in the list");
			ok = false;
			continue;
		}
		if (n == CONFIG_MAX_LISTEN) {
			report(p, line, "listen: more than %d addresses", CONFIG_MAX_LISTEN);
			ok = false;
			break;
		}
		if (config_parse_addr_port(item, &addrs[n]) != 0) {
			report(p, line, "listen: \"%.80s\" is not an address with a port "
			       "(127.0.0.1:5353, [::1]:5353)", item);
			ok = false;
			continue;
		}
		if (addr_in(addrs, n, &addrs[n])) {
			report(p, line, "listen: %.80s is given twice", item);
			ok = false;
			continue;
		}
		n++;
	}
	if (ok && n == 0) {
		report(p, line, "listen: at least one address is needed");
		ok = false;
	}
	if (ok) {
		memcpy(c->listen, addrs, n * sizeof(addrs[0]));
		c->nlisten = n;
	}
}

static void set_allow(struct parser *p, int line, char *v, struct config *c)
{
	struct config_cidr cidrs[CONFIG_MAX_ACL];
	char *cur = list_begin(v), *item;
	size_t n = 0;
	bool ok = true;

	while ((item = list_next(&cur)) != NULL) {
		if (*item == '\0') {
			report(p, line, "allow: empty item in the list");
			ok = false;
			continue;
		}
		if (n == CONFIG_MAX_ACL) {
			report(p, line, "allow: more than %d networks", CONFIG_MAX_ACL);
			ok = false;
			break;
		}
		if (config_parse_cidr(item, &cidrs[n]) != 0) {
			report(p, line, "allow: \"%.80s\" is not an address or network "
			       "(127.0.0.0/8, ::1/128)", item);
			ok = false;
			continue;
		}
		n++;
	}
	if (ok && n == 0) {
		/* Nobody could ask: surely not what was meant. */
		report(p, line, "allow: at least one network is needed (127.0.0.0/8 for local use)");
		ok = false;
	}
	if (ok) {
		memcpy(c->allow, cidrs, n * sizeof(cidrs[0]));
		c->nallow = n;
	}
}

/* Networks never rate limited (resolver/rrl.h); "none" or empty: none. */
static void set_rrl_exempt(struct parser *p, int line, char *v, struct config *c)
{
	struct config_cidr cidrs[CONFIG_MAX_ACL];
	char *cur, *item;
	size_t n = 0;
	bool ok = true;

	if (strcasecmp(v, "none") == 0) {
		c->nrrl_exempt = 0;
		return;
	}
	cur = list_begin(v);
	while ((item = list_next(&cur)) != NULL) {
		if (*item == '\0') {
			report(p, line, "rrl_exempt: empty item in the list (none for no exemption)");
			ok = false;
			continue;
		}
		if (n == CONFIG_MAX_ACL) {
			report(p, line, "rrl_exempt: more than %d networks", CONFIG_MAX_ACL);
			ok = false;
			break;
		}
		if (config_parse_cidr(item, &cidrs[n]) != 0) {
			report(p, line, "rrl_exempt: \"%.80s\" is not an address or network "
			       "(127.0.0.0/8, ::1/128) or none", item);
			ok = false;
			continue;
		}
		n++;
	}
	if (ok) {
		memcpy(c->rrl_exempt, cidrs, n * sizeof(cidrs[0]));
		c->nrrl_exempt = n;
	}
}

/* Append one address to a c-ares CSV server list ("127.0.0.1:53,[::1]:53"). */
static int servers_append(struct config_servers *s, const struct config_addr *a)
{
	char host[INET6_ADDRSTRLEN];
	size_t used = strlen(s->csv);
	int n;

	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		n = snprintf(s->csv + used, sizeof(s->csv) - used, "%s%s:%u",
			     used ? "," : "", host, ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		n = snprintf(s->csv + used, sizeof(s->csv) - used, "%s[%s]:%u",
			     used ? "," : "", host, ntohs(sin6->sin6_port));
	}
	if (n < 0 || (size_t)n >= sizeof(s->csv) - used)
		return -ENOSPC;
	s->n++;
	return 0;
}

/*
 * "system", a list of addresses (port 53 unless given), or empty: the
 * system resolvers, or in a source (empty_inherits) what [upstream] asks.
 */
static void set_servers(struct parser *p, int line, char *v, bool empty_inherits,
			struct config_servers *out)
{
	struct config_servers s = { 0 };
	struct config_addr addrs[CONFIG_MAX_SERVERS];
	char *cur, *item;
	bool ok = true;

	if (strcasecmp(v, "system") == 0 || (*v == '\0' && !empty_inherits)) {
		s.system = true;
		*out = s;
		return;
	}
	cur = list_begin(v);
	while ((item = list_next(&cur)) != NULL) {
		if (*item == '\0') {
			report(p, line, "servers: empty item in the list");
			ok = false;
			continue;
		}
		if (s.n == CONFIG_MAX_SERVERS) {
			report(p, line, "servers: more than %d servers", CONFIG_MAX_SERVERS);
			ok = false;
			break;
		}
		if (parse_ip_port(item, false, 53, &addrs[s.n]) != 0) {
			report(p, line, "servers: \"%.80s\" is not \"system\" or an address "
			       "(127.0.0.1, 127.0.0.1:5301, [::1]:53)", item);
			ok = false;
			continue;
		}
		if (addr_in(addrs, s.n, &addrs[s.n])) {
			report(p, line, "servers: %.80s is given twice", item);
			ok = false;
			continue;
		}
		if (servers_append(&s, &addrs[s.n]) != 0) {
			report(p, line, "servers: the list is too long");
			ok = false;
			break;
		}
	}
	if (ok)
		*out = s;
}

/* Letters, digits, '-' and '_'; labels 1-63 bytes, not starting or ending
 * with '-'; one trailing dot allowed. Lowercases text in place. */
static const char *zone_problem(char *text)
{
	size_t n = strlen(text), label = 0;

	if (n > 0 && text[n - 1] == '.')
		text[--n] = '\0';
	if (n == 0)
		return "empty";
	if (n > DNSWIRE_NAME_MAX - 2)
		return "longer than 253 characters";
	lowercase(text);
	for (size_t i = 0; i <= n; i++) {
		char c = text[i];

		if (c == '.' || c == '\0') {
			if (label == 0)
				return "has an empty label";
			if (label > 63)
				return "has a label longer than 63 characters";
			if (text[i - 1] == '-' || text[i - label] == '-')
				return "has a label starting or ending with '-'";
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return "may hold only letters, digits, '-', '_' and dots";
		label++;
	}
	return NULL;
}

static void set_zone_key(struct parser *p, int line, char *v, char *text_out,
			 uint8_t *wire, size_t *wire_len)
{
	char shown[96];
	const char *why;

	snprintf(shown, sizeof(shown), "%.80s", v);
	why = zone_problem(v);
	if (why == NULL && set_zone(v, text_out, wire, wire_len) != 0)
		why = "is not a domain name";
	if (why != NULL)
		report(p, line, "zone: \"%s\" %s", shown, why);
}

/* Printable ASCII without blanks (no ambiguity in logs or Redis keys). */
static bool is_token(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* A host name (LDH labels) or a numeric IPv4 address. */
static bool valid_host(const char *host, size_t len)
{
	char buf[256];
	struct in_addr a;
	bool numeric = true;

	if (len == 0 || len >= sizeof(buf))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)host[i]) && host[i] != '-' && host[i] != '.')
			return false;
		if (!isdigit((unsigned char)host[i]) && host[i] != '.')
			numeric = false;
	}
	memcpy(buf, host, len);
	buf[len] = '\0';
	return !numeric || inet_pton(AF_INET, buf, &a) == 1;
}

/* "none" or empty (no Redis), "host:port", "[v6]:port" or "unix:/path";
 * kept as written for the Redis tier. */
static void set_redis(struct parser *p, int line, const char *v, struct config *c)
{
	if (*v == '\0' || strcasecmp(v, "none") == 0) {
		c->redis[0] = '\0';
		return;
	}
	if (strncmp(v, "unix:", 5) == 0) {
		const char *path = v + 5;

		if (path[0] != '/' || strlen(path) >= SUN_PATH_MAX) {
			report(p, line, "redis: \"%.80s\" needs an absolute socket path "
			       "shorter than %zu bytes", v, SUN_PATH_MAX);
			return;
		}
		if (!is_token(path)) {
			report(p, line, "redis: \"%.80s\": blanks or control characters "
			       "in the socket path", v);
			return;
		}
	} else {
		struct config_addr a;
		const char *colon = strrchr(v, ':');
		uint16_t port;
		bool ok;

		if (v[0] == '[')
			ok = parse_ip_port(v, true, 0, &a) == 0;
		else
			ok = colon != NULL && strchr(v, ':') == colon &&
			     valid_host(v, (size_t)(colon - v)) && parse_port(colon + 1, &port) == 0;
		if (!ok) {
			report(p, line, "redis: \"%.80s\" is not none, host:port "
			       "(127.0.0.1:6379) or unix:/path", v);
			return;
		}
	}
	if (strlen(v) >= sizeof(c->redis)) {
		report(p, line, "redis: longer than %zu characters", sizeof(c->redis) - 1);
		return;
	}
	snprintf(c->redis, sizeof(c->redis), "%s", v);
}


static void set_string(struct parser *p, int line, const char *key, const char *v,
		       char *out, size_t cap, bool token)
{
	if (strlen(v) >= cap) {
		report(p, line, "%s: longer than %zu characters", key, cap - 1);
		return;
	}
	if (token && !is_token(v)) {
		report(p, line, "%s: \"%.80s\" may hold only printable characters "
		       "without blanks", key, v);
		return;
	}
	for (const char *s = v; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f) {
			report(p, line, "%s: control characters are not allowed", key);
			return;
		}
	}
	snprintf(out, cap, "%s", v);
}

static void set_user(struct parser *p, int line, const char *v, struct config *c)
{
	for (const char *s = v; *s; s++) {
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') {
			report(p, line, "user: \"%.80s\" is not a user name", v);
			return;
		}
	}
	if (v[0] == '-') {
		report(p, line, "user: \"%.80s\" is not a user name", v);
		return;
	}
	set_string(p, line, "user", v, c->user, sizeof(c->user), true);
}

static void set_metrics(struct parser *p, int line, const char *v, struct config *c)
{
	struct config_addr a;

	if (*v == '\0') {
		memset(&c->metrics, 0, sizeof(c->metrics));
		return;
	}
	if (config_parse_addr_port(v, &a) != 0) {
		report(p, line, "metrics: \"%.80s\" is not an address with a port "
		       "(127.0.0.1:9353), or empty for none", v);
		return;
	}
	c->metrics = a;
}

static bool range_in_127(const struct score_range *r)
{
	return r->lo >= 0x7f000000u && r->hi <= 0x7fffffffu && r->lo <= r->hi;
}

static void set_codes(struct parser *p, int line, char *v, struct score_rules *r)
{
	char *cur = list_begin(v), *item;
	char shown[40];

	r->ncodes = 0;
	while ((item = list_next(&cur)) != NULL) {
		struct score_code_rule rule;

		if (*item == '\0') {
			report(p, line, "codes: empty item in the list");
			continue;
		}
		if (r->ncodes == SCORE_MAX_RULES) {
			report(p, line, "codes: more than %d rules", SCORE_MAX_RULES);
			break;
		}
		if (score_parse_code_rule(item, &rule) != 0) {
			report(p, line, "codes: \"%.80s\" is not a code rule "
			       "(127.0.0.2=3, 127.0.0.[4..7]=2, 127.0.0.0/24=1)", item);
			continue;
		}
		if (rule.weight < -CONFIG_WEIGHT_MAX || rule.weight > CONFIG_WEIGHT_MAX) {
			report(p, line, "codes: \"%.80s\": the weight is out of range (%d..%d)",
			       item, -CONFIG_WEIGHT_MAX, CONFIG_WEIGHT_MAX);
			continue;
		}
		if (!range_in_127(&rule.range)) {
			report(p, line, "codes: %s is outside 127.0.0.0/8: such answers are "
			       "errors, never listings",
			       fmt_range(&rule.range, shown, sizeof(shown)));
			continue;
		}
		r->codes[r->ncodes++] = rule;
	}
}

static void set_errors(struct parser *p, int line, char *v, struct score_rules *r)
{
	char *cur = list_begin(v), *item;

	r->nerrors = 0;
	while ((item = list_next(&cur)) != NULL) {
		struct score_range range;

		if (*item == '\0') {
			report(p, line, "errors: empty item in the list");
			continue;
		}
		if (r->nerrors == SCORE_MAX_ERRORS) {
			report(p, line, "errors: more than %d ranges", SCORE_MAX_ERRORS);
			break;
		}
		if (score_parse_range(item, &range) != 0 || range.lo > range.hi) {
			report(p, line, "errors: \"%.80s\" is not an address or range "
			       "(127.255.255.254, 127.0.0.[250..255], 127.255.255.0/24)", item);
			continue;
		}
		r->errors[r->nerrors++] = range;
	}
}

static const char *const level_words[] = { "conservative", "moderate", "aggressive", NULL };
static const char *const incomplete_words[] = { "partial", "servfail", NULL };
static const char *const type_words[] = {
	[QSRC_IP] = "ip", [QSRC_IP4] = "ip4", [QSRC_IP6] = "ip6", [QSRC_DOMAIN] = "domain", NULL
};

static void set_key(struct parser *p, enum key_id k, char *v, int line)
{
	struct config *c = p->sec.cfg;
	struct config_source *s = p->sec.src;
	const char *key = key_defs[k].name;
	uint64_t bytes;
	long n;
	int i;

	switch (k) {
	case K_LISTEN:
		set_listen(p, line, v, c);
		break;
	case K_ZONE:
		set_zone_key(p, line, v, c->zone_text, c->zone, &c->zone_len);
		break;
	case K_THREADS:
		if (strcasecmp(v, "auto") == 0)
			c->threads = 0;
		else if (parse_long(v, 1, CONFIG_THREADS_MAX, &n) == 0)
			c->threads = (unsigned)n;
		else
			report(p, line, "threads: \"%.80s\" is not auto or 1..%d", v,
			       CONFIG_THREADS_MAX);
		break;
	case K_ALLOW:
		set_allow(p, line, v, c);
		break;
	case K_USER:
		set_user(p, line, v, c);
		break;
	case K_METRICS:
		set_metrics(p, line, v, c);
		break;
	case K_TCP_IDLE:
		get_duration(p, line, key, v, 1, MS_PER_H, &c->tcp_idle_ms);
		break;
	case K_TCP_MAX:
		get_u32(p, line, key, v, 1, 65535, &c->tcp_max);
		break;
	case K_UDP_MAX_SIZE:
		/* RFC 6891 §6.2.5: below 512 means 512. */
		get_u32(p, line, key, v, DNSWIRE_UDP_MIN, 65535, &c->udp_max_size);
		break;
	case K_RRL_RATE:
		get_u32(p, line, key, v, 0, 1000000, &c->rrl_rate);
		break;
	case K_RRL_SLIP:
		get_u32(p, line, key, v, 0, 10, &c->rrl_slip);
		break;
	case K_RRL_EXEMPT:
		set_rrl_exempt(p, line, v, c);
		break;
	case K_SERVERS:
		set_servers(p, line, v, false, &c->servers);
		break;
	case K_TIMEOUT:
		get_duration(p, line, key, v, 1, 60 * MS_PER_S, &c->timeout_ms);
		break;
	case K_DEADLINE:
		get_duration(p, line, key, v, 1, 60 * MS_PER_S, &c->deadline_ms);
		break;
	case K_PROBE_INTERVAL:
		get_duration(p, line, key, v, MS_PER_S, 24 * MS_PER_H, &c->probe_interval_ms);
		break;
	case K_MAX_INFLIGHT:
		get_u32(p, line, key, v, 1, 65535, &c->max_inflight);
		break;
	case K_THRESHOLD:
		get_int(p, line, key, v, 1, CONFIG_THRESHOLD_MAX, &c->threshold);
		break;
	case K_ON_INCOMPLETE:
		if (get_keyword(p, line, key, v, incomplete_words, &i))
			c->on_incomplete = i == 0 ? SCORE_INCOMPLETE_PARTIAL : SCORE_INCOMPLETE_SERVFAIL;
		break;
	case K_REDIS:
		set_redis(p, line, v, c);
		break;
	case K_REDIS_PASSWORD:
		set_string(p, line, key, v, c->redis_password, sizeof(c->redis_password), false);
		break;
	case K_REDIS_DB:
		get_int(p, line, key, v, 0, 1000000, &c->redis_db);
		break;
	case K_REDIS_TIMEOUT:
		get_duration(p, line, key, v, 1, 10 * MS_PER_S, &c->redis_timeout_ms);
		break;
	case K_KEY_PREFIX:
		set_string(p, line, key, v, c->key_prefix, sizeof(c->key_prefix), true);
		break;
	case K_MEMORY:
		if (config_parse_size(v, &bytes) != 0)
			report(p, line, "memory: \"%.80s\" is not a size (a number with k, M or G)", v);
		else if (bytes < 1024 * 1024 || bytes > (uint64_t)SIZE_MAX / 2)
			report(p, line, "memory: %.80s is out of range (at least 1M)", v);
		else
			c->memory_bytes = bytes;
		break;
	case K_MIN_TTL:
		get_ttl(p, line, key, v, &c->min_ttl_s);
		break;
	case K_MAX_TTL:
		get_ttl(p, line, key, v, &c->max_ttl_s);
		break;
	case K_ERROR_TTL:
		get_ttl(p, line, key, v, &c->error_ttl_s);
		break;
	case K_STALE_TTL:
		get_ttl(p, line, key, v, &c->stale_ttl_s);
		break;
	case K_PTR_ENABLED:
		get_bool(p, line, key, v, &c->ptr.enabled);
		break;
	case K_PTR_LEVEL:
		if (get_keyword(p, line, key, v, level_words, &i))
			c->ptr.level = i;
		break;
	case K_PTR_WEIGHT:
		get_int(p, line, key, v, -CONFIG_WEIGHT_MAX, CONFIG_WEIGHT_MAX, &c->ptr.weight);
		break;
	case K_PTR_WEIGHT_NO_PTR:
		get_int(p, line, key, v, -CONFIG_WEIGHT_MAX, CONFIG_WEIGHT_MAX,
			&c->ptr.weight_no_ptr);
		break;
	case K_PTR_WEIGHT_NO_FCRDNS:
		get_int(p, line, key, v, -CONFIG_WEIGHT_MAX, CONFIG_WEIGHT_MAX,
			&c->ptr.weight_no_fcrdns);
		break;
	case K_SPF_ENABLED:
		get_bool(p, line, key, v, &c->spf.enabled);
		break;
	case K_SPF_TTL:
		get_ttl(p, line, key, v, &c->spf.ttl_s);
		break;
	case K_SRC_ZONE:
		set_zone_key(p, line, v, s->zone_text, s->zone, &s->zone_len);
		break;
	case K_SRC_TYPE:
		if (get_keyword(p, line, key, v, type_words, &i))
			s->type = (enum qname_src_type)i;
		break;
	case K_SRC_WEIGHT:
		get_int(p, line, key, v, -CONFIG_WEIGHT_MAX, CONFIG_WEIGHT_MAX, &s->rules.weight);
		break;
	case K_SRC_CODES:
		set_codes(p, line, v, &s->rules);
		break;
	case K_SRC_ERRORS:
		set_errors(p, line, v, &s->rules);
		break;
	case K_SRC_TIMEOUT:
		/* Empty or 0: the [upstream] timeout. */
		if (*v == '\0')
			s->timeout_ms = 0;
		else
			get_duration(p, line, key, v, 0, 60 * MS_PER_S, &s->timeout_ms);
		break;
	case K_SRC_SERVERS:
		set_servers(p, line, v, true, &s->servers);
		break;
	case K_SRC_ENABLED:
		get_bool(p, line, key, v, &s->enabled);
		break;
	case K_COUNT:
		break;
	}
}

/* --------------------------------------------------------------- sections */

/* Checks that need the whole section: run when it ends. */
static void close_section(struct parser *p)
{
	struct section *sec = &p->sec;

	if (sec->kind == SEC_SOURCE) {
		struct config_source *s = sec->src;
		static const struct score_range default_errors = { 0x7fffff00u, 0x7fffffffu };
		const struct score_range *errs = s->rules.nerrors ? s->rules.errors : &default_errors;
		size_t nerrs = s->rules.nerrors ? s->rules.nerrors : 1;

		if (sec->key_line[K_SRC_ZONE] == 0)
			report(p, sec->line, "%s has no zone", sec->title);
		for (size_t i = 0; i < s->rules.ncodes; i++) {
			const struct score_range *c = &s->rules.codes[i].range;

			for (size_t j = 0; j < nerrs; j++) {
				char code[40], errors[40];

				if (c->lo >= errs[j].lo && c->hi <= errs[j].hi) {
					report(p, sec->key_line[K_SRC_CODES],
					       "codes: %s lies inside the %serrors range %s: "
					       "it can never count",
					       fmt_range(c, code, sizeof(code)),
					       s->rules.nerrors ? "" : "default ",
					       fmt_range(&errs[j], errors, sizeof(errors)));
					break;
				}
			}
		}
	} else if (sec->kind == SEC_CACHE) {
		struct config *c = sec->cfg;

		if (c->min_ttl_s > c->max_ttl_s) {
			char a[24], b[24];
			int line = sec->key_line[K_MIN_TTL] ? sec->key_line[K_MIN_TTL]
							    : sec->key_line[K_MAX_TTL];

			report(p, line, "min_ttl (%s) is greater than max_ttl (%s)",
			       fmt_duration(c->min_ttl_s * MS_PER_S, a, sizeof(a)),
			       fmt_duration(c->max_ttl_s * MS_PER_S, b, sizeof(b)));
		}
	}
	sec->kind = SEC_SKIP;
}

static struct config *scratch_config(struct parser *p)
{
	if (p->scratch_cfg == NULL) {
		p->scratch_cfg = malloc(sizeof(*p->scratch_cfg));
		if (p->scratch_cfg == NULL)
			return NULL;
	}
	if (config_defaults(p->scratch_cfg) != 0)
		return NULL;
	return p->scratch_cfg;
}

static int open_source(struct parser *p, char *name, int line)
{
	struct section *sec = &p->sec;
	struct config *cfg = p->cfg;
	bool valid = strlen(name) < sizeof(p->scratch_src.name);

	if (*name == '\0') {
		snprintf(sec->title, sizeof(sec->title), "[source]");
		report(p, line, "[source] needs a name: [source NAME]");
		goto scratch;
	}
	lowercase(name);
	snprintf(sec->title, sizeof(sec->title), "[source %.80s]", name);
	if (!valid || !qname_valid_source_name(name)) {
		report(p, line, "invalid source name \"%.80s\": one DNS label of letters, digits "
		       "and '-' starting with a letter; not a view name (score, ptr, spf, rhs, "
		       "health) nor a lone hex digit a-f", name);
		goto scratch;
	}
	for (size_t i = 0; i < cfg->nsources; i++) {
		if (strcmp(cfg->sources[i].name, name) == 0) {
			report(p, line, "duplicate section %s (first at line %d)", sec->title,
			       cfg->sources[i].line);
			goto scratch;
		}
	}
	if (cfg->nsources == SCORE_MAX_SOURCES) {
		report(p, line, "too many sources: at most %d", SCORE_MAX_SOURCES);
		goto scratch;
	}
	if (cfg->nsources == p->sources_cap) {
		size_t cap = p->sources_cap ? 2 * p->sources_cap : 8;
		struct config_source *grown = realloc(cfg->sources, cap * sizeof(*grown));

		if (grown == NULL)
			return -ENOMEM;
		cfg->sources = grown;
		p->sources_cap = cap;
	}
	sec->src = &cfg->sources[cfg->nsources++];
	source_defaults(sec->src, name, line);
	return 0;
scratch:
	sec->src = &p->scratch_src;
	source_defaults(sec->src, "", line);
	return 0;
}

/* s: the trimmed line, starting with '['. */
static int open_section(struct parser *p, char *s, int line)
{
	struct section *sec = &p->sec;
	size_t n = strlen(s);
	char *inner, *word_end, *rest;
	enum section_kind kind = SEC_NONE;

	close_section(p);
	memset(sec->key_line, 0, sizeof(sec->key_line));
	sec->line = line;
	sec->src = NULL;
	sec->cfg = p->cfg;
	if (n < 2 || s[n - 1] != ']') {
		report(p, line, "malformed section header: expected [name] or [source NAME]");
		return 0;
	}
	s[n - 1] = '\0';
	inner = trim(s + 1);
	for (word_end = inner; *word_end && !is_blank(*word_end); word_end++)
		;
	rest = trim(word_end);
	*word_end = '\0';

	for (int k = SEC_SERVER; k < SEC_COUNT; k++)
		if (strcmp(inner, section_names[k]) == 0)
			kind = (enum section_kind)k;
	if (kind == SEC_NONE) {
		report(p, line, "unknown section [%.80s]", inner);
		return 0;
	}
	sec->kind = kind;
	if (kind == SEC_SOURCE)
		return open_source(p, rest, line);

	snprintf(sec->title, sizeof(sec->title), "[%s]", inner);
	if (*rest != '\0') {
		report(p, line, "section [%s] takes no name", inner);
	} else if (p->section_line[kind] != 0) {
		report(p, line, "duplicate section [%s] (first at line %d)", inner,
		       p->section_line[kind]);
	} else {
		p->section_line[kind] = line;
		return 0;
	}
	sec->cfg = scratch_config(p);
	return sec->cfg != NULL ? 0 : -ENOMEM;
}

static void handle_key(struct parser *p, char *s, int line)
{
	struct section *sec = &p->sec;
	char *eq = strchr(s, '='), *key, *value;
	int k;

	if (eq == NULL) {
		report(p, line, "expected \"key = value\" or a [section] header");
		return;
	}
	*eq = '\0';
	key = trim(s);
	value = trim(eq + 1);
	if (*key == '\0') {
		report(p, line, "missing key before '='");
		return;
	}
	if (sec->kind == SEC_NONE) {
		report(p, line, "key \"%.80s\" outside any section", key);
		return;
	}
	if (sec->kind == SEC_SKIP)
		return;
	for (k = 0; k < K_COUNT; k++)
		if (key_defs[k].sec == sec->kind && strcmp(key_defs[k].name, key) == 0)
			break;
	if (k == K_COUNT) {
		int elsewhere = -1;

		for (int j = 0; j < K_COUNT && elsewhere < 0; j++)
			if (strcmp(key_defs[j].name, key) == 0)
				elsewhere = j;
		if (elsewhere >= 0)
			report(p, line, "unknown key \"%.80s\" in %s (it belongs in [%s])", key,
			       sec->title, section_names[key_defs[elsewhere].sec]);
		else
			report(p, line, "unknown key \"%.80s\" in %s", key, sec->title);
		return;
	}
	if (sec->key_line[k] != 0) {
		report(p, line, "duplicate key \"%s\" in %s (first at line %d)", key,
		       sec->title, sec->key_line[k]);
		return;
	}
	sec->key_line[k] = line;
	set_key(p, (enum key_id)k, value, line);
}

/* line: one line without its line ending, NUL-terminated, modifiable. */
static int handle_line(struct parser *p, char *line, int lineno)
{
	char *s;

	/* Cut the comment: ';' or '#' first on the line or after a blank. */
	for (size_t i = 0; line[i]; i++) {
		if ((line[i] == ';' || line[i] == '#') && (i == 0 || is_blank(line[i - 1]))) {
			line[i] = '\0';
			break;
		}
	}
	s = trim(line);
	if (*s == '\0')
		return 0;
	if (*s == '[')
		return open_section(p, s, lineno);
	handle_key(p, s, lineno);
	return 0;
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->sources);
	free(cfg);
}

int config_parse(const char *text, size_t len, const char *name,
		 config_error_fn err, void *err_arg, struct config **out)
{
	struct parser p = { .name = name != NULL ? name : "-", .err = err, .err_arg = err_arg };
	char *buf = NULL;
	size_t pos = 0;
	int lineno = 0;
	int rc;

	if (out == NULL || (text == NULL && len != 0))
		return -EINVAL;
	*out = NULL;
	p.cfg = calloc(1, sizeof(*p.cfg));
	buf = malloc(CONFIG_LINE_MAX + 1);
	if (p.cfg == NULL || buf == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = config_defaults(p.cfg);
	if (rc < 0)
		goto fail;
	p.sec.kind = SEC_NONE;

	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *start = text + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;

		pos += n + (nl != NULL);
		lineno++;
		if (n > 0 && start[n - 1] == '\r')
			n--;
		if (n > CONFIG_LINE_MAX) {
			size_t i = 0;

			report(&p, lineno, "line longer than %d bytes", CONFIG_LINE_MAX);
			/* Keys after a lost header must not land in the section before it. */
			while (i < n && is_blank(start[i]))
				i++;
			if (start[i] == '[') {
				close_section(&p);
				p.sec.kind = SEC_SKIP;
			}
			continue;
		}
		if (memchr(start, '\0', n) != NULL) {
			report(&p, lineno, "NUL byte in the line");
			continue;
		}
		memcpy(buf, start, n);
		buf[n] = '\0';
		rc = handle_line(&p, buf, lineno);
		if (rc < 0)
			goto fail;
	}
	close_section(&p);

	if (p.nerrors > 0) {
		rc = -EINVAL;
		goto fail;
	}
	free(buf);
	free(p.scratch_cfg);
	*out = p.cfg;
	return 0;
fail:
	if (rc == -ENOMEM && err != NULL)
		err(err_arg, p.name, 0, "out of memory");
	free(buf);
	free(p.scratch_cfg);
	config_free(p.cfg);
	return rc;
}

static void report_errno(config_error_fn err, void *arg, const char *path,
			 const char *what, int e)
{
	char buf[256], msg[CONFIG_MSG_MAX];

	if (err == NULL)
		return;
	snprintf(msg, sizeof(msg), "%s: %s", what, strerror_r(e, buf, sizeof(buf)));
	err(arg, path, 0, msg);
}

int config_load(const char *path, config_error_fn err, void *err_arg,
		struct config **out)
{
	char *text = NULL;
	size_t len = 0;
	int fd, rc;

	if (path == NULL || out == NULL)
		return -EINVAL;
	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		report_errno(err, err_arg, path, "cannot open", -rc);
		return rc;
	}
	/* One byte more than allowed tells "too large" from "exactly the limit". */
	text = malloc(CONFIG_FILE_MAX + 1);
	if (text == NULL) {
		rc = -ENOMEM;
		report_errno(err, err_arg, path, "cannot read", ENOMEM);
		goto fail;
	}
	for (;;) {
		ssize_t n = read(fd, text + len, CONFIG_FILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			report_errno(err, err_arg, path, "cannot read", -rc);
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_FILE_MAX) {
			rc = -EFBIG;
			if (err != NULL)
				err(err_arg, path, 0, "file larger than 1 MiB");
			goto fail;
		}
	}
	close(fd);
	fd = -1;
	rc = config_parse(text, len, path, err, err_arg, out);
	free(text);
	return rc;
fail:
	free(text);
	if (fd >= 0)
		close(fd);
	return rc;
}
