#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfsv3driver.h"
#include "kernel.h"
#include "lifecycle.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"

#define ID_MAX 128

#define NO_OP (-1)
#define BODY_INVALID "request body is not valid JSON"
#define JSON_PARSER_MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

/* A route either queues a volume operation on the body's Name or answers at once. */
struct route {
	const char *path;
	int op; /* the enum op_kind it submits, or NO_OP */
	void (*answer)(struct driver *drv, struct http_request *req); /* NO_OP rows */
	const char *log_name;
};

static enum metric_outcome outcome_of(int status, const json_t *doc)
{
	const char *err = json_string_value(json_object_get(doc, NFSV3_F_ERR));

	if (status >= 400 && status < 500)
		return METRIC_OUTCOME_REFUSED;
	return err && err[0] ? METRIC_OUTCOME_ERROR : METRIC_OUTCOME_OK;
}

static void respond_json(struct http_request *req, int status, json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);

	metrics_request(metrics_route(http_request_path(req)), outcome_of(status, doc));

	json_decref(doc);
	if (!text) {
		static const char oom[] = NFSV3_ERR_BODY("out of memory");
		http_respond(req, 500, oom, sizeof(oom) - 1);
		return;
	}
	http_respond(req, status, text, strlen(text));
	free(text);
}

static bool client_is_docker(struct http_request *req)
{
	const char *accept = http_request_header(req, "Accept");
	return accept && strstr(accept, NFSV3_DOCKER_MEDIA_TYPE);
}

/*
 * The one place an answer's Err is made: doc (a new object when NULL) gets
 * "Err": message ("" on success), in the shape this request's client reads.
 * volman shows a Mount or Unmount error to the app developer only when Err
 * is itself JSON, {"SafeDescription": ...}; Docker shows Err as it is.
 */
static json_t *err_set(json_t *doc, struct http_request *req, const char *message)
{
	const char *route = http_request_path(req);
	bool safe = message[0] && (strcmp(route, NFSV3_ROUTE_MOUNT) == 0 || strcmp(route, NFSV3_ROUTE_UNMOUNT) == 0) &&
		    !client_is_docker(req);
	json_t *wrapped, *value;
	char *text;

	if (!doc)
		doc = json_object();
	if (safe) {
		wrapped = json_pack("{s:s}", NFSV3_F_SAFE_DESCRIPTION, message);
		text = json_dumps(wrapped, JSON_COMPACT);
		json_decref(wrapped);
		value = json_string(text ? text : message);
		free(text);
	} else {
		value = json_string(message);
	}
	json_object_set_new(doc, NFSV3_F_ERR, value);
	return doc;
}

static json_t *err_doc(struct http_request *req, const char *message)
{
	return err_set(NULL, req, message);
}

/* A plugin request failed: answered 200 with the error in Err (both clients read it there). */
static void respond_error(struct http_request *req, const char *message)
{
	json_t *doc = err_doc(req, message);

	/* Both clients read Mountpoint on Mount; give it, empty. */
	if (strcmp(http_request_path(req), NFSV3_ROUTE_MOUNT) == 0)
		json_object_set_new(doc, NFSV3_F_MOUNTPOINT, json_string(""));
	log_info("server.request-failed", json_pack("{s:s, s:s}", "route", http_request_path(req), "error", message));
	respond_json(req, 200, doc);
}

static json_t *volume_status(const struct volume *vol)
{
	json_t *status = json_object();
	const json_t *source = vol->opts ? json_object_get(vol->opts, NFSV3_OPT_SOURCE) : NULL;

	if (source)
		json_object_set(status, "source", (json_t *)source);
	json_object_set_new(status, "mounted", json_boolean(vol->mounted));
	if (vol->spec_error)
		json_object_set_new(status, "error", json_string(vol->spec_error->message));
	return status;
}

static json_t *volume_json(struct driver *drv, const struct volume *vol, bool with_status)
{
	char mountpoint[PATH_MAX];
	json_t *doc = json_pack("{s:s, s:s, s:I}", NFSV3_F_NAME, vol->name, NFSV3_F_MOUNTPOINT,
				vol->mounted ? volume_mountpoint(drv, vol, mountpoint, sizeof(mountpoint)) : "",
				NFSV3_F_MOUNT_COUNT, (json_int_t)volume_refs(vol));
	if (with_status)
		json_object_set_new(doc, NFSV3_F_STATUS, volume_status(vol));
	return doc;
}

