/*
 * ptrclass: classify a PTR name (see ptrclass.h).
 *
 * The name is copied lowercased into a fixed buffer, cut into labels, and the
 * labels left of the registered domain (the "host part") are cut into letter
 * runs and digit runs. Keywords are looked up among letter runs of the host
 * part only: "cable" in cable.virginm.net's host part means a cable line,
 * while a keyword inside the registered domain is just the ISP's name.
 * The address is looked for in the whole name.
 */
#include "zones/ptrclass.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define NAME_MAX_LEN 253
#define LABEL_MAX_LEN 63
#define MAX_LABELS 128
#define MAX_RUNS 128

/* Points towards "dynamic" for each signal. */
#define PTS_ADDR_FULL 3
#define PTS_ADDR_PART3 2
#define PTS_ADDR_PART2 1
#define PTS_ADDR_CONCAT 1
#define PTS_ADDR_LAST 1        /* not conservative: named hosts end in digits too */
#define PTS_ADDR_LIKE 3        /* address unknown: as good as a match */
#define PTS_ADDR_LIKE_OTHER 2  /* address known, numbers are another one's */
#define PTS_HEX_LIKE 1
#define PTS_MAC 2
#define PTS_NUMBERED 1         /* long number or numbered host label */
#define PTS_KW_STRONG 3
#define PTS_KW_ACCESS 2
#define PTS_KW_CAP 5

static const int level_threshold[] = {
	[PTRCLASS_CONSERVATIVE] = 5,
	[PTRCLASS_MODERATE] = 3,
	[PTRCLASS_AGGRESSIVE] = 2,
};

struct span {
	uint16_t off, len;
};

struct parsed {
	char s[NAME_MAX_LEN + 1];
	size_t len;
	struct span label[MAX_LABELS];
	size_t nlabels;
	size_t reg_first;      /* index of the registered domain's first label */
	size_t host_end;       /* offset of the registered domain in s */
	struct span run[MAX_RUNS];   /* digit runs of the whole name */
	size_t nruns;
};

/* Second-level labels under which ccTLD registries sell names. */
static const char *const cc_sld[] = {
	"ac", "ad", "biz", "co", "com", "ed", "edu", "gen", "go", "gob", "gov",
	"gr", "in", "ind", "info", "lg", "ltd", "mil", "ne", "net", "nic",
	"nom", "or", "org", "plc", "sch", "web",
};

/*
 * Keyword tables. An entry ending in '*' also matches a letter run that
 * starts or ends with it ("dynamicip", "pooles", "modemcable", "dclient");
 * the others match exactly, so that "res" is not "resolver" and "compute"
 * is not "computer".
 */

/* Dynamic-pool words: the operator says the address is handed out. */
static const char *const kw_strong[] = {
	"dyn", "dynamic*", "dynip", "dhcp*", "dial*", "ppp", "pppoe*", "pppoa",
	"pptp", "pool*", "dinamic*", "dynamique",
};

/* Access-line words: residential, mobile or consumer lines in ISP
 * conventions of many countries. */
static const char *const kw_access[] = {
	"dsl*", "adsl*", "vdsl*", "xdsl*", "sdsl", "cable*", "catv*", "docsis",
	"cm", "cpe", "bb", "broadband*", "bredband*", "bredbaand", "breitband*",
	"client*", "cliente*", "cust*", "customer*", "res", "resnet",
	"residential*", "home", "mobile*", "mob", "wireless*", "wifi", "wlan",
	"lte", "gprs", "umts", "cdma", "hsd", "fios", "ftth", "fttx", "fttb",
	"fttc", "fttp", "gpon", "fbx", "lns", "bras", "nas", "isdn", "user*",
	"subscriber*", "abo", "abonne*", "retail", "kabel*", "dip", "modem*",
	"usuario*", "hogar",
};

/* Static, business-line and server words. */
static const char *const kw_static[] = {
	"static*", "statik", "statico", "estatico", "estatica", "fix", "fixe",
	"fixed", "fixip", "biz", "business*", "rrcs", "wsip", "dedicated*",
	"dedi", "ded", "server*", "srv", "vps", "vds", "colo", "hosting*",
	"hosted", "cloud", "compute", "demarc",
};

/* Mail-host words. */
static const char *const kw_mail[] = {
	"mail*", "mx", "smtp*", "mta", "out", "outbound*", "outgoing", "relay*",
	"mout", "email", "bounce*", "exchange", "postfix",
};

