/* Tensor views: a typed pointer with a shape. Weights are views into the
 * memory-mapped checkpoint (zero copy); activations are plain float arrays
 * owned by the run state. Row-major, contiguous unless strides say otherwise. */
#ifndef DS_TENSOR_H
#define DS_TENSOR_H

#include <stdint.h>
#include <string.h>

#define DS_MAX_DIMS 4

typedef enum ds_dtype {
    DS_F32 = 0,
    DS_BF16,
    DS_F16,
    DS_I64,
    DS_I32,
    DS_U8,
    /* Block-quantized weights (core/quant.h), 2-D [N, K] only, made at load time. A
     * tensor is a flat run of 32-element blocks; each row holds ceil(K/32) blocks
     * (the last one zero-padded), so stride[0] = that count * 32 elements.
     *   Q8_0 block, 34 bytes: f16 scale d, int8 q[32];         w[i] = d * q[i]
     *   Q4_0 block, 18 bytes: f16 scale d, uint8 q[16] nibbles; byte j holds element j
     *        (low nibble) and element j + 16 (high nibble);    w[i] = d * (nibble - 8)
     *   Q4_0X4: Q4_0's blocks with the rows interleaved in fours, for the int8
     *        dot-product GEMV (N a multiple of 4; layout in core/quant.h). */
    DS_Q8_0,
    DS_Q4_0,
    DS_Q4_0X4,
    DS_DTYPE_COUNT
} ds_dtype;

typedef struct ds_tensor {
    const char *name;            /* checkpoint name, for messages; may be NULL */
    ds_dtype dtype;
    int ndim;
    int64_t shape[DS_MAX_DIMS];  /* outermost first, as PyTorch */
    int64_t stride[DS_MAX_DIMS]; /* in elements */
    void *data;
} ds_tensor;

size_t ds_dtype_size(ds_dtype t);   /* bytes per element; 0 for block-quantized dtypes */
#define DS_QBLOCK 32                 /* elements per quantization block */
static inline int ds_dtype_is_quant(ds_dtype t) { return t == DS_Q8_0 || t == DS_Q4_0 || t == DS_Q4_0X4; }
static inline int ds_dtype_is_x4(ds_dtype t) { return t == DS_Q4_0X4; }
/* The block format of a quantized dtype: Q8_0 or Q4_0 (Q4_0X4 is Q4_0 interleaved). */
static inline ds_dtype ds_quant_base(ds_dtype t) { return t == DS_Q4_0X4 ? DS_Q4_0 : t; }
/* Bytes of n elements (quantized: n a multiple of DS_QBLOCK, whole blocks). */
size_t ds_dtype_bytes(ds_dtype t, int64_t n);
const char *ds_dtype_name(ds_dtype t);
int64_t ds_tensor_numel(const ds_tensor *t);
/* Fills contiguous strides from the shape. */
void ds_tensor_set_contiguous(ds_tensor *t);
int ds_tensor_is_contiguous(const ds_tensor *t);
/* "[3, 64, 64]" into buf; returns buf. */
const char *ds_shape_str(const ds_tensor *t, char *buf, size_t n);

/* bf16 <-> f32. bf16 is the top half of an IEEE f32; rounding is to nearest even,
 * NaN stays NaN. */
static inline float ds_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint16_t ds_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static inline float ds_round_bf16(float f) { return ds_bf16_to_f32(ds_f32_to_bf16(f)); }
float ds_f16_to_f32(uint16_t h);

/* Reads element i of a 1-D contiguous view of any float dtype as f32. */
float ds_tensor_get_f32(const ds_tensor *t, int64_t i);

#endif
