/*
 * The real daemon and its real helpers over the real unix socket and TCP,
 * with real bind mounts of local directories: both clients' call patterns,
 * restarts, corrupt state, hung helpers, and bad input of every kind.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "harness.h"


/* ---- both clients' sequences ---- */

START_TEST(volman_sequence_over_tcp)
{
	const char *name = "vol=1_container=guid";
	char body[512], expect[512], file[600];
	json_t *a;

	a = ok_call(true, NFSV3_ROUTE_ACTIVATE, "", NULL);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(a, "Implements"), 0)), "VolumeDriver");
	json_decref(a);
	create_local(true, name, NULL);
	snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", name);
	a = ok_call(true, NFSV3_ROUTE_MOUNT, body, NULL);
	snprintf(expect, sizeof(expect), "%s/%s", d.root, name);
	ck_assert_str_eq(json_string_value(json_object_get(a, "Mountpoint")), expect);
	json_decref(a);
	snprintf(file, sizeof(file), "%s/hello", expect);
	ck_assert_int_eq(access(file, R_OK), 0);
	ck_assert_int_eq(mounts_under(expect), 1);

	a = ok_call(true, NFSV3_ROUTE_LIST, "{}", NULL);
	ck_assert_int_eq(json_array_size(json_object_get(a, "Volumes")), 1);
	json_decref(a);
	a = ok_call(true, NFSV3_ROUTE_PATH, body, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(a, "Mountpoint")), expect);
	json_decref(a);
	a = ok_call(true, NFSV3_ROUTE_GET, body, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(a, "Volume"), "MountCount")), 1);
	json_decref(a);
	a = ok_call(true, NFSV3_ROUTE_CAPABILITIES, "{}", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "Capabilities"), "Scope")), "local");
	json_decref(a);

	json_decref(ok_call(true, NFSV3_ROUTE_UNMOUNT, body, NULL));
	ck_assert_int_eq(mounts_under(expect), 0);
	json_decref(ok_call(true, NFSV3_ROUTE_REMOVE, body, NULL));
	a = ok_call(true, NFSV3_ROUTE_LIST, "{}", NULL);
	ck_assert(json_is_array(json_object_get(a, "Volumes")));
	ck_assert_int_eq(json_array_size(json_object_get(a, "Volumes")), 0);
	json_decref(a);
}
END_TEST

START_TEST(volman_rep_start_list_and_unmount)
{
	char body[128];
	json_t *a, *vols, *v;
	size_t i;

	for (int n = 0; n < 3; n++) {
		snprintf(body, sizeof(body), "v%d", n);
		create_local(true, body, NULL);
	}
	for (int n = 0; n < 3; n++) {
		snprintf(body, sizeof(body), "{\"Name\":\"v%d\"}", n);
		json_decref(ok_call(true, NFSV3_ROUTE_MOUNT, body, NULL));
	}
	ck_assert_int_eq(mounts_under(d.root), 3);
	a = ok_call(true, NFSV3_ROUTE_LIST, "{}", NULL);
	vols = json_object_get(a, "Volumes");
	json_array_foreach(vols, i, v) {
		snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", json_string_value(json_object_get(v, "Name")));
		json_decref(ok_call(true, NFSV3_ROUTE_UNMOUNT, body, NULL));
	}
	json_decref(a);
	ck_assert_int_eq(mounts_under(d.root), 0);
}
END_TEST

