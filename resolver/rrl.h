/*
 * rrl: response rate limiting of UDP answers (RRL, as BIND and NSD do it),
 * so that rblmuxd cannot be used to reflect and amplify traffic at a victim
 * whose address a spoofer writes into its queries.
 *
 * Clients are counted by network: IPv4 /24, IPv6 /56. A spoofer chooses the
 * address, so counting single addresses would let it spread a flood thin;
 * a real site's resolvers mostly share one network. Each network gets
 * `[server] rrl_rate` answers per second, with a burst of as many (a token
 * bucket). Past that, every `rrl_slip`-th answer is "slipped": sent with TC
 * set and nothing but the header and question, never larger than the query,
 * so a real client retries over TCP (where its address is proven, and RRL
 * does not apply); the others are dropped. rrl_slip 1 slips every limited
 * answer, 0 drops them all; rrl_rate 0 turns RRL off.
 *
 * Networks in `[server] rrl_exempt` (default 127.0.0.0/8 and ::1: the MTA on
 * the same host, which cannot be spoofed from outside) are never limited.
 *
 * One table per loop thread, no locks: a client whose packets the kernel
 * spreads over several loops (SO_REUSEPORT hashes the source port too) can
 * get up to threads x rrl_rate answers per second. The table has a fixed
 * number of entries (set-associative, the least recently seen entry of a
 * set is replaced), so memory stays bounded however many networks ask;
 * entries are placed by a hash keyed with a random seed per table, so a
 * spoofer cannot aim collisions at one network's entry.
 */
#ifndef RBLMUX_RESOLVER_RRL_H
#define RBLMUX_RESOLVER_RRL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "zones/dnswire.h"

struct config;
struct rrl_table;

enum rrl_verdict {
	RRL_SEND = 0,   /* within the rate: send the answer as it is */
	RRL_SLIP,       /* over the rate: send the truncated form (rrl_truncate) */
	RRL_DROP,       /* over the rate: send nothing */
};

/* Entries per table (per loop thread): 4096 x 32 bytes. */
#define RRL_ENTRIES_DEFAULT 4096
/* Bytes rrl_truncate may write: header and one question. */
#define RRL_SLIP_MAX (DNSWIRE_HEADER_LEN + DNSWIRE_NAME_MAX + 4)

struct rrl_stats {
	uint64_t sent, slipped, dropped;
};

/*
 * A table of at least `entries` entries (rounded up to a power of two, at
 * least one set). Returns 0 or -ENOMEM.
 */
int rrl_new(size_t entries, struct rrl_table **out);
void rrl_free(struct rrl_table *t);

/*
 * One answer to the network of addr (family AF_INET or AF_INET6, bytes in
 * network order; an IPv4-mapped IPv6 address counts as IPv4) at now_ms (any
 * monotonic clock in ms), with at most rate answers per second (rate > 0)
 * and every slip-th limited answer slipped. Returns the verdict; other
 * families are always RRL_SEND.
 */
enum rrl_verdict rrl_check(struct rrl_table *t, int family, const uint8_t *addr,
			   uint64_t now_ms, uint32_t rate, uint32_t slip);

/*
 * The same for a UDP peer under a configuration: RRL_SEND when cfg's
 * rrl_rate is 0 or the peer is in rrl_exempt, otherwise rrl_check with
 * cfg's rate and slip.
 */
enum rrl_verdict rrl_check_peer(struct rrl_table *t, const struct config *cfg,
				const struct sockaddr *peer, uint64_t now_ms);

/*
 * The slipped form of the answer msg: its header with TC set and the counts
 * of answer, authority and additional records zeroed, and its question
 * (none when it had none). Returns the length written into out, -EINVAL
 * when msg is not a header followed by a well-formed question, or -ENOSPC.
 */
int rrl_truncate(const uint8_t *msg, size_t len, uint8_t *out, size_t cap);

/* Answers sent, slipped and dropped through this table so far. */
void rrl_get_stats(const struct rrl_table *t, struct rrl_stats *out);

#endif
