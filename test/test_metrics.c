/*
 * driver/metrics.c: recording and the exposition, unit by unit; then
 * GET /metrics of the real daemon, its counters following the calls made.
 * Every exposition is read by a real Prometheus text-format parser
 * (Debian's python3-prometheus-client), not by string matching.
 */
#include <arpa/inet.h>
#include <check.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "harness.h"
#include "metrics.h"

/* Debian's interpreter, where python3-prometheus-client installs (not a pyenv or venv one). */
#define PYTHON "/usr/bin/python3"

/*
 * Every sample as "name{label=value,...}" (labels sorted) => value, and every
 * family's type as "#type name" => type. The parser raises on anything the
 * format does not allow, which fails the test.
 */
static const char parse_program[] =
	"import sys, json\n"
	"from prometheus_client.parser import text_string_to_metric_families\n"
	"out = {}\n"
	"for fam in text_string_to_metric_families(sys.stdin.read()):\n"
	"    out['#type ' + fam.name] = fam.type\n"
	"    out['#help ' + fam.name] = fam.documentation\n"
	"    for s in fam.samples:\n"
	"        key = s.name + '{' + ','.join(k + '=' + v for k, v in sorted(s.labels.items())) + '}'\n"
	"        if key in out:\n"
	"            sys.exit('duplicate sample ' + key)\n"
	"        out[key] = s.value\n"
	"print(json.dumps(out))\n";

static json_t *parse_exposition(const char *text)
{
	char path[] = "/tmp/nfsv3-metrics.XXXXXX", cmd[256], *out = NULL;
	size_t cap = 0;
	json_error_t jerr;
	json_t *doc;
	FILE *f, *p;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), PYTHON " -c \"$NFSV3_METRICS_PARSER\" < %s", path);
	setenv("NFSV3_METRICS_PARSER", parse_program, 1);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ssize_t n = getdelim(&out, &cap, '\0', p);
	int status = pclose(p);
	unlink(path);
	ck_assert_msg(status == 0 && n > 0, "the Prometheus parser refused the exposition (status %d):\n%s", status, text);
	doc = json_loads(out, 0, &jerr);
	ck_assert_msg(doc != NULL, "parser output is not JSON: %s", out);
	free(out);
	return doc;
}

/* A sample's value; fails the test when the exposition lacks it. */
static double sample(json_t *doc, const char *key)
{
	json_t *v = json_object_get(doc, key);

	ck_assert_msg(json_is_number(v), "no sample %s", key);
	return json_number_value(v);
}

static const char *family_type(json_t *doc, const char *family)
{
	char key[256];
	const char *type;

	snprintf(key, sizeof(key), "#type %s", family);
	type = json_string_value(json_object_get(doc, key));
	ck_assert_msg(type != NULL, "no family %s", family);
	return type;
}

static json_t *format_now(const struct metrics_gauges *gauges)
{
	size_t len;
	char *text = metrics_format(gauges, &len);
	json_t *doc;

	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(strlen(text), len);
	doc = parse_exposition(text);
	free(text);
	return doc;
}

/* ---- the recording and the format ---- */

