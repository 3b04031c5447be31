/*
 * Spawning and watching one process on the loop: the one way the daemon
 * starts a helper or an idmapfs. posix_spawn, not uv_spawn: glibc's is a
 * vfork-style clone that copies no page tables, where libuv forks; with a
 * helper per Mount and Unmount, the fork's page-table copy and copy-on-write
 * faults were most of the loop's time. The process gets a fixed argv and
 * environment, default signal dispositions and an empty mask, /dev/null for
 * stdin, a pipe or /dev/null for stdout, a pipe for stderr, and leads a
 * process group (or a session) of its own, so that a kill reaches all it
 * started. Its exit is watched through a pidfd (libuv's SIGCHLD handling only
 * reaps the children it spawned), which also watches a process adopted by
 * pid after a restart. One timer per process serves the caller's deadlines.
 *
 * Lifecycle: process_init, then process_spawn or process_adopt, then
 * process_close once (also after a failed spawn); on_closed runs on the loop
 * once every handle is closed, and only then may the owner free it.
 */
#ifndef NFSV3_PROCESS_H
#define NFSV3_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

struct process;

struct process_spawn_options {
	const char *const *argv; /* argv[0] an absolute path, NULL-terminated */
	char *const *env;        /* the whole environment */
	bool session;            /* a session of its own (outlives the daemon), else a process group */
	bool capture_stdout;     /* stdout into the caller's buffer, else /dev/null */
};

/* What the caller sets before process_spawn or process_adopt. */
struct process {
	void *data;
	/*
	 * Reaped: exit_status is its exit code (or -1 when a signal, term_signal,
	 * ended it). For an adopted process (not our child) both are -1 and 0.
	 */
	void (*on_exit)(struct process *proc, int exit_status, int term_signal);
	/* Output appended to the buffer of fd (1 or 2); len 0 at its end. */
	void (*on_output)(struct process *proc, int fd, size_t len);
	void (*on_timer)(struct process *proc);
	void (*on_closed)(struct process *proc);
	/* The caller's buffers for stdout (1) and stderr (2): kept NUL-terminated;
	 * what does not fit is read and dropped. */
	char *buf[3];
	size_t cap[3], len[3];

	/* private */
	uv_loop_t *loop;
	pid_t pid;
	int pidfd;
	bool child;              /* ours: reaped through the pidfd */
	bool polling, exited;
	bool piped[3];           /* pipes[fd] is initialised */
	bool reading[3];
	bool closing;
	int open_handles;
	uv_timer_t timer;
	uv_poll_t exit_poll;
	uv_pipe_t pipes[3];
};

void process_init(struct process *proc, uv_loop_t *loop);

/* Start it; returns 0, or -errno (nothing started: process_close it). */
int process_spawn(struct process *proc, const struct process_spawn_options *options);

/* Watch pid, not our child, through pidfd (taken over, closed with it). */
void process_adopt(struct process *proc, pid_t pid, int pidfd);

pid_t process_pid(const struct process *proc);

/* Signal its whole process group (the process alone when that fails). */
void process_kill_group(struct process *proc, int sig);

/* Run on_timer after ms (replacing one pending), or stop it. */
void process_timer_start(struct process *proc, uint64_t ms);
void process_timer_stop(struct process *proc);

/* Stop reading fd: its output is treated as ended (on_output is not called). */
void process_stop_reading(struct process *proc, int fd);

/* Close every handle; on_closed follows. The process itself is not signalled. */
void process_close(struct process *proc);

#endif
