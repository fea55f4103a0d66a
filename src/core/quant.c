/* Block quantization and the reference dequantizer (formats in core/tensor.h). */
#include "core/quant.h"

#include <math.h>
#include <string.h>

uint16_t ds_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;       /* NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00u;      /* >= 65520 rounds to inf */
    if (a >= 0x38800000u) {                           /* normal half (>= 2^-14) */
        uint32_t r = a - 0x38000000u;                 /* exponent bias 127 -> 15 */
        r += 0xfffu + ((r >> 13) & 1u);               /* ties to even; carries into the exponent */
        return sign | (uint16_t)(r >> 13);
    }
    float v;                                          /* subnormal half: units of 2^-24 */
    memcpy(&v, &a, 4);
    return sign | (uint16_t)lrintf(v * 16777216.0f);
}

static void put_f16(uint8_t *p, uint16_t h) { p[0] = (uint8_t)h; p[1] = (uint8_t)(h >> 8); }

/* 32 source elements from index k0 (zeros past k) as f32. */
static void load_block(const void *src, ds_dtype dt, int64_t k0, int64_t k, float x[DS_QBLOCK]) {
    int n = k - k0 < DS_QBLOCK ? (int)(k - k0) : DS_QBLOCK;
    if (dt == DS_BF16) {
        const uint16_t *s = (const uint16_t *)src + k0;
        for (int i = 0; i < n; i++) x[i] = ds_bf16_to_f32(s[i]);
    } else if (dt == DS_F16) {
        const uint16_t *s = (const uint16_t *)src + k0;
        for (int i = 0; i < n; i++) x[i] = ds_f16_to_f32(s[i]);
    } else {
        memcpy(x, (const float *)src + k0, (size_t)n * sizeof(float));
    }
    for (int i = n; i < DS_QBLOCK; i++) x[i] = 0.0f;
}

/* Round to nearest, ties to even, for |v| < 2^22: adding 1.5·2^23 leaves no fraction
 * bits, so the FPU's default rounding does the work (and the loop vectorises). */
static inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

static void quantize_block_q8(const float x[DS_QBLOCK], uint8_t *blk) {
    float amax = 0.0f;
    for (int i = 0; i < DS_QBLOCK; i++) {
        float a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }
    uint16_t h = ds_f32_to_f16(amax / 127.0f);
    float d = ds_f16_to_f32(h), id = d > 0.0f ? 1.0f / d : 0.0f;
    put_f16(blk, h);
    for (int i = 0; i < DS_QBLOCK; i++) {
        float q = round_even(x[i] * id);   /* |q| <= 127.1 */
        q = q > 127.0f ? 127.0f : q >= -127.0f ? q : -127.0f;   /* NaN -> -127, never UB */
        blk[2 + i] = (uint8_t)(int8_t)q;
    }
}

static void quantize_block_q4(const float x[DS_QBLOCK], uint8_t *blk) {
    float amax = 0.0f, m = 0.0f;
    for (int i = 0; i < DS_QBLOCK; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); m = x[i]; }
    uint16_t h = ds_f32_to_f16(m / -8.0f);
    float d = ds_f16_to_f32(h), id = d != 0.0f ? 1.0f / d : 0.0f;
    put_f16(blk, h);
    uint8_t q[DS_QBLOCK];
    for (int i = 0; i < DS_QBLOCK; i++) {
        float v = round_even(x[i] * id) + 8.0f;
        q[i] = (uint8_t)(v > 15.0f ? 15.0f : v >= 0.0f ? v : 0.0f);   /* NaN -> 0 */
    }
    for (int j = 0; j < DS_QBLOCK / 2; j++) blk[2 + j] = (uint8_t)(q[j] | q[j + DS_QBLOCK / 2] << 4);
}

void ds_quantize_row(ds_dtype t, const void *src, ds_dtype src_dtype, int64_t k, void *dst) {
    uint8_t *out = dst;
    const size_t bb = ds_dtype_bytes(t, DS_QBLOCK);
    float x[DS_QBLOCK];
    for (int64_t b = 0; b < ds_quant_blocks(k); b++) {
        load_block(src, src_dtype, b * DS_QBLOCK, k, x);
        if (t == DS_Q8_0) quantize_block_q8(x, out + b * bb);
        else quantize_block_q4(x, out + b * bb);
    }
}

