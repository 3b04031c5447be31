/*
 * What the integration suites share: starting the real daemon in a temp
 * directory, talking to it over its real unix socket or TCP port, and
 * reading the kernel's mount table.
 */
#ifndef NFSV3_HARNESS_H
#define NFSV3_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>
#include <check.h>
#include <jansson.h>

struct daemon {
	pid_t pid;
	char dir[256];        /* temp dir holding everything below */
	char root[300];       /* mount root */
	char sock[300];       /* unix socket */
	char log[300];        /* its stdout+stderr */
	char drivers[300];    /* drivers path */
	int port, admin_port; /* TCP listeners */
	char extra[1024];     /* extra arguments, space separated */
};

/* Absolute path of a build product ("bin/nfsv3driver"). */
const char *harness_build_path(const char *relative);

/* Make the temp dir and pick ports; extra is appended to the command line. */
void daemon_init(struct daemon *d, const char *extra);
/* Start and wait for driver-server.started (fails the test otherwise). */
void daemon_start(struct daemon *d);
/* SIGTERM and wait; returns the exit status. */
int daemon_stop(struct daemon *d);
/* SIGKILL and reap. */
void daemon_kill9(struct daemon *d);
/* Stop if running, unmount everything under dir, remove dir. */
void daemon_cleanup(struct daemon *d);
/* Count of log lines containing text. */
int daemon_log_count(const struct daemon *d, const char *text);

/* POST route with body over the unix socket (a new connection). Returns the parsed answer; *status gets the HTTP status. */
json_t *call_unix(const struct daemon *d, const char *route, const char *body, const char *extra_headers, int *status);
/* The same over TCP. */
json_t *call_tcp(const struct daemon *d, const char *route, const char *body, const char *extra_headers, int *status);
/* GET path on the admin port. */
json_t *call_admin(const struct daemon *d, const char *path, int *status);

/* Send raw bytes to the unix socket; read until close or timeout_ms; returns malloc'd reply text. */
char *raw_unix(const struct daemon *d, const char *bytes, size_t len, int timeout_ms);
/* GET path on the admin listener: the whole answer, head and body, as sent
 * (for answers that are not JSON, such as /metrics). */
char *raw_admin_get(const struct daemon *d, const char *path);

/* The same, one byte per write with pause_ms between writes. */
char *raw_unix_trickle(const struct daemon *d, const char *bytes, size_t len, int pause_ms);

/* Err of an answer, "" when absent; SafeDescription unwrapped when Err is a SafeError. */
const char *answer_err(json_t *answer);

/* Mounts at or below dir in this mount namespace (/proc/self/mountinfo). */
int mounts_under(const char *dir);

/* out = dir/name; fails the test when it does not fit. */
void path_join(char *out, size_t size, const char *dir, const char *name);

/*
 * A helper's refusal: exit code (with everything it wrote on stderr, err) is
 * want, and err is exactly one line "<helper>: ..." containing needle.
 */
void harness_expect_refusal(const char *helper, int code, const char *err, int want, const char *needle);

/*
 * In this process: a mount namespace of its own (/ made private,
 * recursively) with a tmpfs mounted on dir with flags and data. 0, or -1
 * with errno.
 */
int harness_private_tmpfs(const char *dir, unsigned long flags, const char *data);

/* Run every test of suite; the exit status for main (0 all passed, 1 not). */
int harness_run(Suite *suite);

/*
 * Whether suites that work in a private mount namespace can run here: a
 * child unshares, makes / private and mounts a tmpfs on dir. Prints why not
 * (prefixed with suite) and returns false when it cannot.
 */
bool harness_can_mount_privately(const char *dir, const char *suite);

/* Make a directory (and parents) with a file "hello" in it. */
void make_source_dir(const char *path);

/* ---- the suites' shared fixture: one daemon per test, with a source dir ---- */

#define DOCKER_ACCEPT "Accept: application/vnd.docker.plugins.v1.2+json\r\n"

extern struct daemon d; /* the fixture's daemon */
extern char src[512];   /* a local source directory holding "hello" */

/* Start d on a fresh temp dir (NFSV3_IT_EXTRA adds arguments); stop and clean it. */
void fixture_setup(void);
void fixture_teardown(void);
/* Call (TCP or unix) and expect success; returns the answer (caller decrefs). */
json_t *ok_call(bool tcp, const char *route, const char *body, const char *headers);
/* Call and expect an Err containing want, with status 200. */
void err_call(bool tcp, const char *route, const char *body, const char *headers, const char *want);
/* Create name with source file://src. */
void create_local(bool tcp, const char *name, const char *headers);
/* /ping on the admin port and Activate both answer. */
void assert_alive(void);

#endif
