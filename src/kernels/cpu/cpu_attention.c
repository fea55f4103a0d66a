/* Flash-style attention: per (batch, head, block of QB queries) the keys are visited
 * in blocks of KB with an online softmax, so no Lq x Lk score matrix ever exists
 * (SAM's global attention has 4096-6400 tokens). Both products are single-threaded
 * ds_cpu_sgemm calls on strided views; the decomposed rel-pos bias and the causal mask
 * are applied to each score block as it is made (exp rows in AVX-512, AVX2 or NEON). */
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <math.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/cpu_math.h"
#include "kernels/ref/ref.h"

#define QB 128   /* query rows per task: the packed q block is reused over all key blocks */
#define KB 512   /* keys per block; S [QB, KB] = 256 KiB stays in L2 */

typedef struct { ds_backend *be; const ds_attn_args *a; int n_qblocks; } attn_job;

#if defined(__x86_64__)
/* p[0..n) = exp(s - mx) in place; returns the sum. */
__attribute__((target("avx512f")))
static float exp_row_avx512(float *s, int n, float mx) {
    __m512 vmx = _mm512_set1_ps(mx), acc = _mm512_setzero_ps();
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 e = ds_exp512(_mm512_sub_ps(_mm512_loadu_ps(s + j), vmx));
        _mm512_storeu_ps(s + j, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (j < n) {
        __mmask16 m = (__mmask16)((1u << (n - j)) - 1);
        __m512 e = ds_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), vmx));
        _mm512_mask_storeu_ps(s + j, m, e);
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(m, e));
    }
    return _mm512_reduce_add_ps(acc);
}
#endif

#if defined(__x86_64__)
/* Lanes [0, n) of 8 set, for maskload / maskstore. */
__attribute__((target("avx2")))
static inline __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2,fma")))
static float exp_row_avx2(float *s, int n, float mx) {
    __m256 vmx = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = ds_exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), vmx));
        _mm256_storeu_ps(s + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (j < n) {
        __m256i m = lanes_below(n - j);
        __m256 e = _mm256_and_ps(ds_exp256(_mm256_sub_ps(_mm256_maskload_ps(s + j, m), vmx)), _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(s + j, m, e);
        acc = _mm256_add_ps(acc, e);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* max over 8 lanes */
__attribute__((target("avx2")))
static inline float hmax256(__m256 v) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

/* add_relpos_max_avx512 / row_max_avx512 on 8 lanes (bh NULL: the max only) */
__attribute__((target("avx2")))
static float add_relpos_max_avx2(float *s, int n, const float *bh, const float *bw, int ky, int kx, int kw) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 vmax = ninf;
    int j = 0;
    while (j < n) {
        int seg = bh ? (kw - kx < n - j ? kw - kx : n - j) : n - j;
        __m256 vb = bh ? _mm256_set1_ps(bh[ky]) : _mm256_setzero_ps();
        for (int c = 0; c < seg; c += 8) {
            __m256i m = lanes_below(seg - c);
            __m256 v = _mm256_maskload_ps(s + j + c, m);
            if (bh) {
                v = _mm256_add_ps(v, _mm256_add_ps(vb, _mm256_maskload_ps(bw + kx + c, m)));
                _mm256_maskstore_ps(s + j + c, m, v);
            }
            vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(m)));
        }
        j += seg;
        kx = 0;
        ky++;
    }
    return hmax256(vmax);
}
#endif

static float exp_row(float *s, int n, float mx) {
#if defined(__x86_64__)
    if (ds_cpu_has_avx512) return exp_row_avx512(s, n, mx);
    if (ds_cpu_has_avx2) return exp_row_avx2(s, n, mx);
#elif defined(__aarch64__)
    if (ds_cpu_has_neon) return ds_neon_exp_row(s, n, mx);
#endif
    float sum = 0.0f;
    for (int j = 0; j < n; j++) { s[j] = expf(s[j] - mx); sum += s[j]; }
    return sum;
}

#if defined(__x86_64__)
/* s[0..n) += bh[ky] + bw[kx..] for keys laid out row-major on a grid kw wide, starting
 * at grid position (ky, kx); returns max over s[0..n). */
