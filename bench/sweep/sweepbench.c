/*
 * sweepbench: container starts as volman makes them, against a running
 * nfsv3driver: per start a fresh volume name (volumeId_containerGuid),
 * Create, Mount, Unmount, each on a new TCP connection, and never a Remove.
 * While it runs it samples, every --every starts, the state file's size,
 * the daemon's resident memory (VmRSS, and its peak VmHWM) and how many
 * volumes List returns, and prints one row per sample. Not a test: it
 * measures and prints.
 *
 * usage: sweepbench --port P --pid PID --state FILE --source URL
 *                   [--starts N(100000)] [--clients C(8)] [--every N(5000)]
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

static int port;
static pid_t daemon_pid;
static const char *state_path, *source;
static long starts = 100000, every = 5000;
static int clients = 8;
static atomic_long next_start, done_starts, errors;
static pthread_mutex_t sample_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timespec began;

static double elapsed_s(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - began.tv_sec) + (double)(now.tv_nsec - began.tv_nsec) / 1e9;
}

/* One POST on a new connection; the body of the answer in out (NUL-terminated), or -1. */
static int call(const char *route, const char *body, char *out, size_t size)
{
	const struct client_request req = {.method = "POST", .path = route, .body = body, .limit = size - 1};
	struct client_address addr = {.host = "127.0.0.1"};
	struct client_response resp;
	int rc = -1;

	snprintf(addr.port, sizeof(addr.port), "%d", port);
	out[0] = '\0';
	if (client_call(&addr, &req, 120000, &resp, out, size) != 0)
		return -1;
	if (resp.status == 200) {
		memcpy(out, resp.body, resp.body_len + 1);
		rc = 0;
	} else {
		snprintf(out, size, "HTTP %d: %s", resp.status, resp.body);
	}
	client_response_free(&resp);
	return rc;
}

static int call_ok(const char *route, const char *body)
{
	char answer[8192];
	if (call(route, body, answer, sizeof(answer)) < 0 || !strstr(answer, "\"Err\":\"\"")) {
		if (atomic_fetch_add(&errors, 1) < 5)
			fprintf(stderr, "sweepbench: %s %s: %s\n", route, body, answer);
		return -1;
	}
	return 0;
}

static long kib_of(const char *field)
{
	char path[64], line[256];
	long kib = -1;
	size_t len = strlen(field);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
	if (!(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, len) == 0 && line[len] == ':')
			kib = strtol(line + len + 1, NULL, 10);
	fclose(f);
	return kib;
}

/* Volumes the daemon lists: the "Name" fields of List's answer. */
static long listed(void)
{
	static char answer[64 << 20];
	long n = 0;

	if (call("/VolumeDriver.List", "{}", answer, sizeof(answer)) < 0)
		return -1;
	for (const char *p = answer; (p = strstr(p, "\"Name\":")); p += 7)
		n++;
	return n;
}

static void sample(long at)
{
	struct stat st;
	long size = stat(state_path, &st) == 0 ? (long)st.st_size : -1;

	double t = elapsed_s();

	printf("%9ld %9.1f %8.0f %12ld %9ld %9ld %9ld %7ld\n", at, t, t > 0 ? at / t : 0.0, size, listed(),
	       kib_of("VmRSS"), kib_of("VmHWM"), (long)atomic_load(&errors));
	fflush(stdout);
}

static void *run_client(void *arg)
{
	char body[1024], name[128];
	long i;

	while ((i = atomic_fetch_add(&next_start, 1)) < starts) {
		/* volman's name: volumeId_containerGuid, '_' inside each part replaced by '='. */
		snprintf(name, sizeof(name), "bench=vol=%ld_c%08lx-%04lx-4000-8000-%012lx", i % 16, i, i % 65536,
			 (unsigned long)i * 2654435761UL);
		snprintf(body, sizeof(body), "{\"Name\":\"%s\",\"Opts\":{\"source\":\"%s\"}}", name, source);
		if (call_ok("/VolumeDriver.Create", body) == 0) {
			snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", name);
			if (call_ok("/VolumeDriver.Mount", body) == 0)
				call_ok("/VolumeDriver.Unmount", body);
		}
		long done = atomic_fetch_add(&done_starts, 1) + 1;
		if (done % every == 0) {
			pthread_mutex_lock(&sample_lock);
			sample(done);
			pthread_mutex_unlock(&sample_lock);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },    { "pid", required_argument, NULL, 'P' },
		{ "state", required_argument, NULL, 's' },   { "source", required_argument, NULL, 'S' },
		{ "starts", required_argument, NULL, 'n' },  { "clients", required_argument, NULL, 'c' },
		{ "every", required_argument, NULL, 'e' },   { NULL, 0, NULL, 0 },
	};
	pthread_t *threads;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'P': daemon_pid = atoi(optarg); break;
		case 's': state_path = optarg; break;
		case 'S': source = optarg; break;
		case 'n': starts = atol(optarg); break;
		case 'c': clients = atoi(optarg); break;
		case 'e': every = atol(optarg); break;
		default: return 2;
		}
	}
	if (!port || !daemon_pid || !state_path || !source || starts < 1 || clients < 1 || every < 1) {
		fprintf(stderr, "usage: sweepbench --port P --pid PID --state FILE --source URL [--starts N] [--clients C] [--every N]\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &began);
	printf("%9s %9s %8s %12s %9s %9s %9s %7s\n", "starts", "elapsed_s", "per_s", "state_bytes", "volumes", "rss_kib",
	       "hwm_kib", "errors");
	sample(0);
	threads = calloc((size_t)clients, sizeof(*threads));
	for (int i = 0; i < clients; i++)
		pthread_create(&threads[i], NULL, run_client, NULL);
	for (int i = 0; i < clients; i++)
		pthread_join(threads[i], NULL);
	if (starts % every)
		sample(starts);
	return atomic_load(&errors) ? 1 : 0;
}
