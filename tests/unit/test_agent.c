/* SPDX-License-Identifier: MIT */
/*
 * test_agent.c - xenmq-agent's daemon object, run in-process against a fake
 * channel and fake applications.
 *
 * The channel is a pseudo-terminal: the agent opens its slave as it would
 * open /dev/hvcN, and the test plays xenmqd on the master with a responder
 * link. The applications are the test too: each connects to the agent's
 * socket and plays libxenmq with an initiator link. Everything runs on the
 * test's own loop; waits are conditions with a generous deadline, never
 * sleeps.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "bridge/frame.h"
#include "bridge/link.h"
#include "clients/agent/agent.h"
#include "clients/agent/client.h"

#define WAIT_MS 10000
#define TICK_MS 20
#define NCLIENTS 3

/* ---- a peer: the fake xenmqd or a fake application ------------------------ */

typedef struct rec {
	uint8_t type;
	uint16_t stream;
	uint8_t *body;
	size_t len;
} rec_t;

typedef struct peer {
	uv_loop_t *loop;
	uv_pipe_t pipe;
	bool pipe_live;
	bool open;
	bool eof;
	int connect_err;
	xmq_link_t link;
	bool link_live;
	uint64_t bytes_in;
	unsigned ups;
	unsigned downs;
	rec_t *frames;
	size_t nframes;
	size_t cap;
	unsigned pending;  /* handles closing */
} peer_t;

typedef struct wreq {
	uv_write_t req;
	uint8_t *data;
} wreq_t;

static void on_written(uv_write_t *req, int status)
{
	wreq_t *w = (wreq_t *)req;

	free(w->data);
	free(w);
}

static int peer_write(xmq_link_t *l, xmq_wire_t *wire)
{
	peer_t *p = l->data;
	wreq_t *w;
	uv_buf_t buf;
	int err;

	if (!p->open) {
		free(wire->data);
		wire->data = NULL;
		return -ENOTCONN;
	}
	w = malloc(sizeof(*w));
	assert_non_null(w);
	w->data = wire->data;
	wire->data = NULL;
	buf = uv_buf_init((char *)w->data, (unsigned)wire->len);
	err = uv_write(&w->req, (uv_stream_t *)&p->pipe, &buf, 1, on_written);
	if (err != 0) {
		free(w->data);
		free(w);
	}
	return err;
}

static void peer_up(xmq_link_t *l)
{
	((peer_t *)l->data)->ups++;
}

static void peer_down(xmq_link_t *l, int err)
{
	((peer_t *)l->data)->downs++;
}

static void peer_frame(xmq_link_t *l, const xmq_frame_t *f)
{
	peer_t *p = l->data;
	rec_t *r;

	if (p->nframes == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->frames = realloc(p->frames, p->cap * sizeof(*p->frames));
		assert_non_null(p->frames);
	}
	r = &p->frames[p->nframes++];
	r->type = f->hdr.type;
	r->stream = f->hdr.stream;
	r->len = f->body_len;
	r->body = malloc(f->body_len + 1);
	assert_non_null(r->body);
	memcpy(r->body, f->body, f->body_len);
}

static const xmq_link_ops_t peer_ops = {
	.write = peer_write,
	.up = peer_up,
	.down = peer_down,
	.frame = peer_frame,
};

static void peer_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char rbuf[65536];

	buf->base = rbuf;
	buf->len = sizeof(rbuf);
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	peer_t *p = s->data;

	if (n > 0) {
		p->bytes_in += (uint64_t)n;
		xmq_link_feed(&p->link, (const uint8_t *)buf->base, (size_t)n);
		return;
	}
	if (n < 0) {
		p->eof = true;
		p->open = false;
		(void)uv_read_stop(s);
		xmq_link_stop(&p->link);
	}
}

static void peer_init(uv_loop_t *loop, peer_t *p, xmq_link_role_t role, uint16_t max_streams)
{
	xmq_link_opts_t o = { .max_streams = max_streams };

	memset(p, 0, sizeof(*p));
	p->loop = loop;
	assert_int_equal(xmq_link_init(loop, &p->link, role, &o, &peer_ops, p), 0);
	p->link_live = true;
	assert_int_equal(uv_pipe_init(loop, &p->pipe, 0), 0);
	p->pipe.data = p;
	p->pipe_live = true;
}

static void peer_reading(peer_t *p, bool on)
{
	if (on)
		assert_int_equal(uv_read_start((uv_stream_t *)&p->pipe, peer_alloc, peer_read), 0);
	else
		(void)uv_read_stop((uv_stream_t *)&p->pipe);
}

static void on_connected(uv_connect_t *req, int status)
{
	peer_t *p = req->data;

	free(req);
	if (status != 0) {
		p->connect_err = status;
		return;
	}
	p->open = true;
	peer_reading(p, true);
	xmq_link_start(&p->link);
}

