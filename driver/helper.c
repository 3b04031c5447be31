#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper.h"
#include "log.h"

#define STDERR_GRACE_MS 200

struct helper_job {
	struct helper_pool *pool;
	char *argv[HELPER_MAX_ARGS + 1];
	helper_done_cb done;
	void *data;
	uv_process_t process;
	uv_pipe_t err_pipe;
	uv_timer_t deadline;
	int open_handles;       /* closed in on_handle_closed; the job is freed at 0 */
	bool exited, pipe_done;
	struct helper_result result;
	size_t message_len;
	uint64_t started_ms;
	struct helper_job *next; /* waiting list */
};

struct helper_pool {
	uv_loop_t *loop;
	unsigned max_parallel, timeout_s, running;
	struct helper_job *wait_head, *wait_tail;
};

static char *helper_env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };

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

bool helper_pool_idle(const struct helper_pool *pool)
{
	return pool->running == 0 && !pool->wait_head;
}

unsigned helper_pool_running(const struct helper_pool *pool)
{
	return pool->running;
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
	job->done(&job->result, job->data);
}

static void on_handle_closed(uv_handle_t *handle)
{
	struct helper_job *job = handle->data;

	if (--job->open_handles > 0)
		return;
	job->pool->running--;
	finish(job);
	start_next(job->pool);
	job_free(job);
}

/* The job ends when the process is reaped and its stderr is closed. */
static void maybe_close(struct helper_job *job)
{
	if (!job->exited || !job->pipe_done)
		return;
	uv_close((uv_handle_t *)&job->deadline, on_handle_closed);
	uv_close((uv_handle_t *)&job->process, on_handle_closed);
	uv_close((uv_handle_t *)&job->err_pipe, on_handle_closed);
}

static void on_deadline(uv_timer_t *timer);

static void on_exit_cb(uv_process_t *process, int64_t status, int signal)
{
	struct helper_job *job = process->data;

	job->result.exit_status = signal ? -1 : (int)status;
	job->result.term_signal = signal;
	job->exited = true;
	uv_timer_stop(&job->deadline);
	/* Its last words may still be in the pipe: read until EOF, but a
	 * grandchild holding stderr open must not keep the job open. */
	if (!job->pipe_done)
		uv_timer_start(&job->deadline, on_deadline, STDERR_GRACE_MS, 0);
	maybe_close(job);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct helper_job *job = handle->data;
	size_t room = sizeof(job->result.message) - 1 - job->message_len;

	/* Once full, read into a scratch buffer and drop it. */
	static char scratch[256];
	if (room == 0) {
		*buf = uv_buf_init(scratch, sizeof(scratch));
		return;
	}
	*buf = uv_buf_init(job->result.message + job->message_len, (unsigned)room);
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct helper_job *job = stream->data;

	if (n > 0 && buf->base != job->result.message + job->message_len)
		return;
	if (n > 0) {
		job->message_len += (size_t)n;
		job->result.message[job->message_len] = '\0';
		return;
	}
	if (n < 0) {
		uv_read_stop(stream);
		job->pipe_done = true;
		maybe_close(job);
	}
}

static void on_deadline(uv_timer_t *timer)
{
	struct helper_job *job = timer->data;

	if (job->exited) {
		uv_read_stop((uv_stream_t *)&job->err_pipe);
		job->pipe_done = true;
		maybe_close(job);
		return;
	}
	job->result.timed_out = true;
	/* The helper leads its own process group (UV_PROCESS_DETACHED). */
	if (kill(-job->process.pid, SIGKILL) < 0)
		uv_process_kill(&job->process, SIGKILL);
	log_error("helper.deadline-expired",
		  json_pack("{s:s, s:i, s:i}", "helper", job->argv[0], "pid", job->process.pid, "timeout_s",
			    (int)job->pool->timeout_s));
}

static void start_job(struct helper_job *job)
{
	struct helper_pool *pool = job->pool;
	uv_process_options_t options = { 0 };
	uv_stdio_container_t stdio[3];
	int rc;

	job->started_ms = uv_now(pool->loop);
	pool->running++;
	uv_pipe_init(pool->loop, &job->err_pipe, 0);
	uv_timer_init(pool->loop, &job->deadline);
	job->err_pipe.data = job->deadline.data = job->process.data = job;
	job->open_handles = 3;

	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_IGNORE;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&job->err_pipe;
	options.file = job->argv[0];
	options.args = job->argv;
	options.env = helper_env;
	options.exit_cb = on_exit_cb;
	options.flags = UV_PROCESS_DETACHED;
	options.stdio = stdio;
	options.stdio_count = 3;
	rc = uv_spawn(pool->loop, &job->process, &options);
	if (rc < 0) {
		snprintf(job->result.message, sizeof(job->result.message), "cannot start %s: %s", job->argv[0],
			 uv_strerror(rc));
		job->result.exit_status = -1;
		job->exited = job->pipe_done = true;
		/* uv_spawn initialised the process handle even on failure. */
		maybe_close(job);
		return;
	}
	uv_read_start((uv_stream_t *)&job->err_pipe, on_alloc, on_read);
	uv_timer_start(&job->deadline, on_deadline, (uint64_t)pool->timeout_s * 1000, 0);
}

static void start_next(struct helper_pool *pool)
{
	while (pool->wait_head && pool->running < pool->max_parallel) {
		struct helper_job *job = pool->wait_head;
		pool->wait_head = job->next;
		if (!pool->wait_head)
			pool->wait_tail = NULL;
		start_job(job);
	}
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
	for (i = 0; argv[i] && i < HELPER_MAX_ARGS; i++)
		job->argv[i] = strdup(argv[i]);
	job->pool = pool;
	job->done = done;
	job->data = data;
	if (pool->wait_tail)
		pool->wait_tail->next = job;
	else
		pool->wait_head = job;
	pool->wait_tail = job;
	start_next(pool);
}
