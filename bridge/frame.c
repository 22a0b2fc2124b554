/* SPDX-License-Identifier: MIT */
/*
 * frame.c - the channel wire codec (docs/protocol.md, sections 1, 2, 4, 5):
 * the deframer that cuts a byte stream into checked frames, a decoder per
 * frame body, and the encoders that build wire images.
 *
 * Who checks what. This file checks everything a frame says about itself:
 * COBS, length, CRC, reserved bits, that the type sits on the right kind of
 * stream (0 for link frames, non-zero for session frames), the epoch of
 * HELLO (0) and HELLO_ACK (non-zero), every length and field rule of the
 * body, UTF-8, topic names and filters. It cannot know the state of the link
 * or of a session, so bridge/link.c checks the rest: which way a type may
 * travel (e.g. OPEN only up), that a frame is not our own echo, its epoch and
 * nonce against the current ones, the peer's announced max_frame, and that
 * PING and PONG have an empty body (there is no body to decode). The session
 * layers check packet ids against what is in flight and receive_max.
 *
 * Encoders check the same field rules as the decoders, so that what one side
 * encodes the other decodes, with one exception the header states: they do
 * not check topic syntax, which callers check with topics/topic.h before they
 * accept a message. Each encoder writes the decoded frame at the end of a
 * buffer sized for its wire image and stuffs it forward in place (see
 * cobs.c): one allocation per frame.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <zlib.h>

#include "bridge/frame.h"
#include "topics/topic.h"

/* COBS bytes of the largest frame, without the delimiters. */
#define WIRE_MAX (XMQ_WIRE_LEN(XMQ_FRAME_MAX) - 2)
/* First size of the deframer's buffers: enough for PINGs and acks. */
#define BUF_START 256

#define FLAGS_DIR 0x01
#define OPEN_FLAGS_ALL 0x1F
#define OPEN_FLAGS_WILL_BITS (XMQ_OPEN_WILL_RETAIN | 0x18)
#define OPEN_ACK_FLAGS_ALL XMQ_OPEN_ACK_SESSION_PRESENT
#define PUB_FLAGS_ALL 0x0F
#define SUB_OPT_RESERVED 0xC0
#define SUB_OPT_QOS(o) ((o) & 0x03)
#define SUB_OPT_RH(o) (((o) >> 4) & 0x03)

static bool is_link_type(uint8_t type)
{
	return type == XMQ_T_HELLO || type == XMQ_T_HELLO_ACK ||
	       type == XMQ_T_PING || type == XMQ_T_PONG;
}

static bool is_known_type(uint8_t type)
{
	switch (type) {
	case XMQ_T_HELLO: case XMQ_T_HELLO_ACK: case XMQ_T_PING: case XMQ_T_PONG:
	case XMQ_T_OPEN: case XMQ_T_OPEN_ACK: case XMQ_T_CLOSE:
	case XMQ_T_PUBLISH: case XMQ_T_PUBACK:
	case XMQ_T_SUBSCRIBE: case XMQ_T_SUBACK:
	case XMQ_T_UNSUBSCRIBE: case XMQ_T_UNSUBACK:
		return true;
	default:
		return false;
	}
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t crc_of(const uint8_t *p, size_t n)
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

/* ---- the deframer ---------------------------------------------------------- */

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
	if (crc_of(p, (size_t)m - XMQ_CRC_LEN) != be32(p + m - XMQ_CRC_LEN))
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

/* ---- decoding ----------------------------------------------------------- */

/*
 * A cursor over a body. The first short or bad read sets bad, and every read
 * after it returns zeros, so that a decoder reads all its fields and tests
 * bad once.
 */
struct reader {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool bad;
};

static bool need(struct reader *r, size_t n)
{
	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return false;
	}
	return true;
}

static uint8_t get_u8(struct reader *r)
{
	return need(r, 1) ? r->p[r->off++] : 0;
}

