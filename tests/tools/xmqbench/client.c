/* SPDX-License-Identifier: MIT */
/*
 * client.c - the libxenmq clients of xmqbench: making one and starting it,
 * the callbacks of a client that publishes (run's paths, and the one client
 * of send, recv, request and respond), waiting for them to connect or for
 * their queue to empty, and closing them all at the end.
 */
#define _GNU_SOURCE
#include <errno.h>

#include "tests/tools/xmqbench/xmqbench.h"

void on_pub_connect(xmq_client_t *c, int reason, bool session_present)
{
	struct path *p = xmq_client_data(c);

	if (reason == 0)
		p->connected = true;
	else
		say("%s: refused: %s", p->name, xmq_reason_string(reason));
}

void on_pub_disconnect(xmq_client_t *c, int reason)
{
	struct path *p = xmq_client_data(c);

	p->connected = false;
	say("%s: disconnected: %s", p->name, xmq_reason_string(reason));
}

void on_pub_publish(xmq_client_t *c, int mid, int reason)
{
	struct path *p = xmq_client_data(c);

	if (reason >= 0x80 && p->b->error == 0) {
		say("%s: a QoS 1 message was refused: %s", p->name, xmq_reason_string(reason));
		p->b->error = -EPROTO;
	}
}

static void on_closed(void *data)
{
	struct bench *b = data;

	b->closing--;
}

bool all_connected(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->npaths; i++)
		if (!b->paths[i].connected)
			return false;
	return true;
}

static bool all_closed(struct bench *b)
{
	return b->closing == 0;
}

bool queue_empty(struct bench *b)
{
	return xmq_client_queued(b->cur->c) == 0;
}

int make_client(struct bench *b, const char *url, const char *app, uint16_t receive_max,
                const xmq_client_cb_t *cb, void *data, xmq_client_t **out)
{
	xmq_client_opts_t o = { .url = url, .app = app, .receive_max = receive_max };
	int err = xmq_client_new(&b->loop, &o, cb, data, out);

	if (err == 0)
		err = xmq_client_start(*out);
	if (err != 0)
		say("%s: %s", url, xmq_strerror(err));
	return err;
}

void close_all(struct bench *b)
{
	unsigned i;

	if (b->sub != NULL) {
		b->closing++;
		xmq_client_close(b->sub, on_closed);
		b->sub = NULL;
	}
	for (i = 0; i < b->npaths; i++) {
		if (b->paths[i].c == NULL)
			continue;
		b->closing++;
		xmq_client_close(b->paths[i].c, on_closed);
		b->paths[i].c = NULL;
	}
	(void)wait_until(b, all_closed, 10000);
}
