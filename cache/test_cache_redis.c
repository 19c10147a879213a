/*
 * Unit tests for the Redis cache tier (cache_redis.c, redis_uv.c), against
 * real redis-server children on loopback, started and stopped here by PID.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "cache/cache_redis.h"

#define REDIS_SERVER "/usr/bin/redis-server"
#define PREFIX "test:"
#define MAX_CHILDREN 16
#define NOW 1700000000u

/* ------------------------------------------------- redis-server children */

static pid_t children[MAX_CHILDREN];
static char tmpdir[64];

struct redis_proc {
	pid_t pid;
	int port;              /* 0: unix socket only */
	char sock[128];        /* "" unless a unix socket */
};

static void forget_child(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] == pid)
			children[i] = 0;
}

static void kill_children(void)
{
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
	}
	if (tmpdir[0]) {
		char cmd[128];

		/* Only our own mkdtemp directory: sockets and logs. */
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
		tmpdir[0] = '\0';
	}
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static redisContext *raw_connect(const struct redis_proc *p)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };

	return p->port ? redisConnectWithTimeout("127.0.0.1", p->port, tv)
		       : redisConnectUnixWithTimeout(p->sock, tv);
}

/* Answers PING (or asks for a password): accepting commands. */
static bool redis_ready(const struct redis_proc *p)
{
	redisContext *c = raw_connect(p);
	bool ok = false;

	if (c && !c->err) {
		redisReply *reply = redisCommand(c, "PING");

		ok = reply && (reply->type == REDIS_REPLY_STATUS ||
			       (reply->type == REDIS_REPLY_ERROR && !strncmp(reply->str, "NOAUTH", 6)));
		if (reply)
			freeReplyObject(reply);
	}
	if (c)
		redisFree(c);
	return ok;
}

/* Start redis-server on p->port (or p->sock when port is 0), extra
 * arguments after; wait (bounded) until it answers. */
static void redis_start(struct redis_proc *p, const char *extra1, const char *extra2)
{
	char port[16], log[128];
	const char *argv[32];
	int n = 0, slot = -1;
	pid_t parent = getpid();

	assert_int_equal(access(REDIS_SERVER, X_OK), 0);
	for (int i = 0; i < MAX_CHILDREN && slot < 0; i++)
		if (!children[i])
			slot = i;
	assert_true(slot >= 0);
	snprintf(port, sizeof(port), "%d", p->port);
	snprintf(log, sizeof(log), "%s/redis-%d.log", tmpdir, p->port ? p->port : (int)parent);
	argv[n++] = REDIS_SERVER;
	argv[n++] = "--port";
	argv[n++] = port;
	argv[n++] = "--bind";
	argv[n++] = "127.0.0.1";
	argv[n++] = "-::1";
	argv[n++] = "--save";
	argv[n++] = "";
	argv[n++] = "--appendonly";
	argv[n++] = "no";
	argv[n++] = "--daemonize";
	argv[n++] = "no";
	argv[n++] = "--dir";
	argv[n++] = tmpdir;
	argv[n++] = "--logfile";
	argv[n++] = log;
	if (p->sock[0]) {
		argv[n++] = "--unixsocket";
		argv[n++] = p->sock;
		argv[n++] = "--unixsocketperm";
		argv[n++] = "700";
	}
	if (extra1) {
		argv[n++] = extra1;
		argv[n++] = extra2;
	}
	argv[n] = NULL;

	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		int null = open("/dev/null", O_RDWR);

		/* Dies with the test, however the test ends. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execv(REDIS_SERVER, (char *const *)argv);
		_exit(127);
	}
	children[slot] = p->pid;
	for (int i = 0; i < 500; i++) {
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			forget_child(p->pid);
			fail_msg("redis-server exited at start (log %s)", log);
		}
		if (redis_ready(p))
			return;
		usleep(10000);
	}
	fail_msg("redis-server does not answer (log %s)", log);
}

static void redis_stop(struct redis_proc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGCONT);
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	forget_child(p->pid);
	p->pid = 0;
}

/* One command on a raw synchronous client; the reply is the caller's. */
static redisReply *raw(const struct redis_proc *p, int db, const char *fmt, ...)
{
	redisContext *c = raw_connect(p);
	redisReply *reply;
	va_list ap;

	assert_non_null(c);
	assert_int_equal(c->err, 0);
	if (db) {
		reply = redisCommand(c, "SELECT %d", db);
		assert_non_null(reply);
		assert_int_equal(reply->type, REDIS_REPLY_STATUS);
		freeReplyObject(reply);
	}
	va_start(ap, fmt);
	reply = redisvCommand(c, fmt, ap);
	va_end(ap);
	redisFree(c);
	assert_non_null(reply);
	return reply;
}

static long long raw_integer(const struct redis_proc *p, int db, const char *fmt, const char *key)
{
	redisReply *reply = raw(p, db, fmt, key);
	long long v;

	assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
	v = reply->integer;
	freeReplyObject(reply);
	return v;
}

/* The shared server of the tests that neither kill nor pause theirs. */
static struct redis_proc main_redis;

static int group_setup(void **state)
{
	strcpy(tmpdir, "/tmp/rblmux-redis-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		tmpdir[0] = '\0';
		return -1;
	}
	atexit(kill_children);
	signal(SIGPIPE, SIG_IGN);
	main_redis.port = free_port();
	redis_start(&main_redis, "--enable-debug-command", "local");
	return 0;
}

static int group_teardown(void **state)
{
	kill_children();
	return 0;
}

/* ------------------------------------------------------------ the loop */

struct state_log {
	int count;
	enum cache_redis_state states[64];
	char details[64][128];
};

static void on_state(void *arg, enum cache_redis_state st, const char *detail)
{
	struct state_log *log = arg;

	assert_non_null(detail);
	/* Never the same state twice in a row. */
	if (log->count)
		assert_int_not_equal(log->states[log->count - 1], st);
	else
		assert_int_not_equal(st, CACHE_REDIS_CONNECTING);
	assert_true(log->count < 64);
	log->states[log->count] = st;
	snprintf(log->details[log->count], sizeof(log->details[0]), "%s", detail);
	log->count++;
}

struct fixture {
	uv_loop_t loop;
	uv_timer_t tick;        /* bounds each loop turn of run_until */
	struct cache_tier *t;
	struct state_log log;
};

static void on_tick(uv_timer_t *timer)
{
}

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	uv_timer_init(&f->loop, &f->tick);
	uv_timer_start(&f->tick, on_tick, 5, 5);
}

