/* DeepEncoder against the golden fixtures: for each selected case (image x mode) the
 * tiny model encodes the preprocessed views (lossless PNGs in cases/) and every vision
 * intermediate reported through ds_trace must match the fixture within
 * max|diff| <= 1e-4 * max|ref| (golden README section 8).
 *
 * Usage: test_vision_golden [SELECTOR...]
 *   SELECTOR = a mode (tiny, small, base, large, gundam), a case name
 *   (portrait_page_850x1100__gundam) or "all" (default).
 *   DSOCR_VISION_CASES="sel1,sel2" overrides the arguments (e.g. a subset under ASan). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_util.h"

#include "dsocr.h"
#include "image/preprocess.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "kernels/ops.h"
#include "model/vision.h"

static const char *IMAGES[] = {"small_text_300x200", "portrait_page_850x1100", "wide_banner_1600x500",
                               "square_pattern_1300x1250", "rgba_pattern_640x640"};
static const char *MODES[] = {"tiny", "small", "base", "large", "gundam"};
#define N_IMAGES 5
#define N_MODES 5
#define REL_TOL 1e-4

/* worst max|diff| / max|ref| per tensor kind over all cases */
enum { K_SAM, K_CLIP, K_PROJ, K_EMBEDS, K_COUNT };
static const char *KIND_NAMES[K_COUNT] = {"sam_*", "clip_*", "proj_*", "image_embeds"};
static double worst_rel[K_COUNT], worst_abs[K_COUNT];

typedef struct case_ctx {
    const char *name;
    const ds_st_file *fix;
    int seen_mask;   /* bit per traced name */
} case_ctx;

static const char *TRACED[] = {"sam_global", "clip_global", "proj_global", "sam_crops", "clip_crops",
                               "proj_crops", "image_embeds"};
#define N_TRACED 7

static int kind_of(const char *name) {
    if (!strncmp(name, "sam_", 4)) return K_SAM;
    if (!strncmp(name, "clip_", 5)) return K_CLIP;
    if (!strncmp(name, "proj_", 5)) return K_PROJ;
    return K_EMBEDS;
}

static void on_tensor(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    case_ctx *cc = user;
    for (int i = 0; i < N_TRACED; i++)
        if (!strcmp(name, TRACED[i])) cc->seen_mask |= 1 << i;
    const ds_tensor *ref = ds_st_find(cc->fix, name);
    CHECK_MSG(ref != NULL, "%s: traced %s is not in the fixture", cc->name, name);
    if (!ref) return;
    CHECK_EQ_INT(ref->dtype, DS_F32);
    CHECK_EQ_INT(ref->ndim, ndim);
    int same = ref->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = ref->shape[d] == shape[d];
    CHECK_MSG(same, "%s: %s shape differs from the fixture", cc->name, name);
    if (!same || ref->dtype != DS_F32) return;
    const size_t n = (size_t)ds_tensor_numel(ref);
    const double diff = tu_max_abs_diff(data, ref->data, n), mref = tu_max_abs(ref->data, n);
    const double rel = mref > 0 ? diff / mref : diff;
    const int k = kind_of(name);
    if (rel > worst_rel[k]) worst_rel[k] = rel;
    if (diff > worst_abs[k]) worst_abs[k] = diff;
    CHECK_MSG(rel <= REL_TOL, "%s: %s max|diff| %.3g, max|ref| %.3g, rel %.3g > %g", cc->name, name, diff,
              mref, rel, REL_TOL);
}

/* Decodes a lossless view PNG into normalised CHW floats (malloc'd); *side receives S. */
static float *load_view(const char *png, int *side) {
    char rel[512];
    snprintf(rel, sizeof rel, "cases/%s", png);
    dsocr_image *img = NULL;
    dsocr_error err;
    if (dsocr_image_load_file(tu_golden(rel), 0, &img, &err) != DSOCR_OK) {
        CHECK_MSG(0, "%s: %s", png, err.message);
        return NULL;
    }
    const int S = dsocr_image_width(img);
    CHECK_EQ_INT(dsocr_image_height(img), S);
    float *chw = malloc((size_t)3 * S * S * sizeof(float));
    if (chw) ds_normalize_chw(dsocr_image_pixels(img), S, chw);
    dsocr_image_free(img);
    *side = S;
    return chw;
}

