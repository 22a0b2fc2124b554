/* SPDX-License-Identifier: MIT */
/*
 * conf.c - xenmqd.conf, and reading the files xenmqd is configured with.
 *
 * The file is read whole (it is small and bounded), then parsed line by line
 * into a private xmq_conf_t that is handed out only when every line and the
 * cross-checks at the end (each domain has a channel, queues hold a frame)
 * passed. Every value is checked where it is read, against the range given
 * in the key table, so that the message can point at the line.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "broker/conf.h"
#include "topics/topic.h"

#define DEFAULT_MOSQUITTO "/run/xenmq/mosquitto.sock"
#define DEFAULT_CLIENT_ID "xenmqd"
#define DEFAULT_LOG_DEST "stderr"

/* Longest path a Unix socket address holds (sun_path less its NUL). */
#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define PATH_LEN_MAX 4095

static const xmq_limits_t default_limits = {
	.max_frame_size = 16384,
	.max_message_rate = 200,
	.max_byte_rate = 262144,
	.max_subscriptions = 64,
	.max_sessions = 16,
	.max_queued_bytes = 262144,
	.max_inflight = 64,
	.max_session_expiry = 3600,
};

struct limit_key {
	const char *name;
	size_t offset;     /* in xmq_limits_t */
	uint32_t min, max;
	bool bytes;        /* takes k and M suffixes */
};

enum limit {
	L_FRAME_SIZE,
	L_MESSAGE_RATE,
	L_BYTE_RATE,
	L_SUBSCRIPTIONS,
	L_SESSIONS,
	L_QUEUED_BYTES,
	L_INFLIGHT,
	L_SESSION_EXPIRY,
	N_LIMITS
};

#define LIMIT(field) #field, offsetof(xmq_limits_t, field)

static const struct limit_key limit_keys[N_LIMITS] = {
	[L_FRAME_SIZE] = { LIMIT(max_frame_size), 256, 65536, true },
	[L_MESSAGE_RATE] = { LIMIT(max_message_rate), 0, 1000000, false },
	[L_BYTE_RATE] = { LIMIT(max_byte_rate), 0, 1073741824, true },
	[L_SUBSCRIPTIONS] = { LIMIT(max_subscriptions), 1, 65535, false },
	[L_SESSIONS] = { LIMIT(max_sessions), 1, 65535, false },
	[L_QUEUED_BYTES] = { LIMIT(max_queued_bytes), 256, 1073741824, true },
	[L_INFLIGHT] = { LIMIT(max_inflight), 1, 65535, false },
	[L_SESSION_EXPIRY] = { LIMIT(max_session_expiry), 0, UINT32_MAX, false },
};

enum global_key {
	G_MOSQUITTO,
	G_ACL_FILE,
	G_CLIENT_ID,
	G_LOG_LEVEL,
	G_LOG_DEST,
	G_STATUS_INTERVAL,
	G_KEEPALIVE,
	G_COUNT
};

/* Each global key and what its value looks like, for messages. */
static const struct {
	const char *name;
	const char *usage;
} global_keys[G_COUNT] = {
	[G_MOSQUITTO] = { "mosquitto", "/PATH/TO/SOCKET or HOST:PORT" },
	[G_ACL_FILE] = { "acl_file", "/ABSOLUTE/PATH" },
	[G_CLIENT_ID] = { "client_id", "NAME" },
	[G_LOG_LEVEL] = { "log_level", "err|warning|notice|info|debug" },
	[G_LOG_DEST] = { "log_dest", "stderr|syslog" },
	[G_STATUS_INTERVAL] = { "status_interval", "SECONDS (0 to 86400, 0 = off)" },
	[G_KEEPALIVE] = { "keepalive", "SECONDS (5 to 65535)" },
};

static const struct {
	const char *name;
	int priority;
} log_levels[] = {
	{ "err", LOG_ERR },
	{ "warning", LOG_WARNING },
	{ "notice", LOG_NOTICE },
	{ "info", LOG_INFO },
	{ "debug", LOG_DEBUG },
};

struct parser {
	xmq_conf_t conf;             /* what is being built */
	size_t cap_domains;
	const char *filename;
	size_t line;
	char *err;
	size_t errlen;
	size_t global_line[G_COUNT]; /* where each key was set; 0: not set */
	size_t default_line[N_LIMITS];
	size_t domain_line[N_LIMITS];
	size_t channel_line;
};

/* ---- messages ------------------------------------------------------------ */

