/* SPDX-License-Identifier: MIT */
/*
 * queue.c - the QoS 1 queue of a client: a doubly linked list, so that an
 * acknowledgement can take out any entry, with the sent entries first.
 * Acknowledgements nearly always come in order, so a search from the head
 * finds the entry at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/message.h"
#include "clients/lib/queue.h"

void xmq__queue_init(xmq__queue_t *q)
{
	memset(q, 0, sizeof(*q));
}

void xmq__queue_dispose(xmq__queue_t *q)
{
	while (q->head != NULL)
		xmq__queue_remove(q, q->head);
}

int xmq__queue_push(xmq__queue_t *q, const xmq_message_t *m, uint16_t mid)
{
	xmq__qent_t *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return -ENOMEM;
	e->msg = xmq_message_copy(m);
	if (e->msg == NULL) {
		free(e);
		return -ENOMEM;
	}
	e->msg->dup = false;
	e->mid = mid;
	e->prev = q->tail;
	if (q->tail != NULL)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	if (q->unsent == NULL)
		q->unsent = e;
	q->count++;
	return 0;
}

void xmq__queue_mark_sent(xmq__queue_t *q, int tid, uint64_t now_ms)
{
	xmq__qent_t *e = q->unsent;

	if (e == NULL)
		return;
	e->tid = tid;
	e->sent_ms = now_ms;
	e->sent = true;
	e->tried = true;
	q->inflight++;
	q->unsent = e->next;
}

xmq__qent_t *xmq__queue_find_sent(const xmq__queue_t *q, int tid)
{
	xmq__qent_t *e;

	for (e = q->head; e != NULL && e != q->unsent; e = e->next) {
		if (e->tid == tid)
			return e;
	}
	return NULL;
}

void xmq__queue_remove(xmq__queue_t *q, xmq__qent_t *e)
{
	if (q->unsent == e)
		q->unsent = e->next;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		q->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		q->tail = e->prev;
	if (e->sent)
		q->inflight--;
	q->count--;
	free(e->msg);
	free(e);
}

void xmq__queue_unsend_all(xmq__queue_t *q)
{
	xmq__qent_t *e;

	for (e = q->head; e != NULL && e != q->unsent; e = e->next)
		e->sent = false;
	q->unsent = q->head;
	q->inflight = 0;
}
