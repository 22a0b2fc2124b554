/* SPDX-License-Identifier: MIT */
/*
 * link.h - one end of a channel link (docs/protocol.md, section 3): the HELLO
 * handshake that fixes an epoch each time either side (re)starts, the checks
 * that make stale and echoed frames harmless, and the keepalive that a tty
 * needs because it never reports that its peer went away.
 *
 * A link knows nothing of its transport. Its owner feeds it the bytes it
 * read (xmq_link_feed) and gives it a write function (ops->write); the link
 * hands back the session frames of the current epoch (ops->frame) and says
 * when the peer came up or went away (ops->up, ops->down). The same code runs
 * in xenmqd (responder on each domain's channel), in the agent (initiator on
 * its hvc, responder to its local clients) and in libxenmq (initiator).
 */
#ifndef XMQ_BRIDGE_LINK_H
#define XMQ_BRIDGE_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "bridge/deframer.h"
#include "bridge/frame.h"

typedef enum xmq_link_role {
	XMQ_LINK_INITIATOR,  /* the DomU side: sends HELLO, PINGs when idle */
	XMQ_LINK_RESPONDER   /* the Dom0 side: answers HELLO with an epoch */
} xmq_link_role_t;

typedef struct xmq_link xmq_link_t;

typedef struct xmq_link_ops {
	/* Write one wire image; steals w->data. Returns 0 or a negative error. */
	int (*write)(xmq_link_t *l, xmq_wire_t *w);
	/* The handshake completed: a new epoch begins, sessions may (re)open. */
	void (*up)(xmq_link_t *l);
	/* The epoch ended: every session of it is gone. err says why:
	 * -ETIMEDOUT (peer silent), -ECONNRESET (peer restarted), 0 (stopped). */
	void (*down)(xmq_link_t *l, int err);
	/* A session frame (stream != 0) of the current epoch, from the peer. */
	void (*frame)(xmq_link_t *l, const xmq_frame_t *f);
	/* Optional: a frame was dropped (err as xmq_deframer_next() or a decoder
	 * returns, XMQ_ESTALE for another epoch, -EPROTO for a frame that
	 * breaks the link rules). f is NULL when nothing could be decoded. For
	 * the owner's log and counters only. Echoes are counted, not reported. */
	void (*dropped)(xmq_link_t *l, int err, const xmq_frame_t *f);
} xmq_link_ops_t;

typedef struct xmq_link_opts {
	uint32_t max_frame;    /* largest frame accepted, announced to the peer;
	                          0: XMQ_FRAME_MAX */
	uint16_t keepalive;    /* initiator: seconds of silence before a PING;
	                          0: 10. The responder uses the initiator's. */
	uint16_t max_streams;  /* responder: announced in HELLO_ACK; 0: 65535 */
} xmq_link_opts_t;

typedef struct xmq_link_stats {
	uint64_t frames_in;
	uint64_t frames_out;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t bad;      /* garbage: COBS, CRC, length, malformed link frame */
	uint64_t stale;    /* another epoch or nonce */
	uint64_t echoed;   /* our own direction: echoed by a tty */
	uint64_t ups;
	uint64_t downs;
} xmq_link_stats_t;

struct xmq_link {
	uv_timer_t timer;
	xmq_link_role_t role;
	xmq_link_opts_t opts;
	const xmq_link_ops_t *ops;
	void *data;               /* the owner's */
	xmq_deframer_t deframer;
	bool started;             /* the transport is there */
	bool up;
	bool closing;
	unsigned feeding;         /* xmq_link_feed() depth, for safe close */
	uint32_t epoch;           /* 0 while down */
	uint32_t nonce;           /* initiator: of our HELLO; responder: of the
	                             HELLO the epoch answered */
	uint16_t peer_keepalive;  /* responder: from the initiator's HELLO */
	uint32_t peer_max_frame;  /* from the peer's HELLO or HELLO_ACK */
	uint16_t peer_max_streams;
	uint64_t last_rx;         /* uv_now() of the last good frame */
	uint64_t last_ping;
	uint64_t last_probe;
	xmq_link_stats_t stats;
	void (*close_cb)(xmq_link_t *l);
};

/*
 * xmq_link_init - make a stopped link; l is the caller's memory (embed it).
 * opts and ops are borrowed (ops must outlive the link). Returns 0 or a
 * libuv error.
 */
int xmq_link_init(uv_loop_t *loop, xmq_link_t *l, xmq_link_role_t role,
                  const xmq_link_opts_t *opts, const xmq_link_ops_t *ops,
                  void *data) XMQ_WUR;

/*
 * xmq_link_start - the transport is connected: the initiator starts its
 * handshake, the responder sends a probe. Restarts the handshake if the link
 * was started already.
 */
void xmq_link_start(xmq_link_t *l);

/* xmq_link_stop - the transport is gone: down (if up), timers off. */
void xmq_link_stop(xmq_link_t *l);

/*
 * xmq_link_restart - end the current epoch on purpose: the initiator starts
 * over with a new nonce, the responder goes down and probes its peer.
 */
void xmq_link_restart(xmq_link_t *l);

/* xmq_link_feed - bytes read from the transport (borrowed for the call). */
void xmq_link_feed(xmq_link_t *l, const uint8_t *data, size_t len);

static inline bool xmq_link_is_up(const xmq_link_t *l)
{
	return l->up;
}

/* The header of a frame sent on this link now (direction and epoch). */
void xmq_link_hdr(const xmq_link_t *l, uint8_t type, uint16_t stream, xmq_hdr_t *h);

/*
 * xmq_link_write - send a session frame built with xmq_link_hdr(); steals
 * w->data. Returns 0, -ENOTCONN while the link is down, or the transport's
 * error. The caller keeps frames within xmq_link_peer_max_frame().
 */
int xmq_link_write(xmq_link_t *l, xmq_wire_t *w);

/* The largest frame the peer accepts (0 while down). */
uint32_t xmq_link_peer_max_frame(const xmq_link_t *l);

/*
 * Within an epoch a frame can still be lost to noise on the line, so a
 * request the peer has not answered goes again (docs/protocol.md, section
 * 6): once it was last sent XMQ_RESEND_MS ago and the peer has answered
 * nothing else for as long, or XMQ_RESEND_MAX_MS ago whatever the peer did.
 * A channel that is slow but keeps answering (a long window of large
 * messages, a domain held to its max_byte_rate) is waited for rather than
 * loaded with copies; a frame lost in a steady stream still goes again.
 * Times are uv_now() milliseconds.
 */
#define XMQ_RESEND_MS 5000
#define XMQ_RESEND_MAX_MS 30000

static inline bool xmq_resend_due(uint64_t now, uint64_t sent_ms, uint64_t answered_ms)
{
	if (now - sent_ms >= XMQ_RESEND_MAX_MS)
		return true;
	return now - sent_ms >= XMQ_RESEND_MS && now - answered_ms >= XMQ_RESEND_MS;
}

/*
 * xmq_link_close - stop and release the link's handle; cb (may be NULL)
 * runs once it is released, after which the memory is the owner's again.
 * Safe from inside a callback of this link. ops->down is not called: the
 * owner is tearing down and knows.
 */
void xmq_link_close(xmq_link_t *l, void (*cb)(xmq_link_t *l));

#endif /* XMQ_BRIDGE_LINK_H */
