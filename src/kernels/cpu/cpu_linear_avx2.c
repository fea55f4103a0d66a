/* AVX2 + FMA kernels for x86-64 CPUs without AVX-512 (Zen 2/3, Intel client cores,
 * Haswell-to-Skylake servers): the decode GEMV over bf16 weights and the bf16 widening
 * of the large-M path. Everything else on such CPUs runs on the BLAS and the scalar
 * reference kernels. The GEMV takes x as ds_cpu_bf16_gemv_prep lays it out for the
 * AVX-512 kernel: xe/xo [M][K/32*16], the even / odd elements of each 32-element chunk;
 * a 256-bit half of a chunk (16 bf16 as 8 uint32 lanes) pairs with 8 of each. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/cpu/cpu.h"

__attribute__((target("avx2")))
void ds_avx2_bf16_to_f32(const uint16_t *src, int64_t n, float *dst) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i))), 16);
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(w));
    }
    for (; i < n; i++) dst[i] = ds_bf16_to_f32(src[i]);
}

/* One weight row against one prepared activation row: the vector part of K, read
 * front to back with 4 independent accumulators. */
__attribute__((target("avx2,fma")))
static float row_dot(const uint16_t *w, const float *xe, const float *xo, int nchunks) {
    const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int c = 0; c < nchunks; c++) {
        __m256i r0 = _mm256_loadu_si256((const __m256i *)(w + c * 32));        /* elements 0..15 */
        __m256i r1 = _mm256_loadu_si256((const __m256i *)(w + c * 32 + 16));   /* 16..31 */
        a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(r0, 16)), _mm256_loadu_ps(xe + c * 16), a0);
        a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(r0, hi)), _mm256_loadu_ps(xo + c * 16), a1);
        a2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(r1, 16)), _mm256_loadu_ps(xe + c * 16 + 8), a2);
        a3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(r1, hi)), _mm256_loadu_ps(xo + c * 16 + 8), a3);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* y rows [j0, j1) of the job (relative to n0): each weight row is read once from
 * memory, then again from cache for the other activation rows. */
void ds_cpu_bf16_gemv_rows_avx2(const ds_linear_job *J, const float *buf, int64_t j0, int64_t j1) {
    const int K = J->K, M = J->M, nchunks = K / 32, kv = nchunks * 32;
    const int64_t sx = (int64_t)nchunks * 16, N = ds_job_n1(J) - J->n0;
    const float *xe = buf, *xo = buf + (size_t)M * sx;
    for (int64_t j = j0; j < j1; j++) {
        const uint16_t *w = ds_w_row_ptr(J->W, J->n0 + j);
        float bias = J->b ? ds_tensor_get_f32(J->b, J->n0 + j) : 0.0f;
        for (int m = 0; m < M; m++) {
            float s = row_dot(w, xe + m * sx, xo + m * sx, nchunks);
            for (int k = kv; k < K; k++) s += J->x[(size_t)m * K + k] * ds_bf16_to_f32(w[k]);   /* K tail */
            J->y[(size_t)m * N + j] = s + bias;
        }
    }
}

#endif   /* __x86_64__ */
