/* SPDX-License-Identifier: MIT */
/*
 * session.h - one DomU application as an MQTT v5 session on Mosquitto.
 *
 * A session is born from an OPEN on a stream of the domain's link and lives
 * as one libmosquitto connection with the client id "<domain>/<app>" and the
 * application's last will. Everything that crosses it is checked here: the
 * ACL on every publish, subscription and delivery, the rates, the in-flight
 * windows both ways; and every message from the DomU is stamped with the
 * user property xen-domain=<domain>, any such property it sent being removed.
 *
 * QoS 1 is end to end: a PUBLISH from the DomU is acknowledged when
 * Mosquitto acknowledged it; a message for the DomU stays queued here until
 * the DomU acknowledged it, and is kept for its application when its link
 * goes away (broker/domain.h, "parked") to be sent again when it comes back.
 */
#ifndef XMQ_BROKER_SESSION_H
#define XMQ_BROKER_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "bridge/frame.h"
#include "bridge/mqtt.h"
#include "broker/domain.h"
#include "topics/topic.h"

/* Fewest acknowledged packet ids a session remembers (see acked_ids). */
#define XMQ_ACKED_MIN 32

/* The name of the user property that says which domain published. */
#define XMQ_DOMAIN_PROPERTY "xen-domain"

typedef struct xmq_sub xmq_sub_t;
typedef struct xmq_out xmq_out_t;
typedef struct xmq_request xmq_request_t;

/* A QoS 1 message from the DomU waiting for Mosquitto's PUBACK. */
typedef struct xmq_inflight {
	int mid;
	uint16_t packet_id;
} xmq_inflight_t;

struct xmq_session {
	xmq_session_t *next;
	xmq_domain_t *domain;
	uint16_t stream;
	char app[XMQ_APP_MAX + 1];
	char client_id[XMQ_DOMAIN_MAX + 1 + XMQ_APP_MAX + 1];
	uint32_t expiry;            /* granted session expiry, seconds */
	uint16_t peer_receive_max;  /* QoS 1 the DomU accepts unacknowledged */
	xmq_mqtt_t *mqtt;
	bool acked;                 /* OPEN_ACK sent */
	bool session_present;       /* what OPEN_ACK said */
	bool ending;
	bool paused;
	bool draining;              /* xenmqd stops: nothing more from Mosquitto */
	xmq_sub_t *subs;            /* for replay after Mosquitto restarts */
	xmq_inflight_t *inflight;   /* [limits.max_inflight] */
	unsigned n_inflight;
	unsigned cap_inflight;
	/* Packet ids of the last QoS 1 messages Mosquitto acknowledged, so
	 * that a copy the DomU sends again because our PUBACK was lost is
	 * answered again rather than published twice: as many as the DomU
	 * may have unacknowledged (max_inflight), and XMQ_ACKED_MIN at least. */
	uint16_t *acked_ids;        /* [n_acked_ids], a ring */
	unsigned n_acked_ids;
	unsigned acked_next;
	xmq_out_t *out;             /* QoS 1 for the DomU: sent first, in order */
	xmq_out_t **out_tail;
	unsigned out_unacked;
	unsigned out_len;
	uint64_t answered_ms;       /* the DomU's last PUBACK, or the OPEN_ACK */
	xmq_request_t *requests;    /* SUBSCRIBE/UNSUBSCRIBE awaiting Mosquitto */
	uint16_t next_packet_id;
};

/*
 * xmq_session_open - handle an OPEN frame on the domain's link: replaces a
 * session on the same stream or with the same app name, checks the will
 * against the ACL, and connects to Mosquitto; OPEN_ACK follows Mosquitto's
 * CONNACK. Refusals are answered with OPEN_ACK and logged.
 */
void xmq_session_open(xmq_domain_t *d, const xmq_frame_t *f);

/* A session frame (PUBLISH, PUBACK, SUBSCRIBE, UNSUBSCRIBE, CLOSE). */
void xmq_session_frame(xmq_session_t *s, const xmq_frame_t *f);

/*
 * xmq_session_end - leave the domain and close the Mosquitto connection
 * with reason (0 normal: no will; 4: with will). park: keep the messages
 * not yet acknowledged by the DomU for the application's return. The session
 * frees itself once libmosquitto let go.
 */
void xmq_session_end(xmq_session_t *s, int reason, bool park);

/* Once a second: send again, marked dup, the QoS 1 messages the DomU did not
 * acknowledge in time (xmq_resend_due()), in case the channel lost them. */
void xmq_session_tick(xmq_session_t *s);

/*
 * xmq_session_drain - xenmqd stops: stop reading from Mosquitto (what it
 * has not handed over stays in its session), and send the DomU what was
 * read already.
 */
void xmq_session_drain(xmq_session_t *s);

/* Whether the DomU acknowledged every QoS 1 message it was given. */
bool xmq_session_drained(const xmq_session_t *s);

/* The domain's channel drained, or limits changed: resume if possible. */
void xmq_session_flow(xmq_session_t *s);

unsigned xmq_session_subscriptions(const xmq_session_t *s);

/* A QoS 1 message held for the domain's rates may go to Mosquitto now
 * (msg borrowed). */
void xmq_session_publish_held(xmq_session_t *s, uint16_t packet_id, const xmq_message_t *msg);

#endif /* XMQ_BROKER_SESSION_H */
