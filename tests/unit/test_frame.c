/* SPDX-License-Identifier: MIT */
/*
 * test_frame.c - the channel wire codec (bridge/frame*.c, bridge/deframer.c, bridge/cobs.c):
 * the test vectors of docs/protocol.md section 7 byte for byte, a round trip
 * of every frame type, each rule a decoder enforces, COBS edge cases, and the
 * deframer on split, garbled and oversize input.
 *
 * Bodies for the rejection tests are built here with a small writer of our
 * own (struct body) rather than with the encoders, which refuse to produce
 * most of them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "bridge/deframer.h"
#include "bridge/frame.h"

#define EPOCH 0x5EED0001u

/* ---- helpers ------------------------------------------------------------ */

struct body {
	uint8_t b[4096];
	size_t n;
};

static void b_u8(struct body *b, uint8_t v)
{
	assert_true(b->n < sizeof(b->b));
	b->b[b->n++] = v;
}

static void b_u16(struct body *b, uint16_t v)
{
	b_u8(b, (uint8_t)(v >> 8));
	b_u8(b, (uint8_t)v);
}

static void b_u32(struct body *b, uint32_t v)
{
	b_u16(b, (uint16_t)(v >> 16));
	b_u16(b, (uint16_t)v);
}

static void b_raw(struct body *b, const void *p, size_t n)
{
	assert_true(n <= sizeof(b->b) - b->n);
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

/* A well-formed str. */
static void b_str(struct body *b, const char *s)
{
	b_u16(b, (uint16_t)strlen(s));
	b_raw(b, s, strlen(s) + 1);
}

/* A decoded frame as a decoder sees it, over a body built here. */
static xmq_frame_t frame_of(uint8_t dir, uint8_t type, uint16_t stream, uint32_t epoch,
                            const struct body *b)
{
	xmq_frame_t f = {
		.hdr = { .dir = dir, .type = type, .stream = stream, .epoch = epoch },
		.body = b->b,
		.body_len = b->n,
		.len = b->n + XMQ_FRAME_MIN,
	};
	return f;
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (hex[0] != '\0') {
		unsigned v;

		assert_true(n < cap);
		assert_int_equal(sscanf(hex, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

/* Wire bytes for n decoded frame bytes (header and body): 0x00, then the
 * frame with its CRC, stuffed, then 0x00. */
static size_t wire_of(const uint8_t *frame, size_t n, uint8_t *out)
{
	uint8_t *tmp = malloc(n + XMQ_CRC_LEN);
	uint32_t crc = (uint32_t)crc32(0L, frame, (uInt)n);
	size_t len;

	assert_non_null(tmp);
	memcpy(tmp, frame, n);
	tmp[n] = (uint8_t)(crc >> 24);
	tmp[n + 1] = (uint8_t)(crc >> 16);
	tmp[n + 2] = (uint8_t)(crc >> 8);
	tmp[n + 3] = (uint8_t)crc;
	out[0] = 0;
	len = xmq_cobs_encode(tmp, n + XMQ_CRC_LEN, out + 1);
	out[len + 1] = 0;
	free(tmp);
	return len + 2;
}

/* Feeds a whole wire image and expects exactly one good frame. */
static void deframe_one(xmq_deframer_t *d, const uint8_t *wire, size_t len, xmq_frame_t *f)
{
	xmq_deframer_feed(d, wire, len);
	assert_int_equal(xmq_deframer_next(d, f), 1);
	assert_int_equal(d->in_len, 0);
}

static void wire_equal(const xmq_wire_t *w, const uint8_t *expect, size_t len)
{
	assert_int_equal(w->len, len);
	assert_memory_equal(w->data, expect, len);
}

static void bytes_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	assert_int_equal(alen, blen);
	if (alen > 0)
		assert_memory_equal(a, b, alen);
}

static void opt_str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void props_equal(const xmq_props_t *a, const xmq_props_t *b)
{
	size_t i;

	assert_int_equal(a->has_payload_format, b->has_payload_format);
	if (a->has_payload_format)
		assert_int_equal(a->payload_format, b->payload_format);
	assert_int_equal(a->has_message_expiry, b->has_message_expiry);
	if (a->has_message_expiry)
		assert_int_equal(a->message_expiry, b->message_expiry);
	opt_str_equal(a->content_type, b->content_type);
	opt_str_equal(a->response_topic, b->response_topic);
	assert_int_equal(a->correlation_data == NULL, b->correlation_data == NULL);
	if (a->correlation_data != NULL)
		bytes_equal(a->correlation_data, a->correlation_len,
		            b->correlation_data, b->correlation_len);
	assert_int_equal(a->user_count, b->user_count);
	for (i = 0; i < a->user_count; i++) {
		assert_string_equal(a->user[i].name, b->user[i].name);
		assert_string_equal(a->user[i].value, b->user[i].value);
	}
}

static void message_equal(const xmq_message_t *a, const xmq_message_t *b)
{
	assert_string_equal(a->topic, b->topic);
	bytes_equal(a->payload, a->payload_len, b->payload, b->payload_len);
	assert_int_equal(a->qos, b->qos);
	assert_int_equal(a->retain, b->retain);
	assert_int_equal(a->dup, b->dup);
	props_equal(&a->props, &b->props);
}

static void hdr_equal(const xmq_hdr_t *a, uint8_t dir, uint8_t type, uint16_t stream,
                      uint32_t epoch)
{
	assert_int_equal(a->dir, dir);
	assert_int_equal(a->type, type);
	assert_int_equal(a->stream, stream);
	assert_int_equal(a->epoch, epoch);
}

/* ---- test vectors (docs/protocol.md, section 7) -------------------------- */

/*
 * Each vector: decode its wire bytes, check every field, encode the fields
 * again and get the same bytes.
 */
struct vector {
	xmq_deframer_t d;
	xmq_frame_t f;
	uint8_t wire[512];
	size_t len;
};

static void vector_load(struct vector *v, const char *hex)
{
	xmq_deframer_init(&v->d);
	v->len = unhex(hex, v->wire, sizeof(v->wire));
	deframe_one(&v->d, v->wire, v->len, &v->f);
}

static void vector_check(struct vector *v, int err, xmq_wire_t *w)
{
	assert_int_equal(err, 0);
	wire_equal(w, v->wire, v->len);
	free(w->data);
	xmq_deframer_dispose(&v->d);
}

#define V_HELLO "0001020101010101010701011234abcd02010101060a55c28d4e00"
#define V_HELLO_ACK "0003010201035eed0701011234abcd0102400106406e0881fb00"
#define V_PING "0001020301035eed0501a925ce0100"
#define V_PONG "0003010401035eed0601a028f01000"
#define V_OPEN "0001021004015eed020105036775690201010101010610e14b2cb400"
#define V_OPEN_WILL "0001021004025eed020108067379736d6f6e020f01030e100220181678656e2f6775692f73" \
	"6572766963652f7379736d6f6e010320030c0a746578742f706c61696e02260806726561" \
	"736f6e0107056372617368010d076f66666c696e65bc5bfd7500"
#define V_OPEN_ACK "0003011104015eed0201020106149cd0349100"
#define V_CLOSE "0003011204015eed07018eb49d923700"
#define V_PUBLISH0 "0001022004015eed0201010101131178656e2f6775692f696e7075742f6b65790101107b22" \
	"636f6465223a33307d2df6c06d00"
#define V_PUBLISH1 "0003012004015eed0501050102110f646f6d302f636d642f7265626f6f7401055501010201" \
	"01033c0312106170706c69636174696f6e2f6a736f6e0208110f78656e2f6775692f7265" \
	"706c792f37020902020307260c0a78656e2d646f6d61696e010503677569022607057472" \
	"6163650104026131107b226f6b223a747275657d39b2c94f00"
#define V_PUBACK "0001022104015eed040101020555ca2cfa00"
#define V_SUBSCRIBE "0001023004015eed020102070e0c78656e2f2b2f737461747573020107057573622f23061c" \
	"e6ed639800"
#define V_SUBACK "0003013104015eed0201030701021d0322c800"
#define V_UNSUBSCRIBE "0001023204015eed0201020807057573622f2305e76f33e900"
#define V_UNSUBACK "0003013304015eed0201050811268202a000"
static void test_frame_vector_hello(void **state)
{
	struct vector v;
	xmq_hello_t b;
	xmq_wire_t w;

	vector_load(&v, V_HELLO);
	hdr_equal(&v.f.hdr, XMQ_DIR_UP, XMQ_T_HELLO, 0, 0);
	assert_int_equal(xmq_decode_hello(&v.f, &b), 0);
	assert_int_equal(b.version_min, 1);
	assert_int_equal(b.version_max, 1);
	assert_int_equal(b.nonce, 0x1234ABCD);
	assert_int_equal(b.max_frame, 65536);
	assert_int_equal(b.keepalive, 10);
	vector_check(&v, xmq_encode_hello(&v.f.hdr, &b, &w), &w);
}

static void test_frame_vector_hello_ack(void **state)
{
	struct vector v;
	xmq_hello_ack_t b;
	xmq_wire_t w;

	vector_load(&v, V_HELLO_ACK);
	hdr_equal(&v.f.hdr, XMQ_DIR_DOWN, XMQ_T_HELLO_ACK, 0, EPOCH);
	assert_int_equal(xmq_decode_hello_ack(&v.f, &b), 0);
	assert_int_equal(b.version, 1);
	assert_int_equal(b.nonce, 0x1234ABCD);
	assert_int_equal(b.max_frame, 16384);
	assert_int_equal(b.max_streams, 64);
	vector_check(&v, xmq_encode_hello_ack(&v.f.hdr, &b, &w), &w);
}

static void test_frame_vector_ping(void **state)
{
	struct vector v;
	xmq_wire_t w;

	vector_load(&v, V_PING);
	hdr_equal(&v.f.hdr, XMQ_DIR_UP, XMQ_T_PING, 0, EPOCH);
	assert_int_equal(v.f.body_len, 0);
	assert_int_equal(v.f.len, XMQ_FRAME_MIN);
	vector_check(&v, xmq_encode_empty(&v.f.hdr, &w), &w);
}

static void test_frame_vector_pong(void **state)
{
	struct vector v;
	xmq_wire_t w;

	vector_load(&v, V_PONG);
	hdr_equal(&v.f.hdr, XMQ_DIR_DOWN, XMQ_T_PONG, 0, EPOCH);
	assert_int_equal(v.f.body_len, 0);
	vector_check(&v, xmq_encode_empty(&v.f.hdr, &w), &w);
}

static void test_frame_vector_open(void **state)
{
	struct vector v;
	xmq_open_t b;
	xmq_wire_t w;

	vector_load(&v, V_OPEN);
	hdr_equal(&v.f.hdr, XMQ_DIR_UP, XMQ_T_OPEN, 1, EPOCH);
	assert_int_equal(xmq_decode_open(&v.f, &b), 0);
	assert_string_equal(b.app, "gui");
	assert_int_equal(b.flags, XMQ_OPEN_CLEAN_START);
	assert_int_equal(b.session_expiry, 0);
	assert_int_equal(b.receive_max, 16);
	assert_false(b.has_will);
	assert_null(b.will.topic);
	vector_check(&v, xmq_encode_open(&v.f.hdr, &b, &w), &w);
}

static void test_frame_vector_open_will(void **state)
{
	struct vector v;
	xmq_open_t b;
	xmq_wire_t w;
	const xmq_props_t *p = &b.will.props;

	vector_load(&v, V_OPEN_WILL);
	hdr_equal(&v.f.hdr, XMQ_DIR_UP, XMQ_T_OPEN, 2, EPOCH);
	assert_int_equal(xmq_decode_open(&v.f, &b), 0);
	assert_string_equal(b.app, "sysmon");
	assert_int_equal(b.flags, XMQ_OPEN_CLEAN_START | XMQ_OPEN_WILL_RETAIN | XMQ_OPEN_WILL | 0x08);
	assert_int_equal(b.session_expiry, 3600);
	assert_int_equal(b.receive_max, 32);
	assert_true(b.has_will);
	assert_string_equal(b.will.topic, "xen/gui/service/sysmon");
	assert_int_equal(b.will.qos, 1);
	assert_true(b.will.retain);
	assert_false(b.will.dup);
	bytes_equal(b.will.payload, b.will.payload_len, "offline", 7);
	assert_false(p->has_payload_format);
	assert_false(p->has_message_expiry);
	assert_string_equal(p->content_type, "text/plain");
	assert_null(p->response_topic);
	assert_null(p->correlation_data);
	assert_int_equal(p->user_count, 1);
	assert_string_equal(p->user[0].name, "reason");
	assert_string_equal(p->user[0].value, "crash");
	vector_check(&v, xmq_encode_open(&v.f.hdr, &b, &w), &w);
}

static void test_frame_vector_open_ack(void **state)
{
	struct vector v;
	xmq_open_ack_t b;
	xmq_wire_t w;

	vector_load(&v, V_OPEN_ACK);
	hdr_equal(&v.f.hdr, XMQ_DIR_DOWN, XMQ_T_OPEN_ACK, 1, EPOCH);
	assert_int_equal(xmq_decode_open_ack(&v.f, &b), 0);
	assert_int_equal(b.reason, 0);
	assert_int_equal(b.flags, XMQ_OPEN_ACK_SESSION_PRESENT);
	assert_int_equal(b.receive_max, 20);
	vector_check(&v, xmq_encode_open_ack(&v.f.hdr, &b, &w), &w);
}

static void test_frame_vector_close(void **state)
{
	struct vector v;
	uint8_t reason;
	xmq_wire_t w;

	vector_load(&v, V_CLOSE);
	hdr_equal(&v.f.hdr, XMQ_DIR_DOWN, XMQ_T_CLOSE, 1, EPOCH);
	assert_int_equal(xmq_decode_close(&v.f, &reason), 0);
	assert_int_equal(reason, 0x8E);
	vector_check(&v, xmq_encode_close(&v.f.hdr, reason, &w), &w);
}

static void test_frame_vector_publish_qos0(void **state)
{
	struct vector v;
	xmq_publish_t b;
	xmq_wire_t w;
	const xmq_message_t *m = &b.msg;

	vector_load(&v, V_PUBLISH0);
	hdr_equal(&v.f.hdr, XMQ_DIR_UP, XMQ_T_PUBLISH, 1, EPOCH);
	assert_int_equal(xmq_decode_publish(&v.f, &b), 0);
	assert_int_equal(b.packet_id, 0);
	assert_string_equal(m->topic, "xen/gui/input/key");
	bytes_equal(m->payload, m->payload_len, "{\"code\":30}", 11);
	assert_int_equal(m->qos, 0);
	assert_false(m->retain);
	assert_false(m->dup);
	assert_false(m->props.has_payload_format);
	assert_false(m->props.has_message_expiry);
	assert_null(m->props.content_type);
	assert_null(m->props.response_topic);
	assert_null(m->props.correlation_data);
	assert_int_equal(m->props.user_count, 0);
	vector_check(&v, xmq_encode_publish(&v.f.hdr, b.packet_id, m, &w), &w);
}

static void test_frame_vector_publish_qos1_props(void **state)
{
	static const uint8_t corr[] = { 0x00, 0x07 };
	struct vector v;
	xmq_publish_t b;
	xmq_wire_t w;
	const xmq_message_t *m = &b.msg;
	const xmq_props_t *p = &b.msg.props;

	vector_load(&v, V_PUBLISH1);
	hdr_equal(&v.f.hdr, XMQ_DIR_DOWN, XMQ_T_PUBLISH, 1, EPOCH);
	assert_int_equal(xmq_decode_publish(&v.f, &b), 0);
	assert_int_equal(b.packet_id, 0x0102);
	assert_string_equal(m->topic, "dom0/cmd/reboot");
	bytes_equal(m->payload, m->payload_len, "{\"ok\":true}", 11);
	assert_int_equal(m->qos, 1);
	assert_true(m->retain);
	assert_false(m->dup);
	assert_true(p->has_payload_format);
	assert_int_equal(p->payload_format, 1);
	assert_true(p->has_message_expiry);
	assert_int_equal(p->message_expiry, 60);
	assert_string_equal(p->content_type, "application/json");
	assert_string_equal(p->response_topic, "xen/gui/reply/7");
	bytes_equal(p->correlation_data, p->correlation_len, corr, sizeof(corr));
	assert_int_equal(p->user_count, 2);
	assert_string_equal(p->user[0].name, "xen-domain");
	assert_string_equal(p->user[0].value, "gui");
	assert_string_equal(p->user[1].name, "trace");
	assert_string_equal(p->user[1].value, "a1");
	vector_check(&v, xmq_encode_publish(&v.f.hdr, b.packet_id, m, &w), &w);
}

static void test_frame_vector_puback(void **state)
{
	struct vector v;
	xmq_puback_t b;
	xmq_wire_t w;

	vector_load(&v, V_PUBACK);
	hdr_equal(&v.f.hdr, XMQ_DIR_UP, XMQ_T_PUBACK, 1, EPOCH);
	assert_int_equal(xmq_decode_puback(&v.f, &b), 0);
	assert_int_equal(b.packet_id, 0x0102);
	assert_int_equal(b.reason, 0);
	vector_check(&v, xmq_encode_puback(&v.f.hdr, &b, &w), &w);
}

static void test_frame_vector_subscribe(void **state)
{
	struct vector v;
	xmq_subscribe_t b;
	xmq_wire_t w;

	vector_load(&v, V_SUBSCRIBE);
	hdr_equal(&v.f.hdr, XMQ_DIR_UP, XMQ_T_SUBSCRIBE, 1, EPOCH);
	assert_int_equal(xmq_decode_subscribe(&v.f, &b), 0);
	assert_int_equal(b.packet_id, 7);
	assert_int_equal(b.count, 2);
	assert_string_equal(b.filter[0], "xen/+/status");
	assert_int_equal(b.options[0], 1);
	assert_string_equal(b.filter[1], "usb/#");
	assert_int_equal(b.options[1], XMQ_SUB_NO_LOCAL | XMQ_SUB_RETAIN_AS_PUBLISHED |
	                 XMQ_SUB_RETAIN_HANDLING(1));
	vector_check(&v, xmq_encode_subscribe(&v.f.hdr, &b, &w), &w);
}

static void test_frame_vector_suback(void **state)
{
	struct vector v;
	xmq_suback_t b;
	xmq_wire_t w;

	vector_load(&v, V_SUBACK);
	hdr_equal(&v.f.hdr, XMQ_DIR_DOWN, XMQ_T_SUBACK, 1, EPOCH);
	assert_int_equal(xmq_decode_suback(&v.f, &b), 0);
	assert_int_equal(b.packet_id, 7);
	assert_int_equal(b.count, 2);
	assert_int_equal(b.reason[0], 0x01);
	assert_int_equal(b.reason[1], 0x00);
	vector_check(&v, xmq_encode_suback(&v.f.hdr, &b, &w), &w);
}

static void test_frame_vector_unsubscribe(void **state)
{
	struct vector v;
	xmq_subscribe_t b;
	xmq_wire_t w;

	vector_load(&v, V_UNSUBSCRIBE);
	hdr_equal(&v.f.hdr, XMQ_DIR_UP, XMQ_T_UNSUBSCRIBE, 1, EPOCH);
	assert_int_equal(xmq_decode_unsubscribe(&v.f, &b), 0);
	assert_int_equal(b.packet_id, 8);
	assert_int_equal(b.count, 1);
	assert_string_equal(b.filter[0], "usb/#");
	vector_check(&v, xmq_encode_unsubscribe(&v.f.hdr, &b, &w), &w);
}

static void test_frame_vector_unsuback(void **state)
{
	struct vector v;
	xmq_suback_t b;
	xmq_wire_t w;

	vector_load(&v, V_UNSUBACK);
	hdr_equal(&v.f.hdr, XMQ_DIR_DOWN, XMQ_T_UNSUBACK, 1, EPOCH);
	assert_int_equal(xmq_decode_suback(&v.f, &b), 0);
	assert_int_equal(b.packet_id, 8);
	assert_int_equal(b.count, 1);
	assert_int_equal(b.reason[0], 0x11);
	vector_check(&v, xmq_encode_suback(&v.f.hdr, &b, &w), &w);
}

/* ---- round trips ---------------------------------------------------------- */

/* Decodes a wire image made by an encoder; d keeps the frame alive. */
static void roundtrip(xmq_deframer_t *d, int err, xmq_wire_t *w, xmq_frame_t *f)
{
	assert_int_equal(err, 0);
	xmq_deframer_init(d);
	deframe_one(d, w->data, w->len, f);
	assert_true(w->len >= f->len + 3 && w->len <= XMQ_WIRE_LEN(f->len));
}

static void test_frame_roundtrip_link_types(void **state)
{
	xmq_hdr_t h = { .dir = XMQ_DIR_DOWN, .stream = 0, .epoch = 77 };
	xmq_hello_t hi = { .version_min = 1, .version_max = 9, .nonce = 0xFFFFFFFF,
	                   .max_frame = XMQ_MAX_FRAME_MIN, .keepalive = 65535 };
	xmq_hello_ack_t ack = { .version = 3, .nonce = 1, .max_frame = 0xFFFFFFFF,
	                        .max_streams = 65535 };
	xmq_hello_t hi2;
	xmq_hello_ack_t ack2;
	xmq_deframer_t d;
	xmq_frame_t f;
	xmq_wire_t w;

	roundtrip(&d, xmq_encode_hello(&h, &hi, &w), &w, &f);
	/* HELLO's epoch is 0 whatever the header said. */
	hdr_equal(&f.hdr, XMQ_DIR_DOWN, XMQ_T_HELLO, 0, 0);
	assert_int_equal(xmq_decode_hello(&f, &hi2), 0);
	assert_int_equal(hi2.version_min, hi.version_min);
	assert_int_equal(hi2.version_max, hi.version_max);
	assert_int_equal(hi2.nonce, hi.nonce);
	assert_int_equal(hi2.max_frame, hi.max_frame);
	assert_int_equal(hi2.keepalive, hi.keepalive);
	free(w.data);
	xmq_deframer_dispose(&d);

	roundtrip(&d, xmq_encode_hello_ack(&h, &ack, &w), &w, &f);
	hdr_equal(&f.hdr, XMQ_DIR_DOWN, XMQ_T_HELLO_ACK, 0, 77);
	assert_int_equal(xmq_decode_hello_ack(&f, &ack2), 0);
	assert_int_equal(ack2.version, ack.version);
	assert_int_equal(ack2.nonce, ack.nonce);
	assert_int_equal(ack2.max_frame, ack.max_frame);
	assert_int_equal(ack2.max_streams, ack.max_streams);
	free(w.data);
	xmq_deframer_dispose(&d);

	h.type = XMQ_T_PONG;
	roundtrip(&d, xmq_encode_empty(&h, &w), &w, &f);
	hdr_equal(&f.hdr, XMQ_DIR_DOWN, XMQ_T_PONG, 0, 77);
	assert_int_equal(f.body_len, 0);
	free(w.data);
	xmq_deframer_dispose(&d);
}

static void test_frame_roundtrip_open_all_props(void **state)
{
	static const uint8_t corr[] = { 0, 1, 0, 2 };
	xmq_hdr_t h = { .dir = XMQ_DIR_UP, .stream = 65535, .epoch = 0xFFFFFFFF };
	xmq_user_prop_t user[XMQ_USER_PROPS_MAX];
	char names[XMQ_USER_PROPS_MAX][16];
	xmq_open_t b = { 0 };
	xmq_open_t b2;
	xmq_deframer_t d;
	xmq_frame_t f;
	xmq_wire_t w;
	int i;

	for (i = 0; i < XMQ_USER_PROPS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "k%d", i);
		user[i].name = names[i];
		user[i].value = i % 2 ? "" : "v\xc3\xa9";  /* empty and non-ASCII */
	}
	b.app = "a-b_c.D9";
	b.session_expiry = 0xFFFFFFFF;
	b.receive_max = 65535;
	b.has_will = true;
	b.flags = XMQ_OPEN_WILL;
	b.will.topic = "xen/gui/service/x";
	b.will.qos = 0;
	b.will.payload = "";
	b.will.payload_len = 0;
	b.will.props = (xmq_props_t){
		.has_payload_format = true, .payload_format = 0,
		.has_message_expiry = true, .message_expiry = 0,
		.content_type = "", .response_topic = "r/t",
		.correlation_data = corr, .correlation_len = sizeof(corr),
		.user = user, .user_count = XMQ_USER_PROPS_MAX,
	};
	roundtrip(&d, xmq_encode_open(&h, &b, &w), &w, &f);
	hdr_equal(&f.hdr, XMQ_DIR_UP, XMQ_T_OPEN, 65535, 0xFFFFFFFF);
	assert_int_equal(xmq_decode_open(&f, &b2), 0);
	assert_string_equal(b2.app, b.app);
	assert_int_equal(b2.flags, b.flags);
	assert_int_equal(b2.session_expiry, b.session_expiry);
	assert_int_equal(b2.receive_max, b.receive_max);
	assert_true(b2.has_will);
	message_equal(&b2.will, &b.will);
	assert_ptr_equal(b2.will.props.user, b2.will_user);
	free(w.data);
	xmq_deframer_dispose(&d);
}

static void test_frame_roundtrip_open_ack_close(void **state)
{
	xmq_hdr_t h = { .dir = XMQ_DIR_UP, .stream = 9, .epoch = 1 };
	xmq_open_ack_t a = { .reason = 0x87, .flags = 0, .receive_max = 0 };
	xmq_open_ack_t a2;
	xmq_deframer_t d;
	xmq_frame_t f;
	xmq_wire_t w;
	uint8_t reason;

	/* A refusal needs no receive window. */
	roundtrip(&d, xmq_encode_open_ack(&h, &a, &w), &w, &f);
	assert_int_equal(xmq_decode_open_ack(&f, &a2), 0);
	assert_int_equal(a2.reason, a.reason);
	assert_int_equal(a2.flags, a.flags);
	assert_int_equal(a2.receive_max, a.receive_max);
	free(w.data);
	xmq_deframer_dispose(&d);

	roundtrip(&d, xmq_encode_close(&h, 0x04, &w), &w, &f);
	hdr_equal(&f.hdr, XMQ_DIR_UP, XMQ_T_CLOSE, 9, 1);
	assert_int_equal(xmq_decode_close(&f, &reason), 0);
	assert_int_equal(reason, 0x04);
	free(w.data);
	xmq_deframer_dispose(&d);
}

static void test_frame_roundtrip_publish_max_props(void **state)
{
	xmq_hdr_t h = { .dir = XMQ_DIR_DOWN, .stream = 3, .epoch = 5 };
	xmq_user_prop_t user[XMQ_USER_PROPS_MAX];
	char names[XMQ_USER_PROPS_MAX][16];
	uint8_t payload[300];
	xmq_message_t m = { 0 };
	xmq_publish_t b;
	xmq_deframer_t d;
	xmq_frame_t f;
	xmq_wire_t w;
	int i;

	for (i = 0; i < XMQ_USER_PROPS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "xen-%d", i);
		user[i].name = names[i];
		user[i].value = names[XMQ_USER_PROPS_MAX - 1 - i];
	}
	for (i = 0; i < (int)sizeof(payload); i++)
		payload[i] = (uint8_t)i;  /* zeros and runs longer than 254 */
	m.topic = "a/b/c";
	m.payload = payload;
	m.payload_len = sizeof(payload);
	m.qos = 1;
	m.dup = true;
	m.props = (xmq_props_t){
		.has_payload_format = true, .payload_format = 1,
		.has_message_expiry = true, .message_expiry = 0xFFFFFFFF,
		.content_type = "text/plain; charset=utf-8", .response_topic = "xen/gui/reply/x",
		.correlation_data = payload, .correlation_len = 0,
		.user = user, .user_count = XMQ_USER_PROPS_MAX,
	};
	roundtrip(&d, xmq_encode_publish(&h, 65535, &m, &w), &w, &f);
	assert_int_equal(xmq_decode_publish(&f, &b), 0);
	assert_int_equal(b.packet_id, 65535);
	message_equal(&b.msg, &m);
	/* Present but empty correlation data stays present. */
	assert_non_null(b.msg.props.correlation_data);
	free(w.data);
	xmq_deframer_dispose(&d);
}

static void test_frame_roundtrip_publish_largest(void **state)
{
	/* Body: flags, packet id, str "t", empty props: 9 bytes before the payload. */
	size_t payload_len = XMQ_BODY_MAX - 9;
	uint8_t *payload = malloc(payload_len + 1);
	xmq_hdr_t h = { .dir = XMQ_DIR_UP, .stream = 1, .epoch = 1 };
	xmq_message_t m = { .topic = "t", .payload = payload, .payload_len = payload_len };
	xmq_publish_t b;
	xmq_deframer_t d;
	xmq_frame_t f;
	xmq_wire_t w;
	size_t i;

	assert_non_null(payload);
	for (i = 0; i <= payload_len; i++)
		payload[i] = (uint8_t)(i * 7);
	roundtrip(&d, xmq_encode_publish(&h, 0, &m, &w), &w, &f);
	assert_int_equal(f.len, XMQ_FRAME_MAX);
	assert_true(w.len <= XMQ_WIRE_LEN(XMQ_FRAME_MAX));
	assert_int_equal(xmq_decode_publish(&f, &b), 0);
	message_equal(&b.msg, &m);
	free(w.data);
	xmq_deframer_dispose(&d);

	/* One byte more does not fit, and *out is left alone. */
	m.payload_len++;
	w.data = NULL;
	w.len = 12345;
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EMSGSIZE);
	assert_null(w.data);
	assert_int_equal(w.len, 12345);
	free(payload);
}

static void test_frame_roundtrip_subscribe_max_filters(void **state)
{
	xmq_hdr_t h = { .dir = XMQ_DIR_UP, .stream = 2, .epoch = 2 };
	char filters[XMQ_FILTERS_MAX][16];
	xmq_subscribe_t b = { .packet_id = 1, .count = XMQ_FILTERS_MAX };
	xmq_subscribe_t b2;
	xmq_deframer_t d;
	xmq_frame_t f;
	xmq_wire_t w;
	unsigned i;

	for (i = 0; i < XMQ_FILTERS_MAX; i++) {
		snprintf(filters[i], sizeof(filters[i]), i % 2 ? "x/%u/#" : "+/%u", i);
		b.filter[i] = filters[i];
		b.options[i] = (uint8_t)(i % 2 | XMQ_SUB_RETAIN_HANDLING(i % 3));
	}
	roundtrip(&d, xmq_encode_subscribe(&h, &b, &w), &w, &f);
	assert_int_equal(xmq_decode_subscribe(&f, &b2), 0);
	assert_int_equal(b2.packet_id, 1);
	assert_int_equal(b2.count, XMQ_FILTERS_MAX);
	for (i = 0; i < XMQ_FILTERS_MAX; i++) {
		assert_string_equal(b2.filter[i], filters[i]);
		assert_int_equal(b2.options[i], b.options[i]);
	}
	free(w.data);
	xmq_deframer_dispose(&d);

	h.type = XMQ_T_UNSUBSCRIBE;
	roundtrip(&d, xmq_encode_unsubscribe(&h, &b, &w), &w, &f);
	assert_int_equal(xmq_decode_unsubscribe(&f, &b2), 0);
	assert_int_equal(b2.count, XMQ_FILTERS_MAX);
	for (i = 0; i < XMQ_FILTERS_MAX; i++) {
		assert_string_equal(b2.filter[i], filters[i]);
		assert_int_equal(b2.options[i], 0);
	}
	free(w.data);
	xmq_deframer_dispose(&d);
}

static void test_frame_roundtrip_suback_max_reasons(void **state)
{
	xmq_hdr_t h = { .dir = XMQ_DIR_DOWN, .type = XMQ_T_UNSUBACK, .stream = 2, .epoch = 2 };
	xmq_suback_t b = { .packet_id = 0xABCD, .count = XMQ_FILTERS_MAX };
	xmq_suback_t b2;
	xmq_puback_t p = { .packet_id = 1, .reason = 0x97 };
	xmq_puback_t p2;
	xmq_deframer_t d;
	xmq_frame_t f;
	xmq_wire_t w;
	unsigned i;

	for (i = 0; i < XMQ_FILTERS_MAX; i++)
		b.reason[i] = (uint8_t)(0x80 + i);
	roundtrip(&d, xmq_encode_suback(&h, &b, &w), &w, &f);
	assert_int_equal(f.hdr.type, XMQ_T_UNSUBACK);
	assert_int_equal(xmq_decode_suback(&f, &b2), 0);
	assert_int_equal(b2.packet_id, b.packet_id);
	assert_int_equal(b2.count, b.count);
	assert_memory_equal(b2.reason, b.reason, XMQ_FILTERS_MAX);
	free(w.data);
	xmq_deframer_dispose(&d);

	roundtrip(&d, xmq_encode_puback(&h, &p, &w), &w, &f);
	assert_int_equal(xmq_decode_puback(&f, &p2), 0);
	assert_int_equal(p2.packet_id, p.packet_id);
	assert_int_equal(p2.reason, p.reason);
	free(w.data);
	xmq_deframer_dispose(&d);
}

static void test_frame_rewrap(void **state)
{
	xmq_hdr_t to = { .dir = XMQ_DIR_UP, .type = XMQ_T_PING, .stream = 42, .epoch = 99 };
	struct vector v;
	xmq_deframer_t d;
	xmq_frame_t f;
	xmq_wire_t w;

	vector_load(&v, V_PUBLISH1);
	/* The type stays the frame's, whatever the new header says. */
	roundtrip(&d, xmq_encode_rewrap(&to, &v.f, &w), &w, &f);
	hdr_equal(&f.hdr, XMQ_DIR_UP, XMQ_T_PUBLISH, 42, 99);
	bytes_equal(f.body, f.body_len, v.f.body, v.f.body_len);
	free(w.data);
	xmq_deframer_dispose(&d);

	to.stream = 0;
	assert_int_equal(xmq_encode_rewrap(&to, &v.f, &w), -EINVAL);
	xmq_deframer_dispose(&v.d);
}

static void test_frame_type_name(void **state)
{
	assert_string_equal(xmq_type_name(XMQ_T_HELLO), "HELLO");
	assert_string_equal(xmq_type_name(XMQ_T_PUBLISH), "PUBLISH");
	assert_string_equal(xmq_type_name(XMQ_T_UNSUBACK), "UNSUBACK");
	assert_string_equal(xmq_type_name(XMQ_T_SUBSCRIBE), "SUBSCRIBE");
	assert_string_equal(xmq_type_name(0x00), "0x00");
	assert_string_equal(xmq_type_name(0x05), "0x05");
	assert_string_equal(xmq_type_name(0x7f), "0x7f");
	assert_string_equal(xmq_type_name(0xff), "0xff");
}

/* ---- decoder rejections ------------------------------------------------- */

static void test_frame_reject_wrong_type(void **state)
{
	struct body b = { .n = 0 };
	xmq_frame_t f;
	xmq_hello_t hi;
	xmq_suback_t sa;

	b_u16(&b, 1);
	b_u8(&b, 0);
	f = frame_of(XMQ_DIR_UP, XMQ_T_PUBACK, 1, EPOCH, &b);
	/* Calling the wrong decoder is the caller's mistake, not the peer's. */
	assert_int_equal(xmq_decode_hello(&f, &hi), -EINVAL);
	assert_int_equal(xmq_decode_suback(&f, &sa), -EINVAL);
}

static void test_frame_reject_wrong_stream_kind(void **state)
{
	struct vector v;
	xmq_frame_t f;
	xmq_hello_ack_t ack;
	xmq_puback_t pa;
	struct body b = { .n = 0 };

	vector_load(&v, V_HELLO_ACK);
	f = v.f;
	f.hdr.stream = 1;
	assert_int_equal(xmq_decode_hello_ack(&f, &ack), -EBADMSG);
	xmq_deframer_dispose(&v.d);

	b_u16(&b, 1);
	b_u8(&b, 0);
	f = frame_of(XMQ_DIR_UP, XMQ_T_PUBACK, 0, EPOCH, &b);
	assert_int_equal(xmq_decode_puback(&f, &pa), -EBADMSG);
}

static void test_frame_reject_short_and_leftover(void **state)
{
	struct body b = { .n = 0 };
	xmq_frame_t f;
	xmq_puback_t pa;
	uint8_t reason;

	b_u16(&b, 1);
	f = frame_of(XMQ_DIR_UP, XMQ_T_PUBACK, 1, EPOCH, &b);
	assert_int_equal(xmq_decode_puback(&f, &pa), -EBADMSG);
	b_u8(&b, 0);
	f = frame_of(XMQ_DIR_UP, XMQ_T_PUBACK, 1, EPOCH, &b);
	assert_int_equal(xmq_decode_puback(&f, &pa), 0);
	b_u8(&b, 0);
	f = frame_of(XMQ_DIR_UP, XMQ_T_PUBACK, 1, EPOCH, &b);
	assert_int_equal(xmq_decode_puback(&f, &pa), -EBADMSG);

	b.n = 0;
	f = frame_of(XMQ_DIR_DOWN, XMQ_T_CLOSE, 1, EPOCH, &b);
	assert_int_equal(xmq_decode_close(&f, &reason), -EBADMSG);
	/* An empty body with a NULL view is handled too. */
	f.body = NULL;
	assert_int_equal(xmq_decode_close(&f, &reason), -EBADMSG);
}

static void hello_body(struct body *b, uint8_t vmin, uint8_t vmax, uint32_t max_frame)
{
	b->n = 0;
	b_u8(b, vmin);
	b_u8(b, vmax);
	b_u32(b, 1);
	b_u32(b, max_frame);
	b_u16(b, 10);
}

static void test_frame_reject_hello_fields(void **state)
{
	struct body b;
	xmq_frame_t f;
	xmq_hello_t hi;

	hello_body(&b, 1, 2, XMQ_MAX_FRAME_MIN);
	f = frame_of(XMQ_DIR_UP, XMQ_T_HELLO, 0, 0, &b);
	assert_int_equal(xmq_decode_hello(&f, &hi), 0);
	f.hdr.epoch = 1;
	assert_int_equal(xmq_decode_hello(&f, &hi), -EBADMSG);
	hello_body(&b, 2, 1, XMQ_MAX_FRAME_MIN);
	f = frame_of(XMQ_DIR_UP, XMQ_T_HELLO, 0, 0, &b);
	assert_int_equal(xmq_decode_hello(&f, &hi), -EBADMSG);
	hello_body(&b, 1, 1, XMQ_MAX_FRAME_MIN - 1);
	f = frame_of(XMQ_DIR_UP, XMQ_T_HELLO, 0, 0, &b);
	assert_int_equal(xmq_decode_hello(&f, &hi), -EBADMSG);
}

static void test_frame_reject_hello_ack_fields(void **state)
{
	struct body b = { .n = 0 };
	xmq_frame_t f;
	xmq_hello_ack_t ack;

	b_u8(&b, 1);
	b_u32(&b, 1);
	b_u32(&b, XMQ_MAX_FRAME_MIN);
	b_u16(&b, 1);
	f = frame_of(XMQ_DIR_DOWN, XMQ_T_HELLO_ACK, 0, EPOCH, &b);
	assert_int_equal(xmq_decode_hello_ack(&f, &ack), 0);
	f.hdr.epoch = 0;
	assert_int_equal(xmq_decode_hello_ack(&f, &ack), -EBADMSG);
	b.b[7] = 0x00;  /* max_frame 255 */
	b.b[8] = 0xFF;
	f = frame_of(XMQ_DIR_DOWN, XMQ_T_HELLO_ACK, 0, EPOCH, &b);
	assert_int_equal(xmq_decode_hello_ack(&f, &ack), -EBADMSG);
}

/* An OPEN body with a will whose topic and props the caller chooses. */
static void open_body(struct body *b, const char *app, uint8_t flags, uint16_t receive_max,
                      const char *will_topic)
{
	b->n = 0;
	b_str(b, app);
	b_u8(b, flags);
	b_u32(b, 0);
	b_u16(b, receive_max);
	if (will_topic != NULL) {
		b_str(b, will_topic);
		b_u16(b, 0);  /* no props */
		b_u16(b, 1);
		b_u8(b, 'x');
	}
}

static int decode_open(const struct body *b)
{
	xmq_frame_t f = frame_of(XMQ_DIR_UP, XMQ_T_OPEN, 1, EPOCH, b);
	xmq_open_t o;

	return xmq_decode_open(&f, &o);
}

static void test_frame_reject_open_app_name(void **state)
{
	struct body b;

	open_body(&b, "ok-app", 0, 1, NULL);
	assert_int_equal(decode_open(&b), 0);
	open_body(&b, "", 0, 1, NULL);
	assert_int_equal(decode_open(&b), -EBADMSG);
	open_body(&b, "a/b", 0, 1, NULL);
	assert_int_equal(decode_open(&b), -EBADMSG);
	open_body(&b, "0123456789012345678901234567890123456789012345678901234567890123456789",
	          0, 1, NULL);
	assert_int_equal(decode_open(&b), -EBADMSG);
}

static void test_frame_reject_open_flags(void **state)
{
	struct body b;

	open_body(&b, "a", XMQ_OPEN_WILL | 0x08, 1, "t");
	assert_int_equal(decode_open(&b), 0);
	open_body(&b, "a", 0x20, 1, NULL);  /* reserved bit */
	assert_int_equal(decode_open(&b), -EBADMSG);
	open_body(&b, "a", XMQ_OPEN_WILL_RETAIN, 1, NULL);  /* will bits, no will */
	assert_int_equal(decode_open(&b), -EBADMSG);
	open_body(&b, "a", 0x08, 1, NULL);
	assert_int_equal(decode_open(&b), -EBADMSG);
	open_body(&b, "a", XMQ_OPEN_WILL | 0x18, 1, "t");  /* will qos 3 */
	assert_int_equal(decode_open(&b), -EBADMSG);
	open_body(&b, "a", XMQ_OPEN_WILL | 0x10, 1, "t");  /* will qos 2 */
	assert_int_equal(decode_open(&b), -ENOTSUP);
	open_body(&b, "a", XMQ_OPEN_WILL, 1, "t/#");
	assert_int_equal(decode_open(&b), XMQ_ETOPIC);
	open_body(&b, "a", XMQ_OPEN_WILL, 1, NULL);  /* will flag, no will */
	assert_int_equal(decode_open(&b), -EBADMSG);
}

static void test_frame_reject_open_receive_max(void **state)
{
	struct body b;

	open_body(&b, "a", 0, 0, NULL);
	assert_int_equal(decode_open(&b), -EBADMSG);
}

static void test_frame_reject_open_ack_fields(void **state)
{
	struct body b = { .n = 0 };
	xmq_frame_t f;
	xmq_open_ack_t a;

	b_u8(&b, 0);
	b_u8(&b, 0x02);  /* reserved flag */
	b_u16(&b, 1);
	f = frame_of(XMQ_DIR_DOWN, XMQ_T_OPEN_ACK, 1, EPOCH, &b);
	assert_int_equal(xmq_decode_open_ack(&f, &a), -EBADMSG);
	b.b[1] = 0;
	b.b[3] = 0;  /* accepted, with no receive window */
	assert_int_equal(xmq_decode_open_ack(&f, &a), -EBADMSG);
}

static void test_frame_reject_close_reason_up(void **state)
{
	struct body b = { .n = 0 };
	xmq_frame_t f;
	uint8_t reason;

	b_u8(&b, 0x8E);
	f = frame_of(XMQ_DIR_DOWN, XMQ_T_CLOSE, 1, EPOCH, &b);
	assert_int_equal(xmq_decode_close(&f, &reason), 0);
	f.hdr.dir = XMQ_DIR_UP;
	assert_int_equal(xmq_decode_close(&f, &reason), -EBADMSG);
}

/* A PUBLISH body; props is a whole props block (length included) or NULL. */
static void publish_body(struct body *b, uint8_t flags, uint16_t packet_id, const char *topic,
                         const struct body *props)
{
	b->n = 0;
	b_u8(b, flags);
	b_u16(b, packet_id);
	b_str(b, topic);
	if (props != NULL)
		b_raw(b, props->b, props->n);
	else
		b_u16(b, 0);
	b_raw(b, "pay", 3);
}

static int decode_publish(const struct body *b, xmq_publish_t *p)
{
	xmq_frame_t f = frame_of(XMQ_DIR_UP, XMQ_T_PUBLISH, 1, EPOCH, b);

	return xmq_decode_publish(&f, p);
}

static void test_frame_reject_publish_qos2(void **state)
{
	struct body b;
	xmq_publish_t p;

	publish_body(&b, 0x02, 0x1234, "a/b", NULL);
	assert_int_equal(decode_publish(&b, &p), -ENOTSUP);
	assert_int_equal(p.packet_id, 0x1234);
	assert_int_equal(p.msg.qos, 2);
	publish_body(&b, 0x03, 0x1234, "a/b", NULL);
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
}

static void test_frame_reject_publish_packet_id(void **state)
{
	struct body b;
	xmq_publish_t p;

	publish_body(&b, 0x01, 0, "a/b", NULL);
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
	publish_body(&b, 0x00, 5, "a/b", NULL);
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
	publish_body(&b, XMQ_PUB_DUP, 0, "a/b", NULL);  /* dup with QoS 0 */
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
	publish_body(&b, 0x01 | XMQ_PUB_DUP | XMQ_PUB_RETAIN, 5, "a/b", NULL);
	assert_int_equal(decode_publish(&b, &p), 0);
	bytes_equal(p.msg.payload, p.msg.payload_len, "pay", 3);
}

static void test_frame_reject_publish_reserved_flags(void **state)
{
	struct body b;
	xmq_publish_t p;

	publish_body(&b, 0x10, 0, "a/b", NULL);
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
	publish_body(&b, 0x80 | 0x01, 1, "a/b", NULL);
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
}

static void test_frame_reject_publish_bad_topic(void **state)
{
	struct body b;
	xmq_publish_t p;

	publish_body(&b, 0x01, 9, "a/+", NULL);
	assert_int_equal(decode_publish(&b, &p), XMQ_ETOPIC);
	assert_int_equal(p.packet_id, 9);
	assert_int_equal(p.msg.qos, 1);
	publish_body(&b, 0x00, 0, "", NULL);
	assert_int_equal(decode_publish(&b, &p), XMQ_ETOPIC);
}

static void test_frame_reject_str_encoding(void **state)
{
	struct body b;
	xmq_publish_t p;

	publish_body(&b, 0, 0, "abc", NULL);
	assert_int_equal(decode_publish(&b, &p), 0);
	b.b[3 + 2 + 3] = 'x';  /* no terminator */
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
	publish_body(&b, 0, 0, "abc", NULL);
	b.b[3 + 2 + 1] = 0;  /* NUL inside */
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
	publish_body(&b, 0, 0, "a\xc3(", NULL);  /* bad UTF-8 */
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
	publish_body(&b, 0, 0, "a\xed\xa0\x80", NULL);  /* a UTF-16 surrogate */
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
	publish_body(&b, 0, 0, "abc", NULL);
	b.b[3] = 0xFF;  /* length past the end */
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
}

static void test_frame_reject_props(void **state)
{
	struct body props;
	struct body b;
	xmq_publish_t p;
	int i;

	/* Unknown id (0x0B, subscription identifier, is MQTT's but not ours). */
	props.n = 0;
	b_u16(&props, 2);
	b_u8(&props, 0x0B);
	b_u8(&props, 1);
	publish_body(&b, 0, 0, "a", &props);
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);

	/* Repeated message expiry. */
	props.n = 0;
	b_u16(&props, 10);
	b_u8(&props, 0x02);
	b_u32(&props, 1);
	b_u8(&props, 0x02);
	b_u32(&props, 1);
	publish_body(&b, 0, 0, "a", &props);
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);

	/* Payload format out of range. */
	props.n = 0;
	b_u16(&props, 2);
	b_u8(&props, 0x01);
	b_u8(&props, 2);
	publish_body(&b, 0, 0, "a", &props);
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);

	/* A value that runs past the end of the block. */
	props.n = 0;
	b_u16(&props, 3);
	b_u8(&props, 0x02);
	b_u16(&props, 0);
	b_u16(&props, 0);
	publish_body(&b, 0, 0, "a", &props);
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);

	/* A block longer than the body. */
	props.n = 0;
	b_u16(&props, 200);
	publish_body(&b, 0, 0, "a", &props);
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);

	/* 32 user properties are fine, 33 are not. */
	props.n = 0;
	b_u16(&props, 33 * 10);
	for (i = 0; i < 33; i++) {
		b_u8(&props, 0x26);
		b_str(&props, "kk");
		b_str(&props, "v");
	}
	publish_body(&b, 0, 0, "a", &props);
	assert_int_equal(decode_publish(&b, &p), -EBADMSG);
	props.b[0] = (32 * 10) >> 8;
	props.b[1] = (32 * 10) & 0xFF;
	props.n -= 10;
	publish_body(&b, 0, 0, "a", &props);
	assert_int_equal(decode_publish(&b, &p), 0);
	assert_int_equal(p.msg.props.user_count, 32);
	assert_string_equal(p.msg.props.user[31].name, "kk");
}

