/* SPDX-License-Identifier: MIT */
/*
 * fuzz_frame.c - libFuzzer target for the channel wire codec: the deframer,
 * every body decoder, the encoders (as the inverse of the decoders) and COBS.
 *
 * Input: one mode byte, one byte n, n chunk sizes, then the data.
 *   mode bit 0 clear: the data is wire bytes, fed as they are;
 *   mode bit 0 set:   the data is a list of frames without their CRC, each
 *                     prefixed with a u16 length; the target adds the CRC,
 *                     stuffs and delimits them, so that the fuzzer reaches
 *                     the decoders without having to find CRCs.
 * The wire bytes go to a deframer in chunks of the given sizes (cycling).
 *
 * Every frame that comes out goes through every decoder (with its type set
 * to the decoder's). Whatever a decoder accepts must encode again, to a frame
 * of the same length, which must decode to the same fields and encode to the
 * same bytes; any difference aborts. The data also goes to xmq_cobs_decode()
 * directly.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "bridge/deframer.h"
#include "bridge/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* ---- field comparison ------------------------------------------------- */

static void same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	CHECK(alen == blen);
	CHECK(alen == 0 || memcmp(a, b, alen) == 0);
}

static void same_str(const char *a, const char *b)
{
	CHECK((a == NULL) == (b == NULL));
	CHECK(a == NULL || strcmp(a, b) == 0);
}

static void same_props(const xmq_props_t *a, const xmq_props_t *b)
{
	size_t i;

	CHECK(a->has_payload_format == b->has_payload_format);
	CHECK(!a->has_payload_format || a->payload_format == b->payload_format);
	CHECK(a->has_message_expiry == b->has_message_expiry);
	CHECK(!a->has_message_expiry || a->message_expiry == b->message_expiry);
	same_str(a->content_type, b->content_type);
	same_str(a->response_topic, b->response_topic);
	CHECK((a->correlation_data == NULL) == (b->correlation_data == NULL));
	if (a->correlation_data != NULL)
		same_bytes(a->correlation_data, a->correlation_len,
		           b->correlation_data, b->correlation_len);
	CHECK(a->user_count == b->user_count);
	for (i = 0; i < a->user_count; i++) {
		same_str(a->user[i].name, b->user[i].name);
		same_str(a->user[i].value, b->user[i].value);
	}
}

static void same_message(const xmq_message_t *a, const xmq_message_t *b)
{
	same_str(a->topic, b->topic);
	same_bytes(a->payload, a->payload_len, b->payload, b->payload_len);
	CHECK(a->qos == b->qos && a->retain == b->retain && a->dup == b->dup);
	same_props(&a->props, &b->props);
}

/* ---- decode, encode, decode again ------------------------------------------ */

/* All the bodies a frame may hold, so that one function can re-encode any. */
union body {
	xmq_hello_t hello;
	xmq_hello_ack_t hello_ack;
	xmq_open_t open;
	xmq_open_ack_t open_ack;
	uint8_t close;
	xmq_publish_t publish;
	xmq_puback_t puback;
	xmq_subscribe_t subscribe;
	xmq_suback_t suback;
};

static int decode(const xmq_frame_t *f, uint8_t type, union body *b)
{
	switch (type) {
	case XMQ_T_HELLO: return xmq_decode_hello(f, &b->hello);
	case XMQ_T_HELLO_ACK: return xmq_decode_hello_ack(f, &b->hello_ack);
	case XMQ_T_OPEN: return xmq_decode_open(f, &b->open);
	case XMQ_T_OPEN_ACK: return xmq_decode_open_ack(f, &b->open_ack);
	case XMQ_T_CLOSE: return xmq_decode_close(f, &b->close);
	case XMQ_T_PUBLISH: return xmq_decode_publish(f, &b->publish);
	case XMQ_T_PUBACK: return xmq_decode_puback(f, &b->puback);
	case XMQ_T_SUBSCRIBE: return xmq_decode_subscribe(f, &b->subscribe);
	case XMQ_T_UNSUBSCRIBE: return xmq_decode_unsubscribe(f, &b->subscribe);
	case XMQ_T_SUBACK:
	case XMQ_T_UNSUBACK: return xmq_decode_suback(f, &b->suback);
	default: abort();
	}
}

