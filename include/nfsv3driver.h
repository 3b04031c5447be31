/*
 * nfsv3driver: what the daemon, its helpers and its tests agree on.
 *
 * The wire protocol of the volume plugin API (routes, JSON field names, error
 * texts), the argv and exit codes of the privileged helpers, and the names of
 * files under the mount root. Nothing here is spelled twice anywhere else.
 */
#ifndef NFSV3DRIVER_H
#define NFSV3DRIVER_H

#define NFSV3_VERSION "0.1.0"

/* ---- Files and names ------------------------------------------------ */

#define NFSV3_DEFAULT_NAME "nfsv3driver"         /* --name default */
#define NFSV3_STATE_FILE "driver-state.json"      /* under the mount root, 0600 */
#define NFSV3_KERNEL_DIR ".kernel"                /* under the mount root, 0700 */
#define NFSV3_HELPER_MOUNT "nfsv3driver-mount"     /* bind / unmount / nfs helper */
#define NFSV3_HELPER_IDMAPFS "nfsv3driver-idmapfs" /* per-binding FUSE remap */
#define NFSV3_HELPER_SUBDIR "libexec/nfsv3driver"  /* helpers, relative to PREFIX */
#define NFSV3_TOOL_SMOKE "nfsv3driver-smoke"       /* the operator's check, beside the daemon's binary */
#define NFSV3_NAME_MAX 255                        /* longest volume name (NAME_MAX) */
/* A volume name starts with a letter or digit and holds only these characters. */
#define NFSV3_NAME_ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define NFSV3_NAME_PUNCT "_.=+@:-"
#define NFSV3_NAME_CHARS NFSV3_NAME_ALNUM NFSV3_NAME_PUNCT
#define NFSV3_KERNEL_KEY_LEN 16                   /* hex digits of a kernel mount's key under .kernel/ */
#define NFSV3_UPSTREAM_MAPFS_SUFFIX "_mapfs"      /* upstream's kernel mount of a mapfs binding: <root>/<name>_mapfs */

/* ---- Routes (all POST) ---------------------------------------------- */

#define NFSV3_ROUTE_ACTIVATE "/Plugin.Activate"
#define NFSV3_ROUTE_CREATE "/VolumeDriver.Create"
#define NFSV3_ROUTE_MOUNT "/VolumeDriver.Mount"
#define NFSV3_ROUTE_UNMOUNT "/VolumeDriver.Unmount"
#define NFSV3_ROUTE_REMOVE "/VolumeDriver.Remove"
#define NFSV3_ROUTE_PATH "/VolumeDriver.Path"
#define NFSV3_ROUTE_GET "/VolumeDriver.Get"
#define NFSV3_ROUTE_LIST "/VolumeDriver.List"
#define NFSV3_ROUTE_CAPABILITIES "/VolumeDriver.Capabilities"
#define NFSV3_ADMIN_PING "/ping"         /* admin listener, GET: liveness */
#define NFSV3_ADMIN_EVACUATE "/evacuate" /* admin listener, GET: unmount all of ours */
#define NFSV3_ADMIN_METRICS "/metrics"   /* admin listener, GET: Prometheus text format */
#define NFSV3_ADMIN_DRAIN "/drain"       /* admin listener, POST: refuse new mounts from now on */

/* Docker sends this media type in Accept; volman sends no Accept at all. */
#define NFSV3_DOCKER_MEDIA_TYPE "application/vnd.docker.plugins"

/* ---- JSON fields ---------------------------------------------------- */

#define NFSV3_F_NAME "Name"                 /* volume name, in requests and Volume */
#define NFSV3_F_OPTS "Opts"                 /* Create options object (or null) */
#define NFSV3_F_ID "ID"                     /* Docker's per-mount caller id */
#define NFSV3_F_ERR "Err"                   /* error text, "" on success */
#define NFSV3_F_MOUNTPOINT "Mountpoint"     /* absolute path of the mount */
#define NFSV3_F_VOLUME "Volume"             /* Get: one volume */
#define NFSV3_F_VOLUMES "Volumes"           /* List: all volumes, never null */
#define NFSV3_F_MOUNT_COUNT "MountCount"    /* Get/List: references held */
#define NFSV3_F_STATUS "Status"             /* Get/List: free-form status object */
#define NFSV3_F_IMPLEMENTS "Implements"     /* Activate answer */
#define NFSV3_F_CAPABILITIES "Capabilities" /* Capabilities answer */
#define NFSV3_F_SCOPE "Scope"               /* always "local" */
#define NFSV3_F_SAFE_DESCRIPTION "SafeDescription" /* volman SafeError wrapper */
/* A whole error answer as a literal, for bodies built without a JSON library (TEXT holds no '"' or '\\'). */
#define NFSV3_ERR_BODY(text) "{\"" NFSV3_F_ERR "\":\"" text "\"}"

