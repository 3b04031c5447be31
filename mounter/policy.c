/*
 * The operator's policy file: reading it, checking who owns it, parsing it
 * line by line, and deciding a binding against it (see include/policy.h for
 * the format). libc only: the nfs mount helper links it -static-pie, and the
 * daemon links the same object.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"

#define NAME_MAX_LEN 253
#define REFUSED "refused by the operator's policy"

struct net {
	int family;              /* AF_INET or AF_INET6 (IPv4-mapped IPv6 counts as AF_INET) */
	unsigned char bytes[16]; /* 4 used for AF_INET */
	unsigned prefix;         /* leading bits that must match */
};

/* A server as a rule names it: a DNS name (maybe "*.domain") or a network. */
struct server {
	bool is_name;
	bool wildcard;  /* "*.domain": name holds ".domain" */
	char name[NAME_MAX_LEN + 2];
	struct net net;
};

struct range {
	uint32_t lo, hi;
};

struct id_set {
	struct range *ranges; /* NULL with n 0: every id */
	size_t n;
};

#define KIND_RAW (1u << POLICY_ID_RAW)
#define KIND_LDAP (1u << POLICY_ID_LDAP)
#define KIND_NONE (1u << POLICY_ID_NONE)

struct export_rule {
	struct server server;
	char *prefix; /* normalized: "/" or "/a/b", no trailing slash */
	struct id_set uids, gids;
	unsigned kinds;
};

struct policy {
	char *path;
	struct export_rule *exports;
	size_t n_exports;
	struct server *denied_servers;
	size_t n_denied_servers;
	struct id_set denied_uids, denied_gids; /* the defaults until a deny-uid/deny-gid line */
	bool uid_denies_given, gid_denies_given;
	unsigned rules;
};

/* ---- messages ---------------------------------------------------------- */

struct parse {
	const char *path;
	unsigned line;
	char *why;
	size_t why_len;
};

