/* Markdown from the model output (spec 11.2).
 *
 * ds_markdown_rewrite reproduces the reference's result.mmd byte for byte,
 * including its quirks: matches are replaced with Python's str.replace (every
 * occurrence of the match text, image matches first), and the \coloneqq / \eqqcolon
 * (and, for PDF pages, newline-collapsing) replacements run once per deleted
 * non-image match, i.e. not at all on a page without one.
 *
 * Image links: "![](images/{idx}.jpg)\n", or "![](images/{page}_{idx}.jpg)\n" for a
 * PDF page, idx = 0-based index among image matches. The figure crops written by
 * output.c use the same idx (see output.h), so every link names a file that
 * exists whenever its block has a box inside the page. */
#ifndef DS_OCR_MARKDOWN_H
#define DS_OCR_MARKDOWN_H

#include <stddef.h>

#include "dsocr.h"

/* Separator the reference appends after every PDF page (raw and rewritten). */
#define DS_PAGE_SPLIT "\n\n<--- Page Split --->\n"

/* page < 0: image variant; page >= 0: PDF variant for that page index.
 * *out is malloc'd and NUL-terminated; *out_len (may be NULL) gets its length. */
dsocr_status ds_markdown_rewrite(const char *text, size_t len, int page,
                                 char **out, size_t *out_len, dsocr_error *err);

/* The reference's image test: '<|ref|>image<|/ref|>' occurs in the match text.
 * Image links and figure crops count the matches for which this is true. */
struct ds_ground_block;
int ds_markdown_is_image(const char *text, const struct ds_ground_block *b);

/* Plain text for --format text: every ref/det match removed (images too), runs
 * of three or more newlines collapsed to two, surrounding whitespace stripped. */
dsocr_status ds_markdown_plain(const char *text, size_t len,
                               char **out, size_t *out_len, dsocr_error *err);

/* Python's str.strip() with no argument, over UTF-8: the byte range left after
 * removing leading and trailing Unicode whitespace (str.isspace()). */
void ds_markdown_strip(const char *text, size_t len, size_t *start, size_t *out_len);

/* Python's s.replace(old, new) (all non-overlapping occurrences, left to right).
 * Returns a new malloc'd NUL-terminated string, or NULL when out of memory. */
char *ds_str_replace(const char *s, size_t len, const char *old, size_t old_len,
                     const char *rep, size_t rep_len, size_t *out_len);

#endif
