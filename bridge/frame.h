/* SPDX-License-Identifier: MIT */
/*
 * frame.h - the channel wire format (docs/protocol.md): COBS framing with a
 * CRC-32, the 8-byte header, and an encoder and a decoder for each body. The
 * deframer, which cuts a byte stream into frames, is bridge/deframer.h.
 *
 * Pure code: no I/O, no logging. Decoders never trust a length before
 * checking it against what is left of the frame, never allocate, and hand out
 * views (C strings, byte ranges) that point into the frame they decoded: those
 * stay valid as long as the frame's buffer does. Encoders allocate the whole
 * wire image (COBS bytes and the 0x00 delimiter) in one malloc'd buffer.
 */
#ifndef XMQ_BRIDGE_FRAME_H
#define XMQ_BRIDGE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xenmq.h"

#define XMQ_WIRE_VERSION 1

#define XMQ_FRAME_MAX 65536  /* header + body + CRC, decoded */
#define XMQ_HDR_LEN 8
#define XMQ_CRC_LEN 4
#define XMQ_FRAME_MIN (XMQ_HDR_LEN + XMQ_CRC_LEN)
#define XMQ_BODY_MAX (XMQ_FRAME_MAX - XMQ_FRAME_MIN)
#define XMQ_MAX_FRAME_MIN 256  /* smallest max_frame a HELLO may announce */

/* Wire bytes needed for a frame of n decoded bytes: a delimiter, COBS, and
 * another delimiter. The leading one ends whatever came before (garbage, a
 * frame cut short by a restart), so that it cannot swallow this frame. */
#define XMQ_WIRE_LEN(n) ((n) + (n) / 254 + 3)

enum xmq_dir {
	XMQ_DIR_UP = 0,    /* DomU to Dom0: initiator to responder */
	XMQ_DIR_DOWN = 1   /* Dom0 to DomU: responder to initiator */
};

enum xmq_type {
	XMQ_T_HELLO = 0x01,
	XMQ_T_HELLO_ACK = 0x02,
	XMQ_T_PING = 0x03,
	XMQ_T_PONG = 0x04,
	XMQ_T_OPEN = 0x10,
	XMQ_T_OPEN_ACK = 0x11,
	XMQ_T_CLOSE = 0x12,
	XMQ_T_PUBLISH = 0x20,
	XMQ_T_PUBACK = 0x21,
	XMQ_T_SUBSCRIBE = 0x30,
	XMQ_T_SUBACK = 0x31,
	XMQ_T_UNSUBSCRIBE = 0x32,
	XMQ_T_UNSUBACK = 0x33
};

/* OPEN flags */
#define XMQ_OPEN_CLEAN_START 0x01
#define XMQ_OPEN_WILL_RETAIN 0x02
#define XMQ_OPEN_WILL 0x04
#define XMQ_OPEN_WILL_QOS(f) (((f) >> 3) & 0x03)
/* OPEN_ACK flags */
#define XMQ_OPEN_ACK_SESSION_PRESENT 0x01
/* PUBLISH flags */
#define XMQ_PUB_QOS(f) ((f) & 0x03)
#define XMQ_PUB_RETAIN 0x04
#define XMQ_PUB_DUP 0x08

typedef struct xmq_hdr {
	uint8_t dir;      /* enum xmq_dir */
	uint8_t type;     /* enum xmq_type */
	uint16_t stream;  /* 0: the link; else an application session */
	uint32_t epoch;   /* 0 in HELLO */
} xmq_hdr_t;

/* A checked frame: its header and a view of its body. */
typedef struct xmq_frame {
	xmq_hdr_t hdr;
	const uint8_t *body;
	size_t body_len;
	size_t len;  /* decoded length of the whole frame, header and CRC included */
} xmq_frame_t;

/* A wire image made by an encoder: malloc'd, the caller frees data. */
typedef struct xmq_wire {
	uint8_t *data;
	size_t len;
} xmq_wire_t;

