/*
 * Upstream's state file (cloudfoundry/nfsv3driver, through volumedriver's
 * persistState), read once when a cell switches drivers in place:
 *
 *   {"<name>": {"Name": "<name>", "Mountpoint": "<root>/<name>", "MountCount": 2}, ...}
 *
 * Upstream keeps no options (its NfsVolumeInfo marks Opts `json:"-"`), a
 * count and no IDs, and deletes an entry at its last Unmount; an entry
 * never mounted has an empty Mountpoint. Its mounts: the kernel NFS mount
 * right at <root>/<name>, or (a uid/gid binding) the kernel mount at
 * <root>/<name>_mapfs with mapfs's FUSE mount at <root>/<name>.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nfsv3driver.h"
#include "log.h"
#include "upstream.h"

#define U_NAME "Name"
#define U_MOUNTPOINT "Mountpoint"
#define U_MOUNT_COUNT "MountCount"

bool upstream_state_recognised(const json_t *doc)
{
	const char *key;
	json_t *entry;

	/* Ours always has "version"; upstream's keys are volume names, whose entries hold a Name. */
	if (!json_is_object(doc) || json_object_get(doc, "version"))
		return false;
	json_object_foreach((json_t *)doc, key, entry) {
		if (!json_is_object(entry) || !json_is_string(json_object_get(entry, U_NAME)))
			return false;
	}
	return true;
}

static struct error *import_entry(const char *key, const json_t *entry, struct registry *reg,
				  const struct config *cfg)
{
	const json_t *name = json_object_get(entry, U_NAME), *mountpoint = json_object_get(entry, U_MOUNTPOINT),
		     *count = json_object_get(entry, U_MOUNT_COUNT);
	char expected[PATH_MAX];
	struct volume *vol;
	json_t *none;
	json_int_t n;

	if (strcmp(json_string_value(name), key) != 0)
		return error_new(ERROR_INVALID, "\"%s\": Name \"%s\" is not its key", key, json_string_value(name));
	if (!options_name_valid(key))
		return error_new(ERROR_INVALID, "\"%s\": not a volume name this driver can serve", key);
	if (mountpoint && !json_is_string(mountpoint))
		return error_new(ERROR_INVALID, "\"%s\": Mountpoint: expected a string", key);
	if (count && !json_is_integer(count))
		return error_new(ERROR_INVALID, "\"%s\": MountCount: expected an integer", key);
	n = count ? json_integer_value(count) : 0;
	if (!mountpoint || json_string_length(mountpoint) == 0 || n < 1) {
		/* Created, never mounted: nothing to keep (volman creates again before it mounts). */
		log_info("state.upstream-skipped", json_pack("{s:s, s:s}", "volume", key, "reason", "not mounted"));
		return NULL;
	}
	if (n > UINT32_MAX)
		return error_new(ERROR_INVALID, "\"%s\": MountCount %lld: out of range", key, (long long)n);
	snprintf(expected, sizeof(expected), "%s/%s", cfg->mount_root, key);
	if (strcmp(json_string_value(mountpoint), expected) != 0) {
		/* Not under this mount root: not ours to adopt (nor to purge). */
		log_error("state.upstream-skipped",
			  json_pack("{s:s, s:s, s:s, s:s}", "volume", key, "reason", "Mountpoint is not under the mount root",
				    "mountpoint", json_string_value(mountpoint), "expected", expected));
		return NULL;
	}
	if (!(vol = registry_get(reg, key)))
		return error_new(ERROR_INTERNAL, "out of memory");
	/* No options: upstream kept none. Mount holds it as it is; Create (volman's, before every Mount) brings them. */
	none = json_object();
	volume_set_options(vol, none, NULL, error_new(ERROR_INVALID, "%s", NFSV3_ERR_UPSTREAM_NO_OPTIONS));
	json_decref(none);
	vol->mounted = true;
	vol->upstream = true;
	vol->count = (unsigned)n;
	log_info("state.upstream-adopted", json_pack("{s:s, s:i}", "volume", key, "references", (int)n));
	return NULL;
}

struct error *upstream_state_import(const json_t *doc, struct registry *reg, const struct config *cfg)
{
	const char *key;
	struct error *err;
	json_t *entry;

	json_object_foreach((json_t *)doc, key, entry) {
		if ((err = import_entry(key, entry, reg, cfg))) {
			registry_destroy(reg);
			registry_init(reg);
			return error_wrap(err, "upstream's state");
		}
	}
	return NULL;
}

bool upstream_mapfs_name(const char *name, char *out, size_t size)
{
	int n = snprintf(out, size, "%s%s", name, NFSV3_UPSTREAM_MAPFS_SUFFIX);

	return n > 0 && (size_t)n < size && strlen(out) <= NFSV3_NAME_MAX;
}
