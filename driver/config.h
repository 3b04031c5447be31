/* The daemon's configuration, filled from the command line by main.c. */
#ifndef NFSV3_CONFIG_H
#define NFSV3_CONFIG_H

#include <stdbool.h>
#include <sys/types.h>

#include "log.h"

#define CONFIG_MAX_LISTEN 8

struct config {
	const char *listen[CONFIG_MAX_LISTEN]; /* "unix:PATH" / "tcp://HOST:PORT" */
	unsigned n_listen;
	const char *admin;          /* admin listener, or NULL */
	const char *name;           /* driver name: spec file, log source */
	const char *drivers_path;   /* where NAME.json goes, or NULL */
	const char *mount_root;     /* absolute */
	unsigned helper_timeout_s;  /* deadline of every helper run */
	unsigned max_parallel;      /* helpers running at once */
	uid_t app_uid;              /* uid apps run as: mapped owner in idmapfs */
	gid_t app_gid;
	bool allow_local_sources;   /* accept file:///dir sources (development) */
	const char *nfs_options;    /* operator's default kernel options, or NULL */
	const char *allowed_nfs_options; /* comma list of option names a binding may set */
	/* Mutual TLS on the TCP listeners: all three, or none. */
	const char *tls_cert, *tls_key, *tls_ca;
	/* The client certificate volman is to present, copied for the spec file. */
	const char *tls_client_cert, *tls_client_key;
	bool tls_insecure_skip_verify; /* what the spec file tells volman */
	bool ldap;                  /* --ldap-host given: username/password bindings resolved */
	unsigned forget_unmounted_after_s; /* the sweep: forget volman's unmounted volumes unused this long; 0 never */
	bool idmapfs_passthrough_off; /* --no-idmapfs-passthrough: idmapfs serves all file I/O itself */
	enum log_level log_level;   /* --log-level: handed to log_setup, which alone keeps it */
};

#endif
