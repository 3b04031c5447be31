/*
 * libFuzzer target: Create's Opts through the option table, under two
 * operator configurations. Every refusal must have a message; every accepted
 * spec must give a kernel option string, and no option that only the
 * operator may set (sec other than sys, suid, dev, addr) may come from a
 * binding; sanitizing must drop the password.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfsv3driver.h"
#include "options.h"

static const struct config configs[] = {
	{ .allow_local_sources = true, .allowed_nfs_options = "nolock,actimeo,soft,hard,nconnect,port,proto,lookupcache" },
	{ .allow_local_sources = false, .allowed_nfs_options = "", .nfs_options = "nolock,timeo=30", .ldap = true },
};

/* Each comma-separated option of the kernel string, checked against what a binding may never set. */
static void check_kernel_string(const char *options)
{
	char *copy = strdup(options), *save = NULL;
	int sec = 0;

	for (char *opt = strtok_r(copy, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		if (strncmp(opt, "sec=", 4) == 0) {
			if (strcmp(opt, "sec=sys") != 0)
				abort();
			sec++;
		}
		if (strcmp(opt, "suid") == 0 || strcmp(opt, "dev") == 0 || strncmp(opt, "addr=", 5) == 0)
			abort();
	}
	if (sec != 1)
		abort();
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *opts = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL), *clean;
	struct volume_spec spec;
	struct error *err;

	if (!opts)
		return 0;
	for (size_t c = 0; c < sizeof(configs) / sizeof(configs[0]); c++) {
		err = options_parse(opts, &configs[c], &spec);
		if (err) {
			if (!err->message || !err->message[0])
				abort();
			error_free(err);
			continue;
		}
		if (spec.kind == SOURCE_NFS) {
			char *kernel = options_kernel_string(&spec, &configs[c], size % 2);
			if (!kernel)
				abort();
			check_kernel_string(kernel);
			free(kernel);
		}
		volume_spec_clear(&spec);
	}
	clean = options_sanitize(opts);
	if (json_object_get(clean, NFSV3_OPT_PASSWORD))
		abort();
	json_decref(clean);
	json_decref(opts);
	return 0;
}
