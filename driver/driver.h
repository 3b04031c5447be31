/* The daemon's shared context: one per process, owned by main.c. */
#ifndef NFSV3_DRIVER_H
#define NFSV3_DRIVER_H

#include <limits.h>
#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "directory.h"
#include "helper.h"
#include "registry.h"
#include "state.h"

struct http_server;
struct kernel_mount;
struct watched;

struct driver {
	uv_loop_t *loop;
	const struct config *cfg;
	struct registry reg;
	struct helper_pool *helpers;
	struct state_writer *state;
	struct directory *directory;   /* LDAP identity, or NULL when not configured */
	char mount_helper[PATH_MAX];   /* absolute path of nfsv3driver-mount */
	char idmapfs_helper[PATH_MAX]; /* absolute path of nfsv3driver-idmapfs */
	char state_path[PATH_MAX];
	bool stopping;                 /* SIGTERM seen: new plugin requests get an error */
	bool draining;                 /* POST /drain seen: new Mounts get an error, the rest is served */
	unsigned ops_in_flight;        /* submitted and not yet answered */
	void (*on_idle)(struct driver *drv); /* called when ops_in_flight drops to 0 */
	struct http_server *plugin_server, *admin_server; /* the listeners (main.c); /metrics counts their connections */
	struct kernel_mount *kernel_mounts; /* the shared kernel mounts (kernel.c) */
	struct watched *watched;       /* every idmapfs started or adopted, until it is gone (supervise.c) */
	uv_timer_t stop_check;         /* the look at idmapfs run states (supervise.c), open when stop_check_open */
	bool stop_check_open;
};

#endif
