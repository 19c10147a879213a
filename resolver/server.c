#include "resolver/server.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_redis.h"
#include "resolver/frontend.h"
#include "resolver/log.h"
#include "resolver/lookup.h"
#include "resolver/metrics.h"
#include "resolver/probe.h"
#include "resolver/query.h"
#include "resolver/spf.h"
#include "resolver/sdnotify.h"

/* An answer for a query waiting on another loop's lookup. */
struct worker_msg {
	struct worker_msg *next;
	struct query *q;
	unsigned slot;
	struct lookup_result res;  /* only res.len bytes of res.val are copied */
};

struct runtime *server_runtime(struct server *srv)
{
	pthread_mutex_lock(&srv->rt_lock);
	struct runtime *rt = srv->rt;
	runtime_ref(rt);
	pthread_mutex_unlock(&srv->rt_lock);
	return rt;
}

void worker_post(struct worker *w, struct query *q, unsigned slot,
		 const struct lookup_result *res)
{
	size_t size = offsetof(struct worker_msg, res.val) + res->len;
	struct worker_msg *m = malloc(size);
	if (!m) {
		log_err("out of memory posting a lookup to loop %u", w->idx);
		abort();
	}
	m->q = q;
	m->slot = slot;
	memcpy(&m->res, res, offsetof(struct lookup_result, val) + res->len);
	pthread_mutex_lock(&w->inbox_lock);
	if (w->inbox_closed) {
		pthread_mutex_unlock(&w->inbox_lock);
		free(m);
		return;
	}
	m->next = w->inbox;
	w->inbox = m;
	uv_async_send(&w->async);
	pthread_mutex_unlock(&w->inbox_lock);
}

static void worker_drain_inbox(struct worker *w)
{
	pthread_mutex_lock(&w->inbox_lock);
	struct worker_msg *m = w->inbox, *fifo = NULL;
	w->inbox = NULL;
	pthread_mutex_unlock(&w->inbox_lock);
	while (m) {
		struct worker_msg *next = m->next;
		m->next = fifo;
		fifo = m;
		m = next;
	}
	while (fifo) {
		struct worker_msg *next = fifo->next;
		query_slot_result(fifo->q, fifo->slot, &fifo->res);
		free(fifo);
		fifo = next;
	}
}

static const char *redis_state_word(enum cache_redis_state st)
{
	switch (st) {
	case CACHE_REDIS_CONNECTING: return "connecting";
	case CACHE_REDIS_UP: return "up";
	case CACHE_REDIS_DOWN: return "down";
	case CACHE_REDIS_AUTH_FAILED: return "auth-failed";
	}
	return "?";
}

const char *server_redis_state(struct worker *w)
{
	if (!w->redis)
		return NULL;
	return redis_state_word((enum cache_redis_state)atomic_load(&w->redis_state));
}

/* Every loop has its own connection; loop 0 speaks for them in the log so
 * that a Redis going down is one line, not one per core. */
static void redis_state_cb(void *arg, enum cache_redis_state st, const char *detail)
{
	struct worker *w = arg;
	atomic_store(&w->redis_state, (int)st);
	if (w->idx != 0)
		return;
	const char *addr = w->rt->cfg->redis;
	if (st == CACHE_REDIS_UP)
		log_notice("redis %s is up: the shared cache is in use", addr);
	else if (st == CACHE_REDIS_AUTH_FAILED)
		log_err("redis %s refused the password (%s): running without the shared cache",
			addr, detail ? detail : "");
	else
		log_warn("redis %s is %s (%s): running without the shared cache, retrying",
			 addr, redis_state_word(st), detail ? detail : "");
}

static bool same_redis(const struct config *a, const struct config *b)
{
	return strcmp(a->redis, b->redis) == 0 &&
	       strcmp(a->redis_password, b->redis_password) == 0 &&
	       a->redis_db == b->redis_db && a->redis_timeout_ms == b->redis_timeout_ms &&
	       strcmp(a->key_prefix, b->key_prefix) == 0;
}

