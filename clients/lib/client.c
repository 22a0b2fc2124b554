/* SPDX-License-Identifier: MIT */
/*
 * client.c - the public API of libxenmq (include/xenmq.h) and the part of a
 * session that is the same on every transport: what the application asked
 * for (subscriptions, QoS 1 messages, a last will), checked here before it
 * goes anywhere, and kept here until the peer has acknowledged it, across
 * as many reconnections as it takes.
 *
 * A transport (transport_link.c, transport_mqtt.c) tells the core when a
 * session opens; the core then restores what the peer lacks, in the order a
 * broker expects: the subscriptions (when the session was not kept), the
 * requests still unanswered, then the QoS 1 queue within the peer's receive
 * window, and only then tells the application.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "bridge/error.h"
#include "bridge/link.h"
#include "bridge/message.h"
#include "clients/lib/client.h"
#include "clients/lib/queue.h"
#include "clients/lib/subs.h"
#include "topics/topic.h"

#define KEEPALIVE_DEFAULT 10
#define RECEIVE_MAX_DEFAULT 16
#define MAX_QUEUED_DEFAULT 1000
#define STR_MAX 65535

struct xmq_client {
	uv_loop_t *loop;
	xmq_client_cb_t cb;
	void *data;
	char *url;
	char app[XMQ_APP_MAX + 1];
	xmq_message_t *will;      /* a copy, or NULL */
	xmq__params_t params;     /* what transports see; points into the above */
	size_t max_queued;
	xmq__url_t where;
	const xmq__transport_ops_t *ops;
	void *t;                  /* the transport */
	bool started;
	bool open;                /* a session is open now */
	bool closing;
	uint64_t answered_ms;     /* the peer's last answer, or the session's opening */
	xmq__queue_t queue;
	xmq__subs_t subs;
	uint16_t last_id;
	unsigned ids_used;
	uint8_t ids[65536 / 8];   /* packet ids in use, shared by all requests */
	void (*close_cb)(void *data);
};

/* ---- packet ids ------------------------------------------------------------ */

static bool id_used(const xmq_client_t *c, uint16_t id)
{
	return c->ids[id / 8] & (1u << (id % 8));
}

/* The next free id after the last one given, 1..65535; 0 if none is free. */
static uint16_t id_alloc(xmq_client_t *c)
{
	uint16_t id = c->last_id;

	if (c->ids_used >= 65535)
		return 0;
	do
		id = id == 65535 ? 1 : (uint16_t)(id + 1);
	while (id_used(c, id));
	c->ids[id / 8] |= (uint8_t)(1u << (id % 8));
	c->ids_used++;
	c->last_id = id;
	return id;
}

static void id_free(xmq_client_t *c, uint16_t id)
{
	if (id != 0 && id_used(c, id)) {
		c->ids[id / 8] &= (uint8_t)~(1u << (id % 8));
		c->ids_used--;
	}
}

/* ---- checking what the application hands over ---------------------------- */

static bool str_ok(const char *s)
{
	size_t len;

	if (s == NULL)
		return false;
	len = strlen(s);
	return len <= STR_MAX && mosquitto_validate_utf8(s, (int)len) == MOSQ_ERR_SUCCESS;
}

static int check_props(const xmq_props_t *p)
{
	size_t i;

	if (p->has_payload_format && p->payload_format > 1)
		return -EINVAL;
	if (p->content_type != NULL && !str_ok(p->content_type))
		return -EINVAL;
	if (p->response_topic != NULL &&
	    (!str_ok(p->response_topic) || !xmq_topic_valid(p->response_topic)))
		return -EINVAL;
	if (p->correlation_len > STR_MAX ||
	    (p->correlation_data == NULL && p->correlation_len > 0))
		return -EINVAL;
	if (p->user_count > XMQ_USER_PROPS_MAX || (p->user == NULL && p->user_count > 0))
		return -EINVAL;
	for (i = 0; i < p->user_count; i++) {
		if (!str_ok(p->user[i].name) || !str_ok(p->user[i].value))
			return -EINVAL;
	}
	return 0;
}

static int check_message(const xmq_message_t *m)
{
	if (m == NULL)
		return -EINVAL;
	if (!xmq_topic_valid(m->topic))
		return XMQ_ETOPIC;
	if (m->qos > 1 || (m->payload == NULL && m->payload_len > 0))
		return -EINVAL;
	return check_props(&m->props);
}

/* Subscription options: QoS 0 or 1, retain handling 0..2, no reserved bit. */
static bool options_ok(uint8_t o)
{
	return (o & 0x03) <= 1 && ((o >> 4) & 0x03) <= 2 && (o & 0xc0) == 0;
}

static int check_filters(int count, const char *const *filters)
{
	int i;

	if (count < 1 || count > XMQ_FILTERS_MAX || filters == NULL)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		if (!xmq_filter_valid(filters[i]))
			return XMQ_EFILTER;
	}
	return 0;
}

