/*
 * idmapfs faults under an app that writes in a loop, through the real
 * daemon: idmapfs SIGKILLed, SIGSTOPped, and stopped where SIGCONT cannot
 * resume it (a tracer's stop). The app must never wait more than 1 s for a
 * write, Unmount must answer within its deadline, and the next Mount of the
 * same volume must serve again.
 *
 * Each case runs twice: as the daemon starts idmapfs by default (FUSE
 * passthrough where the kernel has it) and with --no-idmapfs-passthrough
 * (every read and write through idmapfs). What the app sees when idmapfs
 * dies differs, as the README documents: without passthrough its writes
 * fail with ENOTCONN; with passthrough the kernel writes a file that was
 * already open straight to the backing file, so those writes go on (as the
 * bound ids, into the share) while nothing new can be opened.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "harness.h"

#define APP_UID 2000
#define WRITE_EVERY_MS 20
#define MAX_WAIT_MS 1000

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* What the app saw for one write: how long it took and its errno (0: written). */
struct outcome {
	double ms;
	int err;
};

struct app {
	pid_t pid;
	int results; /* read end: one struct outcome per write */
};

/*
 * The app: as uid 2000, open path (creating it) and write 4 KiB every
 * WRITE_EVERY_MS, reporting each write. A write that fails is reported and
 * the loop goes on with the same descriptor, as a logging app would.
 */
static void app_start(struct app *app, const char *path)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	app->pid = fork();
	ck_assert_int_ge(app->pid, 0);
	if (app->pid == 0) {
		close(fds[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgid(APP_UID) != 0 || setuid(APP_UID) != 0)
			_exit(1);
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			_exit(2);
		char block[4096];
		memset(block, 'x', sizeof(block));
		for (;;) {
			double t0 = now_ms();
			struct outcome o = { 0, 0 };
			if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
				o.err = errno ? errno : EIO;
			o.ms = now_ms() - t0;
			if (write(fds[1], &o, sizeof(o)) != sizeof(o))
				_exit(0);
			usleep(WRITE_EVERY_MS * 1000);
		}
	}
	close(fds[1]);
	app->results = fds[0];
}

/* After app_watch: when the first failed write was reported (ms since the
 * watch began, -1: none) and how many writes succeeded after it. */
static double first_failure_ms;
static int written_after_failure;

/*
 * Watch the app for ms: every write must be reported within MAX_WAIT_MS of
 * the previous report (else the app hangs in a write). Returns the count of
 * writes seen; *failed and *last_err tell how many failed and how.
 */
static int app_watch(struct app *app, int ms, int *failed, int *last_err, double *slowest)
{
	double start = now_ms(), end = start + ms;
	int writes = 0;
	*failed = 0;
	*slowest = 0;
	first_failure_ms = -1;
	written_after_failure = 0;
	while (now_ms() < end) {
		struct pollfd p = { .fd = app->results, .events = POLLIN };
		int ready = poll(&p, 1, MAX_WAIT_MS + WRITE_EVERY_MS * 5);
		ck_assert_msg(ready == 1, "the app's write has not returned for %d ms (after %d writes, %d failed)",
			      MAX_WAIT_MS + WRITE_EVERY_MS * 5, writes, *failed);
		struct outcome o;
		ck_assert_int_eq(read(app->results, &o, sizeof(o)), sizeof(o));
		writes++;
		if (o.ms > *slowest)
			*slowest = o.ms;
		if (o.err) {
			if (!*failed)
				first_failure_ms = now_ms() - start;
			(*failed)++;
			*last_err = o.err;
		} else if (*failed) {
			written_after_failure++;
		}
	}
	return writes;
}

static void app_stop(struct app *app)
{
	kill(app->pid, SIGKILL);
	waitpid(app->pid, NULL, 0);
	close(app->results);
}

