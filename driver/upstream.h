/*
 * Upstream's driver-state.json (cloudfoundry/nfsv3driver), read in place of
 * ours when a cell switches drivers with apps still running: its mounted
 * volumes are adopted as they are (their mounts are upstream's, see
 * struct volume's upstream) instead of the file being moved aside and the
 * live mounts purged.
 */
#ifndef NFSV3_UPSTREAM_H
#define NFSV3_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "config.h"
#include "error.h"
#include "registry.h"

/* Whether doc has upstream's shape (an object of volume names to {"Name": ...}), not ours. */
bool upstream_state_recognised(const json_t *doc);

/*
 * Fill reg with upstream's mounted volumes (entries never mounted, or
 * mounted outside cfg's mount root, are skipped with a log line). An entry
 * of the wrong shape makes the whole document invalid: an error naming it,
 * reg left empty.
 */
struct error *upstream_state_import(const json_t *doc, struct registry *reg, const struct config *cfg);

/* <name>_mapfs, where upstream's mapfs bindings keep their kernel mount; false if too long for a name. */
bool upstream_mapfs_name(const char *name, char *out, size_t size);

#endif
