/*
 * The operator policy (include/policy.h): the parser and every rule, the
 * file's ownership checks, the mount helper's own refusal when it is run
 * directly with what the daemon would have refused, and the real daemon's
 * answers, reload and bad files.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "policy.h"
#include "harness.h"

#define NOBODY 65534
#define REFUSED "refused by the operator's policy"

static char dir[] = "/tmp/nfsv3-policy-XXXXXX"; /* 0755 root: fit to hold a policy */
static char why[POLICY_WHY_MAX];

static void write_file(const char *path, const char *text)
{
	FILE *file = fopen(path, "w");

	ck_assert_msg(file != NULL, "fopen %s: %s", path, strerror(errno));
	fputs(text, file);
	ck_assert_int_eq(fclose(file), 0);
}

static struct policy *parse(const char *text)
{
	struct policy *p = policy_parse(text, strlen(text), "/etc/test-policy", why, sizeof(why));

	ck_assert_msg(p != NULL, "refused: %s", why);
	return p;
}

/* text is refused, with a message containing needle. */
static void parse_fails(const char *text, const char *needle)
{
	struct policy *p = policy_parse(text, strlen(text), "/etc/test-policy", why, sizeof(why));

	ck_assert_msg(p == NULL, "accepted: %s", text);
	ck_assert_msg(strstr(why, needle) != NULL, "\"%s\" lacks \"%s\"", why, needle);
	ck_assert_msg(strncmp(why, "/etc/test-policy: line ", 23) == 0, "no file and line: %s", why);
}

struct req {
	const char *host, *addr, *export;
	enum policy_identity identity;
	long uid, gid; /* -1: not known */
};

static enum policy_verdict check(const struct policy *p, struct req r)
{
	struct policy_request req = {.host = r.host, .addr = r.addr, .export = r.export ? r.export : "/srv/export",
				     .identity = r.identity, .ids_known = r.uid >= 0,
				     .uid = (uint32_t)r.uid, .gid = (uint32_t)r.gid};

	why[0] = '\0';
	return policy_check(p, &req, why, sizeof(why));
}

#define ALLOWED(p, ...)                                                                                         \
	do {                                                                                                    \
		enum policy_verdict v_ = check(p, (struct req){__VA_ARGS__});                                \
		ck_assert_msg(v_ == POLICY_ALLOWED, "refused (%d): %s", v_, why);                              \
	} while (0)
#define REFUSES(p, verdict, needle, ...)                                                                        \
	do {                                                                                                    \
		enum policy_verdict v_ = check(p, (struct req){__VA_ARGS__});                                \
		ck_assert_msg(v_ == (verdict), "verdict %d, wanted %d: %s", v_, verdict, why);               \
		ck_assert_msg(strstr(why, needle) != NULL, "\"%s\" lacks \"%s\"", why, needle);                \
		ck_assert_msg(strstr(why, REFUSED " (/etc/test-policy)") != NULL, "no policy path: %s", why);  \
	} while (0)

/* ---- the parser ---------------------------------------------------------- */

START_TEST(comments_blank_lines_and_fields)
{
	struct policy *p = parse("# a comment\n\n   \t\nexport\t10.0.0.0/8   /srv # trailing comment\r\n"
				 "deny-uid 0-99\ndeny-gid 0-99\ndeny-server 10.9.0.0/16");

	ck_assert_uint_eq(policy_rule_count(p), 4);
	ck_assert_str_eq(policy_path(p), "/etc/test-policy");
	policy_free(p);
	p = parse("");
	ck_assert_uint_eq(policy_rule_count(p), 0);
	policy_free(p);
}
END_TEST

START_TEST(errors_name_the_line_and_what_was_expected)
{
	parse_fails("# ok\nallow 10.0.0.1 /srv\n", "line 2: unknown rule \"allow\": expected export, deny-server");
	parse_fails("export 10.0.0.1\n", "line 1: export: expected \"export SERVER PATH");
	parse_fails("export 10.0.0.0/33 /srv\n", "the prefix length must be at most 32");
	parse_fails("export 2001:db8::/129 /srv\n", "at most 128");
	parse_fails("export 10.0.0.1/24 /srv\n", "host bits are set beyond the /24 prefix");
	parse_fails("export 10.0.0.0/x /srv\n", "the prefix length must be a number");
	parse_fails("export bad_name /srv\n", "expected a DNS name, *.DOMAIN, an IPv4 or IPv6 address, or a CIDR");
	parse_fails("export *.-x /srv\n", "expected *.DOMAIN");
	parse_fails("export nfs srv\n", "export path \"srv\": expected an absolute path");
	parse_fails("export nfs /srv/../etc\n", "without \"..\"");
	parse_fails("export nfs /srv uid=1-x\n", "uid \"1-x\": \"x\" is not an id from 0 to 4294967295");
	parse_fails("export nfs /srv uid=9-3\n", "range 9-3 ends before it starts");
	parse_fails("export nfs /srv gid=4294967296\n", "is not an id");
	parse_fails("export nfs /srv gid=1,\n", "trailing comma");
	parse_fails("export nfs /srv gid=1,,2\n", "empty range");
	parse_fails("export nfs /srv identity=raw,kerberos\n", "\"kerberos\" is not raw, ldap or none");
	parse_fails("export nfs /srv uid=1 uid=2\n", "\"uid\" given twice");
	parse_fails("export nfs /srv rw\n", "expected uid=RANGES, gid=RANGES or identity=raw,ldap,none");
	parse_fails("deny-server\n", "deny-server: expected \"deny-server NAME|ADDRESS|CIDR\"");
	parse_fails("deny-uid 1 2\n", "deny-uid: expected \"deny-uid RANGES\"");
	parse_fails("deny-gid x\n", "gid \"x\"");
	parse_fails("export nfs /srv\n\n\nexport a b c d\n", "line 4: ");
	parse_fails("export nfs /srv\n\x01x nfs /srv\n", "line 2: control or non-ASCII byte 0x01");
}
END_TEST