static bool parse_error(struct parse *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool parse_error(struct parse *ps, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(ps->why, ps->why_len, "%s: line %u: ", ps->path, ps->line);

	if (n < 0 || (size_t)n >= ps->why_len)
		return false;
	va_start(ap, fmt);
	vsnprintf(ps->why + n, ps->why_len - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

/* ---- addresses and names ----------------------------------------------- */

/* An address literal into net (prefix left alone); IPv4-mapped IPv6 becomes IPv4. */
static bool parse_address(const char *text, struct net *net)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	unsigned char buf[16];

	if (inet_pton(AF_INET, text, buf) == 1) {
		net->family = AF_INET;
		memcpy(net->bytes, buf, 4);
		return true;
	}
	if (inet_pton(AF_INET6, text, buf) == 1) {
		if (memcmp(buf, mapped, sizeof(mapped)) == 0) {
			net->family = AF_INET;
			memcpy(net->bytes, buf + 12, 4);
		} else {
			net->family = AF_INET6;
			memcpy(net->bytes, buf, 16);
		}
		return true;
	}
	return false;
}

static bool net_contains(const struct net *net, const struct net *addr)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;

	if (net->family != addr->family)
		return false;
	if (memcmp(net->bytes, addr->bytes, full) != 0)
		return false;
	return rest == 0 || ((net->bytes[full] ^ addr->bytes[full]) & (0xff00 >> rest) & 0xff) == 0;
}

/* Letters, digits and '-' in labels of 1..63, dots between; no trailing dot here. */
static bool dns_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (c == '.') {
			if (label == 0 || name[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			   (c == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && name[len - 1] != '-';
}

static bool is_address_literal(const char *host)
{
	struct net scratch;

	return parse_address(host, &scratch);
}

/* NAME, *.DOMAIN, ADDRESS or CIDR. */
static bool parse_server(struct parse *ps, const char *text, struct server *server)
{
	char buf[NAME_MAX_LEN + 2];
	const char *slash = strchr(text, '/');
	size_t len = strlen(text);

	memset(server, 0, sizeof(*server));
	if (len > NAME_MAX_LEN)
		return parse_error(ps, "server \"%.64s...\": longer than %d characters", text, NAME_MAX_LEN);
	if (slash) {
		char *end;
		unsigned long prefix;

		memcpy(buf, text, (size_t)(slash - text));
		buf[slash - text] = '\0';
		if (!parse_address(buf, &server->net))
			return parse_error(ps, "server \"%s\": expected ADDRESS/PREFIX with an IPv4 or IPv6 address", text);
		errno = 0;
		prefix = strtoul(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end || errno)
			return parse_error(ps, "server \"%s\": the prefix length must be a number", text);
		/* An IPv4-mapped network written in IPv6 counts its bits from the IPv4 part. */
		if (strchr(buf, ':') && server->net.family == AF_INET) {
			if (prefix < 96 || prefix > 128)
				return parse_error(ps, "server \"%s\": an IPv4-mapped network needs a prefix from 96 to 128", text);
			prefix -= 96;
		}
		if (prefix > (server->net.family == AF_INET ? 32u : 128u))
			return parse_error(ps, "server \"%s\": the prefix length must be at most %u", text,
					   server->net.family == AF_INET ? 32u : 128u);
		server->net.prefix = (unsigned)prefix;
		for (unsigned bit = server->net.prefix; bit < (server->net.family == AF_INET ? 32u : 128u); bit++)
			if (server->net.bytes[bit / 8] & (0x80 >> (bit % 8)))
				return parse_error(ps, "server \"%s\": host bits are set beyond the /%lu prefix", text, prefix);
		return true;
	}
	if (parse_address(text, &server->net)) {
		server->net.prefix = server->net.family == AF_INET ? 32 : 128;
		return true;
	}
	snprintf(buf, sizeof(buf), "%s", text);
	if (len > 1 && buf[len - 1] == '.')
		buf[--len] = '\0';
	server->is_name = true;
	if (strncmp(buf, "*.", 2) == 0) {
		if (!dns_name_valid(buf + 2))
			return parse_error(ps, "server \"%s\": expected *.DOMAIN with a DNS domain after \"*.\"", text);
		server->wildcard = true;
		snprintf(server->name, sizeof(server->name), "%s", buf + 1);
		return true;
	}
	if (!dns_name_valid(buf))
		return parse_error(ps, "server \"%s\": expected a DNS name, *.DOMAIN, an IPv4 or IPv6 address, or a CIDR",
				   text);
	snprintf(server->name, sizeof(server->name), "%s", buf);
	return true;
}

/* Whether the name rule covers host (a DNS name; a trailing dot is ignored). */
static bool name_matches(const struct server *server, const char *host)
{
	char buf[NAME_MAX_LEN + 2];
	size_t len, suffix;

	snprintf(buf, sizeof(buf), "%s", host);
	len = strlen(buf);
	if (len > 1 && buf[len - 1] == '.')
		buf[--len] = '\0';
	if (!server->wildcard)
		return strcasecmp(buf, server->name) == 0;
	suffix = strlen(server->name); /* ".domain" */
	return len > suffix && strcasecmp(buf + len - suffix, server->name) == 0;
}

/* ---- paths ------------------------------------------------------------- */

/*
 * path with empty and "." components dropped, no trailing slash ("/" for
 * the root). NULL for a relative path or one with a ".." component.
 */
static char *normalize_path(const char *path)
{
	size_t len = strlen(path), out = 0;
	char *norm;

	if (path[0] != '/' || !(norm = malloc(len + 2)))
		return NULL;
	for (const char *p = path; *p;) {
		size_t n;

		p += strspn(p, "/");
		n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.')) {
			p += n;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			free(norm);
			return NULL;
		}
		norm[out++] = '/';
		memcpy(norm + out, p, n);
		out += n;
		p += n;
	}
	if (out == 0)
		norm[out++] = '/';
	norm[out] = '\0';
	return norm;
}

/* Whether prefix (normalized) covers path (normalized), whole components only. */
static bool prefix_covers(const char *prefix, const char *path)
{
	size_t n = strlen(prefix);

	if (strcmp(prefix, "/") == 0)
		return true;
	return strncmp(prefix, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* ---- ids --------------------------------------------------------------- */

static bool parse_id(const char *text, size_t len, uint32_t *out)
{
	unsigned long long n = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		n = n * 10 + (unsigned)(text[i] - '0');
	}
	if (n > UINT32_MAX)
		return false;
	*out = (uint32_t)n;
	return true;
}

/* N or N-M, comma-separated, appended to set. */
static bool parse_ranges(struct parse *ps, const char *what, const char *text, struct id_set *set)
{
	for (const char *p = text;;) {
		size_t n = strcspn(p, ","), dash = strcspn(p, "-,");
		struct range r, *grown;

		if (n == 0)
			return parse_error(ps, "%s \"%s\": empty range (expected N or N-M, comma-separated)", what, text);
		if (!parse_id(p, dash, &r.lo))
			return parse_error(ps, "%s \"%s\": \"%.*s\" is not an id from 0 to 4294967295", what, text,
					   (int)(dash > 32 ? 32 : dash), p);
		r.hi = r.lo;
		if (dash < n && !parse_id(p + dash + 1, n - dash - 1, &r.hi))
			return parse_error(ps, "%s \"%s\": \"%.*s\" is not an id from 0 to 4294967295", what, text,
					   (int)(n - dash - 1 > 32 ? 32 : n - dash - 1), p + dash + 1);
		if (r.hi < r.lo)
			return parse_error(ps, "%s \"%s\": range %u-%u ends before it starts", what, text, r.lo, r.hi);
		if (!(grown = realloc(set->ranges, (set->n + 1) * sizeof(*grown))))
			return parse_error(ps, "out of memory");
		set->ranges = grown;
		set->ranges[set->n++] = r;
		p += n;
		if (*p == '\0')
			return true;
		if (*++p == '\0')
			return parse_error(ps, "%s \"%s\": trailing comma", what, text);
	}
}

static bool id_in(const struct id_set *set, uint32_t id)
{
	if (set->n == 0)
		return true;
	for (size_t i = 0; i < set->n; i++)
		if (id >= set->ranges[i].lo && id <= set->ranges[i].hi)
			return true;
	return false;
}

static bool id_denied(const struct id_set *set, uint32_t id)
{
	if (id == 0)
		return true;
	for (size_t i = 0; i < set->n; i++)
		if (id >= set->ranges[i].lo && id <= set->ranges[i].hi)
			return true;
	return false;
}

/* ---- rules ------------------------------------------------------------- */

static bool parse_kinds(struct parse *ps, const char *text, unsigned *kinds)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = { { "raw", KIND_RAW }, { "ldap", KIND_LDAP }, { "none", KIND_NONE } };

	*kinds = 0;
	for (const char *p = text;;) {
		size_t n = strcspn(p, ",");
		unsigned bit = 0;

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == n && strncmp(p, names[i].name, n) == 0)
				bit = names[i].bit;
		if (!bit)
			return parse_error(ps, "identity \"%s\": \"%.*s\" is not raw, ldap or none", text,
					   (int)(n > 32 ? 32 : n), p);
		*kinds |= bit;
		p += n;
		if (*p == '\0')
			return true;
		if (*++p == '\0')
			return parse_error(ps, "identity \"%s\": trailing comma", text);
	}
}

static bool parse_export(struct parse *ps, struct policy *policy, char **fields, size_t n)
{
	struct export_rule rule = { .kinds = KIND_RAW | KIND_LDAP | KIND_NONE }, *grown;
	bool seen_uid = false, seen_gid = false, seen_identity = false;

	if (n < 3)
		return parse_error(ps, "export: expected \"export SERVER PATH [uid=RANGES] [gid=RANGES] [identity=KINDS]\"");
	if (!parse_server(ps, fields[1], &rule.server))
		return false;
	if (fields[2][0] != '/' || !(rule.prefix = normalize_path(fields[2])))
		return parse_error(ps, "export path \"%s\": expected an absolute path without \"..\"", fields[2]);
	for (size_t i = 3; i < n; i++) {
		const char *f = fields[i];
		bool ok;

		if (strncmp(f, "uid=", 4) == 0 && !seen_uid) {
			seen_uid = true;
			ok = parse_ranges(ps, "uid", f + 4, &rule.uids);
		} else if (strncmp(f, "gid=", 4) == 0 && !seen_gid) {
			seen_gid = true;
			ok = parse_ranges(ps, "gid", f + 4, &rule.gids);
		} else if (strncmp(f, "identity=", 9) == 0 && !seen_identity) {
			seen_identity = true;
			ok = parse_kinds(ps, f + 9, &rule.kinds);
		} else if (strncmp(f, "uid=", 4) == 0 || strncmp(f, "gid=", 4) == 0 || strncmp(f, "identity=", 9) == 0) {
			ok = parse_error(ps, "\"%.*s\" given twice", (int)strcspn(f, "="), f);
		} else {
			ok = parse_error(ps, "\"%.64s\": expected uid=RANGES, gid=RANGES or identity=raw,ldap,none", f);
		}
		if (!ok) {
			free(rule.prefix);
			free(rule.uids.ranges);
			free(rule.gids.ranges);
			return false;
		}
	}
	if (!(grown = realloc(policy->exports, (policy->n_exports + 1) * sizeof(*grown)))) {
		free(rule.prefix);
		free(rule.uids.ranges);
		free(rule.gids.ranges);
		return parse_error(ps, "out of memory");
	}
	policy->exports = grown;
	policy->exports[policy->n_exports++] = rule;
	return true;
}

static bool parse_deny_server(struct parse *ps, struct policy *policy, char **fields, size_t n)
{
	struct server server, *grown;

	if (n != 2)
		return parse_error(ps, "deny-server: expected \"deny-server NAME|ADDRESS|CIDR\" (one per line)");
	if (!parse_server(ps, fields[1], &server))
		return false;
	if (!(grown = realloc(policy->denied_servers, (policy->n_denied_servers + 1) * sizeof(*grown))))
		return parse_error(ps, "out of memory");
	policy->denied_servers = grown;
	policy->denied_servers[policy->n_denied_servers++] = server;
	return true;
}

static bool parse_deny_ids(struct parse *ps, const char *what, struct id_set *set, bool *given, char **fields,
			   size_t n)
{
	if (n != 2)
		return parse_error(ps, "deny-%s: expected \"deny-%s RANGES\" (N or N-M, comma-separated)", what, what);
	if (!*given) {
		/* The first line replaces the default 0-999. */
		free(set->ranges);
		set->ranges = NULL;
		set->n = 0;
		*given = true;
	}
	return parse_ranges(ps, what, fields[1], set);
}

#define MAX_FIELDS 16

static bool parse_line(struct parse *ps, struct policy *policy, char *line)
{
	char *fields[MAX_FIELDS];
	size_t n = 0;

	line[strcspn(line, "#")] = '\0';
	for (char *p = line; *p;) {
		p += strspn(p, " \t\r");
		if (!*p)
			break;
		if (n == MAX_FIELDS)
			return parse_error(ps, "more than %d fields", MAX_FIELDS);
		fields[n++] = p;
		p += strcspn(p, " \t\r");
		if (*p)
			*p++ = '\0';
	}
	if (n == 0)
		return true;
	for (const unsigned char *c = (const unsigned char *)fields[0]; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			return parse_error(ps, "control or non-ASCII byte 0x%02x", *c);
	policy->rules++;
	if (strcmp(fields[0], "export") == 0)
		return parse_export(ps, policy, fields, n);
	if (strcmp(fields[0], "deny-server") == 0)
		return parse_deny_server(ps, policy, fields, n);
	if (strcmp(fields[0], "deny-uid") == 0)
		return parse_deny_ids(ps, "uid", &policy->denied_uids, &policy->uid_denies_given, fields, n);
	if (strcmp(fields[0], "deny-gid") == 0)
		return parse_deny_ids(ps, "gid", &policy->denied_gids, &policy->gid_denies_given, fields, n);
	return parse_error(ps, "unknown rule \"%.64s\": expected export, deny-server, deny-uid or deny-gid", fields[0]);
}

static bool set_default_denies(struct policy *policy)
{
	static const struct range system_ids = { 0, 999 };

	policy->denied_uids.ranges = malloc(sizeof(struct range));
	policy->denied_gids.ranges = malloc(sizeof(struct range));
	if (!policy->denied_uids.ranges || !policy->denied_gids.ranges)
		return false;
	policy->denied_uids.ranges[0] = policy->denied_gids.ranges[0] = system_ids;
	policy->denied_uids.n = policy->denied_gids.n = 1;
	return true;
}

struct policy *policy_parse(const char *text, size_t len, const char *path, char *why, size_t why_len)
{
	struct parse ps = { .path = path, .why = why, .why_len = why_len };
	struct policy *policy = calloc(1, sizeof(*policy));
	char line[POLICY_LINE_MAX + 1];

	if (!policy || !(policy->path = strdup(path)) || !set_default_denies(policy)) {
		snprintf(why, why_len, "%s: out of memory", path);
		policy_free(policy);
		return NULL;
	}
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

		ps.line++;
		if (n > POLICY_LINE_MAX) {
			parse_error(&ps, "longer than %d bytes", POLICY_LINE_MAX);
			policy_free(policy);
			return NULL;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		if (strlen(line) != n) {
			parse_error(&ps, "a NUL byte: expected text");
			policy_free(policy);
			return NULL;
		}
		if (!parse_line(&ps, policy, line)) {
			policy_free(policy);
			return NULL;
		}
		pos += n + 1;
	}
	return policy;
}

/* ---- the file ---------------------------------------------------------- */

const char *policy_helper_path(void)
{
	const char *env = getuid() == 0 ? getenv(NFSV3_POLICY_ENV) : NULL;

	return env != NULL && env[0] == '/' ? env : NFSV3_POLICY_FILE;
}

/* Owned by root and writable by nobody else. */
static bool root_only(const struct stat *st)
{
	return st->st_uid == 0 && (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

struct policy *policy_load(const char *path, bool *missing, char *why, size_t why_len)
{
	const char *base = strrchr(path, '/');
	char dir[4096], *text = NULL;
	struct policy *policy = NULL;
	struct stat st;
	int dir_fd = -1, fd = -1;
	ssize_t got;
	size_t len = 0;

	*missing = false;
	if (path[0] != '/' || !base || base[1] == '\0' || (size_t)(base - path) >= sizeof(dir)) {
		snprintf(why, why_len, "%s: expected an absolute path of a file", path);
		return NULL;
	}
	if (base == path) {
		snprintf(dir, sizeof(dir), "/");
	} else {
		memcpy(dir, path, (size_t)(base - path));
		dir[base - path] = '\0';
	}
	/* The directory first, then the file beneath it: what was checked is what is read. */
	if ((dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fstat(dir_fd, &st) != 0) {
		*missing = errno == ENOENT;
		snprintf(why, why_len, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (!root_only(&st)) {
		snprintf(why, why_len, "%s: the directory must be owned by root and not writable by group or others "
			 "(it is uid %u, mode %04o)", dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if ((fd = openat(dir_fd, base + 1, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
		*missing = errno == ENOENT;
		snprintf(why, why_len, "%s: %s", path, errno == ELOOP ? "is a symlink: expected a regular file"
								     : strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "%s: expected a regular file", path);
		goto out;
	}
	if (!root_only(&st)) {
		snprintf(why, why_len, "%s: must be owned by root and not writable by group or others "
			 "(it is uid %u, mode %04o)", path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (!(text = malloc(POLICY_FILE_MAX + 1))) {
		snprintf(why, why_len, "%s: out of memory", path);
		goto out;
	}
	while ((got = read(fd, text + len, POLICY_FILE_MAX + 1 - len)) > 0 && len + (size_t)got <= POLICY_FILE_MAX)
		len += (size_t)got;
	if (got < 0) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (got > 0) {
		snprintf(why, why_len, "%s: larger than %d bytes", path, POLICY_FILE_MAX);
		goto out;
	}
	policy = policy_parse(text, len, path, why, why_len);
out:
	free(text);
	if (fd >= 0)
		close(fd);
	if (dir_fd >= 0)
		close(dir_fd);
	return policy;
}

void policy_free(struct policy *policy)
{
	if (!policy)
		return;
	for (size_t i = 0; i < policy->n_exports; i++) {
		free(policy->exports[i].prefix);
		free(policy->exports[i].uids.ranges);
		free(policy->exports[i].gids.ranges);
	}
	free(policy->exports);
	free(policy->denied_servers);
	free(policy->denied_uids.ranges);
	free(policy->denied_gids.ranges);
	free(policy->path);
	free(policy);
}

const char *policy_path(const struct policy *policy)
{
	return policy->path;
}

unsigned policy_rule_count(const struct policy *policy)
{
	return policy->rules;
}

/* ---- deciding ---------------------------------------------------------- */

/*
 * Whether server covers the request. A name covers the host the binding
 * wrote; a network covers the address mounted. When the address is not
 * known yet (a name before it is resolved), a network might cover it, and
 * the check is repeated once it is resolved.
 */
static bool server_covers(const struct server *server, const char *host, bool host_is_name, const struct net *addr)
{
	if (server->is_name)
		return host_is_name && name_matches(server, host);
	return !addr || net_contains(&server->net, addr);
}

static const char *identity_text(enum policy_identity identity)
{
	switch (identity) {
	case POLICY_ID_RAW: return "bindings with uid and gid";
	case POLICY_ID_LDAP: return "LDAP bindings (username and password)";
	case POLICY_ID_NONE: return "bindings without uid and gid";
	default: return "bindings";
	}
}

/* What a rule is asked, in the order a refusal is reported. */
enum level { LEVEL_SERVER, LEVEL_EXPORT, LEVEL_IDENTITY, LEVEL_UID, LEVEL_GID, LEVELS };

struct query {
	const struct policy_request *req;
	bool host_is_name;
	const struct net *addr; /* NULL when not resolved yet */
	const char *export;     /* normalized */
};

/* Whether rule allows every question up to and including level. */
static bool rule_allows(const struct export_rule *rule, const struct query *q, enum level level)
{
	const struct policy_request *req = q->req;

	if (!server_covers(&rule->server, req->host, q->host_is_name, q->addr))
		return false;
	if (level >= LEVEL_EXPORT && !prefix_covers(rule->prefix, q->export))
		return false;
	if (level >= LEVEL_IDENTITY && req->identity != POLICY_ID_ANY && !(rule->kinds & (1u << req->identity)))
		return false;
	if (level >= LEVEL_UID && req->ids_known && !id_in(&rule->uids, req->uid))
		return false;
	if (level >= LEVEL_GID && req->ids_known && !id_in(&rule->gids, req->gid))
		return false;
	return true;
}

enum policy_verdict policy_check(const struct policy *policy, const struct policy_request *req, char *why,
				 size_t why_len)
{
	bool host_is_name = !is_address_literal(req->host);
	const char *addr_text = req->addr ? req->addr : host_is_name ? NULL : req->host;
	char server_text[NAME_MAX_LEN + 64];
	struct net addr;
	struct query q = { .req = req, .host_is_name = host_is_name };
	char *export;

	if (addr_text && !parse_address(addr_text, &addr)) {
		snprintf(why, why_len, "address \"%.64s\" is not an IPv4 or IPv6 address", addr_text);
		return POLICY_REFUSED_INVALID;
	}
	q.addr = addr_text ? &addr : NULL;
	if (addr_text && host_is_name)
		snprintf(server_text, sizeof(server_text), "%s (address %s)", req->host, addr_text);
	else
		snprintf(server_text, sizeof(server_text), "%s", req->host);

	for (size_t i = 0; i < policy->n_denied_servers; i++) {
		const struct server *s = &policy->denied_servers[i];
		bool hit = s->is_name ? host_is_name && name_matches(s, req->host) : q.addr && net_contains(&s->net, q.addr);

		if (hit) {
			snprintf(why, why_len, "NFS server %s is %s (%s)", server_text, REFUSED, policy->path);
			return POLICY_REFUSED_SERVER;
		}
	}
	if (!(export = normalize_path(req->export))) {
		snprintf(why, why_len, "export %.256s on NFS server %s is %s (%s)", req->export, server_text, REFUSED,
			 policy->path);
		return POLICY_REFUSED_EXPORT;
	}
	q.export = export;
	for (enum level level = LEVEL_SERVER; level < LEVELS; level++) {
		bool any = false;

		for (size_t i = 0; i < policy->n_exports && !any; i++)
			any = rule_allows(&policy->exports[i], &q, level);
		if (!any) {
			free(export);
			switch (level) {
			case LEVEL_SERVER:
				snprintf(why, why_len, "NFS server %s is %s (%s)", server_text, REFUSED, policy->path);
				return POLICY_REFUSED_SERVER;
			case LEVEL_EXPORT:
				snprintf(why, why_len, "export %.256s on NFS server %s is %s (%s)", req->export, server_text,
					 REFUSED, policy->path);
				return POLICY_REFUSED_EXPORT;
			case LEVEL_IDENTITY:
				snprintf(why, why_len, "%s on %s:%.256s are %s (%s)", identity_text(req->identity),
					 server_text, req->export, REFUSED, policy->path);
				return POLICY_REFUSED_IDENTITY;
			case LEVEL_UID:
				snprintf(why, why_len, "uid %u on %s:%.256s is %s (%s)", req->uid, server_text, req->export,
					 REFUSED, policy->path);
				return POLICY_REFUSED_UID;
			default:
				snprintf(why, why_len, "gid %u on %s:%.256s is %s (%s)", req->gid, server_text, req->export,
					 REFUSED, policy->path);
				return POLICY_REFUSED_GID;
			}
		}
		/* The deny lists come before any range: they hold whatever an export rule says. */
		if (level == LEVEL_IDENTITY && req->ids_known && id_denied(&policy->denied_uids, req->uid)) {
			free(export);
			snprintf(why, why_len, "uid %u is %s (%s)", req->uid, REFUSED, policy->path);
			return POLICY_REFUSED_UID;
		}
		if (level == LEVEL_IDENTITY && req->ids_known && id_denied(&policy->denied_gids, req->gid)) {
			free(export);
			snprintf(why, why_len, "gid %u is %s (%s)", req->gid, REFUSED, policy->path);
			return POLICY_REFUSED_GID;
		}
	}
	free(export);
	return POLICY_ALLOWED;
}
