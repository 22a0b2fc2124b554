/* SPDX-License-Identifier: MIT */
/*
 * session.c - one DomU application's MQTT session: OPEN to CLOSE, in the
 * order things happen: opening, the Mosquitto connection, the frames the
 * DomU sends, and the end. What crosses the session is handled by its other
 * parts (session_internal.h): the messages from the DomU in session_in.c,
 * the messages for it in session_out.c, the subscriptions in session_subs.c.
 *
 * Every frame here came from an untrusted domain. It is decoded by
 * bridge/frame.c (which checks lengths, UTF-8 and topic syntax), then each
 * refusal is answered with the MQTT v5 reason code a client expects and
 * logged once per interval with the domain's name; a frame that breaks the
 * protocol ends the session with CLOSE and that reason, as an MQTT server
 * would end the connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "bridge/error.h"
#include "broker/session.h"
#include "broker/session_internal.h"

static const xmq_mqtt_cb_t mqtt_cb;

static xmq_broker_t *broker_of(const xmq_session_t *s)
{
	return s->domain->broker;
}

bool xmq__session_allows(const xmq_session_t *s, const char *topic, int access)
{
	return xmq__broker_allows(broker_of(s), s->domain->name, s->client_id, topic, access);
}

/* ---- frames to the DomU --------------------------------------------------- */

void xmq__session_send(xmq_session_t *s, int err, xmq_wire_t *w)
{
	if (err == 0)
		(void)xmq__domain_send(s->domain, w);
}

static void send_open_ack(xmq_domain_t *d, uint16_t stream, uint8_t reason, uint8_t flags)
{
	xmq_open_ack_t b = {
		.reason = reason,
		.flags = flags,
		.receive_max = (uint16_t)d->limits.max_inflight,
	};
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&d->link, XMQ_T_OPEN_ACK, stream, &h);
	if (xmq_encode_open_ack(&h, &b, &w) == 0)
		(void)xmq__domain_send(d, &w);
}

static void send_close(xmq_domain_t *d, uint16_t stream, uint8_t reason)
{
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&d->link, XMQ_T_CLOSE, stream, &h);
	if (xmq_encode_close(&h, reason, &w) == 0)
		(void)xmq__domain_send(d, &w);
}

void xmq__session_fail(xmq_session_t *s, uint8_t reason)
{
	s->domain->stats.refused++;
	send_close(s->domain, s->stream, reason);
	xmq_session_end(s, MQTT_RC_DISCONNECT_WITH_WILL_MSG, false);
}

/* ---- opening ------------------------------------------------------------ */

static xmq_session_t *find_stream(xmq_domain_t *d, uint16_t stream)
{
	xmq_session_t *s;

	for (s = d->sessions; s != NULL; s = s->next)
		if (s->stream == stream)
			return s;
	return NULL;
}

static xmq_session_t *find_app(xmq_domain_t *d, const char *app)
{
	xmq_session_t *s;

	for (s = d->sessions; s != NULL; s = s->next)
		if (strcmp(s->app, app) == 0)
			return s;
	return NULL;
}

static void free_session(xmq_session_t *s)
{
	xmq__session_subs_free(s);
	xmq__session_out_free(s);
	free(s->inflight);
	free(s->acked_ids);
	free(s);
}

