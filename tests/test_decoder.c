/* Decoder + generation against the golden fixtures (golden README sections 5, 8):
 * for all 25 cases, feed the fixture's input_ids + image_embeds, compare the prefill
 * trace (per-layer hidden, final norm, MoE routing, logits) and the 24 greedy steps
 * with no_repeat_ngram_size 20 (ids, banned counts, raw top-8 logits). Then: chunked
 * prefill == one pass, prefill + step == longer prefill, bf16 inv_freq option, errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "kernels/ops.h"
#include "model/decoder.h"
#include "model/generate.h"
#include "test_util.h"

static const char *CASES[] = {
    "small_text_300x200", "portrait_page_850x1100", "wide_banner_1600x500",
    "square_pattern_1300x1250", "rgba_pattern_640x640"};
static const char *MODES[] = {"tiny", "small", "base", "large", "gundam"};
#define STEPS 24
#define TOPK 8

/* ---- fixture reading ---------------------------------------------------- */

static const ds_tensor *need(const ds_st_file *f, const char *name, ds_dtype dt) {
    const ds_tensor *t = ds_st_find(f, name);
    CHECK_MSG(t && t->dtype == dt, "%s: tensor %s missing or not %s", ds_st_path(f), name, ds_dtype_name(dt));
    return t && t->dtype == dt ? t : NULL;
}

static int64_t get_i64(const ds_tensor *t, int64_t i) {
    int64_t v;
    memcpy(&v, (const char *)t->data + i * 8, 8);
    return v;
}

/* f32 copy (the mapping may be unaligned for floats). */
static float *get_f32(const ds_tensor *t) {
    int64_t n = ds_tensor_numel(t);
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    memcpy(p, t->data, (size_t)n * sizeof *p);
    return p;
}

/* ---- trace capture ------------------------------------------------------ */

typedef struct capture {
    float *hidden, *final_norm, *moe_w, *logits;
    int64_t *moe_idx;
    int64_t hidden_n, final_n, moe_n, logits_n;
} capture;

static void keep_f(float **dst, int64_t *n, const float *src, int ndim, const int64_t *shape) {
    int64_t c = 1;
    for (int i = 0; i < ndim; i++) c *= shape[i];
    free(*dst);
    *dst = malloc((size_t)c * sizeof **dst);
    memcpy(*dst, src, (size_t)c * sizeof **dst);
    *n = c;
}

static void on_tensor(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    capture *c = user;
    if (!strcmp(name, "prefill_last_layer_hidden")) keep_f(&c->hidden, &c->hidden_n, data, ndim, shape);
    else if (!strcmp(name, "prefill_last_final_norm")) keep_f(&c->final_norm, &c->final_n, data, ndim, shape);
    else if (!strcmp(name, "prefill_moe_topk_weight_last")) keep_f(&c->moe_w, &c->moe_n, data, ndim, shape);
    else if (!strcmp(name, "prefill_logits_last")) keep_f(&c->logits, &c->logits_n, data, ndim, shape);
    else CHECK_MSG(0, "unexpected trace tensor %s", name);
}

static void on_ints(void *user, const char *name, const int64_t *data, int ndim, const int64_t *shape) {
    capture *c = user;
    CHECK_STR(name, "prefill_moe_topk_idx_last");
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    free(c->moe_idx);
    c->moe_idx = malloc((size_t)n * sizeof *c->moe_idx);
    memcpy(c->moe_idx, data, (size_t)n * sizeof *c->moe_idx);
}

static void capture_free(capture *c) {
    free(c->hidden); free(c->final_norm); free(c->moe_w); free(c->logits); free(c->moe_idx);
    memset(c, 0, sizeof *c);
}

/* ---- per-step record ---------------------------------------------------- */

typedef struct steps {
    int n;
    int32_t ids[STEPS];
    int banned[STEPS];
    int V;
    float *logits;   /* [STEPS, V] logits each token was chosen from */
} steps;

