/*
 * vm-io: copy a file into another with 1 MiB read(2) and write(2) calls,
 * in steps the caller paces, so that what the opens, the copy and the
 * closes cost (in a FUSE server, say) can be measured apart.
 *
 *   vm-io SRC DEST   opens SRC and DEST (created 0644 or truncated), prints
 *                    "opened", waits for a line on stdin, copies, prints
 *                    "copied BYTES", waits for the end of stdin, closes
 *                    DEST then SRC and prints "closed": exit 0 only when all
 *                    of it succeeded
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static int fail(const char *file, const char *what)
{
	fprintf(stderr, "vm-io: %s: %s: %s\n", file, what, strerror(errno));
	return 1;
}

/* Wait for a newline (line) or the end (!line) of stdin. */
static int wait_stdin(int line)
{
	char c;
	ssize_t n;

	while ((n = read(STDIN_FILENO, &c, 1)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("stdin", "read");
		if (line && c == '\n')
			return 0;
	}
	if (line) {
		fprintf(stderr, "vm-io: stdin ended before the go\n");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char buf[CHUNK];
	unsigned long long total = 0;
	ssize_t n, w, done;
	int in, out;

	if (argc != 3) {
		fprintf(stderr, "usage: vm-io SRC DEST\n");
		return 2;
	}
	in = open(argv[1], O_RDONLY);
	if (in < 0)
		return fail(argv[1], "open");
	out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		return fail(argv[2], "open");
	printf("opened\n");
	fflush(stdout);
	if (wait_stdin(1) != 0)
		return 1;
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail(argv[1], "read");
		}
		for (done = 0; done < n; done += w) {
			w = write(out, buf + done, (size_t)(n - done));
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w <= 0)
				return fail(argv[2], "write");
		}
		total += (unsigned long long)n;
	}
	printf("copied %llu\n", total);
	fflush(stdout);
	if (wait_stdin(0) != 0)
		return 1;
	if (close(out) != 0)
		return fail(argv[2], "close");
	if (close(in) != 0)
		return fail(argv[1], "close");
	printf("closed\n");
	return 0;
}
