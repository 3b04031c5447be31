/*
 * nfsv3driver-idmapfs MOUNT_ROOT BACKING_DIR NAME UID GID APP_UID APP_GID rw|ro
 *                     [passthrough=auto|off]
 *
 * Serves BACKING_DIR on MOUNT_ROOT/NAME with owners remapped (UID:GID on the
 * backing side is APP_UID:APP_GID in the mount) until the mount goes away.
 * passthrough=auto (the default) lets the kernel do regular files' I/O on
 * the backing itself where it can (Linux 6.9+, see idmapfs_passthrough.c);
 * off keeps every read and write on our normal path.
 *
 * Life of a run, as the daemon sees it:
 *   - every argument is checked; a refusal is one line on stderr and an
 *     exit code of enum nfsv3_exit, with nothing mounted;
 *   - once the mount is live and privilege is gone, "ready\n" is written to
 *     stdout and stdout is closed; the process stays in the foreground;
 *   - SIGTERM (or SIGINT, SIGHUP) detaches the mount lazily; the process
 *     exits 0 when the kernel ends the session, that is at once, or when
 *     the last file open in the mount is closed;
 *   - a detach by someone else (umount -l) ends the session the same way;
 *   - if the process dies any other way (SIGKILL, a crash), its unmount
 *     sentry (below) detaches the dead mount, so no "Transport endpoint is
 *     not connected" is left behind.
 *
 * Privilege: mounting needs CAP_SYS_ADMIN, which the serving process cannot
 * keep, and a FUSE mount whose server is gone stays mounted. So before
 * dropping everything, the server forks a sentry that keeps CAP_SYS_ADMIN
 * alone, holds nothing but the new mount's fd and the read end of a pipe,
 * and detaches that very mount (not a path) when the pipe says so or
 * reaches EOF (the server exited, however). The server then sets its
 * fsuid/fsgid to the bound ids, clears its supplementary groups, drops
 * every capability and sets no_new_privs before serving a single request.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "idmapfs.h"
#include "policy.h"
#include "privilege.h"

#define IDMAPFS_USAGE "MOUNT_ROOT BACKING_DIR NAME UID GID APP_UID APP_GID rw|ro [passthrough=auto|off]"
/* Workers: enough for a few blocked lock waits besides the traffic; each costs a stack and a buffer. */
#define IDMAPFS_MAX_THREADS 16
/*
 * The kernel reads ahead at most 128 KiB on a FUSE mount unless told
 * otherwise (through the mount's bdi in sysfs, root's alone). 4 MiB keeps
 * enough requests in flight for a cold sequential read to go about as fast
 * as on the backing (bench/idmapfs: seq read). The window only grows on
 * sequential reads.
 */
#define IDMAPFS_READAHEAD_KB 4096
/* How long the kernel may trust an entry or attribute on a local backing: see cache_timeouts(). */
#define IDMAPFS_TIMEOUT 1.0
/* The least of them: one clock tick (see cache_timeouts()). */
#define IDMAPFS_MIN_TIMEOUT 0.001

/*
 * What setup needs before everything is dropped: mounting (SYS_ADMIN),
 * becoming the bound identity (SETUID, SETGID), and reaching a backing
 * directory beneath MOUNT_ROOT/.kernel (0700) or a mount root the caller's
 * uid may not write when installed with file capabilities (DAC_OVERRIDE to
 * create the mountpoint, DAC_READ_SEARCH to look the backing up).
 */
static const int setup_caps[] = {
	CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
};

/* ---- arguments ------------------------------------------------------ */

/* An id: decimal digits only, no sign, no leading zero, 1..4294967294 (0 and -1 refused). */
static uint32_t parse_id(const char *what, const char *text)
{
	unsigned long long value = 0;

	if (text[0] < '1' || text[0] > '9' || strspn(text, "0123456789") != strlen(text) ||
	    strlen(text) > 10)
		die(NFSV3_EXIT_REFUSED, "%s \"%s\": must be a decimal number from 1 to 4294967294",
		    what, text);
	for (const char *p = text; *p != '\0'; p++)
		value = value * 10 + (unsigned)(*p - '0');
	if (value > UINT32_MAX - 1)
		die(NFSV3_EXIT_REFUSED, "%s \"%s\": must be a decimal number from 1 to 4294967294",
		    what, text);
	return (uint32_t)value;
}


