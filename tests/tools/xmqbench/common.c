/* SPDX-License-Identifier: MIT */
/*
 * common.c - the small pieces every mode of xmqbench uses: messages to the
 * user, the clock and the CPU time of a process, running the loop until a
 * step is done, the byte order of a message header, percentiles, the CPU
 * shares printed by --watch, SIGTERM and SIGINT, and a tty made raw.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "tests/tools/xmqbench/xmqbench.h"

void say(const char *fmt, ...)
{
	va_list ap;

	fputs("xmqbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

uint64_t now_ns(void)
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
uint64_t cpu_ns(int pid)
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
int wait_until(struct bench *b, bool (*done)(struct bench *), uint64_t timeout_ms)
{
	uint64_t end = now_ns() + timeout_ms * 1000000ull;

	while (!done(b)) {
		if (now_ns() >= end)
			return -ETIMEDOUT;
		uv_run(&b->loop, UV_RUN_ONCE);
	}
	return 0;
}

/* ---- the header of a message ----------------------------------------------- */

void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* ---- percentiles and medians ------------------------------------------------ */

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
void lat_fill(struct measure *m, double *v, uint64_t n)
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

double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- CPU shares of the --watch processes, for the modes between two domains ---- */

/* From now on: the CPU time each watched process uses. */
void watch_start(struct bench *b)
{
	unsigned i;

	for (i = 0; i < b->o.nwatch; i++)
		b->cpu0[i] = cpu_ns(b->o.watch_pid[i]);
	b->t_cpu0 = now_ns();
}

/* " cpu_NAME_pct=P" for each watched process: the share of one CPU it used
 * since watch_start(). A process that cannot be read (gone) is left out. */
void watch_print(const struct bench *b)
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

/* ---- SIGTERM and SIGINT ------------------------------------------------------ */

static void on_signal(uv_signal_t *s, int signum)
{
	struct bench *b = s->data;

	b->stop = true;
}

/* SIGTERM and SIGINT set b->stop, so that a program can end cleanly. */
void signals_start(struct bench *b)
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
void signals_stop(struct bench *b)
{
	unsigned i;

	if (!b->sigs_on)
		return;
	b->sigs_on = false;
	for (i = 0; i < 2; i++)
		uv_close((uv_handle_t *)&b->sigs[i], NULL);
}

/* ---- a tty ------------------------------------------------------------------- */

/* Opens the tty at path and makes it raw. Returns the descriptor (new) or -errno. */
int tty_raw(const char *path)
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
