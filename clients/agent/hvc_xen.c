/* SPDX-License-Identifier: MIT */
/*
 * hvc_xen.c - the finder of a Xen build: reads device/console/N/name in the
 * domain's own XenStore directory and answers /dev/hvcN for the N whose name
 * matches.
 *
 * This is the only place where libxenstore's error style (NULL or false,
 * with errno set) is met; it becomes 0 or a negative errno here. The calls
 * are synchronous, but each is one short round trip to xenstored through
 * xenbus, made once a second at most while the agent waits for its channel.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

#include "clients/agent/hvc.h"

#define CONSOLE_DIR "device/console"
/* Most digits accepted in a console number: keeps /dev/hvcN sane. */
#define CONSOLE_DIGITS_MAX 4

/* errno after a failed libxenstore call, as a negative value (never 0). */
static int xs_err(void)
{
	return errno > 0 ? -errno : -EIO;
}

static bool is_console_number(const char *s)
{
	size_t n = strlen(s);
	size_t i;

	if (n == 0 || n > CONSOLE_DIGITS_MAX)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	/* "01" would name hvc1 twice. */
	return n == 1 || s[0] != '0';
}

/* Whether device/console/<n>/name is name. Sets *err on a read failure
 * other than "no such key". */
static bool console_is(struct xs_handle *xs, const char *n, const char *name, int *err)
{
	char key[sizeof(CONSOLE_DIR) + CONSOLE_DIGITS_MAX + sizeof("/name") + 1];
	unsigned int len = 0;
	char *val;
	bool match;

	snprintf(key, sizeof(key), CONSOLE_DIR "/%s/name", n);
	val = xs_read(xs, XBT_NULL, key, &len);
	if (val == NULL) {
		if (errno != ENOENT)
			*err = xs_err();
		return false;
	}
	match = len == strlen(name) && memcmp(val, name, len) == 0;
	free(val);
	return match;
}

int xmq__hvc_find(const char *name, char **path)
{
	struct xs_handle *xs = NULL;
	char **dir = NULL;
	unsigned int count = 0;
	unsigned int i;
	int read_err = 0;
	int err = -ENOENT;
	char *p;

	xs = xs_open(0);
	if (xs == NULL) {
		err = errno == ENOENT ? -ENODEV : xs_err();
		goto out;
	}
	dir = xs_directory(xs, XBT_NULL, CONSOLE_DIR, &count);
	if (dir == NULL) {
		err = errno == ENOENT ? -ENOENT : xs_err();
		goto out;
	}
	for (i = 0; i < count; i++) {
		if (!is_console_number(dir[i]) || !console_is(xs, dir[i], name, &read_err))
			continue;
		p = malloc(sizeof("/dev/hvc") + CONSOLE_DIGITS_MAX);
		if (p == NULL) {
			err = -ENOMEM;
			goto out;
		}
		snprintf(p, sizeof("/dev/hvc") + CONSOLE_DIGITS_MAX, "/dev/hvc%s", dir[i]);
		*path = p;
		err = 0;
		goto out;
	}
	/* Not found: a read that failed may have hidden it. */
	if (read_err != 0)
		err = read_err;
out:
	free(dir);  /* one block: the array and its strings */
	xs_close(xs);
	return err;
}
