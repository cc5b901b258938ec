/* httpresp.c: response heads assembled with memcpy.
 *
 * Why not evbuffer_add_printf: a static response is a dozen short header
 * lines; formatting them costs more than sending a small file. The builder
 * never overflows: it records that something did not fit and the caller
 * answers 500 instead. */
#include "httpresp.h"

#include <stdio.h>
#include <string.h>

const char *gh_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default:  return "Unknown";
    }
}

static void put(gh_resp_head *h, const char *s, size_t n)
{
    if (h->overflow || n > sizeof(h->buf) - h->len) {
        h->overflow = true;
        return;
    }
    memcpy(h->buf + h->len, s, n);
    h->len += n;
}

void gh_resp_start(gh_resp_head *h, int status)
{
    char line[64];
    int n;

    h->len = 0;
    h->overflow = false;
    if (status < 100 || status > 999)
        status = 500;
    n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, gh_http_reason(status));
    put(h, line, (size_t)n);
}

void gh_resp_add(gh_resp_head *h, const char *name, const char *value, size_t len)
{
    if (memchr(value, '\r', len) != NULL || memchr(value, '\n', len) != NULL) {
        h->overflow = true;    /* never let a value split the head */
        return;
    }
    put(h, name, strlen(name));
    put(h, ": ", 2);
    put(h, value, len);
    put(h, "\r\n", 2);
}

void gh_resp_add_str(gh_resp_head *h, const char *name, const char *value)
{
    gh_resp_add(h, name, value, strlen(value));
}

void gh_resp_add_u64(gh_resp_head *h, const char *name, uint64_t v)
{
    char num[24];
    size_t i = sizeof(num);

    do {
        num[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    gh_resp_add(h, name, num + i, sizeof(num) - i);
}

void gh_resp_add_raw(gh_resp_head *h, const char *raw, size_t len)
{
    put(h, raw, len);
}

void gh_resp_end(gh_resp_head *h)
{
    put(h, "\r\n", 2);
}

size_t gh_resp_error_body(int status, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "<!doctype html>\n<html><head><title>%d %s</title></head>"
                     "<body><h1>%d %s</h1><hr><p>gatehouse</p></body></html>\n",
                     status, gh_http_reason(status), status, gh_http_reason(status));
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