static uint16_t get_u16(struct reader *r)
{
	uint16_t v = 0;

	if (need(r, 2)) {
		v = be16(r->p + r->off);
		r->off += 2;
	}
	return v;
}

static uint32_t get_u32(struct reader *r)
{
	uint32_t v = 0;

	if (need(r, 4)) {
		v = be32(r->p + r->off);
		r->off += 4;
	}
	return v;
}

/* A view of the next n bytes. */
static const uint8_t *get_bytes(struct reader *r, size_t n)
{
	const uint8_t *v;

	if (!need(r, n) || r->p == NULL)
		return NULL;
	v = r->p + r->off;
	r->off += n;
	return v;
}

static const uint8_t *get_bin(struct reader *r, size_t *len)
{
	uint16_t n = get_u16(r);

	*len = n;
	return get_bytes(r, n);
}

/* A str: the C string it holds, pointing into the body. */
static const char *get_str(struct reader *r)
{
	uint16_t n = get_u16(r);
	const uint8_t *v = get_bytes(r, (size_t)n + 1);

	if (v == NULL)
		return NULL;
	if (v[n] != 0 || memchr(v, 0, n) != NULL ||
	    mosquitto_validate_utf8((const char *)v, n) != MOSQ_ERR_SUCCESS) {
		r->bad = true;
		return NULL;
	}
	return (const char *)v;
}

/* Leftover bytes make a body malformed. Returns whether all went well. */
static bool done(struct reader *r)
{
	if (r->off != r->len)
		r->bad = true;
	return !r->bad;
}

/*
 * Reads a props block into *props, with its user properties in user[]
 * (XMQ_USER_PROPS_MAX entries). Returns 0, -EBADMSG, or XMQ_ETOPIC for a bad
 * response topic; in every case r has moved past the block if its length
 * was readable, so that the caller can go on and report the worst error.
 */
static int get_props(struct reader *r, xmq_props_t *props, xmq_user_prop_t *user)
{
	uint16_t n = get_u16(r);
	struct reader pr = { .p = get_bytes(r, n), .len = n };
	unsigned seen = 0;
	size_t count = 0;

	memset(props, 0, sizeof(*props));
	if (r->bad)
		return -EBADMSG;
	while (!pr.bad && pr.off < pr.len) {
		uint8_t id = get_u8(&pr);

		switch (id) {
		case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
			props->has_payload_format = true;
			props->payload_format = get_u8(&pr);
			if (props->payload_format > 1)
				pr.bad = true;
			break;
		case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
			props->has_message_expiry = true;
			props->message_expiry = get_u32(&pr);
			break;
		case MQTT_PROP_CONTENT_TYPE:
			props->content_type = get_str(&pr);
			break;
		case MQTT_PROP_RESPONSE_TOPIC:
			props->response_topic = get_str(&pr);
			break;
		case MQTT_PROP_CORRELATION_DATA:
			props->correlation_data = get_bin(&pr, &props->correlation_len);
			break;
		case MQTT_PROP_USER_PROPERTY:
			if (count == XMQ_USER_PROPS_MAX) {
				pr.bad = true;
				break;
			}
			user[count].name = get_str(&pr);
			user[count].value = get_str(&pr);
			count++;
			continue;  /* repeatable */
		default:
			pr.bad = true;
			break;
		}
		/* Every id handled above is below 32. */
		if (seen & (1u << (id & 31)))
			pr.bad = true;
		seen |= 1u << (id & 31);
	}
	if (pr.bad)
		return -EBADMSG;
	props->user = count > 0 ? user : NULL;
	props->user_count = count;
	if (props->response_topic != NULL && !xmq_topic_valid(props->response_topic))
		return XMQ_ETOPIC;
	return 0;
}

/* Starts decoding f as a body of type; -EINVAL: the caller's mistake. */
static int begin(const xmq_frame_t *f, uint8_t type, struct reader *r)
{
	if (f->hdr.type != type)
		return -EINVAL;
	if ((f->hdr.stream == 0) != is_link_type(type))
		return -EBADMSG;
	*r = (struct reader){ .p = f->body, .len = f->body_len };
	return 0;
}

