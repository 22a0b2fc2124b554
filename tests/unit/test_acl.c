/* SPDX-License-Identifier: MIT */
/*
 * test_acl.c - the ACL file: what it accepts, what each rule means, and that
 * the example conf/xenmq.acl says what its comments say.
 *
 * The expectations marked "Mosquitto" were measured against mosquitto 2.0.11
 * (docs/configuration.md, "ACL semantics"); those marked "stricter" are where
 * xenmqd departs from it on purpose.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "topics/acl.h"

enum { R = XMQ_ACL_READ, W = XMQ_ACL_WRITE, S = XMQ_ACL_SUBSCRIBE };

static xmq_acl_t *parse_ok(const char *text)
{
	xmq_acl_t *acl = NULL;
	char err[512];
	int rc;

	rc = xmq_acl_parse(text, strlen(text), "t.acl", &acl, err, sizeof(err));
	if (rc != 0)
		fail_msg("parse failed (%d): %s", rc, err);
	assert_non_null(acl);
	return acl;
}

/* Parses text, expects a failure at line, with what in the message. */
static void parse_bad_len(const char *text, size_t len, unsigned line, const char *what)
{
	xmq_acl_t *acl = (xmq_acl_t *)&acl;  /* a sentinel that must survive */
	char err[512], where[32];
	int rc;

	rc = xmq_acl_parse(text, len, "t.acl", &acl, err, sizeof(err));
	assert_int_equal(rc, XMQ_ECONFIG);
	assert_ptr_equal(acl, (xmq_acl_t *)&acl);
	snprintf(where, sizeof(where), "t.acl:%u: ", line);
	if (strncmp(err, where, strlen(where)) != 0 || strstr(err, what) == NULL)
		fail_msg("error \"%s\" should start with \"%s\" and hold \"%s\"", err, where, what);
}

static void parse_bad(const char *text, unsigned line, const char *what)
{
	parse_bad_len(text, strlen(text), line, what);
}

/* Whether domain user, in its app "app", may do access on topic. */
static bool can(const xmq_acl_t *acl, const char *user, int access, const char *topic)
{
	char cid[128];

	snprintf(cid, sizeof(cid), "%s/app", user);
	return xmq_acl_check(acl, user, cid, topic, access);
}

/* ---- parsing ------------------------------------------------------------- */

static void test_acl_parse_empty_denies_everything(void **state)
{
	xmq_acl_t *acl = parse_ok("");

	assert_int_equal(xmq_acl_rules(acl), 0);
	assert_false(can(acl, "gui", R, "a"));
	assert_false(can(acl, "gui", W, "a"));
	assert_false(can(acl, "gui", S, "#"));
	xmq_acl_free(acl);
}

static void test_acl_no_acl_denies_everything(void **state)
{
	assert_false(xmq_acl_check(NULL, "gui", "gui/app", "a", R));
	assert_false(xmq_acl_check(NULL, "gui", "gui/app", "a", W));
	assert_false(xmq_acl_check(NULL, "gui", "gui/app", "#", S));
	assert_int_equal(xmq_acl_rules(NULL), 0);
	xmq_acl_free(NULL);
}

static void test_acl_parse_comments_blanks_and_line_ends(void **state)
{
	xmq_acl_t *acl = parse_ok("# comment\r\n"
	                          "\n"
	                          "   \n"
	                          "#topic readwrite #\n"
	                          "user gui\r\n"
	                          "   topic    read    a/b   \r\n"
	                          "topic write c\n"
	                          "topic deny d");  /* no final newline */

	assert_int_equal(xmq_acl_rules(acl), 3);
	assert_true(can(acl, "gui", R, "a/b"));
	assert_false(can(acl, "gui", W, "a/b"));
	assert_true(can(acl, "gui", W, "c"));
	assert_false(can(acl, "gui", R, "c"));
	xmq_acl_free(acl);
}

static void test_acl_parse_access_words(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\n"
	                          "topic r\n"   /* no word: readwrite */
	                          "topic read r1\n"
	                          "topic write w1\n"
	                          "topic readwrite rw1\n"
	                          "topic deny d1\n");

	assert_true(can(acl, "gui", R, "r"));
	assert_true(can(acl, "gui", W, "r"));
	assert_true(can(acl, "gui", R, "r1"));
	assert_false(can(acl, "gui", W, "r1"));
	assert_false(can(acl, "gui", R, "w1"));
	assert_true(can(acl, "gui", W, "w1"));
	assert_true(can(acl, "gui", R, "rw1"));
	assert_true(can(acl, "gui", W, "rw1"));
	assert_false(can(acl, "gui", R, "d1"));
	assert_false(can(acl, "gui", W, "d1"));
	xmq_acl_free(acl);
}

