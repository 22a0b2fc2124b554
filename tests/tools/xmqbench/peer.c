/* SPDX-License-Identifier: MIT */
/*
 * peer.c - xmqbench send, recv, request and respond: one process on each
 * side, between two domains.
 *
 * These run one client, paths[0], on --url: a program in a DomU on its agent,
 * or one in Dom0 on Mosquitto itself. The two sides of a measurement have no
 * clock in common, so every figure is timed by one side alone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tests/tools/xmqbench/xmqbench.h"

static void on_peer_subscribe(xmq_client_t *c, int mid, int count, const uint8_t *reasons)
{
	struct path *p = xmq_client_data(c);

	p->b->sub_reason = count > 0 ? reasons[0] : 0x80;
	p->subscribed = true;
}

/* send: the first go names the run; later ones are repeats. A "done" (seq
 * 1) of that run ends the time over which CPU shares are counted. */
static void peer_send_message(struct bench *b, const xmq_message_t *msg)
{
	const uint8_t *p = msg->payload;

	if (msg->payload_len < HDR_LEN || get32(p) != MAGIC)
		return;
	if (!b->go && get32(p + 8) == 0) {
		b->run = get32(p + 4);
		b->go = true;
	} else if (b->go && get32(p + 8) == 1 && get32(p + 4) == b->run) {
		b->done = true;
	}
}

/* recv: the stream answers one of our go messages; count it once per seq. */
static void peer_recv_message(struct bench *b, const xmq_message_t *msg)
{
	const uint8_t *p = msg->payload;
	uint64_t now = now_ns();
	uint32_t run, seq;

	if (msg->payload_len < HDR_LEN || get32(p) != MAGIC)
		return;
	run = get32(p + 4);
	seq = get32(p + 8);
	if (b->run == 0) {
		if (run == 0 || run > b->ngo)
			return;
		b->run = run;
		b->t_first_rx = now;
		b->first_len = msg->payload_len;
		watch_start(b);
	}
	if (run != b->run || seq >= b->count)
		return;
	if (seen_mark(b, seq)) {
		b->dups++;
		return;
	}
	b->received++;
	b->bytes += msg->payload_len;
	b->t_last_rx = now;
	b->t_progress = now;
}

/* request: the reply to the round under way, told by its correlation data. */
static void peer_request_message(struct bench *b, const xmq_message_t *msg)
{
	const uint8_t *cd = msg->props.correlation_data;

	if (!b->waiting || cd == NULL || msg->props.correlation_len != 8 ||
	    get32(cd) != b->run || get32(cd + 4) != b->wait_seq)
		return;
	b->t_last_rx = now_ns();
	b->waiting = false;
}

/* respond: the request's payload back to its response topic, same correlation. */
static void peer_respond_message(struct bench *b, const xmq_message_t *msg)
{
	xmq_message_t r = {
		.topic = msg->props.response_topic,
		.payload = msg->payload,
		.payload_len = msg->payload_len,
		.qos = (uint8_t)b->o.qos,
		.props = {
			.correlation_data = msg->props.correlation_data,
			.correlation_len = msg->props.correlation_len,
		},
	};
	int err;

	if (r.topic == NULL) {
		b->ignored++;
		return;
	}
	err = xmq_client_publish(b->paths[0].c, &r, NULL);
	if (err != 0) {
		say("reply to %s: %s", r.topic, xmq_strerror(err));
		b->ignored++;
		return;
	}
	b->replied++;
}

static void on_peer_message(xmq_client_t *c, const xmq_message_t *msg)
{
	struct path *p = xmq_client_data(c);
	struct bench *b = p->b;

	switch (b->mode) {
	case M_SEND:
		peer_send_message(b, msg);
		break;
	case M_RECV:
		peer_recv_message(b, msg);
		break;
	case M_REQUEST:
		peer_request_message(b, msg);
		break;
	case M_RESPOND:
		peer_respond_message(b, msg);
		break;
	default:
		break;
	}
}

static bool peer_subscribed(struct bench *b)
{
	return b->paths[0].subscribed;
}

/*
 * Connect paths[0] to --url and subscribe it to filter at qos, within
 * --timeout; mode is set first, so that nothing that arrives is missed.
 */
static int peer_start(struct bench *b, enum mode mode, const char *filter, uint8_t qos)
{
	static const xmq_client_cb_t cb = {
		.connect = on_pub_connect,
		.disconnect = on_pub_disconnect,
		.message = on_peer_message,
		.publish = on_pub_publish,
		.subscribe = on_peer_subscribe,
	};
	struct path *p = &b->paths[0];
	uint64_t ms = (uint64_t)b->o.timeout * 1000;
	char app[XMQ_APP_MAX + 1];
	int err;

	b->npaths = 1;
	p->name = cmd_names[b->o.cmd];
	p->url = b->o.url;
	p->b = b;
	b->mode = mode;
	snprintf(app, sizeof(app), "xmqbench-%s", p->name);
	err = make_client(b, p->url, app, (uint16_t)b->o.receive_max, &cb, p, &p->c);
	if (err != 0)
		return err;
	if (wait_until(b, all_connected, ms) != 0) {
		say("could not connect to %s within %u s", p->url, b->o.timeout);
		return -ETIMEDOUT;
	}
	err = xmq_client_subscribe(p->c, 1, &filter, qos, NULL);
	if (err == 0 && wait_until(b, peer_subscribed, ms) != 0)
		err = -ETIMEDOUT;
	if (err == 0 && b->sub_reason >= 0x80)
		err = XMQ_EREFUSED;
	if (err != 0) {
		say("cannot subscribe to %s: %s", filter, xmq_strerror(err));
		return err;
	}
	/* The other side's harness waits for this line. */
	printf("ready\n");
	fflush(stdout);
	return 0;
}

