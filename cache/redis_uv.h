/*
 * redis_uv: drive a hiredis asynchronous context from a libuv loop.
 *
 * Replaces hiredis 0.14's adapters/libuv.h, which drops the poll callback's
 * error status: when the socket fails (connection refused, reset, Redis
 * killed) libuv stops the handle and reports only the error, so hiredis never
 * learned of it and neither failed the pending commands nor reported the
 * connection lost. Here an error is handed to hiredis as the events it was
 * waiting for; its read or write then fails and it tears the context down
 * the usual way (pending callbacks get a NULL reply, then the disconnect or
 * connect callback runs). hiredis 1.0 fixed its own adapter the same way.
 *
 * Each attached context owns a uv_poll_t, closed when hiredis frees the
 * context and freed in its close callback: the loop must keep running after
 * redisAsyncFree() for that memory to come back.
 *
 * If libuv refuses to (re)start the poll handle, no event comes for that
 * context any more: its owner must bound every wait with timers of its own.
 */
#ifndef RBLMUX_CACHE_REDIS_UV_H
#define RBLMUX_CACHE_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/*
 * Attach ac (fresh from redisAsyncConnect*, without error) to loop. Call it
 * before redisAsyncSetConnectCallback(), which already asks for an event.
 * Returns 0, -EEXIST (already attached), -ENOMEM or libuv's error for the
 * socket; on error nothing was attached and ac is still the caller's to free.
 */
int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
