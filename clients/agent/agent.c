/* SPDX-License-Identifier: MIT */
/*
 * agent.c - the daemon object (agent.h): the channel, the listener, the
 * list of clients, and what happens to the clients when the channel comes
 * and goes.
 *
 * In the order things happen: xmq_agent_start() makes the socket, then finds
 * and opens the hvc; the channel's link handshakes with xenmqd; once it is
 * up, every client's link is started; frames flow through relay.c; when the
 * channel goes down every client is probed and stopped, and every route is
 * forgotten; xmq_agent_close() ends it all.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "clients/agent/agent.h"
#include "clients/agent/client.h"
#include "clients/agent/listener.h"
#include "clients/agent/relay.h"

#define RETRY_MS 1000
#define LOG_INTERVAL_MS 60000

uint64_t xmq__agent_now(const xmq_agent_t *a)
{
	return uv_now(a->loop);
}

bool xmq_agent_channel_up(const xmq_agent_t *a)
{
	return xmq_link_is_up(&a->link);
}

static void maybe_free(xmq_agent_t *a)
{
	void (*cb)(void *data) = a->close_cb;
	void *data = a->close_data;

	if (!a->closing || a->pending > 0 || a->alive > 0)
		return;
	xmq__routes_dispose(&a->routes);
	free(a->hvc);
	free(a->channel);
	free(a->socket);
	free(a);
	if (cb != NULL)
		cb(data);
}

static void on_handle_closed(uv_handle_t *h)
{
	xmq_agent_t *a = h->data;

	a->pending--;
	maybe_free(a);
}

/* ---- clients ------------------------------------------------------------- */

static void detach(xmq_agent_t *a, xmq_agent_client_t *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		a->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	a->nclients--;
}

/* The HELLO_ACK limits of a client: the channel's, and a client's share. */
static void start_client(xmq_agent_t *a, xmq_agent_client_t *c)
{
	uint16_t streams = a->routes.max;

	if (streams > XMQ_AGENT_CLIENT_STREAMS_MAX)
		streams = XMQ_AGENT_CLIENT_STREAMS_MAX;
	/* A HELLO_ACK announces at least one: a channel that allows none
	 * refuses each OPEN instead, with a reason the application logs. */
	if (streams == 0)
		streams = 1;
	xmq__client_start(c, xmq_link_peer_max_frame(&a->link), streams);
}

static void pause_clients(xmq_agent_t *a, bool paused)
{
	xmq_agent_client_t *c;

	a->paused = paused;
	for (c = a->clients; c != NULL; c = c->next)
		xmq_chan_pause(&c->chan, paused);
}

void xmq__agent_client_lost(xmq_agent_t *a, xmq_agent_client_t *c, int err)
{
	char apps[256];

	xmq_log(LOG_NOTICE, "client %u disconnected (%s), apps: %s", c->id,
	        err == UV_EOF ? "end of file" : uv_strerror(err),
	        xmq__client_apps(c, apps, sizeof(apps)));
	/* The application died or dropped its socket without a CLOSE:
	 * its last wills must go out. */
	xmq__relay_end(a, c, MQTT_RC_DISCONNECT_WITH_WILL_MSG);
	detach(a, c);
	xmq__client_close(c);
}

void xmq__agent_client_freed(xmq_agent_t *a)
{
	a->alive--;
	maybe_free(a);
}

static void on_connection(uv_stream_t *server, int status);

static void on_rejected(uv_handle_t *h)
{
	xmq_agent_t *a = h->data;

	a->reject_busy = false;
	if (a->closing) {
		a->pending--;
		maybe_free(a);
		return;
	}
	if (a->reject_again) {
		a->reject_again = false;
		on_connection((uv_stream_t *)&a->listener, 0);
	}
}

/*
 * Take one connection off the listener and close it. libuv watches a
 * listener again only once its pending connection is accepted, so one that
 * is not wanted, or that could not be served, must still be accepted. The
 * handle for it is part of the agent, so that dropping a connection never
 * needs memory; while it is in use, on_connection() defers.
 */
static void reject(xmq_agent_t *a)
{
	if (uv_pipe_init(a->loop, &a->reject, 0) != 0)
		return;
	a->reject.data = a;
	a->reject_busy = true;
	(void)uv_accept((uv_stream_t *)&a->listener, (uv_stream_t *)&a->reject);
	uv_close((uv_handle_t *)&a->reject, on_rejected);
}

