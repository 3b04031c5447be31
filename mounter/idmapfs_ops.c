/*
 * The operations: each request is answered with *at calls on the backing
 * inode's O_PATH fd (or the open file's fd), made by a worker thread whose
 * fsuid/fsgid are the bound ids, so the backing file system checks and
 * records the bound identity. Owners are mapped bound -> app in every
 * attribute we return and app -> bound in every chown we forward.
 *
 * Who may ask: the kernel runs without default_permissions (the backing
 * checks modes as the bound uid), so the caller's uid is checked here.
 * Requests that name a path or open something come only from the app uid;
 * root may also look up, stat and statfs, so a container runtime can bind
 * the mountpoint; everyone else gets EACCES. Requests on an open handle
 * (read, write, locks, release, ...) are served whoever sends them: the
 * handle exists only because the app opened it, and the kernel sends some
 * of them (writeback of a shared mapping, release) without a caller.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "idmapfs.h"


/* The signal that interrupts a worker blocked in a lock wait (handler installed by idmapfs_main.c). */
#define IDMAPFS_INTERRUPT_SIGNAL SIGUSR1

static struct idmapfs *fs_of(struct idmapfs_req *req)
{
	return req_fs(req);
}

static struct idmapfs_inode *inode_of(struct idmapfs_req *req, uint64_t ino)
{
	return idmapfs_inode_of(fs_of(req), ino);
}

static void proc_fd_name(char *buf, int fd)
{
	snprintf(buf, IDMAPFS_PROC_FD_MAX, "/proc/self/fd/%d", fd);
}

/* Answers the error and returns true unless the caller may make this request. */
static bool refused(struct idmapfs_req *req, bool root_too)
{
	struct idmapfs *fs = fs_of(req);

	if (req->uid == fs->app_uid || (root_too && req->uid == 0))
		return false;
	reply_err(req, EACCES);
	return true;
}

/* The same for requests that would change the backing on a read-only mount. */
static bool refused_write(struct idmapfs_req *req)
{
	if (refused(req, false))
		return true;
	if (fs_of(req)->read_only) {
		reply_err(req, EROFS);
		return true;
	}
	return false;
}

/* Stale: the backing object behind this inode is gone (NFS), so a new lookup must not find it. */
static int note_error(struct idmapfs_req *req, struct idmapfs_inode *inode, int err)
{
	if (err == ESTALE)
		idmapfs_table_unhash(fs_of(req), inode);
	return err;
}

static void map_attr(const struct idmapfs *fs, struct stat *st)
{
	if (st->st_uid == fs->bound_uid)
		st->st_uid = fs->app_uid;
	if (st->st_gid == fs->bound_gid)
		st->st_gid = fs->app_gid;
}

/* An owner the app asks for: its own ids become the bound ids; others go to the backing as they are. */
static uid_t unmap_uid(const struct idmapfs *fs, uid_t uid)
{
	return uid == fs->app_uid ? fs->bound_uid : uid;
}

static gid_t unmap_gid(const struct idmapfs *fs, gid_t gid)
{
	return gid == fs->app_gid ? fs->bound_gid : gid;
}

