/* SPDX-License-Identifier: MIT */
/*
 * mqtt.c - libmosquitto driven by a libuv loop instead of its own thread:
 * the connection's life (polling, connecting, reading and writing, the
 * connect and disconnect callbacks, making one, closing).
 *
 * libmosquitto owns the socket and the protocol; we own three handles: a
 * uv_poll_t on libmosquitto's socket (initialised for each connection, as
 * the descriptor changes, and closed when it ends), a timer that calls
 * mosquitto_loop_misc() every second while a socket is open and otherwise
 * waits out the reconnect backoff (or, while closing, the DISCONNECT), and a
 * "kick" timer that hands over messages held back during a pause.
 *
 * Facts about libmosquitto 2.0.11 this file relies on, each checked by
 * tests/unit/test_mqtt.c:
 * - mosquitto_loop_read() reads one packet per call when no QoS 1 message
 *   is in flight, so we call it while the socket has bytes left, up to
 *   READ_BUDGET calls per wakeup so that one busy session cannot starve the
 *   others (the poll is level-triggered: the rest is read next turn).
 * - A packet queued outside a libmosquitto callback is written at once;
 *   one queued from inside a callback waits, so after every call we poll
 *   for writability while mosquitto_want_write() says so.
 * - The clean start flag is the one given to mosquitto_new() and is sent
 *   with every CONNECT, and mosquitto_reconnect() forgets the CONNECT
 *   properties. So the object is made with clean start = 0, every attempt
 *   goes through mosquitto_connect_bind_v5(), and a clean first start is
 *   obtained with probe connections (see on_connect()).
 * - libmosquitto closes its socket as soon as the DISCONNECT is written.
 *   Mosquitto, if it then writes to us before it has read the DISCONNECT,
 *   fails with EPIPE, counts the connection as broken and publishes the
 *   will. So xmq_mqtt_close() keeps a duplicate of the socket open and
 *   polls that until Mosquitto closes its end (see "closing").
 *
 * What the session carries (the will, requests and their answers, the
 * messages in and those held back during a pause) is in mqtt_traffic.c,
 * and what the two files share in mqtt_internal.h; properties are
 * converted in mqtt_props.c, and the address parsed in mqtt_address.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "bridge/error.h"
#include "bridge/mqtt.h"
#include "bridge/mqtt_address.h"
#include "bridge/mqtt_internal.h"

#define TICK_MS 1000          /* mosquitto_loop_misc() period */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define DRAIN_MS 1000         /* longest wait for the broker to close after DISCONNECT */
#define READ_BUDGET 64        /* mosquitto_loop_read() calls per wakeup */
#define KEEPALIVE_DEFAULT 30

static void on_poll(uv_poll_t *h, int status, int events);
static void close_continue(xmq_mqtt_t *m);

/* ---- the library, once ------------------------------------------------ */

static uv_once_t lib_once = UV_ONCE_INIT;

static void lib_init(void)
{
	mosquitto_lib_init();
}

/* ---- polling ------------------------------------------------------------ */

/* Poll for what libmosquitto needs now: reads unless paused or closing,
 * writes while it has output queued. */
void xmq__mqtt_update_poll(xmq_mqtt_t *m)
{
	int events = 0;

	if (!m->poll_live)
		return;
	if (m->state == S_CLOSING) {
		/* Lingering: for the broker's EOF, and the DISCONNECT if it is
		 * still queued in libmosquitto's (still open) socket. */
		events = UV_READABLE;
		if (mosquitto_socket(m->mosq) >= 0 && mosquitto_want_write(m->mosq))
			events |= UV_WRITABLE;
	} else {
		if (!m->paused)
			events |= UV_READABLE;
		if (mosquitto_want_write(m->mosq))
			events |= UV_WRITABLE;
	}
	if (events == m->poll_events)
		return;
	if (events == 0)
		uv_poll_stop(&m->poll);
	else
		uv_poll_start(&m->poll, events, on_poll);
	m->poll_events = events;
}

static void on_poll_closed(uv_handle_t *h);