START_TEST(histogram_buckets_are_cumulative_and_inclusive)
{
	struct metrics_gauges g = { 0 };
	json_t *doc;

	metrics_reset();
	metrics_observe(METRIC_OPERATION_MOUNT, 0.001); /* on a bound: in that bucket (le is <=) */
	metrics_observe(METRIC_OPERATION_MOUNT, 0.003);
	metrics_observe(METRIC_OPERATION_MOUNT, 0.003);
	metrics_observe(METRIC_OPERATION_MOUNT, 0.5);
	metrics_observe(METRIC_OPERATION_MOUNT, 100); /* past the last bound: +Inf only */
	doc = format_now(&g);
	ck_assert_str_eq(family_type(doc, "nfsv3driver_operation_duration_seconds"), "histogram");
	ck_assert_double_eq(sample(doc, "nfsv3driver_operation_duration_seconds_bucket{le=0.001,operation=mount}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_operation_duration_seconds_bucket{le=0.0025,operation=mount}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_operation_duration_seconds_bucket{le=0.005,operation=mount}"), 3);
	ck_assert_double_eq(sample(doc, "nfsv3driver_operation_duration_seconds_bucket{le=0.25,operation=mount}"), 3);
	ck_assert_double_eq(sample(doc, "nfsv3driver_operation_duration_seconds_bucket{le=0.5,operation=mount}"), 4);
	ck_assert_double_eq(sample(doc, "nfsv3driver_operation_duration_seconds_bucket{le=60,operation=mount}"), 4);
	ck_assert_double_eq(sample(doc, "nfsv3driver_operation_duration_seconds_bucket{le=+Inf,operation=mount}"), 5);
	ck_assert_double_eq(sample(doc, "nfsv3driver_operation_duration_seconds_count{operation=mount}"), 5);
	ck_assert_double_eq_tol(sample(doc, "nfsv3driver_operation_duration_seconds_sum{operation=mount}"), 100.507, 1e-9);
	/* The other operations are there, at zero. */
	ck_assert_double_eq(sample(doc, "nfsv3driver_operation_duration_seconds_count{operation=create}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_operation_duration_seconds_bucket{le=+Inf,operation=remove}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_state_write_duration_seconds_count{}"), 0);
	json_decref(doc);
}
END_TEST

START_TEST(counters_and_the_other_engineers_families)
{
	struct metrics_gauges g = { 0 };
	json_t *doc;

	metrics_reset();
	metrics_count(METRIC_TLS_HANDSHAKE_FAILURES_BAD_CERTIFICATE);
	metrics_count(METRIC_TLS_HANDSHAKE_FAILURES_BAD_CERTIFICATE);
	metrics_count(METRIC_LDAP_LOOKUPS_NOT_FOUND);
	metrics_count(METRIC_IDMAPFS_ADOPTIONS);
	metrics_count(METRIC_STATE_WRITES_ERROR);
	doc = format_now(&g);
	ck_assert_str_eq(family_type(doc, "nfsv3driver_tls_handshake_failures"), "counter");
	ck_assert_str_eq(family_type(doc, "nfsv3driver_ldap_lookups"), "counter");
	ck_assert_double_eq(sample(doc, "nfsv3driver_tls_handshake_failures_total{reason=bad_certificate}"), 2);
	ck_assert_double_eq(sample(doc, "nfsv3driver_tls_handshake_failures_total{reason=no_certificate}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_tls_handshake_failures_total{reason=protocol}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_tls_handshake_failures_total{reason=timeout}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_tls_handshake_failures_total{reason=other}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_ldap_lookups_total{outcome=not_found}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_ldap_lookups_total{outcome=found}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_ldap_lookups_total{outcome=invalid_credentials}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_ldap_lookups_total{outcome=timeout}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_ldap_lookups_total{outcome=error}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_idmapfs_adoptions_total{}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_idmapfs_deaths_total{}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_state_writes_total{outcome=error}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_state_writes_total{outcome=ok}"), 0);
	/* Every family has its HELP line. */
	const char *key;
	json_t *value;
	int families = 0;
	json_object_foreach(doc, key, value) {
		if (strncmp(key, "#type ", 6) != 0)
			continue;
		char help[256];
		snprintf(help, sizeof(help), "#help %s", key + 6);
		const char *text = json_string_value(json_object_get(doc, help));
		ck_assert_msg(text && strlen(text) > 10, "family %s has no HELP", key + 6);
		families++;
	}
	ck_assert_int_eq(families, 20);
	json_decref(doc);
}
END_TEST

