/*
 * Switching a cell from upstream's driver in place: the real daemon starts
 * on upstream's driver-state.json and the mounts upstream left (made here
 * the way upstream makes them: the kernel mount right at <root>/<name>, or
 * a kernel mount at <root>/<name>_mapfs with mapfs on <root>/<name>; bind
 * mounts and a tmpfs stand in for NFS and mapfs). Its volumes are adopted,
 * not purged; they are held and unmounted as upstream mounted them; after
 * that they are ours.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "harness.h"

static void sh(const char *fmt, const char *a, const char *b)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), fmt, a, b);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void write_state(const char *text)
{
	char path[512];
	FILE *f;

	path_join(path, sizeof(path), d.root, NFSV3_STATE_FILE);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static bool is_mount(const char *name)
{
	char path[512];

	path_join(path, sizeof(path), d.root, name);
	return mounts_under(path) > 0;
}

/* Upstream's layout for "plain" (a kernel mount) and "mapped" (mapfs, here a bind, over mapped_mapfs). */
static void upstream_mounts(void)
{
	char plain[512];

	path_join(plain, sizeof(plain), d.root, "plain");
	sh("mkdir -p '%s'%s", plain, "");
	sh("mount --bind '%s' '%s'", src, plain);
	sh("mkdir -p '%s/mapped_mapfs' '%s/mapped'", d.root, d.root);
	sh("mount -t tmpfs upstream-nfs '%s/mapped_mapfs' && echo from-upstream >'%s/mapped_mapfs/f'", d.root, d.root);
	sh("mount --bind '%s/mapped_mapfs' '%s/mapped'", d.root, d.root);
}

static void upstream_start(void)
{
	char state[4096];

	daemon_stop(&d);
	upstream_mounts();
	snprintf(state, sizeof(state),
		 "{\"plain\":{\"Name\":\"plain\",\"Mountpoint\":\"%s/plain\",\"MountCount\":2},"
		 "\"mapped\":{\"Name\":\"mapped\",\"Mountpoint\":\"%s/mapped\",\"MountCount\":1},"
		 "\"never\":{\"Name\":\"never\",\"Mountpoint\":\"\",\"MountCount\":0},"
		 "\"elsewhere\":{\"Name\":\"elsewhere\",\"Mountpoint\":\"/var/vcap/other/elsewhere\",\"MountCount\":1},"
		 "\"gone\":{\"Name\":\"gone\",\"Mountpoint\":\"%s/gone\",\"MountCount\":1}}",
		 d.root, d.root, d.root);
	write_state(state);
	daemon_start(&d);
}

static json_t *volume_named(json_t *list, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(list, "Volumes"), i, v)
		if (strcmp(json_string_value(json_object_get(v, "Name")), name) == 0)
			return v;
	return NULL;
}

START_TEST(adopts_upstream_mounts_instead_of_purging)
{
	char path[512], text[64] = "";
	json_t *a;
	FILE *f;

	upstream_start();
	ck_assert_int_eq(daemon_log_count(&d, "state.upstream-adopted"), 3);
	ck_assert_int_eq(daemon_log_count(&d, "state.upstream-skipped"), 2);
	ck_assert_int_eq(daemon_log_count(&d, "reconcile.upstream-gone"), 1);
	ck_assert_int_eq(daemon_log_count(&d, "corrupt"), 0);
	/* Give a wrongly queued purge the time to show. */
	usleep(300000);
	ck_assert_int_eq(daemon_log_count(&d, "reconcile.purging"), 0);
	ck_assert(is_mount("plain") && is_mount("mapped") && is_mount("mapped_mapfs"));
	a = ok_call(false, NFSV3_ROUTE_LIST, "{}", NULL);
	ck_assert_int_eq(json_array_size(json_object_get(a, "Volumes")), 2);
	ck_assert_ptr_nonnull(volume_named(a, "plain"));
	ck_assert_ptr_nonnull(volume_named(a, "mapped"));
	json_decref(a);
	/* What the app reads is what upstream's mount serves. */
	path_join(path, sizeof(path), d.root, "mapped/f");
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(text, sizeof(text), f));
	fclose(f);
	ck_assert_str_eq(text, "from-upstream\n");
	/* The state is ours now, saying which mounts are upstream's. */
	path_join(path, sizeof(path), d.root, NFSV3_STATE_FILE);
	sh("grep -q '\"version\"' '%s' && grep -q '\"upstream\": *true' '%s'", path, path);
}
END_TEST