/* "passthrough=auto" or "passthrough=off": whether to ask for passthrough. */
static bool parse_passthrough(const char *text)
{
	if (strcmp(text, "passthrough=auto") == 0)
		return true;
	if (strcmp(text, "passthrough=off") == 0)
		return false;
	die(NFSV3_EXIT_REFUSED, "option \"%s\": expected passthrough=auto or passthrough=off", text);
}

/* ---- mounting ------------------------------------------------------- */

/* Die with the kernel's own explanation from the fs_context log when it left one. */
static noreturn void die_fs_context(int fs_fd, const char *what)
{
	int errnum = errno;
	char log[512];

	privilege_read_kernel_log(fs_fd, "fuse", log, sizeof(log));
	if (log[0] != '\0')
		die(NFSV3_EXIT_MOUNT, "%s: %s: %s", what, strerror(errnum), log);
	errno = errnum;
	die_errno(NFSV3_EXIT_MOUNT, "%s", what);
}

static void set_string(int fs_fd, const char *key, const char *value)
{
	char what[64];

	if (fsconfig(fs_fd, FSCONFIG_SET_STRING, key, value, 0) != 0) {
		snprintf(what, sizeof(what), "cannot set FUSE option %s", key);
		die_fs_context(fs_fd, what);
	}
}

/*
 * Trusts: fuse_fd (our own open of /dev/fuse) and mountpoint_fd
 * (open_mountpoint).
 * Checks: nothing new. The FUSE superblock is made with the new mount API
 * and attached with move_mount onto the checked mountpoint fd, so no path is
 * resolved again; nosuid and nodev (and ro) are set on the detached mount,
 * so it is never visible without them. allow_other lets the app's uid in
 * (we check callers ourselves); default_permissions is off because the
 * backing checks modes as the bound uid. Returns the mount's fd, which
 * names the mount itself for the sentry's unmount.
 */
static int mount_fuse(int fuse_fd, int mountpoint_fd, const char *name, bool read_only)
{
	unsigned int attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0);
	char number[24];
	int fs_fd, mount_fd;

	fs_fd = fsopen("fuse", FSOPEN_CLOEXEC);
	if (fs_fd < 0)
		die_errno(NFSV3_EXIT_MOUNT, "cannot open a FUSE file system context");
	snprintf(number, sizeof(number), "%d", fuse_fd);
	set_string(fs_fd, "fd", number);
	set_string(fs_fd, "rootmode", "40000");
	snprintf(number, sizeof(number), "%u", (unsigned)geteuid());
	set_string(fs_fd, "user_id", number);
	snprintf(number, sizeof(number), "%u", (unsigned)getegid());
	set_string(fs_fd, "group_id", number);
	snprintf(number, sizeof(number), "%u", (unsigned)idmapfs_max_read());
	set_string(fs_fd, "max_read", number);
	set_string(fs_fd, "source", NFSV3_HELPER_IDMAPFS);
	/* mountinfo then shows the type fuse.nfsv3driver-idmapfs: how the daemon tells ours. */
	set_string(fs_fd, "subtype", NFSV3_HELPER_IDMAPFS);
	if (fsconfig(fs_fd, FSCONFIG_SET_FLAG, "allow_other", NULL, 0) != 0)
		die_fs_context(fs_fd, "cannot set FUSE option allow_other");
	if (fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0)
		die_fs_context(fs_fd, "cannot create the FUSE file system");
	mount_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, attrs);
	if (mount_fd < 0)
		die_fs_context(fs_fd, "cannot make the FUSE mount");
	close(fs_fd);
	if (move_mount(mount_fd, "", mountpoint_fd, "",
		       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
		die_errno(NFSV3_EXIT_MOUNT, "cannot mount on %s", name);
	privilege_keep_mountpoint();
	return mount_fd;
}

/* Lazily detach the mount mount_fd names; 0, or -1 with errno. */
static int detach(int mount_fd)
{
	char path[IDMAPFS_PROC_FD_MAX];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", mount_fd);
	return umount2(path, MNT_DETACH);
}

/* ---- the unmount sentry --------------------------------------------- */

/* Close every fd but stderr and the two kept, in ascending order a < b. */
static void close_all_but(int a, int b)
{
	if (a > b) {
		int t = a;

		a = b;
		b = t;
	}
	close_range(STDERR_FILENO + 1, (unsigned)a - 1, 0);
	close_range((unsigned)a + 1, (unsigned)b - 1, 0);
	close_range((unsigned)b + 1, ~0U, 0);
}

/*
 * The new mount's ID (the sentry's) and the name of its bdi (backing device
 * info), "MAJOR:MINOR" of its superblock. Returns false with errno set if
 * statx fails or the kernel (before 5.8) gives no mount ID. The FUSE INIT
 * is not answered yet: without AT_STATX_DONT_SYNC the stat would wait for
 * it, with it FUSE answers at once from the attributes it has.
 */
static bool statx_mount(int fd, struct statx *stx)
{
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, stx) != 0)
		return false;
	if (!(stx->stx_mask & STATX_MNT_ID)) {
		errno = ENOSYS;
		return false;
	}
	return true;
}

