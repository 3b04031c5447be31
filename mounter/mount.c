/*
 * nfsv3driver-mount: one privileged verb per run (see nfsv3driver.h for the
 * argv and exit codes). main() drops to the verb's capabilities before it
 * looks at anything else, then hands the opened mount root to the verb.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "privilege.h"
#include "verbs.h"

/*
 * The most mounts unmount will peel off one mountpoint. Binds racing each
 * other can stack a few; more than this means something keeps mounting there.
 */
#define UNMOUNT_MAX_LAYERS 16

struct verb {
	const char *name;
	int nargs;          /* after the verb, MOUNT_ROOT included */
	const char *usage;  /* those arguments, for the usage line */
	int caps[2];        /* what the verb keeps; everything else is dropped */
	size_t ncaps;
	int (*run)(int root_fd, int argc, char **argv);
};

/*
 * bind keeps CAP_DAC_READ_SEARCH besides CAP_SYS_ADMIN: in production the
 * helper runs as the daemon's unprivileged uid with file capabilities, and the
 * source lies under MOUNT_ROOT/.kernel (0700) or in a local directory the
 * daemon's uid may not search. It only lets the helper look the source up; it
 * grants no write access. unmount resolves only paths its own uid can walk
 * (the mount root and .kernel, both the helper's), so it keeps CAP_SYS_ADMIN
 * alone.
 */
static const struct verb verbs[] = {
	{NFSV3_VERB_BIND, 4, "MOUNT_ROOT SOURCE_DIR NAME " NFSV3_ARG_RW "|" NFSV3_ARG_RO,
	 {CAP_SYS_ADMIN, CAP_DAC_READ_SEARCH}, 2, verb_bind},
	{NFSV3_VERB_UNMOUNT, 3, "MOUNT_ROOT NAME " NFSV3_ARG_LAZY "|" NFSV3_ARG_FORCE,
	 {CAP_SYS_ADMIN}, 1, verb_unmount},
	{NFSV3_VERB_NFS, 5, "MOUNT_ROOT KERNEL_KEY HOST:/EXPORT ADDR OPTIONS",
	 {CAP_SYS_ADMIN}, 1, verb_nfs},
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

/* The GNU spelling of noreturn, which static checkers (cppcheck) also understand. */
static __attribute__((__noreturn__)) void die_usage(const struct verb *only)
{
	char line[512];
	size_t len = 0;

	for (size_t i = 0; i < NVERBS && len < sizeof(line); i++) {
		if (only != NULL && only != &verbs[i])
			continue;
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s %s %s",
					len > 0 ? " | " : "", NFSV3_HELPER_MOUNT,
					verbs[i].name, verbs[i].usage);
	}
	die(NFSV3_EXIT_USAGE, "usage: %s", line);
}

/* MOUNT_ROOT as given: privilege_open_root accepted it only in canonical form. */
static const char *mount_root;

int main(int argc, char **argv)
{
	const struct verb *verb = NULL;
	int root_fd;

	privilege_set_progname(argc > 0 ? argv[0] : NULL);
	for (size_t i = 0; argc > 1 && i < NVERBS; i++) {
		if (strcmp(argv[1], verbs[i].name) == 0)
			verb = &verbs[i];
	}
	if (verb == NULL) {
		privilege_keep_only(NULL, 0);
		die_usage(NULL);
	}
	privilege_keep_only(verb->caps, verb->ncaps);
	close(privilege_ensure_std_fds());
	/* The caller's umask must not decide the mode of the mountpoints we create. */
	umask(022);
	if (argc - 2 != verb->nargs)
		die_usage(verb);
	root_fd = privilege_open_root(argv[2]);
	mount_root = argv[2];
	return verb->run(root_fd, argc - 3, argv + 3);
}

/* ---- bind ----------------------------------------------------------- */

/*
 * For kernels without open_tree or mount_setattr (before 5.2 and 5.12).
 * Trusts: the fds, opened and checked by the callers.
 * Checks: nothing new. The bind and the remount reach the pinned
 * directories through /proc/self/fd, so no path is resolved twice. A bind
 * takes the source's flags but a bind remount replaces them, so ro and
 * noexec of the source mount are carried over by hand: the bind must never
 * lift a restriction of its source.
 */
