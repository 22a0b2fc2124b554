/* SPDX-License-Identifier: MIT */
/*
 * domain.c - a DomU's channel, link and sessions, in the order a domain
 * lives: made, connected, up, frames, congestion, down, closed.
 *
 * The channel is QEMU's Unix socket: absent while the domain boots or
 * reboots (chan.c retries), one client at a time, EOF when the domain goes.
 * The link on it says when the DomU's agent is there (up: the domain is
 * "online") and when it went away or restarted (down: every session ends
 * with its last will, and what it had not acknowledged is kept for it).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <mqtt_protocol.h>

#include "bridge/error.h"
#include "bridge/message.h"
#include "broker/domain.h"
#include "broker/session.h"

#define WARN_INTERVAL_MS 10000
#define RETRY_LOG_INTERVAL_MS 60000

/* Messages kept for an application whose link went away. */
struct xmq_parked {
	xmq_parked_t *next;
	char *app;
	uint64_t deadline_ms;
	xmq_message_t **msgs;
	unsigned n;
	size_t bytes;
};

static uint64_t now_ms(const xmq_domain_t *d)
{
	return uv_now(d->broker->loop);
}

void xmq__domain_log(const xmq_domain_t *d, int priority, const char *fmt, ...)
{
	char line[768];
	va_list ap;

	if (!xmq_log_enabled(priority))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	xmq_log(priority, "domain \"%s\": %s", d->name, line);
}

void xmq__domain_warn(xmq_domain_t *d, xmq_throttle_t *t, const char *fmt, ...)
{
	uint64_t suppressed = 0;
	char line[768];
	va_list ap;

	if (!xmq_throttle_pass(t, now_ms(d), WARN_INTERVAL_MS, &suppressed))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (suppressed > 0)
		xmq_log(LOG_WARNING, "domain \"%s\": %s (and %llu more like it)", d->name, line,
		        (unsigned long long)suppressed);
	else
		xmq_log(LOG_WARNING, "domain \"%s\": %s", d->name, line);
}

const char *xmq_domain_status(const xmq_domain_t *d)
{
	return xmq_link_is_up(&d->link) ? "online" : "offline";
}

/* ---- rates ----------------------------------------------------------------- */

static void apply_rates(xmq_domain_t *d)
{
	xmq_pacer_set(&d->pacer, d->limits.max_message_rate, d->limits.max_byte_rate,
	              d->limits.max_queued_bytes);
}

/* A QoS 1 message held for the rates may go now. */
static void on_paced(xmq_pacer_t *p, void *session, uint16_t packet_id, xmq_message_t *msg)
{
	xmq_session_publish_held(session, packet_id, msg);
	free(msg);
}

/* ---- parked messages -------------------------------------------------------- */

static void free_parked(xmq_parked_t *p)
{
	unsigned i;

	for (i = 0; i < p->n; i++)
		free(p->msgs[i]);
	free(p->msgs);
	free(p->app);
	free(p);
}

/* Forget what expired, then the oldest, until the bound holds. */
static void trim_parked(xmq_domain_t *d, size_t bound)
{
	xmq_parked_t **link = &d->parked;
	xmq_parked_t *p;
	uint64_t now = now_ms(d);

	while ((p = *link) != NULL) {
		if (p->deadline_ms > now) {
			link = &p->next;
			continue;
		}
		*link = p->next;
		d->parked_bytes -= p->bytes;
		free_parked(p);
	}
	/* The list is newest first: the oldest are at the end. */
	while (d->parked_bytes > bound && d->parked != NULL) {
		for (link = &d->parked; (*link)->next != NULL; link = &(*link)->next)
			;
		p = *link;
		*link = NULL;
		d->parked_bytes -= p->bytes;
		d->stats.dropped += p->n;
		xmq__domain_warn(d, &d->warn_queue,
		                 "%u QoS 1 messages kept for app \"%s\" dropped: max_queued_bytes %u",
		                 p->n, p->app, (unsigned)d->limits.max_queued_bytes);
		free_parked(p);
	}
}

