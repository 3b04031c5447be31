#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfsv3driver.h"
#include "lifecycle.h"
#include "directory.h"
#include "kernel.h"
#include "log.h"
#include "metrics.h"
#include "mountinfo.h"
#include "policy_gate.h"
#include "supervise.h"
#include "upstream.h"

static void run_next(struct volume *vol, struct driver *drv);

const char *volume_mountpoint(const struct driver *drv, const struct volume *vol, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", drv->cfg->mount_root, vol->name);
	return buf;
}

struct volume_op *op_new(struct driver *drv, enum op_kind kind, const char *name, op_done_cb done, void *data)
{
	struct volume_op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->vol = registry_get(&drv->reg, name);
	if (!op->vol) {
		free(op);
		return NULL;
	}
	op->kind = kind;
	op->drv = drv;
	op->done = done;
	op->data = data;
	op->started_ns = uv_hrtime();
	return op;
}

void op_submit(struct volume_op *op)
{
	struct volume *vol = op->vol;

	op->drv->ops_in_flight++;
	if (vol->queue_tail)
		vol->queue_tail->next = op;
	else
		vol->queue_head = op;
	vol->queue_tail = op;
	if (!vol->busy)
		run_next(vol, op->drv);
}

/* Answer, then let the volume's next operation run. */
static void complete(struct volume_op *op)
{
	struct driver *drv = op->drv;
	struct volume *vol = op->vol;

	vol->last_used = time(NULL);
	if (op->done)
		op->done(op, op->err);
	error_free(op->err);
	json_decref(op->opts);
	json_decref(op->old_opts);
	free(op->id);
	free(op);
	vol->busy = false;
	if (vol->queue_head)
		run_next(vol, drv);
	else
		registry_release(&drv->reg, vol);
	if (--drv->ops_in_flight == 0 && drv->on_idle)
		drv->on_idle(drv);
}

static void run_unmount(struct volume_op *op, bool force, void (*then)(struct volume_op *, const struct helper_result *));
static void mark_unmounted(struct volume_op *op);
static void volume_hold_password(struct volume *vol, struct secret *password);

/* Say what became of the operation after the error it already carries. */
static void append_outcome(struct volume_op *op, const char *fmt, const char *detail)
{
	struct error *err = error_new(op->err->code, "%s; volume %s %s%s", op->err->message, op->vol->name, fmt, detail);

	error_free(op->err);
	op->err = err;
}

/*
 * A Mount whose state write failed must not stay done: the disk says the
 * volume is not held, so neither may the registry, nor the kernel. The
 * reference goes; a Mountpoint this Mount made live is detached again.
 */
static void after_undo_unmount(struct volume_op *op, const struct helper_result *res)
{
	struct volume *vol = op->vol;

	/* The helper may fail after the detach (a read-only root keeps the directory): the mount table decides. */
	if (res->exit_status == 0 || !mountinfo_is_mounted(op->drv->cfg->mount_root, vol->name)) {
		mark_unmounted(op);
		log_info("mount.undone", json_pack("{s:s}", "volume", vol->name));
		append_outcome(op, "was not mounted", "");
	} else {
		log_error("mount.undo-failed", json_pack("{s:s, s:s}", "volume", vol->name, "error", res->message));
		append_outcome(op, "is left mounted, held by no one, because unmounting it failed: ",
			       res->message[0] ? res->message : "the helper failed without a message");
	}
	complete(op);
}

static void undo_mount(struct volume_op *op)
{
	struct volume *vol = op->vol;

	if (op->ref_added)
		volume_drop_ref(vol, op->id);
	if (op->mounted_here && volume_refs(vol) == 0 && vol->mounted) {
		run_unmount(op, false, after_undo_unmount);
		return;
	}
	append_outcome(op, "was not mounted for this caller", "");
	complete(op);
}

/* A Create whose state write failed: the volume is as it was before. */
static void undo_create(struct volume_op *op)
{
	struct volume *vol = op->vol;
	struct volume_spec spec;
	struct error *err;

	volume_hold_password(vol, NULL);
	if (op->created_new) {
		volume_forget_options(vol);
	} else if (op->old_opts) {
		err = options_parse(op->old_opts, op->drv->cfg, &spec);
		volume_set_options(vol, op->old_opts, err ? NULL : &spec, err);
		vol->docker = op->old_docker;
	}
	log_info("create.undone", json_pack("{s:s}", "volume", vol->name));
	complete(op);
}

