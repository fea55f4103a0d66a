/* Loading a Hugging Face tokenizer.json (+ tokenizer_config.json) into a
 * ds_tokenizer: vocabulary and merges into hash tables, added tokens into
 * byte tries, the pre-tokenizer into compiled PCRE2 steps, and the decoded
 * bytes of every token precomputed. Anything we cannot reproduce exactly is
 * rejected with DSOCR_ERR_UNSUPPORTED naming the component. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text/tokenizer_internal.h"
#include "text/utf8.h"

/* GPT-2's pre-tokenizer regex, used by ByteLevel when use_regex is true. */
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- small JSON helpers ----------------------------------------------------------- */

static const char *type_name(const cJSON *obj) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static int json_bool(const cJSON *obj, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

static int json_is_null_or_absent(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return !v || cJSON_IsNull(v);
}

/* A JSON integer in [0, DS_TOK_MAX_ID). */
static int json_id(const cJSON *v, int32_t *id) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d < DS_TOK_MAX_ID) || d != (double)(int32_t)d) return 0;
    *id = (int32_t)d;
    return 1;
}

/* ---- added-token tries ---------------------------------------------------------------- */

static int32_t trie_new_node(ds_trie *t, uint8_t byte) {
    if (t->n == t->cap) {
        size_t c = t->cap ? t->cap * 2 : 256;
        ds_trie_node *q = realloc(t->nodes, c * sizeof *q);
        if (!q) return -1;
        t->nodes = q;
        t->cap = c;
    }
    t->nodes[t->n] = (ds_trie_node){-1, -1, -1, byte};
    return (int32_t)t->n++;
}

static dsocr_status trie_insert(ds_trie *t, const char *s, size_t len, int32_t token, dsocr_error *err) {
    if (t->n == 0 && trie_new_node(t, 0) < 0) goto nomem;   /* root */
    int32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)s[i];
        int32_t c = t->nodes[node].first_child;
        while (c >= 0 && t->nodes[c].byte != b) c = t->nodes[c].next_sibling;
        if (c < 0) {
            c = trie_new_node(t, b);
            if (c < 0) goto nomem;
            t->nodes[c].next_sibling = t->nodes[node].first_child;
            t->nodes[node].first_child = c;
        }
        node = c;
    }
    t->nodes[node].token = token;      /* a later token with the same content wins, as in HF */
    t->first_byte[(uint8_t)s[0]] = 1;
    return DSOCR_OK;
nomem:
    return ds_fail(err, DSOCR_ERR_NOMEM, "tokenizer: out of memory building the added-token trie");
}

/* ---- components we accept --------------------------------------------------------------- */

/* Only normalizers that change nothing: null or (nested) empty Sequences. */
static dsocr_status check_normalizer(const ds_tokenizer *tok, const cJSON *n, dsocr_error *err) {
    if (!n || cJSON_IsNull(n)) return DSOCR_OK;
    const char *type = type_name(n);
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        const cJSON *it;
        cJSON_ArrayForEach(it, list) DS_TRY(check_normalizer(tok, it, err));
        return DSOCR_OK;
    }
    return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: normalizer \"%s\" is not supported (only none)",
                   tok->name, type ? type : "?");
}

static dsocr_status add_step(ds_tokenizer *tok, ds_pretok_step step, dsocr_error *err) {
    ds_pretok_step *q = realloc(tok->steps, (tok->n_steps + 1) * sizeof *q);
    if (!q) {
        if (step.re) pcre2_code_free(step.re);
        return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", tok->name);
    }
    tok->steps = q;
    tok->steps[tok->n_steps++] = step;
    return DSOCR_OK;
}

static dsocr_status parse_behavior(const ds_tokenizer *tok, const cJSON *b, ds_split_behavior *out, dsocr_error *err) {
    static const struct { const char *name; ds_split_behavior b; } names[] = {
        {"Removed", DS_SPLIT_REMOVED}, {"Isolated", DS_SPLIT_ISOLATED},
        {"MergedWithPrevious", DS_SPLIT_MERGED_WITH_PREVIOUS}, {"MergedWithNext", DS_SPLIT_MERGED_WITH_NEXT},
        {"Contiguous", DS_SPLIT_CONTIGUOUS},
    };
    if (cJSON_IsString(b))
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcmp(b->valuestring, names[i].name) == 0) { *out = names[i].b; return DSOCR_OK; }
    return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: pre_tokenizer Split behavior \"%s\" is not supported",
                   tok->name, cJSON_IsString(b) ? b->valuestring : "?");
}

