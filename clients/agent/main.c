/* SPDX-License-Identifier: MIT */
/*
 * main.c - xenmq-agent: the command line, the signals and the loop around
 * the agent object (agent.h), which does the work.
 *
 * SIGTERM and SIGINT end the agent cleanly: sessions closed on the channel,
 * socket file removed, everything released, exit status 0. SIGHUP is
 * accepted and ignored, since the agent has no configuration file to
 * reload: a service manager that sends it by habit does no harm.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "clients/agent/agent.h"

#define PROG "xenmq-agent"
#define KEEPALIVE_MAX 3600
#define MAX_CLIENTS_MAX 65535

enum { EXIT_USAGE = 2 };

typedef struct options {
	xmq_agent_opts_t agent;
	bool verbose;
} options_t;

#define NSIGNALS 3

typedef struct daemon_state {
	xmq_agent_t *agent;
	uv_signal_t sig[NSIGNALS];  /* SIGTERM, SIGINT, SIGHUP */
	unsigned nsignals;          /* initialised */
	bool stopping;
} daemon_state_t;

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROG " (--hvc PATH | --channel NAME) [OPTIONS]\n"
		"Carry this domain's xenmq applications over its Xen PV channel.\n"
		"\n"
		"  --hvc PATH           the channel's tty, e.g. /dev/hvc1\n"
		"  --channel NAME       find the channel's tty by its name in XenStore\n"
		"                       (device/console/N/name), e.g. org.xenmq\n"
		"  --socket PATH        where applications connect [" XMQ_AGENT_SOCKET "]\n"
		"  --mode OCTAL         the socket file's mode [0660]\n"
		"  --group NAME         the socket file's group [the agent's]\n"
		"  --keepalive SECONDS  ping xenmqd after this much silence [10]\n"
		"  --max-clients N      most applications connected at once [64]\n"
		"  -v, --verbose        log every frame dropped, and more\n"
		"  -h, --help           this text\n"
		"  -V, --version        the version\n"
		"\n"
		"Logs go to stderr. See xenmq-agent(8).\n");
}

/* Say what was wrong with the command line; returns the exit status. */
__attribute__((format(printf, 1, 2)))
static int bad_option(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help'.\n");
	return EXIT_USAGE;
}

