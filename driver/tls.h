/*
 * The TLS server context of the TCP listeners: the certificate and key the
 * driver shows, and the CA every client certificate must chain to (volman's
 * mutual TLS). Loaded at start and again on SIGHUP.
 */
#ifndef NFSV3_TLS_H
#define NFSV3_TLS_H

#include <stddef.h>
#include <time.h>
#include <openssl/ssl.h>

struct tls_files {
	const char *cert; /* PEM: the server certificate, then its chain */
	const char *key;  /* PEM: its private key */
	const char *ca;   /* PEM: the CA(s) client certificates must chain to */
};

/*
 * A context for TLS 1.2 and 1.3 that requires and verifies a client
 * certificate, with renegotiation and session resumption off (a rotated CA
 * applies to every new connection). NULL on failure, with why filled in
 * naming the file and what is wrong with it.
 */
SSL_CTX *tls_context_new(const struct tls_files *files, char *why, size_t why_len);

/* The server certificate's notAfter; -1 when it has none. */
int tls_not_after(SSL_CTX *ctx, time_t *not_after);

/* A PEM certificate file's notAfter, and whether the file holds one. */
int tls_file_not_after(const char *path, time_t *not_after);

#endif
