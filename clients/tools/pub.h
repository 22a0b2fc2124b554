/* SPDX-License-Identifier: MIT */
/*
 * pub.h - what the two parts of xenmq-pub share: the program's state, the
 * helpers of xenmq-pub.c that -l uses, and -l itself (pub_lines.c).
 */
#ifndef XENMQ_TOOLS_PUB_H
#define XENMQ_TOOLS_PUB_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "xenmq.h"
#include "clients/tools/client_shared.h"

/* Largest message read from a file or stdin: MQTT's own limit. */
#define MESSAGE_MAX (256u * 1024 * 1024)
#define READ_CHUNK 65536
/* PUBACK "message rate too high": worth trying again later (pub_lines.c). */
#define RC_RATE_TOO_HIGH 0x96
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
	uv_timer_t repeat;         /* --repeat-delay, and the pause after a refusal */
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

/* xenmq-pub.c */

/* The message to publish, with data as its payload. */
xmq_message_t pub_message(const pub_t *p, const void *data, size_t len);

/* A message the library would not take: say why. */
void pub_report(pub_t *p, int err, size_t len);

/* Refused for its rate: wait before sending anything more, longer each time;
 * pub_lines_pump() runs when the pause is over. */
void pub_throttle(pub_t *p);

/* End the session and close every handle; status is the exit status unless
 * one was set before. Does nothing the second time. */
void pub_finish(pub_t *p, int status);

/* pub_lines.c */

/* Make stdin a libuv stream if it is a pipe or a tty. Returns 0 or a libuv error. */
int pub_lines_open(pub_t *p);

/* Read (more of) stdin, unless it is all in or there is no room. */
void pub_lines_resume(pub_t *p);

/* Publish what stdin gave while there is room: lines refused for their rate
 * first, one at a time, then new lines; ends the program after the last. */
void pub_lines_pump(pub_t *p);

/* The library answered the QoS 1 line of mid with reason. */
void pub_lines_answered(pub_t *p, int mid, int reason);

/* Close stdin's handle, if any (from pub_finish()). */
void pub_lines_close(pub_t *p);

/* Free the lines and the input not yet published, after the loop ended. */
void pub_lines_free(pub_t *p);

#endif
