/*
 * The privileged helpers' shared ground: one-line errors with named exit
 * codes, dropping to the capabilities a verb needs, and resolving paths
 * without following symlinks. See privilege.h for the contracts.
 */
#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <dirent.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "privilege.h"

static const char *progname = NFSV3_HELPER_MOUNT;

void privilege_set_progname(const char *argv0)
{
	const char *slash;

	if (argv0 == NULL || argv0[0] == '\0')
		return;
	slash = strrchr(argv0, '/');
	progname = slash != NULL && slash[1] != '\0' ? slash + 1 : argv0;
}

/*
 * Format the message as exactly one line: arguments come from the daemon and
 * may hold newlines or terminal escapes, and the daemon reads our stderr line
 * by line, so every control byte is shown as '?'.
 */
static void format_line(char *line, size_t size, int errnum, const char *fmt, va_list ap)
{
	int len = vsnprintf(line, size, fmt, ap);

	if (len >= 0 && errnum != 0 && (size_t)len < size)
		snprintf(line + len, size - (size_t)len, ": %s", strerror(errnum));
	for (char *p = line; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
}

static noreturn void print_and_exit(int code, const char *line)
{
	fprintf(stderr, "%s: %s\n", progname, line);
	exit(code);
}

noreturn void die(int code, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	format_line(line, sizeof(line), 0, fmt, ap);
	va_end(ap);
	print_and_exit(code, line);
}

noreturn void die_errno(int code, const char *fmt, ...)
{
	int errnum = errno;
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	format_line(line, sizeof(line), errnum, fmt, ap);
	va_end(ap);
	print_and_exit(code, line);
}

/* The capability sets and no_new_privs as the kernel reports them. */
struct privilege_status {
	uint64_t inheritable, permitted, effective, bounding, ambient;
	int no_new_privs;
};

static void read_status(struct privilege_status *status)
{
	static const struct {
		const char *key;
		size_t offset;
	} fields[] = {
		{"CapInh:", offsetof(struct privilege_status, inheritable)},
		{"CapPrm:", offsetof(struct privilege_status, permitted)},
		{"CapEff:", offsetof(struct privilege_status, effective)},
		{"CapBnd:", offsetof(struct privilege_status, bounding)},
		{"CapAmb:", offsetof(struct privilege_status, ambient)},
	};
	unsigned found = 0;
	char line[256];
	FILE *file;

	file = fopen("/proc/self/status", "re");
	if (file == NULL)
		die_errno(NFSV3_EXIT_PRIVILEGE, "cannot verify capabilities: /proc/self/status");
	status->no_new_privs = -1;
	while (fgets(line, sizeof(line), file) != NULL) {
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			size_t keylen = strlen(fields[i].key);

			if (strncmp(line, fields[i].key, keylen) == 0) {
				*(uint64_t *)((char *)status + fields[i].offset) =
					strtoull(line + keylen, NULL, 16);
				found |= 1u << i;
			}
		}
		if (strncmp(line, "NoNewPrivs:", 11) == 0)
			status->no_new_privs = atoi(line + 11);
	}
	fclose(file);
	if (found != (1u << (sizeof(fields) / sizeof(fields[0]))) - 1 || status->no_new_privs < 0)
		die(NFSV3_EXIT_PRIVILEGE, "cannot verify capabilities: /proc/self/status is incomplete");
}

/*
 * Trusts: the kernel's own report of this process's capabilities.
 * Checks: every capability asked for is in the permitted set before
 * anything is dropped (so a helper started without privilege says so
 * clearly), and afterwards that effective and permitted are exactly the
 * kept set, inheritable and ambient are empty, no_new_privs is on, and the
 * bounding set is empty whenever it could be cleared.
 *
 * Clearing the bounding set needs CAP_SETPCAP. A helper installed with file
 * capabilities (cap_sys_admin,... but not cap_setpcap) cannot clear it; that
 * is acceptable because with no_new_privs set and inheritable and ambient
 * empty, no execve can ever raise capabilities again, which is all the
 * bounding set would guard against.
 */
