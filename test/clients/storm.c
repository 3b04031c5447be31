/*
 * storm: misbehaving clients against the daemon's plugin listener, while
 * well-behaved clients ask it something and time the answer.
 *
 *   storm --target ADDR --probe ADDR [--probe ADDR...] --pid PID
 *         --storm idle|slowloris|body|chunked|pipeline|none [--count N]
 *         [--seconds S] [--probe-ms MS] [--trickle-ms MS]
 *
 * ADDR is tcp://127.0.0.1:PORT or unix:/path. The storms:
 *   idle       N connections opened at once (default 2000), nothing sent
 *   slowloris  N connections (default 1000) whose request headers arrive one
 *              byte every --trickle-ms (default 1000) and never end
 *   body       POSTs announcing and sending N MiB (default 100), one after
 *              another until the time is up
 *   chunked    the same as chunked bodies, with no announced length
 *   pipeline   one connection writing N requests (default 10000) without
 *              ever reading an answer
 * During the storm, every --probe-ms each probe address gets a List on a new
 * connection, and the first one also a List on a connection kept from before
 * the storm (as volman keeps one; if the server closes it while idle, the
 * probe opens another and counts it in kept_reconnects). Probes begin once the storm is under way
 * (all its connections opened, or its first bytes sent).
 *
 * The probes speak HTTP through the tools' small client (tools/client.h);
 * the storms write their bytes by hand, as no well-behaved client would.
 *
 * Prints one line of key=value: the probes' count, errors, p50/p99/max in
 * ms, the daemon's VmRSS before, at its peak and at the end (KiB), and what
 * became of the storm (connections still open, bytes written, the answer).
 * Exits 0 once the storm ran (the verdict is the caller's), 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

#define MAX_PROBES 8
#define MAX_SAMPLES 100000
#define PROBE_TIMEOUT_MS 5000

static const char list_request[] =
	"POST /VolumeDriver.List HTTP/1.1\r\nHost: driver\r\nContent-Length: 2\r\n\r\n{}";

struct address {
	bool unix_socket;
	struct sockaddr_storage sa;
	socklen_t len;
};

static struct address target;
static struct client_address probes[MAX_PROBES];
static unsigned n_probes;
static int daemon_pid;
static unsigned probe_ms = 100, trickle_ms = 1000;
static volatile bool storm_started, storm_done;

static double samples[MAX_SAMPLES];
static unsigned n_samples, probe_errors, kept_reconnects;
static char first_error[160];
static long rss_before, rss_peak, rss_end;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "storm: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void parse_address(const char *text, struct address *out)
{
	memset(out, 0, sizeof(*out));
	if (strncmp(text, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;
		un->sun_family = AF_UNIX;
		if (strlen(text + 5) >= sizeof(un->sun_path))
			die("%s: path too long", text);
		strcpy(un->sun_path, text + 5);
		out->unix_socket = true;
		out->len = sizeof(*un);
		return;
	}
	char host[64];
	int port;
	if (sscanf(text, "tcp://%63[0-9.]:%d", host, &port) != 2)
		die("%s: expected tcp://IPv4:PORT or unix:PATH", text);
	struct sockaddr_in *in = (struct sockaddr_in *)&out->sa;
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
		die("%s: bad IPv4 address", text);
	out->len = sizeof(*in);
}

static int connect_to(const struct address *addr)
{
	int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&addr->sa, addr->len) != 0) {
		close(fd);
		return -1;
	}
	if (!addr->unix_socket)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	return fd;
}

static long read_rss(void)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", daemon_pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* ---- Probes ------------------------------------------------------------ */

static void probe_failed(const char *fmt, ...)
{
	pthread_mutex_lock(&lock);
	if (!probe_errors++) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(first_error, sizeof(first_error), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&lock);
}

/* A probe's connection, through the shared client; -1 with why. */
static int connect_probe(unsigned i, char *why, size_t why_size)
{
	return client_connect(&probes[i], PROBE_TIMEOUT_MS, why, why_size);
}

/* Send a List on probe i's connection fd and read one whole answer; returns 0 when it is a 200. */
static int ask_list(int fd, unsigned i, char *why, size_t why_size)
{
	const struct client_request request = {
		.method = "POST", .path = "/VolumeDriver.List", .body = "{}", .keep_alive = true, .limit = 8192,
	};
	struct client_response response;
	int status;

	if (client_exchange(fd, &probes[i], &request, PROBE_TIMEOUT_MS, &response, why, why_size) != 0)
		return -1;
	status = response.status;
	if (status != 200)
		snprintf(why, why_size, "answer: %.60s", response.head);
	client_response_free(&response);
	return status == 200 ? 0 : -1;
}