int xmq_decode_hello(const xmq_frame_t *f, xmq_hello_t *out)
{
	struct reader r;
	int err = begin(f, XMQ_T_HELLO, &r);

	if (err < 0)
		return err;
	out->version_min = get_u8(&r);
	out->version_max = get_u8(&r);
	out->nonce = get_u32(&r);
	out->max_frame = get_u32(&r);
	out->keepalive = get_u16(&r);
	if (!done(&r) || f->hdr.epoch != 0 || out->version_min > out->version_max ||
	    out->max_frame < XMQ_MAX_FRAME_MIN)
		return -EBADMSG;
	return 0;
}

int xmq_decode_hello_ack(const xmq_frame_t *f, xmq_hello_ack_t *out)
{
	struct reader r;
	int err = begin(f, XMQ_T_HELLO_ACK, &r);

	if (err < 0)
		return err;
	out->version = get_u8(&r);
	out->nonce = get_u32(&r);
	out->max_frame = get_u32(&r);
	out->max_streams = get_u16(&r);
	if (!done(&r) || f->hdr.epoch == 0 || out->max_frame < XMQ_MAX_FRAME_MIN)
		return -EBADMSG;
	return 0;
}

int xmq_decode_open(const xmq_frame_t *f, xmq_open_t *out)
{
	struct reader r;
	int err = begin(f, XMQ_T_OPEN, &r);
	int topic_err = 0;

	if (err < 0)
		return err;
	out->app = get_str(&r);
	out->flags = get_u8(&r);
	out->session_expiry = get_u32(&r);
	out->receive_max = get_u16(&r);
	out->has_will = out->flags & XMQ_OPEN_WILL;
	memset(&out->will, 0, sizeof(out->will));
	if (out->has_will) {
		out->will.qos = XMQ_OPEN_WILL_QOS(out->flags);
		out->will.retain = out->flags & XMQ_OPEN_WILL_RETAIN;
		out->will.topic = get_str(&r);
		topic_err = get_props(&r, &out->will.props, out->will_user);
		if (topic_err == -EBADMSG)
			r.bad = true;
		out->will.payload = get_bin(&r, &out->will.payload_len);
	} else if (out->flags & OPEN_FLAGS_WILL_BITS) {
		r.bad = true;  /* will_retain or will_qos without a will */
	}
	if (!done(&r) || (out->flags & ~OPEN_FLAGS_ALL) || out->will.qos == 3 ||
	    out->receive_max == 0 || !xmq_app_name_valid(out->app))
		return -EBADMSG;
	if (out->will.qos == 2)
		return -ENOTSUP;
	if (out->has_will && !xmq_topic_valid(out->will.topic))
		return XMQ_ETOPIC;
	return topic_err;
}

int xmq_decode_open_ack(const xmq_frame_t *f, xmq_open_ack_t *out)
{
	struct reader r;
	int err = begin(f, XMQ_T_OPEN_ACK, &r);

	if (err < 0)
		return err;
	out->reason = get_u8(&r);
	out->flags = get_u8(&r);
	out->receive_max = get_u16(&r);
	/* A refusal closes the stream, so only an acceptance needs a window. */
	if (!done(&r) || (out->flags & ~OPEN_ACK_FLAGS_ALL) ||
	    (out->reason == MQTT_RC_SUCCESS && out->receive_max == 0))
		return -EBADMSG;
	return 0;
}

static bool close_reason_valid(uint8_t dir, uint8_t reason)
{
	return dir == XMQ_DIR_DOWN || reason == MQTT_RC_NORMAL_DISCONNECTION ||
	       reason == MQTT_RC_DISCONNECT_WITH_WILL_MSG;
}

int xmq_decode_close(const xmq_frame_t *f, uint8_t *reason)
{
	struct reader r;
	int err = begin(f, XMQ_T_CLOSE, &r);

	if (err < 0)
		return err;
	*reason = get_u8(&r);
	if (!done(&r) || !close_reason_valid(f->hdr.dir, *reason))
		return -EBADMSG;
	return 0;
}

