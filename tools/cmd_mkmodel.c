/* dsocr mkmodel: writes a random-weight checkpoint in the real Hugging Face layout
 * (config.json, model-00001-of-000001.safetensors, model.safetensors.index.json and,
 * when given, the tokenizer files). The tensor list comes from the model's own bind
 * code run through a recording binder, so names and shapes cannot drift from what
 * the loader expects. Deterministic from --seed; streamed to disk in small chunks,
 * so the full-size 6.7 GB checkpoint needs a few MB of memory. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "commands.h"
#include "core/tensor.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/st_writer.h"
#include "model/weights.h"

#define SHARD_NAME "model-00001-of-000001.safetensors"

static const char *mkmodel_help =
    "Usage: dsocr mkmodel -o DIR [--preset real|tiny] [--seed N] [--tokenizer-from DIR]\n"
    "\n"
    "Writes a random-weight checkpoint in the real DeepSeek-OCR layout, for tests and\n"
    "benchmarks (the real weights are not needed to measure speed or memory).\n"
    "  -o, --output DIR       folder to create (must not hold a checkpoint already)\n"
    "  --preset real          full size: 3,336,106,240 parameters, 6.7 GB bf16 (default)\n"
    "  --preset tiny          the golden tiny model's dims (18 M parameters)\n"
    "  --seed N               weights are a function of the seed and the tensor name\n"
    "  --tokenizer-from DIR   copy tokenizer.json, tokenizer_config.json and\n"
    "                         special_tokens_map.json from DIR (needed to run OCR)\n"
    "Example:\n"
    "  dsocr mkmodel -o /tmp/ds-random --tokenizer-from ../shared/golden/tiny-model\n";

/* The golden tiny model's dims (../shared/golden/README.md section 3). */
static void config_tiny(ds_config *c) {
    ds_config_default(c);
    c->lm.hidden_size = 64;
    c->lm.intermediate_size = 192;
    c->lm.moe_intermediate_size = 48;
    c->lm.num_hidden_layers = 3;
    c->lm.num_attention_heads = c->lm.num_key_value_heads = 2;
    c->lm.head_dim = 32;
    c->lm.n_routed_experts = 8;
    c->lm.num_experts_per_tok = 3;
    c->proj.input_dim = 256;
    c->proj.n_embed = 64;
    c->sam.width = 96;
    c->sam.heads = 2;
    c->sam.layers = 4;
    c->sam.n_global_attn = 2;
    c->sam.global_attn_indexes[0] = 1;
    c->sam.global_attn_indexes[1] = 3;
    c->sam.downsample_channels[0] = 64;
    c->sam.downsample_channels[1] = 128;
    c->sam.neck_channels = 32;
    c->sam.mlp_dim = 4 * 96;
    c->clip.width = 128;
    c->clip.heads = 4;
    c->clip.layers = 2;
    c->clip.ffn_hidden_size = 512;
}

/* ---- config.json in the real schema ------------------------------------------ */

