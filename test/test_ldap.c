/*
 * LDAP identity through the real daemon against a real slapd of our own
 * (test/ldap/slapd.sh: its own config, schema, test CA and users, on
 * loopback ports): the password proven, the directory's uidNumber and
 * gidNumber owning what the binding writes, and every refusal named.
 */
#include <check.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "harness.h"

static char ldap_dir[256];
static int ldap_port, ldaps_port;
static pid_t slapd_pid;
static int silent_fd = -1; /* 127.0.0.3:ldap_port: accepts TCP, never answers */

static int pick_port(void)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
		return -1;
	port = ntohs(addr.sin_port);
	close(fd);
	return port;
}

/* slapd answers a search as the service user: it is up. */
static bool slapd_answers(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd),
		 "ldapsearch -x -H ldap://127.0.0.1:%d -D cn=svc,dc=test -w svc-pw -b dc=test -s base >/dev/null 2>&1",
		 ldap_port);
	return system(cmd) == 0;
}

static void stop_slapd(void)
{
	char cmd[300];

	if (slapd_pid > 0) {
		kill(slapd_pid, SIGTERM);
		waitpid(slapd_pid, NULL, 0);
		slapd_pid = 0;
	}
	if (ldap_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ldap_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "test_ldap: could not remove %s\n", ldap_dir);
		ldap_dir[0] = '\0';
	}
}

/* 0 started, 77 when slapd is missing and cannot be installed, 1 broken. */
static int start_slapd(void)
{
	char script[600], deps[600], log[300];
	const char *build = getenv("NFSV3_BUILD");
	struct sockaddr_in silent = { .sin_family = AF_INET };

	snprintf(deps, sizeof(deps), "%s/../packaging/deps.sh", build ? build : "build");
	snprintf(script, sizeof(script), "%s/../test/ldap/slapd.sh", build ? build : "build");
	if (access("/usr/sbin/slapd", X_OK) != 0 || access("/usr/sbin/slapadd", X_OK) != 0 ||
	    access("/usr/bin/ldapsearch", X_OK) != 0) {
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "%s ldap", deps);
		if (system(cmd) != 0 || access("/usr/sbin/slapd", X_OK) != 0) {
			printf("test_ldap: SKIP: slapd, slapadd and ldapsearch (Debian slapd, ldap-utils) cannot be installed\n");
			return 77;
		}
	}
	snprintf(ldap_dir, sizeof(ldap_dir), "/tmp/nfsv3-ldap.XXXXXX");
	if (!mkdtemp(ldap_dir))
		return 1;
	chmod(ldap_dir, 0755);
	ldap_port = pick_port();
	ldaps_port = pick_port();
	snprintf(log, sizeof(log), "%s/slapd.log", ldap_dir);
	if ((slapd_pid = fork()) == 0) {
		char p1[16], p2[16];
		FILE *out = freopen(log, "w", stdout);
		(void)out;
		dup2(1, 2);
		snprintf(p1, sizeof(p1), "%d", ldap_port);
		snprintf(p2, sizeof(p2), "%d", ldaps_port);
		execl("/bin/sh", "sh", script, ldap_dir, p1, p2, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300 && !slapd_answers(); i++)
		usleep(50000);
	if (!slapd_answers()) {
		fprintf(stderr, "test_ldap: slapd did not come up; see %s\n", log);
		return 1;
	}
	/* The listener that never answers shares the port on another loopback address. */
	silent.sin_port = htons((uint16_t)ldap_port);
	inet_pton(AF_INET, "127.0.0.3", &silent.sin_addr);
	silent_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (silent_fd < 0 || bind(silent_fd, (struct sockaddr *)&silent, sizeof(silent)) != 0 || listen(silent_fd, 64) != 0) {
		fprintf(stderr, "test_ldap: silent listener on 127.0.0.3:%d: %s\n", ldap_port, strerror(errno));
		return 1;
	}
	return 0;
}

/* The daemon with LDAP: hosts, transport words (e.g. "--ldap-insecure-plaintext"), more flags. */
static void start_daemon(const char *hosts, int port, const char *transport, const char *more)
{
	char extra[1024], pwfile[400];
	FILE *f;

	snprintf(pwfile, sizeof(pwfile), "%s/svc-password", ldap_dir);
	f = fopen(pwfile, "w");
	ck_assert_ptr_nonnull(f);
	fputs("svc-pw\n", f);
	fclose(f);
	chmod(pwfile, 0600);
	snprintf(extra, sizeof(extra),
		 "--ldap-host %s --ldap-port %d --ldap-svc-user cn=svc,dc=test --ldap-svc-password-file %s "
		 "--ldap-user-fqdn dc=test --ldap-timeout 2 %s %s",
		 hosts, port, pwfile, transport, more ? more : "");
	setenv("NFSV3_IT_EXTRA", extra, 1);
	fixture_setup();
	chmod(src, 0777);
}

