/* The option table: every accepted form, every refusal's message, and the kernel option string. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "nfsv3driver.h"
#include "harness.h"
#include "options.h"

static struct config cfg = {
	.allow_local_sources = true,
	.allowed_nfs_options = "actimeo,nolock,lock,soft,hard,rsize,timeo",
};

static struct error *parse_text(const char *text, struct volume_spec *spec)
{
	json_t *opts = json_loads(text, JSON_DECODE_ANY, NULL);
	struct error *err;

	ck_assert_msg(opts != NULL, "bad test JSON %s", text);
	err = options_parse(opts, &cfg, spec);
	json_decref(opts);
	return err;
}

static void expect_error(const char *text, const char *want)
{
	struct volume_spec spec;
	struct error *err = parse_text(text, &spec);

	ck_assert_msg(err, "%s was accepted", text);
	ck_assert_msg(strstr(err->message, want), "%s: \"%s\", wanted \"%s\"", text, err->message, want);
	ck_assert_int_eq(err->code, ERROR_INVALID);
	error_free(err);
}

START_TEST(nfs_url_with_port_and_ids)
{
	struct volume_spec spec;
	ck_assert_ptr_null(parse_text("{\"source\":\"nfs://server.example:2049/export/a\",\"uid\":\"1234\",\"gid\":1234}", &spec));
	ck_assert_int_eq(spec.kind, SOURCE_NFS);
	ck_assert_str_eq(spec.host, "server.example");
	ck_assert_uint_eq(spec.port, 2049);
	ck_assert_str_eq(spec.path, "/export/a");
	ck_assert(spec.mapped);
	ck_assert_uint_eq(spec.uid, 1234);
	ck_assert_uint_eq(spec.gid, 1234);
	/* No version: the mount helper negotiates (4.2 down to 3). */
	ck_assert_ptr_null(spec.version);
	ck_assert(!spec.readonly && !spec.cache);
	volume_spec_clear(&spec);
}
END_TEST

START_TEST(host_colon_path_and_ipv6)
{
	struct volume_spec spec;
	ck_assert_ptr_null(parse_text("{\"source\":\"10.0.0.5:/export\"}", &spec));
	ck_assert_str_eq(spec.host, "10.0.0.5");
	ck_assert_str_eq(spec.path, "/export");
	volume_spec_clear(&spec);
	ck_assert_ptr_null(parse_text("{\"source\":\"nfs://[fd00::1]:2049/x\"}", &spec));
	ck_assert_str_eq(spec.host, "fd00::1");
	ck_assert_uint_eq(spec.port, 2049);
	volume_spec_clear(&spec);
	ck_assert_ptr_null(parse_text("{\"source\":\"[::1]:/srv\"}", &spec));
	ck_assert_str_eq(spec.host, "::1");
	volume_spec_clear(&spec);
}
END_TEST

START_TEST(values_as_strings_numbers_booleans)
{
	struct volume_spec spec;
	ck_assert_ptr_null(parse_text("{\"source\":\"h:/e\",\"readonly\":\"true\",\"version\":4.1,\"mount\":\"/x\",\"experimental\":true,\"auto_cache\":1}", &spec));
	ck_assert(spec.readonly);
	ck_assert(spec.cache); /* readonly makes cache default to true */
	ck_assert_str_eq(spec.version, "4.1");
	volume_spec_clear(&spec);
	ck_assert_ptr_null(parse_text("{\"source\":\"h:/e\",\"readonly\":true,\"cache\":false,\"version\":\"3.0\"}", &spec));
	ck_assert(!spec.cache);
	ck_assert_str_eq(spec.version, "3");
	volume_spec_clear(&spec);
	ck_assert_ptr_null(parse_text("{\"source\":\"h:/e\",\"version\":4}", &spec));
	/* "4" is any 4.x, negotiated newest first (as mount.nfs), not the kernel's 4.0. */
	ck_assert_str_eq(spec.version, "4");
	volume_spec_clear(&spec);
}
END_TEST

