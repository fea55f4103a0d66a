/* dsocr bench: the per-op profile hook (kernels/profile.c) and the bench command end to
 * end on a tiny random checkpoint. Nothing here asserts a speed: timings must only be
 * present and positive; the cost model (decode bytes per token, vision FLOP) is checked
 * exactly where it is a function of the config alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kernels/ops.h"
#include "kernels/profile.h"
#include "test_util.h"

/* ---- profile hook ------------------------------------------------------------------ */

static void test_profile(void) {
    ds_backend *be = NULL;
    dsocr_error err;
    CHECK(ds_backend_cpu_new(1, &be, &err) == DSOCR_OK);
    if (!be) return;

    /* y[3, 5] = x[3, 8] · W[5, 8]ᵀ with W = 1, x = i */
    float w_data[40], x[24], y[15], y_plain[15], add[24];
    for (int i = 0; i < 40; i++) w_data[i] = 1.0f;
    for (int i = 0; i < 24; i++) x[i] = (float)i;
    ds_tensor W = {.name = "w", .dtype = DS_F32, .ndim = 2, .shape = {5, 8}, .data = w_data};
    ds_tensor_set_contiguous(&W);
    ds_op_linear(be, y_plain, x, 3, 8, &W, NULL);

    ds_profile *p = NULL;
    CHECK(ds_profile_start(be, &p, &err) == DSOCR_OK);
    ds_profile *again = NULL;
    CHECK(ds_profile_start(be, &again, &err) == DSOCR_ERR_INVALID_ARG);   /* one at a time */
    CHECK(again == NULL);

    ds_op_linear(be, y, x, 3, 8, &W, NULL);
    ds_op_add(be, add, x, x, 24);   /* not a table op: not counted */
    CHECK(memcmp(y, y_plain, sizeof y) == 0);   /* the wrapper computes the same thing */
    ds_profile_op op;
    ds_profile_get(p, DS_PROF_LINEAR, &op);
    CHECK_STR(op.name, "linear");
    CHECK_EQ_INT(op.calls, 1);
    CHECK(op.ms >= 0);
    CHECK_NEAR(op.flop, 2.0 * 3 * 8 * 5, 0, 0);
    CHECK_NEAR(op.bytes, 5.0 * 8 * 4, 0, 0);
    int64_t total_calls = 0;
    for (int i = 0; i < DS_PROF_N_OPS; i++) {
        ds_profile_get(p, i, &op);
        CHECK(op.name != NULL);
        total_calls += op.calls;
    }
    CHECK_EQ_INT(total_calls, 1);

    /* linear is also counted per weight name, digit runs replaced by '#' */
    ds_tensor W2 = W;
    W2.name = "model.layers.12.mlp.experts.3.up_proj.weight";
    ds_op_linear(be, y, x, 3, 8, &W2, NULL);
    W2.name = "model.layers.7.mlp.experts.60.up_proj.weight";   /* same kind */
    ds_op_linear_rows(be, y, x, 3, 8, &W2, NULL, 1, 3);
    CHECK_EQ_INT(ds_profile_n_weights(p), 2);
    ds_profile_get_weight(p, 0, &op);
    CHECK_STR(op.name, "w");
    CHECK_EQ_INT(op.calls, 1);
    ds_profile_get_weight(p, 1, &op);
    CHECK_STR(op.name, "model.layers.#.mlp.experts.#.up_proj.weight");
    CHECK_EQ_INT(op.calls, 2);
    CHECK_NEAR(op.flop, 2.0 * 3 * 8 * 5 + 2.0 * 3 * 8 * 2, 0, 0);
    CHECK_NEAR(op.bytes, (5.0 + 2.0) * 8 * 4, 0, 0);
    W2.name = "model.sam_model.blocks.11.mlp.lin2.weight";      /* lin2 keeps its digit */
    ds_op_linear(be, y, x, 3, 8, &W2, NULL);
    ds_profile_get_weight(p, 2, &op);
    CHECK_STR(op.name, "model.sam_model.blocks.#.mlp.lin2.weight");
    ds_profile_get_weight(p, 3, &op);   /* out of range: zeroed */
    CHECK(op.name == NULL && op.calls == 0);

    /* causal attention: query i of 4 sees i+1 keys -> 10 pairs, x4 per head dim */
    float q[4 * 2], o[4 * 2];
    for (int i = 0; i < 8; i++) q[i] = 0.1f * (float)i;
    ds_attn_args a = {.out = o, .out_stride = 2, .q = q, .q_stride = 2, .k = q, .k_stride = 2, .v = q,
                      .v_stride = 2, .Lq = 4, .Lk = 4, .n_heads = 1, .head_dim = 2, .scale = 1.0f, .causal = 1};
    ds_op_attention(be, &a);
    ds_profile_get(p, DS_PROF_ATTENTION, &op);
    CHECK_EQ_INT(op.calls, 1);
    CHECK_NEAR(op.flop, 4.0 * 10 * 2, 0, 0);

    ds_profile_reset(p);
    ds_profile_get(p, DS_PROF_LINEAR, &op);
    CHECK_EQ_INT(op.calls, 0);
    CHECK_EQ_INT(ds_profile_n_weights(p), 0);
    ds_profile_get(p, -1, &op);   /* out of range: zeroed */
    CHECK(op.name == NULL && op.calls == 0);
    ds_profile_stop(be, p);

    /* after stop the backend runs its own kernels again, and can be profiled again */
    memset(y, 0, sizeof y);
    ds_op_linear(be, y, x, 3, 8, &W, NULL);
    CHECK(memcmp(y, y_plain, sizeof y) == 0);
    CHECK(ds_profile_start(be, &p, &err) == DSOCR_OK);
    ds_profile_stop(be, p);
    ds_profile_stop(be, NULL);
    ds_backend_free(be);
}

