/* SPDX-License-Identifier: MIT */
/*
 * client.c - one local application (client.h): its socket and its link,
 * glued to the relay, and its teardown.
 *
 * The steps of a client's life, in order: accepted with a stopped link;
 * started when the channel is up (a probe, then the library's handshake);
 * frames relayed while both links are up; stopped and restarted as the
 * channel goes and comes; closed on EOF, when both handles are released it
 * frees itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "clients/agent/client.h"
#include "clients/agent/relay.h"

static void release(xmq_agent_client_t *c)
{
	xmq_agent_t *a = c->agent;

	if (--c->pending > 0)
		return;
	free(c);
	xmq__agent_client_freed(a);
}

/* ---- the link ------------------------------------------------------------ */

static int link_write(xmq_link_t *l, xmq_wire_t *w)
{
	xmq_agent_client_t *c = l->data;

	return xmq_chan_write(&c->chan, w);
}

static void link_up(xmq_link_t *l)
{
	xmq_agent_client_t *c = l->data;

	xmq_log(LOG_DEBUG, "client %u: handshake done, epoch %08x", c->id,
	        (unsigned)l->epoch);
}

static void link_down(xmq_link_t *l, int err)
{
	xmq_agent_client_t *c = l->data;

	/* err 0: the agent stopped the link because the channel went down,
	 * and the routes are gone already. Otherwise the client restarted its
	 * handshake (its sessions of the old epoch are over: it replays
	 * them) or fell silent (a hung application: its wills go out, as
	 * when an MQTT keepalive expires). */
	if (err == 0)
		return;
	xmq_log(LOG_INFO, "client %u: link down: %s", c->id, xmq_strerror(err));
	xmq__relay_end(c->agent, c, err == -ETIMEDOUT ? MQTT_RC_DISCONNECT_WITH_WILL_MSG
	                                                : MQTT_RC_NORMAL_DISCONNECTION);
}

static void link_frame(xmq_link_t *l, const xmq_frame_t *f)
{
	xmq_agent_client_t *c = l->data;

	xmq__relay_up(c->agent, c, f);
}

static void link_dropped(xmq_link_t *l, int err, const xmq_frame_t *f)
{
	xmq_agent_client_t *c = l->data;

	if (!xmq_log_enabled(LOG_DEBUG))
		return;
	xmq_log(LOG_DEBUG, "client %u: dropped %s frame: %s", c->id,
	        f != NULL ? xmq_type_name(f->hdr.type) : "a", xmq_strerror(err));
}

static void link_closed(xmq_link_t *l)
{
	release(l->data);
}

static const xmq_link_ops_t link_ops = {
	.write = link_write,
	.up = link_up,
	.down = link_down,
	.frame = link_frame,
	.dropped = link_dropped,
};

/* ---- the socket ---------------------------------------------------------- */

static void chan_data(xmq_chan_t *ch, const uint8_t *buf, size_t len)
{
	xmq_agent_client_t *c = ch->data;

	xmq_link_feed(&c->link, buf, len);
}

static void chan_lost(xmq_chan_t *ch, int err)
{
	xmq_agent_client_t *c = ch->data;

	xmq__agent_client_lost(c->agent, c, err);
}

static void chan_closed(xmq_chan_t *ch)
{
	release(ch->data);
}

static const xmq_chan_ops_t chan_ops = {
	.data = chan_data,
	.lost = chan_lost,
	.closed = chan_closed,
};

/* For a chan whose accept failed: it closes its handles by itself and only
 * the memory remains to be freed once they are released. */
static const xmq_chan_ops_t failed_chan_ops = {
	.closed = chan_closed,
};

int xmq__client_accept(xmq_agent_t *a, uv_stream_t *server, unsigned id,
                       xmq_agent_client_t **out)
{
	xmq_agent_client_t *c;
	int err;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		err = UV_ENOMEM;
		goto fail;
	}
	c->agent = a;
	c->id = id;
	err = xmq_link_init(a->loop, &c->link, XMQ_LINK_RESPONDER, NULL, &link_ops, c);
	if (err != 0)
		goto fail;
	c->pending = 1;
	err = xmq_chan_accept(server, &c->chan, &chan_ops, c);
	if (err != 0) {
		/* The chan may still be releasing handles that live in c:
		 * wait for them before freeing it. */
		c->closing = true;
		if (c->chan.closing && c->chan.pending > 0) {
			c->chan.ops = &failed_chan_ops;
			c->pending++;
		}
		xmq_link_close(&c->link, link_closed);
		return err;
	}
	c->pending = 2;
	*out = c;
	return 0;
fail:
	free(c);
	xmq__agent_client_freed(a);
	return err;
}

void xmq__client_start(xmq_agent_client_t *c, uint32_t max_frame, uint16_t max_streams)
{
	if (c->closing)
		return;
	/* What HELLO_ACK announces: the channel's limits, so that the
	 * library never builds a frame or a session xenmqd would refuse. */
	c->link.opts.max_frame = max_frame < XMQ_MAX_FRAME_MIN ? XMQ_MAX_FRAME_MIN : max_frame;
	c->link.opts.max_streams = max_streams;
	xmq_link_start(&c->link);
}

void xmq__client_stop(xmq_agent_client_t *c)
{
	if (c->closing)
		return;
	xmq_link_restart(&c->link);
	xmq_link_stop(&c->link);
}

void xmq__client_close(xmq_agent_client_t *c)
{
	if (c->closing)
		return;
	c->closing = true;
	xmq_link_close(&c->link, link_closed);
	xmq_chan_close(&c->chan);
}

const char *xmq__client_apps(const xmq_agent_client_t *c, char *buf, size_t size)
{
	char q[XMQ_QUOTE_MAX];
	const xmq_route_t *r;
	size_t used = 0;
	int n;

	if (c->routes.head == NULL) {
		if (c->last_app[0] != '\0')
			snprintf(buf, size, "none open (last %s)", xmq_log_quote(q, c->last_app));
		else
			snprintf(buf, size, "none");
		return buf;
	}
	buf[0] = '\0';
	for (r = c->routes.head; r != NULL; r = r->next) {
		n = snprintf(buf + used, size - used, "%s%s", used > 0 ? ", " : "",
		             xmq_log_quote(q, r->app));
		if (n < 0 || (size_t)n >= size - used) {
			/* Cut: end with "..." where it fits. */
			if (size >= 4)
				memcpy(buf + size - 4, "...", 4);
			break;
		}
		used += (size_t)n;
	}
	return buf;
}