START_TEST(docker_sequence_with_ids)
{
	const char *id1 = "{\"Name\":\"dvol\",\"ID\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}";
	const char *id2 = "{\"Name\":\"dvol\",\"ID\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}";
	char mp[512];
	json_t *a;

	json_decref(ok_call(false, NFSV3_ROUTE_ACTIVATE, "", DOCKER_ACCEPT));
	json_decref(ok_call(false, NFSV3_ROUTE_CAPABILITIES, "", DOCKER_ACCEPT));
	err_call(false, NFSV3_ROUTE_GET, "{\"Name\":\"dvol\"}\n", DOCKER_ACCEPT, NFSV3_ERR_NOT_FOUND);
	create_local(false, "dvol", DOCKER_ACCEPT);
	snprintf(mp, sizeof(mp), "%s/dvol", d.root);
	a = ok_call(false, NFSV3_ROUTE_MOUNT, id1, DOCKER_ACCEPT);
	ck_assert_str_eq(json_string_value(json_object_get(a, "Mountpoint")), mp);
	json_decref(a);
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, id2, DOCKER_ACCEPT));
	ck_assert_int_eq(mounts_under(mp), 1);
	err_call(false, NFSV3_ROUTE_REMOVE, "{\"Name\":\"dvol\"}", DOCKER_ACCEPT, NFSV3_ERR_IN_USE);
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, id1, DOCKER_ACCEPT));
	ck_assert_int_eq(mounts_under(mp), 1);
	/* The same ID again holds nothing any more. */
	err_call(false, NFSV3_ROUTE_UNMOUNT, id1, DOCKER_ACCEPT, NFSV3_ERR_NOT_MOUNTED);
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, id2, DOCKER_ACCEPT));
	ck_assert_int_eq(mounts_under(mp), 0);
	json_decref(ok_call(false, NFSV3_ROUTE_REMOVE, "{\"Name\":\"dvol\"}", DOCKER_ACCEPT));
	err_call(false, NFSV3_ROUTE_GET, "{\"Name\":\"dvol\"}", DOCKER_ACCEPT, NFSV3_ERR_NOT_FOUND);
}
END_TEST

START_TEST(option_errors_at_create_for_docker_at_mount_for_volman)
{
	char body[1024];

	snprintf(body, sizeof(body), "{\"Name\":\"o1\",\"Opts\":{\"source\":\"file://%s\",\"bogus\":\"1\"}}", src);
	err_call(false, NFSV3_ROUTE_CREATE, body, DOCKER_ACCEPT, "Not allowed options: bogus");
	/* volman: Create succeeds, Mount carries the same error as a SafeError. */
	json_decref(ok_call(true, NFSV3_ROUTE_CREATE, body, NULL));
	int status;
	json_t *a = call_tcp(&d, NFSV3_ROUTE_MOUNT, "{\"Name\":\"o1\"}", NULL, &status);
	const char *raw = json_string_value(json_object_get(a, "Err"));
	ck_assert_msg(raw && strstr(raw, "SafeDescription"), "Err not a SafeError: %s", raw);
	ck_assert_ptr_nonnull(strstr(answer_err(a), "Not allowed options: bogus"));
	json_decref(a);
	ck_assert_int_eq(mounts_under(d.root), 0);
}
END_TEST

START_TEST(create_same_options_again_and_replace)
{
	char body[1024];

	create_local(false, "same", NULL);
	create_local(false, "same", NULL);
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"same\"}", NULL));
	snprintf(body, sizeof(body), "{\"Name\":\"same\",\"Opts\":{\"source\":\"file://%s\",\"readonly\":true}}", src);
	err_call(false, NFSV3_ROUTE_CREATE, body, NULL, NFSV3_ERR_IN_USE);
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"same\"}", NULL));
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE, body, NULL));
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"same\"}", NULL));
	char file[600];
	snprintf(file, sizeof(file), "%s/same/new", d.root);
	ck_assert_int_ne(mkdir(file, 0755), 0); /* read-only bind, enforced by the kernel */
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"same\"}", NULL));
}
END_TEST

