/*
 * The nfs verb: mount a kernel NFS export on MOUNT_ROOT/.kernel/KERNEL_KEY.
 *
 *   nfsv3driver-mount nfs MOUNT_ROOT KERNEL_KEY HOST:/EXPORT ADDR OPTIONS
 *
 * With the new mount API (fsopen("nfs"), fsconfig, fsmount, move_mount), so
 * that the kernel's own error text comes back through the fs_context fd, and
 * mount(2) only where fsopen does not exist. Every argument is checked again
 * here against a fixed allowlist: the helper must stay safe even when the
 * daemon that runs it is not.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "privilege.h"
#include "verbs.h"

#define KEY_MIN 8
#define KEY_MAX 64
_Static_assert(NFSV3_KERNEL_KEY_LEN >= KEY_MIN && NFSV3_KERNEL_KEY_LEN <= KEY_MAX, "the daemon's kernel keys pass check_key");
#define HOST_MAX 253       /* a DNS name */
#define EXPORT_MAX 1024    /* the kernel's NFS_MAXPATHLEN */
#define OPTIONS_MAX 4096
#define VALUE_MAX 32
#define KERNEL_LOG_MAX 1024 /* bytes of kernel messages kept for the error line */

/* ---- the option allowlist ------------------------------------------ */

enum opt_kind {
	OPT_FLAG,   /* bare flag, passed with FSCONFIG_SET_FLAG */
	OPT_NUMBER, /* key=decimal, passed with FSCONFIG_SET_STRING */
	OPT_ENUM,   /* key=one of a fixed list */
	OPT_ATTR,   /* a mount attribute set on fsmount, not a filesystem option */
};

struct opt_rule {
	const char *name;
	enum opt_kind kind;
	const char *const *values; /* OPT_ENUM: NULL-terminated */
	unsigned attr;             /* OPT_ATTR: the MOUNT_ATTR_ bit */
};

static const char *const vers_values[] = {"3", "4", "4.0", "4.1", "4.2", NULL};
static const char *const proto_values[] = {"tcp", "tcp6", "udp", "udp6", NULL};
static const char *const sec_values[] = {"sys", NULL};
static const char *const local_lock_values[] = {"none", "all", "flock", "posix", NULL};
static const char *const lookupcache_values[] = {"all", "none", "pos", "positive", NULL};
static const char *const write_values[] = {"lazy", "eager", "wait", NULL};

/*
 * What a kernel NFS mount made by this helper may be given (the option names
 * of fs/nfs/fs_context.c, and the generic ro/rw). Everything else is refused,
 * in particular: sec= other than sys (the whole design rests on AUTH_SYS),
 * suid, dev and exec (nosuid and nodev are always set), addr, clientaddr,
 * mountaddr and mounthost (the server address is the ADDR argument alone),
 * source (the HOST:/EXPORT argument), the SELinux contexts, fsc, sloppy
 * (which would make the kernel ignore what it does not know), migration,
 * rdma, and mount.nfs's own bg/fg/retry.
 */