START_TEST(nul_byte_and_long_line_refused)
{
	static const char text[] = "export nfs /srv\nexport\0 nfs /srv\n";
	char *line = malloc(POLICY_LINE_MAX + 8);

	ck_assert_ptr_null(policy_parse(text, sizeof(text) - 1, "/p", why, sizeof(why)));
	ck_assert_str_eq(why, "/p: line 2: a NUL byte: expected text");
	memset(line, 'x', POLICY_LINE_MAX + 1);
	ck_assert_ptr_null(policy_parse(line, POLICY_LINE_MAX + 1, "/p", why, sizeof(why)));
	ck_assert_str_eq(why, "/p: line 1: longer than 4096 bytes");
	free(line);
}
END_TEST

/* ---- servers ------------------------------------------------------------- */

START_TEST(server_by_name_exact_and_wildcard)
{
	struct policy *p = parse("export nfs1.example.com /srv\nexport *.storage.example.com /srv\n");

	ALLOWED(p, .host = "nfs1.example.com", .identity = POLICY_ID_ANY, .uid = -1);
	ALLOWED(p, .host = "NFS1.Example.COM.", .identity = POLICY_ID_ANY, .uid = -1);
	ALLOWED(p, .host = "a.b.storage.example.com", .identity = POLICY_ID_ANY, .uid = -1);
	/* A name rule says nothing about the address: any the name resolves to. */
	ALLOWED(p, .host = "nfs1.example.com", .addr = "10.1.2.3", .identity = POLICY_ID_ANY, .uid = -1);
	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server storage.example.com is", .host = "storage.example.com",
		.identity = POLICY_ID_ANY, .uid = -1);
	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server nfs1.example.com.evil.org is", .host = "nfs1.example.com.evil.org",
		.identity = POLICY_ID_ANY, .uid = -1);
	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server xnfs1.example.com", .host = "xnfs1.example.com",
		.identity = POLICY_ID_ANY, .uid = -1);
	/* An address literal is not a name, even when the name would resolve to it. */
	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server 10.1.2.3 is", .host = "10.1.2.3", .identity = POLICY_ID_ANY,
		.uid = -1);
	policy_free(p);
}
END_TEST

START_TEST(server_by_cidr_ipv4_and_ipv6)
{
	struct policy *p = parse("export 10.0.0.0/24 /srv\nexport 2001:db8:1::/48 /srv\nexport 192.0.2.7 /srv\n"
				 "export ::ffff:198.51.100.0/120 /srv\n");

	ALLOWED(p, .host = "10.0.0.255", .identity = POLICY_ID_ANY, .uid = -1);
	ALLOWED(p, .host = "192.0.2.7", .identity = POLICY_ID_ANY, .uid = -1);
	ALLOWED(p, .host = "2001:db8:1:ffff::5", .identity = POLICY_ID_ANY, .uid = -1);
	ALLOWED(p, .host = "198.51.100.9", .identity = POLICY_ID_ANY, .uid = -1);
	/* An IPv4-mapped IPv6 literal is the IPv4 address it maps. */
	ALLOWED(p, .host = "::ffff:10.0.0.1", .identity = POLICY_ID_ANY, .uid = -1);
	ALLOWED(p, .host = "nfs.example.com", .addr = "10.0.0.9", .identity = POLICY_ID_ANY, .uid = -1);
	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server 10.0.1.0 is", .host = "10.0.1.0", .identity = POLICY_ID_ANY,
		.uid = -1);
	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server 192.0.2.8", .host = "192.0.2.8", .identity = POLICY_ID_ANY,
		.uid = -1);
	REFUSES(p, POLICY_REFUSED_SERVER, "2001:db8:2::1", .host = "2001:db8:2::1", .identity = POLICY_ID_ANY, .uid = -1);
	/* A name is decided by the address it resolves to: the message names both. */
	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server nfs.example.com (address 10.0.7.1) is", .host = "nfs.example.com",
		.addr = "10.0.7.1", .identity = POLICY_ID_ANY, .uid = -1);
	/* Before the name is resolved a network rule might hold: only Mount decides. */
	ALLOWED(p, .host = "nfs.example.com", .identity = POLICY_ID_ANY, .uid = -1);
	ck_assert_int_eq(check(p, (struct req){.host = "nfs.example.com", .addr = "10.0.0.1x", .uid = -1}),
			 POLICY_REFUSED_INVALID);
	ck_assert_str_eq(why, "address \"10.0.0.1x\" is not an IPv4 or IPv6 address");
	policy_free(p);
}
END_TEST

START_TEST(deny_server_beats_export_rules_and_catches_resolved_names)
{
	struct policy *p = parse("export *.example.com /srv\nexport 10.0.0.0/8 /srv\ndeny-server 10.66.0.0/16\n"
				 "deny-server bad.example.com\ndeny-server 169.254.0.0/16\n");

	ALLOWED(p, .host = "good.example.com", .addr = "10.1.0.1", .identity = POLICY_ID_ANY, .uid = -1);
	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server 10.66.1.1 is", .host = "10.66.1.1", .identity = POLICY_ID_ANY,
		.uid = -1);
	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server bad.example.com", .host = "bad.example.com",
		.identity = POLICY_ID_ANY, .uid = -1);
	/* An allowed name that resolves into a refused network is refused. */
	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server good.example.com (address 169.254.169.254) is",
		.host = "good.example.com", .addr = "169.254.169.254", .identity = POLICY_ID_ANY, .uid = -1);
	REFUSES(p, POLICY_REFUSED_SERVER, "(address ::ffff:10.66.0.1)", .host = "good.example.com",
		.addr = "::ffff:10.66.0.1", .identity = POLICY_ID_ANY, .uid = -1);
	policy_free(p);
}
END_TEST

START_TEST(no_export_rule_refuses_everything)
{
	struct policy *p = parse("deny-uid 0\n");

	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server 10.0.0.1 is", .host = "10.0.0.1", .identity = POLICY_ID_ANY,
		.uid = -1);
	policy_free(p);
}
END_TEST

/* ---- exports ------------------------------------------------------------- */

