/*
 * The route tables: the volume plugin API on the main listeners, /ping and
 * /evacuate on the admin listener. Turns requests into volume operations
 * and errors into each client's Err shape.
 */
#ifndef NFSV3_ROUTES_H
#define NFSV3_ROUTES_H

#include <jansson.h>

#include "driver.h"
#include "error.h"
#include "http.h"

/*
 * A request body (len bytes) as a JSON object in *body, or NULL for a blank
 * body. A body that is not JSON, not an object, or holds a NUL character in
 * any string gets an error naming what was wrong, where (the field's path,
 * or line and column) and what was expected, in words of the protocol, not
 * the parser's.
 */
struct error *routes_parse_body(const char *text, size_t len, json_t **body);

/* http_request_cb for the plugin listeners; data is the struct driver. */
void routes_handle(struct http_request *req, void *data);
/* http_request_cb for the admin listener; data is the struct driver. */
void routes_handle_admin(struct http_request *req, void *data);

#endif
