/*
 * The FUSE transport: requests read from /dev/fuse, decoded, handed to the
 * operations; replies written back. No library between us and the kernel.
 *
 * Workers: the loop starts one, and a worker that takes a request when no
 * other is idle starts one more, up to the session's limit (a blocked lock
 * wait or a slow backing call holds its worker). Workers live until the
 * session ends. The thread that runs the loop serves nothing: it takes the
 * stop signals, whose handler must run even while every worker is stuck in
 * a backing call that no signal but SIGKILL ends.
 *
 * Memory: each worker owns one request buffer, max_write plus room for
 * the header (the kernel refuses reads into anything smaller), mapped so
 * that only the pages a request touched are resident. Replies are built in
 * that same buffer once the request's arguments are read, or written
 * straight from the operation's own memory; large read replies are spliced
 * file -> pipe -> /dev/fuse and never pass through our memory. Nothing
 * else grows with the traffic.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "idmapfs.h"
#include "nfsv3driver.h"

/* Writes of at most 256 KiB: sixteen workers' buffers stay within 4 MiB however large the writes. */
#define IDMAPFS_MAX_WRITE (256 * 1024)
/* Requests of up to 256 pages (1 MiB) for reads: the fewer reads, the fewer NFS revalidations. */
#define IDMAPFS_MAX_PAGES 256
/* Room in a request buffer besides a write's data: the header and fuse_write_in. */
#define IDMAPFS_HEADER_ROOM 4096
/* Reads smaller than this are copied rather than spliced: see reply_read. */
#define IDMAPFS_SPLICE_MIN (64 * 1024)
/* Interrupts for requests not waiting yet, remembered until they are. */
#define IDMAPFS_PENDING_INTERRUPTS 32
#define IDMAPFS_WORKER_STACK (256 * 1024)
/*
 * Once the kernel ends the session, how long the last worker may take to
 * finish its backing call. One stuck there (a dead NFS server on a hard
 * mount waits for good) is left to the process's exit.
 */
#define IDMAPFS_WORKER_END_WAIT_S 2

/* What a worker serves: the request's unique and the caller's thread id (0: idle). */
struct idmapfs_inflight {
	atomic_uint_fast64_t unique;
	atomic_uint pid;
};

struct idmapfs_session {
	int fd;
	struct idmapfs *fs;
	struct idmapfs_conn conn;
	bool want_passthrough;
	size_t bufsize;
	unsigned max_workers;
	atomic_uint workers, idle;
	atomic_bool ended;
	atomic_int error;            /* what ended the session, if not the kernel */
	pthread_mutex_t lock;        /* for done */
	pthread_cond_t done;         /* a worker ended */
	/* Interrupts: requests waiting for one, and ones that came before their request waited. */
	pthread_mutex_t intr_lock;
	struct idmapfs_req *waiting;
	uint64_t pending[IDMAPFS_PENDING_INTERRUPTS];
	unsigned pending_next;
	atomic_uint npending;
	/* One per worker, claimed when it starts (max_workers of them). */
	struct idmapfs_inflight *inflight;
	atomic_uint ninflight;
	bool workers_left;           /* the loop returned with a worker still in a backing call */
	pthread_attr_t attr;
};

/*
 * Reads of at most 255 pages: a spliced reply's pipe holds the header in a
 * page of its own besides the data, and a pipe of 256 pages (1 MiB) is the
 * most an unprivileged process may have (fs.pipe-max-size).
 */
uint32_t idmapfs_max_read(void)
{
	return (IDMAPFS_MAX_PAGES - 1) * (uint32_t)sysconf(_SC_PAGESIZE);
}

struct idmapfs *req_fs(const struct idmapfs_req *req)
{
	return req->se->fs;
}

const struct idmapfs_conn *req_conn(const struct idmapfs_req *req)
{
	return &req->se->conn;
}

const struct idmapfs_conn *idmapfs_session_conn(const struct idmapfs_session *se)
{
	return &se->conn;
}

/* ---- replies ------------------------------------------------------------ */

static void forget_pending(struct idmapfs_session *se, uint64_t unique)
{
	pthread_mutex_lock(&se->intr_lock);
	for (unsigned i = 0; i < IDMAPFS_PENDING_INTERRUPTS; i++) {
		if (se->pending[i] == unique) {
			se->pending[i] = 0;
			atomic_fetch_sub(&se->npending, 1);
		}
	}
	pthread_mutex_unlock(&se->intr_lock);
}

/* Write the reply (error, or iov[1..n-1] after the header in iov[0]); 0 or -errno. */
static int send_iov(struct idmapfs_req *req, int error, struct iovec *iov, int count)
{
	struct fuse_out_header out = {.unique = req->unique, .error = -error};
	ssize_t res;

	req->replied = true;
	if (atomic_load(&req->se->npending) != 0)
		forget_pending(req->se, req->unique);
	out.len = sizeof(out);
	for (int i = 1; i < count; i++)
		out.len += (uint32_t)iov[i].iov_len;
	iov[0] = (struct iovec){.iov_base = &out, .iov_len = sizeof(out)};
	res = writev(req->se->fd, iov, count);
	if (res < 0) {
		int err = errno;

		/* ENOENT: interrupted, the kernel no longer waits for it; ENODEV: the session ended. */
		if (err != ENOENT && err != ENODEV)
			fprintf(stderr, "%s: cannot answer the kernel: %s\n", NFSV3_HELPER_IDMAPFS, strerror(err));
		return -err;
	}
	return 0;
}

static int send_arg(struct idmapfs_req *req, const void *arg, size_t size)
{
	struct iovec iov[2] = {{0}, {.iov_base = (void *)arg, .iov_len = size}};

	return send_iov(req, 0, iov, size > 0 ? 2 : 1);
}