static void test_frame_reject_props_response_topic(void **state)
{
	struct body props = { .n = 0 };
	struct body b;
	xmq_publish_t p;

	b_u16(&props, 1 + 2 + 3 + 1);
	b_u8(&props, 0x08);
	b_str(&props, "a/#");
	publish_body(&b, 0x01, 3, "a", &props);
	assert_int_equal(decode_publish(&b, &p), XMQ_ETOPIC);
	assert_int_equal(p.packet_id, 3);
	assert_int_equal(p.msg.qos, 1);
}

static int decode_sub(uint8_t type, const struct body *b, xmq_subscribe_t *s)
{
	xmq_frame_t f = frame_of(XMQ_DIR_UP, type, 1, EPOCH, b);

	return type == XMQ_T_SUBSCRIBE ? xmq_decode_subscribe(&f, s) :
	       xmq_decode_unsubscribe(&f, s);
}

static int subscribe_one(uint8_t options, const char *filter)
{
	struct body b = { .n = 0 };
	xmq_subscribe_t s;

	b_u16(&b, 1);
	b_str(&b, filter);
	b_u8(&b, options);
	return decode_sub(XMQ_T_SUBSCRIBE, &b, &s);
}

static void test_frame_reject_subscribe_options(void **state)
{
	assert_int_equal(subscribe_one(0x2D, "a/#"), 0);  /* RH 2, RAP, NL, QoS 1 */
	assert_int_equal(subscribe_one(0x40, "a/#"), -EBADMSG);
	assert_int_equal(subscribe_one(0x80, "a/#"), -EBADMSG);
	assert_int_equal(subscribe_one(0x30, "a/#"), -EBADMSG);  /* retain handling 3 */
	assert_int_equal(subscribe_one(0x03, "a/#"), -EBADMSG);
	assert_int_equal(subscribe_one(0x02, "a/#"), -ENOTSUP);
}

