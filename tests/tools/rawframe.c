/* SPDX-License-Identifier: MIT */
/*
 * rawframe.c - a DomU that speaks the channel protocol by hand, for tests.
 *
 *   rawframe (--hvc PATH | --unix PATH) [--keepalive S] [--timeout S]
 *
 * It plays the initiator with bridge/link.c, then runs commands read from
 * stdin, one per line, and prints what the Dom0 side sends, one line per
 * frame. Unlike libxenmq it checks nothing before sending, so tests can make
 * it send what a hostile or broken domain would: forged properties, frames
 * over the size limit, QoS 2, frames on streams it never opened, garbage.
 *
 * Commands (STREAM defaults to 1):
 *   open APP [STREAM]                 OPEN, clean start, receive_max 16
 *   openwill APP TOPIC PAYLOAD        OPEN with a QoS 1 will
 *   pub QOS TOPIC PAYLOAD [NAME=VALUE | rt=TOPIC]...   PUBLISH (user props)
 *   again ID TOPIC PAYLOAD            QoS 1 PUBLISH sent again: packet id ID, dup
 *   big QOS TOPIC BYTES               PUBLISH with BYTES of payload
 *   sub QOS FILTER...                 SUBSCRIBE
 *   unsub FILTER...                   UNSUBSCRIBE
 *   puback ID                         PUBACK
 *   stream N                          use stream N for what follows
 *   close REASON                      CLOSE
 *   garbage BYTES                     random bytes, straight to the channel
 *   hex HEXBYTES                      these bytes, straight to the channel
 *   wait TYPE [COUNT]                 until COUNT frames of TYPE arrived in all
 *   sleep MS
 *   quit
 * Output: UP, DOWN, and "TYPE field..." per frame received (PUBLISH prints
 * qos, packet id, topic, payload, user properties as name=value, and "dup"
 * last when it is a copy).
 * Exits 0 after quit, 1 on a failed command or a timeout (--timeout, 20 s).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "bridge/chan.h"
#include "bridge/link.h"

#define MAX_TYPES 256

typedef struct tool {
	uv_loop_t *loop;
	xmq_chan_t chan;
	xmq_link_t link;
	uv_pipe_t in;
	uv_timer_t timer;
	uv_timer_t deadline;
	char line[70000];
	size_t line_len;
	char *pending;       /* commands read but not yet run */
	size_t pending_len;
	bool eof;
	bool waiting;        /* a wait or sleep is in progress */
	uint8_t wait_type;
	unsigned wait_count;
	unsigned seen[MAX_TYPES];
	uint16_t stream;
	uint16_t next_id;
	int status;
	bool done;
} tool_t;

static void run_commands(tool_t *t);

static void finish(tool_t *t, int status)
{
	if (t->done)
		return;
	t->done = true;
	t->status = status;
	uv_read_stop((uv_stream_t *)&t->in);
	uv_close((uv_handle_t *)&t->in, NULL);
	uv_close((uv_handle_t *)&t->timer, NULL);
	uv_close((uv_handle_t *)&t->deadline, NULL);
	xmq_link_close(&t->link, NULL);
	xmq_chan_close(&t->chan);
}

/* ---- output ----------------------------------------------------------------- */

static void print_frame(tool_t *t, const xmq_frame_t *f)
{
	xmq_publish_t p;
	xmq_open_ack_t oa;
	xmq_puback_t pa;
	xmq_suback_t sa;
	uint8_t reason;
	size_t i;

	switch (f->hdr.type) {
	case XMQ_T_OPEN_ACK:
		if (xmq_decode_open_ack(f, &oa) == 0)
			printf("OPEN_ACK %u 0x%02x %u %u\n", f->hdr.stream, oa.reason, oa.flags,
			       oa.receive_max);
		break;
	case XMQ_T_PUBACK:
		if (xmq_decode_puback(f, &pa) == 0)
			printf("PUBACK %u 0x%02x\n", pa.packet_id, pa.reason);
		break;
	case XMQ_T_SUBACK:
	case XMQ_T_UNSUBACK:
		if (xmq_decode_suback(f, &sa) == 0) {
			printf("%s %u", xmq_type_name(f->hdr.type), sa.packet_id);
			for (i = 0; i < sa.count; i++)
				printf(" 0x%02x", sa.reason[i]);
			printf("\n");
		}
		break;
	case XMQ_T_CLOSE:
		if (xmq_decode_close(f, &reason) == 0)
			printf("CLOSE %u 0x%02x\n", f->hdr.stream, reason);
		break;
	case XMQ_T_PUBLISH:
		if (xmq_decode_publish(f, &p) != 0) {
			printf("PUBLISH malformed\n");
			break;
		}
		printf("PUBLISH %u %u %s %.*s", p.msg.qos, p.packet_id, p.msg.topic,
		       (int)p.msg.payload_len, (const char *)p.msg.payload);
		for (i = 0; i < p.msg.props.user_count; i++)
			printf(" %s=%s", p.msg.props.user[i].name, p.msg.props.user[i].value);
		if (p.msg.props.response_topic != NULL)
			printf(" rt=%s", p.msg.props.response_topic);
		printf(p.msg.dup ? " dup\n" : "\n");
		break;
	default:
		printf("%s\n", xmq_type_name(f->hdr.type));
		break;
	}
	fflush(stdout);
}

