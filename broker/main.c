/* SPDX-License-Identifier: MIT */
/*
 * main.c - xenmqd's command line, signals and loop.
 *
 *   xenmqd [-c FILE] [-v] [-t]
 *
 * Runs in the foreground (OpenRC's supervise-daemon and systemd supervise
 * it), logs to stderr or syslog, reloads on SIGHUP, stops on SIGTERM/SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "broker/broker.h"
#include "broker/conf.h"
#include "bridge/log.h"

#ifndef XENMQ_SYSCONFDIR
#define XENMQ_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONF XENMQ_SYSCONFDIR "/xenmq/xenmqd.conf"

typedef struct options {
	const char *conf;
	bool verbose;
	bool test;
} options_t;

typedef struct daemon {
	uv_loop_t loop;
	xmq_broker_t broker;
	uv_signal_t sighup;
	uv_signal_t sigterm;
	uv_signal_t sigint;
} daemon_t;

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: xenmqd [-c FILE] [-v] [-t]\n"
	        "Bridge Xen PV channels of DomUs onto a local Mosquitto, under an ACL.\n"
	        "\n"
	        "  -c, --config FILE  configuration (default " DEFAULT_CONF ")\n"
	        "  -v, --verbose      log everything (log_level debug)\n"
	        "  -t, --test         check the configuration and the ACL, then exit\n"
	        "  -h, --help         this help\n"
	        "  -V, --version      print the version\n"
	        "\n"
	        "Signals: SIGHUP reloads the configuration and the ACL; SIGTERM stops.\n"
	        "See xenmqd(8) and docs/configuration.md.\n");
}

/* Returns 0 to go on, 1 to exit with success, -1 to exit with failure. */
static int parse_args(int argc, char **argv, options_t *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "test", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->conf = DEFAULT_CONF;
	while ((c = getopt_long(argc, argv, "c:vthV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->conf = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 't':
			o->test = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("xenmqd %s\n", XENMQ_VERSION);
			return 1;
		default:
			fprintf(stderr, "xenmqd: try 'xenmqd --help'\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "xenmqd: unexpected argument '%s': the configuration is given "
		        "with -c FILE\n", argv[optind]);
		return -1;
	}
	return 0;
}

/* Load the configuration and its ACL; on failure say why on stderr, in one line. */
static int load(const char *path, xmq_conf_t *conf, xmq_acl_t **acl)
{
	char err[512];
	int rc;

	rc = xmq_conf_load(path, conf, err, sizeof(err));
	if (rc != 0) {
		if (rc == XMQ_ECONFIG)
			fprintf(stderr, "xenmqd: %s\n", err);
		else
			fprintf(stderr, "xenmqd: cannot read the configuration %s: %s (use -c FILE)\n",
			        path, xmq_strerror(rc));
		return rc;
	}
	*acl = NULL;
	if (conf->acl_file == NULL)
		return 0;
	rc = xmq_acl_load(conf->acl_file, acl, err, sizeof(err));
	if (rc != 0) {
		if (rc == XMQ_ECONFIG)
			fprintf(stderr, "xenmqd: %s\n", err);
		else
			fprintf(stderr, "xenmqd: cannot read acl_file %s: %s\n", conf->acl_file,
			        xmq_strerror(rc));
		xmq_conf_dispose(conf);
	}
	return rc;
}

static void on_stopped(xmq_broker_t *b)
{
	daemon_t *d = (daemon_t *)((char *)b - offsetof(daemon_t, broker));

	uv_close((uv_handle_t *)&d->sighup, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	daemon_t *d = h->data;

	if (signum == SIGHUP) {
		xmq_log(LOG_NOTICE, "SIGHUP: reloading the configuration");
		xmq_broker_reload(&d->broker);
		return;
	}
	xmq_broker_stop(&d->broker, on_stopped);
}

int main(int argc, char **argv)
{
	static daemon_t d;
	xmq_conf_t conf;
	xmq_acl_t *acl;
	options_t o = { 0 };
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	if (load(o.conf, &conf, &acl) != 0)
		return EXIT_FAILURE;
	if (o.test) {
		printf("xenmqd: %s: %zu domains, ACL %s: OK\n", o.conf, conf.n_domains,
		       conf.acl_file != NULL ? conf.acl_file : "none (deny all)");
		xmq_acl_free(acl);
		xmq_conf_dispose(&conf);
		return EXIT_SUCCESS;
	}
	xmq_log_setup("xenmqd", o.verbose ? LOG_DEBUG : conf.log_level,
	              strcmp(conf.log_dest, "syslog") == 0);
	if (geteuid() == 0)
		xmq_log(LOG_WARNING, "running as root: xenmqd needs only to connect to the channel "
		        "sockets (see docs/operations.md)");
	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&d.loop) != 0) {
		fprintf(stderr, "xenmqd: cannot start an event loop\n");
		return EXIT_FAILURE;
	}
	if (xmq_broker_init(&d.loop, &d.broker, o.conf, &conf, acl) != 0) {
		fprintf(stderr, "xenmqd: out of memory\n");
		return EXIT_FAILURE;
	}
	d.broker.verbose = o.verbose;
	d.sighup.data = d.sigterm.data = d.sigint.data = &d;
	uv_signal_init(&d.loop, &d.sighup);
	uv_signal_init(&d.loop, &d.sigterm);
	uv_signal_init(&d.loop, &d.sigint);
	uv_signal_start(&d.sighup, on_signal, SIGHUP);
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	rc = xmq_broker_start(&d.broker);
	if (rc != 0) {
		xmq_log(LOG_ERR, "cannot start: %s", xmq_strerror(rc));
		xmq_broker_stop(&d.broker, on_stopped);
	}
	uv_run(&d.loop, UV_RUN_DEFAULT);
	xmq_broker_dispose(&d.broker);
	if (uv_loop_close(&d.loop) != 0)
		xmq_log(LOG_WARNING, "handles left open at exit");
	xmq_log(LOG_NOTICE, "stopped");
	return rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