static void test_frame_reject_subscribe_filter(void **state)
{
	struct body b = { .n = 0 };
	xmq_subscribe_t s;

	assert_int_equal(subscribe_one(0, "a/#/b"), XMQ_EFILTER);
	assert_int_equal(subscribe_one(0, "a+"), XMQ_EFILTER);
	assert_int_equal(subscribe_one(0, ""), XMQ_EFILTER);
	b_u16(&b, 1);
	b_str(&b, "ok/+");
	b_str(&b, "#/x");
	assert_int_equal(decode_sub(XMQ_T_UNSUBSCRIBE, &b, &s), XMQ_EFILTER);
}

static void test_frame_reject_subscribe_count(void **state)
{
	struct body b = { .n = 0 };
	xmq_subscribe_t s;
	int i;

	b_u16(&b, 1);
	assert_int_equal(decode_sub(XMQ_T_SUBSCRIBE, &b, &s), -EBADMSG);
	assert_int_equal(decode_sub(XMQ_T_UNSUBSCRIBE, &b, &s), -EBADMSG);
	for (i = 0; i < 33; i++) {
		b_str(&b, "a");
		b_u8(&b, 0);
	}
	assert_int_equal(decode_sub(XMQ_T_SUBSCRIBE, &b, &s), -EBADMSG);
	b.n -= 5;
	assert_int_equal(decode_sub(XMQ_T_SUBSCRIBE, &b, &s), 0);
	assert_int_equal(s.count, 32);
	b.n -= 1;  /* a filter without its options byte */
	assert_int_equal(decode_sub(XMQ_T_SUBSCRIBE, &b, &s), -EBADMSG);
}

