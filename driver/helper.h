/*
 * Running the privileged helpers (spawned and watched by process.c) with a fixed argv and a minimal
 * environment, in a process group of their own, at most max_parallel at once
 * (the rest wait in arrival order), each under a deadline that runs from its
 * own launch. At the deadline the whole group is killed; the callback runs
 * once the process is reaped, with timed_out set, so that the caller can
 * clean up after it. A caller that starts a process of its own (idmapfs)
 * takes one of the same max_parallel slots for the start, in the same
 * queue.
 */
#ifndef NFSV3_HELPER_H
#define NFSV3_HELPER_H

#include <stdbool.h>
#include <uv.h>

#define HELPER_MAX_ARGS 16
#define HELPER_STDERR_MAX 1024

struct helper_result {
	int exit_status;   /* exit code, or -1 when killed by a signal or never started */
	int term_signal;   /* signal that ended it, or 0 */
	bool timed_out;    /* the deadline passed and it was killed */
	char message[HELPER_STDERR_MAX]; /* its stderr (first line kept whole), or why it did not start */
	double elapsed_ms;
};

/* The whole environment every helper (idmapfs too) starts with; slot
 * HELPER_ENV_SPARE is NULL unless main.c names the policy file there. */
#define HELPER_ENV_SPARE 2
extern char *helper_env[];

struct helper_pool;
typedef void (*helper_done_cb)(const struct helper_result *res, void *data);

struct helper_pool *helper_pool_new(uv_loop_t *loop, unsigned max_parallel, unsigned timeout_s);
/* Free once no helper runs or waits; the pool itself holds no handles. */
void helper_pool_free(struct helper_pool *pool);

/*
 * Run argv (argv[0] an absolute path, NULL-terminated, at most
 * HELPER_MAX_ARGS; copied). done runs exactly once, on the loop.
 */
void helper_run(struct helper_pool *pool, const char *const *argv, helper_done_cb done, void *data);

/*
 * Wait in turn for one of the max_parallel slots: granted runs on the loop
 * once it is the caller's (possibly before this returns), and the caller
 * gives it back with helper_slot_release, exactly once. False (and granted
 * never runs) when out of memory.
 */
typedef void (*helper_slot_cb)(void *data);
bool helper_slot_wait(struct helper_pool *pool, helper_slot_cb granted, void *data);
void helper_slot_release(struct helper_pool *pool);

#endif
