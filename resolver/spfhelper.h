/*
 * spfhelper: what the parts of the rblmux-spf process share (the process
 * itself is described in spfhelper.c).
 */
#ifndef RBLMUX_RESOLVER_SPFHELPER_H
#define RBLMUX_RESOLVER_SPFHELPER_H

#include <stddef.h>
#include <stdint.h>

#include "resolver/spfipc.h"
#include "zones/spf_eval.h"

/* An SPF evaluator: runs check c, asking DNS through spfhelper_dns(dns_arg,
 * ...), and fills r (check_id is already set). */
typedef void (*spfhelper_engine_fn)(void *dns_arg, const struct spfipc_check *c,
				    struct spfipc_result *r);

/* Ask rblmuxd one question on behalf of the check that dns_arg runs, and
 * wait for the answer until the check's deadline (then: SPF_ANS_ERROR).
 * Same contract as spf_eval_dns_fn. */
int spfhelper_dns(void *dns_arg, const uint8_t *name, size_t name_len,
		  uint16_t qtype, struct spf_answer *out);

/* libspf2 1.2 behind the same questions and limits, kept to measure it
 * against the RFC 7208 suite (NULL when not built in). */
spfhelper_engine_fn spfhelper_engine_libspf2(void);

/* One line to stderr (rblmuxd's log), prefixed "rblmux-spf[pid]: ". */
void spfhelper_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
