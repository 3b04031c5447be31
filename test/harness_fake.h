/*
 * Fake helpers for the unit suites: a shell script standing in for
 * nfsv3driver-mount or nfsv3driver-idmapfs in a test's own directory. Its
 * preamble appends its arguments as one line to DIR/calls and reads the
 * line in DIR/mode into $mode (empty without one); the suite's body says
 * what it then does.
 */
#ifndef NFSV3_HARNESS_FAKE_H
#define NFSV3_HARNESS_FAKE_H

#include <stdbool.h>
#include <stddef.h>

/* Write DIR/NAME (mode 0755): the preamble, then body; its path in path. */
void fake_helper_install(const char *dir, const char *name, const char *body, char *path, size_t size);

/* What the next runs read as $mode. */
void fake_helper_mode(const char *dir, const char *mode);

/* Runs so far whose arguments start with verb and a space (verb NULL: every run). */
int fake_helper_runs(const char *dir, const char *verb);

/* Whether a run's arguments started with prefix. */
bool fake_helper_ran(const char *dir, const char *prefix);

#endif
