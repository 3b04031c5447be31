/*
 * Shared kernel NFS mounts: one per (server address, export, effective
 * options) under <mount-root>/.kernel/<key>, mounted by the helper's nfs
 * verb on first use, reference-counted by the volumes bound to it, and
 * detached when the last one lets go. Operations on one key are serialized:
 * a volume that needs a key while it is mounting or unmounting waits.
 */
#ifndef NFSV3_KERNEL_H
#define NFSV3_KERNEL_H

#include <stdint.h>

#include "nfsv3driver.h"
#include "driver.h"
#include "error.h"
#include "options.h"

#define KERNEL_KEY_LEN NFSV3_KERNEL_KEY_LEN

typedef void (*kernel_cb)(struct error *err, const char *key, void *data);

/*
 * Resolve spec's host (never blocking the loop, under the helper deadline),
 * then take a reference on the kernel mount for it, mounting it when absent.
 * cb gets the key (valid during the call) or an error it owns.
 */
void kernel_acquire(struct driver *drv, const struct volume_spec *spec, kernel_cb cb, void *data);

/* Drop a reference taken by kernel_acquire (or adopted); the last one unmounts. */
void kernel_release(struct driver *drv, const char *key);

/* After a restart: a volume in the state holds key (the mount is live). */
void kernel_adopt(struct driver *drv, const char *key);

/* After a restart: a kernel mount under .kernel/ that no volume holds is detached. */
void kernel_purge(struct driver *drv, const char *key);

/* Number of volumes holding key (0 when unknown). */
unsigned kernel_users(struct driver *drv, const char *key);

/* Kernel mounts held now, and the volume mounts bound to them (for /metrics). */
void kernel_count(const struct driver *drv, uint64_t *mounts, uint64_t *users);

/* Free the table at exit. */
void kernel_free_all(struct driver *drv);

#endif
