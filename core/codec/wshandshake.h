/* wshandshake.h: the checks and answers of the RFC 6455 §4.2 opening
 * handshake, server side. No I/O.
 *
 * The glue parses the HTTP request with http1.h and uses these helpers on
 * the header values; every input is a (pointer, length) pair that need not
 * be NUL-terminated, and nothing is retained after a call returns. */
#ifndef GH_WSHANDSHAKE_H
#define GH_WSHANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#define GH_WS_ACCEPT_LEN 28     /* base64 of a SHA-1 digest */

/* True when the comma-separated header value v[0..len) contains token as
 * one whole element (ASCII case-insensitive; OWS around elements and empty
 * elements ignored). "keep-alive, Upgrade" has "upgrade"; "upgrade-foo"
 * does not. token is NUL-terminated. */
bool gh_ws_token_list_has(const char *v, size_t len, const char *token);

/* Checks a Sec-WebSocket-Key value (§4.2.1 item 5). Returns 0 when key,
 * with OWS trimmed, is the base64 (RFC 4648 §4) of exactly 16 bytes: 24
 * characters, 22 from the base64 alphabet then "==", with the unused low
 * bits of the last data character zero (canonical encoding). Else GH_EPROTO
 * (answer 400). */
int gh_ws_key_check(const char *key, size_t len);

/* Writes the Sec-WebSocket-Accept value for key (§4.2.2 item 5.4: base64 of
 * SHA-1 of the OWS-trimmed key followed by the RFC's GUID): 28 characters
 * plus a NUL into out. Returns 0; GH_EPROTO when key fails
 * gh_ws_key_check() (out is then ""); GH_ENOMEM when the digest could not
 * be computed (out is then ""). Uses OpenSSL's libcrypto. */
int gh_ws_accept(const char *key, size_t len, char out[GH_WS_ACCEPT_LEN + 1]);

/* Origin policy for a route (config: origins: same-host | "*" | [list]). */
typedef enum {
    GH_WS_ORIGINS_SAME_HOST = 0,
    GH_WS_ORIGINS_ANY,
    GH_WS_ORIGINS_LIST,
} gh_ws_origins;

/* Decides whether a handshake with this Origin may proceed (answer 403 if
 * not). origin is the Origin header value (NULL when the header is absent);
 * host is the Host header value (NULL or empty when absent); list holds
 * nlist NUL-terminated allowed origins (LIST mode only; NULL otherwise).
 *
 *   ANY        everything is allowed, "null" and garbage included.
 *   SAME_HOST  origin must be a serialized origin (RFC 6454 §6.2)
 *              "http://host[:port]" or "https://host[:port]" — no path, no
 *              userinfo, no trailing slash, no leading zeros in the port —
 *              whose host equals the Host
 *              header's (ASCII case-insensitive; IPv6 literals in brackets,
 *              compared as written) and whose port equals the Host header's.
 *              A missing port means 80 for http and 443 for https on the
 *              origin; on the Host header it means the origin scheme's
 *              default (the request's own scheme is not known here: a
 *              same-host page is allowed over either scheme).
 *   LIST       origin must equal one of the list entries, comparing the
 *              scheme and host case-insensitively and the port after
 *              filling in the scheme's default (so "https://a.example" and
 *              "https://A.example:443" match). Entries and origins with
 *              another scheme are compared the same way, without a default
 *              port.
 *
 * In every mode an absent Origin header is allowed: browsers always send
 * one, so its absence means a non-browser client, which could forge any
 * value anyway; the check exists against cross-site pages. The opaque
 * origin "null" is refused by SAME_HOST and LIST (even if listed).
 * Returns true when allowed. */
bool gh_ws_origin_allowed(gh_ws_origins mode, const char *const *list,
                          size_t nlist, const char *origin, size_t origin_len,
                          const char *host, size_t host_len);

/* True when s[0..len) is usable as an entry of an origins list: a
 * serialized origin "scheme://host[:port]" (not "null"). For the config
 * checker. */
bool gh_ws_origin_is_valid(const char *s, size_t len);

/* Picks the subprotocol (§4.2.2 item 5.5): the first of the server's
 * protocols server[0..nserver), in server preference order, that the client
 * listed in the Sec-WebSocket-Protocol value offered[0..len) (a comma list;
 * names compare case-sensitively, RFC 7936). Returns its index in server,
 * or -1 when none matches.
 * When the request carries several Sec-WebSocket-Protocol fields, call this
 * once per field and keep the SMALLEST non-negative result (not the first
 * hit): that is the server's preferred protocol among all offered. */
int gh_ws_pick_subprotocol(const char *offered, size_t len,
                           const char *const *server, size_t nserver);

#endif
