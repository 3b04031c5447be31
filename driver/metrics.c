#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "metrics.h"

/* Upper bounds in seconds: a bind takes a few ms, an NFS mount against a
 * slow server seconds, a helper deadline 30 s by default. */
static const double bucket_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define BUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

struct histogram {
	uint64_t buckets[BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
	uint64_t count;
	double sum;
};

static uint64_t counters[METRIC_COUNTER_COUNT];
static struct histogram histograms[METRIC_HISTOGRAM_COUNT];
static uint64_t requests[METRIC_ROUTE_COUNT][METRIC_OUTCOME_COUNT];

void metrics_count(enum metric_counter counter)
{
	if ((unsigned)counter < METRIC_COUNTER_COUNT)
		counters[counter]++;
}

void metrics_observe(enum metric_histogram which, double seconds)
{
	struct histogram *h;
	size_t i = 0;

	if ((unsigned)which >= METRIC_HISTOGRAM_COUNT)
		return;
	h = &histograms[which];
	if (seconds < 0)
		seconds = 0;
	while (i < BUCKETS && seconds > bucket_bounds[i])
		i++;
	h->buckets[i]++;
	h->count++;
	h->sum += seconds;
}

void metrics_request(enum metric_route route, enum metric_outcome outcome)
{
	if ((unsigned)route < METRIC_ROUTE_COUNT && (unsigned)outcome < METRIC_OUTCOME_COUNT)
		requests[route][outcome]++;
}

void metrics_reset(void)
{
	memset(counters, 0, sizeof(counters));
	memset(histograms, 0, sizeof(histograms));
	memset(requests, 0, sizeof(requests));
}

/* Label values of nfsv3driver_requests_total: the paths themselves. */
static const char *const route_paths[METRIC_ROUTE_COUNT] = {
	[METRIC_ROUTE_ACTIVATE] = NFSV3_ROUTE_ACTIVATE,   [METRIC_ROUTE_CREATE] = NFSV3_ROUTE_CREATE,
	[METRIC_ROUTE_MOUNT] = NFSV3_ROUTE_MOUNT,         [METRIC_ROUTE_UNMOUNT] = NFSV3_ROUTE_UNMOUNT,
	[METRIC_ROUTE_REMOVE] = NFSV3_ROUTE_REMOVE,       [METRIC_ROUTE_PATH] = NFSV3_ROUTE_PATH,
	[METRIC_ROUTE_GET] = NFSV3_ROUTE_GET,             [METRIC_ROUTE_LIST] = NFSV3_ROUTE_LIST,
	[METRIC_ROUTE_CAPABILITIES] = NFSV3_ROUTE_CAPABILITIES, [METRIC_ROUTE_PING] = NFSV3_ADMIN_PING,
	[METRIC_ROUTE_EVACUATE] = NFSV3_ADMIN_EVACUATE,   [METRIC_ROUTE_METRICS] = NFSV3_ADMIN_METRICS,
	[METRIC_ROUTE_OTHER] = "other",
};

static const char *const outcome_names[METRIC_OUTCOME_COUNT] = {
	[METRIC_OUTCOME_OK] = "ok", [METRIC_OUTCOME_ERROR] = "error", [METRIC_OUTCOME_REFUSED] = "refused",
};

enum metric_route metrics_route(const char *path)
{
	for (unsigned r = 0; r < METRIC_ROUTE_OTHER; r++)
		if (strcmp(route_paths[r], path) == 0)
			return (enum metric_route)r;
	return METRIC_ROUTE_OTHER;
}

void metrics_helper_finished(const char *verb, double seconds, bool timed_out, int term_signal)
{
	static const struct {
		const char *verb;
		enum metric_histogram histogram;
	} verbs[] = {
		{ NFSV3_VERB_NFS, METRIC_HELPER_NFS },
		{ NFSV3_VERB_BIND, METRIC_HELPER_BIND },
		{ NFSV3_VERB_UNMOUNT, METRIC_HELPER_UNMOUNT },
	};

	for (size_t i = 0; verb && i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verb, verbs[i].verb) == 0)
			metrics_observe(verbs[i].histogram, seconds);
	if (timed_out)
		metrics_count(METRIC_HELPER_TIMEOUTS);
	if (term_signal)
		metrics_count(METRIC_HELPER_KILLS);
}

