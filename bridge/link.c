/* SPDX-License-Identifier: MIT */
/*
 * link.c - the handshake, epoch and keepalive of docs/protocol.md section 3.
 *
 * Everything here follows from two facts about a PV channel: bytes from
 * before a (re)connection may still arrive (QEMU's backlog, a tty's echo, a
 * frame cut by a restart), and nothing tells either side that the other one
 * went away. So each frame is checked for direction and epoch before anyone
 * sees it, a new epoch is drawn every time either side restarts, and the
 * initiator pings when the line is quiet.
 *
 * One uv_timer ticks once a second while the link is started; it resends
 * HELLO while the initiator waits, sends PING when the line was quiet for a
 * keepalive, and declares the peer lost after three keepalives of silence.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/link.h"

#define TICK_MS 1000
#define KEEPALIVE_DEFAULT 10
#define KEEPALIVE_MAX 3600
#define PROBE_INTERVAL_MS 1000

static uint32_t random_u32(uint32_t not)
{
	uint32_t v = 0;

	/* uv_random() without a loop is synchronous and reads the kernel's
	 * CSPRNG; zero is reserved (HELLO's epoch), and the previous value is
	 * avoided so that a new epoch always differs from the old one. */
	while (v == 0 || v == not) {
		if (uv_random(NULL, NULL, &v, sizeof(v), 0, NULL) != 0)
			v = (uint32_t)uv_hrtime() ^ (uint32_t)(uintptr_t)&v;
	}
	return v;
}

static uint64_t now_ms(const xmq_link_t *l)
{
	return uv_now(l->timer.loop);
}

static uint8_t own_dir(const xmq_link_t *l)
{
	return l->role == XMQ_LINK_INITIATOR ? XMQ_DIR_UP : XMQ_DIR_DOWN;
}

static uint16_t keepalive_s(const xmq_link_t *l)
{
	return l->role == XMQ_LINK_INITIATOR ? l->opts.keepalive : l->peer_keepalive;
}

void xmq_link_hdr(const xmq_link_t *l, uint8_t type, uint16_t stream, xmq_hdr_t *h)
{
	h->dir = own_dir(l);
	h->type = type;
	h->stream = stream;
	h->epoch = type == XMQ_T_HELLO ? 0 : l->epoch;
}

/* Hand a wire image to the owner's transport; counts it. */
static int emit(xmq_link_t *l, xmq_wire_t *w)
{
	size_t len = w->len;
	int err = l->ops->write(l, w);

	if (err == 0) {
		l->stats.frames_out++;
		l->stats.bytes_out += len;
	}
	return err;
}

static void send_hello(xmq_link_t *l)
{
	xmq_hdr_t h;
	xmq_hello_t b = {
		.version_min = XMQ_WIRE_VERSION,
		.version_max = XMQ_WIRE_VERSION,
		.nonce = l->nonce,
		.max_frame = l->opts.max_frame,
		.keepalive = l->role == XMQ_LINK_INITIATOR ? l->opts.keepalive : 0,
	};
	xmq_wire_t w;

	xmq_link_hdr(l, XMQ_T_HELLO, 0, &h);
	if (xmq_encode_hello(&h, &b, &w) == 0)
		(void)emit(l, &w);
}

static void send_hello_ack(xmq_link_t *l)
{
	xmq_hdr_t h;
	xmq_hello_ack_t b = {
		.version = XMQ_WIRE_VERSION,
		.nonce = l->nonce,
		.max_frame = l->opts.max_frame,
		.max_streams = l->opts.max_streams,
	};
	xmq_wire_t w;

	xmq_link_hdr(l, XMQ_T_HELLO_ACK, 0, &h);
	if (xmq_encode_hello_ack(&h, &b, &w) == 0)
		(void)emit(l, &w);
}

static void send_empty(xmq_link_t *l, uint8_t type)
{
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(l, type, 0, &h);
	if (xmq_encode_empty(&h, &w) == 0)
		(void)emit(l, &w);
}

/* Responder: ask the initiator to start over, at most once a second. */
static void probe(xmq_link_t *l)
{
	uint64_t now = now_ms(l);

	if (l->last_probe != 0 && now - l->last_probe < PROBE_INTERVAL_MS)
		return;
	l->last_probe = now;
	send_hello(l);
}

/* End the current epoch, telling the owner if there was one. */
static void go_down(xmq_link_t *l, int err)
{
	if (!l->up)
		return;
	l->up = false;
	l->epoch = 0;
	l->peer_max_frame = 0;
	l->stats.downs++;
	l->ops->down(l, err);
}

