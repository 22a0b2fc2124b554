/* SPDX-License-Identifier: MIT */
/*
 * test_client.c - libxenmq (clients/lib/): URL parsing and defaults, the
 * checks on what an application hands over, the mqtt+unix: transport
 * against a real mosquitto (round trip with properties, QoS 1 across a
 * broker outage, subscriptions restored after a restart, the last will when
 * the connection is cut), and the agent: transport against a responder
 * played here with bridge/link.c (the OPEN handshake, replay after a new
 * epoch, the receive window, frame size limits, CLOSE and refusals, and
 * frames sent again when a channel lost them or their answers).
 *
 * Every test owns its loop and checks that closing the client released
 * every handle (uv_loop_close() == 0). Waiting is always for a condition,
 * with a generous deadline, never for a fixed time.
 */
/* posix_openpt() and friends, for the hvc: test. */
#define _XOPEN_SOURCE 700

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mqtt_protocol.h>

#include "xenmq.h"
#include "bridge/chan.h"
#include "bridge/frame.h"
#include "bridge/link.h"
#include "bridge/message.h"
#include "clients/lib/client.h"
#include "mosquitto_fixture.h"

#define WAIT_MS 15000

/* ---- the loop ------------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
}

/* Turn the loop until cond holds or WAIT_MS pass; a tick keeps it turning. */
#define WAIT_FOR(loop, cond) do { \
	uv_timer_t tick_; \
	uint64_t end_ = uv_hrtime() + (uint64_t)WAIT_MS * 1000000; \
	uv_timer_init((loop), &tick_); \
	uv_timer_start(&tick_, on_tick, 10, 10); \
	while (!(cond) && uv_hrtime() < end_) \
		uv_run((loop), UV_RUN_ONCE); \
	uv_close((uv_handle_t *)&tick_, NULL); \
	uv_run((loop), UV_RUN_NOWAIT); \
	if (!(cond)) \
		fail_msg("timed out waiting for: %s", #cond); \
} while (0)

static void loop_finish(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- a client that records what it is told ------------------------------ */

#define REC_MSGS 2048

typedef struct rec {
	xmq_client_t *c;
	int connects;
	int refusals;
	int last_refusal;
	bool session_present;
	int disconnects;
	int last_disconnect;
	int nmsgs;
	xmq_message_t *msgs[REC_MSGS];
	int acks;
	int acks_refused;
	int last_ack_mid;
	int last_ack_reason;
	int subacks;
	int last_sub_mid;
	int last_sub_count;
	uint8_t last_sub_reasons[XMQ_FILTERS_MAX];
	int unsubacks;
	int last_unsub_count;
	bool closed;
} rec_t;

static void rec_connect(xmq_client_t *c, int reason, bool session_present)
{
	rec_t *r = xmq_client_data(c);

	if (reason == 0) {
		r->connects++;
		r->session_present = session_present;
	} else {
		r->refusals++;
		r->last_refusal = reason;
	}
}

static void rec_disconnect(xmq_client_t *c, int reason)
{
	rec_t *r = xmq_client_data(c);

	r->disconnects++;
	r->last_disconnect = reason;
}

static void rec_message(xmq_client_t *c, const xmq_message_t *m)
{
	rec_t *r = xmq_client_data(c);

	assert_true(r->nmsgs < REC_MSGS);
	r->msgs[r->nmsgs] = xmq_message_copy(m);
	assert_non_null(r->msgs[r->nmsgs]);
	r->nmsgs++;
}

static void rec_publish(xmq_client_t *c, int mid, int reason)
{
	rec_t *r = xmq_client_data(c);

	r->acks++;
	if (reason >= 0x80)
		r->acks_refused++;
	r->last_ack_mid = mid;
	r->last_ack_reason = reason;
}

static void rec_subscribe(xmq_client_t *c, int mid, int count, const uint8_t *reasons)
{
	rec_t *r = xmq_client_data(c);

	r->subacks++;
	r->last_sub_mid = mid;
	r->last_sub_count = count;
	memcpy(r->last_sub_reasons, reasons, (size_t)count);
}

static void rec_unsubscribe(xmq_client_t *c, int mid, int count, const uint8_t *reasons)
{
	rec_t *r = xmq_client_data(c);

	r->unsubacks++;
	r->last_unsub_count = count;
}

static const xmq_client_cb_t rec_cb = {
	.connect = rec_connect,
	.disconnect = rec_disconnect,
	.message = rec_message,
	.publish = rec_publish,
	.subscribe = rec_subscribe,
	.unsubscribe = rec_unsubscribe,
};

static void rec_closed(void *data)
{
	rec_t *r = data;

	r->closed = true;
}

static void rec_new(uv_loop_t *loop, rec_t *r, const xmq_client_opts_t *o)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(xmq_client_new(loop, o, &rec_cb, r, &r->c), 0);
}

static void rec_close(uv_loop_t *loop, rec_t *r)
{
	int i;

	xmq_client_close(r->c, rec_closed);
	WAIT_FOR(loop, r->closed);
	for (i = 0; i < r->nmsgs; i++)
		free(r->msgs[i]);
	r->nmsgs = 0;
}

/* Index of the first message received on topic with payload, or -1. */
static int rec_find(const rec_t *r, const char *topic, const char *payload)
{
	int i;

	for (i = 0; i < r->nmsgs; i++) {
		const xmq_message_t *m = r->msgs[i];

		if (strcmp(m->topic, topic) == 0 && m->payload_len == strlen(payload) &&
		    memcmp(m->payload, payload, m->payload_len) == 0)
			return i;
	}
	return -1;
}

static xmq_message_t msg_of(const char *topic, const char *payload, uint8_t qos)
{
	xmq_message_t m = {
		.topic = topic,
		.payload = payload,
		.payload_len = payload != NULL ? strlen(payload) : 0,
		.qos = qos,
	};
	return m;
}

/* ---- URLs and defaults ---------------------------------------------------- */

static void test_client_url_parse(void **state)
{
	static const char *bad[] = {
		"", "tcp://localhost:1883", "agent:", "agent:relative/path", "hvc:",
		"mqtt://", "mqtt://:1883", "mqtt://host:", "mqtt://host:0", "mqtt://host:65536",
		"mqtt://host:12a", "mqtt://user@host", "mqtt://host/topic", "mqtt://[::1",
		"mqtt://[]:1883", "mqtt+unix:", "mqtt+unix:sock", "agent", "AGENT:/x",
		"agent:/" "0123456789012345678901234567890123456789012345678901234567890123456789"
		"01234567890123456789012345678901234567890123456789",
	};
	xmq__url_t u = { 0 };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (xmq__url_parse(bad[i], &u) != XMQ_EURL)
			fail_msg("accepted \"%s\"", bad[i]);
	}

	assert_int_equal(xmq__url_parse("agent:/run/xenmq/agent.sock", &u), 0);
	assert_ptr_equal(u.ops, &xmq__transport_link);
	assert_int_equal(u.kind, XMQ__ADDR_UNIX);
	assert_string_equal(u.path, "/run/xenmq/agent.sock");
	xmq__url_dispose(&u);
	xmq__url_dispose(&u);  /* idempotent */

	assert_int_equal(xmq__url_parse("hvc:/dev/hvc1", &u), 0);
	assert_ptr_equal(u.ops, &xmq__transport_link);
	assert_int_equal(u.kind, XMQ__ADDR_TTY);
	assert_string_equal(u.path, "/dev/hvc1");
	xmq__url_dispose(&u);

	assert_int_equal(xmq__url_parse("mqtt://broker.example", &u), 0);
	assert_ptr_equal(u.ops, &xmq__transport_mqtt);
	assert_int_equal(u.kind, XMQ__ADDR_TCP);
	assert_string_equal(u.host, "broker.example");
	assert_int_equal(u.port, 1883);
	xmq__url_dispose(&u);

	assert_int_equal(xmq__url_parse("mqtt://127.0.0.1:18830/", &u), 0);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 18830);
	xmq__url_dispose(&u);

	assert_int_equal(xmq__url_parse("mqtt://[::1]:1884", &u), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 1884);
	xmq__url_dispose(&u);

	assert_int_equal(xmq__url_parse("mqtt+unix:/run/mosquitto.sock", &u), 0);
	assert_ptr_equal(u.ops, &xmq__transport_mqtt);
	assert_int_equal(u.kind, XMQ__ADDR_UNIX);
	assert_string_equal(u.path, "/run/mosquitto.sock");
	xmq__url_dispose(&u);
}

static void test_client_url_defaults(void **state)
{
	xmq_client_opts_t o = { 0 };
	xmq_client_t *c = NULL;
	uv_loop_t loop;

	assert_int_equal(uv_loop_init(&loop), 0);

	unsetenv("XENMQ_URL");
	assert_int_equal(xmq_client_new(&loop, NULL, NULL, NULL, &c), 0);
	assert_string_equal(xmq_client_url(c), XMQ_DEFAULT_URL);
	assert_false(xmq_client_connected(c));
	assert_int_equal(xmq_client_queued(c), 0);
	xmq_client_close(c, NULL);

	setenv("XENMQ_URL", "mqtt+unix:/tmp/from-env.sock", 1);
	assert_int_equal(xmq_client_new(&loop, NULL, NULL, NULL, &c), 0);
	assert_string_equal(xmq_client_url(c), "mqtt+unix:/tmp/from-env.sock");
	xmq_client_close(c, NULL);

	/* The program's URL wins over the environment. */
	o.url = "hvc:/dev/hvc1";
	assert_int_equal(xmq_client_new(&loop, &o, NULL, NULL, &c), 0);
	assert_string_equal(xmq_client_url(c), "hvc:/dev/hvc1");
	xmq_client_close(c, NULL);

	/* An empty XENMQ_URL is no URL; an empty program URL is a bad one. */
	setenv("XENMQ_URL", "", 1);
	assert_int_equal(xmq_client_new(&loop, NULL, NULL, NULL, &c), 0);
	assert_string_equal(xmq_client_url(c), XMQ_DEFAULT_URL);
	xmq_client_close(c, NULL);
	o.url = "";
	c = NULL;
	assert_int_equal(xmq_client_new(&loop, &o, NULL, NULL, &c), XMQ_EURL);
	assert_null(c);

	/* A bad URL from the environment is as bad as any. */
	setenv("XENMQ_URL", "tcp://localhost", 1);
	c = NULL;
	assert_int_equal(xmq_client_new(&loop, NULL, NULL, NULL, &c), XMQ_EURL);
	assert_null(c);
	unsetenv("XENMQ_URL");

	loop_finish(&loop);
}

