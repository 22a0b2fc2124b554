/* SPDX-License-Identifier: MIT */
/*
 * client_shared.h - what xenmq-pub and xenmq-sub share: their options, in
 * one struct filled by one parser, the client they make from them, and how
 * they talk to the user.
 *
 * The options follow mosquitto_pub and mosquitto_sub wherever the meaning is
 * the same, so that a user of those tools (and a script) finds their way;
 * -L takes a libxenmq URL (agent:, hvc:, mqtt://, mqtt+unix:) instead of
 * mosquitto's.
 */
#ifndef XMQ_CLIENTS_TOOLS_CLIENT_SHARED_H
#define XMQ_CLIENTS_TOOLS_CLIENT_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "xenmq.h"

/* Exit statuses, as mosquitto's tools: a refused connection exits with
 * the reason code the broker gave. */
#define TOOL_EXIT_OK 0
#define TOOL_EXIT_ERROR 1
#define TOOL_EXIT_TIMEOUT 27  /* MOSQ_ERR_TIMEOUT, mosquitto_sub -W */

/* Session expiry for -c without -x. */
#define TOOL_RESUME_EXPIRY 3600

typedef enum tool_kind {
	TOOL_PUB,
	TOOL_SUB
} tool_kind_t;

typedef enum tool_mode {
	MODE_NONE,
	MODE_MESSAGE,  /* -m */
	MODE_FILE,     /* -f */
	MODE_STDIN,    /* -s */
	MODE_LINES,    /* -l */
	MODE_NULL      /* -n */
} tool_mode_t;

/* MQTT v5 properties given with -D; strings borrowed from argv. */
typedef struct tool_props {
	xmq_props_t p;
	xmq_user_prop_t user[XMQ_USER_PROPS_MAX];
} tool_props_t;

typedef struct tool_opts {
	tool_kind_t kind;
	const char *name;          /* "xenmq-pub", for messages */
	/* both */
	const char *url;           /* -L; NULL: $XENMQ_URL, then the default */
	const char *app;           /* -i */
	bool resume;               /* -c */
	bool have_expiry;          /* -x given */
	uint32_t session_expiry;   /* -x */
	uint16_t keepalive;        /* -k; 0: the library's */
	int qos;                   /* -q */
	bool debug;                /* -d */
	bool quiet;                /* --quiet */
	const char **topics;       /* -t (xenmq-pub: exactly one) */
	int ntopics;
	const char *will_topic;
	const char *will_payload;
	int will_qos;
	bool will_retain;
	tool_props_t will_props;   /* -D will ... */
	/* xenmq-pub */
	tool_props_t pub_props;    /* -D publish ... */
	tool_mode_t mode;
	const char *message;       /* -m */
	const char *file;          /* -f */
	bool retain;               /* -r */
	unsigned long repeat;      /* --repeat; at least 1 */
	double repeat_delay;       /* --repeat-delay, seconds */
	/* xenmq-sub */
	const char **unsub;        /* -U */
	int nunsub;
	bool verbose;              /* -v */
	bool no_eol;               /* -N */
	const char *format;        /* -F */
	unsigned long count;       /* -C; 0: no limit */
	unsigned long timeout;     /* -W seconds; 0: none */
	bool no_retained;          /* -R */
	bool retained_only;        /* --retained-only */
	bool exit_on_suback;       /* -E */
	bool retain_as_published;  /* --retain-as-published */
} tool_opts_t;

/* What tool_parse() found. */
enum {
	TOOL_PARSE_RUN = 0,
	TOOL_PARSE_HELP = 1,
	TOOL_PARSE_VERSION = 2,
	TOOL_PARSE_BAD = -1    /* a message went to stderr already */
};

/*
 * tool_parse - fill *o from argv (borrowed: o points into it). On a bad
 * option it prints what was wrong and how to fix it, and returns
 * TOOL_PARSE_BAD; *o is then to be dropped with tool_opts_dispose().
 */
int tool_parse(tool_opts_t *o, tool_kind_t kind, int argc, char **argv);

/* Idempotent. */
void tool_opts_dispose(tool_opts_t *o);

/*
 * tool_client_new - the client o describes, on loop, with cb and data.
 * *will is storage for the last will, which must outlive the call only.
 * Returns as xmq_client_new(); says why on stderr when it fails.
 */
int tool_client_new(uv_loop_t *loop, const tool_opts_t *o, const xmq_client_cb_t *cb,
                    void *data, xmq_client_t **out);

/* "xenmq-pub: ..." on stderr, unless --quiet. */
void tool_err(const tool_opts_t *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The same, only with -d. */
void tool_debug(const tool_opts_t *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * SIGINT and SIGTERM end a tool cleanly, as they end mosquitto_sub: cb(data)
 * runs (once per signal; the tool closes its session normally, so no will
 * is published). SIGPIPE is ignored: a write to an agent that just died
 * must fail with EPIPE and be handled, not kill the tool. sig is the
 * caller's memory; tool_signals_close() releases it.
 */
typedef struct tool_signals {
	uv_signal_t sig[2];
	void (*cb)(void *data);
	void *data;
} tool_signals_t;

int tool_signals_start(uv_loop_t *loop, tool_signals_t *ts, void (*cb)(void *data), void *data);
void tool_signals_close(tool_signals_t *ts);

/* --version. */
void tool_print_version(const tool_opts_t *o);

/* The options both tools take, for their --help. */
void tool_print_common_help(const tool_opts_t *o);

#endif /* XMQ_CLIENTS_TOOLS_CLIENT_SHARED_H */
