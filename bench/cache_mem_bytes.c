/*
 * cache_mem_bytes: what one typical entry costs the in-process cache.
 *
 * Inserts N entries (default 1,000,000) shaped like the resolver's: an 8-byte
 * key (2-byte zone id, 2-byte qtype, IPv4 address) and a 1-6 byte value, into
 * a cache whose limit never binds. Prints the cache's own accounting per
 * entry and the process RSS growth per entry (/proc/self/statm), then the
 * time of a put, of a warm get (a few keys, hot in CPU caches) and of a get
 * of a random stored key. Exits non-zero if any entry was lost.
 *
 *   cache_mem_bytes [entries]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"

#define LIMIT ((size_t)8 << 30)
#define WARM_KEYS 64
#define WARM_GETS 20000000u
#define RANDOM_GETS 5000000u

static long rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size, resident;

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Entry i: distinct addresses (an odd multiplier is a bijection mod 2^32). */
static void make_key(uint8_t key[8], uint32_t i)
{
	uint32_t addr = i * 2654435761u;
	uint16_t zone = (uint16_t)(1 + i % 5);

	key[0] = (uint8_t)(zone >> 8);
	key[1] = (uint8_t)zone;
	key[2] = 0;
	key[3] = 1;   /* qtype A */
	key[4] = (uint8_t)(addr >> 24);
	key[5] = (uint8_t)(addr >> 16);
	key[6] = (uint8_t)(addr >> 8);
	key[7] = (uint8_t)addr;
}

int main(int argc, char **argv)
{
	uint32_t entries = 1000000;
	const uint32_t now = 1700000000u;
	struct cache_mem_stats st;
	struct cache_item item;
	uint8_t key[8], value[6] = { 127, 0, 0, 2, 4, 8 };
	uint64_t found = 0;

	if (argc > 1) {
		char *end;
		unsigned long n = strtoul(argv[1], &end, 10);

		if (*end || n == 0 || n > UINT32_MAX) {
			fprintf(stderr, "usage: %s [entries]\n", argv[0]);
			return 2;
		}
		entries = (uint32_t)n;
	}

	long rss_before = rss_bytes();
	struct cache_tier *t = cache_mem_new(LIMIT);
	if (!t) {
		fprintf(stderr, "cache_mem_new: %s\n", strerror(ENOMEM));
		return 1;
	}

	double start = now_ns();
	for (uint32_t i = 0; i < entries; i++) {
		make_key(key, i);
		t->ops->put(t, key, sizeof(key), value, 1 + i % 6, now, now + 3600, now + 7200);
	}
	double put_ns = (now_ns() - start) / entries;
	long rss_after = rss_bytes();

	cache_mem_get_stats(t, &st);
	printf("entries            %" PRIu64 " (of %u put)\n", st.entries, entries);
	printf("accounted bytes    %" PRIu64 " = %.1f bytes/entry\n", st.bytes,
	       (double)st.bytes / entries);
	printf("RSS growth         %ld = %.1f bytes/entry\n", rss_after - rss_before,
	       (double)(rss_after - rss_before) / entries);
	printf("put                %.0f ns\n", put_ns);

	uint32_t warm_keys = entries < WARM_KEYS ? entries : WARM_KEYS;
	start = now_ns();
	for (uint32_t i = 0; i < WARM_GETS; i++) {
		make_key(key, i % warm_keys);
		found += t->ops->get(t, key, sizeof(key), now + 1, &item, NULL, NULL) == CACHE_HIT;
	}
	printf("get, warm          %.0f ns (%d keys)\n", (now_ns() - start) / WARM_GETS, warm_keys);

	uint32_t r = 12345;
	start = now_ns();
	for (uint32_t i = 0; i < RANDOM_GETS; i++) {
		r = r * 1103515245u + 12345u;
		make_key(key, (r >> 8) % entries);
		found += t->ops->get(t, key, sizeof(key), now + 1, &item, NULL, NULL) == CACHE_HIT;
	}
	printf("get, random key    %.0f ns\n", (now_ns() - start) / RANDOM_GETS);

	t->ops->destroy(t);
	if (st.entries != entries || found != (uint64_t)WARM_GETS + RANDOM_GETS) {
		fprintf(stderr, "lost entries: %" PRIu64 " stored, %" PRIu64 " gets hit\n",
			st.entries, found);
		return 1;
	}
	return 0;
}
