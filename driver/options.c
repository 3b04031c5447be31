#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfsv3driver.h"
#include "options.h"

#define SOURCE_MAX 1024

/* Characters allowed in a source path: nothing a shell, a mount option
 * string or a log reader could misread (no comma, space, quote, control). */
static const char path_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~/+@=%:-";
#define PATH_CHARS_TEXT "letters, digits and ._~/+@=%:-"
/* An NFS export may also hold what upstream passes (spaces, commas,
 * #&!$()): the helper hands it to the kernel as the "source" parameter of
 * its own, never inside the option string, and no shell ever sees it. */
static const char export_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~/+@=%:- ,#&!$()";
#define EXPORT_CHARS_TEXT "letters, digits, spaces and ._~/+@=%:-,#&!$()"

/* Kernel options that only the operator (or the driver itself) may set:
 * security flavour, privilege bits, addresses, and what other options own. */
static const char *const nfs_forbidden[] = {
	"sec", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "addr", "clientaddr",
	"mountaddr", "mounthost", "context", "fscontext", "defcontext", "rootcontext",
	"fsc", "vers", "nfsvers", "ro", "rw", "remount", "bind", "source", NULL,
};

static const char *json_kind(const json_t *value)
{
	switch (json_typeof(value)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "a value";
}

/*
 * Options arrive as JSON strings, numbers or booleans (the CF broker
 * stringifies everything). Scalars become their text; objects, arrays and
 * null are refused by the caller.
 */
static char *scalar_text(const json_t *value)
{
	char buf[64];

	switch (json_typeof(value)) {
	case JSON_STRING: return strdup(json_string_value(value));
	case JSON_INTEGER: snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(value)); break;
	case JSON_REAL: snprintf(buf, sizeof(buf), "%g", json_real_value(value)); break;
	case JSON_TRUE: return strdup("true");
	case JSON_FALSE: return strdup("false");
	default: return NULL;
	}
	return strdup(buf);
}

static struct error *wrong_type(const char *name, const json_t *value, const char *expected)
{
	return error_new(ERROR_INVALID, "option %s: expected %s, got %s", name, expected, json_kind(value));
}

static struct error *parse_string_value(const char *name, const json_t *value, const char *expected,
					char **out)
{
	if (!json_is_string(value) && !json_is_number(value) && !json_is_boolean(value))
		return wrong_type(name, value, expected);
	*out = scalar_text(value);
	return *out ? NULL : error_new(ERROR_INTERNAL, "out of memory");
}

/* Go's strconv.ParseBool, as upstream: the broker passes "True" through. */
static const char *const bool_true[] = { "1", "t", "T", "TRUE", "true", "True" };
static const char *const bool_false[] = { "0", "f", "F", "FALSE", "false", "False" };

static struct error *parse_bool(const char *name, const json_t *value, bool *out)
{
	char *text = NULL;
	struct error *err = parse_string_value(name, value, "true or false", &text);

	if (err)
		return err;
	for (size_t i = 0; i < sizeof(bool_true) / sizeof(bool_true[0]); i++) {
		if (strcmp(text, bool_true[i]) == 0 || strcmp(text, bool_false[i]) == 0) {
			*out = strcmp(text, bool_true[i]) == 0;
			free(text);
			return NULL;
		}
	}
	err = error_new(ERROR_INVALID, "option %s \"%s\": expected true or false (or 1, t, T, TRUE, True, 0, f, F, FALSE, False)",
			name, text);
	free(text);
	return err;
}

static struct error *parse_id(const char *name, const json_t *value, uint32_t *out)
{
	char *text = NULL, *end;
	struct error *err = parse_string_value(name, value, "a decimal number from 1 to 4294967294", &text);
	unsigned long long n;

