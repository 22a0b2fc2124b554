/* SPDX-License-Identifier: MIT */
/*
 * queue.h - the QoS 1 messages a client holds until they are acknowledged,
 * in the order they were published. Not installed.
 *
 * Entries handed to the transport ("sent") always come before those not
 * handed over yet, because the core sends from the first unsent entry on and
 * a lost session turns every sent entry back into an unsent one; so one
 * pointer marks where the unsent part begins.
 */
#ifndef XMQ_CLIENTS_LIB_QUEUE_H
#define XMQ_CLIENTS_LIB_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xenmq.h"

typedef struct xmq__qent {
	struct xmq__qent *next;
	struct xmq__qent *prev;
	xmq_message_t *msg;  /* an xmq_message_copy(), the entry's */
	uint16_t mid;        /* the application's id */
	int tid;             /* the transport's id, while sent */
	uint64_t sent_ms;    /* uv_now() when last handed to the transport */
	bool sent;           /* handed to the transport in this session */
	bool tried;          /* sent at least once: dup when sent again */
} xmq__qent_t;

typedef struct xmq__queue {
	xmq__qent_t *head;
	xmq__qent_t *tail;
	xmq__qent_t *unsent;  /* first entry not sent; NULL if none */
	size_t count;
	size_t inflight;      /* entries sent and not acknowledged */
} xmq__queue_t;

void xmq__queue_init(xmq__queue_t *q);

/* Frees every entry; idempotent. */
void xmq__queue_dispose(xmq__queue_t *q);

/* Append a copy of m (borrowed) as unsent. Returns 0 or -ENOMEM. */
int xmq__queue_push(xmq__queue_t *q, const xmq_message_t *m, uint16_t mid);

/* The first unsent entry (borrowed), or NULL. */
static inline xmq__qent_t *xmq__queue_next(const xmq__queue_t *q)
{
	return q->unsent;
}

/* The first unsent entry went to the transport with id tid at now_ms. */
void xmq__queue_mark_sent(xmq__queue_t *q, int tid, uint64_t now_ms);

/* The sent entry with transport id tid (borrowed), or NULL. */
xmq__qent_t *xmq__queue_find_sent(const xmq__queue_t *q, int tid);

/* Unlink and free e. */
void xmq__queue_remove(xmq__queue_t *q, xmq__qent_t *e);

/* The session was lost: every sent entry is unsent again. */
void xmq__queue_unsend_all(xmq__queue_t *q);

#endif /* XMQ_CLIENTS_LIB_QUEUE_H */
