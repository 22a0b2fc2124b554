/* SPDX-License-Identifier: MIT */
/*
 * run.c - xmqbench run: throughput and latency of each path, measured by one
 * subscriber on Mosquitto itself in the same process, so that one clock
 * times the whole way. Sets the subscriber and the publishers up, sends a
 * probe through each path, measures each test on each path in turn for
 * --rounds rounds, and prints a "result" line per measurement and a
 * "summary" line (medians) per test and path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tests/tools/xmqbench/xmqbench.h"

const char *const test_names[T_COUNT] = { "tput0", "tput1", "lat0", "lat1", "burst0" };

/* ---- the subscriber ---------------------------------------------------------- */

static void on_sub_message(xmq_client_t *c, const xmq_message_t *msg)
{
	struct bench *b = xmq_client_data(c);
	const uint8_t *p = msg->payload;
	uint64_t now = now_ns();
	uint64_t t;
	uint32_t seq;

	if (msg->payload_len < HDR_LEN || get32(p) != MAGIC || get32(p + 4) != b->run)
		return;
	seq = get32(p + 8);
	memcpy(&t, p + 12, 8);
	if (b->mode == M_PROBE) {
		b->received++;
		return;
	}
	if (seen_mark(b, seq)) {
		b->dups++;
		return;
	}
	b->received++;
	b->t_last_rx = now;
	b->t_progress = now;
	if (b->mode == M_LAT && b->waiting && seq == b->wait_seq) {
		b->lat[b->nlat++] = (double)(now - t) / 1000.0;
		b->waiting = false;
	}
}

static void on_sub_connect(xmq_client_t *c, int reason, bool session_present)
{
	struct bench *b = xmq_client_data(c);

	if (reason == 0)
		b->sub_connected = true;
	else
		say("subscriber refused: %s", xmq_reason_string(reason));
}

static void on_sub_subscribe(xmq_client_t *c, int mid, int count, const uint8_t *reasons)
{
	struct bench *b = xmq_client_data(c);

	b->sub_reason = count > 0 ? reasons[0] : 0x80;
	b->sub_subscribed = true;
}

/* ---- one measurement --------------------------------------------------------- */

static bool tput_done(struct bench *b)
{
	return b->error != 0 || b->received >= b->count ||
	       (b->sent >= b->count && b->received + b->presumed_lost >= b->count);
}

static bool lat_done(struct bench *b)
{
	return b->error != 0 || b->nlat + b->lat_lost >= b->count;
}

static bool probe_done(struct bench *b)
{
	return b->received > 0;
}

static void begin(struct bench *b, struct path *p, enum mode mode, uint8_t qos, uint64_t count)
{
	b->cur = p;
	b->run++;
	snprintf(b->topic, sizeof(b->topic), "%s/%" PRIu32, b->o.topic, b->run);
	b->qos = qos;
	b->count = count;
	b->sent = b->received = b->presumed_lost = b->dups = 0;
	b->nlat = b->lat_lost = 0;
	b->waiting = false;
	b->error = 0;
	b->t_first = b->t_last_rx = 0;
	b->t_progress = b->t_sent = now_ns();
	memset(b->seen, 0, (count + 7) / 8);
	b->mode = mode;
}

/*
 * Measure test t on path p (count 0: the configured count) into *m. A
 * throughput test waits for the library to have every QoS 1 message
 * acknowledged before it returns, so that the next test starts clean.
 */