static void add_lm_keys(cJSON *o, const ds_lm_config *l) {
    cJSON_AddNumberToObject(o, "bos_token_id", l->bos_token_id);
    cJSON_AddNumberToObject(o, "eos_token_id", l->eos_token_id);
    cJSON_AddNumberToObject(o, "first_k_dense_replace", l->first_k_dense_replace);
    cJSON_AddNumberToObject(o, "hidden_size", l->hidden_size);
    cJSON_AddNumberToObject(o, "intermediate_size", l->intermediate_size);
    cJSON_AddNullToObject(o, "kv_lora_rank");
    cJSON_AddBoolToObject(o, "lm_head", 1);
    cJSON_AddNumberToObject(o, "max_position_embeddings", l->max_position_embeddings);
    cJSON_AddNumberToObject(o, "moe_intermediate_size", l->moe_intermediate_size);
    cJSON_AddNumberToObject(o, "n_group", 1);
    cJSON_AddNumberToObject(o, "n_routed_experts", l->n_routed_experts);
    cJSON_AddNumberToObject(o, "n_shared_experts", l->n_shared_experts);
    cJSON_AddNumberToObject(o, "num_attention_heads", l->num_attention_heads);
    cJSON_AddNumberToObject(o, "num_experts_per_tok", l->num_experts_per_tok);
    cJSON_AddNumberToObject(o, "num_hidden_layers", l->num_hidden_layers);
    cJSON_AddNumberToObject(o, "num_key_value_heads", l->num_key_value_heads);
    cJSON_AddNullToObject(o, "q_lora_rank");
    cJSON_AddNumberToObject(o, "qk_nope_head_dim", 0);
    cJSON_AddNumberToObject(o, "qk_rope_head_dim", 0);
    cJSON_AddBoolToObject(o, "rm_head", 0);
    cJSON_AddNumberToObject(o, "topk_group", 1);
    cJSON_AddStringToObject(o, "topk_method", "greedy");
    cJSON_AddBoolToObject(o, "use_mla", 0);
    cJSON_AddNumberToObject(o, "v_head_dim", 0);
    cJSON_AddNumberToObject(o, "vocab_size", l->vocab_size);
}

static char *config_json(const ds_config *c, int tiny) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "_name_or_path", "deepseek-ai/DeepSeek-OCR");
    cJSON_AddStringToObject(root, "model_type", "deepseek_vl_v2");
    cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("DeepseekOCRForCausalLM"));
    cJSON *lang = cJSON_AddObjectToObject(root, "language_config");
    add_lm_keys(lang, &c->lm);
    add_lm_keys(root, &c->lm);

    cJSON *proj = cJSON_AddObjectToObject(root, "projector_config");
    cJSON_AddNumberToObject(proj, "input_dim", c->proj.input_dim);
    cJSON_AddStringToObject(proj, "model_type", "mlp_projector");
    cJSON_AddNumberToObject(proj, "n_embed", c->proj.n_embed);
    cJSON_AddStringToObject(proj, "projector_type", c->proj.type);

    cJSON *vis = cJSON_AddObjectToObject(root, "vision_config");
    cJSON_AddNumberToObject(vis, "image_size", c->sam.img_size);
    cJSON_AddNumberToObject(vis, "mlp_ratio", 3.7362);
    cJSON_AddStringToObject(vis, "model_name", "deeplip_b_l");
    cJSON_AddStringToObject(vis, "model_type", "vision");
    cJSON *width = cJSON_AddObjectToObject(vis, "width");
    cJSON *clip = cJSON_AddObjectToObject(width, "clip-l-14-224");
    cJSON_AddNumberToObject(clip, "heads", c->clip.heads);
    cJSON_AddNumberToObject(clip, "image_size", c->clip.image_size);
    cJSON_AddNumberToObject(clip, "layers", c->clip.layers);
    cJSON_AddNumberToObject(clip, "patch_size", c->clip.patch_size);
    cJSON_AddNumberToObject(clip, "width", c->clip.width);
    cJSON *sam = cJSON_AddObjectToObject(width, "sam_vit_b");
    cJSON_AddItemToObject(sam, "downsample_channels", cJSON_CreateIntArray(c->sam.downsample_channels, 2));
    cJSON_AddItemToObject(sam, "global_attn_indexes",
                          cJSON_CreateIntArray(c->sam.global_attn_indexes, c->sam.n_global_attn));
    cJSON_AddNumberToObject(sam, "heads", c->sam.heads);
    cJSON_AddNumberToObject(sam, "layers", c->sam.layers);
    cJSON_AddNumberToObject(sam, "width", c->sam.width);
    if (tiny) { /* the golden model's two extra keys (real dims are hard-coded upstream) */
        cJSON_AddNumberToObject(sam, "neck_channels", c->sam.neck_channels);
        cJSON_AddNumberToObject(clip, "ffn_hidden_size", c->clip.ffn_hidden_size);
    }
    cJSON_AddStringToObject(root, "torch_dtype", "bfloat16");
    cJSON_AddStringToObject(root, "transformers_version", "4.46.3");
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

