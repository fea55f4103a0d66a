/* n-gram bans: hand cases written from spec 10.1 (HF, whole sequence) and 10.2 (vLLM
 * window + whitelist), then the incremental tracker against a brute-force scan of the
 * spec's pseudo-code after every token of random sequences. */
#include <stdlib.h>
#include <string.h>

#include "model/ngram.h"
#include "test_util.h"

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Builds a tracker, feeds seq, returns the sorted banned set in out (count). */
static int banned_after(int n, int window, const int32_t *white, int n_white,
                        const int32_t *seq, int len, int32_t *out) {
    ds_ngram *g;
    dsocr_error err;
    if (ds_ngram_new(n, window, white, n_white, 64, &g, &err) != DSOCR_OK) {
        CHECK_MSG(0, "ds_ngram_new: %s", err.message);
        return -1;
    }
    for (int i = 0; i < len; i++) CHECK(ds_ngram_push(g, seq[i], &err) == DSOCR_OK);
    const int32_t *b;
    int nb = ds_ngram_banned(g, &b);
    memcpy(out, b, (size_t)nb * sizeof *b);
    qsort(out, (size_t)nb, sizeof *out, cmp_i32);
    ds_ngram_free(g);
    return nb;
}

#define SEQ(...) (const int32_t[]){__VA_ARGS__}, (int)(sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t))

static void hand_cases(void) {
    int32_t b[64];
    const int32_t td[] = {128821, 128822};

    // HF (window 0): prefix = last n-1 tokens, any earlier occurrence bans its follower
    CHECK_EQ_INT(banned_after(3, 0, NULL, 0, SEQ(1, 2, 3, 1, 2), b), 1);
    CHECK_EQ_INT(b[0], 3);
    CHECK_EQ_INT(banned_after(2, 0, NULL, 0, SEQ(5, 6, 5, 7, 5), b), 2);
    CHECK_EQ_INT(b[0], 6); CHECK_EQ_INT(b[1], 7);
    // fewer than n-1 tokens, or exactly n-1 (no complete n-gram yet): nothing
    CHECK_EQ_INT(banned_after(4, 0, NULL, 0, SEQ(1, 2), b), 0);
    CHECK_EQ_INT(banned_after(4, 0, NULL, 0, SEQ(1, 2, 3), b), 0);
    // the prefix must match as a whole: (2,3) never preceded anything
    CHECK_EQ_INT(banned_after(3, 0, NULL, 0, SEQ(1, 3, 9, 2, 3), b), 0);
    // a repeated follower is banned once; the prompt counts (BOS + image run)
    CHECK_EQ_INT(banned_after(3, 0, NULL, 0, SEQ(0, 9, 9, 9, 9), b), 1);
    CHECK_EQ_INT(b[0], 9);
    // the image run of the prompt: [0] + 25 x <image> + "\n" (201); once 19 placeholders
    // are generated both continuations seen in the prompt are banned
    {
        int32_t s[64];
        int L = 0;
        s[L++] = 0;
        for (int i = 0; i < 25; i++) s[L++] = 128815;
        s[L++] = 201;
        CHECK_EQ_INT(banned_after(20, 0, NULL, 0, s, L, b), 0);
        for (int i = 0; i < 18; i++) s[L++] = 128815;
        CHECK_EQ_INT(banned_after(20, 0, NULL, 0, s, L, b), 0);   /* 18: prefix still holds 201 */
        s[L++] = 128815;
        CHECK_EQ_INT(banned_after(20, 0, NULL, 0, s, L, b), 2);
        CHECK_EQ_INT(b[0], 201); CHECK_EQ_INT(b[1], 128815);
    }
    // n = 1: the empty prefix precedes every token: all seen tokens are banned
    CHECK_EQ_INT(banned_after(1, 0, NULL, 0, SEQ(4, 4, 7), b), 2);
    CHECK_EQ_INT(b[0], 4); CHECK_EQ_INT(b[1], 7);

    // vLLM whitelist: <td>/</td> are never banned, other followers still are
    CHECK_EQ_INT(banned_after(2, 100, td, 2, SEQ(128821, 5, 128821, 5, 128821), b), 1);
    CHECK_EQ_INT(b[0], 5);
    CHECK_EQ_INT(banned_after(2, 100, td, 2, SEQ(5, 128821, 5, 128822, 5), b), 0);
    CHECK_EQ_INT(banned_after(2, 100, td, 2, SEQ(5, 128821, 5, 7, 5), b), 1);
    CHECK_EQ_INT(b[0], 7);
    // same sequence without a whitelist bans <td> too
    CHECK_EQ_INT(banned_after(2, 100, NULL, 0, SEQ(5, 128821, 5, 7, 5), b), 2);

    // window edge: starts i in [max(0, L-W), L-n]. (1,2,3) starts at 0, L = 8
    CHECK_EQ_INT(banned_after(3, 8, td, 2, SEQ(1, 2, 3, 4, 5, 6, 1, 2), b), 1);
    CHECK_EQ_INT(b[0], 3);
    CHECK_EQ_INT(banned_after(3, 7, td, 2, SEQ(1, 2, 3, 4, 5, 6, 1, 2), b), 0);
    // shifted by one: L = 9, (1,2,3) starts at 1, inside for W = 8, just out for W = 7
    CHECK_EQ_INT(banned_after(3, 8, td, 2, SEQ(9, 1, 2, 3, 4, 5, 6, 1, 2), b), 1);
    CHECK_EQ_INT(b[0], 3);
    CHECK_EQ_INT(banned_after(3, 7, td, 2, SEQ(9, 1, 2, 3, 4, 5, 6, 1, 2), b), 0);
    // W == n: only the most recent n-gram counts; W < n: never a ban
    CHECK_EQ_INT(banned_after(3, 3, NULL, 0, SEQ(7, 7, 7), b), 1);
    CHECK_EQ_INT(banned_after(3, 2, NULL, 0, SEQ(7, 7, 7), b), 0);
    CHECK_EQ_INT(banned_after(3, 3, NULL, 0, SEQ(1, 7, 7, 7), b), 1);
    CHECK_EQ_INT(banned_after(3, 3, NULL, 0, SEQ(7, 7, 8, 7, 7), b), 0);  /* (7,7,8) starts at 0 < L-W = 2 */
    CHECK_EQ_INT(banned_after(3, 5, NULL, 0, SEQ(7, 7, 8, 7, 7), b), 1);
    CHECK_EQ_INT(b[0], 8);
    // L < n: no ban even with a window
    CHECK_EQ_INT(banned_after(3, 90, NULL, 0, SEQ(1, 1), b), 0);
}

