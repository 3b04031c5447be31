/*
 * nfsv3driver-mount, driven as the daemon drives it: the real binary with a
 * fixed argv, its exit code and its one line of stderr. Needs root (it
 * mounts); skips with 77 otherwise.
 *
 * Every test runs in Check's forked child, which first moves into a private
 * mount namespace and mounts its own tmpfs on a directory made under /tmp,
 * so a failing test can never leave a mount on the host. Each test still
 * cleans up what it mounted, and the teardown asserts that nothing is left
 * below the tmpfs in /proc/self/mountinfo.
 *
 * The capability drop is checked from outside, on the real helper: its
 * stderr is a pipe filled to the brim, so after dropping privileges and
 * failing on purpose it blocks writing its error line, and the test reads
 * /proc/<pid>/status meanwhile. No test-only code path exists in the helper.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "harness.h"

#define NOBODY 65534

static char helper[4096];
/* Made once by main(); each test's child mounts its own tmpfs on it. */
static char base[] = "/tmp/nfsv3-mounter-XXXXXX";
static char root[sizeof(base) + 16], source_dir[sizeof(base) + 16];

/* How the child that runs the helper is prepared before exec. */
enum run_as {
	RUN_ROOT,          /* as the test: root with every capability */
	RUN_NOBODY,        /* uid/gid 65534, no capabilities */
	RUN_NOBODY_CAPS,   /* uid/gid 65534 with the helper's file capabilities, as ambient ones */
	RUN_NO_OPEN_TREE,  /* root, open_tree fails with ENOSYS (an old kernel) */
	RUN_NO_SETATTR,    /* root, mount_setattr fails with ENOSYS */
	RUN_NO_OPENAT2,    /* root, openat2 fails with ENOSYS (before Linux 5.6) */
};

struct result {
	int code;        /* exit code, or -1 if killed */
	char err[2048];  /* everything on stderr */
};

static void write_file(const char *path, const char *text)
{
	FILE *file = fopen(path, "w");

	ck_assert_msg(file != NULL, "fopen %s: %s", path, strerror(errno));
	fputs(text, file);
	ck_assert_int_eq(fclose(file), 0);
}

static void fail_syscall(int nr)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		_exit(120);
}