/* Mosquitto: "topic read" is a readwrite rule on the topic named "read". */
static void test_acl_parse_lone_word_is_the_topic(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\ntopic read\n");

	assert_true(can(acl, "gui", W, "read"));
	assert_true(can(acl, "gui", R, "read"));
	xmq_acl_free(acl);
}

/* Mosquitto: with an access word, the rest of the line is the topic. */
static void test_acl_parse_topic_with_spaces(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\ntopic read my topic/x y\n");

	assert_true(can(acl, "gui", R, "my topic/x y"));
	assert_false(can(acl, "gui", R, "my"));
	xmq_acl_free(acl);
}

static void test_acl_parse_user_name_is_rest_of_line(void **state)
{
	xmq_acl_t *acl = parse_ok("user    gui  \ntopic a\nuser a b\ntopic b\n");

	assert_true(can(acl, "gui", W, "a"));
	assert_false(can(acl, "gui", W, "b"));
	/* "a b" is no domain name: those rules match nothing. */
	assert_false(can(acl, "a", W, "b"));
	xmq_acl_free(acl);
}

/* Mosquitto 2.0 reads lines of any length; a filter is at most 65535 bytes. */
static void test_acl_parse_long_lines(void **state)
{
	size_t n = 70000;
	char *text = malloc(n + 64), *topic = malloc(n + 1);
	xmq_acl_t *acl;

	assert_non_null(text);
	assert_non_null(topic);
	memset(topic, 'a', 3000);
	topic[3000] = '\0';
	snprintf(text, n + 64, "user gui\ntopic write long/%s\n", topic);
	acl = parse_ok(text);
	memmove(topic + 5, topic, 3001);
	memcpy(topic, "long/", 5);
	assert_true(can(acl, "gui", W, topic));
	xmq_acl_free(acl);

	memset(topic, 'a', n);
	topic[n] = '\0';
	snprintf(text, n + 64, "user gui\ntopic write %s\n", topic);
	parse_bad(text, 2, "is not a valid topic filter");
	free(text);
	free(topic);
}

static void test_acl_parse_errors(void **state)
{
	/* Each is refused by Mosquitto 2.0.11 too. */
	parse_bad("user gui\n\ntopic\n", 3, "'topic' without a topic filter");
	parse_bad("pattern   \n", 1, "'pattern' without a topic filter");
	parse_bad("topic foo bar\n", 1, "unknown access 'foo'");
	parse_bad("topic READ a\n", 1, "unknown access 'READ'");
	parse_bad("topic read a/#/b\n", 1, "'a/#/b' is not a valid topic filter");
	parse_bad("topic read a+/b\n", 1, "'a+/b' is not a valid topic filter");
	parse_bad("pattern read xen/%u#\n", 1, "is not a valid topic filter");
	parse_bad("topic read a/b # trailing comment\n", 1, "is not a valid topic filter");
	parse_bad("bogus line\n", 1, "unknown keyword 'bogus'");
	parse_bad("TOPIC read a\n", 1, "unknown keyword 'TOPIC'");
	parse_bad("# ok\n  # indented\n", 2, "comment must start with '#' in the first column");
	parse_bad("user\n", 1, "'user' without a name");
	parse_bad("user    \n", 1, "'user' without a name");
	parse_bad("topic\tread\tfoo\n", 1, "tab character");
	/* Stricter: Mosquitto would load these and never match them. */
	parse_bad("topic read \xff\xfe\n", 1, "not a valid topic filter");
	parse_bad("topic read a\tb\n", 1, "tab character");
	parse_bad_len("user gui\ntopic a\0b\n", 19, 2, "NUL byte");
}