/* Spec file for volman: <drivers-path>/<name>.json */
#define NFSV3_F_SPEC_ADDR "Addr"
#define NFSV3_F_SPEC_TLS "TLSConfig"
#define NFSV3_F_SPEC_UNIQUE "UniqueVolumeIds"
/* Fields of the spec file's TLSConfig (volman's driverhttp). */
#define NFSV3_F_SPEC_TLS_INSECURE "InsecureSkipVerify"
#define NFSV3_F_SPEC_TLS_CA "CAFile"
#define NFSV3_F_SPEC_TLS_CERT "CertFile"
#define NFSV3_F_SPEC_TLS_KEY "KeyFile"

/* ---- Binding options (Create Opts) ---------------------------------- */

#define NFSV3_OPT_SOURCE "source"           /* nfs://host[:port]/path, host:/path, file:///dir */
#define NFSV3_OPT_UID "uid"                 /* bound uid, 1..4294967294 */
#define NFSV3_OPT_GID "gid"                 /* bound gid, 1..4294967294 */
#define NFSV3_OPT_USERNAME "username"       /* LDAP user instead of uid/gid */
#define NFSV3_OPT_PASSWORD "password"       /* LDAP password: never logged nor stored */
#define NFSV3_OPT_READONLY "readonly"       /* boolean: read-only bind */
#define NFSV3_OPT_CACHE "cache"             /* boolean: attribute caching on */
#define NFSV3_OPT_VERSION "version"         /* 3, 4, 4.0, 4.1, 4.2 */
#define NFSV3_OPT_NFS_OPTIONS "nfs_options" /* extra kernel options, allowlisted */
#define NFSV3_OPT_MOUNT "mount"             /* sent by the CF broker, ignored */
#define NFSV3_OPT_EXPERIMENTAL "experimental" /* sent by the CF broker, ignored */
#define NFSV3_OPT_AUTO_CACHE "auto_cache"   /* sent by the CF broker, ignored */

/*
 * Kernel NFS options every mount starts from (Cloud Foundry's driver's). No
 * version: unless the operator's --nfs-options or the binding's version
 * pins one, the mount helper negotiates, newest first (4.2, 4.1, 4.0, 3), as
 * mount.nfs does for upstream's driver.
 */
#define NFSV3_NFS_DEFAULT_OPTIONS \
	"rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,actimeo=0,proto=tcp,sec=sys"

/* ---- Error texts (prefixes; the rest names the value) --------------- */

#define NFSV3_ERR_NOT_FOUND "volume not found"          /* Get/Path/Mount/... of an unknown name */
#define NFSV3_ERR_NOT_ALLOWED "Not allowed options"     /* unknown Create options: "Not allowed options: a, b" */
#define NFSV3_ERR_IN_USE "volume is in use"             /* Remove or replacing Create while mounted */
#define NFSV3_ERR_NOT_MOUNTED "volume is not mounted"   /* Unmount without a reference */
#define NFSV3_ERR_TIMEOUT "timed out after"             /* "timed out after N s <doing what>" */
#define NFSV3_ERR_UNKNOWN_ROUTE "unknown route"         /* 404 body */
#define NFSV3_ERR_SHUTTING_DOWN "driver is shutting down"
/* A volume adopted from upstream's state, which keeps no options, mounted again before any Create */
#define NFSV3_ERR_UPSTREAM_NO_OPTIONS "volume adopted from upstream's driver without options: create it again"
/* LDAP identity (username/password bindings) */
#define NFSV3_ERR_LDAP_OFF "options username and password: this driver has no LDAP server configured"
#define NFSV3_ERR_LDAP_TOGETHER "options username and uid/gid are not allowed together"
#define NFSV3_ERR_LDAP_NO_USERNAME "option password is only allowed with username"
#define NFSV3_ERR_LDAP_NO_PASSWORD "option password is required with username"
#define NFSV3_ERR_LDAP_EMPTY_PASSWORD "option password is empty"
#define NFSV3_ERR_LDAP_PASSWORD_GONE "the password of this volume is no longer held"
#define NFSV3_ERR_LDAP_UNKNOWN_USER "LDAP user not found"
#define NFSV3_ERR_LDAP_AMBIGUOUS "LDAP user is ambiguous"
#define NFSV3_ERR_LDAP_NO_UID "LDAP entry has no"          /* "... uidNumber: ..." */
#define NFSV3_ERR_LDAP_ROOT "LDAP identity is root"
#define NFSV3_ERR_LDAP_WRONG_PASSWORD "wrong password for LDAP user"
#define NFSV3_ERR_LDAP_UNREACHABLE "LDAP directory unreachable"
#define NFSV3_ERR_STATE_SAVE "cannot save the driver state" /* "...: <cause> (<step> <file>)"; the operation is not done */
#define NFSV3_ERR_DRAINING "driver is draining: this cell takes no new mounts"