/* Hosting and cloud providers whose default names are generic. */
static const char *const hosting_domains[] = {
	"amazonaws.com", "googleusercontent.com", "vultrusercontent.com",
	"linodeusercontent.com", "linode.com", "your-server.de",
	"hetzner.com", "ovh.net", "ovh.ca", "ovh.us", "kimsufi.com",
	"poneytelecom.eu", "scaleway.com", "stratoserver.net",
	"startdedicated.de", "secureserver.net", "unifiedlayer.com",
	"bluehost.com", "hostgator.com", "websitewelcome.com",
	"contaboserver.net", "cloudapp.net", "azure.com", "leaseweb.com",
	"leaseweb.net", "colocrossing.com", "choopa.net", "vultr.com",
	"sakura.ne.jp", "digitalocean.com", "hosted-by-vultr.com",
};

/* Words inside a registered domain's own label that make it a hosting or
 * business-line provider. */
static const char *const reg_hosting_words[] = {
	"host", "server", "hosting", "cloud", "vps", "dedicated", "datacenter",
	"scanner",
};

static bool is_alpha(char c) { return c >= 'a' && c <= 'z'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }
static bool is_sep(char c) { return c == '-' || c == '_' || c == '.'; }

static bool in_list(const char *const *list, size_t n, const char *tok, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == len && memcmp(list[i], tok, len) == 0)
			return true;
	return false;
}

/* The matching entry of a keyword table (see above); *kwlen is its length
 * without the '*'. An exact match wins over an affix match ("adsl" is
 * reported as "adsl", not "dsl"). */
static const char *match_kw(const char *const *list, size_t n,
			    const char *tok, size_t len, size_t *kwlen)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			size_t kl = strlen(list[i]);
			bool affix = list[i][kl - 1] == '*';
			if (affix)
				kl--;
			bool hit = pass == 0
				? kl == len && memcmp(list[i], tok, len) == 0
				: affix && len > kl && (memcmp(list[i], tok, kl) == 0 ||
							memcmp(list[i], tok + len - kl, kl) == 0);
			if (hit) {
				*kwlen = kl;
				return list[i];
			}
		}
	}
	return NULL;
}

static int parse_name(const char *name, struct parsed *p)
{
	size_t n = strlen(name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > NAME_MAX_LEN)
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? name[i] : '.';
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '.') {
			size_t ll = i - start;
			if (ll == 0 || ll > LABEL_MAX_LEN || p->nlabels == MAX_LABELS)
				return -EINVAL;
			p->label[p->nlabels].off = (uint16_t)start;
			p->label[p->nlabels].len = (uint16_t)ll;
			p->nlabels++;
			start = i + 1;
		} else if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') {
			return -EINVAL;
		}
		if (i < n)
			p->s[i] = c;
	}
	p->len = n;

	size_t nl = p->nlabels;
	if (nl < 2) {
		p->reg_first = 0;
	} else {
		const struct span *tld = &p->label[nl - 1];
		const struct span *sld = &p->label[nl - 2];
		if (nl >= 3 && tld->len == 2 &&
		    in_list(cc_sld, sizeof(cc_sld) / sizeof(cc_sld[0]),
			    p->s + sld->off, sld->len))
			p->reg_first = nl - 3;
		else
			p->reg_first = nl - 2;
	}
	p->host_end = p->reg_first < nl ? p->label[p->reg_first].off : p->len;

	for (size_t i = 0; i < p->len && p->nruns < MAX_RUNS;) {
		if (!is_digit(p->s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < p->len && is_digit(p->s[j]))
			j++;
		p->run[p->nruns].off = (uint16_t)i;
		p->run[p->nruns].len = (uint16_t)(j - i);
		p->nruns++;
		i = j;
	}
	return 0;
}

/* Value of a digit run of at most 3 digits; -1 if longer. */
static int run_octet(const struct parsed *p, size_t i)
{
	const struct span *r = &p->run[i];
	int v = 0;

	if (r->len > 3)
		return -1;
	for (size_t k = 0; k < r->len; k++)
		v = v * 10 + (p->s[r->off + k] - '0');
	return v;
}

