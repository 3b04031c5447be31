/*
 * The floor under every FUSE file system on this machine, idmapfs included
 * (a benchmark, not a test). A null FUSE server, which answers each LOOKUP
 * "no such name" without a single system call, is timed against the same
 * lookup on a local directory and against a pipe round trip between two
 * processes; from the local cost of a create/stat/unlink cycle it derives
 * the least time a FUSE layer can take for it.
 *
 *   sudo floor DIR [N]      DIR: a local directory to compare with and to
 *                           mount the null server under; N lookups (100000)
 *
 * The null server runs twice: blocking in read() like libfuse's loops, and
 * spinning on a non-blocking /dev/fuse, which no request ever waits for.
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 2000
#define DONE_NAME "done"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Microseconds per stat() of a name that does not exist under dir. */
static double missing_lookups(const char *dir, long n)
{
	char path[4096];
	struct stat st;
	double t0 = 0;

	for (long i = 0; i < n + WARMUP; i++) {
		if (i == WARMUP)
			t0 = now();
		snprintf(path, sizeof(path), "%s/missing-%d-%ld", dir, getpid(), i);
		if (stat(path, &st) == 0 || errno != ENOENT)
			die(path);
	}
	return (now() - t0) / (double)n * 1e6;
}

/* Microseconds per file to create (and close), stat and unlink n files in dir. */
static double local_cycle(const char *dir, long n)
{
	char path[4096];
	struct stat st;
	double t0 = now();
	int fd;

	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/floor-%d-%ld", dir, getpid(), i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			die(path);
		close(fd);
	}
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/floor-%d-%ld", dir, getpid(), i);
		if (stat(path, &st) != 0)
			die(path);
	}
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/floor-%d-%ld", dir, getpid(), i);
		if (unlink(path) != 0)
			die(path);
	}
	return (now() - t0) / (double)n * 1e6;
}

/* Microseconds per one-byte there-and-back between two processes over pipes. */
static double pipe_round_trip(long n)
{
	int there[2], back[2];
	double t0 = 0;
	char c = 0;
	pid_t pid;

	if (pipe(there) != 0 || pipe(back) != 0)
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(there[1]);
		close(back[0]);
		while (read(there[0], &c, 1) == 1 && write(back[1], &c, 1) == 1)
			;
		_exit(0);
	}
	for (long i = 0; i < n + WARMUP; i++) {
		if (i == WARMUP)
			t0 = now();
		if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1)
			die("pipe round trip");
	}
	t0 = (now() - t0) / (double)n * 1e6;
	close(there[0]);
	close(there[1]);
	close(back[0]);
	close(back[1]);
	waitpid(pid, NULL, 0);
	return t0;
}

/* The session being served: the client's last lookup ends it. */
static struct fuse_session *serving;

static void null_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	(void)parent;
	if (strcmp(name, DONE_NAME) == 0)
		fuse_session_exit(serving);
	/* ino 0 and no timeout: "no such name", cached for no time at all. */
	memset(&e, 0, sizeof(e));
	fuse_reply_entry(req, &e);
}

static void null_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st = {.st_ino = ino, .st_mode = S_IFDIR | 0755, .st_nlink = 2};

	(void)fi;
	if (ino != FUSE_ROOT_ID)
		fuse_reply_err(req, ENOENT);
	else
		fuse_reply_attr(req, &st, 0);
}

static const struct fuse_lowlevel_ops null_ops = {
	.lookup = null_lookup,
	.getattr = null_getattr,
};

/* Serve until the client's last lookup, blocking in read() or spinning. */
static void serve(struct fuse_session *se, bool spin)
{
	struct fuse_buf buf = {.mem = NULL};
	int res;

	if (!spin) {
		fuse_session_loop(se);
		return;
	}
	if (fcntl(fuse_session_fd(se), F_SETFL, O_NONBLOCK) != 0)
		die("O_NONBLOCK on /dev/fuse");
	while (!fuse_session_exited(se)) {
		res = fuse_session_receive_buf(se, &buf);
		if (res == -EAGAIN || res == -EINTR)
			continue;
		if (res <= 0)
			break;
		fuse_session_process_buf(se, &buf);
	}
	free(buf.mem);
}

/* Microseconds per lookup through a null FUSE server mounted on mnt. */
static double null_fuse(const char *mnt, long n, bool spin)
{
	char *argv[] = {"floor", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	int result[2], status;
	double us = 0;
	pid_t pid;

	serving = fuse_session_new(&args, &null_ops, sizeof(null_ops), NULL);
	if (serving == NULL || fuse_session_mount(serving, mnt) != 0) {
		fprintf(stderr, "floor: cannot mount a FUSE file system on %s\n", mnt);
		exit(1);
	}
	if (pipe(result) != 0)
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		char done[4096];
		struct stat st;

		close(result[0]);
		us = missing_lookups(mnt, n);
		snprintf(done, sizeof(done), "%s/%s", mnt, DONE_NAME);
		stat(done, &st);
		_exit(write(result[1], &us, sizeof(us)) == sizeof(us) ? 0 : 1);
	}
	close(result[1]);
	serve(serving, spin);
	if (read(result[0], &us, sizeof(us)) != sizeof(us) || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "floor: the FUSE client failed\n");
		exit(1);
	}
	close(result[0]);
	fuse_session_unmount(serving);
	fuse_session_destroy(serving);
	return us;
}

int main(int argc, char **argv)
{
	const char *dir;
	char mnt[4096];
	long n;
	double local, pipe_us, blocking, spinning, cycle;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: floor DIR [N]\n");
		return 2;
	}
	dir = argv[1];
	n = argc == 3 ? atol(argv[2]) : 100000;
	if (n <= 0) {
		fprintf(stderr, "floor: N must be a positive count, not %s\n", argv[2]);
		return 2;
	}
	snprintf(mnt, sizeof(mnt), "%s/floor-mnt-%d", dir, getpid());
	if (mkdir(mnt, 0755) != 0)
		die(mnt);
	local = missing_lookups(dir, n);
	pipe_us = pipe_round_trip(n);
	blocking = null_fuse(mnt, n, false);
	spinning = null_fuse(mnt, n, true);
	cycle = local_cycle(dir, 5000);
	rmdir(mnt);

	printf("%-58s %8s\n", "one operation", "us");
	printf("%-58s %8.1f\n", "lookup of a missing name, local directory", local);
	printf("%-58s %8.1f\n", "pipe round trip between two processes", pipe_us);
	printf("%-58s %8.1f\n", "lookup through a null FUSE server, blocking read()", blocking);
	printf("%-58s %8.1f\n", "lookup through a null FUSE server, spinning read()", spinning);
	printf("\n%-58s %8.1f\n", "create+close, stat, unlink of a file, local directory", cycle);
	printf("the same through any FUSE layer makes 3 synchronous requests (LOOKUP,\n"
	       "CREATE, UNLINK), so it takes at least %.1f us (%.2fx) with a blocking\n"
	       "server and %.1f us (%.2fx) with a spinning one\n",
	       cycle + 3 * (blocking - local), (cycle + 3 * (blocking - local)) / cycle,
	       cycle + 3 * (spinning - local), (cycle + 3 * (spinning - local)) / cycle);
	return 0;
}