/* An application: connect to the agent and start handshaking. */
static void peer_connect(uv_loop_t *loop, peer_t *p, const char *path)
{
	uv_connect_t *req = malloc(sizeof(*req));

	assert_non_null(req);
	peer_init(loop, p, XMQ_LINK_INITIATOR, 0);
	req->data = p;
	uv_pipe_connect(req, &p->pipe, path, on_connected);
}

static void peer_handle_closed(uv_handle_t *h)
{
	((peer_t *)h->data)->pending--;
}

static void peer_link_closed(xmq_link_t *l)
{
	((peer_t *)l->data)->pending--;
}

static void peer_close(peer_t *p)
{
	p->open = false;
	if (p->link_live) {
		p->link_live = false;
		p->pending++;
		xmq_link_close(&p->link, peer_link_closed);
	}
	if (p->pipe_live) {
		p->pipe_live = false;
		p->pending++;
		uv_close((uv_handle_t *)&p->pipe, peer_handle_closed);
	}
}

static void peer_free_frames(peer_t *p)
{
	size_t i;

	for (i = 0; i < p->nframes; i++)
		free(p->frames[i].body);
	free(p->frames);
	p->frames = NULL;
	p->nframes = p->cap = 0;
}

/* Index of the n-th (0-based) recorded frame of type, or -1. */
static long peer_find(const peer_t *p, uint8_t type, unsigned n)
{
	size_t i;

	for (i = 0; i < p->nframes; i++) {
		if (p->frames[i].type == type && n-- == 0)
			return (long)i;
	}
	return -1;
}

static unsigned peer_count(const peer_t *p, uint8_t type)
{
	unsigned c = 0;
	size_t i;

	for (i = 0; i < p->nframes; i++)
		c += p->frames[i].type == type;
	return c;
}

static unsigned peer_count_on(const peer_t *p, uint8_t type, uint16_t stream)
{
	unsigned c = 0;
	size_t i;

	for (i = 0; i < p->nframes; i++)
		c += p->frames[i].type == type && p->frames[i].stream == stream;
	return c;
}

/* ---- frames the peers send ------------------------------------------------ */

static void send_wire(peer_t *p, xmq_wire_t *w)
{
	assert_int_equal(xmq_link_write(&p->link, w), 0);
}

static void send_open(peer_t *p, uint16_t stream, const char *app)
{
	xmq_open_t o = { .app = app, .flags = XMQ_OPEN_CLEAN_START, .receive_max = 16 };
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&p->link, XMQ_T_OPEN, stream, &h);
	assert_int_equal(xmq_encode_open(&h, &o, &w), 0);
	send_wire(p, &w);
}

static void send_open_ack(peer_t *p, uint16_t stream, uint8_t reason)
{
	xmq_open_ack_t b = { .reason = reason, .receive_max = 16 };
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&p->link, XMQ_T_OPEN_ACK, stream, &h);
	assert_int_equal(xmq_encode_open_ack(&h, &b, &w), 0);
	send_wire(p, &w);
}

static void send_close(peer_t *p, uint16_t stream, uint8_t reason)
{
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&p->link, XMQ_T_CLOSE, stream, &h);
	assert_int_equal(xmq_encode_close(&h, reason, &w), 0);
	send_wire(p, &w);
}

static void send_publish(peer_t *p, uint16_t stream, const char *topic, size_t len,
                         uint8_t qos, uint16_t packet_id)
{
	static uint8_t payload[XMQ_FRAME_MAX];
	xmq_message_t m = {
		.topic = topic, .payload = payload, .payload_len = len, .qos = qos,
	};
	xmq_hdr_t h;
	xmq_wire_t w;

	memset(payload, 'x', len);
	xmq_link_hdr(&p->link, XMQ_T_PUBLISH, stream, &h);
	assert_int_equal(xmq_encode_publish(&h, packet_id, &m, &w), 0);
	send_wire(p, &w);
}

static void send_subscribe(peer_t *p, uint16_t stream, const char *filter)
{
	xmq_subscribe_t b = { .packet_id = 7, .count = 1, .filter = { filter }, .options = { 1 } };
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&p->link, XMQ_T_SUBSCRIBE, stream, &h);
	assert_int_equal(xmq_encode_subscribe(&h, &b, &w), 0);
	send_wire(p, &w);
}

static void send_suback(peer_t *p, uint16_t stream)
{
	xmq_suback_t b = { .packet_id = 7, .count = 1, .reason = { 1 } };
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&p->link, XMQ_T_SUBACK, stream, &h);
	assert_int_equal(xmq_encode_suback(&h, &b, &w), 0);
	send_wire(p, &w);
}

/* A frame type that never travels up: OPEN_ACK from an application. */
static void send_wrong_way(peer_t *p, uint16_t stream)
{
	send_open_ack(p, stream, 0);
}

/* ---- the fixture ------------------------------------------------------------ */

