/* SPDX-License-Identifier: MIT */
/*
 * mqtt_props.h - a message's MQTT v5 properties (xmq_props_t) to and from
 * libmosquitto's mosquitto_property lists, for bridge/mqtt.c and
 * bridge/mqtt_traffic.c.
 */
#ifndef XMQ_BRIDGE_MQTT_PROPS_H
#define XMQ_BRIDGE_MQTT_PROPS_H

#include <stddef.h>

#include <mosquitto.h>

#include "xenmq.h"

/*
 * What a received message's properties were read into: libmosquitto's
 * readers return malloc'd copies, freed by xmq__mqtt_in_props_dispose() once
 * the message callback has returned.
 */
typedef struct xmq__mqtt_in_props {
	xmq_user_prop_t user[XMQ_USER_PROPS_MAX];
	char *strs[2 * XMQ_USER_PROPS_MAX + 2];
	size_t nstrs;
	void *correlation;
} xmq__mqtt_in_props_t;

/*
 * xmq__mqtt_props_to_mosq - p (borrowed) as a new libmosquitto list in *out
 * (NULL if p is empty); free it with mosquitto_property_free_all(). Returns
 * 0, -EINVAL (a value MQTT cannot carry), or libmosquitto's refusal through
 * xmq__err_from_mosq() (-ENOMEM; -EILSEQ, a string that is not UTF-8). *out
 * is left unchanged on failure.
 */
int xmq__mqtt_props_to_mosq(const xmq_props_t *p, mosquitto_property **out);

/*
 * xmq__mqtt_message_from_mosq - mm and its property list props (both
 * borrowed) as *msg, which points into mm and into *ip (the caller's memory,
 * not initialised): valid until mm goes and xmq__mqtt_in_props_dispose(ip).
 * Returns how many user properties did not fit in XMQ_USER_PROPS_MAX.
 */
unsigned xmq__mqtt_message_from_mosq(const struct mosquitto_message *mm,
                                     const mosquitto_property *props, xmq_message_t *msg,
                                     xmq__mqtt_in_props_t *ip);

/* Free what a received message's properties were read into. Idempotent. */
void xmq__mqtt_in_props_dispose(xmq__mqtt_in_props_t *ip);

#endif /* XMQ_BRIDGE_MQTT_PROPS_H */
