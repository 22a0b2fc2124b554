/* SPDX-License-Identifier: MIT */
/*
 * acl.h - who may publish and subscribe to what: Mosquitto's acl_file syntax,
 * where a `user` is a Xen domain name.
 *
 * The file is the one Mosquitto 2.0 reads (mosquitto.conf(5), "acl_file"):
 *
 *   # comment                       only in the first column
 *   user NAME                       the rules below apply to domain NAME
 *   topic [read|write|readwrite|deny] FILTER
 *   pattern [read|write|readwrite|deny] FILTER   for every domain; %u is the
 *                                   domain name, %c the session's client id
 *
 * It is parsed from memory: this module does no I/O (broker/conf.h reads
 * files). What a file means is written up, with every difference from
 * Mosquitto, in docs/configuration.md ("ACL semantics"); in short: default
 * deny, a matching `deny` rule always wins, rules written before the first
 * `user` line are Mosquitto's rules for anonymous clients and match no domain,
 * and a subscription is granted only when one read rule covers its whole
 * filter.
 */
#ifndef XMQ_TOPICS_ACL_H
#define XMQ_TOPICS_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "xenmq.h"

typedef struct xmq_acl xmq_acl_t;

/* What a check asks for; pass exactly one. */
enum {
	XMQ_ACL_READ = 1,      /* receive a message published on a topic name */
	XMQ_ACL_WRITE = 2,     /* publish on a topic name */
	XMQ_ACL_SUBSCRIBE = 4  /* subscribe with a topic filter */
};

/*
 * xmq_acl_parse - parse the len bytes at text (not NUL-terminated) as an ACL
 * file. filename (borrowed, may be NULL) only names the file in messages.
 *
 * On success *out is new: free it with xmq_acl_free(). On failure *out is
 * left unchanged and err (errlen bytes, may be NULL) receives one line,
 * "FILE:LINE: what is wrong and how to fix it".
 * Returns 0, XMQ_ECONFIG (the text is not a valid ACL) or -ENOMEM.
 */
int xmq_acl_parse(const char *text, size_t len, const char *filename,
                  xmq_acl_t **out, char *err, size_t errlen) XMQ_WUR;

/* xmq_acl_free - free an ACL; NULL is fine. */
void xmq_acl_free(xmq_acl_t *acl);

/*
 * xmq_acl_check - may domain user, in the application session whose MQTT
 * client id is client_id ("<domain>/<app>"), do access on topic?
 *
 * For XMQ_ACL_READ and XMQ_ACL_WRITE topic is a topic name; for
 * XMQ_ACL_SUBSCRIBE it is the subscription's filter. All strings are
 * borrowed. acl may be NULL (no ACL file): everything is denied. Anything
 * invalid (a malformed topic or filter, a user that is not a domain name, a
 * client id that would put a wildcard into a %c pattern, memory exhaustion)
 * is denied.
 *
 * A granted subscription may still overlap a `deny` rule that covers only a
 * part of its filter (e.g. `xen/+/status` against `deny xen/gui/status`).
 * As in Mosquitto, such messages are held back at delivery: whoever forwards
 * a message to a subscriber must check XMQ_ACL_READ on its topic first.
 */
bool xmq_acl_check(const xmq_acl_t *acl, const char *user, const char *client_id,
                   const char *topic, int access);

/* How many `topic` and `pattern` rules acl holds (0 for NULL), for logs. */
size_t xmq_acl_rules(const xmq_acl_t *acl);

#endif /* XMQ_TOPICS_ACL_H */