int xmq_decode_publish(const xmq_frame_t *f, xmq_publish_t *out)
{
	struct reader r;
	int err = begin(f, XMQ_T_PUBLISH, &r);
	xmq_message_t *m = &out->msg;
	uint8_t flags;
	int topic_err;

	if (err < 0)
		return err;
	flags = get_u8(&r);
	out->packet_id = get_u16(&r);
	memset(m, 0, sizeof(*m));
	m->qos = XMQ_PUB_QOS(flags);
	m->retain = flags & XMQ_PUB_RETAIN;
	m->dup = flags & XMQ_PUB_DUP;
	m->topic = get_str(&r);
	topic_err = get_props(&r, &m->props, out->user);
	if (topic_err == -EBADMSG)
		r.bad = true;
	m->payload_len = r.bad ? 0 : r.len - r.off;
	m->payload = get_bytes(&r, m->payload_len);
	if (!done(&r) || (flags & ~PUB_FLAGS_ALL) || m->qos == 3)
		return -EBADMSG;
	if (m->qos == 2)
		return -ENOTSUP;
	/* MQTT: a packet id only with QoS 1, and dup never with QoS 0. */
	if ((m->qos == 0) != (out->packet_id == 0) || (m->qos == 0 && m->dup))
		return -EBADMSG;
	if (!xmq_topic_valid(m->topic))
		return XMQ_ETOPIC;
	return topic_err;
}

int xmq_decode_puback(const xmq_frame_t *f, xmq_puback_t *out)
{
	struct reader r;
	int err = begin(f, XMQ_T_PUBACK, &r);

	if (err < 0)
		return err;
	out->packet_id = get_u16(&r);
	out->reason = get_u8(&r);
	if (!done(&r) || out->packet_id == 0)
		return -EBADMSG;
	return 0;
}

/* SUBSCRIBE and UNSUBSCRIBE: a packet id, then filters with or without options. */
static int decode_filters(const xmq_frame_t *f, uint8_t type, xmq_subscribe_t *out)
{
	bool with_options = type == XMQ_T_SUBSCRIBE;
	struct reader r;
	int err = begin(f, type, &r);
	unsigned i;

	if (err < 0)
		return err;
	out->packet_id = get_u16(&r);
	out->count = 0;
	while (!r.bad && r.off < r.len) {
		if (out->count == XMQ_FILTERS_MAX) {
			r.bad = true;
			break;
		}
		out->filter[out->count] = get_str(&r);
		out->options[out->count] = with_options ? get_u8(&r) : 0;
		out->count++;
	}
	if (!done(&r) || out->count == 0 || out->packet_id == 0)
		return -EBADMSG;
	for (i = 0; i < out->count; i++) {
		uint8_t o = out->options[i];

		if ((o & SUB_OPT_RESERVED) || SUB_OPT_RH(o) == 3 || SUB_OPT_QOS(o) == 3)
			return -EBADMSG;
	}
	for (i = 0; i < out->count; i++) {
		if (SUB_OPT_QOS(out->options[i]) == 2)
			return -ENOTSUP;
	}
	for (i = 0; i < out->count; i++) {
		if (!xmq_filter_valid(out->filter[i]))
			return XMQ_EFILTER;
	}
	return 0;
}

int xmq_decode_subscribe(const xmq_frame_t *f, xmq_subscribe_t *out)
{
	return decode_filters(f, XMQ_T_SUBSCRIBE, out);
}

int xmq_decode_unsubscribe(const xmq_frame_t *f, xmq_subscribe_t *out)
{
	return decode_filters(f, XMQ_T_UNSUBSCRIBE, out);
}

