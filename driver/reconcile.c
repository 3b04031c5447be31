#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libmount.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "nfsv3driver.h"
#include "lifecycle.h"
#include "kernel.h"
#include "log.h"
#include "mountinfo.h"
#include "reconcile.h"
#include "upstream.h"

/* ---- helpers left running by a daemon that died ---- */

#define STRAYS_MAX 4096
#define STRAY_WAIT_MS 5000

struct stray {
	pid_t pid;
	int pidfd;
	bool idmapfs;
	bool keep;  /* an idmapfs the state records serving its volume */
	char name[NFSV3_NAME_MAX + 1]; /* idmapfs: the volume; helper: its verb */
};

/* argv of pid (NUL-separated, up to max), or -1. */
static int read_argv(pid_t pid, const char *file, char *buf, size_t size, const char **argv, int max)
{
	char path[64];
	ssize_t n;
	int fd, argc = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (const char *p = buf; p < buf + n && argc < max; p += strlen(p) + 1)
		argv[argc++] = p;
	return argc;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/*
 * Our helpers on this mount root, found by their command line: the mount
 * helper (argv: helper VERB MOUNT_ROOT ...) and idmapfs servers (argv:
 * helper MOUNT_ROOT BACKING NAME ...); an idmapfs's sentries (unmount,
 * passthrough) share its command line and are told apart by their names. At start the daemon has
 * no children, so every one found was started by a daemon before it.
 */
static size_t find_strays(struct driver *drv, struct stray *out, size_t max)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	size_t n = 0;

	if (!proc)
		return 0;
	while ((de = readdir(proc)) && n < max) {
		char buf[8192], comm[32];
		const char *argv[5] = { 0 }, *comm_argv[1];
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		int argc;

		if (*end || pid <= 1 || pid == getpid())
			continue;
		if ((argc = read_argv((pid_t)pid, "cmdline", buf, sizeof(buf), argv, 5)) < 4)
			continue;
		bool helper = strcmp(base_name(argv[0]), NFSV3_HELPER_MOUNT) == 0 && strcmp(argv[2], drv->cfg->mount_root) == 0;
		bool idmapfs = strcmp(base_name(argv[0]), NFSV3_HELPER_IDMAPFS) == 0 &&
			       strcmp(argv[NFSV3_IDMAPFS_ARG_ROOT], drv->cfg->mount_root) == 0;
		if (!helper && !idmapfs)
			continue;
		if (idmapfs && read_argv((pid_t)pid, "comm", comm, sizeof(comm), comm_argv, 1) == 1) {
			comm[strcspn(comm, "\n")] = '\0';
			if (strcmp(comm, NFSV3_IDMAPFS_SENTRY_COMM) == 0 || strcmp(comm, NFSV3_IDMAPFS_PT_COMM) == 0)
				continue;
		}
		out[n] = (struct stray){ .pid = (pid_t)pid, .idmapfs = idmapfs };
		snprintf(out[n].name, sizeof(out[n].name), "%s", idmapfs ? argv[NFSV3_IDMAPFS_ARG_NAME] : argv[1]);
		/* Opened before any judgement: the pid cannot be reused under us from here on. */
		out[n].pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
		if (out[n].pidfd < 0)
			continue;
		if (idmapfs) {
			struct volume *vol = registry_find(&drv->reg, out[n].name);
			out[n].keep = vol && vol->mounted && vol->idmapfs_pid == (pid_t)pid;
		}
		n++;
	}
	closedir(proc);
	return n;
}

/*
 * Stop what a dead daemon left running, before the mount table is read: a
 * helper it had started may still be making a mount nobody will record,
 * and an idmapfs it started may be serving a volume the state says is not
 * mounted (the daemon died between the start and the state write). Each is
 * killed (a helper with its process group; an idmapfs's sentry then
 * detaches its mount) and waited for, so the table read next is final.
 * Kept: every idmapfs the state records for its volume, to be adopted.
 */
static size_t stop_strays(struct driver *drv, struct stray *strays, size_t n)
{
	struct pollfd pfd[STRAYS_MAX];
	size_t waiting = 0;
	uint64_t deadline;

	for (size_t i = 0; i < n; i++) {
		if (strays[i].keep)
			continue;
		if (strays[i].idmapfs)
			log_error("reconcile.stray-idmapfs-killed",
				  json_pack("{s:s, s:i, s:s}", "volume", strays[i].name, "pid", (int)strays[i].pid, "reason",
					    "the state does not record this process serving the volume (the driver stopped "
					    "between starting it and saving the mount)"));
		else
			log_error("reconcile.stray-helper-killed",
				  json_pack("{s:s, s:i, s:s}", "verb", strays[i].name, "pid", (int)strays[i].pid, "reason",
					    "a helper of a driver that stopped: its result would be recorded nowhere"));
		if (!strays[i].idmapfs)
			kill(-strays[i].pid, SIGKILL);
		syscall(SYS_pidfd_send_signal, strays[i].pidfd, SIGKILL, NULL, 0);
		pfd[waiting++] = (struct pollfd){ .fd = strays[i].pidfd, .events = POLLIN };
	}
	deadline = uv_hrtime() + (uint64_t)STRAY_WAIT_MS * 1000000;
	for (size_t left = waiting; left > 0;) {
		uint64_t now = uv_hrtime();
		int rc = now < deadline ? poll(pfd, waiting, (int)((deadline - now) / 1000000) + 1) : 0;
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			log_error("reconcile.stray-survived", json_pack("{s:I, s:i}", "processes", (json_int_t)left,
									  "waited_ms", STRAY_WAIT_MS));
			break;
		}
		left = 0;
		for (size_t i = 0; i < waiting; i++) {
			if (pfd[i].fd >= 0 && pfd[i].revents)
				pfd[i].fd = -1;
			left += pfd[i].fd >= 0;
		}
	}
	return waiting;
}