/* ---- the link -------------------------------------------------------------- */

static int on_link_write(xmq_link_t *l, xmq_wire_t *w)
{
	tool_t *t = l->data;

	return xmq_chan_write(&t->chan, w);
}

static void on_link_up(xmq_link_t *l)
{
	tool_t *t = l->data;

	printf("UP\n");
	fflush(stdout);
	run_commands(t);
}

static void on_link_down(xmq_link_t *l, int err)
{
	printf("DOWN %s\n", err == 0 ? "stopped" : xmq_strerror(err));
	fflush(stdout);
}

static void on_link_frame(xmq_link_t *l, const xmq_frame_t *f)
{
	tool_t *t = l->data;

	t->seen[f->hdr.type]++;
	print_frame(t, f);
	if (t->waiting && t->wait_type != 0 && t->seen[t->wait_type] >= t->wait_count) {
		t->waiting = false;
		run_commands(t);
	}
}

static const xmq_link_ops_t link_ops = {
	.write = on_link_write,
	.up = on_link_up,
	.down = on_link_down,
	.frame = on_link_frame,
};

static void on_chan_open(xmq_chan_t *c)
{
	tool_t *t = c->data;

	xmq_link_start(&t->link);
}

static void on_chan_data(xmq_chan_t *c, const uint8_t *buf, size_t len)
{
	tool_t *t = c->data;

	xmq_link_feed(&t->link, buf, len);
}

static void on_chan_lost(xmq_chan_t *c, int err)
{
	tool_t *t = c->data;

	xmq_link_stop(&t->link);
}

static const xmq_chan_ops_t chan_ops = {
	.open = on_chan_open,
	.data = on_chan_data,
	.lost = on_chan_lost,
};

/* ---- commands --------------------------------------------------------------- */

static void send_encoded(tool_t *t, int err, xmq_wire_t *w, const char *what)
{
	if (err == 0)
		err = xmq_link_write(&t->link, w);
	if (err != 0)
		fprintf(stderr, "rawframe: %s: %s\n", what, xmq_strerror(err));
}

static uint8_t type_of(const char *name)
{
	unsigned i;

	for (i = 1; i < MAX_TYPES; i++)
		if (strcmp(xmq_type_name((uint8_t)i), name) == 0)
			return (uint8_t)i;
	return 0;
}

static void on_sleep_done(uv_timer_t *timer)
{
	tool_t *t = timer->data;

	t->waiting = false;
	run_commands(t);
}

static void cmd_pub(tool_t *t, char **argv, int argc, size_t big)
{
	xmq_user_prop_t user[XMQ_USER_PROPS_MAX + 8];
	xmq_message_t m = { 0 };
	char *payload = NULL;
	xmq_hdr_t h;
	xmq_wire_t w;
	int i;

	m.qos = (uint8_t)atoi(argv[1]);
	m.topic = argv[2];
	if (big > 0) {
		payload = malloc(big);
		memset(payload, 'x', big);
		m.payload = payload;
		m.payload_len = big;
	} else {
		m.payload = argv[3];
		m.payload_len = strlen(argv[3]);
	}
	for (i = 4; i < argc && m.props.user_count < XMQ_USER_PROPS_MAX + 8; i++) {
		char *eq = strchr(argv[i], '=');

		if (eq == NULL)
			continue;
		*eq = '\0';
		if (strcmp(argv[i], "rt") == 0) {
			m.props.response_topic = eq + 1;
			continue;
		}
		user[m.props.user_count].name = argv[i];
		user[m.props.user_count].value = eq + 1;
		m.props.user_count++;
	}
	m.props.user = user;
	xmq_link_hdr(&t->link, XMQ_T_PUBLISH, t->stream, &h);
	send_encoded(t, xmq_encode_publish(&h, m.qos ? ++t->next_id : 0, &m, &w), &w, "pub");
	free(payload);
}

