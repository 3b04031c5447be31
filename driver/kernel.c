#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfsv3driver.h"
#include "hash.h"
#include "kernel.h"
#include "log.h"
#include "policy_gate.h"

enum km_state { KM_ABSENT, KM_MOUNTING, KM_MOUNTED, KM_UNMOUNTING };

struct km_waiter {
	kernel_cb cb;
	void *data;
	struct km_waiter *next;
};

struct kernel_mount {
	char key[KERNEL_KEY_LEN + 1];
	char *source;       /* HOST:/EXPORT as the kernel shows it */
	char *addr;         /* IP literal */
	char *options;      /* kernel options without addr */
	enum km_state state;
	unsigned users;
	struct km_waiter *waiters; /* acquires queued while mounting or unmounting */
	struct kernel_mount *next;
};

static struct kernel_mount *km_find(struct driver *drv, const char *key)
{
	for (struct kernel_mount *km = drv->kernel_mounts; km; km = km->next)
		if (strcmp(km->key, key) == 0)
			return km;
	return NULL;
}

static struct kernel_mount *km_get(struct driver *drv, const char *key)
{
	struct kernel_mount *km = km_find(drv, key);

	if (km)
		return km;
	km = calloc(1, sizeof(*km));
	if (!km)
		return NULL;
	snprintf(km->key, sizeof(km->key), "%s", key);
	km->next = drv->kernel_mounts;
	drv->kernel_mounts = km;
	return km;
}

static void km_forget(struct driver *drv, struct kernel_mount *km)
{
	for (struct kernel_mount **link = &drv->kernel_mounts; *link; link = &(*link)->next) {
		if (*link == km) {
			*link = km->next;
			free(km->source);
			free(km->addr);
			free(km->options);
			free(km);
			return;
		}
	}
}

void kernel_free_all(struct driver *drv)
{
	while (drv->kernel_mounts)
		km_forget(drv, drv->kernel_mounts);
}

unsigned kernel_users(struct driver *drv, const char *key)
{
	struct kernel_mount *km = km_find(drv, key);

	return km ? km->users : 0;
}

void kernel_count(const struct driver *drv, uint64_t *mounts, uint64_t *users)
{
	*mounts = *users = 0;
	for (const struct kernel_mount *km = drv->kernel_mounts; km; km = km->next) {
		if (km->state != KM_MOUNTED)
			continue;
		++*mounts;
		*users += km->users;
	}
}

void kernel_adopt(struct driver *drv, const char *key)
{
	struct kernel_mount *km = km_get(drv, key);

	if (!km)
		return;
	km->state = KM_MOUNTED;
	km->users++;
}

/* The key names what the kernel mount is: the same server, export and options share it. */
static void make_key(const char *addr, const char *path, const char *options, char out[KERNEL_KEY_LEN + 1])
{
	const char *parts[] = { addr, "\n", path, "\n", options };
	uint64_t h = FNV1A_INIT;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		h = fnv1a(h, parts[i]);
	snprintf(out, KERNEL_KEY_LEN + 1, "%0*llx", KERNEL_KEY_LEN, (unsigned long long)h);
}

/* ---- mounting and unmounting one key ---- */

struct km_run {
	struct driver *drv;
	struct kernel_mount *km;
	const char *argv[8];
	char name[sizeof(NFSV3_KERNEL_DIR) + KERNEL_KEY_LEN + 2];
};

static void km_start_mount(struct driver *drv, struct kernel_mount *km);
static void km_start_unmount(struct driver *drv, struct kernel_mount *km);

/* Answer every queued acquire with err (or success), then settle the key. */
static void km_settle(struct driver *drv, struct kernel_mount *km, struct error *err)
{
	struct km_waiter *list = km->waiters, *next;

	km->waiters = NULL;
	for (; list; list = next) {
		next = list->next;
		if (!err)
			km->users++;
		list->cb(err ? error_new(err->code, "%s", err->message) : NULL, km->key, list->data);
		free(list);
	}
	error_free(err);
	if (km->state == KM_MOUNTED && km->users == 0)
		km_start_unmount(drv, km);
	else if (km->state == KM_ABSENT && !km->waiters)
		km_forget(drv, km);
}

static void on_km_unmounted(const struct helper_result *res, void *data)
{
	struct km_run *run = data;
	struct kernel_mount *km = run->km;
	struct driver *drv = run->drv;

	free(run);
	if (res->exit_status != 0) {
		log_error("kernel.unmount-failed", json_pack("{s:s, s:s, s:b}", "key", km->key, "error", res->message,
							      "timed_out", res->timed_out));
		km->state = KM_MOUNTED;
	} else {
		log_info("kernel.unmounted", json_pack("{s:s, s:f}", "key", km->key, "elapsed_ms", res->elapsed_ms));
		km->state = KM_ABSENT;
	}
	/* Volumes that asked while it was going away mount it again. */
	if (km->waiters) {
		if (km->state == KM_ABSENT)
			km_start_mount(drv, km);
		else
			km_settle(drv, km, NULL);
	} else if (km->state == KM_ABSENT) {
		km_forget(drv, km);
	}
}

