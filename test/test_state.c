/* The state file: round trip, atomic 0600 writes, grouped commits, and every way a file can be corrupt. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "state.h"

static struct config cfg = { .allow_local_sources = true, .allowed_nfs_options = "nolock" };
static char dir[64], path[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/nfsv3-state.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/driver-state.json", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void fill(struct registry *reg)
{
	struct volume_spec spec;
	json_t *opts = json_pack("{s:s, s:s, s:s, s:s}", "source", "nfs://h/e", "uid", "1234", "gid", "1234", "password", "secret");
	struct volume *v = registry_get(reg, "mapped");

	json_object_del(opts, "password");
	ck_assert_ptr_null(options_parse(opts, &cfg, &spec));
	volume_set_options(v, opts, &spec, NULL);
	v->mounted = true;
	volume_add_ref(v, "dockerid");
	volume_add_ref(v, NULL);
	v->kernel_key = strdup("abc123");
	v->idmapfs_pid = 4242;
	json_decref(opts);
	v = registry_get(reg, "plain");
	opts = json_pack("{s:s}", "source", "file:///tmp");
	ck_assert_ptr_null(options_parse(opts, &cfg, &spec));
	volume_set_options(v, opts, &spec, NULL);
	json_decref(opts);
	registry_get(reg, "placeholder"); /* queued-only names are not persisted */
}

START_TEST(round_trip)
{
	struct registry a, b;
	struct volume *v;
	struct stat st;
	json_t *doc;

	registry_init(&a);
	registry_init(&b);
	fill(&a);
	doc = state_serialize(&a);
	ck_assert_ptr_null(state_write(path, doc));
	json_decref(doc);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_ptr_null(state_load(path, &b, &cfg));
	ck_assert_uint_eq(b.n_volumes, 2);
	v = registry_find(&b, "mapped");
	ck_assert(v && v->exists && v->mounted && v->spec.mapped);
	ck_assert_uint_eq(v->spec.uid, 1234);
	ck_assert(volume_has_id(v, "dockerid"));
	ck_assert_uint_eq(v->count, 1);
	ck_assert_str_eq(v->kernel_key, "abc123");
	ck_assert_int_eq(v->idmapfs_pid, 4242);
	ck_assert_ptr_null(registry_find(&b, "placeholder"));
	ck_assert_ptr_nonnull(registry_find(&b, "plain"));
	registry_destroy(&a);
	registry_destroy(&b);
}
END_TEST

START_TEST(missing_file_is_empty_state)
{
	struct registry reg;
	registry_init(&reg);
	ck_assert_ptr_null(state_load(path, &reg, &cfg));
	ck_assert_uint_eq(reg.n_volumes, 0);
	registry_destroy(&reg);
}
END_TEST

static const char *const corrupt[] = {
	"",
	"{",
	"garbage",
	"[]",
	"{\"version\":2,\"volumes\":[]}",
	"{\"version\":1}",
	"{\"version\":1,\"volumes\":{}}",
	"{\"version\":1,\"volumes\":[7]}",
	"{\"version\":1,\"volumes\":[{\"name\":\"a/b\",\"opts\":{},\"mounted\":false,\"ids\":[],\"count\":0}]}",
	"{\"version\":1,\"volumes\":[{\"name\":\"a\",\"opts\":[],\"mounted\":false,\"ids\":[],\"count\":0}]}",
	"{\"version\":1,\"volumes\":[{\"name\":\"a\",\"opts\":{},\"mounted\":\"yes\",\"ids\":[],\"count\":0}]}",
	"{\"version\":1,\"volumes\":[{\"name\":\"a\",\"opts\":{},\"mounted\":false,\"ids\":[1],\"count\":0}]}",
	"{\"version\":1,\"volumes\":[{\"name\":\"a\",\"opts\":{},\"mounted\":false,\"ids\":[],\"count\":-1}]}",
	"{\"version\":1,\"volumes\":[{\"name\":\"a\",\"opts\":{},\"mounted\":false,\"ids\":[],\"count\":0,\"idmapfs_pid\":0}]}",
	"{\"version\":1,\"volumes\":[{\"name\":\"a\",\"opts\":{},\"mounted\":false,\"ids\":[],\"count\":0},"
	"{\"name\":\"a\",\"opts\":{},\"mounted\":false,\"ids\":[],\"count\":0}]}",
	"{\"version\":1,\"version\":1,\"volumes\":[]}",
};

