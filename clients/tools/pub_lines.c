/* SPDX-License-Identifier: MIT */
/*
 * pub_lines.c - xenmq-pub -l: each line of stdin is a message.
 *
 * stdin is read only as fast as the library takes messages: while its QoS 1
 * queue is full (or, at QoS 0, while there is no session) reading stops, and
 * it resumes as acknowledgements free room, so that no line is ever dropped
 * however long the input. stdin is a libuv stream when it is a pipe or a
 * tty, and a file read in chunks otherwise.
 *
 * A QoS 1 line refused because it came too fast (0x96) is not lost: it is
 * sent again after a pause, and the lines after it then go out one at a
 * time, the window widening again as they are accepted. xenmqd does not
 * refuse QoS 1 for a domain's rate: it holds such messages and passes them
 * on as the rate allows, which slows us down through the window. It answers
 * 0x96 only when it holds max_queued_bytes already, a bound on its memory
 * rather than a rate, which frees up as the held messages go; and another
 * broker (over mqtt:) may refuse for its rate. Those refusals are what the
 * retry is for. Lines are kept until acknowledged for that purpose, in the
 * order they were published, and one that was refused goes again before
 * any new one; so the order can change only among the lines in flight when
 * the limit was hit (at most WINDOW_MAX).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clients/tools/pub.h"

static void input_closed(uv_handle_t *h)
{
}

static void input_stop(pub_t *p)
{
	if (p->in_live && p->in_reading)
		uv_read_stop(&p->in.stream);
	p->in_reading = false;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	pub_t *p = h->data;

	*b = uv_buf_init(p->chunk, sizeof(p->chunk));
}

static int append(pub_t *p, const char *data, size_t n)
{
	size_t cap;
	char *nbuf;

	if (p->buf_len + n > p->buf_cap) {
		cap = p->buf_cap != 0 ? p->buf_cap : READ_CHUNK;
		while (cap < p->buf_len + n)
			cap *= 2;
		nbuf = realloc(p->buf, cap);
		if (nbuf == NULL)
			return -ENOMEM;
		p->buf = nbuf;
		p->buf_cap = cap;
	}
	memcpy(p->buf + p->buf_len, data, n);
	p->buf_len += n;
	return 0;
}

/* What was read, n < 0 an error, n == 0 the end. */
static void got_input(pub_t *p, const char *data, ssize_t n)
{
	if (n < 0) {
		tool_err(&p->o, "cannot read stdin: %s", uv_strerror((int)n));
		pub_finish(p, TOOL_EXIT_ERROR);
		return;
	}
	if (n == 0) {
		p->eof = true;
		input_stop(p);
	} else if (append(p, data, (size_t)n) != 0) {
		tool_err(&p->o, "out of memory reading stdin");
		pub_finish(p, TOOL_EXIT_ERROR);
		return;
	}
	pub_lines_pump(p);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	pub_t *p = s->data;

	if (n == UV_EOF)
		got_input(p, NULL, 0);
	else if (n != 0)
		got_input(p, b->base, n);
}

static void input_read_file(pub_t *p);

static void on_fs_read(uv_fs_t *req)
{
	pub_t *p = req->data;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	p->fs_busy = false;
	if (p->finishing)
		return;
	got_input(p, p->chunk, n);
	if (!p->paused)
		input_read_file(p);
}

static void input_read_file(pub_t *p)
{
	uv_buf_t b = uv_buf_init(p->chunk, sizeof(p->chunk));
	int err;

	if (p->fs_busy || p->eof || p->finishing)
		return;
	p->fs.data = p;
	err = uv_fs_read(p->loop, &p->fs, 0, &b, 1, -1, on_fs_read);
	if (err != 0) {
		got_input(p, NULL, err);
		return;
	}
	p->fs_busy = true;
}

/* Read (more of) stdin, unless it is all in or there is no room. */
void pub_lines_resume(pub_t *p)
{
	p->paused = false;
	if (p->eof || p->finishing)
		return;
	if (!p->in_stream) {
		input_read_file(p);
		return;
	}
	if (!p->in_reading && uv_read_start(&p->in.stream, on_alloc, on_read) == 0)
		p->in_reading = true;
}

static void input_pause(pub_t *p)
{
	p->paused = true;
	input_stop(p);
}

/* stdin as a libuv stream if it is one, else (a file) read in chunks. */
int pub_lines_open(pub_t *p)
{
	uv_handle_type t = uv_guess_handle(0);
	int err;

	if (t == UV_TTY)
		err = uv_tty_init(p->loop, &p->in.tty, 0, 1);
	else if (t == UV_NAMED_PIPE)
		err = uv_pipe_init(p->loop, &p->in.pipe, 0);
	else
		return 0;
	if (err != 0)
		return err;
	p->in_live = true;
	p->in.handle.data = p;
	if (t == UV_NAMED_PIPE) {
		err = uv_pipe_open(&p->in.pipe, 0);
		if (err != 0)
			return err;
	}
	p->in_stream = true;
	return 0;
}