static void test_acl_parse_error_buffer_handling(void **state)
{
	xmq_acl_t *acl = NULL;
	char small[12];
	const char *bad = "nonsense\n";

	/* No buffer, a tiny one: still refused, never overrun. */
	assert_int_equal(xmq_acl_parse(bad, strlen(bad), "t.acl", &acl, NULL, 0), XMQ_ECONFIG);
	memset(small, 'x', sizeof(small));
	assert_int_equal(xmq_acl_parse(bad, strlen(bad), "t.acl", &acl, small, sizeof(small)),
	                 XMQ_ECONFIG);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_null(acl);
	/* Without a name the messages still say where. */
	{
		char err[256];

		assert_int_equal(xmq_acl_parse(bad, strlen(bad), NULL, &acl, err, sizeof(err)),
		                 XMQ_ECONFIG);
		assert_non_null(strstr(err, ":1: "));
	}
	/* A hostile line is quoted short and without control bytes. */
	{
		char text[400], err[512];

		memset(text, 'z', sizeof(text));
		text[0] = '\x1b';
		text[sizeof(text) - 1] = '\n';
		assert_int_equal(xmq_acl_parse(text, sizeof(text), "t.acl", &acl, err, sizeof(err)),
		                 XMQ_ECONFIG);
		assert_null(strchr(err, '\x1b'));
		assert_true(strlen(err) < 300);
		assert_non_null(strstr(err, "..."));
	}
	assert_int_equal(xmq_acl_parse(NULL, 0, "t.acl", &acl, NULL, 0), 0);
	assert_int_equal(xmq_acl_rules(acl), 0);
	xmq_acl_free(acl);
}

static void test_acl_rules_counts_topic_and_pattern_lines(void **state)
{
	xmq_acl_t *acl = parse_ok("topic anon\nuser a\ntopic x\ntopic deny y\n"
	                          "pattern p/%u\nuser b\ntopic z\n");

	assert_int_equal(xmq_acl_rules(acl), 5);
	xmq_acl_free(acl);
}

/* ---- semantics ----------------------------------------------------------- */

/* Mosquitto: deny rules are checked first, whatever their place in the file. */
static void test_acl_deny_wins_whatever_the_order(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\n"
	                          "topic deny a/secret\n"
	                          "topic readwrite a/#\n"
	                          "topic deny a/+/hidden\n");

	assert_true(can(acl, "gui", W, "a/open"));
	assert_false(can(acl, "gui", W, "a/secret"));
	assert_false(can(acl, "gui", R, "a/secret"));
	assert_false(can(acl, "gui", R, "a/x/hidden"));
	assert_true(can(acl, "gui", R, "a/x/shown"));
	xmq_acl_free(acl);
}

/* Stricter: in Mosquitto a user's allow rule beats a pattern's deny. */
static void test_acl_pattern_deny_beats_user_allow(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\n"
	                          "topic readwrite xen/#\n"
	                          "pattern deny xen/%u/status\n");

	assert_true(can(acl, "gui", W, "xen/gui/input"));
	assert_false(can(acl, "gui", W, "xen/gui/status"));
	assert_true(can(acl, "gui", W, "xen/ctrl/status"));
	xmq_acl_free(acl);
}

/* Mosquitto: a user's deny beats a pattern's allow. */
static void test_acl_user_deny_beats_pattern_allow(void **state)
{
	xmq_acl_t *acl = parse_ok("pattern readwrite xen/%u/#\n"
	                          "user gui\n"
	                          "topic deny xen/gui/secret\n");

	assert_true(can(acl, "gui", W, "xen/gui/x"));
	assert_false(can(acl, "gui", W, "xen/gui/secret"));
	assert_true(can(acl, "ctrl", W, "xen/ctrl/secret"));
	xmq_acl_free(acl);
}

/* A rule whose access does not fit does not deny: the next one may allow. */
static void test_acl_access_mismatch_falls_through(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\ntopic read a/#\ntopic write a/b\n");

	assert_true(can(acl, "gui", W, "a/b"));
	assert_false(can(acl, "gui", W, "a/c"));
	assert_true(can(acl, "gui", R, "a/c"));
	xmq_acl_free(acl);
}

/* Mosquitto: rules before any `user` are for anonymous clients; no domain is. */
static void test_acl_anonymous_rules_match_nobody(void **state)
{
	xmq_acl_t *acl = parse_ok("topic readwrite #\n"
	                          "topic deny nothing\n"
	                          "user gui\n"
	                          "topic read mine\n");

	assert_int_equal(xmq_acl_rules(acl), 3);
	assert_false(can(acl, "gui", W, "anything"));
	assert_false(can(acl, "ctrl", R, "anything"));
	assert_true(can(acl, "gui", R, "mine"));
	xmq_acl_free(acl);
}