static void on_connection(uv_stream_t *server, int status)
{
	xmq_agent_t *a = server->data;
	xmq_agent_client_t *c;
	uint64_t skipped;
	int err;

	if (status < 0) {
		xmq_log(LOG_ERR, "socket %s: cannot accept: %s", a->socket,
		        uv_strerror(status));
		return;
	}
	if (a->reject_busy) {
		/* Handled once the last rejection is done (on_rejected). */
		a->reject_again = true;
		return;
	}
	if (a->nclients >= a->opts.max_clients) {
		a->stats.refused++;
		if (xmq_throttle_pass(&a->refuse_log, xmq__agent_now(a),
		                      LOG_INTERVAL_MS, &skipped))
			xmq_log(LOG_WARNING, "refusing a client: %u clients already "
			        "(--max-clients); %llu more refused since the last "
			        "warning", a->nclients, (unsigned long long)skipped);
		reject(a);
		return;
	}
	a->alive++;
	err = xmq__client_accept(a, server, ++a->next_id, &c);
	if (err != 0) {
		xmq_log(LOG_ERR, "socket %s: cannot accept a client: %s", a->socket,
		        uv_strerror(err));
		/* In case it failed before accepting. */
		reject(a);
		return;
	}
	c->next = a->clients;
	if (a->clients != NULL)
		a->clients->prev = c;
	a->clients = c;
	a->nclients++;
	a->stats.clients++;
	xmq_log(LOG_NOTICE, "client %u connected (%u clients)", c->id, a->nclients);
	if (a->paused)
		xmq_chan_pause(&c->chan, true);
	if (xmq_link_is_up(&a->link))
		start_client(a, c);
}

/* ---- the channel's link ----------------------------------------------------- */

static int chan_link_write(xmq_link_t *l, xmq_wire_t *w)
{
	xmq_agent_t *a = l->data;
	int err = xmq_chan_write(&a->chan, w);

	/* A slow channel must not grow an unbounded queue: stop reading the
	 * clients until it drains (hvc_drain). */
	if (!a->paused && xmq_chan_queued(&a->chan) > a->opts.chan_queue_max) {
		a->stats.pauses++;
		xmq_log(LOG_DEBUG, "channel queue over %zu bytes: pausing clients",
		        a->opts.chan_queue_max);
		pause_clients(a, true);
	}
	return err;
}

static void chan_link_up(xmq_link_t *l)
{
	xmq_agent_t *a = l->data;
	xmq_agent_client_t *c;
	int err;

	err = xmq__routes_reset(&a->routes, l->peer_max_streams);
	if (err != 0) {
		xmq_log(LOG_ERR, "channel: no memory for %u sessions: starting over",
		        (unsigned)l->peer_max_streams);
		xmq_link_restart(l);
		return;
	}
	xmq_log(LOG_NOTICE, "channel up: epoch %08x, frames up to %u bytes, "
	        "%u sessions", (unsigned)l->epoch, (unsigned)xmq_link_peer_max_frame(l),
	        (unsigned)l->peer_max_streams);
	for (c = a->clients; c != NULL; c = c->next)
		start_client(a, c);
}

static const char *down_reason(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return "xenmqd silent for three keepalives";
	case -ECONNRESET:
		return "xenmqd restarted";
	case 0:
		return "hvc closed";
	default:
		return xmq_strerror(err);
	}
}

static void chan_link_down(xmq_link_t *l, int err)
{
	xmq_agent_t *a = l->data;
	xmq_agent_client_t *c;

	xmq_log(LOG_NOTICE, "channel down: %s; %u clients told to wait",
	        down_reason(err), a->nclients);
	xmq__routes_dispose(&a->routes);
	for (c = a->clients; c != NULL; c = c->next)
		xmq__client_stop(c);
}

static void chan_link_frame(xmq_link_t *l, const xmq_frame_t *f)
{
	xmq__relay_down(l->data, f);
}

static void chan_link_dropped(xmq_link_t *l, int err, const xmq_frame_t *f)
{
	if (xmq_log_enabled(LOG_DEBUG))
		xmq_log(LOG_DEBUG, "channel: dropped %s frame: %s",
		        f != NULL ? xmq_type_name(f->hdr.type) : "a", xmq_strerror(err));
}

static void chan_link_closed(xmq_link_t *l)
{
	xmq_agent_t *a = l->data;

	a->pending--;
	maybe_free(a);
}

static const xmq_link_ops_t chan_link_ops = {
	.write = chan_link_write,
	.up = chan_link_up,
	.down = chan_link_down,
	.frame = chan_link_frame,
	.dropped = chan_link_dropped,
};

/* ---- the hvc --------------------------------------------------------------- */