static void worker_redis_open(struct worker *w, const struct config *cfg)
{
	if (!cfg->redis[0])
		return;
	struct cache_redis_opts o = {
		.address = cfg->redis, .password = cfg->redis_password, .db = cfg->redis_db,
		.key_prefix = cfg->key_prefix, .read_timeout_ms = cfg->redis_timeout_ms,
		.on_state = redis_state_cb, .state_arg = w,
	};
	atomic_store(&w->redis_state, CACHE_REDIS_CONNECTING);
	w->redis = cache_redis_new(&w->loop, &o);
	if (!w->redis && w->idx == 0)
		log_err("redis %s: cannot use this address; running without the shared cache",
			cfg->redis);
}

static void worker_redis_close(struct worker *w)
{
	if (w->redis) {
		w->redis->ops->destroy(w->redis);
		w->redis = NULL;
	}
}

/* The SPF service of a loop, from the configuration: the helper beside
 * rblmuxd (or in libexecdir), the loop's upstream pool and resolvers, the
 * cache tiers. The time limit leaves the query's deadline a little room to
 * send the verdict. */
static void worker_spf_configure(struct worker *w, const struct config *cfg)
{
	char helper[4096];
	if (!cfg->spf.enabled) {
		if (w->spf) {
			spf_service_stop(w->spf);
			w->spf = NULL;
		}
		return;
	}
	if (spf_default_helper_path(helper, sizeof(helper)) < 0) {
		log_err("[spf] enabled, but no rblmux-spf helper beside rblmuxd or in %s",
			helper);
		return;
	}
	struct spf_options o = {
		.helper_path = helper,
		.up = w->up,
		.servers_csv = cfg->servers.system ? NULL : cfg->servers.csv,
		.dns_timeout_ms = cfg->timeout_ms,
		.time_limit_ms = cfg->deadline_ms > 200 ? cfg->deadline_ms - 100 : cfg->deadline_ms,
		.ttl_max_s = cfg->spf.ttl_s,
		.error_ttl_s = cfg->error_ttl_s,
		.cache = w->srv->cache,
		.shared = w->redis,
		.receiver = cfg->zone_text,
	};
	int rc = w->spf ? spf_service_set_options(w->spf, &o)
			: spf_service_start(&w->loop, &o, &w->spf);
	if (rc < 0)
		log_err("cannot start SPF on loop %u: %s", w->idx, strerror(-rc));
}

static void worker_take_runtime(struct worker *w)
{
	struct runtime *rt = server_runtime(w->srv);
	struct runtime *old = w->rt;
	w->rt = rt;
	if (!same_redis(old->cfg, rt->cfg)) {
		worker_redis_close(w);
		worker_redis_open(w, rt->cfg);
	}
	worker_spf_configure(w, rt->cfg);
	runtime_unref(old);
}

static void worker_stop(struct worker *w);
static void worker_close_inbox(struct worker *w);

static void worker_async_cb(uv_async_t *a)
{
	struct worker *w = a->data;
	if (atomic_exchange(&w->want_reload, 0))
		worker_take_runtime(w);
	worker_drain_inbox(w);
	int stop = atomic_load(&w->want_stop);
	if (stop && !w->stopping)
		worker_stop(w);
	if (stop == 2 && !w->inbox_closed)
		worker_close_inbox(w);
}

void server_broadcast_reload(struct server *srv)
{
	for (unsigned i = 0; i < srv->nworkers; i++) {
		atomic_store(&srv->workers[i].want_reload, 1);
		uv_async_send(&srv->workers[i].async);
	}
}

/* ------------------------------------------------------------ probes */

static void probe_timer_cb(uv_timer_t *t)
{
	struct worker *w = t->data;
	probe_all(w);
	uv_timer_set_repeat(t, w->rt->cfg->probe_interval_ms);
}

/* ------------------------------------------------------------ reload */

