/* SPDX-License-Identifier: MIT */
/*
 * xmqbench - the measuring client of `make bench` (tests/bench/run.sh).
 *
 * One process on one libuv loop holds a subscriber on Mosquitto itself and
 * one publisher per path being compared, all plain libxenmq clients: the
 * same application code, once on an agent: URL (through xenmq-agent, the
 * channel and xenmqd) and once on an mqtt+unix: URL (straight to
 * Mosquitto). Each message carries its run number, its sequence number and
 * its send time (CLOCK_MONOTONIC); the subscriber, in the same process,
 * reads them back, so one clock times the whole path and nothing needs to
 * be synchronised between processes.
 *
 *   xmqbench run --sub URL --topic PREFIX --path NAME=URL... [options]
 *       throughput (a fixed count, as fast as flow control allows; and a
 *       QoS 0 burst with no window) and latency (one message at a time) at
 *       QoS 0 and 1, for each path in turn, back to back, for --rounds
 *       rounds; prints one "result" line per measurement and one "summary"
 *       line (medians) per test and path.
 *   xmqbench hold [--messages N] DOMAIN=URL...
 *       one client per URL, each subscribed to xen/DOMAIN/hold/# and sent
 *       N QoS 0 and N QoS 1 messages of its own through it; prints "ready"
 *       and holds the sessions open until SIGTERM or SIGINT, for the
 *       memory measurements.
 *   xmqbench chan --pty PATH --socket PATH
 *       the channel emulator alone, for reference: bytes written to the
 *       DomU's tty, timed until they come out of the Dom0 socket.
 *
 * Between two domains (tests/xen, on a real Xen) there is no common clock,
 * so each measurement has one process on each side and is timed by one of
 * them only:
 *
 *   xmqbench send --url URL --topic PREFIX [--size BYTES|max] [--count N]
 *   xmqbench recv --url URL --topic PREFIX [--count N]
 *       a stream of messages from send to recv on PREFIX/data. recv
 *       subscribes, then publishes "go" on PREFIX/go (again every second
 *       until the stream starts); send, subscribed there, answers the first
 *       go with its messages. recv counts what arrives and times it from the
 *       go that started the stream to the last arrival, on its own clock:
 *       from the first send, plus one trip of the go message. Then it says
 *       "done" on PREFIX/go, and send stops counting CPU time (below).
 *   xmqbench respond --url URL --topic FILTER
 *   xmqbench request --url URL --topic TOPIC --reply TOPIC [--count N]
 *       MQTT v5 requests, one at a time: request publishes on TOPIC with
 *       the response topic --reply and its correlation data; respond
 *       publishes each request's payload back to its response topic with
 *       the same correlation data. request times each round trip.
 *   xmqbench raw-send --chan PATH [--bytes N]
 *   xmqbench raw-recv --chan PATH [--bytes N]
 *   xmqbench raw-echo --chan PATH
 *   xmqbench raw-ping --chan PATH [--count N] [--size BYTES]
 *       the bare channel, no xenmq: PATH is the DomU's tty (made raw) or the
 *       channel's socket in Dom0. raw-recv and raw-send move N bytes the way
 *       recv and send move messages (a go, then the data, then an ack that
 *       lets each side close without losing anything); raw-ping times
 *       bytes echoed back one round at a time by raw-echo.
 *
 * With --watch NAME=PID, each measurement also says how much CPU time each
 * process of the path (this one too, as "self") spent per message, read from
 * /proc/PID/schedstat: where the time goes, not only how much there is. The
 * modes between two domains say instead what share of one CPU each used
 * while the measurement ran (cpu_NAME_pct): a share near 100 is a process,
 * or a domain, that the path waits for.
 *
 * Flow control: QoS 1 is paced by the library itself (its queue of
 * max_queued messages and the peer's receive window: xmq_client_publish()
 * says -ENOBUFS when full). QoS 0 has no acknowledgement, so the publisher
 * keeps at most --window messages between its send and their arrival at the
 * subscriber; a message that has not arrived after a second of silence is
 * counted as lost and frees its place in the window.
 *
 * Output goes to stdout as "key=value" words for the harness; progress and
 * errors go to stderr. Exits 0, 1 when a measurement could not be made (a
 * client that never connects, a QoS 1 stream that stalls), 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

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

static const char *const test_names[T_COUNT] = { "tput0", "tput1", "lat0", "lat1", "burst0" };

enum cmd {
	CMD_RUN, CMD_HOLD, CMD_CHAN, CMD_SEND, CMD_RECV, CMD_REQUEST, CMD_RESPOND,
	CMD_RAW_SEND, CMD_RAW_RECV, CMD_RAW_ECHO, CMD_RAW_PING, CMD_COUNT
};

static const char *const cmd_names[CMD_COUNT] = {
	"run", "hold", "chan", "send", "recv", "request", "respond",
	"raw-send", "raw-recv", "raw-echo", "raw-ping",
};

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

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("xmqbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * CPU time a process has used, in nanoseconds: the first figure of
 * /proc/PID/schedstat, far finer than the clock ticks of /proc/PID/stat.
 * Returns 0 when it cannot be read (the process is gone).
 */
