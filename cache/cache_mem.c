/*
 * cache_mem: the in-process cache tier (contract in cache.h).
 *
 * The key space is split over 64 shards by the top bits of a keyed hash
 * (SipHash-1-3, seeded from getrandom() per tier, so a client choosing query
 * names cannot pile keys into one shard or one probe run). Each shard has its
 * own mutex, its own linear-probing table and 1/64 of the memory bound, so
 * loop threads rarely meet on a lock and a shard never needs to ask another
 * for room.
 *
 * An entry is one malloc block: a 12-byte header, then key and value inline.
 * A table slot carries the entry pointer plus the hash (with the CLOCK
 * reference bit in its top bit) and stale_until, so that probing past other
 * keys and the CLOCK hand's sweep read only the slot array, not the entries.
 *
 * Memory is accounted as each block's malloc chunk (usable size plus the
 * chunk header) plus the slot array. A put that would go over the shard's
 * budget first evicts. Entries past stale_until go first: the shard keeps a
 * lower bound of its earliest stale_until, and once that has passed, one
 * sweep of the slots drops every dead entry and makes the bound exact again,
 * so nothing is scanned while nothing can be dead. Otherwise the CLOCK hand
 * walks the slots, gives a referenced entry a second chance by clearing its
 * bit, and evicts the first unreferenced one.
 */
#include "cache/cache.h"

#include <endian.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SHARD_BITS 6
#define SHARD_COUNT (1u << SHARD_BITS)
#define TABLE_MIN_SLOTS 16u
#define TABLE_MAX_SLOTS (1u << 30)
#define LIMIT_MIN ((size_t)64 * 1024)

/* Slot tag: the low 31 bits of the hash; the top bit is the CLOCK bit. */
#define TAG_HASH 0x7fffffffu
#define TAG_REFERENCED 0x80000000u

struct mem_entry {
	uint32_t expire;
	uint32_t stored;
	uint16_t key_len;
	uint16_t value_len;
	uint8_t data[];     /* key_len bytes of key, then value_len of value */
};

struct mem_slot {
	struct mem_entry *entry;  /* NULL: empty */
	uint32_t tag;
	uint32_t stale_until;
};

struct mem_shard {
	/* A cache line of its own, so threads on different shards do not
	 * bounce each other's counters. */
	alignas(64) pthread_mutex_t lock;
	struct mem_slot *slots;
	uint32_t mask;            /* slot count - 1; a power of two */
	uint32_t count;
	uint32_t hand;            /* CLOCK hand: a slot index */
	uint32_t next_death;      /* <= every entry's stale_until */
	size_t bytes;             /* entry chunks + slot array */
	size_t budget;
	uint64_t hits, stale_hits, misses, inserts, evictions, drops;
};

struct cache_mem {
	struct cache_tier tier;   /* first, so a tier pointer is the cache */
	uint64_t seed0, seed1;
	/* Puts refused before a shard is known (malformed, out of memory). */
	atomic_uint_fast64_t rejected;
	struct mem_shard shards[SHARD_COUNT];
};

static const struct cache_tier_ops cache_mem_ops;

/* ------------------------------------------------------------ hashing */

static inline uint64_t rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIP_ROUND(v0, v1, v2, v3) do {                             \
	v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32); \
	v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                       \
	v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                       \
	v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32); \
} while (0)

/* SipHash-1-3: one compression round per word is plenty against flooding a
 * hash table, and keeps an 8-byte key at a few nanoseconds. */