static struct cache_tier *tier_new(struct fixture *f, const char *address,
				   const char *password, int db, uint32_t read_timeout_ms)
{
	struct cache_redis_opts opts = {
		.address = address, .password = password, .db = db, .key_prefix = PREFIX,
		.read_timeout_ms = read_timeout_ms, .on_state = on_state, .state_arg = &f->log,
	};

	f->t = cache_redis_new(&f->loop, &opts);
	assert_non_null(f->t);
	assert_string_equal(f->t->ops->name, "redis");
	assert_int_equal(cache_redis_state(f->t), CACHE_REDIS_CONNECTING);
	return f->t;
}

/* Destroy the tier (if any), run until every handle is closed, close the
 * loop: proves the tier left nothing behind on it. */
static void fixture_done(struct fixture *f)
{
	if (f->t)
		f->t->ops->destroy(f->t);
	f->t = NULL;
	uv_close((uv_handle_t *)&f->tick, NULL);
	for (int i = 0; i < 100 && uv_run(&f->loop, UV_RUN_NOWAIT); i++)
		;
	assert_int_equal(uv_loop_close(&f->loop), 0);
}

static uint64_t ms_since(uint64_t start_ns)
{
	return (uv_hrtime() - start_ns) / 1000000;
}

/* Run the loop until cond holds, at most max_ms. */
static bool run_until(struct fixture *f, bool (*cond)(struct fixture *, void *), void *arg,
		      uint64_t max_ms)
{
	uint64_t start = uv_hrtime();

	while (!cond(f, arg)) {
		if (ms_since(start) > max_ms)
			return false;
		uv_run(&f->loop, UV_RUN_ONCE);
	}
	return true;
}

static bool state_is(struct fixture *f, void *arg)
{
	return cache_redis_state(f->t) == *(enum cache_redis_state *)arg;
}

static void wait_state(struct fixture *f, enum cache_redis_state st, uint64_t max_ms)
{
	if (!run_until(f, state_is, &st, max_ms))
		fail_msg("state %d, wanted %d (last detail \"%s\")", cache_redis_state(f->t), st,
			 f->log.count ? f->log.details[f->log.count - 1] : "");
}

static bool deadline_passed(struct fixture *f, void *arg)
{
	return uv_hrtime() >= *(uint64_t *)arg;
}

/* Run the loop for ms: lets fire-and-forget commands reach Redis, retries
 * happen, late answers arrive. */
static void run_for(struct fixture *f, uint64_t ms)
{
	uint64_t deadline = uv_hrtime() + ms * 1000000;

	run_until(f, deadline_passed, &deadline, ms + 1000);
}

static struct cache_redis_stats stats_of(struct cache_tier *t)
{
	struct cache_redis_stats st;

	cache_redis_get_stats(t, &st);
	return st;
}

/* ------------------------------------------------------------- gets */

struct result {
	int calls;
	enum cache_status status;
	struct cache_item item;
};

static void on_result(void *arg, enum cache_status status, const struct cache_item *item)
{
	struct result *res = arg;

	res->calls++;
	res->status = status;
	if (status == CACHE_MISS) {
		assert_null(item);
	} else {
		assert_non_null(item);
		res->item = *item;
	}
}

static bool result_done(struct fixture *f, void *arg)
{
	return ((struct result *)arg)->calls > 0;
}

/* A get run to its end; the status, and the item in res. */
static enum cache_status get_sync(struct fixture *f, const char *key, uint32_t now,
				  struct result *res)
{
	struct cache_item item;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = f->t->ops->get(f->t, (const uint8_t *)key, strlen(key), now, &item, on_result, res);
	if (rc >= 0) {
		assert_int_equal(res->calls, 0);
		return (enum cache_status)rc;
	}
	assert_int_equal(rc, -EINPROGRESS);
	assert_true(run_until(f, result_done, res, 2000));
	assert_int_equal(res->calls, 1);
	return res->status;
}

static void put_str(struct fixture *f, const char *key, const char *value, uint32_t now,
		    uint32_t expire, uint32_t stale_until)
{
	f->t->ops->put(f->t, (const uint8_t *)key, strlen(key), (const uint8_t *)value,
		       strlen(value), now, expire, stale_until);
}

