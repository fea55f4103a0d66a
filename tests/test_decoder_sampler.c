/* Sampler: greedy ties, -inf, temperature / top-k / top-p candidates against a
 * brute-force transcription of HF's warpers, seed determinism, and the empirical
 * distribution of sampled tokens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/generate.h"
#include "test_util.h"

static void greedy_cases(void) {
    float l[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 2.0f};
    CHECK_EQ_INT(ds_sample_greedy(l, 6), 1);           /* ties: lowest id */
    l[1] = -INFINITY;
    CHECK_EQ_INT(ds_sample_greedy(l, 6), 3);
    float all_banned[3] = {-INFINITY, -INFINITY, -INFINITY};
    CHECK_EQ_INT(ds_sample_greedy(all_banned, 3), 0);
    float neg[3] = {-INFINITY, -5.0f, -INFINITY};
    CHECK_EQ_INT(ds_sample_greedy(neg, 3), 1);
    // temperature 0 goes through greedy even with top-k/top-p set
    ds_sampler *s;
    dsocr_error err;
    ds_sampler_params p = {0.0f, 2, 0.5f, 7};
    CHECK(ds_sampler_new(6, &p, &s, &err) == DSOCR_OK);
    for (int i = 0; i < 10; i++) CHECK_EQ_INT(ds_sampler_pick(s, l), 3);
    ds_sampler_free(s);
}

/* HF: scores/T; TopK: remove scores < k-th largest; softmax; TopP: sort ascending,
 * cumsum, remove cum <= 1-p except the last (largest); renormalise. In double. */
typedef struct { double v; int id; } vi;
static int vi_asc(const void *a, const void *b) {
    const vi *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->id < y->id) - (x->id > y->id);   /* ties: higher id first = lower id ranks higher */
}

static int brute_candidates(const float *logits, int V, float T, int top_k, float top_p, double *prob /*[V]*/) {
    vi *a = malloc((size_t)V * sizeof *a);
    for (int i = 0; i < V; i++) { a[i].v = (double)(logits[i] / T); a[i].id = i; prob[i] = 0; }
    qsort(a, (size_t)V, sizeof *a, vi_asc);
    int lo = 0;                                  /* a[lo..V) survive */
    while (lo < V && isinf(a[lo].v) && a[lo].v < 0) lo++;
    if (top_k > 0 && top_k < V - lo) {
        double kth = a[V - top_k].v;
        while (a[lo].v < kth) lo++;
    }
    double mx = a[V - 1].v, sum = 0;
    for (int i = lo; i < V; i++) sum += exp(a[i].v - mx);
    if (top_p < 1.0f) {
        double cum = 0;
        int cut = lo;
        for (int i = lo; i < V - 1; i++) {
            cum += exp(a[i].v - mx) / sum;
            if (cum <= 1.0 - (double)top_p) cut = i + 1;
        }
        lo = cut;
        sum = 0;
        for (int i = lo; i < V; i++) sum += exp(a[i].v - mx);
    }
    for (int i = lo; i < V; i++) prob[a[i].id] = exp(a[i].v - mx) / sum;
    free(a);
    return V - lo;
}

