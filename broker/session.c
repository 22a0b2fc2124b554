/* SPDX-License-Identifier: MIT */
/*
 * session.c - one DomU application's MQTT session: OPEN to CLOSE, in the
 * order things happen: opening, messages from the DomU, subscriptions,
 * messages for the DomU, and the end.
 *
 * Every frame here came from an untrusted domain. It is decoded by
 * bridge/frame.c (which checks lengths, UTF-8 and topic syntax), then each
 * refusal is answered with the MQTT v5 reason code a client expects and
 * logged once per interval with the domain's name; a frame that breaks the
 * protocol ends the session with CLOSE and that reason, as an MQTT server
 * would end the connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "bridge/error.h"
#include "bridge/message.h"
#include "broker/session.h"

struct xmq_sub {
	xmq_sub_t *next;
	uint8_t options;
	char filter[];
};

struct xmq_out {
	xmq_out_t *next;
	uint16_t packet_id;
	bool sent;
	bool dup;               /* sent before */
	uint64_t sent_ms;
	xmq_message_t *msg;     /* xmq_message_copy() */
};

/* A SUBSCRIBE or UNSUBSCRIBE waiting for Mosquitto, one filter at a time. */
struct xmq_request {
	xmq_request_t *next;
	uint8_t ack_type;       /* XMQ_T_SUBACK or XMQ_T_UNSUBACK */
	uint16_t packet_id;
	unsigned count;
	unsigned outstanding;
	int mid[XMQ_FILTERS_MAX];         /* 0 once answered */
	uint8_t reason[XMQ_FILTERS_MAX];
	uint8_t options[XMQ_FILTERS_MAX];
	bool added[XMQ_FILTERS_MAX];      /* counted as the session's when asked for */
	char *filter[XMQ_FILTERS_MAX];
};

static const xmq_mqtt_cb_t mqtt_cb;

static xmq_broker_t *broker_of(const xmq_session_t *s)
{
	return s->domain->broker;
}

static bool allows(const xmq_session_t *s, const char *topic, int access)
{
	return xmq__broker_allows(broker_of(s), s->domain->name, s->client_id, topic, access);
}

/* ---- frames to the DomU --------------------------------------------------- */

static void send_wire(xmq_session_t *s, int err, xmq_wire_t *w)
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

static void send_puback(xmq_session_t *s, uint16_t packet_id, uint8_t reason)
{
	xmq_puback_t b = { .packet_id = packet_id, .reason = reason };
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&s->domain->link, XMQ_T_PUBACK, s->stream, &h);
	send_wire(s, xmq_encode_puback(&h, &b, &w), &w);
}

static void send_ack(xmq_session_t *s, const xmq_request_t *r)
{
	xmq_suback_t b = { .packet_id = r->packet_id, .count = r->count };
	xmq_hdr_t h;
	xmq_wire_t w;

	memcpy(b.reason, r->reason, r->count);
	xmq_link_hdr(&s->domain->link, r->ack_type, s->stream, &h);
	send_wire(s, xmq_encode_suback(&h, &b, &w), &w);
}

/* A protocol violation: tell the application why and end its session. */
static void fail(xmq_session_t *s, uint8_t reason)
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

/*
 * Copy msg's user properties into user[] without any xen-domain, then add
 * the true one. user has room for XMQ_USER_PROPS_MAX + 1 entries.
 */
static void stamp(const xmq_domain_t *d, xmq_message_t *msg, xmq_user_prop_t *user)
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