START_TEST(corrupt_file_moved_aside)
{
	struct registry reg;
	struct error *err;
	char cmd[256];
	FILE *f = fopen(path, "w");

	fputs(corrupt[_i], f);
	fclose(f);
	registry_init(&reg);
	err = state_load(path, &reg, &cfg);
	ck_assert_msg(err != NULL, "case %d accepted", _i);
	ck_assert_ptr_nonnull(strstr(err->message, "moved aside"));
	error_free(err);
	ck_assert_uint_eq(reg.n_volumes, 0);
	ck_assert_int_ne(access(path, F_OK), 0);
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -q '^driver-state.json.corrupt-'", dir);
	ck_assert_int_eq(system(cmd), 0);
	registry_destroy(&reg);
}
END_TEST

/* Unreadable to the daemon's user (vcap on a cell): set aside like a corrupt one, with the reason. */
START_TEST(unreadable_file_moved_aside)
{
	struct registry reg;
	struct error *err;
	int status;
	pid_t pid;
	FILE *f = fopen(path, "w");

	fputs("{\"version\":1,\"volumes\":[]}", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0), 0);
	ck_assert_int_eq(chmod(dir, 0777), 0);
	pid = fork();
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(3);
		registry_init(&reg);
		err = state_load(path, &reg, &cfg);
		int code = !err ? 4 : !strstr(err->message, "cannot open it: Permission denied") ? 5
				 : !strstr(err->message, "moved aside") ? 6 : 0;
		error_free(err);
		_exit(code);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

/* A FIFO planted there must not hang the start; a second bad file in the same second keeps the first. */
START_TEST(fifo_does_not_hang_and_asides_accumulate)
{
	struct registry reg;
	struct error *err;
	char cmd[256];

	registry_init(&reg);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	err = state_load(path, &reg, &cfg);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err->message, "it is a FIFO; expected a regular file"));
	error_free(err);
	FILE *f = fopen(path, "w");
	fputs("garbage", f);
	fclose(f);
	err = state_load(path, &reg, &cfg);
	ck_assert_ptr_nonnull(err);
	error_free(err);
	snprintf(cmd, sizeof(cmd), "test $(ls '%s' | grep -c '^driver-state.json.corrupt-') = 2", dir);
	ck_assert_int_eq(system(cmd), 0);
	registry_destroy(&reg);
}
END_TEST

/* The writer never replaces a loadable state with one the loader would refuse. */
START_TEST(state_bigger_than_the_limit_is_not_written)
{
	struct registry reg;
	struct error *err;
	char *pad = malloc(STATE_MAX_BYTES + 1);
	json_t *doc;

	registry_init(&reg);
	fill(&reg);
	doc = state_serialize(&reg);
	ck_assert_ptr_null(state_write(path, doc));
	memset(pad, 'x', STATE_MAX_BYTES);
	pad[STATE_MAX_BYTES] = '\0';
	json_object_set_new(doc, "pad", json_string(pad));
	free(pad);
	err = state_write(path, doc);
	json_decref(doc);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err->message, "cannot save the driver state: it would be") &&
		      strstr(err->message, "more than the 67108864 bytes (64 MiB)"), "%s", err->message);
	error_free(err);
	registry_destroy(&reg);
	registry_init(&reg);
	ck_assert_ptr_null(state_load(path, &reg, &cfg));
	ck_assert_uint_eq(reg.n_volumes, 2);
	registry_destroy(&reg);
}
END_TEST

START_TEST(option_no_longer_accepted_becomes_mount_error)
{
	struct registry reg;
	struct volume *v;
	FILE *f = fopen(path, "w");

	fputs("{\"version\":1,\"volumes\":[{\"name\":\"a\",\"opts\":{\"source\":\"file:///tmp\"},\"mounted\":false,\"ids\":[],\"count\":0}]}", f);
	fclose(f);
	registry_init(&reg);
	cfg.allow_local_sources = false;
	ck_assert_ptr_null(state_load(path, &reg, &cfg));
	cfg.allow_local_sources = true;
	v = registry_find(&reg, "a");
	ck_assert(v && v->exists && v->spec_error);
	ck_assert_ptr_nonnull(strstr(v->spec_error->message, "--allow-local-sources"));
	registry_destroy(&reg);
}
END_TEST

