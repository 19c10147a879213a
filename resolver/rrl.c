#include "resolver/rrl.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "resolver/config.h"

#define RRL_WAYS 4
/* Tokens are counted in thousandths of an answer, so that a rate in answers
 * per second refills exactly `rate` thousandths per millisecond. */
#define TOKEN 1000

struct rrl_entry {
	uint64_t key;       /* 0: empty; else family tag and network bytes */
	uint64_t last_ms;   /* last answer counted */
	int64_t tokens;     /* thousandths of an answer, at most rate * TOKEN */
	uint32_t limited;   /* answers over the rate so far (for the slip) */
};

struct rrl_table {
	struct rrl_entry *e;
	size_t nsets;       /* a power of two */
	uint64_t seed;
	struct rrl_stats stats;
};

static uint64_t random_seed(const void *salt)
{
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	/* No entropy yet (early boot): still different per process and table. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
	       ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)salt;
}

int rrl_new(size_t entries, struct rrl_table **out)
{
	size_t nsets = 1;
	while (nsets * RRL_WAYS < entries && nsets < ((size_t)1 << 24))
		nsets <<= 1;
	struct rrl_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->e = calloc(nsets * RRL_WAYS, sizeof(*t->e));
	if (!t->e) {
		free(t);
		return -ENOMEM;
	}
	t->nsets = nsets;
	t->seed = random_seed(t);
	*out = t;
	return 0;
}

void rrl_free(struct rrl_table *t)
{
	if (!t)
		return;
	free(t->e);
	free(t);
}

void rrl_get_stats(const struct rrl_table *t, struct rrl_stats *out)
{
	*out = t->stats;
}

/* splitmix64's finaliser over key and seed: cheap, and the seed is secret. */
static uint64_t mix(uint64_t x, uint64_t seed)
{
	x ^= seed;
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* The network's key: a family tag in the top byte, then the network's bytes
 * (IPv4: 3 bytes, the /24; IPv6: 7 bytes, the /56). Never 0. */
static uint64_t network_key(int family, const uint8_t *addr)
{
	uint64_t key = 0;
	if (family == AF_INET6 && memcmp(addr, v4mapped, sizeof(v4mapped)) == 0) {
		family = AF_INET;
		addr += sizeof(v4mapped);
	}
	if (family == AF_INET) {
		key = (uint64_t)4 << 56;
		for (int i = 0; i < 3; i++)
			key |= (uint64_t)addr[i] << (8 * (2 - i));
		return key;
	}
	key = (uint64_t)6 << 56;
	for (int i = 0; i < 7; i++)
		key |= (uint64_t)addr[i] << (8 * (6 - i));
	return key;
}

/* The entry for key: found, or the set's empty or least recently seen entry
 * taken over with a full bucket. */
static struct rrl_entry *lookup(struct rrl_table *t, uint64_t key, uint64_t now_ms,
				uint32_t rate)
{
	struct rrl_entry *set = t->e + (mix(key, t->seed) & (t->nsets - 1)) * RRL_WAYS;
	struct rrl_entry *victim = &set[0];
	for (int i = 0; i < RRL_WAYS; i++) {
		if (set[i].key == key)
			return &set[i];
		if (set[i].key == 0 || (victim->key != 0 && set[i].last_ms < victim->last_ms))
			victim = &set[i];
	}
	victim->key = key;
	victim->last_ms = now_ms;
	victim->tokens = (int64_t)rate * TOKEN;
	victim->limited = 0;
	return victim;
}

enum rrl_verdict rrl_check(struct rrl_table *t, int family, const uint8_t *addr,
			   uint64_t now_ms, uint32_t rate, uint32_t slip)
{
	if ((family != AF_INET && family != AF_INET6) || rate == 0) {
		t->stats.sent++;
		return RRL_SEND;
	}
	struct rrl_entry *e = lookup(t, network_key(family, addr), now_ms, rate);
	int64_t full = (int64_t)rate * TOKEN;
	if (now_ms > e->last_ms) {
		/* Capped before multiplying: an idle hour must not overflow. */
		uint64_t elapsed = now_ms - e->last_ms;
		if (elapsed > 1000)
			elapsed = 1000;
		e->tokens += (int64_t)elapsed * rate;
		if (e->tokens > full)
			e->tokens = full;
		e->last_ms = now_ms;
	}
	/* A lower rate after a reload applies at once. */
	if (e->tokens > full)
		e->tokens = full;
	if (e->tokens >= TOKEN) {
		e->tokens -= TOKEN;
		t->stats.sent++;
		return RRL_SEND;
	}
	e->limited++;
	if (slip && e->limited % slip == 0) {
		t->stats.slipped++;
		return RRL_SLIP;
	}
	t->stats.dropped++;
	return RRL_DROP;
}

enum rrl_verdict rrl_check_peer(struct rrl_table *t, const struct config *cfg,
				const struct sockaddr *peer, uint64_t now_ms)
{
	const uint8_t *addr;
	int family = peer->sa_family;
	if (cfg->rrl_rate == 0)
		return RRL_SEND;
	if (family == AF_INET)
		addr = (const uint8_t *)&((const struct sockaddr_in *)peer)->sin_addr;
	else if (family == AF_INET6)
		addr = (const uint8_t *)&((const struct sockaddr_in6 *)peer)->sin6_addr;
	else
		return RRL_SEND;
	for (size_t i = 0; i < cfg->nrrl_exempt; i++)
		if (config_cidr_match(&cfg->rrl_exempt[i], family, addr))
			return RRL_SEND;
	return rrl_check(t, family, addr, now_ms, cfg->rrl_rate, cfg->rrl_slip);
}

int rrl_truncate(const uint8_t *msg, size_t len, uint8_t *out, size_t cap)
{
	if (len < DNSWIRE_HEADER_LEN)
		return -EINVAL;
	uint16_t qdcount = (uint16_t)(msg[4] << 8 | msg[5]);
	size_t end = DNSWIRE_HEADER_LEN;
	if (qdcount > 1)
		return -EINVAL;
	if (qdcount == 1) {
		/* Our answers carry the question uncompressed, right after the
		 * header. */
		int n = dnswire_read_name(msg, len, DNSWIRE_HEADER_LEN, NULL, 0, &end);
		if (n < 0 || end != DNSWIRE_HEADER_LEN + (size_t)n || len - end < 4)
			return -EINVAL;
		end += 4;
	}
	if (end > cap)
		return -ENOSPC;
	memcpy(out, msg, end);
	out[2] |= DNS_F_TC >> 8;
	memset(out + 6, 0, 6);
	return (int)end;
}