	if (err)
		return err;
	errno = 0;
	n = strtoull(text, &end, 10);
	if (!isdigit((unsigned char)text[0]) || *end || errno || n < 1 || n > 4294967294ULL)
		err = error_new(ERROR_INVALID, "option %s \"%s\": expected a decimal number from 1 to 4294967294%s",
				name, text, strcmp(text, "0") == 0 ? " (0 is root and is never mapped)" : "");
	else
		*out = (uint32_t)n;
	free(text);
	return err;
}

/* A DNS name or IPv4 literal: labels of letters, digits and '-', dots between. */
static bool host_name_valid(const char *host, size_t len)
{
	if (len == 0 || len > 253 || !isalnum((unsigned char)host[0]) || host[len - 1] == '.' || host[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = host[i];
		if (!isalnum((unsigned char)c) && c != '-' && c != '.')
			return false;
		if (c == '.' && (host[i + 1] == '.' || host[i + 1] == '-'))
			return false;
	}
	return true;
}

static struct error *check_path(const char *source, const char *path, const char *chars, const char *chars_text)
{
	const char *bad;

	if (path[0] != '/')
		return error_new(ERROR_INVALID, "source \"%s\": the path must be absolute", source);
	bad = path + strspn(path, chars);
	if (*bad) {
		if (isprint((unsigned char)*bad))
			return error_new(ERROR_INVALID, "source \"%s\": the path may only contain %s (found '%c')",
					 source, chars_text, *bad);
		return error_new(ERROR_INVALID, "source \"%s\": the path may only contain %s (found byte 0x%02x)",
				 source, chars_text, (unsigned char)*bad);
	}
	for (const char *p = path; (p = strstr(p, "/..")); p += 3)
		if (p[3] == '/' || p[3] == '\0')
			return error_new(ERROR_INVALID, "source \"%s\": the path may not contain '..'", source);
	return NULL;
}

/*
 * Host part of nfs://host[:port]/path or host:/path: a DNS name, IPv4 or
 * [IPv6]. Sets spec->host (brackets dropped) and returns where the rest
 * (":port/..." or "/..." or ":/...") starts, or NULL with *err set.
 */
static const char *parse_host(const char *source, const char *p, struct volume_spec *spec, struct error **err)
{
	const char *end;

	if (*p == '[') {
		char addr[INET6_ADDRSTRLEN + 1];
		struct in6_addr in6;
		end = strchr(p, ']');
		if (!end || (size_t)(end - p - 1) >= sizeof(addr)) {
			*err = error_new(ERROR_INVALID, "source \"%s\": unterminated [IPv6] address", source);
			return NULL;
		}
		memcpy(addr, p + 1, (size_t)(end - p - 1));
		addr[end - p - 1] = '\0';
		if (inet_pton(AF_INET6, addr, &in6) != 1) {
			*err = error_new(ERROR_INVALID, "source \"%s\": \"%s\" is not an IPv6 address", source, addr);
			return NULL;
		}
		if (!(spec->host = strdup(addr))) {
			*err = error_new(ERROR_INTERNAL, "source \"%s\": out of memory", source);
			return NULL;
		}
		return end + 1;
	}
	end = p + strcspn(p, ":/");
	if (end == p) {
		*err = error_new(ERROR_INVALID, "source \"%s\": no host: expected nfs://host[:port]/path", source);
		return NULL;
	}
	if (!host_name_valid(p, (size_t)(end - p))) {
		*err = error_new(ERROR_INVALID,
				 "source \"%s\": host \"%.*s\" is not a DNS name, IPv4 address or [IPv6] address",
				 source, (int)(end - p), p);
		return NULL;
	}
	if (!(spec->host = strndup(p, (size_t)(end - p)))) {
		*err = error_new(ERROR_INTERNAL, "source \"%s\": out of memory", source);
		return NULL;
	}
	return end;
}

static struct error *parse_source(const char *name, const json_t *value, const struct config *cfg,
				  struct volume_spec *spec)
{
	struct error *err = NULL;
	const char *rest;
	char *source;

	if (!json_is_string(value))
		return wrong_type(name, value, "a string like nfs://host/export");
	source = (char *)json_string_value(value);
	if (strlen(source) > SOURCE_MAX)
		return error_new(ERROR_INVALID, "source: longer than %d characters", SOURCE_MAX);
	if (strncmp(source, "file://", 7) == 0) {
		if (!cfg->allow_local_sources)
			return error_new(ERROR_INVALID,
					 "source \"%s\": file:// sources are only allowed when the driver runs with --allow-local-sources",
					 source);
		if ((err = check_path(source, source + 7, path_chars, PATH_CHARS_TEXT)))
			return err;
		spec->kind = SOURCE_LOCAL;
		spec->path = strdup(source + 7);
		return spec->path ? NULL : error_new(ERROR_INTERNAL, "source \"%s\": out of memory", source);
	}
	if (strncmp(source, "nfs://", 6) == 0) {
		if (!(rest = parse_host(source, source + 6, spec, &err)))
			return err;
		if (*rest == ':') {
			char *end;
			unsigned long port;
			errno = 0;
			port = strtoul(rest + 1, &end, 10);
			if (!isdigit((unsigned char)rest[1]) || errno || port < 1 || port > 65535 || (*end != '/' && *end))
				return error_new(ERROR_INVALID, "source \"%s\": the port must be a number from 1 to 65535",
						 source);
			spec->port = (unsigned)port;
			rest = end;
		}
		if (*rest == '\0')
			rest = "/"; /* nfs://host is the server's root, as upstream */
		if (*rest != '/')
			return error_new(ERROR_INVALID, "source \"%s\": expected nfs://host[:port]/path", source);
	} else if (strstr(source, "://")) {
		return error_new(ERROR_INVALID, "source \"%s\": expected nfs://host[:port]/path or host:/path%s", source,
				 cfg->allow_local_sources ? " or file:///dir" : "");
	} else {
		const char *colon = strstr(source, ":/");
		if (!colon || strchr(source, '/') < colon)
			return error_new(ERROR_INVALID,
					 "source \"%s\": expected nfs://host[:port]/path or host:/path%s", source,
					 cfg->allow_local_sources ? " or file:///dir" : "");
		if (!(rest = parse_host(source, source, spec, &err)))
			return err;
		if (rest[0] != ':' || rest[1] != '/')
			return error_new(ERROR_INVALID, "source \"%s\": expected host:/path", source);
		rest++;
	}
	if ((err = check_path(source, rest, export_chars, EXPORT_CHARS_TEXT)))
		return err;
	spec->kind = SOURCE_NFS;
	spec->path = strdup(rest);
	return spec->path ? NULL : error_new(ERROR_INTERNAL, "source \"%s\": out of memory", source);
}

static struct error *parse_version(const char *name, const json_t *value, struct volume_spec *spec)
{
	static const char *const accepted[][2] = {
		{ "3", "3" }, { "3.0", "3" }, { "4", "4" }, { "4.0", "4.0" }, { "4.1", "4.1" }, { "4.2", "4.2" },
	};
	char *text = NULL;
	struct error *err = parse_string_value(name, value, "3, 4, 4.0, 4.1 or 4.2", &text);

	if (err)
		return err;
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		if (strcmp(text, accepted[i][0]) == 0) {
			free(text);
			spec->version = strdup(accepted[i][1]);
			return spec->version ? NULL : error_new(ERROR_INTERNAL, "option version: out of memory");
		}
	}
	err = error_new(ERROR_INVALID, "option version \"%s\": expected 3, 4, 4.0, 4.1 or 4.2", text);
	free(text);
	return err;
}