static void reload_error(void *arg, const char *file, int line, const char *msg)
{
	if (line > 0)
		log_err("%s:%d: %s", file, line, msg);
	else
		log_err("%s: %s", file, msg);
}

/* Off the loop: reading and parsing the file may block. */
static void reload_work_cb(uv_work_t *req)
{
	struct server *srv = req->data;
	srv->reload_cfg = NULL;
	config_load(srv->config_path, reload_error, NULL, &srv->reload_cfg);
}

static bool same_listen(const struct config *a, const struct config *b)
{
	if (a->nlisten != b->nlisten)
		return false;
	for (size_t i = 0; i < a->nlisten; i++)
		if (a->listen[i].len != b->listen[i].len ||
		    memcmp(&a->listen[i].ss, &b->listen[i].ss, a->listen[i].len) != 0)
			return false;
	return true;
}

static void reload_after_cb(uv_work_t *req, int status)
{
	struct server *srv = req->data;
	srv->reloading = false;
	sdnotify_send("READY=1");
	struct config *cfg = srv->reload_cfg;
	srv->reload_cfg = NULL;
	if (status < 0 || !cfg) {
		log_err("reload of %s failed: keeping the running configuration",
			srv->config_path);
		config_free(cfg);
		return;
	}
	struct runtime *old = server_runtime(srv);
	if (!same_listen(old->cfg, cfg))
		log_warn("reload: a change of `listen` takes effect at the next restart");
	if (cfg->threads != old->cfg->threads)
		log_warn("reload: a change of `threads` takes effect at the next restart");
	if (cfg->metrics.len != old->cfg->metrics.len ||
	    memcmp(&cfg->metrics.ss, &old->cfg->metrics.ss, cfg->metrics.len) != 0)
		log_warn("reload: a change of `metrics` takes effect at the next restart");
	if (strcmp(cfg->user, old->cfg->user) != 0)
		log_warn("reload: a change of `user` takes effect at the next restart");
	uint64_t memory = cfg->memory_bytes;
	struct runtime *rt;
	int rc = runtime_new(cfg, srv->health, &rt);
	if (rc < 0) {
		log_err("reload of %s failed (%s): keeping the running configuration",
			srv->config_path, strerror(-rc));
		runtime_unref(old);
		return;
	}
	cache_mem_set_limit(srv->cache, memory);
	pthread_mutex_lock(&srv->rt_lock);
	srv->rt = rt;
	pthread_mutex_unlock(&srv->rt_lock);
	runtime_unref(old);   /* the reference server_runtime gave */
	runtime_unref(old);   /* the server's own */
	server_broadcast_reload(srv);
	log_notice("reloaded %s: %zu sources, threshold %d", srv->config_path,
		   rt->cfg->nsources, rt->cfg->threshold);
	/* New sources are probed now, not at the next interval. */
	uv_timer_again(&srv->probe_timer);
	probe_timer_cb(&srv->probe_timer);
}

static void signal_cb(uv_signal_t *s, int signum)
{
	struct server *srv = s->data;
	if (signum == SIGHUP) {
		if (srv->reloading)
			return;
		srv->reloading = true;
		sdnotify_reloading();
		srv->reload_work.data = srv;
		if (uv_queue_work(&srv->workers[0].loop, &srv->reload_work, reload_work_cb,
				  reload_after_cb) < 0) {
			srv->reloading = false;
			sdnotify_send("READY=1");
			log_err("reload: could not start");
		}
		return;
	}
	log_notice("signal %d: stopping", signum);
	sdnotify_send("STOPPING=1");
	for (unsigned i = 0; i < srv->nworkers; i++) {
		atomic_store(&srv->workers[i].want_stop, 1);
		uv_async_send(&srv->workers[i].async);
	}
}

/* -------------------------------------------------------------- workers */

