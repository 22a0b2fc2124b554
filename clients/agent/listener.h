/* SPDX-License-Identifier: MIT */
/*
 * listener.h - the agent's Unix socket, made the way a daemon's socket
 * should be: its directory created if missing, a stale socket left by a
 * crash replaced but a live one (another agent) or any other file never
 * touched, and its permissions set before anyone can connect.
 */
#ifndef XMQ_AGENT_LISTENER_H
#define XMQ_AGENT_LISTENER_H

#include <stdbool.h>
#include <sys/types.h>

#include <uv.h>

#include "xenmq.h"

/*
 * xmq__listener_open - bind pipe (initialised, borrowed) to path (borrowed),
 * give the socket file mode and, when set_group, group gid, then listen
 * with cb. The parent directory is created (mode 0755) if missing.
 *
 * Returns 0 or a negative error:
 *   -ENAMETOOLONG  path does not fit a sockaddr_un
 *   -EEXIST        path is something other than a socket: left alone
 *   -EADDRINUSE    a live process listens on path (another agent)
 *   or the errno of mkdir, unlink, bind, chmod, chown, listen.
 * On failure the socket file is removed if this call created it.
 */
int xmq__listener_open(uv_pipe_t *pipe, const char *path, unsigned mode,
                       bool set_group, gid_t gid, uv_connection_cb cb) XMQ_WUR;

/* Remove the socket file at path if it is a socket (on shutdown). */
void xmq__listener_unlink(const char *path);

#endif /* XMQ_AGENT_LISTENER_H */
