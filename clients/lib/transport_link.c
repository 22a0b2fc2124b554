/* SPDX-License-Identifier: MIT */
/*
 * transport_link.c - the agent: and hvc: transports: the channel protocol
 * (docs/protocol.md) spoken as an initiator, over the agent's Unix socket or
 * over a PV channel's tty that this one program owns.
 *
 * One chan (bridge/chan.c) brings the bytes back after every failure; one
 * link (bridge/link.c) on it fixes an epoch with the peer; one session, on
 * stream 1, lives in that epoch. Each time the link comes up, the session is
 * opened again (section 6): OPEN, then nothing on the stream until OPEN_ACK.
 * A refusal or a CLOSE from the peer leaves the link up and the stream
 * closed; the OPEN is tried again after a backoff, longer when another
 * client took our application name, so that two clients with the same name
 * do not take it from each other in a tight loop.
 *
 * Noise on a channel can destroy a frame within an epoch, so what gets no
 * answer goes again (XMQ_RESEND_MS): the OPEN every 5 s until OPEN_ACK,
 * then, once a second while anything waits for an answer, whatever the core
 * finds due (xmq__client_resend). One timer serves every step in turn, as
 * the state says: the backoff, the wait for OPEN_ACK, the resend tick, the
 * wait for a CLOSE to be written.
 *
 * The core (client.c) decides what to send; this file only builds frames,
 * checks that they fit in what the peer accepts, and turns what arrives into
 * calls to the core.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "bridge/chan.h"
#include "bridge/error.h"
#include "bridge/frame.h"
#include "bridge/link.h"
#include "clients/lib/client.h"

#define STREAM 1
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define TAKEOVER_MS 5000
/* A session that lasted this long was not part of a fight over its name. */
#define STABLE_MS 30000
/* How long a closing client waits for what it wrote (its CLOSE last) to
 * leave: long enough for a full queue to drain over a slow channel, short
 * enough not to hang on a peer that stopped reading. */
#define CLOSE_WAIT_MS 2000

typedef enum state {
	ST_DOWN,     /* no link: waiting for the handshake */
	ST_OPENING,  /* OPEN sent, waiting for OPEN_ACK */
	ST_OPEN,
	ST_WAITING,  /* refused or closed by the peer: OPEN again after a backoff */
	ST_CLOSING
} state_t;

typedef struct lt {
	xmq_client_t *c;
	const xmq__params_t *p;
	xmq_chan_t chan;
	xmq_link_t link;
	uv_timer_t timer;        /* one at a time: see the top of the file */
	state_t state;
	bool opened_once;        /* an OPEN was accepted: later ones resume */
	bool open_repeated;      /* the OPEN waiting for OPEN_ACK went twice */
	uint16_t peer_receive_max;
	uint32_t last_max_frame; /* the peer's, as last known */
	unsigned backoff_ms;
	uint8_t last_reason;     /* why the stream was last closed */
	uint64_t open_since;
	unsigned handles;        /* chan, link and timer still to release */
	bool notify;             /* tell the core once released */
} lt_t;

static void send_open(lt_t *l, bool again);

/* ---- teardown -------------------------------------------------------------- */

static void released(lt_t *l)
{
	xmq_client_t *c = l->c;
	bool notify = l->notify;

	if (--l->handles > 0)
		return;
	free(l);
	if (notify)
		xmq__client_closed(c);
}

static void on_link_closed(xmq_link_t *link)
{
	released(link->data);
}

static void on_timer_closed(uv_handle_t *h)
{
	released(h->data);
}

static void on_chan_closed(xmq_chan_t *chan)
{
	released(chan->data);
}

/* Close every handle; l is freed when the last one is released. */
static void release(lt_t *l)
{
	l->handles = 3;
	xmq_link_close(&l->link, on_link_closed);
	xmq_chan_close(&l->chan);
	uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}

/* ---- writing ------------------------------------------------------------ */

