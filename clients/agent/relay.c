/* SPDX-License-Identifier: MIT */
/*
 * relay.c - the frames between the channel and the clients (relay.h).
 *
 * Which frame may travel which way is checked here, by type, because the
 * agent sits between two links and must not pass on what neither end should
 * see: up go OPEN, CLOSE, PUBLISH, PUBACK, SUBSCRIBE and UNSUBSCRIBE; down go
 * OPEN_ACK, CLOSE, PUBLISH, PUBACK, SUBACK and UNSUBACK. Everything else is
 * checked by xenmqd (frames up) or by the library (frames down), which know
 * the rules and answer with the right reason code.
 */
#include <errno.h>
#include <stdio.h>

#include <mqtt_protocol.h>

#include "bridge/error.h"
#include "clients/agent/relay.h"

#define LOG_INTERVAL_MS 60000

/* Send f's body on link to, on stream, under to's header. */
static int forward(xmq_link_t *to, uint16_t stream, const xmq_frame_t *f)
{
	xmq_hdr_t h;
	xmq_wire_t w;
	int err;

	xmq_link_hdr(to, f->hdr.type, stream, &h);
	err = xmq_encode_rewrap(&h, f, &w);
	if (err != 0)
		return err;
	return xmq_link_write(to, &w);
}

static void send_close(xmq_link_t *to, uint16_t stream, uint8_t reason)
{
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(to, XMQ_T_CLOSE, stream, &h);
	if (xmq_encode_close(&h, reason, &w) == 0)
		(void)xmq_link_write(to, &w);
}

/* Answer an OPEN that the agent itself refuses, saying why in the log
 * (at most once a minute per client: an application may retry fast). */
static void refuse_open(xmq_agent_t *a, xmq_agent_client_t *c, uint16_t stream, uint8_t reason,
                        const char *app, const char *why)
{
	xmq_open_ack_t b = { .reason = reason };
	char q[XMQ_QUOTE_MAX];
	uint64_t skipped;
	xmq_hdr_t h;
	xmq_wire_t w;

	a->stats.open_refused++;
	if (xmq_throttle_pass(&c->refuse_log, xmq__agent_now(a), LOG_INTERVAL_MS,
	                      &skipped))
		xmq_log(LOG_WARNING, "client %u: refused app %s on stream %u: %s "
		        "(%llu more refused since the last warning)", c->id,
		        xmq_log_quote(q, app), stream, why,
		        (unsigned long long)skipped);
	xmq_link_hdr(&c->link, XMQ_T_OPEN_ACK, stream, &h);
	if (xmq_encode_open_ack(&h, &b, &w) == 0)
		(void)xmq_link_write(&c->link, &w);
}

/*
 * A PUBLISH too large for its receiver is dropped; if it is QoS 1, its
 * sender is told (PUBACK 0x95) so that its window does not stay taken.
 */
static void refuse_publish(xmq_link_t *back, uint16_t stream, const xmq_frame_t *f)
{
	xmq_puback_t b = { .reason = MQTT_RC_PACKET_TOO_LARGE };
	xmq_hdr_t h;
	xmq_wire_t w;

	if (f->hdr.type != XMQ_T_PUBLISH || f->body_len < 3 || XMQ_PUB_QOS(f->body[0]) != 1)
		return;
	b.packet_id = (uint16_t)(f->body[1] << 8 | f->body[2]);
	xmq_link_hdr(back, XMQ_T_PUBACK, stream, &h);
	if (xmq_encode_puback(&h, &b, &w) == 0)
		(void)xmq_link_write(back, &w);
}

/* Who sent a frame, for logs: client 0 is xenmqd. */
static const char *sender(unsigned client, char buf[32])
{
	if (client == 0)
		return "xenmqd";
	snprintf(buf, 32, "client %u", client);
	return buf;
}

static void unknown(xmq_agent_t *a, unsigned from, const xmq_frame_t *f)
{
	uint64_t skipped;
	char who[32];

	a->stats.unknown++;
	if (xmq_log_enabled(LOG_DEBUG) &&
	    xmq_throttle_pass(&a->unknown_log, xmq__agent_now(a), 1000, &skipped))
		xmq_log(LOG_DEBUG, "%s: dropped %s on stream %u: no such session "
		        "(%llu dropped in all)", sender(from, who),
		        xmq_type_name(f->hdr.type), f->hdr.stream,
		        (unsigned long long)a->stats.unknown);
}