/* A whole number in base within [min, max]. */
static bool parse_ulong(const char *s, int base, unsigned long min, unsigned long max,
                        unsigned long *out)
{
	unsigned long v;
	char *end;

	if (s[0] == '\0' || s[0] == '-' || s[0] == '+')
		return false;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_group(const char *s, gid_t *gid)
{
	struct group *g = getgrnam(s);
	unsigned long v;

	if (g != NULL) {
		*gid = g->gr_gid;
		return true;
	}
	if (!parse_ulong(s, 10, 0, (gid_t)-1 - 1, &v))
		return false;
	*gid = (gid_t)v;
	return true;
}

enum {
	OPT_HVC = 256,
	OPT_CHANNEL,
	OPT_SOCKET,
	OPT_MODE,
	OPT_GROUP,
	OPT_KEEPALIVE,
	OPT_MAX_CLIENTS,
};

static const struct option longopts[] = {
	{ "hvc", required_argument, NULL, OPT_HVC },
	{ "channel", required_argument, NULL, OPT_CHANNEL },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "group", required_argument, NULL, OPT_GROUP },
	{ "keepalive", required_argument, NULL, OPT_KEEPALIVE },
	{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Fills *o; returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, options_t *o)
{
	unsigned long v;
	int ch;

	memset(o, 0, sizeof(*o));
	o->agent.mode = XMQ_AGENT_MODE;
	o->agent.keepalive = XMQ_AGENT_KEEPALIVE;
	o->agent.max_clients = XMQ_AGENT_MAX_CLIENTS;
	while ((ch = getopt_long(argc, argv, "vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_HVC:
			o->agent.hvc = optarg;
			break;
		case OPT_CHANNEL:
			o->agent.channel = optarg;
			break;
		case OPT_SOCKET:
			if (optarg[0] != '/')
				return bad_option("--socket: '%s' is not an absolute path", optarg);
			o->agent.socket = optarg;
			break;
		case OPT_MODE:
			if (!parse_ulong(optarg, 8, 1, 0777, &v))
				return bad_option("--mode: '%s' is not a file mode in octal "
				                  "(0001 to 0777, e.g. 0660)", optarg);
			o->agent.mode = (unsigned)v;
			break;
		case OPT_GROUP:
			if (!parse_group(optarg, &o->agent.group))
				return bad_option("--group: no group '%s' (see /etc/group)", optarg);
			o->agent.set_group = true;
			break;
		case OPT_KEEPALIVE:
			if (!parse_ulong(optarg, 10, 1, KEEPALIVE_MAX, &v))
				return bad_option("--keepalive: '%s' is not a number of seconds "
				                  "from 1 to 3600", optarg);
			o->agent.keepalive = (uint16_t)v;
			break;
		case OPT_MAX_CLIENTS:
			if (!parse_ulong(optarg, 10, 1, MAX_CLIENTS_MAX, &v))
				return bad_option("--max-clients: '%s' is not a number from 1 "
				                  "to 65535", optarg);
			o->agent.max_clients = (unsigned)v;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf(PROG " %s\n", XENMQ_VERSION);
			return EXIT_SUCCESS;
		default:
			fprintf(stderr, "Try '" PROG " --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return bad_option("unexpected argument '%s'", argv[optind]);
	if ((o->agent.hvc == NULL) == (o->agent.channel == NULL))
		return bad_option("%s", "give the channel with either --hvc PATH or "
		                  "--channel NAME");
	return -1;
}

/* ---- signals ------------------------------------------------------------- */

static const int signums[NSIGNALS] = { SIGTERM, SIGINT, SIGHUP };

/* Close what exists: the agent (which frees itself) and the signal handles. */
static void stop(daemon_state_t *d)
{
	unsigned i;

	if (d->stopping)
		return;
	d->stopping = true;
	for (i = 0; i < d->nsignals; i++)
		uv_close((uv_handle_t *)&d->sig[i], NULL);
	xmq_agent_close(d->agent, NULL, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	daemon_state_t *d = s->data;

	if (signum == SIGHUP) {
		xmq_log(LOG_INFO, "SIGHUP: nothing to reload");
		return;
	}
	xmq_log(LOG_NOTICE, "%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	stop(d);
}

static int watch_signals(uv_loop_t *loop, daemon_state_t *d)
{
	int err;

	for (d->nsignals = 0; d->nsignals < NSIGNALS; d->nsignals++) {
		uv_signal_t *s = &d->sig[d->nsignals];

		err = uv_signal_init(loop, s);
		if (err != 0)
			return err;
		s->data = d;
		err = uv_signal_start(s, on_signal, signums[d->nsignals]);
		if (err != 0) {
			d->nsignals++;  /* initialised: to be closed */
			return err;
		}
	}
	return 0;
}

static int ignore_sigpipe(void)
{
	struct sigaction sa;

	/* A client that goes away while the agent writes to it must cost a
	 * write error, not the process. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL) == 0 ? 0 : -errno;
}

int main(int argc, char **argv)
{
	daemon_state_t d;
	uv_loop_t loop;
	options_t o;
	int status;
	int err;

	status = parse_args(argc, argv, &o);
	if (status >= 0)
		return status;
	xmq_log_setup("xenmq-agent", o.verbose ? LOG_DEBUG : LOG_INFO, false);
	memset(&d, 0, sizeof(d));
	err = ignore_sigpipe();
	if (err == 0)
		err = uv_loop_init(&loop);
	if (err != 0) {
		xmq_log(LOG_ERR, "cannot start: %s", xmq_strerror(err));
		return EXIT_FAILURE;
	}
	status = EXIT_FAILURE;
	err = watch_signals(&loop, &d);
	if (err == 0)
		err = xmq_agent_new(&loop, &o.agent, &d.agent);
	if (err != 0) {
		xmq_log(LOG_ERR, "cannot start: %s", xmq_strerror(err));
		goto out;
	}
	xmq_log(LOG_NOTICE, PROG " %s starting", XENMQ_VERSION);
	err = xmq_agent_start(d.agent);
	if (err == -ENOTSUP)
		xmq_log(LOG_ERR, "built without Xen support: use --hvc PATH");
	if (err == 0)
		status = EXIT_SUCCESS;
out:
	/* After a failed start the agent already logged why: release what
	 * was made, and let the loop finish closing it. */
	if (status != EXIT_SUCCESS)
		stop(&d);
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0) {
		xmq_log(LOG_ERR, "handles left open at exit");
		status = EXIT_FAILURE;
	}
	if (status == EXIT_SUCCESS)
		xmq_log(LOG_NOTICE, "stopped");
	return status;
}
