#include "resolver/sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int sdnotify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !path[0])
		return 0;
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	size_t plen = strlen(path);
	if (path[0] != '/' && path[0] != '@')
		return strchr(path, ':') ? -EAFNOSUPPORT : -EINVAL;
	if (plen < 2 || plen >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	/* An abstract name is exactly its bytes: no terminating NUL counted. */
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	size_t len = strlen(state);
	ssize_t n = sendto(fd, state, len, MSG_NOSIGNAL | MSG_DONTWAIT,
			   (const struct sockaddr *)&sa, salen);
	int err = n < 0 ? errno : 0;
	close(fd);
	if (err)
		return -err;
	return (size_t)n == len ? 1 : -EMSGSIZE;
}

int sdnotify_printf(const char *fmt, ...)
{
	char state[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(state))
		return -EMSGSIZE;
	return sdnotify_send(state);
}

int sdnotify_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return sdnotify_printf("RELOADING=1\nMONOTONIC_USEC=%llu",
			       (unsigned long long)ts.tv_sec * 1000000ull +
				       (unsigned long long)ts.tv_nsec / 1000ull);
}
