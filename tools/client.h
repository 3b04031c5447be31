/*
 * A small blocking HTTP/1.1 client for the programs that talk to a running
 * driver from outside it: nfsv3driver-smoke, the test harness and the
 * benches. It connects to unix:PATH or tcp://HOST:PORT, sends one request,
 * and reads one response (status, headers, body framed by Content-Length,
 * chunked coding or the end of the stream), all under one deadline. A
 * connection may be kept for the next request (keep_alive), as volman keeps
 * one.
 *
 * Plain HTTP only: the TLS clients (test/tls, bench/tls) are Go's, as
 * volman's is. Nothing here is shared with the daemon, which serves HTTP on
 * its libuv loop and never blocks.
 */
#ifndef NFSV3_CLIENT_H
#define NFSV3_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

/* Answers larger than this fail unless the request sets its own limit. */
#define CLIENT_DEFAULT_LIMIT (1024 * 1024)

/* Where a driver listens: a unix socket path, or a TCP host and port. */
struct client_address {
	bool is_unix;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char host[256]; /* a name or an address literal, IPv6 without its brackets */
	char port[16];
};

struct client_request {
	const char *method;  /* "POST", "GET" */
	const char *path;    /* "/VolumeDriver.List" */
	const char *headers; /* more header lines, each ending in "\r\n"; NULL for none */
	const char *body;    /* NULL for none; sent with its Content-Length */
	size_t body_len;     /* 0: strlen(body) */
	bool keep_alive;     /* false: "Connection: close" */
	size_t limit;        /* largest answer taken, head and body; 0: CLIENT_DEFAULT_LIMIT */
};

struct client_response {
	int status;      /* 200 */
	char *head;      /* status line and header lines, CRLF between them, NUL-terminated */
	char *body;      /* the body, chunked coding undone, NUL-terminated (inside head's buffer) */
	size_t body_len;
	bool closes;     /* the connection cannot carry another request */
};

/*
 * "unix:/path" (or "unix:///path"), "tcp://host:port" or "http://host:port",
 * host a name, an IPv4 literal or [IPv6]; a trailing "/" is allowed. 0, or
 * -1 with why filled.
 */
int client_parse_address(const char *text, struct client_address *address, char *why, size_t why_len);

/*
 * Connect within timeout_ms. Returns a connected, blocking, close-on-exec
 * socket, or -1 with why filled and errno set.
 */
int client_connect(const struct client_address *address, int timeout_ms, char *why, size_t why_len);

/*
 * Send request on a connected socket and read its response, within
 * timeout_ms. 0 with *response filled (whatever the status; free it with
 * client_response_free), or -1 with why filled (nothing to free). After -1,
 * or a response that closes, the socket can carry no other request.
 */
int client_exchange(int fd, const struct client_address *address, const struct client_request *request,
		    int timeout_ms, struct client_response *response, char *why, size_t why_len);

/* Connect, exchange and close, all within timeout_ms. As client_exchange. */
int client_call(const struct client_address *address, const struct client_request *request, int timeout_ms,
		struct client_response *response, char *why, size_t why_len);

/* Free what a response holds; it may be freed again. */
void client_response_free(struct client_response *response);

#endif