static void hvc_open(xmq_chan_t *ch)
{
	xmq_agent_t *a = ch->data;

	xmq_log(LOG_NOTICE, "hvc %s open: handshaking with xenmqd", a->hvc);
	a->retry_log.last_ms = 0;
	xmq_link_start(&a->link);
}

static void hvc_data(xmq_chan_t *ch, const uint8_t *buf, size_t len)
{
	xmq_agent_t *a = ch->data;

	xmq_link_feed(&a->link, buf, len);
}

static void hvc_lost(xmq_chan_t *ch, int err)
{
	xmq_agent_t *a = ch->data;

	xmq_log(LOG_ERR, "hvc %s: %s: reopening it", a->hvc, uv_strerror(err));
	xmq_link_stop(&a->link);
	/* Its write queue went with it. */
	if (a->paused)
		pause_clients(a, false);
	xmq_chan_close(ch);
}

static void hvc_drain(xmq_chan_t *ch)
{
	xmq_agent_t *a = ch->data;

	if (a->paused) {
		xmq_log(LOG_DEBUG, "channel queue drained: resuming clients");
		pause_clients(a, false);
	}
}

static void hvc_retry(xmq_chan_t *ch, int err)
{
	xmq_agent_t *a = ch->data;
	uint64_t skipped;

	if (xmq_throttle_pass(&a->retry_log, xmq__agent_now(a), LOG_INTERVAL_MS, &skipped))
		xmq_log(LOG_ERR, "cannot open hvc %s: %s: retrying every second", a->hvc,
		        uv_strerror(err));
	xmq_chan_close(ch);
}

static void on_timer(uv_timer_t *t);

/* A chan is released: the agent is closing, or the hvc is to be reopened. */
static void hvc_closed(xmq_chan_t *ch)
{
	xmq_agent_t *a = ch->data;

	a->chan_live = false;
	if (a->closing) {
		a->pending--;
		maybe_free(a);
		return;
	}
	(void)uv_timer_start(&a->timer, on_timer, RETRY_MS, RETRY_MS);
}

static const xmq_chan_ops_t hvc_ops = {
	.open = hvc_open,
	.data = hvc_data,
	.lost = hvc_lost,
	.drain = hvc_drain,
	.retry = hvc_retry,
	.closed = hvc_closed,
};

/*
 * Each attempt gets a fresh chan, closed after a failure, and the agent's
 * timer makes the next one. A chan is never left to retry by itself: in
 * this version of bridge/chan.c its retry timer calls attempt() through a
 * cast, with the timer where the chan should be, and crashes.
 */
static int open_hvc(xmq_agent_t *a)
{
	int err = xmq_chan_init(a->loop, &a->chan, XMQ_CHAN_TTY, a->hvc, &hvc_ops, a);

	if (err != 0) {
		xmq_log(LOG_ERR, "hvc %s: %s", a->hvc, xmq_strerror(err));
		return err;
	}
	a->chan_live = true;
	xmq_chan_start(&a->chan);
	return 0;
}

/* ---- finding the channel by name ------------------------------------------------ */

/* One lookup: 0 once the hvc is open, else the finder's error. */
static int find_channel(xmq_agent_t *a)
{
	char q[XMQ_QUOTE_MAX];
	char *path = NULL;
	int err = a->opts.find(a->channel, &path);

	if (err == 0) {
		xmq_log(LOG_NOTICE, "PV channel %s is %s", xmq_log_quote(q, a->channel),
		        path);
		a->hvc = path;
		return open_hvc(a);
	}
	if (err == -ENOTSUP || err == a->find_err)
		return err;
	a->find_err = err;
	if (err == -ENOENT)
		xmq_log(LOG_NOTICE, "waiting for PV channel %s to appear in XenStore "
		        "(device/console/N/name)", xmq_log_quote(q, a->channel));
	else if (err == -ENODEV)
		xmq_log(LOG_ERR, "cannot reach XenStore to look up PV channel %s (not "
		        "a Xen domain, or no /dev/xen/xenbus): retrying",
		        xmq_log_quote(q, a->channel));
	else
		xmq_log(LOG_ERR, "cannot look up PV channel %s in XenStore: %s: "
		        "retrying", xmq_log_quote(q, a->channel), xmq_strerror(err));
	return err;
}

/* Once a second while there is no chan: look the channel up, or reopen it. */
static void on_timer(uv_timer_t *t)
{
	xmq_agent_t *a = t->data;

	if (!a->chan_live) {
		if (a->hvc == NULL)
			(void)find_channel(a);
		else
			(void)open_hvc(a);
	}
	if (a->chan_live)
		(void)uv_timer_stop(t);
}

