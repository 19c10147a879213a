/*
 * sdnotify: tell systemd (a Type=notify unit) how rblmuxd is doing, by hand:
 * one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or
 * '@' for the abstract namespace), as sd_notify(3) does, without linking
 * libsystemd. Without $NOTIFY_SOCKET nothing is sent.
 *
 * The send never blocks (MSG_DONTWAIT): a notification that does not fit in
 * systemd's queue is dropped rather than stall an event loop.
 */
#ifndef RBLMUX_RESOLVER_SDNOTIFY_H
#define RBLMUX_RESOLVER_SDNOTIFY_H

/*
 * Send state, newline-separated assignments ("READY=1", "STOPPING=1",
 * "STATUS=..."). Returns 1 when sent, 0 when $NOTIFY_SOCKET is unset or
 * empty, or a negative errno: -EINVAL for an address that is neither an
 * absolute path nor '@'-abstract, or too long; -EAFNOSUPPORT for other
 * address kinds (vsock:); the send's own error otherwise.
 */
int sdnotify_send(const char *state);

/* The same with printf formatting (at most 1 KiB of state). */
int sdnotify_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "RELOADING=1" with the MONOTONIC_USEC= systemd asks for along with it;
 * follow with "READY=1" once the reload is done or refused. */
int sdnotify_reloading(void);

#endif