static const struct opt_rule opt_rules[] = {
	{"hard", OPT_FLAG, NULL, 0},
	{"soft", OPT_FLAG, NULL, 0},
	{"softerr", OPT_FLAG, NULL, 0},
	{"softreval", OPT_FLAG, NULL, 0},
	{"nosoftreval", OPT_FLAG, NULL, 0},
	{"intr", OPT_FLAG, NULL, 0},
	{"nointr", OPT_FLAG, NULL, 0},
	{"ac", OPT_FLAG, NULL, 0},
	{"noac", OPT_FLAG, NULL, 0},
	{"cto", OPT_FLAG, NULL, 0},
	{"nocto", OPT_FLAG, NULL, 0},
	{"acl", OPT_FLAG, NULL, 0},
	{"noacl", OPT_FLAG, NULL, 0},
	{"lock", OPT_FLAG, NULL, 0},
	{"nolock", OPT_FLAG, NULL, 0},
	{"rdirplus", OPT_FLAG, NULL, 0},
	{"nordirplus", OPT_FLAG, NULL, 0},
	{"sharecache", OPT_FLAG, NULL, 0},
	{"nosharecache", OPT_FLAG, NULL, 0},
	{"resvport", OPT_FLAG, NULL, 0},
	{"noresvport", OPT_FLAG, NULL, 0},
	{"trunkdiscovery", OPT_FLAG, NULL, 0},
	{"notrunkdiscovery", OPT_FLAG, NULL, 0},
	{"tcp", OPT_FLAG, NULL, 0},
	{"ro", OPT_FLAG, NULL, 0},
	{"rw", OPT_FLAG, NULL, 0},
	{"rsize", OPT_NUMBER, NULL, 0},
	{"wsize", OPT_NUMBER, NULL, 0},
	{"bsize", OPT_NUMBER, NULL, 0},
	{"timeo", OPT_NUMBER, NULL, 0},
	{"retrans", OPT_NUMBER, NULL, 0},
	{"acregmin", OPT_NUMBER, NULL, 0},
	{"acregmax", OPT_NUMBER, NULL, 0},
	{"acdirmin", OPT_NUMBER, NULL, 0},
	{"acdirmax", OPT_NUMBER, NULL, 0},
	{"actimeo", OPT_NUMBER, NULL, 0},
	{"port", OPT_NUMBER, NULL, 0},
	{"mountport", OPT_NUMBER, NULL, 0},
	{"mountvers", OPT_NUMBER, NULL, 0},
	{"namlen", OPT_NUMBER, NULL, 0},
	{"nconnect", OPT_NUMBER, NULL, 0},
	{"max_connect", OPT_NUMBER, NULL, 0},
	{"minorversion", OPT_NUMBER, NULL, 0},
	{"vers", OPT_ENUM, vers_values, 0},
	{"nfsvers", OPT_ENUM, vers_values, 0},
	{"proto", OPT_ENUM, proto_values, 0},
	{"mountproto", OPT_ENUM, proto_values, 0},
	{"sec", OPT_ENUM, sec_values, 0},
	{"local_lock", OPT_ENUM, local_lock_values, 0},
	{"lookupcache", OPT_ENUM, lookupcache_values, 0},
	{"write", OPT_ENUM, write_values, 0},
	/* Restrictions only; nosuid and nodev are set whether given or not. */
	{"nosuid", OPT_ATTR, NULL, MOUNT_ATTR_NOSUID},
	{"nodev", OPT_ATTR, NULL, MOUNT_ATTR_NODEV},
	{"noexec", OPT_ATTR, NULL, MOUNT_ATTR_NOEXEC},
	{"noatime", OPT_ATTR, NULL, MOUNT_ATTR_NOATIME},
	{"nodiratime", OPT_ATTR, NULL, MOUNT_ATTR_NODIRATIME},
	{"relatime", OPT_ATTR, NULL, MOUNT_ATTR_RELATIME},
};

#define N_RULES (sizeof(opt_rules) / sizeof(opt_rules[0]))
#define MAX_OPTIONS 64

struct nfs_option {
	const struct opt_rule *rule;
	char key[VALUE_MAX + 1];
	char value[VALUE_MAX + 1]; /* "" for flags and attributes */
};

struct nfs_request {
	const char *key, *source, *addr;
	struct nfs_option options[MAX_OPTIONS];
	size_t n_options;
	unsigned attrs; /* MOUNT_ATTR_ bits for fsmount */
};

/* ---- argument checks ------------------------------------------------- */

/*
 * Trusts: nothing in key.
 * Checks: KEY_MIN..KEY_MAX lowercase hex digits (the daemon's hash of the
 * server, export and options): one path component, never "." or "..", no
 * slash, nothing to escape .kernel with.
 */
static void check_key(const char *key)
{
	size_t len = strlen(key);

	if (len < KEY_MIN || len > KEY_MAX || strspn(key, "0123456789abcdef") != len)
		die(NFSV3_EXIT_REFUSED, "kernel key \"%s\": must be %d to %d lowercase hex digits", key,
		    KEY_MIN, KEY_MAX);
}

