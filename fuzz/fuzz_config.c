/* config.json (ds_config_parse): any bytes, never a crash; an accepted config has
 * the invariants the model code relies on. */
#include "fuzz_util.h"
#include "io/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ds_config cfg;
    dsocr_error err;
    dsocr_status s = ds_config_parse((const char *)data, size, "fuzz/config.json", &cfg, &err);
    fuzz_check_error(s, &err);
    if (s != DSOCR_OK) return 0;
    const ds_lm_config *lm = &cfg.lm;
    FUZZ_CHECK(lm->vocab_size > 0 && lm->hidden_size > 0 && lm->num_hidden_layers > 0);
    FUZZ_CHECK(lm->num_attention_heads > 0 && lm->num_key_value_heads > 0 && lm->head_dim > 0);
    FUZZ_CHECK(cfg.sam.n_global_attn >= 0 && cfg.sam.n_global_attn <= DS_MAX_GLOBAL_ATTN);
    for (int i = 0; i < cfg.sam.n_global_attn; i++)
        FUZZ_CHECK(cfg.sam.global_attn_indexes[i] >= 0 && cfg.sam.global_attn_indexes[i] < cfg.sam.layers);
    FUZZ_CHECK(cfg.sam.heads > 0 && cfg.sam.width % cfg.sam.heads == 0);
    FUZZ_CHECK(cfg.clip.heads > 0 && cfg.clip.width % cfg.clip.heads == 0);
    FUZZ_CHECK(memchr(cfg.proj.type, 0, sizeof cfg.proj.type) != NULL);
    return 0;
}