static void run_case(ds_backend *be, ds_vision *v, const ds_config *cfg, const char *name) {
    char rel[512];
    snprintf(rel, sizeof rel, "cases/%s.safetensors", name);
    ds_st_file *fix = NULL;
    dsocr_error err;
    if (ds_st_open(tu_golden(rel), &fix, &err) != DSOCR_OK) {
        CHECK_MSG(0, "%s", err.message);
        return;
    }
    const clock_t t0 = clock();
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);

    /* views: global PNG + crop PNGs named in the metadata */
    int gside = 0, tside = 0, n_tiles = 0;
    float *global = load_view(ds_st_metadata(fix, "global_view_png"), &gside);
    float *tiles = NULL;
    cJSON *crops = cJSON_Parse(ds_st_metadata(fix, "crop_pngs") ? ds_st_metadata(fix, "crop_pngs") : "[]");
    CHECK(crops && cJSON_IsArray(crops));
    n_tiles = crops ? cJSON_GetArraySize(crops) : 0;
    for (int i = 0; i < n_tiles; i++) {
        int s = 0;
        float *t = load_view(cJSON_GetArrayItem(crops, i)->valuestring, &s);
        if (!t) { n_tiles = 0; break; }
        if (!tiles) {
            tside = s;
            tiles = malloc((size_t)n_tiles * 3 * s * s * sizeof(float));
        }
        CHECK_EQ_INT(s, tside);
        memcpy(tiles + (size_t)i * 3 * s * s, t, (size_t)3 * s * s * sizeof(float));
        free(t);
    }
    cJSON_Delete(crops);
    const ds_tensor *grid = ds_st_find(fix, "images_spatial_crop");
    const int gw = grid ? (int)((const int64_t *)grid->data)[0] : 1;
    const int gh = grid ? (int)((const int64_t *)grid->data)[1] : 1;
    if (n_tiles > 0) CHECK_EQ_INT(gw * gh, n_tiles);

    /* the two fixtures that store the model's pixel input: our normalisation must match */
    const ds_tensor *px = ds_st_find(fix, "global_pixels_f32");
    if (px && global) {
        CHECK_EQ_INT(ds_tensor_numel(px), (int64_t)3 * gside * gside);
        CHECK(tu_max_abs_diff(global, px->data, (size_t)3 * gside * gside) == 0.0);
    }

    const int N = ds_vision_n_embeds(cfg, gside, n_tiles, tside, gw, gh);
    const ds_tensor *ref_embeds = ds_st_find(fix, "image_embeds");
    CHECK(ref_embeds && ref_embeds->shape[0] == N);
    const int D = cfg->proj.n_embed;
    float *embeds = malloc((size_t)N * D * sizeof(float));
    case_ctx cc = {name, fix, 0};
    ds_trace tr = {on_tensor, NULL, &cc};
    if (global && embeds) {
        dsocr_status st = ds_vision_encode(v, global, gside, tiles, n_tiles, tside, gw, gh, embeds, &tr, &err);
        CHECK_MSG(st == DSOCR_OK, "%s: %s", name, err.message);
        int want = 1 | 2 | 4 | 64;
        if (n_tiles > 0) want |= 8 | 16 | 32;
        CHECK_MSG(cc.seen_mask == want, "%s: traced set 0x%x, expected 0x%x", name, cc.seen_mask, want);
        CHECK_MSG((ds_st_find(fix, "sam_crops") != NULL) == (n_tiles > 0), "%s: crops in fixture vs tiles", name);

        /* placement over the prompt's placeholder run */
        const ds_tensor *ids64 = ds_st_find(fix, "input_ids");
        if (ids64 && ref_embeds) {
            const int T = (int)ids64->shape[0];
            int32_t *ids = malloc((size_t)T * sizeof(int32_t));
            float *x = ds_buf_alloc(be, (size_t)T * D), *hx = malloc((size_t)T * D * sizeof(float));
            for (int i = 0; i < T; i++) ids[i] = (int32_t)((const int64_t *)ids64->data)[i];
            for (size_t i = 0; i < (size_t)T * D; i++) hx[i] = -7.0f;
            ds_op_upload(be, x, hx, (size_t)T * D);
            st = ds_vision_scatter(be, x, ids, T, 128815, embeds, N, D, &err);
            CHECK_MSG(st == DSOCR_OK, "%s: %s", name, err.message);
            ds_op_download(be, hx, x, (size_t)T * D);
            int row = 0, ok = 1;
            for (int i = 0; i < T; i++) {
                if (ids[i] == 128815) ok &= !memcmp(hx + (size_t)i * D, embeds + (size_t)row++ * D, (size_t)D * sizeof(float));
                else ok &= hx[(size_t)i * D] == -7.0f;
            }
            CHECK_MSG(ok && row == N, "%s: scatter misplaced rows", name);
            /* a prompt with one placeholder too few is refused */
            ids[1] = 0;
            CHECK_EQ_INT(ds_vision_scatter(be, x, ids, T, 128815, embeds, N, D, NULL), DSOCR_ERR_INVALID_ARG);
            free(ids);
            free(hx);
            ds_buf_free(be, x);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &w1);
    printf("  %-34s %dx%d view %4d, %d tiles of %d: %6.2f s wall (%.2f s cpu)\n", name, gw, gh, gside, n_tiles,
           tside, (double)(w1.tv_sec - w0.tv_sec) + 1e-9 * (double)(w1.tv_nsec - w0.tv_nsec),
           (double)(clock() - t0) / CLOCKS_PER_SEC);
    fflush(stdout);
    free(embeds);
    free(global);
    free(tiles);
    ds_st_close(fix);
}