/* Generous: the tests that want answers must not see a loaded machine's
 * scheduling delays as Redis timing out. */
#define ANSWER_MS 2000

static void connect_main(struct fixture *f, int db, uint32_t read_timeout_ms)
{
	char address[64];

	fixture_init(f);
	snprintf(address, sizeof(address), "127.0.0.1:%d", main_redis.port);
	tier_new(f, address, NULL, db, read_timeout_ms);
	wait_state(f, CACHE_REDIS_UP, 3000);
	assert_int_equal(f->log.count, 1);
	assert_int_equal(f->log.states[0], CACHE_REDIS_UP);
}

/* ------------------------------------------------------------- tests */

static void test_bad_options(void **state)
{
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", ":6379", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:123456", "127.0.0.1:63a9", "127.0.0.1:-1", "127.0.0.1: 6379",
		"::1:6379", "[::1]", "[::1]6379", "[]:6379", "[::1:6379", "[not-v6]:6379",
		"[127.0.0.1]:6379", "bad host:6379", "host/x:6379", "unix:",
	};
	char long_path[5 + 108 + 1] = "unix:";
	char long_prefix[CACHE_REDIS_PREFIX_MAX + 2];
	struct cache_redis_opts opts = { .address = "127.0.0.1:6379" };
	uv_loop_t loop;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_null(cache_redis_new(&loop, NULL));
	assert_null(cache_redis_new(NULL, &opts));
	opts.address = NULL;
	assert_null(cache_redis_new(&loop, &opts));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		opts.address = bad[i];
		if (cache_redis_new(&loop, &opts))
			fail_msg("accepted address \"%s\"", bad[i]);
	}
	/* sun_path holds 107 bytes and a NUL. */
	memset(long_path + 5, 'a', 108);
	long_path[5 + 108] = '\0';
	opts.address = long_path;
	assert_null(cache_redis_new(&loop, &opts));
	opts.address = "127.0.0.1:6379";
	opts.db = -1;
	assert_null(cache_redis_new(&loop, &opts));
	opts.db = 0;
	memset(long_prefix, 'p', sizeof(long_prefix) - 1);
	long_prefix[sizeof(long_prefix) - 1] = '\0';
	opts.key_prefix = long_prefix;
	assert_null(cache_redis_new(&loop, &opts));
	long_prefix[CACHE_REDIS_PREFIX_MAX] = '\0';
	opts.key_prefix = long_prefix;

	static const char *const good[] = {
		"127.0.0.1:6379", "[::1]:1", "localhost:65535", "redis-1.example_x:6379",
		"unix:/run/redis/redis.sock",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		opts.address = good[i];
		struct cache_tier *t = cache_redis_new(&loop, &opts);

		if (!t)
			fail_msg("refused address \"%s\"", good[i]);
		/* Not a single loop turn: nothing was tried yet. */
		assert_int_equal(cache_redis_state(t), CACHE_REDIS_CONNECTING);
		t->ops->destroy(t);
	}
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_put_get(void **state)
{
	struct fixture f;
	struct result res;
	struct cache_item item;

	connect_main(&f, 0, ANSWER_MS);
	put_str(&f, "bl.example:A:192.0.2.1", "listed", NOW, NOW + 60, NOW + 3600);
	assert_int_equal(get_sync(&f, "bl.example:A:192.0.2.1", NOW, &res), CACHE_HIT);
	assert_int_equal(res.item.expire, NOW + 60);
	assert_int_equal(res.item.stale_until, NOW + 3600);
	assert_int_equal(res.item.stored, NOW);
	assert_int_equal(res.item.len, 6);
	assert_memory_equal(res.item.value, "listed", 6);

	assert_int_equal(get_sync(&f, "bl.example:A:192.0.2.2", NOW, &res), CACHE_MISS);

	/* The documented layout, under prefix + "v1:". */
	redisReply *reply = raw(&main_redis, 0, "GET %s", PREFIX "v1:bl.example:A:192.0.2.1");
	assert_int_equal(reply->type, REDIS_REPLY_STRING);
	assert_int_equal(reply->len, 39);
	assert_memory_equal(reply->str, "1700000060 1700003600 1700000000\nlisted", 39);
	freeReplyObject(reply);

	/* Invalid arguments: -EINVAL, no callback, not counted as gets. */
	res.calls = 0;
	assert_int_equal(f.t->ops->get(f.t, NULL, 1, NOW, &item, on_result, &res), -EINVAL);
	assert_int_equal(f.t->ops->get(f.t, (const uint8_t *)"k", 0, NOW, &item, on_result, &res), -EINVAL);
	assert_int_equal(f.t->ops->get(f.t, (const uint8_t *)"k", 1, NOW, &item, NULL, NULL), -EINVAL);
	uint8_t big[CACHE_KEY_MAX + 1];
	memset(big, 'k', sizeof(big));
	assert_int_equal(f.t->ops->get(f.t, big, sizeof(big), NOW, &item, on_result, &res), -EINVAL);
	assert_int_equal(res.calls, 0);

	/* The longest key works. */
	f.t->ops->put(f.t, big, CACHE_KEY_MAX, (const uint8_t *)"v", 1, NOW, NOW + 1, NOW + 1);
	memset(&res, 0, sizeof(res));
	assert_int_equal(f.t->ops->get(f.t, big, CACHE_KEY_MAX, NOW, &item, on_result, &res),
			 -EINPROGRESS);
	assert_true(run_until(&f, result_done, &res, 2000));
	assert_int_equal(res.status, CACHE_HIT);

	struct cache_redis_stats st = stats_of(f.t);
	assert_int_equal(st.gets, 3);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.stale_hits, 0);
	assert_int_equal(st.puts, 2);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.timeouts, 0);
	assert_int_equal(st.skipped, 0);
	assert_int_equal(st.reconnects, 0);
	fixture_done(&f);
}

