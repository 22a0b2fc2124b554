/* SPDX-License-Identifier: MIT */
/*
 * client_shared.c - option parsing and client set-up for xenmq-pub and
 * xenmq-sub.
 *
 * One table names every option, the tools that take it and whether it takes
 * a value; one switch stores each into tool_opts_t; the checks that need
 * several options at once come after the loop. A mistake gets one line that
 * says what was wrong and how to put it right, never the whole help.
 * Property names (-D) are libmosquitto's, so that the same spelling works
 * with mosquitto_pub and with xenmq-pub; topic syntax is libmosquitto's too,
 * so that a bad topic is reported before anything connects.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "clients/tools/client_shared.h"

#define PUB (1u << TOOL_PUB)
#define SUB (1u << TOOL_SUB)
#define BOTH (PUB | SUB)

enum opt_id {
	O_URL, O_TOPIC, O_QOS, O_ID, O_RESUME, O_EXPIRY, O_KEEPALIVE, O_PROPERTY,
	O_WILL_TOPIC, O_WILL_PAYLOAD, O_WILL_QOS, O_WILL_RETAIN, O_DEBUG, O_QUIET,
	O_HELP, O_VERSION,
	O_MESSAGE, O_FILE, O_STDIN, O_LINES, O_NULL, O_RETAIN, O_REPEAT, O_REPEAT_DELAY,
	O_UNSUB, O_VERBOSE, O_COUNT, O_TIMEOUT, O_NO_EOL, O_FORMAT, O_NO_RETAINED,
	O_RETAINED_ONLY, O_EXIT_SUBACK, O_RAP
};

static const struct opt {
	const char *s;   /* short form, or NULL */
	const char *l;   /* long form, or NULL */
	enum opt_id id;
	bool arg;        /* takes a value (-D takes several: handled apart) */
	unsigned tools;
} opts[] = {
	{ "-L", "--url", O_URL, true, BOTH },
	{ "-t", "--topic", O_TOPIC, true, BOTH },
	{ "-q", "--qos", O_QOS, true, BOTH },
	{ "-i", "--id", O_ID, true, BOTH },
	{ "-c", "--disable-clean-session", O_RESUME, false, BOTH },
	{ "-x", "--session-expiry", O_EXPIRY, true, BOTH },
	{ "-k", "--keepalive", O_KEEPALIVE, true, BOTH },
	{ "-D", "--property", O_PROPERTY, false, BOTH },
	{ NULL, "--will-topic", O_WILL_TOPIC, true, BOTH },
	{ NULL, "--will-payload", O_WILL_PAYLOAD, true, BOTH },
	{ NULL, "--will-qos", O_WILL_QOS, true, BOTH },
	{ NULL, "--will-retain", O_WILL_RETAIN, false, BOTH },
	{ "-d", "--debug", O_DEBUG, false, BOTH },
	{ NULL, "--quiet", O_QUIET, false, BOTH },
	{ NULL, "--help", O_HELP, false, BOTH },
	{ NULL, "--version", O_VERSION, false, BOTH },
	{ "-m", "--message", O_MESSAGE, true, PUB },
	{ "-f", "--file", O_FILE, true, PUB },
	{ "-s", "--stdin-file", O_STDIN, false, PUB },
	{ "-l", "--stdin-line", O_LINES, false, PUB },
	{ "-n", "--null-message", O_NULL, false, PUB },
	{ "-r", "--retain", O_RETAIN, false, PUB },
	{ NULL, "--repeat", O_REPEAT, true, PUB },
	{ NULL, "--repeat-delay", O_REPEAT_DELAY, true, PUB },
	{ "-U", "--unsubscribe", O_UNSUB, true, SUB },
	{ "-v", "--verbose", O_VERBOSE, false, SUB },
	{ "-C", "--count", O_COUNT, true, SUB },
	{ "-W", "--timeout", O_TIMEOUT, true, SUB },
	{ "-N", "--no-eol", O_NO_EOL, false, SUB },
	{ "-F", "--format", O_FORMAT, true, SUB },
	{ "-R", "--no-retained", O_NO_RETAINED, false, SUB },
	{ NULL, "--retained-only", O_RETAINED_ONLY, false, SUB },
	{ "-E", "--exit-on-suback", O_EXIT_SUBACK, false, SUB },
	{ NULL, "--retain-as-published", O_RAP, false, SUB },
};

