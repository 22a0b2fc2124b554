/* SPDX-License-Identifier: MIT */
/*
 * session_out.c - messages for the DomU: what Mosquitto delivers to a
 * session, checked against the ACL and sent on the domain's channel. QoS 0
 * goes at once, or is dropped while the channel is full. QoS 1 waits in the
 * session's queue, in order, under a packet id of its own, until the DomU
 * acknowledged it: it is sent while the DomU's receive window has room, sent
 * again (dup) when not acknowledged in time, and parked with the domain when
 * the session ends, for the application's return.
 *
 * While the DomU cannot take more, Mosquitto's side of the session is
 * paused (xmq_mqtt_pause()), so that what waits waits in Mosquitto.
 */
#include <errno.h>
#include <stdlib.h>

#include <mqtt_protocol.h>

#include "bridge/error.h"
#include "bridge/message.h"
#include "broker/session.h"
#include "broker/session_internal.h"

struct xmq_out {
	xmq_out_t *next;
	uint16_t packet_id;
	bool sent;
	bool dup;               /* sent before */
	uint64_t sent_ms;
	xmq_message_t *msg;     /* xmq_message_copy() */
};

static uint16_t next_packet_id(xmq_session_t *s)
{
	const xmq_out_t *o;
	bool used;

	do {
		s->next_packet_id = s->next_packet_id == 65535 ? 1 : s->next_packet_id + 1;
		used = false;
		for (o = s->out; o != NULL && !used; o = o->next)
			used = o->packet_id == s->next_packet_id;
	} while (used);
	return s->next_packet_id;
}

int xmq__session_out_append(xmq_session_t *s, xmq_message_t *copy, bool dup)
{
	xmq_out_t *o;

	if (s->out_len >= 65535)
		return -ENOBUFS;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return -ENOMEM;
	o->msg = copy;
	o->dup = dup;
	o->packet_id = next_packet_id(s);
	*s->out_tail = o;
	s->out_tail = &o->next;
	s->out_len++;
	return 0;
}

/* Remove o (which follows *link) from the queue and free it. */
static void drop_out(xmq_session_t *s, xmq_out_t **link, xmq_out_t *o)
{
	*link = o->next;
	if (s->out_tail == &o->next)
		s->out_tail = link;
	if (o->sent)
		s->out_unacked--;
	s->out_len--;
	free(o->msg);
	free(o);
}

static int send_publish(xmq_session_t *s, uint16_t packet_id, const xmq_message_t *msg)
{
	xmq_hdr_t h;
	xmq_wire_t w;
	int err;

	xmq_link_hdr(&s->domain->link, XMQ_T_PUBLISH, s->stream, &h);
	err = xmq_encode_publish(&h, packet_id, msg, &w);
	if (err == 0)
		err = xmq__domain_send(s->domain, &w);
	if (err == 0)
		s->domain->stats.delivered++;
	return err;
}

void xmq__session_out_pause(xmq_session_t *s)
{
	bool paused = s->draining || s->domain->congested ||
	              s->out_unacked >= s->peer_receive_max ||
	              (s->out != NULL && s->out_len > s->out_unacked);

	if (paused != s->paused && s->mqtt != NULL) {
		s->paused = paused;
		xmq_mqtt_pause(s->mqtt, paused);
	}
}

void xmq__session_out_pump(xmq_session_t *s)
{
	xmq_domain_t *d = s->domain;
	xmq_out_t **link = &s->out;
	xmq_out_t *o;
	xmq_message_t msg;
	char q[XMQ_QUOTE_MAX];
	int err;

	while ((o = *link) != NULL) {
		if (o->sent) {
			link = &o->next;
			continue;
		}
		if (!s->acked || d->congested || s->out_unacked >= s->peer_receive_max ||
		    !xmq_link_is_up(&d->link))
			break;
		msg = *o->msg;
		msg.dup = o->dup;
		err = send_publish(s, o->packet_id, &msg);
		if (err == -EMSGSIZE || err == -EINVAL) {
			d->stats.dropped++;
			xmq__domain_warn(d, &d->warn_queue,
			                 "message on %s (%zu bytes) cannot cross the channel: %s; dropped",
			                 xmq_log_quote(q, o->msg->topic), o->msg->payload_len,
			                 xmq_strerror(err));
			drop_out(s, link, o);
			continue;
		}
		if (err != 0)
			break;
		o->sent = true;
		o->sent_ms = uv_now(d->broker->loop);
		s->out_unacked++;
		link = &o->next;
	}
	xmq__session_out_pause(s);
}