static void candidate_cases(void) {
    enum { V = 2000 };
    static float logits[V];
    static double want[V];
    uint64_t rng = 5;
    ds_sampler *s;
    dsocr_error err;
    ds_sampler_params p = {1.0f, 0, 1.0f, 1};
    CHECK(ds_sampler_new(V, &p, &s, &err) == DSOCR_OK);
    int worst_count = 0;
    double worst_p = 0;
    for (int run = 0; run < 300; run++) {
        for (int i = 0; i < V; i++) logits[i] = (float)(3.0 * tu_rand_normal(&rng));
        if (run % 4 == 1) for (int i = 0; i < V; i += 3) logits[i] = -INFINITY;   /* banned ids */
        if (run % 5 == 2) for (int i = 0; i < V; i++) logits[i] = floorf(logits[i]); /* many ties */
        float temps[] = {0.3f, 0.7f, 1.0f, 1.6f};
        int ks[] = {0, 1, 5, 40, 1999, 5000};
        float ps[] = {1.0f, 0.95f, 0.5f, 0.1f, 1e-6f};
        p.temperature = temps[run % 4];
        p.top_k = ks[(run / 4) % 6];
        p.top_p = ps[(run / 24) % 5];
        ds_sampler_set(s, &p);
        const int32_t *ids;
        const float *probs;
        int n = ds_sampler_candidates(s, logits, &ids, &probs);
        int nw = brute_candidates(logits, V, p.temperature, p.top_k, p.top_p, want);
        if (n != nw) { if (worst_count++ < 5) CHECK_MSG(0, "run %d T %g k %d p %g: %d candidates, want %d", run, p.temperature, p.top_k, p.top_p, n, nw); continue; }
        for (int i = 0; i < n; i++) {
            double d = fabs((double)probs[i] - want[ids[i]]);
            if (want[ids[i]] == 0) d = 1;   /* not a candidate of the reference */
            if (d > worst_p) worst_p = d;
            if (i > 0) CHECK(probs[i] <= probs[i - 1] && (probs[i] < probs[i - 1] || ids[i] > ids[i - 1]));
        }
    }
    CHECK_EQ_INT(worst_count, 0);
    CHECK_MSG(worst_p < 1e-6, "max |p - p_ref| = %g", worst_p);
    printf("top-k/top-p vs brute force: 300 runs, max |p - p_ref| = %.3g\n", worst_p);
    ds_sampler_free(s);
}

static void seed_and_distribution(void) {
    enum { V = 5 };
    float logits[V] = {1.0f, 2.0f, 0.0f, 2.0f, -INFINITY};
    ds_sampler *s;
    dsocr_error err;
    ds_sampler_params p = {1.0f, 0, 1.0f, 1234};
    CHECK(ds_sampler_new(V, &p, &s, &err) == DSOCR_OK);
    int a[200], b[200], c[200];
    for (int i = 0; i < 200; i++) a[i] = ds_sampler_pick(s, logits);
    ds_sampler_set(s, &p);
    for (int i = 0; i < 200; i++) b[i] = ds_sampler_pick(s, logits);
    p.seed = 1235;
    ds_sampler_set(s, &p);
    for (int i = 0; i < 200; i++) c[i] = ds_sampler_pick(s, logits);
    CHECK(memcmp(a, b, sizeof a) == 0);     /* same seed, same tokens */
    CHECK(memcmp(a, c, sizeof a) != 0);     /* another seed, other tokens */

    // frequencies against softmax: e^1, e^2, e^0, e^2 (id 4 banned, never drawn)
    int count[V] = {0};
    const int N = 200000;
    p.seed = 99;
    ds_sampler_set(s, &p);
    for (int i = 0; i < N; i++) count[ds_sampler_pick(s, logits)]++;
    double z = exp(1) + 2 * exp(2) + 1;
    double want[V] = {exp(1) / z, exp(2) / z, 1 / z, exp(2) / z, 0};
    for (int i = 0; i < V; i++) {
        double f = (double)count[i] / N, sd = sqrt(want[i] * (1 - want[i]) / N);
        CHECK_MSG(fabs(f - want[i]) <= 5 * sd + 1e-12, "token %d: frequency %.5f, want %.5f", i, f, want[i]);
    }
    // top-k 1 and a tiny top-p both reduce sampling to the arg-max (lowest id on ties)
    p.top_k = 1;
    ds_sampler_set(s, &p);
    const int32_t *ids;
    const float *probs;
    CHECK_EQ_INT(ds_sampler_candidates(s, logits, &ids, &probs), 2);   /* ties with the k-th kept */
    p.top_k = 0; p.top_p = 1e-6f;
    ds_sampler_set(s, &p);
    CHECK_EQ_INT(ds_sampler_candidates(s, logits, &ids, &probs), 1);
    CHECK_EQ_INT(ids[0], 1);
    for (int i = 0; i < 20; i++) CHECK_EQ_INT(ds_sampler_pick(s, logits), 1);
    ds_sampler_free(s);
}

int main(void) {
    greedy_cases();
    candidate_cases();
    seed_and_distribution();
    return tu_done("test_decoder_sampler");
}