static int measure(struct bench *b, struct path *p, enum test t, uint64_t count,
                   struct measure *m)
{
	bool lat = t == T_LAT0 || t == T_LAT1;
	uint8_t qos = t == T_TPUT1 || t == T_LAT1;
	uint64_t cpu0[WATCH_MAX];
	uint64_t i;
	int err;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < b->o.nwatch; i++)
		cpu0[i] = cpu_ns(b->o.watch_pid[i]);
	begin(b, p, lat ? M_LAT : M_TPUT, qos, count);
	b->window = t == T_BURST0 ? 0 : b->o.window;
	if (lat) {
		lat_next(b);
		err = wait_until(b, lat_done, count * LAT_LOST_NS / 1000000 + 10000);
	} else {
		tput_fill(b);
		err = wait_until(b, tput_done, 600000);
	}
	b->mode = M_IDLE;
	if (err == 0)
		err = b->error;
	if (err == 0 && wait_until(b, queue_empty, SETTLE_MS) != 0) {
		say("%s: %zu QoS 1 messages still unacknowledged", p->name,
		    xmq_client_queued(p->c));
		err = -ETIMEDOUT;
	}
	if (err != 0)
		return err;
	for (i = 0; i < b->o.nwatch && b->received > 0; i++)
		m->cpu[i] = (double)(cpu_ns(b->o.watch_pid[i]) - cpu0[i]) / 1000.0 /
		            (double)b->received;
	m->sent = b->sent;
	m->received = b->received;
	m->dups = b->dups;
	if (lat) {
		m->lost = b->lat_lost;
		lat_fill(m, b->lat, b->nlat);
	} else {
		m->lost = b->sent - b->received;
		m->secs = (double)(b->t_last_rx - b->t_first) / 1e9;
		m->rate = m->secs > 0 ? (double)b->received / m->secs : 0;
	}
	return 0;
}

void print_measure(const struct bench *b, const char *what, enum test t,
                   const struct path *p, unsigned round, const struct measure *m)
{
	unsigned i;

	if (t == T_TPUT0 || t == T_TPUT1 || t == T_BURST0)
		printf("%s test=%s path=%s round=%u sent=%" PRIu64 " received=%" PRIu64
		       " lost=%" PRIu64 " dups=%" PRIu64 " secs=%.4f rate=%.0f", what,
		       test_names[t], p->name, round, m->sent, m->received, m->lost, m->dups,
		       m->secs, m->rate);
	else
		printf("%s test=%s path=%s round=%u sent=%" PRIu64 " received=%" PRIu64
		       " lost=%" PRIu64 " p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f"
		       " mean_us=%.1f", what, test_names[t], p->name, round, m->sent,
		       m->received, m->lost, m->p50, m->p90, m->p99, m->max, m->mean);
	for (i = 0; i < b->o.nwatch; i++)
		printf(" cpu_%s_us=%.2f", b->o.watch_name[i], m->cpu[i]);
	putchar('\n');
	fflush(stdout);
}

/* The median of each figure over the rounds, each figure on its own. */
static void summarise(struct bench *b)
{
	double v[7][ROUNDS_MAX];
	struct measure s;
	unsigned t, i, r, w, n = b->o.rounds;
	uint64_t lost;

	for (t = 0; t < T_COUNT; t++) {
		if (!b->o.tests[t])
			continue;
		for (i = 0; i < b->npaths; i++) {
			const struct path *p = &b->paths[i];

			memset(&s, 0, sizeof(s));
			lost = 0;
			for (r = 0; r < n; r++) {
				const struct measure *m = &p->m[t][r];

				v[0][r] = m->rate;
				v[1][r] = m->secs;
				v[2][r] = m->p50;
				v[3][r] = m->p90;
				v[4][r] = m->p99;
				v[5][r] = m->max;
				v[6][r] = m->mean;
				lost += m->lost;
				s.sent += m->sent;
				s.received += m->received;
				s.dups += m->dups;
			}
			s.rate = median(v[0], n);
			s.secs = median(v[1], n);
			s.p50 = median(v[2], n);
			s.p90 = median(v[3], n);
			s.p99 = median(v[4], n);
			s.max = median(v[5], n);
			s.mean = median(v[6], n);
			s.lost = lost;
			/* sent, received, lost and dups are totals over the rounds. */
			for (w = 0; w < b->o.nwatch; w++) {
				for (r = 0; r < n; r++)
					v[0][r] = p->m[t][r].cpu[w];
				s.cpu[w] = median(v[0], n);
			}
			print_measure(b, "summary", (enum test)t, p, n, &s);
		}
	}
}

/* ---- setting up ------------------------------------------------------------ */

static bool sub_connected(struct bench *b)
{
	return b->sub_connected;
}

static bool sub_subscribed(struct bench *b)
{
	return b->sub_subscribed;
}

