/*
 * cache_redis: the Redis cache tier (contract in cache_redis.h).
 *
 * hiredis 0.14 has no command timeouts, no reconnection and no connect
 * timeout, so this file keeps three timers per tier:
 *   get_timer   the oldest pending get's deadline. Every get waits the same
 *               read_timeout_ms, so pending gets form a FIFO ordered by
 *               deadline and one timer serves them all;
 *   conn_timer  the retry delay while disconnected, the handshake deadline
 *               while connecting;
 *   ping_timer  once a second while up: a PING still unanswered at the next
 *               tick means the connection is dead.
 *
 * A get is a small record given to hiredis as the command's privdata. It
 * stays in the FIFO until it completes; when its deadline passes it
 * completes as a miss, leaves the FIFO and forgets its callback, but lives
 * on until hiredis calls back (late reply, or NULL when the context is
 * freed), so hiredis never holds a dangling pointer.
 *
 * hiredis may call back with a context that is going away: freed by us
 * (r->ac is already NULL or another context then) or failing on an error
 * (pending callbacks get NULL, then the disconnect callback runs). A
 * context is only ever freed here outside hiredis' connect and disconnect
 * callbacks, where freeing it would pull it from under hiredis; inside a
 * reply callback redisAsyncFree() waits for the callback to return.
 *
 * Commands issued in one loop turn sit in hiredis' output buffer until the
 * socket is writable on the next one and go out in one write: that is the
 * pipelining (all lists of one client address in one round trip).
 */
#include "cache/cache_redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cache/redis_uv.h"

#define READ_TIMEOUT_DEFAULT_MS 5
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* After Redis refused the handshake (password, db): an operator must act. */
#define REFUSED_RETRY_MS 5000
#define HANDSHAKE_TIMEOUT_MS 2000
#define PING_INTERVAL_MS 1000
/* Gets timed out in a row after which Redis is taken as stalled. */
#define STALL_TIMEOUTS 20
/* Commands sent and not answered: a bound on what a slow Redis can make
 * hiredis buffer. */
#define MAX_WAITING 65536

#define KEY_VERSION "v1:"
/* "4294967295 4294967295 4294967295\n" and its NUL. */
#define VALUE_HEADER_MAX 34
#define DETAIL_MAX 128

enum conn_phase {
	PHASE_IDLE,        /* no context: conn_timer is the retry delay */
	PHASE_CONNECTING,  /* conn_timer is the handshake deadline */
	PHASE_HANDSHAKE,   /* connected; AUTH, SELECT, PING sent */
	PHASE_UP,
};

struct cache_redis;

struct redis_get {
	struct redis_get *prev, *next;  /* the FIFO, while pending */
	struct cache_redis *r;
	cache_get_cb cb;                /* NULL once completed */
	void *arg;
	uint64_t deadline;              /* uv_now() milliseconds */
	uint32_t now;                   /* the caller's clock, to judge expiry */
};

struct cache_redis {
	struct cache_tier tier;         /* first, so a tier pointer is the tier */
	uv_loop_t *loop;

	char *host;                     /* TCP, or ... */
	int port;
	char *unix_path;                /* ... a unix socket */
	char *password;                 /* NULL: no AUTH */
	int db;
	char prefix[CACHE_REDIS_PREFIX_MAX + sizeof(KEY_VERSION)];
	size_t prefix_len;              /* key_prefix and KEY_VERSION */
	uint32_t read_timeout_ms;
	void (*on_state)(void *arg, enum cache_redis_state state, const char *detail);
	void *state_arg;

	enum cache_redis_state state;
	enum conn_phase phase;
	redisAsyncContext *ac;          /* NULL in PHASE_IDLE */
	bool attempted;                 /* a connection was tried before */
	uint32_t backoff_ms;            /* the next retry delay */
	bool ping_waiting;
	uint32_t timeouts_in_row;
	uint32_t waiting;               /* gets and puts sent, not answered */
	struct redis_get *head, *tail;  /* pending gets, oldest first */

	uv_timer_t get_timer, conn_timer, ping_timer;
	int open_handles;
	bool destroyed;

	struct cache_redis_stats stats;
};

static const struct cache_tier_ops cache_redis_ops;

