/* SPDX-License-Identifier: MIT */
/*
 * relay.h - moving session frames between the channel and the agent's
 * clients: a client's frames go up on its sessions' channel streams, the
 * channel's frames go down to the client that owns the stream, each under
 * the header of the link it leaves on (xmq_link_hdr, xmq_encode_rewrap).
 *
 * The agent reads only what it must to route: an OPEN (for the app name,
 * and to refuse what xenmqd would refuse anyway), the reason of an OPEN_ACK
 * and a CLOSE, and the flags byte of a PUBLISH when a QoS 0 message may have
 * to be dropped. Each call does a bounded amount of work (one frame, one
 * write), so that one busy client cannot hold the loop.
 */
#ifndef XMQ_AGENT_RELAY_H
#define XMQ_AGENT_RELAY_H

#include <stdint.h>

#include "bridge/frame.h"
#include "clients/agent/agent.h"
#include "clients/agent/client.h"

/* A session frame from client c (borrowed for the call). */
void xmq__relay_up(xmq_agent_t *a, xmq_agent_client_t *c, const xmq_frame_t *f);

/* A session frame from the channel (borrowed for the call). */
void xmq__relay_down(xmq_agent_t *a, const xmq_frame_t *f);

/*
 * xmq__relay_end - end every session of c on the channel with a CLOSE of
 * reason (0x00 normal, 0x04 with will) and forget its routes. The CLOSEs are
 * dropped silently when the channel is down: its sessions are gone already.
 */
void xmq__relay_end(xmq_agent_t *a, xmq_agent_client_t *c, uint8_t reason);

#endif /* XMQ_AGENT_RELAY_H */
