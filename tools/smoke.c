/*
 * nfsv3driver-smoke: the operator's end-to-end check against a running
 * driver (`nfsv3driver smoke ARGS` runs it with the same arguments).
 *
 * It drives the driver the way volman does (a new connection per call, no
 * Accept header, no mount ID): Activate, Create, Mount, then writes, reads,
 * checks the owner of and deletes a file as the application's uid, then
 * Unmount and Remove. Each step is printed with its time; the exit status is
 * 0 when every step passed, 1 when one failed (after undoing what it
 * created), 2 on a usage error.
 *
 * It talks to the driver as volman does, because that is the client a cell
 * serves: no Accept header means option mistakes surface at Mount, as volman
 * shows them. The file operations run in a child that has become the
 * application's uid and gid, so the check sees what an application would
 * see, including the owner the idmapping gives it. The child works relative
 * to a directory descriptor the parent opened on the mountpoint, as an
 * application in a container reaches its volume without walking the
 * driver's mount root. All of this blocks on the mount, which is why it is
 * a program of its own and not part of the daemon.
 *
 * Each call is one request on a new connection with a deadline, through
 * the small blocking client the test harness and the benches share
 * (client.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "client.h"
#include "nfsv3driver.h"

#define SMOKE_EXIT_OK 0
#define SMOKE_EXIT_FAILED 1
#define SMOKE_EXIT_USAGE 2

#define SMOKE_DEFAULT_APP_ID 2000
#define SMOKE_DEFAULT_TIMEOUT_S 60
#define SMOKE_MAX_RESPONSE (1024 * 1024) /* far above any answer the driver gives */
#define SMOKE_WHY_MAX 1024

struct smoke {
	/* From the command line. */
	const char *driver;
	const char *source;
	const char *name;
	const char *uid; /* the bound identity, as given, or NULL */
	const char *gid;
	uid_t app_uid;
	gid_t app_gid;
	unsigned timeout_s;
	struct client_address target;

	/* What has been done so far, so that a failure undoes exactly that. */
	bool created;
	bool mounted;
	char mountpoint[PATH_MAX];
	int mount_fd; /* the mountpoint, O_PATH, opened as root; -1 when not open */
	char file_name[128];
	char content[256];

	char why[SMOKE_WHY_MAX]; /* the current step's failure or skip reason */
};

enum step_result { STEP_OK, STEP_FAILED, STEP_SKIPPED };

