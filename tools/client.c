/*
 * The small blocking HTTP/1.1 client (see client.h). Every wait is a poll
 * bounded by the call's deadline, so a driver that stops answering costs
 * the caller its timeout and no more; the socket itself stays blocking for
 * callers that also write raw bytes on it.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void set_why(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Milliseconds left before the deadline, at least 0. */
static int remaining_ms(double deadline)
{
	double left = deadline - now_ms();

	return left <= 0 ? 0 : (int)left + 1;
}

/* Wait for events on fd until the deadline: 0, or -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, double deadline)
{
	struct pollfd p = {.fd = fd, .events = events};

	for (;;) {
		int n = poll(&p, 1, remaining_ms(deadline));

		if (n > 0)
			return 0;
		if (n == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

/* A timeout as people say it: "60 s", or "250 ms" when not whole seconds. */
static const char *say_timeout(int timeout_ms, char *text, size_t len)
{
	if (timeout_ms % 1000 == 0)
		snprintf(text, len, "%d s", timeout_ms / 1000);
	else
		snprintf(text, len, "%d ms", timeout_ms);
	return text;
}

/* ---- Addresses ------------------------------------------------------- */

int client_parse_address(const char *text, struct client_address *a, char *why, size_t why_len)
{
	const char *rest;

	memset(a, 0, sizeof(*a));
	if (strncmp(text, "unix:", 5) == 0) {
		rest = text + 5;
		if (strncmp(rest, "//", 2) == 0)
			rest += 2;
		if (rest[0] != '/') {
			set_why(why, why_len, "unix socket path must be absolute: %s", text);
			return -1;
		}
		if (strlen(rest) >= sizeof(a->path)) {
			set_why(why, why_len, "unix socket path longer than %zu bytes: %s", sizeof(a->path) - 1, text);
			return -1;
		}
		a->is_unix = true;
		strcpy(a->path, rest);
		return 0;
	}
	if (strncmp(text, "tcp://", 6) == 0) {
		rest = text + 6;
	} else if (strncmp(text, "http://", 7) == 0) {
		rest = text + 7;
	} else if (strncmp(text, "https://", 8) == 0) {
		set_why(why, why_len, "https is not supported, use the driver's plain http listener: %s", text);
		return -1;
	} else {
		set_why(why, why_len, "expected unix:/path, tcp://host:port or http://host:port, got %s", text);
		return -1;
	}

	const char *host = rest, *host_end, *colon;

	if (rest[0] == '[') {
		host = rest + 1;
		host_end = strchr(host, ']');
		if (!host_end || host_end[1] != ':') {
			set_why(why, why_len, "malformed [IPv6]:port in %s", text);
			return -1;
		}
		colon = host_end + 1;
	} else {
		colon = strrchr(rest, ':');
		host_end = colon;
	}
	if (!colon || host_end == host) {
		set_why(why, why_len, "missing host or port in %s", text);
		return -1;
	}
	size_t host_len = (size_t)(host_end - host);
	const char *port = colon + 1;
	size_t port_len = strspn(port, "0123456789");

	if (port_len == 0 || port_len >= sizeof(a->port) || host_len >= sizeof(a->host) ||
	    (port[port_len] != '\0' && strcmp(port + port_len, "/") != 0)) {
		set_why(why, why_len, "malformed host:port in %s", text);
		return -1;
	}
	memcpy(a->host, host, host_len);
	memcpy(a->port, port, port_len);
	return 0;
}

/* ---- Connecting ------------------------------------------------------ */

/* Close fd keeping errno, which says why it is being given up. */
static void close_keeping_errno(int fd)
{
	int saved = errno;

	close(fd);
	errno = saved;
}