void xmq_session_open(xmq_domain_t *d, const xmq_frame_t *f)
{
	const xmq_limits_t *lim = &d->limits;
	xmq_user_prop_t user[XMQ_USER_PROPS_MAX + 1];
	xmq_mqtt_opts_t mo = { 0 };
	xmq_message_t **parked = NULL;
	xmq_session_t *s;
	xmq_session_t *old;
	xmq_open_t o;
	char q[XMQ_QUOTE_MAX];
	unsigned n_parked;
	unsigned i;
	uint8_t reason;
	int err;

	err = xmq_decode_open(f, &o);
	if (err != 0) {
		d->stats.refused++;
		xmq__domain_warn(d, &d->warn_frame, "OPEN on stream %u refused: %s",
		                 (unsigned)f->hdr.stream, xmq_strerror(err));
		send_open_ack(d, f->hdr.stream, xmq__reason_from_err(err), 0);
		return;
	}
	if (f->len > lim->max_frame_size) {
		d->stats.refused++;
		xmq__domain_warn(d, &d->warn_frame, "OPEN of %zu bytes over max_frame_size %u (0x95)",
		                 f->len, (unsigned)lim->max_frame_size);
		send_open_ack(d, f->hdr.stream, MQTT_RC_PACKET_TOO_LARGE, 0);
		return;
	}
	/* The same OPEN again on the same stream: the DomU did not see our
	 * answer (lost on the line) or is still waiting for Mosquitto's. */
	old = find_stream(d, f->hdr.stream);
	if (old != NULL && strcmp(old->app, o.app) == 0) {
		if (old->acked)
			send_open_ack(d, old->stream, MQTT_RC_SUCCESS,
			              old->session_present ? XMQ_OPEN_ACK_SESSION_PRESENT : 0);
		return;
	}
	/* As an MQTT CONNECT would: a new OPEN replaces what was there, on
	 * the same stream or under the same client id. */
	if (old != NULL)
		xmq_session_end(old, MQTT_RC_NORMAL_DISCONNECTION, true);
	old = find_app(d, o.app);
	if (old != NULL) {
		xmq__domain_log(d, LOG_NOTICE, "app %s opened again on stream %u: stream %u taken over",
		                xmq_log_quote(q, o.app), (unsigned)f->hdr.stream, (unsigned)old->stream);
		send_close(d, old->stream, MQTT_RC_SESSION_TAKEN_OVER);
		xmq_session_end(old, MQTT_RC_NORMAL_DISCONNECTION, true);
	}
	if (d->n_sessions >= lim->max_sessions) {
		d->stats.refused++;
		xmq__domain_warn(d, &d->warn_frame, "app %s refused: max_sessions %u reached (0x97)",
		                 xmq_log_quote(q, o.app), (unsigned)lim->max_sessions);
		send_open_ack(d, f->hdr.stream, MQTT_RC_QUOTA_EXCEEDED, 0);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s != NULL) {
		s->inflight = calloc(lim->max_inflight, sizeof(*s->inflight));
		s->n_acked_ids = lim->max_inflight > XMQ_ACKED_MIN ? lim->max_inflight
		                                                   : XMQ_ACKED_MIN;
		s->acked_ids = calloc(s->n_acked_ids, sizeof(*s->acked_ids));
	}
	if (s == NULL || s->inflight == NULL || s->acked_ids == NULL) {
		if (s != NULL) {
			free(s->inflight);
			free(s->acked_ids);
		}
		free(s);
		send_open_ack(d, f->hdr.stream, MQTT_RC_SERVER_BUSY, 0);
		return;
	}
	s->domain = d;
	s->stream = f->hdr.stream;
	s->cap_inflight = lim->max_inflight;
	s->peer_receive_max = o.receive_max;
	s->expiry = o.session_expiry < lim->max_session_expiry ? o.session_expiry
	                                                       : lim->max_session_expiry;
	s->out_tail = &s->out;
	snprintf(s->app, sizeof(s->app), "%s", o.app);
	snprintf(s->client_id, sizeof(s->client_id), "%s/%s", d->name, o.app);
	if (o.has_will) {
		reason = xmq__session_check_publish(s, &o.will, "last will");
		if (reason != 0) {
			send_open_ack(d, s->stream, reason, 0);
			free_session(s);
			return;
		}
		xmq__session_stamp(d, &o.will, user);
		mo.will = &o.will;
	}
	mo.address = d->broker->conf.mosquitto;
	mo.client_id = s->client_id;
	mo.clean_start = (o.flags & XMQ_OPEN_CLEAN_START) != 0;
	mo.session_expiry = s->expiry;
	mo.keepalive = (uint16_t)d->broker->conf.keepalive;
	err = xmq_mqtt_new(d->broker->loop, &mo, &mqtt_cb, s, &s->mqtt);
	if (err != 0) {
		xmq__domain_log(d, LOG_ERR, "app %s: cannot make its Mosquitto session: %s",
		                xmq_log_quote(q, o.app), xmq_strerror(err));
		send_open_ack(d, s->stream, MQTT_RC_SERVER_UNAVAILABLE, 0);
		free_session(s);
		return;
	}
	s->next = d->sessions;
	d->sessions = s;
	d->n_sessions++;
	d->stats.sessions_opened++;
	/* Messages kept from the application's previous link go first,
	 * unless it asked for a clean start. */
	n_parked = xmq__domain_unpark(d, s->app, &parked);
	for (i = 0; i < n_parked; i++) {
		if (mo.clean_start || xmq__session_out_append(s, parked[i], true) != 0)
			free(parked[i]);
	}
	free(parked);
	err = xmq_mqtt_start(s->mqtt);
	if (err != 0)
		xmq__domain_log(d, LOG_WARNING, "app %s: connecting to Mosquitto: %s (retrying)",
		                xmq_log_quote(q, s->app), xmq_strerror(err));
}

/* ---- the Mosquitto side ------------------------------------------------------ */