START_TEST(export_prefix_whole_components)
{
	struct policy *p = parse("export 10.0.0.1 /srv/apps\nexport 10.0.0.2 /\n");

	ALLOWED(p, .host = "10.0.0.1", .export = "/srv/apps", .identity = POLICY_ID_ANY, .uid = -1);
	ALLOWED(p, .host = "10.0.0.1", .export = "/srv/apps/", .identity = POLICY_ID_ANY, .uid = -1);
	ALLOWED(p, .host = "10.0.0.1", .export = "/srv/apps/team-a/x", .identity = POLICY_ID_ANY, .uid = -1);
	ALLOWED(p, .host = "10.0.0.1", .export = "//srv/./apps", .identity = POLICY_ID_ANY, .uid = -1);
	ALLOWED(p, .host = "10.0.0.2", .export = "/anything/at/all", .identity = POLICY_ID_ANY, .uid = -1);
	REFUSES(p, POLICY_REFUSED_EXPORT, "export /srv/apps2 on NFS server 10.0.0.1 is", .host = "10.0.0.1",
		.export = "/srv/apps2", .identity = POLICY_ID_ANY, .uid = -1);
	REFUSES(p, POLICY_REFUSED_EXPORT, "export /srv on NFS server 10.0.0.1", .host = "10.0.0.1", .export = "/srv",
		.identity = POLICY_ID_ANY, .uid = -1);
	REFUSES(p, POLICY_REFUSED_EXPORT, "export /srv/apps/../etc", .host = "10.0.0.1", .export = "/srv/apps/../etc",
		.identity = POLICY_ID_ANY, .uid = -1);
	REFUSES(p, POLICY_REFUSED_EXPORT, "export relative", .host = "10.0.0.1", .export = "relative",
		.identity = POLICY_ID_ANY, .uid = -1);
	policy_free(p);
}
END_TEST

/* ---- identities ---------------------------------------------------------- */

START_TEST(identity_kinds_per_export)
{
	struct policy *p = parse("export 10.0.0.1 /ldap identity=ldap\nexport 10.0.0.1 /raw identity=raw\n"
				 "export 10.0.0.1 /open\nexport 10.0.0.1 /shared identity=none\n");

	ALLOWED(p, .host = "10.0.0.1", .export = "/ldap", .identity = POLICY_ID_LDAP, .uid = -1);
	ALLOWED(p, .host = "10.0.0.1", .export = "/ldap", .identity = POLICY_ID_LDAP, .uid = 5000, .gid = 5000);
	REFUSES(p, POLICY_REFUSED_IDENTITY, "bindings with uid and gid on 10.0.0.1:/ldap are", .host = "10.0.0.1",
		.export = "/ldap", .identity = POLICY_ID_RAW, .uid = 5000, .gid = 5000);
	REFUSES(p, POLICY_REFUSED_IDENTITY, "bindings without uid and gid on 10.0.0.1:/ldap", .host = "10.0.0.1",
		.export = "/ldap", .identity = POLICY_ID_NONE, .uid = 2000, .gid = 2000);
	REFUSES(p, POLICY_REFUSED_IDENTITY, "LDAP bindings (username and password) on 10.0.0.1:/raw",
		.host = "10.0.0.1", .export = "/raw", .identity = POLICY_ID_LDAP, .uid = -1);
	ALLOWED(p, .host = "10.0.0.1", .export = "/raw", .identity = POLICY_ID_RAW, .uid = 5000, .gid = 5000);
	for (enum policy_identity id = POLICY_ID_RAW; id <= POLICY_ID_NONE; id++)
		ALLOWED(p, .host = "10.0.0.1", .export = "/open", .identity = id, .uid = 3000, .gid = 3000);
	ALLOWED(p, .host = "10.0.0.1", .export = "/shared", .identity = POLICY_ID_NONE, .uid = 2000, .gid = 2000);
	/* The helper does not know the kind: any rule for the export does. */
	ALLOWED(p, .host = "10.0.0.1", .export = "/ldap", .identity = POLICY_ID_ANY, .uid = -1);
	policy_free(p);
}
END_TEST

START_TEST(uid_and_gid_ranges_per_export)
{
	struct policy *p = parse("export 10.0.0.1 /a uid=5000-5999,7000 gid=5000-5099\n"
				 "export 10.0.0.1 /a/b uid=6000-6999 gid=6000\n");

	ALLOWED(p, .host = "10.0.0.1", .export = "/a", .identity = POLICY_ID_RAW, .uid = 5000, .gid = 5099);
	ALLOWED(p, .host = "10.0.0.1", .export = "/a/x", .identity = POLICY_ID_RAW, .uid = 7000, .gid = 5000);
	REFUSES(p, POLICY_REFUSED_UID, "uid 6000 on 10.0.0.1:/a is", .host = "10.0.0.1", .export = "/a",
		.identity = POLICY_ID_RAW, .uid = 6000, .gid = 5000);
	REFUSES(p, POLICY_REFUSED_GID, "gid 5100 on 10.0.0.1:/a is", .host = "10.0.0.1", .export = "/a",
		.identity = POLICY_ID_RAW, .uid = 5999, .gid = 5100);
	/* Under /a/b either rule may allow, but one rule must allow both ids. */
	ALLOWED(p, .host = "10.0.0.1", .export = "/a/b/c", .identity = POLICY_ID_RAW, .uid = 6500, .gid = 6000);
	ALLOWED(p, .host = "10.0.0.1", .export = "/a/b/c", .identity = POLICY_ID_RAW, .uid = 5500, .gid = 5050);
	REFUSES(p, POLICY_REFUSED_GID, "gid 5050 on 10.0.0.1:/a/b", .host = "10.0.0.1", .export = "/a/b",
		.identity = POLICY_ID_RAW, .uid = 6500, .gid = 5050);
	/* Ids of LDAP users and the app's own ids are held to the same ranges. */
	REFUSES(p, POLICY_REFUSED_UID, "uid 2000 on", .host = "10.0.0.1", .export = "/a", .identity = POLICY_ID_NONE,
		.uid = 2000, .gid = 2000);
	REFUSES(p, POLICY_REFUSED_UID, "uid 9000 on", .host = "10.0.0.1", .export = "/a", .identity = POLICY_ID_LDAP,
		.uid = 9000, .gid = 5000);
	/* The message names the id refused, never the ranges. */
	ck_assert_ptr_null(strstr(why, "5000"));
	ck_assert_ptr_null(strstr(why, "5999"));
	policy_free(p);
}
END_TEST

