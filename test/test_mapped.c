/*
 * Mapped volumes through the real daemon: idmapfs started, supervised,
 * adopted and stopped by it, over local directories, used as the app uid.
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "harness.h"


/* ---- mapped volumes: idmapfs under the daemon's supervision ---- */

static void create_mapped(const char *name)
{
	char body[1024];
	snprintf(body, sizeof(body), "{\"Name\":\"%s\",\"Opts\":{\"source\":\"file://%s\",\"uid\":\"1234\",\"gid\":\"1234\"}}",
		 name, src);
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE, body, NULL));
}

/* Run a shell command as the app uid 2000; returns its exit status. */
static int as_app(const char *command)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "setpriv --reuid 2000 --regid 2000 --clear-groups sh -c '%s'", command);
	return system(cmd);
}

static pid_t idmapfs_pid_of(const char *name)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "pgrep -o -f '^%s %s .* %s 1234 1234 2000 2000 rw$'",
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

/* Whether this kernel has FUSE passthrough (Linux 6.9). */
static bool passthrough_kernel(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	ck_assert_int_eq(uname(&u), 0);
	sscanf(u.release, "%u.%u", &major, &minor);
	return major > 6 || (major == 6 && minor >= 9);
}

static void wait_for_log(const char *text, int count, int ms)
{
	for (int i = 0; i < ms / 10 && daemon_log_count(&d, text) < count; i++)
		usleep(10000);
	ck_assert_msg(daemon_log_count(&d, text) >= count, "no \"%s\" in the log within %d ms", text, ms);
}

START_TEST(mapped_volume_writes_as_bound_ids)
{
	char cmd[1024];
	struct stat st;

	chmod(src, 0777);
	create_mapped("m1");
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"m1\"}", NULL));
	snprintf(cmd, sizeof(cmd), "echo data > %s/m1/f && test \"$(stat -c %%u:%%g %s/m1/f)\" = 2000:2000", d.root, d.root);
	ck_assert_int_eq(as_app(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/f", src);
	ck_assert_int_eq(stat(cmd, &st), 0);
	ck_assert_uint_eq(st.st_uid, 1234);
	ck_assert_uint_eq(st.st_gid, 1234);
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"m1\"}", NULL));
	ck_assert_int_eq(mounts_under(d.root), 0);
}
END_TEST

START_TEST(killed_idmapfs_is_noticed_and_remounted)
{
	char cmd[1024];
	pid_t pid;
	struct timespec t0, t1;

	chmod(src, 0777);
	create_mapped("k1");
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"k1\"}", NULL));
	pid = idmapfs_pid_of("k1");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(cmd, sizeof(cmd), "pkill -9 -s %d", (int)getsid(pid));
	ck_assert_int_eq(system(cmd), 0);
	wait_for_log("idmapfs.died", 1, 1000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 1000);
	wait_for_log("idmapfs.dead-mount-detached", 1, 2000);
	/* No "Transport endpoint is not connected" is left behind. */
	ck_assert_int_eq(mounts_under(d.root), 0);
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"k1\"}", NULL));
	snprintf(cmd, sizeof(cmd), "cat %s/k1/hello", d.root);
	ck_assert_int_eq(as_app(cmd), 0);
}
END_TEST

START_TEST(unmount_with_open_file_detaches_lazily)
{
	char cmd[1024];
	pid_t holder, pid;

	chmod(src, 0777);
	create_mapped("l1");
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"l1\"}", NULL));
	pid = idmapfs_pid_of("l1");
	snprintf(cmd, sizeof(cmd), "%s/l1/hello", d.root);
	if ((holder = fork()) == 0) {
		FILE *f;
		if (setgid(2000) != 0 || setuid(2000) != 0 || !(f = fopen(cmd, "r")))
			_exit(1);
		pause();
		_exit(0);
	}
	usleep(200000);
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"l1\"}", NULL));
	ck_assert_int_eq(mounts_under(d.root), 0);
	ck_assert_int_eq(kill(pid, 0), 0); /* still serving the open file */
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	for (int i = 0; i < 300 && kill(pid, 0) == 0; i++)
		usleep(10000);
	ck_assert_msg(kill(pid, 0) != 0, "idmapfs %d still running after the last user left", (int)pid);
}
END_TEST