static dsocr_status parse_pretokenizer(ds_tokenizer *tok, const cJSON *p, dsocr_error *err) {
    const char *type = type_name(p);
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers")) DS_TRY(parse_pretokenizer(tok, it, err));
        return DSOCR_OK;
    }
    if (tok->n_steps > 0 && tok->steps[tok->n_steps - 1].is_byte_level)
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: pre_tokenizer \"%s\" after ByteLevel is not supported",
                       tok->name, type ? type : "?");
    if (type && strcmp(type, "Split") == 0) {
        ds_pretok_step st = {0};
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String");
        const cJSON *src = cJSON_IsString(re) ? re : lit;
        if (!cJSON_IsString(src))
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: pre_tokenizer Split has no Regex or String pattern", tok->name);
        DS_TRY(parse_behavior(tok, cJSON_GetObjectItemCaseSensitive(p, "behavior"), &st.behavior, err));
        st.invert = json_bool(p, "invert", 0);
        char what[256];
        snprintf(what, sizeof what, "%s: pre_tokenizer Split pattern %zu", tok->name, tok->n_steps);
        DS_TRY(ds_pretok_compile(src->valuestring, strlen(src->valuestring), src == lit, what, &st.re, err));
        return add_step(tok, st, err);
    }
    if (type && strcmp(type, "ByteLevel") == 0) {
        ds_pretok_step st = {.is_byte_level = 1, .behavior = DS_SPLIT_ISOLATED};
        st.add_prefix_space = json_bool(p, "add_prefix_space", 1);
        if (json_bool(p, "use_regex", 1)) {
            char what[256];
            snprintf(what, sizeof what, "%s: ByteLevel regex", tok->name);
            DS_TRY(ds_pretok_compile(GPT2_REGEX, sizeof GPT2_REGEX - 1, 0, what, &st.re, err));
        }
        return add_step(tok, st, err);
    }
    return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: pre_tokenizer \"%s\" is not supported (Split, ByteLevel, Sequence)",
                   tok->name, type ? type : "?");
}

static dsocr_status check_decoder(const ds_tokenizer *tok, const cJSON *d, dsocr_error *err) {
    const char *type = d && !cJSON_IsNull(d) ? type_name(d) : "null";
    if (type && strcmp(type, "ByteLevel") == 0) return DSOCR_OK;
    return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: decoder \"%s\" is not supported (only ByteLevel)",
                   tok->name, type ? type : "?");
}

/* The post-processor only acts when special tokens are added, which dsocr does
 * by hand (BOS), so the common ones are accepted and ignored. */
static dsocr_status check_post_processor(const ds_tokenizer *tok, const cJSON *p, dsocr_error *err) {
    if (!p || cJSON_IsNull(p)) return DSOCR_OK;
    const char *type = type_name(p);
    static const char *ok[] = {"ByteLevel", "TemplateProcessing", "Sequence"};
    for (size_t i = 0; type && i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(type, ok[i]) == 0) return DSOCR_OK;
    return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: post_processor \"%s\" is not supported",
                   tok->name, type ? type : "?");
}

/* ---- model ------------------------------------------------------------------------------ */

static dsocr_status check_model(ds_tokenizer *tok, const cJSON *model, dsocr_error *err) {
    if (!cJSON_IsObject(model)) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: no \"model\" object", tok->name);
    const char *type = type_name(model);
    if (type ? strcmp(type, "BPE") != 0 : !cJSON_GetObjectItemCaseSensitive(model, "merges"))
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: model type \"%s\" is not supported (only BPE)",
                       tok->name, type ? type : "?");
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", tok->name);
    if (json_bool(model, "byte_fallback", 0))
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: BPE byte_fallback is not supported", tok->name);
    static const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(model, affixes[i]);
        if (!json_is_null_or_absent(model, affixes[i]) && !(cJSON_IsString(a) && a->valuestring[0] == 0))
            return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "%s: BPE %s is not supported", tok->name, affixes[i]);
    }
    tok->fuse_unk = json_bool(model, "fuse_unk", 0);
    tok->ignore_merges = json_bool(model, "ignore_merges", 0);
    return DSOCR_OK;
}