typedef struct fixture {
	uv_loop_t loop;
	uv_timer_t tick;  /* wakes the loop so that deadlines are checked */
	char dir[64];
	char sock[96];
	int master;
	int slave;        /* held open so that the master never sees a hangup */
	char hvc[64];
	peer_t d0;        /* the fake xenmqd */
	peer_t d1;        /* another one, on a second pty */
	int slave2;
	char hvc2[64];
	char link[96];    /* a symlink that stands for the hvc */
	peer_t cl[NCLIENTS];
	xmq_agent_t *agent;
	bool agent_freed;
	unsigned finds;   /* calls to fake_find */
} fixture_t;

static fixture_t *current;  /* for fake_find, which has no data pointer */

#define WAIT_FOR(f, cond) do { \
	uint64_t deadline_ = uv_now(&(f)->loop) + WAIT_MS; \
	while (!(cond) && uv_now(&(f)->loop) < deadline_) \
		(void)uv_run(&(f)->loop, UV_RUN_ONCE); \
	if (!(cond)) \
		fail_msg("timed out waiting for: %s", #cond); \
} while (0)

/* Let the loop run a few rounds with nothing in particular to wait for. */
static void spin(fixture_t *f, unsigned rounds)
{
	while (rounds-- > 0)
		(void)uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void on_tick(uv_timer_t *t)
{
}

/* The fake xenmqd on a pty master (raw). */
static void pty_peer(fixture_t *f, peer_t *p, int master)
{
	struct termios t;

	assert_int_equal(tcgetattr(master, &t), 0);
	cfmakeraw(&t);
	assert_int_equal(tcsetattr(master, TCSANOW, &t), 0);
	peer_init(&f->loop, p, XMQ_LINK_RESPONDER, 0);
	assert_int_equal(uv_pipe_open(&p->pipe, master), 0);
	p->open = true;
	peer_reading(p, true);
}

/* A new pty; returns its master, the slave's path in path, its fd in *slave. */
static int new_pty(char path[64], int *slave)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);

	assert_true(master >= 0);
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	snprintf(path, 64, "%s", ptsname(master));
	*slave = open(path, O_RDWR | O_NOCTTY);
	assert_true(*slave >= 0);
	return master;
}

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(uv_timer_init(&f->loop, &f->tick), 0);
	assert_int_equal(uv_timer_start(&f->tick, on_tick, TICK_MS, TICK_MS), 0);
	strcpy(f->dir, "/tmp/xmq-agent-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/run/agent.sock", f->dir);

	f->master = new_pty(f->hvc, &f->slave);
	pty_peer(f, &f->d0, f->master);
	f->slave2 = -1;
	snprintf(f->link, sizeof(f->link), "%s/hvc", f->dir);
	current = f;
	*state = f;
	return 0;
}

static void on_agent_freed(void *data)
{
	((fixture_t *)data)->agent_freed = true;
}

static bool peers_closed(fixture_t *f)
{
	unsigned i;

	if (f->d0.pending > 0 || f->d1.pending > 0)
		return false;
	for (i = 0; i < NCLIENTS; i++) {
		if (f->cl[i].pending > 0)
			return false;
	}
	return true;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	char path[256];
	unsigned i;

	/* The agent first, while its channel and clients are still there. */
	if (f->agent != NULL) {
		xmq_agent_close(f->agent, on_agent_freed, f);
		WAIT_FOR(f, f->agent_freed);
	}
	for (i = 0; i < NCLIENTS; i++)
		peer_close(&f->cl[i]);
	peer_close(&f->d0);  /* closes the master */
	peer_close(&f->d1);
	uv_close((uv_handle_t *)&f->tick, NULL);
	while (!peers_closed(f))
		(void)uv_run(&f->loop, UV_RUN_ONCE);
	(void)uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	for (i = 0; i < NCLIENTS; i++)
		peer_free_frames(&f->cl[i]);
	peer_free_frames(&f->d0);
	peer_free_frames(&f->d1);
	if (f->slave >= 0)
		close(f->slave);
	if (f->slave2 >= 0)
		close(f->slave2);
	(void)unlink(f->link);
	snprintf(path, sizeof(path), "%s/run", f->dir);
	(void)unlink(f->sock);
	(void)rmdir(path);
	assert_int_equal(rmdir(f->dir), 0);
	current = NULL;
	free(f);
	return 0;
}

static void agent_run(fixture_t *f, xmq_agent_opts_t *o)
{
	if (o->hvc == NULL && o->channel == NULL)
		o->hvc = f->hvc;
	o->socket = f->sock;
	assert_int_equal(xmq_agent_new(&f->loop, o, &f->agent), 0);
	assert_int_equal(xmq_agent_start(f->agent), 0);
}

/* The fake xenmqd starts serving the channel, and the agent comes up. */
static void d0_start(fixture_t *f)
{
	xmq_link_start(&f->d0.link);
	WAIT_FOR(f, xmq_agent_channel_up(f->agent) && xmq_link_is_up(&f->d0.link));
}