static void wrong_way(xmq_agent_t *a, unsigned from, const xmq_frame_t *f)
{
	char who[32];

	a->stats.bad++;
	xmq_log(LOG_DEBUG, "%s: dropped %s on stream %u: not allowed that way",
	        sender(from, who), xmq_type_name(f->hdr.type), f->hdr.stream);
}

static void oversize(xmq_agent_t *a, unsigned to, const xmq_frame_t *f, uint32_t max)
{
	uint64_t skipped;
	char who[32];

	a->stats.oversize++;
	if (xmq_throttle_pass(&a->oversize_log, xmq__agent_now(a), LOG_INTERVAL_MS,
	                      &skipped))
		xmq_log(LOG_WARNING, "dropped %s of %zu bytes on its way to %s: "
		        "larger than the %u bytes it accepts (%llu dropped in all)",
		        xmq_type_name(f->hdr.type), f->len, sender(to, who),
		        (unsigned)max, (unsigned long long)a->stats.oversize);
}

/* ---- up: a client to the channel ------------------------------------------- */

/* End one session on the channel and forget it. */
static void end_route(xmq_agent_t *a, xmq_route_t *r, uint8_t reason)
{
	send_close(&a->link, r->chan, reason);
	xmq__routes_del(&a->routes, r);
}

static void open_up(xmq_agent_t *a, xmq_agent_client_t *c, xmq_route_t *r,
                    const xmq_frame_t *f)
{
	char q[XMQ_QUOTE_MAX];
	uint32_t max = xmq_link_peer_max_frame(&a->link);
	xmq_open_t o;
	int err;

	err = xmq_decode_open(f, &o);
	if (err == 0 && f->len > max)
		err = -EMSGSIZE;
	if (err != 0) {
		/* Refused: the stream is closed for the client, so the
		 * session it would have replaced ends too. */
		refuse_open(a, c, f->hdr.stream, xmq__reason_from_err(err), NULL,
		            xmq_strerror(err));
		if (r != NULL)
			end_route(a, r, MQTT_RC_NORMAL_DISCONNECTION);
		return;
	}
	if (r == NULL) {
		err = -ENOSPC;
		if (c->routes.count < XMQ_AGENT_CLIENT_STREAMS_MAX)
			err = xmq__routes_add(&a->routes, &c->routes, c, f->hdr.stream, &r);
		if (err != 0) {
			refuse_open(a, c, f->hdr.stream, err == -ENOSPC ?
			            MQTT_RC_QUOTA_EXCEEDED : MQTT_RC_SERVER_BUSY, o.app,
			            err == -ENOSPC ? "no session left on the channel" :
			            xmq_strerror(err));
			return;
		}
	}
	snprintf(r->app, sizeof(r->app), "%s", o.app);
	snprintf(c->last_app, sizeof(c->last_app), "%s", o.app);
	r->acked = false;
	xmq_log(LOG_INFO, "client %u: app %s opens stream %u as channel stream %u",
	        c->id, xmq_log_quote(q, r->app), r->local, r->chan);
	(void)forward(&a->link, r->chan, f);
}

static void close_up(xmq_agent_t *a, xmq_agent_client_t *c, xmq_route_t *r,
                     const xmq_frame_t *f)
{
	char q[XMQ_QUOTE_MAX];
	uint8_t reason;

	/* A CLOSE xenmqd could not read would leave its session open: send
	 * a good one, and take a broken one for an abnormal end. */
	if (xmq_decode_close(f, &reason) != 0)
		reason = MQTT_RC_DISCONNECT_WITH_WILL_MSG;
	xmq_log(LOG_INFO, "client %u: app %s closes its session (0x%02x)", c->id,
	        xmq_log_quote(q, r->app), reason);
	end_route(a, r, reason);
}

void xmq__relay_up(xmq_agent_t *a, xmq_agent_client_t *c, const xmq_frame_t *f)
{
	xmq_route_t *r = xmq__route_list_find(&c->routes, f->hdr.stream);
	uint32_t max;

	switch (f->hdr.type) {
	case XMQ_T_OPEN:
		open_up(a, c, r, f);
		return;
	case XMQ_T_CLOSE:
	case XMQ_T_PUBLISH:
	case XMQ_T_PUBACK:
	case XMQ_T_SUBSCRIBE:
	case XMQ_T_UNSUBSCRIBE:
		break;
	default:
		wrong_way(a, c->id, f);
		return;
	}
	if (r == NULL) {
		/* Including another client's streams: ids are per client. */
		unknown(a, c->id, f);
		return;
	}
	if (f->hdr.type == XMQ_T_CLOSE) {
		close_up(a, c, r, f);
		return;
	}
	max = xmq_link_peer_max_frame(&a->link);
	if (f->len > max) {
		oversize(a, 0, f, max);
		refuse_publish(&c->link, r->local, f);
		return;
	}
	(void)forward(&a->link, r->chan, f);
}