static int stat_inode(struct idmapfs_inode *inode, struct stat *st)
{
	if (fstatat(inode->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
		return errno;
	/* Checked after: the fd may have moved off an unlinked file meanwhile (see unpin). */
	return atomic_load(&inode->gone) ? ENOENT : 0;
}

/*
 * The attributes of name beneath dir_fd (of dir_fd itself for "") as the
 * backing's client last heard them from its server, with no call to it:
 * for right after a call that answered with them (a create), or where
 * staleness does no harm.
 */
static int stat_cached(int dir_fd, const char *name, struct stat *st)
{
	struct statx stx;

	if (statx(dir_fd, name, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, STATX_BASIC_STATS,
		  &stx) != 0)
		return errno;
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	st->st_ino = stx.stx_ino;
	st->st_mode = stx.stx_mode;
	st->st_nlink = stx.stx_nlink;
	st->st_uid = stx.stx_uid;
	st->st_gid = stx.stx_gid;
	st->st_rdev = makedev(stx.stx_rdev_major, stx.stx_rdev_minor);
	st->st_size = (off_t)stx.stx_size;
	st->st_blksize = (blksize_t)stx.stx_blksize;
	st->st_blocks = (blkcnt_t)stx.stx_blocks;
	st->st_atim = (struct timespec){stx.stx_atime.tv_sec, stx.stx_atime.tv_nsec};
	st->st_mtim = (struct timespec){stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec};
	st->st_ctim = (struct timespec){stx.stx_ctime.tv_sec, stx.stx_ctime.tv_nsec};
	return 0;
}

/*
 * st: the fresh backing attributes of inode, known to the kernel as ino.
 * The kernel no longer drops a file's cached pages by itself when its
 * mtime moves (no auto_inval_data, see do_init): if someone else changed
 * the file since idmapfs last looked (another NFS client, another binding
 * of the share, a write-only open of ours), the pages go now, before the
 * kernel hears the new attributes, as a plain NFS mount drops them when a
 * revalidation shows a change. A change of our own costs its pages too:
 * the backing's mtime moved and ours cannot be told from another's. Only
 * files opened through the page cache can have pages: a notify costs the
 * kernel the attributes this answer brings, so the others are spared it.
 */
static void check_data(struct idmapfs_req *req, struct idmapfs_inode *inode, uint64_t ino, const struct stat *st,
		       bool may_notify)
{
	if (inode->is_reg && idmapfs_table_data_seen(fs_of(req), inode, st, false) == IDMAPFS_DATA_CHANGED &&
	    may_notify)
		notify_inval_data(req, ino, 0, 0);
}

/* Enter fd (an O_PATH fd, taken over; its attributes in e->attr) in the table and fill e for the kernel. */
static int enter(struct idmapfs_req *req, int fd, struct idmapfs_entry *e)
{
	struct idmapfs *fs = fs_of(req);
	struct idmapfs_inode *inode = idmapfs_table_get(fs, fd, &e->attr);

	if (inode == NULL)
		return errno;
	map_attr(fs, &e->attr);
	e->ino = (uintptr_t)inode == (uintptr_t)&fs->root ? IDMAPFS_ROOT_ID : (uintptr_t)inode;
	e->attr_timeout = fs->attr_timeout;
	e->entry_timeout = fs->entry_timeout;
	check_data(req, inode, e->ino, &e->attr, true);
	return 0;
}

/* Look name up beneath parent and fill e with one new lookup reference; 0 or an errno. */
static int do_lookup(struct idmapfs_req *req, struct idmapfs_inode *parent, const char *name,
		     struct idmapfs_entry *e)
{
	int fd, err;

	memset(e, 0, sizeof(*e));
	fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return note_error(req, parent, errno);
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
		err = errno;
		close(fd);
		return err;
	}
	return enter(req, fd, e);
}

/*
 * The same for the file open on fd, just created: its attributes came with
 * the backing's answer, and its O_PATH fd comes through the magic link, so
 * neither looks its name up again (on NFS under actimeo=0, calls each).
 */
static int lookup_created(struct idmapfs_req *req, int fd, struct idmapfs_entry *e)
{
	char name[IDMAPFS_PROC_FD_MAX];
	int path_fd, err;

	memset(e, 0, sizeof(*e));
	err = stat_cached(fd, "", &e->attr);
	if (err != 0)
		return err;
	proc_fd_name(name, fd);
	path_fd = open(name, O_PATH | O_CLOEXEC);
	if (path_fd < 0)
		return errno;
	return enter(req, path_fd, e);
}

/* Reply to a request that created name beneath parent. */
static void answer_created(struct idmapfs_req *req, struct idmapfs_inode *parent, const char *name)
{
	struct idmapfs_entry e;
	int err = do_lookup(req, parent, name, &e);

	if (err != 0)
		reply_err(req, err);
	else if (reply_entry(req, &e) == -ENOENT)
		idmapfs_table_forget(fs_of(req), inode_of(req, e.ino), 1);
}

void idmapfs_op_lookup(struct idmapfs_req *req, uint64_t parent, const char *name)
{
	struct idmapfs_entry e;
	int err;

	if (refused(req, true))
		return;
	/* The kernel sends single components; ".." at the root would leave the backing directory. */
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/') != NULL) {
		reply_err(req, EINVAL);
		return;
	}
	err = do_lookup(req, inode_of(req, parent), name, &e);
	if (err == ENOENT) {
		/* A negative entry, cached as long as a positive one would be. */
		e.ino = 0;
		e.entry_timeout = fs_of(req)->entry_timeout;
		reply_entry(req, &e);
	} else if (err != 0) {
		reply_err(req, err);
	} else if (reply_entry(req, &e) == -ENOENT) {
		/* The request was interrupted: the kernel never got the reference. */
		idmapfs_table_forget(fs_of(req), inode_of(req, e.ino), 1);
	}
}

void idmapfs_op_forget(struct idmapfs_req *req, uint64_t ino, uint64_t nlookup)
{
	idmapfs_table_forget(fs_of(req), inode_of(req, ino), nlookup);
	reply_none(req);
}

/*
 * The inode's attributes, fresh. After a change of our own (setattr) they
 * are only recorded: the kernel may be in the middle of a truncation, and
 * drops what the change made stale itself.
 */
static void answer_attr(struct idmapfs_req *req, uint64_t ino, struct idmapfs_inode *inode, struct idmapfs_file *fi,
			bool own_change)
{
	struct idmapfs *fs = fs_of(req);
	struct stat st;
	int err;

	if (fi != NULL)
		err = fstat((int)fi->fh, &st) == 0 ? 0 : errno;
	else
		err = stat_inode(inode, &st);
	if (err != 0) {
		reply_err(req, note_error(req, inode, err));
		return;
	}
	check_data(req, inode, ino, &st, !own_change);
	map_attr(fs, &st);
	reply_attr(req, &st, fs->attr_timeout);
}

void idmapfs_op_getattr(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi)
{
	if (refused(req, true))
		return;
	answer_attr(req, ino, inode_of(req, ino), fi, false);
}