/* What a table row sees: the option's JSON value, the config, the spec being built. */
struct option_ctx {
	const struct config *cfg;
	struct volume_spec *spec;
	bool uid_set, gid_set, password_set, cache_set;
};

static struct error *row_source(const char *n, const json_t *v, struct option_ctx *c)
{
	return parse_source(n, v, c->cfg, c->spec);
}

static struct error *row_uid(const char *n, const json_t *v, struct option_ctx *c)
{
	c->uid_set = true;
	return parse_id(n, v, &c->spec->uid);
}

static struct error *row_gid(const char *n, const json_t *v, struct option_ctx *c)
{
	c->gid_set = true;
	return parse_id(n, v, &c->spec->gid);
}

static struct error *row_username(const char *n, const json_t *v, struct option_ctx *c)
{
	return parse_string_value(n, v, "a user name", &c->spec->username);
}

static struct error *row_password(const char *n, const json_t *v, struct option_ctx *c)
{
	/* Checked here for type; directory.c takes it into a secret at Create.
	 * Its absence is checked there too: the state's copy never has one. */
	if (!json_is_string(v))
		return wrong_type(n, v, "a string");
	c->password_set = true;
	return NULL;
}

static struct error *row_readonly(const char *n, const json_t *v, struct option_ctx *c)
{
	return parse_bool(n, v, &c->spec->readonly);
}