static void test_binary_values(void **state)
{
	struct fixture f;
	struct result res;
	uint8_t value[CACHE_VALUE_MAX + 1];
	const uint8_t *key = (const uint8_t *)"bin";

	connect_main(&f, 0, ANSWER_MS);
	for (size_t i = 0; i < sizeof(value); i++)
		value[i] = (uint8_t)(i * 7 + (i >> 8));
	value[0] = '\n';
	value[1] = '\0';
	value[2] = '\r';

	f.t->ops->put(f.t, key, 3, value, CACHE_VALUE_MAX, NOW, NOW + 10, NOW + 20);
	assert_int_equal(get_sync(&f, "bin", NOW, &res), CACHE_HIT);
	assert_int_equal(res.item.len, CACHE_VALUE_MAX);
	assert_memory_equal(res.item.value, value, CACHE_VALUE_MAX);

	/* An empty value is a value. */
	f.t->ops->put(f.t, key, 3, NULL, 0, NOW, NOW + 10, NOW + 20);
	assert_int_equal(get_sync(&f, "bin", NOW, &res), CACHE_HIT);
	assert_int_equal(res.item.len, 0);

	/* Too big, or NULL with a length: refused, the old value stays. */
	f.t->ops->put(f.t, key, 3, value, CACHE_VALUE_MAX + 1, NOW, NOW + 10, NOW + 20);
	f.t->ops->put(f.t, key, 3, NULL, 1, NOW, NOW + 10, NOW + 20);
	assert_int_equal(get_sync(&f, "bin", NOW, &res), CACHE_HIT);
	assert_int_equal(res.item.len, 0);
	assert_int_equal(stats_of(f.t).errors, 2);
	fixture_done(&f);
}

static void test_expiry(void **state)
{
	struct fixture f;
	struct result res;
	const char *rkey = PREFIX "v1:exp";

	connect_main(&f, 0, ANSWER_MS);
	put_str(&f, "exp", "v", NOW, NOW + 10, NOW + 20);
	assert_int_equal(get_sync(&f, "exp", NOW - 5, &res), CACHE_HIT);
	assert_int_equal(get_sync(&f, "exp", NOW + 9, &res), CACHE_HIT);
	assert_int_equal(get_sync(&f, "exp", NOW + 10, &res), CACHE_STALE);
	assert_int_equal(res.item.expire, NOW + 10);
	assert_int_equal(res.item.stale_until, NOW + 20);
	assert_int_equal(res.item.len, 1);
	assert_int_equal(get_sync(&f, "exp", NOW + 19, &res), CACHE_STALE);
	assert_int_equal(get_sync(&f, "exp", NOW + 20, &res), CACHE_MISS);
	assert_int_equal(get_sync(&f, "exp", UINT32_MAX, &res), CACHE_MISS);

	/* Redis drops it when serving stale is over. */
	long long ttl = raw_integer(&main_redis, 0, "TTL %s", rkey);
	assert_true(ttl >= 19 && ttl <= 20);

	put_str(&f, "exp", "v", NOW, NOW + 600, NOW + 7200);
	run_for(&f, 50);
	ttl = raw_integer(&main_redis, 0, "TTL %s", rkey);
	assert_true(ttl >= 7199 && ttl <= 7200);

	/* stale_until before expire: no stale period. */
	put_str(&f, "exp", "v", NOW, NOW + 30, NOW + 5);
	assert_int_equal(get_sync(&f, "exp", NOW + 29, &res), CACHE_HIT);
	assert_int_equal(res.item.stale_until, NOW + 30);
	assert_int_equal(get_sync(&f, "exp", NOW + 30, &res), CACHE_MISS);
	ttl = raw_integer(&main_redis, 0, "TTL %s", rkey);
	assert_true(ttl >= 29 && ttl <= 30);

	/* Already expired when stored: at least one second in Redis. */
	put_str(&f, "exp", "v", NOW, NOW, NOW + 1);
	assert_int_equal(get_sync(&f, "exp", NOW, &res), CACHE_STALE);
	ttl = raw_integer(&main_redis, 0, "TTL %s", rkey);
	assert_true(ttl >= 0 && ttl <= 1);

	/* Past stale_until: the put replaces by deleting. */
	put_str(&f, "exp", "v", NOW, NOW + 5, NOW + 5);
	assert_int_equal(get_sync(&f, "exp", NOW + 4, &res), CACHE_HIT);
	put_str(&f, "exp", "v", NOW + 10, NOW + 5, NOW + 5);
	run_for(&f, 50);
	assert_int_equal(raw_integer(&main_redis, 0, "EXISTS %s", rkey), 0);
	assert_int_equal(get_sync(&f, "exp", NOW, &res), CACHE_MISS);
	fixture_done(&f);
}

#define V(literal) { literal, sizeof(literal) - 1 }

