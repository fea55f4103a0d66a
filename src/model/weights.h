/* All the weights of DeepSeek-OCR: the vision half and the language model, bound
 * by their real checkpoint names. Binding through a recording binder (see
 * io/checkpoint.h) lists every tensor the model needs, which is how the
 * random-checkpoint generator learns names and shapes. */
#ifndef DS_WEIGHTS_H
#define DS_WEIGHTS_H

#include "io/checkpoint.h"
#include "io/config.h"
#include "model/decoder.h"
#include "model/vision.h"

typedef struct ds_model_weights {
    ds_vision_weights vision;   /* model.sam_model.*, model.vision_model.*, model.projector.*, ... */
    ds_decoder_weights lm;      /* model.embed_tokens, model.layers.*, model.norm, lm_head */
} ds_model_weights;

/* Binds every tensor; problems are collected by the binder. Free with ds_model_weights_free. */
void ds_model_bind(ds_binder *b, const ds_config *cfg, ds_model_weights *w);
void ds_model_weights_free(ds_model_weights *w);

#endif