START_TEST(system_ids_denied_by_default)
{
	struct policy *p = parse("export 10.0.0.1 /srv\n");

	REFUSES(p, POLICY_REFUSED_UID, "uid 0 is", .host = "10.0.0.1", .identity = POLICY_ID_RAW, .uid = 0, .gid = 5000);
	REFUSES(p, POLICY_REFUSED_UID, "uid 999 is", .host = "10.0.0.1", .identity = POLICY_ID_RAW, .uid = 999,
		.gid = 5000);
	REFUSES(p, POLICY_REFUSED_GID, "gid 0 is", .host = "10.0.0.1", .identity = POLICY_ID_RAW, .uid = 5000, .gid = 0);
	REFUSES(p, POLICY_REFUSED_GID, "gid 100 is", .host = "10.0.0.1", .identity = POLICY_ID_LDAP, .uid = 5000,
		.gid = 100);
	ALLOWED(p, .host = "10.0.0.1", .identity = POLICY_ID_RAW, .uid = 1000, .gid = 1000);
	ALLOWED(p, .host = "10.0.0.1", .identity = POLICY_ID_RAW, .uid = 4294967294, .gid = 4294967294);
	policy_free(p);
}
END_TEST

START_TEST(deny_lists_replace_the_default_but_never_free_root)
{
	struct policy *p = parse("export 10.0.0.1 /srv uid=0-100000 gid=0-100000\ndeny-uid 1-9\ndeny-uid 65534\n"
				 "deny-gid 50000-60000\n");

	ALLOWED(p, .host = "10.0.0.1", .identity = POLICY_ID_RAW, .uid = 500, .gid = 500);
	REFUSES(p, POLICY_REFUSED_UID, "uid 0 is", .host = "10.0.0.1", .identity = POLICY_ID_RAW, .uid = 0, .gid = 500);
	REFUSES(p, POLICY_REFUSED_GID, "gid 0 is", .host = "10.0.0.1", .identity = POLICY_ID_RAW, .uid = 500, .gid = 0);
	REFUSES(p, POLICY_REFUSED_UID, "uid 5 is", .host = "10.0.0.1", .identity = POLICY_ID_RAW, .uid = 5, .gid = 500);
	REFUSES(p, POLICY_REFUSED_UID, "uid 65534 is", .host = "10.0.0.1", .identity = POLICY_ID_RAW, .uid = 65534,
		.gid = 500);
	REFUSES(p, POLICY_REFUSED_GID, "gid 55555 is", .host = "10.0.0.1", .identity = POLICY_ID_RAW, .uid = 500,
		.gid = 55555);
	/* The deny list holds even where the export's ranges cover the id. */
	REFUSES(p, POLICY_REFUSED_UID, "uid 9 is", .host = "10.0.0.1", .identity = POLICY_ID_NONE, .uid = 9, .gid = 500);
	policy_free(p);
}
END_TEST

START_TEST(refusal_order_server_export_identity_ids)
{
	struct policy *p = parse("export 10.0.0.1 /srv uid=5000 gid=5000 identity=ldap\n");

	REFUSES(p, POLICY_REFUSED_SERVER, "NFS server 10.0.0.2", .host = "10.0.0.2", .export = "/x",
		.identity = POLICY_ID_RAW, .uid = 0, .gid = 0);
	REFUSES(p, POLICY_REFUSED_EXPORT, "export /x", .host = "10.0.0.1", .export = "/x", .identity = POLICY_ID_RAW,
		.uid = 0, .gid = 0);
	REFUSES(p, POLICY_REFUSED_IDENTITY, "bindings with uid and gid", .host = "10.0.0.1", .identity = POLICY_ID_RAW,
		.uid = 0, .gid = 0);
	REFUSES(p, POLICY_REFUSED_UID, "uid 0 is", .host = "10.0.0.1", .identity = POLICY_ID_LDAP, .uid = 0, .gid = 0);
	REFUSES(p, POLICY_REFUSED_GID, "gid 0 is", .host = "10.0.0.1", .identity = POLICY_ID_LDAP, .uid = 5001, .gid = 0);
	REFUSES(p, POLICY_REFUSED_UID, "uid 5001 on", .host = "10.0.0.1", .identity = POLICY_ID_LDAP, .uid = 5001,
		.gid = 5001);
	REFUSES(p, POLICY_REFUSED_GID, "gid 5001 on", .host = "10.0.0.1", .identity = POLICY_ID_LDAP, .uid = 5000,
		.gid = 5001);
	ALLOWED(p, .host = "10.0.0.1", .identity = POLICY_ID_LDAP, .uid = 5000, .gid = 5000);
	policy_free(p);
}
END_TEST

/* ---- the file ------------------------------------------------------------ */

static struct policy *load(const char *path, bool *missing)
{
	return policy_load(path, missing, why, sizeof(why));
}

