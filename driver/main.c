/*
 * nfsv3driver: the daemon. Reads the command line, loads and reconciles the
 * state, listens, writes the spec file for volman, and shuts down cleanly on
 * SIGTERM: stop accepting, finish what is in flight and its state writes
 * (bounded), remove the spec file, exit 0.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "driver.h"
#include "http.h"
#include "kernel.h"
#include "lifecycle.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "policy_gate.h"
#include "reconcile.h"
#include "routes.h"
#include "supervise.h"
#include "tls.h"

#define EXIT_USAGE 2
#define SHUTDOWN_GRACE_S 5
#define DEFAULT_FORGET_UNMOUNTED_AFTER_S 3600
#define FORGET_UNMOUNTED_AFTER_MAX_S (366U * 24 * 3600)

static const char usage_text[] =
	"usage: nfsv3driver [options]\n"
	"       nfsv3driver smoke --driver ADDR --source SRC [--uid U --gid G]\n"
	"                                         the operator's check: runs " NFSV3_TOOL_SMOKE " beside this\n"
	"                                         binary with the same arguments (--help for its options)\n"
	"       nfsv3driver check-policy [FILE]   read a policy as the driver and helper will (default\n"
	"                                         " NFSV3_POLICY_FILE ")\n"
	"\n"
	"  --listen unix:PATH|tcp://HOST:PORT  serve the volume plugin API (repeatable)\n"
	"  --admin tcp://HOST:PORT             serve GET /ping, GET /evacuate and GET /metrics\n"
	"  --name NAME                         driver name (default " NFSV3_DEFAULT_NAME ")\n"
	"  --drivers-path DIR                  write DIR/NAME.json for volman\n"
	"  --mount-root DIR                    mountpoints, .kernel/ and the state file (required)\n"
	"  --helper-timeout SECONDS            deadline of every helper run (default 30)\n"
	"  --max-parallel N                    helpers and idmapfs starts running at once (default 16)\n"
	"  --app-uid UID, --app-gid GID        the ids apps run as (default 2000)\n"
	"  --nfs-options LIST                  operator's default kernel NFS options\n"
	"  --allowed-nfs-options LIST          option names a binding's nfs_options may use\n"
	"  --allow-local-sources               accept file:///dir sources (development only)\n"
	"  --forget-unmounted-after DURATION   forget a volume volman made once it is unmounted and unused\n"
	"                                      this long: 90s, 30m, 1h, 2d (default 1h; 0 never)\n"
	"  --policy FILE                       the operator's policy of servers, exports and ids (default\n"
	"                                      " NFSV3_POLICY_FILE " when it exists; SIGHUP reloads it)\n"
	"  --no-idmapfs-passthrough            idmapfs serves every read and write itself, even\n"
	"                                      where the kernel could pass them through (6.9+)\n"
	"  --tls-cert FILE --tls-key FILE --tls-ca FILE\n"
	"                                      mutual TLS on every TCP listener: client certificates\n"
	"                                      must chain to the CA (SIGHUP reloads the files)\n"
	"  --tls-client-cert FILE --tls-client-key FILE\n"
	"                                      the client certificate the spec file gives volman\n"
	"  --tls-insecure-skip-verify          tell volman not to verify the driver's certificate\n"
	"  --helper-dir DIR                    where the helpers are (default: ../" NFSV3_HELPER_SUBDIR
	" beside this binary)\n"
	"  --log-level debug|info|error        (default info)\n"
	"  --ldap-host HOST[,HOST...]          resolve username/password bindings in LDAP (hosts in order)\n"
	"  --ldap-port PORT                    (default 636 for LDAPS, else 389)\n"
	"  --ldap-svc-user DN                  the service user that searches\n"
	"  --ldap-svc-password-file FILE       its password (else $NFSV3DRIVER_LDAP_SVC_PASSWORD)\n"
	"  --ldap-user-fqdn BASE_DN            where users are searched (subtree)\n"
	"  --ldap-ca-cert FILE                 verify the server against it; LDAPS unless --ldap-starttls\n"
	"  --ldap-starttls                     StartTLS on the plain port instead of LDAPS\n"
	"  --ldap-insecure-plaintext           no TLS: passwords cross the network in clear\n"
	"  --ldap-user-filter FILTER           (default (&(objectClass=User)(cn=%s)))\n"
	"  --ldap-uid-attr NAME, --ldap-gid-attr NAME  (default uidNumber, gidNumber)\n"
	"  --ldap-timeout SECONDS              connect and each request (default 10)\n"
	"  --help, --version\n";

#define DEFAULT_ALLOWED_NFS_OPTIONS                                                                          \
	"actimeo,acregmin,acregmax,acdirmin,acdirmax,ac,noac,cto,nocto,lookupcache,rsize,wsize,timeo,retrans," \
	"nconnect,port,mountport,proto,mountproto,lock,nolock,local_lock,rdirplus,nordirplus,hard,soft,softerr," \
	"noatime,nodiratime,relatime,sharecache,nosharecache"

enum long_only {
	OPT_LISTEN = 256, OPT_ADMIN, OPT_NAME, OPT_DRIVERS_PATH, OPT_MOUNT_ROOT, OPT_HELPER_TIMEOUT,
	OPT_MAX_PARALLEL, OPT_APP_UID, OPT_APP_GID, OPT_LOG_LEVEL, OPT_ALLOW_LOCAL, OPT_NFS_OPTIONS,
	OPT_ALLOWED_NFS_OPTIONS, OPT_HELPER_DIR, OPT_HELP, OPT_VERSION, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA,
	OPT_TLS_CLIENT_CERT, OPT_TLS_CLIENT_KEY, OPT_TLS_INSECURE, OPT_FORGET_UNMOUNTED_AFTER, OPT_POLICY,
	OPT_NO_PASSTHROUGH,
	OPT_LDAP, /* every --ldap-* flag: directory.c reads them by name */
};

