/* tls.h: server-side TLS contexts for listeners that terminate TLS.
 * Internal to core/; the only module besides conn.c that sees OpenSSL. */
#ifndef GH_TLS_H
#define GH_TLS_H

#include <openssl/ssl.h>

#include "config.h"
#include "errlist.h"

/* Builds an SSL_CTX for lc (lc->tls must be set): certificate chain and key
 * (which must match), minimum version, optional cipher list, ALPN that
 * selects http/1.1, no compression or renegotiation. Every problem goes to
 * errs at lc->tls_loc. Returns 0 and *out (free with SSL_CTX_free), or
 * GH_EINVAL. */
int gh_tls_ctx_new(const gh_listener_conf *lc, gh_errlist *errs, SSL_CTX **out);

/* The most recent OpenSSL error as text, for logs; clears the queue. */
const char *gh_tls_error_text(char *buf, size_t cap);

#endif
