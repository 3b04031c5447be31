/*
 * Binding options (Create's Opts): one table row per option, each with its
 * parser. Parsing yields a volume_spec or an error that names the option,
 * the value and what is allowed.
 */
#ifndef NFSV3_OPTIONS_H
#define NFSV3_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "error.h"

enum source_kind { SOURCE_NFS, SOURCE_LOCAL };

struct volume_spec {
	enum source_kind kind;
	char *host;        /* NFS: DNS name or address literal (no brackets) */
	unsigned port;     /* NFS: 0 when not given */
	char *path;        /* NFS: export path; local: absolute directory */
	bool mapped;       /* uid/gid given: served through idmapfs */
	uint32_t uid, gid; /* bound identity when mapped */
	char *username;    /* LDAP user, when given */
	bool readonly;
	bool cache;
	char *version;     /* kernel vers= value: "3", "4", "4.0", "4.1", "4.2"; NULL: negotiated */
	char *nfs_options; /* the binding's extra options, checked; NULL when none */
};

/*
 * Parse Opts (a JSON object, or NULL/null for none) against the table.
 * On success fills *spec (free with volume_spec_clear) and returns NULL.
 */
struct error *options_parse(const json_t *opts, const struct config *cfg, struct volume_spec *spec);
void volume_spec_clear(struct volume_spec *spec);
/* A deep copy of from into *to (free with volume_spec_clear); false, with *to cleared, when out of memory. */
bool volume_spec_copy(struct volume_spec *to, const struct volume_spec *from);

/*
 * A copy of opts fit to log and persist: secrets dropped. Returns a new
 * object (an empty one for NULL/null opts).
 */
json_t *options_sanitize(const json_t *opts);

/*
 * The kernel option string for an NFS spec: the defaults, then the
 * operator's, then the binding's, later values replacing earlier ones of the
 * same name; addr= is not included (the resolver adds it). For an IPv6
 * server, tcp and udp become tcp6 and udp6. Caller frees.
 */
char *options_kernel_string(const struct volume_spec *spec, const struct config *cfg, bool ipv6);

/*
 * Check a comma list of NFS options against the allowlist (comma list of
 * names; "key" allows "key" and "key=value"). Returns NULL or an error.
 */
struct error *options_check_nfs(const char *list, const char *allowlist, const char *what);

/* Validate a volume name (also checked again by every helper). */
struct error *options_check_name(const char *name);
/* The same check when only the verdict is wanted. */
bool options_name_valid(const char *name);

#endif