static bool mount_of(int mount_fd, uint64_t *id, char *bdi, size_t size)
{
	struct statx stx;

	if (!statx_mount(mount_fd, &stx))
		return false;
	*id = stx.stx_mnt_id;
	snprintf(bdi, size, "%u:%u", stx.stx_dev_major, stx.stx_dev_minor);
	return true;
}

/* The line of mountinfo (from its start) for mount id, to free; NULL if none or on a read error. */
static char *mountinfo_line(FILE *mountinfo, uint64_t id)
{
	char *line = NULL;
	size_t size = 0;

	rewind(mountinfo);
	while (getline(&line, &size, mountinfo) > 0) {
		if (strtoull(line, NULL, 10) == id)
			return line;
	}
	free(line);
	return NULL;
}

/* mountinfo's octal escapes (\040 for a space) undone, in place. */
static void unescape_mountinfo(char *text)
{
	char *out = text;

	for (const char *in = text; *in != '\0'; out++) {
		if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' && in[3] >= '0' &&
		    in[3] <= '7') {
			*out = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
			in += 4;
		} else {
			*out = *in++;
		}
	}
	*out = '\0';
}

/*
 * The operator's policy for the bound ids (include/policy.h).
 * Trusts: the policy file once policy_load has seen it root's alone; the
 * kernel's mount table, whose NFS source and addr= the nfs verb checked
 * when it mounted.
 * Checks: on an NFS backing, that the policy allows the bound uid and gid on
 * that server (by the name and the address mounted) and export. The file is
 * policy_helper_path()'s; none: nothing to check; a bad one refuses. Local
 * backings (development only) are not the policy's.
 */
