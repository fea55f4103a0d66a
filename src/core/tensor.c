#include "core/tensor.h"

#include "core/quant.h"

#include <stdio.h>

size_t ds_dtype_size(ds_dtype t) {
    switch (t) {
    case DS_F32: case DS_I32: return 4;
    case DS_BF16: case DS_F16: return 2;
    case DS_I64: return 8;
    case DS_U8: return 1;
    default: return 0;
    }
}

size_t ds_dtype_bytes(ds_dtype t, int64_t n) {
    switch (t) {
    case DS_Q8_0: return (size_t)(n / DS_QBLOCK) * (2 + DS_QBLOCK);
    case DS_Q4_0: case DS_Q4_0X4: return (size_t)(n / DS_QBLOCK) * (2 + DS_QBLOCK / 2);
    default: return (size_t)n * ds_dtype_size(t);
    }
}

const char *ds_dtype_name(ds_dtype t) {
    static const char *names[DS_DTYPE_COUNT] = {"F32", "BF16", "F16", "I64", "I32", "U8", "Q8_0", "Q4_0", "Q4_0x4"};
    return (unsigned)t < DS_DTYPE_COUNT ? names[t] : "?";
}

int64_t ds_tensor_numel(const ds_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

void ds_tensor_set_contiguous(ds_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) { t->stride[i] = s; s *= t->shape[i]; }
}

int ds_tensor_is_contiguous(const ds_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

const char *ds_shape_str(const ds_tensor *t, char *buf, size_t n) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}

float ds_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            u = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) u = sign | 0x7f800000u | (man << 13);
    else u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float ds_tensor_get_f32(const ds_tensor *t, int64_t i) {
    switch (t->dtype) {
    case DS_F32: return ((const float *)t->data)[i];
    case DS_BF16: return ds_bf16_to_f32(((const uint16_t *)t->data)[i]);
    case DS_F16: return ds_f16_to_f32(((const uint16_t *)t->data)[i]);
    case DS_I64: return (float)((const int64_t *)t->data)[i];
    case DS_I32: return (float)((const int32_t *)t->data)[i];
    case DS_U8: return (float)((const uint8_t *)t->data)[i];
    case DS_Q8_0: case DS_Q4_0: {   /* element i of the flat run of blocks */
        const uint8_t *blk = (const uint8_t *)t->data + ds_dtype_bytes(t->dtype, i / DS_QBLOCK * DS_QBLOCK);
        int j = (int)(i % DS_QBLOCK);
        float d = ds_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
        if (t->dtype == DS_Q8_0) return d * (float)(int8_t)blk[2 + j];
        int nib = j < DS_QBLOCK / 2 ? blk[2 + j] & 15 : blk[2 + j - DS_QBLOCK / 2] >> 4;
        return d * (float)(nib - 8);
    }
    case DS_Q4_0X4:   /* element i of the [N, stride[0]] matrix */
        return ds_x4_get(t, i / t->stride[0], i % t->stride[0]);
    default: return 0.0f;
    }
}
