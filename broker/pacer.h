/* SPDX-License-Identifier: MIT */
/*
 * pacer.h - a domain's message and byte rates.
 *
 * Two token buckets (one second of burst each) say whether a message may go
 * to Mosquitto now. A QoS 0 message over the rate is dropped: it was sent
 * "at most once". A QoS 1 message over the rate is not refused but held, in
 * order, and released as the buckets refill: the sender's in-flight window
 * (max_inflight per session) then slows it down to the rate, as a serial
 * line's flow control would, and nothing it sent is lost or reordered. Only
 * when what is held exceeds its bound (max_queued_bytes) is a QoS 1 message
 * refused with 0x96.
 */
#ifndef XMQ_BROKER_PACER_H
#define XMQ_BROKER_PACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "xenmq.h"

typedef struct xmq_held xmq_held_t;

typedef struct xmq_bucket {
	double tokens;
	uint64_t last_ms;
} xmq_bucket_t;

typedef struct xmq_pacer xmq_pacer_t;

/* A held message's turn came: msg is new (the callee frees it). */
typedef void (*xmq_pacer_release_cb)(xmq_pacer_t *p, void *session, uint16_t packet_id,
                                     xmq_message_t *msg);

struct xmq_pacer {
	uv_timer_t timer;
	uint32_t msg_rate;    /* per second, 0: no limit */
	uint32_t byte_rate;   /* payload bytes per second, 0: no limit */
	size_t max_held;      /* bytes */
	xmq_bucket_t msgs;
	xmq_bucket_t bytes;
	xmq_held_t *head;
	xmq_held_t **tail;
	size_t held_bytes;
	xmq_pacer_release_cb release;
	void *data;           /* the owner's */
	void (*close_cb)(xmq_pacer_t *p);
};

/* A pacer with full buckets; p is the caller's memory. Returns 0 or a libuv error. */
int xmq_pacer_init(uv_loop_t *loop, xmq_pacer_t *p, xmq_pacer_release_cb release,
                   void *data) XMQ_WUR;

/* New rates and bound; the buckets start full again. */
void xmq_pacer_set(xmq_pacer_t *p, uint32_t msg_rate, uint32_t byte_rate, size_t max_held);

/*
 * xmq_pacer_take - whether a message of len payload bytes may go now; if
 * so its tokens are taken. Never while messages are held: they go first.
 */
bool xmq_pacer_take(xmq_pacer_t *p, size_t len);

/*
 * xmq_pacer_hold - keep msg (stolen) for session until its turn. Returns 0,
 * or -ENOBUFS when the bound is reached (msg is freed).
 */
int xmq_pacer_hold(xmq_pacer_t *p, void *session, uint16_t packet_id, xmq_message_t *msg);

/* Drop what is held for session (it ended). */
void xmq_pacer_forget(xmq_pacer_t *p, const void *session);

/* Drop everything held; then close the timer, cb (may be NULL) once released. */
void xmq_pacer_close(xmq_pacer_t *p, void (*cb)(xmq_pacer_t *p));

#endif /* XMQ_BROKER_PACER_H */