static uint64_t cpu_ns(int pid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/schedstat");
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

/* ---- waiting on the loop -------------------------------------------------- */

/*
 * Run the loop until done(b) or timeout_ms. This program is a sequence of
 * steps, so it drives the loop from main() instead of chaining callbacks.
 * Returns 0 or -ETIMEDOUT.
 */
static int wait_until(struct bench *b, bool (*done)(struct bench *), uint64_t timeout_ms)
{
	uint64_t end = now_ns() + timeout_ms * 1000000ull;

	while (!done(b)) {
		if (now_ns() >= end)
			return -ETIMEDOUT;
		uv_run(&b->loop, UV_RUN_ONCE);
	}
	return 0;
}

/* ---- messages --------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static int send_one(struct bench *b, uint32_t seq, uint64_t *t_sent)
{
	xmq_message_t m = {
		.topic = b->topic,
		.payload = b->payload,
		.payload_len = b->o.size,
		.qos = b->qos,
	};
	uint64_t t = now_ns();

	put32(b->payload, MAGIC);
	put32(b->payload + 4, b->run);
	put32(b->payload + 8, seq);
	memcpy(b->payload + 12, &t, 8);
	if (t_sent != NULL)
		*t_sent = t;
	return xmq_client_publish(b->cur->c, &m, NULL);
}

static bool seen_mark(struct bench *b, uint32_t seq)
{
	uint8_t bit = (uint8_t)(1u << (seq % 8));
	bool was;

	if (b->seen == NULL || seq >= b->count)
		return false;
	was = b->seen[seq / 8] & bit;
	b->seen[seq / 8] |= bit;
	return was;
}

static void on_sub_message(xmq_client_t *c, const xmq_message_t *msg)
{
	struct bench *b = xmq_client_data(c);
	const uint8_t *p = msg->payload;
	uint64_t now = now_ns();
	uint64_t t;
	uint32_t seq;

	if (msg->payload_len < HDR_LEN || get32(p) != MAGIC || get32(p + 4) != b->run)
		return;
	seq = get32(p + 8);
	memcpy(&t, p + 12, 8);
	if (b->mode == M_PROBE) {
		b->received++;
		return;
	}
	if (seen_mark(b, seq)) {
		b->dups++;
		return;
	}
	b->received++;
	b->t_last_rx = now;
	b->t_progress = now;
	if (b->mode == M_LAT && b->waiting && seq == b->wait_seq) {
		b->lat[b->nlat++] = (double)(now - t) / 1000.0;
		b->waiting = false;
	}
}

/* ---- client callbacks ------------------------------------------------------- */

static void on_sub_connect(xmq_client_t *c, int reason, bool session_present)
{
	struct bench *b = xmq_client_data(c);

	if (reason == 0)
		b->sub_connected = true;
	else
		say("subscriber refused: %s", xmq_reason_string(reason));
}

static void on_sub_subscribe(xmq_client_t *c, int mid, int count, const uint8_t *reasons)
{
	struct bench *b = xmq_client_data(c);

	b->sub_reason = count > 0 ? reasons[0] : 0x80;
	b->sub_subscribed = true;
}

static void on_pub_connect(xmq_client_t *c, int reason, bool session_present)
{
	struct path *p = xmq_client_data(c);

	if (reason == 0)
		p->connected = true;
	else
		say("%s: refused: %s", p->name, xmq_reason_string(reason));
}

static void on_pub_disconnect(xmq_client_t *c, int reason)
{
	struct path *p = xmq_client_data(c);

	p->connected = false;
	say("%s: disconnected: %s", p->name, xmq_reason_string(reason));
}

static void on_pub_publish(xmq_client_t *c, int mid, int reason)
{
	struct path *p = xmq_client_data(c);

	if (reason >= 0x80 && p->b->error == 0) {
		say("%s: a QoS 1 message was refused: %s", p->name, xmq_reason_string(reason));
		p->b->error = -EPROTO;
	}
}

static void on_closed(void *data)
{
	struct bench *b = data;

	b->closing--;
}

/* ---- the pump: one step per turn of the loop -------------------------------------- */

static void tput_fill(struct bench *b)
{
	int err;

	while (b->sent < b->count && b->error == 0) {
		if (b->qos == 0 && b->window != 0 &&
		    b->sent - b->received - b->presumed_lost >= b->window)
			return;
		err = send_one(b, (uint32_t)b->sent, NULL);
		if (err == -ENOBUFS)
			return;  /* QoS 1: the library's queue is full until acks come */
		if (err != 0) {
			say("%s: publish: %s", b->cur->name, xmq_strerror(err));
			b->error = err;
			return;
		}
		if (b->sent == 0)
			b->t_first = now_ns();
		b->sent++;
	}
}

static void lat_next(struct bench *b)
{
	int err;

	if (b->waiting || b->sent >= b->count || b->error != 0)
		return;
	b->wait_seq = (uint32_t)b->sent;
	err = send_one(b, b->wait_seq, &b->t_sent);
	if (err == -ENOBUFS)
		return;
	if (err != 0) {
		say("%s: publish: %s", b->cur->name, xmq_strerror(err));
		b->error = err;
		return;
	}
	b->waiting = true;
	b->sent++;
}

/* After the loop handled its I/O: send what the flow allows now. */
static void on_check(uv_check_t *h)
{
	struct bench *b = h->data;

	if (b->mode == M_TPUT || b->mode == M_SEND)
		tput_fill(b);
	else if (b->mode == M_LAT)
		lat_next(b);
}

static void on_tick(uv_timer_t *t)
{
	struct bench *b = t->data;
	uint64_t now = now_ns();

	switch (b->mode) {
	case M_PROBE:
		if (now - b->t_sent >= PROBE_NS && b->cur->connected) {
			b->t_sent = now;
			(void)send_one(b, 0, NULL);
		}
		break;
	case M_TPUT:
		if (b->qos == 0 && now - b->t_progress >= STALL0_NS &&
		    b->sent > b->received + b->presumed_lost) {
			b->presumed_lost = b->sent - b->received;
			b->t_progress = now;
		} else if (b->qos == 1 && now - b->t_progress >= STALL1_NS) {
			say("%s: QoS 1 stalled: %" PRIu64 " sent, %" PRIu64 " arrived",
			    b->cur->name, b->sent, b->received);
			b->error = -ETIMEDOUT;
		}
		break;
	case M_LAT:
		if (b->waiting && now - b->t_sent >= LAT_LOST_NS) {
			b->waiting = false;
			b->lat_lost++;
		}
		break;
	default:
		break;
	}
}

/* ---- one measurement --------------------------------------------------------- */

static bool tput_done(struct bench *b)
{
	return b->error != 0 || b->received >= b->count ||
	       (b->sent >= b->count && b->received + b->presumed_lost >= b->count);
}

static bool lat_done(struct bench *b)
{
	return b->error != 0 || b->nlat + b->lat_lost >= b->count;
}

static bool probe_done(struct bench *b)
{
	return b->received > 0;
}

static bool queue_empty(struct bench *b)
{
	return xmq_client_queued(b->cur->c) == 0;
}

static void begin(struct bench *b, struct path *p, enum mode mode, uint8_t qos, uint64_t count)
{
	b->cur = p;
	b->run++;
	snprintf(b->topic, sizeof(b->topic), "%s/%" PRIu32, b->o.topic, b->run);
	b->qos = qos;
	b->count = count;
	b->sent = b->received = b->presumed_lost = b->dups = 0;
	b->nlat = b->lat_lost = 0;
	b->waiting = false;
	b->error = 0;
	b->t_first = b->t_last_rx = 0;
	b->t_progress = b->t_sent = now_ns();
	memset(b->seen, 0, (count + 7) / 8);
	b->mode = mode;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted values. */
static double pct(const double *v, uint64_t n, double q)
{
	uint64_t rank;

	if (n == 0)
		return 0;
	rank = (uint64_t)(q * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	return v[rank > n ? n - 1 : rank - 1];
}

/* The latency figures of m from n values, which it sorts. */
static void lat_fill(struct measure *m, double *v, uint64_t n)
{
	double sum = 0;
	uint64_t i;

	qsort(v, n, sizeof(*v), cmp_double);
	for (i = 0; i < n; i++)
		sum += v[i];
	m->p50 = pct(v, n, 0.50);
	m->p90 = pct(v, n, 0.90);
	m->p99 = pct(v, n, 0.99);
	m->max = n > 0 ? v[n - 1] : 0;
	m->mean = n > 0 ? sum / (double)n : 0;
}

/*
 * Measure test t on path p (count 0: the configured count) into *m. A
 * throughput test waits for the library to have every QoS 1 message
 * acknowledged before it returns, so that the next test starts clean.
 */
static int measure(struct bench *b, struct path *p, enum test t, uint64_t count,
                   struct measure *m)
{
	bool lat = t == T_LAT0 || t == T_LAT1;
	uint8_t qos = t == T_TPUT1 || t == T_LAT1;
	uint64_t cpu0[WATCH_MAX];
	uint64_t i;
	int err;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < b->o.nwatch; i++)
		cpu0[i] = cpu_ns(b->o.watch_pid[i]);
	begin(b, p, lat ? M_LAT : M_TPUT, qos, count);
	b->window = t == T_BURST0 ? 0 : b->o.window;
	if (lat) {
		lat_next(b);
		err = wait_until(b, lat_done, count * LAT_LOST_NS / 1000000 + 10000);
	} else {
		tput_fill(b);
		err = wait_until(b, tput_done, 600000);
	}
	b->mode = M_IDLE;
	if (err == 0)
		err = b->error;
	if (err == 0 && wait_until(b, queue_empty, SETTLE_MS) != 0) {
		say("%s: %zu QoS 1 messages still unacknowledged", p->name,
		    xmq_client_queued(p->c));
		err = -ETIMEDOUT;
	}
	if (err != 0)
		return err;
	for (i = 0; i < b->o.nwatch && b->received > 0; i++)
		m->cpu[i] = (double)(cpu_ns(b->o.watch_pid[i]) - cpu0[i]) / 1000.0 /
		            (double)b->received;
	m->sent = b->sent;
	m->received = b->received;
	m->dups = b->dups;
	if (lat) {
		m->lost = b->lat_lost;
		lat_fill(m, b->lat, b->nlat);
	} else {
		m->lost = b->sent - b->received;
		m->secs = (double)(b->t_last_rx - b->t_first) / 1e9;
		m->rate = m->secs > 0 ? (double)b->received / m->secs : 0;
	}
	return 0;
}

static void print_measure(const struct bench *b, const char *what, enum test t,
                          const struct path *p, unsigned round, const struct measure *m)
{
	unsigned i;

	if (t == T_TPUT0 || t == T_TPUT1 || t == T_BURST0)
		printf("%s test=%s path=%s round=%u sent=%" PRIu64 " received=%" PRIu64
		       " lost=%" PRIu64 " dups=%" PRIu64 " secs=%.4f rate=%.0f", what,
		       test_names[t], p->name, round, m->sent, m->received, m->lost, m->dups,
		       m->secs, m->rate);
	else
		printf("%s test=%s path=%s round=%u sent=%" PRIu64 " received=%" PRIu64
		       " lost=%" PRIu64 " p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f"
		       " mean_us=%.1f", what, test_names[t], p->name, round, m->sent,
		       m->received, m->lost, m->p50, m->p90, m->p99, m->max, m->mean);
	for (i = 0; i < b->o.nwatch; i++)
		printf(" cpu_%s_us=%.2f", b->o.watch_name[i], m->cpu[i]);
	putchar('\n');
	fflush(stdout);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The median of each figure over the rounds, each figure on its own. */
static void summarise(struct bench *b)
{
	double v[7][ROUNDS_MAX];
	struct measure s;
	unsigned t, i, r, w, n = b->o.rounds;
	uint64_t lost;

	for (t = 0; t < T_COUNT; t++) {
		if (!b->o.tests[t])
			continue;
		for (i = 0; i < b->npaths; i++) {
			const struct path *p = &b->paths[i];

			memset(&s, 0, sizeof(s));
			lost = 0;
			for (r = 0; r < n; r++) {
				const struct measure *m = &p->m[t][r];

				v[0][r] = m->rate;
				v[1][r] = m->secs;
				v[2][r] = m->p50;
				v[3][r] = m->p90;
				v[4][r] = m->p99;
				v[5][r] = m->max;
				v[6][r] = m->mean;
				lost += m->lost;
				s.sent += m->sent;
				s.received += m->received;
				s.dups += m->dups;
			}
			s.rate = median(v[0], n);
			s.secs = median(v[1], n);
			s.p50 = median(v[2], n);
			s.p90 = median(v[3], n);
			s.p99 = median(v[4], n);
			s.max = median(v[5], n);
			s.mean = median(v[6], n);
			s.lost = lost;
			/* sent, received, lost and dups are totals over the rounds. */
			for (w = 0; w < b->o.nwatch; w++) {
				for (r = 0; r < n; r++)
					v[0][r] = p->m[t][r].cpu[w];
				s.cpu[w] = median(v[0], n);
			}
			print_measure(b, "summary", (enum test)t, p, n, &s);
		}
	}
}

/* ---- setting up ------------------------------------------------------------ */

static bool sub_connected(struct bench *b)
{
	return b->sub_connected;
}

static bool sub_subscribed(struct bench *b)
{
	return b->sub_subscribed;
}

static bool all_connected(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->npaths; i++)
		if (!b->paths[i].connected)
			return false;
	return true;
}

static bool all_closed(struct bench *b)
{
	return b->closing == 0;
}

static int make_client(struct bench *b, const char *url, const char *app, uint16_t receive_max,
                       const xmq_client_cb_t *cb, void *data, xmq_client_t **out)
{
	xmq_client_opts_t o = { .url = url, .app = app, .receive_max = receive_max };
	int err = xmq_client_new(&b->loop, &o, cb, data, out);

	if (err == 0)
		err = xmq_client_start(*out);
	if (err != 0)
		say("%s: %s", url, xmq_strerror(err));
	return err;
}

static void close_all(struct bench *b)
{
	unsigned i;

	if (b->sub != NULL) {
		b->closing++;
		xmq_client_close(b->sub, on_closed);
		b->sub = NULL;
	}
	for (i = 0; i < b->npaths; i++) {
		if (b->paths[i].c == NULL)
			continue;
		b->closing++;
		xmq_client_close(b->paths[i].c, on_closed);
		b->paths[i].c = NULL;
	}
	(void)wait_until(b, all_closed, 10000);
}

static int setup(struct bench *b)
{
	static const xmq_client_cb_t sub_cb = {
		.connect = on_sub_connect,
		.message = on_sub_message,
		.subscribe = on_sub_subscribe,
	};
	static const xmq_client_cb_t pub_cb = {
		.connect = on_pub_connect,
		.disconnect = on_pub_disconnect,
		.publish = on_pub_publish,
	};
	char filter[520];
	const char *f = filter;
	char app[XMQ_APP_MAX + 1];
	unsigned i;
	int err;

	/* The subscriber's window is wide, so that it is never what limits. */
	err = make_client(b, b->o.sub_url, "xmqbench-sub", 1024, &sub_cb, b, &b->sub);
	if (err != 0)
		return err;
	if (wait_until(b, sub_connected, CONNECT_MS) != 0) {
		say("the subscriber could not connect to %s", b->o.sub_url);
		return -ETIMEDOUT;
	}
	snprintf(filter, sizeof(filter), "%s/#", b->o.topic);
	err = xmq_client_subscribe(b->sub, 1, &f, 1, NULL);
	if (err == 0 && wait_until(b, sub_subscribed, CONNECT_MS) != 0)
		err = -ETIMEDOUT;
	if (err == 0 && b->sub_reason >= 0x80)
		err = XMQ_EREFUSED;
	if (err != 0) {
		say("cannot subscribe to %s: %s", filter, xmq_strerror(err));
		return err;
	}
	for (i = 0; i < b->npaths; i++) {
		snprintf(app, sizeof(app), "xmqbench-%s", b->paths[i].name);
		err = make_client(b, b->paths[i].url, app, 0, &pub_cb, &b->paths[i],
		                  &b->paths[i].c);
		if (err != 0)
			return err;
	}
	if (wait_until(b, all_connected, CONNECT_MS) != 0) {
		for (i = 0; i < b->npaths; i++)
			if (!b->paths[i].connected)
				say("%s: could not connect to %s", b->paths[i].name, b->paths[i].url);
		return -ETIMEDOUT;
	}
	/* The whole way is open once a message of each path came back. */
	for (i = 0; i < b->npaths; i++) {
		begin(b, &b->paths[i], M_PROBE, 1, 1);
		(void)send_one(b, 0, NULL);
		err = wait_until(b, probe_done, CONNECT_MS);
		b->mode = M_IDLE;
		if (err == 0)
			err = wait_until(b, queue_empty, CONNECT_MS);
		if (err != 0) {
			say("%s: no message came through from %s", b->paths[i].name,
			    b->paths[i].url);
			return err;
		}
	}
	return 0;
}

/* ---- run: the measurements -------------------------------------------------- */

static uint64_t test_count(const struct opts *o, enum test t)
{
	switch (t) {
	case T_TPUT0:
	case T_BURST0:
		return o->count0;
	case T_TPUT1:
		return o->count1;
	default:
		return o->lat_count;
	}
}

static uint64_t warmup_count(const struct opts *o, enum test t)
{
	uint64_t n = t == T_LAT0 || t == T_LAT1 ? o->warmup / 5 : o->warmup;

	return n < test_count(o, t) ? n : test_count(o, t);
}

static int run(struct bench *b)
{
	struct measure warm;
	struct path *p;
	unsigned r, t, i;
	int err;

	err = setup(b);
	if (err != 0)
		return err;
	for (r = 0; r < b->o.rounds; r++) {
		for (t = 0; t < T_COUNT; t++) {
			if (!b->o.tests[t])
				continue;
			for (i = 0; i < b->npaths; i++) {
				/* Alternate the order, so that neither path
				 * always runs first. */
				p = &b->paths[r % 2 ? b->npaths - 1 - i : i];
				if (b->o.warmup > 0) {
					err = measure(b, p, (enum test)t,
					              warmup_count(&b->o, (enum test)t), &warm);
					if (err != 0)
						return err;
				}
				err = measure(b, p, (enum test)t, test_count(&b->o, (enum test)t),
				              &p->m[t][r]);
				if (err != 0) {
					say("%s %s: %s", test_names[t], p->name, xmq_strerror(err));
					return err;
				}
				print_measure(b, "result", (enum test)t, p, r, &p->m[t][r]);
			}
		}
	}
	summarise(b);
	return 0;
}

/* ---- hold: sessions for the memory measurements --------------------------------- */

static void on_hold_connect(xmq_client_t *c, int reason, bool session_present)
{
	struct path *p = xmq_client_data(c);

	if (reason == 0)
		p->connected = true;
	else
		say("%s: refused: %s", p->name, xmq_reason_string(reason));
}

static void on_hold_subscribe(xmq_client_t *c, int mid, int count, const uint8_t *reasons)
{
	struct path *p = xmq_client_data(c);

	if (count > 0 && reasons[0] < 0x80)
		p->subscribed = true;
	else
		say("%s: subscription refused", p->name);
}

static void on_hold_message(xmq_client_t *c, const xmq_message_t *msg)
{
	struct path *p = xmq_client_data(c);

	p->received++;
}

static bool all_subscribed(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->npaths; i++)
		if (!b->paths[i].subscribed)
			return false;
	return true;
}

static bool all_received(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->npaths; i++)
		if (b->paths[i].received < 2 * (uint64_t)b->o.messages)
			return false;
	return true;
}

