/*
 * nfsv3driver-idmapfs, driven as the daemon drives it: the real binary with
 * its fixed argv, "ready" on stdout, SIGTERM to stop, one line of stderr and
 * an exit code on refusal. The client side runs in forked children that
 * become the app uid (2000) or another uid (3000), as an app would.
 *
 * Needs root and /dev/fuse; skips with 77 otherwise. Every test runs in
 * Check's forked child, which moves into a private mount namespace and
 * mounts its own tmpfs (the mount root and the backing directory) on a
 * directory made under /tmp, so a failing test can never leave a mount on
 * the host; each test still stops what it started and the teardown asserts
 * that nothing but the tmpfs is mounted below it.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/fs.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "harness.h"

#define BOUND 1234
#define APP 2000
#define OTHER 3000
#define READY_TIMEOUT_MS 10000

static char helper[4096];
static char base[] = "/tmp/nfsv3-idmapfs-XXXXXX";
static char root[sizeof(base) + 16], back[sizeof(base) + 16];
/* Where the first and the second instance of a test are mounted. */
static char mnt[sizeof(base) + 32], mnt2[sizeof(base) + 32];

struct result {
	int code;        /* exit code, or 128 + signal */
	char err[2048];  /* everything on stderr */
};

static int status_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- running idmapfs ---------------------------------------------------- */

/* Process groups of the instances a test started, killed by the teardown if still there. */
static pid_t started[8];
static int nstarted;

/* A started instance. */
struct instance {
	pid_t pid;
	char mountpoint[sizeof(mnt)];
};

/*
 * Exec idmapfs with args after the program name as uid and gid id (0: as
 * root); stdout and stderr on the given fds.
 */
static pid_t spawn(uid_t id, const char *const *args, int out_fd, int err_fd)
{
	const char *argv[16] = {helper};
	size_t n = 1;
	pid_t pid;

	for (; args[n - 1] != NULL && n < 15; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Its own process group, as the daemon starts it: a group kill reaches the sentry too. */
		if (setpgid(0, 0) != 0 || dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0)
			_exit(124);
		if (id != 0 && (setgroups(0, NULL) != 0 || setresgid(id, id, id) != 0 ||
				setresuid(id, id, id) != 0))
			_exit(125);
		execv(helper, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/*
 * Start idmapfs on MOUNT_ROOT/name over backing and wait for its "ready"
 * line. Its stderr stays ours, so whatever it says shows in the test log.
 */
static struct instance start_with(const char *name, const char *backing, const char *mode, const char *option)
{
	const char *args[] = {root, backing, name, "1234", "1234", "2000", "2000", mode, option, NULL};
	struct instance inst;
	struct pollfd pfd;
	char buf[64];
	size_t len = 0;
	int out[2], status;

	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	inst.pid = spawn(0, args, out[1], STDERR_FILENO);
	if (nstarted < 8)
		started[nstarted++] = inst.pid;
	close(out[1]);
	pfd.fd = out[0];
	pfd.events = POLLIN;
	while (len < sizeof(buf) - 1) {
		ssize_t got;

		ck_assert_msg(poll(&pfd, 1, READY_TIMEOUT_MS) == 1, "no ready line after %d ms",
			      READY_TIMEOUT_MS);
		got = read(out[0], buf + len, sizeof(buf) - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
		if (memchr(buf, '\n', len) != NULL)
			break;
	}
	buf[len] = '\0';
	if (strcmp(buf, "ready\n") != 0) {
		waitpid(inst.pid, &status, 0);
		ck_abort_msg("idmapfs said \"%s\" and exited %d", buf, status_code(status));
	}
	/* Nothing more comes on stdout: it is closed once ready. */
	ck_assert_int_eq(read(out[0], buf, sizeof(buf)), 0);
	close(out[0]);
	path_join(inst.mountpoint, sizeof(inst.mountpoint), root, name);
	ck_assert_int_eq(mounts_under(inst.mountpoint), 1);
	return inst;
}

static struct instance start_on(const char *name, const char *backing, const char *mode)
{
	return start_with(name, backing, mode, NULL);
}

static struct instance start(void)
{
	return start_on("vol", back, NFSV3_ARG_RW);
}

/* On the normal path, as on kernels without FUSE passthrough (before 6.9: the cells' 5.15 and 6.8). */
static struct instance start_without_passthrough(void)
{
	return start_with("vol", back, NFSV3_ARG_RW, "passthrough=off");
}

/* Wait up to timeout_ms for pid to exit; its exit code, or -1 if still running. */
static int wait_exit(pid_t pid, int timeout_ms)
{
	int status;

	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		pid_t got = waitpid(pid, &status, WNOHANG);

		ck_assert_int_ge(got, 0);
		if (got == pid)
			return status_code(status);
		usleep(10000);
	}
	return -1;
}

/* SIGTERM: it must exit 0 with nothing left mounted. */
static void stop(struct instance *inst)
{
	ck_assert_int_eq(kill(inst->pid, SIGTERM), 0);
	ck_assert_int_eq(wait_exit(inst->pid, 5000), 0);
	ck_assert_int_eq(mounts_under(inst->mountpoint), 0);
}

/* Run idmapfs as id with args expecting a refusal: exit code, one stderr line with needle, no mount. */
static void expect_refused(uid_t id, int code, const char *needle, const char *const *args)
{
	struct result r = {.code = -1};
	size_t len = 0;
	ssize_t got;
	int err[2], null_fd, status, mounted = mounts_under(root);
	pid_t pid;

	null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(null_fd, 0);
	ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
	pid = spawn(id, args, null_fd, err[1]);
	close(err[1]);
	close(null_fd);
	while ((got = read(err[0], r.err + len, sizeof(r.err) - 1 - len)) > 0)
		len += (size_t)got;
	r.err[len] = '\0';
	close(err[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	r.code = status_code(status);
	harness_expect_refusal(NFSV3_HELPER_IDMAPFS, r.code, r.err, code, needle);
	ck_assert_int_eq(mounts_under(root), mounted);
}

#define REFUSED(code, needle, ...) expect_refused(0, code, needle, (const char *const[]){__VA_ARGS__, NULL})

/* ---- the client side ---------------------------------------------------- */

/*
 * In the client child: a failed expectation prints where and why and exits
 * 1, which the parent's ck_assert reports.
 */
#define EXPECT(cond)                                                                        \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: expected %s (errno: %s)\n", __FILE__, __LINE__, \
				#cond, strerror(errno));                                    \
			_exit(1);                                                           \
		}                                                                           \
	} while (0)

/* Start fn in a child with uid and gid id (0: stay root); returns its pid. */
static pid_t spawn_as(uid_t id, int (*fn)(void))
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (id != 0 && (setgroups(0, NULL) != 0 || setresgid(id, id, id) != 0 ||
				setresuid(id, id, id) != 0))
			_exit(99);
		_exit(fn());
	}
	return pid;
}

/* Run fn in a child with uid and gid id; returns its exit code. */
static int as_uid(uid_t id, int (*fn)(void))
{
	int status;
	pid_t pid = spawn_as(id, fn);

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status_code(status);
}

#define AS(id, fn) ck_assert_msg(as_uid(id, fn) == 0, "%s as uid %d failed", #fn, id)

/* dir/name (inside the mount, on the backing side), good for the next 16 calls. */
static const char *in(const char *dir, const char *name)
{
	static char paths[16][sizeof(mnt) + 64];
	static int next;
	char *p = paths[next++ % 16];

	path_join(p, sizeof(paths[0]), dir, name);
	return p;
}

static void write_text(const char *path, const char *text, uid_t owner)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fchown(fd, owner, owner), 0);
	close(fd);
}

static void expect_owner(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;

	ck_assert_msg(lstat(path, &st) == 0, "lstat %s: %s", path, strerror(errno));
	ck_assert_msg(st.st_uid == uid && st.st_gid == gid, "%s owned %d:%d, wanted %d:%d", path,
		      (int)st.st_uid, (int)st.st_gid, (int)uid, (int)gid);
}

/* ---- fixture ------------------------------------------------------------- */

/*
 * A failed assertion ends the test's process with _exit(), skipping the
 * checked teardown, and could leave its instances running in their private
 * mount namespace. After each test case, the runner itself kills every
 * process whose command line names our base directory (a server or its
 * sentry): none outlives the case that started it.
 */
