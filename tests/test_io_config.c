/* config.json: the golden tiny config and the real defaults; missing keys take
 * defaults; bad values are refused with the file and the key named. Cases are
 * made by editing the golden config with cJSON. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "test_util.h"

static char *golden_json;

/* Sets (or, with value NULL, deletes) the key at a dotted path, creating objects. */
static void set_key(cJSON *root, const char *path, const char *value) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    cJSON *obj = root;
    char *key = buf;
    for (char *dot; (dot = strchr(key, '.'));) {
        *dot = 0;
        cJSON *next = cJSON_GetObjectItemCaseSensitive(obj, key);
        if (!next) next = cJSON_AddObjectToObject(obj, key);
        obj = next;
        key = dot + 1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    if (value) cJSON_AddItemToObject(obj, key, cJSON_Parse(value));
}

/* Parses the golden config with up to two edits applied (path, value pairs). */
static dsocr_status parse_edited(ds_config *cfg, dsocr_error *e, const char *p1, const char *v1, const char *p2,
                                 const char *v2) {
    cJSON *root = cJSON_Parse(golden_json);
    if (p1) set_key(root, p1, v1);
    if (p2) set_key(root, p2, v2);
    char *text = cJSON_Print(root);
    dsocr_status s = ds_config_parse(text, strlen(text), "edited/config.json", cfg, e);
    if (getenv("TU_VERBOSE") && s) fprintf(stderr, "  %s\n", e->message);
    cJSON_free(text);
    cJSON_Delete(root);
    return s;
}

/* An LM key lives twice: edit both copies. */
static dsocr_status parse_lm_edit(ds_config *cfg, dsocr_error *e, const char *key, const char *value) {
    char lc[128];
    snprintf(lc, sizeof lc, "language_config.%s", key);
    return parse_edited(cfg, e, key, value, lc, value);
}

static void expect(dsocr_status got, dsocr_status want, const dsocr_error *e, const char *key) {
    CHECK_MSG(got == want, "%s: got %s, want %s (%s)", key, dsocr_status_name(got), dsocr_status_name(want),
              got ? e->message : "");
    if (got == DSOCR_OK) return;
    CHECK_MSG(strstr(e->message, "edited/config.json") != NULL, "no file name: %s", e->message);
    CHECK_MSG(strstr(e->message, key) != NULL, "no key %s: %s", key, e->message);
}

static void test_golden(void) {
    ds_config c;
    dsocr_error e;
    if (ds_config_load(tu_golden("tiny-model/config.json"), &c, &e) != DSOCR_OK) { CHECK_MSG(0, "%s", e.message); return; }
    CHECK_EQ_INT(c.lm.vocab_size, 129280);
    CHECK_EQ_INT(c.lm.hidden_size, 64);
    CHECK_EQ_INT(c.lm.num_hidden_layers, 3);
    CHECK_EQ_INT(c.lm.num_attention_heads, 2);
    CHECK_EQ_INT(c.lm.num_key_value_heads, 2);
    CHECK_EQ_INT(c.lm.head_dim, 32);
    CHECK_EQ_INT(c.lm.intermediate_size, 192);
    CHECK_EQ_INT(c.lm.moe_intermediate_size, 48);
    CHECK_EQ_INT(c.lm.n_routed_experts, 8);
    CHECK_EQ_INT(c.lm.n_shared_experts, 2);
    CHECK_EQ_INT(c.lm.num_experts_per_tok, 3);
    CHECK_EQ_INT(c.lm.first_k_dense_replace, 1);
    CHECK_EQ_INT(c.lm.moe_layer_freq, 1);
    CHECK_EQ_INT(c.lm.norm_topk_prob, 0);
    CHECK(c.lm.routed_scaling_factor == 1.0f && c.lm.rms_norm_eps == 1e-6f && c.lm.rope_theta == 10000.0f);
    CHECK_EQ_INT(c.lm.max_position_embeddings, 8192);
    CHECK(c.lm.bos_token_id == 0 && c.lm.eos_token_id == 1);

    CHECK_EQ_INT(c.sam.width, 96);
    CHECK_EQ_INT(c.sam.heads, 2);
    CHECK_EQ_INT(c.sam.layers, 4);
    CHECK_EQ_INT(c.sam.n_global_attn, 2);
    CHECK(c.sam.global_attn_indexes[0] == 1 && c.sam.global_attn_indexes[1] == 3);
    CHECK(c.sam.downsample_channels[0] == 64 && c.sam.downsample_channels[1] == 128);
    CHECK_EQ_INT(c.sam.neck_channels, 32);
    CHECK_EQ_INT(c.sam.mlp_dim, 384);
    CHECK(c.sam.patch_size == 16 && c.sam.window_size == 14 && c.sam.img_size == 1024 && c.sam.ln_eps == 1e-6f);

    CHECK_EQ_INT(c.clip.width, 128);
    CHECK_EQ_INT(c.clip.heads, 4);
    CHECK_EQ_INT(c.clip.layers, 2);
    CHECK_EQ_INT(c.clip.ffn_hidden_size, 512);
    CHECK(c.clip.patch_size == 14 && c.clip.image_size == 224 && c.clip.ln_eps == 1e-5f);

    CHECK_STR(c.proj.type, "linear");
    CHECK_EQ_INT(c.proj.input_dim, 256);
    CHECK_EQ_INT(c.proj.n_embed, 64);
    CHECK(c.proj.downsample_ratio == 2 && c.proj.depth == 2 && c.proj.mlp_ratio == 1.0f);
}