START_TEST(unmount_and_mount_of_unknown_volume)
{
	err_call(true, NFSV3_ROUTE_MOUNT, "{\"Name\":\"nope\"}", NULL, NFSV3_ERR_NOT_FOUND);
	err_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"nope\"}", NULL, NFSV3_ERR_NOT_FOUND);
	err_call(true, NFSV3_ROUTE_REMOVE, "{\"Name\":\"nope\"}", NULL, NFSV3_ERR_NOT_FOUND);
	err_call(true, NFSV3_ROUTE_PATH, "{\"Name\":\"nope\"}", NULL, NFSV3_ERR_NOT_FOUND);
	create_local(true, "known", NULL);
	err_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"known\"}", NULL, NFSV3_ERR_NOT_MOUNTED);
}
END_TEST

START_TEST(spec_file_written_and_removed)
{
	char path[512], text[512] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/nfsv3driver.json", d.drivers);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(text, sizeof(text), f));
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "\"Addr\":\"http://127.0.0.1:"));
	ck_assert_ptr_nonnull(strstr(text, "\"UniqueVolumeIds\":true"));
	int status = daemon_stop(&d);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

/* ---- restarts and state ---- */

START_TEST(kill9_restart_adopts_mounts)
{
	char mp[512];
	struct stat st;
	json_t *a;

	create_local(false, "keep1", NULL);
	create_local(false, "keep2", NULL);
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"keep1\"}", NULL));
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"keep2\",\"ID\":\"abc\"}", DOCKER_ACCEPT));
	snprintf(mp, sizeof(mp), "%s/driver-state.json", d.root);
	ck_assert_int_eq(stat(mp, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	daemon_kill9(&d);
	daemon_start(&d);
	ck_assert_int_eq(daemon_log_count(&d, "reconcile.adopted"), 2);
	a = ok_call(false, NFSV3_ROUTE_LIST, "{}", NULL);
	ck_assert_int_eq(json_array_size(json_object_get(a, "Volumes")), 2);
	json_decref(a);
	ck_assert_int_eq(mounts_under(d.root), 2);
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"keep1\"}", NULL));
	json_decref(ok_call(false, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"keep2\",\"ID\":\"abc\"}", DOCKER_ACCEPT));
	ck_assert_int_eq(mounts_under(d.root), 0);
}
END_TEST

START_TEST(restart_forgets_mount_that_vanished)
{
	char mp[512], cmd[600];

	create_local(false, "gone", NULL);
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"gone\"}", NULL));
	daemon_kill9(&d);
	snprintf(mp, sizeof(mp), "%s/gone", d.root);
	snprintf(cmd, sizeof(cmd), "umount -l '%s'", mp);
	ck_assert_int_eq(system(cmd), 0);
	daemon_start(&d);
	ck_assert_int_eq(daemon_log_count(&d, "reconcile.mount-gone"), 1);
	json_t *a = ok_call(false, NFSV3_ROUTE_GET, "{\"Name\":\"gone\"}", NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(a, "Volume"), "MountCount")), 0);
	json_decref(a);
	/* It mounts again from scratch. */
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"gone\"}", NULL));
	ck_assert_int_eq(mounts_under(mp), 1);
}
END_TEST

static void corrupt_state_case(const char *content)
{
	char path[512], cmd[1024];
	json_t *a;

	create_local(false, "lost", NULL);
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"lost\"}", NULL));
	daemon_kill9(&d);
	snprintf(path, sizeof(path), "%s/driver-state.json", d.root);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(content, f);
	fclose(f);
	daemon_start(&d);
	ck_assert_int_eq(daemon_log_count(&d, "state.load-failed"), 1);
	ck_assert_int_eq(daemon_log_count(&d, "nfsv3driver: state file"), 1); /* and on stderr */
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -q 'driver-state.json.corrupt-'", d.root);
	ck_assert_int_eq(system(cmd), 0);
	a = ok_call(false, NFSV3_ROUTE_LIST, "{}", NULL);
	ck_assert_int_eq(json_array_size(json_object_get(a, "Volumes")), 0);
	json_decref(a);
	/* The mount nobody knows any more is purged in the background. */
	for (int i = 0; i < 200 && mounts_under(d.root) > 0; i++)
		usleep(20000);
	ck_assert_int_eq(mounts_under(d.root), 0);
	assert_alive();
}