uint64_t metrics_resident_bytes(void)
{
	char text[128];
	unsigned long long size, resident;
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	if (sscanf(text, "%llu %llu", &size, &resident) != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ---- the exposition ---- */

enum family_kind { KIND_COUNTERS, KIND_HISTOGRAMS, KIND_REQUESTS, KIND_GAUGES };

/* One metric family: its HELP and TYPE lines, then its series. */
struct family {
	const char *name, *help;
	enum family_kind kind;
	const char *label; /* label name of its series, NULL for a single unlabelled one */
};

enum family_id {
	F_REQUESTS, F_OPERATION_DURATION, F_HELPER_DURATION, F_HELPER_TIMEOUTS, F_HELPER_KILLS,
	F_VOLUMES, F_MOUNTS, F_MAPPED_MOUNTS, F_KERNEL_MOUNTS, F_KERNEL_MOUNT_USERS,
	F_IDMAPFS_DEATHS, F_IDMAPFS_RESTARTS, F_IDMAPFS_ADOPTIONS, F_IDMAPFS_RESUMED, F_STATE_WRITES, F_STATE_WRITE_DURATION,
	F_TLS_HANDSHAKE_FAILURES, F_LDAP_LOOKUPS, F_CONNECTIONS, F_RESIDENT, F_COUNT
};

static const struct family families[F_COUNT] = {
	[F_REQUESTS] = { "nfsv3driver_requests_total", "Requests answered, by route and outcome (ok; error: Err set; refused: a 4xx status)", KIND_REQUESTS, NULL },
	[F_OPERATION_DURATION] = { "nfsv3driver_operation_duration_seconds", "Volume operations from request to answer, queueing included", KIND_HISTOGRAMS, "operation" },
	[F_HELPER_DURATION] = { "nfsv3driver_helper_duration_seconds", "Helper runs from spawn to exit (idmapfs: to ready), by verb", KIND_HISTOGRAMS, "verb" },
	[F_HELPER_TIMEOUTS] = { "nfsv3driver_helper_timeouts_total", "Helper runs and idmapfs starts killed at their deadline", KIND_COUNTERS, NULL },
	[F_HELPER_KILLS] = { "nfsv3driver_helper_kills_total", "Helper runs that ended by a signal (the deadline's or anyone's)", KIND_COUNTERS, NULL },
	[F_VOLUMES] = { "nfsv3driver_volumes", "Volumes created and not removed", KIND_GAUGES, NULL },
	[F_MOUNTS] = { "nfsv3driver_mounts", "Volumes whose Mountpoint is live", KIND_GAUGES, NULL },
	[F_MAPPED_MOUNTS] = { "nfsv3driver_mapped_mounts", "Live Mountpoints served through idmapfs", KIND_GAUGES, NULL },
	[F_KERNEL_MOUNTS] = { "nfsv3driver_kernel_mounts", "Shared kernel NFS mounts under .kernel/", KIND_GAUGES, NULL },
	[F_KERNEL_MOUNT_USERS] = { "nfsv3driver_kernel_mount_users", "Volume mounts bound to the shared kernel NFS mounts", KIND_GAUGES, NULL },
	[F_IDMAPFS_DEATHS] = { "nfsv3driver_idmapfs_deaths_total", "Serving idmapfs processes that exited without being asked to", KIND_COUNTERS, NULL },
	[F_IDMAPFS_RESTARTS] = { "nfsv3driver_idmapfs_restarts_total", "idmapfs processes started again by a Mount after one died", KIND_COUNTERS, NULL },
	[F_IDMAPFS_ADOPTIONS] = { "nfsv3driver_idmapfs_adoptions_total", "Running idmapfs processes taken over at start from the state", KIND_COUNTERS, NULL },
	[F_IDMAPFS_RESUMED] = { "nfsv3driver_idmapfs_resumed_total", "Stopped idmapfs processes sent SIGCONT (one still stopped at the next look is killed)", KIND_COUNTERS, NULL },
	[F_STATE_WRITES] = { "nfsv3driver_state_writes_total", "Writes of driver-state.json, by outcome", KIND_COUNTERS, "outcome" },
	[F_STATE_WRITE_DURATION] = { "nfsv3driver_state_write_duration_seconds", "One atomic state write: temp file, fsync, rename, fsync of the directory", KIND_HISTOGRAMS, NULL },
	[F_TLS_HANDSHAKE_FAILURES] = { "nfsv3driver_tls_handshake_failures_total", "Failed TLS handshakes, by reason", KIND_COUNTERS, "reason" },
	[F_LDAP_LOOKUPS] = { "nfsv3driver_ldap_lookups_total", "LDAP lookups of a binding's username, by outcome", KIND_COUNTERS, "outcome" },
	[F_CONNECTIONS] = { "nfsv3driver_open_connections", "HTTP connections open now, by listener", KIND_GAUGES, "listener" },
	[F_RESIDENT] = { "process_resident_memory_bytes", "Resident memory of the daemon (/proc/self/statm)", KIND_GAUGES, NULL },
};

/* A series: its family and its label value (NULL when unlabelled). */
struct series {
	enum family_id family;
	const char *label_value;
};

static const struct series counter_series[METRIC_COUNTER_COUNT] = {
	[METRIC_HELPER_TIMEOUTS] = { F_HELPER_TIMEOUTS, NULL },
	[METRIC_HELPER_KILLS] = { F_HELPER_KILLS, NULL },
	[METRIC_IDMAPFS_DEATHS] = { F_IDMAPFS_DEATHS, NULL },
	[METRIC_IDMAPFS_RESTARTS] = { F_IDMAPFS_RESTARTS, NULL },
	[METRIC_IDMAPFS_ADOPTIONS] = { F_IDMAPFS_ADOPTIONS, NULL },
	[METRIC_IDMAPFS_RESUMED] = { F_IDMAPFS_RESUMED, NULL },
	[METRIC_STATE_WRITES_OK] = { F_STATE_WRITES, "ok" },
	[METRIC_STATE_WRITES_ERROR] = { F_STATE_WRITES, "error" },
	[METRIC_TLS_HANDSHAKE_FAILURES_PROTOCOL] = { F_TLS_HANDSHAKE_FAILURES, "protocol" },
	[METRIC_TLS_HANDSHAKE_FAILURES_NO_CERTIFICATE] = { F_TLS_HANDSHAKE_FAILURES, "no_certificate" },
	[METRIC_TLS_HANDSHAKE_FAILURES_BAD_CERTIFICATE] = { F_TLS_HANDSHAKE_FAILURES, "bad_certificate" },
	[METRIC_TLS_HANDSHAKE_FAILURES_TIMEOUT] = { F_TLS_HANDSHAKE_FAILURES, "timeout" },
	[METRIC_TLS_HANDSHAKE_FAILURES_OTHER] = { F_TLS_HANDSHAKE_FAILURES, "other" },
	[METRIC_LDAP_LOOKUPS_FOUND] = { F_LDAP_LOOKUPS, "found" },
	[METRIC_LDAP_LOOKUPS_NOT_FOUND] = { F_LDAP_LOOKUPS, "not_found" },
	[METRIC_LDAP_LOOKUPS_INVALID_CREDENTIALS] = { F_LDAP_LOOKUPS, "invalid_credentials" },
	[METRIC_LDAP_LOOKUPS_TIMEOUT] = { F_LDAP_LOOKUPS, "timeout" },
	[METRIC_LDAP_LOOKUPS_ERROR] = { F_LDAP_LOOKUPS, "error" },
};

static const struct series histogram_series[METRIC_HISTOGRAM_COUNT] = {
	[METRIC_OPERATION_CREATE] = { F_OPERATION_DURATION, "create" },
	[METRIC_OPERATION_MOUNT] = { F_OPERATION_DURATION, "mount" },
	[METRIC_OPERATION_UNMOUNT] = { F_OPERATION_DURATION, "unmount" },
	[METRIC_OPERATION_REMOVE] = { F_OPERATION_DURATION, "remove" },
	[METRIC_HELPER_NFS] = { F_HELPER_DURATION, NFSV3_VERB_NFS },
	[METRIC_HELPER_BIND] = { F_HELPER_DURATION, NFSV3_VERB_BIND },
	[METRIC_HELPER_UNMOUNT] = { F_HELPER_DURATION, NFSV3_VERB_UNMOUNT },
	[METRIC_HELPER_IDMAPFS] = { F_HELPER_DURATION, "idmapfs" },
	[METRIC_STATE_WRITE] = { F_STATE_WRITE_DURATION, NULL },
};

struct gauge_series {
	enum family_id family;
	const char *label_value;
	size_t offset; /* of its uint64_t in struct metrics_gauges */
};

#define GAUGE(f, label, field) { f, label, offsetof(struct metrics_gauges, field) }
static const struct gauge_series gauge_series[] = {
	GAUGE(F_VOLUMES, NULL, volumes),
	GAUGE(F_MOUNTS, NULL, mounts),
	GAUGE(F_MAPPED_MOUNTS, NULL, mapped_mounts),
	GAUGE(F_KERNEL_MOUNTS, NULL, kernel_mounts),
	GAUGE(F_KERNEL_MOUNT_USERS, NULL, kernel_mount_users),
	GAUGE(F_CONNECTIONS, "plugin", plugin_connections),
	GAUGE(F_CONNECTIONS, "admin", admin_connections),
	GAUGE(F_RESIDENT, NULL, resident_bytes),
};

/* A growing text buffer; a failed allocation makes the whole output fail. */
struct out {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)n;
		char *buf = realloc(o->buf, cap);
		if (!buf) {
			o->failed = true;
			return;
		}
		o->buf = buf;
		o->cap = cap;
	}
}