static void test_malformed_values(void **state)
{
	static const struct {
		const char *value;
		size_t len;
	} bad[] = {
		V(""),
		V("garbage"),
		V("1700000060 1700003600 1700000000"),          /* no newline */
		V("1700000060 1700003600\nv"),                   /* two numbers */
		V("1700000060  1700003600 1700000000\nv"),       /* two spaces */
		V("1700000060 1700003600 1700000000 \nv"),
		V("+1700000060 1700003600 1700000000\nv"),
		V("-1 1700003600 1700000000\nv"),
		V("4294967296 4294967296 1700000000\nv"),        /* over 32 bits */
		V("01700000060 1700003600 1700000000\nv"),       /* 11 digits */
		V("1700000060 1700000059 1700000000\nv"),        /* stale before expire */
		V("0x10 1700003600 1700000000\nv"),
		V("1700000060\t1700003600 1700000000\nv"),
		V("1700000060 1700003600 1700000000\r\nv"),
		V("\0" "700000060 1700003600 1700000000\nv"),
	};
	struct fixture f;
	struct result res;
	char rkey[64];

	connect_main(&f, 0, ANSWER_MS);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(rkey, sizeof(rkey), PREFIX "v1:bad%zu", i);
		freeReplyObject(raw(&main_redis, 0, "SET %s %b", rkey, bad[i].value, bad[i].len));
		snprintf(rkey, sizeof(rkey), "bad%zu", i);
		if (get_sync(&f, rkey, NOW, &res) != CACHE_MISS)
			fail_msg("value %zu read as %d", i, res.status);
	}
	/* One byte over CACHE_VALUE_MAX. */
	char big[64 + CACHE_VALUE_MAX + 1];
	int head = snprintf(big, sizeof(big), "%u %u %u\n", NOW + 60, NOW + 60, NOW);
	memset(big + head, 'x', CACHE_VALUE_MAX + 1);
	freeReplyObject(raw(&main_redis, 0, "SET %s %b", PREFIX "v1:big", big,
			    (size_t)head + CACHE_VALUE_MAX + 1));
	assert_int_equal(get_sync(&f, "big", NOW, &res), CACHE_MISS);
	/* The largest one that fits is fine. */
	freeReplyObject(raw(&main_redis, 0, "SET %s %b", PREFIX "v1:big", big,
			    (size_t)head + CACHE_VALUE_MAX));
	assert_int_equal(get_sync(&f, "big", NOW, &res), CACHE_HIT);
	assert_int_equal(res.item.len, CACHE_VALUE_MAX);

	/* A foreign writer with the same layout is understood. */
	freeReplyObject(raw(&main_redis, 0, "SET %s %s", PREFIX "v1:foreign", "100 200 50\nabc"));
	assert_int_equal(get_sync(&f, "foreign", 150, &res), CACHE_STALE);
	assert_int_equal(res.item.stored, 50);
	assert_int_equal(res.item.len, 3);
	assert_memory_equal(res.item.value, "abc", 3);

	/* Not a string: Redis answers WRONGTYPE. */
	freeReplyObject(raw(&main_redis, 0, "RPUSH %s %s", PREFIX "v1:list", "x"));
	assert_int_equal(get_sync(&f, "list", NOW, &res), CACHE_MISS);

	size_t n = sizeof(bad) / sizeof(bad[0]);
	struct cache_redis_stats st = stats_of(f.t);
	assert_int_equal(st.errors, n + 2);
	assert_int_equal(st.misses, n + 2);
	assert_int_equal(st.gets, n + 4);
	/* Still connected and working. */
	assert_int_equal(cache_redis_state(f.t), CACHE_REDIS_UP);
	fixture_done(&f);
}

/* Many gets in one turn: pipelined, and each answer reaches its own get. */
struct bulk {
	int calls[1000];
	enum cache_status status[1000];
	uint8_t first[1000];
	int done;
};

struct bulk_arg {
	struct bulk *b;
	int i;
};

static void on_bulk(void *arg, enum cache_status status, const struct cache_item *item)
{
	struct bulk_arg *a = arg;

	a->b->calls[a->i]++;
	a->b->status[a->i] = status;
	a->b->first[a->i] = item ? item->value[0] : 0;
	a->b->done++;
}

static bool bulk_done(struct fixture *f, void *arg)
{
	return ((struct bulk *)arg)->done >= 1000;
}

static void bulk_issue(struct fixture *f, struct bulk *b, struct bulk_arg *args)
{
	char key[32];

	memset(b, 0, sizeof(*b));
	for (int i = 0; i < 1000; i++) {
		args[i] = (struct bulk_arg){ .b = b, .i = i };
		snprintf(key, sizeof(key), "bulk:%d", i);
		assert_int_equal(f->t->ops->get(f->t, (const uint8_t *)key, strlen(key), NOW, NULL,
						on_bulk, &args[i]), -EINPROGRESS);
	}
}

static void test_pipelined(void **state)
{
	static struct bulk b;
	static struct bulk_arg args[1000];
	struct fixture f;
	char key[32];

	connect_main(&f, 0, ANSWER_MS);
	for (int i = 0; i < 1000; i += 2) {
		uint8_t v = (uint8_t)(i / 2);

		snprintf(key, sizeof(key), "bulk:%d", i);
		f.t->ops->put(f.t, (const uint8_t *)key, strlen(key), &v, 1, NOW, NOW + 60, NOW + 60);
	}
	bulk_issue(&f, &b, args);
	assert_true(run_until(&f, bulk_done, &b, 3000));
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(b.calls[i], 1);
		assert_int_equal(b.status[i], i % 2 ? CACHE_MISS : CACHE_HIT);
		if (i % 2 == 0)
			assert_int_equal(b.first[i], (uint8_t)(i / 2));
	}
	fixture_done(&f);
}

