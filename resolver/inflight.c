/*
 * A small chained hash table under one mutex per stripe. Lookups in flight
 * number in the hundreds at most (the cache answers the rest), so a fixed
 * table is plenty.
 */
#include "resolver/inflight.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define INFLIGHT_STRIPES 64
#define INFLIGHT_BUCKETS 1024 /* per stripe */

struct inflight_entry {
	struct inflight_entry *next;
	struct inflight_waiter *head, *tail;
	uint16_t key_len;
	uint8_t key[];
};

struct inflight_stripe {
	pthread_mutex_t lock;
	struct inflight_entry *buckets[INFLIGHT_BUCKETS];
};

struct inflight_table {
	struct inflight_stripe stripes[INFLIGHT_STRIPES];
};

/* FNV-1a: keys come from names we built, an attacker choosing IPs can at
 * worst lengthen one chain among entries that live a few milliseconds. */
static uint32_t key_hash(const uint8_t *key, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

struct inflight_table *inflight_new(void)
{
	struct inflight_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	for (size_t i = 0; i < INFLIGHT_STRIPES; i++)
		pthread_mutex_init(&t->stripes[i].lock, NULL);
	return t;
}

void inflight_free(struct inflight_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < INFLIGHT_STRIPES; i++) {
		struct inflight_stripe *s = &t->stripes[i];
		for (size_t b = 0; b < INFLIGHT_BUCKETS; b++) {
			struct inflight_entry *e = s->buckets[b];
			while (e) {
				struct inflight_entry *next = e->next;
				free(e);
				e = next;
			}
		}
		pthread_mutex_destroy(&s->lock);
	}
	free(t);
}

static struct inflight_entry **find(struct inflight_stripe *s, uint32_t h,
				    const uint8_t *key, size_t key_len)
{
	struct inflight_entry **pp = &s->buckets[(h >> 6) % INFLIGHT_BUCKETS];
	while (*pp && !((*pp)->key_len == key_len && memcmp((*pp)->key, key, key_len) == 0))
		pp = &(*pp)->next;
	return pp;
}

int inflight_join(struct inflight_table *t, const uint8_t *key, size_t key_len,
		  struct inflight_waiter *w)
{
	uint32_t h = key_hash(key, key_len);
	struct inflight_stripe *s = &t->stripes[h % INFLIGHT_STRIPES];
	int rc;
	w->next = NULL;
	pthread_mutex_lock(&s->lock);
	struct inflight_entry **pp = find(s, h, key, key_len);
	if (*pp) {
		(*pp)->tail->next = w;
		(*pp)->tail = w;
		rc = 0;
	} else {
		struct inflight_entry *e = malloc(sizeof(*e) + key_len);
		if (!e) {
			rc = -ENOMEM;
		} else {
			e->next = NULL;
			e->head = e->tail = w;
			e->key_len = (uint16_t)key_len;
			memcpy(e->key, key, key_len);
			*pp = e;
			rc = 1;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

struct inflight_waiter *inflight_finish(struct inflight_table *t,
					const uint8_t *key, size_t key_len)
{
	uint32_t h = key_hash(key, key_len);
	struct inflight_stripe *s = &t->stripes[h % INFLIGHT_STRIPES];
	struct inflight_waiter *list = NULL;
	pthread_mutex_lock(&s->lock);
	struct inflight_entry **pp = find(s, h, key, key_len);
	struct inflight_entry *e = *pp;
	if (e) {
		*pp = e->next;
		list = e->head;
	}
	pthread_mutex_unlock(&s->lock);
	free(e);
	return list;
}