static void conn_start(struct cache_redis *r);
static void on_conn_timer(uv_timer_t *timer);
static void on_ping_timer(uv_timer_t *timer);

/* ------------------------------------------------------------- values */

static bool parse_u32(const char **p, const char *end, uint32_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;

	/* Eleven digits are enough to see that a number is too long. */
	while (s < end && *s >= '0' && *s <= '9' && digits <= 10) {
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
		digits++;
	}
	if (digits == 0 || digits > 10 || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	*p = s;
	return true;
}

static bool parse_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

/* "<expire> <stale_until> <stored>\n<value>", exactly; anything else came
 * from another writer and is not ours to interpret. */
static int value_parse(const char *s, size_t len, struct cache_item *item)
{
	const char *p = s, *end = s + len;

	if (!parse_u32(&p, end, &item->expire) || !parse_char(&p, end, ' ') ||
	    !parse_u32(&p, end, &item->stale_until) || !parse_char(&p, end, ' ') ||
	    !parse_u32(&p, end, &item->stored) || !parse_char(&p, end, '\n'))
		return -EBADMSG;
	if ((size_t)(end - p) > CACHE_VALUE_MAX || item->stale_until < item->expire)
		return -EBADMSG;
	item->len = (uint16_t)(end - p);
	memcpy(item->value, p, item->len);
	return 0;
}

static enum cache_status value_status(const struct cache_item *item, uint32_t now)
{
	if (now < item->expire)
		return CACHE_HIT;
	if (now < item->stale_until)
		return CACHE_STALE;
	return CACHE_MISS;
}

/* The Redis key: prefix, version, the caller's bytes. */
static size_t redis_key(const struct cache_redis *r, const uint8_t *key, size_t key_len,
			char *out)
{
	memcpy(out, r->prefix, r->prefix_len);
	memcpy(out + r->prefix_len, key, key_len);
	return r->prefix_len + key_len;
}

/* ------------------------------------------------------ state, timers */

static void set_state(struct cache_redis *r, enum cache_redis_state state,
		      const char *detail)
{
	if (r->state == state || r->destroyed)
		return;
	r->state = state;
	if (r->on_state)
		r->on_state(r->state_arg, state, detail);
}

/* Up and answering: what a get or put needs to be sent. */
static bool usable(const struct cache_redis *r)
{
	return r->phase == PHASE_UP && r->timeouts_in_row < STALL_TIMEOUTS &&
	       r->waiting < MAX_WAITING;
}

/* Redis answered something on the current connection: it is alive. */
static void answered(struct cache_redis *r)
{
	r->timeouts_in_row = 0;
}

/*
 * The current connection failed or must go: let go of it (free it unless
 * hiredis is freeing it already), report state and try again after
 * retry_ms, or after the backoff when retry_ms is 0.
 */
static void conn_end(struct cache_redis *r, bool free_it, enum cache_redis_state state,
		     const char *detail, uint32_t retry_ms)
{
	redisAsyncContext *ac = r->ac;
	char why[DETAIL_MAX];

	/* detail may live in the context about to be freed. */
	snprintf(why, sizeof(why), "%s", detail && *detail ? detail : "Connection lost");
	r->ac = NULL;
	r->phase = PHASE_IDLE;
	r->ping_waiting = false;
	r->timeouts_in_row = 0;
	uv_timer_stop(&r->ping_timer);
	if (ac && free_it)
		redisAsyncFree(ac);
	if (!retry_ms) {
		retry_ms = r->backoff_ms;
		r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
								   : r->backoff_ms * 2;
	}
	set_state(r, state, why);
	if (!r->destroyed)
		uv_timer_start(&r->conn_timer, on_conn_timer, retry_ms, 0);
}

static void conn_up(struct cache_redis *r)
{
	r->phase = PHASE_UP;
	r->backoff_ms = BACKOFF_MIN_MS;
	r->timeouts_in_row = 0;
	r->ping_waiting = false;
	uv_timer_stop(&r->conn_timer);
	uv_timer_start(&r->ping_timer, on_ping_timer, PING_INTERVAL_MS, PING_INTERVAL_MS);
	set_state(r, CACHE_REDIS_UP, "Connected");
}

static void on_ping_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct cache_redis *r = privdata;

	if (ac != r->ac || !reply)
		return;
	r->ping_waiting = false;
	answered(r);
}

