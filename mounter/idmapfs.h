/*
 * idmapfs: the per-binding uid/gid remap, a libfuse3 low-level filesystem
 * over a backing directory.
 *
 * idmapfs_main.c sets up (arguments, mount, privilege) and runs the session;
 * idmapfs_inode.c keeps the inode table (one O_PATH fd per backing inode
 * the kernel knows, keyed by st_dev/st_ino); idmapfs_ops.c answers the
 * kernel's requests with *at calls on those fds. Every backing call is made
 * by a thread whose fsuid/fsgid are the bound ids, so the backing file
 * system (the NFS server) sees the bound identity.
 */
#ifndef NFSV3_IDMAPFS_H
#define NFSV3_IDMAPFS_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/magic.h>

/* Room for "/proc/self/fd/" and an int: the magic link an O_PATH fd is reached through. */
#define IDMAPFS_PROC_FD_MAX 32

/* One backing inode the kernel holds a reference to. */
struct idmapfs_inode {
	int fd;                      /* O_PATH|O_NOFOLLOW on the backing inode */
	dev_t dev;
	ino_t ino;
	bool is_symlink;             /* xattrs and reopen through /proc do not apply */
	uint64_t nlookup;            /* kernel references; guarded by the table lock */
	unsigned opens;              /* open handles on it; guarded by the table lock */
	atomic_bool gone;            /* unlinked with fd no longer on it (see op_unlink) */
	bool hashed;                 /* findable by dev/ino; guarded by the table lock */
	struct idmapfs_inode *next;  /* hash chain; guarded by the table lock */
};

struct idmapfs_table {
	pthread_mutex_t lock;
	struct idmapfs_inode **buckets;
	size_t nbuckets;             /* a power of two */
	size_t count;                /* hashed inodes, root excluded */
};

/* What one running idmapfs serves; the session's userdata. */
struct idmapfs {
	struct idmapfs_inode root;   /* the backing directory, never forgotten */
	struct idmapfs_table table;
	uid_t bound_uid, app_uid;
	gid_t bound_gid, app_gid;
	bool read_only;
	bool initialized;            /* the kernel's INIT was answered (op_init ran) */
	unsigned long root_fs_type;  /* statfs f_type of the backing root's file system */
	int placeholder_fd;          /* O_PATH on "/": what an unlinked inode's fd becomes */
	double attr_timeout;         /* how long the kernel may trust attributes, seconds */
	double entry_timeout;        /* ... and names, positive or negative */
	atomic_bool no_xattr;        /* the backing has no xattrs at all */
	atomic_int lock_waiters;     /* workers blocked in a lock wait */
	int max_lock_waiters;        /* above this, blocking locks get ENOLCK */
};

/* The table (idmapfs_inode.c). */
int idmapfs_table_init(struct idmapfs_table *table);
void idmapfs_table_destroy(struct idmapfs_table *table);
/*
 * Return the inode for fd's backing object with one more lookup reference,
 * taking ownership of fd (kept for a new inode, closed when the object is
 * already known). NULL with errno set on failure (fd closed).
 */
struct idmapfs_inode *idmapfs_table_get(struct idmapfs *fs, int fd, const struct stat *st);
/* Drop n lookup references; the inode is freed when none remain. */
void idmapfs_table_forget(struct idmapfs *fs, struct idmapfs_inode *inode, uint64_t n);
/* Make the inode unfindable (its backing object is stale); references stay. */
void idmapfs_table_unhash(struct idmapfs *fs, struct idmapfs_inode *inode);
bool idmapfs_table_open(struct idmapfs *fs, struct idmapfs_inode *inode);
void idmapfs_table_close(struct idmapfs *fs, struct idmapfs_inode *inode);
struct idmapfs_inode *idmapfs_table_unpin(struct idmapfs *fs, const struct stat *st);

/* The statfs f_type of the file system fd is on, 0 if unknown. */
unsigned long idmapfs_fs_type(int fd);
/*
 * Whether closing a file on a file system of that type does work an app
 * must hear about (NFS writes back and reports a failed write at close).
 * False only for the local file systems known to do nothing at close.
 */
bool idmapfs_flushes(unsigned long fs_type);
/* Whether it keeps a file unlinked while in use under a hidden name (NFS: see unpin). */
static inline bool idmapfs_keeps_busy(unsigned long fs_type)
{
	return fs_type == NFS_SUPER_MAGIC;
}

/* The operations (idmapfs_ops.c). */
extern const struct fuse_lowlevel_ops idmapfs_ops;

/* The inode of a nodeid the kernel sent. */
static inline struct idmapfs_inode *idmapfs_inode_of(struct idmapfs *fs, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &fs->root : (struct idmapfs_inode *)(uintptr_t)ino;
}

#endif