static void test_client_new_checks(void **state)
{
	xmq_message_t will = msg_of("a/+", "x", 0);
	xmq_client_opts_t o = { .url = "agent:/nonexistent/agent.sock" };
	xmq_client_t *c = NULL;
	uv_loop_t loop;
	char long_app[XMQ_APP_MAX + 2];

	assert_int_equal(uv_loop_init(&loop), 0);
	o.app = "bad name";
	assert_int_equal(xmq_client_new(&loop, &o, NULL, NULL, &c), -EINVAL);
	memset(long_app, 'a', sizeof(long_app) - 1);
	long_app[sizeof(long_app) - 1] = '\0';
	o.app = long_app;
	assert_int_equal(xmq_client_new(&loop, &o, NULL, NULL, &c), -EINVAL);
	long_app[XMQ_APP_MAX] = '\0';
	assert_int_equal(xmq_client_new(&loop, &o, NULL, NULL, &c), 0);
	xmq_client_close(c, NULL);
	c = NULL;

	o.app = "ok";
	o.will = &will;  /* a wildcard is no topic name */
	assert_int_equal(xmq_client_new(&loop, &o, NULL, NULL, &c), -EINVAL);
	will.topic = "a/b";
	will.qos = 2;
	assert_int_equal(xmq_client_new(&loop, &o, NULL, NULL, &c), -EINVAL);
	assert_null(c);
	loop_finish(&loop);
}

static void test_client_input_checks(void **state)
{
	xmq_client_opts_t o = { .url = "agent:/nonexistent/agent.sock", .max_queued = 3 };
	const char *bad_filters[] = { "a/#/b" };
	const char *filters[XMQ_FILTERS_MAX + 1];
	xmq_user_prop_t user[XMQ_USER_PROPS_MAX + 1];
	xmq_message_t m = msg_of("a/b", "x", 1);
	xmq_client_t *c;
	uv_loop_t loop;
	int mid = -1;
	int i;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(xmq_client_new(&loop, &o, NULL, NULL, &c), 0);

	m.topic = "a/+";
	assert_int_equal(xmq_client_publish(c, &m, &mid), XMQ_ETOPIC);
	m.topic = "";
	assert_int_equal(xmq_client_publish(c, &m, &mid), XMQ_ETOPIC);
	m.topic = NULL;
	assert_int_equal(xmq_client_publish(c, &m, &mid), XMQ_ETOPIC);
	m.topic = "a/b";
	m.qos = 2;
	assert_int_equal(xmq_client_publish(c, &m, &mid), -EINVAL);
	m.qos = 1;
	m.payload = NULL;
	assert_int_equal(xmq_client_publish(c, &m, &mid), -EINVAL);
	m.payload = "x";
	m.props.response_topic = "reply/#";
	assert_int_equal(xmq_client_publish(c, &m, &mid), -EINVAL);
	m.props.response_topic = NULL;
	m.props.has_payload_format = true;
	m.props.payload_format = 2;
	assert_int_equal(xmq_client_publish(c, &m, &mid), -EINVAL);
	m.props.has_payload_format = false;
	m.props.content_type = "\xff\xfe";
	assert_int_equal(xmq_client_publish(c, &m, &mid), -EINVAL);
	m.props.content_type = NULL;
	m.props.correlation_len = 3;
	assert_int_equal(xmq_client_publish(c, &m, &mid), -EINVAL);
	m.props.correlation_len = 0;
	for (i = 0; i <= XMQ_USER_PROPS_MAX; i++) {
		user[i].name = "n";
		user[i].value = "v";
	}
	m.props.user = user;
	m.props.user_count = XMQ_USER_PROPS_MAX + 1;
	assert_int_equal(xmq_client_publish(c, &m, &mid), -EINVAL);
	m.props.user_count = 1;
	user[0].value = NULL;
	assert_int_equal(xmq_client_publish(c, &m, &mid), -EINVAL);
	user[0].value = "v";
	assert_int_equal(mid, -1);  /* untouched by every failure */

	/* QoS 0 needs an open session; QoS 1 waits, up to max_queued. */
	m.qos = 0;
	assert_int_equal(xmq_client_publish(c, &m, &mid), -ENOTCONN);
	m.qos = 1;
	m.props.user_count = XMQ_USER_PROPS_MAX;
	for (i = 0; i < 3; i++) {
		assert_int_equal(xmq_client_publish(c, &m, &mid), 0);
		assert_int_equal(mid, i + 1);
	}
	assert_int_equal(xmq_client_publish(c, &m, &mid), -ENOBUFS);
	assert_int_equal(xmq_client_queued(c), 3);

	assert_int_equal(xmq_client_subscribe(c, 1, bad_filters, 0, &mid), XMQ_EFILTER);
	for (i = 0; i <= XMQ_FILTERS_MAX; i++)
		filters[i] = "a/#";
	assert_int_equal(xmq_client_subscribe(c, 0, filters, 0, &mid), -EINVAL);
	assert_int_equal(xmq_client_subscribe(c, XMQ_FILTERS_MAX + 1, filters, 0, &mid), -EINVAL);
	assert_int_equal(xmq_client_subscribe(c, 1, filters, 2, &mid), -EINVAL);
	assert_int_equal(xmq_client_subscribe(c, 1, filters, XMQ_SUB_RETAIN_HANDLING(3), &mid),
	                 -EINVAL);
	assert_int_equal(xmq_client_subscribe(c, 1, filters, 0x40, &mid), -EINVAL);
	assert_int_equal(xmq_client_unsubscribe(c, 1, bad_filters, &mid), XMQ_EFILTER);
	assert_int_equal(xmq_client_subscribe(c, XMQ_FILTERS_MAX, filters,
	                                      1 | XMQ_SUB_NO_LOCAL | XMQ_SUB_RETAIN_HANDLING(2),
	                                      &mid), 0);
	assert_int_equal(mid, 4);  /* one id space for messages and requests */

	xmq_client_close(c, NULL);
	loop_finish(&loop);
}

static void test_client_strerror(void **state)
{
	assert_string_equal(xmq_strerror(XMQ_EURL), "unsupported or malformed URL");
	assert_non_null(xmq_strerror(-ENOBUFS));
	assert_non_null(xmq_reason_string(0x87));
	assert_string_equal(xmq_version(), XENMQ_VERSION);
}

/* ---- against a real mosquitto ------------------------------------------ */

static void mqtt_url(const xmq_mosq_fixture_t *f, char *buf, size_t len)
{
	snprintf(buf, len, "mqtt+unix:%s", f->sock);
}

