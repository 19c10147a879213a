/*
 * spfcheck: run SPF checks through resolver/spf (the helper, its IPC, the
 * upstream pool) without the DNS front end: for tests and measurements,
 * e.g. the RFC 7208 suite with the libspf2 engine.
 *
 *   spfcheck -s SERVERS [-H HELPER] [-t DNS_TIMEOUT_MS] [-l LIMIT_MS]
 *            [-e own|libspf2]
 *
 * Reads lines "ID IP DOMAIN [LOCAL-PART-HEX]" on stdin (the local part in
 * hex, so that any byte can be given; absent: postmaster) and writes
 * "ID<TAB>RESULT<TAB>TTL<TAB>TXT" for each as its verdict comes, in any
 * order. Exits when stdin ends and every check is answered.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "resolver/spf.h"
#include "zones/dnswire.h"

static struct spf_service *svc;
static struct upstream_pool *pool;
static unsigned pending;
static bool input_done;
static uv_pipe_t in;
static char line[2048];
static size_t line_len;

struct job {
	char id[64];
};

static void print_verdict(const char *id, const struct spf_verdict *v)
{
	printf("%s\t%s\t%u\t%s\n", id, spf_result_name(v->result), v->ttl, v->txt);
	fflush(stdout);
}

static void maybe_finish(void)
{
	if (input_done && pending == 0 && svc) {
		spf_service_stop(svc);
		svc = NULL;
		upstream_pool_close(pool);
		uv_close((uv_handle_t *)&in, NULL);
	}
}

static void done_cb(void *arg, const struct spf_verdict *v)
{
	struct job *j = arg;
	print_verdict(j->id, v);
	free(j);
	pending--;
	maybe_finish();
}

static int unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = strlen(h);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return (int)(n / 2);
}

static void handle_line(char *l)
{
	char id[64], ip[64], domain[600], lph[600] = "";
	uint8_t wire[DNSWIRE_NAME_MAX], lp[300];
	struct spf_request r;
	int n = sscanf(l, "%63s %63s %599s %599s", id, ip, domain, lph);
	if (n < 3)
		return;
	memset(&r, 0, sizeof(r));
	if (inet_pton(AF_INET, ip, r.ip) == 1)
		r.family = AF_INET;
	else if (inet_pton(AF_INET6, ip, r.ip) == 1)
		r.family = AF_INET6;
	int wl = dnswire_name_from_text(domain, wire, sizeof(wire));
	int ll = n == 4 ? unhex(lph, lp, sizeof(lp)) : 0;
	if (!r.family || wl < 0 || ll < 0) {
		printf("%s\tbad-input\t0\t-\n", id);
		fflush(stdout);
		return;
	}
	r.domain = wire;
	r.domain_len = (size_t)wl;
	r.local_part = ll ? lp : NULL;
	r.local_part_len = (size_t)ll;
	struct job *j = malloc(sizeof(*j));
	if (!j)
		abort();
	snprintf(j->id, sizeof(j->id), "%s", id);
	struct spf_verdict v;
	int rc = spf_check(svc, &r, done_cb, j, &v);
	if (rc == 0) {
		pending++;
		return;
	}
	if (rc == 1)
		print_verdict(id, &v);
	else
		printf("%s\terror\t0\t%s\n", id, strerror(-rc));
	fflush(stdout);
	free(j);
}

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	static char b[4096];
	(void)h;
	(void)size;
	*buf = uv_buf_init(b, sizeof(b));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	if (n < 0) {
		uv_read_stop(s);
		input_done = true;
		maybe_finish();
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		char c = buf->base[i];
		if (c == '\n') {
			line[line_len] = '\0';
			handle_line(line);
			line_len = 0;
		} else if (line_len + 1 < sizeof(line)) {
			line[line_len++] = c;
		}
	}
}

int main(int argc, char **argv)
{
	char helper[4096] = "";
	const char *servers = NULL, *engine = NULL;
	unsigned dns_timeout = 1000, limit = 3000;
	int opt;
	while ((opt = getopt(argc, argv, "s:H:t:l:e:")) != -1) {
		switch (opt) {
		case 's': servers = optarg; break;
		case 'H': snprintf(helper, sizeof(helper), "%s", optarg); break;
		case 't': dns_timeout = (unsigned)atoi(optarg); break;
		case 'l': limit = (unsigned)atoi(optarg); break;
		case 'e': engine = optarg; break;
		default:
			fprintf(stderr, "usage: spfcheck -s SERVERS [-H HELPER] [-t MS] [-l MS] "
					"[-e own|libspf2]\n");
			return 2;
		}
	}
	if (!servers)
		return 2;
	if (!helper[0] && spf_default_helper_path(helper, sizeof(helper)) < 0) {
		fprintf(stderr, "spfcheck: no rblmux-spf found\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	uv_loop_t *loop = uv_default_loop();
	if (upstream_pool_new(loop, 200, &pool) < 0)
		return 1;
	const char *args[] = { "-e", engine, NULL };
	struct spf_options o = {
		.helper_path = helper,
		.helper_args = engine ? args : NULL,
		.up = pool,
		.servers_csv = servers,
		.dns_timeout_ms = dns_timeout,
		.time_limit_ms = limit,
		.ttl_max_s = 3600,
		.receiver = "spfcheck",
	};
	if (spf_service_start(loop, &o, &svc) < 0)
		return 1;
	uv_pipe_init(loop, &in, 0);
	if (uv_pipe_open(&in, 0) < 0 || uv_read_start((uv_stream_t *)&in, alloc_cb, read_cb) < 0)
		return 1;
	uv_run(loop, UV_RUN_DEFAULT);
	return 0;
}
