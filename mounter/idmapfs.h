/*
 * idmapfs: the per-binding uid/gid remap, a FUSE file system over a backing
 * directory.
 *
 * idmapfs_main.c sets up (arguments, mount, privilege) and runs the session;
 * idmapfs_fuse.c speaks the FUSE protocol on /dev/fuse (no libfuse);
 * idmapfs_inode.c keeps the inode table (one O_PATH fd per backing inode
 * the kernel knows, keyed by st_dev/st_ino); idmapfs_ops.c answers the
 * kernel's requests with *at calls on those fds. Every backing call is made
 * by a thread whose fsuid/fsgid are the bound ids, so the backing file
 * system (the NFS server) sees the bound identity.
 */
#ifndef NFSV3_IDMAPFS_H
#define NFSV3_IDMAPFS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/magic.h>

#include "idmapfs_fuse.h"

/* Room for "/proc/self/fd/" and an int: the magic link an O_PATH fd is reached through. */
#define IDMAPFS_PROC_FD_MAX 32

/* One backing inode the kernel holds a reference to. */
struct idmapfs_inode {
	int fd;                      /* O_PATH|O_NOFOLLOW on the backing inode */
	dev_t dev;
	ino_t ino;
	bool is_symlink;             /* xattrs and reopen through /proc do not apply */
	bool is_reg;                 /* a regular file: may pass through */
	/* Passthrough (idmapfs_passthrough.c); guarded by the fs's pt_lock. */
	bool no_passthrough;         /* its registration failed: normal path only */
	int32_t backing_id;          /* while pt_opens > 0 */
	unsigned pt_opens;
	uint64_t nlookup;            /* kernel references; guarded by the table lock */
	unsigned opens;              /* open handles on it; guarded by the table lock */
	atomic_bool gone;            /* unlinked with fd no longer on it (see op_unlink) */
	/*
	 * A regular file's backing mtime, ctime and size when idmapfs last
	 * looked (data_known): what the kernel's cached pages were read from,
	 * unless someone else has changed it since. Guarded by the table lock.
	 */
	bool data_known;
	bool data_cached;            /* opened through the page cache: the kernel may hold pages */
	struct timespec data_mtime, data_ctime;
	off_t data_size;
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
	/* Passthrough: the sentry's socket (-1 without), one request at a time. */
	int pt_sock;
	pid_t pt_sentry;
	pthread_mutex_t pt_lock;
	atomic_bool passthrough;     /* new files may pass through */
};

/*
 * Set in an open's fh (beside the backing fd in the low 32 bits) when the
 * kernel passes its I/O through, so that release drops the inode's id.
 */
#define IDMAPFS_FH_PASSTHROUGH (UINT64_C(1) << 32)

/* Take the bound fsuid/fsgid and no supplementary groups, in this thread (idmapfs_main.c). */
void idmapfs_become_bound(uid_t uid, gid_t gid);

/* Passthrough (idmapfs_passthrough.c). Start the sentry, before privilege is dropped; false if it could not be. */
bool idmapfs_passthrough_start(struct idmapfs *fs, int fuse_fd);
/* Whether an open of inode on backing fd passes through, and with which id; counted if so. */
bool idmapfs_passthrough_open(struct idmapfs *fs, struct idmapfs_inode *inode, int fd, int32_t *id);
/* A passthrough open of inode ended. */
void idmapfs_passthrough_release(struct idmapfs *fs, struct idmapfs_inode *inode);

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
/* Whether inode has open handles besides the caller's (another open, or a mapping of one). */
bool idmapfs_table_shared(struct idmapfs *fs, struct idmapfs_inode *inode);
/*
 * Record st, a regular file's fresh backing attributes, and with caching
 * that an open of it uses the page cache. SAME: as recorded before;
 * CHANGED: not, and the kernel may hold pages of it; UNKNOWN otherwise.
 */
enum idmapfs_data { IDMAPFS_DATA_UNKNOWN, IDMAPFS_DATA_SAME, IDMAPFS_DATA_CHANGED };
enum idmapfs_data idmapfs_table_data_seen(struct idmapfs *fs, struct idmapfs_inode *inode, const struct stat *st,
					  bool caching);
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