/* Stop watching the socket, which libmosquitto closes or has just closed. */
static void poll_release(xmq_mqtt_t *m)
{
	if (!m->poll_live)
		return;
	m->poll_live = false;
	m->poll_closing = true;
	uv_close((uv_handle_t *)&m->poll, on_poll_closed);
}

/* After each libmosquitto call made from a libuv callback. */
static void after_mosq(xmq_mqtt_t *m)
{
	if (m->state == S_CLOSING)
		close_continue(m);
	else
		xmq__mqtt_update_poll(m);
}

/* ---- connecting --------------------------------------------------------- */

static void schedule_retry(xmq_mqtt_t *m)
{
	m->state = S_WAIT;
	uv_timer_start(&m->timer, xmq__mqtt_on_tick, m->backoff_ms, 0);
	m->backoff_ms *= 2;
	if (m->backoff_ms > BACKOFF_MAX_MS)
		m->backoff_ms = BACKOFF_MAX_MS;
}

/*
 * try_connect - open a socket and send CONNECT. For a Unix socket this does
 * not block (libmosquitto connects it non-blocking); over TCP it does.
 */
static void try_connect(xmq_mqtt_t *m)
{
	int rc, fd;

	m->state = S_WAIT;
	if (m->paused)
		return;  /* no CONNACK could be read: xmq_mqtt_pause() resumes */
	/* A probe (see on_connect()) goes without will, whose publication
	 * a broken connection would trigger, and with session expiry 0. */
	if (m->fresh_owed && m->will_on) {
		mosquitto_will_clear(m->mosq);
		m->will_on = false;
	} else if (!m->fresh_owed && !m->will_on && m->will != NULL) {
		if (xmq__mqtt_set_will(m) < 0)
			goto retry;
	}
	m->cur_expiry = m->fresh_owed ? 0 : m->session_expiry;
	m->depth++;
	rc = mosquitto_connect_bind_v5(m->mosq, m->host, m->port, m->keepalive, NULL,
	                               m->fresh_owed ? NULL : m->connect_props);
	m->depth--;
	if (rc != MOSQ_ERR_SUCCESS)
		goto retry;
	fd = mosquitto_socket(m->mosq);
	if (fd < 0 || uv_poll_init_socket(m->loop, &m->poll, fd) != 0) {
		m->depth++;
		mosquitto_disconnect(m->mosq);
		m->depth--;
		goto retry;
	}
	m->poll.data = m;
	m->poll_live = true;
	m->poll_events = 0;
	m->state = S_CONNECTING;
	xmq__mqtt_update_poll(m);
	/* The keepalive check also bounds the wait for CONNACK. */
	uv_timer_start(&m->timer, xmq__mqtt_on_tick, TICK_MS, TICK_MS);
	return;
retry:
	schedule_retry(m);
}

static void on_poll_closed(uv_handle_t *h)
{
	xmq_mqtt_t *m = h->data;

	m->poll_closing = false;
	if (m->state == S_CLOSING) {
		if (m->lingering) {
			m->lingering = false;
			close(m->linger_fd);
			m->linger_fd = -1;
		}
		close_continue(m);
		return;
	}
	if (m->connect_due) {
		m->connect_due = false;
		if (m->state == S_WAIT)
			try_connect(m);
	}
}

void xmq__mqtt_on_tick(uv_timer_t *t)
{
	xmq_mqtt_t *m = t->data;

	switch (m->state) {
	case S_WAIT:
		if (m->poll_closing)
			m->connect_due = true;
		else
			try_connect(m);
		break;
	case S_CONNECTING:
	case S_DISCARD:
	case S_OPEN:
		m->depth++;
		mosquitto_loop_misc(m->mosq);
		m->depth--;
		after_mosq(m);
		break;
	case S_CLOSING:
		/* The broker did not close in time: give up on it. */
		if (m->linger_fd >= 0 && !m->lingering) {
			close(m->linger_fd);
			m->linger_fd = -1;
		}
		if (m->poll_live)
			poll_release(m);
		close_continue(m);
		break;
	default:
		break;
	}
}