/* The decoded size of a PUBLISH frame for m, as frame.c would encode it. */
static size_t publish_frame_len(const xmq_message_t *m)
{
	const xmq_props_t *p = &m->props;
	size_t n = XMQ_FRAME_MIN + 1 + 2 + (2 + strlen(m->topic) + 1) + 2;
	size_t i;

	if (p->has_payload_format)
		n += 2;
	if (p->has_message_expiry)
		n += 5;
	if (p->content_type != NULL)
		n += 1 + 2 + strlen(p->content_type) + 1;
	if (p->response_topic != NULL)
		n += 1 + 2 + strlen(p->response_topic) + 1;
	if (p->correlation_data != NULL)
		n += 1 + 2 + p->correlation_len;
	for (i = 0; i < p->user_count; i++)
		n += 1 + 2 + strlen(p->user[i].name) + 1 + 2 + strlen(p->user[i].value) + 1;
	return n + m->payload_len;
}

/* The largest frame the peer takes: now if the link is up, else as it was. */
static uint32_t max_frame(const lt_t *l)
{
	uint32_t max = xmq_link_peer_max_frame(&l->link);

	if (max == 0)
		max = l->last_max_frame;
	return max != 0 && max < XMQ_FRAME_MAX ? max : XMQ_FRAME_MAX;
}

static int write_frame(lt_t *l, xmq_wire_t *w)
{
	return xmq_link_write(&l->link, w);
}

static void send_close(lt_t *l, uint8_t reason)
{
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&l->link, XMQ_T_CLOSE, STREAM, &h);
	if (xmq_encode_close(&h, reason, &w) == 0)
		(void)write_frame(l, &w);
}

static void send_puback(lt_t *l, uint16_t packet_id, uint8_t reason)
{
	xmq_puback_t b = { .packet_id = packet_id, .reason = reason };
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&l->link, XMQ_T_PUBACK, STREAM, &h);
	if (xmq_encode_puback(&h, &b, &w) == 0)
		(void)write_frame(l, &w);
}

/* ---- the session ------------------------------------------------------- */

static void on_backoff(uv_timer_t *t)
{
	lt_t *l = t->data;

	if (l->state == ST_WAITING && xmq_link_is_up(&l->link))
		send_open(l, false);
}

/* Stream closed by the peer: wait, then OPEN again (if the link is up). */
static void wait_and_reopen(lt_t *l, uint8_t reason)
{
	uint64_t now = uv_now(l->timer.loop);
	unsigned min = reason == MQTT_RC_SESSION_TAKEN_OVER ? TAKEOVER_MS : BACKOFF_MIN_MS;
	unsigned delay;

	if (l->state == ST_OPEN && now - l->open_since >= STABLE_MS)
		l->backoff_ms = 0;
	delay = l->backoff_ms < min ? min : l->backoff_ms;
	l->backoff_ms = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
	l->last_reason = reason;
	l->state = ST_WAITING;
	(void)uv_timer_start(&l->timer, on_backoff, delay, 0);
}

/* No OPEN_ACK in time: the OPEN or its answer was lost on the line. */
static void on_open_unanswered(uv_timer_t *t)
{
	lt_t *l = t->data;

	if (l->state == ST_OPENING && xmq_link_is_up(&l->link))
		send_open(l, true);
}

/* again: the same OPEN, repeated because it got no answer. */
static void send_open(lt_t *l, bool again)
{
	const xmq__params_t *p = l->p;
	xmq_open_t o;
	xmq_hdr_t h;
	xmq_wire_t w;

	memset(&o, 0, sizeof(o));
	o.app = p->app;
	o.flags = l->opened_once || p->resume ? 0 : XMQ_OPEN_CLEAN_START;
	o.session_expiry = p->session_expiry;
	o.receive_max = p->receive_max;
	if (p->will != NULL) {
		o.has_will = true;
		o.will = *p->will;
	}
	xmq_link_hdr(&l->link, XMQ_T_OPEN, STREAM, &h);
	l->state = ST_OPENING;
	l->open_repeated = again;
	if (xmq_encode_open(&h, &o, &w) != 0 || write_frame(l, &w) != 0) {
		/* Checked at xmq_client_new(), so only memory or the transport
		 * can fail here: try again later. */
		wait_and_reopen(l, MQTT_RC_UNSPECIFIED);
		return;
	}
	(void)uv_timer_start(&l->timer, on_open_unanswered, XMQ_RESEND_MS, 0);
}

