/*
 * Unit suite for driver/supervise.c (test_supervise drives the real
 * idmapfs through the daemon; this one drives supervise alone), on a real
 * libuv loop and helper pool, with a fake idmapfs: a shell script that
 * records its argv and, as the test's "mode" file says, reports ready and
 * serves, never reports ready, or fails as the real one fails.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "nfsv3driver.h"
#include "harness.h"
#include "harness_fake.h"
#include "helper.h"
#include "log.h"
#include "supervise.h"

static char dir[64], calls[128];
static uv_loop_t loop;
static struct config cfg;
static struct driver drv;
static struct volume_spec spec = { .kind = SOURCE_LOCAL, .mapped = true, .uid = 1234, .gid = 1235 };

struct start {
	bool done;
	pid_t pid;
	char err[512];
};

static int deaths;
static char died_name[64];

/* After the preamble (harness_fake.h): what the test's mode says. */
static const char fake_idmapfs[] =
	"echo $$ >> \"$d/pids\"\n"
	"case $mode in ready) printf '" NFSV3_IDMAPFS_READY "'; exec >/dev/null ;; esac\n"
	"case $mode in ready|never) while :; do /bin/sleep 1; done ;; esac\n"
	"if [ \"$mode\" = fail ]; then\n"
	"	echo \"" NFSV3_HELPER_IDMAPFS ": backing directory /nowhere: No such file or directory\" >&2\n"
	"	exit 3\n"
	"fi\n"
	"exit 1\n";

static void set_mode(const char *mode)
{
	fake_helper_mode(dir, mode);
}

/* How many times the fake was started. */
static int starts(void)
{
	return fake_helper_runs(dir, NULL);
}

/* The pid of the fake's latest start (it records its own). */
static pid_t last_pid(void)
{
	char path[128];
	int pid = 0, n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/pids", dir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fscanf(f, "%d", &n) == 1)
		pid = n;
	fclose(f);
	ck_assert_int_gt(pid, 0);
	return pid;
}

static bool alive(pid_t pid)
{
	char path[64], state = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return false;
	if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
		state = '?';
	fclose(f);
	return state != 'Z' && state != '?';
}

