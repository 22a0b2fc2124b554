/* SPDX-License-Identifier: MIT */
/*
 * chan.c - byte-stream endpoints that reconnect: Unix sockets, ttys and
 * accepted clients, all as libuv pipes.
 *
 * A tty is opened by hand and handed to uv_pipe_open() rather than to
 * uv_tty_init(): libuv's raw tty mode keeps output post-processing (ONLCR)
 * on, which would turn every 0x0a of a frame into 0x0d 0x0a. cfmakeraw()
 * turns it all off, as a serial link carrying binary frames needs.
 *
 * Life of the handle: io is initialised for each attempt and closed after
 * each failure; the retry timer is armed only once the old handle is closed,
 * because libuv forbids reusing a handle before its close callback.
 *
 * Writes: the wire images of one turn of the loop are gathered in a batch
 * and flushed by an idle handle. libuv runs idle handles at the start of
 * each turn, before it waits for I/O, and does not wait at all while one is
 * active, so a batch never waits for the next event: images written from
 * an I/O callback leave right after the callbacks of that wakeup, together.
 * The flush gives the descriptor what it takes now with uv_try_write() and
 * hands only the rest, if any, to uv_write(): a uv_write() that completes
 * at once still reports at the next turn, which costs one more wait for
 * events and one more epoll_ctl() per flush.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "bridge/chan.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

#define BATCH_MIN 4

/*
 * One write request: the images of one turn of the loop. It grows while
 * images are added, so that the memory it takes, and any failure to get
 * it, falls on xmq_chan_write(); it never moves once handed to libuv.
 */
struct xmq__chan_batch {
	uv_write_t req;
	unsigned n;
	unsigned cap;
	size_t skip;           /* bytes of bufs[0] already written */
	uv_buf_t bufs[];
};

static void attempt(xmq_chan_t *c);

static void on_retry(uv_timer_t *t)
{
	attempt(t->data);
}

static void maybe_closed(xmq_chan_t *c)
{
	if (c->closing && c->pending == 0 && c->ops->closed != NULL)
		c->ops->closed(c);
}

