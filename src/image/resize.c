/* Pillow's separable BICUBIC resampling (libImaging/Resample.c semantics):
 * float64 filter weights normalised per output pixel, converted to 22-bit fixed
 * point, accumulated in integers with a rounding bias and clipped to 0..255.
 * Every rounding step matters for bit-exactness; see spec 6.7. Built in ISO C
 * mode, so the compiler does not contract a*b+c into FMA (that would change bits). */
#include "image/resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

/* Keys cubic with a = -0.5, evaluated in Pillow's operation order. */
static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* For each output o: taps src[bounds[2o] .. bounds[2o] + bounds[2o+1]) with
 * fixed-point weights kfix[o * ksize + k]. */
typedef struct resample_coeffs {
    int ksize;
    int *bounds;     /* [out, 2]: xmin, count */
    int32_t *kfix;   /* [out, ksize] */
} resample_coeffs;

static int precompute_coeffs(int in_size, int out_size, resample_coeffs *c) {
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *k = malloc(sizeof(double) * (size_t)ksize);
    c->ksize = ksize;
    c->bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    c->kfix = calloc((size_t)out_size * ksize, sizeof(int32_t));
    if (!k || !c->bounds || !c->kfix) {
        free(k);
        return -1;
    }
    double ss = 1.0 / filterscale;
    for (int o = 0; o < out_size; o++) {
        double center = (o + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        int n = xmax - xmin;
        double ww = 0.0;
        for (int x = 0; x < n; x++) {
            double w = bicubic_filter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < n; x++) {
            if (ww != 0.0) k[x] /= ww;
            c->kfix[(size_t)o * ksize + x] =
                (int32_t)(k[x] < 0 ? (-0.5 + k[x] * (1 << PRECISION_BITS)) : (0.5 + k[x] * (1 << PRECISION_BITS)));
        }
        c->bounds[2 * o] = xmin;
        c->bounds[2 * o + 1] = n;
    }
    free(k);
    return 0;
}

static void free_coeffs(resample_coeffs *c) {
    free(c->bounds);
    free(c->kfix);
}

static inline uint8_t clip8(int64_t acc) {
    if (acc >= ((int64_t)1 << PRECISION_BITS << 8)) return 255;
    if (acc <= 0) return 0;
    return (uint8_t)(acc >> PRECISION_BITS);
}

/* Horizontal pass over rows [y0, y0 + rows): src [*, sw, 3] -> dst [rows, dw, 3]. */
static void pass_horizontal(const uint8_t *src, int sw, int y0, int rows, uint8_t *dst, int dw,
                            const resample_coeffs *c) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)(y0 + y) * sw * 3;
        uint8_t *out = dst + (size_t)y * dw * 3;
        for (int o = 0; o < dw; o++) {
            int xmin = c->bounds[2 * o], n = c->bounds[2 * o + 1];
            const int32_t *k = c->kfix + (size_t)o * c->ksize;
            for (int ch = 0; ch < 3; ch++) {
                int64_t acc = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < n; x++) acc += (int64_t)in[(xmin + x) * 3 + ch] * k[x];
                out[o * 3 + ch] = clip8(acc);
            }
        }
    }
}

/* Vertical pass: src rows are offset by y0 (src row r holds image row r + y0). */
static void pass_vertical(const uint8_t *src, int w, int y0, uint8_t *dst, int dh, const resample_coeffs *c) {
    size_t row = (size_t)w * 3;
    for (int o = 0; o < dh; o++) {
        int ymin = c->bounds[2 * o] - y0, n = c->bounds[2 * o + 1];
        const int32_t *k = c->kfix + (size_t)o * c->ksize;
        uint8_t *out = dst + (size_t)o * row;
        for (size_t i = 0; i < row; i++) {
            int64_t acc = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < n; y++) acc += (int64_t)src[(size_t)(ymin + y) * row + i] * k[y];
            out[i] = clip8(acc);
        }
    }
}

dsocr_status ds_resize_bicubic(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh,
                               dsocr_error *err) {
    if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "resize %dx%d -> %dx%d: sizes must be positive", sw, sh, dw, dh);
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * sh * 3);
        return DSOCR_OK;
    }
    int need_h = sw != dw, need_v = sh != dh;
    resample_coeffs ch = {0}, cv = {0};
    uint8_t *tmp = NULL;
    dsocr_status s = DSOCR_OK;
    if ((need_h && precompute_coeffs(sw, dw, &ch)) || (need_v && precompute_coeffs(sh, dh, &cv))) {
        s = ds_fail(err, DSOCR_ERR_NOMEM, "resize %dx%d -> %dx%d: out of memory", sw, sh, dw, dh);
        goto done;
    }
    if (need_h && need_v) {
        /* Only the source rows the vertical pass reads. */
        int y_first = cv.bounds[0];
        int y_last = cv.bounds[2 * (dh - 1)] + cv.bounds[2 * (dh - 1) + 1];
        int rows = y_last - y_first;
        tmp = malloc((size_t)rows * dw * 3);
        if (!tmp) {
            s = ds_fail(err, DSOCR_ERR_NOMEM, "resize %dx%d -> %dx%d: out of memory", sw, sh, dw, dh);
            goto done;
        }
        pass_horizontal(src, sw, y_first, rows, tmp, dw, &ch);
        pass_vertical(tmp, dw, y_first, dst, dh, &cv);
    } else if (need_h) {
        pass_horizontal(src, sw, 0, sh, dst, dw, &ch);
    } else {
        pass_vertical(src, sw, 0, dst, dh, &cv);
    }
done:
    free(tmp);
    free_coeffs(&ch);
    free_coeffs(&cv);
    return s;
}
