/* wsext.h: Sec-WebSocket-Extensions (RFC 6455 §9.1) and the negotiation of
 * permessage-deflate (RFC 7692 §5-7), server side. No I/O, no allocation.
 *
 * A client sends one or more Sec-WebSocket-Extensions fields; together they
 * are one comma-separated list of offers in the client's order of
 * preference, each an extension token followed by ";"-separated parameters,
 * a parameter a token with an optional value (a token or a quoted-string).
 * gatehouse honours one extension, permessage-deflate, and accepts the
 * first of its offers it can honour exactly; the others are declined (left
 * out of the answer), never answered wrongly. An offer is declined when it
 * has an unknown parameter, a parameter twice, a value where none belongs,
 * no value where one is needed, or a value out of range; a field value that
 * breaks the syntax declines whatever offer it breaks and every offer after
 * it in that field (the element boundaries can no longer be trusted).
 * That is deliberately softer than RFC 6455 §9.1, which says a malformed
 * value MUST fail the connection: declining costs only compression.
 *
 * What gatehouse answers (RFC 7692 §7.1):
 *   server_no_context_takeover  when offered, or when the route says so
 *                               (policy->server_no_context_takeover);
 *   client_no_context_takeover  always: the server may add it (§7.1.1.2),
 *                               and it lets an idle connection hold no
 *                               inflate window between messages;
 *   server_max_window_bits=N    only when the offer had it: N is the smaller
 *                               of the offer's value and the policy's.
 *                               An offer of 8 is declined: zlib's raw
 *                               deflate cannot compress with a 256-byte
 *                               window, and a smaller answer is not allowed.
 *                               Without the parameter in the offer nothing is
 *                               said: the compressor may still use a smaller
 *                               window, which any decompressor reads.
 *   client_max_window_bits      never: with or without a value in the offer
 *                               (8-15), the client may use any window and
 *                               the inflater reads them all (§7.1.2.2 makes
 *                               the answer optional; it MUST NOT appear when
 *                               not offered).
 */
#ifndef GH_WSEXT_H
#define GH_WSEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The route's side of the negotiation. */
typedef struct gh_pmd_policy {
    uint8_t server_window_bits;         /* 9..15: the largest window we compress with
                                           (other values are clamped into 9..15) */
    bool    server_no_context_takeover; /* the route keeps no compressor between
                                           messages (config context_takeover: false) */
} gh_pmd_policy;

/* What was agreed. */
typedef struct gh_pmd_params {
    uint8_t server_window_bits;         /* 9..15: the window to compress with */
    bool    server_no_context_takeover; /* reset the compressor for every message */
    bool    client_no_context_takeover; /* the client resets its compressor per
                                           message (always true in our answers) */
} gh_pmd_params;

/* Longest answer gh_pmd_negotiate() writes, NUL included:
 * "permessage-deflate; server_no_context_takeover; client_no_context_takeover;
 *  server_max_window_bits=15". */
#define GH_PMD_ANSWER_MAX 112

/* Negotiates permessage-deflate from the request's Sec-WebSocket-Extensions
 * field values values[i][0..lens[i]), i < n, in the order they came (values
 * need not be NUL-terminated). Extension names and parameter names compare
 * ASCII case-insensitively; other extensions than permessage-deflate are
 * skipped (declined). A parameter value may be a token or a quoted-string
 * (backslash escapes honoured, RFC 7230 §3.2.6); once unquoted, a window
 * bits value must be 1*DIGIT without a leading zero, in 8..15.
 * policy may be NULL (15 bits, context takeover); out and answer may not.
 * Returns true when an offer was accepted: *out is what was agreed and
 * answer holds the Sec-WebSocket-Extensions value to send back,
 * NUL-terminated. Returns false when none was (nothing offered, or every
 * offer declined): answer is "" and *out zeroed. */
bool gh_pmd_negotiate(const char *const *values, const size_t *lens, size_t n,
                      const gh_pmd_policy *policy, gh_pmd_params *out,
                      char answer[GH_PMD_ANSWER_MAX]);

#endif