/* At the end of stdin, once every QoS 1 message is acknowledged. */
static void lines_maybe_done(pub_t *p)
{
	if (p->eof && p->buf_off == p->buf_len && p->lines == NULL &&
	    xmq_client_queued(p->c) == 0)
		pub_finish(p, p->status);
}

/* Whether another QoS 1 line may go now. */
static bool window_open(const pub_t *p)
{
	return !p->throttled && (p->o.qos == 0 || p->inflight < p->window);
}

/*
 * Hand one line to the library; QoS 1 lines are kept until accepted.
 * Returns 0, or xmq_client_publish()'s error (the line is not kept then).
 */
static int publish_line(pub_t *p, line_t *l, const char *data, size_t len)
{
	xmq_message_t m = pub_message(p, data, len);
	int mid = 0;
	int err;

	if (p->o.qos == 1 && l == NULL) {
		l = malloc(sizeof(*l) + len);
		if (l == NULL)
			return -ENOMEM;
		l->next = NULL;
		l->retry = false;
		l->len = len;
		memcpy(l->data, data, len);
		err = xmq_client_publish(p->c, &m, &mid);
		if (err != 0) {
			free(l);
			return err;
		}
		if (p->lines_tail != NULL)
			p->lines_tail->next = l;
		else
			p->lines = l;
		p->lines_tail = l;
	} else {
		err = xmq_client_publish(p->c, &m, &mid);
		if (err != 0)
			return err;
	}
	if (l != NULL) {
		l->mid = mid;
		l->retry = false;
		p->inflight++;
	}
	return 0;
}

/* Lines refused for their rate go again first, in order, one at a time. */
static bool resend_refused(pub_t *p)
{
	line_t *l;
	int err;

	for (l = p->lines; l != NULL && !l->retry; l = l->next)
		;
	if (l == NULL)
		return false;
	if (p->inflight > 0 || p->throttled)
		return true;
	err = publish_line(p, l, l->data, l->len);
	if (err != 0 && err != -ENOBUFS && err != -ENOTCONN) {
		pub_report(p, err, l->len);
		pub_finish(p, TOOL_EXIT_ERROR);
	}
	return true;
}

/* Publish every whole line (and at the end, the rest) while there is room. */
static void process_lines(pub_t *p)
{
	size_t avail, n;
	char *start, *nl;
	int err;

	while (!p->finishing && window_open(p)) {
		start = p->buf + p->buf_off;
		avail = p->buf_len - p->buf_off;
		nl = avail > 0 ? memchr(start, '\n', avail) : NULL;
		if (nl != NULL)
			n = (size_t)(nl - start);
		else if (p->eof && avail > 0)
			n = avail;
		else
			break;
		err = publish_line(p, NULL, start, n);
		if (err == -ENOBUFS || err == -ENOTCONN) {
			input_pause(p);
			return;
		}
		if (err != 0) {
			pub_report(p, err, n);
			pub_finish(p, TOOL_EXIT_ERROR);
			return;
		}
		p->sent++;
		p->buf_off += n + (nl != NULL);
	}
	if (p->finishing)
		return;
	if (p->buf_off > 0) {
		memmove(p->buf, p->buf + p->buf_off, p->buf_len - p->buf_off);
		p->buf_len -= p->buf_off;
		p->buf_off = 0;
	}
	if (p->buf_len > MESSAGE_MAX) {
		tool_err(&p->o, "a line of stdin is longer than %u bytes", MESSAGE_MAX);
		pub_finish(p, TOOL_EXIT_ERROR);
		return;
	}
	if (!window_open(p))
		input_pause(p);
	else if (p->eof)
		lines_maybe_done(p);
	else if (p->connected || p->o.qos == 1)
		pub_lines_resume(p);
}

void pub_lines_pump(pub_t *p)
{
	if (p->finishing)
		return;
	if (!resend_refused(p))
		process_lines(p);
}

/* The library answered a QoS 1 line. */
void pub_lines_answered(pub_t *p, int mid, int reason)
{
	line_t **pp, *l, *prev = NULL;

	for (pp = &p->lines; (l = *pp) != NULL; prev = l, pp = &l->next) {
		if (!l->retry && l->mid == mid)
			break;
	}
	if (l == NULL)
		return;
	p->inflight--;
	if (reason == RC_RATE_TOO_HIGH) {
		l->retry = true;
		p->window = 1;
		pub_throttle(p);
		return;
	}
	*pp = l->next;
	if (p->lines_tail == l)
		p->lines_tail = prev;
	free(l);
	if (reason < 0x80) {
		p->retry_ms = 0;
		if (!p->throttled && p->window < WINDOW_MAX)
			p->window++;
	}
}

void pub_lines_close(pub_t *p)
{
	if (p->in_live)
		uv_close(&p->in.handle, input_closed);
}

void pub_lines_free(pub_t *p)
{
	line_t *l;

	while ((l = p->lines) != NULL) {
		p->lines = l->next;
		free(l);
	}
	p->lines_tail = NULL;
	free(p->buf);
	p->buf = NULL;
}
