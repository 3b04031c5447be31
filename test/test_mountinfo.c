/*
 * Unit suite for driver/mountinfo.c: what reconcile and lifecycle read out
 * of the kernel's mount table, from mountinfo fixtures written here (the
 * format of proc(5), parsed by libmount as /proc/self/mountinfo is).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "harness.h"
#include "mountinfo.h"

static char fixture[64];

/* One mountinfo line mounting target (already escaped as the kernel escapes it). */
static void line(FILE *f, int id, const char *target, const char *fstype, const char *source)
{
	fprintf(f, "%d 1 0:%d / %s rw,nosuid,nodev,relatime shared:%d - %s %s rw\n", id, id, target, id, fstype,
		source);
}

static void write_fixture(void (*fill)(FILE *))
{
	int fd;
	FILE *f;

	snprintf(fixture, sizeof(fixture), "/tmp/test_mountinfo.XXXXXX");
	fd = mkstemp(fixture);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	fill(f);
	fclose(f);
}

static void teardown(void)
{
	if (fixture[0])
		unlink(fixture);
	fixture[0] = '\0';
}

static void cell(FILE *f)
{
	line(f, 20, "/", "ext4", "/dev/vda1");
	line(f, 21, "/var/vcap/data", "ext4", "/dev/vdb2");
	/* Two kernel NFS mounts, and the volumes bound from them. */
	line(f, 30, "/var/vcap/data/volumes/nfs/.kernel/0123456789abcdef", "nfs", "10.0.0.5:/export");
	line(f, 31, "/var/vcap/data/volumes/nfs/.kernel/fedcba9876543210", "nfs4", "[fd00::5]:/export");
	line(f, 32, "/var/vcap/data/volumes/nfs/vol-1", "nfs", "10.0.0.5:/export");
	line(f, 33, "/var/vcap/data/volumes/nfs/vol-2_abc", "fuse.nfsv3driver-idmapfs", "nfsv3driver-idmapfs");
	/* Stacked on the same mountpoint (a bind over a bind): one name. */
	line(f, 34, "/var/vcap/data/volumes/nfs/vol-1", "nfs", "10.0.0.5:/export");
	/* A container's bind of a volume, elsewhere: not ours. */
	line(f, 35, "/var/vcap/data/grootfs/store/abc/mnt/data", "nfs", "10.0.0.5:/export");
	/* Inside a volume: not a volume. */
	line(f, 36, "/var/vcap/data/volumes/nfs/vol-1/nested", "tmpfs", "tmpfs");
	/* Another root that only shares the prefix. */
	line(f, 37, "/var/vcap/data/volumes/nfs-other/vol-3", "nfs", "10.0.0.6:/x");
	line(f, 43, "/var/vcap/data/volumes/nfs2v", "nfs", "10.0.0.6:/x");
	/* The root itself. */
	line(f, 38, "/var/vcap/data/volumes/nfs", "tmpfs", "tmpfs");
	/* Names no volume can have: a space (escaped \040), and a dot start. */
	line(f, 39, "/var/vcap/data/volumes/nfs/bad\\040name", "nfs", "10.0.0.5:/export");
	line(f, 40, "/var/vcap/data/volumes/nfs/.hidden", "nfs", "10.0.0.5:/export");
	/* A kernel key that is not one, and something nested under a key. */
	line(f, 41, "/var/vcap/data/volumes/nfs/.kernel/not/a-key", "nfs", "10.0.0.5:/export");
	line(f, 42, "/var/vcap/data/volumes/nfs/.kernel/0123456789abcdef/sub", "nfs", "10.0.0.5:/export");
}