static void km_start_unmount(struct driver *drv, struct kernel_mount *km)
{
	struct km_run *run = calloc(1, sizeof(*run));

	if (!run)
		return;
	km->state = KM_UNMOUNTING;
	run->drv = drv;
	run->km = km;
	snprintf(run->name, sizeof(run->name), "%s/%s", NFSV3_KERNEL_DIR, km->key);
	run->argv[0] = drv->mount_helper;
	run->argv[1] = NFSV3_VERB_UNMOUNT;
	run->argv[2] = drv->cfg->mount_root;
	run->argv[3] = run->name;
	/* Nothing uses it any more: abort RPCs to a server that is gone. */
	run->argv[4] = NFSV3_ARG_FORCE;
	helper_run(drv->helpers, run->argv, on_km_unmounted, run);
}

static void on_km_mounted(const struct helper_result *res, void *data)
{
	struct km_run *run = data;
	struct kernel_mount *km = run->km;
	struct driver *drv = run->drv;
	struct error *err;

	free(run);
	if (res->exit_status == 0) {
		km->state = KM_MOUNTED;
		log_info("kernel.mounted", json_pack("{s:s, s:s, s:s, s:s, s:f}", "key", km->key, "source", km->source,
						     "addr", km->addr, "options", km->options, "elapsed_ms", res->elapsed_ms));
		km_settle(drv, km, NULL);
		return;
	}
	if (res->timed_out) {
		/* The mount may have landed as the helper was killed: taken as
		 * mounted, it is detached once the waiters are answered, before
		 * anyone tries again. */
		km->state = KM_MOUNTED;
		err = error_new(ERROR_TIMEOUT, "%s %u s mounting %s", NFSV3_ERR_TIMEOUT, drv->cfg->helper_timeout_s, km->source);
	} else {
		km->state = KM_ABSENT;
		err = error_new(ERROR_MOUNT, "%s", res->message[0] ? res->message : "the NFS mount helper failed");
	}
	log_error("kernel.mount-failed", json_pack("{s:s, s:s, s:s}", "key", km->key, "source", km->source, "error",
						   err->message));
	km_settle(drv, km, err);
}

static void km_start_mount(struct driver *drv, struct kernel_mount *km)
{
	struct km_run *run = calloc(1, sizeof(*run));

	/* What km_acquire copied for the helper's argv, or out of memory. */
	if (!run || !km->source || !km->addr || !km->options) {
		free(run);
		km_settle(drv, km, error_new(ERROR_INTERNAL, "out of memory preparing the kernel mount %s", km->key));
		return;
	}
	km->state = KM_MOUNTING;
	run->drv = drv;
	run->km = km;
	run->argv[0] = drv->mount_helper;
	run->argv[1] = NFSV3_VERB_NFS;
	run->argv[2] = drv->cfg->mount_root;
	run->argv[3] = km->key;
	run->argv[4] = km->source;
	run->argv[5] = km->addr;
	run->argv[6] = km->options;
	helper_run(drv->helpers, run->argv, on_km_mounted, run);
}

static void acquire_key(struct driver *drv, const char *addr, const struct volume_spec *spec, kernel_cb cb, void *data)
{
	char key[KERNEL_KEY_LEN + 1], *options = options_kernel_string(spec, drv->cfg, strchr(addr, ':') != NULL);
	struct kernel_mount *km;
	struct km_waiter *w;
	struct error *err;

	/* The address checked is the address mounted: the helper gets this one, never a name to look up. */
	if ((err = policy_gate_check(spec, addr, drv->cfg))) {
		free(options);
		cb(err, NULL, data);
		return;
	}
	if (!options) {
		cb(error_new(ERROR_INTERNAL, "out of memory"), NULL, data);
		return;
	}
	make_key(addr, spec->path, options, key);
	km = km_get(drv, key);
	w = calloc(1, sizeof(*w));
	if (!km || !w) {
		free(options);
		free(w);
		cb(error_new(ERROR_INTERNAL, "out of memory"), NULL, data);
		return;
	}
	if (km->state == KM_MOUNTED) {
		free(options);
		free(w);
		km->users++;
		cb(NULL, km->key, data);
		return;
	}
	w->cb = cb;
	w->data = data;
	w->next = km->waiters;
	km->waiters = w;
	if (!km->source) {
		/* The host as the binding named it (the helper checks that it resolves to addr). */
		bool v6 = strchr(spec->host, ':') != NULL;
		if (asprintf(&km->source, v6 ? "[%s]:%s" : "%s:%s", spec->host, spec->path) < 0)
			km->source = NULL;
		/* After an earlier acquire that ran out of memory, its copies go. */
		free(km->addr);
		free(km->options);
		km->addr = strdup(addr);
		km->options = options;
	} else {
		free(options);
	}
	if (km->state == KM_ABSENT)
		km_start_mount(drv, km);
}

