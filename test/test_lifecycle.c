/*
 * Unit suite for driver/lifecycle.c, the volume operations, without HTTP:
 * operations submitted on a real libuv loop with the real registry, state
 * writer and helper pool, and a fake mount helper (a script that records
 * its argv and makes or removes a real bind mount, or fails as the real
 * helper fails). What is checked: a reference per Mount ID with one bind,
 * one unmount at the last Unmount, operations on a volume answered in
 * order, a failed bind leaving nothing claimed, and what the state file
 * says after each answer.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "nfsv3driver.h"
#include "harness.h"
#include "harness_fake.h"
#include "helper.h"
#include "lifecycle.h"
#include "log.h"
#include "mountinfo.h"
#include "registry.h"
#include "state.h"

static char dir[64], root[128], source[128];
static uv_loop_t loop;
static struct config cfg;
static struct driver drv;

/* After the preamble (harness_fake.h): what the test's mode says. */
static const char fake_mount[] =
	"if [ \"$mode\" = fail ]; then\n"
	"	echo \"" NFSV3_HELPER_MOUNT ": source $3: Permission denied\" >&2\n"
	"	exit 3\n"
	"fi\n"
	"case $1 in\n"
	NFSV3_VERB_BIND ") /bin/mkdir -p \"$2/$4\" && exec /bin/mount --bind \"$3\" \"$2/$4\" ;;\n"
	NFSV3_VERB_UNMOUNT ") /bin/umount -l \"$2/$3\" 2>/dev/null; /bin/rmdir \"$2/$3\" 2>/dev/null; exit 0 ;;\n"
	"esac\n"
	"exit 2\n";

/* The answers of submitted operations, in the order they came. */
static struct {
	enum op_kind kind;
	char err[512];
	char mountpoint[256];
} answers[16];
static int n_answers;

static void set_mode(const char *mode)
{
	fake_helper_mode(dir, mode);
}

static int runs(const char *verb)
{
	return fake_helper_runs(dir, verb);
}

static void on_done(struct volume_op *op, const struct error *err)
{
	ck_assert_int_lt(n_answers, 16);
	answers[n_answers].kind = op->kind;
	snprintf(answers[n_answers].err, sizeof(answers[n_answers].err), "%s", err ? err->message : "");
	if (!err && op->kind == OP_MOUNT)
		volume_mountpoint(op->drv, op->vol, answers[n_answers].mountpoint,
				  sizeof(answers[n_answers].mountpoint));
	n_answers++;
}

static void submit(enum op_kind kind, const char *name, const char *id, const char *opts)
{
	struct volume_op *op = op_new(&drv, kind, name, on_done, NULL);

	ck_assert_ptr_nonnull(op);
	if (id)
		op->id = strdup(id);
	if (opts) {
		json_error_t jerr;
		op->opts = json_loads(opts, 0, &jerr);
		ck_assert_msg(op->opts != NULL, "%s", jerr.text);
	}
	op_submit(op);
}