START_TEST(truncated_state_file)
{
	corrupt_state_case("{\"version\":1,\"volumes\":[{\"name\":\"lost\",\"op");
}
END_TEST

START_TEST(garbage_state_file)
{
	corrupt_state_case("\x01\x02garbage\xff\n");
}
END_TEST

START_TEST(wrong_shape_state_file)
{
	corrupt_state_case("{\"version\":1,\"volumes\":[{\"name\":\"../etc\",\"opts\":{},\"mounted\":true,\"ids\":[],\"count\":1}]}");
}
END_TEST

/* ---- helpers that hang ---- */

/*
 * Start the daemon afresh with a stand-in for the mount helper: a script
 * with the given body (after "#!/bin/bash\n", %s is the test dir's unique
 * suffix) and extra daemon options.
 */
static void restart_with_fake_helper(const char *body_fmt, const char *options)
{
	char dir[512], script[600];
	FILE *f;

	daemon_cleanup(&d);
	daemon_init(&d, NULL);
	snprintf(dir, sizeof(dir), "%s/helpers", d.dir);
	mkdir(dir, 0755);
	snprintf(script, sizeof(script), "%s/" NFSV3_HELPER_MOUNT, dir);
	f = fopen(script, "w");
	ck_assert_ptr_nonnull(f);
	fputs("#!/bin/bash\n", f);
	fprintf(f, body_fmt, strrchr(d.dir, '.') + 1);
	fclose(f);
	chmod(script, 0755);
	snprintf(d.extra, sizeof(d.extra), "--helper-dir %s %s", dir, options);
	snprintf(src, sizeof(src), "%s/src", d.dir);
	make_source_dir(src);
	daemon_start(&d);
}

START_TEST(hung_helper_times_out)
{
	char cmd[1200];
	struct timespec t0, t1;
	int status;
	json_t *a;

	restart_with_fake_helper("exec -a hung-%s sleep 1000\n", "--helper-timeout 1");
	create_local(true, "hang", NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	a = call_tcp(&d, NFSV3_ROUTE_MOUNT, "{\"Name\":\"hang\"}", NULL, &status);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_msg(strstr(answer_err(a), "timed out after 1 s mounting volume hang"), "Err: %s", answer_err(a));
	json_decref(a);
	double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* Answered at the deadline; the cleanup unmount runs after. */
	ck_assert_msg(elapsed < 2.0, "Mount took %.1f s", elapsed);
	assert_alive();
	/* No sleeper is left behind once the cleanup (also hung, also killed)
	 * is over: each whole process group was killed. */
	snprintf(cmd, sizeof(cmd), "pgrep -f '^hung-%s' >/dev/null", strrchr(d.dir, '.') + 1);
	for (int i = 0; i < 40 && system(cmd) == 0; i++)
		usleep(100000);
	ck_assert_int_ne(system(cmd), 0);
	/* The volume's next operation waited for the cleanup, and works. */
	err_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"hang\"}", NULL, NFSV3_ERR_NOT_MOUNTED);
}
END_TEST

