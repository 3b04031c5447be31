#include <libmount.h>
#include <stdlib.h>
#include <string.h>

#include "nfsv3driver.h"
#include "mountinfo.h"
#include "options.h"

static int names_add(struct mountinfo_names *s, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **names = realloc(s->names, cap * sizeof(*names));
		if (!names)
			return -1;
		s->names = names;
		s->cap = cap;
	}
	return (s->names[s->n] = strdup(name)) ? (s->n++, 0) : -1;
}

bool mountinfo_has(const struct mountinfo_names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return true;
	return false;
}

void mountinfo_names_free(struct mountinfo_names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	*s = (struct mountinfo_names){ 0 };
}

struct error *mountinfo_read(const char *mountinfo_path, const char *root, struct mountinfo_names *volumes,
			     struct mountinfo_names *keys)
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
			if (!strchr(key, '/') && options_name_valid(key) && !mountinfo_has(keys, key) &&
			    names_add(keys, key) < 0) {
				err = error_new(ERROR_INTERNAL, "out of memory");
				goto out;
			}
			continue;
		}
		/* Anything nested inside a volume is not a volume mount. */
		if (strchr(name, '/') || !options_name_valid(name))
			continue;
		if (!mountinfo_has(volumes, name) && names_add(volumes, name) < 0) {
			err = error_new(ERROR_INTERNAL, "out of memory");
			goto out;
		}
	}
out:
	mnt_free_iter(iter);
	mnt_unref_table(table);
	return err;
}

bool mountinfo_is_mounted(const char *root, const char *name)
{
	struct mountinfo_names volumes = { 0 }, keys = { 0 };
	struct error *err = mountinfo_read("/proc/self/mountinfo", root, &volumes, &keys);
	/* Unreadable: say mounted, the safe answer for callers deciding whether a mount is gone. */
	bool mounted = err || mountinfo_has(&volumes, name);

	error_free(err);
	mountinfo_names_free(&volumes);
	mountinfo_names_free(&keys);
	return mounted;
}