START_TEST(file_owned_by_root_and_written_by_nobody_else)
{
	char path[256], sub[256], link[256];
	struct policy *p;
	bool missing;

	snprintf(path, sizeof(path), "%s/policy", dir);
	write_file(path, "export 10.0.0.1 /srv\n");
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_ptr_nonnull(p = load(path, &missing));
	policy_free(p);
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_ptr_nonnull(p = load(path, &missing));
	policy_free(p);

	ck_assert_int_eq(chmod(path, 0664), 0);
	ck_assert_ptr_null(load(path, &missing));
	ck_assert(!missing);
	ck_assert_msg(strstr(why, "must be owned by root and not writable by group or others (it is uid 0, mode 0664)"),
		      "%s", why);
	ck_assert_int_eq(chmod(path, 0646), 0);
	ck_assert_ptr_null(load(path, &missing));
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(chown(path, NOBODY, 0), 0);
	ck_assert_ptr_null(load(path, &missing));
	ck_assert_msg(strstr(why, "(it is uid 65534, mode 0644)"), "%s", why);
	ck_assert_int_eq(chown(path, 0, 0), 0);

	/* A symlink is refused, even to a good file. */
	snprintf(link, sizeof(link), "%s/link", dir);
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_ptr_null(load(link, &missing));
	ck_assert_msg(strstr(why, "is a symlink: expected a regular file"), "%s", why);

	/* A directory others may write to could swap the file. */
	snprintf(sub, sizeof(sub), "%s/open", dir);
	ck_assert_int_eq(mkdir(sub, 0777), 0);
	ck_assert_int_eq(chmod(sub, 0777), 0);
	snprintf(path, sizeof(path), "%s/policy", sub);
	write_file(path, "export 10.0.0.1 /srv\n");
	ck_assert_ptr_null(load(path, &missing));
	ck_assert_msg(strstr(why, "the directory must be owned by root and not writable by group or others"), "%s", why);

	/* Missing: said so, for the caller to decide. */
	snprintf(path, sizeof(path), "%s/none", dir);
	ck_assert_ptr_null(load(path, &missing));
	ck_assert(missing);
	snprintf(path, sizeof(path), "%s/nodir/policy", dir);
	ck_assert_ptr_null(load(path, &missing));
	ck_assert(missing);

	/* Not a regular file. */
	ck_assert_ptr_null(load("/dev/null", &missing));
	ck_assert_msg(strstr(why, "expected a regular file"), "%s", why);
	ck_assert_ptr_null(load("relative/policy", &missing));
	ck_assert_msg(strstr(why, "expected an absolute path"), "%s", why);
}
END_TEST

START_TEST(file_errors_name_the_file_and_line)
{
	char path[256], *big;
	FILE *f;
	bool missing;

	snprintf(path, sizeof(path), "%s/bad", dir);
	write_file(path, "export 10.0.0.1 /srv\nexport 10.0.0.1 /srv uid=abc\n");
	ck_assert_ptr_null(load(path, &missing));
	ck_assert_msg(strstr(why, path) == why && strstr(why, ": line 2: uid \"abc\""), "%s", why);

	big = calloc(1, POLICY_FILE_MAX + 2);
	memset(big, '#', POLICY_FILE_MAX + 1);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(big, f);
	fclose(f);
	free(big);
	ck_assert_ptr_null(load(path, &missing));
	ck_assert_msg(strstr(why, "larger than 1048576 bytes"), "%s", why);
}
END_TEST

/* ---- the mount helper, run directly ------------------------------------- */

struct result {
	int code;
	char err[2048];
};

static char helper[4096], mroot[256];

/* In the forked child: uid/gid 65534 keeping the helper's capabilities as ambient ones. */
static void become_nobody_with_caps(void)
{
	struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};
	uint32_t caps = 1u << CAP_SYS_ADMIN | 1u << CAP_DAC_READ_SEARCH;

	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(0, NULL) != 0 ||
	    setresgid(NOBODY, NOBODY, NOBODY) != 0 || setresuid(NOBODY, NOBODY, NOBODY) != 0)
		_exit(121);
	data[0].effective = data[0].permitted = data[0].inheritable = caps;
	if (syscall(SYS_capset, &header, data) != 0)
		_exit(122);
	for (int cap = 0; cap < 32; cap++)
		if ((caps & (1u << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
			_exit(123);
}

/* nfsv3driver-mount nfs MOUNT_ROOT KEY SOURCE ADDR OPTIONS, with the policy env set to policy (or unset). */
static struct result run_nfs(const char *policy, bool as_nobody, const char *source, const char *addr)
{
	struct result result = {.code = -1};
	int fds[2], status;
	size_t len = 0;
	ssize_t got;
	pid_t pid;

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	if ((pid = fork()) == 0) {
		char env[512];
		char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", env, NULL};

		snprintf(env, sizeof(env), "%s=%s", NFSV3_POLICY_ENV, policy ? policy : "");
		dup2(fds[1], STDERR_FILENO);
		if (as_nobody)
			become_nobody_with_caps();
		execle(helper, helper, NFSV3_VERB_NFS, mroot, "0123456789abcdef", source, addr,
		       "vers=3,proto=tcp,sec=sys,hard", (char *)NULL, envp);
		_exit(127);
	}
	close(fds[1]);
	while ((got = read(fds[0], result.err + len, sizeof(result.err) - 1 - len)) > 0)
		len += (size_t)got;
	result.err[len] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status))
		result.code = WEXITSTATUS(status);
	return result;
}

static void helper_refuses(const char *policy, const char *source, const char *addr, const char *needle)
{
	struct result r = run_nfs(policy, false, source, addr);

	harness_expect_refusal(NFSV3_HELPER_MOUNT, r.code, r.err, NFSV3_EXIT_REFUSED, needle);
}

/* Past every policy check: whatever fails now is the mount itself (no NFS client or server here). */
static void helper_passes_policy(const char *policy, bool as_nobody, const char *source, const char *addr)
{
	struct result r = run_nfs(policy, as_nobody, source, addr);

	ck_assert_msg(r.code != NFSV3_EXIT_REFUSED && strstr(r.err, "operator's policy") == NULL,
		      "%s %s: exit %d: %s", source, addr, r.code, r.err);
}

static void helper_setup(void)
{
	snprintf(helper, sizeof(helper), "%s", harness_build_path(NFSV3_HELPER_SUBDIR "/" NFSV3_HELPER_MOUNT));
	snprintf(mroot, sizeof(mroot), "%s/mroot", dir);
	mkdir(mroot, 0755);
}