/* n bytes of s, at most 60, control bytes as '?': safe to put in a log line. */
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
__attribute__((format(printf, 3, 4)))
#endif
static int fail_at(struct parser *p, size_t line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err == NULL || p->errlen == 0)
		return XMQ_ECONFIG;
	n = snprintf(p->err, p->errlen, "%s:%zu: ", p->filename, line);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return XMQ_ECONFIG;
}

#define fail(p, ...) fail_at((p), (p)->line, __VA_ARGS__)

/* ---- values -------------------------------------------------------------- */

/*
 * A whole decimal number from min to max into *out; with bytes, a k (1024)
 * or M (1048576) suffix may follow. No sign, no blanks, no base prefix.
 */
static bool parse_number(const char *s, uint32_t min, uint32_t max, bool bytes, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return false;
	if (bytes && (*end == 'k' || *end == 'K')) {
		if (v > UINT32_MAX / 1024)
			return false;
		v *= 1024, end++;
	} else if (bytes && *end == 'M') {
		if (v > UINT32_MAX / (1024 * 1024))
			return false;
		v *= 1024 * 1024, end++;
	}
	if (*end != '\0' || v < min || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* "HOST:PORT" with a port from 1 to 65535; an IPv6 host goes in brackets. */
static bool host_port_valid(const char *s)
{
	const char *colon = strrchr(s, ':');
	uint32_t port;
	size_t host_n;

	if (colon == NULL || !parse_number(colon + 1, 1, 65535, false, &port))
		return false;
	host_n = (size_t)(colon - s);
	if (host_n == 0)
		return false;
	if (s[0] == '[')
		return host_n > 2 && s[host_n - 1] == ']' &&
		       memchr(s + 1, ']', host_n - 2) == NULL;
	return memchr(s, ':', host_n) == NULL && memchr(s, '[', host_n) == NULL &&
	       memchr(s, ']', host_n) == NULL;
}

static int set_string(char **field, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

/* ---- keys ---------------------------------------------------------------- */

static xmq_domain_conf_t *current_domain(struct parser *p)
{
	return p->conf.n_domains ? &p->conf.domains[p->conf.n_domains - 1] : NULL;
}

static int check_queue(struct parser *p, size_t line, const xmq_limits_t *l, const char *who)
{
	if (l->max_queued_bytes >= l->max_frame_size)
		return 0;
	return fail_at(p, line, "max_queued_bytes (%u) is smaller than max_frame_size (%u)%s: "
	               "the queue towards a domain must hold at least one frame; raise "
	               "max_queued_bytes or lower max_frame_size",
	               (unsigned)l->max_queued_bytes, (unsigned)l->max_frame_size, who);
}

/* Checks the defaults once they are final, at the later of the lines that set them. */
static int check_defaults(struct parser *p)
{
	size_t fl = p->default_line[L_FRAME_SIZE], ql = p->default_line[L_QUEUED_BYTES];

	return check_queue(p, fl > ql ? fl : ql, &p->conf.defaults, " in the defaults");
}

/* Checks on the domain block that ends here. */
static int end_domain(struct parser *p)
{
	xmq_domain_conf_t *d = current_domain(p);
	char who[96];

	if (d == NULL)
		return 0;
	if (d->channel == NULL)
		return fail_at(p, d->line, "domain '%s' has no 'channel': add "
		               "'channel /PATH/TO/SOCKET' to its block", d->name);
	snprintf(who, sizeof(who), " for domain '%s'", d->name);
	return check_queue(p, d->line, &d->limits, who);
}

static int key_domain(struct parser *p, const char *value)
{
	xmq_domain_conf_t *d;
	char buf[64];
	size_t i;
	void *grown;
	int rc;

	if (!xmq_domain_name_valid(value))
		return fail(p, "'%s' is not a domain name: use 1 to %d of A-Z a-z 0-9 _ . -",
		            excerpt(buf, sizeof(buf), value, strlen(value)), XMQ_DOMAIN_MAX);
	for (i = 0; i < p->conf.n_domains; i++) {
		if (strcmp(p->conf.domains[i].name, value) == 0)
			return fail(p, "domain '%s' is declared twice (first on line %u): "
			            "merge the two blocks", value, p->conf.domains[i].line);
	}
	rc = end_domain(p);
	if (rc < 0)
		return rc;
	if (p->conf.n_domains == 0) {
		/* The defaults are final: check them once, where they were set. */
		rc = check_defaults(p);
		if (rc < 0)
			return rc;
	}
	if (p->conf.n_domains == p->cap_domains) {
		size_t ncap = p->cap_domains ? p->cap_domains * 2 : 8;

		if (ncap > SIZE_MAX / sizeof(*p->conf.domains))
			return -ENOMEM;
		grown = realloc(p->conf.domains, ncap * sizeof(*p->conf.domains));
		if (grown == NULL)
			return -ENOMEM;
		p->conf.domains = grown;
		p->cap_domains = ncap;
	}
	d = &p->conf.domains[p->conf.n_domains];
	memset(d, 0, sizeof(*d));
	d->name = strdup(value);
	if (d->name == NULL)
		return -ENOMEM;
	d->limits = p->conf.defaults;
	d->line = p->line > UINT32_MAX ? UINT32_MAX : (unsigned)p->line;
	p->conf.n_domains++;
	memset(p->domain_line, 0, sizeof(p->domain_line));
	p->channel_line = 0;
	return 0;
}

static int key_channel(struct parser *p, const char *value)
{
	xmq_domain_conf_t *d = current_domain(p);
	char buf[64];
	size_t i;

	if (d == NULL)
		return fail(p, "'channel' belongs in a domain block: put it below the "
		            "'domain NAME' line of the domain it serves");
	if (p->channel_line)
		return fail(p, "'channel' is given twice in domain '%s' (first on line %zu): keep one",
		            d->name, p->channel_line);
	if (value[0] != '/' || strlen(value) > SOCKET_PATH_MAX)
		return fail(p, "'channel' must be an absolute path of at most %zu bytes "
		            "(a Unix socket address), not '%s'", SOCKET_PATH_MAX,
		            excerpt(buf, sizeof(buf), value, strlen(value)));
	for (i = 0; i + 1 < p->conf.n_domains; i++) {
		if (strcmp(p->conf.domains[i].channel, value) == 0)
			return fail(p, "channel '%s' is already the channel of domain '%s' (line %u): "
			            "each domain needs its own", excerpt(buf, sizeof(buf), value,
			            strlen(value)), p->conf.domains[i].name, p->conf.domains[i].line);
	}
	p->channel_line = p->line;
	return set_string(&d->channel, value);
}

static int key_limit(struct parser *p, size_t k, const char *value)
{
	const struct limit_key *key = &limit_keys[k];
	xmq_domain_conf_t *d = current_domain(p);
	xmq_limits_t *limits = d ? &d->limits : &p->conf.defaults;
	size_t *lines = d ? p->domain_line : p->default_line;
	uint32_t v;
	char buf[64];

	if (lines[k] != 0) {
		if (d)
			return fail(p, "'%s' is given twice in domain '%s' (first on line %zu): keep one",
			            key->name, d->name, lines[k]);
		return fail(p, "'%s' is given twice (first on line %zu): keep one",
		            key->name, lines[k]);
	}
	if (!parse_number(value, key->min, key->max, key->bytes, &v))
		return fail(p, "'%s' must be a whole number from %u to %u%s, not '%s'",
		            key->name, (unsigned)key->min, (unsigned)key->max,
		            key->bytes ? " (a k or M suffix counts 1024 or 1048576 bytes)" : "",
		            excerpt(buf, sizeof(buf), value, strlen(value)));
	memcpy((char *)limits + key->offset, &v, sizeof(v));
	lines[k] = p->line;
	return 0;
}

static int key_global(struct parser *p, enum global_key k, const char *value)
{
	const char *name = global_keys[k].name;
	xmq_conf_t *c = &p->conf;
	char buf[64];
	size_t i;

	if (current_domain(p) != NULL)
		return fail(p, "'%s' is a global option: move it above the first 'domain' line", name);
	if (p->global_line[k] != 0)
		return fail(p, "'%s' is given twice (first on line %zu): keep one",
		            name, p->global_line[k]);
	p->global_line[k] = p->line;
	excerpt(buf, sizeof(buf), value, strlen(value));

	switch (k) {
	case G_MOSQUITTO:
		if (value[0] == '/' ? strlen(value) > SOCKET_PATH_MAX : !host_port_valid(value))
			return fail(p, "'mosquitto' must be an absolute Unix socket path of at most "
			            "%zu bytes (e.g. /run/xenmq/mosquitto.sock) or HOST:PORT "
			            "(e.g. 127.0.0.1:1883), not '%s'", SOCKET_PATH_MAX, buf);
		return set_string(&c->mosquitto, value);
	case G_ACL_FILE:
		if (value[0] != '/' || strlen(value) > PATH_LEN_MAX)
			return fail(p, "'acl_file' must be an absolute path, not '%s'", buf);
		return set_string(&c->acl_file, value);
	case G_CLIENT_ID:
		/* No '/': DomU sessions are "<domain>/<app>", and this must never be one. */
		if (!xmq_app_name_valid(value))
			return fail(p, "'client_id' must be 1 to 64 of A-Z a-z 0-9 _ . - "
			            "(no '/', which DomU sessions use), not '%s'", buf);
		return set_string(&c->client_id, value);
	case G_LOG_LEVEL:
		for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++) {
			if (strcmp(value, log_levels[i].name) == 0) {
				c->log_level = log_levels[i].priority;
				return 0;
			}
		}
		return fail(p, "'log_level' must be err, warning, notice, info or debug, not '%s'", buf);
	case G_LOG_DEST:
		if (strcmp(value, "stderr") != 0 && strcmp(value, "syslog") != 0)
			return fail(p, "'log_dest' must be stderr or syslog, not '%s'", buf);
		return set_string(&c->log_dest, value);
	case G_STATUS_INTERVAL:
		if (!parse_number(value, 0, 86400, false, &c->status_interval))
			return fail(p, "'status_interval' must be a whole number of seconds from "
			            "0 (off) to 86400, not '%s'", buf);
		return 0;
	case G_KEEPALIVE:
		if (!parse_number(value, 5, 65535, false, &c->keepalive))
			return fail(p, "'keepalive' must be a whole number of seconds from 5 to 65535, "
			            "not '%s'", buf);
		return 0;
	case G_COUNT:
		break;
	}
	return -EINVAL;
}

/* ---- lines --------------------------------------------------------------- */

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int parse_line(struct parser *p, const char *s, size_t n)
{
	const char *end = s + n, *key, *value, *extra;
	size_t key_n, value_n, i;
	char key_s[32], value_s[PATH_LEN_MAX + 1], buf[64];
	const char *usage = NULL;
	int kind = -1;  /* -1 unknown, -2 domain, -3 channel, 0.. limit, 100.. global */

	if (memchr(s, '\0', n) != NULL)
		return fail(p, "NUL byte: a configuration file is text");
	while (s < end && blank(*s))
		s++;
	while (end > s && blank(end[-1]))
		end--;
	if (s == end || s[0] == '#')
		return 0;

	key = s;
	for (key_n = 0; key + key_n < end && !blank(key[key_n]); key_n++)
		;
	for (value = key + key_n; value < end && blank(*value); value++)
		;
	for (value_n = 0; value + value_n < end && !blank(value[value_n]); value_n++)
		;
	for (extra = value + value_n; extra < end && blank(*extra); extra++)
		;

	if (key_n < sizeof(key_s)) {
		memcpy(key_s, key, key_n);
		key_s[key_n] = '\0';
		if (strcmp(key_s, "domain") == 0) {
			kind = -2, usage = "NAME";
		} else if (strcmp(key_s, "channel") == 0) {
			kind = -3, usage = "/ABSOLUTE/PATH";
		}
		for (i = 0; kind == -1 && i < N_LIMITS; i++) {
			if (strcmp(key_s, limit_keys[i].name) == 0)
				kind = (int)i, usage = "NUMBER";
		}
		for (i = 0; kind == -1 && i < G_COUNT; i++) {
			if (strcmp(key_s, global_keys[i].name) == 0)
				kind = 100 + (int)i, usage = global_keys[i].usage;
		}
	}
	if (kind == -1)
		return fail(p, "unknown key '%s': check its spelling against the keys listed in "
		            "docs/configuration.md", excerpt(buf, sizeof(buf), key, key_n));
	if (value_n == 0)
		return fail(p, "'%s' needs a value: write '%s %s'", key_s, key_s, usage);
	if (extra < end) {
		if (extra[0] == '#')
			return fail(p, "a comment must be on a line of its own: move '%s' to the "
			            "line above", excerpt(buf, sizeof(buf), extra, (size_t)(end - extra)));
		return fail(p, "'%s' takes one value, but '%s' follows it", key_s,
		            excerpt(buf, sizeof(buf), extra, (size_t)(end - extra)));
	}
	if (value_n >= sizeof(value_s))
		return fail(p, "the value of '%s' is %zu bytes long: at most %d are allowed",
		            key_s, value_n, PATH_LEN_MAX);
	memcpy(value_s, value, value_n);
	value_s[value_n] = '\0';

	if (kind == -2)
		return key_domain(p, value_s);
	if (kind == -3)
		return key_channel(p, value_s);
	if (kind >= 100)
		return key_global(p, (enum global_key)(kind - 100), value_s);
	return key_limit(p, (size_t)kind, value_s);
}

int xmq_conf_parse(const char *text, size_t len, const char *filename, xmq_conf_t *out,
                   char *err, size_t errlen)
{
	struct parser p;
	const char *line = text, *end = text + len, *nl;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out == NULL || (text == NULL && len > 0))
		return -EINVAL;
	memset(&p, 0, sizeof(p));
	p.filename = filename ? filename : "xenmqd.conf";
	p.err = err;
	p.errlen = errlen;
	p.conf.log_level = LOG_INFO;
	p.conf.status_interval = 10;
	p.conf.keepalive = 30;
	p.conf.defaults = default_limits;
	p.conf.mosquitto = strdup(DEFAULT_MOSQUITTO);
	p.conf.client_id = strdup(DEFAULT_CLIENT_ID);
	p.conf.log_dest = strdup(DEFAULT_LOG_DEST);
	if (!p.conf.mosquitto || !p.conf.client_id || !p.conf.log_dest) {
		rc = -ENOMEM;
		goto out;
	}

	while (line < end) {
		nl = memchr(line, '\n', (size_t)(end - line));
		p.line++;
		rc = parse_line(&p, line, (size_t)((nl ? nl : end) - line));
		if (rc < 0)
			goto out;
		line = nl ? nl + 1 : end;
	}
	rc = p.conf.n_domains ? end_domain(&p) : check_defaults(&p);
	if (rc < 0)
		goto out;
	*out = p.conf;
	memset(&p.conf, 0, sizeof(p.conf));
	rc = 0;
out:
	if (rc == -ENOMEM)
		fail(&p, "out of memory");
	xmq_conf_dispose(&p.conf);
	return rc;
}

void xmq_conf_dispose(xmq_conf_t *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; c->domains != NULL && i < c->n_domains; i++) {
		free(c->domains[i].name);
		free(c->domains[i].channel);
	}
	free(c->domains);
	free(c->mosquitto);
	free(c->acl_file);
	free(c->client_id);
	free(c->log_dest);
	memset(c, 0, sizeof(*c));
}