static const struct stray *kept_idmapfs(const struct stray *strays, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (strays[i].keep && strays[i].pid == pid)
			return &strays[i];
	return NULL;
}

/* Whether name is <volume>_mapfs of a volume still held on upstream's mounts. */
static bool upstream_keeps(struct driver *drv, const char *name)
{
	size_t len = strlen(name), suffix = strlen(NFSV3_UPSTREAM_MAPFS_SUFFIX);
	char base[NFSV3_NAME_MAX + 1];
	struct volume *vol;

	if (len <= suffix || len - suffix >= sizeof(base) || strcmp(name + len - suffix, NFSV3_UPSTREAM_MAPFS_SUFFIX) != 0)
		return false;
	memcpy(base, name, len - suffix);
	base[len - suffix] = '\0';
	vol = registry_find(&drv->reg, base);
	return vol && vol->upstream && vol->mounted;
}

int reconcile(struct driver *drv, const char *mountinfo_path, struct error **errp)
{
	struct mountinfo_names seen = { 0 }, keys = { 0 };
	struct stray *strays = calloc(STRAYS_MAX, sizeof(*strays));
	size_t n_strays = 0;
	struct error *err;
	struct volume *vol;
	int changes = 0;

	if (strays) {
		n_strays = find_strays(drv, strays, STRAYS_MAX);
		stop_strays(drv, strays, n_strays);
	}
	if ((err = mountinfo_read(mountinfo_path, drv->cfg->mount_root, &seen, &keys))) {
		*errp = err;
		changes = -1;
		goto out;
	}
	for (vol = registry_first(&drv->reg); vol; vol = registry_next(&drv->reg, vol)) {
		bool live = mountinfo_has(&seen, vol->name);
		if (vol->upstream && vol->mounted && live) {
			/* Upstream's mount, held as it is (no kernel key, no idmapfs of ours). */
			log_info("reconcile.upstream-adopted", json_pack("{s:s, s:i}", "volume", vol->name, "references",
									 (int)volume_refs(vol)));
		} else if (vol->upstream) {
			log_info("reconcile.upstream-gone", json_pack("{s:s}", "volume", vol->name));
			vol->mounted = false;
			vol->upstream = false;
			volume_clear_refs(vol);
			if (vol->opts && json_object_size(vol->opts) == 0)
				volume_forget_options(vol);
			changes++;
		} else if (vol->mounted && live) {
			log_info("reconcile.adopted", json_pack("{s:s, s:i}", "volume", vol->name, "references",
								(int)volume_refs(vol)));
			if (vol->kernel_key)
				kernel_adopt(drv, vol->kernel_key);
			if (vol->spec.mapped && !(vol->idmapfs_pid && lifecycle_adopt_idmapfs(drv, vol->name, vol->idmapfs_pid))) {
				/* Its idmapfs is gone: the mount left behind is dead. */
				log_error("reconcile.idmapfs-gone", json_pack("{s:s, s:i}", "volume", vol->name, "pid",
									     (int)vol->idmapfs_pid));
				vol->idmapfs_pid = 0;
				changes++;
				lifecycle_submit_internal(drv, OP_DEAD, vol->name);
			}
		} else if (vol->mounted || volume_refs(vol) > 0) {
			log_info("reconcile.mount-gone", json_pack("{s:s}", "volume", vol->name));
			/* An idmapfs whose mount was detached serves nothing: let it finish (SIGTERM). */
			if (vol->idmapfs_pid && kept_idmapfs(strays, n_strays, vol->idmapfs_pid)) {
				log_info("reconcile.idmapfs-stopped", json_pack("{s:s, s:i, s:s}", "volume", vol->name, "pid",
									       (int)vol->idmapfs_pid, "reason",
									       "its mount is no longer attached"));
				syscall(SYS_pidfd_send_signal, kept_idmapfs(strays, n_strays, vol->idmapfs_pid)->pidfd,
					SIGTERM, NULL, 0);
			}
			vol->mounted = false;
			vol->idmapfs_pid = 0;
			free(vol->kernel_key);
			vol->kernel_key = NULL;
			volume_clear_refs(vol);
			changes++;
		}
	}
	for (size_t i = 0; i < seen.n; i++) {
		vol = registry_find(&drv->reg, seen.names[i]);
		if (vol && vol->mounted)
			continue;
		if (upstream_keeps(drv, seen.names[i]))
			continue;
		log_info("reconcile.purging",
			 json_pack("{s:s, s:s}", "volume", seen.names[i], "reason",
				   !vol ? "mounted under the mount root, but the state has no such volume"
					: "mounted, but the state says it is not (the driver stopped before saving the mount)"));
		lifecycle_submit_internal(drv, OP_PURGE, seen.names[i]);
	}
	for (size_t i = 0; i < keys.n; i++) {
		if (kernel_users(drv, keys.names[i]) > 0)
			continue;
		log_info("reconcile.kernel-mount-unused", json_pack("{s:s, s:s}", "key", keys.names[i], "reason",
								    "no volume the state knows is bound to it"));
		kernel_purge(drv, keys.names[i]);
	}
out:
	for (size_t i = 0; i < n_strays; i++)
		close(strays[i].pidfd);
	free(strays);
	mountinfo_names_free(&seen);
	mountinfo_names_free(&keys);
	return changes;
}