static void send_ping(struct cache_redis *r)
{
	if (redisAsyncCommand(r->ac, on_ping_reply, r, "PING") == REDIS_OK)
		r->ping_waiting = true;
}

static void on_ping_timer(uv_timer_t *timer)
{
	struct cache_redis *r = timer->data;

	if (r->phase != PHASE_UP)
		return;
	if (r->ping_waiting)
		conn_end(r, true, CACHE_REDIS_DOWN, "PING timed out", 0);
	else
		send_ping(r);
}

/* ---------------------------------------------------------- handshake */

/* NOAUTH: Redis wants a password and got none (or lost it). */
static enum cache_redis_state refused_state(const char *error)
{
	return strncmp(error, "NOAUTH", 6) == 0 ? CACHE_REDIS_AUTH_FAILED : CACHE_REDIS_DOWN;
}

static bool handshake_reply(redisAsyncContext *ac, const redisReply *reply,
			    struct cache_redis *r, enum cache_redis_state on_error)
{
	/* NULL: the context is going away; its own path reports why. */
	if (ac != r->ac || r->phase != PHASE_HANDSHAKE || !reply)
		return false;
	if (reply->type == REDIS_REPLY_ERROR) {
		conn_end(r, true, on_error == CACHE_REDIS_AUTH_FAILED ? on_error
				  : refused_state(reply->str), reply->str, REFUSED_RETRY_MS);
		return false;
	}
	return true;
}

static void on_auth_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	handshake_reply(ac, reply, privdata, CACHE_REDIS_AUTH_FAILED);
}

static void on_select_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	handshake_reply(ac, reply, privdata, CACHE_REDIS_DOWN);
}

static void on_hello_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct cache_redis *r = privdata;

	if (handshake_reply(ac, reply, r, CACHE_REDIS_DOWN))
		conn_up(r);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	struct cache_redis *r = ac->data;

	if (ac != r->ac)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context when this returns. */
		conn_end(r, false, CACHE_REDIS_DOWN, ac->c.errstr, 0);
		return;
	}
	/* Pipelined: one round trip. A command hiredis refuses leaves the
	 * handshake unfinished, and its deadline ends it. */
	r->phase = PHASE_HANDSHAKE;
	if (r->password)
		redisAsyncCommand(ac, on_auth_reply, r, "AUTH %s", r->password);
	if (r->db)
		redisAsyncCommand(ac, on_select_reply, r, "SELECT %d", r->db);
	redisAsyncCommand(ac, on_hello_reply, r, "PING");
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
	struct cache_redis *r = cac->data;

	/* A context we freed ourselves has been let go already. */
	if (cac != r->ac)
		return;
	conn_end(r, false, CACHE_REDIS_DOWN,
		 cac->c.errstr[0] ? cac->c.errstr : "Connection closed", 0);
}

static void conn_fail(struct cache_redis *r, const char *detail)
{
	conn_end(r, false, CACHE_REDIS_DOWN, detail, 0);
}

static void conn_start(struct cache_redis *r)
{
	redisAsyncContext *ac;
	int rc;

	if (r->attempted)
		r->stats.reconnects++;
	r->attempted = true;
	ac = r->unix_path ? redisAsyncConnectUnix(r->unix_path)
			  : redisAsyncConnect(r->host, r->port);
	if (!ac) {
		conn_fail(r, "Out of memory");
		return;
	}
	if (ac->err) {
		char why[DETAIL_MAX];

		snprintf(why, sizeof(why), "%s", ac->c.errstr);
		redisAsyncFree(ac);
		conn_fail(r, why);
		return;
	}
	rc = redis_uv_attach(ac, r->loop);
	if (rc < 0) {
		redisAsyncFree(ac);
		conn_fail(r, uv_strerror(rc));
		return;
	}
	ac->data = r;
	r->ac = ac;
	r->phase = PHASE_CONNECTING;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	uv_timer_start(&r->conn_timer, on_conn_timer, HANDSHAKE_TIMEOUT_MS, 0);
}

static void on_conn_timer(uv_timer_t *timer)
{
	struct cache_redis *r = timer->data;

	if (r->phase == PHASE_IDLE)
		conn_start(r);
	else if (r->phase != PHASE_UP)
		conn_end(r, true, CACHE_REDIS_DOWN,
			 r->phase == PHASE_CONNECTING ? "Connection timed out"
						      : "Handshake timed out", 0);
}

