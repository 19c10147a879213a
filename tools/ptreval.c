/*
 * ptreval: measure the PTR-name classifier (zones/ptrclass) on a labelled set.
 *
 *   ptreval [--verbose] FILE...
 *
 * Each FILE is a TSV of `name <TAB> ip-or-"-" <TAB> label <TAB> source`,
 * label one of dynamic, static-generic, mailserver, other-named; lines
 * starting with '#' are comments. For each level it prints precision and
 * recall of "dynamic" (flag 4) and the share of mail servers flagged 4 or 8
 * (and 4 alone). --verbose lists every miss and every false alarm with the
 * classifier's explanation.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "zones/ptrclass.h"

enum label { L_DYNAMIC, L_STATIC, L_MAIL, L_OTHER, L_COUNT };

static const char *const label_names[L_COUNT] = {
	"dynamic", "static-generic", "mailserver", "other-named",
};

struct entry {
	char name[256];
	int family;
	uint8_t addr[16];
	enum label label;
};

struct set {
	struct entry *e;
	size_t n, cap;
};

static int parse_label(const char *s, enum label *out)
{
	for (int i = 0; i < L_COUNT; i++) {
		if (strcmp(s, label_names[i]) == 0) {
			*out = (enum label)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Split line in place at tabs; returns the number of fields (up to max). */
static size_t split_tabs(char *line, char **f, size_t max)
{
	size_t n = 0;

	while (n < max) {
		f[n++] = line;
		char *t = strchr(line, '\t');
		if (!t)
			break;
		*t = '\0';
		line = t + 1;
	}
	return n;
}

static int load(const char *path, struct set *set)
{
	FILE *fp = fopen(path, "r");
	char line[4096];
	unsigned lineno = 0;

	if (!fp) {
		fprintf(stderr, "ptreval: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *f[4];
		if (split_tabs(line, f, 4) < 3)
			goto bad;
		struct entry e = { .family = 0 };
		if (strlen(f[0]) >= sizeof(e.name) || parse_label(f[2], &e.label) < 0)
			goto bad;
		strcpy(e.name, f[0]);
		if (strcmp(f[1], "-") != 0) {
			if (inet_pton(AF_INET, f[1], e.addr) == 1)
				e.family = AF_INET;
			else if (inet_pton(AF_INET6, f[1], e.addr) == 1)
				e.family = AF_INET6;
			else
				goto bad;
		}
		if (set->n == set->cap) {
			size_t cap = set->cap ? set->cap * 2 : 256;
			struct entry *ne = realloc(set->e, cap * sizeof(*ne));
			if (!ne) {
				fclose(fp);
				fprintf(stderr, "ptreval: out of memory\n");
				return -1;
			}
			set->e = ne;
			set->cap = cap;
		}
		set->e[set->n++] = e;
	}
	fclose(fp);
	return 0;
bad:
	fprintf(stderr, "ptreval: %s:%u: malformed line\n", path, lineno);
	fclose(fp);
	return -1;
}

static void ratio(char *buf, size_t len, unsigned num, unsigned den, bool pct)
{
	if (den == 0)
		snprintf(buf, len, "n/a");
	else if (pct)
		snprintf(buf, len, "%.1f%%", 100.0 * num / den);
	else
		snprintf(buf, len, "%.3f", (double)num / den);
}

static int evaluate(const struct set *set, enum ptrclass_level level, bool verbose)
{
	static const char *const level_names[] = { "conservative", "moderate", "aggressive" };
	unsigned tp = 0, fp = 0, fn = 0, mail = 0, mail48 = 0, mail4 = 0;
	unsigned stat = 0, stat16 = 0;

	for (size_t i = 0; i < set->n; i++) {
		const struct entry *e = &set->e[i];
		struct ptrclass_result r;
		char why[PTRCLASS_EXPLAIN_MAX + 1];

		if (ptrclass_classify(e->name, e->family, e->family ? e->addr : NULL,
				      level, &r) < 0) {
			fprintf(stderr, "ptreval: %s: rejected by the classifier\n", e->name);
			return -1;
		}
		bool flagged = r.flags & PTRCLASS_F_DYNAMIC;
		const char *miss = NULL;
		if (e->label == L_DYNAMIC) {
			if (flagged)
				tp++;
			else {
				fn++;
				miss = "missed";
			}
		} else if (flagged) {
			fp++;
			miss = "false alarm";
		}
		if (e->label == L_STATIC) {
			stat++;
			if (r.flags & PTRCLASS_F_STATIC)
				stat16++;
		}
		if (e->label == L_MAIL) {
			mail++;
			if (r.flags & (PTRCLASS_F_DYNAMIC | PTRCLASS_F_EMBEDS)) {
				mail48++;
				if (!miss)
					miss = "mail flagged 8";
			}
			if (flagged)
				mail4++;
		}
		if (verbose && miss) {
			ptrclass_explain(&r, e->name, why, sizeof(why));
			printf("  %-12s %-15s %s\n", level_names[level], miss, why);
		}
	}

	char prec[16], rec[16], m48[16], m4[16], st[16];
	ratio(prec, sizeof(prec), tp, tp + fp, false);
	ratio(rec, sizeof(rec), tp, tp + fn, false);
	ratio(m48, sizeof(m48), mail48, mail, true);
	ratio(m4, sizeof(m4), mail4, mail, true);
	ratio(st, sizeof(st), stat16, stat, true);
	printf("%-12s  precision %-6s recall %-6s mail-FP(4|8) %-6s mail-FP(4) %-6s"
	       " static-as-16 %-6s [TP %u FP %u FN %u; mail %u/%u]\n",
	       level_names[level], prec, rec, m48, m4, st, tp, fp, fn, mail48, mail);
	return 0;
}

int main(int argc, char **argv)
{
	struct set set = { NULL, 0, 0 };
	bool verbose = false;
	int nfiles = 0, rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
			verbose = true;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "usage: ptreval [--verbose] FILE...\n");
			goto out;
		} else {
			if (load(argv[i], &set) < 0)
				goto out;
			nfiles++;
		}
	}
	if (nfiles == 0) {
		fprintf(stderr, "usage: ptreval [--verbose] FILE...\n");
		goto out;
	}

	unsigned count[L_COUNT] = { 0 };
	for (size_t i = 0; i < set.n; i++)
		count[set.e[i].label]++;
	printf("%zu names:", set.n);
	for (int l = 0; l < L_COUNT; l++)
		printf(" %s %u%s", label_names[l], count[l], l + 1 < L_COUNT ? "," : "\n");
	for (int lv = PTRCLASS_CONSERVATIVE; lv <= PTRCLASS_AGGRESSIVE; lv++)
		if (evaluate(&set, (enum ptrclass_level)lv, verbose) < 0)
			goto out;
	rc = 0;
out:
	free(set.e);
	return rc;
}