static ds_gen_action on_token(void *user, const ds_gen_token *t) {
    steps *s = user;
    if (s->n < STEPS) {
        s->ids[s->n] = t->id;
        s->banned[s->n] = t->n_banned;
        memcpy(s->logits + (size_t)s->n * s->V, t->logits, (size_t)s->V * sizeof(float));
        s->n++;
    }
    return DS_GEN_CONTINUE;
}

/* ---- the model ---------------------------------------------------------- */

typedef struct model {
    ds_config cfg;
    ds_checkpoint *ck;
    ds_decoder_weights w;
    ds_backend *be;
} model;

static int load_model(model *m) {
    dsocr_error err;
    memset(m, 0, sizeof *m);
    if (ds_config_load(tu_golden("tiny-model/config.json"), &m->cfg, &err)) { CHECK_MSG(0, "%s", err.message); return 0; }
    if (ds_ckpt_open(tu_golden("tiny-model"), &m->ck, &err)) { CHECK_MSG(0, "%s", err.message); return 0; }
    ds_binder *b = ds_binder_new(m->ck);
    ds_decoder_bind(b, &m->cfg, &m->w);
    if (ds_binder_finish(b, &err)) { CHECK_MSG(0, "bind: %s", err.message); return 0; }
    /* one thread: the tiny model's ops are too small to gain from the pool, and the
     * pool's spinning workers are slow on a loaded 2-core machine */
    if (ds_backend_cpu_new(1, &m->be, &err)) { CHECK_MSG(0, "%s", err.message); return 0; }
    return 1;
}

static void free_model(model *m) {
    ds_decoder_weights_free(&m->w);
    if (m->ck) ds_ckpt_close(m->ck);
    if (m->be) ds_backend_free(m->be);
}

/* ---- one golden case ---------------------------------------------------- */

typedef struct worst {
    double hidden_rel, final_rel, logits_abs, logits_rel, moe_w, topk_abs;
    int cases_ok, ngram_steps;
} worst;

typedef struct fixture {
    ds_st_file *f;
    int T, N, D;
    int32_t *ids;
    uint8_t *mask;
    float *embeds;
} fixture;

static int open_fixture(fixture *fx, const char *name) {
    char rel[256];
    dsocr_error err;
    memset(fx, 0, sizeof *fx);
    snprintf(rel, sizeof rel, "cases/%s.safetensors", name);
    if (ds_st_open(tu_golden(rel), &fx->f, &err)) { CHECK_MSG(0, "%s", err.message); return 0; }
    const ds_tensor *ids = need(fx->f, "input_ids", DS_I64), *mask = need(fx->f, "images_seq_mask", DS_U8),
                    *emb = need(fx->f, "image_embeds", DS_F32);
    if (!ids || !mask || !emb) return 0;
    fx->T = (int)ids->shape[0];
    fx->N = (int)emb->shape[0];
    fx->D = (int)emb->shape[1];
    fx->ids = malloc((size_t)fx->T * sizeof *fx->ids);
    fx->mask = malloc((size_t)fx->T);
    for (int t = 0; t < fx->T; t++) fx->ids[t] = (int32_t)get_i64(ids, t);
    memcpy(fx->mask, mask->data, (size_t)fx->T);
    fx->embeds = get_f32(emb);
    return 1;
}

static void close_fixture(fixture *fx) {
    free(fx->ids); free(fx->mask); free(fx->embeds);
    if (fx->f) ds_st_close(fx->f);
}

static double rel_err(const float *a, const float *ref, size_t n) {
    double m = tu_max_abs(ref, n);
    return tu_max_abs_diff(a, ref, n) / (m > 0 ? m : 1);
}