START_TEST(requests_by_route_and_outcome)
{
	struct metrics_gauges g = { 0 };
	json_t *doc;

	metrics_reset();
	ck_assert_int_eq(metrics_route(NFSV3_ROUTE_MOUNT), METRIC_ROUTE_MOUNT);
	ck_assert_int_eq(metrics_route(NFSV3_ADMIN_METRICS), METRIC_ROUTE_METRICS);
	ck_assert_int_eq(metrics_route("/VolumeDriver.Nope"), METRIC_ROUTE_OTHER);
	metrics_request(metrics_route(NFSV3_ROUTE_MOUNT), METRIC_OUTCOME_ERROR);
	metrics_request(metrics_route("/x"), METRIC_OUTCOME_REFUSED);
	metrics_request(metrics_route(NFSV3_ROUTE_CREATE), METRIC_OUTCOME_OK);
	metrics_request(metrics_route(NFSV3_ROUTE_CREATE), METRIC_OUTCOME_OK);
	doc = format_now(&g);
	ck_assert_str_eq(family_type(doc, "nfsv3driver_requests"), "counter");
	ck_assert_double_eq(sample(doc, "nfsv3driver_requests_total{outcome=error,route=/VolumeDriver.Mount}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_requests_total{outcome=ok,route=/VolumeDriver.Mount}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_requests_total{outcome=refused,route=other}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_requests_total{outcome=ok,route=/VolumeDriver.Create}"), 2);
	ck_assert_double_eq(sample(doc, "nfsv3driver_requests_total{outcome=ok,route=/ping}"), 0);
	json_decref(doc);
}
END_TEST

START_TEST(helper_runs_by_verb_timeouts_and_kills)
{
	struct metrics_gauges g = { 0 };
	json_t *doc;

	metrics_reset();
	metrics_helper_finished(NFSV3_VERB_BIND, 0.004, false, 0);
	metrics_helper_finished(NFSV3_VERB_NFS, 30.0, true, SIGKILL);
	metrics_helper_finished(NFSV3_VERB_UNMOUNT, 0.002, false, SIGSEGV);
	metrics_helper_finished("no-such-verb", 1, false, 0);
	doc = format_now(&g);
	ck_assert_double_eq(sample(doc, "nfsv3driver_helper_duration_seconds_count{verb=bind}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_helper_duration_seconds_bucket{le=0.005,verb=bind}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_helper_duration_seconds_count{verb=nfs}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_helper_duration_seconds_bucket{le=10,verb=nfs}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_helper_duration_seconds_bucket{le=30,verb=nfs}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_helper_duration_seconds_count{verb=unmount}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_helper_duration_seconds_count{verb=idmapfs}"), 0);
	ck_assert_double_eq(sample(doc, "nfsv3driver_helper_timeouts_total{}"), 1);
	ck_assert_double_eq(sample(doc, "nfsv3driver_helper_kills_total{}"), 2);
	json_decref(doc);
}
END_TEST

START_TEST(gauges_are_what_the_scrape_read)
{
	struct metrics_gauges g = {
		.volumes = 1000, .mounts = 900, .mapped_mounts = 300, .kernel_mounts = 4, .kernel_mount_users = 600,
		.plugin_connections = 7, .admin_connections = 1, .resident_bytes = 5u << 20,
	};
	json_t *doc;

	metrics_reset();
	doc = format_now(&g);
	ck_assert_str_eq(family_type(doc, "nfsv3driver_mounts"), "gauge");
	ck_assert_double_eq(sample(doc, "nfsv3driver_volumes{}"), 1000);
	ck_assert_double_eq(sample(doc, "nfsv3driver_mounts{}"), 900);
	ck_assert_double_eq(sample(doc, "nfsv3driver_mapped_mounts{}"), 300);
	ck_assert_double_eq(sample(doc, "nfsv3driver_kernel_mounts{}"), 4);
	ck_assert_double_eq(sample(doc, "nfsv3driver_kernel_mount_users{}"), 600);
	ck_assert_double_eq(sample(doc, "nfsv3driver_open_connections{listener=plugin}"), 7);
	ck_assert_double_eq(sample(doc, "nfsv3driver_open_connections{listener=admin}"), 1);
	ck_assert_double_eq(sample(doc, "process_resident_memory_bytes{}"), 5 << 20);
	ck_assert_uint_gt(metrics_resident_bytes(), 1 << 20);
	json_decref(doc);
}
END_TEST

