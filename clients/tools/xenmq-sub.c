/* SPDX-License-Identifier: MIT */
/*
 * xenmq-sub - subscribe and print messages, like mosquitto_sub, through
 * libxenmq: from the agent, a PV channel or Mosquitto, whichever the URL
 * names.
 *
 * The subscriptions are made once and kept by the library across
 * reconnections. What is printed, and how (-v, -N, -F), follows
 * mosquitto_sub, so that scripts written for it read xenmq-sub's output the
 * same way; -F sequences that need something libxenmq does not carry (packet
 * ids, topic aliases, subscription identifiers) are refused up front rather
 * than printed empty.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "xenmq.h"
#include "clients/tools/client_shared.h"

#define NOTICE_MS 5000

typedef struct sub {
	tool_opts_t o;
	xmq_client_t *c;
	uv_timer_t timeout;       /* -W */
	tool_signals_t signals;    /* SIGINT, SIGTERM */
	uv_timer_t notice;        /* "still connecting" */
	int *sub_mids;            /* one per group of XMQ_FILTERS_MAX topics */
	int ngroups;
	int answered;             /* filters the broker answered */
	int refused;
	int unsub_pending;        /* UNSUBSCRIBE requests unanswered */
	unsigned long printed;
	bool ever_connected;
	bool finishing;
	int status;
} sub_t;

static void finish(sub_t *s, int status);

static void usage(void)
{
	static const tool_opts_t o = { .kind = TOOL_SUB, .name = "xenmq-sub" };

	printf("xenmq-sub prints the messages of xenmq topics (agent, PV channel or Mosquitto).\n\n"
	       "Usage: xenmq-sub [-L URL] -t FILTER... [-U FILTER]... [-q QOS] [-v] [-N]\n"
	       "                 [-F FORMAT] [-C COUNT] [-W SECONDS] [-R | --retained-only] [-E]\n"
	       "                 [--retain-as-published] [-i NAME] [-c] [-x SECONDS]"
	       " [-k SECONDS]\n"
	       "                 [--will-topic TOPIC [--will-payload TEXT] [--will-qos QOS]"
	       " [--will-retain]]\n"
	       "                 [-D will PROP VALUE]... [-d] [--quiet]\n\n"
	       " -t, --topic FILTER subscribe to FILTER (+ and # wildcards); repeatable\n"
	       " -U FILTER          unsubscribe from FILTER (in a resumed session); repeatable\n"
	       " -q QOS             the highest QoS to receive with: 0 or 1\n"
	       " -v                 print \"topic payload\"\n"
	       " -N                 no newline after each message\n"
	       " -F FORMAT          print as FORMAT: %%t topic, %%p payload, %%x/%%X payload in hex,\n"
	       "                    %%l length, %%q QoS, %%r retained, %%P user properties as\n"
	       "                    name:value, %%C content type, %%D correlation data, %%E expiry,\n"
	       "                    %%F payload format, %%R response topic, %%I ISO 8601 time,\n"
	       "                    %%U Unix time, @X strftime %%X, \\n \\t \\0 ... as in mosquitto_sub\n"
	       " -C COUNT           exit after COUNT messages\n"
	       " -W SECONDS         exit after SECONDS once connected (status 27)\n"
	       " -R                 do not print retained messages\n"
	       " --retained-only    print only retained messages; exit at the first live one\n"
	       " -E                 exit once the subscriptions are acknowledged\n"
	       " --retain-as-published  keep the publisher's retain flag\n");
	tool_print_common_help(&o);
	printf("\nExit status: 0; 27 after -W; the broker's reason code if it refused the\n"
	       "connection; 1 for other errors, e.g. when every subscription was refused.\n");
}

/* ---- -F ------------------------------------------------------------------ */

struct field {
	char align;      /* '-' or 0 */
	char pad;        /* ' ' or '0' */
	int width;
	int precision;   /* -1: none */
};

/* Parse "%[-][0][width][.precision]" after the '%' at *i; returns the
 * conversion character, or 0 if the format ends first. */
