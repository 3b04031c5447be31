/* The TLS server context: see tls.h. */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* TLS 1.2 suites: forward secret AEAD only. volman (Go) offers exactly
 * ECDHE-RSA-AES128/256-GCM-SHA256/384 for 1.2; the ECDSA ones serve an
 * operator with an EC certificate. TLS 1.3 keeps OpenSSL's suites. */
#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
		      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"  \
		      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static void openssl_reason(char *out, size_t size)
{
	unsigned long err = ERR_peek_last_error();
	const char *reason = err ? ERR_reason_error_string(err) : NULL;
	snprintf(out, size, "%s", reason ? reason : "unreadable");
	ERR_clear_error();
}

static SSL_CTX *fail(SSL_CTX *ctx, char *why, size_t why_len, const char *what, const char *path)
{
	char reason[160];
	openssl_reason(reason, sizeof(reason));
	snprintf(why, why_len, "%s %s: %s", what, path, reason);
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *tls_context_new(const struct tls_files *files, char *why, size_t why_len)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return fail(NULL, why, why_len, "TLS", "context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET |
				 SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Idle connections give their record buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1)
		return fail(ctx, why, why_len, "TLS", "cipher list");

	if (SSL_CTX_use_certificate_chain_file(ctx, files->cert) != 1)
		return fail(ctx, why, why_len, "--tls-cert", files->cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, files->key, SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
		return fail(ctx, why, why_len, "--tls-key", files->key);
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(why, why_len, "--tls-key %s is not the key of the certificate in --tls-cert %s", files->key,
			 files->cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_load_verify_locations(ctx, files->ca, NULL) != 1)
		return fail(ctx, why, why_len, "--tls-ca", files->ca);
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(files->ca);
	if (!names)
		return fail(ctx, why, why_len, "--tls-ca", files->ca);
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
}

static int asn1_time(const ASN1_TIME *when, time_t *out)
{
	struct tm tm;
	if (!when || ASN1_TIME_to_tm(when, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

int tls_not_after(SSL_CTX *ctx, time_t *not_after)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	return cert ? asn1_time(X509_get0_notAfter(cert), not_after) : -1;
}

int tls_file_not_after(const char *path, time_t *not_after)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ERR_clear_error();
	if (!cert)
		return -1;
	int rc = asn1_time(X509_get0_notAfter(cert), not_after);
	X509_free(cert);
	return rc;
}