/* ---- sending -------------------------------------------------------------- */

static int send_request(xmq_client_t *c, xmq__req_t *r);

/* A request that can never be sent is answered here, as the peer would. */
static void fail_request(xmq_client_t *c, xmq__req_t *r, int err)
{
	uint8_t reasons[XMQ_FILTERS_MAX];
	bool sub = r->sub;
	bool internal = r->internal;
	uint16_t mid = r->mid;
	int count = r->count;

	memset(reasons, xmq__reason_from_err(err), sizeof(reasons));
	xmq__subs_answered(&c->subs, r, count, reasons);
	id_free(c, mid);
	if (internal)
		return;
	if (sub && c->cb.subscribe != NULL)
		c->cb.subscribe(c, mid, count, reasons);
	else if (!sub && c->cb.unsubscribe != NULL)
		c->cb.unsubscribe(c, mid, count, reasons);
}

/* 0: sent. -ENOTCONN, -ENOMEM: r waits as it was. Another error: r was
 * answered here as refused, and freed. */
static int send_request(xmq_client_t *c, xmq__req_t *r)
{
	int tid = 0;
	int err;

	if (r->sub)
		err = c->ops->subscribe(c->t, r->mid, r->count, r->filter, r->options, &tid);
	else
		err = c->ops->unsubscribe(c->t, r->mid, r->count, r->filter, &tid);
	if (err == 0) {
		r->sent = true;
		r->tid = tid;
		r->sent_ms = uv_now(c->loop);
	} else if (err != -ENOTCONN && err != -ENOMEM) {
		fail_request(c, r, err);
	}
	return err;
}

/* Every request not sent in this session, oldest first. */
static void send_requests(xmq_client_t *c)
{
	xmq__req_t *r = c->subs.head;
	xmq__req_t *next;

	while (r != NULL && c->open && !c->closing) {
		next = r->next;
		if (!r->sent)
			(void)send_request(c, r);
		r = next;
	}
}

/* A new session lacks the subscriptions no pending request will bring. */
static void resubscribe(xmq_client_t *c)
{
	const char *filters[XMQ_FILTERS_MAX];
	xmq__req_t *r;
	uint8_t options = 0;
	uint16_t mid;
	int n;

	while ((n = xmq__subs_unrequested(&c->subs, filters, &options)) > 0) {
		mid = id_alloc(c);
		if (mid == 0)
			return;
		if (xmq__subs_request(&c->subs, true, mid, n, filters, options, true, &r) != 0) {
			id_free(c, mid);
			return;
		}
	}
}

/* A queued message the transport can never carry: refuse it, as a broker. */
static void drop_entry(xmq_client_t *c, xmq__qent_t *e, int err)
{
	uint16_t mid = e->mid;

	xmq__queue_remove(&c->queue, e);
	id_free(c, mid);
	if (c->cb.publish != NULL)
		c->cb.publish(c, mid, xmq__reason_from_err(err));
}

/* Hand QoS 1 messages to the transport while the peer's window allows. */
static void pump(xmq_client_t *c)
{
	xmq__qent_t *e;
	unsigned window;
	int tid;
	int err;

	while (c->open && !c->closing && (e = xmq__queue_next(&c->queue)) != NULL) {
		window = c->ops->window(c->t);
		if (window != 0 && c->queue.inflight >= window)
			return;
		e->msg->dup = e->tried;
		tid = 0;
		err = c->ops->publish(c->t, e->msg, e->mid, &tid);
		if (err == -ENOTCONN || err == -ENOMEM)
			return;
		if (err != 0) {
			drop_entry(c, e, err);
			continue;
		}
		xmq__queue_mark_sent(&c->queue, tid, uv_now(c->loop));
	}
}

/*
 * Within a session, what the peer did not answer in time goes again. Each
 * loop stops at its first failure, and what comes after waits for the next
 * call: a failure may have run a callback of the application, which may have
 * changed the lists under the loop.
 */
bool xmq__client_resend(xmq_client_t *c)
{
	uint64_t now = uv_now(c->loop);
	xmq__req_t *r = c->subs.head;
	xmq__req_t *next;
	xmq__qent_t *e;
	int tid;
	int err;

	while (r != NULL && c->open && !c->closing) {
		next = r->next;
		if ((!r->sent || xmq_resend_due(now, r->sent_ms, c->answered_ms)) &&
		    send_request(c, r) != 0)
			break;
		r = next;
	}
	for (e = c->queue.head; e != NULL && e != c->queue.unsent && c->open && !c->closing;
	     e = e->next) {
		if (!xmq_resend_due(now, e->sent_ms, c->answered_ms))
			continue;
		e->msg->dup = true;
		tid = 0;
		err = c->ops->publish(c->t, e->msg, e->mid, &tid);
		if (err == -ENOTCONN || err == -ENOMEM)
			break;
		if (err != 0) {
			/* It went before, so this cannot happen unless the
			 * peer's limits changed: refused, as a broker would. */
			drop_entry(c, e, err);
			break;
		}
		e->tid = tid;
		e->sent_ms = now;
	}
	return xmq__client_waiting(c);
}