/* ---- operations ---- */

/* The histograms of the four operations, in enum op_kind's order. */
static const enum metric_histogram op_histograms[] = {
	[OP_CREATE] = METRIC_OPERATION_CREATE, [OP_MOUNT] = METRIC_OPERATION_MOUNT,
	[OP_UNMOUNT] = METRIC_OPERATION_UNMOUNT, [OP_REMOVE] = METRIC_OPERATION_REMOVE,
};

static void on_op_done(struct volume_op *op, const struct error *err)
{
	struct http_request *req = op->data;
	char mountpoint[PATH_MAX];
	json_t *doc;

	if ((size_t)op->kind < sizeof(op_histograms) / sizeof(op_histograms[0]))
		metrics_observe(op_histograms[op->kind], (double)(uv_hrtime() - op->started_ns) / 1e9);

	if (err) {
		respond_error(req, err->message);
		return;
	}
	doc = err_doc(req, "");
	switch (op->kind) {
	case OP_MOUNT:
	case OP_PATH:
		json_object_set_new(doc, NFSV3_F_MOUNTPOINT,
				    json_string(op->vol->mounted ? volume_mountpoint(op->drv, op->vol, mountpoint,
										     sizeof(mountpoint))
								 : ""));
		break;
	case OP_GET:
		json_object_set_new(doc, NFSV3_F_VOLUME, volume_json(op->drv, op->vol, true));
		break;
	default:
		break;
	}
	respond_json(req, 200, doc);
}

static struct error *check_id(const json_t *id)
{
	const char *text;

	if (!json_is_string(id))
		return error_new(ERROR_INVALID, "ID: expected a string");
	text = json_string_value(id);
	if (json_string_length(id) == 0 || json_string_length(id) > ID_MAX)
		return error_new(ERROR_INVALID, "ID: expected 1 to %d characters", ID_MAX);
	for (const char *p = text; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
			return error_new(ERROR_INVALID, "ID: may only contain letters, digits and _.-");
	if (strlen(text) != json_string_length(id))
		return error_new(ERROR_INVALID, "ID: may only contain letters, digits and _.-");
	return NULL;
}

static void submit(struct driver *drv, struct http_request *req, enum op_kind kind, json_t *body, const char *name)
{
	/* Only Mount and Unmount take Docker's ID. */
	const json_t *id = kind == OP_MOUNT || kind == OP_UNMOUNT ? json_object_get(body, NFSV3_F_ID) : NULL;
	struct volume_op *op;
	struct error *err;

	/* The BOSH drain stops new mounts while the rep moves apps away;
	 * unmounts, and everything else, still go through. */
	if (kind == OP_MOUNT && drv->draining) {
		respond_error(req, NFSV3_ERR_DRAINING);
		return;
	}
	if (id && !json_is_null(id) && (err = check_id(id))) {
		respond_error(req, err->message);
		error_free(err);
		return;
	}
	/* Copied first: a Mount must never go on without the ID volman counts it by. */
	char *id_copy = NULL;
	if (id && json_is_string(id) && !(id_copy = strdup(json_string_value(id)))) {
		respond_error(req, "out of memory");
		return;
	}
	op = op_new(drv, kind, name, on_op_done, req);
	if (!op) {
		free(id_copy);
		respond_error(req, "out of memory");
		return;
	}
	op->docker = client_is_docker(req);
	op->id = id_copy;
	if (kind == OP_CREATE) {
		json_t *opts = json_object_get(body, NFSV3_F_OPTS);
		op->opts = opts ? json_incref(opts) : NULL;
	}
	op_submit(op);
}

static void handle_list(struct driver *drv, struct http_request *req)
{
	json_t *volumes = json_array();

	for (struct volume *vol = registry_first(&drv->reg); vol; vol = registry_next(&drv->reg, vol))
		if (vol->exists)
			json_array_append_new(volumes, volume_json(drv, vol, false));
	respond_json(req, 200, err_set(json_pack("{s:o}", NFSV3_F_VOLUMES, volumes), req, ""));
}

static void handle_activate(struct driver *drv, struct http_request *req)
{
	respond_json(req, 200, json_pack("{s:[s]}", NFSV3_F_IMPLEMENTS, "VolumeDriver"));
}

static void handle_capabilities(struct driver *drv, struct http_request *req)
{
	respond_json(req, 200, json_pack("{s:{s:s}}", NFSV3_F_CAPABILITIES, NFSV3_F_SCOPE, "local"));
}

/* Adding a route is one row. */
static const struct route plugin_routes[] = {
	{ NFSV3_ROUTE_ACTIVATE, NO_OP, handle_activate, "activate" },
	{ NFSV3_ROUTE_CREATE, OP_CREATE, NULL, "create" },
	{ NFSV3_ROUTE_MOUNT, OP_MOUNT, NULL, "mount" },
	{ NFSV3_ROUTE_UNMOUNT, OP_UNMOUNT, NULL, "unmount" },
	{ NFSV3_ROUTE_REMOVE, OP_REMOVE, NULL, "remove" },
	{ NFSV3_ROUTE_PATH, OP_PATH, NULL, "path" },
	{ NFSV3_ROUTE_GET, OP_GET, NULL, "get" },
	{ NFSV3_ROUTE_LIST, NO_OP, handle_list, "list" },
	{ NFSV3_ROUTE_CAPABILITIES, NO_OP, handle_capabilities, "capabilities" },
};

static const struct route *route_find(const struct route *table, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].path, path) == 0)
			return &table[i];
	return NULL;
}

