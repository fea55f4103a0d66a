/* The memory guard: what a model and one request will need, checked against the
 * memory the machine has (MemAvailable) or a caller's limit, so a request that
 * cannot fit is refused with a message instead of the process being killed.
 *
 * The estimate follows the real allocations (one source of formulas, kept next to
 * them in spirit): mapped weights (the whole checkpoint: every tensor is touched),
 * the vision activation buffers (grow-only, sized for the largest view and tile
 * batch seen, see model/vision.c reserve()), the decoder run state (KV cache
 * [L][ctx][kv_dim] fp32 for K and V, one prefill chunk of activations, logits),
 * the sampler and generator (a few vocab-sized arrays), the views' pixels and the
 * image embeddings, plus a fixed allowance for the tokenizer and the libraries. */
#ifndef DS_APP_MEMORY_H
#define DS_APP_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "dsocr.h"
#include "io/config.h"

typedef struct ds_mem_estimate {
    uint64_t weights;    /* checkpoint bytes, memory-mapped */
    uint64_t vision;     /* SAM / CLIP / projector buffers and position tables */
    uint64_t kv_cache;   /* K and V caches for ctx positions */
    uint64_t decoder;    /* decoder activations, logits, sampler, generator */
    uint64_t inputs;     /* normalised views and image embeddings */
    uint64_t overhead;   /* tokenizer, thread pool, libraries */
    uint64_t total;
} ds_mem_estimate;

/* The views a mode produces at most: global side, tile side and tile count
 * (gundam: up to max_crops tiles of 640; others: no tiles). */
void ds_mem_mode_views(dsocr_mode mode, int max_crops, int *global_side, int *tile_side, int *max_tiles);

/* Bytes of the vision buffers once they have held every (side, batch) view in the
 * list: each buffer grows to the largest need, position tables are per side. */
typedef struct ds_mem_view {
    int side, batch;
} ds_mem_view;
uint64_t ds_mem_vision_bytes(const ds_config *cfg, const ds_mem_view *views, int n_views);

/* Decoder run state for ctx positions; *kv_bytes (may be NULL) gets the KV cache part. */
uint64_t ds_mem_decoder_bytes(const ds_lm_config *lm, int ctx, uint64_t *kv_bytes);

/* A whole request: weights + vision for the request's views and what the model
 * reserved at load (global_side 1024, 9 tiles of 640) + decoder for ctx positions
 * + inputs + overhead. n_tiles 0: no tiles. ctx 0: no decoder yet (model load). */
void ds_mem_estimate_request(const ds_config *cfg, uint64_t weight_bytes, int global_side, int tile_side,
                             int n_tiles, int ctx, ds_mem_estimate *out);

/* MemAvailable of /proc/meminfo in bytes; 0 when unknown. */
uint64_t ds_mem_available(void);

/* "12G", "800M", "1.5g", "64k", "123456" (bytes), binary units (K = 1024).
 * Returns 0 on success, -1 for anything else (also 0 and overflow). */
int ds_mem_parse_size(const char *text, uint64_t *out);

/* "6.21 GiB", "812 MiB", "4.0 KiB", "17 bytes". */
void ds_mem_format(uint64_t bytes, char *buf, size_t size);

/* Compares e->total with the limit: max_memory when non-zero (UINT64_MAX: no
 * check), else MemAvailable + held (held: bytes this model already holds in buffers
 * the request will reuse). Over it: DSOCR_ERR_LIMIT naming the estimate, its
 * biggest parts, the limit and `advice` (what to change). */
dsocr_status ds_mem_check(const ds_mem_estimate *e, uint64_t max_memory, uint64_t held, const char *what,
                          const char *advice, dsocr_error *err);

#endif
