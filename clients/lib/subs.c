/* SPDX-License-Identifier: MIT */
/*
 * subs.c - the subscription list (an array: a client has few subscriptions
 * and looks them up only when it subscribes or gets an answer) and the
 * pending requests (a list in the order they were made, so that they are
 * re-sent in that order).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "clients/lib/subs.h"

void xmq__subs_init(xmq__subs_t *s)
{
	memset(s, 0, sizeof(*s));
}

void xmq__subs_dispose(xmq__subs_t *s)
{
	xmq__req_t *r;
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i].filter);
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
	while (s->head != NULL) {
		r = s->head;
		s->head = r->next;
		free(r);
	}
	s->tail = NULL;
}

static xmq__sub_t *find(const xmq__subs_t *s, const char *filter)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (strcmp(s->v[i].filter, filter) == 0)
			return &s->v[i];
	}
	return NULL;
}

static void forget(xmq__subs_t *s, xmq__sub_t *e)
{
	free(e->filter);
	*e = s->v[--s->n];
}

/* One block: the request, then its filters. */
static xmq__req_t *req_new(bool sub, uint16_t mid, int count, const char *const *filters,
                           uint8_t options, bool internal)
{
	size_t len = sizeof(xmq__req_t);
	xmq__req_t *r;
	char *p;
	int i;

	for (i = 0; i < count; i++)
		len += strlen(filters[i]) + 1;
	r = calloc(1, len);
	if (r == NULL)
		return NULL;
	r->sub = sub;
	r->mid = mid;
	r->count = count;
	r->options = options;
	r->internal = internal;
	p = (char *)(r + 1);
	for (i = 0; i < count; i++) {
		size_t n = strlen(filters[i]) + 1;

		memcpy(p, filters[i], n);
		r->filter[i] = p;
		p += n;
	}
	return r;
}

int xmq__subs_request(xmq__subs_t *s, bool sub, uint16_t mid, int count,
                      const char *const *filters, uint8_t options, bool internal,
                      xmq__req_t **out)
{
	char *copies[XMQ_FILTERS_MAX] = { NULL };
	xmq__req_t *r;
	xmq__sub_t *e;
	int err = -ENOMEM;
	int i;

	r = req_new(sub, mid, count, filters, options, internal);
	if (r == NULL)
		return -ENOMEM;
	if (sub) {
		/* Room and copies for every new filter first, so that nothing
		 * changes if memory runs out. */
		size_t need = s->n + (size_t)count;

		if (need > s->cap) {
			size_t cap = need < 8 ? 8 : need * 2;
			xmq__sub_t *v = realloc(s->v, cap * sizeof(*v));

			if (v == NULL)
				goto out;
			s->v = v;
			s->cap = cap;
		}
		for (i = 0; i < count; i++) {
			if (find(s, filters[i]) != NULL)
				continue;
			copies[i] = strdup(filters[i]);
			if (copies[i] == NULL)
				goto out;
		}
	}
	for (i = 0; i < count; i++) {
		e = find(s, filters[i]);
		if (!sub) {
			if (e != NULL)
				forget(s, e);
			continue;
		}
		if (e == NULL && copies[i] != NULL) {
			e = &s->v[s->n++];
			e->filter = copies[i];
			copies[i] = NULL;
		}
		/* e is NULL only for a filter repeated in this request, which
		 * the first occurrence added. */
		if (e != NULL) {
			e->options = options;
			e->req_mid = mid;
		}
	}
	if (s->tail != NULL)
		s->tail->next = r;
	else
		s->head = r;
	s->tail = r;
	*out = r;
	r = NULL;
	err = 0;
out:
	for (i = 0; i < count; i++)
		free(copies[i]);
	free(r);
	return err;
}

xmq__req_t *xmq__subs_find_sent(const xmq__subs_t *s, bool sub, int tid)
{
	xmq__req_t *r;

	for (r = s->head; r != NULL; r = r->next) {
		if (r->sent && r->sub == sub && r->tid == tid)
			return r;
	}
	return NULL;
}

void xmq__subs_answered(xmq__subs_t *s, xmq__req_t *r, int count, const uint8_t *reasons)
{
	xmq__req_t **pp;
	xmq__req_t *prev = NULL;
	xmq__sub_t *e;
	int i;

	for (i = 0; r->sub && i < r->count; i++) {
		e = find(s, r->filter[i]);
		if (e == NULL || e->req_mid != r->mid)
			continue;
		/* A missing reason counts as a refusal: the peer did not say it
		 * accepted. */
		if (i >= count || reasons[i] >= MQTT_RC_UNSPECIFIED)
			forget(s, e);
		else
			e->req_mid = 0;
	}
	for (pp = &s->head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			if (s->tail == r)
				s->tail = prev;
			break;
		}
	}
	free(r);
}

void xmq__subs_unsend_all(xmq__subs_t *s)
{
	xmq__req_t *r;

	for (r = s->head; r != NULL; r = r->next)
		r->sent = false;
}

int xmq__subs_unrequested(const xmq__subs_t *s, const char **filters, uint8_t *options)
{
	int n = 0;
	size_t i;

	for (i = 0; i < s->n && n < XMQ_FILTERS_MAX; i++) {
		const xmq__sub_t *e = &s->v[i];

		if (e->req_mid != 0 || (n > 0 && e->options != *options))
			continue;
		*options = e->options;
		filters[n++] = e->filter;
	}
	return n;
}
