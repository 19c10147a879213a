/*
 * rblmuxd: the caching DNSBL/SPF aggregation resolver.
 *   rblmuxd -c FILE       run in the foreground
 *   rblmuxd -t -c FILE    check FILE, print every error with its line, exit
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/config.h"
#include "resolver/log.h"
#include "resolver/server.h"

#define DEFAULT_CONFIG "/etc/rblmux/rblmux.conf"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: rblmuxd [-t] [-d] [-c FILE]\n"
		"  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
		"  -t       check the configuration, print every error, and exit\n"
		"  -d       log debug messages\n"
		"  -V       print the version\n");
}

static void print_error(void *arg, const char *file, int line, const char *msg)
{
	int *count = arg;
	(*count)++;
	if (line > 0)
		fprintf(stderr, "%s:%d: %s\n", file, line, msg);
	else
		fprintf(stderr, "%s: %s\n", file, msg);
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	bool check_only = false;
	int opt;
	while ((opt = getopt(argc, argv, "c:tdVh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': check_only = true; break;
		case 'd': log_set_level(LOG_LVL_DEBUG); break;
		case 'V': printf("rblmuxd %s\n", RBLMUX_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	int errors = 0;
	struct config *cfg = NULL;
	int rc = config_load(path, print_error, &errors, &cfg);
	if (rc < 0) {
		fprintf(stderr, "%s: %d error%s\n", path, errors, errors == 1 ? "" : "s");
		return 1;
	}
	if (check_only) {
		printf("%s: configuration OK (%zu sources)\n", path, cfg->nsources);
		config_free(cfg);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	return server_run(path, cfg) < 0 ? 1 : 0;
}