/* Spec pseudo-code, scanning everything. window 0 = HF. */
static int brute(const int32_t *s, int L, int n, int window, const int32_t *white, int n_white, int32_t *out) {
    int cnt = 0;
    if (L < n - 1 || (window > 0 && L < n)) return 0;
    int i0 = window > 0 ? (L - window > 0 ? L - window : 0) : 0;
    for (int i = i0; i <= L - n; i++) {
        if (memcmp(s + i, s + L - n + 1, (size_t)(n - 1) * sizeof *s)) continue;
        int32_t t = s[i + n - 1];
        int dup = 0;
        for (int j = 0; j < cnt; j++) dup |= out[j] == t;
        for (int j = 0; j < n_white; j++) dup |= white[j] == t;
        if (!dup) out[cnt++] = t;
    }
    qsort(out, (size_t)cnt, sizeof *out, cmp_i32);
    return cnt;
}

static void random_cases(void) {
    uint64_t rng = 42;
    enum { MAXL = 600 };
    int32_t seq[MAXL], want[MAXL], got[MAXL];
    int mismatches = 0, total_bans = 0, runs = 0;
    for (int run = 0; run < 400; run++) {
        int n = 1 + (int)(tu_rand_u64(&rng) % 7);
        int alphabet = 2 + (int)(tu_rand_u64(&rng) % 4);
        int window = (run % 3 == 0) ? 0 : 1 + (int)(tu_rand_u64(&rng) % 40);
        if (window > 0 && n == 1) n = 2;   /* vLLM's python slices differ for n = 1; unused */
        int32_t white[2] = {0, 1};
        int n_white = (int)(tu_rand_u64(&rng) % 3);
        int L = 50 + (int)(tu_rand_u64(&rng) % (MAXL - 50));
        ds_ngram *g;
        dsocr_error err;
        CHECK(ds_ngram_new(n, window, white, n_white, L, &g, &err) == DSOCR_OK);
        for (int rep = 0; rep < 2; rep++) {   /* second pass checks reset */
            ds_ngram_reset(g);
            for (int i = 0; i < L; i++) {
                // runs and short cycles, like a looping model
                seq[i] = (i > 3 && tu_rand_uniform(&rng) < 0.6) ? seq[i - 1 - (int)(tu_rand_u64(&rng) % 3)]
                                                               : (int32_t)(tu_rand_u64(&rng) % (uint64_t)alphabet);
                CHECK(ds_ngram_push(g, seq[i], &err) == DSOCR_OK);
                const int32_t *b;
                int nb = ds_ngram_banned(g, &b);
                memcpy(got, b, (size_t)nb * sizeof *b);
                qsort(got, (size_t)nb, sizeof *got, cmp_i32);
                int nw = brute(seq, i + 1, n, window, white, n_white, want);
                total_bans += nw;
                if (nb != nw || memcmp(got, want, (size_t)nb * sizeof *got)) {
                    if (mismatches++ < 5)
                        CHECK_MSG(0, "run %d n %d window %d white %d at L=%d: %d banned, want %d", run, n, window, n_white, i + 1, nb, nw);
                }
            }
        }
        CHECK(ds_ngram_push(g, 0, &err) == DSOCR_ERR_LIMIT);   /* past max_len */
        ds_ngram_free(g);
        runs++;
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK(total_bans > 10000);   /* the random sequences really exercise the bans */
    printf("n-gram brute force: %d runs, %d banned ids compared\n", runs, total_bans);
}

static void bad_args(void) {
    ds_ngram *g = NULL;
    dsocr_error err;
    CHECK_EQ_INT(ds_ngram_new(0, 0, NULL, 0, 10, &g, &err), DSOCR_ERR_INVALID_ARG);
    CHECK(g == NULL && strstr(err.message, "size 0"));
    CHECK_EQ_INT(ds_ngram_new(3, -1, NULL, 0, 10, &g, &err), DSOCR_ERR_INVALID_ARG);
    CHECK_EQ_INT(ds_ngram_new(3, 0, NULL, 2, 10, &g, &err), DSOCR_ERR_INVALID_ARG);
    CHECK_EQ_INT(ds_ngram_new(3, 0, NULL, 0, 0, &g, &err), DSOCR_ERR_INVALID_ARG);
}

int main(void) {
    hand_cases();
    random_cases();
    bad_args();
    return tu_done("test_decoder_ngram");
}