void xmq__domain_park(xmq_domain_t *d, const char *app, uint32_t expiry,
                      xmq_message_t **msgs, unsigned n)
{
	xmq_parked_t *p = calloc(1, sizeof(*p));
	unsigned i;

	if (p == NULL || (p->app = strdup(app)) == NULL) {
		free(p);
		for (i = 0; i < n; i++)
			free(msgs[i]);
		free(msgs);
		d->stats.dropped += n;
		return;
	}
	p->msgs = msgs;
	p->n = n;
	p->deadline_ms = now_ms(d) + (uint64_t)expiry * 1000;
	for (i = 0; i < n; i++)
		p->bytes += xmq_message_size(msgs[i]);
	p->next = d->parked;
	d->parked = p;
	d->parked_bytes += p->bytes;
	trim_parked(d, d->limits.max_queued_bytes);
}

unsigned xmq__domain_unpark(xmq_domain_t *d, const char *app, xmq_message_t ***msgs)
{
	xmq_parked_t **link;
	xmq_parked_t *p;
	unsigned n;

	trim_parked(d, d->limits.max_queued_bytes);
	for (link = &d->parked; (p = *link) != NULL; link = &p->next) {
		if (strcmp(p->app, app) != 0)
			continue;
		*link = p->next;
		d->parked_bytes -= p->bytes;
		*msgs = p->msgs;
		n = p->n;
		p->msgs = NULL;
		p->n = 0;
		free_parked(p);
		return n;
	}
	*msgs = NULL;
	return 0;
}

/* ---- sending and congestion ----------------------------------------------- */

static void set_congested(xmq_domain_t *d, bool congested)
{
	xmq_session_t *s;
	xmq_session_t *next;

	if (d->congested == congested)
		return;
	d->congested = congested;
	if (congested)
		xmq__domain_log(d, LOG_DEBUG, "channel congested: %zu bytes queued",
		                xmq_chan_queued(&d->chan));
	for (s = d->sessions; s != NULL; s = next) {
		next = s->next;
		xmq_session_flow(s);
	}
}

int xmq__domain_send(xmq_domain_t *d, xmq_wire_t *w)
{
	int err = xmq_link_write(&d->link, w);

	if (err == 0 && xmq_chan_queued(&d->chan) > d->limits.max_queued_bytes)
		set_congested(d, true);
	return err;
}

/* ---- the channel ---------------------------------------------------------- */

static void on_chan_open(xmq_chan_t *c)
{
	xmq_domain_t *d = c->data;

	d->connected = true;
	d->warn_retry.last_ms = 0;
	xmq__domain_log(d, LOG_INFO, "channel %s connected", d->channel);
	xmq_link_start(&d->link);
}

static void on_chan_data(xmq_chan_t *c, const uint8_t *buf, size_t len)
{
	xmq_domain_t *d = c->data;

	xmq_link_feed(&d->link, buf, len);
}

static void on_chan_lost(xmq_chan_t *c, int err)
{
	xmq_domain_t *d = c->data;

	d->connected = false;
	xmq__domain_log(d, LOG_NOTICE, "channel %s lost: %s (reconnecting)", d->channel,
	                err == UV_EOF ? "the domain closed it" : uv_strerror(err));
	xmq_link_stop(&d->link);
	set_congested(d, false);
}

static void on_chan_drain(xmq_chan_t *c)
{
	set_congested(c->data, false);
}

static void on_chan_retry(xmq_chan_t *c, int err)
{
	xmq_domain_t *d = c->data;
	uint64_t skipped;

	if (xmq_throttle_pass(&d->warn_retry, now_ms(d), RETRY_LOG_INTERVAL_MS, &skipped))
		xmq__domain_log(d, LOG_INFO, "waiting for channel %s: %s", d->channel,
		                uv_strerror(err));
}

static void domain_release(xmq_domain_t *d)
{
	xmq_parked_t *p;

	if (--d->pending > 0)
		return;
	while ((p = d->parked) != NULL) {
		d->parked = p->next;
		free_parked(p);
	}
	free(d->name);
	free(d->channel);
	if (!d->orphan)
		xmq__broker_domain_closed(d->broker, d);
	free(d);
}

static void on_chan_closed(xmq_chan_t *c)
{
	domain_release(c->data);
}

static const xmq_chan_ops_t chan_ops = {
	.open = on_chan_open,
	.data = on_chan_data,
	.lost = on_chan_lost,
	.drain = on_chan_drain,
	.retry = on_chan_retry,
	.closed = on_chan_closed,
};

/* ---- the link --------------------------------------------------------------- */

static int on_link_write(xmq_link_t *l, xmq_wire_t *w)
{
	xmq_domain_t *d = l->data;

	return xmq_chan_write(&d->chan, w);
}