/* ---- send ------------------------------------------------------------------- */

static bool go_arrived(struct bench *b)
{
	return b->go || b->error != 0;
}

static bool send_done(struct bench *b)
{
	return b->error != 0 || (b->sent >= b->count && xmq_client_queued(b->cur->c) == 0);
}

static bool done_arrived(struct bench *b)
{
	return b->done;
}

int peer_send(struct bench *b)
{
	uint64_t ms = (uint64_t)b->o.timeout * 1000;
	char go[560];
	size_t most;
	double secs;
	int err;

	snprintf(go, sizeof(go), "%s/go", b->o.topic);
	snprintf(b->topic, sizeof(b->topic), "%s/data", b->o.topic);
	most = (size_t)b->o.max_frame - PUBLISH_OVERHEAD - strlen(b->topic);
	if (b->o.size_max)
		b->o.size = (unsigned)(most < PAYLOAD_MAX ? most : PAYLOAD_MAX);
	if (b->o.size < HDR_LEN || b->o.size > PAYLOAD_MAX) {
		say("--max-frame %u leaves no room for a message on %s", b->o.max_frame, b->topic);
		return -EINVAL;
	}
	/* The stream: tput_fill() from on_check() at each turn once count is
	 * set, paced by the library at QoS 1; done once every message is
	 * acknowledged. No window: nothing tells the sender what arrived. */
	b->cur = &b->paths[0];
	b->qos = (uint8_t)b->o.qos;
	b->window = 0;
	b->count = 0;
	err = peer_start(b, M_SEND, go, 0);
	if (err != 0)
		return err;
	if (wait_until(b, go_arrived, ms) != 0) {
		say("no go on %s within %u s", go, b->o.timeout);
		return -ETIMEDOUT;
	}
	b->count = b->o.count;
	watch_start(b);
	tput_fill(b);
	err = wait_until(b, send_done, ms);
	if (err == 0)
		err = b->error;
	if (err != 0) {
		say("%" PRIu64 " of %" PRIu64 " sent, %zu unacknowledged: %s", b->sent, b->count,
		    xmq_client_queued(b->cur->c), xmq_strerror(err));
		return err;
	}
	secs = (double)(now_ns() - b->t_first) / 1e9;
	/* CPU shares over the receiver's time, not only until the last ack */
	(void)wait_until(b, done_arrived, DONE_MS);
	printf("result test=send topic=%s size=%u qos=%u go=%" PRIu32 " sent=%" PRIu64
	       " secs=%.4f rate=%.0f done=%d", b->topic, b->o.size, b->o.qos, b->run, b->sent,
	       secs, secs > 0 ? (double)(b->sent * b->o.size) / secs : 0, b->done);
	watch_print(b);
	putchar('\n');
	return 0;
}

/* ---- recv ------------------------------------------------------------------- */

static bool recv_started(struct bench *b)
{
	return b->run != 0 || b->error != 0;
}

static bool recv_done(struct bench *b)
{
	return b->received >= b->count || now_ns() - b->t_progress >= STALL_RECV_NS;
}

/* recv: go k (seq 0, QoS 0), carrying k where a data message carries its run;
 * or done (seq 1, QoS 1) once everything arrived. */
static int publish_go(struct bench *b, const char *topic, uint32_t k, uint32_t seq)
{
	xmq_message_t m = {
		.topic = topic, .payload = b->payload, .payload_len = HDR_LEN, .qos = seq == 1,
	};
	uint64_t t = now_ns();

	put32(b->payload, MAGIC);
	put32(b->payload + 4, k);
	put32(b->payload + 8, seq);
	memcpy(b->payload + 12, &t, 8);
	return xmq_client_publish(b->paths[0].c, &m, NULL);
}