static void start_plain(void)
{
	start_daemon("127.0.0.1", ldap_port, "--ldap-insecure-plaintext", NULL);
}

static void create_user(const char *name, const char *user, const char *password)
{
	char body[1024];

	snprintf(body, sizeof(body),
		 "{\"Name\":\"%s\",\"Opts\":{\"source\":\"file://%s\",\"username\":\"%s\",\"password\":\"%s\"}}", name, src,
		 user, password);
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE, body, NULL));
}

static void mount_fails(const char *name, const char *want)
{
	char body[300];

	snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", name);
	err_call(true, NFSV3_ROUTE_MOUNT, body, NULL, want);
}

static int as_app(const char *command)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "setpriv --reuid 2000 --regid 2000 --clear-groups sh -c '%s'", command);
	return system(cmd);
}

/* Mount name, write a file through it as the app, and check its owner on the backing. */
static void mount_and_check_owner(const char *name, unsigned uid, unsigned gid)
{
	char body[300], cmd[1024], path[600];
	struct stat st;
	json_t *a;

	snprintf(body, sizeof(body), "{\"Name\":\"%s\"}", name);
	a = ok_call(true, NFSV3_ROUTE_MOUNT, body, NULL);
	json_decref(a);
	snprintf(cmd, sizeof(cmd), "echo data > %s/%s/by-%s && test \"$(stat -c %%u:%%g %s/%s/by-%s)\" = 2000:2000", d.root,
		 name, name, d.root, name, name);
	ck_assert_int_eq(as_app(cmd), 0);
	snprintf(path, sizeof(path), "%s/by-%s", src, name);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, uid);
	ck_assert_uint_eq(st.st_gid, gid);
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1000 + (double)t.tv_nsec / 1e6;
}

static bool file_contains(const char *path, const char *text)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "grep -qF -- '%s' '%s'", text, path);
	return system(cmd) == 0;
}

START_TEST(right_password_maps_to_directory_ids)
{
	char state[400];

	start_plain();
	create_user("a1", "alice", "alice-pw");
	mount_and_check_owner("a1", 1234, 1235);
	/* The password is in no log line, not in the state; the identity and user name are. */
	ck_assert(!file_contains(d.log, "alice-pw"));
	snprintf(state, sizeof(state), "%s/%s", d.root, NFSV3_STATE_FILE);
	ck_assert(!file_contains(state, "alice-pw"));
	ck_assert(file_contains(state, "\"ldap_uid\": 1234") || file_contains(state, "\"ldap_uid\":1234"));
	ck_assert(file_contains(state, "alice"));
	ck_assert_int_eq(daemon_log_count(&d, "ldap.resolved"), 1);
	json_decref(ok_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"a1\"}", NULL));
	ck_assert_int_eq(mounts_under(d.root), 0);
}
END_TEST

START_TEST(gid_falls_back_to_uid)
{
	start_plain();
	create_user("g1", "nogid", "nogid-pw");
	mount_and_check_owner("g1", 4321, 4321);
}
END_TEST

START_TEST(restart_keeps_mount_without_password)
{
	char state[400];

	start_plain();
	create_user("r1", "alice", "alice-pw");
	mount_and_check_owner("r1", 1234, 1235);
	ck_assert_int_eq(daemon_stop(&d), 0);
	daemon_start(&d);
	/* Adopted: a second Mount takes a reference without asking the directory again. */
	json_decref(ok_call(true, NFSV3_ROUTE_MOUNT, "{\"Name\":\"r1\"}", NULL));
	ck_assert_int_eq(as_app("true"), 0);
	ck_assert_int_eq(daemon_log_count(&d, "ldap.resolved"), 1);
	{
		char cmd[1024];
		snprintf(cmd, sizeof(cmd), "echo again > %s/r1/after && test \"$(stat -c %%u %s/after)\" = 1234", d.root, src);
		ck_assert_int_eq(as_app(cmd), 0);
	}
	json_decref(ok_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"r1\"}", NULL));
	json_decref(ok_call(true, NFSV3_ROUTE_UNMOUNT, "{\"Name\":\"r1\"}", NULL));
	/* Unmounted, the identity is still the volume's: it mounts again with no password held. */
	mount_and_check_owner("r1", 1234, 1235);
	snprintf(state, sizeof(state), "%s/%s", d.root, NFSV3_STATE_FILE);
	ck_assert(!file_contains(state, "alice-pw"));
	ck_assert(!file_contains(d.log, "alice-pw"));
}
END_TEST

