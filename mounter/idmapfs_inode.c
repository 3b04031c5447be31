/*
 * The inode table: one entry per backing inode the kernel holds a nodeid
 * for, keyed by st_dev/st_ino so that hard links and repeated lookups of one
 * object share one nodeid (the kernel then sees one inode with the right
 * nlink, as on the backing file system). The nodeid is the entry's address.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "idmapfs.h"

#define TABLE_INITIAL_BUCKETS 1024

int idmapfs_table_init(struct idmapfs_table *table)
{
	table->nbuckets = TABLE_INITIAL_BUCKETS;
	table->count = 0;
	table->buckets = calloc(table->nbuckets, sizeof(*table->buckets));
	if (table->buckets == NULL)
		return -1;
	return pthread_mutex_init(&table->lock, NULL) == 0 ? 0 : -1;
}

void idmapfs_table_destroy(struct idmapfs_table *table)
{
	for (size_t i = 0; i < table->nbuckets; i++) {
		struct idmapfs_inode *inode = table->buckets[i];

		while (inode != NULL) {
			struct idmapfs_inode *next = inode->next;

			close(inode->fd);
			free(inode);
			inode = next;
		}
	}
	free(table->buckets);
	pthread_mutex_destroy(&table->lock);
}

static size_t bucket_of(const struct idmapfs_table *table, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)dev;

	h ^= h >> 29;
	return (size_t)h & (table->nbuckets - 1);
}

/* Double the bucket array when the chains grow long; failure only costs speed. */
static void table_grow(struct idmapfs_table *table)
{
	size_t old_n = table->nbuckets;
	struct idmapfs_inode **old = table->buckets;
	struct idmapfs_inode **grown = calloc(old_n * 2, sizeof(*grown));

	if (grown == NULL)
		return;
	table->buckets = grown;
	table->nbuckets = old_n * 2;
	for (size_t i = 0; i < old_n; i++) {
		struct idmapfs_inode *inode = old[i];

		while (inode != NULL) {
			struct idmapfs_inode *next = inode->next;
			size_t b = bucket_of(table, inode->dev, inode->ino);

			inode->next = grown[b];
			grown[b] = inode;
			inode = next;
		}
	}
	free(old);
}

static void table_remove(struct idmapfs_table *table, struct idmapfs_inode *inode)
{
	struct idmapfs_inode **link = &table->buckets[bucket_of(table, inode->dev, inode->ino)];

	while (*link != NULL && *link != inode)
		link = &(*link)->next;
	if (*link != NULL) {
		*link = inode->next;
		table->count--;
	}
	inode->hashed = false;
	inode->next = NULL;
}

/* The hashed entry for dev/ino, or NULL; the caller holds the table lock. */
static struct idmapfs_inode *table_find(const struct idmapfs_table *table, dev_t dev, ino_t ino)
{
	struct idmapfs_inode *inode = table->buckets[bucket_of(table, dev, ino)];

	while (inode != NULL && !(inode->dev == dev && inode->ino == ino))
		inode = inode->next;
	return inode;
}

struct idmapfs_inode *idmapfs_table_get(struct idmapfs *fs, int fd, const struct stat *st)
{
	struct idmapfs_table *table = &fs->table;
	struct idmapfs_inode *inode, *fresh;

	/* The root is its own entry: a lookup of ".." or a bind of the root's parent finds it here. */
	if (st->st_dev == fs->root.dev && st->st_ino == fs->root.ino) {
		close(fd);
		pthread_mutex_lock(&table->lock);
		fs->root.nlookup++;
		pthread_mutex_unlock(&table->lock);
		return &fs->root;
	}
	pthread_mutex_lock(&table->lock);
	inode = table_find(table, st->st_dev, st->st_ino);
	if (inode != NULL) {
		inode->nlookup++;
		pthread_mutex_unlock(&table->lock);
		close(fd);
		return inode;
	}
	pthread_mutex_unlock(&table->lock);

	/* Allocate outside the lock; a racing lookup of the same object is resolved below. */
	fresh = calloc(1, sizeof(*fresh));
	if (fresh == NULL) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	fresh->fd = fd;
	fresh->dev = st->st_dev;
	fresh->ino = st->st_ino;
	fresh->is_symlink = S_ISLNK(st->st_mode);
	fresh->is_reg = S_ISREG(st->st_mode);
	fresh->nlookup = 1;
	fresh->hashed = true;

