/* SPDX-License-Identifier: MIT */
/*
 * acl.c - Mosquitto's acl_file, read as xenmqd's access rules for domains.
 *
 * The parser accepts exactly the lines Mosquitto 2.0.11 accepts (words split
 * on spaces, comments in the first column, an optional access word, a topic
 * that may contain spaces when the access word is given), except that it also
 * refuses what Mosquitto would load but never match: tab characters and
 * filters that are not valid UTF-8. Its messages say which line is wrong and
 * how to fix it.
 *
 * The checker follows Mosquitto's order of decisions where that order is
 * safe and departs from it where it is not: a matching `deny` wins over every
 * allow rule, user and pattern alike (Mosquitto lets a user's allow rule win
 * over a pattern's deny), and a subscription needs a read rule that covers
 * its whole filter (Mosquitto 2.0 grants every subscription and filters at
 * delivery only). docs/configuration.md records the measurements behind this.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topics/acl.h"
#include "topics/topic.h"

/* Longest topic filter MQTT can carry; expansions beyond it are invalid. */
#define FILTER_MAX 65535

enum rule_kind {
	RULE_ANONYMOUS,  /* `topic` before any `user`: Mosquitto's anonymous clients */
	RULE_USER,       /* `topic` after `user NAME` */
	RULE_PATTERN     /* `pattern`: every domain, with %u and %c expanded */
};

struct rule {
	char *filter;        /* as written in the file */
	unsigned access;     /* XMQ_ACL_READ | XMQ_ACL_WRITE bits; 0 for deny */
	enum rule_kind kind;
	size_t user;         /* RULE_USER: index into xmq_acl.users */
	bool expands;        /* RULE_PATTERN holding %u or %c */
};

struct xmq_acl {
	struct rule *rules;
	size_t n_rules, cap_rules;
	char **users;        /* names given to `user`, each once */
	size_t n_users, cap_users;
	bool uses_client_id; /* some pattern holds %c */
};

/* ---- parsing ------------------------------------------------------------- */

struct parser {
	xmq_acl_t *acl;
	const char *filename;
	size_t line;
	bool in_user;        /* a `user` line has been seen */
	size_t user;         /* the current user, when in_user */
	char *err;
	size_t errlen;
};

/*
 * Copies n bytes of s into buf for an error message: at most 60 of them, with
 * control bytes shown as '?', so that a hostile line cannot flood or garble a
 * log.
 */
static const char *excerpt(char *buf, size_t size, const char *s, size_t n)
{
	size_t i, max = size - 4;

	for (i = 0; i < n && i < max; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (i < n)
		memcpy(buf + i, "...", 3), i += 3;
	buf[i] = '\0';
	return buf;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err == NULL || p->errlen == 0)
		return XMQ_ECONFIG;
	n = snprintf(p->err, p->errlen, "%s:%zu: ", p->filename, p->line);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return XMQ_ECONFIG;
}

