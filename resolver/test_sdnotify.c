/*
 * Unit tests of resolver/sdnotify: datagrams to a path socket and to an
 * abstract one, as systemd would receive them, and the refusals.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "resolver/sdnotify.h"

/* A datagram socket at name ("/path" or "@abstract"); returns its fd. */
static int listen_at(const char *name)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	size_t len = strlen(name);
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
	return fd;
}

static void receive(int fd, char *buf, size_t cap)
{
	ssize_t n = recv(fd, buf, cap - 1, MSG_DONTWAIT);
	assert_true(n >= 0);
	buf[n] = '\0';
}

static void test_path_socket(void **state)
{
	char dir[] = "/tmp/rblmux-sdnotify-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/notify", dir);
	int fd = listen_at(path);
	setenv("NOTIFY_SOCKET", path, 1);
	char buf[256];

	assert_int_equal(sdnotify_send("READY=1"), 1);
	receive(fd, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1");

	assert_int_equal(sdnotify_printf("READY=1\nSTATUS=zone %s, %d sources", "x.internal", 3), 1);
	receive(fd, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1\nSTATUS=zone x.internal, 3 sources");

	assert_int_equal(sdnotify_reloading(), 1);
	receive(fd, buf, sizeof(buf));
	unsigned long long usec = 0;
	char tail = 0;
	assert_int_equal(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu%c", &usec, &tail), 1);
	assert_true(usec > 0);

	/* Nobody listening any more. */
	close(fd);
	unlink(path);
	int rc = sdnotify_send("STOPPING=1");
	assert_true(rc == -ENOENT || rc == -ECONNREFUSED);
	rmdir(dir);
	unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
	char name[64];
	snprintf(name, sizeof(name), "@rblmux-sdnotify-test-%d", (int)getpid());
	int fd = listen_at(name);
	setenv("NOTIFY_SOCKET", name, 1);
	char buf[64];
	assert_int_equal(sdnotify_send("STOPPING=1"), 1);
	receive(fd, buf, sizeof(buf));
	assert_string_equal(buf, "STOPPING=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void test_refusals(void **state)
{
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(sdnotify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(sdnotify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(sdnotify_send("READY=1"), -EINVAL);
	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	assert_int_equal(sdnotify_send("READY=1"), -EAFNOSUPPORT);
	setenv("NOTIFY_SOCKET", "@", 1);
	assert_int_equal(sdnotify_send("READY=1"), -EINVAL);
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longpath, 1);
	assert_int_equal(sdnotify_send("READY=1"), -EINVAL);
	/* State too long for printf's buffer. */
	char big[2000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	setenv("NOTIFY_SOCKET", "@whatever", 1);
	assert_int_equal(sdnotify_printf("STATUS=%s", big), -EMSGSIZE);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