static struct error *row_cache(const char *n, const json_t *v, struct option_ctx *c)
{
	c->cache_set = true;
	return parse_bool(n, v, &c->spec->cache);
}

static struct error *row_version(const char *n, const json_t *v, struct option_ctx *c)
{
	return parse_version(n, v, c->spec);
}

static struct error *row_nfs_options(const char *n, const json_t *v, struct option_ctx *c)
{
	struct error *err;
	char *text;

	if (!json_is_string(v))
		return wrong_type(n, v, "a string of comma-separated NFS options");
	text = (char *)json_string_value(v);
	if (!*text)
		return NULL;
	if ((err = options_check_nfs(text, c->cfg->allowed_nfs_options, "option nfs_options")))
		return err;
	c->spec->nfs_options = strdup(text);
	return c->spec->nfs_options ? NULL : error_new(ERROR_INTERNAL, "option nfs_options: out of memory");
}

static struct error *row_ignored(const char *n, const json_t *v, struct option_ctx *c)
{
	return NULL;
}

/* Adding an option is one row. */
static const struct option_row {
	const char *name;
	struct error *(*parse)(const char *name, const json_t *value, struct option_ctx *ctx);
} option_table[] = {
	{ NFSV3_OPT_SOURCE, row_source },
	{ NFSV3_OPT_UID, row_uid },
	{ NFSV3_OPT_GID, row_gid },
	{ NFSV3_OPT_USERNAME, row_username },
	{ NFSV3_OPT_PASSWORD, row_password },
	{ NFSV3_OPT_READONLY, row_readonly },
	{ NFSV3_OPT_CACHE, row_cache },
	{ NFSV3_OPT_VERSION, row_version },
	{ NFSV3_OPT_NFS_OPTIONS, row_nfs_options },
	{ NFSV3_OPT_MOUNT, row_ignored },
	{ NFSV3_OPT_EXPERIMENTAL, row_ignored },
	{ NFSV3_OPT_AUTO_CACHE, row_ignored },
};
#define OPTION_ROWS (sizeof(option_table) / sizeof(option_table[0]))

static const struct option_row *option_find(const char *name)
{
	for (size_t i = 0; i < OPTION_ROWS; i++)
		if (strcmp(option_table[i].name, name) == 0)
			return &option_table[i];
	return NULL;
}

/* "Not allowed options: a, b" for every name outside the table, or NULL. */
static struct error *check_unknown(const json_t *opts)
{
	const char *key;
	json_t *value;
	char *list = NULL;
	size_t len = 0;
	FILE *out;
	struct error *err = NULL;
	bool first = true;

