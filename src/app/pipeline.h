/* The model object behind the public API and the OCR pipeline:
 *   prompt -> preprocessing -> DeepEncoder -> prefill + generation -> text.
 * Tools (parity, bench) call ds_pipeline_run with a trace to see intermediates. */
#ifndef DS_PIPELINE_H
#define DS_PIPELINE_H

#include "dsocr.h"
#include "image/preprocess.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/ops.h"
#include "model/decoder.h"
#include "model/generate.h"
#include "model/quantize.h"
#include "model/trace.h"
#include "model/vision.h"
#include "model/weights.h"
#include "text/tokenizer.h"

struct dsocr_model {
    char dir[4096];           /* the checkpoint folder */
    ds_config cfg;
    ds_checkpoint *ck;        /* memory-mapped shards; weights point into them */
    ds_tokenizer *tok;
    ds_backend *be;
    ds_model_weights w;
    ds_vision *vision;
    ds_decoder *dec;          /* created on first use, re-created when a request needs more context */
    ds_generator *gen;
    int rope_bf16;            /* HF CUDA inv_freq rounding quirk (off: fp32 as the golden reference) */
    ds_decoder_quant quant;   /* load-time quantized decoder weights (w.lm points into it) */
    uint64_t max_memory;      /* memory guard limit (dsocr_load_params.max_memory) */
    uint64_t weight_bytes;    /* checkpoint bytes, mapped */
};

/* Extra knobs the tools use; zeroed = normal behaviour. */
typedef struct ds_pipeline_opts {
    const ds_trace *trace;    /* intermediates: input_ids, images_seq_mask, images_spatial_crop,
                                 vision tensors, prefill tensors, gen_* per step */
    ds_gen_token_fn on_gen;   /* sees every generated token with its logits (bench, parity) */
    void *on_gen_user;
    const int32_t *forced;    /* bench: force these tokens instead of sampling (n_forced) */
    int n_forced;
} ds_pipeline_opts;

dsocr_status ds_pipeline_run(dsocr_model *m, const dsocr_image *img, const dsocr_params *p,
                             dsocr_token_callback on_token, void *user, const ds_pipeline_opts *opts,
                             dsocr_result *out, dsocr_error *err);

/* Milliseconds since an arbitrary start (monotonic). */
double ds_now_ms(void);

#endif
