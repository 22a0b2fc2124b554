/* SPDX-License-Identifier: MIT */
/*
 * domain.h - one DomU as xenmqd sees it: the Dom0 end of its PV channel
 * (reconnected while absent), the link on it, the sessions of its
 * applications, and the limits that keep one domain from hurting the others:
 * frame size, message and byte rates, subscriptions, sessions, and a bound
 * on what waits for a slow channel.
 *
 * Identity comes from here: the domain's name is the one configured for the
 * channel, and nothing a DomU sends can change it.
 */
#ifndef XMQ_BROKER_DOMAIN_H
#define XMQ_BROKER_DOMAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "bridge/chan.h"
#include "bridge/link.h"
#include "broker/broker.h"
#include "broker/conf.h"
#include "bridge/log.h"
#include "broker/pacer.h"

typedef struct xmq_session xmq_session_t;
typedef struct xmq_parked xmq_parked_t;

typedef struct xmq_domain_stats {
	uint64_t published;     /* messages from the domain, accepted */
	uint64_t delivered;     /* messages sent to the domain */
	uint64_t denied;        /* refused by the ACL */
	uint64_t rate_limited;  /* dropped (QoS 0) or refused (QoS 1, 0x96) over the rates */
	uint64_t paced;         /* QoS 1 held back until the rates allowed them */
	uint64_t dropped;       /* QoS 0 to the domain dropped: queue full */
	uint64_t refused;       /* malformed, oversize or out-of-protocol frames */
	uint64_t sessions_opened;
} xmq_domain_stats_t;

struct xmq_domain {
	xmq_domain_t *next;
	xmq_broker_t *broker;
	char *name;
	char *channel;
	xmq_limits_t limits;
	xmq_chan_t chan;
	xmq_link_t link;
	xmq_session_t *sessions;  /* open sessions, any order */
	unsigned n_sessions;
	unsigned n_subs;          /* subscriptions of all sessions */
	xmq_parked_t *parked;     /* messages kept for sessions that went away */
	size_t parked_bytes;
	xmq_pacer_t pacer;        /* message and byte rates */
	bool connected;           /* the channel socket is connected */
	bool congested;           /* the channel's write queue is over its bound */
	bool closing;
	bool orphan;              /* failed half-way: not the broker's */
	unsigned pending;         /* handles and sessions still closing */
	xmq_domain_stats_t stats;
	xmq_throttle_t warn_rate;    /* one log line per interval per kind */
	xmq_throttle_t warn_acl;
	xmq_throttle_t warn_frame;
	xmq_throttle_t warn_garbage;
	xmq_throttle_t warn_queue;
	xmq_throttle_t warn_retry;
};

/*
 * xmq_domain_new - a stopped domain for the configuration block dc
 * (borrowed, copied). Returns 0 or -ENOMEM/a libuv error; *out is new and
 * ends with xmq_domain_close().
 */
int xmq_domain_new(xmq_broker_t *b, const xmq_domain_conf_t *dc, xmq_domain_t **out) XMQ_WUR;

/* Connect to the channel, and keep connecting. */
void xmq_domain_start(xmq_domain_t *d);

/* New limits from a reloaded configuration (same name and channel). */
void xmq_domain_set_limits(xmq_domain_t *d, const xmq_limits_t *limits);

/*
 * xmq_domain_close - end every session (reason: MQTT DISCONNECT reason
 * sent to Mosquitto for each), tell the DomU's applications with CLOSE
 * (close_reason, 0 for none), close the channel; the domain frees itself
 * and calls xmq__broker_domain_closed().
 */
void xmq_domain_close(xmq_domain_t *d, int reason, uint8_t close_reason);

/* xenmqd stops: take nothing more from Mosquitto, deliver what is here. */
void xmq_domain_drain(xmq_domain_t *d);

/* Whether the DomU acknowledged everything it was sent (or is gone). */
bool xmq_domain_drained(const xmq_domain_t *d);

/* Once a second: retransmissions. */
void xmq_domain_tick(xmq_domain_t *d);

/* "online" when the link is up, else "offline". */
const char *xmq_domain_status(const xmq_domain_t *d);

/* The domain's counters as a JSON object text (new: free()), or NULL. */
char *xmq_domain_stats_json(const xmq_domain_t *d);

/* ---- for sessions -------------------------------------------------------- */

/* Send a frame to the DomU; steals w->data. Updates congestion. */
int xmq__domain_send(xmq_domain_t *d, xmq_wire_t *w);

/* A session left the domain's list (it finishes closing on its own). */
void xmq__domain_session_gone(xmq_domain_t *d, xmq_session_t *s);

/* A session finished closing. */
void xmq__domain_session_closed(xmq_domain_t *d);

/* Logging with the domain's name in front: "domain \"alpha\": ...". */
void xmq__domain_log(const xmq_domain_t *d, int priority, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Logging through one of the domain's throttles. */
void xmq__domain_warn(xmq_domain_t *d, xmq_throttle_t *t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Messages kept for an application whose link went away: session_out.c
 * parks them, session.c takes them back. */
void xmq__domain_park(xmq_domain_t *d, const char *app, uint32_t expiry,
                      xmq_message_t **msgs, unsigned n);
unsigned xmq__domain_unpark(xmq_domain_t *d, const char *app, xmq_message_t ***msgs);

#endif /* XMQ_BROKER_DOMAIN_H */