bool xmq__client_waiting(const xmq_client_t *c)
{
	return c->open && !c->closing && (c->queue.inflight > 0 || c->subs.head != NULL);
}

/* ---- from the transports ------------------------------------------------ */

void xmq__client_opened(xmq_client_t *c, bool session_present)
{
	if (c->closing)
		return;
	c->open = true;
	c->answered_ms = uv_now(c->loop);
	if (!session_present)
		resubscribe(c);
	send_requests(c);
	pump(c);
	if (c->open && !c->closing && c->cb.connect != NULL)
		c->cb.connect(c, 0, session_present);
}

void xmq__client_refused(xmq_client_t *c, int reason)
{
	if (!c->closing && c->cb.connect != NULL)
		c->cb.connect(c, reason, false);
}

void xmq__client_lost(xmq_client_t *c, int reason)
{
	bool was_open = c->open;

	if (c->closing)
		return;
	c->open = false;
	if (!c->ops->keeps_inflight)
		xmq__queue_unsend_all(&c->queue);
	xmq__subs_unsend_all(&c->subs);
	if (was_open && c->cb.disconnect != NULL)
		c->cb.disconnect(c, reason);
}

void xmq__client_message(xmq_client_t *c, const xmq_message_t *m)
{
	if (!c->closing && c->cb.message != NULL)
		c->cb.message(c, m);
}

void xmq__client_acked(xmq_client_t *c, int tid, int reason)
{
	xmq__qent_t *e;
	uint16_t mid;

	if (c->closing)
		return;
	c->answered_ms = uv_now(c->loop);
	e = xmq__queue_find_sent(&c->queue, tid);
	if (e == NULL)
		return;
	mid = e->mid;
	xmq__queue_remove(&c->queue, e);
	id_free(c, mid);
	if (c->cb.publish != NULL)
		c->cb.publish(c, mid, reason);
	pump(c);
}

void xmq__client_answered(xmq_client_t *c, bool sub, int tid, int count,
                          const uint8_t *reasons)
{
	static const uint8_t accepted[XMQ_FILTERS_MAX];
	xmq__req_t *r;
	bool internal;
	uint16_t mid;

	if (c->closing)
		return;
	c->answered_ms = uv_now(c->loop);
	r = xmq__subs_find_sent(&c->subs, sub, tid);
	if (r == NULL)
		return;
	if (count == 0 && reasons == NULL) {
		count = r->count;
		reasons = accepted;
	}
	mid = r->mid;
	internal = r->internal;
	xmq__subs_answered(&c->subs, r, count, reasons);
	id_free(c, mid);
	if (internal)
		return;
	if (sub && c->cb.subscribe != NULL)
		c->cb.subscribe(c, mid, count, reasons);
	else if (!sub && c->cb.unsubscribe != NULL)
		c->cb.unsubscribe(c, mid, count, reasons);
}

bool xmq__client_closing(const xmq_client_t *c)
{
	return c->closing;
}

static void client_free(xmq_client_t *c)
{
	xmq__queue_dispose(&c->queue);
	xmq__subs_dispose(&c->subs);
	xmq__url_dispose(&c->where);
	free(c->will);
	free(c->url);
	free(c);
}

void xmq__client_closed(xmq_client_t *c)
{
	void (*cb)(void *data) = c->close_cb;
	void *data = c->data;

	client_free(c);
	if (cb != NULL)
		cb(data);
}

/* ---- the API ------------------------------------------------------------ */