/* ---- reading and writing ------------------------------------------------ */

static void read_some(xmq_mqtt_t *m)
{
	int i, fd, avail;

	for (i = 0; i < READ_BUDGET; i++) {
		m->depth++;
		(void)mosquitto_loop_read(m->mosq, 1);
		m->depth--;
		if (!m->poll_live || m->paused || m->state == S_CLOSING)
			break;
		fd = mosquitto_socket(m->mosq);
		if (fd < 0 || ioctl(fd, FIONREAD, &avail) != 0 || avail <= 0)
			break;
	}
}

static void linger_io(xmq_mqtt_t *m, int status, int events);

static void on_poll(uv_poll_t *h, int status, int events)
{
	xmq_mqtt_t *m = h->data;

	if (m->state == S_CLOSING) {
		linger_io(m, status, events);
		return;
	}
	/* On an error let libmosquitto meet it and report it. */
	if (status < 0)
		events = m->poll_events;
	if (events & UV_WRITABLE) {
		m->depth++;
		(void)mosquitto_loop_write(m->mosq, 1);
		m->depth--;
	}
	if ((events & UV_READABLE) && m->poll_live && !m->paused && m->state != S_CLOSING)
		read_some(m);
	after_mosq(m);
}

/* ---- libmosquitto's callbacks ------------------------------------------- */

/* End a probe connection; on_disconnect() connects again after the backoff. */
static void end_probe(xmq_mqtt_t *m)
{
	m->state = S_DISCARD;
	(void)mosquitto_disconnect_v5(m->mosq, MQTT_RC_NORMAL_DISCONNECTION, NULL);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
	xmq_mqtt_t *m = obj;
	bool present = (flags & 1) != 0;

	if (m->state != S_CONNECTING)
		return;
	if (rc != 0) {
		/* libmosquitto closes the socket next; on_disconnect retries. */
		if (m->cb.connect != NULL)
			m->cb.connect(m, rc, false);
		return;
	}
	/*
	 * A clean start without the clean start flag: while one is owed we
	 * connect with session expiry 0 and no will. A session found then is
	 * an old one, which ends with this connection: try again. None found:
	 * the probe's own empty session ends with it too, and the next
	 * connection, with the real expiry and will, starts from nothing (if
	 * it takes over the probe's session before the broker has dropped
	 * it, that session is as empty, so we report none either way).
	 */
	if (m->fresh_owed) {
		if (present || m->session_expiry != 0 || m->will != NULL) {
			m->fresh_owed = present;
			m->probed = !present;
			m->backoff_ms = BACKOFF_MIN_MS;
			end_probe(m);
			return;
		}
		m->fresh_owed = false;
	}
	if (m->probed) {
		m->probed = false;
		present = false;
	}
	m->state = S_OPEN;
	m->backoff_ms = BACKOFF_MIN_MS;
	m->stats.connects++;
	if (m->cb.connect != NULL)
		m->cb.connect(m, 0, present);
}

/*
 * Runs when libmosquitto has closed the socket or is about to, inside
 * whichever of its calls noticed, and may run twice for one loss.
 */
static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
	xmq_mqtt_t *m = obj;
	enum state was = m->state;
	int err, reason;

	if (was == S_CLOSING)
		return;  /* the poll, if any, watches our duplicate */
	if (was != S_CONNECTING && was != S_DISCARD && was != S_OPEN)
		return;
	poll_release(m);
	uv_timer_stop(&m->timer);
	/* After a probe too: the broker needs a moment to drop its session. */
	schedule_retry(m);
	if (was != S_OPEN)
		return;
	m->stats.disconnects++;
	/* 0 and reason codes (>= 0x80) come from a DISCONNECT the broker sent;
	 * smaller values are libmosquitto's own MOSQ_ERR_*. */
	if (rc == 0 || rc >= 0x80) {
		err = XMQ_EREFUSED;
		reason = rc;
	} else {
		err = xmq__err_from_mosq(rc);
		reason = xmq__reason_from_err(err);
	}
	if (m->cb.disconnect != NULL)
		m->cb.disconnect(m, err, reason);
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *line)
{
	xmq_mqtt_t *m = obj;

	if (m->cb.log != NULL)
		m->cb.log(m, level, line);
}

