/*
 * FUSE passthrough (Linux 6.9+): reads, writes, splices and mmaps of a
 * regular file go from the kernel straight to the backing file, without a
 * request to us. The open tells the kernel which backing file, by an id
 * that FUSE_DEV_IOC_BACKING_OPEN gave for a backing fd.
 *
 * Privilege. That ioctl needs CAP_SYS_ADMIN in the initial user namespace,
 * and the kernel later opens and does all I/O on the backing file with the
 * credentials of the thread that made the call. The server holds no
 * capability at all while serving, and raising one around the call would
 * mean keeping it permitted for good. So the call is made by the
 * passthrough sentry: a process forked before privilege is dropped, whose
 * fsuid/fsgid are the bound ids (no supplementary groups), which holds
 * CAP_SYS_ADMIN alone, the /dev/fuse fd and one end of a socket pair, and
 * nothing else. It does two things: given an fd (SCM_RIGHTS), it answers
 * the backing id; given an id, it closes it. A compromised server gains
 * from it only what the kernel grants any backing file: I/O on a file the
 * server could open itself, as the bound identity.
 *
 * Which opens pass through: every open of a regular file, once the kernel
 * agreed at INIT and the operator did not turn it off. All opens of one
 * inode must agree (the kernel refuses a cached open while a passthrough
 * one exists, and the other way round), so an inode holds one backing id
 * while any of its files are open, and an inode whose registration failed
 * stays on the normal path. A refusal that says passthrough cannot work
 * here at all (no privilege in this user namespace, an old kernel) turns
 * it off for the rest of the run, with a warning.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "idmapfs.h"
#include "privilege.h"

/* One request to the sentry; an open's answer is an int32_t: an id, or -errno. A close has none. */
struct pt_request {
	uint32_t op;                 /* PT_OPEN (with an fd) or PT_CLOSE */
	int32_t id;                  /* for PT_CLOSE */
};

enum { PT_OPEN = 1, PT_CLOSE = 2 };

static noreturn void run_sentry(int sock, int fuse_fd, uid_t uid, gid_t gid)
{
	static const int keep[] = {CAP_SYS_ADMIN};
	struct pt_request rq;
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &rq, .iov_len = sizeof(rq)};
	struct msghdr msg;
	struct cmsghdr *cmsg;
	int32_t answer;
	ssize_t n;
	int null_fd, fd;

	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0)
		die_errno(NFSV3_EXIT_INTERNAL, "passthrough sentry: cannot open /dev/null");
	if (sock > fuse_fd) {
		close_range(STDERR_FILENO + 1, (unsigned)fuse_fd - 1, 0);
		close_range((unsigned)fuse_fd + 1, (unsigned)sock - 1, 0);
		close_range((unsigned)sock + 1, ~0U, 0);
	} else {
		close_range(STDERR_FILENO + 1, (unsigned)sock - 1, 0);
		close_range((unsigned)sock + 1, (unsigned)fuse_fd - 1, 0);
		close_range((unsigned)fuse_fd + 1, ~0U, 0);
	}
	prctl(PR_SET_NAME, NFSV3_IDMAPFS_PT_COMM, 0, 0, 0);
	/* The identity the kernel will do the backing I/O as; needs SETUID/SETGID, dropped next. */
	idmapfs_become_bound(uid, gid);
	privilege_keep_only(keep, 1);

	for (;;) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		/* EOF: the server is gone; so must its /dev/fuse fd be, or the session would outlive it. */
		if (n <= 0)
			_exit(NFSV3_EXIT_OK);
		fd = -1;
		cmsg = CMSG_FIRSTHDR(&msg);
		if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
		    cmsg->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(cmsg), sizeof(fd));
		if (n != (ssize_t)sizeof(rq)) {
			answer = -EINVAL;
		} else if (rq.op == PT_OPEN && fd >= 0) {
			struct idmapfs_backing_map map = {.fd = fd};

			answer = ioctl(fuse_fd, IDMAPFS_IOC_BACKING_OPEN, &map);
			if (answer < 0)
				answer = -errno;
		} else if (rq.op == PT_CLOSE) {
			uint32_t id = (uint32_t)rq.id;

			/* Nobody waits for it: a failure (the id is gone already) changes nothing. */
			ioctl(fuse_fd, IDMAPFS_IOC_BACKING_CLOSE, &id);
			continue;
		} else {
			answer = -EINVAL;
		}
		if (fd >= 0)
			close(fd);
		if (send(sock, &answer, sizeof(answer), MSG_NOSIGNAL) != (ssize_t)sizeof(answer))
			_exit(NFSV3_EXIT_OK);
	}
}