/* Splits merge number i into its two token strings (either "a b" or ["a", "b"]). */
static dsocr_status merge_parts(const ds_tokenizer *tok, const cJSON *m, size_t i,
                                const char **a, size_t *alen, const char **b, size_t *blen, dsocr_error *err) {
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: model.merges[%zu] \"%s\" is not two tokens separated by one space",
                           tok->name, i, s);
        *a = s; *alen = (size_t)(sp - s);
        *b = sp + 1; *blen = strlen(sp + 1);
        return DSOCR_OK;
    }
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
        *a = m->child->valuestring; *alen = strlen(*a);
        *b = m->child->next->valuestring; *blen = strlen(*b);
        return DSOCR_OK;
    }
    return ds_fail(err, DSOCR_ERR_FORMAT, "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", tok->name, i);
}

/* A vocabulary whose multi-character tokens no merge produces cannot encode them: the
 * merges list is missing or truncated. Real files leave a few (their special tokens,
 * also added tokens); ignore_merges tokenizers match whole words from the vocab. */
static dsocr_status check_merges_cover_vocab(const ds_tokenizer *tok, const cJSON *vocab, const uint8_t *produced,
                                             size_t n_merges, dsocr_error *err) {
    if (tok->ignore_merges || !cJSON_IsObject(vocab)) return DSOCR_OK;
    size_t n_vocab = 0, orphans = 0;
    const char *first = NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        n_vocab++;
        const char *t = it->string;
        size_t len = strlen(t), need;
        if (ds_utf8_seq((const uint8_t *)t, len, &need) == len) continue;   /* one character */
        int32_t id = ds_strmap_get(&tok->vocab, t, len);
        if (id < 0 || id >= tok->n_ids || produced[id] || ds_strmap_get(&tok->added_map, t, len) >= 0) continue;
        if (!first) first = t;
        orphans++;
    }
    if (orphans == 0 || (n_merges > 0 && orphans * 100 <= n_vocab)) return DSOCR_OK;
    return ds_fail(err, DSOCR_ERR_FORMAT,
                   "%s: model.merges has %zu entries, but %zu of the %zu vocab tokens (first \"%.40s\") are made by "
                   "no merge: the merges list is missing or truncated", tok->name, n_merges, orphans, n_vocab, first);
}

static dsocr_status load_merges(ds_tokenizer *tok, const cJSON *merges, const cJSON *vocab, dsocr_error *err) {
    if (!cJSON_IsArray(merges)) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: model.merges is not an array", tok->name);
    size_t n = (size_t)cJSON_GetArraySize(merges);
    DS_TRY(ds_bpe_init_merges(tok, n, err));
    uint8_t *produced = calloc(tok->n_ids > 0 ? (size_t)tok->n_ids : 1, 1);   /* [n_ids] made by a merge */
    if (!produced) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", tok->name);
    char *joined = NULL;
    size_t joined_cap = 0, i = 0;
    dsocr_status st = DSOCR_OK;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        if ((st = merge_parts(tok, m, i, &a, &alen, &b, &blen, err))) break;
        int32_t ia = ds_strmap_get(&tok->vocab, a, alen), ib = ds_strmap_get(&tok->vocab, b, blen);
        if (ia < 0 || ib < 0) {
            st = ds_fail(err, DSOCR_ERR_FORMAT, "%s: model.merges[%zu]: token \"%.*s\" is not in the vocab",
                         tok->name, i, (int)(ia < 0 ? alen : blen), ia < 0 ? a : b);
            break;
        }
        if (alen + blen > joined_cap) {
            joined_cap = (alen + blen) * 2;
            char *q = realloc(joined, joined_cap);
            if (!q) { st = ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", tok->name); break; }
            joined = q;
        }
        memcpy(joined, a, alen);
        memcpy(joined + alen, b, blen);
        int32_t id = ds_strmap_get(&tok->vocab, joined, alen + blen);
        if (id < 0) {
            st = ds_fail(err, DSOCR_ERR_FORMAT, "%s: model.merges[%zu]: merged token \"%.*s\" is not in the vocab",
                         tok->name, i, (int)(alen + blen), joined);
            break;
        }
        if ((st = ds_bpe_add_merge(tok, ia, ib, (int32_t)i, id, err))) break;
        if (id < tok->n_ids) produced[id] = 1;
        i++;
    }
    free(joined);
    if (st == DSOCR_OK) st = check_merges_cover_vocab(tok, vocab, produced, n, err);
    free(produced);
    return st;
}

