#include "model/weights.h"

#include <string.h>

void ds_model_bind(ds_binder *b, const ds_config *cfg, ds_model_weights *w) {
    memset(w, 0, sizeof *w);
    ds_vision_bind(b, cfg, &w->vision);
    ds_decoder_bind(b, cfg, &w->lm);
}

void ds_model_weights_free(ds_model_weights *w) {
    ds_decoder_weights_free(&w->lm);
}