/* ---- bodies ------------------------------------------------------------ */

typedef struct xmq_hello {
	uint8_t version_min;
	uint8_t version_max;
	uint32_t nonce;
	uint32_t max_frame;
	uint16_t keepalive;  /* seconds */
} xmq_hello_t;

typedef struct xmq_hello_ack {
	uint8_t version;
	uint32_t nonce;
	uint32_t max_frame;
	uint16_t max_streams;
} xmq_hello_ack_t;

typedef struct xmq_open {
	const char *app;
	uint8_t flags;            /* XMQ_OPEN_* */
	uint32_t session_expiry;  /* seconds */
	uint16_t receive_max;
	bool has_will;            /* flags & XMQ_OPEN_WILL */
	xmq_message_t will;       /* qos and retain mirror the flags */
	xmq_user_prop_t will_user[XMQ_USER_PROPS_MAX];  /* will.props.user */
} xmq_open_t;

typedef struct xmq_open_ack {
	uint8_t reason;
	uint8_t flags;  /* XMQ_OPEN_ACK_* */
	uint16_t receive_max;
} xmq_open_ack_t;

/* After decoding, msg.props.user points into user[] (will_user[] for an
 * OPEN): a copy of the struct by value still points into the original. */
typedef struct xmq_publish {
	uint16_t packet_id;  /* 0 for QoS 0 */
	xmq_message_t msg;   /* qos, retain and dup mirror the flags */
	xmq_user_prop_t user[XMQ_USER_PROPS_MAX];  /* msg.props.user */
} xmq_publish_t;

typedef struct xmq_puback {
	uint16_t packet_id;
	uint8_t reason;
} xmq_puback_t;

/* SUBSCRIBE and UNSUBSCRIBE (options unused for the latter). */
typedef struct xmq_subscribe {
	uint16_t packet_id;
	unsigned count;  /* 1 .. XMQ_FILTERS_MAX */
	const char *filter[XMQ_FILTERS_MAX];
	uint8_t options[XMQ_FILTERS_MAX];
} xmq_subscribe_t;

/* SUBACK and UNSUBACK. */
typedef struct xmq_suback {
	uint16_t packet_id;
	unsigned count;  /* 1 .. XMQ_FILTERS_MAX */
	uint8_t reason[XMQ_FILTERS_MAX];
} xmq_suback_t;

/* ---- decoding bodies ----------------------------------------------------- */

/*
 * Each decoder checks a frame's body against docs/protocol.md and fills *out
 * with views into f->body. Returns 0 or:
 *   -EBADMSG    malformed (lengths, bad UTF-8, reserved bits, bad property,
 *               leftover bytes)
 *   XMQ_ETOPIC  a topic name (PUBLISH, will, response topic) is not valid
 *   XMQ_EFILTER a topic filter is not valid
 *   -ENOTSUP    QoS 2 (PUBLISH, will, subscription options)
 *   -EINVAL     f is not of the decoder's type
 * (in that order of precedence when several apply).
 * After XMQ_ETOPIC or -ENOTSUP from xmq_decode_publish(), out->packet_id and
 * out->msg.qos are valid, so that the caller can refuse the message with a
 * PUBACK. Otherwise *out is unspecified after a failure.
 */
int xmq_decode_hello(const xmq_frame_t *f, xmq_hello_t *out) XMQ_WUR;
int xmq_decode_hello_ack(const xmq_frame_t *f, xmq_hello_ack_t *out) XMQ_WUR;
int xmq_decode_open(const xmq_frame_t *f, xmq_open_t *out) XMQ_WUR;
int xmq_decode_open_ack(const xmq_frame_t *f, xmq_open_ack_t *out) XMQ_WUR;
int xmq_decode_close(const xmq_frame_t *f, uint8_t *reason) XMQ_WUR;
int xmq_decode_publish(const xmq_frame_t *f, xmq_publish_t *out) XMQ_WUR;
int xmq_decode_puback(const xmq_frame_t *f, xmq_puback_t *out) XMQ_WUR;
int xmq_decode_subscribe(const xmq_frame_t *f, xmq_subscribe_t *out) XMQ_WUR;
int xmq_decode_unsubscribe(const xmq_frame_t *f, xmq_subscribe_t *out) XMQ_WUR;
int xmq_decode_suback(const xmq_frame_t *f, xmq_suback_t *out) XMQ_WUR;  /* and UNSUBACK */

