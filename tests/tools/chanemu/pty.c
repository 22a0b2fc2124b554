/* SPDX-License-Identifier: MIT */
/*
 * pty.c - chanemu's DomU side: a pseudo-terminal whose slave stands in for
 * the DomU's /dev/hvcN, with the kernel's default settings (cooked, echo on)
 * as on a fresh hvc, and an optional symbolic link to the slave (--pty).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <uv.h>

#include "tests/tools/chanemu/chanemu.h"

void pty_failed(struct chan *c, const char *op, const char *why)
{
	/* An error such as EIO would repeat at once: pause instead of spinning. */
	say("pty %s: %s", op, why);
	c->pty_pause_ns = uv_hrtime() + PTY_PAUSE_NS;
}

static void on_master(uv_poll_t *h, int status, int events)
{
	struct chan *c = h->data;
	unsigned char scratch[4096], *p = scratch;
	size_t room = sizeof(scratch);
	int keep = c->present && (c->client || c->o.keep_backlog);
	ssize_t n;

	if (status < 0) {
		c->master->events = 0;	/* libuv stopped it: chan_update() restarts it */
		pty_failed(c, "poll", uv_strerror(status));
	} else if (keep && dir_room(&c->up) == 0) {
		/* Readable means the guest wrote again, which releases the backlog. */
		c->held = 0;
	} else if (events & UV_READABLE) {
		if (keep) {
			p = c->up.buf + c->up.len;
			room = dir_room(&c->up);
		}
		n = read(c->master->fd, p, room);
		if (n > 0 && keep)
			c->up.len += (size_t)n;
		else if (n > 0)
			c->n_up_dropped += (uint64_t)n;
		if (n > 0) {
			c->held = 0;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			pty_failed(c, "read", n == 0 ? "end of file" : strerror(errno));
		}
	}
	chan_pump(c);
}

int pty_open(struct chan *c)
{
	const char *name;
	struct stat st;
	int fd, err;

	fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (grantpt(fd) < 0 || unlockpt(fd) < 0 || !(name = ptsname(fd))) {
		err = -errno;
		close(fd);
		return err;
	}
	c->master = watch_new(c, fd, on_master);
	if (!c->master) {
		close(fd);
		return -ENOMEM;
	}
	/* The kernel's defaults, as on a fresh hvc: cooked, echo on. Not made raw here. */
	c->slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (c->slave < 0 || tcgetattr(c->slave, &c->cooked) < 0)
		return -errno;
	if (!c->o.pty_link)
		return 0;
	if (lstat(c->o.pty_link, &st) == 0) {
		if (!S_ISLNK(st.st_mode))
			return -EEXIST;
		unlink(c->o.pty_link);
	}
	if (symlink(name, c->o.pty_link) < 0)
		return -errno;
	c->link_made = 1;
	return 0;
}