/* errno of open(path, O_CREAT) as the app, 0 when it succeeded. */
static int app_create_errno(const char *path)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		int err = 0;
		if (setgid(APP_UID) != 0 || setuid(APP_UID) != 0)
			_exit(1);
		if (open(path, O_WRONLY | O_CREAT, 0644) < 0)
			err = errno;
		if (write(fds[1], &err, sizeof(err)) != sizeof(err))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	int err = -1;
	ck_assert_int_eq(read(fds[0], &err, sizeof(err)), sizeof(err));
	close(fds[0]);
	waitpid(pid, NULL, 0);
	return err;
}

static void create_mapped(const char *name)
{
	char body[1024];
	snprintf(body, sizeof(body), "{\"Name\":\"%s\",\"Opts\":{\"source\":\"file://%s\",\"uid\":\"1234\",\"gid\":\"1234\"}}",
		 name, src);
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE, body, NULL));
}

static pid_t idmapfs_pid_of(const char *name)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "pgrep -o -f '^%s %s .* %s 1234 1234 2000 2000 rw( passthrough=off)?$'",
		 harness_build_path("libexec/nfsv3driver/" NFSV3_HELPER_IDMAPFS), d.root, name);
	FILE *p = popen(cmd, "r");
	int pid = 0;
	if (p) {
		if (fscanf(p, "%d", &pid) != 1)
			pid = 0;
		pclose(p);
	}
	ck_assert_msg(pid > 0, "no idmapfs process serves %s", name);
	return pid;
}

/* Loop index 1: restart the daemon with --no-idmapfs-passthrough. */
static void use_mode(int mode)
{
	if (mode == 0)
		return;
	int status = daemon_stop(&d);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(d.extra + strlen(d.extra), sizeof(d.extra) - strlen(d.extra), " --no-idmapfs-passthrough");
	daemon_start(&d);
}

/* Whether idmapfs pid runs a passthrough sentry (the kernel does its I/O). */
static bool has_passthrough(pid_t pid)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "pgrep -P %d -x idmapfs-pt > /dev/null", (int)pid);
	return system(cmd) == 0;
}

static void wait_for_log(const char *text, int count, int ms)
{
	for (int i = 0; i < ms / 10 && daemon_log_count(&d, text) < count; i++)
		usleep(10000);
	ck_assert_msg(daemon_log_count(&d, text) >= count, "no \"%s\" in the log within %d ms", text, ms);
}

/* Unmount answers within its deadline; then a Mount serves again and the
 * app's writes land in the source as the bound ids. */
static void unmount_and_recover(const char *name)
{
	char body[256], path[700];
	snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", name);
	double t0 = now_ms();
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, body, NULL));
	double took = now_ms() - t0;
	ck_assert_msg(took < 5000, "Unmount took %.0f ms (its deadline is 30 s; nothing here should take more than 5)", took);
	ck_assert_int_eq(mounts_under(d.root), 0);

	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, body, NULL));
	struct app app;
	snprintf(path, sizeof(path), "%s/%s/after", d.root, name);
	app_start(&app, path);
	int failed, err = 0;
	double slowest;
	int writes = app_watch(&app, 500, &failed, &err, &slowest);
	app_stop(&app);
	ck_assert_msg(writes >= 3 && failed == 0, "after the remount: %d writes, %d failed (%s)", writes, failed,
		      strerror(err));
	struct stat st;
	snprintf(path, sizeof(path), "%s/after", src);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, 1234);
	ck_assert_int_gt(st.st_size, 0);
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, body, NULL));
	ck_assert_int_eq(mounts_under(d.root), 0);
}

/* Mount name, start the app writing to its "file"; returns the writes seen. */
static int start_writing(const char *name, struct app *app)
{
	char body[256], path[700];
	chmod(src, 0777);
	create_mapped(name);
	snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", name);
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, body, NULL));
	snprintf(path, sizeof(path), "%s/%s/file", d.root, name);
	app_start(app, path);
	int failed, err = 0;
	double slowest;
	int writes = app_watch(app, 500, &failed, &err, &slowest);
	ck_assert_msg(writes >= 3 && failed == 0, "before the fault: %d writes, %d failed (%s)", writes, failed,
		      strerror(err));
	return writes;
}

