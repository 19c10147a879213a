/*
 * metrics: rblmuxd's counters and its Prometheus endpoint ([server] metrics).
 *
 * Counting. Every loop thread owns one block of counters and is its only
 * writer; a scrape sums the blocks. Counters are _Atomic uint64_t updated
 * with a relaxed load and a relaxed store (one writer needs no
 * read-modify-write: on x86_64 and aarch64 that is a plain load, add and
 * store, no locked instruction) and read with relaxed loads, so a scrape
 * never sees a torn value, only one a few events old. Histograms have fixed
 * buckets counted one by one and made cumulative at scrape time; _count is
 * the sum of the buckets read, so it always equals the +Inf bucket.
 *
 * Per-list counters are kept by the list's zone id (health.h: stable across
 * reloads, at most HEALTH_MAX_ZONES), in blocks a loop allocates the first
 * time it counts for that zone; a scrape labels them with the source names
 * of the configuration in force, so a renamed source keeps its counts and a
 * removed one drops out of the exposition.
 *
 * The endpoint: HTTP/1.0 on worker 0's loop, nothing blocks. GET (or HEAD)
 * /metrics answers the text exposition format 0.0.4; any other target 404,
 * a request line that does not parse 400, a request head over
 * METRICS_REQUEST_MAX bytes 431. The connection closes after the answer; at
 * most METRICS_MAX_CONNS are open at once (more are closed as they come); a
 * client has METRICS_TIMEOUT_MS from connecting to having read the answer.
 *
 * The process has one set of metrics, as it has one log: the hooks are
 * called from query and lookup code that has a worker but no place of its
 * own to keep a pointer. metrics_start sets it up before the loop threads
 * start and metrics_free drops it after they ended. Without `metrics` in the
 * configuration nothing is allocated and each hook is one pointer test.
 * Changing `metrics` takes effect at the next restart.
 */
#ifndef RBLMUX_RESOLVER_METRICS_H
#define RBLMUX_RESOLVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* metrics_answer's view for answers given before the name was read
 * (REFUSED by `allow`, FORMERR, NOTIMP, BADVERS). Other views are enum
 * qname_view. */
#define METRICS_VIEW_NONE (-1)

#define METRICS_MAX_CONNS 8
#define METRICS_REQUEST_MAX 4096
#define METRICS_TIMEOUT_MS 5000

struct server;
struct worker;

/*
 * Set up the counters of srv's loops and listen on the configured metrics
 * address on worker 0's loop. Call once the workers exist and before their
 * loops run. Returns 0 (also when metrics are off: nothing is counted) or a
 * negative errno, logged (the address cannot be bound).
 */
int metrics_start(struct server *srv);

/* Close the endpoint and its connections (on worker 0's loop, as it stops;
 * the loop must run on for the close callbacks). Idempotent. */
void metrics_stop(struct server *srv);

/* Free the counters, once every loop has ended. */
void metrics_free(void);

/* ---------------------------------------------- hooks, on w's own loop */

/* An answer went out: its view (enum qname_view or METRICS_VIEW_NONE), the
 * question's type, the answer's rcode (DNS_R_BADVERS included), and the
 * loop time (ms) the question came in, 0 for an answer given at once. */
void metrics_answer(struct worker *w, int view, uint16_t qtype, unsigned rcode,
		    uint64_t start_ms);

/* A list's answer reached a query: where from (enum lookup_tier). */
void metrics_lookup(struct worker *w, uint16_t zone_id, unsigned tier);

/* A list's upstream question ended: its status (enum listans_status),
 * whether it counts as failed (an error code among the records), and the
 * time from send to outcome (0: it never went out). */
void metrics_upstream(struct worker *w, uint16_t zone_id, unsigned status,
		      bool failed, uint64_t latency_us);

/* An SPF check ended with result (enum spf_result, 1..7). */
void metrics_spf(struct worker *w, unsigned result);

/* ------------------------------------------------------- for the tests */

/* The exposition text of srv now, in a malloc'd buffer (*out, *len; not
 * NUL-terminated beyond *len). Returns 0, -ENODEV when metrics were not
 * started, or -ENOMEM. */
int metrics_render(struct server *srv, char **out, size_t *len);

/*
 * What to answer to the request head in buf[0..len): 0 while the head is
 * incomplete (no empty line yet) and under METRICS_REQUEST_MAX bytes; else
 * the HTTP status: 200 (GET or HEAD of /metrics, a query string allowed;
 * *head_only set for HEAD), 400 (no request line of the form "METHOD
 * TARGET HTTP/x.y"), 404 (anything else), 431 (no end of head within
 * METRICS_REQUEST_MAX bytes).
 */
int metrics_http_route(const char *buf, size_t len, bool *head_only);

#endif
