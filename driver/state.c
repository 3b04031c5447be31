#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "metrics.h"
#include "cleanup.h"
#include "state.h"
#include "upstream.h"

/* Field names of the state document (ours alone, not the wire's). */
#define S_VERSION "version"
#define S_VOLUMES "volumes"
#define S_NAME "name"
#define S_OPTS "opts"
#define S_MOUNTED "mounted"
#define S_IDS "ids"
#define S_COUNT "count"
#define S_KERNEL_KEY "kernel_key"
#define S_IDMAPFS_PID "idmapfs_pid"
#define S_LDAP_UID "ldap_uid" /* the identity the directory gave a username binding */
#define S_LDAP_GID "ldap_gid"
#define S_LAST_USED "last_used" /* unix seconds of its last operation: the sweep's clock */
#define S_DOCKER "docker"       /* created by a Docker client: never swept */
#define S_UPSTREAM "upstream" /* adopted from upstream's state: its mount is upstream's (upstream.h) */

json_t *state_serialize(struct registry *reg)
{
	json_t *volumes = json_array();

	for (struct volume *vol = registry_first(reg); vol; vol = registry_next(reg, vol)) {
		json_t *ids, *entry;
		if (!vol->exists && !vol->mounted)
			continue;
		ids = json_array();
		for (size_t i = 0; i < vol->n_ids; i++)
			json_array_append_new(ids, json_string(vol->ids[i]));
		entry = json_pack("{s:s, s:o, s:b, s:o, s:I}", S_NAME, vol->name, S_OPTS,
				  vol->opts ? json_incref(vol->opts) : json_object(), S_MOUNTED, vol->mounted,
				  S_IDS, ids, S_COUNT, (json_int_t)vol->count);
		if (vol->kernel_key)
			json_object_set_new(entry, S_KERNEL_KEY, json_string(vol->kernel_key));
		if (vol->idmapfs_pid)
			json_object_set_new(entry, S_IDMAPFS_PID, json_integer(vol->idmapfs_pid));
		if (vol->last_used)
			json_object_set_new(entry, S_LAST_USED, json_integer((json_int_t)vol->last_used));
		if (vol->docker)
			json_object_set_new(entry, S_DOCKER, json_true());
		if (vol->upstream)
			json_object_set_new(entry, S_UPSTREAM, json_true());
		if (vol->spec.username && vol->spec.mapped) {
			json_object_set_new(entry, S_LDAP_UID, json_integer(vol->spec.uid));
			json_object_set_new(entry, S_LDAP_GID, json_integer(vol->spec.gid));
		}
		json_array_append_new(volumes, entry);
	}
	return json_pack("{s:i, s:o}", S_VERSION, STATE_FORMAT_VERSION, S_VOLUMES, volumes);
}

static struct error *entry_invalid(size_t index, const char *what)
{
	return error_new(ERROR_INVALID, "volumes[%zu]: %s", index, what);
}

static bool id_valid(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 4294967294LL;
}

