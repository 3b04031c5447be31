/*
 * Mount latency of LDAP bindings against a running daemon (bench/ldap/run.sh
 * starts it with a private slapd): each Mount proves a password in the
 * directory and starts an idmapfs. Not a test: it prints figures.
 *
 * usage: ldapbench seq PORT SRC ROUNDS MODE   MODE ldap|uid: one volume at a time,
 *                                             Create, Mount (timed), Unmount, Remove
 *        ldapbench conc PORT SRC N            N volumes (users bench0..N-1) created, then
 *                                             all mounted at once (timed), then unmounted
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

static int port;
static const char *src;

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1000 + (double)t.tv_nsec / 1e6;
}

/* POST body to route; 0 when the answer's Err is empty, else -1 (the answer in err). */
static int call(const char *route, const char *body, char *err, size_t size)
{
	const struct client_request req = {.method = "POST", .path = route, .body = body};
	struct client_address addr = {.host = "127.0.0.1"};
	struct client_response resp;
	int rc;

	snprintf(addr.port, sizeof(addr.port), "%d", port);
	if (client_call(&addr, &req, 120000, &resp, err, size) != 0)
		return -1;
	rc = strstr(resp.body, "\"Err\":\"\"") || (resp.status == 200 && !strstr(resp.body, "\"Err\"")) ? 0 : -1;
	if (rc != 0)
		snprintf(err, size, "%s", resp.body);
	client_response_free(&resp);
	return rc;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void report(const char *label, double *v, size_t n, int errors, double wall)
{
	qsort(v, n, sizeof(*v), cmp);
	printf("%s n=%zu errors=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f", label, n, errors, n ? pct(v, n, 50) : 0,
	       n ? pct(v, n, 99) : 0, n ? v[n - 1] : 0);
	if (wall > 0)
		printf(" wall_ms=%.1f", wall);
	putchar('\n');
}

static void create(const char *name, int user, int ldap)
{
	char body[1024], err[8192];

	if (ldap)
		snprintf(body, sizeof(body),
			 "{\"Name\":\"%s\",\"Opts\":{\"source\":\"file://%s\",\"username\":\"bench%d\",\"password\":\"bench%d-pw\"}}",
			 name, src, user, user);
	else
		snprintf(body, sizeof(body), "{\"Name\":\"%s\",\"Opts\":{\"source\":\"file://%s\",\"uid\":\"%d\",\"gid\":\"%d\"}}",
			 name, src, 3000 + user, 3000 + user);
	if (call("/VolumeDriver.Create", body, err, sizeof(err)) != 0) {
		fprintf(stderr, "Create %s: %s\n", name, err);
		exit(1);
	}
}

static void simple(const char *route, const char *name)
{
	char body[512], err[8192];

	snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", name);
	if (call(route, body, err, sizeof(err)) != 0)
		fprintf(stderr, "%s %s: %s\n", route, name, err);
}

static int cmd_seq(int rounds, int ldap)
{
	double *v = calloc((size_t)rounds, sizeof(double));
	char name[64], body[128], err[8192];
	int errors = 0;
	size_t n = 0;

	for (int i = 0; i < rounds; i++) {
		snprintf(name, sizeof(name), "seq%d", i);
		create(name, i % 64, ldap);
		snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", name);
		double t = now_ms();
		if (call("/VolumeDriver.Mount", body, err, sizeof(err)) != 0) {
			errors++;
			fprintf(stderr, "Mount %s: %s\n", name, err);
		} else {
			v[n++] = now_ms() - t;
			simple("/VolumeDriver.Unmount", name);
		}
		simple("/VolumeDriver.Remove", name);
	}
	report(ldap ? "mount-seq-ldap" : "mount-seq-uid", v, n, errors, 0);
	free(v);
	return errors != 0;
}

struct job {
	int index;
	double ms;
	int failed;
	pthread_barrier_t *start;
};

static void *mount_one(void *arg)
{
	struct job *j = arg;
	char body[128], err[8192];

	snprintf(body, sizeof(body), "{\"Name\":\"conc%d\"}", j->index);
	pthread_barrier_wait(j->start);
	double t = now_ms();
	j->failed = call("/VolumeDriver.Mount", body, err, sizeof(err)) != 0;
	j->ms = now_ms() - t;
	if (j->failed)
		fprintf(stderr, "Mount conc%d: %s\n", j->index, err);
	return NULL;
}

static int cmd_conc(int count)
{
	pthread_t *threads = calloc((size_t)count, sizeof(*threads));
	struct job *jobs = calloc((size_t)count, sizeof(*jobs));
	double *v = calloc((size_t)count, sizeof(double)), wall;
	pthread_barrier_t start;
	char name[64];
	int errors = 0;
	size_t n = 0;

	for (int i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "conc%d", i);
		create(name, i % 64, 1);
	}
	pthread_barrier_init(&start, NULL, (unsigned)count + 1);
	for (int i = 0; i < count; i++) {
		jobs[i] = (struct job){ .index = i, .start = &start };
		pthread_create(&threads[i], NULL, mount_one, &jobs[i]);
	}
	pthread_barrier_wait(&start);
	wall = now_ms();
	for (int i = 0; i < count; i++)
		pthread_join(threads[i], NULL);
	wall = now_ms() - wall;
	for (int i = 0; i < count; i++) {
		if (jobs[i].failed)
			errors++;
		else
			v[n++] = jobs[i].ms;
	}
	report("mount-concurrent-ldap", v, n, errors, wall);
	for (int i = 0; i < count; i++) {
		snprintf(name, sizeof(name), "conc%d", i);
		simple("/VolumeDriver.Unmount", name);
		simple("/VolumeDriver.Remove", name);
	}
	return errors != 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "seq") == 0) {
		port = atoi(argv[2]);
		src = argv[3];
		return cmd_seq(atoi(argv[4]), strcmp(argv[5], "ldap") == 0);
	}
	if (argc == 5 && strcmp(argv[1], "conc") == 0) {
		port = atoi(argv[2]);
		src = argv[3];
		return cmd_conc(atoi(argv[4]));
	}
	fprintf(stderr, "usage: see the comment at the top of bench/ldap/ldapbench.c\n");
	return 2;
}
