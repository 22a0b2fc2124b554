/* SPDX-License-Identifier: MIT */
/*
 * url.c - the one place where a libxenmq URL is understood:
 *
 *   agent:/PATH           the agent's Unix socket        (transport_link.c)
 *   hvc:/PATH             a PV channel's tty             (transport_link.c)
 *   mqtt://HOST[:PORT][/] Mosquitto over TCP, port 1883  (transport_mqtt.c)
 *   mqtt+unix:/PATH       Mosquitto on a Unix socket     (transport_mqtt.c)
 *
 * Anything else is XMQ_EURL, so that a typo fails at xmq_client_new() rather
 * than as a connection that never comes up. Paths must be absolute: a
 * client's working directory is nobody's business, and a relative socket
 * path is nearly always a mistake.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "clients/lib/client.h"

#define MQTT_PORT_DEFAULT 1883

static const struct scheme {
	const char *prefix;
	const xmq__transport_ops_t *ops;
	xmq__addr_kind_t kind;
} schemes[] = {
	{ "agent:", &xmq__transport_link, XMQ__ADDR_UNIX },
	{ "hvc:", &xmq__transport_link, XMQ__ADDR_TTY },
	{ "mqtt+unix:", &xmq__transport_mqtt, XMQ__ADDR_UNIX },
	{ "mqtt://", &xmq__transport_mqtt, XMQ__ADDR_TCP },
};

static bool path_valid(const char *path, xmq__addr_kind_t kind)
{
	size_t len = strlen(path);

	if (len < 2 || path[0] != '/')
		return false;
	/* A socket path that does not fit in sun_path could only fail later,
	 * and less clearly. */
	if (kind == XMQ__ADDR_UNIX && len >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return false;
	return true;
}

/* Decimal 1..65535, the whole of s. */
static bool parse_port(const char *s, size_t len, uint16_t *port)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/* HOST[:PORT][/] after "mqtt://"; HOST a name, IPv4 or [IPv6]. */
static int parse_host_port(const char *s, char **host, uint16_t *port)
{
	const char *end = s + strlen(s);
	const char *h = s;
	size_t hlen;
	const char *rest;

	if (end > s && end[-1] == '/')
		end--;
	if (*s == '[') {
		const char *close = memchr(s, ']', (size_t)(end - s));

		if (close == NULL)
			return XMQ_EURL;
		h = s + 1;
		hlen = (size_t)(close - h);
		if (hlen == 0 || strspn(h, "0123456789abcdefABCDEF:.") < hlen)
			return XMQ_EURL;
		rest = close + 1;
	} else {
		hlen = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                 "0123456789.-_");
		if (hlen == 0 || s + hlen > end)
			return XMQ_EURL;
		rest = s + hlen;
	}
	*port = MQTT_PORT_DEFAULT;
	if (rest < end) {
		if (*rest != ':' || !parse_port(rest + 1, (size_t)(end - rest - 1), port))
			return XMQ_EURL;
	}
	*host = strndup(h, hlen);
	return *host != NULL ? 0 : -ENOMEM;
}

int xmq__url_parse(const char *url, xmq__url_t *out)
{
	const struct scheme *sc = NULL;
	xmq__url_t u = { 0 };
	const char *rest;
	size_t i;
	int err;

	if (url == NULL)
		return XMQ_EURL;
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strncmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) == 0) {
			sc = &schemes[i];
			break;
		}
	}
	if (sc == NULL)
		return XMQ_EURL;
	rest = url + strlen(sc->prefix);
	u.ops = sc->ops;
	u.kind = sc->kind;
	if (sc->kind == XMQ__ADDR_TCP) {
		err = parse_host_port(rest, &u.host, &u.port);
		if (err != 0)
			return err;
	} else {
		if (!path_valid(rest, sc->kind))
			return XMQ_EURL;
		u.path = strdup(rest);
		if (u.path == NULL)
			return -ENOMEM;
	}
	*out = u;
	return 0;
}

void xmq__url_dispose(xmq__url_t *url)
{
	free(url->path);
	url->path = NULL;
	free(url->host);
	url->host = NULL;
}
