/* SPDX-License-Identifier: MIT */
/*
 * error.c - error texts and translations between error conventions.
 */
#include <errno.h>
#include <string.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "bridge/error.h"

XMQ_EXPORT const char *xmq_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case XMQ_ETOPIC: return "invalid topic name";
	case XMQ_EFILTER: return "invalid topic filter";
	case XMQ_EURL: return "unsupported or malformed URL";
	case XMQ_EREFUSED: return "refused by the broker";
	case XMQ_EMOSQ: return "libmosquitto error";
	case XMQ_ECONFIG: return "invalid configuration";
	case XMQ_ERATE: return "message or byte rate exceeded";
	case XMQ_ESTALE: return "frame from another epoch or direction";
	default:
		if (err < 0 && err > -4096)
			return strerror(-err);
		return "unknown error";
	}
}

XMQ_EXPORT const char *xmq_reason_string(int reason)
{
	return mosquitto_reason_string(reason);
}

XMQ_EXPORT const char *xmq_version(void)
{
	return XENMQ_VERSION;
}

int xmq__err_from_mosq(int mosq_err)
{
	switch (mosq_err) {
	case MOSQ_ERR_SUCCESS: return 0;
	case MOSQ_ERR_NOMEM: return -ENOMEM;
	case MOSQ_ERR_PROTOCOL: return -EPROTO;
	case MOSQ_ERR_INVAL: return -EINVAL;
	case MOSQ_ERR_NO_CONN: return -ENOTCONN;
	case MOSQ_ERR_CONN_REFUSED: return -ECONNREFUSED;
	case MOSQ_ERR_NOT_FOUND: return -ENOENT;
	case MOSQ_ERR_CONN_LOST: return -ECONNRESET;
	case MOSQ_ERR_PAYLOAD_SIZE: return -EMSGSIZE;
	case MOSQ_ERR_NOT_SUPPORTED: return -ENOTSUP;
	case MOSQ_ERR_ACL_DENIED: return -EACCES;
	case MOSQ_ERR_MALFORMED_UTF8: return -EILSEQ;
	case MOSQ_ERR_KEEPALIVE: return -ETIMEDOUT;
	case MOSQ_ERR_OVERSIZE_PACKET: return -EMSGSIZE;
	case MOSQ_ERR_QOS_NOT_SUPPORTED: return -ENOTSUP;
	case MOSQ_ERR_MALFORMED_PACKET: return -EBADMSG;
	case MOSQ_ERR_DUPLICATE_PROPERTY: return -EBADMSG;
	case MOSQ_ERR_ERRNO: return errno > 0 ? -errno : -EIO;
	default: return XMQ_EMOSQ;
	}
}

uint8_t xmq__reason_from_err(int err)
{
	switch (err) {
	case 0: return MQTT_RC_SUCCESS;
	case -EBADMSG: return MQTT_RC_MALFORMED_PACKET;
	case -EMSGSIZE: return MQTT_RC_PACKET_TOO_LARGE;
	case -ENOTSUP: return MQTT_RC_QOS_NOT_SUPPORTED;
	case XMQ_ETOPIC: return MQTT_RC_TOPIC_NAME_INVALID;
	case XMQ_EFILTER: return MQTT_RC_TOPIC_FILTER_INVALID;
	case -EACCES: return MQTT_RC_NOT_AUTHORIZED;
	case XMQ_ERATE: return MQTT_RC_MESSAGE_RATE_TOO_HIGH;
	case -ENOBUFS: return MQTT_RC_QUOTA_EXCEEDED;
	case -EPROTO: return MQTT_RC_PROTOCOL_ERROR;
	case -ENOTCONN:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EPIPE: return MQTT_RC_SERVER_UNAVAILABLE;
	case -ETIMEDOUT: return MQTT_RC_KEEP_ALIVE_TIMEOUT;
	default: return MQTT_RC_UNSPECIFIED;
	}
}
