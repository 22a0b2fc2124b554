/* SPDX-License-Identifier: MIT */
/*
 * topic.c - name checks. libmosquitto already knows MQTT's rules for topic
 * names and filters (UTF-8, wildcards in whole levels only, lengths), so they
 * are called rather than rewritten.
 */
#include <string.h>

#include <mosquitto.h>

#include "topics/topic.h"

bool xmq_topic_valid(const char *topic)
{
	size_t len;

	if (topic == NULL || topic[0] == '\0')
		return false;
	len = strlen(topic);
	if (len > 65535)
		return false;
	return mosquitto_pub_topic_check2(topic, len) == MOSQ_ERR_SUCCESS &&
	       mosquitto_validate_utf8(topic, (int)len) == MOSQ_ERR_SUCCESS;
}

bool xmq_filter_valid(const char *filter)
{
	size_t len;

	if (filter == NULL || filter[0] == '\0')
		return false;
	len = strlen(filter);
	if (len > 65535)
		return false;
	return mosquitto_sub_topic_check2(filter, len) == MOSQ_ERR_SUCCESS &&
	       mosquitto_validate_utf8(filter, (int)len) == MOSQ_ERR_SUCCESS;
}

static bool name_valid(const char *name, size_t max)
{
	size_t len;

	if (name == NULL)
		return false;
	len = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
	return len > 0 && len <= max && name[len] == '\0';
}

bool xmq_app_name_valid(const char *app)
{
	return name_valid(app, 64);
}

bool xmq_domain_name_valid(const char *name)
{
	return name_valid(name, XMQ_DOMAIN_MAX);
}

bool xmq_topic_matches(const char *filter, const char *topic)
{
	bool result = false;

	if (!xmq_filter_valid(filter) || !xmq_topic_valid(topic))
		return false;
	if (mosquitto_topic_matches_sub(filter, topic, &result) != MOSQ_ERR_SUCCESS)
		return false;
	return result;
}
