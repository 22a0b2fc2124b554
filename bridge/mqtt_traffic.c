/* SPDX-License-Identifier: MIT */
/*
 * mqtt_traffic.c - what an xmq_mqtt_t session carries: the last will sent
 * with every CONNECT, the owner's requests (publish, subscribe,
 * unsubscribe) and libmosquitto's callbacks that answer them, the messages
 * the broker sends, and those held back while the owner has paused
 * (xmq_mqtt_pause(), xmq_mqtt_flush()). The connection they travel on is
 * mqtt.c's.
 *
 * Facts about libmosquitto 2.0.11 this file relies on, each checked by
 * tests/unit/test_mqtt.c:
 * - on_publish also runs when a QoS 0 message has been written; a bitmap
 *   of the QoS 1 message ids awaiting PUBACK tells the two apart.
 * - A QoS 1 publish made while disconnected returns MOSQ_ERR_NO_CONN but
 *   stays queued and is sent after the next CONNACK.
 */
#include <errno.h>
#include <stdlib.h>

#include <mosquitto.h>

#include "bridge/error.h"
#include "bridge/message.h"
#include "bridge/mqtt.h"
#include "bridge/mqtt_internal.h"
#include "bridge/mqtt_props.h"
#include "topics/topic.h"

#define MQTT_PAYLOAD_MAX 268435455u  /* largest MQTT remaining length */
#define MID_COUNT 65536

/* A message read by libmosquitto while we were paused. */
struct held {
	struct held *next;
	xmq_message_t *msg;  /* xmq_message_copy() */
};

/* ---- the will ------------------------------------------------------------ */

/* Hand the will (m->will) to libmosquitto, which copies it. */
int xmq__mqtt_set_will(xmq_mqtt_t *m)
{
	const xmq_message_t *w = m->will;
	mosquitto_property *props = NULL;
	int err, rc;

	err = xmq__mqtt_props_to_mosq(&w->props, &props);
	if (err < 0)
		return err;
	/* On success libmosquitto keeps props; on failure they are ours. */
	rc = mosquitto_will_set_v5(m->mosq, w->topic, (int)w->payload_len, w->payload, w->qos,
	                           w->retain, props);
	if (rc != MOSQ_ERR_SUCCESS) {
		mosquitto_property_free_all(&props);
		return xmq__err_from_mosq(rc);
	}
	m->will_on = true;
	return 0;
}

/* Keep a copy of the will w (borrowed) in m, once it is known to be valid. */
int xmq__mqtt_keep_will(xmq_mqtt_t *m, const xmq_message_t *w)
{
	if (w->topic == NULL || !xmq_topic_valid(w->topic))
		return XMQ_ETOPIC;
	if (w->qos > 1 || (w->payload_len > 0 && w->payload == NULL))
		return -EINVAL;
	if (w->payload_len > MQTT_PAYLOAD_MAX)
		return -EMSGSIZE;
	if (w->props.user_count > XMQ_USER_PROPS_MAX)
		return -EINVAL;
	m->will = xmq_message_copy(w);
	if (m->will == NULL)
		return -ENOMEM;
	/* Checks the properties too. */
	return xmq__mqtt_set_will(m);
}

/* ---- QoS 1 ids awaiting PUBACK ------------------------------------------ */

static void mid_set(xmq_mqtt_t *m, int mid)
{
	m->qos1_mids[mid >> 3] |= (uint8_t)(1u << (mid & 7));
}

/* Whether mid was a QoS 1 publish of ours; forgets it. */
static bool mid_take(xmq_mqtt_t *m, int mid)
{
	uint8_t bit = (uint8_t)(1u << (mid & 7));

	if (m->qos1_mids == NULL || mid < 0 || mid >= MID_COUNT)
		return false;
	if (!(m->qos1_mids[mid >> 3] & bit))
		return false;
	m->qos1_mids[mid >> 3] &= (uint8_t)~bit;
	return true;
}

/* ---- requests ----------------------------------------------------------- */

