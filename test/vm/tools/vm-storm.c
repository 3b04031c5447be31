/*
 * vm-storm: one driver call for COUNT volumes at once, as many containers
 * starting on a cell at the same moment do (curl per volume would cost a
 * process of several MiB each in a 1 GiB guest).
 *
 *   vm-storm SOCKET create|mount|unmount|remove COUNT PREFIX [OPTS_JSON]
 *
 * Volumes are PREFIX000, PREFIX001...; create sends {"Name","Opts":OPTS_JSON}.
 * Every call is made on its own thread and unix connection, all released
 * together. Prints one line:
 *   vm-storm verb=V count=N errors=E p50_ms=.. p99_ms=.. max_ms=.. first_error=...
 * Exits 0 when every call was answered with an empty Err, 1 otherwise, 2 on
 * bad usage.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 2000

struct call {
	pthread_t thread;
	char name[64];
	double ms;
	char err[256]; /* "" when the answer's Err was empty */
};

static const char *sock_path, *route, *opts;
static struct call calls[MAX_COUNT];
static pthread_barrier_t start_line;

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The answer's Err, or why there was none. */
static void post(struct call *c, const char *body)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	static const char tag[] = "\"Err\":";
	char head[256], reply[16384];
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		snprintf(c->err, sizeof(c->err), "connect: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: driver\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		 route, strlen(body));
	if (write(fd, head, strlen(head)) < 0 || write(fd, body, strlen(body)) < 0) {
		snprintf(c->err, sizeof(c->err), "write: %s", strerror(errno));
		close(fd);
		return;
	}
	while (got < sizeof(reply) - 1 && (n = read(fd, reply + got, sizeof(reply) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	reply[got] = '\0';
	char *e = strstr(reply, tag);
	if (strncmp(reply, "HTTP/1.1 200", 12) != 0 || !e) {
		snprintf(c->err, sizeof(c->err), "no answer: %.120s", reply);
		return;
	}
	e += sizeof(tag) - 1;
	while (*e == ' ')
		e++;
	if (strncmp(e, "\"\"", 2) != 0)
		snprintf(c->err, sizeof(c->err), "%.250s", e);
	for (char *p = c->err; *p; p++)
		if (*p == ' ' || *p == '\n')
			*p = '_';
}

static void *run_call(void *arg)
{
	struct call *c = arg;
	char body[2048];

	if (opts)
		snprintf(body, sizeof(body), "{\"Name\":\"%s\",\"Opts\":%s}", c->name, opts);
	else
		snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", c->name);
	pthread_barrier_wait(&start_line);
	double t0 = now_ms();
	post(c, body);
	c->ms = now_ms() - t0;
	return NULL;
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static const char *const verbs[][2] = { { "create", "/VolumeDriver.Create" }, { "mount", "/VolumeDriver.Mount" },
						{ "unmount", "/VolumeDriver.Unmount" }, { "remove", "/VolumeDriver.Remove" } };
	static double ms[MAX_COUNT];
	int count, errors = 0;
	const char *first = "";

	if (argc < 5 || argc > 6 || (count = atoi(argv[3])) < 1 || count > MAX_COUNT) {
		fprintf(stderr, "usage: vm-storm SOCKET create|mount|unmount|remove COUNT PREFIX [OPTS_JSON]\n");
		return 2;
	}
	sock_path = argv[1];
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(argv[2], verbs[i][0]) == 0)
			route = verbs[i][1];
	if (!route) {
		fprintf(stderr, "vm-storm: unknown verb %s\n", argv[2]);
		return 2;
	}
	opts = strcmp(argv[2], "create") == 0 ? (argc == 6 ? argv[5] : "{}") : NULL;
	pthread_barrier_init(&start_line, NULL, (unsigned)count + 1);
	for (int i = 0; i < count; i++) {
		snprintf(calls[i].name, sizeof(calls[i].name), "%s%03d", argv[4], i);
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		if (pthread_create(&calls[i].thread, &attr, run_call, &calls[i]) != 0) {
			fprintf(stderr, "vm-storm: cannot start thread %d\n", i);
			return 1;
		}
		pthread_attr_destroy(&attr);
	}
	pthread_barrier_wait(&start_line);
	for (int i = 0; i < count; i++) {
		pthread_join(calls[i].thread, NULL);
		ms[i] = calls[i].ms;
		if (calls[i].err[0] && errors++ == 0)
			first = calls[i].err;
	}
	qsort(ms, (size_t)count, sizeof(ms[0]), compare);
	printf("vm-storm verb=%s count=%d errors=%d p50_ms=%.0f p99_ms=%.0f max_ms=%.0f first_error=%s\n", argv[2], count,
	       errors, ms[count / 2], ms[(count * 99) / 100 < count ? (count * 99) / 100 : count - 1], ms[count - 1],
	       first[0] ? first : "none");
	return errors ? 1 : 0;
}