int xmq_decode_suback(const xmq_frame_t *f, xmq_suback_t *out)
{
	uint8_t type = f->hdr.type == XMQ_T_UNSUBACK ? XMQ_T_UNSUBACK : XMQ_T_SUBACK;
	struct reader r;
	int err = begin(f, type, &r);

	if (err < 0)
		return err;
	out->packet_id = get_u16(&r);
	out->count = 0;
	while (!r.bad && r.off < r.len) {
		if (out->count == XMQ_FILTERS_MAX) {
			r.bad = true;
			break;
		}
		out->reason[out->count++] = get_u8(&r);
	}
	if (!done(&r) || out->count == 0 || out->packet_id == 0)
		return -EBADMSG;
	return 0;
}

/* ---- encoding ---------------------------------------------------------- */

/*
 * Sizes first: each *_size() helper checks that a value can be carried and
 * adds its encoded size to *n, or returns -EINVAL. Sizes are added in size_t
 * from values bounded before the addition, so they cannot wrap.
 */
static int str_size(const char *s, size_t *n)
{
	size_t len;

	if (s == NULL)
		return -EINVAL;
	len = strlen(s);
	if (len > UINT16_MAX || mosquitto_validate_utf8(s, (int)len) != MOSQ_ERR_SUCCESS)
		return -EINVAL;
	*n += 2 + len + 1;
	return 0;
}

static int bin_size(const void *p, size_t len, size_t *n)
{
	if (len > UINT16_MAX || (p == NULL && len > 0))
		return -EINVAL;
	*n += 2 + len;
	return 0;
}

/* The props block without its u16 length. */
static int props_size(const xmq_props_t *props, size_t *n)
{
	size_t i;
	int err = 0;

	if (props->has_payload_format) {
		if (props->payload_format > 1)
			return -EINVAL;
		*n += 2;
	}
	if (props->has_message_expiry)
		*n += 5;
	if (props->content_type != NULL) {
		*n += 1;
		err = str_size(props->content_type, n);
	}
	if (err == 0 && props->response_topic != NULL) {
		*n += 1;
		err = str_size(props->response_topic, n);
	}
	if (err == 0 && props->correlation_data != NULL) {
		*n += 1;
		err = bin_size(props->correlation_data, props->correlation_len, n);
	}
	if (err == 0 && props->correlation_data == NULL && props->correlation_len > 0)
		err = -EINVAL;
	if (props->user_count > XMQ_USER_PROPS_MAX ||
	    (props->user == NULL && props->user_count > 0))
		return -EINVAL;
	for (i = 0; err == 0 && i < props->user_count; i++) {
		*n += 1;
		err = str_size(props->user[i].name, n);
		if (err == 0)
			err = str_size(props->user[i].value, n);
	}
	return err;
}

/* A new frame's bytes, written in place ahead of their COBS encoding. */
struct writer {
	uint8_t *buf;  /* the wire image */
	uint8_t *p;    /* the decoded frame, at the end of buf */
	size_t len;    /* of the decoded frame */
	size_t off;
};

static void put_u8(struct writer *w, uint8_t v)
{
	w->p[w->off++] = v;
}

static void put_u16(struct writer *w, uint16_t v)
{
	put_u8(w, (uint8_t)(v >> 8));
	put_u8(w, (uint8_t)v);
}

static void put_u32(struct writer *w, uint32_t v)
{
	put_u16(w, (uint16_t)(v >> 16));
	put_u16(w, (uint16_t)v);
}

static void put_bytes(struct writer *w, const void *v, size_t n)
{
	if (n > 0)
		memcpy(w->p + w->off, v, n);
	w->off += n;
}

static void put_str(struct writer *w, const char *s)
{
	size_t n = strlen(s);

	put_u16(w, (uint16_t)n);
	put_bytes(w, s, n + 1);
}

static void put_bin(struct writer *w, const void *v, size_t n)
{
	put_u16(w, (uint16_t)n);
	put_bytes(w, v, n);
}