/* Once a second while something waits for an answer (OPEN state only). */
static void on_resend_tick(uv_timer_t *t)
{
	lt_t *l = t->data;

	/* Bytes still queued here have not reached the peer, which cannot
	 * have answered them; sending more would only lengthen the queue. */
	if (l->state != ST_OPEN || xmq_chan_queued(&l->chan) > 0)
		return;
	/* The core may call the application, which may close the client:
	 * then the timer is the close's. */
	if (!xmq__client_resend(l->c) && l->state == ST_OPEN)
		(void)uv_timer_stop(&l->timer);
}

/* Something that needs an answer went out: look for it in a while. */
static void resend_arm(lt_t *l)
{
	if (!uv_is_active((uv_handle_t *)&l->timer))
		(void)uv_timer_start(&l->timer, on_resend_tick, XMQ__RESEND_TICK_MS,
		                     XMQ__RESEND_TICK_MS);
}

/* An answer came: nothing left to wait for, nothing to look at. */
static void resend_disarm(lt_t *l)
{
	if (l->state == ST_OPEN && !xmq__client_waiting(l->c))
		(void)uv_timer_stop(&l->timer);
}

static void on_open_ack(lt_t *l, const xmq_frame_t *f)
{
	xmq_open_ack_t b;

	if (l->state != ST_OPENING || xmq_decode_open_ack(f, &b) != 0)
		return;
	if (b.reason != MQTT_RC_SUCCESS) {
		wait_and_reopen(l, b.reason);
		xmq__client_refused(l->c, b.reason);
		return;
	}
	/* A takeover fight goes on backing off until a session lasts. */
	if (l->last_reason != MQTT_RC_SESSION_TAKEN_OVER)
		l->backoff_ms = 0;
	(void)uv_timer_stop(&l->timer);
	l->state = ST_OPEN;
	l->opened_once = true;
	l->peer_receive_max = b.receive_max;
	l->open_since = uv_now(l->timer.loop);
	/* An answer to a repeated OPEN says the session is present even if
	 * the answer to the first, lost, said it was not: the core must then
	 * restore the subscriptions, which is harmless if they were kept. */
	xmq__client_opened(l->c, (b.flags & XMQ_OPEN_ACK_SESSION_PRESENT) && !l->open_repeated);
}

static void on_close(lt_t *l, const xmq_frame_t *f)
{
	uint8_t reason;
	bool was_open = l->state == ST_OPEN;

	if ((l->state != ST_OPEN && l->state != ST_OPENING) || xmq_decode_close(f, &reason) != 0)
		return;
	wait_and_reopen(l, reason);
	if (was_open)
		xmq__client_lost(l->c, reason);
	else
		xmq__client_refused(l->c, reason < MQTT_RC_UNSPECIFIED ?
		                          MQTT_RC_UNSPECIFIED : reason);
}

static void on_publish(lt_t *l, const xmq_frame_t *f)
{
	xmq_publish_t b;
	uint32_t epoch = l->link.epoch;
	int err = xmq_decode_publish(f, &b);

	if (err != 0) {
		/* A message the peer should not have sent: refuse it if it
		 * wants an answer, so that it does not wait for one forever. */
		if ((err == XMQ_ETOPIC || err == -ENOTSUP) && b.packet_id != 0)
			send_puback(l, b.packet_id, xmq__reason_from_err(err));
		return;
	}
	xmq__client_message(l->c, &b.msg);
	/* Acknowledged once the application had it, and only in the session
	 * it came from: after a close or a new epoch the peer forgot it. */
	if (b.msg.qos == 1 && l->state == ST_OPEN && l->link.epoch == epoch &&
	    !xmq__client_closing(l->c))
		send_puback(l, b.packet_id, MQTT_RC_SUCCESS);
}

static void on_suback(lt_t *l, const xmq_frame_t *f)
{
	xmq_suback_t b;

	if (xmq_decode_suback(f, &b) != 0)
		return;
	xmq__client_answered(l->c, f->hdr.type == XMQ_T_SUBACK, b.packet_id, (int)b.count,
	                     b.reason);
	resend_disarm(l);
}

/* ---- link and chan callbacks ------------------------------------------- */

