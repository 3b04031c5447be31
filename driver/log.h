/*
 * Logs in the lager shape Cloud Foundry operators read: one JSON object per
 * line, {"timestamp","source","message","log_level","data"}. Values of keys
 * named like a secret are written as "REDACTED", at any depth.
 */
#ifndef NFSV3_LOG_H
#define NFSV3_LOG_H

#include <stdbool.h>
#include <jansson.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_ERROR = 2 };

/* Source name (the driver's --name) and the least level written. */
void log_setup(const char *source, enum log_level min_level);
/* Parse "debug", "info", "error"; returns -1 for anything else. */
int log_level_parse(const char *text);

/*
 * Write one line: message is prefixed with "<source>." as lager does; data
 * (may be NULL) is consumed. Secrets in data are redacted before writing.
 */
void log_write(enum log_level level, const char *message, json_t *data);

/* Whether a line of this level would be written (to skip building it). */
bool log_enabled(enum log_level level);

#define log_debug(msg, data) log_write(LOG_DEBUG, (msg), (data))
#define log_info(msg, data) log_write(LOG_INFO, (msg), (data))
#define log_error(msg, data) log_write(LOG_ERROR, (msg), (data))

/* True when key names a secret: password, secret, token, credential, key material. */
int log_key_is_secret(const char *key);

/* Replace the values of secret keys in value (in place), at any depth. */
void log_redact(json_t *value);

#endif