static int encode(const xmq_hdr_t *h, uint8_t type, const union body *b, xmq_wire_t *w)
{
	switch (type) {
	case XMQ_T_HELLO: return xmq_encode_hello(h, &b->hello, w);
	case XMQ_T_HELLO_ACK: return xmq_encode_hello_ack(h, &b->hello_ack, w);
	case XMQ_T_OPEN: return xmq_encode_open(h, &b->open, w);
	case XMQ_T_OPEN_ACK: return xmq_encode_open_ack(h, &b->open_ack, w);
	case XMQ_T_CLOSE: return xmq_encode_close(h, b->close, w);
	case XMQ_T_PUBLISH:
		return xmq_encode_publish(h, b->publish.packet_id, &b->publish.msg, w);
	case XMQ_T_PUBACK: return xmq_encode_puback(h, &b->puback, w);
	case XMQ_T_SUBSCRIBE: return xmq_encode_subscribe(h, &b->subscribe, w);
	case XMQ_T_UNSUBSCRIBE: return xmq_encode_unsubscribe(h, &b->subscribe, w);
	case XMQ_T_SUBACK:
	case XMQ_T_UNSUBACK: return xmq_encode_suback(h, &b->suback, w);
	default: abort();
	}
}

static void same_body(uint8_t type, const union body *a, const union body *b)
{
	unsigned i;

	switch (type) {
	case XMQ_T_HELLO:
		CHECK(a->hello.version_min == b->hello.version_min);
		CHECK(a->hello.version_max == b->hello.version_max);
		CHECK(a->hello.nonce == b->hello.nonce);
		CHECK(a->hello.max_frame == b->hello.max_frame);
		CHECK(a->hello.keepalive == b->hello.keepalive);
		break;
	case XMQ_T_HELLO_ACK:
		CHECK(a->hello_ack.version == b->hello_ack.version);
		CHECK(a->hello_ack.nonce == b->hello_ack.nonce);
		CHECK(a->hello_ack.max_frame == b->hello_ack.max_frame);
		CHECK(a->hello_ack.max_streams == b->hello_ack.max_streams);
		break;
	case XMQ_T_OPEN:
		same_str(a->open.app, b->open.app);
		CHECK(a->open.flags == b->open.flags);
		CHECK(a->open.session_expiry == b->open.session_expiry);
		CHECK(a->open.receive_max == b->open.receive_max);
		CHECK(a->open.has_will == b->open.has_will);
		if (a->open.has_will)
			same_message(&a->open.will, &b->open.will);
		break;
	case XMQ_T_OPEN_ACK:
		CHECK(a->open_ack.reason == b->open_ack.reason);
		CHECK(a->open_ack.flags == b->open_ack.flags);
		CHECK(a->open_ack.receive_max == b->open_ack.receive_max);
		break;
	case XMQ_T_CLOSE:
		CHECK(a->close == b->close);
		break;
	case XMQ_T_PUBLISH:
		CHECK(a->publish.packet_id == b->publish.packet_id);
		same_message(&a->publish.msg, &b->publish.msg);
		break;
	case XMQ_T_PUBACK:
		CHECK(a->puback.packet_id == b->puback.packet_id);
		CHECK(a->puback.reason == b->puback.reason);
		break;
	case XMQ_T_SUBSCRIBE:
	case XMQ_T_UNSUBSCRIBE:
		CHECK(a->subscribe.packet_id == b->subscribe.packet_id);
		CHECK(a->subscribe.count == b->subscribe.count);
		for (i = 0; i < a->subscribe.count; i++) {
			same_str(a->subscribe.filter[i], b->subscribe.filter[i]);
			CHECK(a->subscribe.options[i] == b->subscribe.options[i]);
		}
		break;
	case XMQ_T_SUBACK:
	case XMQ_T_UNSUBACK:
		CHECK(a->suback.packet_id == b->suback.packet_id);
		CHECK(a->suback.count == b->suback.count);
		CHECK(memcmp(a->suback.reason, b->suback.reason, a->suback.count) == 0);
		break;
	default:
		abort();
	}
}