static void test_client_mqtt_round_trip(void **state)
{
	static const char corr[] = { 0x00, 0x01, 0x02 };
	xmq_user_prop_t user[] = { { "k1", "v1" }, { "k2", "v2" }, { "k1", "v3" } };
	xmq_client_opts_t o = { .app = "rt-sub" };
	xmq_mosq_fixture_t f;
	const char *filters[] = { "rt/#", "other/+" };
	xmq_message_t m = msg_of("rt/a", "hello", 1);
	const xmq_message_t *got;
	rec_t sub, pub;
	uv_loop_t loop;
	char url[200];
	int mid = 0;
	int smid = 0;

	assert_int_equal(xmq_mosq_fixture_init(&f, NULL), 0);
	assert_int_equal(xmq_mosq_fixture_start(&f), 0);
	mqtt_url(&f, url, sizeof(url));
	assert_int_equal(uv_loop_init(&loop), 0);

	o.url = url;
	rec_new(&loop, &sub, &o);
	/* Subscribed before it is connected: sent once the session opens. */
	assert_int_equal(xmq_client_subscribe(sub.c, 2, filters, 1, &smid), 0);
	assert_int_equal(xmq_client_start(sub.c), 0);
	assert_int_equal(xmq_client_start(sub.c), -EALREADY);
	WAIT_FOR(&loop, sub.subacks == 1);
	assert_int_equal(sub.connects, 1);
	assert_false(sub.session_present);
	assert_true(xmq_client_connected(sub.c));
	assert_int_equal(sub.last_sub_mid, smid);
	assert_int_equal(sub.last_sub_count, 2);
	assert_int_equal(sub.last_sub_reasons[0], 1);
	assert_int_equal(sub.last_sub_reasons[1], 1);

	o.app = "rt-pub";
	rec_new(&loop, &pub, &o);
	assert_int_equal(xmq_client_start(pub.c), 0);
	WAIT_FOR(&loop, pub.connects == 1);

	m.props.has_payload_format = true;
	m.props.payload_format = 1;
	m.props.has_message_expiry = true;
	m.props.message_expiry = 300;
	m.props.content_type = "text/plain";
	m.props.response_topic = "rt/reply";
	m.props.correlation_data = corr;
	m.props.correlation_len = sizeof(corr);
	m.props.user = user;
	m.props.user_count = 3;
	assert_int_equal(xmq_client_publish(pub.c, &m, &mid), 0);
	assert_true(mid > 0);
	WAIT_FOR(&loop, pub.acks == 1 && sub.nmsgs == 1);
	assert_int_equal(pub.last_ack_mid, mid);
	assert_true(pub.last_ack_reason < 0x80);
	assert_int_equal(xmq_client_queued(pub.c), 0);

	got = sub.msgs[0];
	assert_string_equal(got->topic, "rt/a");
	assert_int_equal(got->payload_len, 5);
	assert_memory_equal(got->payload, "hello", 5);
	assert_int_equal(got->qos, 1);
	assert_true(got->props.has_payload_format);
	assert_int_equal(got->props.payload_format, 1);
	assert_true(got->props.has_message_expiry);
	assert_true(got->props.message_expiry <= 300 && got->props.message_expiry >= 290);
	assert_string_equal(got->props.content_type, "text/plain");
	assert_string_equal(got->props.response_topic, "rt/reply");
	assert_int_equal(got->props.correlation_len, sizeof(corr));
	assert_memory_equal(got->props.correlation_data, corr, sizeof(corr));
	assert_int_equal(got->props.user_count, 3);
	assert_string_equal(got->props.user[0].name, "k1");
	assert_string_equal(got->props.user[0].value, "v1");
	assert_string_equal(got->props.user[2].name, "k1");
	assert_string_equal(got->props.user[2].value, "v3");

	/* QoS 0, and an empty payload. */
	m = msg_of("other/x", NULL, 0);
	assert_int_equal(xmq_client_publish(pub.c, &m, &mid), 0);
	WAIT_FOR(&loop, sub.nmsgs == 2);
	assert_int_equal(rec_find(&sub, "other/x", ""), 1);

	/* Unsubscribed: nothing more arrives on rt/#, other/+ still does. */
	assert_int_equal(xmq_client_unsubscribe(sub.c, 1, filters, &smid), 0);
	WAIT_FOR(&loop, sub.unsubacks == 1);
	assert_int_equal(sub.last_unsub_count, 1);
	m = msg_of("rt/a", "after", 1);
	assert_int_equal(xmq_client_publish(pub.c, &m, &mid), 0);
	m = msg_of("other/y", "marker", 1);
	assert_int_equal(xmq_client_publish(pub.c, &m, &mid), 0);
	WAIT_FOR(&loop, rec_find(&sub, "other/y", "marker") >= 0);
	assert_int_equal(rec_find(&sub, "rt/a", "after"), -1);

	rec_close(&loop, &pub);
	rec_close(&loop, &sub);
	loop_finish(&loop);
	xmq_mosq_fixture_dispose(&f);
}

/* QoS 1 published while the broker is down reaches a subscriber whose
 * session the broker kept on disk. */
static void test_client_mqtt_qos1_outage(void **state)
{
	enum { N = 50 };
	xmq_client_opts_t o = { .app = "out-sub", .session_expiry = 600 };
	const char *filters[] = { "out/#" };
	xmq_mosq_fixture_t f;
	rec_t sub, pub;
	uv_loop_t loop;
	char url[200];
	char payload[16];
	xmq_message_t m;
	int i;

	assert_int_equal(xmq_mosq_fixture_init(&f, "persistence true\n"), 0);
	assert_int_equal(xmq_mosq_fixture_start(&f), 0);
	mqtt_url(&f, url, sizeof(url));
	assert_int_equal(uv_loop_init(&loop), 0);

	o.url = url;
	rec_new(&loop, &sub, &o);
	assert_int_equal(xmq_client_subscribe(sub.c, 1, filters, 1, NULL), 0);
	assert_int_equal(xmq_client_start(sub.c), 0);
	WAIT_FOR(&loop, sub.subacks == 1);

	o.app = "out-pub";
	o.session_expiry = 0;
	rec_new(&loop, &pub, &o);
	assert_int_equal(xmq_client_start(pub.c), 0);
	WAIT_FOR(&loop, pub.connects == 1);

	assert_int_equal(xmq_mosq_fixture_stop(&f), 0);
	WAIT_FOR(&loop, pub.disconnects == 1 && sub.disconnects == 1);
	assert_false(xmq_client_connected(pub.c));
	for (i = 0; i < N; i++) {
		snprintf(payload, sizeof(payload), "m%d", i);
		m = msg_of("out/x", payload, 1);
		assert_int_equal(xmq_client_publish(pub.c, &m, NULL), 0);
	}
	m = msg_of("out/x", "qos0", 0);
	assert_int_equal(xmq_client_publish(pub.c, &m, NULL), -ENOTCONN);
	assert_int_equal(xmq_client_queued(pub.c), N);

	assert_int_equal(xmq_mosq_fixture_start(&f), 0);
	WAIT_FOR(&loop, xmq_client_queued(pub.c) == 0);
	assert_int_equal(pub.acks, N);
	assert_int_equal(pub.acks_refused, 0);
	WAIT_FOR(&loop, sub.nmsgs >= N);
	for (i = 0; i < N; i++) {
		snprintf(payload, sizeof(payload), "m%d", i);
		if (rec_find(&sub, "out/x", payload) < 0)
			fail_msg("message %s was lost", payload);
	}
	assert_true(sub.session_present);

	rec_close(&loop, &pub);
	rec_close(&loop, &sub);
	loop_finish(&loop);
	xmq_mosq_fixture_dispose(&f);
}

/* Without persistence the broker forgets everything: the client subscribes
 * again by itself. */
static void test_client_mqtt_resubscribe(void **state)
{
	xmq_client_opts_t o = { .app = "rs-sub" };
	const char *f1[] = { "rs/a", "rs/b/#" };
	const char *f2[] = { "rs/c" };
	const char *f3[] = { "rs/b/#" };
	xmq_mosq_fixture_t f;
	xmq_message_t m;
	rec_t sub, pub;
	uv_loop_t loop;
	char url[200];

	assert_int_equal(xmq_mosq_fixture_init(&f, NULL), 0);
	assert_int_equal(xmq_mosq_fixture_start(&f), 0);
	mqtt_url(&f, url, sizeof(url));
	assert_int_equal(uv_loop_init(&loop), 0);

	o.url = url;
	rec_new(&loop, &sub, &o);
	assert_int_equal(xmq_client_start(sub.c), 0);
	assert_int_equal(xmq_client_subscribe(sub.c, 2, f1, 1, NULL), 0);
	assert_int_equal(xmq_client_subscribe(sub.c, 1, f2, 0, NULL), 0);
	assert_int_equal(xmq_client_unsubscribe(sub.c, 1, f3, NULL), 0);
	WAIT_FOR(&loop, sub.subacks == 2 && sub.unsubacks == 1);

	assert_int_equal(xmq_mosq_fixture_restart(&f), 0);
	WAIT_FOR(&loop, sub.connects == 2);
	assert_false(sub.session_present);

	o.app = "rs-pub";
	rec_new(&loop, &pub, &o);
	assert_int_equal(xmq_client_start(pub.c), 0);
	WAIT_FOR(&loop, pub.connects == 1);
	/* Retained, so that they arrive whichever of the re-subscription and
	 * the publication the broker sees first. */
	m = msg_of("rs/a", "1", 1);
	m.retain = true;
	assert_int_equal(xmq_client_publish(pub.c, &m, NULL), 0);
	m = msg_of("rs/c", "2", 1);
	m.retain = true;
	assert_int_equal(xmq_client_publish(pub.c, &m, NULL), 0);
	m = msg_of("rs/b/x", "3", 1);
	m.retain = true;
	assert_int_equal(xmq_client_publish(pub.c, &m, NULL), 0);
	m = msg_of("rs/a", "4", 1);
	assert_int_equal(xmq_client_publish(pub.c, &m, NULL), 0);
	WAIT_FOR(&loop, rec_find(&sub, "rs/a", "1") >= 0 && rec_find(&sub, "rs/c", "2") >= 0 &&
	                rec_find(&sub, "rs/a", "4") >= 0);
	/* Subscription callbacks answer the application's requests only. */
	assert_int_equal(sub.subacks, 2);
	/* rs/b/# was unsubscribed before the restart and stays so. */
	assert_int_equal(rec_find(&sub, "rs/b/x", "3"), -1);

	rec_close(&loop, &pub);
	rec_close(&loop, &sub);
	loop_finish(&loop);
	xmq_mosq_fixture_dispose(&f);
}

/*
 * A byte pipe between a client and mosquitto that the test can cut, as a
 * crash or a pulled cable would: mosquitto sees the socket close without a
 * DISCONNECT and publishes the client's will.
 */
typedef struct proxy {
	uv_loop_t *loop;
	uv_pipe_t server;
	char path[108];
	uv_pipe_t *down;      /* the client's side */
	uv_pipe_t *up;        /* mosquitto's side */
	const char *target;
	int conns;
	int open_handles;
} proxy_t;

typedef struct proxy_write {
	uv_write_t req;
	char *data;
} proxy_write_t;

static void proxy_handle_closed(uv_handle_t *h)
{
	proxy_t *px = h->data;

	px->open_handles--;
	free(h);
}

static void proxy_cut(proxy_t *px)
{
	if (px->down != NULL)
		uv_close((uv_handle_t *)px->down, proxy_handle_closed);
	if (px->up != NULL)
		uv_close((uv_handle_t *)px->up, proxy_handle_closed);
	px->down = px->up = NULL;
}

static void proxy_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	b->base = malloc(65536);
	b->len = b->base != NULL ? 65536 : 0;
}

static void proxy_written(uv_write_t *req, int status)
{
	proxy_write_t *w = (proxy_write_t *)req;

	free(w->data);
	free(w);
}

