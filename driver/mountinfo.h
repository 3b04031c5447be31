/*
 * What the kernel's mount table (a mountinfo file, read with libmount)
 * shows under the mount root: the volume mounts directly beneath it and
 * the kernel mounts under .kernel/. Read by reconcile at start and by
 * lifecycle when it must know whether a mount is still there.
 */
#ifndef NFSV3_MOUNTINFO_H
#define NFSV3_MOUNTINFO_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* A set of names, each held once (owned copies). */
struct mountinfo_names {
	char **names;
	size_t n, cap;
};

/*
 * Fill volumes with the names of the mounts directly under root and keys
 * with the keys of the kernel mounts under root/.kernel/, from the table at
 * mountinfo_path. Both start empty and are freed by the caller, also on error.
 */
struct error *mountinfo_read(const char *mountinfo_path, const char *root, struct mountinfo_names *volumes,
			     struct mountinfo_names *keys);

bool mountinfo_has(const struct mountinfo_names *set, const char *name);
void mountinfo_names_free(struct mountinfo_names *set);

/* Whether root/name is a mount point now (true when the table cannot be read). */
bool mountinfo_is_mounted(const char *root, const char *name);

#endif