static struct error *deserialize_entry(size_t index, const json_t *entry, struct registry *reg,
				       const struct config *cfg)
{
	const json_t *name = json_object_get(entry, S_NAME), *opts = json_object_get(entry, S_OPTS),
		     *mounted = json_object_get(entry, S_MOUNTED), *ids = json_object_get(entry, S_IDS),
		     *count = json_object_get(entry, S_COUNT), *key = json_object_get(entry, S_KERNEL_KEY),
		     *pid = json_object_get(entry, S_IDMAPFS_PID), *ldap_uid = json_object_get(entry, S_LDAP_UID),
		     *ldap_gid = json_object_get(entry, S_LDAP_GID), *last_used = json_object_get(entry, S_LAST_USED),
		     *docker = json_object_get(entry, S_DOCKER), *upstream = json_object_get(entry, S_UPSTREAM), *id;
	struct volume_spec spec;
	struct error *err;
	struct volume *vol;
	size_t i;

	if (!json_is_object(entry))
		return entry_invalid(index, "expected an object");
	if (!json_is_string(name))
		return entry_invalid(index, "name: expected a string");
	if ((err = options_check_name(json_string_value(name))))
		return error_wrap(err, "volumes[%zu]", index);
	if (registry_find(reg, json_string_value(name)))
		return entry_invalid(index, "name appears twice");
	if (!json_is_object(opts))
		return entry_invalid(index, "opts: expected an object");
	if (!json_is_boolean(mounted))
		return entry_invalid(index, "mounted: expected true or false");
	if (!json_is_array(ids))
		return entry_invalid(index, "ids: expected an array");
	json_array_foreach(ids, i, id)
		if (!json_is_string(id) || !json_string_length(id) || json_string_length(id) > 256)
			return entry_invalid(index, "ids: expected strings of 1 to 256 characters");
	if (!json_is_integer(count) || json_integer_value(count) < 0 || json_integer_value(count) > 1000000)
		return entry_invalid(index, "count: expected an integer from 0 to 1000000");
	if (key && (!json_is_string(key) || !json_string_length(key)))
		return entry_invalid(index, "kernel_key: expected a string");
	if (pid && (!json_is_integer(pid) || json_integer_value(pid) < 1 || json_integer_value(pid) > 4194304))
		return entry_invalid(index, "idmapfs_pid: expected a process id");
	if ((ldap_uid || ldap_gid) && !(id_valid(ldap_uid) && id_valid(ldap_gid)))
		return entry_invalid(index, "ldap_uid, ldap_gid: expected both, numbers from 1 to 4294967294");
	if (last_used && (!json_is_integer(last_used) || json_integer_value(last_used) < 0))
		return entry_invalid(index, "last_used: expected a time in seconds since 1970");
	if (docker && !json_is_boolean(docker))
		return entry_invalid(index, "docker: expected true or false");
	if (upstream && !json_is_true(upstream))
		return entry_invalid(index, "upstream: expected true, or no such field");

	if (!(vol = registry_get(reg, json_string_value(name))))
		return error_new(ERROR_INTERNAL, "out of memory");
	/* Options are parsed again: an option the driver no longer accepts
	 * (say, --allow-local-sources dropped) becomes the volume's Mount error. */
	err = options_parse(opts, cfg, &spec);
	/* A username binding keeps what the directory said; the password was never stored. */
	if (!err && spec.username && ldap_uid) {
		spec.mapped = true;
		spec.uid = (uint32_t)json_integer_value(ldap_uid);
		spec.gid = (uint32_t)json_integer_value(ldap_gid);
	}
	/* Adopted from upstream's state and not created again since: no options to parse. */
	if (upstream && err && json_object_size(opts) == 0) {
		error_free(err);
		err = error_new(ERROR_INVALID, "%s", NFSV3_ERR_UPSTREAM_NO_OPTIONS);
	}
	volume_set_options(vol, opts, err ? NULL : &spec, err);
	vol->mounted = json_is_true(mounted);
	vol->upstream = upstream != NULL;
	json_array_foreach(ids, i, id)
		if (volume_add_ref(vol, json_string_value(id)) < 0)
			return error_new(ERROR_INTERNAL, "out of memory");
	vol->count = (unsigned)json_integer_value(count);
	if (key && !(vol->kernel_key = strdup(json_string_value(key))))
		return error_new(ERROR_INTERNAL, "out of memory");
	if (pid)
		vol->idmapfs_pid = (pid_t)json_integer_value(pid);
	/* Entries written before the sweep existed start their age now. */
	vol->last_used = last_used ? (time_t)json_integer_value(last_used) : time(NULL);
	vol->docker = json_is_true(docker);
	return NULL;
}

struct error *state_deserialize(const json_t *doc, struct registry *reg, const struct config *cfg)
{
	const json_t *version, *volumes, *entry;
	struct error *err;
	size_t i;

	if (!json_is_object(doc))
		return error_new(ERROR_INVALID, "expected a JSON object");
	if (upstream_state_recognised(doc))
		return upstream_state_import(doc, reg, cfg);
	version = json_object_get(doc, S_VERSION);
	if (!json_is_integer(version) || json_integer_value(version) != STATE_FORMAT_VERSION)
		return error_new(ERROR_INVALID, "version: expected %d", STATE_FORMAT_VERSION);
	volumes = json_object_get(doc, S_VOLUMES);
	if (!json_is_array(volumes))
		return error_new(ERROR_INVALID, "volumes: expected an array");
	json_array_foreach(volumes, i, entry) {
		if ((err = deserialize_entry(i, entry, reg, cfg))) {
			registry_destroy(reg);
			registry_init(reg);
			return err;
		}
	}
	return NULL;
}

/* What a file that is not a regular one is, for the message. */
static const char *file_kind(mode_t mode)
{
	return S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" : S_ISSOCK(mode) ? "a socket"
	       : S_ISLNK(mode) ? "a symbolic link" : S_ISCHR(mode) || S_ISBLK(mode) ? "a device" : "not a regular file";
}