	out = open_memstream(&list, &len);
	if (!out)
		return error_new(ERROR_INTERNAL, "out of memory");
	json_object_foreach((json_t *)opts, key, value) {
		if (option_find(key))
			continue;
		if (!first)
			fputs(", ", out);
		first = false;
		fprintf(out, "%.64s%s", key, strlen(key) > 64 ? "..." : "");
	}
	if (!first) {
		fputs(" (allowed: ", out);
		for (size_t i = 0, n = 0; i < OPTION_ROWS; i++)
			if (option_table[i].parse != row_ignored)
				fprintf(out, "%s%s", n++ ? ", " : "", option_table[i].name);
		fputc(')', out);
	}
	if (fclose(out) != 0) {
		free(list);
		return error_new(ERROR_INTERNAL, "out of memory");
	}
	if (!first)
		err = error_new(ERROR_INVALID, "%s: %s", NFSV3_ERR_NOT_ALLOWED, list);
	free(list);
	return err;
}

struct error *options_parse(const json_t *opts, const struct config *cfg, struct volume_spec *spec)
{
	struct option_ctx ctx = { .cfg = cfg, .spec = spec };
	struct error *err;
	const json_t *source = NULL;

	memset(spec, 0, sizeof(*spec));
	if (opts && !json_is_null(opts)) {
		if (!json_is_object(opts))
			return error_new(ERROR_INVALID, "Opts: expected an object of options, got %s", json_kind(opts));
		if ((err = check_unknown(opts)))
			return err;
		source = json_object_get(opts, NFSV3_OPT_SOURCE);
	}
	if (!source)
		return error_new(ERROR_INVALID,
				 "option source is required: nfs://host[:port]/path or host:/path%s",
				 cfg->allow_local_sources ? " or file:///dir" : "");
	for (size_t i = 0; i < OPTION_ROWS; i++) {
		const json_t *value = json_object_get(opts, option_table[i].name);
		if (value && (err = option_table[i].parse(option_table[i].name, value, &ctx))) {
			volume_spec_clear(spec);
			return err;
		}
	}
	err = NULL;
	if (ctx.uid_set != ctx.gid_set)
		err = error_new(ERROR_INVALID, "options uid and gid: give both or neither (got only %s)",
				ctx.uid_set ? "uid" : "gid");
	else if (spec->username && ctx.uid_set)
		err = error_new(ERROR_INVALID, "%s: give one identity", NFSV3_ERR_LDAP_TOGETHER);
	else if ((spec->username || ctx.password_set) && !cfg->ldap)
		err = error_new(ERROR_INVALID, "%s; give uid and gid instead", NFSV3_ERR_LDAP_OFF);
	else if (ctx.password_set && !spec->username)
		err = error_new(ERROR_INVALID, "%s", NFSV3_ERR_LDAP_NO_USERNAME);
	else if (ctx.password_set && json_string_length(json_object_get(opts, NFSV3_OPT_PASSWORD)) == 0)
		err = error_new(ERROR_INVALID, "%s: an empty password would be an unauthenticated bind",
				NFSV3_ERR_LDAP_EMPTY_PASSWORD);
	else if (spec->username && (!*spec->username || strlen(spec->username) > 256))
		err = error_new(ERROR_INVALID, "option username: expected 1 to 256 characters");
	if (err) {
		volume_spec_clear(spec);
		return err;
	}
	spec->mapped = ctx.uid_set;
	if (!ctx.cache_set)
		spec->cache = spec->readonly;
	if (spec->kind == SOURCE_LOCAL && spec->nfs_options) {
		volume_spec_clear(spec);
		return error_new(ERROR_INVALID, "option nfs_options: only NFS sources take kernel NFS options");
	}
	return NULL;
}

void volume_spec_clear(struct volume_spec *spec)
{
	free(spec->host);
	free(spec->path);
	free(spec->username);
	free(spec->version);
	free(spec->nfs_options);
	memset(spec, 0, sizeof(*spec));
}

/* A copy of an optional string: true when it is NULL or was copied. */
static bool copy_optional(char **to, const char *from)
{
	*to = from ? strdup(from) : NULL;
	return !from || *to;
}

