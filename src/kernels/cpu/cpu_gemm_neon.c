/* NEON micro-kernel of the blocked GEMM (cpu_gemm.c): an 8 x 12 tile of C held in 24
 * q-registers; each k step loads 8 packed A values (2 regs) and 12 packed B values
 * (3 regs) and does 24 lane-broadcast FMAs. */
#if defined(__aarch64__)
#include <arm_neon.h>

#include "kernels/cpu/cpu.h"

_Static_assert(DS_GEMM_MR == 8 && DS_GEMM_NR == 12, "the NEON tile is 8 x 12");

/* c[0..4) = alpha · acc (+ beta · c): two roundings, as the scalar edge merge */
static inline void store4(float *c, float32x4_t acc, float32x4_t valpha, float32x4_t vbeta, int use_beta) {
    float32x4_t r = vmulq_f32(acc, valpha);
    if (use_beta) r = vaddq_f32(r, vmulq_f32(vld1q_f32(c), vbeta));
    vst1q_f32(c, r);
}

/* Written with macros so that all 24 accumulators stay in registers. */
#define GEMM_ZERO(i) float32x4_t c##i##0 = vdupq_n_f32(0.0f), c##i##1 = c##i##0, c##i##2 = c##i##0;
#define GEMM_FMA(i, a, lane) \
    c##i##0 = vfmaq_laneq_f32(c##i##0, b0, a, lane); \
    c##i##1 = vfmaq_laneq_f32(c##i##1, b1, a, lane); \
    c##i##2 = vfmaq_laneq_f32(c##i##2, b2, a, lane);
#define GEMM_STORE(i) \
    store4(C + (size_t)(i) * ldc, c##i##0, valpha, vbeta, use_beta); \
    store4(C + (size_t)(i) * ldc + 4, c##i##1, valpha, vbeta, use_beta); \
    store4(C + (size_t)(i) * ldc + 8, c##i##2, valpha, vbeta, use_beta);

void ds_neon_gemm_tile(int kc, const float *Ap, const float *Bp, float *C, int ldc, float alpha, float beta) {
    GEMM_ZERO(0) GEMM_ZERO(1) GEMM_ZERO(2) GEMM_ZERO(3)
    GEMM_ZERO(4) GEMM_ZERO(5) GEMM_ZERO(6) GEMM_ZERO(7)
    for (int k = 0; k < kc; k++, Ap += 8, Bp += 12) {
        const float32x4_t b0 = vld1q_f32(Bp), b1 = vld1q_f32(Bp + 4), b2 = vld1q_f32(Bp + 8);
        const float32x4_t a0 = vld1q_f32(Ap), a1 = vld1q_f32(Ap + 4);
        GEMM_FMA(0, a0, 0) GEMM_FMA(1, a0, 1) GEMM_FMA(2, a0, 2) GEMM_FMA(3, a0, 3)
        GEMM_FMA(4, a1, 0) GEMM_FMA(5, a1, 1) GEMM_FMA(6, a1, 2) GEMM_FMA(7, a1, 3)
    }
    const float32x4_t valpha = vdupq_n_f32(alpha), vbeta = vdupq_n_f32(beta);
    const int use_beta = beta != 0.0f;
    GEMM_STORE(0) GEMM_STORE(1) GEMM_STORE(2) GEMM_STORE(3)
    GEMM_STORE(4) GEMM_STORE(5) GEMM_STORE(6) GEMM_STORE(7)
}

#else
/* ISO C forbids an empty translation unit */
typedef int ds_cpu_gemm_neon_unused;
#endif
