/* SPDX-License-Identifier: MIT */
/*
 * deframer.c - cuts the byte stream of a channel into checked frames
 * (docs/protocol.md, sections 1 and 2): COBS, length, CRC and the reserved
 * bits of the header. Frame bodies are left to the decoders (frame_decode.c).
 *
 * A frame fed whole is decoded straight from the caller's bytes; only one
 * that arrives in pieces is gathered in a buffer first. Both buffers grow
 * with the largest frame seen, so that a link of small frames stays small,
 * and a frame too long to be valid is dropped before it is stored.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/deframer.h"
#include "bridge/frame_internal.h"

/* COBS bytes of the largest frame, without the delimiters. */
#define WIRE_MAX (XMQ_WIRE_LEN(XMQ_FRAME_MAX) - 2)
/* First size of the deframer's buffers: enough for PINGs and acks. */
#define BUF_START 256

void xmq_deframer_init(xmq_deframer_t *d)
{
	memset(d, 0, sizeof(*d));
}

void xmq_deframer_dispose(xmq_deframer_t *d)
{
	free(d->buf);
	free(d->frame);
	memset(d, 0, sizeof(*d));
}

void xmq_deframer_reset(xmq_deframer_t *d)
{
	d->len = 0;
	d->skipping = false;
	d->in = NULL;
	d->in_len = 0;
}

void xmq_deframer_feed(xmq_deframer_t *d, const uint8_t *data, size_t len)
{
	d->in = data;
	d->in_len = len;
}

/*
 * Makes *buf hold at least need bytes (need <= max), doubling from BUF_START
 * so that a link carrying only small frames keeps small buffers. *buf and
 * *cap are unchanged on failure.
 */
static int grow(uint8_t **buf, size_t *cap, size_t need, size_t max)
{
	size_t n = *cap > 0 ? *cap : BUF_START;
	uint8_t *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	if (n > max)
		n = max;
	p = realloc(*buf, n);
	if (p == NULL)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static void consume(xmq_deframer_t *d, size_t n)
{
	d->in += n;
	d->in_len -= n;
}

/* Checks and decodes the n COBS bytes of one frame into d->frame. */
static int frame_decode(xmq_deframer_t *d, const uint8_t *src, size_t n, xmq_frame_t *f)
{
	const uint8_t *p;
	long m;
	int err;

	if (n > WIRE_MAX)
		return -EMSGSIZE;
	/* A frame decodes to fewer bytes than its encoding takes. */
	err = grow(&d->frame, &d->frame_cap, n, WIRE_MAX);
	if (err < 0)
		return err;
	m = xmq_cobs_decode(src, n, d->frame);
	if (m < 0)
		return (int)m;
	if (m > XMQ_FRAME_MAX)
		return -EMSGSIZE;
	if (m < XMQ_FRAME_MIN)
		return -EBADMSG;
	p = d->frame;
	if (xmq__frame_crc(p, (size_t)m - XMQ_CRC_LEN) != be32(p + m - XMQ_CRC_LEN))
		return -EBADMSG;
	if (p[0] & ~FLAGS_DIR)
		return -EBADMSG;
	f->hdr.dir = p[0] & FLAGS_DIR;
	f->hdr.type = p[1];
	f->hdr.stream = be16(p + 2);
	f->hdr.epoch = be32(p + 4);
	f->body = p + XMQ_HDR_LEN;
	f->body_len = (size_t)m - XMQ_FRAME_MIN;
	f->len = (size_t)m;
	return 1;
}

/*
 * Drops the frame being received: the n bytes before the next delimiter, and
 * the delimiter if it was fed, else everything up to it as it arrives.
 */
static int drop(xmq_deframer_t *d, size_t n, bool delim, int err)
{
	d->len = 0;
	consume(d, n);
	if (delim)
		consume(d, 1);
	else
		d->skipping = true;
	return err;
}

int xmq_deframer_next(xmq_deframer_t *d, xmq_frame_t *f)
{
	while (d->in_len > 0) {
		const uint8_t *delim = memchr(d->in, 0, d->in_len);
		size_t n = delim != NULL ? (size_t)(delim - d->in) : d->in_len;
		const uint8_t *src = d->in;
		int err;

		if (d->skipping) {
			consume(d, n);
			if (delim != NULL) {
				consume(d, 1);
				d->skipping = false;
			}
			continue;
		}
		if (d->len == 0 && delim != NULL) {
			/* The whole frame was fed at once: no need to copy it. */
			consume(d, n + 1);
			if (n == 0)
				continue;  /* two delimiters in a row */
			return frame_decode(d, src, n, f);
		}
		if (n > WIRE_MAX - d->len)
			return drop(d, n, delim != NULL, -EMSGSIZE);
		err = grow(&d->buf, &d->cap, d->len + n, WIRE_MAX);
		if (err < 0)
			return drop(d, n, delim != NULL, err);
		memcpy(d->buf + d->len, src, n);
		d->len += n;
		consume(d, n);
		if (delim == NULL)
			break;
		consume(d, 1);
		n = d->len;
		d->len = 0;
		return frame_decode(d, d->buf, n, f);
	}
	return 0;
}
