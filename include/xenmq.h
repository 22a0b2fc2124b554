/* SPDX-License-Identifier: MIT */
/*
 * xenmq.h - the xenmq client library (libxenmq).
 *
 * An application publishes and subscribes to MQTT topics through one of four
 * transports, chosen by a URL, with the same semantics on each:
 *
 *   agent:/run/xenmq/agent.sock   the DomU's xenmq-agent (the default)
 *   hvc:/dev/hvc1                 a Xen PV channel owned by this one program
 *   mqtt://HOST:PORT              a Mosquitto broker over TCP (e.g. on a Mac)
 *   mqtt+unix:/PATH               a Mosquitto broker on a Unix socket
 *
 * The URL comes from the program (xmq_client_opts_t.url), else from the
 * XENMQ_URL environment variable, else XMQ_DEFAULT_URL.
 *
 * The library runs on the caller's libuv loop, never blocks, never logs and
 * never exits. Every function returns 0 or a negative error: a negated errno
 * value or one of the XMQ_E* codes below; xmq_strerror() names both. MQTT v5
 * reason codes (mqtt_protocol.h's MQTT_RC_*) arrive in callbacks, and
 * xmq_reason_string() names them.
 *
 * A client reconnects by itself after its transport, the agent, xenmqd or
 * Mosquitto restarts, and restores its session: subscriptions, last will,
 * and every QoS 1 message not yet acknowledged. Only QoS 0 messages in flight
 * at that moment may be lost.
 *
 * Ownership in this header: "borrowed" pointers stay the caller's and are
 * not kept after the call returns; "new" objects are the caller's to free.
 */
#ifndef XENMQ_H
#define XENMQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define XMQ_EXPORT __attribute__((visibility("default")))
#define XMQ_WUR __attribute__((warn_unused_result))
#else
#define XMQ_EXPORT
#define XMQ_WUR
#endif

#define XENMQ_VERSION "0.1.0"

/* The transport used when neither the program nor XENMQ_URL names one. */
#define XMQ_DEFAULT_URL "agent:/run/xenmq/agent.sock"

/* Most user properties on one message, and most filters in one request. */
#define XMQ_USER_PROPS_MAX 32
#define XMQ_FILTERS_MAX 32

/* Longest application name: [A-Za-z0-9_.-]{1,64}. */
#define XMQ_APP_MAX 64

/*
 * Errors that errno has no name for. All are negative and far from errno's
 * range, so that "return -errno;" and these mix in one int.
 */
enum {
	XMQ_ETOPIC = -3001,    /* not a valid MQTT topic name */
	XMQ_EFILTER = -3002,   /* not a valid MQTT topic filter */
	XMQ_EURL = -3003,      /* URL not understood */
	XMQ_EREFUSED = -3004,  /* the broker refused (see the reason code) */
	XMQ_EMOSQ = -3005,     /* libmosquitto failed for a reason errno cannot say */
	XMQ_ECONFIG = -3006,   /* a configuration or ACL file is wrong */
	XMQ_ERATE = -3007,     /* over the message or byte rate allowed */
	XMQ_ESTALE = -3008     /* a frame from another epoch or direction */
};

/* Subscription options: OR one of these into the maximum QoS (0 or 1). */
#define XMQ_SUB_NO_LOCAL 0x04
#define XMQ_SUB_RETAIN_AS_PUBLISHED 0x08
#define XMQ_SUB_RETAIN_HANDLING(n) ((uint8_t)((n) << 4))

typedef struct xmq_user_prop {
	const char *name;
	const char *value;
} xmq_user_prop_t;

/*
 * MQTT v5 message properties. Zero-initialised means "none present".
 * Strings are NUL-terminated UTF-8.
 */
typedef struct xmq_props {
	bool has_payload_format;
	uint8_t payload_format;        /* 0 bytes, 1 UTF-8 text */
	bool has_message_expiry;
	uint32_t message_expiry;       /* seconds */
	const char *content_type;      /* NULL: absent */
	const char *response_topic;    /* NULL: absent */
	const void *correlation_data;  /* NULL: absent */
	size_t correlation_len;
	const xmq_user_prop_t *user;   /* user_count entries, in order */
	size_t user_count;
} xmq_props_t;

typedef struct xmq_message {
	const char *topic;
	const void *payload;
	size_t payload_len;
	uint8_t qos;   /* 0 or 1 */
	bool retain;
	bool dup;      /* received only: a QoS 1 message possibly seen before */
	xmq_props_t props;
} xmq_message_t;

typedef struct xmq_client xmq_client_t;

/*
 * Callbacks, all optional, all called on the loop. Messages and arrays are
 * borrowed for the duration of the call.
 */
