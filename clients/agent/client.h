/* SPDX-License-Identifier: MIT */
/*
 * client.h - one local application connected to the agent's socket: the
 * accepted socket, the responder link that libxenmq handshakes with, and
 * the routes of the sessions it opened.
 *
 * A client's link is started only while the channel is up (the agent calls
 * xmq__client_start/stop as the channel comes and goes): a stopped link
 * ignores what it reads, so the library's HELLOs go unanswered and it
 * waits. A client frees itself once both its handles are closed, then tells
 * the agent (xmq__agent_client_freed).
 */
#ifndef XMQ_AGENT_CLIENT_H
#define XMQ_AGENT_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "bridge/chan.h"
#include "bridge/link.h"
#include "clients/agent/agent.h"
#include "bridge/log.h"
#include "clients/agent/route.h"

struct xmq_agent_client {
	xmq_agent_t *agent;        /* borrowed; outlives the client */
	xmq_chan_t chan;           /* the accepted socket */
	xmq_link_t link;           /* responder */
	xmq_route_list_t routes;   /* its open sessions */
	xmq_agent_client_t *prev;  /* in the agent's list */
	xmq_agent_client_t *next;
	unsigned id;               /* serial number, for logs */
	char last_app[XMQ_APP_MAX + 1];  /* the app it opened last, for logs */
	uint64_t qos0_dropped;
	xmq_throttle_t drop_log;
	xmq_throttle_t refuse_log;
	bool closing;
	unsigned pending;          /* handles still closing */
};

/*
 * xmq__client_accept - accept one connection of server into a new client
 * with serial number id; its link is stopped. On success *out is new: end
 * it with xmq__client_close(). On failure (a libuv error is returned) the
 * half-made client still frees itself, and calls xmq__agent_client_freed()
 * once done, like any other.
 */
int xmq__client_accept(xmq_agent_t *a, uv_stream_t *server, unsigned id,
                       xmq_agent_client_t **out) XMQ_WUR;

/*
 * xmq__client_start - the channel is up: answer this client from now on,
 * announcing max_frame and max_streams in HELLO_ACK. The link probes the
 * client, which then handshakes (again) and replays its sessions.
 */
void xmq__client_start(xmq_agent_client_t *c, uint32_t max_frame, uint16_t max_streams);

/*
 * xmq__client_stop - the channel is down: tell the client at once with a
 * probe (its sessions are gone), then ignore it until xmq__client_start().
 */
void xmq__client_stop(xmq_agent_client_t *c);

/* xmq__client_close - close both handles; the client frees itself. Idempotent. */
void xmq__client_close(xmq_agent_client_t *c);

/*
 * xmq__client_apps - the quoted app names of c's sessions, comma-separated,
 * in buf (cut with "..." when too long); with none open, "none" and the app
 * it opened last, if any. Returns buf.
 */
const char *xmq__client_apps(const xmq_agent_client_t *c, char *buf, size_t size);

#endif /* XMQ_AGENT_CLIENT_H */