static bool stopped(struct bench *b)
{
	return b->stop;
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct bench *b = s->data;

	b->stop = true;
}

/* SIGTERM and SIGINT set b->stop, so that a program can end cleanly. */
static void signals_start(struct bench *b)
{
	unsigned i;

	b->sigs_on = true;
	for (i = 0; i < 2; i++) {
		uv_signal_init(&b->loop, &b->sigs[i]);
		b->sigs[i].data = b;
		uv_signal_start(&b->sigs[i], on_signal, i == 0 ? SIGTERM : SIGINT);
	}
}

/* Idempotent: main() calls it whatever the mode did. */
static void signals_stop(struct bench *b)
{
	unsigned i;

	if (!b->sigs_on)
		return;
	b->sigs_on = false;
	for (i = 0; i < 2; i++)
		uv_close((uv_handle_t *)&b->sigs[i], NULL);
}

static int hold(struct bench *b)
{
	static const xmq_client_cb_t cb = {
		.connect = on_hold_connect,
		.message = on_hold_message,
		.subscribe = on_hold_subscribe,
	};
	char filter[XMQ_APP_MAX + 64];
	char topic[XMQ_APP_MAX + 64];
	const char *f = filter;
	uint64_t received = 0;
	unsigned i, k;
	int err;

	signals_start(b);
	for (i = 0; i < b->npaths; i++) {
		err = make_client(b, b->paths[i].url, "hold", 0, &cb, &b->paths[i], &b->paths[i].c);
		if (err != 0)
			return err;
	}
	if (wait_until(b, all_connected, CONNECT_MS) != 0) {
		say("not every client could connect");
		return -ETIMEDOUT;
	}
	for (i = 0; i < b->npaths; i++) {
		snprintf(filter, sizeof(filter), "xen/%s/hold/#", b->paths[i].name);
		err = xmq_client_subscribe(b->paths[i].c, 1, &f, 1, NULL);
		if (err != 0) {
			say("%s: subscribe: %s", b->paths[i].name, xmq_strerror(err));
			return err;
		}
	}
	if (wait_until(b, all_subscribed, CONNECT_MS) != 0) {
		say("not every client could subscribe");
		return -ETIMEDOUT;
	}
	for (i = 0; i < b->npaths; i++) {
		xmq_message_t m = { .topic = topic, .payload = b->payload, .payload_len = b->o.size };

		snprintf(topic, sizeof(topic), "xen/%s/hold/m", b->paths[i].name);
		for (k = 0; k < 2 * b->o.messages; k++) {
			m.qos = k % 2;
			err = xmq_client_publish(b->paths[i].c, &m, NULL);
			if (err != 0 && err != -ENOBUFS) {
				say("%s: publish: %s", b->paths[i].name, xmq_strerror(err));
				return err;
			}
		}
	}
	/* QoS 0 messages may be dropped by design (a congested channel): the
	 * harness is told how many came back, and goes on. */
	if (wait_until(b, all_received, CONNECT_MS) != 0)
		say("not every message came back within %d s", CONNECT_MS / 1000);
	for (i = 0; i < b->npaths; i++)
		received += b->paths[i].received;
	printf("ready clients=%u sent=%u received=%" PRIu64 "\n", b->npaths,
	       b->npaths * 2 * b->o.messages, received);
	fflush(stdout);
	(void)wait_until(b, stopped, (uint64_t)365 * 24 * 3600 * 1000);
	return 0;
}


/* ---- chan: the channel emulator alone, for reference ----------------------------- */

/*
 * How long the emulated channel itself takes to carry a message: size bytes
 * written to the DomU's tty, timed until they are all read from the Dom0
 * socket, one message at a time. This is the part of the xenmq path that a
 * real Xen replaces with its ring and QEMU; the rest is xenmq's own.
 */

static void on_dom0_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct bench *b = h->data;

	*buf = uv_buf_init((char *)b->rbuf, sizeof(b->rbuf));
}

static void on_dom0_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct bench *b = s->data;
	uint64_t now = now_ns();

	if (n < 0) {
		if (b->error == 0)
			b->error = n == UV_EOF ? -ECONNRESET : n;
		uv_read_stop(s);
		return;
	}
	b->dom0_bytes += (uint64_t)n;
	if (b->waiting && b->dom0_bytes >= (uint64_t)b->o.size * b->sent) {
		b->lat[b->nlat++] = (double)(now - b->t_sent) / 1000.0;
		b->received++;
		b->waiting = false;
	}
}