static void on_state_saved(struct error *err, void *data)
{
	struct volume_op *op = data;

	if (!err) {
		complete(op);
		return;
	}
	log_error("state.save-failed", json_pack("{s:s, s:s}", "volume", op->vol->name, "error", err->message));
	if (op->err) {
		complete(op);
		return;
	}
	switch (op->kind) {
	case OP_MOUNT:
		op->err = error_new(ERROR_INTERNAL, "%s", err->message);
		undo_mount(op);
		return;
	case OP_CREATE:
		op->err = error_new(ERROR_INTERNAL, "%s; volume %s was not %s", err->message, op->vol->name,
				    op->created_new ? "created" : "changed");
		undo_create(op);
		return;
	default:
		/* Unmount and Remove did what they did; the answer says the disk does not know it yet. */
		op->err = error_new(ERROR_INTERNAL, "%s", err->message);
		complete(op);
		return;
	}
}

/* Every operation ends here: persist what changed, then answer. */
static void finish(struct volume_op *op, struct error *err)
{
	op->err = err;
	if (op->changed)
		state_commit(op->drv->state, on_state_saved, op);
	else
		complete(op);
}

static const char *op_verb(const struct volume_op *op)
{
	switch (op->kind) {
	case OP_MOUNT: return "mounting";
	case OP_UNMOUNT: return "unmounting";
	case OP_REMOVE: return "removing";
	case OP_PURGE: return "purging";
	case OP_EVACUATE: return "evacuating";
	default: return "handling";
	}
}

/* A failed helper run as an error a person can act on. */
static struct error *helper_error(const struct volume_op *op, const struct helper_result *res)
{
	if (res->timed_out)
		return error_new(ERROR_TIMEOUT, "%s %u s %s volume %s", NFSV3_ERR_TIMEOUT, op->drv->cfg->helper_timeout_s,
				 op_verb(op), op->vol->name);
	if (res->term_signal)
		return error_new(ERROR_MOUNT, "%s volume %s: helper killed by signal %d", op_verb(op), op->vol->name,
				 res->term_signal);
	return error_new(ERROR_MOUNT, "%s volume %s: %s", op_verb(op), op->vol->name,
			 res->message[0] ? res->message : "helper failed without a message");
}

static void log_helper(const struct volume_op *op, const char *const *argv, const struct helper_result *res)
{
	enum log_level level = res->exit_status == 0 ? LOG_DEBUG : LOG_ERROR;
	json_t *data;

	/* Built only when written: successful runs log at debug. */
	if (!log_enabled(level))
		return;
	data = json_pack("{s:s, s:s, s:i, s:f, s:b}", "volume", op->vol->name, "verb", argv[1], "exit",
			 res->exit_status, "elapsed_ms", res->elapsed_ms, "timed_out", res->timed_out);
	if (res->message[0])
		json_object_set_new(data, "stderr", json_string(res->message));
	log_write(level, "helper.finished", data);
}

/* ---- unmount: used by Unmount, Remove, Purge, Evacuate and after a late mount ---- */

struct unmount_ctx {
	struct volume_op *op;
	void (*then)(struct volume_op *op, const struct helper_result *res);
	const char *argv[6];
	char mapfs[NFSV3_NAME_MAX + 1]; /* upstream's: the kernel mount under mapfs, unmounted second */
};

static void on_unmount_done(const struct helper_result *res, void *data)
{
	struct unmount_ctx *ctx = data;

	log_helper(ctx->op, ctx->argv, res);
	/*
	 * A volume upstream mounted: with its Mountpoint (mapfs, or the kernel
	 * mount itself) gone, the kernel mount a mapfs binding kept beside it
	 * goes too (nothing there is success).
	 */
	if (res->exit_status == 0 && ctx->op->vol->upstream && ctx->mapfs[0] == '\0' &&
	    upstream_mapfs_name(ctx->op->vol->name, ctx->mapfs, sizeof(ctx->mapfs))) {
		ctx->argv[3] = ctx->mapfs;
		helper_run(ctx->op->drv->helpers, ctx->argv, on_unmount_done, ctx);
		return;
	}
	ctx->then(ctx->op, res);
	free(ctx);
}