static void client_up(fixture_t *f, unsigned i)
{
	peer_connect(&f->loop, &f->cl[i], f->sock);
	WAIT_FOR(f, xmq_link_is_up(&f->cl[i].link));
}

/* Client i opens its stream local as app; returns the channel stream. */
static uint16_t open_session(fixture_t *f, unsigned i, uint16_t local, const char *app)
{
	unsigned opens = peer_count(&f->d0, XMQ_T_OPEN);
	unsigned acks = peer_count_on(&f->cl[i], XMQ_T_OPEN_ACK, local);
	uint16_t chan;
	long k;

	send_open(&f->cl[i], local, app);
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_OPEN) == opens + 1);
	k = peer_find(&f->d0, XMQ_T_OPEN, opens);
	chan = f->d0.frames[k].stream;
	assert_true(chan != 0);
	send_open_ack(&f->d0, chan, 0);
	WAIT_FOR(f, peer_count_on(&f->cl[i], XMQ_T_OPEN_ACK, local) == acks + 1);
	return chan;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_agent_hello_waits_for_channel(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { 0 };
	peer_t *c = &f->cl[0];

	agent_run(f, &o);
	peer_connect(&f->loop, c, f->sock);
	/* The library repeats its HELLO every second: once the agent has
	 * read two of them, an answer to the first one would be here. */
	WAIT_FOR(f, f->agent->clients != NULL && c->link.stats.frames_out >= 2 &&
	         f->agent->clients->chan.bytes_in >= c->link.stats.bytes_out);
	spin(f, 10);
	assert_false(xmq_agent_channel_up(f->agent));
	assert_int_equal(c->bytes_in, 0);
	assert_false(xmq_link_is_up(&c->link));

	d0_start(f);
	WAIT_FOR(f, xmq_link_is_up(&c->link));
	assert_int_equal(c->ups, 1);
	/* What the client was told: the channel's limits. */
	assert_int_equal(c->link.peer_max_frame, XMQ_FRAME_MAX);
	assert_int_equal(c->link.peer_max_streams, XMQ_AGENT_CLIENT_STREAMS_MAX);
}

static void test_agent_routes_two_clients(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { 0 };
	peer_t *a = &f->cl[0];
	peer_t *b = &f->cl[1];
	uint16_t sa;
	uint16_t sb;
	long k;

	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	client_up(f, 1);
	sa = open_session(f, 0, 1, "app-a");
	sb = open_session(f, 1, 1, "app-b");
	assert_true(sa != sb);
	k = peer_find(&f->d0, XMQ_T_OPEN, 0);
	assert_int_equal(f->d0.frames[k].stream, sa);
	assert_memory_equal(f->d0.frames[k].body + 2, "app-a", 5);

	send_publish(a, 1, "t/a", 10, 0, 0);
	send_subscribe(b, 1, "t/#");
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_PUBLISH) == 1 &&
	         peer_count(&f->d0, XMQ_T_SUBSCRIBE) == 1);
	assert_int_equal(peer_count_on(&f->d0, XMQ_T_PUBLISH, sa), 1);
	assert_int_equal(peer_count_on(&f->d0, XMQ_T_SUBSCRIBE, sb), 1);

	send_suback(&f->d0, sb);
	send_publish(&f->d0, sb, "t/a", 10, 1, 3);
	WAIT_FOR(f, peer_count(b, XMQ_T_SUBACK) == 1 && peer_count(b, XMQ_T_PUBLISH) == 1);
	assert_int_equal(peer_count_on(b, XMQ_T_PUBLISH, 1), 1);
	k = peer_find(b, XMQ_T_PUBLISH, 0);
	assert_int_equal(b->frames[k].body[0], 1);  /* QoS 1, untouched */

	/* A re-OPEN keeps its channel stream. */
	send_open(a, 1, "app-a");
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_OPEN) == 3);
	k = peer_find(&f->d0, XMQ_T_OPEN, 2);
	assert_int_equal(f->d0.frames[k].stream, sa);

	/* Nothing crossed over. */
	spin(f, 10);
	assert_int_equal(peer_count(a, XMQ_T_PUBLISH), 0);
	assert_int_equal(peer_count(a, XMQ_T_SUBACK), 0);
	assert_int_equal(f->agent->stats.unknown, 0);
}

