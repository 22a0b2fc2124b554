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
 * Output goes to stdout as "key=value" words for the harness; progress and
 * errors go to stderr. Exits 0, 1 when a measurement could not be made (a
 * client that never connects, a QoS 1 stream that stalls), 2 on bad usage.
 *
 * This file holds the usage, the options and main(). Each mode has a file of
 * its own (xmqbench.h lists them all), and pump.c says how flow control
 * paces a stream.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "tests/tools/xmqbench/xmqbench.h"

const char *const cmd_names[CMD_COUNT] = {
	"run", "hold", "chan", "send", "recv", "request", "respond",
	"raw-send", "raw-recv", "raw-echo", "raw-ping",
};

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
