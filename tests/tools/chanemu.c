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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
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

#define DOWN_MAX 4096			/* Dom0 -> DomU bytes in flight inside the emulator */
#define BACKLOG_LIMIT (1u << 20)	/* largest --backlog-max: QEMU's buffer limit */
#define PTY_PAUSE_NS 100000000ull	/* after an error on the pty master, 100 ms */
#define PACE_NS 10000000ull		/* how far ahead of its --rate-* a direction may run */

struct opts {
	const char *socket_path, *pty_link, *control_path, *ready_file;
	int keep_backlog;		/* --backlog keep (1) or drop (0) */
	uint64_t backlog_max, rate_up, rate_down, seed;
};

/* One direction: its bounded queue, its pace (--rate-*, 0 = free) and pending garbage. */
struct dir {
	unsigned char *buf;
	size_t cap, len;
	uint64_t rate, next_ns, garbage;
};

/* A polled fd, freed in its close callback so that a new one can be watched at once. */
struct watch {
	uv_poll_t poll;			/* first member: the handle is the allocation */
	int fd, events;
	uv_poll_cb cb;
};

struct chan {
	struct opts o;
	uv_loop_t *loop;
	struct watch *listen, *client, *master, *ctl;
	int slave;			/* kept open, never read: the pty never hangs up */
	int ctl_writer;			/* our own writer: the FIFO never reports EOF */
	struct termios cooked;		/* the slave's settings at start, for tty-reset */
	int present;			/* the socket exists (not vanished or destroyed) */
	int held;			/* a backlog waits for the guest's next write */
	int stopping, link_made, ctl_made;
	struct dir up, down;		/* DomU -> Dom0 (the backlog too), Dom0 -> DomU */
	uint64_t pty_pause_ns;
	char line[256];			/* the control command being read */
	size_t line_len;
	unsigned long ctl_seq;
	uint64_t n_up, n_down, n_up_dropped, n_down_dropped, n_clients;
	uint64_t rng;
	uv_timer_t vanish_timer, wake_timer;
	uv_signal_t sigs[3];
};

static void chan_pump(struct chan *c);

/* ---- small pieces ---------------------------------------------------------------------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("chanemu: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static size_t dir_room(const struct dir *d)
{
	return d->cap - d->len;
}

static size_t dir_clear(struct dir *d)
{
	size_t n = d->len;

	d->len = 0;
	return n;
}

/*
 * The bytes d may move now: all of them without a rate; else up to 10 ms worth, as long as
 * d is not more than PACE_NS ahead of its rate (so timer delays do not lower the average).
 */
static size_t dir_allow(const struct dir *d)
{
	size_t slice = d->rate / 100 ? d->rate / 100 : 1;

	if (!d->rate)
		return d->len;
	if (d->next_ns > uv_hrtime() + PACE_NS)
		return 0;
	return d->len < slice ? d->len : slice;
}

/*
 * Writes d's bytes to fd as far as fd and d's pace allow, counting them in *count. Returns
 * 0, or the -errno of a failed write (SIGPIPE is ignored, fd is non-blocking).
 */
static int dir_flush(struct dir *d, int fd, uint64_t *count)
{
	uint64_t now;
	ssize_t w;
	size_t n;

	while ((n = dir_allow(d)) > 0) {
		w = write(fd, d->buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 && errno != EAGAIN ? -errno : 0;
		memmove(d->buf, d->buf + w, d->len - (size_t)w);
		d->len -= (size_t)w;
		*count += (uint64_t)w;
		now = uv_hrtime();
		if (d->rate)
			d->next_ns = (d->next_ns > now ? d->next_ns : now) +
				     (uint64_t)w * 1000000000ull / d->rate;
	}
	return 0;
}

/* Moves pending garbage into d as far as it has room: as if its writer had sent it. */
static size_t dir_add_garbage(struct chan *c, struct dir *d)
{
	size_t n = dir_room(d) < d->garbage ? dir_room(d) : (size_t)d->garbage;
	uint64_t x = 0;

	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0) {	/* xorshift64*: reproducible with --seed */
			c->rng ^= c->rng >> 12;
			c->rng ^= c->rng << 25;
			c->rng ^= c->rng >> 27;
			x = c->rng * 0x2545F4914F6CDD1DULL;
		}
		d->buf[d->len + i] = (unsigned char)(x >> (i % 8 * 8));
	}
	d->len += n;
	d->garbage -= n;
	return n;
}

