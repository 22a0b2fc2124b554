/* SPDX-License-Identifier: MIT */
/*
 * subs.h - a client's subscriptions and its SUBSCRIBE/UNSUBSCRIBE requests
 * waiting for an answer. Not installed.
 *
 * The list of subscriptions is what the client believes it is subscribed
 * to: it is re-sent after a reconnection that lost the session, so it is
 * updated when a request is made (a subscription is kept from then on, an
 * unsubscription forgets at once) and corrected when the answer comes (a
 * refused filter is forgotten). Each entry remembers the newest request
 * that touched it, so that an older answer cannot undo a newer request.
 */
#ifndef XMQ_CLIENTS_LIB_SUBS_H
#define XMQ_CLIENTS_LIB_SUBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xenmq.h"

typedef struct xmq__sub {
	char *filter;      /* malloc'd */
	uint8_t options;
	uint16_t req_mid;  /* the pending request that set it; 0: none */
} xmq__sub_t;

typedef struct xmq__req {
	struct xmq__req *next;
	uint16_t mid;      /* the application's id (or the core's, if internal) */
	int tid;           /* the transport's id, while sent */
	uint64_t sent_ms;  /* uv_now() when last handed to the transport */
	bool sub;          /* SUBSCRIBE, else UNSUBSCRIBE */
	bool internal;     /* a re-subscription the application did not ask for */
	bool sent;         /* handed to the transport in this session */
	uint8_t options;
	int count;
	const char *filter[XMQ_FILTERS_MAX];  /* inside the request's block */
} xmq__req_t;

typedef struct xmq__subs {
	xmq__sub_t *v;
	size_t n;
	size_t cap;
	xmq__req_t *head;  /* requests, oldest first */
	xmq__req_t *tail;
} xmq__subs_t;

void xmq__subs_init(xmq__subs_t *s);

/* Frees the list and every request; idempotent. */
void xmq__subs_dispose(xmq__subs_t *s);

/*
 * xmq__subs_request - record a request for count (1..XMQ_FILTERS_MAX)
 * filters (borrowed, copied) and apply it to the list. *out (borrowed) is
 * the new request, unsent, last in line. Returns 0 or -ENOMEM, with nothing
 * changed on failure.
 */
int xmq__subs_request(xmq__subs_t *s, bool sub, uint16_t mid, int count,
                      const char *const *filters, uint8_t options, bool internal,
                      xmq__req_t **out);

/* The sent request of that kind with transport id tid (borrowed), or NULL. */
xmq__req_t *xmq__subs_find_sent(const xmq__subs_t *s, bool sub, int tid);

/* The answer to r arrived: correct the list, then unlink and free r. */
void xmq__subs_answered(xmq__subs_t *s, xmq__req_t *r, int count, const uint8_t *reasons);

/* The session was lost: every request must be sent again. */
void xmq__subs_unsend_all(xmq__subs_t *s);

/*
 * xmq__subs_unrequested - up to XMQ_FILTERS_MAX filters of the list that no
 * pending request covers, all with the same options: they are what a new
 * session lacks. Fills filters (borrowed pointers into the list) and
 * *options; returns how many (0: none left).
 */
int xmq__subs_unrequested(const xmq__subs_t *s, const char **filters, uint8_t *options);

#endif /* XMQ_CLIENTS_LIB_SUBS_H */