static int on_link_write(xmq_link_t *link, xmq_wire_t *w)
{
	lt_t *l = link->data;

	return xmq_chan_write(&l->chan, w);
}

static void on_link_up(xmq_link_t *link)
{
	lt_t *l = link->data;

	if (l->state == ST_CLOSING)
		return;
	(void)uv_timer_stop(&l->timer);
	l->last_max_frame = xmq_link_peer_max_frame(link);
	send_open(l, false);
}

static void on_link_down(xmq_link_t *link, int err)
{
	lt_t *l = link->data;

	if (l->state == ST_CLOSING)
		return;
	(void)uv_timer_stop(&l->timer);
	l->state = ST_DOWN;
	xmq__client_lost(l->c, MQTT_RC_SERVER_UNAVAILABLE);
}

static void on_link_frame(xmq_link_t *link, const xmq_frame_t *f)
{
	lt_t *l = link->data;

	if (f->hdr.stream != STREAM || l->state == ST_CLOSING)
		return;
	if (f->hdr.type == XMQ_T_OPEN_ACK) {
		on_open_ack(l, f);
		return;
	}
	if (f->hdr.type == XMQ_T_CLOSE) {
		on_close(l, f);
		return;
	}
	if (l->state != ST_OPEN)
		return;
	switch (f->hdr.type) {
	case XMQ_T_PUBLISH:
		on_publish(l, f);
		break;
	case XMQ_T_PUBACK: {
		xmq_puback_t b;

		if (xmq_decode_puback(f, &b) == 0) {
			xmq__client_acked(l->c, b.packet_id, b.reason);
			resend_disarm(l);
		}
		break;
	}
	case XMQ_T_SUBACK:
	case XMQ_T_UNSUBACK:
		on_suback(l, f);
		break;
	default:
		break;
	}
}

static const xmq_link_ops_t link_ops = {
	.write = on_link_write,
	.up = on_link_up,
	.down = on_link_down,
	.frame = on_link_frame,
};

static void on_chan_open(xmq_chan_t *chan)
{
	lt_t *l = chan->data;

	xmq_link_start(&l->link);
}

static void on_chan_data(xmq_chan_t *chan, const uint8_t *buf, size_t len)
{
	lt_t *l = chan->data;

	xmq_link_feed(&l->link, buf, len);
}

static void on_chan_lost(xmq_chan_t *chan, int err)
{
	lt_t *l = chan->data;

	xmq_link_stop(&l->link);
}

static void on_chan_drain(xmq_chan_t *chan)
{
	lt_t *l = chan->data;

	if (l->state == ST_CLOSING && l->handles == 0) {
		(void)uv_timer_stop(&l->timer);
		release(l);
	}
}

static const xmq_chan_ops_t chan_ops = {
	.open = on_chan_open,
	.data = on_chan_data,
	.lost = on_chan_lost,
	.drain = on_chan_drain,
	.closed = on_chan_closed,
};

/* ---- the transport ------------------------------------------------------ */

static int lt_create(uv_loop_t *loop, xmq_client_t *c, const xmq__url_t *url,
                     const xmq__params_t *p, void **out)
{
	xmq_link_opts_t lo = { .keepalive = p->keepalive };
	lt_t *l = calloc(1, sizeof(*l));
	int err;

	if (l == NULL)
		return -ENOMEM;
	l->c = c;
	l->p = p;
	err = uv_timer_init(loop, &l->timer);
	if (err != 0) {
		free(l);
		return err;
	}
	l->timer.data = l;
	err = xmq_link_init(loop, &l->link, XMQ_LINK_INITIATOR, &lo, &link_ops, l);
	if (err != 0) {
		l->handles = 1;
		uv_close((uv_handle_t *)&l->timer, on_timer_closed);
		return err;
	}
	err = xmq_chan_init(loop, &l->chan, url->kind == XMQ__ADDR_TTY ? XMQ_CHAN_TTY :
	                    XMQ_CHAN_UNIX, url->path, &chan_ops, l);
	if (err != 0) {
		/* The handles close on their own; nobody is told. */
		l->handles = 2;
		xmq_link_close(&l->link, on_link_closed);
		uv_close((uv_handle_t *)&l->timer, on_timer_closed);
		return err;
	}
	*out = l;
	return 0;
}

