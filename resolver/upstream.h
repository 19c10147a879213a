/*
 * upstream: questions to the lists' resolvers, with c-ares on a libuv loop.
 *
 * One upstream_pool per loop thread (c-ares channels are not thread safe).
 * Inside a pool, one c-ares channel per distinct (server list, timeout):
 * sources that share their resolvers share a channel. c-ares runs without a
 * thread of its own: its sockets are watched with uv_poll, its timeouts with
 * one uv_timer, and ares_timeout() is asked once per event, not per query.
 *
 * Each question goes out with its name's letters in random case (DNS 0x20)
 * and the answer must echo that exact name, on top of c-ares' ID check.
 * At most max_inflight questions are outstanding per channel; the rest wait
 * in a FIFO queue (rbldnsd drops floods of 1,000 questions in flight).
 */
#ifndef RBLMUX_RESOLVER_UPSTREAM_H
#define RBLMUX_RESOLVER_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "zones/listans.h"

struct upstream_pool;

/*
 * Called exactly once per upstream_query that returned 0: with the parsed
 * answer (status LISTANS_TIMEOUT when no answer came in time, LISTANS_SERVFAIL
 * for network errors and refused connections, LISTANS_BAD for garbage or a
 * mismatched question) and the time from send to answer. ans is valid only
 * during the call. Also called (with LISTANS_TIMEOUT) for every outstanding
 * query when the pool is destroyed.
 */
typedef void (*upstream_cb)(void *arg, const struct listans *ans,
			    uint64_t latency_us);

/*
 * Create a pool on loop. max_inflight: questions outstanding per channel
 * (1..65535; more is clamped: one query ID each). c-ares' sockets get a
 * 4 MiB SO_RCVBUF. Returns 0 with *out, or a negative errno.
 */
int upstream_pool_new(uv_loop_t *loop, unsigned max_inflight,
		      struct upstream_pool **out);

/*
 * Ask (name, qtype) of the servers in servers_csv ("system" or NULL: the
 * system resolvers from /etc/resolv.conf; else "127.0.0.1:5301,[::1]:53").
 * timeout_ms bounds the whole question (c-ares tries twice within it).
 * Returns 0 (cb will be called exactly once, never from inside this call),
 * or a negative errno (cb will never be called): -EINVAL for a malformed
 * name, a zero timeout or a server list c-ares refuses, -ESHUTDOWN once
 * upstream_pool_close was called.
 */
int upstream_query(struct upstream_pool *p, const char *servers_csv,
		   uint32_t timeout_ms, const uint8_t *name, size_t name_len,
		   uint16_t qtype, upstream_cb cb, void *arg);

/*
 * The same question for callers that read other record types (SPF: MX, PTR,
 * AAAA): cb gets the status listans_parse gave (NXDOMAIN; NODATA or RECORDS
 * for NOERROR — for types other than A and TXT read the records from the
 * packet; SERVFAIL, TIMEOUT, BAD) and, when a packet came that answers the
 * exact question sent (0x20 checked), that packet; otherwise pkt is NULL.
 * Same rules as upstream_query.
 */
typedef void (*upstream_raw_cb)(void *arg, enum listans_status status,
				const uint8_t *pkt, size_t len, uint64_t latency_us);
int upstream_query_raw(struct upstream_pool *p, const char *servers_csv,
		       uint32_t timeout_ms, const uint8_t *name, size_t name_len,
		       uint16_t qtype, upstream_raw_cb cb, void *arg);

/*
 * Close the pool: outstanding and queued questions are answered with
 * LISTANS_TIMEOUT, handles are closed; the pool frees itself in the last
 * close callback. The loop must run afterwards for that to happen.
 */
void upstream_pool_close(struct upstream_pool *p);

/* Questions sent, answered, timed out, queued now, over the pool's life.
 * Each callback counts in one of answered (a server's answer, SERVFAIL
 * included), timeouts, errors (no answer: refused connection, no socket)
 * or bad. inflight counts questions c-ares still holds, those already
 * answered "timeout" by the deadline included. */
struct upstream_stats {
	uint64_t sent, answered, timeouts, errors, bad;
	unsigned inflight, queued;
};
void upstream_pool_stats(const struct upstream_pool *p, struct upstream_stats *out);

#endif