static void run_unmount(struct volume_op *op, bool force, void (*then)(struct volume_op *, const struct helper_result *))
{
	struct unmount_ctx *ctx = calloc(1, sizeof(*ctx));
	struct driver *drv = op->drv;

	if (!ctx) {
		struct helper_result res = { .exit_status = -1, .message = "out of memory" };
		then(op, &res);
		return;
	}
	ctx->op = op;
	ctx->then = then;
	/* A mapped volume's idmapfs detaches itself on SIGTERM; the helper
	 * then finds nothing (or a lingering lazy mount) and removes the
	 * directory. */
	supervise_stop(drv, op->vol->name);
	ctx->argv[0] = drv->mount_helper;
	ctx->argv[1] = NFSV3_VERB_UNMOUNT;
	ctx->argv[2] = drv->cfg->mount_root;
	ctx->argv[3] = op->vol->name;
	ctx->argv[4] = force ? NFSV3_ARG_FORCE : NFSV3_ARG_LAZY;
	ctx->argv[5] = NULL;
	helper_run(drv->helpers, ctx->argv, on_unmount_done, ctx);
}

/* ---- Create ---- */

/* Replace the volume's held LDAP password (either may be NULL). */
static void volume_hold_password(struct volume *vol, struct secret *password)
{
	secret_free(vol->password);
	vol->password = password;
}

static void do_create(struct volume_op *op)
{
	struct volume *vol = op->vol;
	struct volume_spec spec;
	struct error *err = options_parse(op->opts, op->drv->cfg, &spec);
	struct secret *password = NULL;
	json_t *clean;
	bool same;

	/* A username binding's password leaves the Opts here, into a secret that Mount uses once. */
	if (!err && spec.username && (err = directory_take_password(op->opts, &password)))
		volume_spec_clear(&spec);
	/* The operator's policy answers Docker here; volman hears it at Mount, where it is asked again. */
	if (!err && op->docker && (err = policy_gate_check(&spec, NULL, op->drv->cfg))) {
		volume_spec_clear(&spec);
		secret_free(password);
		password = NULL;
	}
	if (err && op->docker) {
		finish(op, err);
		return;
	}
	if (vol->exists) {
		clean = options_sanitize(op->opts);
		same = json_equal(clean, vol->opts);
		json_decref(clean);
		/*
		 * The same options again change nothing; new ones wait for the
		 * unmount. A volume adopted from upstream (which kept no options)
		 * takes them now, as upstream's Create would: its mount stays.
		 */
		if (same || (!vol->upstream && (volume_refs(vol) > 0 || vol->mounted))) {
			/* The same username again brings its password back to a volume not yet proven. */
			if (same && password && !vol->spec.mapped && !vol->mounted) {
				volume_hold_password(vol, password);
				password = NULL;
			}
			secret_free(password);
			volume_spec_clear(&spec); /* zeroed when err is set */
			error_free(err);
			finish(op, same ? NULL
					: error_new(ERROR_CONFLICT,
						    "%s: volume %s is mounted; its options cannot change until it is unmounted",
						    NFSV3_ERR_IN_USE, vol->name));
			return;
		}
	}
	if (err)
		log_info("create.options-kept-for-mount", json_pack("{s:s, s:s}", "volume", vol->name, "error", err->message));
	op->created_new = !vol->exists;
	op->old_opts = vol->exists && vol->opts ? json_incref(vol->opts) : NULL;
	op->old_docker = vol->docker;
	volume_hold_password(vol, password);
	volume_set_options(vol, op->opts, err ? NULL : &spec, err);
	vol->docker = op->docker;
	op->changed = true;
	log_info("create.created", json_pack("{s:s, s:O}", "volume", vol->name, "opts", vol->opts));
	finish(op, NULL);
}

/* ---- Mount ---- */

struct mount_ctx {
	struct volume_op *op;
	char *key;                 /* NFS: the kernel mount held for this volume */
	char backing[PATH_MAX];    /* what the Mountpoint shows */
	const char *argv[7];
};

static void mount_ctx_fail(struct mount_ctx *ctx, struct error *err)
{
	struct volume_op *op = ctx->op;

	if (ctx->key)
		kernel_release(op->drv, ctx->key);
	free(ctx->key);
	free(ctx);
	finish(op, err);
}

