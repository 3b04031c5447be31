/*
 * vm-mmap: read or write a file through a shared mapping (no read(2) or
 * write(2) on it), as a program that mmaps its data file does.
 *
 *   vm-mmap write FILE OFFSET TEXT   TEXT into the mapping at OFFSET, then
 *                                    msync(MS_SYNC), munmap and close: exit 0
 *                                    only when each succeeded (the file must
 *                                    already reach OFFSET + the text's length)
 *   vm-mmap read FILE OFFSET LEN     LEN bytes of the mapping at OFFSET on stdout
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *file, const char *what)
{
	fprintf(stderr, "vm-mmap: %s: %s: %s\n", file, what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	const char *file;
	char *end, *map;
	long page = sysconf(_SC_PAGESIZE);
	unsigned long long off, len;
	size_t skip;
	struct stat st;
	int writing, fd;

	if (argc != 5 || (strcmp(argv[1], "write") != 0 && strcmp(argv[1], "read") != 0)) {
		fprintf(stderr, "usage: vm-mmap write FILE OFFSET TEXT | vm-mmap read FILE OFFSET LEN\n");
		return 2;
	}
	writing = strcmp(argv[1], "write") == 0;
	file = argv[2];
	off = strtoull(argv[3], &end, 10);
	if (*end)
		return fprintf(stderr, "vm-mmap: bad offset %s\n", argv[3]), 2;
	if (writing) {
		len = strlen(argv[4]);
	} else {
		len = strtoull(argv[4], &end, 10);
		if (*end)
			return fprintf(stderr, "vm-mmap: bad length %s\n", argv[4]), 2;
	}
	if (len == 0)
		return fprintf(stderr, "vm-mmap: nothing to map\n"), 2;
	fd = open(file, writing ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return fail(file, "open");
	if (fstat(fd, &st) != 0)
		return fail(file, "fstat");
	if ((unsigned long long)st.st_size < off + len) {
		fprintf(stderr, "vm-mmap: %s: %lld bytes, too short for %llu at %llu\n", file, (long long)st.st_size,
			len, off);
		return 1;
	}
	skip = off % (unsigned long long)page;
	map = mmap(NULL, skip + len, writing ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, (off_t)(off - skip));
	if (map == MAP_FAILED)
		return fail(file, "mmap");
	if (writing) {
		memcpy(map + skip, argv[4], len);
		if (msync(map, skip + len, MS_SYNC) != 0)
			return fail(file, "msync");
	} else if (fwrite(map + skip, 1, len, stdout) != len || fflush(stdout) != 0) {
		return fail(file, "write to stdout");
	}
	if (munmap(map, skip + len) != 0)
		return fail(file, "munmap");
	if (close(fd) != 0)
		return fail(file, "close");
	return 0;
}
