/*
 * health: what rblmuxd knows of each list's health, shared by every loop.
 *
 * A health_source lives as long as the process and is found by its zone
 * (zone ids are interned here: a source renamed or reconfigured on reload
 * keeps its history when its zone stays). Workers record every upstream
 * answer's outcome and latency; probes at the RFC 5782 test points decide
 * "down": a list that lists 127.0.0.1 (it "lists the world"), stops listing
 * 127.0.0.2, or keeps failing.
 */
#ifndef RBLMUX_RESOLVER_HEALTH_H
#define RBLMUX_RESOLVER_HEALTH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zones/dnswire.h"

enum health_state { HEALTH_OK = 0, HEALTH_DEGRADED, HEALTH_DOWN, HEALTH_DISABLED };

#define HEALTH_LAT_SAMPLES 128
#define HEALTH_MAX_ZONES 4096

struct health_source {
	uint16_t zone_id;
	uint8_t zone[DNSWIRE_NAME_MAX];
	size_t zone_len;
	atomic_int down;          /* 1 while probes say down: counts 0 */
	pthread_mutex_t lock;     /* guards everything below */
	char down_reason[80];     /* why it is down, for the log and health TXT */
	uint32_t lat_us[HEALTH_LAT_SAMPLES];
	unsigned lat_n, lat_pos;
	/* outcome of the last answers, decayed: error rate = err / total */
	double ewma_total, ewma_err;
	unsigned probe_failures;  /* consecutive probes without an answer */
	uint64_t queries, failures;
};

struct health_table;

/* Returns NULL on ENOMEM. */
struct health_table *health_table_new(void);
void health_table_free(struct health_table *t);

/* Find or create the health record of a zone (wire form, lowercase).
 * Returns NULL when HEALTH_MAX_ZONES zones exist or on ENOMEM. */
struct health_source *health_get(struct health_table *t, const uint8_t *zone,
				 size_t zone_len);

/* Record one upstream answer for a list (any thread). */
void health_record(struct health_source *h, bool failed, uint64_t latency_us);

/* What a probe found: listed/not listed at 127.0.0.2 and 127.0.0.1, or no
 * answer. Returns true when the down state changed (the caller logs it). */
enum health_probe_result { PROBE_PASS, PROBE_NO_ANSWER, PROBE_WORLD, PROBE_MISSING_TEST };
bool health_probe_done(struct health_source *h, enum health_probe_result r);

static inline bool health_is_down(struct health_source *h)
{
	return atomic_load_explicit(&h->down, memory_order_relaxed) != 0;
}

/* ok/degraded/down, p50 latency (µs) and error rate in [0,1]. */
enum health_state health_snapshot(struct health_source *h, uint32_t *p50_us,
				  double *err_rate, char *reason, size_t reason_cap);

const char *health_state_name(enum health_state s);

#endif