/* Mosquitto: a second block for the same user adds to the first. */
static void test_acl_user_blocks_accumulate(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\ntopic read a\n"
	                          "user ctrl\ntopic read b\n"
	                          "user gui\ntopic read c\ntopic deny a\n");

	assert_false(can(acl, "gui", R, "a"));
	assert_false(can(acl, "gui", R, "b"));
	assert_true(can(acl, "gui", R, "c"));
	assert_true(can(acl, "ctrl", R, "b"));
	assert_false(can(acl, "ctrl", R, "c"));
	xmq_acl_free(acl);
}

static void test_acl_user_names_match_exactly(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\ntopic a\n");

	assert_true(can(acl, "gui", R, "a"));
	assert_false(can(acl, "GUI", R, "a"));
	assert_false(can(acl, "gui2", R, "a"));
	assert_false(can(acl, "gu", R, "a"));
	xmq_acl_free(acl);
}

static void test_acl_pattern_expands_user(void **state)
{
	xmq_acl_t *acl = parse_ok("pattern write xen/%u/#\n"
	                          "pattern read mix%u/x\n"
	                          "pattern read pct/%%u\n");

	assert_true(can(acl, "gui", W, "xen/gui/a/b"));
	assert_true(can(acl, "gui", W, "xen/gui"));
	assert_false(can(acl, "gui", W, "xen/ctrl/a"));
	assert_true(can(acl, "sys-usb", W, "xen/sys-usb/x"));
	/* Mosquitto expands inside a level, and reads left to right. */
	assert_true(can(acl, "gui", R, "mixgui/x"));
	assert_true(can(acl, "gui", R, "pct/%gui"));
	xmq_acl_free(acl);
}

/* Mosquitto 2.0: %c is the whole client id, '/' included. */
static void test_acl_pattern_expands_client_id(void **state)
{
	xmq_acl_t *acl = parse_ok("pattern write app/%c/#\npattern read id/%u/%c\n");

	assert_true(xmq_acl_check(acl, "gui", "gui/viewer", "app/gui/viewer/x", W));
	assert_false(xmq_acl_check(acl, "gui", "gui/viewer", "app/gui/other/x", W));
	assert_true(xmq_acl_check(acl, "gui", "gui/viewer", "id/gui/gui/viewer", R));
	xmq_acl_free(acl);
}

/* Stricter than expanding blindly: a wildcard must never come in through %c or %u. */
static void test_acl_pattern_refuses_wildcard_names(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\ntopic read plain\npattern write app/%c/#\n");
	xmq_acl_t *no_c = parse_ok("user gui\ntopic read plain\npattern write xen/%u/#\n");

	assert_false(xmq_acl_check(acl, "gui", "gui/+", "app/gui/x/y", W));
	assert_false(xmq_acl_check(acl, "gui", "#", "app/a", W));
	assert_false(xmq_acl_check(acl, "gui", "", "app/a", W));
	assert_false(xmq_acl_check(acl, "gui", NULL, "plain", R));
	assert_true(xmq_acl_check(acl, "gui", "gui/app", "plain", R));
	/* The client id matters only where a pattern uses it. */
	assert_true(xmq_acl_check(no_c, "gui", NULL, "plain", R));
	assert_true(xmq_acl_check(no_c, "gui", "gui/+", "xen/gui/x", W));
	/* A user must be a domain name. */
	assert_false(xmq_acl_check(no_c, "+", "x", "xen/+/x", R));
	assert_false(xmq_acl_check(no_c, "a/b", "x", "xen/a/b/x", W));
	assert_false(xmq_acl_check(no_c, "", "x", "xen//x", W));
	assert_false(xmq_acl_check(no_c, NULL, "x", "plain", R));
	xmq_acl_free(acl);
	xmq_acl_free(no_c);
}

/* A pattern whose expansion is not a valid filter denies, even for other rules. */
static void test_acl_pattern_failing_expansion_denies(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\ntopic readwrite #\npattern deny x/%c\n");
	char *cid = malloc(70000);

	assert_non_null(cid);
	memset(cid, 'c', 69999);
	cid[69999] = '\0';
	assert_true(xmq_acl_check(acl, "gui", "gui/app", "a", W));
	assert_false(xmq_acl_check(acl, "gui", cid, "a", W));
	/* Invalid UTF-8 in a client id cannot be checked either. */
	assert_false(xmq_acl_check(acl, "gui", "gui/\xff", "a", W));
	free(cid);
	xmq_acl_free(acl);
}