/* ---- messages ------------------------------------------------------------ */

static void vsay(const tool_opts_t *o, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", o->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void tool_err(const tool_opts_t *o, const char *fmt, ...)
{
	va_list ap;

	if (o->quiet)
		return;
	va_start(ap, fmt);
	vsay(o, fmt, ap);
	va_end(ap);
}

void tool_debug(const tool_opts_t *o, const char *fmt, ...)
{
	va_list ap;

	if (!o->debug)
		return;
	va_start(ap, fmt);
	vsay(o, fmt, ap);
	va_end(ap);
}

/* A mistake on the command line: always said, --quiet or not. */
static int bad(const tool_opts_t *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(const tool_opts_t *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(o, fmt, ap);
	va_end(ap);
	return TOOL_PARSE_BAD;
}

void tool_print_version(const tool_opts_t *o)
{
	int major, minor, rev;

	mosquitto_lib_version(&major, &minor, &rev);
	printf("%s %s (libxenmq %s, libmosquitto %d.%d.%d, libuv %s)\n", o->name, XENMQ_VERSION,
	       xmq_version(), major, minor, rev, uv_version_string());
}

void tool_print_common_help(const tool_opts_t *o)
{
	printf(" -L, --url URL      where to connect: agent:/PATH, hvc:/PATH, mqtt://HOST[:PORT]\n"
	       "                    or mqtt+unix:/PATH. Default: $XENMQ_URL, else %s\n"
	       " -i, --id NAME      application name ([A-Za-z0-9_.-], at most 64); the MQTT\n"
	       "                    client id is <domain>/NAME via an agent, NAME otherwise.\n"
	       "                    Default: xenmq-<pid>\n"
	       " -c                 resume the session kept under this name (needs -i)\n"
	       " -x SECONDS         session expiry; -1 for never. Default: 0, or %d with -c\n"
	       " -k SECONDS         keepalive. Default: 10\n"
	       " -q QOS             0 or 1. Default: 0\n"
	       " -D CMD PROP VALUE  an MQTT v5 property; CMD is %s, PROP one of\n"
	       "                    payload-format-indicator, message-expiry-interval,\n"
	       "                    content-type, response-topic, correlation-data,\n"
	       "                    user-property NAME VALUE\n"
	       " --will-topic TOPIC, --will-payload TEXT, --will-qos QOS, --will-retain\n"
	       "                    the message the broker publishes if this client is lost\n"
	       " -d, --debug        say what happens on stderr\n"
	       " --quiet            no error messages at run time\n"
	       " --help, --version\n", XMQ_DEFAULT_URL, TOOL_RESUME_EXPIRY,
	       o->kind == TOOL_PUB ? "publish or will" : "will");
}

/* ---- values -------------------------------------------------------------- */

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

static bool app_valid(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");

	return n > 0 && n <= XMQ_APP_MAX && s[n] == '\0';
}

static bool topic_valid(const char *s)
{
	return s[0] != '\0' && mosquitto_pub_topic_check(s) == MOSQ_ERR_SUCCESS &&
	       mosquitto_validate_utf8(s, (int)strlen(s)) == MOSQ_ERR_SUCCESS;
}

static bool filter_valid(const char *s)
{
	return s[0] != '\0' && mosquitto_sub_topic_check(s) == MOSQ_ERR_SUCCESS &&
	       mosquitto_validate_utf8(s, (int)strlen(s)) == MOSQ_ERR_SUCCESS;
}

static int parse_qos(const tool_opts_t *o, const char *opt, const char *v, int *qos)
{
	unsigned long q;

	if (!parse_ulong(v, 2, &q))
		return bad(o, "%s takes 0 or 1, not \"%s\"", opt, v);
	if (q == 2)
		return bad(o, "%s 2: xenmq carries QoS 0 and 1 only; use -q 1", opt);
	*qos = (int)q;
	return 0;
}

/*
 * -D CMD PROP VALUE, or -D CMD user-property NAME VALUE, starting at
 * argv[*i] (the -D). Moves *i to the last word used.
 */
static int parse_property(tool_opts_t *o, int argc, char **argv, int *i)
{
	const char *cmd_s, *name, *value;
	tool_props_t *tp;
	xmq_props_t *p;
	unsigned long v;
	int cmd, id, type;

	if (*i + 3 >= argc)
		return bad(o, "-D needs a command, a property and a value, e.g. "
		              "-D %s content-type text/plain", o->kind == TOOL_PUB ? "publish" : "will");
	cmd_s = argv[*i + 1];
	name = argv[*i + 2];
	value = argv[*i + 3];
	if (mosquitto_string_to_command(cmd_s, &cmd) != MOSQ_ERR_SUCCESS)
		return bad(o, "-D: unknown command \"%s\"; use %s", cmd_s,
		           o->kind == TOOL_PUB ? "publish or will" : "will");
	if (cmd == CMD_PUBLISH && o->kind == TOOL_PUB)
		tp = &o->pub_props;
	else if (cmd == CMD_WILL)
		tp = &o->will_props;
	else
		return bad(o, "-D %s: xenmq carries no %s properties; %s takes %s", cmd_s, cmd_s,
		           o->name, o->kind == TOOL_PUB ? "publish and will" : "will");
	if (mosquitto_string_to_property_info(name, &id, &type) != MOSQ_ERR_SUCCESS)
		return bad(o, "-D %s: unknown property \"%s\"", cmd_s, name);
	if (mosquitto_property_check_command(cmd, id) != MOSQ_ERR_SUCCESS)
		return bad(o, "-D %s %s: MQTT does not allow that property there", cmd_s, name);
	p = &tp->p;
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
		if (p->has_payload_format)
			goto twice;
		if (!parse_ulong(value, 1, &v))
			return bad(o, "-D %s %s takes 0 (bytes) or 1 (UTF-8 text), not \"%s\"",
			           cmd_s, name, value);
		p->has_payload_format = true;
		p->payload_format = (uint8_t)v;
		break;
	case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
		if (p->has_message_expiry)
			goto twice;
		if (!parse_ulong(value, UINT32_MAX, &v))
			return bad(o, "-D %s %s takes seconds (0 to 4294967295), not \"%s\"",
			           cmd_s, name, value);
		p->has_message_expiry = true;
		p->message_expiry = (uint32_t)v;
		break;
	case MQTT_PROP_CONTENT_TYPE:
		if (p->content_type != NULL)
			goto twice;
		if (mosquitto_validate_utf8(value, (int)strlen(value)) != MOSQ_ERR_SUCCESS)
			return bad(o, "-D %s %s: the value is not UTF-8", cmd_s, name);
		p->content_type = value;
		break;
	case MQTT_PROP_RESPONSE_TOPIC:
		if (p->response_topic != NULL)
			goto twice;
		if (!topic_valid(value))
			return bad(o, "-D %s %s \"%s\": a response topic is a topic name, "
			              "without + or #", cmd_s, name, value);
		p->response_topic = value;
		break;
	case MQTT_PROP_CORRELATION_DATA:
		if (p->correlation_data != NULL)
			goto twice;
		p->correlation_data = value;
		p->correlation_len = strlen(value);
		break;
	case MQTT_PROP_USER_PROPERTY:
		if (*i + 4 >= argc)
			return bad(o, "-D %s user-property needs a name and a value", cmd_s);
		if (p->user_count == XMQ_USER_PROPS_MAX)
			return bad(o, "-D %s user-property: at most %d", cmd_s, XMQ_USER_PROPS_MAX);
		if (mosquitto_validate_utf8(value, (int)strlen(value)) != MOSQ_ERR_SUCCESS ||
		    mosquitto_validate_utf8(argv[*i + 4], (int)strlen(argv[*i + 4])) !=
		    MOSQ_ERR_SUCCESS)
			return bad(o, "-D %s user-property: name and value must be UTF-8", cmd_s);
		tp->user[p->user_count].name = value;
		tp->user[p->user_count].value = argv[*i + 4];
		p->user_count++;
		p->user = tp->user;
		*i += 1;
		break;
	default:
		return bad(o, "-D %s %s: xenmq does not carry that property", cmd_s, name);
	}
	*i += 3;
	return 0;
twice:
	return bad(o, "-D %s %s is given twice; it may appear once", cmd_s, name);
}

/* ---- the parser ----------------------------------------------------------- */

static const struct opt *find_opt(const char *arg)
{
	size_t i;

	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if ((opts[i].s != NULL && strcmp(arg, opts[i].s) == 0) ||
		    (opts[i].l != NULL && strcmp(arg, opts[i].l) == 0))
			return &opts[i];
	}
	return NULL;
}