static void test_frame_reject_suback_count(void **state)
{
	struct body b = { .n = 0 };
	xmq_frame_t f;
	xmq_suback_t s;
	int i;

	b_u16(&b, 1);
	f = frame_of(XMQ_DIR_DOWN, XMQ_T_SUBACK, 1, EPOCH, &b);
	assert_int_equal(xmq_decode_suback(&f, &s), -EBADMSG);
	for (i = 0; i < 33; i++)
		b_u8(&b, 0x80);
	f = frame_of(XMQ_DIR_DOWN, XMQ_T_UNSUBACK, 1, EPOCH, &b);
	assert_int_equal(xmq_decode_suback(&f, &s), -EBADMSG);
	b.n--;
	f = frame_of(XMQ_DIR_DOWN, XMQ_T_UNSUBACK, 1, EPOCH, &b);
	assert_int_equal(xmq_decode_suback(&f, &s), 0);
	assert_int_equal(s.count, 32);
}

static void test_frame_reject_packet_id_zero(void **state)
{
	struct body b = { .n = 0 };
	xmq_frame_t f;
	xmq_puback_t pa;
	xmq_suback_t sa;
	xmq_subscribe_t s;

	b_u16(&b, 0);
	b_u8(&b, 0);
	f = frame_of(XMQ_DIR_UP, XMQ_T_PUBACK, 1, EPOCH, &b);
	assert_int_equal(xmq_decode_puback(&f, &pa), -EBADMSG);
	f = frame_of(XMQ_DIR_DOWN, XMQ_T_SUBACK, 1, EPOCH, &b);
	assert_int_equal(xmq_decode_suback(&f, &sa), -EBADMSG);
	b.n = 0;
	b_u16(&b, 0);
	b_str(&b, "a");
	assert_int_equal(decode_sub(XMQ_T_UNSUBSCRIBE, &b, &s), -EBADMSG);
}