int client_connect(const struct client_address *a, int timeout_ms, char *why, size_t why_len)
{
	double deadline = now_ms() + timeout_ms;
	int fd;

	if (a->is_unix) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};

		strcpy(sun.sun_path, a->path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			set_why(why, why_len, "connect to unix:%s: %s", a->path, strerror(errno));
			if (fd >= 0)
				close_keeping_errno(fd);
			return -1;
		}
		return fd;
	}

	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
	bool ipv6 = strchr(a->host, ':') != NULL;
	int rc = getaddrinfo(a->host, a->port, &hints, &res);

	if (rc != 0) {
		set_why(why, why_len, "resolve %s: %s", a->host, gai_strerror(rc));
		errno = EHOSTUNREACH;
		return -1;
	}
	fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0) {
			int err = 0;
			socklen_t len = sizeof(err);

			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err == 0)
				break;
			errno = err;
		}
		set_why(why, why_len, "connect to %s%s%s:%s: %s", ipv6 ? "[" : "", a->host, ipv6 ? "]" : "", a->port,
			strerror(errno));
		close_keeping_errno(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return -1;
	/* Requests go out in one write: Nagle would only hold back the next one. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

/* ---- One exchange ---------------------------------------------------- */

static int send_all(int fd, const char *buf, size_t len, double deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLOUT, deadline) < 0)
				return -1;
		} else if (n < 0 && errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

/*
 * Undo chunked transfer coding in place. Returns the body length, or -1 when
 * the chunks are malformed or incomplete.
 */
static ssize_t dechunk(char *body, size_t len)
{
	size_t in = 0, out = 0;

	for (;;) {
		char *end;
		unsigned long size = strtoul(body + in, &end, 16);
		char *line_end = memmem(body + in, len - in, "\r\n", 2);

		if (!line_end || end == body + in)
			return -1;
		in = (size_t)(line_end - body) + 2;
		if (size == 0)
			return (ssize_t)out;
		if (size > len - in || len - in - size < 2)
			return -1;
		memmove(body + out, body + in, size);
		out += size;
		in += size + 2;
	}
}

/* Case-insensitive header lookup in a NUL-terminated header block; copies the value. */
static bool find_header(const char *head, const char *name, char *value, size_t value_len)
{
	size_t name_len = strlen(name);

	for (const char *line = strstr(head, "\r\n"); line; line = strstr(line, "\r\n")) {
		line += 2;
		if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
			const char *v = line + name_len + 1;

			v += strspn(v, " \t");
			size_t n = strcspn(v, "\r\n");

			while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			if (n >= value_len)
				n = value_len - 1;
			memcpy(value, v, n);
			value[n] = '\0';
			return true;
		}
	}
	return false;
}

/* The request in one buffer, so that it leaves in one write. */
static char *format_request(const struct client_address *a, const struct client_request *rq, size_t *len)
{
	const char *host = a->is_unix ? "localhost" : a->host;
	bool ipv6 = strchr(host, ':') != NULL;
	size_t body_len = rq->body ? (rq->body_len ? rq->body_len : strlen(rq->body)) : 0;
	char *head = NULL, *request;
	int head_len = asprintf(&head, "%s %s HTTP/1.1\r\nHost: %s%s%s\r\n%sContent-Length: %zu\r\n%s\r\n", rq->method,
				rq->path, ipv6 ? "[" : "", host, ipv6 ? "]" : "", rq->headers ? rq->headers : "",
				body_len, rq->keep_alive ? "" : "Connection: close\r\n");

	if (head_len < 0)
		return NULL;
	request = realloc(head, (size_t)head_len + body_len + 1);
	if (!request) {
		free(head);
		return NULL;
	}
	if (body_len)
		memcpy(request + head_len, rq->body, body_len);
	request[head_len + body_len] = '\0';
	*len = (size_t)head_len + body_len;
	return request;
}