/* Recording is arithmetic on fixed arrays: a million samples take no heap. */
START_TEST(recording_allocates_nothing)
{
	struct mallinfo2 before, after;

	metrics_reset();
	before = mallinfo2();
	for (int i = 0; i < 1000000; i++) {
		metrics_observe((enum metric_histogram)(i % METRIC_HISTOGRAM_COUNT), i * 1e-6);
		metrics_count((enum metric_counter)(i % METRIC_COUNTER_COUNT));
		metrics_request((enum metric_route)(i % METRIC_ROUTE_COUNT), (enum metric_outcome)(i % METRIC_OUTCOME_COUNT));
		metrics_helper_finished(NFSV3_VERB_BIND, 0.001, false, 0);
	}
	after = mallinfo2();
	ck_assert_uint_eq(after.uordblks, before.uordblks);
	ck_assert_uint_eq(after.hblkhd, before.hblkhd);
	/* Out of range is ignored, not a write past the arrays. */
	metrics_count(METRIC_COUNTER_COUNT);
	metrics_observe(METRIC_HISTOGRAM_COUNT, 1);
	metrics_request(METRIC_ROUTE_COUNT, METRIC_OUTCOME_OK);
}
END_TEST

/* ---- the daemon's GET /metrics ---- */

/* GET path on the admin port; the body (malloc'd), its status and Content-Type. */
static char *admin_get(const char *path, int *status, char *content_type, size_t type_size)
{
	char *buf = raw_admin_get(&d, path), *body, *type;

	ck_assert_msg(sscanf(buf, "HTTP/1.1 %d", status) == 1, "not an HTTP answer: %s", buf);
	body = strstr(buf, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	*body = '\0';
	type = strcasestr(buf, "\r\nContent-Type: ");
	ck_assert_ptr_nonnull(type);
	type += 16;
	snprintf(content_type, type_size, "%.*s", (int)strcspn(type, "\r"), type);
	memmove(buf, body + 4, strlen(body + 4) + 1);
	return buf;
}

static json_t *scrape(void)
{
	char type[128];
	int status;
	char *text = admin_get(NFSV3_ADMIN_METRICS, &status, type, sizeof(type));
	json_t *doc;

	ck_assert_int_eq(status, 200);
	ck_assert_str_eq(type, METRICS_CONTENT_TYPE);
	doc = parse_exposition(text);
	free(text);
	return doc;
}

/* How much a sample grew between two scrapes. */
static double delta(json_t *before, json_t *after, const char *key)
{
	return sample(after, key) - sample(before, key);
}

#define REQ(route, outcome) "nfsv3driver_requests_total{outcome=" outcome ",route=" route "}"
#define OP_COUNT(op) "nfsv3driver_operation_duration_seconds_count{operation=" op "}"
#define HELPER_COUNT(verb) "nfsv3driver_helper_duration_seconds_count{verb=" verb "}"

START_TEST(counters_follow_the_calls)
{
	json_t *s0, *s1, *s2;
	char type[128];
	int status;

	s0 = scrape();
	ck_assert_double_eq(sample(s0, "nfsv3driver_mounts{}"), 0);
	create_local(true, "p1", NULL);
	json_decref(ok_call(true, NFSV3_ROUTE_MOUNT, "{\"Name\":\"p1\"}", NULL));
	s1 = scrape();
	ck_assert_double_eq(sample(s1, "nfsv3driver_volumes{}"), 1);
	ck_assert_double_eq(sample(s1, "nfsv3driver_mounts{}"), 1);
	ck_assert_double_eq(sample(s1, "nfsv3driver_mapped_mounts{}"), 0);
	ck_assert_double_eq(sample(s1, "nfsv3driver_kernel_mounts{}"), 0); /* a local source: no kernel NFS mount */
	json_decref(ok_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"p1\"}", NULL));
	json_decref(ok_call(true, NFSV3_ROUTE_REMOVE, "{\"Name\":\"p1\"}", NULL));
	err_call(true, NFSV3_ROUTE_MOUNT, "{\"Name\":\"nope\"}", NULL, NFSV3_ERR_NOT_FOUND);
	free(admin_get("/nope", &status, type, sizeof(type)));
	ck_assert_int_eq(status, 404);
	s2 = scrape();

	ck_assert_double_eq(delta(s0, s2, REQ("/VolumeDriver.Create", "ok")), 1);
	ck_assert_double_eq(delta(s0, s2, REQ("/VolumeDriver.Mount", "ok")), 1);
	ck_assert_double_eq(delta(s0, s2, REQ("/VolumeDriver.Mount", "error")), 1);
	ck_assert_double_eq(delta(s0, s2, REQ("/VolumeDriver.Unmount", "ok")), 1);
	ck_assert_double_eq(delta(s0, s2, REQ("/VolumeDriver.Remove", "ok")), 1);
	ck_assert_double_eq(delta(s0, s2, REQ("/VolumeDriver.Create", "error")), 0);
	ck_assert_double_eq(delta(s0, s2, REQ("other", "refused")), 1);
	ck_assert_double_eq(delta(s0, s2, REQ("/metrics", "ok")), 2);
	ck_assert_double_eq(delta(s0, s2, OP_COUNT("create")), 1);
	ck_assert_double_eq(delta(s0, s2, OP_COUNT("mount")), 2);
	ck_assert_double_eq(delta(s0, s2, OP_COUNT("unmount")), 1);
	ck_assert_double_eq(delta(s0, s2, OP_COUNT("remove")), 1);
	ck_assert_double_gt(delta(s0, s2, "nfsv3driver_operation_duration_seconds_sum{operation=mount}"), 0);
	ck_assert_double_eq(delta(s0, s2, HELPER_COUNT("bind")), 1);
	ck_assert_double_eq(delta(s0, s2, HELPER_COUNT("unmount")), 1);
	ck_assert_double_eq(delta(s0, s2, HELPER_COUNT("idmapfs")), 0);
	ck_assert_double_eq(delta(s0, s2, "nfsv3driver_helper_timeouts_total{}"), 0);
	/* Create, Mount, Unmount and Remove each wait for their own write. */
	ck_assert_double_eq(delta(s0, s2, "nfsv3driver_state_writes_total{outcome=ok}"), 4);
	ck_assert_double_eq(delta(s0, s2, "nfsv3driver_state_write_duration_seconds_count{}"), 4);
	ck_assert_double_eq(sample(s2, "nfsv3driver_volumes{}"), 0);
	ck_assert_double_eq(sample(s2, "nfsv3driver_mounts{}"), 0);
	/* The scrape's own connection is open while it is answered. */
	ck_assert_double_ge(sample(s2, "nfsv3driver_open_connections{listener=admin}"), 1);
	ck_assert_double_gt(sample(s2, "process_resident_memory_bytes{}"), 1 << 20);
	json_decref(s0);
	json_decref(s1);
	json_decref(s2);
	assert_alive();
}
END_TEST

