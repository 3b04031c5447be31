#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "nfsv3driver.h"
#include "harness.h"

/* How long a call may take, connect to last byte (a Mount waits for its helpers). */
#define HARNESS_CALL_TIMEOUT_MS 60000

const char *harness_build_path(const char *relative)
{
	static char path[PATH_MAX];
	const char *build = getenv("NFSV3_BUILD");
	char cwd[PATH_MAX];

	if (!build) {
		if (!getcwd(cwd, sizeof(cwd)))
			strcpy(cwd, ".");
		snprintf(path, sizeof(path), "%s/build/%s", cwd, relative);
	} else {
		snprintf(path, sizeof(path), "%s/%s", build, relative);
	}
	return path;
}

static int free_port(void)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	port = ntohs(addr.sin_port);
	close(fd);
	return port;
}

void daemon_init(struct daemon *dm, const char *extra)
{
	memset(dm, 0, sizeof(*dm));
	snprintf(dm->dir, sizeof(dm->dir), "/tmp/nfsv3-it.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dm->dir));
	/* Apps (uid 2000) must be able to reach the mount root, as on a cell. */
	chmod(dm->dir, 0755);
	snprintf(dm->root, sizeof(dm->root), "%s/root", dm->dir);
	snprintf(dm->sock, sizeof(dm->sock), "%s/d.sock", dm->dir);
	snprintf(dm->log, sizeof(dm->log), "%s/log", dm->dir);
	snprintf(dm->drivers, sizeof(dm->drivers), "%s/drivers", dm->dir);
	mkdir(dm->drivers, 0755);
	dm->port = free_port();
	dm->admin_port = free_port();
	snprintf(dm->extra, sizeof(dm->extra), "%s", extra ? extra : "");
}

int daemon_log_count(const struct daemon *dm, const char *text)
{
	FILE *f = fopen(dm->log, "r");
	char line[8192];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, text))
			n++;
	fclose(f);
	return n;
}