START_TEST(password_not_held_across_restart_before_mount)
{
	start_plain();
	create_user("p1", "alice", "alice-pw");
	ck_assert_int_eq(daemon_stop(&d), 0);
	daemon_start(&d);
	mount_fails("p1", NFSV3_ERR_LDAP_PASSWORD_GONE);
	/* Created again with the password, it mounts. */
	create_user("p1", "alice", "alice-pw");
	mount_and_check_owner("p1", 1234, 1235);
}
END_TEST

START_TEST(refusals_name_the_problem)
{
	char body[1024];

	start_plain();
	create_user("w1", "alice", "wrong-secret-1");
	mount_fails("w1", NFSV3_ERR_LDAP_WRONG_PASSWORD " alice");
	create_user("u1", "nobody", "nobody-pw");
	mount_fails("u1", NFSV3_ERR_LDAP_UNKNOWN_USER ": nobody");
	create_user("d1", "dup", "dup-pw");
	mount_fails("d1", NFSV3_ERR_LDAP_AMBIGUOUS);
	create_user("n1", "nouid", "nouid-pw");
	mount_fails("n1", NFSV3_ERR_LDAP_NO_UID " uidNumber");
	create_user("z1", "root0", "root0-pw");
	mount_fails("z1", NFSV3_ERR_LDAP_ROOT);
	/* A * in the name is escaped: it matches no one rather than everyone. */
	create_user("s1", "*", "x");
	mount_fails("s1", NFSV3_ERR_LDAP_UNKNOWN_USER);
	/* The default filter asks for objectClass=User: bob has no such class. */
	create_user("b1", "bob", "bob-pw");
	mount_fails("b1", NFSV3_ERR_LDAP_UNKNOWN_USER ": bob");
	/* Option errors: at Mount for volman, at Create for Docker. */
	snprintf(body, sizeof(body), "{\"Name\":\"e1\",\"Opts\":{\"source\":\"file://%s\",\"username\":\"alice\",\"password\":\"\"}}",
		 src);
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE, body, NULL));
	mount_fails("e1", NFSV3_ERR_LDAP_EMPTY_PASSWORD);
	err_call(false, NFSV3_ROUTE_CREATE, body, DOCKER_ACCEPT, NFSV3_ERR_LDAP_EMPTY_PASSWORD);
	snprintf(body, sizeof(body), "{\"Name\":\"e2\",\"Opts\":{\"source\":\"file://%s\",\"username\":\"alice\"}}", src);
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE, body, NULL));
	mount_fails("e2", NFSV3_ERR_LDAP_NO_PASSWORD);
	err_call(false, NFSV3_ROUTE_CREATE, body, DOCKER_ACCEPT, NFSV3_ERR_LDAP_NO_PASSWORD);
	snprintf(body, sizeof(body),
		 "{\"Name\":\"e3\",\"Opts\":{\"source\":\"file://%s\",\"username\":\"alice\",\"password\":\"alice-pw\",\"uid\":\"5\",\"gid\":\"5\"}}",
		 src);
	err_call(false, NFSV3_ROUTE_CREATE, body, DOCKER_ACCEPT, NFSV3_ERR_LDAP_TOGETHER);
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE, body, NULL));
	mount_fails("e3", NFSV3_ERR_LDAP_TOGETHER);
	ck_assert_int_eq(mounts_under(d.root), 0);
	ck_assert(!file_contains(d.log, "wrong-secret-1"));
	ck_assert(!file_contains(d.log, "alice-pw"));
	/* Each lookup is counted by what it found: nobody, "*" and bob are
	 * unknown, alice's password is wrong; option errors reach no directory. */
	char *scrape = raw_admin_get(&d, NFSV3_ADMIN_METRICS);
	ck_assert_msg(strstr(scrape, "\nnfsv3driver_ldap_lookups_total{outcome=\"not_found\"} 3\n"), "%s", scrape);
	ck_assert_msg(strstr(scrape, "\nnfsv3driver_ldap_lookups_total{outcome=\"invalid_credentials\"} 1\n"), "%s",
		      scrape);
	ck_assert_msg(strstr(scrape, "\nnfsv3driver_ldap_lookups_total{outcome=\"found\"} 0\n"), "%s", scrape);
	free(scrape);
	assert_alive();
}
END_TEST

