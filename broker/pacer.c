/* SPDX-License-Identifier: MIT */
/*
 * pacer.c - token buckets and the queue of QoS 1 messages waiting for them.
 */
#include <errno.h>
#include <stdlib.h>

#include "bridge/message.h"
#include "broker/pacer.h"

struct xmq_held {
	xmq_held_t *next;
	void *session;
	uint16_t packet_id;
	size_t size;
	xmq_message_t *msg;
};

static uint64_t now_ms(const xmq_pacer_t *p)
{
	return uv_now(p->timer.loop);
}

static void refill(xmq_bucket_t *b, uint32_t rate, uint64_t now)
{
	b->tokens += (double)(now - b->last_ms) * rate / 1000.0;
	if (b->tokens > rate)
		b->tokens = rate;
	b->last_ms = now;
}

/* A message larger than a second's worth of bytes costs a second's worth,
 * or it could never pass. */
static double byte_cost(const xmq_pacer_t *p, size_t len)
{
	return p->byte_rate != 0 && len > p->byte_rate ? p->byte_rate : (double)len;
}

/* Milliseconds until a message of len bytes may go. */
static uint64_t wait_ms(const xmq_pacer_t *p, size_t len)
{
	double ms = 0;

	if (p->msg_rate != 0 && p->msgs.tokens < 1.0)
		ms = (1.0 - p->msgs.tokens) * 1000.0 / p->msg_rate;
	if (p->byte_rate != 0 && p->bytes.tokens < byte_cost(p, len)) {
		double b = (byte_cost(p, len) - p->bytes.tokens) * 1000.0 / p->byte_rate;

		if (b > ms)
			ms = b;
	}
	/* Rounded up: a timer that fires early would only arm itself again. */
	return (uint64_t)ms + 1;
}

static bool take_tokens(xmq_pacer_t *p, size_t len)
{
	uint64_t now = now_ms(p);

	if (p->msg_rate != 0)
		refill(&p->msgs, p->msg_rate, now);
	if (p->byte_rate != 0)
		refill(&p->bytes, p->byte_rate, now);
	if ((p->msg_rate != 0 && p->msgs.tokens < 1.0) ||
	    (p->byte_rate != 0 && p->bytes.tokens < byte_cost(p, len)))
		return false;
	if (p->msg_rate != 0)
		p->msgs.tokens -= 1.0;
	if (p->byte_rate != 0)
		p->bytes.tokens -= byte_cost(p, len);
	return true;
}

static void on_timer(uv_timer_t *t)
{
	xmq_pacer_t *p = t->data;
	xmq_held_t *h;

	while ((h = p->head) != NULL && take_tokens(p, h->msg->payload_len)) {
		p->head = h->next;
		if (p->head == NULL)
			p->tail = &p->head;
		p->held_bytes -= h->size;
		p->release(p, h->session, h->packet_id, h->msg);
		free(h);
	}
	if (p->head != NULL)
		(void)uv_timer_start(&p->timer, on_timer, wait_ms(p, p->head->msg->payload_len), 0);
}

int xmq_pacer_init(uv_loop_t *loop, xmq_pacer_t *p, xmq_pacer_release_cb release, void *data)
{
	int err = uv_timer_init(loop, &p->timer);

	if (err != 0)
		return err;
	p->timer.data = p;
	p->head = NULL;
	p->tail = &p->head;
	p->held_bytes = 0;
	p->release = release;
	p->data = data;
	p->close_cb = NULL;
	xmq_pacer_set(p, 0, 0, 0);
	return 0;
}

void xmq_pacer_set(xmq_pacer_t *p, uint32_t msg_rate, uint32_t byte_rate, size_t max_held)
{
	p->msg_rate = msg_rate;
	p->byte_rate = byte_rate;
	p->max_held = max_held;
	p->msgs.tokens = msg_rate;
	p->bytes.tokens = byte_rate;
	p->msgs.last_ms = p->bytes.last_ms = now_ms(p);
	if (p->head != NULL)
		(void)uv_timer_start(&p->timer, on_timer, 0, 0);
}

bool xmq_pacer_take(xmq_pacer_t *p, size_t len)
{
	return p->head == NULL && take_tokens(p, len);
}

int xmq_pacer_hold(xmq_pacer_t *p, void *session, uint16_t packet_id, xmq_message_t *msg)
{
	size_t size = xmq_message_size(msg);
	xmq_held_t *h;

	if (p->held_bytes + size > p->max_held || (h = malloc(sizeof(*h))) == NULL) {
		free(msg);
		return -ENOBUFS;
	}
	h->next = NULL;
	h->session = session;
	h->packet_id = packet_id;
	h->size = size;
	h->msg = msg;
	*p->tail = h;
	p->tail = &h->next;
	p->held_bytes += size;
	if (!uv_is_active((uv_handle_t *)&p->timer))
		(void)uv_timer_start(&p->timer, on_timer, wait_ms(p, msg->payload_len), 0);
	return 0;
}

void xmq_pacer_forget(xmq_pacer_t *p, const void *session)
{
	xmq_held_t **link = &p->head;
	xmq_held_t *h;

	while ((h = *link) != NULL) {
		if (session != NULL && h->session != session) {
			link = &h->next;
			continue;
		}
		*link = h->next;
		p->held_bytes -= h->size;
		free(h->msg);
		free(h);
	}
	p->tail = link;
	if (p->head == NULL)
		(void)uv_timer_stop(&p->timer);
}

static void on_closed(uv_handle_t *h)
{
	xmq_pacer_t *p = h->data;

	if (p->close_cb != NULL)
		p->close_cb(p);
}

void xmq_pacer_close(xmq_pacer_t *p, void (*cb)(xmq_pacer_t *p))
{
	xmq_pacer_forget(p, NULL);
	p->close_cb = cb;
	uv_close((uv_handle_t *)&p->timer, on_closed);
}