static bool is_dns_name(const char *host, size_t len)
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-";
	size_t label = 0;

	if (len == 0 || len > HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (host[i] == '\0' || !strchr(chars, host[i]))
			return false;
		if (host[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (host[i] == '-' && label == 0) {
			return false;
		} else if (++label > 63) {
			return false;
		}
	}
	return true;
}

/*
 * Trusts: nothing in source.
 * Checks: HOST:/EXPORT where HOST is a DNS name, an IPv4 literal or a
 * bracketed IPv6 literal, and EXPORT an absolute path of at most 1024 bytes
 * of letters, digits, spaces and ._~/+@=%:-,#&!$() with no "." or ".."
 * component. The export reaches the kernel only as the "source" parameter
 * (fsconfig, or mount(2)'s device name), never inside the option string, so
 * a comma cannot add an option; no shell sees it; the mount table escapes
 * spaces.
 */
static void check_source(const char *source)
{
	static const char path_chars[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~/+@=%:- ,#&!$()";
	const char *path;
	size_t hostlen, pathlen;

	if (source[0] == '[') {
		const char *close = strchr(source, ']');
		char literal[INET6_ADDRSTRLEN];
		struct in6_addr a6;

		if (close == NULL || close[1] != ':' || (size_t)(close - source - 1) >= sizeof(literal))
			die(NFSV3_EXIT_REFUSED, "source \"%s\": expected [IPV6]:/EXPORT", source);
		memcpy(literal, source + 1, (size_t)(close - source - 1));
		literal[close - source - 1] = '\0';
		if (inet_pton(AF_INET6, literal, &a6) != 1)
			die(NFSV3_EXIT_REFUSED, "source \"%s\": %s is not an IPv6 address", source, literal);
		path = close + 2;
	} else {
		const char *colon = strchr(source, ':');

		if (colon == NULL)
			die(NFSV3_EXIT_REFUSED, "source \"%s\": expected HOST:/EXPORT", source);
		hostlen = (size_t)(colon - source);
		if (!is_dns_name(source, hostlen))
			die(NFSV3_EXIT_REFUSED, "source \"%s\": the host must be a DNS name, an IPv4 address or [IPv6]",
			    source);
		path = colon + 1;
	}
	pathlen = strlen(path);
	if (path[0] != '/')
		die(NFSV3_EXIT_REFUSED, "source \"%s\": the export must be an absolute path", source);
	if (pathlen > EXPORT_MAX)
		die(NFSV3_EXIT_REFUSED, "source \"%s\": the export is longer than %d bytes", source, EXPORT_MAX);
	if (strspn(path, path_chars) != pathlen)
		die(NFSV3_EXIT_REFUSED, "source \"%s\": the export may only hold letters, digits, spaces and ._~/+@=%%:-,#&!$()",
		    source);
	for (const char *c = path; *c != '\0';) {
		size_t n;

		c += strspn(c, "/");
		n = strcspn(c, "/");
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			die(NFSV3_EXIT_REFUSED, "source \"%s\": the export has a \".\" or \"..\" component", source);
		c += n;
	}
}

/*
 * Trusts: nothing in addr.
 * Checks: an IPv4 or IPv6 literal as inet_pton reads it (no brackets, no
 * scope, no name): the kernel does no name lookup and this is where it
 * connects.
 */
static void check_addr(const char *addr)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1)
		die(NFSV3_EXIT_REFUSED, "address \"%s\": must be an IPv4 or IPv6 address", addr);
}

static bool all_digits(const char *s)
{
	return s[0] != '\0' && strspn(s, "0123456789") == strlen(s);
}

/*
 * Trusts: nothing in options.
 * Checks: a comma list of at most MAX_OPTIONS items, each a name from
 * opt_rules in the form its rule says (flag bare, number as 1..10 digits,
 * enum as one of its values). Refuses empty items, unknown names, a value on
 * a flag and a flag without its value, naming the offending item.
 */