/* Name of a frame type for logs ("PUBLISH", or "0x7f" style for unknown). */
const char *xmq_type_name(uint8_t type);

/* ---- encoding ---------------------------------------------------------- */

/*
 * Each encoder builds one frame with header *h (whose type it overrides with
 * its own) and writes its wire image to *out (new: free(out->data)).
 * Returns 0, -EINVAL (a value the protocol cannot carry: string over 65535
 * bytes or with a NUL, more than XMQ_USER_PROPS_MAX user properties, bad qos,
 * count out of range), -EMSGSIZE (over XMQ_FRAME_MAX), -ENOMEM. *out is left
 * unchanged on failure. Encoders do not check topic syntax: callers do, with
 * topics/topic.h, before they accept a message from an application.
 */
int xmq_encode_hello(const xmq_hdr_t *h, const xmq_hello_t *b, xmq_wire_t *out) XMQ_WUR;
int xmq_encode_hello_ack(const xmq_hdr_t *h, const xmq_hello_ack_t *b, xmq_wire_t *out) XMQ_WUR;
int xmq_encode_empty(const xmq_hdr_t *h, xmq_wire_t *out) XMQ_WUR;  /* PING, PONG */
int xmq_encode_open(const xmq_hdr_t *h, const xmq_open_t *b, xmq_wire_t *out) XMQ_WUR;
int xmq_encode_open_ack(const xmq_hdr_t *h, const xmq_open_ack_t *b, xmq_wire_t *out) XMQ_WUR;
int xmq_encode_close(const xmq_hdr_t *h, uint8_t reason, xmq_wire_t *out) XMQ_WUR;
/* msg->qos, retain and dup give the flags; packet_id must be 0 iff qos is 0. */
int xmq_encode_publish(const xmq_hdr_t *h, uint16_t packet_id,
                       const xmq_message_t *msg, xmq_wire_t *out) XMQ_WUR;
int xmq_encode_puback(const xmq_hdr_t *h, const xmq_puback_t *b, xmq_wire_t *out) XMQ_WUR;
int xmq_encode_subscribe(const xmq_hdr_t *h, const xmq_subscribe_t *b, xmq_wire_t *out) XMQ_WUR;
int xmq_encode_unsubscribe(const xmq_hdr_t *h, const xmq_subscribe_t *b, xmq_wire_t *out) XMQ_WUR;
int xmq_encode_suback(const xmq_hdr_t *h, const xmq_suback_t *b, xmq_wire_t *out) XMQ_WUR;  /* h->type says SUBACK or UNSUBACK */

/*
 * xmq_encode_rewrap - the same body under another header (the agent moves
 * frames between its clients' links and the channel's): direction, stream
 * and epoch from h, the type from f. Returns as the encoders do.
 */
int xmq_encode_rewrap(const xmq_hdr_t *h, const xmq_frame_t *f, xmq_wire_t *out) XMQ_WUR;

/* ---- COBS, exposed for tests and the fuzzer ------------------------------ */

/* Encodes n bytes of in into out (room for n + n/254 + 1); returns the length. */
size_t xmq_cobs_encode(const uint8_t *in, size_t n, uint8_t *out);

/* Decodes n bytes (no delimiter) in place-safe fashion (out may equal in);
 * returns the decoded length, or -EBADMSG. */
long xmq_cobs_decode(const uint8_t *in, size_t n, uint8_t *out) XMQ_WUR;

#endif /* XMQ_BRIDGE_FRAME_H */
