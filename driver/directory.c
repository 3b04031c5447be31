#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <lber.h>
#include <ldap.h>

#include "nfsv3driver.h"
#include "directory.h"
#include "metrics.h"
#include "log.h"

/* Workers bound how many lookups wait on the directory at once; the pool keeps one connection per worker. */
#define DIRECTORY_WORKERS 8
#define DIRECTORY_FILTER_MAX 4096
#define DIRECTORY_PASSWORD_MAX 4096
#define DIRECTORY_ENV_PASSWORD "NFSV3DRIVER_LDAP_SVC_PASSWORD"

/* ---- secrets ---- */

struct secret {
	size_t len, mapped;
	char text[]; /* NUL-terminated */
};

/*
 * A page of its own, so that it can be locked (never swapped) and left out
 * of core dumps without touching the heap around it.
 */
struct secret *secret_new(const char *text, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t size = (sizeof(struct secret) + len + 1 + page - 1) / page * page;
	struct secret *s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (s == MAP_FAILED)
		return NULL;
	madvise(s, size, MADV_DONTDUMP);
	(void)mlock(s, size); /* best effort: RLIMIT_MEMLOCK may say no */
	s->mapped = size;
	s->len = len;
	memcpy(s->text, text, len);
	s->text[len] = '\0';
	return s;
}

const char *secret_text(const struct secret *s)
{
	return s->text;
}

size_t secret_len(const struct secret *s)
{
	return s->len;
}

void secret_free(struct secret *s)
{
	size_t size;

	if (!s)
		return;
	size = s->mapped;
	explicit_bzero(s, size);
	munlock(s, size);
	munmap(s, size);
}

/* ---- configuration ---- */

void directory_config_init(struct directory_config *cfg)
{
	*cfg = (struct directory_config){
		.user_filter = "(&(objectClass=User)(cn=%s))",
		.uid_attr = "uidNumber",
		.gid_attr = "gidNumber",
		.timeout_s = 10,
	};
}

bool directory_configured(const struct directory_config *cfg)
{
	return cfg->n_hosts > 0;
}

/* A DNS name, an IPv4 address or an IPv6 literal (bare or in brackets). */
static bool host_valid(const char *host)
{
	size_t n = strlen(host);

	if (n == 0 || n > 253)
		return false;
	return strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:[]") == n;
}

/* The filter takes the escaped user name wherever it says %s, and no other % directive. */
static bool filter_valid(const char *filter)
{
	bool has_name = false;

	if (filter[0] != '(' || strlen(filter) > 1024)
		return false;
	for (const char *p = strchr(filter, '%'); p; p = strchr(p + 2, '%')) {
		if (p[1] != 's')
			return false;
		has_name = true;
	}
	return has_name;
}

static const char *set_hosts(struct directory_config *cfg, const char *value)
{
	char *copy = strdup(value), *save = NULL;

	if (!copy)
		return "out of memory";
	cfg->n_hosts = 0;
	for (char *host = strtok_r(copy, ",", &save); host; host = strtok_r(NULL, ",", &save)) {
		if (cfg->n_hosts == DIRECTORY_MAX_HOSTS || !host_valid(host)) {
			free(copy);
			cfg->n_hosts = 0;
			return "expected HOST[,HOST...]: up to 8 DNS names or addresses";
		}
		cfg->hosts[cfg->n_hosts++] = host;
	}
	if (cfg->n_hosts == 0) {
		free(copy);
		return "expected HOST[,HOST...]: up to 8 DNS names or addresses";
	}
	/* The strings point into copy, which lives as long as the process. */
	return NULL;
}

static const char *set_number(unsigned *out, const char *value, unsigned long min, unsigned long max,
			      const char *expected)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(value, &end, 10);
	if (!*value || *value == '-' || *value == '+' || *end || errno || n < min || n > max)
		return expected;
	*out = (unsigned)n;
	return NULL;
}

static bool attribute_valid(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= 64 &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-;") == n;
}