__attribute__((target("avx512f")))
static float add_relpos_max_avx512(float *s, int n, const float *bh, const float *bw, int ky, int kx, int kw) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int j = 0;
    while (j < n) {
        int seg = kw - kx < n - j ? kw - kx : n - j;      /* keys left on this grid row */
        __m512 vb = _mm512_set1_ps(bh[ky]);
        int c = 0;
        for (; c < seg; c += 16) {
            __mmask16 m = seg - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (seg - c)) - 1);
            __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, s + j + c),
                                     _mm512_add_ps(vb, _mm512_maskz_loadu_ps(m, bw + kx + c)));
            _mm512_mask_storeu_ps(s + j + c, m, v);
            vmax = _mm512_mask_max_ps(vmax, m, vmax, v);
        }
        j += seg;
        kx = 0;
        ky++;
    }
    return _mm512_reduce_max_ps(vmax);
}

__attribute__((target("avx512f")))
static float row_max_avx512(const float *s, int n) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
        vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, s + j));
    }
    return _mm512_reduce_max_ps(vmax);
}
#endif

/* Adds the rel-pos bias (if any) to the first n scores and returns their max. */
static float bias_and_max(float *s, int n, const float *bh, const float *bw, int ky, int kx, int kw) {
#if defined(__x86_64__)
    if (ds_cpu_has_avx512) return bh ? add_relpos_max_avx512(s, n, bh, bw, ky, kx, kw) : row_max_avx512(s, n);
    if (ds_cpu_has_avx2) return add_relpos_max_avx2(s, n, bh, bw, ky, kx, kw);
#endif
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (bh) {
            s[j] += bh[ky] + bw[kx];
            if (++kx == kw) { kx = 0; ky++; }
        }
        if (s[j] > mx) mx = s[j];
    }
    return mx;
}

/* Keys query row i sees: all Lk, or with the causal mask those at positions
 * <= q_pos0 + i (clamped to 0..Lk). */
static int keys_visible(const ds_attn_args *a, int i) {
    if (!a->causal) return a->Lk;
    int64_t last = (int64_t)a->q_pos0 + i;
    return last + 1 < a->Lk ? (int)(last + 1 < 0 ? 0 : last + 1) : a->Lk;
}

