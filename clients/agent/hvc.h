/* SPDX-License-Identifier: MIT */
/*
 * hvc.h - finding a PV channel's tty by its name.
 *
 * In a DomU every PV channel is a console /dev/hvcN, and hvc0 to hvc7 exist
 * whether a channel is behind them or not: only XenStore says which one is
 * which. The domain's own device/console/N/name holds the name given in the
 * xl configuration (channel = ["name=org.xenmq,..."]), and N is the hvc
 * number.
 *
 * Two backends define xmq__hvc_find(), and the Makefile links one:
 * hvc_xen.c reads XenStore with libxenstore, hvc_noxen.c (WITH_XEN=no)
 * reports that names cannot be looked up, so that the agent asks for an
 * explicit --hvc PATH instead.
 */
#ifndef XMQ_AGENT_HVC_H
#define XMQ_AGENT_HVC_H

#include "xenmq.h"

/* Signature of a finder, so that tests can stand in for XenStore. */
typedef int (*xmq_hvc_find_fn)(const char *name, char **path);

/*
 * xmq__hvc_find - the tty of the PV channel called name (borrowed).
 *
 * Reads the calling domain's XenStore (relative path device/console). On
 * success *path is new ("/dev/hvcN": call free() on it). Returns 0 or:
 *   -ENOENT   no channel of that name (yet): the domain may still be
 *             starting, or its configuration lacks the channel
 *   -ENODEV   XenStore cannot be reached (not a Xen domain, no xenbus)
 *   -ENOTSUP  built without Xen support
 *   -ENOMEM, or another negative errno from libxenstore
 * *path is left unchanged on failure.
 */
int xmq__hvc_find(const char *name, char **path) XMQ_WUR;

#endif /* XMQ_AGENT_HVC_H */