static int set_mode(tool_opts_t *o, tool_mode_t mode, const char *arg)
{
	if (o->mode != MODE_NONE)
		return bad(o, "%s: only one message source at a time (-m, -f, -s, -l or -n)", arg);
	o->mode = mode;
	return 0;
}

static int parse_one(tool_opts_t *o, const struct opt *op, const char *arg, const char *v)
{
	unsigned long n;
	char *end;

	switch (op->id) {
	case O_URL:
		o->url = v;
		break;
	case O_TOPIC:
		if (o->kind == TOOL_PUB ? !topic_valid(v) : !filter_valid(v))
			return bad(o, o->kind == TOOL_PUB ?
			           "-t \"%s\" is not a topic one can publish to (no + or #, not empty)" :
			           "-t \"%s\" is not a valid filter (+ and # stand for whole levels, "
			           "# only last)", v);
		o->topics[o->ntopics++] = v;
		break;
	case O_QOS:
		return parse_qos(o, arg, v, &o->qos);
	case O_ID:
		if (!app_valid(v))
			return bad(o, "-i \"%s\": an application name is 1 to %d of "
			              "A-Z a-z 0-9 _ . -", v, XMQ_APP_MAX);
		o->app = v;
		break;
	case O_RESUME:
		o->resume = true;
		break;
	case O_EXPIRY:
		if (strcmp(v, "-1") == 0) {
			n = UINT32_MAX;
		} else if (!parse_ulong(v, UINT32_MAX, &n)) {
			return bad(o, "-x takes seconds (0 to 4294967295, or -1 for never), not \"%s\"",
			           v);
		}
		o->have_expiry = true;
		o->session_expiry = (uint32_t)n;
		break;
	case O_KEEPALIVE:
		if (!parse_ulong(v, 65535, &n) || n == 0)
			return bad(o, "-k takes seconds from 1 to 65535, not \"%s\"", v);
		o->keepalive = (uint16_t)n;
		break;
	case O_WILL_TOPIC:
		if (!topic_valid(v))
			return bad(o, "--will-topic \"%s\" is not a topic name (no + or #, not empty)",
			           v);
		o->will_topic = v;
		break;
	case O_WILL_PAYLOAD:
		o->will_payload = v;
		break;
	case O_WILL_QOS:
		return parse_qos(o, arg, v, &o->will_qos);
	case O_WILL_RETAIN:
		o->will_retain = true;
		break;
	case O_DEBUG:
		o->debug = true;
		break;
	case O_QUIET:
		o->quiet = true;
		break;
	case O_MESSAGE:
		o->message = v;
		return set_mode(o, MODE_MESSAGE, arg);
	case O_FILE:
		o->file = v;
		return set_mode(o, MODE_FILE, arg);
	case O_STDIN:
		return set_mode(o, MODE_STDIN, arg);
	case O_LINES:
		return set_mode(o, MODE_LINES, arg);
	case O_NULL:
		return set_mode(o, MODE_NULL, arg);
	case O_RETAIN:
		o->retain = true;
		break;
	case O_REPEAT:
		if (!parse_ulong(v, 1000000000, &n) || n == 0)
			return bad(o, "--repeat takes a count of 1 or more, not \"%s\"", v);
		o->repeat = n;
		break;
	case O_REPEAT_DELAY:
		errno = 0;
		o->repeat_delay = strtod(v, &end);
		if (errno != 0 || *end != '\0' || end == v || !(o->repeat_delay >= 0) ||
		    o->repeat_delay > 86400.0 * 365)
			return bad(o, "--repeat-delay takes seconds (e.g. 0.5), not \"%s\"", v);
		break;
	case O_UNSUB:
		if (!filter_valid(v))
			return bad(o, "-U \"%s\" is not a valid filter", v);
		o->unsub[o->nunsub++] = v;
		break;
	case O_VERBOSE:
		o->verbose = true;
		break;
	case O_COUNT:
		if (!parse_ulong(v, ULONG_MAX, &n) || n == 0)
			return bad(o, "-C takes a count of 1 or more, not \"%s\"", v);
		o->count = n;
		break;
	case O_TIMEOUT:
		if (!parse_ulong(v, 86400UL * 365, &n) || n == 0)
			return bad(o, "-W takes seconds, 1 or more, not \"%s\"", v);
		o->timeout = n;
		break;
	case O_NO_EOL:
		o->no_eol = true;
		break;
	case O_FORMAT:
		o->format = v;
		break;
	case O_NO_RETAINED:
		o->no_retained = true;
		break;
	case O_RETAINED_ONLY:
		o->retained_only = true;
		break;
	case O_EXIT_SUBACK:
		o->exit_on_suback = true;
		break;
	case O_RAP:
		o->retain_as_published = true;
		break;
	case O_PROPERTY:
	case O_HELP:
	case O_VERSION:
		break;
	}
	return 0;
}