static void on_link_up(xmq_link_t *l)
{
	xmq_domain_t *d = l->data;

	xmq__domain_log(d, LOG_NOTICE, "online (link epoch %08x)", (unsigned)l->epoch);
	apply_rates(d);
	xmq__broker_domain_status(d->broker, d);
}

static void end_sessions(xmq_domain_t *d, int reason, bool park, uint8_t close_reason)
{
	xmq_session_t *s;

	while ((s = d->sessions) != NULL) {
		if (close_reason != 0 && xmq_link_is_up(&d->link)) {
			xmq_hdr_t h;
			xmq_wire_t w;

			xmq_link_hdr(&d->link, XMQ_T_CLOSE, s->stream, &h);
			if (xmq_encode_close(&h, close_reason, &w) == 0)
				(void)xmq_link_write(&d->link, &w);
		}
		xmq_session_end(s, reason, park);
	}
}

static void on_link_down(xmq_link_t *l, int err)
{
	xmq_domain_t *d = l->data;

	xmq__domain_log(d, LOG_NOTICE, "offline: %s",
	                err == -ETIMEDOUT ? "the agent stopped answering"
	                : err == -ECONNRESET ? "the agent restarted"
	                : "the channel closed");
	/* The applications are gone with their link: their wills go out, and
	 * what they had not acknowledged waits for them. */
	end_sessions(d, MQTT_RC_DISCONNECT_WITH_WILL_MSG, true, 0);
	if (!d->closing)
		xmq__broker_domain_status(d->broker, d);
}

static void on_link_frame(xmq_link_t *l, const xmq_frame_t *f)
{
	xmq_domain_t *d = l->data;
	xmq_session_t *s;

	if (f->hdr.type == XMQ_T_OPEN) {
		xmq_session_open(d, f);
		return;
	}
	for (s = d->sessions; s != NULL; s = s->next) {
		if (s->stream == f->hdr.stream) {
			xmq_session_frame(s, f);
			return;
		}
	}
	/* A session we ended while its frames were on the way, or a DomU
	 * that does not follow the protocol: either way, nothing to do. */
	d->stats.refused++;
	xmq__domain_log(d, LOG_DEBUG, "%s on stream %u, which is not open: dropped",
	                xmq_type_name(f->hdr.type), (unsigned)f->hdr.stream);
}

static void on_link_dropped(xmq_link_t *l, int err, const xmq_frame_t *f)
{
	xmq_domain_t *d = l->data;

	/* Frames of an old epoch are expected after any restart. */
	if (err == XMQ_ESTALE) {
		xmq__domain_log(d, LOG_DEBUG, "frame of another epoch dropped");
		return;
	}
	xmq__domain_warn(d, &d->warn_garbage, "%s%s dropped: %s",
	                 f != NULL ? xmq_type_name(f->hdr.type) : "bytes",
	                 f != NULL ? " frame" : " that are not a valid frame", xmq_strerror(err));
}

static void on_link_closed(xmq_link_t *l)
{
	domain_release(l->data);
}

static void on_pacer_closed(xmq_pacer_t *p)
{
	domain_release(p->data);
}

static const xmq_link_ops_t link_ops = {
	.write = on_link_write,
	.up = on_link_up,
	.down = on_link_down,
	.frame = on_link_frame,
	.dropped = on_link_dropped,
};

/* ---- life ------------------------------------------------------------------- */

static xmq_link_opts_t link_opts(const xmq_limits_t *lim)
{
	xmq_link_opts_t o = {
		.max_frame = lim->max_frame_size,
		.max_streams = lim->max_sessions > 65535 ? 65535 : (uint16_t)lim->max_sessions,
	};

	return o;
}