static void setup(void)
{
	char root[160];

	snprintf(dir, sizeof(dir), "/tmp/test_supervisor.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(calls, sizeof(calls), "%s/calls", dir);
	fake_helper_install(dir, NFSV3_HELPER_IDMAPFS, fake_idmapfs, drv.idmapfs_helper, sizeof(drv.idmapfs_helper));
	snprintf(root, sizeof(root), "%s/root", dir);
	ck_assert_int_eq(mkdir(root, 0755), 0);
	log_setup("test_supervisor", LOG_ERROR);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	cfg = (struct config){ .mount_root = strdup(root), .helper_timeout_s = 1, .max_parallel = 2,
			       .app_uid = 2000, .app_gid = 2000 };
	drv.loop = &loop;
	drv.cfg = &cfg;
	drv.watched = NULL;
	drv.stop_check_open = false;
	drv.helpers = helper_pool_new(&loop, cfg.max_parallel, cfg.helper_timeout_s);
	ck_assert_ptr_nonnull(drv.helpers);
	deaths = 0;
	died_name[0] = '\0';
}

static void teardown(void)
{
	char cmd[512];

	/* Whatever a failed check left running: the fake's own pids, if they still run it. */
	snprintf(cmd, sizeof(cmd),
		 "for p in $(cat '%s/pids' 2>/dev/null); do grep -qs '%s' /proc/$p/cmdline && kill -KILL $p; done; "
		 "rm -rf '%s'",
		 dir, dir, dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_supervisor: cleanup of %s failed\n", dir);
}

static void on_ready(struct error *err, pid_t pid, void *data)
{
	struct start *s = data;

	s->done = true;
	s->pid = pid;
	if (err) {
		snprintf(s->err, sizeof(s->err), "%s", err->message);
		error_free(err);
	}
}

static void on_died(struct driver *which, const char *name)
{
	deaths++;
	snprintf(died_name, sizeof(died_name), "%s", name);
}

/* Run the loop until cond() holds or ms pass; returns cond(). */
static bool spin(bool (*cond)(void *), void *arg, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (cond(arg))
			return true;
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	return cond(arg);
}

static bool started(void *arg)
{
	return ((struct start *)arg)->done;
}

static bool dead(void *arg)
{
	return deaths > 0;
}

static bool gone(void *arg)
{
	return !alive(*(pid_t *)arg);
}

/* Start name on backing with the fake in mode, and run the loop until its start is answered. */
static void start_one(const char *mode, const char *name, const char *backing, struct start *s)
{
	set_mode(mode);
	supervise_start(&drv, name, backing, &spec, on_ready, on_died, s);
	ck_assert(spin(started, s, 5000));
}

START_TEST(ready_then_killed_is_a_death)
{
	struct start s = { 0 };

	start_one("ready", "v1", "/backing", &s);
	ck_assert_msg(s.err[0] == '\0', "%s", s.err);
	ck_assert_int_gt(s.pid, 0);
	ck_assert(alive(s.pid));
	/* The argv idmapfs gets: root, backing, name, bound ids, app ids, mode. */
	char line[512] = "", want[512];
	FILE *f = fopen(calls, "r");
	ck_assert(f && fgets(line, sizeof(line), f));
	fclose(f);
	snprintf(want, sizeof(want), "%s /backing v1 1234 1235 2000 2000 rw\n", cfg.mount_root);
	ck_assert_str_eq(line, want);

	ck_assert_int_eq(kill(s.pid, SIGKILL), 0);
	ck_assert(spin(dead, NULL, 5000));
	ck_assert_int_eq(deaths, 1);
	ck_assert_str_eq(died_name, "v1");
}
END_TEST

/* Asked to stop, it exits, and that is no death. */
START_TEST(stopped_is_no_death)
{
	struct start s = { 0 };

	start_one("ready", "v2", "/backing", &s);
	ck_assert_msg(s.err[0] == '\0', "%s", s.err);
	supervise_stop(&drv, "v2");
	ck_assert_msg(spin(gone, &s.pid, 5000), "idmapfs %d still runs after supervise_stop", (int)s.pid);
	spin(dead, NULL, 300);
	ck_assert_int_eq(deaths, 0);
}
END_TEST

/* Never ready: killed at the deadline, and the caller told so. */
START_TEST(never_ready_is_killed_at_the_deadline)
{
	struct start s = { 0 };
	pid_t pid;

	start_one("never", "v3", "/backing", &s);
	ck_assert_msg(strstr(s.err, NFSV3_ERR_TIMEOUT) != NULL, "\"%s\"", s.err);
	/* A failed start answers no pid; the fake's own record says which to look for. */
	ck_assert_int_eq(s.pid, 0);
	ck_assert_int_eq(starts(), 1);
	pid = last_pid();
	ck_assert_msg(spin(gone, &pid, 3000), "the start killed at its deadline, %d, still runs", (int)pid);
	ck_assert_int_eq(deaths, 0);
}
END_TEST

/* A refusal reaches the caller as the helper's own line. */
START_TEST(a_refusal_is_the_helpers_line)
{
	struct start s = { 0 };

	start_one("fail", "v4", "/nowhere", &s);
	ck_assert_msg(strstr(s.err, "backing directory /nowhere: No such file or directory") != NULL, "\"%s\"",
		      s.err);
	ck_assert_int_eq(deaths, 0);
}
END_TEST

static bool all_done(void *arg)
{
	struct start *s = arg;

	for (int i = 0; i < 4; i++)
		if (!s[i].done)
			return false;
	return true;
}

/* Starts take --max-parallel slots: with 2, four that never get ready run two by two. */
START_TEST(starts_wait_for_a_slot)
{
	struct start s[4] = { 0 };
	char name[8];

	set_mode("never");
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "q%d", i);
		supervise_start(&drv, name, "/backing", &spec, on_ready, on_died, &s[i]);
	}
	for (int i = 0; i < 500; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ck_assert_int_eq(starts(), 2);
	ck_assert(spin(all_done, s, 8000));
	ck_assert_int_eq(starts(), 4);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(strstr(s[i].err, NFSV3_ERR_TIMEOUT) != NULL, "start %d: \"%s\"", i, s[i].err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("supervisor");
	TCase *tc = tcase_create("supervisor");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, ready_then_killed_is_a_death);
	tcase_add_test(tc, stopped_is_no_death);
	tcase_add_test(tc, never_ready_is_killed_at_the_deadline);
	tcase_add_test(tc, a_refusal_is_the_helpers_line);
	tcase_add_test(tc, starts_wait_for_a_slot);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
