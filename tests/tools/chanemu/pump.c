/* SPDX-License-Identifier: MIT */
/*
 * pump.c - moving bytes: the bounded queue of each direction and its pace
 * (--rate-up, --rate-down), the garbage injected into it, the polled
 * descriptors, and the pump that makes every step it can and then decides
 * what to wait for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "tests/tools/chanemu/chanemu.h"

/* ---- one direction: a bounded queue and its pace -------------------------------------- */

size_t dir_room(const struct dir *d)
{
	return d->cap - d->len;
}

size_t dir_clear(struct dir *d)
{
	size_t n = d->len;

	d->len = 0;
	return n;
}

/*
 * The bytes d may move now: all of them without a rate; else up to 10 ms worth, as long as
 * d is not more than PACE_NS ahead of its rate (so timer delays do not lower the average).
 */
static size_t dir_allow(const struct dir *d)
{
	size_t slice = d->rate / 100 ? d->rate / 100 : 1;

	if (!d->rate)
		return d->len;
	if (d->next_ns > uv_hrtime() + PACE_NS)
		return 0;
	return d->len < slice ? d->len : slice;
}

/*
 * Writes d's bytes to fd as far as fd and d's pace allow, counting them in *count. Returns
 * 0, or the -errno of a failed write (SIGPIPE is ignored, fd is non-blocking).
 */
static int dir_flush(struct dir *d, int fd, uint64_t *count)
{
	uint64_t now;
	ssize_t w;
	size_t n;

	while ((n = dir_allow(d)) > 0) {
		w = write(fd, d->buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 && errno != EAGAIN ? -errno : 0;
		memmove(d->buf, d->buf + w, d->len - (size_t)w);
		d->len -= (size_t)w;
		*count += (uint64_t)w;
		now = uv_hrtime();
		if (d->rate)
			d->next_ns = (d->next_ns > now ? d->next_ns : now) +
				     (uint64_t)w * 1000000000ull / d->rate;
	}
	return 0;
}

/* Moves pending garbage into d as far as it has room: as if its writer had sent it. */
static size_t dir_add_garbage(struct chan *c, struct dir *d)
{
	size_t n = dir_room(d) < d->garbage ? dir_room(d) : (size_t)d->garbage;
	uint64_t x = 0;

	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0) {	/* xorshift64*: reproducible with --seed */
			c->rng ^= c->rng >> 12;
			c->rng ^= c->rng << 25;
			c->rng ^= c->rng >> 27;
			x = c->rng * 0x2545F4914F6CDD1DULL;
		}
		d->buf[d->len + i] = (unsigned char)(x >> (i % 8 * 8));
	}
	d->len += n;
	d->garbage -= n;
	return n;
}

/* ---- polled descriptors ---------------------------------------------------------------- */

struct watch *watch_new(struct chan *c, int fd, uv_poll_cb cb)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (w && uv_poll_init(c->loop, &w->poll, fd) != 0) {
		free(w);
		w = NULL;
	}
	if (!w)
		return NULL;
	w->poll.data = c;
	w->fd = fd;
	w->cb = cb;
	return w;
}

void watch_set(struct watch *w, int events)
{
	if (!w || w->events == events)
		return;
	w->events = events;
	if (events)
		uv_poll_start(&w->poll, events, w->cb);
	else
		uv_poll_stop(&w->poll);
}

static void watch_freed(uv_handle_t *h)
{
	free(h);
}

/* Stops watching and closes the fd at once (libuv stops polling it synchronously). */
void watch_close(struct watch **wp)
{
	struct watch *w = *wp;

	if (!w)
		return;
	*wp = NULL;
	uv_close((uv_handle_t *)&w->poll, watch_freed);
	close(w->fd);
}

/* ---- moving bytes ----------------------------------------------------------------------- */

static void on_wake(uv_timer_t *t)
{
	chan_pump(t->data);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	return a && a < b ? a : b;
}

/* Sets each fd's events from the state: nothing is polled that cannot make progress. */
static void chan_update(struct chan *c)
{
	uint64_t now = uv_hrtime(), wake_ns = 0;
	int ev = 0, up_go = !c->held && c->up.len > 0;

	/* Like QEMU's chardev, stop accepting while a client is served. */
	watch_set(c->listen, c->client ? 0 : UV_READABLE);
	if (c->client) {
		ev = UV_DISCONNECT | (dir_room(&c->down) > 0 ? UV_READABLE : 0);
		if (up_go && dir_allow(&c->up))
			ev |= UV_WRITABLE;
		else if (up_go)
			wake_ns = c->up.next_ns - PACE_NS;
		watch_set(c->client, ev);
	}
	ev = 0;
	if (now >= c->pty_pause_ns) {
		/* With nowhere to keep them, the guest's bytes stay in the tty and it blocks. */
		if (dir_room(&c->up) > 0 || c->held || !c->present ||
		    (!c->client && !c->o.keep_backlog))
			ev |= UV_READABLE;
		if (dir_allow(&c->down))
			ev |= UV_WRITABLE;
		else if (c->down.len > 0)
			wake_ns = earliest(wake_ns, c->down.next_ns - PACE_NS);
	} else {
		wake_ns = earliest(wake_ns, c->pty_pause_ns);
	}
	watch_set(c->master, ev);
	if (wake_ns)
		uv_timer_start(&c->wake_timer, on_wake,
			       wake_ns > now ? (wake_ns - now) / 1000000 + 1 : 1, 0);
	else
		uv_timer_stop(&c->wake_timer);
}

/* Makes every step that can be made now, then decides what to wait for. */
void chan_pump(struct chan *c)
{
	int err;

	if (c->stopping)
		return;
	if (c->up.garbage && !c->client && !c->o.keep_backlog) {
		c->n_up_dropped += c->up.garbage;
		c->up.garbage = 0;
	}
	if (dir_add_garbage(c, &c->up))
		c->held = 0;
	dir_add_garbage(c, &c->down);
	if (c->client && !c->held && (err = dir_flush(&c->up, c->client->fd, &c->n_up)))
		client_drop(c, strerror(-err));
	if (uv_hrtime() >= c->pty_pause_ns &&
	    (err = dir_flush(&c->down, c->master->fd, &c->n_down)))
		pty_failed(c, "write", strerror(-err));
	dir_add_garbage(c, &c->up);
	dir_add_garbage(c, &c->down);
	chan_update(c);
}