static void on_dom0_connect(uv_connect_t *req, int status)
{
	struct bench *b = req->data;

	free(req);
	if (status < 0) {
		b->error = status;
		return;
	}
	b->dom0_connected = true;
	if (uv_read_start((uv_stream_t *)&b->dom0, on_dom0_alloc, on_dom0_read) != 0)
		b->error = -EIO;
}

static bool dom0_ready(struct bench *b)
{
	return b->dom0_connected || b->error != 0;
}

static bool chan_arrived(struct bench *b)
{
	return !b->waiting || b->error != 0;
}

static int tty_raw(const char *path)
{
	struct termios t;
	int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	int err;

	if (fd < 0)
		return -errno;
	if (tcgetattr(fd, &t) != 0)
		goto fail;
	cfmakeraw(&t);
	if (tcsetattr(fd, TCSANOW, &t) != 0)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

static int chan(struct bench *b)
{
	struct measure m;
	struct path p = { .name = "chanemu" };
	uv_connect_t *req;
	uint64_t i;
	int fd;
	int err = 0;

	fd = tty_raw(b->o.pty);
	if (fd < 0) {
		say("%s: %s", b->o.pty, strerror(-fd));
		return fd;
	}
	req = malloc(sizeof(*req));
	if (req == NULL || uv_pipe_init(&b->loop, &b->dom0, 0) != 0) {
		free(req);
		close(fd);
		return -ENOMEM;
	}
	b->dom0.data = b;
	req->data = b;
	uv_pipe_connect(req, &b->dom0, b->o.socket, on_dom0_connect);
	if (wait_until(b, dom0_ready, CONNECT_MS) != 0 || b->error != 0) {
		say("%s: cannot connect: %s", b->o.socket, uv_strerror(b->error));
		err = b->error != 0 ? b->error : -ETIMEDOUT;
		goto out;
	}
	b->count = b->o.warmup / 5 + b->o.lat_count;
	for (i = 0; i < b->count && err == 0; i++) {
		if (i == b->o.warmup / 5)
			b->nlat = 0;
		b->t_sent = now_ns();
		b->waiting = true;
		b->sent++;
		if (write(fd, b->payload, b->o.size) != (ssize_t)b->o.size) {
			err = -errno;
			say("%s: write: %s", b->o.pty, strerror(errno));
			break;
		}
		if (wait_until(b, chan_arrived, LAT_LOST_NS / 1000000) != 0 || b->error != 0) {
			say("%s: message %" PRIu64 " did not come through", b->o.socket, i);
			err = b->error != 0 ? b->error : -ETIMEDOUT;
		}
	}
	if (err != 0)
		goto out;
	memset(&m, 0, sizeof(m));
	m.sent = m.received = b->nlat;
	lat_fill(&m, b->lat, b->nlat);
	print_measure(b, "summary", T_LAT0, &p, 1, &m);
out:
	close(fd);
	uv_close((uv_handle_t *)&b->dom0, NULL);
	return err;
}

/* ---- CPU shares of the --watch processes, for the modes below -------------------- */

/* From now on: the CPU time each watched process uses. */
static void watch_start(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->o.nwatch; i++)
		b->cpu0[i] = cpu_ns(b->o.watch_pid[i]);
	b->t_cpu0 = now_ns();
}

/* " cpu_NAME_pct=P" for each watched process: the share of one CPU it used
 * since watch_start(). A process that cannot be read (gone) is left out. */
static void watch_print(const struct bench *b)
{
	double wall = (double)(now_ns() - b->t_cpu0);
	uint64_t t;
	unsigned i;

	for (i = 0; i < b->o.nwatch && wall > 0; i++) {
		t = cpu_ns(b->o.watch_pid[i]);
		if (t >= b->cpu0[i] && b->cpu0[i] != 0)
			printf(" cpu_%s_pct=%.0f", b->o.watch_name[i],
			       (double)(t - b->cpu0[i]) / wall * 100);
	}
}

/* ---- send, recv, request, respond: one process on each side ------------------------ */

/*
 * These run one client, paths[0], on --url: a program in a DomU on its agent,
 * or one in Dom0 on Mosquitto itself. The two sides of a measurement have no
 * clock in common, so every figure is timed by one side alone.
 */

static void on_peer_subscribe(xmq_client_t *c, int mid, int count, const uint8_t *reasons)
{
	struct path *p = xmq_client_data(c);

	p->b->sub_reason = count > 0 ? reasons[0] : 0x80;
	p->subscribed = true;
}

/* send: the first go names the run; later ones are repeats. A "done" (seq
 * 1) of that run ends the time over which CPU shares are counted. */
static void peer_send_message(struct bench *b, const xmq_message_t *msg)
{
	const uint8_t *p = msg->payload;

	if (msg->payload_len < HDR_LEN || get32(p) != MAGIC)
		return;
	if (!b->go && get32(p + 8) == 0) {
		b->run = get32(p + 4);
		b->go = true;
	} else if (b->go && get32(p + 8) == 1 && get32(p + 4) == b->run) {
		b->done = true;
	}
}

/* recv: the stream answers one of our go messages; count it once per seq. */
static void peer_recv_message(struct bench *b, const xmq_message_t *msg)
{
	const uint8_t *p = msg->payload;
	uint64_t now = now_ns();
	uint32_t run, seq;

	if (msg->payload_len < HDR_LEN || get32(p) != MAGIC)
		return;
	run = get32(p + 4);
	seq = get32(p + 8);
	if (b->run == 0) {
		if (run == 0 || run > b->ngo)
			return;
		b->run = run;
		b->t_first_rx = now;
		b->first_len = msg->payload_len;
		watch_start(b);
	}
	if (run != b->run || seq >= b->count)
		return;
	if (seen_mark(b, seq)) {
		b->dups++;
		return;
	}
	b->received++;
	b->bytes += msg->payload_len;
	b->t_last_rx = now;
	b->t_progress = now;
}

/* request: the reply to the round under way, told by its correlation data. */
static void peer_request_message(struct bench *b, const xmq_message_t *msg)
{
	const uint8_t *cd = msg->props.correlation_data;

	if (!b->waiting || cd == NULL || msg->props.correlation_len != 8 ||
	    get32(cd) != b->run || get32(cd + 4) != b->wait_seq)
		return;
	b->t_last_rx = now_ns();
	b->waiting = false;
}

/* respond: the request's payload back to its response topic, same correlation. */
static void peer_respond_message(struct bench *b, const xmq_message_t *msg)
{
	xmq_message_t r = {
		.topic = msg->props.response_topic,
		.payload = msg->payload,
		.payload_len = msg->payload_len,
		.qos = (uint8_t)b->o.qos,
		.props = {
			.correlation_data = msg->props.correlation_data,
			.correlation_len = msg->props.correlation_len,
		},
	};
	int err;

	if (r.topic == NULL) {
		b->ignored++;
		return;
	}
	err = xmq_client_publish(b->paths[0].c, &r, NULL);
	if (err != 0) {
		say("reply to %s: %s", r.topic, xmq_strerror(err));
		b->ignored++;
		return;
	}
	b->replied++;
}

static void on_peer_message(xmq_client_t *c, const xmq_message_t *msg)
{
	struct path *p = xmq_client_data(c);
	struct bench *b = p->b;

	switch (b->mode) {
	case M_SEND:
		peer_send_message(b, msg);
		break;
	case M_RECV:
		peer_recv_message(b, msg);
		break;
	case M_REQUEST:
		peer_request_message(b, msg);
		break;
	case M_RESPOND:
		peer_respond_message(b, msg);
		break;
	default:
		break;
	}
}

static bool peer_subscribed(struct bench *b)
{
	return b->paths[0].subscribed;
}

/*
 * Connect paths[0] to --url and subscribe it to filter at qos, within
 * --timeout; mode is set first, so that nothing that arrives is missed.
 */
static int peer_start(struct bench *b, enum mode mode, const char *filter, uint8_t qos)
{
	static const xmq_client_cb_t cb = {
		.connect = on_pub_connect,
		.disconnect = on_pub_disconnect,
		.message = on_peer_message,
		.publish = on_pub_publish,
		.subscribe = on_peer_subscribe,
	};
	struct path *p = &b->paths[0];
	uint64_t ms = (uint64_t)b->o.timeout * 1000;
	char app[XMQ_APP_MAX + 1];
	int err;

	b->npaths = 1;
	p->name = cmd_names[b->o.cmd];
	p->url = b->o.url;
	p->b = b;
	b->mode = mode;
	snprintf(app, sizeof(app), "xmqbench-%s", p->name);
	err = make_client(b, p->url, app, (uint16_t)b->o.receive_max, &cb, p, &p->c);
	if (err != 0)
		return err;
	if (wait_until(b, all_connected, ms) != 0) {
		say("could not connect to %s within %u s", p->url, b->o.timeout);
		return -ETIMEDOUT;
	}
	err = xmq_client_subscribe(p->c, 1, &filter, qos, NULL);
	if (err == 0 && wait_until(b, peer_subscribed, ms) != 0)
		err = -ETIMEDOUT;
	if (err == 0 && b->sub_reason >= 0x80)
		err = XMQ_EREFUSED;
	if (err != 0) {
		say("cannot subscribe to %s: %s", filter, xmq_strerror(err));
		return err;
	}
	/* The other side's harness waits for this line. */
	printf("ready\n");
	fflush(stdout);
	return 0;
}

static bool go_arrived(struct bench *b)
{
	return b->go || b->error != 0;
}

