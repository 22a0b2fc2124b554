/* SPDX-License-Identifier: MIT */
/*
 * xenmq-pub - publish a message, like mosquitto_pub, through libxenmq: to
 * the agent, a PV channel or Mosquitto, whichever the URL names.
 *
 * The message goes out once the session is open; with --repeat the next
 * one goes once the previous was delivered (acknowledged for QoS 1) and
 * --repeat-delay has passed. With -l each line of stdin is a message, and
 * stdin is read only as fast as the library takes messages: while its QoS 1
 * queue is full (or, at QoS 0, while there is no session) reading stops, and
 * it resumes as acknowledgements free room, so that no line is ever dropped
 * however long the input. The program ends once every QoS 1 message was
 * acknowledged, with a non-zero status if any was refused.
 *
 * With -l, a QoS 1 line refused because it came too fast (0x96) is not
 * lost: it is sent again after a pause, and the lines after it then go out
 * one at a time, the window widening again as they are accepted. xenmqd
 * does not refuse QoS 1 for a domain's rate: it holds such messages and
 * passes them on as the rate allows, which slows us down through the
 * window. It answers 0x96 only when it holds max_queued_bytes already, a
 * bound on its memory rather than a rate, which frees up as the held
 * messages go; and another broker (over mqtt:) may refuse for its rate.
 * Those refusals are what the retry is for. Lines are kept until
 * acknowledged for that purpose, in the order they were published, and one
 * that was refused goes again before any new one; so the order can change
 * only among the lines in flight when the limit was hit (at most WINDOW_MAX).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "xenmq.h"
#include "clients/tools/client_shared.h"

/* Largest message read from a file or stdin: MQTT's own limit. */
#define MESSAGE_MAX (256u * 1024 * 1024)
#define READ_CHUNK 65536
#define NOTICE_MS 5000
/* PUBACK "message rate too high": worth trying again later (see above). */
#define RC_RATE_TOO_HIGH 0x96
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
/* QoS 1 lines in flight at most: few enough that a rate refusal reorders
 * only a few lines, enough to keep a channel busy. After a refusal the
 * window is 1 and grows by one per accepted line up to this again. */
#define WINDOW_MAX 64

/* A QoS 1 line handed to the library and not yet accepted. */
typedef struct line {
	struct line *next;
	int mid;
	bool retry;       /* refused for its rate: to be published again */
	size_t len;
	char data[];
} line_t;

typedef struct pub {
	tool_opts_t o;
	uv_loop_t *loop;
	xmq_client_t *c;
	uv_timer_t repeat;         /* --repeat-delay */
	tool_signals_t signals;    /* SIGINT, SIGTERM */
	uv_timer_t notice;         /* "still connecting" */
	const char *data;          /* the message of -m, -f, -s, -n */
	size_t len;
	char *owned;               /* what -f and -s read */
	unsigned long sent;
	bool connected;            /* the session is open now */
	bool ever_connected;
	bool wait_ack;             /* a QoS 1 message of --repeat not yet delivered */
	bool throttled;            /* refused for its rate: pausing (repeat timer) */
	unsigned retry_ms;
	bool finishing;
	int status;
	/* -l */
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_pipe_t pipe;
		uv_tty_t tty;
	} in;
	bool in_stream;            /* stdin is a pipe or tty, read as a stream */
	bool in_live;              /* in holds a handle */
	bool in_reading;
	uv_fs_t fs;                /* stdin is a file: read in chunks */
	bool fs_busy;
	bool eof;
	bool paused;               /* no room for another line now */
	char *buf;                 /* stdin not yet published */
	size_t buf_len;
	size_t buf_off;
	size_t buf_cap;
	line_t *lines;             /* QoS 1 lines not yet accepted, oldest first */
	line_t *lines_tail;
	unsigned inflight;         /* lines with the library, not yet answered */
	unsigned window;           /* most QoS 1 lines in flight */
	char chunk[READ_CHUNK];
} pub_t;

static void finish(pub_t *p, int status);
static void process_lines(pub_t *p);