static void run_case(ds_generator *gen, const char *name, worst *wst, float *step_logits, int V) {
    fixture fx;
    if (!open_fixture(&fx, name)) { close_fixture(&fx); return; }
    int failures0 = tu_failures;
    const ds_st_file *f = fx.f;

    capture cap = {0};
    ds_trace tr = {on_tensor, on_ints, &cap};
    steps st = {.V = V, .logits = step_logits};
    ds_gen_params p = ds_gen_default_params();
    p.max_new_tokens = STEPS;
    ds_gen_prompt pr = {fx.ids, fx.T, fx.embeds, fx.N, fx.mask};
    ds_gen_result res;
    dsocr_error err;
    dsocr_status s = ds_generate(gen, &pr, &p, on_token, &st, &res, &tr, &err);
    CHECK_MSG(s == DSOCR_OK, "%s: %s", name, err.message);
    if (s != DSOCR_OK) { capture_free(&cap); close_fixture(&fx); return; }
    CHECK_EQ_INT(res.n_ids, STEPS);
    CHECK_EQ_INT(res.finish, DSOCR_FINISH_LENGTH);
    CHECK_EQ_INT(st.n, STEPS);

    // prefill trace: per-layer hidden and final norm <= 1e-4 * max|ref|
    const ds_tensor *t;
    if ((t = need(f, "prefill_last_layer_hidden", DS_F32)) && cap.hidden) {
        float *ref = get_f32(t);
        CHECK_EQ_INT(cap.hidden_n, ds_tensor_numel(t));
        double r = rel_err(cap.hidden, ref, (size_t)cap.hidden_n);
        if (r > wst->hidden_rel) wst->hidden_rel = r;
        CHECK_MSG(r <= 1e-4, "%s: layer hidden rel err %g", name, r);
        free(ref);
    } else CHECK_MSG(0, "%s: no prefill_last_layer_hidden", name);
    if ((t = need(f, "prefill_last_final_norm", DS_F32)) && cap.final_norm) {
        float *ref = get_f32(t);
        CHECK_EQ_INT(cap.final_n, ds_tensor_numel(t));
        double r = rel_err(cap.final_norm, ref, (size_t)cap.final_n);
        if (r > wst->final_rel) wst->final_rel = r;
        CHECK_MSG(r <= 1e-4, "%s: final norm rel err %g", name, r);
        free(ref);
    } else CHECK_MSG(0, "%s: no prefill_last_final_norm", name);

    // MoE routing at the last position: idx exact, weights <= 1e-5
    const ds_tensor *ti = need(f, "prefill_moe_topk_idx_last", DS_I64), *tw = need(f, "prefill_moe_topk_weight_last", DS_F32);
    if (ti && tw && cap.moe_idx && cap.moe_w) {
        int64_t n = ds_tensor_numel(ti);
        CHECK_EQ_INT(cap.moe_n, n);
        float *refw = get_f32(tw);
        for (int64_t i = 0; i < n && i < cap.moe_n; i++) {
            CHECK_EQ_INT(cap.moe_idx[i], get_i64(ti, i));
            double d = fabs((double)cap.moe_w[i] - refw[i]);
            if (d > wst->moe_w) wst->moe_w = d;
            CHECK_MSG(d <= 1e-5, "%s: moe weight %d: %g vs %g", name, (int)i, cap.moe_w[i], refw[i]);
        }
        free(refw);
    } else CHECK_MSG(0, "%s: no MoE routing trace", name);

    // logits of the last prompt position: <= 0.05 abs or <= 5e-4 * max|ref|
    if ((t = need(f, "prefill_logits_last", DS_F32)) && cap.logits) {
        float *ref = get_f32(t);
        CHECK_EQ_INT(cap.logits_n, V);
        double a = tu_max_abs_diff(cap.logits, ref, (size_t)V), r = rel_err(cap.logits, ref, (size_t)V);
        if (a > wst->logits_abs) wst->logits_abs = a;
        if (r > wst->logits_rel) wst->logits_rel = r;
        CHECK_MSG(a <= 0.05 || r <= 5e-4, "%s: logits abs err %g, rel %g", name, a, r);
        free(ref);
    } else CHECK_MSG(0, "%s: no prefill_logits_last", name);

    // greedy steps: ids exact, banned counts equal, raw top-8 logits
    const ds_tensor *gi = need(f, "gen_ids", DS_I64), *gb = need(f, "gen_ngram_banned_count", DS_I64),
                    *ki = need(f, "gen_topk_ids", DS_I64), *kl = need(f, "gen_topk_logits", DS_F32);
    if (gi && gb && ki && kl) {
        float *refl = get_f32(kl);
        int first_diff = -1;
        for (int k = 0; k < STEPS && k < st.n; k++) {
            if (st.ids[k] != get_i64(gi, k) && first_diff < 0) first_diff = k;
            CHECK_EQ_INT(st.banned[k], get_i64(gb, k));
            if (st.banned[k]) wst->ngram_steps++;
            for (int j = 0; j < TOPK; j++) {
                int64_t id = get_i64(ki, k * TOPK + j);
                float mine = step_logits[(size_t)k * V + id], want = refl[k * TOPK + j];
                if (isinf(mine) && mine < 0) { CHECK(st.banned[k] > 0); continue; }   /* banned by us */
                double d = fabs((double)mine - want);
                if (d > wst->topk_abs) wst->topk_abs = d;
                CHECK_MSG(d <= 0.05, "%s step %d: logit of %d is %g, want %g", name, k, (int)id, mine, want);
            }
        }
        CHECK_MSG(first_diff < 0, "%s: generated ids differ from step %d", name, first_diff);
        free(refl);
    }
    if (tu_failures == failures0) wst->cases_ok++;
    capture_free(&cap);
    close_fixture(&fx);
}