/* Long expansions go to the heap: results must not change. */
static void test_acl_pattern_long_expansion(void **state)
{
	xmq_acl_t *acl = parse_ok("pattern write a/%c/%c/%c/%c\n");
	char cid[200], topic[1024];

	memset(cid, 'q', sizeof(cid) - 1);
	cid[sizeof(cid) - 1] = '\0';
	snprintf(topic, sizeof(topic), "a/%s/%s/%s/%s", cid, cid, cid, cid);
	assert_true(xmq_acl_check(acl, "gui", cid, topic, W));
	topic[strlen(topic) - 1] = 'z';
	assert_false(xmq_acl_check(acl, "gui", cid, topic, W));
	xmq_acl_free(acl);
}

/* Mosquitto: `topic` lines take %u literally. */
static void test_acl_topic_lines_do_not_expand(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\ntopic write xen/%u/x\n");

	assert_false(can(acl, "gui", W, "xen/gui/x"));
	assert_true(can(acl, "gui", W, "xen/%u/x"));
	xmq_acl_free(acl);
}

/* Stricter: Mosquitto 2.0.11 grants every subscription and filters at delivery. */
static void test_acl_subscribe_needs_a_covering_read_rule(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\n"
	                          "topic read xen/+/status\n"
	                          "topic read usb/#\n"
	                          "topic write dom0/cmd/#\n");

	assert_true(can(acl, "gui", S, "xen/+/status"));
	assert_true(can(acl, "gui", S, "xen/ctrl/status"));
	assert_false(can(acl, "gui", S, "xen/#"));
	assert_false(can(acl, "gui", S, "xen/+/+"));
	assert_false(can(acl, "gui", S, "xen/ctrl/status/x"));
	assert_false(can(acl, "gui", S, "#"));
	assert_false(can(acl, "gui", S, "+/+/status"));
	assert_true(can(acl, "gui", S, "usb/#"));
	assert_true(can(acl, "gui", S, "usb"));
	assert_true(can(acl, "gui", S, "usb/+/x/#"));
	assert_false(can(acl, "gui", S, "dom0/cmd/#"));  /* write does not let read */
	assert_false(can(acl, "gui", S, "dom0/cmd/reboot"));
	xmq_acl_free(acl);
}

static void test_acl_subscribe_level_rules(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\n"
	                          "topic read a/#\n"
	                          "topic read b/+\n"
	                          "topic read +/#\n");
	xmq_acl_t *narrow = parse_ok("user gui\ntopic read b/+\ntopic read c\n");

	/* "a/#" matches "a" itself; "+/#" matches every topic not starting with '$'. */
	assert_true(can(acl, "gui", S, "a"));
	assert_true(can(acl, "gui", S, "#"));
	assert_false(can(acl, "gui", S, "$SYS/#"));
	assert_false(can(narrow, "gui", S, "b"));
	assert_true(can(narrow, "gui", S, "b/x"));
	assert_true(can(narrow, "gui", S, "b/"));
	assert_true(can(narrow, "gui", S, "b/+"));
	assert_false(can(narrow, "gui", S, "b/#"));
	assert_false(can(narrow, "gui", S, "b/x/y"));
	assert_true(can(narrow, "gui", S, "c"));
	assert_false(can(narrow, "gui", S, "c/#"));
	assert_false(can(narrow, "gui", S, "+"));
	xmq_acl_free(acl);
	xmq_acl_free(narrow);
}

/*
 * A deny that covers the whole filter refuses the subscription; one that
 * covers part of it leaves the subscription and denies those messages.
 */
static void test_acl_subscribe_and_deny(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\n"
	                          "topic read xen/#\n"
	                          "pattern deny xen/%u/status\n"
	                          "topic deny xen/secret/#\n");

	assert_false(can(acl, "gui", S, "xen/gui/status"));
	assert_false(can(acl, "gui", S, "xen/secret/#"));
	assert_false(can(acl, "gui", S, "xen/secret/a/+"));
	assert_true(can(acl, "gui", S, "xen/+/status"));
	assert_true(can(acl, "gui", S, "xen/#"));
	assert_false(can(acl, "gui", R, "xen/gui/status"));
	assert_false(can(acl, "gui", R, "xen/secret/a"));
	assert_true(can(acl, "gui", R, "xen/ctrl/status"));
	xmq_acl_free(acl);
}