static uint64_t siphash13(uint64_t k0, uint64_t k1, const uint8_t *p, size_t len)
{
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k1 ^ 0x7465646279746573ULL;
	const uint8_t *end = p + (len & ~(size_t)7);
	uint64_t m, last = (uint64_t)len << 56;

	for (; p != end; p += 8) {
		memcpy(&m, p, 8);
		m = le64toh(m);
		v3 ^= m;
		SIP_ROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t i = 0; i < (len & 7); i++)
		last |= (uint64_t)p[i] << (8 * i);
	v3 ^= last;
	SIP_ROUND(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ------------------------------------------------------ shard tables */

static inline size_t table_bytes(uint32_t slots)
{
	return (size_t)slots * sizeof(struct mem_slot);
}

/* What the block really takes from the heap: glibc adds one size word. */
static inline size_t entry_cost(struct mem_entry *e)
{
	return malloc_usable_size(e) + sizeof(size_t);
}

/* Linear probing stays short up to 3/4 full. */
static inline uint32_t max_load(uint32_t slots)
{
	return slots - slots / 4;
}

static struct mem_slot *shard_find(struct mem_shard *s, uint32_t tag,
				   const uint8_t *key, size_t key_len)
{
	for (uint32_t i = tag & s->mask;; i = (i + 1) & s->mask) {
		struct mem_slot *slot = &s->slots[i];

		if (!slot->entry)
			return NULL;
		if ((slot->tag & TAG_HASH) == tag && slot->entry->key_len == key_len &&
		    memcmp(slot->entry->data, key, key_len) == 0)
			return slot;
	}
}

/* Place an entry known to be absent; the caller keeps the load in bounds. */
static void shard_place(struct mem_slot *slots, uint32_t mask, struct mem_slot item)
{
	uint32_t i = item.tag & mask;

	while (slots[i].entry)
		i = (i + 1) & mask;
	slots[i] = item;
}

/*
 * Unlink the entry at slot i and return it for the caller to free. Backward
 * shift instead of tombstones, so probe runs never grow with churn: each
 * later entry of the run moves into the hole unless that would put it before
 * its home slot.
 */
static struct mem_entry *shard_unlink(struct mem_shard *s, uint32_t i)
{
	struct mem_entry *e = s->slots[i].entry;
	uint32_t hole = i;

	for (uint32_t j = (i + 1) & s->mask; s->slots[j].entry; j = (j + 1) & s->mask) {
		uint32_t home = s->slots[j].tag & s->mask;

		if (((j - home) & s->mask) >= ((j - hole) & s->mask)) {
			s->slots[hole] = s->slots[j];
			hole = j;
		}
	}
	s->slots[hole] = (struct mem_slot){ 0 };
	s->count--;
	s->bytes -= entry_cost(e);
	return e;
}

static int shard_resize(struct mem_shard *s, uint32_t slots)
{
	struct mem_slot *fresh = calloc(slots, sizeof(*fresh));
	uint32_t old_slots = s->mask + 1;

	if (!fresh)
		return -ENOMEM;
	for (uint32_t i = 0; i < old_slots; i++)
		if (s->slots[i].entry)
			shard_place(fresh, slots - 1, s->slots[i]);
	free(s->slots);
	s->slots = fresh;
	s->mask = slots - 1;
	s->hand &= s->mask;
	s->bytes = s->bytes - table_bytes(old_slots) + table_bytes(slots);
	return 0;
}

/*
 * Drop every entry past stale_until and make next_death exact. After an
 * unlink the same slot is looked at again: the backward shift may have moved
 * an unseen entry into it. Returns how many were dropped.
 */
static uint32_t shard_purge_dead(struct mem_shard *s, uint32_t now)
{
	uint32_t dropped = 0, next = UINT32_MAX;

	for (uint32_t i = 0; i <= s->mask;) {
		struct mem_slot *slot = &s->slots[i];

		if (slot->entry && slot->stale_until <= now) {
			free(shard_unlink(s, i));
			dropped++;
			continue;
		}
		if (slot->entry && slot->stale_until < next)
			next = slot->stale_until;
		i++;
	}
	s->next_death = next;
	s->evictions += dropped;
	return dropped;
}

/*
 * Evict at least one entry (the shard must hold one): the dead if any, else
 * by CLOCK. With now == 0 nothing counts as dead. The hand stays on a freed
 * slot, which the backward shift may have refilled with an unseen entry; it
 * finds a victim within two turns of the table.
 */
static void shard_evict(struct mem_shard *s, uint32_t now)
{
	if (now >= s->next_death && shard_purge_dead(s, now) > 0)
		return;
	for (;;) {
		struct mem_slot *slot = &s->slots[s->hand];

		if (slot->entry && !(slot->tag & TAG_REFERENCED)) {
			free(shard_unlink(s, s->hand));
			s->evictions++;
			return;
		}
		slot->tag &= ~TAG_REFERENCED;
		s->hand = (s->hand + 1) & s->mask;
	}
}

/*
 * Make room for one more entry costing need bytes: grow the table if it is
 * at its load bound and the budget allows, otherwise evict. Returns false
 * when the entry cannot fit even in an empty shard.
 */
static bool shard_make_room(struct mem_shard *s, size_t need, uint32_t now)
{
	uint32_t slots = s->mask + 1;

	if (need > s->budget || table_bytes(slots) > s->budget - need)
		return false;
	if (s->count + 1 > max_load(slots)) {
		size_t growth = table_bytes(slots);
		bool grown = false;

		if (slots < TABLE_MAX_SLOTS && s->bytes <= s->budget - need &&
		    growth <= s->budget - need - s->bytes)
			grown = shard_resize(s, slots * 2) == 0;
		if (!grown)
			shard_evict(s, now);
	}
	/* Terminates: with no entry left, bytes is the table, which fits. */
	while (s->bytes > s->budget || need > s->budget - s->bytes)
		shard_evict(s, now);
	return true;
}

static void shard_free_entries(struct mem_shard *s)
{
	for (uint32_t i = 0; i <= s->mask; i++)
		free(s->slots[i].entry);
}

static inline struct mem_shard *shard_of(struct cache_mem *m, uint64_t hash)
{
	return &m->shards[hash >> (64 - SHARD_BITS)];
}

static struct cache_mem *mem_of(struct cache_tier *t)
{
	return t && t->ops == &cache_mem_ops ? (struct cache_mem *)t : NULL;
}

/* ------------------------------------------------------------ the ops */

static int cache_mem_get(struct cache_tier *t, const uint8_t *key, size_t key_len,
			 uint32_t now, struct cache_item *item, cache_get_cb cb, void *arg)
{
	struct cache_mem *m = (struct cache_mem *)t;
	struct mem_entry *dead = NULL;
	enum cache_status status = CACHE_MISS;

	if (!key || key_len == 0 || key_len > CACHE_KEY_MAX || !item)
		return -EINVAL;

	uint64_t hash = siphash13(m->seed0, m->seed1, key, key_len);
	struct mem_shard *s = shard_of(m, hash);
	uint32_t tag = (uint32_t)hash & TAG_HASH;

	pthread_mutex_lock(&s->lock);
	struct mem_slot *slot = shard_find(s, tag, key, key_len);
	if (!slot) {
		s->misses++;
	} else if (now >= slot->stale_until) {
		dead = shard_unlink(s, (uint32_t)(slot - s->slots));
		s->misses++;
	} else {
		struct mem_entry *e = slot->entry;

		status = now < e->expire ? CACHE_HIT : CACHE_STALE;
		/* Test first: a hot entry's slot line then stays clean. */
		if (!(slot->tag & TAG_REFERENCED))
			slot->tag |= TAG_REFERENCED;
		item->expire = e->expire;
		item->stale_until = slot->stale_until;
		item->stored = e->stored;
		item->len = e->value_len;
		memcpy(item->value, e->data + e->key_len, e->value_len);
		if (status == CACHE_HIT)
			s->hits++;
		else
			s->stale_hits++;
	}
	pthread_mutex_unlock(&s->lock);
	free(dead);
	return status;
}

/*
 * A stale_until before expire is read as "no stale period": the entry is
 * fresh until expire as the caller said, then gone. A put that stores
 * nothing (already past stale_until, or too big for the shard) still
 * replaces: the key then misses rather than serving the superseded value.
 */
static void cache_mem_put(struct cache_tier *t, const uint8_t *key, size_t key_len,
			  const uint8_t *value, size_t len, uint32_t now,
			  uint32_t expire, uint32_t stale_until)
{
	struct cache_mem *m = (struct cache_mem *)t;
	struct mem_entry *e = NULL, *old = NULL;
	uint32_t referenced = 0;

	if (!key || key_len == 0 || key_len > CACHE_KEY_MAX || len > CACHE_VALUE_MAX ||
	    (len && !value)) {
		atomic_fetch_add_explicit(&m->rejected, 1, memory_order_relaxed);
		return;
	}
	if (stale_until < expire)
		stale_until = expire;

	uint64_t hash = siphash13(m->seed0, m->seed1, key, key_len);
	struct mem_shard *s = shard_of(m, hash);
	uint32_t tag = (uint32_t)hash & TAG_HASH;

	/* Allocate and fill outside the lock: only linking needs it. */
	if (stale_until > now) {
		e = malloc(offsetof(struct mem_entry, data) + key_len + len);
		if (!e) {
			atomic_fetch_add_explicit(&m->rejected, 1, memory_order_relaxed);
			return;
		}
		e->expire = expire;
		e->stored = now;
		e->key_len = (uint16_t)key_len;
		e->value_len = (uint16_t)len;
		memcpy(e->data, key, key_len);
		if (len)
			memcpy(e->data + key_len, value, len);
	}

	pthread_mutex_lock(&s->lock);
	struct mem_slot *slot = shard_find(s, tag, key, key_len);
	if (slot) {
		/* A replacement keeps the old entry's claim to a second chance. */
		referenced = slot->tag & TAG_REFERENCED;
		old = shard_unlink(s, (uint32_t)(slot - s->slots));
	}
	if (e) {
		size_t need = entry_cost(e);

		if (shard_make_room(s, need, now)) {
			shard_place(s->slots, s->mask, (struct mem_slot){
				.entry = e, .tag = tag | referenced, .stale_until = stale_until });
			s->count++;
			s->bytes += need;
			if (stale_until < s->next_death)
				s->next_death = stale_until;
			s->inserts++;
			e = NULL;
		} else {
			s->drops++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	free(old);
	free(e);
}

static void cache_mem_destroy(struct cache_tier *t)
{
	struct cache_mem *m = mem_of(t);

	if (!m)
		return;
	for (unsigned i = 0; i < SHARD_COUNT; i++) {
		shard_free_entries(&m->shards[i]);
		free(m->shards[i].slots);
		pthread_mutex_destroy(&m->shards[i].lock);
	}
	free(m);
}

static const struct cache_tier_ops cache_mem_ops = {
	.name = "mem",
	.get = cache_mem_get,
	.put = cache_mem_put,
	.destroy = cache_mem_destroy,
};

/* ------------------------------------------------------ the mem API */

struct cache_tier *cache_mem_new(size_t limit_bytes)
{
	struct cache_mem *m;
	uint64_t seed[2];
	unsigned ready = 0;

	if (limit_bytes < LIMIT_MIN)
		return NULL;
	/* A guessable seed would let query names flood one probe run. */
	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		return NULL;
	/* sizeof is a multiple of the 64-byte alignment, as aligned_alloc wants. */
	m = aligned_alloc(alignof(struct cache_mem), sizeof(*m));
	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->tier.ops = &cache_mem_ops;
	m->seed0 = seed[0];
	m->seed1 = seed[1];
	atomic_init(&m->rejected, 0);
	for (; ready < SHARD_COUNT; ready++) {
		struct mem_shard *s = &m->shards[ready];

		s->slots = calloc(TABLE_MIN_SLOTS, sizeof(*s->slots));
		if (!s->slots)
			goto fail;
		if (pthread_mutex_init(&s->lock, NULL) != 0) {
			free(s->slots);
			goto fail;
		}
		s->mask = TABLE_MIN_SLOTS - 1;
		s->next_death = UINT32_MAX;
		s->budget = limit_bytes / SHARD_COUNT;
		s->bytes = table_bytes(TABLE_MIN_SLOTS);
	}
	return &m->tier;

fail:
	while (ready--) {
		free(m->shards[ready].slots);
		pthread_mutex_destroy(&m->shards[ready].lock);
	}
	free(m);
	return NULL;
}

void cache_mem_get_stats(struct cache_tier *t, struct cache_mem_stats *out)
{
	struct cache_mem *m = mem_of(t);

	memset(out, 0, sizeof(*out));
	if (!m)
		return;
	out->drops = atomic_load_explicit(&m->rejected, memory_order_relaxed);
	for (unsigned i = 0; i < SHARD_COUNT; i++) {
		struct mem_shard *s = &m->shards[i];

		pthread_mutex_lock(&s->lock);
		out->entries += s->count;
		out->bytes += s->bytes;
		out->hits += s->hits;
		out->stale_hits += s->stale_hits;
		out->misses += s->misses;
		out->inserts += s->inserts;
		out->evictions += s->evictions;
		out->drops += s->drops;
		pthread_mutex_unlock(&s->lock);
	}
}

/*
 * Shrinking the table loses nothing, so a shard over its new budget halves
 * its table when the entries would still fit, and evicts only otherwise.
 * Expiry is not known here (no clock), so eviction is plain CLOCK.
 */
void cache_mem_set_limit(struct cache_tier *t, size_t limit_bytes)
{
	struct cache_mem *m = mem_of(t);

	if (!m)
		return;
	if (limit_bytes < LIMIT_MIN)
		limit_bytes = LIMIT_MIN;
	for (unsigned i = 0; i < SHARD_COUNT; i++) {
		struct mem_shard *s = &m->shards[i];

		pthread_mutex_lock(&s->lock);
		s->budget = limit_bytes / SHARD_COUNT;
		while (s->bytes > s->budget) {
			uint32_t slots = s->mask + 1;

			if (slots > TABLE_MIN_SLOTS && s->count <= max_load(slots / 2) &&
			    shard_resize(s, slots / 2) == 0)
				continue;
			/* Only an out-of-memory shrink leaves nothing to evict. */
			if (s->count == 0)
				break;
			shard_evict(s, 0);
		}
		pthread_mutex_unlock(&s->lock);
	}
}

void cache_mem_clear(struct cache_tier *t)
{
	struct cache_mem *m = mem_of(t);

	if (!m)
		return;
	for (unsigned i = 0; i < SHARD_COUNT; i++) {
		struct mem_shard *s = &m->shards[i];
		struct mem_slot *fresh = calloc(TABLE_MIN_SLOTS, sizeof(*fresh));

		pthread_mutex_lock(&s->lock);
		shard_free_entries(s);
		if (fresh) {
			free(s->slots);
			s->slots = fresh;
			s->mask = TABLE_MIN_SLOTS - 1;
		} else {
			memset(s->slots, 0, table_bytes(s->mask + 1));
		}
		s->count = 0;
		s->hand = 0;
		s->next_death = UINT32_MAX;
		s->bytes = table_bytes(s->mask + 1);
		pthread_mutex_unlock(&s->lock);
	}
}
