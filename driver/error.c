#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"

/* Out of memory while reporting an error: a static object says so. */
static struct error error_oom = { ERROR_INTERNAL, "out of memory" };

struct error *error_new(enum error_code code, const char *fmt, ...)
{
	struct error *err = malloc(sizeof(*err));
	va_list ap;

	if (!err)
		return &error_oom;
	err->code = code;
	va_start(ap, fmt);
	if (vasprintf(&err->message, fmt, ap) < 0) {
		free(err);
		err = &error_oom;
	}
	va_end(ap);
	return err;
}

struct error *error_wrap(struct error *err, const char *fmt, ...)
{
	char *context, *joined;
	va_list ap;

	if (!err || err == &error_oom)
		return err;
	va_start(ap, fmt);
	if (vasprintf(&context, fmt, ap) < 0) {
		va_end(ap);
		return err;
	}
	va_end(ap);
	if (asprintf(&joined, "%s: %s", context, err->message) >= 0) {
		free(err->message);
		err->message = joined;
	}
	free(context);
	return err;
}

void error_free(struct error *err)
{
	if (!err || err == &error_oom)
		return;
	free(err->message);
	free(err);
}
