/*
 * Cleanup attributes: a local is released when it goes out of scope, so an
 * early return cannot leak it (as in bubblewrap, crun and systemd). Hand
 * ownership on with take_fd() or steal_pointer(), which leave nothing for
 * the cleanup to release. Use them where they remove hand-written exits;
 * a function whose result depends on a close() (a write's last error)
 * still closes by hand.
 */
#ifndef NFSV3_CLEANUP_H
#define NFSV3_CLEANUP_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <jansson.h>

static inline void cleanup_free(void *p)
{
	free(*(void **)p);
}

/* Keeps errno: a return value computed from it is not changed by the close. */
static inline void cleanup_close(const int *fd)
{
	int saved = errno;

	if (*fd >= 0)
		close(*fd);
	errno = saved;
}

static inline void cleanup_json(json_t **value)
{
	json_decref(*value);
}

#define CLEANUP_FREE __attribute__((cleanup(cleanup_free)))
#define CLEANUP_CLOSE __attribute__((cleanup(cleanup_close)))
#define CLEANUP_JSON __attribute__((cleanup(cleanup_json)))

static inline int take_fd(int *fd)
{
	int taken = *fd;

	*fd = -1;
	return taken;
}

static inline void *steal_pointer(void *pointer)
{
	void **p = pointer, *taken = *p;

	*p = NULL;
	return taken;
}

#endif