/* The rules that involve several options. */
static int check(tool_opts_t *o)
{
	if (o->resume && o->app == NULL)
		return bad(o, "-c resumes the session kept under an application name: "
		              "give it with -i NAME");
	if (o->resume && !o->have_expiry)
		o->session_expiry = TOOL_RESUME_EXPIRY;
	if (o->will_topic == NULL && (o->will_payload != NULL || o->will_qos != 0 ||
	                              o->will_retain || o->will_props.p.user_count > 0 ||
	                              o->will_props.p.content_type != NULL ||
	                              o->will_props.p.response_topic != NULL ||
	                              o->will_props.p.correlation_data != NULL ||
	                              o->will_props.p.has_message_expiry ||
	                              o->will_props.p.has_payload_format))
		return bad(o, "the will options need --will-topic TOPIC");
	if (o->kind == TOOL_PUB) {
		if (o->ntopics == 0)
			return bad(o, "no topic: give the topic to publish to with -t TOPIC");
		if (o->ntopics > 1)
			return bad(o, "-t given %d times; xenmq-pub publishes to one topic", o->ntopics);
		if (o->mode == MODE_NONE)
			return bad(o, "no message: give one with -m TEXT, -f FILE, -s (all of stdin), "
			              "-l (one per line of stdin) or -n (empty)");
		if (o->mode == MODE_LINES && o->repeat > 1)
			return bad(o, "--repeat repeats one message; it does not go with -l");
		if (o->repeat == 0)
			o->repeat = 1;
	} else {
		if (o->ntopics == 0 && o->nunsub == 0)
			return bad(o, "no topic: give a filter to subscribe to with -t FILTER "
			              "(repeat -t for more)");
		if (o->no_retained && o->retained_only)
			return bad(o, "-R skips retained messages, --retained-only shows only them: "
			              "choose one");
	}
	return 0;
}