/*
 * What the app sees once idmapfs is gone (killed, by us or by the daemon),
 * having seen `before` writes succeed before the fault: either way no write
 * waits, the dead mount is detached and nothing new can be created there.
 * Without passthrough the writes fail with ENOTCONN from then on. With
 * passthrough they go on: the kernel writes the open file to the backing
 * file itself, and every block lands in the source as the bound owner.
 */
static int watch_after_the_death(struct app *app, bool passthrough, int ms, int grace)
{
	int failed, err = 0;
	double slowest;
	int writes = app_watch(app, ms, &failed, &err, &slowest);
	ck_assert_msg(slowest < MAX_WAIT_MS + grace, "a write took %.0f ms", slowest);
	if (passthrough) {
		ck_assert_msg(failed == 0, "with passthrough: %d of %d writes failed (%s)", failed, writes,
			      strerror(err));
	} else {
		ck_assert_msg(failed > 0, "after the death: %d writes, none failed", writes);
		ck_assert_msg(first_failure_ms < MAX_WAIT_MS, "the first write failed %.0f ms after the fault",
			      first_failure_ms);
		ck_assert_msg(written_after_failure == 0, "%d writes succeeded after the first failure",
			      written_after_failure);
		ck_assert_msg(err == ENOTCONN, "the app saw %s, expected ENOTCONN", strerror(err));
	}
	return writes;
}

/* After watch_after_the_death saw `writes` (and the fault `before`): the
 * death is logged, the mount detached, the data where it belongs. */
static void check_the_dead_mount(struct app *app, const char *name, bool passthrough, int before, int writes)
{
	wait_for_log("idmapfs.died", 1, 2000);
	/* The dead mount is detached and its mountpoint removed: the app can
	 * create nothing there (its data never lands on the cell's disk
	 * instead of the share). In a container, whose bind of the mountpoint
	 * still holds the dead mount, opens fail with ENOTCONN instead. */
	wait_for_log("idmapfs.dead-mount-detached", 1, 2000);
	char path[700];
	snprintf(path, sizeof(path), "%s/%s/new", d.root, name);
	int open_err = app_create_errno(path);
	ck_assert_msg(open_err == ENOENT || open_err == EACCES, "a new file after the death: %s, expected ENOENT",
		      open_err ? strerror(open_err) : "created");
	if (passthrough) {
		/* One more block may be on its way when the watch ends. */
		struct stat st;
		app_stop(app);
		snprintf(path, sizeof(path), "%s/file", src);
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_uint_eq(st.st_uid, 1234);
		ck_assert_msg(st.st_size >= (off_t)(before + writes) * 4096,
			      "the source file holds %lld bytes, the app wrote %d blocks", (long long)st.st_size,
			      before + writes);
	} else {
		app_stop(app);
	}
}

START_TEST(sigkill_under_a_writing_app)
{
	struct app app;
	use_mode(_i);
	int before = start_writing("k1", &app);
	pid_t pid = idmapfs_pid_of("k1");
	bool passthrough = has_passthrough(pid);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	int writes = watch_after_the_death(&app, passthrough, 1500, 0);
	check_the_dead_mount(&app, "k1", passthrough, before, writes);
	unmount_and_recover("k1");
}
END_TEST