static const struct option long_options[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "admin", required_argument, NULL, OPT_ADMIN },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "drivers-path", required_argument, NULL, OPT_DRIVERS_PATH },
	{ "mount-root", required_argument, NULL, OPT_MOUNT_ROOT },
	{ "helper-timeout", required_argument, NULL, OPT_HELPER_TIMEOUT },
	{ "max-parallel", required_argument, NULL, OPT_MAX_PARALLEL },
	{ "app-uid", required_argument, NULL, OPT_APP_UID },
	{ "app-gid", required_argument, NULL, OPT_APP_GID },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "allow-local-sources", no_argument, NULL, OPT_ALLOW_LOCAL },
	{ "no-idmapfs-passthrough", no_argument, NULL, OPT_NO_PASSTHROUGH },
	{ "nfs-options", required_argument, NULL, OPT_NFS_OPTIONS },
	{ "allowed-nfs-options", required_argument, NULL, OPT_ALLOWED_NFS_OPTIONS },
	{ "helper-dir", required_argument, NULL, OPT_HELPER_DIR },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "tls-client-cert", required_argument, NULL, OPT_TLS_CLIENT_CERT },
	{ "tls-client-key", required_argument, NULL, OPT_TLS_CLIENT_KEY },
	{ "tls-insecure-skip-verify", no_argument, NULL, OPT_TLS_INSECURE },
	{ "forget-unmounted-after", required_argument, NULL, OPT_FORGET_UNMOUNTED_AFTER },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "ldap-host", required_argument, NULL, OPT_LDAP },
	{ "ldap-port", required_argument, NULL, OPT_LDAP },
	{ "ldap-svc-user", required_argument, NULL, OPT_LDAP },
	{ "ldap-svc-password-file", required_argument, NULL, OPT_LDAP },
	{ "ldap-user-fqdn", required_argument, NULL, OPT_LDAP },
	{ "ldap-ca-cert", required_argument, NULL, OPT_LDAP },
	{ "ldap-starttls", no_argument, NULL, OPT_LDAP },
	{ "ldap-insecure-plaintext", no_argument, NULL, OPT_LDAP },
	{ "ldap-user-filter", required_argument, NULL, OPT_LDAP },
	{ "ldap-uid-attr", required_argument, NULL, OPT_LDAP },
	{ "ldap-gid-attr", required_argument, NULL, OPT_LDAP },
	{ "ldap-timeout", required_argument, NULL, OPT_LDAP },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/*
 * What main owns: the configuration, the shared context every module is
 * handed (drv), and the handles only main uses. main holds the one there is;
 * callbacks reach it through their handle's data, or from drv.
 */
struct daemon {
	struct config cfg;
	struct directory_config ldap;
	struct driver drv;
	uv_loop_t loop;
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t shutdown_timer, expiry_timer, sweep_timer;
	SSL_CTX *tls;
	char mount_root[PATH_MAX];
	char spec_path[PATH_MAX];
	const char *policy; /* --policy, or NULL */
	char policy_env[PATH_MAX + sizeof(NFSV3_POLICY_ENV "=")];
	int closing;
};

static struct daemon *daemon_of(struct driver *drv)
{
	return (struct daemon *)((char *)drv - offsetof(struct daemon, drv));
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("nfsv3driver: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'nfsv3driver --help'.\n", stderr);
	exit(EXIT_USAGE);
}

static unsigned long parse_number(const char *option, const char *text, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(text, &end, 10);
	if (!*text || *text == '-' || *text == '+' || *end || errno || n < min || n > max)
		usage_error("%s \"%s\": expected a whole number from %lu to %lu", option, text, min, max);
	return n;
}

