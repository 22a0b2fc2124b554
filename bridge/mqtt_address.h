/* SPDX-License-Identifier: MIT */
/*
 * mqtt_address.h - where Mosquitto is, as bridge/mqtt.c is told it: a Unix
 * socket path or a host and port, parsed into what libmosquitto's connect
 * takes.
 */
#ifndef XMQ_BRIDGE_MQTT_ADDRESS_H
#define XMQ_BRIDGE_MQTT_ADDRESS_H

/*
 * xmq__mqtt_address_parse - "/path", "host", "host:port", "[v6]" or
 * "[v6]:port" (port 1883 if not given) into a new *host (free it) and *port
 * (0 for a path). Returns 0, -EINVAL, -ENAMETOOLONG (a path longer than a
 * Unix socket address holds) or -ENOMEM. Outputs unchanged on failure.
 */
int xmq__mqtt_address_parse(const char *a, char **host, int *port);

#endif /* XMQ_BRIDGE_MQTT_ADDRESS_H */
