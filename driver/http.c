/*
 * HTTP/1.1 server: listeners, connections, framing, limits and timeouts.
 *
 * Memory: a connection costs its libuv stream, an http_parser and a few
 * pointers. Reads land in one buffer per server (the loop runs one read
 * callback at a time and the parser callbacks copy what they keep), so an
 * idle connection holds no buffer at all. A request keeps its URL, headers
 * and body in one growing allocation.
 *
 * Timeouts: every connection is on at most one of three deadline lists
 * (fresh: connected and nothing sent yet; idle: kept alive between
 * requests; read: a request or handshake under way, or lingering). Each
 * list has a fixed timeout, so appending at the tail keeps it
 * sorted and one server timer armed for the earliest head serves them all:
 * O(1) per event however many connections are open.
 *
 * Lifetime: a connection is reference-counted. Its open handle holds one
 * reference and every request it created holds one, so a request the
 * application has not answered yet keeps the connection's memory (not its
 * socket) alive after the socket is closed.
 */
#include "nfsv3driver.h"
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define HTTP_DEFAULT_MAX_HEADER_BYTES (16 * 1024)
#define HTTP_DEFAULT_MAX_BODY_BYTES (64 * 1024)
#define HTTP_DEFAULT_IDLE_TIMEOUT_MS 60000
#define HTTP_DEFAULT_READ_TIMEOUT_MS 10000
#define HTTP_DEFAULT_MAX_CONNECTIONS 512
#define HTTP_DEFAULT_MAX_PIPELINED 16
/* Descriptors kept out of the connections' reach: helpers' pipes, pidfds,
 * the state file, listeners. */
#define HTTP_RESERVED_FDS 64
#define HTTP_READ_BUFFER_BYTES (64 * 1024)
/* Answers waiting for a client that does not read them; past this, the
 * connection stops reading requests until they drain. */
#define HTTP_MAX_UNSENT_BYTES (64 * 1024)
/* The first byte of every TLS connection: a handshake record. */
#define TLS_RECORD_HANDSHAKE 0x16
/* Above the kernel's old SOMAXCONN of 128 so that a burst of clients is
 * not made to wait for a SYN retransmission. */
#define HTTP_LISTEN_BACKLOG 511
#define HTTP_SOCKET_MODE 0660

