/* mime.h: file name -> Content-Type. No I/O. */
#ifndef GH_MIME_H
#define GH_MIME_H

/* Returns a static string for the file name's extension (case-insensitive):
 * html htm css js mjs json svg png jpg jpeg gif webp ico wasm txt woff2 woff
 * map xml pdf webmanifest avif; text types carry "; charset=utf-8".
 * Unknown or no extension: "application/octet-stream". Never NULL.
 * The extension follows the last '.' of the last '/'-separated component;
 * a dot file (".bashrc") has none. NULL filename: "application/octet-stream". */
const char *gh_mime_type(const char *filename);

#endif
