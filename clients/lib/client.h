/* SPDX-License-Identifier: MIT */
/*
 * client.h - what libxenmq's session core (client.c) and its transports say
 * to each other. Not installed.
 *
 * The core owns everything that must survive a reconnection and must mean
 * the same on every transport: the application name, the last will, the
 * subscriptions, the QoS 1 queue and the requests waiting for an answer.
 * A transport only carries frames: it opens a session when it can, tells the
 * core what happened (xmq__client_* below), and sends what the core hands it.
 * Each transport is a table of functions (xmq__transport_ops_t) chosen by
 * the URL's scheme (url.c).
 */
#ifndef XMQ_CLIENTS_LIB_CLIENT_H
#define XMQ_CLIENTS_LIB_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "xenmq.h"

/*
 * A channel can lose a frame within a session (noise on the line fails its
 * CRC), so a transport that runs the channel protocol sends again what got
 * no answer in time (docs/protocol.md, section 6): an OPEN after
 * XMQ_RESEND_MS, a QoS 1 PUBLISH (dup set), a SUBSCRIBE or an UNSUBSCRIBE
 * when xmq_resend_due() says so (bridge/link.h). It looks for what is due
 * every XMQ__RESEND_TICK_MS while anything waits for an answer, so a frame
 * goes again up to XMQ__RESEND_TICK_MS after it became due.
 */
#define XMQ__RESEND_TICK_MS 1000

/* What a transport needs to know to open a session: borrowed from the
 * client, valid until xmq__client_closed(). */
typedef struct xmq__params {
	const char *app;
	uint32_t session_expiry;
	bool resume;               /* clean start = 0 even at the first open */
	uint16_t keepalive;        /* seconds, never 0 */
	uint16_t receive_max;      /* never 0 */
	const xmq_message_t *will; /* NULL: none */
} xmq__params_t;

typedef enum xmq__addr_kind {
	XMQ__ADDR_UNIX,  /* a Unix socket path */
	XMQ__ADDR_TTY,   /* a tty path (a PV channel's hvc) */
	XMQ__ADDR_TCP    /* host and port */
} xmq__addr_kind_t;

/* A parsed URL. */
typedef struct xmq__url {
	const struct xmq__transport_ops *ops;
	xmq__addr_kind_t kind;
	char *path;       /* UNIX, TTY: malloc'd absolute path */
	char *host;       /* TCP: malloc'd, without IPv6 brackets */
	uint16_t port;    /* TCP */
} xmq__url_t;

typedef struct xmq__transport_ops {
	/*
	 * Make a stopped transport for url (borrowed) with params p (borrowed,
	 * valid until the transport is closed). *out is new: end it with
	 * ->close(). Returns 0 or a negative error; nothing to close then.
	 */
	int (*create)(uv_loop_t *loop, xmq_client_t *c, const xmq__url_t *url,
	              const xmq__params_t *p, void **out);
	/* Connect, and keep connecting until closed. */
	int (*start)(void *t);
	/* 0, or -EMSGSIZE if m is larger than the transport can carry. */
	int (*check_size)(void *t, const xmq_message_t *m);
	/*
	 * Send m now (m->dup as given). mid: 0 for QoS 0. *tid: the id that
	 * the acknowledgement will carry (xmq__client_acked). Returns 0,
	 * -ENOTCONN (no session now), -EMSGSIZE, or another error, which means
	 * the message can never be sent as it is.
	 */
	int (*publish)(void *t, const xmq_message_t *m, uint16_t mid, int *tid);
	int (*subscribe)(void *t, uint16_t mid, int count, const char *const *filters,
	                 uint8_t options, int *tid);
	int (*unsubscribe)(void *t, uint16_t mid, int count, const char *const *filters,
	                   int *tid);
	/* QoS 1 messages the peer accepts unacknowledged now; 0: no limit that
	 * the core must keep (the transport keeps it). */
	unsigned (*window)(void *t);
	/*
	 * End the session normally, release everything, then call
	 * xmq__client_closed(), always from a later turn of the loop. No other
	 * xmq__client_* call follows ->close().
	 */
	void (*close)(void *t);
	/* Messages handed to ->publish() survive a reconnection in the
	 * transport, which re-sends them itself (libmosquitto does). */
	bool keeps_inflight;
} xmq__transport_ops_t;

extern const xmq__transport_ops_t xmq__transport_link;
extern const xmq__transport_ops_t xmq__transport_mqtt;

/* ---- url.c ------------------------------------------------------------------ */

/*
 * xmq__url_parse - understand url (borrowed). On success *out holds new
 * strings: release them with xmq__url_dispose(). Returns 0, XMQ_EURL or
 * -ENOMEM; *out is left unchanged on failure.
 */
int xmq__url_parse(const char *url, xmq__url_t *out);

/* Idempotent; safe on a zeroed url. */
void xmq__url_dispose(xmq__url_t *url);

/* ---- from a transport to the core (client.c) --------------------------- */

/* The session is open; the core re-sends what it must, then tells the app. */
void xmq__client_opened(xmq_client_t *c, bool session_present);

/* The peer refused to open the session (reason >= 0x80); the transport
 * tries again by itself. */
void xmq__client_refused(xmq_client_t *c, int reason);

/* The session ended (an MQTT reason code; 0x88 for a lost transport). May be
 * called while no session is open: then it only resets what was in flight. */
void xmq__client_lost(xmq_client_t *c, int reason);

/* A message for the application; the transport acknowledges a QoS 1
 * message once this returns, unless the client is closing by then. */
void xmq__client_message(xmq_client_t *c, const xmq_message_t *m);

/* A QoS 1 publish with transport id tid was acknowledged or refused. */
void xmq__client_acked(xmq_client_t *c, int tid, int reason);

/* A SUBSCRIBE (sub true) or UNSUBSCRIBE with transport id tid was answered,
 * one reason per filter. A transport that is not told the reasons (as
 * libmosquitto 2.0 is not, for UNSUBACK) passes 0 and NULL: all accepted. */
void xmq__client_answered(xmq_client_t *c, bool sub, int tid, int count,
                          const uint8_t *reasons);

/*
 * xmq__client_resend - for a transport that can lose frames: hand it again
 * every request and QoS 1 message (with dup set) that is not answered yet
 * and that xmq_resend_due() finds due, requests first, each kind
 * in the order it was first sent. Requests not sent yet (memory ran short)
 * are tried too. Returns xmq__client_waiting() afterwards.
 */
bool xmq__client_resend(xmq_client_t *c);

/* Whether anything handed to the transport in this session still waits for
 * an answer (a QoS 1 message or a request): the transport keeps looking for
 * what to send again only while it does. */
bool xmq__client_waiting(const xmq_client_t *c);

/* The transport released everything after ->close(); frees the client. */
void xmq__client_closed(xmq_client_t *c);

/* Whether the client is being closed (a transport stops acting then). */
bool xmq__client_closing(const xmq_client_t *c);

#endif /* XMQ_CLIENTS_LIB_CLIENT_H */