void xmq__relay_end(xmq_agent_t *a, xmq_agent_client_t *c, uint8_t reason)
{
	while (c->routes.head != NULL)
		end_route(a, c->routes.head, reason);
}

/* ---- down: the channel to a client ------------------------------------------ */

/* QoS 0 to a client that does not keep up: dropped, as MQTT allows. */
static bool drop_qos0(xmq_agent_t *a, xmq_agent_client_t *c, const xmq_frame_t *f)
{
	uint64_t skipped;

	if (f->hdr.type != XMQ_T_PUBLISH || f->body_len < 1 || XMQ_PUB_QOS(f->body[0]) != 0 ||
	    xmq_chan_queued(&c->chan) <= a->opts.client_queue_max)
		return false;
	c->qos0_dropped++;
	a->stats.qos0_dropped++;
	if (xmq_throttle_pass(&c->drop_log, xmq__agent_now(a), LOG_INTERVAL_MS, &skipped))
		xmq_log(LOG_WARNING, "client %u: does not keep up, dropping QoS 0 "
		        "messages to it (%llu dropped so far)", c->id,
		        (unsigned long long)c->qos0_dropped);
	return true;
}

static void open_ack_down(xmq_agent_t *a, xmq_agent_client_t *c, xmq_route_t *r,
                          const xmq_frame_t *f)
{
	char q[XMQ_QUOTE_MAX];
	xmq_open_ack_t b;

	if (xmq_decode_open_ack(f, &b) != 0)
		b.reason = f->body_len > 0 ? f->body[0] : MQTT_RC_MALFORMED_PACKET;
	(void)forward(&c->link, r->local, f);
	if (b.reason < 0x80) {
		r->acked = true;
		xmq_log(LOG_INFO, "client %u: app %s: session open", c->id,
		        xmq_log_quote(q, r->app));
		return;
	}
	xmq_log(LOG_NOTICE, "client %u: app %s refused by xenmqd: %s", c->id,
	        xmq_log_quote(q, r->app), xmq_reason_string(b.reason));
	xmq__routes_del(&a->routes, r);
}

static void close_down(xmq_agent_t *a, xmq_agent_client_t *c, xmq_route_t *r,
                       const xmq_frame_t *f)
{
	char q[XMQ_QUOTE_MAX];
	uint8_t reason;

	if (xmq_decode_close(f, &reason) != 0)
		reason = f->body_len > 0 ? f->body[0] : MQTT_RC_UNSPECIFIED;
	(void)forward(&c->link, r->local, f);
	xmq_log(LOG_NOTICE, "client %u: app %s: session ended by xenmqd: %s", c->id,
	        xmq_log_quote(q, r->app), xmq_reason_string(reason));
	xmq__routes_del(&a->routes, r);
}

void xmq__relay_down(xmq_agent_t *a, const xmq_frame_t *f)
{
	xmq_route_t *r = xmq__routes_find(&a->routes, f->hdr.stream);
	xmq_agent_client_t *c;
	uint32_t max;

	switch (f->hdr.type) {
	case XMQ_T_OPEN_ACK:
	case XMQ_T_CLOSE:
	case XMQ_T_PUBLISH:
	case XMQ_T_PUBACK:
	case XMQ_T_SUBACK:
	case XMQ_T_UNSUBACK:
		break;
	default:
		wrong_way(a, 0, f);
		return;
	}
	/* Until its OPEN_ACK, a session hears nothing else: anything before
	 * is from a session that had the stream id before it. */
	if (r == NULL || (!r->acked && f->hdr.type != XMQ_T_OPEN_ACK &&
	                  f->hdr.type != XMQ_T_CLOSE)) {
		unknown(a, 0, f);
		return;
	}
	c = r->owner;
	max = xmq_link_peer_max_frame(&c->link);
	if (f->len > max) {
		oversize(a, c->id, f, max);
		refuse_publish(&a->link, r->chan, f);
		return;
	}
	switch (f->hdr.type) {
	case XMQ_T_OPEN_ACK:
		open_ack_down(a, c, r, f);
		return;
	case XMQ_T_CLOSE:
		close_down(a, c, r, f);
		return;
	default:
		break;
	}
	if (drop_qos0(a, c, f))
		return;
	(void)forward(&c->link, r->local, f);
}