/* Grows *array to hold one more element of size each; 0 or -ENOMEM. */
static int reserve(void **array, size_t *cap, size_t used, size_t each)
{
	size_t ncap;
	void *grown;

	if (used < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	if (ncap < *cap || ncap > SIZE_MAX / each)
		return -ENOMEM;
	grown = realloc(*array, ncap * each);
	if (grown == NULL)
		return -ENOMEM;
	*array = grown;
	*cap = ncap;
	return 0;
}

static bool word_is(const char *w, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

static size_t word_len(const char *s, const char *end)
{
	const char *sp = memchr(s, ' ', (size_t)(end - s));

	return (size_t)((sp ? sp : end) - s);
}

static const char *skip_spaces(const char *s, const char *end)
{
	while (s < end && *s == ' ')
		s++;
	return s;
}

static int parse_user(struct parser *p, const char *name, const char *end)
{
	xmq_acl_t *acl = p->acl;
	size_t i, n;
	char *copy;

	/* Like Mosquitto: one space ends the keyword, then blanks are trimmed. */
	while (name < end && isspace((unsigned char)*name))
		name++;
	n = (size_t)(end - name);
	if (n == 0)
		return fail(p, "'user' without a name: write 'user DOMAIN'");
	for (i = 0; i < acl->n_users; i++) {
		if (strlen(acl->users[i]) == n && memcmp(acl->users[i], name, n) == 0)
			break;
	}
	if (i == acl->n_users) {
		if (reserve((void **)&acl->users, &acl->cap_users, acl->n_users,
		            sizeof(*acl->users)) < 0)
			return -ENOMEM;
		copy = strndup(name, n);
		if (copy == NULL)
			return -ENOMEM;
		acl->users[acl->n_users++] = copy;
	}
	/* A repeated `user` block adds to the rules of the first one. */
	p->in_user = true;
	p->user = i;
	return 0;
}

static int parse_rule(struct parser *p, bool pattern, const char *s, const char *end)
{
	const char *kw = pattern ? "pattern" : "topic";
	const char *access_s, *topic;
	size_t access_n, topic_n;
	unsigned access = XMQ_ACL_READ | XMQ_ACL_WRITE;
	struct rule *r;
	char buf[64];
	char *filter;

	access_s = skip_spaces(s, end);
	if (access_s == end)
		return fail(p, "'%s' without a topic filter: write '%s [read|write|readwrite|deny] FILTER'",
		            kw, kw);
	access_n = word_len(access_s, end);
	if (access_s + access_n == end) {
		/* One word: it is the filter, and the access is readwrite. */
		topic = access_s;
		topic_n = access_n;
	} else {
		topic = access_s + access_n + 1;
		while (topic < end && isspace((unsigned char)*topic))
			topic++;
		topic_n = (size_t)(end - topic);
		if (word_is(access_s, access_n, "read")) {
			access = XMQ_ACL_READ;
		} else if (word_is(access_s, access_n, "write")) {
			access = XMQ_ACL_WRITE;
		} else if (word_is(access_s, access_n, "readwrite")) {
			access = XMQ_ACL_READ | XMQ_ACL_WRITE;
		} else if (word_is(access_s, access_n, "deny")) {
			access = 0;
		} else {
			return fail(p, "unknown access '%s': write read, write, readwrite or deny "
			            "(lower case) before the filter, or nothing for readwrite",
			            excerpt(buf, sizeof(buf), access_s, access_n));
		}
	}

	filter = strndup(topic, topic_n);
	if (filter == NULL)
		return -ENOMEM;
	if (!xmq_filter_valid(filter)) {
		fail(p, "'%s' is not a valid topic filter: '+' and '#' must fill a whole level, "
		     "'#' must be the last level, and a filter is UTF-8 without control characters",
		     excerpt(buf, sizeof(buf), topic, topic_n));
		free(filter);
		return XMQ_ECONFIG;
	}
	if (reserve((void **)&p->acl->rules, &p->acl->cap_rules, p->acl->n_rules,
	            sizeof(*p->acl->rules)) < 0) {
		free(filter);
		return -ENOMEM;
	}
	r = &p->acl->rules[p->acl->n_rules++];
	r->filter = filter;
	r->access = access;
	r->user = p->user;
	if (pattern) {
		r->kind = RULE_PATTERN;
		r->expands = strstr(filter, "%u") != NULL || strstr(filter, "%c") != NULL;
		if (strstr(filter, "%c") != NULL)
			p->acl->uses_client_id = true;
	} else {
		r->kind = p->in_user ? RULE_USER : RULE_ANONYMOUS;
		r->expands = false;
	}
	return 0;
}

static int parse_line(struct parser *p, const char *s, size_t n)
{
	const char *end, *kw;
	size_t kw_n;
	char buf[64];

	if (memchr(s, '\0', n) != NULL)
		return fail(p, "NUL byte: an ACL file is text");
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || s[0] == '#')
		return 0;
	end = s + n;
	if (memchr(s, '\t', n) != NULL)
		return fail(p, "tab character: words in an ACL line are separated by spaces only "
		            "(as in Mosquitto); replace the tab with spaces");
	kw = skip_spaces(s, end);
	kw_n = word_len(kw, end);
	if (kw[0] == '#')
		return fail(p, "a comment must start with '#' in the first column "
		            "(Mosquitto refuses an indented one); remove the spaces before '#'");
	if (word_is(kw, kw_n, "topic"))
		return parse_rule(p, false, kw + kw_n, end);
	if (word_is(kw, kw_n, "pattern"))
		return parse_rule(p, true, kw + kw_n, end);
	if (word_is(kw, kw_n, "user"))
		return parse_user(p, kw + kw_n + (kw + kw_n < end), end);
	return fail(p, "unknown keyword '%s': a line is 'user NAME', "
	            "'topic [read|write|readwrite|deny] FILTER', "
	            "'pattern [read|write|readwrite|deny] FILTER' or a '#' comment",
	            excerpt(buf, sizeof(buf), kw, kw_n));
}

int xmq_acl_parse(const char *text, size_t len, const char *filename,
                  xmq_acl_t **out, char *err, size_t errlen)
{
	struct parser p = {
		.filename = filename ? filename : "acl",
		.err = err,
		.errlen = errlen,
	};
	const char *line = text, *end = text + len, *nl;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out == NULL || (text == NULL && len > 0))
		return -EINVAL;
	p.acl = calloc(1, sizeof(*p.acl));
	if (p.acl == NULL)
		return -ENOMEM;
	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		p.line++;
		rc = parse_line(&p, line, (size_t)((nl ? nl : end) - line));
		if (rc == -ENOMEM)
			fail(&p, "out of memory");
		if (rc < 0)
			goto out;
		line = nl ? nl + 1 : end;
	}
	*out = p.acl;
	p.acl = NULL;
	rc = 0;