/* --------------------------------------------------------------- gets */

static void get_unlink(struct cache_redis *r, struct redis_get *g)
{
	if (g->prev)
		g->prev->next = g->next;
	else
		r->head = g->next;
	if (g->next)
		g->next->prev = g->prev;
	else
		r->tail = g->prev;
	g->prev = g->next = NULL;
}

/* Take g out of the FIFO and hand back its callback, which it forgets. */
static cache_get_cb get_detach(struct cache_redis *r, struct redis_get *g)
{
	cache_get_cb cb = g->cb;

	get_unlink(r, g);
	g->cb = NULL;
	return cb;
}

static void count_status(struct cache_redis *r, enum cache_status status)
{
	if (status == CACHE_HIT)
		r->stats.hits++;
	else if (status == CACHE_STALE)
		r->stats.stale_hits++;
	else
		r->stats.misses++;
}

static void on_get_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
	struct redis_get *g = privdata;
	struct cache_redis *r = g->r;
	const redisReply *reply = reply_ptr;
	enum cache_status status = CACHE_MISS;
	struct cache_item item;
	cache_get_cb cb;
	void *arg = g->arg;

	r->waiting--;
	if (reply)
		answered(r);
	if (!g->cb) {
		/* Timed out or the tier destroyed: already completed. */
		free(g);
		return;
	}
	if (!reply)
		r->stats.errors++;
	else if (reply->type == REDIS_REPLY_STRING &&
		 value_parse(reply->str, (size_t)reply->len, &item) == 0)
		status = value_status(&item, g->now);
	else if (reply->type != REDIS_REPLY_NIL)
		r->stats.errors++;
	count_status(r, status);
	cb = get_detach(r, g);
	free(g);
	if (!r->head)
		uv_timer_stop(&r->get_timer);
	cb(arg, status, status == CACHE_MISS ? NULL : &item);
}

static void on_get_timer(uv_timer_t *timer)
{
	struct cache_redis *r = timer->data;
	uint64_t now = uv_now(r->loop);

	/* Timers run before I/O in a loop turn: answers already in the
	 * socket buffer get their chance before their gets are given up. */
	if (r->head && r->head->deadline <= now && r->phase == PHASE_UP)
		redisAsyncHandleRead(r->ac);

	while (!r->destroyed && r->head && r->head->deadline <= now) {
		struct redis_get *g = r->head;
		void *arg = g->arg;
		cache_get_cb cb = get_detach(r, g);

		r->stats.timeouts++;
		r->stats.misses++;
		r->timeouts_in_row++;
		cb(arg, CACHE_MISS, NULL);
	}
	if (r->destroyed)
		return;
	if (r->head)
		uv_timer_start(&r->get_timer, on_get_timer, r->head->deadline - now, 0);
	/* Stalled: usable() stops sending; a PING now tells within a second
	 * whether Redis is slow (any answer resumes) or dead. */
	if (r->timeouts_in_row >= STALL_TIMEOUTS && r->phase == PHASE_UP && !r->ping_waiting) {
		send_ping(r);
		uv_timer_start(&r->ping_timer, on_ping_timer, PING_INTERVAL_MS, PING_INTERVAL_MS);
	}
}

static int cache_redis_get_op(struct cache_tier *t, const uint8_t *key, size_t key_len,
			      uint32_t now, struct cache_item *item, cache_get_cb cb, void *arg)
{
	struct cache_redis *r = (struct cache_redis *)t;
	char rkey[sizeof(r->prefix) + CACHE_KEY_MAX];
	struct redis_get *g;

	if (!key || key_len == 0 || key_len > CACHE_KEY_MAX || !cb)
		return -EINVAL;
	r->stats.gets++;
	if (!usable(r))
		goto skip;
	g = malloc(sizeof(*g));
	if (!g)
		goto skip;
	size_t rkey_len = redis_key(r, key, key_len, rkey);
	if (redisAsyncCommand(r->ac, on_get_reply, g, "GET %b", rkey, rkey_len) != REDIS_OK) {
		free(g);
		goto skip;
	}
	r->waiting++;
	*g = (struct redis_get){ .prev = r->tail, .r = r, .cb = cb, .arg = arg,
				 .deadline = uv_now(r->loop) + r->read_timeout_ms,
				 .now = now };
	if (r->tail)
		r->tail->next = g;
	else
		r->head = g;
	r->tail = g;
	if (!uv_is_active((uv_handle_t *)&r->get_timer))
		uv_timer_start(&r->get_timer, on_get_timer, r->read_timeout_ms, 0);
	return -EINPROGRESS;

skip:
	r->stats.skipped++;
	r->stats.misses++;
	return CACHE_MISS;
}