/* Mosquitto: '$' topics need a rule starting with '$'; $SYS is never written. */
static void test_acl_dollar_topics(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\n"
	                          "topic readwrite #\n"
	                          "user mon\n"
	                          "topic readwrite $SYS/#\n"
	                          "topic readwrite $foo/#\n");

	assert_false(can(acl, "gui", R, "$SYS/broker/version"));
	assert_false(can(acl, "gui", S, "$SYS/#"));
	assert_false(can(acl, "gui", W, "$foo/bar"));
	assert_true(can(acl, "mon", R, "$SYS/broker/version"));
	assert_true(can(acl, "mon", S, "$SYS/broker/#"));
	assert_true(can(acl, "mon", S, "$SYS/#"));
	assert_false(can(acl, "mon", W, "$SYS/broker/version"));
	assert_false(can(acl, "mon", W, "$SYS"));
	assert_true(can(acl, "mon", W, "$foo/bar"));
	assert_false(can(acl, "mon", S, "#"));
	xmq_acl_free(acl);
}

/* Mosquitto: $share is for subscriptions only; what counts is the inner filter. */
static void test_acl_shared_subscriptions(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\ntopic readwrite #\ntopic read $share/#\n"
	                          "user ctrl\ntopic read xen/+/status\n");

	assert_true(can(acl, "ctrl", S, "$share/g/xen/+/status"));
	assert_false(can(acl, "ctrl", S, "$share/g/xen/#"));
	assert_false(can(acl, "ctrl", S, "$share/g"));
	assert_false(can(acl, "ctrl", S, "$share//xen/+/status"));
	assert_false(can(acl, "ctrl", S, "$share/+/xen/+/status"));
	assert_true(can(acl, "gui", S, "$share/group/a/#"));
	assert_false(can(acl, "gui", W, "$share/g/a"));
	assert_false(can(acl, "gui", R, "$share/g/a"));
	xmq_acl_free(acl);
}

static void test_acl_invalid_requests_are_denied(void **state)
{
	xmq_acl_t *acl = parse_ok("user gui\ntopic readwrite #\n");

	assert_true(can(acl, "gui", W, "a"));
	assert_false(can(acl, "gui", W, "a/+"));
	assert_false(can(acl, "gui", W, "#"));
	assert_false(can(acl, "gui", R, "a/#"));
	assert_false(can(acl, "gui", W, ""));
	assert_false(can(acl, "gui", W, "a\xff"));
	assert_false(can(acl, "gui", S, "a/#/b"));
	assert_false(can(acl, "gui", S, ""));
	assert_false(xmq_acl_check(acl, "gui", "gui/app", NULL, W));
	assert_false(xmq_acl_check(acl, "gui", "gui/app", "a", 0));
	assert_false(xmq_acl_check(acl, "gui", "gui/app", "a", R | W));
	assert_false(xmq_acl_check(acl, "gui", "gui/app", "a", 8));
	xmq_acl_free(acl);
}

/* ---- the example file ---------------------------------------------------- */