/* ---- the whole file ---------------------------------------------------------------------- */

/* Token string arena: every vocab key and added-token content, NUL-separated. */
static dsocr_status fill_strings(ds_tokenizer *tok, const cJSON *vocab, const cJSON *added, dsocr_error *err) {
    size_t total = 1, n_vocab = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) { total += strlen(it->string) + 1; n_vocab++; }
    cJSON_ArrayForEach(it, added) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (cJSON_IsString(c)) total += strlen(c->valuestring) + 1;
    }
    tok->strings = malloc(total);
    tok->decoded = malloc(total);
    if (!tok->strings || !tok->decoded) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory for %zu bytes of tokens", tok->name, total);
    DS_TRY(ds_strmap_init(&tok->vocab, n_vocab, err));

    /* vocabulary */
    size_t pos = 0;
    int32_t max_id = -1;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id;
        if (!json_id(it, &id))
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: model.vocab[\"%s\"] is not an id in [0, %d)", tok->name, it->string, DS_TOK_MAX_ID);
        size_t len = strlen(it->string);
        char *s = tok->strings + pos;
        memcpy(s, it->string, len + 1);
        pos += len + 1;
        int32_t old;
        int r = ds_strmap_put(&tok->vocab, s, len, id, &old);
        if (r < 0) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", tok->name);
        if (r == 1) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: model.vocab has \"%s\" twice", tok->name, s);
        if (id > max_id) max_id = id;
    }

    /* added tokens */
    size_t n_added = (size_t)cJSON_GetArraySize(added);
    tok->added = calloc(n_added ? n_added : 1, sizeof *tok->added);
    if (!tok->added) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", tok->name);
    DS_TRY(ds_strmap_init(&tok->added_map, n_added, err));
    size_t k = 0;
    cJSON_ArrayForEach(it, added) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "content");
        int32_t id;
        if (!cJSON_IsString(c) || !json_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &id))
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: added_tokens[%zu] needs a string \"content\" and an integer \"id\"", tok->name, k);
        size_t len = strlen(c->valuestring);
        if (len == 0) { k++; continue; }          /* HF ignores empty added tokens */
        char *s = tok->strings + pos;
        memcpy(s, c->valuestring, len + 1);
        pos += len + 1;
        ds_added_token *a = &tok->added[tok->n_added++];
        *a = (ds_added_token){s, (uint32_t)len, id, (uint8_t)json_bool(it, "special", 0), (uint8_t)json_bool(it, "normalized", 1),
                              (uint8_t)json_bool(it, "lstrip", 0), (uint8_t)json_bool(it, "rstrip", 0),
                              (uint8_t)json_bool(it, "single_word", 0)};
        int32_t old;
        int r = ds_strmap_put(&tok->added_map, s, len, id, &old);
        if (r < 0) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", tok->name);
        if (r == 1) {  /* same content twice: the later id wins, as in HF */
            for (size_t i = 0; i < tok->added_map.cap; i++)
                if (tok->added_map.slots[i].key && tok->added_map.slots[i].len == len &&
                    memcmp(tok->added_map.slots[i].key, s, len) == 0) tok->added_map.slots[i].value = id;
        }
        DS_TRY(trie_insert(a->normalized ? &tok->trie_norm : &tok->trie_raw, s, len, (int32_t)(tok->n_added - 1), err));
        if (id > max_id) max_id = id;
        k++;
    }
    tok->n_ids = max_id + 1;
    return DSOCR_OK;
}

/* Per-id token string, decoded bytes (ByteLevel decoder: a token whose chars
 * are all in the byte alphabet gives those bytes, any other its own UTF-8),
 * and the special flag (the string is a special added token's content). */