void ds_dequantize_row(ds_dtype t, const void *src, int64_t k, float *dst) {
    const uint8_t *in = src;
    const size_t bb = ds_dtype_bytes(t, DS_QBLOCK);
    for (int64_t b = 0; b < ds_quant_blocks(k); b++) {
        const uint8_t *blk = in + b * bb;
        float d = ds_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
        for (int i = 0; i < DS_QBLOCK && b * DS_QBLOCK + i < k; i++) {
            float q;
            if (t == DS_Q8_0) q = (float)(int8_t)blk[2 + i];
            else q = (float)((i < DS_QBLOCK / 2 ? blk[2 + i] & 15 : blk[2 + i - DS_QBLOCK / 2] >> 4) - 8);
            dst[b * DS_QBLOCK + i] = d * q;
        }
    }
}

float ds_x4_get(const ds_tensor *W, int64_t row, int64_t col) {
    const int64_t g = row / 4, b = col / DS_QBLOCK;
    const int r = (int)(row % 4), i = (int)(col % DS_QBLOCK);
    const uint8_t *u = ds_x4_units(W, g) + 64 * (size_t)b;
    float d = ds_f16_to_f32(ds_x4_scales(W, g)[4 * b + r]);
    int q = (i < 16 ? u[ds_x4_byte(r, i)] & 15 : u[ds_x4_byte(r, i - 16)] >> 4) - 8;
    return d * (float)q;
}

void ds_dequantize_w_row(const ds_tensor *W, int64_t row, int64_t k, float *dst) {
    if (!ds_dtype_is_x4(W->dtype)) {
        ds_dequantize_row(W->dtype, (const uint8_t *)W->data + ds_dtype_bytes(W->dtype, row * W->stride[0]), k, dst);
        return;
    }
    for (int64_t i = 0; i < k; i++) dst[i] = ds_x4_get(W, row, i);   /* reference speed: tests and odd paths */
}

typedef struct {
    const ds_tensor *src;
    ds_dtype t;
    uint8_t *dst;
    size_t row_bytes;
} quant_job;

static const void *src_row(const ds_tensor *s, int64_t r) {
    return (const char *)s->data + (size_t)(r * s->stride[0]) * ds_dtype_size(s->dtype);
}

static void quant_task(void *ctx, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    quant_job *J = ctx;
    const ds_tensor *s = J->src;
    for (int64_t r = r0; r < r1; r++)
        ds_quantize_row(J->t, src_row(s, r), s->dtype, s->shape[1], J->dst + (size_t)r * J->row_bytes);
}

/* Q4_0X4: items are groups of 4 rows; each block of each row is quantized as Q4_0's,
 * then its scale and nibble bytes are scattered into place. */
static void quant_x4_task(void *ctx, int64_t g0, int64_t g1, int tid) {
    (void)tid;
    quant_job *J = ctx;
    const ds_tensor *s = J->src;
    const int64_t K = s->shape[1], nb = ds_quant_blocks(K), G = s->shape[0] / 4;
    uint16_t *scales = (uint16_t *)(J->dst + 64 * (size_t)(G * nb));
    for (int64_t g = g0; g < g1; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *u = J->dst + 64 * (size_t)(g * nb + b);
            for (int r = 0; r < 4; r++) {
                float x[DS_QBLOCK];
                uint8_t blk[2 + DS_QBLOCK / 2];
                load_block(src_row(s, 4 * g + r), s->dtype, b * DS_QBLOCK, K, x);
                quantize_block_q4(x, blk);
                scales[4 * (g * nb + b) + r] = (uint16_t)(blk[0] | blk[1] << 8);
                for (int j = 0; j < 16; j++) u[ds_x4_byte(r, j)] = blk[2 + j];
            }
        }
}

void ds_quantize_tensor(ds_pool *pool, const ds_tensor *src, ds_dtype t, void *dst_data, ds_tensor *dst) {
    if (!ds_quant_fits(t, src->shape[0])) t = ds_quant_base(t);
    quant_job J = {src, t, dst_data, ds_quant_row_bytes(t, src->shape[1])};
    if (ds_dtype_is_x4(t)) ds_pool_for(pool, src->shape[0] / 4, 4, quant_x4_task, &J);
    else ds_pool_for(pool, src->shape[0], 16, quant_task, &J);
    memset(dst, 0, sizeof *dst);
    dst->name = src->name;
    dst->dtype = t;
    dst->ndim = 2;
    dst->shape[0] = src->shape[0];
    dst->shape[1] = src->shape[1];
    dst->stride[0] = ds_quant_blocks(src->shape[1]) * DS_QBLOCK;
    dst->stride[1] = 1;
    dst->data = dst_data;
}