static void test_db_select(void **state)
{
	struct fixture f;
	struct result res;

	connect_main(&f, 3, ANSWER_MS);
	put_str(&f, "db", "three", NOW, NOW + 60, NOW + 60);
	assert_int_equal(get_sync(&f, "db", NOW, &res), CACHE_HIT);
	assert_int_equal(raw_integer(&main_redis, 3, "EXISTS %s", PREFIX "v1:db"), 1);
	assert_int_equal(raw_integer(&main_redis, 0, "EXISTS %s", PREFIX "v1:db"), 0);
	fixture_done(&f);

	/* A db Redis does not have: refused, reported with Redis' words. */
	char address[64];
	fixture_init(&f);
	snprintf(address, sizeof(address), "127.0.0.1:%d", main_redis.port);
	tier_new(&f, address, NULL, 99, ANSWER_MS);
	wait_state(&f, CACHE_REDIS_DOWN, 3000);
	assert_int_equal(f.log.count, 1);
	assert_non_null(strstr(f.log.details[0], "DB index is out of range"));
	assert_int_equal(get_sync(&f, "db", NOW, &res), CACHE_MISS);
	fixture_done(&f);
}

static void test_ipv6(void **state)
{
	struct fixture f;
	struct result res;
	char address[64];
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	redisContext *c = redisConnectWithTimeout("::1", main_redis.port, tv);
	bool have_v6 = c && !c->err;

	if (c)
		redisFree(c);
	if (!have_v6)
		skip();
	fixture_init(&f);
	snprintf(address, sizeof(address), "[::1]:%d", main_redis.port);
	tier_new(&f, address, NULL, 0, ANSWER_MS);
	wait_state(&f, CACHE_REDIS_UP, 3000);
	put_str(&f, "v6", "x", NOW, NOW + 60, NOW + 60);
	assert_int_equal(get_sync(&f, "v6", NOW, &res), CACHE_HIT);
	fixture_done(&f);
}

static void test_unix_socket(void **state)
{
	struct redis_proc p = { 0 };
	struct fixture f;
	struct result res;
	char address[160];

	snprintf(p.sock, sizeof(p.sock), "%s/redis.sock", tmpdir);
	redis_start(&p, NULL, NULL);
	fixture_init(&f);
	snprintf(address, sizeof(address), "unix:%s", p.sock);
	tier_new(&f, address, NULL, 0, ANSWER_MS);
	wait_state(&f, CACHE_REDIS_UP, 3000);
	put_str(&f, "unix", "u", NOW, NOW + 60, NOW + 60);
	assert_int_equal(get_sync(&f, "unix", NOW, &res), CACHE_HIT);
	assert_int_equal(raw_integer(&p, 0, "EXISTS %s", PREFIX "v1:unix"), 1);
	fixture_done(&f);

	/* A socket that is not there: down, and says why. */
	fixture_init(&f);
	snprintf(address, sizeof(address), "unix:%s/absent.sock", tmpdir);
	tier_new(&f, address, NULL, 0, ANSWER_MS);
	wait_state(&f, CACHE_REDIS_DOWN, 3000);
	assert_non_null(strstr(f.log.details[0], "No such file"));
	fixture_done(&f);
	redis_stop(&p);
}

static void test_password(void **state)
{
	struct redis_proc p = { .port = free_port() };
	struct fixture f;
	struct result res;
	char address[64];

	redis_start(&p, "--requirepass", "s3cret pass");
	snprintf(address, sizeof(address), "127.0.0.1:%d", p.port);

	fixture_init(&f);
	tier_new(&f, address, "s3cret pass", 2, ANSWER_MS);
	wait_state(&f, CACHE_REDIS_UP, 3000);
	put_str(&f, "pw", "p", NOW, NOW + 60, NOW + 60);
	assert_int_equal(get_sync(&f, "pw", NOW, &res), CACHE_HIT);
	fixture_done(&f);

	fixture_init(&f);
	tier_new(&f, address, "wrong", 0, ANSWER_MS);
	wait_state(&f, CACHE_REDIS_AUTH_FAILED, 3000);
	assert_int_equal(f.log.count, 1);
	assert_true(strstr(f.log.details[0], "WRONGPASS") ||
		    strstr(f.log.details[0], "invalid password"));
	assert_int_equal(get_sync(&f, "pw", NOW, &res), CACHE_MISS);
	put_str(&f, "pw", "p", NOW, NOW + 60, NOW + 60);
	struct cache_redis_stats st = stats_of(f.t);
	assert_int_equal(st.skipped, 2);
	assert_int_equal(st.puts, 0);
	fixture_done(&f);

	/* No password for a server that wants one. */
	fixture_init(&f);
	tier_new(&f, address, "", 0, ANSWER_MS);
	wait_state(&f, CACHE_REDIS_AUTH_FAILED, 3000);
	assert_non_null(strstr(f.log.details[0], "NOAUTH"));
	fixture_done(&f);
	redis_stop(&p);
}