union http_stream {
	uv_handle_t handle;
	uv_stream_t stream;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

struct http_connection;

/* Connections waiting for one kind of deadline, oldest first. */
struct http_deadlines {
	struct http_connection *head, *tail;
	unsigned timeout_ms;
};

struct http_listener {
	union http_stream stream;
	struct http_server *server;
	struct http_listener *next;
	union http_stream reject;
	unsigned handles;
	bool tls;      /* TCP listener of a server with a TLS context */
	bool closing;
	bool reject_busy;
	bool reject_pending;
	/* The socket file we bound, so that closing removes it only if it is
	 * still ours. */
	dev_t dev;
	ino_t ino;
	char path[];
};

struct http_server {
	uv_loop_t *loop;
	struct http_limits limits;
	http_request_cb on_request;
	void *data;
	struct http_listener *listeners;
	struct http_connection *connections;
	unsigned connection_count;  /* until their close callback */
	unsigned live_connections;  /* not closing: what the limit counts */
	unsigned evictions;
	/* Handles of ours not yet through their close callback. */
	unsigned open_handles;
	int port;
	uv_timer_t sweep;
	uint64_t sweep_due;
	struct http_deadlines fresh, idle, read;
	/* Connections with parsed-ahead bytes to resume outside the
	 * application's call to http_respond(). */
	uv_idle_t resume;
	struct http_connection *resume_head;
	char *read_buffer;
	SSL_CTX *tls_ctx;           /* for TCP listeners, or NULL: plain */
	http_refusal_cb on_refusal;
	void *refusal_data;
	bool closing;
	void (*on_closed)(void *data);
	void *closed_data;
};

/* Which part of the request the parser is handing over. */
enum http_part { HTTP_PART_URL, HTTP_PART_FIELD, HTTP_PART_VALUE, HTTP_PART_BODY };

struct http_connection {
	union http_stream stream;
	struct http_server *server; /* NULL once the socket is closed */
	http_parser parser;
	struct http_connection *prev, *next;
	struct http_connection *deadline_prev, *deadline_next;
	struct http_deadlines *deadlines;
	uint64_t deadline;
	struct http_connection *resume_next;
	/* Requests delivered and not yet written out, in arrival order. */
	struct http_request *head, *tail;
	unsigned queued;
	unsigned refs;
	struct http_request *current;   /* being parsed */
	struct http_request *completed; /* parsed, to deliver once the parser returns */
	char *leftover;                 /* read but not parsed while reading is paused */
	size_t leftover_len;
	size_t header_bytes;
	enum http_part part;
	int fail_status;            /* set by a parser callback that refuses the request */
	SSL *ssl;                   /* TLS connection (memory BIOs), or NULL */
	bool tcp;
	bool first_byte_seen;       /* the protocol sniff (TLS or plain) is done */
	bool tls_ready;             /* handshake complete */
	bool tls_failed;            /* fatal TLS error: no close_notify */
	bool closing;               /* uv_close called */
	bool reading;               /* uv_read_start in effect */
	bool no_more_requests;      /* a request or an error ends the connection */
	bool lingering;             /* last answer queued: discarding input until the peer closes */
	bool shutdown_done;
	bool peer_eof;
	bool resume_queued;
	bool served;                /* a request was delivered */
};

/* A repeated header's values joined with ", ", built on first lookup. It
 * keeps its own copy of the name: the request's buffer still grows while
 * the body arrives. */
struct http_joined {
	struct http_joined *next;
	const char *value;
	char name[];
};

/* One answer, written with a single buffer. */
struct http_response {
	uv_write_t write;
	struct http_connection *conn;
	size_t len;
	char bytes[];
};

struct http_request {
	struct http_connection *conn;
	struct http_request *next;
	struct http_joined *joined;
	struct http_response *response;
	/* URL, then NUL-terminated name and value of each header, then the body
	 * and its NUL. */
	char *buf;
	size_t len, cap;
	size_t headers_at, body_at;
	unsigned headers;
	unsigned char method;
	bool http10;
	bool keep_alive;
	bool answered;
};

static int on_message_begin(http_parser *parser);
static int on_url(http_parser *parser, const char *at, size_t len);
static int on_header_field(http_parser *parser, const char *at, size_t len);
static int on_header_value(http_parser *parser, const char *at, size_t len);
static int on_headers_complete(http_parser *parser);
static int on_body(http_parser *parser, const char *at, size_t len);
static int on_message_complete(http_parser *parser);

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

static void connection_close(struct http_connection *conn);
static void connection_update(struct http_connection *conn);
static void connection_fail(struct http_connection *conn, int status);
static void report_refusal(struct http_connection *conn, enum http_refusal reason, const char *detail);

/* ---- Server handles --------------------------------------------------- */

static void server_handle_closed(struct http_server *srv)
{
	if (--srv->open_handles > 0 || !srv->closing)
		return;
	void (*on_closed)(void *data) = srv->on_closed;
	void *closed_data = srv->closed_data;
	free(srv->read_buffer);
	SSL_CTX_free(srv->tls_ctx);
	free(srv);
	if (on_closed)
		on_closed(closed_data);
}

static void on_server_handle_closed(uv_handle_t *handle)
{
	server_handle_closed(handle->data);
}

/* ---- Deadlines -------------------------------------------------------- */

static void on_sweep(uv_timer_t *timer);

static void sweep_arm(struct http_server *srv, uint64_t due)
{
	uint64_t now = uv_now(srv->loop);
	srv->sweep_due = due;
	uv_timer_start(&srv->sweep, on_sweep, due > now ? due - now : 0, 0);
}

static void deadline_clear(struct http_connection *conn)
{
	struct http_deadlines *list = conn->deadlines;
	if (!list)
		return;
	if (conn->deadline_prev)
		conn->deadline_prev->deadline_next = conn->deadline_next;
	else
		list->head = conn->deadline_next;
	if (conn->deadline_next)
		conn->deadline_next->deadline_prev = conn->deadline_prev;
	else
		list->tail = conn->deadline_prev;
	conn->deadline_prev = conn->deadline_next = NULL;
	conn->deadlines = NULL;
}

/* Start a fresh deadline on list (a connection already on it keeps its own,
 * so that trickling bytes cannot push a deadline back). */
static void deadline_set(struct http_connection *conn, struct http_deadlines *list)
{
	struct http_server *srv = conn->server;
	if (conn->deadlines == list)
		return;
	deadline_clear(conn);
	conn->deadline = uv_now(srv->loop) + list->timeout_ms;
	conn->deadlines = list;
	conn->deadline_prev = list->tail;
	if (list->tail)
		list->tail->deadline_next = conn;
	else
		list->head = conn;
	list->tail = conn;
	if (!uv_is_active((uv_handle_t *)&srv->sweep) || srv->sweep_due > conn->deadline)
		sweep_arm(srv, conn->deadline);
}

static void on_sweep(uv_timer_t *timer)
{
	struct http_server *srv = timer->data;
	uint64_t now = uv_now(srv->loop);
	struct http_connection *conn;

	while ((conn = srv->fresh.head) && conn->deadline <= now)
		connection_close(conn);
	while ((conn = srv->idle.head) && conn->deadline <= now)
		connection_close(conn);
	while ((conn = srv->read.head) && conn->deadline <= now) {
		deadline_clear(conn);
		if (conn->lingering) {
			connection_close(conn);
		} else if (conn->ssl && !conn->tls_ready) {
			char detail[64];
			snprintf(detail, sizeof(detail), "TLS handshake not complete within %u ms",
				 srv->limits.read_timeout_ms);
			report_refusal(conn, HTTP_REFUSED_TIMEOUT, detail);
			connection_close(conn);
		} else {
			connection_fail(conn, 408);
		}
	}
	struct http_connection *first = NULL;
	struct http_connection *heads[] = { srv->fresh.head, srv->idle.head, srv->read.head };
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
		if (heads[i] && (!first || heads[i]->deadline < first->deadline))
			first = heads[i];
	if (first)
		sweep_arm(srv, first->deadline);
}

/* ---- Requests --------------------------------------------------------- */

static struct http_request *request_new(struct http_connection *conn)
{
	struct http_request *req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	req->conn = conn;
	conn->refs++;
	return req;
}

/*
 * Request bytes may hold a secret (an LDAP binding's password, in a Create
 * body): every copy of them is wiped before its memory is given back.
 */
static void wipe_free(void *p, size_t len)
{
	if (p)
		explicit_bzero(p, len);
	free(p);
}

static void connection_unref(struct http_connection *conn)
{
	if (--conn->refs > 0)
		return;
	wipe_free(conn->leftover, conn->leftover_len);
	free(conn);
}

static void request_free(struct http_request *req)
{
	if (!req)
		return;
	struct http_joined *joined = req->joined;
	while (joined) {
		struct http_joined *next = joined->next;
		free(joined);
		joined = next;
	}
	struct http_connection *conn = req->conn;
	free(req->response);
	wipe_free(req->buf, req->cap);
	free(req);
	connection_unref(conn);
}

static bool request_reserve(struct http_request *req, size_t more)
{
	if (req->cap - req->len >= more)
		return true;
	size_t cap = req->cap ? req->cap : 256;
	while (cap - req->len < more)
		cap *= 2;
	/* Not realloc: the old block is wiped, not left behind. */
	char *buf = malloc(cap);
	if (!buf)
		return false;
	if (req->buf)
		memcpy(buf, req->buf, req->len);
	wipe_free(req->buf, req->cap);
	req->buf = buf;
	req->cap = cap;
	return true;
}

static bool request_append(struct http_request *req, const char *data, size_t len)
{
	if (!request_reserve(req, len))
		return false;
	memcpy(req->buf + req->len, data, len);
	req->len += len;
	return true;
}

/* ---- Parser callbacks --------------------------------------------------- */

/* A callback's refusal: remember the answer and stop the parser. */
static int parse_refuse(struct http_connection *conn, int status)
{
	conn->fail_status = status;
	return -1;
}

static int on_message_begin(http_parser *parser)
{
	struct http_connection *conn = parser->data;
	conn->current = request_new(conn);
	if (!conn->current)
		return parse_refuse(conn, 500);
	conn->header_bytes = 0;
	conn->part = HTTP_PART_URL;
	/* A pipelined request may begin while the previous one's deadline is
	 * still set: each request gets its own. */
	deadline_clear(conn);
	deadline_set(conn, &conn->server->read);
	return 0;
}

/* Header bytes are counted as stored (URL, names, values); the parser's
 * own 80 KiB bound covers the separators and whitespace between them. */
static int append_header_bytes(struct http_connection *conn, const char *at, size_t len)
{
	conn->header_bytes += len;
	if (conn->header_bytes > conn->server->limits.max_header_bytes)
		return parse_refuse(conn, 431);
	if (!request_append(conn->current, at, len))
		return parse_refuse(conn, 500);
	return 0;
}

static int on_url(http_parser *parser, const char *at, size_t len)
{
	return append_header_bytes(parser->data, at, len);
}

/* The parser may hand a name or value over in several pieces; a switch from
 * one to the other is what ends the previous string. */
static int switch_part(struct http_connection *conn, enum http_part part)
{
	struct http_request *req = conn->current;
	if (conn->part == part)
		return 0;
	if (!request_append(req, "", 1))
		return parse_refuse(conn, 500);
	if (conn->part == HTTP_PART_URL)
		req->headers_at = req->len;
	if (part == HTTP_PART_FIELD)
		req->headers++;
	conn->part = part;
	return 0;
}

/* Trailers of a chunked body come after the body: no part of the request
 * we keep, but they count against the header limit. */
static int count_trailer(struct http_connection *conn, size_t len)
{
	conn->header_bytes += len;
	if (conn->header_bytes > conn->server->limits.max_header_bytes)
		return parse_refuse(conn, 431);
	return 0;
}

static int on_header_field(http_parser *parser, const char *at, size_t len)
{
	struct http_connection *conn = parser->data;
	if (conn->part == HTTP_PART_BODY)
		return count_trailer(conn, len);
	if (switch_part(conn, HTTP_PART_FIELD) != 0)
		return -1;
	return append_header_bytes(conn, at, len);
}

static int on_header_value(http_parser *parser, const char *at, size_t len)
{
	struct http_connection *conn = parser->data;
	if (conn->part == HTTP_PART_BODY)
		return count_trailer(conn, len);
	if (switch_part(conn, HTTP_PART_VALUE) != 0)
		return -1;
	return append_header_bytes(conn, at, len);
}

static struct http_response *response_new(size_t len)
{
	struct http_response *res = malloc(sizeof(*res) + len);
	if (res)
		res->len = len;
	return res;
}

static void connection_write(struct http_connection *conn, struct http_response *res);

static int on_headers_complete(http_parser *parser)
{
	struct http_connection *conn = parser->data;
	struct http_request *req = conn->current;
	const struct http_limits *limits = &conn->server->limits;

	if (!request_append(req, "", 1))
		return parse_refuse(conn, 500);
	if (conn->part == HTTP_PART_URL)
		req->headers_at = req->len;
	conn->part = HTTP_PART_BODY;
	req->buf[strcspn(req->buf, "?#")] = '\0';
	req->method = parser->method;
	req->http10 = parser->http_major == 1 && parser->http_minor == 0;

	bool chunked = parser->flags & F_CHUNKED;
	bool sized = !chunked && parser->content_length != ULLONG_MAX;
	if (sized && parser->content_length > limits->max_body_bytes)
		return parse_refuse(conn, 413);
	if (!request_reserve(req, sized ? parser->content_length + 1 : 1))
		return parse_refuse(conn, 500);
	req->body_at = req->len;

	/* A client that waits for "100 Continue" before sending its body
	 * would otherwise stall for its own timeout. It may only go out when
	 * no earlier answer is still owed on this connection. */
	bool has_body = chunked || (sized && parser->content_length > 0);
	const char *expect = http_request_header(req, "Expect");
	if (has_body && !req->http10 && !conn->head && expect &&
	    strcasecmp(expect, "100-continue") == 0) {
		static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
		struct http_response *res = response_new(sizeof(interim) - 1);
		if (!res)
			return parse_refuse(conn, 500);
		memcpy(res->bytes, interim, res->len);
		connection_write(conn, res);
		/* A failed write closed the connection: parse no further. */
		if (conn->closing)
			return -1;
	}
	return 0;
}

static int on_body(http_parser *parser, const char *at, size_t len)
{
	struct http_connection *conn = parser->data;
	struct http_request *req = conn->current;
	if (req->len - req->body_at + len > conn->server->limits.max_body_bytes)
		return parse_refuse(conn, 413);
	if (!request_append(req, at, len))
		return parse_refuse(conn, 500);
	return 0;
}

static int on_message_complete(http_parser *parser)
{
	struct http_connection *conn = parser->data;
	struct http_request *req = conn->current;
	if (!request_append(req, "", 1))
		return parse_refuse(conn, 500);
	/* An upgraded connection would carry another protocol: answer this
	 * request and close. */
	req->keep_alive = http_should_keep_alive(parser) && !parser->upgrade;
	conn->completed = req;
	conn->current = NULL;
	/* Pausing returns control to connection_feed(), which delivers the
	 * request outside the parser and applies backpressure between requests. */
	http_parser_pause(parser, 1);
	return 0;
}

/* ---- Request accessors ----------------------------------------------- */

const char *http_request_method(const struct http_request *req)
{
	return http_method_str(req->method);
}

const char *http_request_path(const struct http_request *req)
{
	return req->buf;
}

const char *http_request_body(const struct http_request *req, size_t *body_len)
{
	if (body_len)
		*body_len = req->len - req->body_at - 1;
	return req->buf + req->body_at;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
	for (const struct http_joined *joined = req->joined; joined; joined = joined->next)
		if (strcasecmp(joined->name, name) == 0)
			return joined->value;

	const char *first = NULL;
	size_t joined_len = 0;
	unsigned matches = 0;
	const char *field = req->buf + req->headers_at;
	for (unsigned i = 0; i < req->headers; i++) {
		const char *value = field + strlen(field) + 1;
		size_t value_len = strlen(value);
		if (strcasecmp(field, name) == 0) {
			if (!first)
				first = value;
			matches++;
			joined_len += value_len + 2;
		}
		field = value + value_len + 1;
	}
	if (matches < 2)
		return first;

	size_t name_len = strlen(name);
	struct http_joined *joined = malloc(sizeof(*joined) + name_len + 1 + joined_len);
	if (!joined)
		return first;
	memcpy(joined->name, name, name_len + 1);
	char *out = joined->name + name_len + 1;
	joined->value = out;
	field = req->buf + req->headers_at;
	for (unsigned i = 0; i < req->headers; i++) {
		const char *value = field + strlen(field) + 1;
		size_t value_len = strlen(value);
		if (strcasecmp(field, name) == 0) {
			if (out != joined->value)
				out = stpcpy(out, ", ");
			out = stpcpy(out, value);
		}
		field = value + value_len + 1;
	}
	/* The cache of joined values is not part of what the request says,
	 * so filling it in does not change the request. */
	struct http_request *cache = (struct http_request *)req;
	joined->next = cache->joined;
	cache->joined = joined;
	return joined->value;
}

/* ---- Connections ------------------------------------------------------ */

static void on_write(uv_write_t *write, int status)
{
	struct http_response *res = write->data;
	struct http_connection *conn = res->conn;
	free(res);
	if (status < 0)
		connection_close(conn);
	else
		connection_update(conn);
}

/* Takes res: bytes for the socket. Tries to write at once, so that a small
 * answer to a client that keeps up never waits in memory. */
static void socket_write(struct http_connection *conn, struct http_response *res)
{
	uv_buf_t buf = uv_buf_init(res->bytes, res->len);
	int written = uv_try_write(&conn->stream.stream, &buf, 1);
	if (written == (int)res->len) {
		free(res);
		return;
	}
	if (written < 0 && written != UV_EAGAIN) {
		free(res);
		connection_close(conn);
		return;
	}
	if (written > 0) {
		buf.base += written;
		buf.len -= written;
	}
	res->write.data = res;
	res->conn = conn;
	if (uv_write(&res->write, &conn->stream.stream, &buf, 1, on_write) != 0) {
		free(res);
		connection_close(conn);
	}
}

/* ---- TLS ---------------------------------------------------------------
 *
 * OpenSSL never touches the socket: ciphertext read from the socket goes
 * into the connection's read BIO, what OpenSSL wants to send comes out of
 * its write BIO and is written like any answer. The loop never blocks on a
 * handshake, and a handshake is bounded by the read timeout.
 */

static void connection_stop_requests(struct http_connection *conn);
static void connection_linger(struct http_connection *conn);

static void peer_name(struct http_connection *conn, char *out, size_t size)
{
	struct sockaddr_storage addr;
	int len = sizeof(addr);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	snprintf(out, size, "unix");
	if (!conn->tcp || uv_tcp_getpeername(&conn->stream.tcp, (struct sockaddr *)&addr, &len) != 0)
		return;
	if (addr.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
		uv_ip6_name(in6, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, size, "[%s]:%d", host, port);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&addr;
		uv_ip4_name(in, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, size, "%s:%d", host, port);
	}
}

const char *http_refusal_name(enum http_refusal reason)
{
	static const char *const names[] = {
		[HTTP_REFUSED_PROTOCOL] = "protocol",
		[HTTP_REFUSED_NO_CERTIFICATE] = "no_certificate",
		[HTTP_REFUSED_BAD_CERTIFICATE] = "bad_certificate",
		[HTTP_REFUSED_TIMEOUT] = "timeout",
		[HTTP_REFUSED_HANDSHAKE] = "other",
	};
	return (unsigned)reason < sizeof(names) / sizeof(names[0]) ? names[reason] : "other";
}

/* Tell the application why a connection is refused (for its log). */
static void report_refusal(struct http_connection *conn, enum http_refusal reason, const char *detail)
{
	struct http_server *srv = conn->server;
	char peer[INET6_ADDRSTRLEN + 16];
	if (!srv || !srv->on_refusal)
		return;
	peer_name(conn, peer, sizeof(peer));
	srv->on_refusal(reason, detail, peer, srv->refusal_data);
}

/* Send what OpenSSL has queued (handshake flights, records, alerts). */
static void tls_flush(struct http_connection *conn)
{
	BIO *wbio = SSL_get_wbio(conn->ssl);
	size_t pending = BIO_ctrl_pending(wbio);
	if (pending == 0 || conn->closing)
		return;
	struct http_response *res = response_new(pending);
	if (!res) {
		connection_close(conn);
		return;
	}
	int got = BIO_read(wbio, res->bytes, (int)pending);
	res->len = got > 0 ? (size_t)got : 0;
	socket_write(conn, res);
}

/* Takes res: plaintext answer bytes. */
static void connection_write(struct http_connection *conn, struct http_response *res)
{
	if (!conn->ssl) {
		socket_write(conn, res);
		return;
	}
	ERR_clear_error();
	/* The write BIO is memory: SSL_write takes everything at once. */
	int n = res->len ? SSL_write(conn->ssl, res->bytes, (int)res->len) : 1;
	free(res);
	if (n <= 0) {
		conn->tls_failed = true;
		connection_close(conn);
		return;
	}
	tls_flush(conn);
}

/* Why a handshake failed, in words an operator can act on. */
static enum http_refusal tls_failure(struct http_connection *conn, int ssl_error, char *detail, size_t size)
{
	long verify = SSL_get_verify_result(conn->ssl);
	unsigned long err = ERR_peek_last_error();