static int lt_start(void *t)
{
	lt_t *l = t;

	xmq_chan_start(&l->chan);
	return 0;
}

static int lt_check_size(void *t, const xmq_message_t *m)
{
	return publish_frame_len(m) > max_frame(t) ? -EMSGSIZE : 0;
}

static int lt_publish(void *t, const xmq_message_t *m, uint16_t mid, int *tid)
{
	lt_t *l = t;
	xmq_hdr_t h;
	xmq_wire_t w;
	int err;

	if (l->state != ST_OPEN)
		return -ENOTCONN;
	if (publish_frame_len(m) > max_frame(l))
		return -EMSGSIZE;
	xmq_link_hdr(&l->link, XMQ_T_PUBLISH, STREAM, &h);
	err = xmq_encode_publish(&h, mid, m, &w);
	if (err == 0)
		err = write_frame(l, &w);
	if (err != 0)
		return err;
	*tid = mid;
	if (m->qos == 1)
		resend_arm(l);
	return 0;
}

static int lt_request(lt_t *l, uint8_t type, uint16_t mid, int count,
                      const char *const *filters, uint8_t options, int *tid)
{
	xmq_subscribe_t b;
	xmq_hdr_t h;
	xmq_wire_t w;
	int err;
	int i;

	if (l->state != ST_OPEN)
		return -ENOTCONN;
	if (count < 1 || count > XMQ_FILTERS_MAX)
		return -EINVAL;
	b.packet_id = mid;
	b.count = (unsigned)count;
	for (i = 0; i < count; i++) {
		b.filter[i] = filters[i];
		b.options[i] = options;
	}
	xmq_link_hdr(&l->link, type, STREAM, &h);
	if (type == XMQ_T_SUBSCRIBE)
		err = xmq_encode_subscribe(&h, &b, &w);
	else
		err = xmq_encode_unsubscribe(&h, &b, &w);
	if (err != 0)
		return err;
	/* The frame is built: now its size is known exactly. */
	if (w.len > XMQ_WIRE_LEN(max_frame(l))) {
		free(w.data);
		return -EMSGSIZE;
	}
	err = write_frame(l, &w);
	if (err != 0)
		return err;
	*tid = mid;
	resend_arm(l);
	return 0;
}

static int lt_subscribe(void *t, uint16_t mid, int count, const char *const *filters,
                        uint8_t options, int *tid)
{
	return lt_request(t, XMQ_T_SUBSCRIBE, mid, count, filters, options, tid);
}

static int lt_unsubscribe(void *t, uint16_t mid, int count, const char *const *filters,
                          int *tid)
{
	return lt_request(t, XMQ_T_UNSUBSCRIBE, mid, count, filters, 0, tid);
}

static unsigned lt_window(void *t)
{
	lt_t *l = t;

	return l->peer_receive_max != 0 ? l->peer_receive_max : 1;
}

static void on_close_wait(uv_timer_t *t)
{
	lt_t *l = t->data;

	if (l->handles == 0)
		release(l);
}

static void lt_close(void *t)
{
	lt_t *l = t;
	state_t was = l->state;

	l->state = ST_CLOSING;
	l->notify = true;
	(void)uv_timer_stop(&l->timer);
	if ((was == ST_OPEN || was == ST_OPENING) && xmq_link_is_up(&l->link))
		send_close(l, MQTT_RC_NORMAL_DISCONNECTION);
	/* Closing the chan now would throw away a CLOSE still queued: give it
	 * a moment to be written. */
	if (xmq_chan_queued(&l->chan) > 0) {
		(void)uv_timer_start(&l->timer, on_close_wait, CLOSE_WAIT_MS, 0);
		return;
	}
	release(l);
}

const xmq__transport_ops_t xmq__transport_link = {
	.create = lt_create,
	.start = lt_start,
	.check_size = lt_check_size,
	.publish = lt_publish,
	.subscribe = lt_subscribe,
	.unsubscribe = lt_unsubscribe,
	.window = lt_window,
	.close = lt_close,
	.keeps_inflight = false,
};
