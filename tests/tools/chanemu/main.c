/* SPDX-License-Identifier: MIT */
/*
 * chanemu - one Xen PV channel, emulated for the tests, the benchmarks and the demo.
 *
 * On Xen a PV channel is a Unix socket in Dom0, served by the domain's QEMU, and a tty
 * (/dev/hvcN) in the DomU. chanemu plays both ends: it listens on a Unix socket the way
 * QEMU's chardev server does and bridges it to a pseudo-terminal whose slave stands in for
 * the hvc. It copies the manners measured on Xen 4.17 (docs/testing.md, xen-lab README):
 * one Dom0 client at a time; DomU output written while nobody listens is kept but handed
 * over only when the DomU writes again; bytes toward the DomU are lost when the client
 * closes; the tty starts cooked and echoes; a rebooted domain gives EOF and its socket
 * disappears for a while. A control FIFO injects garbage, resets and reboots on demand.
 *
 * Every buffer is bounded: when one is full the emulator stops reading its source, so the
 * writer blocks as it would on the real rings.
 *
 * This file holds the options, the signals, starting and stopping; chanemu.h says where the
 * rest is.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "tests/tools/chanemu/chanemu.h"

void say(const char *fmt, ...)
{
	va_list ap;

	fputs("chanemu: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- signals, start and stop ------------------------------------------------------------ */

static void close_walk(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void chan_stop(struct chan *c)
{
	c->stopping = 1;
	client_drop(c, "emulator stopping");
	watch_close(&c->listen);
	watch_close(&c->master);
	watch_close(&c->ctl);
	if (c->present)
		unlink(c->o.socket_path);
	if (c->link_made)
		unlink(c->o.pty_link);
	if (c->ctl_made)
		unlink(c->o.control_path);
	/* The watches free themselves; timers and signals are embedded and only close. */
	uv_walk(c->loop, close_walk, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct chan *c = s->data;

	if (signum != SIGUSR1) {
		say("stopping on signal %d", signum);
		chan_stop(c);
		return;
	}
	say("up %" PRIu64 " down %" PRIu64 " up-dropped %" PRIu64 " down-dropped %" PRIu64
	    " clients %" PRIu64 " backlog %zu", c->n_up, c->n_down, c->n_up_dropped,
	    c->n_down_dropped, c->n_clients, c->up.len);
}

static const char usage[] =
	"usage: chanemu --socket PATH [--pty LINK] [--control FIFO] [--ready-file FILE]\n"
	"               [--backlog keep|drop] [--backlog-max BYTES]\n"
	"               [--rate-up BYTES_PER_S] [--rate-down BYTES_PER_S] [--seed N]\n";

/* Fills o from argv; returns 0, or -EINVAL after saying what is wrong. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "socket", 1, NULL, 's' }, { "pty", 1, NULL, 'p' }, { "control", 1, NULL, 'c' },
		{ "ready-file", 1, NULL, 'r' }, { "backlog", 1, NULL, 'b' },
		{ "backlog-max", 1, NULL, 'm' }, { "rate-up", 1, NULL, 'u' },
		{ "rate-down", 1, NULL, 'd' }, { "seed", 1, NULL, 'S' }, { "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *bad = NULL;
	int ch;

	while (!bad && (ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (ch) {
		case 's': o->socket_path = optarg; break;
		case 'p': o->pty_link = optarg; break;
		case 'c': o->control_path = optarg; break;
		case 'r': o->ready_file = optarg; break;
		case 'b':
			o->keep_backlog = !strcmp(optarg, "keep");
			if (!o->keep_backlog && strcmp(optarg, "drop"))
				bad = "--backlog takes keep or drop";
			break;
		case 'm':
			if (parse_u64(optarg, BACKLOG_LIMIT, &o->backlog_max) || !o->backlog_max)
				bad = "--backlog-max takes 1 to 1048576 (bytes)";
			break;
		case 'u':
		case 'd':
		case 'S':
			if (parse_u64(optarg, UINT64_MAX / 2, ch == 'u' ? &o->rate_up :
				      ch == 'd' ? &o->rate_down : &o->seed))
				bad = "--rate-up, --rate-down and --seed take a number";
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			bad = "unknown option";
		}
	}
	if (!bad && (!o->socket_path || optind != argc))
		bad = "--socket PATH is required, and there are no other arguments";
	if (!bad)
		return 0;
	fprintf(stderr, "chanemu: %s\n%s", bad, usage);
	return -EINVAL;
}

static int announce_ready(const char *ready_file)
{
	FILE *f = ready_file ? fopen(ready_file, "w") : stdout;

	if (!f)
		return -errno;
	fputs("ready\n", f);
	if (f == stdout)
		return fflush(f) == 0 ? 0 : -EIO;
	return fclose(f) == 0 ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	static const int signums[3] = { SIGTERM, SIGINT, SIGUSR1 };
	struct chan c = { .slave = -1, .ctl_writer = -1 };
	uv_loop_t loop;
	int err = 0;

	c.o.keep_backlog = 1;
	c.o.backlog_max = 4096;
	c.o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (parse_opts(argc, argv, &c.o))
		return 2;
	c.rng = c.o.seed ? c.o.seed : 1;
	c.up.cap = c.o.backlog_max;
	c.up.rate = c.o.rate_up;
	c.down.cap = DOWN_MAX;
	c.down.rate = c.o.rate_down;
	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&loop) != 0)
		return 1;
	c.loop = &loop;
	uv_timer_init(&loop, &c.vanish_timer);
	uv_timer_init(&loop, &c.wake_timer);
	c.vanish_timer.data = c.wake_timer.data = &c;
	for (int i = 0; i < 3; i++) {
		uv_signal_init(&loop, &c.sigs[i]);
		c.sigs[i].data = &c;
		uv_signal_start(&c.sigs[i], on_signal, signums[i]);
	}

	c.up.buf = malloc(c.up.cap);
	c.down.buf = malloc(c.down.cap);
	if (!c.up.buf || !c.down.buf)
		err = -ENOMEM;
	if (err)
		say("%s", strerror(-err));
	else if ((err = pty_open(&c)))
		say("pty '%s': %s", c.o.pty_link ? c.o.pty_link : "", strerror(-err));
	else if (c.o.control_path && (err = ctl_open(&c, c.o.control_path)))
		say("control FIFO '%s': %s", c.o.control_path, strerror(-err));
	else if ((err = chan_create(&c)))
		say("socket '%s': %s", c.o.socket_path, strerror(-err));
	else if ((err = announce_ready(c.o.ready_file)))
		say("ready file: %s", strerror(-err));
	if (!err) {
		chan_pump(&c);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (!c.stopping)
		chan_stop(&c);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		say("loop still busy at exit");
	if (c.slave >= 0)
		close(c.slave);
	if (c.ctl_writer >= 0)
		close(c.ctl_writer);
	free(c.up.buf);
	free(c.down.buf);
	return err ? 1 : 0;
}