void kernel_release(struct driver *drv, const char *key)
{
	struct kernel_mount *km = km_find(drv, key);

	if (km && km->users > 0)
		km->users--;
	if (km && km->users == 0 && km->state == KM_MOUNTED && !km->waiters)
		km_start_unmount(drv, km);
}

/* ---- resolving the host without blocking the loop ---- */

struct resolve {
	struct driver *drv;
	struct volume_spec spec; /* host and path copied: the volume may change meanwhile */
	kernel_cb cb;
	void *data;
	uv_getaddrinfo_t req;
	uv_timer_t timer;
	bool answered;
	int closing;
};

static void resolve_free(struct resolve *r)
{
	volume_spec_clear(&r->spec);
	free(r);
}

static void on_timer_closed(uv_handle_t *handle)
{
	struct resolve *r = handle->data;
	if (--r->closing == 0)
		resolve_free(r);
}

static void on_resolve_timeout(uv_timer_t *timer)
{
	struct resolve *r = timer->data;

	r->answered = true;
	r->cb(error_new(ERROR_TIMEOUT, "%s %u s resolving NFS server \"%s\"", NFSV3_ERR_TIMEOUT,
			r->drv->cfg->helper_timeout_s, r->spec.host),
	      NULL, r->data);
	/* getaddrinfo runs on the thread pool and cannot be interrupted; the
	 * record stays until it reports. */
	uv_cancel((uv_req_t *)&r->req);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct resolve *r = req->data;
	char addr[INET6_ADDRSTRLEN];

	uv_timer_stop(&r->timer);
	if (!r->answered) {
		r->answered = true;
		if (status < 0 || !res) {
			r->cb(error_new(ERROR_MOUNT, "unknown host \"%s\": %s", r->spec.host, uv_strerror(status)), NULL, r->data);
		} else {
			if (res->ai_family == AF_INET6)
				uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, addr, sizeof(addr));
			else
				uv_ip4_name((struct sockaddr_in *)res->ai_addr, addr, sizeof(addr));
			acquire_key(r->drv, addr, &r->spec, r->cb, r->data);
		}
	}
	uv_freeaddrinfo(res);
	r->closing = 1;
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

void kernel_acquire(struct driver *drv, const struct volume_spec *spec, kernel_cb cb, void *data)
{
	struct in6_addr scratch;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct resolve *r;

	/* An address literal needs no lookup. */
	if (inet_pton(AF_INET, spec->host, &scratch) == 1 || inet_pton(AF_INET6, spec->host, &scratch) == 1) {
		acquire_key(drv, spec->host, spec, cb, data);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		cb(error_new(ERROR_INTERNAL, "out of memory"), NULL, data);
		return;
	}
	r->drv = drv;
	r->cb = cb;
	r->data = data;
	/* Whole, username too: the policy tells LDAP from raw ids. */
	if (!volume_spec_copy(&r->spec, spec)) {
		free(r);
		cb(error_new(ERROR_INTERNAL, "out of memory resolving \"%s\"", spec->host), NULL, data);
		return;
	}
	r->req.data = r->timer.data = r;
	uv_timer_init(drv->loop, &r->timer);
	uv_timer_start(&r->timer, on_resolve_timeout, (uint64_t)drv->cfg->helper_timeout_s * 1000, 0);
	if (uv_getaddrinfo(drv->loop, &r->req, on_resolved, spec->host, NULL, &hints) < 0) {
		r->answered = true;
		cb(error_new(ERROR_MOUNT, "unknown host \"%s\"", spec->host), NULL, data);
		r->closing = 1;
		uv_close((uv_handle_t *)&r->timer, on_timer_closed);
	}
}

void kernel_purge(struct driver *drv, const char *key)
{
	struct kernel_mount *km = km_get(drv, key);

	if (!km || km->users > 0 || km->state != KM_ABSENT)
		return;
	log_info("reconcile.purging-kernel-mount", json_pack("{s:s}", "key", key));
	km->state = KM_MOUNTED;
	km_start_unmount(drv, km);
}
