#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "helper.h"
#include "log.h"
#include "metrics.h"
#include "supervise.h"

#define READY_LINE "ready"
#define STDERR_GRACE_MS 200
/* How long a start killed at its deadline may take to be reaped before
 * the timeout is answered anyway (one stuck in the kernel). */
#define KILL_GRACE_MS 1000
/* How often every idmapfs's run state is looked at. A stopped one is
 * resumed at once; one that SIGCONT does not resume is killed at the next
 * look, so an app waits on a stopped idmapfs for at most twice this. */
#define STOP_CHECK_MS 400

struct watched {
	struct driver *drv;
	char *name;
	pid_t pid;
	bool child;          /* ours by uv_spawn (else adopted through a pidfd) */
	bool ready, stopping, exited;
	bool reaped;         /* exit seen before ready: judged once stderr is read */
	bool killed;         /* killed at its start deadline: answered once reaped (or after KILL_GRACE_MS) */
	bool holds_slot;     /* one of the helper pool's --max-parallel slots: until ready, or reaped */
	bool resumed;        /* sent SIGCONT at the last look, and still stopped */
	char how[64];
	/* Its command line, kept until the launch (which waits for a slot). */
	char *backing;
	char uid[16], gid[16], app_uid[16], app_gid[16];
	bool readonly;
	supervise_ready_cb cb; /* until ready */
	supervise_died_cb died; /* once ready */
	void *data;
	uv_process_t process;
	uv_pipe_t out, err;
	uv_timer_t deadline;
	uv_poll_t poll;      /* adopted: readable pidfd means it exited */
	int pidfd;
	int open_handles;
	uint64_t started_ns; /* uv_hrtime() at spawn: the start's duration */
	char out_buf[64], err_buf[512];
	size_t out_len, err_len;
	struct watched *next;
};

static struct watched *find_live(struct driver *drv, const char *name)
{
	for (struct watched *w = drv->watched; w; w = w->next)
		if (!w->exited && strcmp(w->name, name) == 0)
			return w;
	return NULL;
}

static void unlink_watched(struct watched *w)
{
	for (struct watched **link = &w->drv->watched; *link; link = &(*link)->next) {
		if (*link == w) {
			*link = w->next;
			return;
		}
	}
}

static void release(struct watched *w)
{
	if (--w->open_handles > 0)
		return;
	unlink_watched(w);
	if (!w->drv->watched && w->drv->stop_check_open)
		uv_timer_stop(&w->drv->stop_check);
	if (w->pidfd >= 0)
		close(w->pidfd);
	free(w->backing);
	free(w->name);
	free(w);
}

/* The start is over (ready, or the process reaped): the next may launch. */
static void release_slot(struct watched *w)
{
	if (!w->holds_slot)
		return;
	w->holds_slot = false;
	helper_slot_release(w->drv->helpers);
}

static void on_closed(uv_handle_t *handle)
{
	release(handle->data);
}

static void close_handle(struct watched *w, uv_handle_t *handle)
{
	if (!uv_is_closing(handle)) {
		w->open_handles++;
		uv_close(handle, on_closed);
	}
}

static void close_all(struct watched *w)
{
	/* Hold one count so the record outlives the loop below. */
	w->open_handles++;
	if (w->child) {
		close_handle(w, (uv_handle_t *)&w->process);
		close_handle(w, (uv_handle_t *)&w->out);
		close_handle(w, (uv_handle_t *)&w->err);
		close_handle(w, (uv_handle_t *)&w->deadline);
	} else {
		close_handle(w, (uv_handle_t *)&w->poll);
	}
	release(w);
}

static void answer(struct watched *w, struct error *err)
{
	supervise_ready_cb cb = w->cb;

	w->cb = NULL;
	if (cb)
		cb(err, err ? 0 : w->pid, w->data);
	else
		error_free(err);
}

/* It exited: before ready that is a failed mount; after, a death to report. */
static void on_gone(struct watched *w, const char *how)
{
	struct driver *drv = w->drv;

	w->exited = true;
	if (!w->ready) {
		w->err_buf[strcspn(w->err_buf, "\n")] = '\0';
		answer(w, error_new(ERROR_MOUNT, "%s", w->err_buf[0] ? w->err_buf : how));
	} else if (!w->stopping) {
		metrics_count(METRIC_IDMAPFS_DEATHS);
		log_error("idmapfs.died", json_pack("{s:s, s:i, s:s}", "volume", w->name, "pid", (int)w->pid, "how", how));
		if (w->died)
			w->died(drv, w->name);
	} else {
		log_info("idmapfs.exited", json_pack("{s:s, s:i}", "volume", w->name, "pid", (int)w->pid));
	}
	close_all(w);
}

