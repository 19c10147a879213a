/*
 * frontend: the DNS listeners of one worker: UDP and TCP (RFC 7766) on every
 * `listen` address, each socket bound by us with SO_REUSEPORT (libuv 1.44 has
 * no flag for it) and handed to libuv.
 *
 * UDP is a uv_poll on the socket with recvmmsg/sendmmsg batches: no
 * allocation and one system call per batch each way. TCP connections are capped
 * (tcp_max per worker), closed after tcp_idle without a query, and may
 * pipeline queries whose answers go out as they are ready, in any order.
 */
#ifndef RBLMUX_RESOLVER_FRONTEND_H
#define RBLMUX_RESOLVER_FRONTEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct worker;
struct config;
struct tcp_conn;
struct udp_sock;

/*
 * Bind every listen address of cfg (UDP and TCP) for worker w. Returns 0 or
 * a negative errno (the failing address is logged); on failure nothing stays
 * open.
 */
int frontend_open(struct worker *w, const struct config *cfg);

/* Close every listener and connection (their close callbacks free them). */
void frontend_close(struct worker *w);

/* Send an answer over UDP (subject to RRL). While the socket's received
 * batch is being answered the answer joins the outgoing batch; otherwise it
 * goes at once. Failures (full socket buffer) drop the answer: the client
 * retries. */
void frontend_udp_send(struct udp_sock *udp, const struct sockaddr *peer,
		       const uint8_t *msg, size_t len);

/* Queue an answer on a TCP connection (2-byte length prefix added). Dropped
 * when the connection is closing. */
void frontend_tcp_send(struct tcp_conn *c, const uint8_t *msg, size_t len);

/* A deferred query holds its connection while it lives. */
void frontend_tcp_ref(struct tcp_conn *c);
void frontend_tcp_unref(struct tcp_conn *c);

/* True when addr may ask (the `allow` list). */
int frontend_allowed(const struct config *cfg, const struct sockaddr *addr);

#endif
