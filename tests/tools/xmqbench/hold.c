/* SPDX-License-Identifier: MIT */
/*
 * hold.c - xmqbench hold: sessions for the memory measurements. One client
 * per DOMAIN=URL, each subscribed to xen/DOMAIN/hold/# and sent messages of
 * its own through it; then "ready", and the sessions stay open until
 * SIGTERM or SIGINT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "tests/tools/xmqbench/xmqbench.h"

static void on_hold_connect(xmq_client_t *c, int reason, bool session_present)
{
	struct path *p = xmq_client_data(c);

	if (reason == 0)
		p->connected = true;
	else
		say("%s: refused: %s", p->name, xmq_reason_string(reason));
}

static void on_hold_subscribe(xmq_client_t *c, int mid, int count, const uint8_t *reasons)
{
	struct path *p = xmq_client_data(c);

	if (count > 0 && reasons[0] < 0x80)
		p->subscribed = true;
	else
		say("%s: subscription refused", p->name);
}

static void on_hold_message(xmq_client_t *c, const xmq_message_t *msg)
{
	struct path *p = xmq_client_data(c);

	p->received++;
}

static bool all_subscribed(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->npaths; i++)
		if (!b->paths[i].subscribed)
			return false;
	return true;
}

static bool all_received(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->npaths; i++)
		if (b->paths[i].received < 2 * (uint64_t)b->o.messages)
			return false;
	return true;
}

static bool stopped(struct bench *b)
{
	return b->stop;
}

int hold(struct bench *b)
{
	static const xmq_client_cb_t cb = {
		.connect = on_hold_connect,
		.message = on_hold_message,
		.subscribe = on_hold_subscribe,
	};
	char filter[XMQ_APP_MAX + 64];
	char topic[XMQ_APP_MAX + 64];
	const char *f = filter;
	uint64_t received = 0;
	unsigned i, k;
	int err;

	signals_start(b);
	for (i = 0; i < b->npaths; i++) {
		err = make_client(b, b->paths[i].url, "hold", 0, &cb, &b->paths[i], &b->paths[i].c);
		if (err != 0)
			return err;
	}
	if (wait_until(b, all_connected, CONNECT_MS) != 0) {
		say("not every client could connect");
		return -ETIMEDOUT;
	}
	for (i = 0; i < b->npaths; i++) {
		snprintf(filter, sizeof(filter), "xen/%s/hold/#", b->paths[i].name);
		err = xmq_client_subscribe(b->paths[i].c, 1, &f, 1, NULL);
		if (err != 0) {
			say("%s: subscribe: %s", b->paths[i].name, xmq_strerror(err));
			return err;
		}
	}
	if (wait_until(b, all_subscribed, CONNECT_MS) != 0) {
		say("not every client could subscribe");
		return -ETIMEDOUT;
	}
	for (i = 0; i < b->npaths; i++) {
		xmq_message_t m = { .topic = topic, .payload = b->payload, .payload_len = b->o.size };

		snprintf(topic, sizeof(topic), "xen/%s/hold/m", b->paths[i].name);
		for (k = 0; k < 2 * b->o.messages; k++) {
			m.qos = k % 2;
			err = xmq_client_publish(b->paths[i].c, &m, NULL);
			if (err != 0 && err != -ENOBUFS) {
				say("%s: publish: %s", b->paths[i].name, xmq_strerror(err));
				return err;
			}
		}
	}
	/* QoS 0 messages may be dropped by design (a congested channel): the
	 * harness is told how many came back, and goes on. */
	if (wait_until(b, all_received, CONNECT_MS) != 0)
		say("not every message came back within %d s", CONNECT_MS / 1000);
	for (i = 0; i < b->npaths; i++)
		received += b->paths[i].received;
	printf("ready clients=%u sent=%u received=%" PRIu64 "\n", b->npaths,
	       b->npaths * 2 * b->o.messages, received);
	fflush(stdout);
	(void)wait_until(b, stopped, (uint64_t)365 * 24 * 3600 * 1000);
	return 0;
}
