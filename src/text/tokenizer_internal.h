/* Internals of the tokenizer shared by its .c files (load, pre-tokenizer, BPE,
 * encode/decode). Not part of any public interface. */
#ifndef DS_TEXT_TOKENIZER_INTERNAL_H
#define DS_TEXT_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/status.h"
#include "text/tokenizer.h"

#define DS_TOK_MAX_ID (1 << 24)     /* ids above this are rejected as malformed */

/* ---- string -> int32 hash map (open addressing, keys not owned) ------------ */
typedef struct ds_strmap_slot {
    const char *key;    /* NULL = empty */
    uint32_t len, hash;
    int32_t value;
} ds_strmap_slot;

typedef struct ds_strmap {
    ds_strmap_slot *slots;
    size_t cap, count;  /* cap is a power of two */
} ds_strmap;

uint32_t ds_hash_bytes(const void *data, size_t len);
dsocr_status ds_strmap_init(ds_strmap *m, size_t expected, dsocr_error *err);
/* Inserts key -> value; returns 0 when inserted, 1 when the key was present
 * (its value is left unchanged and written to *old). */
int ds_strmap_put(ds_strmap *m, const char *key, size_t len, int32_t value, int32_t *old);
int32_t ds_strmap_get(const ds_strmap *m, const char *key, size_t len);   /* -1 if absent */
void ds_strmap_free(ds_strmap *m);

/* ---- added tokens -------------------------------------------------------- */
typedef struct ds_added_token {
    const char *content;
    uint32_t len;
    int32_t id;
    uint8_t special, normalized, lstrip, rstrip, single_word;
} ds_added_token;

/* Byte trie over added-token contents: leftmost-longest matching as HF's
 * Aho-Corasick (MatchKind::LeftmostLongest) does. Children are a linked list. */
typedef struct ds_trie_node {
    int32_t first_child, next_sibling;
    int32_t token;      /* index into tok->added, -1 when no token ends here */
    uint8_t byte;
} ds_trie_node;

typedef struct ds_trie {
    ds_trie_node *nodes;
    size_t n, cap;
    uint8_t first_byte[256];    /* 1 when some token starts with this byte */
} ds_trie;

/* ---- pre-tokenizer ------------------------------------------------------- */
typedef enum ds_split_behavior {
    DS_SPLIT_REMOVED, DS_SPLIT_ISOLATED, DS_SPLIT_MERGED_WITH_PREVIOUS,
    DS_SPLIT_MERGED_WITH_NEXT, DS_SPLIT_CONTIGUOUS
} ds_split_behavior;

typedef struct ds_pretok_step {
    int is_byte_level;          /* 0: Split */
    pcre2_code *re;             /* Split pattern, or ByteLevel's GPT-2 regex when use_regex */
    ds_split_behavior behavior;
    int invert;
    int add_prefix_space;       /* ByteLevel */
} ds_pretok_step;

/* A piece of the text being pre-tokenized: a byte range of tok->work. */
typedef struct ds_piece {
    size_t off, len;
} ds_piece;

/* ---- BPE ----------------------------------------------------------------- */
typedef struct ds_merge_slot {
    uint64_t key;       /* (left id << 32) | right id; UINT64_MAX = empty */
    int32_t rank, new_id;
} ds_merge_slot;

typedef struct ds_bpe_symbol {
    int32_t id;
    int32_t prev, next;         /* -1 = none */
    int32_t alive;
} ds_bpe_symbol;

typedef struct ds_bpe_merge {   /* heap entry: smallest rank, then leftmost */
    int32_t rank, pos, new_id;
} ds_bpe_merge;

/* Cache: piece bytes -> ids, cleared when it fills up. */
typedef struct ds_bpe_cache_slot {
    uint32_t hash, key_len;     /* key_len 0 = empty (empty pieces are never cached) */
    size_t key_off, ids_off;
    uint32_t n_ids;
} ds_bpe_cache_slot;

typedef struct ds_bpe_cache {
    ds_bpe_cache_slot *slots;
    size_t cap, count;
    char *keys; size_t keys_len, keys_cap;
    int32_t *ids; size_t ids_len, ids_cap;
} ds_bpe_cache;

/* ---- the tokenizer ------------------------------------------------------- */
typedef struct ds_token_info {
    const char *str;            /* token string as stored (NULL: no token) */
    uint32_t str_len;
    uint32_t dec_off, dec_len;  /* decoded bytes in tok->decoded */
    uint8_t special;            /* its string is a special added token */
} ds_token_info;

struct ds_tokenizer {
    char *name;                 /* for error messages */
    char *strings;              /* every token string, NUL-separated */
    uint8_t *decoded;           /* decoded bytes of every token */

    int32_t n_ids;              /* largest id + 1 */
    ds_token_info *info;        /* [n_ids] */
    ds_strmap vocab;            /* BPE vocabulary: token string -> id */
    ds_strmap added_map;        /* added-token content -> id */

    ds_added_token *added;
    size_t n_added;
    ds_trie trie_raw, trie_norm;   /* normalized=false tokens, normalized=true tokens */
    pcre2_code *word_re;        /* \w, only when some added token is single_word */

    ds_pretok_step *steps;
    size_t n_steps;

    /* BPE model */
    ds_merge_slot *merges;
    size_t merges_cap, n_merges;
    int32_t byte_id[256];       /* vocab id of each single byte (byte-level char), -1 if none */
    int32_t unk_id;             /* -1 = no unk token */
    int fuse_unk, ignore_merges;

    int32_t bos_id, eos_id, pad_id;
    int add_bos, add_eos;

    /* encode scratch (not thread-safe) */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    char *work; size_t work_len, work_cap;
    ds_piece *pieces, *pieces2; size_t n_pieces, pieces_cap, pieces2_cap;
    ds_bpe_symbol *sym; size_t sym_cap;
    ds_bpe_merge *heap; size_t heap_cap;
    char *mapped; size_t mapped_cap;
    ds_bpe_cache cache;
};

/* GPT-2 byte <-> unicode map: byte b is written as code point byte_char[b]. */
void ds_byte_level_map(uint32_t byte_char[256]);

/* Pre-tokenizer (pretokenize.c): compiles a pattern; splits text[0..len) into
 * tok->pieces (offsets into tok->work). */
dsocr_status ds_pretok_compile(const char *pattern, size_t len, int literal, const char *what,
                               pcre2_code **out, dsocr_error *err);
dsocr_status ds_pretokenize(ds_tokenizer *tok, const char *text, size_t len, dsocr_error *err);

/* BPE (bpe.c) */
dsocr_status ds_bpe_add_merge(ds_tokenizer *tok, int32_t left, int32_t right, int32_t rank,
                              int32_t new_id, dsocr_error *err);
dsocr_status ds_bpe_init_merges(ds_tokenizer *tok, size_t n, dsocr_error *err);
dsocr_status ds_bpe_encode_piece(ds_tokenizer *tok, const uint8_t *piece, size_t len,
                                 ds_ids *ids, dsocr_error *err);
void ds_bpe_free(ds_tokenizer *tok);

#endif