/* ---- cache and chunking -------------------------------------------------- */

/* Prefill in chunks of 37 rows == one pass; prefill(T-1) + step(last id) == prefill(T). */
static void cache_checks(model *m, int V) {
    fixture fx;
    if (!open_fixture(&fx, "portrait_page_850x1100__base")) { close_fixture(&fx); return; }
    dsocr_error err;
    ds_decoder *one = NULL, *chunked = NULL;
    ds_decoder_params p1 = {.max_ctx = fx.T + 8, .max_batch = 0, .rope_bf16_inv_freq = 0}, p2 = {.max_ctx = fx.T + 8, .max_batch = 37, .rope_bf16_inv_freq = 0};
    CHECK(ds_decoder_new(m->be, &m->cfg.lm, &m->w, &p1, &one, &err) == DSOCR_OK);
    CHECK(ds_decoder_new(m->be, &m->cfg.lm, &m->w, &p2, &chunked, &err) == DSOCR_OK);
    float *a = malloc((size_t)V * sizeof *a), *b = malloc((size_t)V * sizeof *b);
    if (one && chunked) {
        CHECK(ds_decoder_prefill(one, fx.ids, fx.T, fx.embeds, fx.N, fx.mask, a, NULL, &err) == DSOCR_OK);
        CHECK(ds_decoder_prefill(chunked, fx.ids, fx.T, fx.embeds, fx.N, fx.mask, b, NULL, &err) == DSOCR_OK);
        double d = tu_max_abs_diff(a, b, (size_t)V);
        CHECK_MSG(d <= 1e-3, "chunked (37-row) prefill differs by %g", d);
        printf("chunked (37-row) vs one-pass prefill: max |dlogit| = %.3g\n", d);
        ds_decoder *c64 = NULL;
        ds_decoder_params p4 = {.max_ctx = fx.T, .max_batch = 64, .rope_bf16_inv_freq = 0};
        CHECK(ds_decoder_new(m->be, &m->cfg.lm, &m->w, &p4, &c64, &err) == DSOCR_OK);
        if (c64) {
            CHECK(ds_decoder_prefill(c64, fx.ids, fx.T, fx.embeds, fx.N, fx.mask, b, NULL, &err) == DSOCR_OK);
            d = tu_max_abs_diff(a, b, (size_t)V);
            CHECK_MSG(d <= 1e-3, "chunked (64-row) prefill differs by %g", d);
            printf("chunked (64-row) vs one-pass prefill: max |dlogit| = %.3g\n", d);
        }
        ds_decoder_free(c64);

        // prompt minus its last token, then that token as a decode step
        CHECK(ds_decoder_prefill(one, fx.ids, fx.T - 1, fx.embeds, fx.N, fx.mask, b, NULL, &err) == DSOCR_OK);
        CHECK_EQ_INT(ds_decoder_n_past(one), fx.T - 1);
        CHECK(ds_decoder_step(one, fx.ids[fx.T - 1], b, &err) == DSOCR_OK);
        CHECK_EQ_INT(ds_decoder_n_past(one), fx.T);
        d = tu_max_abs_diff(a, b, (size_t)V);
        CHECK_MSG(d <= 1e-3, "prefill + step differs from prefill by %g", d);
        printf("prefill(T-1) + step vs prefill(T): max |dlogit| = %.3g\n", d);

        // steps until the cache is full, then a precise error
        for (int i = 0; i < 8; i++) CHECK(ds_decoder_step(one, 5, b, &err) == DSOCR_OK);
        CHECK_EQ_INT(ds_decoder_step(one, 5, b, &err), DSOCR_ERR_LIMIT);
        CHECK(strstr(err.message, "KV cache full") != NULL);

        // bad inputs
        int32_t bad = m->cfg.lm.vocab_size;
        CHECK_EQ_INT(ds_decoder_step(one, bad, b, &err), DSOCR_ERR_INVALID_ARG);
        CHECK(strstr(err.message, "outside the vocabulary") != NULL);
        CHECK_EQ_INT(ds_decoder_prefill(one, fx.ids, fx.T, fx.embeds, fx.N - 1, fx.mask, b, NULL, &err), DSOCR_ERR_INVALID_ARG);
        CHECK(strstr(err.message, "image") != NULL);
        CHECK_EQ_INT(ds_decoder_prefill(one, fx.ids, 0, NULL, 0, NULL, b, NULL, &err), DSOCR_ERR_INVALID_ARG);
        ds_decoder_params small = {.max_ctx = 16, .max_batch = 0, .rope_bf16_inv_freq = 0};
        ds_decoder *tiny = NULL;
        CHECK(ds_decoder_new(m->be, &m->cfg.lm, &m->w, &small, &tiny, &err) == DSOCR_OK);
        if (tiny) CHECK_EQ_INT(ds_decoder_prefill(tiny, fx.ids, fx.T, fx.embeds, fx.N, fx.mask, b, NULL, &err), DSOCR_ERR_LIMIT);
        ds_decoder_free(tiny);

        // the HF CUDA quirk (bf16 inv_freq) moves the logits, but only a little
        ds_decoder *hf = NULL;
        ds_decoder_params p3 = {.max_ctx = fx.T, .max_batch = 0, .rope_bf16_inv_freq = 1};
        CHECK(ds_decoder_new(m->be, &m->cfg.lm, &m->w, &p3, &hf, &err) == DSOCR_OK);
        if (hf) {
            CHECK(ds_decoder_prefill(hf, fx.ids, fx.T, fx.embeds, fx.N, fx.mask, b, NULL, &err) == DSOCR_OK);
            d = tu_max_abs_diff(a, b, (size_t)V);
            CHECK_MSG(d > 1e-4 && d < 5.0, "bf16 inv_freq changes logits by %g", d);
            printf("bf16 inv_freq option: max |dlogit| = %.3g\n", d);
        }
        ds_decoder_free(hf);

        // a bf16 KV cache (the quantized decoders'): prefill(T-1) + a step, against a
        // (the f32 cache, one pass); the step reads the bf16 cache through the decode
        // kernel where the backend has one, the prefill through widened keys and values
        ds_decoder *kv16 = NULL;
        ds_decoder_params p5 = {.max_ctx = fx.T, .kv_bf16 = 1};
        CHECK(ds_decoder_new(m->be, &m->cfg.lm, &m->w, &p5, &kv16, &err) == DSOCR_OK);
        if (kv16) {
            CHECK(ds_decoder_prefill(kv16, fx.ids, fx.T - 1, fx.embeds, fx.N, fx.mask, b, NULL, &err) == DSOCR_OK);
            CHECK(ds_decoder_step(kv16, fx.ids[fx.T - 1], b, &err) == DSOCR_OK);
            d = tu_max_abs_diff(a, b, (size_t)V);
            double lim = ds_backend_kv_bf16(m->be) ? 0.5 : 1e-3;   /* 8-bit mantissas, or not taken */
            CHECK_MSG(d < lim && (d > 1e-5 || !ds_backend_kv_bf16(m->be)), "bf16 KV cache changes logits by %g", d);
            printf("bf16 KV cache (%s): max |dlogit| = %.3g\n", ds_backend_kv_bf16(m->be) ? "taken" : "not taken here", d);
        }
        ds_decoder_free(kv16);
    }
    free(a); free(b);
    ds_decoder_free(one);
    ds_decoder_free(chunked);
    close_fixture(&fx);
}