	pthread_mutex_lock(&table->lock);
	inode = table_find(table, st->st_dev, st->st_ino);
	if (inode != NULL) {
		inode->nlookup++;
		pthread_mutex_unlock(&table->lock);
		close(fd);
		free(fresh);
		return inode;
	}
	size_t b = bucket_of(table, st->st_dev, st->st_ino);

	fresh->next = table->buckets[b];
	table->buckets[b] = fresh;
	table->count++;
	if (table->count > table->nbuckets * 2)
		table_grow(table);
	pthread_mutex_unlock(&table->lock);
	return fresh;
}

void idmapfs_table_forget(struct idmapfs *fs, struct idmapfs_inode *inode, uint64_t n)
{
	struct idmapfs_table *table = &fs->table;
	bool gone;

	pthread_mutex_lock(&table->lock);
	/* The kernel never forgets more than it looked up; clamp rather than wrap if it did. */
	inode->nlookup -= n < inode->nlookup ? n : inode->nlookup;
	gone = inode->nlookup == 0 && inode != &fs->root;
	if (gone && inode->hashed)
		table_remove(table, inode);
	pthread_mutex_unlock(&table->lock);
	if (gone) {
		close(inode->fd);
		free(inode);
	}
}

void idmapfs_table_unhash(struct idmapfs *fs, struct idmapfs_inode *inode)
{
	if (inode == &fs->root)
		return;
	pthread_mutex_lock(&fs->table.lock);
	if (inode->hashed)
		table_remove(&fs->table, inode);
	pthread_mutex_unlock(&fs->table.lock);
}

/* An open handle on inode: false (nothing counted) once the inode is gone. */
bool idmapfs_table_open(struct idmapfs *fs, struct idmapfs_inode *inode)
{
	bool ok;

	pthread_mutex_lock(&fs->table.lock);
	ok = !atomic_load(&inode->gone);
	if (ok)
		inode->opens++;
	pthread_mutex_unlock(&fs->table.lock);
	return ok;
}

bool idmapfs_table_shared(struct idmapfs *fs, struct idmapfs_inode *inode)
{
	bool shared;

	pthread_mutex_lock(&fs->table.lock);
	shared = inode->opens > 1;
	pthread_mutex_unlock(&fs->table.lock);
	return shared;
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

enum idmapfs_data idmapfs_table_data_seen(struct idmapfs *fs, struct idmapfs_inode *inode, const struct stat *st,
					  bool caching)
{
	enum idmapfs_data seen = IDMAPFS_DATA_UNKNOWN;

	pthread_mutex_lock(&fs->table.lock);
	if (inode->data_known && same_time(&inode->data_mtime, &st->st_mtim) &&
	    same_time(&inode->data_ctime, &st->st_ctim) && inode->data_size == st->st_size)
		seen = IDMAPFS_DATA_SAME;
	else if (inode->data_known && inode->data_cached)
		seen = IDMAPFS_DATA_CHANGED;
	inode->data_known = true;
	inode->data_cached |= caching;
	inode->data_mtime = st->st_mtim;
	inode->data_ctime = st->st_ctim;
	inode->data_size = st->st_size;
	pthread_mutex_unlock(&fs->table.lock);
	return seen;
}

void idmapfs_table_close(struct idmapfs *fs, struct idmapfs_inode *inode)
{
	pthread_mutex_lock(&fs->table.lock);
	if (inode->opens > 0)
		inode->opens--;
	pthread_mutex_unlock(&fs->table.lock);
}

/*
 * The entry for the non-directory st, about to lose its last name, if
 * nothing has it open: marked gone, so that no open can start on it, and
 * returned for the caller to take its fd off the backing file. NULL if
 * there is no such entry, or it is open (the backing must keep it).
 */
struct idmapfs_inode *idmapfs_table_unpin(struct idmapfs *fs, const struct stat *st)
{
	struct idmapfs_table *table = &fs->table;
	struct idmapfs_inode *inode;

	pthread_mutex_lock(&table->lock);
	inode = table_find(table, st->st_dev, st->st_ino);
	if (inode != NULL && (inode->opens > 0 || atomic_load(&inode->gone)))
		inode = NULL;
	if (inode != NULL)
		atomic_store(&inode->gone, true);
	pthread_mutex_unlock(&table->lock);
	return inode;
}