/* The operations (idmapfs_ops.c), called by the transport with the request's decoded arguments. */
void idmapfs_op_lookup(struct idmapfs_req *req, uint64_t parent, const char *name);
void idmapfs_op_forget(struct idmapfs_req *req, uint64_t ino, uint64_t nlookup);
void idmapfs_op_getattr(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi);
void idmapfs_op_setattr(struct idmapfs_req *req, uint64_t ino, struct stat *attr, int valid,
			struct idmapfs_file *fi);
void idmapfs_op_readlink(struct idmapfs_req *req, uint64_t ino);
void idmapfs_op_mknod(struct idmapfs_req *req, uint64_t parent, const char *name, mode_t mode, dev_t rdev);
void idmapfs_op_mkdir(struct idmapfs_req *req, uint64_t parent, const char *name, mode_t mode);
void idmapfs_op_symlink(struct idmapfs_req *req, const char *link, uint64_t parent, const char *name);
void idmapfs_op_link(struct idmapfs_req *req, uint64_t ino, uint64_t newparent, const char *newname);
void idmapfs_op_unlink(struct idmapfs_req *req, uint64_t parent, const char *name);
void idmapfs_op_rmdir(struct idmapfs_req *req, uint64_t parent, const char *name);
void idmapfs_op_rename(struct idmapfs_req *req, uint64_t parent, const char *name, uint64_t newparent,
		       const char *newname, unsigned int flags);
void idmapfs_op_open(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi);
void idmapfs_op_create(struct idmapfs_req *req, uint64_t parent, const char *name, mode_t mode,
		       struct idmapfs_file *fi);
void idmapfs_op_read(struct idmapfs_req *req, uint64_t ino, size_t size, off_t off, struct idmapfs_file *fi);
void idmapfs_op_write(struct idmapfs_req *req, uint64_t ino, const char *data, size_t size, off_t off,
		      struct idmapfs_file *fi);
void idmapfs_op_flush(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi);
void idmapfs_op_release(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi);
void idmapfs_op_fsync(struct idmapfs_req *req, uint64_t ino, int datasync, struct idmapfs_file *fi);
void idmapfs_op_opendir(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi);
void idmapfs_op_readdir(struct idmapfs_req *req, uint64_t ino, size_t size, off_t off, struct idmapfs_file *fi,
			bool plus);
void idmapfs_op_releasedir(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi);
void idmapfs_op_fsyncdir(struct idmapfs_req *req, uint64_t ino, int datasync, struct idmapfs_file *fi);
void idmapfs_op_statfs(struct idmapfs_req *req, uint64_t ino);
void idmapfs_op_access(struct idmapfs_req *req, uint64_t ino, int mask);
void idmapfs_op_setxattr(struct idmapfs_req *req, uint64_t ino, const char *name, const char *value,
			 size_t size, int flags);
void idmapfs_op_getxattr(struct idmapfs_req *req, uint64_t ino, const char *name, size_t size);
void idmapfs_op_listxattr(struct idmapfs_req *req, uint64_t ino, size_t size);
void idmapfs_op_removexattr(struct idmapfs_req *req, uint64_t ino, const char *name);
void idmapfs_op_flock(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi, int op);
void idmapfs_op_getlk(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi, struct flock *lock);
void idmapfs_op_setlk(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi, struct flock *lock,
		      bool sleep);
void idmapfs_op_fallocate(struct idmapfs_req *req, uint64_t ino, int mode, off_t offset, off_t length,
			  struct idmapfs_file *fi);
void idmapfs_op_copy_file_range(struct idmapfs_req *req, uint64_t ino_in, off_t off_in,
				struct idmapfs_file *fi_in, uint64_t ino_out, off_t off_out,
				struct idmapfs_file *fi_out, size_t len, int flags);
void idmapfs_op_lseek(struct idmapfs_req *req, uint64_t ino, off_t off, int whence, struct idmapfs_file *fi);

/* The largest read the kernel is to send (the max_read mount option): see idmapfs_fuse.c. */
uint32_t idmapfs_max_read(void);

/* The inode of a nodeid the kernel sent. */
static inline struct idmapfs_inode *idmapfs_inode_of(struct idmapfs *fs, uint64_t ino)
{
	return ino == IDMAPFS_ROOT_ID ? &fs->root : (struct idmapfs_inode *)(uintptr_t)ino;
}

#endif
