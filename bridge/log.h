/* SPDX-License-Identifier: MIT */
/*
 * log.h - the log of xenmq's daemons (xenmqd, xenmq-agent): syslog
 * priorities, to stderr with a timestamp ("2026-11-21T06:00:00 notice: ...",
 * what systemd's journal and OpenRC's supervise-daemon collect) or to syslog.
 * Library code never calls it. Strings that came from a DomU or a local
 * client go through xmq_log_quote() first: no peer can forge or garble a
 * log line.
 */
#ifndef XMQ_BRIDGE_LOG_H
#define XMQ_BRIDGE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

/* Where and how much to log; may be called again (SIGHUP). */
void xmq_log_setup(const char *ident, int max_priority, bool to_syslog);

void xmq_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

bool xmq_log_enabled(int priority);

/*
 * xmq_log_quote - s as a quoted, printable, bounded string in buf: control
 * bytes and quotes escaped, cut at 120 bytes with "...". Returns buf.
 */
#define XMQ_QUOTE_MAX 512
const char *xmq_log_quote(char buf[XMQ_QUOTE_MAX], const char *s);

/*
 * A throttle lets one message through per interval and counts the rest, so
 * that a flooding domain cannot flood the log: xmq_throttle_pass() returns
 * true when the caller should log, and *suppressed says how many were
 * skipped since the last pass.
 */
typedef struct xmq_throttle {
	uint64_t last_ms;
	uint64_t skipped;
} xmq_throttle_t;

bool xmq_throttle_pass(xmq_throttle_t *t, uint64_t now_ms, uint64_t interval_ms,
                       uint64_t *suppressed);

#endif /* XMQ_BRIDGE_LOG_H */