static char parse_field(const char *fmt, size_t *i, struct field *f)
{
	size_t j = *i + 1;

	f->align = 0;
	f->pad = ' ';
	f->width = 0;
	f->precision = -1;
	if (fmt[j] == '-')
		f->align = fmt[j++];
	if (fmt[j] == '0') {
		f->pad = '0';
		j++;
	}
	while (fmt[j] >= '0' && fmt[j] <= '9' && f->width < 10000)
		f->width = f->width * 10 + (fmt[j++] - '0');
	if (fmt[j] == '.') {
		j++;
		f->precision = 0;
		while (fmt[j] >= '0' && fmt[j] <= '9' && f->precision < 10000)
			f->precision = f->precision * 10 + (fmt[j++] - '0');
	}
	*i = j;
	return fmt[j];
}

/* Whether every sequence of fmt can be printed; says which cannot. */
static bool format_ok(const tool_opts_t *o, const char *fmt)
{
	struct field f;
	size_t i;
	char c;

	for (i = 0; fmt[i] != '\0'; i++) {
		if (fmt[i] != '%')
			continue;
		c = parse_field(fmt, &i, &f);
		if (c == '\0')
			break;
		if (strchr("%tpxXlqrPCDEFRIU", c) != NULL)
			continue;
		if (c == 'm')
			tool_err(o, "-F: %%m is not available: libxenmq does not hand out the packet "
			            "ids of received messages");
		else if (c == 'j' || c == 'J')
			tool_err(o, "-F: %%%c (JSON) is not available in xenmq-sub; build the line "
			            "from %%t, %%p, %%q, %%r and %%P instead", c);
		else if (c == 'A' || c == 'S')
			tool_err(o, "-F: %%%c is not available: xenmq carries no topic aliases or "
			            "subscription identifiers", c);
		else
			tool_err(o, "-F: unknown sequence %%%c; xenmq-sub --help lists them", c);
		return false;
	}
	return true;
}

static void print_str(const char *v, const struct field *f)
{
	int w = f->width;
	int p = f->precision;

	if (p >= 0)
		printf(f->align == '-' ? "%-*.*s" : "%*.*s", w, p, v);
	else
		printf(f->align == '-' ? "%-*s" : "%*s", w, v);
}

static void print_int(long v, const struct field *f)
{
	if (f->align == '-')
		printf("%-*ld", f->width, v);
	else if (f->pad == '0')
		printf("%0*ld", f->width, v);
	else
		printf("%*ld", f->width, v);
}

static void print_blank(const struct field *f)
{
	printf("%*s", f->width, "");
}

/* The payload raw (hex 0), or in hex (1 lower case, 2 upper case), padded. */
static void print_payload(const xmq_message_t *m, int hex, const struct field *f)
{
	const unsigned char *b = m->payload;
	size_t n = m->payload_len;
	size_t shown = hex != 0 ? n * 2 : n;
	size_t pad = (size_t)f->width > shown ? (size_t)f->width - shown : 0;
	size_t i;

	if (f->align != '-')
		for (i = 0; i < pad; i++)
			putchar(f->pad);
	if (hex == 0 && n > 0)
		fwrite(b, 1, n, stdout);
	for (i = 0; hex != 0 && i < n; i++)
		printf(hex == 1 ? "%02x" : "%02X", b[i]);
	if (f->align == '-')
		printf("%*s", (int)pad, "");
}

