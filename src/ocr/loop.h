/* Runaway-repetition detector for one page of generation.
 *
 * The n-gram ban stops exact 20-gram repeats, so a looping model keeps going with
 * small variations (a counter, one changed word) until max_new_tokens. This
 * detector watches the stream and says when to stop the page with
 * DSOCR_FINISH_LOOP. Four rules, each with its own threshold (ds_loop_config):
 *
 *   token cycle  the last N token ids are exactly periodic (period <= max_period)
 *   token fuzzy  over the last `fuzzy_window` ids, >= fuzzy_ratio of them equal the
 *                id one period earlier (catches cycles that dodge the n-gram ban);
 *                tokens of det records never count as equal, since a grid of
 *                figures is det records that differ in one or two numbers
 *   line         the same line (or group of up to 4 lines) repeats line_repeats
 *                times in a row; det payloads and det-only lines are ignored, so
 *                blocks that repeat with sliding boxes count as the same
 *   line fuzzy   the same, with digit runs treated as equal, for lines that hold
 *                words (a numbered sentence repeating), not number-only table rows
 *   det          the same label with (nearly) the same boxes appears det_repeats
 *                times on the page
 *
 * Legitimate long tables and lists differ from row to row by more than the fuzzy
 * ratio allows and rarely repeat a whole line; the thresholds keep them safe (see
 * tests/test_ocr_loop.c for the crafted cases both ways).
 *
 * Cost: O(max_period) per token (a constant: 256 by default), O(1) amortised per
 * byte of text; memory grows with the page (ids, offsets, text).
 *
 *   ds_loop_detector d; ds_loop_init(&d, NULL, &err);
 *   for each token: DS_TRY(ds_loop_push(&d, id, text, &err)); if (d.fired) stop;
 *   ds_loop_free(&d);
 */
#ifndef DS_OCR_LOOP_H
#define DS_OCR_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "dsocr.h"
#include "ocr/grounding.h"

typedef struct ds_loop_config {
    int max_period;             /* longest token cycle looked for (256) */
    int exact_min_tokens;       /* exact cycle: fires once this many tokens are periodic (384) */
    int exact_min_repeats;      /* ... and at least this many periods (8) */
    int fuzzy_window;           /* fuzzy cycle: window in tokens (640) */
    float fuzzy_ratio;          /* ... fraction equal to one period back (0.90) */
    int fuzzy_min_repeats;      /* ... the window holds this many periods (4) */
    int line_max_period;        /* lines: longest repeating group of lines (4, at most 8) */
    int line_repeats;           /* lines: exact repeats of the group (10) */
    int line_min_bytes;         /* ... covering at least this many bytes (160) */
    int fuzzy_line_repeats;     /* lines with digits ignored: repeats (16) */
    int fuzzy_line_min_letters; /* ... the group holds this many letters (8) */
    int det_repeats;            /* det: occurrences of the same label+boxes (3) */
    int det_tolerance;          /* ... coordinates within this many 0..999 units (2) */
} ds_loop_config;

typedef enum ds_loop_kind {
    DS_LOOP_NONE = 0,
    DS_LOOP_TOKEN_CYCLE,
    DS_LOOP_TOKEN_FUZZY,
    DS_LOOP_LINE,
    DS_LOOP_LINE_FUZZY,
    DS_LOOP_DET
} ds_loop_kind;

#define DS_LOOP_MAX_LINE_PERIOD 8
#define DS_LOOP_LINE_RING 16   /* > DS_LOOP_MAX_LINE_PERIOD: the current line plus 8 back */
#define DS_LOOP_DET_MEMORY 256

typedef struct ds_loop_det_record {
    uint64_t label_hash;
    int n_boxes;
    double first[4];    /* first box */
    double last[4];     /* last box */
    int count;          /* occurrences so far, this one included */
} ds_loop_det_record;

typedef struct ds_loop_detector {
    ds_loop_config cfg;
    /* result */
    ds_loop_kind fired;        /* DS_LOOP_NONE until a loop is detected */
    char reason[192];          /* e.g. "token cycle of period 3 over 400 tokens" */
    int fired_at_token;        /* index of the token that triggered it */
    size_t keep_bytes;         /* best guess of where the repetition starts, after its
                                * first copy: text[0, keep_bytes) is worth keeping */
    /* private: token history */
    int *ids;                  /* [n_ids] */
    size_t *id_offsets;        /* [n_ids] text length before each token */
    uint8_t *id_in_det;        /* [n_ids] 1 = the token is part of a <|ref|>..<|/det|> record */
    char tail[8];              /* the last bytes of text, to spot record markers */
    int in_det;                /* inside a <|ref|>..<|/det|> record */
    int n_ids, cap_ids;
    int *run;                  /* [max_period + 1] consecutive exact matches at period p */
    int *fuzzy_count;          /* [max_period + 1] matches at period p within the window */
    /* private: lines */
    char *line;
    size_t line_len, line_cap, line_start, text_len;
    uint64_t line_hash[DS_LOOP_LINE_RING], line_fuzzy_hash[DS_LOOP_LINE_RING];
    int line_bytes[DS_LOOP_LINE_RING], line_letters[DS_LOOP_LINE_RING];
    long n_lines;
    int line_run[DS_LOOP_MAX_LINE_PERIOD + 1], fuzzy_line_run[DS_LOOP_MAX_LINE_PERIOD + 1];
    size_t line_run_start[DS_LOOP_MAX_LINE_PERIOD + 1], fuzzy_line_run_start[DS_LOOP_MAX_LINE_PERIOD + 1];
    /* private: det records */
    ds_grounding ground;
    int n_ground_seen;
    ds_loop_det_record dets[DS_LOOP_DET_MEMORY];
    int n_dets;          /* records in dets[], at most DS_LOOP_DET_MEMORY */
    long n_dets_total;   /* records ever added (round-robin slot) */
} ds_loop_detector;

ds_loop_config ds_loop_default_config(void);
/* cfg NULL = defaults. Fails on a config out of range (named in the message). */
dsocr_status ds_loop_init(ds_loop_detector *d, const ds_loop_config *cfg, dsocr_error *err);
/* One generated token: its id (< 0 if unknown: token rules skip it) and the text it
 * completes (NUL-terminated, may be ""). Sets d->fired once a rule fires; later
 * calls do nothing. Fails only when out of memory. */
dsocr_status ds_loop_push(ds_loop_detector *d, int token_id, const char *text, dsocr_error *err);
/* Text only (no ids): same as ds_loop_push with id -1, for a chunk of any size. */
dsocr_status ds_loop_push_text(ds_loop_detector *d, const char *text, size_t len, dsocr_error *err);
void ds_loop_free(ds_loop_detector *d);
const char *ds_loop_kind_name(ds_loop_kind k);   /* "token_cycle", ..., "none" */

#endif