	if (verify != X509_V_OK) {
		snprintf(detail, size, "client certificate refused: %s", X509_verify_cert_error_string(verify));
		return HTTP_REFUSED_BAD_CERTIFICATE;
	}
	if (err && ERR_GET_REASON(err) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		snprintf(detail, size, "the client sent no certificate; one signed by the --tls-ca is required");
		return HTTP_REFUSED_NO_CERTIFICATE;
	}
	if (err) {
		const char *reason = ERR_reason_error_string(err);
		snprintf(detail, size, "%s", reason ? reason : "TLS protocol error");
	} else if (ssl_error == SSL_ERROR_ZERO_RETURN || ssl_error == SSL_ERROR_SYSCALL) {
		snprintf(detail, size, "the client closed the connection during the handshake");
	} else {
		snprintf(detail, size, "TLS error %d", ssl_error);
	}
	return HTTP_REFUSED_HANDSHAKE;
}

static void connection_feed(struct http_connection *conn, const char *data, size_t len);
static void connection_on_eof(struct http_connection *conn);

/*
 * Run the handshake, then decrypt and parse what has arrived, while the
 * connection takes requests. A request the application cannot take yet
 * leaves the rest encrypted in the read BIO, for on_resume.
 */
static void tls_pump(struct http_connection *conn)
{
	struct http_server *srv = conn->server;
	char detail[256];
	int n;

	ERR_clear_error();
	if (!conn->tls_ready) {
		n = SSL_do_handshake(conn->ssl);
		if (n != 1) {
			int e = SSL_get_error(conn->ssl, n);
			if (e == SSL_ERROR_WANT_READ) {
				tls_flush(conn);
				return;
			}
			enum http_refusal reason = tls_failure(conn, e, detail, sizeof(detail));
			conn->tls_failed = true;
			report_refusal(conn, reason, detail);
			/* The alert goes out, then the connection ends. */
			tls_flush(conn);
			connection_stop_requests(conn);
			if (!conn->head && !conn->closing)
				connection_linger(conn);
			return;
		}
		conn->tls_ready = true;
		tls_flush(conn);
	}
	if (!srv->read_buffer && !(srv->read_buffer = malloc(HTTP_READ_BUFFER_BYTES))) {
		connection_close(conn);
		return;
	}
	while (!conn->closing && !conn->no_more_requests && !conn->lingering && !conn->leftover) {
		n = SSL_read(conn->ssl, srv->read_buffer, HTTP_READ_BUFFER_BYTES);
		if (n > 0) {
			connection_feed(conn, srv->read_buffer, n);
			explicit_bzero(srv->read_buffer, (size_t)n);
			continue;
		}
		int e = SSL_get_error(conn->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			break;
		if (e == SSL_ERROR_ZERO_RETURN) {
			/* close_notify: the client is done sending. */
			connection_on_eof(conn);
			break;
		}
		conn->tls_failed = true;
		tls_failure(conn, e, detail, sizeof(detail));
		report_refusal(conn, HTTP_REFUSED_PROTOCOL, detail);
		connection_close(conn);
		return;
	}
	/* SSL_read may answer the peer (alerts, key updates). */
	if (!conn->closing)
		tls_flush(conn);
}

static void connection_refuse(struct http_connection *conn, int status, const char *body, size_t len);

/* Bytes from the socket of a TLS connection. */
static void tls_input(struct http_connection *conn, const char *data, size_t len)
{
	if (!conn->first_byte_seen) {
		conn->first_byte_seen = true;
		if ((unsigned char)data[0] != TLS_RECORD_HANDSHAKE) {
			/* Most likely plain HTTP: answer it in plain HTTP, so
			 * that the client can say what went wrong. */
			report_refusal(conn, HTTP_REFUSED_PROTOCOL, "plain HTTP (or another protocol) on a TLS listener");
			SSL_free(conn->ssl);
			conn->ssl = NULL;
			static const char body[] = NFSV3_ERR_BODY("this listener speaks HTTPS only (TLS with a client certificate)");
			connection_refuse(conn, 400, body, sizeof(body) - 1);
			return;
		}
	}
	if (BIO_write(SSL_get_rbio(conn->ssl), data, (int)len) != (int)len) {
		connection_close(conn);
		return;
	}
	tls_pump(conn);
}

static void connection_drop_input(struct http_connection *conn)
{
	request_free(conn->current);
	conn->current = NULL;
	wipe_free(conn->leftover, conn->leftover_len);
	conn->leftover = NULL;
	conn->leftover_len = 0;
}

static void connection_stop_requests(struct http_connection *conn)
{
	conn->no_more_requests = true;
	connection_drop_input(conn);
}

static void on_shutdown(uv_shutdown_t *shutdown, int status)
{
	struct http_connection *conn = shutdown->data;
	free(shutdown);
	conn->shutdown_done = true;
	if (status < 0 || conn->peer_eof)
		connection_close(conn);
}

/*
 * The last answer is queued. Closing now would reset a TCP connection whose
 * client is still sending (a body we refused), and the reset can destroy
 * the answer before the client reads it. So send FIN once the answer is
 * out, then read and discard until the client closes or the read timeout.
 */
static void connection_linger(struct http_connection *conn)
{
	uv_shutdown_t *shutdown = malloc(sizeof(*shutdown));
	if (!shutdown) {
		connection_close(conn);
		return;
	}
	shutdown->data = conn;
	if (conn->ssl && conn->tls_ready && !conn->tls_failed) {
		ERR_clear_error();
		SSL_shutdown(conn->ssl);
		tls_flush(conn);
	}
	if (uv_shutdown(shutdown, &conn->stream.stream, on_shutdown) != 0) {
		free(shutdown);
		connection_close(conn);
		return;
	}
	conn->lingering = true;
	connection_stop_requests(conn);
	deadline_clear(conn);
	connection_update(conn);
}

/* Write out every answer at the head of the queue, in request order. */
static void connection_flush(struct http_connection *conn)
{
	while (!conn->closing && conn->head && conn->head->answered) {
		struct http_request *req = conn->head;
		conn->head = req->next;
		if (!conn->head)
			conn->tail = NULL;
		conn->queued--;
		struct http_response *res = req->response;
		req->response = NULL;
		request_free(req);
		connection_write(conn, res);
		if (!conn->head && conn->no_more_requests && !conn->closing && !conn->lingering)
			connection_linger(conn);
	}
}

static void connection_enqueue(struct http_connection *conn, struct http_request *req)
{
	if (conn->tail)
		conn->tail->next = req;
	else
		conn->head = req;
	conn->tail = req;
	conn->queued++;
}

static void connection_deliver(struct http_connection *conn, struct http_request *req)
{
	conn->served = true;
	connection_enqueue(conn, req);
	if (!req->keep_alive)
		connection_stop_requests(conn);
	conn->server->on_request(req, conn->server->data);
}

static int error_body(const struct http_connection *conn, int status, char *out, size_t size)
{
	const struct http_limits *limits = &conn->server->limits;
	switch (status) {
	case 400:
		return snprintf(out, size, NFSV3_ERR_BODY("malformed HTTP request: %s"),
				http_errno_description(HTTP_PARSER_ERRNO(&conn->parser)));
	case 408:
		return snprintf(out, size, NFSV3_ERR_BODY("request not complete within %u ms"),
				limits->read_timeout_ms);
	case 413:
		return snprintf(out, size, NFSV3_ERR_BODY("request body exceeds the limit of %zu bytes"),
				limits->max_body_bytes);
	case 431:
		return snprintf(out, size,
				NFSV3_ERR_BODY("request line and headers exceed the limit of %zu bytes"),
				limits->max_header_bytes);
	default:
		return snprintf(out, size, NFSV3_ERR_BODY("out of memory reading the request"));
	}
}

/* Refuse what the client sent: answer after every earlier request, then close. */
static void connection_fail(struct http_connection *conn, int status)
{
	if (conn->no_more_requests)
		return;
	char body[160];
	int len = error_body(conn, status, body, sizeof(body));
	connection_refuse(conn, status, body, len);
}

static void connection_refuse(struct http_connection *conn, int status, const char *body, size_t len)
{
	connection_stop_requests(conn);
	struct http_request *req = request_new(conn);
	if (!req) {
		connection_close(conn);
		return;
	}
	connection_enqueue(conn, req);
	http_respond(req, status, body, len);
}

static void connection_keep_leftover(struct http_connection *conn, const char *data, size_t len)
{
	conn->leftover = malloc(len);
	if (!conn->leftover) {
		connection_close(conn);
		return;
	}
	memcpy(conn->leftover, data, len);
	conn->leftover_len = len;
}

/* Backpressure: whether another request may be taken from this client, given
 * the answers it has not yet had or not yet read. */
static bool connection_has_room(struct http_connection *conn)
{
	return conn->queued < conn->server->limits.max_pipelined &&
	       uv_stream_get_write_queue_size(&conn->stream.stream) < HTTP_MAX_UNSENT_BYTES;
}

/* Parse data and deliver each request it completes, while there is room;
 * what is left waits in conn->leftover. */
static void connection_feed(struct http_connection *conn, const char *data, size_t len)
{
	while (len > 0 && !conn->closing && !conn->no_more_requests) {
		if (!connection_has_room(conn)) {
			connection_keep_leftover(conn, data, len);
			return;
		}
		size_t parsed = http_parser_execute(&conn->parser, &parser_settings, data, len);
		data += parsed;
		len -= parsed;
		if (conn->closing)
			return;
		enum http_errno err = HTTP_PARSER_ERRNO(&conn->parser);
		if (err == HPE_PAUSED) {
			http_parser_pause(&conn->parser, 0);
			struct http_request *req = conn->completed;
			conn->completed = NULL;
			connection_deliver(conn, req);
		} else if (err == HPE_OK) {
			break;
		} else if (conn->fail_status) {
			connection_fail(conn, conn->fail_status);
		} else {
			connection_fail(conn, err == HPE_HEADER_OVERFLOW ? 431 : 400);
		}
	}
}

static void on_resume(uv_idle_t *idle)
{
	struct http_server *srv = idle->data;
	struct http_connection *list = srv->resume_head;
	srv->resume_head = NULL;
	uv_idle_stop(idle);
	while (list) {
		struct http_connection *conn = list;
		list = conn->resume_next;
		conn->resume_queued = false;
		if (!conn->closing) {
			char *data = conn->leftover;
			size_t len = conn->leftover_len;
			conn->leftover = NULL;
			conn->leftover_len = 0;
			connection_feed(conn, data, len);
			wipe_free(data, len);
			if (conn->ssl && !conn->leftover && !conn->closing)
				tls_pump(conn);
			connection_update(conn);
		}
		connection_unref(conn);
	}
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct http_connection *conn = handle->data;
	struct http_server *srv = conn->server;
	/* One buffer serves every connection: libuv runs one read callback at a
	 * time and finishes with the buffer before it asks for the next. */
	if (!srv->read_buffer)
		srv->read_buffer = malloc(HTTP_READ_BUFFER_BYTES);
	*buf = uv_buf_init(srv->read_buffer, srv->read_buffer ? HTTP_READ_BUFFER_BYTES : 0);
}

static void connection_on_eof(struct http_connection *conn)
{
	conn->peer_eof = true;
	/* libuv stops reading by itself at end of stream. */
	conn->reading = false;
	if (conn->lingering) {
		if (conn->shutdown_done)
			connection_close(conn);
		return;
	}
	/* The client is done sending; answer what it asked (a half-closed
	 * client may still read), then close. */
	connection_stop_requests(conn);
	if (!conn->head)
		connection_linger(conn);
	else
		connection_update(conn);
}

/* A TLS handshake as the first bytes of a plain TCP connection: answer in
 * plain HTTP, which makes a TLS client say "server gave HTTP response to
 * HTTPS client". */
static bool refuse_tls_on_plain(struct http_connection *conn, const char *data)
{
	if (!conn->tcp || conn->first_byte_seen)
		return false;
	conn->first_byte_seen = true;
	if ((unsigned char)data[0] != TLS_RECORD_HANDSHAKE)
		return false;
	report_refusal(conn, HTTP_REFUSED_PROTOCOL, "a TLS handshake on a plain HTTP listener");
	static const char body[] = NFSV3_ERR_BODY("this listener speaks plain HTTP, not TLS");
	connection_refuse(conn, 400, body, sizeof(body) - 1);
	return true;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct http_connection *conn = stream->data;
	if (nread == 0)
		return;
	if (nread == UV_EOF) {
		connection_on_eof(conn);
		return;
	}
	if (nread < 0) {
		connection_close(conn);
		return;
	}
	if (conn->lingering)
		return;
	if (conn->ssl)
		tls_input(conn, buf->base, nread);
	else if (!refuse_tls_on_plain(conn, buf->base))
		connection_feed(conn, buf->base, nread);
	/* Plain bytes (TLS ones are ciphertext; tls_pump wipes what it decrypts). */
	if (!conn->ssl)
		explicit_bzero(buf->base, (size_t)nread);
	connection_update(conn);
}

static void connection_schedule_resume(struct http_connection *conn)
{
	struct http_server *srv = conn->server;
	if (conn->resume_queued)
		return;
	conn->resume_queued = true;
	conn->resume_next = srv->resume_head;
	srv->resume_head = conn;
	conn->refs++;
	uv_idle_start(&srv->resume, on_resume);
}

/* Bring reading and the deadline in line with the connection's state. */
static void connection_update(struct http_connection *conn)
{
	if (conn->closing)
		return;
	struct http_server *srv = conn->server;
	bool room = connection_has_room(conn);
	bool want_read = !conn->peer_eof &&
		(conn->lingering || (!conn->no_more_requests && !conn->leftover && room));
	if (want_read && !conn->reading) {
		if (uv_read_start(&conn->stream.stream, on_alloc, on_read) != 0) {
			connection_close(conn);
			return;
		}
		conn->reading = true;
	} else if (!want_read && conn->reading) {
		uv_read_stop(&conn->stream.stream);
		conn->reading = false;
	}
	if (conn->leftover && room && !conn->no_more_requests)
		connection_schedule_resume(conn);

	if (conn->lingering || conn->current || (conn->ssl && !conn->tls_ready))
		deadline_set(conn, &srv->read);
	else if (!conn->head && !conn->no_more_requests)
		deadline_set(conn, conn->served ? &srv->idle : &srv->fresh);
	else
		deadline_clear(conn);
}

static void on_connection_closed(uv_handle_t *handle)
{
	struct http_connection *conn = handle->data;
	struct http_server *srv = conn->server;
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		srv->connections = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	srv->connection_count--;
	conn->server = NULL;
	SSL_free(conn->ssl);
	conn->ssl = NULL;
	server_handle_closed(srv);
	connection_unref(conn);
}

static void connection_close(struct http_connection *conn)
{
	if (conn->closing)
		return;
	conn->closing = true;
	conn->server->live_connections--;
	deadline_clear(conn);
	connection_drop_input(conn);
	/* Answered requests die with the socket; unanswered ones live on,
	 * detached, until the application answers them. */
	struct http_request *req = conn->head;
	conn->head = conn->tail = NULL;
	conn->queued = 0;
	while (req) {
		struct http_request *next = req->next;
		req->next = NULL;
		if (req->answered)
			request_free(req);
		req = next;
	}
	uv_close(&conn->stream.handle, on_connection_closed);
}

/* ---- Listeners -------------------------------------------------------- */

/* Free the listener once its own handle and its reject handle are closed. */
static void listener_release(struct http_listener *listener)
{
	if (--listener->handles > 0)
		return;
	struct http_server *srv = listener->server;
	struct stat st;
	if (listener->path[0] && lstat(listener->path, &st) == 0 &&
	    st.st_dev == listener->dev && st.st_ino == listener->ino)
		unlink(listener->path);
	for (struct http_listener **link = &srv->listeners; *link; link = &(*link)->next) {
		if (*link == listener) {
			*link = listener->next;
			break;
		}
	}
	free(listener);
	server_handle_closed(srv);
}

static void on_listener_closed(uv_handle_t *handle)
{
	listener_release(handle->data);
}

static void listener_reject(struct http_listener *listener);

static void on_reject_closed(uv_handle_t *handle)
{
	struct http_listener *listener = handle->data;
	listener->reject_busy = false;
	if (listener->reject_pending && !listener->closing) {
		listener->reject_pending = false;
		listener_reject(listener);
	}
	listener_release(listener);
}

/*
 * Accept a connection we will not serve (too many, or no memory for it) and
 * close it at once. libuv pauses a listener whose callback did not accept,
 * so this must accept even without memory: into a handle kept in the
 * listener. While that handle is closing, the next refusal waits for it,
 * and the listener pauses until then.
 */
static void listener_reject(struct http_listener *listener)
{
	if (listener->reject_busy) {
		listener->reject_pending = true;
		return;
	}
	uv_loop_t *loop = listener->server->loop;
	if (listener->stream.handle.type == UV_TCP)
		uv_tcp_init(loop, &listener->reject.tcp);
	else
		uv_pipe_init(loop, &listener->reject.pipe, 0);
	listener->reject.handle.data = listener;
	listener->reject_busy = true;
	listener->handles++;
	uv_accept(&listener->stream.stream, &listener->reject.stream);
	uv_close(&listener->reject.handle, on_reject_closed);
}

static void listener_close(struct http_listener *listener)
{
	if (listener->closing)
		return;
	listener->closing = true;
	uv_close(&listener->stream.handle, on_listener_closed);
}

static struct http_listener *listener_new(struct http_server *srv, const char *path)
{
	size_t path_len = strlen(path);
	struct http_listener *listener = calloc(1, sizeof(*listener) + path_len + 1);
	if (!listener)
		return NULL;
	memcpy(listener->path, path, path_len + 1);
	listener->server = srv;
	listener->handles = 1;
	listener->next = srv->listeners;
	srv->listeners = listener;
	return listener;
}

/* A server-side TLS session reading and writing memory BIOs. */
static bool tls_attach(struct http_connection *conn, SSL_CTX *ctx)
{
	BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
	if (!ctx || !rbio || !wbio || !(conn->ssl = SSL_new(ctx))) {
		BIO_free(rbio);
		BIO_free(wbio);
		return false;
	}
	/* An empty read BIO means "wait for more", not end of stream. */
	BIO_set_mem_eof_return(rbio, -1);
	SSL_set_bio(conn->ssl, rbio, wbio);
	SSL_set_accept_state(conn->ssl);
	return true;
}

/*
 * At the limit, a new client takes the place of one that is doing nothing
 * for anyone, in this order: the oldest connection that never sent a
 * request (an HTTP client connects when it has one to send); the oldest
 * one still sending its request or handshake, or lingering after its last
 * answer (a client that sends its request in one go is never the oldest
 * of those for long); the longest idle keep-alive connection (a client
 * must expect the server to close one at any time, and volman's opens
 * another). Connections waiting for an answer are never taken: when every
 * one is, the newcomer is refused. So idle or slow clients, however many,
 * cannot lock out a client that sends its request, nor push out the kept
 * connection of one that has been served.
 */
static bool connection_evict(struct http_server *srv)
{
	struct http_connection *victim = srv->fresh.head ? srv->fresh.head
				       : srv->read.head  ? srv->read.head
							 : srv->idle.head;
	if (!victim)
		return false;
	srv->evictions++;
	connection_close(victim);
	return true;
}

static void on_connection(uv_stream_t *listener_stream, int status)
{
	struct http_listener *listener = listener_stream->data;
	struct http_server *srv = listener->server;
	/* An accept error (EMFILE and the like) concerns no connection of
	 * ours; libuv keeps listening. */
	if (status < 0)
		return;
	struct http_connection *conn = NULL;
	if ((srv->live_connections >= srv->limits.max_connections && !connection_evict(srv)) ||
	    !(conn = calloc(1, sizeof(*conn)))) {
		listener_reject(listener);
		return;
	}
	if (listener_stream->type == UV_TCP)
		uv_tcp_init(srv->loop, &conn->stream.tcp);
	else
		uv_pipe_init(srv->loop, &conn->stream.pipe, 0);
	conn->stream.handle.data = conn;
	conn->server = srv;
	conn->refs = 1;
	http_parser_init(&conn->parser, HTTP_REQUEST);
	conn->parser.data = conn;
	conn->next = srv->connections;
	if (srv->connections)
		srv->connections->prev = conn;
	srv->connections = conn;
	srv->connection_count++;
	srv->live_connections++;
	srv->open_handles++;

	if (uv_accept(listener_stream, &conn->stream.stream) != 0) {
		connection_close(conn);
		return;
	}
	if (listener_stream->type == UV_TCP) {
		conn->tcp = true;
		uv_tcp_nodelay(&conn->stream.tcp, 1);
	}
	if (listener->tls && !tls_attach(conn, srv->tls_ctx)) {
		connection_close(conn);
		return;
	}
	connection_update(conn);
}

/* ---- Answers ---------------------------------------------------------- */

void http_respond(struct http_request *req, int status, const char *body, size_t body_len)
{
	http_respond_as(req, status, "application/json", body, body_len);
}

void http_respond_as(struct http_request *req, int status, const char *content_type, const char *body,
		     size_t body_len)
{
	struct http_connection *conn = req->conn;
	if (conn->closing) {
		request_free(req);
		return;
	}
	if (status < 100 || status > 999)
		status = 500;
	const char *connection = !req->keep_alive ? "Connection: close\r\n" :
				 req->http10 ? "Connection: keep-alive\r\n" : "";
	char head[256];
	int head_len = snprintf(head, sizeof(head),
				"HTTP/1.1 %d %s\r\nContent-Type: %.64s\r\n"
				"Content-Length: %zu\r\n%s\r\n",
				status, http_status_str(status), content_type, body_len, connection);
	/* A HEAD answer announces the body's length but carries none. */
	size_t send_len = req->method == HTTP_HEAD ? 0 : body_len;

	struct http_response *res = response_new(head_len + send_len);
	if (res) {
		memcpy(res->bytes, head, head_len);
		if (send_len)
			memcpy(res->bytes + head_len, body, send_len);
	}
	/* Only now: the body may point into the request itself. */
	free(req->buf);
	req->buf = NULL;
	req->answered = true;
	req->response = res;
	if (!res) {
		connection_close(conn);
		return;
	}
	connection_flush(conn);
	connection_update(conn);
}

static int listen_unix(struct http_server *srv, const char *path, const char **why)
{
	struct sockaddr_un addr;
	struct stat st;
	if (path[0] != '/') {
		*why = "the unix socket path must be absolute";
		return UV_EINVAL;
	}
	if (strlen(path) >= sizeof(addr.sun_path)) {
		*why = "the unix socket path is longer than a socket address can hold";
		return UV_ENAMETOOLONG;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*why = "a file that is not a socket is in the way; refusing to replace it";
			return UV_EEXIST;
		}
		if (unlink(path) != 0) {
			*why = "cannot remove the old socket file";
			return -errno;
		}
	} else if (errno != ENOENT) {
		*why = "cannot inspect the unix socket path";
		return -errno;
	}

	struct http_listener *listener = listener_new(srv, path);
	if (!listener) {
		*why = "out of memory";
		return UV_ENOMEM;
	}
	uv_pipe_init(srv->loop, &listener->stream.pipe, 0);
	listener->stream.handle.data = listener;
	srv->open_handles++;

	int err = uv_pipe_bind(&listener->stream.pipe, path);
	if (err) {
		*why = "cannot bind the unix socket";
		listener_close(listener);
		return err;
	}
	if (lstat(path, &st) == 0) {
		listener->dev = st.st_dev;
		listener->ino = st.st_ino;
	}
	/* Before listen(): nobody can connect while the mode is still the
	 * umask's. */
	if (chmod(path, HTTP_SOCKET_MODE) != 0) {
		err = -errno;
		*why = "cannot set the unix socket's mode to 0660";
		listener_close(listener);
		return err;
	}
	err = uv_listen(&listener->stream.stream, HTTP_LISTEN_BACKLOG, on_connection);
	if (err) {
		*why = "cannot listen on the unix socket";
		listener_close(listener);
	}
	return err;
}

static int parse_port(const char *text, int *port)
{
	char *end;
	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	unsigned long value = strtoul(text, &end, 10);
	if (errno || *end || value > 65535)
		return -1;
	*port = value;
	return 0;
}

static int listen_tcp(struct http_server *srv, const char *hostport, const char **why)
{
	char host[64];
	const char *port_text;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr;
	int port;

	if (hostport[0] == '[') {
		const char *bracket = strchr(hostport, ']');
		if (!bracket || bracket[1] != ':' || (size_t)(bracket - hostport - 1) >= sizeof(host)) {
			*why = "expected tcp://[IPv6]:port";
			return UV_EINVAL;
		}
		memcpy(host, hostport + 1, bracket - hostport - 1);
		host[bracket - hostport - 1] = '\0';
		port_text = bracket + 2;
	} else {
		const char *colon = strrchr(hostport, ':');
		if (!colon || (size_t)(colon - hostport) >= sizeof(host)) {
			*why = "expected tcp://host:port";
			return UV_EINVAL;
		}
		memcpy(host, hostport, colon - hostport);
		host[colon - hostport] = '\0';
		port_text = colon + 1;
	}
	if (parse_port(port_text, &port) != 0) {
		*why = "the port must be a decimal number from 0 to 65535";
		return UV_EINVAL;
	}
	/* The daemon resolves no names: "localhost" is the IPv4 loopback that
	 * volman's spec file names. */
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (hostport[0] == '[' ? uv_ip6_addr(host, port, &addr.in6) != 0
			       : uv_ip4_addr(host, port, &addr.in) != 0) {
		*why = "the host must be an IPv4 literal, an [IPv6] literal or localhost";
		return UV_EINVAL;
	}

	struct http_listener *listener = listener_new(srv, "");
	if (!listener) {
		*why = "out of memory";
		return UV_ENOMEM;
	}
	uv_tcp_init(srv->loop, &listener->stream.tcp);
	listener->stream.handle.data = listener;
	listener->tls = srv->tls_ctx != NULL;
	srv->open_handles++;

	int err = uv_tcp_bind(&listener->stream.tcp, &addr.sa, 0);
	if (!err)
		err = uv_listen(&listener->stream.stream, HTTP_LISTEN_BACKLOG, on_connection);
	if (err) {
		*why = "cannot listen on the TCP address";
		listener_close(listener);
		return err;
	}
	int len = sizeof(addr);
	if (uv_tcp_getsockname(&listener->stream.tcp, &addr.sa, &len) == 0)
		srv->port = ntohs(addr.sa.sa_family == AF_INET6 ? addr.in6.sin6_port : addr.in.sin_port);
	return 0;
}

int http_server_listen(struct http_server *srv, const char *address, const char **why)
{
	static const char unix_prefix[] = "unix:", tcp_prefix[] = "tcp://";
	if (srv->closing) {
		*why = "the server is closing";
		return UV_EINVAL;
	}
	if (strncmp(address, unix_prefix, sizeof(unix_prefix) - 1) == 0)
		return listen_unix(srv, address + sizeof(unix_prefix) - 1, why);
	if (strncmp(address, tcp_prefix, sizeof(tcp_prefix) - 1) == 0)
		return listen_tcp(srv, address + sizeof(tcp_prefix) - 1, why);
	*why = "the address must start with unix: or tcp://";
	return UV_EINVAL;
}

int http_server_port(const struct http_server *srv)
{
	return srv->port;
}

/* ---- Server ----------------------------------------------------------- */

struct http_server *http_server_new(uv_loop_t *loop, const struct http_limits *limits,
				    http_request_cb on_request, void *data)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	srv->loop = loop;
	srv->on_request = on_request;
	srv->data = data;
	if (limits)
		srv->limits = *limits;
	struct http_limits *l = &srv->limits;
	if (!l->max_header_bytes)
		l->max_header_bytes = HTTP_DEFAULT_MAX_HEADER_BYTES;
	if (!l->max_body_bytes)
		l->max_body_bytes = HTTP_DEFAULT_MAX_BODY_BYTES;
	if (!l->idle_timeout_ms)
		l->idle_timeout_ms = HTTP_DEFAULT_IDLE_TIMEOUT_MS;
	if (!l->read_timeout_ms)
		l->read_timeout_ms = HTTP_DEFAULT_READ_TIMEOUT_MS;
	if (!l->max_connections)
		l->max_connections = HTTP_DEFAULT_MAX_CONNECTIONS;
	/* Past the descriptor limit, accept() fails and libuv drops clients
	 * without any eviction: keep the limit below it. */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
		rlim_t room = nofile.rlim_cur > 2 * HTTP_RESERVED_FDS ? nofile.rlim_cur - HTTP_RESERVED_FDS
								       : nofile.rlim_cur / 2;
		if (l->max_connections > room)
			l->max_connections = room;
	}
	if (!l->max_pipelined)
		l->max_pipelined = HTTP_DEFAULT_MAX_PIPELINED;
	srv->idle.timeout_ms = l->idle_timeout_ms;
	srv->read.timeout_ms = l->read_timeout_ms;
	/* A new connection waits for its first request as long as the
	 * shorter of the two. */
	srv->fresh.timeout_ms = l->idle_timeout_ms < l->read_timeout_ms ? l->idle_timeout_ms : l->read_timeout_ms;
	srv->port = -1;

	uv_timer_init(loop, &srv->sweep);
	srv->sweep.data = srv;
	uv_idle_init(loop, &srv->resume);
	srv->resume.data = srv;
	srv->open_handles = 2;
	return srv;
}

