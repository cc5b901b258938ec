/* tls.c: SSL_CTX set-up for TLS-terminating listeners.
 *
 * Everything that can be wrong with a certificate or key is found here, at
 * load time, so `gatehouse -t` reports it with the config location instead
 * of the first handshake failing. Per-connection TLS lives in conn.c on
 * bufferevent_openssl. */
#include "tls.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "err.h"

static const unsigned char alpn_http11[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };

/* ALPN (RFC 7301): we speak http/1.1 only. A client offering only other
 * protocols continues without ALPN rather than failing the handshake. */
static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned char *sel = NULL;

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, alpn_http11, sizeof(alpn_http11), in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

const char *gh_tls_error_text(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();

    if (e == 0) {
        snprintf(buf, cap, "unknown error");
    } else {
        ERR_error_string_n(e, buf, cap);
    }
    ERR_clear_error();
    return buf;
}

int gh_tls_ctx_new(const gh_listener_conf *lc, gh_errlist *errs, SSL_CTX **out)
{
    const gh_srcloc *loc = &lc->tls_loc;
    SSL_CTX *ctx = NULL;
    char ebuf[256];
    int rc = GH_EINVAL;
    int minv = TLS1_2_VERSION;

    ERR_clear_error();
    if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        gh_errlist_add(errs, loc->file, loc->line, loc->col, "tls: %s",
                       gh_tls_error_text(ebuf, sizeof(ebuf)));
        goto out;
    }
    if (lc->tls_min_version != NULL && strcmp(lc->tls_min_version, "TLSv1.3") == 0)
        minv = TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx, minv);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* idle connections should not hold 34 KiB of TLS buffers each */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (lc->tls_ciphers != NULL && SSL_CTX_set_cipher_list(ctx, lc->tls_ciphers) != 1) {
        gh_errlist_add(errs, loc->file, loc->line, loc->col, "tls: ciphers \"%s\": %s",
                       lc->tls_ciphers, gh_tls_error_text(ebuf, sizeof(ebuf)));
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, lc->tls_cert) != 1) {
        gh_errlist_add(errs, loc->file, loc->line, loc->col, "tls: cert %s: %s",
                       lc->tls_cert, gh_tls_error_text(ebuf, sizeof(ebuf)));
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, lc->tls_key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            gh_errlist_add(errs, loc->file, loc->line, loc->col,
                           "tls: key %s does not match cert %s", lc->tls_key, lc->tls_cert);
            ERR_clear_error();
        } else {
            gh_errlist_add(errs, loc->file, loc->line, loc->col, "tls: key %s: %s",
                           lc->tls_key, gh_tls_error_text(ebuf, sizeof(ebuf)));
        }
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        gh_errlist_add(errs, loc->file, loc->line, loc->col,
                       "tls: key %s does not match cert %s", lc->tls_key, lc->tls_cert);
        ERR_clear_error();
        goto out;
    }
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    *out = ctx;
    ctx = NULL;
    rc = GH_OK;
out:
    SSL_CTX_free(ctx);
    return rc;
}
