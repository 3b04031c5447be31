#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_gate.h"
#include "log.h"

static struct policy *current;
static char path[4096];

const char *policy_gate_path(void)
{
	return path;
}

bool policy_gate_active(void)
{
	return current != NULL;
}

struct error *policy_gate_start(const char *given)
{
	char why[POLICY_WHY_MAX];
	bool missing;

	snprintf(path, sizeof(path), "%s", given ? given : NFSV3_POLICY_FILE);
	current = policy_load(path, &missing, why, sizeof(why));
	if (current) {
		log_info("policy.loaded", json_pack("{s:s, s:I}", "path", path, "rules",
						    (json_int_t)policy_rule_count(current)));
		return NULL;
	}
	if (missing && !given) {
		log_info("policy.none", json_pack("{s:s, s:s}", "path", path, "checks",
						  "none: no policy file, so every NFS server, export and identity is allowed"));
		return NULL;
	}
	return error_new(ERROR_INVALID, "policy %s", why);
}

void policy_gate_reload(void)
{
	char why[POLICY_WHY_MAX];
	struct policy *next;
	bool missing;

	next = policy_load(path, &missing, why, sizeof(why));
	if (next) {
		policy_free(current);
		current = next;
		log_info("policy.reloaded", json_pack("{s:s, s:I}", "path", path, "rules",
						      (json_int_t)policy_rule_count(current)));
		return;
	}
	if (missing && !current) {
		log_info("policy.none", json_pack("{s:s, s:s}", "path", path, "checks",
						  "none: no policy file, so every NFS server, export and identity is allowed"));
		return;
	}
	log_error("policy.reload-failed",
		  json_pack("{s:s, s:s, s:s}", "path", path, "error", why, "kept",
			    current ? "the policy loaded before" : "no policy (every binding allowed)"));
}

struct error *policy_gate_check(const struct volume_spec *spec, const char *addr, const struct config *cfg)
{
	struct policy_request req = { .host = spec->host, .addr = addr, .export = spec->path };
	char why[POLICY_WHY_MAX];

	if (!current || spec->kind != SOURCE_NFS)
		return NULL;
	if (spec->username) {
		req.identity = POLICY_ID_LDAP;
		req.ids_known = spec->mapped; /* resolved at the first Mount */
	} else if (spec->mapped) {
		req.identity = POLICY_ID_RAW;
		req.ids_known = true;
	} else {
		req.identity = POLICY_ID_NONE;
		req.ids_known = true;
	}
	if (req.ids_known) {
		req.uid = spec->mapped ? spec->uid : (uint32_t)cfg->app_uid;
		req.gid = spec->mapped ? spec->gid : (uint32_t)cfg->app_gid;
	}
	if (policy_check(current, &req, why, sizeof(why)) == POLICY_ALLOWED)
		return NULL;
	log_info("policy.refused", json_pack("{s:s, s:s, s:s*}", "error", why, "host", spec->host, "addr", addr));
	return error_new(ERROR_INVALID, "%s", why);
}

void policy_gate_free(void)
{
	policy_free(current);
	current = NULL;
}