/* The last few hundred bytes of a log, on one line, for a failure message. */
static const char *log_tail(const char *path)
{
	static char tail[600];
	FILE *f = fopen(path, "re");
	size_t n = 0;

	tail[0] = '\0';
	if (!f)
		return "(unreadable)";
	if (fseek(f, -(long)(sizeof(tail) - 1), SEEK_END) != 0)
		rewind(f);
	n = fread(tail, 1, sizeof(tail) - 1, f);
	fclose(f);
	tail[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (tail[i] == '\n')
			tail[i] = '|';
	return tail;
}

void daemon_start(struct daemon *dm)
{
	char listen_tcp[64], admin[64], extra[1024];
	char *argv[64];
	int argc = 0, fd;

	snprintf(listen_tcp, sizeof(listen_tcp), "tcp://127.0.0.1:%d", dm->port);
	snprintf(admin, sizeof(admin), "tcp://127.0.0.1:%d", dm->admin_port);
	char listen_unix[320];
	snprintf(listen_unix, sizeof(listen_unix), "unix:%s", dm->sock);
	argv[argc++] = strdup(harness_build_path("bin/nfsv3driver"));
	argv[argc++] = "--listen";
	argv[argc++] = listen_unix;
	argv[argc++] = "--listen";
	argv[argc++] = listen_tcp;
	argv[argc++] = "--admin";
	argv[argc++] = admin;
	argv[argc++] = "--mount-root";
	argv[argc++] = dm->root;
	argv[argc++] = "--drivers-path";
	argv[argc++] = dm->drivers;
	argv[argc++] = "--allow-local-sources";
	argv[argc++] = "--log-level";
	argv[argc++] = "debug";
	snprintf(extra, sizeof(extra), "%s", dm->extra);
	for (char *tok = strtok(extra, " "); tok && argc < 60; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;

	int before = daemon_log_count(dm, "driver-server.started");
	dm->pid = fork();
	ck_assert_int_ge(dm->pid, 0);
	if (dm->pid == 0) {
		/* Start it as a default system would: soft descriptor limit 1024. */
		struct rlimit lim;
		if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_max > 1024) {
			lim.rlim_cur = 1024;
			setrlimit(RLIMIT_NOFILE, &lim);
		}
		fd = open(dm->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(argv[0]);
	for (int i = 0; i < 500; i++) {
		int status;
		if (daemon_log_count(dm, "driver-server.started") > before)
			return;
		if (waitpid(dm->pid, &status, WNOHANG) == dm->pid) {
			dm->pid = 0;
			ck_abort_msg("daemon exited at start, status %d; log %s ends: %s", status, dm->log, log_tail(dm->log));
		}
		usleep(10000);
	}
	ck_abort_msg("daemon did not print driver-server.started within 5 s; log %s ends: %s", dm->log, log_tail(dm->log));
}

int daemon_stop(struct daemon *dm)
{
	int status = -1;

	if (dm->pid <= 0)
		return -1;
	kill(dm->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(dm->pid, &status, WNOHANG) == dm->pid) {
			dm->pid = 0;
			return status;
		}
		usleep(10000);
	}
	kill(dm->pid, SIGKILL);
	waitpid(dm->pid, &status, 0);
	dm->pid = 0;
	ck_abort_msg("daemon did not exit within 10 s of SIGTERM");
	return status;
}

void daemon_kill9(struct daemon *dm)
{
	if (dm->pid <= 0)
		return;
	kill(dm->pid, SIGKILL);
	waitpid(dm->pid, NULL, 0);
	dm->pid = 0;
}

static int unmount_under(const char *prefix)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096], targets[64][PATH_MAX];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f) && n < 64) {
		char target[PATH_MAX];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", target) == 1 && strncmp(target, prefix, strlen(prefix)) == 0)
			snprintf(targets[n++], PATH_MAX, "%s", target);
	}
	fclose(f);
	for (int i = n - 1; i >= 0; i--)
		umount2(targets[i], MNT_DETACH);
	return n;
}

void daemon_cleanup(struct daemon *dm)
{
	char cmd[600];

	if (!dm->dir[0])
		return;
	if (dm->pid > 0)
		daemon_kill9(dm);
	while (unmount_under(dm->dir) > 0)
		;
	snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system '%s'", dm->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dm->dir);
	dm->dir[0] = '\0';
}

int mounts_under(const char *prefix)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], target[PATH_MAX];
	size_t len = strlen(prefix);
	int n = 0;

	ck_assert_msg(f != NULL, "/proc/self/mountinfo: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", target) == 1 && strncmp(target, prefix, len) == 0 &&
		    (target[len] == '/' || target[len] == '\0'))
			n++;
	fclose(f);
	return n;
}

void make_source_dir(const char *path)
{
	char cmd[PATH_MAX + 64];

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && echo hello > '%s/hello'", path, path);
	ck_assert_int_eq(system(cmd), 0);
}

/* The daemon's listeners as client addresses. */
static struct client_address unix_address(const struct daemon *dm)
{
	struct client_address a = {.is_unix = true};

	ck_assert_int_lt(snprintf(a.path, sizeof(a.path), "%s", dm->sock), (int)sizeof(a.path));
	return a;
}

static struct client_address tcp_address(int port)
{
	struct client_address a = {.host = "127.0.0.1"};

	snprintf(a.port, sizeof(a.port), "%d", port);
	return a;
}

static int connect_or_fail(const struct client_address *a)
{
	char why[512];
	int fd = client_connect(a, HARNESS_CALL_TIMEOUT_MS, why, sizeof(why));

	ck_assert_msg(fd >= 0, "%s", why);
	return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		data += n;
		len -= (size_t)n;
	}
}