START_TEST(sigstop_under_a_writing_app)
{
	struct app app;
	use_mode(_i);
	start_writing("s1", &app);
	pid_t pid = idmapfs_pid_of("s1");
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);

	/* The daemon resumes it: no write waits long, none fails. */
	int failed, err = 0;
	double slowest;
	int writes = app_watch(&app, 1500, &failed, &err, &slowest);
	ck_assert_msg(failed == 0, "after SIGSTOP: %d of %d writes failed (%s)", failed, writes, strerror(err));
	ck_assert_msg(slowest < MAX_WAIT_MS, "a write took %.0f ms", slowest);
	wait_for_log("idmapfs.resumed", 1, 1000);
	ck_assert_int_eq(kill(pid, 0), 0);
	/* Stopped again and again, it is resumed each time. */
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(kill(pid, SIGSTOP), 0);
		writes = app_watch(&app, 600, &failed, &err, &slowest);
		ck_assert_msg(failed == 0 && slowest < MAX_WAIT_MS, "stop %d: %d of %d writes failed, slowest %.0f ms",
			      i + 2, failed, writes, slowest);
	}
	app_stop(&app);
	/* Stopped when it is asked to exit: it still exits. */
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	unmount_and_recover("s1");
	for (int i = 0; i < 200 && kill(pid, 0) == 0; i++)
		usleep(10000);
	ck_assert_msg(kill(pid, 0) != 0, "the stopped idmapfs %d outlived its Unmount", (int)pid);
}
END_TEST

/* A stop that SIGCONT cannot end (a tracer holds it): the daemon kills it
 * and the app sees the same as for SIGKILL, within 1 s. */
START_TEST(traced_stop_under_a_writing_app)
{
	struct app app;
	use_mode(_i);
	int before = start_writing("t1", &app);
	pid_t pid = idmapfs_pid_of("t1");
	bool passthrough = has_passthrough(pid);
	/* Every thread, as a debugger stops them all. */
	char tasks[64];
	snprintf(tasks, sizeof(tasks), "/proc/%d/task", (int)pid);
	DIR *dir = opendir(tasks);
	ck_assert_ptr_nonnull(dir);
	int threads = 0;
	for (struct dirent *e; (e = readdir(dir));) {
		pid_t tid = atoi(e->d_name);
		if (tid <= 0)
			continue;
		ck_assert_int_eq(ptrace(PTRACE_SEIZE, tid, NULL, NULL), 0);
		ck_assert_int_eq(ptrace(PTRACE_INTERRUPT, tid, NULL, NULL), 0);
		threads++;
	}
	closedir(dir);
	ck_assert_int_gt(threads, 0);
	pid_t tids[64];
	int n_tids = 0;
	dir = opendir(tasks);
	for (struct dirent *e; dir && (e = readdir(dir)) && n_tids < 64;)
		if (atoi(e->d_name) > 0)
			tids[n_tids++] = atoi(e->d_name);
	if (dir)
		closedir(dir);

	int writes = watch_after_the_death(&app, passthrough, 2000, 100);
	wait_for_log("idmapfs.stopped-killed", 1, 100);
	/* Its exit goes to the tracer first (us), then to its parent, the
	 * daemon. */
	for (int tries = 0; tries < 200 && daemon_log_count(&d, "idmapfs.died") == 0; tries++) {
		for (int i = 0; i < n_tids; i++)
			if (tids[i] && waitpid(tids[i], NULL, __WALL | WNOHANG) != 0)
				tids[i] = 0;
		usleep(10000);
	}
	wait_for_log("idmapfs.died", 1, 10);
	check_the_dead_mount(&app, "t1", passthrough, before, writes);
	unmount_and_recover("t1");
}
END_TEST

static Suite *supervise_suite(void)
{
	Suite *s = suite_create("supervise");
	TCase *tc = tcase_create("idmapfs-faults");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, sigkill_under_a_writing_app, 0, 2);
	tcase_add_loop_test(tc, sigstop_under_a_writing_app, 0, 2);
	tcase_add_loop_test(tc, traced_stop_under_a_writing_app, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	struct stat root;

	if (geteuid() != 0) {
		fprintf(stderr, "test_supervise: needs root for FUSE mounts; skipped\n");
		return 77;
	}
	if (stat("/", &root) != 0 || !(root.st_mode & S_IXOTH)) {
		fprintf(stderr, "test_supervise: / is not searchable by other uids here (a chroot?); skipped\n");
		return 77;
	}
	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		fprintf(stderr, "test_supervise: no /dev/fuse; skipped\n");
		return 77;
	}
	return harness_run(supervise_suite());
}
