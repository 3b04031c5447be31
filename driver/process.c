#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process.h"

static void on_handle_closed(uv_handle_t *handle)
{
	struct process *proc = handle->data;

	if (--proc->open_handles > 0)
		return;
	if (proc->pidfd >= 0)
		close(proc->pidfd);
	proc->pidfd = -1;
	if (proc->on_closed)
		proc->on_closed(proc);
}

void process_init(struct process *proc, uv_loop_t *loop)
{
	proc->loop = loop;
	proc->pidfd = -1;
	uv_timer_init(loop, &proc->timer);
	proc->timer.data = proc->exit_poll.data = proc;
	proc->open_handles = 1;
}

pid_t process_pid(const struct process *proc)
{
	return proc->pid;
}

static void on_pidfd(uv_poll_t *poll, int status, int events)
{
	struct process *proc = poll->data;
	siginfo_t info = { 0 };
	int exit_status = -1, term_signal = 0;

	if (proc->child) {
		if (waitid((idtype_t)P_PIDFD, (id_t)proc->pidfd, &info, WEXITED | WNOHANG) < 0 || info.si_pid == 0)
			return;
		exit_status = info.si_code == CLD_EXITED ? info.si_status : -1;
		term_signal = info.si_code == CLD_EXITED ? 0 : info.si_status;
	}
	uv_poll_stop(poll);
	proc->exited = true;
	if (proc->on_exit)
		proc->on_exit(proc, exit_status, term_signal);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct process *proc = handle->data;
	int fd = (uv_pipe_t *)handle == &proc->pipes[1] ? 1 : 2;
	static char scratch[256];

	/* Once full, read into a scratch buffer and drop it. */
	if (proc->buf[fd] && proc->len[fd] < proc->cap[fd] - 1)
		*buf = uv_buf_init(proc->buf[fd] + proc->len[fd], (unsigned)(proc->cap[fd] - 1 - proc->len[fd]));
	else
		*buf = uv_buf_init(scratch, sizeof(scratch));
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct process *proc = stream->data;
	int fd = (uv_pipe_t *)stream == &proc->pipes[1] ? 1 : 2;

	if (n < 0) {
		uv_read_stop(stream);
		proc->reading[fd] = false;
		if (proc->on_output)
			proc->on_output(proc, fd, 0);
		return;
	}
	if (n == 0 || !proc->buf[fd] || buf->base != proc->buf[fd] + proc->len[fd])
		return;
	proc->len[fd] += (size_t)n;
	proc->buf[fd][proc->len[fd]] = '\0';
	if (proc->on_output)
		proc->on_output(proc, fd, (size_t)n);
}

static void watch(struct process *proc)
{
	uv_poll_init(proc->loop, &proc->exit_poll, proc->pidfd);
	proc->open_handles++;
	proc->polling = true;
	uv_poll_start(&proc->exit_poll, UV_READABLE, on_pidfd);
}

static void read_pipe(struct process *proc, int fd, int pipe_fd)
{
	uv_pipe_init(proc->loop, &proc->pipes[fd], 0);
	proc->pipes[fd].data = proc;
	proc->open_handles++;
	proc->piped[fd] = true;
	uv_pipe_open(&proc->pipes[fd], pipe_fd);
	proc->reading[fd] = true;
	uv_read_start((uv_stream_t *)&proc->pipes[fd], on_alloc, on_read);
}

int process_spawn(struct process *proc, const struct process_spawn_options *options)
{
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int out[2] = { -1, -1 }, err[2], rc;
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;

	if (pipe2(err, O_CLOEXEC) < 0)
		return -errno;
	if (options->capture_stdout && pipe2(out, O_CLOEXEC) < 0) {
		rc = errno;
		close(err[0]);
		close(err[1]);
		return -rc;
	}
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	if (options->capture_stdout)
		posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
	else
		posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	if (options->session) {
		flags |= POSIX_SPAWN_SETSID;
	} else {
		posix_spawnattr_setpgroup(&attr, 0);
		flags |= POSIX_SPAWN_SETPGROUP;
	}
	posix_spawnattr_setflags(&attr, flags);
	rc = posix_spawn(&proc->pid, options->argv[0], &actions, &attr, (char *const *)options->argv, options->env);
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	close(err[1]);
	if (out[1] >= 0)
		close(out[1]);
	if (rc == 0) {
		proc->pidfd = (int)syscall(SYS_pidfd_open, proc->pid, 0);
		if (proc->pidfd < 0) {
			/* Our own unreaped child always has a pidfd; never leave one unwatched. */
			rc = errno;
			kill(-proc->pid, SIGKILL);
			waitpid(proc->pid, NULL, 0);
			proc->pid = 0;
		}
	}
	if (rc != 0) {
		close(err[0]);
		if (out[0] >= 0)
			close(out[0]);
		return -rc;
	}
	proc->child = true;
	watch(proc);
	if (out[0] >= 0)
		read_pipe(proc, 1, out[0]);
	read_pipe(proc, 2, err[0]);
	return 0;
}

void process_adopt(struct process *proc, pid_t pid, int pidfd)
{
	proc->pid = pid;
	proc->pidfd = pidfd;
	watch(proc);
}

void process_kill_group(struct process *proc, int sig)
{
	if (kill(-proc->pid, sig) < 0)
		kill(proc->pid, sig);
}

static void on_timer(uv_timer_t *timer)
{
	struct process *proc = timer->data;

	if (proc->on_timer)
		proc->on_timer(proc);
}

void process_timer_start(struct process *proc, uint64_t ms)
{
	uv_timer_start(&proc->timer, on_timer, ms, 0);
}

void process_timer_stop(struct process *proc)
{
	uv_timer_stop(&proc->timer);
}

void process_stop_reading(struct process *proc, int fd)
{
	if (proc->reading[fd]) {
		proc->reading[fd] = false;
		uv_read_stop((uv_stream_t *)&proc->pipes[fd]);
	}
}

void process_close(struct process *proc)
{
	if (proc->closing)
		return;
	proc->closing = true;
	for (int fd = 1; fd <= 2; fd++)
		if (proc->piped[fd])
			uv_close((uv_handle_t *)&proc->pipes[fd], on_handle_closed);
	if (proc->polling)
		uv_close((uv_handle_t *)&proc->exit_poll, on_handle_closed);
	uv_close((uv_handle_t *)&proc->timer, on_handle_closed);
}
