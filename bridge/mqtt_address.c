/* SPDX-License-Identifier: MIT */
/*
 * mqtt_address.c - where Mosquitto is (mqtt_address.h): an absolute path is
 * a Unix socket, anything else a host name or address with an optional
 * port, an IPv6 address in brackets as in a URL so that its colons are not
 * taken for the port's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "bridge/mqtt_address.h"

static int parse_port(const char *s, int *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

int xmq__mqtt_address_parse(const char *a, char **host, int *port)
{
	const char *start = a, *end, *rest;
	int p = 1883;
	int err;
	char *h;

	if (a == NULL || a[0] == '\0')
		return -EINVAL;
	if (a[0] == '/') {
		if (strlen(a) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
			return -ENAMETOOLONG;
		h = strdup(a);
		if (h == NULL)
			return -ENOMEM;
		*host = h;
		*port = 0;
		return 0;
	}
	if (a[0] == '[') {
		start = a + 1;
		end = strchr(start, ']');
		if (end == NULL)
			return -EINVAL;
		rest = end + 1;
		if (*rest != '\0' && *rest != ':')
			return -EINVAL;
	} else {
		end = strchr(a, ':');
		if (end != NULL && strchr(end + 1, ':') != NULL)
			return -EINVAL;  /* an IPv6 address needs brackets */
		if (end == NULL)
			end = a + strlen(a);
		rest = end;
	}
	if (end == start)
		return -EINVAL;
	if (*rest == ':') {
		err = parse_port(rest + 1, &p);
		if (err < 0)
			return err;
	}
	h = strndup(start, (size_t)(end - start));
	if (h == NULL)
		return -ENOMEM;
	*host = h;
	*port = p;
	return 0;
}
