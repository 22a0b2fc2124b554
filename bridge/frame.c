/* SPDX-License-Identifier: MIT */
/*
 * frame.c - the channel wire codec (docs/protocol.md, sections 1, 2, 4, 5),
 * and the rules its parts share (frame_internal.h): which types travel on
 * stream 0, which CLOSE reasons each direction may give, the CRC, and the
 * names of frame types for logs. The parts: deframer.c cuts a byte stream
 * into checked frames, frame_decode.c has a decoder per frame body, and
 * frame_encode.c the encoders that build wire images.
 *
 * Who checks what. The codec checks everything a frame says about itself:
 * COBS, length, CRC, reserved bits, that the type sits on the right kind of
 * stream (0 for link frames, non-zero for session frames), the epoch of
 * HELLO (0) and HELLO_ACK (non-zero), every length and field rule of the
 * body, UTF-8, topic names and filters. It cannot know the state of the link
 * or of a session, so bridge/link.c checks the rest: which way a type may
 * travel (e.g. OPEN only up), that a frame is not our own echo, its epoch and
 * nonce against the current ones, the peer's announced max_frame, and that
 * PING and PONG have an empty body (there is no body to decode). The session
 * layers check packet ids against what is in flight and receive_max.
 */
#include <mqtt_protocol.h>
#include <zlib.h>

#include "bridge/frame.h"
#include "bridge/frame_internal.h"

bool xmq__frame_is_link_type(uint8_t type)
{
	return type == XMQ_T_HELLO || type == XMQ_T_HELLO_ACK ||
	       type == XMQ_T_PING || type == XMQ_T_PONG;
}

bool xmq__frame_close_reason_valid(uint8_t dir, uint8_t reason)
{
	return dir == XMQ_DIR_DOWN || reason == MQTT_RC_NORMAL_DISCONNECTION ||
	       reason == MQTT_RC_DISCONNECT_WITH_WILL_MSG;
}

uint32_t xmq__frame_crc(const uint8_t *p, size_t n)
{
	/* n <= XMQ_FRAME_MAX, so it fits zlib's uInt. */
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

/* "0x00" to "0x0f" and so on, each with its NUL: 5 bytes per name. */
#define HEX16(h) "0x" #h "0\0" "0x" #h "1\0" "0x" #h "2\0" "0x" #h "3\0" \
	"0x" #h "4\0" "0x" #h "5\0" "0x" #h "6\0" "0x" #h "7\0" \
	"0x" #h "8\0" "0x" #h "9\0" "0x" #h "a\0" "0x" #h "b\0" \
	"0x" #h "c\0" "0x" #h "d\0" "0x" #h "e\0" "0x" #h "f\0"

const char *xmq_type_name(uint8_t type)
{
	/* Unknown types get a name from a constant table, so that the
	 * function needs no buffer and stays safe to call from any thread. */
	static const char hex[] = HEX16(0) HEX16(1) HEX16(2) HEX16(3) HEX16(4) HEX16(5)
		HEX16(6) HEX16(7) HEX16(8) HEX16(9) HEX16(a) HEX16(b) HEX16(c) HEX16(d)
		HEX16(e) HEX16(f);

	switch (type) {
	case XMQ_T_HELLO: return "HELLO";
	case XMQ_T_HELLO_ACK: return "HELLO_ACK";
	case XMQ_T_PING: return "PING";
	case XMQ_T_PONG: return "PONG";
	case XMQ_T_OPEN: return "OPEN";
	case XMQ_T_OPEN_ACK: return "OPEN_ACK";
	case XMQ_T_CLOSE: return "CLOSE";
	case XMQ_T_PUBLISH: return "PUBLISH";
	case XMQ_T_PUBACK: return "PUBACK";
	case XMQ_T_SUBSCRIBE: return "SUBSCRIBE";
	case XMQ_T_SUBACK: return "SUBACK";
	case XMQ_T_UNSUBSCRIBE: return "UNSUBSCRIBE";
	case XMQ_T_UNSUBACK: return "UNSUBACK";
	default: return &hex[(size_t)type * 5];
	}
}
