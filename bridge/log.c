/* SPDX-License-Identifier: MIT */
/*
 * log.c - levels, destinations, quoting and throttling for the daemons' log.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bridge/log.h"

#define QUOTE_CUT 120

static int max_prio = LOG_INFO;
static bool use_syslog;

static const char *const names[] = {
	"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
};

void xmq_log_setup(const char *ident, int max_priority, bool to_syslog)
{
	if (use_syslog && !to_syslog)
		closelog();
	if (to_syslog && !use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	use_syslog = to_syslog;
	max_prio = max_priority;
}

bool xmq_log_enabled(int priority)
{
	return priority <= max_prio;
}

void xmq_log(int priority, const char *fmt, ...)
{
	char stamp[32];
	struct tm tm;
	time_t now;
	va_list ap;

	if (!xmq_log_enabled(priority))
		return;
	va_start(ap, fmt);
	if (use_syslog) {
		vsyslog(priority, fmt, ap);
		va_end(ap);
		return;
	}
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf per line keeps lines whole when stderr is shared. */
	{
		char line[1024];

		vsnprintf(line, sizeof(line), fmt, ap);
		fprintf(stderr, "%s %s: %s\n", stamp, names[priority & 7], line);
	}
	va_end(ap);
}

const char *xmq_log_quote(char buf[XMQ_QUOTE_MAX], const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	size_t i;

	if (s == NULL)
		return "(none)";
	buf[o++] = '"';
	for (i = 0; s[i] != '\0' && i < QUOTE_CUT; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[ch >> 4];
			buf[o++] = hex[ch & 15];
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	if (s[i] != '\0') {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

bool xmq_throttle_pass(xmq_throttle_t *t, uint64_t now_ms, uint64_t interval_ms,
                       uint64_t *suppressed)
{
	if (t->last_ms != 0 && now_ms - t->last_ms < interval_ms) {
		t->skipped++;
		return false;
	}
	*suppressed = t->skipped;
	t->skipped = 0;
	t->last_ms = now_ms == 0 ? 1 : now_ms;
	return true;
}