/* items = (batch, head, query block) */
static void attn_task(void *ctx, int64_t t0, int64_t t1, int tid) {
    attn_job *J = ctx;
    const ds_attn_args *a = J->a;
    int hd = a->head_dim;
    float *S = ds_scratch(J->be, tid);          /* [QB, KB] scores, then probabilities */
    float *O = S + QB * KB;                     /* [QB, hd] unnormalised output */
    float *row_max = O + (size_t)QB * hd;       /* [QB] */
    float *row_sum = row_max + QB;              /* [QB] */
    for (int64_t t = t0; t < t1; t++) {
        int qb = (int)(t % J->n_qblocks);
        int h = (int)(t / J->n_qblocks % a->n_heads);
        int64_t bi = t / J->n_qblocks / a->n_heads;
        int i0 = qb * QB, qn = a->Lq - i0 < QB ? a->Lq - i0 : QB;
        const float *q = a->q + bi * a->q_batch_stride + (size_t)i0 * a->q_stride + (size_t)h * hd;
        const float *kbase = a->k + bi * a->k_batch_stride + (size_t)h * (a->k_head_stride ? (size_t)a->k_head_stride : (size_t)hd);
        const float *vbase = a->v + bi * a->v_batch_stride + (size_t)h * (a->v_head_stride ? (size_t)a->v_head_stride : (size_t)hd);
        const float *rh = NULL, *rw = NULL;
        if (a->rel_h) {
            size_t row0 = ((size_t)bi * a->n_heads + h) * a->Lq + i0;
            rh = a->rel_h + row0 * a->kh;
            rw = a->rel_w + row0 * a->kw;
        }
        int n_keys = keys_visible(a, i0 + qn - 1);   /* to the block's last query row */
        for (int i = 0; i < qn; i++) row_max[i] = -INFINITY, row_sum[i] = 0.0f;
        for (size_t e = 0; e < (size_t)qn * hd; e++) O[e] = 0.0f;
        for (int j0 = 0; j0 < n_keys; j0 += KB) {
            int kn = n_keys - j0 < KB ? n_keys - j0 : KB;
            /* S[qn, kn] = scale · q kᵀ */
            ds_cpu_sgemm(1, qn, kn, hd, a->scale, q, a->q_stride, kbase + (size_t)j0 * a->k_stride, a->k_stride,
                         0.0f, S, KB);
            for (int i = 0; i < qn; i++) {
                float *s = S + (size_t)i * KB;
                int visible = kn;                       /* causal: keys j0+j <= q_pos0 + i0 + i */
                if (a->causal) {
                    int64_t lim = (int64_t)a->q_pos0 + i0 + i - j0 + 1;
                    visible = lim < kn ? (int)(lim < 0 ? 0 : lim) : kn;
                }
                for (int j = visible; j < kn; j++) s[j] = 0.0f;   /* masked: probability exactly 0 */
                if (visible == 0) continue;
                float mx = bias_and_max(s, visible, rh ? rh + (size_t)i * a->kh : NULL,
                                        rh ? rw + (size_t)i * a->kw : NULL, rh ? j0 / a->kw : 0,
                                        rh ? j0 % a->kw : 0, a->kw);
                if (row_max[i] > mx) mx = row_max[i];
                float corr = row_max[i] == -INFINITY ? 0.0f : expf(row_max[i] - mx);
                row_max[i] = mx;
                row_sum[i] = row_sum[i] * corr + exp_row(s, visible, mx);
                if (corr != 1.0f) {
                    float *o = O + (size_t)i * hd;
                    for (int d = 0; d < hd; d++) o[d] *= corr;
                }
            }
            /* O[qn, hd] += P[qn, kn] · v[kn, hd] (masked rows have P = 0) */
            ds_cpu_sgemm(0, qn, hd, kn, 1.0f, S, KB, vbase + (size_t)j0 * a->v_stride, a->v_stride, 1.0f, O, hd);
        }
        for (int i = 0; i < qn; i++) {
            float *out = a->out + bi * a->out_batch_stride + (size_t)(i0 + i) * a->out_stride + (size_t)h * hd;
            float inv = row_sum[i] > 0.0f ? 1.0f / row_sum[i] : 0.0f;
            for (int d = 0; d < hd; d++) out[d] = O[(size_t)i * hd + d] * inv;
        }
    }
}

/* ---- one query row over head-major keys (decode) --------------------------------------
 * A decode step has Lq = 1 and, in the decoder's cache, each head's keys and values as
 * contiguous [Lk, 128] runs. The flash path's BLAS calls streamed them at ~13 GB/s (the
 * KV of 12 layers does not stay in cache); here q and the output live in registers, each
 * key and value row is read once, and software prefetch runs PF_BYTES ahead. */
