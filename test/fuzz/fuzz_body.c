/*
 * libFuzzer target: request bodies, as routes.c parses them. Whatever the
 * bytes, routes_parse_body gives an object or an error; an error must name
 * what was wrong in the protocol's words (never the parser's internals, such
 * as JSON_ALLOW_NUL or "near '...'"), and an accepted body holds no string
 * with a NUL in it. Then Name goes through the volume-name check and ID
 * through its rules as a request's would.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfsv3driver.h"
#include "options.h"
#include "routes.h"

/* The message quotes what the client sent; only words the client did not send count. */
static bool sent(const uint8_t *data, size_t size, const char *text)
{
	return memmem(data, size, text, strlen(text)) != NULL;
}

static void check_message(const char *message, const uint8_t *data, size_t size)
{
	if (!message || !message[0] || (strstr(message, "JSON_") && !sent(data, size, "JSON_")) ||
	    (strstr(message, " near ") && !sent(data, size, "near"))) {
		fprintf(stderr, "bad error message: \"%s\"\n", message ? message : "(null)");
		abort();
	}
}

/* No string anywhere in an accepted body may hide a NUL. */
static void check_no_nul(const json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;

	if (json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v))
		abort();
	if (json_is_object(v))
		json_object_foreach((json_t *)v, key, item)
			check_no_nul(item);
	if (json_is_array(v))
		json_array_foreach(v, i, item)
			check_no_nul(item);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct error *err;
	json_t *body, *name;

	err = routes_parse_body((const char *)data, size, &body);
	if (err) {
		if (body)
			abort();
		check_message(err->message, data, size);
		error_free(err);
		return 0;
	}
	if (!body)
		return 0;
	if (!json_is_object(body))
		abort();
	check_no_nul(body);
	name = json_object_get(body, NFSV3_F_NAME);
	if (json_is_string(name)) {
		err = options_check_name(json_string_value(name));
		if (err)
			check_message(err->message, data, size);
		else if (!options_name_valid(json_string_value(name)))
			abort();
		error_free(err);
	}
	json_decref(body);
	return 0;
}