/* Read until the connection closes or timeout_ms passes without data. */
static char *read_reply(int fd, int timeout_ms, bool first_answer_only, size_t *out_len)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (;;) {
		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		if (len + 1024 > cap)
			buf = realloc(buf, cap *= 2);
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		/* A complete answer with Content-Length: stop there. */
		char *head_end = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "Content-Length:");
		if (first_answer_only && head_end && cl && cl < head_end && len >= (size_t)(head_end + 4 - buf) + strtoul(cl + 15, NULL, 10))
			break;
	}
	buf[len] = '\0';
	if (out_len)
		*out_len = len;
	return buf;
}

/* One request on a new connection; fails the test unless a whole HTTP answer comes back. */
static void call_or_fail(const struct client_address *a, const char *method, const char *route, const char *body,
			 const char *extra_headers, struct client_response *response)
{
	const struct client_request request = {
		.method = method, .path = route, .headers = extra_headers, .body = body, .limit = 64 << 20,
	};
	char why[512];

	ck_assert_msg(client_call(a, &request, HARNESS_CALL_TIMEOUT_MS, response, why, sizeof(why)) == 0, "%s %s: %s",
		      method, route, why);
}

static json_t *exchange(const struct client_address *a, const char *method, const char *route, const char *body,
			const char *extra_headers, int *status)
{
	struct client_response response;
	json_error_t jerr;
	json_t *answer;

	call_or_fail(a, method, route, body, extra_headers, &response);
	if (status)
		*status = response.status;
	answer = json_loadb(response.body, response.body_len, 0, &jerr);
	ck_assert_msg(answer != NULL, "answer to %s is not JSON: %s", route, response.body);
	client_response_free(&response);
	return answer;
}

json_t *call_unix(const struct daemon *dm, const char *route, const char *body, const char *extra_headers, int *status)
{
	struct client_address a = unix_address(dm);

	return exchange(&a, "POST", route, body, extra_headers, status);
}

json_t *call_tcp(const struct daemon *dm, const char *route, const char *body, const char *extra_headers, int *status)
{
	struct client_address a = tcp_address(dm->port);

	return exchange(&a, "POST", route, body, extra_headers, status);
}

json_t *call_admin(const struct daemon *dm, const char *path, int *status)
{
	struct client_address a = tcp_address(dm->admin_port);

	return exchange(&a, "GET", path, NULL, NULL, status);
}

char *raw_admin_get(const struct daemon *dm, const char *path)
{
	struct client_address a = tcp_address(dm->admin_port);
	struct client_response response;
	char *text;

	call_or_fail(&a, "GET", path, NULL, NULL, &response);
	ck_assert_int_ge(asprintf(&text, "%s\r\n\r\n%s", response.head, response.body), 0);
	client_response_free(&response);
	return text;
}

char *raw_unix(const struct daemon *dm, const char *bytes, size_t len, int timeout_ms)
{
	struct client_address a = unix_address(dm);
	int fd = connect_or_fail(&a);
	char *reply;

	send_all(fd, bytes, len);
	reply = read_reply(fd, timeout_ms, false, NULL);
	close(fd);
	return reply;
}

char *raw_unix_trickle(const struct daemon *dm, const char *bytes, size_t len, int pause_ms)
{
	struct client_address a = unix_address(dm);
	int fd = connect_or_fail(&a);
	char *reply;

	for (size_t i = 0; i < len; i++) {
		send_all(fd, bytes + i, 1);
		usleep((useconds_t)pause_ms * 1000);
	}
	reply = read_reply(fd, 5000, true, NULL);
	close(fd);
	return reply;
}

const char *answer_err(json_t *answer)
{
	json_t *err = json_object_get(answer, "Err");
	json_t *safe;
	const char *text;

	if (!json_is_string(err))
		return "";
	text = json_string_value(err);
	if (text[0] == '{' && (safe = json_loads(text, 0, NULL))) {
		json_t *desc = json_object_get(safe, "SafeDescription");
		if (json_is_string(desc)) {
			/* Keep the unwrapped text alive with the answer. */
			json_object_set_new(answer, "_safe", json_string(json_string_value(desc)));
			json_decref(safe);
			return json_string_value(json_object_get(answer, "_safe"));
		}
		json_decref(safe);
	}
	return text;
}

