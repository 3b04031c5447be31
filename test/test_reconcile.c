/*
 * Unit suite for driver/reconcile.c: the state (a registry filled here)
 * meets a mount table (a mountinfo fixture), on a real libuv loop with a
 * fake mount helper that records what it is asked to detach. What is
 * checked: a mounted volume the table shows is adopted with its kernel
 * mount; one the table lacks is marked unmounted and its kernel mount, now
 * unheld, detached; mounts the state does not record (or records as not
 * mounted) and unknown kernel mounts are purged; the count of changes.
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
#include "reconcile.h"
#include "registry.h"
#include "state.h"

#define K1 "0123456789abcdef"
#define K2 "1111111111111111"
#define K3 "2222222222222222"

static char dir[64], root[128], table[160];
static uv_loop_t loop;
static struct config cfg;
static struct driver drv;

/* Runs whose arguments are verb root target (and more). */
static bool ran(const char *verb, const char *target)
{
	char prefix[400];

	snprintf(prefix, sizeof(prefix), "%s %s %s ", verb, root, target);
	return fake_helper_ran(dir, prefix);
}

static void mounted_volume(const char *name, const char *key, const char *id)
{
	struct volume *vol = registry_get(&drv.reg, name);

	ck_assert_ptr_nonnull(vol);
	vol->exists = true;
	vol->mounted = true;
	vol->kernel_key = key ? strdup(key) : NULL;
	vol->spec.kind = SOURCE_NFS;
	ck_assert_int_eq(volume_add_ref(vol, id), 0);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_reconcile.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(table, sizeof(table), "%s/mountinfo", dir);
	ck_assert_int_eq(mkdir(root, 0755), 0);
	log_setup("test_reconcile", LOG_ERROR);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	cfg = (struct config){ .mount_root = root, .helper_timeout_s = 5, .max_parallel = 4, .app_uid = 2000,
			       .app_gid = 2000 };
	drv = (struct driver){ .loop = &loop, .cfg = &cfg };
	snprintf(drv.idmapfs_helper, sizeof(drv.idmapfs_helper), "%s/%s", dir, NFSV3_HELPER_IDMAPFS);
	snprintf(drv.state_path, sizeof(drv.state_path), "%s/%s", root, NFSV3_STATE_FILE);
	/* It only records what it is asked to detach. */
	fake_helper_install(dir, NFSV3_HELPER_MOUNT, "exit 0\n", drv.mount_helper, sizeof(drv.mount_helper));
	ck_assert_int_eq(registry_init(&drv.reg), 0);
	drv.helpers = helper_pool_new(&loop, cfg.max_parallel, cfg.helper_timeout_s);
	drv.state = state_writer_new(&loop, drv.state_path, &drv.reg);
	ck_assert(drv.helpers && drv.state);
}

static void teardown(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_reconcile: cannot remove %s\n", dir);
}

static void write_table(const char *const *targets, size_t n)
{
	FILE *f = fopen(table, "w");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "20 1 0:20 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%zu 20 0:%zu / %s/%s rw,nosuid,nodev shared:%zu - nfs 192.0.2.7:/export rw\n", 30 + i,
			30 + i, root, targets[i], 30 + i);
	fclose(f);
}

START_TEST(state_meets_the_table)
{
	static const char *const targets[] = { "v1", NFSV3_KERNEL_DIR "/" K1, NFSV3_KERNEL_DIR "/" K2, "v3", "x9",
					       NFSV3_KERNEL_DIR "/" K3 };
	struct error *err = NULL;
	struct volume *vol;
	int changes;

	write_table(targets, sizeof(targets) / sizeof(targets[0]));
	mounted_volume("v1", K1, "a");   /* in the table: adopted */
	mounted_volume("v2", K2, "b");   /* not in the table: its mount is gone */
	vol = registry_get(&drv.reg, "v3"); /* in the table, but the state says not mounted */
	vol->exists = true;
	vol->spec.kind = SOURCE_NFS;

	changes = reconcile(&drv, table, &err);
	ck_assert_msg(err == NULL, "%s", err ? err->message : "");
	ck_assert_int_eq(changes, 1);

	vol = registry_find(&drv.reg, "v1");
	ck_assert(vol && vol->mounted && volume_refs(vol) == 1);
	ck_assert_uint_eq(kernel_users(&drv, K1), 1);
	vol = registry_find(&drv.reg, "v2");
	ck_assert(vol && !vol->mounted && volume_refs(vol) == 0 && vol->kernel_key == NULL);
	ck_assert_uint_eq(kernel_users(&drv, K2), 0);

	/* Detached: v3 and x9 (purges), K2 and K3 (kernel mounts no volume holds); never v1 or K1. */
	for (int i = 0; i < 5000 && fake_helper_runs(dir, NULL) < 4; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	for (int i = 0; i < 300; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ck_assert_int_eq(fake_helper_runs(dir, NULL), 4);
	ck_assert(ran(NFSV3_VERB_UNMOUNT, "v3"));
	ck_assert(ran(NFSV3_VERB_UNMOUNT, "x9"));
	ck_assert(ran(NFSV3_VERB_UNMOUNT, NFSV3_KERNEL_DIR "/" K2));
	ck_assert(ran(NFSV3_VERB_UNMOUNT, NFSV3_KERNEL_DIR "/" K3));
	ck_assert(!ran(NFSV3_VERB_UNMOUNT, "v1"));
	ck_assert(!ran(NFSV3_VERB_UNMOUNT, NFSV3_KERNEL_DIR "/" K1));
}
END_TEST

/* A table that cannot be read changes nothing and says why. */
START_TEST(an_unreadable_table_changes_nothing)
{
	struct error *err = NULL;
	char missing[200];

	mounted_volume("v1", K1, "a");
	snprintf(missing, sizeof(missing), "%s/no-such-mountinfo", dir);
	ck_assert_int_eq(reconcile(&drv, missing, &err), -1);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err->message, missing) != NULL, "%s", err->message);
	error_free(err);
	ck_assert(registry_find(&drv.reg, "v1")->mounted);
	ck_assert_int_eq(fake_helper_runs(dir, NULL), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reconcile");
	TCase *tc = tcase_create("reconcile");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, state_meets_the_table);
	tcase_add_test(tc, an_unreadable_table_changes_nothing);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