/* A duration: whole seconds, or a number with s, m, h or d; 0 alone means never. */
static unsigned parse_duration(const char *option, const char *text, unsigned long max)
{
	static const struct { char unit; unsigned long seconds; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	unsigned long n, scale = 1;
	char *end;

	errno = 0;
	n = strtoul(text, &end, 10);
	if (end != text && *end && !end[1]) {
		scale = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (*end == units[i].unit)
				scale = units[i].seconds;
		if (scale)
			end++;
	}
	if (!*text || !isdigit((unsigned char)*text) || *end || errno || !scale || n > max / scale)
		usage_error("%s \"%s\": expected a duration such as 90s, 30m, 1h or 2d (at most %lu days), or 0 for never",
			    option, text, max / 86400);
	return (unsigned)(n * scale);
}

static void check_listen_address(const char *option, const char *address)
{
	if (strncmp(address, "unix:", 5) == 0 && address[5] == '/')
		return;
	if (strncmp(address, "tcp://", 6) == 0 && strrchr(address, ':') > address + 6)
		return;
	usage_error("%s \"%s\": expected unix:/absolute/path or tcp://HOST:PORT", option, address);
}

/* Helpers sit in ../libexec/nfsv3driver beside the daemon, as installed. */
static void find_helpers(struct driver *drv, const char *helper_dir)
{
	char self[PATH_MAX], dir[PATH_MAX];
	ssize_t n;

	if (!helper_dir) {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
			usage_error("cannot find my own binary (/proc/self/exe): %s; give --helper-dir", strerror(errno));
		self[n] = '\0';
		snprintf(dir, sizeof(dir), "%s/../%s", dirname(self), NFSV3_HELPER_SUBDIR);
		helper_dir = dir;
	}
	if (!realpath(helper_dir, self))
		usage_error("helper directory %s: %s", helper_dir, strerror(errno));
	snprintf(drv->mount_helper, sizeof(drv->mount_helper), "%s/%s", self, NFSV3_HELPER_MOUNT);
	snprintf(drv->idmapfs_helper, sizeof(drv->idmapfs_helper), "%s/%s", self, NFSV3_HELPER_IDMAPFS);
	if (access(drv->mount_helper, X_OK) != 0)
		usage_error("helper %s: %s", drv->mount_helper, strerror(errno));
}

/* TLS is all or nothing: a half-configured listener would be plain. */
static void check_tls_args(const struct config *cfg)
{
	bool any = cfg->tls_cert || cfg->tls_key || cfg->tls_ca;
	bool any_client = cfg->tls_client_cert || cfg->tls_client_key;

	if (any && !(cfg->tls_cert && cfg->tls_key && cfg->tls_ca))
		usage_error("--tls-cert, --tls-key and --tls-ca go together: give all three (missing %s)",
			    !cfg->tls_cert ? "--tls-cert" : !cfg->tls_key ? "--tls-key" : "--tls-ca");
	if (any_client && !(cfg->tls_client_cert && cfg->tls_client_key))
		usage_error("--tls-client-cert and --tls-client-key go together");
	if ((any_client || cfg->tls_insecure_skip_verify) && !any)
		usage_error("--tls-client-cert, --tls-client-key and --tls-insecure-skip-verify need --tls-cert, "
			    "--tls-key and --tls-ca");
	/* volman always presents a client certificate to a TLS driver, and
	 * ours refuses connections without one. */
	if (any && cfg->drivers_path && !any_client)
		usage_error("--tls-cert with --drivers-path needs --tls-client-cert and --tls-client-key: the "
			    "spec file must give volman a client certificate signed by --tls-ca");
	const char *files[] = { cfg->tls_cert, cfg->tls_key, cfg->tls_ca, cfg->tls_client_cert, cfg->tls_client_key };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i] && access(files[i], R_OK) != 0)
			usage_error("TLS file %s: %s", files[i], strerror(errno));
}

