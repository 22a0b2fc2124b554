/* SPDX-License-Identifier: MIT */
/*
 * frame_encode.c - the encoders that build wire images (docs/protocol.md,
 * sections 1, 2, 4 and 5), one per frame body.
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

#include "bridge/frame.h"
#include "bridge/frame_internal.h"
#include "topics/topic.h"

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
	if (is_known_type(type) && (h->stream == 0) != xmq__frame_is_link_type(type))
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
	put_u32(w, xmq__frame_crc(w->p, w->off));
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

	if (!xmq__frame_close_reason_valid(h->dir, reason))
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
