#include "resolver/health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Probes in a row without an answer before a list is "down": one lost
 * packet must not take a list out. */
#define PROBE_FAILURES_DOWN 3
/* Error rate over the recent answers above which a list is "degraded". */
#define DEGRADED_ERROR_RATE 0.05
/* Weight of history in the error-rate average (about the last 100 answers). */
#define EWMA_KEEP 0.99

struct health_table {
	pthread_mutex_t lock;
	struct health_source *zones[HEALTH_MAX_ZONES];
	size_t n;
};

struct health_table *health_table_new(void)
{
	struct health_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void health_table_free(struct health_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		pthread_mutex_destroy(&t->zones[i]->lock);
		free(t->zones[i]);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

struct health_source *health_get(struct health_table *t, const uint8_t *zone,
				 size_t zone_len)
{
	struct health_source *h = NULL;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++) {
		if (t->zones[i]->zone_len == zone_len &&
		    memcmp(t->zones[i]->zone, zone, zone_len) == 0) {
			h = t->zones[i];
			goto out;
		}
	}
	if (t->n == HEALTH_MAX_ZONES || zone_len > sizeof(h->zone))
		goto out;
	h = calloc(1, sizeof(*h));
	if (!h)
		goto out;
	h->zone_id = (uint16_t)(t->n + 1);
	memcpy(h->zone, zone, zone_len);
	h->zone_len = zone_len;
	pthread_mutex_init(&h->lock, NULL);
	t->zones[t->n++] = h;
out:
	pthread_mutex_unlock(&t->lock);
	return h;
}

void health_record(struct health_source *h, bool failed, uint64_t latency_us)
{
	pthread_mutex_lock(&h->lock);
	h->queries++;
	if (failed)
		h->failures++;
	h->ewma_total = h->ewma_total * EWMA_KEEP + 1.0;
	h->ewma_err = h->ewma_err * EWMA_KEEP + (failed ? 1.0 : 0.0);
	if (!failed) {
		h->lat_us[h->lat_pos] = latency_us > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_us;
		h->lat_pos = (h->lat_pos + 1) % HEALTH_LAT_SAMPLES;
		if (h->lat_n < HEALTH_LAT_SAMPLES)
			h->lat_n++;
	}
	pthread_mutex_unlock(&h->lock);
}

bool health_probe_done(struct health_source *h, enum health_probe_result r)
{
	bool was_down = health_is_down(h), down = was_down;
	pthread_mutex_lock(&h->lock);
	switch (r) {
	case PROBE_PASS:
		h->probe_failures = 0;
		down = false;
		break;
	case PROBE_NO_ANSWER:
		if (++h->probe_failures >= PROBE_FAILURES_DOWN) {
			down = true;
			snprintf(h->down_reason, sizeof(h->down_reason),
				 "no answer to %u probes", h->probe_failures);
		}
		break;
	case PROBE_WORLD:
		h->probe_failures = 0;
		down = true;
		snprintf(h->down_reason, sizeof(h->down_reason),
			 "lists the world (test point 127.0.0.1 listed)");
		break;
	case PROBE_MISSING_TEST:
		h->probe_failures = 0;
		down = true;
		snprintf(h->down_reason, sizeof(h->down_reason),
			 "test point 127.0.0.2 not listed");
		break;
	}
	pthread_mutex_unlock(&h->lock);
	atomic_store(&h->down, down ? 1 : 0);
	return down != was_down;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

enum health_state health_snapshot(struct health_source *h, uint32_t *p50_us,
				  double *err_rate, char *reason, size_t reason_cap)
{
	uint32_t lat[HEALTH_LAT_SAMPLES];
	pthread_mutex_lock(&h->lock);
	unsigned n = h->lat_n;
	memcpy(lat, h->lat_us, sizeof(lat));
	*err_rate = h->ewma_total > 0 ? h->ewma_err / h->ewma_total : 0.0;
	if (reason && reason_cap)
		snprintf(reason, reason_cap, "%s", h->down_reason);
	pthread_mutex_unlock(&h->lock);
	qsort(lat, n, sizeof(lat[0]), cmp_u32);
	*p50_us = n ? lat[n / 2] : 0;
	if (health_is_down(h))
		return HEALTH_DOWN;
	if (reason && reason_cap)
		reason[0] = '\0';
	return *err_rate > DEGRADED_ERROR_RATE ? HEALTH_DEGRADED : HEALTH_OK;
}

const char *health_state_name(enum health_state s)
{
	switch (s) {
	case HEALTH_OK: return "ok";
	case HEALTH_DEGRADED: return "degraded";
	case HEALTH_DOWN: return "down";
	case HEALTH_DISABLED: return "disabled";
	}
	return "?";
}
