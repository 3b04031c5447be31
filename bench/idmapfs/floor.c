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
 * The null server speaks the protocol on /dev/fuse itself, as idmapfs does,
 * and runs twice: blocking in read() like idmapfs's workers, and spinning
 * on a non-blocking /dev/fuse, which no request ever waits for.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
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

/* Answer the request with error and, unless it is one, arg. */
static void reply(int fd, uint64_t unique, int error, const void *arg, size_t size)
{
	struct fuse_out_header out = {.len = (uint32_t)(sizeof(out) + (error ? 0 : size)), .error = -error,
				      .unique = unique};
	struct iovec iov[2] = {{&out, sizeof(out)}, {(void *)arg, size}};

	if (writev(fd, iov, error || size == 0 ? 1 : 2) < 0 && errno != ENOENT)
		die("writing /dev/fuse");
}

/* Serve until the client's last lookup, blocking in read() or spinning. */
static void serve(int fd, bool spin)
{
	static char buf[FUSE_MIN_READ_BUFFER + 128 * 1024];
	const struct fuse_in_header *in = (const void *)buf;
	const char *arg = buf + sizeof(*in);
	bool done = false;
	ssize_t n;

	if (spin && fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
		die("O_NONBLOCK on /dev/fuse");
	while (!done) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR || errno == ENOENT))
			continue;
		if (n < (ssize_t)sizeof(*in))
			break;
		switch (in->opcode) {
		case FUSE_INIT: {
			struct fuse_init_out out = {.major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION,
						    .max_write = 128 * 1024, .time_gran = 1};

			reply(fd, in->unique, 0, &out, sizeof(out));
			break;
		}
		case FUSE_LOOKUP: {
			/* nodeid 0 and no timeout: "no such name", cached for no time at all. */
			struct fuse_entry_out out = {0};

			done = strcmp(arg, DONE_NAME) == 0;
			reply(fd, in->unique, 0, &out, sizeof(out));
			break;
		}
		case FUSE_GETATTR: {
			struct fuse_attr_out out = {.attr = {.ino = in->nodeid, .mode = S_IFDIR | 0755, .nlink = 2}};

			reply(fd, in->unique, in->nodeid == FUSE_ROOT_ID ? 0 : ENOENT, &out, sizeof(out));
			break;
		}
		case FUSE_FORGET:
		case FUSE_BATCH_FORGET:
			break;
		default:
			reply(fd, in->unique, ENOSYS, NULL, 0);
			break;
		}
	}
}

/* Microseconds per lookup through a null FUSE server mounted on mnt. */
static double null_fuse(const char *mnt, long n, bool spin)
{
	char opts[128];
	int result[2], status, fd;
	double us = 0;
	pid_t pid;

	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("/dev/fuse");
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
	if (mount("floor", mnt, "fuse.floor", MS_NOSUID | MS_NODEV, opts) != 0) {
		fprintf(stderr, "floor: cannot mount a FUSE file system on %s: %s\n", mnt, strerror(errno));
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
	serve(fd, spin);
	if (read(result[0], &us, sizeof(us)) != sizeof(us) || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "floor: the FUSE client failed\n");
		exit(1);
	}
	close(result[0]);
	umount2(mnt, MNT_DETACH);
	close(fd);
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