START_TEST(held_then_unmounted_as_upstream_mounted_then_ours)
{
	char body[1024], mp[512];
	json_t *a;

	upstream_start();
	path_join(mp, sizeof(mp), d.root, "plain");
	/* volman: Create (now with options: upstream kept none) and Mount, while upstream's mount is live. */
	snprintf(body, sizeof(body), "{\"Name\":\"plain\",\"Opts\":{\"source\":\"file://%s\"}}", src);
	json_decref(ok_call(true, NFSV3_ROUTE_CREATE, body, NULL));
	a = ok_call(true, NFSV3_ROUTE_MOUNT, "{\"Name\":\"plain\"}", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(a, "Mountpoint")), mp);
	json_decref(a);
	ck_assert_int_eq(mounts_under(mp), 1);
	/* Three holders: upstream's two and this one. */
	json_decref(ok_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"plain\"}", NULL));
	json_decref(ok_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"plain\"}", NULL));
	ck_assert(is_mount("plain"));
	json_decref(ok_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"plain\"}", NULL));
	ck_assert(!is_mount("plain"));
	ck_assert_int_ne(access(mp, F_OK), 0);
	/* Next Mount is ours, with the options Create gave. */
	a = ok_call(true, NFSV3_ROUTE_MOUNT, "{\"Name\":\"plain\"}", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(a, "Mountpoint")), mp);
	json_decref(a);
	path_join(body, sizeof(body), mp, "hello");
	ck_assert_int_eq(access(body, R_OK), 0);
	json_decref(ok_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"plain\"}", NULL));
	ck_assert_int_eq(mounts_under(d.root), 2); /* mapped and mapped_mapfs */

	/* mapped, never created again: its last Unmount takes mapfs's mount and the one under it, and forgets it. */
	json_decref(ok_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"mapped\"}", NULL));
	ck_assert(!is_mount("mapped") && !is_mount("mapped_mapfs"));
	ck_assert_int_eq(mounts_under(d.root), 0);
	err_call(true, NFSV3_ROUTE_GET, "{\"Name\":\"mapped\"}", NULL, NFSV3_ERR_NOT_FOUND);
}
END_TEST

START_TEST(restart_during_migration_keeps_upstream_mounts)
{
	upstream_start();
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"mapped\"}", NULL));
	daemon_kill9(&d);
	daemon_start(&d);
	/* Two at the first start (the log goes on across restarts), two now. */
	ck_assert_int_eq(daemon_log_count(&d, "reconcile.upstream-adopted"), 4);
	usleep(300000);
	ck_assert_int_eq(daemon_log_count(&d, "reconcile.purging"), 0);
	ck_assert(is_mount("plain") && is_mount("mapped") && is_mount("mapped_mapfs"));
	/* Without options an adopted volume is only held, never mounted anew. */
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"mapped\"}", NULL));
	ck_assert(is_mount("mapped"));
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"mapped\"}", NULL));
	ck_assert(!is_mount("mapped") && !is_mount("mapped_mapfs"));
	/* Evacuation (drain) takes upstream's mounts as well. */
	json_decref(call_admin(&d, "/evacuate", NULL));
	for (int i = 0; i < 100 && mounts_under(d.root) > 0; i++)
		usleep(20000);
	ck_assert_int_eq(mounts_under(d.root), 0);
	assert_alive();
}
END_TEST

START_TEST(adopted_volume_without_options_is_not_mounted_anew)
{
	upstream_start();
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"plain\"}", NULL));
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"plain\"}", NULL));
	/* Upstream forgot a volume at its last Unmount; so does this driver when it never learnt its options. */
	err_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"plain\"}", NULL, NFSV3_ERR_NOT_FOUND);
}
END_TEST

/* Upstream's shape with a wrong field: refused as a whole, naming it, and kept aside. */
START_TEST(malformed_upstream_state_names_the_field)
{
	char cmd[1024];

	daemon_stop(&d);
	write_state("{\"a\":{\"Name\":\"a\",\"Mountpoint\":\"/x/a\",\"MountCount\":\"two\"}}");
	daemon_start(&d);
	/* Once in the JSON log (state.load-failed), once plainly on stderr for the operator. */
	ck_assert_int_eq(daemon_log_count(&d, "state.load-failed"), 1);
	ck_assert_int_eq(daemon_log_count(&d, "MountCount: expected an integer"), 2);
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -q 'driver-state.json.corrupt-'", d.root);
	ck_assert_int_eq(system(cmd), 0);
	daemon_stop(&d);
	write_state("{\"a\":{\"Name\":\"b\",\"Mountpoint\":\"/x/a\",\"MountCount\":1}}");
	daemon_start(&d);
	ck_assert_int_eq(daemon_log_count(&d, "is not its key"), 2);
	daemon_stop(&d);
	write_state("{\"../etc\":{\"Name\":\"../etc\",\"Mountpoint\":\"/x/a\",\"MountCount\":1}}");
	daemon_start(&d);
	ck_assert_int_eq(daemon_log_count(&d, "not a volume name"), 2);
	assert_alive();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("upstream");
	TCase *tc = tcase_create("switch");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, adopts_upstream_mounts_instead_of_purging);
	tcase_add_test(tc, held_then_unmounted_as_upstream_mounted_then_ours);
	tcase_add_test(tc, restart_during_migration_keeps_upstream_mounts);
	tcase_add_test(tc, adopted_volume_without_options_is_not_mounted_anew);
	tcase_add_test(tc, malformed_upstream_state_names_the_field);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