START_TEST(upstream_parity_booleans_sources)
{
	static const char *const truths[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const falsehoods[] = { "0", "f", "F", "FALSE", "false", "False" };
	struct volume_spec spec;
	char body[256];

	/* Go's strconv.ParseBool, and nothing beyond it. */
	for (size_t i = 0; i < 6; i++) {
		snprintf(body, sizeof(body), "{\"source\":\"h:/e\",\"readonly\":\"%s\",\"cache\":\"%s\"}", truths[i],
			 falsehoods[i]);
		ck_assert_ptr_null(parse_text(body, &spec));
		ck_assert(spec.readonly);
		ck_assert(!spec.cache);
		volume_spec_clear(&spec);
	}
	expect_error("{\"source\":\"h:/e\",\"readonly\":\"yes\"}", "option readonly \"yes\": expected true or false (or 1, t");
	expect_error("{\"source\":\"h:/e\",\"readonly\":\"tRUE\"}", "option readonly \"tRUE\"");
	expect_error("{\"source\":\"h:/e\",\"readonly\":\"2\"}", "option readonly \"2\"");
	/* Exports with what upstream passes; the helper gives them to the
	 * kernel as the source parameter, never in the option string. */
	ck_assert_ptr_null(parse_text("{\"source\":\"nfs://h/my share,ro#&!$(x)\"}", &spec));
	ck_assert_str_eq(spec.path, "/my share,ro#&!$(x)");
	volume_spec_clear(&spec);
	ck_assert_ptr_null(parse_text("{\"source\":\"h:/a b\"}", &spec));
	ck_assert_str_eq(spec.path, "/a b");
	volume_spec_clear(&spec);
	/* nfs://host is the server's root. */
	ck_assert_ptr_null(parse_text("{\"source\":\"nfs://server.example\"}", &spec));
	ck_assert_str_eq(spec.host, "server.example");
	ck_assert_str_eq(spec.path, "/");
	volume_spec_clear(&spec);
	ck_assert_ptr_null(parse_text("{\"source\":\"nfs://server.example:2049\"}", &spec));
	ck_assert_str_eq(spec.path, "/");
	ck_assert_uint_eq(spec.port, 2049);
	volume_spec_clear(&spec);
	expect_error("{\"source\":\"nfs://h:2049x\"}", "port must be a number from 1 to 65535");
	expect_error("{\"source\":\"nfs://h/e'x\"}", "found '''");
	expect_error("{\"source\":\"nfs://h/e\\\"x\"}", "found '\"'");
	expect_error("{\"source\":\"nfs://h/e\\nx\"}", "found byte 0x0a");
	/* Local sources stay strict. */
	expect_error("{\"source\":\"file:///tmp/a b\"}", "found ' '");
}
END_TEST

START_TEST(local_sources_only_when_allowed)
{
	struct volume_spec spec;
	ck_assert_ptr_null(parse_text("{\"source\":\"file:///tmp/dir\"}", &spec));
	ck_assert_int_eq(spec.kind, SOURCE_LOCAL);
	ck_assert_str_eq(spec.path, "/tmp/dir");
	volume_spec_clear(&spec);
	cfg.allow_local_sources = false;
	expect_error("{\"source\":\"file:///tmp/dir\"}", "--allow-local-sources");
	cfg.allow_local_sources = true;
	expect_error("{\"source\":\"file://relative\"}", "absolute");
}
END_TEST

START_TEST(refusals_name_option_value_and_allowed)
{
	expect_error("{\"source\":\"h:/e\",\"a\":1,\"b\":2}", "Not allowed options: a, b");
	expect_error("{\"source\":\"h:/e\",\"uid\":\"0\",\"gid\":\"0\"}", "option uid \"0\": expected a decimal number from 1 to 4294967294 (0 is root");
	expect_error("{\"source\":\"h:/e\",\"uid\":\"1\",\"gid\":\"4294967295\"}", "option gid \"4294967295\"");
	expect_error("{\"source\":\"h:/e\",\"uid\":\"+1\",\"gid\":\"1\"}", "option uid \"+1\"");
	expect_error("{\"source\":\"h:/e\",\"uid\":\" 1\",\"gid\":\"1\"}", "option uid \" 1\"");
	expect_error("{\"source\":\"h:/e\",\"uid\":1.5,\"gid\":\"1\"}", "option uid \"1.5\"");
	expect_error("{\"source\":\"h:/e\",\"uid\":null,\"gid\":\"1\"}", "got null");
	expect_error("{\"source\":\"h:/e\",\"gid\":\"1\"}", "give both or neither (got only gid)");
	expect_error("{\"source\":\"h:/e\",\"version\":\"2\"}", "expected 3, 4, 4.0, 4.1 or 4.2");
	expect_error("{\"source\":\"h:/e\",\"cache\":{}}", "option cache: expected true or false, got an object");
	expect_error("{\"source\":\"h:/e/../../etc\"}", "'..'");
	expect_error("{\"source\":\"h:/e;rm\"}", "found ';'");
	expect_error("{\"source\":\"h:/e\\u0001\"}", "found byte 0x01");
	expect_error("{\"source\":\"nfs://[zz::1]/e\"}", "not an IPv6 address");
	expect_error("{\"source\":\"nfs://a..b/e\"}", "is not a DNS name");
	expect_error("{\"source\":\"nfs://host:0/e\"}", "port must be a number from 1 to 65535");
	expect_error("{\"source\":\"smb://h/e\"}", "expected nfs://host[:port]/path or host:/path or file:///dir");
	expect_error("[]", "Opts: expected an object of options, got an array");
	expect_error("null", "option source is required");
	expect_error("{\"source\":\"file:///tmp\",\"nfs_options\":\"nolock\"}", "only NFS sources");
}
END_TEST

START_TEST(nfs_options_against_allowlist)
{
	struct volume_spec spec;
	ck_assert_ptr_null(parse_text("{\"source\":\"h:/e\",\"nfs_options\":\"nolock,actimeo=5\"}", &spec));
	ck_assert_str_eq(spec.nfs_options, "nolock,actimeo=5");
	volume_spec_clear(&spec);
	expect_error("{\"source\":\"h:/e\",\"nfs_options\":\"sec=krb5\"}", "\"sec\" can only be set by the operator");
	expect_error("{\"source\":\"h:/e\",\"nfs_options\":\"suid\"}", "\"suid\" can only be set by the operator");
	expect_error("{\"source\":\"h:/e\",\"nfs_options\":\"addr=1.2.3.4\"}", "\"addr\" can only be set");
	expect_error("{\"source\":\"h:/e\",\"nfs_options\":\"wsize=1\"}", "\"wsize\" is not in the operator's allowed NFS options");
	expect_error("{\"source\":\"h:/e\",\"nfs_options\":\"nolock,,soft\"}", "empty option");
	expect_error("{\"source\":\"h:/e\",\"nfs_options\":\"nolock,\"}", "trailing comma");
	expect_error("{\"source\":\"h:/e\",\"nfs_options\":\"timeo=1 2\"}", "may only contain");
	expect_error("{\"source\":\"h:/e\",\"nfs_options\":\"timeo=a=b\"}", "may only contain");
}
END_TEST

START_TEST(kernel_string_layers_defaults_operator_binding)
{
	struct volume_spec spec;
	char *text;

	ck_assert_ptr_null(parse_text("{\"source\":\"h:/e\"}", &spec));
	text = options_kernel_string(&spec, &cfg, false);
	ck_assert_str_eq(text, "rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,actimeo=0,proto=tcp,sec=sys");
	free(text);
	volume_spec_clear(&spec);

	/* The operator pins a version; the binding's own replaces it, under either spelling. */
	cfg.nfs_options = "nfsvers=4.1";
	ck_assert_ptr_null(parse_text("{\"source\":\"h:/e\"}", &spec));
	text = options_kernel_string(&spec, &cfg, false);
	ck_assert_str_eq(text, "rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,actimeo=0,proto=tcp,sec=sys,nfsvers=4.1");
	free(text);
	volume_spec_clear(&spec);
	ck_assert_ptr_null(parse_text("{\"source\":\"h:/e\",\"version\":\"3\"}", &spec));
	text = options_kernel_string(&spec, &cfg, false);
	ck_assert_str_eq(text, "rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,actimeo=0,proto=tcp,sec=sys,vers=3");
	free(text);
	volume_spec_clear(&spec);

	cfg.nfs_options = "nolock,timeo=100";
	ck_assert_ptr_null(parse_text("{\"source\":\"nfs://h:2050/e\",\"cache\":true,\"nfs_options\":\"soft,lock\",\"version\":\"4.1\"}", &spec));
	text = options_kernel_string(&spec, &cfg, false);
	ck_assert_str_eq(text, "rsize=1048576,wsize=1048576,timeo=100,retrans=2,proto=tcp,sec=sys,soft,lock,vers=4.1,port=2050");
	free(text);
	text = options_kernel_string(&spec, &cfg, true);
	ck_assert_str_eq(text, "rsize=1048576,wsize=1048576,timeo=100,retrans=2,proto=tcp6,sec=sys,soft,lock,vers=4.1,port=2050");
	free(text);
	volume_spec_clear(&spec);
	cfg.nfs_options = NULL;
}
END_TEST

START_TEST(sanitize_drops_password)
{
	json_t *opts = json_pack("{s:s, s:s, s:s}", "source", "h:/e", "username", "u", "password", "p");
	json_t *clean = options_sanitize(opts);
	ck_assert_ptr_null(json_object_get(clean, "password"));
	ck_assert_ptr_nonnull(json_object_get(clean, "username"));
	ck_assert_ptr_nonnull(json_object_get(opts, "password"));
	json_decref(opts);
	json_decref(clean);
}
END_TEST

START_TEST(ldap_identity_rules)
{
	struct volume_spec spec;

	cfg.ldap = false;
	expect_error("{\"source\":\"h:/e\",\"username\":\"alice\",\"password\":\"pw\"}", NFSV3_ERR_LDAP_OFF);
	cfg.ldap = true;
	ck_assert_ptr_null(parse_text("{\"source\":\"h:/e\",\"username\":\"alice\",\"password\":\"pw\"}", &spec));
	ck_assert_str_eq(spec.username, "alice");
	ck_assert(!spec.mapped); /* mapped once the directory has answered */
	volume_spec_clear(&spec);
	/* The state's copy has no password: parsing it must not fail (directory.c checks Create's). */
	ck_assert_ptr_null(parse_text("{\"source\":\"h:/e\",\"username\":\"alice\"}", &spec));
	volume_spec_clear(&spec);
	expect_error("{\"source\":\"h:/e\",\"username\":\"alice\",\"password\":\"pw\",\"uid\":5,\"gid\":5}",
		     NFSV3_ERR_LDAP_TOGETHER);
	expect_error("{\"source\":\"h:/e\",\"password\":\"pw\"}", NFSV3_ERR_LDAP_NO_USERNAME);
	expect_error("{\"source\":\"h:/e\",\"username\":\"alice\",\"password\":\"\"}", NFSV3_ERR_LDAP_EMPTY_PASSWORD);
	expect_error("{\"source\":\"h:/e\",\"username\":\"\",\"password\":\"pw\"}", "option username");
	expect_error("{\"source\":\"h:/e\",\"username\":\"alice\",\"password\":5}", "option password");
	cfg.ldap = false;
}
END_TEST

START_TEST(names)
{
	const char *good[] = { "a", "vol=1_guid=2", "A.b-c+d@e:f", "0" };
	const char *bad[] = { "", "-a", ".kernel", "a/b", "a b", "driver-state.json", "driver-state.json.tmp", "é" };
	char longname[300];
	struct error *err;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(options_check_name(good[i]) == NULL, "%s refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg((err = options_check_name(bad[i])) != NULL, "%s accepted", bad[i]);
		error_free(err);
	}
	memset(longname, 'a', 256);
	longname[256] = '\0';
	ck_assert_ptr_nonnull((err = options_check_name(longname)));
	error_free(err);
	longname[255] = '\0';
	ck_assert_ptr_null(options_check_name(longname));
}
END_TEST

/* A deep copy: equal strings in memory of its own, absent ones still absent. */
START_TEST(spec_copy_is_deep)
{
	struct volume_spec from = { .kind = SOURCE_NFS, .host = strdup("nfs.example"), .path = strdup("/export"),
				    .port = 2049, .mapped = true, .uid = 7, .gid = 8, .version = strdup("3") };
	struct volume_spec to;

	ck_assert(volume_spec_copy(&to, &from));
	ck_assert_str_eq(to.host, "nfs.example");
	ck_assert_str_eq(to.path, "/export");
	ck_assert_str_eq(to.version, "3");
	ck_assert_ptr_ne(to.host, from.host);
	ck_assert_ptr_ne(to.path, from.path);
	ck_assert_ptr_ne(to.version, from.version);
	ck_assert_ptr_null(to.username);
	ck_assert_ptr_null(to.nfs_options);
	ck_assert(to.kind == SOURCE_NFS && to.port == 2049 && to.mapped && to.uid == 7 && to.gid == 8);
	volume_spec_clear(&from);
	ck_assert_str_eq(to.host, "nfs.example");
	volume_spec_clear(&to);
	ck_assert_ptr_null(to.host);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("options");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, nfs_url_with_port_and_ids);
	tcase_add_test(tc, host_colon_path_and_ipv6);
	tcase_add_test(tc, values_as_strings_numbers_booleans);
	tcase_add_test(tc, upstream_parity_booleans_sources);
	tcase_add_test(tc, local_sources_only_when_allowed);
	tcase_add_test(tc, refusals_name_option_value_and_allowed);
	tcase_add_test(tc, nfs_options_against_allowlist);
	tcase_add_test(tc, kernel_string_layers_defaults_operator_binding);
	tcase_add_test(tc, sanitize_drops_password);
	tcase_add_test(tc, names);
	tcase_add_test(tc, ldap_identity_rules);
	tcase_add_test(tc, spec_copy_is_deep);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
