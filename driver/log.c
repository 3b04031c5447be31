#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static char log_source[256] = "nfsv3driver";
static enum log_level log_min = LOG_INFO;

void log_setup(const char *source, enum log_level min_level)
{
	snprintf(log_source, sizeof(log_source), "%s", source);
	log_min = min_level;
}

int log_level_parse(const char *text)
{
	static const char *const names[] = { "debug", "info", "error" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(text, names[i]) == 0)
			return (int)i;
	return -1;
}

int log_key_is_secret(const char *key)
{
	static const char *const words[] = { "password", "passwd", "secret", "token",
					     "credential", "private_key", "privatekey" };
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasestr(key, words[i]))
			return 1;
	return 0;
}

void log_redact(json_t *value)
{
	const char *key;
	json_t *member;
	size_t index;

	if (json_is_object(value)) {
		json_object_foreach(value, key, member) {
			if (log_key_is_secret(key))
				json_object_set_new(value, key, json_string("REDACTED"));
			else
				log_redact(member);
		}
	} else if (json_is_array(value)) {
		json_array_foreach(value, index, member)
			log_redact(member);
	}
}

bool log_enabled(enum log_level level)
{
	return level >= log_min;
}

void log_write(enum log_level level, const char *message, json_t *data)
{
	struct timespec now;
	char stamp[48], full[512];
	json_t *line;
	char *text;

	if (level < log_min) {
		json_decref(data);
		return;
	}
	if (!data)
		data = json_object();
	log_redact(data);
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(stamp, sizeof(stamp), "%lld.%09ld", (long long)now.tv_sec, now.tv_nsec);
	snprintf(full, sizeof(full), "%s.%s", log_source, message);
	line = json_pack("{s:s, s:s, s:s, s:i, s:o}", "timestamp", stamp, "source", log_source,
			 "message", full, "log_level", (int)level, "data", data);
	if (!line)
		return;
	text = json_dumps(line, JSON_COMPACT);
	json_decref(line);
	if (!text)
		return;
	/* One write per line, so lines from helpers' relays never interleave. */
	size_t len = strlen(text);
	text[len] = '\n';
	const char *p = text;
	for (size_t left = len + 1; left > 0;) {
		ssize_t n = write(STDOUT_FILENO, p, left);
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	free(text);
}