static void test_agent_client_eof_closes_with_will(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { 0 };
	uint16_t s1;
	uint16_t s2;
	uint16_t sb;
	size_t i;

	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	client_up(f, 1);
	s1 = open_session(f, 0, 1, "one");
	s2 = open_session(f, 0, 2, "two");
	sb = open_session(f, 1, 5, "other");
	assert_int_equal(f->agent->routes.count, 3);

	peer_close(&f->cl[0]);
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_CLOSE) == 2);
	for (i = 0; i < f->d0.nframes; i++) {
		if (f->d0.frames[i].type != XMQ_T_CLOSE)
			continue;
		assert_true(f->d0.frames[i].stream == s1 || f->d0.frames[i].stream == s2);
		assert_int_equal(f->d0.frames[i].len, 1);
		assert_int_equal(f->d0.frames[i].body[0], 0x04);
	}
	WAIT_FOR(f, f->agent->nclients == 1);
	assert_int_equal(f->agent->routes.count, 1);
	assert_non_null(xmq__routes_find(&f->agent->routes, sb));

	/* A normal CLOSE from the other client is passed on as it is. */
	send_close(&f->cl[1], 5, 0x00);
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_CLOSE) == 3);
	assert_int_equal(peer_count_on(&f->d0, XMQ_T_CLOSE, sb), 1);
	i = (size_t)peer_find(&f->d0, XMQ_T_CLOSE, 2);
	assert_int_equal(f->d0.frames[i].body[0], 0x00);
	assert_int_equal(f->agent->routes.count, 0);
}

static void test_agent_channel_restart_reprobes_clients(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { 0 };
	uint32_t epoch[2];
	uint32_t chan_epoch;
	uint16_t sa;
	unsigned i;

	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	client_up(f, 1);
	sa = open_session(f, 0, 1, "app-a");
	(void)open_session(f, 1, 1, "app-b");
	for (i = 0; i < 2; i++)
		epoch[i] = f->cl[i].link.epoch;
	chan_epoch = f->d0.link.epoch;

	/* xenmqd restarts: a new epoch on the channel. */
	xmq_link_restart(&f->d0.link);
	WAIT_FOR(f, f->d0.ups == 2 && xmq_agent_channel_up(f->agent));
	assert_true(f->d0.link.epoch != chan_epoch);
	for (i = 0; i < 2; i++) {
		WAIT_FOR(f, f->cl[i].ups == 2 && xmq_link_is_up(&f->cl[i].link));
		assert_true(f->cl[i].downs >= 1);
		assert_true(f->cl[i].link.epoch != epoch[i]);
	}
	/* Every mapping was forgotten: the old stream leads nowhere. */
	assert_int_equal(f->agent->routes.count, 0);
	send_publish(&f->d0, sa, "t/x", 4, 0, 0);
	WAIT_FOR(f, f->agent->stats.unknown == 1);
	spin(f, 10);
	assert_int_equal(peer_count(&f->cl[0], XMQ_T_PUBLISH), 0);

	/* And the replayed OPEN gets a new one. */
	(void)open_session(f, 0, 1, "app-a");
}

static void test_agent_client_cannot_use_other_stream(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { 0 };
	uint16_t sa;

	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	client_up(f, 1);
	sa = open_session(f, 0, 1, "app-a");

	/* Client 1 never opened stream 1 (client 0 did). */
	send_publish(&f->cl[1], 1, "t/b", 4, 0, 0);
	send_close(&f->cl[1], 1, 0x00);
	send_publish(&f->cl[1], sa, "t/b", 4, 0, 0);
	send_wrong_way(&f->cl[1], 1);
	WAIT_FOR(f, f->agent->stats.unknown == 3 && f->agent->stats.bad == 1);

	/* Client 0's session is untouched. */
	send_publish(&f->cl[0], 1, "t/a", 4, 0, 0);
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_PUBLISH) == 1);
	assert_int_equal(peer_count_on(&f->d0, XMQ_T_PUBLISH, sa), 1);
	assert_int_equal(peer_count(&f->d0, XMQ_T_CLOSE), 0);
	assert_int_equal(peer_count(&f->d0, XMQ_T_OPEN_ACK), 0);
}

static void test_agent_open_refused_frees_route(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { 0 };
	uint16_t chan;
	long k;

	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	send_open(&f->cl[0], 9, "nope");
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_OPEN) == 1);
	k = peer_find(&f->d0, XMQ_T_OPEN, 0);
	chan = f->d0.frames[k].stream;
	/* Until the OPEN_ACK, nothing else reaches the session. */
	send_publish(&f->d0, chan, "t/x", 4, 0, 0);
	send_open_ack(&f->d0, chan, 0x87);
	WAIT_FOR(f, peer_count(&f->cl[0], XMQ_T_OPEN_ACK) == 1);
	k = peer_find(&f->cl[0], XMQ_T_OPEN_ACK, 0);
	assert_int_equal(f->cl[0].frames[k].stream, 9);
	assert_int_equal(f->cl[0].frames[k].body[0], 0x87);
	assert_int_equal(f->agent->routes.count, 0);

	send_publish(&f->d0, chan, "t/x", 4, 0, 0);
	WAIT_FOR(f, f->agent->stats.unknown == 2);
	spin(f, 10);
	assert_int_equal(peer_count(&f->cl[0], XMQ_T_PUBLISH), 0);
}

