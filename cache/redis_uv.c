/* redis_uv: hiredis asynchronous contexts on a libuv loop (see redis_uv.h). */
#include "cache/redis_uv.h"

#include <errno.h>
#include <stdlib.h>

struct redis_uv {
	redisAsyncContext *ac;  /* NULL once hiredis has let go of it */
	uv_poll_t poll;
	int events;             /* UV_READABLE | UV_WRITABLE that hiredis wants */
};

static void redis_uv_on_poll(uv_poll_t *handle, int status, int events)
{
	struct redis_uv *p = handle->data;

	/* On a socket error libuv has stopped the handle and reports no
	 * events: let hiredis try what it was waiting for, so that it meets
	 * the error itself (and restarts the handle if it wants more). */
	if (status < 0) {
		events = p->events;
		p->events = 0;
	}
	if (p->ac && (events & UV_READABLE))
		redisAsyncHandleRead(p->ac);
	/* The read may have freed the context: cleanup cleared p->ac. */
	if (p->ac && (events & UV_WRITABLE))
		redisAsyncHandleWrite(p->ac);
}

/* hiredis asks for reads after every read and write: restarting an
 * unchanged handle would cost two epoll_ctl calls each time. */
static void redis_uv_want(struct redis_uv *p, int events)
{
	if (events == p->events)
		return;
	if (!events) {
		uv_poll_stop(&p->poll);
		p->events = 0;
	} else if (uv_poll_start(&p->poll, events, redis_uv_on_poll) == 0) {
		p->events = events;
	} else {
		/* Not polling: the next request tries again. */
		uv_poll_stop(&p->poll);
		p->events = 0;
	}
}

static void redis_uv_add_read(void *privdata)
{
	struct redis_uv *p = privdata;

	redis_uv_want(p, p->events | UV_READABLE);
}

static void redis_uv_del_read(void *privdata)
{
	struct redis_uv *p = privdata;

	redis_uv_want(p, p->events & ~UV_READABLE);
}

static void redis_uv_add_write(void *privdata)
{
	struct redis_uv *p = privdata;

	redis_uv_want(p, p->events | UV_WRITABLE);
}

static void redis_uv_del_write(void *privdata)
{
	struct redis_uv *p = privdata;

	redis_uv_want(p, p->events & ~UV_WRITABLE);
}

static void redis_uv_on_close(uv_handle_t *handle)
{
	free(handle->data);
}

/* hiredis calls this while freeing the context, before closing the socket. */
static void redis_uv_cleanup(void *privdata)
{
	struct redis_uv *p = privdata;

	p->ac = NULL;
	uv_close((uv_handle_t *)&p->poll, redis_uv_on_close);
}

int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
	struct redis_uv *p;
	int rc;

	if (ac->ev.data)
		return -EEXIST;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	rc = uv_poll_init(loop, &p->poll, ac->c.fd);
	if (rc < 0) {
		/* The handle was never registered: no close, no callback. */
		free(p);
		return rc;
	}
	p->poll.data = p;
	p->ac = ac;
	ac->ev.data = p;
	ac->ev.addRead = redis_uv_add_read;
	ac->ev.delRead = redis_uv_del_read;
	ac->ev.addWrite = redis_uv_add_write;
	ac->ev.delWrite = redis_uv_del_write;
	ac->ev.cleanup = redis_uv_cleanup;
	return 0;
}