static dsocr_status fill_info(ds_tokenizer *tok, dsocr_error *err) {
    tok->info = calloc(tok->n_ids ? (size_t)tok->n_ids : 1, sizeof *tok->info);
    if (!tok->info) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory for %d ids", tok->name, tok->n_ids);
    for (size_t i = 0; i < tok->vocab.cap; i++) {
        const ds_strmap_slot *s = &tok->vocab.slots[i];
        if (s->key) { tok->info[s->value].str = s->key; tok->info[s->value].str_len = s->len; }
    }
    for (size_t i = 0; i < tok->n_added; i++) {
        const ds_added_token *a = &tok->added[i];
        tok->info[a->id].str = a->content;
        tok->info[a->id].str_len = a->len;
    }

    ds_strmap specials;
    DS_TRY(ds_strmap_init(&specials, tok->n_added, err));
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].special && ds_strmap_put(&specials, tok->added[i].content, tok->added[i].len, 1, NULL) < 0) {
            ds_strmap_free(&specials);
            return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", tok->name);
        }

    uint32_t byte_char[256];
    int16_t char_byte[512];   /* the alphabet's code points are all < 512 */
    ds_byte_level_map(byte_char);
    for (int i = 0; i < 512; i++) char_byte[i] = -1;
    for (int b = 0; b < 256; b++) char_byte[byte_char[b]] = (int16_t)b;

    size_t pos = 0;
    for (int32_t id = 0; id < tok->n_ids; id++) {
        ds_token_info *t = &tok->info[id];
        if (!t->str) continue;
        t->special = ds_strmap_get(&specials, t->str, t->str_len) >= 0;
        const uint8_t *s = (const uint8_t *)t->str;
        size_t i = 0, o = 0, need;
        int all_mapped = 1;
        while (i < t->str_len) {
            size_t l = ds_utf8_seq(s + i, t->str_len - i, &need);
            uint32_t cp = l ? ds_utf8_decode(s + i, l) : 0xFFFFFFFFu;
            if (!l || cp >= 512 || char_byte[cp] < 0) { all_mapped = 0; break; }
            tok->decoded[pos + o++] = (uint8_t)char_byte[cp];
            i += l;
        }
        if (!all_mapped) { memcpy(tok->decoded + pos, s, t->str_len); o = t->str_len; }
        t->dec_off = (uint32_t)pos;
        t->dec_len = (uint32_t)o;
        pos += o;
    }
    ds_strmap_free(&specials);

    /* the single-byte tokens BPE starts from */
    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        size_t l = ds_utf8_encode(byte_char[b], u);
        tok->byte_id[b] = ds_strmap_get(&tok->vocab, (const char *)u, l);
    }
    return DSOCR_OK;
}

/* tokenizer_config.json: bos/eos/pad tokens (string or {"content": ...}), add_bos/eos. */
static int32_t config_token(const ds_tokenizer *tok, const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v)) return -1;
    return ds_tokenizer_token_to_id(tok, v->valuestring, strlen(v->valuestring));
}

static cJSON *parse_json(const char *text, size_t len, const char *name, dsocr_error *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        ds_fail(err, DSOCR_ERR_FORMAT, "%s: not valid JSON (error near byte %zu)", name, at);
    }
    return root;
}

static dsocr_status build(ds_tokenizer *tok, const cJSON *root, const cJSON *cfg, dsocr_error *err) {
    if (!cJSON_IsObject(root)) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: top level is not an object", tok->name);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    DS_TRY(check_model(tok, model, err));
    DS_TRY(check_normalizer(tok, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), err));
    DS_TRY(check_decoder(tok, cJSON_GetObjectItemCaseSensitive(root, "decoder"), err));
    DS_TRY(check_post_processor(tok, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), err));
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (pre && !cJSON_IsNull(pre)) DS_TRY(parse_pretokenizer(tok, pre, err));
    if (tok->n_steps == 0 || !tok->steps[tok->n_steps - 1].is_byte_level)
        return ds_fail(err, DSOCR_ERR_UNSUPPORTED,
                       "%s: pre_tokenizer must end with ByteLevel (only byte-level BPE is supported)", tok->name);

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) return ds_fail(err, DSOCR_ERR_FORMAT, "%s: model.vocab is not an object", tok->name);
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return ds_fail(err, DSOCR_ERR_FORMAT, "%s: added_tokens is not an array", tok->name);
    DS_TRY(fill_strings(tok, vocab, cJSON_IsArray(added) ? added : NULL, err));
    DS_TRY(fill_info(tok, err));
    for (size_t i = 0; i < tok->n_added && !tok->word_re; i++)
        if (tok->added[i].single_word) {
            /* Rust regex \w, which HF uses for single_word */
            static const char word[] = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]";
            DS_TRY(ds_pretok_compile(word, sizeof word - 1, 0, "single_word", &tok->word_re, err));
        }
    DS_TRY(load_merges(tok, cJSON_GetObjectItemCaseSensitive(model, "merges"), vocab, err));

    tok->unk_id = -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk)) {
        tok->unk_id = ds_strmap_get(&tok->vocab, unk->valuestring, strlen(unk->valuestring));
        if (tok->unk_id < 0)
            return ds_fail(err, DSOCR_ERR_FORMAT, "%s: model.unk_token \"%s\" is not in the vocab", tok->name, unk->valuestring);
    }

    tok->bos_id = tok->eos_id = tok->pad_id = -1;
    if (cfg) {
        tok->bos_id = config_token(tok, cfg, "bos_token");
        tok->eos_id = config_token(tok, cfg, "eos_token");
        tok->pad_id = config_token(tok, cfg, "pad_token");
        tok->add_bos = json_bool(cfg, "add_bos_token", 0);
        tok->add_eos = json_bool(cfg, "add_eos_token", 0);
    }

    /* encode scratch */
    tok->md = pcre2_match_data_create(1, NULL);
    tok->mctx = pcre2_match_context_create(NULL);
    tok->jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!tok->md || !tok->mctx || !tok->jit_stack) return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", tok->name);
    pcre2_jit_stack_assign(tok->mctx, NULL, tok->jit_stack);
    return DSOCR_OK;
}

