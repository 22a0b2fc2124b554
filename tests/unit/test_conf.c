/* SPDX-License-Identifier: MIT */
/*
 * test_conf.c - xenmqd.conf: defaults, per-domain overrides, every error and
 * its message, reading files, and the example conf/xenmqd.conf.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker/conf.h"

static void parse_ok(const char *text, xmq_conf_t *c)
{
	char err[512];
	int rc;

	rc = xmq_conf_parse(text, strlen(text), "x.conf", c, err, sizeof(err));
	if (rc != 0)
		fail_msg("parse failed (%d): %s", rc, err);
}

/* Parses text, expects a failure at line with what in the message, and *out untouched. */
static void parse_bad_len(const char *text, size_t len, unsigned line, const char *what)
{
	xmq_conf_t c;
	char err[512], where[32];
	unsigned char before[sizeof(c)];
	int rc;

	memset(&c, 0xa5, sizeof(c));
	memcpy(before, &c, sizeof(c));
	rc = xmq_conf_parse(text, len, "x.conf", &c, err, sizeof(err));
	assert_int_equal(rc, XMQ_ECONFIG);
	assert_memory_equal(&c, before, sizeof(c));
	snprintf(where, sizeof(where), "x.conf:%u: ", line);
	if (strncmp(err, where, strlen(where)) != 0 || strstr(err, what) == NULL)
		fail_msg("error \"%s\" should start with \"%s\" and hold \"%s\"", err, where, what);
}

static void parse_bad(const char *text, unsigned line, const char *what)
{
	parse_bad_len(text, strlen(text), line, what);
}

static void assert_default_limits(const xmq_limits_t *l)
{
	assert_int_equal(l->max_frame_size, 16384);
	assert_int_equal(l->max_message_rate, 200);
	assert_int_equal(l->max_byte_rate, 262144);
	assert_int_equal(l->max_subscriptions, 64);
	assert_int_equal(l->max_sessions, 16);
	assert_int_equal(l->max_queued_bytes, 262144);
	assert_int_equal(l->max_inflight, 64);
	assert_int_equal(l->max_session_expiry, 3600);
}

/* ---- parsing ------------------------------------------------------------- */

static void test_conf_defaults(void **state)
{
	xmq_conf_t c;

	parse_ok("", &c);
	assert_string_equal(c.mosquitto, "/run/xenmq/mosquitto.sock");
	assert_null(c.acl_file);
	assert_string_equal(c.client_id, "xenmqd");
	assert_int_equal(c.log_level, LOG_INFO);
	assert_string_equal(c.log_dest, "stderr");
	assert_int_equal(c.status_interval, 10);
	assert_int_equal(c.keepalive, 30);
	assert_default_limits(&c.defaults);
	assert_int_equal(c.n_domains, 0);
	assert_null(xmq_conf_domain(&c, "gui"));
	xmq_conf_dispose(&c);
}

static void test_conf_global_keys(void **state)
{
	xmq_conf_t c;

	parse_ok("# comment\n"
	         "\n"
	         "  mosquitto   127.0.0.1:1883  \r\n"
	         "\tacl_file\t/etc/xenmq/xenmq.acl\n"
	         "client_id xenmqd-2\n"
	         "log_level debug\n"
	         "log_dest syslog\n"
	         "status_interval 0\n"
	         "keepalive 65535", &c);  /* no final newline */
	assert_string_equal(c.mosquitto, "127.0.0.1:1883");
	assert_string_equal(c.acl_file, "/etc/xenmq/xenmq.acl");
	assert_string_equal(c.client_id, "xenmqd-2");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_string_equal(c.log_dest, "syslog");
	assert_int_equal(c.status_interval, 0);
	assert_int_equal(c.keepalive, 65535);
	xmq_conf_dispose(&c);
}

