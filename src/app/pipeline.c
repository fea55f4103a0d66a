/* The OCR pipeline for one image (spec sections 5, 6, 7, 8, 10):
 *   1. prompt text (task or raw) -> ids with the image placeholder run
 *   2. preprocessing -> global view (+ tiles) as normalised pixels
 *   3. DeepEncoder -> image embeddings [N, D]
 *   4. prefill + generation, streaming decoded text through the callback
 *   5. the loop detector may cut a runaway page (finish = loop) */
#include "app/pipeline.h"
#include "app/memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ocr/loop.h"
#include "text/prompt.h"

double ds_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The decoder's KV cache is sized for the longest request seen so far. */
static dsocr_status ensure_decoder(dsocr_model *m, int ctx, dsocr_error *err) {
    if (m->dec && ds_decoder_max_ctx(m->dec) >= ctx) return DSOCR_OK;
    ds_generator_free(m->gen);
    ds_decoder_free(m->dec);
    m->gen = NULL;
    m->dec = NULL;
    ds_decoder_params dp = {.max_ctx = ctx, .rope_bf16_inv_freq = m->rope_bf16, .kv_bf16 = m->quant.arena != NULL};
    DS_TRY(ds_decoder_new(m->be, &m->cfg.lm, &m->w.lm, &dp, &m->dec, err));
    return ds_generator_new(m->dec, &m->gen, err);
}

/* Memory guard for one request (app/memory.h): refused before any compute when the
 * weights, the vision buffers for these views, the KV cache for ctx positions and the
 * activations do not fit. The buffers the model holds now are reused, so they count
 * as available. */
static dsocr_status check_memory(const dsocr_model *m, const ds_views *v, const dsocr_params *p, int ctx,
                                 dsocr_error *err) {
    int cur = m->dec ? ds_decoder_max_ctx(m->dec) : 0;
    ds_mem_estimate est;
    ds_mem_estimate_request(&m->cfg, m->weight_bytes, v->global_size, v->tile_size, v->n_tiles,
                            ctx > cur ? ctx : cur, &est);
    ds_mem_estimate held;
    ds_mem_estimate_request(&m->cfg, 0, 0, 0, 0, cur, &held);
    char what[96], advice[256];
    snprintf(what, sizeof what, "this page (%d tokens of context: prompt + max_new_tokens)", ctx);
    snprintf(advice, sizeof advice, "use a smaller --max-tokens (now %d), a smaller --mode%s, or raise --max-memory",
             p->max_new_tokens, v->n_tiles > 0 ? " or fewer --max-crops" : "");
    return ds_mem_check(&est, m->max_memory, held.vision + held.kv_cache + held.decoder, what, advice, err);
}

typedef struct run_ctx {
    dsocr_model *m;
    ds_token_stream *stream;
    ds_loop_detector *loop;
    dsocr_token_callback on_token;
    void *user;
    const ds_pipeline_opts *opts;
    int eos_id;
    char *piece;          /* NUL-terminated copy of the newest text piece */
    size_t piece_cap;
    dsocr_status failure; /* an error inside the callback (out of memory) */
    dsocr_error *err;
    int cancelled;
    double t_first;       /* when the first token arrived (end of prefill) */
} run_ctx;

static ds_gen_action on_gen_token(void *user, const ds_gen_token *tok) {
    run_ctx *r = user;
    if (tok->step == 0) r->t_first = ds_now_ms();
    if (r->opts && r->opts->on_gen) {
        ds_gen_action a = r->opts->on_gen(r->opts->on_gen_user, tok);
        if (a != DS_GEN_CONTINUE) return a;
    }
    if (tok->id == r->eos_id) return DS_GEN_CONTINUE;  /* EOS text is not output */
    const char *text = "";
    size_t len = 0;
    if ((r->failure = ds_token_stream_push(r->stream, tok->id, &text, &len, r->err))) return DS_GEN_CANCEL;
    if (len + 1 > r->piece_cap) {
        size_t cap = (len + 1) * 2;
        char *p = realloc(r->piece, cap);
        if (!p) { r->failure = ds_fail(r->err, DSOCR_ERR_NOMEM, "out of memory streaming text"); return DS_GEN_CANCEL; }
        r->piece = p;
        r->piece_cap = cap;
    }
    memcpy(r->piece, text, len);
    r->piece[len] = 0;
    if (r->on_token && r->on_token(r->user, tok->id, r->piece)) { r->cancelled = 1; return DS_GEN_CANCEL; }
    if (r->loop) {
        if ((r->failure = ds_loop_push(r->loop, tok->id, r->piece, r->err))) return DS_GEN_CANCEL;
        if (r->loop->fired != DS_LOOP_NONE) return DS_GEN_STOP_LOOP;
    }
    return DS_GEN_CONTINUE;
}

