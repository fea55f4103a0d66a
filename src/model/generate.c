/* Sampler and generation loop (see generate.h). */
#include "model/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- sampler ------------------------------------------------------------ */

typedef struct sampler_cand {
    float score;
    int32_t id;
} sampler_cand;

struct ds_sampler {
    int V;
    ds_sampler_params p;
    uint64_t rng;          /* splitmix64 state */
    sampler_cand *cand;    /* [V] candidates */
    float *scratch;        /* [V] */
    int32_t *ids;          /* [V] candidate ids, most likely first */
    float *probs;          /* [V] their probabilities */
};

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static double rand_uniform(uint64_t *s) { return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0); }

void ds_sampler_free(ds_sampler *s) {
    if (!s) return;
    free(s->cand); free(s->scratch); free(s->ids); free(s->probs);
    free(s);
}

void ds_sampler_set(ds_sampler *s, const ds_sampler_params *p) {
    s->p = *p;
    s->rng = p->seed;
}

dsocr_status ds_sampler_new(int vocab, const ds_sampler_params *p, ds_sampler **out, dsocr_error *err) {
    *out = NULL;
    if (vocab <= 0 || !p) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "sampler: vocabulary of %d tokens", vocab);
    ds_sampler *s = calloc(1, sizeof *s);
    if (!s) return ds_fail(err, DSOCR_ERR_NOMEM, "sampler: out of memory");
    s->V = vocab;
    s->cand = malloc((size_t)vocab * sizeof *s->cand);
    s->scratch = malloc((size_t)vocab * sizeof *s->scratch);
    s->ids = malloc((size_t)vocab * sizeof *s->ids);
    s->probs = malloc((size_t)vocab * sizeof *s->probs);
    if (!s->cand || !s->scratch || !s->ids || !s->probs) {
        ds_sampler_free(s);
        return ds_fail(err, DSOCR_ERR_NOMEM, "sampler: out of memory for %d tokens", vocab);
    }
    ds_sampler_set(s, p);
    *out = s;
    return DSOCR_OK;
}

int32_t ds_sample_greedy(const float *logits, int V) {
    int32_t best = 0;
    float best_v = logits[0];
    for (int32_t i = 1; i < V; i++)
        if (logits[i] > best_v) { best_v = logits[i]; best = i; }
    return best;
}

/* k-th largest (1-based) of v[n], reordering v (quickselect). */
static float kth_largest(float *v, int n, int k) {
    int lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] > pivot) i++;
            while (v[j] < pivot) j--;
            if (i <= j) { float t = v[i]; v[i] = v[j]; v[j] = t; i++; j--; }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;
    }
    return v[want];
}

/* Score descending, ties by id ascending. */
static int by_score_desc(const void *a, const void *b) {
    const sampler_cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int ds_sampler_candidates(ds_sampler *s, const float *logits, const int32_t **ids_out, const float **probs_out) {
    const int V = s->V;
    const float temp = s->p.temperature > 0 ? s->p.temperature : 1.0f;
    sampler_cand *c = s->cand;
    *ids_out = s->ids;
    *probs_out = s->probs;

    // temperature: scores = logits / T as HF divides; -inf (banned) is never a candidate
    int n = 0;
    for (int32_t i = 0; i < V; i++)
        if (logits[i] > -INFINITY) { c[n].id = i; c[n].score = logits[i] / temp; n++; }
    if (n == 0) { s->ids[0] = ds_sample_greedy(logits, V); s->probs[0] = 1.0f; return 1; }

    // top-k: keep scores >= the k-th largest score (HF keeps the ties with it)
    if (s->p.top_k > 0 && s->p.top_k < n) {
        for (int i = 0; i < n; i++) s->scratch[i] = c[i].score;
        float kth = kth_largest(s->scratch, n, s->p.top_k);
        int m = 0;
        for (int i = 0; i < n; i++)
            if (c[i].score >= kth) c[m++] = c[i];
        n = m;
    }

    // softmax denominator over every candidate
    float mx = c[0].score;
    for (int i = 1; i < n; i++) if (c[i].score > mx) mx = c[i].score;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)c[i].score - mx);

    // top-p reaches only the head of the ranking: select a head holding >= top_p of
    // the mass (growing it 4x at a time) instead of sorting the whole vocabulary
    if (s->p.top_p < 1.0f) {
        for (int head = 256; head < n; head *= 4) {
            for (int i = 0; i < n; i++) s->scratch[i] = c[i].score;
            float kth = kth_largest(s->scratch, n, head);
            double mass = 0;
            for (int i = 0; i < n; i++) if (c[i].score >= kth) mass += exp((double)c[i].score - mx);
            if (mass / sum < (double)s->p.top_p) continue;
            int m = 0;
            for (int i = 0; i < n; i++) if (c[i].score >= kth) c[m++] = c[i];
            n = m;   /* ties with the k-th score stay, so the ranking head is exact */
            break;
        }
    }
    qsort(c, (size_t)n, sizeof *c, by_score_desc);
    for (int i = 0; i < n; i++) {
        s->ids[i] = c[i].id;
        s->probs[i] = (float)(exp((double)c[i].score - mx) / sum);
    }

    // top-p: keep tokens while the mass ranked above them is < top_p (HF removes the
    // ascending-sorted tokens whose cumulative mass is <= 1 - top_p; one always stays)
    if (s->p.top_p < 1.0f) {
        double before = 0;
        int m = 0;
        while (m < n && (m == 0 || before < (double)s->p.top_p)) before += s->probs[m++];
        n = m;
        for (int i = 0; i < n; i++) s->probs[i] = (float)(s->probs[i] / before);
    }
    return n;
}

