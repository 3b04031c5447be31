/*
 * The daemon's side of the operator policy (include/policy.h): the policy
 * in force, read at start and again on SIGHUP (a file that does not load
 * leaves the last good one in force), and the check of a volume's binding
 * against it. The mount helper (server and export) and idmapfs (ids) read
 * the same file themselves and check again: this check is for the answer,
 * not the only gate.
 */
#ifndef NFSV3_POLICY_GATE_H
#define NFSV3_POLICY_GATE_H

#include <stdbool.h>

#include "config.h"
#include "error.h"
#include "options.h"

/*
 * Read the policy at start: path (explicit: --policy) or, when NULL, the
 * helper's built-in NFSV3_POLICY_FILE if it exists. A missing explicit file
 * or a bad file is an error; no file at the built-in path is today's
 * behaviour (everything allowed), and the log says so.
 */
struct error *policy_gate_start(const char *path);
/* SIGHUP: read the file again; on failure keep the policy in force, and log either way. */
void policy_gate_reload(void);
/* The file the policy is read from. */
const char *policy_gate_path(void);
/* Whether a policy is in force. */
bool policy_gate_active(void);

/*
 * Check spec's server, export and identity. addr is the address that will
 * be mounted, or NULL before the name is resolved (then only what can be
 * decided without it is checked). An LDAP binding's ids are checked once
 * resolved; a binding without ids is checked as the app's own ids. NULL when
 * allowed (always, without a policy, and for local sources).
 */
struct error *policy_gate_check(const struct volume_spec *spec, const char *addr, const struct config *cfg);

/* Free the policy at exit. */
void policy_gate_free(void);

#endif
