/*
 * Supervising idmapfs, the long-lived per-binding remap: started with
 * process.c in a session of its own (so that it outlives a daemon restart)
 * once one of the helper pool's --max-parallel slots is free, ready when it
 * writes "ready" on stdout within the helper deadline from that launch (else
 * its process group is killed, and the caller detaches what it mounted), and
 * watched through a pidfd until it exits, whether it is our child or a
 * restarted daemon has adopted it. Only processes we
 * started or adopted by the pid in the state (checked against /proc) are
 * ever signalled.
 */
#ifndef NFSV3_SUPERVISE_H
#define NFSV3_SUPERVISE_H

#include <stdbool.h>
#include <sys/types.h>

#include "driver.h"
#include "error.h"
#include "options.h"

typedef void (*supervise_ready_cb)(struct error *err, pid_t pid, void *data);
/* A watched idmapfs exited after it was ready, and was not asked to. */
typedef void (*supervise_died_cb)(struct driver *drv, const char *name);

/*
 * Start idmapfs serving backing on <mount-root>/<name> for spec's ids. cb
 * runs once, when it is ready or has failed; died, if it dies after that.
 */
void supervise_start(struct driver *drv, const char *name, const char *backing, const struct volume_spec *spec,
		     supervise_ready_cb cb, supervise_died_cb died, void *data);

/* Ask the named volume's idmapfs, if one is watched, to detach and exit (SIGTERM). */
void supervise_stop(struct driver *drv, const char *name);

/*
 * After a restart: watch pid for name if it is alive and is our idmapfs for
 * that name; died runs if it exits unasked. Returns false (and watches nothing) otherwise.
 */
bool supervise_adopt(struct driver *drv, const char *name, pid_t pid, supervise_died_cb died);

/* At exit: stop watching, leave every idmapfs serving. */
void supervise_let_go(struct driver *drv);

#endif