static void parse_args(struct daemon *d, int argc, char **argv, const char **helper_dir)
{
	struct config *cfg = &d->cfg;
	const char *why;
	int level, opt, index;

	*cfg = (struct config){
		.name = NFSV3_DEFAULT_NAME,
		.helper_timeout_s = 30,
		.max_parallel = 16,
		.app_uid = 2000,
		.app_gid = 2000,
		.allowed_nfs_options = DEFAULT_ALLOWED_NFS_OPTIONS,
		.forget_unmounted_after_s = DEFAULT_FORGET_UNMOUNTED_AFTER_S,
		.log_level = LOG_INFO,
	};
	directory_config_init(&d->ldap);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", long_options, &index)) != -1) {
		switch (opt) {
		case OPT_LISTEN:
			check_listen_address("--listen", optarg);
			if (cfg->n_listen == CONFIG_MAX_LISTEN)
				usage_error("--listen: at most %d listeners", CONFIG_MAX_LISTEN);
			cfg->listen[cfg->n_listen++] = optarg;
			break;
		case OPT_ADMIN:
			check_listen_address("--admin", optarg);
			cfg->admin = optarg;
			break;
		case OPT_NAME:
			if (!options_name_valid(optarg))
				usage_error("--name \"%s\": expected letters, digits and _.-", optarg);
			cfg->name = optarg;
			break;
		case OPT_DRIVERS_PATH: cfg->drivers_path = optarg; break;
		case OPT_MOUNT_ROOT: cfg->mount_root = optarg; break;
		case OPT_HELPER_TIMEOUT:
			cfg->helper_timeout_s = (unsigned)parse_number("--helper-timeout", optarg, 1, 3600);
			break;
		case OPT_MAX_PARALLEL: cfg->max_parallel = (unsigned)parse_number("--max-parallel", optarg, 1, 1024); break;
		case OPT_APP_UID: cfg->app_uid = (uid_t)parse_number("--app-uid", optarg, 1, 4294967294UL); break;
		case OPT_APP_GID: cfg->app_gid = (gid_t)parse_number("--app-gid", optarg, 1, 4294967294UL); break;
		case OPT_LOG_LEVEL:
			if ((level = log_level_parse(optarg)) < 0)
				usage_error("--log-level \"%s\": expected debug, info or error", optarg);
			cfg->log_level = (enum log_level)level;
			break;
		case OPT_ALLOW_LOCAL: cfg->allow_local_sources = true; break;
		case OPT_NO_PASSTHROUGH: cfg->idmapfs_passthrough_off = true; break;
		case OPT_NFS_OPTIONS: cfg->nfs_options = optarg; break;
		case OPT_ALLOWED_NFS_OPTIONS: cfg->allowed_nfs_options = optarg; break;
		case OPT_HELPER_DIR: *helper_dir = optarg; break;
		case OPT_TLS_CERT: cfg->tls_cert = optarg; break;
		case OPT_TLS_KEY: cfg->tls_key = optarg; break;
		case OPT_TLS_CA: cfg->tls_ca = optarg; break;
		case OPT_TLS_CLIENT_CERT: cfg->tls_client_cert = optarg; break;
		case OPT_TLS_CLIENT_KEY: cfg->tls_client_key = optarg; break;
		case OPT_TLS_INSECURE: cfg->tls_insecure_skip_verify = true; break;
		case OPT_FORGET_UNMOUNTED_AFTER:
			cfg->forget_unmounted_after_s = parse_duration("--forget-unmounted-after", optarg,
								       FORGET_UNMOUNTED_AFTER_MAX_S);
			break;
		case OPT_POLICY:
			if (optarg[0] != '/')
				usage_error("--policy \"%s\": expected an absolute path", optarg);
			d->policy = optarg;
			break;
		case OPT_LDAP:
			if ((why = directory_config_set(&d->ldap, long_options[index].name, optarg ? optarg : "")))
				usage_error("--%s \"%s\": %s", long_options[index].name, optarg ? optarg : "", why);
			break;
		case OPT_HELP: fputs(usage_text, stdout); exit(0);
		case OPT_VERSION: printf("nfsv3driver %s\n", NFSV3_VERSION); exit(0);
		case ':': usage_error("option %s needs a value", argv[optind - 1]);
		default: usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument \"%s\"", argv[optind]);
	if (cfg->n_listen == 0)
		usage_error("give at least one --listen unix:PATH or --listen tcp://HOST:PORT");
	if (!cfg->mount_root || cfg->mount_root[0] != '/')
		usage_error("--mount-root: an absolute directory is required");
	cfg->ldap = directory_configured(&d->ldap);
	check_tls_args(cfg);
}

/*
 * volman reads the CA and its client certificate from the files the spec
 * file names, so they must lie where its sandbox can read them: the BOSH
 * job puts them under the drivers path (<driver_path>/certs/<name>/), as
 * upstream does. Named by absolute path.
 */
static json_t *spec_tls_config(const struct config *cfg)
{
	char ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	const char *failed = !realpath(cfg->tls_ca, ca)			? cfg->tls_ca
			     : !realpath(cfg->tls_client_cert, cert)	? cfg->tls_client_cert
			     : !realpath(cfg->tls_client_key, key)	? cfg->tls_client_key
									: NULL;
	if (failed) {
		log_error("spec-file.tls-file-failed", json_pack("{s:s, s:s}", "file", failed, "error", strerror(errno)));
		return NULL;
	}
	return json_pack("{s:b, s:s, s:s, s:s}", NFSV3_F_SPEC_TLS_INSECURE, cfg->tls_insecure_skip_verify,
			 NFSV3_F_SPEC_TLS_CA, ca, NFSV3_F_SPEC_TLS_CERT, cert, NFSV3_F_SPEC_TLS_KEY, key);
}