static void trace_prompt(const ds_trace *tr, const ds_prompt *pr, const ds_views *v) {
    if (!tr || !tr->on_ints) return;
    int64_t n = (int64_t)pr->ids.n;
    int64_t *buf = malloc((size_t)(n > 2 ? n : 2) * sizeof *buf);
    if (!buf) return;
    for (int64_t i = 0; i < n; i++) buf[i] = pr->ids.data[i];
    ds_trace_ints(tr, "input_ids", buf, 1, &n);
    for (int64_t i = 0; i < n; i++) buf[i] = pr->image_mask[i];
    ds_trace_ints(tr, "images_seq_mask", buf, 1, &n);
    buf[0] = v->grid_w;
    buf[1] = v->grid_h;
    ds_trace_ints(tr, "images_spatial_crop", buf, 2, (int64_t[]){1, 2});
    free(buf);
}

dsocr_status ds_pipeline_run(dsocr_model *m, const dsocr_image *img, const dsocr_params *p,
                             dsocr_token_callback on_token, void *user, const ds_pipeline_opts *opts,
                             dsocr_result *out, dsocr_error *err) {
    memset(out, 0, sizeof *out);
    const ds_trace *trace = opts ? opts->trace : NULL;
    if (p->max_new_tokens <= 0)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "max_new_tokens must be positive (got %d)", p->max_new_tokens);
    if (p->ngram_size < 0 || p->ngram_window < 0)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "ngram size and window must be >= 0");

    /* 1. prompt text */
    char *task_prompt = NULL;
    const char *prompt = p->prompt;
    if (!prompt) {
        if (p->task == DSOCR_TASK_LOCATE && (!p->ref || !*p->ref))
            return ds_fail(err, DSOCR_ERR_INVALID_ARG, "the locate task needs a ref (what to find)");
        DS_TRY(ds_task_prompt(p->task, p->ref, &task_prompt, err));
        prompt = task_prompt;
    }

    double t0 = ds_now_ms();
    ds_views views = {0};
    ds_prompt pr = {0};
    float *embeds = NULL;
    ds_token_stream *stream = NULL;
    ds_loop_detector loop;
    int loop_on = 0;   /* set once loop is initialised: early failures must not free it */
    run_ctx rc = {0};
    dsocr_status s;

    /* 2. preprocessing and the prompt ids */
    if ((s = ds_preprocess(img, p->mode, p->max_crops, &views, err))) goto done;
    if ((s = ds_prompt_build(m->tok, prompt, &views.n_image_tokens, 1, &pr, err))) goto done;
    trace_prompt(trace, &pr, &views);
    ds_trace_tensor(trace, "global_pixels_f32", views.global_pixels, 4,
                    (int64_t[]){1, 3, views.global_size, views.global_size});
    int D = m->cfg.lm.hidden_size;
    int n_embeds = ds_vision_n_embeds(&m->cfg, views.global_size, views.n_tiles, views.tile_size,
                                      views.grid_w, views.grid_h);
    if (n_embeds != views.n_image_tokens) {
        s = ds_fail(err, DSOCR_ERR_INTERNAL, "image token count mismatch: preprocessing %d, encoder %d",
                    views.n_image_tokens, n_embeds);
        goto done;
    }
    int n_ids = (int)pr.ids.n;
    if ((int64_t)n_ids + p->max_new_tokens > (1 << 20)) {
        s = ds_fail(err, DSOCR_ERR_LIMIT, "prompt (%d tokens) + max_new_tokens (%d) is over the 1,048,576-token limit",
                    n_ids, p->max_new_tokens);
        goto done;
    }
    /* The prompt alone must fit the positions the model was trained on. Generation may
     * run past max_position_embeddings (HF allows it: RoPE is computed, not looked up,
     * and the default 8192 new tokens after a ~900-token page prompt already does), so
     * only the prompt is held to it; the total is bounded by the memory guard below. */
    if (n_ids > m->cfg.lm.max_position_embeddings) {
        s = ds_fail(err, DSOCR_ERR_LIMIT,
                    "prompt is %d tokens (%d image, %d text), over the model's context of %d positions "
                    "(max_position_embeddings in config.json); use a shorter prompt or a smaller mode",
                    n_ids, n_embeds, n_ids - n_embeds, m->cfg.lm.max_position_embeddings);
        goto done;
    }
    if ((s = check_memory(m, &views, p, n_ids + p->max_new_tokens, err))) goto done;

    /* 3. DeepEncoder */
    embeds = malloc((size_t)n_embeds * (size_t)D * sizeof *embeds);
    if (!embeds) { s = ds_fail(err, DSOCR_ERR_NOMEM, "out of memory for %d image embeddings", n_embeds); goto done; }
    if ((s = ds_vision_encode(m->vision, views.global_pixels, views.global_size, views.tiles_pixels,
                              views.n_tiles, views.tile_size, views.grid_w, views.grid_h, embeds, trace, err)))
        goto done;
    double t1 = ds_now_ms();

    /* 4. generation */
    if ((s = ensure_decoder(m, n_ids + p->max_new_tokens, err))) goto done;
    if ((s = ds_token_stream_new(m->tok, 0, &stream, err))) goto done;
    if (p->loop_detect) {
        if ((s = ds_loop_init(&loop, NULL, err))) goto done;
        loop_on = 1;
    }
    ds_gen_params gp = ds_gen_default_params();
    gp.max_new_tokens = p->max_new_tokens;
    gp.eos_id = m->cfg.lm.eos_token_id;
    gp.sampler.temperature = p->temperature;
    gp.sampler.top_k = p->top_k;
    gp.sampler.top_p = p->top_p;
    gp.sampler.seed = p->seed;
    gp.ngram_size = p->ngram_size;
    if (p->ngram_window > 0) ds_gen_params_set_vllm_ngram(&gp, p->ngram_size, p->ngram_window);
    rc = (run_ctx){.m = m, .stream = stream, .loop = loop_on ? &loop : NULL, .on_token = on_token,
                   .user = user, .opts = opts, .eos_id = gp.eos_id, .err = err};
    ds_gen_prompt gpr = {.ids = pr.ids.data, .n_ids = n_ids, .image_embeds = embeds, .n_image = n_embeds,
                         .image_mask = pr.image_mask};
    ds_gen_result gr;
    double t2 = ds_now_ms();
    s = ds_generate(m->gen, &gpr, &gp, on_gen_token, &rc, &gr, trace, err);
    if (rc.failure) s = rc.failure;
    else if (s == DSOCR_ERR_CANCELLED && rc.cancelled)
        s = ds_fail(err, DSOCR_ERR_CANCELLED, "stopped by the token callback after %d tokens", gr.n_ids);
    if (s) goto done;
    /* the stream holds back an incomplete UTF-8 tail; the full decode shows it as U+FFFD */
    const char *tail = "";
    size_t tail_len = 0;
    if ((s = ds_token_stream_flush(stream, &tail, &tail_len, err))) goto done;
    if (tail_len > 0 && on_token) {
        char *t = malloc(tail_len + 1);
        if (!t) { s = ds_fail(err, DSOCR_ERR_NOMEM, "out of memory"); goto done; }
        memcpy(t, tail, tail_len);
        t[tail_len] = 0;
        on_token(user, -1, t);
        free(t);
    }
    double t3 = ds_now_ms();

    /* 5. the result: text without EOS, special tokens kept */
    int n_text = gr.n_ids;
    if (n_text > 0 && gr.ids[n_text - 1] == gp.eos_id) n_text--;
    size_t text_len = 0;
    if ((s = ds_tokenizer_decode(m->tok, gr.ids, (size_t)n_text, 0, &out->text, &text_len, err))) goto done;
    if (gr.finish == DSOCR_FINISH_LOOP && loop_on) {
        /* keep the text up to the end of the repetition's first copy */
        if (loop.keep_bytes < text_len) out->text[loop.keep_bytes] = 0;
        snprintf(out->finish_detail, sizeof out->finish_detail, "%s", loop.reason);
    }
    out->token_ids = malloc((size_t)(gr.n_ids > 0 ? gr.n_ids : 1) * sizeof *out->token_ids);
    if (!out->token_ids) { s = ds_fail(err, DSOCR_ERR_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < gr.n_ids; i++) out->token_ids[i] = gr.ids[i];
    out->n_tokens = gr.n_ids;
    out->n_prompt_tokens = n_ids;
    out->n_image_tokens = n_embeds;
    out->grid_w = views.grid_w;
    out->grid_h = views.grid_h;
    out->finish = gr.finish;
    out->ms_vision = t1 - t0;
    if (rc.t_first == 0) rc.t_first = t3;
    out->ms_prefill = rc.t_first - t2;  /* prefill ends when the first token is chosen */
    out->ms_decode = t3 - rc.t_first;

done:
    if (s) dsocr_result_free(out);
    free(rc.piece);
    if (loop_on) ds_loop_free(&loop);
    ds_token_stream_free(stream);
    free(embeds);
    ds_prompt_free(&pr);
    ds_views_free(&views);
    free(task_prompt);
    return s;
}