int notify_inval_data(struct idmapfs_req *req, uint64_t ino, off_t off, off_t len)
{
	struct fuse_notify_inval_inode_out arg = {.ino = ino, .off = off, .len = len};
	struct fuse_out_header out = {.len = sizeof(out) + sizeof(arg), .error = FUSE_NOTIFY_INVAL_INODE};
	struct iovec iov[2] = {{.iov_base = &out, .iov_len = sizeof(out)}, {.iov_base = &arg, .iov_len = sizeof(arg)}};

	/* ENOENT: the kernel holds no inode (so no pages) for it. */
	if (writev(req->se->fd, iov, 2) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int reply_err(struct idmapfs_req *req, int err)
{
	struct iovec iov[1];

	return send_iov(req, err, iov, 1);
}

void reply_none(struct idmapfs_req *req)
{
	req->replied = true;
}

static void timeout_split(double t, uint64_t *sec, uint32_t *nsec)
{
	if (t <= 0) {
		*sec = 0;
		*nsec = 0;
	} else if (t >= (double)UINT64_MAX / 2) {
		*sec = UINT64_MAX / 2;
		*nsec = 0;
	} else {
		*sec = (uint64_t)t;
		*nsec = (uint32_t)((t - (double)*sec) * 1e9);
	}
}

static void fill_attr(struct fuse_attr *a, const struct stat *st)
{
	*a = (struct fuse_attr){
		.ino = st->st_ino,
		.size = (uint64_t)st->st_size,
		.blocks = (uint64_t)st->st_blocks,
		.atime = (uint64_t)st->st_atim.tv_sec,
		.mtime = (uint64_t)st->st_mtim.tv_sec,
		.ctime = (uint64_t)st->st_ctim.tv_sec,
		.atimensec = (uint32_t)st->st_atim.tv_nsec,
		.mtimensec = (uint32_t)st->st_mtim.tv_nsec,
		.ctimensec = (uint32_t)st->st_ctim.tv_nsec,
		.mode = st->st_mode,
		.nlink = (uint32_t)st->st_nlink,
		.uid = st->st_uid,
		.gid = st->st_gid,
		.rdev = (uint32_t)st->st_rdev,
		.blksize = (uint32_t)st->st_blksize,
	};
}

static void fill_entry(struct fuse_entry_out *out, const struct idmapfs_entry *e)
{
	memset(out, 0, sizeof(*out));
	out->nodeid = e->ino;
	timeout_split(e->entry_timeout, &out->entry_valid, &out->entry_valid_nsec);
	if (e->ino != 0) {
		timeout_split(e->attr_timeout, &out->attr_valid, &out->attr_valid_nsec);
		fill_attr(&out->attr, &e->attr);
	}
}

static void fill_open(struct fuse_open_out *out, const struct idmapfs_file *fi)
{
	memset(out, 0, sizeof(*out));
	out->fh = fi->fh;
	if (fi->direct_io)
		out->open_flags |= FOPEN_DIRECT_IO;
	if (fi->keep_cache)
		out->open_flags |= FOPEN_KEEP_CACHE;
	if (fi->noflush)
		out->open_flags |= FOPEN_NOFLUSH;
	if (fi->passthrough) {
		out->open_flags |= FOPEN_PASSTHROUGH;
		/* backing_id took the place of padding in 7.40. */
		memcpy(&out->padding, &fi->backing_id, sizeof(out->padding));
	}
}

int reply_entry(struct idmapfs_req *req, const struct idmapfs_entry *e)
{
	struct fuse_entry_out out;

	fill_entry(&out, e);
	return send_arg(req, &out, sizeof(out));
}

int reply_create(struct idmapfs_req *req, const struct idmapfs_entry *e, const struct idmapfs_file *fi)
{
	struct {
		struct fuse_entry_out entry;
		struct fuse_open_out open;
	} out;

	fill_entry(&out.entry, e);
	fill_open(&out.open, fi);
	return send_arg(req, &out, sizeof(out));
}

int reply_attr(struct idmapfs_req *req, const struct stat *st, double timeout)
{
	struct fuse_attr_out out = {0};

	timeout_split(timeout, &out.attr_valid, &out.attr_valid_nsec);
	fill_attr(&out.attr, st);
	return send_arg(req, &out, sizeof(out));
}

int reply_readlink(struct idmapfs_req *req, const char *target)
{
	return send_arg(req, target, strlen(target));
}

int reply_open(struct idmapfs_req *req, const struct idmapfs_file *fi)
{
	struct fuse_open_out out;

	fill_open(&out, fi);
	return send_arg(req, &out, sizeof(out));
}

int reply_write(struct idmapfs_req *req, size_t count)
{
	struct fuse_write_out out = {.size = (uint32_t)count};

	return send_arg(req, &out, sizeof(out));
}

int reply_buf(struct idmapfs_req *req, const void *buf, size_t size)
{
	return send_arg(req, buf, size);
}

int reply_statfs(struct idmapfs_req *req, const struct statvfs *st)
{
	struct fuse_statfs_out out = {
		.st = {
			.blocks = st->f_blocks,
			.bfree = st->f_bfree,
			.bavail = st->f_bavail,
			.files = st->f_files,
			.ffree = st->f_ffree,
			.bsize = (uint32_t)st->f_bsize,
			.namelen = (uint32_t)st->f_namemax,
			.frsize = (uint32_t)st->f_frsize,
		},
	};

	return send_arg(req, &out, sizeof(out));
}

int reply_xattr(struct idmapfs_req *req, size_t count)
{
	struct fuse_getxattr_out out = {.size = (uint32_t)count};

	return send_arg(req, &out, sizeof(out));
}

int reply_lock(struct idmapfs_req *req, const struct flock *lock)
{
	struct fuse_lk_out out = {
		.lk = {
			.type = (uint32_t)lock->l_type,
			.pid = (uint32_t)lock->l_pid,
		},
	};

	if (lock->l_type != F_UNLCK) {
		out.lk.start = (uint64_t)lock->l_start;
		out.lk.end = lock->l_len == 0 ? (uint64_t)INT64_MAX : (uint64_t)(lock->l_start + lock->l_len - 1);
	}
	return send_arg(req, &out, sizeof(out));
}

int reply_lseek(struct idmapfs_req *req, off_t off)
{
	struct fuse_lseek_out out = {.offset = (uint64_t)off};

	return send_arg(req, &out, sizeof(out));
}

/*
 * Each worker's pipe for spliced replies (created on first use): room for
 * the header's page and max_read. -2 once it cannot be had: reads are then
 * copied.
 */
static __thread int splice_pipe[2] = {-1, -1};

static void close_splice_pipe(void)
{
	if (splice_pipe[0] >= 0) {
		close(splice_pipe[0]);
		close(splice_pipe[1]);
	}
	splice_pipe[0] = splice_pipe[1] = -1;
}

static bool have_splice_pipe(const struct idmapfs_session *se)
{
	if (splice_pipe[0] == -2)
		return false;
	if (splice_pipe[0] >= 0)
		return true;
	if (pipe2(splice_pipe, O_CLOEXEC) != 0) {
		splice_pipe[0] = splice_pipe[1] = -2;
		return false;
	}
	if (fcntl(splice_pipe[1], F_SETPIPE_SZ, (int)(se->conn.max_read + (uint32_t)getpagesize())) < 0) {
		close_splice_pipe();
		splice_pipe[0] = splice_pipe[1] = -2;
		return false;
	}
	return true;
}

/*
 * Splice size bytes of fd at off to the kernel: header, then the file's
 * pages, into the pipe; the pipe into /dev/fuse. A short read (the end of
 * the file) leaves a header that says too much in front: it moves through
 * a second pipe behind a new one. Returns 1 if it could not splice (the
 * caller copies), else what the reply returned.
 */
static int splice_read(struct idmapfs_req *req, int fd, size_t size, off_t off)
{
	struct fuse_out_header out = {.len = (uint32_t)(sizeof(out) + size), .unique = req->unique};
	size_t got = 0;
	ssize_t n;
	int err, fix[2];

	if (!have_splice_pipe(req->se))
		return 1;
	if (write(splice_pipe[1], &out, sizeof(out)) != (ssize_t)sizeof(out)) {
		close_splice_pipe();
		return 1;
	}
	while (got < size) {
		n = splice(fd, &off, splice_pipe[1], NULL, size - got, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			close_splice_pipe();
			/* EINVAL: this file cannot be spliced from: copy. */
			return err == EINVAL ? 1 : reply_err(req, err);
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	req->replied = true;
	if (atomic_load(&req->se->npending) != 0)
		forget_pending(req->se, req->unique);
	if (got < size) {
		out.len = (uint32_t)(sizeof(out) + got);
		if (pipe2(fix, O_CLOEXEC) != 0 || read(splice_pipe[0], &(struct fuse_out_header){0}, sizeof(out)) !=
		    (ssize_t)sizeof(out)) {
			err = errno;
			close_splice_pipe();
			return reply_err(req, err);
		}
		fcntl(fix[1], F_SETPIPE_SZ, (int)(got + (size_t)getpagesize()));
		if (write(fix[1], &out, sizeof(out)) != (ssize_t)sizeof(out) ||
		    (got > 0 && splice(splice_pipe[0], NULL, fix[1], NULL, got, 0) != (ssize_t)got)) {
			err = errno;
			close(fix[0]);
			close(fix[1]);
			close_splice_pipe();
			return reply_err(req, err ? err : EIO);
		}
		n = splice(fix[0], NULL, req->se->fd, NULL, out.len, 0);
		err = errno;
		close(fix[0]);
		close(fix[1]);
	} else {
		n = splice(splice_pipe[0], NULL, req->se->fd, NULL, out.len, 0);
		err = errno;
	}
	if (n != (ssize_t)out.len) {
		/* Whatever is left in the pipe must not go in front of the next reply. */
		close_splice_pipe();
		if (n < 0 && err != ENOENT && err != ENODEV)
			fprintf(stderr, "%s: cannot answer the kernel: %s\n", NFSV3_HELPER_IDMAPFS, strerror(err));
		return n < 0 ? -err : -EIO;
	}
	return 0;
}

int reply_read(struct idmapfs_req *req, int fd, size_t size, off_t off)
{
	struct iovec iov[2];
	char *buf = req->buf;
	ssize_t n;
	int res;

	if (size >= IDMAPFS_SPLICE_MIN && (res = splice_read(req, fd, size, off)) != 1)
		return res;
	/* The request's arguments are read: its buffer takes the data, or a mapping for the rare larger read. */
	if (size > req->bufsize) {
		buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (buf == MAP_FAILED)
			return reply_err(req, ENOMEM);
	}
	do
		n = pread(fd, buf, size, off);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		res = reply_err(req, errno);
	} else {
		iov[1] = (struct iovec){.iov_base = buf, .iov_len = (size_t)n};
		res = send_iov(req, 0, iov, n > 0 ? 2 : 1);
	}
	if (buf != req->buf)
		munmap(buf, size);
	return res;
}

/* ---- directory entries ------------------------------------------------- */

size_t add_direntry(char *buf, size_t rem, const char *name, uint64_t ino, unsigned type, uint64_t next)
{
	size_t namelen = strlen(name);
	size_t entsize = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);
	struct fuse_dirent *d = (struct fuse_dirent *)buf;

	if (entsize > rem)
		return entsize;
	d->ino = ino;
	d->off = next;
	d->namelen = (uint32_t)namelen;
	d->type = type;
	memcpy(d->name, name, namelen);
	memset(d->name + namelen, 0, entsize - FUSE_NAME_OFFSET - namelen);
	return entsize;
}

size_t add_direntry_plus(char *buf, size_t rem, const char *name, const struct idmapfs_entry *e, uint64_t next)
{
	size_t namelen = strlen(name);
	size_t entsize = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + namelen);
	struct fuse_direntplus *dp = (struct fuse_direntplus *)buf;

	if (entsize > rem)
		return entsize;
	fill_entry(&dp->entry_out, e);
	if (e->ino == 0) {
		/* "." and "..": only a name and a type for the kernel, no entry. */
		dp->entry_out.attr.ino = e->attr.st_ino;
		dp->entry_out.attr.mode = e->attr.st_mode;
	}
	dp->dirent.ino = e->attr.st_ino;
	dp->dirent.off = next;
	dp->dirent.namelen = (uint32_t)namelen;
	dp->dirent.type = (e->attr.st_mode & S_IFMT) >> 12;
	memcpy(dp->dirent.name, name, namelen);
	memset(dp->dirent.name + namelen, 0, entsize - FUSE_NAME_OFFSET_DIRENTPLUS - namelen);
	return entsize;
}

/* ---- interrupts --------------------------------------------------------- */

void req_on_interrupt(struct idmapfs_req *req, void (*fn)(struct idmapfs_req *, void *), void *data)
{
	struct idmapfs_session *se = req->se;
	struct idmapfs_req **link;

	pthread_mutex_lock(&se->intr_lock);
	if (fn == NULL) {
		for (link = &se->waiting; *link != NULL; link = &(*link)->next_waiting) {
			if (*link == req) {
				*link = req->next_waiting;
				break;
			}
		}
		req->on_interrupt = NULL;
		pthread_mutex_unlock(&se->intr_lock);
		return;
	}
	req->on_interrupt = fn;
	req->interrupt_data = data;
	for (unsigned i = 0; i < IDMAPFS_PENDING_INTERRUPTS; i++) {
		if (se->pending[i] == req->unique) {
			/* It came before we waited: now, and no need to wait for another. */
			se->pending[i] = 0;
			atomic_fetch_sub(&se->npending, 1);
			fn(req, data);
			req->on_interrupt = NULL;
			pthread_mutex_unlock(&se->intr_lock);
			return;
		}
	}
	req->next_waiting = se->waiting;
	se->waiting = req;
	pthread_mutex_unlock(&se->intr_lock);
}

/*
 * Is the thread tid dying (SIGKILL pending: killed, or a fatal signal that
 * ends its process)? From /proc/TID/status, which anyone may read.
 */
static bool being_killed(pid_t tid)
{
	char path[64], status[4096];
	const char *fields[] = {"\nSigPnd:", "\nShdPnd:"};
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, status, sizeof(status) - 1);
	close(fd);
	if (n <= 0)
		return false;
	status[n] = '\0';
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *at = strstr(status, fields[i]);

		if (at != NULL && (strtoull(at + strlen(fields[i]), NULL, 16) & (1ULL << (SIGKILL - 1))) != 0)
			return true;
	}
	return false;
}

