/*
 * server: the rblmuxd process. One server, N workers (one libuv loop per
 * thread, threads = auto: one per core); every worker has its own sockets
 * (SO_REUSEPORT, so the kernel spreads clients over the loops), its own c-ares
 * channels and its own deadline list. The in-process cache, the lookups in
 * flight and the lists' health are shared.
 *
 * Worker 0 runs on the main thread and also owns the signals (SIGHUP reload,
 * SIGTERM/SIGINT stop) and the health probes.
 */
#ifndef RBLMUX_RESOLVER_SERVER_H
#define RBLMUX_RESOLVER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cache/cache.h"
#include "resolver/health.h"
#include "resolver/inflight.h"
#include "resolver/runtime.h"
#include "resolver/upstream.h"

struct query;
struct spf_service;
struct frontend;
struct worker_msg;

struct worker_stats {
	uint64_t queries, answers, formerr, refused, servfail, dropped, tcp_conns;
};

struct worker {
	struct server *srv;
	unsigned idx;
	uv_loop_t loop;
	uv_thread_t thread;
	struct upstream_pool *up;
	struct spf_service *spf;      /* NULL when [spf] is disabled */
	struct runtime *rt;           /* this loop's reference to the current runtime */

	uv_async_t async;             /* inbox, reload and stop */
	pthread_mutex_t inbox_lock;
	struct worker_msg *inbox;     /* answers for queries waiting on another loop's lookup */
	bool inbox_closed;            /* stopped: posts are dropped */
	unsigned lookups_owned;       /* lookups this loop drives (lookup.c) */
	bool stop_settled;            /* stopping, and none left */
	atomic_int want_reload;
	atomic_int want_stop;

	uv_timer_t deadline_timer;
	struct query *dl_head, *dl_tail; /* unanswered queries, by deadline */

	struct frontend *fe;
	struct cache_tier *redis;     /* this loop's Redis tier, NULL without Redis */
	atomic_int redis_state;       /* enum cache_redis_state, read by health */
	bool stopping;
	struct worker_stats stats;
	uint8_t out[65536 + 2];       /* answers are built here */
};

struct server {
	const char *config_path;
	pthread_mutex_t rt_lock;
	struct runtime *rt;           /* current; guarded by rt_lock */
	struct health_table *health;
	struct cache_tier *cache;
	struct inflight_table *inflight;
	struct worker *workers;
	unsigned nworkers;

	uv_signal_t sig_hup, sig_term, sig_int;
	uv_timer_t probe_timer;
	bool signals_ready;           /* the signal handles and probe timer exist */
	uv_work_t reload_work;
	bool reloading;
	struct config *reload_cfg;    /* parsed by the reload work */
	atomic_int stopped_workers;
};

/*
 * Run rblmuxd with the configuration cfg_own (ownership passes) until
 * SIGTERM/SIGINT. config_path is re-read on SIGHUP. Binds every listen
 * address first (a failure is fatal: returns a negative errno after logging
 * why), then drops privileges to cfg `user`. Returns 0 after a clean stop.
 */
int server_run(const char *config_path, struct config *cfg_own);

/* setgid/setuid to user ("" or NULL: nothing). Returns 0 or -errno, logged. */
int server_drop_privileges(const char *user);

/* The state of this loop's Redis connection ("up", "down", ...), NULL
 * without Redis. */
const char *server_redis_state(struct worker *w);

/* A stopping loop's last owned lookup ended: when every loop is there, the
 * inboxes close (the second phase of the stop). */
void worker_stop_settled(struct worker *w);

/* The current runtime, with a reference for the caller. */
struct runtime *server_runtime(struct server *srv);

/* Ask every worker to take the current runtime (after a reload). */
void server_broadcast_reload(struct server *srv);

/* Deliver a lookup's answer to a query waiting on worker w (any thread). */
struct lookup_result;
void worker_post(struct worker *w, struct query *q, unsigned slot,
		 const struct lookup_result *res);

/* The loop's time in ms, as libuv caches it. */
static inline uint64_t worker_now_ms(struct worker *w)
{
	return uv_now(&w->loop);
}

#endif
