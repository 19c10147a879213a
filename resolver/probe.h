/*
 * probe: the periodic health probe of every list at its RFC 5782 test
 * points (127.0.0.2 must be listed, 127.0.0.1 must not; "test" and "invalid"
 * for domain lists; ::ffff:7f00:2 and ::ffff:7f00:1 for IPv6-only lists).
 * Runs on worker 0's loop; the verdict goes to the shared health record and
 * every change of state is logged once.
 */
#ifndef RBLMUX_RESOLVER_PROBE_H
#define RBLMUX_RESOLVER_PROBE_H

struct worker;

/* Probe every enabled source of the worker's runtime now. */
void probe_all(struct worker *w);

#endif
