/* SPDX-License-Identifier: MIT */
/*
 * chan.c - xmqbench chan: the channel emulator alone, for reference.
 *
 * How long the emulated channel itself takes to carry a message: size bytes
 * written to the DomU's tty, timed until they are all read from the Dom0
 * socket, one message at a time. This is the part of the xenmq path that a
 * real Xen replaces with its ring and QEMU; the rest is xenmq's own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "tests/tools/xmqbench/xmqbench.h"

static void on_dom0_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct bench *b = h->data;

	*buf = uv_buf_init((char *)b->rbuf, sizeof(b->rbuf));
}

static void on_dom0_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct bench *b = s->data;
	uint64_t now = now_ns();

	if (n < 0) {
		if (b->error == 0)
			b->error = n == UV_EOF ? -ECONNRESET : n;
		uv_read_stop(s);
		return;
	}
	b->dom0_bytes += (uint64_t)n;
	if (b->waiting && b->dom0_bytes >= (uint64_t)b->o.size * b->sent) {
		b->lat[b->nlat++] = (double)(now - b->t_sent) / 1000.0;
		b->received++;
		b->waiting = false;
	}
}

static void on_dom0_connect(uv_connect_t *req, int status)
{
	struct bench *b = req->data;

	free(req);
	if (status < 0) {
		b->error = status;
		return;
	}
	b->dom0_connected = true;
	if (uv_read_start((uv_stream_t *)&b->dom0, on_dom0_alloc, on_dom0_read) != 0)
		b->error = -EIO;
}

static bool dom0_ready(struct bench *b)
{
	return b->dom0_connected || b->error != 0;
}

static bool chan_arrived(struct bench *b)
{
	return !b->waiting || b->error != 0;
}

int chan(struct bench *b)
{
	struct measure m;
	struct path p = { .name = "chanemu" };
	uv_connect_t *req;
	uint64_t i;
	int fd;
	int err = 0;

	fd = tty_raw(b->o.pty);
	if (fd < 0) {
		say("%s: %s", b->o.pty, strerror(-fd));
		return fd;
	}
	req = malloc(sizeof(*req));
	if (req == NULL || uv_pipe_init(&b->loop, &b->dom0, 0) != 0) {
		free(req);
		close(fd);
		return -ENOMEM;
	}
	b->dom0.data = b;
	req->data = b;
	uv_pipe_connect(req, &b->dom0, b->o.socket, on_dom0_connect);
	if (wait_until(b, dom0_ready, CONNECT_MS) != 0 || b->error != 0) {
		say("%s: cannot connect: %s", b->o.socket, uv_strerror(b->error));
		err = b->error != 0 ? b->error : -ETIMEDOUT;
		goto out;
	}
	b->count = b->o.warmup / 5 + b->o.lat_count;
	for (i = 0; i < b->count && err == 0; i++) {
		if (i == b->o.warmup / 5)
			b->nlat = 0;
		b->t_sent = now_ns();
		b->waiting = true;
		b->sent++;
		if (write(fd, b->payload, b->o.size) != (ssize_t)b->o.size) {
			err = -errno;
			say("%s: write: %s", b->o.pty, strerror(errno));
			break;
		}
		if (wait_until(b, chan_arrived, LAT_LOST_NS / 1000000) != 0 || b->error != 0) {
			say("%s: message %" PRIu64 " did not come through", b->o.socket, i);
			err = b->error != 0 ? b->error : -ETIMEDOUT;
		}
	}
	if (err != 0)
		goto out;
	memset(&m, 0, sizeof(m));
	m.sent = m.received = b->nlat;
	lat_fill(&m, b->lat, b->nlat);
	print_measure(b, "summary", T_LAT0, &p, 1, &m);
out:
	close(fd);
	uv_close((uv_handle_t *)&b->dom0, NULL);
	return err;
}