static void proxy_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	proxy_t *px = s->data;
	uv_stream_t *to = (uv_stream_t *)(s == (uv_stream_t *)px->down ? px->up : px->down);
	proxy_write_t *w;
	uv_buf_t out;

	if (n < 0) {
		free(b->base);
		proxy_cut(px);
		return;
	}
	if (n == 0 || to == NULL) {
		free(b->base);
		return;
	}
	w = malloc(sizeof(*w));
	assert_non_null(w);
	w->data = b->base;
	out = uv_buf_init(b->base, (unsigned)n);
	if (uv_write(&w->req, to, &out, 1, proxy_written) != 0) {
		free(w->data);
		free(w);
	}
}

static void proxy_up_connected(uv_connect_t *req, int status)
{
	proxy_t *px = req->data;

	free(req);
	if (status != 0 || px->up == NULL || px->down == NULL) {
		proxy_cut(px);
		return;
	}
	uv_read_start((uv_stream_t *)px->up, proxy_alloc, proxy_read);
	uv_read_start((uv_stream_t *)px->down, proxy_alloc, proxy_read);
}

static void proxy_on_connection(uv_stream_t *server, int status)
{
	proxy_t *px = server->data;
	uv_pipe_t *down = malloc(sizeof(*down));
	uv_pipe_t *up = malloc(sizeof(*up));
	uv_connect_t *req = malloc(sizeof(*req));

	assert_non_null(down);
	assert_non_null(up);
	assert_non_null(req);
	assert_null(px->down);
	uv_pipe_init(px->loop, down, 0);
	down->data = px;
	uv_pipe_init(px->loop, up, 0);
	up->data = px;
	px->open_handles += 2;
	assert_int_equal(uv_accept(server, (uv_stream_t *)down), 0);
	px->down = down;
	px->up = up;
	px->conns++;
	req->data = px;
	uv_pipe_connect(req, up, px->target, proxy_up_connected);
}

static void proxy_init(uv_loop_t *loop, proxy_t *px, const char *target)
{
	memset(px, 0, sizeof(*px));
	px->loop = loop;
	px->target = target;
	snprintf(px->path, sizeof(px->path), "/tmp/xmq-test-proxy-%ld.sock", (long)getpid());
	unlink(px->path);
	assert_int_equal(uv_pipe_init(loop, &px->server, 0), 0);
	px->server.data = px;
	assert_int_equal(uv_pipe_bind(&px->server, px->path), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&px->server, 4, proxy_on_connection), 0);
	px->open_handles = 1;
}

static void proxy_server_closed(uv_handle_t *h)
{
	proxy_t *px = h->data;

	px->open_handles--;
}

static void proxy_dispose(proxy_t *px)
{
	proxy_cut(px);
	uv_close((uv_handle_t *)&px->server, proxy_server_closed);
	WAIT_FOR(px->loop, px->open_handles == 0);
	unlink(px->path);
}

/* The will is published when the connection is cut, not on a normal close;
 * the client comes back by itself. */
static void test_client_mqtt_will(void **state)
{
	xmq_user_prop_t user[] = { { "why", "lost" } };
	xmq_message_t will = msg_of("w/app", "offline", 1);
	xmq_client_opts_t o = { .app = "will-watch" };
	const char *filters[] = { "w/#" };
	xmq_mosq_fixture_t f;
	xmq_message_t m;
	proxy_t px;
	rec_t watch, app;
	uv_loop_t loop;
	char url[200];

	assert_int_equal(xmq_mosq_fixture_init(&f, NULL), 0);
	assert_int_equal(xmq_mosq_fixture_start(&f), 0);
	assert_int_equal(uv_loop_init(&loop), 0);
	proxy_init(&loop, &px, f.sock);

	mqtt_url(&f, url, sizeof(url));
	o.url = url;
	rec_new(&loop, &watch, &o);
	assert_int_equal(xmq_client_subscribe(watch.c, 1, filters, 1, NULL), 0);
	assert_int_equal(xmq_client_start(watch.c), 0);
	WAIT_FOR(&loop, watch.subacks == 1);

	snprintf(url, sizeof(url), "mqtt+unix:%s", px.path);
	o.url = url;
	o.app = "will-app";
	will.props.user = user;
	will.props.user_count = 1;
	o.will = &will;
	rec_new(&loop, &app, &o);
	assert_int_equal(xmq_client_start(app.c), 0);
	WAIT_FOR(&loop, app.connects == 1);
	m = msg_of("w/app", "online", 1);
	assert_int_equal(xmq_client_publish(app.c, &m, NULL), 0);
	/* Acknowledged before the cut, or it would come again after it. */
	WAIT_FOR(&loop, rec_find(&watch, "w/app", "online") >= 0 && app.acks == 1);

	proxy_cut(&px);
	WAIT_FOR(&loop, rec_find(&watch, "w/app", "offline") >= 0);
	assert_int_equal(watch.msgs[rec_find(&watch, "w/app", "offline")]->props.user_count, 1);
	WAIT_FOR(&loop, app.connects == 2);
	assert_int_equal(app.disconnects, 1);
	assert_true(px.conns >= 2);

	/* A normal close: no will. The marker shows the watcher is caught up. */
	rec_close(&loop, &app);
	o.url = NULL;
	mqtt_url(&f, url, sizeof(url));
	o.url = url;
	o.app = "will-marker";
	o.will = NULL;
	rec_new(&loop, &app, &o);
	assert_int_equal(xmq_client_start(app.c), 0);
	WAIT_FOR(&loop, app.connects == 1);
	m = msg_of("w/marker", "end", 1);
	assert_int_equal(xmq_client_publish(app.c, &m, NULL), 0);
	WAIT_FOR(&loop, rec_find(&watch, "w/marker", "end") >= 0);
	assert_int_equal(watch.nmsgs, 3);

	rec_close(&loop, &app);
	rec_close(&loop, &watch);
	proxy_dispose(&px);
	loop_finish(&loop);
	xmq_mosq_fixture_dispose(&f);
}

/* ---- a responder played here, for the agent: transport ------------------ */

#define FAKE_MAX 512

typedef struct fake_pub {
	char topic[64];
	uint16_t packet_id;
	uint8_t qos;
	bool dup;
	size_t payload_len;
} fake_pub_t;

typedef struct fake {
	uv_loop_t *loop;
	uv_pipe_t server;
	char path[108];
	char url[128];
	xmq_chan_t *chan;
	uv_pipe_t pty;           /* instead of a socket: a pty's master side */
	bool pty_live;
	xmq_link_t link;
	xmq_link_opts_t lopts;
	/* behaviour */
	bool hold_open_ack;
	bool hold_acks;
	/* Lost on the line: the next n frames of a kind are ignored as if they
	 * never came (an OPEN is taken but its OPEN_ACK is lost, the others
	 * are dropped unanswered); a PUBLISH by its place, bit i for pubs[i]. */
	int lose_open_acks;
	int lose_subacks;
	int lose_unsubacks;
	uint32_t lose_pubs;
	uint8_t open_reason;
	bool session_present;
	uint16_t receive_max;
	/* what it saw */
	int ups;
	int frames_before_ack;   /* session frames other than OPEN while opening */
	bool opening;
	bool session_open;       /* OPEN taken and accepted (answer sent or lost) */
	int open_repeats;        /* OPENs answered as repetitions */
	int opens;
	uint8_t open_flags;
	char app[XMQ_APP_MAX + 1];
	bool open_will;
	char will_topic[64];
	uint32_t open_expiry;
	uint16_t open_receive_max;
	int subscribes;
	int nfilters;
	char filters[FAKE_MAX][32];
	uint8_t options[FAKE_MAX];
	int unsubscribes;
	uint16_t sub_ids[FAKE_MAX];    /* packet ids of SUBSCRIBE, in order */
	uint16_t unsub_ids[FAKE_MAX];  /* and of UNSUBSCRIBE */
	int npubs;
	fake_pub_t pubs[FAKE_MAX];
	int nheld;
	uint16_t held[FAKE_MAX];
	int inflight;           /* QoS 1 unacknowledged now */
	int max_inflight;
	int pubacks;
	uint16_t last_puback;
	uint16_t pubacked[FAKE_MAX];   /* packet ids of the PUBACKs received */
	int closes;
	uint8_t last_close;
	bool closed;
} fake_t;

static void fake_send(fake_t *f, xmq_wire_t *w)
{
	assert_int_equal(xmq_link_write(&f->link, w), 0);
}

static void fake_open_ack_flags(fake_t *f, uint8_t flags)
{
	xmq_open_ack_t b = {
		.reason = f->open_reason,
		.flags = flags,
		.receive_max = f->receive_max,
	};
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&f->link, XMQ_T_OPEN_ACK, 1, &h);
	assert_int_equal(xmq_encode_open_ack(&h, &b, &w), 0);
	f->opening = false;
	f->session_open = f->open_reason == 0;
	fake_send(f, &w);
}

static void fake_open_ack(fake_t *f)
{
	fake_open_ack_flags(f, f->session_present ? XMQ_OPEN_ACK_SESSION_PRESENT : 0);
}

/* A SUBACK or UNSUBACK (type) accepting count filters. */
static void fake_suback(fake_t *f, uint8_t type, uint16_t id, unsigned count)
{
	xmq_suback_t a = { .packet_id = id, .count = count };
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&f->link, type, 1, &h);
	assert_int_equal(xmq_encode_suback(&h, &a, &w), 0);
	fake_send(f, &w);
}

static void fake_puback(fake_t *f, uint16_t id)
{
	xmq_puback_t b = { .packet_id = id, .reason = 0 };
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&f->link, XMQ_T_PUBACK, 1, &h);
	assert_int_equal(xmq_encode_puback(&h, &b, &w), 0);
	f->inflight--;
	fake_send(f, &w);
}

