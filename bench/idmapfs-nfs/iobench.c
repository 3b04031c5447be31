/*
 * Small, dependency-free I/O workloads for the NFS comparison in the VM
 * (the guest has no fio): each prints one line "NAME SECONDS [detail]".
 *   iobench seqwrite FILE MIB        write MIB MiB in 1 MiB blocks, then fsync
 *   iobench seqread FILE             read it back in 1 MiB blocks
 *   iobench meta DIR N               create, stat and unlink N empty files
 *   iobench tree DIR N               write N files of 1-8 KiB in N/30 directories, read them all back
 *   iobench randrw FILE MIB SECONDS  4 KiB random reads and writes (70/30) on a MIB MiB file
 *   iobench op DIR OP N              N of one operation on DIR/o0..: for counting each one's
 *                                    NFS calls; in this order, each on what the last left:
 *                                    create (O_EXCL), stat, open (read-only, then close),
 *                                    read (open, read 4 KiB, close), rewrite (O_TRUNC, 100
 *                                    bytes), list (readdir and lstat each), rename (o to r),
 *                                    unlink (r), creat (r, O_TRUNC, no O_EXCL), unlink again,
 *                                    mkdir, rmdir
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int one_op(const char *dir, const char *op, int n);

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "iobench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static char block[1 << 20];

int main(int argc, char **argv)
{
	double t0 = now();

	if (argc < 3) {
		fprintf(stderr, "usage: see the comment at the top of iobench.c\n");
		return 2;
	}
	memset(block, 'x', sizeof(block));
	if (strcmp(argv[1], "seqwrite") == 0 && argc == 4) {
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		long mib = atol(argv[3]);
		if (fd < 0)
			die(argv[2]);
		for (long i = 0; i < mib; i++)
			if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
				die("write");
		if (fsync(fd) < 0)
			die("fsync");
		close(fd);
		printf("seqwrite %.3f %.1f MiB/s\n", now() - t0, (double)mib / (now() - t0));
	} else if (strcmp(argv[1], "seqread") == 0) {
		int fd = open(argv[2], O_RDONLY);
		ssize_t n;
		long total = 0;
		if (fd < 0)
			die(argv[2]);
		while ((n = read(fd, block, sizeof(block))) > 0)
			total += n;
		if (n < 0)
			die("read");
		close(fd);
		printf("seqread %.3f %.1f MiB/s\n", now() - t0, (double)total / 1048576 / (now() - t0));
	} else if (strcmp(argv[1], "meta") == 0 && argc == 4) {
		int n = atoi(argv[3]);
		char path[4096];
		struct stat st;
		for (int i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/m%d", argv[2], i);
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (fd < 0)
				die(path);
			close(fd);
		}
		for (int i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/m%d", argv[2], i);
			if (stat(path, &st) < 0)
				die(path);
		}
		for (int i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/m%d", argv[2], i);
			if (unlink(path) < 0)
				die(path);
		}
		printf("meta %.3f %d files\n", now() - t0, n);
	} else if (strcmp(argv[1], "tree") == 0 && argc == 4) {
		int n = atoi(argv[3]), dirs = n / 30 + 1;
		char path[4096];
		long bytes = 0;
		for (int d = 0; d < dirs; d++) {
			snprintf(path, sizeof(path), "%s/d%d", argv[2], d);
			if (mkdir(path, 0755) < 0 && errno != EEXIST)
				die(path);
		}
		for (int i = 0; i < n; i++) {
			size_t len = 1024 + (size_t)(i * 2654435761u % 7168);
			snprintf(path, sizeof(path), "%s/d%d/f%d", argv[2], i % dirs, i);
			int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 || write(fd, block, len) != (ssize_t)len)
				die(path);
			close(fd);
		}
		for (int i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/d%d/f%d", argv[2], i % dirs, i);
			int fd = open(path, O_RDONLY);
			ssize_t r;
			if (fd < 0)
				die(path);
			while ((r = read(fd, block, 65536)) > 0)
				bytes += r;
			close(fd);
		}
		printf("tree %.3f %d files %ld bytes\n", now() - t0, n, bytes);
	} else if (strcmp(argv[1], "randrw") == 0 && argc == 5) {
		long mib = atol(argv[3]), blocks = mib * 256, ops = 0;
		double seconds = atof(argv[4]);
		int fd = open(argv[2], O_RDWR | O_CREAT, 0644);
		unsigned seed = 12345;
		if (fd < 0)
			die(argv[2]);
		for (long i = 0; i < mib; i++)
			if (pwrite(fd, block, sizeof(block), i << 20) != (ssize_t)sizeof(block))
				die("fill");
		fsync(fd);
		t0 = now();
		while (now() - t0 < seconds) {
			for (int k = 0; k < 64; k++, ops++) {
				off_t off = (off_t)(rand_r(&seed) % blocks) * 4096;
				if (rand_r(&seed) % 10 < 7) {
					if (pread(fd, block, 4096, off) != 4096)
						die("pread");
				} else if (pwrite(fd, block, 4096, off) != 4096) {
					die("pwrite");
				}
			}
		}
		close(fd);
		printf("randrw %.3f %.0f IOPS\n", now() - t0, (double)ops / (now() - t0));
	} else if (strcmp(argv[1], "op") == 0 && argc == 5) {
		if (one_op(argv[2], argv[3], atoi(argv[4])) != 0)
			return 2;
		printf("op %.3f %s %s\n", now() - t0, argv[3], argv[4]);
	} else {
		fprintf(stderr, "iobench: unknown workload %s\n", argv[1]);
		return 2;
	}
	return 0;
}

static int one_op(const char *dir, const char *op, int n)
{
	char path[4096], to[4096];
	struct stat st;
	int fd;

	if (strcmp(op, "list") == 0) {
		DIR *d = opendir(dir);
		struct dirent *e;
		if (d == NULL)
			die(dir);
		while ((e = readdir(d)) != NULL) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (lstat(path, &st) < 0)
				die(path);
		}
		closedir(d);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/o%d", dir, i);
		snprintf(to, sizeof(to), "%s/r%d", dir, i);
		if (strcmp(op, "create") == 0) {
			if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0)
				die(path);
			close(fd);
		} else if (strcmp(op, "stat") == 0) {
			if (stat(path, &st) < 0)
				die(path);
		} else if (strcmp(op, "open") == 0) {
			if ((fd = open(path, O_RDONLY)) < 0)
				die(path);
			close(fd);
		} else if (strcmp(op, "read") == 0) {
			if ((fd = open(path, O_RDONLY)) < 0 || read(fd, block, 4096) < 0)
				die(path);
			close(fd);
		} else if (strcmp(op, "rewrite") == 0) {
			if ((fd = open(path, O_WRONLY | O_TRUNC)) < 0 || write(fd, block, 100) != 100)
				die(path);
			close(fd);
		} else if (strcmp(op, "rename") == 0) {
			if (rename(path, to) < 0)
				die(path);
		} else if (strcmp(op, "unlink") == 0) {
			if (unlink(to) < 0)
				die(to);
		} else if (strcmp(op, "creat") == 0) {
			if ((fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
				die(to);
			close(fd);
		} else if (strcmp(op, "mkdir") == 0) {
			if (mkdir(path, 0755) < 0)
				die(path);
		} else if (strcmp(op, "rmdir") == 0) {
			if (rmdir(path) < 0)
				die(path);
		} else {
			fprintf(stderr, "iobench: unknown operation %s\n", op);
			return 2;
		}
	}
	return 0;
}