static void test_no_server(void **state)
{
	struct fixture f;
	struct result res;
	char address[64];
	fixture_init(&f);
	uint64_t start = uv_hrtime();
	snprintf(address, sizeof(address), "127.0.0.1:%d", free_port());
	tier_new(&f, address, NULL, 0, ANSWER_MS);
	wait_state(&f, CACHE_REDIS_DOWN, 3000);
	assert_non_null(strstr(f.log.details[0], "refused"));
	assert_int_equal(get_sync(&f, "x", NOW, &res), CACHE_MISS);
	/* Retries: 100, 200, 400 ms... and reports DOWN only once. */
	run_for(&f, 800 - ms_since(start));
	struct cache_redis_stats st = stats_of(f.t);
	assert_true(st.reconnects >= 1 && st.reconnects <= 4);
	assert_int_equal(st.skipped, 1);
	assert_int_equal(st.gets, 1);
	assert_int_equal(f.log.count, 1);
	fixture_done(&f);
}

static void test_killed_and_restarted(void **state)
{
	static struct bulk b;
	static struct bulk_arg args[1000];
	struct redis_proc p = { .port = free_port() };
	struct fixture f;
	struct result res;
	char address[64];

	redis_start(&p, NULL, NULL);
	fixture_init(&f);
	snprintf(address, sizeof(address), "127.0.0.1:%d", p.port);
	/* A long timeout: only the connection's failure can end these gets. */
	tier_new(&f, address, NULL, 0, 3000);
	wait_state(&f, CACHE_REDIS_UP, 3000);

	/* Paused, so that the gets go out and none is answered; then killed
	 * under them. */
	kill(p.pid, SIGSTOP);
	bulk_issue(&f, &b, args);
	run_for(&f, 50);
	assert_int_equal(b.done, 0);
	kill(p.pid, SIGKILL);
	waitpid(p.pid, NULL, 0);
	forget_child(p.pid);

	assert_true(run_until(&f, bulk_done, &b, 2500));
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(b.calls[i], 1);
		assert_int_equal(b.status[i], CACHE_MISS);
	}
	wait_state(&f, CACHE_REDIS_DOWN, 1000);
	/* The socket's failure ended them, not a timer. */
	struct cache_redis_stats st = stats_of(f.t);
	assert_int_equal(st.timeouts, 0);
	assert_int_equal(st.misses, 1000);
	assert_int_equal(st.errors, 1000);
	assert_null(strstr(f.log.details[1], "timed out"));

	/* Nothing is sent while down. */
	assert_int_equal(get_sync(&f, "k", NOW, &res), CACHE_MISS);

	/* Back on the same port: up again on its own. */
	redis_start(&p, NULL, NULL);
	wait_state(&f, CACHE_REDIS_UP, 5000);
	put_str(&f, "k", "again", NOW, NOW + 60, NOW + 60);
	assert_int_equal(get_sync(&f, "k", NOW, &res), CACHE_HIT);
	assert_int_equal(res.item.len, 5);
	assert_true(stats_of(f.t).reconnects >= 1);
	assert_int_equal(f.log.count, 3);
	assert_int_equal(f.log.states[1], CACHE_REDIS_DOWN);
	assert_int_equal(f.log.states[2], CACHE_REDIS_UP);
	fixture_done(&f);
	redis_stop(&p);
}

static void test_paused(void **state)
{
	static struct bulk b;
	static struct bulk_arg args[1000];
	struct redis_proc p = { .port = free_port() };
	struct fixture f;
	struct result res;
	char address[64];

	redis_start(&p, NULL, NULL);
	fixture_init(&f);
	snprintf(address, sizeof(address), "127.0.0.1:%d", p.port);
	tier_new(&f, address, NULL, 0, 20);
	wait_state(&f, CACHE_REDIS_UP, 3000);
	put_str(&f, "bulk:1", "kept", NOW, NOW + 60, NOW + 60);
	assert_int_equal(get_sync(&f, "bulk:1", NOW, &res), CACHE_HIT);

	kill(p.pid, SIGSTOP);
	bulk_issue(&f, &b, args);
	uint64_t start = uv_hrtime();
	assert_true(run_until(&f, bulk_done, &b, 1000));
	/* Loose: the timeout is 20 ms, a busy machine may add some; before
	 * the PING (1 s) could end them. */
	assert_true(ms_since(start) < 1000);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(b.calls[i], 1);
		assert_int_equal(b.status[i], CACHE_MISS);
	}
	struct cache_redis_stats st = stats_of(f.t);
	assert_int_equal(st.timeouts, 1000);

	/* Stalled: nothing more is sent, the answer is an immediate miss. */
	assert_int_equal(f.t->ops->get(f.t, (const uint8_t *)"bulk:1", 6, NOW, NULL, on_result, &res),
			 CACHE_MISS);
	assert_int_equal(stats_of(f.t).skipped, 1);

	/* The PING finds it dead within about a second. */
	wait_state(&f, CACHE_REDIS_DOWN, 3000);
	assert_non_null(strstr(f.log.details[f.log.count - 1], "PING timed out"));

	kill(p.pid, SIGCONT);
	wait_state(&f, CACHE_REDIS_UP, 6000);
	assert_int_equal(get_sync(&f, "bulk:1", NOW, &res), CACHE_HIT);
	assert_memory_equal(res.item.value, "kept", 4);
	fixture_done(&f);
	redis_stop(&p);
}