static void parse_options(const char *options, struct nfs_request *req)
{
	const char *p = options;

	if (strlen(options) > OPTIONS_MAX)
		die(NFSV3_EXIT_REFUSED, "options: longer than %d bytes", OPTIONS_MAX);
	req->attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
	while (*p != '\0') {
		size_t n = strcspn(p, ","), klen = strcspn(p, ",=");
		const struct opt_rule *rule = NULL;
		struct nfs_option *opt;
		const char *value = NULL;
		size_t vlen = 0;

		if (n == 0)
			die(NFSV3_EXIT_REFUSED, "options \"%s\": empty option", options);
		if (klen < n) {
			value = p + klen + 1;
			vlen = n - klen - 1;
		}
		for (size_t i = 0; i < N_RULES; i++) {
			if (strlen(opt_rules[i].name) == klen && strncmp(p, opt_rules[i].name, klen) == 0)
				rule = &opt_rules[i];
		}
		if (rule == NULL)
			die(NFSV3_EXIT_REFUSED, "option \"%.*s\": not allowed for NFS mounts by this helper",
			    (int)(n > 64 ? 64 : n), p);
		if (req->n_options == MAX_OPTIONS)
			die(NFSV3_EXIT_REFUSED, "options: more than %d", MAX_OPTIONS);
		opt = &req->options[req->n_options];
		opt->rule = rule;
		snprintf(opt->key, sizeof(opt->key), "%s", rule->name);
		if (rule->kind == OPT_FLAG || rule->kind == OPT_ATTR) {
			if (value != NULL)
				die(NFSV3_EXIT_REFUSED, "option \"%.*s\": %s takes no value",
				    (int)(n > 64 ? 64 : n), p, rule->name);
			opt->value[0] = '\0';
		} else {
			if (value == NULL || vlen == 0)
				die(NFSV3_EXIT_REFUSED, "option \"%s\": needs a value (%s=...)", rule->name,
				    rule->name);
			if (vlen > VALUE_MAX)
				die(NFSV3_EXIT_REFUSED, "option \"%.*s\": value too long", (int)(n > 64 ? 64 : n), p);
			memcpy(opt->value, value, vlen);
			opt->value[vlen] = '\0';
			if (rule->kind == OPT_NUMBER) {
				if (!all_digits(opt->value) || vlen > 10)
					die(NFSV3_EXIT_REFUSED, "option %s=%s: the value must be a number",
					    rule->name, opt->value);
			} else {
				bool ok = false;

				for (const char *const *v = rule->values; *v != NULL; v++)
					ok = ok || strcmp(*v, opt->value) == 0;
				if (!ok)
					die(NFSV3_EXIT_REFUSED, "option %s=%s: not allowed for NFS mounts by this helper",
					    rule->name, opt->value);
			}
		}
		if (rule->kind == OPT_ATTR)
			req->attrs |= rule->attr;
		else
			req->n_options++;
		p += n;
		if (*p == ',' && *++p == '\0')
			die(NFSV3_EXIT_REFUSED, "options \"%s\": trailing comma", options);
	}
}

/* ---- the operator's policy ------------------------------------------- */

/* Two address literals (checked already) name the same address. */
static bool same_address(const char *a, const char *b)
{
	unsigned char x[sizeof(struct in6_addr)], y[sizeof(struct in6_addr)];
	int family = strchr(a, ':') ? AF_INET6 : AF_INET;

	return (strchr(b, ':') ? AF_INET6 : AF_INET) == family && inet_pton(family, a, x) == 1 &&
	       inet_pton(family, b, y) == 1 && memcmp(x, y, family == AF_INET ? 4 : 16) == 0;
}

/* Whether host (a DNS name) resolves, now, to addr among its answers. */
static bool name_resolves_to(const char *host, const char *addr)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	char text[INET6_ADDRSTRLEN];
	bool found = false;
	int rc = getaddrinfo(host, NULL, &hints, &res);

	if (rc != 0)
		die(NFSV3_EXIT_REFUSED, "NFS server %s: cannot check its address %s: %s", host, addr, gai_strerror(rc));
	for (ai = res; ai != NULL && !found; ai = ai->ai_next) {
		const void *bytes = ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
							      : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;

		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    inet_ntop(ai->ai_family, bytes, text, sizeof(text)) != NULL)
			found = same_address(text, addr);
	}
	freeaddrinfo(res);
	return found;
}

/*
 * Trusts: the policy file, once policy_load has seen it owned by root and
 * writable by nobody else; the resolver. source and addr passed check_source
 * and check_addr.
 * Checks: with a policy in force, that ADDR is the source's own address (its
 * literal, or one its name resolves to now: a daemon cannot pair an allowed
 * name with another address), then that the policy allows the server by
 * name and by ADDR, and the export. ADDR alone is what the kernel connects
 * to, so what was checked is what is mounted, whatever DNS says later.
 * The file is NFSV3_POLICY_FILE, fixed when this helper was built; another
 * (NFSV3_POLICY_ENV) only when the real uid is 0, since a root caller could
 * mount anything without this helper. No file: nothing to check (as before
 * policies). A file that does not load refuses: there is no last good one.
 */
