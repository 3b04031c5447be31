#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "registry.h"

#define INITIAL_BUCKETS 64

/* Names are short and trusted to be valid by now. */
static size_t name_hash(const char *name)
{
	return (size_t)fnv1a(FNV1A_INIT, name);
}

int registry_init(struct registry *reg)
{
	memset(reg, 0, sizeof(*reg));
	reg->buckets = calloc(INITIAL_BUCKETS, sizeof(*reg->buckets));
	if (!reg->buckets)
		return -1;
	reg->n_buckets = INITIAL_BUCKETS;
	return 0;
}

static void volume_free(struct volume *vol)
{
	volume_forget_options(vol);
	volume_clear_refs(vol);
	free(vol->ids);
	free(vol->kernel_key);
	free(vol->name);
	free(vol);
}

void registry_destroy(struct registry *reg)
{
	for (size_t i = 0; i < reg->n_buckets; i++) {
		struct volume *vol = reg->buckets[i], *next;
		for (; vol; vol = next) {
			next = vol->bucket_next;
			volume_free(vol);
		}
	}
	free(reg->buckets);
	memset(reg, 0, sizeof(*reg));
}

struct volume *registry_find(struct registry *reg, const char *name)
{
	struct volume *vol = reg->buckets[name_hash(name) % reg->n_buckets];
	for (; vol; vol = vol->bucket_next)
		if (strcmp(vol->name, name) == 0)
			return vol;
	return NULL;
}

/* Double the table when it averages more than one entry a bucket. */
static void registry_grow(struct registry *reg)
{
	size_t n = reg->n_buckets * 2;
	struct volume **buckets = calloc(n, sizeof(*buckets));

	if (!buckets)
		return;
	for (size_t i = 0; i < reg->n_buckets; i++) {
		struct volume *vol = reg->buckets[i], *next;
		for (; vol; vol = next) {
			next = vol->bucket_next;
			size_t b = name_hash(vol->name) % n;
			vol->bucket_next = buckets[b];
			buckets[b] = vol;
		}
	}
	free(reg->buckets);
	reg->buckets = buckets;
	reg->n_buckets = n;
}

struct volume *registry_get(struct registry *reg, const char *name)
{
	struct volume *vol = registry_find(reg, name);
	size_t b;

	if (vol)
		return vol;
	vol = calloc(1, sizeof(*vol));
	if (!vol || !(vol->name = strdup(name))) {
		free(vol);
		return NULL;
	}
	if (reg->n_volumes >= reg->n_buckets)
		registry_grow(reg);
	b = name_hash(name) % reg->n_buckets;
	vol->bucket_next = reg->buckets[b];
	reg->buckets[b] = vol;
	reg->n_volumes++;
	return vol;
}

void registry_release(struct registry *reg, struct volume *vol)
{
	struct volume **link;

	if (vol->exists || vol->busy || vol->queue_head || vol->mounted)
		return;
	link = &reg->buckets[name_hash(vol->name) % reg->n_buckets];
	for (; *link; link = &(*link)->bucket_next) {
		if (*link == vol) {
			*link = vol->bucket_next;
			reg->n_volumes--;
			volume_free(vol);
			return;
		}
	}
}

static struct volume *first_from(struct registry *reg, size_t bucket)
{
	for (; bucket < reg->n_buckets; bucket++)
		if (reg->buckets[bucket])
			return reg->buckets[bucket];
	return NULL;
}

struct volume *registry_first(struct registry *reg)
{
	return first_from(reg, 0);
}

struct volume *registry_next(struct registry *reg, struct volume *vol)
{
	if (vol->bucket_next)
		return vol->bucket_next;
	return first_from(reg, name_hash(vol->name) % reg->n_buckets + 1);
}

void volume_set_options(struct volume *vol, const json_t *opts, struct volume_spec *spec, struct error *spec_error)
{
	volume_forget_options(vol);
	vol->opts = options_sanitize(opts);
	if (spec)
		vol->spec = *spec;
	else
		memset(&vol->spec, 0, sizeof(vol->spec));
	vol->spec_error = spec_error;
	vol->exists = true;
}

void volume_forget_options(struct volume *vol)
{
	json_decref(vol->opts);
	vol->opts = NULL;
	volume_spec_clear(&vol->spec);
	error_free(vol->spec_error);
	vol->spec_error = NULL;
	vol->exists = false;
}

unsigned volume_refs(const struct volume *vol)
{
	return vol->count + (unsigned)vol->n_ids;
}

bool volume_has_id(const struct volume *vol, const char *id)
{
	for (size_t i = 0; i < vol->n_ids; i++)
		if (strcmp(vol->ids[i], id) == 0)
			return true;
	return false;
}

int volume_add_ref(struct volume *vol, const char *id)
{
	if (!id) {
		vol->count++;
		return 0;
	}
	if (volume_has_id(vol, id))
		return 0;
	if (vol->n_ids == vol->cap_ids) {
		size_t cap = vol->cap_ids ? vol->cap_ids * 2 : 2;
		char **ids = realloc(vol->ids, cap * sizeof(*ids));
		if (!ids)
			return -1;
		vol->ids = ids;
		vol->cap_ids = cap;
	}
	if (!(vol->ids[vol->n_ids] = strdup(id)))
		return -1;
	vol->n_ids++;
	return 0;
}

int volume_drop_ref(struct volume *vol, const char *id)
{
	if (!id) {
		if (vol->count == 0)
			return -1;
		vol->count--;
		return 0;
	}
	for (size_t i = 0; i < vol->n_ids; i++) {
		if (strcmp(vol->ids[i], id) == 0) {
			free(vol->ids[i]);
			vol->ids[i] = vol->ids[--vol->n_ids];
			return 0;
		}
	}
	return -1;
}

void volume_clear_refs(struct volume *vol)
{
	for (size_t i = 0; i < vol->n_ids; i++)
		free(vol->ids[i]);
	vol->n_ids = 0;
	vol->count = 0;
}
