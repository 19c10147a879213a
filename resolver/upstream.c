/*
 * upstream: c-ares channels driven by a libuv loop, with a cap on questions
 * in flight per channel, a FIFO queue behind it, and a hard deadline per
 * question of our own: c-ares 1.18 cannot cancel one query, and its retry
 * timing is its own business, so a question past its deadline is answered
 * "timeout" at once and the c-ares query left to die quietly (it keeps its
 * slot until then: the server may still be working on it).
 *
 * Every question of a channel has the same timeout, so deadlines are in the
 * order questions were asked: one list per channel in that order and one
 * uv_timer on its head replace a timer per question.
 */
#include "resolver/upstream.h"

#include <ares.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "zones/dnswire.h"

/* 10,000 answers arriving at once overflow the default socket buffer. */
#define UPSTREAM_RCVBUF (4 * 1024 * 1024)
/* DNS flag day 2020: answers that never need IP fragmentation. */
#define UPSTREAM_EDNS_SIZE 1232
/* c-ares asks each server this many times; per-try timeouts double per round. */
#define UPSTREAM_TRIES 2
/* One bit per letter: 256 letters covers any name. */
#define UPSTREAM_CASE_RND 32
#define UPSTREAM_RND_POOL 4096
/* Header, name, type and class, and an 11-byte OPT record without options. */
#define UPSTREAM_QUERY_MAX (DNSWIRE_HEADER_LEN + DNSWIRE_NAME_MAX + 4 + 11)

struct ulink {
	struct ulink *prev, *next;
};

static void ulist_init(struct ulink *h)
{
	h->prev = h->next = h;
}

static bool ulist_empty(const struct ulink *h)
{
	return h->next == h;
}