static void check_policy(const struct nfs_request *req)
{
	const char *path = policy_helper_path();
	char host[HOST_MAX + 1], why[POLICY_WHY_MAX];
	struct policy_request preq = {.host = host, .addr = req->addr, .identity = POLICY_ID_ANY};
	struct policy *policy;
	size_t hostlen;
	bool missing;

	if (!(policy = policy_load(path, &missing, why, sizeof(why)))) {
		if (missing)
			return;
		die(NFSV3_EXIT_REFUSED, "policy %s", why);
	}
	if (req->source[0] == '[') {
		hostlen = strcspn(req->source + 1, "]");
		memcpy(host, req->source + 1, hostlen);
		preq.export = req->source + hostlen + 3;
	} else {
		hostlen = strcspn(req->source, ":");
		memcpy(host, req->source, hostlen);
		preq.export = req->source + hostlen + 1;
	}
	host[hostlen] = '\0';
	if (inet_pton(AF_INET, host, why) == 1 || req->source[0] == '[') {
		if (!same_address(host, req->addr))
			die(NFSV3_EXIT_REFUSED, "source \"%s\": address %s is not the source's own", req->source, req->addr);
	} else if (!name_resolves_to(host, req->addr)) {
		die(NFSV3_EXIT_REFUSED, "NFS server %s does not resolve to %s (any more): refusing to mount an address "
		    "that was not checked", host, req->addr);
	}
	if (policy_check(policy, &preq, why, sizeof(why)) != POLICY_ALLOWED)
		die(NFSV3_EXIT_REFUSED, "%s", why);
	policy_free(policy);
}

/* ---- the mountpoint -------------------------------------------------- */

/*
 * Trusts: root_fd (privilege_open_root); key checked by check_key.
 * Checks: MOUNT_ROOT/.kernel is a directory reached with no symlink, made
 * 0700 when it is ours and was more open; KEY in it as
 * privilege_make_mountpoint (created 0700). Returns an fd of the key
 * directory, which the mount is moved onto: what was checked is what is
 * mounted on.
 */
static int open_target(int root_fd, const char *key)
{
	struct stat st;
	int kdir_fd;

	if (mkdirat(root_fd, NFSV3_KERNEL_DIR, 0700) != 0 && errno != EEXIST)
		die_errno(NFSV3_EXIT_MOUNT, "cannot create %s", NFSV3_KERNEL_DIR);
	kdir_fd = privilege_open_beneath(root_fd, NFSV3_KERNEL_DIR, O_RDONLY | O_DIRECTORY);
	if (kdir_fd < 0)
		privilege_die_open(NFSV3_EXIT_MOUNT, NULL, NFSV3_KERNEL_DIR);
	if (fstat(kdir_fd, &st) != 0)
		die_errno(NFSV3_EXIT_MOUNT, "cannot stat %s", NFSV3_KERNEL_DIR);
	if ((st.st_mode & 077) != 0 && st.st_uid == geteuid() && fchmod(kdir_fd, 0700) != 0)
		die_errno(NFSV3_EXIT_MOUNT, "cannot make %s 0700", NFSV3_KERNEL_DIR);
	/* kdir_fd stays open: a key directory made here is removed through it if the mount fails. */
	return privilege_make_mountpoint(kdir_fd, key, 0700);
}

/* ---- errors ------------------------------------------------------------ */

/* Errors that are the server's answer or its absence, not the kernel refusing the request. */
static bool is_server_error(int errnum)
{
	switch (errnum) {
	case EACCES:
	case EPERM:
	case ENOENT:
	case ENOTDIR:
	case ETIMEDOUT:
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case EPROTONOSUPPORT:
	case EPFNOSUPPORT:
	case EOPNOTSUPP:
	case EIO:
	case ESTALE:
	case EREMOTEIO:
	case EAGAIN:
		return true;
	default:
		return false;
	}
}

/* What an errno from an NFS mount means, when the kernel logged nothing. */
static const char *explain(int errnum)
{
	switch (errnum) {
	case EACCES:
	case EPERM:
		return "access denied by server";
	case ENOENT:
	case ENOTDIR:
		return "no such export on the server";
	case ETIMEDOUT:
		return "timed out: the server did not answer";
	case ECONNREFUSED:
		return "connection refused by the server";
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
		return "server unreachable";
	case EPROTONOSUPPORT:
	case EPFNOSUPPORT:
		return "the server does not offer this NFS version or protocol";
	case EOPNOTSUPP:
		/* rpcbind on the server lists no NFS service: nfsd is not running there. */
		return "the server offers no NFS service (is nfsd running?)";
	case EIO:
		/* What the kernel's RPC client returns when its retransmissions run out. */
		return "I/O error: the server did not answer in time, or failed";
	case ENODEV:
		return "the kernel has no NFS client (is the nfs module loaded?)";
	case EINVAL:
		return "the kernel refused the mount options";
	default:
		return strerror(errnum);
	}
}