START_TEST(ping_answers_while_helpers_hang)
{
	char body[64];
	pid_t kids[4];
	int status;

	restart_with_fake_helper("exec sleep 1000\n", "--helper-timeout 2");
	for (int i = 0; i < 4; i++) {
		snprintf(body, sizeof(body), "h%d", i);
		create_local(true, body, NULL);
	}
	for (int i = 0; i < 4; i++) {
		if ((kids[i] = fork()) == 0) {
			snprintf(body, sizeof(body), "{\"Name\":\"h%d\"}", i);
			json_decref(call_tcp(&d, NFSV3_ROUTE_MOUNT, body, NULL, &status));
			_exit(0);
		}
	}
	usleep(300000);
	for (int i = 0; i < 20; i++) {
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		json_decref(call_admin(&d, NFSV3_ADMIN_PING, &status));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ck_assert_int_eq(status, 200);
		ck_assert((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 100);
	}
	for (int i = 0; i < 4; i++)
		waitpid(kids[i], NULL, 0);
}
END_TEST

/* ---- bad input: each its own test, through the loop index ---- */

struct bad_case {
	const char *route;
	const char *body;
	const char *want; /* in Err */
};

static const struct bad_case bad_cases[] = {
	{ NFSV3_ROUTE_CREATE, "{not json", "not valid JSON" },
	{ NFSV3_ROUTE_CREATE, "[1,2]", "expected a JSON object" },
	{ NFSV3_ROUTE_CREATE, "\"text\"", "expected a JSON object" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":5}", "Name: expected a string" },
	{ NFSV3_ROUTE_CREATE, "{\"Opts\":{}}", "Name is required" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"\"}", "Name: must not be empty" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"a/b\"}", "found '/'" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"..\"}", "must start with a letter or a digit" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"a\\u0000b\"}", "Name: may not contain NUL characters" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\\u0000,sec=none\"}}",
	  "Opts.source: may not contain NUL characters" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"a\\u0000\":1}}", "the key \"a\\u0000\" at line 1 column" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",", "ends at line 1 column 12 before the JSON is complete" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\"} {}", "more follows the JSON object" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":tru}", "unexpected 'tru' at line 1 column 11; expected a JSON value" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"\xff\"}", "is not UTF-8" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":1e999}", "out of range" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"a\\nb\"}", "found byte 0x0a" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"driver-state.json\"}", "reserved" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"color\":\"red\",\"size\":1}}", "Not allowed options: color, size" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"uid\":\"0\",\"gid\":\"1\"}}", "uid \"0\"" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"uid\":\"-5\",\"gid\":\"1\"}}", "uid \"-5\"" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"uid\":\"abc\",\"gid\":\"1\"}}", "uid \"abc\"" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"uid\":\"4294967296\",\"gid\":\"1\"}}", "from 1 to 4294967294" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"uid\":[1],\"gid\":\"1\"}}", "got an array" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"uid\":\"5\"}}", "give both or neither" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e;x\"}}", "found ';'" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\\tx\"}}", "found byte 0x09" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\\\"x\"}}", "found '\"'" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"-o /x\"}}", "expected nfs://" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs:///export\"}}", "no host" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://-o/export\"}}", "is not a DNS name" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h:99999/e\"}}", "port" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":42}}", "source: expected a string" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{}}", "source is required" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"version\":\"5\"}}", "version \"5\"" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"readonly\":\"maybe\"}}", "readonly \"maybe\"" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"nfs_options\":\"sec=none\"}}", "\"sec\" can only be set by the operator" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"nfs_options\":\"frob=1\"}}", "not in the operator's allowed" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://h/e\",\"username\":\"u\",\"password\":\"hunter2\"}}", "no LDAP" },
	{ NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":\"source=nfs://h/e\"}", "Opts: expected an object" },
	{ NFSV3_ROUTE_MOUNT, "{\"Name\":\"x\",\"ID\":7}", "ID: expected a string" },
	{ NFSV3_ROUTE_MOUNT, "{\"Name\":\"x\",\"ID\":\"a b\"}", "ID: may only contain" },
	{ NFSV3_ROUTE_GET, "{\"Name\":\"x\",\"Name\":\"y\"}", "the key \"Name\" appears twice" },
};

START_TEST(bad_request_is_refused)
{
	const struct bad_case *c = &bad_cases[_i];
	json_t *a;
	int status;

	a = call_unix(&d, c->route, c->body, DOCKER_ACCEPT, &status);
	ck_assert_int_eq(status, 200);
	ck_assert_msg(strstr(answer_err(a), c->want), "%s %s: Err \"%s\", wanted \"%s\"", c->route, c->body,
		      answer_err(a), c->want);
	/* The parser's internals (JSON_ALLOW_NUL, "near ...") are not the client's business. */
	ck_assert_msg(!strstr(answer_err(a), "JSON_") && !strstr(answer_err(a), " near "), "Err \"%s\"", answer_err(a));
	json_decref(a);
	/* Nothing was created and the daemon serves on. */
	a = ok_call(false, NFSV3_ROUTE_LIST, "{}", NULL);
	ck_assert_int_eq(json_array_size(json_object_get(a, "Volumes")), 0);
	json_decref(a);
	assert_alive();
}
END_TEST

START_TEST(ten_thousand_character_name)
{
	char *body = malloc(10100);
	int n = sprintf(body, "{\"Name\":\"");
	memset(body + n, 'a', 10000);
	strcpy(body + n + 10000, "\"}");
	err_call(false, NFSV3_ROUTE_CREATE, body, NULL, "10000 characters, at most 255");
	free(body);
	assert_alive();
}
END_TEST

START_TEST(password_is_never_logged_or_stored)
{
	char path[512], cmd[700];

	create_local(false, "pw", NULL);
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE,
			    "{\"Name\":\"pw2\",\"Opts\":{\"source\":\"nfs://h/e\",\"username\":\"u\",\"password\":\"hunter2secret\"}}",
			    NULL));
	snprintf(cmd, sizeof(cmd), "grep -rq hunter2secret '%s' '%s'", d.log, d.root);
	ck_assert_int_ne(system(cmd), 0);
	ck_assert_int_ge(daemon_log_count(&d, "REDACTED"), 1);
	snprintf(path, sizeof(path), "%s/driver-state.json", d.root);
	ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

/* ---- HTTP framing through the daemon ---- */

START_TEST(unknown_route_and_method)
{
	int status;
	json_t *a = call_unix(&d, "/VolumeDriver.Frobnicate", "{}", NULL, &status);
	ck_assert_int_eq(status, 404);
	ck_assert_ptr_nonnull(strstr(answer_err(a), NFSV3_ERR_UNKNOWN_ROUTE));
	json_decref(a);
	char *reply = raw_unix(&d, "GET /VolumeDriver.List HTTP/1.1\r\nHost: x\r\n\r\n", 44, 2000);
	ck_assert_msg(strncmp(reply, "HTTP/1.1 405", 12) == 0, "%s", reply);
	free(reply);
	assert_alive();
}
END_TEST

START_TEST(malformed_http)
{
	char *reply = raw_unix(&d, "\x16\x03\x01garbage\r\n\r\n", 14, 2000);
	ck_assert_msg(strncmp(reply, "HTTP/1.1 400", 12) == 0, "%s", reply);
	free(reply);
	assert_alive();
}
END_TEST

START_TEST(oversized_header_and_body)
{
	size_t big = 64 * 1024;
	char *req = malloc(big + 256);
	int n = sprintf(req, "POST /VolumeDriver.List HTTP/1.1\r\nX-Big: ");
	memset(req + n, 'x', big);
	strcpy(req + n + big, "\r\n\r\n");
	char *reply = raw_unix(&d, req, strlen(req), 2000);
	ck_assert_msg(strncmp(reply, "HTTP/1.1 431", 12) == 0, "%.40s", reply);
	free(reply);
	n = sprintf(req, "POST /VolumeDriver.Create HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n{");
	reply = raw_unix(&d, req, (size_t)n, 2000);
	ck_assert_msg(strncmp(reply, "HTTP/1.1 413", 12) == 0, "%.40s", reply);
	free(reply);
	free(req);
	assert_alive();
}
END_TEST

START_TEST(request_one_byte_at_a_time)
{
	const char *req = "POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
	size_t len = strlen(req);
	char *reply;

	/* Each byte its own write, with a pause between: the server must wait
	 * for the whole request rather than answer a fragment. */
	reply = raw_unix_trickle(&d, req, len, 2);
	ck_assert_msg(strstr(reply, "Implements"), "answer: %s", reply);
	free(reply);
	assert_alive();
}
END_TEST

START_TEST(keepalive_pipelined_in_order)
{
	const char *one = "POST /VolumeDriver.Get HTTP/1.1\r\nContent-Length: 15\r\n\r\n{\"Name\":\"pipe\"}";
	const char *list = "POST /VolumeDriver.List HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
	const char *last = "POST /Plugin.Activate HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	char req[1024];
	create_local(false, "pipe", NULL);
	snprintf(req, sizeof(req), "%s%s%s", one, list, last);
	char *reply = raw_unix(&d, req, strlen(req), 3000);
	char *a = strstr(reply, "\"Volume\""), *b = strstr(reply, "\"Volumes\""), *c = strstr(reply, "Implements");
	ck_assert_msg(a && b && c && a < b && b < c, "answers out of order: %s", reply);
	free(reply);
}
END_TEST

START_TEST(operations_on_different_volumes_run_in_parallel)
{
	char body[64];
	struct timespec t0, t1;
	pid_t kids[4];

	restart_with_fake_helper("sleep 1\nexit 5\n", "--max-parallel 4");
	for (int i = 0; i < 4; i++) {
		snprintf(body, sizeof(body), "p%d", i);
		create_local(true, body, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 4; i++) {
		if ((kids[i] = fork()) == 0) {
			int status;
			snprintf(body, sizeof(body), "{\"Name\":\"p%d\"}", i);
			json_decref(call_tcp(&d, NFSV3_ROUTE_MOUNT, body, NULL, &status));
			_exit(0);
		}
	}
	for (int i = 0; i < 4; i++)
		waitpid(kids[i], NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_msg(t1.tv_sec - t0.tv_sec < 3, "4 one-second helpers took %ld s", (long)(t1.tv_sec - t0.tv_sec));
}
END_TEST

START_TEST(evacuate_unmounts_everything)
{
	int status;
	create_local(false, "e1", NULL);
	create_local(false, "e2", NULL);
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"e1\"}", NULL));
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"e2\",\"ID\":\"x1\"}", DOCKER_ACCEPT));
	ck_assert_int_eq(mounts_under(d.root), 2);
	json_t *a = call_admin(&d, NFSV3_ADMIN_EVACUATE, &status);
	ck_assert_int_eq(status, 200);
	json_decref(a);
	ck_assert_int_eq(mounts_under(d.root), 0);
}
END_TEST