void privilege_keep_only(const int *caps, size_t n)
{
	struct privilege_status status;
	bool clear_bounding;
	uint64_t wanted = 0;

	if (capng_get_caps_process() != 0)
		die(NFSV3_EXIT_PRIVILEGE, "cannot read capabilities: libcap-ng failed");
	for (size_t i = 0; i < n; i++) {
		const char *name = capng_capability_to_name((unsigned)caps[i]);

		if (capng_have_capability(CAPNG_PERMITTED, (unsigned)caps[i]) != 1)
			die(NFSV3_EXIT_PRIVILEGE,
			    "cannot keep cap_%s: not permitted (run as root or install with file capabilities)",
			    name != NULL ? name : "?");
		wanted |= UINT64_C(1) << caps[i];
	}
	clear_bounding = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP) == 1;

	capng_clear(CAPNG_SELECT_ALL);
	for (size_t i = 0; i < n; i++) {
		if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, (unsigned)caps[i]) != 0)
			die(NFSV3_EXIT_PRIVILEGE, "cannot keep capability %d: libcap-ng refused", caps[i]);
	}
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which the next step drops. */
	if (clear_bounding && capng_apply(CAPNG_SELECT_BOUNDS) != 0)
		die(NFSV3_EXIT_PRIVILEGE, "cannot clear the bounding set: libcap-ng failed");
	if (capng_apply(CAPNG_SELECT_CAPS) != 0)
		die(NFSV3_EXIT_PRIVILEGE, "cannot drop capabilities: libcap-ng failed");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
		die_errno(NFSV3_EXIT_PRIVILEGE, "cannot clear ambient capabilities");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		die_errno(NFSV3_EXIT_PRIVILEGE, "cannot set no_new_privs");

	read_status(&status);
	if (status.effective != wanted || status.permitted != wanted)
		die(NFSV3_EXIT_PRIVILEGE,
		    "capabilities not dropped: effective %#" PRIx64 ", permitted %#" PRIx64 ", wanted %#" PRIx64,
		    status.effective, status.permitted, wanted);
	if (status.inheritable != 0 || status.ambient != 0)
		die(NFSV3_EXIT_PRIVILEGE,
		    "capabilities not dropped: inheritable %#" PRIx64 ", ambient %#" PRIx64,
		    status.inheritable, status.ambient);
	if (clear_bounding && status.bounding != 0)
		die(NFSV3_EXIT_PRIVILEGE, "bounding set not cleared: %#" PRIx64, status.bounding);
	if (status.no_new_privs != 1)
		die(NFSV3_EXIT_PRIVILEGE, "no_new_privs is not set");
}

static int openat2_resolve(int dir_fd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.resolve = resolve,
	};

	return (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
}

/*
 * Trusts: nothing in mount_root.
 * Checks: absolute, not "/" itself, no "." or ".." or empty component (the
 * root is compared as a string against mountinfo elsewhere, so it must be
 * canonical), no symlink anywhere on the way (openat2 from "/" with
 * RESOLVE_NO_SYMLINKS), and a directory.
 */
