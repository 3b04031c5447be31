#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper.h"
#include "log.h"
#include "metrics.h"
#include "process.h"

#define STDERR_GRACE_MS 200

struct helper_job {
	struct helper_pool *pool;
	helper_slot_cb granted;   /* a slot for the caller's own process (no argv), or NULL */
	char *argv[HELPER_MAX_ARGS + 1];
	helper_done_cb done;
	void *data;
	struct process proc;
	bool exited, pipe_done;
	struct helper_result result;
	uint64_t started_ms;
	struct helper_job *next; /* waiting list */
};

struct helper_pool {
	uv_loop_t *loop;
	unsigned max_parallel, timeout_s, running;
	bool starting;            /* in start_next: a slot released meanwhile is taken up by its loop */
	struct helper_job *wait_head, *wait_tail;
};

char *helper_env[HELPER_ENV_SPARE + 2] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL, NULL };

struct helper_pool *helper_pool_new(uv_loop_t *loop, unsigned max_parallel, unsigned timeout_s)
{
	struct helper_pool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return NULL;
	pool->loop = loop;
	pool->max_parallel = max_parallel ? max_parallel : 1;
	pool->timeout_s = timeout_s;
	return pool;
}

void helper_pool_free(struct helper_pool *pool)
{
	free(pool);
}


static void job_free(struct helper_job *job)
{
	for (char **a = job->argv; *a; a++)
		free(*a);
	free(job);
}

static void start_next(struct helper_pool *pool);

static void finish(struct helper_job *job)
{
	struct helper_pool *pool = job->pool;

	job->result.elapsed_ms = (double)(uv_now(pool->loop) - job->started_ms);
	/* Keep the first line only: helpers promise one line of error. */
	job->result.message[strcspn(job->result.message, "\n")] = '\0';
	metrics_helper_finished(job->argv[1], job->result.elapsed_ms / 1e3, job->result.timed_out,
				job->result.term_signal);
	job->done(&job->result, job->data);
}

static void on_helper_closed(struct process *proc)
{
	struct helper_job *job = proc->data;

	job->pool->running--;
	finish(job);
	start_next(job->pool);
	job_free(job);
}

/* The job ends when the process is reaped and its stderr is closed. */
static void maybe_close(struct helper_job *job)
{
	if (job->exited && job->pipe_done)
		process_close(&job->proc);
}

static void on_helper_exit(struct process *proc, int exit_status, int term_signal)
{
	struct helper_job *job = proc->data;

	job->result.exit_status = exit_status;
	job->result.term_signal = term_signal;
	job->exited = true;
	process_timer_stop(proc);
	/* Its last words may still be in the pipe: read until EOF, but a
	 * grandchild holding stderr open must not keep the job open. */
	if (!job->pipe_done)
		process_timer_start(proc, STDERR_GRACE_MS);
	maybe_close(job);
}

static void on_helper_output(struct process *proc, int fd, size_t len)
{
	struct helper_job *job = proc->data;

	if (len == 0) {
		job->pipe_done = true;
		maybe_close(job);
	}
}

static void on_deadline(struct process *proc)
{
	struct helper_job *job = proc->data;

	if (job->exited) {
		process_stop_reading(proc, STDERR_FILENO);
		job->pipe_done = true;
		maybe_close(job);
		return;
	}
	job->result.timed_out = true;
	/* The helper leads its own process group. */
	process_kill_group(proc, SIGKILL);
	log_error("helper.deadline-expired",
		  json_pack("{s:s, s:i, s:i}", "helper", job->argv[0], "pid", (int)process_pid(proc), "timeout_s",
			    (int)job->pool->timeout_s));
}

static void start_job(struct helper_job *job)
{
	struct helper_pool *pool = job->pool;
	struct process_spawn_options options = { .argv = (const char *const *)job->argv, .env = helper_env };
	int rc;

	/* The deadline runs from this launch: the loop's time may be stale
	 * after the launches before it in this turn. */
	uv_update_time(pool->loop);
	job->started_ms = uv_now(pool->loop);
	pool->running++;
	process_init(&job->proc, pool->loop);
	job->proc.data = job;
	job->proc.on_exit = on_helper_exit;
	job->proc.on_output = on_helper_output;
	job->proc.on_timer = on_deadline;
	job->proc.on_closed = on_helper_closed;
	job->proc.buf[STDERR_FILENO] = job->result.message;
	job->proc.cap[STDERR_FILENO] = sizeof(job->result.message);
	rc = process_spawn(&job->proc, &options);
	if (rc < 0) {
		snprintf(job->result.message, sizeof(job->result.message), "cannot start %s: %s", job->argv[0],
			 strerror(-rc));
		job->result.exit_status = -1;
		job->exited = job->pipe_done = true;
		maybe_close(job);
		return;
	}
	process_timer_start(&job->proc, (uint64_t)pool->timeout_s * 1000);
}

static void start_next(struct helper_pool *pool)
{
	if (pool->starting)
		return;
	pool->starting = true;
	while (pool->wait_head && pool->running < pool->max_parallel) {
		struct helper_job *job = pool->wait_head;
		pool->wait_head = job->next;
		if (!pool->wait_head)
			pool->wait_tail = NULL;
		if (job->granted) {
			helper_slot_cb granted = job->granted;
			void *data = job->data;
			pool->running++;
			free(job);
			granted(data);
		} else {
			start_job(job);
		}
	}
	pool->starting = false;
}

static void enqueue(struct helper_pool *pool, struct helper_job *job)
{
	if (pool->wait_tail)
		pool->wait_tail->next = job;
	else
		pool->wait_head = job;
	pool->wait_tail = job;
	start_next(pool);
}

bool helper_slot_wait(struct helper_pool *pool, helper_slot_cb granted, void *data)
{
	struct helper_job *job = calloc(1, sizeof(*job));

	if (!job)
		return false;
	job->pool = pool;
	job->granted = granted;
	job->data = data;
	enqueue(pool, job);
	return true;
}

void helper_slot_release(struct helper_pool *pool)
{
	pool->running--;
	start_next(pool);
}

void helper_run(struct helper_pool *pool, const char *const *argv, helper_done_cb done, void *data)
{
	struct helper_job *job = calloc(1, sizeof(*job));
	size_t i;

	if (!job) {
		struct helper_result res = { .exit_status = -1 };
		snprintf(res.message, sizeof(res.message), "out of memory starting %s", argv[0]);
		done(&res, data);
		return;
	}
	for (i = 0; argv[i] && i < HELPER_MAX_ARGS; i++) {
		if (!(job->argv[i] = strdup(argv[i]))) {
			struct helper_result res = { .exit_status = -1 };
			snprintf(res.message, sizeof(res.message), "out of memory starting %s", argv[0]);
			while (i > 0)
				free(job->argv[--i]);
			free(job);
			done(&res, data);
			return;
		}
	}
	job->pool = pool;
	job->done = done;
	job->data = data;
	enqueue(pool, job);
}
