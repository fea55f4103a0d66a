/* The public API (include/dsocr.h): model loading and OCR of one image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/memory.h"
#include "app/pipeline.h"
#include "io/hub.h"
#include "text/tokenizer.h"

dsocr_load_params dsocr_load_default_params(void) {
    dsocr_load_params p = {0};
    return p;
}

dsocr_params dsocr_default_params(void) {
    dsocr_params p = {0};
    p.mode = DSOCR_MODE_GUNDAM;
    p.max_crops = 9;
    p.task = DSOCR_TASK_MARKDOWN;
    p.max_new_tokens = 8192;
    p.temperature = 0.0f;
    p.top_p = 1.0f;
    p.top_k = 0;
    p.seed = 0;
    p.ngram_size = 20;
    p.ngram_window = 0;
    p.loop_detect = 1;
    return p;
}

const char *dsocr_model_backend(const dsocr_model *m) { return m ? ds_backend_name(m->be) : ""; }

void dsocr_model_free(dsocr_model *m) {
    if (!m) return;
    ds_generator_free(m->gen);
    ds_decoder_free(m->dec);
    ds_vision_free(m->vision);
    ds_model_weights_free(&m->w);
    ds_decoder_quant_free(&m->quant);
    ds_tokenizer_free(m->tok);
    ds_backend_free(m->be);
    ds_ckpt_close(m->ck);
    free(m);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

dsocr_status dsocr_model_load(const char *model_path, const dsocr_load_params *params,
                              dsocr_model **out, dsocr_error *err) {
    *out = NULL;
    if (!model_path || !*model_path) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "no model path given");
    dsocr_load_params lp = params ? *params : dsocr_load_default_params();
    dsocr_model *m = calloc(1, sizeof *m);
    if (!m) return ds_fail(err, DSOCR_ERR_NOMEM, "out of memory");
    dsocr_status s;

    /* A local folder is used as it is; "org/name" goes through the hub cache. */
    if (is_dir(model_path) || !ds_hub_is_repo_id(model_path)) {
        if (!is_dir(model_path)) {
            s = ds_fail(err, DSOCR_ERR_IO, "%s: no such model folder (give a checkpoint folder or a "
                        "Hugging Face repo id such as deepseek-ai/DeepSeek-OCR)", model_path);
            goto fail;
        }
        snprintf(m->dir, sizeof m->dir, "%s", model_path);
    } else {
        ds_hub_options ho = ds_hub_default_options();
        ho.offline = lp.offline;
        if (lp.revision) ho.revision = lp.revision;
        ho.progress = lp.progress;
        ho.progress_user = lp.progress_user;
        if ((s = ds_hub_resolve(model_path, &ho, m->dir, sizeof m->dir, err))) goto fail;
    }

    /* Everything is validated before any compute: config, tensors, tokenizer. */
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    if ((s = ds_config_load(path, &m->cfg, err))) goto fail;
    if ((s = ds_ckpt_open(m->dir, &m->ck, err))) goto fail;
    ds_binder *b = ds_binder_new(m->ck);
    if (!b) { s = ds_fail(err, DSOCR_ERR_NOMEM, "out of memory"); goto fail; }
    ds_model_bind(b, &m->cfg, &m->w);
    if ((s = ds_binder_finish(b, err))) goto fail;
    /* memory guard: mapped weights + the vision buffers reserved below, before any allocation */
    m->max_memory = lp.max_memory;
    m->weight_bytes = ds_ckpt_total_bytes(m->ck);
    {
        ds_mem_estimate est;
        ds_mem_estimate_request(&m->cfg, m->weight_bytes, 0, 0, 0, 0, &est);
        char what[4200];
        snprintf(what, sizeof what, "loading %s", m->dir);
        if ((s = ds_mem_check(&est, m->max_memory, 0, what, "free memory or raise --max-memory", err))) goto fail;
    }
    if (lp.quant != DSOCR_QUANT_NONE && lp.quant != DSOCR_QUANT_Q8 && lp.quant != DSOCR_QUANT_Q4) {
        s = ds_fail(err, DSOCR_ERR_INVALID_ARG, "load params: quant %d is not one of none (0), q8 (1), q4 (2)", lp.quant);
        goto fail;
    }
    if ((s = ds_backend_cpu_new(lp.n_threads, &m->be, err))) goto fail;
    if (lp.quant != DSOCR_QUANT_NONE) {   /* in the layout the backend's kernels read fastest */
        ds_dtype t = ds_backend_quant_dtype(m->be, lp.quant == DSOCR_QUANT_Q8 ? DS_Q8_0 : DS_Q4_0);
        ds_quant_plan plan = ds_quant_plan_for(t, 1);
        if ((s = ds_decoder_quantize(&m->w.lm, &plan, lp.n_threads, &m->quant, err))) goto fail;
    }
    if ((s = ds_tokenizer_load(m->dir, &m->tok, err))) goto fail;
    if (ds_tokenizer_vocab_size(m->tok) > m->cfg.lm.vocab_size) {
        s = ds_fail(err, DSOCR_ERR_FORMAT, "%s: tokenizer has %d ids but the model's vocab_size is %d",
                    m->dir, (int)ds_tokenizer_vocab_size(m->tok), m->cfg.lm.vocab_size);
        goto fail;
    }
    if ((s = ds_vision_new(m->be, &m->cfg, &m->w.vision, NULL, &m->vision, err))) goto fail;
    *out = m;
    return DSOCR_OK;
fail:
    dsocr_model_free(m);
    return s;
}

dsocr_status dsocr_ocr(dsocr_model *m, const dsocr_image *image, const dsocr_params *params,
                       dsocr_token_callback on_token, void *user, dsocr_result *out, dsocr_error *err) {
    if (!m || !image || !out) return ds_fail(err, DSOCR_ERR_INVALID_ARG, "dsocr_ocr: model, image and result are required");
    dsocr_params p = params ? *params : dsocr_default_params();
    return ds_pipeline_run(m, image, &p, on_token, user, NULL, out, err);
}

void dsocr_result_free(dsocr_result *r) {
    if (!r) return;
    free(r->text);
    free(r->token_ids);
    memset(r, 0, sizeof *r);
}
