/* SPDX-License-Identifier: MIT */
/*
 * chanemu.h - what the files of chanemu share: its limits, its options, the state of the one
 * channel it emulates (struct chan), and the functions one file lends another.
 *
 * main.c says what the emulator does and runs it; socket.c is the Dom0 side, pty.c the DomU
 * side, pump.c moves the bytes between them at their pace, and control.c reads the control
 * FIFO.
 */
#ifndef XMQ_TESTS_TOOLS_CHANEMU_H
#define XMQ_TESTS_TOOLS_CHANEMU_H

#include <stddef.h>
#include <stdint.h>
#include <termios.h>

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

/* ---- main.c ------------------------------------------------------------------------------ */

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- pump.c ------------------------------------------------------------------------------ */

size_t dir_room(const struct dir *d);
size_t dir_clear(struct dir *d);
struct watch *watch_new(struct chan *c, int fd, uv_poll_cb cb);
void watch_set(struct watch *w, int events);
void watch_close(struct watch **wp);
void chan_pump(struct chan *c);

/* ---- socket.c: the Dom0 side -------------------------------------------------------------- */

void client_drop(struct chan *c, const char *why);
int chan_create(struct chan *c);
void chan_remove(struct chan *c);

/* ---- pty.c: the DomU side ----------------------------------------------------------------- */

int pty_open(struct chan *c);
void pty_failed(struct chan *c, const char *op, const char *why);

/* ---- control.c ---------------------------------------------------------------------------- */

int parse_u64(const char *s, uint64_t max, uint64_t *out);
int ctl_open(struct chan *c, const char *path);

#endif
