/* NEON exp and erfc for the aarch64 kernels: the same approximations as the AVX-512
 * ones in cpu_math.h.
 * exp: x = n·ln2 + r, degree-7 Taylor polynomial on |r| <= ln2/2, 2^n built in the
 *      exponent field in two halves (so n = 128 near the overflow edge stays finite);
 *      inputs below -87.3 give 0 (so -inf gives exactly 0), above 88.8 give +inf.
 * erfc (z >= 0): Numerical Recipes' Chebyshev fit, relative error < 1.2e-7. */
#ifndef DS_CPU_MATH_NEON_H
#define DS_CPU_MATH_NEON_H

#if defined(__aarch64__)
#include <arm_neon.h>

/* 2^n for integer-valued n in [-126, 127] */
static inline float32x4_t ds_pow2i_neon(int32x4_t n) {
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n, vdupq_n_s32(127)), 23));
}

static inline float32x4_t ds_exp_neon(float32x4_t x) {
    const float32x4_t ln2_hi = vdupq_n_f32(0.693359375f), ln2_lo = vdupq_n_f32(-2.12194440e-4f);
    uint32x4_t underflow = vcltq_f32(x, vdupq_n_f32(-87.3f));
    x = vminq_f32(x, vdupq_n_f32(88.8f));
    x = vmaxq_f32(x, vdupq_n_f32(-87.3f));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, ln2_hi);
    r = vfmsq_f32(r, n, ln2_lo);
    float32x4_t p = vdupq_n_f32(1.0f / 5040);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    int32x4_t ni = vcvtq_s32_f32(n);                 /* [-126, 128] */
    int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    p = vmulq_f32(vmulq_f32(p, ds_pow2i_neon(n1)), ds_pow2i_neon(n2));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(p), underflow));
}

/* erfc(z) for z >= 0 */
static inline float32x4_t ds_erfc_pos_neon(float32x4_t z) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t t = vdivq_f32(one, vfmaq_f32(one, vdupq_n_f32(0.5f), z));
    float32x4_t p = vdupq_n_f32(0.17087277f);
    p = vfmaq_f32(vdupq_n_f32(-0.82215223f), p, t);
    p = vfmaq_f32(vdupq_n_f32(1.48851587f), p, t);
    p = vfmaq_f32(vdupq_n_f32(-1.13520398f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0.27886807f), p, t);
    p = vfmaq_f32(vdupq_n_f32(-0.18628806f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0.09678418f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0.37409196f), p, t);
    p = vfmaq_f32(vdupq_n_f32(1.00002368f), p, t);
    p = vfmaq_f32(vdupq_n_f32(-1.26551223f), p, t);
    float32x4_t e = vsubq_f32(p, vmulq_f32(z, z));
    return vmulq_f32(t, ds_exp_neon(e));
}

#endif
#endif
