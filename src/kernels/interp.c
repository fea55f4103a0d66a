/* Host-side interpolation of small tables (setup time): PyTorch's antialiased
 * bicubic and 1-D linear resize, align_corners=False (spec 7.5). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"

/* Cubic convolution kernel, a = -0.5 (Keys / Pillow). */
static double cubic_k(double t) {
    const double a = -0.5;
    t = fabs(t);
    if (t < 1.0) return ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    if (t < 2.0) return (((t - 5.0) * t + 8.0) * t - 4.0) * a;
    return 0.0;
}

/* Taps of one output index along one axis: in[xmin .. xmin+n) weighted by w. */
typedef struct { int xmin, n; } aa_span;

/* Filter coefficients for in -> out (spec 7.5): spans[out], weights [out, max_taps].
 * Returns max_taps, or 0 when allocation fails. */
static int bicubic_aa_coeffs(int in, int out, aa_span **spans_out, float **w_out) {
    double scale = (double)in / out;
    double support = scale >= 1.0 ? 2.0 * scale : 2.0;
    double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    int max_taps = (int)ceil(support) * 2 + 1;
    aa_span *spans = malloc((size_t)out * sizeof *spans);
    float *w = malloc((size_t)out * max_taps * sizeof *w);
    double *wd = malloc((size_t)max_taps * sizeof *wd);
    if (!spans || !w || !wd) { free(spans); free(w); free(wd); return 0; }
    for (int o = 0; o < out; o++) {
        double c = scale * (o + 0.5);
        int xmin = (int)(c - support + 0.5);      /* C truncation, as PyTorch */
        if (xmin < 0) xmin = 0;
        int xmax = (int)(c + support + 0.5);
        if (xmax > in) xmax = in;
        int n = xmax - xmin;
        if (n > max_taps) n = max_taps;
        if (n < 0) n = 0;
        double total = 0;
        for (int j = 0; j < n; j++) { wd[j] = cubic_k((j + (xmin - c) + 0.5) * invscale); total += wd[j]; }
        for (int j = 0; j < n; j++) w[(size_t)o * max_taps + j] = (float)(total != 0.0 ? wd[j] / total : wd[j]);
        spans[o].xmin = xmin;
        spans[o].n = n;
    }
    free(wd);
    *spans_out = spans;
    *w_out = w;
    return max_taps;
}

/* dst[line][o][c] = Σ_j w[o][j] · src[line][xmin_o + j][c] for n_lines lines of
 * in (resp. out) pixels of C floats. fp32 accumulation. */
static void resample_axis(float *dst, const float *src, int64_t n_lines, int in, int out,
                          int64_t C, const aa_span *spans, const float *w, int max_taps) {
    for (int64_t l = 0; l < n_lines; l++)
        for (int o = 0; o < out; o++) {
            float *d = dst + (l * out + o) * C;
            const float *wo = w + (size_t)o * max_taps;
            for (int64_t c = 0; c < C; c++) d[c] = 0.0f;
            for (int j = 0; j < spans[o].n; j++) {
                const float *s = src + (l * in + spans[o].xmin + j) * C;
                for (int64_t c = 0; c < C; c++) d[c] += wo[j] * s[c];
            }
        }
}

void ds_interp_bicubic_aa(float *out, const float *in, int in_h, int in_w, int C,
                          int out_h, int out_w) {
    /* width first, then height, each pass only when that size changes (as PyTorch) */
    float *tmp = NULL;
    const float *src = in;
    if (in_w != out_w) {
        float *dst = in_h == out_h ? out : (tmp = malloc((size_t)in_h * out_w * C * sizeof(float)));
        aa_span *spans; float *w;
        int taps = dst ? bicubic_aa_coeffs(in_w, out_w, &spans, &w) : 0;
        if (!taps) { free(tmp); return; }    /* setup-time helper: out left untouched */
        resample_axis(dst, in, in_h, in_w, out_w, C, spans, w, taps);   /* lines = rows */
        free(spans); free(w);
        src = dst;
    }
    if (in_h != out_h) {
        aa_span *spans; float *w;
        int taps = bicubic_aa_coeffs(in_h, out_h, &spans, &w);
        if (!taps) { free(tmp); return; }
        resample_axis(out, src, 1, in_h, out_h, (int64_t)out_w * C, spans, w, taps);  /* one line, pixel = a whole row */
        free(spans); free(w);
    }
    if (src == in && in_h == out_h) memmove(out, in, (size_t)in_h * in_w * C * sizeof(float));
    free(tmp);
}

void ds_interp_linear(float *out, const float *in, int n_in, int C, int n_out) {
    float scale = (float)n_in / (float)n_out;   /* fp32 index arithmetic, as PyTorch */
    for (int o = 0; o < n_out; o++) {
        float s = scale * ((float)o + 0.5f) - 0.5f;
        if (s < 0.0f) s = 0.0f;
        int i0 = (int)s;
        if (i0 > n_in - 1) i0 = n_in - 1;
        int i1 = i0 + 1 < n_in ? i0 + 1 : n_in - 1;
        float lam = s - (float)i0, lam0 = 1.0f - lam;
        for (int c = 0; c < C; c++)
            out[(size_t)o * C + c] = lam0 * in[(size_t)i0 * C + c] + lam * in[(size_t)i1 * C + c];
    }
}
