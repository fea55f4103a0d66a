/* No-repeat n-gram bans (spec 10.1, 10.2), kept incrementally.
 *
 * The tracker holds a token sequence and, for every (n-1)-gram seen, the set of
 * tokens that followed it. Pushing a token costs O(n) (one hash of n-1 tokens);
 * asking for the banned set costs O(n + its size). Nothing rescans the sequence.
 *
 *  - HF NoRepeatNGramLogitsProcessor: window 0, fed the whole sequence (prompt
 *    included, BOS and image placeholders too). With sequence length L >= n-1, a
 *    token t is banned iff (last n-1 tokens, t) occurs anywhere as an n-gram.
 *  - vLLM windowed ban (DeepSeek-OCR's ngram_norepeat.py): window W > 0, fed the
 *    generated tokens only; only n-grams starting at i >= L - W count, and
 *    whitelisted tokens (<td> 128821, </td> 128822) are never banned.
 */
#ifndef DS_NGRAM_H
#define DS_NGRAM_H

#include <stdint.h>

#include "core/status.h"

#define DS_NGRAM_MAX_WHITELIST 16

typedef struct ds_ngram ds_ngram;

/* n >= 1: n-gram size; window: 0 = whole sequence, > 0 = only n-grams starting in the
 * last `window` tokens; max_len: most tokens it will be fed (prompt + generated). */
dsocr_status ds_ngram_new(int n, int window, const int32_t *whitelist, int n_whitelist,
                          int max_len, ds_ngram **out, dsocr_error *err);
void ds_ngram_free(ds_ngram *g);
/* Forgets the sequence (keeps n, window, whitelist and memory). */
void ds_ngram_reset(ds_ngram *g);

/* Appends a token. DSOCR_ERR_LIMIT past max_len. */
dsocr_status ds_ngram_push(ds_ngram *g, int32_t token, dsocr_error *err);
int ds_ngram_len(const ds_ngram *g);

/* Tokens banned as the next token of the current sequence, each once, whitelist
 * removed. *out points into the tracker (valid until the next call). Returns count. */
int ds_ngram_banned(ds_ngram *g, const int32_t **out);

#endif