static void usage(void)
{
	static const tool_opts_t o = { .kind = TOOL_PUB, .name = "xenmq-pub" };

	printf("xenmq-pub publishes a message through xenmq (agent, PV channel or Mosquitto).\n\n"
	       "Usage: xenmq-pub [-L URL] -t TOPIC {-m TEXT | -f FILE | -s | -l | -n}\n"
	       "                 [-q QOS] [-r] [--repeat N] [--repeat-delay SECONDS]\n"
	       "                 [-i NAME] [-c] [-x SECONDS] [-k SECONDS] [-D CMD PROP VALUE]...\n"
	       "                 [--will-topic TOPIC [--will-payload TEXT] [--will-qos QOS]"
	       " [--will-retain]]\n"
	       "                 [-d] [--quiet]\n\n"
	       " -t, --topic TOPIC  the topic to publish to\n"
	       " -m, --message TEXT the message\n"
	       " -f, --file FILE    the content of FILE as the message\n"
	       " -s, --stdin-file   all of stdin as the message\n"
	       " -l, --stdin-line   each line of stdin as a message\n"
	       " -n, --null-message an empty message\n"
	       " -r, --retain       the broker keeps the message for later subscribers\n"
	       " --repeat N         publish the message N times\n"
	       " --repeat-delay S   wait S seconds (e.g. 0.5) between them\n");
	tool_print_common_help(&o);
	printf("\nExit status: 0 when every message was delivered; the broker's reason code if\n"
	       "it refused the connection; 1 for other errors, e.g. a refused publish.\n");
}

static xmq_message_t message_of(const pub_t *p, const void *data, size_t len)
{
	xmq_message_t m;

	memset(&m, 0, sizeof(m));
	m.topic = p->o.topics[0];
	m.payload = len > 0 ? data : NULL;
	m.payload_len = len;
	m.qos = (uint8_t)p->o.qos;
	m.retain = p->o.retain;
	m.props = p->o.pub_props.p;
	return m;
}

/* A message the library would not take: say why. */
static void report(pub_t *p, int err, size_t len)
{
	if (err == -EMSGSIZE)
		tool_err(&p->o, "a message of %zu bytes is too large for %s", len,
		         xmq_client_url(p->c));
	else
		tool_err(&p->o, "cannot publish to \"%s\": %s", p->o.topics[0], xmq_strerror(err));
}

/* ---- one message, perhaps repeated -------------------------------------- */

static void publish_next(pub_t *p);

static void pump(pub_t *p);

static void on_repeat(uv_timer_t *t)
{
	pub_t *p = t->data;

	p->throttled = false;
	if (p->o.mode == MODE_LINES)
		pump(p);  /* the pause after a rate refusal is over */
	else
		publish_next(p);
}

/* Refused for its rate: wait before sending anything more, longer each time. */
static void throttle(pub_t *p)
{
	if (p->throttled)
		return;
	p->throttled = true;
	p->retry_ms = p->retry_ms == 0 ? RETRY_MIN_MS :
	              p->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : p->retry_ms * 2;
	tool_debug(&p->o, "over the broker's rate: pausing %u ms", p->retry_ms);
	uv_timer_start(&p->repeat, on_repeat, p->retry_ms, 0);
}

/* The last message went out (QoS 0) or was acknowledged (QoS 1). */
static void delivered(pub_t *p)
{
	if (p->sent < p->o.repeat) {
		/* A timer even without a delay, so that a long --repeat at QoS
		 * 0 does not recurse. */
		uv_timer_start(&p->repeat, on_repeat, (uint64_t)(p->o.repeat_delay * 1000), 0);
		return;
	}
	if (xmq_client_queued(p->c) == 0)
		finish(p, TOOL_EXIT_OK);
}

static void publish_next(pub_t *p)
{
	xmq_message_t m = message_of(p, p->data, p->len);
	int mid = 0;
	int err;

	if (p->finishing || p->wait_ack || p->sent >= p->o.repeat ||
	    uv_is_active((uv_handle_t *)&p->repeat))
		return;
	err = xmq_client_publish(p->c, &m, &mid);
	if (err == -ENOTCONN)
		return;  /* QoS 0 waits for the session to open again */
	if (err != 0) {
		report(p, err, p->len);
		finish(p, TOOL_EXIT_ERROR);
		return;
	}
	p->sent++;
	tool_debug(&p->o, "published %zu bytes to \"%s\" (QoS %d, mid %d)", p->len,
	           p->o.topics[0], p->o.qos, mid);
	if (p->o.qos == 0)
		delivered(p);
	else
		p->wait_ack = true;
}

