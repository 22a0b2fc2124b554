/* SPDX-License-Identifier: MIT */
/*
 * broker.c - xenmqd as a whole: its domains, its ACL, its reports, its
 * reload and its stop, in that order.
 *
 * xenmqd's own connection to Mosquitto carries only its reports: the
 * retained xenmq/broker/status (with a last will saying "offline" should
 * xenmqd die), each domain's retained xen/<domain>/status, and counters.
 * Every report is published again when that connection comes back, because
 * a Mosquitto that restarted without persistence has forgotten them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <mqtt_protocol.h>

#include "bridge/error.h"
#include "broker/broker.h"
#include "broker/domain.h"
#include "bridge/log.h"

#define BROKER_STATUS_TOPIC "xenmq/broker/status"
#define BROKER_STATS_TOPIC "xenmq/broker/stats"
#define DOMAIN_STATS_PREFIX "xenmq/broker/domain/"
#define STOP_WAIT_MS 2000
#define STOP_DRAIN_MS 3000

static void ctl_closed(xmq_mqtt_t *m);
static void child_closed(xmq_broker_t *b);

/* ---- reports -------------------------------------------------------------- */

/* Publish a short text report; QoS 1 ones are counted while stopping. */
static void report(xmq_broker_t *b, const char *topic, const char *text, int qos, bool retain)
{
	xmq_message_t msg = {
		.topic = topic,
		.payload = text,
		.payload_len = strlen(text),
		.qos = (uint8_t)qos,
		.retain = retain,
	};
	int mid;

	if (b->ctl == NULL)
		return;
	if (xmq_mqtt_publish(b->ctl, &msg, &mid) == 0 && b->stopping && qos > 0)
		b->stop_acks++;
}

static void report_domain(xmq_broker_t *b, const char *name, const char *status)
{
	char topic[128];

	snprintf(topic, sizeof(topic), "xen/%s/status", name);
	report(b, topic, status, 1, true);
}

void xmq__broker_domain_status(xmq_broker_t *b, xmq_domain_t *d)
{
	report_domain(b, d->name, xmq_domain_status(d));
}

static void report_all(xmq_broker_t *b)
{
	xmq_domain_t *d;

	report(b, BROKER_STATUS_TOPIC, "online", 1, true);
	for (d = b->domains; d != NULL; d = d->next)
		xmq__broker_domain_status(b, d);
}

static void on_stats_tick(uv_timer_t *t)
{
	xmq_broker_t *b = t->data;
	unsigned n = 0;
	unsigned online = 0;
	char topic[128];
	xmq_domain_t *d;
	json_t *o;
	char *text;

	if (b->ctl == NULL || !xmq_mqtt_connected(b->ctl))
		return;
	for (d = b->domains; d != NULL; d = d->next) {
		n++;
		online += xmq_link_is_up(&d->link);
		text = xmq_domain_stats_json(d);
		if (text == NULL)
			continue;
		snprintf(topic, sizeof(topic), DOMAIN_STATS_PREFIX "%s", d->name);
		report(b, topic, text, 0, true);
		free(text);
	}
	o = json_pack("{s:s, s:I, s:I, s:I}", "version", XENMQ_VERSION,
	              "uptime", (json_int_t)((uv_now(b->loop) - b->started_ms) / 1000),
	              "domains", (json_int_t)n, "online", (json_int_t)online);
	text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	if (text != NULL)
		report(b, BROKER_STATS_TOPIC, text, 0, true);
	free(text);
	json_decref(o);
}

static void on_tick(uv_timer_t *t)
{
	xmq_broker_t *b = t->data;
	xmq_domain_t *d;

	for (d = b->domains; d != NULL; d = d->next)
		xmq_domain_tick(d);
}

/* ---- xenmqd's own Mosquitto connection ------------------------------------ */

static void ctl_connect(xmq_mqtt_t *m, int reason, bool session_present)
{
	xmq_broker_t *b = xmq_mqtt_data(m);

	if (reason >= 0x80) {
		xmq_log(LOG_ERR, "Mosquitto at %s refused xenmqd: %s (retrying)",
		        b->conf.mosquitto, xmq_reason_string(reason));
		return;
	}
	xmq_log(LOG_NOTICE, "connected to Mosquitto at %s", b->conf.mosquitto);
	if (!b->stopping)
		report_all(b);
}