/* `{label="value"` without the closing brace (a histogram adds le), or "" when unlabelled. */
static void emit_labels_open(struct out *o, const struct family *f, const char *value)
{
	if (f->label)
		emit(o, "{%s=\"%s\"", f->label, value);
}

static void emit_counter_family(struct out *o, enum family_id id)
{
	const struct family *f = &families[id];

	for (unsigned c = 0; c < METRIC_COUNTER_COUNT; c++) {
		if (counter_series[c].family != id)
			continue;
		emit(o, "%s", f->name);
		emit_labels_open(o, f, counter_series[c].label_value);
		emit(o, "%s %" PRIu64 "\n", f->label ? "}" : "", counters[c]);
	}
}

static void emit_histogram_family(struct out *o, enum family_id id)
{
	const struct family *f = &families[id];

	for (unsigned h = 0; h < METRIC_HISTOGRAM_COUNT; h++) {
		const struct histogram *hist = &histograms[h];
		const char *value = histogram_series[h].label_value;
		uint64_t cumulative = 0;

		if (histogram_series[h].family != id)
			continue;
		for (size_t b = 0; b <= BUCKETS; b++) {
			cumulative += hist->buckets[b];
			emit(o, "%s_bucket", f->name);
			if (f->label)
				emit(o, "{%s=\"%s\",le=", f->label, value);
			else
				emit(o, "{le=");
			if (b < BUCKETS)
				emit(o, "\"%g\"} %" PRIu64 "\n", bucket_bounds[b], cumulative);
			else
				emit(o, "\"+Inf\"} %" PRIu64 "\n", cumulative);
		}
		emit(o, "%s_sum", f->name);
		emit_labels_open(o, f, value);
		emit(o, "%s %.9g\n", f->label ? "}" : "", hist->sum);
		emit(o, "%s_count", f->name);
		emit_labels_open(o, f, value);
		emit(o, "%s %" PRIu64 "\n", f->label ? "}" : "", hist->count);
	}
}

