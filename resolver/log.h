/*
 * log: rblmuxd's log lines, on stderr, one line each, journald/syslog friendly
 * (a "<N>" priority prefix when stderr is not a terminal, as sd-daemon(3)
 * reads it; a timestamp when it is).
 */
#ifndef RBLMUX_RESOLVER_LOG_H
#define RBLMUX_RESOLVER_LOG_H

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_NOTICE = 5,
		 LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* Lines above this level are not printed (default INFO). */
void log_set_level(enum log_level max);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
