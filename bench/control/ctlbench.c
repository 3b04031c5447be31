/* ctlbench: load generator for the driver's control path (bench/control/run.sh
 * drives it).  Plain blocking sockets and pthreads; a new TCP connection per
 * call, as volman does, unless --keepalive.  Not a test: it measures and prints.
 *
 *   ctlbench freeport
 *   ctlbench waitping ADMIN_PORT SECONDS
 *   ctlbench seq      PORT SOURCE ITER [KEEPALIVE]
 *   ctlbench conc     PORT SOURCE CLIENTS OPS VOLUMES [KEEPALIVE]
 *   ctlbench hangping PORT ADMIN_PORT SOURCE HANGS PINGS
 *   ctlbench create   PORT SOURCE N [mount]
 *   ctlbench teardown PORT N
 *   ctlbench scrape   ADMIN_PORT N
 *   ctlbench parts    HELPER MOUNT_ROOT SOURCE N STATE_BYTES
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

#define RESP_MAX 65536

struct conn {
	int port;
	int fd;         /* -1 when not connected */
	int keepalive;
};

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ctlbench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int dial(int port)
{
	struct client_address a = {.host = "127.0.0.1"};
	char why[256];

	snprintf(a.port, sizeof a.port, "%d", port);
	for (int tries = 0; tries < 50; tries++) {
		int fd = client_connect(&a, 5000, why, sizeof why);
		if (fd >= 0)
			return fd;
		if (errno != EAGAIN && errno != EADDRNOTAVAIL && errno != ECONNREFUSED)
			return -1;
		usleep(1000); /* ephemeral ports or backlog exhausted: retry briefly */
	}
	return -1;
}

/* One HTTP exchange.  Returns the HTTP status (body in resp) or -1 on a
 * transport error.  The connection is kept open for the next call unless
 * --keepalive is off or the server closes it. */
