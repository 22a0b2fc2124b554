/* SPDX-License-Identifier: MIT */
/*
 * xmqbench.h - what the files of xmqbench share: its limits, its parsed
 * options in one struct, the state of the program and of the measurement
 * under way (struct bench), and the functions one file lends another.
 *
 * main.c says what the program does. Each mode has its file (run.c, hold.c,
 * chan.c, peer.c for send, recv, request and respond, raw.c for raw-*);
 * pump.c sends the stream of messages that run and send measure, client.c
 * makes and closes the libxenmq clients, common.c holds the clock, CPU times,
 * percentiles, signals and the raw tty.
 */
#ifndef XMQ_TESTS_TOOLS_XMQBENCH_H
#define XMQ_TESTS_TOOLS_XMQBENCH_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "xenmq.h"

#define MAGIC 0x42514d58u          /* "XMQB" */
#define HDR_LEN 20                 /* magic, run, seq (u32 each), send time (u64) */
#define SIZE_MAX_BYTES 4096        /* run, hold, chan */
#define PAYLOAD_MAX 65536          /* send, request, raw-ping: XMQ_FRAME_MAX */
#define PUBLISH_OVERHEAD 20        /* a PUBLISH frame with no property, but its topic */
#define PATHS_MAX 4                /* run: paths compared */
#define CLIENTS_MAX 4096           /* hold: one client per domain */
#define WATCH_MAX 8                /* processes whose CPU time is reported */
#define ROUNDS_MAX 15
#define COUNT_MAX 1000000u
#define TICK_MS 50
#define CONNECT_MS 20000           /* to connect, subscribe, probe */
#define STALL0_NS 1000000000ull    /* QoS 0: silence after which in-flight is lost */
#define STALL1_NS 15000000000ull   /* QoS 1: silence that means something broke */
#define LAT_LOST_NS 2000000000ull  /* latency: one message given up after this */
#define PROBE_NS 200000000ull      /* a probe is sent again after this */
#define SETTLE_MS 15000            /* for QoS 1 acknowledgements after a test */
#define GO_MAX 250                 /* recv, raw-recv: go messages sent at most */
#define GO_PERIOD_MS 1000          /* a go is sent again after this */
#define STALL_RECV_NS 30000000000ull  /* recv, raw-recv: silence that ends the wait */
#define ROUND_LOST_MS 5000         /* request, raw-ping: one round given up after this */
#define BYE_MS 10000               /* raw-recv on a socket: waiting for the last word */
#define DONE_MS 10000              /* send: waiting for recv's "done" */
#define RAW_CHUNK 65536

/* burst0: QoS 0 throughput with no window at all, everything sent at once. */
enum test { T_TPUT0, T_TPUT1, T_LAT0, T_LAT1, T_BURST0, T_COUNT };

extern const char *const test_names[T_COUNT];   /* run.c */

enum cmd {
	CMD_RUN, CMD_HOLD, CMD_CHAN, CMD_SEND, CMD_RECV, CMD_REQUEST, CMD_RESPOND,
	CMD_RAW_SEND, CMD_RAW_RECV, CMD_RAW_ECHO, CMD_RAW_PING, CMD_COUNT
};

extern const char *const cmd_names[CMD_COUNT];  /* main.c */

struct opts {
	enum cmd cmd;
	const char *sub_url;
	const char *pty, *socket;          /* chan */
	const char *topic;               /* prefix: messages go to PREFIX/<run> */
	char **path_name;                  /* [npaths], malloc'd */
	const char **path_url;             /* [npaths], into argv */
	unsigned npaths;
	const char *watch_name[WATCH_MAX];  /* "self" is this process */
	int watch_pid[WATCH_MAX];
	unsigned nwatch;
	bool tests[T_COUNT];
	unsigned count0, count1, lat_count, warmup, window, rounds, size, messages;
	/* send, recv, request, respond, raw-* */
	const char *url;
	const char *chan;                  /* a tty or a Unix socket */
	const char *reply;                 /* request: the response topic */
	bool size_max;                     /* send: the largest payload a frame holds */
	unsigned count, qos, bytes, timeout, receive_max, max_frame;
};

/* What one measurement found. */
struct measure {
	uint64_t sent, received, lost, dups;
	double secs, rate;                      /* throughput */
	double p50, p90, p99, max, mean;        /* latency, microseconds */
	double cpu[WATCH_MAX];                  /* CPU microseconds per message */
};

