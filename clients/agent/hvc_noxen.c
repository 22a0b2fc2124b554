/* SPDX-License-Identifier: MIT */
/*
 * hvc_noxen.c - the finder of a build without libxenstore (WITH_XEN=no):
 * there is no XenStore to read, so a channel can only be named by its tty.
 */
#include <errno.h>

#include "clients/agent/hvc.h"

int xmq__hvc_find(const char *name, char **path)
{
	return -ENOTSUP;
}