static void emit_requests(struct out *o, const struct family *f)
{
	for (unsigned r = 0; r < METRIC_ROUTE_COUNT; r++)
		for (unsigned k = 0; k < METRIC_OUTCOME_COUNT; k++)
			emit(o, "%s{route=\"%s\",outcome=\"%s\"} %" PRIu64 "\n", f->name, route_paths[r], outcome_names[k],
			     requests[r][k]);
}

static void emit_gauge_family(struct out *o, enum family_id id, const struct metrics_gauges *gauges)
{
	const struct family *f = &families[id];

	for (size_t g = 0; g < sizeof(gauge_series) / sizeof(gauge_series[0]); g++) {
		uint64_t value;

		if (gauge_series[g].family != id)
			continue;
		memcpy(&value, (const char *)gauges + gauge_series[g].offset, sizeof(value));
		emit(o, "%s", f->name);
		emit_labels_open(o, f, gauge_series[g].label_value);
		emit(o, "%s %" PRIu64 "\n", f->label ? "}" : "", value);
	}
}

static const char *const kind_types[] = {
	[KIND_COUNTERS] = "counter", [KIND_HISTOGRAMS] = "histogram", [KIND_REQUESTS] = "counter", [KIND_GAUGES] = "gauge",
};

char *metrics_format(const struct metrics_gauges *gauges, size_t *len)
{
	/* About 18 KiB today: one allocation in the common case. */
	struct out o = { .cap = 32768 };

	if (!(o.buf = malloc(o.cap)))
		return NULL;
	for (unsigned id = 0; id < F_COUNT; id++) {
		const struct family *f = &families[id];

		emit(&o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, kind_types[f->kind]);
		switch (f->kind) {
		case KIND_COUNTERS: emit_counter_family(&o, (enum family_id)id); break;
		case KIND_HISTOGRAMS: emit_histogram_family(&o, (enum family_id)id); break;
		case KIND_REQUESTS: emit_requests(&o, f); break;
		case KIND_GAUGES: emit_gauge_family(&o, (enum family_id)id, gauges); break;
		}
	}
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}
