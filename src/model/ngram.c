/* Incremental no-repeat n-gram tracker (see ngram.h).
 *
 * Two open-addressing hash tables over one token sequence:
 *   keys:  an (n-1)-gram, stored as the position of one occurrence in seq, with the
 *          head of a list of its followers;
 *   pairs: (key, follower token) -> count of n-grams (key, token) currently counted.
 * Windowed mode decrements the pair of the n-gram that slides out of the window;
 * pairs whose count fell to 0 are unlinked from their key's list lazily, the next
 * time that list is walked, so each walk costs O(live followers) amortised. */
#include "model/ngram.h"

#include <stdlib.h>
#include <string.h>

typedef struct ngram_key {
    int32_t pos;     /* start of one occurrence in seq; -1 = empty slot */
    uint32_t hash;
    int32_t head;    /* first pair of its follower list, -1 = none */
} ngram_key;

typedef struct ngram_pair {
    int32_t key;     /* index into keys */
    int32_t token;
    int32_t count;   /* n-grams (key, token) in the counted range */
    int32_t next;    /* next pair in the key's follower list */
    int32_t linked;  /* in its key's follower list */
} ngram_pair;

struct ds_ngram {
    int n, window, max_len, len;
    int32_t whitelist[DS_NGRAM_MAX_WHITELIST];
    int n_whitelist;
    int32_t *seq;          /* [max_len] */
    ngram_key *keys;       /* [cap] */
    int32_t *pair_slot;    /* [cap] index into pairs, -1 = empty */
    ngram_pair *pairs;     /* [max_len]: at most one new pair per pushed token */
    int n_pairs;
    uint32_t mask;         /* cap - 1 */
    int32_t *banned;       /* [max_len] */
};

static uint32_t mix32(uint32_t h) {
    h ^= h >> 16; h *= 0x7feb352du;
    h ^= h >> 15; h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}

static uint32_t hash_tokens(const int32_t *t, int n) {
    uint32_t h = 0x9e3779b9u;
    for (int i = 0; i < n; i++) h = mix32(h ^ (uint32_t)t[i]) + 0x9e3779b9u;
    return h;
}

void ds_ngram_free(ds_ngram *g) {
    if (!g) return;
    free(g->seq); free(g->keys); free(g->pair_slot); free(g->pairs); free(g->banned);
    free(g);
}

void ds_ngram_reset(ds_ngram *g) {
    g->len = 0;
    g->n_pairs = 0;
    for (uint32_t i = 0; i <= g->mask; i++) { g->keys[i].pos = -1; g->pair_slot[i] = -1; }
}

dsocr_status ds_ngram_new(int n, int window, const int32_t *whitelist, int n_whitelist,
                          int max_len, ds_ngram **out, dsocr_error *err) {
    *out = NULL;
    if (n < 1 || window < 0 || max_len < 1 || max_len > (1 << 28) ||
        n_whitelist < 0 || n_whitelist > DS_NGRAM_MAX_WHITELIST || (n_whitelist && !whitelist))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "n-gram ban: size %d, window %d, %d whitelist tokens (max %d), max length %d",
                       n, window, n_whitelist, DS_NGRAM_MAX_WHITELIST, max_len);
    ds_ngram *g = calloc(1, sizeof *g);
    if (!g) return ds_fail(err, DSOCR_ERR_NOMEM, "n-gram ban: out of memory");
    g->n = n; g->window = window; g->max_len = max_len;
    g->n_whitelist = n_whitelist;
    if (n_whitelist) memcpy(g->whitelist, whitelist, (size_t)n_whitelist * sizeof *whitelist);
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)max_len) cap <<= 1;   /* load factor <= 1/2 */
    g->mask = cap - 1;
    g->seq = malloc((size_t)max_len * sizeof *g->seq);
    g->keys = malloc(cap * sizeof *g->keys);
    g->pair_slot = malloc(cap * sizeof *g->pair_slot);
    g->pairs = malloc((size_t)max_len * sizeof *g->pairs);
    g->banned = malloc((size_t)max_len * sizeof *g->banned);
    if (!g->seq || !g->keys || !g->pair_slot || !g->pairs || !g->banned) {
        ds_ngram_free(g);
        return ds_fail(err, DSOCR_ERR_NOMEM, "n-gram ban: out of memory for %d tokens", max_len);
    }
    ds_ngram_reset(g);
    *out = g;
    return DSOCR_OK;
}