static void test_conf_log_levels(void **state)
{
	static const struct { const char *word; int level; } levels[] = {
		{ "err", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
		{ "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};
	char text[64];
	xmq_conf_t c;
	size_t i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		snprintf(text, sizeof(text), "log_level %s\n", levels[i].word);
		parse_ok(text, &c);
		assert_int_equal(c.log_level, levels[i].level);
		xmq_conf_dispose(&c);
	}
}

static void test_conf_mosquitto_addresses(void **state)
{
	const char *good[] = { "/run/m.sock", "localhost:1883", "[::1]:1883", "h:65535", "h:1" };
	char text[256];
	xmq_conf_t c;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "mosquitto %s\n", good[i]);
		parse_ok(text, &c);
		assert_string_equal(c.mosquitto, good[i]);
		xmq_conf_dispose(&c);
	}
	parse_bad("mosquitto localhost\n", 1, "'mosquitto' must be an absolute Unix socket path");
	parse_bad("mosquitto run/m.sock\n", 1, "not 'run/m.sock'");
	parse_bad("mosquitto :1883\n", 1, "HOST:PORT");
	parse_bad("mosquitto h:0\n", 1, "HOST:PORT");
	parse_bad("mosquitto h:65536\n", 1, "HOST:PORT");
	parse_bad("mosquitto h:+1\n", 1, "HOST:PORT");
	parse_bad("mosquitto ::1:1883\n", 1, "HOST:PORT");
	parse_bad("mosquitto []:1883\n", 1, "HOST:PORT");
	/* sun_path holds 107 bytes and a NUL. */
	snprintf(text, sizeof(text), "mosquitto /%0107d\n", 0);
	parse_bad(text, 1, "at most 107 bytes");
	snprintf(text, sizeof(text), "mosquitto /%0106d\n", 0);
	parse_ok(text, &c);
	xmq_conf_dispose(&c);
}

static void test_conf_domains_inherit_and_override(void **state)
{
	const xmq_domain_conf_t *gui, *usb, *ctrl;
	xmq_conf_t c;

	parse_ok("max_inflight 8\n"
	         "max_byte_rate 0\n"
	         "domain gui\n"
	         "  channel /run/xen/xenmq-gui.sock\n"
	         "  max_subscriptions 128\n"
	         "domain sys-usb\n"
	         "channel /run/xen/xenmq-sys-usb.sock\n"
	         "max_frame_size 64k\n"
	         "max_queued_bytes 1M\n"
	         "max_inflight 32\n"
	         "max_session_expiry 4294967295\n"
	         "domain ctrl\n"
	         "channel /run/xen/xenmq-ctrl.sock\n", &c);
	assert_int_equal(c.n_domains, 3);
	assert_int_equal(c.defaults.max_inflight, 8);
	assert_int_equal(c.defaults.max_byte_rate, 0);

	gui = xmq_conf_domain(&c, "gui");
	usb = xmq_conf_domain(&c, "sys-usb");
	ctrl = xmq_conf_domain(&c, "ctrl");
	assert_non_null(gui);
	assert_non_null(usb);
	assert_non_null(ctrl);
	assert_null(xmq_conf_domain(&c, "GUI"));
	assert_null(xmq_conf_domain(&c, NULL));
	assert_null(xmq_conf_domain(NULL, "gui"));

	assert_string_equal(gui->name, "gui");
	assert_string_equal(gui->channel, "/run/xen/xenmq-gui.sock");
	assert_int_equal(gui->line, 3);
	assert_int_equal(gui->limits.max_subscriptions, 128);
	assert_int_equal(gui->limits.max_inflight, 8);
	assert_int_equal(gui->limits.max_byte_rate, 0);
	assert_int_equal(gui->limits.max_frame_size, 16384);

	assert_int_equal(usb->line, 6);
	assert_int_equal(usb->limits.max_frame_size, 65536);
	assert_int_equal(usb->limits.max_queued_bytes, 1048576);
	assert_int_equal(usb->limits.max_inflight, 32);
	assert_int_equal(usb->limits.max_session_expiry, UINT32_MAX);
	assert_int_equal(usb->limits.max_subscriptions, 64);

	assert_int_equal(ctrl->limits.max_inflight, 8);
	assert_int_equal(ctrl->limits.max_subscriptions, 64);
	assert_int_equal(ctrl->limits.max_session_expiry, 3600);
	xmq_conf_dispose(&c);
}

static void test_conf_number_bounds_and_suffixes(void **state)
{
	xmq_conf_t c;

	parse_ok("max_frame_size 256\nmax_queued_bytes 256\nmax_message_rate 1000000\n"
	         "max_subscriptions 65535\nmax_sessions 1\nmax_inflight 65535\n"
	         "max_session_expiry 0\nstatus_interval 86400\nkeepalive 5\n", &c);
	assert_int_equal(c.defaults.max_frame_size, 256);
	assert_int_equal(c.defaults.max_queued_bytes, 256);
	assert_int_equal(c.defaults.max_message_rate, 1000000);
	assert_int_equal(c.defaults.max_subscriptions, 65535);
	assert_int_equal(c.defaults.max_sessions, 1);
	assert_int_equal(c.defaults.max_inflight, 65535);
	assert_int_equal(c.defaults.max_session_expiry, 0);
	assert_int_equal(c.status_interval, 86400);
	assert_int_equal(c.keepalive, 5);
	xmq_conf_dispose(&c);

	parse_ok("max_frame_size 1K\nmax_byte_rate 1024M\nmax_queued_bytes 0032k\n", &c);
	assert_int_equal(c.defaults.max_frame_size, 1024);
	assert_int_equal(c.defaults.max_byte_rate, 1073741824);
	assert_int_equal(c.defaults.max_queued_bytes, 32768);
	xmq_conf_dispose(&c);
}