static bool send_done(struct bench *b)
{
	return b->error != 0 || (b->sent >= b->count && xmq_client_queued(b->cur->c) == 0);
}

static bool done_arrived(struct bench *b)
{
	return b->done;
}

static int peer_send(struct bench *b)
{
	uint64_t ms = (uint64_t)b->o.timeout * 1000;
	char go[560];
	size_t most;
	double secs;
	int err;

	snprintf(go, sizeof(go), "%s/go", b->o.topic);
	snprintf(b->topic, sizeof(b->topic), "%s/data", b->o.topic);
	most = (size_t)b->o.max_frame - PUBLISH_OVERHEAD - strlen(b->topic);
	if (b->o.size_max)
		b->o.size = (unsigned)(most < PAYLOAD_MAX ? most : PAYLOAD_MAX);
	if (b->o.size < HDR_LEN || b->o.size > PAYLOAD_MAX) {
		say("--max-frame %u leaves no room for a message on %s", b->o.max_frame, b->topic);
		return -EINVAL;
	}
	/* The stream: tput_fill() from on_check() at each turn once count is
	 * set, paced by the library at QoS 1; done once every message is
	 * acknowledged. No window: nothing tells the sender what arrived. */
	b->cur = &b->paths[0];
	b->qos = (uint8_t)b->o.qos;
	b->window = 0;
	b->count = 0;
	err = peer_start(b, M_SEND, go, 0);
	if (err != 0)
		return err;
	if (wait_until(b, go_arrived, ms) != 0) {
		say("no go on %s within %u s", go, b->o.timeout);
		return -ETIMEDOUT;
	}
	b->count = b->o.count;
	watch_start(b);
	tput_fill(b);
	err = wait_until(b, send_done, ms);
	if (err == 0)
		err = b->error;
	if (err != 0) {
		say("%" PRIu64 " of %" PRIu64 " sent, %zu unacknowledged: %s", b->sent, b->count,
		    xmq_client_queued(b->cur->c), xmq_strerror(err));
		return err;
	}
	secs = (double)(now_ns() - b->t_first) / 1e9;
	/* CPU shares over the receiver's time, not only until the last ack */
	(void)wait_until(b, done_arrived, DONE_MS);
	printf("result test=send topic=%s size=%u qos=%u go=%" PRIu32 " sent=%" PRIu64
	       " secs=%.4f rate=%.0f done=%d", b->topic, b->o.size, b->o.qos, b->run, b->sent,
	       secs, secs > 0 ? (double)(b->sent * b->o.size) / secs : 0, b->done);
	watch_print(b);
	putchar('\n');
	return 0;
}

static bool recv_started(struct bench *b)
{
	return b->run != 0 || b->error != 0;
}

static bool recv_done(struct bench *b)
{
	return b->received >= b->count || now_ns() - b->t_progress >= STALL_RECV_NS;
}

/* recv: go k (seq 0, QoS 0), carrying k where a data message carries its run;
 * or done (seq 1, QoS 1) once everything arrived. */
static int publish_go(struct bench *b, const char *topic, uint32_t k, uint32_t seq)
{
	xmq_message_t m = {
		.topic = topic, .payload = b->payload, .payload_len = HDR_LEN, .qos = seq == 1,
	};
	uint64_t t = now_ns();

	put32(b->payload, MAGIC);
	put32(b->payload + 4, k);
	put32(b->payload + 8, seq);
	memcpy(b->payload + 12, &t, 8);
	return xmq_client_publish(b->paths[0].c, &m, NULL);
}

static int peer_recv(struct bench *b)
{
	uint64_t end = now_ns() + (uint64_t)b->o.timeout * 1000000000ull;
	char data[560], go[560];
	double secs, first;
	int err;

	snprintf(data, sizeof(data), "%s/data", b->o.topic);
	snprintf(go, sizeof(go), "%s/go", b->o.topic);
	b->count = b->o.count;
	b->run = 0;
	b->cur = &b->paths[0];
	err = peer_start(b, M_RECV, data, (uint8_t)b->o.qos);
	if (err != 0)
		return err;
	/* A go is lost while the sender is not yet subscribed: send another. */
	while (!recv_started(b)) {
		if (b->ngo == GO_MAX || now_ns() >= end) {
			say("nothing arrived on %s within %u s", data, b->o.timeout);
			return -ETIMEDOUT;
		}
		err = publish_go(b, go, b->ngo + 1, 0);
		if (err != 0 && err != -ENOTCONN) {
			say("go on %s: %s", go, xmq_strerror(err));
			return err;
		}
		b->ngo++;
		b->t_go[b->ngo] = now_ns();
		(void)wait_until(b, recv_started, GO_PERIOD_MS);
	}
	b->t_progress = now_ns();
	(void)wait_until(b, recv_done, UINT32_MAX);
	secs = (double)(b->t_last_rx - b->t_go[b->run]) / 1e9;
	first = (double)(b->t_last_rx - b->t_first_rx) / 1e9;
	printf("result test=recv topic=%s qos=%u go=%" PRIu32 " count=%" PRIu64
	       " received=%" PRIu64 " dups=%" PRIu64 " bytes=%" PRIu64 " secs=%.4f rate=%.0f"
	       " msg_rate=%.1f first_secs=%.4f first_rate=%.0f", data, b->o.qos, b->run,
	       b->count, b->received, b->dups, b->bytes, secs,
	       secs > 0 ? (double)b->bytes / secs : 0,
	       secs > 0 ? (double)b->received / secs : 0, first,
	       first > 0 ? (double)(b->bytes - b->first_len) / first : 0);
	watch_print(b);
	putchar('\n');
	fflush(stdout);
	if (publish_go(b, go, b->run, 1) == 0)
		(void)wait_until(b, queue_empty, SETTLE_MS);
	if (b->received < b->count) {
		say("%" PRIu64 " of %" PRIu64 " messages arrived", b->received, b->count);
		return -ETIMEDOUT;
	}
	return 0;
}

static bool reply_arrived(struct bench *b)
{
	return !b->waiting || b->error != 0;
}

/* request: --warmup rounds, then --count timed ones, one at a time. */
static int peer_request(struct bench *b)
{
	uint8_t cd[8];
	xmq_message_t m = {
		.topic = b->o.topic,
		.payload = b->payload,
		.payload_len = b->o.size,
		.qos = (uint8_t)b->o.qos,
		.props = {
			.response_topic = b->o.reply,
			.correlation_data = cd,
			.correlation_len = sizeof(cd),
		},
	};
	struct measure s;
	uint64_t total = (uint64_t)b->o.warmup + b->o.count;
	uint64_t i, t;
	int err;

	err = peer_start(b, M_REQUEST, b->o.reply, (uint8_t)b->o.qos);
	if (err != 0)
		return err;
	b->run = 1;
	for (i = 0; i < total && b->error == 0; i++) {
		if (i == b->o.warmup)
			watch_start(b);
		b->wait_seq = (uint32_t)i;
		put32(cd, b->run);
		put32(cd + 4, b->wait_seq);
		b->waiting = true;
		t = now_ns();
		err = xmq_client_publish(b->paths[0].c, &m, NULL);
		if (err != 0) {
			say("request on %s: %s", m.topic, xmq_strerror(err));
			return err;
		}
		if (wait_until(b, reply_arrived, ROUND_LOST_MS) != 0) {
			b->waiting = false;
			if (i >= b->o.warmup)
				b->lat_lost++;
			continue;
		}
		if (i >= b->o.warmup)
			b->lat[b->nlat++] = (double)(b->t_last_rx - t) / 1000.0;
	}
	if (b->error != 0)
		return b->error;
	memset(&s, 0, sizeof(s));
	lat_fill(&s, b->lat, b->nlat);
	printf("result test=request topic=%s size=%u qos=%u count=%u received=%" PRIu64
	       " lost=%" PRIu64 " min_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f"
	       " mean_us=%.1f", m.topic, b->o.size, b->o.qos, b->o.count, b->nlat, b->lat_lost,
	       b->nlat > 0 ? b->lat[0] : 0, s.p50, s.p90, s.p99, s.max, s.mean);
	watch_print(b);
	putchar('\n');
	return b->nlat > 0 ? 0 : -ETIMEDOUT;
}

static bool respond_done(struct bench *b)
{
	return b->stop || b->error != 0 || (b->o.count > 0 && b->replied >= b->o.count);
}

/* respond: until SIGTERM or SIGINT, or --count replies. */
static int peer_respond(struct bench *b)
{
	int err;

	signals_start(b);
	err = peer_start(b, M_RESPOND, b->o.topic, (uint8_t)b->o.qos);
	if (err != 0)
		return err;
	(void)wait_until(b, respond_done, (uint64_t)365 * 24 * 3600 * 1000);
	printf("result test=respond replied=%" PRIu64 " ignored=%" PRIu64 "\n", b->replied,
	       b->ignored);
	return b->error;
}

/* ---- raw-*: the bare channel, no xenmq ------------------------------------------- */

/*
 * Blocking reads and writes on one descriptor: the DomU's tty, made raw, or
 * the channel's socket in Dom0. Both ends may hold stale bytes (frames a
 * previous program left in QEMU or in the tty), so every step is marked by
 * an 8-byte token, seven fixed bytes and a counter, which a reader looks
 * for and which stale bytes cannot imitate by chance.
 *
 *   raw-recv                          raw-send
 *     "XMQ-GO-" k   (again each s) ->
 *                                  <-   "XMQ-DAT" k, then N bytes
 *     "XMQ-ACK" k                  ->
 *                                  <-   "XMQ-BYE" k   (sender on a tty only)
 *
 * The lab's rule decides who closes last: QEMU drops what the DomU has not
 * read yet when the Dom0 client closes, so the Dom0 side (the socket) waits
 * for the DomU side's last word, and the DomU side drains its tty
 * (tcdrain) before it closes.
 */

