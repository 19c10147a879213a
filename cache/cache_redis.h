/*
 * cache_redis: the Redis cache tier (struct cache_tier_ops of cache.h), shared
 * by a fleet of rblmuxd.
 *
 * One tier per libuv loop: hiredis contexts are not thread safe, so each loop
 * thread creates its own tier (and connection) and uses it only on its loop.
 *
 * Redis is never on the critical path: get answers CACHE_MISS at once
 * (synchronously, cb not called) unless the connection is up and healthy,
 * and otherwise returns -EINPROGRESS and calls cb within read_timeout_ms
 * (CACHE_MISS when Redis has not answered by then). put is a fire-and-forget
 * SET, skipped while not up.
 *
 * Keys are <key_prefix>v1:<caller key>; the caller's key bytes go in as they
 * are (the resolver makes them printable and the same on every member).
 * Values are a text header of three absolute wall-clock times in decimal,
 * then the caller's value bytes:
 *     "<expire> <stale_until> <stored>\n<value>"
 * so an entry means the same to every member. Redis expires the key at
 * stale_until (SET ... EX stale_until - now), when serving stale is over. A
 * value that does not parse exactly (another writer, another version) is a
 * miss.
 *
 * Connection: connects in the background, then AUTH (when a password is set),
 * SELECT (when db != 0) and PING; up when the PING answers. Lost or failed:
 * retried after 100 ms, doubling to 5 s; after an error reply to the
 * handshake (wrong password, bad db) every 5 s. A connection is given up as
 * dead when its handshake takes over 2 s, or a PING (sent every second) is
 * not answered within 1 s. After 20 gets in a row time out, gets and puts are
 * not sent until Redis answers anything again (a PING goes out at once), so
 * a stalled Redis neither buffers nor costs anything.
 */
#ifndef RBLMUX_CACHE_CACHE_REDIS_H
#define RBLMUX_CACHE_CACHE_REDIS_H

#include <stdint.h>

#include <uv.h>

#include "cache/cache.h"

/* Longest key_prefix accepted. */
#define CACHE_REDIS_PREFIX_MAX 128

enum cache_redis_state {
	CACHE_REDIS_CONNECTING,   /* initial, until the first attempt ends */
	CACHE_REDIS_UP,
	CACHE_REDIS_DOWN,         /* lost or cannot connect: retrying */
	CACHE_REDIS_AUTH_FAILED,  /* Redis refused the password (or wants one) */
};

struct cache_redis_opts {
	/* "127.0.0.1:6379", "[::1]:6379", "host:port" (a name is resolved by
	 * hiredis with getaddrinfo, blocking the loop, at each connection
	 * attempt: prefer an address), "unix:/run/redis/redis.sock". */
	const char *address;
	const char *password;       /* NULL or "": no AUTH */
	int db;                     /* SELECT db when != 0 (0..INT_MAX) */
	const char *key_prefix;     /* NULL: ""; at most CACHE_REDIS_PREFIX_MAX bytes */
	uint32_t read_timeout_ms;   /* 0: 5 ms */
	/*
	 * Called on the loop at every change of state (never twice in a row
	 * for the same state; the initial CONNECTING is not reported) with a
	 * short reason ("Connection refused", "WRONGPASS ...", "PING timed
	 * out"), valid during the call. cache/ never logs: the caller does.
	 * It may read the tier's state and stats, nothing else.
	 */
	void (*on_state)(void *arg, enum cache_redis_state state, const char *detail);
	void *state_arg;
};

/* Counters since creation. Every completed get is exactly one of hits,
 * stale_hits, misses; timeouts, skipped and errors say why some missed. */
struct cache_redis_stats {
	uint64_t gets;        /* get calls with valid arguments */
	uint64_t hits, stale_hits, misses;
	uint64_t timeouts;    /* gets not answered within read_timeout_ms */
	uint64_t skipped;     /* gets and puts not sent: not up, stalled or
				 too many commands waiting */
	uint64_t errors;      /* error replies, malformed values, gets and puts
				 lost with their connection */
	uint64_t puts;        /* SET (or DEL) commands sent */
	uint64_t reconnects;  /* connection attempts after the first */
};

/*
 * Create a Redis tier on loop; it starts connecting on the loop's next turn.
 * Returns NULL on bad options (address unparsable, prefix too long, db < 0)
 * or out of memory. The strings are copied.
 *
 * ops->destroy closes the connection and completes every pending get with
 * CACHE_MISS (before it returns); the memory is freed in libuv close
 * callbacks, so the loop must run on afterwards.
 */
struct cache_tier *cache_redis_new(uv_loop_t *loop, const struct cache_redis_opts *opts);

enum cache_redis_state cache_redis_state(struct cache_tier *t);

void cache_redis_get_stats(struct cache_tier *t, struct cache_redis_stats *out);

#endif
