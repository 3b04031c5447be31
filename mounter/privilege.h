/*
 * What every privileged helper shares: dying with one line of error and a
 * named exit code, dropping to the capabilities a verb needs, and resolving
 * paths beneath the mount root without following symlinks.
 */
#ifndef NFSV3_PRIVILEGE_H
#define NFSV3_PRIVILEGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdnoreturn.h>
#include <sys/types.h>
#include "nfsv3driver.h"

/* Print "<prog>: <message>" on stderr and exit with code (enum nfsv3_exit). */
noreturn void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, with ": strerror(errno)" appended. */
noreturn void die_errno(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The program name die() prints; set once from argv[0]'s basename. */
void privilege_set_progname(const char *argv0);

/*
 * Keep only the listed capabilities (effective and permitted; bounding set
 * and inheritable cleared), set no_new_privs, then read both back and die
 * with NFSV3_EXIT_PRIVILEGE unless they are exactly what was asked.
 * Pass n = 0 to drop everything.
 */
void privilege_keep_only(const int *caps, size_t n);

/*
 * Open the mount root: an absolute path, resolved from "/" with no symlink
 * in any component, a directory. Returns an O_PATH|O_DIRECTORY fd or dies
 * with NFSV3_EXIT_REFUSED naming the path.
 */
int privilege_open_root(const char *mount_root);

/*
 * Check that name is a volume name: 1..NFSV3_NAME_MAX bytes of
 * [A-Za-z0-9_.=+@:-], starting with a letter or digit, and not the state
 * file. Dies with NFSV3_EXIT_REFUSED naming the name and what is wrong.
 */
void privilege_check_volume_name(const char *name);

/*
 * A mode argument that must be exactly rw or ro: true for ro. Dies with
 * NFSV3_EXIT_REFUSED otherwise.
 */
bool privilege_parse_rw_ro(const char *mode);

/*
 * Keep fds 0-2 taken, by /dev/null where the caller closed them, so that
 * nothing the helper opens lands there (die() would then write into a
 * mountpoint). Returns one more fd of /dev/null (close-on-exec) for the
 * caller to keep or close; dies with NFSV3_EXIT_INTERNAL if it cannot.
 */
int privilege_ensure_std_fds(void);

/*
 * Open NAME beneath root_fd with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
 * RESOLVE_NO_MAGICLINKS), as flags (e.g. O_PATH|O_DIRECTORY). Returns the fd
 * or -1 with errno set.
 */
int privilege_open_beneath(int root_fd, const char *name, int flags);

/*
 * Die for a failed privilege_open_beneath (errno as it left it) of path,
 * named "<what> <path>" (what may be NULL). A symlink on the way (ELOOP), a
 * non-directory (ENOTDIR) and an escape (EXDEV) are refusals
 * (NFSV3_EXIT_REFUSED); any other error exits with other_code.
 */
noreturn void privilege_die_open(int other_code, const char *what, const char *path);

/*
 * Create NAME (a volume's mountpoint, or a kernel mount's key directory)
 * in parent_fd with mode when absent, and open it as the directory a mount
 * will be moved onto: beneath parent_fd, no symlink, not a mountpoint
 * already, empty. Returns an O_PATH fd or dies naming what is wrong. A
 * directory this run created is removed at exit unless
 * privilege_keep_mountpoint() says the mount is on it; parent_fd must stay
 * open until then.
 */
int privilege_make_mountpoint(int parent_fd, const char *name, mode_t mode);
void privilege_keep_mountpoint(void);

/*
 * The kernel's messages for a failed fs_context ("e <source>: ...", "w ...",
 * "i ..."), read until it has no more, joined with "; " into out without
 * their severity prefix or "<source>: " (the fs type, e.g. "nfs"). Errors
 * and warnings only: "i" lines are chatter. out is "" if there were none.
 */
void privilege_read_kernel_log(int fs_fd, const char *source, char *out, size_t size);

/*
 * The operator's list of local directories that sources may come from (one
 * absolute directory a line), besides the kernel NFS mounts under
 * MOUNT_ROOT/.kernel. Root-owned and writable by root alone, or ignored.
 */
#ifndef NFSV3_LOCAL_SOURCES_FILE
#define NFSV3_LOCAL_SOURCES_FILE "/etc/nfsv3driver/local-sources"
#endif

/*
 * Open a bind source or idmapfs backing directory (what names it in errors):
 * beneath MOUNT_ROOT/.kernel/ or beneath a directory listed in
 * NFSV3_LOCAL_SOURCES_FILE, with no symlink. Returns an O_PATH fd or dies
 * with NFSV3_EXIT_REFUSED naming what is wrong.
 */
int privilege_open_backing(int root_fd, const char *mount_root, const char *path, const char *what);

#endif
