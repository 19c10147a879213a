/*
 * rblmux-spf: the SPF helper process of rblmuxd.
 *
 * SPF records are written by whoever sends the mail; whatever parses them
 * runs here, where a crash or an exploit cannot take the DNS server down or
 * reach its privileges. rblmuxd starts one helper per event loop, talks to
 * it over a socketpair on stdin (resolver/spfipc.h) and answers every DNS
 * question the helper asks with its own resolvers and cache: the helper
 * needs no network and no files.
 *
 * So, before it reads anything: every other descriptor is closed; started
 * as root it becomes an unprivileged user (default "nobody"); it can gain
 * no privileges again, is not dumpable, gets no core file, a bounded
 * address space; and a seccomp filter (x86-64, aarch64) lets its threads
 * only read and write the descriptors they have, manage memory and wait
 * (opening a file fails with EACCES): any other system call kills the
 * process, which rblmuxd then restarts.
 *
 * Threads: the main thread reads frames; N evaluator threads each run one
 * check at a time with the synchronous evaluator (zones/spf_eval), blocking
 * on the answer to each DNS question, with a deadline per check.
 *
 *   rblmux-spf [-t THREADS] [-u USER] [-e own|libspf2] [--no-sandbox]
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "resolver/spfhelper.h"
#include "resolver/spfipc.h"
#include "zones/spf_eval.h"

#define IPC_FD 0
#define DEFAULT_THREADS 16
#define MAX_THREADS 256
#define THREAD_STACK (512 * 1024)
#define ADDRESS_SPACE_MAX ((rlim_t)1 << 30)

/* One evaluator thread, and the DNS question it waits on. */
struct slot {
	pthread_t thread;
	pthread_cond_t cond;
	uint32_t check_id;
	uint32_t seq;
	bool waiting;          /* a question is out: an answer may land here */
	bool answered;
	struct spf_answer *ans;
	uint64_t deadline_ns;  /* of the current check, CLOCK_MONOTONIC */
	uint8_t out[SPFIPC_FRAME_MAX];
};

struct job {
	struct job *next;
	struct spfipc_check check;
};

static struct {
	pthread_mutex_t lock;     /* slots' question state, the job queue */
	pthread_cond_t jobs_cond;
	struct job *head, *tail;
	pthread_mutex_t write_lock;
	pthread_barrier_t started;  /* every thread runs before the filter goes on */
	struct slot *slots;
	unsigned nslots;
	spfhelper_engine_fn engine;
} H = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.jobs_cond = PTHREAD_COND_INITIALIZER,
	.write_lock = PTHREAD_MUTEX_INITIALIZER,
};