/* volman reads <drivers-path>/<name>.json: written whole or not at all. */
static int write_spec_file(struct daemon *d)
{
	const struct config *cfg = &d->cfg;
	const char *tcp = NULL;
	char url[512], tmp[PATH_MAX + 8];
	json_t *spec, *tls = json_null();
	int rc;

	for (unsigned i = 0; i < cfg->n_listen && !tcp; i++)
		if (strncmp(cfg->listen[i], "tcp://", 6) == 0)
			tcp = cfg->listen[i];
	if (tcp)
		snprintf(url, sizeof(url), "%s://%s", cfg->tls_cert ? "https" : "http", tcp + 6);
	else
		snprintf(url, sizeof(url), "unix://%s", cfg->listen[0] + 5);
	if (tcp && cfg->tls_cert && !(tls = spec_tls_config(cfg)))
		return -1;
	spec = json_pack("{s:s, s:s, s:o, s:b}", NFSV3_F_NAME, cfg->name, NFSV3_F_SPEC_ADDR, url, NFSV3_F_SPEC_TLS,
			 tls, NFSV3_F_SPEC_UNIQUE, 1);
	snprintf(d->spec_path, sizeof(d->spec_path), "%s/%s.json", cfg->drivers_path, cfg->name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", d->spec_path);
	rc = json_dump_file(spec, tmp, JSON_COMPACT);
	json_decref(spec);
	if (rc == 0 && (chmod(tmp, 0644) != 0 || rename(tmp, d->spec_path) != 0))
		rc = -1;
	if (rc != 0) {
		log_error("spec-file.write-failed", json_pack("{s:s, s:s}", "path", d->spec_path, "error", strerror(errno)));
		unlink(tmp);
		d->spec_path[0] = '\0';
	}
	return rc;
}

/* ---- TLS: load, reload on SIGHUP, expiry warnings ----------------------- */

#define TLS_EXPIRY_WARN_S (30 * 24 * 3600)
#define TLS_EXPIRY_CHECK_MS (6ULL * 3600 * 1000)

static void log_expiry(const char *which, const char *path, time_t not_after)
{
	time_t now = time(NULL);
	char when[32];
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&not_after, &tm));
	json_t *data = json_pack("{s:s, s:s, s:s, s:I}", "certificate", which, "path", path, "not_after", when,
				 "days_left", (json_int_t)((not_after - now) / 86400));
	if (not_after <= now)
		log_error("tls.certificate-expired", data);
	else if (not_after - now <= TLS_EXPIRY_WARN_S)
		log_error("tls.certificate-expires-soon", data);
	else
		log_info("tls.certificate", data);
}

static void check_expiry(uv_timer_t *timer)
{
	struct daemon *d = timer->data;
	time_t not_after;

	if (d->tls && tls_not_after(d->tls, &not_after) == 0)
		log_expiry("server", d->cfg.tls_cert, not_after);
	if (d->cfg.tls_client_cert && tls_file_not_after(d->cfg.tls_client_cert, &not_after) == 0)
		log_expiry("client", d->cfg.tls_client_cert, not_after);
}

static SSL_CTX *load_tls(const struct daemon *d, char *why, size_t why_len)
{
	struct tls_files files = { d->cfg.tls_cert, d->cfg.tls_key, d->cfg.tls_ca };
	return tls_context_new(&files, why, why_len);
}

static void on_tls_refusal(enum http_refusal reason, const char *detail, const char *peer, void *data)
{
	static const enum metric_counter counters[] = {
		[HTTP_REFUSED_PROTOCOL] = METRIC_TLS_HANDSHAKE_FAILURES_PROTOCOL,
		[HTTP_REFUSED_NO_CERTIFICATE] = METRIC_TLS_HANDSHAKE_FAILURES_NO_CERTIFICATE,
		[HTTP_REFUSED_BAD_CERTIFICATE] = METRIC_TLS_HANDSHAKE_FAILURES_BAD_CERTIFICATE,
		[HTTP_REFUSED_TIMEOUT] = METRIC_TLS_HANDSHAKE_FAILURES_TIMEOUT,
		[HTTP_REFUSED_HANDSHAKE] = METRIC_TLS_HANDSHAKE_FAILURES_OTHER,
	};
	metrics_count(counters[reason]);
	log_error("tls.connection-refused", json_pack("{s:s, s:s, s:s, s:s}", "listener", (const char *)data,
						      "reason", http_refusal_name(reason), "error", detail, "peer", peer));
}

/* Rotation: new connections get the new files; open ones, and every mount,
 * are not disturbed. A file that does not load keeps the old context. The
 * policy is read again too (policy_gate.c), for the bindings mounted next. */
