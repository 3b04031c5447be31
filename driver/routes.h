/*
 * The route tables: the volume plugin API on the main listeners, /ping and
 * /evacuate on the admin listener. Turns requests into volume operations
 * and errors into each client's Err shape.
 */
#ifndef NFSV3_ROUTES_H
#define NFSV3_ROUTES_H

#include "driver.h"
#include "http.h"

/* http_request_cb for the plugin listeners; data is the struct driver. */
void routes_handle(struct http_request *req, void *data);
/* http_request_cb for the admin listener; data is the struct driver. */
void routes_handle_admin(struct http_request *req, void *data);

#endif