static void record(double ms)
{
	pthread_mutex_lock(&lock);
	if (n_samples < MAX_SAMPLES)
		samples[n_samples++] = ms;
	pthread_mutex_unlock(&lock);
}

static void *probe_thread(void *arg)
{
	(void)arg;
	char why[160];
	/* Opened before the storm, like volman's kept connection. */
	int kept = connect_probe(0, why, sizeof(why));
	if (kept < 0)
		probe_failed("kept connection: %s", why);
	else if (ask_list(kept, 0, why, sizeof(why)) != 0)
		probe_failed("kept connection, before the storm: %s", why);
	while (!storm_started)
		usleep(1000);
	while (!storm_done) {
		double tick = now_ms();
		for (unsigned i = 0; i < n_probes; i++) {
			double t0 = now_ms();
			int fd = connect_probe(i, why, sizeof(why));
			if (fd < 0) {
				probe_failed("probe %u: %s", i, why);
				continue;
			}
			if (ask_list(fd, i, why, sizeof(why)) == 0)
				record(now_ms() - t0);
			else
				probe_failed("probe %u (new connection): %s", i, why);
			close(fd);
		}
		/* A kept connection the server closed while it was idle: open
		 * another, as an HTTP client does (counted apart). */
		char byte;
		if (kept >= 0 && recv(kept, &byte, 1, MSG_DONTWAIT | MSG_PEEK) == 0) {
			kept_reconnects++;
			close(kept);
			kept = connect_probe(0, why, sizeof(why));
		}
		if (kept >= 0) {
			double t0 = now_ms();
			if (ask_list(kept, 0, why, sizeof(why)) == 0) {
				record(now_ms() - t0);
			} else {
				probe_failed("kept connection: %s", why);
				close(kept);
				kept = connect_probe(0, why, sizeof(why));
			}
		}
		double left = probe_ms - (now_ms() - tick);
		if (left > 0)
			usleep((useconds_t)(left * 1000));
	}
	if (kept >= 0)
		close(kept);
	return NULL;
}

static void *rss_thread(void *arg)
{
	(void)arg;
	while (!storm_done) {
		long kib = read_rss();
		if (kib > rss_peak)
			rss_peak = kib;
		usleep(20000);
	}
	return NULL;
}

/* ---- Storms ------------------------------------------------------------ */

/* How many of fds the server has closed (reading end of stream or an error;
 * whatever it sent before is discarded). */
static unsigned count_closed(int *fds, unsigned n)
{
	unsigned closed = 0;
	char buf[4096];
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] < 0) {
			closed++;
			continue;
		}
		for (;;) {
			ssize_t r = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);
			if (r > 0)
				continue;
			if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				closed++;
			break;
		}
	}
	return closed;
}

static void sleep_until(double t)
{
	double left;
	while ((left = t - now_ms()) > 0)
		usleep((useconds_t)(left > 100 ? 100000 : left * 1000));
}

static void storm_connections(unsigned count, unsigned seconds, bool trickle, char *result, size_t size)
{
	int *fds = calloc(count, sizeof(int));
	unsigned refused = 0;
	double t0 = now_ms();
	for (unsigned i = 0; i < count; i++) {
		fds[i] = connect_to(&target);
		if (fds[i] < 0) {
			refused++;
			continue;
		}
		if (trickle) {
			static const char start[] = "POST /VolumeDriver.List HTTP/1.1\r\nHost: driver\r\n";
			send(fds[i], start, sizeof(start) - 1, MSG_NOSIGNAL);
		}
	}
	double opened_ms = now_ms() - t0;
	storm_started = true;
	double end = now_ms() + seconds * 1000.0;
	unsigned sent = 0;
	/* Each --trickle-ms, one more byte of a header that never ends. */
	while (now_ms() < end) {
		sleep_until(now_ms() + trickle_ms < end ? now_ms() + trickle_ms : end);
		if (!trickle)
			continue;
		for (unsigned i = 0; i < count; i++) {
			if (fds[i] < 0)
				continue;
			if (send(fds[i], "X", 1, MSG_NOSIGNAL) != 1) {
				close(fds[i]);
				fds[i] = -1;
			} else {
				sent++;
			}
		}
	}
	storm_done = true;
	unsigned closed = count_closed(fds, count);
	snprintf(result, size, "connections=%u opened_in_ms=%.0f connect_failed=%u closed_by_server=%u still_open=%u trickled_bytes=%u",
		 count, opened_ms, refused, closed, count - closed, sent);
	for (unsigned i = 0; i < count; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}

/* Read what the server answered, without waiting long; true when the
 * server closed the connection after it (end of stream or a reset). */
static bool read_answer(int fd, char *out, size_t size, int wait_ms)
{
	static char rest[4096];
	size_t got = 0;
	bool closed = false;
	out[0] = '\0';
	double end = now_ms() + wait_ms;
	while (got < size - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)(end - now_ms());
		if (left <= 0 || poll(&p, 1, left) != 1)
			break;
		ssize_t n = recv(fd, out + got, size - 1 - got, 0);
		if (n <= 0) {
			closed = true;
			break;
		}
		got += n;
	}
	/* Past the answer (or a full buffer): does the server close? */
	while (!closed) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)(end - now_ms());
		if (left <= 0 || poll(&p, 1, left) != 1)
			break;
		closed = recv(fd, rest, sizeof(rest), 0) <= 0;
	}
	out[got] = '\0';
	char *eol = strstr(out, "\r\n");
	if (eol)
		*eol = '\0';
	for (char *c = out; *c; c++)
		if (*c == ' ')
			*c = '_';
	return closed;
}