/* The Mountpoint is live: record it and who holds it. */
static void mount_ctx_done(struct mount_ctx *ctx, pid_t idmapfs_pid, double elapsed_ms)
{
	struct volume_op *op = ctx->op;
	struct volume *vol = op->vol;

	vol->mounted = true;
	vol->dead = false;
	vol->idmapfs_pid = idmapfs_pid;
	free(vol->kernel_key);
	vol->kernel_key = ctx->key;
	free(ctx);
	op->changed = true;
	op->mounted_here = true;
	op->ref_added = !(op->id && volume_has_id(vol, op->id));
	if (volume_add_ref(vol, op->id) < 0) {
		finish(op, error_new(ERROR_INTERNAL, "out of memory"));
		return;
	}
	log_info("mount.mounted", json_pack("{s:s, s:f, s:b, s:s*}", "volume", vol->name, "elapsed_ms", elapsed_ms,
					    "mapped", vol->spec.mapped, "kernel_key", vol->kernel_key));
	finish(op, NULL);
}

/* After a bind killed at its deadline, or an idmapfs start that failed with its mount left. */
static void after_late_bind_cleanup(struct volume_op *op, const struct helper_result *res)
{
	struct mount_ctx *ctx = op->data_private;

	op->data_private = NULL;
	if (res->exit_status != 0)
		log_error("mount.cleanup-failed", json_pack("{s:s, s:s}", "volume", op->vol->name, "error", res->message));
	mount_ctx_fail(ctx, op->err);
}

static void on_bind_done(const struct helper_result *res, void *data)
{
	struct mount_ctx *ctx = data;
	struct volume_op *op = ctx->op;

	log_helper(op, ctx->argv, res);
	if (res->exit_status != 0) {
		op->err = helper_error(op, res);
		if (res->timed_out) {
			/* Answer now; the volume stays busy until the cleanup ends.
			 * It may have mounted just before it was killed: undo that. */
			op->done(op, op->err);
			op->done = NULL;
			op->data_private = ctx;
			run_unmount(op, true, after_late_bind_cleanup);
			return;
		}
		mount_ctx_fail(ctx, op->err);
		return;
	}
	mount_ctx_done(ctx, 0, res->elapsed_ms);
}

/* A watched idmapfs died after it was ready: detach the dead mount. */
static void on_idmapfs_died(struct driver *drv, const char *name)
{
	lifecycle_submit_internal(drv, OP_DEAD, name);
}

static void on_idmapfs_ready(struct error *err, pid_t pid, void *data)
{
	struct mount_ctx *ctx = data;
	struct volume_op *op = ctx->op;

	if (!err) {
		mount_ctx_done(ctx, pid, 0);
		return;
	}
	op->err = error_wrap(err, "mounting volume %s", op->vol->name);
	/*
	 * An idmapfs killed at its start deadline dies with its sentry, which
	 * would have detached its mount: the FUSE mount it may have made stays
	 * attached with no server ("Transport endpoint is not connected"). So
	 * would one that died some other way with its sentry. Answer now; the
	 * volume stays busy until the Mountpoint is detached.
	 */
	if (op->err->code == ERROR_TIMEOUT || mountinfo_is_mounted(op->drv->cfg->mount_root, op->vol->name)) {
		log_info("mount.start-cleanup", json_pack("{s:s, s:s}", "volume", op->vol->name, "error", op->err->message));
		if (op->done)
			op->done(op, op->err);
		op->done = NULL;
		op->data_private = ctx;
		run_unmount(op, true, after_late_bind_cleanup);
		return;
	}
	mount_ctx_fail(ctx, op->err);
}

/* The backing directory is ready: bind it, or serve it through idmapfs. */
static void mount_backing(struct mount_ctx *ctx)
{
	struct volume_op *op = ctx->op;
	struct volume *vol = op->vol;

	if (vol->spec.mapped) {
		supervise_start(op->drv, vol->name, ctx->backing, &vol->spec, on_idmapfs_ready, on_idmapfs_died, ctx);
		return;
	}
	ctx->argv[0] = op->drv->mount_helper;
	ctx->argv[1] = NFSV3_VERB_BIND;
	ctx->argv[2] = op->drv->cfg->mount_root;
	ctx->argv[3] = ctx->backing;
	ctx->argv[4] = vol->name;
	ctx->argv[5] = vol->spec.readonly ? NFSV3_ARG_RO : NFSV3_ARG_RW;
	ctx->argv[6] = NULL;
	helper_run(op->drv->helpers, ctx->argv, on_bind_done, ctx);
}