static void test_agent_checks_what_it_routes(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { 0 };
	static const uint8_t junk[] = { 0x00, 0x01 };
	xmq_frame_t bad = { .body = junk, .body_len = sizeof(junk) };
	xmq_hdr_t h;
	xmq_wire_t w;
	long k;

	/* xenmqd accepts frames of 1 KiB at most. */
	f->d0.link.opts.max_frame = 1024;
	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	assert_int_equal(f->cl[0].link.peer_max_frame, 1024);

	/* A malformed OPEN is answered by the agent, never passed on. */
	bad.hdr.type = XMQ_T_OPEN;
	xmq_link_hdr(&f->cl[0].link, XMQ_T_OPEN, 4, &h);
	assert_int_equal(xmq_encode_rewrap(&h, &bad, &w), 0);
	send_wire(&f->cl[0], &w);
	WAIT_FOR(f, peer_count(&f->cl[0], XMQ_T_OPEN_ACK) == 1);
	k = peer_find(&f->cl[0], XMQ_T_OPEN_ACK, 0);
	assert_int_equal(f->cl[0].frames[k].stream, 4);
	assert_int_equal(f->cl[0].frames[k].body[0], 0x81);  /* malformed packet */
	assert_int_equal(f->agent->stats.open_refused, 1);

	/* A PUBLISH larger than xenmqd takes: QoS 1 is answered 0x95. */
	(void)open_session(f, 0, 1, "big");
	send_publish(&f->cl[0], 1, "t/big", 2000, 1, 9);
	WAIT_FOR(f, peer_count(&f->cl[0], XMQ_T_PUBACK) == 1);
	k = peer_find(&f->cl[0], XMQ_T_PUBACK, 0);
	assert_int_equal(f->cl[0].frames[k].body[1], 9);
	assert_int_equal(f->cl[0].frames[k].body[2], 0x95);
	assert_int_equal(f->agent->stats.oversize, 1);
	send_publish(&f->cl[0], 1, "t/small", 100, 1, 10);
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_PUBLISH) == 1);
	assert_int_equal(peer_count(&f->d0, XMQ_T_OPEN), 1);
}

static void test_agent_streams_exhausted(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { 0 };
	uint16_t s1;
	uint16_t s2;
	long k;

	/* xenmqd allows two sessions on this channel. */
	f->d0.link.opts.max_streams = 2;
	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	client_up(f, 1);
	assert_int_equal(f->cl[0].link.peer_max_streams, 2);
	s1 = open_session(f, 0, 1, "one");
	s2 = open_session(f, 1, 1, "two");
	assert_true(s1 >= 1 && s1 <= 2 && s2 >= 1 && s2 <= 2 && s1 != s2);

	send_open(&f->cl[0], 2, "three");
	WAIT_FOR(f, peer_count(&f->cl[0], XMQ_T_OPEN_ACK) == 2);
	k = peer_find(&f->cl[0], XMQ_T_OPEN_ACK, 1);
	assert_int_equal(f->cl[0].frames[k].stream, 2);
	assert_int_equal(f->cl[0].frames[k].body[0], 0x97);  /* quota exceeded */
	assert_int_equal(peer_count(&f->d0, XMQ_T_OPEN), 2);

	/* Once one ends, its id is free again. */
	send_close(&f->cl[1], 1, 0x00);
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_CLOSE) == 1);
	assert_int_equal(open_session(f, 0, 2, "three"), s2);
}

static void test_agent_backpressure_pauses_clients(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { .chan_queue_max = 4096 };
	const unsigned n = 1000;
	unsigned i;

	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	client_up(f, 1);
	(void)open_session(f, 0, 1, "flood");
	(void)open_session(f, 1, 1, "calm");

	/* xenmqd stops reading: the tty fills, then the agent's queue. */
	peer_reading(&f->d0, false);
	for (i = 0; i < n; i++)
		send_publish(&f->cl[0], 1, "t/flood", 1000, 0, 0);
	WAIT_FOR(f, f->agent->paused);
	assert_int_equal(f->agent->stats.pauses, 1);
	assert_true(f->agent->clients->chan.paused && f->agent->clients->next->chan.paused);
	/* Bounded: one read's worth of frames over the limit at most. */
	assert_true(xmq_chan_queued(&f->agent->chan) < 4096 + 2 * XMQ_CHAN_READ_BUF + 2048);
	/* The other client is paused too, and nothing is lost. */
	send_publish(&f->cl[1], 1, "t/calm", 10, 1, 1);

	peer_reading(&f->d0, true);
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_PUBLISH) == n + 1);
	WAIT_FOR(f, !f->agent->paused);
	assert_false(f->agent->clients->chan.paused);
	assert_int_equal(f->agent->stats.qos0_dropped, 0);
}