/* Whether a message may be published by this session (will or PUBLISH). */
static uint8_t check_publish(xmq_session_t *s, const xmq_message_t *msg, const char *what)
{
	xmq_domain_t *d = s->domain;
	char q1[XMQ_QUOTE_MAX];
	char q2[XMQ_QUOTE_MAX];

	if (!allows(s, msg->topic, XMQ_ACL_WRITE)) {
		d->stats.denied++;
		xmq__domain_warn(d, &d->warn_acl, "app %s: %s to %s denied by the ACL (0x87)",
		                 xmq_log_quote(q1, s->app), what, xmq_log_quote(q2, msg->topic));
		return MQTT_RC_NOT_AUTHORIZED;
	}
	/* A response topic the domain cannot read would let it aim a
	 * service's replies at another domain. */
	if (msg->props.response_topic != NULL &&
	    !allows(s, msg->props.response_topic, XMQ_ACL_READ)) {
		d->stats.denied++;
		xmq__domain_warn(d, &d->warn_acl,
		                 "app %s: %s names response topic %s, which the ACL does not let it read (0x87)",
		                 xmq_log_quote(q1, s->app), what,
		                 xmq_log_quote(q2, msg->props.response_topic));
		return MQTT_RC_NOT_AUTHORIZED;
	}
	return 0;
}

static void free_session(xmq_session_t *s)
{
	xmq_request_t *r;
	xmq_sub_t *sub;
	xmq_out_t *o;
	unsigned i;

	while ((r = s->requests) != NULL) {
		s->requests = r->next;
		for (i = 0; i < r->count; i++)
			free(r->filter[i]);
		free(r);
	}
	while ((sub = s->subs) != NULL) {
		s->subs = sub->next;
		free(sub);
	}
	while ((o = s->out) != NULL) {
		s->out = o->next;
		free(o->msg);
		free(o);
	}
	free(s->inflight);
	free(s);
}

static int append_out(xmq_session_t *s, xmq_message_t *copy, bool dup);

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
	if (s != NULL)
		s->inflight = calloc(lim->max_inflight, sizeof(*s->inflight));
	if (s == NULL || s->inflight == NULL) {
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
		reason = check_publish(s, &o.will, "last will");
		if (reason != 0) {
			send_open_ack(d, s->stream, reason, 0);
			free_session(s);
			return;
		}
		stamp(d, &o.will, user);
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
		if (mo.clean_start || append_out(s, parked[i], true) != 0)
			free(parked[i]);
	}
	free(parked);
	err = xmq_mqtt_start(s->mqtt);
	if (err != 0)
		xmq__domain_log(d, LOG_WARNING, "app %s: connecting to Mosquitto: %s (retrying)",
		                xmq_log_quote(q, s->app), xmq_strerror(err));
}