/* --------------------------------------------------------------- puts */

static void on_put_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
	struct cache_redis *r = privdata;
	const redisReply *reply = reply_ptr;

	r->waiting--;
	if (reply)
		answered(r);
	if (!reply || reply->type == REDIS_REPLY_ERROR)
		r->stats.errors++;
}

/*
 * As in the in-process tier: a stale_until before expire means no stale
 * period, and a put already past stale_until still replaces (deletes), so
 * the key misses rather than serving the superseded value.
 */
static void cache_redis_put_op(struct cache_tier *t, const uint8_t *key, size_t key_len,
			       const uint8_t *value, size_t len, uint32_t now,
			       uint32_t expire, uint32_t stale_until)
{
	struct cache_redis *r = (struct cache_redis *)t;
	char rkey[sizeof(r->prefix) + CACHE_KEY_MAX];
	char data[VALUE_HEADER_MAX + CACHE_VALUE_MAX];
	int rc;

	if (!key || key_len == 0 || key_len > CACHE_KEY_MAX || len > CACHE_VALUE_MAX ||
	    (len && !value)) {
		r->stats.errors++;
		return;
	}
	if (stale_until < expire)
		stale_until = expire;
	if (!usable(r)) {
		r->stats.skipped++;
		return;
	}
	size_t rkey_len = redis_key(r, key, key_len, rkey);
	if (stale_until <= now) {
		rc = redisAsyncCommand(r->ac, on_put_reply, r, "DEL %b", rkey, rkey_len);
	} else {
		int head = snprintf(data, VALUE_HEADER_MAX, "%" PRIu32 " %" PRIu32 " %" PRIu32 "\n",
				    expire, stale_until, now);
		if (len)
			memcpy(data + head, value, len);
		/* Redis keeps the entry exactly as long as it may be served. */
		rc = redisAsyncCommand(r->ac, on_put_reply, r, "SET %b %b EX %" PRIu32,
				       rkey, rkey_len, data, (size_t)head + len,
				       stale_until - now);
	}
	if (rc != REDIS_OK) {
		r->stats.skipped++;
		return;
	}
	r->waiting++;
	r->stats.puts++;
}

/* ----------------------------------------------------------- lifetime */

static void redis_free(struct cache_redis *r)
{
	free(r->host);
	free(r->unix_path);
	free(r->password);
	free(r);
}

static void on_handle_closed(uv_handle_t *handle)
{
	struct cache_redis *r = handle->data;

	if (--r->open_handles == 0)
		redis_free(r);
}

static void cache_redis_destroy_op(struct cache_tier *t)
{
	struct cache_redis *r = (struct cache_redis *)t;
	redisAsyncContext *ac = r->ac;

	r->destroyed = true;
	r->ac = NULL;
	r->phase = PHASE_IDLE;
	while (r->head) {
		struct redis_get *g = r->head;
		void *arg = g->arg;
		cache_get_cb cb = get_detach(r, g);

		r->stats.misses++;
		cb(arg, CACHE_MISS, NULL);
	}
	/* Fails what is still in hiredis' hands: those records are completed
	 * already and are only freed. */
	if (ac)
		redisAsyncFree(ac);
	uv_close((uv_handle_t *)&r->get_timer, on_handle_closed);
	uv_close((uv_handle_t *)&r->conn_timer, on_handle_closed);
	uv_close((uv_handle_t *)&r->ping_timer, on_handle_closed);
}

static int parse_port(const char *s)
{
	int port = 0;

	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		port = port * 10 + (*s - '0');
	}
	return port >= 1 && port <= 65535 ? port : -EINVAL;
}

