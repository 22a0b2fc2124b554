/* SPDX-License-Identifier: MIT */
/*
 * frame_internal.h - the wire rules the parts of the codec share (frame.c,
 * frame_decode.c, frame_encode.c, deframer.c): the bits a frame may set,
 * which types travel on stream 0, which CLOSE reasons a direction may give,
 * the CRC, and big-endian reads. Everything else includes bridge/frame.h.
 */
#ifndef XMQ_BRIDGE_FRAME_INTERNAL_H
#define XMQ_BRIDGE_FRAME_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/frame.h"

#define FLAGS_DIR 0x01
#define OPEN_FLAGS_ALL 0x1F
#define OPEN_FLAGS_WILL_BITS (XMQ_OPEN_WILL_RETAIN | 0x18)
#define OPEN_ACK_FLAGS_ALL XMQ_OPEN_ACK_SESSION_PRESENT
#define PUB_FLAGS_ALL 0x0F
#define SUB_OPT_RESERVED 0xC0
#define SUB_OPT_QOS(o) ((o) & 0x03)
#define SUB_OPT_RH(o) (((o) >> 4) & 0x03)

static inline uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Whether type is a link frame (HELLO, HELLO_ACK, PING, PONG): those travel
 * on stream 0, every other type on a session's stream. */
bool xmq__frame_is_link_type(uint8_t type);

/* Whether a CLOSE travelling in direction dir may give reason: Dom0 may
 * give any, a DomU only normal (0x00) or with will (0x04). */
bool xmq__frame_close_reason_valid(uint8_t dir, uint8_t reason);

/* The CRC-32 of the n bytes at p (n <= XMQ_FRAME_MAX). */
uint32_t xmq__frame_crc(const uint8_t *p, size_t n);

#endif /* XMQ_BRIDGE_FRAME_INTERNAL_H */
