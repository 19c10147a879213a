#include "resolver/arena.h"

#include <stdlib.h>
#include <string.h>

struct arena_block {
	struct arena_block *next;
	size_t size;
	_Alignas(16) uint8_t data[];
};

void arena_init(struct arena *a)
{
	a->extra = NULL;
	a->cur = a->first;
	a->left = sizeof(a->first);
}

void *arena_alloc(struct arena *a, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	uintptr_t misalign = (uintptr_t)a->cur & 15;
	if (misalign) {
		size_t pad = 16 - misalign;
		if (pad > a->left)
			a->left = 0;
		else {
			a->cur += pad;
			a->left -= pad;
		}
	}
	if (size > a->left) {
		/* Blocks grow with the request so one big allocation doesn't
		 * waste the rest of a small block. */
		size_t bsize = size > 4096 ? size : 4096;
		struct arena_block *b = malloc(sizeof(*b) + bsize);
		if (!b)
			return NULL;
		b->next = a->extra;
		b->size = bsize;
		a->extra = b;
		a->cur = b->data;
		a->left = bsize;
	}
	void *p = a->cur;
	a->cur += size;
	a->left -= size;
	memset(p, 0, size);
	return p;
}

void arena_release(struct arena *a)
{
	struct arena_block *b = a->extra;
	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	arena_init(a);
}