/* ---- random values ------------------------------------------------------------ */

static uint64_t fnv1a(const char *s, uint64_t h) {
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* Values are mean + uniform noise of the given standard deviation: norms near 1,
 * small biases, Linear/conv weights with variance 1/fan_in (activations keep their
 * scale through the layers, so the random model runs like a real one). */
static void init_policy(const char *name, int ndim, const int64_t *shape, float *mean, float *std) {
    int64_t fan_in = 1;
    for (int i = 1; i < ndim; i++) fan_in *= shape[i];
    *mean = 0;
    if (ndim == 1 && has_suffix(name, ".weight")) { *mean = 1; *std = 0.1f; }       /* norms */
    else if (has_suffix(name, ".bias")) *std = 0.05f;
    else if (strstr(name, "pos_embed") || strstr(name, "position_embedding")) *std = 0.3f;
    else if (strstr(name, "rel_pos")) *std = 0.15f;
    else if (ndim == 1) *std = 0.5f;                  /* class token, newline, separator */
    else if (strstr(name, "embed_tokens")) *std = 1.0f;
    else *std = (float)(1.0 / sqrt((double)fan_in));
}

static int copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb");
    if (!in) return -1;
    FILE *out = fopen(to, "wb");
    if (!out) { fclose(in); return -1; }
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) { rc = -1; break; }
    if (ferror(in)) rc = -1;
    fclose(in);
    if (fclose(out) != 0) rc = -1;
    return rc;
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