struct path {
	const char *name;
	const char *url;
	xmq_client_t *c;
	struct bench *b;
	bool connected;
	bool subscribed;                        /* hold mode */
	uint64_t received;                      /* hold mode */
	struct measure m[T_COUNT][ROUNDS_MAX];
};

enum mode { M_IDLE, M_PROBE, M_TPUT, M_LAT, M_HOLD, M_SEND, M_RECV, M_REQUEST, M_RESPOND };

struct bench {
	uv_loop_t loop;
	struct opts o;
	xmq_client_t *sub;
	bool sub_connected, sub_subscribed;
	int sub_reason;
	struct path *paths;
	unsigned npaths;
	unsigned closing;                       /* clients still closing */
	uv_check_t check;
	uv_timer_t tick;
	uv_signal_t sigs[2];
	bool sigs_on;                           /* sigs are initialised */
	bool stop;                              /* hold, respond: SIGTERM or SIGINT */

	/* The measurement under way. */
	enum mode mode;
	struct path *cur;
	uint32_t run;
	char topic[512];
	uint8_t qos;
	unsigned window;                        /* QoS 0; 0: none */
	uint64_t count, sent, received, presumed_lost, dups;
	uint64_t t_first, t_last_rx, t_progress, t_sent;
	bool waiting;                           /* latency: one is on its way */
	uint32_t wait_seq;
	double *lat;                            /* [count] */
	uint64_t nlat, lat_lost;
	uint8_t *seen;                          /* bitmap of seq numbers */
	int error;

	/* chan: the emulator alone. */
	uv_pipe_t dom0;                         /* the Dom0 socket */
	bool dom0_connected;
	uint64_t dom0_bytes;                    /* read so far */

	/* send, recv, request, respond. */
	uint64_t t_go[GO_MAX + 1];              /* recv: when go k was published */
	unsigned ngo;                           /* recv: go messages published */
	bool go;                                /* send: a go arrived (its k in run) */
	bool done;                              /* send: recv said it has everything */
	uint64_t bytes, first_len;              /* recv: payload bytes; of the first */
	uint64_t t_first_rx;                    /* recv: the first arrival */
	uint64_t replied, ignored;              /* respond */
	uint64_t cpu0[WATCH_MAX], t_cpu0;       /* watch_start() */

	uint8_t rbuf[RAW_CHUNK];
	uint8_t payload[PAYLOAD_MAX];
};

/* ---- common.c --------------------------------------------------------------- */

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t now_ns(void);
uint64_t cpu_ns(int pid);
int wait_until(struct bench *b, bool (*done)(struct bench *), uint64_t timeout_ms);
void put32(uint8_t *p, uint32_t v);
uint32_t get32(const uint8_t *p);
void lat_fill(struct measure *m, double *v, uint64_t n);
double median(double *v, unsigned n);
void watch_start(struct bench *b);
void watch_print(const struct bench *b);
void signals_start(struct bench *b);
void signals_stop(struct bench *b);
int tty_raw(const char *path);

/* ---- client.c --------------------------------------------------------------- */

int make_client(struct bench *b, const char *url, const char *app, uint16_t receive_max,
                const xmq_client_cb_t *cb, void *data, xmq_client_t **out);
void close_all(struct bench *b);
bool all_connected(struct bench *b);
bool queue_empty(struct bench *b);
void on_pub_connect(xmq_client_t *c, int reason, bool session_present);
void on_pub_disconnect(xmq_client_t *c, int reason);
void on_pub_publish(xmq_client_t *c, int mid, int reason);

/* ---- pump.c ----------------------------------------------------------------- */

int send_one(struct bench *b, uint32_t seq, uint64_t *t_sent);
bool seen_mark(struct bench *b, uint32_t seq);
void tput_fill(struct bench *b);
void lat_next(struct bench *b);
void on_check(uv_check_t *h);
void on_tick(uv_timer_t *t);

/* ---- the modes, called by main(): each returns 0 or -errno ------------------ */

int run(struct bench *b);                  /* run.c */
void print_measure(const struct bench *b, const char *what, enum test t,
                   const struct path *p, unsigned round, const struct measure *m);
int hold(struct bench *b);                 /* hold.c */
int chan(struct bench *b);                 /* chan.c */
int peer_send(struct bench *b);            /* peer.c */
int peer_recv(struct bench *b);
int peer_request(struct bench *b);
int peer_respond(struct bench *b);
int raw_send(struct bench *b);             /* raw.c */
int raw_recv(struct bench *b);
int raw_echo(struct bench *b);
int raw_ping(struct bench *b);

#endif