int xmq_domain_new(xmq_broker_t *b, const xmq_domain_conf_t *dc, xmq_domain_t **out)
{
	xmq_link_opts_t lo = link_opts(&dc->limits);
	xmq_domain_t *d = calloc(1, sizeof(*d));
	int err = -ENOMEM;

	if (d == NULL)
		return -ENOMEM;
	d->broker = b;
	d->limits = dc->limits;
	d->name = strdup(dc->name);
	d->channel = strdup(dc->channel);
	if (d->name == NULL || d->channel == NULL)
		goto fail;
	err = xmq_chan_init(b->loop, &d->chan, XMQ_CHAN_UNIX, dc->channel, &chan_ops, d);
	if (err != 0)
		goto fail;
	err = xmq_link_init(b->loop, &d->link, XMQ_LINK_RESPONDER, &lo, &link_ops, d);
	if (err == 0)
		err = xmq_pacer_init(b->loop, &d->pacer, on_paced, d);
	if (err != 0) {
		/* The channel's handle exists: the domain lives until it is
		 * closed, and is never announced to the broker. */
		d->orphan = true;
		d->closing = true;
		d->pending = 1;
		xmq_chan_close(&d->chan);
		return err;
	}
	d->pending = 3;  /* the link's, the channel's and the pacer's handles */
	*out = d;
	return 0;

fail:
	free(d->name);
	free(d->channel);
	free(d);
	return err;
}

void xmq_domain_start(xmq_domain_t *d)
{
	apply_rates(d);
	xmq_chan_start(&d->chan);
}

void xmq_domain_set_limits(xmq_domain_t *d, const xmq_limits_t *limits)
{
	xmq_session_t *s;

	d->limits = *limits;
	/* The link announces max_frame at the next handshake; the session
	 * windows already open keep the size they were given. */
	d->link.opts.max_frame = limits->max_frame_size;
	apply_rates(d);
	for (s = d->sessions; s != NULL; s = s->next)
		xmq_session_flow(s);
}

void xmq_domain_drain(xmq_domain_t *d)
{
	xmq_session_t *s;

	for (s = d->sessions; s != NULL; s = s->next)
		xmq_session_drain(s);
}

bool xmq_domain_drained(const xmq_domain_t *d)
{
	const xmq_session_t *s;

	if (!xmq_link_is_up(&d->link))
		return true;
	for (s = d->sessions; s != NULL; s = s->next)
		if (!xmq_session_drained(s))
			return false;
	return true;
}

void xmq_domain_tick(xmq_domain_t *d)
{
	xmq_session_t *s;

	for (s = d->sessions; s != NULL; s = s->next)
		xmq_session_tick(s);
}

void xmq__domain_session_gone(xmq_domain_t *d, xmq_session_t *s)
{
	xmq_session_t **link;

	for (link = &d->sessions; *link != NULL; link = &(*link)->next) {
		if (*link == s) {
			*link = s->next;
			break;
		}
	}
	d->n_sessions--;
	d->n_subs -= xmq_session_subscriptions(s);
	xmq_pacer_forget(&d->pacer, s);
	d->pending++;
}

void xmq__domain_session_closed(xmq_domain_t *d)
{
	domain_release(d);
}

void xmq_domain_close(xmq_domain_t *d, int reason, uint8_t close_reason)
{
	if (d->closing)
		return;
	d->closing = true;
	end_sessions(d, reason, false, close_reason);
	xmq_link_close(&d->link, on_link_closed);
	xmq_chan_close(&d->chan);
	xmq_pacer_close(&d->pacer, on_pacer_closed);
}

char *xmq_domain_stats_json(const xmq_domain_t *d)
{
	const xmq_link_stats_t *ls = &d->link.stats;
	const xmq_domain_stats_t *s = &d->stats;
	json_t *o;
	char *text;

	o = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
	              " s:I, s:I, s:I, s:I, s:I}",
	              "status", xmq_domain_status(d),
	              "channel_connected", d->connected,
	              "sessions", (json_int_t)d->n_sessions,
	              "subscriptions", (json_int_t)d->n_subs,
	              "published", (json_int_t)s->published,
	              "delivered", (json_int_t)s->delivered,
	              "denied", (json_int_t)s->denied,
	              "rate_limited", (json_int_t)s->rate_limited,
	              "paced", (json_int_t)s->paced,
	              "dropped", (json_int_t)s->dropped,
	              "refused", (json_int_t)s->refused,
	              "frames_in", (json_int_t)ls->frames_in,
	              "frames_out", (json_int_t)ls->frames_out,
	              "bytes_in", (json_int_t)ls->bytes_in,
	              "bytes_out", (json_int_t)ls->bytes_out,
	              "bad_frames", (json_int_t)ls->bad,
	              "stale_frames", (json_int_t)ls->stale,
	              "echoed_frames", (json_int_t)ls->echoed,
	              "links_up", (json_int_t)ls->ups,
	              "queued_bytes", (json_int_t)xmq_chan_queued(&d->chan));
	if (o == NULL)
		return NULL;
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}