int dsocr_cmd_mkmodel(int argc, char **argv) {
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"preset", required_argument, 0, 'p'},
        {"seed", required_argument, 0, 's'}, {"tokenizer-from", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out_dir = NULL, *preset = "real", *tok_dir = NULL;
    uint64_t seed = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out_dir = optarg; break;
        case 'p': preset = optarg; break;
        case 's': if (cli_parse_u64("--seed", optarg, &seed)) return 2; break;
        case 'T': tok_dir = optarg; break;
        case 'h': fputs(mkmodel_help, stdout); return 0;
        case ':': return cli_error("%s needs a value (see dsocr mkmodel --help)", argv[optind - 1]), 2;
        default: return cli_error("unknown option '%s' (see dsocr mkmodel --help)", argv[optind - 1]), 2;
        }
    }
    if (!out_dir) return cli_error("mkmodel: -o DIR is required (see dsocr mkmodel --help)"), 2;
    ds_config cfg;
    int tiny = !strcmp(preset, "tiny");
    if (tiny) config_tiny(&cfg);
    else if (!strcmp(preset, "real")) ds_config_default(&cfg);
    else return cli_error("--preset: '%s' is not one of real, tiny", preset), 2;

    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
        return cli_error("mkmodel: cannot create %s: %s", out_dir, strerror(errno));
    char path[4096];

    /* Learn every tensor from the model's own bind code. */
    ds_binder *rec = ds_binder_new_recorder();
    if (!rec) return cli_error("mkmodel: out of memory");
    ds_model_weights mw;
    ds_model_bind(rec, &cfg, &mw);
    ds_model_weights_free(&mw);
    int n = ds_binder_count(rec);

    dsocr_error err;
    ds_st_writer *w = NULL;
    snprintf(path, sizeof path, "%s/%s", out_dir, SHARD_NAME);
    if (ds_stw_open(path, &w, &err)) { ds_binder_free(rec); return cli_fail(&err); }
    ds_stw_set_metadata(w, "format", "pt", &err);
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        int64_t shape[DS_MAX_DIMS];
        int nd = ds_binder_shape(rec, i, shape);
        if (ds_stw_add(w, ds_binder_name(rec, i), DS_BF16, nd, shape, &err)) {
            ds_stw_abort(w); ds_binder_free(rec); return cli_fail(&err);
        }
        int64_t numel = 1;
        for (int d = 0; d < nd; d++) numel *= shape[d];
        total += (uint64_t)numel * 2;
    }

    enum { CHUNK = 1 << 20 };
    uint16_t *buf = malloc(CHUNK * sizeof *buf);
    if (!buf) { ds_stw_abort(w); ds_binder_free(rec); return cli_error("mkmodel: out of memory"); }
    int tty = isatty(2);
    uint64_t written = 0;
    for (int i = 0; i < n; i++) {
        int64_t shape[DS_MAX_DIMS];
        int nd = ds_binder_shape(rec, i, shape);
        const char *name = ds_binder_name(rec, i);
        int64_t numel = 1;
        for (int d = 0; d < nd; d++) numel *= shape[d];
        float mean, std;
        init_policy(name, nd, shape, &mean, &std);
        float half = std * 1.7320508f; /* uniform on [-half, half] has this std */
        uint64_t st = fnv1a(name, 0xcbf29ce484222325ull ^ (seed * 0x9e3779b97f4a7c15ull));
        for (int64_t done = 0; done < numel;) {
            int64_t m = numel - done < CHUNK ? numel - done : CHUNK;
            for (int64_t j = 0; j < m; j++) {
                double u = (double)(splitmix(&st) >> 11) * (1.0 / 9007199254740992.0);
                buf[j] = ds_f32_to_bf16(mean + (float)((2.0 * u - 1.0) * half));
            }
            if (ds_stw_write(w, buf, (size_t)m * 2, &err)) {
                free(buf); ds_binder_free(rec); return cli_fail(&err);
            }
            done += m;
            written += (uint64_t)m * 2;
        }
        if (tty) fprintf(stderr, "\rdsocr mkmodel: %5.1f%% of %.2f GB", 100.0 * written / total, total / 1e9);
    }
    free(buf);
    if (tty) fputc('\n', stderr);
    if (ds_stw_finish(w, &err)) { ds_binder_free(rec); return cli_fail(&err); }

    /* model.safetensors.index.json: every tensor in the one shard. */
    cJSON *idx = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(idx, "metadata");
    cJSON_AddNumberToObject(meta, "total_size", (double)total);
    cJSON *map = cJSON_AddObjectToObject(idx, "weight_map");
    for (int i = 0; i < n; i++) cJSON_AddStringToObject(map, ds_binder_name(rec, i), SHARD_NAME);
    char *idx_text = cJSON_Print(idx);
    cJSON_Delete(idx);
    ds_binder_free(rec);
    char *cfg_text = config_json(&cfg, tiny);
    int rc = 0;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", out_dir);
    if (!idx_text || write_text(path, idx_text)) rc = cli_error("mkmodel: cannot write %s", path);
    snprintf(path, sizeof path, "%s/config.json", out_dir);
    if (!rc && (!cfg_text || write_text(path, cfg_text))) rc = cli_error("mkmodel: cannot write %s", path);
    free(idx_text);
    free(cfg_text);
    if (!rc && tok_dir) {
        static const char *files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
        for (int i = 0; i < 3 && !rc; i++) {
            char from[4096];
            snprintf(from, sizeof from, "%s/%s", tok_dir, files[i]);
            snprintf(path, sizeof path, "%s/%s", out_dir, files[i]);
            if (copy_file(from, path)) rc = cli_error("mkmodel: cannot copy %s to %s", from, path);
        }
    }
    if (!rc)
        fprintf(stderr, "dsocr mkmodel: wrote %s: %d tensors, %.3f GB (%s preset, seed %llu)%s\n", out_dir, n,
                total / 1e9, preset, (unsigned long long)seed,
                tok_dir ? "" : "; no tokenizer copied (--tokenizer-from DIR) so OCR cannot run on it");
    return rc;
}
