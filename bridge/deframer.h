/* SPDX-License-Identifier: MIT */
/*
 * deframer.h - the receiving end of the channel wire format (docs/protocol.md,
 * sections 1 and 2): cuts a byte stream into checked frames (bridge/frame.h)
 * for the decoders.
 *
 * Pure code: no I/O, no logging. A frame that fails its checks is dropped and
 * reported, and the stream goes on at the next delimiter, so that garbage or a
 * frame cut short costs that frame only.
 */
#ifndef XMQ_BRIDGE_DEFRAMER_H
#define XMQ_BRIDGE_DEFRAMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xenmq.h"
#include "bridge/frame.h"

/*
 * Reassembles frames from a byte stream. Feed it what was read, then call
 * xmq_deframer_next() until it returns 0. Its buffer grows on demand up to
 * XMQ_WIRE_LEN(XMQ_FRAME_MAX), so an idle link costs little memory.
 */
typedef struct xmq_deframer {
	uint8_t *buf;     /* wire bytes of the frame being received */
	size_t len;
	size_t cap;
	bool skipping;    /* dropping bytes up to the next delimiter */
	const uint8_t *in;  /* input not yet consumed (borrowed from the caller) */
	size_t in_len;
	uint8_t *frame;   /* decoded frame handed out by the last _next() */
	size_t frame_cap;
} xmq_deframer_t;

void xmq_deframer_init(xmq_deframer_t *d);

/* Idempotent; safe on a zeroed or half-used deframer. */
void xmq_deframer_dispose(xmq_deframer_t *d);

/* Forget a partial frame, e.g. when the transport reconnects. */
void xmq_deframer_reset(xmq_deframer_t *d);

/*
 * xmq_deframer_feed - hand over bytes just read (borrowed until
 * xmq_deframer_next() returns 0; feed again only then, as this replaces
 * any input not yet consumed).
 */
void xmq_deframer_feed(xmq_deframer_t *d, const uint8_t *data, size_t len);

/*
 * xmq_deframer_next - the next frame from what was fed.
 *
 * Returns 1 and fills *f (whose body stays valid until the next call or
 * dispose), 0 when the input is used up, or a negative error for a frame
 * that was dropped: -EMSGSIZE (longer than XMQ_FRAME_MAX), -EBADMSG (bad
 * COBS, too short, bad CRC or reserved flag bits set), -ENOMEM. After an
 * error, call again: the stream goes on at the next delimiter.
 */
int xmq_deframer_next(xmq_deframer_t *d, xmq_frame_t *f) XMQ_WUR;

#endif /* XMQ_BRIDGE_DEFRAMER_H */