#define TOKEN_LEN 8

struct scan {
	uint8_t win[TOKEN_LEN];
	size_t n;
};

/*
 * Look for the token prefix (TOKEN_LEN - 1 bytes) in buf[0..len). Returns
 * its counter byte and sets *used to the bytes consumed, token included; or
 * -1 with every byte consumed. A token split across calls is found too.
 */
static int scan_feed(struct scan *s, const char *prefix, const uint8_t *buf, size_t len,
                     size_t *used)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s->n == TOKEN_LEN) {
			memmove(s->win, s->win + 1, TOKEN_LEN - 1);
			s->n--;
		}
		s->win[s->n++] = buf[i];
		if (s->n == TOKEN_LEN && memcmp(s->win, prefix, TOKEN_LEN - 1) == 0) {
			s->n = 0;
			*used = i + 1;
			return s->win[TOKEN_LEN - 1];
		}
	}
	*used = len;
	return -1;
}

/* The data raw-send sends and raw-recv expects: a fixed pseudo-random stream. */
static void stream_fill(uint32_t *x, uint8_t *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		*x = *x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(*x >> 23);
	}
}

/*
 * Open the channel: a Unix socket is connected, anything else is opened as a
 * tty, made raw (as the agent does) and rid of stale input. Returns the
 * descriptor (new) or -errno; *tty says which.
 */
static int raw_open(const char *path, bool *tty)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd = -1;
	int err;

	if (stat(path, &st) != 0)
		return -errno;
	*tty = !S_ISSOCK(st.st_mode);
	if (*tty) {
		fd = tty_raw(path);
		if (fd >= 0)
			(void)tcflush(fd, TCIFLUSH);
		return fd;
	}
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int raw_write(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read what is there, waiting until deadline (now_ns()). Returns the count,
 * 0 at the end of the stream, -ETIMEDOUT or -errno. */
static ssize_t raw_read(int fd, void *buf, size_t len, uint64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t now;
	ssize_t n;
	int r;

	for (;;) {
		now = now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)((deadline - now) / 1000000 + 1));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			continue;
		n = read(fd, buf, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		return n < 0 ? -errno : n;
	}
}

static int raw_token(int fd, const char *prefix, uint8_t k)
{
	uint8_t t[TOKEN_LEN];

	memcpy(t, prefix, TOKEN_LEN - 1);
	t[TOKEN_LEN - 1] = k;
	return raw_write(fd, t, sizeof(t));
}

/*
 * Read until the token prefix comes (its counter is returned) or deadline;
 * bytes after the token are left in b->rbuf[*at .. *len).
 */
static int raw_await(struct bench *b, int fd, const char *prefix, uint64_t deadline,
                     size_t *at, size_t *len)
{
	struct scan s = { .n = 0 };
	size_t used;
	ssize_t n;
	int k;

	for (;;) {
		n = raw_read(fd, b->rbuf, sizeof(b->rbuf), deadline);
		if (n <= 0)
			return n == 0 ? -ECONNRESET : (int)n;
		k = scan_feed(&s, prefix, b->rbuf, (size_t)n, &used);
		if (k >= 0) {
			*at = used;
			*len = (size_t)n;
			return k;
		}
	}
}

/* Closing the DomU's end: wait until the tty sent everything. */
static void raw_close(int fd, bool tty)
{
	if (tty)
		(void)tcdrain(fd);
	close(fd);
}

static int raw_send(struct bench *b)
{
	uint64_t end = now_ns() + (uint64_t)b->o.timeout * 1000000000ull;
	uint64_t t_first, t_written, left = b->o.bytes;
	uint32_t x = 1;
	size_t at, len, n;
	double secs;
	bool tty;
	int fd, k, err;

	fd = raw_open(b->o.chan, &tty);
	if (fd < 0) {
		say("%s: %s", b->o.chan, strerror(-fd));
		return fd;
	}
	printf("ready\n");
	fflush(stdout);
	k = raw_await(b, fd, "XMQ-GO-", end, &at, &len);
	if (k < 0) {
		say("%s: no go: %s", b->o.chan, strerror(-k));
		err = k;
		goto out;
	}
	t_first = now_ns();
	watch_start(b);
	err = raw_token(fd, "XMQ-DAT", (uint8_t)k);
	while (err == 0 && left > 0) {
		n = left < sizeof(b->payload) ? (size_t)left : sizeof(b->payload);
		stream_fill(&x, b->payload, n);
		err = raw_write(fd, b->payload, n);
		left -= n;
	}
	t_written = now_ns();
	if (err != 0) {
		say("%s: write: %s", b->o.chan, strerror(-err));
		goto out;
	}
	/* The receiver may send more go tokens meanwhile: only its ack counts. */
	err = raw_await(b, fd, "XMQ-ACK", end, &at, &len);
	if (err < 0) {
		say("%s: no ack: %s", b->o.chan, strerror(-err));
		goto out;
	}
	secs = (double)(now_ns() - t_first) / 1e9;
	err = tty ? raw_token(fd, "XMQ-BYE", (uint8_t)k) : 0;
	printf("result test=raw-send bytes=%u go=%d write_secs=%.4f secs=%.4f rate=%.0f",
	       b->o.bytes, k, (double)(t_written - t_first) / 1e9, secs,
	       secs > 0 ? b->o.bytes / secs : 0);
	watch_print(b);
	putchar('\n');
out:
	raw_close(fd, tty);
	return err;
}

static int raw_recv(struct bench *b)
{
	uint64_t end = now_ns() + (uint64_t)b->o.timeout * 1000000000ull;
	uint64_t t_go[GO_MAX + 1];
	uint64_t t_first, t_last, got = 0, errors = 0, first_len;
	uint8_t want[RAW_CHUNK];
	uint32_t x = 1;
	size_t at = 0, len = 0, i;
	unsigned go = 0;
	double secs, first;
	ssize_t n;
	bool tty;
	int fd, k = -ETIMEDOUT, err = 0;

	fd = raw_open(b->o.chan, &tty);
	if (fd < 0) {
		say("%s: %s", b->o.chan, strerror(-fd));
		return fd;
	}
	printf("ready\n");
	fflush(stdout);
	/* A go is lost while the sender is not yet reading: send another. */
	while (k == -ETIMEDOUT && go < GO_MAX && now_ns() < end) {
		go++;
		t_go[go] = now_ns();
		err = raw_token(fd, "XMQ-GO-", (uint8_t)go);
		if (err != 0)
			break;
		k = raw_await(b, fd, "XMQ-DAT", t_go[go] + GO_PERIOD_MS * 1000000ull, &at, &len);
	}
	if (err == 0 && (k < 1 || (unsigned)k > go))
		err = k < 0 ? k : -EPROTO;
	if (err != 0) {
		say("%s: the data did not come: %s", b->o.chan, strerror(-err));
		goto out;
	}
	t_first = t_last = now_ns();
	watch_start(b);
	first_len = len - at < b->o.bytes ? len - at : b->o.bytes;
	for (;;) {
		n = (ssize_t)(len - at);
		if ((uint64_t)n > b->o.bytes - got)
			n = (ssize_t)(b->o.bytes - got);
		stream_fill(&x, want, (size_t)n);
		for (i = 0; i < (size_t)n; i++)
			errors += want[i] != b->rbuf[at + i];
		got += (uint64_t)n;
		if (n > 0)
			t_last = now_ns();
		if (got >= b->o.bytes)
			break;
		n = raw_read(fd, b->rbuf, sizeof(b->rbuf), t_last + STALL_RECV_NS);
		if (n <= 0) {
			err = n == 0 ? -ECONNRESET : (int)n;
			break;
		}
		at = 0;
		len = (size_t)n;
	}
	secs = (double)(t_last - t_go[k]) / 1e9;
	first = (double)(t_last - t_first) / 1e9;
	printf("result test=raw-recv bytes=%u received=%" PRIu64 " errors=%" PRIu64 " go=%d"
	       " secs=%.4f rate=%.0f first_secs=%.4f first_rate=%.0f", b->o.bytes, got, errors,
	       k, secs, secs > 0 ? (double)got / secs : 0, first,
	       first > 0 ? (double)(got - first_len) / first : 0);
	watch_print(b);
	putchar('\n');
	fflush(stdout);
	if (err != 0) {
		say("%s: %" PRIu64 " of %u bytes: %s", b->o.chan, got, b->o.bytes, strerror(-err));
		goto out;
	}
	err = raw_token(fd, "XMQ-ACK", (uint8_t)k);
	/* On the socket, closing first would drop the ack: wait for the DomU. */
	if (err == 0 && !tty)
		(void)raw_await(b, fd, "XMQ-BYE", now_ns() + BYE_MS * 1000000ull, &at, &len);
	if (err == 0 && errors != 0)
		err = -EILSEQ;
out:
	raw_close(fd, tty);
	return err;
}

/* raw-echo runs no loop: its signal handler sets this, and read() returns EINTR. */
static volatile sig_atomic_t raw_stop;

static void on_raw_signal(int signum)
{
	raw_stop = 1;
}

