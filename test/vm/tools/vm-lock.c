/*
 * vm-lock: take a lock the way an app would, for the VM's lock cases.
 *
 *   vm-lock flock|fcntl FILE [HOLD_SECONDS]
 *
 * Takes an exclusive lock on FILE without waiting (flock(2) LOCK_EX|LOCK_NB,
 * or fcntl(2) F_SETLK F_WRLCK on the whole file). Exit 0 and "locked" on
 * stdout when granted (then holds it HOLD_SECONDS, default 0), exit 1 and
 * "busy" when another holder has it, exit 2 on any other error. SIGUSR1
 * while holding unlocks explicitly (LOCK_UN, F_UNLCK) with FILE still open,
 * prints "unlocked" (exit 2 if the unlock fails) and waits out the hold.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Only interrupts the hold's sleep. */
static void on_usr1(int sig)
{
	(void)sig;
}

static int lock_file(int fd, const char *kind, int type)
{
	struct flock fl = {.l_type = (short)type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};

	if (strcmp(kind, "flock") == 0)
		return flock(fd, type == F_UNLCK ? LOCK_UN : LOCK_EX | LOCK_NB);
	return fcntl(fd, F_SETLK, &fl);
}

int main(int argc, char **argv)
{
	struct sigaction usr1 = {.sa_handler = on_usr1};
	unsigned left;
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
	/* Before "locked" is printed: a caller may signal as soon as it reads it. */
	sigaction(SIGUSR1, &usr1, NULL);
	rc = lock_file(fd, argv[1], F_WRLCK);
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
	if (argc == 4 && (left = sleep((unsigned)atoi(argv[3]))) > 0) {
		if (lock_file(fd, argv[1], F_UNLCK) != 0) {
			fprintf(stderr, "vm-lock: unlock %s: %s\n", argv[2], strerror(errno));
			return 2;
		}
		printf("unlocked\n");
		fflush(stdout);
		sleep(left);
	}
	return 0;
}