static void on_sighup(uv_signal_t *handle, int signum)
{
	struct daemon *d = handle->data;
	char why[512];
	SSL_CTX *ctx;

	policy_gate_reload();
	if (!d->tls)
		return;
	if (!(ctx = load_tls(d, why, sizeof(why)))) {
		log_error("tls.reload-failed", json_pack("{s:s, s:s}", "error", why, "kept", "the certificates loaded before"));
		return;
	}
	SSL_CTX_free(d->tls);
	d->tls = ctx;
	http_server_set_tls(d->drv.plugin_server, ctx);
	if (d->drv.admin_server)
		http_server_set_tls(d->drv.admin_server, ctx);
	log_info("tls.reloaded", NULL);
	check_expiry(&d->expiry_timer);
}

static void on_handle_closed(uv_handle_t *handle)
{
	(void)handle;
}

static void on_server_closed(void *data)
{
	struct daemon *d = data;

	if (--d->closing == 0) {
		uv_close((uv_handle_t *)&d->sigterm, on_handle_closed);
		uv_close((uv_handle_t *)&d->sigint, on_handle_closed);
		uv_close((uv_handle_t *)&d->shutdown_timer, on_handle_closed);
		uv_close((uv_handle_t *)&d->sighup, on_handle_closed);
		uv_close((uv_handle_t *)&d->expiry_timer, on_handle_closed);
		uv_close((uv_handle_t *)&d->sweep_timer, on_handle_closed);
	}
}

/* Everything answered, and every change on disk before its answer: close. */
static void finish_shutdown(struct daemon *d)
{
	if (d->closing)
		return;
	uv_timer_stop(&d->shutdown_timer);
	uv_timer_stop(&d->sweep_timer);
	if (d->spec_path[0])
		unlink(d->spec_path);
	supervise_let_go(&d->drv);
	log_info("driver-server.stopped", NULL);
	d->closing = d->drv.admin_server ? 2 : 1;
	http_server_close(d->drv.plugin_server, on_server_closed, d);
	if (d->drv.admin_server)
		http_server_close(d->drv.admin_server, on_server_closed, d);
}

/*
 * Once stopping, close when no operation is in flight and no state write is
 * waiting or running. Checked at the signal, when the last operation is
 * answered, and when the start's own state write (after reconciling) ends.
 */
static void on_idle(struct driver *drv)
{
	if (drv->stopping && drv->ops_in_flight == 0 && state_writer_idle(drv->state))
		finish_shutdown(daemon_of(drv));
}

static void on_shutdown_timeout(uv_timer_t *timer)
{
	struct daemon *d = timer->data;

	log_error("driver-server.shutdown-timeout", json_pack("{s:i}", "operations_in_flight", (int)d->drv.ops_in_flight));
	/* Operations still running keep their helpers; the state says what
	 * they had done, and the next start reconciles the rest. */
	uv_stop(timer->loop);
}

static void on_signal(uv_signal_t *handle, int signum)
{
	struct daemon *d = handle->data;

	if (d->drv.stopping)
		return;
	d->drv.stopping = true;
	log_info("driver-server.stopping", json_pack("{s:i, s:i}", "signal", signum, "operations_in_flight",
						     (int)d->drv.ops_in_flight));
	http_server_stop_accepting(d->drv.plugin_server);
	uv_timer_start(&d->shutdown_timer, on_shutdown_timeout,
		       ((uint64_t)d->cfg.helper_timeout_s + SHUTDOWN_GRACE_S) * 1000, 0);
	on_idle(&d->drv);
}

static void listen_all(struct daemon *d)
{
	const char *why;
	int rc;

	d->drv.plugin_server = http_server_new(&d->loop, NULL, routes_handle, &d->drv);
	http_server_set_tls(d->drv.plugin_server, d->tls);
	http_server_on_refusal(d->drv.plugin_server, on_tls_refusal, "plugin");
	for (unsigned i = 0; i < d->cfg.n_listen; i++) {
		if ((rc = http_server_listen(d->drv.plugin_server, d->cfg.listen[i], &why)) < 0) {
			log_error("driver-server.listen-failed", json_pack("{s:s, s:s}", "address", d->cfg.listen[i], "error", why));
			fprintf(stderr, "nfsv3driver: cannot listen on %s: %s\n", d->cfg.listen[i], why);
			exit(1);
		}
	}
	if (d->cfg.admin) {
		d->drv.admin_server = http_server_new(&d->loop, NULL, routes_handle_admin, &d->drv);
		http_server_set_tls(d->drv.admin_server, d->tls);
		http_server_on_refusal(d->drv.admin_server, on_tls_refusal, "admin");
		if ((rc = http_server_listen(d->drv.admin_server, d->cfg.admin, &why)) < 0) {
			fprintf(stderr, "nfsv3driver: cannot listen on %s: %s\n", d->cfg.admin, why);
			exit(1);
		}
	}
}