/* ---- encoder refusals --------------------------------------------------- */

static void test_frame_encode_rejects_header(void **state)
{
	xmq_hdr_t h = { .dir = 2, .stream = 1, .epoch = 1 };
	xmq_puback_t pa = { .packet_id = 1 };
	xmq_hello_ack_t ack = { .version = 1, .max_frame = 1024 };
	xmq_wire_t w = { NULL, 0 };

	assert_int_equal(xmq_encode_puback(&h, &pa, &w), -EINVAL);
	h.dir = XMQ_DIR_UP;
	h.stream = 0;
	assert_int_equal(xmq_encode_puback(&h, &pa, &w), -EINVAL);
	h.epoch = 0;
	assert_int_equal(xmq_encode_hello_ack(&h, &ack, &w), -EINVAL);
	h.type = XMQ_T_PUBLISH;
	assert_int_equal(xmq_encode_empty(&h, &w), -EINVAL);
	assert_null(w.data);
}

static void test_frame_encode_rejects_publish(void **state)
{
	xmq_hdr_t h = { .dir = XMQ_DIR_UP, .stream = 1, .epoch = 1 };
	xmq_user_prop_t user[XMQ_USER_PROPS_MAX + 1];
	xmq_message_t m = { .topic = "a" };
	char *big = malloc(70000);
	xmq_wire_t w = { NULL, 0 };
	int i;

	assert_non_null(big);
	m.qos = 2;
	assert_int_equal(xmq_encode_publish(&h, 1, &m, &w), -EINVAL);
	m.qos = 1;
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EINVAL);
	m.qos = 0;
	assert_int_equal(xmq_encode_publish(&h, 1, &m, &w), -EINVAL);
	m.dup = true;
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EINVAL);
	m.dup = false;
	for (i = 0; i <= XMQ_USER_PROPS_MAX; i++)
		user[i] = (xmq_user_prop_t){ "n", "v" };
	m.props.user = user;
	m.props.user_count = XMQ_USER_PROPS_MAX + 1;
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EINVAL);
	m.props.user_count = 1;
	user[0].value = NULL;
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EINVAL);
	m.props.user_count = 0;
	m.props.payload_format = 2;
	m.props.has_payload_format = true;
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EINVAL);
	m.props.has_payload_format = false;
	m.props.content_type = "\xff";
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EINVAL);
	m.props.content_type = NULL;
	m.props.correlation_data = big;
	m.props.correlation_len = 65536;  /* more than a bin can say */
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EINVAL);
	m.props.correlation_data = NULL;
	m.props.correlation_len = 3;  /* absent, yet with a length */
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EINVAL);
	m.props.correlation_len = 0;
	memset(big, 'a', 65536);
	big[65536] = '\0';  /* a string longer than a str can say */
	m.topic = big;
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EINVAL);
	big[65535] = '\0';  /* a str can say it, a frame cannot hold it */
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EMSGSIZE);
	big[0] = '\0';  /* a frame too large: the payload is */
	m.topic = "a";
	m.payload = big;
	m.payload_len = 69999;
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EMSGSIZE);
	m.payload = NULL;
	m.payload_len = 1;
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), -EINVAL);
	assert_null(w.data);
	free(big);
}