static void test_agent_flood_does_not_starve_others(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { 0 };
	const unsigned n = 1000;
	uint16_t calm;
	unsigned i;
	long k;

	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	client_up(f, 1);
	(void)open_session(f, 0, 1, "flood");
	calm = open_session(f, 1, 1, "calm");

	/* A megabyte from one client, then one message from the other: the
	 * agent reads each client a bounded amount at a time, so the calm
	 * one's message does not wait behind the whole flood. */
	for (i = 0; i < n; i++)
		send_publish(&f->cl[0], 1, "t/flood", 1000, 0, 0);
	send_publish(&f->cl[1], 1, "t/calm", 10, 0, 0);
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_PUBLISH) == n + 1);
	for (k = 0; f->d0.frames[k].type != XMQ_T_PUBLISH || f->d0.frames[k].stream != calm; k++)
		;
	assert_true((unsigned long)k < f->d0.nframes - n / 2);
}

static void test_agent_slow_client_loses_qos0_only(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { .client_queue_max = 4096 };
	const unsigned n = 1000;
	uint16_t chan;
	unsigned i;

	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	chan = open_session(f, 0, 1, "slow");

	peer_reading(&f->cl[0], false);
	for (i = 0; i < n; i++)
		send_publish(&f->d0, chan, "t/slow", 1000, 0, 0);
	WAIT_FOR(f, f->agent->stats.qos0_dropped > 0);
	/* QoS 1 always goes through. */
	send_publish(&f->d0, chan, "t/slow", 1000, 1, 42);
	WAIT_FOR(f, f->agent->clients->link.stats.frames_out >= 3 + n - f->agent->stats.qos0_dropped);
	peer_reading(&f->cl[0], true);
	WAIT_FOR(f, peer_count(&f->cl[0], XMQ_T_PUBLISH) == n + 1 - f->agent->stats.qos0_dropped);
	assert_int_equal(f->agent->clients->qos0_dropped, f->agent->stats.qos0_dropped);
	i = (unsigned)peer_find(&f->cl[0], XMQ_T_PUBLISH, n - (unsigned)f->agent->stats.qos0_dropped);
	assert_int_equal(f->cl[0].frames[i].body[0], 1);
	assert_int_equal(f->cl[0].frames[i].body[2], 42);
}

static void test_agent_refuses_over_max_clients(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { .max_clients = 1 };

	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	/* Two at once: the second waits for the first one's rejection. */
	peer_connect(&f->loop, &f->cl[1], f->sock);
	peer_connect(&f->loop, &f->cl[2], f->sock);
	WAIT_FOR(f, f->cl[1].eof && f->cl[2].eof);
	assert_int_equal(f->agent->stats.refused, 2);
	assert_int_equal(f->agent->nclients, 1);
	assert_false(xmq_link_is_up(&f->cl[1].link));
	(void)open_session(f, 0, 1, "still-here");

	/* Room again once the first one leaves. */
	peer_close(&f->cl[0]);
	WAIT_FOR(f, f->agent->nclients == 0);
	peer_close(&f->cl[1]);
	WAIT_FOR(f, f->cl[1].pending == 0);
	client_up(f, 1);
}

static int fake_find(const char *name, char **path)
{
	fixture_t *f = current;

	assert_string_equal(name, "org.xenmq");
	/* The channel shows up on the third look. */
	if (++f->finds < 3)
		return -ENOENT;
	*path = strdup(f->hvc);
	return *path != NULL ? 0 : -ENOMEM;
}

static void test_agent_finds_channel_by_name(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { .channel = "org.xenmq", .find = fake_find };

	agent_run(f, &o);
	assert_int_equal(f->finds, 1);
	assert_false(f->agent->chan_live);
	/* The socket is there already: applications can start waiting. */
	peer_connect(&f->loop, &f->cl[0], f->sock);
	WAIT_FOR(f, f->agent->chan_live);
	assert_int_equal(f->finds, 3);
	assert_string_equal(f->agent->hvc, f->hvc);
	d0_start(f);
	WAIT_FOR(f, xmq_link_is_up(&f->cl[0].link));
}

static void test_agent_waits_for_hvc(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { .hvc = f->link };

	/* The tty is not there yet: the agent keeps trying. */
	agent_run(f, &o);
	peer_connect(&f->loop, &f->cl[0], f->sock);
	WAIT_FOR(f, f->agent->nclients == 1);
	assert_int_equal(symlink(f->hvc, f->link), 0);
	d0_start(f);
	WAIT_FOR(f, xmq_link_is_up(&f->cl[0].link));
}

static void test_agent_reopens_hvc(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { .hvc = f->link };
	int master2;

	assert_int_equal(symlink(f->hvc, f->link), 0);
	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	(void)open_session(f, 0, 1, "app");

	/* The tty goes away (its other side hangs up) and another one takes
	 * its place: the agent reopens the path, and the client comes back. */
	master2 = new_pty(f->hvc2, &f->slave2);
	pty_peer(f, &f->d1, master2);
	assert_int_equal(unlink(f->link), 0);
	assert_int_equal(symlink(f->hvc2, f->link), 0);
	close(f->slave);
	f->slave = -1;
	peer_close(&f->d0);
	WAIT_FOR(f, !xmq_agent_channel_up(f->agent) && f->cl[0].downs == 1);
	assert_int_equal(f->agent->routes.count, 0);
	xmq_link_start(&f->d1.link);
	WAIT_FOR(f, xmq_agent_channel_up(f->agent) && xmq_link_is_up(&f->d1.link));
	WAIT_FOR(f, f->cl[0].ups == 2 && xmq_link_is_up(&f->cl[0].link));
	send_open(&f->cl[0], 1, "app");
	WAIT_FOR(f, peer_count(&f->d1, XMQ_T_OPEN) == 1);
}

