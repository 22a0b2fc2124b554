/* SPDX-License-Identifier: MIT */
/*
 * test_link.c - the link layer: handshake, epochs, stale and echoed frames,
 * restarts of either side, keepalive.
 *
 * Two links are joined by an in-memory "wire" that carries bytes on the
 * next loop iteration (as a socket would), and that a test can cut, fill
 * with garbage, or make echo back what it carries.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "bridge/link.h"

typedef struct end {
	xmq_link_t link;
	struct end *peer;
	uint8_t *q;          /* bytes on their way to the peer */
	size_t q_len;
	bool cut;            /* drop what this end writes */
	bool echo;           /* the peer's line echoes this end's bytes back */
	unsigned ups;
	unsigned downs;
	int last_down;
	unsigned frames;
	xmq_frame_t last;
	uint8_t last_body[256];
} end_t;

typedef struct pair {
	uv_loop_t loop;
	uv_idle_t idle;
	end_t a;  /* initiator */
	end_t b;  /* responder */
} pair_t;

static void push(end_t *e, const uint8_t *data, size_t len)
{
	e->q = realloc(e->q, e->q_len + len);
	assert_non_null(e->q);
	memcpy(e->q + e->q_len, data, len);
	e->q_len += len;
}

static int on_write(xmq_link_t *l, xmq_wire_t *w)
{
	end_t *e = l->data;

	if (!e->cut) {
		push(e, w->data, w->len);
		if (e->echo)
			push(e->peer, w->data, w->len);
	}
	free(w->data);
	return 0;
}

static void on_up(xmq_link_t *l)
{
	((end_t *)l->data)->ups++;
}

static void on_down(xmq_link_t *l, int err)
{
	end_t *e = l->data;

	e->downs++;
	e->last_down = err;
}

static void on_frame(xmq_link_t *l, const xmq_frame_t *f)
{
	end_t *e = l->data;

	e->frames++;
	e->last = *f;
	memcpy(e->last_body, f->body, f->body_len < sizeof(e->last_body) ? f->body_len : 0);
}

static const xmq_link_ops_t ops = {
	.write = on_write,
	.up = on_up,
	.down = on_down,
	.frame = on_frame,
};

/* Deliver what each end wrote to the other, once per loop iteration. */
static void deliver(end_t *from)
{
	uint8_t *q = from->q;
	size_t n = from->q_len;

	if (n == 0)
		return;
	from->q = NULL;
	from->q_len = 0;
	xmq_link_feed(&from->peer->link, q, n);
	free(q);
}

static void on_idle(uv_idle_t *h)
{
	pair_t *p = h->data;

	deliver(&p->a);
	deliver(&p->b);
}

static int setup(void **state)
{
	pair_t *p = calloc(1, sizeof(*p));
	xmq_link_opts_t ao = { .keepalive = 1 };
	xmq_link_opts_t bo = { .max_frame = 4096, .max_streams = 7 };

	assert_non_null(p);
	assert_int_equal(uv_loop_init(&p->loop), 0);
	p->a.peer = &p->b;
	p->b.peer = &p->a;
	assert_int_equal(xmq_link_init(&p->loop, &p->a.link, XMQ_LINK_INITIATOR, &ao, &ops, &p->a), 0);
	assert_int_equal(xmq_link_init(&p->loop, &p->b.link, XMQ_LINK_RESPONDER, &bo, &ops, &p->b), 0);
	uv_idle_init(&p->loop, &p->idle);
	p->idle.data = p;
	uv_idle_start(&p->idle, on_idle);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	pair_t *p = *state;

	xmq_link_close(&p->a.link, NULL);
	xmq_link_close(&p->b.link, NULL);
	uv_close((uv_handle_t *)&p->idle, NULL);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&p->loop), 0);
	free(p->a.q);
	free(p->b.q);
	free(p);
	return 0;
}

/* Run the loop until cond holds, for at most ms milliseconds of loop time. */
#define RUN_UNTIL(p, cond, ms)                                                        \
	do {                                                                          \
		uint64_t until_ = uv_now(&(p)->loop) + (ms);                           \
		while (!(cond) && uv_now(&(p)->loop) < until_)                         \
			uv_run(&(p)->loop, UV_RUN_ONCE);                               \
		assert_true(cond);                                                    \
	} while (0)

static void connect_pair(pair_t *p)
{
	xmq_link_start(&p->b.link);
	xmq_link_start(&p->a.link);
	RUN_UNTIL(p, xmq_link_is_up(&p->a.link) && xmq_link_is_up(&p->b.link), 5000);
}

static void send_publish(end_t *from, uint16_t stream, uint32_t epoch_override)
{
	xmq_message_t m = { .topic = "t", .payload = "x", .payload_len = 1 };
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&from->link, XMQ_T_PUBLISH, stream, &h);
	if (epoch_override != 0)
		h.epoch = epoch_override;
	assert_int_equal(xmq_encode_publish(&h, 0, &m, &w), 0);
	if (epoch_override != 0) {
		/* Straight onto the wire: xmq_link_write() would stamp nothing
		 * differently, but this is what a stale sender does. */
		push(from, w.data, w.len);
		free(w.data);
		return;
	}
	assert_int_equal(xmq_link_write(&from->link, &w), 0);
}