/* props_len: as props_size() found it. */
static void put_props(struct writer *w, const xmq_props_t *props, size_t props_len)
{
	size_t i;

	put_u16(w, (uint16_t)props_len);
	if (props->has_payload_format) {
		put_u8(w, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
		put_u8(w, props->payload_format);
	}
	if (props->has_message_expiry) {
		put_u8(w, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
		put_u32(w, props->message_expiry);
	}
	if (props->content_type != NULL) {
		put_u8(w, MQTT_PROP_CONTENT_TYPE);
		put_str(w, props->content_type);
	}
	if (props->response_topic != NULL) {
		put_u8(w, MQTT_PROP_RESPONSE_TOPIC);
		put_str(w, props->response_topic);
	}
	if (props->correlation_data != NULL) {
		put_u8(w, MQTT_PROP_CORRELATION_DATA);
		put_bin(w, props->correlation_data, props->correlation_len);
	}
	for (i = 0; i < props->user_count; i++) {
		put_u8(w, MQTT_PROP_USER_PROPERTY);
		put_str(w, props->user[i].name);
		put_str(w, props->user[i].value);
	}
}

/*
 * Checks header h for a frame of type and body_len bytes, allocates the wire
 * image and writes the header. HELLO's epoch is always 0, whatever h says, so
 * that a side can probe with the header it uses for everything else.
 */
static int frame_start(const xmq_hdr_t *h, uint8_t type, size_t body_len, struct writer *w)
{
	size_t cap;

	if (h->dir > XMQ_DIR_DOWN)
		return -EINVAL;
	if (is_known_type(type) && (h->stream == 0) != is_link_type(type))
		return -EINVAL;
	if (type == XMQ_T_HELLO_ACK && h->epoch == 0)
		return -EINVAL;
	if (body_len > XMQ_BODY_MAX)
		return -EMSGSIZE;
	w->len = XMQ_FRAME_MIN + body_len;
	cap = XMQ_WIRE_LEN(w->len);
	w->buf = malloc(cap);
	if (w->buf == NULL)
		return -ENOMEM;
	w->p = w->buf + cap - w->len;
	w->off = 0;
	put_u8(w, h->dir);
	put_u8(w, type);
	put_u16(w, h->stream);
	put_u32(w, type == XMQ_T_HELLO ? 0 : h->epoch);
	return 0;
}

/* Appends the CRC, stuffs the frame and hands the wire image out. */
static int frame_finish(struct writer *w, xmq_wire_t *out)
{
	size_t n;

	assert(w->off == w->len - XMQ_CRC_LEN);
	put_u32(w, crc_of(w->p, w->off));
	/* Safe in place: w->p is w->len / 254 + 3 bytes into w->buf, and the
	 * stuffed bytes start at w->buf + 1, behind the leading delimiter. */
	w->buf[0] = 0;
	n = xmq_cobs_encode(w->p, w->len, w->buf + 1);
	w->buf[n + 1] = 0;
	out->data = w->buf;
	out->len = n + 2;
	return 0;
}

int xmq_encode_hello(const xmq_hdr_t *h, const xmq_hello_t *b, xmq_wire_t *out)
{
	struct writer w;
	int err;

	if (b->version_min > b->version_max || b->max_frame < XMQ_MAX_FRAME_MIN)
		return -EINVAL;
	err = frame_start(h, XMQ_T_HELLO, 12, &w);
	if (err < 0)
		return err;
	put_u8(&w, b->version_min);
	put_u8(&w, b->version_max);
	put_u32(&w, b->nonce);
	put_u32(&w, b->max_frame);
	put_u16(&w, b->keepalive);
	return frame_finish(&w, out);
}

int xmq_encode_hello_ack(const xmq_hdr_t *h, const xmq_hello_ack_t *b, xmq_wire_t *out)
{
	struct writer w;
	int err;

	if (b->max_frame < XMQ_MAX_FRAME_MIN)
		return -EINVAL;
	err = frame_start(h, XMQ_T_HELLO_ACK, 11, &w);
	if (err < 0)
		return err;
	put_u8(&w, b->version);
	put_u32(&w, b->nonce);
	put_u32(&w, b->max_frame);
	put_u16(&w, b->max_streams);
	return frame_finish(&w, out);
}

int xmq_encode_empty(const xmq_hdr_t *h, xmq_wire_t *out)
{
	struct writer w;
	int err;

	if (h->type != XMQ_T_PING && h->type != XMQ_T_PONG)
		return -EINVAL;
	err = frame_start(h, h->type, 0, &w);
	if (err < 0)
		return err;
	return frame_finish(&w, out);
}

/*
 * The will bits on the wire come from has_will and will (qos, retain), which
 * are the data; b->flags gives clean_start and must not have undefined bits.
 */
int xmq_encode_open(const xmq_hdr_t *h, const xmq_open_t *b, xmq_wire_t *out)
{
	const xmq_message_t *will = &b->will;
	size_t n = 1 + 4 + 2;
	size_t props_len = 0;
	uint8_t flags = b->flags & XMQ_OPEN_CLEAN_START;
	struct writer w;
	int err;

	if ((b->flags & ~OPEN_FLAGS_ALL) || b->receive_max == 0 || !xmq_app_name_valid(b->app))
		return -EINVAL;
	err = str_size(b->app, &n);
	if (err == 0 && b->has_will) {
		if (will->qos > 1)
			return -EINVAL;
		flags |= (uint8_t)(XMQ_OPEN_WILL | will->qos << 3 |
		                   (will->retain ? XMQ_OPEN_WILL_RETAIN : 0));
		err = str_size(will->topic, &n);
		if (err == 0)
			err = props_size(&will->props, &props_len);
		if (err == 0)
			err = bin_size(will->payload, will->payload_len, &n);
		if (props_len > UINT16_MAX)
			err = -EMSGSIZE;
		n += 2 + props_len;
	}
	if (err < 0)
		return err;
	err = frame_start(h, XMQ_T_OPEN, n, &w);
	if (err < 0)
		return err;
	put_str(&w, b->app);
	put_u8(&w, flags);
	put_u32(&w, b->session_expiry);
	put_u16(&w, b->receive_max);
	if (b->has_will) {
		put_str(&w, will->topic);
		put_props(&w, &will->props, props_len);
		put_bin(&w, will->payload, will->payload_len);
	}
	return frame_finish(&w, out);
}

int xmq_encode_open_ack(const xmq_hdr_t *h, const xmq_open_ack_t *b, xmq_wire_t *out)
{
	struct writer w;
	int err;

	if ((b->flags & ~OPEN_ACK_FLAGS_ALL) ||
	    (b->reason == MQTT_RC_SUCCESS && b->receive_max == 0))
		return -EINVAL;
	err = frame_start(h, XMQ_T_OPEN_ACK, 4, &w);
	if (err < 0)
		return err;
	put_u8(&w, b->reason);
	put_u8(&w, b->flags);
	put_u16(&w, b->receive_max);
	return frame_finish(&w, out);
}

int xmq_encode_close(const xmq_hdr_t *h, uint8_t reason, xmq_wire_t *out)
{
	struct writer w;
	int err;

	if (!close_reason_valid(h->dir, reason))
		return -EINVAL;
	err = frame_start(h, XMQ_T_CLOSE, 1, &w);
	if (err < 0)
		return err;
	put_u8(&w, reason);
	return frame_finish(&w, out);
}

int xmq_encode_publish(const xmq_hdr_t *h, uint16_t packet_id, const xmq_message_t *msg,
                       xmq_wire_t *out)
{
	size_t n = 1 + 2;
	size_t props_len = 0;
	struct writer w;
	int err;

	if (msg->qos > 1 || (msg->qos == 0) != (packet_id == 0) || (msg->qos == 0 && msg->dup) ||
	    (msg->payload == NULL && msg->payload_len > 0))
		return -EINVAL;
	err = str_size(msg->topic, &n);
	if (err == 0)
		err = props_size(&msg->props, &props_len);
	if (err < 0)
		return err;
	if (props_len > UINT16_MAX || msg->payload_len > XMQ_BODY_MAX)
		return -EMSGSIZE;
	n += 2 + props_len + msg->payload_len;
	err = frame_start(h, XMQ_T_PUBLISH, n, &w);
	if (err < 0)
		return err;
	put_u8(&w, (uint8_t)(msg->qos | (msg->retain ? XMQ_PUB_RETAIN : 0) |
	                     (msg->dup ? XMQ_PUB_DUP : 0)));
	put_u16(&w, packet_id);
	put_str(&w, msg->topic);
	put_props(&w, &msg->props, props_len);
	put_bytes(&w, msg->payload, msg->payload_len);
	return frame_finish(&w, out);
}

int xmq_encode_puback(const xmq_hdr_t *h, const xmq_puback_t *b, xmq_wire_t *out)
{
	struct writer w;
	int err;

	if (b->packet_id == 0)
		return -EINVAL;
	err = frame_start(h, XMQ_T_PUBACK, 3, &w);
	if (err < 0)
		return err;
	put_u16(&w, b->packet_id);
	put_u8(&w, b->reason);
	return frame_finish(&w, out);
}

static int encode_filters(const xmq_hdr_t *h, uint8_t type, const xmq_subscribe_t *b,
                          xmq_wire_t *out)
{
	bool with_options = type == XMQ_T_SUBSCRIBE;
	size_t n = 2;
	struct writer w;
	unsigned i;
	int err = 0;

	if (b->count == 0 || b->count > XMQ_FILTERS_MAX || b->packet_id == 0)
		return -EINVAL;
	for (i = 0; err == 0 && i < b->count; i++) {
		uint8_t o = b->options[i];

		if (with_options && ((o & SUB_OPT_RESERVED) || SUB_OPT_RH(o) == 3 ||
		                     SUB_OPT_QOS(o) > 1))
			return -EINVAL;
		err = str_size(b->filter[i], &n);
		n += with_options;
	}
	if (err < 0)
		return err;
	err = frame_start(h, type, n, &w);
	if (err < 0)
		return err;
	put_u16(&w, b->packet_id);
	for (i = 0; i < b->count; i++) {
		put_str(&w, b->filter[i]);
		if (with_options)
			put_u8(&w, b->options[i]);
	}
	return frame_finish(&w, out);
}

int xmq_encode_subscribe(const xmq_hdr_t *h, const xmq_subscribe_t *b, xmq_wire_t *out)
{
	return encode_filters(h, XMQ_T_SUBSCRIBE, b, out);
}

int xmq_encode_unsubscribe(const xmq_hdr_t *h, const xmq_subscribe_t *b, xmq_wire_t *out)
{
	return encode_filters(h, XMQ_T_UNSUBSCRIBE, b, out);
}

int xmq_encode_suback(const xmq_hdr_t *h, const xmq_suback_t *b, xmq_wire_t *out)
{
	struct writer w;
	unsigned i;
	int err;

	if ((h->type != XMQ_T_SUBACK && h->type != XMQ_T_UNSUBACK) ||
	    b->count == 0 || b->count > XMQ_FILTERS_MAX || b->packet_id == 0)
		return -EINVAL;
	err = frame_start(h, h->type, 2 + b->count, &w);
	if (err < 0)
		return err;
	put_u16(&w, b->packet_id);
	for (i = 0; i < b->count; i++)
		put_u8(&w, b->reason[i]);
	return frame_finish(&w, out);
}

/* The type is f's: the body only makes sense under its own type. */
int xmq_encode_rewrap(const xmq_hdr_t *h, const xmq_frame_t *f, xmq_wire_t *out)
{
	struct writer w;
	int err;

	if (f->body == NULL && f->body_len > 0)
		return -EINVAL;
	err = frame_start(h, f->hdr.type, f->body_len, &w);
	if (err < 0)
		return err;
	put_bytes(&w, f->body, f->body_len);
	return frame_finish(&w, out);
}
