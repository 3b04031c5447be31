/*
 * The operator's policy: which NFS servers and exports a binding may use,
 * and which identities it may claim on them. One parser, compiled into the
 * daemon (driver/policy_gate.c), the nfs mount helper (mounter/nfs.c) and
 * idmapfs (mounter/idmapfs_main.c), using libc only (the mount helper is
 * linked -static-pie).
 *
 * The file is line-oriented, one rule per line, fields separated by spaces
 * or tabs, "#" to the end of the line a comment:
 *
 *   export SERVER PATH [uid=RANGES] [gid=RANGES] [identity=KINDS]
 *       SERVER is a DNS name as the binding writes it (exact, any case;
 *       "*.example.com" for every name under example.com), or an IPv4/IPv6
 *       address or CIDR, matched against the address actually mounted.
 *       PATH is an export path prefix, compared whole component by whole
 *       component ("/srv" covers "/srv" and "/srv/a", never "/srv2").
 *       RANGES: N or N-M, comma-separated (default: any id not denied).
 *       KINDS: raw (uid/gid options), ldap (username/password), none (no
 *       identity: the app's own ids); comma-separated (default: all three).
 *   deny-server NAME|ADDRESS|CIDR
 *       refused whatever the export rules say; an address or CIDR is
 *       matched against the resolved address, so a name that resolves into
 *       it is refused.
 *   deny-uid RANGES / deny-gid RANGES
 *       ids no binding may claim; without any such line, 0-999. Id 0 is
 *       always denied.
 *
 * A binding is allowed when no deny rule refuses it and one export rule
 * allows its server, its export, its identity kind, its uid and its gid.
 */
#ifndef NFSV3_POLICY_H
#define NFSV3_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where the helper reads the policy; fixed when the helper is built. */
#ifndef NFSV3_POLICY_FILE
#define NFSV3_POLICY_FILE "/etc/nfsv3driver/policy"
#endif
/*
 * The helper reads another file only when its real uid is 0: a root caller
 * can mount whatever it likes without the helper, so choosing the file
 * gives it nothing; the unprivileged daemon cannot choose it.
 */
#define NFSV3_POLICY_ENV "NFSV3DRIVER_POLICY"
/* The file a helper reads, by the rule above. */
const char *policy_helper_path(void);

#define POLICY_FILE_MAX (1024 * 1024) /* bytes */
#define POLICY_LINE_MAX 4096
#define POLICY_WHY_MAX 512            /* room for any message below */

struct policy;

/*
 * Read and check path: a regular file (not a symlink), owned by root and
 * not writable by group or others, in a directory of the same kind, and
 * every line valid. NULL with why ("PATH: line N: ... expected ...") on any
 * failure; *missing is set when the file does not exist at all.
 */
struct policy *policy_load(const char *path, bool *missing, char *why, size_t why_len);
/* Parse text (the file's contents; path only names it in messages). */
struct policy *policy_parse(const char *text, size_t len, const char *path, char *why, size_t why_len);
void policy_free(struct policy *policy);
/* The file it was read from. */
const char *policy_path(const struct policy *policy);
/* Rules read (for the log: counts only, never contents). */
unsigned policy_rule_count(const struct policy *policy);

enum policy_identity {
	POLICY_ID_ANY,  /* not known here (the helper): every kind passes */
	POLICY_ID_RAW,  /* uid and gid options */
	POLICY_ID_LDAP, /* username/password, resolved (or still to resolve) */
	POLICY_ID_NONE, /* no identity: the app's own ids reach the server */
};

struct policy_request {
	const char *host;   /* as the binding wrote it: DNS name or address literal (no brackets) */
	const char *addr;   /* the address that will be mounted, or NULL when not resolved yet */
	const char *export; /* absolute export path */
	enum policy_identity identity;
	bool ids_known;     /* uid and gid below are to be checked */
	uint32_t uid, gid;
};

enum policy_verdict {
	POLICY_ALLOWED = 0,
	POLICY_REFUSED_SERVER,   /* the server (its name or its address) */
	POLICY_REFUSED_EXPORT,   /* the export path on an allowed server */
	POLICY_REFUSED_IDENTITY, /* this kind of identity on this export */
	POLICY_REFUSED_UID,
	POLICY_REFUSED_GID,
	POLICY_REFUSED_INVALID,  /* the request itself is malformed (bad address) */
};

/*
 * Check req. When refused, why says what was refused (the server, export,
 * identity kind, uid or gid, as the request gave it) and where the policy
 * lives, never what the policy says.
 */
enum policy_verdict policy_check(const struct policy *policy, const struct policy_request *req, char *why,
				 size_t why_len);

#endif