START_TEST(helper_refuses_what_the_daemon_would_refuse)
{
	char path[256];

	helper_setup();
	snprintf(path, sizeof(path), "%s/helper-policy", dir);
	write_file(path, "export 127.0.0.0/8 /srv/export\nexport localhost /by-name\ndeny-server 127.0.0.66\n");

	helper_refuses(path, "10.9.9.9:/srv/export", "10.9.9.9", "NFS server 10.9.9.9 is " REFUSED " (");
	helper_refuses(path, "127.0.0.1:/srv/other", "127.0.0.1", "export /srv/other on NFS server 127.0.0.1 is " REFUSED);
	helper_refuses(path, "127.0.0.66:/srv/export", "127.0.0.66", "NFS server 127.0.0.66 is " REFUSED);
	helper_refuses(path, "[::1]:/srv/export", "::1", "NFS server ::1 is " REFUSED);
	/* The address mounted must be the source's own: no allowed literal paired with another address. */
	helper_refuses(path, "127.0.0.1:/srv/export", "10.9.9.9", "address 10.9.9.9 is not the source's own");
	/* An allowed name with an address it does not resolve to. */
	helper_refuses(path, "localhost:/by-name", "10.9.9.9", "NFS server localhost does not resolve to 10.9.9.9");
	helper_refuses(path, "no-such-host.invalid:/by-name", "127.0.0.1", "NFS server no-such-host.invalid: cannot check");
	/* The message names the policy's place, never its rules. */
	{
		struct result r = run_nfs(path, false, "127.0.0.1:/srv/other", "127.0.0.1");

		ck_assert_msg(strstr(r.err, path) != NULL, "%s", r.err);
		ck_assert_msg(strstr(r.err, "127.0.0.0/8") == NULL, "%s", r.err);
	}

	helper_passes_policy(path, false, "127.0.0.1:/srv/export/sub", "127.0.0.1");
	helper_passes_policy(path, false, "localhost:/by-name", "127.0.0.1");
	/* No policy file: as before policies. */
	helper_passes_policy(NULL, false, "10.9.9.9:/srv/export", "10.9.9.9");
	snprintf(path, sizeof(path), "%s/absent", dir);
	helper_passes_policy(path, false, "10.9.9.9:/srv/export", "10.9.9.9");
}
END_TEST

START_TEST(helper_refuses_a_bad_policy_file)
{
	char path[256];

	helper_setup();
	snprintf(path, sizeof(path), "%s/helper-bad", dir);
	write_file(path, "export 127.0.0.1 /srv/export\nexport 127.0.0.1 /srv uid=x\n");
	helper_refuses(path, "127.0.0.1:/srv/export", "127.0.0.1", ": line 2: uid \"x\"");
	write_file(path, "export 127.0.0.1 /srv/export\n");
	ck_assert_int_eq(chmod(path, 0666), 0);
	helper_refuses(path, "127.0.0.1:/srv/export", "127.0.0.1", "must be owned by root and not writable");
}
END_TEST

START_TEST(helper_ignores_a_policy_chosen_by_an_unprivileged_caller)
{
	char path[256];
	struct stat st;

	helper_setup();
	if (stat(NFSV3_POLICY_FILE, &st) == 0) {
		fprintf(stderr, "test_policy: %s exists on this machine: the unprivileged case cannot be told apart\n",
			NFSV3_POLICY_FILE);
		return;
	}
	snprintf(path, sizeof(path), "%s/refuse-all", dir);
	write_file(path, "deny-uid 0\n");
	/* As root, the file is read and refuses. */
	helper_refuses(path, "127.0.0.1:/srv/export", "127.0.0.1", "NFS server 127.0.0.1 is " REFUSED);
	/* As the daemon's user, only the built-in file counts (absent here), whatever the environment says. */
	helper_passes_policy(path, true, "127.0.0.1:/srv/export", "127.0.0.1");
}
END_TEST

/* ---- the real daemon ----------------------------------------------------- */

static struct daemon dm;
static char policy_file[256];

static void daemon_with_policy(const char *text)
{
	char extra[512];

	snprintf(policy_file, sizeof(policy_file), "%s/daemon-policy", dir);
	if (text)
		write_file(policy_file, text);
	snprintf(extra, sizeof(extra), "--policy %s --helper-timeout 5", policy_file);
	daemon_init(&dm, extra);
	daemon_start(&dm);
}

/* Err of route with body over the unix socket (Docker's Accept when docker). */
static char *call_err(const char *route, const char *body, bool docker)
{
	int status;
	json_t *a = call_unix(&dm, route, body, docker ? DOCKER_ACCEPT : NULL, &status);
	char *err;

	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(status, 200);
	err = strdup(answer_err(a));
	json_decref(a);
	return err;
}

static void expect_err(const char *route, const char *body, bool docker, const char *needle)
{
	char *err = call_err(route, body, docker);

	ck_assert_msg(strstr(err, needle) != NULL, "%s %s: \"%s\" lacks \"%s\"", route, body, err, needle);
	/* The daemon's own answer: the helper checks again, but is not what refused here. */
	ck_assert_msg(strstr(err, NFSV3_HELPER_MOUNT) == NULL, "%s %s: refused by the helper, not the daemon: %s", route,
		      body, err);
	free(err);
}

/* The answer is no policy refusal (it may fail later: no NFS client on this host). */
static void expect_not_refused(const char *route, const char *body, bool docker)
{
	char *err = call_err(route, body, docker);

	ck_assert_msg(strstr(err, REFUSED) == NULL, "%s %s: %s", route, body, err);
	free(err);
}

static void wait_log(const char *text, int count)
{
	for (int i = 0; i < 100 && daemon_log_count(&dm, text) < count; i++)
		usleep(50 * 1000);
	ck_assert_msg(daemon_log_count(&dm, text) >= count, "no \"%s\" in the log", text);
}

static void teardown_daemon(void)
{
	daemon_cleanup(&dm);
}

