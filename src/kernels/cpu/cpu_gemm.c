/* Single-threaded f32 GEMM for the fast kernels: cblas_sgemm where the build has a
 * BLAS, else (-DDSOCR_NO_BLAS, e.g. the aarch64 cross build) our own blocked GEMM.
 *
 * The blocked GEMM is the classic three-level scheme: panels of KC x NC of op(B) and
 * MC x KC of A are packed into stack buffers (op(B) in NR-wide column strips, A in
 * MR-tall row strips, both k-major), then an MR x NR register-tile micro-kernel
 * sweeps them: NEON 8x12 on aarch64 (cpu_gemm_neon.c), plain C elsewhere.
 * Each C element is one sequential sum over k in KC blocks, whatever tile it falls
 * in, so results never depend on how callers split the columns. */
#if !defined(DSOCR_NO_BLAS)
#include <cblas.h>
#endif
#include <string.h>

#include "kernels/cpu/cpu.h"

#define KC 256   /* depth of one packed panel */
#define MC 64    /* rows of A per packed panel (multiple of DS_GEMM_MR) */
#define NC 96    /* columns of op(B) per packed panel (multiple of DS_GEMM_NR) */

/* Ap[strip][k][i] = A[i0 + i][k], rows past mc zero. */
static void pack_a(const float *A, int lda, int mc, int kc, float *Ap) {
    for (int i0 = 0; i0 < mc; i0 += DS_GEMM_MR, Ap += DS_GEMM_MR * kc) {
        int mr = mc - i0 < DS_GEMM_MR ? mc - i0 : DS_GEMM_MR;
        for (int k = 0; k < kc; k++) {
            int i = 0;
            for (; i < mr; i++) Ap[k * DS_GEMM_MR + i] = A[(size_t)(i0 + i) * lda + k];
            for (; i < DS_GEMM_MR; i++) Ap[k * DS_GEMM_MR + i] = 0.0f;
        }
    }
}

/* Bp[strip][k][j] = op(B)[k][j0 + j]: B[j0 + j][k] when trans_b (B is [N, K]), else
 * B[k][j0 + j] (B is [K, N]); columns past nc zero. B points at (k0, n0). */
static void pack_b(int trans_b, const float *B, int ldb, int kc, int nc, float *Bp) {
    for (int j0 = 0; j0 < nc; j0 += DS_GEMM_NR, Bp += DS_GEMM_NR * kc) {
        int nr = nc - j0 < DS_GEMM_NR ? nc - j0 : DS_GEMM_NR;
        for (int k = 0; k < kc; k++) {
            float *dst = Bp + k * DS_GEMM_NR;
            int j = 0;
            if (trans_b) for (; j < nr; j++) dst[j] = B[(size_t)(j0 + j) * ldb + k];
            else { memcpy(dst, B + (size_t)k * ldb + j0, (size_t)nr * sizeof(float)); j = nr; }
            for (; j < DS_GEMM_NR; j++) dst[j] = 0.0f;
        }
    }
}

#if !defined(__aarch64__)
/* C[MR, NR] = alpha · Ap·Bp (+ beta · C), the same rounding steps as the NEON kernel. */
static void gemm_tile_c(int kc, const float *Ap, const float *Bp, float *C, int ldc, float alpha, float beta) {
    float acc[DS_GEMM_MR][DS_GEMM_NR] = {{0}};
    for (int k = 0; k < kc; k++)
        for (int i = 0; i < DS_GEMM_MR; i++) {
            float a = Ap[k * DS_GEMM_MR + i];
            for (int j = 0; j < DS_GEMM_NR; j++) acc[i][j] += a * Bp[k * DS_GEMM_NR + j];
        }
    for (int i = 0; i < DS_GEMM_MR; i++)
        for (int j = 0; j < DS_GEMM_NR; j++) {
            float r = alpha * acc[i][j];
            if (beta != 0.0f) { float bc = beta * C[(size_t)i * ldc + j]; r = r + bc; }
            C[(size_t)i * ldc + j] = r;
        }
}
#define GEMM_TILE gemm_tile_c
#else
#define GEMM_TILE ds_neon_gemm_tile
#endif

/* One tile; partial tiles go through a full-size buffer and are merged with the same
 * two rounding steps (alpha·acc, then + beta·C) as a full tile. */
static void tile(int kc, const float *Ap, const float *Bp, float *C, int ldc, float alpha, float beta,
                 int mr, int nr) {
    if (mr == DS_GEMM_MR && nr == DS_GEMM_NR) {
        GEMM_TILE(kc, Ap, Bp, C, ldc, alpha, beta);
        return;
    }
    float t[DS_GEMM_MR * DS_GEMM_NR];
    GEMM_TILE(kc, Ap, Bp, t, DS_GEMM_NR, 1.0f, 0.0f);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float r = alpha * t[i * DS_GEMM_NR + j];
            if (beta != 0.0f) { float bc = beta * C[(size_t)i * ldc + j]; r = r + bc; }
            C[(size_t)i * ldc + j] = r;
        }
}

void ds_cpu_sgemm_blocked(int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {   /* no products: C = beta · C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    /* 64 KiB + 96 KiB of packed panels: on the stack, since ops never allocate */
    _Alignas(64) float Ap[MC * KC];
    _Alignas(64) float Bp[KC * NC];
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            float beta_k = pc == 0 ? beta : 1.0f;     /* later depth blocks add to C */
            pack_b(trans_b, trans_b ? B + (size_t)jc * ldb + pc : B + (size_t)pc * ldb + jc, ldb, kc, nc, Bp);
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                pack_a(A + (size_t)ic * lda + pc, lda, mc, kc, Ap);
                for (int jr = 0; jr < nc; jr += DS_GEMM_NR)
                    for (int ir = 0; ir < mc; ir += DS_GEMM_MR)
                        tile(kc, Ap + (size_t)ir * kc, Bp + (size_t)jr * kc, C + (size_t)(ic + ir) * ldc + jc + jr, ldc,
                             alpha, beta_k, mc - ir < DS_GEMM_MR ? mc - ir : DS_GEMM_MR,
                             nc - jr < DS_GEMM_NR ? nc - jr : DS_GEMM_NR);
            }
        }
    }
}

void ds_cpu_sgemm(int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
#if !defined(DSOCR_NO_BLAS)
    if (M == 1) {   /* one row (decode attention): sgemv streams B once; sgemm would pack it first */
        if (trans_b) cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, B, ldb, A, 1, beta, C, 1);
        else cblas_sgemv(CblasRowMajor, CblasTrans, K, N, alpha, B, ldb, A, 1, beta, C, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
#else
    ds_cpu_sgemm_blocked(trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}
