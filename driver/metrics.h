/*
 * Metrics for GET /metrics on the admin listener, in the Prometheus text
 * format (version 0.0.4). Every series is a slot in a fixed array named by
 * an enum below, so recording a sample is an add (a histogram: a few
 * compares and adds), with no allocation, no lookup by name and no lock:
 * record from the loop thread only (a worker thread hands its figures back
 * to its after-work callback, as state.c does).
 *
 * Adding a series is one enum value here and one row in metrics.c's table
 * for it; the format lists every series, zero or not, so that a scraper
 * sees a counter from its first scrape.
 *
 * The TLS and LDAP families are declared ahead of the code that feeds them:
 * a failed handshake calls metrics_count(METRIC_TLS_HANDSHAKE_FAILURES_<REASON>)
 * once, a finished lookup metrics_count(METRIC_LDAP_LOOKUPS_<OUTCOME>) once
 * (from the after-work callback if the lookup ran on a worker thread). A new
 * reason or outcome is one value below and one row in counter_series. A unit
 * suite or the fuzz build that links a caller links metrics.o too.
 */
#ifndef NFSV3_METRICS_H
#define NFSV3_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Counters. A labelled family is a run of values, one per label value. */
enum metric_counter {
	/* nfsv3driver_helper_timeouts_total: helper runs (idmapfs starts too) killed at their deadline */
	METRIC_HELPER_TIMEOUTS,
	/* nfsv3driver_helper_kills_total: short-lived helper runs that ended by a signal */
	METRIC_HELPER_KILLS,
	/* nfsv3driver_idmapfs_deaths_total: a serving idmapfs exited without being asked to */
	METRIC_IDMAPFS_DEATHS,
	/* nfsv3driver_idmapfs_restarts_total: a Mount started a new idmapfs after one died */
	METRIC_IDMAPFS_RESTARTS,
	/* nfsv3driver_idmapfs_adoptions_total: a restarted daemon took over a running idmapfs */
	METRIC_IDMAPFS_ADOPTIONS,
	/* nfsv3driver_idmapfs_resumed_total: a stopped idmapfs was sent SIGCONT */
	METRIC_IDMAPFS_RESUMED,
	/* nfsv3driver_state_writes_total{outcome} */
	METRIC_STATE_WRITES_OK,
	METRIC_STATE_WRITES_ERROR,
	/* nfsv3driver_tls_handshake_failures_total{reason} */
	METRIC_TLS_HANDSHAKE_FAILURES_PROTOCOL,       /* not TLS, no common version or cipher */
	METRIC_TLS_HANDSHAKE_FAILURES_NO_CERTIFICATE, /* the client sent no certificate */
	METRIC_TLS_HANDSHAKE_FAILURES_BAD_CERTIFICATE,/* its certificate did not verify against the CA */
	METRIC_TLS_HANDSHAKE_FAILURES_TIMEOUT,        /* the handshake did not finish in time */
	METRIC_TLS_HANDSHAKE_FAILURES_OTHER,
	/* nfsv3driver_ldap_lookups_total{outcome} */
	METRIC_LDAP_LOOKUPS_FOUND,               /* uidNumber and gidNumber found */
	METRIC_LDAP_LOOKUPS_NOT_FOUND,           /* no such user */
	METRIC_LDAP_LOOKUPS_INVALID_CREDENTIALS, /* the binding's password did not bind */
	METRIC_LDAP_LOOKUPS_TIMEOUT,             /* the server did not answer in time */
	METRIC_LDAP_LOOKUPS_ERROR,               /* anything else: connection, TLS, protocol */
	METRIC_COUNTER_COUNT
};

/* Histograms (seconds, fixed buckets from 1 ms to 60 s). */
enum metric_histogram {
	/* nfsv3driver_operation_duration_seconds{operation}: request in, answer out */
	METRIC_OPERATION_CREATE,
	METRIC_OPERATION_MOUNT,
	METRIC_OPERATION_UNMOUNT,
	METRIC_OPERATION_REMOVE,
	/* nfsv3driver_helper_duration_seconds{verb}: spawn to reaped (idmapfs: to ready) */
	METRIC_HELPER_NFS,
	METRIC_HELPER_BIND,
	METRIC_HELPER_UNMOUNT,
	METRIC_HELPER_IDMAPFS,
	/* nfsv3driver_state_write_duration_seconds: temp file, fsync, rename, fsync of the directory */
	METRIC_STATE_WRITE,
	METRIC_HISTOGRAM_COUNT
};

/* nfsv3driver_requests_total{route,outcome}: every answer the routes give. */
enum metric_route {
	METRIC_ROUTE_ACTIVATE,
	METRIC_ROUTE_CREATE,
	METRIC_ROUTE_MOUNT,
	METRIC_ROUTE_UNMOUNT,
	METRIC_ROUTE_REMOVE,
	METRIC_ROUTE_PATH,
	METRIC_ROUTE_GET,
	METRIC_ROUTE_LIST,
	METRIC_ROUTE_CAPABILITIES,
	METRIC_ROUTE_PING,
	METRIC_ROUTE_EVACUATE,
	METRIC_ROUTE_METRICS,
	METRIC_ROUTE_OTHER, /* a path no table knows */
	METRIC_ROUTE_COUNT
};

enum metric_outcome {
	METRIC_OUTCOME_OK,      /* 200 with an empty Err */
	METRIC_OUTCOME_ERROR,   /* Err set: the operation failed */
	METRIC_OUTCOME_REFUSED, /* a 4xx status: unknown route, wrong method */
	METRIC_OUTCOME_COUNT
};

/* What the scrape reads from the daemon at that moment. */
struct metrics_gauges {
	uint64_t volumes;            /* created and not removed */
	uint64_t mounts;             /* Mountpoints live */
	uint64_t mapped_mounts;      /* of those, served by idmapfs */
	uint64_t kernel_mounts;      /* shared kernel NFS mounts held */
	uint64_t kernel_mount_users; /* volume mounts bound to them */
	uint64_t plugin_connections, admin_connections;
	uint64_t resident_bytes;     /* process RSS */
};

void metrics_count(enum metric_counter counter);
void metrics_observe(enum metric_histogram histogram, double seconds);
void metrics_request(enum metric_route route, enum metric_outcome outcome);

/* The route of a request path (METRIC_ROUTE_OTHER when unknown). */
enum metric_route metrics_route(const char *path);
/* A short-lived helper run of verb (NFSV3_VERB_*) ended: its duration, timeout and signal. */
void metrics_helper_finished(const char *verb, double seconds, bool timed_out, int term_signal);

/* RSS from /proc/self/statm, or 0 when it cannot be read. */
uint64_t metrics_resident_bytes(void);

/* The whole exposition, NUL-terminated, malloc'd (*len without the NUL); NULL when out of memory. */
char *metrics_format(const struct metrics_gauges *gauges, size_t *len);

/* Every counter and histogram back to zero (for tests). */
void metrics_reset(void);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