static void test_agent_hvc_find_without_xenstore(void **state)
{
	char *path = (char *)"unchanged";
	int err;

	/* XenStore exists only inside Xen (tests/xen covers it there). */
	if (access("/dev/xen/xenbus", F_OK) == 0 || access("/run/xenstored/socket", F_OK) == 0)
		skip();
	err = xmq__hvc_find("org.xenmq", &path);
	assert_true(err == -ENODEV || err == -ENOTSUP);
	assert_string_equal(path, "unchanged");
}

static int noxen_find(const char *name, char **path)
{
	return -ENOTSUP;
}

static void test_agent_channel_name_needs_xen(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { .channel = "org.xenmq", .find = noxen_find, .socket = f->sock };
	struct stat st;

	assert_int_equal(xmq_agent_new(&f->loop, &o, &f->agent), 0);
	assert_int_equal(xmq_agent_start(f->agent), -ENOTSUP);
	assert_int_equal(lstat(f->sock, &st), -1);
}

static void test_agent_socket_file(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { .mode = 0600, .hvc = f->hvc, .socket = f->sock };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	xmq_agent_t *other = NULL;
	struct stat st;
	int fd;

	/* A stale socket, left by a crash: bound, nobody listening. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/run", f->dir);
	assert_int_equal(mkdir(sa.sun_path, 0755), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);

	assert_int_equal(xmq_agent_new(&f->loop, &o, &f->agent), 0);
	assert_int_equal(xmq_agent_start(f->agent), 0);
	assert_int_equal(lstat(f->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);

	/* A second agent on the same socket must not steal it. */
	assert_int_equal(xmq_agent_new(&f->loop, &o, &other), 0);
	assert_int_equal(xmq_agent_start(other), -EADDRINUSE);
	xmq_agent_close(other, NULL, NULL);
	peer_connect(&f->loop, &f->cl[0], f->sock);
	WAIT_FOR(f, f->agent->nclients == 1);

	/* Closing removes the socket file. */
	xmq_agent_close(f->agent, on_agent_freed, f);
	WAIT_FOR(f, f->agent_freed);
	f->agent = NULL;
	assert_int_equal(lstat(f->sock, &st), -1);

	/* Something that is not a socket is never removed. */
	fd = open(f->sock, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	f->agent_freed = false;
	assert_int_equal(xmq_agent_new(&f->loop, &o, &f->agent), 0);
	assert_int_equal(xmq_agent_start(f->agent), -EEXIST);
	assert_int_equal(lstat(f->sock, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void test_agent_close_ends_sessions(void **state)
{
	fixture_t *f = *state;
	xmq_agent_opts_t o = { 0 };
	uint16_t chan;
	long k;

	agent_run(f, &o);
	d0_start(f);
	client_up(f, 0);
	chan = open_session(f, 0, 1, "app");
	xmq_agent_close(f->agent, on_agent_freed, f);
	WAIT_FOR(f, f->agent_freed);
	f->agent = NULL;
	WAIT_FOR(f, peer_count(&f->d0, XMQ_T_CLOSE) == 1 && f->cl[0].eof);
	k = peer_find(&f->d0, XMQ_T_CLOSE, 0);
	assert_int_equal(f->d0.frames[k].stream, chan);
	assert_int_equal(f->d0.frames[k].body[0], 0x04);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_agent_hello_waits_for_channel),
		T(test_agent_routes_two_clients),
		T(test_agent_client_eof_closes_with_will),
		T(test_agent_channel_restart_reprobes_clients),
		T(test_agent_client_cannot_use_other_stream),
		T(test_agent_open_refused_frees_route),
		T(test_agent_checks_what_it_routes),
		T(test_agent_streams_exhausted),
		T(test_agent_backpressure_pauses_clients),
		T(test_agent_flood_does_not_starve_others),
		T(test_agent_slow_client_loses_qos0_only),
		T(test_agent_refuses_over_max_clients),
		T(test_agent_finds_channel_by_name),
		T(test_agent_waits_for_hvc),
		T(test_agent_reopens_hvc),
		T(test_agent_channel_name_needs_xen),
		cmocka_unit_test(test_agent_hvc_find_without_xenstore),
		T(test_agent_socket_file),
		T(test_agent_close_ends_sessions),
#undef T
	};

	signal(SIGPIPE, SIG_IGN);
	xmq_log_setup("xenmq-agent", getenv("XMQ_TEST_VERBOSE") != NULL ? LOG_DEBUG : LOG_CRIT, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
