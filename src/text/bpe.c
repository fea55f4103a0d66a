/* BPE model: merge table, the merge loop of HF tokenizers (word.rs merge_all:
 * always apply the lowest-rank pair, leftmost first), and a piece cache. */
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_internal.h"
#include "text/utf8.h"

#define CACHE_SLOTS 16384           /* cleared when half full */
#define CACHE_MAX_PIECE 256         /* longer pieces are not cached */

/* ---- merge table: (left, right) -> (rank, new id) -------------------------- */

static uint64_t pair_key(int32_t l, int32_t r) { return ((uint64_t)(uint32_t)l << 32) | (uint32_t)r; }

static size_t pair_slot(uint64_t key, size_t cap) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

dsocr_status ds_bpe_init_merges(ds_tokenizer *tok, size_t n, dsocr_error *err) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    tok->merges = malloc(cap * sizeof *tok->merges);
    if (!tok->merges) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory for %zu merges", tok->name, n);
    for (size_t i = 0; i < cap; i++) tok->merges[i].key = UINT64_MAX;
    tok->merges_cap = cap;
    tok->n_merges = 0;
    return DSOCR_OK;
}

/* A repeated pair takes the later rank, as HF's HashMap collect does. */
dsocr_status ds_bpe_add_merge(ds_tokenizer *tok, int32_t left, int32_t right, int32_t rank,
                              int32_t new_id, dsocr_error *err) {
    if ((tok->n_merges + 1) * 2 > tok->merges_cap)
        return ds_fail(err, DSOCR_ERR_INTERNAL, "%s: merge table full", tok->name);
    uint64_t key = pair_key(left, right);
    size_t j = pair_slot(key, tok->merges_cap);
    while (tok->merges[j].key != UINT64_MAX && tok->merges[j].key != key) j = (j + 1) & (tok->merges_cap - 1);
    if (tok->merges[j].key == UINT64_MAX) tok->n_merges++;
    tok->merges[j] = (ds_merge_slot){key, rank, new_id};
    return DSOCR_OK;
}

static const ds_merge_slot *find_merge(const ds_tokenizer *tok, int32_t l, int32_t r) {
    uint64_t key = pair_key(l, r);
    size_t j = pair_slot(key, tok->merges_cap);
    for (;;) {
        const ds_merge_slot *s = &tok->merges[j];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
        j = (j + 1) & (tok->merges_cap - 1);
    }
}

/* ---- min-heap of candidate merges ------------------------------------------ */