static void ctl_disconnect(xmq_mqtt_t *m, int err, int reason)
{
	xmq_broker_t *b = xmq_mqtt_data(m);

	xmq_log(LOG_WARNING, "lost Mosquitto at %s: %s (reconnecting; sessions wait)",
	        b->conf.mosquitto, xmq_strerror(err));
}

static void finish_stop(xmq_broker_t *b);

static void ctl_publish(xmq_mqtt_t *m, int mid, int reason)
{
	xmq_broker_t *b = xmq_mqtt_data(m);

	if (b->stopping && b->stop_acks > 0 && --b->stop_acks == 0)
		finish_stop(b);
}

static const xmq_mqtt_cb_t ctl_cb = {
	.connect = ctl_connect,
	.disconnect = ctl_disconnect,
	.publish = ctl_publish,
	.closed = ctl_closed,
};

/* ---- the ACL ------------------------------------------------------------------ */

bool xmq__broker_allows(const xmq_broker_t *b, const char *domain,
                        const char *client_id, const char *topic, int access)
{
	return b->acl != NULL && xmq_acl_check(b->acl, domain, client_id, topic, access);
}

/* ---- domains ----------------------------------------------------------------- */

static int add_domain(xmq_broker_t *b, const xmq_domain_conf_t *dc, xmq_domain_t ***tail)
{
	xmq_domain_t *d;
	int err = xmq_domain_new(b, dc, &d);

	if (err != 0) {
		xmq_log(LOG_ERR, "domain \"%s\": cannot start: %s", dc->name, xmq_strerror(err));
		return err;
	}
	**tail = d;
	*tail = &d->next;
	b->closing++;
	xmq_domain_start(d);
	xmq_log(LOG_INFO, "domain \"%s\": channel %s", d->name, d->channel);
	return 0;
}

void xmq__broker_domain_closed(xmq_broker_t *b, xmq_domain_t *d)
{
	child_closed(b);
}

/* ---- life ------------------------------------------------------------------- */

int xmq_broker_init(uv_loop_t *loop, xmq_broker_t *b, const char *conf_path,
                    xmq_conf_t *conf, xmq_acl_t *acl)
{
	memset(b, 0, sizeof(*b));
	b->conf_path = strdup(conf_path);
	if (b->conf_path == NULL)
		return -ENOMEM;
	b->loop = loop;
	b->conf = *conf;
	memset(conf, 0, sizeof(*conf));
	b->acl = acl;
	(void)uv_timer_init(loop, &b->stats_timer);
	(void)uv_timer_init(loop, &b->stop_timer);
	(void)uv_timer_init(loop, &b->tick_timer);
	b->stats_timer.data = b;
	b->stop_timer.data = b;
	b->tick_timer.data = b;
	return 0;
}

int xmq_broker_start(xmq_broker_t *b)
{
	xmq_message_t will = {
		.topic = BROKER_STATUS_TOPIC,
		.payload = "offline",
		.payload_len = 7,
		.qos = 1,
		.retain = true,
	};
	xmq_mqtt_opts_t mo = {
		.address = b->conf.mosquitto,
		.client_id = b->conf.client_id,
		.clean_start = true,
		.keepalive = (uint16_t)b->conf.keepalive,
		.will = &will,
	};
	xmq_domain_t **tail = &b->domains;
	size_t i;
	int err;

	b->started_ms = uv_now(b->loop);
	err = xmq_mqtt_new(b->loop, &mo, &ctl_cb, b, &b->ctl);
	if (err != 0)
		return err;
	b->closing++;
	err = xmq_mqtt_start(b->ctl);
	if (err != 0)
		return err;
	for (i = 0; i < b->conf.n_domains; i++)
		(void)add_domain(b, &b->conf.domains[i], &tail);
	(void)uv_timer_start(&b->tick_timer, on_tick, 1000, 1000);
	if (b->conf.status_interval > 0)
		(void)uv_timer_start(&b->stats_timer, on_stats_tick,
		                     (uint64_t)b->conf.status_interval * 1000,
		                     (uint64_t)b->conf.status_interval * 1000);
	xmq_log(LOG_NOTICE, "xenmqd %s started: %zu domains, ACL %s (%zu rules)", XENMQ_VERSION,
	        b->conf.n_domains, b->conf.acl_file != NULL ? b->conf.acl_file : "none: deny all",
	        b->acl != NULL ? xmq_acl_rules(b->acl) : 0);
	return 0;
}