static void cmd_again(tool_t *t, char **argv)
{
	xmq_message_t m = { .qos = 1, .dup = true, .topic = argv[2], .payload = argv[3],
	                    .payload_len = strlen(argv[3]) };
	xmq_hdr_t h;
	xmq_wire_t w;

	xmq_link_hdr(&t->link, XMQ_T_PUBLISH, t->stream, &h);
	send_encoded(t, xmq_encode_publish(&h, (uint16_t)atoi(argv[1]), &m, &w), &w, "again");
}

/* Run one command; returns false when it must wait. */
static bool run_one(tool_t *t, char *cmd)
{
	char *argv[XMQ_FILTERS_MAX + 8];
	int argc = 0;
	char *save = NULL;
	char *tok;
	xmq_hdr_t h;
	xmq_wire_t w;
	int i;

	for (tok = strtok_r(cmd, " \t", &save); tok != NULL && argc < (int)(sizeof(argv) / sizeof(*argv));
	     tok = strtok_r(NULL, " \t", &save))
		argv[argc++] = tok;
	if (argc == 0)
		return true;
	if (strcmp(argv[0], "open") == 0 || strcmp(argv[0], "openwill") == 0) {
		xmq_open_t o = { .app = argc > 1 ? argv[1] : "raw", .flags = XMQ_OPEN_CLEAN_START,
		                 .receive_max = 16 };

		if (strcmp(argv[0], "open") == 0 && argc > 2)
			t->stream = (uint16_t)atoi(argv[2]);
		if (strcmp(argv[0], "openwill") == 0 && argc > 3) {
			o.flags |= XMQ_OPEN_WILL | (1 << 3);
			o.has_will = true;
			o.will.topic = argv[2];
			o.will.payload = argv[3];
			o.will.payload_len = strlen(argv[3]);
			o.will.qos = 1;
		}
		xmq_link_hdr(&t->link, XMQ_T_OPEN, t->stream, &h);
		send_encoded(t, xmq_encode_open(&h, &o, &w), &w, "open");
	} else if (strcmp(argv[0], "pub") == 0 && argc >= 4) {
		cmd_pub(t, argv, argc, 0);
	} else if (strcmp(argv[0], "again") == 0 && argc >= 4) {
		cmd_again(t, argv);
	} else if (strcmp(argv[0], "big") == 0 && argc >= 4) {
		cmd_pub(t, argv, 3, (size_t)atol(argv[3]));
	} else if ((strcmp(argv[0], "sub") == 0 && argc >= 3) ||
	           (strcmp(argv[0], "unsub") == 0 && argc >= 2)) {
		bool sub = argv[0][0] == 's';
		xmq_subscribe_t b = { .packet_id = ++t->next_id };

		for (i = sub ? 2 : 1; i < argc && b.count < XMQ_FILTERS_MAX; i++) {
			b.filter[b.count] = argv[i];
			b.options[b.count++] = sub ? (uint8_t)atoi(argv[1]) : 0;
		}
		xmq_link_hdr(&t->link, sub ? XMQ_T_SUBSCRIBE : XMQ_T_UNSUBSCRIBE, t->stream, &h);
		send_encoded(t, sub ? xmq_encode_subscribe(&h, &b, &w)
		                    : xmq_encode_unsubscribe(&h, &b, &w), &w, argv[0]);
	} else if (strcmp(argv[0], "puback") == 0 && argc >= 2) {
		xmq_puback_t b = { .packet_id = (uint16_t)atoi(argv[1]) };

		xmq_link_hdr(&t->link, XMQ_T_PUBACK, t->stream, &h);
		send_encoded(t, xmq_encode_puback(&h, &b, &w), &w, "puback");
	} else if (strcmp(argv[0], "stream") == 0 && argc >= 2) {
		t->stream = (uint16_t)atoi(argv[1]);
	} else if (strcmp(argv[0], "close") == 0) {
		xmq_link_hdr(&t->link, XMQ_T_CLOSE, t->stream, &h);
		send_encoded(t, xmq_encode_close(&h, argc > 1 ? (uint8_t)strtol(argv[1], NULL, 0) : 0, &w),
		             &w, "close");
	} else if ((strcmp(argv[0], "garbage") == 0 || strcmp(argv[0], "hex") == 0) && argc >= 2) {
		bool hex = argv[0][0] == 'h';
		size_t n = hex ? strlen(argv[1]) / 2 : (size_t)atol(argv[1]);
		size_t k;

		w.data = malloc(n > 0 ? n : 1);
		w.len = n;
		for (k = 0; k < n; k++) {
			unsigned v = 0;

			if (hex)
				sscanf(argv[1] + 2 * k, "%2x", &v);
			else
				v = (unsigned)rand();
			w.data[k] = (uint8_t)v;
		}
		(void)xmq_chan_write(&t->chan, &w);
	} else if (strcmp(argv[0], "wait") == 0 && argc >= 2) {
		t->wait_type = type_of(argv[1]);
		t->wait_count = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
		if (t->wait_type == 0) {
			fprintf(stderr, "rawframe: unknown frame type %s\n", argv[1]);
			finish(t, 1);
			return false;
		}
		if (t->seen[t->wait_type] < t->wait_count) {
			t->waiting = true;
			return false;
		}
	} else if (strcmp(argv[0], "sleep") == 0 && argc >= 2) {
		t->waiting = true;
		t->wait_type = 0;
		uv_timer_start(&t->timer, on_sleep_done, (uint64_t)atol(argv[1]), 0);
		return false;
	} else if (strcmp(argv[0], "quit") == 0) {
		finish(t, 0);
		return false;
	} else {
		fprintf(stderr, "rawframe: bad command: %s\n", argv[0]);
		finish(t, 1);
		return false;
	}
	return true;
}