static void kill_leftovers(void)
{
	struct dirent *entry;
	DIR *proc = opendir("/proc");

	if (proc == NULL)
		return;
	while ((entry = readdir(proc)) != NULL) {
		char path[300], cmdline[4096];
		ssize_t len;
		int fd;

		if (entry->d_name[0] < '1' || entry->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", entry->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, cmdline, sizeof(cmdline) - 1);
		close(fd);
		for (ssize_t i = 0; i < len; i++) {
			if (cmdline[i] == '\0')
				cmdline[i] = ' ';
		}
		cmdline[len > 0 ? len : 0] = '\0';
		if (strstr(cmdline, helper) != NULL && strstr(cmdline, base) != NULL)
			kill(atoi(entry->d_name), SIGKILL);
	}
	closedir(proc);
}

static void setup(void)
{
	ck_assert_msg(harness_private_tmpfs(base, MS_NOSUID | MS_NODEV, "mode=0755,size=8g") == 0, "tmpfs on %s: %s",
		      base, strerror(errno));
	ck_assert_int_eq(mkdir(root, 0755), 0);
	ck_assert_int_eq(mkdir(back, 0755), 0);
	ck_assert_int_eq(chown(back, BOUND, BOUND), 0);
	path_join(mnt, sizeof(mnt), root, "vol");
	path_join(mnt2, sizeof(mnt2), root, "vol2");
}

static void teardown(void)
{
	for (int i = 0; i < nstarted; i++) {
		if (kill(-started[i], SIGKILL) == 0)
			waitpid(started[i], NULL, 0);
	}
	for (int i = 0; i < 4 && mounts_under(base) > 1; i++)
		usleep(100000);
	ck_assert_int_eq(mounts_under(base), 1);
	umount2(base, MNT_DETACH);
}

/* ---- ownership ------------------------------------------------------------ */

static int client_create_all(void)
{
	int fd = open(in(mnt, "file"), O_WRONLY | O_CREAT | O_EXCL, 0640);

	EXPECT(fd >= 0);
	EXPECT(write(fd, "data", 4) == 4);
	EXPECT(close(fd) == 0);
	EXPECT(mkdir(in(mnt, "dir"), 0750) == 0);
	EXPECT(symlink("file", in(mnt, "link")) == 0);
	EXPECT(mkfifo(in(mnt, "fifo"), 0600) == 0);
	EXPECT(mknod(in(mnt, "plain"), S_IFREG | 0600, 0) == 0);
	return 0;
}

START_TEST(test_created_files_owned_by_bound_ids)
{
	struct instance inst = start();
	struct stat st;

	AS(APP, client_create_all);
	expect_owner(in(back, "file"), BOUND, BOUND);
	expect_owner(in(back, "dir"), BOUND, BOUND);
	expect_owner(in(back, "link"), BOUND, BOUND);
	expect_owner(in(back, "fifo"), BOUND, BOUND);
	expect_owner(in(back, "plain"), BOUND, BOUND);
	/* Modes as the app asked (our umask is 0, the app's is 022). */
	ck_assert_int_eq(stat(in(back, "file"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(stat(in(back, "dir"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0750);
	stop(&inst);
}
END_TEST

static int client_sees_mapped_owners(void)
{
	struct dirent *entry;
	struct stat st;
	DIR *dir;
	int seen = 0;

	EXPECT(stat(in(mnt, "mine"), &st) == 0);
	EXPECT(st.st_uid == APP && st.st_gid == APP);
	EXPECT(stat(in(mnt, "theirs"), &st) == 0);
	EXPECT(st.st_uid == 4321 && st.st_gid == 4321);
	/* A listing (readdirplus) carries the same mapped owners. */
	dir = opendir(mnt);
	EXPECT(dir != NULL);
	while ((entry = readdir(dir)) != NULL) {
		if (entry->d_name[0] == '.')
			continue;
		EXPECT(fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
		if (strcmp(entry->d_name, "mine") == 0)
			EXPECT(st.st_uid == APP && st.st_gid == APP);
		else
			EXPECT(st.st_uid == 4321);
		seen++;
	}
	EXPECT(seen == 2);
	closedir(dir);
	/* The mount root is the backing directory, owned by the bound ids. */
	EXPECT(stat(mnt, &st) == 0);
	EXPECT(st.st_uid == APP && st.st_gid == APP);
	return 0;
}

START_TEST(test_bound_owner_shows_as_app)
{
	struct instance inst;

	write_text(in(back, "mine"), "m", BOUND);
	write_text(in(back, "theirs"), "t", 4321);
	inst = start();
	AS(APP, client_sees_mapped_owners);
	stop(&inst);
}
END_TEST

static int client_chowns(void)
{
	EXPECT(chown(in(mnt, "f"), APP, APP) == 0);
	EXPECT(lchown(in(mnt, "l"), APP, APP) == 0);
	/* Anything else is the backing's decision: the bound uid may not give files away. */
	EXPECT(chown(in(mnt, "f"), 4321, -1) == -1 && errno == EPERM);
	EXPECT(chown(in(mnt, "g"), APP, -1) == -1 && errno == EPERM);
	return 0;
}

START_TEST(test_chown_to_app_becomes_bound)
{
	struct instance inst;

	write_text(in(back, "f"), "f", BOUND);
	ck_assert_int_eq(chown(in(back, "f"), BOUND, 4321), 0);
	write_text(in(back, "g"), "g", 4321);
	ck_assert_int_eq(symlink("f", in(back, "l")), 0);
	ck_assert_int_eq(lchown(in(back, "l"), BOUND, 4321), 0);
	inst = start();
	AS(APP, client_chowns);
	expect_owner(in(back, "f"), BOUND, BOUND);
	expect_owner(in(back, "l"), BOUND, BOUND);
	expect_owner(in(back, "g"), 4321, 4321);
	stop(&inst);
}
END_TEST

/* ---- who may ask ------------------------------------------------------------ */

static int client_other_refused(void)
{
	struct stat st;
	int fd;

	EXPECT(stat(in(mnt, "f"), &st) == -1 && errno == EACCES);
	fd = open(in(mnt, "f"), O_RDONLY);
	EXPECT(fd == -1 && errno == EACCES);
	EXPECT(opendir(mnt) == NULL && errno == EACCES);
	EXPECT(open(in(mnt, "new"), O_WRONLY | O_CREAT, 0644) == -1 && errno == EACCES);
	EXPECT(mkdir(in(mnt, "d"), 0755) == -1 && errno == EACCES);
	EXPECT(unlink(in(mnt, "f")) == -1 && errno == EACCES);
	EXPECT(access(mnt, R_OK) == -1 && errno == EACCES);
	return 0;
}

static int client_root_stats_only(void)
{
	struct statvfs vfs;
	struct stat st;

	EXPECT(stat(mnt, &st) == 0);
	EXPECT(st.st_uid == APP);
	EXPECT(stat(in(mnt, "g"), &st) == 0);
	EXPECT(st.st_uid == APP && st.st_size == 1);
	EXPECT(statvfs(mnt, &vfs) == 0);
	EXPECT(open(in(mnt, "g"), O_RDONLY) == -1 && errno == EACCES);
	EXPECT(opendir(mnt) == NULL && errno == EACCES);
	EXPECT(unlink(in(mnt, "g")) == -1 && errno == EACCES);
	return 0;
}

START_TEST(test_other_uid_refused_root_only_stats)
{
	struct instance inst;

	/* Made on the backing side, so no app lookup has put them in the kernel's cache. */
	write_text(in(back, "f"), "f", BOUND);
	write_text(in(back, "g"), "g", BOUND);
	inst = start();
	AS(OTHER, client_other_refused);
	AS(0, client_root_stats_only);
	ck_assert_int_eq(access(in(back, "f"), F_OK), 0);
	stop(&inst);
}
END_TEST

/* ---- privilege --------------------------------------------------------------- */

/* The value of a /proc/<pid>/status field, whitespace-trimmed. */
static void status_field(pid_t pid, const char *key, char *out, size_t size)
{
	char path[64], line[512];
	FILE *file;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	file = fopen(path, "re");
	ck_assert_ptr_nonnull(file);
	out[0] = '\0';
	while (fgets(line, sizeof(line), file) != NULL) {
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
			char *v = line + strlen(key) + 1;

			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			snprintf(out, size, "%s", v);
		}
	}
	fclose(file);
}

START_TEST(test_no_capabilities_and_bound_fs_ids)
{
	struct instance inst = start();
	char value[256];
	unsigned fs_uid = 0, fs_gid = 0;

	status_field(inst.pid, "CapEff", value, sizeof(value));
	ck_assert_str_eq(value, "0000000000000000");
	status_field(inst.pid, "CapPrm", value, sizeof(value));
	ck_assert_str_eq(value, "0000000000000000");
	status_field(inst.pid, "NoNewPrivs", value, sizeof(value));
	ck_assert_str_eq(value, "1");
	status_field(inst.pid, "Uid", value, sizeof(value));
	ck_assert_int_eq(sscanf(value, "%*u %*u %*u %u", &fs_uid), 1);
	ck_assert_uint_eq(fs_uid, BOUND);
	status_field(inst.pid, "Gid", value, sizeof(value));
	ck_assert_int_eq(sscanf(value, "%*u %*u %*u %u", &fs_gid), 1);
	ck_assert_uint_eq(fs_gid, BOUND);
	status_field(inst.pid, "Groups", value, sizeof(value));
	ck_assert_str_eq(value, "");
	stop(&inst);
}
END_TEST

/* ---- stopping and dying ------------------------------------------------------ */

START_TEST(test_sigterm_waits_for_open_files)
{
	struct instance inst = start();
	int fd;

	write_text(in(back, "f"), "f", BOUND);
	fd = open(in(mnt, "f"), O_RDONLY);
	/* Root may not open: take the file open as the app would, in this process. */
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(setresuid(-1, APP, -1), 0);
	fd = open(in(mnt, "f"), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setresuid(-1, 0, -1), 0);
	ck_assert_int_eq(kill(inst.pid, SIGTERM), 0);
	/* Detached at once, but still serving the open file until it is closed. */
	usleep(300000);
	ck_assert_int_eq(mounts_under(inst.mountpoint), 0);
	ck_assert_int_eq(wait_exit(inst.pid, 0), -1);
	{
		char c;

		ck_assert_int_eq(pread(fd, &c, 1, 0), 1);
		ck_assert_int_eq(c, 'f');
	}
	close(fd);
	ck_assert_int_eq(wait_exit(inst.pid, 5000), 0);
}
END_TEST

START_TEST(test_sigterm_unmounts_and_exits_zero)
{
	struct instance inst = start();

	stop(&inst);
	/* The mountpoint directory stays for the mount helper's unmount to remove. */
	ck_assert_int_eq(access(inst.mountpoint, F_OK), 0);
}
END_TEST

START_TEST(test_sigkill_detached_by_sentry)
{
	struct instance inst = start();
	int waited;

	ck_assert_int_eq(kill(inst.pid, SIGKILL), 0);
	ck_assert_int_eq(wait_exit(inst.pid, 5000), 128 + SIGKILL);
	for (waited = 0; waited < 1000 && mounts_under(inst.mountpoint) != 0; waited += 10)
		usleep(10000);
	ck_assert_msg(waited < 1000, "the dead mount is still there after a second");
}
END_TEST

START_TEST(test_sigkill_of_group_leaves_dead_mount_umount_clears)
{
	struct instance inst = start();
	struct stat st;
	char path[sizeof(mnt) + 8];

	/* The daemon's deadline kills the whole process group: sentry included. */
	ck_assert_int_eq(kill(-inst.pid, SIGKILL), 0);
	ck_assert_int_eq(wait_exit(inst.pid, 5000), 128 + SIGKILL);
	usleep(200000);
	ck_assert_int_eq(mounts_under(inst.mountpoint), 1);
	path_join(path, sizeof(path), inst.mountpoint, "x");
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(errno, ENOTCONN);
	ck_assert_int_eq(umount2(inst.mountpoint, MNT_DETACH), 0);
	ck_assert_int_eq(mounts_under(inst.mountpoint), 0);
}
END_TEST

START_TEST(test_umount_by_someone_else_ends_session)
{
	struct instance inst = start();

	ck_assert_int_eq(umount2(inst.mountpoint, MNT_DETACH), 0);
	ck_assert_int_eq(wait_exit(inst.pid, 5000), 0);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------ */

START_TEST(test_bad_arguments_refused)
{
	char file[sizeof(back) + 16], linked[sizeof(base) + 16], via_link[sizeof(base) + 32];
	char outside[sizeof(base) + 16];

	path_join(file, sizeof(file), back, "plain");
	write_text(file, "x", 0);
	path_join(linked, sizeof(linked), base, "linked");
	ck_assert_int_eq(symlink("back", linked), 0);
	path_join(via_link, sizeof(via_link), linked, ".");
	path_join(outside, sizeof(outside), base, "outside");
	ck_assert_int_eq(mkdir(outside, 0755), 0);

	REFUSED(NFSV3_EXIT_USAGE, "usage", root, back, "v", "1234", "1234", "2000", "2000");
	REFUSED(NFSV3_EXIT_REFUSED, "uid \"0\"", root, back, "v", "0", "1234", "2000", "2000", "rw");
	REFUSED(NFSV3_EXIT_REFUSED, "gid \"0\"", root, back, "v", "1234", "0", "2000", "2000", "rw");
	REFUSED(NFSV3_EXIT_REFUSED, "app uid", root, back, "v", "1234", "1234", "0", "2000", "rw");
	REFUSED(NFSV3_EXIT_REFUSED, "uid \"-1\"", root, back, "v", "-1", "1234", "2000", "2000", "rw");
	REFUSED(NFSV3_EXIT_REFUSED, "uid \"4294967295\"", root, back, "v", "4294967295", "1234",
		"2000", "2000", "rw");
	REFUSED(NFSV3_EXIT_REFUSED, "uid \"01234\"", root, back, "v", "01234", "1234", "2000",
		"2000", "rw");
	REFUSED(NFSV3_EXIT_REFUSED, "gid \"12a\"", root, back, "v", "1234", "12a", "2000", "2000", "rw");
	REFUSED(NFSV3_EXIT_REFUSED, "mode", root, back, "v", "1234", "1234", "2000", "2000", "rwx");
	REFUSED(NFSV3_EXIT_REFUSED, "expected passthrough=auto or passthrough=off", root, back, "v", "1234",
		"1234", "2000", "2000", "rw", "passthrough=on");
	REFUSED(NFSV3_EXIT_USAGE, "usage", root, back, "v", "1234", "1234", "2000", "2000", "rw",
		"passthrough=off", "extra");
	REFUSED(NFSV3_EXIT_REFUSED, "not a directory", root, file, "v", "1234", "1234", "2000",
		"2000", "rw");
	REFUSED(NFSV3_EXIT_REFUSED, "not an absolute path", root, "back", "v", "1234", "1234",
		"2000", "2000", "rw");
	REFUSED(NFSV3_EXIT_REFUSED, "symlink", root, via_link, "v", "1234", "1234", "2000", "2000",
		"rw");
	REFUSED(NFSV3_EXIT_REFUSED, "name \"a/b\"", root, back, "a/b", "1234", "1234", "2000",
		"2000", "rw");
	REFUSED(NFSV3_EXIT_REFUSED, "name \"..\"", root, back, "..", "1234", "1234", "2000", "2000",
		"rw");
	REFUSED(NFSV3_EXIT_REFUSED, "mount root", "relative", back, "v", "1234", "1234", "2000",
		"2000", "rw");
	/* A symlinked mountpoint, pointing out of the mount root. */
	ck_assert_int_eq(symlink(outside, mnt), 0);
	REFUSED(NFSV3_EXIT_REFUSED, "mountpoint vol: is a symlink", root, back, "vol", "1234", "1234",
		"2000", "2000", "rw");
	ck_assert_int_eq(unlink(mnt), 0);
	/* A mountpoint that holds files would hide them. */
	ck_assert_int_eq(mkdir(mnt, 0755), 0);
	write_text(in(mnt, "x"), "x", 0);
	REFUSED(NFSV3_EXIT_REFUSED, "not empty", root, back, "vol", "1234", "1234", "2000", "2000",
		"rw");
	/* No mountpoint directory is left behind by a refusal after it was made. */
	{
		char made[sizeof(root) + 8];

		path_join(made, sizeof(made), root, "v");
		ck_assert_int_eq(access(made, F_OK), -1);
	}
}
END_TEST

START_TEST(test_already_mounted_refused)
{
	struct instance inst = start();

	REFUSED(NFSV3_EXIT_REFUSED, "already mounted", root, back, "vol", "1234", "1234", "2000",
		"2000", "rw");
	stop(&inst);
}
END_TEST

START_TEST(test_without_privilege_refused)
{
	expect_refused(65534, NFSV3_EXIT_PRIVILEGE, "not permitted",
		       (const char *const[]){root, back, "vol", "1234", "1234", "2000", "2000", "rw", NULL});
}
END_TEST

/* ---- operations ------------------------------------------------------------------- */

static int client_file_ops(void)
{
	char buf[64];
	struct stat st;
	struct statvfs vfs;
	struct timespec times[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1100000000}};
	char *map;
	int fd;

	/* O_EXCL, O_TRUNC, O_APPEND. */
	fd = open(in(mnt, "f"), O_RDWR | O_CREAT | O_EXCL, 0644);
	EXPECT(fd >= 0);
	EXPECT(write(fd, "hello world", 11) == 11);
	EXPECT(fsync(fd) == 0 && fdatasync(fd) == 0);
	EXPECT(pread(fd, buf, 5, 6) == 5 && memcmp(buf, "world", 5) == 0);
	EXPECT(close(fd) == 0);
	EXPECT(open(in(mnt, "f"), O_RDWR | O_CREAT | O_EXCL, 0644) == -1 && errno == EEXIST);
	fd = open(in(mnt, "f"), O_WRONLY | O_APPEND);
	EXPECT(fd >= 0);
	EXPECT(write(fd, "!", 1) == 1);
	EXPECT(close(fd) == 0);
	EXPECT(stat(in(mnt, "f"), &st) == 0 && st.st_size == 12);
	fd = open(in(mnt, "f"), O_WRONLY | O_TRUNC);
	EXPECT(fd >= 0);
	EXPECT(fstat(fd, &st) == 0 && st.st_size == 0);
	EXPECT(write(fd, "abc", 3) == 3);
	EXPECT(close(fd) == 0);

	/* truncate, fallocate, chmod, utimensat, access. */
	EXPECT(truncate(in(mnt, "f"), 10) == 0);
	EXPECT(stat(in(mnt, "f"), &st) == 0 && st.st_size == 10);
	fd = open(in(mnt, "f"), O_RDWR);
	EXPECT(fd >= 0);
	EXPECT(ftruncate(fd, 2) == 0);
	EXPECT(fallocate(fd, 0, 0, 1 << 20) == 0);
	EXPECT(fstat(fd, &st) == 0 && st.st_size == 1 << 20);
	EXPECT(fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, 4096) == 0);

	/* mmap, shared and private. */
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	EXPECT(map != MAP_FAILED);
	memcpy(map, "mapped", 6);
	EXPECT(msync(map, 4096, MS_SYNC) == 0);
	EXPECT(munmap(map, 4096) == 0);
	EXPECT(pread(fd, buf, 6, 0) == 6 && memcmp(buf, "mapped", 6) == 0);
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	EXPECT(map != MAP_FAILED);
	memcpy(map, "privat", 6);
	EXPECT(munmap(map, 4096) == 0);
	EXPECT(pread(fd, buf, 6, 0) == 6 && memcmp(buf, "mapped", 6) == 0);
	EXPECT(close(fd) == 0);

	EXPECT(chmod(in(mnt, "f"), 0600) == 0);
	EXPECT(stat(in(mnt, "f"), &st) == 0 && (st.st_mode & 07777) == 0600);
	EXPECT(utimensat(AT_FDCWD, in(mnt, "f"), times, 0) == 0);
	EXPECT(stat(in(mnt, "f"), &st) == 0 && st.st_atime == 1000000000 &&
	       st.st_mtime == 1100000000);
	EXPECT(utimensat(AT_FDCWD, in(mnt, "f"), NULL, 0) == 0);
	EXPECT(stat(in(mnt, "f"), &st) == 0 && st.st_mtime > 1100000000);
	EXPECT(access(in(mnt, "f"), R_OK | W_OK) == 0);
	EXPECT(access(in(mnt, "f"), X_OK) == -1 && errno == EACCES);

	/* Directories, symlinks, rename, unlink, rmdir, statfs. */
	EXPECT(mkdir(in(mnt, "d"), 0755) == 0);
	EXPECT(mkdir(in(mnt, "d/sub"), 0755) == 0);
	EXPECT(rmdir(in(mnt, "d")) == -1 && errno == ENOTEMPTY);
	EXPECT(rmdir(in(mnt, "d/sub")) == 0);
	EXPECT(symlink("../f", in(mnt, "d/l")) == 0);
	EXPECT(readlink(in(mnt, "d/l"), buf, sizeof(buf)) == 4 && memcmp(buf, "../f", 4) == 0);
	EXPECT(stat(in(mnt, "d/l"), &st) == 0 && S_ISREG(st.st_mode));
	EXPECT(rename(in(mnt, "f"), in(mnt, "d/g")) == 0);
	EXPECT(stat(in(mnt, "f"), &st) == -1 && errno == ENOENT);
	EXPECT(stat(in(mnt, "d/g"), &st) == 0);
	EXPECT(unlink(in(mnt, "d/g")) == 0);
	EXPECT(unlink(in(mnt, "d/l")) == 0);
	EXPECT(rmdir(in(mnt, "d")) == 0);
	EXPECT(statvfs(mnt, &vfs) == 0 && vfs.f_blocks > 0);
	EXPECT(!(vfs.f_flag & ST_RDONLY) && (vfs.f_flag & ST_NOSUID) && (vfs.f_flag & ST_NODEV));
	return 0;
}

START_TEST(test_file_operations)
{
	struct instance inst = start();

	AS(APP, client_file_ops);
	ck_assert_int_eq(access(in(back, "f"), F_OK), -1);
	stop(&inst);
}
END_TEST

static int client_direct_io(void)
{
	void *buf;
	int fd;

	EXPECT(posix_memalign(&buf, 4096, 8192) == 0);
	memset(buf, 'd', 8192);
	fd = open(in(mnt, "direct"), O_RDWR | O_CREAT | O_DIRECT, 0644);
	EXPECT(fd >= 0);
	EXPECT(pwrite(fd, buf, 8192, 0) == 8192);
	memset(buf, 0, 8192);
	EXPECT(pread(fd, buf, 4096, 4096) == 4096);
	EXPECT(((char *)buf)[4095] == 'd');
	EXPECT(close(fd) == 0);
	free(buf);
	return 0;
}

START_TEST(test_direct_io)
{
	struct instance inst = start();
	struct stat st;

	AS(APP, client_direct_io);
	ck_assert_int_eq(stat(in(back, "direct"), &st), 0);
	ck_assert_int_eq(st.st_size, 8192);
	stop(&inst);
}
END_TEST

/*
 * Write-only opens bypass the kernel's page cache (direct_io): a reader
 * that holds the file open with its first page cached must still read what
 * the writer appended, not the stale page.
 */
static int client_write_only_coherent(void)
{
	char buf[32] = {0};
	int reader, writer;

	reader = open(in(mnt, "log"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	EXPECT(reader >= 0);
	EXPECT(write(reader, "hello", 5) == 5);
	EXPECT(pread(reader, buf, sizeof(buf), 0) == 5);
	writer = open(in(mnt, "log"), O_WRONLY | O_APPEND);
	EXPECT(writer >= 0);
	EXPECT(write(writer, " world", 6) == 6);
	EXPECT(close(writer) == 0);
	memset(buf, 0, sizeof(buf));
	EXPECT(pread(reader, buf, sizeof(buf), 0) == 11);
	EXPECT(memcmp(buf, "hello world", 11) == 0);
	EXPECT(close(reader) == 0);
	return 0;
}

START_TEST(test_write_only_open_coherent_with_reader)
{
	struct instance inst = start();
	char buf[32] = {0};
	int fd;

	AS(APP, client_write_only_coherent);
	fd = open(in(back, "log"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 11);
	close(fd);
	stop(&inst);
}
END_TEST

/*
 * The kernel's cached pages, on the normal path (passthrough uses none):
 * kept across opens of a file nobody changed (close-to-open, as NFS keeps
 * its cache), dropped at open when someone changed it behind idmapfs's
 * back, dropped at a stat of an open file that shows another's change,
 * and dropped for the range a write-only open of ours overwrites.
 */
enum { CACHE_PAGES = 16 };

static int resident_pages(int fd)
{
	unsigned char vec[CACHE_PAGES];
	int resident = 0;
	void *map = mmap(NULL, CACHE_PAGES * 4096, PROT_READ, MAP_SHARED, fd, 0);

	if (map == MAP_FAILED || mincore(map, CACHE_PAGES * 4096, vec) != 0)
		return -1;
	for (int i = 0; i < CACHE_PAGES; i++)
		resident += vec[i] & 1;
	munmap(map, CACHE_PAGES * 4096);
	return resident;
}

/* Fill fd's first CACHE_PAGES pages with c, through whatever fd is open on. */
static bool fill(int fd, char c)
{
	static char data[CACHE_PAGES * 4096];

	memset(data, c, sizeof(data));
	return pwrite(fd, data, sizeof(data), 0) == (ssize_t)sizeof(data);
}

/* Whether all of fd's first CACHE_PAGES pages read as c. */
static bool reads_as(int fd, char c)
{
	static char data[CACHE_PAGES * 4096];

	if (pread(fd, data, sizeof(data), 0) != (ssize_t)sizeof(data))
		return false;
	for (size_t i = 0; i < sizeof(data); i++)
		if (data[i] != c)
			return false;
	return true;
}

/* A change made on the backing directly, in a later clock tick than the last (so that the mtime moves). */
static bool change_behind(const char *name, char c)
{
	int fd;
	bool ok;

	usleep(20 * 1000);
	fd = open(in(back, name), O_WRONLY | O_CLOEXEC);
	ok = fd >= 0 && fill(fd, c);
	if (fd >= 0)
		close(fd);
	return ok;
}

static int client_page_cache(void)
{
	int fd, reader, writer, kept;
	struct stat st;

	fd = open(in(mnt, "cached"), O_RDWR | O_CREAT | O_TRUNC, 0666);
	EXPECT(fd >= 0 && fill(fd, 'a') && fchmod(fd, 0666) == 0 && close(fd) == 0);
	fd = open(in(mnt, "cached"), O_RDONLY);
	EXPECT(fd >= 0 && reads_as(fd, 'a') && close(fd) == 0);
	/* Unchanged: the next open keeps every page. */
	fd = open(in(mnt, "cached"), O_RDONLY);
	EXPECT(fd >= 0);
	kept = resident_pages(fd);
	if (kept != CACHE_PAGES) {
		fprintf(stderr, "an open of an unchanged file kept %d of %d cached pages\n", kept, CACHE_PAGES);
		_exit(1);
	}
	EXPECT(close(fd) == 0);
	/* Changed behind idmapfs's back: the next open reads the new data. */
	EXPECT(change_behind("cached", 'b'));
	fd = open(in(mnt, "cached"), O_RDONLY);
	EXPECT(fd >= 0 && reads_as(fd, 'b'));
	/* Changed while open: a stat that shows the change drops the old pages. */
	EXPECT(change_behind("cached", 'c'));
	EXPECT(fstat(fd, &st) == 0 && reads_as(fd, 'c') && close(fd) == 0);
	/* A write-only open of ours overwrites pages a reader holds: the reader sees the new data. */
	reader = open(in(mnt, "cached"), O_RDONLY);
	EXPECT(reader >= 0 && reads_as(reader, 'c'));
	writer = open(in(mnt, "cached"), O_WRONLY);
	EXPECT(writer >= 0 && fill(writer, 'd') && close(writer) == 0);
	EXPECT(reads_as(reader, 'd') && close(reader) == 0);
	return 0;
}

START_TEST(test_page_cache_follows_changes)
{
	struct instance inst = start_without_passthrough();

	AS(APP, client_page_cache);
	stop(&inst);
}
END_TEST

/*
 * On the normal path, what a write-only open writes goes straight to the
 * backing, not through the kernel's page cache: a reader's mapping of the file, opened before
 * the write, has none of the written pages resident. (Cached write-through
 * would leave all of them there.)
 */
static int client_write_only_uncached(void)
{
	int reader, writer, resident;
	void *map;

	writer = open(in(mnt, "uncached"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	EXPECT(writer >= 0);
	EXPECT(ftruncate(writer, CACHE_PAGES * 4096) == 0);
	reader = open(in(mnt, "uncached"), O_RDONLY);
	EXPECT(reader >= 0);
	map = mmap(NULL, CACHE_PAGES * 4096, PROT_READ, MAP_SHARED, reader, 0);
	EXPECT(map != MAP_FAILED);
	EXPECT(fill(writer, 'w'));
	resident = resident_pages(reader);
	if (resident != 0) {
		fprintf(stderr, "%d of %d written pages are in the page cache\n", resident, CACHE_PAGES);
		_exit(1);
	}
	EXPECT(((char *)map)[CACHE_PAGES * 4096 - 1] == 'w');
	EXPECT(munmap(map, CACHE_PAGES * 4096) == 0);
	EXPECT(close(reader) == 0 && close(writer) == 0);
	return 0;
}

START_TEST(test_write_only_open_bypasses_page_cache)
{
	/* With passthrough the reader maps the backing's own pages, coherent by themselves. */
	struct instance inst = start_without_passthrough();

	AS(APP, client_write_only_uncached);
	stop(&inst);
}
END_TEST

/*
 * The kernel leaves suid clearing on write-only (direct_io) opens to the
 * file system: the backing must clear it, since we write without
 * CAP_FSETID.
 */
static int client_write_clears_suid(void)
{
	struct stat st;
	int fd;

	fd = open(in(mnt, "tool"), O_WRONLY | O_CREAT | O_TRUNC, 0755);
	EXPECT(fd >= 0);
	EXPECT(fchmod(fd, 04755) == 0);
	EXPECT(close(fd) == 0);
	EXPECT(stat(in(mnt, "tool"), &st) == 0 && (st.st_mode & 07777) == 04755);
	fd = open(in(mnt, "tool"), O_WRONLY);
	EXPECT(fd >= 0);
	EXPECT(write(fd, "#!", 2) == 2);
	EXPECT(close(fd) == 0);
	return 0;
}

START_TEST(test_write_clears_suid)
{
	struct instance inst = start();
	struct stat st;

	AS(APP, client_write_clears_suid);
	ck_assert_int_eq(stat(in(back, "tool"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0755);
	stop(&inst);
}
END_TEST

/* Write and close through the mount, write-only and read-write. */
static int client_write_and_close(void)
{
	int fd;

	fd = open(in(mnt, "closed"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	EXPECT(fd >= 0);
	EXPECT(write(fd, "one", 3) == 3);
	EXPECT(close(fd) == 0);
	fd = open(in(mnt, "closed"), O_RDWR);
	EXPECT(fd >= 0);
	EXPECT(write(fd, "two", 3) == 3);
	EXPECT(close(fd) == 0);
	return 0;
}

/* Write text to a tracefs file; whether it took. */
static bool trace_write(const char *dir, const char *file, const char *text)
{
	char path[512];
	int fd;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return false;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	return close(fd) == 0 && ok;
}

/* Lines of the trace in dir naming opcode ("FUSE_FLUSH"). */
static int trace_count(const char *dir, const char *opcode)
{
	char path[512], line[1024], needle[64];
	int count = 0;
	FILE *file;

	snprintf(path, sizeof(path), "%s/trace", dir);
	snprintf(needle, sizeof(needle), "(%s)", opcode);
	file = fopen(path, "re");
	if (file == NULL)
		return -1;
	while (fgets(line, sizeof(line), file) != NULL)
		count += strstr(line, needle) != NULL;
	fclose(file);
	return count;
}

/*
 * A local backing does nothing at close, so closing a file written through
 * the mount sends no FLUSH. Counted from the kernel's fuse_request_send
 * tracepoint, in a trace instance of our own, filtered to this connection;
 * passes with a note where the kernel has no such tracepoint.
 */
START_TEST(test_no_flush_on_local_backing)
{
	struct instance inst = start();
	char dir[128], filter[64];
	int code, opens, flushes;
	struct stat st;
	bool traced;

	ck_assert_int_eq(stat(mnt, &st), 0);
	snprintf(dir, sizeof(dir), "/sys/kernel/tracing/instances/nfsv3-idmapfs-%d", (int)getpid());
	if (mkdir(dir, 0700) != 0) {
		fprintf(stderr, "test_no_flush_on_local_backing: not checked: no trace instance %s: %s\n", dir,
			strerror(errno));
		stop(&inst);
		return;
	}
	/* The kernel's dev_t of the mount's superblock names the connection. */
	snprintf(filter, sizeof(filter), "connection == %u", (major(st.st_dev) << 20) | minor(st.st_dev));
	traced = trace_write(dir, "events/fuse/fuse_request_send/filter", filter) &&
		 trace_write(dir, "events/fuse/fuse_request_send/enable", "1");
	code = traced ? as_uid(APP, client_write_and_close) : 0;
	trace_write(dir, "events/fuse/fuse_request_send/enable", "0");
	opens = trace_count(dir, "FUSE_OPEN") + trace_count(dir, "FUSE_CREATE");
	flushes = trace_count(dir, "FUSE_FLUSH");
	ck_assert_msg(rmdir(dir) == 0, "rmdir %s: %s", dir, strerror(errno));
	if (!traced) {
		fprintf(stderr, "test_no_flush_on_local_backing: not checked: no fuse_request_send tracepoint\n");
		stop(&inst);
		return;
	}
	ck_assert_msg(code == 0, "client_write_and_close as uid %d failed", APP);
	/* The trace saw this connection's requests: an empty trace proves nothing. */
	ck_assert_int_ge(opens, 2);
	ck_assert_msg(flushes == 0, "%d FUSE_FLUSH requests", flushes);
	stop(&inst);
}
END_TEST

/* ---- passthrough ------------------------------------------------------------------- */

/* Whether this kernel has FUSE passthrough (Linux 6.9). */
static bool kernel_has_passthrough(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;

	ck_assert_int_eq(uname(&u), 0);
	sscanf(u.release, "%u.%u", &major, &minor);
	return major > 6 || (major == 6 && minor >= 9);
}

/*
 * Trace this test's connection (the mount at mnt) in an instance of our
 * own: true with the instance's directory in dir, false (with a note on
 * stderr, nothing left behind) where the kernel cannot.
 */
static bool trace_begin(const char *test, char *dir, size_t size)
{
	char filter[64];
	struct stat st;

	ck_assert_int_eq(stat(mnt, &st), 0);
	snprintf(dir, size, "/sys/kernel/tracing/instances/nfsv3-idmapfs-%d", (int)getpid());
	if (mkdir(dir, 0700) != 0) {
		fprintf(stderr, "%s: not checked: no trace instance %s: %s\n", test, dir, strerror(errno));
		return false;
	}
	snprintf(filter, sizeof(filter), "connection == %u", (major(st.st_dev) << 20) | minor(st.st_dev));
	if (!trace_write(dir, "events/fuse/fuse_request_send/filter", filter) ||
	    !trace_write(dir, "events/fuse/fuse_request_send/enable", "1")) {
		rmdir(dir);
		fprintf(stderr, "%s: not checked: no fuse_request_send tracepoint\n", test);
		return false;
	}
	return true;
}

static void trace_stop(const char *dir)
{
	trace_write(dir, "events/fuse/fuse_request_send/enable", "0");
}

static void trace_end(const char *dir)
{
	ck_assert_msg(rmdir(dir) == 0, "rmdir %s: %s", dir, strerror(errno));
}

#define PT_SIZE (1024 * 1024)

/* A file only the bound uid may read or write, of PT_SIZE bytes of 'b'. */
static void make_bound_only_file(const char *name)
{
	static char data[PT_SIZE];
	int fd = open(in(back, name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	memset(data, 'b', sizeof(data));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	ck_assert_int_eq(fchown(fd, BOUND, BOUND), 0);
	close(fd);
}

/* Read it whole, overwrite its first 64 KiB, read that back through a mapping, append through a write-only open. */
static int client_file_io(void)
{
	static char buf[PT_SIZE];
	int fd = open(in(mnt, "pt"), O_RDWR);
	char *map;

	EXPECT(fd >= 0);
	EXPECT(read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	EXPECT(buf[0] == 'b' && buf[sizeof(buf) - 1] == 'b');
	memset(buf, 'a', 65536);
	EXPECT(pwrite(fd, buf, 65536, 0) == 65536);
	map = mmap(NULL, PT_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	EXPECT(map != MAP_FAILED);
	EXPECT(map[0] == 'a' && map[65535] == 'a' && map[65536] == 'b');
	EXPECT(munmap(map, PT_SIZE) == 0);
	EXPECT(close(fd) == 0);
	fd = open(in(mnt, "pt"), O_WRONLY | O_APPEND);
	EXPECT(fd >= 0);
	EXPECT(write(fd, "end", 3) == 3);
	EXPECT(close(fd) == 0);
	return 0;
}

/* The backing holds what client_file_io wrote. */
static void expect_file_io_done(void)
{
	char head[4] = {0}, tail[4] = {0};
	struct stat st;
	int fd = open(in(back, "pt"), O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, PT_SIZE + 3);
	ck_assert_int_eq(pread(fd, head, 3, 0), 3);
	ck_assert_int_eq(pread(fd, tail, 3, PT_SIZE), 3);
	ck_assert_str_eq(head, "aaa");
	ck_assert_str_eq(tail, "end");
	close(fd);
}

/* The pid of inst's passthrough sentry (a child named idmapfs-pt), 0 if it has none. */
static pid_t passthrough_sentry_of(pid_t server)
{
	struct dirent *entry;
	DIR *proc = opendir("/proc");
	pid_t found = 0;

	ck_assert_ptr_nonnull(proc);
	while ((entry = readdir(proc)) != NULL && found == 0) {
		char path[300], line[256], name[64] = "";
		int ppid = -1;
		FILE *file;

		if (entry->d_name[0] < '1' || entry->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", entry->d_name);
		file = fopen(path, "re");
		if (file == NULL)
			continue;
		while (fgets(line, sizeof(line), file) != NULL) {
			sscanf(line, "Name: %63s", name);
			sscanf(line, "PPid: %d", &ppid);
		}
		fclose(file);
		if (ppid == server && strcmp(name, "idmapfs-pt") == 0)
			found = atoi(entry->d_name);
	}
	closedir(proc);
	return found;
}

/*
 * With passthrough (the default, where the kernel has it) a regular file's
 * reads, writes and mapping never reach the server: the trace shows its
 * opens and no READ or WRITE. The file is the bound uid's alone (0600).
 */
START_TEST(test_passthrough_io_skips_the_server)
{
	struct instance inst;
	char dir[128];
	int code, opens, reads, writes;

	make_bound_only_file("pt");
	inst = start();
	if (!kernel_has_passthrough()) {
		fprintf(stderr, "test_passthrough_io_skips_the_server: not checked: no FUSE passthrough before Linux 6.9\n");
		ck_assert_int_eq(passthrough_sentry_of(inst.pid), 0);
		stop(&inst);
		return;
	}
	if (!trace_begin("test_passthrough_io_skips_the_server", dir, sizeof(dir))) {
		stop(&inst);
		return;
	}
	code = as_uid(APP, client_file_io);
	trace_stop(dir);
	opens = trace_count(dir, "FUSE_OPEN");
	reads = trace_count(dir, "FUSE_READ");
	writes = trace_count(dir, "FUSE_WRITE");
	trace_end(dir);
	ck_assert_msg(code == 0, "client_file_io as uid %d failed", APP);
	ck_assert_int_ge(opens, 2);
	ck_assert_msg(reads == 0 && writes == 0, "%d FUSE_READ and %d FUSE_WRITE requests with passthrough", reads,
		      writes);
	expect_file_io_done();
	stop(&inst);
}
END_TEST

/* passthrough=off: the same I/O, all of it served by idmapfs, and no sentry for it. */
START_TEST(test_passthrough_off_serves_io)
{
	struct instance inst;
	char dir[128];
	int code, reads, writes;

	make_bound_only_file("pt");
	inst = start_without_passthrough();
	ck_assert_int_eq(passthrough_sentry_of(inst.pid), 0);
	if (!trace_begin("test_passthrough_off_serves_io", dir, sizeof(dir))) {
		AS(APP, client_file_io);
		expect_file_io_done();
		stop(&inst);
		return;
	}
	code = as_uid(APP, client_file_io);
	trace_stop(dir);
	reads = trace_count(dir, "FUSE_READ");
	writes = trace_count(dir, "FUSE_WRITE");
	trace_end(dir);
	ck_assert_msg(code == 0, "client_file_io as uid %d failed", APP);
	ck_assert_msg(reads >= 1 && writes >= 2, "%d FUSE_READ and %d FUSE_WRITE requests without passthrough",
		      reads, writes);
	expect_file_io_done();
	stop(&inst);
}
END_TEST

/*
 * The passthrough sentry holds CAP_SYS_ADMIN alone (the backing-open ioctl
 * needs it) and has the bound fsuid/fsgid and no groups (the kernel does
 * the backing I/O with its credentials); it ends with the server.
 */
START_TEST(test_passthrough_sentry_privilege)
{
	struct instance inst = start();
	unsigned fs_uid = 0, fs_gid = 0;
	char value[256];
	pid_t sentry;

	sentry = passthrough_sentry_of(inst.pid);
	if (!kernel_has_passthrough()) {
		ck_assert_int_eq(sentry, 0);
		stop(&inst);
		return;
	}
	ck_assert_msg(sentry > 0, "no passthrough sentry under idmapfs %d", (int)inst.pid);
	status_field(sentry, "CapEff", value, sizeof(value));
	ck_assert_str_eq(value, "0000000000200000");
	status_field(sentry, "CapPrm", value, sizeof(value));
	ck_assert_str_eq(value, "0000000000200000");
	status_field(sentry, "CapInh", value, sizeof(value));
	ck_assert_str_eq(value, "0000000000000000");
	status_field(sentry, "NoNewPrivs", value, sizeof(value));
	ck_assert_str_eq(value, "1");
	status_field(sentry, "Uid", value, sizeof(value));
	ck_assert_int_eq(sscanf(value, "%*u %*u %*u %u", &fs_uid), 1);
	ck_assert_uint_eq(fs_uid, BOUND);
	status_field(sentry, "Gid", value, sizeof(value));
	ck_assert_int_eq(sscanf(value, "%*u %*u %*u %u", &fs_gid), 1);
	ck_assert_uint_eq(fs_gid, BOUND);
	status_field(sentry, "Groups", value, sizeof(value));
	ck_assert_str_eq(value, "");
	stop(&inst);
	ck_assert_int_eq(kill(sentry, 0), -1);
}
END_TEST

/* ---- stress ------------------------------------------------------------------------ */

/* The number of fds pid has open (the server holds one per inode the kernel knows). */
static int open_fds(pid_t pid)
{
	char path[64];
	struct dirent *entry;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	ck_assert_ptr_nonnull(dir);
	while ((entry = readdir(dir)) != NULL)
		n += entry->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* One of four stress workers: its own directory of lookups, creates, links, renames, listings and unlinks. */
static int client_stress(int worker)
{
	char dir[sizeof(mnt) + 16], a[sizeof(mnt) + 48], b[sizeof(mnt) + 48];
	struct dirent *entry;
	struct stat st;
	DIR *listing;

	snprintf(dir, sizeof(dir), "%s/w%d", mnt, worker);
	EXPECT(mkdir(dir, 0755) == 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 200; i++) {
			snprintf(a, sizeof(a), "%s/f%d", dir, i);
			int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);

			EXPECT(fd >= 0 && close(fd) == 0);
			EXPECT(stat(a, &st) == 0);
			if (i % 4 == 0) {
				snprintf(b, sizeof(b), "%s/l%d", dir, i);
				EXPECT(link(a, b) == 0);
			}
			if (i % 4 == 1) {
				snprintf(b, sizeof(b), "%s/r%d", dir, i);
				EXPECT(rename(a, b) == 0);
			}
		}
		/* A listing with attributes (READDIRPLUS) hands the kernel a reference per entry. */
		listing = opendir(dir);
		EXPECT(listing != NULL);
		while ((entry = readdir(listing)) != NULL) {
			snprintf(a, sizeof(a), "%s/%s", dir, entry->d_name);
			EXPECT(lstat(a, &st) == 0);
		}
		EXPECT(closedir(listing) == 0);
		for (int i = 0; i < 200; i++) {
			snprintf(a, sizeof(a), "%s/%c%d", dir, i % 4 == 1 ? 'r' : 'f', i);
			snprintf(b, sizeof(b), "%s/l%d", dir, i);
			/* Half go; the other half stay on the backing, known to the kernel until it forgets them. */
			if (i % 2 == 0 || round < 2)
				EXPECT(unlink(a) == 0);
			if (i % 4 == 0 && round < 2)
				EXPECT(unlink(b) == 0);
			EXPECT(stat(a, &st) == (i % 2 == 0 || round < 2 ? -1 : 0));
		}
	}
	return 0;
}

static int client_stress_0(void) { return client_stress(0); }
static int client_stress_1(void) { return client_stress(1); }
static int client_stress_2(void) { return client_stress(2); }
static int client_stress_3(void) { return client_stress(3); }

/*
 * Lookup references under stress: four clients at once, then the kernel
 * drops its caches and forgets every inode; the server must then hold no
 * more fds than when it started (one per inode it still keeps).
 */
START_TEST(test_forgets_leave_no_inode_behind)
{
	struct instance inst = start();
	int (*const workers[])(void) = {client_stress_0, client_stress_1, client_stress_2, client_stress_3};
	pid_t pids[4];
	int baseline, now = 0, status;
	struct stat st;

	ck_assert_int_eq(stat(mnt, &st), 0);
	baseline = open_fds(inst.pid);
	for (int i = 0; i < 4; i++)
		pids[i] = spawn_as(APP, workers[i]);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert_msg(status_code(status) == 0, "stress worker %d failed", i);
	}
	ck_assert_int_gt(open_fds(inst.pid), baseline + 100);
	for (int waited = 0; waited < 5000; waited += 100) {
		int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, "2", 1), 1);
		close(fd);
		usleep(100000);
		now = open_fds(inst.pid);
		if (now <= baseline)
			break;
	}
	ck_assert_msg(now == baseline, "%d fds after every inode was forgotten, %d at start", now, baseline);
	/* And it still serves. */
	ck_assert_int_eq(stat(in(mnt, "w3/f3"), &st), 0);
	stop(&inst);
}
END_TEST

/* Whether pid runs (a zombie has exited: the orphan waits for init to reap it). */
static bool process_alive(pid_t pid)
{
	char path[64], line[256], state = 0;
	FILE *file;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	file = fopen(path, "re");
	if (file == NULL)
		return false;
	if (fgets(line, sizeof(line), file) != NULL && strrchr(line, ')') != NULL)
		state = strrchr(line, ')')[2];
	fclose(file);
	return state != 0 && state != 'Z' && state != 'X';
}

/* Keep reading the file at its mount path until something fails; exit 0 if that is ENOTCONN or EIO. */
static int client_read_until_gone(void)
{
	static char buf[65536];
	struct stat st;
	int fd = open(in(mnt, "busy"), O_RDONLY);

	EXPECT(fd >= 0);
	for (;;) {
		const char *call = pread(fd, buf, sizeof(buf), 0) < 0 ? "pread"
				   : fstat(fd, &st) != 0		 ? "fstat"
				   : stat(in(mnt, "busy"), &st) != 0	 ? "stat"
									 : NULL;

		if (call == NULL)
			continue;
		if (errno == ENOTCONN || errno == EIO || errno == ECONNABORTED)
			return 0;
		/*
		 * The file stays on the backing: a name that no longer resolves
		 * means the mount was detached between the cached fstat and here.
		 */
		if (errno == ENOENT && strcmp(call, "stat") == 0)
			return 0;
		fprintf(stderr, "the reader's %s failed: %s\n", call, strerror(errno));
		return 2;
	}
}

/* Wait for a lock that is never released; exit 0 when the wait fails as the connection goes. */
static int client_lock_until_gone(void)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd = open(in(mnt, "busy"), O_RDWR);

	EXPECT(fd >= 0);
	EXPECT(fcntl(fd, F_SETLKW, &fl) == -1);
	return errno == ENOTCONN || errno == EIO || errno == ECONNABORTED ? 0 : 2;
}

/*
 * SIGKILL of the server alone while apps are busy in the mount, one reading
 * a file (through passthrough where the kernel has it) and one waiting for
 * a lock: neither hangs, both see the connection gone, the sentries let go
 * (the passthrough sentry's /dev/fuse fd would keep the session alive) and
 * the mount goes.
 */
START_TEST(test_killed_server_leaves_no_hung_mount)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct instance inst;
	pid_t reader, locker, pt;
	int holder, code;

	make_bound_only_file("busy");
	ck_assert_int_eq(chmod(in(back, "busy"), 0666), 0);
	inst = start();
	pt = passthrough_sentry_of(inst.pid);
	/* Held on the backing: the waiter's OFD lock there conflicts with it. */
	holder = open(in(back, "busy"), O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(holder, 0);
	ck_assert_int_eq(fcntl(holder, F_OFD_SETLK, &fl), 0);
	reader = spawn_as(APP, client_read_until_gone);
	locker = spawn_as(APP, client_lock_until_gone);
	usleep(300000);
	ck_assert_int_eq(kill(inst.pid, SIGKILL), 0);
	ck_assert_int_eq(wait_exit(inst.pid, 5000), 128 + SIGKILL);
	code = wait_exit(reader, 5000);
	if (code < 0)
		kill(reader, SIGKILL);
	ck_assert_msg(code == 0, "the reader %s", code < 0 ? "hangs" : "failed otherwise");
	code = wait_exit(locker, 5000);
	if (code < 0)
		kill(locker, SIGKILL);
	ck_assert_msg(code == 0, "the lock waiter %s", code < 0 ? "hangs" : "failed otherwise");
	close(holder);
	for (int waited = 0; waited < 2000 && mounts_under(inst.mountpoint) != 0; waited += 10)
		usleep(10000);
	ck_assert_int_eq(mounts_under(inst.mountpoint), 0);
	if (pt > 0)
		ck_assert_msg(!process_alive(pt), "the passthrough sentry %d outlived its server", (int)pt);
}
END_TEST

/* Each thread of pid as "tid:state:wchan", for a failure message. */
static const char *threads_of(pid_t pid)
{
	static char out[2048];
	char path[128], cmd[256];
	FILE *p;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	snprintf(cmd, sizeof(cmd),
		 "for t in %s/*; do printf '%%s:%%s:%%s ' \"${t##*/}\" \"$(cut -d' ' -f3 $t/stat)\" \"$(cat $t/wchan)\"; done",
		 path);
	out[0] = '\0';
	if ((p = popen(cmd, "r"))) {
		n = fread(out, 1, sizeof(out) - 1, p);
		out[n] = '\0';
		pclose(p);
	}
	return out;
}

/* Whether every thread of pid is stopped (state T). */
static bool all_stopped(pid_t pid)
{
	const char *t = threads_of(pid);

	if (!*t)
		return false;
	for (; (t = strchr(t, ':')); t = strchr(t + 1, ' '))
		if (t[1] != 'T')
			return false;
	return true;
}

/* In the client child: look up a name the mount has not seen (a backing call). */
static int client_stat_unseen_name(void)
{
	struct stat st;

	stat(in(mnt, "unseen"), &st);
	return 0;
}

/*
 * A backing call that never returns (here the backing is another idmapfs,
 * stopped; on a cell a dead NFS server under a hard mount) and an app
 * killed while it waits on it: the kernel waits for an answer even for a
 * killed caller, so idmapfs answers for it and the app dies at once, as
 * over the plain kernel mount. Stopped then, idmapfs detaches and exits
 * though its worker is still stuck, leaving neither mount nor process.
 */
START_TEST(test_killed_caller_of_a_stuck_backing_call)
{
	struct instance inner = start_on("inner", back, NFSV3_ARG_RW);
	struct instance outer = start_on("vol", inner.mountpoint, NFSV3_ARG_RW);
	pid_t app;
	int code;

	ck_assert_int_eq(kill(inner.pid, SIGSTOP), 0);
	/* Every thread stopped first: a request the backing had already read
	 * would be one the kernel must wait out, killed caller or not. */
	for (int i = 0; i < 200 && !all_stopped(inner.pid); i++)
		usleep(10000);
	ck_assert_msg(all_stopped(inner.pid), "the backing idmapfs did not stop: %s", threads_of(inner.pid));
	app = spawn_as(APP, client_stat_unseen_name);
	usleep(300000);
	ck_assert_msg(wait_exit(app, 0) == -1, "the lookup did not wait for the stopped backing");
	ck_assert_int_eq(kill(app, SIGKILL), 0);
	code = wait_exit(app, 3000);
	ck_assert_msg(code == 128 + SIGKILL, "the killed app %s", code < 0 ? "still waits" : "ended otherwise");
	ck_assert_int_eq(kill(outer.pid, SIGTERM), 0);
	code = wait_exit(outer.pid, 10000);
	if (code != 0)
		ck_abort_msg("idmapfs exited %d after SIGTERM (-1: still running); its threads: %s", code,
			     threads_of(outer.pid));
	ck_assert_int_eq(mounts_under(outer.mountpoint), 0);
	ck_assert_int_eq(kill(inner.pid, SIGCONT), 0);
	stop(&inner);
}
END_TEST

static void on_tick(int sig)
{
}

/*
 * 1000 lock waits, each ended by a periodic timer started just before it at
 * a different phase, so that the kernel's one FUSE_INTERRUPT per request
 * reaches the server before, while and after the wait starts. Every wait
 * must end in EINTR: an interrupt lost before the wait listens would hang
 * it for good.
 */
static int client_interrupt_race(void)
{
	struct sigaction sa = {.sa_handler = on_tick};
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd = open(in(mnt, "busy"), O_RDWR);

	EXPECT(fd >= 0);
	sigemptyset(&sa.sa_mask);
	EXPECT(sigaction(SIGALRM, &sa, NULL) == 0);
	for (int i = 0; i < 1000; i++) {
		struct itimerval t = {.it_interval = {0, 2000}, .it_value = {0, 1 + (i % 200) * 5}};
		struct itimerval off = {0};

		EXPECT(setitimer(ITIMER_REAL, &t, NULL) == 0);
		EXPECT(fcntl(fd, F_SETLKW, &fl) == -1 && errno == EINTR);
		EXPECT(setitimer(ITIMER_REAL, &off, NULL) == 0);
	}
	EXPECT(close(fd) == 0);
	return 0;
}

START_TEST(test_interrupts_at_every_moment)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	struct instance inst;
	pid_t client;
	int holder, code;

	make_bound_only_file("busy");
	ck_assert_int_eq(chmod(in(back, "busy"), 0666), 0);
	holder = open(in(back, "busy"), O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(holder, 0);
	ck_assert_int_eq(fcntl(holder, F_OFD_SETLK, &fl), 0);
	inst = start();
	client = spawn_as(APP, client_interrupt_race);
	code = wait_exit(client, 30000);
	if (code < 0)
		kill(client, SIGKILL);
	ck_assert_msg(code == 0, "interrupted lock waits %s", code < 0 ? "hang" : "failed");
	close(holder);
	stop(&inst);
}
END_TEST

/* The mount reads ahead more than the kernel's FUSE default of 128 KiB. */
START_TEST(test_readahead_raised)
{
	struct instance inst = start();
	char path[128], value[32] = {0};
	struct stat st;
	FILE *file;

	ck_assert_int_eq(stat(mnt, &st), 0);
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	file = fopen(path, "re");
	ck_assert_msg(file != NULL, "%s: %s", path, strerror(errno));
	ck_assert_ptr_nonnull(fgets(value, sizeof(value), file));
	fclose(file);
	ck_assert_int_eq(atoi(value), 4096);
	stop(&inst);
}
END_TEST

static int client_renames(void)
{
	char buf[8];
	int fd;

	EXPECT(rename(in(mnt, "a"), in(mnt, "b")) == 0);
	EXPECT(renameat2(AT_FDCWD, in(mnt, "b"), AT_FDCWD, in(mnt, "c"), RENAME_NOREPLACE) == -1 &&
	       errno == EEXIST);
	EXPECT(renameat2(AT_FDCWD, in(mnt, "b"), AT_FDCWD, in(mnt, "c"), RENAME_EXCHANGE) == 0);
	fd = open(in(mnt, "b"), O_RDONLY);
	EXPECT(fd >= 0 && read(fd, buf, 1) == 1 && buf[0] == 'c');
	close(fd);
	fd = open(in(mnt, "c"), O_RDONLY);
	EXPECT(fd >= 0 && read(fd, buf, 1) == 1 && buf[0] == 'a');
	close(fd);
	EXPECT(renameat2(AT_FDCWD, in(mnt, "c"), AT_FDCWD, in(mnt, "d"), RENAME_NOREPLACE) == 0);
	EXPECT(renameat2(AT_FDCWD, in(mnt, "d"), AT_FDCWD, in(mnt, "e"), RENAME_EXCHANGE) == -1 &&
	       errno == ENOENT);
	return 0;
}

START_TEST(test_rename_flags)
{
	struct instance inst;

	write_text(in(back, "a"), "a", BOUND);
	write_text(in(back, "c"), "c", BOUND);
	inst = start();
	AS(APP, client_renames);
	ck_assert_int_eq(access(in(back, "d"), F_OK), 0);
	stop(&inst);
}
END_TEST

static int client_hard_links(void)
{
	struct stat a, b;

	EXPECT(link(in(mnt, "a"), in(mnt, "b")) == 0);
	EXPECT(stat(in(mnt, "a"), &a) == 0 && stat(in(mnt, "b"), &b) == 0);
	EXPECT(a.st_ino == b.st_ino && a.st_nlink == 2 && b.st_nlink == 2);
	EXPECT(link(in(mnt, "a"), in(mnt, "c")) == 0);
	EXPECT(stat(in(mnt, "c"), &b) == 0 && b.st_ino == a.st_ino && b.st_nlink == 3);
	EXPECT(unlink(in(mnt, "a")) == 0);
	EXPECT(stat(in(mnt, "b"), &b) == 0 && b.st_nlink == 2);
	EXPECT(link(in(mnt, "b"), in(mnt, "b")) == -1 && errno == EEXIST);
	return 0;
}

START_TEST(test_hard_links)
{
	struct instance inst;
	struct stat st;

	write_text(in(back, "a"), "a", BOUND);
	inst = start();
	AS(APP, client_hard_links);
	ck_assert_int_eq(stat(in(back, "b"), &st), 0);
	ck_assert_int_eq(st.st_nlink, 2);
	stop(&inst);
}
END_TEST

static int client_stat_missing(void)
{
	struct stat st;

	EXPECT(stat(in(mnt, "esc"), &st) == -1 && errno == ENOENT);
	return 0;
}

static int client_create_over_new_symlink(void)
{
	/* The kernel still has "esc" as missing (negative entry): it sends CREATE, not OPEN. */
	EXPECT(open(in(mnt, "esc"), O_WRONLY | O_CREAT, 0644) == -1 && errno == ELOOP);
	return 0;
}

START_TEST(test_create_never_follows_a_symlink)
{
	struct instance inst = start();
	char outside[sizeof(base) + 32], target[sizeof(base) + 48];
	struct stat st;

	path_join(outside, sizeof(outside), base, "outside");
	path_join(target, sizeof(target), outside, "escaped");
	ck_assert_int_eq(mkdir(outside, 0755), 0);
	ck_assert_int_eq(chown(outside, BOUND, BOUND), 0);
	AS(APP, client_stat_missing);
	/* Another client makes the name a symlink out of the backing. */
	ck_assert_int_eq(symlink(target, in(back, "esc")), 0);
	AS(APP, client_create_over_new_symlink);
	ck_assert_msg(lstat(target, &st) == -1 && errno == ENOENT, "a create followed a symlink out of the backing");
	stop(&inst);
}
END_TEST

static int client_fifo(void)
{
	struct stat st;
	char c;
	int fd;

	EXPECT(mkfifo(in(mnt, "p"), 0600) == 0);
	EXPECT(stat(in(mnt, "p"), &st) == 0 && S_ISFIFO(st.st_mode) && st.st_uid == APP);
	fd = open(in(mnt, "p"), O_RDWR);
	EXPECT(fd >= 0);
	EXPECT(write(fd, "z", 1) == 1 && read(fd, &c, 1) == 1 && c == 'z');
	close(fd);
	EXPECT(mknod(in(mnt, "dev"), S_IFCHR | 0600, makedev(1, 3)) == -1 && errno == EPERM);
	return 0;
}

START_TEST(test_fifo)
{
	struct instance inst = start();
	struct stat st;

	AS(APP, client_fifo);
	ck_assert_int_eq(lstat(in(back, "p"), &st), 0);
	ck_assert(S_ISFIFO(st.st_mode));
	stop(&inst);
}
END_TEST

#define MANY_FILES 10000

static int client_readdir_many(void)
{
	struct dirent *entry;
	struct stat st;
	DIR *dir = opendir(mnt);
	int count = 0;

	EXPECT(dir != NULL);
	while ((entry = readdir(dir)) != NULL) {
		if (entry->d_name[0] == '.')
			continue;
		EXPECT(fstatat(dirfd(dir), entry->d_name, &st, 0) == 0 && st.st_uid == APP);
		count++;
	}
	EXPECT(count == MANY_FILES);
	closedir(dir);
	return 0;
}

START_TEST(test_readdir_10000_entries)
{
	struct instance inst;
	char name[32];

	for (int i = 0; i < MANY_FILES; i++) {
		int fd;

		snprintf(name, sizeof(name), "file-%05d", i);
		fd = openat(AT_FDCWD, in(back, name), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(fchown(fd, BOUND, BOUND), 0);
		close(fd);
	}
	inst = start();
	AS(APP, client_readdir_many);
	stop(&inst);
}
END_TEST

static int client_sparse(void)
{
	const off_t far = (off_t)5 << 30;
	struct stat st;
	char c = 0;
	int fd = open(in(mnt, "sparse"), O_RDWR | O_CREAT, 0644);

	EXPECT(fd >= 0);
	EXPECT(pwrite(fd, "x", 1, far) == 1);
	EXPECT(fstat(fd, &st) == 0 && st.st_size == far + 1);
	EXPECT(st.st_blocks < 64);
	EXPECT(pread(fd, &c, 1, far) == 1 && c == 'x');
	EXPECT(pread(fd, &c, 1, (off_t)1 << 32) == 1 && c == 0);
	EXPECT(lseek(fd, 0, SEEK_DATA) >= far - 4096);
	EXPECT(lseek(fd, 0, SEEK_HOLE) == 0);
	EXPECT(lseek(fd, far, SEEK_HOLE) == far + 1);
	close(fd);
	return 0;
}

START_TEST(test_sparse_file_over_4gib)
{
	struct instance inst = start();
	struct stat st;

	AS(APP, client_sparse);
	ck_assert_int_eq(stat(in(back, "sparse"), &st), 0);
	ck_assert_int_eq(st.st_size, ((off_t)5 << 30) + 1);
	stop(&inst);
}
END_TEST

static int client_xattrs(void)
{
	char buf[256];
	ssize_t len;

	EXPECT(setxattr(in(mnt, "f"), "user.color", "blue", 4, 0) == 0);
	EXPECT(getxattr(in(mnt, "f"), "user.color", buf, sizeof(buf)) == 4 &&
	       memcmp(buf, "blue", 4) == 0);
	EXPECT(getxattr(in(mnt, "f"), "user.color", NULL, 0) == 4);
	EXPECT(getxattr(in(mnt, "f"), "user.color", buf, 2) == -1 && errno == ERANGE);
	EXPECT(setxattr(in(mnt, "f"), "user.color", "red", 3, XATTR_CREATE) == -1 && errno == EEXIST);
	len = listxattr(in(mnt, "f"), buf, sizeof(buf));
	EXPECT(len > 0 && memmem(buf, (size_t)len, "user.color", sizeof("user.color")) != NULL);
	EXPECT(removexattr(in(mnt, "f"), "user.color") == 0);
	EXPECT(getxattr(in(mnt, "f"), "user.color", buf, sizeof(buf)) == -1 && errno == ENODATA);
	/* trusted.* needs CAP_SYS_ADMIN, which the bound identity never has. */
	EXPECT(setxattr(in(mnt, "f"), "trusted.x", "1", 1, 0) == -1 && errno == EPERM);
	return 0;
}

START_TEST(test_xattrs)
{
	struct instance inst;
	char buf[16];

	write_text(in(back, "f"), "f", BOUND);
	inst = start();
	AS(APP, client_xattrs);
	ck_assert_int_eq(setxattr(in(back, "f"), "user.k", "v", 1, 0), 0);
	AS(APP, client_xattrs);
	ck_assert_int_eq(getxattr(in(back, "f"), "user.k", buf, sizeof(buf)), 1);
	stop(&inst);
}
END_TEST

static int client_no_xattrs(void)
{
	char buf[64];

	for (int i = 0; i < 3; i++) {
		EXPECT(setxattr(in(mnt, "f"), "user.color", "blue", 4, 0) == -1 && errno == EOPNOTSUPP);
		EXPECT(getxattr(in(mnt, "f"), "user.color", buf, sizeof(buf)) == -1 &&
		       errno == EOPNOTSUPP);
		EXPECT(listxattr(in(mnt, "f"), buf, sizeof(buf)) <= 0);
	}
	return 0;
}

START_TEST(test_xattrs_unsupported)
{
	char ramfs[sizeof(base) + 16], file[sizeof(base) + 16];
	struct instance inst;
	int fd;

	/* ramfs keeps no xattrs at all: the ENOTSUP path, remembered by the kernel after one ENOSYS. */
	path_join(ramfs, sizeof(ramfs), base, "ramfs");
	ck_assert_int_eq(mkdir(ramfs, 0755), 0);
	ck_assert_int_eq(mount("ramfs", ramfs, "ramfs", 0, "mode=0755"), 0);
	ck_assert_int_eq(chown(ramfs, BOUND, BOUND), 0);
	path_join(file, sizeof(file), ramfs, "f");
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fchown(fd, BOUND, BOUND), 0);
	close(fd);
	inst = start_on("vol", ramfs, NFSV3_ARG_RW);
	AS(APP, client_no_xattrs);
	stop(&inst);
	ck_assert_int_eq(umount2(ramfs, 0), 0);
}
END_TEST

static int client_read_only(void)
{
	char buf[8];
	int fd;

	fd = open(in(mnt, "f"), O_RDONLY);
	EXPECT(fd >= 0 && read(fd, buf, 1) == 1 && buf[0] == 'f');
	close(fd);
	EXPECT(open(in(mnt, "f"), O_WRONLY) == -1 && errno == EROFS);
	EXPECT(open(in(mnt, "g"), O_WRONLY | O_CREAT, 0644) == -1 && errno == EROFS);
	EXPECT(unlink(in(mnt, "f")) == -1 && errno == EROFS);
	EXPECT(mkdir(in(mnt, "d"), 0755) == -1 && errno == EROFS);
	return 0;
}

START_TEST(test_read_only)
{
	struct instance inst;

	write_text(in(back, "f"), "f", BOUND);
	inst = start_on("vol", back, NFSV3_ARG_RO);
	AS(APP, client_read_only);
	stop(&inst);
}
END_TEST

/* ---- locks across two mounts of one backing directory ------------------------------ */

/* The holder: take both locks through the first mount, say so, hold until told. */
static int lock_holder_go = -1, lock_holder_done = -1;

static int client_hold_locks(void)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
	char c = 'x';
	int fd_flock, fd_posix;

	fd_flock = open(in(mnt, "flock"), O_RDWR);
	fd_posix = open(in(mnt, "posix"), O_RDWR);
	EXPECT(fd_flock >= 0 && fd_posix >= 0);
	EXPECT(flock(fd_flock, LOCK_EX | LOCK_NB) == 0);
	EXPECT(fcntl(fd_posix, F_SETLK, &fl) == 0);
	EXPECT(write(lock_holder_go, &c, 1) == 1);
	EXPECT(read(lock_holder_done, &c, 1) == 1);
	/* Unlock one explicitly; the other goes with close. */
	fl.l_type = F_UNLCK;
	EXPECT(fcntl(fd_posix, F_SETLK, &fl) == 0);
	close(fd_flock);
	close(fd_posix);
	return 0;
}

static int client_contend(void)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 10};
	char path[sizeof(mnt2) + 16];
	int fd_flock, fd_posix;

	snprintf(path, sizeof(path), "%s/flock", mnt2);
	fd_flock = open(path, O_RDWR);
	snprintf(path, sizeof(path), "%s/posix", mnt2);
	fd_posix = open(path, O_RDWR);
	EXPECT(fd_flock >= 0 && fd_posix >= 0);
	EXPECT(flock(fd_flock, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK);
	EXPECT(fcntl(fd_posix, F_SETLK, &fl) == -1 && (errno == EAGAIN || errno == EACCES));
	EXPECT(fcntl(fd_posix, F_GETLK, &fl) == 0 && fl.l_type == F_WRLCK && fl.l_start == 0 &&
	       fl.l_len == 100);
	/* A range nobody holds is free. */
	fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 200, .l_len = 10};
	EXPECT(fcntl(fd_posix, F_SETLK, &fl) == 0);
	close(fd_flock);
	close(fd_posix);
	return 0;
}

/* Blocking waits through the second mount, granted once the holder lets go. */
static int client_wait(void)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	char path[sizeof(mnt2) + 16];
	int fd_flock, fd_posix;

	snprintf(path, sizeof(path), "%s/flock", mnt2);
	fd_flock = open(path, O_RDWR);
	snprintf(path, sizeof(path), "%s/posix", mnt2);
	fd_posix = open(path, O_RDWR);
	EXPECT(fd_flock >= 0 && fd_posix >= 0);
	EXPECT(flock(fd_flock, LOCK_EX) == 0);
	EXPECT(fcntl(fd_posix, F_SETLKW, &fl) == 0);
	return 0;
}

START_TEST(test_locks_across_two_mounts)
{
	struct instance one, two;
	int go[2], done[2], status;
	pid_t holder, waiter;
	char c;

	write_text(in(back, "flock"), "", BOUND);
	write_text(in(back, "posix"), "", BOUND);
	one = start_on("vol", back, NFSV3_ARG_RW);
	two = start_on("vol2", back, NFSV3_ARG_RW);
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	lock_holder_go = go[1];
	lock_holder_done = done[0];
	holder = spawn_as(APP, client_hold_locks);
	ck_assert_int_eq(read(go[0], &c, 1), 1);
	AS(APP, client_contend);

	waiter = spawn_as(APP, client_wait);
	usleep(300000);
	ck_assert_int_eq(waitpid(waiter, &status, WNOHANG), 0);
	ck_assert_int_eq(write(done[1], "x", 1), 1);
	ck_assert_int_eq(waitpid(holder, &status, 0), holder);
	ck_assert_int_eq(status_code(status), 0);
	ck_assert_int_eq(wait_exit(waiter, 5000), 0);
	stop(&one);
	stop(&two);
}
END_TEST

/* Wait for the held lock: 0 if refused with ENOLCK; a waiter that gets in blocks until killed. */
static int client_wait_forever(void)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd = open(in(mnt, "posix"), O_RDWR);

	EXPECT(fd >= 0);
	EXPECT(fcntl(fd, F_SETLKW, &fl) == -1 && errno == ENOLCK);
	return 0;
}

static int client_still_serving(void)
{
	struct stat st;
	int fd = open(in(mnt, "other"), O_RDWR | O_CREAT, 0644);

	EXPECT(fd >= 0);
	EXPECT(write(fd, "x", 1) == 1 && fstat(fd, &st) == 0 && st.st_size == 1);
	close(fd);
	return 0;
}

static int client_lock_free_again(void)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd = open(in(mnt, "posix"), O_RDWR);
	int tries = 0;

	EXPECT(fd >= 0);
	/* The killed waiters' files are released asynchronously: give that a moment. */
	while (fcntl(fd, F_SETLK, &fl) != 0 && tries++ < 100)
		usleep(10000);
	EXPECT(tries <= 100);
	return 0;
}

static void on_alarm(int sig)
{
}

static int client_wait_interrupted(void)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int fd = open(in(mnt, "posix"), O_RDWR);

	EXPECT(fd >= 0);
	/* No SA_RESTART: the signal ends the wait, through FUSE's interrupt. */
	EXPECT(sigaction(SIGALRM, &sa, NULL) == 0);
	alarm(1);
	EXPECT(fcntl(fd, F_SETLKW, &fl) == -1 && errno == EINTR);
	return 0;
}

START_TEST(test_lock_waits_bounded_and_interruptible)
{
	struct instance inst;
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	/* idmapfs lets IDMAPFS_MAX_THREADS - 4 requests wait for a lock at once. */
	enum { WAITERS = 20, LOCK_WAITERS = 16 - 4 };
	pid_t waiters[WAITERS];
	int fd, status, refused = 0;

	write_text(in(back, "posix"), "", BOUND);
	inst = start();
	/* Held on the backing side directly: every wait through the mount blocks. */
	fd = open(in(back, "posix"), O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
	/* More waiters than workers: the surplus gets ENOLCK at once, the rest block, the mount keeps serving. */
	for (int i = 0; i < WAITERS; i++)
		waiters[i] = spawn_as(APP, client_wait_forever);
	for (int tries = 0; tries < 1000 && refused < WAITERS - LOCK_WAITERS; tries++) {
		for (int i = 0; i < WAITERS; i++) {
			if (waiters[i] != 0 && waitpid(waiters[i], &status, WNOHANG) == waiters[i]) {
				ck_assert_msg(status_code(status) == 0, "waiter %d exited %d", i, status_code(status));
				waiters[i] = 0;
				refused++;
			}
		}
		usleep(10000);
	}
	usleep(200000);
	AS(APP, client_still_serving);
	/* Exactly the surplus was refused: every other waiter is still blocked. */
	for (int i = 0; i < WAITERS; i++) {
		if (waiters[i] == 0)
			continue;
		ck_assert_int_eq(kill(waiters[i], SIGKILL), 0);
		ck_assert_int_eq(waitpid(waiters[i], &status, 0), waiters[i]);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "waiter %d exited %d", i,
			      status_code(status));
	}
	ck_assert_int_eq(refused, WAITERS - LOCK_WAITERS);
	/* Killed waiters free their workers: as many new waits block again, then end by a signal. */
	usleep(200000);
	for (int i = 0; i < LOCK_WAITERS; i++)
		waiters[i] = spawn_as(APP, client_wait_interrupted);
	for (int i = 0; i < LOCK_WAITERS; i++) {
		ck_assert_int_eq(waitpid(waiters[i], &status, 0), waiters[i]);
		ck_assert_msg(status_code(status) == 0, "waiter %d exited %d", i, status_code(status));
	}
	close(fd);
	AS(APP, client_lock_free_again);
	stop(&inst);
}
END_TEST

static Suite *idmapfs_suite(void)
{
	Suite *suite = suite_create("idmapfs");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{"ownership", test_created_files_owned_by_bound_ids},
		{"ownership", test_bound_owner_shows_as_app},
		{"ownership", test_chown_to_app_becomes_bound},
		{"callers", test_other_uid_refused_root_only_stats},
		{"privilege", test_no_capabilities_and_bound_fs_ids},
		{"privilege", test_without_privilege_refused},
		{"lifecycle", test_sigterm_unmounts_and_exits_zero},
		{"lifecycle", test_sigterm_waits_for_open_files},
		{"lifecycle", test_sigkill_detached_by_sentry},
		{"lifecycle", test_sigkill_of_group_leaves_dead_mount_umount_clears},
		{"lifecycle", test_umount_by_someone_else_ends_session},
		{"refusals", test_bad_arguments_refused},
		{"refusals", test_already_mounted_refused},
		{"operations", test_file_operations},
		{"operations", test_direct_io},
		{"operations", test_write_only_open_coherent_with_reader},
		{"operations", test_page_cache_follows_changes},
		{"operations", test_write_clears_suid},
		{"operations", test_write_only_open_bypasses_page_cache},
		{"operations", test_readahead_raised},
		{"operations", test_no_flush_on_local_backing},
		{"passthrough", test_passthrough_io_skips_the_server},
		{"passthrough", test_passthrough_off_serves_io},
		{"passthrough", test_passthrough_sentry_privilege},
		{"stress", test_forgets_leave_no_inode_behind},
		{"stress", test_killed_server_leaves_no_hung_mount},
		{"stress", test_killed_caller_of_a_stuck_backing_call},
		{"stress", test_interrupts_at_every_moment},
		{"operations", test_rename_flags},
		{"operations", test_hard_links},
		{"operations", test_fifo},
		{"operations", test_create_never_follows_a_symlink},
		{"operations", test_readdir_10000_entries},
		{"operations", test_sparse_file_over_4gib},
		{"operations", test_xattrs},
		{"operations", test_xattrs_unsupported},
		{"operations", test_read_only},
		{"locks", test_locks_across_two_mounts},
		{"locks", test_lock_waits_bounded_and_interruptible},
	};
	TCase *tc = NULL;
	const char *current = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (current == NULL || strcmp(current, cases[i].name) != 0) {
			current = cases[i].name;
			tc = tcase_create(current);
			tcase_add_checked_fixture(tc, setup, teardown);
			tcase_add_unchecked_fixture(tc, NULL, kill_leftovers);
			tcase_set_timeout(tc, 120);
			suite_add_tcase(suite, tc);
		}
		tcase_add_test(tc, cases[i].test);
	}
	return suite;
}

int main(void)
{
	int failed;

	if (geteuid() != 0) {
		fprintf(stderr, "test_idmapfs: skipped: idmapfs mounts, which needs root\n");
		return 77;
	}
	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		fprintf(stderr, "test_idmapfs: skipped: no /dev/fuse on this machine\n");
		return 77;
	}
	snprintf(helper, sizeof(helper), "%s", harness_build_path(NFSV3_HELPER_SUBDIR "/" NFSV3_HELPER_IDMAPFS));
	if (access(helper, X_OK) != 0) {
		fprintf(stderr, "test_idmapfs: %s: %s (build it first)\n", helper, strerror(errno));
		return 1;
	}
	if (mkdtemp(base) == NULL) {
		fprintf(stderr, "test_idmapfs: mkdtemp %s: %s\n", base, strerror(errno));
		return 1;
	}
	if (!harness_can_mount_privately(base, "test_idmapfs")) {
		rmdir(base);
		return 77;
	}
	snprintf(root, sizeof(root), "%s/root", base);
	snprintf(back, sizeof(back), "%s/back", base);
	failed = harness_run(idmapfs_suite());
	rmdir(base);
	return failed;
}