static void check_policy(const struct idmapfs *fs)
{
	struct policy_request req = {.identity = POLICY_ID_ANY, .ids_known = true, .uid = fs->bound_uid,
				     .gid = fs->bound_gid};
	char why[POLICY_WHY_MAX], *line = NULL, *source, *opts, *opt, *save, *colon;
	struct policy *policy;
	struct statx stx;
	FILE *info;
	bool missing;

	if (!idmapfs_keeps_busy(fs->root_fs_type))
		return;
	if (!(policy = policy_load(policy_helper_path(), &missing, why, sizeof(why)))) {
		if (missing)
			return;
		die(NFSV3_EXIT_REFUSED, "policy %s", why);
	}
	if (statx_mount(fs->root.fd, &stx) && (info = fopen("/proc/self/mountinfo", "re")) != NULL) {
		line = mountinfo_line(info, stx.stx_mnt_id);
		fclose(info);
	}
	/* "ID PARENT ... - FSTYPE SOURCE SUPER_OPTIONS" */
	if (line == NULL || (opts = strstr(line, " - ")) == NULL || !strtok_r(opts + 3, " \n", &save) ||
	    !(source = strtok_r(NULL, " \n", &save)) || !(opts = strtok_r(NULL, " \n", &save)))
		die(NFSV3_EXIT_REFUSED, "backing directory: its NFS mount is not in /proc/self/mountinfo: cannot check "
		    "the operator's policy");
	unescape_mountinfo(source);
	if (source[0] == '[') {
		req.host = source + 1;
		colon = strstr(source, "]:");
		if (colon != NULL)
			*colon++ = '\0';
	} else {
		req.host = source;
		colon = strchr(source, ':');
	}
	if (colon == NULL || colon[1] != '/')
		die(NFSV3_EXIT_REFUSED, "backing directory: NFS source \"%s\" is not HOST:/EXPORT", source);
	*colon = '\0';
	req.export = colon + 1;
	for (opt = strtok_r(opts, ",", &save); opt != NULL; opt = strtok_r(NULL, ",", &save))
		if (strncmp(opt, "addr=", 5) == 0)
			req.addr = opt + 5;
	if (req.addr == NULL)
		die(NFSV3_EXIT_REFUSED, "backing directory: its NFS mount shows no addr=: cannot check the operator's policy");
	if (policy_check(policy, &req, why, sizeof(why)) != POLICY_ALLOWED)
		die(NFSV3_EXIT_REFUSED, "%s", why);
	policy_free(policy);
	free(line);
}

/*
 * How long the kernel may trust what we tell it: as long as the backing's
 * own client would trust it, so that a mapped binding sees others' changes
 * as soon as a plain one. On NFS that is the kernel mount's acregmin for
 * attributes and acdirmin for names, if shorter (0 under the driver's
 * default actimeo=0; NFS's defaults 3 and 30 s where the mountinfo names
 * none), and nothing if the mount cannot be found. Local directories change
 * only by their own users: a second.
 */
static void cache_timeouts(struct idmapfs *fs)
{
	struct statx stx;
	char *line = NULL, *opts, *opt, *save;
	FILE *info = NULL;

	fs->attr_timeout = fs->entry_timeout = IDMAPFS_TIMEOUT;
	if (!idmapfs_keeps_busy(fs->root_fs_type))
		return;
	fs->attr_timeout = fs->entry_timeout = 0;
	if (statx_mount(fs->root.fd, &stx) && (info = fopen("/proc/self/mountinfo", "re")) != NULL)
		line = mountinfo_line(info, stx.stx_mnt_id);
	/* "ID PARENT ... - FSTYPE SOURCE SUPER_OPTIONS" */
	if (line != NULL && (opts = strstr(line, " - ")) != NULL) {
		fs->attr_timeout = 3;
		fs->entry_timeout = 30;
		opts = strtok_r(opts + 3, " \n", &save);
		opts = opts ? strtok_r(NULL, " \n", &save) : NULL;
		opts = opts ? strtok_r(NULL, " \n", &save) : NULL;
		for (opt = opts ? strtok_r(opts, ",", &save) : NULL; opt; opt = strtok_r(NULL, ",", &save)) {
			if (strcmp(opt, "noac") == 0)
				fs->attr_timeout = fs->entry_timeout = 0;
			else if (strncmp(opt, "acregmin=", 9) == 0)
				fs->attr_timeout = strtod(opt + 9, NULL);
			else if (strncmp(opt, "acdirmin=", 9) == 0)
				fs->entry_timeout = strtod(opt + 9, NULL);
		}
	}
	free(line);
	if (info != NULL)
		fclose(info);
	/* An open checks its name with the server natively (close-to-open): ours for no longer than attributes. */
	if (fs->entry_timeout > fs->attr_timeout)
		fs->entry_timeout = fs->attr_timeout;
	/*
	 * "Nothing" is one clock tick (the kernel rounds any positive timeout
	 * up to one, 1-4 ms): a stat's LOOKUP and the GETATTR that follows it
	 * share one answer, instead of two round trips and two GETATTR calls
	 * on the wire, and no other client can tell the difference.
	 */
	if (fs->attr_timeout < IDMAPFS_MIN_TIMEOUT)
		fs->attr_timeout = IDMAPFS_MIN_TIMEOUT;
	if (fs->entry_timeout < IDMAPFS_MIN_TIMEOUT)
		fs->entry_timeout = IDMAPFS_MIN_TIMEOUT;
}

