/* SPDX-License-Identifier: MIT */
/*
 * mqtt.h - one MQTT v5 session with Mosquitto, run by libmosquitto on a libuv
 * loop. xenmqd holds one per DomU application plus its own, libxenmq one for
 * its mqtt:// and mqtt+unix: transports.
 *
 * libmosquitto does the protocol; this module does what its "network loop
 * for use in other event loops" leaves to the caller: polling the socket,
 * calling mosquitto_loop_misc() about once a second, reconnecting with a
 * backoff, holding messages back while the owner cannot take them, and
 * turning properties and errors into xenmq's own types.
 *
 * What survives a reconnection, and who restores it:
 * - QoS 1 messages published and not yet acknowledged: libmosquitto keeps
 *   them (also those published while disconnected) and sends them again after
 *   the next CONNACK; each gets its publish callback once acknowledged.
 * - Subscriptions: the broker keeps them only in a session it kept. When the
 *   connect callback says session_present == false, the owner subscribes
 *   again; this module does not remember filters.
 * - The last will: set once, sent with every CONNECT.
 * - QoS 0 messages and requests (SUBSCRIBE, UNSUBSCRIBE) in flight are lost.
 *
 * The program calls nothing else of libmosquitto's for this: the first
 * xmq_mqtt_new() runs mosquitto_lib_init() once (uv_once).
 *
 * Errors are 0 or negative (-errno, XMQ_E*). Nothing here logs.
 */
#ifndef XMQ_BRIDGE_MQTT_H
#define XMQ_BRIDGE_MQTT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "xenmq.h"

typedef struct xmq_mqtt xmq_mqtt_t;

/*
 * Callbacks, all optional, all called on the loop. What they are handed is
 * borrowed for the duration of the call. Each may call any function of this
 * module, xmq_mqtt_close() included.
 */
typedef struct xmq_mqtt_cb {
	/* A CONNACK. reason 0: the session is open; session_present: the broker
	 * kept the previous one (subscriptions included). reason >= 0x80: the
	 * broker refused; the connection is retried after the backoff. */
	void (*connect)(xmq_mqtt_t *m, int reason, bool session_present);
	/* An open session was lost; the connection is retried by itself.
	 * err says why: -ECONNRESET (the broker or the socket went away),
	 * -ETIMEDOUT (no answer within the keepalive), XMQ_EREFUSED (the broker
	 * sent DISCONNECT), or another error. reason is the MQTT v5 reason code
	 * that tells it: the broker's own when it sent DISCONNECT, else
	 * xmq__reason_from_err(err). */
	void (*disconnect)(xmq_mqtt_t *m, int err, int reason);
	/* A message. msg->dup is always false: libmosquitto 2.0 does not tell. */
	void (*message)(xmq_mqtt_t *m, const xmq_message_t *msg);
	/* A QoS 1 publish was answered by PUBACK (MQTT v5 reason code). Never
	 * called for QoS 0. */
	void (*publish)(xmq_mqtt_t *m, int mid, int reason);
	/* SUBACK: one reason per filter (granted QoS, or >= 0x80 refused). */
	void (*subscribe)(xmq_mqtt_t *m, int mid, int count, const uint8_t *reasons);
	/* UNSUBACK. libmosquitto 2.0 does not pass its reason codes on: count is
	 * 0 and reasons NULL, meaning each filter was accepted. */
	void (*unsubscribe)(xmq_mqtt_t *m, int mid, int count, const uint8_t *reasons);
	/* After xmq_mqtt_close(): every handle, socket and buffer is released;
	 * xmq_mqtt_data() still works. m is freed when this returns. */
	void (*closed)(xmq_mqtt_t *m);
	/* libmosquitto's log lines (MOSQ_LOG_* level), for the owner to log or
	 * not. NULL: none are produced. */
	void (*log)(xmq_mqtt_t *m, int level, const char *line);
} xmq_mqtt_cb_t;

typedef struct xmq_mqtt_opts {
	/* "/abs/path": a Unix socket; "host:port", "[v6addr]:port"; "host":
	 * port 1883. Over TCP the name lookup and the TCP handshake block the
	 * loop (libmosquitto has no asynchronous connect that takes MQTT v5
	 * properties): meant for a broker on the same machine. */
	const char *address;
	const char *client_id;    /* required: sessions are found by it */
	/* Start with a new session the first time. Later connections always
	 * resume the session (MQTT clean start = 0). */
	bool clean_start;
	uint32_t session_expiry;  /* seconds the broker keeps the session */
	uint16_t keepalive;       /* seconds, >= 5; 0: 30 */
	uint16_t receive_max;     /* QoS 1 messages unacknowledged to us; 0: 20 */
	const xmq_message_t *will;  /* borrowed (copied); NULL: none */
} xmq_mqtt_opts_t;

