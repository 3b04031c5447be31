/*
 * The FUSE transport: idmapfs speaks the kernel's protocol on /dev/fuse
 * itself (idmapfs_fuse.c). A pool of worker threads reads requests, each
 * into a buffer of its own, decodes them and calls the operations in
 * idmapfs_ops.c, which answer with the reply_* functions below.
 */
#ifndef NFSV3_IDMAPFS_FUSE_H
#define NFSV3_IDMAPFS_FUSE_H

#include <fcntl.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

/*
 * Protocol 7.40 (Linux 6.9) where the build's header is older (Debian 12
 * ships 7.38): passthrough. Everything else idmapfs uses is in 7.31
 * (Linux 5.8, the oldest kernel idmapfs runs on).
 */
#define IDMAPFS_PROTO_MINOR 40
#ifndef FUSE_PASSTHROUGH
#define FUSE_PASSTHROUGH (1ULL << 37)
#endif
#ifndef FOPEN_PASSTHROUGH
#define FOPEN_PASSTHROUGH (1 << 7)
#endif
/* struct fuse_backing_map and its two ioctls on the /dev/fuse fd (7.40). */
struct idmapfs_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define IDMAPFS_IOC_BACKING_OPEN _IOW(FUSE_DEV_IOC_MAGIC, 1, struct idmapfs_backing_map)
#define IDMAPFS_IOC_BACKING_CLOSE _IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)

#define IDMAPFS_ROOT_ID FUSE_ROOT_ID

struct idmapfs;
struct idmapfs_session;

/* One request being served (on the stack of the worker serving it). */
struct idmapfs_req {
	struct idmapfs_session *se;
	uint64_t unique;
	uint32_t uid, gid;           /* the caller's, as the kernel sent them */
	bool replied;
	/* Interrupts (see req_on_interrupt); guarded by the session's interrupt lock. */
	void (*on_interrupt)(struct idmapfs_req *req, void *data);
	void *interrupt_data;
	struct idmapfs_req *next_waiting;
	char *buf;                   /* the worker's buffer, free once the arguments are read */
	size_t bufsize;
};

/* An open file or directory, as the operations see it. */
struct idmapfs_file {
	int flags;                   /* the app's open flags */
	uint64_t fh;
	bool direct_io, keep_cache, noflush, passthrough;
	bool from_cache;             /* a write of the kernel's cached pages (writeback of an mmap) */
	int32_t backing_id;          /* with passthrough */
};

/* A name the kernel may cache: nodeid 0 is a negative entry. */
struct idmapfs_entry {
	uint64_t ino;
	struct stat attr;
	double attr_timeout, entry_timeout;
};

/* What INIT settled: the operations read it. */
struct idmapfs_conn {
	bool passthrough;            /* the kernel does it and we asked for it */
	uint32_t max_write, max_read;
};

/* ---- the session (idmapfs_main.c runs it) ----------------------------- */

/*
 * A session on fuse_fd (a mounted /dev/fuse fd) for fs; workers at most.
 * want_passthrough: ask for passthrough if the kernel offers it.
 */
struct idmapfs_session *idmapfs_session_new(int fuse_fd, struct idmapfs *fs, unsigned workers,
					    bool want_passthrough);
/* Read and answer INIT, the first request; false (with the reason on stderr) if it was not. */
bool idmapfs_session_init(struct idmapfs_session *se);
const struct idmapfs_conn *idmapfs_session_conn(const struct idmapfs_session *se);
/* Serve until the kernel ends the session; 0, or an errno. */
int idmapfs_session_loop(struct idmapfs_session *se);
/*
 * After the loop: a worker is still stuck in a backing call and still uses
 * the session, the fd and the inode table, so none may be freed; the
 * process's exit ends it.
 */
bool idmapfs_session_workers_left(const struct idmapfs_session *se);
void idmapfs_session_destroy(struct idmapfs_session *se);

/* ---- for the operations ----------------------------------------------- */

struct idmapfs *req_fs(const struct idmapfs_req *req);
const struct idmapfs_conn *req_conn(const struct idmapfs_req *req);

/*
 * Replies. Each returns 0, or -errno from the device: -ENOENT means the
 * request was interrupted and the kernel dropped the answer (so whatever
 * it would have handed over, a lookup reference or an open file, was not).
 */
int reply_err(struct idmapfs_req *req, int err);
void reply_none(struct idmapfs_req *req);
int reply_entry(struct idmapfs_req *req, const struct idmapfs_entry *e);
int reply_create(struct idmapfs_req *req, const struct idmapfs_entry *e, const struct idmapfs_file *fi);
int reply_attr(struct idmapfs_req *req, const struct stat *st, double timeout);
int reply_readlink(struct idmapfs_req *req, const char *target);
int reply_open(struct idmapfs_req *req, const struct idmapfs_file *fi);
int reply_write(struct idmapfs_req *req, size_t count);
int reply_buf(struct idmapfs_req *req, const void *buf, size_t size);
int reply_statfs(struct idmapfs_req *req, const struct statvfs *st);
int reply_xattr(struct idmapfs_req *req, size_t count);
int reply_lock(struct idmapfs_req *req, const struct flock *lock);
int reply_lseek(struct idmapfs_req *req, off_t off);
/*
 * Tell the kernel to drop its cached pages of inode ino from off, len bytes
 * (0: to the end), and its attributes; not a reply (the request still needs
 * one). 0 or -errno.
 */
int notify_inval_data(struct idmapfs_req *req, uint64_t ino, off_t off, off_t len);
/* A read of size bytes at off from fd (spliced when large). */
int reply_read(struct idmapfs_req *req, int fd, size_t size, off_t off);

/*
 * Directory entries into buf (rem bytes left); the size the entry needs,
 * which is larger than rem (and nothing written) when it does not fit.
 */
size_t add_direntry(char *buf, size_t rem, const char *name, uint64_t ino, unsigned type, uint64_t next);
size_t add_direntry_plus(char *buf, size_t rem, const char *name, const struct idmapfs_entry *e,
			 uint64_t next);

/*
 * Call fn(req, data) if the kernel interrupts req (the app was signalled)
 * from now until req_on_interrupt(req, NULL, NULL), which returns once fn
 * is neither running nor will run. Called at once if the interrupt came
 * already.
 */
void req_on_interrupt(struct idmapfs_req *req, void (*fn)(struct idmapfs_req *, void *), void *data);

#endif
