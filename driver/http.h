/*
 * HTTP/1.1 server on libuv streams (unix sockets and TCP), parsing with
 * http-parser. It owns connections, framing, limits and timeouts; it hands
 * each complete request to one callback and sends answers back in request
 * order (pipelining), whenever the application produces them.
 */
#ifndef NFSV3_HTTP_H
#define NFSV3_HTTP_H

#include <stddef.h>
#include <stdbool.h>
#include <uv.h>
#include <openssl/ssl.h>

struct http_server;
struct http_request;

/* Limits and timeouts; zero fields take the defaults below. */
struct http_limits {
	size_t max_header_bytes;   /* request line + headers; over it: 431 and close (default 16 KiB) */
	size_t max_body_bytes;     /* body after de-chunking; over it: 413 and close (default 64 KiB) */
	unsigned idle_timeout_ms;  /* keep-alive connection with nothing in progress (default 60 s) */
	unsigned read_timeout_ms;  /* a started request must be complete within this (default 10 s) */
	/* Open at once (default 512, and at most the descriptor limit less 64).
	 * A client beyond it takes the place of the longest idle connection,
	 * else of the oldest one still sending its request; it is closed at
	 * once only when every connection waits for an answer. */
	unsigned max_connections;
	unsigned max_pipelined;    /* unanswered requests per connection before reading pauses (default 16) */
};

/*
 * Called once per complete request. The request stays valid until
 * http_respond() is called on it, which must happen exactly once, now or
 * later, even if the client has gone (the answer is then dropped).
 */
typedef void (*http_request_cb)(struct http_request *req, void *data);

struct http_server *http_server_new(uv_loop_t *loop, const struct http_limits *limits,
				    http_request_cb on_request, void *data);

/*
 * Listen on "unix:/path" (an existing socket file is replaced, mode 0660)
 * or "tcp://host:port" (IPv4 literal, [IPv6] literal or "localhost").
 * Returns 0 or a negative uv error; *why gets a static description.
 */
int http_server_listen(struct http_server *srv, const char *address, const char **why);

/*
 * TLS for the TCP listeners opened from now on (unix sockets stay plain):
 * the context decides certificates, versions and client verification. The
 * server takes a reference; calling again (a certificate reload) changes
 * the context of connections accepted later, not of those already open.
 * NULL: TCP listeners opened later are plain.
 */
void http_server_set_tls(struct http_server *srv, SSL_CTX *ctx);

/* Why a connection was refused below HTTP. */
enum http_refusal {
	HTTP_REFUSED_PROTOCOL,        /* plain on TLS, TLS on plain, bad records */
	HTTP_REFUSED_NO_CERTIFICATE,  /* the client sent none */
	HTTP_REFUSED_BAD_CERTIFICATE, /* other CA, expired, not yet valid... */
	HTTP_REFUSED_TIMEOUT,         /* handshake not done within the read timeout */
	HTTP_REFUSED_HANDSHAKE,       /* any other handshake failure */
};
/* Its name for logs and metric labels: "protocol", "no_certificate", ... */
const char *http_refusal_name(enum http_refusal reason);

/* Told of every connection refused at the TLS layer: why, in words, and the
 * peer's address. */
typedef void (*http_refusal_cb)(enum http_refusal reason, const char *detail, const char *peer, void *data);
void http_server_on_refusal(struct http_server *srv, http_refusal_cb cb, void *data);

/* Stop accepting; existing connections keep being served. */
void http_server_stop_accepting(struct http_server *srv);

/*
 * Close every listener and connection. Requests not yet answered stay valid
 * until answered. on_closed runs once everything is closed and freed.
 */
void http_server_close(struct http_server *srv, void (*on_closed)(void *data), void *data);

/* Count of open connections (for tests and the admin status). */
unsigned http_server_connections(const struct http_server *srv);
/* Connections closed to make room for a new client, since the start. */
unsigned http_server_evictions(const struct http_server *srv);

/* Port of the most recent TCP listener, the one the kernel picked when the
 * address said port 0 (for tests); -1 before any TCP listener. */
int http_server_port(const struct http_server *srv);

/* Request accessors. Body is NUL-terminated (body_len excludes the NUL). */
const char *http_request_method(const struct http_request *req);
const char *http_request_path(const struct http_request *req); /* without query string */
const char *http_request_body(const struct http_request *req, size_t *body_len);
/* Header value by case-insensitive name, or NULL. Repeated headers are joined with ", ". */
const char *http_request_header(const struct http_request *req, const char *name);

/*
 * Answer the request: status and a JSON body (copied). Sends
 * Content-Type: application/json and Content-Length; honours keep-alive
 * (HTTP/1.1 default, "Connection: close", HTTP/1.0).
 */
void http_respond(struct http_request *req, int status, const char *body, size_t body_len);
/* The same with another Content-Type (at most 64 characters). */
void http_respond_as(struct http_request *req, int status, const char *content_type, const char *body,
		     size_t body_len);

#endif