/*
 * strftime() with a conversion chosen by the user (-F "@X"): the format is
 * built here from one character, which is what makes it safe to pass.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static size_t strftime_one(char *buf, size_t len, char conv, const struct tm *tm)
{
	char fmt[3] = { '%', conv, '\0' };

	return strftime(buf, len, fmt, tm);
}
#pragma GCC diagnostic pop

struct now {
	bool have;
	struct tm tm;
	long ns;
	time_t s;
};

static const struct tm *now_tm(struct now *t)
{
	struct timespec ts;

	if (!t->have) {
		clock_gettime(CLOCK_REALTIME, &ts);
		t->s = ts.tv_sec;
		t->ns = ts.tv_nsec;
		localtime_r(&t->s, &t->tm);
		t->have = true;
	}
	return &t->tm;
}

static void print_percent(const xmq_message_t *m, char c, const struct field *f, struct now *t)
{
	const xmq_props_t *p = &m->props;
	char buf[64];
	size_t i;

	switch (c) {
	case '%':
		putchar('%');
		break;
	case 't':
		print_str(m->topic, f);
		break;
	case 'p':
		print_payload(m, 0, f);
		break;
	case 'x':
		print_payload(m, 1, f);
		break;
	case 'X':
		print_payload(m, 2, f);
		break;
	case 'l':
		print_int((long)m->payload_len, f);
		break;
	case 'q':
		putchar('0' + m->qos);
		break;
	case 'r':
		putchar(m->retain ? '1' : '0');
		break;
	case 'P':
		/* As mosquitto_sub: name:value pairs separated by a space. */
		for (i = 0; i < p->user_count; i++)
			printf("%s%s:%s", i > 0 ? " " : "", p->user[i].name, p->user[i].value);
		break;
	case 'C':
		if (p->content_type != NULL)
			print_str(p->content_type, f);
		else
			print_blank(f);
		break;
	case 'D':
		if (p->correlation_data != NULL)
			fwrite(p->correlation_data, 1, p->correlation_len, stdout);
		break;
	case 'E':
		if (p->has_message_expiry)
			print_int((long)p->message_expiry, f);
		else
			print_blank(f);
		break;
	case 'F':
		if (p->has_payload_format)
			print_int(p->payload_format, f);
		else
			print_blank(f);
		break;
	case 'R':
		if (p->response_topic != NULL)
			print_str(p->response_topic, f);
		break;
	case 'I':
		if (strftime(buf, sizeof(buf), "%FT%T%z", now_tm(t)) != 0)
			print_str(buf, f);
		break;
	case 'U':
		now_tm(t);
		printf("%lld.%09ld", (long long)t->s, t->ns);
		break;
	default:
		break;
	}
}

static void print_formatted(const sub_t *s, const xmq_message_t *m)
{
	const char *fmt = s->o.format;
	struct now t = { .have = false };
	struct field f;
	char buf[128];
	size_t i;
	char c;

	for (i = 0; fmt[i] != '\0'; i++) {
		if (fmt[i] == '%') {
			c = parse_field(fmt, &i, &f);
			if (c == '\0')
				break;
			print_percent(m, c, &f, &t);
		} else if (fmt[i] == '@' && fmt[i + 1] != '\0') {
			c = fmt[++i];
			if (c == '@') {
				putchar('@');
			} else if (c == 'N') {
				now_tm(&t);
				printf("%09ld", t.ns);
			} else {
				if (strftime_one(buf, sizeof(buf), c, now_tm(&t)) != 0)
					fputs(buf, stdout);
			}
		} else if (fmt[i] == '\\' && fmt[i + 1] != '\0') {
			c = fmt[++i];
			switch (c) {
			case '\\': putchar('\\'); break;
			case '0': putchar('\0'); break;
			case 'a': putchar('\a'); break;
			case 'e': putchar('\033'); break;
			case 'n': putchar('\n'); break;
			case 'r': putchar('\r'); break;
			case 't': putchar('\t'); break;
			case 'v': putchar('\v'); break;
			default: break;
			}
		} else {
			putchar(fmt[i]);
		}
	}
	if (!s->o.no_eol)
		putchar('\n');
}

/* As mosquitto_sub prints: an empty payload prints nothing, or "(null)". */
static void print_message(const sub_t *s, const xmq_message_t *m)
{
	const char *eol = s->o.no_eol ? "" : "\n";

	if (s->o.format != NULL) {
		print_formatted(s, m);
	} else if (s->o.verbose) {
		if (m->payload_len > 0) {
			printf("%s ", m->topic);
			fwrite(m->payload, 1, m->payload_len, stdout);
			fputs(eol, stdout);
		} else if (!s->o.no_eol) {
			printf("%s (null)\n", m->topic);
		}
	} else if (m->payload_len > 0) {
		fwrite(m->payload, 1, m->payload_len, stdout);
		fputs(eol, stdout);
	}
	fflush(stdout);
}

