/* SPDX-License-Identifier: MIT */
/*
 * frame_decode.c - a decoder per frame body (docs/protocol.md, sections 4
 * and 5), for frames the deframer checked: each reads its fields through a
 * cursor that cannot overrun the body, then checks every length and field
 * rule, UTF-8, topic names and filters, in the order of precedence frame.h
 * gives. Nothing is allocated: what a decoder hands out points into the
 * frame.
 */
#include <errno.h>
#include <string.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "bridge/frame.h"
#include "bridge/frame_internal.h"
#include "topics/topic.h"

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
	if ((f->hdr.stream == 0) != xmq__frame_is_link_type(type))
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

int xmq_decode_close(const xmq_frame_t *f, uint8_t *reason)
{
	struct reader r;
	int err = begin(f, XMQ_T_CLOSE, &r);

	if (err < 0)
		return err;
	*reason = get_u8(&r);
	if (!done(&r) || !xmq__frame_close_reason_valid(f->hdr.dir, *reason))
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