const char *directory_config_set(struct directory_config *cfg, const char *flag, const char *value)
{
	if (strcmp(flag, "ldap-host") == 0)
		return set_hosts(cfg, value);
	if (strcmp(flag, "ldap-port") == 0)
		return set_number(&cfg->port, value, 1, 65535, "expected a port from 1 to 65535");
	if (strcmp(flag, "ldap-timeout") == 0)
		return set_number(&cfg->timeout_s, value, 1, 300, "expected whole seconds from 1 to 300");
	if (strcmp(flag, "ldap-svc-user") == 0) {
		cfg->svc_user = value;
		return *value ? NULL : "expected the service user's DN";
	}
	if (strcmp(flag, "ldap-svc-password-file") == 0) {
		cfg->svc_password_file = value;
		return value[0] == '/' ? NULL : "expected an absolute path of a file holding the password";
	}
	if (strcmp(flag, "ldap-user-fqdn") == 0) {
		cfg->user_base = value;
		return *value ? NULL : "expected the base DN users are searched under";
	}
	if (strcmp(flag, "ldap-ca-cert") == 0) {
		cfg->ca_cert = value;
		return value[0] == '/' ? NULL : "expected an absolute path of a PEM file";
	}
	if (strcmp(flag, "ldap-starttls") == 0) {
		cfg->starttls = true;
		return NULL;
	}
	if (strcmp(flag, "ldap-insecure-plaintext") == 0) {
		cfg->insecure_plaintext = true;
		return NULL;
	}
	if (strcmp(flag, "ldap-user-filter") == 0) {
		cfg->user_filter = value;
		return filter_valid(value) ? NULL
					   : "expected an LDAP filter in parentheses with %s for the user name and no other %";
	}
	if (strcmp(flag, "ldap-uid-attr") == 0 || strcmp(flag, "ldap-gid-attr") == 0) {
		*(flag[5] == 'u' ? &cfg->uid_attr : &cfg->gid_attr) = value;
		return attribute_valid(value) ? NULL : "expected an attribute name";
	}
	return "not an LDAP option";
}

/* ---- the resolver ---- */

struct connection {
	LDAP *ld;
	bool as_user; /* last bound as a user: bind as the service again before use */
	char host[256];
	struct directory *dir;
	struct ldap_conncb cb; /* tells us the socket, for the watchdog */
	/* under dir->lock */
	int fd;               /* libldap's socket while it is open, else -1 */
	uint64_t deadline_ns; /* a call is running that must end by then; 0 when none */
	bool cut;             /* the watchdog shut the socket down */
	struct connection *live_next;
};

struct request {
	struct directory *dir;
	const char *username;
	const struct secret *password;
	directory_cb cb;
	void *data;
	uint64_t started_ns;
	/* the answer */
	struct error *err;
	uint32_t uid, gid;
	bool not_found, wrong_password; /* what err says, for /metrics */
	struct request *next;
};

struct directory {
	uv_loop_t *loop;
	struct directory_config cfg;
	enum directory_transport transport;
	unsigned port;
	struct secret *svc_password;
	uv_async_t async;
	pthread_t workers[DIRECTORY_WORKERS];
	unsigned n_workers;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	struct request *queue_head, *queue_tail; /* waiting for a worker */
	struct request *done;                    /* answered, for the loop */
	struct connection *idle[DIRECTORY_WORKERS];
	unsigned n_idle;
	struct connection *live; /* every open connection, for the watchdog */
	uv_timer_t watchdog;
	int open_handles; /* closing: handles whose close callback has not run */
};

static const char *transport_name(enum directory_transport t)
{
	return t == DIRECTORY_LDAPS ? "ldaps" : t == DIRECTORY_STARTTLS ? "starttls" : "plaintext";
}

/* What the server or libldap said, with its diagnostic when it has one (TLS errors do). */
static void describe(LDAP *ld, int rc, char *buf, size_t size)
{
	char *diag = NULL;

	if (ld)
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	if (diag && *diag)
		snprintf(buf, size, "%s (%s)", ldap_err2string(rc), diag);
	else
		snprintf(buf, size, "%s", ldap_err2string(rc));
	ldap_memfree(diag);
}

static bool is_transport_failure(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR || rc == LDAP_UNAVAILABLE ||
	       rc == LDAP_BUSY;
}

static void connection_close(struct connection *c)
{
	struct connection **p;

	if (!c)
		return;
	if (c->ld)
		ldap_unbind_ext_s(c->ld, NULL, NULL);
	pthread_mutex_lock(&c->dir->lock);
	for (p = &c->dir->live; *p; p = &(*p)->live_next)
		if (*p == c) {
			*p = c->live_next;
			break;
		}
	pthread_mutex_unlock(&c->dir->lock);
	free(c);
}

/*
 * libldap bounds the TCP connect (network timeout) and each request
 * (timeout), but not a TLS handshake: against a server that accepted and
 * went silent it blocks in read() for ever. Every call is therefore armed
 * with a deadline, and the watchdog (a timer on the loop) shuts down the
 * socket of a call that overstays it; libldap then fails the call at once.
 */
