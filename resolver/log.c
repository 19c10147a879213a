/*
 * One write(2) per line, so that lines from several loop threads never
 * interleave inside a line.
 */
#include "resolver/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level max_level = LOG_LVL_INFO;

void log_set_level(enum log_level max)
{
	max_level = max;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl > max_level)
		return;
	static const char *const names[] = { "", "", "", "error", "warning",
					     "notice", "info", "debug" };
	char line[1024];
	size_t n;
	if (isatty(STDERR_FILENO)) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S ", &tm);
	} else {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", (int)lvl);
	}
	n += (size_t)snprintf(line + n, sizeof(line) - n, "rblmuxd: %s: ", names[lvl]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