static void test_defaults(void) {
    ds_config d, c;
    dsocr_error e;
    ds_config_default(&d);
    CHECK_EQ_INT(d.lm.hidden_size, 1280);
    CHECK_EQ_INT(d.lm.head_dim, 128);
    CHECK_EQ_INT(d.lm.n_routed_experts, 64);
    CHECK_EQ_INT(d.sam.global_attn_indexes[3], 11);
    CHECK_EQ_INT(d.clip.ffn_hidden_size, 4096);
    CHECK_EQ_INT(d.proj.input_dim, 2048);

    /* an empty object is the real model */
    CHECK_EQ_INT(ds_config_parse("{}", 2, "empty.json", &c, &e), DSOCR_OK);
    CHECK(!memcmp(&c, &d, sizeof c));

    /* the real config.json (spec 2.1): the same values as the defaults */
    static const char real[] =
        "{\"model_type\":\"deepseek_vl_v2\",\"language_config\":{\"hidden_size\":1280,\"vocab_size\":129280,"
        "\"num_hidden_layers\":12,\"num_attention_heads\":10,\"num_key_value_heads\":10,\"intermediate_size\":6848,"
        "\"moe_intermediate_size\":896,\"n_routed_experts\":64,\"n_shared_experts\":2,\"num_experts_per_tok\":6,"
        "\"first_k_dense_replace\":1,\"topk_method\":\"greedy\",\"use_mla\":false,\"kv_lora_rank\":null},"
        "\"hidden_size\":1280,\"n_routed_experts\":64,\"topk_method\":\"greedy\",\"use_mla\":false,"
        "\"projector_config\":{\"projector_type\":\"linear\",\"input_dim\":2048,\"n_embed\":1280},"
        "\"vision_config\":{\"image_size\":1024,\"mlp_ratio\":3.7362,\"width\":{"
        "\"clip-l-14-224\":{\"heads\":16,\"image_size\":224,\"layers\":24,\"patch_size\":14,\"width\":1024},"
        "\"sam_vit_b\":{\"downsample_channels\":[512,1024],\"global_attn_indexes\":[2,5,8,11],\"heads\":12,"
        "\"layers\":12,\"width\":768}}}}";
    CHECK_EQ_INT(ds_config_parse(real, strlen(real), "real.json", &c, &e), DSOCR_OK);
    CHECK(!memcmp(&c, &d, sizeof c));

    /* the two golden extra keys, when absent, take the real dims */
    CHECK_EQ_INT(parse_edited(&c, &e, "vision_config.width.sam_vit_b.neck_channels", NULL,
                              "vision_config.width.clip-l-14-224.ffn_hidden_size", NULL), DSOCR_OK);
    CHECK_EQ_INT(c.sam.neck_channels, 256);
    CHECK_EQ_INT(c.clip.ffn_hidden_size, 4096);
    CHECK_EQ_INT(c.sam.width, 96);

    /* LM keys only in language_config are read from there; top level wins when both differ */
    CHECK_EQ_INT(parse_edited(&c, &e, "num_hidden_layers", NULL, "language_config.num_hidden_layers", "5"), DSOCR_OK);
    CHECK_EQ_INT(c.lm.num_hidden_layers, 5);
    CHECK_EQ_INT(parse_edited(&c, &e, "num_hidden_layers", "7", "language_config.num_hidden_layers", "5"), DSOCR_OK);
    CHECK_EQ_INT(c.lm.num_hidden_layers, 7);
    CHECK_EQ_INT(parse_edited(&c, &e, "language_config", NULL, NULL, NULL), DSOCR_OK);
    CHECK_EQ_INT(c.lm.hidden_size, 64);

    /* optional keys the real file omits, given explicitly */
    CHECK_EQ_INT(parse_lm_edit(&c, &e, "rope_theta", "500000"), DSOCR_OK);
    CHECK(c.lm.rope_theta == 500000.0f);
    CHECK_EQ_INT(parse_lm_edit(&c, &e, "norm_topk_prob", "true"), DSOCR_OK);
    CHECK_EQ_INT(c.lm.norm_topk_prob, 1);
    CHECK_EQ_INT(parse_lm_edit(&c, &e, "rms_norm_eps", "1e-5"), DSOCR_OK);
    CHECK(c.lm.rms_norm_eps == 1e-5f);
    CHECK_EQ_INT(parse_lm_edit(&c, &e, "rope_scaling", "null"), DSOCR_OK);
    CHECK_EQ_INT(parse_lm_edit(&c, &e, "n_routed_experts", "null"), DSOCR_OK);
    CHECK_EQ_INT(c.lm.n_routed_experts, 0);
    CHECK_EQ_INT(parse_edited(&c, &e, "projector_config.projector_type", "\"downsample_mlp_gelu\"",
                              "projector_config.downsample_ratio", "4"), DSOCR_OK);
    CHECK_STR(c.proj.type, "downsample_mlp_gelu");
    CHECK_EQ_INT(c.proj.downsample_ratio, 4);
}