/*
 * Raise the mount's readahead (see IDMAPFS_READAHEAD_KB). Only after INIT:
 * the kernel lowers it to what INIT allows, at most 128 KiB. A failure only
 * costs speed, so it is a warning.
 */
static void raise_readahead(const char *bdi)
{
	char path[96], value[16];
	int fd, len;

	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", bdi);
	len = snprintf(value, sizeof(value), "%d", IDMAPFS_READAHEAD_KB);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, (size_t)len) != len)
		fprintf(stderr, "%s: warning: cannot set readahead in %s: %s; sequential reads will be slower\n",
			NFSV3_HELPER_IDMAPFS, path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Whether mount id is still attached in our namespace: a line of mountinfo starts with it. */
static bool mount_attached(FILE *mountinfo, uint64_t id)
{
	char *line = mountinfo_line(mountinfo, id);

	free(line);
	/* A read error says nothing about the mount: keep it as attached. */
	return line != NULL || ferror(mountinfo);
}

/*
 * The sentry, in a child forked after the mount is attached.
 * Trusts: the pipe from its parent, whose only meaning is "detach now".
 * Checks: nothing; it holds CAP_SYS_ADMIN alone, no other fd than the pipe,
 * the mount's fd, mountinfo and stderr, and it can only detach that one
 * mount. It ignores the signals a process group receives on shutdown, so a
 * group SIGTERM reaches the server, which asks for the detach itself.
 *
 * Its fd keeps the mount alive, so once someone else detaches the mount
 * (umount -l), the sentry must let go for the kernel to end the session:
 * it watches mountinfo (POLLPRI on every change of the mount table) and
 * closes the fd when its mount ID is gone. The ID cannot be reused by
 * another mount while the fd holds it.
 */
static noreturn void run_sentry(int pipe_fd, int mount_fd, uint64_t id)
{
	static const int keep[] = {CAP_SYS_ADMIN};
	struct pollfd pfd[2];
	FILE *mountinfo;
	int null_fd;
	char byte;

	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* stdout is the daemon's readiness channel: only the server writes and closes it. */
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0)
		die_errno(NFSV3_EXIT_INTERNAL, "unmount sentry: cannot open /dev/null");
	close_all_but(pipe_fd, mount_fd);
	if (chdir("/") != 0)
		die_errno(NFSV3_EXIT_INTERNAL, "unmount sentry: cannot leave the working directory");
	prctl(PR_SET_NAME, NFSV3_IDMAPFS_SENTRY_COMM, 0, 0, 0);
	privilege_keep_only(keep, 1);
	mountinfo = fopen("/proc/self/mountinfo", "re");
	if (mountinfo == NULL)
		die_errno(NFSV3_EXIT_INTERNAL, "unmount sentry: cannot watch the mount table");

	pfd[0] = (struct pollfd){.fd = pipe_fd, .events = POLLIN};
	pfd[1] = (struct pollfd){.fd = fileno(mountinfo), .events = POLLPRI};
	while (mount_attached(mountinfo, id)) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die_errno(NFSV3_EXIT_INTERNAL, "unmount sentry: poll");
		}
		if (pfd[0].revents != 0)
			break;
	}
	if (!mount_attached(mountinfo, id)) {
		/* Detached by someone else: let the kernel end the session, then wait for the server. */
		close(mount_fd);
		mount_fd = -1;
	}
	while (read(pipe_fd, &byte, 1) < 0 && errno == EINTR)
		;
	/* Already detached meanwhile (the session ended, umount -l by someone else) is fine. */
	if (mount_fd >= 0 && detach(mount_fd) != 0 && errno != EINVAL && errno != ENOENT)
		die_errno(NFSV3_EXIT_MOUNT, "cannot detach the mount");
	_exit(NFSV3_EXIT_OK);
}