static void test_frame_encode_rejects_fields(void **state)
{
	xmq_hdr_t h = { .dir = XMQ_DIR_UP, .stream = 1, .epoch = 1 };
	xmq_hdr_t h0 = { .dir = XMQ_DIR_UP, .stream = 0, .epoch = 0 };
	xmq_hello_t hi = { .version_min = 2, .version_max = 1, .max_frame = 1024 };
	xmq_open_t o = { .app = "a", .receive_max = 1 };
	xmq_open_ack_t oa = { .reason = 0, .receive_max = 0 };
	xmq_subscribe_t s = { .packet_id = 1, .count = 1, .filter = { "a" }, .options = { 0 } };
	xmq_suback_t sa = { .packet_id = 1, .count = 0 };
	xmq_wire_t w = { NULL, 0 };

	assert_int_equal(xmq_encode_hello(&h0, &hi, &w), -EINVAL);
	hi.version_min = 1;
	hi.max_frame = 255;
	assert_int_equal(xmq_encode_hello(&h0, &hi, &w), -EINVAL);
	o.app = "bad/app";
	assert_int_equal(xmq_encode_open(&h, &o, &w), -EINVAL);
	o.app = "a";
	o.flags = 0x80;
	assert_int_equal(xmq_encode_open(&h, &o, &w), -EINVAL);
	o.flags = 0;
	o.receive_max = 0;
	assert_int_equal(xmq_encode_open(&h, &o, &w), -EINVAL);
	o.receive_max = 1;
	o.has_will = true;
	o.will.topic = "t";
	o.will.qos = 2;
	assert_int_equal(xmq_encode_open(&h, &o, &w), -EINVAL);
	o.will.qos = 1;
	o.will.topic = NULL;
	assert_int_equal(xmq_encode_open(&h, &o, &w), -EINVAL);
	o.will.topic = "t";
	o.will.payload = "x";
	o.will.payload_len = 65536;  /* will_payload is a bin */
	assert_int_equal(xmq_encode_open(&h, &o, &w), -EINVAL);
	assert_int_equal(xmq_encode_open_ack(&h, &oa, &w), -EINVAL);
	assert_int_equal(xmq_encode_close(&h, 0x8E, &w), -EINVAL);  /* up: 0 or 4 only */
	s.options[0] = 0x40;
	assert_int_equal(xmq_encode_subscribe(&h, &s, &w), -EINVAL);
	s.options[0] = 0x30;
	assert_int_equal(xmq_encode_subscribe(&h, &s, &w), -EINVAL);
	s.options[0] = 0x02;
	assert_int_equal(xmq_encode_subscribe(&h, &s, &w), -EINVAL);
	s.options[0] = 0;
	s.count = XMQ_FILTERS_MAX + 1;
	assert_int_equal(xmq_encode_unsubscribe(&h, &s, &w), -EINVAL);
	s.count = 1;
	s.packet_id = 0;
	assert_int_equal(xmq_encode_unsubscribe(&h, &s, &w), -EINVAL);
	h.type = XMQ_T_SUBACK;
	assert_int_equal(xmq_encode_suback(&h, &sa, &w), -EINVAL);
	sa.count = 1;
	h.type = XMQ_T_PUBACK;
	assert_int_equal(xmq_encode_suback(&h, &sa, &w), -EINVAL);
	assert_null(w.data);
}

/* ---- COBS ------------------------------------------------------------------ */

static void cobs_roundtrip(const uint8_t *in, size_t n, const uint8_t *expect, size_t expect_len)
{
	uint8_t *enc = malloc(n + n / 254 + 1);
	uint8_t *dec = malloc(n + n / 254 + 1);
	size_t len;

	assert_non_null(enc);
	assert_non_null(dec);
	len = xmq_cobs_encode(in, n, enc);
	assert_true(len <= n + n / 254 + 1);
	assert_null(memchr(enc, 0, len));
	if (expect != NULL)
		bytes_equal(enc, len, expect, expect_len);
	assert_int_equal(xmq_cobs_decode(enc, len, dec), (long)n);
	bytes_equal(dec, n, in, n);
	/* In place. */
	assert_int_equal(xmq_cobs_decode(enc, len, enc), (long)n);
	bytes_equal(enc, n, in, n);
	free(enc);
	free(dec);
}

static void test_frame_cobs_empty(void **state)
{
	static const uint8_t expect[] = { 0x01 };
	uint8_t out[1];

	cobs_roundtrip(NULL, 0, expect, sizeof(expect));
	assert_int_equal(xmq_cobs_decode(out, 0, out), -EBADMSG);
}

static void test_frame_cobs_254_run(void **state)
{
	uint8_t in[254];
	uint8_t expect[256];
	size_t i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i + 1);
	/* A full block, then the paper's final 0x01 for the phantom zero. */
	expect[0] = 0xFF;
	memcpy(expect + 1, in, sizeof(in));
	expect[255] = 0x01;
	cobs_roundtrip(in, sizeof(in), expect, sizeof(expect));
}

static void test_frame_cobs_255_run(void **state)
{
	uint8_t in[255];
	uint8_t expect[257];
	size_t i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i % 255 + 1);
	expect[0] = 0xFF;
	memcpy(expect + 1, in, 254);
	expect[255] = 0x02;
	expect[256] = in[254];
	cobs_roundtrip(in, sizeof(in), expect, sizeof(expect));
}

static void test_frame_cobs_all_zeros(void **state)
{
	static const uint8_t zeros[600];
	uint8_t expect[601];

	memset(expect, 0x01, sizeof(expect));
	cobs_roundtrip(zeros, sizeof(zeros), expect, sizeof(expect));
	cobs_roundtrip(zeros, 1, expect, 2);
}

