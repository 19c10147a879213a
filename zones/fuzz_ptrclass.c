/*
 * fuzz_ptrclass: libFuzzer target for zones/ptrclass, the reverse-DNS name
 * classifier.
 *
 * Input: a selector byte (level, address family), an explanation buffer
 * size, 16 address bytes, then the name (cut at the first NUL). Checks: the
 * classifier accepts or refuses the name without reading past it, the class
 * and flags agree, the same name in another letter case gives the same
 * result, and the explanation is printable ASCII within its bounds at every
 * buffer size.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "zones/ptrclass.h"

#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,     \
				__LINE__, #cond);                                  \
			abort();                                                   \
		}                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAD 18   /* selector, buffer size, 16 address bytes */
#define NAME_MAX_FUZZ 1024

static bool same_result(const struct ptrclass_result *a, const struct ptrclass_result *b)
{
	return a->cls == b->cls && a->flags == b->flags && a->score == b->score &&
	       a->signals == b->signals && a->addr_form == b->addr_form;
}

static void check_explain(const struct ptrclass_result *res, const char *name,
			  size_t len)
{
	/* One guard byte past the buffer the explanation may use. */
	char buf[PTRCLASS_EXPLAIN_MAX + 64];
	CHECK(len + 1 <= sizeof buf);
	memset(buf, 0x5a, sizeof buf);
	int n = ptrclass_explain(res, name, buf, len);
	if (len < 2) {
		CHECK(n == -ENOSPC);
		return;
	}
	CHECK(n >= 0 && (size_t)n <= len - 1 && (size_t)n <= PTRCLASS_EXPLAIN_MAX);
	CHECK(buf[n] == '\0' && strlen(buf) == (size_t)n);
	CHECK(buf[len] == 0x5a);
	for (int i = 0; i < n; i++)
		CHECK(buf[i] >= 0x20 && buf[i] < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HEAD)
		return 0;
	uint8_t sel = data[0];
	size_t explain_len = data[1] % (PTRCLASS_EXPLAIN_MAX + 8);
	const uint8_t *addr = data + 2;
	size_t nlen = size - HEAD;
	if (nlen > NAME_MAX_FUZZ)
		nlen = NAME_MAX_FUZZ;
	/* An exactly sized heap copy: a read past the name is caught by ASan. */
	char *name = malloc(nlen + 1);
	if (!name)
		return 0;
	memcpy(name, data + HEAD, nlen);
	name[nlen] = '\0';

	enum ptrclass_level level = (enum ptrclass_level)(sel % 4);
	int families[4] = { 0, AF_INET, AF_INET6, AF_UNIX };
	int family = families[(sel >> 2) & 3];
	const uint8_t *a = family ? addr : NULL;

	struct ptrclass_result res;
	int rc = ptrclass_classify(name, family, a, level, &res);
	if (level > PTRCLASS_AGGRESSIVE || family == AF_UNIX) {
		CHECK(rc == -EINVAL);
		goto out;
	}
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc < 0)
		goto out;
	CHECK(res.cls >= PTRCLASS_UNKNOWN && res.cls <= PTRCLASS_NAMED);
	CHECK((res.flags & ~(PTRCLASS_F_DYNAMIC | PTRCLASS_F_EMBEDS | PTRCLASS_F_STATIC)) == 0);
	CHECK(!(res.flags & PTRCLASS_F_DYNAMIC) || res.cls == PTRCLASS_DYNAMIC);
	CHECK(!(res.flags & PTRCLASS_F_STATIC) || res.cls == PTRCLASS_STATIC);
	CHECK(res.addr_form >= PTRCLASS_ADDR_NONE && res.addr_form <= PTRCLASS_ADDR_IPV6);
	CHECK(memchr(res.keyword, '\0', sizeof res.keyword) != NULL);
	CHECK(memchr(res.static_marker, '\0', sizeof res.static_marker) != NULL);
	CHECK(memchr(res.mail_marker, '\0', sizeof res.mail_marker) != NULL);
	CHECK(ptrclass_class_name(res.cls) != NULL);

	/* Names are matched case-insensitively. */
	for (size_t i = 0; i < nlen; i++)
		if (name[i] >= 'a' && name[i] <= 'z')
			name[i] = (char)(name[i] - 'a' + 'A');
	struct ptrclass_result upper;
	CHECK(ptrclass_classify(name, family, a, level, &upper) == 0);
	CHECK(same_result(&res, &upper));

	check_explain(&res, name, explain_len);
	check_explain(&res, name, PTRCLASS_EXPLAIN_MAX + 1);
out:
	free(name);
	return 0;
}