static void on_connect(xmq_mqtt_t *m, int reason, bool session_present)
{
	xmq_session_t *s = xmq_mqtt_data(m);
	xmq_domain_t *d = s->domain;
	char q[XMQ_QUOTE_MAX];

	if (s->ending)
		return;
	if (!s->acked) {
		send_open_ack(d, s->stream, (uint8_t)reason,
		              session_present ? XMQ_OPEN_ACK_SESSION_PRESENT : 0);
		if (reason >= 0x80) {
			xmq__domain_log(d, LOG_WARNING, "app %s: Mosquitto refused its session: %s",
			                xmq_log_quote(q, s->app), xmq_reason_string(reason));
			xmq_session_end(s, MQTT_RC_NORMAL_DISCONNECTION, false);
			return;
		}
		s->acked = true;
		s->answered_ms = uv_now(d->broker->loop);
		s->session_present = session_present;
		xmq__domain_log(d, LOG_INFO, "app %s: session open on stream %u (%s)",
		                xmq_log_quote(q, s->app), (unsigned)s->stream,
		                session_present ? "resumed" : "new");
		xmq__session_out_pump(s);
		return;
	}
	if (reason >= 0x80) {
		xmq__domain_log(d, LOG_WARNING, "app %s: Mosquitto refused its session again: %s",
		                xmq_log_quote(q, s->app), xmq_reason_string(reason));
		send_close(d, s->stream, MQTT_RC_SERVER_UNAVAILABLE);
		xmq_session_end(s, MQTT_RC_NORMAL_DISCONNECTION, false);
		return;
	}
	if (!session_present)
		xmq__session_resubscribe(s);
}

static void on_mqtt_closed(xmq_mqtt_t *m)
{
	xmq_session_t *s = xmq_mqtt_data(m);
	xmq_domain_t *d = s->domain;

	free_session(s);
	xmq__domain_session_closed(d);
}

static const xmq_mqtt_cb_t mqtt_cb = {
	.connect = on_connect,
	.message = xmq__session_on_message,
	.publish = xmq__session_on_publish,
	.subscribe = xmq__session_on_subscribe,
	.unsubscribe = xmq__session_on_unsubscribe,
	.closed = on_mqtt_closed,
};

/* ---- frames, flow and the end ----------------------------------------------- */

void xmq_session_frame(xmq_session_t *s, const xmq_frame_t *f)
{
	char q[XMQ_QUOTE_MAX];
	uint8_t reason;

	if (!s->acked && f->hdr.type != XMQ_T_CLOSE) {
		/* Nothing but CLOSE may come before OPEN_ACK. */
		s->domain->stats.refused++;
		xmq__domain_warn(s->domain, &s->domain->warn_frame,
		                 "app %s: %s before its OPEN_ACK: dropped",
		                 xmq_log_quote(q, s->app), xmq_type_name(f->hdr.type));
		return;
	}
	switch (f->hdr.type) {
	case XMQ_T_PUBLISH:
		xmq__session_publish_frame(s, f);
		break;
	case XMQ_T_PUBACK:
		xmq__session_puback_frame(s, f);
		break;
	case XMQ_T_SUBSCRIBE:
		xmq__session_subscribe_frame(s, f, true);
		break;
	case XMQ_T_UNSUBSCRIBE:
		xmq__session_subscribe_frame(s, f, false);
		break;
	case XMQ_T_CLOSE:
		if (xmq_decode_close(f, &reason) != 0)
			reason = MQTT_RC_DISCONNECT_WITH_WILL_MSG;
		xmq__domain_log(s->domain, LOG_INFO, "app %s: closed (%s)",
		                xmq_log_quote(q, s->app),
		                reason == 0 ? "normal" : "with will");
		/* Mosquitto keeps the session for its expiry, but the QoS 1
		 * messages it handed us are acknowledged already: what the
		 * DomU had not acknowledged waits here for the application,
		 * as when its link goes down. */
		xmq_session_end(s, reason == 0 ? MQTT_RC_NORMAL_DISCONNECTION
		                               : MQTT_RC_DISCONNECT_WITH_WILL_MSG, true);
		break;
	default:
		xmq__domain_warn(s->domain, &s->domain->warn_frame,
		                 "app %s: %s is not for the Dom0 side (0x82)",
		                 xmq_log_quote(q, s->app), xmq_type_name(f->hdr.type));
		xmq__session_fail(s, MQTT_RC_PROTOCOL_ERROR);
		break;
	}
}

void xmq_session_drain(xmq_session_t *s)
{
	if (s->ending || s->draining)
		return;
	s->draining = true;
	xmq__session_out_pause(s);
	xmq_mqtt_flush(s->mqtt);
	xmq__session_out_pump(s);
}

bool xmq_session_drained(const xmq_session_t *s)
{
	return s->out_len == 0;
}

void xmq_session_flow(xmq_session_t *s)
{
	if (!s->ending)
		xmq__session_out_pump(s);
}

void xmq_session_end(xmq_session_t *s, int reason, bool park)
{
	xmq_domain_t *d = s->domain;

	if (s->ending)
		return;
	/* Messages read while paused were acknowledged to Mosquitto already:
	 * into the queue with them, to be kept with the rest. */
	if (park && s->mqtt != NULL)
		xmq_mqtt_flush(s->mqtt);
	s->ending = true;
	xmq__domain_session_gone(d, s);
	if (park)
		xmq__session_out_park(s);
	xmq_mqtt_close(s->mqtt, reason, s->expiry);
}