/* The one frame of a wire image, decoded by d (which keeps it alive). */
static void deframe_one(xmq_deframer_t *d, const xmq_wire_t *w, xmq_frame_t *f)
{
	xmq_deframer_init(d);
	xmq_deframer_feed(d, w->data, w->len);
	CHECK(xmq_deframer_next(d, f) == 1);
	CHECK(d->in_len == 0);
}

/* f decoded as type into *a: encode, decode, compare, encode, compare. */
static void roundtrip(const xmq_frame_t *f, uint8_t type, const union body *a)
{
	xmq_hdr_t h = f->hdr;
	xmq_wire_t w1 = { NULL, 0 };
	xmq_wire_t w2 = { NULL, 0 };
	xmq_deframer_t d;
	xmq_frame_t g;
	union body b;

	h.type = type;
	CHECK(encode(&h, type, a, &w1) == 0);
	deframe_one(&d, &w1, &g);
	CHECK(g.hdr.dir == h.dir && g.hdr.type == type && g.hdr.stream == h.stream);
	CHECK(g.hdr.epoch == h.epoch);
	/* Every byte of an accepted body is a field: nothing is lost or added. */
	CHECK(g.len == f->len);
	CHECK(decode(&g, type, &b) == 0);
	same_body(type, a, &b);
	CHECK(encode(&g.hdr, type, &b, &w2) == 0);
	same_bytes(w1.data, w1.len, w2.data, w2.len);
	free(w1.data);
	free(w2.data);
	xmq_deframer_dispose(&d);
}

static const uint8_t types[] = {
	XMQ_T_HELLO, XMQ_T_HELLO_ACK, XMQ_T_OPEN, XMQ_T_OPEN_ACK, XMQ_T_CLOSE,
	XMQ_T_PUBLISH, XMQ_T_PUBACK, XMQ_T_SUBSCRIBE, XMQ_T_UNSUBSCRIBE,
	XMQ_T_SUBACK, XMQ_T_UNSUBACK,
};

static void check_rewrap(const xmq_frame_t *f)
{
	xmq_hdr_t h = f->hdr;
	xmq_wire_t w = { NULL, 0 };
	xmq_deframer_t d;
	xmq_frame_t g;
	int err;

	h.dir ^= 1;
	h.epoch++;
	err = xmq_encode_rewrap(&h, f, &w);
	if (err < 0) {
		CHECK(err == -EINVAL && w.data == NULL);
		return;
	}
	deframe_one(&d, &w, &g);
	CHECK(g.hdr.type == f->hdr.type && g.hdr.dir == h.dir && g.hdr.stream == h.stream);
	CHECK(f->hdr.type == XMQ_T_HELLO ? g.hdr.epoch == 0 : g.hdr.epoch == h.epoch);
	same_bytes(g.body, g.body_len, f->body, f->body_len);
	free(w.data);
	xmq_deframer_dispose(&d);
}

/* xmq_decode_suback() serves both. */
static bool is_ack_list(uint8_t type)
{
	return type == XMQ_T_SUBACK || type == XMQ_T_UNSUBACK;
}

static void check_frame(const xmq_frame_t *f)
{
	size_t i;

	CHECK(f->len == f->body_len + XMQ_FRAME_MIN && f->len <= XMQ_FRAME_MAX);
	CHECK(f->hdr.dir <= XMQ_DIR_DOWN);
	CHECK(xmq_type_name(f->hdr.type) != NULL);
	for (i = 0; i < sizeof(types); i++) {
		xmq_frame_t g = *f;
		union body b;
		int err;

		/* As it came: only the decoder of its own type may accept it. */
		err = decode(f, types[i], &b);
		CHECK(err == -EINVAL || f->hdr.type == types[i] ||
		      (is_ack_list(types[i]) && is_ack_list(f->hdr.type)));
		/* As if it were of this type. */
		g.hdr.type = types[i];
		if (decode(&g, types[i], &b) == 0)
			roundtrip(&g, types[i], &b);
	}
	check_rewrap(f);
}