/*
 * The caller of the request a worker serves is being killed: answer EINTR
 * for it now, so that it can die. The kernel waits for an answer to a
 * request it has handed over, even for a killed caller, and the worker may
 * be stuck in its backing call for good (a dead NFS server on a hard mount,
 * where only the caller's own kill would end the wait). The worker's own
 * reply, whenever it comes, finds the request gone (ENOENT), which every
 * operation already takes as an interrupted request.
 */
static bool answer_for_killed_caller(struct idmapfs_session *se, uint64_t unique)
{
	struct fuse_out_header out = {.len = sizeof(out), .error = -EINTR, .unique = unique};
	unsigned n = atomic_load(&se->ninflight);
	pid_t pid = 0;

	for (unsigned i = 0; i < n && i < se->max_workers; i++) {
		if (atomic_load(&se->inflight[i].unique) == unique)
			pid = (pid_t)atomic_load(&se->inflight[i].pid);
	}
	if (pid <= 0 || !being_killed(pid))
		return false;
	/* ENOENT: the worker answered meanwhile. */
	if (write(se->fd, &out, sizeof(out)) < 0 && errno != ENOENT && errno != ENODEV)
		fprintf(stderr, "%s: cannot answer for a killed caller: %s\n", NFSV3_HELPER_IDMAPFS, strerror(errno));
	return true;
}

