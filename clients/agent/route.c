/* SPDX-License-Identifier: MIT */
/*
 * route.c - the stream table of route.h: an array indexed by channel stream
 * id, sized by the max_streams of the channel's HELLO_ACK, and one linked
 * list per client.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clients/agent/route.h"

void xmq__routes_init(xmq_routes_t *t)
{
	memset(t, 0, sizeof(*t));
}

static void unlink_route(xmq_route_t *r)
{
	xmq_route_list_t *l = r->list;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	l->count--;
}

void xmq__routes_del(xmq_routes_t *t, xmq_route_t *r)
{
	if (r == NULL)
		return;
	unlink_route(r);
	t->by_chan[r->chan] = NULL;
	t->count--;
	free(r);
}

void xmq__routes_dispose(xmq_routes_t *t)
{
	unsigned i;

	if (t->by_chan != NULL) {
		for (i = 1; i <= t->max && t->count > 0; i++)
			xmq__routes_del(t, t->by_chan[i]);
	}
	free(t->by_chan);
	xmq__routes_init(t);
}

int xmq__routes_reset(xmq_routes_t *t, uint16_t max)
{
	xmq__routes_dispose(t);
	if (max == 0)
		return 0;
	t->by_chan = calloc((size_t)max + 1, sizeof(*t->by_chan));
	if (t->by_chan == NULL)
		return -ENOMEM;
	t->max = max;
	return 0;
}

int xmq__routes_add(xmq_routes_t *t, xmq_route_list_t *list, void *owner,
                    uint16_t local, xmq_route_t **out)
{
	xmq_route_t *r;
	unsigned id = t->last;
	unsigned i;

	if (t->by_chan == NULL)
		return -ENOTCONN;
	if (t->count >= t->max)
		return -ENOSPC;
	/* The table has a free slot: the scan below finds it. */
	for (i = 0; i < t->max; i++) {
		id = id >= t->max ? 1 : id + 1;
		if (t->by_chan[id] == NULL)
			break;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->owner = owner;
	r->list = list;
	r->local = local;
	r->chan = (uint16_t)id;
	r->next = list->head;
	if (list->head != NULL)
		list->head->prev = r;
	list->head = r;
	list->count++;
	t->by_chan[id] = r;
	t->last = (uint16_t)id;
	t->count++;
	*out = r;
	return 0;
}

xmq_route_t *xmq__routes_find(const xmq_routes_t *t, uint16_t chan)
{
	if (t->by_chan == NULL || chan == 0 || chan > t->max)
		return NULL;
	return t->by_chan[chan];
}

xmq_route_t *xmq__route_list_find(const xmq_route_list_t *l, uint16_t local)
{
	xmq_route_t *r;

	for (r = l->head; r != NULL; r = r->next) {
		if (r->local == local)
			return r;
	}
	return NULL;
}