/* ---- client callbacks ---------------------------------------------------- */

static void on_timeout(uv_timer_t *t)
{
	sub_t *s = t->data;

	tool_err(&s->o, "timed out after %lu s", s->o.timeout);
	finish(s, TOOL_EXIT_TIMEOUT);
}

static void on_connect(xmq_client_t *c, int reason, bool session_present)
{
	sub_t *s = xmq_client_data(c);

	if (reason != 0) {
		tool_err(&s->o, "connection refused: %s", xmq_reason_string(reason));
		finish(s, reason);
		return;
	}
	tool_debug(&s->o, "connected to %s (session %s)", xmq_client_url(c),
	           session_present ? "resumed" : "new");
	uv_timer_stop(&s->notice);
	if (!s->ever_connected && s->o.timeout > 0)
		uv_timer_start(&s->timeout, on_timeout, (uint64_t)s->o.timeout * 1000, 0);
	s->ever_connected = true;
}

static void on_disconnect(xmq_client_t *c, int reason)
{
	sub_t *s = xmq_client_data(c);

	tool_debug(&s->o, "disconnected: %s; reconnecting", xmq_reason_string(reason));
}

static void maybe_exit_on_suback(sub_t *s)
{
	if (s->o.exit_on_suback && s->answered == s->o.ntopics && s->unsub_pending == 0)
		finish(s, TOOL_EXIT_OK);
}

static void on_subscribe(xmq_client_t *c, int mid, int count, const uint8_t *reasons)
{
	sub_t *s = xmq_client_data(c);
	int g, i, first;

	for (g = 0; g < s->ngroups && s->sub_mids[g] != mid; g++)
		;
	if (g == s->ngroups)
		return;
	first = g * XMQ_FILTERS_MAX;
	for (i = 0; i < count && first + i < s->o.ntopics; i++) {
		if (reasons[i] >= 0x80) {
			tool_err(&s->o, "subscription to \"%s\" refused: %s", s->o.topics[first + i],
			         xmq_reason_string(reasons[i]));
			s->refused++;
		} else {
			tool_debug(&s->o, "subscribed to \"%s\" (QoS %d)", s->o.topics[first + i],
			           reasons[i]);
		}
		s->answered++;
	}
	if (s->answered == s->o.ntopics && s->refused == s->o.ntopics && s->unsub_pending == 0) {
		tool_err(&s->o, "every subscription was refused");
		finish(s, TOOL_EXIT_ERROR);
		return;
	}
	maybe_exit_on_suback(s);
}

static void on_unsubscribe(xmq_client_t *c, int mid, int count, const uint8_t *reasons)
{
	sub_t *s = xmq_client_data(c);

	tool_debug(&s->o, "unsubscribed (mid %d)", mid);
	s->unsub_pending--;
	if (s->o.ntopics == 0 && s->unsub_pending == 0) {
		/* Only -U: the work is done. */
		finish(s, TOOL_EXIT_OK);
		return;
	}
	maybe_exit_on_suback(s);
}

static void on_message(xmq_client_t *c, const xmq_message_t *m)
{
	sub_t *s = xmq_client_data(c);

	if (s->finishing)
		return;
	if (s->o.retained_only && !m->retain) {
		finish(s, TOOL_EXIT_OK);
		return;
	}
	if (s->o.no_retained && m->retain)
		return;
	print_message(s, m);
	s->printed++;
	if (s->o.count > 0 && s->printed >= s->o.count)
		finish(s, TOOL_EXIT_OK);
}

static const xmq_client_cb_t client_cb = {
	.connect = on_connect,
	.disconnect = on_disconnect,
	.message = on_message,
	.subscribe = on_subscribe,
	.unsubscribe = on_unsubscribe,
};

static void on_notice(uv_timer_t *t)
{
	sub_t *s = t->data;
	const char *url = xmq_client_url(s->c);

	if (!s->ever_connected)
		tool_err(&s->o, "still connecting to %s; is the %s running?", url,
		         strncmp(url, "mqtt", 4) == 0 ? "broker" :
		         strncmp(url, "hvc:", 4) == 0 ? "broker in Dom0" : "agent");
}