static void prepare_mount_root(struct daemon *d)
{
	char kernel_dir[PATH_MAX];

	if (mkdir(d->cfg.mount_root, 0755) != 0 && errno != EEXIST)
		usage_error("--mount-root %s: %s", d->cfg.mount_root, strerror(errno));
	/* Mountpoints are compared with the kernel's table: use the real path. */
	if (!realpath(d->cfg.mount_root, d->mount_root))
		usage_error("--mount-root %s: %s", d->cfg.mount_root, strerror(errno));
	d->cfg.mount_root = d->mount_root;
	snprintf(kernel_dir, sizeof(kernel_dir), "%s/%s", d->mount_root, NFSV3_KERNEL_DIR);
	if (mkdir(kernel_dir, 0700) != 0 && errno != EEXIST)
		log_error("mount-root.kernel-dir-failed", json_pack("{s:s, s:s}", "path", kernel_dir, "error", strerror(errno)));
}

/*
 * Every connection is a descriptor, and every idmapfs (which inherits this
 * limit) holds one per inode the kernel remembers: the default soft limit
 * of 1024 is far too low for either. Take the hard limit.
 */
static void raise_fd_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
			log_error("rlimit.raise-failed", json_pack("{s:s}", "error", strerror(errno)));
	}
}

static void on_sweep(uv_timer_t *timer)
{
	struct daemon *d = timer->data;

	if (!d->drv.stopping)
		lifecycle_sweep(&d->drv, time(NULL), (time_t)d->cfg.forget_unmounted_after_s);
}

/* Often enough that a volume outlives its age by at most a quarter of it, and at least once a minute. */
static void start_sweep(struct daemon *d)
{
	uint64_t every_s = d->cfg.forget_unmounted_after_s / 4;

	uv_timer_init(&d->loop, &d->sweep_timer);
	d->sweep_timer.data = d;
	if (!d->cfg.forget_unmounted_after_s)
		return;
	every_s = every_s < 1 ? 1 : every_s > 60 ? 60 : every_s;
	uv_timer_start(&d->sweep_timer, on_sweep, every_s * 1000, every_s * 1000);
}

/* check-policy [FILE]: what a SIGHUP or the next mount would make of the file. */
/*
 * `nfsv3driver smoke ARGS` runs nfsv3driver-smoke ARGS from this binary's
 * directory: the check does blocking I/O on the mount as the app's uid,
 * which has no place in the daemon, and operators keep the old spelling.
 * argv[0] is "smoke"; it becomes the tool's path.
 */
static int exec_smoke(char **argv)
{
	char self[PATH_MAX], tool[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0) {
		fprintf(stderr, "nfsv3driver smoke: cannot find my own binary (/proc/self/exe): %s\n", strerror(errno));
		return 1;
	}
	self[n] = '\0';
	snprintf(tool, sizeof(tool), "%s/%s", dirname(self), NFSV3_TOOL_SMOKE);
	argv[0] = tool;
	execv(tool, argv);
	fprintf(stderr, "nfsv3driver smoke: %s: %s\n", tool, strerror(errno));
	return 1;
}

static int check_policy_main(int argc, char **argv)
{
	const char *file = argc > 1 ? argv[1] : NFSV3_POLICY_FILE;
	char why[POLICY_WHY_MAX];
	struct policy *policy;
	bool missing;

	if (argc > 2) {
		fputs("usage: nfsv3driver check-policy [FILE]\n", stderr);
		return EXIT_USAGE;
	}
	if (!(policy = policy_load(file, &missing, why, sizeof(why)))) {
		fprintf(stderr, "nfsv3driver: policy %s%s\n", why,
			missing ? " (no file: the driver and the helper would allow every binding)" : "");
		return 1;
	}
	printf("%s: %u rules, valid\n", file, policy_rule_count(policy));
	policy_free(policy);
	return 0;
}

/*
 * The policy: the daemon checks it for its answers, the mount helper reads
 * it again for itself. Unprivileged, the daemon can only use the file the
 * helper was built to read (otherwise the two would disagree); as root (in
 * development) it may name another, and tells the helpers, which accept it
 * from a root caller only.
 */
static void start_policy(struct daemon *d)
{
	struct error *err;

	if (d->policy && geteuid() != 0 && strcmp(d->policy, NFSV3_POLICY_FILE) != 0)
		usage_error("--policy %s: the mount helper reads only %s (fixed when it was built) unless the driver runs "
			    "as root; give that path or build with POLICY_FILE=%s",
			    d->policy, NFSV3_POLICY_FILE, d->policy);
	if ((err = policy_gate_start(d->policy)))
		usage_error("%s", err->message);
	if (geteuid() == 0) {
		snprintf(d->policy_env, sizeof(d->policy_env), "%s=%s", NFSV3_POLICY_ENV, policy_gate_path());
		helper_env[HELPER_ENV_SPARE] = d->policy_env;
	}
}

static void on_reconciled_saved(struct error *err, void *data)
{
	struct daemon *d = data;

	if (err)
		log_error("state.save-failed", json_pack("{s:s}", "error", err->message));
	on_idle(&d->drv);
}