/* ---- messages from the DomU ------------------------------------------------ */

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
	for (i = 0; i < XMQ_ACKED_IDS; i++) {
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

static void on_publish_frame(xmq_session_t *s, const xmq_frame_t *f)
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
		fail(s, MQTT_RC_MALFORMED_PACKET);
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
		fail(s, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED);
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
	reason = check_publish(s, &p.msg, "publish");
	if (reason != 0) {
		if (p.packet_id != 0)
			send_puback(s, p.packet_id, reason);
		return;
	}
	stamp(d, &p.msg, user);
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

/* ---- subscriptions -------------------------------------------------------- */

static xmq_sub_t *find_sub(xmq_session_t *s, const char *filter)
{
	xmq_sub_t *sub;

	for (sub = s->subs; sub != NULL; sub = sub->next)
		if (strcmp(sub->filter, filter) == 0)
			return sub;
	return NULL;
}

static void add_sub(xmq_session_t *s, const char *filter, uint8_t options)
{
	xmq_sub_t *sub = find_sub(s, filter);
	size_t len;

	if (sub != NULL) {
		sub->options = options;
		return;
	}
	len = strlen(filter);
	sub = malloc(sizeof(*sub) + len + 1);
	if (sub == NULL)
		return;
	memcpy(sub->filter, filter, len + 1);
	sub->options = options;
	sub->next = s->subs;
	s->subs = sub;
	s->domain->n_subs++;
}

static void remove_sub(xmq_session_t *s, const char *filter)
{
	xmq_sub_t **p;
	xmq_sub_t *sub;

	for (p = &s->subs; (sub = *p) != NULL; p = &sub->next) {
		if (strcmp(sub->filter, filter) == 0) {
			*p = sub->next;
			free(sub);
			s->domain->n_subs--;
			return;
		}
	}
}

unsigned xmq_session_subscriptions(const xmq_session_t *s)
{
	const xmq_sub_t *sub;
	unsigned n = 0;

	for (sub = s->subs; sub != NULL; sub = sub->next)
		n++;
	return n;
}

static void finish_request(xmq_session_t *s, xmq_request_t *r)
{
	xmq_request_t **p;
	unsigned i;

	send_ack(s, r);
	for (p = &s->requests; *p != NULL; p = &(*p)->next) {
		if (*p == r) {
			*p = r->next;
			break;
		}
	}
	for (i = 0; i < r->count; i++)
		free(r->filter[i]);
	free(r);
}

static void on_subscribe_frame(xmq_session_t *s, const xmq_frame_t *f, bool subscribe)
{
	xmq_domain_t *d = s->domain;
	xmq_subscribe_t b;
	xmq_request_t *r;
	char q1[XMQ_QUOTE_MAX];
	char q2[XMQ_QUOTE_MAX];
	const char *filter;
	unsigned i;
	int mid;
	int err;

	err = subscribe ? xmq_decode_subscribe(f, &b) : xmq_decode_unsubscribe(f, &b);
	if (err != 0) {
		xmq__domain_warn(d, &d->warn_frame, "app %s: %s refused: %s",
		                 xmq_log_quote(q1, s->app), subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE",
		                 xmq_strerror(err));
		fail(s, xmq__reason_from_err(err));
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return;
	r->ack_type = subscribe ? XMQ_T_SUBACK : XMQ_T_UNSUBACK;
	r->packet_id = b.packet_id;
	r->count = b.count;
	r->next = s->requests;
	s->requests = r;
	for (i = 0; i < b.count; i++) {
		filter = b.filter[i];
		if (!subscribe) {
			remove_sub(s, filter);
		} else if (!allows(s, filter, XMQ_ACL_SUBSCRIBE)) {
			d->stats.denied++;
			xmq__domain_warn(d, &d->warn_acl,
			                 "app %s: subscription to %s denied by the ACL (0x87)",
			                 xmq_log_quote(q1, s->app), xmq_log_quote(q2, filter));
			r->reason[i] = MQTT_RC_NOT_AUTHORIZED;
			continue;
		} else if (find_sub(s, filter) == NULL &&
		           d->n_subs >= d->limits.max_subscriptions) {
			d->stats.refused++;
			xmq__domain_warn(d, &d->warn_acl,
			                 "app %s: subscription to %s refused: max_subscriptions %u (0x97)",
			                 xmq_log_quote(q1, s->app), xmq_log_quote(q2, filter),
			                 (unsigned)d->limits.max_subscriptions);
			r->reason[i] = MQTT_RC_QUOTA_EXCEEDED;
			continue;
		}
		r->options[i] = b.options[i];
		r->filter[i] = strdup(filter);
		err = r->filter[i] == NULL ? -ENOMEM
		      : subscribe ? xmq_mqtt_subscribe(s->mqtt, 1, &filter, b.options[i], &mid)
		                  : xmq_mqtt_unsubscribe(s->mqtt, 1, &filter, &mid);
		if (err == -ENOTCONN) {
			/* Part of the session now; applied when Mosquitto is
			 * back (see on_connect). */
			if (subscribe)
				add_sub(s, filter, b.options[i]);
			r->reason[i] = subscribe ? (b.options[i] & 0x03) : MQTT_RC_SUCCESS;
		} else if (err != 0) {
			r->reason[i] = MQTT_RC_UNSPECIFIED;
		} else {
			r->mid[i] = mid;
			r->outstanding++;
			/* Counted now, not at Mosquitto's answer: otherwise the
			 * filters of one SUBSCRIBE, or of a burst of them,
			 * would all pass max_subscriptions. */
			if (subscribe && find_sub(s, filter) == NULL) {
				add_sub(s, filter, b.options[i]);
				r->added[i] = true;
			}
		}
	}
	if (r->outstanding == 0)
		finish_request(s, r);
}

/* ---- messages for the DomU --------------------------------------------------- */

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

static int append_out(xmq_session_t *s, xmq_message_t *copy, bool dup)
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

/* Pause Mosquitto's side while the DomU cannot take more. */
static void update_pause(xmq_session_t *s)
{
	bool paused = s->draining || s->domain->congested ||
	              s->out_unacked >= s->peer_receive_max ||
	              (s->out != NULL && s->out_len > s->out_unacked);

	if (paused != s->paused && s->mqtt != NULL) {
		s->paused = paused;
		xmq_mqtt_pause(s->mqtt, paused);
	}
}

/* Send queued QoS 1 messages while the DomU's window has room. */
static void pump_out(xmq_session_t *s)
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
	update_pause(s);
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
		if (!o->sent || now - o->sent_ms < XMQ_RESEND_MS)
			continue;
		o->dup = true;
		msg = *o->msg;
		msg.dup = true;
		if (send_publish(s, o->packet_id, &msg) != 0)
			break;
		o->sent_ms = now;
	}
}