START_TEST(daemon_refuses_at_create_for_docker_and_at_mount_for_volman)
{
	daemon_with_policy("export 127.0.0.1 /srv/export uid=5000-5999 gid=5000-5999 identity=raw\n"
			   "export 127.0.0.1 /srv/open\n");
	ck_assert_int_eq(daemon_log_count(&dm, "policy.loaded"), 1);

	/* Docker hears it at Create. */
	expect_err(NFSV3_ROUTE_CREATE, "{\"Name\":\"d1\",\"Opts\":{\"source\":\"nfs://10.1.1.1/srv/export\",\"uid\":\"5000\",\"gid\":\"5000\"}}",
		   true, "NFS server 10.1.1.1 is " REFUSED " (");
	expect_err(NFSV3_ROUTE_CREATE, "{\"Name\":\"d2\",\"Opts\":{\"source\":\"127.0.0.1:/srv/secret\"}}", true,
		   "export /srv/secret on NFS server 127.0.0.1 is " REFUSED);
	expect_err(NFSV3_ROUTE_CREATE, "{\"Name\":\"d3\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/export\",\"uid\":\"4000\",\"gid\":\"5000\"}}",
		   true, "uid 4000 on 127.0.0.1:/srv/export is " REFUSED);
	expect_err(NFSV3_ROUTE_CREATE, "{\"Name\":\"d4\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/export\",\"uid\":\"5000\",\"gid\":\"6000\"}}",
		   true, "gid 6000 on 127.0.0.1:/srv/export is " REFUSED);
	expect_err(NFSV3_ROUTE_CREATE, "{\"Name\":\"d5\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/export\"}}", true,
		   "bindings without uid and gid on 127.0.0.1:/srv/export are " REFUSED);
	expect_err(NFSV3_ROUTE_CREATE, "{\"Name\":\"d6\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/open\",\"uid\":\"500\",\"gid\":\"5000\"}}",
		   true, "uid 500 is " REFUSED);
	/* Refused Creates leave nothing behind. */
	expect_err(NFSV3_ROUTE_GET, "{\"Name\":\"d1\"}", true, NFSV3_ERR_NOT_FOUND);

	/* volman: Create succeeds, Mount answers a SafeError naming what was refused and where the policy is. */
	expect_not_refused(NFSV3_ROUTE_CREATE, "{\"Name\":\"v1\",\"Opts\":{\"source\":\"nfs://10.1.1.1/srv/export\"}}", false);
	{
		int status;
		json_t *a = call_unix(&dm, NFSV3_ROUTE_MOUNT, "{\"Name\":\"v1\"}", NULL, &status);
		const char *raw = json_string_value(json_object_get(a, NFSV3_F_ERR));

		ck_assert_msg(raw && strstr(raw, NFSV3_F_SAFE_DESCRIPTION), "not a SafeError: %s", raw);
		ck_assert_msg(strstr(answer_err(a), "NFS server 10.1.1.1 is " REFUSED) && strstr(answer_err(a), policy_file),
			      "%s", answer_err(a));
		ck_assert_msg(!strstr(answer_err(a), "5000-5999"), "the policy's contents leak: %s", answer_err(a));
		json_decref(a);
	}
	/* Allowed: past the policy, to the helper (which fails here for want of an NFS client). */
	expect_not_refused(NFSV3_ROUTE_CREATE, "{\"Name\":\"v2\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/export/a\",\"uid\":\"5000\",\"gid\":\"5999\"}}", true);
	expect_not_refused(NFSV3_ROUTE_MOUNT, "{\"Name\":\"v2\"}", false);
	expect_not_refused(NFSV3_ROUTE_CREATE, "{\"Name\":\"v3\",\"Opts\":{\"source\":\"nfs://127.0.0.1/srv/open\"}}", true);
	expect_not_refused(NFSV3_ROUTE_MOUNT, "{\"Name\":\"v3\"}", false);
	ck_assert_int_eq(mounts_under(dm.root), 0);
}
END_TEST

START_TEST(daemon_checks_the_resolved_address)
{
	char *err;

	/*
	 * localhost is allowed by name, but resolves into a refused network:
	 * 127.0.0.1 where /etc/hosts says so, or ::1 (as in a bare Debian root).
	 */
	daemon_with_policy("export localhost /srv\nexport 127.0.0.0/8 /other\nexport ::1 /other\n"
			   "deny-server 127.0.0.0/8\ndeny-server ::1\n");
	expect_not_refused(NFSV3_ROUTE_CREATE, "{\"Name\":\"n1\",\"Opts\":{\"source\":\"nfs://localhost/srv\"}}", false);
	err = call_err(NFSV3_ROUTE_MOUNT, "{\"Name\":\"n1\"}", false);
	ck_assert_msg(strstr(err, "NFS server localhost (address ") != NULL && strstr(err, ") is " REFUSED) != NULL &&
			      strstr(err, NFSV3_HELPER_MOUNT) == NULL,
		      "Mount n1: \"%s\" is not the daemon's refusal of localhost's address", err);
	free(err);
}
END_TEST