static int http_once(struct conn *c, const char *method, const char *path, const char *body, char *resp)
{
	const struct client_request req = {
		.method = method, .path = path, .body = body, .keep_alive = true, .limit = RESP_MAX - 1,
	};
	struct client_address a = {.host = "127.0.0.1"};
	struct client_response r;
	char why[256];

	snprintf(a.port, sizeof a.port, "%d", c->port);
	if (c->fd < 0 && (c->fd = dial(c->port)) < 0)
		return -1;
	if (client_exchange(c->fd, &a, &req, 60000, &r, why, sizeof why) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	int status = r.status;
	memcpy(resp, r.body, r.body_len + 1);
	if (!c->keepalive || r.closes) {
		close(c->fd);
		c->fd = -1;
	}
	client_response_free(&r);
	return status;
}

/* A kept-alive connection may have been closed by the server's idle timer:
 * retry once on a fresh connection. */
static int http(struct conn *c, const char *method, const char *path, const char *body, char *resp)
{
	int reused = c->fd >= 0;
	int st = http_once(c, method, path, body, resp);
	if (st < 0 && reused)
		st = http_once(c, method, path, body, resp);
	return st;
}

/* The value of "Err" in a driver reply: "" on success. */
static const char *reply_err(const char *resp)
{
	static __thread char e[512];
	const char *p = strstr(resp, "\"Err\":\"");
	if (!p)
		return strstr(resp, "\"Err\"") ? "(Err not a string)" : "";
	p += 7;
	size_t i = 0;
	while (*p && *p != '"' && i < sizeof e - 1) {
		if (*p == '\\' && p[1])
			p++;
		e[i++] = *p++;
	}
	e[i] = 0;
	return e;
}

enum op { OP_CREATE, OP_MOUNT, OP_UNMOUNT, OP_REMOVE, OP_N };
static const char *const op_route[OP_N] = { "/VolumeDriver.Create", "/VolumeDriver.Mount",
					    "/VolumeDriver.Unmount", "/VolumeDriver.Remove" };
static const char *const op_name[OP_N] = { "Create", "Mount", "Unmount", "Remove" };

/* Runs one volume call; returns 0, or 1 and a message in err. */
static int volume_call(struct conn *c, enum op op, const char *vol, const char *source, char *err, size_t errlen)
{
	char body[512], resp[RESP_MAX];
	if (op == OP_CREATE)
		snprintf(body, sizeof body, "{\"Name\":\"%s\",\"Opts\":{\"source\":\"file://%s\"}}", vol, source);
	else
		snprintf(body, sizeof body, "{\"Name\":\"%s\"}", vol);
	int st = http(c, "POST", op_route[op], body, resp);
	if (st < 0) {
		snprintf(err, errlen, "%s %s: transport error", op_name[op], vol);
		return 1;
	}
	const char *e = reply_err(resp);
	if (st != 200 || *e) {
		snprintf(err, errlen, "%s %s: HTTP %d %s", op_name[op], vol, st, e);
		return 1;
	}
	if (op == OP_MOUNT && !strstr(resp, "\"Mountpoint\":\"/")) {
		snprintf(err, errlen, "Mount %s: no Mountpoint in %.100s", vol, resp);
		return 1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p / 100.0 * (n - 1) + 0.5);
	return v[i];
}

static void report_lat(const char *label, double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	printf("%s n=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", label, n, pct(v, n, 50), pct(v, n, 99),
	       n ? v[n - 1] : 0);
}

/* (a) Create, Mount, Unmount, Remove of one volume, ITER times. */
static int cmd_seq(int port, const char *source, int iter, int keepalive)
{
	struct conn c = { port, -1, keepalive };
	double *cycle = calloc(iter, sizeof *cycle), *per[OP_N];
	for (int o = 0; o < OP_N; o++)
		per[o] = calloc(iter, sizeof **per);
	int errors = 0;
	char err[600];
	for (int i = 0; i < iter; i++) {
		char vol[64];
		snprintf(vol, sizeof vol, "seq%d", i);
		double t0 = now_ms();
		for (int o = 0; o < OP_N; o++) {
			double t = now_ms();
			if (volume_call(&c, o, vol, source, err, sizeof err) && errors++ < 5)
				fprintf(stderr, "seq: %s\n", err);
			per[o][i] = now_ms() - t;
		}
		cycle[i] = now_ms() - t0;
	}
	report_lat("cycle", cycle, iter);
	for (int o = 0; o < OP_N; o++)
		report_lat(op_name[o], per[o], iter);
	printf("errors %d\n", errors);
	return 0;
}

/* (b) Clients each own VOLUMES/CLIENTS volumes, so every call is valid: a
 * client picks one of its volumes at random and makes that volume's next call
 * in the cycle Create, Mount, Unmount, Remove.  Any non-empty Err is a real
 * failure. */
struct client {
	pthread_t tid;
	int id, nvol, ops, port, keepalive;
	const char *source;
	int errors, cleanup_errors, done_ops;
	char first_err[600];
};

static void *client_main(void *arg)
{
	struct client *cl = arg;
	struct conn c = { cl->port, -1, cl->keepalive };
	int *phase = calloc(cl->nvol, sizeof *phase);
	unsigned seed = 0x9e3779b9u * (cl->id + 1);
	char vol[64], err[600];
	for (int i = 0; i < cl->ops; i++) {
		int v = rand_r(&seed) % cl->nvol;
		snprintf(vol, sizeof vol, "c%d=v%d", cl->id, v);
		if (volume_call(&c, phase[v], vol, cl->source, err, sizeof err)) {
			if (!cl->errors++)
				snprintf(cl->first_err, sizeof cl->first_err, "%s", err);
		}
		phase[v] = (phase[v] + 1) % OP_N;
		cl->done_ops++;
	}
	/* Leave nothing behind: finish each volume's cycle (not timed). */
	for (int v = 0; v < cl->nvol; v++) {
		snprintf(vol, sizeof vol, "c%d=v%d", cl->id, v);
		while (phase[v] != 0) {
			if (volume_call(&c, phase[v], vol, cl->source, err, sizeof err))
				cl->cleanup_errors++;
			phase[v] = (phase[v] + 1) % OP_N;
		}
	}
	if (c.fd >= 0)
		close(c.fd);
	free(phase);
	return NULL;
}

static int cmd_conc(int port, const char *source, int clients, int ops, int volumes, int keepalive)
{
	struct client *cl = calloc(clients, sizeof *cl);
	double t0 = now_ms();
	for (int i = 0; i < clients; i++) {
		cl[i] = (struct client){ .id = i, .nvol = volumes / clients, .port = port, .keepalive = keepalive,
					 .source = source, .ops = ops / clients + (i < ops % clients) };
		if (pthread_create(&cl[i].tid, NULL, client_main, &cl[i]))
			fail("pthread_create");
	}
	int errors = 0, cleanup = 0, done = 0;
	for (int i = 0; i < clients; i++) {
		pthread_join(cl[i].tid, NULL);
		errors += cl[i].errors;
		cleanup += cl[i].cleanup_errors;
		done += cl[i].done_ops;
		if (cl[i].errors)
			fprintf(stderr, "conc client %d: %d errors, first: %s\n", i, cl[i].errors, cl[i].first_err);
	}
	double secs = (now_ms() - t0) / 1e3;
	/* The clean-up calls are inside the wall time; count only timed ops. */
	printf("ops %d errors %d cleanup_errors %d seconds %.3f ops_per_s %.0f\n", done, errors, cleanup, secs,
	       done / secs);
	return 0;
}

/* (c) HANGS Mounts that hang in the helper, and PINGS pings meanwhile. */
struct hanger {
	pthread_t tid;
	int port, i;
	double ms;
	char err[600];
};

static void *hang_main(void *arg)
{
	struct hanger *h = arg;
	struct conn c = { h->port, -1, 0 };
	char vol[64];
	snprintf(vol, sizeof vol, "hang%d", h->i);
	double t = now_ms();
	if (!volume_call(&c, OP_MOUNT, vol, NULL, h->err, sizeof h->err))
		snprintf(h->err, sizeof h->err, "(mount succeeded?)");
	h->ms = now_ms() - t;
	return NULL;
}

static int cmd_hangping(int port, int admin, const char *source, int hangs, int pings)
{
	struct conn c = { port, -1, 0 };
	char err[600], vol[64], resp[RESP_MAX];
	for (int i = 0; i < hangs; i++) {
		snprintf(vol, sizeof vol, "hang%d", i);
		if (volume_call(&c, OP_CREATE, vol, source, err, sizeof err))
			fail("%s", err);
	}
	if (hangs < 1 || pings < 1)
		fail("hangping: HANGS and PINGS must be positive");
	/* The same pings with nothing hanging first: what the machine gives. */
	struct conn a = { admin, -1, 0 };
	double *lat = calloc(pings, sizeof *lat);
	int bad = 0;
	for (int i = 0; i < pings; i++) {
		double t = now_ms();
		if (http(&a, "GET", "/ping", NULL, resp) != 200)
			bad++;
		lat[i] = now_ms() - t;
	}
	report_lat("ping_idle", lat, pings);
	bad = 0;
	struct hanger *h = calloc(hangs, sizeof *h);
	double t0 = now_ms();
	for (int i = 0; i < hangs; i++) {
		h[i] = (struct hanger){ .port = port, .i = i };
		pthread_create(&h[i].tid, NULL, hang_main, &h[i]);
	}
	usleep(200 * 1000); /* let every helper start */
	double p0 = now_ms();
	for (int i = 0; i < pings; i++) {
		double t = now_ms();
		if (http(&a, "GET", "/ping", NULL, resp) != 200)
			bad++;
		lat[i] = now_ms() - t;
	}
	double pings_end = now_ms();
	for (int i = 0; i < hangs; i++)
		pthread_join(h[i].tid, NULL);
	double all_end = now_ms();
	report_lat("ping", lat, pings);
	printf("ping_failures %d pings_started_ms %.0f pings_ended_ms %.0f mounts_returned_ms %.0f\n", bad, p0 - t0,
	       pings_end - t0, all_end - t0);
	double slowest = 0;
	for (int i = 0; i < hangs; i++)
		slowest = h[i].ms > slowest ? h[i].ms : slowest;
	printf("hung_mount_slowest_ms %.0f first_error: %s\n", slowest, h[0].err);
	for (int i = 0; i < hangs; i++) {
		snprintf(vol, sizeof vol, "hang%d", i);
		volume_call(&c, OP_REMOVE, vol, NULL, err, sizeof err);
	}
	return 0;
}

/* (d) N volumes created (and mounted) for the memory figures. */
static int cmd_create(int port, const char *source, int n, int mount)
{
	struct conn c = { port, -1, 1 };
	char err[600], vol[64];
	int errors = 0;
	for (int i = 0; i < n; i++) {
		snprintf(vol, sizeof vol, "mem%d=0123456789abcdef0123456789abcdef", i);
		for (int o = OP_CREATE; o <= (mount ? OP_MOUNT : OP_CREATE); o++)
			if (volume_call(&c, o, vol, source, err, sizeof err) && errors++ < 3)
				fprintf(stderr, "create: %s\n", err);
	}
	printf("errors %d\n", errors);
	return errors != 0;
}

static int cmd_teardown(int port, int n)
{
	struct conn c = { port, -1, 1 };
	char err[600], vol[64];
	for (int i = 0; i < n; i++) {
		snprintf(vol, sizeof vol, "mem%d=0123456789abcdef0123456789abcdef", i);
		volume_call(&c, OP_UNMOUNT, vol, NULL, err, sizeof err); /* "not mounted" is fine */
		volume_call(&c, OP_REMOVE, vol, NULL, err, sizeof err);
	}
	return 0;
}

/* Where a cycle's time goes, without the daemon: the pieces it is made of,
 * timed one by one (spawn+wait of a trivial program, of the helper's bind and
 * unmount verbs, and one atomic state write: write, fsync, rename, fsync dir). */
extern char **environ;

static double run_prog(char *const argv[])
{
	pid_t pid;
	int status;
	double t = now_ms();
	if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ))
		fail("spawn %s", argv[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("%s %s exited with %d", argv[0], argv[1] ? argv[1] : "", status);
	return now_ms() - t;
}

static int cmd_parts(const char *helper, const char *root, const char *source, int n, int state_bytes)
{
	double *tt = calloc(n, sizeof(double)), *bind = calloc(n, sizeof(double)), *unb = calloc(n, sizeof(double)),
	       *st = calloc(n, sizeof(double));
	char *text = malloc(state_bytes + 1), tmp[4096], path[4096];
	memset(text, 'x', state_bytes);
	snprintf(path, sizeof path, "%s/parts-state.json", root);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "parts%d", i);
		tt[i] = run_prog((char *[]){ "/bin/true", NULL });
		bind[i] = run_prog((char *[]){ (char *)helper, "bind", (char *)root, (char *)source, name, "rw", NULL });
		unb[i] = run_prog((char *[]){ (char *)helper, "unmount", (char *)root, name, "lazy", NULL });
		double t = now_ms();
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, text, state_bytes) != state_bytes || fsync(fd) || close(fd) || rename(tmp, path))
			fail("state write %s: %s", tmp, strerror(errno));
		int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		fsync(dfd);
		close(dfd);
		st[i] = now_ms() - t;
	}
	unlink(path);
	report_lat("spawn_true", tt, n);
	report_lat("helper_bind", bind, n);
	report_lat("helper_unmount", unb, n);
	report_lat("state_write", st, n);
	return 0;
}

