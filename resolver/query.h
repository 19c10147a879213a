/*
 * query: one client question, from parsed packet to answer.
 *
 * A query classifies its name (zones/qname), starts one lookup per list the
 * view needs, adds up what comes back (zones/score) and answers as soon as the
 * verdict is decided, or at the deadline with what it has. It is freed when it
 * has answered AND every lookup it started has reported back: late lookups
 * still land in the cache, and nobody ever holds a pointer to a freed query.
 */
#ifndef RBLMUX_RESOLVER_QUERY_H
#define RBLMUX_RESOLVER_QUERY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "resolver/arena.h"
#include "resolver/inflight.h"
#include "resolver/lookup.h"
#include "zones/dnswire.h"
#include "zones/qname.h"
#include "zones/score.h"

struct worker;
struct runtime;
struct tcp_conn;
struct udp_sock;

enum query_slot_state { SLOT_PENDING = 0, SLOT_DONE, SLOT_SKIPPED };

struct ptrview_result;
struct spf_verdict;

struct query_slot {
	unsigned src;                 /* index into rt->src (not for the PTR slot) */
	bool is_ptr;                  /* the reverse-DNS check, not a list */
	struct ptrview_result *ptr;   /* its result (arena) */
	bool is_spf;                  /* the SPF check of the spf. view */
	struct spf_verdict *spf;      /* its verdict (arena) */
	uint8_t state;                /* enum query_slot_state */
	uint8_t tier;                 /* enum lookup_tier */
	enum score_outcome outcome;
	int weight;
	uint32_t code;
	const char *failure;          /* static string */
	bool stale;
	uint32_t ttl_left;
	uint64_t latency_us;
	struct listans *ans;          /* pass-through views only (arena) */
	struct inflight_waiter waiter;
};

struct query {
	struct worker *w;
	struct runtime *rt;
	struct dnswire_query dq;
	struct qname_result qr;

	/* where the answer goes */
	struct udp_sock *udp;                /* NULL over TCP */
	struct sockaddr_storage peer;
	struct tcp_conn *conn;        /* referenced while the query lives */

	uint64_t deadline_ms;         /* loop time */
	struct query *dl_prev, *dl_next;
	bool on_deadline_list;
	bool answered;
	unsigned pending;             /* lookups not yet reported back */
	unsigned nslots;
	struct query_slot *slots;
	struct score_tally tally;
	struct arena arena;           /* last: only its header is initialised */
};

/*
 * Handle one received packet. udp/peer or conn says where the answer goes
 * (conn gets a reference if the answer is deferred). Answers immediately
 * when it can; otherwise the query lives on in the worker.
 */
void query_handle_packet(struct worker *w, const uint8_t *pkt, size_t len,
			 struct udp_sock *udp, const struct sockaddr *peer,
			 struct tcp_conn *conn);

/* A lookup reported back (on the query's own loop). */
void query_slot_result(struct query *q, unsigned slot,
		       const struct lookup_result *res);

/* The worker's deadline timer: answer every query whose deadline passed. */
void query_deadline_expired(struct worker *w);

#endif
