/* SPDX-License-Identifier: MIT */
/*
 * message.c - one-block deep copies of messages.
 *
 * Layout of a copy: the xmq_message_t, then the user property array, then
 * every byte string back to back. Two passes over the same list of fields
 * (size, then copy) keep the arithmetic in one place.
 */
#include <stdlib.h>
#include <string.h>

#include "bridge/message.h"

static size_t str_size(const char *s)
{
	return s != NULL ? strlen(s) + 1 : 0;
}

size_t xmq_message_size(const xmq_message_t *m)
{
	size_t n = str_size(m->topic) + m->payload_len;
	const xmq_props_t *p = &m->props;
	size_t i;

	n += str_size(p->content_type) + str_size(p->response_topic);
	if (p->correlation_data != NULL)
		n += p->correlation_len;
	for (i = 0; i < p->user_count; i++)
		n += str_size(p->user[i].name) + str_size(p->user[i].value);
	return n;
}

/* Copy len bytes to *cursor, advance it, return where they went. */
static void *put(char **cursor, const void *src, size_t len)
{
	void *dst = *cursor;

	if (len > 0)
		memcpy(dst, src, len);
	*cursor += len;
	return dst;
}

static const char *put_str(char **cursor, const char *s)
{
	return s != NULL ? put(cursor, s, strlen(s) + 1) : NULL;
}

xmq_message_t *xmq_message_copy(const xmq_message_t *m)
{
	const xmq_props_t *p = &m->props;
	size_t head = sizeof(xmq_message_t) + p->user_count * sizeof(xmq_user_prop_t);
	xmq_message_t *c;
	xmq_user_prop_t *user;
	char *cursor;
	size_t i;

	if (p->user_count > XMQ_USER_PROPS_MAX)
		return NULL;
	/* One extra byte so that an empty payload still gets a valid,
	 * distinct address. */
	c = malloc(head + xmq_message_size(m) + 1);
	if (c == NULL)
		return NULL;
	*c = *m;
	user = (xmq_user_prop_t *)(c + 1);
	cursor = (char *)c + head;
	c->topic = put_str(&cursor, m->topic);
	c->payload = put(&cursor, m->payload, m->payload_len);
	c->props.content_type = put_str(&cursor, p->content_type);
	c->props.response_topic = put_str(&cursor, p->response_topic);
	if (p->correlation_data != NULL)
		c->props.correlation_data = put(&cursor, p->correlation_data, p->correlation_len);
	for (i = 0; i < p->user_count; i++) {
		user[i].name = put_str(&cursor, p->user[i].name);
		user[i].value = put_str(&cursor, p->user[i].value);
	}
	c->props.user = p->user_count > 0 ? user : NULL;
	return c;
}