static void test_frame_cobs_mixed(void **state)
{
	static const uint8_t in[] = { 0x11, 0x22, 0x00, 0x33 };
	static const uint8_t expect[] = { 0x03, 0x11, 0x22, 0x02, 0x33 };
	uint8_t big[1000];
	size_t i;

	cobs_roundtrip(in, sizeof(in), expect, sizeof(expect));
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i % 300 == 0 ? 0 : i);
	cobs_roundtrip(big, sizeof(big), NULL, 0);
}

static void test_frame_cobs_decode_rejects(void **state)
{
	static const uint8_t zero_code[] = { 0x02, 0x11, 0x00 };
	static const uint8_t zero_data[] = { 0x03, 0x00, 0x11 };
	static const uint8_t overrun[] = { 0x05, 0x11, 0x22 };
	uint8_t out[8];

	assert_int_equal(xmq_cobs_decode(zero_code, sizeof(zero_code), out), -EBADMSG);
	assert_int_equal(xmq_cobs_decode(zero_data, sizeof(zero_data), out), -EBADMSG);
	assert_int_equal(xmq_cobs_decode(overrun, sizeof(overrun), out), -EBADMSG);
}

static void test_frame_cobs_decode_short_final_block(void **state)
{
	/* Some encoders end a 254-byte run without the final 0x01: accepted. */
	uint8_t in[255];
	uint8_t out[255];
	size_t i;

	in[0] = 0xFF;
	for (i = 1; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	assert_int_equal(xmq_cobs_decode(in, sizeof(in), out), 254);
	assert_memory_equal(out, in + 1, 254);
}

/* ---- the deframer ------------------------------------------------------------ */

static const char *const all_vectors[] = {
	V_HELLO, V_HELLO_ACK, V_PING, V_PONG, V_OPEN, V_OPEN_WILL, V_OPEN_ACK, V_CLOSE,
	V_PUBLISH0, V_PUBLISH1, V_PUBACK, V_SUBSCRIBE, V_SUBACK, V_UNSUBSCRIBE, V_UNSUBACK,
};
#define N_VECTORS (sizeof(all_vectors) / sizeof(all_vectors[0]))

/* The wire bytes of every vector, back to back. */
static size_t stream_of_vectors(uint8_t *out, size_t cap, size_t *ends)
{
	size_t n = 0;
	size_t i;

	for (i = 0; i < N_VECTORS; i++) {
		n += unhex(all_vectors[i], out + n, cap - n);
		ends[i] = n;
	}
	return n;
}

/* Types of the frames a deframer gives for in, fed as cut at the cuts. */
static size_t deframe_types(xmq_deframer_t *d, const uint8_t *in, size_t n, const size_t *cuts,
                            size_t ncuts, uint8_t *types, int *errors)
{
	size_t count = 0;
	size_t start = 0;
	size_t i;

	for (i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;
		xmq_frame_t f;
		int r;

		xmq_deframer_feed(d, in + start, end - start);
		while ((r = xmq_deframer_next(d, &f)) != 0) {
			if (r < 0) {
				errors[-r < 256 ? -r : 0]++;
				continue;
			}
			assert_int_equal(f.len, f.body_len + XMQ_FRAME_MIN);
			types[count++] = f.hdr.type;
		}
		start = end;
	}
	return count;
}

static void expect_vector_types(const uint8_t *types, size_t count)
{
	static const uint8_t expect[] = {
		XMQ_T_HELLO, XMQ_T_HELLO_ACK, XMQ_T_PING, XMQ_T_PONG, XMQ_T_OPEN, XMQ_T_OPEN,
		XMQ_T_OPEN_ACK, XMQ_T_CLOSE, XMQ_T_PUBLISH, XMQ_T_PUBLISH, XMQ_T_PUBACK,
		XMQ_T_SUBSCRIBE, XMQ_T_SUBACK, XMQ_T_UNSUBSCRIBE, XMQ_T_UNSUBACK,
	};

	assert_int_equal(count, sizeof(expect));
	assert_memory_equal(types, expect, sizeof(expect));
}

static void test_frame_deframer_split_everywhere(void **state)
{
	uint8_t in[1024];
	size_t ends[N_VECTORS];
	size_t n = stream_of_vectors(in, sizeof(in), ends);
	uint8_t types[64];
	int errors[256];
	size_t cut;
	size_t cuts[1024];
	xmq_deframer_t d;

	xmq_deframer_init(&d);
	for (cut = 0; cut <= n; cut++) {
		memset(errors, 0, sizeof(errors));
		expect_vector_types(types, deframe_types(&d, in, n, &cut, 1, types, errors));
		assert_int_equal(errors[0] + errors[EBADMSG] + errors[EMSGSIZE], 0);
	}
	/* One byte at a time. */
	for (cut = 0; cut < n; cut++)
		cuts[cut] = cut + 1;
	memset(errors, 0, sizeof(errors));
	expect_vector_types(types, deframe_types(&d, in, n, cuts, n - 1, types, errors));
	assert_int_equal(errors[EBADMSG], 0);
	/* A small-frame link keeps small buffers. */
	assert_true(d.cap <= 256);
	assert_true(d.frame_cap <= 256);
	xmq_deframer_dispose(&d);
	xmq_deframer_dispose(&d);
}

static void test_frame_deframer_two_frames_one_feed(void **state)
{
	uint8_t in[128];
	size_t n = unhex(V_PING V_PUBACK, in, sizeof(in));
	xmq_deframer_t d;
	xmq_frame_t f;

	xmq_deframer_init(&d);
	xmq_deframer_feed(&d, in, n);
	assert_int_equal(xmq_deframer_next(&d, &f), 1);
	assert_int_equal(f.hdr.type, XMQ_T_PING);
	assert_int_equal(xmq_deframer_next(&d, &f), 1);
	assert_int_equal(f.hdr.type, XMQ_T_PUBACK);
	assert_int_equal(xmq_deframer_next(&d, &f), 0);
	/* Neither frame needed the reassembly buffer. */
	assert_null(d.buf);
	xmq_deframer_dispose(&d);
}

static void test_frame_deframer_empty_frames(void **state)
{
	static const uint8_t zeros[5];
	uint8_t in[64];
	size_t n = unhex(V_PING, in, sizeof(in));
	xmq_deframer_t d;
	xmq_frame_t f;

	xmq_deframer_init(&d);
	xmq_deframer_feed(&d, zeros, sizeof(zeros));
	assert_int_equal(xmq_deframer_next(&d, &f), 0);
	xmq_deframer_feed(&d, in, n);
	assert_int_equal(xmq_deframer_next(&d, &f), 1);
	xmq_deframer_dispose(&d);
}

static void test_frame_deframer_garbage(void **state)
{
	static const uint8_t garbage[] = "\x01\x02\x03hello\x00\xff\xfe\x00junk";
	uint8_t in[2048];
	size_t ends[N_VECTORS];
	size_t n = stream_of_vectors(in, sizeof(in), ends);
	uint8_t mixed[4096];
	size_t m = 0;
	size_t i;
	size_t start = 0;
	uint8_t types[64];
	int errors[256] = { 0 };
	xmq_deframer_t d;

	/* Garbage before the first frame and between any two. */
	for (i = 0; i < N_VECTORS; i++) {
		memcpy(mixed + m, garbage, sizeof(garbage) - 1);
		m += sizeof(garbage) - 1;
		mixed[m++] = 0;  /* the garbage ends somewhere */
		memcpy(mixed + m, in + start, ends[i] - start);
		m += ends[i] - start;
		start = ends[i];
	}
	assert_int_equal(start, n);
	xmq_deframer_init(&d);
	expect_vector_types(types, deframe_types(&d, mixed, m, NULL, 0, types, errors));
	/* Each garbage run gave two bad frames; none was taken for a frame. */
	assert_int_equal(errors[EBADMSG], 3 * N_VECTORS);
	xmq_deframer_dispose(&d);
}

static void test_frame_deframer_corrupt_byte(void **state)
{
	uint8_t in[128];
	size_t n = unhex(V_PUBACK V_PING, in, sizeof(in));
	size_t ping_len = strlen(V_PING) / 2;
	size_t i;
	xmq_deframer_t d;
	xmq_frame_t f;

	xmq_deframer_init(&d);
	/* Any change to any non-delimiter byte of the PUBACK drops it alone. */
	for (i = 0; i < n - ping_len - 1; i++) {
		uint8_t saved = in[i];

		in[i] = saved == 0x55 ? 0x56 : 0x55;
		xmq_deframer_feed(&d, in, n);
		assert_int_equal(xmq_deframer_next(&d, &f), -EBADMSG);
		assert_int_equal(xmq_deframer_next(&d, &f), 1);
		assert_int_equal(f.hdr.type, XMQ_T_PING);
		assert_int_equal(xmq_deframer_next(&d, &f), 0);
		in[i] = saved;
	}
	xmq_deframer_dispose(&d);
}

static void test_frame_deframer_oversize_then_good(void **state)
{
	uint8_t chunk[1000];
	uint8_t good[64];
	size_t good_len = unhex(V_PUBACK, good, sizeof(good));
	int errors = 0;
	int frames = 0;
	int r;
	int i;
	xmq_deframer_t d;
	xmq_frame_t f;

	memset(chunk, 0x42, sizeof(chunk));
	xmq_deframer_init(&d);
	for (i = 0; i < 70; i++) {  /* 70000 bytes without a delimiter */
		xmq_deframer_feed(&d, chunk, sizeof(chunk));
		while ((r = xmq_deframer_next(&d, &f)) != 0) {
			assert_int_equal(r, -EMSGSIZE);
			errors++;
		}
	}
	assert_int_equal(errors, 1);
	assert_true(d.cap <= XMQ_WIRE_LEN(XMQ_FRAME_MAX));
	/* More of the same, then its end and a good frame, in one feed. */
	memcpy(chunk, "\x42\x42\x00", 3);
	memcpy(chunk + 3, good, good_len);
	xmq_deframer_feed(&d, chunk, 3 + good_len);
	while ((r = xmq_deframer_next(&d, &f)) != 0) {
		assert_int_equal(r, 1);
		assert_int_equal(f.hdr.type, XMQ_T_PUBACK);
		frames++;
	}
	assert_int_equal(frames, 1);
	xmq_deframer_dispose(&d);
}

static void test_frame_deframer_oversize_in_one_feed(void **state)
{
	size_t n = XMQ_WIRE_LEN(XMQ_FRAME_MAX) + 10;
	uint8_t *in = malloc(n);
	uint8_t good[64];
	size_t good_len = unhex(V_PING, good, sizeof(good));
	xmq_deframer_t d;
	xmq_frame_t f;

	assert_non_null(in);
	memset(in, 0x42, n);
	in[n - 1] = 0;
	xmq_deframer_init(&d);
	xmq_deframer_feed(&d, in, n);
	assert_int_equal(xmq_deframer_next(&d, &f), -EMSGSIZE);
	assert_int_equal(xmq_deframer_next(&d, &f), 0);
	xmq_deframer_feed(&d, good, good_len);
	assert_int_equal(xmq_deframer_next(&d, &f), 1);
	/* Again, after a first piece: the delimiter is in the piece that
	 * overflows the buffer, so nothing after it is skipped. */
	xmq_deframer_feed(&d, in, 100);
	assert_int_equal(xmq_deframer_next(&d, &f), 0);
	xmq_deframer_feed(&d, in + 100, n - 100);
	assert_int_equal(xmq_deframer_next(&d, &f), -EMSGSIZE);
	assert_int_equal(xmq_deframer_next(&d, &f), 0);
	xmq_deframer_feed(&d, good, good_len);
	assert_int_equal(xmq_deframer_next(&d, &f), 1);
	xmq_deframer_dispose(&d);
	free(in);
}

static void test_frame_deframer_decodes_oversize(void **state)
{
	/* Zeros cost one wire byte each: a 65537-byte frame fits the wire
	 * buffer but not the frame limit. */
	size_t n = XMQ_FRAME_MAX + 1 - XMQ_CRC_LEN;
	uint8_t *frame = calloc(1, n);
	uint8_t *wire = malloc(XMQ_WIRE_LEN(n + XMQ_CRC_LEN));
	size_t len;
	xmq_deframer_t d;
	xmq_frame_t f;

	assert_non_null(frame);
	assert_non_null(wire);
	frame[1] = XMQ_T_PUBLISH;
	len = wire_of(frame, n, wire);
	assert_true(len - 1 <= XMQ_WIRE_LEN(XMQ_FRAME_MAX) - 1);
	xmq_deframer_init(&d);
	/* Fed in two pieces to go through the reassembly buffer. */
	xmq_deframer_feed(&d, wire, 100);
	assert_int_equal(xmq_deframer_next(&d, &f), 0);
	xmq_deframer_feed(&d, wire + 100, len - 100);
	assert_int_equal(xmq_deframer_next(&d, &f), -EMSGSIZE);
	assert_int_equal(xmq_deframer_next(&d, &f), 0);
	xmq_deframer_dispose(&d);
	free(frame);
	free(wire);
}

static void test_frame_deframer_short_and_reserved(void **state)
{
	uint8_t frame[XMQ_HDR_LEN] = { 0x00, XMQ_T_PING };
	uint8_t wire[32];
	size_t len;
	xmq_deframer_t d;
	xmq_frame_t f;

	xmq_deframer_init(&d);
	/* 11 bytes with a valid CRC: too short. */
	len = wire_of(frame, XMQ_HDR_LEN - 1, wire);
	xmq_deframer_feed(&d, wire, len);
	assert_int_equal(xmq_deframer_next(&d, &f), -EBADMSG);
	len = wire_of(frame, XMQ_HDR_LEN, wire);
	xmq_deframer_feed(&d, wire, len);
	assert_int_equal(xmq_deframer_next(&d, &f), 1);
	/* Reserved bits in byte 0, CRC and all correct. */
	frame[0] = 0x02 | XMQ_DIR_DOWN;
	len = wire_of(frame, XMQ_HDR_LEN, wire);
	xmq_deframer_feed(&d, wire, len);
	assert_int_equal(xmq_deframer_next(&d, &f), -EBADMSG);
	frame[0] = XMQ_DIR_DOWN;
	len = wire_of(frame, XMQ_HDR_LEN, wire);
	xmq_deframer_feed(&d, wire, len);
	assert_int_equal(xmq_deframer_next(&d, &f), 1);
	assert_int_equal(f.hdr.dir, XMQ_DIR_DOWN);
	/* A bad COBS code (a block longer than the frame). */
	xmq_deframer_feed(&d, (const uint8_t *)"\x09\x01\x01\x00", 4);
	assert_int_equal(xmq_deframer_next(&d, &f), -EBADMSG);
	xmq_deframer_dispose(&d);
}

static void test_frame_deframer_largest_in_pieces(void **state)
{
	size_t n = XMQ_FRAME_MAX - XMQ_CRC_LEN;
	uint8_t *frame = malloc(n);
	uint8_t *wire = malloc(XMQ_WIRE_LEN(XMQ_FRAME_MAX));
	size_t len;
	size_t off;
	size_t i;
	int got = 0;
	int r;
	xmq_deframer_t d;
	xmq_frame_t f;

	assert_non_null(frame);
	assert_non_null(wire);
	for (i = 0; i < n; i++)
		frame[i] = (uint8_t)(i % 251 + 1);  /* no zeros: the longest wire */
	frame[0] = XMQ_DIR_DOWN;
	frame[1] = XMQ_T_PUBLISH;
	len = wire_of(frame, n, wire);
	assert_true(len > XMQ_FRAME_MAX + 250 && len <= XMQ_WIRE_LEN(XMQ_FRAME_MAX));
	xmq_deframer_init(&d);
	for (off = 0; off < len; off += 4093) {
		xmq_deframer_feed(&d, wire + off, len - off < 4093 ? len - off : 4093);
		while ((r = xmq_deframer_next(&d, &f)) != 0) {
			assert_int_equal(r, 1);
			assert_int_equal(f.len, XMQ_FRAME_MAX);
			bytes_equal(f.body, f.body_len, frame + XMQ_HDR_LEN, n - XMQ_HDR_LEN);
			got++;
		}
	}
	assert_int_equal(got, 1);
	xmq_deframer_dispose(&d);
	free(frame);
	free(wire);
}

static void test_frame_deframer_reset(void **state)
{
	uint8_t in[64];
	size_t n = unhex(V_PUBACK, in, sizeof(in));
	xmq_deframer_t d;
	xmq_frame_t f;

	xmq_deframer_init(&d);
	/* Half a frame, then the transport reconnects. */
	xmq_deframer_feed(&d, in, n / 2);
	assert_int_equal(xmq_deframer_next(&d, &f), 0);
	xmq_deframer_reset(&d);
	xmq_deframer_feed(&d, in, n);
	assert_int_equal(xmq_deframer_next(&d, &f), 1);
	assert_int_equal(f.hdr.type, XMQ_T_PUBACK);
	xmq_deframer_dispose(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_vector_hello),
		cmocka_unit_test(test_frame_vector_hello_ack),
		cmocka_unit_test(test_frame_vector_ping),
		cmocka_unit_test(test_frame_vector_pong),
		cmocka_unit_test(test_frame_vector_open),
		cmocka_unit_test(test_frame_vector_open_will),
		cmocka_unit_test(test_frame_vector_open_ack),
		cmocka_unit_test(test_frame_vector_close),
		cmocka_unit_test(test_frame_vector_publish_qos0),
		cmocka_unit_test(test_frame_vector_publish_qos1_props),
		cmocka_unit_test(test_frame_vector_puback),
		cmocka_unit_test(test_frame_vector_subscribe),
		cmocka_unit_test(test_frame_vector_suback),
		cmocka_unit_test(test_frame_vector_unsubscribe),
		cmocka_unit_test(test_frame_vector_unsuback),
		cmocka_unit_test(test_frame_roundtrip_link_types),
		cmocka_unit_test(test_frame_roundtrip_open_all_props),
		cmocka_unit_test(test_frame_roundtrip_open_ack_close),
		cmocka_unit_test(test_frame_roundtrip_publish_max_props),
		cmocka_unit_test(test_frame_roundtrip_publish_largest),
		cmocka_unit_test(test_frame_roundtrip_subscribe_max_filters),
		cmocka_unit_test(test_frame_roundtrip_suback_max_reasons),
		cmocka_unit_test(test_frame_rewrap),
		cmocka_unit_test(test_frame_type_name),
		cmocka_unit_test(test_frame_reject_wrong_type),
		cmocka_unit_test(test_frame_reject_wrong_stream_kind),
		cmocka_unit_test(test_frame_reject_short_and_leftover),
		cmocka_unit_test(test_frame_reject_hello_fields),
		cmocka_unit_test(test_frame_reject_hello_ack_fields),
		cmocka_unit_test(test_frame_reject_open_app_name),
		cmocka_unit_test(test_frame_reject_open_flags),
		cmocka_unit_test(test_frame_reject_open_receive_max),
		cmocka_unit_test(test_frame_reject_open_ack_fields),
		cmocka_unit_test(test_frame_reject_close_reason_up),
		cmocka_unit_test(test_frame_reject_publish_qos2),
		cmocka_unit_test(test_frame_reject_publish_packet_id),
		cmocka_unit_test(test_frame_reject_publish_reserved_flags),
		cmocka_unit_test(test_frame_reject_publish_bad_topic),
		cmocka_unit_test(test_frame_reject_str_encoding),
		cmocka_unit_test(test_frame_reject_props),
		cmocka_unit_test(test_frame_reject_props_response_topic),
		cmocka_unit_test(test_frame_reject_subscribe_options),
		cmocka_unit_test(test_frame_reject_subscribe_filter),
		cmocka_unit_test(test_frame_reject_subscribe_count),
		cmocka_unit_test(test_frame_reject_suback_count),
		cmocka_unit_test(test_frame_reject_packet_id_zero),
		cmocka_unit_test(test_frame_encode_rejects_header),
		cmocka_unit_test(test_frame_encode_rejects_publish),
		cmocka_unit_test(test_frame_encode_rejects_fields),
		cmocka_unit_test(test_frame_cobs_empty),
		cmocka_unit_test(test_frame_cobs_254_run),
		cmocka_unit_test(test_frame_cobs_255_run),
		cmocka_unit_test(test_frame_cobs_all_zeros),
		cmocka_unit_test(test_frame_cobs_mixed),
		cmocka_unit_test(test_frame_cobs_decode_rejects),
		cmocka_unit_test(test_frame_cobs_decode_short_final_block),
		cmocka_unit_test(test_frame_deframer_split_everywhere),
		cmocka_unit_test(test_frame_deframer_two_frames_one_feed),
		cmocka_unit_test(test_frame_deframer_empty_frames),
		cmocka_unit_test(test_frame_deframer_garbage),
		cmocka_unit_test(test_frame_deframer_corrupt_byte),
		cmocka_unit_test(test_frame_deframer_oversize_then_good),
		cmocka_unit_test(test_frame_deframer_oversize_in_one_feed),
		cmocka_unit_test(test_frame_deframer_decodes_oversize),
		cmocka_unit_test(test_frame_deframer_short_and_reserved),
		cmocka_unit_test(test_frame_deframer_largest_in_pieces),
		cmocka_unit_test(test_frame_deframer_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