void http_server_set_tls(struct http_server *srv, SSL_CTX *ctx)
{
	if (ctx)
		SSL_CTX_up_ref(ctx);
	SSL_CTX_free(srv->tls_ctx);
	srv->tls_ctx = ctx;
}

void http_server_on_refusal(struct http_server *srv, http_refusal_cb cb, void *data)
{
	srv->on_refusal = cb;
	srv->refusal_data = data;
}

void http_server_stop_accepting(struct http_server *srv)
{
	for (struct http_listener *listener = srv->listeners; listener; listener = listener->next)
		listener_close(listener);
}

void http_server_close(struct http_server *srv, void (*on_closed)(void *data), void *data)
{
	if (srv->closing)
		return;
	srv->closing = true;
	srv->on_closed = on_closed;
	srv->closed_data = data;
	http_server_stop_accepting(srv);
	for (struct http_connection *conn = srv->connections; conn; conn = conn->next)
		connection_close(conn);
	while (srv->resume_head) {
		struct http_connection *conn = srv->resume_head;
		srv->resume_head = conn->resume_next;
		conn->resume_queued = false;
		connection_unref(conn);
	}
	uv_close((uv_handle_t *)&srv->sweep, on_server_handle_closed);
	uv_close((uv_handle_t *)&srv->resume, on_server_handle_closed);
}

unsigned http_server_connections(const struct http_server *srv)
{
	return srv->connection_count;
}

unsigned http_server_evictions(const struct http_server *srv)
{
	return srv->evictions;
}