/*
 * One line for a failed mount. The kernel's own message, when it logged one,
 * says it best ("NFS: Version unavailable", "NFS: Unsupported transport
 * protocol udp"); otherwise the errno is explained. Server refusals and
 * silence (mountd's "access denied", refused connections, timeouts) come back
 * as bare errnos and exit NFSV3_EXIT_SERVER; a version or transport this
 * kernel lacks is logged by the client and exits NFSV3_EXIT_MOUNT.
 */
static noreturn void die_mount(const struct nfs_request *req, int errnum, const char *kernel_text)
{
	int code = is_server_error(errnum) ? NFSV3_EXIT_SERVER : NFSV3_EXIT_MOUNT;

	if (kernel_text != NULL && kernel_text[0] != '\0') {
		if (errnum == EPROTONOSUPPORT || errnum == EPFNOSUPPORT || errnum == EOPNOTSUPP)
			code = NFSV3_EXIT_MOUNT;
		die(code, "mounting %s: %s", req->source, kernel_text);
	}
	die(code, "mounting %s: %s", req->source, explain(errnum));
}

/* ---- versions ---------------------------------------------------------- */

/*
 * What a mount tries, newest first, when OPTIONS pins no version: the
 * kernel itself never negotiates (with no vers it takes v3; vers=4 it takes
 * as 4.0), mount.nfs does it in userspace, and upstream's driver (through
 * mount.nfs) gets the newest the server offers. vers=4 (or nfsvers=4) tries
 * the 4.x rows only; any other vers is that version alone.
 */
static const char *const negotiated[] = {"4.2", "4.1", "4.0", "3"};
#define N_NEGOTIATED (sizeof(negotiated) / sizeof(negotiated[0]))
#define FIRST_V3 3 /* negotiated[FIRST_V3] is "3" */

/*
 * Take the vers/nfsvers option out of req (the last one given wins, as in
 * the kernel) and say which rows of negotiated[] to try: [*first, *last).
 * A pinned version that is not a row ("4.0" is, "3" is) is tried alone
 * through *pinned.
 */
static void plan_versions(struct nfs_request *req, size_t *first, size_t *last, const char **pinned)
{
	static char value[VALUE_MAX + 1];
	bool given = false;
	size_t kept = 0;

	for (size_t i = 0; i < req->n_options; i++) {
		if (strcmp(req->options[i].key, "vers") == 0 || strcmp(req->options[i].key, "nfsvers") == 0) {
			snprintf(value, sizeof(value), "%s", req->options[i].value);
			given = true;
			continue;
		}
		req->options[kept++] = req->options[i];
	}
	req->n_options = kept;
	*pinned = NULL;
	*first = 0;
	*last = N_NEGOTIATED;
	if (!given)
		return;
	if (strcmp(value, "4") == 0) {
		*last = FIRST_V3;
		return;
	}
	*pinned = value;
	*first = *last = 0;
}

/*
 * Whether a mount refused at version may try the next row down, and which:
 * returns the next row's index, or N_NEGOTIATED to stop. A version the
 * server or this kernel does not offer (EPROTONOSUPPORT: the RPC program or
 * minor version mismatched; EINVAL: the kernel refused the version, or an
 * option with it such as udp with v4) goes one row down. What says the
 * server has no NFSv4 for this path (ENOENT: not in its v4 pseudo-root;
 * EACCES/EPERM: v4 refused by policy; ECONNREFUSED: nothing on 2049, a v3
 * server reached through rpcbind) goes straight to v3, whose own answer
 * then stands. Anything else (a timeout above all) ends the negotiation.
 */
static size_t next_version(size_t row, size_t last, int errnum)
{
	bool v4 = row < FIRST_V3;

	switch (errnum) {
	case EPROTONOSUPPORT:
	case EPFNOSUPPORT:
	case EINVAL:
		return row + 1 < last ? row + 1 : N_NEGOTIATED;
	case ENOENT:
	case EACCES:
	case EPERM:
	case ECONNREFUSED:
		return v4 && FIRST_V3 < last ? FIRST_V3 : N_NEGOTIATED;
	default:
		return N_NEGOTIATED;
	}
}