/* ---- -l: lines of stdin ----------------------------------------------------- */

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
		finish(p, TOOL_EXIT_ERROR);
		return;
	}
	if (n == 0) {
		p->eof = true;
		input_stop(p);
	} else if (append(p, data, (size_t)n) != 0) {
		tool_err(&p->o, "out of memory reading stdin");
		finish(p, TOOL_EXIT_ERROR);
		return;
	}
	pump(p);
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
static void input_resume(pub_t *p)
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
static int input_open(pub_t *p)
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
		finish(p, p->status);
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
	xmq_message_t m = message_of(p, data, len);
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
		report(p, err, l->len);
		finish(p, TOOL_EXIT_ERROR);
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
			report(p, err, n);
			finish(p, TOOL_EXIT_ERROR);
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
		finish(p, TOOL_EXIT_ERROR);
		return;
	}
	if (!window_open(p))
		input_pause(p);
	else if (p->eof)
		lines_maybe_done(p);
	else if (p->connected || p->o.qos == 1)
		input_resume(p);
}

static void pump(pub_t *p)
{
	if (p->finishing)
		return;
	if (!resend_refused(p))
		process_lines(p);
}

/* The library answered a QoS 1 line. */
static void line_answered(pub_t *p, int mid, int reason)
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
		throttle(p);
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

/* ---- client callbacks ---------------------------------------------------- */

static void on_connect(xmq_client_t *c, int reason, bool session_present)
{
	pub_t *p = xmq_client_data(c);

	if (reason != 0) {
		tool_err(&p->o, "connection refused: %s", xmq_reason_string(reason));
		finish(p, reason);
		return;
	}
	tool_debug(&p->o, "connected to %s (session %s)", xmq_client_url(c),
	           session_present ? "resumed" : "new");
	p->connected = true;
	p->ever_connected = true;
	uv_timer_stop(&p->notice);
	if (p->o.mode == MODE_LINES)
		pump(p);
	else
		publish_next(p);
}

static void on_disconnect(xmq_client_t *c, int reason)
{
	pub_t *p = xmq_client_data(c);

	p->connected = false;
	tool_debug(&p->o, "disconnected: %s; reconnecting", xmq_reason_string(reason));
}

static void on_publish(xmq_client_t *c, int mid, int reason)
{
	pub_t *p = xmq_client_data(c);

	if (reason == RC_RATE_TOO_HIGH && p->o.mode == MODE_LINES) {
		tool_debug(&p->o, "mid %d refused: %s; will try again", mid,
		           xmq_reason_string(reason));
	} else if (reason >= 0x80) {
		tool_err(&p->o, "publish to \"%s\" refused: %s", p->o.topics[0],
		         xmq_reason_string(reason));
		p->status = TOOL_EXIT_ERROR;
	} else {
		tool_debug(&p->o, "mid %d acknowledged", mid);
	}
	if (p->o.mode == MODE_LINES) {
		line_answered(p, mid, reason);
		pump(p);
		return;
	}
	p->wait_ack = false;
	delivered(p);
}

static const xmq_client_cb_t client_cb = {
	.connect = on_connect,
	.disconnect = on_disconnect,
	.publish = on_publish,
};

static void on_notice(uv_timer_t *t)
{
	pub_t *p = t->data;

	if (!p->ever_connected)
		tool_err(&p->o, "still connecting to %s; is the %s running?",
		         xmq_client_url(p->c),
		         strncmp(xmq_client_url(p->c), "mqtt", 4) == 0 ? "broker" :
		         strncmp(xmq_client_url(p->c), "hvc:", 4) == 0 ? "broker in Dom0" : "agent");
}

/* ---- start and end ------------------------------------------------------- */

static void on_client_closed(void *data)
{
}

/* SIGINT or SIGTERM: end the session normally and exit. */
static void on_stop_signal(void *data)
{
	finish(data, TOOL_EXIT_OK);
}

static void finish(pub_t *p, int status)
{
	if (p->finishing)
		return;
	p->finishing = true;
	if (p->status == 0)
		p->status = status;
	xmq_client_close(p->c, on_client_closed);
	uv_close((uv_handle_t *)&p->repeat, NULL);
	uv_close((uv_handle_t *)&p->notice, NULL);
	tool_signals_close(&p->signals);
	if (p->in_live)
		uv_close(&p->in.handle, input_closed);
}