static bool host_name_ok(const char *host)
{
	if (!*host)
		return false;
	for (const char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_'))
			return false;
	return true;
}

/* "unix:PATH", "[IPV6]:PORT" or "HOST:PORT". */
static int parse_address(struct cache_redis *r, const char *address)
{
	const char *host, *colon;
	size_t host_len;
	char buf[256];

	if (!address)
		return -EINVAL;
	if (strncmp(address, "unix:", 5) == 0) {
		const char *path = address + 5;

		if (!*path || strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
			return -EINVAL;
		r->unix_path = strdup(path);
		return r->unix_path ? 0 : -ENOMEM;
	}
	if (address[0] == '[') {
		const char *close = strchr(address, ']');
		struct in6_addr a6;

		if (!close || close[1] != ':')
			return -EINVAL;
		host = address + 1;
		host_len = (size_t)(close - host);
		colon = close + 1;
		if (host_len == 0 || host_len >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, host, host_len);
		buf[host_len] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return -EINVAL;
	} else {
		colon = strrchr(address, ':');
		if (!colon)
			return -EINVAL;
		host = address;
		host_len = (size_t)(colon - host);
		if (host_len == 0 || host_len >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, host, host_len);
		buf[host_len] = '\0';
		/* Also refuses a bare IPv6 address: its colons are ambiguous. */
		if (!host_name_ok(buf))
			return -EINVAL;
	}
	r->port = parse_port(colon + 1);
	if (r->port < 0)
		return -EINVAL;
	r->host = strdup(buf);
	return r->host ? 0 : -ENOMEM;
}

struct cache_tier *cache_redis_new(uv_loop_t *loop, const struct cache_redis_opts *opts)
{
	struct cache_redis *r;
	const char *prefix;
	size_t prefix_len;

	if (!loop || !opts || opts->db < 0)
		return NULL;
	prefix = opts->key_prefix ? opts->key_prefix : "";
	prefix_len = strlen(prefix);
	if (prefix_len > CACHE_REDIS_PREFIX_MAX)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->tier.ops = &cache_redis_ops;
	r->loop = loop;
	if (parse_address(r, opts->address) < 0)
		goto fail;
	if (opts->password && *opts->password) {
		r->password = strdup(opts->password);
		if (!r->password)
			goto fail;
	}
	r->db = opts->db;
	memcpy(r->prefix, prefix, prefix_len);
	memcpy(r->prefix + prefix_len, KEY_VERSION, sizeof(KEY_VERSION) - 1);
	r->prefix_len = prefix_len + sizeof(KEY_VERSION) - 1;
	r->read_timeout_ms = opts->read_timeout_ms ? opts->read_timeout_ms
						   : READ_TIMEOUT_DEFAULT_MS;
	r->on_state = opts->on_state;
	r->state_arg = opts->state_arg;
	r->state = CACHE_REDIS_CONNECTING;
	r->phase = PHASE_IDLE;
	r->backoff_ms = BACKOFF_MIN_MS;

	/* uv_timer_init only links the handle into the loop: it cannot fail. */
	uv_timer_init(loop, &r->get_timer);
	uv_timer_init(loop, &r->conn_timer);
	uv_timer_init(loop, &r->ping_timer);
	r->get_timer.data = r->conn_timer.data = r->ping_timer.data = r;
	r->open_handles = 3;
	/* First attempt on the loop's next turn: every report comes from the
	 * loop, after the caller has its tier. */
	uv_timer_start(&r->conn_timer, on_conn_timer, 0, 0);
	return &r->tier;

fail:
	redis_free(r);
	return NULL;
}

static struct cache_redis *redis_of(struct cache_tier *t)
{
	return t && t->ops == &cache_redis_ops ? (struct cache_redis *)t : NULL;
}

enum cache_redis_state cache_redis_state(struct cache_tier *t)
{
	struct cache_redis *r = redis_of(t);

	return r ? r->state : CACHE_REDIS_DOWN;
}

void cache_redis_get_stats(struct cache_tier *t, struct cache_redis_stats *out)
{
	struct cache_redis *r = redis_of(t);

	if (r)
		*out = r->stats;
	else
		memset(out, 0, sizeof(*out));
}

static const struct cache_tier_ops cache_redis_ops = {
	.name = "redis",
	.get = cache_redis_get_op,
	.put = cache_redis_put_op,
	.destroy = cache_redis_destroy_op,
};