/* raw-echo: every byte back, until the end of the stream, SIGTERM or SIGINT. */
static int raw_echo(struct bench *b)
{
	struct sigaction sa = { .sa_handler = on_raw_signal };
	uint64_t echoed = 0;
	bool tty;
	ssize_t n;
	int fd, err = 0;

	/* no SA_RESTART: the signal must interrupt the blocking read() */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fd = raw_open(b->o.chan, &tty);
	if (fd < 0) {
		say("%s: %s", b->o.chan, strerror(-fd));
		return fd;
	}
	printf("ready\n");
	fflush(stdout);
	while (!raw_stop) {
		n = read(fd, b->rbuf, sizeof(b->rbuf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : 0;
			break;
		}
		err = raw_write(fd, b->rbuf, (size_t)n);
		if (err != 0)
			break;
		echoed += (uint64_t)n;
	}
	printf("result test=raw-echo echoed=%" PRIu64 "\n", echoed);
	raw_close(fd, tty);
	return err;
}

/*
 * raw-ping: --size bytes of one value, timed until as many of that value
 * came back; each round uses the next letter, so a late echo or a stale
 * byte is told apart and counted as a stray.
 */
static int raw_ping(struct bench *b)
{
	uint64_t total = (uint64_t)b->o.warmup + b->o.count;
	uint64_t i, t, strays = 0, lost = 0;
	struct measure m;
	size_t got, j;
	ssize_t n;
	uint8_t v;
	bool tty;
	int fd, err = 0;

	fd = raw_open(b->o.chan, &tty);
	if (fd < 0) {
		say("%s: %s", b->o.chan, strerror(-fd));
		return fd;
	}
	for (i = 0; i < total && err == 0; i++) {
		if (i == b->o.warmup)
			watch_start(b);
		v = (uint8_t)('a' + i % 26);
		memset(b->payload, v, b->o.size);
		t = now_ns();
		err = raw_write(fd, b->payload, b->o.size);
		for (got = 0; err == 0 && got < b->o.size; ) {
			n = raw_read(fd, b->rbuf, sizeof(b->rbuf), t + ROUND_LOST_MS * 1000000ull);
			if (n == -ETIMEDOUT)
				break;
			if (n <= 0) {
				err = n == 0 ? -ECONNRESET : (int)n;
				break;
			}
			for (j = 0; j < (size_t)n; j++) {
				if (b->rbuf[j] == v && got < b->o.size)
					got++;
				else
					strays++;
			}
		}
		if (err != 0 || i < b->o.warmup)
			continue;
		if (got < b->o.size)
			lost++;
		else
			b->lat[b->nlat++] = (double)(now_ns() - t) / 1000.0;
	}
	if (err != 0) {
		say("%s: %s", b->o.chan, strerror(-err));
		goto out;
	}
	memset(&m, 0, sizeof(m));
	lat_fill(&m, b->lat, b->nlat);
	printf("result test=raw-ping size=%u count=%u received=%" PRIu64 " lost=%" PRIu64
	       " strays=%" PRIu64 " min_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f"
	       " mean_us=%.1f", b->o.size, b->o.count, b->nlat, lost, strays,
	       b->nlat > 0 ? b->lat[0] : 0, m.p50, m.p90, m.p99, m.max, m.mean);
	watch_print(b);
	putchar('\n');
	err = b->nlat > 0 ? 0 : -ETIMEDOUT;
out:
	raw_close(fd, tty);
	return err;
}

/* ---- the program ----------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xmqbench run --sub URL --topic PREFIX --path NAME=URL... [options]\n"
		"       xmqbench hold [--messages N] [--size BYTES] DOMAIN=URL...\n"
		"       xmqbench chan --pty PATH --socket PATH [--lat-count N] [--size BYTES]\n"
		"       xmqbench send --url URL --topic PREFIX [--size BYTES|max] [--count N]\n"
		"       xmqbench recv --url URL --topic PREFIX [--count N]\n"
		"       xmqbench request --url URL --topic TOPIC --reply TOPIC [--count N]\n"
		"       xmqbench respond --url URL --topic FILTER [--count N]\n"
		"       xmqbench raw-send|raw-recv --chan PATH [--bytes N]\n"
		"       xmqbench raw-echo --chan PATH\n"
		"       xmqbench raw-ping --chan PATH [--count N] [--size BYTES]\n"
		"options of run:\n"
		"  --count0 N      QoS 0 throughput and burst: messages (20000)\n"
		"  --count1 N      QoS 1 throughput: messages (10000)\n"
		"  --lat-count N   latency: messages, one at a time (2000)\n"
		"  --warmup N      messages before each throughput test, N/5 before\n"
		"                  each latency test (1000; 0: none)\n"
		"  --window N      QoS 0: most messages between send and arrival (1000;\n"
		"                  0: none); burst0 has none\n"
		"  --rounds N      each test N times, paths alternating (1..%d, 3)\n"
		"  --size BYTES    payload (%d..%d, 64)\n"
		"  --tests LIST    among tput0,tput1,lat0,lat1,burst0 (all)\n"
		"  --watch NAME=PID  report the CPU time PID used per message, as\n"
		"                  cpu_NAME_us (repeatable; this process is always \"self\")\n"
		"The first --path is the reference the others are compared to.\n"
		"options of send, recv, request, respond (one process on each side):\n"
		"  --url URL       the client's transport (agent:..., mqtt+unix:...)\n"
		"  --topic T       send, recv: prefix of T/data and T/go; request: the\n"
		"                  request topic; respond: the filter it answers on\n"
		"  --reply TOPIC   request: the response topic, subscribed to\n"
		"  --count N       send, recv: messages (500); request: timed rounds\n"
		"                  (200); respond: replies before it exits (0: until\n"
		"                  SIGTERM or SIGINT)\n"
		"  --warmup N      request, raw-ping: untimed rounds first (20)\n"
		"  --size BYTES    payload (%d..%d, 64); send: max is the largest payload\n"
		"                  a frame of --max-frame bytes holds on T/data\n"
		"  --max-frame N   the channel's max_frame_size (16384)\n"
		"  --qos 0|1       of the messages and subscriptions (1)\n"
		"  --receive-max N the client's receive window (0: the library's)\n"
		"  --timeout S     for connecting, the go, and all of send (120)\n"
		"  --watch NAME=PID  also print the share of one CPU PID used while\n"
		"                  measured, as cpu_NAME_pct (and raw-*; \"self\" always)\n"
		"options of raw-*:\n"
		"  --chan PATH     the DomU's tty (made raw) or the channel's socket in Dom0\n"
		"  --bytes N       raw-send, raw-recv: bytes moved (1048576)\n"
		"  --count N, --warmup N, --size BYTES  raw-ping: rounds (200, 20), bytes\n"
		"                  per round (1)\n"
		"Each of these prints \"ready\" once it can be used, then one \"result\" line.\n",
		ROUNDS_MAX, HDR_LEN, SIZE_MAX_BYTES, HDR_LEN, PAYLOAD_MAX);
}

static int parse_uint(const char *name, const char *s, unsigned min, unsigned max,
                      unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		say("%s must be a whole number from %u to %u, not '%s'", name, min, max, s);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

static int parse_tests(struct opts *o, const char *list)
{
	char buf[128];
	char *save = NULL;
	char *w;
	unsigned t;

	snprintf(buf, sizeof(buf), "%s", list);
	memset(o->tests, 0, sizeof(o->tests));
	for (w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
		for (t = 0; t < T_COUNT && strcmp(w, test_names[t]) != 0; t++)
			;
		if (t == T_COUNT) {
			say("--tests: unknown test '%s' (tput0, tput1, lat0, lat1, burst0)", w);
			return -EINVAL;
		}
		o->tests[t] = true;
	}
	return 0;
}

static int add_path(struct opts *o, const char *arg)
{
	unsigned max = o->cmd == CMD_HOLD ? CLIENTS_MAX : PATHS_MAX;
	const char *eq = strchr(arg, '=');
	const char **urls;
	char **names;

	if (eq == NULL || eq == arg || eq[1] == '\0') {
		say("'%s': expected NAME=URL", arg);
		return -EINVAL;
	}
	if (o->npaths == max) {
		say("at most %u %s", max, o->cmd == CMD_HOLD ? "clients" : "paths");
		return -EINVAL;
	}
	names = realloc(o->path_name, (o->npaths + 1) * sizeof(*names));
	if (names == NULL)
		return -ENOMEM;
	o->path_name = names;
	urls = realloc(o->path_url, (o->npaths + 1) * sizeof(*urls));
	if (urls == NULL)
		return -ENOMEM;
	o->path_url = urls;
	names[o->npaths] = strndup(arg, (size_t)(eq - arg));
	if (names[o->npaths] == NULL)
		return -ENOMEM;
	urls[o->npaths] = eq + 1;
	o->npaths++;
	return 0;
}

static int add_watch(struct opts *o, const char *arg)
{
	const char *eq = strchr(arg, '=');
	unsigned pid;
	char *name;

	if (eq == NULL || eq == arg || parse_uint("--watch PID", eq + 1, 1, 1u << 30, &pid) != 0) {
		say("--watch '%s': expected NAME=PID", arg);
		return -EINVAL;
	}
	if (o->nwatch == WATCH_MAX) {
		say("at most %d --watch", WATCH_MAX);
		return -EINVAL;
	}
	name = strndup(arg, (size_t)(eq - arg));
	if (name == NULL)
		return -ENOMEM;
	o->watch_name[o->nwatch] = name;
	o->watch_pid[o->nwatch] = (int)pid;
	o->nwatch++;
	return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
	enum { OPT_SUB = 256, OPT_TOPIC, OPT_PATH, OPT_COUNT0, OPT_COUNT1, OPT_LAT, OPT_WARMUP,
	       OPT_WINDOW, OPT_ROUNDS, OPT_SIZE, OPT_TESTS, OPT_MESSAGES, OPT_WATCH, OPT_PTY,
	       OPT_SOCKET, OPT_URL, OPT_CHAN, OPT_REPLY, OPT_COUNT, OPT_QOS, OPT_BYTES,
	       OPT_TIMEOUT, OPT_RECEIVE_MAX, OPT_MAX_FRAME };
	static const struct option longs[] = {
		{ "sub", required_argument, NULL, OPT_SUB },
		{ "topic", required_argument, NULL, OPT_TOPIC },
		{ "path", required_argument, NULL, OPT_PATH },
		{ "count0", required_argument, NULL, OPT_COUNT0 },
		{ "count1", required_argument, NULL, OPT_COUNT1 },
		{ "lat-count", required_argument, NULL, OPT_LAT },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "tests", required_argument, NULL, OPT_TESTS },
		{ "messages", required_argument, NULL, OPT_MESSAGES },
		{ "watch", required_argument, NULL, OPT_WATCH },
		{ "pty", required_argument, NULL, OPT_PTY },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "url", required_argument, NULL, OPT_URL },
		{ "chan", required_argument, NULL, OPT_CHAN },
		{ "reply", required_argument, NULL, OPT_REPLY },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "qos", required_argument, NULL, OPT_QOS },
		{ "bytes", required_argument, NULL, OPT_BYTES },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "receive-max", required_argument, NULL, OPT_RECEIVE_MAX },
		{ "max-frame", required_argument, NULL, OPT_MAX_FRAME },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned cmd, size_min = HDR_LEN, size_max = SIZE_MAX_BYTES;
	int c, err = 0;

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 1;
	}
	for (cmd = 0; argc >= 2 && cmd < CMD_COUNT && strcmp(argv[1], cmd_names[cmd]) != 0; cmd++)
		;
	if (argc < 2 || cmd == CMD_COUNT) {
		usage(stderr);
		return -EINVAL;
	}
	*o = (struct opts){ .cmd = (enum cmd)cmd, .count0 = 20000, .count1 = 10000,
	                    .lat_count = 2000, .warmup = 1000, .window = 1000, .rounds = 3,
	                    .size = 64, .messages = 100, .tests = { true, true, true, true, true },
	                    .count = 500, .qos = 1, .bytes = 1048576, .timeout = 120,
	                    .max_frame = 16384 };
	if (cmd > CMD_CHAN)
		size_max = PAYLOAD_MAX;
	if (cmd == CMD_REQUEST || cmd == CMD_RAW_PING) {
		o->count = 200;
		o->warmup = 20;
	}
	if (cmd == CMD_RESPOND)
		o->count = 0;
	if (cmd == CMD_RAW_PING) {
		o->size = 1;
		size_min = 1;
	}
	o->watch_name[0] = strdup("self");
	if (o->watch_name[0] == NULL)
		return -ENOMEM;
	o->nwatch = 1;
	optind = 2;
	while (err == 0 && (c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case OPT_SUB:
			o->sub_url = optarg;
			break;
		case OPT_TOPIC:
			o->topic = optarg;
			break;
		case OPT_PATH:
			err = add_path(o, optarg);
			break;
		case OPT_COUNT0:
			err = parse_uint("--count0", optarg, 1, COUNT_MAX, &o->count0);
			break;
		case OPT_COUNT1:
			err = parse_uint("--count1", optarg, 1, COUNT_MAX, &o->count1);
			break;
		case OPT_LAT:
			err = parse_uint("--lat-count", optarg, 1, COUNT_MAX, &o->lat_count);
			break;
		case OPT_WARMUP:
			err = parse_uint("--warmup", optarg, 0, COUNT_MAX, &o->warmup);
			break;
		case OPT_WINDOW:
			err = parse_uint("--window", optarg, 0, COUNT_MAX, &o->window);
			break;
		case OPT_ROUNDS:
			err = parse_uint("--rounds", optarg, 1, ROUNDS_MAX, &o->rounds);
			break;
		case OPT_SIZE:
			o->size_max = cmd == CMD_SEND && strcmp(optarg, "max") == 0;
			if (!o->size_max)
				err = parse_uint("--size", optarg, size_min, size_max, &o->size);
			break;
		case OPT_TESTS:
			err = parse_tests(o, optarg);
			break;
		case OPT_MESSAGES:
			err = parse_uint("--messages", optarg, 1, 100000, &o->messages);
			break;
		case OPT_WATCH:
			err = add_watch(o, optarg);
			break;
		case OPT_PTY:
			o->pty = optarg;
			break;
		case OPT_SOCKET:
			o->socket = optarg;
			break;
		case OPT_URL:
			o->url = optarg;
			break;
		case OPT_CHAN:
			o->chan = optarg;
			break;
		case OPT_REPLY:
			o->reply = optarg;
			break;
		case OPT_COUNT:
			err = parse_uint("--count", optarg, cmd == CMD_RESPOND ? 0 : 1, COUNT_MAX,
			                 &o->count);
			break;
		case OPT_QOS:
			err = parse_uint("--qos", optarg, 0, 1, &o->qos);
			break;
		case OPT_BYTES:
			err = parse_uint("--bytes", optarg, 1, 1u << 30, &o->bytes);
			break;
		case OPT_TIMEOUT:
			err = parse_uint("--timeout", optarg, 1, 86400, &o->timeout);
			break;
		case OPT_RECEIVE_MAX:
			err = parse_uint("--receive-max", optarg, 0, 65535, &o->receive_max);
			break;
		case OPT_MAX_FRAME:
			err = parse_uint("--max-frame", optarg, 256, PAYLOAD_MAX, &o->max_frame);
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (err != 0)
		return err;
	if (o->cmd == CMD_HOLD) {
		for (; optind < argc && err == 0; optind++)
			err = add_path(o, argv[optind]);
		if (err == 0 && o->npaths == 0) {
			say("hold: give at least one DOMAIN=URL");
			err = -EINVAL;
		}
		return err;
	}
	if (optind < argc) {
		say("unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (o->cmd == CMD_CHAN) {
		if (o->pty == NULL || o->socket == NULL) {
			say("chan needs --pty PATH and --socket PATH");
			return -EINVAL;
		}
		return 0;
	}
	if (o->cmd >= CMD_RAW_SEND) {
		if (o->chan == NULL) {
			say("%s needs --chan PATH (the DomU's tty or the channel's socket)",
			    cmd_names[cmd]);
			return -EINVAL;
		}
		return 0;
	}
	if (o->cmd > CMD_CHAN) {
		if (o->url == NULL || o->topic == NULL) {
			say("%s needs --url URL and --topic %s", cmd_names[cmd],
			    cmd == CMD_RESPOND ? "FILTER" : cmd == CMD_REQUEST ? "TOPIC" : "PREFIX");
			return -EINVAL;
		}
		if (cmd == CMD_REQUEST && o->reply == NULL) {
			say("request needs --reply TOPIC, the response topic");
			return -EINVAL;
		}
		return 0;
	}
	if (o->sub_url == NULL || o->topic == NULL || o->npaths == 0) {
		say("run needs --sub URL, --topic PREFIX and at least one --path NAME=URL");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench *b = NULL;
	uint64_t most;
	unsigned i;
	int err;
	int rc = 1;

	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return 1;
	err = parse(argc, argv, &b->o);
	if (err != 0) {
		rc = err > 0 ? 0 : 2;
		goto out_free;
	}
	most = b->o.count0 > b->o.count1 ? b->o.count0 : b->o.count1;
	most = most > b->o.lat_count ? most : b->o.lat_count;
	most = most > b->o.count ? most : b->o.count;
	b->lat = calloc(most, sizeof(*b->lat));
	b->seen = calloc((most + 7) / 8, 1);
	/* send, recv, request, respond: one client, set up by peer_start() */
	b->paths = calloc(b->o.npaths > 0 ? b->o.npaths : 1, sizeof(*b->paths));
	if (b->lat == NULL || b->seen == NULL || b->paths == NULL)
		goto out_free;
	b->npaths = b->o.npaths;
	for (i = 0; i < b->npaths; i++) {
		b->paths[i].name = b->o.path_name[i];
		b->paths[i].url = b->o.path_url[i];
		b->paths[i].b = b;
	}
	/* A peer that goes away is an error to report, not a reason to die. */
	signal(SIGPIPE, SIG_IGN);
	memset(b->payload, 'x', sizeof(b->payload));
	if (uv_loop_init(&b->loop) != 0)
		goto out_free;
	uv_check_init(&b->loop, &b->check);
	b->check.data = b;
	uv_check_start(&b->check, on_check);
	uv_timer_init(&b->loop, &b->tick);
	b->tick.data = b;
	uv_timer_start(&b->tick, on_tick, TICK_MS, TICK_MS);

	switch (b->o.cmd) {
	case CMD_RUN:
		err = run(b);
		break;
	case CMD_HOLD:
		err = hold(b);
		break;
	case CMD_CHAN:
		err = chan(b);
		break;
	case CMD_SEND:
		err = peer_send(b);
		break;
	case CMD_RECV:
		err = peer_recv(b);
		break;
	case CMD_REQUEST:
		err = peer_request(b);
		break;
	case CMD_RESPOND:
		err = peer_respond(b);
		break;
	case CMD_RAW_SEND:
		err = raw_send(b);
		break;
	case CMD_RAW_RECV:
		err = raw_recv(b);
		break;
	case CMD_RAW_ECHO:
		err = raw_echo(b);
		break;
	default:
		err = raw_ping(b);
		break;
	}
	if (err == 0)
		rc = 0;

	signals_stop(b);
	close_all(b);
	uv_close((uv_handle_t *)&b->check, NULL);
	uv_close((uv_handle_t *)&b->tick, NULL);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&b->loop) != 0)
		say("the loop still has handles at exit");
out_free:
	for (i = 0; i < b->o.npaths; i++)
		free(b->o.path_name[i]);
	free(b->o.path_name);
	free(b->o.path_url);
	for (i = 0; i < b->o.nwatch; i++)
		free((char *)b->o.watch_name[i]);
	free(b->paths);
	free(b->seen);
	free(b->lat);
	free(b);
	return rc;
}