/* ---- making one --------------------------------------------------------- */

/* Free what xmq_mqtt_new() allocated; no handle may be live. */
static void dispose(xmq_mqtt_t *m)
{
	xmq__mqtt_held_free(m);
	if (m->mosq != NULL)
		mosquitto_destroy(m->mosq);
	m->mosq = NULL;
	mosquitto_property_free_all(&m->connect_props);
	free(m->host);
	m->host = NULL;
	free(m->qos1_mids);
	m->qos1_mids = NULL;
	free(m->will);
	m->will = NULL;
	if (m->linger_fd >= 0)
		close(m->linger_fd);
	m->linger_fd = -1;
}

int xmq_mqtt_new(uv_loop_t *loop, const xmq_mqtt_opts_t *o, const xmq_mqtt_cb_t *cb,
                 void *data, xmq_mqtt_t **out)
{
	xmq_mqtt_t *m = NULL;
	uint16_t keepalive;
	int err, rc;

	if (loop == NULL || o == NULL || out == NULL || o->client_id == NULL ||
	    o->client_id[0] == '\0')
		return -EINVAL;
	keepalive = o->keepalive != 0 ? o->keepalive : KEEPALIVE_DEFAULT;
	if (keepalive < 5)
		return -EINVAL;
	uv_once(&lib_once, lib_init);

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->loop = loop;
	if (cb != NULL)
		m->cb = *cb;
	m->data = data;
	m->keepalive = keepalive;
	m->session_expiry = o->session_expiry;
	m->fresh_owed = o->clean_start;
	m->backoff_ms = BACKOFF_MIN_MS;
	m->held_tail = &m->held_head;
	m->linger_fd = -1;
	err = xmq__mqtt_address_parse(o->address, &m->host, &m->port);
	if (err < 0)
		goto out;

	m->mosq = mosquitto_new(o->client_id, false, m);
	if (m->mosq == NULL) {
		err = errno == EINVAL ? -EINVAL : -ENOMEM;
		goto out;
	}
	rc = mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	if (rc == MOSQ_ERR_SUCCESS && o->receive_max != 0)
		rc = mosquitto_int_option(m->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, o->receive_max);
	if (rc == MOSQ_ERR_SUCCESS && o->session_expiry != 0)
		rc = mosquitto_property_add_int32(&m->connect_props,
		                                  MQTT_PROP_SESSION_EXPIRY_INTERVAL,
		                                  o->session_expiry);
	if (rc != MOSQ_ERR_SUCCESS) {
		err = xmq__err_from_mosq(rc);
		goto out;
	}
	if (o->will != NULL) {
		err = xmq__mqtt_keep_will(m, o->will);
		if (err < 0)
			goto out;
	}
	mosquitto_connect_v5_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
	mosquitto_message_v5_callback_set(m->mosq, xmq__mqtt_on_message);
	mosquitto_publish_v5_callback_set(m->mosq, xmq__mqtt_on_publish);
	mosquitto_subscribe_v5_callback_set(m->mosq, xmq__mqtt_on_subscribe);
	mosquitto_unsubscribe_v5_callback_set(m->mosq, xmq__mqtt_on_unsubscribe);
	if (m->cb.log != NULL)
		mosquitto_log_callback_set(m->mosq, on_log);

	/* uv_timer_init() cannot fail on a valid loop: once these are
	 * initialised only xmq_mqtt_close() may end m. */
	uv_timer_init(loop, &m->timer);
	uv_timer_init(loop, &m->kick);
	m->timer.data = m;
	m->kick.data = m;
	*out = m;
	m = NULL;
	err = 0;
out:
	if (m != NULL) {
		dispose(m);
		free(m);
	}
	return err;
}

void *xmq_mqtt_data(const xmq_mqtt_t *m)
{
	return m->data;
}