static void on_io_closed(uv_handle_t *h)
{
	xmq_chan_t *c = h->data;

	c->io_live = false;
	if (c->closing) {
		c->pending--;
		maybe_closed(c);
		return;
	}
	if (c->kind == XMQ_CHAN_ACCEPTED)
		return;
	(void)uv_timer_start(&c->retry, on_retry, c->backoff_ms, 0);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void batch_free(struct xmq__chan_batch *b)
{
	unsigned i;

	for (i = 0; i < b->n; i++)
		free(b->bufs[i].base - (i == 0 ? b->skip : 0));
	free(b);
}

/* Forget the first n bytes of the batch, which were written. */
static void batch_consume(struct xmq__chan_batch *b, size_t n)
{
	unsigned i = 0;

	while (i < b->n && n >= b->bufs[i].len) {
		n -= b->bufs[i].len;
		free(b->bufs[i].base - (i == 0 ? b->skip : 0));
		i++;
	}
	if (i > 0) {
		memmove(b->bufs, b->bufs + i, (b->n - i) * sizeof(b->bufs[0]));
		b->n -= i;
		b->skip = 0;
	}
	if (b->n > 0 && n > 0) {
		b->bufs[0].base += n;
		b->bufs[0].len -= n;
		b->skip += n;
	}
}

/* What was written for a connection that is gone is gone with it. */
static void batch_discard(xmq_chan_t *c)
{
	if (c->batch == NULL)
		return;
	batch_free(c->batch);
	c->batch = NULL;
	c->batch_bytes = 0;
	(void)uv_idle_stop(&c->flush);
}

/* Close the current handle; a retrying chan tries again after the backoff. */
static void drop_io(xmq_chan_t *c)
{
	batch_discard(c);
	c->open = false;
	if (c->io_live && !uv_is_closing(&c->io.handle))
		uv_close(&c->io.handle, on_io_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	xmq_chan_t *c = h->data;

	buf->base = (char *)c->rbuf;
	buf->len = sizeof(c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	xmq_chan_t *c = s->data;

	if (n > 0) {
		c->bytes_in += (uint64_t)n;
		c->ops->data(c, (const uint8_t *)buf->base, (size_t)n);
		return;
	}
	if (n == 0 || !c->open)
		return;
	drop_io(c);
	c->ops->lost(c, (int)n);
}

static void start_reading(xmq_chan_t *c)
{
	if (c->open && !c->paused)
		(void)uv_read_start(&c->io.stream, on_alloc, on_read);
}

static void opened(xmq_chan_t *c)
{
	c->open = true;
	c->backoff_ms = BACKOFF_MIN_MS;
	start_reading(c);
	if (c->ops->open != NULL)
		c->ops->open(c);
}

static void failed(xmq_chan_t *c, int err)
{
	if (c->ops->retry != NULL)
		c->ops->retry(c, err);
	drop_io(c);
}

static void on_connect(uv_connect_t *req, int status)
{
	xmq_chan_t *c = req->data;

	free(req);
	if (c->closing)
		return;
	if (status < 0) {
		failed(c, status);
		return;
	}
	opened(c);
}

/* Open a tty raw, with nothing left in its queues from before us. */
static int tty_open_raw(const char *path)
{
	struct termios t;
	int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	int err;

	if (fd < 0)
		return -errno;
	if (tcgetattr(fd, &t) != 0)
		goto fail;
	cfmakeraw(&t);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &t) != 0)
		goto fail;
	(void)tcflush(fd, TCIOFLUSH);
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

static void attempt(xmq_chan_t *c)
{
	uv_connect_t *req;
	int err;
	int fd;

	if (c->closing || c->io_live)
		return;
	err = uv_pipe_init(c->loop, &c->io.pipe, 0);
	if (err != 0) {
		if (c->ops->retry != NULL)
			c->ops->retry(c, err);
		(void)uv_timer_start(&c->retry, on_retry, BACKOFF_MAX_MS, 0);
		return;
	}
	c->io.handle.data = c;
	c->io_live = true;
	if (c->kind == XMQ_CHAN_UNIX) {
		req = malloc(sizeof(*req));
		if (req == NULL) {
			failed(c, UV_ENOMEM);
			return;
		}
		req->data = c;
		uv_pipe_connect(req, &c->io.pipe, c->path, on_connect);
		return;
	}
	fd = tty_open_raw(c->path);
	if (fd < 0) {
		failed(c, fd);
		return;
	}
	err = uv_pipe_open(&c->io.pipe, fd);
	if (err != 0) {
		close(fd);
		failed(c, err);
		return;
	}
	opened(c);
}

int xmq_chan_init(uv_loop_t *loop, xmq_chan_t *c, xmq_chan_kind_t kind,
                  const char *path, const xmq_chan_ops_t *ops, void *data)
{
	int err;

	if (path == NULL || kind == XMQ_CHAN_ACCEPTED)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	c->path = strdup(path);
	if (c->path == NULL)
		return -ENOMEM;
	err = uv_timer_init(loop, &c->retry);
	if (err != 0) {
		free(c->path);
		c->path = NULL;
		return err;
	}
	c->retry.data = c;
	/* Cannot fail on a live loop; closed with the timer. */
	(void)uv_idle_init(loop, &c->flush);
	c->flush.data = c;
	c->loop = loop;
	c->kind = kind;
	c->ops = ops;
	c->data = data;
	c->backoff_ms = BACKOFF_MIN_MS;
	return 0;
}

int xmq_chan_accept(uv_stream_t *server, xmq_chan_t *c, const xmq_chan_ops_t *ops,
                    void *data)
{
	int err;

	memset(c, 0, sizeof(*c));
	c->loop = server->loop;
	c->kind = XMQ_CHAN_ACCEPTED;
	c->ops = ops;
	c->data = data;
	err = uv_timer_init(c->loop, &c->retry);
	if (err != 0)
		return err;
	c->retry.data = c;
	(void)uv_idle_init(c->loop, &c->flush);
	c->flush.data = c;
	err = uv_pipe_init(c->loop, &c->io.pipe, 0);
	if (err == 0) {
		c->io.handle.data = c;
		c->io_live = true;
		err = uv_accept(server, &c->io.stream);
	}
	if (err != 0) {
		/* The handles exist: they close as usual, and ops->closed
		 * tells the owner when c may be freed. */
		xmq_chan_close(c);
		return err;
	}
	c->open = true;
	start_reading(c);
	return 0;
}

void xmq_chan_start(xmq_chan_t *c)
{
	if (c->kind == XMQ_CHAN_ACCEPTED || c->closing)
		return;
	attempt(c);
}

/* Tell the owner when everything written has left. */
static void maybe_drained(xmq_chan_t *c)
{
	if (c->open && !c->closing && c->ops->drain != NULL && c->batch == NULL &&
	    uv_stream_get_write_queue_size(&c->io.stream) == 0)
		c->ops->drain(c);
}

static void on_write(uv_write_t *req, int status)
{
	struct xmq__chan_batch *b = (struct xmq__chan_batch *)req;
	xmq_chan_t *c = req->handle->data;

	batch_free(b);
	/* A failed write shows up as a read error too; nothing to do here. */
	if (status == 0)
		maybe_drained(c);
}

/* Write the batch: at once what the descriptor takes, the rest through
 * libuv's queue, behind anything already in it. */
static int batch_flush(xmq_chan_t *c)
{
	struct xmq__chan_batch *b = c->batch;
	int n;

	if (b == NULL)
		return 0;
	c->batch = NULL;
	c->batch_bytes = 0;
	(void)uv_idle_stop(&c->flush);
	/* UV_EAGAIN also while libuv's queue is not empty. Any other error
	 * is left to uv_write(), which reports it as before. */
	n = uv_try_write(&c->io.stream, b->bufs, b->n);
	if (n > 0)
		batch_consume(b, (size_t)n);
	if (b->n == 0) {
		batch_free(b);
		return 0;
	}
	n = uv_write(&b->req, &c->io.stream, b->bufs, b->n, on_write);
	if (n != 0)
		batch_free(b);
	return n;
}

static void on_flush(uv_idle_t *h)
{
	xmq_chan_t *c = h->data;

	/* An error here also shows up as a read error. */
	if (batch_flush(c) == 0)
		maybe_drained(c);
}

/* Room for one more image in the batch, which is flushed first if full. */
static int batch_room(xmq_chan_t *c)
{
	struct xmq__chan_batch *b = c->batch;
	unsigned cap;
	int err;

	if (b != NULL && b->n == XMQ_CHAN_BATCH_MAX) {
		err = batch_flush(c);
		if (err != 0)
			return err;
		b = NULL;
	}
	if (b != NULL && b->n < b->cap)
		return 0;
	cap = b == NULL ? BATCH_MIN : 2 * b->cap;
	if (cap > XMQ_CHAN_BATCH_MAX)
		cap = XMQ_CHAN_BATCH_MAX;
	b = realloc(b, sizeof(*b) + cap * sizeof(b->bufs[0]));
	if (b == NULL)
		return -ENOMEM;  /* c->batch is still whole */
	if (c->batch == NULL) {
		b->n = 0;
		b->skip = 0;
		(void)uv_idle_start(&c->flush, on_flush);
	}
	b->cap = cap;
	c->batch = b;
	return 0;
}

int xmq_chan_write(xmq_chan_t *c, xmq_wire_t *wire)
{
	struct xmq__chan_batch *b;
	int err;

	err = !c->open || c->closing ? -ENOTCONN : batch_room(c);
	if (err != 0)
		goto out;
	b = c->batch;
	b->bufs[b->n++] = uv_buf_init((char *)wire->data, (unsigned)wire->len);
	wire->data = NULL;
	c->batch_bytes += wire->len;
	c->bytes_out += wire->len;
out:
	free(wire->data);
	wire->data = NULL;
	return err;
}

size_t xmq_chan_queued(const xmq_chan_t *c)
{
	return c->open ? uv_stream_get_write_queue_size(&c->io.stream) + c->batch_bytes : 0;
}

void xmq_chan_pause(xmq_chan_t *c, bool paused)
{
	if (c->paused == paused)
		return;
	c->paused = paused;
	if (!c->open)
		return;
	if (paused)
		(void)uv_read_stop(&c->io.stream);
	else
		start_reading(c);
}

void xmq_chan_reset(xmq_chan_t *c)
{
	if (c->kind == XMQ_CHAN_ACCEPTED || c->closing)
		return;
	c->backoff_ms = BACKOFF_MIN_MS;
	drop_io(c);
}

/* The retry timer's and the flush handle's close callback. */
static void on_handle_closed(uv_handle_t *h)
{
	xmq_chan_t *c = h->data;

	c->pending--;
	maybe_closed(c);
}

void xmq_chan_close(xmq_chan_t *c)
{
	bool was_closing = c->closing && c->pending > 0;

	if (was_closing || uv_is_closing((uv_handle_t *)&c->retry))
		return;
	/* What was written this turn is tried now rather than at the next
	 * turn, which will not come: a CLOSE frame queued just before
	 * closing still leaves. */
	if (c->open)
		(void)batch_flush(c);
	batch_discard(c);
	c->closing = true;
	c->open = false;
	free(c->path);
	c->path = NULL;
	c->pending = 2;
	uv_close((uv_handle_t *)&c->retry, on_handle_closed);
	uv_close((uv_handle_t *)&c->flush, on_handle_closed);
	if (c->io_live && !uv_is_closing(&c->io.handle)) {
		c->pending++;
		uv_close(&c->io.handle, on_io_closed);
	} else if (c->io_live) {
		/* A close is under way from drop_io(): its callback sees
		 * closing and counts itself. */
		c->pending++;
	}
}