static char *read_example(const char *rel, size_t *len)
{
	char path[4096];
	const char *here = __FILE__, *slash = strrchr(here, '/');
	FILE *f;
	char *buf;
	long n;

	/* __FILE__ is tests/unit/test_acl.c, relative to the repository or not. */
	snprintf(path, sizeof(path), "%.*s../../%s", (int)(slash ? slash - here + 1 : 0),
	         here, rel);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void test_acl_example_file(void **state)
{
	size_t len;
	char *text = read_example("conf/xenmq.acl", &len), err[512];
	xmq_acl_t *acl = NULL;
	const char *all[] = { "gui", "ctrl", "sys-usb" };
	size_t i;

	if (xmq_acl_parse(text, len, "conf/xenmq.acl", &acl, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	free(text);

	for (i = 0; i < 3; i++) {
		const char *d = all[i];
		char t[128];

		snprintf(t, sizeof(t), "xen/%s/log/info", d);
		assert_true(can(acl, d, W, t));
		snprintf(t, sizeof(t), "xen/%s/status", d);
		assert_false(can(acl, d, W, t));   /* xenmqd's alone */
		snprintf(t, sizeof(t), "xen/%s/reply/#", d);
		assert_true(can(acl, d, S, t));
		assert_true(can(acl, d, S, "xen/+/status"));
		assert_false(can(acl, d, W, "xen/other/log/info"));
		assert_false(can(acl, d, S, "#"));
	}
	assert_true(can(acl, "gui", R, "xen/ctrl/status"));
	assert_false(can(acl, "gui", R, "xen/gui/status"));
	assert_false(can(acl, "ctrl", S, "xen/gui/reply/#"));

	assert_true(can(acl, "gui", S, "xen/+/input/#"));
	assert_true(can(acl, "gui", S, "xen/+/sensor/#"));
	assert_false(can(acl, "ctrl", S, "xen/+/input/#"));
	assert_false(can(acl, "sys-usb", R, "xen/gui/input/key"));

	assert_true(can(acl, "gui", W, "dom0/cmd/reboot"));
	assert_true(can(acl, "ctrl", W, "dom0/cmd/reboot"));
	assert_false(can(acl, "sys-usb", W, "dom0/cmd/reboot"));
	assert_false(can(acl, "gui", S, "dom0/cmd/#"));

	assert_true(can(acl, "sys-usb", S, "usb/cmd/#"));
	assert_false(can(acl, "gui", S, "usb/cmd/#"));
	assert_false(can(acl, "ctrl", S, "usb/cmd/#"));
	assert_true(can(acl, "sys-usb", W, "usb/media"));
	assert_false(can(acl, "gui", W, "usb/media"));
	assert_false(can(acl, "ctrl", W, "usb/media"));
	assert_true(can(acl, "gui", S, "usb/media"));
	assert_true(can(acl, "sys-usb", W, "xen/gui/reply/usb/42"));
	assert_false(can(acl, "gui", W, "xen/ctrl/reply/x"));

	/* A domain the file does not name gets only the patterns. */
	assert_true(can(acl, "other", W, "xen/other/log/info"));
	assert_false(can(acl, "other", S, "xen/+/status"));
	xmq_acl_free(acl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acl_parse_empty_denies_everything),
		cmocka_unit_test(test_acl_no_acl_denies_everything),
		cmocka_unit_test(test_acl_parse_comments_blanks_and_line_ends),
		cmocka_unit_test(test_acl_parse_access_words),
		cmocka_unit_test(test_acl_parse_lone_word_is_the_topic),
		cmocka_unit_test(test_acl_parse_topic_with_spaces),
		cmocka_unit_test(test_acl_parse_user_name_is_rest_of_line),
		cmocka_unit_test(test_acl_parse_long_lines),
		cmocka_unit_test(test_acl_parse_errors),
		cmocka_unit_test(test_acl_parse_error_buffer_handling),
		cmocka_unit_test(test_acl_rules_counts_topic_and_pattern_lines),
		cmocka_unit_test(test_acl_deny_wins_whatever_the_order),
		cmocka_unit_test(test_acl_pattern_deny_beats_user_allow),
		cmocka_unit_test(test_acl_user_deny_beats_pattern_allow),
		cmocka_unit_test(test_acl_access_mismatch_falls_through),
		cmocka_unit_test(test_acl_anonymous_rules_match_nobody),
		cmocka_unit_test(test_acl_user_blocks_accumulate),
		cmocka_unit_test(test_acl_user_names_match_exactly),
		cmocka_unit_test(test_acl_pattern_expands_user),
		cmocka_unit_test(test_acl_pattern_expands_client_id),
		cmocka_unit_test(test_acl_pattern_refuses_wildcard_names),
		cmocka_unit_test(test_acl_pattern_failing_expansion_denies),
		cmocka_unit_test(test_acl_pattern_long_expansion),
		cmocka_unit_test(test_acl_topic_lines_do_not_expand),
		cmocka_unit_test(test_acl_subscribe_needs_a_covering_read_rule),
		cmocka_unit_test(test_acl_subscribe_level_rules),
		cmocka_unit_test(test_acl_subscribe_and_deny),
		cmocka_unit_test(test_acl_dollar_topics),
		cmocka_unit_test(test_acl_shared_subscriptions),
		cmocka_unit_test(test_acl_invalid_requests_are_denied),
		cmocka_unit_test(test_acl_example_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