/* Adds the cases a selector names to sel[image][mode]. */
static int select_cases(const char *s, int sel[N_IMAGES][N_MODES]) {
    int hit = 0;
    for (int i = 0; i < N_IMAGES; i++)
        for (int m = 0; m < N_MODES; m++) {
            char name[128];
            snprintf(name, sizeof name, "%s__%s", IMAGES[i], MODES[m]);
            if (!strcmp(s, "all") || !strcmp(s, MODES[m]) || !strcmp(s, IMAGES[i]) || !strcmp(s, name)) {
                sel[i][m] = 1;
                hit = 1;
            }
        }
    return hit;
}

int main(int argc, char **argv) {
    int sel[N_IMAGES][N_MODES] = {{0}};
    const char *env = getenv("DSOCR_VISION_CASES");
    if (env && *env) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", env);
        for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", "))
            CHECK_MSG(select_cases(tok, sel), "unknown case selector \"%s\"", tok);
    } else if (argc > 1) {
        for (int a = 1; a < argc; a++) CHECK_MSG(select_cases(argv[a], sel), "unknown case selector \"%s\"", argv[a]);
    } else {
        select_cases("all", sel);
    }

    dsocr_error err;
    ds_config cfg;
    ds_checkpoint *ck = NULL;
    ds_backend *be = NULL;
    ds_vision *v = NULL;
    static ds_vision_weights w;
    if (ds_config_load(tu_golden("tiny-model/config.json"), &cfg, &err) != DSOCR_OK ||
        ds_ckpt_open(tu_golden("tiny-model"), &ck, &err) != DSOCR_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    ds_binder *b = ds_binder_new(ck);
    ds_vision_bind(b, &cfg, &w);
    CHECK_MSG(ds_binder_finish(b, &err) == DSOCR_OK, "%s", err.message);
    CHECK(ds_backend_cpu_new(0, &be, &err) == DSOCR_OK);
    ds_vision_params vp = ds_vision_default_params();
    CHECK_MSG(ds_vision_new(be, &cfg, &w, &vp, &v, &err) == DSOCR_OK, "%s", err.message);
    if (tu_failures) return tu_done("test_vision_golden");
    printf("backend: %s\n", ds_backend_name(be));

    int n_run = 0;
    for (int i = 0; i < N_IMAGES; i++)
        for (int m = 0; m < N_MODES; m++) {
            if (!sel[i][m]) continue;
            char name[128];
            snprintf(name, sizeof name, "%s__%s", IMAGES[i], MODES[m]);
            run_case(be, v, &cfg, name);
            n_run++;
        }
    printf("%d cases; worst max|diff|/max|ref| (max|diff|) per tensor kind:\n", n_run);
    for (int k = 0; k < K_COUNT; k++) printf("  %-13s %.3g (%.3g)\n", KIND_NAMES[k], worst_rel[k], worst_abs[k]);
    CHECK(n_run > 0);

    ds_vision_free(v);
    ds_backend_free(be);
    ds_ckpt_close(ck);
    return tu_done("test_vision_golden");
}
