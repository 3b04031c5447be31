/*
 * Unit suite for driver/kernel.c, the shared kernel NFS mounts, on a real
 * libuv loop and the real helper pool, with a fake mount helper: a shell
 * script that records its argv and does what the test's "mode" file says
 * (succeed, fail as the real helper fails, or hang past the deadline).
 * What is checked: one mount per (address, export, options) however many
 * volumes ask at once, reference counts, the unmount at the last release,
 * failures and timeouts reaching every waiter, and a retry after them.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "nfsv3driver.h"
#include "harness.h"
#include "harness_fake.h"
#include "helper.h"
#include "kernel.h"
#include "log.h"

static char dir[64], calls[128];
static uv_loop_t loop;
static struct config cfg;
static struct driver drv;

/* One answer of kernel_acquire. */
struct answer {
	bool done;
	char key[KERNEL_KEY_LEN + 1];
	char err[512];
};

/* After the preamble (harness_fake.h): what the test's mode says. */
static const char fake_helper[] =
	"case $mode in\n"
	"ok) exit 0 ;;\n"
	"fail) echo \"" NFSV3_HELPER_MOUNT ": mounting 192.0.2.7:/export: access denied by server\" >&2; exit 6 ;;\n"
	"hang) exec /bin/sleep 30 ;;\n"
	"esac\n"
	"exit 1\n";

static void set_mode(const char *mode)
{
	fake_helper_mode(dir, mode);
}

static int runs(const char *verb)
{
	return fake_helper_runs(dir, verb);
}