/* Runs i and i+1 are separated by one separator, no letters. */
static bool runs_adjacent(const struct parsed *p, size_t i)
{
	size_t end = (size_t)p->run[i].off + p->run[i].len;
	return p->run[i + 1].off == end + 1 && is_sep(p->s[end]);
}

static bool same_multiset(const int a[4], const uint8_t b[4])
{
	bool used[4] = { false, false, false, false };

	for (int i = 0; i < 4; i++) {
		int k;
		for (k = 0; k < 4; k++)
			if (!used[k] && a[i] == b[k])
				break;
		if (k == 4)
			return false;
		used[k] = true;
	}
	return true;
}

static enum ptrclass_addr_form better(enum ptrclass_addr_form a,
				      enum ptrclass_addr_form b)
{
	return b > a ? b : a;
}

/* Twelve digits, zero-padded octets glued together: "061238241086". */
static bool run_is_padded4(const struct parsed *p, size_t i, int oct[4])
{
	const struct span *r = &p->run[i];

	if (r->len != 12)
		return false;
	for (int k = 0; k < 4; k++) {
		const char *d = p->s + r->off + 3 * k;
		oct[k] = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
		if (oct[k] > 255)
			return false;
	}
	return true;
}

static enum ptrclass_addr_form find_ipv4(const struct parsed *p, const uint8_t *a)
{
	enum ptrclass_addr_form form = PTRCLASS_ADDR_NONE;
	char hex[9], rhex[9];
	bool net16 = false;   /* the first two octets, "w90-76" */

	snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", a[0], a[1], a[2], a[3]);
	snprintf(rhex, sizeof(rhex), "%02x%02x%02x%02x", a[3], a[2], a[1], a[0]);
	for (size_t l = 0; l < p->nlabels; l++) {
		char lab[LABEL_MAX_LEN + 1];
		memcpy(lab, p->s + p->label[l].off, p->label[l].len);
		lab[p->label[l].len] = '\0';
		if (strstr(lab, hex) || strstr(lab, rhex))
			return PTRCLASS_ADDR_HEX;
	}

	for (size_t i = 0; i < p->nruns; i++) {
		int oct[4];
		if (run_is_padded4(p, i, oct)) {
			if (oct[0] == a[0] && oct[1] == a[1] && oct[2] == a[2] && oct[3] == a[3])
				form = better(form, PTRCLASS_ADDR_FULL);
			else if (oct[0] == a[3] && oct[1] == a[2] && oct[2] == a[1] && oct[3] == a[0])
				form = better(form, PTRCLASS_ADDR_REVERSED);
		}
		if (i + 3 < p->nruns) {
			bool ok = true;
			for (int k = 0; k < 4 && ok; k++) {
				oct[k] = run_octet(p, i + (size_t)k);
				ok = oct[k] >= 0 && oct[k] <= 255;
			}
			if (ok) {
				if (oct[0] == a[3] && oct[1] == a[2] && oct[2] == a[1] && oct[3] == a[0])
					form = better(form, PTRCLASS_ADDR_REVERSED);
				else if (same_multiset(oct, a))
					form = better(form, PTRCLASS_ADDR_FULL);
			}
		}
		if (i + 2 < p->nruns) {
			int o0 = run_octet(p, i), o1 = run_octet(p, i + 1), o2 = run_octet(p, i + 2);
			if ((o0 == a[1] && o1 == a[2] && o2 == a[3]) ||
			    (o0 == a[3] && o1 == a[2] && o2 == a[1]) ||
			    (o0 == a[0] && o1 == a[1] && o2 == a[2]))
				form = better(form, PTRCLASS_ADDR_PART3);
		}
		if (i + 1 < p->nruns && runs_adjacent(p, i)) {
			int o0 = run_octet(p, i), o1 = run_octet(p, i + 1);
			if ((o0 == a[2] && o1 == a[3]) || (o0 == a[3] && o1 == a[2]))
				form = better(form, PTRCLASS_ADDR_PART2);
			if (o0 == a[0] && o1 == a[1])
				net16 = true;
		}
		if (p->run[i].len >= 4 && p->run[i].len <= 6) {
			char cd[8];
			snprintf(cd, sizeof(cd), "%u%u", a[2], a[3]);
			if (strlen(cd) == p->run[i].len &&
			    memcmp(cd, p->s + p->run[i].off, p->run[i].len) == 0)
				form = better(form, PTRCLASS_ADDR_CONCAT);
		}
	}