static void fake_release_acks(fake_t *f)
{
	int i;

	for (i = 0; i < f->nheld; i++)
		fake_puback(f, f->held[i]);
	f->nheld = 0;
}

static void fake_close_stream(fake_t *f, uint8_t reason)
{
	xmq_hdr_t h;
	xmq_wire_t w;

	f->session_open = false;
	xmq_link_hdr(&f->link, XMQ_T_CLOSE, 1, &h);
	assert_int_equal(xmq_encode_close(&h, reason, &w), 0);
	fake_send(f, &w);
}

static void fake_publish_dup(fake_t *f, const char *topic, const char *payload, uint16_t id,
                             bool dup)
{
	xmq_message_t m = msg_of(topic, payload, id != 0 ? 1 : 0);
	xmq_hdr_t h;
	xmq_wire_t w;

	m.dup = dup;
	xmq_link_hdr(&f->link, XMQ_T_PUBLISH, 1, &h);
	assert_int_equal(xmq_encode_publish(&h, id, &m, &w), 0);
	fake_send(f, &w);
}

static void fake_publish(fake_t *f, const char *topic, const char *payload, uint16_t id)
{
	fake_publish_dup(f, topic, payload, id, false);
}

static void fake_on_frame(xmq_link_t *l, const xmq_frame_t *fr)
{
	fake_t *f = l->data;
	xmq_subscribe_t s;
	xmq_suback_t a;
	xmq_publish_t p;
	xmq_open_t o;
	xmq_hdr_t h;
	xmq_wire_t w;
	unsigned i;

	assert_int_equal(fr->hdr.stream, 1);
	if (f->opening && fr->hdr.type != XMQ_T_OPEN && fr->hdr.type != XMQ_T_CLOSE)
		f->frames_before_ack++;
	switch (fr->hdr.type) {
	case XMQ_T_OPEN:
		assert_int_equal(xmq_decode_open(fr, &o), 0);
		f->opens++;
		/* As xenmqd: the same app again on its open stream is a
		 * repetition (our answer was lost), answered again. */
		if (f->session_open && strcmp(o.app, f->app) == 0) {
			assert_int_equal(o.flags, f->open_flags);
			f->open_repeats++;
			fake_open_ack_flags(f, XMQ_OPEN_ACK_SESSION_PRESENT);
			break;
		}
		f->open_flags = o.flags;
		snprintf(f->app, sizeof(f->app), "%s", o.app);
		f->open_will = o.has_will;
		if (o.has_will)
			snprintf(f->will_topic, sizeof(f->will_topic), "%s", o.will.topic);
		f->open_expiry = o.session_expiry;
		f->open_receive_max = o.receive_max;
		f->opening = true;
		f->inflight = 0;
		f->nheld = 0;
		if (f->lose_open_acks > 0 && f->open_reason == 0) {
			f->lose_open_acks--;
			f->session_open = true;
		} else if (!f->hold_open_ack) {
			fake_open_ack(f);
		}
		break;
	case XMQ_T_SUBSCRIBE:
	case XMQ_T_UNSUBSCRIBE:
		if (fr->hdr.type == XMQ_T_SUBSCRIBE) {
			assert_int_equal(xmq_decode_subscribe(fr, &s), 0);
			assert_true(f->subscribes < FAKE_MAX);
			f->sub_ids[f->subscribes++] = s.packet_id;
		} else {
			assert_int_equal(xmq_decode_unsubscribe(fr, &s), 0);
			assert_true(f->unsubscribes < FAKE_MAX);
			f->unsub_ids[f->unsubscribes++] = s.packet_id;
		}
		a.packet_id = s.packet_id;
		a.count = s.count;
		for (i = 0; i < s.count; i++) {
			if (fr->hdr.type == XMQ_T_SUBSCRIBE && f->nfilters < FAKE_MAX) {
				snprintf(f->filters[f->nfilters], 32, "%s", s.filter[i]);
				f->options[f->nfilters++] = s.options[i];
			}
			/* "deny/..." is refused, as an ACL would. */
			a.reason[i] = strncmp(s.filter[i], "deny/", 5) == 0 ?
			              MQTT_RC_NOT_AUTHORIZED : 0;
		}
		if (fr->hdr.type == XMQ_T_SUBSCRIBE && f->lose_subacks > 0) {
			f->lose_subacks--;
			break;
		}
		if (fr->hdr.type == XMQ_T_UNSUBSCRIBE && f->lose_unsubacks > 0) {
			f->lose_unsubacks--;
			break;
		}
		h.type = fr->hdr.type == XMQ_T_SUBSCRIBE ? XMQ_T_SUBACK : XMQ_T_UNSUBACK;
		xmq_link_hdr(&f->link, h.type, 1, &h);
		assert_int_equal(xmq_encode_suback(&h, &a, &w), 0);
		fake_send(f, &w);
		break;
	case XMQ_T_PUBLISH:
		assert_int_equal(xmq_decode_publish(fr, &p), 0);
		assert_true(f->npubs < FAKE_MAX);
		snprintf(f->pubs[f->npubs].topic, 64, "%s", p.msg.topic);
		f->pubs[f->npubs].packet_id = p.packet_id;
		f->pubs[f->npubs].qos = p.msg.qos;
		f->pubs[f->npubs].dup = p.msg.dup;
		f->pubs[f->npubs].payload_len = p.msg.payload_len;
		f->npubs++;
		if (f->npubs <= 32 && (f->lose_pubs & (1u << (f->npubs - 1))))
			break;
		if (p.msg.qos == 0)
			break;
		f->inflight++;
		if (f->inflight > f->max_inflight)
			f->max_inflight = f->inflight;
		if (f->hold_acks)
			f->held[f->nheld++] = p.packet_id;
		else
			fake_puback(f, p.packet_id);
		break;
	case XMQ_T_PUBACK: {
		xmq_puback_t b;

		assert_int_equal(xmq_decode_puback(fr, &b), 0);
		assert_true(f->pubacks < FAKE_MAX);
		f->pubacked[f->pubacks++] = b.packet_id;
		f->last_puback = b.packet_id;
		break;
	}
	case XMQ_T_CLOSE:
		assert_int_equal(xmq_decode_close(fr, &f->last_close), 0);
		f->closes++;
		break;
	default:
		fail_msg("unexpected frame %s", xmq_type_name(fr->hdr.type));
	}
}

typedef struct fake_wreq {
	uv_write_t req;
	uint8_t *data;
} fake_wreq_t;

static void fake_pty_written(uv_write_t *req, int status)
{
	fake_wreq_t *w = (fake_wreq_t *)req;

	free(w->data);
	free(w);
}

static int fake_on_write(xmq_link_t *l, xmq_wire_t *w)
{
	fake_t *f = l->data;

	if (f->pty_live) {
		fake_wreq_t *r = malloc(sizeof(*r));
		uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);

		assert_non_null(r);
		r->data = w->data;
		w->data = NULL;
		assert_int_equal(uv_write(&r->req, (uv_stream_t *)&f->pty, &b, 1,
		                          fake_pty_written), 0);
		return 0;
	}
	if (f->chan == NULL) {
		free(w->data);
		return -ENOTCONN;
	}
	return xmq_chan_write(f->chan, w);
}

static void fake_on_up(xmq_link_t *l)
{
	fake_t *f = l->data;

	f->ups++;
	f->opening = false;
	f->session_open = false;
}

static void fake_on_down(xmq_link_t *l, int err)
{
}

static const xmq_link_ops_t fake_link_ops = {
	.write = fake_on_write,
	.up = fake_on_up,
	.down = fake_on_down,
	.frame = fake_on_frame,
};

static void fake_chan_data(xmq_chan_t *c, const uint8_t *buf, size_t len)
{
	fake_t *f = c->data;

	xmq_link_feed(&f->link, buf, len);
}

static void fake_chan_lost(xmq_chan_t *c, int err)
{
	fake_t *f = c->data;

	xmq_link_stop(&f->link);
	xmq_chan_close(c);
	if (f->chan == c)
		f->chan = NULL;
}

static void fake_chan_closed(xmq_chan_t *c)
{
	free(c);
}

static const xmq_chan_ops_t fake_chan_ops = {
	.data = fake_chan_data,
	.lost = fake_chan_lost,
	.closed = fake_chan_closed,
};

static void fake_on_connection(uv_stream_t *server, int status)
{
	fake_t *f = server->data;
	xmq_chan_t *c = malloc(sizeof(*c));

	assert_int_equal(status, 0);
	assert_non_null(c);
	assert_null(f->chan);
	assert_int_equal(xmq_chan_accept(server, c, &fake_chan_ops, f), 0);
	f->chan = c;
	xmq_link_start(&f->link);
}

static void fake_init(uv_loop_t *loop, fake_t *f, uint32_t max_frame)
{
	memset(f, 0, sizeof(*f));
	f->loop = loop;
	f->receive_max = 16;
	snprintf(f->path, sizeof(f->path), "/tmp/xmq-test-agent-%ld.sock", (long)getpid());
	snprintf(f->url, sizeof(f->url), "agent:%s", f->path);
	unlink(f->path);
	f->lopts.max_frame = max_frame;
	assert_int_equal(xmq_link_init(loop, &f->link, XMQ_LINK_RESPONDER, &f->lopts,
	                               &fake_link_ops, f), 0);
	assert_int_equal(uv_pipe_init(loop, &f->server, 0), 0);
	f->server.data = f;
	assert_int_equal(uv_pipe_bind(&f->server, f->path), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f->server, 4, fake_on_connection), 0);
}

static void fake_pty_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char buf[8192];

	*b = uv_buf_init(buf, sizeof(buf));
}

static void fake_pty_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	fake_t *f = s->data;

	/* EIO once the client closed the slave side: nothing more to read. */
	if (n < 0)
		uv_read_stop(s);
	else if (n > 0)
		xmq_link_feed(&f->link, (const uint8_t *)b->base, (size_t)n);
}

