/* Load-time quantization of the decoder (docs/QUANTIZATION.md): every Linear weight of
 * the language model (attention q/k/v/o, the dense MLP, shared and routed experts,
 * lm_head) is converted once to a block-quantized dtype in one owned buffer, and the
 * ds_decoder_weights views are pointed at it; the decoder then runs unchanged (the
 * weights are just ds_tensors of another dtype). embed_tokens (row lookups), the MoE
 * router and the norms stay at checkpoint precision.
 *
 *   ds_decoder_quant q;  ds_decoder_quantize(&w, &plan, n_threads, &q, &err);
 *   ... run the decoder on w ...;  ds_decoder_quant_free(&q)  (after the decoder) */
#ifndef DS_MODEL_QUANTIZE_H
#define DS_MODEL_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"
#include "model/decoder.h"

typedef struct ds_quant_plan {
    ds_dtype linear;        /* a quantized dtype (Q8_0, Q4_0 or an x4 layout): every decoder Linear but lm_head */
    ds_dtype lm_head;       /* a quantized dtype, or the checkpoint dtype to keep it */
    int release_source;     /* 1: the source views are a read-only file mapping; drop
                               their pages (madvise DONTNEED) once quantized */
} ds_quant_plan;

typedef struct ds_decoder_quant {
    void *arena;            /* every quantized tensor, one allocation */
    size_t bytes;           /* arena size */
    int64_t n_tensors, n_params;
    size_t source_bytes;    /* bytes of the weights it replaced */
    double ms;              /* wall time of the conversion */
} ds_decoder_quant;

/* The plan behind DSOCR_QUANT_Q8 / Q4: every Linear in that format. */
ds_quant_plan ds_quant_plan_for(ds_dtype t, int release_source);

/* Quantizes the weights named above in place of their views in w (the views into the
 * checkpoint are replaced; the checkpoint must stay open until then). n_threads <= 0:
 * one per physical core. On failure w is unchanged. */
dsocr_status ds_decoder_quantize(ds_decoder_weights *w, const ds_quant_plan *plan, int n_threads,
                                 ds_decoder_quant *out, dsocr_error *err);
void ds_decoder_quant_free(ds_decoder_quant *q);

#endif
