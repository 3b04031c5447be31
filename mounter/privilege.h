/*
 * What every privileged helper shares: dying with one line of error and a
 * named exit code, dropping to the capabilities a verb needs, and resolving
 * paths beneath the mount root without following symlinks.
 */
#ifndef NFSV3_PRIVILEGE_H
#define NFSV3_PRIVILEGE_H

#include <stdnoreturn.h>
#include <stddef.h>
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
 * file. Returns 0, or -1 with *why set to a static explanation.
 */
int privilege_check_name(const char *name, const char **why);

/*
 * Open NAME beneath root_fd with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
 * RESOLVE_NO_MAGICLINKS), as flags (e.g. O_PATH|O_DIRECTORY). Returns the fd
 * or -1 with errno set.
 */
int privilege_open_beneath(int root_fd, const char *name, int flags);

/*
 * Open MOUNT_ROOT/NAME (which the caller has created or found) as the
 * directory a mount will be moved onto: beneath the root, no symlink, not a
 * mountpoint already, empty. Returns an O_PATH fd or dies naming what is wrong.
 */
int privilege_open_mountpoint(int root_fd, const char *name);

/*
 * The same for a volume's mountpoint, created (0755) when absent; a directory
 * this run created is removed at exit unless privilege_keep_mountpoint() says
 * the mount is on it.
 */
int privilege_make_mountpoint(int root_fd, const char *name);
void privilege_keep_mountpoint(void);

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
