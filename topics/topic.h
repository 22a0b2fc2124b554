/* SPDX-License-Identifier: MIT */
/*
 * topic.h - what a valid name is: MQTT topic names and filters, application
 * and domain names, and topic matching.
 *
 * The MQTT rules are libmosquitto's own checks; this module only adds the
 * lengths and the character sets that xenmq puts on top of them.
 */
#ifndef XMQ_TOPICS_TOPIC_H
#define XMQ_TOPICS_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

/* Longest domain name: the same character set as application names. */
#define XMQ_DOMAIN_MAX 64

/* A topic name one may publish to: not empty, valid UTF-8, no wildcard. */
bool xmq_topic_valid(const char *topic);

/* A topic filter one may subscribe to. */
bool xmq_filter_valid(const char *filter);

/* [A-Za-z0-9_.-]{1,64}: safe in a client id, a topic level and a path. */
bool xmq_app_name_valid(const char *app);
bool xmq_domain_name_valid(const char *name);

/* Whether topic (a name) matches filter; false if either is invalid. */
bool xmq_topic_matches(const char *filter, const char *topic);

#endif /* XMQ_TOPICS_TOPIC_H */
