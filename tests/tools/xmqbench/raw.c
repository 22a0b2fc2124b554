/* SPDX-License-Identifier: MIT */
/*
 * raw.c - xmqbench raw-send, raw-recv, raw-echo and raw-ping: the bare
 * channel, no xenmq.
 *
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
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "tests/tools/xmqbench/xmqbench.h"

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

/* ---- raw-send and raw-recv ---------------------------------------------------- */

int raw_send(struct bench *b)
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

int raw_recv(struct bench *b)
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

/* ---- raw-echo and raw-ping ---------------------------------------------------- */

/* raw-echo runs no loop: its signal handler sets this, and read() returns EINTR. */
static volatile sig_atomic_t raw_stop;

static void on_raw_signal(int signum)
{
	raw_stop = 1;
}

/* raw-echo: every byte back, until the end of the stream, SIGTERM or SIGINT. */
int raw_echo(struct bench *b)
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
int raw_ping(struct bench *b)
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
