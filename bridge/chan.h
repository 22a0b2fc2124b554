/* SPDX-License-Identifier: MIT */
/*
 * chan.h - a byte-stream endpoint that comes back by itself: the Dom0 end
 * of a PV channel (a Unix socket that QEMU serves and that vanishes while
 * its domain reboots), the DomU end (an hvc tty, which must be raw), or a
 * client accepted on a listening socket (the agent's applications).
 *
 * A chan reads into the owner's ops->data callback and writes whole wire
 * images with a queue the owner can watch for backpressure. The images
 * written during one turn of the loop leave together, in one writev(), at
 * the start of the next turn, before the loop waits again: a relay that
 * forwards a burst of frames pays one system call for it, not one per
 * frame (on a tty, one wakeup of the kernel's flush worker too). When the
 * transport fails it tells the owner (ops->lost) and, unless it is an
 * accepted client, tries again with a backoff of 100 ms doubling to 2 s:
 * the socket of a rebooting domain is back about 9 s later.
 */
#ifndef XMQ_BRIDGE_CHAN_H
#define XMQ_BRIDGE_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "bridge/frame.h"

typedef enum xmq_chan_kind {
	XMQ_CHAN_UNIX,     /* connect to a Unix socket path */
	XMQ_CHAN_TTY,      /* open a tty path, raw, flushed */
	XMQ_CHAN_ACCEPTED  /* a client of a listening uv_pipe_t; no retry */
} xmq_chan_kind_t;

typedef struct xmq_chan xmq_chan_t;

typedef struct xmq_chan_ops {
	void (*open)(xmq_chan_t *c);   /* connected or opened */
	void (*data)(xmq_chan_t *c, const uint8_t *buf, size_t len);
	/* The transport failed or reached EOF after it was open (err: a libuv
	 * error, UV_EOF for EOF). A retrying chan tries again by itself. */
	void (*lost)(xmq_chan_t *c, int err);
	/* Optional: the write queue became empty. */
	void (*drain)(xmq_chan_t *c);
	/* Optional: a connect/open attempt failed (for the owner's log). */
	void (*retry)(xmq_chan_t *c, int err);
	/* After xmq_chan_close(): every handle is released. */
	void (*closed)(xmq_chan_t *c);
} xmq_chan_ops_t;

#define XMQ_CHAN_READ_BUF 8192
/* Wire images gathered into one write at most. */
#define XMQ_CHAN_BATCH_MAX 64

struct xmq__chan_batch;

struct xmq_chan {
	uv_loop_t *loop;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_pipe_t pipe;
	} io;
	uv_timer_t retry;
	uv_idle_t flush;       /* active while a batch waits */
	struct xmq__chan_batch *batch;  /* images written this turn, or NULL */
	size_t batch_bytes;
	xmq_chan_kind_t kind;
	const xmq_chan_ops_t *ops;
	void *data;            /* the owner's */
	char *path;            /* NULL for an accepted client */
	unsigned backoff_ms;
	bool io_live;          /* io holds an initialised handle */
	bool open;             /* connected and reading */
	bool paused;
	bool closing;
	unsigned pending;      /* handles still to close */
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint8_t rbuf[XMQ_CHAN_READ_BUF];
};

/*
 * xmq_chan_init - a stopped chan of kind UNIX or TTY for path (borrowed,
 * copied). c is the caller's memory; ops borrowed (must outlive c).
 * Returns 0, -EINVAL, -ENOMEM or a libuv error.
 */
int xmq_chan_init(uv_loop_t *loop, xmq_chan_t *c, xmq_chan_kind_t kind,
                  const char *path, const xmq_chan_ops_t *ops, void *data) XMQ_WUR;

/*
 * xmq_chan_accept - accept one client of server into c (kind ACCEPTED),
 * already open and reading; ops->open is not called. Returns 0 or a libuv
 * error; after an error c is closing already, and ops->closed runs once its
 * handles are released: only then may c be freed.
 */
int xmq_chan_accept(uv_stream_t *server, xmq_chan_t *c, const xmq_chan_ops_t *ops,
                    void *data) XMQ_WUR;

/* xmq_chan_start - connect or open now, and again after each failure. */
void xmq_chan_start(xmq_chan_t *c);

/*
 * xmq_chan_write - queue a wire image; steals w->data. It is written with
 * the others of this turn of the loop (see above), or at once when the
 * chan closes. Returns 0, -ENOTCONN or -ENOMEM (the image is discarded
 * then) or a libuv error.
 */
int xmq_chan_write(xmq_chan_t *c, xmq_wire_t *w);

/* Bytes queued and not yet written, this turn's batch included. */
size_t xmq_chan_queued(const xmq_chan_t *c);

/* Stop or resume reading (backpressure); remembered across reconnections. */
void xmq_chan_pause(xmq_chan_t *c, bool paused);

/* Drop the current connection and start again after the backoff. */
void xmq_chan_reset(xmq_chan_t *c);

/* Close everything; ops->closed runs once all is released. Idempotent. */
void xmq_chan_close(xmq_chan_t *c);

#endif /* XMQ_BRIDGE_CHAN_H */
