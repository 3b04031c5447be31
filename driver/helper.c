#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper.h"
#include "log.h"
#include "metrics.h"

#define STDERR_GRACE_MS 200

struct helper_job {
	struct helper_pool *pool;
	helper_slot_cb granted;   /* a slot for the caller's own process (no argv), or NULL */
	char *argv[HELPER_MAX_ARGS + 1];
	helper_done_cb done;
	void *data;
	pid_t pid;
	int pidfd;
	bool polling;             /* exit_poll is initialised (the helper started) */
	uv_poll_t exit_poll;      /* the pidfd: readable once the helper has exited */
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
	if (job->pidfd >= 0)
		close(job->pidfd);

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
	if (job->polling)
		uv_close((uv_handle_t *)&job->exit_poll, on_handle_closed);
	uv_close((uv_handle_t *)&job->err_pipe, on_handle_closed);
}

static void on_deadline(uv_timer_t *timer);

static void on_pidfd(uv_poll_t *poll, int status, int events)
{
	struct helper_job *job = poll->data;
	siginfo_t info = { 0 };

	if (waitid((idtype_t)P_PIDFD, (id_t)job->pidfd, &info, WEXITED | WNOHANG) < 0 || info.si_pid == 0)
		return;
	uv_poll_stop(poll);
	job->result.exit_status = info.si_code == CLD_EXITED ? info.si_status : -1;
	job->result.term_signal = info.si_code == CLD_EXITED ? 0 : info.si_status;
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
	if (kill(-job->pid, SIGKILL) < 0)
		kill(job->pid, SIGKILL);
	log_error("helper.deadline-expired",
		  json_pack("{s:s, s:i, s:i}", "helper", job->argv[0], "pid", (int)job->pid, "timeout_s",
			    (int)job->pool->timeout_s));
}

/*
 * posix_spawn, not uv_spawn: glibc's is a vfork-style clone that copies no
 * page tables, where libuv forks; with a helper per Mount and Unmount, the
 * fork's page-table copy and copy-on-write faults were most of the loop's
 * time. The helper leads a process group of its own (the deadline kills the
 * group), has default signal dispositions and an empty mask, /dev/null for
 * stdin and stdout, and a pipe for stderr. Its exit is watched through a
 * pidfd; libuv's SIGCHLD handling only reaps the children it spawned.
 */
static int spawn_helper(struct helper_job *job, int *err_fd)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int pipe_fds[2], rc;

	if (pipe2(pipe_fds, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&job->pid, job->argv[0], &actions, &attr, job->argv, helper_env);
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	close(pipe_fds[1]);
	if (rc != 0) {
		close(pipe_fds[0]);
		return -rc;
	}
	job->pidfd = (int)syscall(SYS_pidfd_open, job->pid, 0);
	if (job->pidfd < 0) {
		/* Our own unreaped child always has a pidfd; never leave one unwatched. */
		rc = errno;
		kill(-job->pid, SIGKILL);
		waitpid(job->pid, NULL, 0);
		close(pipe_fds[0]);
		return -rc;
	}
	*err_fd = pipe_fds[0];
	return 0;
}

static void start_job(struct helper_job *job)
{
	struct helper_pool *pool = job->pool;
	int rc, err_fd = -1;

	/* The deadline runs from this launch: the loop's time may be stale
	 * after the launches before it in this turn. */
	uv_update_time(pool->loop);
	job->started_ms = uv_now(pool->loop);
	pool->running++;
	uv_pipe_init(pool->loop, &job->err_pipe, 0);
	uv_timer_init(pool->loop, &job->deadline);
	job->err_pipe.data = job->deadline.data = job->exit_poll.data = job;
	job->open_handles = 3;
	rc = spawn_helper(job, &err_fd);
	if (rc < 0) {
		snprintf(job->result.message, sizeof(job->result.message), "cannot start %s: %s", job->argv[0],
			 strerror(-rc));
		job->result.exit_status = -1;
		job->exited = job->pipe_done = true;
		job->open_handles = 2;
		maybe_close(job);
		return;
	}
	uv_pipe_open(&job->err_pipe, err_fd);
	uv_poll_init(pool->loop, &job->exit_poll, job->pidfd);
	job->polling = true;
	uv_poll_start(&job->exit_poll, UV_READABLE, on_pidfd);
	uv_read_start((uv_stream_t *)&job->err_pipe, on_alloc, on_read);
	uv_timer_start(&job->deadline, on_deadline, (uint64_t)pool->timeout_s * 1000, 0);
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
	job->pidfd = -1;
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
	for (i = 0; argv[i] && i < HELPER_MAX_ARGS; i++)
		job->argv[i] = strdup(argv[i]);
	job->pool = pool;
	job->pidfd = -1;
	job->done = done;
	job->data = data;
	enqueue(pool, job);
}