/* Config problems are reported, not crashed on. */
static void config_checks(model *m) {
    dsocr_error err;
    ds_decoder *d = NULL;
    ds_decoder_params p = {.max_ctx = 64, .max_batch = 0, .rope_bf16_inv_freq = 0};
    ds_lm_config c = m->cfg.lm;
    c.num_key_value_heads = 1;
    CHECK_EQ_INT(ds_decoder_new(m->be, &c, &m->w, &p, &d, &err), DSOCR_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "num_key_value_heads") != NULL);
    c = m->cfg.lm;
    c.num_hidden_layers = 4;
    CHECK_EQ_INT(ds_decoder_new(m->be, &c, &m->w, &p, &d, &err), DSOCR_ERR_INVALID_ARG);
    p.max_ctx = 0;
    CHECK_EQ_INT(ds_decoder_new(m->be, &m->cfg.lm, &m->w, &p, &d, &err), DSOCR_ERR_INVALID_ARG);
    CHECK(d == NULL);

    // a config that does not fit the checkpoint: the binder lists the shape problems
    ds_config wrong = m->cfg;
    wrong.lm.n_routed_experts = 9;
    ds_decoder_weights w;
    ds_binder *b = ds_binder_new(m->ck);
    ds_decoder_bind(b, &wrong, &w);
    CHECK(ds_binder_problems(b) > 0);
    CHECK_EQ_INT(ds_binder_finish(b, &err), DSOCR_ERR_FORMAT);
    CHECK(strstr(err.message, "experts.8") != NULL || strstr(err.message, "mlp.gate.weight") != NULL);
    ds_decoder_weights_free(&w);
}

