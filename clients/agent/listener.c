/* SPDX-License-Identifier: MIT */
/*
 * listener.c - creating the agent's socket file safely (listener.h).
 *
 * The socket is bound under a umask that leaves it to its owner alone, then
 * opened up with chmod and chown, and only then listened on: a client that
 * the final mode would refuse never gets a moment to connect.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clients/agent/listener.h"

#define DIR_MODE 0755
#define BACKLOG 128

/* mkdir -p of the directory holding path. */
static int make_parent(const char *path)
{
	char dir[PATH_MAX];
	struct stat st;
	size_t len;
	char *slash = strrchr(path, '/');
	char *p;
	char c;

	if (slash == NULL || slash == path)
		return 0;
	len = (size_t)(slash - path);
	if (len >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, len);
	dir[len] = '\0';
	if (stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	for (p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (mkdir(dir, DIR_MODE) != 0 && errno != EEXIST)
			return -errno;
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

/* Whether a process accepts connections on the socket at path. */
static int probe_live(const char *path)
{
	struct sockaddr_un sa;
	int fd;
	int err;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);  /* length checked by the caller */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
	close(fd);
	if (err == 0 || err == -EAGAIN)
		return -EADDRINUSE;
	return err == -ECONNREFUSED || err == -ENOENT ? 0 : err;
}

/* Make room at path: nothing there, or a dead socket that is removed. */
static int clear_stale(const char *path)
{
	struct stat st;
	int err;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	err = probe_live(path);
	if (err != 0)
		return err;
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int xmq__listener_open(uv_pipe_t *pipe, const char *path, unsigned mode,
                       bool set_group, gid_t gid, uv_connection_cb cb)
{
	struct sockaddr_un sa;
	mode_t old_mask;
	bool bound = false;
	int err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	err = make_parent(path);
	if (err != 0)
		goto out;
	err = clear_stale(path);
	if (err != 0)
		goto out;
	old_mask = umask(0177);
	err = uv_pipe_bind(pipe, path);
	umask(old_mask);
	if (err != 0)
		goto out;
	bound = true;
	if (chmod(path, (mode_t)mode) != 0) {
		err = -errno;
		goto out;
	}
	if (set_group && chown(path, (uid_t)-1, gid) != 0) {
		err = -errno;
		goto out;
	}
	err = uv_listen((uv_stream_t *)pipe, BACKLOG, cb);
out:
	if (err != 0 && bound)
		(void)unlink(path);
	return err;
}

void xmq__listener_unlink(const char *path)
{
	struct stat st;

	if (path != NULL && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(path);
}
