/* SPDX-License-Identifier: MIT */
/*
 * control.c - chanemu's control FIFO (--control): one command a line
 * injects garbage in either direction, drops the client, or makes the
 * domain vanish for a while, go away, come back, or reset its tty. Each
 * command is answered with one numbered line on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <uv.h>

#include "tests/tools/chanemu/chanemu.h"

static void on_vanish_over(uv_timer_t *t)
{
	struct chan *c = t->data;
	int err = chan_create(c);

	say("socket back after vanish: %s", err ? strerror(-err) : "ok");
	chan_pump(c);
}

/* A whole number from 0 to max into *out: returns 0, or -EINVAL with *out unchanged. */
int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Runs one command; returns NULL or what was wrong with it. */
static const char *ctl_run(struct chan *c, const char *cmd)
{
	char word[32], arg[32], extra;
	double secs;
	uint64_t n;
	int k, err;

	k = sscanf(cmd, "%31s %31s %c", word, arg, &extra);
	if (k < 1)
		return "empty command";
	if (!strcmp(word, "garbage-up") || !strcmp(word, "garbage-down")) {
		if (k != 2 || parse_u64(arg, UINT64_C(1) << 40, &n))
			return "usage: garbage-up|garbage-down N (bytes)";
		if (!c->present)
			return "the domain is gone";
		(strcmp(word, "garbage-up") ? &c->down : &c->up)->garbage += n;
	} else if (!strcmp(word, "vanish")) {
		secs = k == 2 ? strtod(arg, NULL) : -1;
		if (!(secs >= 0 && secs <= 3600))
			return "usage: vanish SECONDS (0 to 3600)";
		chan_remove(c);
		uv_timer_start(&c->vanish_timer, on_vanish_over, (uint64_t)(secs * 1000), 0);
	} else if (k != 1) {
		return "this command takes no argument";
	} else if (!strcmp(word, "drop")) {
		client_drop(c, "dropped by control");
	} else if (!strcmp(word, "destroy")) {
		uv_timer_stop(&c->vanish_timer);
		chan_remove(c);
	} else if (!strcmp(word, "create")) {
		uv_timer_stop(&c->vanish_timer);
		if ((err = chan_create(c)))
			return strerror(-err);
	} else if (!strcmp(word, "tty-reset")) {
		/* A real hvc gets its default settings back when its last user closes it. */
		if (tcsetattr(c->slave, TCSANOW, &c->cooked) < 0)
			return strerror(errno);
	} else {
		return "unknown command (garbage-up N, garbage-down N, drop, vanish SECONDS, "
		       "destroy, create, tty-reset)";
	}
	return NULL;
}

static void on_ctl(uv_poll_t *h, int status, int events)
{
	struct chan *c = h->data;
	const char *err;
	char buf[512];
	ssize_t n = read(c->ctl->fd, buf, sizeof(buf));

	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] != '\n') {
			/* Overlong lines are cut to the buffer: the command is then invalid. */
			if (c->line_len + 1 < sizeof(c->line))
				c->line[c->line_len++] = buf[i];
			continue;
		}
		c->line[c->line_len] = '\0';
		err = ctl_run(c, c->line);
		/* One line per command, numbered, so that scripts can wait for theirs. */
		say("ctl #%lu %s: %s", ++c->ctl_seq, c->line, err ? err : "ok");
		c->line_len = 0;
	}
	chan_pump(c);
}

int ctl_open(struct chan *c, const char *path)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) == 0) {
		if (!S_ISFIFO(st.st_mode))
			return -EEXIST;
		unlink(path);
	}
	if (mkfifo(path, 0600) < 0)
		return -errno;
	c->ctl_made = 1;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	c->ctl = watch_new(c, fd, on_ctl);
	if (!c->ctl) {
		close(fd);
		return -ENOMEM;
	}
	c->ctl_writer = open(path, O_WRONLY | O_CLOEXEC);
	if (c->ctl_writer < 0)
		return -errno;
	watch_set(c->ctl, UV_READABLE);
	return 0;
}