void spfhelper_log(const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "rblmux-spf[%d]: ", (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(2, line, (size_t)n);
	(void)w;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A whole frame, or the process ends: rblmuxd is gone or the socket broke. */
static void send_frame(const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&H.write_lock);
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(IPC_FD, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		off += (size_t)n;
	}
	pthread_mutex_unlock(&H.write_lock);
}

/* ------------------------------------------------------------------ DNS */

int spfhelper_dns(void *arg, const uint8_t *name, size_t name_len, uint16_t qtype,
		  struct spf_answer *out)
{
	struct slot *s = arg;
	struct spfipc_query q;

	out->status = SPF_ANS_ERROR;
	out->n = out->n_total = 0;
	out->data_len = 0;
	if (name_len > DNSWIRE_NAME_MAX || mono_ns() >= s->deadline_ns)
		return 0;
	memset(&q, 0, sizeof(q));
	q.check_id = s->check_id;
	q.qtype = qtype;
	q.name_len = (uint8_t)name_len;
	memcpy(q.name, name, name_len);

	pthread_mutex_lock(&H.lock);
	q.seq = ++s->seq;
	s->ans = out;
	s->answered = false;
	s->waiting = true;
	pthread_mutex_unlock(&H.lock);

	int len = spfipc_encode_query(s->out, sizeof(s->out), &q);
	if (len < 0) {
		pthread_mutex_lock(&H.lock);
		s->waiting = false;
		pthread_mutex_unlock(&H.lock);
		return 0;
	}
	send_frame(s->out, (size_t)len);

	struct timespec until = {
		.tv_sec = (time_t)(s->deadline_ns / 1000000000u),
		.tv_nsec = (long)(s->deadline_ns % 1000000000u),
	};
	pthread_mutex_lock(&H.lock);
	while (!s->answered) {
		int rc = pthread_cond_timedwait(&s->cond, &H.lock, &until);
		if (rc == ETIMEDOUT)
			break;
	}
	if (!s->answered) {
		out->status = SPF_ANS_ERROR;
		out->n = out->n_total = 0;
		out->data_len = 0;
	}
	s->waiting = false;
	s->ans = NULL;
	pthread_mutex_unlock(&H.lock);
	return 0;
}

/* The reader thread hands an answer to the thread waiting for it; answers
 * nobody waits for any more (past a deadline) are dropped. */
static void deliver_answer(const uint8_t *frame, size_t len)
{
	static struct spf_answer scratch;
	uint32_t check_id, seq;

	if (spfipc_decode_answer(frame, len, &check_id, &seq, &scratch) < 0) {
		spfhelper_log("malformed answer from rblmuxd: exiting");
		_exit(2);
	}
	pthread_mutex_lock(&H.lock);
	for (unsigned i = 0; i < H.nslots; i++) {
		struct slot *s = &H.slots[i];
		if (!s->waiting || s->answered || s->check_id != check_id || s->seq != seq)
			continue;
		struct spf_answer *a = s->ans;
		a->status = scratch.status;
		a->n = scratch.n;
		a->n_total = scratch.n_total;
		a->data_len = scratch.data_len;
		memcpy(a->rr, scratch.rr, scratch.n * sizeof(scratch.rr[0]));
		memcpy(a->data, scratch.data, scratch.data_len);
		s->answered = true;
		pthread_cond_signal(&s->cond);
		break;
	}
	pthread_mutex_unlock(&H.lock);
}

/* ---------------------------------------------------------- evaluation */

static void engine_own(void *dns_arg, const struct spfipc_check *c, struct spfipc_result *r)
{
	struct spf_eval_req req = {
		.family = c->family,
		.domain = c->domain,
		.local_part = c->local_part,
		.helo = c->helo[0] ? c->helo : NULL,
		.receiver = c->receiver[0] ? c->receiver : NULL,
		.now = c->now,
		.dns = spfhelper_dns,
		.dns_arg = dns_arg,
	};
	struct spf_eval_out out;
	memcpy(req.ip, c->ip, 16);
	spf_eval_check_host(&req, &out);
	r->result = (uint8_t)out.result;
	r->has_explanation = out.has_explanation;
	r->dns_terms = (uint16_t)out.dns_terms;
	r->void_lookups = (uint16_t)out.void_lookups;
	r->questions = (uint16_t)out.questions;
	snprintf(r->explanation, sizeof(r->explanation), "%s", out.explanation);
	snprintf(r->reason, sizeof(r->reason), "%s", out.reason);
}

static void *evaluator_main(void *arg)
{
	struct slot *s = arg;
	struct spfipc_result res;
	pthread_barrier_wait(&H.started);
	for (;;) {
		pthread_mutex_lock(&H.lock);
		while (!H.head)
			pthread_cond_wait(&H.jobs_cond, &H.lock);
		struct job *j = H.head;
		H.head = j->next;
		if (!H.head)
			H.tail = NULL;
		s->check_id = j->check.id;
		s->seq = 0;
		pthread_mutex_unlock(&H.lock);

		uint32_t limit = j->check.time_limit_ms ? j->check.time_limit_ms : 1;
		s->deadline_ns = mono_ns() + (uint64_t)limit * 1000000u;
		memset(&res, 0, sizeof(res));
		res.check_id = j->check.id;
		H.engine(s, &j->check, &res);
		if (mono_ns() >= s->deadline_ns && res.result != SPF_TEMPERROR) {
			/* Questions cut short by the deadline may have changed the
			 * outcome: only "could not decide" is honest. */
			res.result = SPF_TEMPERROR;
			res.has_explanation = false;
			res.explanation[0] = '\0';
			snprintf(res.reason, sizeof(res.reason), "time limit of %u ms", limit);
		}
		free(j);
		int len = spfipc_encode_result(s->out, sizeof(s->out), &res);
		if (len < 0) {
			spfhelper_log("cannot encode a result: %s", strerror(-len));
			_exit(2);
		}
		send_frame(s->out, (size_t)len);
	}
	return NULL;
}

static void queue_check(const uint8_t *frame, size_t len)
{
	struct job *j = malloc(sizeof(*j));
	if (!j) {
		spfhelper_log("out of memory");
		_exit(3);
	}
	j->next = NULL;
	if (spfipc_decode_check(frame, len, &j->check) < 0) {
		spfhelper_log("malformed check from rblmuxd: exiting");
		_exit(2);
	}
	pthread_mutex_lock(&H.lock);
	if (H.tail)
		H.tail->next = j;
	else
		H.head = j;
	H.tail = j;
	pthread_cond_signal(&H.jobs_cond);
	pthread_mutex_unlock(&H.lock);
}

/* -------------------------------------------------------------- sandbox */

static int drop_privileges(const char *user)
{
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		spfhelper_log("user %s: no such user", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		spfhelper_log("refusing to run as root (user %s)", user);
		return -1;
	}
	if (setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
		spfhelper_log("cannot become %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		spfhelper_log("could become root again: refusing to run");
		return -1;
	}
	return 0;
}

static void limit_resources(void)
{
	struct rlimit none = { 0, 0 };
	struct rlimit as = { ADDRESS_SPACE_MAX, ADDRESS_SPACE_MAX };
	setrlimit(RLIMIT_CORE, &none);
#ifndef __SANITIZE_ADDRESS__
	/* (AddressSanitizer reserves terabytes of address space.) */
	setrlimit(RLIMIT_AS, &as);
#else
	(void)as;
#endif
	/* One arena per thread would reserve 64 MiB of address space each. */
	mallopt(M_ARENA_MAX, 2);
	prctl(PR_SET_DUMPABLE, 0);
}

#if defined(__x86_64__)
#define SANDBOX_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_ARCH AUDIT_ARCH_AARCH64
#endif

#define SYSCALL_ALLOW(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define SYSCALL_REFUSE(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES)

/* After the threads exist: they need no more clone, open, socket, exec. */
static int install_seccomp(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		spfhelper_log("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
#ifdef SANDBOX_ARCH
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		SYSCALL_ALLOW(__NR_read),
		SYSCALL_ALLOW(__NR_write),
		SYSCALL_ALLOW(__NR_futex),
		SYSCALL_ALLOW(__NR_mmap),
		SYSCALL_ALLOW(__NR_munmap),
		SYSCALL_ALLOW(__NR_mremap),
		SYSCALL_ALLOW(__NR_mprotect),
		SYSCALL_ALLOW(__NR_madvise),
		SYSCALL_ALLOW(__NR_brk),
		SYSCALL_ALLOW(__NR_clock_gettime),
		SYSCALL_ALLOW(__NR_gettimeofday),
		SYSCALL_ALLOW(__NR_getpid),
		/* gethostname(): libspf2 asks when it starts. */
		SYSCALL_ALLOW(__NR_uname),
		SYSCALL_ALLOW(__NR_gettid),
		SYSCALL_ALLOW(__NR_rt_sigreturn),
		SYSCALL_ALLOW(__NR_rt_sigprocmask),
		SYSCALL_ALLOW(__NR_sched_yield),
		SYSCALL_ALLOW(__NR_restart_syscall),
		/* What a thread does when it starts or ends, in case one does. */
		SYSCALL_ALLOW(__NR_set_robust_list),
#ifdef __NR_rseq
		SYSCALL_ALLOW(__NR_rseq),
#endif
		SYSCALL_ALLOW(__NR_exit),
		SYSCALL_ALLOW(__NR_exit_group),
		/* glibc's malloc reads /proc/sys/vm/overcommit_memory the first
		 * time it shrinks a thread's heap, and copes without it. */
		SYSCALL_REFUSE(__NR_openat),
#ifdef __NR_open
		SYSCALL_REFUSE(__NR_open),
#endif
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
		.filter = filter,
	};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
		spfhelper_log("seccomp: %s", strerror(errno));
		return -1;
	}
#else
	spfhelper_log("no seccomp filter for this architecture: running without one");
#endif
	return 0;
}

/* ----------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr, "usage: rblmux-spf [-t THREADS] [-u USER] [-e own|libspf2] [--no-sandbox]\n"
			"  (started by rblmuxd with the IPC socket on stdin)\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "user", required_argument, NULL, 'u' },
		{ "engine", required_argument, NULL, 'e' },
		{ "no-sandbox", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned threads = DEFAULT_THREADS;
	const char *user = "nobody";
	const char *engine = "own";
	bool sandbox = true;
	int opt;

	while ((opt = getopt_long(argc, argv, "t:u:e:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 't': threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'u': user = optarg; break;
		case 'e': engine = optarg; break;
		case 'S': sandbox = false; break;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (optind != argc || threads < 1 || threads > MAX_THREADS) {
		usage();
		return 2;
	}
	if (strcmp(engine, "own") == 0) {
		H.engine = engine_own;
	} else if (strcmp(engine, "libspf2") == 0) {
		H.engine = spfhelper_engine_libspf2();
		if (!H.engine) {
			spfhelper_log("the libspf2 engine is not available");
			return 2;
		}
	} else {
		usage();
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	/* stdin is the socket, stderr the log: nothing else is ours to keep. */
	close_range(3, ~0u, 0);
	if (drop_privileges(user) < 0)
		return 1;
	limit_resources();

	H.nslots = threads;
	H.slots = calloc(threads, sizeof(*H.slots));
	if (!H.slots)
		return 3;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_attr_t ta;
	pthread_attr_init(&ta);
	pthread_attr_setstacksize(&ta, THREAD_STACK);
	pthread_barrier_init(&H.started, NULL, threads + 1);
	for (unsigned i = 0; i < threads; i++) {
		pthread_cond_init(&H.slots[i].cond, &ca);
		if (pthread_create(&H.slots[i].thread, &ta, evaluator_main, &H.slots[i]) != 0) {
			spfhelper_log("cannot start thread %u", i);
			return 3;
		}
	}
	pthread_barrier_wait(&H.started);
	if (sandbox && install_seccomp() < 0)
		return 1;

	uint8_t hello[16];
	int hl = spfipc_encode_hello(hello, sizeof(hello), SPFIPC_VERSION);
	send_frame(hello, (size_t)hl);

	static struct spfipc_rbuf rb;
	for (;;) {
		const uint8_t *frame;
		int n;
		while ((n = spfipc_rbuf_next(&rb, &frame)) > 0) {
			switch (spfipc_frame_type(frame)) {
			case SPFIPC_CHECK:
				queue_check(frame, (size_t)n);
				break;
			case SPFIPC_DNS_ANSWER:
				deliver_answer(frame, (size_t)n);
				break;
			default:
				spfhelper_log("unexpected frame type %u: exiting", spfipc_frame_type(frame));
				_exit(2);
			}
		}
		if (n < 0) {
			spfhelper_log("broken stream from rblmuxd: exiting");
			_exit(2);
		}
		size_t space;
		uint8_t *p = spfipc_rbuf_space(&rb, &space);
		ssize_t got = read(IPC_FD, p, space);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			_exit(0);
		spfipc_rbuf_commit(&rb, (size_t)got);
	}
}