int tool_parse(tool_opts_t *o, tool_kind_t kind, int argc, char **argv)
{
	const struct opt *op;
	int err;
	int i;

	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->name = kind == TOOL_PUB ? "xenmq-pub" : "xenmq-sub";
	/* At most one entry per argument: no counting pass needed. */
	o->topics = calloc((size_t)argc + 1, sizeof(*o->topics));
	o->unsub = calloc((size_t)argc + 1, sizeof(*o->unsub));
	if (o->topics == NULL || o->unsub == NULL)
		return bad(o, "out of memory");
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];

		op = find_opt(arg);
		if (op == NULL) {
			if (arg[0] == '-')
				return bad(o, "unknown option %s; %s --help lists them", arg, o->name);
			return bad(o, "unexpected \"%s\": %s", arg, kind == TOOL_PUB ?
			           "the topic goes with -t and the message with -m" :
			           "filters go with -t");
		}
		if (!(op->tools & (1u << kind)))
			return bad(o, "%s is an option of %s, not of %s", arg,
			           kind == TOOL_PUB ? "xenmq-sub" : "xenmq-pub", o->name);
		if (op->id == O_HELP)
			return TOOL_PARSE_HELP;
		if (op->id == O_VERSION)
			return TOOL_PARSE_VERSION;
		if (op->id == O_PROPERTY) {
			err = parse_property(o, argc, argv, &i);
			if (err != 0)
				return err;
			continue;
		}
		if (op->arg && i + 1 >= argc)
			return bad(o, "%s needs a value", arg);
		err = parse_one(o, op, arg, op->arg ? argv[i + 1] : NULL);
		if (err != 0)
			return err;
		if (op->arg)
			i++;
	}
	return check(o);
}

