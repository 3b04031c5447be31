/*
 * Volume operations: each volume runs one operation at a time, in arrival
 * order; different volumes run in parallel (their helpers bounded by the
 * helper pool). An operation's answer is given only after the state that
 * it changed is on disk.
 */
#ifndef NFSV3_LIFECYCLE_H
#define NFSV3_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <jansson.h>

#include "driver.h"
#include "error.h"

enum op_kind {
	OP_CREATE,   /* record options (replace while unmounted) */
	OP_MOUNT,    /* take a reference, mounting on the first */
	OP_UNMOUNT,  /* drop a reference, unmounting on the last */
	OP_REMOVE,   /* forget an unmounted volume */
	OP_GET,      /* read: answered in order with the others */
	OP_PATH,
	OP_PURGE,    /* detach a mount under the root that the state does not know */
	OP_EVACUATE, /* unmount whatever the references say */
	OP_DEAD,     /* its idmapfs died: detach the dead mount, mount again at the next Mount */
};

struct volume_op;
typedef void (*op_done_cb)(struct volume_op *op, const struct error *err);

struct volume_op {
	enum op_kind kind;
	struct driver *drv;
	struct volume *vol;
	char *id;        /* Mount/Unmount: Docker's ID, or NULL */
	json_t *opts;    /* Create: the Opts as sent (owned) */
	bool docker;     /* the client is Docker: option errors at Create */
	op_done_cb done; /* runs once; op and op->vol are valid during it */
	void *data;
	uint64_t started_ns; /* uv_hrtime() at op_new: the answer's latency */
	/* private */
	struct error *err;
	bool changed;
	bool ref_added;     /* Mount: this operation added a reference (undone if its state write fails) */
	bool mounted_here;  /* Mount: this operation made the Mountpoint live */
	bool created_new;   /* Create: the volume did not exist before */
	json_t *old_opts;   /* Create: the options it replaced, restored if its state write fails */
	bool old_docker;    /* Create: whether a Docker client had created it */
	void *data_private; /* the step in progress */
	struct volume_op *next;
};

/* A new operation on the named volume (the name is valid by now). */
struct volume_op *op_new(struct driver *drv, enum op_kind kind, const char *name, op_done_cb done, void *data);
void op_submit(struct volume_op *op);

/* Queue an operation of the driver's own (purge, dead idmapfs); failures are logged. */
void lifecycle_submit_internal(struct driver *drv, enum op_kind kind, const char *name);

/*
 * After a restart: watch the idmapfs pid that the state records for name
 * (see supervise_adopt); its death is then handled as one of an idmapfs
 * started here. False when it is not alive or not ours.
 */
bool lifecycle_adopt_idmapfs(struct driver *drv, const char *name, pid_t pid);

/*
 * Forget every volume a volman client created that has been unmounted,
 * unreferenced and untouched for at least max_idle seconds at now (volman
 * never calls Remove: each container start makes a volume of its own).
 * Volumes a Docker client created are kept: Docker removes its own.
 * Returns how many were forgotten; the state is saved once when any were.
 */
size_t lifecycle_sweep(struct driver *drv, time_t now, time_t max_idle);

/* <mount-root>/<name>, in buf. */
const char *volume_mountpoint(const struct driver *drv, const struct volume *vol, char *buf, size_t size);

#endif