static void on_puback_frame(xmq_session_t *s, const xmq_frame_t *f)
{
	xmq_out_t **link;
	xmq_out_t *o;
	xmq_puback_t b;
	char q[XMQ_QUOTE_MAX];

	if (xmq_decode_puback(f, &b) != 0) {
		xmq__domain_warn(s->domain, &s->domain->warn_frame, "app %s: malformed PUBACK (0x81)",
		                 xmq_log_quote(q, s->app));
		fail(s, MQTT_RC_MALFORMED_PACKET);
		return;
	}
	for (link = &s->out; (o = *link) != NULL; link = &o->next) {
		if (o->sent && o->packet_id == b.packet_id) {
			drop_out(s, link, o);
			break;
		}
	}
	pump_out(s);
}

/* ---- the Mosquitto side ------------------------------------------------------ */

static void resubscribe(xmq_session_t *s)
{
	const xmq_sub_t *sub;
	const char *filter;
	int mid;

	/* Mosquitto lost the session (it restarted without persistence):
	 * the subscriptions the application holds go back in. The answers
	 * match no request and are ignored. */
	for (sub = s->subs; sub != NULL; sub = sub->next) {
		filter = sub->filter;
		if (xmq_mqtt_subscribe(s->mqtt, 1, &filter, sub->options, &mid) != 0)
			xmq__domain_log(s->domain, LOG_WARNING, "app \"%s\": cannot restore a subscription",
			                s->app);
	}
}

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
		s->session_present = session_present;
		xmq__domain_log(d, LOG_INFO, "app %s: session open on stream %u (%s)",
		                xmq_log_quote(q, s->app), (unsigned)s->stream,
		                session_present ? "resumed" : "new");
		pump_out(s);
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
		resubscribe(s);
}

static void on_mqtt_message(xmq_mqtt_t *m, const xmq_message_t *msg)
{
	xmq_session_t *s = xmq_mqtt_data(m);
	xmq_domain_t *d = s->domain;
	xmq_message_t *copy;
	char q[XMQ_QUOTE_MAX];

	if (s->ending)
		return;
	/* Mosquitto matched the subscription; the ACL may still deny this
	 * topic inside it (a deny rule within a granted filter). */
	if (!allows(s, msg->topic, XMQ_ACL_READ)) {
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
	if (copy == NULL || append_out(s, copy, false) != 0) {
		free(copy);
		d->stats.dropped++;
		xmq__domain_log(d, LOG_ERR, "out of memory: QoS 1 message on %s dropped",
		                xmq_log_quote(q, msg->topic));
		return;
	}
	pump_out(s);
}

static void on_mqtt_publish(xmq_mqtt_t *m, int mid, int reason)
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
			s->acked_next = (s->acked_next + 1) % XMQ_ACKED_IDS;
		}
		s->inflight[i] = s->inflight[--s->n_inflight];
		return;
	}
}