static void test_conf_number_errors(void **state)
{
	parse_bad("max_frame_size 255\n", 1,
	          "'max_frame_size' must be a whole number from 256 to 65536 (a k or M suffix");
	parse_bad("max_frame_size 65537\n", 1, "not '65537'");
	parse_bad("max_frame_size 65k\n", 1, "not '65k'");
	parse_bad("max_frame_size 1G\n", 1, "not '1G'");
	parse_bad("max_byte_rate 1025M\n", 1, "from 0 to 1073741824");
	parse_bad("max_byte_rate 99999999999999999999999\n", 1, "'max_byte_rate' must be");
	parse_bad("max_byte_rate 4194304k\n", 1, "'max_byte_rate' must be");
	/* 2^54 + 1 kibibytes would wrap around to 1024 in 64 bits. */
	parse_bad("max_byte_rate 18014398509481985k\n", 1, "'max_byte_rate' must be");
	parse_bad("max_byte_rate 17592186044417M\n", 1, "'max_byte_rate' must be");
	parse_bad("max_message_rate 10k\n", 1, "'max_message_rate' must be a whole number from 0 "
	          "to 1000000, not '10k'");
	parse_bad("max_subscriptions 0\n", 1, "'max_subscriptions' must be a whole number from 1");
	parse_bad("max_sessions 65536\n", 1, "'max_sessions' must be");
	parse_bad("max_inflight -1\n", 1, "not '-1'");
	parse_bad("max_inflight +1\n", 1, "not '+1'");
	parse_bad("max_inflight 0x10\n", 1, "not '0x10'");
	parse_bad("max_inflight 1.5\n", 1, "not '1.5'");
	parse_bad("max_inflight ten\n", 1, "not 'ten'");
	parse_bad("max_session_expiry 4294967296\n", 1, "from 0 to 4294967295");
	parse_bad("keepalive 4\n", 1, "'keepalive' must be a whole number of seconds from 5 to 65535");
	parse_bad("keepalive 65536\n", 1, "'keepalive' must be");
	parse_bad("status_interval 86401\n", 1, "from 0 (off) to 86400");
}

static void test_conf_value_errors(void **state)
{
	parse_bad("\n\nkeepalive\n", 3, "'keepalive' needs a value: write 'keepalive SECONDS");
	parse_bad("domain\n", 1, "'domain' needs a value: write 'domain NAME'");
	parse_bad("max_inflight   \n", 1, "'max_inflight' needs a value");
	parse_bad("keepalive 30 60\n", 1, "'keepalive' takes one value, but '60' follows it");
	parse_bad("acl_file /a b\n", 1, "'acl_file' takes one value, but 'b' follows it");
	parse_bad("keepalive 30 # seconds\n", 1,
	          "a comment must be on a line of its own: move '# seconds'");
	parse_bad("log_level verbose\n", 1, "'log_level' must be err, warning, notice, info or "
	          "debug, not 'verbose'");
	parse_bad("log_level INFO\n", 1, "not 'INFO'");
	parse_bad("log_dest file\n", 1, "'log_dest' must be stderr or syslog, not 'file'");
	parse_bad("client_id gui/app\n", 1, "'client_id' must be 1 to 64 of");
	parse_bad("client_id 0123456789012345678901234567890123456789012345678901234567890123456789\n",
	          1, "'client_id' must be");
	parse_bad("acl_file xenmq.acl\n", 1, "'acl_file' must be an absolute path, not 'xenmq.acl'");
	parse_bad_len("keepalive 30\0\n", 14, 1, "NUL byte");
}

