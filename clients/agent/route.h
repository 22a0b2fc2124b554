/* SPDX-License-Identifier: MIT */
/*
 * route.h - the agent's stream table: which channel stream carries which
 * stream of which local client.
 *
 * Each application session a local client opens, on stream ids of its own
 * choosing, gets a stream id on the channel that no other open session uses
 * and that is within the max_streams xenmqd announced. Ids are handed out in
 * turn (the one after the last one given) rather than lowest first, so that
 * an id that was just closed is reused as late as possible: a frame xenmqd
 * sent on it before it learnt of the CLOSE then finds no route, instead of
 * reaching the next application that opened a stream.
 *
 * Pure bookkeeping, no I/O. Routes belong to the table; each client holds a
 * list of its own (xmq_route_list_t) to find them by its stream ids, so that
 * a client can only ever reach its own sessions.
 */
#ifndef XMQ_AGENT_ROUTE_H
#define XMQ_AGENT_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "xenmq.h"

typedef struct xmq_route xmq_route_t;

/* One client's routes, found by its own stream ids. */
typedef struct xmq_route_list {
	xmq_route_t *head;
	unsigned count;
} xmq_route_list_t;

struct xmq_route {
	void *owner;                /* the client (borrowed) */
	xmq_route_list_t *list;     /* the owner's list, which holds it */
	xmq_route_t *prev;
	xmq_route_t *next;
	uint16_t local;             /* the client's stream id */
	uint16_t chan;              /* the channel's */
	bool acked;                 /* xenmqd answered the OPEN */
	char app[XMQ_APP_MAX + 1];  /* from the OPEN, for logs; may be empty */
};

typedef struct xmq_routes {
	xmq_route_t **by_chan;  /* max + 1 entries; NULL while the channel is down */
	uint16_t max;           /* channel ids are 1 .. max */
	uint16_t last;          /* the id handed out last */
	unsigned count;
} xmq_routes_t;

void xmq__routes_init(xmq_routes_t *t);

/* Frees every route (emptying the lists that held them) and the table.
 * Idempotent; the table may be used again after xmq__routes_reset(). */
void xmq__routes_dispose(xmq_routes_t *t);

/*
 * xmq__routes_reset - forget every route and size the table for channel ids
 * 1..max (0: no table, every add fails with -ENOTCONN). Returns 0 or -ENOMEM,
 * the table being then empty and sized 0.
 */
int xmq__routes_reset(xmq_routes_t *t, uint16_t max) XMQ_WUR;

/*
 * xmq__routes_add - a route for stream local of owner (borrowed), added to
 * list (borrowed, must outlive the route) under a free channel id. On
 * success *out is the new route, owned by the table. Returns 0, -ENOSPC
 * (every channel id is taken), -ENOTCONN (no table) or -ENOMEM; nothing
 * changes on failure.
 */
int xmq__routes_add(xmq_routes_t *t, xmq_route_list_t *list, void *owner,
                    uint16_t local, xmq_route_t **out) XMQ_WUR;

/* The route of channel stream chan, or NULL. */
xmq_route_t *xmq__routes_find(const xmq_routes_t *t, uint16_t chan);

/* Frees r (NULL is ignored) after taking it out of the table and its list. */
void xmq__routes_del(xmq_routes_t *t, xmq_route_t *r);

/* The route of a client's stream local, or NULL. */
xmq_route_t *xmq__route_list_find(const xmq_route_list_t *l, uint16_t local);

#endif /* XMQ_AGENT_ROUTE_H */