int main(int argc, char **argv)
{
	/* Static storage: what it holds stays reachable until the process ends. */
	static struct daemon daemon;
	struct daemon *d = &daemon;
	const char *helper_dir = NULL;
	struct error *err = NULL;
	int changes;

	if (argc > 1 && strcmp(argv[1], "smoke") == 0)
		return exec_smoke(argv + 1);
	if (argc > 1 && strcmp(argv[1], "check-policy") == 0)
		return check_policy_main(argc - 1, argv + 1);
	parse_args(d, argc, argv, &helper_dir);
	log_setup(d->cfg.name, d->cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	prepare_mount_root(d);
	find_helpers(&d->drv, helper_dir);

	start_policy(d);
	if (d->cfg.tls_cert) {
		char why[512];
		if (!(d->tls = load_tls(d, why, sizeof(why))))
			usage_error("%s", why);
	}

	uv_loop_init(&d->loop);
	d->drv.loop = &d->loop;
	d->drv.cfg = &d->cfg;
	d->drv.on_idle = on_idle;
	snprintf(d->drv.state_path, sizeof(d->drv.state_path), "%s/%s", d->mount_root, NFSV3_STATE_FILE);
	if (registry_init(&d->drv.reg) < 0)
		return 1;
	if ((err = state_load(d->drv.state_path, &d->drv.reg, &d->cfg))) {
		/* The operator must see this one: on stderr too, beside the JSON log. */
		log_error("state.load-failed", json_pack("{s:s}", "error", err->message));
		fprintf(stderr, "nfsv3driver: %s\n", err->message);
		error_free(err);
	}
	d->drv.helpers = helper_pool_new(&d->loop, d->cfg.max_parallel, d->cfg.helper_timeout_s);
	d->drv.state = state_writer_new(&d->loop, d->drv.state_path, &d->drv.reg);
	if (d->cfg.ldap && !(d->drv.directory = directory_new(&d->loop, &d->ldap, &err)))
		usage_error("%s", err->message);
	if (!d->drv.helpers || !d->drv.state)
		return 1;
	changes = reconcile(&d->drv, "/proc/self/mountinfo", &err);
	if (changes < 0) {
		log_error("reconcile.failed", json_pack("{s:s}", "error", err->message));
		error_free(err);
	} else if (changes > 0) {
		state_commit(d->drv.state, on_reconciled_saved, d);
	}

	listen_all(d);
	uv_signal_init(&d->loop, &d->sigterm);
	uv_signal_init(&d->loop, &d->sigint);
	uv_timer_init(&d->loop, &d->shutdown_timer);
	uv_signal_start(&d->sigterm, on_signal, SIGTERM);
	uv_signal_start(&d->sigint, on_signal, SIGINT);
	uv_signal_init(&d->loop, &d->sighup);
	uv_signal_start(&d->sighup, on_sighup, SIGHUP);
	uv_timer_init(&d->loop, &d->expiry_timer);
	d->sigterm.data = d->sigint.data = d->sighup.data = d;
	d->shutdown_timer.data = d->expiry_timer.data = d;
	if (d->tls) {
		check_expiry(&d->expiry_timer);
		uv_timer_start(&d->expiry_timer, check_expiry, TLS_EXPIRY_CHECK_MS, TLS_EXPIRY_CHECK_MS);
	}
	start_sweep(d);
	if (d->cfg.drivers_path)
		write_spec_file(d);

	json_t *listening = json_array();
	for (unsigned i = 0; i < d->cfg.n_listen; i++)
		json_array_append_new(listening, json_string(d->cfg.listen[i]));
	log_info("driver-server.started",
		 json_pack("{s:o, s:s*, s:s, s:I, s:b, s:b, s:I}", "listen", listening, "admin", d->cfg.admin, "mount_root",
			   d->mount_root, "volumes", (json_int_t)d->drv.reg.n_volumes, "allow_local_sources",
			   d->cfg.allow_local_sources, "tls", d->tls != NULL, "forget_unmounted_after_s",
			   (json_int_t)d->cfg.forget_unmounted_after_s));
	uv_run(&d->loop, UV_RUN_DEFAULT);
	if (d->closing == 0 && uv_loop_alive(&d->loop)) {
		/* Shutdown grace expired with work in flight: exit regardless. */
		if (d->spec_path[0])
			unlink(d->spec_path);
		return 0;
	}
	if (d->drv.directory) {
		directory_free(d->drv.directory);
		uv_run(&d->loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(&d->loop);
	state_writer_free(d->drv.state);
	helper_pool_free(d->drv.helpers);
	registry_destroy(&d->drv.reg);
	kernel_free_all(&d->drv);
	policy_gate_free();
	SSL_CTX_free(d->tls);
	return 0;
}