static int merge_less(const ds_bpe_merge *a, const ds_bpe_merge *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(ds_bpe_merge *h, size_t *n, ds_bpe_merge m) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!merge_less(&m, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = m;
}

static ds_bpe_merge heap_pop(ds_bpe_merge *h, size_t *n) {
    ds_bpe_merge top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && merge_less(&h[c + 1], &h[c])) c++;
        if (!merge_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

/* ---- cache ------------------------------------------------------------------ */

static void cache_clear(ds_bpe_cache *c) {
    if (c->slots) memset(c->slots, 0, c->cap * sizeof *c->slots);
    c->count = c->keys_len = c->ids_len = 0;
}

static const ds_bpe_cache_slot *cache_get(const ds_bpe_cache *c, const uint8_t *key, size_t len, uint32_t h) {
    if (!c->slots) return NULL;
    size_t j = h & (c->cap - 1);
    for (;;) {
        const ds_bpe_cache_slot *s = &c->slots[j];
        if (!s->key_len) return NULL;
        if (s->hash == h && s->key_len == len && memcmp(c->keys + s->key_off, key, len) == 0) return s;
        j = (j + 1) & (c->cap - 1);
    }
}

/* Best effort: on allocation failure the piece is simply not cached. */
static void cache_put(ds_bpe_cache *c, const uint8_t *key, size_t len, uint32_t h, const int32_t *ids, size_t n) {
    if (!c->slots) {
        c->slots = calloc(CACHE_SLOTS, sizeof *c->slots);
        if (!c->slots) return;
        c->cap = CACHE_SLOTS;
    }
    if ((c->count + 1) * 2 > c->cap) cache_clear(c);
    if (c->keys_len + len > c->keys_cap) {
        size_t cap = c->keys_cap ? c->keys_cap * 2 : 65536;
        while (cap < c->keys_len + len) cap *= 2;
        char *p = realloc(c->keys, cap);
        if (!p) return;
        c->keys = p; c->keys_cap = cap;
    }
    if (c->ids_len + n > c->ids_cap) {
        size_t cap = c->ids_cap ? c->ids_cap * 2 : 16384;
        while (cap < c->ids_len + n) cap *= 2;
        int32_t *p = realloc(c->ids, cap * sizeof *p);
        if (!p) return;
        c->ids = p; c->ids_cap = cap;
    }
    size_t j = h & (c->cap - 1);
    while (c->slots[j].key_len) j = (j + 1) & (c->cap - 1);
    memcpy(c->keys + c->keys_len, key, len);
    memcpy(c->ids + c->ids_len, ids, n * sizeof *ids);
    c->slots[j] = (ds_bpe_cache_slot){h, (uint32_t)len, c->keys_len, c->ids_len, (uint32_t)n};
    c->keys_len += len;
    c->ids_len += n;
    c->count++;
}

/* ---- encoding one piece ------------------------------------------------------ */

static dsocr_status grow(void **p, size_t *cap, size_t need, size_t elem, const char *name, dsocr_error *err) {
    if (need <= *cap) return DSOCR_OK;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory for a %zu-byte piece", name, need);
    *p = q;
    *cap = c;
    return DSOCR_OK;
}

/* ignore_merges: a piece that is itself in the vocabulary is one token. */
static int32_t whole_piece_id(ds_tokenizer *tok, const uint8_t *piece, size_t len, dsocr_error *err) {
    if (grow((void **)&tok->mapped, &tok->mapped_cap, len * 2, 1, tok->name, err)) return -2;
    uint32_t byte_char[256];
    ds_byte_level_map(byte_char);
    size_t m = 0;
    for (size_t i = 0; i < len; i++) m += ds_utf8_encode(byte_char[piece[i]], (uint8_t *)tok->mapped + m);
    return ds_strmap_get(&tok->vocab, tok->mapped, m);
}

dsocr_status ds_bpe_encode_piece(ds_tokenizer *tok, const uint8_t *piece, size_t len,
                                 ds_ids *ids, dsocr_error *err) {
    if (len == 0) return DSOCR_OK;
    uint32_t h = ds_hash_bytes(piece, len);
    if (len <= CACHE_MAX_PIECE) {
        const ds_bpe_cache_slot *hit = cache_get(&tok->cache, piece, len, h);
        if (hit) {
            for (uint32_t i = 0; i < hit->n_ids; i++) DS_TRY(ds_ids_push(ids, tok->cache.ids[hit->ids_off + i], err));
            return DSOCR_OK;
        }
    }
    if (tok->ignore_merges) {
        int32_t id = whole_piece_id(tok, piece, len, err);
        if (id == -2) return err ? err->code : DSOCR_ERR_NOMEM;
        if (id >= 0) return ds_ids_push(ids, id, err);
    }

    /* one symbol per byte (the byte-level alphabet); unknown bytes become unk or vanish */
    DS_TRY(grow((void **)&tok->sym, &tok->sym_cap, len, sizeof *tok->sym, tok->name, err));
    DS_TRY(grow((void **)&tok->heap, &tok->heap_cap, 2 * len, sizeof *tok->heap, tok->name, err));
    ds_bpe_symbol *sym = tok->sym;
    int32_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = tok->byte_id[piece[i]];
        if (id < 0) {
            if (tok->unk_id < 0) continue;
            if (tok->fuse_unk && n > 0 && sym[n - 1].id == tok->unk_id) continue;
            id = tok->unk_id;
        }
        sym[n] = (ds_bpe_symbol){id, n - 1, n + 1, 1};
        n++;
    }
    if (n > 0) sym[n - 1].next = -1;

    /* initial candidate pairs */
    size_t hn = 0;
    for (int32_t i = 0; i + 1 < n; i++) {
        const ds_merge_slot *m = find_merge(tok, sym[i].id, sym[i + 1].id);
        if (m) heap_push(tok->heap, &hn, (ds_bpe_merge){m->rank, i, m->new_id});
    }
    /* Each merge pushes at most two entries and removes one symbol, so the heap
     * never exceeds 2 * len entries. */
    while (hn > 0) {
        ds_bpe_merge top = heap_pop(tok->heap, &hn);
        ds_bpe_symbol *cur = &sym[top.pos];
        if (!cur->alive || cur->next < 0) continue;
        ds_bpe_symbol *right = &sym[cur->next];
        const ds_merge_slot *m = find_merge(tok, cur->id, right->id);
        if (!m || m->new_id != top.new_id) continue;   /* stale entry */
        cur->id = top.new_id;
        right->alive = 0;
        cur->next = right->next;
        if (right->next >= 0) sym[right->next].prev = top.pos;
        if (cur->prev >= 0) {
            const ds_merge_slot *pm = find_merge(tok, sym[cur->prev].id, cur->id);
            if (pm) heap_push(tok->heap, &hn, (ds_bpe_merge){pm->rank, cur->prev, pm->new_id});
        }
        if (cur->next >= 0) {
            const ds_merge_slot *nm = find_merge(tok, cur->id, sym[cur->next].id);
            if (nm) heap_push(tok->heap, &hn, (ds_bpe_merge){nm->rank, top.pos, nm->new_id});
        }
    }

    size_t first = ids->n;
    for (int32_t i = 0; i < n; i++)
        if (sym[i].alive) DS_TRY(ds_ids_push(ids, sym[i].id, err));
    if (len <= CACHE_MAX_PIECE && ids->n > first)
        cache_put(&tok->cache, piece, len, h, ids->data + first, ids->n - first);
    return DSOCR_OK;
}

void ds_bpe_free(ds_tokenizer *tok) {
    free(tok->merges);
    free(tok->sym);
    free(tok->heap);
    free(tok->mapped);
    free(tok->cache.slots);
    free(tok->cache.keys);
    free(tok->cache.ids);
}
