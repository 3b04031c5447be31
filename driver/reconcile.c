#include <libmount.h>
#include <stdlib.h>
#include <string.h>

#include "nfsv3driver.h"
#include "lifecycle.h"
#include "kernel.h"
#include "log.h"
#include "supervise.h"
#include "reconcile.h"
#include "upstream.h"

struct seen {
	char **names;
	size_t n, cap;
};

static int seen_add(struct seen *s, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **names = realloc(s->names, cap * sizeof(*names));
		if (!names)
			return -1;
		s->names = names;
		s->cap = cap;
	}
	return (s->names[s->n++] = strdup(name)) ? 0 : -1;
}

static bool seen_has(const struct seen *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return true;
	return false;
}

static void seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
}

/* Names of the volume mounts directly under the mount root, and keys of the kernel mounts under .kernel/. */
static struct error *read_mounts(const char *mountinfo_path, const char *root, struct seen *seen, struct seen *keys)
{
	struct libmnt_table *table = mnt_new_table();
	struct libmnt_iter *iter = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	size_t root_len = strlen(root);
	struct error *err = NULL;

	if (!table || !iter) {
		err = error_new(ERROR_INTERNAL, "out of memory");
		goto out;
	}
	if (mnt_table_parse_file(table, mountinfo_path) != 0) {
		err = error_new(ERROR_INTERNAL, "cannot parse %s", mountinfo_path);
		goto out;
	}
	while (mnt_table_next_fs(table, iter, &fs) == 0) {
		const char *target = mnt_fs_get_target(fs), *name;
		if (!target || strncmp(target, root, root_len) != 0 || target[root_len] != '/')
			continue;
		name = target + root_len + 1;
		if (strncmp(name, NFSV3_KERNEL_DIR "/", sizeof(NFSV3_KERNEL_DIR)) == 0) {
			const char *key = name + sizeof(NFSV3_KERNEL_DIR);
			if (!strchr(key, '/') && options_name_valid(key) && !seen_has(keys, key) && seen_add(keys, key) < 0) {
				err = error_new(ERROR_INTERNAL, "out of memory");
				goto out;
			}
			continue;
		}
		/* Anything nested inside a volume is not a volume mount. */
		if (strchr(name, '/') || !options_name_valid(name))
			continue;
		if (!seen_has(seen, name) && seen_add(seen, name) < 0) {
			err = error_new(ERROR_INTERNAL, "out of memory");
			goto out;
		}
	}
out:
	mnt_free_iter(iter);
	mnt_unref_table(table);
	return err;
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
	struct seen seen = { 0 }, keys = { 0 };
	struct error *err;
	struct volume *vol;
	int changes = 0;

	if ((err = read_mounts(mountinfo_path, drv->cfg->mount_root, &seen, &keys))) {
		*errp = err;
		seen_free(&seen);
		seen_free(&keys);
		return -1;
	}
	for (vol = registry_first(&drv->reg); vol; vol = registry_next(&drv->reg, vol)) {
		bool live = seen_has(&seen, vol->name);
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
			if (vol->spec.mapped && !(vol->idmapfs_pid && supervise_adopt(drv, vol->name, vol->idmapfs_pid))) {
				/* Its idmapfs is gone: the mount left behind is dead. */
				log_error("reconcile.idmapfs-gone", json_pack("{s:s, s:i}", "volume", vol->name, "pid",
									     (int)vol->idmapfs_pid));
				vol->idmapfs_pid = 0;
				changes++;
				lifecycle_submit_internal(drv, OP_DEAD, vol->name);
			}
		} else if (vol->mounted || volume_refs(vol) > 0) {
			log_info("reconcile.mount-gone", json_pack("{s:s}", "volume", vol->name));
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
		log_info("reconcile.purging", json_pack("{s:s}", "volume", seen.names[i]));
		lifecycle_submit_internal(drv, OP_PURGE, seen.names[i]);
	}
	for (size_t i = 0; i < keys.n; i++)
		if (kernel_users(drv, keys.names[i]) == 0)
			kernel_purge(drv, keys.names[i]);
	seen_free(&seen);
	seen_free(&keys);
	return changes;
}