/* ---- the command on the tiny preset ---------------------------------------------------- */

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(cJSON_IsNumber(v), "missing number '%s'", key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

#define CHECK_POS(o, key) CHECK_MSG(num(o, key) > 0, "'%s' = %g is not positive", key, num(o, key))

static const cJSON *item(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    CHECK_MSG(v != NULL, "missing key '%s'", key);
    return v;
}

/* Weight bytes per decode step of the tiny preset (bf16), by hand from its dims:
 * D 64, 3 layers, 2 heads of 32, dense I 192, 8 experts of 48, top-3, 2 shared, V 129280. */
static double tiny_decode_weight_bytes(void) {
    const double attn = 4 * 64 * 64 * 2 + 2 * 64 * 2;        /* q, k, v, o + two norms */
    const double dense = 3 * 64 * 192 * 2;
    const double moe = 8 * 64 * 2 + 3 * 64 * 96 * 2 + 3 * (3 * 64 * 48 * 2);   /* router, shared, top-3 */
    return 3 * attn + dense + 2 * moe + 64 * 2 /* final norm */ + 129280.0 * 64 * 2 + 64 * 2 /* embed row */;
}

/* The same with the Linear weights quantized to bytes_per_weight (q8: 34/32, q4: 18/32)
 * in whole 32-element blocks: an expert's down_proj [64, 48] takes 2 blocks per row.
 * Norms, router and the embedding row stay bf16. */
static double tiny_decode_bytes_at(double bytes_per_weight) {
    const double linear = 3 * 4 * 64 * 64 + 3 * 64 * 192 + 2 * (3 * 64 * 96 + 3 * 3 * 64 * 48) + 129280.0 * 64;
    const double padded = bytes_per_weight == 2 ? linear : linear + 2 * 3 * 64 * (64 - 48);   /* bf16: as is */
    return tiny_decode_weight_bytes() - linear * 2 + padded * bytes_per_weight;
}

/* --formats: bf16, q8 and q4 decoders taking turns in one run (JSON decode_by_format). */
static void test_formats(const char *dir) {
    char cmd[16384], json[4200], table_path[4200];
    snprintf(json, sizeof json, "%s/formats.json", dir);
    snprintf(table_path, sizeof table_path, "%s/formats.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' bench -m '%s/model' --modes tiny --runs 1 --decode-tokens 16 --threads 2 "
             "--bw-mb 32 --sgemm-n 128 --formats bf16,q8,q4 --json '%s' > '%s' 2>/dev/null",
             tu_build("dsocr"), dir, json, table_path);
    CHECK_EQ_INT(system(cmd), 0);
    char *table = tu_read_file(table_path, NULL);
    CHECK(table && strstr(table, "decode by weight format") && strstr(table, "targets: q4"));
    free(table);
    char *text = tu_read_file(json, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(root != NULL);
    if (!root) return;
    const cJSON *fo = item(root, "decode_by_format"), *arr = item(fo, "formats");
    CHECK_EQ_INT(num(fo, "rounds"), 2);   /* 16 tokens, 8 per turn */
    CHECK_EQ_INT(num(fo, "prompt_ids"), num(cJSON_GetArrayItem(item(root, "modes"), 0), "prefill_tokens"));
    CHECK_STR(cJSON_IsString(item(fo, "baseline")) ? item(fo, "baseline")->valuestring : NULL, "bf16");
    CHECK_EQ_INT(cJSON_GetArraySize(arr), 3);
    const char *names[3] = {"bf16", "q8", "q4"};
    const double bpw[3] = {2, 34.0 / 32, 18.0 / 32};
    for (int i = 0; i < cJSON_GetArraySize(arr) && i < 3; i++) {
        const cJSON *f = cJSON_GetArrayItem(arr, i), *dt = item(f, "dtype");
        CHECK_STR(cJSON_IsString(item(f, "format")) ? item(f, "format")->valuestring : NULL, names[i]);
        CHECK_POS(f, "tokens_per_s");
        CHECK_POS(f, "vs_baseline");
        CHECK_NEAR(num(f, "weight_bytes_per_token"), tiny_decode_bytes_at(bpw[i]), 0, 1e-12);
        /* q4 in the layout the backend reads fastest: Q4_0, or Q4_0x4 on AVX512-VNNI */
        CHECK(cJSON_IsString(dt) && !strncmp(dt->valuestring, i == 0 ? "BF16" : i == 1 ? "Q8_0" : "Q4_0", 4));
        CHECK(i == 0 ? num(f, "quantize_ms") == 0 : num(f, "quantize_ms") > 0);
    }
    CHECK_NEAR(num(cJSON_GetArrayItem(arr, 0), "vs_baseline"), 1.0, 0, 0);   /* bf16 against itself */
    /* K/V per token: f32 for bf16; q8 / q4 in bf16 where the backend reads it so */
    const double kv0 = num(cJSON_GetArrayItem(arr, 0), "kv_bytes_per_token");
    CHECK(kv0 > 0);
    ds_backend *be = NULL;
    dsocr_error err;
    CHECK(ds_backend_cpu_new(1, &be, &err) == DSOCR_OK);
    for (int i = 1; be && i < cJSON_GetArraySize(arr) && i < 3; i++)
        CHECK_NEAR(num(cJSON_GetArrayItem(arr, i), "kv_bytes_per_token"), ds_backend_kv_bf16(be) ? kv0 / 2 : kv0, 0, 1e-12);
    ds_backend_free(be);
    cJSON_Delete(root);
    /* a format list that is not one */
    snprintf(cmd, sizeof cmd, "'%s' bench -m '%s/model' --formats bf16,q3 2>/dev/null", tu_build("dsocr"), dir);
    CHECK_EQ_INT(system(cmd), 2 << 8);
    snprintf(cmd, sizeof cmd, "'%s' bench -m '%s/model' --formats q4,q4 2>/dev/null", tu_build("dsocr"), dir);
    CHECK_EQ_INT(system(cmd), 2 << 8);
}

static void test_command(void) {
    char dir[4096], tok[4096], json[4200], cmd[16384];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("bench"));
    snprintf(tok, sizeof tok, "%s", tu_golden("tiny-model"));
    snprintf(json, sizeof json, "%s/bench.json", dir);
    const char *dsocr = tu_build("dsocr");
    snprintf(cmd, sizeof cmd, "'%s' mkmodel -o '%s/model' --preset tiny --tokenizer-from '%s' 2>/dev/null", dsocr, dir, tok);
    CHECK_EQ_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' bench -m '%s/model' --modes tiny,gundam --decode-tokens 9 --threads 2 "
             "--bw-mb 32 --sgemm-n 128 --ops --json '%s' > '%s/table.txt' 2>/dev/null",
             tu_build("dsocr"), dir, json, dir);
    CHECK_EQ_INT(system(cmd), 0);

    /* bad options fail with a usage error, not a crash */
    snprintf(cmd, sizeof cmd, "'%s' bench -m '%s/model' --modes huge 2>/dev/null", tu_build("dsocr"), dir);
    CHECK_EQ_INT(system(cmd), 2 << 8);
    snprintf(cmd, sizeof cmd, "'%s' bench -m '%s/nothing-here' --modes tiny 2>/dev/null", tu_build("dsocr"), dir);
    CHECK(system(cmd) != 0);
    snprintf(cmd, sizeof cmd, "'%s' bench -m '%s/model' --json '%s/no/such/dir/x.json' 2>/dev/null", tu_build("dsocr"),
             dir, dir);
    CHECK_EQ_INT(system(cmd), 1 << 8);   /* refused before measuring anything */

    char table_path[4200];
    snprintf(table_path, sizeof table_path, "%s/table.txt", dir);
    char *table = tu_read_file(table_path, NULL);
    CHECK(table && strstr(table, "memory read") && strstr(table, "sgemm") && strstr(table, "gundam") &&
          strstr(table, "profile: decode"));
    free(table);

    char *text = tu_read_file(json, NULL);
    CHECK_MSG(text != NULL, "no JSON at %s", json);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(root != NULL);
    if (!root) return;

    const cJSON *mach = item(root, "machine");
    const cJSON *cpu = item(mach, "cpu");
    CHECK(cJSON_IsString(cpu) && cpu->valuestring[0]);
    CHECK_POS(mach, "cores");
    CHECK_EQ_INT(num(mach, "threads"), 2);
    CHECK_POS(mach, "mem_read_gbs");
    /* every decoder Linear read once: lm_head, q/k/v/o x 3, the dense MLP, and per MoE
     * layer the shared expert and all 8 routed ones */
    CHECK_POS(mach, "weight_pages_read_gbs");
    CHECK_NEAR(num(mach, "weight_pages_bytes"),
               129280.0 * 64 * 2 + 3 * (4 * 64 * 64 * 2) + 3 * 64 * 192 * 2 + 2 * (3 * 64 * 96 * 2 + 8 * 3 * 64 * 48 * 2), 0, 0);
    CHECK_POS(mach, "sgemm_gflops");
    CHECK_EQ_INT(num(mach, "sgemm_n"), 128);
    CHECK_POS(item(root, "model"), "checkpoint_bytes");
    CHECK_EQ_INT(num(root, "decode_tokens"), 9);

    /* one view per distinct side: 512 (tiny), 1024 (gundam global), 640 (gundam tiles) */
    const cJSON *views = item(root, "views");
    CHECK_EQ_INT(cJSON_GetArraySize(views), 3);
    double view_gflop[3] = {0};
    for (int i = 0; i < cJSON_GetArraySize(views) && i < 3; i++) {
        const cJSON *v = cJSON_GetArrayItem(views, i);
        CHECK_EQ_INT(num(v, "side"), i == 0 ? 512 : i == 1 ? 1024 : 640);
        CHECK_POS(v, "sam_ms");
        CHECK_POS(v, "clip_ms");
        CHECK(num(v, "projector_ms") >= 0);
        CHECK_POS(v, "total_ms");
        CHECK_POS(v, "sam_gflop");
        CHECK_POS(v, "clip_gflop");
        CHECK_POS(v, "projector_gflop");
        CHECK_POS(v, "gflops");
        CHECK_POS(v, "ratio_sgemm");
        view_gflop[i] = num(v, "sam_gflop") + num(v, "clip_gflop") + num(v, "projector_gflop");
    }
    /* tiny projector on a 512 view: an 8 x 8 token grid through a linear 256 -> 64 */
    CHECK_NEAR(num(cJSON_GetArrayItem(views, 0), "projector_gflop"), 2.0 * 8 * 8 * 256 * 64 / 1e9, 0, 1e-9);

    const cJSON *modes = item(root, "modes");
    CHECK_EQ_INT(cJSON_GetArraySize(modes), 2);
    for (int i = 0; i < cJSON_GetArraySize(modes) && i < 2; i++) {
        const cJSON *m = cJSON_GetArrayItem(modes, i);
        const cJSON *name = item(m, "mode");
        CHECK_STR(cJSON_IsString(name) ? name->valuestring : NULL, i == 0 ? "tiny" : "gundam");
        const char *pos_keys[] = {"image_tokens", "prefill_tokens", "preprocess_ms", "vision_ms", "vision_gflop",
                                  "vision_gflops", "vision_ratio_sgemm", "prefill_ms", "prefill_tok_s", "ttft_ms",
                                  "decode_ms", "decode_tok_s", "decode_weight_bytes_per_token",
                                  "decode_kv_bytes_per_token", "decode_gbs", "decode_ratio_bandwidth"};
        for (size_t k = 0; k < sizeof pos_keys / sizeof pos_keys[0]; k++) CHECK_POS(m, pos_keys[k]);
        CHECK(num(m, "prefill_tokens") > num(m, "image_tokens"));
        CHECK(num(m, "ttft_ms") >= num(m, "vision_ms") + num(m, "prefill_ms"));
        /* the reported run is the best; the first is kept on its own */
        CHECK_POS(m, "vision_first_run_ms");
        CHECK(num(m, "vision_first_run_ms") >= num(m, "vision_ms"));
        CHECK(num(m, "prefill_first_run_ms") >= num(m, "prefill_ms"));
        /* 9 tokens: one chunk of 8 paired with a read of the probe buffer */
        CHECK_EQ_INT(num(m, "decode_pairs"), 1);
        CHECK_POS(m, "decode_paired_read_gbs");
        CHECK_POS(m, "decode_ratio_paired_read");
        CHECK_NEAR(num(m, "decode_weight_bytes_per_token"), tiny_decode_weight_bytes(), 0, 0);
        /* f32 K and V of 3 layers x 64 wide, at contexts prompt+1 .. prompt+9 */
        CHECK_NEAR(num(m, "decode_kv_bytes_per_token"), 2.0 * 3 * 64 * 4 * (num(m, "prefill_tokens") + 5), 0, 1e-12);
    }
    const cJSON *tiny = cJSON_GetArrayItem(modes, 0), *gundam = cJSON_GetArrayItem(modes, 1);
    CHECK_EQ_INT(num(tiny, "image_tokens"), 73);
    CHECK_EQ_INT(num(tiny, "tiles"), 0);
    CHECK_NEAR(num(tiny, "vision_gflop"), view_gflop[0], 0, 1e-9);
    const double tiles = num(gundam, "tiles");
    CHECK(tiles >= 2 && tiles <= 9);
    CHECK_NEAR(num(gundam, "vision_gflop"), view_gflop[1] + tiles * view_gflop[2], 0, 1e-9);

    const cJSON *mem = item(root, "memory");
    CHECK_STR(cJSON_IsString(item(mem, "after")) ? item(mem, "after")->valuestring : NULL, "gundam");
    CHECK_POS(mem, "peak_rss_bytes");
    CHECK_POS(mem, "rss_bytes");
    CHECK(num(mem, "peak_rss_bytes") >= num(mem, "rss_bytes"));

    const cJSON *tg = item(root, "targets");
    CHECK_POS(tg, "decode_ratio_bandwidth");
    CHECK_POS(tg, "vision_ratio_sgemm");
    CHECK(cJSON_IsBool(item(tg, "decode_ok")) && cJSON_IsBool(item(tg, "vision_ok")) &&
          cJSON_IsBool(item(tg, "memory_ok")));
    const char *shares[] = {"cpu_share", "cpu_share_vision", "cpu_share_prefill", "cpu_share_decode"};
    for (int i = 0; i < cJSON_GetArraySize(modes); i++)
        for (int k = 0; k < 4; k++) {
            double v = num(cJSON_GetArrayItem(modes, i), shares[k]);
            CHECK_MSG(v > 0 && v <= 1.0 + 1e-9, "%s = %g", shares[k], v);
        }
    CHECK(num(mach, "mem_read_cpu_share") > 0 && num(mach, "mem_read_cpu_share") <= 1);
    CHECK(num(mach, "sgemm_cpu_share") > 0 && num(mach, "sgemm_cpu_share") <= 1);

    const cJSON *prof = item(root, "profile");
    const char *phases[] = {"vision", "prefill", "decode"};
    for (int p = 0; p < 3; p++) {
        const cJSON *ph = item(prof, phases[p]);
        CHECK_POS(ph, "wall_ms");
        const cJSON *ops = item(ph, "ops");
        int found_linear = 0;
        for (int i = 0; i < cJSON_GetArraySize(ops); i++) {
            const cJSON *o = cJSON_GetArrayItem(ops, i), *opn = item(o, "op");
            CHECK_POS(o, "calls");
            CHECK(num(o, "ms") >= 0 && num(o, "share") >= 0 && num(o, "share") <= 1.0 + 1e-9);
            if (cJSON_IsString(opn) && !strcmp(opn->valuestring, "linear")) found_linear = 1;
        }
        CHECK_MSG(found_linear, "no linear op in the %s profile", phases[p]);
        /* linear split by weight name, numbers replaced by '#' */
        const cJSON *ws = item(ph, "linear_by_weight");
        int found_head = 0;
        for (int i = 0; i < cJSON_GetArraySize(ws); i++) {
            const cJSON *w = cJSON_GetArrayItem(ws, i), *wn = item(w, "weight");
            CHECK_POS(w, "calls");
            CHECK(cJSON_IsString(wn) && !strstr(wn->valuestring, ".0.") && !strstr(wn->valuestring, ".1."));
            if (cJSON_IsString(wn) && !strcmp(wn->valuestring, "lm_head.weight")) found_head = 1;
        }
        CHECK(cJSON_GetArraySize(ws) > 0);
        if (p > 0) CHECK_MSG(found_head, "no lm_head.weight in the %s profile", phases[p]);
    }
    cJSON_Delete(root);
    test_formats(dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);   /* the tiny checkpoint is 37 MB */
    CHECK_EQ_INT(system(cmd), 0);
}

int main(void) {
    test_profile();
    test_command();
    return tu_done("test_bench");
}