static int setup(struct bench *b)
{
	static const xmq_client_cb_t sub_cb = {
		.connect = on_sub_connect,
		.message = on_sub_message,
		.subscribe = on_sub_subscribe,
	};
	static const xmq_client_cb_t pub_cb = {
		.connect = on_pub_connect,
		.disconnect = on_pub_disconnect,
		.publish = on_pub_publish,
	};
	char filter[520];
	const char *f = filter;
	char app[XMQ_APP_MAX + 1];
	unsigned i;
	int err;

	/* The subscriber's window is wide, so that it is never what limits. */
	err = make_client(b, b->o.sub_url, "xmqbench-sub", 1024, &sub_cb, b, &b->sub);
	if (err != 0)
		return err;
	if (wait_until(b, sub_connected, CONNECT_MS) != 0) {
		say("the subscriber could not connect to %s", b->o.sub_url);
		return -ETIMEDOUT;
	}
	snprintf(filter, sizeof(filter), "%s/#", b->o.topic);
	err = xmq_client_subscribe(b->sub, 1, &f, 1, NULL);
	if (err == 0 && wait_until(b, sub_subscribed, CONNECT_MS) != 0)
		err = -ETIMEDOUT;
	if (err == 0 && b->sub_reason >= 0x80)
		err = XMQ_EREFUSED;
	if (err != 0) {
		say("cannot subscribe to %s: %s", filter, xmq_strerror(err));
		return err;
	}
	for (i = 0; i < b->npaths; i++) {
		snprintf(app, sizeof(app), "xmqbench-%s", b->paths[i].name);
		err = make_client(b, b->paths[i].url, app, 0, &pub_cb, &b->paths[i],
		                  &b->paths[i].c);
		if (err != 0)
			return err;
	}
	if (wait_until(b, all_connected, CONNECT_MS) != 0) {
		for (i = 0; i < b->npaths; i++)
			if (!b->paths[i].connected)
				say("%s: could not connect to %s", b->paths[i].name, b->paths[i].url);
		return -ETIMEDOUT;
	}
	/* The whole way is open once a message of each path came back. */
	for (i = 0; i < b->npaths; i++) {
		begin(b, &b->paths[i], M_PROBE, 1, 1);
		(void)send_one(b, 0, NULL);
		err = wait_until(b, probe_done, CONNECT_MS);
		b->mode = M_IDLE;
		if (err == 0)
			err = wait_until(b, queue_empty, CONNECT_MS);
		if (err != 0) {
			say("%s: no message came through from %s", b->paths[i].name,
			    b->paths[i].url);
			return err;
		}
	}
	return 0;
}

/* ---- run: the measurements -------------------------------------------------- */

static uint64_t test_count(const struct opts *o, enum test t)
{
	switch (t) {
	case T_TPUT0:
	case T_BURST0:
		return o->count0;
	case T_TPUT1:
		return o->count1;
	default:
		return o->lat_count;
	}
}

static uint64_t warmup_count(const struct opts *o, enum test t)
{
	uint64_t n = t == T_LAT0 || t == T_LAT1 ? o->warmup / 5 : o->warmup;

	return n < test_count(o, t) ? n : test_count(o, t);
}

int run(struct bench *b)
{
	struct measure warm;
	struct path *p;
	unsigned r, t, i;
	int err;

	err = setup(b);
	if (err != 0)
		return err;
	for (r = 0; r < b->o.rounds; r++) {
		for (t = 0; t < T_COUNT; t++) {
			if (!b->o.tests[t])
				continue;
			for (i = 0; i < b->npaths; i++) {
				/* Alternate the order, so that neither path
				 * always runs first. */
				p = &b->paths[r % 2 ? b->npaths - 1 - i : i];
				if (b->o.warmup > 0) {
					err = measure(b, p, (enum test)t,
					              warmup_count(&b->o, (enum test)t), &warm);
					if (err != 0)
						return err;
				}
				err = measure(b, p, (enum test)t, test_count(&b->o, (enum test)t),
				              &p->m[t][r]);
				if (err != 0) {
					say("%s %s: %s", test_names[t], p->name, xmq_strerror(err));
					return err;
				}
				print_measure(b, "result", (enum test)t, p, r, &p->m[t][r]);
			}
		}
	}
	summarise(b);
	return 0;
}