static int set_times(struct idmapfs_inode *inode, const struct stat *attr, int valid,
		     struct idmapfs_file *fi)
{
	struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};

	if (valid & FATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (valid & FATTR_ATIME)
		tv[0] = attr->st_atim;
	if (valid & FATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (valid & FATTR_MTIME)
		tv[1] = attr->st_mtim;
	if (fi != NULL)
		return futimens((int)fi->fh, tv);
	return utimensat(inode->fd, "", tv, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
}

void idmapfs_op_setattr(struct idmapfs_req *req, uint64_t ino, struct stat *attr, int valid,
		       struct idmapfs_file *fi)
{
	struct idmapfs *fs = fs_of(req);
	struct idmapfs_inode *inode = inode_of(req, ino);
	char name[IDMAPFS_PROC_FD_MAX];
	int res = 0;

	if (refused_write(req))
		return;
	proc_fd_name(name, inode->fd);
	if (valid & FATTR_MODE) {
		if (inode->is_symlink) {
			errno = EOPNOTSUPP;
			res = -1;
		} else if (fi != NULL) {
			res = fchmod((int)fi->fh, attr->st_mode);
		} else {
			res = chmod(name, attr->st_mode);
		}
		if (res != 0)
			goto out;
	}
	if (valid & (FATTR_UID | FATTR_GID)) {
		uid_t uid = valid & FATTR_UID ? unmap_uid(fs, attr->st_uid) : (uid_t)-1;
		gid_t gid = valid & FATTR_GID ? unmap_gid(fs, attr->st_gid) : (gid_t)-1;

		res = fchownat(inode->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		if (res != 0)
			goto out;
	}
	if (valid & FATTR_SIZE) {
		/* Through /proc a symlink would be followed, on the host; the kernel never asks this. */
		if (inode->is_symlink) {
			errno = EINVAL;
			res = -1;
		} else if (fi != NULL)
			res = ftruncate((int)fi->fh, attr->st_size);
		else
			res = truncate(name, attr->st_size);
		if (res != 0)
			goto out;
	}
	if (valid & (FATTR_ATIME | FATTR_MTIME))
		res = set_times(inode, attr, valid, fi);
out:
	if (res != 0)
		reply_err(req, note_error(req, inode, errno));
	else
		answer_attr(req, ino, inode, fi, true);
}

void idmapfs_op_readlink(struct idmapfs_req *req, uint64_t ino)
{
	struct idmapfs_inode *inode = inode_of(req, ino);
	char target[PATH_MAX + 1];
	ssize_t len;

	if (refused(req, false))
		return;
	len = readlinkat(inode->fd, "", target, sizeof(target));
	if (len < 0) {
		reply_err(req, note_error(req, inode, errno));
	} else if (len == (ssize_t)sizeof(target)) {
		reply_err(req, ENAMETOOLONG);
	} else {
		target[len] = '\0';
		reply_readlink(req, target);
	}
}

void idmapfs_op_mknod(struct idmapfs_req *req, uint64_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct idmapfs_inode *dir = inode_of(req, parent);

	if (refused_write(req))
		return;
	/* Devices would be useless on a nodev mount; the backing should never hold them for us. */
	if (S_ISCHR(mode) || S_ISBLK(mode)) {
		reply_err(req, EPERM);
		return;
	}
	if (mknodat(dir->fd, name, mode, rdev) != 0)
		reply_err(req, note_error(req, dir, errno));
	else
		answer_created(req, dir, name);
}

void idmapfs_op_mkdir(struct idmapfs_req *req, uint64_t parent, const char *name, mode_t mode)
{
	struct idmapfs_inode *dir = inode_of(req, parent);

	if (refused_write(req))
		return;
	if (mkdirat(dir->fd, name, mode) != 0)
		reply_err(req, note_error(req, dir, errno));
	else
		answer_created(req, dir, name);
}

void idmapfs_op_symlink(struct idmapfs_req *req, const char *link, uint64_t parent, const char *name)
{
	struct idmapfs_inode *dir = inode_of(req, parent);

	if (refused_write(req))
		return;
	if (symlinkat(link, dir->fd, name) != 0)
		reply_err(req, note_error(req, dir, errno));
	else
		answer_created(req, dir, name);
}

void idmapfs_op_link(struct idmapfs_req *req, uint64_t ino, uint64_t newparent, const char *newname)
{
	struct idmapfs *fs = fs_of(req);
	struct idmapfs_inode *inode = inode_of(req, ino), *dir = inode_of(req, newparent);
	char name[IDMAPFS_PROC_FD_MAX];
	struct idmapfs_entry e;
	int err;

	if (refused_write(req))
		return;
	/* linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; following the magic link does not. */
	proc_fd_name(name, inode->fd);
	if (linkat(AT_FDCWD, name, dir->fd, newname, AT_SYMLINK_FOLLOW) != 0) {
		reply_err(req, note_error(req, inode, errno));
		return;
	}
	/* The new name is the same backing inode: reuse its nodeid so the kernel sees the link. */
	memset(&e, 0, sizeof(e));
	err = stat_inode(inode, &e.attr);
	if (err != 0) {
		reply_err(req, err);
		return;
	}
	pthread_mutex_lock(&fs->table.lock);
	inode->nlookup++;
	pthread_mutex_unlock(&fs->table.lock);
	map_attr(fs, &e.attr);
	e.ino = ino;
	e.attr_timeout = fs->attr_timeout;
	e.entry_timeout = fs->entry_timeout;
	if (reply_entry(req, &e) == -ENOENT)
		idmapfs_table_forget(fs, inode, 1);
}

unsigned long idmapfs_fs_type(int fd)
{
	struct statfs st;

	return fstatfs(fd, &st) == 0 ? (unsigned long)st.f_type : 0;
}

/* The type of the file system backing fd, on device dev: the root's is known. */
static unsigned long fs_type_of(const struct idmapfs *fs, dev_t dev, int fd)
{
	return dev == fs->root.dev ? fs->root_fs_type : idmapfs_fs_type(fd);
}

/*
 * NFS keeps a file unlinked while in use under a hidden name (.nfsXXXX, a
 * "silly rename") until its last user lets go, and the O_PATH fd we hold
 * on every inode the kernel knows counts as a use. Each unlink would cost
 * a LOOKUP and a RENAME on the wire instead of a REMOVE, the REMOVE would
 * follow when the kernel forgets the inode, and until then the hidden file
 * would keep its directory from being removed. So before the last name of
 * an inode nobody has open goes (unlink, or rename over it), its fd moves
 * off the file onto "/", and the inode is marked gone: no open starts on
 * it, and its attributes are ENOENT (stat_inode). Opened files keep the
 * backing's usual behaviour. Returns the inode moved off, or NULL.
 */
static struct idmapfs_inode *unpin(struct idmapfs_req *req, struct idmapfs_inode *dir, const char *name)
{
	struct idmapfs *fs = fs_of(req);
	struct idmapfs_inode *victim;
	struct stat st;

	if (!idmapfs_keeps_busy(fs_type_of(fs, dir->dev, dir->fd)))
		return NULL;
	/* Cached attributes will do: a stale link count only means NFS's usual rename, or none where another link keeps the file. */
	if (stat_cached(dir->fd, name, &st) != 0 || S_ISDIR(st.st_mode) || st.st_nlink != 1)
		return NULL;
	victim = idmapfs_table_unpin(fs, &st);
	if (victim != NULL && dup3(fs->placeholder_fd, victim->fd, O_CLOEXEC) < 0) {
		atomic_store(&victim->gone, false);
		return NULL;
	}
	return victim;
}

/* After the unlink or rename: a victim whose name is still there gets its fd back. */
static void repin(struct idmapfs_req *req, struct idmapfs_inode *victim, struct idmapfs_inode *dir, const char *name,
		  bool removed)
{
	struct stat st;
	int fd;

	if (victim == NULL)
		return;
	if (!removed) {
		fd = openat(dir->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == victim->dev && st.st_ino == victim->ino &&
		    dup3(fd, victim->fd, O_CLOEXEC) >= 0)
			atomic_store(&victim->gone, false);
		if (fd >= 0)
			close(fd);
		if (!atomic_load(&victim->gone))
			return;
	}
	/* Gone for good: the server may give its number to a new file, which must get a new entry. */
	idmapfs_table_unhash(fs_of(req), victim);
}

void idmapfs_op_unlink(struct idmapfs_req *req, uint64_t parent, const char *name)
{
	struct idmapfs_inode *dir = inode_of(req, parent), *victim;
	int err;

	if (refused_write(req))
		return;
	victim = unpin(req, dir, name);
	err = unlinkat(dir->fd, name, 0) == 0 ? 0 : note_error(req, dir, errno);
	repin(req, victim, dir, name, err == 0);
	reply_err(req, err);
}

void idmapfs_op_rmdir(struct idmapfs_req *req, uint64_t parent, const char *name)
{
	struct idmapfs_inode *dir = inode_of(req, parent);

	if (refused_write(req))
		return;
	reply_err(req, unlinkat(dir->fd, name, AT_REMOVEDIR) == 0 ? 0 : note_error(req, dir, errno));
}

void idmapfs_op_rename(struct idmapfs_req *req, uint64_t parent, const char *name, uint64_t newparent,
		      const char *newname, unsigned int flags)
{
	struct idmapfs_inode *dir = inode_of(req, parent), *newdir = inode_of(req, newparent), *victim = NULL;
	int err;

	if (refused_write(req))
		return;
	/* A whiteout is an overlayfs device node: not for apps. */
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		reply_err(req, EINVAL);
		return;
	}
	/* A rename over a name removes what it named (not an exchange, nor a file onto itself). */
	if (!(flags & RENAME_EXCHANGE) && !(dir == newdir && strcmp(name, newname) == 0))
		victim = unpin(req, newdir, newname);
	err = renameat2(dir->fd, name, newdir->fd, newname, flags) == 0 ? 0 : note_error(req, dir, errno);
	repin(req, victim, newdir, newname, err == 0);
	reply_err(req, err);
}

/*
 * Open flags for the backing file: O_NOFOLLOW would refuse the magic link
 * we reopen through, and creation is create()'s business. Everything else
 * (O_APPEND, O_TRUNC, O_DIRECT, O_SYNC, O_NONBLOCK...) goes to the backing
 * as the app asked.
 */
static int backing_flags(int flags)
{
	return (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL | O_NOCTTY)) | O_CLOEXEC;
}

static bool writes(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

bool idmapfs_flushes(unsigned long fs_type)
{
	switch (fs_type) {
	case EXT4_SUPER_MAGIC: /* also ext2 and ext3 */
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case F2FS_SUPER_MAGIC:
	case TMPFS_MAGIC:
	case RAMFS_MAGIC:
		return false;
	default:
		return true;
	}
}

/*
 * keep_cache: the pages the kernel holds of a file are kept at open when
 * the file is as idmapfs last saw it, as a plain NFS mount keeps its cache
 * when the open's revalidation shows no change (close-to-open); otherwise
 * the open drops them. The attributes are the ones the open just fetched
 * (on NFS the reopen revalidates them). Not for direct I/O or passthrough
 * opens, which use no pages of ours (keep_cache would defeat passthrough).
 */
static void keep_unchanged(struct idmapfs *fs, struct idmapfs_file *fi, struct idmapfs_inode *inode, int fd)
{
	struct stat st;
	bool caching;

	if (!inode->is_reg || stat_cached(fd, "", &st) != 0)
		return;
	caching = !fi->direct_io && !fi->passthrough;
	fi->keep_cache = idmapfs_table_data_seen(fs, inode, &st, caching) == IDMAPFS_DATA_SAME && caching;
}

/*
 * How the kernel is to treat a file just opened on backing fd (on device
 * dev):
 *
 * - keep_cache (keep_unchanged, below): only for a file unchanged since
 *   idmapfs last looked, so a file changed through another NFS client is
 *   read fresh after open, as close-to-open consistency promises on NFS.
 *
 * - noflush: FLUSH (on every close) is only asked for where it does work:
 *   a file open for writing on a backing that writes back at close (NFS,
 *   which reports a failed write there). Reading opens have nothing to
 *   write back, local file systems do nothing at close, and our locks do
 *   not hang on flush; each FLUSH spared is a round trip per close.
 *
 * - direct_io for write-only opens: their writes go straight to us instead
 *   of through the kernel's page cache. That spares a copy of the data and,
 *   because the kernel then leaves suid/capability clearing to the backing
 *   (which does it: we write without CAP_FSETID), the getxattr round trip
 *   it would make before every write() to check for file capabilities.
 *   Nothing is lost: a write-only descriptor cannot be mmapped, and the
 *   pages other opens hold of what it writes are dropped as it writes
 *   (op_write), so readers holding the file open see the new data.
 *
 * - passthrough, where it is on (idmapfs_passthrough.c): the kernel does
 *   the file's I/O on the backing itself, so none of it comes here, and
 *   direct_io would defeat it (a writer then shares the backing's own page
 *   cache with readers, which is coherent by itself). Flushes still come
 *   here: closing our fd writes back the whole inode on NFS.
 */
static void set_open_flags(struct idmapfs *fs, struct idmapfs_file *fi, struct idmapfs_inode *inode, int fd)
{
	fi->noflush = !writes(fi->flags) || !idmapfs_flushes(fs_type_of(fs, inode->dev, fd));
	fi->passthrough = idmapfs_passthrough_open(fs, inode, fd, &fi->backing_id);
	if (fi->passthrough)
		fi->fh |= IDMAPFS_FH_PASSTHROUGH;
	fi->direct_io = !fi->passthrough && (fi->flags & O_ACCMODE) == O_WRONLY;
	keep_unchanged(fs, fi, inode, fd);
}

/* An open the kernel did not take (interrupted) or that ended: undo what open counted. */
static void end_open(struct idmapfs *fs, struct idmapfs_inode *inode, uint64_t fh)
{
	close((int)fh);
	if (fh & IDMAPFS_FH_PASSTHROUGH)
		idmapfs_passthrough_release(fs, inode);
	idmapfs_table_close(fs, inode);
}

void idmapfs_op_open(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi)
{
	struct idmapfs_inode *inode = inode_of(req, ino);
	char name[IDMAPFS_PROC_FD_MAX];
	int fd;

	if (writes(fi->flags) ? refused_write(req) : refused(req, false))
		return;
	/* The kernel follows symlinks itself; reopened through /proc, one would resolve on the host. */
	if (inode->is_symlink) {
		reply_err(req, ELOOP);
		return;
	}
	/* Counted before the reopen, so that unpin leaves the file alone from here on. */
	if (!idmapfs_table_open(fs_of(req), inode)) {
		reply_err(req, ENOENT);
		return;
	}
	proc_fd_name(name, inode->fd);
	fd = open(name, backing_flags(fi->flags));
	if (fd < 0) {
		idmapfs_table_close(fs_of(req), inode);
		reply_err(req, note_error(req, inode, errno));
		return;
	}
	fi->fh = (uint64_t)fd;
	set_open_flags(fs_of(req), fi, inode, fd);
	if (reply_open(req, fi) == -ENOENT)
		end_open(fs_of(req), inode, fi->fh);
}

void idmapfs_op_create(struct idmapfs_req *req, uint64_t parent, const char *name, mode_t mode,
		      struct idmapfs_file *fi)
{
	struct idmapfs_inode *dir = inode_of(req, parent);
	struct idmapfs_inode *inode;
	struct idmapfs_entry e;
	int fd, err;

	if (refused_write(req))
		return;
	/*
	 * The kernel asks us to create only a name it found missing; if it has
	 * become a symlink since (another client, a racing thread), following
	 * it here would resolve it on the host, outside the backing: refuse.
	 */
	fd = openat(dir->fd, name, backing_flags(fi->flags) | O_CREAT | O_NOFOLLOW | (fi->flags & O_EXCL), mode);
	if (fd < 0) {
		reply_err(req, note_error(req, dir, errno));
		return;
	}
	err = lookup_created(req, fd, &e);
	if (err != 0) {
		close(fd);
		reply_err(req, err);
		return;
	}
	inode = inode_of(req, e.ino);
	fi->fh = (uint64_t)fd;
	/* A new file cannot be gone yet; release uncounts it all the same. */
	idmapfs_table_open(fs_of(req), inode);
	set_open_flags(fs_of(req), fi, inode, fd);
	if (reply_create(req, &e, fi) == -ENOENT) {
		end_open(fs_of(req), inode, fi->fh);
		idmapfs_table_forget(fs_of(req), inode, 1);
	}
}

void idmapfs_op_read(struct idmapfs_req *req, uint64_t ino, size_t size, off_t off, struct idmapfs_file *fi)
{
	reply_read(req, (int)fi->fh, size, off);
}

/*
 * Writes, fallocate and copy_file_range act on open handles only, and
 * open and create refuse writing opens on a read-only mount.
 */
void idmapfs_op_write(struct idmapfs_req *req, uint64_t ino, const char *data, size_t size, off_t off,
		      struct idmapfs_file *fi)
{
	size_t done = 0;
	ssize_t n;

	while (done < size) {
		n = pwrite((int)fi->fh, data + done, size - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	/*
	 * A write-only open writes past the kernel's page cache (direct_io):
	 * pages another open of the file (or its mapping) holds of that range
	 * go (6.18 drops them itself; older kernels may not, unchecked here).
	 * Once all are closed the moved
	 * mtime drops them at the next open. Never for a write of cached
	 * pages, which the kernel holds locked meanwhile.
	 */
	if (done > 0 && (fi->flags & O_ACCMODE) == O_WRONLY && !fi->from_cache &&
	    idmapfs_table_shared(fs_of(req), inode_of(req, ino)))
		notify_inval_data(req, ino, off, (off_t)done);
	if (done == 0 && size > 0)
		reply_err(req, n < 0 ? errno : EIO);
	else
		reply_write(req, done);
}

/*
 * Every close() of the app's descriptor lands here. Closing a duplicate of
 * the backing fd makes the backing do what its own close would: NFS writes
 * back dirty data and reports a failed write now, at the app's close.
 */
void idmapfs_op_flush(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi)
{
	int fd = dup((int)fi->fh);

	if (fd < 0) {
		reply_err(req, errno);
		return;
	}
	reply_err(req, close(fd) == 0 ? 0 : errno);
}

void idmapfs_op_release(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi)
{
	/* Closing the backing fd also drops its flock and OFD locks. */
	end_open(fs_of(req), inode_of(req, ino), fi->fh);
	reply_err(req, 0);
}

void idmapfs_op_fsync(struct idmapfs_req *req, uint64_t ino, int datasync, struct idmapfs_file *fi)
{
	int res = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);

	reply_err(req, res == 0 ? 0 : errno);
}

/* An open directory: the stream and where the kernel's offsets point in it. */
struct idmapfs_dir {
	DIR *stream;
	off_t offset;
	struct dirent *entry;
};

void idmapfs_op_opendir(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi)
{
	struct idmapfs_inode *inode = inode_of(req, ino);
	struct idmapfs_dir *d;
	int fd;

	if (refused(req, false))
		return;
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		reply_err(req, ENOMEM);
		return;
	}
	fd = openat(inode->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (d->stream = fdopendir(fd)) == NULL) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		free(d);
		reply_err(req, note_error(req, inode, err));
		return;
	}
	fi->fh = (uintptr_t)d;
	if (reply_open(req, fi) == -ENOENT) {
		closedir(d->stream);
		free(d);
	}
}

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* An interrupted READDIRPLUS: the kernel took none of the references its entries carried. */
static void forget_entries(struct idmapfs_req *req, const char *buf, size_t len)
{
	size_t at = 0;

	while (at + FUSE_NAME_OFFSET_DIRENTPLUS <= len) {
		const struct fuse_direntplus *dp = (const void *)(buf + at);

		if (dp->entry_out.nodeid != 0)
			idmapfs_table_forget(fs_of(req), inode_of(req, dp->entry_out.nodeid), 1);
		at += FUSE_DIRENTPLUS_SIZE(dp);
	}
}

void idmapfs_op_readdir(struct idmapfs_req *req, uint64_t ino, size_t size, off_t offset, struct idmapfs_file *fi,
			bool plus)
{
	struct idmapfs_dir *d = (struct idmapfs_dir *)(uintptr_t)fi->fh;
	struct idmapfs_inode *dir = inode_of(req, ino);
	char *buf = req->buf, *p = buf;
	size_t rem;
	int err = 0;

	/* Built in the request's buffer: the kernel takes fewer entries as well as more. */
	if (size > req->bufsize)
		size = req->bufsize;
	rem = size;
	if (offset != d->offset) {
		seekdir(d->stream, offset);
		d->entry = NULL;
		d->offset = offset;
	}
	for (;;) {
		struct idmapfs_entry e;
		uint64_t entry_ino = 0;
		const char *name;
		size_t entsize;
		off_t next;

		if (d->entry == NULL) {
			errno = 0;
			d->entry = readdir(d->stream);
			if (d->entry == NULL) {
				err = errno;
				break;
			}
		}
		next = d->entry->d_off;
		name = d->entry->d_name;
		if (!plus) {
			entsize = add_direntry(p, rem, name, d->entry->d_ino, d->entry->d_type, (uint64_t)next);
		} else if (is_dot_or_dotdot(name)) {
			memset(&e, 0, sizeof(e));
			e.attr.st_ino = d->entry->d_ino;
			e.attr.st_mode = (mode_t)d->entry->d_type << 12;
			entsize = add_direntry_plus(p, rem, name, &e, (uint64_t)next);
		} else {
			err = do_lookup(req, dir, name, &e);
			if (err == ENOENT) {
				/* Removed since the directory was read: skip it, as readdir would have. */
				err = 0;
				d->entry = NULL;
				d->offset = next;
				continue;
			}
			if (err != 0)
				break;
			entry_ino = e.ino;
			entsize = add_direntry_plus(p, rem, name, &e, (uint64_t)next);
		}
		if (entsize > rem) {
			/* Full: this entry goes in the next reply, and its reference with it. */
			if (entry_ino != 0)
				idmapfs_table_forget(fs_of(req), inode_of(req, entry_ino), 1);
			break;
		}
		p += entsize;
		rem -= entsize;
		d->entry = NULL;
		d->offset = next;
	}
	/* An error after some entries is reported by the next call, which starts with it. */
	if (err != 0 && rem == size)
		reply_err(req, note_error(req, dir, err));
	else if (reply_buf(req, buf, size - rem) == -ENOENT && plus)
		forget_entries(req, buf, size - rem);
}

void idmapfs_op_releasedir(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi)
{
	struct idmapfs_dir *d = (struct idmapfs_dir *)(uintptr_t)fi->fh;

	closedir(d->stream);
	free(d);
	reply_err(req, 0);
}

void idmapfs_op_fsyncdir(struct idmapfs_req *req, uint64_t ino, int datasync, struct idmapfs_file *fi)
{
	struct idmapfs_dir *d = (struct idmapfs_dir *)(uintptr_t)fi->fh;
	int fd = dirfd(d->stream);
	int res = datasync ? fdatasync(fd) : fsync(fd);

	reply_err(req, res == 0 ? 0 : errno);
}

void idmapfs_op_statfs(struct idmapfs_req *req, uint64_t ino)
{
	struct idmapfs_inode *inode = inode_of(req, ino);
	struct statvfs st;

	if (refused(req, true))
		return;
	if (fstatvfs(inode->fd, &st) != 0)
		reply_err(req, note_error(req, inode, errno));
	else
		reply_statfs(req, &st);
}

void idmapfs_op_access(struct idmapfs_req *req, uint64_t ino, int mask)
{
	struct idmapfs_inode *inode = inode_of(req, ino);

	if (refused(req, false))
		return;
	if ((mask & W_OK) && fs_of(req)->read_only) {
		reply_err(req, EROFS);
		return;
	}
	/* AT_EACCESS: check as the fsuid (the bound uid), not as the real uid. */
	if (syscall(SYS_faccessat2, inode->fd, "", mask, AT_EMPTY_PATH | AT_EACCESS) != 0)
		reply_err(req, note_error(req, inode, errno));
	else
		reply_err(req, 0);
}

/* Backing xattrs are reached by name through the magic link: O_PATH fds refuse f*xattr. */

/*
 * POSIX ACLs carry uids and gids that would need mapping in both
 * directions; rather than show the app raw backing ids, they are not
 * offered. The kernel then enforces the mode bits alone.
 */
static bool is_acl_name(const char *name)
{
	return strncmp(name, "system.posix_acl_", 17) == 0;
}

/*
 * Answers when xattrs are not served at all: ENOSYS makes the kernel
 * remember, so a backing without xattrs (NFSv3) costs one request, not one
 * per getxattr the kernel makes (security.capability on every write).
 */
static bool refused_xattr(struct idmapfs_req *req, struct idmapfs_inode *inode, const char *name,
			  bool changes)
{
	if (changes ? refused_write(req) : refused(req, false))
		return true;
	if (atomic_load(&fs_of(req)->no_xattr)) {
		reply_err(req, ENOSYS);
		return true;
	}
	if (inode->is_symlink || (name != NULL && is_acl_name(name))) {
		reply_err(req, EOPNOTSUPP);
		return true;
	}
	return false;
}

/* Remember that the backing has no xattrs when it says so for a listing (which names no namespace). */
static int xattr_error(struct idmapfs_req *req, struct idmapfs_inode *inode, int err, bool listing)
{
	if (err == EOPNOTSUPP && listing) {
		atomic_store(&fs_of(req)->no_xattr, true);
		return ENOSYS;
	}
	return note_error(req, inode, err);
}

void idmapfs_op_setxattr(struct idmapfs_req *req, uint64_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct idmapfs_inode *inode = inode_of(req, ino);
	char path[IDMAPFS_PROC_FD_MAX];

	if (refused_xattr(req, inode, name, true))
		return;
	proc_fd_name(path, inode->fd);
	if (setxattr(path, name, value, size, flags) != 0)
		reply_err(req, xattr_error(req, inode, errno, false));
	else
		reply_err(req, 0);
}

void idmapfs_op_getxattr(struct idmapfs_req *req, uint64_t ino, const char *name, size_t size)
{
	struct idmapfs_inode *inode = inode_of(req, ino);
	char path[IDMAPFS_PROC_FD_MAX];
	char *value = NULL;
	ssize_t len;

	if (refused_xattr(req, inode, name, false))
		return;
	proc_fd_name(path, inode->fd);
	if (size != 0 && (value = malloc(size)) == NULL) {
		reply_err(req, ENOMEM);
		return;
	}
	len = getxattr(path, name, value, size);
	if (len < 0)
		reply_err(req, xattr_error(req, inode, errno, false));
	else if (size == 0)
		reply_xattr(req, (size_t)len);
	else
		reply_buf(req, value, (size_t)len);
	free(value);
}

/* Drop the ACL names from a listing, in place; returns the new length. */
static size_t filter_acl_names(char *list, size_t len)
{
	size_t in = 0, out = 0;

	while (in < len) {
		size_t n = strnlen(list + in, len - in) + 1;

		if (!is_acl_name(list + in)) {
			memmove(list + out, list + in, n);
			out += n;
		}
		in += n;
	}
	return out;
}

void idmapfs_op_listxattr(struct idmapfs_req *req, uint64_t ino, size_t size)
{
	struct idmapfs_inode *inode = inode_of(req, ino);
	char path[IDMAPFS_PROC_FD_MAX];
	char *list;
	ssize_t len;

	if (refused_xattr(req, inode, NULL, false))
		return;
	proc_fd_name(path, inode->fd);
	/* The full list is needed to filter it, whatever size the kernel asked for. */
	len = listxattr(path, NULL, 0);
	if (len < 0) {
		reply_err(req, xattr_error(req, inode, errno, true));
		return;
	}
	list = malloc((size_t)len + 1);
	if (list == NULL) {
		reply_err(req, ENOMEM);
		return;
	}
	len = listxattr(path, list, (size_t)len);
	if (len < 0) {
		/* ERANGE: it grew meanwhile; the kernel's caller retries as with any listxattr. */
		reply_err(req, xattr_error(req, inode, errno, true));
	} else {
		size_t kept = filter_acl_names(list, (size_t)len);

		if (size == 0)
			reply_xattr(req, kept);
		else if (kept > size)
			reply_err(req, ERANGE);
		else
			reply_buf(req, list, kept);
	}
	free(list);
}

void idmapfs_op_removexattr(struct idmapfs_req *req, uint64_t ino, const char *name)
{
	struct idmapfs_inode *inode = inode_of(req, ino);
	char path[IDMAPFS_PROC_FD_MAX];

	if (refused_xattr(req, inode, name, true))
		return;
	proc_fd_name(path, inode->fd);
	if (removexattr(path, name) != 0)
		reply_err(req, xattr_error(req, inode, errno, false));
	else
		reply_err(req, 0);
}

/*
 * Lock waits. A blocking lock holds a worker until granted, so waits are
 * bounded (beyond the bound a blocking request gets ENOLCK rather than
 * starving the unlock that would end them), and a FUSE interrupt (the app
 * was signalled) wakes the worker with a signal so the wait ends in EINTR.
 */
struct lock_wait {
	pthread_t thread;
	atomic_bool interrupted;
};

static void on_lock_interrupt(struct idmapfs_req *req, void *data)
{
	struct lock_wait *wait = data;

	atomic_store(&wait->interrupted, true);
	pthread_kill(wait->thread, IDMAPFS_INTERRUPT_SIGNAL);
}

/* Run fn(fd, arg) as a lock wait; returns 0 or an errno. */
static int wait_for_lock(struct idmapfs_req *req, int (*fn)(int, void *), int fd, void *arg)
{
	struct idmapfs *fs = fs_of(req);
	struct lock_wait wait = {.thread = pthread_self()};
	int err;

	if (atomic_fetch_add(&fs->lock_waiters, 1) >= fs->max_lock_waiters) {
		atomic_fetch_sub(&fs->lock_waiters, 1);
		return ENOLCK;
	}
	req_on_interrupt(req, on_lock_interrupt, &wait);
	if (atomic_load(&wait.interrupted))
		err = EINTR;
	else
		err = fn(fd, arg) == 0 ? 0 : errno;
	/* After this returns the callback is neither running nor will run: wait can go. */
	req_on_interrupt(req, NULL, NULL);
	atomic_fetch_sub(&fs->lock_waiters, 1);
	return err;
}

static int do_flock(int fd, void *arg)
{
	return flock(fd, *(int *)arg);
}

static int do_ofd_setlkw(int fd, void *arg)
{
	return fcntl(fd, F_OFD_SETLKW, (struct flock *)arg);
}

/*
 * flock: the backing fd is this open file description's own, so flock on it
 * has flock's semantics, and reaches the server as the backing's flock does.
 */
void idmapfs_op_flock(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi, int op)
{
	int fd = (int)fi->fh;
	int err;

	if ((op & LOCK_NB) || (op & LOCK_UN))
		err = flock(fd, op) == 0 ? 0 : errno;
	else
		err = wait_for_lock(req, do_flock, fd, &op);
	reply_err(req, err);
}

/*
 * POSIX locks become open-file-description (OFD) locks on the backing fd:
 * every open of the file through idmapfs has its own backing fd, so two
 * opens conflict as two processes' locks do, and through another idmapfs
 * mount of the same backing directory they conflict too. The one POSIX
 * difference: processes sharing one open file (after fork) share its locks.
 */
void idmapfs_op_getlk(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi, struct flock *lock)
{
	lock->l_pid = 0;
	if (fcntl((int)fi->fh, F_OFD_GETLK, lock) != 0)
		reply_err(req, errno);
	else
		reply_lock(req, lock);
}

void idmapfs_op_setlk(struct idmapfs_req *req, uint64_t ino, struct idmapfs_file *fi, struct flock *lock,
		      bool sleep)
{
	int fd = (int)fi->fh;
	int err;

	lock->l_pid = 0;
	if (!sleep || lock->l_type == F_UNLCK)
		err = fcntl(fd, F_OFD_SETLK, lock) == 0 ? 0 : errno;
	else
		err = wait_for_lock(req, do_ofd_setlkw, fd, lock);
	reply_err(req, err);
}

void idmapfs_op_fallocate(struct idmapfs_req *req, uint64_t ino, int mode, off_t offset, off_t length,
			 struct idmapfs_file *fi)
{
	reply_err(req, fallocate((int)fi->fh, mode, offset, length) == 0 ? 0 : errno);
}

void idmapfs_op_copy_file_range(struct idmapfs_req *req, uint64_t ino_in, off_t off_in,
			       struct idmapfs_file *fi_in, uint64_t ino_out, off_t off_out,
			       struct idmapfs_file *fi_out, size_t len, int flags)
{
	ssize_t res = copy_file_range((int)fi_in->fh, &off_in, (int)fi_out->fh, &off_out, len,
				      (unsigned)flags);
	if (res < 0)
		reply_err(req, errno);
	else
		reply_write(req, (size_t)res);
}

void idmapfs_op_lseek(struct idmapfs_req *req, uint64_t ino, off_t off, int whence,
		     struct idmapfs_file *fi)
{
	off_t res = lseek((int)fi->fh, off, whence);

	if (res < 0)
		reply_err(req, errno);
	else
		reply_lseek(req, res);
}