/* ---- serving -------------------------------------------------------- */

static int sentry_fd = -1;
static volatile sig_atomic_t stopping;

/*
 * SIGTERM: ask the sentry for a lazy detach. The kernel then ends the
 * session (when the last open file in the mount is closed) and the loop
 * returns. Async-signal-safe: write(2) and _exit(2) only.
 */
static void on_stop_signal(int sig)
{
	static const char gone[] = NFSV3_HELPER_IDMAPFS ": cannot unmount: the unmount sentry is gone\n";

	if (stopping)
		return;
	stopping = 1;
	if (write(sentry_fd, "x", 1) != 1) {
		if (write(STDERR_FILENO, gone, sizeof(gone) - 1) < 0)
			_exit(NFSV3_EXIT_MOUNT);
		_exit(NFSV3_EXIT_MOUNT);
	}
}

/* Only there to make a blocked lock wait return EINTR (see idmapfs_ops.c). */
static void on_interrupt_signal(int sig)
{
}

static void install_signals(void)
{
	struct sigaction stop = {.sa_handler = on_stop_signal};
	struct sigaction interrupt = {.sa_handler = on_interrupt_signal};
	struct sigaction ignore = {.sa_handler = SIG_IGN};

	/* No SA_RESTART: the interrupt must end a blocking fcntl/flock. */
	sigemptyset(&stop.sa_mask);
	sigemptyset(&interrupt.sa_mask);
	sigemptyset(&ignore.sa_mask);
	if (sigaction(SIGTERM, &stop, NULL) != 0 || sigaction(SIGINT, &stop, NULL) != 0 ||
	    sigaction(SIGHUP, &stop, NULL) != 0 || sigaction(SIGUSR1, &interrupt, NULL) != 0 ||
	    sigaction(SIGPIPE, &ignore, NULL) != 0)
		die_errno(NFSV3_EXIT_INTERNAL, "cannot install signal handlers");
}

/*
 * Become the bound identity for every backing access.
 * Trusts: the ids, checked by parse_id.
 * Checks: reads fsuid, fsgid and the group list back and dies unless they
 * are what was set. Called in the main thread before the worker threads
 * exist: threads inherit their creator's credentials, so every worker that
 * starts (from this thread or from another worker) has them too. fsuid and
 * the group list are per thread in the kernel; glibc's setgroups() would
 * signal every thread, so the raw syscall is used.
 */
void idmapfs_become_bound(uid_t uid, gid_t gid)
{
	setfsgid(gid);
	if (syscall(SYS_setgroups, 0, NULL) != 0)
		die_errno(NFSV3_EXIT_PRIVILEGE, "cannot clear supplementary groups");
	setfsuid(uid);
	if ((uid_t)setfsuid((uid_t)-1) != uid || (gid_t)setfsgid((gid_t)-1) != gid)
		die(NFSV3_EXIT_PRIVILEGE, "cannot take fsuid %" PRIu32 " and fsgid %" PRIu32,
		    (uint32_t)uid, (uint32_t)gid);
	if (syscall(SYS_getgroups, 0, NULL) != 0)
		die(NFSV3_EXIT_PRIVILEGE, "supplementary groups not cleared");
}

/* Whether the backing keeps xattrs of name's namespace (ENODATA says yes, EOPNOTSUPP no). */
static bool namespace_kept(const char *path, const char *name)
{
	return getxattr(path, name, NULL, 0) >= 0 || errno != EOPNOTSUPP;
}

/*
 * A backing without xattrs an app could use through us is found out once,
 * here, so that the kernel is told ENOSYS for the first xattr request and
 * stops asking (it asks for security.capability before every cached
 * write). Those are user.* and security.*: ACLs are refused (see ops) and
 * trusted.* needs privilege. ramfs has no xattrs at all; NFSv3 lists its
 * ACLs but keeps neither namespace.
 */