int harness_run(Suite *suite)
{
	SRunner *sr = srunner_create(suite);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

void path_join(char *out, size_t size, const char *dir, const char *name)
{
	ck_assert_int_lt(snprintf(out, size, "%s/%s", dir, name), (int)size);
}

void harness_expect_refusal(const char *helper, int code, const char *err, int want, const char *needle)
{
	size_t len = strlen(err), prefix = strlen(helper);

	ck_assert_msg(code == want, "exit %d, wanted %d; stderr: %s", code, want, err);
	ck_assert_msg(strncmp(err, helper, prefix) == 0 && strncmp(err + prefix, ": ", 2) == 0, "stderr: %s", err);
	ck_assert_msg(len > 0 && strchr(err, '\n') == err + len - 1, "not exactly one line: %s", err);
	ck_assert_msg(strstr(err, needle) != NULL, "stderr lacks \"%s\": %s", needle, err);
}

int harness_private_tmpfs(const char *dir, unsigned long flags, const char *data)
{
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return -1;
	return mount("nfsv3-test", dir, "tmpfs", flags, data);
}

bool harness_can_mount_privately(const char *dir, const char *suite)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (harness_private_tmpfs(dir, 0, NULL) != 0) {
			fprintf(stderr, "%s: skipped: cannot mount a tmpfs in a new mount namespace (/ must be a mount point): %s\n",
				suite, strerror(errno));
			_exit(1);
		}
		_exit(0);
	}
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- the suites' shared fixture ---- */

struct daemon d;
char src[512];

void fixture_setup(void)
{
	static bool registered;

	/* A failed check ends the forked test at once, without the checked
	 * teardown: clean up at exit too, so no mount or idmapfs outlives it. */
	if (!registered)
		atexit(fixture_teardown);
	registered = true;
	daemon_init(&d, getenv("NFSV3_IT_EXTRA"));
	snprintf(src, sizeof(src), "%s/src", d.dir);
	make_source_dir(src);
	daemon_start(&d);
}

void fixture_teardown(void)
{
	daemon_cleanup(&d);
}

/* Call and expect success; returns the answer (caller decrefs). */
json_t *ok_call(bool tcp, const char *route, const char *body, const char *headers)
{
	int status = 0;
	json_t *a = tcp ? call_tcp(&d, route, body, headers, &status) : call_unix(&d, route, body, headers, &status);
	ck_assert_int_eq(status, 200);
	ck_assert_msg(strcmp(answer_err(a), "") == 0, "%s %s: Err \"%s\"", route, body, answer_err(a));
	return a;
}

/* Call and expect an Err containing want; status 200. */
void err_call(bool tcp, const char *route, const char *body, const char *headers, const char *want)
{
	int status = 0;
	json_t *a = tcp ? call_tcp(&d, route, body, headers, &status) : call_unix(&d, route, body, headers, &status);
	ck_assert_int_eq(status, 200);
	ck_assert_msg(strstr(answer_err(a), want), "%s %s: Err \"%s\", wanted \"%s\"", route, body, answer_err(a), want);
	json_decref(a);
}

void create_local(bool tcp, const char *name, const char *headers)
{
	char body[1024];
	snprintf(body, sizeof(body), "{\"Name\":\"%s\",\"Opts\":{\"source\":\"file://%s\"}}", name, src);
	json_decref(ok_call(tcp, NFSV3_ROUTE_CREATE, body, headers));
}

void assert_alive(void)
{
	int status;
	json_t *a = call_admin(&d, NFSV3_ADMIN_PING, &status);
	ck_assert_int_eq(status, 200);
	json_decref(a);
	json_decref(ok_call(false, NFSV3_ROUTE_ACTIVATE, "", NULL));
}