static void arm(struct connection *c, unsigned seconds)
{
	pthread_mutex_lock(&c->dir->lock);
	c->deadline_ns = seconds ? uv_hrtime() + (uint64_t)seconds * 1000000000ULL : 0;
	pthread_mutex_unlock(&c->dir->lock);
}

static bool was_cut(struct connection *c)
{
	bool cut;

	pthread_mutex_lock(&c->dir->lock);
	cut = c->cut;
	pthread_mutex_unlock(&c->dir->lock);
	return cut;
}

static void on_watchdog(uv_timer_t *timer)
{
	struct directory *dir = timer->data;
	uint64_t now = uv_hrtime();

	pthread_mutex_lock(&dir->lock);
	for (struct connection *c = dir->live; c; c = c->live_next)
		if (c->deadline_ns && now > c->deadline_ns && c->fd >= 0 && !c->cut) {
			shutdown(c->fd, SHUT_RDWR);
			c->cut = true;
		}
	pthread_mutex_unlock(&dir->lock);
}

static int on_connected(LDAP *ld, Sockbuf *sb, LDAPURLDesc *srv, struct sockaddr *addr, struct ldap_conncb *cb)
{
	struct connection *c = cb->lc_arg;
	int fd = -1;

	if (ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &fd) != 1)
		fd = -1;
	pthread_mutex_lock(&c->dir->lock);
	c->fd = fd;
	pthread_mutex_unlock(&c->dir->lock);
	return 0;
}

/* Before libldap closes the socket: the watchdog must never touch a number that may be reused. */
static void on_disconnected(LDAP *ld, Sockbuf *sb, struct ldap_conncb *cb)
{
	struct connection *c = cb->lc_arg;

	pthread_mutex_lock(&c->dir->lock);
	c->fd = -1;
	pthread_mutex_unlock(&c->dir->lock);
}