/* ---- generation loop options -------------------------------------------- */

typedef struct stopper { int stop_at; ds_gen_action action; int seen; } stopper;

static ds_gen_action stop_cb(void *user, const ds_gen_token *t) {
    stopper *s = user;
    s->seen++;
    return t->step == s->stop_at ? s->action : DS_GEN_CONTINUE;
}

/* True if some n-gram of out[] starting at i in [max(0, j-W), j-n] equals the one
 * ending at out[j] (i.e. the windowed ban should have stopped out[j]). */
static int window_violation(const int32_t *out, int len, int n, int W, const int32_t *white, int nw) {
    for (int j = n; j < len; j++) {
        int i0 = j - W > 0 ? j - W : 0;
        for (int i = i0; i <= j - n; i++)
            if (!memcmp(out + i, out + j - n + 1, (size_t)n * sizeof *out)) {
                int wl = 0;
                for (int k = 0; k < nw; k++) wl |= white[k] == out[j];
                if (!wl) return j;
            }
    }
    return -1;
}

static void generation_checks(model *m) {
    fixture fx;
    if (!open_fixture(&fx, "small_text_300x200__base")) { close_fixture(&fx); return; }
    dsocr_error err;
    ds_decoder *dec = NULL;
    ds_generator *gen = NULL;
    ds_decoder_params dp = {.max_ctx = fx.T + 64, .max_batch = 0, .rope_bf16_inv_freq = 0};
    CHECK(ds_decoder_new(m->be, &m->cfg.lm, &m->w, &dp, &dec, &err) == DSOCR_OK);
    if (dec) CHECK(ds_generator_new(dec, &gen, &err) == DSOCR_OK);
    if (!gen) { ds_decoder_free(dec); close_fixture(&fx); return; }
    ds_gen_prompt pr = {fx.ids, fx.T, fx.embeds, fx.N, fx.mask};
    ds_gen_result r;
    const ds_tensor *gi = need(fx.f, "gen_ids", DS_I64);

    // EOS: pretend the token of step 2 is EOS -> finish STOP, EOS kept last
    ds_gen_params p = ds_gen_default_params();
    p.eos_id = (int)get_i64(gi, 2);
    CHECK(ds_generate(gen, &pr, &p, NULL, NULL, &r, NULL, &err) == DSOCR_OK);
    CHECK_EQ_INT(r.finish, DSOCR_FINISH_STOP);
    CHECK_EQ_INT(r.n_ids, 3);
    CHECK_EQ_INT(r.ids[2], p.eos_id);

    // the callback's loop hook and cancel
    p = ds_gen_default_params();
    p.max_new_tokens = 20;
    stopper st = {5, DS_GEN_STOP_LOOP, 0};
    CHECK(ds_generate(gen, &pr, &p, stop_cb, &st, &r, NULL, &err) == DSOCR_OK);
    CHECK_EQ_INT(r.finish, DSOCR_FINISH_LOOP);
    CHECK_EQ_INT(r.n_ids, 6);
    for (int k = 0; k < 6; k++) CHECK_EQ_INT(r.ids[k], get_i64(gi, k));
    stopper cancel = {3, DS_GEN_CANCEL, 0};
    CHECK_EQ_INT(ds_generate(gen, &pr, &p, stop_cb, &cancel, &r, NULL, &err), DSOCR_ERR_CANCELLED);
    CHECK_EQ_INT(r.n_ids, 4);
    CHECK(strstr(err.message, "cancelled") != NULL);

    // max_new_tokens bounded by the context: T + 64 positions give 65 tokens, LENGTH
    p.max_new_tokens = 1000;
    p.ngram_size = 0;
    CHECK(ds_generate(gen, &pr, &p, NULL, NULL, &r, NULL, &err) == DSOCR_OK);
    CHECK_EQ_INT(r.finish, DSOCR_FINISH_LENGTH);
    CHECK_EQ_INT(r.n_ids, 65);
    // no ban: this case settles into one repeated token (66790 ...)
    int runs = 0;
    for (int k = 1; k < r.n_ids; k++) runs += r.ids[k] == r.ids[k - 1];
    CHECK(runs > 30);

    // vLLM windowed ban over generated tokens: no repeated 4-gram inside 12 tokens
    p = ds_gen_default_params();
    p.max_new_tokens = 60;
    ds_gen_params_set_vllm_ngram(&p, 4, 12);
    CHECK(ds_generate(gen, &pr, &p, NULL, NULL, &r, NULL, &err) == DSOCR_OK);
    CHECK_EQ_INT(r.n_ids, 60);
    CHECK_EQ_INT(window_violation(r.ids, r.n_ids, 4, 12, p.ngram_whitelist, p.n_ngram_whitelist), -1);
    // the HF ban (n 4 over everything) also holds on its own output
    p = ds_gen_default_params();
    p.max_new_tokens = 60;
    p.ngram_size = 4;
    CHECK(ds_generate(gen, &pr, &p, NULL, NULL, &r, NULL, &err) == DSOCR_OK);
    CHECK_EQ_INT(window_violation(r.ids, r.n_ids, 4, 1 << 30, NULL, 0), -1);

    // sampling: the same seed gives the same tokens, another seed others
    int32_t first[40];
    p = ds_gen_default_params();
    p.max_new_tokens = 40;
    p.sampler = (ds_sampler_params){1.5f, 50, 0.95f, 77};
    CHECK(ds_generate(gen, &pr, &p, NULL, NULL, &r, NULL, &err) == DSOCR_OK);
    memcpy(first, r.ids, sizeof first);
    CHECK(ds_generate(gen, &pr, &p, NULL, NULL, &r, NULL, &err) == DSOCR_OK);
    CHECK(memcmp(first, r.ids, sizeof first) == 0);
    p.sampler.seed = 78;
    CHECK(ds_generate(gen, &pr, &p, NULL, NULL, &r, NULL, &err) == DSOCR_OK);
    CHECK(memcmp(first, r.ids, sizeof first) != 0);

    ds_generator_free(gen);
    ds_decoder_free(dec);
    close_fixture(&fx);
}