/* ---- COBS ------------------------------------------------------------------ */

static void check_cobs(const uint8_t *data, size_t size)
{
	uint8_t *dec = malloc(size + 1);
	uint8_t *enc = NULL;
	uint8_t *dec2 = NULL;
	long n;
	size_t len;

	CHECK(dec != NULL);
	n = xmq_cobs_decode(data, size, dec);
	if (n < 0) {
		CHECK(n == -EBADMSG);
		goto out;
	}
	CHECK((size_t)n < size);
	enc = malloc((size_t)n + (size_t)n / 254 + 1);
	dec2 = malloc((size_t)n + 1);
	CHECK(enc != NULL && dec2 != NULL);
	len = xmq_cobs_encode(dec, (size_t)n, enc);
	CHECK(len <= (size_t)n + (size_t)n / 254 + 1);
	CHECK(memchr(enc, 0, len) == NULL);
	CHECK(xmq_cobs_decode(enc, len, dec2) == n);
	same_bytes(dec, (size_t)n, dec2, (size_t)n);
	/* In place gives the same. */
	CHECK(xmq_cobs_decode(enc, len, enc) == n);
	same_bytes(dec, (size_t)n, enc, (size_t)n);
out:
	free(dec);
	free(enc);
	free(dec2);
}

/* ---- input ------------------------------------------------------------------ */

/* Adds CRC, COBS and delimiter to each length-prefixed frame of data. */
static uint8_t *seal(const uint8_t *data, size_t size, size_t *out_len)
{
	uint8_t *wire = malloc(3 * size + 16);  /* 2 input bytes may give 6 */
	uint8_t *tmp = malloc(size + XMQ_CRC_LEN);
	size_t len = 0;

	CHECK(wire != NULL && tmp != NULL);
	while (size >= 2) {
		size_t n = (size_t)data[0] << 8 | data[1];
		uint32_t crc;

		data += 2;
		size -= 2;
		if (n > size)
			n = size;
		memcpy(tmp, data, n);
		crc = (uint32_t)crc32(0L, data, (uInt)n);
		tmp[n] = (uint8_t)(crc >> 24);
		tmp[n + 1] = (uint8_t)(crc >> 16);
		tmp[n + 2] = (uint8_t)(crc >> 8);
		tmp[n + 3] = (uint8_t)crc;
		len += xmq_cobs_encode(tmp, n + XMQ_CRC_LEN, wire + len);
		wire[len++] = 0;
		data += n;
		size -= n;
	}
	free(tmp);
	*out_len = len;
	return wire;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *cuts;
	size_t ncuts;
	uint8_t *sealed = NULL;
	const uint8_t *wire;
	size_t wire_len;
	size_t off = 0;
	size_t k = 0;
	uint8_t mode;
	xmq_deframer_t d;

	if (size < 2 || size < 2 + (size_t)data[1])
		return 0;
	mode = data[0];
	ncuts = data[1];
	cuts = data + 2;
	wire = cuts + ncuts;
	wire_len = size - 2 - ncuts;
	check_cobs(wire, wire_len);
	if (mode & 1) {
		sealed = seal(wire, wire_len, &wire_len);
		wire = sealed;
	}
	xmq_deframer_init(&d);
	while (off < wire_len) {
		size_t n = ncuts > 0 ? (size_t)cuts[k++ % ncuts] + 1 : wire_len;
		xmq_frame_t f;
		int r;

		if (n > wire_len - off)
			n = wire_len - off;
		xmq_deframer_feed(&d, wire + off, n);
		while ((r = xmq_deframer_next(&d, &f)) != 0) {
			if (r == 1)
				check_frame(&f);
			else
				CHECK(r == -EBADMSG || r == -EMSGSIZE);
		}
		off += n;
		/* Now and then, a reconnection in the middle of the stream. */
		if ((mode & 2) && k % 7 == 3)
			xmq_deframer_reset(&d);
	}
	xmq_deframer_dispose(&d);
	free(sealed);
	return 0;
}