static void on_kernel_acquired(struct error *err, const char *key, void *data)
{
	struct mount_ctx *ctx = data;

	if (err) {
		mount_ctx_fail(ctx, error_wrap(err, "mounting volume %s", ctx->op->vol->name));
		return;
	}
	if (!(ctx->key = strdup(key))) {
		mount_ctx_fail(ctx, error_new(ERROR_INTERNAL, "mounting volume %s: out of memory", ctx->op->vol->name));
		return;
	}
	snprintf(ctx->backing, sizeof(ctx->backing), "%s/%s/%s", ctx->op->drv->cfg->mount_root, NFSV3_KERNEL_DIR, key);
	mount_backing(ctx);
}

static void do_mount(struct volume_op *op);

/* The Mountpoint is gone: let go of what it held. */
static void mark_unmounted(struct volume_op *op)
{
	struct volume *vol = op->vol;

	vol->mounted = false;
	vol->dead = false;
	vol->idmapfs_pid = 0;
	if (vol->upstream) {
		/* Upstream's mount is gone; from now on the volume is ours, or, never created since, forgotten as upstream would. */
		vol->upstream = false;
		if (vol->opts && json_object_size(vol->opts) == 0)
			volume_forget_options(vol);
	}
	if (vol->kernel_key) {
		kernel_release(op->drv, vol->kernel_key);
		free(vol->kernel_key);
		vol->kernel_key = NULL;
	}
	op->changed = true;
}

static void after_dead_detached(struct volume_op *op, const struct helper_result *res)
{
	if (res->exit_status != 0) {
		finish(op, helper_error(op, res));
		return;
	}
	mark_unmounted(op);
	metrics_count(METRIC_IDMAPFS_RESTARTS);
	do_mount(op);
}

static void on_identity_resolved(struct error *err, uint32_t uid, uint32_t gid, double elapsed_ms, void *data)
{
	struct volume_op *op = data;
	struct volume *vol = op->vol;

	if (err) {
		log_error("ldap.refused", json_pack("{s:s, s:s, s:s, s:f}", "volume", vol->name, "username",
						    vol->spec.username, "error", err->message, "elapsed_ms", elapsed_ms));
		finish(op, error_wrap(err, "mounting volume %s", vol->name));
		return;
	}
	/* Proven: the identity is the volume's from now on, and the password is no longer needed. */
	volume_hold_password(vol, NULL);
	vol->spec.mapped = true;
	vol->spec.uid = uid;
	vol->spec.gid = gid;
	op->changed = true;
	log_info("ldap.resolved", json_pack("{s:s, s:s, s:I, s:I, s:f}", "volume", vol->name, "username",
					    vol->spec.username, "uid", (json_int_t)uid, "gid", (json_int_t)gid,
					    "elapsed_ms", elapsed_ms));
	do_mount(op);
}

static void do_mount(struct volume_op *op)
{
	struct volume *vol = op->vol;
	struct mount_ctx *ctx;
	struct error *ctx_err;

	if (!vol->exists) {
		finish(op, error_new(ERROR_NOT_FOUND, "%s: %s", NFSV3_ERR_NOT_FOUND, vol->name));
		return;
	}
	/* Upstream's mount is held as it is, whatever options the volume has by now. */
	if (vol->spec_error && !(vol->upstream && vol->mounted)) {
		finish(op, error_new(vol->spec_error->code, "%s", vol->spec_error->message));
		return;
	}
	if (vol->mounted && !vol->dead) {
		op->ref_added = !(op->id && volume_has_id(vol, op->id));
		if (volume_add_ref(vol, op->id) < 0) {
			finish(op, error_new(ERROR_INTERNAL, "out of memory"));
			return;
		}
		op->changed = true;
		finish(op, NULL);
		return;
	}
	if (vol->mounted && vol->dead) {
		/* Its idmapfs died: detach what is left before mounting again. */
		run_unmount(op, true, after_dead_detached);
		return;
	}
	/* Before anything is asked of LDAP or the server; again with the address in kernel_acquire. */
	if ((ctx_err = policy_gate_check(&vol->spec, NULL, op->drv->cfg))) {
		finish(op, error_wrap(ctx_err, "mounting volume %s", vol->name));
		return;
	}
	if (vol->spec.username && !vol->spec.mapped) {
		/* The first Mount proves the password: this is where volman shows the answer. */
		if (!op->drv->directory)
			finish(op, error_new(ERROR_INVALID, "%s; give uid and gid instead", NFSV3_ERR_LDAP_OFF));
		else if (!vol->password)
			finish(op, error_new(ERROR_INVALID,
					     "%s (the driver restarted before the first Mount): create volume %s again "
					     "with its password",
					     NFSV3_ERR_LDAP_PASSWORD_GONE, vol->name));
		else
			directory_resolve(op->drv->directory, vol->spec.username, vol->password, on_identity_resolved, op);
		return;
	}
	if (!(ctx = calloc(1, sizeof(*ctx)))) {
		finish(op, error_new(ERROR_INTERNAL, "out of memory"));
		return;
	}
	ctx->op = op;
	if (vol->spec.kind == SOURCE_LOCAL) {
		snprintf(ctx->backing, sizeof(ctx->backing), "%s", vol->spec.path);
		mount_backing(ctx);
	} else {
		kernel_acquire(op->drv, &vol->spec, on_kernel_acquired, ctx);
	}
}