/* ---- Helper protocol ------------------------------------------------ */
/*
 * nfsv3driver-mount takes exactly one verb and a fixed argv; every argument is
 * validated again by the helper. MOUNT_ROOT is absolute; NAME is a single path
 * component beneath it (a volume name, or ".kernel/<key>" for kernel mounts);
 * the helper creates and removes the mountpoint directory itself.
 *
 *   nfsv3driver-mount bind    MOUNT_ROOT SOURCE_DIR NAME rw|ro
 *       bind SOURCE_DIR (absolute; beneath MOUNT_ROOT/.kernel unless a local
 *       source) onto MOUNT_ROOT/NAME with nosuid,nodev (and ro).
 *   nfsv3driver-mount unmount MOUNT_ROOT NAME lazy|force
 *       detach MOUNT_ROOT/NAME (MNT_DETACH; with MNT_FORCE first when
 *       "force") and remove the directory. Not mounted is success.
 *   nfsv3driver-mount nfs     MOUNT_ROOT KERNEL_KEY HOST:/EXPORT ADDR OPTIONS
 *       mount the NFS export on MOUNT_ROOT/.kernel/KERNEL_KEY (issue 3).
 *
 *   nfsv3driver-idmapfs MOUNT_ROOT BACKING_DIR NAME UID GID APP_UID APP_GID rw|ro
 *                       [passthrough=auto|off]
 *       serve the remap of BACKING_DIR on MOUNT_ROOT/NAME until unmounted.
 *       Its children share its command line and are told apart by their
 *       process names (below): the daemon supervises the server alone.
 *
 * idmapfs writes NFSV3_IDMAPFS_READY on stdout once it serves; the daemon
 * waits for it within the helper deadline.
 *
 * On failure a helper prints exactly one line on stderr,
 * "<prog>: <what failed>: <why>", and exits with one of these codes.
 */
#define NFSV3_VERB_BIND "bind"
/* The positions in nfsv3driver-idmapfs's argv. */
enum nfsv3_idmapfs_arg {
	NFSV3_IDMAPFS_ARG_ROOT = 1,   /* MOUNT_ROOT */
	NFSV3_IDMAPFS_ARG_BACKING,    /* BACKING_DIR */
	NFSV3_IDMAPFS_ARG_NAME,       /* NAME */
	NFSV3_IDMAPFS_ARG_UID,        /* bound uid */
	NFSV3_IDMAPFS_ARG_GID,        /* bound gid */
	NFSV3_IDMAPFS_ARG_APP_UID,    /* the app's uid */
	NFSV3_IDMAPFS_ARG_APP_GID,    /* the app's gid */
	NFSV3_IDMAPFS_ARG_MODE,       /* rw|ro */
	NFSV3_IDMAPFS_ARG_PASSTHROUGH, /* optional: passthrough=auto|off */
	NFSV3_IDMAPFS_ARGC_MAX,       /* argc with every argument given */
};
#define NFSV3_IDMAPFS_READY "ready\n" /* idmapfs on stdout: mounted, privilege dropped, serving */
#define NFSV3_VERB_UNMOUNT "unmount"
#define NFSV3_VERB_NFS "nfs"
#define NFSV3_ARG_RW "rw"
#define NFSV3_ARG_RO "ro"
#define NFSV3_ARG_LAZY "lazy"
#define NFSV3_ARG_FORCE "force"
#define NFSV3_IDMAPFS_SENTRY_COMM "idmapfs-sentry" /* the unmount sentry */
#define NFSV3_IDMAPFS_PT_COMM "idmapfs-pt"         /* the passthrough sentry */

enum nfsv3_exit {
	NFSV3_EXIT_OK = 0,        /* done */
	NFSV3_EXIT_USAGE = 2,     /* wrong verb or argument count */
	NFSV3_EXIT_REFUSED = 3,   /* an argument failed validation: nothing was done */
	NFSV3_EXIT_PRIVILEGE = 4, /* could not drop to the needed capabilities */
	NFSV3_EXIT_MOUNT = 5,     /* the kernel refused the mount or unmount */
	NFSV3_EXIT_SERVER = 6,    /* the NFS server refused or could not be reached */
	NFSV3_EXIT_INTERNAL = 7,  /* anything else (out of memory, I/O error) */
};

#endif
