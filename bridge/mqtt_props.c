/* SPDX-License-Identifier: MIT */
/*
 * mqtt_props.c - a message's MQTT v5 properties to and from libmosquitto's
 * property lists (mqtt_props.h): xmq_props_t into a new mosquitto_property
 * list for a publish or a will, and a received message with its property
 * list into an xmq_message_t.
 *
 * Going out, what xmq_props_t can hold but MQTT cannot carry is refused
 * before the list is built (libmosquitto checks UTF-8 itself). Coming in,
 * what xmq_props_t carries is kept and the rest ignored; libmosquitto's
 * readers return malloc'd copies, kept in an xmq__mqtt_in_props_t until the
 * message has been handed on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "bridge/error.h"
#include "bridge/mqtt_props.h"
#include "topics/topic.h"

int xmq__mqtt_props_to_mosq(const xmq_props_t *p, mosquitto_property **out)
{
	mosquitto_property *list = NULL;
	int rc = MOSQ_ERR_SUCCESS;
	size_t i;

	if (p->user_count > XMQ_USER_PROPS_MAX || (p->user_count > 0 && p->user == NULL))
		return -EINVAL;
	if (p->has_payload_format && p->payload_format > 1)
		return -EINVAL;
	if (p->correlation_data != NULL && p->correlation_len > UINT16_MAX)
		return -EINVAL;
	if (p->response_topic != NULL && !xmq_topic_valid(p->response_topic))
		return -EINVAL;
	for (i = 0; i < p->user_count; i++) {
		if (p->user[i].name == NULL || p->user[i].value == NULL)
			return -EINVAL;
	}

	if (p->has_payload_format)
		rc = mosquitto_property_add_byte(&list, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR,
		                                 p->payload_format);
	if (rc == 0 && p->has_message_expiry)
		rc = mosquitto_property_add_int32(&list, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
		                                  p->message_expiry);
	if (rc == 0 && p->content_type != NULL)
		rc = mosquitto_property_add_string(&list, MQTT_PROP_CONTENT_TYPE, p->content_type);
	if (rc == 0 && p->response_topic != NULL)
		rc = mosquitto_property_add_string(&list, MQTT_PROP_RESPONSE_TOPIC,
		                                   p->response_topic);
	if (rc == 0 && p->correlation_data != NULL)
		rc = mosquitto_property_add_binary(&list, MQTT_PROP_CORRELATION_DATA,
		                                   p->correlation_data,
		                                   (uint16_t)p->correlation_len);
	for (i = 0; rc == 0 && i < p->user_count; i++)
		rc = mosquitto_property_add_string_pair(&list, MQTT_PROP_USER_PROPERTY,
		                                        p->user[i].name, p->user[i].value);
	if (rc != MOSQ_ERR_SUCCESS) {
		mosquitto_property_free_all(&list);
		return xmq__err_from_mosq(rc);
	}
	*out = list;
	return 0;
}

void xmq__mqtt_in_props_dispose(xmq__mqtt_in_props_t *ip)
{
	size_t i;

	for (i = 0; i < ip->nstrs; i++)
		free(ip->strs[i]);
	ip->nstrs = 0;
	free(ip->correlation);
	ip->correlation = NULL;
}

/*
 * props_from_mosq - fill out from list (borrowed), keeping what xmq_props_t
 * carries and ignoring the rest (topic alias, subscription identifiers).
 * Returns how many user properties did not fit.
 */
static unsigned props_from_mosq(const mosquitto_property *list, xmq_props_t *out,
                                xmq__mqtt_in_props_t *ip)
{
	const mosquitto_property *p;
	unsigned dropped = 0;
	char *s, *name, *value;
	void *bin;
	uint16_t len;
	uint32_t u32;
	uint8_t u8;

	memset(out, 0, sizeof(*out));
	for (p = list; p != NULL; p = mosquitto_property_next(p)) {
		int id = mosquitto_property_identifier(p);

		switch (id) {
		case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
			if (mosquitto_property_read_byte(p, id, &u8, false) != NULL) {
				out->has_payload_format = true;
				out->payload_format = u8;
			}
			break;
		case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
			if (mosquitto_property_read_int32(p, id, &u32, false) != NULL) {
				out->has_message_expiry = true;
				out->message_expiry = u32;
			}
			break;
		case MQTT_PROP_CONTENT_TYPE:
		case MQTT_PROP_RESPONSE_TOPIC:
			s = NULL;
			if (mosquitto_property_read_string(p, id, &s, false) == NULL || s == NULL)
				break;
			ip->strs[ip->nstrs++] = s;
			if (id == MQTT_PROP_CONTENT_TYPE)
				out->content_type = s;
			else
				out->response_topic = s;
			break;
		case MQTT_PROP_CORRELATION_DATA:
			bin = NULL;
			len = 0;
			if (ip->correlation != NULL ||
			    mosquitto_property_read_binary(p, id, &bin, &len, false) == NULL ||
			    bin == NULL)
				break;
			ip->correlation = bin;
			out->correlation_data = bin;
			out->correlation_len = len;
			break;
		case MQTT_PROP_USER_PROPERTY:
			if (out->user_count == XMQ_USER_PROPS_MAX) {
				dropped++;
				break;
			}
			name = value = NULL;
			if (mosquitto_property_read_string_pair(p, id, &name, &value, false) == NULL ||
			    name == NULL || value == NULL) {
				free(name);
				free(value);
				break;
			}
			ip->strs[ip->nstrs++] = name;
			ip->strs[ip->nstrs++] = value;
			ip->user[out->user_count].name = name;
			ip->user[out->user_count].value = value;
			out->user_count++;
			break;
		default:
			break;
		}
	}
	out->user = out->user_count > 0 ? ip->user : NULL;
	return dropped;
}

unsigned xmq__mqtt_message_from_mosq(const struct mosquitto_message *mm,
                                     const mosquitto_property *props, xmq_message_t *msg,
                                     xmq__mqtt_in_props_t *ip)
{
	memset(msg, 0, sizeof(*msg));
	ip->nstrs = 0;
	ip->correlation = NULL;
	msg->topic = mm->topic;
	msg->payload = mm->payload;
	msg->payload_len = mm->payloadlen > 0 ? (size_t)mm->payloadlen : 0;
	msg->qos = (uint8_t)mm->qos;
	msg->retain = mm->retain;
	return props_from_mosq(props, &msg->props, ip);
}
