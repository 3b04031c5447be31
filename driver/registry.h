/*
 * The volume registry: every volume by name, its options, whether it is
 * mounted, and who holds it (Docker's Mount IDs, or a count for callers
 * without an ID). A name that only has operations queued is in the registry
 * too (exists == false) so that its operations keep arrival order.
 */
#ifndef NFSV3_REGISTRY_H
#define NFSV3_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include <jansson.h>

#include "error.h"
#include "options.h"

struct volume_op;
struct secret;

struct volume {
	char *name;
	bool exists;             /* created and not removed */
	json_t *opts;            /* Create's Opts without secrets, as given */
	struct volume_spec spec; /* parsed opts, valid when !spec_error */
	struct error *spec_error;/* option error kept for Mount (non-Docker clients) */
	struct secret *password; /* LDAP: the binding's password until Mount proves it (lifecycle.c owns it) */
	bool mounted;            /* Mountpoint is live */
	bool dead;               /* its idmapfs died: the next Mount mounts again */
	bool upstream;           /* mounted by upstream's driver before a switch in place (upstream.h):
	                          * held as it is, unmounted as upstream mounted it */
	char **ids;              /* Docker Mount IDs holding it */
	size_t n_ids, cap_ids;
	unsigned count;          /* Mounts without an ID holding it */
	char *kernel_key;        /* NFS: the shared kernel mount it binds, or NULL */
	pid_t idmapfs_pid;       /* mapped: its idmapfs, or 0 */
	time_t last_used;        /* wall clock of its last operation: the sweep forgets it after --forget-unmounted-after */
	bool docker;             /* created by a Docker client, which removes its own volumes: never swept */
	struct volume_op *queue_head, *queue_tail; /* waiting operations, in arrival order */
	bool busy;               /* an operation of this volume is running */
	struct volume *bucket_next;
};

struct registry {
	struct volume **buckets;
	size_t n_buckets;
	size_t n_volumes; /* entries, including queue-only placeholders */
};

int registry_init(struct registry *reg);
void registry_destroy(struct registry *reg);

/* The volume of that name, or NULL. */
struct volume *registry_find(struct registry *reg, const char *name);
/* The volume of that name, adding a placeholder (exists == false) when absent. */
struct volume *registry_get(struct registry *reg, const char *name);
/* Drop a placeholder that no longer exists and has nothing queued or running. */
void registry_release(struct registry *reg, struct volume *vol);

/* Iterate: for (v = registry_first(r); v; v = registry_next(r, v)). */
struct volume *registry_first(struct registry *reg);
struct volume *registry_next(struct registry *reg, struct volume *vol);

/* Mark created with these options (sanitized copy taken) and parse result. */
void volume_set_options(struct volume *vol, const json_t *opts, struct volume_spec *spec, struct error *spec_error);
void volume_forget_options(struct volume *vol);

/* References. */
unsigned volume_refs(const struct volume *vol);
bool volume_has_id(const struct volume *vol, const char *id);
int volume_add_ref(struct volume *vol, const char *id); /* id NULL: count; 0 or -1 (out of memory) */
int volume_drop_ref(struct volume *vol, const char *id); /* 0, or -1 when not held */
void volume_clear_refs(struct volume *vol);

#endif