int peer_recv(struct bench *b)
{
	uint64_t end = now_ns() + (uint64_t)b->o.timeout * 1000000000ull;
	char data[560], go[560];
	double secs, first;
	int err;

	snprintf(data, sizeof(data), "%s/data", b->o.topic);
	snprintf(go, sizeof(go), "%s/go", b->o.topic);
	b->count = b->o.count;
	b->run = 0;
	b->cur = &b->paths[0];
	err = peer_start(b, M_RECV, data, (uint8_t)b->o.qos);
	if (err != 0)
		return err;
	/* A go is lost while the sender is not yet subscribed: send another. */
	while (!recv_started(b)) {
		if (b->ngo == GO_MAX || now_ns() >= end) {
			say("nothing arrived on %s within %u s", data, b->o.timeout);
			return -ETIMEDOUT;
		}
		err = publish_go(b, go, b->ngo + 1, 0);
		if (err != 0 && err != -ENOTCONN) {
			say("go on %s: %s", go, xmq_strerror(err));
			return err;
		}
		b->ngo++;
		b->t_go[b->ngo] = now_ns();
		(void)wait_until(b, recv_started, GO_PERIOD_MS);
	}
	b->t_progress = now_ns();
	(void)wait_until(b, recv_done, UINT32_MAX);
	secs = (double)(b->t_last_rx - b->t_go[b->run]) / 1e9;
	first = (double)(b->t_last_rx - b->t_first_rx) / 1e9;
	printf("result test=recv topic=%s qos=%u go=%" PRIu32 " count=%" PRIu64
	       " received=%" PRIu64 " dups=%" PRIu64 " bytes=%" PRIu64 " secs=%.4f rate=%.0f"
	       " msg_rate=%.1f first_secs=%.4f first_rate=%.0f", data, b->o.qos, b->run,
	       b->count, b->received, b->dups, b->bytes, secs,
	       secs > 0 ? (double)b->bytes / secs : 0,
	       secs > 0 ? (double)b->received / secs : 0, first,
	       first > 0 ? (double)(b->bytes - b->first_len) / first : 0);
	watch_print(b);
	putchar('\n');
	fflush(stdout);
	if (publish_go(b, go, b->run, 1) == 0)
		(void)wait_until(b, queue_empty, SETTLE_MS);
	if (b->received < b->count) {
		say("%" PRIu64 " of %" PRIu64 " messages arrived", b->received, b->count);
		return -ETIMEDOUT;
	}
	return 0;
}

/* ---- request and respond ---------------------------------------------------- */

static bool reply_arrived(struct bench *b)
{
	return !b->waiting || b->error != 0;
}

/* request: --warmup rounds, then --count timed ones, one at a time. */
int peer_request(struct bench *b)
{
	uint8_t cd[8];
	xmq_message_t m = {
		.topic = b->o.topic,
		.payload = b->payload,
		.payload_len = b->o.size,
		.qos = (uint8_t)b->o.qos,
		.props = {
			.response_topic = b->o.reply,
			.correlation_data = cd,
			.correlation_len = sizeof(cd),
		},
	};
	struct measure s;
	uint64_t total = (uint64_t)b->o.warmup + b->o.count;
	uint64_t i, t;
	int err;

	err = peer_start(b, M_REQUEST, b->o.reply, (uint8_t)b->o.qos);
	if (err != 0)
		return err;
	b->run = 1;
	for (i = 0; i < total && b->error == 0; i++) {
		if (i == b->o.warmup)
			watch_start(b);
		b->wait_seq = (uint32_t)i;
		put32(cd, b->run);
		put32(cd + 4, b->wait_seq);
		b->waiting = true;
		t = now_ns();
		err = xmq_client_publish(b->paths[0].c, &m, NULL);
		if (err != 0) {
			say("request on %s: %s", m.topic, xmq_strerror(err));
			return err;
		}
		if (wait_until(b, reply_arrived, ROUND_LOST_MS) != 0) {
			b->waiting = false;
			if (i >= b->o.warmup)
				b->lat_lost++;
			continue;
		}
		if (i >= b->o.warmup)
			b->lat[b->nlat++] = (double)(b->t_last_rx - t) / 1000.0;
	}
	if (b->error != 0)
		return b->error;
	memset(&s, 0, sizeof(s));
	lat_fill(&s, b->lat, b->nlat);
	printf("result test=request topic=%s size=%u qos=%u count=%u received=%" PRIu64
	       " lost=%" PRIu64 " min_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f"
	       " mean_us=%.1f", m.topic, b->o.size, b->o.qos, b->o.count, b->nlat, b->lat_lost,
	       b->nlat > 0 ? b->lat[0] : 0, s.p50, s.p90, s.p99, s.max, s.mean);
	watch_print(b);
	putchar('\n');
	return b->nlat > 0 ? 0 : -ETIMEDOUT;
}

static bool respond_done(struct bench *b)
{
	return b->stop || b->error != 0 || (b->o.count > 0 && b->replied >= b->o.count);
}

/* respond: until SIGTERM or SIGINT, or --count replies. */
int peer_respond(struct bench *b)
{
	int err;

	signals_start(b);
	err = peer_start(b, M_RESPOND, b->o.topic, (uint8_t)b->o.qos);
	if (err != 0)
		return err;
	(void)wait_until(b, respond_done, (uint64_t)365 * 24 * 3600 * 1000);
	printf("result test=respond replied=%" PRIu64 " ignored=%" PRIu64 "\n", b->replied,
	       b->ignored);
	return b->error;
}