/* In the forked child: become uid/gid 65534, keeping caps (a capability mask) as ambient ones. */
static void become_nobody(uint32_t caps)
{
	struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};

	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(0, NULL) != 0 ||
	    setresgid(NOBODY, NOBODY, NOBODY) != 0 || setresuid(NOBODY, NOBODY, NOBODY) != 0)
		_exit(121);
	data[0].effective = data[0].permitted = data[0].inheritable = caps;
	if (syscall(SYS_capset, &header, data) != 0)
		_exit(122);
	for (int cap = 0; cap < 32; cap++) {
		if ((caps & (1u << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
			_exit(123);
	}
}

/* Fork and exec the helper with argv (NULL-terminated, verb first), stderr on err_fd. */
static pid_t spawn_helper(enum run_as as, int err_fd, const char *const *args)
{
	const char *argv[16] = {helper};
	size_t n = 1;
	pid_t pid;

	for (; args[n - 1] != NULL; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid > 0)
		return pid;
	if (dup2(err_fd, STDERR_FILENO) < 0)
		_exit(124);
	switch (as) {
	case RUN_ROOT:
		break;
	case RUN_NOBODY:
		become_nobody(0);
		break;
	case RUN_NOBODY_CAPS:
		become_nobody(1u << CAP_SYS_ADMIN | 1u << CAP_DAC_READ_SEARCH);
		break;
	case RUN_NO_OPEN_TREE:
		fail_syscall(SYS_open_tree);
		break;
	case RUN_NO_SETATTR:
		fail_syscall(SYS_mount_setattr);
		break;
	case RUN_NO_OPENAT2:
		fail_syscall(SYS_openat2);
		break;
	}
	execv(helper, (char *const *)argv);
	_exit(127);
}

static struct result run_as_v(enum run_as as, const char *const *args)
{
	struct result result = {.code = -1};
	size_t len = 0;
	ssize_t got;
	int pipe_fds[2], status;
	pid_t pid;

	ck_assert_int_eq(pipe2(pipe_fds, O_CLOEXEC), 0);
	pid = spawn_helper(as, pipe_fds[1], args);
	close(pipe_fds[1]);
	while ((got = read(pipe_fds[0], result.err + len, sizeof(result.err) - 1 - len)) > 0)
		len += (size_t)got;
	result.err[len] = '\0';
	close(pipe_fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status))
		result.code = WEXITSTATUS(status);
	return result;
}

#define RUN_AS(as, ...) run_as_v(as, (const char *const[]){__VA_ARGS__, NULL})
#define RUN(...) RUN_AS(RUN_ROOT, __VA_ARGS__)

static void expect_ok(struct result result)
{
	ck_assert_msg(result.code == 0 && result.err[0] == '\0',
		      "helper failed with %d: %s", result.code, result.err);
}

/* Exit code as named, and exactly one line "nfsv3driver-mount: ...<needle>..." on stderr. */
static void expect_failure(struct result result, int code, const char *needle)
{
	harness_expect_refusal(NFSV3_HELPER_MOUNT, result.code, result.err, code, needle);
}

/*
 * The one mount at point has each per-mount option in want (comma
 * separated: "ro,noexec"), and nosuid and nodev, as every bind has.
 */
static void expect_mount_options(const char *point, const char *want)
{
	char line[4096], here[4096], opts[4096], options[4096] = "", wanted[256], item[64];
	int count = 0;
	FILE *file = fopen("/proc/self/mountinfo", "re");

	ck_assert_ptr_nonnull(file);
	while (fgets(line, sizeof(line), file) != NULL) {
		ck_assert_int_eq(sscanf(line, "%*s %*s %*s %*s %4095s %4095s", here, opts), 2);
		if (strcmp(here, point) == 0) {
			snprintf(options, sizeof(options), ",%s,", opts);
			count++;
		}
	}
	fclose(file);
	ck_assert_msg(count == 1, "%d mounts at %s", count, point);
	snprintf(wanted, sizeof(wanted), "%s,nosuid,nodev", want);
	for (char *save = NULL, *opt = strtok_r(wanted, ",", &save); opt != NULL; opt = strtok_r(NULL, ",", &save)) {
		snprintf(item, sizeof(item), ",%s,", opt);
		ck_assert_msg(strstr(options, item) != NULL, "%s: options %s lack %s", point, options, opt);
	}
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void expect_nothing_mounted(const char *name)
{
	char path[4096];

	path_join(path, sizeof(path), root, name);
	ck_assert_int_eq(mounts_under(base), 1);
	ck_assert_msg(!exists(path), "%s was left behind", path);
}

static void make_base(void)
{
	snprintf(helper, sizeof(helper), "%s", harness_build_path(NFSV3_HELPER_SUBDIR "/" NFSV3_HELPER_MOUNT));
	if (mkdtemp(base) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(root, sizeof(root), "%s/root", base);
	snprintf(source_dir, sizeof(source_dir), "%s/source_dir", base);
}

static void remove_base(void)
{
	rmdir(base);
}

static void setup(void)
{
	char file[4096];

	ck_assert_msg(access(helper, X_OK) == 0, "%s: %s", helper, strerror(errno));
	ck_assert_msg(harness_private_tmpfs(base, MS_NOSUID | MS_NODEV, "mode=0755") == 0, "tmpfs on %s: %s", base,
		      strerror(errno));
	ck_assert_int_eq(mkdir(root, 0755), 0);
	ck_assert_int_eq(mkdir(source_dir, 0755), 0);
	path_join(file, sizeof(file), source_dir, "hello");
	write_file(file, "hello\n");
}

static void teardown(void)
{
	ck_assert_msg(mounts_under(base) == 1, "mounts left below %s", base);
	ck_assert_int_eq(umount2(base, 0), 0);
	ck_assert_int_eq(mounts_under(base), 0);
}

/* ---- bind ------------------------------------------------------------ */

START_TEST(test_bind_rw_write)
{
	char path[4096], back[4096];

	expect_ok(RUN("bind", root, source_dir, "vol", "rw"));
	path_join(path, sizeof(path), root, "vol/written");
	write_file(path, "through the bind\n");
	path_join(back, sizeof(back), source_dir, "written");
	ck_assert(exists(back));
	expect_ok(RUN("unmount", root, "vol", "lazy"));
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_bind_ro_erofs)
{
	char path[4096];

	expect_ok(RUN("bind", root, source_dir, "vol", "ro"));
	path_join(path, sizeof(path), root, "vol/written");
	ck_assert_int_eq(open(path, O_WRONLY | O_CREAT, 0644), -1);
	ck_assert_int_eq(errno, EROFS);
	path_join(path, sizeof(path), root, "vol/hello");
	ck_assert(access(path, R_OK) == 0);
	expect_ok(RUN("unmount", root, "vol", "lazy"));
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_bind_existing_empty_dir)
{
	char point[4096];

	path_join(point, sizeof(point), root, "vol");
	ck_assert_int_eq(mkdir(point, 0700), 0);
	expect_ok(RUN("bind", root, source_dir, "vol", "rw"));
	ck_assert_int_eq(mounts_under(base), 2);
	expect_ok(RUN("unmount", root, "vol", "lazy"));
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_bind_already_mounted)
{
	expect_ok(RUN("bind", root, source_dir, "vol", "rw"));
	expect_failure(RUN("bind", root, source_dir, "vol", "rw"), NFSV3_EXIT_REFUSED, "vol: already mounted");
	ck_assert_int_eq(mounts_under(base), 2);
	expect_ok(RUN("unmount", root, "vol", "lazy"));
	expect_nothing_mounted("vol");
}
END_TEST

/* The helper must not care that its root is a bind mount rather than a plain directory. */
START_TEST(test_bind_root_on_bind_mount)
{
	char real[4096], bound[4096], point[4096];

	path_join(real, sizeof(real), base, "real");
	path_join(bound, sizeof(bound), base, "bound");
	ck_assert_int_eq(mkdir(real, 0755), 0);
	ck_assert_int_eq(mkdir(bound, 0755), 0);
	ck_assert_int_eq(mount(real, bound, NULL, MS_BIND, NULL), 0);
	expect_ok(RUN("bind", bound, source_dir, "vol", "ro"));
	path_join(point, sizeof(point), bound, "vol/hello");
	ck_assert(access(point, R_OK) == 0);
	expect_ok(RUN("unmount", bound, "vol", "lazy"));
	path_join(point, sizeof(point), real, "vol");
	ck_assert(!exists(point));
	ck_assert_int_eq(umount2(bound, 0), 0);
}
END_TEST

/* The kernel refuses the clone of an unbindable mount after the mountpoint was made: it must go again. */
START_TEST(test_bind_failure_removes_mountpoint)
{
	char unbindable[4096];

	path_join(unbindable, sizeof(unbindable), base, "unbindable");
	ck_assert_int_eq(mkdir(unbindable, 0755), 0);
	ck_assert_int_eq(mount("nfsv3-test", unbindable, "tmpfs", 0, NULL), 0);
	ck_assert_int_eq(mount(NULL, unbindable, NULL, MS_UNBINDABLE, NULL), 0);
	expect_failure(RUN("bind", root, unbindable, "vol", "rw"), NFSV3_EXIT_MOUNT, "cannot clone");
	ck_assert_int_eq(umount2(unbindable, 0), 0);
	expect_nothing_mounted("vol");
}
END_TEST

/* A ro bind refuses writes, a rw one takes them; both are nosuid,nodev. */
static void check_bind(enum run_as as)
{
	char point[4096], path[4096];

	path_join(point, sizeof(point), root, "vol");
	expect_ok(RUN_AS(as, "bind", root, source_dir, "vol", "ro"));
	expect_mount_options(point, "ro");
	path_join(path, sizeof(path), point, "written");
	ck_assert_int_eq(open(path, O_WRONLY | O_CREAT, 0644), -1);
	ck_assert_int_eq(errno, EROFS);
	expect_ok(RUN("unmount", root, "vol", "lazy"));

	expect_ok(RUN_AS(as, "bind", root, source_dir, "vol", "rw"));
	expect_mount_options(point, "rw");
	write_file(path, "through the bind\n");
	expect_ok(RUN("unmount", root, "vol", "lazy"));
	expect_nothing_mounted("vol");
}

START_TEST(test_bind_nosuid_nodev)
{
	check_bind(RUN_ROOT);
}
END_TEST

/* Kernels before 5.2 (open_tree) and 5.12 (mount_setattr): bind(2) and a bind remount instead. */
START_TEST(test_bind_fallback_without_open_tree)
{
	check_bind(RUN_NO_OPEN_TREE);
}
END_TEST

START_TEST(test_bind_fallback_without_mount_setattr)
{
	check_bind(RUN_NO_SETATTR);
}
END_TEST

/* A rw bind of a ro,noexec source stays ro,noexec, with either API. */
START_TEST(test_bind_keeps_source_restrictions)
{
	static const enum run_as modes[] = {RUN_ROOT, RUN_NO_OPEN_TREE, RUN_NO_SETATTR};
	char locked[4096], point[4096];

	path_join(locked, sizeof(locked), base, "locked");
	path_join(point, sizeof(point), root, "vol");
	ck_assert_int_eq(mkdir(locked, 0755), 0);
	ck_assert_int_eq(mount("nfsv3-test", locked, "tmpfs", MS_RDONLY | MS_NOEXEC, NULL), 0);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		expect_ok(RUN_AS(modes[i], "bind", root, locked, "vol", "rw"));
		expect_mount_options(point, "ro,noexec");
		expect_ok(RUN("unmount", root, "vol", "lazy"));
	}
	ck_assert_int_eq(umount2(locked, 0), 0);
	expect_nothing_mounted("vol");
}
END_TEST

/* ---- unmount --------------------------------------------------------- */

START_TEST(test_unmount_removes_mount_and_dir)
{
	char point[4096];

	path_join(point, sizeof(point), root, "vol");
	expect_ok(RUN("bind", root, source_dir, "vol", "rw"));
	ck_assert_int_eq(mounts_under(base), 2);
	expect_ok(RUN("unmount", root, "vol", "lazy"));
	ck_assert_int_eq(mounts_under(base), 1);
	ck_assert(!exists(point));
}
END_TEST

START_TEST(test_unmount_twice)
{
	expect_ok(RUN("bind", root, source_dir, "vol", "rw"));
	expect_ok(RUN("unmount", root, "vol", "lazy"));
	expect_ok(RUN("unmount", root, "vol", "lazy"));
	expect_ok(RUN("unmount", root, "vol", "force"));
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_unmount_force)
{
	expect_ok(RUN("bind", root, source_dir, "vol", "rw"));
	expect_ok(RUN("unmount", root, "vol", "force"));
	expect_nothing_mounted("vol");
}
END_TEST

/* Lazy detach works while a file under the mount is still open. */
START_TEST(test_unmount_busy)
{
	char path[4096];
	int fd;

	expect_ok(RUN("bind", root, source_dir, "vol", "rw"));
	path_join(path, sizeof(path), root, "vol/hello");
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	expect_ok(RUN("unmount", root, "vol", "force"));
	ck_assert_int_eq(close(fd), 0);
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_unmount_not_mounted_dir)
{
	char point[4096];

	path_join(point, sizeof(point), root, "vol");
	ck_assert_int_eq(mkdir(point, 0755), 0);
	expect_ok(RUN("unmount", root, "vol", "lazy"));
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_unmount_not_empty_dir)
{
	char point[4096], file[4096];

	path_join(point, sizeof(point), root, "vol");
	path_join(file, sizeof(file), point, "data");
	ck_assert_int_eq(mkdir(point, 0755), 0);
	write_file(file, "keep me\n");
	expect_failure(RUN("unmount", root, "vol", "lazy"), NFSV3_EXIT_MOUNT, "Directory not empty");
	ck_assert(exists(file));
	ck_assert_int_eq(unlink(file), 0);
	ck_assert_int_eq(rmdir(point), 0);
}
END_TEST

/* Two binds stacked on one mountpoint (say, racing helpers) all come off. */
START_TEST(test_unmount_stacked)
{
	char point[4096];

	path_join(point, sizeof(point), root, "vol");
	expect_ok(RUN("bind", root, source_dir, "vol", "rw"));
	ck_assert_int_eq(mount(source_dir, point, NULL, MS_BIND, NULL), 0);
	ck_assert_int_eq(mounts_under(base), 3);
	expect_ok(RUN("unmount", root, "vol", "lazy"));
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_unmount_kernel_mount)
{
	char kernel[4096], point[4096];

	path_join(kernel, sizeof(kernel), root, NFSV3_KERNEL_DIR);
	path_join(point, sizeof(point), kernel, "key1");
	ck_assert_int_eq(mkdir(kernel, 0700), 0);
	ck_assert_int_eq(mkdir(point, 0755), 0);
	ck_assert_int_eq(mount("nfsv3-test", point, "tmpfs", 0, NULL), 0);
	expect_ok(RUN("unmount", root, NFSV3_KERNEL_DIR "/key1", "force"));
	ck_assert(!exists(point));
	expect_ok(RUN("unmount", root, NFSV3_KERNEL_DIR "/key1", "lazy"));
	ck_assert_int_eq(rmdir(kernel), 0);
	/* No .kernel directory at all: nothing to do. */
	expect_ok(RUN("unmount", root, NFSV3_KERNEL_DIR "/key1", "lazy"));
	expect_failure(RUN("unmount", root, NFSV3_KERNEL_DIR "/../vol", "lazy"), NFSV3_EXIT_REFUSED,
		       "must start with a letter or digit");
	expect_failure(RUN("unmount", root, NFSV3_KERNEL_DIR "/a/b", "lazy"), NFSV3_EXIT_REFUSED,
		       "may only hold");
	expect_failure(RUN("unmount", root, NFSV3_KERNEL_DIR, "lazy"), NFSV3_EXIT_REFUSED,
		       "must start with a letter or digit");
}
END_TEST

/* A symlink at NAME pointing at a live mount: refused, and the mount it points at stays. */
START_TEST(test_unmount_symlink_refused)
{
	char link[4096], point[4096];

	path_join(point, sizeof(point), root, "vol");
	path_join(link, sizeof(link), root, "link");
	expect_ok(RUN("bind", root, source_dir, "vol", "rw"));
	ck_assert_int_eq(symlink(point, link), 0);
	expect_failure(RUN("unmount", root, "link", "force"), NFSV3_EXIT_REFUSED, "link: is a symlink");
	ck_assert_int_eq(mounts_under(base), 2);
	ck_assert(exists(link));
	ck_assert_int_eq(unlink(link), 0);
	expect_ok(RUN("unmount", root, "vol", "lazy"));
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_unmount_file_refused)
{
	char file[4096];

	path_join(file, sizeof(file), root, "vol");
	write_file(file, "");
	expect_failure(RUN("unmount", root, "vol", "lazy"), NFSV3_EXIT_REFUSED, "vol: not a directory");
	ck_assert_int_eq(unlink(file), 0);
}
END_TEST

/* ---- refusals: mount root --------------------------------------------- */

START_TEST(test_refuse_relative_root)
{
	expect_failure(RUN("bind", root + 1, source_dir, "vol", "rw"), NFSV3_EXIT_REFUSED, "not an absolute path");
	expect_failure(RUN("unmount", "relative", "vol", "lazy"), NFSV3_EXIT_REFUSED, "not an absolute path");
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_refuse_symlinked_root)
{
	char real[4096], link[4096], via[4096], point[4096];

	path_join(real, sizeof(real), base, "real");
	path_join(link, sizeof(link), base, "link");
	path_join(via, sizeof(via), link, "inner");
	path_join(point, sizeof(point), real, "inner");
	ck_assert_int_eq(mkdir(real, 0755), 0);
	ck_assert_int_eq(mkdir(point, 0755), 0);
	ck_assert_int_eq(symlink(real, link), 0);
	expect_failure(RUN("bind", via, source_dir, "vol", "rw"), NFSV3_EXIT_REFUSED, "has a symlink component");
	expect_failure(RUN("bind", link, source_dir, "vol", "rw"), NFSV3_EXIT_REFUSED, "has a symlink component");
	path_join(point, sizeof(point), point, "vol");
	ck_assert(!exists(point));
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_refuse_root_not_canonical)
{
	char dotdot[4096];

	path_join(dotdot, sizeof(dotdot), source_dir, "../root");
	expect_failure(RUN("bind", dotdot, source_dir, "vol", "rw"), NFSV3_EXIT_REFUSED, "not a canonical path");
	expect_failure(RUN("bind", "/", source_dir, "vol", "rw"), NFSV3_EXIT_REFUSED, "must not be /");
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_refuse_root_missing_or_file)
{
	char missing[4096], file[4096];

	path_join(missing, sizeof(missing), base, "missing");
	path_join(file, sizeof(file), source_dir, "hello");
	expect_failure(RUN("bind", missing, source_dir, "vol", "rw"), NFSV3_EXIT_REFUSED, "No such file");
	expect_failure(RUN("bind", file, source_dir, "vol", "rw"), NFSV3_EXIT_REFUSED, "Not a directory");
	expect_nothing_mounted("vol");
}
END_TEST

/* Without openat2 nothing can be resolved safely: no fallback, a clear error. */
START_TEST(test_refuse_without_openat2)
{
	expect_failure(RUN_AS(RUN_NO_OPENAT2, "bind", root, source_dir, "vol", "rw"), NFSV3_EXIT_INTERNAL,
		       "openat2 is not available");
	expect_failure(RUN_AS(RUN_NO_OPENAT2, "unmount", root, "vol", "lazy"), NFSV3_EXIT_INTERNAL,
		       "openat2 is not available");
	expect_nothing_mounted("vol");
}
END_TEST

/* ---- refusals: NAME --------------------------------------------------- */

static void expect_name_refused(const char *name, const char *why)
{
	expect_failure(RUN("bind", root, source_dir, name, "rw"), NFSV3_EXIT_REFUSED, why);
	expect_failure(RUN("unmount", root, name, "lazy"), NFSV3_EXIT_REFUSED, why);
	ck_assert_int_eq(mounts_under(base), 1);
}

START_TEST(test_refuse_name_slash)
{
	char inner[4096];

	path_join(inner, sizeof(inner), root, "a");
	ck_assert_int_eq(mkdir(inner, 0755), 0);
	expect_name_refused("a/b", "may only hold");
	expect_name_refused("/vol", "must start with a letter or digit");
	path_join(inner, sizeof(inner), inner, "b");
	ck_assert(!exists(inner));
	path_join(inner, sizeof(inner), root, "a");
	ck_assert_int_eq(rmdir(inner), 0);
	/* .kernel/<key> names a kernel mount: unmount takes it, bind never does. */
	expect_failure(RUN("bind", root, source_dir, NFSV3_KERNEL_DIR "/key", "rw"), NFSV3_EXIT_REFUSED,
		       "must start with a letter or digit");
}
END_TEST

START_TEST(test_refuse_name_dotdot)
{
	expect_name_refused("..", "must start with a letter or digit");
	expect_name_refused("vol/..", "may only hold");
}
END_TEST

START_TEST(test_refuse_name_dot)
{
	expect_name_refused(".", "must start with a letter or digit");
}
END_TEST

START_TEST(test_refuse_name_empty)
{
	expect_name_refused("", "empty");
}
END_TEST

START_TEST(test_refuse_name_too_long)
{
	char name[301];

	memset(name, 'a', 300);
	name[300] = '\0';
	expect_name_refused(name, "longer than 255 bytes");
	/* 255 is fine. */
	name[255] = '\0';
	expect_ok(RUN("bind", root, source_dir, name, "rw"));
	expect_ok(RUN("unmount", root, name, "lazy"));
	expect_nothing_mounted(name);
}
END_TEST

START_TEST(test_refuse_name_control_char)
{
	struct result result = RUN("bind", root, source_dir, "vol\nx", "rw");

	/* The newline must not reach stderr: one line, always. */
	expect_failure(result, NFSV3_EXIT_REFUSED, "\"vol?x\": may only hold");
	expect_name_refused("vol\x01", "may only hold");
	expect_name_refused("vol\x7f", "may only hold");
}
END_TEST

START_TEST(test_refuse_name_state_file)
{
	expect_name_refused(NFSV3_STATE_FILE, "reserved for the state file");
	expect_name_refused(NFSV3_STATE_FILE ".tmp", "reserved for the state file");
}
END_TEST

/* ---- refusals: the mountpoint ----------------------------------------- */

START_TEST(test_refuse_symlinked_target)
{
	char elsewhere[4096], link[4096], file[4096];

	path_join(elsewhere, sizeof(elsewhere), base, "elsewhere");
	path_join(link, sizeof(link), root, "vol");
	ck_assert_int_eq(mkdir(elsewhere, 0755), 0);
	ck_assert_int_eq(symlink(elsewhere, link), 0);
	expect_failure(RUN("bind", root, source_dir, "vol", "rw"), NFSV3_EXIT_REFUSED, "vol: is a symlink");
	ck_assert_int_eq(mounts_under(base), 1);
	path_join(file, sizeof(file), elsewhere, "hello");
	ck_assert(!exists(file));
	ck_assert(exists(link));
	ck_assert_int_eq(unlink(link), 0);
}
END_TEST

START_TEST(test_refuse_target_file)
{
	char file[4096];

	path_join(file, sizeof(file), root, "vol");
	write_file(file, "");
	expect_failure(RUN("bind", root, source_dir, "vol", "rw"), NFSV3_EXIT_REFUSED,
		       "vol: exists and is not a directory");
	ck_assert_int_eq(mounts_under(base), 1);
	ck_assert_int_eq(unlink(file), 0);
}
END_TEST

START_TEST(test_refuse_target_not_empty)
{
	char point[4096], file[4096];

	path_join(point, sizeof(point), root, "vol");
	path_join(file, sizeof(file), point, "data");
	ck_assert_int_eq(mkdir(point, 0755), 0);
	write_file(file, "");
	expect_failure(RUN("bind", root, source_dir, "vol", "rw"), NFSV3_EXIT_REFUSED, "vol: not empty");
	ck_assert_int_eq(mounts_under(base), 1);
	/* An existing directory is not the helper's to remove. */
	ck_assert(exists(file));
	ck_assert_int_eq(unlink(file), 0);
	ck_assert_int_eq(rmdir(point), 0);
}
END_TEST

/* ---- refusals: SOURCE_DIR --------------------------------------------- */

START_TEST(test_refuse_source_not_dir)
{
	char file[4096];

	path_join(file, sizeof(file), source_dir, "hello");
	expect_failure(RUN("bind", root, file, "vol", "rw"), NFSV3_EXIT_REFUSED, "not a directory");
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_refuse_source_symlink)
{
	char link[4096], via[4096], inner[4096];

	path_join(link, sizeof(link), base, "srclink");
	path_join(inner, sizeof(inner), source_dir, "inner");
	path_join(via, sizeof(via), link, "inner");
	ck_assert_int_eq(mkdir(inner, 0755), 0);
	ck_assert_int_eq(symlink(source_dir, link), 0);
	expect_failure(RUN("bind", root, via, "vol", "rw"), NFSV3_EXIT_REFUSED, "has a symlink component");
	expect_failure(RUN("bind", root, link, "vol", "rw"), NFSV3_EXIT_REFUSED, "has a symlink component");
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_refuse_source_not_ours)
{
	char kernel[4096], escape[4096];

	/* Not a kernel mount of ours and not in the operator's list of local
	 * sources (packaging/local-sources.sh lists /tmp and /var/tmp). */
	expect_failure(RUN("bind", root, "/usr/share", "vol", "rw"), NFSV3_EXIT_REFUSED, "neither beneath");
	/* Beneath .kernel by its spelling only. */
	path_join(kernel, sizeof(kernel), root, ".kernel");
	ck_assert_int_eq(mkdir(kernel, 0700), 0);
	snprintf(escape, sizeof(escape), "%s/../../../../usr", kernel);
	expect_failure(RUN("bind", root, escape, "vol", "rw"), NFSV3_EXIT_REFUSED, "leaves the directory");
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_refuse_source_relative_or_missing)
{
	char missing[4096];

	path_join(missing, sizeof(missing), base, "missing");
	expect_failure(RUN("bind", root, source_dir + 1, "vol", "rw"), NFSV3_EXIT_REFUSED, "not an absolute path");
	expect_failure(RUN("bind", root, missing, "vol", "rw"), NFSV3_EXIT_REFUSED, "No such file");
	expect_failure(RUN("bind", root, "/", "vol", "rw"), NFSV3_EXIT_REFUSED, "must not be /");
	expect_nothing_mounted("vol");
}
END_TEST

/* ---- refusals: verb, count, mode -------------------------------------- */

START_TEST(test_refuse_wrong_verb)
{
	expect_failure(RUN("mount", root, source_dir, "vol", "rw"), NFSV3_EXIT_USAGE, "usage: ");
	expect_failure(RUN("BIND", root, source_dir, "vol", "rw"), NFSV3_EXIT_USAGE, "usage: ");
	expect_failure(RUN_AS(RUN_ROOT, NULL), NFSV3_EXIT_USAGE, "usage: ");
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_refuse_wrong_count)
{
	expect_failure(RUN("bind", root, source_dir, "vol"), NFSV3_EXIT_USAGE, "usage: " NFSV3_HELPER_MOUNT " bind");
	expect_failure(RUN("bind", root, source_dir, "vol", "rw", "extra"), NFSV3_EXIT_USAGE, "usage: ");
	expect_failure(RUN("unmount", root, "vol"), NFSV3_EXIT_USAGE, "usage: " NFSV3_HELPER_MOUNT " unmount");
	expect_failure(RUN("unmount", root, "vol", "lazy", "x"), NFSV3_EXIT_USAGE, "usage: ");
	expect_failure(RUN("nfs", root), NFSV3_EXIT_USAGE, "usage: " NFSV3_HELPER_MOUNT " nfs");
	expect_nothing_mounted("vol");
}
END_TEST

START_TEST(test_refuse_mode_misspelt)
{
	expect_failure(RUN("bind", root, source_dir, "vol", "RW"), NFSV3_EXIT_REFUSED, "must be rw or ro");
	expect_failure(RUN("bind", root, source_dir, "vol", "rw "), NFSV3_EXIT_REFUSED, "must be rw or ro");
	expect_failure(RUN("bind", root, source_dir, "vol", "readonly"), NFSV3_EXIT_REFUSED, "must be rw or ro");
	expect_failure(RUN("unmount", root, "vol", "Lazy"), NFSV3_EXIT_REFUSED, "must be lazy or force");
	expect_nothing_mounted("vol");
}
END_TEST

/* ---- privilege -------------------------------------------------------- */

START_TEST(test_privilege_nonroot_refused)
{
	expect_failure(RUN_AS(RUN_NOBODY, "bind", root, source_dir, "vol", "rw"), NFSV3_EXIT_PRIVILEGE,
		       "cannot keep cap_sys_admin: not permitted");
	expect_failure(RUN_AS(RUN_NOBODY, "unmount", root, "vol", "lazy"), NFSV3_EXIT_PRIVILEGE,
		       "cannot keep cap_sys_admin: not permitted");
	/* Dropping nothing needs no privilege: a wrong verb is still a usage error. */
	expect_failure(RUN_AS(RUN_NOBODY, "bogus"), NFSV3_EXIT_USAGE, "usage: ");
	expect_nothing_mounted("vol");
}
END_TEST

/*
 * The production set-up: the daemon's unprivileged uid runs the helper with
 * file capabilities (here ambient ones, which reach the helper the same
 * way). The source sits below a 0700 root-owned directory, which only
 * CAP_DAC_READ_SEARCH lets the helper look through.
 */
START_TEST(test_privilege_nonroot_with_caps)
{
	char hidden[4096], source[4096], file[4096];

	path_join(hidden, sizeof(hidden), base, "hidden");
	path_join(source, sizeof(source), hidden, "export");
	ck_assert_int_eq(mkdir(hidden, 0700), 0);
	ck_assert_int_eq(mkdir(source, 0777), 0);
	ck_assert_int_eq(chmod(source, 0777), 0);
	ck_assert_int_eq(chown(root, NOBODY, NOBODY), 0);
	expect_ok(RUN_AS(RUN_NOBODY_CAPS, "bind", root, source, "vol", "rw"));
	path_join(file, sizeof(file), root, "vol/written");
	write_file(file, "x\n");
	expect_ok(RUN_AS(RUN_NOBODY_CAPS, "unmount", root, "vol", "lazy"));
	expect_nothing_mounted("vol");
}
END_TEST

struct observed {
	uint64_t inheritable, permitted, effective, bounding, ambient;
	int no_new_privs;
};

/* The helper's capabilities once it has dropped them, read while it blocks on a full stderr. */
static struct observed observe_dropped(const char *const *args, int expected_code)
{
	struct observed seen = {.no_new_privs = -1};
	char path[64], line[256], drain[65536];
	int pipe_fds[2], status;
	pid_t pid;

	ck_assert_int_eq(pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK), 0);
	memset(drain, 'x', sizeof(drain));
	while (write(pipe_fds[1], drain, sizeof(drain)) > 0 || errno != EAGAIN)
		;
	while (write(pipe_fds[1], drain, 1) > 0)
		;
	ck_assert_int_eq(fcntl(pipe_fds[0], F_SETFL, 0), 0);
	ck_assert_int_eq(fcntl(pipe_fds[1], F_SETFL, 0), 0);
	pid = spawn_helper(RUN_ROOT, pipe_fds[1], args);
	close(pipe_fds[1]);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	for (int tries = 0; seen.no_new_privs != 1 && tries < 500; tries++) {
		FILE *file = fopen(path, "re");

		ck_assert_ptr_nonnull(file);
		while (fgets(line, sizeof(line), file) != NULL) {
			sscanf(line, "CapInh: %" SCNx64, &seen.inheritable);
			sscanf(line, "CapPrm: %" SCNx64, &seen.permitted);
			sscanf(line, "CapEff: %" SCNx64, &seen.effective);
			sscanf(line, "CapBnd: %" SCNx64, &seen.bounding);
			sscanf(line, "CapAmb: %" SCNx64, &seen.ambient);
			sscanf(line, "NoNewPrivs: %d", &seen.no_new_privs);
		}
		fclose(file);
		if (seen.no_new_privs != 1)
			nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
	}
	while (read(pipe_fds[0], drain, sizeof(drain)) > 0)
		;
	close(pipe_fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), expected_code);
	ck_assert_int_eq(seen.no_new_privs, 1);
	return seen;
}