/* GET /metrics N times over one kept-alive connection, and once more on a
 * new connection each time (what a scraper that does not keep its
 * connection pays). */
static int cmd_scrape(int admin, int n)
{
	struct conn kept = { admin, -1, 1 }, fresh = { admin, -1, 0 };
	double *lat = calloc(n, sizeof *lat), *lat_new = calloc(n, sizeof *lat_new);
	static char resp[RESP_MAX];
	size_t bytes = 0;

	for (int i = 0; i < n; i++) {
		double t = now_ms();
		if (http(&kept, "GET", "/metrics", NULL, resp) != 200)
			fail("GET /metrics failed on scrape %d", i);
		lat[i] = now_ms() - t;
		bytes = strlen(resp);
		t = now_ms();
		if (http(&fresh, "GET", "/metrics", NULL, resp) != 200)
			fail("GET /metrics failed on scrape %d (new connection)", i);
		lat_new[i] = now_ms() - t;
	}
	if (!strstr(resp, "# TYPE nfsv3driver_mounts gauge"))
		fail("GET /metrics answered without nfsv3driver_mounts");
	report_lat("scrape", lat, n);
	report_lat("scrape_new_conn", lat_new, n);
	printf("scrape_bytes %zu\n", bytes);
	return 0;
}

static int cmd_freeport(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof sa;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || getsockname(fd, (struct sockaddr *)&sa, &len))
		fail("freeport: %s", strerror(errno));
	printf("%d\n", ntohs(sa.sin_port));
	close(fd);
	return 0;
}

