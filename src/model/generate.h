/* Token generation over the decoder (spec 10): prefill, then one decoder step per
 * token, with the no-repeat n-gram ban applied to the logits and a sampler picking
 * the token. Greedy by default (ties go to the lowest id, as torch.argmax);
 * temperature / top-k / top-p sampling with a seeded PRNG as an option.
 *
 *   ds_generator *g;   ds_generator_new(dec, &g, &err);       once per model
 *   ds_gen_params p = ds_gen_default_params();               HF infer() defaults
 *   ds_gen_result r;   ds_generate(g, &prompt, &p, on_token, user, &r, &err);
 *   ... r.ids[0 .. r.n_ids) ... r.finish ...
 */
#ifndef DS_GENERATE_H
#define DS_GENERATE_H

#include <stdint.h>

#include "core/status.h"
#include "model/decoder.h"
#include "model/ngram.h"
#include "model/trace.h"

/* ---- sampler ------------------------------------------------------------ */

typedef struct ds_sampler_params {
    float temperature;   /* <= 0: greedy (the other fields are ignored) */
    int top_k;           /* 0 = off; ties with the k-th value are kept (HF TopKLogitsWarper) */
    float top_p;         /* >= 1 = off (HF TopPLogitsWarper, at least one token kept) */
    uint64_t seed;
} ds_sampler_params;

typedef struct ds_sampler ds_sampler;

dsocr_status ds_sampler_new(int vocab, const ds_sampler_params *p, ds_sampler **out, dsocr_error *err);
void ds_sampler_free(ds_sampler *s);
/* New parameters and a re-seeded PRNG. */
void ds_sampler_set(ds_sampler *s, const ds_sampler_params *p);

/* Arg-max over logits[V]; lowest id among equal maxima; -inf entries lose to any
 * finite value (all -inf: 0). */
int32_t ds_sample_greedy(const float *logits, int V);

/* The tokens sampling may pick and their probabilities: softmax(logits / T) with
 * top-k then top-p applied in HF's order, renormalised. Sorted by probability
 * (descending, ties by id). *ids / *probs point into the sampler. Returns the count. */
int ds_sampler_candidates(ds_sampler *s, const float *logits, const int32_t **ids, const float **probs);

/* Picks the next token from logits[V] (greedy or sampled as the params say). */
int32_t ds_sampler_pick(ds_sampler *s, const float *logits);

/* ---- generation loop ---------------------------------------------------- */

typedef struct ds_gen_params {
    int max_new_tokens;        /* 8192 (HF); generation also ends when the KV cache is full */
    int eos_id;                /* 1 */
    ds_sampler_params sampler; /* greedy by default */
    int ngram_size;            /* no-repeat n-gram size: 20 (HF infer); 0 = off */
    int ngram_window;          /* 0 = HF ban over the whole sequence, prompt included;
                                  > 0 = vLLM windowed ban over generated tokens only */
    int32_t ngram_whitelist[DS_NGRAM_MAX_WHITELIST];   /* never banned (vLLM: 128821 <td>, 128822 </td>) */
    int n_ngram_whitelist;
} ds_gen_params;

/* HF infer(): greedy, max_new_tokens 8192, eos 1, no_repeat_ngram_size 20 over the
 * whole sequence, no whitelist. */
ds_gen_params ds_gen_default_params(void);
/* The official vLLM scripts' ban: ngram_size, window_size, whitelist {<td>, </td>}. */
void ds_gen_params_set_vllm_ngram(ds_gen_params *p, int ngram_size, int window);

/* What the per-token callback asks for. */
typedef enum ds_gen_action {
    DS_GEN_CONTINUE = 0,
    DS_GEN_STOP_LOOP,     /* a loop detector cut the output: finish = DSOCR_FINISH_LOOP */
    DS_GEN_CANCEL         /* the caller gives up: ds_generate returns DSOCR_ERR_CANCELLED */
} ds_gen_action;

typedef struct ds_gen_token {
    int32_t id;              /* the token just chosen (EOS included) */
    int step;                /* 0 for the first generated token */
    const float *logits;     /* [V] logits it was chosen from, banned entries -inf */
    const int32_t *banned;   /* the ids the n-gram ban removed at this step */
    int n_banned;
    const float *banned_logits; /* [n_banned] their logits before the ban (raw logits = logits
                                   with these restored) */
    int vocab;               /* V, the length of logits */
} ds_gen_token;

typedef ds_gen_action (*ds_gen_token_fn)(void *user, const ds_gen_token *tok);

typedef struct ds_gen_prompt {
    const int32_t *ids;           /* [n_ids] */
    int n_ids;
    const float *image_embeds;    /* [n_image, D] host memory, NULL if none */
    int n_image;
    const uint8_t *image_mask;    /* [n_ids], 1 at image placeholder positions; NULL if none */
} ds_gen_prompt;

typedef struct ds_gen_result {
    const int32_t *ids;     /* generated ids, EOS last when finish == STOP; owned by the generator */
    int n_ids;
    dsocr_finish finish;    /* STOP (EOS), LENGTH (max_new_tokens or context full), LOOP */
} ds_gen_result;

typedef struct ds_generator ds_generator;

/* Buffers for the decoder's vocabulary and context, allocated once. dec must outlive it. */
dsocr_status ds_generator_new(ds_decoder *dec, ds_generator **out, dsocr_error *err);
void ds_generator_free(ds_generator *g);

/* Prefill + decode loop. on_token (may be NULL) sees every generated token, EOS
 * included. trace (may be NULL) gets the decoder's prefill intermediates. On
 * DSOCR_ERR_CANCELLED, out still holds the tokens generated so far. */
dsocr_status ds_generate(ds_generator *g, const ds_gen_prompt *prompt, const ds_gen_params *p,
                         ds_gen_token_fn on_token, void *user, ds_gen_result *out,
                         const ds_trace *trace, dsocr_error *err);

#endif