/*
 * FUSE_INTERRUPT for unique: wake its wait if it waits; answer it if its
 * caller is being killed; else remember it for when it waits (it may be
 * about to), in a ring that forgets the oldest (a request that ended
 * without waiting leaves one there; its reply clears it when it ends after).
 */
static void interrupt(struct idmapfs_session *se, uint64_t unique)
{
	struct idmapfs_req *req;

	pthread_mutex_lock(&se->intr_lock);
	for (req = se->waiting; req != NULL; req = req->next_waiting) {
		if (req->unique == unique) {
			req->on_interrupt(req, req->interrupt_data);
			break;
		}
	}
	if (req == NULL && !answer_for_killed_caller(se, unique)) {
		unsigned i = se->pending_next++ % IDMAPFS_PENDING_INTERRUPTS;

		if (se->pending[i] == 0)
			atomic_fetch_add(&se->npending, 1);
		se->pending[i] = unique;
	}
	pthread_mutex_unlock(&se->intr_lock);
}

/* ---- INIT --------------------------------------------------------------- */

/*
 * What idmapfs asks of the kernel, where offered:
 * - async reads, async direct I/O, parallel directory operations: several
 *   requests in flight per file and per directory;
 * - POSIX and flock locks handled here (OFD locks on the backing, see ops);
 * - O_TRUNC handed to open; suid clearing left to the backing (we write
 *   without CAP_FSETID);
 * - no auto_inval_data: the kernel would ask for a file's attributes before
 *   every read() once they expire (a tick on NFS: a GETATTR on the wire
 *   per read), and drop all of its cached pages after each of our own
 *   writes (the backing's mtime moves, the kernel's does not). idmapfs
 *   drops them itself when it sees another's change (see data_seen in ops);
 * - readdirplus when lookups follow (READDIRPLUS_AUTO);
 * - cached symlink targets (a target never changes: rename replaces it);
 * - max_pages: reads of up to 256 pages, max_write kept separate;
 * - passthrough when asked for (see idmapfs_passthrough.c).
 * No writeback cache: the kernel would take sizes and mtimes from its own
 * cache instead of the backing (other NFS clients' appends unseen), read
 * write-only files to fill pages, and report write errors after close.
 */
