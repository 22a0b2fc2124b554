/* SPDX-License-Identifier: MIT */
/*
 * mqtt_internal.h - what the two parts of an xmq_mqtt_t use of each other;
 * bridge/mqtt.h is what everything else uses.
 *
 * The module is split in two: mqtt.c is the connection's life (polling,
 * connecting, reading and writing, making one, closing), and
 * mqtt_traffic.c what the connection carries (the will, requests and their
 * answers, the messages in, held back during a pause). Both see the struct
 * below; each keeps everything else static and reaches the other only
 * through the functions at the end.
 */
#ifndef XMQ_BRIDGE_MQTT_INTERNAL_H
#define XMQ_BRIDGE_MQTT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <mosquitto.h>
#include <uv.h>

#include "bridge/mqtt.h"

enum state {
	S_IDLE,        /* made, not started */
	S_WAIT,        /* no socket; the timer (or a resume) tries again */
	S_CONNECTING,  /* CONNECT sent, no CONNACK yet */
	S_DISCARD,     /* ending an old session to give a clean start */
	S_OPEN,        /* CONNACK with success */
	S_CLOSING,     /* xmq_mqtt_close(): DISCONNECT on its way, lingering */
	S_CLOSED       /* handles closing; then closed() and free */
};

/* A message read by libmosquitto while we were paused (mqtt_traffic.c). */
struct held;

struct xmq_mqtt {
	uv_loop_t *loop;
	struct mosquitto *mosq;
	xmq_mqtt_cb_t cb;
	void *data;
	char *host;                        /* or a Unix socket path */
	int port;                          /* 0: host is a Unix socket path */
	uint16_t keepalive;
	uint32_t session_expiry;
	uint32_t cur_expiry;               /* the one sent on this connection */
	mosquitto_property *connect_props;
	enum state state;
	bool started;
	bool paused;
	bool fresh_owed;     /* a clean start was asked and not yet obtained */
	bool probed;         /* a probe found no session: report none */
	bool will_on;        /* libmosquitto holds the will */
	xmq_message_t *will; /* xmq_message_copy(), or NULL */
	unsigned backoff_ms;
	uv_poll_t poll;
	bool poll_live;      /* poll is initialised and not being closed */
	bool poll_closing;   /* uv_close(poll) is pending */
	bool connect_due;    /* connect once poll_closing is over */
	int poll_events;
	int linger_fd;       /* closing: our duplicate of the socket, or -1 */
	bool lingering;      /* poll watches linger_fd */
	uv_timer_t timer;
	uv_timer_t kick;
	unsigned depth;      /* inside a libmosquitto call that runs callbacks */
	unsigned pending;    /* handles still closing after close_continue() */
	uint8_t *qos1_mids;  /* bitmap: QoS 1 ids awaiting PUBACK */
	struct held *held_head;
	struct held **held_tail;
	xmq_mqtt_stats_t stats;
};

/* ---- mqtt.c: the connection ------------------------------------------------ */

/* Poll for what libmosquitto needs now (after queueing a packet, or a
 * change of pause); does nothing while no socket is watched. */
void xmq__mqtt_update_poll(xmq_mqtt_t *m);

/* m->timer's callback (uv_timer_cb): the next connection attempt, the
 * periodic mosquitto_loop_misc(), or the end of the linger when closing. */
void xmq__mqtt_on_tick(uv_timer_t *t);

/* ---- mqtt_traffic.c: what it carries --------------------------------------- */

/* Hand the will (m->will, not NULL) to libmosquitto, which copies it, and
 * set m->will_on. Returns 0, or xmq__mqtt_props_to_mosq()'s error or
 * libmosquitto's (xmq__err_from_mosq()); m->will_on is unchanged on failure. */
int xmq__mqtt_set_will(xmq_mqtt_t *m);

/*
 * xmq__mqtt_keep_will - check the will w (borrowed), keep a copy of it in
 * m->will and hand it to libmosquitto. Returns 0, XMQ_ETOPIC, -EINVAL,
 * -EMSGSIZE, -ENOMEM or xmq__mqtt_set_will()'s error; m->will may be set on
 * failure (m is then disposed).
 */
int xmq__mqtt_keep_will(xmq_mqtt_t *m, const xmq_message_t *w);

/* libmosquitto's message, publish, subscribe and unsubscribe callbacks
 * (obj is m), which xmq_mqtt_new() sets. */
void xmq__mqtt_on_message(struct mosquitto *mosq, void *obj,
                          const struct mosquitto_message *mm, const mosquitto_property *props);
void xmq__mqtt_on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                          const mosquitto_property *props);
void xmq__mqtt_on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count,
                            const int *granted, const mosquitto_property *props);
void xmq__mqtt_on_unsubscribe(struct mosquitto *mosq, void *obj, int mid,
                              const mosquitto_property *props);

/* Free the messages held back, undelivered (m is being disposed). */
void xmq__mqtt_held_free(xmq_mqtt_t *m);

#endif /* XMQ_BRIDGE_MQTT_INTERNAL_H */
