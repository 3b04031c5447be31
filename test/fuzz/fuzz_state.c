/*
 * libFuzzer target: the state file. The bytes are written as a state file
 * and loaded by state_load (the bounded reader, the shape checks, moving a
 * bad file aside); whatever it accepts must survive a round trip: serialized
 * again and loaded again, it gives the same document.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"
#include "state.h"

static const struct config cfg = { .allow_local_sources = true, .allowed_nfs_options = "nolock,actimeo", .ldap = true };
static char dir[64], path[128];

static void cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* The files state_load set aside, removed in-process (a shell per input would halve the speed). */
static void remove_asides(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		abort();
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "driver-state.json.corrupt-", 26) == 0 && unlinkat(dirfd(d), de->d_name, 0) != 0 &&
		    unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) != 0)
			abort();
	closedir(d);
}

static void setup(void)
{
	if (dir[0])
		return;
	snprintf(dir, sizeof(dir), "/tmp/nfsv3-fuzz-state.XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/driver-state.json", dir);
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct registry reg, again;
	struct error *err;
	json_t *doc, *doc2;
	int fd;

	setup();
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	registry_init(&reg);
	err = state_load(path, &reg, &cfg);
	if (err) {
		/* Refused: set aside (and nothing loaded); clear the aside files for the next input. */
		if (reg.n_volumes != 0 || access(path, F_OK) == 0 || !strstr(err->message, "moved aside"))
			abort();
		error_free(err);
		registry_destroy(&reg);
		remove_asides();
		return 0;
	}
	doc = state_serialize(&reg);
	registry_init(&again);
	if ((err = state_deserialize(doc, &again, &cfg))) {
		fprintf(stderr, "a loaded state does not load again: %s\n", err->message);
		abort();
	}
	doc2 = state_serialize(&again);
	if (!json_equal(doc, doc2))
		abort();
	json_decref(doc);
	json_decref(doc2);
	registry_destroy(&again);
	registry_destroy(&reg);
	return 0;
}