/* Plain temperature sampling needs no ranking: walk the softmax in id order. */
static int32_t sample_full(ds_sampler *s, const float *logits) {
    const int V = s->V;
    const float temp = s->p.temperature;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) if (logits[i] / temp > mx) mx = logits[i] / temp;
    if (mx == -INFINITY) return ds_sample_greedy(logits, V);
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)(logits[i] / temp) - mx);
    double r = rand_uniform(&s->rng) * sum, acc = 0;
    int32_t last = 0;
    for (int i = 0; i < V; i++) {
        if (logits[i] == -INFINITY) continue;
        acc += exp((double)(logits[i] / temp) - mx);
        last = i;
        if (r < acc) return i;
    }
    return last;   /* rounding left r above the total */
}

int32_t ds_sampler_pick(ds_sampler *s, const float *logits) {
    if (s->p.temperature <= 0) return ds_sample_greedy(logits, s->V);
    if ((s->p.top_k <= 0 || s->p.top_k >= s->V) && s->p.top_p >= 1.0f) return sample_full(s, logits);
    const int32_t *ids;
    const float *probs;
    int n = ds_sampler_candidates(s, logits, &ids, &probs);
    double r = rand_uniform(&s->rng), acc = 0;
    for (int i = 0; i < n; i++) {
        acc += probs[i];
        if (r < acc) return ids[i];
    }
    return ids[n - 1];   /* rounding left r above the total */
}

/* ---- generation loop ---------------------------------------------------- */

ds_gen_params ds_gen_default_params(void) {
    ds_gen_params p;
    memset(&p, 0, sizeof p);
    p.max_new_tokens = 8192;
    p.eos_id = 1;
    p.sampler.top_p = 1.0f;
    p.ngram_size = 20;
    return p;
}

void ds_gen_params_set_vllm_ngram(ds_gen_params *p, int ngram_size, int window) {
    p->ngram_size = ngram_size;
    p->ngram_window = window;
    p->ngram_whitelist[0] = 128821;   /* <td> */
    p->ngram_whitelist[1] = 128822;   /* </td> */
    p->n_ngram_whitelist = 2;
}

struct ds_generator {
    ds_decoder *dec;
    int V, max_ctx;
    float *logits;        /* [V] host */
    float *banned_raw;    /* [V] the logits the n-gram ban replaced, in ban order */
    int32_t *out_ids;     /* [max_ctx + 1] generated ids (the last one needs no cache slot) */
    ds_sampler *sampler;
    ds_ngram *ngram;      /* [max_ctx + 1] tokens; rebuilt when the n-gram settings change */
    int ngram_n, ngram_window;
    int32_t ngram_white[DS_NGRAM_MAX_WHITELIST];
    int ngram_n_white;
};

void ds_generator_free(ds_generator *g) {
    if (!g) return;
    free(g->logits);
    free(g->banned_raw);
    free(g->out_ids);
    ds_sampler_free(g->sampler);
    ds_ngram_free(g->ngram);
    free(g);
}

dsocr_status ds_generator_new(ds_decoder *dec, ds_generator **out, dsocr_error *err) {
    *out = NULL;
    if (!dec) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "generator: NULL decoder");
    ds_generator *g = calloc(1, sizeof *g);
    if (!g) return ds_fail(err, DSOCR_ERR_NOMEM, "generator: out of memory");
    g->dec = dec;
    g->V = ds_decoder_vocab(dec);
    g->max_ctx = ds_decoder_max_ctx(dec);
    g->logits = malloc((size_t)g->V * sizeof *g->logits);
    g->banned_raw = malloc((size_t)g->V * sizeof *g->banned_raw);
    g->out_ids = malloc(((size_t)g->max_ctx + 1) * sizeof *g->out_ids);
    ds_sampler_params sp = {0, 0, 1.0f, 0};
    dsocr_status s = (!g->logits || !g->banned_raw || !g->out_ids)
        ? ds_fail(err, DSOCR_ERR_NOMEM, "generator: out of memory for %d logits / %d ids", g->V, g->max_ctx)
        : ds_sampler_new(g->V, &sp, &g->sampler, err);
    if (s != DSOCR_OK) { ds_generator_free(g); return s; }
    *out = g;
    return DSOCR_OK;
}

