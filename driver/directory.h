/*
 * LDAP identity: a binding's username and password become a uid/gid. The
 * daemon binds as the service user, searches for the user under the base DN,
 * proves the password by binding as the entry found, and takes its uidNumber
 * and gidNumber. libldap's synchronous calls run on worker threads of our
 * own (never libuv's pool, which the state writer and DNS share), each call
 * bounded by the operator's timeout, so a slow directory never blocks the
 * loop or the state file. Service connections are kept in a small pool and
 * reused; a host that cannot be reached gives way to the next in the list.
 *
 * Passwords live only in secret buffers: locked in memory, left out of core
 * dumps, wiped when freed.
 */
#ifndef NFSV3_DIRECTORY_H
#define NFSV3_DIRECTORY_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "error.h"

enum directory_transport {
	DIRECTORY_LDAPS,     /* TLS from the first byte (port 636) */
	DIRECTORY_STARTTLS,  /* StartTLS on the plain port before any bind */
	DIRECTORY_PLAINTEXT, /* passwords in clear: only when the operator says so */
};

#define DIRECTORY_MAX_HOSTS 8

struct directory_config {
	char *hosts[DIRECTORY_MAX_HOSTS]; /* tried in order */
	unsigned n_hosts;
	unsigned port;              /* 0: 389, or 636 for LDAPS */
	const char *svc_user;       /* service DN */
	const char *svc_password_file;
	const char *user_base;      /* --ldap-user-fqdn: search base */
	const char *ca_cert;        /* PEM file: TLS verified against it */
	bool starttls, insecure_plaintext;
	const char *user_filter;    /* with %s for the escaped user name */
	const char *uid_attr, *gid_attr;
	unsigned timeout_s;         /* connect and each request */
};

/* A password held away from core dumps and swap, wiped when freed. */
struct secret;
struct secret *secret_new(const char *text, size_t len);
const char *secret_text(const struct secret *s);
size_t secret_len(const struct secret *s);
void secret_free(struct secret *s);

/* Defaults before the command line is read. */
void directory_config_init(struct directory_config *cfg);
/*
 * One --ldap-* flag (its long name without the dashes). Returns NULL, or a
 * static message that names what was expected.
 */
const char *directory_config_set(struct directory_config *cfg, const char *flag, const char *value);
/* True when --ldap-host was given. */
bool directory_configured(const struct directory_config *cfg);

struct directory;
/*
 * Check the configuration as a whole and read the service password (from
 * the file, else NFSV3DRIVER_LDAP_SVC_PASSWORD, which is then wiped from the
 * environment). Nothing is contacted yet. NULL and *err on a bad setup.
 */
struct directory *directory_new(uv_loop_t *loop, const struct directory_config *cfg, struct error **err);
/* Stop the workers (after their current request) and close the pool; must run before uv_loop_close. */
void directory_free(struct directory *dir);

/*
 * Take the binding's password from Create's Opts into a secret, and wipe
 * jansson's copy of it. A missing or empty password is an error that says
 * so (an empty one would be an unauthenticated bind that many servers
 * accept). Username alone is checked by options.c.
 */
struct error *directory_take_password(json_t *opts, struct secret **out);

/* The answer: err NULL and the identity, or an error for the user. */
typedef void (*directory_cb)(struct error *err, uint32_t uid, uint32_t gid, double elapsed_ms, void *data);
/*
 * Resolve username with password (neither is copied beyond the request:
 * both must stay valid until cb runs). cb runs on the loop, once, with an
 * error that names the problem and never the password.
 */
void directory_resolve(struct directory *dir, const char *username, const struct secret *password, directory_cb cb,
		       void *data);

#endif