/* Run the loop until count answers are in. */
static void wait_answers(int count)
{
	for (int i = 0; i < 10000 && n_answers < count; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ck_assert_int_eq(n_answers, count);
}

/* The state file's entry for name, as the daemon wrote it (NULL: none). */
static json_t *state_entry(const char *name)
{
	json_error_t jerr;
	json_t *doc = json_load_file(drv.state_path, 0, &jerr), *vols, *v, *found = NULL;
	size_t i;

	if (!doc)
		return NULL;
	vols = json_object_get(doc, "volumes");
	json_array_foreach(vols, i, v)
		if (strcmp(json_string_value(json_object_get(v, "name")) ?: "", name) == 0)
			found = json_incref(v);
	json_decref(doc);
	return found;
}

static void setup(void)
{
	char opts[300];

	snprintf(dir, sizeof(dir), "/tmp/test_lifecycle.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(source, sizeof(source), "%s/src", dir);
	ck_assert_int_eq(mkdir(root, 0755), 0);
	ck_assert_int_eq(mkdir(source, 0755), 0);
	set_mode("ok");

	log_setup("test_lifecycle", LOG_ERROR);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	cfg = (struct config){ .mount_root = root, .helper_timeout_s = 5, .max_parallel = 4, .app_uid = 2000,
			       .app_gid = 2000, .allow_local_sources = true };
	drv = (struct driver){ .loop = &loop, .cfg = &cfg };
	fake_helper_install(dir, NFSV3_HELPER_MOUNT, fake_mount, drv.mount_helper, sizeof(drv.mount_helper));
	snprintf(drv.idmapfs_helper, sizeof(drv.idmapfs_helper), "%s/%s", dir, NFSV3_HELPER_IDMAPFS);
	snprintf(drv.state_path, sizeof(drv.state_path), "%s/%s", root, NFSV3_STATE_FILE);
	ck_assert_int_eq(registry_init(&drv.reg), 0);
	drv.helpers = helper_pool_new(&loop, cfg.max_parallel, cfg.helper_timeout_s);
	drv.state = state_writer_new(&loop, drv.state_path, &drv.reg);
	ck_assert(drv.helpers && drv.state);
	n_answers = 0;
	snprintf(opts, sizeof(opts), "{\"source\":\"file://%s\"}", source);
	submit(OP_CREATE, "v1", NULL, opts);
	wait_answers(1);
	ck_assert_msg(answers[0].err[0] == '\0', "Create: %s", answers[0].err);
	n_answers = 0;
}

static void teardown(void)
{
	char path[200], cmd[200];

	snprintf(path, sizeof(path), "%s/v1", root);
	umount2(path, MNT_DETACH);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_lifecycle: cannot remove %s\n", dir);
}

START_TEST(a_reference_per_id_one_bind_one_unmount)
{
	json_t *e;

	submit(OP_MOUNT, "v1", "a", NULL);
	submit(OP_MOUNT, "v1", "b", NULL);
	wait_answers(2);
	ck_assert_msg(answers[0].err[0] == '\0' && answers[1].err[0] == '\0', "%s / %s", answers[0].err,
		      answers[1].err);
	ck_assert_int_eq(runs(NFSV3_VERB_BIND), 1);
	ck_assert_str_eq(answers[0].mountpoint, answers[1].mountpoint);
	ck_assert(mountinfo_is_mounted(root, "v1"));
	/* Answered only once on disk: mounted, with both IDs. */
	e = state_entry("v1");
	ck_assert_ptr_nonnull(e);
	ck_assert(json_is_true(json_object_get(e, "mounted")));
	ck_assert_uint_eq(json_array_size(json_object_get(e, "ids")), 2);
	json_decref(e);

	submit(OP_UNMOUNT, "v1", "a", NULL);
	wait_answers(3);
	ck_assert_str_eq(answers[2].err, "");
	ck_assert_int_eq(runs(NFSV3_VERB_UNMOUNT), 0);
	ck_assert(mountinfo_is_mounted(root, "v1"));
	submit(OP_UNMOUNT, "v1", "b", NULL);
	wait_answers(4);
	ck_assert_str_eq(answers[3].err, "");
	ck_assert_int_eq(runs(NFSV3_VERB_UNMOUNT), 1);
	ck_assert(!mountinfo_is_mounted(root, "v1"));
	e = state_entry("v1");
	ck_assert_ptr_nonnull(e);
	ck_assert(!json_is_true(json_object_get(e, "mounted")));
	json_decref(e);

	submit(OP_REMOVE, "v1", NULL, NULL);
	wait_answers(5);
	ck_assert_str_eq(answers[4].err, "");
	ck_assert_ptr_null(registry_find(&drv.reg, "v1"));
	ck_assert_ptr_null(state_entry("v1"));
}
END_TEST

/* Operations on one volume are answered in the order they came. */
START_TEST(one_volume_one_operation_at_a_time)
{
	static const enum op_kind order[] = { OP_MOUNT, OP_UNMOUNT, OP_MOUNT, OP_GET, OP_UNMOUNT };

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		submit(order[i], "v1", order[i] == OP_GET ? NULL : "a", NULL);
	wait_answers(5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(answers[i].kind, order[i]);
		ck_assert_msg(answers[i].err[0] == '\0', "answer %d: %s", i, answers[i].err);
	}
	ck_assert_int_eq(runs(NFSV3_VERB_BIND), 2);
	ck_assert_int_eq(runs(NFSV3_VERB_UNMOUNT), 2);
	ck_assert(!mountinfo_is_mounted(root, "v1"));
}
END_TEST

/* A bind the helper refuses: its line is the error, nothing is claimed, and the next Mount works. */
START_TEST(a_refused_bind_claims_nothing)
{
	json_t *e;

	set_mode("fail");
	submit(OP_MOUNT, "v1", "a", NULL);
	wait_answers(1);
	ck_assert_msg(strstr(answers[0].err, "Permission denied") && strstr(answers[0].err, "v1"), "\"%s\"",
		      answers[0].err);
	ck_assert(!mountinfo_is_mounted(root, "v1"));
	e = state_entry("v1");
	ck_assert_ptr_nonnull(e);
	ck_assert(!json_is_true(json_object_get(e, "mounted")));
	ck_assert_uint_eq(json_array_size(json_object_get(e, "ids")), 0);
	json_decref(e);

	set_mode("ok");
	submit(OP_MOUNT, "v1", "a", NULL);
	wait_answers(2);
	ck_assert_msg(answers[1].err[0] == '\0', "%s", answers[1].err);
	ck_assert(mountinfo_is_mounted(root, "v1"));
	submit(OP_UNMOUNT, "v1", "a", NULL);
	wait_answers(3);
	ck_assert(!mountinfo_is_mounted(root, "v1"));
}
END_TEST

/* An Unmount of an ID that holds no reference changes nothing that is mounted. */
START_TEST(unmount_of_an_unknown_id_keeps_the_mount)
{
	submit(OP_MOUNT, "v1", "a", NULL);
	submit(OP_UNMOUNT, "v1", "nobody", NULL);
	wait_answers(2);
	ck_assert_str_eq(answers[0].err, "");
	ck_assert(mountinfo_is_mounted(root, "v1"));
	ck_assert_int_eq(runs(NFSV3_VERB_UNMOUNT), 0);
	submit(OP_UNMOUNT, "v1", "a", NULL);
	wait_answers(3);
	ck_assert(!mountinfo_is_mounted(root, "v1"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc = tcase_create("lifecycle");

	if (geteuid() != 0) {
		fprintf(stderr, "test_lifecycle: needs root for the bind mounts its fake helper makes; skipped\n");
		return 77;
	}
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, a_reference_per_id_one_bind_one_unmount);
	tcase_add_test(tc, one_volume_one_operation_at_a_time);
	tcase_add_test(tc, a_refused_bind_claims_nothing);
	tcase_add_test(tc, unmount_of_an_unknown_id_keeps_the_mount);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
