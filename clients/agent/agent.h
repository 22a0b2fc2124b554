/* SPDX-License-Identifier: MIT */
/*
 * agent.h - xenmq-agent, the daemon object: it owns the domain's PV channel
 * (the hvc tty), listens on a Unix socket for the domain's applications,
 * and carries each application's sessions over the one channel.
 *
 * Towards xenmqd the agent is the channel's initiator; towards each local
 * client it is the responder, speaking the same protocol (docs/protocol.md)
 * that libxenmq would speak on an hvc itself. The channel link drives all
 * the rest: a client's link runs only while the channel is up, so that a
 * client's HELLO is answered only when its sessions can really be opened;
 * when the channel goes down, every client is told at once (a probe HELLO)
 * and its sessions are forgotten, to be replayed by the library once the
 * channel is back.
 *
 * Between the two sides, frames are moved as they are (xmq_encode_rewrap)
 * under the other link's header and stream id: route.h keeps the mapping.
 * The agent bounds what it queues: when the channel's write queue is long,
 * it stops reading every client; when a client's is, QoS 0 messages to it
 * are dropped (QoS 1 ones are bounded by the receive_max windows).
 */
#ifndef XMQ_AGENT_AGENT_H
#define XMQ_AGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "bridge/chan.h"
#include "bridge/link.h"
#include "clients/agent/hvc.h"
#include "bridge/log.h"
#include "clients/agent/route.h"
#include "xenmq.h"

#define XMQ_AGENT_SOCKET "/run/xenmq/agent.sock"
#define XMQ_AGENT_MODE 0660
#define XMQ_AGENT_KEEPALIVE 10
#define XMQ_AGENT_MAX_CLIENTS 64
#define XMQ_AGENT_CHAN_QUEUE_MAX (64 * 1024)
#define XMQ_AGENT_CLIENT_QUEUE_MAX (256 * 1024)
/* Sessions one client may have open at once. */
#define XMQ_AGENT_CLIENT_STREAMS_MAX 64

typedef struct xmq_agent_client xmq_agent_client_t;

/* What the agent is told to do. Zero fields take the defaults given. */
typedef struct xmq_agent_opts {
	const char *hvc;          /* the channel's tty, or NULL to look up ... */
	const char *channel;      /* ... the PV channel of this name */
	const char *socket;       /* NULL: XMQ_AGENT_SOCKET */
	unsigned mode;            /* the socket file's mode; 0: XMQ_AGENT_MODE */
	bool set_group;           /* give the socket file to group: */
	gid_t group;
	uint16_t keepalive;       /* channel keepalive, seconds; 0: 10 */
	unsigned max_clients;     /* 0: XMQ_AGENT_MAX_CLIENTS */
	size_t chan_queue_max;    /* bytes queued to the channel before clients
	                             are paused; 0: XMQ_AGENT_CHAN_QUEUE_MAX */
	size_t client_queue_max;  /* bytes queued to a client before QoS 0
	                             messages to it are dropped;
	                             0: XMQ_AGENT_CLIENT_QUEUE_MAX */
	xmq_hvc_find_fn find;     /* channel lookup; NULL: xmq__hvc_find */
} xmq_agent_opts_t;

/* Counters, for the log and the tests. */
typedef struct xmq_agent_stats {
	uint64_t clients;        /* accepted */
	uint64_t refused;        /* over max_clients */
	uint64_t unknown;        /* frames for a stream with no route */
	uint64_t bad;            /* frames of a type that cannot travel that way */
	uint64_t oversize;       /* frames larger than their receiver accepts */
	uint64_t qos0_dropped;   /* QoS 0 PUBLISH not sent to a slow client */
	uint64_t pauses;         /* times the clients were paused for the channel */
	uint64_t open_refused;   /* OPENs the agent refused itself */
} xmq_agent_stats_t;

typedef struct xmq_agent {
	uv_loop_t *loop;
	xmq_agent_opts_t opts;    /* strings point at the copies below */
	char *hvc;                /* the tty, once known */
	char *channel;
	char *socket;

	xmq_chan_t chan;          /* the hvc, once its path is known */
	bool chan_live;           /* chan initialised, not yet released */
	xmq_link_t link;          /* initiator, over chan */
	uv_timer_t timer;         /* looks for the channel, reopens the hvc */
	int find_err;             /* last lookup error, to log changes only */
	uv_pipe_t listener;
	bool listening;
	uv_pipe_t reject;         /* takes a connection off the backlog to drop it */
	bool reject_busy;         /* reject is closing */
	bool reject_again;        /* another one to drop once it is closed */

	xmq_routes_t routes;
	xmq_agent_client_t *clients;  /* open clients, most recent first */
	unsigned nclients;            /* in the list */
	unsigned alive;               /* clients not yet freed, closing ones too */
	unsigned next_id;             /* client serial number, for logs */
	bool paused;                  /* clients paused for the channel */

	xmq_agent_stats_t stats;
	xmq_throttle_t refuse_log;
	xmq_throttle_t unknown_log;
	xmq_throttle_t oversize_log;
	xmq_throttle_t retry_log;

	bool closing;
	unsigned pending;             /* own handles still closing */
	void (*close_cb)(void *data);
	void *close_data;
} xmq_agent_t;

/*
 * xmq_agent_new - an agent on loop, not started. opts is borrowed (copied,
 * strings included); exactly one of opts->hvc and opts->channel must be set.
 * On success *out is new: end it with xmq_agent_close(). Returns 0, -EINVAL,
 * -ENOMEM or a libuv error; *out is left unchanged on failure.
 */
int xmq_agent_new(uv_loop_t *loop, const xmq_agent_opts_t *opts,
                  xmq_agent_t **out) XMQ_WUR;

/*
 * xmq_agent_start - create and listen on the socket (listener.h), then open
 * the hvc, or look the channel up (now, then once a second until it
 * appears). Returns 0, the listener's errors, or -ENOTSUP when a channel
 * name was given to a build without Xen support. After a failure, close the
 * agent; nothing else.
 */
int xmq_agent_start(xmq_agent_t *a) XMQ_WUR;

/*
 * xmq_agent_close - tell xenmqd that every session ends (CLOSE 0x04: the
 * applications lose their agent, as if they had died), drop every client,
 * remove the socket file, release everything, free a, then call cb(data)
 * (cb may be NULL). Idempotent. The CLOSE frames are written on a best-effort
 * basis: what the tty does not take at once is lost, and xenmqd's keepalive
 * ends the sessions then.
 */
void xmq_agent_close(xmq_agent_t *a, void (*cb)(void *data), void *data);

/* Whether the channel link is up. */
bool xmq_agent_channel_up(const xmq_agent_t *a);

/* ---- for the agent's own files (client.c, relay.c) -------------------- */

/* Milliseconds of the loop's clock, for throttles. */
uint64_t xmq__agent_now(const xmq_agent_t *a);

/* A client is gone (EOF or error: err): its sessions end with a will. */
void xmq__agent_client_lost(xmq_agent_t *a, xmq_agent_client_t *c, int err);

/* A client's memory was freed. */
void xmq__agent_client_freed(xmq_agent_t *a);

#endif /* XMQ_AGENT_AGENT_H */