/* Initiator: a fresh nonce and a HELLO now (then one per tick). */
static void begin_handshake(xmq_link_t *l)
{
	l->nonce = random_u32(l->nonce);
	send_hello(l);
}

static void on_tick(uv_timer_t *t)
{
	xmq_link_t *l = t->data;
	uint64_t now = now_ms(l);
	uint64_t ka = (uint64_t)keepalive_s(l) * 1000;

	if (!l->started || l->closing)
		return;
	if (l->role == XMQ_LINK_INITIATOR && !l->up) {
		send_hello(l);
		return;
	}
	if (!l->up || ka == 0)
		return;
	if (now - l->last_rx >= 3 * ka) {
		go_down(l, -ETIMEDOUT);
		if (l->started && !l->closing && l->role == XMQ_LINK_INITIATOR)
			begin_handshake(l);
		return;
	}
	if (l->role == XMQ_LINK_INITIATOR && now - l->last_rx >= ka &&
	    now - l->last_ping >= ka) {
		l->last_ping = now;
		send_empty(l, XMQ_T_PING);
	}
}

int xmq_link_init(uv_loop_t *loop, xmq_link_t *l, xmq_link_role_t role,
                  const xmq_link_opts_t *opts, const xmq_link_ops_t *ops,
                  void *data)
{
	int err;

	memset(l, 0, sizeof(*l));
	err = uv_timer_init(loop, &l->timer);
	if (err != 0)
		return err;
	l->timer.data = l;
	l->role = role;
	l->ops = ops;
	l->data = data;
	if (opts != NULL)
		l->opts = *opts;
	if (l->opts.max_frame == 0 || l->opts.max_frame > XMQ_FRAME_MAX)
		l->opts.max_frame = XMQ_FRAME_MAX;
	if (l->opts.max_frame < XMQ_MAX_FRAME_MIN)
		l->opts.max_frame = XMQ_MAX_FRAME_MIN;
	if (l->opts.keepalive == 0)
		l->opts.keepalive = KEEPALIVE_DEFAULT;
	if (l->opts.max_streams == 0)
		l->opts.max_streams = 65535;
	xmq_deframer_init(&l->deframer);
	return 0;
}

void xmq_link_start(xmq_link_t *l)
{
	if (l->closing)
		return;
	go_down(l, -ECONNRESET);
	xmq_deframer_reset(&l->deframer);
	l->started = true;
	l->last_rx = now_ms(l);
	l->last_probe = 0;
	(void)uv_timer_start(&l->timer, on_tick, TICK_MS, TICK_MS);
	if (l->role == XMQ_LINK_INITIATOR) {
		begin_handshake(l);
	} else {
		l->nonce = 0;
		probe(l);
	}
}

void xmq_link_stop(xmq_link_t *l)
{
	l->started = false;
	(void)uv_timer_stop(&l->timer);
	xmq_deframer_reset(&l->deframer);
	go_down(l, 0);
}

void xmq_link_restart(xmq_link_t *l)
{
	if (!l->started || l->closing)
		return;
	go_down(l, 0);
	if (l->role == XMQ_LINK_INITIATOR) {
		begin_handshake(l);
	} else {
		l->nonce = 0;
		l->last_probe = 0;
		probe(l);
	}
}

/* ---- receiving ---------------------------------------------------------- */

static void drop(xmq_link_t *l, int err, const xmq_frame_t *f)
{
	if (err == XMQ_ESTALE)
		l->stats.stale++;
	else
		l->stats.bad++;
	if (l->ops->dropped != NULL)
		l->ops->dropped(l, err, f);
}

static void on_hello(xmq_link_t *l, const xmq_frame_t *f)
{
	xmq_hello_t b;
	int err = xmq_decode_hello(f, &b);

	if (err != 0) {
		drop(l, err, f);
		return;
	}
	if (l->role == XMQ_LINK_INITIATOR) {
		/* A probe: the responder (re)started and knows nothing of us.
		 * While we are still waiting for our answer, the same HELLO
		 * again is enough (a new nonce would cost the responder an
		 * epoch for nothing when the probe crossed our HELLO). */
		l->last_rx = now_ms(l);
		if (!l->up) {
			send_hello(l);
			return;
		}
		go_down(l, -ECONNRESET);
		if (l->started && !l->closing)
			begin_handshake(l);
		return;
	}
	if (b.version_min > XMQ_WIRE_VERSION || b.version_max < XMQ_WIRE_VERSION) {
		drop(l, -EPROTONOSUPPORT, f);
		return;
	}
	l->last_rx = now_ms(l);
	if (l->up && b.nonce == l->nonce) {
		/* The initiator repeated its HELLO before our answer arrived. */
		send_hello_ack(l);
		return;
	}
	go_down(l, -ECONNRESET);
	if (!l->started || l->closing)
		return;
	l->nonce = b.nonce;
	l->epoch = random_u32(l->epoch);
	l->peer_keepalive = b.keepalive > KEEPALIVE_MAX ? KEEPALIVE_MAX : b.keepalive;
	if (l->peer_keepalive == 0)
		l->peer_keepalive = KEEPALIVE_DEFAULT;
	l->peer_max_frame = b.max_frame > XMQ_FRAME_MAX ? XMQ_FRAME_MAX : b.max_frame;
	l->up = true;
	l->stats.ups++;
	send_hello_ack(l);
	l->ops->up(l);
}

