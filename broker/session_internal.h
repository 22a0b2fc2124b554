/* SPDX-License-Identifier: MIT */
/*
 * session_internal.h - what the four parts of a session use of each other;
 * broker/session.h is what the rest of xenmqd uses.
 *
 * A session is split by what crosses it: session.c is its life (OPEN, the
 * Mosquitto connection, CLOSE and the end), session_in.c the messages from
 * the DomU, session_out.c the queue of messages for the DomU, and
 * session_subs.c its subscriptions. Each part keeps its own types private
 * and reaches the others only through the functions below.
 */
#ifndef XMQ_BROKER_SESSION_INTERNAL_H
#define XMQ_BROKER_SESSION_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "bridge/frame.h"
#include "bridge/mqtt.h"
#include "broker/session.h"

/* ---- session.c ------------------------------------------------------------- */

/* Whether the ACL lets s do access (XMQ_ACL_*) on topic (borrowed). */
bool xmq__session_allows(const xmq_session_t *s, const char *topic, int access);

/* Send w (its data stolen) to the DomU if err, its encoder's result, is 0. */
void xmq__session_send(xmq_session_t *s, int err, xmq_wire_t *w);

/* A protocol violation: tell the application why (CLOSE with reason) and
 * end its session, with its will. */
void xmq__session_fail(xmq_session_t *s, uint8_t reason);

/* ---- session_in.c: messages from the DomU ---------------------------------- */

/*
 * xmq__session_check_publish - whether a message may be published by this
 * session (will or PUBLISH; what names it in the log): 0, or the MQTT reason
 * code of the refusal, which is logged. msg is borrowed.
 */
uint8_t xmq__session_check_publish(xmq_session_t *s, const xmq_message_t *msg, const char *what);

/*
 * xmq__session_stamp - copy msg's user properties into user[] without any
 * xen-domain, then add the true one. user (borrowed) has room for
 * XMQ_USER_PROPS_MAX + 1 entries, and msg points into it afterwards.
 */
void xmq__session_stamp(const xmq_domain_t *d, xmq_message_t *msg, xmq_user_prop_t *user);

/* A PUBLISH frame from the DomU. */
void xmq__session_publish_frame(xmq_session_t *s, const xmq_frame_t *f);

/* Mosquitto's PUBACK for mid: the DomU gets its PUBACK (xmq_mqtt_cb_t). */
void xmq__session_on_publish(xmq_mqtt_t *m, int mid, int reason);

/* ---- session_out.c: messages for the DomU ---------------------------------- */

/*
 * xmq__session_out_append - queue copy (stolen on success) for the DomU,
 * dup if it was sent before. Returns 0, -ENOBUFS (the queue is full) or
 * -ENOMEM; on failure copy is still the caller's.
 */
int xmq__session_out_append(xmq_session_t *s, xmq_message_t *copy, bool dup);

/* Send queued QoS 1 messages while the DomU's window has room. */
void xmq__session_out_pump(xmq_session_t *s);

/* Pause Mosquitto's side while the DomU cannot take more. */
void xmq__session_out_pause(xmq_session_t *s);

/* s ends: hand what the DomU did not acknowledge to the domain, kept for
 * the application's return (if its session expiry allows). */
void xmq__session_out_park(xmq_session_t *s);

/* Free the queue (s is being freed). */
void xmq__session_out_free(xmq_session_t *s);

/* A PUBACK frame from the DomU. */
void xmq__session_puback_frame(xmq_session_t *s, const xmq_frame_t *f);

/* A message from Mosquitto for the DomU (xmq_mqtt_cb_t; msg borrowed). */
void xmq__session_on_message(xmq_mqtt_t *m, const xmq_message_t *msg);

/* ---- session_subs.c: subscriptions ----------------------------------------- */

/* A SUBSCRIBE (subscribe true) or UNSUBSCRIBE frame from the DomU. */
void xmq__session_subscribe_frame(xmq_session_t *s, const xmq_frame_t *f, bool subscribe);

/* Mosquitto lost the session: subscribe again to what the application holds. */
void xmq__session_resubscribe(xmq_session_t *s);

/* Mosquitto's SUBACK and UNSUBACK (xmq_mqtt_cb_t). */
void xmq__session_on_subscribe(xmq_mqtt_t *m, int mid, int count, const uint8_t *reasons);
void xmq__session_on_unsubscribe(xmq_mqtt_t *m, int mid, int count, const uint8_t *reasons);

/* Free the subscriptions and the requests awaiting Mosquitto (s is being freed). */
void xmq__session_subs_free(xmq_session_t *s);

#endif /* XMQ_BROKER_SESSION_INTERNAL_H */