/* ---- Unmount, Remove, Purge, Evacuate ---- */

static void after_unmount(struct volume_op *op, const struct helper_result *res)
{
	struct volume *vol = op->vol;

	if (res->exit_status != 0) {
		finish(op, helper_error(op, res));
		return;
	}
	mark_unmounted(op);
	log_info("unmount.unmounted", json_pack("{s:s, s:f}", "volume", vol->name, "elapsed_ms", res->elapsed_ms));
	if (op->kind == OP_REMOVE) {
		volume_hold_password(vol, NULL);
		volume_forget_options(vol);
		log_info("remove.removed", json_pack("{s:s}", "volume", vol->name));
	}
	finish(op, NULL);
}

static void do_unmount(struct volume_op *op)
{
	struct volume *vol = op->vol;

	if (!vol->exists) {
		finish(op, error_new(ERROR_NOT_FOUND, "%s: %s", NFSV3_ERR_NOT_FOUND, vol->name));
		return;
	}
	if (volume_refs(vol) == 0 && !vol->mounted) {
		finish(op, error_new(ERROR_CONFLICT, "%s: %s", NFSV3_ERR_NOT_MOUNTED, vol->name));
		return;
	}
	if (volume_refs(vol) > 0) {
		if (volume_drop_ref(vol, op->id) < 0) {
			finish(op, error_new(ERROR_CONFLICT, "%s: %s is not mounted for %s %s", NFSV3_ERR_NOT_MOUNTED,
					     vol->name, op->id ? "ID" : "a caller without an", op->id ? op->id : "ID"));
			return;
		}
		op->changed = true;
		if (volume_refs(vol) > 0) {
			finish(op, NULL);
			return;
		}
	}
	/* Last reference gone, or an earlier unmount failed: detach now. */
	run_unmount(op, false, after_unmount);
}

static void do_remove(struct volume_op *op)
{
	struct volume *vol = op->vol;

	if (!vol->exists) {
		finish(op, error_new(ERROR_NOT_FOUND, "%s: %s", NFSV3_ERR_NOT_FOUND, vol->name));
		return;
	}
	if (volume_refs(vol) > 0) {
		finish(op, error_new(ERROR_CONFLICT, "%s: volume %s has %u mount(s); unmount it first", NFSV3_ERR_IN_USE,
				     vol->name, volume_refs(vol)));
		return;
	}
	if (vol->mounted) {
		run_unmount(op, false, after_unmount);
		return;
	}
	volume_hold_password(vol, NULL);
	volume_forget_options(vol);
	op->changed = true;
	log_info("remove.removed", json_pack("{s:s}", "volume", vol->name));
	finish(op, NULL);
}

static void after_purge(struct volume_op *op, const struct helper_result *res)
{
	if (res->exit_status != 0) {
		finish(op, helper_error(op, res));
		return;
	}
	log_info("reconcile.purged", json_pack("{s:s}", "volume", op->vol->name));
	finish(op, NULL);
}

static void do_purge(struct volume_op *op)
{
	/* The state may have learnt of the name since the purge was queued. */
	if (op->vol->exists && op->vol->mounted) {
		finish(op, NULL);
		return;
	}
	run_unmount(op, true, after_purge);
}

static void after_evacuate(struct volume_op *op, const struct helper_result *res)
{
	if (res->exit_status == 0)
		volume_clear_refs(op->vol);
	after_unmount(op, res);
}