/* ---- mounting ---------------------------------------------------------- */

/* What one failed attempt left: the errno and the kernel's own words. */
struct attempt {
	int errnum;
	char log[KERNEL_LOG_MAX];
};

/* fsconfig one option; dies with the kernel's text on refusal. */
static void config(int fs_fd, const struct nfs_request *req, unsigned cmd, const char *key, const char *value)
{
	char log[KERNEL_LOG_MAX];
	int errnum;

	if (fsconfig(fs_fd, cmd, key, value, 0) == 0)
		return;
	errnum = errno;
	privilege_read_kernel_log(fs_fd, "nfs", log, sizeof(log));
	if (log[0] == '\0')
		snprintf(log, sizeof(log), "%s", strerror(errnum));
	die(NFSV3_EXIT_MOUNT, "mounting %s: option %s%s%s: %s", req->source, key, value ? "=" : "",
	    value ? value : "", log);
}

/*
 * For kernels before 5.2 (no fsopen). The option string is rebuilt from the
 * checked options and the checked address, and the target is reached through
 * the pinned fd, so nothing is resolved twice. 0, or -1 with a->errnum.
 */
static int mount_legacy(const struct nfs_request *req, const char *version, int target_fd, struct attempt *a)
{
	unsigned long flags = MS_NOSUID | MS_NODEV;
	char data[OPTIONS_MAX + 128], target[64];
	size_t len = 0;

	for (size_t i = 0; i < req->n_options; i++) {
		const struct nfs_option *opt = &req->options[i];

		if (strcmp(opt->key, "ro") == 0) {
			flags |= MS_RDONLY;
			continue;
		}
		if (strcmp(opt->key, "rw") == 0) {
			flags &= ~(unsigned long)MS_RDONLY;
			continue;
		}
		len += (size_t)snprintf(data + len, sizeof(data) - len, "%s%s", opt->key,
					opt->value[0] ? "=" : "");
		len += (size_t)snprintf(data + len, sizeof(data) - len, "%s,", opt->value);
	}
	if (version != NULL)
		len += (size_t)snprintf(data + len, sizeof(data) - len, "vers=%s,", version);
	snprintf(data + len, sizeof(data) - len, "addr=%s", req->addr);
	if (req->attrs & MOUNT_ATTR_NOEXEC)
		flags |= MS_NOEXEC;
	if (req->attrs & MOUNT_ATTR_NOATIME)
		flags |= MS_NOATIME;
	if (req->attrs & MOUNT_ATTR_NODIRATIME)
		flags |= MS_NODIRATIME;
	if (req->attrs & MOUNT_ATTR_RELATIME)
		flags |= MS_RELATIME;
	snprintf(target, sizeof(target), "/proc/self/fd/%d", target_fd);
	if (mount(req->source, target, "nfs", flags, data) == 0)
		return 0;
	a->errnum = errno;
	a->log[0] = '\0';
	return -1;
}

/*
 * One attempt with the new mount API at version (NULL: none given, the
 * kernel's v3). Returns the detached mount's fd, or -1 with *a filled when
 * the kernel or the server refused; an option the kernel cannot parse dies
 * (that is no question of version).
 */
static int mount_new(int fs_fd, const struct nfs_request *req, const char *version, struct attempt *a)
{
	int mnt_fd;

	config(fs_fd, req, FSCONFIG_SET_STRING, "source", req->source);
	if (version != NULL && fsconfig(fs_fd, FSCONFIG_SET_STRING, "vers", version, 0) != 0) {
		a->errnum = errno;
		privilege_read_kernel_log(fs_fd, "nfs", a->log, sizeof(a->log));
		return -1;
	}
	for (size_t i = 0; i < req->n_options; i++) {
		const struct nfs_option *opt = &req->options[i];

		if (opt->rule->kind == OPT_FLAG)
			config(fs_fd, req, FSCONFIG_SET_FLAG, opt->key, NULL);
		else
			config(fs_fd, req, FSCONFIG_SET_STRING, opt->key, opt->value);
	}
	config(fs_fd, req, FSCONFIG_SET_STRING, "addr", req->addr);

	/* The network part: the MOUNT call (v3), the NFS client, the root file handle. */
	if (fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) {
		a->errnum = errno;
		privilege_read_kernel_log(fs_fd, "nfs", a->log, sizeof(a->log));
		return -1;
	}
	mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, req->attrs);
	if (mnt_fd < 0) {
		int errnum = errno;
		char log[KERNEL_LOG_MAX];

		privilege_read_kernel_log(fs_fd, "nfs", log, sizeof(log));
		die(NFSV3_EXIT_MOUNT, "mounting %s: fsmount: %s%s%s", req->source, strerror(errnum),
		    log[0] ? ": " : "", log);
	}
	return mnt_fd;
}