/* ---- start and end ------------------------------------------------------- */

static void on_client_closed(void *data)
{
}

/* SIGINT or SIGTERM: end the session normally and exit. */
static void on_stop_signal(void *data)
{
	finish(data, TOOL_EXIT_OK);
}

static void finish(sub_t *s, int status)
{
	if (s->finishing)
		return;
	s->finishing = true;
	s->status = status;
	xmq_client_close(s->c, on_client_closed);
	uv_close((uv_handle_t *)&s->timeout, NULL);
	uv_close((uv_handle_t *)&s->notice, NULL);
	tool_signals_close(&s->signals);
}

/* Subscriptions first, then unsubscriptions, as mosquitto_sub does. */
static int request_all(sub_t *s)
{
	uint8_t options = (uint8_t)s->o.qos;
	int g, n, err;

	if (s->o.retain_as_published)
		options |= XMQ_SUB_RETAIN_AS_PUBLISHED;
	s->ngroups = (s->o.ntopics + XMQ_FILTERS_MAX - 1) / XMQ_FILTERS_MAX;
	s->sub_mids = calloc((size_t)s->ngroups + 1, sizeof(*s->sub_mids));
	if (s->sub_mids == NULL)
		return -ENOMEM;
	for (g = 0; g < s->ngroups; g++) {
		n = s->o.ntopics - g * XMQ_FILTERS_MAX;
		if (n > XMQ_FILTERS_MAX)
			n = XMQ_FILTERS_MAX;
		err = xmq_client_subscribe(s->c, n, s->o.topics + g * XMQ_FILTERS_MAX, options,
		                           &s->sub_mids[g]);
		if (err != 0)
			return err;
	}
	for (g = 0; g * XMQ_FILTERS_MAX < s->o.nunsub; g++) {
		n = s->o.nunsub - g * XMQ_FILTERS_MAX;
		if (n > XMQ_FILTERS_MAX)
			n = XMQ_FILTERS_MAX;
		err = xmq_client_unsubscribe(s->c, n, s->o.unsub + g * XMQ_FILTERS_MAX, NULL);
		if (err != 0)
			return err;
		s->unsub_pending++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uv_loop_t loop;
	sub_t s;
	int rc;

	memset(&s, 0, sizeof(s));
	rc = tool_parse(&s.o, TOOL_SUB, argc, argv);
	if (rc == TOOL_PARSE_RUN && s.o.format != NULL && !format_ok(&s.o, s.o.format))
		rc = TOOL_PARSE_BAD;
	if (rc != TOOL_PARSE_RUN) {
		if (rc == TOOL_PARSE_HELP)
			usage();
		else if (rc == TOOL_PARSE_VERSION)
			tool_print_version(&s.o);
		tool_opts_dispose(&s.o);
		return rc == TOOL_PARSE_BAD ? TOOL_EXIT_ERROR : TOOL_EXIT_OK;
	}
	if (uv_loop_init(&loop) != 0) {
		tool_opts_dispose(&s.o);
		return TOOL_EXIT_ERROR;
	}
	if (tool_client_new(&loop, &s.o, &client_cb, &s, &s.c) != 0) {
		rc = TOOL_EXIT_ERROR;
		goto out;
	}
	uv_timer_init(&loop, &s.timeout);
	s.timeout.data = &s;
	uv_timer_init(&loop, &s.notice);
	s.notice.data = &s;
	uv_timer_start(&s.notice, on_notice, NOTICE_MS, 0);
	if (tool_signals_start(&loop, &s.signals, on_stop_signal, &s) != 0)
		tool_err(&s.o, "cannot handle SIGINT and SIGTERM");
	rc = request_all(&s);
	if (rc == 0)
		rc = xmq_client_start(s.c);
	if (rc != 0) {
		tool_err(&s.o, "cannot subscribe: %s", xmq_strerror(rc));
		finish(&s, TOOL_EXIT_ERROR);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	rc = s.status;
out:
	(void)uv_loop_close(&loop);
	free(s.sub_mids);
	tool_opts_dispose(&s.o);
	return rc;
}