static void handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void worker_stop(struct worker *w)
{
	struct server *srv = w->srv;
	w->stopping = true;
	frontend_close(w);
	/* Before the cache tiers and the pool it uses: its checks are
	 * answered now, its questions end with the pool. */
	if (w->spf) {
		spf_service_stop(w->spf);
		w->spf = NULL;
	}
	worker_redis_close(w);
	if (w->up) {
		upstream_pool_close(w->up);
		w->up = NULL;
	}
	if (w->idx == 0 && srv->signals_ready) {
		srv->signals_ready = false;
		uv_close((uv_handle_t *)&srv->sig_hup, handle_closed);
		uv_close((uv_handle_t *)&srv->sig_term, handle_closed);
		uv_close((uv_handle_t *)&srv->sig_int, handle_closed);
		uv_close((uv_handle_t *)&srv->probe_timer, handle_closed);
		metrics_stop(srv);
	}
	worker_stop_settled(w);
}

/*
 * The stop has two phases so that no query is left waiting: first every
 * loop stops taking questions and finishes every lookup it owns (their
 * answers still reach the other loops' inboxes); once every loop has, each
 * drains its inbox a last time and closes it. A query is then freed on its
 * own loop like any other.
 */
void worker_stop_settled(struct worker *w)
{
	struct server *srv = w->srv;
	if (!w->stopping || w->lookups_owned || w->stop_settled)
		return;
	w->stop_settled = true;
	if (atomic_fetch_add(&srv->stopped_workers, 1) + 1 != (int)srv->nworkers)
		return;
	for (unsigned i = 0; i < srv->nworkers; i++) {
		atomic_store(&srv->workers[i].want_stop, 2);
		uv_async_send(&srv->workers[i].async);
	}
}

static void worker_close_inbox(struct worker *w)
{
	uv_close((uv_handle_t *)&w->deadline_timer, handle_closed);
	pthread_mutex_lock(&w->inbox_lock);
	w->inbox_closed = true;
	pthread_mutex_unlock(&w->inbox_lock);
	worker_drain_inbox(w);
	uv_close((uv_handle_t *)&w->async, handle_closed);
}

static int worker_init(struct worker *w, struct server *srv, unsigned idx)
{
	int rc;
	w->srv = srv;
	w->idx = idx;
	pthread_mutex_init(&w->inbox_lock, NULL);
	if ((rc = uv_loop_init(&w->loop)) < 0)
		return rc;
	w->rt = server_runtime(srv);
	const struct config *cfg = w->rt->cfg;
	if ((rc = upstream_pool_new(&w->loop, cfg->max_inflight, &w->up)) < 0) {
		log_err("cannot start the upstream resolver: %s", strerror(-rc));
		return rc;
	}
	uv_async_init(&w->loop, &w->async, worker_async_cb);
	w->async.data = w;
	uv_timer_init(&w->loop, &w->deadline_timer);
	w->deadline_timer.data = w;
	worker_redis_open(w, cfg);
	worker_spf_configure(w, cfg);
	return frontend_open(w, cfg);
}

static void worker_thread(void *arg)
{
	struct worker *w = arg;
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

static void worker_fini(struct worker *w)
{
	/* Let every close callback run before the loop goes. */
	uv_run(&w->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&w->loop) == UV_EBUSY)
		log_debug("loop %u closed with handles open", w->idx);
	if (w->rt)
		runtime_unref(w->rt);
	pthread_mutex_destroy(&w->inbox_lock);
}

int server_drop_privileges(const char *user)
{
	if (!user || !user[0])
		return 0;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		log_err("user %s: no such user", user);
		return -ENOENT;
	}
	if (setgroups(1, &pw->pw_gid) || setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
		int err = errno;
		log_err("cannot become user %s: %s", user, strerror(err));
		return -err;
	}
	return 0;
}