out:
	xmq_acl_free(p.acl);
	return rc;
}

void xmq_acl_free(xmq_acl_t *acl)
{
	size_t i;

	if (acl == NULL)
		return;
	for (i = 0; i < acl->n_rules; i++)
		free(acl->rules[i].filter);
	for (i = 0; i < acl->n_users; i++)
		free(acl->users[i]);
	free(acl->rules);
	free(acl->users);
	free(acl);
}

size_t xmq_acl_rules(const xmq_acl_t *acl)
{
	return acl ? acl->n_rules : 0;
}

/* ---- checking ------------------------------------------------------------ */

/*
 * Writes pattern with %u and %c replaced into dst (size bytes), scanning left
 * to right as Mosquitto does ("%%u" is '%' then the user). Returns the
 * length the expansion needs, whether or not it fitted, or SIZE_MAX when it
 * would exceed FILTER_MAX.
 */
static size_t expand(const char *pattern, const char *user, size_t user_n,
                     const char *cid, size_t cid_n, char *dst, size_t size)
{
	size_t n = 0, add;
	const char *s;

	for (s = pattern; *s != '\0'; s++) {
		const char *src = s;

		add = 1;
		if (s[0] == '%' && s[1] == 'u') {
			src = user, add = user_n, s++;
		} else if (s[0] == '%' && s[1] == 'c') {
			src = cid, add = cid_n, s++;
		}
		if (add > FILTER_MAX - n)
			return SIZE_MAX;
		if (n + add < size)
			memcpy(dst + n, src, add);
		n += add;
	}
	if (n < size)
		dst[n] = '\0';
	return n;
}

/*
 * Whether every topic name that filter f matches is also matched by rule r;
 * both are valid filters, and neither starts with '$' unless both do.
 */
