/*
 * The state file, <mount-root>/driver-state.json: every volume's name,
 * options (no secrets), references, kernel-mount key and idmapfs pid.
 * Written atomically (temp file, fsync, rename, fsync of the directory) with
 * mode 0600 after every change; writes are grouped, and run off the loop.
 */
#ifndef NFSV3_STATE_H
#define NFSV3_STATE_H

#include <uv.h>
#include <jansson.h>

#include "config.h"
#include "error.h"
#include "registry.h"

#define STATE_FORMAT_VERSION 1

/*
 * The most bytes a state file may hold (64 MiB, some 200,000 volumes): the
 * loader refuses a bigger file unread, and the writer refuses to write one
 * (it could not be loaded again).
 */
#define STATE_MAX_BYTES (64 << 20)

/* The whole registry as the state document. */
json_t *state_serialize(struct registry *reg);

/*
 * Fill reg from a state document. Any entry that does not have the expected
 * shape makes the whole document invalid: returns an error naming it and
 * leaves reg empty.
 */
struct error *state_deserialize(const json_t *doc, struct registry *reg, const struct config *cfg);

/*
 * Load path into reg. A missing file is an empty state. One that cannot be
 * used (unreadable, not a regular file, bigger than STATE_MAX_BYTES, not
 * JSON, the wrong shape) is renamed to <path>.corrupt-<unix time> (never
 * over an earlier one, never deleted) and the registry starts empty; the
 * returned error (to log) says why and where the file went. Never fails the
 * start.
 */
struct error *state_load(const char *path, struct registry *reg, const struct config *cfg);

/* Write doc to path atomically, now (blocking; the daemon writes through the writer below). */
struct error *state_write(const char *path, const json_t *doc);

struct state_writer;
typedef void (*state_saved_cb)(struct error *err, void *data);

struct state_writer *state_writer_new(uv_loop_t *loop, const char *path, struct registry *reg);
/*
 * Persist the registry as it is now; cb runs (on the loop) once a write that
 * began after this call has finished. Calls made while a write is running
 * share the next write.
 */
void state_commit(struct state_writer *w, state_saved_cb cb, void *data);
/* Nothing waiting or being written. */
int state_writer_idle(const struct state_writer *w);
void state_writer_free(struct state_writer *w);

#endif