int server_run(const char *config_path, struct config *cfg_own)
{
	struct server srv;
	int rc;
	memset(&srv, 0, sizeof(srv));
	srv.config_path = config_path;
	pthread_mutex_init(&srv.rt_lock, NULL);
	srv.health = health_table_new();
	srv.inflight = inflight_new();
	srv.cache = cache_mem_new(cfg_own->memory_bytes);
	unsigned threads = cfg_own->threads;
	if (!threads)
		threads = uv_available_parallelism();
	if (threads < 1)
		threads = 1;
	if (!srv.health || !srv.inflight || !srv.cache) {
		log_err("out of memory (cache memory = %llu bytes)",
			(unsigned long long)cfg_own->memory_bytes);
		config_free(cfg_own);
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = runtime_new(cfg_own, srv.health, &srv.rt)) < 0) {
		log_err("cannot start: %s", strerror(-rc));
		goto fail;
	}
	srv.workers = calloc(threads, sizeof(*srv.workers));
	if (!srv.workers) {
		rc = -ENOMEM;
		goto fail;
	}
	srv.nworkers = threads;
	for (unsigned i = 0; i < threads; i++) {
		if ((rc = worker_init(&srv.workers[i], &srv, i)) < 0) {
			/* Only the loops that exist take part in the stop's
			 * second phase: all stop, then all finish. */
			srv.nworkers = i + 1;
			for (unsigned j = 0; j <= i; j++)
				worker_stop(&srv.workers[j]);
			for (unsigned j = 0; j <= i; j++)
				worker_fini(&srv.workers[j]);
			free(srv.workers);
			srv.workers = NULL;
			goto fail;
		}
	}
	struct worker *w0 = &srv.workers[0];
	uv_signal_init(&w0->loop, &srv.sig_hup);
	uv_signal_init(&w0->loop, &srv.sig_term);
	uv_signal_init(&w0->loop, &srv.sig_int);
	srv.sig_hup.data = srv.sig_term.data = srv.sig_int.data = &srv;
	uv_signal_start(&srv.sig_hup, signal_cb, SIGHUP);
	uv_signal_start(&srv.sig_term, signal_cb, SIGTERM);
	uv_signal_start(&srv.sig_int, signal_cb, SIGINT);
	uv_timer_init(&w0->loop, &srv.probe_timer);
	srv.probe_timer.data = w0;
	uv_timer_start(&srv.probe_timer, probe_timer_cb, 0, srv.rt->cfg->probe_interval_ms);
	srv.signals_ready = true;
	/* Every socket is bound (the metrics one too, so it may be a privileged
	 * port) before privileges go. */
	if ((rc = metrics_start(&srv)) < 0 ||
	    (rc = server_drop_privileges(srv.rt->cfg->user)) < 0)
		goto fail_workers;

	for (unsigned i = 1; i < threads; i++) {
		if ((rc = uv_thread_create(&srv.workers[i].thread, worker_thread,
					   &srv.workers[i])) < 0) {
			log_err("cannot start loop thread %u: %s", i, uv_strerror(rc));
			abort();
		}
	}
	log_notice("rblmuxd %s ready: zone %s, %zu sources, %u loop%s", RBLMUX_VERSION,
		   srv.rt->cfg->zone_text, srv.rt->cfg->nsources, threads,
		   threads == 1 ? "" : "s");
	sdnotify_printf("READY=1\nSTATUS=answering %s with %zu sources", srv.rt->cfg->zone_text,
			srv.rt->cfg->nsources);
	worker_thread(w0);
	for (unsigned i = 1; i < threads; i++)
		uv_thread_join(&srv.workers[i].thread);
	rc = 0;
fail_workers:
	if (rc < 0)
		for (unsigned i = 0; i < srv.nworkers; i++)
			worker_stop(&srv.workers[i]);
	for (unsigned i = 0; i < srv.nworkers; i++)
		worker_fini(&srv.workers[i]);
	free(srv.workers);
	metrics_free();
fail:
	if (srv.rt)
		runtime_unref(srv.rt);
	if (srv.cache)
		srv.cache->ops->destroy(srv.cache);
	inflight_free(srv.inflight);
	health_table_free(srv.health);
	pthread_mutex_destroy(&srv.rt_lock);
	return rc;
}
