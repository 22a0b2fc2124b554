/* SPDX-License-Identifier: MIT */
/*
 * socket.c - chanemu's Dom0 side: a listening Unix socket serving one client
 * at a time, as the domain's QEMU serves a PV channel, which appears when the
 * domain starts and disappears when it goes away.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <uv.h>

#include "tests/tools/chanemu/chanemu.h"

/*
 * Closes the client connection. As with QEMU, what was on its way to the DomU is lost: our
 * queue and what the guest has not read yet. What the client did not get of the DomU's
 * output stays as the backlog (--backlog keep).
 */
void client_drop(struct chan *c, const char *why)
{
	unsigned char scratch[4096];
	size_t lost;
	ssize_t n;

	if (!c->client)
		return;
	/* A Unix socket closed with unread data resets its peer; QEMU's clients see EOF. */
	for (int i = 0; i < 256; i++) {
		n = recv(c->client->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n <= 0)
			break;
		c->n_down_dropped += (uint64_t)n;
	}
	lost = dir_clear(&c->down);
	c->n_down_dropped += lost;
	tcflush(c->slave, TCIFLUSH);
	watch_close(&c->client);
	if (!c->o.keep_backlog)
		c->n_up_dropped += dir_clear(&c->up);
	c->held = 0;
	say("client gone (%s); %zu bytes toward the DomU lost, %zu kept", why, lost, c->up.len);
}

static void on_client(uv_poll_t *h, int status, int events)
{
	struct chan *c = h->data;
	ssize_t n;

	if (!c->client || h != &c->client->poll)
		return;
	/* QEMU disconnects as soon as the client half-closes, dropping what it sent. */
	if (status < 0 || (events & UV_DISCONNECT)) {
		/* libuv reports the socket's POLLERR as UV_EBADF: the peer went away badly. */
		client_drop(c, status < 0 ? "connection error" : "closed or half-closed");
	} else if ((events & UV_READABLE) && dir_room(&c->down) > 0) {
		n = read(c->client->fd, c->down.buf + c->down.len, dir_room(&c->down));
		if (n > 0)
			c->down.len += (size_t)n;
		else if (n == 0)
			client_drop(c, "EOF");
		else if (errno != EAGAIN && errno != EINTR)
			client_drop(c, strerror(errno));
	}
	chan_pump(c);
}

static void on_listen(uv_poll_t *h, int status, int events)
{
	struct chan *c = h->data;
	int fd = accept(c->listen->fd, NULL, NULL);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			say("accept: %s", strerror(errno));
		return;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	c->client = watch_new(c, fd, on_client);
	if (!c->client) {
		say("accept: out of memory");
		close(fd);
		return;
	}
	c->n_clients++;
	/* QEMU hands the old output over only when the guest writes again. */
	c->held = c->up.len > 0;
	say("client connected (%zu bytes of backlog held)", c->up.len);
	chan_pump(c);
}

/* Makes the socket file exist and listen, as a new QEMU does. Returns 0 or -errno. */
int chan_create(struct chan *c)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, err;

	if (c->present)
		return 0;
	if (strlen(c->o.socket_path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, c->o.socket_path);
	/* A socket file left by a killed emulator is stale; anything else is not ours. */
	if (lstat(a.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		unlink(a.sun_path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	/* QEMU listens with a backlog of 1: two more connects may wait, a third blocks. */
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0) {
		err = -errno;
		goto out_close;
	}
	c->listen = watch_new(c, fd, on_listen);
	if (!c->listen) {
		err = -ENOMEM;
		unlink(a.sun_path);
		goto out_close;
	}
	c->present = 1;
	return 0;
out_close:
	close(fd);
	return err;
}

/*
 * The domain goes away: the client gets EOF, clients waiting in the queue are reset, the
 * socket file disappears and both directions' pending bytes are discarded.
 */
void chan_remove(struct chan *c)
{
	if (!c->present)
		return;
	client_drop(c, "domain gone");
	watch_close(&c->listen);
	unlink(c->o.socket_path);
	c->n_up_dropped += dir_clear(&c->up) + c->up.garbage;
	c->n_down_dropped += dir_clear(&c->down) + c->down.garbage;
	c->up.garbage = c->down.garbage = 0;
	tcflush(c->slave, TCIOFLUSH);
	c->present = 0;
}
