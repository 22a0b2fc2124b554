/* SPDX-License-Identifier: MIT */
/*
 * conf.h - xenmqd.conf: where Mosquitto is, which channel belongs to which
 * domain, and the limits each domain lives under; and the loading of the ACL
 * file it names.
 *
 * The syntax is Mosquitto's: one `key value` per line, `#` comments, blank
 * lines, blanks around words ignored. Global keys come first; `domain NAME`
 * opens a block that holds the domain's `channel` and any limit it overrides.
 * Limit keys above the first `domain` line set the defaults of every domain.
 * Every key, its default and its range are in docs/configuration.md.
 *
 * Nothing is guessed: an unknown key, a value out of range or a key in the
 * wrong place is an error naming the file, the line and the fix, because a
 * typo must not silently weaken a limit.
 */
#ifndef XMQ_BROKER_CONF_H
#define XMQ_BROKER_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "topics/acl.h"
#include "xenmq.h"

/* Largest file xmq_conf_load() and xmq_acl_load() read. */
#define XMQ_CONF_FILE_MAX (1024 * 1024)

/* What one domain may use. Defaults in brackets. */
typedef struct xmq_limits {
	uint32_t max_frame_size;     /* bytes, 256..65536 [16384] */
	uint32_t max_message_rate;   /* messages/s a domain may publish, 0 = unlimited [200] */
	uint32_t max_byte_rate;      /* payload bytes/s, 0 = unlimited [262144] */
	uint32_t max_subscriptions;  /* per domain, 1..65535 [64] */
	uint32_t max_sessions;       /* app sessions (streams) per domain, 1..65535 [16] */
	uint32_t max_queued_bytes;   /* Dom0->DomU queue bound, >= max_frame_size [262144] */
	uint32_t max_inflight;       /* QoS 1 unacknowledged per session, both ways, 1..65535 [16] */
	uint32_t max_session_expiry; /* cap on what apps ask, seconds [3600] */
} xmq_limits_t;

typedef struct xmq_domain_conf {
	char *name;           /* a valid domain name, unique */
	char *channel;        /* absolute path of the channel's Unix socket, unique */
	xmq_limits_t limits;  /* the defaults, with this block's overrides */
	unsigned line;        /* of the `domain` line, for messages */
} xmq_domain_conf_t;

typedef struct xmq_conf {
	char *mosquitto;          /* "/abs/path": Unix socket; else "host:port"
	                             ["/run/xenmq/mosquitto.sock"] */
	char *acl_file;           /* absolute path; NULL: every publish and subscribe is denied */
	char *client_id;          /* xenmqd's own MQTT client id ["xenmqd"] */
	int log_level;            /* syslog priority LOG_ERR..LOG_DEBUG [LOG_INFO] */
	char *log_dest;           /* "stderr" or "syslog" ["stderr"] */
	uint32_t status_interval; /* seconds between counters under xenmq/broker/, 0 = off [10] */
	uint32_t keepalive;       /* seconds, MQTT keepalive to Mosquitto, 5..65535 [30] */
	xmq_limits_t defaults;    /* limit keys before the first `domain` line */
	xmq_domain_conf_t *domains;
	size_t n_domains;
} xmq_conf_t;

/*
 * xmq_conf_parse - parse the len bytes at text (not NUL-terminated) as
 * xenmqd.conf. filename (borrowed, may be NULL) only names the file in
 * messages.
 *
 * On success *out is filled with new strings and arrays: release them with
 * xmq_conf_dispose(). *out need not be initialised and is left unchanged on
 * failure (what it held before is never freed), so a reload can parse into a
 * fresh struct and keep the old one when the new file is wrong. err (errlen
 * bytes, may be NULL) then receives one line, "FILE:LINE: problem and fix".
 * Returns 0, XMQ_ECONFIG or -ENOMEM.
 */
int xmq_conf_parse(const char *text, size_t len, const char *filename, xmq_conf_t *out,
                   char *err, size_t errlen) XMQ_WUR;

/*
 * xmq_conf_load - read the file at path (borrowed; at most XMQ_CONF_FILE_MAX
 * bytes) and parse it as xmq_conf_parse() does, naming it path in messages.
 * Returns 0, XMQ_ECONFIG, -ENOMEM or the -errno of opening or reading it.
 */
int xmq_conf_load(const char *path, xmq_conf_t *out, char *err, size_t errlen) XMQ_WUR;

/* xmq_conf_dispose - free what c holds and zero it; idempotent, safe on a
 * zeroed or half-filled struct, NULL is fine. */
void xmq_conf_dispose(xmq_conf_t *c);

/* The block of the domain called name (borrowed from c), or NULL. */
const xmq_domain_conf_t *xmq_conf_domain(const xmq_conf_t *c, const char *name);

/*
 * xmq_acl_load - read the ACL file at path (borrowed; at most
 * XMQ_CONF_FILE_MAX bytes) and parse it with xmq_acl_parse(). On success *out
 * is new (xmq_acl_free()); on failure it is left unchanged and err says why.
 * Returns 0, XMQ_ECONFIG, -ENOMEM or the -errno of opening or reading it.
 */
int xmq_acl_load(const char *path, xmq_acl_t **out, char *err, size_t errlen) XMQ_WUR;

#endif /* XMQ_BROKER_CONF_H */
