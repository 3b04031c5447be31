/* Fake helpers for the unit suites (harness_fake.h). */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "harness_fake.h"

static const char preamble[] =
	"#!/bin/sh\n"
	"d=${0%/*}\n"
	"echo \"$*\" >> \"$d/calls\"\n"
	"read mode < \"$d/mode\" 2>/dev/null || mode=\n";

void fake_helper_install(const char *dir, const char *name, const char *body, char *path, size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(preamble, f);
	fputs(body, f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, 0755), 0);
}

void fake_helper_mode(const char *dir, const char *mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/mode", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%s\n", mode);
	ck_assert_int_eq(fclose(f), 0);
}

/* Count the lines of DIR/calls starting with prefix (NULL: all). */
static int count_calls(const char *dir, const char *prefix)
{
	char path[512], line[2048];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/calls", dir);
	if (!(f = fopen(path, "r")))
		return 0;
	while (fgets(line, sizeof(line), f))
		n += !prefix || strncmp(line, prefix, strlen(prefix)) == 0;
	fclose(f);
	return n;
}

int fake_helper_runs(const char *dir, const char *verb)
{
	char prefix[256];

	if (!verb)
		return count_calls(dir, NULL);
	snprintf(prefix, sizeof(prefix), "%s ", verb);
	return count_calls(dir, prefix);
}

bool fake_helper_ran(const char *dir, const char *prefix)
{
	return count_calls(dir, prefix) > 0;
}
