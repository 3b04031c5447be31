/*
 * The HTTP server over real sockets. Each case runs the server in its own
 * loop on this thread and a blocking client on another; every case that
 * talks to the server runs twice, over a unix socket and over TCP on
 * 127.0.0.1. The client records what it saw; the assertions run here after
 * the loop has ended, which it must do with nothing left open.
 */
#include "http.h"
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { TRANSPORT_UNIX, TRANSPORT_TCP, TRANSPORTS };

#define MAX_HELD 64
#define MAX_RESPONSES 8

struct response {
	int status;
	char head[2048];
	char body[8192];
	size_t body_len;
};

struct fixture {
	uv_loop_t loop;
	struct http_server *srv;
	uv_async_t client_done;
	uv_timer_t delay;
	pthread_t thread;
	int transport;
	int port;
	char dir[64];
	char path[108];
	void (*client)(struct fixture *fx);
	/* What the server side does with each request (default: echo). */
	void (*on_request)(struct fixture *fx, struct http_request *req);
	struct http_request *held[MAX_HELD];
	unsigned held_count;
	unsigned max_held;
	unsigned connections_at_request;
	unsigned connections_at_answer;
	unsigned connections_at_done;
	atomic_uint requests;
	bool closed;
	/* Filled in by the client thread. */
	char failure[256];
	struct response responses[MAX_RESPONSES];
	double elapsed_ms;
	unsigned sent;
};

