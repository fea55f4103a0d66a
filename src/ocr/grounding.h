/* Grounding blocks in the model output (spec 11.1):
 *
 *   <|ref|>LABEL<|/ref|><|det|>[[x1, y1, x2, y2], ...]<|/det|>
 *
 * Matching follows the reference regex exactly (DOTALL, non-greedy, ref and det
 * adjacent):  (<\|ref\|>(.*?)<\|/ref\|><\|det\|>(.*?)<\|/det\|>)
 * Every match is reported, in text order. The det text is parsed like Python's
 * eval of a list of 4-number lists; a match whose det text does not parse has
 * det_ok = 0 and no boxes (the reference skips it when drawing and cropping, but
 * still rewrites it in the Markdown, see markdown.h).
 *
 * Coordinates are 0..999 of the original image; pixels are int(x / 999 * W) in
 * float64 with truncation toward zero, as the reference computes them.
 *
 * The parser is incremental: feed it text chunks as they stream; complete matches
 * are appended to `blocks` as soon as the text that closes them has arrived, and
 * the result is the same for any chunking as for the whole text at once. */
#ifndef DS_OCR_GROUNDING_H
#define DS_OCR_GROUNDING_H

#include <stddef.h>

#include "dsocr.h"

typedef struct ds_ground_box {
    double norm[4];   /* x1, y1, x2, y2 as emitted (nominally integers 0..999) */
    int px[4];        /* the same in pixels of the original image (clamped to +-2^30) */
} ds_ground_box;

typedef struct ds_ground_block {
    char *label;            /* group 2 of the regex, NUL-terminated */
    int det_ok;             /* 1 = det text parsed as a list of 4-number lists */
    int n_boxes;
    ds_ground_box *boxes;   /* [n_boxes] */
    size_t start, end;      /* byte range of the whole match in the text fed so far */
    size_t det_start, det_end; /* byte range of the det text (group 3) */
} ds_ground_block;

typedef struct ds_grounding {
    ds_ground_block *blocks;  /* every regex match so far, in text order */
    int n_blocks;
    int width, height;        /* original image size used for px */
    /* private: the text fed so far and the scan state */
    char *text;
    size_t len, cap;
    int cap_blocks;
    size_t ref_at;            /* start of the candidate "<|ref|>" (SIZE_MAX: none yet) */
    size_t find_from;         /* where the next search for a marker resumes */
    size_t mid_at;            /* position of "<|/ref|><|det|>" (SIZE_MAX: not found yet) */
} ds_grounding;

/* width, height: pixel size of the original image (the page). */
void ds_grounding_init(ds_grounding *g, int width, int height);
/* Appends a chunk of streamed text and parses whatever it completes. */
dsocr_status ds_grounding_feed(ds_grounding *g, const char *chunk, size_t n, dsocr_error *err);
/* The text fed so far (NUL-terminated; "" before the first feed). */
const char *ds_grounding_text(const ds_grounding *g);
void ds_grounding_free(ds_grounding *g);

/* Whole text at once: init + feed. Free with ds_grounding_free. */
dsocr_status ds_grounding_parse(const char *text, size_t len, int width, int height,
                                ds_grounding *out, dsocr_error *err);

/* Parses a det text ("[[x1, y1, x2, y2], ...]") into newly malloc'd boxes.
 * Returns 1 on success (n may be 0 for "[]"), 0 if it is not a list of 4-number
 * lists, -1 when out of memory. */
int ds_grounding_parse_det(const char *s, size_t n, int width, int height,
                           ds_ground_box **boxes, int *n_boxes);

/* int(v / 999 * size) in float64, truncated toward zero, clamped to +-2^30. */
int ds_grounding_to_px(double v, int size);

#endif
