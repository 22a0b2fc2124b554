/* SPDX-License-Identifier: MIT */
/*
 * session_in.c - messages from the DomU: a session's PUBLISH frames, and its
 * last will, checked against the ACL, stamped with the domain's name, held
 * to the domain's rates (broker/pacer.h) and published on Mosquitto. A QoS 1
 * PUBLISH is acknowledged to the DomU when Mosquitto acknowledged it, at
 * most max_inflight of them at a time; one the DomU sends again because our
 * PUBACK was lost is answered again, not published twice.
 *
 * As everywhere in a session (session.c), each refusal is answered with the
 * MQTT v5 reason code a client expects and logged once per interval.
 */
#include <errno.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "bridge/error.h"
#include "bridge/message.h"
#include "broker/session.h"
#include "broker/session_internal.h"

static void send_puback(xmq_session_t *s, uint16_t packet_id, uint8_t reason)
{
	xmq_puback_t b = { .packet_id = packet_id, .reason = reason };
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&s->domain->link, XMQ_T_PUBACK, s->stream, &h);
	xmq__session_send(s, xmq_encode_puback(&h, &b, &w), &w);
}

void xmq__session_stamp(const xmq_domain_t *d, xmq_message_t *msg, xmq_user_prop_t *user)
{
	size_t i;
	size_t n = 0;

	for (i = 0; i < msg->props.user_count; i++)
		if (strcmp(msg->props.user[i].name, XMQ_DOMAIN_PROPERTY) != 0)
			user[n++] = msg->props.user[i];
	user[n].name = XMQ_DOMAIN_PROPERTY;
	user[n].value = d->name;
	msg->props.user = user;
	msg->props.user_count = n + 1;
}

uint8_t xmq__session_check_publish(xmq_session_t *s, const xmq_message_t *msg, const char *what)
{
	xmq_domain_t *d = s->domain;
	char q1[XMQ_QUOTE_MAX];
	char q2[XMQ_QUOTE_MAX];

	if (!xmq__session_allows(s, msg->topic, XMQ_ACL_WRITE)) {
		d->stats.denied++;
		xmq__domain_warn(d, &d->warn_acl, "app %s: %s to %s denied by the ACL (0x87)",
		                 xmq_log_quote(q1, s->app), what, xmq_log_quote(q2, msg->topic));
		return MQTT_RC_NOT_AUTHORIZED;
	}
	/* A response topic the domain cannot read would let it aim a
	 * service's replies at another domain. */
	if (msg->props.response_topic != NULL &&
	    !xmq__session_allows(s, msg->props.response_topic, XMQ_ACL_READ)) {
		d->stats.denied++;
		xmq__domain_warn(d, &d->warn_acl,
		                 "app %s: %s names response topic %s, which the ACL does not let it read (0x87)",
		                 xmq_log_quote(q1, s->app), what,
		                 xmq_log_quote(q2, msg->props.response_topic));
		return MQTT_RC_NOT_AUTHORIZED;
	}
	return 0;
}

/*
 * A QoS 1 PUBLISH the DomU sent again (dup) because no PUBACK came in time:
 * if the original is still on its way to Mosquitto, its PUBACK will answer
 * both; if Mosquitto acknowledged it and our PUBACK was lost, say it again.
 * Either way the copy is not a new message (and does not count against the
 * window). Returns false when it must be handled as new.
 */
static bool repeated(xmq_session_t *s, uint16_t packet_id)
{
	unsigned i;

	for (i = 0; i < s->n_inflight; i++)
		if (s->inflight[i].packet_id == packet_id)
			return true;
	for (i = 0; i < s->n_acked_ids; i++) {
		if (s->acked_ids[i] == packet_id) {
			send_puback(s, packet_id, MQTT_RC_SUCCESS);
			return true;
		}
	}
	return false;
}

/* A QoS 1 message over the domain's rates waits for its turn, counted in
 * the session's window, so that the DomU slows down instead of losing it. */
static void hold(xmq_session_t *s, const xmq_publish_t *p)
{
	xmq_domain_t *d = s->domain;
	xmq_message_t *copy = xmq_message_copy(&p->msg);
	char q[XMQ_QUOTE_MAX];

	if (copy == NULL || xmq_pacer_hold(&d->pacer, s, p->packet_id, copy) != 0) {
		d->stats.rate_limited++;
		xmq__domain_warn(d, &d->warn_rate,
		                 "app %s: over max_message_rate %u/s or max_byte_rate %u B/s with "
		                 "max_queued_bytes held already (0x96)",
		                 xmq_log_quote(q, s->app), (unsigned)d->limits.max_message_rate,
		                 (unsigned)d->limits.max_byte_rate);
		send_puback(s, p->packet_id, MQTT_RC_MESSAGE_RATE_TOO_HIGH);
		return;
	}
	d->stats.paced++;
	s->inflight[s->n_inflight].mid = 0;
	s->inflight[s->n_inflight].packet_id = p->packet_id;
	s->n_inflight++;
}

