/* SPDX-License-Identifier: MIT */
/*
 * mosquitto_fixture.h - a real mosquitto for unit tests, on a Unix socket in
 * a temporary directory of its own, that a test can stop and start again on
 * the same socket (and, with "persistence true", the same database) to play
 * a broker restart.
 *
 * Header-only so that any tests/unit/test_*.c can include it. Usage:
 *
 *	xmq_mosq_fixture_t f;
 *	assert_int_equal(xmq_mosq_fixture_init(&f, "persistence true\n"), 0);
 *	assert_int_equal(xmq_mosq_fixture_start(&f), 0);   // f.sock is ready
 *	...
 *	xmq_mosq_fixture_dispose(&f);   // stops it, removes the directory
 *
 * start() returns once the socket accepts connections (waiting at most
 * FIXTURE_WAIT_MS), stop() once the process has exited (SIGTERM, which
 * makes mosquitto write its database). Failures print mosquitto's log to
 * stderr. Functions return 0 or -errno. With XMQ_FIXTURE_KEEP set in the
 * environment, dispose() leaves the directory (and the log) in place.
 */
#ifndef XMQ_TESTS_MOSQUITTO_FIXTURE_H
#define XMQ_TESTS_MOSQUITTO_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define FIXTURE_WAIT_MS 10000

typedef struct xmq_mosq_fixture {
	char dir[64];     /* the temporary directory */
	char sock[100];   /* DIR/mosquitto.sock: the broker's address */
	char conf[128];
	char log[128];
	pid_t pid;        /* -1 while stopped */
} xmq_mosq_fixture_t;

static inline void xmq_mosq_fixture_nap(void)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static inline void xmq_mosq_fixture_print_log(const xmq_mosq_fixture_t *f)
{
	char line[512];
	FILE *fp = fopen(f->log, "r");

	if (fp == NULL)
		return;
	fprintf(stderr, "---- %s\n", f->log);
	while (fgets(line, sizeof(line), fp) != NULL)
		fputs(line, stderr);
	fclose(fp);
}

/*
 * xmq_mosq_fixture_init - make the directory and the configuration: a Unix
 * listener, anonymous access, the database in the directory, then the lines
 * of extra (may be NULL). Does not start mosquitto.
 */
static inline int xmq_mosq_fixture_init(xmq_mosq_fixture_t *f, const char *extra)
{
	FILE *fp;

	memset(f, 0, sizeof(*f));
	f->pid = -1;
	strcpy(f->dir, "/tmp/xmq-mosq-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -errno;
	snprintf(f->sock, sizeof(f->sock), "%s/mosquitto.sock", f->dir);
	snprintf(f->conf, sizeof(f->conf), "%s/mosquitto.conf", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/mosquitto.log", f->dir);
	fp = fopen(f->conf, "w");
	if (fp == NULL)
		return -errno;
	fprintf(fp, "listener 0 %s\nallow_anonymous true\n", f->sock);
	fprintf(fp, "persistence_location %s/\nlog_dest file %s\n", f->dir, f->log);
	fprintf(fp, "log_type all\n");
	/* As root mosquitto would switch to its own user, who cannot write
	 * here. */
	if (geteuid() == 0)
		fprintf(fp, "user root\n");
	if (extra != NULL)
		fputs(extra, fp);
	if (fclose(fp) != 0)
		return -errno;
	return 0;
}

static inline bool xmq_mosq_fixture_ready(const xmq_mosq_fixture_t *f)
{
	struct sockaddr_un sa;
	bool ok;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* xmq_mosq_fixture_start - run mosquitto; return once it accepts. */
static inline int xmq_mosq_fixture_start(xmq_mosq_fixture_t *f)
{
	int waited, status, fd;
	pid_t pid;

	if (f->pid > 0)
		return -EALREADY;
	unlink(f->sock);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
#ifdef __linux__
		/* Do not outlive a test that crashes or is killed. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("mosquitto", "mosquitto", "-c", f->conf, (char *)NULL);
		_exit(127);
	}
	f->pid = pid;
	for (waited = 0; waited < FIXTURE_WAIT_MS; waited += 10) {
		if (xmq_mosq_fixture_ready(f))
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			f->pid = -1;
			fprintf(stderr, "mosquitto exited (status %d)\n", status);
			xmq_mosq_fixture_print_log(f);
			return -ECHILD;
		}
		xmq_mosq_fixture_nap();
	}
	xmq_mosq_fixture_print_log(f);
	return -ETIMEDOUT;
}

/* xmq_mosq_fixture_stop - SIGTERM, then SIGKILL if it lingers; wait for it. */
static inline int xmq_mosq_fixture_stop(xmq_mosq_fixture_t *f)
{
	int waited, status;

	if (f->pid <= 0)
		return 0;
	kill(f->pid, SIGTERM);
	for (waited = 0; waited < FIXTURE_WAIT_MS; waited += 10) {
		if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
			f->pid = -1;
			return 0;
		}
		xmq_mosq_fixture_nap();
	}
	kill(f->pid, SIGKILL);
	waitpid(f->pid, &status, 0);
	f->pid = -1;
	return -ETIMEDOUT;
}

static inline int xmq_mosq_fixture_restart(xmq_mosq_fixture_t *f)
{
	int err = xmq_mosq_fixture_stop(f);

	return err < 0 ? err : xmq_mosq_fixture_start(f);
}

/* xmq_mosq_fixture_dispose - stop it and remove the directory. Idempotent. */
static inline void xmq_mosq_fixture_dispose(xmq_mosq_fixture_t *f)
{
	char path[sizeof(f->dir) + 1 + sizeof(((struct dirent *)NULL)->d_name)];
	struct dirent *e;
	DIR *d;

	xmq_mosq_fixture_stop(f);
	if (f->dir[0] == '\0')
		return;
	if (getenv("XMQ_FIXTURE_KEEP") != NULL) {
		fprintf(stderr, "kept %s\n", f->dir);
		f->dir[0] = '\0';
		return;
	}
	d = opendir(f->dir);
	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(f->dir);
	f->dir[0] = '\0';
}

#endif /* XMQ_TESTS_MOSQUITTO_FIXTURE_H */