static pid_t idmapfs_pid_of(const char *name)
{
	char cmd[1024];
	int pid = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "pgrep -o -f '^%s %s .* %s 1234 1234 2000 2000 rw$'",
		 harness_build_path("libexec/nfsv3driver/" NFSV3_HELPER_IDMAPFS), d.root, name);
	p = popen(cmd, "r");
	if (p) {
		if (fscanf(p, "%d", &pid) != 1)
			pid = 0;
		pclose(p);
	}
	ck_assert_msg(pid > 0, "no idmapfs process serves %s", name);
	return pid;
}

static void wait_for_log(const char *text, int count)
{
	for (int i = 0; i < 300 && daemon_log_count(&d, text) < count; i++)
		usleep(10000);
	ck_assert_msg(daemon_log_count(&d, text) >= count, "no \"%s\" in the log", text);
}

START_TEST(mapped_mount_death_restart_and_adoption)
{
	char body[1024], cmd[128];
	json_t *s0, *s1, *s2, *s3;

	chmod(src, 0777);
	snprintf(body, sizeof(body), "{\"Name\":\"m1\",\"Opts\":{\"source\":\"file://%s\",\"uid\":\"1234\",\"gid\":\"1234\"}}",
		 src);
	s0 = scrape();
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE, body, NULL));
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"m1\"}", NULL));
	s1 = scrape();
	ck_assert_double_eq(sample(s1, "nfsv3driver_mounts{}"), 1);
	ck_assert_double_eq(sample(s1, "nfsv3driver_mapped_mounts{}"), 1);
	ck_assert_double_eq(delta(s0, s1, HELPER_COUNT("idmapfs")), 1);
	ck_assert_double_eq(delta(s0, s1, HELPER_COUNT("bind")), 0);

	/* Killed: a death; the dead mount serves nothing; the next Mount restarts it. */
	snprintf(cmd, sizeof(cmd), "pkill -9 -s %d", (int)getsid(idmapfs_pid_of("m1")));
	ck_assert_int_eq(system(cmd), 0);
	wait_for_log("idmapfs.dead-mount-detached", 1);
	s2 = scrape();
	ck_assert_double_eq(delta(s1, s2, "nfsv3driver_idmapfs_deaths_total{}"), 1);
	ck_assert_double_eq(sample(s2, "nfsv3driver_mapped_mounts{}"), 0);
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"m1\"}", NULL));
	json_decref(s1);
	s1 = scrape();
	ck_assert_double_eq(delta(s2, s1, "nfsv3driver_idmapfs_restarts_total{}"), 1);
	ck_assert_double_eq(delta(s2, s1, HELPER_COUNT("idmapfs")), 1);
	ck_assert_double_eq(sample(s1, "nfsv3driver_mapped_mounts{}"), 1);

	/* A new daemon adopts the running idmapfs: its first scrape says so. */
	daemon_kill9(&d);
	daemon_start(&d);
	wait_for_log("idmapfs.adopted", 1);
	s3 = scrape();
	ck_assert_double_eq(sample(s3, "nfsv3driver_idmapfs_adoptions_total{}"), 1);
	ck_assert_double_eq(sample(s3, "nfsv3driver_mapped_mounts{}"), 1);
	ck_assert_double_eq(sample(s3, "nfsv3driver_volumes{}"), 1);
	json_decref(s0);
	json_decref(s1);
	json_decref(s2);
	json_decref(s3);
}
END_TEST

