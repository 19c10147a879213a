/*
 * config: rblmuxd's INI configuration file (SPEC §3).
 *
 * A parser of our own, not inih: Debian's inih cuts values at 200 characters
 * without a word and merges repeated sections silently; the SPEC promises
 * that unknown keys, duplicate sections and keys, and over-long lines are
 * errors with their line numbers. Every error in a file is reported, not
 * only the first.
 *
 * Syntax: "[section]" or "[source NAME]"; "key = value"; comments start with
 * ';' or '#' at the start of a line or after whitespace (so "a;b" is one
 * value; there is no quoting); blank lines ignored; lists are
 * comma-separated; lines up to CONFIG_LINE_MAX bytes, not counting the LF or
 * CRLF that ends them.
 */
#ifndef RBLMUX_RESOLVER_CONFIG_H
#define RBLMUX_RESOLVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "zones/dnswire.h"
#include "zones/qname.h"
#include "zones/score.h"

#define CONFIG_LINE_MAX 4096
#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_ACL 64
#define CONFIG_MAX_SERVERS 8

struct config_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct config_cidr {
	int family;            /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint8_t prefix;
};

/* A resolver list for c-ares: "system" (servers_system == true) or up to
 * CONFIG_MAX_SERVERS addresses with ports, also kept as c-ares' CSV form
 * ("127.0.0.1:5301,[::1]:53") for ares_set_servers_ports_csv. */
struct config_servers {
	bool system;
	char csv[512];
	size_t n;
};

struct config_source {
	char name[64];
	char zone_text[DNSWIRE_NAME_MAX + 1]; /* as written, lowercase, no trailing dot */
	uint8_t zone[DNSWIRE_NAME_MAX];      /* wire form, lowercase */
	size_t zone_len;
	enum qname_src_type type;
	struct score_rules rules;            /* weight, codes, errors */
	uint32_t timeout_ms;                 /* 0: [upstream] timeout */
	struct config_servers servers;       /* n == 0 && !system: [upstream] servers */
	bool enabled;
	int line;                            /* where the section starts */
};

struct config_ptr {
	bool enabled;
	int level;                           /* 0 conservative, 1 moderate, 2 aggressive */
	int weight, weight_no_ptr, weight_no_fcrdns;
};

struct config_spf {
	bool enabled;
	uint32_t ttl_s;
};

struct config {
	/* [server] */
	struct config_addr listen[CONFIG_MAX_LISTEN];
	size_t nlisten;
	char zone_text[DNSWIRE_NAME_MAX + 1];   /* lowercase, no trailing dot */
	uint8_t zone[DNSWIRE_NAME_MAX];         /* wire form, lowercase */
	size_t zone_len;
	unsigned threads;                       /* 0 = auto (one per core) */
	struct config_cidr allow[CONFIG_MAX_ACL];
	size_t nallow;
	char user[64];                          /* "" = no privilege drop */
	struct config_addr metrics;             /* metrics.len == 0: off */
	uint32_t tcp_idle_ms;                   /* [server] tcp_idle, default 10s */
	uint32_t tcp_max;                       /* [server] tcp_max, default 256 per thread */
	uint32_t udp_max_size;                  /* [server] udp_max_size, default 1232 */
	uint32_t rrl_rate;                      /* [server] rrl_rate: UDP answers per second
						 * per client network (resolver/rrl.h),
						 * default 100, 0 = off */
	uint32_t rrl_slip;                      /* [server] rrl_slip, default 2, 0 = drop all */
	struct config_cidr rrl_exempt[CONFIG_MAX_ACL]; /* [server] rrl_exempt, default
							 * 127.0.0.0/8, ::1/128 */
	size_t nrrl_exempt;

	/* [upstream] */
	struct config_servers servers;
	uint32_t timeout_ms;                    /* default 1500 */
	uint32_t deadline_ms;                   /* default 2000 */
	uint32_t probe_interval_ms;             /* [upstream] probe_interval, default 60s */
	uint32_t max_inflight;                  /* [upstream] max_inflight per server, default 100 */

	/* [scoring] */
	int threshold;                          /* default 5 */
	enum score_on_incomplete on_incomplete;

	/* [cache] */
	char redis[256];                        /* "" = none */
	char redis_password[256];
	int redis_db;
	uint32_t redis_timeout_ms;              /* [cache] redis_timeout, default 5ms */
	char key_prefix[64];                    /* default "rblmux:" */
	uint64_t memory_bytes;                  /* default 256M */
	uint32_t min_ttl_s, max_ttl_s, error_ttl_s, stale_ttl_s; /* 60, 3600, 30, 3600 */

	struct config_ptr ptr;
	struct config_spf spf;

	struct config_source *sources;          /* nsources entries, in file order */
	size_t nsources;
};

/* Called once per error: "FILE:LINE: message" is how callers print it. */
typedef void (*config_error_fn)(void *arg, const char *file, int line,
				const char *msg);

/*
 * Parse the file at path into a new config (defaults for keys not given).
 * Every error goes to err (file, line, message); parsing continues after an
 * error so that all are reported.
 * Returns 0 with *out set (the caller frees it with config_free), -EINVAL
 * when there was at least one error (*out is NULL), or -errno when the file
 * cannot be read (reported through err with line 0).
 */
int config_load(const char *path, config_error_fn err, void *err_arg,
		struct config **out);

/* Same, from a string (tests, fuzzing). name is used in error messages. */
int config_parse(const char *text, size_t len, const char *name,
		 config_error_fn err, void *err_arg, struct config **out);

void config_free(struct config *cfg);

/*
 * Parse a duration with units ("1500ms", "2s", "5m", "1h"; a bare number is
 * seconds, except where the key is documented in ms). Returns 0 or -EINVAL.
 */
int config_parse_duration_ms(const char *text, uint64_t *ms);
/* Parse a size with units ("256M", "64k", "1G", bare bytes). */
int config_parse_size(const char *text, uint64_t *bytes);
/* Parse "127.0.0.1:5353", "[::1]:5353" (port required). */
int config_parse_addr_port(const char *text, struct config_addr *out);
/* Parse "127.0.0.0/8", "::1/128", or a bare address (full-length prefix).
 * Host bits are cleared; an IPv4-mapped network (::ffff:a.b.c.d/96+n) is
 * stored as the IPv4 network a.b.c.d/n. */
int config_parse_cidr(const char *text, struct config_cidr *out);
/* True when addr (family AF_INET/AF_INET6, bytes in network order) is in c.
 * An IPv4-mapped IPv6 addr (how a dual-stack socket shows an IPv4 client) is
 * matched as the IPv4 address. */
bool config_cidr_match(const struct config_cidr *c, int family, const uint8_t *addr);

#endif