static bool backing_has_xattrs(int backing_fd)
{
	char path[IDMAPFS_PROC_FD_MAX];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", backing_fd);
	if (listxattr(path, NULL, 0) < 0 && errno == EOPNOTSUPP)
		return false;
	return namespace_kept(path, "user.nfsv3driver") || namespace_kept(path, "security.capability");
}

int main(int argc, char **argv)
{
	static struct idmapfs fs;
	struct idmapfs_session *se;
	char bdi[32];
	struct stat st;
	uint64_t mount_id;
	int root_fd, mountpoint_fd, fuse_fd, mount_fd, pipe_fds[2], null_fd, err;
	bool workers_left;
	bool want_passthrough;
	pid_t sentry;

	privilege_set_progname(NFSV3_HELPER_IDMAPFS);
	/*
	 * One malloc arena for all workers: glibc would give each worker thread
	 * an arena of its own, each keeping memory resident, while what we
	 * allocate per request is small and short-lived.
	 */
	mallopt(M_ARENA_MAX, 1);
	privilege_keep_only(setup_caps, sizeof(setup_caps) / sizeof(setup_caps[0]));
	/* Kept for stdout once the readiness line is written. */
	null_fd = privilege_ensure_std_fds();
	if (argc != NFSV3_IDMAPFS_ARG_PASSTHROUGH && argc != NFSV3_IDMAPFS_ARGC_MAX)
		die(NFSV3_EXIT_USAGE, "usage: %s %s", NFSV3_HELPER_IDMAPFS, IDMAPFS_USAGE);
	want_passthrough = argc == NFSV3_IDMAPFS_ARG_PASSTHROUGH || parse_passthrough(argv[NFSV3_IDMAPFS_ARG_PASSTHROUGH]);

	fs.read_only = privilege_parse_rw_ro(argv[NFSV3_IDMAPFS_ARG_MODE]);
	fs.bound_uid = parse_id("uid", argv[NFSV3_IDMAPFS_ARG_UID]);
	fs.bound_gid = parse_id("gid", argv[NFSV3_IDMAPFS_ARG_GID]);
	fs.app_uid = parse_id("app uid", argv[NFSV3_IDMAPFS_ARG_APP_UID]);
	fs.app_gid = parse_id("app gid", argv[NFSV3_IDMAPFS_ARG_APP_GID]);
	privilege_check_volume_name(argv[NFSV3_IDMAPFS_ARG_NAME]);
	root_fd = privilege_open_root(argv[NFSV3_IDMAPFS_ARG_ROOT]);
	fs.root.fd = privilege_open_backing(root_fd, argv[NFSV3_IDMAPFS_ARG_ROOT], argv[NFSV3_IDMAPFS_ARG_BACKING], "backing directory");
	if (fstat(fs.root.fd, &st) != 0)
		die_errno(NFSV3_EXIT_MOUNT, "cannot stat backing directory %s", argv[NFSV3_IDMAPFS_ARG_BACKING]);
	fs.root.dev = st.st_dev;
	fs.root.ino = st.st_ino;
	fs.root.nlookup = 2;
	fs.root.hashed = false;
	fs.root_fs_type = idmapfs_fs_type(fs.root.fd);
	fs.pt_sock = -1;
	fs.placeholder_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs.placeholder_fd < 0)
		die_errno(NFSV3_EXIT_INTERNAL, "cannot open /");
	cache_timeouts(&fs);
	check_policy(&fs);
	fs.max_lock_waiters = IDMAPFS_MAX_THREADS - 4;
	if (idmapfs_table_init(&fs.table) != 0)
		die(NFSV3_EXIT_INTERNAL, "cannot allocate the inode table");
	mountpoint_fd = privilege_make_mountpoint(root_fd, argv[NFSV3_IDMAPFS_ARG_NAME], 0755);
	/* The kernel computes create modes with the app's umask; ours must not change them. */
	umask(0);

	fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fuse_fd < 0)
		die_errno(NFSV3_EXIT_MOUNT, "cannot open /dev/fuse");
	mount_fd = mount_fuse(fuse_fd, mountpoint_fd, argv[NFSV3_IDMAPFS_ARG_NAME], fs.read_only);
	close(mountpoint_fd);
	if (!mount_of(mount_fd, &mount_id, bdi, sizeof(bdi))) {
		err = errno;
		detach(mount_fd);
		errno = err;
		die_errno(NFSV3_EXIT_MOUNT, "cannot find the new mount's ID for the unmount sentry");
	}
	close(root_fd);

	if (pipe2(pipe_fds, O_CLOEXEC) != 0 || (sentry = fork()) < 0) {
		err = errno;
		detach(mount_fd);
		errno = err;
		die_errno(NFSV3_EXIT_INTERNAL, "cannot start the unmount sentry");
	}
	if (sentry == 0) {
		close(pipe_fds[1]);
		run_sentry(pipe_fds[0], mount_fd, mount_id);
	}
	close(pipe_fds[0]);
	close(mount_fd);
	sentry_fd = pipe_fds[1];
	/* From here on, any exit (die() included) closes the pipe and the sentry detaches. */

	se = idmapfs_session_new(fuse_fd, &fs, IDMAPFS_MAX_THREADS, want_passthrough);
	if (se == NULL)
		die(NFSV3_EXIT_INTERNAL, "cannot create the FUSE session");
	if (chdir("/") != 0)
		die_errno(NFSV3_EXIT_INTERNAL, "cannot leave the working directory");
	/*
	 * INIT is answered here, while still privileged, so that the readahead
	 * it settles can be raised after it. It is always the first request:
	 * the kernel holds every other until it is answered.
	 */
	if (!idmapfs_session_init(se))
		die(NFSV3_EXIT_MOUNT, "the kernel's FUSE INIT could not be answered");
	raise_readahead(bdi);
	/* Before privilege goes: the sentry keeps what the backing-open ioctl needs. */
	if (idmapfs_session_conn(se)->passthrough && !idmapfs_passthrough_start(&fs, fuse_fd))
		fprintf(stderr, "%s: warning: cannot start the passthrough sentry: %s; serving reads and writes ourselves\n",
			NFSV3_HELPER_IDMAPFS, strerror(errno));

	idmapfs_become_bound(fs.bound_uid, fs.bound_gid);
	privilege_keep_only(NULL, 0);
	atomic_store(&fs.no_xattr, !backing_has_xattrs(fs.root.fd));
	install_signals();

	if (fputs(NFSV3_IDMAPFS_READY, stdout) == EOF || fflush(stdout) == EOF)
		fprintf(stderr, "%s: cannot write readiness: %s\n", NFSV3_HELPER_IDMAPFS, strerror(errno));
	/* Closing stdout gives the daemon EOF; /dev/null keeps fd 1 from being reused. */
	dup2(null_fd, STDOUT_FILENO);

	err = idmapfs_session_loop(se);
	workers_left = idmapfs_session_workers_left(se);
	if (!workers_left) {
		idmapfs_session_destroy(se);
		close(fuse_fd);
		idmapfs_table_destroy(&fs.table);
		close(fs.root.fd);
	}
	/* EOF on the pipe; waiting for the sentry means that when we exit, the mount is gone. */
	if (fs.pt_sock >= 0) {
		close(fs.pt_sock);
		while (waitpid(fs.pt_sentry, NULL, 0) < 0 && errno == EINTR)
			;
	}
	close(sentry_fd);
	while (waitpid(sentry, NULL, 0) < 0 && errno == EINTR)
		;
	if (err != 0) {
		fprintf(stderr, "%s: serving ended: %s\n", NFSV3_HELPER_IDMAPFS, strerror(err));
		return NFSV3_EXIT_INTERNAL;
	}
	/*
	 * A worker still stuck in a backing call uses the session and the
	 * table: no exit handler may run beside it (nor a leak checker, which
	 * would wait to stop a thread that cannot stop). Gone at once instead.
	 */
	if (workers_left) {
		fflush(stderr);
		_exit(NFSV3_EXIT_OK);
	}
	return NFSV3_EXIT_OK;
}
