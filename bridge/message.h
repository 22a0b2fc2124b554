/* SPDX-License-Identifier: MIT */
/*
 * message.h - owned copies of messages. A QoS 1 message waits for its
 * acknowledgement, and a last will for its session, long after the caller's
 * buffers are gone: each is kept as one malloc'd block holding the message
 * and every string and byte range it points to.
 */
#ifndef XMQ_BRIDGE_MESSAGE_H
#define XMQ_BRIDGE_MESSAGE_H

#include <stddef.h>

#include "xenmq.h"

/*
 * xmq_message_copy - a deep copy of msg (borrowed) in one block: returns a
 * new xmq_message_t whose pointers all lead inside that block; free() it.
 * NULL when out of memory or when msg has more than XMQ_USER_PROPS_MAX user
 * properties.
 */
xmq_message_t *xmq_message_copy(const xmq_message_t *msg);

/* Bytes a message occupies (topic, payload, properties): for queue bounds. */
size_t xmq_message_size(const xmq_message_t *msg);

#endif /* XMQ_BRIDGE_MESSAGE_H */