START_TEST(test_privilege_dropped)
{
	const uint64_t sys_admin = UINT64_C(1) << CAP_SYS_ADMIN;
	const uint64_t dac_read_search = UINT64_C(1) << CAP_DAC_READ_SEARCH;
	struct observed seen;

	/* Wrong counts fail after the drop, so these show each verb's own set. */
	seen = observe_dropped((const char *const[]){"bind", root, NULL}, NFSV3_EXIT_USAGE);
	ck_assert_uint_eq(seen.effective, sys_admin | dac_read_search);
	ck_assert_uint_eq(seen.permitted, sys_admin | dac_read_search);
	ck_assert_uint_eq(seen.inheritable, 0);
	ck_assert_uint_eq(seen.ambient, 0);
	ck_assert_uint_eq(seen.bounding, 0);

	seen = observe_dropped((const char *const[]){"unmount", root, NULL}, NFSV3_EXIT_USAGE);
	ck_assert_uint_eq(seen.effective, sys_admin);
	ck_assert_uint_eq(seen.permitted, sys_admin);
	ck_assert_uint_eq(seen.inheritable | seen.ambient | seen.bounding, 0);

	seen = observe_dropped((const char *const[]){"bogus", NULL}, NFSV3_EXIT_USAGE);
	ck_assert_uint_eq(seen.effective | seen.permitted | seen.inheritable | seen.ambient | seen.bounding, 0);

	/* And a refusal after validation started. */
	seen = observe_dropped((const char *const[]){"bind", root, source_dir, "..", "rw", NULL}, NFSV3_EXIT_REFUSED);
	ck_assert_uint_eq(seen.effective, sys_admin | dac_read_search);
}
END_TEST