XMQ_EXPORT int xmq_client_new(uv_loop_t *loop, const xmq_client_opts_t *opts,
                              const xmq_client_cb_t *cb, void *data,
                              xmq_client_t **out)
{
	static const xmq_client_opts_t no_opts;
	xmq_client_t *c = NULL;
	const char *url;
	int err;

	if (loop == NULL || out == NULL)
		return -EINVAL;
	if (opts == NULL)
		opts = &no_opts;
	if (opts->app != NULL && !xmq_app_name_valid(opts->app))
		return -EINVAL;
	if (opts->will != NULL && check_message(opts->will) != 0)
		return -EINVAL;
	/* An empty XENMQ_URL counts as unset, as shells make it easy to
	 * have; an empty opts->url is a mistake like any other. */
	url = opts->url;
	if (url == NULL) {
		url = getenv("XENMQ_URL");
		if (url == NULL || url[0] == '\0')
			url = XMQ_DEFAULT_URL;
	}

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	xmq__queue_init(&c->queue);
	xmq__subs_init(&c->subs);
	err = xmq__url_parse(url, &c->where);
	if (err != 0)
		goto out;
	err = -ENOMEM;
	c->url = strdup(url);
	if (c->url == NULL)
		goto out;
	if (opts->will != NULL) {
		c->will = xmq_message_copy(opts->will);
		if (c->will == NULL)
			goto out;
		c->will->dup = false;
	}
	if (opts->app != NULL)
		snprintf(c->app, sizeof(c->app), "%s", opts->app);
	else
		snprintf(c->app, sizeof(c->app), "xenmq-%ld", (long)getpid());
	c->loop = loop;
	if (cb != NULL)
		c->cb = *cb;
	c->data = data;
	c->max_queued = opts->max_queued != 0 ? opts->max_queued : MAX_QUEUED_DEFAULT;
	c->params.app = c->app;
	c->params.session_expiry = opts->session_expiry;
	c->params.resume = opts->resume;
	c->params.keepalive = opts->keepalive != 0 ? opts->keepalive : KEEPALIVE_DEFAULT;
	c->params.receive_max = opts->receive_max != 0 ? opts->receive_max : RECEIVE_MAX_DEFAULT;
	c->params.will = c->will;
	c->ops = c->where.ops;
	err = c->ops->create(loop, c, &c->where, &c->params, &c->t);
	if (err != 0)
		goto out;
	*out = c;
	c = NULL;
out:
	if (c != NULL)
		client_free(c);
	return err;
}

XMQ_EXPORT int xmq_client_start(xmq_client_t *c)
{
	int err;

	if (c->closing)
		return -EINVAL;
	if (c->started)
		return -EALREADY;
	err = c->ops->start(c->t);
	if (err == 0)
		c->started = true;
	return err;
}

XMQ_EXPORT int xmq_client_publish(xmq_client_t *c, const xmq_message_t *msg, int *mid)
{
	xmq_message_t m;
	uint16_t id;
	int tid = 0;
	int err;

	err = check_message(msg);
	if (err != 0)
		return err;
	if (c->closing)
		return -ENOTCONN;
	err = c->ops->check_size(c->t, msg);
	if (err != 0)
		return err;
	if (msg->qos == 0) {
		if (!c->open)
			return -ENOTCONN;
		m = *msg;
		m.dup = false;
		err = c->ops->publish(c->t, &m, 0, &tid);
		if (err == 0 && mid != NULL)
			*mid = 0;
		return err;
	}
	if (c->queue.count >= c->max_queued)
		return -ENOBUFS;
	id = id_alloc(c);
	if (id == 0)
		return -ENOBUFS;
	err = xmq__queue_push(&c->queue, msg, id);
	if (err != 0) {
		id_free(c, id);
		return err;
	}
	if (mid != NULL)
		*mid = id;
	pump(c);
	return 0;
}

/* SUBSCRIBE and UNSUBSCRIBE. */
static int request(xmq_client_t *c, bool sub, int count, const char *const *filters,
                   uint8_t options, int *mid)
{
	xmq__req_t *r;
	uint16_t id;
	int err;

	err = check_filters(count, filters);
	if (err != 0)
		return err;
	if (sub && !options_ok(options))
		return -EINVAL;
	if (c->closing)
		return -ENOTCONN;
	id = id_alloc(c);
	if (id == 0)
		return -ENOBUFS;
	err = xmq__subs_request(&c->subs, sub, id, count, filters, options, false, &r);
	if (err != 0) {
		id_free(c, id);
		return err;
	}
	if (mid != NULL)
		*mid = id;
	if (c->open)
		(void)send_request(c, r);
	return 0;
}

XMQ_EXPORT int xmq_client_subscribe(xmq_client_t *c, int count, const char *const *filters,
                                    uint8_t options, int *mid)
{
	return request(c, true, count, filters, options, mid);
}

XMQ_EXPORT int xmq_client_unsubscribe(xmq_client_t *c, int count,
                                      const char *const *filters, int *mid)
{
	return request(c, false, count, filters, 0, mid);
}

XMQ_EXPORT size_t xmq_client_queued(const xmq_client_t *c)
{
	return c->queue.count;
}

XMQ_EXPORT bool xmq_client_connected(const xmq_client_t *c)
{
	return c->open && !c->closing;
}

XMQ_EXPORT void *xmq_client_data(const xmq_client_t *c)
{
	return c->data;
}

XMQ_EXPORT const char *xmq_client_url(const xmq_client_t *c)
{
	return c->url;
}

XMQ_EXPORT void xmq_client_close(xmq_client_t *c, void (*cb)(void *data))
{
	if (c == NULL || c->closing)
		return;
	c->closing = true;
	c->open = false;
	c->close_cb = cb;
	c->ops->close(c->t);
}