static const uint64_t wanted_flags = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES |
				     FUSE_FLOCK_LOCKS | FUSE_DO_READDIRPLUS |
				     FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO | FUSE_PARALLEL_DIROPS |
				     FUSE_HANDLE_KILLPRIV | FUSE_CACHE_SYMLINKS | FUSE_MAX_PAGES | FUSE_INIT_EXT;

static bool do_init(struct idmapfs_req *req, const char *arg, size_t size)
{
	const struct fuse_init_in *in = (const void *)arg;
	struct idmapfs_session *se = req->se;
	struct fuse_init_out out = {.major = FUSE_KERNEL_VERSION, .minor = IDMAPFS_PROTO_MINOR};
	uint64_t offered, want;

	if (size < offsetof(struct fuse_init_in, flags2)) {
		reply_err(req, EINVAL);
		return false;
	}
	if (in->major > FUSE_KERNEL_VERSION) {
		/* The kernel asks again with our major. */
		send_arg(req, &out, sizeof(out));
		return false;
	}
	if (in->major < FUSE_KERNEL_VERSION || in->minor < 31) {
		fprintf(stderr, "%s: the kernel's FUSE %u.%u is too old (7.31, Linux 5.8, at least)\n",
			NFSV3_HELPER_IDMAPFS, in->major, in->minor);
		reply_err(req, EPROTO);
		return false;
	}
	offered = in->flags;
	if ((in->flags & FUSE_INIT_EXT) && size >= sizeof(*in))
		offered |= (uint64_t)in->flags2 << 32;
	want = wanted_flags & offered;
	if (se->want_passthrough && (offered & FUSE_PASSTHROUGH)) {
		want |= FUSE_PASSTHROUGH;
		/* max_stack_depth (7.40, in unused[0]): backing files on a file system that stacks on nothing. */
		out.unused[0] = 1;
		se->conn.passthrough = true;
	}
	out.flags = (uint32_t)want;
	out.flags2 = (uint32_t)(want >> 32);
	out.max_readahead = in->max_readahead;
	/* Let readahead and async direct I/O keep several requests in flight. */
	out.max_background = 64;
	out.congestion_threshold = 48;
	out.max_write = se->conn.max_write;
	out.time_gran = 1;
	out.max_pages = IDMAPFS_MAX_PAGES;
	se->fs->initialized = true;
	return send_arg(req, &out, sizeof(out)) == 0;
}

/* ---- requests ----------------------------------------------------------- */

/* A NUL-terminated name at arg within size, or NULL. */
static const char *name_at(const char *arg, size_t size)
{
	return memchr(arg, '\0', size) != NULL ? arg : NULL;
}

static void file_of(struct idmapfs_file *fi, uint64_t fh, uint32_t flags)
{
	*fi = (struct idmapfs_file){.fh = fh, .flags = (int)flags};
}

static void lock_of(struct flock *lock, const struct fuse_file_lock *lk)
{
	*lock = (struct flock){
		.l_type = (short)lk->type,
		.l_whence = SEEK_SET,
		.l_start = (off_t)lk->start,
		.l_len = lk->end == (uint64_t)INT64_MAX ? 0 : (off_t)(lk->end - lk->start + 1),
		.l_pid = (pid_t)lk->pid,
	};
}

