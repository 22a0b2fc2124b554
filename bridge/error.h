/* SPDX-License-Identifier: MIT */
/*
 * error.h - the one place where errors change form: libmosquitto's MOSQ_ERR_*
 * become -errno/XMQ_E* values, and those become the MQTT v5 reason codes a
 * DomU is told.
 */
#ifndef XMQ_BRIDGE_ERROR_H
#define XMQ_BRIDGE_ERROR_H

#include <stdint.h>

#include "xenmq.h"

/* A MOSQ_ERR_* value as 0 or a negative error; reads errno for MOSQ_ERR_ERRNO. */
int xmq__err_from_mosq(int mosq_err);

/*
 * The MQTT v5 reason code that tells a peer about err: -EBADMSG malformed,
 * -EMSGSIZE packet too large, -ENOTSUP QoS not supported, XMQ_ETOPIC topic
 * name invalid, XMQ_EFILTER topic filter invalid, -EACCES not authorised,
 * XMQ_ERATE message rate too high, -ENOBUFS quota exceeded, -EPROTO protocol
 * error, -ENOTCONN/-ECONNREFUSED/-ECONNRESET/-EPIPE server unavailable,
 * -ETIMEDOUT keep alive timeout, others unspecified.
 */
uint8_t xmq__reason_from_err(int err);

#endif /* XMQ_BRIDGE_ERROR_H */