static bool body_is_blank(const char *body, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char)body[i]))
			return false;
	return true;
}

/* The token jansson quotes after "near '": what the client sent there. */
static void near_token(const json_error_t *jerr, char *out, size_t size)
{
	const char *near = strstr(jerr->text, "near '");
	size_t len;

	out[0] = '\0';
	if (!near)
		return;
	near += 6;
	len = strlen(near);
	if (len && near[len - 1] == '\'')
		len--;
	snprintf(out, size, "%.*s", (int)(len > 60 ? 60 : len), near);
}

/* jansson's error, in the words of the protocol: what was wrong, where, and what was expected. */
static struct error *json_syntax_error(const json_error_t *jerr)
{
	char where[64], token[64];
	const char *text = jerr->text;

	snprintf(where, sizeof(where), "line %d column %d", jerr->line, jerr->column);
	near_token(jerr, token, sizeof(token));
	switch (json_error_code(jerr)) {
	case json_error_premature_end_of_input:
		return error_new(ERROR_INVALID, "%s: it ends at %s before the JSON is complete; expected a whole object "
				 "such as {\"Name\":\"...\"}", BODY_INVALID, where);
	case json_error_end_of_input_expected:
		return error_new(ERROR_INVALID, "%s: more follows the JSON object at %s (%s); expected nothing after it",
				 BODY_INVALID, where, token);
	case json_error_invalid_utf8:
		return error_new(ERROR_INVALID, "%s: a byte at %s is not UTF-8; expected UTF-8 text", BODY_INVALID, where);
	case json_error_stack_overflow:
		return error_new(ERROR_INVALID, "%s: nested too deep at %s; expected at most %d levels", BODY_INVALID, where,
				 JSON_PARSER_MAX_DEPTH);
	case json_error_null_byte_in_key:
		return error_new(ERROR_INVALID, "%s: the key %s at %s holds a NUL character (\\u0000); expected keys without one",
				 BODY_INVALID, token, where);
	case json_error_duplicate_key:
		return error_new(ERROR_INVALID, "%s: the key %s appears twice (%s); expected each key once", BODY_INVALID, token,
				 where);
	case json_error_numeric_overflow:
		return error_new(ERROR_INVALID, "%s: the number at %s is out of range; expected an integer of at most 64 bits "
				 "or a finite number", BODY_INVALID, where);
	case json_error_invalid_syntax:
		/* jansson's own words name what it expected ("':' expected", "invalid escape") except for these two. */
		if (strncmp(text, "unexpected token", 16) == 0 || strncmp(text, "invalid token", 13) == 0)
			return error_new(ERROR_INVALID, "%s: unexpected '%s' at %s; expected a JSON value (a string, a number, an "
					 "object, an array, true, false or null)", BODY_INVALID, token, where);
		return error_new(ERROR_INVALID, "%s at %s: %.*s", BODY_INVALID, where,
				 (int)(strstr(text, " near ") ? strstr(text, " near ") - text : (ptrdiff_t)strlen(text)), text);
	default:
		return error_new(ERROR_INVALID, "%s at %s; expected a JSON object such as {\"Name\":\"...\"}", BODY_INVALID,
				 where);
	}
}