static void test_conf_unknown_keys(void **state)
{
	parse_bad("keepalive 30\nkeepalve 30\n", 2, "unknown key 'keepalve'");
	parse_bad("Keepalive 30\n", 1, "unknown key 'Keepalive'");
	parse_bad("max_inflight_per_session_and_more_than_32_chars 3\n", 1,
	          "unknown key 'max_inflight_per_session_and_more_than_32_chars'");
	parse_bad("domain gui\nchannel /c\nlistener 0 /x\n", 3, "unknown key 'listener'");
	parse_bad("= 3\n", 1, "unknown key '='");
}

static void test_conf_placement_errors(void **state)
{
	parse_bad("domain gui\nchannel /c\nmosquitto /m.sock\n", 3,
	          "'mosquitto' is a global option: move it above the first 'domain' line");
	parse_bad("domain gui\nchannel /c\nacl_file /a\n", 3, "'acl_file' is a global option");
	parse_bad("domain gui\nchannel /c\nkeepalive 30\n", 3, "'keepalive' is a global option");
	parse_bad("channel /run/x.sock\n", 1,
	          "'channel' belongs in a domain block: put it below the 'domain NAME' line");
}

static void test_conf_domain_errors(void **state)
{
	parse_bad("domain gui\nchannel /a\ndomain gui\nchannel /b\n", 3,
	          "domain 'gui' is declared twice (first on line 1)");
	parse_bad("domain gui\nchannel /a\ndomain ctrl\nchannel /a\n", 4,
	          "channel '/a' is already the channel of domain 'gui' (line 1)");
	parse_bad("domain gui\nchannel /a\nchannel /b\n", 3,
	          "'channel' is given twice in domain 'gui' (first on line 2)");
	parse_bad("domain gui\n\ndomain ctrl\nchannel /b\n", 1,
	          "domain 'gui' has no 'channel': add 'channel /PATH/TO/SOCKET'");
	parse_bad("domain gui\nchannel /a\ndomain ctrl\n", 3, "domain 'ctrl' has no 'channel'");
	parse_bad("domain gui\nchannel run/xen/gui.sock\n", 2,
	          "'channel' must be an absolute path of at most 107 bytes");
	{
		char text[160];
		xmq_conf_t c;

		snprintf(text, sizeof(text), "domain gui\nchannel /%0107d\n", 0);
		parse_bad(text, 2, "at most 107 bytes");
		snprintf(text, sizeof(text), "domain gui\nchannel /%0106d\n", 0);
		parse_ok(text, &c);
		assert_int_equal(strlen(c.domains[0].channel), 107);
		xmq_conf_dispose(&c);
	}
	parse_bad("domain sys/usb\n", 1, "'sys/usb' is not a domain name: use 1 to 64 of");
	parse_bad("domain 01234567890123456789012345678901234567890123456789012345678901234\n",
	          1, "is not a domain name");
}

static void test_conf_duplicate_keys(void **state)
{
	parse_bad("keepalive 30\n#\nkeepalive 40\n", 3, "'keepalive' is given twice (first on line 1)");
	parse_bad("max_inflight 1\nmax_inflight 2\n", 2,
	          "'max_inflight' is given twice (first on line 1)");
	parse_bad("domain gui\nchannel /a\nmax_inflight 1\nmax_inflight 2\n", 4,
	          "'max_inflight' is given twice in domain 'gui' (first on line 3)");
	/* The same key in the defaults and in a domain, or in two domains, is fine. */
	{
		xmq_conf_t c;

		parse_ok("max_inflight 1\ndomain a\nchannel /a\nmax_inflight 2\n"
		         "domain b\nchannel /b\nmax_inflight 3\n", &c);
		assert_int_equal(c.domains[0].limits.max_inflight, 2);
		assert_int_equal(c.domains[1].limits.max_inflight, 3);
		xmq_conf_dispose(&c);
	}
}

static void test_conf_queue_must_hold_a_frame(void **state)
{
	parse_bad("max_frame_size 32k\n\nmax_queued_bytes 16k\n", 3,
	          "max_queued_bytes (16384) is smaller than max_frame_size (32768) in the defaults");
	parse_bad("max_queued_bytes 16k\nmax_frame_size 32k\ndomain gui\nchannel /a\n", 2,
	          "in the defaults");
	parse_bad("domain gui\nchannel /a\nmax_frame_size 64k\nmax_queued_bytes 32k\n"
	          "domain ctrl\nchannel /b\n", 1,
	          "max_queued_bytes (32768) is smaller than max_frame_size (65536) for domain 'gui'");
	parse_bad("max_queued_bytes 16k\ndomain gui\nchannel /a\nmax_frame_size 32k\n", 2,
	          "for domain 'gui'");
}