/* All of a file (or stdin for NULL) into *out, at most MESSAGE_MAX. */
static int read_all(const tool_opts_t *o, const char *path, char **out, size_t *len)
{
	FILE *fp = path != NULL ? fopen(path, "rb") : stdin;
	size_t cap = 0, n = 0, got;
	char *buf = NULL, *nbuf;
	int err = 0;

	if (fp == NULL) {
		tool_err(o, "cannot open \"%s\": %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (n == cap) {
			cap = cap == 0 ? READ_CHUNK : cap * 2;
			nbuf = n < MESSAGE_MAX ? realloc(buf, cap + 1) : NULL;
			if (nbuf == NULL) {
				tool_err(o, "%s is larger than %u bytes", path ? path : "stdin",
				         MESSAGE_MAX);
				err = -1;
				break;
			}
			buf = nbuf;
		}
		got = fread(buf + n, 1, cap - n, fp);
		n += got;
		if (got == 0) {
			if (ferror(fp)) {
				tool_err(o, "cannot read %s: %s", path ? path : "stdin",
				         strerror(errno));
				err = -1;
			}
			break;
		}
	}
	if (path != NULL)
		fclose(fp);
	if (err != 0) {
		free(buf);
		return err;
	}
	*out = buf;
	*len = n;
	return 0;
}

int main(int argc, char **argv)
{
	uv_loop_t loop;
	pub_t p;
	int rc;

	memset(&p, 0, sizeof(p));
	rc = tool_parse(&p.o, TOOL_PUB, argc, argv);
	if (rc != TOOL_PARSE_RUN) {
		if (rc == TOOL_PARSE_HELP)
			usage();
		else if (rc == TOOL_PARSE_VERSION)
			tool_print_version(&p.o);
		tool_opts_dispose(&p.o);
		return rc == TOOL_PARSE_BAD ? TOOL_EXIT_ERROR : TOOL_EXIT_OK;
	}
	switch (p.o.mode) {
	case MODE_MESSAGE:
		p.data = p.o.message;
		p.len = strlen(p.o.message);
		break;
	case MODE_FILE:
	case MODE_STDIN:
		if (read_all(&p.o, p.o.mode == MODE_FILE ? p.o.file : NULL, &p.owned, &p.len) != 0) {
			tool_opts_dispose(&p.o);
			return TOOL_EXIT_ERROR;
		}
		p.data = p.owned;
		break;
	default:
		break;
	}

	if (uv_loop_init(&loop) != 0) {
		tool_opts_dispose(&p.o);
		free(p.owned);
		return TOOL_EXIT_ERROR;
	}
	p.loop = &loop;
	p.window = WINDOW_MAX;
	if (tool_client_new(&loop, &p.o, &client_cb, &p, &p.c) != 0) {
		rc = TOOL_EXIT_ERROR;
		goto out_loop;
	}
	uv_timer_init(&loop, &p.repeat);
	p.repeat.data = &p;
	uv_timer_init(&loop, &p.notice);
	p.notice.data = &p;
	uv_timer_start(&p.notice, on_notice, NOTICE_MS, 0);
	if (tool_signals_start(&loop, &p.signals, on_stop_signal, &p) != 0)
		tool_err(&p.o, "cannot handle SIGINT and SIGTERM");
	if (p.o.mode == MODE_LINES) {
		rc = input_open(&p);
		if (rc != 0) {
			tool_err(&p.o, "cannot read stdin: %s", uv_strerror(rc));
			finish(&p, TOOL_EXIT_ERROR);
		} else if (p.o.qos == 1) {
			/* QoS 1 lines queue up until the session opens. */
			input_resume(&p);
		}
	}
	rc = xmq_client_start(p.c);
	if (rc != 0) {
		tool_err(&p.o, "cannot start: %s", xmq_strerror(rc));
		finish(&p, TOOL_EXIT_ERROR);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	rc = p.status;
out_loop:
	(void)uv_loop_close(&loop);
	while (p.lines != NULL) {
		line_t *l = p.lines;

		p.lines = l->next;
		free(l);
	}
	free(p.buf);
	free(p.owned);
	tool_opts_dispose(&p.o);
	return rc;
}
