/* SPDX-License-Identifier: MIT */
/*
 * session_subs.c - a session's subscriptions: SUBSCRIBE and UNSUBSCRIBE from
 * the DomU, checked against the ACL and max_subscriptions, passed on to
 * Mosquitto one filter at a time and answered with one SUBACK or UNSUBACK
 * once Mosquitto answered every filter; and the list of what the
 * application holds, subscribed again when Mosquitto lost the session.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "bridge/error.h"
#include "broker/session.h"
#include "broker/session_internal.h"

struct xmq_sub {
	xmq_sub_t *next;
	uint8_t options;
	char filter[];
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

static void send_ack(xmq_session_t *s, const xmq_request_t *r)
{
	xmq_suback_t b = { .packet_id = r->packet_id, .count = r->count };
	xmq_hdr_t h;
	xmq_wire_t w;

	memcpy(b.reason, r->reason, r->count);
	xmq_link_hdr(&s->domain->link, r->ack_type, s->stream, &h);
	xmq__session_send(s, xmq_encode_suback(&h, &b, &w), &w);
}

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

void xmq__session_subscribe_frame(xmq_session_t *s, const xmq_frame_t *f, bool subscribe)
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
		xmq__session_fail(s, xmq__reason_from_err(err));
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
		} else if (!xmq__session_allows(s, filter, XMQ_ACL_SUBSCRIBE)) {
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
			 * back (see on_connect, session.c). */
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

/* ---- the Mosquitto side ------------------------------------------------------ */

void xmq__session_resubscribe(xmq_session_t *s)
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

void xmq__session_on_subscribe(xmq_mqtt_t *m, int mid, int count, const uint8_t *reasons)
{
	on_mqtt_ack(xmq_mqtt_data(m), mid, count, reasons, true);
}

void xmq__session_on_unsubscribe(xmq_mqtt_t *m, int mid, int count, const uint8_t *reasons)
{
	on_mqtt_ack(xmq_mqtt_data(m), mid, count, reasons, false);
}

/* ---- the end ------------------------------------------------------------------ */

void xmq__session_subs_free(xmq_session_t *s)
{
	xmq_request_t *r;
	xmq_sub_t *sub;
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
}