#if defined(__x86_64__)
#define DEC_HD 128
#define PF_BYTES 2048
#define HD8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* One head of one query row: s = scale · q·kᵀ over the n visible keys, softmax, out =
 * p·v. q and out stay in registers (8 x 16 lanes); each key and value row (128 values)
 * is read once, with software prefetch PF_BYTES ahead. Keys and values are f32, or bf16
 * (the quantized decoders' cache: half the bytes, widened in registers). */
#define DECODE_HEAD(NAME, T) \
__attribute__((target("avx512f"))) \
static void NAME(const float *q, const T *k, const T *v, int n, float scale, float *s, float *out) { \
    enum { ROW_BYTES = DEC_HD * sizeof(T) }; \
    HD8(LOADQ) \
    for (int j = 0; j < n; j++) {   /* s[j] = scale · q·k_j */ \
        const T *kj = k + (size_t)j * DEC_HD; \
        for (int c = 0; c < ROW_BYTES; c += 64) _mm_prefetch((const char *)kj + PF_BYTES + c, _MM_HINT_T0); \
        __m512 a0 = _mm512_mul_ps(q0, LOAD(kj)); \
        __m512 a1 = _mm512_mul_ps(q1, LOAD(kj + 16)); \
        a0 = _mm512_fmadd_ps(q2, LOAD(kj + 32), a0); \
        a1 = _mm512_fmadd_ps(q3, LOAD(kj + 48), a1); \
        a0 = _mm512_fmadd_ps(q4, LOAD(kj + 64), a0); \
        a1 = _mm512_fmadd_ps(q5, LOAD(kj + 80), a1); \
        a0 = _mm512_fmadd_ps(q6, LOAD(kj + 96), a0); \
        a1 = _mm512_fmadd_ps(q7, LOAD(kj + 112), a1); \
        s[j] = scale * _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)); \
    } \
    float inv = 1.0f / exp_row(s, n, row_max_avx512(s, n)); \
    HD8(ZERO) \
    for (int j = 0; j < n; j++) {   /* o += p_j · v_j */ \
        const T *vj = v + (size_t)j * DEC_HD; \
        for (int c = 0; c < ROW_BYTES; c += 64) _mm_prefetch((const char *)vj + PF_BYTES + c, _MM_HINT_T0); \
        const __m512 p = _mm512_set1_ps(s[j]); \
        HD8(ACC) \
    } \
    const __m512 vinv = _mm512_set1_ps(inv); \
    HD8(STORE) \
}
#define LOADQ(i) const __m512 q##i = _mm512_loadu_ps(q + 16 * i);
#define ZERO(i) __m512 o##i = _mm512_setzero_ps();
#define ACC(i) o##i = _mm512_fmadd_ps(p, LOAD(vj + 16 * i), o##i);
#define STORE(i) _mm512_storeu_ps(out + 16 * i, _mm512_mul_ps(o##i, vinv));
#define LOAD_F32(p) _mm512_loadu_ps(p)
#define LOAD_BF16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define LOAD LOAD_F32   /* LOAD is read when the bodies expand, by ACC too */
DECODE_HEAD(attn_decode_head_avx512, float)
#undef LOAD
#define LOAD LOAD_BF16
DECODE_HEAD(attn_decode_head_bf16_avx512, uint16_t)
#undef LOAD
#undef LOADQ
#undef ZERO
#undef ACC
#undef STORE

/* items = (batch, head) */
static void attn_decode_task(void *ctx, int64_t t0, int64_t t1, int tid) {
    attn_job *J = ctx;
    const ds_attn_args *a = J->a;
    const int n = keys_visible(a, 0);
    float *s = ds_scratch(J->be, tid);
    for (int64_t t = t0; t < t1; t++) {
        int h = (int)(t % a->n_heads);
        int64_t bi = t / a->n_heads;
        float *out = a->out + bi * a->out_batch_stride + (size_t)h * DEC_HD;
        if (n == 0) {   /* nothing visible: zeros, as the flash path gives */
            for (int d = 0; d < DEC_HD; d++) out[d] = 0.0f;
            continue;
        }
        const float *q = a->q + bi * a->q_batch_stride + (size_t)h * DEC_HD;
        if (a->k16)
            attn_decode_head_bf16_avx512(q, a->k16 + bi * a->k_batch_stride + (size_t)h * a->k_head_stride,
                                         a->v16 + bi * a->v_batch_stride + (size_t)h * a->v_head_stride, n, a->scale, s, out);
        else
            attn_decode_head_avx512(q, a->k + bi * a->k_batch_stride + (size_t)h * a->k_head_stride,
                                    a->v + bi * a->v_batch_stride + (size_t)h * a->v_head_stride, n, a->scale, s, out);
    }
}

/* The decode kernel takes one query row of 128-wide heads whose keys and values are
 * contiguous runs (head-major), with no rel-pos bias. */
static int decode_ok(const ds_attn_args *a) {
    return ds_cpu_has_avx512 && a->Lq == 1 && !a->rel_h && a->head_dim == DEC_HD && a->k_stride == DEC_HD &&
           a->v_stride == DEC_HD && a->k_head_stride && a->v_head_stride && (size_t)a->Lk <= DS_SCRATCH_FLOATS;
}
#endif

/* bf16 keys and values: the decode kernel when it applies; 0 (ds_op_attention widens
 * them for the other kernels) otherwise. */
int ds_cpu_attention_kv16(ds_backend *be, const ds_attn_args *a) {
#if defined(__x86_64__)
    if (!decode_ok(a)) return 0;
    attn_job J = {be, a, 1};
    ds_pool_for(be->pool, (int64_t)(a->batch > 0 ? a->batch : 1) * a->n_heads, 1, attn_decode_task, &J);
    return 1;
#else
    (void)be; (void)a;
    return 0;
#endif
}