/* client_exchange by a deadline; timeout_ms is what the caller gave, for the messages. */
static int exchange(int fd, const struct client_address *a, const struct client_request *rq, double deadline,
		    int timeout_ms, struct client_response *rs, char *why, size_t why_len)
{
	const char *route = rq->path;
	size_t limit = rq->limit ? rq->limit : CLIENT_DEFAULT_LIMIT;
	size_t request_len, cap = 8192, len = 0, header_len = 0, content_length = SIZE_MAX;
	char *request, *buf = NULL, value[64], took[32];
	bool chunked = false, server_closes = !rq->keep_alive;

	memset(rs, 0, sizeof(*rs));
	if (!(request = format_request(a, rq, &request_len))) {
		set_why(why, why_len, "out of memory");
		return -1;
	}
	if (send_all(fd, request, request_len, deadline) < 0) {
		set_why(why, why_len, "send %s: %s", route,
			errno == ETIMEDOUT ? "no progress before the deadline" : strerror(errno));
		goto fail;
	}

	/* Read until the whole body (by Content-Length or the last chunk) or the end of the stream. */
	if (cap > limit)
		cap = limit;
	if (!(buf = malloc(cap + 1))) {
		set_why(why, why_len, "out of memory");
		goto fail;
	}
	for (;;) {
		if (header_len && content_length != SIZE_MAX && len - header_len >= content_length)
			break;
		if (header_len && chunked && memmem(buf + header_len, len - header_len, "0\r\n\r\n", 5))
			break;
		if (len == cap) {
			if (cap >= limit) {
				set_why(why, why_len, "answer to %s larger than %zu bytes", route, limit);
				goto fail;
			}
			cap = cap * 2 > limit ? limit : cap * 2;
			char *bigger = realloc(buf, cap + 1);

			if (!bigger) {
				set_why(why, why_len, "out of memory");
				goto fail;
			}
			buf = bigger;
		}
		ssize_t n = recv(fd, buf + len, cap - len, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLIN, deadline) < 0) {
				set_why(why, why_len, "no complete answer to %s within %s", route,
					say_timeout(timeout_ms, took, sizeof(took)));
				goto fail;
			}
			continue;
		}
		if (n < 0) {
			set_why(why, why_len, "receive answer to %s: %s", route, strerror(errno));
			goto fail;
		}
		if (n == 0) {
			server_closes = true;
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (!header_len) {
			char *end = strstr(buf, "\r\n\r\n");

			if (end) {
				header_len = (size_t)(end - buf) + 4;
				end[0] = '\0'; /* the head ends with its last header line */
				if (find_header(buf, "Content-Length", value, sizeof(value)))
					content_length = strtoull(value, NULL, 10);
				if (find_header(buf, "Transfer-Encoding", value, sizeof(value)) && strcasestr(value, "chunked"))
					chunked = true;
				if (find_header(buf, "Connection", value, sizeof(value)) && strcasestr(value, "close"))
					server_closes = true;
				if (content_length == SIZE_MAX && !chunked)
					server_closes = true; /* the body runs to the end of the stream */
			}
		}
	}
	buf[len] = '\0';
	if (!header_len) {
		set_why(why, why_len,
			len ? "malformed HTTP answer to %s" : "driver closed the connection without answering %s", route);
		goto fail;
	}
	if (sscanf(buf, "HTTP/1.%*d %d", &rs->status) != 1) {
		set_why(why, why_len, "malformed status line in the answer to %s", route);
		goto fail;
	}
	char *payload = buf + header_len;
	size_t payload_len = len - header_len;

	if (content_length != SIZE_MAX) {
		if (payload_len < content_length) {
			set_why(why, why_len, "answer to %s ended after %zu of %zu body bytes", route, payload_len,
				content_length);
			goto fail;
		}
		payload_len = content_length;
	} else if (chunked) {
		ssize_t body = dechunk(payload, payload_len);

		if (body < 0) {
			set_why(why, why_len, "malformed chunked answer to %s", route);
			goto fail;
		}
		payload_len = (size_t)body;
	}
	payload[payload_len] = '\0';
	free(request);
	rs->head = buf;
	rs->body = payload;
	rs->body_len = payload_len;
	rs->closes = server_closes;
	return 0;
fail:
	free(request);
	free(buf);
	memset(rs, 0, sizeof(*rs));
	return -1;
}

int client_exchange(int fd, const struct client_address *a, const struct client_request *rq, int timeout_ms,
		    struct client_response *rs, char *why, size_t why_len)
{
	return exchange(fd, a, rq, now_ms() + timeout_ms, timeout_ms, rs, why, why_len);
}

int client_call(const struct client_address *a, const struct client_request *rq, int timeout_ms,
		struct client_response *rs, char *why, size_t why_len)
{
	double deadline = now_ms() + timeout_ms;
	int fd = client_connect(a, timeout_ms, why, why_len), rc;

	if (fd < 0) {
		memset(rs, 0, sizeof(*rs));
		return -1;
	}
	rc = exchange(fd, a, rq, deadline, timeout_ms, rs, why, why_len);
	close(fd);
	return rc;
}

void client_response_free(struct client_response *rs)
{
	free(rs->head);
	memset(rs, 0, sizeof(*rs));
}