static void run_commands(tool_t *t)
{
	char *nl;

	while (!t->done && !t->waiting && xmq_link_is_up(&t->link) && t->pending_len > 0 &&
	       (nl = memchr(t->pending, '\n', t->pending_len)) != NULL) {
		size_t n = (size_t)(nl - t->pending) + 1;
		char cmd[sizeof(t->line)];

		memcpy(cmd, t->pending, n - 1);
		cmd[n - 1] = '\0';
		memmove(t->pending, t->pending + n, t->pending_len - n);
		t->pending_len -= n;
		if (!run_one(t, cmd))
			break;
	}
	if (!t->done && !t->waiting && t->eof && t->pending_len == 0)
		finish(t, 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	tool_t *t = h->data;

	buf->base = t->line;
	buf->len = sizeof(t->line);
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	tool_t *t = s->data;
	char *grown;

	if (n < 0) {
		t->eof = true;
		uv_read_stop(s);
		run_commands(t);
		return;
	}
	grown = realloc(t->pending, t->pending_len + (size_t)n);
	if (grown == NULL)
		return;
	t->pending = grown;
	memcpy(t->pending + t->pending_len, buf->base, (size_t)n);
	t->pending_len += (size_t)n;
	run_commands(t);
}

static void on_deadline(uv_timer_t *timer)
{
	tool_t *t = timer->data;

	fprintf(stderr, "rawframe: timed out (link %s, %s)\n",
	        xmq_link_is_up(&t->link) ? "up" : "down",
	        t->waiting ? "waiting for frames" : "running");
	finish(t, 1);
}

int main(int argc, char **argv)
{
	static tool_t t;
	xmq_link_opts_t lo = { .keepalive = 5 };
	xmq_chan_kind_t kind = XMQ_CHAN_TTY;
	const char *path = NULL;
	unsigned timeout = 20;
	int i;

	for (i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--hvc") == 0) {
			path = argv[i + 1];
		} else if (strcmp(argv[i], "--unix") == 0) {
			path = argv[i + 1];
			kind = XMQ_CHAN_UNIX;
		} else if (strcmp(argv[i], "--keepalive") == 0) {
			lo.keepalive = (uint16_t)atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--timeout") == 0) {
			timeout = (unsigned)atoi(argv[i + 1]);
		}
	}
	if (path == NULL) {
		fprintf(stderr, "usage: rawframe (--hvc PATH | --unix PATH) [--keepalive S] [--timeout S]\n");
		return 2;
	}
	srand((unsigned)getpid());
	t.loop = uv_default_loop();
	t.stream = 1;
	if (xmq_chan_init(t.loop, &t.chan, kind, path, &chan_ops, &t) != 0 ||
	    xmq_link_init(t.loop, &t.link, XMQ_LINK_INITIATOR, &lo, &link_ops, &t) != 0)
		return 1;
	uv_pipe_init(t.loop, &t.in, 0);
	uv_pipe_open(&t.in, 0);
	t.in.data = &t;
	uv_timer_init(t.loop, &t.timer);
	uv_timer_init(t.loop, &t.deadline);
	t.timer.data = t.deadline.data = &t;
	uv_timer_start(&t.deadline, on_deadline, (uint64_t)timeout * 1000, 0);
	uv_read_start((uv_stream_t *)&t.in, on_alloc, on_stdin);
	xmq_chan_start(&t.chan);
	uv_run(t.loop, UV_RUN_DEFAULT);
	free(t.pending);
	uv_loop_close(t.loop);
	return t.status;
}