static void test_conf_error_buffer_handling(void **state)
{
	xmq_conf_t c;
	char small[10], err[256];

	memset(small, 'x', sizeof(small));
	assert_int_equal(xmq_conf_parse("bogus 1\n", 8, "x.conf", &c, small, sizeof(small)),
	                 XMQ_ECONFIG);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(xmq_conf_parse("bogus 1\n", 8, "x.conf", &c, NULL, 0), XMQ_ECONFIG);
	assert_int_equal(xmq_conf_parse("bogus 1\n", 8, NULL, &c, err, sizeof(err)), XMQ_ECONFIG);
	assert_non_null(strstr(err, "xenmqd.conf:1: "));
	assert_int_equal(xmq_conf_parse(NULL, 0, NULL, &c, NULL, 0), 0);
	xmq_conf_dispose(&c);
	/* A hostile value is quoted short and without control bytes. */
	{
		char text[300];

		memset(text, 'q', sizeof(text));
		memcpy(text, "keepalive \x1b", 11);
		text[sizeof(text) - 1] = '\n';
		assert_int_equal(xmq_conf_parse(text, sizeof(text), "x.conf", &c, err, sizeof(err)),
		                 XMQ_ECONFIG);
		assert_null(strchr(err, '\x1b'));
		assert_non_null(strstr(err, "..."));
	}
}

static void test_conf_dispose_is_idempotent(void **state)
{
	xmq_conf_t c, zero;

	memset(&zero, 0, sizeof(zero));
	parse_ok("acl_file /a\ndomain gui\nchannel /a\n", &c);
	xmq_conf_dispose(&c);
	assert_memory_equal(&c, &zero, sizeof(c));
	xmq_conf_dispose(&c);
	xmq_conf_dispose(&zero);
	xmq_conf_dispose(NULL);
}

/* ---- files --------------------------------------------------------------- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_conf.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static const char *const tmp_names[] = {
	"ok.conf", "bad.conf", "big.conf", "max.conf", "ok.acl", "bad.acl",
};

static int remove_tmpdir(void **state)
{
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(tmp_names) / sizeof(tmp_names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, tmp_names[i]);
		unlink(path);
	}
	return rmdir(tmpdir);
}

static const char *write_tmp(const char *name, const void *data, size_t len)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void test_conf_load_reads_files(void **state)
{
	const char *text = "keepalive 42\ndomain gui\nchannel /a\n";
	const char *path = write_tmp("ok.conf", text, strlen(text));
	xmq_conf_t c;
	char err[512];

	assert_int_equal(xmq_conf_load(path, &c, err, sizeof(err)), 0);
	assert_int_equal(c.keepalive, 42);
	assert_int_equal(c.n_domains, 1);
	xmq_conf_dispose(&c);

	/* Messages name the file as it was given. */
	path = write_tmp("bad.conf", "\nkeepalive 1\n", 13);
	assert_int_equal(xmq_conf_load(path, &c, err, sizeof(err)), XMQ_ECONFIG);
	assert_non_null(strstr(err, "/bad.conf:2: 'keepalive' must be"));
}

static void test_conf_load_errors(void **state)
{
	xmq_conf_t c;
	xmq_acl_t *acl = NULL;
	char err[512], path[128];
	char *big;

	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	assert_int_equal(xmq_conf_load(path, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "missing.conf: cannot open: "));
	assert_int_equal(xmq_acl_load(path, &acl, err, sizeof(err)), -ENOENT);
	assert_null(acl);

	assert_int_equal(xmq_conf_load(tmpdir, &c, err, sizeof(err)), XMQ_ECONFIG);
	assert_non_null(strstr(err, "not a regular file"));

	big = malloc(XMQ_CONF_FILE_MAX + 1);
	assert_non_null(big);
	memset(big, '\n', XMQ_CONF_FILE_MAX + 1);
	write_tmp("big.conf", big, XMQ_CONF_FILE_MAX + 1);
	snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
	assert_int_equal(xmq_conf_load(path, &c, err, sizeof(err)), XMQ_ECONFIG);
	assert_non_null(strstr(err, "larger than 1048576 bytes"));
	assert_int_equal(xmq_acl_load(path, &acl, err, sizeof(err)), XMQ_ECONFIG);
	assert_null(acl);
	/* Exactly the maximum is fine. */
	write_tmp("max.conf", big, XMQ_CONF_FILE_MAX);
	snprintf(path, sizeof(path), "%s/max.conf", tmpdir);
	assert_int_equal(xmq_conf_load(path, &c, err, sizeof(err)), 0);
	xmq_conf_dispose(&c);
	free(big);

	assert_int_equal(xmq_conf_load(NULL, &c, err, sizeof(err)), -EINVAL);
}