static int saved;
static struct state_writer *writer;
static bool idle_at[10]; /* whether the writer was idle when answer i came */
static void on_saved(struct error *err, void *data)
{
	ck_assert_ptr_null(err);
	ck_assert_int_lt(saved, 10);
	idle_at[saved] = state_writer_idle(writer);
	saved++;
	*(int *)data = saved;
}

/* A username volume keeps the directory's answer, never a password, across a restart. */
START_TEST(ldap_identity_round_trip)
{
	struct config ldap_cfg = cfg;
	struct registry a, b;
	struct volume_spec spec;
	struct volume *v;
	json_t *opts = json_pack("{s:s, s:s}", "source", "file:///tmp", "username", "alice"), *doc;
	char *text;

	ldap_cfg.ldap = true;
	registry_init(&a);
	registry_init(&b);
	ck_assert_ptr_null(options_parse(opts, &ldap_cfg, &spec));
	v = registry_get(&a, "l");
	volume_set_options(v, opts, &spec, NULL);
	json_decref(opts);
	doc = state_serialize(&a);
	text = json_dumps(doc, 0);
	ck_assert_ptr_null(strstr(text, "ldap_uid")); /* not resolved yet: nothing to keep */
	free(text);
	json_decref(doc);
	v->spec.mapped = true;
	v->spec.uid = 1234;
	v->spec.gid = 1235;
	doc = state_serialize(&a);
	ck_assert_ptr_null(state_write(path, doc));
	json_decref(doc);
	ck_assert_ptr_null(state_load(path, &b, &ldap_cfg));
	v = registry_find(&b, "l");
	ck_assert(v && v->spec.mapped && v->spec.username && !v->spec_error);
	ck_assert_uint_eq(v->spec.uid, 1234);
	ck_assert_uint_eq(v->spec.gid, 1235);
	registry_destroy(&a);
	registry_destroy(&b);
	/* An id out of range or alone is a corrupt entry. */
	registry_init(&b);
	doc = json_loads("{\"version\":1,\"volumes\":[{\"name\":\"l\",\"opts\":{\"source\":\"file:///tmp\",\"username\":\"a\"},"
			 "\"mounted\":false,\"ids\":[],\"count\":0,\"ldap_uid\":0,\"ldap_gid\":5}]}", 0, NULL);
	ck_assert_ptr_nonnull(doc);
	struct error *err = state_deserialize(doc, &b, &ldap_cfg);
	ck_assert_ptr_nonnull(err);
	ck_assert_ptr_nonnull(strstr(err->message, "ldap_uid"));
	error_free(err);
	json_decref(doc);
	registry_destroy(&b);
}
END_TEST

START_TEST(commits_are_grouped_and_answered_in_order)
{
	uv_loop_t loop;
	struct registry reg;
	struct state_writer *w;
	int order[10] = { 0 };

	uv_loop_init(&loop);
	registry_init(&reg);
	fill(&reg);
	w = writer = state_writer_new(&loop, path, &reg);
	saved = 0;
	for (int i = 0; i < 10; i++)
		state_commit(w, on_saved, &order[i]);
	ck_assert(!state_writer_idle(w));
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert(state_writer_idle(w));
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(order[i], i + 1);
	/*
	 * The first commit started a write alone; the other nine waited and
	 * were all answered by one second write, which left nothing pending.
	 */
	ck_assert(!idle_at[0]);
	for (int i = 1; i < 10; i++)
		ck_assert_msg(idle_at[i], "commit %d was not answered by the grouped write", i);
	state_writer_free(w);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	struct registry back;
	registry_init(&back);
	ck_assert_ptr_null(state_load(path, &back, &cfg));
	ck_assert_uint_eq(back.n_volumes, 2);
	registry_destroy(&back);
	registry_destroy(&reg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, missing_file_is_empty_state);
	tcase_add_loop_test(tc, corrupt_file_moved_aside, 0, (int)(sizeof(corrupt) / sizeof(corrupt[0])));
	tcase_add_test(tc, option_no_longer_accepted_becomes_mount_error);
	tcase_add_test(tc, unreadable_file_moved_aside);
	tcase_add_test(tc, fifo_does_not_hang_and_asides_accumulate);
	tcase_add_test(tc, state_bigger_than_the_limit_is_not_written);
	tcase_add_test(tc, commits_are_grouped_and_answered_in_order);
	tcase_add_test(tc, ldap_identity_round_trip);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