static void test_link_handshake_agrees_on_an_epoch(void **state)
{
	pair_t *p = *state;

	connect_pair(p);
	assert_int_equal(p->a.ups, 1);
	assert_int_equal(p->b.ups, 1);
	assert_int_not_equal(p->a.link.epoch, 0);
	assert_int_equal(p->a.link.epoch, p->b.link.epoch);
	/* What each side announced reached the other. */
	assert_int_equal(xmq_link_peer_max_frame(&p->a.link), 4096);
	assert_int_equal(p->a.link.peer_max_streams, 7);
	assert_int_equal(p->b.link.peer_keepalive, 1);
}

static void test_link_session_frames_flow_both_ways(void **state)
{
	pair_t *p = *state;

	connect_pair(p);
	send_publish(&p->a, 3, 0);
	send_publish(&p->b, 4, 0);
	RUN_UNTIL(p, p->a.frames == 1 && p->b.frames == 1, 2000);
	assert_int_equal(p->b.last.hdr.stream, 3);
	assert_int_equal(p->b.last.hdr.dir, XMQ_DIR_UP);
	assert_int_equal(p->a.last.hdr.stream, 4);
	assert_int_equal(p->a.last.hdr.dir, XMQ_DIR_DOWN);
}

static void test_link_drops_frames_of_another_epoch(void **state)
{
	pair_t *p = *state;
	uint64_t stale;

	connect_pair(p);
	stale = p->b.link.stats.stale;
	send_publish(&p->a, 1, p->a.link.epoch ^ 0x5a5a5a5a);
	send_publish(&p->a, 2, 0);
	RUN_UNTIL(p, p->b.frames == 1, 2000);
	assert_int_equal(p->b.last.hdr.stream, 2);
	assert_int_equal(p->b.link.stats.stale, stale + 1);
}

static void test_link_ignores_its_own_echo(void **state)
{
	pair_t *p = *state;

	/* A tty not yet raw echoes what Dom0 sends back to Dom0: the
	 * responder's probe and HELLO_ACK come back to it. */
	p->b.echo = true;
	connect_pair(p);
	send_publish(&p->b, 5, 0);
	RUN_UNTIL(p, p->a.frames == 1, 2000);
	RUN_UNTIL(p, p->b.link.stats.echoed >= 3, 2000);
	assert_int_equal(p->b.frames, 0);
	assert_int_equal(p->b.ups, 1);
	assert_int_equal(p->a.ups, 1);
}

static void test_link_resynchronises_after_garbage(void **state)
{
	pair_t *p = *state;
	static const uint8_t junk[] = { 0x13, 0x37, 0x00, 0xff, 0xfe, 0x01, 0x02, 0x00, 0x41 };

	connect_pair(p);
	push(&p->a, junk, sizeof(junk));
	send_publish(&p->a, 9, 0);
	RUN_UNTIL(p, p->b.frames == 1, 2000);
	assert_int_equal(p->b.last.hdr.stream, 9);
	assert_true(p->b.link.stats.bad >= 1);
	assert_true(xmq_link_is_up(&p->b.link));
}

static void test_link_responder_restart_starts_a_new_epoch(void **state)
{
	pair_t *p = *state;
	uint32_t old;

	connect_pair(p);
	old = p->a.link.epoch;
	/* xenmqd restarted and connected again: it sends a probe. */
	xmq_link_start(&p->b.link);
	RUN_UNTIL(p, p->a.ups == 2 && xmq_link_is_up(&p->b.link), 5000);
	assert_int_equal(p->a.downs, 1);
	assert_int_equal(p->a.last_down, -ECONNRESET);
	assert_int_not_equal(p->a.link.epoch, old);
	assert_int_equal(p->a.link.epoch, p->b.link.epoch);
	/* Frames of the old epoch still on their way are dropped. */
	send_publish(&p->a, 1, old);
	send_publish(&p->a, 2, 0);
	RUN_UNTIL(p, p->b.frames == 1, 2000);
	assert_int_equal(p->b.last.hdr.stream, 2);
}

static void test_link_initiator_restart_starts_a_new_epoch(void **state)
{
	pair_t *p = *state;
	uint32_t old;

	connect_pair(p);
	old = p->b.link.epoch;
	/* The agent restarted: a new HELLO with a new nonce. */
	xmq_link_start(&p->a.link);
	RUN_UNTIL(p, p->b.ups == 2 && xmq_link_is_up(&p->a.link), 5000);
	assert_int_equal(p->b.downs, 1);
	assert_int_equal(p->b.last_down, -ECONNRESET);
	assert_int_not_equal(p->b.link.epoch, old);
	assert_int_equal(p->a.link.epoch, p->b.link.epoch);
}

