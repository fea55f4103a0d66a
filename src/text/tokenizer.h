/* Byte-level BPE tokenizer read from a Hugging Face tokenizer.json, reproducing
 * HF `tokenizers` exactly: encode(text, add_special_tokens=False) and
 * decode(ids, skip_special_tokens).
 *
 *   ds_tokenizer *tok; dsocr_error err;
 *   ds_tokenizer_load("path/to/DeepSeek-OCR", &tok, &err);
 *   ds_ids ids = {0};
 *   ds_tokenizer_encode(tok, "Free OCR.", 9, &ids, &err);   // appends to ids
 *   char *text; ds_tokenizer_decode(tok, ids.data, ids.n, 0, &text, NULL, &err);
 *   free(text); ds_ids_free(&ids); ds_tokenizer_free(tok);
 *
 * Supported: model BPE (vocab, merges as "a b" or ["a","b"], optional unk,
 * ignore_merges), no normalizer (null or an empty Sequence), pre-tokenizer Split
 * (Regex or String pattern, any behaviour, invert) / ByteLevel / Sequence of them,
 * decoder ByteLevel, added tokens with their flags. Anything else is rejected
 * with DSOCR_ERR_UNSUPPORTED and a message naming the component.
 *
 * Thread safety: encode uses a per-tokenizer piece cache and regex scratch, so
 * one tokenizer must not encode on two threads at once; decode and the lookups
 * are read-only. There is no global state.
 */
#ifndef DS_TEXT_TOKENIZER_H
#define DS_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "dsocr.h"

typedef struct ds_tokenizer ds_tokenizer;

/* A growable id array; zero-initialise, then ds_ids_free(). */
typedef struct ds_ids {
    int32_t *data;
    size_t n, cap;
} ds_ids;

dsocr_status ds_ids_push(ds_ids *ids, int32_t id, dsocr_error *err);
void ds_ids_free(ds_ids *ids);

/* path: a model directory (reads tokenizer.json and, if present,
 * tokenizer_config.json) or the path of a tokenizer.json file (reads the
 * tokenizer_config.json beside it if present). */
dsocr_status ds_tokenizer_load(const char *path, ds_tokenizer **out, dsocr_error *err);

/* From memory (fuzzing, embedded models). config may be NULL. name is used in
 * error messages. The buffers need not be NUL-terminated and are not kept. */
dsocr_status ds_tokenizer_load_memory(const char *json, size_t json_len,
                                      const char *config, size_t config_len,
                                      const char *name, ds_tokenizer **out, dsocr_error *err);
void ds_tokenizer_free(ds_tokenizer *tok);

/* encode(text, add_special_tokens=False): appends ids. text must be valid
 * UTF-8 (DSOCR_ERR_INVALID_ARG naming the byte offset otherwise). */
dsocr_status ds_tokenizer_encode(ds_tokenizer *tok, const char *text, size_t len,
                                 ds_ids *ids, dsocr_error *err);

/* decode(ids, skip_special_tokens): a malloc'd NUL-terminated UTF-8 string
 * (invalid byte sequences become U+FFFD as in Rust's from_utf8_lossy). Ids
 * without a token (e.g. rows of a padded LM head) decode to nothing.
 * out_len may be NULL. */
dsocr_status ds_tokenizer_decode(const ds_tokenizer *tok, const int32_t *ids, size_t n,
                                 int skip_special, char **out, size_t *out_len, dsocr_error *err);

/* Lookups. token_to_id: added tokens first, then the BPE vocabulary; -1 when
 * absent. id_to_token: the stored token string (byte-level alphabet for BPE
 * tokens, verbatim for added ones) or NULL. */
int32_t ds_tokenizer_token_to_id(const ds_tokenizer *tok, const char *token, size_t len);
const char *ds_tokenizer_id_to_token(const ds_tokenizer *tok, int32_t id, size_t *len);
int32_t ds_tokenizer_vocab_size(const ds_tokenizer *tok);   /* largest id + 1 */
int ds_tokenizer_is_special(const ds_tokenizer *tok, int32_t id);

/* From tokenizer_config.json (bos_token, eos_token, pad_token, add_bos_token,
 * add_eos_token); -1 / 0 when not given. */
int32_t ds_tokenizer_bos_id(const ds_tokenizer *tok);
int32_t ds_tokenizer_eos_id(const ds_tokenizer *tok);
int32_t ds_tokenizer_pad_id(const ds_tokenizer *tok);
int ds_tokenizer_add_bos(const ds_tokenizer *tok);

/* ---- streaming decode for generation ---------------------------------------
 * Push ids one at a time; each push returns the text completed by that id:
 * always whole UTF-8 characters (possibly ""), never a broken sequence. After
 * the last id, flush() returns what is left (U+FFFD for an unfinished
 * sequence). The concatenation of all pushes and the flush equals
 * ds_tokenizer_decode of the same ids. The returned pointer is valid until the
 * next call on the stream. */
typedef struct ds_token_stream ds_token_stream;

dsocr_status ds_token_stream_new(const ds_tokenizer *tok, int skip_special,
                                 ds_token_stream **out, dsocr_error *err);
dsocr_status ds_token_stream_push(ds_token_stream *s, int32_t id, const char **text,
                                  size_t *len, dsocr_error *err);
dsocr_status ds_token_stream_flush(ds_token_stream *s, const char **text, size_t *len,
                                   dsocr_error *err);
void ds_token_stream_free(ds_token_stream *s);

#endif