/* A PV channel as the DomU sees it: a tty, whose other side we hold. */
static void fake_init_pty(uv_loop_t *loop, fake_t *f)
{
	const char *name;
	int fd;

	memset(f, 0, sizeof(*f));
	f->loop = loop;
	f->receive_max = 16;
	assert_int_equal(xmq_link_init(loop, &f->link, XMQ_LINK_RESPONDER, &f->lopts,
	                               &fake_link_ops, f), 0);
	fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(grantpt(fd), 0);
	assert_int_equal(unlockpt(fd), 0);
	name = ptsname(fd);
	assert_non_null(name);
	snprintf(f->url, sizeof(f->url), "hvc:%s", name);
	assert_int_equal(uv_pipe_init(loop, &f->pty, 0), 0);
	f->pty.data = f;
	assert_int_equal(uv_pipe_open(&f->pty, fd), 0);
	f->pty_live = true;
	assert_int_equal(uv_read_start((uv_stream_t *)&f->pty, fake_pty_alloc, fake_pty_read), 0);
	xmq_link_start(&f->link);
}

static void fake_server_closed(uv_handle_t *h)
{
	fake_t *f = h->data;

	f->closed = true;
}

static void fake_dispose(fake_t *f)
{
	if (f->chan != NULL) {
		xmq_chan_close(f->chan);
		f->chan = NULL;
	}
	xmq_link_close(&f->link, NULL);
	if (f->pty_live) {
		f->pty_live = false;
		uv_close((uv_handle_t *)&f->pty, fake_server_closed);
	} else {
		uv_close((uv_handle_t *)&f->server, fake_server_closed);
		unlink(f->path);
	}
	WAIT_FOR(f->loop, f->closed);
}

static int fake_filter_count(const fake_t *f, const char *filter)
{
	int i, n = 0;

	for (i = 0; i < f->nfilters; i++)
		n += strcmp(f->filters[i], filter) == 0;
	return n;
}

/* OPEN goes out once the link is up, and nothing else until OPEN_ACK. */
static void test_client_agent_open(void **state)
{
	xmq_message_t will = msg_of("xen/app/status", "offline", 1);
	xmq_client_opts_t o = { .app = "app1", .session_expiry = 60, .receive_max = 7,
	                        .will = &will };
	const char *filters[] = { "a/#" };
	xmq_message_t m = msg_of("a/b", "x", 1);
	uv_loop_t loop;
	fake_t f;
	rec_t r;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	f.hold_open_ack = true;
	o.url = f.url;
	rec_new(&loop, &r, &o);
	assert_int_equal(xmq_client_subscribe(r.c, 1, filters, 1, NULL), 0);
	assert_int_equal(xmq_client_publish(r.c, &m, NULL), 0);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, f.opens == 1);
	assert_int_equal(f.ups, 1);
	assert_string_equal(f.app, "app1");
	assert_true(f.open_flags & XMQ_OPEN_CLEAN_START);
	assert_true(f.open_will);
	assert_string_equal(f.will_topic, "xen/app/status");
	assert_int_equal(f.open_expiry, 60);
	assert_int_equal(f.open_receive_max, 7);
	assert_false(xmq_client_connected(r.c));

	/* A PING or two later, still nothing but the OPEN on the stream. */
	m.qos = 0;
	assert_int_equal(xmq_client_publish(r.c, &m, NULL), -ENOTCONN);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(f.frames_before_ack, 0);
	assert_int_equal(r.connects, 0);

	fake_open_ack(&f);
	WAIT_FOR(&loop, r.connects == 1 && f.npubs == 1 && r.acks == 1 && r.subacks == 1);
	assert_int_equal(f.frames_before_ack, 0);
	assert_true(xmq_client_connected(r.c));
	assert_int_equal(f.subscribes, 1);
	assert_string_equal(f.filters[0], "a/#");
	assert_int_equal(f.options[0], 1);
	assert_false(f.pubs[0].dup);
	assert_int_equal(xmq_client_queued(r.c), 0);

	/* A message for the application is acknowledged after its callback. */
	fake_publish(&f, "a/in", "payload", 77);
	WAIT_FOR(&loop, f.pubacks == 1);
	assert_int_equal(f.last_puback, 77);
	assert_int_equal(r.nmsgs, 1);
	assert_string_equal(r.msgs[0]->topic, "a/in");

	/* Closing says goodbye with CLOSE 0, so that no will is sent. */
	rec_close(&loop, &r);
	WAIT_FOR(&loop, f.closes == 1);
	assert_int_equal(f.last_close, 0);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* A new epoch: OPEN again with clean start 0; subscriptions when the
 * session was lost, not when it was kept; unacknowledged QoS 1 with dup. */
static void test_client_agent_replay(void **state)
{
	xmq_client_opts_t o = { .app = "replay" };
	const char *f1[] = { "s/1", "s/2" };
	const char *f2[] = { "s/3" };
	xmq_message_t m = msg_of("p/1", "x", 1);
	uv_loop_t loop;
	fake_t f;
	rec_t r;
	int i;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	o.url = f.url;
	rec_new(&loop, &r, &o);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.connects == 1);
	assert_int_equal(xmq_client_subscribe(r.c, 2, f1, 1, NULL), 0);
	assert_int_equal(xmq_client_subscribe(r.c, 1, f2, 0, NULL), 0);
	WAIT_FOR(&loop, r.subacks == 2);

	f.hold_acks = true;
	for (i = 0; i < 3; i++)
		assert_int_equal(xmq_client_publish(r.c, &m, NULL), 0);
	WAIT_FOR(&loop, f.npubs == 3);
	assert_int_equal(xmq_client_queued(r.c), 3);

	/* The responder restarts: a new epoch, a session not present. */
	f.hold_acks = false;
	f.session_present = false;
	xmq_link_restart(&f.link);
	WAIT_FOR(&loop, r.connects == 2 && xmq_client_queued(r.c) == 0);
	assert_int_equal(r.disconnects, 1);
	assert_int_equal(r.last_disconnect, MQTT_RC_SERVER_UNAVAILABLE);
	assert_int_equal(f.opens, 2);
	assert_false(f.open_flags & XMQ_OPEN_CLEAN_START);
	assert_false(r.session_present);
	assert_int_equal(f.subscribes, 2 + 2);  /* grouped by options */
	assert_int_equal(fake_filter_count(&f, "s/1"), 2);
	assert_int_equal(fake_filter_count(&f, "s/2"), 2);
	assert_int_equal(fake_filter_count(&f, "s/3"), 2);
	assert_int_equal(f.npubs, 6);
	for (i = 3; i < 6; i++) {
		assert_true(f.pubs[i].dup);
		assert_int_equal(f.pubs[i].packet_id, f.pubs[i - 3].packet_id);
	}
	assert_int_equal(r.subacks, 2);  /* re-subscriptions are not reported */

	/* Again, with the session kept: no SUBSCRIBE. */
	f.session_present = true;
	xmq_link_restart(&f.link);
	WAIT_FOR(&loop, r.connects == 3);
	assert_true(r.session_present);
	assert_int_equal(f.opens, 3);
	assert_int_equal(f.subscribes, 4);

	/* Unsubscribed filters are not restored. */
	assert_int_equal(xmq_client_unsubscribe(r.c, 1, f2, NULL), 0);
	WAIT_FOR(&loop, r.unsubacks == 1);
	f.session_present = false;
	xmq_link_restart(&f.link);
	WAIT_FOR(&loop, r.connects == 4 && f.subscribes == 5);
	assert_int_equal(fake_filter_count(&f, "s/3"), 2);
	assert_int_equal(fake_filter_count(&f, "s/1"), 3);

	rec_close(&loop, &r);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* The agent goes away and comes back (a new process: new socket, new
 * epoch): the client reconnects by itself and restores its session. */
static void test_client_agent_restart(void **state)
{
	xmq_client_opts_t o = { .app = "restart" };
	const char *filters[] = { "r/#" };
	xmq_message_t m = msg_of("r/1", "x", 1);
	uv_loop_t loop;
	fake_t f;
	rec_t r;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	o.url = f.url;
	rec_new(&loop, &r, &o);
	assert_int_equal(xmq_client_subscribe(r.c, 1, filters, 1, NULL), 0);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.connects == 1 && r.subacks == 1);
	f.hold_acks = true;
	assert_int_equal(xmq_client_publish(r.c, &m, NULL), 0);
	WAIT_FOR(&loop, f.npubs == 1);

	fake_dispose(&f);
	WAIT_FOR(&loop, r.disconnects == 1);
	assert_int_equal(r.last_disconnect, MQTT_RC_SERVER_UNAVAILABLE);
	/* While it is away, QoS 1 waits and QoS 0 is refused. */
	assert_int_equal(xmq_client_publish(r.c, &m, NULL), 0);
	m.qos = 0;
	assert_int_equal(xmq_client_publish(r.c, &m, NULL), -ENOTCONN);
	assert_int_equal(xmq_client_queued(r.c), 2);

	fake_init(&loop, &f, 0);
	WAIT_FOR(&loop, r.connects == 2 && xmq_client_queued(r.c) == 0);
	assert_false(f.open_flags & XMQ_OPEN_CLEAN_START);
	assert_int_equal(f.subscribes, 1);
	assert_string_equal(f.filters[0], "r/#");
	assert_int_equal(f.npubs, 2);
	assert_true(f.pubs[0].dup);
	assert_false(f.pubs[1].dup);

	rec_close(&loop, &r);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* hvc: the same protocol over a tty that the client makes raw. */