/* The n-gram tracker for these settings, reusing the last one when they match. */
static dsocr_status prepare_ngram(ds_generator *g, const ds_gen_params *p, dsocr_error *err) {
    if (p->ngram_size <= 0) return DSOCR_OK;
    if (g->ngram && g->ngram_n == p->ngram_size && g->ngram_window == p->ngram_window &&
        g->ngram_n_white == p->n_ngram_whitelist &&
        !memcmp(g->ngram_white, p->ngram_whitelist, (size_t)p->n_ngram_whitelist * sizeof(int32_t))) {
        ds_ngram_reset(g->ngram);
        return DSOCR_OK;
    }
    ds_ngram_free(g->ngram);
    g->ngram = NULL;
    DS_TRY(ds_ngram_new(p->ngram_size, p->ngram_window, p->ngram_whitelist, p->n_ngram_whitelist,
                        g->max_ctx + 1, &g->ngram, err));
    g->ngram_n = p->ngram_size;
    g->ngram_window = p->ngram_window;
    g->ngram_n_white = p->n_ngram_whitelist;
    memcpy(g->ngram_white, p->ngram_whitelist, sizeof g->ngram_white);
    return DSOCR_OK;
}

dsocr_status ds_generate(ds_generator *g, const ds_gen_prompt *prompt, const ds_gen_params *p,
                         ds_gen_token_fn on_token, void *user, ds_gen_result *out,
                         const ds_trace *trace, dsocr_error *err) {
    out->ids = g->out_ids;
    out->n_ids = 0;
    out->finish = DSOCR_FINISH_LENGTH;
    if (!prompt || !p || p->max_new_tokens < 0 || p->ngram_window < 0 ||
        p->n_ngram_whitelist < 0 || p->n_ngram_whitelist > DS_NGRAM_MAX_WHITELIST)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "generate: bad parameters (max_new_tokens %d, ngram window %d, %d whitelist ids)",
                       p ? p->max_new_tokens : 0, p ? p->ngram_window : 0, p ? p->n_ngram_whitelist : 0);
    DS_TRY(prepare_ngram(g, p, err));
    ds_ngram *ng = p->ngram_size > 0 ? g->ngram : NULL;
    ds_sampler_set(g->sampler, &p->sampler);

    DS_TRY(ds_decoder_prefill(g->dec, prompt->ids, prompt->n_ids, prompt->image_embeds, prompt->n_image,
                              prompt->image_mask, g->logits, trace, err));
    // the HF ban counts the prompt; the windowed (vLLM) ban sees generated tokens only
    if (ng && p->ngram_window == 0)
        for (int i = 0; i < prompt->n_ids; i++) DS_TRY(ds_ngram_push(ng, prompt->ids[i], err));

    for (int step = 0; step < p->max_new_tokens; step++) {
        // ban, then pick
        const int32_t *banned = NULL;
        int n_banned = ng ? ds_ngram_banned(ng, &banned) : 0;
        for (int i = 0; i < n_banned; i++) {
            g->banned_raw[i] = g->logits[banned[i]];
            g->logits[banned[i]] = -INFINITY;
        }
        int32_t id = ds_sampler_pick(g->sampler, g->logits);

        g->out_ids[out->n_ids++] = id;
        if (ng) DS_TRY(ds_ngram_push(ng, id, err));
        ds_gen_action act = DS_GEN_CONTINUE;
        if (on_token) {
            ds_gen_token tok = {id, step, g->logits, banned, n_banned, g->banned_raw, g->V};
            act = on_token(user, &tok);
        }
        if (id == p->eos_id) { out->finish = DSOCR_FINISH_STOP; return DSOCR_OK; }
        if (act == DS_GEN_STOP_LOOP) { out->finish = DSOCR_FINISH_LOOP; return DSOCR_OK; }
        if (act == DS_GEN_CANCEL)
            return ds_fail(err, DSOCR_ERR_CANCELLED, "generation cancelled by the token callback after %d tokens", out->n_ids);
        if (step + 1 == p->max_new_tokens) break;
        // the next step needs a cache position; a full cache ends like max_new_tokens
        if (ds_decoder_n_past(g->dec) >= g->max_ctx) break;
        DS_TRY(ds_decoder_step(g->dec, id, g->logits, err));
    }
    out->finish = DSOCR_FINISH_LENGTH;
    return DSOCR_OK;
}
