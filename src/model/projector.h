/* Projector from fused vision features to the LM width (spec 7.3, 7.4).
 * "linear" (the real checkpoint): y = x·Wᵀ + b.
 * "downsample_mlp_gelu": k x k blocks of the g x g feature map (zero-padded
 * bottom/right) are unfolded channel-major (feature c*k*k + dy*k + dx, blocks
 * row-major), then Linear, ([GELU, Linear])*, GELU, Linear. */
#ifndef DS_PROJECTOR_H
#define DS_PROJECTOR_H

#include "core/status.h"
#include "core/tensor.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "kernels/ops.h"
#include "model/vision_buf.h"

#define DS_PROJ_MAX_LINEARS 16

typedef enum ds_proj_type {
    DS_PROJ_UNSUPPORTED = 0,
    DS_PROJ_LINEAR,
    DS_PROJ_DOWNSAMPLE_MLP_GELU
} ds_proj_type;

/* I = input_dim, n = n_embed, k = downsample_ratio, R = n * mlp_ratio. */
typedef struct ds_projector_weights {
    ds_tensor w[DS_PROJ_MAX_LINEARS];  /* linear: [n, I]. downsample: [R, I*k*k], ([R, R])*, [n, R] */
    ds_tensor b[DS_PROJ_MAX_LINEARS];  /* [rows of w[i]] */
    int n_linear;
} ds_projector_weights;

ds_proj_type ds_projector_type(const ds_projector_config *c);
void ds_projector_bind(ds_binder *b, const ds_projector_config *c, ds_projector_weights *w);
/* Fails for types other than linear / downsample_mlp_gelu, or unusable dims. */
dsocr_status ds_projector_check_config(const ds_projector_config *c, dsocr_error *err);
/* Output grid side for a g x g input map (g, or ceil(g/k) when downsampling). */
int ds_projector_out_side(const ds_projector_config *c, int g);

typedef struct ds_projector_state {
    ds_vbuf blocks;   /* [L, k*k, I] one view, window-partitioned */
    ds_vbuf unfold;   /* [B*L, I*k*k] channel-major unfolded features */
    ds_vbuf ha, hb;   /* [B*L, R] hidden activations */
} ds_projector_state;

dsocr_status ds_projector_state_reserve(ds_backend *be, const ds_projector_config *c, ds_projector_state *s,
                                        int batch, int g, dsocr_error *err);
void ds_projector_state_free(ds_backend *be, ds_projector_state *s);

/* x: backend [B, g*g, I]; y: backend [B, go*go, n], go = ds_projector_out_side(g). */
void ds_projector_forward(ds_backend *be, const ds_projector_config *c, const ds_projector_weights *w,
                          ds_projector_state *s, const float *x, int batch, int g, float *y);

#endif