static void ulist_push(struct ulink *h, struct ulink *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static void ulist_del(struct ulink *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* Move every element of src to the empty list dst. */
static void ulist_move(struct ulink *dst, struct ulink *src)
{
	ulist_init(dst);
	if (ulist_empty(src))
		return;
	dst->next = src->next;
	dst->prev = src->prev;
	dst->next->prev = dst;
	dst->prev->next = dst;
	ulist_init(src);
}

#define UCONTAINER(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

enum req_state {
	REQ_QUEUED,    /* waiting for a slot: in ch->queue and ch->live */
	REQ_SENDING,   /* inside ares_send: a callback now would be synchronous */
	REQ_INFLIGHT,  /* at c-ares, caller waiting: in ch->live */
	REQ_ABANDONED, /* at c-ares, caller already told "timeout" */
	REQ_DEFERRED,  /* decided, caller told on the next loop turn: in p->deferred */
};

struct upstream_req {
	struct ulink node;  /* ch->live, or p->deferred */
	struct ulink queue; /* ch->queue while REQ_QUEUED */
	struct upstream_chan *ch;
	upstream_cb cb;
	upstream_raw_cb raw_cb; /* instead of cb: upstream_query_raw */
	void *arg;
	uint64_t deadline_ms; /* loop time */
	uint64_t start_ns, sent_ns;
	enum req_state state;
	uint8_t deferred_status, deferred_rcode;
	uint16_t qtype;
	uint16_t id_seed;
	uint16_t id;
	uint16_t name_len;
	uint16_t pkt_len;
	/* The query as sent; its name (at DNSWIRE_QNAME_OFF) has the random
	 * case the answer must echo. */
	uint8_t pkt[UPSTREAM_QUERY_MAX];
};

struct upstream_sock {
	struct ulink node; /* ch->socks */
	struct upstream_chan *ch;
	ares_socket_t fd;
	uv_poll_t poll;
};

struct upstream_chan {
	struct ulink node; /* p->chans */
	struct upstream_pool *pool;
	char *servers;       /* key: "system" or the csv as given */
	uint32_t timeout_ms; /* key */
	ares_channel ares;   /* NULL once destroyed */
	uv_timer_t ares_timer;     /* c-ares' retransmissions */
	uv_timer_t deadline_timer; /* the head of live */
	struct ulink live;   /* undecided questions, oldest (first deadline) first */
	struct ulink queue;  /* waiting for a slot, FIFO */
	struct ulink socks;
	unsigned inflight;   /* at c-ares, abandoned ones included */
	bool timer_dirty;
	bool pumping;
	/* IDs of the queries at c-ares: c-ares 1.18's ares_send keeps the
	 * caller's ID, and matches answers on ID and question. */
	uint8_t ids_used[65536 / 8];
};

struct upstream_pool {
	uv_loop_t *loop;
	unsigned max_inflight;
	struct ulink chans;
	struct ulink deferred;
	uv_prepare_t prepare; /* re-arms c-ares timers once per loop turn */
	uv_idle_t idle;       /* deferred callbacks, and the teardown */
	unsigned open_handles;
	bool closing, torn_down;
	struct upstream_stats stats;
	size_t rnd_pos;
	uint8_t rnd[UPSTREAM_RND_POOL];
};

static void ares_answer_cb(void *arg, int status, int timeouts,
			   unsigned char *abuf, int alen);
static void chan_pump(struct upstream_chan *ch);

/* ------------------------------------------------------------ randomness */

/* The kernel's CSPRNG, read in batches: unpredictable case and IDs at the cost
 * of one syscall per hundred questions. */
static int rnd_refill(struct upstream_pool *p)
{
	size_t got = 0;
	while (got < sizeof(p->rnd)) {
		ssize_t r = getrandom(p->rnd + got, sizeof(p->rnd) - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	p->rnd_pos = 0;
	return 0;
}

static int rnd_take(struct upstream_pool *p, uint8_t *out, size_t n)
{
	if (p->rnd_pos + n > sizeof(p->rnd)) {
		int rc = rnd_refill(p);
		if (rc < 0)
			return rc;
	}
	memcpy(out, p->rnd + p->rnd_pos, n);
	p->rnd_pos += n;
	return 0;
}

/* -------------------------------------------------------------- handles */

static void pool_free(struct upstream_pool *p)
{
	while (!ulist_empty(&p->chans)) {
		struct upstream_chan *ch = UCONTAINER(p->chans.next, struct upstream_chan, node);
		ulist_del(&ch->node);
		free(ch->servers);
		free(ch);
	}
	free(p);
}

static void handle_closed(struct upstream_pool *p)
{
	if (--p->open_handles == 0 && p->torn_down)
		pool_free(p);
}

static void pool_handle_close_cb(uv_handle_t *h)
{
	handle_closed(h->data);
}

static void sock_close_cb(uv_handle_t *h)
{
	struct upstream_sock *s = h->data;
	struct upstream_pool *p = s->ch->pool;
	free(s);
	handle_closed(p);
}

static void sock_close(struct upstream_sock *s)
{
	ulist_del(&s->node);
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, sock_close_cb);
}

static void prepare_cb(uv_prepare_t *h);

static void chan_mark_dirty(struct upstream_chan *ch)
{
	ch->timer_dirty = true;
	uv_prepare_start(&ch->pool->prepare, prepare_cb);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct upstream_sock *s = h->data;
	struct upstream_chan *ch = s->ch;
	/* On a poll error c-ares reads or writes, sees the error itself and
	 * moves the queries on. */
	ares_socket_t rfd = (status < 0 || (events & UV_READABLE)) ? s->fd : ARES_SOCKET_BAD;
	ares_socket_t wfd = (status < 0 || (events & UV_WRITABLE)) ? s->fd : ARES_SOCKET_BAD;
	ares_process_fd(ch->ares, rfd, wfd);
	chan_mark_dirty(ch);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct upstream_chan *ch = data;
	struct upstream_pool *p = ch->pool;
	struct upstream_sock *s = NULL;

	for (struct ulink *l = ch->socks.next; l != &ch->socks; l = l->next) {
		struct upstream_sock *it = UCONTAINER(l, struct upstream_sock, node);
		if (it->fd == fd) {
			s = it;
			break;
		}
	}
	if (!readable && !writable) {
		if (s)
			sock_close(s);
		return;
	}
	if (!s) {
		/* Without a watcher the socket's queries end by c-ares' timeout or
		 * our deadline: slower, still exactly one answer each. */
		s = calloc(1, sizeof(*s));
		if (!s)
			return;
		if (uv_poll_init(p->loop, &s->poll, fd) != 0) {
			free(s);
			return;
		}
		s->ch = ch;
		s->fd = fd;
		s->poll.data = s;
		p->open_handles++;
		ulist_push(&ch->socks, &s->node);
		/* Questions keep the loop alive through their deadline timer;
		 * an idle socket must not. */
		uv_unref((uv_handle_t *)&s->poll);
	}
	int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
	if (uv_poll_start(&s->poll, events, poll_cb) != 0)
		sock_close(s);
}

static void ares_timer_cb(uv_timer_t *t)
{
	struct upstream_chan *ch = t->data;
	ares_process_fd(ch->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	chan_mark_dirty(ch);
}

/* ares_timeout() walks every query: asked once per loop turn per channel
 * that changed, just before the loop would block. */
static void prepare_cb(uv_prepare_t *h)
{
	struct upstream_pool *p = h->data;
	uv_prepare_stop(h);
	for (struct ulink *l = p->chans.next; l != &p->chans; l = l->next) {
		struct upstream_chan *ch = UCONTAINER(l, struct upstream_chan, node);
		if (!ch->timer_dirty || !ch->ares)
			continue;
		ch->timer_dirty = false;
		struct timeval tv;
		if (!ares_timeout(ch->ares, NULL, &tv)) {
			uv_timer_stop(&ch->ares_timer);
			continue;
		}
		/* Rounded up: waking before c-ares' deadline would only spin. */
		uint64_t ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
		uv_timer_start(&ch->ares_timer, ares_timer_cb, ms, 0);
	}
}

/* -------------------------------------------------------------- answers */

static void answer_set_status(struct listans *a, enum listans_status st, uint8_t rcode)
{
	memset(a, 0, sizeof(*a));
	a->status = (uint8_t)st;
	a->rcode = rcode;
}

/* What a c-ares status without an answer packet means for the lists. */
static void answer_from_ares(struct listans *a, int status)
{
	switch (status) {
	case ARES_ETIMEOUT:
	case ARES_EDESTRUCTION:
	case ARES_ECANCELLED:
		answer_set_status(a, LISTANS_TIMEOUT, 0);
		break;
	case ARES_ESERVFAIL:
		answer_set_status(a, LISTANS_SERVFAIL, DNS_R_SERVFAIL);
		break;
	case ARES_EREFUSED:
		answer_set_status(a, LISTANS_SERVFAIL, DNS_R_REFUSED);
		break;
	case ARES_ENOTIMP:
		answer_set_status(a, LISTANS_SERVFAIL, DNS_R_NOTIMP);
		break;
	default:
		/* ECONNREFUSED, ENOMEM, socket errors: could not ask. */
		answer_set_status(a, LISTANS_SERVFAIL, 0);
		break;
	}
}

/* Every answer counts in exactly one of answered, timeouts, errors, bad. */
static void stats_count(struct upstream_stats *s, const struct listans *a,
			bool from_packet)
{
	if (a->status == LISTANS_TIMEOUT)
		s->timeouts++;
	else if (a->status == LISTANS_BAD)
		s->bad++;
	else if (!from_packet)
		s->errors++;
	else
		s->answered++;
}

static void req_deliver_pkt(struct upstream_req *req, const struct listans *a,
			    bool from_packet, const uint8_t *pkt, size_t len)
{
	struct upstream_pool *p = req->ch->pool;
	uint64_t since = req->sent_ns ? req->sent_ns : req->start_ns;
	uint64_t latency_us = (uv_hrtime() - since) / 1000;
	upstream_cb cb = req->cb;
	upstream_raw_cb raw_cb = req->raw_cb;
	req->cb = NULL;
	req->raw_cb = NULL;
	stats_count(&p->stats, a, from_packet);
	if (raw_cb)
		raw_cb(req->arg, (enum listans_status)a->status,
		       a->status == LISTANS_BAD ? NULL : pkt,
		       a->status == LISTANS_BAD ? 0 : len, latency_us);
	else
		cb(req->arg, a, latency_us);
}

static void req_deliver(struct upstream_req *req, const struct listans *a,
			bool from_packet)
{
	req_deliver_pkt(req, a, from_packet, NULL, 0);
}

/* Leave the deadline order; a timer with nothing left to guard must not keep
 * the loop alive. */
static void req_unlive(struct upstream_req *req)
{
	struct upstream_chan *ch = req->ch;
	ulist_del(&req->node);
	if (ulist_empty(&ch->live))
		uv_timer_stop(&ch->deadline_timer);
}

static void idle_cb(uv_idle_t *h);

static void req_defer(struct upstream_req *req, const struct listans *a)
{
	struct upstream_pool *p = req->ch->pool;
	req->state = REQ_DEFERRED;
	req->deferred_status = a->status;
	req->deferred_rcode = a->rcode;
	ulist_push(&p->deferred, &req->node);
	uv_idle_start(&p->idle, idle_cb);
}

static void req_deliver_deferred(struct upstream_req *req)
{
	struct listans a;
	answer_set_status(&a, req->deferred_status, req->deferred_rcode);
	req_deliver(req, &a, false);
	free(req);
}

static void id_release(struct upstream_chan *ch, uint16_t id)
{
	ch->ids_used[id >> 3] &= (uint8_t)~(1u << (id & 7));
}

/* A random ID not in use at this channel, probing on from a random start:
 * with max_inflight in the hundreds the probe is almost always one step. */
static uint16_t id_pick(struct upstream_chan *ch, uint16_t seed)
{
	uint16_t id = seed;
	while (ch->ids_used[id >> 3] & (1u << (id & 7)))
		id++;
	ch->ids_used[id >> 3] |= (uint8_t)(1u << (id & 7));
	return id;
}

static void req_send(struct upstream_req *req)
{
	struct upstream_chan *ch = req->ch;
	struct upstream_pool *p = ch->pool;

	req->id = id_pick(ch, req->id_seed);
	req->pkt[0] = (uint8_t)(req->id >> 8);
	req->pkt[1] = (uint8_t)req->id;
	ch->inflight++;
	p->stats.inflight++;
	p->stats.sent++;
	req->state = REQ_SENDING;
	req->sent_ns = uv_hrtime();
	ares_send(ch->ares, req->pkt, req->pkt_len, ares_answer_cb, req);
	if (req->state == REQ_SENDING)
		req->state = REQ_INFLIGHT;
	chan_mark_dirty(ch);
}

/* Send queued questions while there are slots. Re-entry (a callback during
 * ares_send) leaves the work to the outer loop, keeping FIFO order. */
static void chan_pump(struct upstream_chan *ch)
{
	struct upstream_pool *p = ch->pool;
	if (ch->pumping)
		return;
	ch->pumping = true;
	while (!p->closing && ch->inflight < p->max_inflight && !ulist_empty(&ch->queue)) {
		struct upstream_req *req = UCONTAINER(ch->queue.next, struct upstream_req, queue);
		ulist_del(&req->queue);
		p->stats.queued--;
		req_send(req);
	}
	ch->pumping = false;
}

static void ares_answer_cb(void *arg, int status, int timeouts,
			   unsigned char *abuf, int alen)
{
	struct upstream_req *req = arg;
	struct upstream_chan *ch = req->ch;
	struct upstream_pool *p = ch->pool;
	struct listans a;

	ch->inflight--;
	p->stats.inflight--;
	id_release(ch, req->id);

	switch (req->state) {
	case REQ_SENDING:
		/* c-ares gave up inside ares_send (no socket, no memory): the
		 * caller must not hear of it before upstream_query returns. */
		req_unlive(req);
		answer_from_ares(&a, status);
		req_defer(req, &a);
		return;
	case REQ_ABANDONED:
		free(req);
		chan_pump(ch);
		return;
	case REQ_INFLIGHT:
		break;
	default:
		/* c-ares only holds questions that were sent. */
		return;
	}

	req_unlive(req);
	bool from_packet = status == ARES_SUCCESS && abuf && alen > 0;
	if (from_packet) {
		if (listans_parse(abuf, (size_t)alen, req->pkt + DNSWIRE_QNAME_OFF,
				  req->name_len, req->qtype, &a) < 0)
			answer_set_status(&a, LISTANS_BAD, 0);
	} else {
		answer_from_ares(&a, status);
	}
	/* Queued questions go out before the caller may ask new ones. */
	chan_pump(ch);
	req_deliver_pkt(req, &a, from_packet, abuf, from_packet ? (size_t)alen : 0);
	free(req);
}

static void deadline_cb(uv_timer_t *t)
{
	struct upstream_chan *ch = t->data;
	struct upstream_pool *p = ch->pool;
	uint64_t now = uv_now(p->loop);
	struct listans a;

	answer_set_status(&a, LISTANS_TIMEOUT, 0);
	while (!ulist_empty(&ch->live)) {
		struct upstream_req *req = UCONTAINER(ch->live.next, struct upstream_req, node);
		if (req->deadline_ms > now) {
			uv_timer_start(&ch->deadline_timer, deadline_cb,
				       req->deadline_ms - now, 0);
			return;
		}
		req_unlive(req);
		if (req->state == REQ_QUEUED) {
			ulist_del(&req->queue);
			p->stats.queued--;
			req_deliver(req, &a, false);
			free(req);
		} else {
			req->state = REQ_ABANDONED;
			req_deliver(req, &a, false);
		}
	}
}

/* ------------------------------------------------------------- channels */

static unsigned ares_server_count(ares_channel a)
{
	struct ares_addr_port_node *servers = NULL;
	unsigned n = 0;
	if (ares_get_servers_ports(a, &servers) != ARES_SUCCESS)
		return 0;
	for (struct ares_addr_port_node *s = servers; s; s = s->next)
		n++;
	ares_free_data(servers);
	return n;
}

static int ares_open(struct upstream_chan *ch, unsigned nservers, ares_channel *out)
{
	struct ares_options o;
	ares_channel a;
	int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
		   ARES_OPT_SOCK_STATE_CB | ARES_OPT_SOCK_RCVBUF | ARES_OPT_EDNSPSZ;

	memset(&o, 0, sizeof(o));
	/* EDNS: c-ares accepts UDP answers up to ednspsz; our queries carry
	 * their own 11-byte OPT, which c-ares strips itself if a server answers
	 * FORMERR without one. */
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS;
	/* With one server a SERVFAIL or REFUSED is the answer: hand it over
	 * (its question is checked) instead of asking the same server again.
	 * With several, c-ares moves on to the next. */
	if (nservers == 1)
		o.flags |= ARES_FLAG_NOCHECKRESP;
	o.ednspsz = UPSTREAM_EDNS_SIZE;
	/* Per-try timeouts double per round over the servers: n servers and
	 * two tries take n*T + 2*n*T in all, which should fit timeout_ms (our
	 * deadline enforces it anyway). */
	unsigned t = ch->timeout_ms / (3 * (nservers ? nservers : 1));
	o.timeout = t ? (int)t : 1;
	o.tries = UPSTREAM_TRIES;
	o.sock_state_cb = sock_state_cb;
	o.sock_state_cb_data = ch;
	o.socket_receive_buffer_size = UPSTREAM_RCVBUF;

	int rc = ares_init_options(&a, &o, mask);
	if (rc != ARES_SUCCESS)
		return rc == ARES_ENOMEM ? -ENOMEM : -EIO;
	if (strcmp(ch->servers, "system") != 0) {
		rc = ares_set_servers_ports_csv(a, ch->servers);
		if (rc != ARES_SUCCESS) {
			ares_destroy(a);
			return rc == ARES_ENOMEM ? -ENOMEM : -EINVAL;
		}
	}
	*out = a;
	return 0;
}

static int chan_new(struct upstream_pool *p, const char *servers,
		    uint32_t timeout_ms, struct upstream_chan **out)
{
	struct upstream_chan *ch = calloc(1, sizeof(*ch));
	ares_channel a = NULL;
	int rc = -ENOMEM;

	if (!ch)
		return -ENOMEM;
	ch->pool = p;
	ch->timeout_ms = timeout_ms;
	ulist_init(&ch->live);
	ulist_init(&ch->queue);
	ulist_init(&ch->socks);
	ch->servers = strdup(servers);
	if (!ch->servers)
		goto fail;

	/* Options depend on the number of servers, known only once c-ares has
	 * read them: open for the usual single server, reopen if not. No query
	 * has been sent, so no socket or callback exists yet. */
	rc = ares_open(ch, 1, &a);
	if (rc < 0)
		goto fail;
	unsigned n = ares_server_count(a);
	if (n == 0) {
		rc = -EINVAL;
		goto fail;
	}
	if (n != 1) {
		ares_destroy(a);
		a = NULL;
		rc = ares_open(ch, n, &a);
		if (rc < 0)
			goto fail;
	}
	ch->ares = a;

	/* uv_timer_init cannot fail. */
	uv_timer_init(p->loop, &ch->ares_timer);
	uv_timer_init(p->loop, &ch->deadline_timer);
	ch->ares_timer.data = ch;
	ch->deadline_timer.data = ch;
	uv_unref((uv_handle_t *)&ch->ares_timer);
	p->open_handles += 2;
	ulist_push(&p->chans, &ch->node);
	*out = ch;
	return 0;

fail:
	if (a)
		ares_destroy(a);
	free(ch->servers);
	free(ch);
	return rc;
}

static struct upstream_chan *chan_find(struct upstream_pool *p, const char *servers,
				       uint32_t timeout_ms)
{
	for (struct ulink *l = p->chans.next; l != &p->chans; l = l->next) {
		struct upstream_chan *ch = UCONTAINER(l, struct upstream_chan, node);
		if (ch->timeout_ms == timeout_ms && strcmp(ch->servers, servers) == 0)
			return ch;
	}
	return NULL;
}

/* ----------------------------------------------------------------- pool */

static void pool_teardown(struct upstream_pool *p)
{
	struct listans a;

	p->torn_down = true;
	/* c-ares answers its queries ARES_EDESTRUCTION (a timeout for the
	 * caller) and closes its sockets through sock_state_cb. */
	for (struct ulink *l = p->chans.next; l != &p->chans; l = l->next) {
		struct upstream_chan *ch = UCONTAINER(l, struct upstream_chan, node);
		ares_channel ares = ch->ares;
		if (ares)
			ares_destroy(ares);
		ch->ares = NULL;
	}
	answer_set_status(&a, LISTANS_TIMEOUT, 0);
	for (struct ulink *l = p->chans.next; l != &p->chans; l = l->next) {
		struct upstream_chan *ch = UCONTAINER(l, struct upstream_chan, node);
		while (!ulist_empty(&ch->queue)) {
			struct upstream_req *req = UCONTAINER(ch->queue.next, struct upstream_req, queue);
			ulist_del(&req->queue);
			p->stats.queued--;
			req_unlive(req);
			req_deliver(req, &a, false);
			free(req);
		}
	}
	while (!ulist_empty(&p->deferred)) {
		struct upstream_req *req = UCONTAINER(p->deferred.next, struct upstream_req, node);
		ulist_del(&req->node);
		req_deliver_deferred(req);
	}
	for (struct ulink *l = p->chans.next; l != &p->chans; l = l->next) {
		struct upstream_chan *ch = UCONTAINER(l, struct upstream_chan, node);
		while (!ulist_empty(&ch->socks))
			sock_close(UCONTAINER(ch->socks.next, struct upstream_sock, node));
		ch->ares_timer.data = p;
		ch->deadline_timer.data = p;
		uv_close((uv_handle_t *)&ch->ares_timer, pool_handle_close_cb);
		uv_close((uv_handle_t *)&ch->deadline_timer, pool_handle_close_cb);
	}
	uv_close((uv_handle_t *)&p->prepare, pool_handle_close_cb);
	uv_close((uv_handle_t *)&p->idle, pool_handle_close_cb);
}

static void idle_cb(uv_idle_t *h)
{
	struct upstream_pool *p = h->data;
	struct ulink batch;

	/* Only what was deferred before this turn: callbacks that defer more
	 * wait for the next one. */
	ulist_move(&batch, &p->deferred);
	while (!ulist_empty(&batch)) {
		struct upstream_req *req = UCONTAINER(batch.next, struct upstream_req, node);
		ulist_del(&req->node);
		req_deliver_deferred(req);
	}
	if (ulist_empty(&p->deferred))
		uv_idle_stop(h);
	if (p->closing && !p->torn_down)
		pool_teardown(p);
}

int upstream_pool_new(uv_loop_t *loop, unsigned max_inflight,
		      struct upstream_pool **out)
{
	struct upstream_pool *p;
	int rc;

	if (!loop || !out || max_inflight == 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = loop;
	/* One query ID each: a channel cannot have more at c-ares. */
	p->max_inflight = max_inflight > 65535 ? 65535 : max_inflight;
	ulist_init(&p->chans);
	ulist_init(&p->deferred);
	rc = rnd_refill(p);
	if (rc < 0)
		goto fail;
	/* uv_prepare_init and uv_idle_init cannot fail. */
	uv_prepare_init(loop, &p->prepare);
	uv_idle_init(loop, &p->idle);
	p->prepare.data = p;
	p->idle.data = p;
	uv_unref((uv_handle_t *)&p->prepare);
	p->open_handles = 2;
	*out = p;
	return 0;

fail:
	free(p);
	return rc;
}

static int query_start(struct upstream_pool *p, const char *servers_csv,
		       uint32_t timeout_ms, const uint8_t *name, size_t name_len,
		       uint16_t qtype, upstream_cb cb, upstream_raw_cb raw_cb,
		       void *arg)
{
	struct upstream_chan *ch;
	struct upstream_req *req;
	uint8_t rnd[UPSTREAM_CASE_RND + 2];
	int rc;

	if (!p || !(cb || raw_cb) || !dnswire_name_valid(name, name_len) || timeout_ms == 0)
		return -EINVAL;
	if (p->closing)
		return -ESHUTDOWN;
	const char *key = servers_csv ? servers_csv : "system";
	if (!*key)
		return -EINVAL;

	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	rc = dnswire_build_query(req->pkt, sizeof(req->pkt), name, name_len, qtype,
				 UPSTREAM_EDNS_SIZE);
	if (rc < 0) {
		rc = -EINVAL;
		goto fail;
	}
	req->pkt_len = (uint16_t)rc;
	req->name_len = (uint16_t)name_len;
	rc = rnd_take(p, rnd, sizeof(rnd));
	if (rc < 0)
		goto fail;
	dnswire_name_randomize_case(req->pkt + DNSWIRE_QNAME_OFF, name_len, rnd,
				    UPSTREAM_CASE_RND);
	req->id_seed = (uint16_t)(rnd[UPSTREAM_CASE_RND] << 8 | rnd[UPSTREAM_CASE_RND + 1]);

	ch = chan_find(p, key, timeout_ms);
	if (!ch) {
		rc = chan_new(p, key, timeout_ms, &ch);
		if (rc < 0)
			goto fail;
	}
	req->ch = ch;
	req->cb = cb;
	req->raw_cb = raw_cb;
	req->arg = arg;
	req->qtype = qtype;
	req->start_ns = uv_hrtime();
	req->deadline_ms = uv_now(p->loop) + timeout_ms;
	req->state = REQ_QUEUED;
	/* Every question of the channel has this timeout: the newest has the
	 * latest deadline, and the timer, when running, guards an older one. */
	ulist_push(&ch->live, &req->node);
	if (!uv_is_active((uv_handle_t *)&ch->deadline_timer))
		uv_timer_start(&ch->deadline_timer, deadline_cb, timeout_ms, 0);
	ulist_push(&ch->queue, &req->queue);
	p->stats.queued++;
	chan_pump(ch);
	return 0;

fail:
	free(req);
	return rc;
}

int upstream_query(struct upstream_pool *p, const char *servers_csv,
		   uint32_t timeout_ms, const uint8_t *name, size_t name_len,
		   uint16_t qtype, upstream_cb cb, void *arg)
{
	return query_start(p, servers_csv, timeout_ms, name, name_len, qtype, cb,
			   NULL, arg);
}

int upstream_query_raw(struct upstream_pool *p, const char *servers_csv,
		       uint32_t timeout_ms, const uint8_t *name, size_t name_len,
		       uint16_t qtype, upstream_raw_cb cb, void *arg)
{
	return query_start(p, servers_csv, timeout_ms, name, name_len, qtype, NULL,
			   cb, arg);
}

void upstream_pool_close(struct upstream_pool *p)
{
	if (!p || p->closing)
		return;
	/* Torn down on the next loop turn: never inside a c-ares callback,
	 * where ares_destroy is not allowed. */
	p->closing = true;
	uv_idle_start(&p->idle, idle_cb);
}

void upstream_pool_stats(const struct upstream_pool *p, struct upstream_stats *out)
{
	*out = p->stats;
}