START_TEST(custom_filter_and_attributes)
{
	start_daemon("127.0.0.1", ldap_port, "--ldap-insecure-plaintext",
		     "--ldap-user-filter (&(objectClass=posixAccount)(cn=%s)) --ldap-uid-attr uidNumber --ldap-gid-attr gidNumber");
	create_user("c1", "bob", "bob-pw");
	mount_and_check_owner("c1", 2345, 2345);
}
END_TEST

START_TEST(directory_down_at_mount)
{
	int port = pick_port(); /* nothing listens there */

	start_daemon("127.0.0.1", port, "--ldap-insecure-plaintext", NULL);
	create_user("x1", "alice", "alice-pw");
	mount_fails("x1", NFSV3_ERR_LDAP_UNREACHABLE);
	ck_assert_int_eq(mounts_under(d.root), 0);
	assert_alive();
}
END_TEST

START_TEST(silent_directory_times_out_while_daemon_answers)
{
	pid_t child;
	int status;
	double t0;

	start_daemon("127.0.0.3", ldap_port, "--ldap-insecure-plaintext", NULL);
	create_user("t1", "alice", "alice-pw");
	t0 = now_ms();
	if ((child = fork()) == 0) {
		int st = 0;
		json_t *a = call_tcp(&d, NFSV3_ROUTE_MOUNT, "{\"Name\":\"t1\"}", NULL, &st);
		_exit(strstr(answer_err(a), NFSV3_ERR_TIMEOUT " 2 s") && strstr(answer_err(a), NFSV3_ERR_LDAP_UNREACHABLE) ? 0 : 1);
	}
	usleep(300000);
	/* Meanwhile other requests, and a whole local mount, are served at once. */
	for (int i = 0; i < 5; i++) {
		double t = now_ms();
		assert_alive();
		ck_assert_msg(now_ms() - t < 500, "an answer took %.0f ms while the directory hung", now_ms() - t);
	}
	create_local(false, "other", NULL);
	json_decref(ok_call(false, NFSV3_ROUTE_MOUNT, "{\"Name\":\"other\"}", NULL));
	ck_assert_msg(now_ms() - t0 < 1800, "the local mount waited for the directory");
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the Mount did not time out with a named error");
	ck_assert_msg(now_ms() - t0 >= 1500 && now_ms() - t0 < 6000, "timed out after %.0f ms", now_ms() - t0);
}
END_TEST

/* The TLS handshake is bounded too: LDAPS and StartTLS against the listener that never answers. */
START_TEST(silent_directory_times_out_over_tls)
{
	char flags[400];
	double t0;

	snprintf(flags, sizeof(flags), "--ldap-ca-cert %s/ca.pem%s", ldap_dir, _i ? " --ldap-starttls" : "");
	start_daemon("127.0.0.3", ldap_port, flags, NULL);
	create_user("t2", "alice", "alice-pw");
	t0 = now_ms();
	mount_fails("t2", NFSV3_ERR_LDAP_UNREACHABLE);
	/* The connect and the handshake each have the 2 s timeout, checked every 250 ms. */
	ck_assert_msg(now_ms() - t0 < 7000, "the TLS handshake took %.0f ms to give up", now_ms() - t0);
	if (!_i)
		ck_assert_int_ge(daemon_log_count(&d, NFSV3_ERR_TIMEOUT " 2 s"), 1);
	assert_alive();
}
END_TEST

/* slapd drops idle connections (idletimeout 2): a kept one is replaced, not reported as an outage. */
START_TEST(dropped_pool_connection_is_replaced)
{
	start_plain();
	create_user("k1", "alice", "alice-pw");
	mount_and_check_owner("k1", 1234, 1235);
	sleep(3);
	create_user("k2", "nobody", "x");
	mount_fails("k2", NFSV3_ERR_LDAP_UNKNOWN_USER);
	sleep(3);
	create_user("k3", "nogid", "nogid-pw");
	mount_and_check_owner("k3", 4321, 4321);
}
END_TEST