START_TEST(daemon_reloads_on_sighup_and_keeps_the_last_good_policy)
{
	daemon_with_policy("export 127.0.0.1 /srv/a\n");
	expect_err(NFSV3_ROUTE_CREATE, "{\"Name\":\"r1\",\"Opts\":{\"source\":\"127.0.0.1:/srv/b\"}}", true,
		   "export /srv/b on NFS server 127.0.0.1 is " REFUSED);

	write_file(policy_file, "export 127.0.0.1 /srv/b\n");
	ck_assert_int_eq(kill(dm.pid, SIGHUP), 0);
	wait_log("policy.reloaded", 1);
	expect_not_refused(NFSV3_ROUTE_CREATE, "{\"Name\":\"r1\",\"Opts\":{\"source\":\"127.0.0.1:/srv/b\"}}", true);
	expect_err(NFSV3_ROUTE_CREATE, "{\"Name\":\"r2\",\"Opts\":{\"source\":\"127.0.0.1:/srv/a\"}}", true,
		   "export /srv/a on NFS server 127.0.0.1 is " REFUSED);

	/* A bad file: logged, and the policy before it stays in force. */
	write_file(policy_file, "export 127.0.0.1 /srv/a\nexport 127.0.0.1 /srv/c uid=oops\n");
	ck_assert_int_eq(kill(dm.pid, SIGHUP), 0);
	wait_log("policy.reload-failed", 1);
	ck_assert_int_eq(daemon_log_count(&dm, "the policy loaded before"), 1);
	ck_assert_int_eq(daemon_log_count(&dm, "line 2: uid \\\"oops\\\""), 1);
	expect_err(NFSV3_ROUTE_CREATE, "{\"Name\":\"r2\",\"Opts\":{\"source\":\"127.0.0.1:/srv/a\"}}", true,
		   "export /srv/a on NFS server 127.0.0.1 is " REFUSED);
	expect_not_refused(NFSV3_ROUTE_CREATE, "{\"Name\":\"r3\",\"Opts\":{\"source\":\"127.0.0.1:/srv/b\"}}", true);

	/* Writable by others is a bad file too. */
	write_file(policy_file, "export 127.0.0.1 /srv/a\n");
	ck_assert_int_eq(chmod(policy_file, 0666), 0);
	ck_assert_int_eq(kill(dm.pid, SIGHUP), 0);
	wait_log("policy.reload-failed", 2);
	expect_err(NFSV3_ROUTE_CREATE, "{\"Name\":\"r4\",\"Opts\":{\"source\":\"127.0.0.1:/srv/a\"}}", true, REFUSED);
	chmod(policy_file, 0644);
	/* Still serving. */
	expect_not_refused(NFSV3_ROUTE_CREATE, "{\"Name\":\"r5\",\"Opts\":{\"source\":\"127.0.0.1:/srv/b\"}}", true);
}
END_TEST

START_TEST(daemon_without_a_policy_says_so_and_allows_everything)
{
	char extra[64];

	snprintf(extra, sizeof(extra), "--helper-timeout 5");
	daemon_init(&dm, extra);
	daemon_start(&dm);
	if (access(NFSV3_POLICY_FILE, F_OK) == 0)
		return; /* this machine has a policy at the built-in path */
	ck_assert_int_eq(daemon_log_count(&dm, "policy.none"), 1);
	expect_not_refused(NFSV3_ROUTE_CREATE, "{\"Name\":\"x\",\"Opts\":{\"source\":\"nfs://10.1.1.1/anything\",\"uid\":\"1\",\"gid\":\"1\"}}", true);
}
END_TEST

/* The daemon does not start on a bad policy, nor on a missing one it was told to use. */
static void start_fails(const char *text, const char *needle)
{
	char cmd[1024], out[4096] = "";
	FILE *p;
	size_t n;

	snprintf(policy_file, sizeof(policy_file), "%s/start-policy", dir);
	unlink(policy_file);
	if (text)
		write_file(policy_file, text);
	snprintf(cmd, sizeof(cmd), "%s --listen unix:%s/s.sock --mount-root %s/startroot --policy %s 2>&1",
		 harness_build_path("bin/nfsv3driver"), dir, dir, policy_file);
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	ck_assert_int_ne(pclose(p), 0);
	ck_assert_msg(strstr(out, needle), "\"%s\" lacks \"%s\"", out, needle);
}

START_TEST(daemon_refuses_to_start_on_a_bad_or_missing_policy)
{
	start_fails("export 127.0.0.1 /srv\nexport nowhere\n", "line 2: export: expected");
	start_fails(NULL, "No such file or directory");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy");
	TCase *parser = tcase_create("parser"), *rules = tcase_create("rules"), *file = tcase_create("file");
	TCase *helper_tc = tcase_create("helper"), *daemon_tc = tcase_create("daemon");
	int rc;

	if (!mkdtemp(dir) || chmod(dir, 0755) != 0) {
		perror("test_policy: mkdtemp");
		return 1;
	}
	tcase_add_test(parser, comments_blank_lines_and_fields);
	tcase_add_test(parser, errors_name_the_line_and_what_was_expected);
	tcase_add_test(parser, nul_byte_and_long_line_refused);
	tcase_add_test(rules, server_by_name_exact_and_wildcard);
	tcase_add_test(rules, server_by_cidr_ipv4_and_ipv6);
	tcase_add_test(rules, deny_server_beats_export_rules_and_catches_resolved_names);
	tcase_add_test(rules, no_export_rule_refuses_everything);
	tcase_add_test(rules, export_prefix_whole_components);
	tcase_add_test(rules, identity_kinds_per_export);
	tcase_add_test(rules, uid_and_gid_ranges_per_export);
	tcase_add_test(rules, system_ids_denied_by_default);
	tcase_add_test(rules, deny_lists_replace_the_default_but_never_free_root);
	tcase_add_test(rules, refusal_order_server_export_identity_ids);
	tcase_add_test(file, file_owned_by_root_and_written_by_nobody_else);
	tcase_add_test(file, file_errors_name_the_file_and_line);
	tcase_add_test(helper_tc, helper_refuses_what_the_daemon_would_refuse);
	tcase_add_test(helper_tc, helper_refuses_a_bad_policy_file);
	tcase_add_test(helper_tc, helper_ignores_a_policy_chosen_by_an_unprivileged_caller);
	tcase_add_checked_fixture(daemon_tc, NULL, teardown_daemon);
	tcase_set_timeout(daemon_tc, 60);
	tcase_set_timeout(helper_tc, 30);
	tcase_add_test(daemon_tc, daemon_refuses_at_create_for_docker_and_at_mount_for_volman);
	tcase_add_test(daemon_tc, daemon_checks_the_resolved_address);
	tcase_add_test(daemon_tc, daemon_reloads_on_sighup_and_keeps_the_last_good_policy);
	tcase_add_test(daemon_tc, daemon_without_a_policy_says_so_and_allows_everything);
	tcase_add_test(daemon_tc, daemon_refuses_to_start_on_a_bad_or_missing_policy);
	suite_add_tcase(s, parser);
	suite_add_tcase(s, rules);
	suite_add_tcase(s, file);
	suite_add_tcase(s, helper_tc);
	suite_add_tcase(s, daemon_tc);
	rc = harness_run(s);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			rc = 1;
	}
	return rc;
}