int xmq_mqtt_publish(xmq_mqtt_t *m, const xmq_message_t *msg, int *mid)
{
	mosquitto_property *props = NULL;
	int local_mid = 0;
	int err, rc;

	if (m->state >= S_CLOSING)
		return -ESHUTDOWN;
	if (msg == NULL || msg->qos > 1 || (msg->payload_len > 0 && msg->payload == NULL))
		return -EINVAL;
	if (msg->topic == NULL || !xmq_topic_valid(msg->topic))
		return XMQ_ETOPIC;
	if (msg->payload_len > MQTT_PAYLOAD_MAX)
		return -EMSGSIZE;
	if (msg->qos == 0 && m->state != S_OPEN)
		return -ENOTCONN;
	if (msg->qos == 1 && m->qos1_mids == NULL) {
		m->qos1_mids = calloc(MID_COUNT / 8, 1);
		if (m->qos1_mids == NULL)
			return -ENOMEM;
	}
	err = xmq__mqtt_props_to_mosq(&msg->props, &props);
	if (err < 0)
		return err;
	rc = mosquitto_publish_v5(m->mosq, &local_mid, msg->topic, (int)msg->payload_len,
	                          msg->payload, msg->qos, msg->retain, props);
	mosquitto_property_free_all(&props);
	/* These come after libmosquitto has queued a QoS 1 message: it will
	 * be sent after the next CONNACK. */
	if (msg->qos == 1 && (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST ||
	                      rc == MOSQ_ERR_ERRNO))
		rc = MOSQ_ERR_SUCCESS;
	if (rc != MOSQ_ERR_SUCCESS)
		return xmq__err_from_mosq(rc);
	if (msg->qos == 1)
		mid_set(m, local_mid);
	m->stats.msgs_out++;
	xmq__mqtt_update_poll(m);
	if (mid != NULL)
		*mid = local_mid;
	return 0;
}

static int check_filters(int count, const char *const *filters)
{
	int i;

	if (count < 1 || count > XMQ_FILTERS_MAX || filters == NULL)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		if (filters[i] == NULL || !xmq_filter_valid(filters[i]))
			return XMQ_EFILTER;
	}
	return 0;
}

int xmq_mqtt_subscribe(xmq_mqtt_t *m, int count, const char *const *filters,
                       uint8_t options, int *mid)
{
	int qos = options & 0x03;
	int local_mid = 0;
	int err, rc;

	if (m->state >= S_CLOSING)
		return -ESHUTDOWN;
	err = check_filters(count, filters);
	if (err < 0)
		return err;
	if (qos > 1 || (options & 0xc0) != 0 || (options & 0x30) == 0x30)
		return -EINVAL;
	if (m->state != S_OPEN)
		return -ENOTCONN;
	rc = mosquitto_subscribe_multiple(m->mosq, &local_mid, count, (char *const *)filters,
	                                  qos, options & ~0x03, NULL);
	if (rc != MOSQ_ERR_SUCCESS)
		return xmq__err_from_mosq(rc);
	xmq__mqtt_update_poll(m);
	if (mid != NULL)
		*mid = local_mid;
	return 0;
}

int xmq_mqtt_unsubscribe(xmq_mqtt_t *m, int count, const char *const *filters, int *mid)
{
	int local_mid = 0;
	int err, rc;

	if (m->state >= S_CLOSING)
		return -ESHUTDOWN;
	err = check_filters(count, filters);
	if (err < 0)
		return err;
	if (m->state != S_OPEN)
		return -ENOTCONN;
	rc = mosquitto_unsubscribe_multiple(m->mosq, &local_mid, count, (char *const *)filters,
	                                    NULL);
	if (rc != MOSQ_ERR_SUCCESS)
		return xmq__err_from_mosq(rc);
	xmq__mqtt_update_poll(m);
	if (mid != NULL)
		*mid = local_mid;
	return 0;
}

/* ---- libmosquitto's callbacks ------------------------------------------- */

