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
#include "process.h"
#include "supervise.h"

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
	bool child;          /* ours (else adopted by its pid) */
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
	struct process proc; /* its timer is the start deadline, then the grace to read stderr */
	uint64_t started_ns; /* uv_hrtime() at spawn: the start's duration */
	char out_buf[64], err_buf[512];
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

static void on_closed(struct process *proc)
{
	struct watched *w = proc->data;

	unlink_watched(w);
	if (!w->drv->watched && w->drv->stop_check_open)
		uv_timer_stop(&w->drv->stop_check);
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

static void close_all(struct watched *w)
{
	process_close(&w->proc);
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

/* Killed at its start deadline. The caller detaches whatever it mounted. */
static void answer_timeout(struct watched *w)
{
	if (w->cb)
		answer(w, error_new(ERROR_TIMEOUT, "%s %u s starting idmapfs for volume %s", NFSV3_ERR_TIMEOUT,
				    w->drv->cfg->helper_timeout_s, w->name));
}

static void on_idmapfs_exit(struct process *proc, int exit_status, int term_signal)
{
	struct watched *w = proc->data;

	if (!w->child) {
		on_gone(w, "exited while adopted");
		return;
	}
	if (term_signal)
		snprintf(w->how, sizeof(w->how), "killed by signal %d", term_signal);
	else
		snprintf(w->how, sizeof(w->how), "exited with status %d", exit_status);
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
	process_timer_start(proc, STDERR_GRACE_MS);
}

static void on_output(struct process *proc, int fd, size_t len)
{
	struct watched *w = proc->data;

	if (fd == STDERR_FILENO) {
		if (len == 0 && w->reaped && !w->exited)
			on_gone(w, w->how);
		return;
	}
	/* One killed at its deadline is not ready, whatever it wrote before it died. */
	if (len > 0 && !w->ready && !w->killed && strstr(w->out_buf, NFSV3_IDMAPFS_READY)) {
		w->ready = true;
		process_timer_stop(proc);
		release_slot(w);
		metrics_observe(METRIC_HELPER_IDMAPFS, (double)(uv_hrtime() - w->started_ns) / 1e9);
		log_info("idmapfs.ready", json_pack("{s:s, s:i}", "volume", w->name, "pid", (int)w->pid));
		answer(w, NULL);
	}
}

static void on_deadline(struct process *proc)
{
	struct watched *w = proc->data;

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
	process_kill_group(proc, SIGKILL);
	metrics_count(METRIC_HELPER_TIMEOUTS);
	log_error("idmapfs.start-deadline-expired", json_pack("{s:s, s:i, s:i}", "volume", w->name, "pid", (int)w->pid,
							      "timeout_s", (int)w->drv->cfg->helper_timeout_s));
	process_timer_start(proc, KILL_GRACE_MS);
}

static void watch_process(struct watched *w)
{
	process_init(&w->proc, w->drv->loop);
	w->proc.data = w;
	w->proc.on_exit = on_idmapfs_exit;
	w->proc.on_output = on_output;
	w->proc.on_timer = on_deadline;
	w->proc.on_closed = on_closed;
	w->proc.buf[STDOUT_FILENO] = w->out_buf;
	w->proc.cap[STDOUT_FILENO] = sizeof(w->out_buf);
	w->proc.buf[STDERR_FILENO] = w->err_buf;
	w->proc.cap[STDERR_FILENO] = sizeof(w->err_buf);
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
	/* Its own session: a daemon restart or upgrade leaves it serving. */
	struct process_spawn_options options = { .env = helper_env, .session = true, .capture_stdout = true };
	const char *argv[NFSV3_IDMAPFS_ARGC_MAX + 1] = {
		[0] = drv->idmapfs_helper,
		[NFSV3_IDMAPFS_ARG_ROOT] = drv->cfg->mount_root,
		[NFSV3_IDMAPFS_ARG_BACKING] = w->backing,
		[NFSV3_IDMAPFS_ARG_NAME] = w->name,
		[NFSV3_IDMAPFS_ARG_UID] = w->uid,
		[NFSV3_IDMAPFS_ARG_GID] = w->gid,
		[NFSV3_IDMAPFS_ARG_APP_UID] = w->app_uid,
		[NFSV3_IDMAPFS_ARG_APP_GID] = w->app_gid,
		[NFSV3_IDMAPFS_ARG_MODE] = w->readonly ? NFSV3_ARG_RO : NFSV3_ARG_RW,
		[NFSV3_IDMAPFS_ARG_PASSTHROUGH] = drv->cfg->idmapfs_passthrough_off ? "passthrough=off" : NULL,
	};
	int rc;

	w->holds_slot = true;
	options.argv = argv;

	watch_process(w);
	w->next = drv->watched;
	drv->watched = w;
	rc = process_spawn(&w->proc, &options);
	if (rc < 0) {
		w->exited = true;
		release_slot(w);
		answer(w, error_new(ERROR_MOUNT, "cannot start %s: %s", argv[0], uv_strerror(rc)));
		close_all(w);
		return;
	}
	w->pid = process_pid(&w->proc);
	w->started_ns = uv_hrtime();
	stop_check_start(drv);
	/* From this launch: the loop's time may be stale after the forks before it. */
	uv_update_time(drv->loop);
	process_timer_start(&w->proc, (uint64_t)drv->cfg->helper_timeout_s * 1000);
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

/* Is pid an idmapfs serving name under our mount root? */
static bool is_our_idmapfs(struct driver *drv, pid_t pid, const char *name)
{
	char path[64], cmdline[8192];
	const char *args[NFSV3_IDMAPFS_ARG_NAME + 1] = { 0 };
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
	for (int i = 0; i <= NFSV3_IDMAPFS_ARG_NAME && p < cmdline + n; i++, p += strlen(p) + 1)
		args[i] = p;
	if (!args[NFSV3_IDMAPFS_ARG_NAME])
		return false;
	const char *base = strrchr(args[0], '/');
	return strcmp(base ? base + 1 : args[0], NFSV3_HELPER_IDMAPFS) == 0 &&
	       strcmp(args[NFSV3_IDMAPFS_ARG_ROOT], drv->cfg->mount_root) == 0 &&
	       strcmp(args[NFSV3_IDMAPFS_ARG_NAME], name) == 0;
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
	w->ready = true;
	w->died = died;
	watch_process(w);
	process_adopt(&w->proc, pid, pidfd);
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
