/* SPDX-License-Identifier: MIT */
/*
 * broker.h - xenmqd: the domains, the ACL, and xenmqd's own connection to
 * Mosquitto, through which it reports: xenmq/broker/status (online/offline,
 * retained, with a last will), xen/<domain>/status (retained) and counters
 * under xenmq/broker/ (retained JSON, every status_interval seconds).
 *
 * The broker owns its domains; each domain owns its channel, its link and
 * its application sessions (broker/domain.h, broker/session.h).
 */
#ifndef XMQ_BROKER_BROKER_H
#define XMQ_BROKER_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "bridge/mqtt.h"
#include "broker/conf.h"
#include "topics/acl.h"

typedef struct xmq_domain xmq_domain_t;

typedef struct xmq_broker {
	uv_loop_t *loop;
	char *conf_path;
	xmq_conf_t conf;
	xmq_acl_t *acl;          /* NULL: every publish and subscribe denied */
	xmq_mqtt_t *ctl;         /* xenmqd's own Mosquitto connection */
	xmq_domain_t *domains;   /* list, in configuration order */
	uv_timer_t stats_timer;
	uv_timer_t tick_timer;   /* once a second: retransmissions */
	uv_timer_t stop_timer;   /* bounds the wait for the last reports */
	unsigned stop_acks;      /* reports still to be acknowledged */
	bool draining;            /* stop asked: waiting for the DomUs' acknowledgements */
	uint64_t drain_deadline;
	bool stopping;            /* then: closing */
	bool verbose;             /* -v: debug logs whatever log_level says */
	unsigned closing;        /* children and handles still closing */
	uint64_t started_ms;
	void (*stopped_cb)(struct xmq_broker *b);
} xmq_broker_t;

/*
 * xmq_broker_init - a stopped broker on loop for the given configuration
 * and ACL, both stolen (conf is copied by value and must not be disposed by
 * the caller on success; acl may be NULL). conf_path (borrowed, copied) is
 * re-read on xmq_broker_reload(). Returns 0 or -ENOMEM; on failure conf and
 * acl stay the caller's.
 */
int xmq_broker_init(uv_loop_t *loop, xmq_broker_t *b, const char *conf_path,
                    xmq_conf_t *conf, xmq_acl_t *acl) XMQ_WUR;

/* xmq_broker_start - connect to Mosquitto and to every domain's channel. */
int xmq_broker_start(xmq_broker_t *b) XMQ_WUR;

/*
 * xmq_broker_reload - re-read the configuration and the ACL; if either is
 * wrong, log why and keep running with the old ones. Domains whose channel
 * did not change keep their channel and sessions; limits apply at once.
 */
void xmq_broker_reload(xmq_broker_t *b);

/*
 * xmq_broker_stop - report every domain and xenmqd offline, end every
 * session, close everything; cb runs when nothing is left on the loop that
 * belongs to the broker. Idempotent.
 */
void xmq_broker_stop(xmq_broker_t *b, void (*cb)(xmq_broker_t *b));

/* Free what the broker holds, once it stopped. */
void xmq_broker_dispose(xmq_broker_t *b);

/* ---- for domains and sessions ------------------------------------------ */

/* Whether domain (client_id: the session's) may access topic. */
bool xmq__broker_allows(const xmq_broker_t *b, const char *domain,
                        const char *client_id, const char *topic, int access);

/* Publish a domain's status, retained ("online" or "offline"). */
void xmq__broker_domain_status(xmq_broker_t *b, xmq_domain_t *d);

/* A domain finished closing (it frees itself afterwards). */
void xmq__broker_domain_closed(xmq_broker_t *b, xmq_domain_t *d);

#endif /* XMQ_BROKER_BROKER_H */