bool idmapfs_passthrough_start(struct idmapfs *fs, int fuse_fd)
{
	int pair[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
		return false;
	pid = fork();
	if (pid < 0) {
		close(pair[0]);
		close(pair[1]);
		return false;
	}
	if (pid == 0) {
		close(pair[0]);
		run_sentry(pair[1], fuse_fd, fs->bound_uid, fs->bound_gid);
	}
	close(pair[1]);
	fs->pt_sock = pair[0];
	fs->pt_sentry = pid;
	pthread_mutex_init(&fs->pt_lock, NULL);
	atomic_store(&fs->passthrough, true);
	return true;
}

/* One request, and the answer to an open; the caller holds pt_lock. */
static int32_t ask(struct idmapfs *fs, uint32_t op, int32_t id, int fd)
{
	struct pt_request rq = {.op = op, .id = id};
	struct iovec iov = {.iov_base = &rq, .iov_len = sizeof(rq)};
	char control[CMSG_SPACE(sizeof(int))] = {0};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cmsg;
	int32_t answer;
	ssize_t n;

	if (fd >= 0) {
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(fd));
	}
	do
		n = sendmsg(fs->pt_sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(rq))
		return -EPIPE;
	/* A close is not answered: the release that asks for it need not wait for the sentry. */
	if (op == PT_CLOSE)
		return 0;
	do
		n = recv(fs->pt_sock, &answer, sizeof(answer), 0);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(answer) ? answer : -EPIPE;
}

/* Whether the kernel's answer says passthrough cannot work in this run at all. */
static bool hopeless(int32_t err)
{
	return err == -EPERM || err == -EOPNOTSUPP || err == -ENOTTY || err == -EPIPE;
}

bool idmapfs_passthrough_open(struct idmapfs *fs, struct idmapfs_inode *inode, int fd, int32_t *id)
{
	bool on;

	if (!inode->is_reg || fs->pt_sock < 0)
		return false;
	pthread_mutex_lock(&fs->pt_lock);
	if (inode->backing_id == 0 && !inode->no_passthrough && atomic_load(&fs->passthrough)) {
		int32_t got = ask(fs, PT_OPEN, 0, fd);

		if (got > 0) {
			inode->backing_id = got;
		} else {
			inode->no_passthrough = true;
			if (hopeless(got) && atomic_exchange(&fs->passthrough, false))
				fprintf(stderr, "%s: warning: passthrough refused (%s); serving reads and writes ourselves\n",
					NFSV3_HELPER_IDMAPFS, strerror(-got));
		}
	}
	on = inode->backing_id > 0;
	if (on) {
		inode->pt_opens++;
		*id = inode->backing_id;
	}
	pthread_mutex_unlock(&fs->pt_lock);
	return on;
}

void idmapfs_passthrough_release(struct idmapfs *fs, struct idmapfs_inode *inode)
{
	pthread_mutex_lock(&fs->pt_lock);
	if (inode->pt_opens > 0 && --inode->pt_opens == 0 && inode->backing_id > 0) {
		/* The kernel holds its own reference for as long as it needs the file. */
		ask(fs, PT_CLOSE, inode->backing_id, -1);
		inode->backing_id = 0;
	}
	pthread_mutex_unlock(&fs->pt_lock);
}