static void on_hello_ack(xmq_link_t *l, const xmq_frame_t *f)
{
	xmq_hello_ack_t b;
	int err = xmq_decode_hello_ack(f, &b);

	if (err != 0 || f->hdr.epoch == 0) {
		drop(l, err != 0 ? err : -EBADMSG, f);
		return;
	}
	if (b.nonce != l->nonce || b.version != XMQ_WIRE_VERSION) {
		drop(l, XMQ_ESTALE, f);
		return;
	}
	l->last_rx = now_ms(l);
	if (l->up && f->hdr.epoch == l->epoch)
		return;
	/* Same nonce, new epoch: the responder lost our state (it restarted
	 * and answered a HELLO of ours it found in its backlog). */
	go_down(l, -ECONNRESET);
	if (!l->started || l->closing)
		return;
	l->epoch = f->hdr.epoch;
	l->peer_max_frame = b.max_frame > XMQ_FRAME_MAX ? XMQ_FRAME_MAX : b.max_frame;
	l->peer_max_streams = b.max_streams;
	l->last_ping = 0;
	l->up = true;
	l->stats.ups++;
	l->ops->up(l);
}

/* Route one checked frame. */
static void on_frame(xmq_link_t *l, const xmq_frame_t *f)
{
	const xmq_hdr_t *h = &f->hdr;

	if (h->dir == own_dir(l)) {
		l->stats.echoed++;
		return;
	}
	switch (h->type) {
	case XMQ_T_HELLO:
		on_hello(l, f);
		return;
	case XMQ_T_HELLO_ACK:
		if (l->role != XMQ_LINK_INITIATOR || h->stream != 0) {
			drop(l, -EPROTO, f);
			return;
		}
		on_hello_ack(l, f);
		return;
	default:
		break;
	}
	if (!l->up || h->epoch != l->epoch) {
		drop(l, XMQ_ESTALE, f);
		if (l->role == XMQ_LINK_RESPONDER)
			probe(l);
		return;
	}
	if (h->type == XMQ_T_PING || h->type == XMQ_T_PONG) {
		if (h->stream != 0 || f->body_len != 0) {
			drop(l, -EBADMSG, f);
			return;
		}
		l->last_rx = now_ms(l);
		if (h->type == XMQ_T_PING)
			send_empty(l, XMQ_T_PONG);
		return;
	}
	if (h->stream == 0) {
		drop(l, -EPROTO, f);
		return;
	}
	l->last_rx = now_ms(l);
	l->ops->frame(l, f);
}

void xmq_link_feed(xmq_link_t *l, const uint8_t *data, size_t len)
{
	xmq_frame_t f;
	int rc;

	if (!l->started || l->closing)
		return;
	l->stats.bytes_in += len;
	l->feeding++;
	xmq_deframer_feed(&l->deframer, data, len);
	while (l->started && !l->closing) {
		rc = xmq_deframer_next(&l->deframer, &f);
		if (rc == 0)
			break;
		if (rc < 0) {
			drop(l, rc, NULL);
			continue;
		}
		l->stats.frames_in++;
		on_frame(l, &f);
	}
	l->feeding--;
}

int xmq_link_write(xmq_link_t *l, xmq_wire_t *w)
{
	if (!l->up || l->closing) {
		free(w->data);
		w->data = NULL;
		return -ENOTCONN;
	}
	return emit(l, w);
}

uint32_t xmq_link_peer_max_frame(const xmq_link_t *l)
{
	return l->up ? l->peer_max_frame : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	xmq_link_t *l = h->data;

	xmq_deframer_dispose(&l->deframer);
	if (l->close_cb != NULL)
		l->close_cb(l);
}

void xmq_link_close(xmq_link_t *l, void (*cb)(xmq_link_t *l))
{
	if (l->closing)
		return;
	l->started = false;
	l->up = false;
	l->closing = true;
	l->close_cb = cb;
	uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}
