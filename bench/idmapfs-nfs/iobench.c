/*
 * Small, dependency-free I/O workloads for the NFS comparison in the VM
 * (the guest has no fio): each prints one line "NAME SECONDS [detail]".
 *   iobench seqwrite FILE MIB        write MIB MiB in 1 MiB blocks, then fsync
 *   iobench seqread FILE             read it back in 1 MiB blocks
 *   iobench meta DIR N               create, stat and unlink N empty files
 *   iobench tree DIR N               write N files of 1-8 KiB in N/30 directories, read them all back
 *   iobench randrw FILE MIB SECONDS  4 KiB random reads and writes (70/30) on a MIB MiB file
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
	} else {
		fprintf(stderr, "iobench: unknown workload %s\n", argv[1]);
		return 2;
	}
	return 0;
}