void xmq_session_tick(xmq_session_t *s)
{
	xmq_domain_t *d = s->domain;
	uint64_t now = uv_now(d->broker->loop);
	xmq_message_t msg;
	xmq_out_t *o;

	if (s->ending || !s->acked || d->congested || !xmq_link_is_up(&d->link))
		return;
	/* A channel can lose a frame (noise, a second writer on the tty):
	 * a QoS 1 message not acknowledged in time goes again, marked dup. */
	for (o = s->out; o != NULL; o = o->next) {
		if (!o->sent || !xmq_resend_due(now, o->sent_ms, s->answered_ms))
			continue;
		o->dup = true;
		msg = *o->msg;
		msg.dup = true;
		if (send_publish(s, o->packet_id, &msg) != 0)
			break;
		o->sent_ms = now;
	}
}

void xmq__session_puback_frame(xmq_session_t *s, const xmq_frame_t *f)
{
	xmq_out_t **link;
	xmq_out_t *o;
	xmq_puback_t b;
	char q[XMQ_QUOTE_MAX];

	if (xmq_decode_puback(f, &b) != 0) {
		xmq__domain_warn(s->domain, &s->domain->warn_frame, "app %s: malformed PUBACK (0x81)",
		                 xmq_log_quote(q, s->app));
		xmq__session_fail(s, MQTT_RC_MALFORMED_PACKET);
		return;
	}
	s->answered_ms = uv_now(s->domain->broker->loop);
	for (link = &s->out; (o = *link) != NULL; link = &o->next) {
		if (o->sent && o->packet_id == b.packet_id) {
			drop_out(s, link, o);
			break;
		}
	}
	xmq__session_out_pump(s);
}

/* ---- the Mosquitto side ------------------------------------------------------ */

void xmq__session_on_message(xmq_mqtt_t *m, const xmq_message_t *msg)
{
	xmq_session_t *s = xmq_mqtt_data(m);
	xmq_domain_t *d = s->domain;
	xmq_message_t *copy;
	char q[XMQ_QUOTE_MAX];

	if (s->ending)
		return;
	/* Mosquitto matched the subscription; the ACL may still deny this
	 * topic inside it (a deny rule within a granted filter). */
	if (!xmq__session_allows(s, msg->topic, XMQ_ACL_READ)) {
		d->stats.denied++;
		return;
	}
	if (msg->qos == 0) {
		if (d->congested || !s->acked) {
			d->stats.dropped++;
			xmq__domain_warn(d, &d->warn_queue,
			                 "channel full (max_queued_bytes %u): QoS 0 message on %s dropped",
			                 (unsigned)d->limits.max_queued_bytes, xmq_log_quote(q, msg->topic));
			return;
		}
		(void)send_publish(s, 0, msg);
		return;
	}
	copy = xmq_message_copy(msg);
	if (copy == NULL || xmq__session_out_append(s, copy, false) != 0) {
		free(copy);
		d->stats.dropped++;
		xmq__domain_log(d, LOG_ERR, "out of memory: QoS 1 message on %s dropped",
		                xmq_log_quote(q, msg->topic));
		return;
	}
	xmq__session_out_pump(s);
}

/* ---- the end ------------------------------------------------------------------ */

void xmq__session_out_park(xmq_session_t *s)
{
	xmq_message_t **msgs;
	xmq_out_t *o;
	unsigned n = 0;

	if (s->expiry > 0 && s->out_len > 0) {
		msgs = malloc(s->out_len * sizeof(*msgs));
		if (msgs != NULL) {
			for (o = s->out; o != NULL; o = o->next) {
				msgs[n++] = o->msg;
				o->msg = NULL;
			}
			xmq__domain_park(s->domain, s->app, s->expiry, msgs, n);
		}
	}
}

void xmq__session_out_free(xmq_session_t *s)
{
	xmq_out_t *o;

	while ((o = s->out) != NULL) {
		s->out = o->next;
		free(o->msg);
		free(o);
	}
}