static void bind_with_mount(int root_fd, const char *name, int source_fd, int target_fd,
			    const char *source, bool readonly)
{
	unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV;
	char from[64], to[sizeof("/proc/self/fd//") + 12 + NFSV3_NAME_MAX];
	struct statvfs source_vfs;
	int mounted_fd;

	if (fstatvfs(source_fd, &source_vfs) != 0)
		die_errno(NFSV3_EXIT_MOUNT, "cannot stat source %s", source);
	if (readonly || (source_vfs.f_flag & ST_RDONLY))
		flags |= MS_RDONLY;
	if (source_vfs.f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;

	snprintf(from, sizeof(from), "/proc/self/fd/%d", source_fd);
	snprintf(to, sizeof(to), "/proc/self/fd/%d", target_fd);
	if (mount(from, to, NULL, MS_BIND, NULL) != 0)
		die_errno(NFSV3_EXIT_MOUNT, "cannot bind %s on %s", source, name);
	/*
	 * target_fd still names the directory underneath; the remount needs the
	 * new mount's root, reached again beneath the root with no symlinks.
	 */
	mounted_fd = privilege_open_beneath(root_fd, name, O_PATH | O_DIRECTORY);
	snprintf(to, sizeof(to), "/proc/self/fd/%d", mounted_fd);
	if (mounted_fd < 0 || mount(NULL, to, NULL, flags, NULL) != 0) {
		int errnum = errno;

		/* Never leave the bind behind without nosuid,nodev: detach it as unmount would. */
		snprintf(to, sizeof(to), "/proc/self/fd/%d/%s", root_fd, name);
		umount2(to, MNT_DETACH | UMOUNT_NOFOLLOW);
		errno = errnum;
		die_errno(NFSV3_EXIT_MOUNT, "cannot set nosuid,nodev%s on %s", readonly ? ",ro" : "", name);
	}
}

/*
 * bind MOUNT_ROOT SOURCE_DIR NAME rw|ro
 *
 * Trusts: root_fd (privilege_open_root) and the kernel; nothing in argv.
 * Checks: the mode is exactly rw or ro; NAME is a volume name (never
 * .kernel/...); SOURCE_DIR as open_source, the mountpoint as
 * open_mountpoint. Then clones the source mount (not its submounts, which
 * could expose more than the source), sets nosuid and nodev (and ro) on the
 * detached clone so that it is never visible without them, and moves it onto
 * the checked mountpoint fd. rw adds nothing: restrictions of the source
 * mount (ro, noexec) carry over to the clone and are never lifted.
 */
int verb_bind(int root_fd, int argc, char **argv)
{
	const char *source = argv[0], *name = argv[1], *mode = argv[2];
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
	int source_fd, target_fd, tree_fd;
	bool readonly;

	readonly = privilege_parse_rw_ro(mode);
	if (readonly)
		attr.attr_set |= MOUNT_ATTR_RDONLY;
	privilege_check_volume_name(name);
	source_fd = privilege_open_backing(root_fd, mount_root, source, "source");
	target_fd = privilege_make_mountpoint(root_fd, name, 0755);

	tree_fd = open_tree(source_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree_fd < 0 && errno != ENOSYS)
		die_errno(NFSV3_EXIT_MOUNT, "cannot clone %s", source);
	if (tree_fd >= 0 && mount_setattr(tree_fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
		if (errno != ENOSYS)
			die_errno(NFSV3_EXIT_MOUNT, "cannot set nosuid,nodev%s on the clone of %s",
				  readonly ? ",ro" : "", source);
		close(tree_fd);
		tree_fd = -1;
	}
	if (tree_fd < 0) {
		bind_with_mount(root_fd, name, source_fd, target_fd, source, readonly);
	} else if (move_mount(tree_fd, "", target_fd, "",
			      MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
		die_errno(NFSV3_EXIT_MOUNT, "cannot mount %s on %s", source, name);
	}
	privilege_keep_mountpoint();
	return NFSV3_EXIT_OK;
}

/* ---- unmount -------------------------------------------------------- */

/*
 * One layer off the mountpoint. path ends in the leaf name, which
 * UMOUNT_NOFOLLOW keeps from being followed if it is a symlink.
 */
static int detach_once(const char *path, bool force)
{
	if (force) {
		/* MNT_FORCE aborts the RPCs stuck on a dead NFS server; if still busy, detach. */
		if (umount2(path, MNT_FORCE | UMOUNT_NOFOLLOW) == 0)
			return 0;
		if (errno != EBUSY)
			return -1;
	}
	return umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
}

/*
 * unmount MOUNT_ROOT NAME lazy|force
 *
 * Trusts: root_fd (privilege_open_root) and the kernel; nothing in argv.
 * Checks: the mode is exactly lazy or force; NAME is a volume name or
 * .kernel/<key> with <key> a valid name. The parent (the root or
 * root/.kernel) is resolved beneath root_fd with no symlink and pinned as
 * an O_PATH fd; umount2 then gets "/proc/self/fd/<parent>/<leaf>": the
 * kernel walks from the pinned parent through one checked component and,
 * with UMOUNT_NOFOLLOW, never follows it if it is a symlink. Whatever is
 * mounted at MOUNT_ROOT/NAME when the call runs is what gets detached, which
 * is the verb's meaning. The mountpoint itself is deliberately not opened:
 * reaching a dead NFS server's root through open or stat revalidates it and
 * would hang, while umount2's own lookup (LOOKUP_MOUNTPOINT) does not.
 * Only after the last layer is gone is the leaf, now a plain directory on
 * the parent's filesystem, inspected and removed.
 *
 * Idempotent: an absent mountpoint, or a directory with nothing mounted,
 * is success. A symlink or a non-directory at NAME is refused untouched; a
 * directory that is not empty after unmounting is left in place and
 * reported (exit NFSV3_EXIT_MOUNT).
 */
int verb_unmount(int root_fd, int argc, char **argv)
{
	const char *name = argv[0], *mode = argv[1];
	const char *kernel_prefix = NFSV3_KERNEL_DIR "/";
	const char *leaf = name;
	char path[sizeof("/proc/self/fd//") + 12 + NFSV3_NAME_MAX];
	int parent_fd = root_fd;
	struct stat st;
	bool force;
	int layers;

	if (strcmp(mode, NFSV3_ARG_LAZY) != 0 && strcmp(mode, NFSV3_ARG_FORCE) != 0)
		die(NFSV3_EXIT_REFUSED, "mode \"%s\": must be %s or %s", mode, NFSV3_ARG_LAZY,
		    NFSV3_ARG_FORCE);
	force = strcmp(mode, NFSV3_ARG_FORCE) == 0;
	if (strncmp(name, kernel_prefix, strlen(kernel_prefix)) == 0)
		leaf = name + strlen(kernel_prefix);
	privilege_check_volume_name(leaf);

	if (leaf != name) {
		parent_fd = privilege_open_beneath(root_fd, NFSV3_KERNEL_DIR, O_PATH | O_DIRECTORY);
		if (parent_fd < 0 && errno == ENOENT)
			return NFSV3_EXIT_OK;
		if (parent_fd < 0)
			privilege_die_open(NFSV3_EXIT_MOUNT, NULL, NFSV3_KERNEL_DIR);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", parent_fd, leaf);

	for (layers = 0; detach_once(path, force) == 0; ) {
		if (++layers > UNMOUNT_MAX_LAYERS)
			die(NFSV3_EXIT_MOUNT, "cannot unmount %s: still mounted after %d unmounts",
			    name, UNMOUNT_MAX_LAYERS);
	}
	if (errno == ENOENT)
		return NFSV3_EXIT_OK;
	/* EINVAL: nothing (more) is mounted there. */
	if (errno != EINVAL)
		die_errno(NFSV3_EXIT_MOUNT, "cannot unmount %s", name);

	if (fstatat(parent_fd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return NFSV3_EXIT_OK;
		die_errno(NFSV3_EXIT_MOUNT, "cannot stat mountpoint %s", name);
	}
	if (S_ISLNK(st.st_mode))
		die(NFSV3_EXIT_REFUSED, "mountpoint %s: is a symlink", name);
	if (!S_ISDIR(st.st_mode))
		die(NFSV3_EXIT_REFUSED, "mountpoint %s: not a directory", name);
	if (unlinkat(parent_fd, leaf, AT_REMOVEDIR) != 0 && errno != ENOENT)
		die_errno(NFSV3_EXIT_MOUNT, "cannot remove mountpoint %s", name);
	return NFSV3_EXIT_OK;
}