	/* The host label ends in the last octet: "bfd208", "pl027". */
	if (form == PTRCLASS_ADDR_NONE && p->nruns > 0 && p->nlabels > 1) {
		const struct span *l0 = &p->label[0];
		const struct span *r = &p->run[0];
		size_t last = 0;
		for (size_t i = 0; i < p->nruns && p->run[i].off < l0->off + l0->len; i++)
			last = i;
		r = &p->run[last];
		if ((size_t)r->off + r->len == (size_t)l0->off + l0->len &&
		    r->off > l0->off && run_octet(p, last) == a[3])
			/* Network and host number apart: "lfbn-1-2229-223.w90-76". */
			form = net16 ? PTRCLASS_ADDR_PART3 : PTRCLASS_ADDR_LAST;
	}
	return form;
}

/* Parse 1-4 hex digits; -1 if not that. */
static long hex_group(const char *s, size_t len)
{
	long v = 0;

	if (len == 0 || len > 4)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!is_hex(s[i]))
			return -1;
		v = v * 16 + (is_digit(s[i]) ? s[i] - '0' : s[i] - 'a' + 10);
	}
	return v;
}

static enum ptrclass_addr_form find_ipv6(const struct parsed *p, const uint8_t *a)
{
	char nib[33];
	long grp[8];

	for (int i = 0; i < 16; i++)
		snprintf(nib + 2 * i, 3, "%02x", a[i]);
	for (int i = 0; i < 8; i++)
		grp[i] = (long)a[2 * i] << 8 | a[2 * i + 1];

	for (size_t l = 0; l < p->nlabels; l++) {
		char compact[LABEL_MAX_LEN + 1];
		size_t n = 0;
		const char *s = p->s + p->label[l].off;
		for (size_t i = 0; i < p->label[l].len; i++)
			if (s[i] != '-' && s[i] != '_')
				compact[n++] = s[i];
		compact[n] = '\0';
		if (strstr(compact, nib))
			return PTRCLASS_ADDR_IPV6;
	}