typedef struct xmq_client_cb {
	/* The session is open (again). session_present: the broker kept it. A
	 * refusal arrives here too, with reason >= 0x80; the client retries. */
	void (*connect)(xmq_client_t *c, int reason, bool session_present);
	/* The session was lost (reason: an MQTT v5 reason code, or 0x88 when
	 * the transport went away). The client reconnects by itself. */
	void (*disconnect)(xmq_client_t *c, int reason);
	void (*message)(xmq_client_t *c, const xmq_message_t *msg);
	/* A QoS 1 publish was acknowledged (reason < 0x80) or refused. */
	void (*publish)(xmq_client_t *c, int mid, int reason);
	/* One reason per filter: the granted QoS, or >= 0x80 if refused. */
	void (*subscribe)(xmq_client_t *c, int mid, int count, const uint8_t *reasons);
	void (*unsubscribe)(xmq_client_t *c, int mid, int count, const uint8_t *reasons);
} xmq_client_cb_t;

/* Client options. Zero-initialised fields take the defaults given. */
typedef struct xmq_client_opts {
	const char *url;          /* NULL: $XENMQ_URL, then XMQ_DEFAULT_URL */
	const char *app;          /* NULL: "xenmq-<pid>" */
	uint32_t session_expiry;  /* seconds the broker keeps the session while
	                             away; 0: it ends with the connection */
	bool resume;              /* resume a kept session at the first connect
	                             (MQTT clean start = 0) */
	uint16_t keepalive;       /* seconds; 0: 10 */
	uint16_t receive_max;     /* QoS 1 messages unacknowledged; 0: 16 */
	size_t max_queued;        /* QoS 1 messages held while unacknowledged
	                             or disconnected; 0: 1000 */
	const xmq_message_t *will;  /* borrowed (copied); NULL: no last will */
} xmq_client_opts_t;

/*
 * xmq_client_new - make a client on a loop; nothing happens until
 * xmq_client_start().
 *
 * opts and cb are borrowed (copied). data is the caller's, returned by
 * xmq_client_data(). On success *out is new: end it with xmq_client_close().
 * Returns 0, XMQ_EURL, -EINVAL (bad app name, will or option), -ENOMEM.
 * *out is left unchanged on failure.
 */
XMQ_EXPORT int xmq_client_new(uv_loop_t *loop, const xmq_client_opts_t *opts,
                              const xmq_client_cb_t *cb, void *data,
                              xmq_client_t **out) XMQ_WUR;

/* xmq_client_start - connect, and keep connecting until closed. */
XMQ_EXPORT int xmq_client_start(xmq_client_t *c) XMQ_WUR;

/*
 * xmq_client_publish - send a message; msg is borrowed (copied).
 *
 * QoS 0 needs an open session (-ENOTCONN otherwise). QoS 1 is queued while
 * disconnected and retried until acknowledged; its callback names *mid.
 * Returns 0, XMQ_ETOPIC, -EINVAL (bad qos or property), -EMSGSIZE (larger
 * than the transport allows), -ENOTCONN, -ENOBUFS (max_queued reached).
 */
XMQ_EXPORT int xmq_client_publish(xmq_client_t *c, const xmq_message_t *msg,
                                  int *mid) XMQ_WUR;

/*
 * xmq_client_subscribe - subscribe to count filters with one options byte
 * (maximum QoS | XMQ_SUB_* flags). Filters are borrowed (copied) and kept
 * so that the subscription survives reconnections. Sent once connected.
 * Returns 0, XMQ_EFILTER, -EINVAL, -ENOMEM.
 */
XMQ_EXPORT int xmq_client_subscribe(xmq_client_t *c, int count,
                                    const char *const *filters, uint8_t options,
                                    int *mid) XMQ_WUR;

/* xmq_client_unsubscribe - the reverse; same rules. */
XMQ_EXPORT int xmq_client_unsubscribe(xmq_client_t *c, int count,
                                      const char *const *filters,
                                      int *mid) XMQ_WUR;

/* Messages queued: QoS 1 not yet acknowledged plus any not yet sent. */
XMQ_EXPORT size_t xmq_client_queued(const xmq_client_t *c);

/* Whether the session is open now. */
XMQ_EXPORT bool xmq_client_connected(const xmq_client_t *c);

XMQ_EXPORT void *xmq_client_data(const xmq_client_t *c);

/* The URL in use, after defaults: borrowed, valid until the client is freed. */
XMQ_EXPORT const char *xmq_client_url(const xmq_client_t *c);

/*
 * xmq_client_close - end the session normally (the last will is not sent),
 * stop, and free the client. cb (may be NULL) runs once everything is
 * released; c is invalid after it. Messages still queued are discarded: wait
 * for xmq_client_queued() to reach 0 first if they matter.
 */
XMQ_EXPORT void xmq_client_close(xmq_client_t *c, void (*cb)(void *data));

/* Text for a return value of this library. Never NULL. */
XMQ_EXPORT const char *xmq_strerror(int err);

/* Text for an MQTT v5 reason code. Never NULL. */
XMQ_EXPORT const char *xmq_reason_string(int reason);

XMQ_EXPORT const char *xmq_version(void);

#ifdef __cplusplus
}
#endif

#endif /* XENMQ_H */
