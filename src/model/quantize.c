/* Load-time quantization of the decoder's Linear weights (see quantize.h). */
#include "model/quantize.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/pool.h"
#include "core/quant.h"

ds_quant_plan ds_quant_plan_for(ds_dtype t, int release_source) {
    ds_quant_plan p = {t, t, release_source};
    return p;
}

/* A weight to convert and the dtype it becomes. */
typedef struct { ds_tensor *t; ds_dtype to; } quant_item;

typedef struct {
    quant_item *items;
    int n, cap;
} item_list;

static int add_item(item_list *L, ds_tensor *t, ds_dtype to) {
    if (!t->data || !ds_dtype_is_quant(to) || ds_dtype_is_quant(t->dtype)) return 1;   /* absent or kept */
    if (!ds_quant_fits(to, t->shape[0])) to = ds_quant_base(to);   /* x4 needs whole groups of rows */
    if (L->n == L->cap) {
        int cap = L->cap ? L->cap * 2 : 256;
        quant_item *p = realloc(L->items, (size_t)cap * sizeof *p);
        if (!p) return 0;
        L->items = p;
        L->cap = cap;
    }
    L->items[L->n++] = (quant_item){t, to};
    return 1;
}

static int add_mlp(item_list *L, ds_mlp_weights *m, ds_dtype to) {
    return add_item(L, &m->gate, to) && add_item(L, &m->up, to) && add_item(L, &m->down, to);
}

/* Every Linear of the decoder, in memory order of a typical checkpoint. */
static int collect(ds_decoder_weights *w, const ds_quant_plan *plan, item_list *L) {
    for (int l = 0; l < w->n_layers; l++) {
        ds_decoder_layer_weights *lw = &w->layers[l];
        if (!add_item(L, &lw->wq, plan->linear) || !add_item(L, &lw->wk, plan->linear) ||
            !add_item(L, &lw->wv, plan->linear) || !add_item(L, &lw->wo, plan->linear))
            return 0;
        if (!lw->is_moe) {
            if (!add_mlp(L, &lw->mlp, plan->linear)) return 0;
            continue;
        }
        for (int e = 0; lw->experts && e < w->n_experts; e++)
            if (!add_mlp(L, &lw->experts[e], plan->linear)) return 0;
        if (!add_mlp(L, &lw->shared, plan->linear)) return 0;
    }
    return add_item(L, &w->lm_head, plan->lm_head);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Drops the whole pages of a read-only file mapping that lie inside [p, p + n). */
static void release_pages(const void *p, size_t n) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);   /* advisory: failure is harmless */
}

static size_t item_bytes(const quant_item *it) {
    return (size_t)it->t->shape[0] * ds_quant_row_bytes(it->to, it->t->shape[1]);
}

dsocr_status ds_decoder_quantize(ds_decoder_weights *w, const ds_quant_plan *plan, int n_threads,
                                 ds_decoder_quant *out, dsocr_error *err) {
    memset(out, 0, sizeof *out);
    if (!w || !plan || !w->layers)
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "decoder quantize: no weights or plan");
    if (!ds_dtype_is_quant(plan->linear))
        return ds_fail(err, DSOCR_ERR_INVALID_ARG, "decoder quantize: %s is not a quantized dtype",
                       ds_dtype_name(plan->linear));
    double t0 = now_ms();
    item_list L = {0};
    if (!collect(w, plan, &L)) { free(L.items); return ds_fail(err, DSOCR_ERR_NOMEM, "decoder quantize: out of memory"); }

    // one arena for every tensor, each slice 64-byte aligned
    size_t total = 0;
    for (int i = 0; i < L.n; i++) {
        const ds_tensor *t = L.items[i].t;
        if (t->ndim != 2 || t->stride[1] != 1 || ds_dtype_size(t->dtype) == 0) {
            free(L.items);
            return ds_fail(err, DSOCR_ERR_UNSUPPORTED, "decoder quantize: %s is not a 2-D float matrix with contiguous rows",
                           t->name ? t->name : "a weight");
        }
        total += (item_bytes(&L.items[i]) + 63) & ~(size_t)63;
    }
    /* 2 MiB-aligned and advised to transparent huge pages, before the first touch:
     * decode streams the whole arena every few tokens, and in a VM each 4 KiB-page TLB
     * miss is a two-level page walk (a 1 GB read ran at 10-15 GB/s on 4 KiB pages, 17-18
     * on huge pages; tests/bench_decode). Advisory: without THP it is a plain buffer. */
    const size_t huge = (size_t)2 << 20;
    total = (total + huge - 1) & ~(huge - 1);
    void *arena = aligned_alloc(huge, total ? total : huge);
    if (arena) madvise(arena, total ? total : huge, MADV_HUGEPAGE);
    if (!arena) {
        free(L.items);
        return ds_fail(err, DSOCR_ERR_NOMEM, "decoder quantize: cannot allocate %zu MiB for the quantized weights", total >> 20);
    }
    ds_pool *pool = NULL;
    dsocr_status s = ds_pool_new(n_threads, &pool, err);
    if (s != DSOCR_OK) { free(arena); free(L.items); return s; }

    // convert each tensor (rows spread over the pool), then point its view at the copy
    size_t off = 0;
    for (int i = 0; i < L.n; i++) {
        ds_tensor *t = L.items[i].t, q;
        size_t bytes = item_bytes(&L.items[i]);
        ds_quantize_tensor(pool, t, L.items[i].to, (char *)arena + off, &q);
        size_t src_bytes = (size_t)t->shape[0] * (size_t)t->stride[0] * ds_dtype_size(t->dtype);
        if (plan->release_source) release_pages(t->data, src_bytes);
        out->n_params += t->shape[0] * t->shape[1];
        out->source_bytes += src_bytes;
        *t = q;
        off += (bytes + 63) & ~(size_t)63;
    }
    ds_pool_free(pool);
    out->arena = arena;
    out->bytes = total;
    out->n_tensors = L.n;
    out->ms = now_ms() - t0;
    free(L.items);
    return DSOCR_OK;
}

void ds_decoder_quant_free(ds_decoder_quant *q) {
    if (!q) return;
    free(q->arena);
    memset(q, 0, sizeof *q);
}
