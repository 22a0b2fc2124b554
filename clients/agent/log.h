/* SPDX-License-Identifier: MIT */
/*
 * log.h - xenmq-agent's log: one line per event on stderr, with a local
 * timestamp and a syslog level ("2026-11-21T06:00:00 notice: ..."), which
 * is what both systemd's journal and OpenRC's supervise-daemon collect.
 *
 * Application names and other strings that came from a local client go
 * through xmq__agent_quote() first, so that no client can forge or garble a
 * log line. A throttle keeps a flooding client from flooding the log.
 */
#ifndef XMQ_AGENT_LOG_H
#define XMQ_AGENT_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

/* Log messages up to max_priority (LOG_ERR .. LOG_DEBUG); LOG_NOTICE at start. */
void xmq__agent_log_setup(int max_priority);

bool xmq__agent_log_enabled(int priority);

void xmq__agent_log(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * xmq__agent_quote - s as a quoted, printable, bounded string in buf:
 * quotes, backslashes and control bytes escaped, cut at 120 bytes with
 * "...". Returns buf; "(none)" for a NULL s.
 */
#define XMQ_AGENT_QUOTE_MAX 512
const char *xmq__agent_quote(char buf[XMQ_AGENT_QUOTE_MAX], const char *s);

/*
 * A throttle lets one message through per interval and counts the others:
 * xmq__agent_throttle_pass() returns true when the caller should log, and
 * then sets *skipped to the number of messages held back since the last one.
 */
typedef struct xmq_agent_throttle {
	uint64_t last_ms;  /* 0: never passed */
	uint64_t skipped;
} xmq_agent_throttle_t;

bool xmq__agent_throttle_pass(xmq_agent_throttle_t *t, uint64_t now_ms,
                              uint64_t interval_ms, uint64_t *skipped);

#endif /* XMQ_AGENT_LOG_H */