int ds_ngram_len(const ds_ngram *g) { return g->len; }

/* Slot of the (n-1)-gram starting at seq[pos]; creates it when `create`. -1 if absent. */
static int32_t find_key(ds_ngram *g, int pos, int create) {
    const int m = g->n - 1;
    uint32_t h = hash_tokens(g->seq + pos, m);
    for (uint32_t i = h & g->mask;; i = (i + 1) & g->mask) {
        ngram_key *k = &g->keys[i];
        if (k->pos < 0) {
            if (!create) return -1;
            k->pos = pos; k->hash = h; k->head = -1;
            return (int32_t)i;
        }
        if (k->hash == h && !memcmp(g->seq + k->pos, g->seq + pos, (size_t)m * sizeof *g->seq))
            return (int32_t)i;
    }
}

/* Pair (key, token), created with count 0 when `create`. -1 if absent. */
static int32_t find_pair(ds_ngram *g, int32_t key, int32_t token, int create) {
    uint32_t h = mix32((uint32_t)key * 0x9e3779b1u ^ mix32((uint32_t)token));
    for (uint32_t i = h & g->mask;; i = (i + 1) & g->mask) {
        int32_t p = g->pair_slot[i];
        if (p < 0) {
            if (!create) return -1;
            p = g->n_pairs++;
            g->pairs[p] = (ngram_pair){.key = key, .token = token, .count = 0, .next = -1, .linked = 0};
            g->pair_slot[i] = p;
            return p;
        }
        if (g->pairs[p].key == key && g->pairs[p].token == token) return p;
    }
}

/* Counts the n-gram starting at seq[start]. */
static void add_ngram(ds_ngram *g, int start) {
    int32_t key = find_key(g, start, 1);
    int32_t p = find_pair(g, key, g->seq[start + g->n - 1], 1);
    ngram_pair *pr = &g->pairs[p];
    if (pr->count++ == 0 && !pr->linked) {
        pr->next = g->keys[key].head;
        g->keys[key].head = p;
        pr->linked = 1;
    }
}

/* Stops counting the n-gram starting at seq[start] (it was counted). */
static void remove_ngram(ds_ngram *g, int start) {
    int32_t key = find_key(g, start, 0);
    int32_t p = key < 0 ? -1 : find_pair(g, key, g->seq[start + g->n - 1], 0);
    if (p >= 0 && g->pairs[p].count > 0) g->pairs[p].count--;
}

dsocr_status ds_ngram_push(ds_ngram *g, int32_t token, dsocr_error *err) {
    if (g->len >= g->max_len)
        return ds_fail(err, DSOCR_ERR_LIMIT, "n-gram ban: more than %d tokens", g->max_len);
    g->seq[g->len++] = token;
    const int L = g->len, n = g->n, W = g->window;
    // windows shorter than n hold no n-gram: nothing is ever banned
    if (W > 0 && W < n) return DSOCR_OK;
    // the n-gram ending at the new token enters; with a window, the one starting at
    // L-W-1 leaves (valid starts for length L are L-W .. L-n)
    if (L >= n) add_ngram(g, L - n);
    if (W > 0 && L - W - 1 >= 0) remove_ngram(g, L - W - 1);
    return DSOCR_OK;
}

static int whitelisted(const ds_ngram *g, int32_t t) {
    for (int i = 0; i < g->n_whitelist; i++)
        if (g->whitelist[i] == t) return 1;
    return 0;
}

int ds_ngram_banned(ds_ngram *g, const int32_t **out) {
    *out = g->banned;
    const int L = g->len, n = g->n;
    if (L < n - 1 || L == 0 || (g->window > 0 && g->window < n)) return 0;
    // the prefix is the last n-1 tokens; it sits in seq at L-n+1, so the key lookup can
    // compare in place (n == 1: the empty prefix, one key for everything)
    int32_t key = find_key(g, L - n + 1, 0);
    if (key < 0) return 0;
    int count = 0;
    int32_t *link = &g->keys[key].head;
    while (*link >= 0) {
        ngram_pair *pr = &g->pairs[*link];
        if (pr->count == 0) {          /* slid out of the window: unlink now */
            pr->linked = 0;
            *link = pr->next;
            continue;
        }
        if (!whitelisted(g, pr->token)) g->banned[count++] = pr->token;
        link = &pr->next;
    }
    return count;
}