#define client_check(fx, cond)                                                              \
	do {                                                                                \
		if (!(cond) && !(fx)->failure[0])                                           \
			snprintf((fx)->failure, sizeof((fx)->failure), "%s:%d: %s", __FILE__, \
				 __LINE__, #cond);                                          \
	} while (0)

/* ---- Client side (runs on its own thread, blocking sockets) ------------ */

struct client {
	int fd;
	size_t len;
	char buf[16384];
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int client_try_connect(struct fixture *fx)
{
	int fd;
	if (fx->transport == TRANSPORT_TCP) {
		struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(fx->port) };
		addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
			close(fd);
			fd = -1;
		}
	} else {
		struct sockaddr_un addr = { .sun_family = AF_UNIX };
		snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", fx->path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0) {
		struct timeval tv = { .tv_sec = 5 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

static int client_connect_fd(struct fixture *fx)
{
	int fd = client_try_connect(fx);
	client_check(fx, fd >= 0);
	return fd;
}

static struct client *client_connect(struct fixture *fx)
{
	struct client *c = calloc(1, sizeof(*c));
	c->fd = client_connect_fd(fx);
	return c;
}

static void client_free(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static bool client_send(struct client *c, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		data += n;
		len -= n;
	}
	return true;
}

static bool client_send_text(struct client *c, const char *text)
{
	return client_send(c, text, strlen(text));
}

/* Read one whole response (head and Content-Length body). */
static bool client_read(struct client *c, struct response *r)
{
	memset(r, 0, sizeof(*r));
	for (;;) {
		char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
		if (end) {
			size_t head_len = end - c->buf + 4;
			if (head_len >= sizeof(r->head))
				return false;
			memcpy(r->head, c->buf, head_len);
			r->head[head_len] = '\0';
			if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
				return false;
			const char *cl = strcasestr(r->head, "\r\nContent-Length:");
			size_t body_len = cl ? strtoul(cl + 17, NULL, 10) : 0;
			if (body_len >= sizeof(r->body))
				return false;
			if (c->len >= head_len + body_len) {
				memcpy(r->body, c->buf + head_len, body_len);
				r->body[body_len] = '\0';
				r->body_len = body_len;
				c->len -= head_len + body_len;
				memmove(c->buf, c->buf + head_len + body_len, c->len);
				return true;
			}
		}
		if (c->len == sizeof(c->buf))
			return false;
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		c->len += n;
	}
}

/* The server closed the connection, with nothing more sent. */
static bool client_sees_eof(struct client *c)
{
	if (c->len > 0)
		return false;
	char byte;
	ssize_t n;
	do
		n = recv(c->fd, &byte, 1, 0);
	while (n < 0 && errno == EINTR);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static bool has_header(const struct response *r, const char *line)
{
	return strcasestr(r->head, line) != NULL;
}

/* ---- Server side --------------------------------------------------------- */

static void echo(struct http_request *req)
{
	size_t body_len;
	const char *body = http_request_body(req, &body_len);
	const char *test = http_request_header(req, "x-test");
	const char *empty = http_request_header(req, "X-Empty");
	char out[4096];
	int len = snprintf(out, sizeof(out), "%s %s [%s] [%s] %zu %s", http_request_method(req),
			   http_request_path(req), test ? test : "-", empty ? empty : "-",
			   body_len, body);
	http_respond(req, 200, out, len);
}

static void on_request(struct http_request *req, void *data)
{
	struct fixture *fx = data;
	atomic_fetch_add(&fx->requests, 1);
	fx->connections_at_request = http_server_connections(fx->srv);
	if (fx->on_request)
		fx->on_request(fx, req);
	else
		echo(req);
}

static void hold(struct fixture *fx, struct http_request *req)
{
	ck_assert_uint_lt(fx->held_count, MAX_HELD);
	fx->held[fx->held_count++] = req;
	if (fx->held_count > fx->max_held)
		fx->max_held = fx->held_count;
}

static void answer_with_path(struct http_request *req)
{
	const char *path = http_request_path(req);
	http_respond(req, 200, path, strlen(path));
}

static void on_closed(void *data)
{
	struct fixture *fx = data;
	fx->closed = true;
	fx->srv = NULL;
	/* Answers that come after the server is gone are dropped, and free
	 * what they answer. */
	for (unsigned i = 0; i < fx->held_count; i++)
		answer_with_path(fx->held[i]);
	fx->held_count = 0;
}

static void on_client_done(uv_async_t *async)
{
	struct fixture *fx = async->data;
	uv_close((uv_handle_t *)async, NULL);
	uv_close((uv_handle_t *)&fx->delay, NULL);
	if (!fx->srv)
		return;
	fx->connections_at_done = http_server_connections(fx->srv);
	http_server_close(fx->srv, on_closed, fx);
}

static void *client_main(void *data)
{
	struct fixture *fx = data;
	fx->client(fx);
	uv_async_send(&fx->client_done);
	return NULL;
}

static void fixture_init(struct fixture *fx, int transport, const struct http_limits *limits)
{
	memset(fx, 0, sizeof(*fx));
	fx->transport = transport;
	ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
	fx->srv = http_server_new(&fx->loop, limits, on_request, fx);
	ck_assert_ptr_nonnull(fx->srv);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_http.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/driver.sock", fx->dir);

	char address[160];
	if (transport == TRANSPORT_TCP)
		snprintf(address, sizeof(address), "tcp://127.0.0.1:0");
	else
		snprintf(address, sizeof(address), "unix:%s", fx->path);
	const char *why = NULL;
	int err = http_server_listen(fx->srv, address, &why);
	ck_assert_msg(err == 0, "listen %s: %s: %s", address, why, uv_strerror(err));
	fx->port = http_server_port(fx->srv);
	if (transport == TRANSPORT_TCP)
		ck_assert_int_gt(fx->port, 0);
	uv_timer_init(&fx->loop, &fx->delay);
	fx->delay.data = fx;
	uv_async_init(&fx->loop, &fx->client_done, on_client_done);
	fx->client_done.data = fx;
}

/* Serve until the client is done, close the server, and check that
 * nothing is left behind. */
static void fixture_run(struct fixture *fx, void (*client)(struct fixture *fx))
{
	fx->client = client;
	ck_assert_int_eq(pthread_create(&fx->thread, NULL, client_main, fx), 0);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	pthread_join(fx->thread, NULL);
	ck_assert(fx->closed);
	ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
	/* The listener removed its socket file. */
	ck_assert_int_eq(access(fx->path, F_OK), -1);
	ck_assert_int_eq(rmdir(fx->dir), 0);
	ck_assert_msg(!fx->failure[0], "client: %s", fx->failure);
}

static void run(int transport, const struct http_limits *limits,
		void (*server)(struct fixture *fx, struct http_request *req),
		void (*client)(struct fixture *fx), struct fixture *fx)
{
	fixture_init(fx, transport, limits);
	fx->on_request = server;
	fixture_run(fx, client);
}

/* ---- Cases --------------------------------------------------------------- */

static void client_post(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "POST /VolumeDriver.Create?debug=1 HTTP/1.1\r\n"
			    "Host: driver\r\nX-Test: one\r\nX-Empty:\r\nx-test: two\r\n"
			    "Content-Length: 15\r\n\r\n{\"Name\":\"vol\"}\n");
	client_check(fx, client_read(c, &fx->responses[0]));
	client_free(c);
}

START_TEST(test_post_content_length)
{
	struct fixture fx;
	run(_i, NULL, NULL, client_post, &fx);
	struct response *r = &fx.responses[0];
	ck_assert_int_eq(r->status, 200);
	ck_assert_str_eq(r->body, "POST /VolumeDriver.Create [one, two] [] 15 {\"Name\":\"vol\"}\n");
	ck_assert(has_header(r, "HTTP/1.1 200 OK\r\n"));
	ck_assert(has_header(r, "\r\nContent-Type: application/json\r\n"));
	ck_assert(!has_header(r, "Connection:"));
}
END_TEST

static void client_chunked(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "POST /VolumeDriver.Mount HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
			    "4\r\n{\"Na\r\n");
	sleep_ms(20);
	/* Trailers are read and dropped. */
	client_send_text(c, "9\r\nme\":\"vol\"\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[0]));
	client_free(c);
}

START_TEST(test_chunked_body)
{
	struct fixture fx;
	run(_i, NULL, NULL, client_chunked, &fx);
	ck_assert_int_eq(fx.responses[0].status, 200);
	ck_assert_str_eq(fx.responses[0].body, "POST /VolumeDriver.Mount [-] [-] 14 {\"Name\":\"vol\"}");
}
END_TEST

static void client_keep_alive(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	for (int i = 0; i < 3; i++) {
		char request[128];
		snprintf(request, sizeof(request),
			 "POST /r%d HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", i);
		client_send_text(c, request);
		client_check(fx, client_read(c, &fx->responses[i]));
	}
	client_free(c);
}

START_TEST(test_keep_alive)
{
	struct fixture fx;
	run(_i, NULL, NULL, client_keep_alive, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 3);
	ck_assert_uint_eq(fx.connections_at_request, 1);
	ck_assert_str_eq(fx.responses[0].body, "POST /r0 [-] [-] 2 {}");
	ck_assert_str_eq(fx.responses[1].body, "POST /r1 [-] [-] 2 {}");
	ck_assert_str_eq(fx.responses[2].body, "POST /r2 [-] [-] 2 {}");
}
END_TEST

/* Hold three requests, then answer the last first. */
static void answer_reversed(struct fixture *fx, struct http_request *req)
{
	hold(fx, req);
	if (fx->held_count < 3)
		return;
	for (unsigned i = fx->held_count; i-- > 0;)
		answer_with_path(fx->held[i]);
	fx->held_count = 0;
}

static void client_pipelined(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nA"
			    "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nB\r\n0\r\n\r\n"
			    "GET /c HTTP/1.1\r\n\r\n");
	for (int i = 0; i < 3; i++)
		client_check(fx, client_read(c, &fx->responses[i]));
	client_free(c);
}

START_TEST(test_pipelined_out_of_order)
{
	struct fixture fx;
	run(_i, NULL, answer_reversed, client_pipelined, &fx);
	ck_assert_str_eq(fx.responses[0].body, "/a");
	ck_assert_str_eq(fx.responses[1].body, "/b");
	ck_assert_str_eq(fx.responses[2].body, "/c");
}
END_TEST

static void client_http10(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "POST /old HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}");
	client_check(fx, client_read(c, &fx->responses[0]));
	client_check(fx, client_sees_eof(c));
	client_free(c);

	c = client_connect(fx);
	client_send_text(c, "POST /k1 HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[1]));
	client_send_text(c, "POST /k2 HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[2]));
	client_check(fx, client_sees_eof(c));
	client_free(c);
}

START_TEST(test_http10)
{
	struct fixture fx;
	run(_i, NULL, NULL, client_http10, &fx);
	ck_assert_str_eq(fx.responses[0].body, "POST /old [-] [-] 2 {}");
	ck_assert(has_header(&fx.responses[0], "\r\nConnection: close\r\n"));
	ck_assert_str_eq(fx.responses[1].body, "POST /k1 [-] [-] 0 ");
	ck_assert(has_header(&fx.responses[1], "\r\nConnection: keep-alive\r\n"));
	ck_assert_str_eq(fx.responses[2].body, "POST /k2 [-] [-] 0 ");
	ck_assert(has_header(&fx.responses[2], "\r\nConnection: close\r\n"));
}
END_TEST

static void client_connection_close(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	/* What follows a "Connection: close" request is never served. */
	client_send_text(c, "GET /last HTTP/1.1\r\nConnection: close\r\n\r\n"
			    "GET /never HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[0]));
	client_check(fx, client_sees_eof(c));
	client_free(c);
}

START_TEST(test_connection_close)
{
	struct fixture fx;
	run(_i, NULL, NULL, client_connection_close, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 1);
	ck_assert_str_eq(fx.responses[0].body, "GET /last [-] [-] 0 ");
	ck_assert(has_header(&fx.responses[0], "\r\nConnection: close\r\n"));
}
END_TEST

static void client_big_header(struct fixture *fx)
{
	char request[4096];
	char filler[2001];
	memset(filler, 'x', sizeof(filler) - 1);
	filler[sizeof(filler) - 1] = '\0';
	snprintf(request, sizeof(request),
		 "GET /first HTTP/1.1\r\n\r\nGET /second HTTP/1.1\r\nX-Big: %s\r\n\r\n", filler);
	struct client *c = client_connect(fx);
	client_send_text(c, request);
	client_check(fx, client_read(c, &fx->responses[0]));
	client_check(fx, client_read(c, &fx->responses[1]));
	client_check(fx, client_sees_eof(c));
	client_free(c);
}

START_TEST(test_header_too_large)
{
	struct fixture fx;
	struct http_limits limits = { .max_header_bytes = 1024 };
	run(_i, &limits, NULL, client_big_header, &fx);
	/* The request before the oversized one is still answered, first. */
	ck_assert_int_eq(fx.responses[0].status, 200);
	ck_assert_int_eq(fx.responses[1].status, 431);
	ck_assert_str_eq(fx.responses[1].body,
			 "{\"Err\":\"request line and headers exceed the limit of 1024 bytes\"}");
	ck_assert(has_header(&fx.responses[1], "\r\nConnection: close\r\n"));
}
END_TEST

static void client_big_body(struct fixture *fx)
{
	char chunk[600];
	memset(chunk, 'y', sizeof(chunk));

	/* Declared too large: refused before the body is sent. */
	struct client *c = client_connect(fx);
	client_send_text(c, "POST /big HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
	client_send(c, chunk, sizeof(chunk));
	client_check(fx, client_read(c, &fx->responses[0]));
	client_check(fx, client_sees_eof(c));
	client_free(c);

	/* Chunked: refused once the chunks add up to more than the limit. */
	c = client_connect(fx);
	client_send_text(c, "POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 2; i++) {
		client_send_text(c, "258\r\n");
		client_send(c, chunk, sizeof(chunk));
		client_send_text(c, "\r\n");
	}
	client_check(fx, client_read(c, &fx->responses[1]));
	client_check(fx, client_sees_eof(c));
	client_free(c);
}

START_TEST(test_body_too_large)
{
	struct fixture fx;
	struct http_limits limits = { .max_body_bytes = 1000 };
	run(_i, &limits, NULL, client_big_body, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(fx.responses[i].status, 413);
		ck_assert_str_eq(fx.responses[i].body,
				 "{\"Err\":\"request body exceeds the limit of 1000 bytes\"}");
		ck_assert(has_header(&fx.responses[i], "\r\nConnection: close\r\n"));
	}
}
END_TEST

static void client_garbage(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "\x01\x02 hello there\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[0]));
	client_check(fx, client_sees_eof(c));
	client_free(c);
}

START_TEST(test_garbage)
{
	struct fixture fx;
	run(_i, NULL, NULL, client_garbage, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 0);
	ck_assert_int_eq(fx.responses[0].status, 400);
	ck_assert_str_eq(fx.responses[0].body,
			 "{\"Err\":\"malformed HTTP request: invalid HTTP method\"}");
	ck_assert(has_header(&fx.responses[0], "\r\nConnection: close\r\n"));
}
END_TEST

static void client_one_byte_at_a_time(struct fixture *fx)
{
	const char *request = "POST /VolumeDriver.Path HTTP/1.1\r\nX-Test: slow\r\n"
			      "Content-Length: 14\r\n\r\n{\"Name\":\"vol\"}";
	struct client *c = client_connect(fx);
	for (const char *p = request; *p; p++) {
		client_send(c, p, 1);
		sleep_ms(2);
	}
	client_check(fx, client_read(c, &fx->responses[0]));
	client_free(c);
}

START_TEST(test_one_byte_at_a_time)
{
	struct fixture fx;
	struct http_limits limits = { .read_timeout_ms = 5000 };
	run(_i, &limits, NULL, client_one_byte_at_a_time, &fx);
	ck_assert_str_eq(fx.responses[0].body, "POST /VolumeDriver.Path [slow] [-] 14 {\"Name\":\"vol\"}");
}
END_TEST

static void client_idle(struct fixture *fx)
{
	double start = now_ms();
	struct client *c = client_connect(fx);
	client_check(fx, client_sees_eof(c));
	fx->elapsed_ms = now_ms() - start;
	client_free(c);

	/* Idle after an answer, too. */
	c = client_connect(fx);
	client_send_text(c, "GET /once HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[0]));
	client_check(fx, client_sees_eof(c));
	client_free(c);
}

START_TEST(test_idle_timeout)
{
	struct fixture fx;
	struct http_limits limits = { .idle_timeout_ms = 200 };
	run(_i, &limits, NULL, client_idle, &fx);
	ck_assert_double_ge(fx.elapsed_ms, 150);
	ck_assert_double_lt(fx.elapsed_ms, 2000);
	ck_assert_int_eq(fx.responses[0].status, 200);
}
END_TEST

static void client_slow(struct fixture *fx)
{
	/* Stalls mid-request. */
	double start = now_ms();
	struct client *c = client_connect(fx);
	client_send_text(c, "POST /slow HTTP/1.1\r\nHost: x\r\n");
	client_check(fx, client_read(c, &fx->responses[0]));
	client_check(fx, client_sees_eof(c));
	fx->elapsed_ms = now_ms() - start;
	client_free(c);

	/* Trickles a byte every 50 ms: activity must not extend the deadline. */
	start = now_ms();
	c = client_connect(fx);
	client_send_text(c, "POST /slow HTTP/1.1\r\nX-Test: ");
	bool cut = false;
	for (int i = 0; i < 40 && !cut; i++) {
		sleep_ms(50);
		cut = !client_send_text(c, "a");
	}
	client_check(fx, client_read(c, &fx->responses[1]));
	client_check(fx, client_sees_eof(c));
	client_check(fx, now_ms() - start < 1500);
	client_free(c);
}

START_TEST(test_slow_request_timeout)
{
	struct fixture fx;
	struct http_limits limits = { .read_timeout_ms = 300, .idle_timeout_ms = 10000 };
	run(_i, &limits, NULL, client_slow, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 0);
	ck_assert_int_eq(fx.responses[0].status, 408);
	ck_assert_str_eq(fx.responses[0].body, "{\"Err\":\"request not complete within 300 ms\"}");
	ck_assert_int_eq(fx.responses[1].status, 408);
	ck_assert_double_ge(fx.elapsed_ms, 250);
	ck_assert_double_lt(fx.elapsed_ms, 2000);
}
END_TEST

#define IDLE_CONNECTIONS 1000

static void client_many_idle(struct fixture *fx)
{
	static int fds[IDLE_CONNECTIONS];
	for (int i = 0; i < IDLE_CONNECTIONS; i++)
		fds[i] = client_connect_fd(fx);
	double start = now_ms();
	struct client *c = client_connect(fx);
	client_send_text(c, "POST /VolumeDriver.List HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
	client_check(fx, client_read(c, &fx->responses[0]));
	fx->elapsed_ms = now_ms() - start;
	client_free(c);
	for (int i = 0; i < IDLE_CONNECTIONS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Beyond the default limit of 512: the newest client is served in place of
 * the longest idle one. */
START_TEST(test_thousand_idle_connections)
{
	struct fixture fx;
	run(_i, NULL, NULL, client_many_idle, &fx);
	ck_assert_int_eq(fx.responses[0].status, 200);
	ck_assert_uint_eq(fx.connections_at_request, 512);
	ck_assert_double_lt(fx.elapsed_ms, 500);
}
END_TEST

static void on_delay(uv_timer_t *timer)
{
	struct fixture *fx = timer->data;
	fx->connections_at_answer = http_server_connections(fx->srv);
	for (unsigned i = 0; i < fx->held_count; i++)
		answer_with_path(fx->held[i]);
	fx->held_count = 0;
}

static void answer_later(struct fixture *fx, struct http_request *req)
{
	hold(fx, req);
	uv_timer_start(&fx->delay, on_delay, 100, 0);
}

static void client_gone(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "POST /VolumeDriver.Mount HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
	while (atomic_load(&fx->requests) == 0)
		sleep_ms(1);
	/* Over TCP, hang up with a reset: the server sees the connection fail
	 * at once. Over the unix socket it sees end of stream, which could be
	 * a half-close, so it waits for the answer before closing. */
	struct linger abortive = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
	client_free(c);
	sleep_ms(300);
}

START_TEST(test_client_gone_before_answer)
{
	struct fixture fx;
	run(_i, NULL, answer_later, client_gone, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 1);
	if (_i == TRANSPORT_TCP)
		ck_assert_uint_eq(fx.connections_at_answer, 0);
	ck_assert_uint_eq(fx.connections_at_done, 0);
}
END_TEST

static void client_leaves_request_open(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "POST /VolumeDriver.Unmount HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
			    "POST /VolumeDriver.Remove HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
	while (atomic_load(&fx->requests) < 2)
		sleep_ms(1);
	/* The server is closed with both requests still unanswered; on_closed
	 * answers them after that, and the answers go nowhere. */
	client_free(c);
}

static void hold_forever(struct fixture *fx, struct http_request *req)
{
	hold(fx, req);
}

START_TEST(test_close_with_unanswered_requests)
{
	struct fixture fx;
	run(_i, NULL, hold_forever, client_leaves_request_open, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 2);
}
END_TEST

/* Hold requests under /hold; /release answers them, then itself. */
static void hold_until_release(struct fixture *fx, struct http_request *req)
{
	if (strncmp(http_request_path(req), "/hold", 5) == 0) {
		hold(fx, req);
		return;
	}
	if (strcmp(http_request_path(req), "/release") == 0) {
		for (unsigned i = 0; i < fx->held_count; i++)
			answer_with_path(fx->held[i]);
		fx->held_count = 0;
	}
	answer_with_path(req);
}

static void client_too_many(struct fixture *fx)
{
	struct client *a = client_connect(fx), *b = client_connect(fx);
	client_send_text(a, "GET /hold-a HTTP/1.1\r\n\r\n");
	client_send_text(b, "GET /hold-b HTTP/1.1\r\n\r\n");
	while (atomic_load(&fx->requests) < 2)
		sleep_ms(1);
	/* Both wait for an answer: nothing to make room with, so a burst of
	 * newcomers is refused, all at once. */
	struct client *extra[20];
	for (int i = 0; i < 20; i++)
		extra[i] = client_connect(fx);
	for (int i = 0; i < 20; i++) {
		client_check(fx, client_sees_eof(extra[i]));
		client_free(extra[i]);
	}
	/* Those already in are still served. */
	client_send_text(a, "GET /release HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(a, &fx->responses[0]));
	client_check(fx, client_read(a, &fx->responses[1]));
	client_check(fx, client_read(b, &fx->responses[2]));
	/* Now both are idle, b the longer: a newcomer takes b's place. */
	struct client *c = client_connect(fx);
	client_send_text(c, "GET /later HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[3]));
	client_check(fx, client_sees_eof(b));
	client_send_text(a, "GET /again HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(a, &fx->responses[4]));
	client_free(a);
	client_free(b);
	client_free(c);
}

START_TEST(test_max_connections)
{
	struct fixture fx;
	struct http_limits limits = { .max_connections = 2 };
	run(_i, &limits, hold_until_release, client_too_many, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 5);
	ck_assert_str_eq(fx.responses[0].body, "/hold-a");
	ck_assert_str_eq(fx.responses[1].body, "/release");
	ck_assert_str_eq(fx.responses[2].body, "/hold-b");
	ck_assert_str_eq(fx.responses[3].body, "/later");
	ck_assert_str_eq(fx.responses[4].body, "/again");
}
END_TEST

/* Clients that never finish their request give way, oldest first, to one
 * that sends its request whole; the others may still finish theirs. */
static void client_slow_give_way(struct fixture *fx)
{
	struct client *a = client_connect(fx);
	client_send_text(a, "GET /slow-a HTTP/1.1\r\nX-");
	sleep_ms(20);
	struct client *b = client_connect(fx);
	client_send_text(b, "GET /slow-b HTTP/1.1\r\nX-");
	sleep_ms(20);
	struct client *c = client_connect(fx);
	client_send_text(c, "GET /whole HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[0]));
	client_check(fx, client_sees_eof(a));
	client_send_text(b, "Test: b\r\n\r\n");
	client_check(fx, client_read(b, &fx->responses[1]));
	client_free(a);
	client_free(b);
	client_free(c);
}

/* New connections that send nothing give way before a kept connection
 * that has been served. */
static void client_kept_stays(struct fixture *fx)
{
	struct client *a = client_connect(fx);
	client_send_text(a, "GET /first HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(a, &fx->responses[0]));
	struct client *silent[5];
	for (int i = 0; i < 5; i++)
		silent[i] = client_connect(fx);
	struct client *c = client_connect(fx);
	client_send_text(c, "GET /newcomer HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[1]));
	client_send_text(a, "GET /kept HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(a, &fx->responses[2]));
	for (int i = 0; i < 5; i++) {
		client_check(fx, client_sees_eof(silent[i]));
		client_free(silent[i]);
	}
	client_free(a);
	client_free(c);
}

START_TEST(test_max_connections_kept_stays)
{
	struct fixture fx;
	struct http_limits limits = { .max_connections = 2 };
	run(_i, &limits, NULL, client_kept_stays, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 3);
	ck_assert_str_eq(fx.responses[1].body, "GET /newcomer [-] [-] 0 ");
	ck_assert_str_eq(fx.responses[2].body, "GET /kept [-] [-] 0 ");
}
END_TEST

START_TEST(test_max_connections_slow_give_way)
{
	struct fixture fx;
	struct http_limits limits = { .max_connections = 2 };
	run(_i, &limits, NULL, client_slow_give_way, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 2);
	ck_assert_str_eq(fx.responses[0].body, "GET /whole [-] [-] 0 ");
	ck_assert_str_eq(fx.responses[1].body, "GET /slow-b [b] [-] 0 ");
}
END_TEST

static void on_trickle(uv_timer_t *timer)
{
	struct fixture *fx = timer->data;
	if (fx->held_count == 0)
		return;
	struct http_request *req = fx->held[0];
	memmove(fx->held, fx->held + 1, --fx->held_count * sizeof(fx->held[0]));
	answer_with_path(req);
	if (fx->held_count > 0)
		uv_timer_start(&fx->delay, on_trickle, 20, 0);
}

static void answer_one_by_one(struct fixture *fx, struct http_request *req)
{
	hold(fx, req);
	if (!uv_is_active((uv_handle_t *)&fx->delay))
		uv_timer_start(&fx->delay, on_trickle, 20, 0);
}

static void client_floods(struct fixture *fx)
{
	char requests[1024] = "";
	for (int i = 0; i < 6; i++) {
		char one[64];
		snprintf(one, sizeof(one), "GET /%d HTTP/1.1\r\n\r\n", i);
		strcat(requests, one);
	}
	struct client *c = client_connect(fx);
	client_send_text(c, requests);
	for (int i = 0; i < 6; i++)
		client_check(fx, client_read(c, &fx->responses[i]));
	client_free(c);
}

START_TEST(test_backpressure)
{
	struct fixture fx;
	struct http_limits limits = { .max_pipelined = 2 };
	run(_i, &limits, answer_one_by_one, client_floods, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 6);
	ck_assert_uint_eq(fx.max_held, 2);
	for (int i = 0; i < 6; i++) {
		char path[16];
		snprintf(path, sizeof(path), "/%d", i);
		ck_assert_str_eq(fx.responses[i].body, path);
	}
}
END_TEST

static void client_expect_continue(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "POST /VolumeDriver.Create HTTP/1.1\r\nExpect: 100-continue\r\n"
			    "Content-Length: 2\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[0]));
	client_send_text(c, "{}");
	client_check(fx, client_read(c, &fx->responses[1]));
	client_free(c);
}

START_TEST(test_expect_continue)
{
	struct fixture fx;
	run(_i, NULL, NULL, client_expect_continue, &fx);
	ck_assert_int_eq(fx.responses[0].status, 100);
	ck_assert_int_eq(fx.responses[1].status, 200);
	ck_assert_str_eq(fx.responses[1].body, "POST /VolumeDriver.Create [-] [-] 2 {}");
}
END_TEST

#define FLOOD 300

static void client_pipelined_flood(struct fixture *fx)
{
	static char requests[FLOOD * 32];
	size_t len = 0;
	for (int i = 0; i < FLOOD; i++)
		len += snprintf(requests + len, sizeof(requests) - len, "GET /%d HTTP/1.1\r\n\r\n", i);
	struct client *c = client_connect(fx);
	client_send(c, requests, len);
	for (int i = 0; i < FLOOD; i++) {
		struct response r;
		char want[32];
		snprintf(want, sizeof(want), "GET /%d [-] [-] 0 ", i);
		client_check(fx, client_read(c, &r));
		client_check(fx, strcmp(r.body, want) == 0);
	}
	client_free(c);
}

/* More pipelined requests than the limit, answered as they come: reading
 * pauses and resumes from what was already read. */
START_TEST(test_pipelined_flood)
{
	struct fixture fx;
	struct http_limits limits = { .max_pipelined = 4 };
	run(_i, &limits, NULL, client_pipelined_flood, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), FLOOD);
}
END_TEST

/* The application shuts the server down from inside a request. */
static void close_from_request(struct fixture *fx, struct http_request *req)
{
	hold(fx, req);
	http_server_close(fx->srv, on_closed, fx);
}

static void client_sees_shutdown(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "GET /evacuate HTTP/1.1\r\n\r\nGET /more HTTP/1.1\r\n\r\n");
	client_check(fx, client_sees_eof(c));
	client_free(c);
}

START_TEST(test_close_from_request)
{
	struct fixture fx;
	run(_i, NULL, close_from_request, client_sees_shutdown, &fx);
	ck_assert_uint_eq(atomic_load(&fx.requests), 1);
}
END_TEST

#define UNREAD_REQUESTS 20000

static void answer_big(struct fixture *fx, struct http_request *req)
{
	static char body[16384];
	memset(body, 'x', sizeof(body));
	http_respond(req, 200, body, sizeof(body));
}

static void client_never_reads(struct fixture *fx)
{
	char request[1100], filler[1001];
	memset(filler, 'f', sizeof(filler) - 1);
	filler[sizeof(filler) - 1] = '\0';
	int len = snprintf(request, sizeof(request), "GET /big HTTP/1.1\r\nX-Filler: %s\r\n\r\n", filler);
	struct client *c = client_connect(fx);
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (fx->sent < UNREAD_REQUESTS && client_send(c, request, len))
		fx->sent++;
	client_free(c);
}

/* A client that sends and never reads must not make the server queue
 * answers without bound: the server stops reading, and the client blocks. */
START_TEST(test_client_never_reads)
{
	struct fixture fx;
	run(_i, NULL, answer_big, client_never_reads, &fx);
	ck_assert_uint_lt(fx.sent, UNREAD_REQUESTS);
	ck_assert_uint_le(atomic_load(&fx.requests), fx.sent + 1);
}
END_TEST

static void stop_on_request(struct fixture *fx, struct http_request *req)
{
	if (strcmp(http_request_path(req), "/stop") == 0)
		http_server_stop_accepting(fx->srv);
	echo(req);
}

static void client_stop_accepting(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "GET /stop HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[0]));
	int fd = client_try_connect(fx);
	client_check(fx, fd < 0);
	if (fd >= 0)
		close(fd);
	client_send_text(c, "GET /still HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[1]));
	client_free(c);
}

START_TEST(test_stop_accepting)
{
	struct fixture fx;
	run(_i, NULL, stop_on_request, client_stop_accepting, &fx);
	ck_assert_str_eq(fx.responses[1].body, "GET /still [-] [-] 0 ");
}
END_TEST

static void client_head(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "HEAD /VolumeDriver.List HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
	/* The HEAD answer carries no body, so the next answer must follow its
	 * head directly. */
	char want[] = "HTTP/1.1 200 OK\r\n";
	char got[512] = "";
	size_t len = 0;
	while (!strstr(got, "\r\n\r\nHTTP/1.1 200 OK\r\n") && len < sizeof(got) - 1) {
		ssize_t n = recv(c->fd, got + len, sizeof(got) - 1 - len, 0);
		if (n <= 0)
			break;
		len += n;
		got[len] = '\0';
	}
	client_check(fx, strncmp(got, want, strlen(want)) == 0);
	char *second = strstr(got, "\r\n\r\nHTTP/1.1 200 OK\r\n");
	client_check(fx, second != NULL);
	if (second) {
		memmove(c->buf, second + 4, len - (second + 4 - got));
		c->len = len - (second + 4 - got);
		client_check(fx, client_read(c, &fx->responses[0]));
	}
	client_free(c);
}

START_TEST(test_head)
{
	struct fixture fx;
	run(_i, NULL, NULL, client_head, &fx);
	ck_assert_str_eq(fx.responses[0].body, "GET /after [-] [-] 0 ");
}
END_TEST

/* ---- Listeners without a client ------------------------------------------ */

static void on_flag(void *data)
{
	*(bool *)data = true;
}

static void ignore_request(struct http_request *req, void *data)
{
	http_respond(req, 500, "{}", 2);
}

START_TEST(test_unix_socket_file)
{
	uv_loop_t loop;
	char dir[] = "/tmp/test_http.XXXXXX", path[108], address[160];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/driver.sock", dir);
	snprintf(address, sizeof(address), "unix:%s", path);
	uv_loop_init(&loop);
	struct http_server *srv = http_server_new(&loop, NULL, ignore_request, NULL);
	const char *why = NULL;

	/* A regular file is never replaced. */
	FILE *file = fopen(path, "w");
	fputs("precious", file);
	fclose(file);
	ck_assert_int_eq(http_server_listen(srv, address, &why), UV_EEXIST);
	ck_assert_ptr_nonnull(strstr(why, "not a socket"));
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(unlink(path), 0);

	/* A stale socket left by a previous run is. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	ck_assert_int_eq(http_server_listen(srv, address, &why), 0);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0660);

	bool closed = false;
	http_server_close(srv, on_flag, &closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert(closed);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_listen_errors)
{
	static const char *const bad[] = {
		"http://127.0.0.1:80",   "tcp://127.0.0.1",     "tcp://127.0.0.1:65536",
		"tcp://127.0.0.1:-1",    "tcp://127.0.0.1:8x",  "tcp://example.com:80",
		"tcp://[::1:80",         "tcp://[::1]80",       "tcp://[nonsense]:80",
		"unix:relative.sock",
		"unix:/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
	};
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct http_server *srv = http_server_new(&loop, NULL, ignore_request, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;
		ck_assert_msg(http_server_listen(srv, bad[i], &why) < 0, "%s accepted", bad[i]);
		ck_assert_msg(why && *why, "%s: no reason given", bad[i]);
	}
	ck_assert_int_eq(http_server_port(srv), -1);
	bool closed = false;
	http_server_close(srv, on_flag, &closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert(closed);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* Several listeners on one server: the unix socket, localhost, [::1]. */
static void client_each_listener(struct fixture *fx)
{
	struct client *c = client_connect(fx);
	client_send_text(c, "GET /unix HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[0]));
	client_free(c);

	fx->transport = TRANSPORT_TCP;
	c = client_connect(fx);
	client_send_text(c, "GET /tcp HTTP/1.1\r\n\r\n");
	client_check(fx, client_read(c, &fx->responses[1]));
	client_free(c);
}

START_TEST(test_many_listeners)
{
	struct fixture fx;
	fixture_init(&fx, TRANSPORT_UNIX, NULL);
	const char *why = NULL;
	ck_assert_int_eq(http_server_listen(fx.srv, "tcp://localhost:0", &why), 0);
	fx.port = http_server_port(fx.srv);
	ck_assert_int_gt(fx.port, 0);
	int err = http_server_listen(fx.srv, "tcp://[::1]:0", &why);
	/* A machine without IPv6 loopback cannot bind it; everything else
	 * must work. */
	ck_assert_msg(err == 0 || err == UV_EADDRNOTAVAIL || err == UV_EAFNOSUPPORT,
		      "[::1]: %s", uv_strerror(err));
	if (err == 0)
		ck_assert_int_ne(http_server_port(fx.srv), fx.port);
	fixture_run(&fx, client_each_listener);
	ck_assert_str_eq(fx.responses[0].body, "GET /unix [-] [-] 0 ");
	ck_assert_str_eq(fx.responses[1].body, "GET /tcp [-] [-] 0 ");
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("server");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_post_content_length, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_chunked_body, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_keep_alive, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_pipelined_out_of_order, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_http10, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_connection_close, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_header_too_large, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_body_too_large, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_garbage, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_one_byte_at_a_time, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_idle_timeout, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_slow_request_timeout, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_thousand_idle_connections, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_client_gone_before_answer, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_close_with_unanswered_requests, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_max_connections, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_max_connections_slow_give_way, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_max_connections_kept_stays, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_backpressure, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_expect_continue, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_pipelined_flood, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_close_from_request, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_client_never_reads, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_stop_accepting, 0, TRANSPORTS);
	tcase_add_loop_test(tc, test_head, 0, TRANSPORTS);
	tcase_add_test(tc, test_unix_socket_file);
	tcase_add_test(tc, test_listen_errors);
	tcase_add_test(tc, test_many_listeners);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	/* A client that hangs up while an answer is being written must not
	 * kill the process; the daemon ignores SIGPIPE the same way. */
	signal(SIGPIPE, SIG_IGN);
	return harness_run(http_suite());
}