/*
 * xmq_mqtt_new - a session on loop; nothing happens until xmq_mqtt_start().
 * o and cb are borrowed (copied); data is the caller's (xmq_mqtt_data()).
 * On success *out is new: end it with xmq_mqtt_close().
 * Returns 0, -EINVAL (address, client id, keepalive or will not valid),
 * XMQ_ETOPIC (will topic), -ENAMETOOLONG (socket path), -ENOMEM. *out is
 * left unchanged on failure.
 */
int xmq_mqtt_new(uv_loop_t *loop, const xmq_mqtt_opts_t *o, const xmq_mqtt_cb_t *cb,
                 void *data, xmq_mqtt_t **out) XMQ_WUR;

void *xmq_mqtt_data(const xmq_mqtt_t *m);

/*
 * xmq_mqtt_start - connect now; after a failure or a loss, again after 0.1 s,
 * doubling to 5 s, until closed. Returns 0, or -EALREADY once started.
 */
int xmq_mqtt_start(xmq_mqtt_t *m);

/* Whether the session is open: CONNACK with success, not yet lost. */
bool xmq_mqtt_connected(const xmq_mqtt_t *m);

/*
 * xmq_mqtt_publish - send msg (borrowed; libmosquitto copies it); *mid (may
 * be NULL) names it in the publish callback. QoS 0 needs an open session.
 * QoS 1 is accepted at any time: libmosquitto queues it while disconnected
 * and sends it after the next CONNACK (measured on 2.0.11).
 * Returns 0, XMQ_ETOPIC, -EINVAL (qos, retain/dup, properties), -EILSEQ
 * (a property string is not UTF-8), -EMSGSIZE, -ENOTCONN (QoS 0 while
 * disconnected), -ESHUTDOWN (closing), -ENOMEM.
 */
int xmq_mqtt_publish(xmq_mqtt_t *m, const xmq_message_t *msg, int *mid) XMQ_WUR;

/*
 * xmq_mqtt_subscribe - count (1..XMQ_FILTERS_MAX) filters (borrowed) with one
 * options byte: maximum QoS (0, 1) | XMQ_SUB_* flags. The subscribe callback
 * names *mid (may be NULL). Returns 0, XMQ_EFILTER, -EINVAL, -ENOTCONN,
 * -ESHUTDOWN, -ENOMEM. Not kept for later connections (see above).
 */
int xmq_mqtt_subscribe(xmq_mqtt_t *m, int count, const char *const *filters,
                       uint8_t options, int *mid) XMQ_WUR;

/* xmq_mqtt_unsubscribe - the reverse; same rules. */
int xmq_mqtt_unsubscribe(xmq_mqtt_t *m, int count, const char *const *filters,
                         int *mid) XMQ_WUR;

/*
 * xmq_mqtt_pause - backpressure. While paused the socket is not read, so
 * Mosquitto holds the messages for us (up to its own queue limits), and no
 * message callback runs: messages libmosquitto had already read are kept
 * and delivered, in order, soon after resuming. Writes go on. As no reply
 * can be read, a pause longer than about twice the keepalive ends the
 * connection; it is made again only once resumed. Remembered across
 * connections.
 */
void xmq_mqtt_pause(xmq_mqtt_t *m, bool paused);

/*
 * xmq_mqtt_flush - run the message callback now for every message read
 * while paused, even if still paused. libmosquitto acknowledged those to the
 * broker already: an owner about to close a paused session calls this
 * first, or they are lost with it.
 */
void xmq_mqtt_flush(xmq_mqtt_t *m);

/*
 * xmq_mqtt_close - end the session: send DISCONNECT with reason (0: normal,
 * the will is not published; 4, MQTT_RC_DISCONNECT_WITH_WILL_MSG: it is) and
 * the session expiry interval expiry (ignored if the connection was opened
 * with 0: MQTT forbids raising it at DISCONNECT), keep the socket open until
 * Mosquitto closes its end (at most a second: closing first could make it
 * miss the DISCONNECT and publish the will), close every handle, then call
 * cb->closed and free m. No other callback runs after this call.
 * Idempotent.
 */
void xmq_mqtt_close(xmq_mqtt_t *m, int reason, uint32_t expiry);

/* Counters for status topics. */
typedef struct xmq_mqtt_stats {
	uint64_t connects;     /* CONNACKs with success */
	uint64_t disconnects;  /* open sessions lost */
	uint64_t msgs_in;      /* messages received */
	uint64_t msgs_out;     /* messages accepted by xmq_mqtt_publish() */
	uint64_t props_dropped;  /* user properties beyond XMQ_USER_PROPS_MAX */
} xmq_mqtt_stats_t;

void xmq_mqtt_stats(const xmq_mqtt_t *m, xmq_mqtt_stats_t *out);

#endif /* XMQ_BRIDGE_MQTT_H */
