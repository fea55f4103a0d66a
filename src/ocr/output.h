/* The output directory of one run (an image or a PDF), every file written
 * atomically (DIR/.name.tmp-PID, fsync, rename): an interrupted run leaves whole
 * files or none.
 *
 *   result.mmd                Markdown, figures rewritten as image links (spec 11.2);
 *                             PDF: every page followed by DS_PAGE_SPLIT
 *   result_ori.mmd            the raw model output (PDF: pages joined the same way)
 *   result.json               per page: blocks (label, boxes in pixels and 0..999,
 *                             text), finish reason, token counts, timings, mode, grid
 *   result_with_boxes.png     boxes drawn on the page, colour per label (deterministic);
 *                             PDF: result_with_boxes_{page}.png
 *   images/{idx}.jpg          figure crops (JPEG quality 90); PDF: images/{page}_{idx}.jpg
 *
 * Figure naming. The reference names crops by counting *boxes* but links them by
 * counting *matches*, so its links point at the wrong file when one image block
 * carries several boxes. Here both count image matches, in text order, exactly as
 * the Markdown links do: the first box of image match idx is images/{idx}.jpg (the
 * link target), further boxes of the same block are images/{idx}_{b}.jpg (PDF:
 * images/{page}_{idx}_{b}.jpg), b = 1, 2, ... A link has no file only when its block
 * has no box inside the page (det text unparseable, "[]", or an empty box).
 *
 * Text is taken as the model produced it (EOS removed). For an image the
 * Markdown and raw files hold the text after Python's strip(), as the HF path
 * writes them; PDF pages are not stripped, as in the reference PDF script. Pages
 * that ended in a loop are kept (the reference drops pages without EOS) and
 * marked "finish_reason": "loop" in the JSON and in the summary. */
#ifndef DS_OCR_OUTPUT_H
#define DS_OCR_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "dsocr.h"
#include "ocr/grounding.h"

/* ---- files -------------------------------------------------------------------- */

/* 1 if name is a relative path of components made of [A-Za-z0-9._-], none empty,
 * none starting with '.', at most 255 bytes: it cannot leave the output folder. */
int ds_output_name_ok(const char *name);
/* Copies `in` into out[size] keeping [A-Za-z0-9._-], other bytes as '_', no leading
 * '.', "_" for an empty result: a file-name component safe to write. */
void ds_output_sanitize(const char *in, char *out, size_t size);
/* Writes dir/name atomically. name must pass ds_output_name_ok; its folders must exist. */
dsocr_status ds_write_atomic(const char *dir, const char *name, const void *data, size_t size,
                             dsocr_error *err);

/* ---- images ------------------------------------------------------------------- */

/* Encoders to a malloc'd buffer; rgb is packed 8-bit RGB, width*height*3 bytes. */
dsocr_status ds_encode_png(const uint8_t *rgb, int width, int height, uint8_t **out, size_t *size,
                           dsocr_error *err);
dsocr_status ds_encode_jpeg(const uint8_t *rgb, int width, int height, int quality, uint8_t **out,
                            size_t *size, dsocr_error *err);
/* Deterministic colour for a label: 0xRRGGBB from a fixed palette by label hash. */
uint32_t ds_label_color(const char *label);
/* Draws every box of every parsed block onto rgb (in place): a light fill (alpha
 * 20/255) and an outline, 4 px for "title", 2 px otherwise. */
void ds_draw_boxes(uint8_t *rgb, int width, int height, const ds_grounding *g);
/* Crop of [x1, x2) x [y1, y2) intersected with the image into a malloc'd buffer;
 * returns 0 (and no buffer) when the intersection is empty. */
int ds_crop_rgb(const uint8_t *rgb, int width, int height, const int box[4], uint8_t **out, int *out_w,
                int *out_h);

/* ---- the run ------------------------------------------------------------------ */

typedef struct ds_output ds_output;

typedef struct ds_output_options {
    int write_overlay;   /* result_with_boxes*.png (1) */
    int write_crops;     /* images/{idx}.jpg (1) */
    int jpeg_quality;    /* 90 */
} ds_output_options;

ds_output_options ds_output_default_options(void);

typedef struct ds_page_output {
    int index;                  /* 0-based page of the document (0 for an image) */
    const uint8_t *rgb;         /* the original page, packed RGB; NULL: no crops, no overlay */
    int width, height;          /* its size; boxes are mapped to it */
    const char *text;           /* raw model output, special tokens kept, EOS removed */
    size_t text_len;
    dsocr_finish finish;
    const char *finish_detail;  /* why a loop was cut (ds_loop_detector.reason); may be NULL */
    dsocr_mode mode;
    int grid_w, grid_h;
    int n_prompt_tokens, n_image_tokens, n_tokens;
    double ms_vision, ms_prefill, ms_decode;
} ds_page_output;

/* Creates dir (one level) when missing. source: the input's file name, recorded in
 * the JSON. is_pdf selects the PDF variant of names, Markdown and separators. */
dsocr_status ds_output_open(const char *dir, const char *source, int is_pdf, const ds_output_options *opts,
                            ds_output **out, dsocr_error *err);
/* Writes the page's crops and overlay now; keeps its text and JSON for finish. */
dsocr_status ds_output_add_page(ds_output *o, const ds_page_output *page, dsocr_error *err);
/* Writes result.mmd, result_ori.mmd and result.json. */
dsocr_status ds_output_finish(ds_output *o, dsocr_error *err);
/* The Markdown built so far (all pages, as written to result.mmd). */
const char *ds_output_markdown(const ds_output *o, size_t *len);
/* One line: "3 pages: 2 stop, 0 length, 1 loop (page 2: ...); 5120 tokens". */
void ds_output_summary(const ds_output *o, char *buf, size_t size);
void ds_output_free(ds_output *o);

const char *ds_finish_name(dsocr_finish f);   /* "stop", "length", "loop" */
const char *ds_mode_name(dsocr_mode m);       /* "tiny", ..., "gundam" */

#endif