static const char *json_kind_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER:
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/*
 * Strings are parsed with their NULs kept (JSON_ALLOW_NUL), so that a NUL
 * is refused here, by the path of the field that holds it: C would see a
 * shorter string than the one sent. "path" is "Name", "Opts.source",
 * "Opts.nfs_options[2]".
 */
static struct error *find_nul(const json_t *v, char *path, size_t len, size_t size)
{
	const char *key;
	json_t *item;
	size_t i;
	struct error *err;

	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v))
			return error_new(ERROR_INVALID, "%s: may not contain NUL characters (\\u0000); expected text without "
					 "them", path);
		return NULL;
	}
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, item) {
			snprintf(path + len, size - len, "%s%s", len ? "." : "", key);
			if ((err = find_nul(item, path, strlen(path), size)))
				return err;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item) {
			snprintf(path + len, size - len, "[%zu]", i);
			if ((err = find_nul(item, path, strlen(path), size)))
				return err;
		}
	}
	path[len] = '\0';
	return NULL;
}

struct error *routes_parse_body(const char *text, size_t len, json_t **body)
{
	json_error_t jerr;
	struct error *err;
	char path[256] = "";

	*body = NULL;
	if (body_is_blank(text, len))
		return NULL;
	*body = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!*body)
		return json_syntax_error(&jerr);
	if (!json_is_object(*body))
		err = error_new(ERROR_INVALID, "request body: expected a JSON object such as {\"Name\":\"...\"}, got %s",
				json_kind_name(*body));
	else
		err = find_nul(*body, path, 0, sizeof(path));
	if (err) {
		json_decref(*body);
		*body = NULL;
	}
	return err;
}

void routes_handle(struct http_request *req, void *data)
{
	struct driver *drv = data;
	const char *path = http_request_path(req), *method = http_request_method(req), *body_text, *name = NULL;
	const struct route *route = route_find(plugin_routes, sizeof(plugin_routes) / sizeof(plugin_routes[0]), path);
	struct error *err;
	json_t *body = NULL, *name_value;
	char message[512];
	size_t len;

	if (!route) {
		snprintf(message, sizeof(message), "%s %.200s: the volume plugin routes are /Plugin.Activate and /VolumeDriver.*",
			 NFSV3_ERR_UNKNOWN_ROUTE, path);
		respond_json(req, 404, err_doc(req, message));
		return;
	}
	if (strcmp(method, "POST") != 0) {
		snprintf(message, sizeof(message), "method %.16s not allowed on %s: use POST", method, path);
		respond_json(req, 405, err_doc(req, message));
		return;
	}
	if (drv->stopping) {
		respond_error(req, NFSV3_ERR_SHUTTING_DOWN);
		return;
	}
	body_text = http_request_body(req, &len);
	if ((err = routes_parse_body(body_text, len, &body))) {
		respond_error(req, err->message);
		error_free(err);
		return;
	}
	if (route->op != NO_OP) {
		name_value = json_object_get(body, NFSV3_F_NAME);
		if (!name_value) {
			json_decref(body);
			respond_error(req, "request body: Name is required, expected {\"Name\":\"...\"}");
			return;
		}
		if (!json_is_string(name_value)) {
			snprintf(message, sizeof(message), "Name: expected a string, got %s", json_kind_name(name_value));
			json_decref(body);
			respond_error(req, message);
			return;
		}
		name = json_string_value(name_value);
		if ((err = options_check_name(name))) {
			respond_error(req, err->message);
			error_free(err);
			json_decref(body);
			return;
		}
	}
	/* Redaction edits in place, so the logged body is a copy: made only when written. */
	if (body && log_enabled(LOG_DEBUG)) {
		json_t *logged = json_deep_copy(body);
		log_debug(route->log_name, json_pack("{s:o}", "request", logged));
	}
	if (route->op != NO_OP)
		submit(drv, req, (enum op_kind)route->op, body, name);
	else
		route->answer(drv, req);
	json_decref(body);
}