/*
 * Read path into reg. The file is opened without following a symlink and
 * without blocking (a FIFO planted there must not hang the start), must be
 * a regular file, and is read only when it is no larger than
 * STATE_MAX_BYTES: a bigger one is refused unread. *missing tells a file
 * that is not there (an empty state) from one that failed.
 */
static struct error *read_state(const char *path, struct registry *reg, const struct config *cfg, bool *missing)
{
	CLEANUP_CLOSE int fd = -1;
	CLEANUP_FREE char *text = NULL;
	CLEANUP_JSON json_t *doc = NULL;
	json_error_t jerr;
	struct stat st;
	size_t len = 0;

	*missing = false;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 && errno == ENOENT) {
		*missing = true;
		return NULL;
	}
	if (fd < 0 && errno == ELOOP)
		return error_new(ERROR_INVALID, "it is a symbolic link; expected a regular file");
	if (fd < 0)
		return error_new(ERROR_INVALID, "cannot open it: %s", strerror(errno));
	if (fstat(fd, &st) != 0)
		return error_new(ERROR_INVALID, "cannot stat it: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return error_new(ERROR_INVALID, "it is %s; expected a regular file", file_kind(st.st_mode));
	if (st.st_size > STATE_MAX_BYTES)
		return error_new(ERROR_INVALID, "it is %lld bytes, more than the %d bytes (%d MiB) a state file may hold",
				 (long long)st.st_size, STATE_MAX_BYTES, STATE_MAX_BYTES >> 20);
	/* One byte more than the limit: a file that grew since the fstat is caught too. */
	if (!(text = malloc((size_t)st.st_size + 1)))
		return error_new(ERROR_INTERNAL, "out of memory reading %lld bytes", (long long)st.st_size);
	for (;;) {
		ssize_t n = read(fd, text + len, (size_t)st.st_size + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return error_new(ERROR_INVALID, "cannot read it: %s", strerror(errno));
		if (n == 0 || (len += (size_t)n) > (size_t)st.st_size)
			break;
	}
	if (len > (size_t)st.st_size)
		return error_new(ERROR_INVALID, "it grew while it was read; expected the driver's own file");
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	/* The text goes once parsed: the registry is built with the document alone beside it. */
	free(steal_pointer(&text));
	if (!doc)
		return error_new(ERROR_INVALID, "not valid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
	return state_deserialize(doc, reg, cfg);
}

/*
 * Keep a bad state file for whoever investigates: rename it to
 * <path>.corrupt-<unix time>, never over an earlier one (a -N suffix when
 * that name is taken). Returns 0 with the name in aside, or -1 with errno.
 */
static int move_aside(const char *path, char *aside, size_t size)
{
	long long now = (long long)time(NULL);

	for (int n = 0; n < 100; n++) {
		if (n == 0)
			snprintf(aside, size, "%s.corrupt-%lld", path, now);
		else
			snprintf(aside, size, "%s.corrupt-%lld-%d", path, now, n);
		if (renameat2(AT_FDCWD, path, AT_FDCWD, aside, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno == EEXIST)
			continue;
		/* A file system without RENAME_NOREPLACE: check, then rename. */
		if (errno == EINVAL) {
			struct stat st;
			if (lstat(aside, &st) == 0)
				continue;
			return rename(path, aside);
		}
		return -1;
	}
	errno = EEXIST;
	return -1;
}

struct error *state_load(const char *path, struct registry *reg, const struct config *cfg)
{
	char aside[PATH_MAX];
	struct error *err;
	bool missing;

	if (!(err = read_state(path, reg, cfg, &missing)))
		return NULL;
	if (move_aside(path, aside, sizeof(aside)) == 0)
		return error_wrap(err, "state file %s cannot be used (moved aside to %s; starting with no volumes)", path,
				  aside);
	return error_wrap(err, "state file %s cannot be used and could not be moved aside (%s); starting with no volumes",
			  path, strerror(errno));
}

/* Every failure to save names the cause first, then the step and the file. */
static struct error *save_failed(int errnum, const char *step, const char *file)
{
	return error_new(ERROR_INTERNAL, "%s: %s (%s %s)", NFSV3_ERR_STATE_SAVE, strerror(errnum), step, file);
}

static int write_all(int fd, const char *text, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

static struct error *write_text(const char *path, const char *text)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	size_t len = strlen(text);
	const char *step;
	int fd, saved;

	/* A state the loader would refuse must never replace one it accepts. */
	if (len > STATE_MAX_BYTES)
		return error_new(ERROR_INTERNAL, "%s: it would be %zu bytes, more than the %d bytes (%d MiB) a state file may hold (%s)",
				 NFSV3_ERR_STATE_SAVE, len, STATE_MAX_BYTES, STATE_MAX_BYTES >> 20, path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return save_failed(errno, "creating", tmp);
	if (fchmod(fd, 0600) < 0)
		step = "setting the mode of";
	else if (write_all(fd, text, len) < 0)
		step = "writing";
	else if (fsync(fd) < 0)
		step = "flushing";
	else
		step = NULL;
	if (step) {
		saved = errno;
		close(fd);
		unlink(tmp);
		return save_failed(saved, step, tmp);
	}
	/* close() can report a delayed write error (NFS, quotas). */
	if (close(fd) < 0) {
		saved = errno;
		unlink(tmp);
		return save_failed(saved, "closing", tmp);
	}
	if (rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		return save_failed(saved, "renaming it over", path);
	}
	/* The rename is durable only once the directory is. */
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return NULL;
}

struct error *state_write(const char *path, const json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	struct error *err;

	if (!text)
		return error_new(ERROR_INTERNAL, "%s: out of memory (%s)", NFSV3_ERR_STATE_SAVE, path);
	err = write_text(path, text);
	free(text);
	return err;
}

struct waiter {
	state_saved_cb cb;
	void *data;
	struct waiter *next;
};

struct state_writer {
	uv_loop_t *loop;
	char *path;
	struct registry *reg;
	uv_work_t work;
	int running;
	char *text;                 /* the document being written */
	struct error *result;       /* of the write being finished */
	uint64_t write_ns;          /* how long it took (measured by the worker) */
	struct waiter *pending;     /* commits not yet in a write (reversed) */
	struct waiter *inflight;    /* commits the running write will satisfy */
};

struct state_writer *state_writer_new(uv_loop_t *loop, const char *path, struct registry *reg)
{
	struct state_writer *w = calloc(1, sizeof(*w));

	if (!w || !(w->path = strdup(path))) {
		free(w);
		return NULL;
	}
	w->loop = loop;
	w->reg = reg;
	w->work.data = w;
	return w;
}

static void on_write_work(uv_work_t *work)
{
	struct state_writer *w = work->data;
	uint64_t started = uv_hrtime();

	w->result = write_text(w->path, w->text);
	w->write_ns = uv_hrtime() - started;
}

static void start_write(struct state_writer *w);

/* Waiters are kept newest first; answer them oldest first. */
static struct waiter *reverse(struct waiter *list)
{
	struct waiter *out = NULL, *next;
	for (; list; list = next) {
		next = list->next;
		list->next = out;
		out = list;
	}
	return out;
}

static void on_write_done(uv_work_t *work, int status)
{
	struct state_writer *w = work->data;
	struct waiter *list = reverse(w->inflight), *next;

	metrics_count(w->result ? METRIC_STATE_WRITES_ERROR : METRIC_STATE_WRITES_OK);
	metrics_observe(METRIC_STATE_WRITE, (double)w->write_ns / 1e9);
	w->inflight = NULL;
	w->running = 0;
	free(w->text);
	w->text = NULL;
	for (; list; list = next) {
		next = list->next;
		list->cb(w->result, list->data);
		free(list);
	}
	error_free(w->result);
	w->result = NULL;
	if (w->pending)
		start_write(w);
}

static void start_write(struct state_writer *w)
{
	json_t *doc = state_serialize(w->reg);

	w->text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	w->inflight = w->pending;
	w->pending = NULL;
	w->running = 1;
	if (!w->text) {
		w->result = error_new(ERROR_INTERNAL, "%s: out of memory (%s)", NFSV3_ERR_STATE_SAVE, w->path);
		w->write_ns = 0;
		on_write_done(&w->work, 0);
		return;
	}
	uv_queue_work(w->loop, &w->work, on_write_work, on_write_done);
}

void state_commit(struct state_writer *w, state_saved_cb cb, void *data)
{
	struct waiter *waiter = malloc(sizeof(*waiter));

	if (!waiter) {
		struct error *err = error_new(ERROR_INTERNAL, "out of memory");
		cb(err, data);
		error_free(err);
		return;
	}
	waiter->cb = cb;
	waiter->data = data;
	waiter->next = w->pending;
	w->pending = waiter;
	if (!w->running)
		start_write(w);
}

int state_writer_idle(const struct state_writer *w)
{
	return !w->running && !w->pending;
}

void state_writer_free(struct state_writer *w)
{
	if (!w)
		return;
	free(w->path);
	free(w);
}