/* A slow Redis that still answers is not dropped: only its gets miss. */
static void test_slow_not_dropped(void **state)
{
	static struct bulk b;
	static struct bulk_arg args[1000];
	struct fixture f;
	struct result res;

	connect_main(&f, 0, 0);
	/* DEBUG SLEEP blocks the server 300 ms; the PING answers late. */
	struct redis_proc *p = &main_redis;
	redisContext *c = raw_connect(p);
	assert_non_null(c);
	redisAppendCommand(c, "DEBUG SLEEP 0.3");
	int done = 0;
	while (!done)
		assert_int_equal(redisBufferWrite(c, &done), REDIS_OK);
	usleep(20000);
	bulk_issue(&f, &b, args);
	assert_true(run_until(&f, bulk_done, &b, 1000));
	/* Let the late answers and the PING arrive. */
	run_for(&f, 500);
	redisReply *reply;
	assert_int_equal(redisGetReply(c, (void **)&reply), REDIS_OK);
	freeReplyObject(reply);
	redisFree(c);
	assert_int_equal(cache_redis_state(f.t), CACHE_REDIS_UP);
	assert_int_equal(f.log.count, 1);
	/* Written by test_pipelined. */
	assert_int_equal(get_sync(&f, "bulk:0", NOW, &res), CACHE_HIT);
	assert_true(stats_of(f.t).timeouts >= 1000);
	fixture_done(&f);
}

struct destroy_count {
	int calls;
	int misses;
};

static void on_destroyed_get(void *arg, enum cache_status status, const struct cache_item *item)
{
	struct destroy_count *d = arg;

	d->calls++;
	if (status == CACHE_MISS && !item)
		d->misses++;
}

static void test_destroy_pending(void **state)
{
	struct fixture f;
	struct destroy_count d = { 0 };
	char address[64];

	connect_main(&f, 0, ANSWER_MS);
	for (int i = 0; i < 50; i++)
		assert_int_equal(f.t->ops->get(f.t, (const uint8_t *)"pending", 7, NOW, NULL,
					       on_destroyed_get, &d), -EINPROGRESS);
	f.t->ops->put(f.t, (const uint8_t *)"pending", 7, (const uint8_t *)"x", 1, NOW, NOW + 1,
		      NOW + 1);
	f.t->ops->destroy(f.t);
	f.t = NULL;
	assert_int_equal(d.calls, 50);
	assert_int_equal(d.misses, 50);
	fixture_done(&f);
	assert_int_equal(d.calls, 50);

	/* Destroyed with the gets on the wire. */
	connect_main(&f, 0, ANSWER_MS);
	memset(&d, 0, sizeof(d));
	for (int i = 0; i < 50; i++)
		f.t->ops->get(f.t, (const uint8_t *)"pending", 7, NOW, NULL, on_destroyed_get, &d);
	uv_run(&f.loop, UV_RUN_NOWAIT);
	f.t->ops->destroy(f.t);
	f.t = NULL;
	assert_int_equal(d.calls, 50);
	fixture_done(&f);
	assert_int_equal(d.calls, 50);

	/* Destroyed while down and waiting to retry. */
	fixture_init(&f);
	snprintf(address, sizeof(address), "127.0.0.1:%d", free_port());
	tier_new(&f, address, NULL, 0, ANSWER_MS);
	wait_state(&f, CACHE_REDIS_DOWN, 3000);
	fixture_done(&f);
}

/* A callback that destroys the tier from inside hiredis' reply handling. */
struct destroy_in_cb {
	struct fixture *f;
	int calls;
};

static void on_get_destroy(void *arg, enum cache_status status, const struct cache_item *item)
{
	struct destroy_in_cb *d = arg;

	struct cache_tier *t = d->f->t;

	d->calls++;
	assert_int_equal(status, d->calls == 1 ? CACHE_HIT : CACHE_MISS);
	if (t) {
		/* Cleared first: destroy calls the other gets back at once. */
		d->f->t = NULL;
		t->ops->destroy(t);
	}
}

static bool destroy_done(struct fixture *f, void *arg)
{
	return ((struct destroy_in_cb *)arg)->calls >= 10;
}

static void test_destroy_in_callback(void **state)
{
	struct fixture f;
	struct destroy_in_cb d = { .f = &f };

	connect_main(&f, 0, ANSWER_MS);
	put_str(&f, "dcb", "x", NOW, NOW + 60, NOW + 60);
	for (int i = 0; i < 10; i++)
		assert_int_equal(f.t->ops->get(f.t, (const uint8_t *)"dcb", 3, NOW, NULL,
					       on_get_destroy, &d), -EINPROGRESS);
	assert_true(run_until(&f, destroy_done, &d, 2000));
	assert_int_equal(d.calls, 10);
	assert_null(f.t);
	fixture_done(&f);
	assert_int_equal(d.calls, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_binary_values),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_malformed_values),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_db_select),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_unix_socket),
		cmocka_unit_test(test_password),
		cmocka_unit_test(test_no_server),
		cmocka_unit_test(test_killed_and_restarted),
		cmocka_unit_test(test_paused),
		cmocka_unit_test(test_slow_not_dropped),
		cmocka_unit_test(test_destroy_pending),
		cmocka_unit_test(test_destroy_in_callback),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
