/*
 * vm-lock: take a lock the way an app would, for the VM's lock cases.
 *
 *   vm-lock flock|fcntl FILE [HOLD_SECONDS]
 *
 * Takes an exclusive lock on FILE without waiting (flock(2) LOCK_EX|LOCK_NB,
 * or fcntl(2) F_SETLK F_WRLCK on the whole file). Exit 0 and "locked" on
 * stdout when granted (then holds it HOLD_SECONDS, default 0), exit 1 and
 * "busy" when another holder has it, exit 2 on any other error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int fd, rc;

	if (argc < 3 || argc > 4 || (strcmp(argv[1], "flock") && strcmp(argv[1], "fcntl"))) {
		fprintf(stderr, "usage: vm-lock flock|fcntl FILE [HOLD_SECONDS]\n");
		return 2;
	}
	fd = open(argv[2], O_RDWR | O_CREAT, 0666);
	if (fd < 0) {
		fprintf(stderr, "vm-lock: %s: %s\n", argv[2], strerror(errno));
		return 2;
	}
	if (strcmp(argv[1], "flock") == 0) {
		rc = flock(fd, LOCK_EX | LOCK_NB);
	} else {
		struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
		rc = fcntl(fd, F_SETLK, &fl);
	}
	if (rc != 0) {
		if (errno == EWOULDBLOCK || errno == EAGAIN || errno == EACCES) {
			printf("busy\n");
			return 1;
		}
		fprintf(stderr, "vm-lock: %s %s: %s\n", argv[1], argv[2], strerror(errno));
		return 2;
	}
	printf("locked\n");
	fflush(stdout);
	if (argc == 4)
		sleep((unsigned)atoi(argv[3]));
	return 0;
}