int xmq_mqtt_start(xmq_mqtt_t *m)
{
	if (m->state >= S_CLOSING)
		return -ESHUTDOWN;
	if (m->started)
		return -EALREADY;
	m->started = true;
	try_connect(m);
	return 0;
}

bool xmq_mqtt_connected(const xmq_mqtt_t *m)
{
	return m->state == S_OPEN;
}

/* ---- closing ------------------------------------------------------------ */

static void on_timer_closed(uv_handle_t *h)
{
	xmq_mqtt_t *m = h->data;

	if (--m->pending == 0)
		close_continue(m);
}

/*
 * linger_io - closing, the poll on linger_fd: write what libmosquitto still
 * has (its DISCONNECT), drop what the broker still sends, and stop at its
 * EOF (it has read our DISCONNECT) or error.
 */
static void linger_io(xmq_mqtt_t *m, int status, int events)
{
	char buf[4096];
	bool done = status < 0;
	ssize_t n;
	int i;

	if (!done && (events & UV_WRITABLE) && mosquitto_socket(m->mosq) >= 0) {
		m->depth++;
		(void)mosquitto_loop_write(m->mosq, 1);
		m->depth--;
	}
	for (i = 0; !done && (events & UV_READABLE) && i < READ_BUDGET; i++) {
		n = recv(m->linger_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			done = true;
		break;
	}
	if (done)
		poll_release(m);  /* on_poll_closed() closes linger_fd */
	else
		xmq__mqtt_update_poll(m);
}

/*
 * close_continue - the steps of closing, each run when the one before is
 * done: move the poll to our duplicate of the socket and linger there until
 * the broker closes (or DRAIN_MS), close every handle, then free everything
 * and tell the owner.
 */
static void close_continue(xmq_mqtt_t *m)
{
	void (*closed)(xmq_mqtt_t *m);

	if (m->depth > 0)
		return;  /* inside libmosquitto: after_mosq() comes back here */
	if (m->state == S_CLOSING) {
		if (m->poll_closing || m->lingering)
			return;  /* on_poll_closed() comes back here */
		if (m->linger_fd >= 0) {
			if (uv_poll_init_socket(m->loop, &m->poll, m->linger_fd) == 0) {
				m->poll.data = m;
				m->poll_live = true;
				m->lingering = true;
				m->poll_events = 0;
				xmq__mqtt_update_poll(m);
				return;
			}
			close(m->linger_fd);
			m->linger_fd = -1;
		}
		m->state = S_CLOSED;
		m->pending = 2;
		uv_close((uv_handle_t *)&m->timer, on_timer_closed);
		uv_close((uv_handle_t *)&m->kick, on_timer_closed);
		return;
	}
	if (m->state != S_CLOSED || m->pending > 0)
		return;
	dispose(m);
	closed = m->cb.closed;
	if (closed != NULL)
		closed(m);
	free(m);
}

void xmq_mqtt_close(xmq_mqtt_t *m, int reason, uint32_t expiry)
{
	mosquitto_property *props = NULL;
	int fd;

	if (m == NULL || m->state >= S_CLOSING)
		return;
	m->state = S_CLOSING;
	uv_timer_stop(&m->timer);
	uv_timer_stop(&m->kick);
	if (m->poll_live) {
		/* Stop polling libmosquitto's descriptor while it is open: it
		 * closes it once the DISCONNECT is written. */
		fd = mosquitto_socket(m->mosq);
		poll_release(m);
		m->linger_fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
		if (m->cur_expiry != 0 && expiry != m->cur_expiry &&
		    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
		                                 expiry) != MOSQ_ERR_SUCCESS)
			props = NULL;
		m->depth++;
		(void)mosquitto_disconnect_v5(m->mosq, reason & 0xff, props);
		m->depth--;
		mosquitto_property_free_all(&props);
		uv_timer_start(&m->timer, xmq__mqtt_on_tick, DRAIN_MS, 0);
	}
	close_continue(m);
}

void xmq_mqtt_stats(const xmq_mqtt_t *m, xmq_mqtt_stats_t *out)
{
	*out = m->stats;
}
