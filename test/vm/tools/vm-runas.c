/*
 * vm-runas: run a command as another uid/gid with no supplementary groups,
 * the way an app process on a cell runs (busybox's setpriv cannot).
 *
 *   vm-runas UID GID CMD [ARGS...]
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *end;
	unsigned long uid, gid;

	if (argc < 4) {
		fprintf(stderr, "usage: vm-runas UID GID CMD [ARGS...]\n");
		return 2;
	}
	uid = strtoul(argv[1], &end, 10);
	if (*end)
		return fprintf(stderr, "vm-runas: bad uid %s\n", argv[1]), 2;
	gid = strtoul(argv[2], &end, 10);
	if (*end)
		return fprintf(stderr, "vm-runas: bad gid %s\n", argv[2]), 2;
	if (setgroups(0, NULL) != 0 || setgid((gid_t)gid) != 0 || setuid((uid_t)uid) != 0) {
		fprintf(stderr, "vm-runas: %s\n", strerror(errno));
		return 2;
	}
	execvp(argv[3], argv + 3);
	fprintf(stderr, "vm-runas: %s: %s\n", argv[3], strerror(errno));
	return 127;
}