/* The real config through a recording binder: every LM tensor of spec 3.1, once. */
static void recorder_checks(void) {
    ds_config cfg;
    ds_config_default(&cfg);
    ds_binder *b = ds_binder_new_recorder();
    ds_decoder_weights w;
    ds_decoder_bind(b, &cfg, &w);
    CHECK_EQ_INT(ds_binder_problems(b), 0);
    /* embed + 12 x (2 norms + 4 attn) + dense 3 + 11 x (router + 64 x 3 + shared 3) + norm + lm_head */
    CHECK_EQ_INT(ds_binder_count(b), 1 + 12 * 6 + 3 + 11 * (1 + 64 * 3 + 3) + 2);
    int64_t sh[DS_MAX_DIMS];
    int found = 0;
    for (int i = 0; i < ds_binder_count(b); i++) {
        const char *name = ds_binder_name(b, i);
        int nd = ds_binder_shape(b, i, sh);
        if (!strcmp(name, "model.layers.11.mlp.experts.63.down_proj.weight")) { found++; CHECK(nd == 2 && sh[0] == 1280 && sh[1] == 896); }
        if (!strcmp(name, "model.layers.0.mlp.gate_proj.weight")) { found++; CHECK(nd == 2 && sh[0] == 6848 && sh[1] == 1280); }
        if (!strcmp(name, "model.layers.1.mlp.shared_experts.down_proj.weight")) { found++; CHECK(nd == 2 && sh[0] == 1280 && sh[1] == 1792); }
        if (!strcmp(name, "model.layers.5.mlp.gate.weight")) { found++; CHECK(nd == 2 && sh[0] == 64 && sh[1] == 1280); }
        if (!strcmp(name, "lm_head.weight")) { found++; CHECK(nd == 2 && sh[0] == 129280 && sh[1] == 1280); }
        if (!strcmp(name, "model.layers.1.mlp.gate_proj.weight")) found += 100;   /* MoE layers have no dense MLP */
    }
    CHECK_EQ_INT(found, 5);
    CHECK(w.layers && !w.layers[0].is_moe && w.layers[1].is_moe && w.layers[11].is_moe);
    ds_binder_free(b);
    ds_decoder_weights_free(&w);
}

