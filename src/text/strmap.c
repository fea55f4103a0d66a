/* String -> int32 hash map used for the vocabulary and the added tokens, and
 * the GPT-2 byte-level alphabet. */
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_internal.h"

/* 8 bytes at a time, multiply-xorshift mixing; good enough spread for token strings. */
uint32_t ds_hash_bytes(const void *data, size_t len) {
    const uint8_t *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (len * 0xff51afd7ed558ccdull);
    while (len >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        h = (h ^ k) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8; len -= 8;
    }
    uint64_t k = 0;
    for (size_t i = 0; i < len; i++) k |= (uint64_t)p[i] << (8 * i);
    h = (h ^ k) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

dsocr_status ds_strmap_init(ds_strmap *m, size_t expected, dsocr_error *err) {
    size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots) return ds_fail(err, DSOCR_ERR_NOMEM, "tokenizer: out of memory for a %zu-slot hash table", cap);
    m->cap = cap;
    m->count = 0;
    return DSOCR_OK;
}

static dsocr_status strmap_grow(ds_strmap *m) {
    ds_strmap bigger;
    if (ds_strmap_init(&bigger, m->cap, NULL)) return DSOCR_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        ds_strmap_slot *s = &m->slots[i];
        if (!s->key) continue;
        size_t j = s->hash & (bigger.cap - 1);
        while (bigger.slots[j].key) j = (j + 1) & (bigger.cap - 1);
        bigger.slots[j] = *s;
    }
    bigger.count = m->count;
    free(m->slots);
    *m = bigger;
    return DSOCR_OK;
}

int ds_strmap_put(ds_strmap *m, const char *key, size_t len, int32_t value, int32_t *old) {
    if ((m->count + 1) * 2 > m->cap && strmap_grow(m)) return -1;
    uint32_t h = ds_hash_bytes(key, len);
    size_t j = h & (m->cap - 1);
    for (;;) {
        ds_strmap_slot *s = &m->slots[j];
        if (!s->key) {
            *s = (ds_strmap_slot){key, (uint32_t)len, h, value};
            m->count++;
            return 0;
        }
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
            if (old) *old = s->value;
            return 1;
        }
        j = (j + 1) & (m->cap - 1);
    }
}

int32_t ds_strmap_get(const ds_strmap *m, const char *key, size_t len) {
    if (!m->cap) return -1;
    uint32_t h = ds_hash_bytes(key, len);
    size_t j = h & (m->cap - 1);
    for (;;) {
        const ds_strmap_slot *s = &m->slots[j];
        if (!s->key) return -1;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) return s->value;
        j = (j + 1) & (m->cap - 1);
    }
}

void ds_strmap_free(ds_strmap *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
 * other 68 bytes take code points 256, 257, ... in byte order. */
void ds_byte_level_map(uint32_t byte_char[256]) {
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_char[b] = printable ? (uint32_t)b : next++;
    }
}