START_TEST(command_line_errors_exit_2)
{
	const char *bin = harness_build_path("bin/nfsv3driver");
	const char *cases[] = { "--bogus", "--listen udp://x --mount-root /tmp", "--listen unix:/tmp/x.sock",
				"--listen unix:/tmp/x.sock --mount-root /tmp --helper-timeout 0",
				"--listen unix:/tmp/x.sock --mount-root /tmp --max-parallel abc",
				"--listen unix:/tmp/x.sock --mount-root /tmp --log-level loud" };
	char cmd[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>%s/err; echo $? > %s/rc", bin, cases[i], d.dir, d.dir);
		ck_assert_int_eq(system(cmd), 0);
		snprintf(cmd, sizeof(cmd), "grep -qx 2 %s/rc && grep -q '^nfsv3driver: ' %s/err", d.dir, d.dir);
		ck_assert_msg(system(cmd) == 0, "case %s did not exit 2 with a message", cases[i]);
	}
}
END_TEST


/* Each idmapfs inherits the daemon's descriptor limit and holds one per inode. */
START_TEST(daemon_takes_the_hard_descriptor_limit)
{
	char path[64], line[256];
	unsigned long long soft = 0, hard = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)d.pid);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "Max open files", 14) == 0)
			ck_assert_int_eq(sscanf(line + 14, "%llu %llu", &soft, &hard), 2);
	fclose(f);
	ck_assert_uint_gt(hard, 0);
	ck_assert_msg(soft == hard, "soft limit %llu, hard %llu", soft, hard);
}
END_TEST