void xmq_session_publish_held(xmq_session_t *s, uint16_t packet_id, const xmq_message_t *msg)
{
	unsigned i;
	int mid = 0;
	int err;

	for (i = 0; i < s->n_inflight; i++) {
		if (s->inflight[i].mid != 0 || s->inflight[i].packet_id != packet_id)
			continue;
		err = xmq_mqtt_publish(s->mqtt, msg, &mid);
		if (err != 0) {
			send_puback(s, packet_id, xmq__reason_from_err(err));
			s->inflight[i] = s->inflight[--s->n_inflight];
			return;
		}
		s->inflight[i].mid = mid;
		s->domain->stats.published++;
		return;
	}
}

void xmq__session_publish_frame(xmq_session_t *s, const xmq_frame_t *f)
{
	xmq_domain_t *d = s->domain;
	xmq_user_prop_t user[XMQ_USER_PROPS_MAX + 1];
	xmq_publish_t p;
	char q[XMQ_QUOTE_MAX];
	uint8_t reason;
	int mid = 0;
	int err;

	err = xmq_decode_publish(f, &p);
	if (err == -EBADMSG) {
		xmq__domain_warn(d, &d->warn_frame, "app %s: malformed PUBLISH (0x81)",
		                 xmq_log_quote(q, s->app));
		xmq__session_fail(s, MQTT_RC_MALFORMED_PACKET);
		return;
	}
	if (err != 0) {
		d->stats.refused++;
		xmq__domain_warn(d, &d->warn_frame, "app %s: PUBLISH refused: %s (0x%02x)",
		                 xmq_log_quote(q, s->app), xmq_strerror(err),
		                 xmq__reason_from_err(err));
		if (p.packet_id != 0)
			send_puback(s, p.packet_id, xmq__reason_from_err(err));
		return;
	}
	if (f->len > d->limits.max_frame_size) {
		d->stats.refused++;
		xmq__domain_warn(d, &d->warn_frame,
		                 "app %s: PUBLISH of %zu bytes over max_frame_size %u (0x95)",
		                 xmq_log_quote(q, s->app), f->len, (unsigned)d->limits.max_frame_size);
		if (p.packet_id != 0)
			send_puback(s, p.packet_id, MQTT_RC_PACKET_TOO_LARGE);
		return;
	}
	if (p.msg.qos == 1 && p.msg.dup && repeated(s, p.packet_id))
		return;
	if (p.msg.qos == 1 && s->n_inflight >= s->cap_inflight) {
		xmq__domain_warn(d, &d->warn_frame,
		                 "app %s: more than %u QoS 1 messages unacknowledged (0x93)",
		                 xmq_log_quote(q, s->app), s->cap_inflight);
		xmq__session_fail(s, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED);
		return;
	}
	if (p.msg.qos == 0 && !xmq_pacer_take(&d->pacer, p.msg.payload_len)) {
		d->stats.rate_limited++;
		xmq__domain_warn(d, &d->warn_rate,
		                 "app %s: QoS 0 messages over max_message_rate %u/s or max_byte_rate %u B/s dropped",
		                 xmq_log_quote(q, s->app), (unsigned)d->limits.max_message_rate,
		                 (unsigned)d->limits.max_byte_rate);
		return;
	}
	reason = xmq__session_check_publish(s, &p.msg, "publish");
	if (reason != 0) {
		if (p.packet_id != 0)
			send_puback(s, p.packet_id, reason);
		return;
	}
	xmq__session_stamp(d, &p.msg, user);
	p.msg.dup = false;
	if (p.msg.qos == 1 && !xmq_pacer_take(&d->pacer, p.msg.payload_len)) {
		hold(s, &p);
		return;
	}
	err = xmq_mqtt_publish(s->mqtt, &p.msg, &mid);
	if (p.msg.qos == 0) {
		if (err == 0)
			d->stats.published++;
		return;
	}
	if (err != 0) {
		send_puback(s, p.packet_id, xmq__reason_from_err(err));
		return;
	}
	d->stats.published++;
	s->inflight[s->n_inflight].mid = mid;
	s->inflight[s->n_inflight].packet_id = p.packet_id;
	s->n_inflight++;
}

/* ---- the Mosquitto side ------------------------------------------------------ */

void xmq__session_on_publish(xmq_mqtt_t *m, int mid, int reason)
{
	xmq_session_t *s = xmq_mqtt_data(m);
	unsigned i;

	if (s->ending)
		return;
	for (i = 0; i < s->n_inflight; i++) {
		if (s->inflight[i].mid != mid)
			continue;
		send_puback(s, s->inflight[i].packet_id, (uint8_t)reason);
		if (reason < 0x80) {
			s->acked_ids[s->acked_next] = s->inflight[i].packet_id;
			s->acked_next = (s->acked_next + 1) % s->n_acked_ids;
		}
		s->inflight[i] = s->inflight[--s->n_inflight];
		return;
	}
}