static void setup(void)
{
	char path[160];

	snprintf(dir, sizeof(dir), "/tmp/test_kernel.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(calls, sizeof(calls), "%s/calls", dir);
	set_mode("ok");
	fake_helper_install(dir, NFSV3_HELPER_MOUNT, fake_helper, drv.mount_helper, sizeof(drv.mount_helper));
	snprintf(path, sizeof(path), "%s/root", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);

	log_setup("test_kernel", LOG_ERROR);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	cfg = (struct config){ .mount_root = strdup(path), .helper_timeout_s = 1, .max_parallel = 4,
			       .app_uid = 2000, .app_gid = 2000 };
	drv.loop = &loop;
	drv.cfg = &cfg;
	drv.kernel_mounts = NULL;
	drv.helpers = helper_pool_new(&loop, cfg.max_parallel, cfg.helper_timeout_s);
	ck_assert_ptr_nonnull(drv.helpers);
}

static void teardown(void)
{
	char cmd[128];

	kernel_free_all(&drv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void on_acquired(struct error *err, const char *key, void *data)
{
	struct answer *a = data;

	a->done = true;
	if (err) {
		snprintf(a->err, sizeof(a->err), "%s", err->message);
		error_free(err);
	} else {
		snprintf(a->key, sizeof(a->key), "%s", key);
	}
}

/* Run the loop until every answer is in (or 10 s pass). */
static void wait_for(struct answer *a, int n)
{
	for (int spins = 0; spins < 10000; spins++) {
		int left = 0;
		for (int i = 0; i < n; i++)
			left += !a[i].done;
		if (!left)
			return;
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ck_abort_msg("kernel_acquire did not answer within 10 s");
}

/* Run the loop until the helper has run verb count times. */
static void wait_runs(const char *verb, int count)
{
	for (int spins = 0; spins < 10000 && runs(verb) < count; spins++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ck_assert_int_eq(runs(verb), count);
}

static struct volume_spec spec_for(const char *host, const char *path, const char *nfs_options)
{
	return (struct volume_spec){ .kind = SOURCE_NFS, .host = (char *)host, .path = (char *)path,
				     .version = "3", .nfs_options = (char *)nfs_options };
}

START_TEST(one_mount_for_volumes_asking_at_once)
{
	struct volume_spec spec = spec_for("192.0.2.7", "/export", NULL);
	struct answer a[5] = { 0 };

	for (int i = 0; i < 5; i++)
		kernel_acquire(&drv, &spec, on_acquired, &a[i]);
	wait_for(a, 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_msg(a[i].err[0] == '\0', "%s", a[i].err);
		ck_assert_str_eq(a[i].key, a[0].key);
	}
	ck_assert_uint_eq(strlen(a[0].key), KERNEL_KEY_LEN);
	ck_assert_int_eq(runs(NFSV3_VERB_NFS), 1);
	ck_assert_uint_eq(kernel_users(&drv, a[0].key), 5);
	/* The helper got the address to mount, the source and the options. */
	char line[1024] = "";
	FILE *f = fopen(calls, "r");
	ck_assert(f && fgets(line, sizeof(line), f));
	fclose(f);
	ck_assert_msg(strstr(line, a[0].key) && strstr(line, "192.0.2.7:/export 192.0.2.7") && strstr(line, "vers=3"),
		      "helper argv: %s", line);

	/* The last release unmounts, force (nothing uses it any more). */
	for (int i = 0; i < 4; i++)
		kernel_release(&drv, a[0].key);
	ck_assert_uint_eq(kernel_users(&drv, a[0].key), 1);
	ck_assert_int_eq(runs(NFSV3_VERB_UNMOUNT), 0);
	kernel_release(&drv, a[0].key);
	wait_runs(NFSV3_VERB_UNMOUNT, 1);
	for (int i = 0; i < 1000 && kernel_users(&drv, a[0].key); i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(kernel_users(&drv, a[0].key), 0);
	f = fopen(calls, "r");
	ck_assert(f && fgets(line, sizeof(line), f) && fgets(line, sizeof(line), f));
	fclose(f);
	ck_assert_msg(strstr(line, NFSV3_KERNEL_DIR "/") && strstr(line, a[0].key) && strstr(line, NFSV3_ARG_FORCE),
		      "unmount argv: %s", line);
}
END_TEST

/* Another export, another server or other options: another kernel mount. */
START_TEST(keys_follow_address_export_and_options)
{
	struct volume_spec specs[] = {
		spec_for("192.0.2.7", "/export", NULL),
		spec_for("192.0.2.7", "/export/sub", NULL),
		spec_for("192.0.2.8", "/export", NULL),
		spec_for("192.0.2.7", "/export", "actimeo=3"),
		spec_for("192.0.2.7", "/export", NULL),
	};
	struct answer a[5] = { 0 };

	for (int i = 0; i < 5; i++)
		kernel_acquire(&drv, &specs[i], on_acquired, &a[i]);
	wait_for(a, 5);
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++)
			ck_assert_str_ne(a[i].key, a[j].key);
	ck_assert_str_eq(a[4].key, a[0].key);
	ck_assert_int_eq(runs(NFSV3_VERB_NFS), 4);
	uint64_t mounts = 0, users = 0;
	kernel_count(&drv, &mounts, &users);
	ck_assert_uint_eq(mounts, 4);
	ck_assert_uint_eq(users, 5);
}
END_TEST

/* A failed mount reaches every waiter with the helper's own line; the next acquire tries again. */
START_TEST(a_failure_reaches_every_waiter_then_a_retry_mounts)
{
	struct volume_spec spec = spec_for("192.0.2.7", "/export", NULL);
	struct answer a[3] = { 0 }, again = { 0 };

	set_mode("fail");
	for (int i = 0; i < 3; i++)
		kernel_acquire(&drv, &spec, on_acquired, &a[i]);
	wait_for(a, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(strstr(a[i].err, "access denied by server") != NULL, "waiter %d: \"%s\"", i, a[i].err);
	ck_assert_int_eq(runs(NFSV3_VERB_NFS), 1);
	uint64_t mounts = 9, users = 9;
	kernel_count(&drv, &mounts, &users);
	ck_assert_uint_eq(users, 0);

	set_mode("ok");
	kernel_acquire(&drv, &spec, on_acquired, &again);
	wait_for(&again, 1);
	ck_assert_msg(again.err[0] == '\0', "%s", again.err);
	ck_assert_int_eq(runs(NFSV3_VERB_NFS), 2);
	ck_assert_uint_eq(kernel_users(&drv, again.key), 1);
}
END_TEST

/* A helper that hangs is killed at the deadline: a timeout error, and the
 * mount it may have landed is detached before anyone tries again. */
START_TEST(a_hung_mount_times_out_and_is_detached)
{
	struct volume_spec spec = spec_for("192.0.2.7", "/export", NULL);
	struct answer a[2] = { 0 };

	set_mode("hang");
	for (int i = 0; i < 2; i++)
		kernel_acquire(&drv, &spec, on_acquired, &a[i]);
	wait_for(a, 2);
	for (int i = 0; i < 2; i++)
		ck_assert_msg(strstr(a[i].err, NFSV3_ERR_TIMEOUT) != NULL, "waiter %d: \"%s\"", i, a[i].err);
	set_mode("ok");
	wait_runs(NFSV3_VERB_UNMOUNT, 1);
}
END_TEST

/* An address the policy would see differently is not the point here; a
 * name that is not an address goes through the resolver (loopback's name). */
START_TEST(a_name_is_resolved_and_the_address_mounted)
{
	struct volume_spec spec = spec_for("localhost", "/export", NULL);
	struct answer a = { 0 };
	char line[1024] = "";
	FILE *f;

	kernel_acquire(&drv, &spec, on_acquired, &a);
	wait_for(&a, 1);
	ck_assert_msg(a.err[0] == '\0', "%s", a.err);
	f = fopen(calls, "r");
	ck_assert(f && fgets(line, sizeof(line), f));
	fclose(f);
	/* The source keeps the name; the address argument is the resolved one. */
	ck_assert_msg(strstr(line, "localhost:/export 127.0.0.1") || strstr(line, "localhost:/export ::1"),
		      "helper argv: %s", line);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kernel");
	TCase *tc = tcase_create("kernel");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, one_mount_for_volumes_asking_at_once);
	tcase_add_test(tc, keys_follow_address_export_and_options);
	tcase_add_test(tc, a_failure_reaches_every_waiter_then_a_retry_mounts);
	tcase_add_test(tc, a_hung_mount_times_out_and_is_detached);
	tcase_add_test(tc, a_name_is_resolved_and_the_address_mounted);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
