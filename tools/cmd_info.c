/* dsocr info: what a checkpoint holds, checked the way dsocr_model_load checks it. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "model/weights.h"

static const char *info_help =
    "Usage: dsocr info -m MODEL_DIR\n"
    "\n"
    "Reads config.json and the safetensors files, binds every tensor the model needs by\n"
    "its real name and shape, and prints the dims and tensor counts. Nothing is computed\n"
    "and the weights are not read (they stay memory-mapped).\n"
    "Example:\n"
    "  dsocr info -m ../shared/golden/tiny-model\n";

int dsocr_cmd_info(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *dir = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': dir = optarg; break;
        case 'h': fputs(info_help, stdout); return 0;
        case ':': return cli_error("%s needs a value (see dsocr info --help)", argv[optind - 1]), 2;
        default: return cli_error("unknown option '%s' (see dsocr info --help)", argv[optind - 1]), 2;
        }
    }
    if (!dir && optind < argc) dir = argv[optind];
    if (!dir) return cli_error("info: -m MODEL_DIR is required"), 2;

    dsocr_error err;
    char path[4200];
    ds_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (ds_config_load(path, &cfg, &err)) return cli_fail(&err);
    ds_checkpoint *ck;
    if (ds_ckpt_open(dir, &ck, &err)) return cli_fail(&err);
    ds_binder *b = ds_binder_new(ck);
    if (!b) { ds_ckpt_close(ck); return cli_error("out of memory"); }
    ds_model_weights w;
    ds_model_bind(b, &cfg, &w);
    int bound = ds_binder_bound_count(b), unused = ds_binder_unused_count(b);
    if (ds_binder_finish(b, &err)) { ds_model_weights_free(&w); ds_ckpt_close(ck); return cli_fail(&err); }
    ds_model_weights_free(&w);

    const ds_lm_config *l = &cfg.lm;
    printf("checkpoint  %s: %d tensors in %d file(s), %.3f GB\n", dir, ds_ckpt_tensor_count(ck),
           ds_ckpt_shard_count(ck), ds_ckpt_total_bytes(ck) / 1e9);
    printf("bound       %d tensors by name and shape; %d in the checkpoint unused\n", bound, unused);
    printf("decoder     hidden %d, %d layers, %d heads x %d, vocab %d, dense MLP %d (first %d layers)\n",
           l->hidden_size, l->num_hidden_layers, l->num_attention_heads, l->head_dim, l->vocab_size,
           l->intermediate_size, l->first_k_dense_replace);
    printf("moe         %d routed experts (top %d) x %d + %d shared, scaling %g, rope theta %g, rms eps %g\n",
           l->n_routed_experts, l->num_experts_per_tok, l->moe_intermediate_size, l->n_shared_experts,
           l->routed_scaling_factor, l->rope_theta, l->rms_norm_eps);
    printf("sam         width %d, %d layers, %d heads, global blocks", cfg.sam.width, cfg.sam.layers, cfg.sam.heads);
    for (int i = 0; i < cfg.sam.n_global_attn; i++) printf(" %d", cfg.sam.global_attn_indexes[i]);
    printf(", neck %d, net_2/net_3 %d/%d\n", cfg.sam.neck_channels, cfg.sam.downsample_channels[0],
           cfg.sam.downsample_channels[1]);
    printf("clip        width %d, %d layers, %d heads, mlp %d\n", cfg.clip.width, cfg.clip.layers, cfg.clip.heads,
           cfg.clip.ffn_hidden_size);
    printf("projector   %s %d -> %d\n", cfg.proj.type, cfg.proj.input_dim, cfg.proj.n_embed);
    ds_ckpt_close(ck);
    return 0;
}