START_TEST(failover_to_second_host)
{
	/* First a refused port (127.0.0.2), then the silent one, then the real slapd. */
	start_daemon("127.0.0.2,127.0.0.3,127.0.0.1", ldap_port, "--ldap-insecure-plaintext", NULL);
	create_user("f1", "alice", "alice-pw");
	mount_and_check_owner("f1", 1234, 1235);
	ck_assert_int_eq(daemon_log_count(&d, "ldap.failover"), 1);
	/* The connection is kept: the next lookup does not fail over again. */
	create_user("f2", "nogid", "nogid-pw");
	mount_and_check_owner("f2", 4321, 4321);
	ck_assert_int_eq(daemon_log_count(&d, "ldap.failover"), 1);
}
END_TEST

START_TEST(ldaps_with_test_ca)
{
	char flags[400];

	snprintf(flags, sizeof(flags), "--ldap-ca-cert %s/ca.pem", ldap_dir);
	start_daemon("127.0.0.1", ldaps_port, flags, NULL);
	create_user("l1", "alice", "alice-pw");
	mount_and_check_owner("l1", 1234, 1235);
	ck_assert_int_eq(daemon_log_count(&d, "\"transport\":\"ldaps\""), 1);
}
END_TEST

START_TEST(starttls_with_test_ca)
{
	char flags[400];

	snprintf(flags, sizeof(flags), "--ldap-ca-cert %s/ca.pem --ldap-starttls", ldap_dir);
	start_daemon("127.0.0.1", ldap_port, flags, NULL);
	create_user("s1", "alice", "alice-pw");
	mount_and_check_owner("s1", 1234, 1235);
	ck_assert_int_eq(daemon_log_count(&d, "\"transport\":\"starttls\""), 1);
}
END_TEST

START_TEST(bad_ca_is_refused)
{
	char flags[400];

	snprintf(flags, sizeof(flags), "--ldap-ca-cert %s/other-ca.pem", ldap_dir);
	start_daemon("127.0.0.1", ldaps_port, flags, NULL);
	create_user("v1", "alice", "alice-pw");
	mount_fails("v1", NFSV3_ERR_LDAP_UNREACHABLE);
	fixture_teardown();
	snprintf(flags, sizeof(flags), "--ldap-ca-cert %s/other-ca.pem --ldap-starttls", ldap_dir);
	start_daemon("127.0.0.1", ldap_port, flags, NULL);
	create_user("v2", "alice", "alice-pw");
	mount_fails("v2", NFSV3_ERR_LDAP_UNREACHABLE);
	ck_assert_int_eq(mounts_under(d.root), 0);
}
END_TEST

/* A bad setup stops the daemon at start with a message naming the flag. */
static void expect_start_refused(const char *args, const char *want)
{
	char cmd[2048], out[1024] = "";
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "env -u NFSV3DRIVER_LDAP_SVC_PASSWORD %s --listen unix:/tmp/nfsv3-ldap-x.sock "
		 "--mount-root /tmp/nfsv3-ldap-x %s 2>&1; echo rc=$?",
		 harness_build_path("bin/nfsv3driver"), args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	pclose(p);
	ck_assert_msg(strstr(out, want) && strstr(out, "rc=2"), "%s: got \"%s\", wanted \"%s\"", args, out, want);
}

START_TEST(bad_setups_are_refused_at_start)
{
	expect_start_refused("--ldap-host h --ldap-svc-user cn=s --ldap-user-fqdn dc=t --ldap-svc-password-file /etc/hostname",
			     "--ldap-insecure-plaintext sends passwords in clear");
	expect_start_refused("--ldap-host h --ldap-svc-user cn=s --ldap-user-fqdn dc=t --ldap-insecure-plaintext",
			     "the service password is missing");
	expect_start_refused("--ldap-host h --ldap-svc-user cn=s --ldap-user-fqdn dc=t --ldap-starttls "
			     "--ldap-svc-password-file /etc/hostname",
			     "--ldap-starttls needs --ldap-ca-cert");
	expect_start_refused("--ldap-host h --ldap-user-filter '(cn=x)'", "--ldap-user-filter");
	expect_start_refused("--ldap-host 'a b'", "--ldap-host");
}
END_TEST

START_TEST(off_without_ldap_host)
{
	char body[1024];

	unsetenv("NFSV3_IT_EXTRA");
	fixture_setup();
	snprintf(body, sizeof(body), "{\"Name\":\"o1\",\"Opts\":{\"source\":\"file://%s\",\"username\":\"alice\",\"password\":\"alice-pw\"}}",
		 src);
	err_call(false, NFSV3_ROUTE_CREATE, body, DOCKER_ACCEPT, NFSV3_ERR_LDAP_OFF);
}
END_TEST