static void hold(xmq_mqtt_t *m, const xmq_message_t *msg)
{
	struct held *h = malloc(sizeof(*h));

	if (h == NULL)
		return;
	h->msg = xmq_message_copy(msg);
	if (h->msg == NULL) {
		free(h);
		return;
	}
	h->next = NULL;
	*m->held_tail = h;
	m->held_tail = &h->next;
}

void xmq__mqtt_on_message(struct mosquitto *mosq, void *obj,
                          const struct mosquitto_message *mm, const mosquitto_property *props)
{
	xmq_mqtt_t *m = obj;
	xmq__mqtt_in_props_t ip;
	xmq_message_t msg;

	if (m->state != S_OPEN)
		return;  /* an old session's, being discarded */
	m->stats.msgs_in++;
	m->stats.props_dropped += xmq__mqtt_message_from_mosq(mm, props, &msg, &ip);
	/* Held messages go first, to keep the order. */
	if (m->paused || m->held_head != NULL)
		hold(m, &msg);
	else if (m->cb.message != NULL)
		m->cb.message(m, &msg);
	xmq__mqtt_in_props_dispose(&ip);
}

void xmq__mqtt_on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                          const mosquitto_property *props)
{
	xmq_mqtt_t *m = obj;

	if (!mid_take(m, mid) || m->state >= S_CLOSING)
		return;
	if (m->cb.publish != NULL)
		m->cb.publish(m, mid, reason);
}

void xmq__mqtt_on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count,
                            const int *granted, const mosquitto_property *props)
{
	xmq_mqtt_t *m = obj;
	uint8_t reasons[XMQ_FILTERS_MAX];
	int i;

	if (m->state >= S_CLOSING || m->cb.subscribe == NULL)
		return;
	if (count > XMQ_FILTERS_MAX)
		count = XMQ_FILTERS_MAX;
	if (count < 0)
		count = 0;
	for (i = 0; i < count; i++)
		reasons[i] = (uint8_t)granted[i];
	m->cb.subscribe(m, mid, count, reasons);
}

void xmq__mqtt_on_unsubscribe(struct mosquitto *mosq, void *obj, int mid,
                              const mosquitto_property *props)
{
	xmq_mqtt_t *m = obj;

	if (m->state < S_CLOSING && m->cb.unsubscribe != NULL)
		m->cb.unsubscribe(m, mid, 0, NULL);
}

/* ---- held messages ------------------------------------------------------ */

/* Hand over what was held, in order; stop at a pause unless flushing. */
static void deliver_held(xmq_mqtt_t *m, bool flush)
{
	struct held *h;

	while (m->held_head != NULL && (flush || !m->paused) && m->state < S_CLOSING) {
		h = m->held_head;
		m->held_head = h->next;
		if (m->held_head == NULL)
			m->held_tail = &m->held_head;
		if (m->cb.message != NULL)
			m->cb.message(m, h->msg);
		free(h->msg);
		free(h);
	}
}

static void on_kick(uv_timer_t *t)
{
	deliver_held(t->data, false);
}

void xmq_mqtt_flush(xmq_mqtt_t *m)
{
	deliver_held(m, true);
}

void xmq__mqtt_held_free(xmq_mqtt_t *m)
{
	struct held *h;

	while ((h = m->held_head) != NULL) {
		m->held_head = h->next;
		free(h->msg);
		free(h);
	}
	m->held_tail = &m->held_head;
}

void xmq_mqtt_pause(xmq_mqtt_t *m, bool paused)
{
	if (m->state >= S_CLOSING || m->paused == paused)
		return;
	m->paused = paused;
	xmq__mqtt_update_poll(m);
	if (paused)
		return;
	if (m->held_head != NULL)
		uv_timer_start(&m->kick, on_kick, 0, 0);
	if (m->state == S_WAIT && m->started && !uv_is_active((uv_handle_t *)&m->timer))
		uv_timer_start(&m->timer, xmq__mqtt_on_tick, 0, 0);
}