static void set_why(struct smoke *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Reasons are printed on one line (the last line names the failed step), so
 * line breaks and other control characters in a driver's or the kernel's
 * message become spaces, and trailing blanks go.
 */
static void flatten(char *text)
{
	size_t len = 0;
	for (char *c = text; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
		if (*c != ' ')
			len = (size_t)(c - text) + 1;
	}
	text[len] = '\0';
}

static void set_why(struct smoke *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	flatten(s->why);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Milliseconds left before the deadline, at least 0. */
static int remaining_ms(double deadline)
{
	double left = deadline - now_ms();
	return left <= 0 ? 0 : (int)left + 1;
}

/* ---- Driver calls ---------------------------------------------------- */

/*
 * POST body to route and parse the JSON answer. Returns the answer (the
 * caller frees it) or NULL with why set. A non-200 status is a failure whose
 * reason includes the answer's Err.
 */
static json_t *driver_call(struct smoke *s, const char *route, const char *body)
{
	const struct client_request request = {
		.method = "POST",
		.path = route,
		.headers = "User-Agent: " NFSV3_TOOL_SMOKE "/" NFSV3_VERSION "\r\n",
		.body = body,
		.body_len = strlen(body),
		.limit = SMOKE_MAX_RESPONSE,
	};
	struct client_response response;
	json_error_t jerr;
	json_t *answer;

	if (client_call(&s->target, &request, (int)(s->timeout_s * 1000), &response, s->why, sizeof(s->why)) < 0) {
		flatten(s->why);
		return NULL;
	}
	answer = json_loadb(response.body, response.body_len, 0, &jerr);
	if (response.status != 200) {
		json_t *err = answer ? json_object_get(answer, NFSV3_F_ERR) : NULL;
		set_why(s, "HTTP %d from %s: %.300s", response.status, route,
			json_is_string(err) ? json_string_value(err) : response.body);
		json_decref(answer);
		answer = NULL;
	} else if (!json_is_object(answer)) {
		set_why(s, "answer to %s is not a JSON object: %.200s", route, response.body);
		json_decref(answer);
		answer = NULL;
	}
	client_response_free(&response);
	return answer;
}

/*
 * True when the answer carries an error, with why set to it: a SafeError
 * (JSON with SafeDescription inside Err) shows its description.
 */
static bool answer_failed(struct smoke *s, const char *route, json_t *answer)
{
	json_t *err = json_object_get(answer, NFSV3_F_ERR);
	if (!err || json_is_null(err))
		return false;
	if (!json_is_string(err)) {
		set_why(s, "%s answered an Err that is not a string", route);
		return true;
	}
	const char *text = json_string_value(err);
	if (text[0] == '\0')
		return false;
	json_t *safe = json_loads(text, 0, NULL);
	json_t *description = json_object_get(safe, NFSV3_F_SAFE_DESCRIPTION);
	if (json_is_string(description))
		set_why(s, "%s", json_string_value(description));
	else
		set_why(s, "%s", text);
	json_decref(safe);
	return true;
}

/* Call a route with {"Name": name} plus, for Create, the options. */
static json_t *volume_call(struct smoke *s, const char *route, json_t *request)
{
	char *body = json_dumps(request, JSON_COMPACT);
	json_decref(request);
	if (!body) {
		set_why(s, "out of memory");
		return NULL;
	}
	json_t *answer = driver_call(s, route, body);
	free(body);
	if (answer && answer_failed(s, route, answer)) {
		json_decref(answer);
		return NULL;
	}
	return answer;
}

static json_t *name_request(struct smoke *s)
{
	return json_pack("{s:s}", NFSV3_F_NAME, s->name);
}

/* ---- Driver steps --------------------------------------------------- */

static enum step_result step_activate(struct smoke *s)
{
	json_t *answer = volume_call(s, NFSV3_ROUTE_ACTIVATE, json_object());
	if (!answer)
		return STEP_FAILED;
	json_t *implements = json_object_get(answer, NFSV3_F_IMPLEMENTS), *item;
	size_t i;
	bool found = false;
	json_array_foreach(implements, i, item)
		found = found || (json_is_string(item) && strcmp(json_string_value(item), "VolumeDriver") == 0);
	json_decref(answer);
	if (!found) {
		set_why(s, "the driver does not implement VolumeDriver");
		return STEP_FAILED;
	}
	return STEP_OK;
}

static enum step_result step_create(struct smoke *s)
{
	json_t *opts = json_pack("{s:s}", NFSV3_OPT_SOURCE, s->source);
	if (s->uid)
		json_object_set_new(opts, NFSV3_OPT_UID, json_string(s->uid));
	if (s->gid)
		json_object_set_new(opts, NFSV3_OPT_GID, json_string(s->gid));
	json_t *answer = volume_call(s, NFSV3_ROUTE_CREATE,
				     json_pack("{s:s, s:o}", NFSV3_F_NAME, s->name, NFSV3_F_OPTS, opts));
	if (!answer)
		return STEP_FAILED;
	json_decref(answer);
	s->created = true;
	return STEP_OK;
}

static enum step_result step_mount(struct smoke *s)
{
	json_t *answer = volume_call(s, NFSV3_ROUTE_MOUNT, name_request(s));
	if (!answer)
		return STEP_FAILED;
	json_t *mountpoint = json_object_get(answer, NFSV3_F_MOUNTPOINT);
	if (!json_is_string(mountpoint) || json_string_value(mountpoint)[0] != '/' ||
	    strlen(json_string_value(mountpoint)) >= sizeof(s->mountpoint)) {
		set_why(s, "Mount answered no absolute Mountpoint");
		json_decref(answer);
		return STEP_FAILED;
	}
	/* The driver holds a reference now, whatever happens next. */
	s->mounted = true;
	strcpy(s->mountpoint, json_string_value(mountpoint));
	json_decref(answer);

	/* O_PATH: a mapped volume lets root look up and stat, never open (the
	 * file steps run as the app, through this fd). */
	s->mount_fd = open(s->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->mount_fd < 0) {
		set_why(s, "open mountpoint %s: %s", s->mountpoint, strerror(errno));
		return STEP_FAILED;
	}
	return STEP_OK;
}

static enum step_result step_unmount(struct smoke *s)
{
	if (s->mount_fd >= 0) {
		close(s->mount_fd);
		s->mount_fd = -1;
	}
	json_t *answer = volume_call(s, NFSV3_ROUTE_UNMOUNT, name_request(s));
	if (!answer)
		return STEP_FAILED;
	json_decref(answer);
	s->mounted = false;
	return STEP_OK;
}

static enum step_result step_remove(struct smoke *s)
{
	json_t *answer = volume_call(s, NFSV3_ROUTE_REMOVE, name_request(s));
	if (!answer)
		return STEP_FAILED;
	json_decref(answer);
	s->created = false;
	return STEP_OK;
}

/* ---- File steps, as the application ---------------------------------- */

/*
 * Become the application: groups first, while still allowed to change them,
 * then the gid, the uid last. Not running as root, the checks run as the
 * caller (the owner checks then expect the caller's uid).
 */
static int become_app(const struct smoke *s, char *why, size_t why_len)
{
	if (geteuid() != 0)
		return 0;
	if (setgroups(0, NULL) < 0 || setresgid(s->app_gid, s->app_gid, s->app_gid) < 0 ||
	    setresuid(s->app_uid, s->app_uid, s->app_uid) < 0) {
		snprintf(why, why_len, "become uid %u gid %u: %s", (unsigned)s->app_uid,
			 (unsigned)s->app_gid, strerror(errno));
		return -1;
	}
	if (geteuid() != s->app_uid || getegid() != s->app_gid) {
		snprintf(why, why_len, "still uid %u gid %u after switching to the app's",
			 (unsigned)geteuid(), (unsigned)getegid());
		return -1;
	}
	return 0;
}

static uid_t expected_app_uid(const struct smoke *s)
{
	return geteuid() == 0 ? s->app_uid : geteuid();
}

typedef int (*app_action)(const struct smoke *s, char *why, size_t why_len);

static int app_write(const struct smoke *s, char *why, size_t why_len)
{
	int fd = openat(s->mount_fd, s->file_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(why, why_len, "create %s/%s as uid %u: %s", s->mountpoint, s->file_name,
			 (unsigned)geteuid(), strerror(errno));
		return -1;
	}
	size_t len = strlen(s->content);
	ssize_t n = write(fd, s->content, len);
	if (n != (ssize_t)len || fsync(fd) < 0 || close(fd) < 0) {
		snprintf(why, why_len, "write %s/%s: %s", s->mountpoint, s->file_name,
			 n >= 0 && n != (ssize_t)len ? "short write" : strerror(errno));
		return -1;
	}
	return 0;
}

static int app_read(const struct smoke *s, char *why, size_t why_len)
{
	char back[sizeof(s->content) + 1];
	int fd = openat(s->mount_fd, s->file_name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "open %s/%s: %s", s->mountpoint, s->file_name, strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, back, sizeof(back) - 1);
	int saved = errno;
	close(fd);
	if (n < 0) {
		snprintf(why, why_len, "read %s/%s: %s", s->mountpoint, s->file_name, strerror(saved));
		return -1;
	}
	back[n] = '\0';
	if (strcmp(back, s->content) != 0) {
		snprintf(why, why_len, "read back %zd bytes that differ from the %zu written", n,
			 strlen(s->content));
		return -1;
	}
	return 0;
}

static int app_owner(const struct smoke *s, char *why, size_t why_len)
{
	struct stat st;
	if (fstatat(s->mount_fd, s->file_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		snprintf(why, why_len, "stat %s/%s: %s", s->mountpoint, s->file_name, strerror(errno));
		return -1;
	}
	if (st.st_uid != expected_app_uid(s)) {
		snprintf(why, why_len, "file is owned by %u:%u in the mount, expected uid %u",
			 (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)expected_app_uid(s));
		return -1;
	}
	return 0;
}

static int app_delete(const struct smoke *s, char *why, size_t why_len)
{
	if (unlinkat(s->mount_fd, s->file_name, 0) < 0) {
		snprintf(why, why_len, "delete %s/%s: %s", s->mountpoint, s->file_name, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Run one action in a child that has become the application. The parent
 * bounds it by the deadline (a hung mount would otherwise hang the operator's
 * terminal) and collects its reason through a pipe.
 */
static enum step_result run_as_app(struct smoke *s, app_action action)
{
	int fds[2];
	if (s->mount_fd < 0) {
		set_why(s, "the mountpoint is not open");
		return STEP_FAILED;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		set_why(s, "pipe: %s", strerror(errno));
		return STEP_FAILED;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		set_why(s, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return STEP_FAILED;
	}
	if (pid == 0) {
		char why[SMOKE_WHY_MAX] = "";
		close(fds[0]);
		int rc = become_app(s, why, sizeof(why));
		if (rc == 0)
			rc = action(s, why, sizeof(why));
		if (rc != 0 && write(fds[1], why, strlen(why)) < 0)
			_exit(2);
		_exit(rc == 0 ? 0 : 1);
	}
	close(fds[1]);

	double deadline = now_ms() + s->timeout_s * 1000.0;
	size_t len = 0;
	bool timed_out = false;
	s->why[0] = '\0';
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		int n = poll(&p, 1, remaining_ms(deadline));
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		ssize_t got = read(fds[0], s->why + len, sizeof(s->why) - 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
		if (len == sizeof(s->why) - 1)
			break;
	}
	s->why[len] = '\0';
	flatten(s->why);
	close(fds[0]);

	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		/* A child stuck in an uninterruptible NFS call is reaped when it wakes. */
		set_why(s, "%s %u s (file operation in %s)", NFSV3_ERR_TIMEOUT, s->timeout_s, s->mountpoint);
		return STEP_FAILED;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return STEP_OK;
	if (s->why[0] == '\0')
		set_why(s, "the child acting as the app %s %d",
			WIFSIGNALED(status) ? "died of signal" : "exited with",
			WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	return STEP_FAILED;
}

static enum step_result step_write(struct smoke *s)
{
	return run_as_app(s, app_write);
}

static enum step_result step_read(struct smoke *s)
{
	return run_as_app(s, app_read);
}

static enum step_result step_owner(struct smoke *s)
{
	return run_as_app(s, app_owner);
}

static enum step_result step_delete(struct smoke *s)
{
	return run_as_app(s, app_delete);
}

/*
 * The owner on the storage itself: the bound uid when one was given (the
 * idmapping writes as it), else the app's. Only a local source is visible
 * from here; for NFS the server side is the operator's to look at.
 */
static enum step_result step_backing_owner(struct smoke *s)
{
	static const char prefix[] = "file://";
	if (strncmp(s->source, prefix, sizeof(prefix) - 1) != 0) {
		set_why(s, "the backing side of %s is not visible from here", s->source);
		return STEP_SKIPPED;
	}
	char path[PATH_MAX];
	const char *dir = s->source + sizeof(prefix) - 1;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, s->file_name) >= sizeof(path)) {
		set_why(s, "backing path too long");
		return STEP_FAILED;
	}
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno == EACCES) {
			set_why(s, "cannot see %s: %s", path, strerror(errno));
			return STEP_SKIPPED;
		}
		set_why(s, "the file written in the mount is not in the backing directory: stat %s: %s", path,
			strerror(errno));
		return STEP_FAILED;
	}
	uid_t expected = s->uid ? (uid_t)strtoul(s->uid, NULL, 10) : expected_app_uid(s);
	if (st.st_uid != expected) {
		set_why(s, "%s is owned by %u:%u on the backing side, expected uid %u (%s)", path,
			(unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)expected,
			s->uid ? "the bound uid" : "the app uid");
		return STEP_FAILED;
	}
	return STEP_OK;
}

/* ---- Running the steps ----------------------------------------------- */

typedef enum step_result (*step_fn)(struct smoke *s);

static enum step_result run_step(struct smoke *s, const char *name, step_fn fn)
{
	s->why[0] = '\0';
	double start = now_ms();
	enum step_result r = fn(s);
	double took = now_ms() - start;
	switch (r) {
	case STEP_OK:
		printf("step %s ok %.1f ms\n", name, took);
		break;
	case STEP_SKIPPED:
		printf("step %s skipped: %s\n", name, s->why);
		break;
	case STEP_FAILED:
		printf("step %s FAILED: %s\n", name, s->why[0] ? s->why : "no reason given");
		break;
	}
	fflush(stdout);
	return r;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " NFSV3_TOOL_SMOKE " --driver ADDR --source SRC [options]\n"
		"       (also nfsv3driver smoke ..., which runs this program)\n"
		"\n"
		"Runs Activate, Create, Mount, writes/reads/deletes a file as the app uid,\n"
		"then Unmount and Remove against a running driver, printing each step\n"
		"with its time. Exits 0 when all pass, 1 naming the failed step.\n"
		"\n"
		"  --driver ADDR      unix:/path, tcp://host:port or http://host:port\n"
		"  --source SRC       the volume's source (nfs://host/export, file:///dir)\n"
		"  --uid U --gid G    the bound identity (both or neither)\n"
		"  --app-uid U        the application's uid (default %d)\n"
		"  --app-gid G        the application's gid (default %d)\n"
		"  --name NAME        volume name (default smoke-<pid>-<time>)\n"
		"  --timeout S        deadline for each step in seconds (default %d)\n"
		"  --help             this text\n",
		SMOKE_DEFAULT_APP_ID, SMOKE_DEFAULT_APP_ID, SMOKE_DEFAULT_TIMEOUT_S);
}

/* Decimal in [min, max]; the whole string. */
static bool parse_number(const char *text, unsigned long long min, unsigned long long max,
			 unsigned long long *value)
{
	if (!text[0] || strspn(text, "0123456789") != strlen(text) || strlen(text) > 12)
		return false;
	*value = strtoull(text, NULL, 10);
	return *value >= min && *value <= max;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs(NFSV3_TOOL_SMOKE ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(try " NFSV3_TOOL_SMOKE " --help)\n", stderr);
	return SMOKE_EXIT_USAGE;
}

static int parse_args(struct smoke *s, int argc, char **argv, char *default_name, size_t name_len)
{
	enum { OPT_DRIVER = 256, OPT_SOURCE, OPT_UID, OPT_GID, OPT_APP_UID, OPT_APP_GID, OPT_NAME,
	       OPT_TIMEOUT, OPT_HELP };
	static const struct option options[] = {
		{ "driver", required_argument, NULL, OPT_DRIVER },
		{ "source", required_argument, NULL, OPT_SOURCE },
		{ "uid", required_argument, NULL, OPT_UID },
		{ "gid", required_argument, NULL, OPT_GID },
		{ "app-uid", required_argument, NULL, OPT_APP_UID },
		{ "app-gid", required_argument, NULL, OPT_APP_GID },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long v;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", options, NULL)) != -1) {
		switch (c) {
		case OPT_DRIVER:
			s->driver = optarg;
			break;
		case OPT_SOURCE:
			s->source = optarg;
			break;
		case OPT_UID:
		case OPT_GID:
			if (!parse_number(optarg, 1, 4294967294ULL, &v))
				return usage_error("--%s %s: expected a decimal id from 1 to 4294967294",
						   c == OPT_UID ? "uid" : "gid", optarg);
			*(c == OPT_UID ? &s->uid : &s->gid) = optarg;
			break;
		case OPT_APP_UID:
		case OPT_APP_GID:
			if (!parse_number(optarg, 0, 4294967294ULL, &v))
				return usage_error("--%s %s: expected a decimal id from 0 to 4294967294",
						   c == OPT_APP_UID ? "app-uid" : "app-gid", optarg);
			if (c == OPT_APP_UID)
				s->app_uid = (uid_t)v;
			else
				s->app_gid = (gid_t)v;
			break;
		case OPT_NAME:
			s->name = optarg;
			break;
		case OPT_TIMEOUT:
			if (!parse_number(optarg, 1, 86400, &v))
				return usage_error("--timeout %s: expected seconds from 1 to 86400", optarg);
			s->timeout_s = (unsigned)v;
			break;
		case OPT_HELP:
			usage(stdout);
			return -1;
		default:
			if (optopt)
				return usage_error("option %s needs a value", argv[optind - 1]);
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument %s", argv[optind]);
	if (!s->driver)
		return usage_error("--driver ADDR is required");
	if (!s->source)
		return usage_error("--source SRC is required");
	if (!s->uid != !s->gid)
		return usage_error("--uid and --gid go together");
	if (s->name && (!s->name[0] || strlen(s->name) > NFSV3_NAME_MAX))
		return usage_error("--name must be 1 to %d characters", NFSV3_NAME_MAX);

	char why[SMOKE_WHY_MAX];
	if (client_parse_address(s->driver, &s->target, why, sizeof(why)) < 0)
		return usage_error("--driver: %s", why);
	if (!s->name) {
		snprintf(default_name, name_len, "smoke-%ld-%lld", (long)getpid(), (long long)time(NULL));
		s->name = default_name;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct smoke s = {
		.app_uid = SMOKE_DEFAULT_APP_ID,
		.app_gid = SMOKE_DEFAULT_APP_ID,
		.timeout_s = SMOKE_DEFAULT_TIMEOUT_S,
		.mount_fd = -1,
	};
	char default_name[64];
	int rc = parse_args(&s, argc, argv, default_name, sizeof(default_name));
	if (rc != 0)
		return rc < 0 ? SMOKE_EXIT_OK : rc;

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(s.file_name, sizeof(s.file_name), ".nfsv3driver-smoke-%ld-%lld%09ld", (long)getpid(),
		 (long long)ts.tv_sec, ts.tv_nsec);
	snprintf(s.content, sizeof(s.content), "nfsv3driver smoke test %s pid %ld at %lld.%09ld\n", s.name,
		 (long)getpid(), (long long)ts.tv_sec, ts.tv_nsec);

	static const struct {
		const char *name;
		step_fn fn;
	} steps[] = {
		{ "activate", step_activate },
		{ "create", step_create },
		{ "mount", step_mount },
		{ "write", step_write },
		{ "read", step_read },
		{ "owner", step_owner },
		{ "backing-owner", step_backing_owner },
		{ "delete", step_delete },
		{ "unmount", step_unmount },
		{ "remove", step_remove },
	};
	printf("smoke: volume %s, source %s, driver %s, app uid %u gid %u%s\n", s.name, s.source, s.driver,
	       (unsigned)s.app_uid, (unsigned)s.app_gid,
	       geteuid() == 0 ? "" : " (not root: file steps run as the caller)");
	double start = now_ms();
	const char *failed = NULL;
	char failed_why[SMOKE_WHY_MAX] = "";
	bool wrote = false;
	size_t i;
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		enum step_result r = run_step(&s, steps[i].name, steps[i].fn);
		if (r == STEP_FAILED) {
			failed = steps[i].name;
			snprintf(failed_why, sizeof(failed_why), "%s", s.why);
			break;
		}
		if (steps[i].fn == step_write)
			wrote = true;
		if (steps[i].fn == step_delete)
			wrote = false;
	}
	if (!failed) {
		printf("smoke ok: volume %s passed all %zu steps in %.1f ms\n", s.name, i, now_ms() - start);
		return SMOKE_EXIT_OK;
	}

	/* Undo what was done, best effort, so a failed check leaves nothing behind. */
	if (wrote && s.mount_fd >= 0)
		run_step(&s, "cleanup-delete", step_delete);
	if (s.mounted)
		run_step(&s, "cleanup-unmount", step_unmount);
	if (s.created)
		run_step(&s, "cleanup-remove", step_remove);
	if (s.mount_fd >= 0)
		close(s.mount_fd);
	printf("smoke FAILED at step %s: %s\n", failed, failed_why);
	return SMOKE_EXIT_FAILED;
}