static Suite *metrics_suite(bool daemon)
{
	Suite *s = suite_create("metrics");
	TCase *unit = tcase_create("format");

	tcase_add_test(unit, histogram_buckets_are_cumulative_and_inclusive);
	tcase_add_test(unit, counters_and_the_other_engineers_families);
	tcase_add_test(unit, requests_by_route_and_outcome);
	tcase_add_test(unit, helper_runs_by_verb_timeouts_and_kills);
	tcase_add_test(unit, gauges_are_what_the_scrape_read);
	tcase_add_test(unit, recording_allocates_nothing);
	suite_add_tcase(s, unit);
	if (daemon) {
		TCase *tc = tcase_create("daemon");
		tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, counters_follow_the_calls);
		tcase_add_test(tc, mapped_mount_death_restart_and_adoption);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	struct stat root;
	bool daemon = true;

	/* The unit cases run anywhere; the daemon's need root (bind and FUSE mounts). */
	if (geteuid() != 0) {
		fprintf(stderr, "test_metrics: not root: the daemon cases are skipped\n");
		daemon = false;
	} else if (stat("/", &root) != 0 || !(root.st_mode & S_IXOTH) || access("/dev/fuse", R_OK | W_OK) != 0) {
		fprintf(stderr, "test_metrics: / not searchable by other uids or no /dev/fuse: the daemon cases are skipped\n");
		daemon = false;
	}
	return harness_run(metrics_suite(daemon));
}