static void test_rejects(void) {
    ds_config c;
    dsocr_error e;
    /* zero / negative / huge / wrong type */
    expect(parse_lm_edit(&c, &e, "num_attention_heads", "0"), DSOCR_ERR_FORMAT, &e, "num_attention_heads");
    expect(parse_lm_edit(&c, &e, "hidden_size", "-64"), DSOCR_ERR_FORMAT, &e, "hidden_size");
    expect(parse_lm_edit(&c, &e, "hidden_size", "2000000"), DSOCR_ERR_LIMIT, &e, "hidden_size");
    expect(parse_lm_edit(&c, &e, "hidden_size", "1e300"), DSOCR_ERR_FORMAT, &e, "hidden_size");
    expect(parse_lm_edit(&c, &e, "hidden_size", "64.5"), DSOCR_ERR_FORMAT, &e, "hidden_size");
    expect(parse_lm_edit(&c, &e, "hidden_size", "\"64\""), DSOCR_ERR_FORMAT, &e, "hidden_size");
    expect(parse_lm_edit(&c, &e, "vocab_size", "0"), DSOCR_ERR_FORMAT, &e, "vocab_size");
    expect(parse_lm_edit(&c, &e, "rms_norm_eps", "0"), DSOCR_ERR_FORMAT, &e, "rms_norm_eps");
    expect(parse_lm_edit(&c, &e, "rope_theta", "-1"), DSOCR_ERR_FORMAT, &e, "rope_theta");
    expect(parse_lm_edit(&c, &e, "norm_topk_prob", "1"), DSOCR_ERR_FORMAT, &e, "norm_topk_prob");
    /* only the language_config copy is bad: its path is named */
    expect(parse_edited(&c, &e, "intermediate_size", NULL, "language_config.intermediate_size", "0"), DSOCR_ERR_FORMAT,
           &e, "language_config.intermediate_size");

    /* cross-key checks */
    expect(parse_lm_edit(&c, &e, "num_attention_heads", "3"), DSOCR_ERR_FORMAT, &e, "num_attention_heads");
    expect(parse_lm_edit(&c, &e, "num_attention_heads", "64"), DSOCR_ERR_FORMAT, &e, "head_dim");  /* head_dim 1 */
    expect(parse_lm_edit(&c, &e, "num_key_value_heads", "3"), DSOCR_ERR_FORMAT, &e, "num_key_value_heads");
    expect(parse_lm_edit(&c, &e, "num_experts_per_tok", "9"), DSOCR_ERR_FORMAT, &e, "num_experts_per_tok");
    expect(parse_lm_edit(&c, &e, "eos_token_id", "129280"), DSOCR_ERR_FORMAT, &e, "eos_token_id");
    expect(parse_edited(&c, &e, "vision_config.width.sam_vit_b.heads", "0", NULL, NULL), DSOCR_ERR_FORMAT, &e,
           "vision_config.width.sam_vit_b.heads");
    expect(parse_edited(&c, &e, "vision_config.width.sam_vit_b.heads", "5", NULL, NULL), DSOCR_ERR_FORMAT, &e,
           "vision_config.width.sam_vit_b.heads");
    expect(parse_edited(&c, &e, "vision_config.width.sam_vit_b.global_attn_indexes", "[1, 4]", NULL, NULL),
           DSOCR_ERR_FORMAT, &e, "global_attn_indexes[1]");
    expect(parse_edited(&c, &e, "vision_config.width.sam_vit_b.global_attn_indexes", "[-1]", NULL, NULL),
           DSOCR_ERR_FORMAT, &e, "global_attn_indexes[0]");
    expect(parse_edited(&c, &e, "vision_config.width.sam_vit_b.downsample_channels", "[64]", NULL, NULL),
           DSOCR_ERR_FORMAT, &e, "downsample_channels");
    expect(parse_edited(&c, &e, "vision_config.width.sam_vit_b.neck_channels", "0", NULL, NULL), DSOCR_ERR_FORMAT,
           &e, "neck_channels");
    expect(parse_edited(&c, &e, "vision_config.width.clip-l-14-224.heads", "3", NULL, NULL), DSOCR_ERR_FORMAT, &e,
           "vision_config.width.clip-l-14-224.heads");
    expect(parse_edited(&c, &e, "vision_config.width.clip-l-14-224.ffn_hidden_size", "-1", NULL, NULL),
           DSOCR_ERR_FORMAT, &e, "ffn_hidden_size");
    expect(parse_edited(&c, &e, "vision_config.width.clip-l-14-224.patch_size", "15", NULL, NULL), DSOCR_ERR_FORMAT,
           &e, "patch_size");
    expect(parse_edited(&c, &e, "vision_config.width.clip-l-14-224.width", "10000000", NULL, NULL), DSOCR_ERR_LIMIT,
           &e, "vision_config.width.clip-l-14-224.width");
    expect(parse_edited(&c, &e, "projector_config.input_dim", "255", NULL, NULL), DSOCR_ERR_FORMAT, &e,
           "projector_config.input_dim");
    expect(parse_edited(&c, &e, "projector_config.n_embed", "32", NULL, NULL), DSOCR_ERR_FORMAT, &e,
           "projector_config.n_embed");
    expect(parse_edited(&c, &e, "vision_config.width", "[]", NULL, NULL), DSOCR_ERR_FORMAT, &e, "vision_config.width");

    /* well-formed but unsupported */
    expect(parse_lm_edit(&c, &e, "use_mla", "true"), DSOCR_ERR_UNSUPPORTED, &e, "use_mla");
    expect(parse_lm_edit(&c, &e, "scoring_func", "\"sigmoid\""), DSOCR_ERR_UNSUPPORTED, &e, "scoring_func");
    expect(parse_lm_edit(&c, &e, "topk_method", "\"noaux_tc\""), DSOCR_ERR_UNSUPPORTED, &e, "topk_method");
    expect(parse_lm_edit(&c, &e, "hidden_act", "\"gelu\""), DSOCR_ERR_UNSUPPORTED, &e, "hidden_act");
    expect(parse_lm_edit(&c, &e, "rope_scaling", "{\"type\": \"yarn\", \"factor\": 4}"), DSOCR_ERR_UNSUPPORTED, &e,
           "rope_scaling");
    expect(parse_lm_edit(&c, &e, "tie_word_embeddings", "true"), DSOCR_ERR_UNSUPPORTED, &e, "tie_word_embeddings");
    expect(parse_edited(&c, &e, "projector_config.projector_type", "\"qformer\"", NULL, NULL), DSOCR_ERR_UNSUPPORTED,
           &e, "projector_config.projector_type");
    expect(parse_edited(&c, &e, "use_mla", "true", NULL, NULL), DSOCR_ERR_UNSUPPORTED, &e, "use_mla");

    /* not JSON / not an object / missing file */
    CHECK_EQ_INT(ds_config_parse("{\"a\":", 5, "bad.json", &c, &e), DSOCR_ERR_FORMAT);
    CHECK(strstr(e.message, "bad.json") && strstr(e.message, "JSON"));
    CHECK_EQ_INT(ds_config_parse("[1]", 3, "arr.json", &c, &e), DSOCR_ERR_FORMAT);
    CHECK(strstr(e.message, "arr.json") != NULL);
    CHECK_EQ_INT(ds_config_parse("{} {}", 5, "two.json", &c, &e), DSOCR_ERR_FORMAT);
    CHECK(strstr(e.message, "two.json") && strstr(e.message, "byte offset 3"));
    CHECK_EQ_INT(ds_config_load(tu_build("no/such/config.json"), &c, &e), DSOCR_ERR_IO);
    CHECK(strstr(e.message, "no/such/config.json") != NULL);

    /* every truncation of the golden config fails cleanly or parses (ASan watches reads) */
    size_t n = strlen(golden_json);
    int n_fail = 0;
    for (size_t k = 0; k < n; k += 7) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, golden_json, k);
        n_fail += ds_config_parse(copy, k, "cut.json", &c, &e) != DSOCR_OK;
        free(copy);
    }
    CHECK_EQ_INT(n_fail, (int)((n + 6) / 7));
}

int main(void) {
    golden_json = tu_read_file(tu_golden("tiny-model/config.json"), NULL);
    CHECK(golden_json != NULL);
    if (!golden_json) return tu_done("test_config");
    test_golden();
    test_defaults();
    test_rejects();
    free(golden_json);
    return tu_done("test_config");
}
