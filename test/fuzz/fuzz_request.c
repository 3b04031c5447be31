/*
 * libFuzzer target for the request path. The first byte picks the layer:
 * even: the bytes go to the real HTTP server over a real unix socket, as a
 * client would send them; odd: the bytes are a request body, and go through
 * JSON parsing, volume-name checks, the option table and the kernel option
 * string, and the state-file loader. Crashes, sanitizer reports and leaks fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http.h"
#include "options.h"
#include "registry.h"
#include "state.h"

static uv_loop_t loop;
static struct http_server *server;
static char sock_path[108];

static void on_request(struct http_request *req, void *data)
{
	size_t len;
	const char *body = http_request_body(req, &len);
	(void)http_request_header(req, "Accept");
	(void)http_request_path(req);
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

static void fuzz_http(const uint8_t *data, size_t size)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

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
}

static void fuzz_body(const uint8_t *data, size_t size)
{
	static struct config cfg = { .allow_local_sources = true, .allowed_nfs_options = "nolock,actimeo,soft,hard" };
	json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	struct volume_spec spec;
	struct registry reg;
	struct error *err;

	if (!doc)
		return;
	json_t *name = json_object_get(doc, "Name");
	if (json_is_string(name))
		error_free(options_check_name(json_string_value(name)));
	err = options_parse(json_object_get(doc, "Opts"), &cfg, &spec);
	if (!err) {
		free(options_kernel_string(&spec, &cfg, size % 2));
		volume_spec_clear(&spec);
	}
	error_free(err);
	json_decref(options_sanitize(json_object_get(doc, "Opts")));
	registry_init(&reg);
	error_free(state_deserialize(doc, &reg, &cfg));
	json_decref(state_serialize(&reg));
	registry_destroy(&reg);
	json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 60000)
		return 0;
	setup();
	if (data[0] % 2 == 0)
		fuzz_http(data + 1, size - 1);
	else
		fuzz_body(data + 1, size - 1);
	return 0;
}
