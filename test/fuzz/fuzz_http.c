/*
 * libFuzzer target: HTTP framing. The bytes go to the real HTTP server over
 * a real unix socket, as a client would send them (request line, headers,
 * Content-Length and chunked bodies, pipelining, garbage), and the server's
 * answers are read until it lets go. Crashes, sanitizer reports and leaks
 * fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http.h"

static uv_loop_t loop;
static struct http_server *server;
static char sock_path[108];

static void on_request(struct http_request *req, void *data)
{
	size_t len;
	const char *body = http_request_body(req, &len);
	(void)http_request_header(req, "Accept");
	(void)http_request_path(req);
	(void)http_request_method(req);
	http_respond(req, 200, body, len);
}

static void remove_socket(void)
{
	unlink(sock_path);
}

static void setup(void)
{
	static int ready;
	const char *why;
	char address[128];

	if (ready)
		return;
	ready = 1;
	uv_loop_init(&loop);
	snprintf(sock_path, sizeof(sock_path), "/tmp/nfsv3-fuzz-%d.sock", (int)getpid());
	snprintf(address, sizeof(address), "unix:%s", sock_path);
	struct http_limits limits = { .max_header_bytes = 4096, .max_body_bytes = 8192, .read_timeout_ms = 200,
				      .idle_timeout_ms = 200 };
	server = http_server_new(&loop, &limits, on_request, NULL);
	if (http_server_listen(server, address, &why) < 0)
		abort();
	atexit(remove_socket);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	if (size > 60000)
		return 0;
	setup();
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		abort();
	/* Accept, then feed and half-close; run until the server has answered and let go. */
	uv_run(&loop, UV_RUN_NOWAIT);
	if (size && send(fd, data, size, MSG_NOSIGNAL) < 0) {
		/* The socket buffer is large enough for any input we allow. */
	}
	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 50; i++) {
		char buf[4096];
		uv_run(&loop, UV_RUN_NOWAIT);
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			break;
		if (n < 0)
			usleep(100);
	}
	close(fd);
	uv_run(&loop, UV_RUN_NOWAIT);
	return 0;
}