int privilege_open_root(const char *mount_root)
{
	const char *component;
	int fd;

	if (mount_root[0] != '/')
		die(NFSV3_EXIT_REFUSED, "mount root %s: not an absolute path", mount_root);
	if (mount_root[1] == '\0')
		die(NFSV3_EXIT_REFUSED, "mount root %s: must not be /", mount_root);
	for (component = mount_root + 1; component != NULL; ) {
		const char *next = strchr(component, '/');
		size_t len = next != NULL ? (size_t)(next - component) : strlen(component);

		if (len == 0 || (len == 1 && component[0] == '.') ||
		    (len == 2 && component[0] == '.' && component[1] == '.'))
			die(NFSV3_EXIT_REFUSED, "mount root %s: not a canonical path", mount_root);
		component = next != NULL ? next + 1 : NULL;
	}
	fd = openat2_resolve(AT_FDCWD, mount_root, O_PATH | O_DIRECTORY,
			     RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	if (fd < 0) {
		if (errno == ELOOP)
			die(NFSV3_EXIT_REFUSED, "mount root %s: has a symlink component", mount_root);
		/* No safe way to resolve beneath a root without openat2 (Linux 5.6). */
		if (errno == ENOSYS)
			die(NFSV3_EXIT_INTERNAL, "mount root %s: openat2 is not available", mount_root);
		die_errno(NFSV3_EXIT_REFUSED, "mount root %s", mount_root);
	}
	return fd;
}

/* Trusts: nothing in name. Checks: the charset, length and reserved names of privilege.h. */
static int check_name(const char *name, const char **why)
{
	size_t len = strlen(name);

	if (len == 0) {
		*why = "empty";
		return -1;
	}
	if (len > NFSV3_NAME_MAX) {
		*why = "longer than 255 bytes";
		return -1;
	}
	if (!strchr(NFSV3_NAME_ALNUM, name[0])) {
		*why = "must start with a letter or digit";
		return -1;
	}
	if (strspn(name, NFSV3_NAME_CHARS) != len) {
		*why = "may only hold letters, digits and " NFSV3_NAME_PUNCT;
		return -1;
	}
	/* Also covers the temporary files the state writer renames into place. */
	if (strncmp(name, NFSV3_STATE_FILE, strlen(NFSV3_STATE_FILE)) == 0) {
		*why = "reserved for the state file";
		return -1;
	}
	return 0;
}

void privilege_check_volume_name(const char *name)
{
	const char *why;

	if (check_name(name, &why) != 0)
		die(NFSV3_EXIT_REFUSED, "name \"%s\": %s", name, why);
}

bool privilege_parse_rw_ro(const char *mode)
{
	if (strcmp(mode, NFSV3_ARG_RW) != 0 && strcmp(mode, NFSV3_ARG_RO) != 0)
		die(NFSV3_EXIT_REFUSED, "mode \"%s\": must be %s or %s", mode, NFSV3_ARG_RW, NFSV3_ARG_RO);
	return strcmp(mode, NFSV3_ARG_RO) == 0;
}

int privilege_ensure_std_fds(void)
{
	int fd;

	do {
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			die_errno(NFSV3_EXIT_INTERNAL, "cannot open /dev/null");
	} while (fd <= STDERR_FILENO);
	return fd;
}

/*
 * Trusts: root_fd (opened by privilege_open_root or beneath it).
 * Checks: through the kernel, that name resolves beneath root_fd with no
 * symlink (magic or not) and no ".." escape, whatever renames happen
 * meanwhile. Callers still validate the name's shape themselves.
 */
int privilege_open_beneath(int root_fd, const char *name, int flags)
{
	return openat2_resolve(root_fd, name, flags,
			       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

noreturn void privilege_die_open(int other_code, const char *what, const char *path)
{
	/* Resolving one component, only the leaf can be the symlink or the non-directory. */
	bool leaf = strchr(path, '/') == NULL;
	const char *sep = what != NULL ? " " : "";

	if (what == NULL)
		what = "";
	if (errno == ELOOP)
		die(NFSV3_EXIT_REFUSED, "%s%s%s: %s", what, sep, path,
		    leaf ? "is a symlink" : "has a symlink component");
	if (errno == ENOTDIR)
		die(NFSV3_EXIT_REFUSED, "%s%s%s: %s", what, sep, path,
		    leaf ? "exists and is not a directory" : "not a directory");
	if (errno == EXDEV)
		die(NFSV3_EXIT_REFUSED, "%s%s%s: leaves the directory it must stay beneath", what, sep, path);
	die_errno(other_code, "cannot open %s%s%s", what, sep, path);
}

/* The mountpoint this run created, removed again if the helper ends before mounting on it. */
static struct {
	int parent_fd;
	const char *name;
} created_mountpoint = { -1, NULL };

static void remove_created_mountpoint(void)
{
	/* Removes only an empty directory, so never one with a mount on it. */
	if (created_mountpoint.name != NULL)
		unlinkat(created_mountpoint.parent_fd, created_mountpoint.name, AT_REMOVEDIR);
}

void privilege_keep_mountpoint(void)
{
	created_mountpoint.name = NULL;
}

/*
 * Trusts: parent_fd (the mount root, or a directory opened beneath it);
 * name already checked by the caller.
 * Checks: NAME is a directory reached beneath parent_fd with no symlink,
 * not already a mountpoint, and empty (mounting over files would hide
 * them). It is checked through an O_PATH fd and read only once known to be
 * a plain directory: reading a dead mount would hang. The fd returned is
 * the one the mount is moved onto, so what was checked is what gets mounted
 * on, whatever renames happen meanwhile.
 */
static int open_mountpoint(int parent_fd, const char *name)
{
	struct statx stx;
	struct dirent *entry;
	DIR *dir;
	int fd, dir_fd;

	fd = privilege_open_beneath(parent_fd, name, O_PATH | O_DIRECTORY);
	if (fd < 0)
		privilege_die_open(NFSV3_EXIT_MOUNT, "mountpoint", name);
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &stx) != 0)
		die_errno(NFSV3_EXIT_REFUSED, "mountpoint %s: already mounted and not answering", name);
	if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
		die(NFSV3_EXIT_INTERNAL, "mountpoint %s: the kernel cannot tell whether it is mounted", name);
	if (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)
		die(NFSV3_EXIT_REFUSED, "mountpoint %s: already mounted", name);

	dir_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = dir_fd >= 0 ? fdopendir(dir_fd) : NULL;
	if (dir == NULL)
		die_errno(NFSV3_EXIT_MOUNT, "cannot read mountpoint %s", name);
	errno = 0;
	while ((entry = readdir(dir)) != NULL) {
		if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
			die(NFSV3_EXIT_REFUSED, "mountpoint %s: not empty", name);
	}
	if (errno != 0)
		die_errno(NFSV3_EXIT_MOUNT, "cannot read mountpoint %s", name);
	closedir(dir);
	return fd;
}

int privilege_make_mountpoint(int parent_fd, const char *name, mode_t mode)
{
	if (mkdirat(parent_fd, name, mode) == 0) {
		created_mountpoint.parent_fd = parent_fd;
		created_mountpoint.name = name;
		atexit(remove_created_mountpoint);
	} else if (errno != EEXIST) {
		die_errno(NFSV3_EXIT_MOUNT, "cannot create mountpoint %s", name);
	}
	return open_mountpoint(parent_fd, name);
}

/*
 * The directories local sources may come from, as the operator listed them:
 * the file must be a regular file owned by root that nobody else can write.
 * Returns the first listed directory that path lies beneath (a static
 * buffer), or NULL.
 */
static const char *local_source_prefix(const char *path)
{
	static char line[4096];
	struct stat st;
	FILE *list;
	int fd = openat2_resolve(AT_FDCWD, NFSV3_LOCAL_SOURCES_FILE, O_RDONLY,
				 RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0 ||
	    !(list = fdopen(fd, "re"))) {
		close(fd);
		return NULL;
	}
	while (fgets(line, sizeof(line), list)) {
		size_t len;
		line[strcspn(line, "\n")] = '\0';
		len = strlen(line);
		while (len > 1 && line[len - 1] == '/')
			line[--len] = '\0';
		if (line[0] != '/' || len < 2)
			continue;
		if (strncmp(path, line, len) == 0 && (path[len] == '/' || path[len] == '\0')) {
			fclose(list);
			return line;
		}
	}
	fclose(list);
	return NULL;
}

/*
 * Trusts: the mount root fd, and the operator's root-owned list of local
 * source directories (NFSV3_LOCAL_SOURCES_FILE); nothing in path.
 * Checks: path is absolute, not "/", a directory reached with no symlink,
 * and lies beneath MOUNT_ROOT/.kernel/ (a kernel NFS mount of ours) or
 * beneath a listed directory. Either way the rest of the path is resolved
 * beneath the fd of that directory (RESOLVE_BENEATH), so ".." cannot leave
 * it. Without this, a compromised daemon could serve any user's files.
 */
int privilege_open_backing(int root_fd, const char *mount_root, const char *path, const char *what)
{
	size_t root_len = strlen(mount_root), kernel_len = strlen(NFSV3_KERNEL_DIR);
	const char *prefix, *rest;
	int base_fd, fd;

	if (path[0] != '/')
		die(NFSV3_EXIT_REFUSED, "%s %s: not an absolute path", what, path);
	if (path[strspn(path, "/")] == '\0')
		die(NFSV3_EXIT_REFUSED, "%s %s: must not be /", what, path);
	if (strncmp(path, mount_root, root_len) == 0 && path[root_len] == '/' &&
	    strncmp(path + root_len + 1, NFSV3_KERNEL_DIR, kernel_len) == 0 && path[root_len + 1 + kernel_len] == '/') {
		rest = path + root_len + 1;
		base_fd = dup(root_fd);
	} else if ((prefix = local_source_prefix(path)) != NULL) {
		rest = path + strlen(prefix);
		/* From "/" with no symlink in any component, like the mount root. */
		base_fd = openat2_resolve(AT_FDCWD, prefix, O_PATH | O_DIRECTORY,
					  RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	} else {
		die(NFSV3_EXIT_REFUSED, "%s %s: neither beneath %s/%s nor beneath a directory listed in %s", what, path,
		    mount_root, NFSV3_KERNEL_DIR, NFSV3_LOCAL_SOURCES_FILE);
	}
	if (base_fd < 0)
		privilege_die_open(NFSV3_EXIT_REFUSED, what, path);
	rest += strspn(rest, "/");
	fd = *rest ? privilege_open_beneath(base_fd, rest, O_PATH | O_DIRECTORY) : dup(base_fd);
	if (fd < 0)
		privilege_die_open(NFSV3_EXIT_REFUSED, what, path);
	close(base_fd);
	return fd;
}

void privilege_read_kernel_log(int fs_fd, const char *source, char *out, size_t size)
{
	size_t len = 0, source_len = strlen(source);
	char msg[512];
	ssize_t n;

	out[0] = '\0';
	while ((n = read(fs_fd, msg, sizeof(msg) - 1)) > 0) {
		const char *text = msg;

		msg[n] = '\0';
		if (msg[n - 1] == '\n')
			msg[n - 1] = '\0';
		if (text[0] == 'i' && text[1] == ' ')
			continue;
		if ((text[0] == 'e' || text[0] == 'w') && text[1] == ' ')
			text += 2;
		/* The source the kernel names; the caller's error line names it already. */
		if (strncmp(text, source, source_len) == 0 && strncmp(text + source_len, ": ", 2) == 0)
			text += source_len + 2;
		if (len < size)
			len += (size_t)snprintf(out + len, size - len, "%s%s", len > 0 ? "; " : "", text);
	}
}