const xmq_domain_conf_t *xmq_conf_domain(const xmq_conf_t *c, const char *name)
{
	size_t i;

	if (c == NULL || name == NULL)
		return NULL;
	for (i = 0; i < c->n_domains; i++) {
		if (strcmp(c->domains[i].name, name) == 0)
			return &c->domains[i];
	}
	return NULL;
}

/* ---- files --------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Reads the regular file at path into *out (new, malloc'd, not terminated)
 * and its length into *out_len. Reads one byte past XMQ_CONF_FILE_MAX, so
 * that a file that is too large, or grows while it is read, is refused
 * rather than cut.
 */
static int read_file(const char *path, char **out, size_t *out_len, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t used = 0;
	ssize_t n;
	int fd = -1, rc;

	if (path == NULL) {
		say(err, errlen, "no file name given");
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		say(err, errlen, "%s: cannot open: %s", path, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		say(err, errlen, "%s: not a regular file", path);
		rc = XMQ_ECONFIG;
		goto out;
	}
	buf = malloc(XMQ_CONF_FILE_MAX + 1);
	if (buf == NULL) {
		say(err, errlen, "%s: out of memory", path);
		rc = -ENOMEM;
		goto out;
	}
	while (used <= XMQ_CONF_FILE_MAX) {
		n = read(fd, buf + used, XMQ_CONF_FILE_MAX + 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			say(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (used > XMQ_CONF_FILE_MAX) {
		say(err, errlen, "%s: larger than %d bytes: this is not a configuration file",
		    path, XMQ_CONF_FILE_MAX);
		rc = XMQ_ECONFIG;
		goto out;
	}
	*out = buf;
	*out_len = used;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

int xmq_conf_load(const char *path, xmq_conf_t *out, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = read_file(path, &text, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = xmq_conf_parse(text, len, path, out, err, errlen);
	free(text);
	return rc;
}

int xmq_acl_load(const char *path, xmq_acl_t **out, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = read_file(path, &text, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = xmq_acl_parse(text, len, path, out, err, errlen);
	free(text);
	return rc;
}