static void on_deadline(uv_timer_t *timer);

/* Killed at its start deadline. The caller detaches whatever it mounted. */
static void answer_timeout(struct watched *w)
{
	if (w->cb)
		answer(w, error_new(ERROR_TIMEOUT, "%s %u s starting idmapfs for volume %s", NFSV3_ERR_TIMEOUT,
				    w->drv->cfg->helper_timeout_s, w->name));
}

static void on_exit_cb(uv_process_t *process, int64_t status, int signal)
{
	struct watched *w = process->data;

	if (signal)
		snprintf(w->how, sizeof(w->how), "killed by signal %d", signal);
	else
		snprintf(w->how, sizeof(w->how), "exited with status %d", (int)status);
	if (w->ready) {
		on_gone(w, w->how);
		return;
	}
	/* Reaped: nothing of it can mount any more, so the caller's cleanup
	 * finds the mount table as it will stay. A dying process is still
	 * load on the cell: its slot is held until now, as a helper's is. */
	release_slot(w);
	if (w->killed)
		answer_timeout(w);
	/* A failed start: its one line of error may still be in the pipe. */
	w->reaped = true;
	uv_timer_stop(&w->deadline);
	uv_timer_start(&w->deadline, on_deadline, STDERR_GRACE_MS, 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct watched *w = handle->data;
	static char scratch[128];

	if ((uv_pipe_t *)handle == &w->out && w->out_len < sizeof(w->out_buf) - 1)
		*buf = uv_buf_init(w->out_buf + w->out_len, (unsigned)(sizeof(w->out_buf) - 1 - w->out_len));
	else if ((uv_pipe_t *)handle == &w->err && w->err_len < sizeof(w->err_buf) - 1)
		*buf = uv_buf_init(w->err_buf + w->err_len, (unsigned)(sizeof(w->err_buf) - 1 - w->err_len));
	else
		*buf = uv_buf_init(scratch, sizeof(scratch));
}

static void on_out(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct watched *w = stream->data;

	if (n < 0) {
		uv_read_stop(stream);
		return;
	}
	if (buf->base != w->out_buf + w->out_len)
		return;
	w->out_len += (size_t)n;
	w->out_buf[w->out_len] = '\0';
	/* One killed at its deadline is not ready, whatever it wrote before it died. */
	if (!w->ready && !w->killed && strstr(w->out_buf, READY_LINE "\n")) {
		w->ready = true;
		uv_timer_stop(&w->deadline);
		release_slot(w);
		metrics_observe(METRIC_HELPER_IDMAPFS, (double)(uv_hrtime() - w->started_ns) / 1e9);
		log_info("idmapfs.ready", json_pack("{s:s, s:i}", "volume", w->name, "pid", (int)w->pid));
		answer(w, NULL);
	}
}

static void on_err(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct watched *w = stream->data;

	if (n < 0) {
		uv_read_stop(stream);
		if (w->reaped && !w->exited)
			on_gone(w, w->how);
		return;
	}
	if (buf->base != w->err_buf + w->err_len)
		return;
	w->err_len += (size_t)n;
	w->err_buf[w->err_len] = '\0';
}

static void on_deadline(uv_timer_t *timer)
{
	struct watched *w = timer->data;

	if (w->reaped) {
		if (!w->exited)
			on_gone(w, w->how);
		return;
	}
	if (w->killed) {
		/* Not reaped within the grace: answer anyway (it keeps its slot). */
		answer_timeout(w);
		return;
	}
	/* The whole group: its sentries too, so nothing detaches or serves
	 * behind the caller's back; the caller detaches what it mounted. */
	w->killed = w->stopping = true;
	kill(-w->pid, SIGKILL);
	metrics_count(METRIC_HELPER_TIMEOUTS);
	log_error("idmapfs.start-deadline-expired", json_pack("{s:s, s:i, s:i}", "volume", w->name, "pid", (int)w->pid,
							      "timeout_s", (int)w->drv->cfg->helper_timeout_s));
	uv_timer_start(&w->deadline, on_deadline, KILL_GRACE_MS, 0);
}

/* The run state of pid from /proc/<pid>/stat ('R', 'S', 'D', 'T' stopped,
 * 't' stopped by a tracer...), or 0 when it cannot be read. */
static char run_state(pid_t pid)
{
	char path[64], stat[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	stat[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	const char *paren = strrchr(stat, ')');
	return paren && paren[1] == ' ' ? paren[2] : 0;
}

/*
 * A stopped idmapfs (SIGSTOP, SIGTSTP, a tracer) answers nothing, and the
 * kernel's FUSE requests have no timeout before Linux 6.14: the app would
 * wait in its read or write without end. So a stopped idmapfs is resumed
 * (SIGCONT) at the look that finds it, however often it is stopped; one
 * that SIGCONT leaves stopped (a tracer holds it) and that is still
 * stopped at the next look is killed, which fails the app's requests with
 * ENOTCONN and detaches the mount like any other death.
 */
static void on_stop_check(uv_timer_t *timer)
{
	struct driver *drv = timer->data;

	for (struct watched *w = drv->watched; w; w = w->next) {
		/* One being stopped too: SIGTERM waits for SIGCONT. */
		if (w->exited || !w->ready)
			continue;
		char state = run_state(w->pid);
		if (state != 'T' && state != 't') {
			w->resumed = false;
			continue;
		}
		if (!w->resumed) {
			/* SIGCONT wakes a stopped process within kill() itself:
			 * one that still looks stopped right after is held by a
			 * tracer, and gets one more interval to be let go. */
			kill(w->pid, SIGCONT);
			char after = run_state(w->pid);
			w->resumed = after == 'T' || after == 't';
			metrics_count(METRIC_IDMAPFS_RESUMED);
			log_error("idmapfs.resumed",
				  json_pack("{s:s, s:i, s:s, s:b}", "volume", w->name, "pid", (int)w->pid, "state",
					    state == 't' ? "traced" : "stopped", "still_stopped", w->resumed));
			continue;
		}
		log_error("idmapfs.stopped-killed",
			  json_pack("{s:s, s:i, s:s, s:i}", "volume", w->name, "pid", (int)w->pid, "state",
				    state == 't' ? "traced" : "stopped", "stopped_for_ms", STOP_CHECK_MS));
		/* Unless it was being stopped, its death is handled as one. */
		kill(w->pid, SIGKILL);
	}
}

/* The look at run states runs while anything is watched; it never keeps
 * the loop alive by itself. */
static void stop_check_start(struct driver *drv)
{
	if (!drv->stop_check_open) {
		uv_timer_init(drv->loop, &drv->stop_check);
		drv->stop_check.data = drv;
		uv_unref((uv_handle_t *)&drv->stop_check);
		drv->stop_check_open = true;
	}
	if (!uv_is_active((uv_handle_t *)&drv->stop_check))
		uv_timer_start(&drv->stop_check, on_stop_check, STOP_CHECK_MS, STOP_CHECK_MS);
}

static void on_slot(void *data);

void supervise_start(struct driver *drv, const char *name, const char *backing, const struct volume_spec *spec,
		     supervise_ready_cb cb, supervise_died_cb died, void *data)
{
	struct watched *w = calloc(1, sizeof(*w));

	if (!w || !(w->name = strdup(name)) || !(w->backing = strdup(backing))) {
		if (w)
			free(w->name);
		free(w);
		cb(error_new(ERROR_INTERNAL, "out of memory"), 0, data);
		return;
	}
	snprintf(w->uid, sizeof(w->uid), "%u", spec->uid);
	snprintf(w->gid, sizeof(w->gid), "%u", spec->gid);
	snprintf(w->app_uid, sizeof(w->app_uid), "%u", (unsigned)drv->cfg->app_uid);
	snprintf(w->app_gid, sizeof(w->app_gid), "%u", (unsigned)drv->cfg->app_gid);
	w->readonly = spec->readonly;
	w->drv = drv;
	w->child = true;
	w->pidfd = -1;
	w->cb = cb;
	w->died = died;
	w->data = data;
	/*
	 * A start is as much work for the cell as a helper run (a fork, a
	 * FUSE mount, the backing directory opened on the server): it waits
	 * for one of the same --max-parallel slots, and its deadline runs
	 * from its launch, so a storm of starts is served in turn rather than
	 * all at once and all too late.
	 */
	if (!helper_slot_wait(drv->helpers, on_slot, w)) {
		w->cb = NULL;
		free(w->backing);
		free(w->name);
		free(w);
		cb(error_new(ERROR_INTERNAL, "out of memory"), 0, data);
	}
}

/* Its turn: launch it. Only now is it watched (and seen by supervise_stop). */
static void on_slot(void *data)
{
	struct watched *w = data;
	struct driver *drv = w->drv;
	uv_process_options_t options = { 0 };
	uv_stdio_container_t stdio[3];
	char *argv[11];
	int rc;

	w->holds_slot = true;
	argv[0] = drv->idmapfs_helper;
	argv[1] = (char *)drv->cfg->mount_root;
	argv[2] = w->backing;
	argv[3] = w->name;
	argv[4] = w->uid;
	argv[5] = w->gid;
	argv[6] = w->app_uid;
	argv[7] = w->app_gid;
	argv[8] = w->readonly ? NFSV3_ARG_RO : NFSV3_ARG_RW;
	argv[9] = drv->cfg->idmapfs_passthrough_off ? "passthrough=off" : NULL;
	argv[10] = NULL;

	uv_pipe_init(drv->loop, &w->out, 0);
	uv_pipe_init(drv->loop, &w->err, 0);
	uv_timer_init(drv->loop, &w->deadline);
	w->out.data = w->err.data = w->deadline.data = w->process.data = w;
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&w->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&w->err;
	options.file = argv[0];
	options.args = argv;
	options.env = helper_env;
	options.exit_cb = on_exit_cb;
	/* Its own session: a daemon restart or upgrade leaves it serving. */
	options.flags = UV_PROCESS_DETACHED;
	options.stdio = stdio;
	options.stdio_count = 3;
	w->next = drv->watched;
	drv->watched = w;
	rc = uv_spawn(drv->loop, &w->process, &options);
	if (rc < 0) {
		w->exited = true;
		release_slot(w);
		answer(w, error_new(ERROR_MOUNT, "cannot start %s: %s", argv[0], uv_strerror(rc)));
		close_all(w);
		return;
	}
	w->pid = w->process.pid;
	w->started_ns = uv_hrtime();
	stop_check_start(drv);
	uv_read_start((uv_stream_t *)&w->out, on_alloc, on_out);
	uv_read_start((uv_stream_t *)&w->err, on_alloc, on_err);
	/* From this launch: the loop's time may be stale after the forks before it. */
	uv_update_time(drv->loop);
	uv_timer_start(&w->deadline, on_deadline, (uint64_t)drv->cfg->helper_timeout_s * 1000, 0);
}

void supervise_stop(struct driver *drv, const char *name)
{
	struct watched *w = find_live(drv, name);

	/* One killed or reaped already is not to be signalled again: its pid may be reused. */
	if (!w || w->killed || w->reaped)
		return;
	w->stopping = true;
	/* idmapfs detaches lazily and exits once the last open file closes. */
	kill(w->pid, SIGTERM);
}

static void on_pidfd(uv_poll_t *poll, int status, int events)
{
	struct watched *w = poll->data;
	on_gone(w, "exited while adopted");
}

/* Is pid an idmapfs serving name under our mount root? */
static bool is_our_idmapfs(struct driver *drv, pid_t pid, const char *name)
{
	char path[64], cmdline[8192];
	const char *args[4] = { 0 };
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (n <= 0)
		return false;
	cmdline[n] = '\0';
	const char *p = cmdline;
	for (int i = 0; i < 4 && p < cmdline + n; i++, p += strlen(p) + 1)
		args[i] = p;
	if (!args[3])
		return false;
	const char *base = strrchr(args[0], '/');
	return strcmp(base ? base + 1 : args[0], NFSV3_HELPER_IDMAPFS) == 0 &&
	       strcmp(args[1], drv->cfg->mount_root) == 0 && strcmp(args[3], name) == 0;
}

bool supervise_adopt(struct driver *drv, const char *name, pid_t pid, supervise_died_cb died)
{
	struct watched *w = NULL;
	int pidfd;

	/* Open the pidfd first: then the check below cannot race pid reuse. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return false;
	if (!is_our_idmapfs(drv, pid, name) || !(w = calloc(1, sizeof(*w))) || !(w->name = strdup(name))) {
		if (w)
			free(w);
		close(pidfd);
		return false;
	}
	w->drv = drv;
	w->pid = pid;
	w->pidfd = pidfd;
	w->ready = true;
	w->died = died;
	uv_poll_init(drv->loop, &w->poll, pidfd);
	w->poll.data = w;
	uv_poll_start(&w->poll, UV_READABLE, on_pidfd);
	w->next = drv->watched;
	drv->watched = w;
	stop_check_start(drv);
	metrics_count(METRIC_IDMAPFS_ADOPTIONS);
	log_info("idmapfs.adopted", json_pack("{s:s, s:i}", "volume", name, "pid", (int)pid));
	return true;
}

void supervise_let_go(struct driver *drv)
{
	/* Closing a process handle does not signal the process: each idmapfs
	 * keeps serving, and the next daemon adopts it from the state. */
	for (struct watched *w = drv->watched, *next; w; w = next) {
		next = w->next;
		if (!w->exited) {
			w->exited = true;
			close_all(w);
		}
	}
	if (drv->stop_check_open) {
		drv->stop_check_open = false;
		uv_close((uv_handle_t *)&drv->stop_check, NULL);
	}
}