int main(void) {
    model m;
    if (!load_model(&m)) { free_model(&m); return tu_done("test_decoder"); }
    const int V = m.cfg.lm.vocab_size;
    dsocr_error err;

    // one decoder + generator for every case: the run state is reused across requests
    ds_decoder *dec = NULL;
    ds_generator *gen = NULL;
    ds_decoder_params dp = {.max_ctx = 913 + STEPS, .max_batch = 0, .rope_bf16_inv_freq = 0};   /* longest prompt (portrait gundam) + steps */
    CHECK(ds_decoder_new(m.be, &m.cfg.lm, &m.w, &dp, &dec, &err) == DSOCR_OK);
    if (dec) CHECK(ds_generator_new(dec, &gen, &err) == DSOCR_OK);
    float *step_logits = malloc((size_t)STEPS * V * sizeof *step_logits);
    worst wst = {0};
    for (int i = 0; gen && i < 5; i++)
        for (int j = 0; j < 5; j++) {
            char name[128];
            snprintf(name, sizeof name, "%s__%s", CASES[i], MODES[j]);
            run_case(gen, name, &wst, step_logits, V);
        }
    printf("golden: %d/25 cases match; %d steps with an n-gram ban\n", wst.cases_ok, wst.ngram_steps);
    printf("max errors: layer hidden %.3g rel, final norm %.3g rel, logits %.3g abs (%.3g rel), "
           "MoE weights %.3g abs, step top-8 logits %.3g abs\n",
           wst.hidden_rel, wst.final_rel, wst.logits_abs, wst.logits_rel, wst.moe_w, wst.topk_abs);
    CHECK_EQ_INT(wst.cases_ok, 25);
    CHECK_EQ_INT(wst.ngram_steps, 13);   /* 13 banned steps over the 25 cases (12 change the arg-max) */
    free(step_logits);
    ds_generator_free(gen);
    ds_decoder_free(dec);

    cache_checks(&m, V);
    generation_checks(&m);
    config_checks(&m);
    recorder_checks();
    free_model(&m);
    return tu_done("test_decoder");
}