dsocr_status ds_tokenizer_load_memory(const char *json, size_t json_len, const char *config, size_t config_len,
                                      const char *name, ds_tokenizer **out, dsocr_error *err) {
    *out = NULL;
    if (!json) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "tokenizer: no tokenizer.json data");
    if (!name) name = "tokenizer.json";
    ds_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok || !(tok->name = strdup(name))) {
        free(tok);
        return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory", name);
    }
    cJSON *root = parse_json(json, json_len, name, err);
    cJSON *cfg = NULL;
    dsocr_status st = root ? DSOCR_OK : (err ? err->code : DSOCR_ERR_FORMAT);
    if (!st && config) {
        char cfg_name[1100];
        snprintf(cfg_name, sizeof cfg_name, "%s (tokenizer_config.json)", name);
        cfg = parse_json(config, config_len, cfg_name, err);
        if (!cfg) st = err ? err->code : DSOCR_ERR_FORMAT;
    }
    if (!st) st = build(tok, root, cfg, err);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    if (st) {
        ds_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return DSOCR_OK;
}

/* ---- from files ------------------------------------------------------------------------- */

static dsocr_status read_file(const char *path, char **data, size_t *size, dsocr_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ds_fail(err, DSOCR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *q = realloc(buf, cap);
            if (!q) { free(buf); fclose(f); return ds_fail(err, DSOCR_ERR_NOMEM, "%s: out of memory reading", path); }
            buf = q;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return ds_fail(err, DSOCR_ERR_IO, "%s: read error", path); }
    *data = buf;
    *size = n;
    return DSOCR_OK;
}

dsocr_status ds_tokenizer_load(const char *path, ds_tokenizer **out, dsocr_error *err) {
    *out = NULL;
    if (!path) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "tokenizer: no path");
    struct stat sb;
    if (stat(path, &sb) != 0) return ds_fail(err, DSOCR_ERR_IO, "%s: %s", path, strerror(errno));
    size_t plen = strlen(path);
    char *json_path = malloc(plen + 32), *cfg_path = malloc(plen + 32);
    if (!json_path || !cfg_path) { free(json_path); free(cfg_path); return ds_fail(err, DSOCR_ERR_NOMEM, "out of memory"); }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(json_path, plen + 32, "%s/tokenizer.json", path);
        snprintf(cfg_path, plen + 32, "%s/tokenizer_config.json", path);
    } else {
        memcpy(json_path, path, plen + 1);
        memcpy(cfg_path, path, plen + 1);
        char *slash = strrchr(cfg_path, '/');
        strcpy(slash ? slash + 1 : cfg_path, "tokenizer_config.json");
    }
    char *json = NULL, *cfg = NULL;
    size_t json_len = 0, cfg_len = 0;
    dsocr_status st = read_file(json_path, &json, &json_len, err);
    if (!st && access(cfg_path, F_OK) == 0) st = read_file(cfg_path, &cfg, &cfg_len, err);
    if (!st) st = ds_tokenizer_load_memory(json, json_len, cfg, cfg_len, json_path, out, err);
    free(json); free(cfg); free(json_path); free(cfg_path);
    return st;
}