static void test_conf_acl_load(void **state)
{
	const char *good = "user gui\ntopic read a/#\n";
	const char *path = write_tmp("ok.acl", good, strlen(good));
	xmq_acl_t *acl = NULL;
	char err[512];

	assert_int_equal(xmq_acl_load(path, &acl, err, sizeof(err)), 0);
	assert_int_equal(xmq_acl_rules(acl), 1);
	assert_true(xmq_acl_check(acl, "gui", "gui/app", "a/b", XMQ_ACL_READ));
	xmq_acl_free(acl);
	acl = NULL;

	path = write_tmp("bad.acl", "user gui\ntopic reed a\n", 22);
	assert_int_equal(xmq_acl_load(path, &acl, err, sizeof(err)), XMQ_ECONFIG);
	assert_null(acl);
	assert_non_null(strstr(err, "/bad.acl:2: unknown access 'reed'"));
}

/* ---- the example files --------------------------------------------------- */

static void example_path(char *path, size_t size, const char *rel)
{
	const char *here = __FILE__, *slash = strrchr(here, '/');

	/* __FILE__ is tests/unit/test_conf.c, relative to the repository or not. */
	snprintf(path, size, "%.*s../../%s", (int)(slash ? slash - here + 1 : 0), here, rel);
}

static void test_conf_example_files(void **state)
{
	const char *names[] = { "sys-usb", "gui", "ctrl" };
	const xmq_domain_conf_t *d;
	char path[4096], err[512], channel[64];
	xmq_acl_t *acl = NULL;
	xmq_conf_t c;
	size_t i;

	example_path(path, sizeof(path), "conf/xenmqd.conf");
	if (xmq_conf_load(path, &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.mosquitto, "/run/xenmq/mosquitto.sock");
	assert_string_equal(c.acl_file, "/etc/xenmq/xenmq.acl");
	assert_string_equal(c.client_id, "xenmqd");
	assert_int_equal(c.log_level, LOG_INFO);
	assert_string_equal(c.log_dest, "stderr");
	assert_int_equal(c.status_interval, 10);
	assert_int_equal(c.keepalive, 30);
	/* The example states every default: it must say the truth. */
	assert_default_limits(&c.defaults);
	assert_int_equal(c.n_domains, 3);
	for (i = 0; i < 3; i++) {
		d = xmq_conf_domain(&c, names[i]);
		assert_non_null(d);
		snprintf(channel, sizeof(channel), "/run/xen/xenmq-%s.sock", names[i]);
		assert_string_equal(d->channel, channel);
	}
	d = xmq_conf_domain(&c, "sys-usb");
	assert_int_equal(d->limits.max_frame_size, 65536);
	xmq_conf_dispose(&c);

	example_path(path, sizeof(path), "conf/xenmq.acl");
	if (xmq_acl_load(path, &acl, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(xmq_acl_rules(acl) > 10);
	xmq_acl_free(acl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_defaults),
		cmocka_unit_test(test_conf_global_keys),
		cmocka_unit_test(test_conf_log_levels),
		cmocka_unit_test(test_conf_mosquitto_addresses),
		cmocka_unit_test(test_conf_domains_inherit_and_override),
		cmocka_unit_test(test_conf_number_bounds_and_suffixes),
		cmocka_unit_test(test_conf_number_errors),
		cmocka_unit_test(test_conf_value_errors),
		cmocka_unit_test(test_conf_unknown_keys),
		cmocka_unit_test(test_conf_placement_errors),
		cmocka_unit_test(test_conf_domain_errors),
		cmocka_unit_test(test_conf_duplicate_keys),
		cmocka_unit_test(test_conf_queue_must_hold_a_frame),
		cmocka_unit_test(test_conf_error_buffer_handling),
		cmocka_unit_test(test_conf_dispose_is_idempotent),
		cmocka_unit_test_setup_teardown(test_conf_load_reads_files, make_tmpdir, remove_tmpdir),
		cmocka_unit_test_setup_teardown(test_conf_load_errors, make_tmpdir, remove_tmpdir),
		cmocka_unit_test_setup_teardown(test_conf_acl_load, make_tmpdir, remove_tmpdir),
		cmocka_unit_test(test_conf_example_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
