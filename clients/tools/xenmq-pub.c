/* SPDX-License-Identifier: MIT */
/*
 * xenmq-pub - publish a message, like mosquitto_pub, through libxenmq: to
 * the agent, a PV channel or Mosquitto, whichever the URL names.
 *
 * The message goes out once the session is open; with --repeat the next
 * one goes once the previous was delivered (acknowledged for QoS 1) and
 * --repeat-delay has passed. With -l each line of stdin is a message
 * (pub_lines.c). The program ends once every QoS 1 message was
 * acknowledged, with a non-zero status if any was refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "xenmq.h"
#include "clients/tools/pub.h"

#define NOTICE_MS 5000
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000

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

xmq_message_t pub_message(const pub_t *p, const void *data, size_t len)
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

void pub_report(pub_t *p, int err, size_t len)
{
	if (err == -EMSGSIZE)
		tool_err(&p->o, "a message of %zu bytes is too large for %s", len,
		         xmq_client_url(p->c));
	else
		tool_err(&p->o, "cannot publish to \"%s\": %s", p->o.topics[0], xmq_strerror(err));
}

/* ---- one message, perhaps repeated -------------------------------------- */

static void publish_next(pub_t *p);

static void on_repeat(uv_timer_t *t)
{
	pub_t *p = t->data;

	p->throttled = false;
	if (p->o.mode == MODE_LINES)
		pub_lines_pump(p);  /* the pause after a rate refusal is over */
	else
		publish_next(p);
}

void pub_throttle(pub_t *p)
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
		pub_finish(p, TOOL_EXIT_OK);
}

static void publish_next(pub_t *p)
{
	xmq_message_t m = pub_message(p, p->data, p->len);
	int mid = 0;
	int err;

	if (p->finishing || p->wait_ack || p->sent >= p->o.repeat ||
	    uv_is_active((uv_handle_t *)&p->repeat))
		return;
	err = xmq_client_publish(p->c, &m, &mid);
	if (err == -ENOTCONN)
		return;  /* QoS 0 waits for the session to open again */
	if (err != 0) {
		pub_report(p, err, p->len);
		pub_finish(p, TOOL_EXIT_ERROR);
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

/* ---- client callbacks ---------------------------------------------------- */

static void on_connect(xmq_client_t *c, int reason, bool session_present)
{
	pub_t *p = xmq_client_data(c);

	if (reason != 0) {
		tool_err(&p->o, "connection refused: %s", xmq_reason_string(reason));
		pub_finish(p, reason);
		return;
	}
	tool_debug(&p->o, "connected to %s (session %s)", xmq_client_url(c),
	           session_present ? "resumed" : "new");
	p->connected = true;
	p->ever_connected = true;
	uv_timer_stop(&p->notice);
	if (p->o.mode == MODE_LINES)
		pub_lines_pump(p);
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
		pub_lines_answered(p, mid, reason);
		pub_lines_pump(p);
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
	pub_finish(data, TOOL_EXIT_OK);
}

void pub_finish(pub_t *p, int status)
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
	pub_lines_close(p);
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
		rc = pub_lines_open(&p);
		if (rc != 0) {
			tool_err(&p.o, "cannot read stdin: %s", uv_strerror(rc));
			pub_finish(&p, TOOL_EXIT_ERROR);
		} else if (p.o.qos == 1) {
			/* QoS 1 lines queue up until the session opens. */
			pub_lines_resume(&p);
		}
	}
	rc = xmq_client_start(p.c);
	if (rc != 0) {
		tool_err(&p.o, "cannot start: %s", xmq_strerror(rc));
		pub_finish(&p, TOOL_EXIT_ERROR);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	rc = p.status;
out_loop:
	(void)uv_loop_close(&loop);
	pub_lines_free(&p);
	free(p.owned);
	tool_opts_dispose(&p.o);
	return rc;
}