static void apply_reload(xmq_broker_t *b, xmq_conf_t *nc)
{
	xmq_domain_t **link = &b->domains;
	xmq_domain_t **tail;
	const xmq_domain_conf_t *dc;
	xmq_domain_t *d;
	size_t i;

	if (strcmp(nc->mosquitto, b->conf.mosquitto) != 0 ||
	    strcmp(nc->client_id, b->conf.client_id) != 0)
		xmq_log(LOG_WARNING, "reload: 'mosquitto' and 'client_id' changes apply at restart");
	/* Domains gone or moved to another channel close; the others keep
	 * their channel and sessions and take the new limits. */
	while ((d = *link) != NULL) {
		dc = xmq_conf_domain(nc, d->name);
		if (dc != NULL && strcmp(dc->channel, d->channel) == 0) {
			xmq_domain_set_limits(d, &dc->limits);
			link = &d->next;
			continue;
		}
		xmq_log(LOG_NOTICE, "domain \"%s\": %s by the new configuration", d->name,
		        dc != NULL ? "channel changed" : "removed");
		*link = d->next;
		/* Its link is not down yet, but will be. */
		report_domain(b, d->name, "offline");
		xmq_domain_close(d, MQTT_RC_DISCONNECT_WITH_WILL_MSG, MQTT_RC_ADMINISTRATIVE_ACTION);
	}
	for (tail = &b->domains; *tail != NULL; tail = &(*tail)->next)
		;
	for (i = 0; i < nc->n_domains; i++) {
		for (d = b->domains; d != NULL; d = d->next)
			if (strcmp(d->name, nc->domains[i].name) == 0)
				break;
		if (d == NULL)
			(void)add_domain(b, &nc->domains[i], &tail);
	}
	if (nc->status_interval != b->conf.status_interval) {
		(void)uv_timer_stop(&b->stats_timer);
		if (nc->status_interval > 0)
			(void)uv_timer_start(&b->stats_timer, on_stats_tick,
			                     (uint64_t)nc->status_interval * 1000,
			                     (uint64_t)nc->status_interval * 1000);
	}
}

void xmq_broker_reload(xmq_broker_t *b)
{
	xmq_acl_t *acl = NULL;
	xmq_conf_t nc;
	char err[512];
	int rc;

	if (b->draining || b->stopping)
		return;
	rc = xmq_conf_load(b->conf_path, &nc, err, sizeof(err));
	if (rc != 0) {
		xmq_log(LOG_ERR, "reload refused, keeping the running configuration: %s",
		        rc == XMQ_ECONFIG ? err : xmq_strerror(rc));
		return;
	}
	if (nc.acl_file != NULL) {
		rc = xmq_acl_load(nc.acl_file, &acl, err, sizeof(err));
		if (rc != 0) {
			xmq_log(LOG_ERR, "reload refused, keeping the running configuration: %s",
			        rc == XMQ_ECONFIG ? err : xmq_strerror(rc));
			xmq_conf_dispose(&nc);
			return;
		}
	}
	xmq_log_setup("xenmqd", b->verbose ? LOG_DEBUG : nc.log_level, strcmp(nc.log_dest, "syslog") == 0);
	apply_reload(b, &nc);
	xmq_acl_free(b->acl);
	b->acl = acl;
	/* Keep the running Mosquitto address and client id (see above). */
	{
		char *keep_m = b->conf.mosquitto;
		char *keep_c = b->conf.client_id;

		b->conf.mosquitto = nc.mosquitto;
		b->conf.client_id = nc.client_id;
		nc.mosquitto = keep_m;
		nc.client_id = keep_c;
	}
	xmq_conf_dispose(&b->conf);
	b->conf = nc;
	xmq_log(LOG_NOTICE, "configuration reloaded: %zu domains, %zu ACL rules",
	        b->conf.n_domains, acl != NULL ? xmq_acl_rules(acl) : 0);
}