static struct watch *watch_new(struct chan *c, int fd, uv_poll_cb cb)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (w && uv_poll_init(c->loop, &w->poll, fd) != 0) {
		free(w);
		w = NULL;
	}
	if (!w)
		return NULL;
	w->poll.data = c;
	w->fd = fd;
	w->cb = cb;
	return w;
}

static void watch_set(struct watch *w, int events)
{
	if (!w || w->events == events)
		return;
	w->events = events;
	if (events)
		uv_poll_start(&w->poll, events, w->cb);
	else
		uv_poll_stop(&w->poll);
}

static void watch_freed(uv_handle_t *h)
{
	free(h);
}

/* Stops watching and closes the fd at once (libuv stops polling it synchronously). */
static void watch_close(struct watch **wp)
{
	struct watch *w = *wp;

	if (!w)
		return;
	*wp = NULL;
	uv_close((uv_handle_t *)&w->poll, watch_freed);
	close(w->fd);
}

/* ---- the Dom0 side: a listening socket serving one client at a time -------------------- */

/*
 * Closes the client connection. As with QEMU, what was on its way to the DomU is lost: our
 * queue and what the guest has not read yet. What the client did not get of the DomU's
 * output stays as the backlog (--backlog keep).
 */
static void client_drop(struct chan *c, const char *why)
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
static int chan_create(struct chan *c)
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
static void chan_remove(struct chan *c)
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

/* ---- the DomU side: the pty master ------------------------------------------------------ */

static void pty_failed(struct chan *c, const char *op, const char *why)
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

/* ---- moving bytes ----------------------------------------------------------------------- */

static void on_wake(uv_timer_t *t)
{
	chan_pump(t->data);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
	return a && a < b ? a : b;
}

/* Sets each fd's events from the state: nothing is polled that cannot make progress. */
static void chan_update(struct chan *c)
{
	uint64_t now = uv_hrtime(), wake_ns = 0;
	int ev = 0, up_go = !c->held && c->up.len > 0;

	/* Like QEMU's chardev, stop accepting while a client is served. */
	watch_set(c->listen, c->client ? 0 : UV_READABLE);
	if (c->client) {
		ev = UV_DISCONNECT | (dir_room(&c->down) > 0 ? UV_READABLE : 0);
		if (up_go && dir_allow(&c->up))
			ev |= UV_WRITABLE;
		else if (up_go)
			wake_ns = c->up.next_ns - PACE_NS;
		watch_set(c->client, ev);
	}
	ev = 0;
	if (now >= c->pty_pause_ns) {
		/* With nowhere to keep them, the guest's bytes stay in the tty and it blocks. */
		if (dir_room(&c->up) > 0 || c->held || !c->present ||
		    (!c->client && !c->o.keep_backlog))
			ev |= UV_READABLE;
		if (dir_allow(&c->down))
			ev |= UV_WRITABLE;
		else if (c->down.len > 0)
			wake_ns = earliest(wake_ns, c->down.next_ns - PACE_NS);
	} else {
		wake_ns = earliest(wake_ns, c->pty_pause_ns);
	}
	watch_set(c->master, ev);
	if (wake_ns)
		uv_timer_start(&c->wake_timer, on_wake,
			       wake_ns > now ? (wake_ns - now) / 1000000 + 1 : 1, 0);
	else
		uv_timer_stop(&c->wake_timer);
}

/* Makes every step that can be made now, then decides what to wait for. */
static void chan_pump(struct chan *c)
{
	int err;

	if (c->stopping)
		return;
	if (c->up.garbage && !c->client && !c->o.keep_backlog) {
		c->n_up_dropped += c->up.garbage;
		c->up.garbage = 0;
	}
	if (dir_add_garbage(c, &c->up))
		c->held = 0;
	dir_add_garbage(c, &c->down);
	if (c->client && !c->held && (err = dir_flush(&c->up, c->client->fd, &c->n_up)))
		client_drop(c, strerror(-err));
	if (uv_hrtime() >= c->pty_pause_ns &&
	    (err = dir_flush(&c->down, c->master->fd, &c->n_down)))
		pty_failed(c, "write", strerror(-err));
	dir_add_garbage(c, &c->up);
	dir_add_garbage(c, &c->down);
	chan_update(c);
}

/* ---- the control FIFO ------------------------------------------------------------------- */

static void on_vanish_over(uv_timer_t *t)
{
	struct chan *c = t->data;
	int err = chan_create(c);

	say("socket back after vanish: %s", err ? strerror(-err) : "ok");
	chan_pump(c);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
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

static int ctl_open(struct chan *c, const char *path)
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

/* ---- the pty ---------------------------------------------------------------------------- */

static int pty_open(struct chan *c)
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
