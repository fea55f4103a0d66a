/* The language model: DeepSeek-MoE decoder (spec section 8), Llama-style MHA with
 * rotate-half RoPE, layer 0 a dense SwiGLU MLP, the other layers MoE (softmax router,
 * greedy top-k, shared experts), final RMSNorm and lm_head. fp32 activations, weights
 * used in place from the checkpoint.
 *
 *   ds_decoder_weights w;  ds_decoder_bind(binder, cfg, &w);   ... ds_binder_finish()
 *   ds_decoder *dec;       ds_decoder_new(be, &cfg->lm, &w, &params, &dec, &err);
 *   ds_decoder_prefill(dec, ids, T, image_embeds, n_image, image_mask, logits, trace, &err);
 *   ds_decoder_step(dec, next_id, logits, &err);   ... once per generated token
 *
 * The run state (activations and KV cache) is allocated once, for params.max_ctx
 * positions, and reused by every request: a prefill starts a new sequence. */
#ifndef DS_DECODER_H
#define DS_DECODER_H

#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/ops.h"
#include "model/trace.h"

/* One routed (or the shared) SwiGLU expert: down(silu(gate(x)) * up(x)). */
typedef struct ds_mlp_weights {
    ds_tensor gate;   /* [I, D] */
    ds_tensor up;     /* [I, D] */
    ds_tensor down;   /* [D, I] */
} ds_mlp_weights;

typedef struct ds_decoder_layer_weights {
    ds_tensor input_norm;     /* [D] input_layernorm */
    ds_tensor post_norm;      /* [D] post_attention_layernorm */
    ds_tensor wq;             /* [H*hd, D] */
    ds_tensor wk;             /* [KV*hd, D] */
    ds_tensor wv;             /* [KV*hd, D] */
    ds_tensor wo;             /* [D, H*hd] */
    int is_moe;               /* set by ds_decoder_bind from the config */
    ds_mlp_weights mlp;       /* dense layer: I = intermediate_size */
    ds_tensor router;         /* MoE layer: [E, D] mlp.gate */
    ds_mlp_weights *experts;  /* MoE layer: [E] of I = moe_intermediate_size */
    ds_mlp_weights shared;    /* MoE layer, n_shared > 0: I = moe_intermediate_size * n_shared */
} ds_decoder_layer_weights;

typedef struct ds_decoder_weights {
    ds_tensor embed_tokens;            /* [V, D] */
    ds_decoder_layer_weights *layers;  /* [n_layers] */
    int n_layers;
    int n_experts;                     /* experts per MoE layer */
    ds_tensor norm;                    /* [D] final norm */
    ds_tensor lm_head;                 /* [V, D] (not tied) */
    int out_of_memory;                 /* the bind could not allocate its tables */
} ds_decoder_weights;

/* Binds every LM tensor (real checkpoint names, spec 3.1) with the shape the config
 * implies. Allocates w->layers and the expert tables: free with
 * ds_decoder_weights_free. An allocation failure sets w->out_of_memory (and
 * ds_decoder_new reports it). */
void ds_decoder_bind(ds_binder *b, const ds_config *cfg, ds_decoder_weights *w);
void ds_decoder_weights_free(ds_decoder_weights *w);

typedef struct ds_decoder_params {
    int max_ctx;             /* KV cache positions: longest prompt + max_new_tokens */
    int max_batch;           /* rows per prefill chunk; 0 = min(max_ctx, 1024) */
    int rope_bf16_inv_freq;  /* 1 = round inv_freq to bf16 (HF CUDA path quirk, spec 9.2) */
    int kv_bf16;             /* 1 = keep K and V in bf16 where the backend reads them so
                                (ds_backend_kv_bf16): half the cache bytes a decode step
                                reads. For the quantized decoders: their logits differ from
                                bf16's far more than this moves them; the bf16 decoder keeps
                                f32, as the golden reference. */
} ds_decoder_params;

typedef struct ds_decoder ds_decoder;

/* Checks the config against what this decoder supports and allocates the run state.
 * be and w must outlive the decoder. */
dsocr_status ds_decoder_new(ds_backend *be, const ds_lm_config *cfg, const ds_decoder_weights *w,
                            const ds_decoder_params *params, ds_decoder **out, dsocr_error *err);
void ds_decoder_free(ds_decoder *dec);

int ds_decoder_max_ctx(const ds_decoder *dec);
/* Positions held in the KV cache (prompt + tokens stepped so far). */
int ds_decoder_n_past(const ds_decoder *dec);
int ds_decoder_vocab(const ds_decoder *dec);

/* Starts a new sequence: runs the whole prompt ids[T] and fills the KV cache.
 * image_embeds [n_image, D] (host memory) replace, in order, the embeddings of the
 * rows where image_mask[t] != 0 (image_mask NULL: no image rows, n_image must be 0).
 * logits_last [V] (host) receives the logits of the last prompt position.
 * trace (may be NULL) receives the golden intermediates of the last position:
 * prefill_last_layer_hidden [L, D], prefill_last_final_norm [D],
 * prefill_moe_topk_idx_last / _weight_last [n_moe_layers, k] (sorted by expert id),
 * prefill_logits_last [V]. */
dsocr_status ds_decoder_prefill(ds_decoder *dec, const int32_t *ids, int T,
                                const float *image_embeds, int n_image, const uint8_t *image_mask,
                                float *logits_last, const ds_trace *trace, dsocr_error *err);

/* Appends one token at position n_past; logits [V] (host) gets the next distribution. */
dsocr_status ds_decoder_step(ds_decoder *dec, int32_t id, float *logits, dsocr_error *err);

#endif