	/* Eight groups as separate tokens, padded or not. */
	struct span tok[MAX_RUNS];
	size_t ntok = 0;
	for (size_t i = 0; i < p->len && ntok < MAX_RUNS;) {
		if (is_sep(p->s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < p->len && !is_sep(p->s[j]))
			j++;
		tok[ntok].off = (uint16_t)i;
		tok[ntok].len = (uint16_t)(j - i);
		ntok++;
		i = j;
	}
	for (size_t i = 0; i + 8 <= ntok; i++) {
		int k;
		for (k = 0; k < 8; k++)
			if (hex_group(p->s + tok[i + (size_t)k].off, tok[i + (size_t)k].len) != grp[k])
				break;
		if (k == 8)
			return PTRCLASS_ADDR_IPV6;
	}
	return PTRCLASS_ADDR_NONE;
}

/* Four octet-sized numbers in a row, separated by one separator each. */
static bool find_addr_like(const struct parsed *p)
{
	for (size_t i = 0; i + 3 < p->nruns; i++) {
		bool ok = true;
		for (size_t k = 0; k < 4 && ok; k++) {
			int o = run_octet(p, i + k);
			ok = o >= 0 && o <= 255 && (k == 3 || runs_adjacent(p, i + k));
		}
		if (ok)
			return true;
	}
	for (size_t i = 0; i < p->nruns; i++) {
		int oct[4];
		if (run_is_padded4(p, i, oct))
			return true;
	}
	return false;
}

static void set_str(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Hex blobs and MAC addresses among the host part's separator tokens. */
static void scan_hex_tokens(const struct parsed *p, unsigned *sig)
{
	size_t pair_run = 0;

	for (size_t i = 0; i < p->host_end;) {
		if (is_sep(p->s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < p->host_end && !is_sep(p->s[j]))
			j++;
		size_t tl = j - i;
		pair_run = (tl == 2 && is_hex(p->s[i]) && is_hex(p->s[i + 1]))
			   ? pair_run + 1 : 0;
		if (pair_run >= 6)
			*sig |= PTRSIG_MAC;
		/* Maximal hex runs inside the token, e.g. "ool-18be1aaf", "h0002a5d76857". */
		for (size_t k = i; k < j;) {
			if (!is_hex(p->s[k])) {
				k++;
				continue;
			}
			size_t m = k;
			int digits = 0, letters = 0;
			while (m < j && is_hex(p->s[m])) {
				if (is_digit(p->s[m]))
					digits++;
				else
					letters++;
				m++;
			}
			if (letters > 0 && digits >= 2) {
				if (m - k == 8)
					*sig |= PTRSIG_HEX_LIKE;
				else if (m - k == 12)
					*sig |= PTRSIG_MAC;
			}
			k = m;
		}
		i = j;
	}
}

struct kw_hits {
	int strong, access;
	const char *first_access, *first_static, *first_mail;
	size_t access_len, static_len, mail_len;
};

static void scan_keywords(const struct parsed *p, struct kw_hits *h)
{
	memset(h, 0, sizeof(*h));
	for (size_t i = 0; i < p->host_end;) {
		if (!is_alpha(p->s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < p->host_end && is_alpha(p->s[j]))
			j++;
		const char *tok = p->s + i;
		size_t len = j - i, kl;
		const char *k;
		if ((k = match_kw(kw_static, sizeof(kw_static) / sizeof(kw_static[0]), tok, len, &kl))) {
			if (!h->first_static) {
				h->first_static = k;
				h->static_len = kl;
			}
		} else if ((k = match_kw(kw_strong, sizeof(kw_strong) / sizeof(kw_strong[0]), tok, len, &kl))) {
			h->strong++;
			if (!h->first_access) {
				h->first_access = k;
				h->access_len = kl;
			}
		} else if ((k = match_kw(kw_access, sizeof(kw_access) / sizeof(kw_access[0]), tok, len, &kl))) {
			h->access++;
			if (!h->first_access) {
				h->first_access = k;
				h->access_len = kl;
			}
		} else if ((k = match_kw(kw_mail, sizeof(kw_mail) / sizeof(kw_mail[0]), tok, len, &kl))) {
			if (!h->first_mail) {
				h->first_mail = k;
				h->mail_len = kl;
			}
		}
		i = j;
	}
}

static bool ends_with_domain(const struct parsed *p, const char *dom)
{
	size_t dl = strlen(dom);

	if (dl > p->len)
		return false;
	if (memcmp(p->s + p->len - dl, dom, dl) != 0)
		return false;
	return dl == p->len || p->s[p->len - dl - 1] == '.';
}

static bool contains(const char *s, size_t len, const char *word)
{
	size_t wl = strlen(word);

	for (size_t i = 0; i + wl <= len; i++)
		if (memcmp(s + i, word, wl) == 0)
			return true;
	return false;
}

/* OVH's "ip-51-254-47.eu": a registered domain that is itself a network. */
static bool reg_label_is_network(const struct parsed *p)
{
	const struct span *l = &p->label[p->reg_first];
	const char *s = p->s + l->off;
	size_t digits = 0;

	if (l->len < 4 || memcmp(s, "ip-", 3) != 0)
		return false;
	for (size_t i = 3; i < l->len; i++) {
		if (is_digit(s[i]))
			digits++;
		else if (s[i] != '-')
			return false;
	}
	return digits > 0;
}

/* The first label carries a number of two digits or more, like
 * "fl-edel-u2-c3c-233" or "cm114": a numbered host, a weak sign of a pool
 * (S25R's first rule, roughly). */
static bool label0_numbered(const struct parsed *p)
{
	size_t end = (size_t)p->label[0].off + p->label[0].len;

	for (size_t i = 0; i < p->nruns && p->run[i].off < end; i++)
		if (p->run[i].len >= 2)
			return true;
	return false;
}

/* Longest digit run in the first label. */
static size_t label0_longest_run(const struct parsed *p)
{
	size_t best = 0, end = (size_t)p->label[0].off + p->label[0].len;

	for (size_t i = 0; i < p->nruns && p->run[i].off < end; i++)
		if (p->run[i].len > best)
			best = p->run[i].len;
	return best;
}

int ptrclass_classify(const char *name, int family, const uint8_t *addr,
		      enum ptrclass_level level, struct ptrclass_result *out)
{
	struct parsed p;
	struct kw_hits kw;
	int rc;

	if (!name || !out)
		return -EINVAL;
	if (level != PTRCLASS_CONSERVATIVE && level != PTRCLASS_MODERATE &&
	    level != PTRCLASS_AGGRESSIVE)
		return -EINVAL;
	if (family != 0 && family != AF_INET && family != AF_INET6)
		return -EINVAL;
	if (family != 0 && !addr)
		return -EINVAL;
	if ((rc = parse_name(name, &p)) < 0)
		return rc;

	memset(out, 0, sizeof(*out));
	bool has_host = p.reg_first > 0;
	int pts = 0;

	if (family == AF_INET)
		out->addr_form = find_ipv4(&p, addr);
	else if (family == AF_INET6)
		out->addr_form = find_ipv6(&p, addr);
	if (out->addr_form == PTRCLASS_ADDR_NONE && family != AF_INET6 && find_addr_like(&p))
		out->addr_form = PTRCLASS_ADDR_LIKE;

	switch (out->addr_form) {
	case PTRCLASS_ADDR_FULL:
	case PTRCLASS_ADDR_REVERSED:
	case PTRCLASS_ADDR_HEX:
	case PTRCLASS_ADDR_IPV6:
		out->signals |= PTRSIG_ADDR;
		pts += PTS_ADDR_FULL;
		break;
	case PTRCLASS_ADDR_PART3:
		out->signals |= PTRSIG_ADDR_PART;
		pts += PTS_ADDR_PART3;
		break;
	case PTRCLASS_ADDR_PART2:
		out->signals |= PTRSIG_ADDR_PART;
		pts += PTS_ADDR_PART2;
		break;
	case PTRCLASS_ADDR_CONCAT:
		out->signals |= PTRSIG_ADDR_PART;
		pts += PTS_ADDR_CONCAT;
		break;
	case PTRCLASS_ADDR_LAST:
		out->signals |= PTRSIG_ADDR_PART;
		if (level != PTRCLASS_CONSERVATIVE)
			pts += PTS_ADDR_LAST;
		break;
	case PTRCLASS_ADDR_LIKE:
		out->signals |= PTRSIG_ADDR_LIKE;
		pts += family == 0 ? PTS_ADDR_LIKE : PTS_ADDR_LIKE_OTHER;
		break;
	case PTRCLASS_ADDR_NONE:
		break;
	}

	if (has_host) {
		unsigned hexsig = 0;
		scan_hex_tokens(&p, &hexsig);
		if (hexsig & PTRSIG_MAC) {
			out->signals |= PTRSIG_MAC;
			pts += PTS_MAC;
		}
		if ((hexsig & PTRSIG_HEX_LIKE) && out->addr_form != PTRCLASS_ADDR_HEX) {
			out->signals |= PTRSIG_HEX_LIKE;
			pts += PTS_HEX_LIKE;
		}
		/* Numbers the address already explains say nothing more. */
		bool explained = out->signals & (PTRSIG_ADDR | PTRSIG_ADDR_LIKE) ||
				 (out->addr_form >= PTRCLASS_ADDR_CONCAT &&
				  out->addr_form <= PTRCLASS_ADDR_PART3);
		if (!explained && label0_longest_run(&p) >= 5)
			out->signals |= PTRSIG_LONGNUM;
		if (!explained && label0_numbered(&p))
			out->signals |= PTRSIG_NUMBERED;
		/* Both describe the same label: count it once. */
		if (out->signals & (PTRSIG_LONGNUM | PTRSIG_NUMBERED))
			pts += PTS_NUMBERED;
	}

	scan_keywords(&p, &kw);
	int kwpts = kw.strong * PTS_KW_STRONG + kw.access * PTS_KW_ACCESS;
	pts += kwpts > PTS_KW_CAP ? PTS_KW_CAP : kwpts;
	if (kw.strong)
		out->signals |= PTRSIG_KW_STRONG;
	if (kw.access)
		out->signals |= PTRSIG_KW_ACCESS;
	if (kw.first_access)
		set_str(out->keyword, sizeof(out->keyword), kw.first_access, kw.access_len);
	out->score = pts;

	/* Static and hosting evidence. */
	const struct span *reg = &p.label[p.reg_first];
	const char *reg_label = p.s + reg->off;
	if (kw.first_static) {
		out->signals |= PTRSIG_STATIC;
		set_str(out->static_marker, sizeof(out->static_marker),
			kw.first_static, kw.static_len);
	} else if (contains(reg_label, reg->len, "business")) {
		out->signals |= PTRSIG_STATIC;
		set_str(out->static_marker, sizeof(out->static_marker), "business", 8);
	}
	for (size_t i = 0; i < sizeof(hosting_domains) / sizeof(hosting_domains[0]); i++) {
		if (ends_with_domain(&p, hosting_domains[i])) {
			out->signals |= PTRSIG_HOSTING;
			if (!out->static_marker[0])
				set_str(out->static_marker, sizeof(out->static_marker),
					hosting_domains[i], strlen(hosting_domains[i]));
			break;
		}
	}
	if (!(out->signals & PTRSIG_HOSTING) && has_host) {
		bool hosting = reg_label_is_network(&p);
		for (size_t i = 0; !hosting && i < sizeof(reg_hosting_words) / sizeof(reg_hosting_words[0]); i++)
			hosting = contains(reg_label, reg->len, reg_hosting_words[i]);
		if (hosting) {
			out->signals |= PTRSIG_HOSTING;
			if (!out->static_marker[0])
				set_str(out->static_marker, sizeof(out->static_marker),
					reg_label, p.len - reg->off);
		}
	}

	/* Mail-host evidence: a marker in the host part or the provider's own
	 * name ("sparkpostmail", "mailgun"), and nothing access-like. */
	const char *mail = kw.first_mail;
	size_t mail_len = kw.mail_len;
	if (!mail && has_host && (contains(reg_label, reg->len, "mail") ||
				  contains(reg_label, reg->len, "smtp"))) {
		mail = contains(reg_label, reg->len, "mail") ? "mail" : "smtp";
		mail_len = 4;
	}
	if (mail) {
		set_str(out->mail_marker, sizeof(out->mail_marker), mail, mail_len);
		if (kw.strong || kw.access || (out->signals & PTRSIG_STATIC))
			out->signals |= PTRSIG_MAIL_IGNORED;
		else
			out->signals |= PTRSIG_MAILHOST;
	}

	bool generic = out->signals & (PTRSIG_ADDR | PTRSIG_ADDR_PART | PTRSIG_ADDR_LIKE |
				       PTRSIG_HEX_LIKE | PTRSIG_MAC | PTRSIG_LONGNUM |
				       PTRSIG_NUMBERED);
	/* A server number is enough to make a hosting name generic ("www62"). */
	bool numbered = generic || (has_host && label0_longest_run(&p) >= 2);
	bool embeds = (out->signals & PTRSIG_ADDR) || out->addr_form == PTRCLASS_ADDR_PART3;
	bool dynamic = pts >= level_threshold[level] &&
		       (level != PTRCLASS_CONSERVATIVE || kw.strong || kw.access);

	if (out->signals & PTRSIG_MAILHOST) {
		out->cls = PTRCLASS_NAMED;
	} else if ((out->signals & (PTRSIG_STATIC | PTRSIG_HOSTING)) && numbered) {
		out->cls = PTRCLASS_STATIC;
		out->flags |= PTRCLASS_F_STATIC;
	} else if (dynamic) {
		out->cls = PTRCLASS_DYNAMIC;
		out->flags |= PTRCLASS_F_DYNAMIC;
	} else if (pts > 0 || generic) {
		out->cls = PTRCLASS_UNKNOWN;
	} else {
		out->cls = PTRCLASS_NAMED;
	}
	if (embeds && out->cls != PTRCLASS_NAMED)
		out->flags |= PTRCLASS_F_EMBEDS;
	return 0;
}

const char *ptrclass_class_name(enum ptrclass_class cls)
{
	switch (cls) {
	case PTRCLASS_DYNAMIC:
		return "dynamic";
	case PTRCLASS_STATIC:
		return "generic static";
	case PTRCLASS_NAMED:
		return "named host";
	case PTRCLASS_UNKNOWN:
		break;
	}
	return "unknown";
}

static const char *addr_form_text(enum ptrclass_addr_form f)
{
	switch (f) {
	case PTRCLASS_ADDR_FULL:
		return "embeds address";
	case PTRCLASS_ADDR_REVERSED:
		return "embeds address (reversed)";
	case PTRCLASS_ADDR_HEX:
		return "embeds address (hex)";
	case PTRCLASS_ADDR_IPV6:
		return "embeds address (IPv6)";
	case PTRCLASS_ADDR_PART3:
	case PTRCLASS_ADDR_PART2:
		return "partial address";
	case PTRCLASS_ADDR_CONCAT:
		return "partial address (concatenated)";
	case PTRCLASS_ADDR_LAST:
		return "last octet";
	case PTRCLASS_ADDR_LIKE:
		return "address-like numbers";
	case PTRCLASS_ADDR_NONE:
		break;
	}
	return NULL;
}

struct sbuf {
	char *buf;
	size_t cap, len;
};

static void sb_add(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n >= b->cap)
		n = b->len + 1 < b->cap ? b->cap - b->len - 1 : 0;
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
}

static void sb_reason(struct sbuf *b, const char *a, const char *q, const char *c)
{
	if (b->len > 0)
		sb_add(b, "; ");
	sb_add(b, a);
	if (q) {
		sb_add(b, " \"");
		sb_add(b, q);
		sb_add(b, "\"");
	}
	if (c)
		sb_add(b, c);
}

int ptrclass_explain(const struct ptrclass_result *res, const char *name,
		     char *buf, size_t len)
{
	char reasons[PTRCLASS_EXPLAIN_MAX + 1];
	struct sbuf r = { reasons, sizeof(reasons), 0 };

	if (!res || !name || !buf)
		return -EINVAL;
	if (len < 2)
		return -ENOSPC;
	reasons[0] = '\0';

	const char *af = addr_form_text(res->addr_form);
	if (af)
		sb_reason(&r, af, NULL, NULL);
	if (res->signals & PTRSIG_MAC)
		sb_reason(&r, "MAC address", NULL, NULL);
	if (res->signals & PTRSIG_HEX_LIKE)
		sb_reason(&r, "hex number", NULL, NULL);
	if (res->signals & PTRSIG_LONGNUM)
		sb_reason(&r, "long number", NULL, NULL);
	if (res->signals & PTRSIG_NUMBERED)
		sb_reason(&r, "numbered label", NULL, NULL);
	if (res->keyword[0])
		sb_reason(&r, "keyword", res->keyword, NULL);
	if (res->signals & PTRSIG_STATIC)
		sb_reason(&r, "static marker", res->static_marker, NULL);
	else if (res->signals & PTRSIG_HOSTING)
		sb_reason(&r, "hosting domain", res->static_marker, NULL);
	if (res->signals & PTRSIG_MAILHOST)
		sb_reason(&r, "mail marker", res->mail_marker, NULL);
	else if (res->signals & PTRSIG_MAIL_IGNORED)
		sb_reason(&r, "mail marker", res->mail_marker, " overruled");
	if (r.len == 0)
		sb_add(&r, "no generic signals");

	const char *cls = (res->signals & PTRSIG_MAILHOST) ? "mail host"
							    : ptrclass_class_name(res->cls);
	size_t cap = len - 1 < PTRCLASS_EXPLAIN_MAX ? len - 1 : PTRCLASS_EXPLAIN_MAX;
	size_t nlen = strlen(name);
	if (nlen > 0 && name[nlen - 1] == '.')
		nlen--;
	/* cls ": " name " (" reasons ")" */
	size_t fixed = strlen(cls) + 2 + 2 + r.len + 1;
	char shortname[NAME_MAX_LEN + 4];
	if (fixed + nlen > cap) {
		size_t room = cap > fixed + 3 ? cap - fixed - 3 : 0;
		if (room > nlen)
			room = nlen;
		memcpy(shortname, name, room);
		memcpy(shortname + room, "...", 4);
	} else {
		size_t n = nlen < NAME_MAX_LEN ? nlen : NAME_MAX_LEN;
		memcpy(shortname, name, n);
		shortname[n] = '\0';
	}
	/* TXT strings are ASCII: the name is echoed, not trusted. */
	for (char *c = shortname; *c; c++)
		if (*c < 0x21 || *c > 0x7e)
			*c = '?';

	struct sbuf out = { buf, cap + 1, 0 };
	buf[0] = '\0';
	sb_add(&out, cls);
	sb_add(&out, ": ");
	sb_add(&out, shortname);
	sb_add(&out, " (");
	sb_add(&out, reasons);
	sb_add(&out, ")");
	return (int)out.len;
}

int ptrclass_level_parse(const char *text, enum ptrclass_level *out)
{
	static const char *const names[] = { "conservative", "moderate", "aggressive" };

	if (!text || !out)
		return -EINVAL;
	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(text, names[i]) == 0) {
			*out = (enum ptrclass_level)i;
			return 0;
		}
	}
	return -EINVAL;
}