void ds_cpu_attention(ds_backend *be, const ds_attn_args *a) {
    int batch = a->batch > 0 ? a->batch : 1;
    /* S, O, max, sum must fit the scratch; a huge head_dim falls back to the reference */
    if ((size_t)QB * KB + (size_t)QB * a->head_dim + 2 * QB > DS_SCRATCH_FLOATS) {
        ds_ref_attention(be, a);
        return;
    }
    attn_job J = {be, a, (a->Lq + QB - 1) / QB};
#if defined(__x86_64__)
    if (decode_ok(a)) {
        ds_pool_for(be->pool, (int64_t)batch * a->n_heads, 1, attn_decode_task, &J);
        return;
    }
#endif
    ds_pool_for(be->pool, (int64_t)batch * a->n_heads * J.n_qblocks, 1, attn_task, &J);
}

/* ---- decomposed relative positions ------------------------------------------------ */

/* For one query grid row qy the dots with every table row come from two sgemm calls,
 * T_h[qw, qh+kh-1] = q_row · Rhᵀ and T_w[qw, qw+kw-1] = q_row · Rwᵀ, and are then
 * gathered: rel_h[i][ky] = T_h[qx][qy - ky + kh - 1], rel_w[i][kx] = T_w[qx][qx - kx + kw - 1]. */
typedef struct {
    ds_backend *be;
    float *rel_h, *rel_w; const float *q;
    int q_stride; int64_t q_batch_stride;
    int n_heads, hd, qh, qw, kh, kw;
    const float *Rh, *Rw;
} relpos_job;

/* items = (batch, head, query grid row) */
static void relpos_task(void *ctx, int64_t t0, int64_t t1, int tid) {
    relpos_job *J = ctx;
    int nh = J->qh + J->kh - 1, nw = J->qw + J->kw - 1, Lq = J->qh * J->qw;
    float *Th = ds_scratch(J->be, tid), *Tw = Th + (size_t)J->qw * nh;
    for (int64_t t = t0; t < t1; t++) {
        int qy = (int)(t % J->qh), h = (int)(t / J->qh % J->n_heads);
        int64_t bi = t / J->qh / J->n_heads;
        const float *q = J->q + bi * J->q_batch_stride + (size_t)qy * J->qw * J->q_stride + (size_t)h * J->hd;
        ds_cpu_sgemm(1, J->qw, nh, J->hd, 1.0f, q, J->q_stride, J->Rh, J->hd, 0.0f, Th, nh);
        ds_cpu_sgemm(1, J->qw, nw, J->hd, 1.0f, q, J->q_stride, J->Rw, J->hd, 0.0f, Tw, nw);
        size_t row0 = ((size_t)bi * J->n_heads + h) * Lq + (size_t)qy * J->qw;
        for (int qx = 0; qx < J->qw; qx++) {
            float *oh = J->rel_h + (row0 + qx) * J->kh, *ow = J->rel_w + (row0 + qx) * J->kw;
            for (int ky = 0; ky < J->kh; ky++) oh[ky] = Th[(size_t)qx * nh + qy - ky + J->kh - 1];
            for (int kx = 0; kx < J->kw; kx++) ow[kx] = Tw[(size_t)qx * nw + qx - kx + J->kw - 1];
        }
    }
}

void ds_cpu_relpos(ds_backend *be, float *rel_h, float *rel_w, const float *q, int q_stride,
                   int64_t q_batch_stride, int batch, int n_heads, int head_dim,
                   int qh, int qw, int kh, int kw, const float *Rh, const float *Rw) {
    if (batch <= 0) batch = 1;
    if ((size_t)qw * (qh + kh - 1 + qw + kw - 1) > DS_SCRATCH_FLOATS) {
        ds_ref_relpos(be, rel_h, rel_w, q, q_stride, q_batch_stride, batch, n_heads, head_dim, qh, qw, kh, kw, Rh, Rw);
        return;
    }
    relpos_job J = {be, rel_h, rel_w, q, q_stride, q_batch_stride, n_heads, head_dim, qh, qw, kh, kw, Rh, Rw};
    ds_pool_for(be->pool, (int64_t)batch * n_heads * qh, 1, relpos_task, &J);
}