static int bind_simple(struct connection *c, const char *dn, const char *password, size_t len, unsigned seconds)
{
	struct berval cred = { .bv_len = len, .bv_val = (char *)password };
	int rc;

	arm(c, seconds);
	rc = ldap_sasl_bind_s(c->ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	arm(c, 0);
	return rc;
}

/* Open and bind as the service user on one host; rc is libldap's, why says what went wrong. */
static int connection_open(struct directory *dir, const char *host, struct connection **out, char *why, size_t size)
{
	struct timeval tv = { .tv_sec = dir->cfg.timeout_s };
	int version = LDAP_VERSION3, hard = LDAP_OPT_X_TLS_HARD, zero = 0, rc;
	struct connection *c = calloc(1, sizeof(*c));
	char uri[300];
	bool literal6 = strchr(host, ':') && host[0] != '[';

	if (!c) {
		snprintf(why, size, "out of memory");
		return LDAP_NO_MEMORY;
	}
	c->dir = dir;
	c->fd = -1;
	c->cb = (struct ldap_conncb){ .lc_add = on_connected, .lc_del = on_disconnected, .lc_arg = c };
	pthread_mutex_lock(&dir->lock);
	c->live_next = dir->live;
	dir->live = c;
	pthread_mutex_unlock(&dir->lock);
	snprintf(c->host, sizeof(c->host), "%s%s%s:%u", literal6 ? "[" : "", host, literal6 ? "]" : "", dir->port);
	snprintf(uri, sizeof(uri), "%s://%s", dir->transport == DIRECTORY_LDAPS ? "ldaps" : "ldap", c->host);
	if ((rc = ldap_initialize(&c->ld, uri)) != LDAP_SUCCESS) {
		snprintf(why, size, "%s", ldap_err2string(rc));
		c->ld = NULL;
		connection_close(c);
		return rc;
	}
	ldap_set_option(c->ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	ldap_set_option(c->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF); /* never carry a password elsewhere */
	ldap_set_option(c->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
	ldap_set_option(c->ld, LDAP_OPT_TIMEOUT, &tv);
	ldap_set_option(c->ld, LDAP_OPT_CONNECT_CB, &c->cb);
	if (dir->transport != DIRECTORY_PLAINTEXT) {
		ldap_set_option(c->ld, LDAP_OPT_X_TLS_CACERTFILE, dir->cfg.ca_cert);
		ldap_set_option(c->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &hard);
		ldap_set_option(c->ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
	}
	/* The first call connects, and shakes hands for LDAPS: the connect and the handshake each get the timeout. */
	rc = LDAP_SUCCESS;
	if (dir->transport == DIRECTORY_STARTTLS) {
		arm(c, 2 * dir->cfg.timeout_s + 1);
		rc = ldap_start_tls_s(c->ld, NULL, NULL);
		arm(c, 0);
	}
	if (rc == LDAP_SUCCESS)
		rc = bind_simple(c, dir->cfg.svc_user, secret_text(dir->svc_password), secret_len(dir->svc_password),
				 2 * dir->cfg.timeout_s + 1);
	if (rc != LDAP_SUCCESS) {
		char said[512];
		describe(c->ld, rc, said, sizeof(said));
		if (was_cut(c))
			rc = LDAP_TIMEOUT;
		if (rc == LDAP_TIMEOUT)
			snprintf(why, size, "%s: %s %u s", c->host, NFSV3_ERR_TIMEOUT, dir->cfg.timeout_s);
		else if (rc == LDAP_INVALID_CREDENTIALS)
			snprintf(why, size, "%s: the service user %s was refused: %s", c->host, dir->cfg.svc_user, said);
		else
			snprintf(why, size, "%s: %s", c->host, said);
		connection_close(c);
		return rc;
	}
	*out = c;
	return LDAP_SUCCESS;
}

/* A connection bound as the service: from the pool, or a new one (hosts in order). */
static struct error *connection_get(struct directory *dir, struct connection **out, bool *reused)
{
	struct connection *c = NULL;
	char why[DIRECTORY_MAX_HOSTS][600], all[DIRECTORY_MAX_HOSTS * 600];
	size_t len = 0;
	int rc = LDAP_SUCCESS;
	bool timed_out = false;

	pthread_mutex_lock(&dir->lock);
	if (dir->n_idle)
		c = dir->idle[--dir->n_idle];
	pthread_mutex_unlock(&dir->lock);
	if (c) {
		if (c->as_user) {
			rc = bind_simple(c, dir->cfg.svc_user, secret_text(dir->svc_password),
					 secret_len(dir->svc_password), dir->cfg.timeout_s + 1);
			c->as_user = false;
		}
		if (rc == LDAP_SUCCESS) {
			*out = c;
			*reused = true;
			return NULL;
		}
		connection_close(c);
	}
	*reused = false;
	for (unsigned i = 0; i < dir->cfg.n_hosts; i++) {
		rc = connection_open(dir, dir->cfg.hosts[i], out, why[i], sizeof(why[i]));
		if (rc == LDAP_SUCCESS) {
			if (i > 0)
				log_info("ldap.failover", json_pack("{s:s, s:s}", "host", (*out)->host, "skipped", why[0]));
			return NULL;
		}
		timed_out |= rc == LDAP_TIMEOUT;
		len += (size_t)snprintf(all + len, sizeof(all) - len, "%s%s", i ? "; " : "", why[i]);
		if (len >= sizeof(all))
			len = sizeof(all) - 1;
	}
	return error_new(timed_out ? ERROR_TIMEOUT : ERROR_MOUNT, "%s (%s): %s", NFSV3_ERR_LDAP_UNREACHABLE,
			 transport_name(dir->transport), all);
}

static void connection_put(struct directory *dir, struct connection *c)
{
	pthread_mutex_lock(&dir->lock);
	if (dir->n_idle < DIRECTORY_WORKERS && !dir->stopping) {
		dir->idle[dir->n_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&dir->lock);
	connection_close(c);
}

/* RFC 4515: the user name can never add to the filter (a "*" matches no one but a user called "*"). */
static char *escape_filter_value(const char *value)
{
	size_t n = strlen(value);
	char *out = malloc(n * 3 + 1), *p = out;

	if (!out)
		return NULL;
	for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
		if (*s == '*' || *s == '(' || *s == ')' || *s == '\\' || *s < 0x20 || *s == 0x7f)
			p += sprintf(p, "\\%02x", *s);
		else
			*p++ = (char)*s;
	}
	*p = '\0';
	return out;
}

static char *build_filter(const char *pattern, const char *username)
{
	char *escaped = escape_filter_value(username), *out, *p;
	size_t n = strlen(escaped ? escaped : ""), size = strlen(pattern) + 1;

	if (!escaped)
		return NULL;
	for (const char *s = strstr(pattern, "%s"); s; s = strstr(s + 2, "%s"))
		size += n;
	if (size > DIRECTORY_FILTER_MAX || !(out = malloc(size))) {
		free(escaped);
		return NULL;
	}
	p = out;
	for (const char *s = pattern; *s;) {
		if (s[0] == '%' && s[1] == 's') {
			memcpy(p, escaped, n);
			p += n;
			s += 2;
		} else {
			*p++ = *s++;
		}
	}
	*p = '\0';
	free(escaped);
	return out;
}

/* One id attribute of the entry: *present false when absent; an error for anything but one number from 1. */
static struct error *read_id(LDAP *ld, LDAPMessage *entry, const char *attr, const char *username, bool *present,
			     uint32_t *out)
{
	struct berval **values = ldap_get_values_len(ld, entry, attr);
	struct error *err = NULL;
	char text[32];
	unsigned long long n;
	char *end;

	*present = values && values[0];
	if (!*present) {
		ldap_value_free_len(values);
		return NULL;
	}
	if (values[1])
		err = error_new(ERROR_INVALID, "LDAP user %s has %s more than once: expected one number", username, attr);
	else if (values[0]->bv_len == 0 || values[0]->bv_len >= sizeof(text))
		err = error_new(ERROR_INVALID, "LDAP user %s has a %s that is not a number", username, attr);
	if (!err) {
		memcpy(text, values[0]->bv_val, values[0]->bv_len);
		text[values[0]->bv_len] = '\0';
		errno = 0;
		n = strtoull(text, &end, 10);
		if (text[0] < '0' || text[0] > '9' || *end || errno || n > 4294967294ULL)
			err = error_new(ERROR_INVALID, "LDAP user %s has %s \"%s\": expected a number from 1 to 4294967294",
					username, attr, text);
		else if (n == 0)
			err = error_new(ERROR_INVALID, "%s: LDAP user %s has %s 0, which is never mapped", NFSV3_ERR_LDAP_ROOT,
					username, attr);
		else
			*out = (uint32_t)n;
	}
	ldap_value_free_len(values);
	return err;
}

/* Search for the user and take the ids; *dn gets the entry's DN. rc is libldap's (for retrying). */
static struct error *find_user(struct directory *dir, struct connection *c, struct request *req, char **dn, int *rc_out)
{
	LDAP *ld = c->ld;
	struct timeval tv = { .tv_sec = dir->cfg.timeout_s };
	char *attrs[] = { (char *)dir->cfg.uid_attr, (char *)dir->cfg.gid_attr, NULL };
	char *filter = build_filter(dir->cfg.user_filter, req->username), said[512];
	LDAPMessage *res = NULL, *entry;
	struct error *err = NULL;
	bool has_uid, has_gid;
	int rc, count;

	*rc_out = LDAP_SUCCESS;
	if (!filter)
		return error_new(ERROR_INVALID, "LDAP user name %.64s...: too long for the search filter", req->username);
	arm(c, dir->cfg.timeout_s + 1);
	rc = ldap_search_ext_s(ld, dir->cfg.user_base, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, &tv, 2, &res);
	arm(c, 0);
	free(filter);
	*rc_out = rc;
	if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
		describe(ld, rc, said, sizeof(said));
		ldap_msgfree(res);
		if (rc == LDAP_TIMEOUT)
			return error_new(ERROR_TIMEOUT, "%s %u s searching the LDAP directory for user %s", NFSV3_ERR_TIMEOUT,
					 dir->cfg.timeout_s, req->username);
		if (rc == LDAP_NO_SUCH_OBJECT)
			return error_new(ERROR_MOUNT, "searching the LDAP directory for user %s: base %s does not exist",
					 req->username, dir->cfg.user_base);
		return error_new(is_transport_failure(rc) ? ERROR_MOUNT : ERROR_INVALID,
				 "searching the LDAP directory for user %s: %s", req->username, said);
	}
	count = ldap_count_entries(ld, res);
	req->not_found = count == 0;
	if (count == 0)
		err = error_new(ERROR_INVALID, "%s: %s (under %s)", NFSV3_ERR_LDAP_UNKNOWN_USER, req->username,
				dir->cfg.user_base);
	else if (count > 1 || rc == LDAP_SIZELIMIT_EXCEEDED)
		err = error_new(ERROR_INVALID, "%s: %s matches more than one entry under %s", NFSV3_ERR_LDAP_AMBIGUOUS,
				req->username, dir->cfg.user_base);
	if (err) {
		ldap_msgfree(res);
		return err;
	}
	entry = ldap_first_entry(ld, res);
	if (!(err = read_id(ld, entry, dir->cfg.uid_attr, req->username, &has_uid, &req->uid)) && !has_uid)
		err = error_new(ERROR_INVALID, "%s %s: LDAP user %s cannot be mapped", NFSV3_ERR_LDAP_NO_UID,
				dir->cfg.uid_attr, req->username);
	if (!err && !(err = read_id(ld, entry, dir->cfg.gid_attr, req->username, &has_gid, &req->gid)) && !has_gid)
		req->gid = req->uid; /* upstream's rule: no gidNumber, the group is the uid */
	if (!err && !(*dn = ldap_get_dn(ld, entry)))
		err = error_new(ERROR_INTERNAL, "LDAP user %s: the entry has no DN", req->username);
	ldap_msgfree(res);
	return err;
}

/* Prove the password by binding as the entry; the connection then needs the service bind again. */
static struct error *prove_password(struct directory *dir, struct connection *c, struct request *req, const char *dn,
				    int *rc_out)
{
	char said[512];
	int rc;

	c->as_user = true;
	rc = bind_simple(c, dn, secret_text(req->password), secret_len(req->password), dir->cfg.timeout_s + 1);
	*rc_out = rc;
	if (rc == LDAP_SUCCESS)
		return NULL;
	if (rc == LDAP_INVALID_CREDENTIALS) {
		req->wrong_password = true;
		return error_new(ERROR_INVALID, "%s %s", NFSV3_ERR_LDAP_WRONG_PASSWORD, req->username);
	}
	if (rc == LDAP_TIMEOUT)
		return error_new(ERROR_TIMEOUT, "%s %u s checking the password of LDAP user %s", NFSV3_ERR_TIMEOUT,
				 dir->cfg.timeout_s, req->username);
	describe(c->ld, rc, said, sizeof(said));
	return error_new(is_transport_failure(rc) ? ERROR_MOUNT : ERROR_INVALID,
			 "checking the password of LDAP user %s: %s", req->username, said);
}

static void resolve_once(struct directory *dir, struct request *req, bool *retry)
{
	struct connection *c = NULL;
	char *dn = NULL;
	bool reused = false;
	int rc = LDAP_SUCCESS;

	*retry = false;
	if ((req->err = connection_get(dir, &c, &reused)))
		return;
	req->err = find_user(dir, c, req, &dn, &rc);
	if (!req->err)
		req->err = prove_password(dir, c, req, dn, &rc);
	ldap_memfree(dn);
	if (is_transport_failure(rc)) {
		/* A kept connection the server has since dropped: try once on a fresh one. */
		*retry = reused;
		connection_close(c);
		return;
	}
	connection_put(dir, c);
}

static void *worker_main(void *arg)
{
	struct directory *dir = arg;
	struct request *req;
	bool retry;

	for (;;) {
		pthread_mutex_lock(&dir->lock);
		while (!dir->queue_head && !dir->stopping)
			pthread_cond_wait(&dir->wake, &dir->lock);
		if (!dir->queue_head) {
			pthread_mutex_unlock(&dir->lock);
			return NULL;
		}
		req = dir->queue_head;
		dir->queue_head = req->next;
		if (!dir->queue_head)
			dir->queue_tail = NULL;
		pthread_mutex_unlock(&dir->lock);

		resolve_once(dir, req, &retry);
		if (retry) {
			error_free(req->err);
			req->err = NULL;
			resolve_once(dir, req, &retry);
		}
		pthread_mutex_lock(&dir->lock);
		req->next = dir->done;
		dir->done = req;
		pthread_mutex_unlock(&dir->lock);
		uv_async_send(&dir->async);
	}
}

/* A finished lookup's outcome, for /metrics (on the loop). */
static void count_outcome(const struct request *req)
{
	enum metric_counter counter = METRIC_LDAP_LOOKUPS_ERROR;
	if (!req->err)
		counter = METRIC_LDAP_LOOKUPS_FOUND;
	else if (req->not_found)
		counter = METRIC_LDAP_LOOKUPS_NOT_FOUND;
	else if (req->wrong_password)
		counter = METRIC_LDAP_LOOKUPS_INVALID_CREDENTIALS;
	else if (req->err->code == ERROR_TIMEOUT)
		counter = METRIC_LDAP_LOOKUPS_TIMEOUT;
	metrics_count(counter);
}

static void on_answers(uv_async_t *async)
{
	struct directory *dir = async->data;
	struct request *list, *reversed = NULL, *next;

	pthread_mutex_lock(&dir->lock);
	list = dir->done;
	dir->done = NULL;
	pthread_mutex_unlock(&dir->lock);
	for (; list; list = next) {
		next = list->next;
		list->next = reversed;
		reversed = list;
	}
	for (; reversed; reversed = next) {
		next = reversed->next;
		count_outcome(reversed);
		reversed->cb(reversed->err, reversed->uid, reversed->gid,
			     (double)(uv_hrtime() - reversed->started_ns) / 1e6, reversed->data);
		free(reversed);
	}
}

void directory_resolve(struct directory *dir, const char *username, const struct secret *password, directory_cb cb,
		       void *data)
{
	struct request *req = calloc(1, sizeof(*req));

	if (!req) {
		cb(error_new(ERROR_INTERNAL, "out of memory"), 0, 0, 0, data);
		return;
	}
	*req = (struct request){ .dir = dir, .username = username, .password = password, .cb = cb, .data = data,
				 .started_ns = uv_hrtime() };
	pthread_mutex_lock(&dir->lock);
	if (dir->queue_tail)
		dir->queue_tail->next = req;
	else
		dir->queue_head = req;
	dir->queue_tail = req;
	pthread_cond_signal(&dir->wake);
	pthread_mutex_unlock(&dir->lock);
}

/* The service password: the file's first line, else the environment's (then wiped). */
static struct error *read_svc_password(struct directory *dir)
{
	char buf[DIRECTORY_PASSWORD_MAX + 2];
	ssize_t n = 0, got;
	char *env;
	int fd;

	if (dir->cfg.svc_password_file) {
		if ((fd = open(dir->cfg.svc_password_file, O_RDONLY | O_CLOEXEC)) < 0)
			return error_new(ERROR_INVALID, "--ldap-svc-password-file %s: %s", dir->cfg.svc_password_file,
					 strerror(errno));
		while (n < (ssize_t)sizeof(buf) - 1 && (got = read(fd, buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
			n += got;
		close(fd);
		buf[n] = '\0';
		n = (ssize_t)strcspn(buf, "\r\n");
		buf[n] = '\0';
	} else if ((env = getenv(DIRECTORY_ENV_PASSWORD))) {
		n = (ssize_t)strlen(env);
		if (n > DIRECTORY_PASSWORD_MAX)
			n = DIRECTORY_PASSWORD_MAX + 1;
		memcpy(buf, env, (size_t)n);
		explicit_bzero(env, strlen(env));
		unsetenv(DIRECTORY_ENV_PASSWORD);
	} else {
		return error_new(ERROR_INVALID,
				 "--ldap-host: the service password is missing: give --ldap-svc-password-file FILE or set "
				 DIRECTORY_ENV_PASSWORD);
	}
	if (n == 0 || n > DIRECTORY_PASSWORD_MAX) {
		explicit_bzero(buf, sizeof(buf));
		return error_new(ERROR_INVALID, "the LDAP service password is %s: expected 1 to %d bytes",
				 n ? "too long" : "empty", DIRECTORY_PASSWORD_MAX);
	}
	dir->svc_password = secret_new(buf, (size_t)n);
	explicit_bzero(buf, sizeof(buf));
	return dir->svc_password ? NULL : error_new(ERROR_INTERNAL, "out of memory");
}

static struct error *check_config(const struct directory_config *cfg, enum directory_transport *transport)
{
	struct stat st;

	if (!cfg->svc_user || !cfg->user_base)
		return error_new(ERROR_INVALID, "--ldap-host needs --ldap-svc-user DN and --ldap-user-fqdn BASE_DN");
	if (cfg->ca_cert && cfg->insecure_plaintext)
		return error_new(ERROR_INVALID, "--ldap-ca-cert and --ldap-insecure-plaintext: choose TLS or plaintext");
	if (cfg->starttls && !cfg->ca_cert)
		return error_new(ERROR_INVALID, "--ldap-starttls needs --ldap-ca-cert FILE to verify the server");
	if (!cfg->ca_cert && !cfg->insecure_plaintext)
		return error_new(ERROR_INVALID,
				 "--ldap-host: give --ldap-ca-cert FILE (LDAPS, or StartTLS with --ldap-starttls); "
				 "--ldap-insecure-plaintext sends passwords in clear and must be asked for");
	if (cfg->ca_cert && (stat(cfg->ca_cert, &st) != 0 || !S_ISREG(st.st_mode)))
		return error_new(ERROR_INVALID, "--ldap-ca-cert %s: expected a readable PEM file", cfg->ca_cert);
	*transport = cfg->insecure_plaintext ? DIRECTORY_PLAINTEXT : cfg->starttls ? DIRECTORY_STARTTLS : DIRECTORY_LDAPS;
	return NULL;
}

struct directory *directory_new(uv_loop_t *loop, const struct directory_config *cfg, struct error **err)
{
	struct directory *dir = calloc(1, sizeof(*dir));

	if (!dir) {
		*err = error_new(ERROR_INTERNAL, "out of memory");
		return NULL;
	}
	dir->loop = loop;
	dir->cfg = *cfg;
	if ((*err = check_config(cfg, &dir->transport)) || (*err = read_svc_password(dir))) {
		free(dir);
		return NULL;
	}
	dir->port = cfg->port ? cfg->port : dir->transport == DIRECTORY_LDAPS ? 636 : 389;
	pthread_mutex_init(&dir->lock, NULL);
	pthread_cond_init(&dir->wake, NULL);
	uv_async_init(loop, &dir->async, on_answers);
	dir->async.data = dir;
	uv_timer_init(loop, &dir->watchdog);
	dir->watchdog.data = dir;
	uv_timer_start(&dir->watchdog, on_watchdog, 250, 250);
	/* Lookups in flight are operations in flight: these handles alone keep no loop alive. */
	uv_unref((uv_handle_t *)&dir->async);
	uv_unref((uv_handle_t *)&dir->watchdog);
	for (; dir->n_workers < DIRECTORY_WORKERS; dir->n_workers++)
		if (pthread_create(&dir->workers[dir->n_workers], NULL, worker_main, dir) != 0)
			break;
	if (dir->n_workers == 0) {
		*err = error_new(ERROR_INTERNAL, "cannot start LDAP worker threads: %s", strerror(errno));
		directory_free(dir);
		return NULL;
	}
	log_info("ldap.configured", json_pack("{s:s, s:s, s:i, s:s, s:i}", "host", cfg->hosts[0], "transport",
					      transport_name(dir->transport), "port", (int)dir->port, "base", cfg->user_base,
					      "hosts", (int)cfg->n_hosts));
	return dir;
}

static void on_handle_closed(uv_handle_t *handle)
{
	struct directory *dir = handle->data;

	if (--dir->open_handles == 0)
		free(dir);
}

void directory_free(struct directory *dir)
{
	if (!dir)
		return;
	pthread_mutex_lock(&dir->lock);
	dir->stopping = true;
	pthread_cond_broadcast(&dir->wake);
	/* The watchdog runs on this thread, which now waits: cut every call short instead. */
	for (struct connection *c = dir->live; c; c = c->live_next)
		if (c->deadline_ns && c->fd >= 0 && !c->cut) {
			shutdown(c->fd, SHUT_RDWR);
			c->cut = true;
		}
	pthread_mutex_unlock(&dir->lock);
	for (unsigned i = 0; i < dir->n_workers; i++)
		pthread_join(dir->workers[i], NULL);
	/* Answers that came in since: give them before the handle goes. */
	on_answers(&dir->async);
	for (unsigned i = 0; i < dir->n_idle; i++)
		connection_close(dir->idle[i]);
	dir->n_idle = 0;
	secret_free(dir->svc_password);
	dir->svc_password = NULL;
	pthread_mutex_destroy(&dir->lock);
	pthread_cond_destroy(&dir->wake);
	dir->open_handles = 2;
	uv_close((uv_handle_t *)&dir->async, on_handle_closed);
	uv_close((uv_handle_t *)&dir->watchdog, on_handle_closed);
}

struct error *directory_take_password(json_t *opts, struct secret **out)
{
	json_t *value = json_object_get(opts, NFSV3_OPT_PASSWORD);
	size_t len;

	*out = NULL;
	if (!value)
		return error_new(ERROR_INVALID, "%s", NFSV3_ERR_LDAP_NO_PASSWORD);
	if (!json_is_string(value))
		return error_new(ERROR_INVALID, "option password: expected a string");
	len = json_string_length(value);
	if (len == 0)
		return error_new(ERROR_INVALID, "%s: an empty password would be an unauthenticated bind",
				 NFSV3_ERR_LDAP_EMPTY_PASSWORD);
	if (len > DIRECTORY_PASSWORD_MAX || memchr(json_string_value(value), '\0', len))
		return error_new(ERROR_INVALID, "option password: expected 1 to %d bytes without NUL", DIRECTORY_PASSWORD_MAX);
	if (!(*out = secret_new(json_string_value(value), len)))
		return error_new(ERROR_INTERNAL, "out of memory");
	/* jansson's copy is ours (the Opts belong to the operation): wipe it before it is freed. */
	explicit_bzero((char *)json_string_value(value), len);
	return NULL;
}