/* ---- admin ---- */

struct evacuation {
	struct http_request *req;
	unsigned pending;
	json_t *errors;
};

static void on_evacuated(struct volume_op *op, const struct error *err)
{
	struct evacuation *ev = op->data;

	if (err)
		json_array_append_new(ev->errors, json_string(err->message));
	if (--ev->pending > 0)
		return;
	log_info("evacuate.finished", json_pack("{s:O}", "errors", ev->errors));
	if (json_array_size(ev->errors) == 0) {
		respond_json(ev->req, 200, err_doc(ev->req, ""));
	} else {
		json_t *doc = err_doc(ev->req, "some volumes could not be unmounted");
		json_object_set(doc, "Errors", ev->errors);
		respond_json(ev->req, 500, doc);
	}
	json_decref(ev->errors);
	free(ev);
}

static void handle_evacuate(struct driver *drv, struct http_request *req)
{
	struct evacuation *ev = calloc(1, sizeof(*ev));
	struct volume *vol, *next;

	if (!ev) {
		respond_json(req, 500, err_doc(req, "out of memory"));
		return;
	}
	ev->req = req;
	ev->errors = json_array();
	ev->pending = 1; /* held until every volume is queued */
	log_info("evacuate.starting", NULL);
	for (vol = registry_first(&drv->reg); vol; vol = next) {
		next = registry_next(&drv->reg, vol);
		if (!vol->mounted)
			continue;
		struct volume_op *op = op_new(drv, OP_EVACUATE, vol->name, on_evacuated, ev);
		if (!op)
			continue;
		ev->pending++;
		op_submit(op);
	}
	on_evacuated(&(struct volume_op){ .data = ev }, NULL);
}

/* Gauges are read now: a walk of the registry (1,000 volumes: microseconds). */
static void handle_metrics(struct driver *drv, struct http_request *req)
{
	struct metrics_gauges gauges = { 0 };
	size_t len;
	char *text;

	for (struct volume *vol = registry_first(&drv->reg); vol; vol = registry_next(&drv->reg, vol)) {
		gauges.volumes += vol->exists;
		/* A dead idmapfs's volume is mounted for its holders, but serves nothing. */
		gauges.mounts += vol->mounted && !vol->dead;
		gauges.mapped_mounts += vol->mounted && !vol->dead && vol->spec.mapped;
	}
	kernel_count(drv, &gauges.kernel_mounts, &gauges.kernel_mount_users);
	gauges.plugin_connections = drv->plugin_server ? http_server_connections(drv->plugin_server) : 0;
	gauges.admin_connections = drv->admin_server ? http_server_connections(drv->admin_server) : 0;
	gauges.resident_bytes = metrics_resident_bytes();
	metrics_request(METRIC_ROUTE_METRICS, METRIC_OUTCOME_OK);
	if (!(text = metrics_format(&gauges, &len))) {
		respond_json(req, 500, err_doc(req, "out of memory"));
		return;
	}
	http_respond_as(req, 200, METRICS_CONTENT_TYPE, text, len);
	free(text);
}

void routes_handle_admin(struct http_request *req, void *data)
{
	struct driver *drv = data;
	const char *path = http_request_path(req);

	if (strcmp(http_request_method(req), "GET") != 0 && strcmp(http_request_method(req), "POST") != 0) {
		respond_json(req, 405, err_doc(req, "use GET"));
		return;
	}
	if (strcmp(path, NFSV3_ADMIN_PING) == 0) {
		metrics_request(METRIC_ROUTE_PING, METRIC_OUTCOME_OK);
		http_respond(req, 200, "{}", 2);
		return;
	}
	if (strcmp(path, NFSV3_ADMIN_METRICS) == 0) {
		handle_metrics(drv, req);
		return;
	}
	if (strcmp(path, NFSV3_ADMIN_EVACUATE) == 0) {
		handle_evacuate(drv, req);
		return;
	}
	if (strcmp(path, NFSV3_ADMIN_DRAIN) == 0) {
		if (!drv->draining)
			log_info("drain.started", NULL);
		drv->draining = true;
		respond_json(req, 200, err_doc(req, ""));
		return;
	}
	respond_json(req, 404, err_doc(req,
					 "unknown route: the admin routes are /ping, /evacuate, /drain and /metrics"));
}