/* The operator's policy holds LDAP identities to their kind and, once resolved, to the export's ranges. */
START_TEST(policy_checks_ldap_identities)
{
	char policy[400], more[500], body[600];
	FILE *f;

	snprintf(policy, sizeof(policy), "%s/policy", ldap_dir);
	ck_assert_ptr_nonnull(f = fopen(policy, "w"));
	fputs("export localhost /srv/ldap uid=1234 gid=1235 identity=ldap\nexport 127.0.0.1 /srv/raw identity=raw\n", f);
	fclose(f);
	snprintf(more, sizeof(more), "--policy %s", policy);
	start_daemon("127.0.0.1", ldap_port, "--ldap-insecure-plaintext", more);

	/* In the export's ranges: resolved, past the policy (by name, and by address as an LDAP identity), to the mount (no NFS client on this host). */
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE,
			    "{\"Name\":\"p1\",\"Opts\":{\"source\":\"nfs://localhost/srv/ldap\",\"username\":\"alice\",\"password\":\"alice-pw\"}}", NULL));
	{
		int status;
		json_t *a = call_tcp(&d, NFSV3_ROUTE_MOUNT, "{\"Name\":\"p1\"}", NULL, &status);

		ck_assert_msg(strstr(answer_err(a), "refused by the operator's policy") == NULL, "%s", answer_err(a));
		json_decref(a);
	}
	ck_assert_int_eq(daemon_log_count(&d, "ldap.resolved"), 1);
	/* bench7's uidNumber 3007 is outside them: refused once resolved. */
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE,
			    "{\"Name\":\"p2\",\"Opts\":{\"source\":\"nfs://localhost/srv/ldap\",\"username\":\"bench7\",\"password\":\"bench7-pw\"}}", NULL));
	mount_fails("p2", "uid 3007 on localhost:/srv/ldap is refused by the operator's policy");
	ck_assert_int_eq(daemon_log_count(&d, "ldap.resolved"), 2);
	/* An export for raw ids only: refused before the directory is asked. */
	json_decref(ok_call(false, NFSV3_ROUTE_CREATE,
			    "{\"Name\":\"p3\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/raw\",\"username\":\"alice\",\"password\":\"alice-pw\"}}", NULL));
	mount_fails("p3", "LDAP bindings (username and password) on 127.0.0.1:/srv/raw are refused by the operator's policy");
	ck_assert_int_eq(daemon_log_count(&d, "ldap.resolved"), 2);
	snprintf(body, sizeof(body),
		 "{\"Name\":\"p4\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/raw\",\"username\":\"alice\",\"password\":\"alice-pw\"}}");
	err_call(false, NFSV3_ROUTE_CREATE, body, DOCKER_ACCEPT, "LDAP bindings (username and password) on 127.0.0.1:/srv/raw are");
	ck_assert(!file_contains(d.log, "alice-pw"));
}
END_TEST

static Suite *ldap_suite(void)
{
	Suite *s = suite_create("ldap");
	TCase *tc = tcase_create("slapd");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, NULL, fixture_teardown);
	tcase_add_test(tc, right_password_maps_to_directory_ids);
	tcase_add_test(tc, gid_falls_back_to_uid);
	tcase_add_test(tc, restart_keeps_mount_without_password);
	tcase_add_test(tc, password_not_held_across_restart_before_mount);
	tcase_add_test(tc, refusals_name_the_problem);
	tcase_add_test(tc, custom_filter_and_attributes);
	tcase_add_test(tc, directory_down_at_mount);
	tcase_add_test(tc, silent_directory_times_out_while_daemon_answers);
	tcase_add_loop_test(tc, silent_directory_times_out_over_tls, 0, 2);
	tcase_add_test(tc, dropped_pool_connection_is_replaced);
	tcase_add_test(tc, failover_to_second_host);
	tcase_add_test(tc, ldaps_with_test_ca);
	tcase_add_test(tc, starttls_with_test_ca);
	tcase_add_test(tc, bad_ca_is_refused);
	tcase_add_test(tc, bad_setups_are_refused_at_start);
	tcase_add_test(tc, off_without_ldap_host);
	tcase_add_test(tc, policy_checks_ldap_identities);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int rc;

	if (geteuid() != 0) {
		printf("test_ldap: SKIP: needs root (FUSE mounts and a private slapd)\n");
		return 77;
	}
	if ((rc = start_slapd()) != 0) {
		stop_slapd();
		return rc;
	}
	rc = harness_run(ldap_suite());
	if (silent_fd >= 0)
		close(silent_fd);
	stop_slapd();
	return rc;
}