void tool_opts_dispose(tool_opts_t *o)
{
	free(o->topics);
	o->topics = NULL;
	free(o->unsub);
	o->unsub = NULL;
}

/* ---- the client ------------------------------------------------------------ */

int tool_client_new(uv_loop_t *loop, const tool_opts_t *o, const xmq_client_cb_t *cb,
                    void *data, xmq_client_t **out)
{
	xmq_client_opts_t co;
	xmq_message_t will;
	const char *env;
	int err;

	memset(&co, 0, sizeof(co));
	co.url = o->url;
	co.app = o->app;
	co.resume = o->resume;
	co.session_expiry = o->session_expiry;
	co.keepalive = o->keepalive;
	if (o->will_topic != NULL) {
		memset(&will, 0, sizeof(will));
		will.topic = o->will_topic;
		will.payload = o->will_payload != NULL ? o->will_payload : "";
		will.payload_len = o->will_payload != NULL ? strlen(o->will_payload) : 0;
		will.qos = (uint8_t)o->will_qos;
		will.retain = o->will_retain;
		will.props = o->will_props.p;
		co.will = &will;
	}
	err = xmq_client_new(loop, &co, cb, data, out);
	if (err == XMQ_EURL) {
		env = getenv("XENMQ_URL");
		if (o->url != NULL)
			bad(o, "-L \"%s\": not a URL xenmq understands; use agent:/PATH, hvc:/PATH, "
			       "mqtt://HOST[:PORT] or mqtt+unix:/PATH", o->url);
		else
			bad(o, "XENMQ_URL=\"%s\": not a URL xenmq understands; use agent:/PATH, "
			       "hvc:/PATH, mqtt://HOST[:PORT] or mqtt+unix:/PATH", env ? env : "");
	} else if (err != 0) {
		bad(o, "cannot make a client: %s", xmq_strerror(err));
	}
	return err;
}

/* ---- signals --------------------------------------------------------------- */

static void on_signal(uv_signal_t *h, int signum)
{
	tool_signals_t *ts = h->data;

	ts->cb(ts->data);
}

int tool_signals_start(uv_loop_t *loop, tool_signals_t *ts, void (*cb)(void *data), void *data)
{
	static const int signums[2] = { SIGINT, SIGTERM };
	int i, err;

	signal(SIGPIPE, SIG_IGN);
	ts->cb = cb;
	ts->data = data;
	for (i = 0; i < 2; i++) {
		err = uv_signal_init(loop, &ts->sig[i]);
		if (err != 0)
			return err;
		ts->sig[i].data = ts;
		err = uv_signal_start(&ts->sig[i], on_signal, signums[i]);
		if (err != 0)
			return err;
	}
	return 0;
}

void tool_signals_close(tool_signals_t *ts)
{
	int i;

	/* A handle that uv_signal_init() never saw has no loop. */
	for (i = 0; i < 2; i++)
		if (ts->sig[i].loop != NULL && !uv_is_closing((uv_handle_t *)&ts->sig[i]))
			uv_close((uv_handle_t *)&ts->sig[i], NULL);
}