static int cmd_waitping(int admin, double secs)
{
	struct conn a = { admin, -1, 0 };
	char resp[RESP_MAX];
	for (double end = now_ms() + secs * 1e3; now_ms() < end; usleep(20 * 1000))
		if (http(&a, "GET", "/ping", NULL, resp) == 200)
			return 0;
	fail("no answer to /ping on port %d after %.0f s", admin, secs);
}

static int num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 0 || v > 1000000000)
		fail("not a number: %s", s);
	return (int)v;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *cmd = argc > 1 ? argv[1] : "";
	if (!strcmp(cmd, "freeport"))
		return cmd_freeport();
	if (!strcmp(cmd, "waitping") && argc == 4)
		return cmd_waitping(num(argv[2]), num(argv[3]));
	if (!strcmp(cmd, "seq") && (argc == 5 || argc == 6))
		return cmd_seq(num(argv[2]), argv[3], num(argv[4]), argc == 6);
	if (!strcmp(cmd, "conc") && (argc == 7 || argc == 8))
		return cmd_conc(num(argv[2]), argv[3], num(argv[4]), num(argv[5]), num(argv[6]), argc == 8);
	if (!strcmp(cmd, "hangping") && argc == 7)
		return cmd_hangping(num(argv[2]), num(argv[3]), argv[4], num(argv[5]), num(argv[6]));
	if (!strcmp(cmd, "create") && (argc == 5 || argc == 6))
		return cmd_create(num(argv[2]), argv[3], num(argv[4]), argc == 6);
	if (!strcmp(cmd, "scrape") && argc == 4)
		return cmd_scrape(num(argv[2]), num(argv[3]));
	if (!strcmp(cmd, "teardown") && argc == 4)
		return cmd_teardown(num(argv[2]), num(argv[3]));
	if (!strcmp(cmd, "parts") && argc == 7)
		return cmd_parts(argv[2], argv[3], argv[4], num(argv[5]), num(argv[6]));
	fprintf(stderr, "usage: see the comment at the top of bench/control/ctlbench.c\n");
	return 2;
}
