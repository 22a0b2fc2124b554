/* SPDX-License-Identifier: MIT */
/*
 * fuzz_conf.c - libFuzzer target for the two configuration parsers.
 *
 * Each input is parsed as xenmqd.conf and as an ACL file. When it is a valid
 * ACL, words taken from the input (its filters among them), with %u/%c
 * filled in and wildcards replaced, are checked as topics and filters for a
 * few domains. Besides crashes and sanitizer reports, it aborts when the
 * subscription check (filter coverage, ours) and the read check (topic
 * matching, libmosquitto's) disagree on a filter without wildcards, where
 * they must agree.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/conf.h"
#include "topics/acl.h"
#include "topics/topic.h"

#define MAX_WORDS 8
#define MAX_WORD 512

/* Copies s with every occurrence of from replaced by to, at most size bytes. */
static void replace(char *dst, size_t size, const char *s, const char *from, const char *to)
{
	size_t n = 0, from_n = strlen(from), to_n = strlen(to);

	while (*s != '\0' && n + 1 < size) {
		if (strncmp(s, from, from_n) == 0 && n + to_n + 1 < size) {
			memcpy(dst + n, to, to_n);
			n += to_n;
			s += from_n;
		} else {
			dst[n++] = *s++;
		}
	}
	dst[n] = '\0';
}

static void check_word(const xmq_acl_t *acl, const char *word)
{
	static const char *const users[] = { "gui", "sys-usb", "a" };
	char expanded[MAX_WORD * 4], step[MAX_WORD * 4], topic[MAX_WORD * 8];
	char cid[96];
	size_t u;

	for (u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
		snprintf(cid, sizeof(cid), "%s/app", users[u]);
		replace(step, sizeof(step), word, "%u", users[u]);
		replace(expanded, sizeof(expanded), step, "%c", cid);
		replace(step, sizeof(step), expanded, "+", "x");
		replace(topic, sizeof(topic), step, "#", "y/z");

		(void)xmq_acl_check(acl, users[u], cid, word, XMQ_ACL_READ);
		(void)xmq_acl_check(acl, users[u], cid, word, XMQ_ACL_WRITE);
		(void)xmq_acl_check(acl, users[u], cid, word, XMQ_ACL_SUBSCRIBE);
		(void)xmq_acl_check(acl, users[u], cid, expanded, XMQ_ACL_SUBSCRIBE);
		(void)xmq_acl_check(acl, users[u], word, topic, XMQ_ACL_WRITE);

		/* A filter without wildcards is one topic: both checks must agree. */
		if (xmq_topic_valid(topic) && strncmp(topic, "$share", 6) != 0) {
			bool r = xmq_acl_check(acl, users[u], cid, topic, XMQ_ACL_READ);
			bool s = xmq_acl_check(acl, users[u], cid, topic, XMQ_ACL_SUBSCRIBE);

			if (r != s) {
				fprintf(stderr, "read %d but subscribe %d: user '%s' topic '%s'\n",
				        r, s, users[u], topic);
				abort();
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char err[256], word[MAX_WORD + 1];
	xmq_acl_t *acl = NULL;
	xmq_conf_t conf;
	size_t i, start, words = 0;

	if (xmq_conf_parse(text, size, "fuzz.conf", &conf, err, sizeof(err)) == 0) {
		for (i = 0; i < conf.n_domains; i++) {
			if (xmq_conf_domain(&conf, conf.domains[i].name) != &conf.domains[i] ||
			    conf.domains[i].channel == NULL)
				abort();
		}
		xmq_conf_dispose(&conf);
		xmq_conf_dispose(&conf);
	}

	if (xmq_acl_parse(text, size, "fuzz.acl", &acl, err, sizeof(err)) != 0)
		return 0;
	(void)xmq_acl_rules(acl);
	check_word(acl, "#");
	for (start = 0, i = 0; i <= size && words < MAX_WORDS; i++) {
		if (i < size && text[i] != ' ' && text[i] != '\n' && text[i] != '\0')
			continue;
		if (i > start && i - start <= MAX_WORD) {
			memcpy(word, text + start, i - start);
			word[i - start] = '\0';
			check_word(acl, word);
			words++;
		}
		start = i + 1;
	}
	xmq_acl_free(acl);
	return 0;
}
