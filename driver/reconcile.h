/*
 * At start, the state file meets the kernel's mount table
 * (/proc/self/mountinfo, read with libmount): mounts the state knows are
 * adopted, volumes whose mount is gone are marked unmounted, and mounts
 * under the mount root that the state does not know are purged (queued as
 * operations, so nothing waits for them).
 */
#ifndef NFSV3_RECONCILE_H
#define NFSV3_RECONCILE_H

#include "driver.h"
#include "error.h"

/*
 * First, helpers a daemon before this one left running on this mount root
 * are stopped (killed and waited for, each logged with the reason), except
 * the idmapfs processes the state records, which are adopted.
 * Returns the number of state changes made (0 when all agreed), or sets *err. */
int reconcile(struct driver *drv, const char *mountinfo_path, struct error **err);

#endif
