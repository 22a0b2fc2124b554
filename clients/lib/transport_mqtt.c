/* SPDX-License-Identifier: MIT */
/*
 * transport_mqtt.c - the mqtt:// and mqtt+unix: transports: a client that
 * talks MQTT v5 to a Mosquitto broker itself, through bridge/mqtt.h
 * (libmosquitto on libuv), e.g. in Dom0 or on a developer's machine.
 *
 * The client id is the application name. libmosquitto keeps the QoS 1
 * messages it was handed across reconnections and sends them again by
 * itself (keeps_inflight), and it keeps to the broker's receive maximum, so
 * the core hands messages over as soon as a session is open; the core still
 * counts them until they are acknowledged, so that xmq_client_queued() means
 * the same here as on the other transports.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/mqtt.h"
#include "clients/lib/client.h"

/* MQTT's largest packet (a variable byte integer of four bytes). */
#define MQTT_PACKET_MAX 268435455u
/* bridge/mqtt.c takes no keepalive under 5 s. */
#define KEEPALIVE_MIN 5

typedef struct mt {
	xmq_client_t *c;
	const xmq__params_t *p;
	xmq_mqtt_t *m;
	bool open;
	bool notify;  /* tell the core once released */
} mt_t;

static void on_connect(xmq_mqtt_t *m, int reason, bool session_present)
{
	mt_t *t = xmq_mqtt_data(m);

	if (reason != 0) {
		xmq__client_refused(t->c, reason);
		return;
	}
	t->open = true;
	xmq__client_opened(t->c, session_present);
}

static void on_disconnect(xmq_mqtt_t *m, int err, int reason)
{
	mt_t *t = xmq_mqtt_data(m);

	t->open = false;
	xmq__client_lost(t->c, reason);
}

static void on_message(xmq_mqtt_t *m, const xmq_message_t *msg)
{
	mt_t *t = xmq_mqtt_data(m);

	xmq__client_message(t->c, msg);
}

static void on_publish(xmq_mqtt_t *m, int mid, int reason)
{
	mt_t *t = xmq_mqtt_data(m);

	xmq__client_acked(t->c, mid, reason);
}

static void on_subscribe(xmq_mqtt_t *m, int mid, int count, const uint8_t *reasons)
{
	mt_t *t = xmq_mqtt_data(m);

	xmq__client_answered(t->c, true, mid, count, reasons);
}

static void on_unsubscribe(xmq_mqtt_t *m, int mid, int count, const uint8_t *reasons)
{
	mt_t *t = xmq_mqtt_data(m);

	xmq__client_answered(t->c, false, mid, count, reasons);
}

static void on_closed(xmq_mqtt_t *m)
{
	mt_t *t = xmq_mqtt_data(m);
	xmq_client_t *c = t->c;
	bool notify = t->notify;

	free(t);
	if (notify)
		xmq__client_closed(c);
}

static const xmq_mqtt_cb_t mqtt_cb = {
	.connect = on_connect,
	.disconnect = on_disconnect,
	.message = on_message,
	.publish = on_publish,
	.subscribe = on_subscribe,
	.unsubscribe = on_unsubscribe,
	.closed = on_closed,
};

static int mt_create(uv_loop_t *loop, xmq_client_t *c, const xmq__url_t *url,
                     const xmq__params_t *p, void **out)
{
	xmq_mqtt_opts_t o;
	char addr[300];
	mt_t *t;
	int err;

	if (url->kind == XMQ__ADDR_TCP) {
		/* An IPv6 address gets its brackets back. */
		bool v6 = strchr(url->host, ':') != NULL;

		if ((size_t)snprintf(addr, sizeof(addr), "%s%s%s:%u", v6 ? "[" : "", url->host,
		                     v6 ? "]" : "", url->port) >= sizeof(addr))
			return XMQ_EURL;
	} else if ((size_t)snprintf(addr, sizeof(addr), "%s", url->path) >= sizeof(addr)) {
		return XMQ_EURL;
	}
	memset(&o, 0, sizeof(o));
	o.address = addr;
	o.client_id = p->app;
	o.clean_start = !p->resume;
	o.session_expiry = p->session_expiry;
	o.keepalive = p->keepalive < KEEPALIVE_MIN ? KEEPALIVE_MIN : p->keepalive;
	o.receive_max = p->receive_max;
	o.will = p->will;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->c = c;
	t->p = p;
	err = xmq_mqtt_new(loop, &o, &mqtt_cb, t, &t->m);
	if (err != 0) {
		free(t);
		return err == XMQ_ETOPIC || err == -ENAMETOOLONG ? -EINVAL : err;
	}
	*out = t;
	return 0;
}

static int mt_start(void *tp)
{
	mt_t *t = tp;

	return xmq_mqtt_start(t->m);
}

static int mt_check_size(void *tp, const xmq_message_t *m)
{
	return m->payload_len > MQTT_PACKET_MAX - strlen(m->topic) ? -EMSGSIZE : 0;
}

static int mt_publish(void *tp, const xmq_message_t *m, uint16_t mid, int *tid)
{
	mt_t *t = tp;

	if (!t->open)
		return -ENOTCONN;
	return xmq_mqtt_publish(t->m, m, tid);
}

static int mt_subscribe(void *tp, uint16_t mid, int count, const char *const *filters,
                        uint8_t options, int *tid)
{
	mt_t *t = tp;

	if (!t->open)
		return -ENOTCONN;
	return xmq_mqtt_subscribe(t->m, count, filters, options, tid);
}

static int mt_unsubscribe(void *tp, uint16_t mid, int count, const char *const *filters,
                          int *tid)
{
	mt_t *t = tp;

	if (!t->open)
		return -ENOTCONN;
	return xmq_mqtt_unsubscribe(t->m, count, filters, tid);
}

static unsigned mt_window(void *tp)
{
	return 0;
}

static void mt_close(void *tp)
{
	mt_t *t = tp;

	t->notify = true;
	t->open = false;
	xmq_mqtt_close(t->m, 0, t->p->session_expiry);
}

const xmq__transport_ops_t xmq__transport_mqtt = {
	.create = mt_create,
	.start = mt_start,
	.check_size = mt_check_size,
	.publish = mt_publish,
	.subscribe = mt_subscribe,
	.unsubscribe = mt_unsubscribe,
	.window = mt_window,
	.close = mt_close,
	.keeps_inflight = true,
};