/* Run the request in buf (n bytes); the operations reply. */
static void dispatch(struct idmapfs_session *se, char *buf, size_t n)
{
	const struct fuse_in_header *in = (const void *)buf;
	struct idmapfs_req req = {.se = se, .buf = buf, .bufsize = se->bufsize};
	const char *arg = buf + sizeof(*in), *name, *name2;
	size_t size = n - sizeof(*in);
	uint64_t ino;
	struct idmapfs_file fi;

	if (n < sizeof(*in) || in->len != n) {
		fprintf(stderr, "%s: a request of %zu bytes that says %u\n", NFSV3_HELPER_IDMAPFS, n,
			n < sizeof(*in) ? 0 : in->len);
		return;
	}
	req.unique = in->unique;
	req.uid = in->uid;
	req.gid = in->gid;
	ino = in->nodeid;
#define ARG(type) (size >= sizeof(type) ? (const type *)(const void *)arg : NULL)
#define NEED(cond) do { if (!(cond)) { reply_err(&req, EINVAL); return; } } while (0)
	switch (in->opcode) {
	case FUSE_INIT:
		reply_err(&req, EPROTO);
		break;
	case FUSE_DESTROY:
		reply_err(&req, 0);
		break;
	case FUSE_INTERRUPT: {
		const struct fuse_interrupt_in *a = ARG(struct fuse_interrupt_in);

		if (a != NULL)
			interrupt(se, a->unique);
		break;
	}
	case FUSE_LOOKUP:
		NEED((name = name_at(arg, size)) != NULL);
		idmapfs_op_lookup(&req, ino, name);
		break;
	case FUSE_FORGET: {
		const struct fuse_forget_in *a = ARG(struct fuse_forget_in);

		if (a != NULL)
			idmapfs_op_forget(&req, ino, a->nlookup);
		break;
	}
	case FUSE_BATCH_FORGET: {
		const struct fuse_batch_forget_in *a = ARG(struct fuse_batch_forget_in);
		const struct fuse_forget_one *one = (const void *)(arg + sizeof(*a));

		if (a == NULL || (size - sizeof(*a)) / sizeof(*one) < a->count)
			break;
		for (uint32_t i = 0; i < a->count; i++)
			idmapfs_op_forget(&req, one[i].nodeid, one[i].nlookup);
		break;
	}
	case FUSE_GETATTR: {
		const struct fuse_getattr_in *a = ARG(struct fuse_getattr_in);

		NEED(a != NULL);
		file_of(&fi, a->fh, 0);
		idmapfs_op_getattr(&req, ino, (a->getattr_flags & FUSE_GETATTR_FH) ? &fi : NULL);
		break;
	}
	case FUSE_SETATTR: {
		const struct fuse_setattr_in *a = ARG(struct fuse_setattr_in);
		struct stat st = {0};

		NEED(a != NULL);
		st.st_mode = a->mode;
		st.st_uid = a->uid;
		st.st_gid = a->gid;
		st.st_size = (off_t)a->size;
		st.st_atim = (struct timespec){(time_t)a->atime, a->atimensec};
		st.st_mtim = (struct timespec){(time_t)a->mtime, a->mtimensec};
		st.st_ctim = (struct timespec){(time_t)a->ctime, a->ctimensec};
		file_of(&fi, a->fh, 0);
		idmapfs_op_setattr(&req, ino, &st, (int)a->valid, (a->valid & FATTR_FH) ? &fi : NULL);
		break;
	}
	case FUSE_READLINK:
		idmapfs_op_readlink(&req, ino);
		break;
	case FUSE_SYMLINK:
		/* The new name, then the target. */
		NEED((name = name_at(arg, size)) != NULL);
		NEED((name2 = name_at(arg + strlen(name) + 1, size - strlen(name) - 1)) != NULL);
		idmapfs_op_symlink(&req, name2, ino, name);
		break;
	case FUSE_MKNOD: {
		const struct fuse_mknod_in *a = ARG(struct fuse_mknod_in);

		NEED(a != NULL && (name = name_at(arg + sizeof(*a), size - sizeof(*a))) != NULL);
		idmapfs_op_mknod(&req, ino, name, a->mode, a->rdev);
		break;
	}
	case FUSE_MKDIR: {
		const struct fuse_mkdir_in *a = ARG(struct fuse_mkdir_in);

		NEED(a != NULL && (name = name_at(arg + sizeof(*a), size - sizeof(*a))) != NULL);
		idmapfs_op_mkdir(&req, ino, name, a->mode);
		break;
	}
	case FUSE_UNLINK:
		NEED((name = name_at(arg, size)) != NULL);
		idmapfs_op_unlink(&req, ino, name);
		break;
	case FUSE_RMDIR:
		NEED((name = name_at(arg, size)) != NULL);
		idmapfs_op_rmdir(&req, ino, name);
		break;
	case FUSE_RENAME:
	case FUSE_RENAME2: {
		size_t head = in->opcode == FUSE_RENAME ? sizeof(struct fuse_rename_in) : sizeof(struct fuse_rename2_in);
		const struct fuse_rename2_in *a = (const void *)arg;
		uint32_t flags;

		NEED(size >= head && (name = name_at(arg + head, size - head)) != NULL);
		NEED((name2 = name_at(name + strlen(name) + 1, size - head - strlen(name) - 1)) != NULL);
		flags = in->opcode == FUSE_RENAME ? 0 : a->flags;
		idmapfs_op_rename(&req, ino, name, a->newdir, name2, flags);
		break;
	}
	case FUSE_LINK: {
		const struct fuse_link_in *a = ARG(struct fuse_link_in);

		NEED(a != NULL && (name = name_at(arg + sizeof(*a), size - sizeof(*a))) != NULL);
		idmapfs_op_link(&req, a->oldnodeid, ino, name);
		break;
	}
	case FUSE_OPEN:
	case FUSE_OPENDIR: {
		const struct fuse_open_in *a = ARG(struct fuse_open_in);

		NEED(a != NULL);
		file_of(&fi, 0, a->flags);
		if (in->opcode == FUSE_OPEN)
			idmapfs_op_open(&req, ino, &fi);
		else
			idmapfs_op_opendir(&req, ino, &fi);
		break;
	}
	case FUSE_CREATE: {
		const struct fuse_create_in *a = ARG(struct fuse_create_in);

		NEED(a != NULL && (name = name_at(arg + sizeof(*a), size - sizeof(*a))) != NULL);
		file_of(&fi, 0, a->flags);
		idmapfs_op_create(&req, ino, name, a->mode, &fi);
		break;
	}
	case FUSE_READ:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS: {
		const struct fuse_read_in *a = ARG(struct fuse_read_in);
		uint64_t off;
		uint32_t len;

		NEED(a != NULL);
		file_of(&fi, a->fh, a->flags);
		/* Copied out: the reply may take the buffer. */
		off = a->offset;
		len = a->size;
		if (in->opcode == FUSE_READ)
			idmapfs_op_read(&req, ino, len, (off_t)off, &fi);
		else
			idmapfs_op_readdir(&req, ino, len, (off_t)off, &fi, in->opcode == FUSE_READDIRPLUS);
		break;
	}
	case FUSE_WRITE: {
		const struct fuse_write_in *a = ARG(struct fuse_write_in);

		NEED(a != NULL && size - sizeof(*a) >= a->size);
		file_of(&fi, a->fh, a->flags);
		fi.from_cache = (a->write_flags & FUSE_WRITE_CACHE) != 0;
		idmapfs_op_write(&req, ino, arg + sizeof(*a), a->size, (off_t)a->offset, &fi);
		break;
	}
	case FUSE_FLUSH: {
		const struct fuse_flush_in *a = ARG(struct fuse_flush_in);

		NEED(a != NULL);
		file_of(&fi, a->fh, 0);
		idmapfs_op_flush(&req, ino, &fi);
		break;
	}
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR: {
		const struct fuse_release_in *a = ARG(struct fuse_release_in);

		NEED(a != NULL);
		file_of(&fi, a->fh, a->flags);
		if (in->opcode == FUSE_RELEASE)
			idmapfs_op_release(&req, ino, &fi);
		else
			idmapfs_op_releasedir(&req, ino, &fi);
		break;
	}
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR: {
		const struct fuse_fsync_in *a = ARG(struct fuse_fsync_in);

		NEED(a != NULL);
		file_of(&fi, a->fh, 0);
		if (in->opcode == FUSE_FSYNC)
			idmapfs_op_fsync(&req, ino, a->fsync_flags & 1, &fi);
		else
			idmapfs_op_fsyncdir(&req, ino, a->fsync_flags & 1, &fi);
		break;
	}
	case FUSE_STATFS:
		idmapfs_op_statfs(&req, ino);
		break;
	case FUSE_ACCESS: {
		const struct fuse_access_in *a = ARG(struct fuse_access_in);

		NEED(a != NULL);
		idmapfs_op_access(&req, ino, (int)a->mask);
		break;
	}
	case FUSE_SETXATTR: {
		/* No FUSE_SETXATTR_EXT asked for: the short form. */
		const struct fuse_setxattr_in *a = (const void *)arg;
		size_t head = FUSE_COMPAT_SETXATTR_IN_SIZE;

		NEED(size >= head && (name = name_at(arg + head, size - head)) != NULL);
		NEED(size - head - strlen(name) - 1 >= a->size);
		idmapfs_op_setxattr(&req, ino, name, name + strlen(name) + 1, a->size, (int)a->flags);
		break;
	}
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR: {
		const struct fuse_getxattr_in *a = ARG(struct fuse_getxattr_in);
		uint32_t len;

		NEED(a != NULL);
		len = a->size;
		if (in->opcode == FUSE_LISTXATTR) {
			idmapfs_op_listxattr(&req, ino, len);
			break;
		}
		NEED((name = name_at(arg + sizeof(*a), size - sizeof(*a))) != NULL);
		idmapfs_op_getxattr(&req, ino, name, len);
		break;
	}
	case FUSE_REMOVEXATTR:
		NEED((name = name_at(arg, size)) != NULL);
		idmapfs_op_removexattr(&req, ino, name);
		break;
	case FUSE_GETLK:
	case FUSE_SETLK:
	case FUSE_SETLKW: {
		const struct fuse_lk_in *a = ARG(struct fuse_lk_in);
		bool sleep = in->opcode == FUSE_SETLKW;
		struct flock lock;

		NEED(a != NULL);
		file_of(&fi, a->fh, 0);
		if (in->opcode != FUSE_GETLK && (a->lk_flags & FUSE_LK_FLOCK)) {
			int op = a->lk.type == F_RDLCK ? LOCK_SH : a->lk.type == F_WRLCK ? LOCK_EX : LOCK_UN;

			idmapfs_op_flock(&req, ino, &fi, op | (sleep ? 0 : LOCK_NB));
			break;
		}
		lock_of(&lock, &a->lk);
		if (in->opcode == FUSE_GETLK)
			idmapfs_op_getlk(&req, ino, &fi, &lock);
		else
			idmapfs_op_setlk(&req, ino, &fi, &lock, sleep);
		break;
	}
	case FUSE_FALLOCATE: {
		const struct fuse_fallocate_in *a = ARG(struct fuse_fallocate_in);

		NEED(a != NULL);
		file_of(&fi, a->fh, 0);
		idmapfs_op_fallocate(&req, ino, (int)a->mode, (off_t)a->offset, (off_t)a->length, &fi);
		break;
	}
	case FUSE_COPY_FILE_RANGE: {
		const struct fuse_copy_file_range_in *a = ARG(struct fuse_copy_file_range_in);
		struct idmapfs_file fi_out;

		NEED(a != NULL);
		file_of(&fi, a->fh_in, 0);
		file_of(&fi_out, a->fh_out, 0);
		idmapfs_op_copy_file_range(&req, ino, (off_t)a->off_in, &fi, a->nodeid_out, (off_t)a->off_out,
					   &fi_out, a->len, (int)a->flags);
		break;
	}
	case FUSE_LSEEK: {
		const struct fuse_lseek_in *a = ARG(struct fuse_lseek_in);

		NEED(a != NULL);
		file_of(&fi, a->fh, 0);
		idmapfs_op_lseek(&req, ino, (off_t)a->offset, (int)a->whence, &fi);
		break;
	}
	default:
		/* ioctl, poll, bmap, tmpfile, statx, ...: the kernel remembers ENOSYS and does without. */
		reply_err(&req, ENOSYS);
		break;
	}
#undef ARG
#undef NEED
}