START_TEST(volumes_and_keys_under_the_root)
{
	struct mountinfo_names volumes = { 0 }, keys = { 0 };
	struct error *err;

	write_fixture(cell);
	err = mountinfo_read(fixture, "/var/vcap/data/volumes/nfs", &volumes, &keys);
	ck_assert_msg(err == NULL, "%s", err ? err->message : "");
	ck_assert_uint_eq(volumes.n, 2);
	ck_assert(mountinfo_has(&volumes, "vol-1"));
	ck_assert(mountinfo_has(&volumes, "vol-2_abc"));
	ck_assert(!mountinfo_has(&volumes, "vol-3"));
	ck_assert(!mountinfo_has(&volumes, "v")); /* .../nfs2v is not .../nfs/v */
	ck_assert(!mountinfo_has(&volumes, "nested"));
	ck_assert(!mountinfo_has(&volumes, "bad name"));
	ck_assert(!mountinfo_has(&volumes, ".hidden"));
	ck_assert(!mountinfo_has(&volumes, ".kernel"));
	ck_assert_uint_eq(keys.n, 2);
	ck_assert(mountinfo_has(&keys, "0123456789abcdef"));
	ck_assert(mountinfo_has(&keys, "fedcba9876543210"));
	mountinfo_names_free(&volumes);
	mountinfo_names_free(&keys);
	ck_assert_uint_eq(volumes.n, 0);
	ck_assert_ptr_null(volumes.names);
}
END_TEST

/* A root with a trailing prefix match only ("nfs" vs "nfs-other") sees its own. */
START_TEST(a_root_sharing_a_prefix_sees_only_its_own)
{
	struct mountinfo_names volumes = { 0 }, keys = { 0 };
	struct error *err;

	write_fixture(cell);
	err = mountinfo_read(fixture, "/var/vcap/data/volumes/nfs-other", &volumes, &keys);
	ck_assert_ptr_null(err);
	ck_assert_uint_eq(volumes.n, 1);
	ck_assert(mountinfo_has(&volumes, "vol-3"));
	ck_assert_uint_eq(keys.n, 0);
	mountinfo_names_free(&volumes);
	mountinfo_names_free(&keys);
}
END_TEST

static void many(FILE *f)
{
	char target[128];

	line(f, 20, "/", "ext4", "/dev/vda1");
	for (int i = 0; i < 1000; i++) {
		snprintf(target, sizeof(target), "/r/v%d", i);
		line(f, 100 + i, target, "nfs", "h:/e");
	}
}

/* The set grows past its first allocation; each name once. */
START_TEST(a_thousand_volumes)
{
	struct mountinfo_names volumes = { 0 }, keys = { 0 };
	char name[16];

	write_fixture(many);
	ck_assert_ptr_null(mountinfo_read(fixture, "/r", &volumes, &keys));
	ck_assert_uint_eq(volumes.n, 1000);
	for (int i = 0; i < 1000; i += 97) {
		snprintf(name, sizeof(name), "v%d", i);
		ck_assert(mountinfo_has(&volumes, name));
	}
	ck_assert(!mountinfo_has(&volumes, "v1000"));
	mountinfo_names_free(&volumes);
	mountinfo_names_free(&keys);
}
END_TEST

/* A table that cannot be read is an error naming it, and nothing is filled. */
START_TEST(an_unreadable_table_is_an_error)
{
	struct mountinfo_names volumes = { 0 }, keys = { 0 };
	struct error *err = mountinfo_read("/nonexistent/mountinfo", "/r", &volumes, &keys);

	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err->message, "/nonexistent/mountinfo") != NULL, "%s", err->message);
	ck_assert_uint_eq(volumes.n, 0);
	ck_assert_uint_eq(keys.n, 0);
	error_free(err);
}
END_TEST

/* The live table: / is a mount point, a plain directory is not. */
START_TEST(is_mounted_on_the_live_table)
{
	char dir[] = "/tmp/test_mountinfo.dir.XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert(!mountinfo_is_mounted("/tmp", strrchr(dir, '/') + 1));
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mountinfo");
	TCase *tc = tcase_create("mountinfo");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, volumes_and_keys_under_the_root);
	tcase_add_test(tc, a_root_sharing_a_prefix_sees_only_its_own);
	tcase_add_test(tc, a_thousand_volumes);
	tcase_add_test(tc, an_unreadable_table_is_an_error);
	tcase_add_test(tc, is_mounted_on_the_live_table);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