static void test_client_hvc(void **state)
{
	xmq_client_opts_t o = { .app = "on-hvc" };
	const char *filters[] = { "h/#" };
	xmq_message_t m;
	uv_loop_t loop;
	char payload[600];
	fake_t f;
	rec_t r;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init_pty(&loop, &f);
	o.url = f.url;
	rec_new(&loop, &r, &o);
	assert_int_equal(xmq_client_subscribe(r.c, 1, filters, 1, NULL), 0);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.connects == 1 && r.subacks == 1);
	assert_string_equal(f.app, "on-hvc");

	/* Every byte value, newlines and ^C included, crosses the tty. */
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (char)(i * 7);
	m = msg_of("h/bin", NULL, 1);
	m.payload = payload;
	m.payload_len = sizeof(payload);
	assert_int_equal(xmq_client_publish(r.c, &m, NULL), 0);
	WAIT_FOR(&loop, r.acks == 1);
	assert_int_equal(f.pubs[0].payload_len, sizeof(payload));
	fake_publish(&f, "h/in", "over the channel", 9);
	WAIT_FOR(&loop, r.nmsgs == 1 && f.pubacks == 1);
	assert_string_equal(r.msgs[0]->topic, "h/in");

	rec_close(&loop, &r);
	WAIT_FOR(&loop, f.closes == 1);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* Never more QoS 1 unacknowledged than the peer's receive maximum. */
static void test_client_agent_receive_max(void **state)
{
	enum { N = 20 };
	xmq_client_opts_t o = { .app = "window" };
	xmq_message_t m = msg_of("w/1", "x", 1);
	uv_loop_t loop;
	fake_t f;
	rec_t r;
	int i;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	f.receive_max = 3;
	f.hold_acks = true;
	o.url = f.url;
	rec_new(&loop, &r, &o);
	for (i = 0; i < N; i++)
		assert_int_equal(xmq_client_publish(r.c, &m, NULL), 0);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, f.npubs == 3);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(f.npubs, 3);
	while (f.npubs < N) {
		int before = f.npubs;

		fake_release_acks(&f);
		WAIT_FOR(&loop, f.npubs > before || f.npubs == N);
	}
	fake_release_acks(&f);
	WAIT_FOR(&loop, xmq_client_queued(r.c) == 0);
	assert_int_equal(f.max_inflight, 3);
	assert_int_equal(r.acks, N);
	for (i = 0; i < N; i++)
		assert_false(f.pubs[i].dup);

	rec_close(&loop, &r);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* The peer's max_frame bounds a PUBLISH; QoS 0 needs the session. */
static void test_client_agent_limits(void **state)
{
	xmq_client_opts_t o = { .app = "limits" };
	static char big[2000];
	xmq_message_t m = msg_of("l/1", NULL, 1);
	uv_loop_t loop;
	fake_t f;
	rec_t r;
	int mid;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 1024);
	o.url = f.url;
	rec_new(&loop, &r, &o);
	m.payload = big;
	m.payload_len = XMQ_FRAME_MAX;  /* more than any link carries */
	assert_int_equal(xmq_client_publish(r.c, &m, &mid), -EMSGSIZE);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.connects == 1);

	m.payload_len = sizeof(big);
	assert_int_equal(xmq_client_publish(r.c, &m, &mid), -EMSGSIZE);
	m.qos = 0;
	assert_int_equal(xmq_client_publish(r.c, &m, &mid), -EMSGSIZE);
	m.payload_len = 900;
	assert_int_equal(xmq_client_publish(r.c, &m, &mid), 0);
	WAIT_FOR(&loop, f.npubs == 1);
	assert_int_equal(f.pubs[0].payload_len, 900);

	/* Closed by the peer: QoS 0 is refused until the session reopens. */
	fake_close_stream(&f, MQTT_RC_ADMINISTRATIVE_ACTION);
	WAIT_FOR(&loop, r.disconnects == 1);
	assert_int_equal(r.last_disconnect, MQTT_RC_ADMINISTRATIVE_ACTION);
	assert_false(xmq_client_connected(r.c));
	assert_int_equal(xmq_client_publish(r.c, &m, &mid), -ENOTCONN);
	m.qos = 1;
	assert_int_equal(xmq_client_publish(r.c, &m, &mid), 0);
	WAIT_FOR(&loop, r.connects == 2 && r.acks == 1);
	assert_int_equal(f.opens, 2);
	assert_int_equal(r.last_ack_mid, mid);

	rec_close(&loop, &r);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* A refused OPEN is reported and tried again; a refused subscription is
 * reported and forgotten. */
static void test_client_agent_refusals(void **state)
{
	xmq_client_opts_t o = { .app = "refused" };
	const char *filters[] = { "ok/1", "deny/1" };
	uv_loop_t loop;
	fake_t f;
	rec_t r;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	f.open_reason = MQTT_RC_NOT_AUTHORIZED;
	o.url = f.url;
	rec_new(&loop, &r, &o);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.refusals == 1);
	assert_int_equal(r.last_refusal, MQTT_RC_NOT_AUTHORIZED);
	assert_false(xmq_client_connected(r.c));
	f.open_reason = 0;
	WAIT_FOR(&loop, r.connects == 1);
	assert_int_equal(f.opens, 2);
	/* Still the first session the peer accepted: clean start. */
	assert_true(f.open_flags & XMQ_OPEN_CLEAN_START);

	assert_int_equal(xmq_client_subscribe(r.c, 2, filters, 0, NULL), 0);
	WAIT_FOR(&loop, r.subacks == 1);
	assert_int_equal(r.last_sub_count, 2);
	assert_int_equal(r.last_sub_reasons[0], 0);
	assert_int_equal(r.last_sub_reasons[1], MQTT_RC_NOT_AUTHORIZED);
	xmq_link_restart(&f.link);
	WAIT_FOR(&loop, r.connects == 2 && f.subscribes == 2);
	assert_int_equal(fake_filter_count(&f, "ok/1"), 2);
	assert_int_equal(fake_filter_count(&f, "deny/1"), 1);

	rec_close(&loop, &r);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* Another client took the name: told why, and back after a longer pause
 * (not measured here: only that it comes back, with its session). */
static void test_client_agent_takeover(void **state)
{
	xmq_client_opts_t o = { .app = "twin" };
	const char *filters[] = { "t/#" };
	uv_loop_t loop;
	fake_t f;
	rec_t r;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	o.url = f.url;
	rec_new(&loop, &r, &o);
	assert_int_equal(xmq_client_subscribe(r.c, 1, filters, 0, NULL), 0);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.connects == 1 && r.subacks == 1);
	fake_close_stream(&f, MQTT_RC_SESSION_TAKEN_OVER);
	WAIT_FOR(&loop, r.disconnects == 1);
	assert_int_equal(r.last_disconnect, MQTT_RC_SESSION_TAKEN_OVER);
	assert_int_equal(f.opens, 1);
	WAIT_FOR(&loop, r.connects == 2 && f.subscribes == 2);
	assert_int_equal(f.opens, 2);
	assert_false(f.open_flags & XMQ_OPEN_CLEAN_START);

	rec_close(&loop, &r);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* Closing from inside a callback is safe. */
static void close_in_message(xmq_client_t *c, const xmq_message_t *m)
{
	rec_t *r = xmq_client_data(c);

	r->nmsgs++;
	xmq_client_close(c, rec_closed);
}

static void test_client_agent_close_in_callback(void **state)
{
	xmq_client_opts_t o = { .app = "closer" };
	xmq_client_cb_t cb = rec_cb;
	uv_loop_t loop;
	fake_t f;
	rec_t r;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	o.url = f.url;
	cb.message = close_in_message;
	memset(&r, 0, sizeof(r));
	assert_int_equal(xmq_client_new(&loop, &o, &cb, &r, &r.c), 0);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.connects == 1);
	fake_publish(&f, "x/y", "bye", 5);
	WAIT_FOR(&loop, r.closed);
	assert_int_equal(r.nmsgs, 1);
	WAIT_FOR(&loop, f.closes == 1);
	/* Closed before its callback returned: not acknowledged. */
	assert_int_equal(f.pubacks, 0);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* ---- frames lost within an epoch ----------------------------------------- */

static void count_active_timer(uv_handle_t *h, void *arg)
{
	if (h->type == UV_TIMER && uv_is_active(h) && !uv_is_closing(h))
		(*(int *)arg)++;
}

/* Timers running on the loop: the client's resend timer runs only while
 * something waits for an answer, so an idle client costs no wake-ups. */
static int active_timers(uv_loop_t *loop)
{
	int n = 0;

	uv_walk(loop, count_active_timer, &n);
	return n;
}

/* A PUBLISH lost on the line goes again with dup, the same packet id, in
 * the order of those due, until it is acknowledged; one acknowledged in time
 * does not go again, and an acknowledgement for nothing pending is ignored. */
