/*
 * The daemon's one error object: created where the failure happens, given
 * context on the way up, turned into the wire's Err in one place (routes.c,
 * err_set). Messages are for people: they name what was wrong, the value
 * and what was expected.
 *
 * What the code decides: the client sees only the message, always with
 * HTTP 200 (volman ignores the status, Docker takes any other status as a
 * failure of the plugin itself), and the Err shape follows the route and
 * the client, not the code. The code steers the daemon: ERROR_TIMEOUT
 * makes a failed idmapfs start force-detach the Mountpoint it may have
 * left (lifecycle.c) and counts an LDAP lookup as timed out (directory.c);
 * the others are kept as they are passed on (kernel.c, lifecycle.c) and
 * tell the cause apart to a reader of the code.
 */
#ifndef NFSV3_ERROR_H
#define NFSV3_ERROR_H

enum error_code {
	ERROR_INVALID = 1, /* the request or an option is wrong: the client can fix it */
	ERROR_NOT_FOUND,   /* no such volume */
	ERROR_CONFLICT,    /* the volume's state forbids it now (in use, not mounted) */
	ERROR_TIMEOUT,     /* a helper missed its deadline */
	ERROR_MOUNT,       /* the kernel, the server or a helper refused */
	ERROR_INTERNAL,    /* out of memory, I/O error on our own files */
};

struct error {
	enum error_code code;
	char *message;
};

struct error *error_new(enum error_code code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prefix "context: " to the message; returns err for chaining. */
struct error *error_wrap(struct error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void error_free(struct error *err);

#endif