START_TEST(restart_adopts_idmapfs_and_evacuate_stops_only_ours)
{
	char other_root[600], cmd[1400];
	pid_t pid, other;

	chmod(src, 0777);
	create_mapped("a1");
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"a1\"}", NULL));
	pid = idmapfs_pid_of("a1");
	daemon_kill9(&d);
	ck_assert_int_eq(kill(pid, 0), 0); /* it outlives the daemon */
	daemon_start(&d);
	wait_for_log("idmapfs.adopted", 1, 2000);
	ck_assert_int_eq(as_app("true"), 0);
	/* Someone else's idmapfs (another mount root) must survive /evacuate. */
	snprintf(other_root, sizeof(other_root), "%s/other", d.dir);
	mkdir(other_root, 0755);
	snprintf(cmd, sizeof(cmd), "%s %s %s x 1234 1234 2000 2000 rw > %s/other.out 2>&1 &",
		 harness_build_path("libexec/nfsv3driver/" NFSV3_HELPER_IDMAPFS), other_root, src, d.dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/other/x", d.dir);
	for (int i = 0; i < 300 && mounts_under(cmd) == 0; i++)
		usleep(10000);
	ck_assert_int_eq(mounts_under(cmd), 1);
	int status;
	json_decref(call_admin(&d, NFSV3_ADMIN_EVACUATE, &status));
	ck_assert_int_eq(status, 200);
	ck_assert_int_eq(mounts_under(d.root), 0);
	for (int i = 0; i < 300 && kill(pid, 0) == 0; i++)
		usleep(10000);
	ck_assert_msg(kill(pid, 0) != 0, "our adopted idmapfs survived /evacuate");
	ck_assert_int_eq(mounts_under(cmd), 1);
	snprintf(cmd, sizeof(cmd), "pgrep -f '^%s %s ' > %s/other.pid",
		 harness_build_path("libexec/nfsv3driver/" NFSV3_HELPER_IDMAPFS), other_root, d.dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/other.pid", d.dir);
	FILE *f = fopen(cmd, "r");
	ck_assert(f && fscanf(f, "%d", &other) == 1);
	fclose(f);
	kill(other, SIGTERM);
}
END_TEST

START_TEST(sigterm_leaves_idmapfs_serving)
{
	char cmd[1024];
	pid_t pid;
	int status;

	chmod(src, 0777);
	create_mapped("t1");
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"t1\"}", NULL));
	pid = idmapfs_pid_of("t1");
	status = daemon_stop(&d);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(kill(pid, 0), 0);
	snprintf(cmd, sizeof(cmd), "cat %s/t1/hello", d.root);
	ck_assert_int_eq(as_app(cmd), 0);
	daemon_start(&d);
	wait_for_log("idmapfs.adopted", 1, 2000);
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"t1\"}", NULL));
	ck_assert_int_eq(mounts_under(d.root), 0);
}
END_TEST

/* Count the processes a pgrep pattern (with its options) finds. */
static int pgrep_count(const char *args)
{
	char cmd[1200];
	int n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "pgrep -c %s", args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	if (fscanf(p, "%d", &n) != 1)
		n = 0;
	pclose(p);
	return n;
}

/*
 * --no-idmapfs-passthrough reaches idmapfs as passthrough=off: no
 * passthrough sentry beside it. Without the flag, idmapfs gets no option
 * (the default, auto), and on a kernel with passthrough runs a sentry.
 */
START_TEST(no_passthrough_flag_reaches_idmapfs)
{
	char args[1024], cmd[1024];
	pid_t pid;
	int status;

	chmod(src, 0777);
	create_mapped("t1");
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"t1\"}", NULL));
	pid = idmapfs_pid_of("t1");
	snprintf(args, sizeof(args), "-P %d -x idmapfs-pt", (int)pid);
	ck_assert_int_eq(pgrep_count(args), passthrough_kernel() ? 1 : 0);
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"t1\"}", NULL));

	status = daemon_stop(&d);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(d.extra + strlen(d.extra), sizeof(d.extra) - strlen(d.extra), " --no-idmapfs-passthrough");
	daemon_start(&d);
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"t1\"}", NULL));
	snprintf(args, sizeof(args), "-f '^%s %s .* t1 1234 1234 2000 2000 rw passthrough=off$'",
		 harness_build_path("libexec/nfsv3driver/" NFSV3_HELPER_IDMAPFS), d.root);
	/* The server and its unmount sentry. */
	ck_assert_int_ge(pgrep_count(args), 1);
	snprintf(args, sizeof(args), "-f '^%s %s .* t1 1234 1234 2000 2000 rw passthrough=off$' -o",
		 harness_build_path("libexec/nfsv3driver/" NFSV3_HELPER_IDMAPFS), d.root);
	snprintf(cmd, sizeof(cmd), "pgrep -c -P $(pgrep %s) -x idmapfs-pt", args);
	/* pgrep exits 1: no passthrough sentry beside this one. */
	ck_assert_int_ne(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "cat %s/t1/hello", d.root);
	ck_assert_int_eq(as_app(cmd), 0);
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"t1\"}", NULL));
	ck_assert_int_eq(mounts_under(d.root), 0);
}
END_TEST

static Suite *mapped_suite(void)
{
	Suite *s = suite_create("mapped");
	TCase *tc = tcase_create("idmapfs");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, mapped_volume_writes_as_bound_ids);
	tcase_add_test(tc, killed_idmapfs_is_noticed_and_remounted);
	tcase_add_test(tc, unmount_with_open_file_detaches_lazily);
	tcase_add_test(tc, restart_adopts_idmapfs_and_evacuate_stops_only_ours);
	tcase_add_test(tc, sigterm_leaves_idmapfs_serving);
	tcase_add_test(tc, no_passthrough_flag_reaches_idmapfs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	struct stat root;

	if (geteuid() != 0) {
		fprintf(stderr, "test_mapped: needs root for FUSE mounts; skipped\n");
		return 77;
	}
	/* The app uid must be able to walk from / to the mount root, as on any
	 * real machine; a chroot in a 0700 directory does not allow it. */
	if (stat("/", &root) != 0 || !(root.st_mode & S_IXOTH)) {
		fprintf(stderr, "test_mapped: / is not searchable by other uids here (a chroot?); skipped\n");
		return 77;
	}
	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		fprintf(stderr, "test_mapped: no /dev/fuse; skipped\n");
		return 77;
	}
	return harness_run(mapped_suite());
}