bool volume_spec_copy(struct volume_spec *to, const struct volume_spec *from)
{
	*to = *from;
	to->host = to->path = to->username = to->version = to->nfs_options = NULL;
	if (copy_optional(&to->host, from->host) && copy_optional(&to->path, from->path) &&
	    copy_optional(&to->username, from->username) && copy_optional(&to->version, from->version) &&
	    copy_optional(&to->nfs_options, from->nfs_options))
		return true;
	volume_spec_clear(to);
	return false;
}

json_t *options_sanitize(const json_t *opts)
{
	json_t *copy;

	if (!json_is_object(opts))
		return json_object();
	copy = json_deep_copy(opts);
	json_object_del(copy, NFSV3_OPT_PASSWORD);
	return copy;
}

static bool name_in_list(const char *name, size_t len, const char *list)
{
	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ",");
		if (n == len && strncmp(p, name, len) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

struct error *options_check_nfs(const char *list, const char *allowlist, const char *what)
{
	static const char value_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ","), klen = strcspn(p, ",=");
		if (n == 0)
			return error_new(ERROR_INVALID, "%s \"%s\": empty option between commas", what, list);
		for (size_t i = 0; i < n; i++)
			if (!strchr(value_chars, p[i]) && !(i == klen && p[i] == '='))
				return error_new(ERROR_INVALID,
						 "%s \"%s\": options may only contain letters, digits, '.', '_', '-' and one '=' each",
						 what, list);
		for (size_t i = 0; nfs_forbidden[i]; i++)
			if (strlen(nfs_forbidden[i]) == klen && strncmp(p, nfs_forbidden[i], klen) == 0)
				return error_new(ERROR_INVALID, "%s: \"%.*s\" can only be set by the operator", what,
						 (int)klen, p);
		if (!name_in_list(p, klen, allowlist))
			return error_new(ERROR_INVALID, "%s: \"%.*s\" is not in the operator's allowed NFS options (%s)",
					 what, (int)klen, p, allowlist && *allowlist ? allowlist : "none allowed");
		p += n;
		if (*p == ',' && *++p == '\0')
			return error_new(ERROR_INVALID, "%s \"%s\": trailing comma", what, list);
	}
	return NULL;
}

/* An ordered key[=value] list where a later setting replaces an earlier one. */
struct kv_list {
	char *items[64];
	size_t n;
	bool out_of_memory; /* an item could not be copied: the list is not the options */
};

/* Options that cancel each other: setting one drops the other. */
static const char *opposite(const char *key, size_t len)
{
	static const char *const pairs[][2] = { { "hard", "soft" }, { "soft", "hard" }, { "softerr", "hard" } };
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		if (strlen(pairs[i][0]) == len && strncmp(key, pairs[i][0], len) == 0)
			return pairs[i][1];
	return NULL;
}

static void kv_remove(struct kv_list *kv, const char *key, size_t len)
{
	for (size_t i = 0; i < kv->n; i++) {
		size_t klen = strcspn(kv->items[i], "=");
		if (klen == len && strncmp(kv->items[i], key, len) == 0) {
			free(kv->items[i]);
			memmove(&kv->items[i], &kv->items[i + 1], (kv->n - i - 1) * sizeof(char *));
			kv->n--;
			i--;
		}
	}
}

static void kv_set(struct kv_list *kv, const char *item, size_t len)
{
	size_t klen = strcspn(item, "=,");
	const char *other;
	char neg[80];

	if (klen > len)
		klen = len;
	other = opposite(item, klen);
	/* "noX" cancels "X" and "X" cancels "noX". */
	if (klen > 2 && strncmp(item, "no", 2) == 0)
		kv_remove(kv, item + 2, klen - 2);
	else {
		snprintf(neg, sizeof(neg), "no%.*s", (int)klen, item);
		kv_remove(kv, neg, strlen(neg));
	}
	if (other)
		kv_remove(kv, other, strlen(other));
	/* A later value replaces an earlier one where it stood. */
	for (size_t i = 0; i < kv->n; i++) {
		if (strcspn(kv->items[i], "=") == klen && strncmp(kv->items[i], item, klen) == 0) {
			char *copy = strndup(item, len);

			if (!copy) {
				kv->out_of_memory = true;
				return;
			}
			free(kv->items[i]);
			kv->items[i] = copy;
			return;
		}
	}
	if (kv->n < sizeof(kv->items) / sizeof(kv->items[0])) {
		if ((kv->items[kv->n] = strndup(item, len)))
			kv->n++;
		else
			kv->out_of_memory = true;
	}
}