START_TEST(local_source_outside_the_operators_list_is_refused)
{
	/* The daemon allows file:// sources here, but the helper trusts only
	 * the root-owned list in /etc/nfsv3driver/local-sources. */
	json_decref(ok_call(true, NFSV3_ROUTE_CREATE, "{\"Name\":\"u1\",\"Opts\":{\"source\":\"file:///usr/share\"}}", NULL));
	err_call(true, NFSV3_ROUTE_MOUNT, "{\"Name\":\"u1\"}", NULL, "/usr/share: neither beneath");
	ck_assert_int_eq(mounts_under(d.root), 0);
}
END_TEST

START_TEST(nfs_source_error_reaches_the_app_developer)
{
	/* This machine's kernel has no NFS client: the kernel's word comes back. */
	json_decref(ok_call(true, NFSV3_ROUTE_CREATE, "{\"Name\":\"n1\",\"Opts\":{\"source\":\"nfs://127.0.0.1/export\"}}", NULL));
	err_call(true, NFSV3_ROUTE_MOUNT, "{\"Name\":\"n1\"}", NULL,
		 "mounting volume n1: nfsv3driver-mount: mounting 127.0.0.1:/export");
	json_decref(ok_call(true, NFSV3_ROUTE_CREATE, "{\"Name\":\"n2\",\"Opts\":{\"source\":\"nfs://no-such-host.invalid/export\"}}", NULL));
	err_call(true, NFSV3_ROUTE_MOUNT, "{\"Name\":\"n2\"}", NULL, "unknown host \"no-such-host.invalid\"");
	ck_assert_int_eq(mounts_under(d.root), 0);
	assert_alive();
}
END_TEST

