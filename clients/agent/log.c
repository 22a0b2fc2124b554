/* SPDX-License-Identifier: MIT */
/*
 * log.c - levels, timestamps, quoting and throttling for xenmq-agent's log.
 *
 * The level is the only state, set once by main(): a process-wide setting,
 * like the stderr it writes to.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clients/agent/log.h"

#define QUOTE_CUT 120
#define LINE_MAX_LEN 1024

static int max_prio = LOG_NOTICE;

static const char *const names[] = {
	"emerg", "alert", "crit", "error", "warning", "notice", "info", "debug",
};

void xmq__agent_log_setup(int max_priority)
{
	max_prio = max_priority;
}

bool xmq__agent_log_enabled(int priority)
{
	return priority <= max_prio;
}

void xmq__agent_log(int priority, const char *fmt, ...)
{
	char stamp[32];
	char line[LINE_MAX_LEN];
	struct tm tm;
	time_t now;
	va_list ap;

	if (!xmq__agent_log_enabled(priority))
		return;
	now = time(NULL);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line keeps lines whole when stderr is shared. */
	fprintf(stderr, "%s %s: %s\n", stamp, names[priority & 7], line);
}

const char *xmq__agent_quote(char buf[XMQ_AGENT_QUOTE_MAX], const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	size_t i;

	if (s == NULL)
		return "(none)";
	/* At most 4 bytes per input byte, QUOTE_CUT bytes, quotes and "...":
	 * well within XMQ_AGENT_QUOTE_MAX. */
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

bool xmq__agent_throttle_pass(xmq_agent_throttle_t *t, uint64_t now_ms,
                              uint64_t interval_ms, uint64_t *skipped)
{
	if (t->last_ms != 0 && now_ms - t->last_ms < interval_ms) {
		t->skipped++;
		return false;
	}
	*skipped = t->skipped;
	t->skipped = 0;
	/* 0 means "never": a loop whose clock starts at 0 still counts. */
	t->last_ms = now_ms == 0 ? 1 : now_ms;
	return true;
}