static void kv_apply(struct kv_list *kv, const char *list)
{
	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ",");
		if (n)
			kv_set(kv, p, n);
		p += n;
		if (*p == ',')
			p++;
	}
}

char *options_kernel_string(const struct volume_spec *spec, const struct config *cfg, bool ipv6)
{
	struct kv_list kv = { .n = 0 };
	char item[64], *out = NULL;
	size_t len = 0;
	FILE *f;

	kv_apply(&kv, NFSV3_NFS_DEFAULT_OPTIONS);
	kv_apply(&kv, cfg->nfs_options);
	/* Attribute caching on: the default actimeo=0 goes, unless set explicitly below. */
	if (spec->cache)
		kv_remove(&kv, "actimeo", 7);
	kv_apply(&kv, spec->nfs_options);
	/* The binding's version wins over the operator's; with none anywhere the helper negotiates. */
	if (spec->version) {
		kv_remove(&kv, "nfsvers", 7);
		snprintf(item, sizeof(item), "vers=%s", spec->version);
		kv_set(&kv, item, strlen(item));
	}
	if (spec->port) {
		snprintf(item, sizeof(item), "port=%u", spec->port);
		kv_set(&kv, item, strlen(item));
	}
	/* The kernel refuses proto=tcp with an IPv6 server address. */
	for (size_t i = 0; ipv6 && i < kv.n; i++) {
		char *item6;
		if ((strcmp(kv.items[i], "proto=tcp") == 0 || strcmp(kv.items[i], "proto=udp") == 0 ||
		     strcmp(kv.items[i], "mountproto=tcp") == 0 || strcmp(kv.items[i], "mountproto=udp") == 0) &&
		    asprintf(&item6, "%s6", kv.items[i]) >= 0) {
			free(kv.items[i]);
			kv.items[i] = item6;
		}
	}
	f = kv.out_of_memory ? NULL : open_memstream(&out, &len);
	for (size_t i = 0; i < kv.n; i++) {
		if (f)
			fprintf(f, "%s%s", i ? "," : "", kv.items[i]);
		free(kv.items[i]);
	}
	if (f)
		fclose(f);
	return out;
}

struct error *options_check_name(const char *name)
{
	size_t len = strlen(name), ok = strspn(name, NFSV3_NAME_CHARS);

	if (len == 0)
		return error_new(ERROR_INVALID, "Name: must not be empty");
	if (len > NFSV3_NAME_MAX)
		return error_new(ERROR_INVALID, "Name: %zu characters, at most %d allowed", len, NFSV3_NAME_MAX);
	if (ok < len) {
		if (isprint((unsigned char)name[ok]))
			return error_new(ERROR_INVALID, "Name \"%s\": may only contain letters, digits and " NFSV3_NAME_PUNCT " (found '%c')",
					 name, name[ok]);
		return error_new(ERROR_INVALID, "Name: may only contain letters, digits and " NFSV3_NAME_PUNCT " (found byte 0x%02x)",
				 (unsigned char)name[ok]);
	}
	if (!strchr(NFSV3_NAME_ALNUM, name[0]))
		return error_new(ERROR_INVALID, "Name \"%s\": must start with a letter or a digit", name);
	if (strncmp(name, NFSV3_STATE_FILE, strlen(NFSV3_STATE_FILE)) == 0)
		return error_new(ERROR_INVALID, "Name \"%s\": reserved for the driver's state file", name);
	return NULL;
}

bool options_name_valid(const char *name)
{
	struct error *err = options_check_name(name);
	bool valid = !err;

	error_free(err);
	return valid;
}