static void on_mqtt_ack(xmq_session_t *s, int mid, int count, const uint8_t *reasons,
                        bool subscribe)
{
	/* libmosquitto 2.0 passes no reason codes with UNSUBACK (count 0):
	 * that means accepted. */
	uint8_t reason = count > 0 ? reasons[0] : MQTT_RC_SUCCESS;
	xmq_request_t *r;
	unsigned i;

	if (s->ending)
		return;
	for (r = s->requests; r != NULL; r = r->next) {
		for (i = 0; i < r->count; i++) {
			if (r->mid[i] != mid)
				continue;
			r->mid[i] = 0;
			r->reason[i] = reason;
			if (subscribe && reason < 0x80)
				add_sub(s, r->filter[i], r->options[i]);
			else if (subscribe && r->added[i])
				remove_sub(s, r->filter[i]);
			if (--r->outstanding == 0)
				finish_request(s, r);
			return;
		}
	}
}

static void on_mqtt_subscribe(xmq_mqtt_t *m, int mid, int count, const uint8_t *reasons)
{
	on_mqtt_ack(xmq_mqtt_data(m), mid, count, reasons, true);
}

static void on_mqtt_unsubscribe(xmq_mqtt_t *m, int mid, int count, const uint8_t *reasons)
{
	on_mqtt_ack(xmq_mqtt_data(m), mid, count, reasons, false);
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
	.message = on_mqtt_message,
	.publish = on_mqtt_publish,
	.subscribe = on_mqtt_subscribe,
	.unsubscribe = on_mqtt_unsubscribe,
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
		on_publish_frame(s, f);
		break;
	case XMQ_T_PUBACK:
		on_puback_frame(s, f);
		break;
	case XMQ_T_SUBSCRIBE:
		on_subscribe_frame(s, f, true);
		break;
	case XMQ_T_UNSUBSCRIBE:
		on_subscribe_frame(s, f, false);
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
		fail(s, MQTT_RC_PROTOCOL_ERROR);
		break;
	}
}

void xmq_session_drain(xmq_session_t *s)
{
	if (s->ending || s->draining)
		return;
	s->draining = true;
	update_pause(s);
	xmq_mqtt_flush(s->mqtt);
	pump_out(s);
}

bool xmq_session_drained(const xmq_session_t *s)
{
	return s->out_len == 0;
}

void xmq_session_flow(xmq_session_t *s)
{
	if (!s->ending)
		pump_out(s);
}

void xmq_session_end(xmq_session_t *s, int reason, bool park)
{
	xmq_domain_t *d = s->domain;
	xmq_message_t **msgs;
	xmq_out_t *o;
	unsigned n = 0;

	if (s->ending)
		return;
	/* Messages read while paused were acknowledged to Mosquitto already:
	 * into the queue with them, to be kept with the rest. */
	if (park && s->mqtt != NULL)
		xmq_mqtt_flush(s->mqtt);
	s->ending = true;
	xmq__domain_session_gone(d, s);
	if (park && s->expiry > 0 && s->out_len > 0) {
		msgs = malloc(s->out_len * sizeof(*msgs));
		if (msgs != NULL) {
			for (o = s->out; o != NULL; o = o->next) {
				msgs[n++] = o->msg;
				o->msg = NULL;
			}
			xmq__domain_park(d, s->app, s->expiry, msgs, n);
		}
	}
	xmq_mqtt_close(s->mqtt, reason, s->expiry);
}