static void child_closed(xmq_broker_t *b)
{
	if (--b->closing == 0 && b->stopping && b->stopped_cb != NULL)
		b->stopped_cb(b);
}

static void ctl_closed(xmq_mqtt_t *m)
{
	xmq_broker_t *b = xmq_mqtt_data(m);

	b->ctl = NULL;
	child_closed(b);
}

static void on_handle_closed(uv_handle_t *h)
{
	child_closed(h->data);
}

/* The reports are out (or the wait is over): close what is left. */
static void finish_stop(xmq_broker_t *b)
{
	if (uv_is_closing((uv_handle_t *)&b->stop_timer))
		return;
	b->closing += 3;
	uv_close((uv_handle_t *)&b->stop_timer, on_handle_closed);
	uv_close((uv_handle_t *)&b->stats_timer, on_handle_closed);
	uv_close((uv_handle_t *)&b->tick_timer, on_handle_closed);
	if (b->ctl != NULL)
		xmq_mqtt_close(b->ctl, MQTT_RC_NORMAL_DISCONNECTION, 0);
}

static void on_stop_timeout(uv_timer_t *t)
{
	finish_stop(t->data);
}

/* Everything the domains had to acknowledge is acknowledged, or the wait
 * is over: report, end the sessions, close. */
static void stop_now(xmq_broker_t *b)
{
	xmq_domain_t *d;

	b->stopping = true;
	(void)uv_timer_stop(&b->stop_timer);
	(void)uv_timer_stop(&b->tick_timer);
	if (b->ctl != NULL && xmq_mqtt_connected(b->ctl)) {
		/* Their links are not down yet, but will be. */
		for (d = b->domains; d != NULL; d = d->next)
			report_domain(b, d->name, "offline");
		report(b, BROKER_STATUS_TOPIC, "offline", 1, true);
	}
	/* The sessions end without their wills: the applications are not
	 * gone, xenmqd is, and says so above. Mosquitto keeps their sessions
	 * for when it is back. */
	while ((d = b->domains) != NULL) {
		b->domains = d->next;
		xmq_domain_close(d, MQTT_RC_NORMAL_DISCONNECTION, MQTT_RC_SERVER_SHUTTING_DOWN);
	}
	if (b->stop_acks == 0)
		finish_stop(b);
	else
		(void)uv_timer_start(&b->stop_timer, on_stop_timeout, STOP_WAIT_MS, 0);
}

static void on_drain_check(uv_timer_t *t)
{
	xmq_broker_t *b = t->data;
	unsigned waiting = 0;
	xmq_domain_t *d;

	for (d = b->domains; d != NULL; d = d->next)
		waiting += !xmq_domain_drained(d);
	if (waiting > 0 && uv_now(b->loop) < b->drain_deadline)
		return;
	if (waiting > 0)
		xmq_log(LOG_WARNING, "stopping while %u domains still have QoS 1 messages "
		        "to acknowledge: those are lost", waiting);
	stop_now(b);
}

void xmq_broker_stop(xmq_broker_t *b, void (*cb)(xmq_broker_t *b))
{
	xmq_domain_t *d;

	if (b->draining || b->stopping)
		return;
	b->draining = true;
	b->stopped_cb = cb;
	xmq_log(LOG_NOTICE, "stopping");
	(void)uv_timer_stop(&b->stats_timer);
	/* libmosquitto acknowledged to Mosquitto every message it read, so the
	 * QoS 1 messages on their way to the DomUs exist nowhere else: take no
	 * more, and give the DomUs a moment to acknowledge what is sent. What
	 * Mosquitto still holds waits there for the applications. */
	for (d = b->domains; d != NULL; d = d->next)
		xmq_domain_drain(d);
	b->drain_deadline = uv_now(b->loop) + STOP_DRAIN_MS;
	(void)uv_timer_start(&b->stop_timer, on_drain_check, 0, 100);
}

void xmq_broker_dispose(xmq_broker_t *b)
{
	xmq_conf_dispose(&b->conf);
	xmq_acl_free(b->acl);
	b->acl = NULL;
	free(b->conf_path);
	b->conf_path = NULL;
}