static Suite *mounter_suite(void)
{
	Suite *suite = suite_create("mounter");
	struct {
		const char *name;
		const TTest *tests[12]; /* NULL after the last */
	} groups[] = {
		{"bind", {test_bind_rw_write, test_bind_ro_erofs, test_bind_nosuid_nodev,
			  test_bind_existing_empty_dir, test_bind_already_mounted,
			  test_bind_root_on_bind_mount, test_bind_failure_removes_mountpoint,
			  test_bind_fallback_without_open_tree, test_bind_fallback_without_mount_setattr,
			  test_bind_keeps_source_restrictions}},
		{"unmount", {test_unmount_removes_mount_and_dir, test_unmount_twice, test_unmount_force,
			     test_unmount_busy, test_unmount_not_mounted_dir, test_unmount_not_empty_dir,
			     test_unmount_stacked, test_unmount_kernel_mount, test_unmount_symlink_refused,
			     test_unmount_file_refused}},
		{"refuse-root", {test_refuse_relative_root, test_refuse_symlinked_root,
				 test_refuse_root_not_canonical, test_refuse_root_missing_or_file,
				 test_refuse_without_openat2}},
		{"refuse-name", {test_refuse_name_slash, test_refuse_name_dotdot, test_refuse_name_dot,
				 test_refuse_name_empty, test_refuse_name_too_long,
				 test_refuse_name_control_char, test_refuse_name_state_file}},
		{"refuse-target", {test_refuse_symlinked_target, test_refuse_target_file,
				   test_refuse_target_not_empty}},
		{"refuse-source", {test_refuse_source_not_dir, test_refuse_source_symlink,
				   test_refuse_source_relative_or_missing, test_refuse_source_not_ours}},
		{"refuse-args", {test_refuse_wrong_verb, test_refuse_wrong_count, test_refuse_mode_misspelt}},
		{"privilege", {test_privilege_nonroot_refused, test_privilege_nonroot_with_caps,
			       test_privilege_dropped}},
	};

	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		TCase *tcase = tcase_create(groups[g].name);

		tcase_add_checked_fixture(tcase, setup, teardown);
		for (size_t t = 0; groups[g].tests[t] != NULL; t++)
			tcase_add_test(tcase, groups[g].tests[t]);
		suite_add_tcase(suite, tcase);
	}
	return suite;
}

int main(void)
{
	int failed;

	if (geteuid() != 0) {
		fprintf(stderr, "test_mounter: skipped: the mount helper's tests need root\n");
		return 77;
	}
	make_base();
	/* Root without CAP_SYS_ADMIN (an unprivileged container), or a chroot, cannot run these tests. */
	if (!harness_can_mount_privately(base, "test_mounter")) {
		remove_base();
		return 77;
	}
	failed = harness_run(mounter_suite());
	remove_base();
	return failed;
}