static void do_evacuate(struct volume_op *op)
{
	if (!op->vol->mounted) {
		finish(op, NULL);
		return;
	}
	run_unmount(op, true, after_evacuate);
}

static void after_dead_unmount(struct volume_op *op, const struct helper_result *res)
{
	if (res->exit_status != 0)
		log_error("idmapfs.detach-failed", json_pack("{s:s, s:s}", "volume", op->vol->name, "error", res->message));
	else
		log_info("idmapfs.dead-mount-detached", json_pack("{s:s}", "volume", op->vol->name));
	finish(op, NULL);
}

static void do_dead(struct volume_op *op)
{
	struct volume *vol = op->vol;

	if (!vol->mounted || !vol->spec.mapped || vol->upstream) {
		finish(op, NULL);
		return;
	}
	/* Still "mounted" for its holders; the next Mount mounts it afresh. */
	vol->dead = true;
	vol->idmapfs_pid = 0;
	op->changed = true;
	run_unmount(op, true, after_dead_unmount);
}

static void on_internal_done(struct volume_op *op, const struct error *err)
{
	if (err)
		log_error("operation.failed", json_pack("{s:s, s:i, s:s}", "volume", op->vol->name, "kind", (int)op->kind,
							"error", err->message));
}

void lifecycle_submit_internal(struct driver *drv, enum op_kind kind, const char *name)
{
	struct volume_op *op = op_new(drv, kind, name, on_internal_done, NULL);

	if (op)
		op_submit(op);
}

bool lifecycle_adopt_idmapfs(struct driver *drv, const char *name, pid_t pid)
{
	return supervise_adopt(drv, name, pid, on_idmapfs_died);
}

/* ---- the sweep ---- */

#define SWEEP_LOGGED_NAMES 20

static void on_swept_saved(struct error *err, void *data)
{
	struct driver *drv = data;

	if (err)
		log_error("state.save-failed", json_pack("{s:s, s:s}", "after", "sweep", "error", err->message));
	if (drv->on_idle)
		drv->on_idle(drv);
}

size_t lifecycle_sweep(struct driver *drv, time_t now, time_t max_idle)
{
	json_t *names = json_array();
	struct volume *vol, *next;
	size_t forgotten = 0;

	for (vol = registry_first(&drv->reg); vol; vol = next) {
		next = registry_next(&drv->reg, vol);
		/* Only what nothing holds or waits for: a queued Mount keeps its volume. */
		if (!vol->exists || vol->docker || vol->mounted || vol->busy || vol->queue_head || volume_refs(vol) > 0 ||
		    now - vol->last_used < max_idle)
			continue;
		if (forgotten++ < SWEEP_LOGGED_NAMES)
			json_array_append_new(names, json_string(vol->name));
		volume_hold_password(vol, NULL);
		volume_forget_options(vol);
		registry_release(&drv->reg, vol);
	}
	if (forgotten) {
		log_info("sweep.forgot", json_pack("{s:I, s:I, s:I, s:o}", "volumes", (json_int_t)forgotten, "kept",
						   (json_int_t)drv->reg.n_volumes, "unused_for_s", (json_int_t)max_idle,
						   "first_names", names));
		state_commit(drv->state, on_swept_saved, drv);
	} else {
		json_decref(names);
	}
	return forgotten;
}

static void do_read(struct volume_op *op)
{
	if (!op->vol->exists)
		finish(op, error_new(ERROR_NOT_FOUND, "%s: %s", NFSV3_ERR_NOT_FOUND, op->vol->name));
	else
		finish(op, NULL);
}

static void (*const op_handlers[])(struct volume_op *) = {
	[OP_CREATE] = do_create,   [OP_MOUNT] = do_mount, [OP_UNMOUNT] = do_unmount,
	[OP_REMOVE] = do_remove,   [OP_GET] = do_read,    [OP_PATH] = do_read,
	[OP_PURGE] = do_purge,     [OP_EVACUATE] = do_evacuate, [OP_DEAD] = do_dead,
};

static void run_next(struct volume *vol, struct driver *drv)
{
	struct volume_op *op = vol->queue_head;

	vol->queue_head = op->next;
	if (!vol->queue_head)
		vol->queue_tail = NULL;
	op->next = NULL;
	vol->busy = true;
	op_handlers[op->kind](op);
}