static bool covers(const char *r, const char *f)
{
	size_t rn, fn;
	bool first = true;

	for (;;) {
		rn = strcspn(r, "/");
		fn = strcspn(f, "/");
		if (rn == 1 && r[0] == '#')
			return true;
		/* A '#' matches the level above it too ("a/#" matches "a"), except
		 * at the start, where it is the same as "+/#". */
		if (fn == 1 && f[0] == '#')
			return first && strcmp(r, "+/#") == 0;
		if (!(rn == 1 && r[0] == '+')) {
			if (fn == 1 && f[0] == '+')
				return false;
			if (rn != fn || memcmp(r, f, rn) != 0)
				return false;
		}
		r += rn;
		f += fn;
		if (*f == '\0')
			return *r == '\0' || strcmp(r, "/#") == 0;  /* "a/#" matches "a" */
		if (*r == '\0')
			return false;
		r++;
		f++;
		first = false;
	}
}

/* A client id that Mosquitto would let into a %c pattern. */
static bool client_id_usable(const char *cid)
{
	return cid != NULL && cid[0] != '\0' && strlen(cid) <= FILTER_MAX &&
	       strpbrk(cid, "+#") == NULL;
}

bool xmq_acl_check(const xmq_acl_t *acl, const char *user, const char *client_id,
                   const char *topic, int access)
{
	const char *subject = topic, *filter;
	char stack[256], *heap = NULL;
	size_t i, user_idx, user_n, cid_n, need;
	unsigned want;
	bool subscribe = access == XMQ_ACL_SUBSCRIBE, allowed = false, hit;

	if (acl == NULL || topic == NULL || !xmq_domain_name_valid(user))
		return false;
	if (acl->uses_client_id && !client_id_usable(client_id))
		return false;

	if (subscribe) {
		if (!xmq_filter_valid(topic))
			return false;
		/* A shared subscription delivers the messages of its inner filter. */
		if (strncmp(topic, "$share/", 7) == 0) {
			const char *group = topic + 7;
			size_t group_n = strcspn(group, "/");

			if (group_n == 0 || group[group_n] != '/' ||
			    memchr(group, '+', group_n) != NULL || memchr(group, '#', group_n) != NULL)
				return false;
			subject = group + group_n + 1;
			if (!xmq_filter_valid(subject))
				return false;
		}
		want = XMQ_ACL_READ;
	} else if (access == XMQ_ACL_READ || access == XMQ_ACL_WRITE) {
		if (!xmq_topic_valid(topic))
			return false;
		/* Mosquitto's own rules for '$' topics, whatever the file says. */
		if (strncmp(topic, "$share", 6) == 0)
			return false;
		if (access == XMQ_ACL_WRITE && strncmp(topic, "$SYS", 4) == 0)
			return false;
		want = (unsigned)access;
	} else {
		return false;
	}

	for (user_idx = 0; user_idx < acl->n_users; user_idx++) {
		if (strcmp(acl->users[user_idx], user) == 0)
			break;
	}
	user_n = strlen(user);
	cid_n = client_id ? strlen(client_id) : 0;

	for (i = 0; i < acl->n_rules; i++) {
		const struct rule *r = &acl->rules[i];

		if (r->kind == RULE_ANONYMOUS || (r->kind == RULE_USER && r->user != user_idx))
			continue;
		if (r->access != 0 && (allowed || !(r->access & want)))
			continue;
		filter = r->filter;
		if (r->expands) {
			need = expand(r->filter, user, user_n, client_id, cid_n, stack, sizeof(stack));
			if (need == SIZE_MAX)
				goto deny;
			if (need >= sizeof(stack)) {
				free(heap);
				heap = malloc(need + 1);
				if (heap == NULL)
					goto deny;
				expand(r->filter, user, user_n, client_id, cid_n, heap, need + 1);
				filter = heap;
			} else {
				filter = stack;
			}
			/* Fail closed: a deny rule that cannot be evaluated denies. */
			if (!xmq_filter_valid(filter))
				goto deny;
		}
		/* '+' and '#' never reach a '$' topic: only a '$' rule may. */
		if (subject[0] == '$' && filter[0] != '$')
			continue;
		if (subscribe)
			hit = covers(filter, subject);
		else
			hit = xmq_topic_matches(filter, subject);
		if (!hit)
			continue;
		if (r->access == 0)
			goto deny;
		allowed = true;
	}
	free(heap);
	return allowed;
deny:
	free(heap);
	return false;
}