/*
 * nfs MOUNT_ROOT KERNEL_KEY HOST:/EXPORT ADDR OPTIONS
 *
 * Trusts: root_fd (privilege_open_root) and the kernel; nothing in argv.
 * Checks: KERNEL_KEY (check_key), HOST:/EXPORT (check_source), ADDR
 * (check_addr), OPTIONS (parse_options), the operator's policy
 * (check_policy), the mountpoint (open_target).
 * Then builds a detached NFS mount with nosuid and nodev (and whatever
 * further restrictions OPTIONS asked for) so that it is never visible
 * without them, and moves it onto the checked mountpoint fd. With no
 * version in OPTIONS it negotiates (plan_versions, next_version): each
 * attempt is a fresh file system context, and only the refusals that mean
 * "not this version" go on to the next. On failure it prints the kernel's
 * own words (of the last attempt, with the versions tried) and exits
 * NFSV3_EXIT_SERVER when the server refused or could not be reached,
 * NFSV3_EXIT_MOUNT when the kernel refused.
 */
int verb_nfs(int root_fd, int argc, char **argv)
{
	struct nfs_request req = {.key = argv[0], .source = argv[1], .addr = argv[2]};
	struct attempt a = {0};
	const char *pinned, *version = NULL;
	char tried[64] = "";
	size_t row, last;
	int target_fd, fs_fd, mnt_fd = -1;
	bool legacy;

	(void)argc;
	check_key(req.key);
	check_source(req.source);
	check_addr(req.addr);
	parse_options(argv[3], &req);
	check_policy(&req);
	plan_versions(&req, &row, &last, &pinned);
	target_fd = open_target(root_fd, req.key);

	fs_fd = fsopen("nfs", FSOPEN_CLOEXEC);
	legacy = fs_fd < 0 && errno == ENOSYS;
	if (fs_fd < 0 && !legacy)
		die_mount(&req, errno, NULL);
	if (fs_fd >= 0)
		close(fs_fd);
	for (;;) {
		version = pinned != NULL ? pinned : negotiated[row];
		if (pinned == NULL)
			snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried), "%s%s", tried[0] ? ", " : "",
				 version);
		if (legacy) {
			if (mount_legacy(&req, version, target_fd, &a) == 0)
				break;
		} else {
			fs_fd = fsopen("nfs", FSOPEN_CLOEXEC);
			if (fs_fd < 0)
				die_mount(&req, errno, NULL);
			mnt_fd = mount_new(fs_fd, &req, version, &a);
			close(fs_fd);
			if (mnt_fd >= 0)
				break;
		}
		if (pinned != NULL || (row = next_version(row, last, a.errnum)) == N_NEGOTIATED) {
			if (tried[0] != '\0' && strchr(tried, ',') != NULL) {
				size_t n = strlen(a.log);

				snprintf(a.log + n, sizeof(a.log) - n, "%s(NFS versions tried: %s)", n ? " " : "", tried);
				if (n == 0) {
					char explained[KERNEL_LOG_MAX];

					snprintf(explained, sizeof(explained), "%s %s", explain(a.errnum), a.log);
					snprintf(a.log, sizeof(a.log), "%s", explained);
				}
			}
			die_mount(&req, a.errnum, a.log);
		}
	}
	if (!legacy) {
		if (move_mount(mnt_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
			die_errno(NFSV3_EXIT_MOUNT, "mounting %s on %s/%s", req.source, NFSV3_KERNEL_DIR, req.key);
		close(mnt_fd);
	}
	/* Which version the server and this kernel settled on shows in mountinfo (vers=). */
	privilege_keep_mountpoint();
	return NFSV3_EXIT_OK;
}