/* ---- the object ---------------------------------------------------------------- */

static int dup_opt(const char *s, char **out)
{
	if (s == NULL)
		return 0;
	*out = strdup(s);
	return *out != NULL ? 0 : -ENOMEM;
}

int xmq_agent_new(uv_loop_t *loop, const xmq_agent_opts_t *opts, xmq_agent_t **out)
{
	xmq_agent_opts_t o = *opts;
	xmq_agent_t *a;
	int err;

	if ((o.hvc == NULL) == (o.channel == NULL))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	if (o.socket == NULL)
		o.socket = XMQ_AGENT_SOCKET;
	if (o.mode == 0)
		o.mode = XMQ_AGENT_MODE;
	if (o.keepalive == 0)
		o.keepalive = XMQ_AGENT_KEEPALIVE;
	if (o.max_clients == 0)
		o.max_clients = XMQ_AGENT_MAX_CLIENTS;
	if (o.chan_queue_max == 0)
		o.chan_queue_max = XMQ_AGENT_CHAN_QUEUE_MAX;
	if (o.client_queue_max == 0)
		o.client_queue_max = XMQ_AGENT_CLIENT_QUEUE_MAX;
	if (o.find == NULL)
		o.find = xmq__hvc_find;
	err = dup_opt(o.hvc, &a->hvc);
	if (err == 0)
		err = dup_opt(o.channel, &a->channel);
	if (err == 0)
		err = dup_opt(o.socket, &a->socket);
	if (err != 0)
		goto fail;
	o.hvc = o.channel = o.socket = NULL;  /* a->hvc & co. hold them */
	a->opts = o;
	a->loop = loop;
	xmq__routes_init(&a->routes);
	/* The handles below cannot fail to initialise on a live loop; each
	 * is counted as soon as it exists, so that close releases it. */
	err = xmq_link_init(loop, &a->link, XMQ_LINK_INITIATOR,
	                    &(xmq_link_opts_t){ .keepalive = o.keepalive }, &chan_link_ops, a);
	if (err != 0)
		goto fail;
	a->pending++;
	err = uv_timer_init(loop, &a->timer);
	if (err == 0) {
		a->timer.data = a;
		a->pending++;
		err = uv_pipe_init(loop, &a->listener, 0);
	}
	if (err == 0) {
		a->listener.data = a;
		a->pending++;
		*out = a;
		return 0;
	}
	xmq_agent_close(a, NULL, NULL);
	return err;
fail:
	free(a->hvc);
	free(a->channel);
	free(a->socket);
	free(a);
	return err;
}

int xmq_agent_start(xmq_agent_t *a)
{
	int err;

	if (a->channel != NULL) {
		err = find_channel(a);
		if (err == -ENOTSUP)
			return err;
	}
	err = xmq__listener_open(&a->listener, a->socket, a->opts.mode, a->opts.set_group,
	                         a->opts.group, on_connection);
	if (err != 0) {
		xmq_log(LOG_ERR, "cannot listen on %s: %s", a->socket, xmq_strerror(err));
		return err;
	}
	a->listening = true;
	xmq_log(LOG_NOTICE, "listening on %s (mode %04o)", a->socket, a->opts.mode);
	if (a->hvc == NULL) {
		(void)uv_timer_start(&a->timer, on_timer, RETRY_MS, RETRY_MS);
		return 0;
	}
	return a->chan_live ? 0 : open_hvc(a);
}

void xmq_agent_close(xmq_agent_t *a, void (*cb)(void *data), void *data)
{
	xmq_agent_client_t *c;

	if (a == NULL || a->closing)
		return;
	a->closing = true;
	a->close_cb = cb;
	a->close_data = data;
	/* Every application loses its agent: for xenmqd, as if each died. */
	while ((c = a->clients) != NULL) {
		xmq__relay_end(a, c, MQTT_RC_DISCONNECT_WITH_WILL_MSG);
		detach(a, c);
		xmq__client_close(c);
	}
	xmq__routes_dispose(&a->routes);
	if (a->listening)
		xmq__listener_unlink(a->socket);
	if (a->timer.data == a)
		uv_close((uv_handle_t *)&a->timer, on_handle_closed);
	if (a->listener.data == a)
		uv_close((uv_handle_t *)&a->listener, on_handle_closed);
	if (a->reject_busy)
		a->pending++;
	xmq_link_close(&a->link, chan_link_closed);
	if (a->chan_live) {
		a->pending++;
		xmq_chan_close(&a->chan);
	}
	maybe_free(a);
}