static void test_link_repeated_hello_keeps_the_epoch(void **state)
{
	pair_t *p = *state;
	uint32_t epoch;
	xmq_hdr_t h;
	xmq_wire_t w;
	xmq_hello_t hello = { 1, 1, 0, 65536, 1 };

	connect_pair(p);
	epoch = p->b.link.epoch;
	/* The initiator's HELLO crossed our HELLO_ACK and came again. */
	hello.nonce = p->a.link.nonce;
	xmq_link_hdr(&p->a.link, XMQ_T_HELLO, 0, &h);
	assert_int_equal(xmq_encode_hello(&h, &hello, &w), 0);
	push(&p->a, w.data, w.len);
	free(w.data);
	send_publish(&p->a, 6, 0);
	RUN_UNTIL(p, p->b.frames == 1, 2000);
	assert_int_equal(p->b.link.epoch, epoch);
	assert_int_equal(p->a.link.epoch, epoch);
	assert_int_equal(p->b.downs, 0);
	assert_int_equal(p->a.downs, 0);
}

static void test_link_ignores_hello_ack_for_another_nonce(void **state)
{
	pair_t *p = *state;
	xmq_hello_ack_t ack = { 1, 0, 65536, 10 };
	xmq_hdr_t h;
	xmq_wire_t w;

	connect_pair(p);
	ack.nonce = p->a.link.nonce ^ 1;
	xmq_link_hdr(&p->b.link, XMQ_T_HELLO_ACK, 0, &h);
	h.epoch = 12345;
	assert_int_equal(xmq_encode_hello_ack(&h, &ack, &w), 0);
	push(&p->b, w.data, w.len);
	free(w.data);
	send_publish(&p->b, 2, 0);
	RUN_UNTIL(p, p->a.frames == 1, 2000);
	assert_int_equal(p->a.downs, 0);
	assert_int_equal(p->a.link.epoch, p->b.link.epoch);
	assert_int_equal(p->a.link.stats.stale, 1);
}

static void test_link_initiator_notices_a_silent_peer(void **state)
{
	pair_t *p = *state;

	connect_pair(p);
	/* The responder is gone without a word (a tty gives no EOF). */
	p->b.cut = true;
	RUN_UNTIL(p, p->a.downs == 1, 10000);
	assert_int_equal(p->a.last_down, -ETIMEDOUT);
	assert_false(xmq_link_is_up(&p->a.link));
	/* It pinged before giving up, and keeps saying HELLO after. */
	p->b.cut = false;
	RUN_UNTIL(p, p->a.ups == 2, 5000);
}

static void test_link_responder_notices_a_silent_peer(void **state)
{
	pair_t *p = *state;

	connect_pair(p);
	p->a.cut = true;
	RUN_UNTIL(p, p->b.downs == 1, 10000);
	assert_int_equal(p->b.last_down, -ETIMEDOUT);
}

static void test_link_keepalive_keeps_a_quiet_link_up(void **state)
{
	pair_t *p = *state;
	uint64_t until;

	connect_pair(p);
	/* Nothing but PING/PONG for 4 keepalives: still up, no restarts. */
	until = uv_now(&p->loop) + 4000;
	while (uv_now(&p->loop) < until)
		uv_run(&p->loop, UV_RUN_ONCE);
	assert_true(xmq_link_is_up(&p->a.link));
	assert_true(xmq_link_is_up(&p->b.link));
	assert_int_equal(p->a.downs + p->b.downs, 0);
}

static void test_link_write_while_down_fails(void **state)
{
	pair_t *p = *state;
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&p->a.link, XMQ_T_PING, 0, &h);
	assert_int_equal(xmq_encode_empty(&h, &w), 0);
	assert_int_equal(xmq_link_write(&p->a.link, &w), -ENOTCONN);
	assert_null(w.data);
}

static void test_link_stop_reports_down_and_ignores_input(void **state)
{
	pair_t *p = *state;

	connect_pair(p);
	xmq_link_stop(&p->b.link);
	assert_int_equal(p->b.downs, 1);
	assert_int_equal(p->b.last_down, 0);
	send_publish(&p->a, 1, p->a.link.epoch);
	RUN_UNTIL(p, p->a.q_len == 0, 1000);
	assert_int_equal(p->b.frames, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_link_handshake_agrees_on_an_epoch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_session_frames_flow_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_drops_frames_of_another_epoch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_ignores_its_own_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_resynchronises_after_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_responder_restart_starts_a_new_epoch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_initiator_restart_starts_a_new_epoch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_repeated_hello_keeps_the_epoch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_ignores_hello_ack_for_another_nonce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_initiator_notices_a_silent_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_responder_notices_a_silent_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_keepalive_keeps_a_quiet_link_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_write_while_down_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_stop_reports_down_and_ignores_input, setup, teardown),
	};

	return cmocka_run_group_tests_name("link", tests, NULL, NULL);
}