/* One POST of mib MiB; what became of it goes to *stop, the answer's status
 * line to answer. Returns the body bytes the server took. */
static uint64_t send_body(unsigned mib, bool chunked, double end, const char **stop, char *answer, size_t size,
			  bool *closed)
{
	int fd = connect_to(&target);
	if (fd < 0)
		die("body: connect: %s", strerror(errno));
	uint64_t total = (uint64_t)mib << 20;
	char head[256];
	int head_len = chunked ? snprintf(head, sizeof(head), "POST /VolumeDriver.Create HTTP/1.1\r\nHost: driver\r\n"
						 "Transfer-Encoding: chunked\r\n\r\n")
			       : snprintf(head, sizeof(head), "POST /VolumeDriver.Create HTTP/1.1\r\nHost: driver\r\n"
						 "Content-Length: %llu\r\n\r\n", (unsigned long long)total);
	send(fd, head, head_len, MSG_NOSIGNAL);
	static char chunk[65536 + 32];
	size_t chunk_len;
	if (chunked) {
		int n = snprintf(chunk, sizeof(chunk), "10000\r\n");
		memset(chunk + n, 'a', 65536);
		memcpy(chunk + n + 65536, "\r\n", 2);
		chunk_len = n + 65536 + 2;
	} else {
		memset(chunk, 'a', 65536);
		chunk_len = 65536;
	}
	/* Blocking writes, each bounded, until everything is sent, the server
	 * closes, or the storm's time is up. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &(struct timeval){ .tv_sec = 1 }, sizeof(struct timeval));
	uint64_t sent = 0;
	*stop = "all_sent";
	while (sent < total) {
		if (now_ms() > end) {
			*stop = "time_up";
			break;
		}
		ssize_t n = send(fd, chunk, chunk_len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n <= 0) {
			*stop = errno == EPIPE ? "server_closed" : errno == ECONNRESET ? "server_reset" : "send_error";
			break;
		}
		sent += n;
	}
	*closed = read_answer(fd, answer, size, 2000);
	close(fd);
	return sent;
}

/* Bodies of mib MiB, one after another, until the storm's time is up. */
static void storm_body(unsigned mib, unsigned seconds, bool chunked, char *result, size_t size)
{
	storm_started = true;
	double t0 = now_ms(), end = t0 + seconds * 1000.0;
	unsigned bodies = 0, refused = 0, closed_after = 0;
	bool closed;
	uint64_t sent = 0;
	const char *stop = "none";
	char answer[512] = "";
	do {
		sent += send_body(mib, chunked, end, &stop, answer, sizeof(answer), &closed);
		bodies++;
		if (strncmp(answer, "HTTP/1.1_413", 12) == 0)
			refused++;
		closed_after += closed;
	} while (now_ms() < end);
	storm_done = true;
	snprintf(result, size,
		 "body_mib=%u bodies=%u answered_413=%u closed_after_answer=%u sent_mib=%.0f last_send_ended=%s last_answer=%s",
		 mib, bodies, refused, closed_after, sent / 1048576.0, stop, answer[0] ? answer : "none");
}

static void storm_pipeline(unsigned count, unsigned seconds, char *result, size_t size)
{
	int fd = connect_to(&target);
	if (fd < 0)
		die("pipeline: connect: %s", strerror(errno));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	size_t one = sizeof(list_request) - 1, total = one * count, sent = 0;
	char *all = malloc(total);
	for (unsigned i = 0; i < count; i++)
		memcpy(all + i * one, list_request, one);
	storm_started = true;
	double end = now_ms() + seconds * 1000.0;
	while (sent < total && now_ms() < end) {
		ssize_t n = send(fd, all + sent, total - sent, MSG_NOSIGNAL);
		if (n > 0) {
			sent += n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			break;
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		poll(&p, 1, 100);
	}
	double sent_at = now_ms();
	sleep_until(end);
	storm_done = true;
	/* Whether the server still holds the connection (it owes answers to a
	 * client that never read them). */
	struct pollfd p = { .fd = fd, .events = POLLIN };
	bool readable = poll(&p, 1, 0) == 1;
	snprintf(result, size, "requests=%u requests_written=%zu all_written=%s written_ms_before_end=%.0f answers_waiting=%s",
		 count, sent / one, sent == total ? "yes" : "no", end - sent_at, readable ? "yes" : "no");
	free(all);
	close(fd);
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double percentile(double p)
{
	if (!n_samples)
		return -1;
	unsigned i = (unsigned)(p * (n_samples - 1) + 0.5);
	return samples[i];
}

int main(int argc, char **argv)
{
	const char *storm = NULL;
	unsigned count = 0, seconds = 5;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
		if (!value)
			die("%s needs a value", arg);
		i++;
		if (strcmp(arg, "--target") == 0)
			parse_address(value, &target);
		else if (strcmp(arg, "--probe") == 0 && n_probes < MAX_PROBES) {
			char why[160];
			if (client_parse_address(value, &probes[n_probes++], why, sizeof(why)) != 0)
				die("%s", why);
		}
		else if (strcmp(arg, "--pid") == 0)
			daemon_pid = atoi(value);
		else if (strcmp(arg, "--storm") == 0)
			storm = value;
		else if (strcmp(arg, "--count") == 0)
			count = strtoul(value, NULL, 10);
		else if (strcmp(arg, "--seconds") == 0)
			seconds = strtoul(value, NULL, 10);
		else if (strcmp(arg, "--probe-ms") == 0)
			probe_ms = strtoul(value, NULL, 10);
		else if (strcmp(arg, "--trickle-ms") == 0) {
			if ((trickle_ms = strtoul(value, NULL, 10)) == 0)
				die("--trickle-ms needs a positive number");
		}
		else
			die("unknown argument %s", arg);
	}
	if (!storm || !target.len || !n_probes || daemon_pid <= 0)
		die("usage: storm --target ADDR --probe ADDR --pid PID --storm idle|slowloris|body|chunked|pipeline|none "
		    "[--count N] [--seconds S] [--probe-ms MS] [--trickle-ms MS]");
	signal(SIGPIPE, SIG_IGN);
	struct rlimit lim;
	if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
		lim.rlim_cur = lim.rlim_max;
		setrlimit(RLIMIT_NOFILE, &lim);
	}

	rss_before = rss_peak = read_rss();
	if (rss_before < 0)
		die("no process %d", daemon_pid);
	pthread_t probe, rss;
	pthread_create(&rss, NULL, rss_thread, NULL);
	pthread_create(&probe, NULL, probe_thread, NULL);
	usleep(100000);

	char result[512];
	if (strcmp(storm, "idle") == 0)
		storm_connections(count ? count : 2000, seconds, false, result, sizeof(result));
	else if (strcmp(storm, "slowloris") == 0)
		storm_connections(count ? count : 1000, seconds, true, result, sizeof(result));
	else if (strcmp(storm, "body") == 0)
		storm_body(count ? count : 100, seconds, false, result, sizeof(result));
	else if (strcmp(storm, "chunked") == 0)
		storm_body(count ? count : 100, seconds, true, result, sizeof(result));
	else if (strcmp(storm, "pipeline") == 0)
		storm_pipeline(count ? count : 10000, seconds, result, sizeof(result));
	else if (strcmp(storm, "none") == 0) {
		storm_started = true;
		sleep_until(now_ms() + seconds * 1000.0);
		storm_done = true;
		snprintf(result, sizeof(result), "none=1");
	} else
		die("unknown storm %s", storm);
	storm_done = true;
	pthread_join(probe, NULL);
	pthread_join(rss, NULL);
	rss_end = read_rss();

	qsort(samples, n_samples, sizeof(double), compare);
	printf("storm=%s probes=%u probe_errors=%u kept_reconnects=%u p50_ms=%.1f p99_ms=%.1f max_ms=%.1f rss_before_kib=%ld rss_peak_kib=%ld "
	       "rss_end_kib=%ld %s%s%s\n",
	       storm, n_samples + probe_errors, probe_errors, kept_reconnects, percentile(0.5), percentile(0.99),
	       n_samples ? samples[n_samples - 1] : -1.0, rss_before, rss_peak, rss_end, result,
	       probe_errors ? " first_error=" : "", probe_errors ? first_error : "");
	return 0;
}