static void test_client_agent_resend_publish(void **state)
{
	enum { N = 4 };
	xmq_client_opts_t o = { .app = "resend-pub" };
	xmq_message_t m = msg_of("rp/1", "x", 1);
	uv_loop_t loop;
	fake_t f;
	rec_t r;
	int idle;
	int i;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	o.url = f.url;
	rec_new(&loop, &r, &o);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.connects == 1);
	idle = active_timers(&loop);

	/* The second and third are lost, the others acknowledged at once. */
	f.lose_pubs = 1u << 1 | 1u << 2;
	for (i = 0; i < N; i++)
		assert_int_equal(xmq_client_publish(r.c, &m, NULL), 0);
	WAIT_FOR(&loop, f.npubs == N && r.acks == 2);
	assert_int_equal(xmq_client_queued(r.c), 2);
	assert_int_equal(active_timers(&loop), idle + 1);

	WAIT_FOR(&loop, xmq_client_queued(r.c) == 0);
	assert_int_equal(r.acks, N);
	assert_int_equal(r.acks_refused, 0);
	assert_int_equal(f.npubs, N + 2);
	for (i = 0; i < N; i++)
		assert_false(f.pubs[i].dup);
	assert_true(f.pubs[N].dup);
	assert_int_equal(f.pubs[N].packet_id, f.pubs[1].packet_id);
	assert_true(f.pubs[N + 1].dup);
	assert_int_equal(f.pubs[N + 1].packet_id, f.pubs[2].packet_id);
	/* Nothing waits: the timer is off at once, not at its next tick. */
	assert_int_equal(active_timers(&loop), idle);

	/* A late PUBACK (for the copy that was not lost after all) changes
	 * nothing, and the message after it goes and is acknowledged. */
	fake_puback(&f, f.pubs[1].packet_id);
	m = msg_of("rp/2", "y", 1);
	assert_int_equal(xmq_client_publish(r.c, &m, NULL), 0);
	WAIT_FOR(&loop, r.acks == N + 1);
	assert_int_equal(f.npubs, N + 3);
	assert_false(f.pubs[N + 2].dup);

	rec_close(&loop, &r);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* A peer that is slow but keeps answering (a long window on a slow channel)
 * gets no copies: a PUBLISH waits longer than XMQ_RESEND_MS for its PUBACK,
 * but the peer answered another one meanwhile, so nothing goes again. */
static void test_client_agent_slow_peer_no_resend(void **state)
{
	enum { N = 3, STEP_MS = XMQ_RESEND_MS / 2 + 500 };
	xmq_client_opts_t o = { .app = "slow-peer" };
	xmq_message_t m = msg_of("sp/1", "x", 1);
	uv_loop_t loop;
	uint64_t until;
	fake_t f;
	rec_t r;
	int i;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	o.url = f.url;
	rec_new(&loop, &r, &o);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.connects == 1);

	f.hold_acks = true;
	for (i = 0; i < N; i++)
		assert_int_equal(xmq_client_publish(r.c, &m, NULL), 0);
	WAIT_FOR(&loop, f.nheld == N);
	/* One PUBACK every STEP_MS: the last comes N * STEP_MS after all
	 * were sent, well past XMQ_RESEND_MS, with answers in between. */
	for (i = 0; i < N; i++) {
		until = uv_now(&loop) + STEP_MS;
		WAIT_FOR(&loop, uv_now(&loop) >= until);
		fake_puback(&f, f.held[i]);
		WAIT_FOR(&loop, r.acks == i + 1);
	}
	assert_true((uint64_t)N * STEP_MS > XMQ_RESEND_MS);
	assert_int_equal(f.npubs, N);
	for (i = 0; i < N; i++)
		assert_false(f.pubs[i].dup);
	assert_int_equal(xmq_client_queued(r.c), 0);

	rec_close(&loop, &r);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* An OPEN_ACK lost on the line: the OPEN goes again, unchanged, and is
 * answered as a repetition (session present, as xenmqd answers). The answer
 * to the lost one may have said "not present", so the client subscribes
 * again and tells the application the session was not kept. */
static void test_client_agent_resend_open(void **state)
{
	xmq_client_opts_t o = { .app = "resend-open" };
	const char *filters[] = { "ro/#" };
	xmq_message_t m = msg_of("ro/1", "x", 1);
	uv_loop_t loop;
	fake_t f;
	rec_t r;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	o.url = f.url;
	rec_new(&loop, &r, &o);
	assert_int_equal(xmq_client_subscribe(r.c, 1, filters, 1, NULL), 0);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.connects == 1 && r.subacks == 1);
	assert_int_equal(f.subscribes, 1);

	/* A new epoch whose first OPEN_ACK is lost; a message waits. */
	f.lose_open_acks = 1;
	f.session_present = false;
	xmq_link_restart(&f.link);
	WAIT_FOR(&loop, r.disconnects == 1 && f.opens == 2);
	assert_int_equal(xmq_client_publish(r.c, &m, NULL), 0);
	assert_false(xmq_client_connected(r.c));
	WAIT_FOR(&loop, r.connects == 2 && xmq_client_queued(r.c) == 0);
	assert_int_equal(f.opens, 3);
	assert_int_equal(f.open_repeats, 1);
	assert_false(f.open_flags & XMQ_OPEN_CLEAN_START);
	assert_int_equal(f.frames_before_ack, 0);
	assert_false(r.session_present);
	WAIT_FOR(&loop, f.subscribes == 2);
	assert_int_equal(fake_filter_count(&f, "ro/#"), 2);
	assert_int_equal(r.subacks, 1);  /* a re-subscription is not reported */
	assert_int_equal(f.npubs, 1);
	assert_false(f.pubs[0].dup);

	rec_close(&loop, &r);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* A SUBACK and an UNSUBACK lost on the line: both requests go again with
 * their packet ids, each is reported once, and a late answer is ignored. */
static void test_client_agent_resend_subscribe(void **state)
{
	xmq_client_opts_t o = { .app = "resend-sub" };
	const char *sub[] = { "rs/a", "rs/b" };
	const char *unsub[] = { "rs/c" };
	uv_loop_t loop;
	fake_t f;
	rec_t r;
	int smid = 0;
	int umid = 0;
	int idle;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	o.url = f.url;
	rec_new(&loop, &r, &o);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.connects == 1);
	idle = active_timers(&loop);

	f.lose_subacks = 1;
	f.lose_unsubacks = 1;
	assert_int_equal(xmq_client_subscribe(r.c, 2, sub, 1, &smid), 0);
	assert_int_equal(xmq_client_unsubscribe(r.c, 1, unsub, &umid), 0);
	WAIT_FOR(&loop, f.subscribes == 1 && f.unsubscribes == 1);
	assert_int_equal(r.subacks + r.unsubacks, 0);

	WAIT_FOR(&loop, r.subacks == 1 && r.unsubacks == 1);
	assert_int_equal(f.subscribes, 2);
	assert_int_equal(f.unsubscribes, 2);
	assert_int_equal(f.sub_ids[0], smid);
	assert_int_equal(f.sub_ids[1], smid);
	assert_int_equal(f.unsub_ids[0], umid);
	assert_int_equal(f.unsub_ids[1], umid);
	assert_int_equal(fake_filter_count(&f, "rs/a"), 2);
	assert_int_equal(fake_filter_count(&f, "rs/b"), 2);
	assert_int_equal(r.last_sub_mid, smid);
	assert_int_equal(r.last_sub_count, 2);
	assert_int_equal(active_timers(&loop), idle);

	/* The answers to the first copies, late: nothing pending, ignored. */
	fake_suback(&f, XMQ_T_SUBACK, (uint16_t)smid, 2);
	fake_suback(&f, XMQ_T_UNSUBACK, (uint16_t)umid, 1);
	fake_publish(&f, "rs/a", "marker", 3);
	WAIT_FOR(&loop, r.nmsgs == 1 && f.pubacks == 1);
	assert_int_equal(r.subacks, 1);
	assert_int_equal(r.unsubacks, 1);

	rec_close(&loop, &r);
	fake_dispose(&f);
	loop_finish(&loop);
}

/* A QoS 1 message that comes again (its PUBACK was lost) is delivered again,
 * marked dup, and acknowledged again: QoS 1 is at least once. */
static void test_client_agent_incoming_dup(void **state)
{
	xmq_client_opts_t o = { .app = "incoming-dup" };
	uv_loop_t loop;
	fake_t f;
	rec_t r;

	assert_int_equal(uv_loop_init(&loop), 0);
	fake_init(&loop, &f, 0);
	o.url = f.url;
	rec_new(&loop, &r, &o);
	assert_int_equal(xmq_client_start(r.c), 0);
	WAIT_FOR(&loop, r.connects == 1);

	fake_publish(&f, "in/1", "once", 41);
	fake_publish_dup(&f, "in/1", "once", 41, true);
	WAIT_FOR(&loop, r.nmsgs == 2 && f.pubacks == 2);
	assert_false(r.msgs[0]->dup);
	assert_true(r.msgs[1]->dup);
	assert_int_equal(r.msgs[1]->qos, 1);
	assert_string_equal(r.msgs[1]->topic, "in/1");
	assert_int_equal(r.msgs[1]->payload_len, 4);
	assert_int_equal(f.pubacked[0], 41);
	assert_int_equal(f.pubacked[1], 41);

	rec_close(&loop, &r);
	fake_dispose(&f);
	loop_finish(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_url_parse),
		cmocka_unit_test(test_client_url_defaults),
		cmocka_unit_test(test_client_new_checks),
		cmocka_unit_test(test_client_input_checks),
		cmocka_unit_test(test_client_strerror),
		cmocka_unit_test(test_client_mqtt_round_trip),
		cmocka_unit_test(test_client_mqtt_qos1_outage),
		cmocka_unit_test(test_client_mqtt_resubscribe),
		cmocka_unit_test(test_client_mqtt_will),
		cmocka_unit_test(test_client_agent_open),
		cmocka_unit_test(test_client_agent_replay),
		cmocka_unit_test(test_client_agent_restart),
		cmocka_unit_test(test_client_hvc),
		cmocka_unit_test(test_client_agent_receive_max),
		cmocka_unit_test(test_client_agent_limits),
		cmocka_unit_test(test_client_agent_refusals),
		cmocka_unit_test(test_client_agent_takeover),
		cmocka_unit_test(test_client_agent_close_in_callback),
		cmocka_unit_test(test_client_agent_resend_publish),
		cmocka_unit_test(test_client_agent_slow_peer_no_resend),
		cmocka_unit_test(test_client_agent_resend_open),
		cmocka_unit_test(test_client_agent_resend_subscribe),
		cmocka_unit_test(test_client_agent_incoming_dup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