static Suite *integration_suite(void)
{
	Suite *s = suite_create("integration");
	TCase *tc = tcase_create("daemon");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, volman_sequence_over_tcp);
	tcase_add_test(tc, volman_rep_start_list_and_unmount);
	tcase_add_test(tc, docker_sequence_with_ids);
	tcase_add_test(tc, option_errors_at_create_for_docker_at_mount_for_volman);
	tcase_add_test(tc, create_same_options_again_and_replace);
	tcase_add_test(tc, unmount_and_mount_of_unknown_volume);
	tcase_add_test(tc, spec_file_written_and_removed);
	tcase_add_test(tc, kill9_restart_adopts_mounts);
	tcase_add_test(tc, restart_forgets_mount_that_vanished);
	tcase_add_test(tc, truncated_state_file);
	tcase_add_test(tc, garbage_state_file);
	tcase_add_test(tc, wrong_shape_state_file);
	tcase_add_test(tc, hung_helper_times_out);
	tcase_add_test(tc, ping_answers_while_helpers_hang);
	tcase_add_loop_test(tc, bad_request_is_refused, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, ten_thousand_character_name);
	tcase_add_test(tc, password_is_never_logged_or_stored);
	tcase_add_test(tc, unknown_route_and_method);
	tcase_add_test(tc, malformed_http);
	tcase_add_test(tc, oversized_header_and_body);
	tcase_add_test(tc, request_one_byte_at_a_time);
	tcase_add_test(tc, keepalive_pipelined_in_order);
	tcase_add_test(tc, operations_on_different_volumes_run_in_parallel);
	tcase_add_test(tc, evacuate_unmounts_everything);
	tcase_add_test(tc, command_line_errors_exit_2);
	tcase_add_test(tc, nfs_source_error_reaches_the_app_developer);
	tcase_add_test(tc, local_source_outside_the_operators_list_is_refused);
	tcase_add_test(tc, daemon_takes_the_hard_descriptor_limit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_integration: needs root for real bind mounts; skipped\n");
		return 77;
	}
	return harness_run(integration_suite());
}