/* ---- workers ------------------------------------------------------------ */

static void *worker(void *arg);

/* One more worker, if the limit allows; failure only means fewer. */
/* Start one more worker unless the session has its limit; false when a thread could not start. */
static bool spawn_worker(struct idmapfs_session *se)
{
	unsigned n = atomic_load(&se->workers);
	sigset_t block, old;
	pthread_t thread;
	bool started = true;

	do {
		if (n >= se->max_workers)
			return true;
	} while (!atomic_compare_exchange_weak(&se->workers, &n, n + 1));
	atomic_fetch_add(&se->idle, 1);
	/* Stop signals go to the main thread (it asks the sentry for the detach). */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (pthread_create(&thread, &se->attr, worker, se) != 0) {
		started = false;
		atomic_fetch_sub(&se->idle, 1);
		pthread_mutex_lock(&se->lock);
		atomic_fetch_sub(&se->workers, 1);
		pthread_cond_broadcast(&se->done);
		pthread_mutex_unlock(&se->lock);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return started;
}

/* Read and serve requests until the session ends. */
static void serve(struct idmapfs_session *se)
{
	char *buf = mmap(NULL, se->bufsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned slot = atomic_fetch_add(&se->ninflight, 1);
	struct idmapfs_inflight *serving = slot < se->max_workers ? &se->inflight[slot] : NULL;
	const struct fuse_in_header *in = (const void *)buf;
	ssize_t n;

	if (buf == MAP_FAILED) {
		atomic_store(&se->error, errno);
		atomic_store(&se->ended, true);
		return;
	}
	while (!atomic_load(&se->ended)) {
		n = read(se->fd, buf, se->bufsize);
		if (n < 0) {
			/* ENOENT: the request was interrupted before we read it. */
			if (errno == EINTR || errno == EAGAIN || errno == ENOENT)
				continue;
			/* ENODEV: unmounted, the kernel ended the session. */
			if (errno != ENODEV)
				atomic_store(&se->error, errno);
			atomic_store(&se->ended, true);
			break;
		}
		if (atomic_fetch_sub(&se->idle, 1) == 1)
			spawn_worker(se);
		if (serving != NULL && (size_t)n >= sizeof(*in)) {
			atomic_store(&serving->pid, in->pid);
			atomic_store(&serving->unique, in->unique);
		}
		dispatch(se, buf, (size_t)n);
		if (serving != NULL)
			atomic_store(&serving->unique, 0);
		atomic_fetch_add(&se->idle, 1);
	}
	munmap(buf, se->bufsize);
	close_splice_pipe();
}

static void *worker(void *arg)
{
	struct idmapfs_session *se = arg;

	serve(se);
	atomic_fetch_sub(&se->idle, 1);
	pthread_mutex_lock(&se->lock);
	atomic_fetch_sub(&se->workers, 1);
	pthread_cond_broadcast(&se->done);
	pthread_mutex_unlock(&se->lock);
	return NULL;
}

struct idmapfs_session *idmapfs_session_new(int fuse_fd, struct idmapfs *fs, unsigned workers,
					    bool want_passthrough)
{
	struct idmapfs_session *se = calloc(1, sizeof(*se));
	long page = sysconf(_SC_PAGESIZE);

	if (se == NULL)
		return NULL;
	se->fd = fuse_fd;
	se->fs = fs;
	se->max_workers = workers;
	se->want_passthrough = want_passthrough;
	se->conn.max_write = IDMAPFS_MAX_WRITE;
	se->conn.max_read = idmapfs_max_read();
	se->bufsize = IDMAPFS_MAX_WRITE + IDMAPFS_HEADER_ROOM;
	if (se->bufsize < FUSE_MIN_READ_BUFFER)
		se->bufsize = FUSE_MIN_READ_BUFFER;
	se->bufsize = (se->bufsize + (size_t)page - 1) & ~((size_t)page - 1);
	se->inflight = calloc(workers, sizeof(*se->inflight));
	if (se->inflight == NULL) {
		free(se);
		return NULL;
	}
	pthread_mutex_init(&se->lock, NULL);
	pthread_cond_init(&se->done, NULL);
	pthread_mutex_init(&se->intr_lock, NULL);
	pthread_attr_init(&se->attr);
	pthread_attr_setdetachstate(&se->attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&se->attr, IDMAPFS_WORKER_STACK);
	return se;
}

bool idmapfs_session_init(struct idmapfs_session *se)
{
	struct fuse_in_header *in;
	char *buf = malloc(se->bufsize);
	bool ok = false;
	ssize_t n;

	if (buf == NULL)
		return false;
	for (;;) {
		do
			n = read(se->fd, buf, se->bufsize);
		while (n < 0 && (errno == EINTR || errno == EAGAIN));
		if (n < 0) {
			fprintf(stderr, "%s: no FUSE INIT from the kernel: %s\n", NFSV3_HELPER_IDMAPFS, strerror(errno));
			break;
		}
		in = (void *)buf;
		if ((size_t)n < sizeof(*in) || in->len != (size_t)n || in->opcode != FUSE_INIT) {
			fprintf(stderr, "%s: the kernel's first FUSE request was not INIT\n", NFSV3_HELPER_IDMAPFS);
			break;
		}
		struct idmapfs_req req = {.se = se, .unique = in->unique, .buf = buf, .bufsize = se->bufsize};

		ok = do_init(&req, buf + sizeof(*in), (size_t)n - sizeof(*in));
		/* Asked again with a major we speak: read the next. */
		if (!ok && ((struct fuse_init_in *)(buf + sizeof(*in)))->major > FUSE_KERNEL_VERSION)
			continue;
		break;
	}
	free(buf);
	return ok;
}

int idmapfs_session_loop(struct idmapfs_session *se)
{
	struct timespec until = {0};

	/* Only a thread that could not start is an error: the first worker may
	 * already have seen the session end (a detach right after the mount). */
	if (!spawn_worker(se))
		return EAGAIN;
	pthread_mutex_lock(&se->lock);
	/* Until the kernel ends the session (a worker sees ENODEV), then a while for the rest. */
	while (atomic_load(&se->workers) > 0) {
		if (!atomic_load(&se->ended)) {
			pthread_cond_wait(&se->done, &se->lock);
			continue;
		}
		if (until.tv_sec == 0) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += IDMAPFS_WORKER_END_WAIT_S;
		}
		if (pthread_cond_timedwait(&se->done, &se->lock, &until) == ETIMEDOUT) {
			se->workers_left = atomic_load(&se->workers) > 0;
			break;
		}
	}
	pthread_mutex_unlock(&se->lock);
	if (se->workers_left)
		fprintf(stderr, "%s: the session ended with %u worker(s) stuck in the backing filesystem; exiting without them\n",
			NFSV3_HELPER_IDMAPFS, atomic_load(&se->workers));
	return atomic_load(&se->error);
}

bool idmapfs_session_workers_left(const struct idmapfs_session *se)
{
	return se->workers_left;
}

void idmapfs_session_destroy(struct idmapfs_session *se)
{
	pthread_attr_destroy(&se->attr);
	pthread_mutex_destroy(&se->lock);
	pthread_cond_destroy(&se->done);
	pthread_mutex_destroy(&se->intr_lock);
	free(se->inflight);
	free(se);
}
